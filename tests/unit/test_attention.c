/* tests/unit/test_attention.c — SPR_OP_ATTENTION: every ukernel against the
 * double-precision oracle (spr_f32_attention_ref), thread determinism,
 * check() rejections and flops().
 *
 * Tolerance: outputs are convex combinations of V rows with |v| <= 1, so
 * they lie in [-1, 1]. A ukernel's error comes from f32 logits (relative
 * error ~ eps * sqrt(head_dim) of a logit's magnitude, turned into the same
 * relative error of p), the f32 exp2 polynomial (< 2e-7 relative) and f32
 * sums. We accept |out - ref| <= 2e-5 + 1e-6 * L, where L = |scale| *
 * head_dim * max|q| * max|k| bounds every |logit| (L <= 8 for the ordinary
 * cases: 2.8e-5; the large-logit case has L = 2048: 2.1e-3). */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attention/attention.h"
#include "ops/op.h"
#include "support/op_harness.h"
#include "support/test_util.h"

struct kernel {
  uint32_t isa;
  const char *name;
  uint32_t tile;
};

static const struct kernel k_kernels[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), #fn, (tile)},
#include "ops/attention/attention.inc"
#undef SPR_UKERNEL
};
#define N_KERNELS (sizeof k_kernels / sizeof k_kernels[0])

static int kernel_available(const struct kernel *k) {
  return (spr_cpu_isa() & k->isa) == k->isa;
}

struct attn_case {
  int tq, tk;
  int nh, nkv, hd;
  int causal;
  int fused;   /* one {pad + (nh + 2 nkv) hd + pad, T} tensor for Q, K and V (tq == tk) */
  float scale; /* 0: 1/sqrt(hd) */
  float amp;   /* q, k in [-amp, amp) (0: 1); v in [-1, 1) */
};

/* Buffers of one case: sources, the op's output and the oracle's. */
struct attn_bufs {
  struct spr_tensor ts[4];
  struct spr_node node;
  float *src[3];
  float *out, *ref;
  double *scores;
  int n_src_bufs;
};

static void case_setup(const struct attn_case *c, uint64_t seed, struct attn_bufs *b) {
  memset(b, 0, sizeof *b);
  const int hd = c->hd;
  const float amp = c->amp > 0.0f ? c->amp : 1.0f;
  struct spr_attn_params p = {0};
  p.n_heads = (uint16_t)c->nh;
  p.n_kv_heads = (uint16_t)c->nkv;
  p.head_dim = (uint16_t)hd;
  p.causal = (uint8_t)c->causal;
  p.scale = c->scale != 0.0f ? c->scale : 1.0f / sqrtf((float)hd);
  if (c->fused) {
    assert_int_equal(c->tq, c->tk);
    const int pad = 3, row = pad + (c->nh + 2 * c->nkv) * hd + 2;
    p.q_col = (uint32_t)pad;
    p.k_col = p.q_col + (uint32_t)(c->nh * hd);
    p.v_col = p.k_col + (uint32_t)(c->nkv * hd);
    const size_t n = (size_t)row * (size_t)c->tq;
    b->src[0] = spr_test_aligned_alloc(n * sizeof(float));
    spr_test_fill(b->src[0], n, seed, -amp, amp);
    /* V columns in [-1, 1) */
    for (int i = 0; i < c->tq; i++) {
      float *vr = b->src[0] + (size_t)i * (size_t)row + p.v_col;
      for (int j = 0; j < c->nkv * hd; j++) vr[j] /= amp;
    }
    const int64_t ne[2] = {row, c->tq};
    for (int s = 0; s < 3; s++) spr_test_tensor(&b->ts[s], SPR_DTYPE_F32, 2, ne, b->src[0]);
    b->src[1] = b->src[2] = b->src[0];
    b->n_src_bufs = 1;
  } else {
    const int rows[3] = {c->tq, c->tk, c->tk};
    const int cols[3] = {5 + c->nh * hd, 1 + c->nkv * hd + 2, c->nkv * hd};
    const float range[3] = {amp, amp, 1.0f};
    p.q_col = 5;
    p.k_col = 1;
    p.v_col = 0;
    for (int s = 0; s < 3; s++) {
      const size_t n = (size_t)rows[s] * (size_t)cols[s];
      b->src[s] = spr_test_aligned_alloc(n * sizeof(float));
      spr_test_fill(b->src[s], n, seed + 17u * (uint64_t)s, -range[s], range[s]);
      const int64_t ne[2] = {cols[s], rows[s]};
      spr_test_tensor(&b->ts[s], SPR_DTYPE_F32, 2, ne, b->src[s]);
    }
    b->n_src_bufs = 3;
  }
  const size_t n_out = (size_t)c->nh * (size_t)hd * (size_t)c->tq;
  b->out = spr_test_aligned_alloc(n_out * sizeof(float));
  b->ref = spr_test_aligned_alloc(n_out * sizeof(float));
  for (size_t i = 0; i < n_out; i++) b->out[i] = NAN;
  const int64_t ne_out[2] = {c->nh * hd, c->tq};
  spr_test_tensor(&b->ts[3], SPR_DTYPE_F32, 2, ne_out, b->out);
  b->node.op = SPR_OP_ATTENTION;
  b->node.n_src = 3;
  for (int i = 0; i < SPR_MAX_SRCS; i++) b->node.src[i] = i < 3 ? i : -1;
  b->node.dst = 3;
  b->node.p.attn = p;
  b->scores = malloc((size_t)c->tk * sizeof(double));
  assert_non_null(b->scores);
  spr_f32_attention_ref(&p, (size_t)c->tq, (size_t)c->tk, b->src[0], (size_t)b->ts[0].ne[0], b->src[1],
                        (size_t)b->ts[1].ne[0], b->src[2], (size_t)b->ts[2].ne[0], b->ref, b->scores);
}

static void case_free(struct attn_bufs *b) {
  for (int s = 0; s < b->n_src_bufs; s++) free(b->src[s]);
  free(b->out);
  free(b->ref);
  free(b->scores);
}

static void case_name(const struct attn_case *c, char *buf, size_t len) {
  snprintf(buf, len, "tq=%d tk=%d heads=%d/%d hd=%d causal=%d fused=%d scale=%g amp=%g", c->tq, c->tk, c->nh, c->nkv,
           c->hd, c->causal, c->fused, (double)c->scale, (double)(c->amp > 0.0f ? c->amp : 1.0f));
}

/* Runs the op with kernel k on n_threads; copies the output to `out`
 * (nh*hd*tq floats) when non-NULL; returns the max abs error vs the oracle. */
static double run_case(const struct kernel *k, const struct attn_case *c, int n_threads, float *out) {
  struct attn_bufs b;
  case_setup(c, 1000u + (uint64_t)(c->tq * 131 + c->tk * 7 + c->hd), &b);
  const char *impl = NULL;
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_run(b.ts, &b.node, k->isa, n_threads, 1, &impl, &err);
  char name[160];
  case_name(c, name, sizeof name);
  if (s != SPR_STATUS_OK) fail_msg("%s %s: status %d (%s)", k->name, name, (int)s, err.msg);
  if (impl == NULL || strcmp(impl, k->name) != 0)
    fail_msg("isa mask 0x%x chose %s, expected %s", (unsigned)k->isa, impl ? impl : "(none)", k->name);
  const float amp = c->amp > 0.0f ? c->amp : 1.0f;
  const double L = fabs((double)b.node.p.attn.scale) * c->hd * amp * amp;
  const double tol = 2e-5 + 1e-6 * L;
  const int cols = c->nh * c->hd;
  double max_err = 0.0;
  for (int i = 0; i < c->tq; i++) {
    for (int j = 0; j < cols; j++) {
      const size_t idx = (size_t)i * (size_t)cols + (size_t)j;
      const double e = fabs((double)b.out[idx] - (double)b.ref[idx]);
      if (!(e <= tol))
        fail_msg("%s %s threads=%d: row %d col %d (head %d) got %.9g want %.9g (err %.3g > tol %.3g)", k->name, name,
                 n_threads, i, j, j / c->hd, (double)b.out[idx], (double)b.ref[idx], e, tol);
      if (e > max_err) max_err = e;
    }
  }
  if (out != NULL) memcpy(out, b.out, (size_t)cols * (size_t)c->tq * sizeof(float));
  case_free(&b);
  return max_err;
}

static void run_cases(const struct attn_case *cs, size_t n, const char *what) {
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) {
      print_message("  skip %s (ISA not available)\n", k->name);
      continue;
    }
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
      const double e = run_case(k, &cs[i], 1, NULL);
      if (e > worst) worst = e;
    }
    print_message("  %-40s %-10s %3zu cases, max abs err %.3g\n", k->name, what, n, worst);
  }
}

/* Tq x Tk over {1, tile-1, tile, tile+1, 3 tile+1, odd} (tile = the
 * ukernel's lanes) x {1, KB-1, KB, KB+1, 3 KB+1, odd} (KB = key block),
 * head_dim 20 (not a multiple of any vector or register tile), GQA 2:1. */
static void test_sizes(void **state) {
  (void)state;
  const int kb = SPR_ATTN_KEY_BLOCK;
  const int tks[6] = {1, kb - 1, kb, kb + 1, 3 * kb + 1, 37};
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) {
      print_message("  skip %s (ISA not available)\n", k->name);
      continue;
    }
    const int t = (int)k->tile;
    const int tqs[6] = {1, t - 1, t, t + 1, 3 * t + 1, 19};
    double worst = 0.0;
    for (int a = 0; a < 6; a++) {
      for (int bi = 0; bi < 6; bi++) {
        /* lanes = 2 heads x rows: also cover a 1-head (MHA) variant */
        const struct attn_case c = {tqs[a], tks[bi], (a + bi) % 2 ? 2 : 1, 1, 20, 0, 0, 0.0f, 0.0f};
        const double e = run_case(k, &c, 1, NULL);
        if (e > worst) worst = e;
      }
    }
    print_message("  %-40s sizes      36 cases, max abs err %.3g\n", k->name, worst);
  }
}

static void test_head_dims(void **state) {
  (void)state;
  static const struct attn_case cs[] = {
      {45, 45, 3, 3, 1, 0, 1, 0.0f, 0.0f},  {45, 45, 3, 3, 16, 0, 1, 0.0f, 0.0f},  {45, 45, 3, 3, 32, 0, 1, 0.0f, 0.0f},
      {45, 45, 3, 3, 64, 0, 1, 0.0f, 0.0f}, {45, 45, 3, 3, 20, 0, 1, 0.0f, 0.0f},  {33, 70, 2, 2, 1, 0, 0, 0.0f, 0.0f},
      {33, 70, 2, 2, 16, 0, 0, 0.0f, 0.0f}, {33, 70, 2, 2, 32, 0, 0, 0.0f, 0.0f},  {33, 70, 2, 2, 64, 0, 0, 0.0f, 0.0f},
      {33, 70, 2, 2, 20, 0, 0, 0.0f, 0.0f}, {2, 70, 2, 2, 64, 0, 0, 0.0f, 0.0f},   {2, 70, 2, 2, 20, 0, 0, 0.0f, 0.0f},
      {1, 70, 1, 1, 1, 0, 0, 0.0f, 0.0f},   {1, 70, 1, 1, 7, 0, 0, 0.0f, 0.0f},    {1, 70, 1, 1, 33, 0, 0, 0.0f, 0.0f},
      {50, 50, 4, 4, 16, 0, 1, 0.0f, 0.0f}, {20, 20, 2, 2, 24, 0, 1, -0.3f, 0.0f},
  };
  run_cases(cs, sizeof cs / sizeof cs[0], "head_dim");
}

static void test_gqa(void **state) {
  (void)state;
  static const struct attn_case cs[] = {
      {1, 70, 4, 2, 16, 0, 0, 0.0f, 0.0f},  {5, 70, 4, 2, 16, 0, 0, 0.0f, 0.0f},   {33, 70, 4, 2, 16, 0, 0, 0.0f, 0.0f},
      {1, 70, 4, 1, 16, 0, 0, 0.0f, 0.0f},  {5, 70, 4, 1, 16, 0, 0, 0.0f, 0.0f},   {33, 70, 4, 1, 16, 0, 0, 0.0f, 0.0f},
      {1, 130, 4, 2, 16, 1, 0, 0.0f, 0.0f}, {9, 130, 4, 1, 20, 1, 0, 0.0f, 0.0f},  {40, 40, 4, 2, 16, 1, 1, 0.0f, 0.0f},
      {1, 300, 8, 1, 64, 0, 0, 0.0f, 0.0f}, {3, 300, 8, 1, 64, 1, 0, 0.0f, 0.0f},  {1, 300, 9, 3, 64, 1, 0, 0.0f, 0.0f},
      {2, 100, 40, 1, 8, 0, 0, 0.0f, 0.0f}, {7, 100, 12, 3, 16, 1, 0, 0.0f, 0.0f},
  };
  run_cases(cs, sizeof cs / sizeof cs[0], "gqa");
}

static void test_causal(void **state) {
  (void)state;
  static const struct attn_case cs[] = {
      {1, 200, 2, 2, 16, 1, 0, 0.0f, 0.0f},   {17, 130, 2, 2, 16, 1, 0, 0.0f, 0.0f},
      {33, 197, 2, 1, 32, 1, 0, 0.0f, 0.0f},  {64, 64, 1, 1, 20, 1, 0, 0.0f, 0.0f},
      {100, 100, 3, 3, 16, 1, 1, 0.0f, 0.0f}, {65, 65, 2, 2, 32, 1, 1, 0.0f, 0.0f},
      {1, 1, 2, 2, 16, 1, 1, 0.0f, 0.0f},     {97, 97, 1, 1, 64, 1, 1, 0.0f, 0.0f},
      {31, 32, 2, 2, 16, 1, 0, 0.0f, 0.0f},   {129, 200, 1, 1, 8, 1, 0, 0.0f, 0.0f},
  };
  run_cases(cs, sizeof cs / sizeof cs[0], "causal");
}

/* Every lane count 1..27 (query rows x heads of one kv head), so every
 * row-path lane group (1..4 lanes, 1..2 groups) and every lanes-path vector
 * count is run, causal and not, with and without a head_dim tail. */
static void test_lane_counts(void **state) {
  (void)state;
  struct attn_case cs[2 * 9 * 3];
  size_t n = 0;
  for (int g = 1; g <= 3; g++) {
    for (int tq = 1; tq <= 9; tq++) {
      for (int v = 0; v < 2; v++) {
        const struct attn_case c = {tq, 70 + tq, 2 * g, 2, v ? 64 : 20, v, 0, 0.0f, 0.0f};
        cs[n++] = c;
      }
    }
  }
  run_cases(cs, n, "lanes");
}

/* Logits up to +-2048: softmax must stay finite (no overflow, no NaN). */
static void test_large_logits(void **state) {
  (void)state;
  static const struct attn_case cs[] = {
      {40, 90, 2, 2, 32, 0, 0, 1.0f, 8.0f},
      {33, 33, 2, 1, 32, 1, 1, 1.0f, 8.0f},
      {1, 150, 1, 1, 32, 0, 0, 1.0f, 8.0f},
      {5, 150, 2, 2, 32, 1, 0, -1.0f, 8.0f},
  };
  run_cases(cs, sizeof cs / sizeof cs[0], "large");
}

/* 1, 2 and 3 threads give bit-identical outputs. */
static void test_threads(void **state) {
  (void)state;
  static const struct attn_case cs[] = {
      {97, 97, 3, 3, 20, 0, 1, 0.0f, 0.0f},
      {70, 150, 4, 2, 16, 1, 0, 0.0f, 0.0f},
      {1, 200, 8, 2, 32, 1, 0, 0.0f, 0.0f},
  };
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) continue;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
      const struct attn_case *c = &cs[i];
      const size_t n = (size_t)c->nh * (size_t)c->hd * (size_t)c->tq;
      float *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float)), *o3 = malloc(n * sizeof(float));
      assert_non_null(o1);
      assert_non_null(o2);
      assert_non_null(o3);
      run_case(k, c, 1, o1);
      run_case(k, c, 2, o2);
      run_case(k, c, 3, o3);
      char name[160];
      case_name(c, name, sizeof name);
      if (memcmp(o1, o2, n * sizeof(float)) != 0 || memcmp(o1, o3, n * sizeof(float)) != 0)
        fail_msg("%s %s: outputs differ between 1, 2 and 3 threads", k->name, name);
      free(o1);
      free(o2);
      free(o3);
    }
  }
}

/* check() rejects inconsistent nodes. */
static void test_check(void **state) {
  (void)state;
  const struct spr_op_def *def = spr_op_get(SPR_OP_ATTENTION);
  assert_non_null(def);
  float buf[4];
  struct spr_tensor ts[5];
  struct spr_node n;
  struct spr_error err;
  /* a valid base: separate Q {2*8, 5}, K {8, 7}, V {8, 7}, out {16, 5}; 2 heads, 1 kv head, hd 8 */
#define RESET()                                                           \
  do {                                                                    \
    const int64_t ne_q[2] = {16, 5}, ne_k[2] = {8, 7}, ne_o[2] = {16, 5}; \
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_q, buf);                 \
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_k, buf);                 \
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_k, buf);                 \
    spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_o, buf);                 \
    spr_test_tensor(&ts[4], SPR_DTYPE_F16, 2, ne_k, buf);                 \
    memset(&n, 0, sizeof n);                                              \
    n.op = SPR_OP_ATTENTION;                                              \
    n.n_src = 3;                                                          \
    n.src[0] = 0;                                                         \
    n.src[1] = 1;                                                         \
    n.src[2] = 2;                                                         \
    for (int i_ = 3; i_ < SPR_MAX_SRCS; i_++) n.src[i_] = -1;             \
    n.dst = 3;                                                            \
    n.p.attn.n_heads = 2;                                                 \
    n.p.attn.n_kv_heads = 1;                                              \
    n.p.attn.head_dim = 8;                                                \
    n.p.attn.scale = 0.5f;                                                \
  } while (0)
#define EXPECT(want)                                                                                             \
  do {                                                                                                           \
    err.status = SPR_STATUS_OK;                                                                                  \
    err.msg[0] = 0;                                                                                              \
    const enum spr_status s_ = def->check(ts, &n, &err);                                                         \
    if (s_ != (want)) fail_msg("line %d: status %d, expected %d (%s)", __LINE__, (int)s_, (int)(want), err.msg); \
    if (s_ != SPR_STATUS_OK && err.msg[0] == 0) fail_msg("line %d: no message", __LINE__);                       \
  } while (0)

  RESET();
  EXPECT(SPR_STATUS_OK);
  n.p.attn.causal = 1;
  EXPECT(SPR_STATUS_OK); /* 5 queries, 7 keys */

  RESET();
  n.p.attn.head_dim = 0;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.n_kv_heads = 0;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.n_heads = 3; /* 3 % 2 */
  n.p.attn.n_kv_heads = 2;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.q_col = 1; /* Q heads [1, 17) in a row of 16 */
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.k_col = 1;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.v_col = 1;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.n_kv_heads = 2; /* K/V rows hold only one kv head */
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.q_col = 0xffffffffu; /* no wrap-around */
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  ts[2].ne[1] = 6; /* K rows != V rows */
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.src[1] = 4; /* f16 K */
  EXPECT(SPR_STATUS_UNSUPPORTED);
  RESET();
  ts[3].type = SPR_DTYPE_F16;
  EXPECT(SPR_STATUS_UNSUPPORTED);
  RESET();
  ts[3].ne[0] = 15; /* wrong output width */
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  ts[3].ne[1] = 4; /* wrong output rows */
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  ts[0].ne[2] = 2; /* not 2-D */
  ts[3].ne[2] = 2;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.causal = 1; /* 5 queries against 4 keys */
  ts[1].ne[1] = ts[2].ne[1] = 4;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.p.attn.scale = NAN;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET();
  n.src[2] = -1;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
#undef EXPECT
#undef RESET
}

static void test_flops(void **state) {
  (void)state;
  const struct spr_op_def *def = spr_op_get(SPR_OP_ATTENTION);
  struct spr_tensor ts[4];
  struct spr_node n;
  memset(&n, 0, sizeof n);
  const int64_t ne_q[2] = {3 * 64, 10}, ne_k[2] = {64, 30}, ne_o[2] = {3 * 64, 10};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_q, NULL);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_k, NULL);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_k, NULL);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_o, NULL);
  n.op = SPR_OP_ATTENTION;
  n.n_src = 3;
  n.src[1] = 1;
  n.src[2] = 2;
  n.dst = 3;
  n.p.attn.n_heads = 3;
  n.p.attn.n_kv_heads = 1;
  n.p.attn.head_dim = 64;
  assert_int_equal(def->flops(ts, &n), 4ull * 3 * 64 * 10 * 30);
  n.p.attn.causal = 1; /* query i sees i + 21 keys: sum 21..30 = 255 */
  assert_int_equal(def->flops(ts, &n), 4ull * 3 * 64 * 255);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check),     cmocka_unit_test(test_flops),        cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_head_dims), cmocka_unit_test(test_gqa),          cmocka_unit_test(test_lane_counts),
      cmocka_unit_test(test_causal),    cmocka_unit_test(test_large_logits), cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
