/* tools/bench/bench_attention.c — timing of SPR_OP_ATTENTION at the shapes
 * that matter (not built by CMake). Build by hand after building the library:
 *
 *   cmake -B build -G Ninja && cmake --build build -j2
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Iinclude -Itests \
 *      tools/bench/bench_attention.c tests/support/op_harness.c build/libsparrow.a \
 *      -lm -lpthread -o build/bench_attention
 *   build/bench_attention [isa [case [threads]]]
 *     isa: scalar | avx2 | avx512 | neon (default: best); case: index into
 *     k_cases (default: all); threads: 1 or 2 (default: both)
 *
 * Prints the median wall time of one run of the op and GFLOP/s counted as
 * the op's flops() (4 * heads * head_dim * visible query/key pairs), the
 * fastest run (telling on a shared machine, where a second thread may wait
 * for a core), and for decode cases the K/V bytes streamed per second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/op.h"
#include "platform/threads.h"
#include "platform/time.h"
#include "support/op_harness.h"

struct bench_case {
  const char *name;
  int tq, tk, nh, nkv, hd, causal, fused;
  int kv;                 /* cached mode: 0 off, 1 f32 cache, 2 f16 cache ({nkv*hd, tk} rows, n_past = tk - tq) */
  uint32_t window, sinks; /* cached mode: ring = window + tq - 1, capacity sinks + ring */
};

static const struct bench_case k_cases[] = {
    {"DeiT-Tiny  T=197 3x64 fused", 197, 197, 3, 3, 64, 0, 1},
    {"NA dense   T=3136 2x32 fused", 3136, 3136, 2, 2, 32, 0, 1},
    {"MNIST ViT  T=50 4x16 fused", 50, 50, 4, 4, 16, 0, 1},
    {"decode     1x2048 32/4x64 causal", 1, 2048, 32, 4, 64, 1, 0},
    {"decode G=1 1x2048 8/8x64 causal", 1, 2048, 8, 8, 64, 1, 0},
    {"decode G=2 1x2048 16/8x64 causal", 1, 2048, 16, 8, 64, 1, 0},
    {"decode G=4 1x2048 32/8x64 causal", 1, 2048, 32, 8, 64, 1, 0},
    {"prefill    128x512 32/4x64 causal", 128, 512, 32, 4, 64, 1, 0},
    /* cached attention at TinyLlama's shapes (32 heads / 4 kv heads x 64) */
    {"cached f16 decode  Tk=128", 1, 128, 32, 4, 64, 1, 0, 2},
    {"cached f16 decode  Tk=512", 1, 512, 32, 4, 64, 1, 0, 2},
    {"cached f16 decode  Tk=2048", 1, 2048, 32, 4, 64, 1, 0, 2},
    {"cached f32 decode  Tk=2048", 1, 2048, 32, 4, 64, 1, 0, 1},
    {"cached f16 prefill 64 Tk=128", 64, 128, 32, 4, 64, 1, 0, 2},
    {"cached f16 prefill 64 Tk=512", 64, 512, 32, 4, 64, 1, 0, 2},
    {"cached f16 prefill 64 Tk=2048", 64, 2048, 32, 4, 64, 1, 0, 2},
    {"cached f32 prefill 64 Tk=2048", 64, 2048, 32, 4, 64, 1, 0, 1},
    {"cached f16 decode  W=512+4 @2048", 1, 2048, 32, 4, 64, 1, 0, 2, 512, 4},
};

/* Single-core FMA peak measured now (the machine may be shared): 12
 * independent FMA chains, 2 flops per lane. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static double peak_avx512(void) {
  __m512 a0 = _mm512_set1_ps(0.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  __m512 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
  const long n = 4000000;
  const uint64_t t0 = spr_time_ns();
  for (long k = 0; k < n; k++) {
#define FMA6(x0, x1, x2, x3, x4, x5) \
  x0 = _mm512_fmadd_ps(x0, b, c);    \
  x1 = _mm512_fmadd_ps(x1, b, c);    \
  x2 = _mm512_fmadd_ps(x2, b, c);    \
  x3 = _mm512_fmadd_ps(x3, b, c);    \
  x4 = _mm512_fmadd_ps(x4, b, c);    \
  x5 = _mm512_fmadd_ps(x5, b, c);    \
  __asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5));
    FMA6(a0, a1, a2, a3, a4, a5)
    FMA6(a6, a7, a8, a9, a10, a11)
#undef FMA6
  }
  const double s = (double)(spr_time_ns() - t0) * 1e-9;
  return (double)n * 12 * 32 / s * 1e-9;
}
static double peak_gflops(void) {
  return (spr_cpu_isa() & SPR_ISA_X86_AVX512F) ? peak_avx512() : 0.0;
}
#else
static double peak_gflops(void) {
  return 0.0;
}
#endif

static int cmp_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static float frand(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((*s >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static void *xalloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}

static void bench(const struct bench_case *c, uint32_t isa, int n_threads) {
  struct spr_tensor ts[4];
  struct spr_node node;
  memset(&node, 0, sizeof node);
  float *buf[3] = {NULL, NULL, NULL};
  const int hd = c->hd;
  struct spr_attn_params *p = &node.p.attn;
  p->n_heads = (uint16_t)c->nh;
  p->n_kv_heads = (uint16_t)c->nkv;
  p->head_dim = (uint16_t)hd;
  p->causal = (uint8_t)c->causal;
  p->scale = 1.0f / 8.0f;
  uint64_t seed = 42;
  if (c->fused) {
    const int row = (c->nh + 2 * c->nkv) * hd;
    p->q_col = 0;
    p->k_col = (uint32_t)(c->nh * hd);
    p->v_col = p->k_col + (uint32_t)(c->nkv * hd);
    const size_t n = (size_t)row * (size_t)c->tq;
    buf[0] = xalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) buf[0][i] = frand(&seed);
    const int64_t ne[2] = {row, c->tq};
    for (int s = 0; s < 3; s++) spr_test_tensor(&ts[s], SPR_DTYPE_F32, 2, ne, buf[0]);
  } else {
    int rows[3] = {c->tq, c->tk, c->tk};
    const int cols[3] = {c->nh * hd, c->nkv * hd, c->nkv * hd};
    if (c->kv && c->window) rows[1] = rows[2] = (int)(c->sinks + c->window + (uint32_t)c->tq - 1);
    for (int s = 0; s < 3; s++) {
      const size_t n = (size_t)rows[s] * (size_t)cols[s];
      buf[s] = xalloc(n * sizeof(float));
      for (size_t i = 0; i < n; i++) buf[s][i] = frand(&seed);
      const int64_t ne[2] = {cols[s], rows[s]};
      const int f16 = s > 0 && c->kv == 2;
      if (f16) { /* f16 cache: the same values, converted in place */
        uint16_t *h = (uint16_t *)(void *)buf[s];
        for (size_t i = 0; i < n; i++) h[i] = spr_fp16_from_f32(buf[s][i]);
      }
      spr_test_tensor(&ts[s], f16 ? SPR_DTYPE_F16 : SPR_DTYPE_F32, 2, ne, buf[s]);
    }
    if (c->kv) {
      p->kv_cache = 1;
      p->window = c->window;
      p->sinks = c->sinks;
      p->ring = c->window ? c->window + (uint32_t)c->tq - 1 : 0;
    }
  }
  float *out = xalloc((size_t)c->nh * (size_t)hd * (size_t)c->tq * sizeof(float));
  const int64_t ne_o[2] = {c->nh * hd, c->tq};
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_o, out);
  node.op = SPR_OP_ATTENTION;
  node.n_src = 3;
  for (int i = 0; i < SPR_MAX_SRCS; i++) node.src[i] = i < 3 ? i : -1;
  node.dst = 3;

  /* check + prepare + one run through the harness, then time the op alone */
  struct spr_error err = {SPR_STATUS_OK, ""};
  const char *impl = NULL;
  if (spr_test_op_run(ts, &node, isa, 1, 1, &impl, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", c->name, err.msg);
    exit(1);
  }
  const struct spr_op_def *def = spr_op_get(SPR_OP_ATTENTION);
  node.ws_bytes = def->workspace(ts, &node, n_threads);
  void *scratch = xalloc(node.ws_bytes);
  void *pool_mem = n_threads > 1 ? xalloc(spr_pool_bytes(n_threads)) : NULL;
  struct spr_pool *pool = NULL;
  if (spr_pool_create(pool_mem, n_threads, &pool) != SPR_STATUS_OK) {
    fprintf(stderr, "no pool\n");
    exit(1);
  }
  const struct spr_run_state run = {c->tk - c->tq, c->tq}; /* cached mode: the step that ends at position tk - 1 */
  struct spr_exec x = {.tensors = ts,
                       .run = &run,
                       .pool = pool,
                       .n_threads = n_threads,
                       .scratch = scratch,
                       .scratch_bytes = node.ws_bytes};
  def->run(&x, &node); /* warm-up */
  uint64_t t0 = spr_time_ns();
  def->run(&x, &node);
  const uint64_t one = spr_time_ns() - t0 + 1;
  int reps = (int)(400000000ull / one);
  if (reps < 5) reps = 5;
  if (reps > 1001) reps = 1001;
  uint64_t *ts_ns = xalloc((size_t)reps * sizeof(uint64_t));
  for (int r = 0; r < reps; r++) {
    t0 = spr_time_ns();
    def->run(&x, &node);
    ts_ns[r] = spr_time_ns() - t0;
  }
  qsort(ts_ns, (size_t)reps, sizeof ts_ns[0], cmp_u64);
  const double med_s = (double)ts_ns[reps / 2] * 1e-9;
  const double gflops = (double)def->flops(ts, &node) / med_s * 1e-9;
  const double min_s = (double)ts_ns[0] * 1e-9;
  printf("%-34s threads=%d %-38s %9.4f ms %7.1f GFLOP/s (min %.4f ms %6.1f)", c->name, n_threads, impl, med_s * 1e3,
         gflops, min_s * 1e3, (double)def->flops(ts, &node) / min_s * 1e-9);
  if (c->tq == 1) {
    const double tk_read = c->kv && c->window ? (double)(c->window + c->sinks) : (double)c->tk;
    const double kv_bytes = 2.0 * tk_read * c->nkv * hd * (c->kv == 2 ? 2.0 : 4.0);
    printf("  K/V %.1f GB/s", kv_bytes / med_s * 1e-9);
  }
  printf("  (%d reps)\n", reps);
  fflush(stdout);
  spr_pool_destroy(pool);
  free(pool_mem);
  free(scratch);
  free(ts_ns);
  free(out);
  for (int s = 0; s < 3; s++) free(buf[s]);
}

int main(int argc, char **argv) {
  uint32_t isa = SPR_ISA_ALL;
  if (argc > 1 && spr_isa_mask_parse(argv[1], &isa) != SPR_STATUS_OK) {
    fprintf(stderr, "unknown isa %s\n", argv[1]);
    return 2;
  }
  const int only = argc > 2 ? atoi(argv[2]) : -1;        /* optional: one case index */
  const int only_threads = argc > 3 ? atoi(argv[3]) : 0; /* optional: one thread count */
  const double peak0 = peak_gflops();
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    if (only >= 0 && (size_t)only != i) continue;
    for (int t = 1; t <= 2; t++)
      if (only_threads == 0 || t == only_threads) bench(&k_cases[i], isa, t);
  }
  const double peak1 = peak_gflops();
  if (peak0 > 0.0) printf("single-core AVX-512 FMA peak measured before/after: %.1f / %.1f GFLOP/s\n", peak0, peak1);
  return 0;
}
