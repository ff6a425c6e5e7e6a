/* tools/bench/bench_quant.c — SPR_OP_GEMM with quantized weights at TinyLlama
 * shapes (not part of the build).
 *
 * Build by hand from the repository root against a configured build dir:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Iinclude -Itests tools/bench/bench_quant.c \
 *      tests/support/op_harness.c build/libsparrow.a -lpthread -lm -o /tmp/bench_quant
 *
 *   bench_quant [--types q4_0,q8_0,q4_k,q6_k] [--threads 1,2] [--ms 200] [--isa NAME] [--hot]
 *               [--shapes KxN,...] [--gemm-m 64,128]
 *
 * For every type, shape (K x N: 2048x2048, 2048x5632, 5632x2048, 2048x32000
 * by default) and thread count it prints
 *   - GEMV (M = 1): time, weight bytes streamed per second, and that rate as
 *     a percentage of a plain read-sum loop over the same bytes measured in
 *     the same run with the same thread count (decode is memory bound);
 *   - GEMM at M = 64 and 128 (prefill): GOP/s (2*M*N*K per second).
 * Decode streams a model far larger than the last-level cache, so by default
 * every run reads a different copy of the weights out of a rotation of at
 * least 256 MiB (DRAM bandwidth); --hot reuses one copy (cache resident when
 * it fits). Times are medians of repeated runs (at least --ms per point). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"
#include "platform/threads.h"
#include "platform/time.h"
#include "support/op_harness.h"

static void *xalloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
    fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

static int cmp_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t rng(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

/* Random codes with sane fp16 scales (~1e-3..2e-3) in every block. */
static void fill_weights(uint8_t *w, size_t bytes, enum spr_dtype t) {
  uint64_t s = 88172645463325252ull;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t v = rng(&s);
    memcpy(w + i, &v, 8);
  }
  const size_t bb = spr_dtype_block_bytes(t);
  const size_t d_off = t == SPR_DTYPE_Q6_K ? 208 : 0, n_d = t == SPR_DTYPE_Q4_K ? 2 : 1;
  for (size_t b = 0; b + bb <= bytes; b += bb) {
    for (size_t k = 0; k < n_d; k++) {
      const uint16_t h = (uint16_t)(0x1400u + (rng(&s) & 0x3ffu));
      memcpy(w + b + d_off + 2 * k, &h, 2);
    }
  }
}

/* ---- read-sum baseline --------------------------------------------------------- */

struct rs_ctx {
  const uint8_t *p;
  size_t bytes;
  uint64_t sums[64];
};

/* 8 independent 16-byte vector sums per 128 bytes (GCC vector extension:
 * SSE2 / NEON), enough loads per cycle that only the memory limits it. */
typedef uint64_t v2u64 __attribute__((vector_size(16)));

static void rs_task(void *vctx, size_t begin, size_t end, int tid) {
  struct rs_ctx *c = vctx;
  const size_t chunk = c->bytes / 64;
  v2u64 a[8] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
  for (size_t t = begin; t < end; t++) {
    const uint8_t *q = c->p + t * chunk;
    for (size_t i = 0; i + 128 <= chunk; i += 128) {
      for (int u = 0; u < 8; u++) {
        v2u64 v;
        memcpy(&v, q + i + 16 * u, 16);
        a[u] += v;
      }
    }
  }
  v2u64 s = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
  c->sums[tid] += s[0] + s[1];
}

/* ---- timing helpers ------------------------------------------------------------- */

struct runner {
  struct spr_pool *pool;
  int threads;
  uint8_t **copies;
  size_t n_copies, next;
};

static double median_ns(uint64_t *t, size_t n) {
  qsort(t, n, sizeof t[0], cmp_u64);
  return (double)t[n / 2];
}

static double time_readsum(struct runner *r, size_t bytes, double min_ms) {
  uint64_t t[512];
  size_t n = 0;
  const uint64_t t_end = spr_time_ns() + (uint64_t)(min_ms * 1e6);
  struct rs_ctx c;
  memset(&c, 0, sizeof c);
  c.bytes = bytes;
  for (int warm = 0; warm < 2; warm++) {
    c.p = r->copies[r->next++ % r->n_copies];
    spr_pool_run(r->pool, 64, rs_task, &c);
  }
  while (n < 512 && (n < 5 || spr_time_ns() < t_end)) {
    c.p = r->copies[r->next++ % r->n_copies];
    const uint64_t t0 = spr_time_ns();
    spr_pool_run(r->pool, 64, rs_task, &c);
    t[n++] = spr_time_ns() - t0;
  }
  if (c.sums[0] == 42) printf(" ");
  return median_ns(t, n);
}

/* One GEMM problem through the op; returns the median ns. */
static double time_gemm(struct runner *r, enum spr_dtype wt, size_t m, size_t n, size_t k, uint32_t mask, double min_ms,
                        const char **impl) {
  float *x = xalloc(m * k * 4), *y = xalloc(m * n * 4);
  for (size_t i = 0; i < m * k; i++) x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
  struct spr_tensor ts[3];
  const int64_t xne[2] = {(int64_t)k, (int64_t)m}, wne[2] = {(int64_t)k, (int64_t)n}, dne[2] = {(int64_t)n, (int64_t)m};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, xne, x);
  spr_test_tensor(&ts[1], wt, 2, wne, r->copies[0]);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, dne, y);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM;
  nd.n_src = 2;
  nd.src[0] = 0, nd.src[1] = 1;
  nd.dst = 2;
  const struct spr_op_def *def = spr_op_get(SPR_OP_GEMM);
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (def->check(ts, &nd, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "check: %s\n", err.msg);
    exit(1);
  }
  nd.isa = spr_cpu_isa() & mask;
  def->prepare(ts, &nd, nd.isa);
  nd.ws_bytes = def->workspace(ts, &nd, r->threads);
  void *scratch = xalloc(nd.ws_bytes);
  const struct spr_exec ex = {.tensors = ts, .pool = r->pool, .n_threads = r->threads, .scratch = scratch, .scratch_bytes = nd.ws_bytes};
  uint64_t t[512];
  size_t cnt = 0;
  for (int warm = 0; warm < 2; warm++) {
    ts[1].data = r->copies[r->next++ % r->n_copies];
    def->run(&ex, &nd);
  }
  const uint64_t t_end = spr_time_ns() + (uint64_t)(min_ms * 1e6);
  while (cnt < 512 && (cnt < 3 || spr_time_ns() < t_end)) {
    ts[1].data = r->copies[r->next++ % r->n_copies];
    const uint64_t t0 = spr_time_ns();
    def->run(&ex, &nd);
    t[cnt++] = spr_time_ns() - t0;
  }
  *impl = nd.impl_name;
  free(scratch), free(x), free(y);
  return median_ns(t, cnt);
}

static size_t parse_list(const char *s, char items[][32], size_t max) {
  size_t n = 0;
  while (*s && n < max) {
    size_t len = strcspn(s, ",");
    if (len > 31) len = 31;
    memcpy(items[n], s, len);
    items[n++][len] = 0;
    s += len;
    if (*s == ',') s++;
  }
  return n;
}

static enum spr_dtype parse_type(const char *s) {
  if (!strcmp(s, "q4_0")) return SPR_DTYPE_Q4_0;
  if (!strcmp(s, "q8_0")) return SPR_DTYPE_Q8_0;
  if (!strcmp(s, "q4_k")) return SPR_DTYPE_Q4_K;
  if (!strcmp(s, "q6_k")) return SPR_DTYPE_Q6_K;
  fprintf(stderr, "unknown type %s\n", s);
  exit(2);
}

int main(int argc, char **argv) {
  const char *types = "q4_0,q8_0,q4_k,q6_k", *threads = "1,2", *isa = "all";
  const char *shapes = "2048x2048,2048x5632,5632x2048,2048x32000", *gemm_ms = "64,128";
  double min_ms = 200;
  int hot = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--hot")) {
      hot = 1;
    } else if (v != NULL && !strcmp(a, "--types")) {
      types = v, i++;
    } else if (v != NULL && !strcmp(a, "--threads")) {
      threads = v, i++;
    } else if (v != NULL && !strcmp(a, "--isa")) {
      isa = v, i++;
    } else if (v != NULL && !strcmp(a, "--shapes")) {
      shapes = v, i++;
    } else if (v != NULL && !strcmp(a, "--gemm-m")) {
      gemm_ms = v, i++;
    } else if (v != NULL && !strcmp(a, "--ms")) {
      min_ms = atof(v), i++;
    } else {
      fprintf(stderr, "unknown argument %s\n", a);
      return 2;
    }
  }
  uint32_t mask = SPR_ISA_ALL;
  if (strcmp(isa, "all") != 0 && spr_isa_mask_parse(isa, &mask) != SPR_STATUS_OK) {
    fprintf(stderr, "unknown isa %s\n", isa);
    return 2;
  }
  char tl[8][32], thl[8][32], shl[8][32], gml[8][32];
  const size_t nt = parse_list(types, tl, 8), nth = parse_list(threads, thl, 8), nsh = parse_list(shapes, shl, 8);
  const size_t ngm = strcmp(gemm_ms, "0") ? parse_list(gemm_ms, gml, 8) : 0;
  printf("weights %s; GEMV %% = weight GB/s relative to a read-sum loop over the same bytes, same threads\n",
         hot ? "hot (one copy)" : "streamed from DRAM (rotating copies >= 256 MiB)");
  for (size_t ti = 0; ti < nt; ti++) {
    const enum spr_dtype wt = parse_type(tl[ti]);
    for (size_t si = 0; si < nsh; si++) {
      size_t k = 0, n = 0;
      if (sscanf(shl[si], "%zux%zu", &k, &n) != 2) {
        fprintf(stderr, "bad shape %s\n", shl[si]);
        return 2;
      }
      const size_t bytes = n * (k / spr_dtype_block_elems(wt)) * spr_dtype_block_bytes(wt);
      size_t n_copies = hot ? 1 : (256u << 20) / bytes + 1;
      if (n_copies < 2 && !hot) n_copies = 2;
      struct runner r;
      memset(&r, 0, sizeof r);
      r.n_copies = n_copies;
      r.copies = xalloc(n_copies * sizeof(uint8_t *));
      r.copies[0] = xalloc(bytes + 64);
      fill_weights(r.copies[0], bytes, wt);
      for (size_t c = 1; c < n_copies; c++) {
        r.copies[c] = xalloc(bytes + 64);
        memcpy(r.copies[c], r.copies[0], bytes);
      }
      for (size_t hi = 0; hi < nth; hi++) {
        r.threads = atoi(thl[hi]);
        void *pool_mem = r.threads > 1 ? xalloc(spr_pool_bytes(r.threads)) : NULL;
        if (spr_pool_create(pool_mem, r.threads, &r.pool) != SPR_STATUS_OK) return 1;
        const char *impl = "";
        const double rs = time_readsum(&r, bytes / 4096 * 4096, min_ms);
        const double gv = time_gemm(&r, wt, 1, n, k, mask, min_ms, &impl);
        const double rs_gbs = (double)(bytes / 4096 * 4096) / rs, gv_gbs = (double)bytes / gv;
        printf("%-5s K=%-5zu N=%-5zu (%6.2f MB) threads=%d %s\n", tl[ti], k, n, (double)bytes / 1e6, r.threads, impl);
        printf("    GEMV M=1: %8.1f us  %6.1f GB/s  read-sum %6.1f GB/s  -> %5.1f %%\n", gv / 1e3, gv_gbs, rs_gbs,
               100.0 * gv_gbs / rs_gbs);
        for (size_t gi = 0; gi < ngm; gi++) {
          const size_t m = (size_t)atoi(gml[gi]);
          const double gt = time_gemm(&r, wt, m, n, k, mask, min_ms, &impl);
          printf("    GEMM M=%-3zu %8.1f us  %6.1f GOP/s\n", m, gt / 1e3, 2.0 * (double)m * (double)n * (double)k / gt);
        }
        spr_pool_destroy(r.pool);
        free(pool_mem);
        fflush(stdout);
      }
      for (size_t c = 0; c < n_copies; c++) free(r.copies[c]);
      free(r.copies);
    }
  }
  return 0;
}
