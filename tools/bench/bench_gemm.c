/* tools/bench/bench_gemm.c — times SPR_OP_GEMM on one shape (not part of the build).
 *
 * Build by hand from the repository root against a configured build dir:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Iinclude -Itests tools/bench/bench_gemm.c \
 *      tests/support/op_harness.c build/libsparrow.a -lpthread -lm -o /tmp/bench_gemm
 * Optional XNNPACK side by side (fully connected f32, weights packed by XNNPACK,
 * timed by thread CPU time, one thread):
 *   add -DBENCH_XNNPACK -lXNNPACK (xnnpack.h needs pthreadpool.h on the include path).
 *
 *   bench_gemm --m 197 --k 768 --n 3072 [--threads 1] [--reps 20] [--isa avx512|avx2|scalar]
 *              [--wtype f32|f16] [--act none|gelu|silu|relu] [--bias] [--json]
 * Prints the median and best time of --reps runs after 3 warm-up runs, GFLOP/s
 * from the median, and for M <= 4 the weight-streaming rate in GB/s. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/op.h"
#include "platform/threads.h"
#include "platform/time.h"
#include "support/op_harness.h"

#if defined(BENCH_XNNPACK)
#include <xnnpack.h>
#endif

/* CPU time of this thread: with threads=1 it ignores time stolen by other
 * processes on a shared machine (reported next to wall time). */
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
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}

struct opts {
  long m, k, n;
  int threads, reps, json, bias;
  const char *isa, *wtype, *act;
};

static void parse(int argc, char **argv, struct opts *o) {
  *o = (struct opts){197, 768, 3072, 1, 20, 0, 0, "all", "f32", "none"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json"))
      o->json = 1;
    else if (!strcmp(a, "--bias"))
      o->bias = 1;
    else if (v != NULL && !strcmp(a, "--m"))
      o->m = atol(v), i++;
    else if (v != NULL && !strcmp(a, "--k"))
      o->k = atol(v), i++;
    else if (v != NULL && !strcmp(a, "--n"))
      o->n = atol(v), i++;
    else if (v != NULL && !strcmp(a, "--threads"))
      o->threads = atoi(v), i++;
    else if (v != NULL && !strcmp(a, "--reps"))
      o->reps = atoi(v), i++;
    else if (v != NULL && !strcmp(a, "--isa"))
      o->isa = v, i++;
    else if (v != NULL && !strcmp(a, "--wtype"))
      o->wtype = v, i++;
    else if (v != NULL && !strcmp(a, "--act"))
      o->act = v, i++;
    else {
      fprintf(stderr, "unknown argument %s\n", a);
      exit(2);
    }
  }
  if (o->m < 1 || o->k < 1 || o->n < 1 || o->threads < 1 || o->reps < 1) {
    fprintf(stderr, "bad sizes\n");
    exit(2);
  }
}

static enum spr_act parse_act(const char *s) {
  if (!strcmp(s, "gelu")) return SPR_ACT_GELU;
  if (!strcmp(s, "silu")) return SPR_ACT_SILU;
  if (!strcmp(s, "relu")) return SPR_ACT_RELU;
  return SPR_ACT_NONE;
}

#if defined(BENCH_XNNPACK)
static double bench_xnnpack(const struct opts *o, const float *x, const float *w, const float *b, float *y) {
  if (xnn_initialize(NULL) != xnn_status_success) return 0;
  xnn_operator_t op = NULL;
  if (xnn_create_fully_connected_nc_f32((size_t)o->k, (size_t)o->n, (size_t)o->k, (size_t)o->n, w, b, -INFINITY,
                                        INFINITY, 0, &op) != xnn_status_success)
    return 0;
  xnn_setup_fully_connected_nc_f32(op, (size_t)o->m, x, y, NULL);
  uint64_t *t = xalloc(sizeof(uint64_t) * (size_t)o->reps);
  for (int r = 0; r < 3; r++) xnn_run_operator(op, NULL);
  for (int r = 0; r < o->reps; r++) {
    const uint64_t t0 = thread_ns();
    xnn_run_operator(op, NULL);
    t[r] = thread_ns() - t0;
  }
  qsort(t, (size_t)o->reps, sizeof t[0], cmp_u64);
  const double med = (double)t[o->reps / 2];
  free(t);
  xnn_delete_operator(op);
  return 2.0 * (double)o->m * (double)o->n * (double)o->k / med;
}
#endif

int main(int argc, char **argv) {
  struct opts o;
  parse(argc, argv, &o);
  uint32_t mask = SPR_ISA_ALL;
  if (strcmp(o.isa, "all") != 0 && spr_isa_mask_parse(o.isa, &mask) != SPR_STATUS_OK) {
    fprintf(stderr, "unknown isa %s\n", o.isa);
    return 2;
  }
  const enum spr_dtype wt = !strcmp(o.wtype, "f16") ? SPR_DTYPE_F16 : SPR_DTYPE_F32;
  const size_t m = (size_t)o.m, k = (size_t)o.k, n = (size_t)o.n, esize = wt == SPR_DTYPE_F16 ? 2 : 4;
  float *x = xalloc(m * k * 4), *y = xalloc(m * n * 4), *b = xalloc(n * 4);
  void *w = xalloc(n * k * esize);
  for (size_t i = 0; i < m * k; i++) x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
  for (size_t i = 0; i < n; i++) b[i] = 0.01f * (float)(i % 10);
  for (size_t i = 0; i < n * k; i++) {
    const float v = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    if (wt == SPR_DTYPE_F16) {
      ((uint16_t *)w)[i] = (uint16_t)(0x3000u + (i % 0x800u)); /* 0.125 .. ~0.25 */
    } else {
      ((float *)w)[i] = v;
    }
  }
  struct spr_tensor ts[4];
  const int64_t xne[2] = {o.k, o.m}, wne[2] = {o.k, o.n}, bne[1] = {o.n}, dne[2] = {o.n, o.m};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, xne, x);
  spr_test_tensor(&ts[1], wt, 2, wne, w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 1, bne, b);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, dne, y);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM;
  nd.n_src = 3;
  nd.src[0] = 0, nd.src[1] = 1, nd.src[2] = o.bias ? 2 : -1;
  nd.dst = 3;
  nd.p.gemm.act = (uint8_t)parse_act(o.act);
  const struct spr_op_def *def = spr_op_get(SPR_OP_GEMM);
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (def->check(ts, &nd, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "check: %s\n", err.msg);
    return 1;
  }
  nd.isa = spr_cpu_isa() & mask;
  def->prepare(ts, &nd, nd.isa);
  nd.ws_bytes = def->workspace(ts, &nd, o.threads);
  void *scratch = xalloc(nd.ws_bytes);
  struct spr_pool *pool = NULL;
  void *pool_mem = o.threads > 1 ? xalloc(spr_pool_bytes(o.threads)) : NULL;
  if (spr_pool_create(pool_mem, o.threads, &pool) != SPR_STATUS_OK) return 1;
  const struct spr_exec ex = {.tensors = ts, .pool = pool, .n_threads = o.threads, .scratch = scratch, .scratch_bytes = nd.ws_bytes};
  uint64_t *t = xalloc(sizeof(uint64_t) * (size_t)o.reps), *tc = xalloc(sizeof(uint64_t) * (size_t)o.reps);
  for (int r = 0; r < 3; r++) def->run(&ex, &nd);
  for (int r = 0; r < o.reps; r++) {
    const uint64_t t0 = spr_time_ns(), c0 = thread_ns();
    def->run(&ex, &nd);
    tc[r] = thread_ns() - c0;
    t[r] = spr_time_ns() - t0;
  }
  qsort(t, (size_t)o.reps, sizeof t[0], cmp_u64);
  qsort(tc, (size_t)o.reps, sizeof tc[0], cmp_u64);
  const double med = (double)t[o.reps / 2], best = (double)t[0], cpu = (double)tc[o.reps / 2];
  const double gflops = (double)def->flops(ts, &nd) / med;
  const double gbs = (double)(n * k * esize) / med;
  double xnn = 0;
#if defined(BENCH_XNNPACK)
  if (wt == SPR_DTYPE_F32 && o.threads == 1) xnn = bench_xnnpack(&o, x, w, b, y);
#endif
  if (o.json) {
    printf(
        "{\"op\":\"gemm\",\"m\":%ld,\"k\":%ld,\"n\":%ld,\"threads\":%d,\"wtype\":\"%s\",\"impl\":\"%s\","
        "\"median_us\":%.1f,\"best_us\":%.1f,\"gflops\":%.2f,\"weight_gbs\":%.2f,\"xnnpack_gflops\":%.2f}\n",
        o.m, o.k, o.n, o.threads, o.wtype, nd.impl_name, med / 1e3, best / 1e3, cpu / 1e3, gflops, gbs, xnn);
  } else {
    printf("gemm M=%ld K=%ld N=%ld %s threads=%d %s: median %.1f us (best %.1f, thread cpu %.1f) %.1f GFLOP/s", o.m,
           o.k, o.n, o.wtype, o.threads, nd.impl_name, med / 1e3, best / 1e3, cpu / 1e3, gflops);
    if (o.threads == 1) printf(" (%.1f by cpu time)", (double)def->flops(ts, &nd) / cpu);
    if (m <= 4) printf(", weights %.1f GB/s", gbs);
    if (xnn > 0) printf(" | XNNPACK %.1f GFLOP/s", xnn);
    printf("\n");
  }
  spr_pool_destroy(pool);
  free(pool_mem), free(scratch), free(t), free(tc), free(x), free(y), free(b), free(w);
  return 0;
}
