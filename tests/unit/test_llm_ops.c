/* tests/unit/test_llm_ops.c — GET_ROWS, ROPE, KV_STORE, LAST_ROW.
 *
 * GET_ROWS, KV_STORE and LAST_ROW move or convert data, so they must match
 * their oracles bit for bit (f16 rounding as ops/common/fp16.h).
 *
 * ROPE is checked three ways, every ukernel:
 *  1. bit-identical to the scalar ukernel (all use ggml's mul/mul/add);
 *  2. against a second, independent formulation: ggml's float angle
 *     recurrence written out here, then (x0 + i x1) * (cos + i sin) as a
 *     complex multiply in double. Only the op's own float products and sum
 *     differ: |y - want| <= 2^-22 * (|x0| + |x1|) (a few ulps);
 *  3. against the double oracle spr_f32_rope_ref, whose angles are exact.
 *     The op's angles are ggml's float ones: theta_i = pos * ts^i built by i
 *     float multiplies (relative error <= i * 2^-23 incl. powf's) and
 *     a = freq_scale * theta_i (2^-24). Their absolute error is at most
 *     pos * freq_scale * 2^-23 * (1 + max_i i * base^(-2i/n_rot))
 *     <= pos * freq_scale * 2^-23 * (1 + n_rot / (2 e ln base)),
 *     which moves the output by the same amount times |x| <= 1; plus float
 *     rounding of cos/sin and the products. Tolerance: 2x that bound +
 *     1e-6 (at pos 2000, n_rot 128, base 1e4: 1.7e-3; at pos 0: 1e-6).
 * All ops: 1 vs 2 threads bit-identical; check() rejections. */
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

#include "ops/common/fp16.h"
#include "ops/llm/llm.h"
#include "ops/op.h"
#include "ops/quant/quant.h"
#include "sparrow/gguf.h"
#include "support/op_harness.h"
#include "support/test_util.h"

static const struct spr_f32_rope_ukernel k_rope[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/llm/rope.inc"
#undef SPR_UKERNEL
};
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool host_has(uint32_t isa, const char *name) {
  if ((isa & ~spr_cpu_isa()) == 0) return true;
  print_message("  skip %s (ISA not on this host)\n", name);
  return false;
}

static void node_init(struct spr_node *n, enum spr_op op, int n_src, int dst) {
  memset(n, 0, sizeof *n);
  n->op = (uint16_t)op;
  n->n_src = (uint8_t)n_src;
  for (int i = 0; i < SPR_MAX_SRCS; i++) n->src[i] = i < n_src ? i : -1;
  n->dst = dst;
}

/* Sets ne[1] of a dynamic-rows tensor as spr_session_set_step does. */
static void set_rows(struct spr_tensor *t, int64_t rows) {
  t->ne[1] = rows;
  t->nbytes = spr_tensor_nbytes(t->type, t->ne, SPR_MAX_DIMS);
}

/* ---- GET_ROWS ------------------------------------------------------------- */

/* Runs GET_ROWS on `ids` (n of them, as {n} or {1, n}) over a {d, v} table. */
static void get_rows_case(enum spr_dtype type, size_t d, size_t v, const int32_t *ids, size_t n, int ids_2d,
                          int n_threads, float *out) {
  float *tf = malloc(d * v * sizeof(float));
  uint16_t *th = malloc(d * v * sizeof(uint16_t));
  float *want = malloc(d * n * sizeof(float));
  assert_non_null(tf);
  assert_non_null(th);
  assert_non_null(want);
  spr_test_fill(tf, d * v, 11, -3.0f, 3.0f);
  for (size_t i = 0; i < d * v; i++) th[i] = spr_fp16_from_f32(tf[i]);
  const void *table = type == SPR_DTYPE_F16 ? (const void *)th : (const void *)tf;
  struct spr_tensor ts[3];
  const int64_t ne_t[2] = {(int64_t)d, (int64_t)v}, ne_i1[1] = {(int64_t)n}, ne_i2[2] = {1, (int64_t)n},
                ne_y[2] = {(int64_t)d, (int64_t)n};
  spr_test_tensor(&ts[0], type, 2, ne_t, (void *)table);
  if (ids_2d)
    spr_test_tensor(&ts[1], SPR_DTYPE_I32, 2, ne_i2, (void *)ids);
  else
    spr_test_tensor(&ts[1], SPR_DTYPE_I32, 1, ne_i1, (void *)ids);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, out);
  struct spr_node node;
  node_init(&node, SPR_OP_GET_ROWS, 2, 2);
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_run(ts, &node, SPR_ISA_ALL, n_threads, 1, NULL, &err);
  if (s != SPR_STATUS_OK) fail_msg("get_rows %s: status %d (%s)", spr_dtype_name(type), (int)s, err.msg);
  spr_get_rows_ref(type, table, d, v, ids, n, want);
  for (size_t i = 0; i < d * n; i++) {
    if (memcmp(&out[i], &want[i], sizeof(float)) != 0)
      fail_msg("get_rows %s d=%zu n=%zu ids_2d=%d: token %zu col %zu got %g want %g", spr_dtype_name(type), d, n,
               ids_2d, i / d, i % d, (double)out[i], (double)want[i]);
  }
  free(tf);
  free(th);
  free(want);
}

static void test_get_rows(void **state) {
  (void)state;
  /* 50 and -1 are out of range: they read row 0 */
  static const int32_t ids[] = {3, 0, 49, 17, 50, -1, 17, 8, 2};
  const enum spr_dtype types[2] = {SPR_DTYPE_F32, SPR_DTYPE_F16};
  const size_t ns[3] = {1, 5, N_ELEMS(ids)};
  for (int ti = 0; ti < 2; ti++) {
    for (int ni = 0; ni < 3; ni++) {
      for (int two = 0; two < 2; two++) {
        const size_t d = ni == 1 ? 1 : 37;
        float *o1 = malloc(d * ns[ni] * sizeof(float)), *o2 = malloc(d * ns[ni] * sizeof(float));
        assert_non_null(o1);
        assert_non_null(o2);
        get_rows_case(types[ti], d, 50, ids, ns[ni], two, 1, o1);
        get_rows_case(types[ti], d, 50, ids, ns[ni], two, 2, o2);
        if (memcmp(o1, o2, d * ns[ni] * sizeof(float)) != 0)
          fail_msg("get_rows %s n=%zu: 1 and 2 threads differ", spr_dtype_name(types[ti]), ns[ni]);
        free(o1);
        free(o2);
      }
    }
  }
}

/* The LLM graph's shape: ids {1, cap} and output {D, cap} with dynamic rows;
 * each step sets ne[1] = n_tokens as the session does. Rows past n_tokens
 * are never written. */
static void test_get_rows_dynamic(void **state) {
  (void)state;
  enum { D = 24, V = 30, CAP = 8 };
  float *table = malloc(D * V * sizeof(float));
  float *out = malloc(D * CAP * sizeof(float));
  float want[D * CAP];
  int32_t ids[CAP];
  assert_non_null(table);
  assert_non_null(out);
  spr_test_fill(table, D * V, 5, -1.0f, 1.0f);
  struct spr_tensor ts[3];
  const int64_t ne_t[2] = {D, V}, ne_i[2] = {1, CAP}, ne_y[2] = {D, CAP};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_t, table);
  spr_test_tensor(&ts[1], SPR_DTYPE_I32, 2, ne_i, ids);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, out);
  for (int i = 1; i < 3; i++) {
    ts[i].flags = SPR_TENSOR_DYN_ROWS;
    ts[i].max_rows = CAP;
  }
  struct spr_node node;
  node_init(&node, SPR_OP_GET_ROWS, 2, 2);
  struct spr_test_op h;
  struct spr_error err = {SPR_STATUS_OK, ""};
  assert_int_equal(spr_test_op_setup(&h, ts, &node, SPR_ISA_ALL, 2, &err), SPR_STATUS_OK);
  const int steps[] = {5, 1, 8, 3};
  int n_past = 0;
  for (size_t s = 0; s < N_ELEMS(steps); s++) {
    const int nt = steps[s];
    for (int i = 0; i < CAP; i++) ids[i] = i < nt ? (int32_t)((n_past + 7 * i) % V) : 12345;
    for (int i = 0; i < D * CAP; i++) out[i] = NAN;
    set_rows(&ts[1], nt);
    set_rows(&ts[2], nt);
    h.run.n_past = n_past;
    h.run.n_tokens = nt;
    spr_test_op_exec(&h);
    spr_get_rows_ref(SPR_DTYPE_F32, table, D, V, ids, (size_t)nt, want);
    assert_memory_equal(out, want, (size_t)nt * D * sizeof(float));
    for (int i = nt * D; i < D * CAP; i++)
      if (!isnan(out[i])) fail_msg("step %zu (n_tokens %d): element %d past the step's rows was written", s, nt, i);
    n_past += nt;
  }
  spr_test_op_teardown(&h);
  free(table);
  free(out);
}

/* ---- ROPE ------------------------------------------------------------------- */

struct rope_case {
  int n_heads, head_dim, n_rot, n_tokens, n_past;
  float freq_base, freq_scale;
};

/* Runs ROPE with the ukernels allowed by isa; y may be x (in place). */
static void rope_run(const struct rope_case *c, uint32_t isa, int n_threads, float *x, float *y, const char **impl) {
  struct spr_tensor ts[2];
  const int64_t ne[2] = {(int64_t)c->n_heads * c->head_dim, c->n_tokens};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne, y);
  struct spr_node node;
  node_init(&node, SPR_OP_ROPE, 1, 1);
  node.p.rope.n_heads = (uint16_t)c->n_heads;
  node.p.rope.head_dim = (uint16_t)c->head_dim;
  node.p.rope.n_rot = (uint16_t)c->n_rot;
  node.p.rope.freq_base = c->freq_base;
  node.p.rope.freq_scale = c->freq_scale;
  struct spr_test_op h;
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_setup(&h, ts, &node, isa, n_threads, &err);
  if (s != SPR_STATUS_OK) fail_msg("rope: status %d (%s)", (int)s, err.msg);
  if (impl != NULL) *impl = node.impl_name;
  h.run.n_past = c->n_past;
  h.run.n_tokens = c->n_tokens;
  spr_test_op_exec(&h);
  spr_test_op_teardown(&h);
}

/* The second formulation: ggml's float angles, complex multiply in double. */
static void rope_complex(const struct rope_case *c, const float *x, double *want) {
  const size_t row = (size_t)c->n_heads * (size_t)c->head_dim;
  for (int t = 0; t < c->n_tokens; t++) {
    const float ts = powf(c->freq_base, -2.0f / (float)c->n_rot);
    float theta = (float)(c->n_past + t);
    for (int i = 0; i < c->n_rot / 2; i++) {
      const float a = c->freq_scale * theta;
      const double cr = (double)cosf(a), ci = (double)sinf(a);
      for (int h = 0; h < c->n_heads; h++) {
        const size_t k = (size_t)t * row + (size_t)h * (size_t)c->head_dim + 2u * (size_t)i;
        const double zr = x[k], zi = x[k + 1];
        want[k] = zr * cr - zi * ci;
        want[k + 1] = zr * ci + zi * cr;
      }
      theta = theta * ts;
    }
    for (int h = 0; h < c->n_heads; h++)
      for (int d = c->n_rot; d < c->head_dim; d++) {
        const size_t k = (size_t)t * row + (size_t)h * (size_t)c->head_dim + (size_t)d;
        want[k] = x[k];
      }
  }
}

static void rope_check_case(const struct spr_f32_rope_ukernel *k, const struct rope_case *c, double *worst_ref) {
  const size_t row = (size_t)c->n_heads * (size_t)c->head_dim, n = row * (size_t)c->n_tokens;
  float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *ys = malloc(n * sizeof(float));
  float *yr = malloc(n * sizeof(float)), *yi = malloc(n * sizeof(float));
  double *want = malloc(n * sizeof(double));
  assert_true(x && y && ys && yr && yi && want);
  spr_test_fill(x, n, 100u + (uint64_t)n, -1.0f, 1.0f);
  const char *impl = NULL;
  rope_run(c, k->isa, 1, x, y, &impl);
  if (impl == NULL || strcmp(impl, k->name) != 0) fail_msg("isa 0x%x chose %s, not %s", k->isa, impl, k->name);
  rope_run(c, 0, 1, x, ys, NULL);
  memcpy(yi, x, n * sizeof(float));
  rope_run(c, k->isa, 1, yi, yi, NULL); /* in place */
  struct spr_rope_params p = {(uint16_t)c->n_heads, (uint16_t)c->head_dim, (uint16_t)c->n_rot,
                              c->freq_base,         c->freq_scale,         0};
  spr_f32_rope_ref(&p, (size_t)c->n_tokens, c->n_past, x, row, yr);
  rope_complex(c, x, want);
  const double ln_b = log((double)c->freq_base);
  for (size_t i = 0; i < n; i++) {
    const size_t t = i / row, d = i % (size_t)c->head_dim;
    const double pos = (double)c->n_past + (double)t;
    if (memcmp(&y[i], &ys[i], sizeof(float)) != 0 || memcmp(&y[i], &yi[i], sizeof(float)) != 0)
      fail_msg("%s heads=%d hd=%d n_rot=%d: token %zu elem %zu: %.9g, scalar %.9g, in place %.9g", k->name, c->n_heads,
               c->head_dim, c->n_rot, t, i % row, (double)y[i], (double)ys[i], (double)yi[i]);
    const size_t pair0 = i - (d % 2);
    const double mag = d < (size_t)c->n_rot ? fabs((double)x[pair0]) + fabs((double)x[pair0 + 1]) : 0.0;
    const double e2 = fabs((double)y[i] - want[i]);
    if (e2 > ldexp(mag, -22))
      fail_msg("%s n_rot=%d base=%g pos=%g: token %zu elem %zu got %.9g, complex formulation %.9g (err %.3g)", k->name,
               c->n_rot, (double)c->freq_base, pos, t, i % row, (double)y[i], want[i], e2);
    const double tol =
        1e-6 + 2.0 * pos * (double)c->freq_scale * ldexp(1.0, -23) * (1.0 + c->n_rot / (2.0 * exp(1.0) * ln_b));
    const double e3 = fabs((double)y[i] - (double)yr[i]);
    if (e3 > tol)
      fail_msg("%s n_rot=%d base=%g pos=%g: token %zu elem %zu got %.9g, oracle %.9g (err %.3g > tol %.3g)", k->name,
               c->n_rot, (double)c->freq_base, pos, t, i % row, (double)y[i], (double)yr[i], e3, tol);
    if (e3 / tol > *worst_ref) *worst_ref = e3 / tol;
  }
  free(x);
  free(y);
  free(ys);
  free(yr);
  free(yi);
  free(want);
}

static void test_rope(void **state) {
  (void)state;
  for (size_t ki = 0; ki < N_ELEMS(k_rope); ki++) {
    const struct spr_f32_rope_ukernel *k = &k_rope[ki];
    if (!host_has(k->isa, k->name)) continue;
    double worst = 0.0;
    /* n_rot over {2, tile-2, tile, tile+2, 3 tile+2, 22} (pairs: odd counts too), dims past n_rot copied */
    const int t = (int)k->tile;
    const int rots[6] = {2, t > 2 ? t - 2 : 4, t, t + 2, 3 * t + 2, 22};
    for (int r = 0; r < 6; r++) {
      const struct rope_case c = {3, rots[r] + 3, rots[r], 4, 7, 10000.0f, 1.0f};
      rope_check_case(k, &c, &worst);
    }
    static const struct rope_case cs[] = {
        {32, 64, 64, 1, 0, 10000.0f, 1.0f},    /* TinyLlama decode, first token */
        {32, 64, 64, 1, 2047, 10000.0f, 1.0f}, /* ... at the end of its context */
        {4, 64, 64, 64, 63, 10000.0f, 1.0f},   /* prefill rows */
        {4, 64, 32, 9, 5, 10000.0f, 1.0f},     /* n_rot < head_dim */
        {2, 128, 128, 5, 2000, 500000.0f, 1.0f}, {3, 128, 64, 3, 1000, 500000.0f, 1.0f},
        {2, 48, 48, 6, 300, 10000.0f, 0.25f}, /* linear position scaling */
    };
    for (size_t i = 0; i < N_ELEMS(cs); i++) rope_check_case(k, &cs[i], &worst);
    print_message("  %-36s worst error / tolerance vs the oracle %.3f\n", k->name, worst);
  }
}

/* ROPE from a column offset of wider rows (K inside a fused QKV row) gives
 * the bits of ROPE over those columns copied out, and matches the oracle. */
static void test_rope_col(void **state) {
  (void)state;
  const int nh = 3, hd = 16, nt = 5, col = 7, aw = col + nh * hd + 9, yw = nh * hd;
  float *a = malloc((size_t)nt * aw * sizeof(float)), *sub = malloc((size_t)nt * yw * sizeof(float));
  float *y1 = malloc((size_t)nt * yw * sizeof(float)), *y2 = malloc((size_t)nt * yw * sizeof(float));
  float *yr = malloc((size_t)nt * yw * sizeof(float));
  assert_true(a && sub && y1 && y2 && yr);
  spr_test_fill(a, (size_t)nt * aw, 77, -1.0f, 1.0f);
  for (int t = 0; t < nt; t++) memcpy(sub + t * yw, a + t * aw + col, (size_t)yw * sizeof(float));
  for (size_t ki = 0; ki < N_ELEMS(k_rope); ki++) {
    if (!host_has(k_rope[ki].isa, k_rope[ki].name)) continue;
    for (int pass = 0; pass < 2; pass++) {
      struct spr_tensor ts[2];
      const int64_t ne_a[2] = {pass ? yw : aw, nt}, ne_y[2] = {yw, nt};
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, pass ? sub : a);
      spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_y, pass ? y2 : y1);
      struct spr_node node;
      node_init(&node, SPR_OP_ROPE, 1, 1);
      node.p.rope.n_heads = (uint16_t)nh, node.p.rope.head_dim = (uint16_t)hd, node.p.rope.n_rot = (uint16_t)hd;
      node.p.rope.freq_base = 10000.0f, node.p.rope.freq_scale = 1.0f, node.p.rope.col = pass ? 0u : (uint32_t)col;
      struct spr_test_op h;
      struct spr_error err = {SPR_STATUS_OK, ""};
      assert_int_equal(spr_test_op_setup(&h, ts, &node, k_rope[ki].isa, 2, &err), SPR_STATUS_OK);
      h.run.n_past = 40;
      h.run.n_tokens = nt;
      spr_test_op_exec(&h);
      spr_test_op_teardown(&h);
    }
    if (memcmp(y1, y2, (size_t)nt * yw * sizeof(float)) != 0) fail_msg("%s: rope with col differs", k_rope[ki].name);
    const struct spr_rope_params p = {(uint16_t)nh, (uint16_t)hd, (uint16_t)hd, 10000.0f, 1.0f, (uint32_t)col};
    spr_f32_rope_ref(&p, (size_t)nt, 40, a, (size_t)aw, yr);
    for (int i = 0; i < nt * yw; i++)
      if (fabsf(y1[i] - yr[i]) > 1e-5f)
        fail_msg("%s: rope col %d: elem %d %g vs oracle %g", k_rope[ki].name, col, i, (double)y1[i], (double)yr[i]);
  }
  free(a), free(sub), free(y1), free(y2), free(yr);
}

/* ---- KV_STORE -------------------------------------------------------------------- */

/* Writes steps of rows into a cache with the op and with the oracle; the
 * caches must stay byte-identical (unwritten rows keep their fill). */
static void kv_store_sequence(enum spr_dtype type, const struct spr_kv_params *p, size_t w, size_t cap,
                              const int *steps, size_t n_steps, int n_threads, void *cache_out) {
  const size_t elem = type == SPR_DTYPE_F16 ? 2 : 4, max_t = 64;
  const size_t aw = p->col + w + (p->col ? 3 : 0); /* source rows: the cache's columns from p->col */
  uint8_t *cache = malloc(cap * w * elem), *want = malloc(cap * w * elem);
  float *rows = malloc(max_t * aw * sizeof(float));
  assert_true(cache && want && rows);
  memset(cache, 0xA5, cap * w * elem);
  memset(want, 0xA5, cap * w * elem);
  struct spr_tensor ts[2];
  const int64_t ne_a[2] = {(int64_t)aw, (int64_t)max_t}, ne_c[2] = {(int64_t)w, (int64_t)cap};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, rows);
  ts[0].flags = SPR_TENSOR_DYN_ROWS;
  ts[0].max_rows = (int32_t)max_t;
  spr_test_tensor(&ts[1], type, 2, ne_c, cache);
  ts[1].role = SPR_ROLE_STATE;
  struct spr_node node;
  node_init(&node, SPR_OP_KV_STORE, 1, 1);
  node.p.kv = *p;
  struct spr_test_op h;
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_setup(&h, ts, &node, SPR_ISA_ALL, n_threads, &err);
  if (s != SPR_STATUS_OK) fail_msg("kv_store: status %d (%s)", (int)s, err.msg);
  int n_past = 0;
  for (size_t st = 0; st < n_steps; st++) {
    const int nt = steps[st];
    assert_true(nt >= 1 && (size_t)nt <= max_t);
    spr_test_fill(rows, (size_t)nt * aw, 300u + st, -70000.0f, 70000.0f); /* f16 overflow to inf included */
    for (size_t i = 0; i < (size_t)nt * aw; i += 5) rows[i] *= 1e-6f;     /* and subnormals */
    set_rows(&ts[0], nt);
    h.run.n_past = n_past;
    h.run.n_tokens = nt;
    spr_test_op_exec(&h);
    spr_kv_store_ref(p, w, (size_t)nt, n_past, rows, aw, type, want, cap);
    if (memcmp(cache, want, cap * w * elem) != 0) {
      size_t i = 0;
      while (cache[i] == want[i]) i++;
      fail_msg(
          "kv_store %s window=%u sinks=%u ring=%u col=%u: step %zu (n_past %d, %d rows): cache byte %zu (row %zu) "
          "differs",
          spr_dtype_name(type), p->window, p->sinks, p->ring, p->col, st, n_past, nt, i, i / (w * elem));
    }
    n_past += nt;
  }
  spr_test_op_teardown(&h);
  if (cache_out != NULL) memcpy(cache_out, cache, cap * w * elem);
  free(cache);
  free(want);
  free(rows);
}

static void test_kv_store(void **state) {
  (void)state;
  const enum spr_dtype types[2] = {SPR_DTYPE_F32, SPR_DTYPE_F16};
  static const int steps[] = {3, 1, 1, 5, 2, 1, 7, 5, 1, 1, 3}; /* 30 positions */
  const struct spr_kv_params linear = {0, 0, 0, 0}, win = {4, 2, 4 + 7 - 1, 0}, win0 = {6, 0, 6 + 7 - 1, 0};
  const struct spr_kv_params linear_col = {0, 0, 0, 11}, win_col = {4, 2, 4 + 7 - 1, 5}; /* V inside a fused QKV row */
  for (int ti = 0; ti < 2; ti++) {
    const size_t w = 20, elem = ti ? 2 : 4;
    uint8_t *c1 = malloc(32 * w * elem), *c2 = malloc(32 * w * elem);
    assert_true(c1 && c2);
    /* linear, 32 rows: every position has its own row */
    kv_store_sequence(types[ti], &linear, w, 32, steps, N_ELEMS(steps), 1, c1);
    kv_store_sequence(types[ti], &linear, w, 32, steps, N_ELEMS(steps), 2, c2);
    assert_memory_equal(c1, c2, 32 * w * elem);
    /* windowed: 2 sinks + a ring of 10 rows, wrapped twice by 30 positions */
    kv_store_sequence(types[ti], &win, w, 12, steps, N_ELEMS(steps), 1, c1);
    kv_store_sequence(types[ti], &win, w, 12, steps, N_ELEMS(steps), 2, c2);
    assert_memory_equal(c1, c2, 12 * w * elem);
    kv_store_sequence(types[ti], &win0, w, 12, steps, N_ELEMS(steps), 2, NULL);
    kv_store_sequence(types[ti], &linear_col, w, 32, steps, N_ELEMS(steps), 2, NULL);
    kv_store_sequence(types[ti], &win_col, w, 12, steps, N_ELEMS(steps), 1, NULL);
    /* a linear cache too small for the sequence: rows past it are dropped, never written out of bounds */
    kv_store_sequence(types[ti], &linear, w, 10, steps, N_ELEMS(steps), 2, NULL);
    free(c1);
    free(c2);
  }
  /* the slot rule itself */
  assert_int_equal(spr_kv_slot(5, 0, 2, 3), 5);
  assert_int_equal(spr_kv_slot(1, 4, 2, 6), 1);
  assert_int_equal(spr_kv_slot(2, 4, 2, 6), 2);
  assert_int_equal(spr_kv_slot(7, 4, 2, 6), 7);
  assert_int_equal(spr_kv_slot(8, 4, 2, 6), 2);
  assert_int_equal(spr_kv_slot(15, 4, 2, 6), 3);
}

/* ---- LAST_ROW --------------------------------------------------------------------- */

static void test_last_row(void **state) {
  (void)state;
  enum { D = 19, CAP = 6 };
  float x[D * CAP], y[D];
  spr_test_fill(x, D * CAP, 9, -1.0f, 1.0f);
  struct spr_tensor ts[2];
  const int64_t ne_x[2] = {D, CAP}, ne_y[2] = {D, 1};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
  ts[0].flags = SPR_TENSOR_DYN_ROWS;
  ts[0].max_rows = CAP;
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_y, y);
  struct spr_node node;
  node_init(&node, SPR_OP_LAST_ROW, 1, 1);
  struct spr_test_op h;
  assert_int_equal(spr_test_op_setup(&h, ts, &node, SPR_ISA_ALL, 2, NULL), SPR_STATUS_OK);
  for (int nt = 1; nt <= CAP; nt++) {
    set_rows(&ts[0], nt);
    h.run.n_past = 3 * nt;
    h.run.n_tokens = nt;
    spr_test_op_exec(&h);
    assert_memory_equal(y, x + (nt - 1) * D, sizeof y);
  }
  /* no run state (n_tokens 0): the input's last row */
  set_rows(&ts[0], 4);
  h.run.n_tokens = 0;
  spr_test_op_exec(&h);
  assert_memory_equal(y, x + 3 * D, sizeof y);
  spr_test_op_teardown(&h);
}

/* ---- threads ------------------------------------------------------------------------ */

static void test_threads(void **state) {
  (void)state;
  const struct rope_case c = {4, 64, 64, 37, 100, 10000.0f, 1.0f};
  const size_t n = 4 * 64 * 37;
  float *x = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float)),
        *y3 = malloc(n * sizeof(float));
  assert_true(x && y1 && y2 && y3);
  spr_test_fill(x, n, 77, -1.0f, 1.0f);
  rope_run(&c, SPR_ISA_ALL, 1, x, y1, NULL);
  rope_run(&c, SPR_ISA_ALL, 2, x, y2, NULL);
  rope_run(&c, SPR_ISA_ALL, 3, x, y3, NULL);
  if (memcmp(y1, y2, n * sizeof(float)) != 0 || memcmp(y1, y3, n * sizeof(float)) != 0)
    fail_msg("rope: 1, 2 and 3 threads differ");
  free(x);
  free(y1);
  free(y2);
  free(y3);
}

/* ---- check() ------------------------------------------------------------------------- */

#define EXPECT(def, want)                                                                                         \
  do {                                                                                                            \
    struct spr_error err_ = {SPR_STATUS_OK, ""};                                                                  \
    const enum spr_status s_ = (def)->check(ts, &n, &err_);                                                       \
    if (s_ != (want)) fail_msg("line %d: status %d, expected %d (%s)", __LINE__, (int)s_, (int)(want), err_.msg); \
    if (s_ != SPR_STATUS_OK && err_.msg[0] == 0) fail_msg("line %d: no message", __LINE__);                       \
  } while (0)

static void test_check(void **state) {
  (void)state;
  struct spr_tensor ts[4];
  struct spr_node n;
  const struct spr_op_def *gr = spr_op_get(SPR_OP_GET_ROWS), *rp = spr_op_get(SPR_OP_ROPE),
                          *kv = spr_op_get(SPR_OP_KV_STORE), *lr = spr_op_get(SPR_OP_LAST_ROW);
  assert_true(gr && rp && kv && lr && gr->check && rp->check && kv->check && lr->check);

  /* GET_ROWS: table {8, 10}, ids {1, 4}, out {8, 4} */
  const int64_t ne_t[2] = {8, 10}, ne_i[2] = {1, 4}, ne_i1[1] = {4}, ne_y[2] = {8, 4};
#define GR_RESET()                                         \
  do {                                                     \
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_t, NULL); \
    spr_test_tensor(&ts[1], SPR_DTYPE_I32, 2, ne_i, NULL); \
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, NULL); \
    node_init(&n, SPR_OP_GET_ROWS, 2, 2);                  \
  } while (0)
  GR_RESET();
  EXPECT(gr, SPR_STATUS_OK);
  ts[0].type = SPR_DTYPE_F16;
  EXPECT(gr, SPR_STATUS_OK);
  spr_test_tensor(&ts[1], SPR_DTYPE_I32, 1, ne_i1, NULL); /* {T} ids */
  EXPECT(gr, SPR_STATUS_OK);
  const enum spr_dtype quant[4] = {SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  for (int i = 0; i < 4; i++) {
    GR_RESET();
    ts[0].type = quant[i]; /* rows of 8 are not whole quantization blocks */
    EXPECT(gr, SPR_STATUS_BAD_SHAPE);
  }
  GR_RESET();
  ts[1].type = SPR_DTYPE_F32;
  EXPECT(gr, SPR_STATUS_BAD_TENSOR_TYPE);
  GR_RESET();
  ts[1].ne[0] = 2; /* {2, 4} ids */
  EXPECT(gr, SPR_STATUS_BAD_SHAPE);
  GR_RESET();
  ts[2].ne[1] = 3; /* output rows != ids */
  EXPECT(gr, SPR_STATUS_BAD_SHAPE);
  GR_RESET();
  ts[2].ne[0] = 9;
  EXPECT(gr, SPR_STATUS_BAD_SHAPE);
  GR_RESET();
  ts[2].type = SPR_DTYPE_F16;
  EXPECT(gr, SPR_STATUS_BAD_TENSOR_TYPE);
  GR_RESET();
  n.src[1] = -1;
  EXPECT(gr, SPR_STATUS_INVALID_ARGUMENT);
#undef GR_RESET

  /* ROPE: {2 heads x 8, 3} */
  const int64_t ne_r[2] = {16, 3};
#define RP_RESET()                                         \
  do {                                                     \
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_r, NULL); \
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_r, NULL); \
    node_init(&n, SPR_OP_ROPE, 1, 1);                      \
    n.p.rope.n_heads = 2;                                  \
    n.p.rope.head_dim = 8;                                 \
    n.p.rope.n_rot = 8;                                    \
    n.p.rope.freq_base = 10000.0f;                         \
    n.p.rope.freq_scale = 1.0f;                            \
  } while (0)
  RP_RESET();
  EXPECT(rp, SPR_STATUS_OK);
  n.p.rope.n_rot = 4;
  EXPECT(rp, SPR_STATUS_OK);
  n.p.rope.n_rot = 3; /* odd */
  EXPECT(rp, SPR_STATUS_INVALID_ARGUMENT);
  n.p.rope.n_rot = 0;
  EXPECT(rp, SPR_STATUS_INVALID_ARGUMENT);
  n.p.rope.n_rot = 10; /* > head_dim */
  EXPECT(rp, SPR_STATUS_INVALID_ARGUMENT);
  RP_RESET();
  n.p.rope.n_heads = 3; /* 3 x 8 != 16 */
  EXPECT(rp, SPR_STATUS_BAD_SHAPE);
  RP_RESET();
  n.p.rope.freq_base = 0.0f;
  EXPECT(rp, SPR_STATUS_INVALID_ARGUMENT);
  RP_RESET();
  n.p.rope.freq_base = INFINITY;
  EXPECT(rp, SPR_STATUS_INVALID_ARGUMENT);
  RP_RESET();
  n.p.rope.freq_scale = NAN;
  EXPECT(rp, SPR_STATUS_INVALID_ARGUMENT);
  RP_RESET();
  ts[1].ne[1] = 2;
  EXPECT(rp, SPR_STATUS_BAD_SHAPE);
  RP_RESET();
  ts[0].type = SPR_DTYPE_F16;
  EXPECT(rp, SPR_STATUS_BAD_TENSOR_TYPE);
#undef RP_RESET

  /* KV_STORE: rows {12, 4} into a cache {12, 20} */
  const int64_t ne_a[2] = {12, 4}, ne_c[2] = {12, 20};
#define KV_RESET()                                         \
  do {                                                     \
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, NULL); \
    spr_test_tensor(&ts[1], SPR_DTYPE_F16, 2, ne_c, NULL); \
    node_init(&n, SPR_OP_KV_STORE, 1, 1);                  \
  } while (0)
  KV_RESET();
  EXPECT(kv, SPR_STATUS_OK);
  ts[1].type = SPR_DTYPE_F32;
  EXPECT(kv, SPR_STATUS_OK);
  n.p.kv.window = 4;
  n.p.kv.ring = 7;
  EXPECT(kv, SPR_STATUS_OK);
  n.p.kv.ring = 0;
  EXPECT(kv, SPR_STATUS_INVALID_ARGUMENT);
  KV_RESET();
  ts[1].type = SPR_DTYPE_Q8_0;
  EXPECT(kv, SPR_STATUS_BAD_TENSOR_TYPE);
  KV_RESET();
  ts[0].type = SPR_DTYPE_F16;
  EXPECT(kv, SPR_STATUS_BAD_TENSOR_TYPE);
  KV_RESET();
  ts[1].ne[0] = 13;
  EXPECT(kv, SPR_STATUS_BAD_SHAPE);
  KV_RESET();
  ts[1].ne[2] = 2;
  EXPECT(kv, SPR_STATUS_BAD_SHAPE);
#undef KV_RESET

  /* LAST_ROW: {12, 4} -> {12, 1} */
  const int64_t ne_l[2] = {12, 1};
#define LR_RESET()                                         \
  do {                                                     \
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, NULL); \
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_l, NULL); \
    node_init(&n, SPR_OP_LAST_ROW, 1, 1);                  \
  } while (0)
  LR_RESET();
  EXPECT(lr, SPR_STATUS_OK);
  ts[1].ne[1] = 2;
  EXPECT(lr, SPR_STATUS_BAD_SHAPE);
  LR_RESET();
  ts[1].ne[0] = 11;
  EXPECT(lr, SPR_STATUS_BAD_SHAPE);
  LR_RESET();
  ts[1].type = SPR_DTYPE_F16;
  EXPECT(lr, SPR_STATUS_BAD_TENSOR_TYPE);
#undef LR_RESET
}

/* Quantized tables: every row equals ops/quant's dequantizer output. */
static void test_get_rows_quantized(void **state) {
  (void)state;
  enum { D = 512, V = 7, T = 5 };
  const enum spr_dtype types[4] = {SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  static float src[V * D], want[D], got[T * D];
  static uint8_t table[V * D * 2];
  spr_test_fill(src, V * D, 11, -2.0f, 2.0f);
  const int32_t ids[T] = {6, 0, 3, 3, 1};
  for (int k = 0; k < 4; k++) {
    const int64_t ne_tab[2] = {D, V}, ne_ids[1] = {T}, ne_y[2] = {D, T};
    const size_t row_bytes = spr_tensor_nbytes(types[k], ne_tab, 1);
    for (int r = 0; r < V; r++) {
      const float *x = src + r * D;
      uint8_t *y = table + r * row_bytes;
      switch (types[k]) {
        case SPR_DTYPE_Q8_0:
          spr_quantize_row_q8_0_ref(x, y, D);
          break;
        case SPR_DTYPE_Q4_0:
          spr_quantize_row_q4_0_ref(x, y, D);
          break;
        case SPR_DTYPE_Q4_K:
          spr_quantize_row_q4_k_ref(x, y, D);
          break;
        default:
          spr_quantize_row_q6_k_ref(x, y, D);
          break;
      }
    }
    struct spr_tensor ts[3];
    spr_test_tensor(&ts[0], types[k], 2, ne_tab, table);
    spr_test_tensor(&ts[1], SPR_DTYPE_I32, 1, ne_ids, (void *)ids);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, got);
    struct spr_node n;
    node_init(&n, SPR_OP_GET_ROWS, 2, 2);
    const char *impl = NULL;
    assert_int_equal(spr_test_op_run(ts, &n, SPR_ISA_ALL, 1, 1, &impl, NULL), SPR_STATUS_OK);
    for (int t = 0; t < T; t++) {
      assert_int_equal(spr_dequantize_row(types[k], table + (size_t)ids[t] * row_bytes, want, D), SPR_STATUS_OK);
      if (memcmp(want, got + t * D, sizeof want) != 0) fail_msg("%s: row %d (id %d) differs", impl, t, ids[t]);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_rows_quantized), cmocka_unit_test(test_check),    cmocka_unit_test(test_get_rows),
      cmocka_unit_test(test_get_rows_dynamic),   cmocka_unit_test(test_rope),     cmocka_unit_test(test_rope_col),
      cmocka_unit_test(test_kv_store),           cmocka_unit_test(test_last_row), cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
