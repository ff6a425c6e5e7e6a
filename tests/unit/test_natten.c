/* tests/unit/test_natten.c — SPR_OP_NEIGHBORHOOD_ATTN.
 *
 *  - the window rule (spr_na_window, spr_na_group_len) against windows
 *    written out by hand: border shift, even kernels, uneven dilation groups,
 *    causal starts, stride leaders and the leader clamp;
 *  - the same windows through the whole op, every ukernel and the oracle:
 *    with q = 0 the softmax is uniform over the window and V rows one-hot in
 *    the token index, so output column j of query i is 1/|window| exactly
 *    when token j is in i's window (1-D and 2-D products); with a relative
 *    position bias the weights are exp(rpb[index]) with hand-listed indices;
 *  - every ukernel against the double oracle over 1-D/2-D/3-D shapes with
 *    edge sizes {K*d, tile-1, tile, tile+1, 3*tile+1, odd} along the tiled
 *    (last) axis, odd and even K, dilation (uneven groups), stride, causal,
 *    rpb, head_dim with and without a vector tail; scratch is filled with
 *    NaN before each run (a read of an unwritten scratch float shows);
 *  - 1, 2 and 3 threads bit-identical; check() rejections; flops().
 * Golden outputs of the independent PyTorch reference
 * (tools/reference/natten_ref.py) are checked in test_natten_golden below.
 *
 * Tolerance (as tests/unit/test_attention.c): outputs are convex combinations
 * of V in [-1, 1]; |out - ref| <= 2e-5 + 1e-6 * L with L = scale * head_dim *
 * amp^2 (+ the rpb range) bounding every |logit|. */
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

#include "ops/natten/natten.h"
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
#include "ops/natten/natten.inc"
#undef SPR_UKERNEL
};
#define N_KERNELS (sizeof k_kernels / sizeof k_kernels[0])

static int kernel_available(const struct kernel *k) {
  return (spr_cpu_isa() & k->isa) == k->isa;
}

/* ---- the window rule ------------------------------------------------------ */

static void expect_windows(int32_t L, int32_t K, int32_t s, int causal, const int32_t *start, const int32_t *end) {
  const struct spr_na_axis a = {L, K, s, causal};
  for (int32_t i = 0; i < L; i++) {
    int32_t st, en;
    spr_na_window(&a, i, &st, &en);
    if (st != start[i] || en != end[i])
      fail_msg("L=%d K=%d s=%d causal=%d query %d: window [%d, %d), expected [%d, %d)", L, K, s, causal, i, st, en,
               start[i], end[i]);
  }
}

static void test_window_rule(void **state) {
  (void)state;
  /* border shift, odd K: every query sees exactly K keys */
  {
    const int32_t st[7] = {0, 0, 1, 2, 3, 4, 4}, en[7] = {3, 3, 4, 5, 6, 7, 7};
    expect_windows(7, 3, 1, 0, st, en);
  }
  /* even K = 4: two keys left, one right; the last query gets 9..12 */
  {
    const int32_t st[13] = {0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9};
    int32_t en[13];
    for (int i = 0; i < 13; i++) en[i] = st[i] + 4;
    expect_windows(13, 4, 1, 0, st, en);
  }
  /* even K = 2: the query and its left neighbour (the first: itself and the next) */
  {
    const int32_t st[5] = {0, 0, 1, 2, 3}, en[5] = {2, 2, 3, 4, 5};
    expect_windows(5, 2, 1, 0, st, en);
  }
  /* causal: [max(i-K+1, 0), i], not shifted */
  {
    const int32_t st[6] = {0, 0, 0, 1, 2, 3}, en[6] = {1, 2, 3, 4, 5, 6};
    expect_windows(6, 3, 1, 1, st, en);
  }
  /* stride 3, K 5: groups {0,1,2} {3,4,5} {6,7,8} {9}, leaders 1, 4, 7 and
   * the clamped min(10, 9) = 9 */
  {
    const int32_t st[10] = {0, 0, 0, 2, 2, 2, 5, 5, 5, 5};
    int32_t en[10];
    for (int i = 0; i < 10; i++) en[i] = st[i] + 5;
    expect_windows(10, 5, 3, 0, st, en);
  }
  /* stride 4 = K 4 (blocked): leaders 2, 6 and the clamped min(10, 9) = 9 */
  {
    const int32_t st[10] = {0, 0, 0, 0, 4, 4, 4, 4, 6, 6};
    int32_t en[10];
    for (int i = 0; i < 10; i++) en[i] = st[i] + 4;
    expect_windows(10, 4, 4, 0, st, en);
  }
  /* causal + stride 2, K 3: the leader is the group's last query, the end the query's own */
  {
    const int32_t st[8] = {0, 0, 1, 1, 3, 3, 5, 5}, en[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    expect_windows(8, 3, 2, 1, st, en);
  }
  /* dilation groups of L = 10, d = 3 and of L = 9, d = 3 */
  assert_int_equal(spr_na_group_len(10, 3, 0), 4);
  assert_int_equal(spr_na_group_len(10, 3, 1), 3);
  assert_int_equal(spr_na_group_len(10, 3, 2), 3);
  for (int g = 0; g < 3; g++) assert_int_equal(spr_na_group_len(9, 3, g), 3);
  assert_int_equal(spr_na_group_len(7, 2, 0), 4);
  assert_int_equal(spr_na_group_len(7, 2, 1), 3);
}

/* ---- running the op ---------------------------------------------------------- */

struct na_case {
  int nd;
  int size[3], kernel[3], dil[3], stride[3];
  int causal; /* bit per axis */
  int nh, hd;
  int rpb;   /* 1: random relative position bias */
  float amp; /* q, k in [-amp, amp) (0: 1) */
  int fused; /* one qkv tensor with padding columns */
};

struct na_bufs {
  struct spr_tensor ts[5];
  struct spr_node node;
  float *src[3], *rpb, *out, *ref;
  int n_src_bufs;
  size_t n_tok;
};

static size_t case_tokens(const struct na_case *c) {
  size_t n = 1;
  for (int a = 0; a < c->nd; a++) n *= (size_t)c->size[a];
  return n;
}

static size_t case_rpb_per_head(const struct na_case *c) {
  size_t n = 1;
  for (int a = 0; a < c->nd; a++) n *= (size_t)(2 * c->kernel[a] - 1);
  return n;
}

static void case_params(const struct na_case *c, struct spr_na_params *p) {
  memset(p, 0, sizeof *p);
  p->n_heads = (uint16_t)c->nh;
  p->head_dim = (uint16_t)c->hd;
  p->n_dims = (uint8_t)c->nd;
  p->causal = (uint8_t)c->causal;
  for (int a = 0; a < c->nd; a++) {
    p->size[a] = (uint16_t)c->size[a];
    p->kernel[a] = (uint16_t)c->kernel[a];
    p->dilation[a] = (uint16_t)(c->dil[a] ? c->dil[a] : 1);
    p->stride[a] = (uint16_t)(c->stride[a] ? c->stride[a] : 1);
  }
}

/* Sets up sources (random, or NULL-data callers fill themselves), output,
 * node; the oracle's output in b->ref. */
static void case_setup(const struct na_case *c, uint64_t seed, struct na_bufs *b) {
  memset(b, 0, sizeof *b);
  struct spr_na_params p;
  case_params(c, &p);
  const float amp = c->amp > 0.0f ? c->amp : 1.0f;
  const size_t n_tok = case_tokens(c), w = (size_t)c->nh * (size_t)c->hd;
  b->n_tok = n_tok;
  if (c->fused) {
    const size_t pad = 3, row = pad + 3 * w + 2;
    p.q_col = (uint32_t)pad;
    p.k_col = (uint32_t)(pad + w);
    p.v_col = (uint32_t)(pad + 2 * w);
    b->src[0] = spr_test_aligned_alloc(row * n_tok * sizeof(float));
    spr_test_fill(b->src[0], row * n_tok, seed, -amp, amp);
    for (size_t t = 0; t < n_tok; t++)
      for (size_t j = 0; j < w; j++) b->src[0][t * row + p.v_col + j] /= amp;
    const int64_t ne[2] = {(int64_t)row, (int64_t)n_tok};
    for (int s = 0; s < 3; s++) spr_test_tensor(&b->ts[s], SPR_DTYPE_F32, 2, ne, b->src[0]);
    b->src[1] = b->src[2] = b->src[0];
    b->n_src_bufs = 1;
  } else {
    const size_t cols[3] = {w + 1, w + 5, w};
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
  int n_src = 3;
  if (c->rpb) {
    const size_t nr = case_rpb_per_head(c) * (size_t)c->nh;
    b->rpb = spr_test_aligned_alloc(nr * sizeof(float));
    spr_test_fill(b->rpb, nr, seed + 99u, -2.0f, 2.0f);
    int64_t ne[4] = {1, 1, 1, 1};
    for (int a = 0; a < c->nd; a++) ne[a] = 2 * c->kernel[c->nd - 1 - a] - 1;
    ne[c->nd] = c->nh;
    spr_test_tensor(&b->ts[4], SPR_DTYPE_F32, c->nd + 1, ne, b->rpb);
    n_src = 4;
  }
  b->out = spr_test_aligned_alloc(w * n_tok * sizeof(float));
  b->ref = spr_test_aligned_alloc(w * n_tok * sizeof(float));
  for (size_t i = 0; i < w * n_tok; i++) b->out[i] = NAN;
  const int64_t ne_out[2] = {(int64_t)w, (int64_t)n_tok};
  spr_test_tensor(&b->ts[3], SPR_DTYPE_F32, 2, ne_out, b->out);
  b->node.op = SPR_OP_NEIGHBORHOOD_ATTN;
  b->node.n_src = (uint8_t)n_src;
  for (int i = 0; i < SPR_MAX_SRCS; i++) b->node.src[i] = -1;
  b->node.src[0] = 0;
  b->node.src[1] = 1;
  b->node.src[2] = 2;
  if (c->rpb) b->node.src[3] = 4;
  b->node.dst = 3;
  b->node.p.na = p;
}

static void case_ref(struct na_bufs *b) {
  const struct spr_na_params *p = &b->node.p.na;
  size_t nw = 1;
  for (int a = 0; a < p->n_dims; a++) nw *= p->kernel[a];
  double *scores = malloc(nw * sizeof(double));
  assert_non_null(scores);
  spr_f32_na_ref(p, b->src[0], (size_t)b->ts[0].ne[0], b->src[1], (size_t)b->ts[1].ne[0], b->src[2],
                 (size_t)b->ts[2].ne[0], b->rpb, b->ref, (size_t)p->n_heads * p->head_dim, scores);
  free(scores);
}

static void case_free(struct na_bufs *b) {
  for (int s = 0; s < b->n_src_bufs; s++) free(b->src[s]);
  free(b->rpb);
  free(b->out);
  free(b->ref);
}

static void case_name(const struct na_case *c, char *buf, size_t len) {
  int n = snprintf(buf, len, "%dd size", c->nd);
  for (int a = 0; a < c->nd; a++) n += snprintf(buf + n, len - (size_t)n, "%s%d", a ? "x" : "=", c->size[a]);
  n += snprintf(buf + n, len - (size_t)n, " K");
  for (int a = 0; a < c->nd; a++) n += snprintf(buf + n, len - (size_t)n, "%s%d", a ? "," : "=", c->kernel[a]);
  n += snprintf(buf + n, len - (size_t)n, " d");
  for (int a = 0; a < c->nd; a++)
    n += snprintf(buf + n, len - (size_t)n, "%s%d", a ? "," : "=", c->dil[a] ? c->dil[a] : 1);
  n += snprintf(buf + n, len - (size_t)n, " s");
  for (int a = 0; a < c->nd; a++)
    n += snprintf(buf + n, len - (size_t)n, "%s%d", a ? "," : "=", c->stride[a] ? c->stride[a] : 1);
  snprintf(buf + n, len - (size_t)n, " causal=%d heads=%d hd=%d rpb=%d amp=%g fused=%d", c->causal, c->nh, c->hd,
           c->rpb, (double)(c->amp > 0.0f ? c->amp : 1.0f), c->fused);
}

/* Runs the node with kernel k on n_threads, scratch poisoned with NaN. */
static void run_node(const struct kernel *k, struct na_bufs *b, int n_threads, const char *what) {
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

/* Runs case c with kernel k; compares with the oracle; returns the max
 * error; copies the output to out when non-NULL. */
static double run_case(const struct kernel *k, const struct na_case *c, int n_threads, float *out) {
  struct na_bufs b;
  case_setup(c, 7000u + (uint64_t)(c->size[0] * 131 + c->size[1] * 17 + c->kernel[0] * 7 + c->hd), &b);
  case_ref(&b);
  char name[240];
  case_name(c, name, sizeof name);
  run_node(k, &b, n_threads, name);
  const float amp = c->amp > 0.0f ? c->amp : 1.0f;
  const double L = (1.0 / sqrt((double)c->hd)) * c->hd * amp * amp + (c->rpb ? 2.0 : 0.0);
  const double tol = 2e-5 + 1e-6 * L;
  const size_t w = (size_t)c->nh * (size_t)c->hd;
  double worst = 0.0;
  for (size_t t = 0; t < b.n_tok; t++) {
    for (size_t j = 0; j < w; j++) {
      const double e = fabs((double)b.out[t * w + j] - (double)b.ref[t * w + j]);
      if (!(e <= tol))
        fail_msg("%s %s threads=%d: token %zu col %zu (head %zu) got %.9g want %.9g (err %.3g > %.3g)", k->name, name,
                 n_threads, t, j, j / (size_t)c->hd, (double)b.out[t * w + j], (double)b.ref[t * w + j], e, tol);
      if (e > worst) worst = e;
    }
  }
  if (out != NULL) memcpy(out, b.out, w * b.n_tok * sizeof(float));
  case_free(&b);
  return worst;
}

static void run_cases(const struct na_case *cs, size_t n, const char *what) {
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
    print_message("  %-34s %-8s %4zu cases, max abs err %.3g\n", k->name, what, n, worst);
  }
}

/* ---- hand-computed windows through the op ------------------------------------- */

/* Expected per-axis windows as token lists: win[a][i] = list of global
 * coordinates (count n[a][i]) of axis a seen by coordinate i. */
#define MAXL 16
struct axis_windows {
  int L;
  int n[MAXL];
  int key[MAXL][MAXL];
};

static void axis_from_starts(struct axis_windows *w, int L, int d, const int *start_g, const int *end_g) {
  /* start/end in group coordinates, per global query i */
  w->L = L;
  for (int i = 0; i < L; i++) {
    w->n[i] = 0;
    for (int j = start_g[i]; j < end_g[i]; j++) w->key[i][w->n[i]++] = j * d + i % d;
  }
}

/* One-hot V (head_dim = tokens), q = 0: out[t][j] = 1/|W(t)| for j in W(t). */
static void check_uniform(const struct na_case *c, const struct axis_windows *aw) {
  struct na_bufs b;
  case_setup(c, 1, &b);
  const size_t n_tok = b.n_tok, w = (size_t)c->nh * (size_t)c->hd, qs = (size_t)b.ts[0].ne[0];
  assert_int_equal(c->hd, (int)n_tok);
  for (size_t t = 0; t < n_tok; t++) {
    for (size_t j = 0; j < w; j++) {
      b.src[0][t * qs + b.node.p.na.q_col + j] = 0.0f;
      b.src[2][t * (size_t)b.ts[2].ne[0] + b.node.p.na.v_col + j] = (j % n_tok) == t ? 1.0f : 0.0f;
    }
  }
  char name[240];
  case_name(c, name, sizeof name);
  /* expected */
  float *want = calloc(w * n_tok, sizeof(float));
  assert_non_null(want);
  for (size_t t = 0; t < n_tok; t++) {
    int coord[3];
    size_t rem = t;
    for (int a = c->nd - 1; a >= 0; a--) {
      coord[a] = (int)(rem % (size_t)c->size[a]);
      rem /= (size_t)c->size[a];
    }
    int cnt = 1;
    for (int a = 0; a < c->nd; a++) cnt *= aw[a].n[coord[a]];
    /* enumerate the product */
    for (int e = 0; e < cnt; e++) {
      int r = e;
      size_t tok = 0;
      int kc[3];
      for (int a = c->nd - 1; a >= 0; a--) {
        const int na = aw[a].n[coord[a]];
        kc[a] = aw[a].key[coord[a]][r % na];
        r /= na;
      }
      for (int a = 0; a < c->nd; a++) tok = tok * (size_t)c->size[a] + (size_t)kc[a];
      for (int h = 0; h < c->nh; h++) want[t * w + (size_t)h * (size_t)c->hd + tok] = 1.0f / (float)cnt;
    }
  }
  case_ref(&b);
  for (size_t i = 0; i < w * n_tok; i++)
    if (fabs((double)b.ref[i] - (double)want[i]) > 1e-6)
      fail_msg("oracle %s: token %zu col %zu got %g want %g", name, i / w, i % w, (double)b.ref[i], (double)want[i]);
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) continue;
    for (size_t i = 0; i < w * n_tok; i++) b.out[i] = NAN;
    run_node(k, &b, 1, name);
    for (size_t i = 0; i < w * n_tok; i++)
      if (!(fabs((double)b.out[i] - (double)want[i]) <= 1e-6))
        fail_msg("%s %s: token %zu col %zu got %g want %g", k->name, name, i / w, i % w, (double)b.out[i],
                 (double)want[i]);
  }
  free(want);
  case_free(&b);
}

static void test_windows_op(void **state) {
  (void)state;
  struct axis_windows a7k3, a13k4, a10k3d3, a6c, a10s3, a8cs2;
  {
    const int st[7] = {0, 0, 1, 2, 3, 4, 4}, en[7] = {3, 3, 4, 5, 6, 7, 7};
    axis_from_starts(&a7k3, 7, 1, st, en);
  }
  {
    const int st[13] = {0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9};
    int en[13];
    for (int i = 0; i < 13; i++) en[i] = st[i] + 4;
    axis_from_starts(&a13k4, 13, 1, st, en);
  }
  {
    /* L = 10, d = 3: group 0 = {0,3,6,9} (4 tokens), groups 1, 2 three each;
     * K = 3 in group coordinates */
    const int st[10] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 1}, en[10] = {3, 3, 3, 3, 3, 3, 4, 3, 3, 4};
    axis_from_starts(&a10k3d3, 10, 3, st, en);
  }
  {
    const int st[6] = {0, 0, 0, 1, 2, 3}, en[6] = {1, 2, 3, 4, 5, 6};
    axis_from_starts(&a6c, 6, 1, st, en);
  }
  {
    const int st[10] = {0, 0, 0, 2, 2, 2, 5, 5, 5, 5};
    int en[10];
    for (int i = 0; i < 10; i++) en[i] = st[i] + 5;
    axis_from_starts(&a10s3, 10, 1, st, en);
  }
  {
    const int st[8] = {0, 0, 1, 1, 3, 3, 5, 5}, en[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    axis_from_starts(&a8cs2, 8, 1, st, en);
  }
  /* the token list of group 0 of L = 10, d = 3, query 9 (i' = 3): keys 3, 6, 9 */
  assert_int_equal(a10k3d3.key[9][0], 3);
  assert_int_equal(a10k3d3.key[9][2], 9);

  const struct {
    struct na_case c;
    const struct axis_windows *w[2];
  } cs[] = {
      {{1, {7}, {3}, {1}, {1}, 0, 1, 7, 0, 0.0f, 0}, {&a7k3}},
      {{1, {13}, {4}, {1}, {1}, 0, 2, 13, 0, 0.0f, 1}, {&a13k4}},
      {{1, {10}, {3}, {3}, {1}, 0, 1, 10, 0, 0.0f, 1}, {&a10k3d3}},
      {{1, {6}, {3}, {1}, {1}, 1, 1, 6, 0, 0.0f, 0}, {&a6c}},
      {{1, {10}, {5}, {1}, {3}, 0, 1, 10, 0, 0.0f, 1}, {&a10s3}},
      {{1, {8}, {3}, {1}, {2}, 1, 1, 8, 0, 0.0f, 1}, {&a8cs2}},
      /* 2-D products: rows x columns */
      {{2, {7, 10}, {3, 3}, {1, 3}, {1, 1}, 0, 1, 70, 0, 0.0f, 1}, {&a7k3, &a10k3d3}},
      {{2, {6, 13}, {3, 4}, {1, 1}, {1, 1}, 1, 1, 78, 0, 0.0f, 0}, {&a6c, &a13k4}},
      {{2, {10, 8}, {5, 3}, {1, 1}, {3, 2}, 2, 1, 80, 0, 0.0f, 1}, {&a10s3, &a8cs2}},
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    struct axis_windows w[2] = {*cs[i].w[0], cs[i].c.nd > 1 ? *cs[i].w[1] : *cs[i].w[0]};
    check_uniform(&cs[i].c, w);
  }
}

/* rpb with q = 0: weights exp(rpb[index]) with the indices written out. */
static void test_rpb_indexing(void **state) {
  (void)state;
  /* 1-D, L = 7, K = 3, one head, table {b0..b4}: query 0 sees keys 0,1,2 with
   * indices 2,3,4; query 3 keys 2,3,4 with 1,2,3; query 6 keys 4,5,6 with 0,1,2.
   * 1-D, L = 10, K = 3, d = 3: query 9 (group 0, i' = 3) sees 3, 6, 9 with 0,1,2.
   * 2-D 5x5 K = 3: query (0, 4) sees rows 0..2 (indices 2,3,4), columns 2..4
   * (indices 0,1,2): weight of key (r, c) = exp(rpb[2 + r][c - 2]). */
  const float tbl[5] = {0.3f, -0.7f, 1.1f, 0.25f, -1.4f};
  struct {
    struct na_case c;
    int query, n;
    int keys[9], idx[9];
  } cs[] = {
      {{1, {7}, {3}, {1}, {1}, 0, 1, 7, 1, 0.0f, 0}, 0, 3, {0, 1, 2}, {2, 3, 4}},
      {{1, {7}, {3}, {1}, {1}, 0, 1, 7, 1, 0.0f, 0}, 3, 3, {2, 3, 4}, {1, 2, 3}},
      {{1, {7}, {3}, {1}, {1}, 0, 1, 7, 1, 0.0f, 0}, 6, 3, {4, 5, 6}, {0, 1, 2}},
      {{1, {10}, {3}, {3}, {1}, 0, 1, 10, 1, 0.0f, 1}, 9, 3, {3, 6, 9}, {0, 1, 2}},
      {{2, {5, 5}, {3, 3}, {1, 1}, {1, 1}, 0, 1, 25, 1, 0.0f, 1},
       4,
       9,
       {2, 3, 4, 7, 8, 9, 12, 13, 14},
       {2 * 5 + 0, 2 * 5 + 1, 2 * 5 + 2, 3 * 5 + 0, 3 * 5 + 1, 3 * 5 + 2, 4 * 5 + 0, 4 * 5 + 1, 4 * 5 + 2}},
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    const struct na_case *c = &cs[i].c;
    struct na_bufs b;
    case_setup(c, 2, &b);
    const size_t n_tok = b.n_tok, qs = (size_t)b.ts[0].ne[0], vs = (size_t)b.ts[2].ne[0];
    for (size_t t = 0; t < n_tok; t++) {
      for (size_t j = 0; j < n_tok; j++) {
        b.src[0][t * qs + b.node.p.na.q_col + j] = 0.0f;
        b.src[2][t * vs + b.node.p.na.v_col + j] = j == t ? 1.0f : 0.0f;
      }
    }
    const size_t nr = case_rpb_per_head(c);
    for (size_t r = 0; r < nr; r++) b.rpb[r] = c->nd == 1 ? tbl[r] : tbl[r % 5] + 0.5f * (float)(r / 5);
    double sum = 0.0, wgt[9];
    for (int e = 0; e < cs[i].n; e++) {
      wgt[e] = exp((double)b.rpb[cs[i].idx[e]]);
      sum += wgt[e];
    }
    char name[240];
    case_name(c, name, sizeof name);
    const size_t qi = (size_t)cs[i].query;
    case_ref(&b);
    for (size_t ki = 0; ki <= N_KERNELS; ki++) {
      const float *got = b.ref;
      const char *who = "oracle";
      if (ki < N_KERNELS) {
        if (!kernel_available(&k_kernels[ki])) continue;
        run_node(&k_kernels[ki], &b, 1, name);
        got = b.out;
        who = k_kernels[ki].name;
      }
      for (size_t j = 0; j < n_tok; j++) {
        double want = 0.0;
        for (int e = 0; e < cs[i].n; e++)
          if ((size_t)cs[i].keys[e] == j) want = wgt[e] / sum;
        if (!(fabs((double)got[qi * n_tok + j] - want) <= 2e-6))
          fail_msg("%s %s: query %zu key %zu got %.8g want %.8g", who, name, qi, j, (double)got[qi * n_tok + j], want);
      }
    }
    case_free(&b);
  }
}

/* ---- against the oracle ----------------------------------------------------- */

/* 1-D: every K in {1,2,3,4,7}, d in {1,2,3}, stride {1,2} (<= K), causal or
 * not, lengths {K*d, tile-1, tile, tile+1, 3*tile+1, 37} (>= K*d). */
static void test_1d(void **state) {
  (void)state;
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) {
      print_message("  skip %s (ISA not available)\n", k->name);
      continue;
    }
    const int t = (int)k->tile;
    const int Ks[5] = {1, 2, 3, 4, 7};
    double worst = 0.0;
    int n = 0;
    for (int ik = 0; ik < 5; ik++) {
      for (int d = 1; d <= 3; d++) {
        for (int s = 1; s <= 2 && s <= Ks[ik]; s++) {
          for (int causal = 0; causal < 2; causal++) {
            const int Ls[6] = {Ks[ik] * d, t - 1, t, t + 1, 3 * t + 1, 37};
            for (int il = 0; il < 6; il++) {
              if (Ls[il] < Ks[ik] * d) continue;
              const struct na_case c = {1,   {Ls[il]}, {Ks[ik]},          {d},
                                        {s}, causal,   1 + (il + ik) % 2, (il % 2) ? 20 : 16,
                                        0,   0.0f,     (il + d) % 2};
              const double e = run_case(k, &c, 1, NULL);
              if (e > worst) worst = e;
              n++;
            }
          }
        }
      }
    }
    print_message("  %-34s 1-D      %4d cases, max abs err %.3g\n", k->name, n, worst);
  }
}

/* 2-D: the tiled axis (columns) over the edge sizes, rows over a few; odd and
 * even kernels, dilation with uneven groups, stride, causal per axis, rpb. */
static void test_2d(void **state) {
  (void)state;
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) {
      print_message("  skip %s (ISA not available)\n", k->name);
      continue;
    }
    const int t = (int)k->tile;
    const int Ws[6] = {7, t - 1, t, t + 1, 3 * t + 1, 19};
    const struct {
      int H, K[2], d[2], s[2], causal, rpb;
    } shapes[] = {
        {7, {3, 3}, {1, 1}, {1, 1}, 0, 0},  {9, {7, 7}, {1, 1}, {1, 1}, 0, 1},  {8, {4, 2}, {1, 1}, {1, 1}, 0, 0},
        {11, {3, 5}, {2, 1}, {1, 1}, 0, 1}, {10, {3, 3}, {3, 2}, {1, 1}, 0, 0}, {9, {3, 4}, {1, 1}, {2, 3}, 0, 0},
        {6, {3, 3}, {1, 1}, {1, 1}, 1, 0},  {8, {2, 3}, {2, 1}, {1, 1}, 2, 0},  {7, {4, 4}, {1, 1}, {2, 1}, 3, 0},
        {5, {5, 1}, {1, 1}, {5, 1}, 0, 0},
    };
    double worst = 0.0;
    int n = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
      for (int iw = 0; iw < 6; iw++) {
        const int W = Ws[iw];
        if (W < shapes[si].K[1] * shapes[si].d[1]) continue;
        const struct na_case c = {2,
                                  {shapes[si].H, W},
                                  {shapes[si].K[0], shapes[si].K[1]},
                                  {shapes[si].d[0], shapes[si].d[1]},
                                  {shapes[si].s[0], shapes[si].s[1]},
                                  shapes[si].causal,
                                  1 + (int)(si + (size_t)iw) % 2,
                                  (iw % 2) ? 20 : 32,
                                  shapes[si].rpb,
                                  0.0f,
                                  (int)(si + (size_t)iw) % 2};
        const double e = run_case(k, &c, 1, NULL);
        if (e > worst) worst = e;
        n++;
      }
    }
    print_message("  %-34s 2-D      %4d cases, max abs err %.3g\n", k->name, n, worst);
  }
}

static void test_3d_and_misc(void **state) {
  (void)state;
  static const struct na_case cs[] = {
      {3, {4, 5, 6}, {3, 2, 3}, {1, 2, 1}, {1, 1, 1}, 0, 2, 16, 0, 0.0f, 1},
      {3, {5, 4, 9}, {3, 3, 3}, {1, 1, 2}, {1, 1, 1}, 0, 1, 20, 1, 0.0f, 0},
      {3, {6, 3, 17}, {2, 3, 4}, {2, 1, 1}, {2, 1, 2}, 5, 1, 8, 0, 0.0f, 1},
      {3, {3, 3, 3}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 0, 2, 12, 0, 0.0f, 0},
      /* K*d == L (global sparse / self attention) and K == L */
      {2, {14, 14}, {7, 7}, {2, 2}, {1, 1}, 0, 2, 32, 0, 0.0f, 1},
      {2, {7, 7}, {7, 7}, {1, 1}, {1, 1}, 0, 2, 32, 1, 0.0f, 1},
      /* NAT-like: 28x28, K 7, 2 heads of 32; DiNAT-like d = 4 */
      {2, {28, 28}, {7, 7}, {1, 1}, {1, 1}, 0, 2, 32, 1, 0.0f, 1},
      {2, {28, 28}, {7, 7}, {4, 4}, {1, 1}, 0, 2, 32, 0, 0.0f, 1},
      /* head_dim 1, 3 and 64 */
      {2, {9, 10}, {3, 3}, {1, 1}, {1, 1}, 0, 3, 1, 0, 0.0f, 0},
      {2, {9, 10}, {3, 5}, {1, 1}, {1, 1}, 0, 2, 3, 0, 0.0f, 1},
      {2, {9, 21}, {5, 5}, {1, 1}, {1, 1}, 0, 1, 64, 1, 0.0f, 1},
      /* large logits (|logit| up to ~ 8^2 * sqrt(32)) */
      {2, {12, 20}, {5, 5}, {1, 1}, {1, 1}, 0, 2, 32, 0, 8.0f, 1},
      {1, {50}, {9}, {1}, {1}, 1, 2, 32, 0, 8.0f, 0},
      /* the AVX-512 direct P.V path (whole bands in every column tile):
       * head_dim 48 (a 32- and a 16-column block), the widest band (K 8),
       * K 9 (band too wide: ring path), full 8-lane tiles with border
       * pairs (56 columns), 3-D planes */
      {2, {10, 24}, {5, 5}, {1, 1}, {1, 1}, 0, 1, 48, 1, 0.0f, 1},
      {2, {12, 20}, {8, 8}, {1, 1}, {1, 1}, 0, 2, 16, 0, 0.0f, 0},
      {2, {12, 20}, {9, 9}, {1, 1}, {1, 1}, 0, 1, 32, 1, 0.0f, 1},
      {2, {9, 56}, {7, 7}, {1, 1}, {1, 1}, 0, 2, 32, 1, 2.0f, 1},
      {3, {5, 6, 16}, {3, 3, 5}, {1, 1, 1}, {1, 1, 1}, 0, 1, 32, 1, 0.0f, 0},
      /* long 1-D (several column blocks per task split) */
      {1, {700}, {15}, {1}, {1}, 1, 1, 16, 0, 0.0f, 1},
      {1, {601}, {8}, {3}, {4}, 0, 1, 16, 0, 0.0f, 0},
  };
  run_cases(cs, sizeof cs / sizeof cs[0], "3-D/misc");
}

/* 1, 2 and 3 threads give bit-identical outputs (the row blocks of a task
 * depend on the thread count: a query's result must not). */
static void test_threads(void **state) {
  (void)state;
  static const struct na_case cs[] = {
      {2, {60, 20}, {5, 5}, {2, 1}, {1, 1}, 0, 2, 20, 1, 0.0f, 1},
      {1, {600}, {9}, {1}, {1}, 1, 2, 16, 0, 0.0f, 0},
      {3, {4, 9, 9}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, 0, 1, 16, 0, 0.0f, 1},
      /* one head: the row blocks differ between 1, 2 and 3 threads */
      {2, {40, 20}, {7, 7}, {1, 1}, {1, 1}, 0, 1, 32, 1, 0.0f, 1},
      {2, {33, 17}, {4, 3}, {1, 1}, {1, 1}, 1, 1, 20, 0, 0.0f, 0},
      /* the AVX-512 direct P.V path, border pairs included */
      {2, {30, 56}, {7, 7}, {1, 1}, {1, 1}, 0, 1, 32, 1, 0.0f, 1},
  };
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) continue;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
      const struct na_case *c = &cs[i];
      const size_t n = case_tokens(c) * (size_t)c->nh * (size_t)c->hd;
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
  const struct spr_op_def *def = spr_op_get(SPR_OP_NEIGHBORHOOD_ATTN);
  assert_non_null(def);
  static float buf[64 * 100];
  struct {
    struct na_case c;
    int rpb_ne0; /* 0: right size; -1: n_dims = 4 */
    int out_cols;
    enum spr_status want;
  } cs[] = {
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, 0, 2, 8, 0, 0.0f, 1}, 0, 0, SPR_STATUS_OK},
      {{2, {8, 8}, {3, 5}, {1, 2}, {1, 1}, 0, 2, 8, 0, 0.0f, 1}, 0, 0, SPR_STATUS_INVALID_ARGUMENT},  /* K*d > L */
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 4}, 0, 2, 8, 0, 0.0f, 1}, 0, 0, SPR_STATUS_INVALID_ARGUMENT},  /* s > K */
      {{2, {8, 8}, {3, 0}, {1, 1}, {1, 1}, 0, 2, 8, 0, 0.0f, 1}, 0, 0, SPR_STATUS_INVALID_ARGUMENT},  /* K = 0 */
      {{2, {8, 8}, {4, 3}, {1, 1}, {1, 1}, 0, 2, 8, 1, 0.0f, 1}, 0, 0, SPR_STATUS_INVALID_ARGUMENT},  /* rpb, even K */
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, 1, 2, 8, 1, 0.0f, 1}, 0, 0, SPR_STATUS_INVALID_ARGUMENT},  /* rpb, causal */
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 2}, 0, 2, 8, 1, 0.0f, 1}, 0, 0, SPR_STATUS_INVALID_ARGUMENT},  /* rpb, stride */
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, 0, 2, 8, 1, 0.0f, 1}, 4, 0, SPR_STATUS_INVALID_ARGUMENT},  /* rpb shape */
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, 0, 2, 8, 0, 0.0f, 1}, 0, 15, SPR_STATUS_INVALID_ARGUMENT}, /* out cols */
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, 4, 2, 8, 0, 0.0f, 1}, 0, 0, SPR_STATUS_INVALID_ARGUMENT},  /* causal bit */
      {{2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, 0, 2, 8, 0, 0.0f, 1}, -1, 0, SPR_STATUS_INVALID_ARGUMENT}, /* n_dims 4 */
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    const struct na_case *c = &cs[i].c;
    struct spr_tensor ts[5];
    struct spr_node n;
    memset(&n, 0, sizeof n);
    struct spr_na_params p;
    case_params(c, &p);
    if (cs[i].rpb_ne0 < 0) p.n_dims = 4;
    p.k_col = 16;
    p.v_col = 32;
    const int64_t nq[2] = {48, 64}, no[2] = {cs[i].out_cols ? cs[i].out_cols : 16, 64};
    const int64_t nb[3] = {cs[i].rpb_ne0 > 0 ? cs[i].rpb_ne0 : 2 * c->kernel[1] - 1, 2 * c->kernel[0] - 1, 2};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, nq, buf);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, no, buf);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 3, nb, buf);
    n.op = SPR_OP_NEIGHBORHOOD_ATTN;
    n.n_src = 4;
    n.src[0] = n.src[1] = n.src[2] = 0;
    n.src[3] = c->rpb ? 2 : -1;
    n.src[4] = n.src[5] = -1;
    n.dst = 1;
    n.p.na = p;
    struct spr_error err = {SPR_STATUS_OK, ""};
    const enum spr_status s = def->check(ts, &n, &err);
    if (s != cs[i].want) fail_msg("check case %zu: status %d (%s), expected %d", i, (int)s, err.msg, (int)cs[i].want);
  }
}

static void test_flops(void **state) {
  (void)state;
  const struct spr_op_def *def = spr_op_get(SPR_OP_NEIGHBORHOOD_ATTN);
  struct spr_node n;
  memset(&n, 0, sizeof n);
  const struct na_case c = {2, {56, 56}, {7, 7}, {1, 1}, {1, 1}, 0, 2, 32, 0, 0.0f, 1};
  case_params(&c, &n.p.na);
  assert_true(def->flops(NULL, &n) == 4ull * 2 * 32 * 56 * 56 * 49);
  /* causal 1-D: query i sees min(i + 1, K) keys */
  const struct na_case cc = {1, {10}, {4}, {1}, {1}, 1, 1, 8, 0, 0.0f, 1};
  case_params(&cc, &n.p.na);
  assert_true(def->flops(NULL, &n) == 4ull * 8 * (1 + 2 + 3 + 4 * 7));
}

/* ---- the PyTorch reference's golden outputs ---------------------------------- */

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
  struct spr_na_params p;
  memset(&p, 0, sizeof p);
  p.n_dims = (uint8_t)gu32(&g, "na.n_dims");
  p.n_heads = (uint16_t)gu32(&g, "na.n_heads");
  p.head_dim = (uint16_t)gu32(&g, "na.head_dim");
  p.causal = (uint8_t)gu32(&g, "na.causal");
  char key[64];
  for (int a = 0; a < p.n_dims; a++) {
    snprintf(key, sizeof key, "na.size.%d", a);
    p.size[a] = (uint16_t)gu32(&g, key);
    snprintf(key, sizeof key, "na.kernel.%d", a);
    p.kernel[a] = (uint16_t)gu32(&g, key);
    snprintf(key, sizeof key, "na.dilation.%d", a);
    p.dilation[a] = (uint16_t)gu32(&g, key);
    snprintf(key, sizeof key, "na.stride.%d", a);
    p.stride[a] = (uint16_t)gu32(&g, key);
  }
  struct spr_gguf_tensor qkv, out, rpb;
  assert_int_equal(spr_gguf_find_tensor(&g, "qkv", &qkv), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_find_tensor(&g, "out", &out), SPR_STATUS_OK);
  const int has_rpb = spr_gguf_find_tensor(&g, "rpb", &rpb) == SPR_STATUS_OK;
  const size_t w = (size_t)p.n_heads * p.head_dim;
  p.q_col = 0;
  p.k_col = (uint32_t)w;
  p.v_col = (uint32_t)(2 * w);
  const size_t n_tok = (size_t)qkv.ne[1];
  assert_int_equal((size_t)qkv.ne[0], 3 * w);
  float *src = spr_test_aligned_alloc(qkv.nbytes), *o = spr_test_aligned_alloc(out.nbytes);
  float *bias = has_rpb ? spr_test_aligned_alloc(rpb.nbytes) : NULL;
  memcpy(src, qkv.data, qkv.nbytes);
  if (has_rpb) memcpy(bias, rpb.data, rpb.nbytes);
  const float *want = out.data;
  double worst = 0.0;
  for (size_t ki = 0; ki < N_KERNELS; ki++) {
    const struct kernel *k = &k_kernels[ki];
    if (!kernel_available(k)) continue;
    for (int threads = 1; threads <= 2; threads++) {
      struct spr_tensor ts[5];
      const int64_t nq[2] = {(int64_t)(3 * w), (int64_t)n_tok}, no[2] = {(int64_t)w, (int64_t)n_tok};
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, nq, src);
      spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, no, o);
      if (has_rpb) spr_test_tensor(&ts[2], SPR_DTYPE_F32, (int)rpb.n_dims, rpb.ne, bias);
      struct spr_node n;
      memset(&n, 0, sizeof n);
      n.op = SPR_OP_NEIGHBORHOOD_ATTN;
      n.n_src = 4;
      n.src[0] = n.src[1] = n.src[2] = 0;
      n.src[3] = has_rpb ? 2 : -1;
      n.src[4] = n.src[5] = -1;
      n.dst = 1;
      n.p.na = p;
      struct na_bufs b;
      memset(&b, 0, sizeof b);
      memcpy(b.ts, ts, sizeof ts);
      b.node = n;
      run_node(k, &b, threads, file);
      for (size_t i = 0; i < w * n_tok; i++) {
        float wv;
        memcpy(&wv, (const uint8_t *)want + 4 * i, 4);
        const double e = fabs((double)o[i] - (double)wv);
        if (!(e <= 1e-5))
          fail_msg("%s %s threads=%d: token %zu col %zu got %.8g reference %.8g (err %.3g)", file, k->name, threads,
                   i / w, i % w, (double)o[i], (double)wv, e);
        if (e > worst) worst = e;
      }
    }
  }
  print_message("  %-34s vs PyTorch: max abs err %.3g\n", file, worst);
  free(src);
  free(o);
  free(bias);
  free(blob);
}

static void test_natten_golden(void **state) {
  (void)state;
  DIR *d = opendir(FIXTURES);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "na_", 3) != 0 || strstr(e->d_name, ".golden.gguf") == NULL) continue;
    run_golden(e->d_name);
    n++;
  }
  closedir(d);
  assert_true(n >= 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_window_rule),  cmocka_unit_test(test_windows_op),
      cmocka_unit_test(test_rpb_indexing), cmocka_unit_test(test_check),
      cmocka_unit_test(test_flops),        cmocka_unit_test(test_1d),
      cmocka_unit_test(test_2d),           cmocka_unit_test(test_3d_and_misc),
      cmocka_unit_test(test_threads),      cmocka_unit_test(test_natten_golden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
