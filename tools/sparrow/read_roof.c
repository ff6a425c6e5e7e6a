/* tools/sparrow/read_roof.c — see read_roof.h. */
#include "tools/sparrow/read_roof.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/blob.h"
#include "platform/threads.h"
#include "platform/time.h"

struct read_roof {
  struct spr_blob blob;
  size_t bytes;
  int threads;
  void *pool_mem;
  struct spr_pool *pool;
  volatile uint64_t sink; /* keeps the sums alive */
};

enum {
  CHUNK = 1u << 16, /* bytes per task: threads get contiguous runs of chunks */
  AHEAD = 12288,    /* software prefetch distance into L2, as the decode GEMV kernels use */
};

static void read_task(void *ctx, size_t begin, size_t end, int tid) {
  (void)tid;
  struct read_roof *r = ctx;
  const uint8_t *base = r->blob.data;
  /* four independent sums so the adds do not form one chain */
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t c = begin; c < end; c++) {
    const size_t off = c * CHUNK, n = r->bytes - off < CHUNK ? r->bytes - off : CHUNK;
    const uint8_t *p = base + off;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      uint64_t w[8];
      __builtin_prefetch(p + i + AHEAD, 0, 2); /* may point past the mapping: a prefetch never faults */
      memcpy(w, p + i, sizeof w);
      s0 += w[0] + w[4], s1 += w[1] + w[5], s2 += w[2] + w[6], s3 += w[3] + w[7];
    }
    for (; i < n; i++) s0 += p[i];
  }
  r->sink += s0 + s1 + s2 + s3;
}

struct read_roof *read_roof_open(const char *path, size_t bytes, int threads) {
  struct read_roof *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  struct spr_error err;
  if (spr_blob_map_file(path, &r->blob, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "sparrow: --roof: cannot map %s\n", path);
    free(r);
    return NULL;
  }
  r->bytes = bytes < r->blob.size ? bytes : r->blob.size;
  r->threads = threads > 1 ? threads : 1;
  const size_t pb = spr_pool_bytes(r->threads);
  if (pb > 0) {
    r->pool_mem = aligned_alloc(64, (pb + 63) / 64 * 64);
    if (r->pool_mem == NULL || spr_pool_create(r->pool_mem, r->threads, &r->pool) != SPR_STATUS_OK) {
      fprintf(stderr, "sparrow: --roof: cannot start %d threads\n", r->threads);
      read_roof_close(r);
      return NULL;
    }
  }
  return r;
}

double read_roof_measure(struct read_roof *r) {
  const size_t chunks = (r->bytes + CHUNK - 1) / CHUNK;
  const uint64_t t0 = spr_time_ns();
  spr_pool_run(r->pool, chunks, read_task, r);
  const uint64_t t1 = spr_time_ns();
  return (double)r->bytes / (double)(t1 - t0);
}

void read_roof_close(struct read_roof *r) {
  if (r == NULL) return;
  if (r->pool != NULL) spr_pool_destroy(r->pool);
  free(r->pool_mem);
  spr_blob_unmap(&r->blob);
  free(r);
}
