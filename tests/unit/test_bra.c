/* tests/unit/test_bra.c — SPR_OP_BRA (bi-level routing attention).
 *
 *  - spr_bra_topk against hand-listed selections (ties: lower index first,
 *    NaN as -inf, output in increasing index order);
 *  - routing and the region layout through the whole op, every ukernel and
 *    the oracle: K constant per region (region r's keys = e_r), Q = a chosen
 *    region mean u_p plus per-token offsets that cancel in the mean, V
 *    one-hot in the token index; the output of query t is then, in closed
 *    form, exp(scale q_t[r]) / (M sum_{r' kept} exp(scale q_t[r'])) on every
 *    token of a kept region r and 0 elsewhere, with hand-listed kept sets
 *    (including ties and sets without the region itself);
 *  - every ukernel against the double oracle over region sizes M in {1,
 *    tile-1, tile, tile+1, 3*tile+1, odd} for the largest tile (and the
 *    small ones), topk 1 .. all regions, head dims with and without a vector
 *    tail, v_dim != qk_dim, fused qkv rows with column offsets or separate
 *    tensors, routing data in the output rows or (small regions) in scratch;
 *    scratch is filled with NaN bytes before each run;
 *  - 1, 2 and 3 threads bit-identical; check() rejections; flops(); the
 *    workspace at BiFormer-T's shapes is at most dense attention's;
 *  - golden outputs of an independent PyTorch implementation of BiFormer's
 *    legacy BRA (tools/reference/sparse_op_fixtures.py, torch.gather of the
 *    top-k K/V copies as upstream) for every ukernel, 1 and 2 threads.
 *
 * Tolerance: outputs are convex combinations of V in [-1, 1]; |out - ref| <=
 * 2e-5 + 1e-6 * L with L = scale * head_dim * amp^2 bounding every |logit|. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/bra/bra.h"
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
#include "ops/bra/bra.inc"
#undef SPR_UKERNEL
};
#define N_KERNELS (sizeof k_kernels / sizeof k_kernels[0])

static int kernel_available(const struct kernel *k) {
  return (spr_cpu_isa() & k->isa) == k->isa;
}

/* ---- routing selection --------------------------------------------------------- */

static void expect_topk(const double *a, size_t n, size_t topk, const int32_t *want) {
  int32_t sel[64];
  spr_bra_topk(a, n, topk, sel);
  for (size_t i = 0; i < topk; i++)
    if (sel[i] != want[i]) fail_msg("topk n=%zu k=%zu: sel[%zu] = %d, expected %d", n, topk, i, sel[i], want[i]);
}

static void test_topk(void **state) {
  (void)state;
  {
    const double a[6] = {0.5, 2.0, -1.0, 3.0, 2.0, 0.0};
    const int32_t w1[1] = {3}, w2[2] = {1, 3}, w3[3] = {1, 3, 4}, w4[4] = {0, 1, 3, 4}, w6[6] = {0, 1, 2, 3, 4, 5};
    expect_topk(a, 6, 1, w1);
    expect_topk(a, 6, 2, w2); /* 3.0, then the tie 2.0 @1 before 2.0 @4 */
    expect_topk(a, 6, 3, w3);
    expect_topk(a, 6, 4, w4);
    expect_topk(a, 6, 6, w6);
  }
  { /* all equal: the lowest indices */
    const double a[5] = {1, 1, 1, 1, 1};
    const int32_t w2[2] = {0, 1};
    expect_topk(a, 5, 2, w2);
  }
  { /* NaN ranks as -inf (ties by index like any other) */
    const double a[4] = {NAN, -INFINITY, -5.0, NAN};
    const int32_t w1[1] = {2}, w2[2] = {0, 2}, w3[3] = {0, 1, 2}, w4[4] = {0, 1, 2, 3};
    expect_topk(a, 4, 1, w1);
    expect_topk(a, 4, 2, w2);
    expect_topk(a, 4, 3, w3);
    expect_topk(a, 4, 4, w4);
  }
  { /* many regions (64), descending values with ties */
    double a[64];
    for (int i = 0; i < 64; i++) a[i] = (double)(i / 4);
    const int32_t w5[5] = {56, 60, 61, 62, 63}, w6[6] = {56, 57, 60, 61, 62, 63};
    expect_topk(a, 64, 5, w5);
    expect_topk(a, 64, 6, w6);
  }
}

/* ---- routing dot ukernels: bit-identical to spr_bra_dot_acc ------------------------ */

static const struct kernel k_dots[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), #fn, (tile)},
#include "ops/bra/bra_dot.inc"
#undef SPR_UKERNEL
};
static const spr_f64_bra_dot_fn k_dot_fns[] = {
#define SPR_UKERNEL(isa, fn, tile) fn,
#include "ops/bra/bra_dot.inc"
#undef SPR_UKERNEL
};
#define N_DOTS (sizeof k_dots / sizeof k_dots[0])

/* Sizes n in {1, 7, 8, 9, 25, 33, 256} at channel offsets c0 in {0, 3, 8, 13},
 * na in {1, 2, 3, 4, 5, 9} a rows x nr in {1, 3, 4, 5, 9} b rows;
 * accumulators start non-zero (a run continues). */
static void test_dot_ukernels(void **state) {
  (void)state;
  static const size_t ns[] = {1, 7, 8, 9, 25, 33, 256}, c0s[] = {0, 3, 8, 13}, nrs[] = {1, 3, 4, 5, 9},
                      nas[] = {1, 2, 3, 4, 5, 9};
  float *aa = malloc(9 * 300 * sizeof(float)), *bb = malloc(9 * 300 * sizeof(float));
  double *acc = malloc(9 * 72 * sizeof(double)), *want = malloc(9 * 72 * sizeof(double));
  assert_non_null(aa);
  assert_non_null(bb);
  assert_non_null(acc);
  assert_non_null(want);
  spr_test_fill(aa, 9 * 300, 5, -2.0f, 2.0f);
  spr_test_fill(bb, 9 * 300, 6, -2.0f, 2.0f);
  for (size_t di = 0; di < N_DOTS; di++) {
    if (!kernel_available(&k_dots[di])) {
      print_message("  skip %s (ISA not available)\n", k_dots[di].name);
      continue;
    }
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
      for (size_t ci = 0; ci < sizeof c0s / sizeof c0s[0]; ci++)
        for (size_t ai = 0; ai < sizeof nas / sizeof nas[0]; ai++)
          for (size_t ri = 0; ri < sizeof nrs / sizeof nrs[0]; ri++) {
            const size_t n = ns[ni], c0 = c0s[ci], na = nas[ai], nr = nrs[ri];
            const float *a[9], *b[9];
            for (size_t i = 0; i < na; i++) a[i] = aa + ((i * 5) % 9) * 300 + ci + i;
            for (size_t r = 0; r < nr; r++) b[r] = bb + r * 300 + ri;
            for (size_t i = 0; i < 9 * 72; i++) acc[i] = want[i] = 0.25 * (double)i - 3.0;
            for (size_t i = 0; i < na; i++)
              for (size_t r = 0; r < nr; r++) spr_bra_dot_acc(want + 8 * (i * nr + r), a[i], b[r], c0, n);
            k_dot_fns[di](acc, a, na, b, nr, c0, n);
            if (memcmp(acc, want, 8 * na * nr * sizeof(double)) != 0)
              fail_msg("%s n=%zu c0=%zu na=%zu nr=%zu: partial sums differ from spr_bra_dot_acc", k_dots[di].name, n,
                       c0, na, nr);
          }
    print_message("  %-34s bit-identical to spr_bra_dot_acc\n", k_dots[di].name);
  }
  free(aa);
  free(bb);
  free(acc);
  free(want);
}

/* Column-sum ukernels: bit-identical to the oracle's loop, sums and means
 * (channels n in {1, 3, 4, 8, 9, 31, 32, 64, 65, 100}, rows 1 .. 70,
 * continuing or starting from 0, means by 3 or 64). */
static const struct kernel k_colsums[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), #fn, (tile)},
#include "ops/bra/bra_colsum.inc"
#undef SPR_UKERNEL
};
static const spr_f64_bra_colsum_fn k_colsum_fns[] = {
#define SPR_UKERNEL(isa, fn, tile) fn,
#include "ops/bra/bra_colsum.inc"
#undef SPR_UKERNEL
};

static void test_colsum_ukernels(void **state) {
  (void)state;
  static const size_t ns[] = {1, 3, 4, 8, 9, 31, 32, 64, 65, 100}, rs[] = {1, 2, 5, 64, 70};
  float *x = malloc(70 * 128 * sizeof(float));
  assert_non_null(x);
  spr_test_fill(x, 70 * 128, 8, -3.0f, 3.0f);
  const float *rows[70];
  for (size_t t = 0; t < 70; t++) rows[t] = x + ((t * 37) % 70) * 128 + t % 3; /* any order, unaligned */
  for (size_t ki = 0; ki < sizeof k_colsums / sizeof k_colsums[0]; ki++) {
    if (!kernel_available(&k_colsums[ki])) {
      print_message("  skip %s (ISA not available)\n", k_colsums[ki].name);
      continue;
    }
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
      for (size_t ri = 0; ri < sizeof rs / sizeof rs[0]; ri++)
        for (int mode = 0; mode < 4; mode++) { /* first (acc from 0) x means (by 3 or 64) */
          const int first = mode & 1;
          const double m = mode & 2 ? 3.0 : 64.0;
          double acc[100], want[100];
          float mean[100], want_mean[100];
          for (size_t i = 0; i < ns[ni]; i++) {
            acc[i] = 0.5 * (double)i - 7.0;
            double w = first ? 0.0 : acc[i]; /* the oracle's loop */
            for (size_t t = 0; t < rs[ri]; t++) w += (double)rows[t][i];
            want[i] = w;
            want_mean[i] = (float)(w / m);
            mean[i] = NAN;
          }
          k_colsum_fns[ki](acc, rows, rs[ri], ns[ni], first, mode >= 1 ? mean : NULL, m);
          if (memcmp(acc, want, ns[ni] * sizeof(double)) != 0)
            fail_msg("%s n=%zu rows=%zu mode=%d: sums differ from the oracle's loop", k_colsums[ki].name, ns[ni],
                     rs[ri], mode);
          if (mode >= 1 && memcmp(mean, want_mean, ns[ni] * sizeof(float)) != 0)
            fail_msg("%s n=%zu rows=%zu mode=%d: means differ from the oracle's", k_colsums[ki].name, ns[ni], rs[ri],
                     mode);
        }
    print_message("  %-34s bit-identical to the oracle's column sums and means\n", k_colsums[ki].name);
  }
  free(x);
}

/* ---- running the op ------------------------------------------------------------- */

struct bra_case {
  int h, w, S, topk;
  int nh, hq, hv; /* heads, q/k and v head dims */
  float amp;      /* q, k in [-amp, amp) (0: 1) */
  int fused;      /* one qkv tensor with padding columns */
  float scale;    /* 0: qk_dim^-0.5 */
};

struct bra_bufs {
  struct spr_tensor ts[4];
  struct spr_node node;
  float *src[3], *out, *ref;
  int n_src_bufs;
  size_t n_tok, vd;
};

static void case_params(const struct bra_case *c, struct spr_bra_params *p) {
  memset(p, 0, sizeof *p);
  p->n_heads = (uint16_t)c->nh;
  p->n_win = (uint16_t)c->S;
  p->topk = (uint16_t)c->topk;
  p->h = (uint16_t)c->h;
  p->w = (uint16_t)c->w;
  p->qk_dim = (uint32_t)(c->nh * c->hq);
  p->v_dim = (uint32_t)(c->nh * c->hv);
  p->scale = c->scale;
}

/* Sources filled at random (the caller may overwrite them), output poisoned. */
static void case_setup(const struct bra_case *c, uint64_t seed, struct bra_bufs *b) {
  memset(b, 0, sizeof *b);
  struct spr_bra_params p;
  case_params(c, &p);
  const float amp = c->amp > 0.0f ? c->amp : 1.0f;
  const size_t n_tok = (size_t)c->h * (size_t)c->w, qk = p.qk_dim, vd = p.v_dim;
  b->n_tok = n_tok;
  b->vd = vd;
  if (c->fused) {
    const size_t pad = 3, row = pad + 2 * qk + vd + 2;
    p.q_col = (uint32_t)pad;
    p.k_col = (uint32_t)(pad + qk);
    p.v_col = (uint32_t)(pad + 2 * qk);
    b->src[0] = spr_test_aligned_alloc(row * n_tok * sizeof(float));
    spr_test_fill(b->src[0], row * n_tok, seed, -amp, amp);
    for (size_t t = 0; t < n_tok; t++)
      for (size_t j = 0; j < vd; j++) b->src[0][t * row + p.v_col + j] /= amp;
    const int64_t ne[2] = {(int64_t)row, (int64_t)n_tok};
    for (int s = 0; s < 3; s++) spr_test_tensor(&b->ts[s], SPR_DTYPE_F32, 2, ne, b->src[0]);
    b->src[1] = b->src[2] = b->src[0];
    b->n_src_bufs = 1;
  } else {
    const size_t cols[3] = {qk + 1, qk + 5, vd};
    const float range[3] = {amp, amp, 1.0f};
    p.q_col = 1;
    p.k_col = 5;
    p.v_col = 0;
    for (int s = 0; s < 3; s++) {
      b->src[s] = spr_test_aligned_alloc(cols[s] * n_tok * sizeof(float));
      spr_test_fill(b->src[s], cols[s] * n_tok, seed + 31u * (uint64_t)s, -range[s], range[s]);
      const int64_t ne[2] = {(int64_t)cols[s], (int64_t)n_tok};
      spr_test_tensor(&b->ts[s], SPR_DTYPE_F32, 2, ne, b->src[s]);
    }
    b->n_src_bufs = 3;
  }
  b->out = spr_test_aligned_alloc(vd * n_tok * sizeof(float));
  b->ref = spr_test_aligned_alloc(vd * n_tok * sizeof(float));
  for (size_t i = 0; i < vd * n_tok; i++) b->out[i] = NAN;
  const int64_t ne_out[2] = {(int64_t)vd, (int64_t)n_tok};
  spr_test_tensor(&b->ts[3], SPR_DTYPE_F32, 2, ne_out, b->out);
  b->node.op = SPR_OP_BRA;
  b->node.n_src = 3;
  for (int i = 0; i < SPR_MAX_SRCS; i++) b->node.src[i] = -1;
  b->node.src[0] = 0;
  b->node.src[1] = 1;
  b->node.src[2] = 2;
  b->node.dst = 3;
  b->node.p.bra = p;
}

static void case_ref(struct bra_bufs *b) {
  const struct spr_bra_params *p = &b->node.p.bra;
  double *scratch = malloc(spr_bra_ref_scratch_doubles(p) * sizeof(double));
  assert_non_null(scratch);
  spr_f32_bra_ref(p, b->src[0], (size_t)b->ts[0].ne[0], b->src[1], (size_t)b->ts[1].ne[0], b->src[2],
                  (size_t)b->ts[2].ne[0], b->ref, b->vd, scratch);
  free(scratch);
}

static void case_free(struct bra_bufs *b) {
  for (int s = 0; s < b->n_src_bufs; s++) free(b->src[s]);
  free(b->out);
  free(b->ref);
}

static void case_name(const struct bra_case *c, char *buf, size_t len) {
  snprintf(buf, len, "map=%dx%d S=%d (region %dx%d) topk=%d heads=%d hq=%d hv=%d amp=%g fused=%d scale=%g", c->h, c->w,
           c->S, c->h / c->S, c->w / c->S, c->topk, c->nh, c->hq, c->hv, (double)(c->amp > 0.0f ? c->amp : 1.0f),
           c->fused, (double)c->scale);
}

/* Runs the node with kernel k on n_threads, scratch poisoned with NaN. */
static void run_node(const struct kernel *k, struct bra_bufs *b, int n_threads, const char *what) {
  struct spr_test_op h;
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_setup(&h, b->ts, &b->node, k->isa, n_threads, &err);
  if (s != SPR_STATUS_OK) fail_msg("%s %s: status %d (%s)", k->name, what, (int)s, err.msg);
  if (h.node->impl_name == NULL || strcmp(h.node->impl_name, k->name) != 0)
    fail_msg("isa mask 0x%x chose %s, expected %s", (unsigned)k->isa, h.node->impl_name ? h.node->impl_name : "-",
             k->name);
  memset(h.scratch, 0xff, h.node->ws_bytes);
  spr_test_op_exec(&h);
  spr_test_op_teardown(&h);
}

/* Runs case c with kernel k against the oracle; returns the max error;
 * copies the output to out when non-NULL. */
static double run_case(const struct kernel *k, const struct bra_case *c, int n_threads, float *out) {
  struct bra_bufs b;
  case_setup(c, 9000u + (uint64_t)(c->h * 131 + c->w * 17 + c->S * 7 + c->topk * 3 + c->hq), &b);
  case_ref(&b);
  char name[240];
  case_name(c, name, sizeof name);
  run_node(k, &b, n_threads, name);
  const float amp = c->amp > 0.0f ? c->amp : 1.0f;
  const double L =
      (c->scale != 0.0f ? fabs((double)c->scale) : 1.0 / sqrt((double)(c->nh * c->hq))) * c->hq * amp * amp;
  const double tol = 2e-5 + 1e-6 * L;
  double worst = 0.0;
  for (size_t t = 0; t < b.n_tok; t++) {
    for (size_t j = 0; j < b.vd; j++) {
      const double e = fabs((double)b.out[t * b.vd + j] - (double)b.ref[t * b.vd + j]);
      if (!(e <= tol))
        fail_msg("%s %s threads=%d: token %zu col %zu (head %zu) got %.9g want %.9g (err %.3g > %.3g)", k->name, name,
                 n_threads, t, j, j / (size_t)c->hv, (double)b.out[t * b.vd + j], (double)b.ref[t * b.vd + j], e, tol);
      if (e > worst) worst = e;
    }
  }
  if (out != NULL) memcpy(out, b.out, b.vd * b.n_tok * sizeof(float));
  case_free(&b);
  return worst;
}

static void run_cases(const struct bra_case *cs, size_t n, const char *what) {
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
    print_message("  %-34s %-10s %3zu cases, max abs err %.3g\n", k->name, what, n, worst);
  }
}

/* ---- hand-routed cases through the op ------------------------------------------ */

/* 4x4 map, S = 2: regions of 2x2 tokens, region p = (row p/2, column p%2).
 * qk_dim = 4 (one head): k of every token of region r = e_r, so A[p][r] =
 * scale * u_p[r] and the attention logit of query t on a key of region r is
 * scale * q_t[r]. q_t = u_p + d_t with offsets that cancel over the region.
 * v_dim = 16, V = one-hot in the token index: output column j of query t is
 * the weight of key token j. */
static void test_routing_op(void **state) {
  (void)state;
  static const float u[4][4] = {
      {0.0f, 3.0f, 3.0f, 1.0f}, /* topk 1: {1} (tie 1 vs 2 -> 1); topk 2: {1, 2}; topk 3: {1, 2, 3} */
      {2.0f, 2.0f, 2.0f, 0.0f}, /* topk 1: {0}; 2: {0, 1}; 3: {0, 1, 2} */
      {0.0f, 0.0f, 0.0f, 5.0f}, /* topk 1: {3} (not itself); 2: {0, 3}; 3: {0, 1, 3} */
      {1.0f, 1.0f, 1.0f, 1.0f}, /* all tied: topk 1: {0}; 2: {0, 1}; 3: {0, 1, 2} */
  };
  static const int want[4][4][4] = {
      /* [topk-1][region] = kept regions (-1: none) */
      {{1, -1, -1, -1}, {0, -1, -1, -1}, {3, -1, -1, -1}, {0, -1, -1, -1}},
      {{1, 2, -1, -1}, {0, 1, -1, -1}, {0, 3, -1, -1}, {0, 1, -1, -1}},
      {{1, 2, 3, -1}, {0, 1, 2, -1}, {0, 1, 3, -1}, {0, 1, 2, -1}},
      {{0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 2, 3}},
  };
  /* per-token offsets within a region (row-major 2x2), sum 0 per channel */
  static const float d[4][4] = {
      {0.25f, -0.5f, 0.125f, 0.0f},
      {-0.25f, 0.5f, 0.0f, 0.125f},
      {0.5f, 0.25f, -0.125f, -0.25f},
      {-0.5f, -0.25f, 0.0f, 0.125f},
  };
  const double scale = 0.5; /* 4^-0.5 */
  for (int topk = 1; topk <= 4; topk++) {
    for (int fused = 0; fused <= 1; fused++) {
      const struct bra_case c = {4, 4, 2, topk, 1, 4, 16, 1.0f, fused, 0.0f};
      struct bra_bufs b;
      case_setup(&c, 11, &b);
      const struct spr_bra_params *p = &b.node.p.bra;
      const size_t qs = (size_t)b.ts[0].ne[0], ks = (size_t)b.ts[1].ne[0], vs = (size_t)b.ts[2].ne[0];
      double expect[16][16];
      for (int tok = 0; tok < 16; tok++) {
        const int y = tok / 4, x = tok % 4, reg = (y / 2) * 2 + x / 2, t = (y % 2) * 2 + x % 2;
        float *qrow = b.src[0] + (size_t)tok * qs + p->q_col, *krow = b.src[1] + (size_t)tok * ks + p->k_col;
        float *vrow = b.src[2] + (size_t)tok * vs + p->v_col;
        for (int ch = 0; ch < 4; ch++) {
          qrow[ch] = u[reg][ch] + d[t][ch];
          krow[ch] = ch == reg ? 1.0f : 0.0f;
        }
        for (int j = 0; j < 16; j++) vrow[j] = j == tok ? 1.0f : 0.0f;
      }
      for (int tok = 0; tok < 16; tok++) {
        const int y = tok / 4, x = tok % 4, reg = (y / 2) * 2 + x / 2, t = (y % 2) * 2 + x % 2;
        double sum = 0.0;
        for (int i = 0; i < topk; i++) {
          const int r = want[topk - 1][reg][i];
          sum += 4.0 * exp(scale * (u[reg][r] + d[t][r]));
        }
        for (int j = 0; j < 16; j++) {
          const int rj = ((j / 4) / 2) * 2 + (j % 4) / 2;
          int kept = 0;
          for (int i = 0; i < topk; i++) kept |= want[topk - 1][reg][i] == rj;
          expect[tok][j] = kept ? exp(scale * (u[reg][rj] + d[t][rj])) / sum : 0.0;
        }
      }
      case_ref(&b);
      for (size_t ki = 0; ki <= N_KERNELS; ki++) {
        const char *nm = ki < N_KERNELS ? k_kernels[ki].name : "oracle";
        if (ki < N_KERNELS) {
          if (!kernel_available(&k_kernels[ki])) continue;
          for (size_t i = 0; i < 16 * 16; i++) b.out[i] = NAN;
          run_node(&k_kernels[ki], &b, 2, "routing");
        }
        const float *o = ki < N_KERNELS ? b.out : b.ref;
        for (int tok = 0; tok < 16; tok++)
          for (int j = 0; j < 16; j++) {
            const double e = fabs((double)o[tok * 16 + j] - expect[tok][j]);
            if (!(e <= 2e-6))
              fail_msg("%s topk=%d fused=%d: query %d key %d weight %.8g, expected %.8g", nm, topk, fused, tok, j,
                       (double)o[tok * 16 + j], expect[tok][j]);
          }
      }
      case_free(&b);
    }
  }
}

/* ---- against the oracle -------------------------------------------------------- */

/* Region sizes around the tiles: M = 1, 3, 4, 5 (scalar 4), 15, 16, 17
 * (AVX2/NEON 16), 31, 32, 33, 97 (AVX-512 32), 9, 49, 64 (odd, BiFormer). */
static void test_regions(void **state) {
  (void)state;
  static const struct bra_case cs[] = {
      /* h, w, S, topk, nh, hq, hv, amp, fused */
      {2, 2, 2, 1, 1, 8, 8, 0.0f, 0, 0.0f},      /* M = 1, routing in scratch */
      {3, 3, 3, 4, 2, 4, 4, 0.0f, 1, 0.0f},      /* M = 1, 9 regions */
      {2, 6, 2, 2, 1, 16, 16, 0.0f, 0, 0.0f},    /* M = 3 */
      {4, 4, 2, 3, 2, 8, 8, 0.0f, 1, 0.0f},      /* M = 4 */
      {2, 10, 2, 4, 1, 8, 12, 0.0f, 0, 0.0f},    /* M = 5 */
      {6, 10, 2, 2, 2, 16, 16, 0.0f, 1, 0.0f},   /* M = 15 (3x5) */
      {8, 8, 2, 1, 2, 32, 32, 0.0f, 0, 0.0f},    /* M = 16 */
      {2, 34, 2, 3, 1, 20, 20, 0.0f, 1, 0.0f},   /* M = 17 (1x17) */
      {2, 62, 2, 2, 1, 16, 24, 0.0f, 0, 0.0f},   /* M = 31 */
      {8, 16, 2, 1, 2, 32, 32, 0.0f, 1, 0.0f},   /* M = 32 (4x8) */
      {6, 22, 2, 4, 1, 17, 17, 0.0f, 0, 0.0f},   /* M = 33 (3x11), head dims with a tail */
      {2, 194, 2, 2, 1, 8, 8, 0.0f, 1, 0.0f},    /* M = 97 */
      {9, 9, 3, 5, 3, 5, 7, 0.0f, 0, 0.0f},      /* M = 9, odd head dims */
      {21, 21, 3, 2, 2, 32, 32, 0.0f, 1, 0.0f},  /* M = 49 */
      {16, 16, 2, 2, 2, 32, 32, 4.0f, 0, 0.0f},  /* M = 64, large logits */
      {14, 14, 7, 16, 4, 32, 32, 0.0f, 1, 0.0f}, /* BiFormer-T stage 3 shape (fewer heads) */
      /* the row path with Q in registers (head dim 1-4 vectors): 1 .. 7 queries, odd key counts */
      {7, 7, 7, 3, 2, 32, 32, 0.0f, 0, 0.0f},
      {2, 6, 2, 3, 1, 48, 48, 0.0f, 1, 0.0f},
      {2, 10, 2, 3, 1, 64, 64, 0.0f, 0, 0.0f},
      {2, 14, 2, 1, 2, 16, 16, 0.0f, 1, 0.0f},
      {4, 6, 2, 3, 1, 32, 24, 0.0f, 0, 0.0f},
      /* the small-region path (4-lane groups): odd head_dim / 4, key blocks of whole token rows with a
       * ragged last block, more keys than one block */
      {2, 6, 2, 3, 1, 12, 20, 0.0f, 1, 0.0f},
      {10, 10, 5, 20, 2, 12, 20, 0.0f, 0, 0.0f},
      {6, 18, 6, 30, 1, 8, 8, 0.0f, 1, 0.0f},
      {6, 18, 6, 30, 1, 36, 8, 2.0f, 0, 0.0f},
  };
  run_cases(cs, sizeof cs / sizeof cs[0], "regions");
}

/* topk from 1 to all regions; S from 1 to 9 (81 regions: the scores of
 * many regions wait in the routing area); non-square maps and regions. */
static void test_topk_range(void **state) {
  (void)state;
  static const struct bra_case cs[] = {
      {12, 12, 3, 1, 2, 8, 8, 0.0f, 1, 0.0f},
      {12, 12, 3, 9, 2, 8, 8, 0.0f, 0, 0.0f},
      {12, 12, 3, 5, 2, 8, 8, 0.0f, 1, 0.0f},
      {8, 8, 1, 1, 2, 16, 16, 0.0f, 0, 0.0f},  /* S = 1: dense */
      {16, 24, 8, 1, 1, 8, 16, 0.0f, 1, 0.0f}, /* 64 regions, M = 6 */
      {16, 24, 8, 64, 1, 8, 16, 0.0f, 0, 0.0f},
      {16, 24, 8, 7, 2, 8, 8, 0.0f, 1, 0.0f},
      {10, 15, 5, 25, 1, 4, 4, 0.0f, 0, 0.0f}, /* M = 6, routing in scratch (6 * 4 < 2*4 + 50 + 25) */
      {10, 15, 5, 3, 1, 4, 4, 0.0f, 1, 0.0f},
      {20, 12, 4, 16, 2, 16, 8, 0.0f, 0, 0.0f},
      {28, 28, 7, 4, 4, 32, 32, 0.0f, 1, 0.0f},  /* BiFormer-T stage 2 shape */
      {27, 27, 9, 10, 2, 16, 16, 0.0f, 0, 0.0f}, /* 81 regions: routing scores in the output rows */
      {18, 18, 9, 3, 2, 16, 16, 0.0f, 1, 0.0f},  /* 81 regions, routing in scratch */
      {18, 18, 9, 81, 1, 8, 8, 0.0f, 0, 0.0f},
      /* an explicit scale (router and attention), and a negative one (routing picks the lowest q.k) */
      {12, 12, 3, 3, 2, 8, 8, 0.0f, 1, 0.7f},
      {12, 12, 3, 2, 2, 8, 8, 0.0f, 0, -0.25f},
  };
  run_cases(cs, sizeof cs / sizeof cs[0], "topk");
}

/* topk = all regions is dense attention over the map: compare with a plain
 * softmax in double (independent of the routing code). */
static void test_all_regions_is_dense(void **state) {
  (void)state;
  const struct bra_case c = {6, 6, 3, 9, 2, 8, 8, 0.0f, 1, 0.0f};
  struct bra_bufs b;
  case_setup(&c, 77, &b);
  const struct spr_bra_params *p = &b.node.p.bra;
  const size_t st = (size_t)b.ts[0].ne[0], n = 36;
  const double scale = 1.0 / sqrt(16.0);
  float *want = malloc(n * 16 * sizeof(float));
  assert_non_null(want);
  for (size_t i = 0; i < n; i++)
    for (int h = 0; h < 2; h++) {
      double s[36], mx = -INFINITY, sum = 0.0;
      for (size_t j = 0; j < n; j++) {
        double a = 0.0;
        for (int d = 0; d < 8; d++)
          a += (double)b.src[0][i * st + p->q_col + (size_t)(h * 8 + d)] *
               (double)b.src[0][j * st + p->k_col + (size_t)(h * 8 + d)];
        s[j] = scale * a;
        mx = s[j] > mx ? s[j] : mx;
      }
      for (size_t j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
      for (int cc = 0; cc < 8; cc++) {
        double acc = 0.0;
        for (size_t j = 0; j < n; j++) acc += s[j] * (double)b.src[0][j * st + p->v_col + (size_t)(h * 8 + cc)];
        want[i * 16 + (size_t)(h * 8 + cc)] = (float)(acc / sum);
      }
    }
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    if (!kernel_available(&k_kernels[ki])) continue;
    run_node(&k_kernels[ki], &b, 1, "dense");
    for (size_t i = 0; i < n * 16; i++)
      if (!(fabs((double)b.out[i] - (double)want[i]) <= 3e-6))
        fail_msg("%s all regions: token %zu col %zu got %.8g dense %.8g", k_kernels[ki].name, i / 16, i % 16,
                 (double)b.out[i], (double)want[i]);
  }
  free(want);
  case_free(&b);
}

/* 1, 2 and 3 threads give bit-identical outputs. */
static void test_threads(void **state) {
  (void)state;
  static const struct bra_case cs[] = {
      {14, 14, 7, 4, 2, 16, 16, 0.0f, 1, 0.0f},
      {16, 24, 8, 7, 2, 8, 8, 0.0f, 0, 0.0f},
      {10, 15, 5, 25, 1, 4, 4, 0.0f, 1, 0.0f},
      {21, 21, 3, 2, 2, 32, 32, 0.0f, 0, 0.0f},
  };
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) continue;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
      const struct bra_case *c = &cs[i];
      const size_t n = (size_t)c->h * (size_t)c->w * (size_t)c->nh * (size_t)c->hv;
      float *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float)), *o3 = malloc(n * sizeof(float));
      assert_non_null(o1);
      assert_non_null(o2);
      assert_non_null(o3);
      run_case(k, c, 1, o1);
      run_case(k, c, 2, o2);
      run_case(k, c, 3, o3);
      char name[240];
      case_name(c, name, sizeof name);
      if (memcmp(o1, o2, n * sizeof(float)) != 0 || memcmp(o1, o3, n * sizeof(float)) != 0)
        fail_msg("%s %s: outputs differ between 1, 2 and 3 threads", k->name, name);
      free(o1);
      free(o2);
      free(o3);
    }
  }
}

static void test_check(void **state) {
  (void)state;
  const struct spr_op_def *def = spr_op_get(SPR_OP_BRA);
  assert_non_null(def);
  assert_string_equal(def->name, "bra");
  static float buf[64 * 200];
  struct {
    int h, w, S, topk, nh, qk, vd, out_cols, rows;
    enum spr_status want;
  } cs[] = {
      {8, 8, 2, 2, 2, 16, 16, 16, 64, SPR_STATUS_OK},
      {8, 8, 2, 4, 2, 16, 16, 16, 64, SPR_STATUS_OK},
      {8, 8, 2, 5, 2, 16, 16, 16, 64, SPR_STATUS_INVALID_ARGUMENT}, /* topk > S^2 */
      {8, 8, 2, 0, 2, 16, 16, 16, 64, SPR_STATUS_INVALID_ARGUMENT}, /* topk 0 */
      {8, 8, 3, 1, 2, 16, 16, 16, 64, SPR_STATUS_INVALID_ARGUMENT}, /* not a multiple of S */
      {8, 8, 0, 1, 2, 16, 16, 16, 64, SPR_STATUS_INVALID_ARGUMENT}, /* S = 0 */
      {8, 8, 2, 1, 3, 16, 16, 16, 64, SPR_STATUS_INVALID_ARGUMENT}, /* qk % heads */
      {8, 8, 2, 1, 2, 16, 15, 15, 64, SPR_STATUS_INVALID_ARGUMENT}, /* v_dim % heads */
      {8, 8, 2, 1, 2, 16, 16, 12, 64, SPR_STATUS_INVALID_ARGUMENT}, /* output columns */
      {8, 8, 2, 1, 2, 16, 16, 16, 63, SPR_STATUS_INVALID_ARGUMENT}, /* rows != h*w */
      {8, 8, 2, 1, 2, 32, 16, 16, 64, SPR_STATUS_INVALID_ARGUMENT}, /* k/v columns outside the row */
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    struct spr_tensor ts[2];
    struct spr_node n;
    memset(&n, 0, sizeof n);
    const int64_t nq[2] = {48, cs[i].rows}, no[2] = {cs[i].out_cols, cs[i].rows};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, nq, buf);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, no, buf);
    n.op = SPR_OP_BRA;
    n.n_src = 3;
    n.src[0] = n.src[1] = n.src[2] = 0;
    n.src[3] = n.src[4] = n.src[5] = -1;
    n.dst = 1;
    n.p.bra = (struct spr_bra_params){.n_heads = (uint16_t)cs[i].nh,
                                      .n_win = (uint16_t)cs[i].S,
                                      .topk = (uint16_t)cs[i].topk,
                                      .h = (uint16_t)cs[i].h,
                                      .w = (uint16_t)cs[i].w,
                                      .qk_dim = (uint32_t)cs[i].qk,
                                      .v_dim = (uint32_t)cs[i].vd,
                                      .q_col = 0,
                                      .k_col = (uint32_t)cs[i].qk,
                                      .v_col = (uint32_t)(2 * cs[i].qk)};
    struct spr_error err = {SPR_STATUS_OK, ""};
    const enum spr_status s = def->check(ts, &n, &err);
    if (s != cs[i].want) fail_msg("check case %zu: status %d (%s), expected %d", i, (int)s, err.msg, (int)cs[i].want);
  }
}

static void test_flops(void **state) {
  (void)state;
  const struct spr_op_def *def = spr_op_get(SPR_OP_BRA);
  struct spr_node n;
  memset(&n, 0, sizeof n);
  /* BiFormer-T stage 1: 56x56, S 7 (M 64), topk 1, C 64 */
  const struct bra_case c = {56, 56, 7, 1, 2, 32, 32, 0.0f, 0, 0.0f};
  case_params(&c, &n.p.bra);
  const uint64_t T = 56 * 56;
  assert_true(def->flops(NULL, &n) == 2 * T * 64 + 2 * 49 * 49 * 64 + 2 * T * 64 * (64 + 64));
}

/* Peak scratch at BiFormer-T's BRA shapes (and the hand shapes of the
 * bench) does not exceed dense attention's at the same heads and head dim,
 * for 1 to 8 threads. */
static void test_workspace_vs_dense(void **state) {
  (void)state;
  const struct spr_op_def *bra = spr_op_get(SPR_OP_BRA), *att = spr_op_get(SPR_OP_ATTENTION);
  static const struct bra_case cs[] = {
      {56, 56, 7, 1, 2, 32, 32, 0.0f, 0, 0.0f},
      {28, 28, 7, 4, 4, 32, 32, 0.0f, 0, 0.0f},
      {14, 14, 7, 16, 8, 32, 32, 0.0f, 0, 0.0f},
      {14, 14, 7, 49, 8, 32, 32, 0.0f, 0, 0.0f},
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    for (int thr = 1; thr <= 8; thr++) {
      struct spr_node nb, na;
      memset(&nb, 0, sizeof nb);
      memset(&na, 0, sizeof na);
      nb.op = SPR_OP_BRA;
      case_params(&cs[i], &nb.p.bra);
      na.op = SPR_OP_ATTENTION;
      na.p.attn = (struct spr_attn_params){
          .n_heads = (uint16_t)cs[i].nh, .n_kv_heads = (uint16_t)cs[i].nh, .head_dim = (uint16_t)cs[i].hq};
      const size_t wb = bra->workspace(NULL, &nb, thr), wa = att->workspace(NULL, &na, thr);
      if (wb > wa) fail_msg("case %zu threads %d: bra scratch %zu > attention %zu", i, thr, wb, wa);
    }
  }
}

/* BiFormer's stage 4 (topk = -2) is AttentionLePE: plain global MHSA with 8
 * heads (dim / 8 per head, scale (dim/8)^-0.5) from a bias-free qkv Linear,
 * plus LePE = dwconv 5x5 of the attention input (a SPR_OP_DWCONV2D node) and
 * proj. No new op: SPR_OP_ATTENTION at BiFormer-T's shape (7x7 tokens, dim
 * 512) against a double softmax, on every available attention ukernel
 * (best first) and 1 and 2 threads. */
static void test_stage4_dense_attention(void **state) {
  (void)state;
  const int T = 49, nh = 8, hd = 64, D = nh * hd;
  float *qkv = spr_test_aligned_alloc((size_t)T * 3 * D * sizeof(float));
  float *o = spr_test_aligned_alloc((size_t)T * D * sizeof(float)), *want = malloc((size_t)T * D * sizeof(float));
  assert_non_null(want);
  spr_test_fill(qkv, (size_t)T * 3 * D, 404, -1.0f, 1.0f);
  const double scale = 1.0 / sqrt((double)hd);
  for (int i = 0; i < T; i++)
    for (int h = 0; h < nh; h++) {
      double sc[49], mx = -INFINITY, sum = 0.0;
      for (int j = 0; j < T; j++) {
        double a = 0.0;
        for (int d = 0; d < hd; d++)
          a += (double)qkv[(size_t)i * 3 * D + (size_t)(h * hd + d)] *
               (double)qkv[(size_t)j * 3 * D + (size_t)(D + h * hd + d)];
        sc[j] = scale * a;
        mx = sc[j] > mx ? sc[j] : mx;
      }
      for (int j = 0; j < T; j++) sum += (sc[j] = exp(sc[j] - mx));
      for (int c = 0; c < hd; c++) {
        double acc = 0.0;
        for (int j = 0; j < T; j++) acc += sc[j] * (double)qkv[(size_t)j * 3 * D + (size_t)(2 * D + h * hd + c)];
        want[i * D + h * hd + c] = (float)(acc / sum);
      }
    }
  static const uint32_t isas[] = {SPR_ISA_X86_AVX512F, SPR_ISA_X86_AVX2, SPR_ISA_ARM_NEON, 0};
  for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
    if ((spr_cpu_isa() & isas[ii]) != isas[ii]) continue;
    for (int threads = 1; threads <= 2; threads++) {
      struct spr_tensor ts[2];
      const int64_t nq[2] = {3 * D, T}, no[2] = {D, T};
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, nq, qkv);
      spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, no, o);
      struct spr_node n;
      memset(&n, 0, sizeof n);
      n.op = SPR_OP_ATTENTION;
      n.n_src = 3;
      n.src[0] = n.src[1] = n.src[2] = 0;
      n.src[3] = n.src[4] = n.src[5] = -1;
      n.dst = 1;
      n.p.attn = (struct spr_attn_params){.n_heads = (uint16_t)nh,
                                          .n_kv_heads = (uint16_t)nh,
                                          .head_dim = (uint16_t)hd,
                                          .scale = (float)scale,
                                          .q_col = 0,
                                          .k_col = (uint32_t)D,
                                          .v_col = (uint32_t)(2 * D)};
      const char *impl = NULL;
      struct spr_error err = {SPR_STATUS_OK, ""};
      assert_int_equal(spr_test_op_run(ts, &n, isas[ii], threads, 1, &impl, &err), SPR_STATUS_OK);
      for (int i = 0; i < T * D; i++)
        if (!(fabs((double)o[i] - (double)want[i]) <= 2e-5))
          fail_msg("stage 4 attention %s threads=%d: token %d col %d got %.8g want %.8g", impl, threads, i / D, i % D,
                   (double)o[i], (double)want[i]);
    }
  }
  free(qkv);
  free(o);
  free(want);
}

/* ---- the PyTorch reference's golden outputs -------------------------------------- */

#define FIXTURES SPR_SOURCE_DIR "/tests/fixtures/sparse"

static uint32_t gu32(const struct spr_gguf *g, const char *key) {
  uint32_t v = 0;
  if (spr_gguf_get_u32(g, key, &v) != SPR_STATUS_OK) fail_msg("golden file lacks %s", key);
  return v;
}

static void run_golden(const char *file) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", FIXTURES, file);
  size_t size = 0;
  void *blob = spr_test_read_file(path, &size);
  assert_non_null(blob);
  struct spr_gguf g;
  struct spr_error err;
  if (spr_gguf_parse(blob, size, &g, &err) != SPR_STATUS_OK) fail_msg("%s: %s", file, err.msg);
  struct spr_bra_params p;
  memset(&p, 0, sizeof p);
  p.h = (uint16_t)gu32(&g, "bra.h");
  p.w = (uint16_t)gu32(&g, "bra.w");
  p.n_win = (uint16_t)gu32(&g, "bra.n_win");
  p.topk = (uint16_t)gu32(&g, "bra.topk");
  p.n_heads = (uint16_t)gu32(&g, "bra.n_heads");
  p.qk_dim = gu32(&g, "bra.qk_dim");
  p.v_dim = gu32(&g, "bra.v_dim");
  p.q_col = 0;
  p.k_col = p.qk_dim;
  p.v_col = 2 * p.qk_dim;
  struct spr_gguf_tensor qkv, out;
  assert_int_equal(spr_gguf_find_tensor(&g, "qkv", &qkv), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_find_tensor(&g, "out", &out), SPR_STATUS_OK);
  const size_t n_tok = (size_t)p.h * p.w, row = 2 * (size_t)p.qk_dim + p.v_dim, vd = p.v_dim;
  assert_int_equal((size_t)qkv.ne[0], row);
  assert_int_equal((size_t)qkv.ne[1], n_tok);
  float *src = spr_test_aligned_alloc(qkv.nbytes), *o = spr_test_aligned_alloc(out.nbytes);
  memcpy(src, qkv.data, qkv.nbytes);
  double worst = 0.0;
  for (size_t ki = 0; ki <= N_KERNELS; ki++) {
    const struct kernel *k = ki < N_KERNELS ? &k_kernels[ki] : NULL;
    if (k != NULL && !kernel_available(k)) continue;
    for (int threads = 1; threads <= (k != NULL ? 2 : 1); threads++) {
      struct bra_bufs b;
      memset(&b, 0, sizeof b);
      const int64_t nq[2] = {(int64_t)row, (int64_t)n_tok}, no[2] = {(int64_t)vd, (int64_t)n_tok};
      for (int s = 0; s < 3; s++) spr_test_tensor(&b.ts[s], SPR_DTYPE_F32, 2, nq, src);
      spr_test_tensor(&b.ts[3], SPR_DTYPE_F32, 2, no, o);
      b.node.op = SPR_OP_BRA;
      b.node.n_src = 3;
      for (int i = 0; i < SPR_MAX_SRCS; i++) b.node.src[i] = -1;
      b.node.src[0] = 0;
      b.node.src[1] = 1;
      b.node.src[2] = 2;
      b.node.dst = 3;
      b.node.p.bra = p;
      for (size_t i = 0; i < vd * n_tok; i++) o[i] = NAN;
      if (k != NULL) {
        run_node(k, &b, threads, file);
      } else { /* the oracle */
        b.src[0] = b.src[1] = b.src[2] = src;
        b.ref = o;
        b.vd = vd;
        case_ref(&b);
      }
      for (size_t i = 0; i < vd * n_tok; i++) {
        float wv;
        memcpy(&wv, (const uint8_t *)out.data + 4 * i, 4);
        const double e = fabs((double)o[i] - (double)wv);
        if (!(e <= 1e-5))
          fail_msg("%s %s threads=%d: token %zu col %zu got %.8g reference %.8g (err %.3g)", file,
                   k ? k->name : "oracle", threads, i / vd, i % vd, (double)o[i], (double)wv, e);
        if (e > worst) worst = e;
      }
    }
  }
  print_message("  %-34s vs PyTorch: max abs err %.3g\n", file, worst);
  free(src);
  free(o);
  free(blob);
}

static void test_bra_golden(void **state) {
  (void)state;
  DIR *d = opendir(FIXTURES);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "bra_", 4) != 0 || strstr(e->d_name, ".golden.gguf") == NULL) continue;
    run_golden(e->d_name);
    n++;
  }
  closedir(d);
  assert_true(n >= 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topk),
      cmocka_unit_test(test_dot_ukernels),
      cmocka_unit_test(test_colsum_ukernels),
      cmocka_unit_test(test_routing_op),
      cmocka_unit_test(test_regions),
      cmocka_unit_test(test_topk_range),
      cmocka_unit_test(test_all_regions_is_dense),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_flops),
      cmocka_unit_test(test_workspace_vs_dense),
      cmocka_unit_test(test_bra_golden),
      cmocka_unit_test(test_stage4_dense_attention),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
