/* tools/bench/bench_conv.c — times SPR_OP_CONV2D / SPR_OP_DWCONV2D on one shape (not part of the build).
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Iinclude -Itests tools/bench/bench_conv.c \
 *      tests/support/op_harness.c build/libsparrow.a -lpthread -lm -o /tmp/bench_conv
 *   bench_conv [--dw] --h 224 --w 224 --cin 3 --cout 192 --k 16 --s 16 --p 0 [--threads 1] [--reps 20]
 * Prints the median wall time, the median thread CPU time (threads=1) and GFLOP/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/op.h"
#include "platform/threads.h"
#include "platform/time.h"
#include "support/op_harness.h"

static uint64_t thread_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void *xalloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) exit(1);
  memset(p, 0, bytes ? bytes : 64);
  return p;
}

int main(int argc, char **argv) {
  long h = 224, w = 224, cin = 3, cout = 192, k = 16, s = 16, p = 0;
  int threads = 1, reps = 20, dw = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const long v = i + 1 < argc ? atol(argv[i + 1]) : 0;
    if (!strcmp(a, "--dw")) {
      dw = 1;
      continue;
    }
    if (!strcmp(a, "--h"))
      h = v;
    else if (!strcmp(a, "--w"))
      w = v;
    else if (!strcmp(a, "--cin"))
      cin = v;
    else if (!strcmp(a, "--cout"))
      cout = v;
    else if (!strcmp(a, "--k"))
      k = v;
    else if (!strcmp(a, "--s"))
      s = v;
    else if (!strcmp(a, "--p"))
      p = v;
    else if (!strcmp(a, "--threads"))
      threads = (int)v;
    else if (!strcmp(a, "--reps"))
      reps = (int)v;
    else {
      fprintf(stderr, "unknown argument %s\n", a);
      return 2;
    }
    i++;
  }
  if (dw) cout = cin;
  const long oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
  if (h < 1 || w < 1 || cin < 1 || cout < 1 || k < 1 || s < 1 || p < 0 || oh < 1 || ow < 1 || threads < 1 || reps < 1) {
    fprintf(stderr, "bad sizes\n");
    return 2;
  }
  struct spr_tensor ts[4];
  const int64_t xne[3] = {cin, w, h}, wne[4] = {cin, k, k, dw ? 1 : cout}, bne[1] = {cout}, dne[3] = {cout, ow, oh};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, xne, xalloc((size_t)(h * w * cin) * 4));
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, dw ? 3 : 4, wne, xalloc((size_t)(k * k * cin * (dw ? 1 : cout)) * 4));
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 1, bne, xalloc((size_t)cout * 4));
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 3, dne, xalloc((size_t)(oh * ow * cout) * 4));
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = dw ? SPR_OP_DWCONV2D : SPR_OP_CONV2D;
  nd.n_src = 3, nd.src[0] = 0, nd.src[1] = 1, nd.src[2] = 2, nd.dst = 3;
  nd.p.conv = (struct spr_conv_params){(uint16_t)k, (uint16_t)k, (uint16_t)s, (uint16_t)s, (uint16_t)p, (uint16_t)p};
  const struct spr_op_def *def = spr_op_get((enum spr_op)nd.op);
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (def->check(ts, &nd, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "check: %s\n", err.msg);
    return 1;
  }
  nd.isa = spr_cpu_isa();
  def->prepare(ts, &nd, nd.isa);
  nd.ws_bytes = def->workspace != NULL ? def->workspace(ts, &nd, threads) : 0;
  void *scratch = xalloc(nd.ws_bytes);
  struct spr_pool *pool = NULL;
  void *pool_mem = threads > 1 ? xalloc(spr_pool_bytes(threads)) : NULL;
  if (spr_pool_create(pool_mem, threads, &pool) != SPR_STATUS_OK) return 1;
  const struct spr_exec ex = {.tensors = ts, .pool = pool, .n_threads = threads, .scratch = scratch, .scratch_bytes = nd.ws_bytes};
  uint64_t *t = xalloc(sizeof(uint64_t) * (size_t)reps), *tc = xalloc(sizeof(uint64_t) * (size_t)reps);
  for (int r = 0; r < 3; r++) def->run(&ex, &nd);
  for (int r = 0; r < reps; r++) {
    const uint64_t t0 = spr_time_ns(), c0 = thread_ns();
    def->run(&ex, &nd);
    tc[r] = thread_ns() - c0;
    t[r] = spr_time_ns() - t0;
  }
  qsort(t, (size_t)reps, sizeof t[0], cmp_u64);
  qsort(tc, (size_t)reps, sizeof tc[0], cmp_u64);
  const double med = (double)t[reps / 2], cpu = (double)tc[reps / 2], fl = (double)def->flops(ts, &nd);
  printf("%s %ldx%ldx%ld -> %ldx%ldx%ld k%ld s%ld p%ld threads=%d %s: median %.1f us (thread cpu %.1f) %.1f GFLOP/s",
         def->name, h, w, cin, oh, ow, cout, k, s, p, threads, nd.impl_name, med / 1e3, cpu / 1e3, fl / med);
  if (threads == 1) printf(" (%.1f by cpu time)", fl / cpu);
  printf("\n");
  spr_pool_destroy(pool);
  for (int i = 0; i < 4; i++) free(ts[i].data);
  free(pool_mem), free(scratch), free(t), free(tc);
  return 0;
}
