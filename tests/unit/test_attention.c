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
 * cases: 2.8e-5; the large-logit case has L = 2048: 2.1e-3).
 *
 * Cached mode (p.kv_cache): sequences of steps run as the LLM runs them:
 * each step writes its K/V rows with SPR_OP_KV_STORE (f32 or f16 cache,
 * linear or windowed ring = window + batch - 1, wrapping several times),
 * then attends its queries; every step is compared with
 * spr_f32_attention_cached_ref (by absolute position, over the values the
 * cache holds) at the same tolerance. Unwritten cache rows hold NaN, so a
 * read of a row the step must not use shows up. A window covering the whole
 * sequence must give the bits of no window; 1 vs 2 threads bit-identical. */
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
#include "ops/common/fp16.h"
#include "ops/op.h"
#include "sparrow/gguf.h"
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

/* ---- cached mode ------------------------------------------------------------ */

struct cached_cfg {
  int nh, nkv, hd;
  enum spr_dtype kv_type;
  uint32_t window, sinks; /* ring = window + batch - 1 */
  int batch;              /* Q / output capacity (largest step) */
};

/* One sequence: its steps (tokens per step) and all its data. */
struct cached_seq {
  const struct cached_cfg *cfg;
  const int *steps;
  size_t n_steps;
  size_t n_pos; /* positions in all */
  size_t cap;   /* cache rows */
  struct spr_attn_params p;
  float *q, *k, *v; /* [n_pos][row] of every position */
  float *kh, *vh;   /* the values the cache holds (f16-rounded for an f16 cache) */
  float *ref;       /* [n_pos][nh*hd] the oracle's output of every position */
};

static void cached_name(const struct cached_seq *s, char *buf, size_t len) {
  const struct cached_cfg *c = s->cfg;
  int o = snprintf(buf, len, "heads=%d/%d hd=%d %s window=%u sinks=%u ring=%u steps=", c->nh, c->nkv, c->hd,
                   spr_dtype_name(c->kv_type), (unsigned)c->window, (unsigned)c->sinks, (unsigned)s->p.ring);
  for (size_t i = 0; i < s->n_steps && o > 0 && (size_t)o < len; i++)
    o += snprintf(buf + o, len - (size_t)o, "%s%d", i ? "," : "", s->steps[i]);
}

static void cached_seq_init(struct cached_seq *s, const struct cached_cfg *c, const int *steps, size_t n_steps,
                            uint64_t seed) {
  memset(s, 0, sizeof *s);
  s->cfg = c;
  s->steps = steps;
  s->n_steps = n_steps;
  for (size_t i = 0; i < n_steps; i++) s->n_pos += (size_t)steps[i];
  s->p.n_heads = (uint16_t)c->nh;
  s->p.n_kv_heads = (uint16_t)c->nkv;
  s->p.head_dim = (uint16_t)c->hd;
  s->p.causal = 1;
  s->p.scale = 1.0f / sqrtf((float)c->hd);
  s->p.kv_cache = 1;
  s->p.window = c->window;
  s->p.sinks = c->window ? c->sinks : 0;
  s->p.ring = c->window ? c->window + (uint32_t)c->batch - 1 : 0;
  /* 2 rows more than the geometry uses: they are never written (NaN), so a
   * read past the ring's end shows up */
  s->cap = c->window ? s->p.sinks + s->p.ring + 2 : s->n_pos + 3;
  const size_t qrow = (size_t)c->nh * (size_t)c->hd, kvrow = (size_t)c->nkv * (size_t)c->hd;
  s->q = malloc(s->n_pos * qrow * sizeof(float));
  s->k = malloc(s->n_pos * kvrow * sizeof(float));
  s->v = malloc(s->n_pos * kvrow * sizeof(float));
  s->kh = malloc(s->n_pos * kvrow * sizeof(float));
  s->vh = malloc(s->n_pos * kvrow * sizeof(float));
  s->ref = malloc(s->n_pos * qrow * sizeof(float));
  double *scores = malloc(s->n_pos * sizeof(double));
  assert_true(s->q && s->k && s->v && s->kh && s->vh && s->ref && scores);
  spr_test_fill(s->q, s->n_pos * qrow, seed, -1.0f, 1.0f);
  spr_test_fill(s->k, s->n_pos * kvrow, seed + 1, -1.0f, 1.0f);
  spr_test_fill(s->v, s->n_pos * kvrow, seed + 2, -1.0f, 1.0f);
  for (size_t i = 0; i < s->n_pos * kvrow; i++) {
    const int h = c->kv_type == SPR_DTYPE_F16;
    s->kh[i] = h ? spr_fp16_to_f32(spr_fp16_from_f32(s->k[i])) : s->k[i];
    s->vh[i] = h ? spr_fp16_to_f32(spr_fp16_from_f32(s->v[i])) : s->v[i];
  }
  size_t n_past = 0;
  for (size_t st = 0; st < n_steps; st++) {
    spr_f32_attention_cached_ref(&s->p, n_past, (size_t)steps[st], s->q + n_past * qrow, qrow, s->kh, s->vh, kvrow,
                                 s->ref + n_past * qrow, scores);
    n_past += (size_t)steps[st];
  }
  free(scores);
}

static void cached_seq_free(struct cached_seq *s) {
  free(s->q);
  free(s->k);
  free(s->v);
  free(s->kh);
  free(s->vh);
  free(s->ref);
}

static void set_rows(struct spr_tensor *t, int64_t rows) {
  t->ne[1] = rows;
  t->nbytes = spr_tensor_nbytes(t->type, t->ne, SPR_MAX_DIMS);
}

/* Runs the sequence with kernel k on n_threads, step by step as the LLM
 * does (KV_STORE K, KV_STORE V, ATTENTION); out receives every position's
 * output ([n_pos][nh*hd], may be NULL). Returns the max abs error. */
static double cached_run(const struct kernel *k, const struct cached_seq *s, int n_threads, float *out) {
  const struct cached_cfg *c = s->cfg;
  const size_t qrow = (size_t)c->nh * (size_t)c->hd, kvrow = (size_t)c->nkv * (size_t)c->hd, B = (size_t)c->batch;
  const size_t esz = c->kv_type == SPR_DTYPE_F16 ? 2 : 4;
  float *qb = spr_test_aligned_alloc(B * qrow * sizeof(float)), *ob = spr_test_aligned_alloc(B * qrow * sizeof(float));
  float *kb = spr_test_aligned_alloc(B * kvrow * sizeof(float)),
        *vb = spr_test_aligned_alloc(B * kvrow * sizeof(float));
  void *kc = spr_test_aligned_alloc(s->cap * kvrow * esz), *vc = spr_test_aligned_alloc(s->cap * kvrow * esz);
  assert_true(qb && ob && kb && vb && kc && vc);
  memset(kc, 0xff, s->cap * kvrow * esz); /* NaN in f32 and f16 */
  memset(vc, 0xff, s->cap * kvrow * esz);
  struct spr_tensor ts[6];
  const int64_t ne_q[2] = {(int64_t)qrow, (int64_t)B}, ne_kv[2] = {(int64_t)kvrow, (int64_t)B},
                ne_c[2] = {(int64_t)kvrow, (int64_t)s->cap};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_q, qb);
  spr_test_tensor(&ts[1], c->kv_type, 2, ne_c, kc);
  spr_test_tensor(&ts[2], c->kv_type, 2, ne_c, vc);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_q, ob);
  spr_test_tensor(&ts[4], SPR_DTYPE_F32, 2, ne_kv, kb);
  spr_test_tensor(&ts[5], SPR_DTYPE_F32, 2, ne_kv, vb);
  const int dyn[4] = {0, 3, 4, 5};
  for (int i = 0; i < 4; i++) {
    ts[dyn[i]].flags = SPR_TENSOR_DYN_ROWS;
    ts[dyn[i]].max_rows = (int32_t)B;
  }
  ts[1].role = ts[2].role = SPR_ROLE_STATE;
  struct spr_node nodes[3];
  memset(nodes, 0, sizeof nodes);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < SPR_MAX_SRCS; j++) nodes[i].src[j] = -1;
  const struct spr_kv_params kvp = {s->p.window, s->p.sinks, s->p.ring, 0};
  nodes[0].op = nodes[1].op = SPR_OP_KV_STORE;
  nodes[0].n_src = nodes[1].n_src = 1;
  nodes[0].src[0] = 4;
  nodes[0].dst = 1;
  nodes[1].src[0] = 5;
  nodes[1].dst = 2;
  nodes[0].p.kv = nodes[1].p.kv = kvp;
  nodes[2].op = SPR_OP_ATTENTION;
  nodes[2].n_src = 3;
  nodes[2].src[0] = 0;
  nodes[2].src[1] = 1;
  nodes[2].src[2] = 2;
  nodes[2].dst = 3;
  nodes[2].p.attn = s->p;
  char name[256];
  cached_name(s, name, sizeof name);
  struct spr_test_op h[3];
  for (int i = 0; i < 3; i++) {
    struct spr_error err = {SPR_STATUS_OK, ""};
    const enum spr_status st = spr_test_op_setup(&h[i], ts, &nodes[i], i == 2 ? k->isa : SPR_ISA_ALL, n_threads, &err);
    if (st != SPR_STATUS_OK) fail_msg("%s %s: node %d status %d (%s)", k->name, name, i, (int)st, err.msg);
  }
  if (nodes[2].impl_name == NULL || strcmp(nodes[2].impl_name, k->name) != 0)
    fail_msg("isa mask 0x%x chose %s, expected %s", (unsigned)k->isa, nodes[2].impl_name, k->name);
  const double tol = 2e-5 + 1e-6 * (double)s->p.scale * c->hd;
  double max_err = 0.0;
  size_t n_past = 0;
  for (size_t st = 0; st < s->n_steps; st++) {
    const size_t nt = (size_t)s->steps[st];
    memcpy(qb, s->q + n_past * qrow, nt * qrow * sizeof(float));
    memcpy(kb, s->k + n_past * kvrow, nt * kvrow * sizeof(float));
    memcpy(vb, s->v + n_past * kvrow, nt * kvrow * sizeof(float));
    for (int i = 0; i < 4; i++) set_rows(&ts[dyn[i]], (int64_t)nt);
    for (int i = 0; i < 3; i++) {
      h[i].run.n_past = (int32_t)n_past;
      h[i].run.n_tokens = (int32_t)nt;
      spr_test_op_exec(&h[i]);
    }
    for (size_t t = 0; t < nt; t++) {
      for (size_t j = 0; j < qrow; j++) {
        const float got = ob[t * qrow + j], want = s->ref[(n_past + t) * qrow + j];
        const double e = fabs((double)got - (double)want);
        if (!(e <= tol))
          fail_msg(
              "%s %s threads=%d: step %zu (n_past %zu, %zu rows) row %zu col %zu (head %zu) got %.9g want %.9g "
              "(err %.3g > tol %.3g)",
              k->name, name, n_threads, st, n_past, nt, t, j, j / (size_t)c->hd, (double)got, (double)want, e, tol);
        if (e > max_err) max_err = e;
      }
    }
    if (out != NULL) memcpy(out + n_past * qrow, ob, nt * qrow * sizeof(float));
    n_past += nt;
  }
  for (int i = 0; i < 3; i++) spr_test_op_teardown(&h[i]);
  free(qb);
  free(ob);
  free(kb);
  free(vb);
  free(kc);
  free(vc);
  return max_err;
}

/* Every (n_past, Tq) in {0, 5, 63} x {1, 7, 64}: a prefill of n_past
 * tokens, the step under test, then steps that run the ring past its wrap
 * (positions beyond sinks + ring for every windowed geometry below); steps
 * of 2 and 3 rows give tasks of a few lanes (the row path) with a window. */
static const int k_sched[9][6] = {
    {1, 64, 2, 27, 1, 0}, {7, 64, 3, 27, 0, 0}, {64, 3, 27, 1, 0, 0}, {5, 1, 64, 2, 28, 0}, {5, 7, 64, 3, 27, 0},
    {5, 64, 2, 28, 1, 0}, {63, 1, 64, 1, 0, 0}, {63, 7, 64, 2, 0, 0}, {63, 64, 1, 7, 3, 0},
};

static size_t sched_len(const int *s) {
  size_t n = 0;
  while (n < 6 && s[n] > 0) n++;
  return n;
}

static void test_cached(void **state) {
  (void)state;
  const int gqa[2][3] = {{4, 2, 16}, {8, 1, 16}};
  const uint32_t win[5][2] = {{0, 0}, {4, 0}, {4, 2}, {16, 0}, {16, 2}};
  const enum spr_dtype types[2] = {SPR_DTYPE_F32, SPR_DTYPE_F16};
  double worst[N_KERNELS] = {0};
  int n_seq = 0;
  for (int ti = 0; ti < 2; ti++) {
    for (int gi = 0; gi < 2; gi++) {
      for (int wi = 0; wi < 5; wi++) {
        const struct cached_cfg cfg = {gqa[gi][0], gqa[gi][1], gqa[gi][2], types[ti], win[wi][0], win[wi][1], 64};
        for (int si = 0; si < 9; si++) {
          struct cached_seq s;
          cached_seq_init(&s, &cfg, k_sched[si], sched_len(k_sched[si]), 500u + (uint64_t)(si * 7 + wi));
          for (size_t ki = 0; ki < N_KERNELS; ki++) {
            if (!kernel_available(&k_kernels[ki])) continue;
            const double e = cached_run(&k_kernels[ki], &s, 1, NULL);
            if (e > worst[ki]) worst[ki] = e;
          }
          cached_seq_free(&s);
          n_seq++;
        }
      }
    }
  }
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    if (!kernel_available(&k_kernels[ki])) {
      print_message("  skip %s (ISA not available)\n", k_kernels[ki].name);
      continue;
    }
    print_message("  %-40s cached     %3d sequences, max abs err %.3g\n", k_kernels[ki].name, n_seq, worst[ki]);
  }
}

/* Decode-like shapes: head_dim 64 (TinyLlama's 8 query heads per kv head)
 * and 20, caches longer than a gather chunk, single-token steps after a
 * prefill. */
static void test_cached_decode(void **state) {
  (void)state;
  static const int steps_a[] = {64, 64, 64, 1, 1, 3, 1};
  static const int steps_b[] = {40, 1, 1, 1, 2, 1, 1};
  const struct cached_cfg cfgs[] = {
      {8, 1, 64, SPR_DTYPE_F16, 0, 0, 64}, {8, 1, 64, SPR_DTYPE_F32, 0, 0, 64}, {8, 2, 64, SPR_DTYPE_F16, 150, 4, 64},
      {6, 3, 20, SPR_DTYPE_F16, 0, 0, 64}, {6, 3, 20, SPR_DTYPE_F32, 9, 1, 40},
  };
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
    struct cached_seq s;
    const int *steps = i < 3 ? steps_a : steps_b;
    const size_t n = i < 3 ? sizeof steps_a / sizeof steps_a[0] : sizeof steps_b / sizeof steps_b[0];
    cached_seq_init(&s, &cfgs[i], steps, n, 900u + i);
    for (size_t ki = 0; ki < N_KERNELS; ki++)
      if (kernel_available(&k_kernels[ki])) cached_run(&k_kernels[ki], &s, 1, NULL);
    cached_seq_free(&s);
  }
}

/* A window that covers the whole sequence gives the bits of no window, and
 * 1 and 2 threads give the same bits (windowed and not). */
static void test_cached_exact(void **state) {
  (void)state;
  static const int steps[] = {5, 64, 1, 7, 40, 1};
  const size_t n_steps = sizeof steps / sizeof steps[0];
  const enum spr_dtype types[2] = {SPR_DTYPE_F32, SPR_DTYPE_F16};
  for (int ti = 0; ti < 2; ti++) {
    /* no window; windows 512 (> the 118 positions) with 0 and 2 sinks; window 4 with 2 sinks */
    const struct cached_cfg cfgs[4] = {{8, 2, 16, types[ti], 0, 0, 64},
                                       {8, 2, 16, types[ti], 512, 0, 64},
                                       {8, 2, 16, types[ti], 512, 2, 64},
                                       {8, 2, 16, types[ti], 4, 2, 64}};
    struct cached_seq s[4];
    for (int i = 0; i < 4; i++) cached_seq_init(&s[i], &cfgs[i], steps, n_steps, 77);
    const size_t n = s[0].n_pos * 8 * 16;
    float *o0 = malloc(n * sizeof(float)), *o1 = malloc(n * sizeof(float));
    assert_true(o0 && o1);
    for (size_t ki = 0; ki < N_KERNELS; ki++) {
      const struct kernel *k = &k_kernels[ki];
      if (!kernel_available(k)) continue;
      cached_run(k, &s[0], 1, o0);
      for (int i = 1; i <= 2; i++) {
        cached_run(k, &s[i], 1, o1);
        if (memcmp(o0, o1, n * sizeof(float)) != 0)
          fail_msg("%s %s: window 512 sinks %u differs from no window", k->name, spr_dtype_name(types[ti]),
                   (unsigned)cfgs[i].sinks);
      }
      cached_run(k, &s[1], 2, o1);
      if (memcmp(o0, o1, n * sizeof(float)) != 0)
        fail_msg("%s %s window 512: 1 and 2 threads differ", k->name, spr_dtype_name(types[ti]));
      cached_run(k, &s[3], 1, o0);
      cached_run(k, &s[3], 2, o1);
      if (memcmp(o0, o1, n * sizeof(float)) != 0)
        fail_msg("%s %s window 4: 1 and 2 threads differ", k->name, spr_dtype_name(types[ti]));
    }
    for (int i = 0; i < 4; i++) cached_seq_free(&s[i]);
    free(o0);
    free(o1);
  }
}

/* The f16 -> f32 row converters: every f16 value, then sizes and strides. */
static void test_f16_rows(void **state) {
  (void)state;
  static const struct spr_f16_rows_ukernel cvts[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/attention/f16_rows.inc"
#undef SPR_UKERNEL
  };
  uint16_t *x = malloc(65536 * sizeof(uint16_t));
  float *y = malloc(65536 * sizeof(float));
  assert_true(x && y);
  for (size_t i = 0; i < 65536; i++) x[i] = (uint16_t)i;
  for (size_t ki = 0; ki < sizeof cvts / sizeof cvts[0]; ki++) {
    const struct spr_f16_rows_ukernel *k = &cvts[ki];
    if ((spr_cpu_isa() & k->isa) != k->isa) {
      print_message("  skip %s (ISA not available)\n", k->name);
      continue;
    }
    k->fn(256, 256, x, 256, y, 256);
    for (size_t i = 0; i < 65536; i++) {
      const float want = spr_fp16_to_f32((uint16_t)i);
      if (isnan(want) ? !isnan(y[i]) : memcmp(&y[i], &want, sizeof want) != 0)
        fail_msg("%s: f16 0x%04zx -> %g, want %g", k->name, i, (double)y[i], (double)want);
    }
    const size_t t = k->tile, sizes[6] = {1, t > 1 ? t - 1 : 2, t, t + 1, 3 * t + 1, 37};
    for (int si = 0; si < 6; si++) {
      const size_t n = sizes[si], rows = 5, xs = n + 3, ys = n + 1;
      for (size_t i = 0; i < rows * ys; i++) y[i] = -7.0f;
      k->fn(rows, n, x + 1000, xs, y, ys);
      for (size_t r = 0; r < rows; r++)
        for (size_t cc = 0; cc < ys; cc++) {
          const float want = cc < n ? spr_fp16_to_f32(x[1000 + r * xs + cc]) : -7.0f;
          if (memcmp(&y[r * ys + cc], &want, sizeof want) != 0)
            fail_msg("%s n=%zu: row %zu col %zu got %g want %g", k->name, n, r, cc, (double)y[r * ys + cc],
                     (double)want);
        }
    }
  }
  free(x);
  free(y);
}

/* The f16 K/V row-path ukernels (cached decode), called directly: lanes
 * (query heads x rows) 1..the entry's tile, head_dim and key counts
 * at the edges of the vector and key-block sizes, K/V rows with padding
 * between them (strides), against the oracle over the f16-rounded K/V. */
static void test_f16_attention(void **state) {
  (void)state;
  static const struct spr_attn_ukernel ks[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/attention/attention_f16.inc"
#undef SPR_UKERNEL
  };
  static const int lanes[][2] = {{1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {8, 1}, {3, 2}, {2, 4}};
  const int kb = SPR_ATTN_KEY_BLOCK;
  float *scratch = spr_test_aligned_alloc(spr_attn_scratch_floats(80) * sizeof(float));
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
    const struct spr_attn_ukernel *k = &ks[ki];
    if ((spr_cpu_isa() & k->isa) != k->isa) {
      print_message("  skip %s (ISA not available)\n", k->name);
      continue;
    }
    /* head_dim at the vector edges of every ISA (1, 4, 8, 16 floats) */
    const int hds[8] = {1, 3, 4, 7, 15, 17, 64, 80};
    const int nks[6] = {1, kb - 1, kb, kb + 1, 3 * kb + 1, 37};
    double worst = 0.0;
    int n_cases = 0;
    for (size_t li = 0; li < sizeof lanes / sizeof lanes[0]; li++) {
      if (lanes[li][0] * lanes[li][1] > (int)k->tile) continue;
      for (int hi = 0; hi < 8; hi++) {
        for (int ni = 0; ni < 6; ni++, n_cases++) {
          const int ng = lanes[li][0], nq = lanes[li][1], hd = hds[hi], nk = nks[ni] < nq ? nq : nks[ni];
          const size_t qs = (size_t)ng * (size_t)hd + 2, kvs = (size_t)hd + 3, os = (size_t)ng * (size_t)hd;
          float *q = malloc((size_t)nq * qs * sizeof(float)), *kf = malloc((size_t)nk * kvs * sizeof(float));
          float *vf = malloc((size_t)nk * kvs * sizeof(float)), *o = malloc((size_t)nq * os * sizeof(float));
          float *ref = malloc((size_t)nq * os * sizeof(float));
          uint16_t *kh = malloc((size_t)nk * kvs * sizeof(uint16_t)), *vh = malloc((size_t)nk * kvs * sizeof(uint16_t));
          double *sc = malloc((size_t)nk * sizeof(double));
          assert_true(q && kf && vf && o && ref && kh && vh && sc);
          const uint64_t seed = 4000u + (uint64_t)n_cases;
          spr_test_fill(q, (size_t)nq * qs, seed, -1.0f, 1.0f);
          spr_test_fill(kf, (size_t)nk * kvs, seed + 1, -1.0f, 1.0f);
          spr_test_fill(vf, (size_t)nk * kvs, seed + 2, -1.0f, 1.0f);
          for (size_t i = 0; i < (size_t)nk * kvs; i++) {
            kh[i] = spr_fp16_from_f32(kf[i]), vh[i] = spr_fp16_from_f32(vf[i]);
            kf[i] = spr_fp16_to_f32(kh[i]), vf[i] = spr_fp16_to_f32(vh[i]);
          }
          /* causal: row i sees keys j <= nk - nq + i (the rows of a decode step) */
          struct spr_attn_params p = {0};
          p.n_heads = (uint16_t)ng, p.n_kv_heads = 1, p.head_dim = (uint16_t)hd, p.causal = 1;
          p.scale = 1.0f / sqrtf((float)hd), p.q_col = 1, p.k_col = 2, p.v_col = 2;
          spr_f32_attention_ref(&p, (size_t)nq, (size_t)nk, q, qs, kf, kvs, vf, kvs, ref, sc);
          for (size_t i = 0; i < (size_t)nq * os; i++) o[i] = NAN;
          struct spr_f32_attn_task tk;
          memset(&tk, 0, sizeof tk);
          tk.head_dim = (size_t)hd, tk.ng = (size_t)ng, tk.nq = (size_t)nq, tk.nk = (size_t)nk;
          tk.lim0 = nk - nq, tk.ns = (size_t)nk, tk.lo0 = 0, tk.first = tk.last = 1, tk.scale = p.scale;
          tk.q = q + 1, tk.q_stride = qs, tk.o = o, tk.o_stride = os;
          tk.k16 = kh + 2, tk.v16 = vh + 2, tk.k_stride = kvs, tk.v_stride = kvs;
          k->fn(&tk, scratch);
          for (size_t i = 0; i < (size_t)nq * os; i++) {
            const double e = fabs((double)o[i] - (double)ref[i]), tol = 2e-5 + 1e-6 * p.scale * hd;
            if (!(e <= tol))
              fail_msg("%s lanes %dx%d hd=%d nk=%d: row %zu col %zu got %.9g want %.9g (err %.3g)", k->name, ng, nq, hd,
                       nk, i / os, i % os, (double)o[i], (double)ref[i], e);
            if (e > worst) worst = e;
          }
          free(q), free(kf), free(vf), free(o), free(ref), free(kh), free(vh), free(sc);
        }
      }
    }
    print_message("  %-40s f16 rows  %3d cases, max abs err %.3g\n", k->name, n_cases, worst);
  }
  free(scratch);
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

  /* cached mode: K/V caches of 7 rows, f32 or f16 */
#define RESET_CACHED()     \
  do {                     \
    RESET();               \
    n.p.attn.kv_cache = 1; \
    n.p.attn.causal = 1;   \
  } while (0)
  RESET_CACHED();
  EXPECT(SPR_STATUS_OK);
  n.src[1] = 4; /* f16 K */
  EXPECT(SPR_STATUS_OK);
  n.src[2] = 4; /* f16 V */
  EXPECT(SPR_STATUS_OK);
  n.p.attn.window = 4;
  n.p.attn.sinks = 1;
  n.p.attn.ring = 6;
  EXPECT(SPR_STATUS_OK);
  n.p.attn.ring = 0;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  n.p.attn.ring = 6;
  n.p.attn.window = 0xffffffffu;
  EXPECT(SPR_STATUS_UNSUPPORTED);
  RESET_CACHED();
  ts[1].ne[1] = ts[2].ne[1] = 3; /* fewer cache rows than the step's queries: allowed (rows are a run-time matter) */
  EXPECT(SPR_STATUS_OK);
  RESET_CACHED();
  n.p.attn.causal = 0;
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  RESET_CACHED();
  ts[0].type = SPR_DTYPE_F16; /* Q must be f32 */
  EXPECT(SPR_STATUS_UNSUPPORTED);
  RESET_CACHED();
  ts[1].type = SPR_DTYPE_Q8_0;
  EXPECT(SPR_STATUS_UNSUPPORTED);
  RESET_CACHED();
  ts[2].ne[1] = 6; /* K rows != V rows */
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
#undef RESET_CACHED
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
  n.p.attn.kv_cache = 1; /* the step that fills the 30-row cache: n_past 20, the same pairs */
  assert_int_equal(def->flops(ts, &n), 4ull * 3 * 64 * 255);
  n.p.attn.window = 8; /* min(i + 1, sinks + window) = 10 keys per query */
  n.p.attn.sinks = 2;
  n.p.attn.ring = 17;
  assert_int_equal(def->flops(ts, &n), 4ull * 3 * 64 * 100);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check),        cmocka_unit_test(test_flops),         cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_head_dims),    cmocka_unit_test(test_gqa),           cmocka_unit_test(test_lane_counts),
      cmocka_unit_test(test_causal),       cmocka_unit_test(test_large_logits),  cmocka_unit_test(test_threads),
      cmocka_unit_test(test_f16_rows),     cmocka_unit_test(test_cached),        cmocka_unit_test(test_cached_decode),
      cmocka_unit_test(test_cached_exact), cmocka_unit_test(test_f16_attention),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
