/* ops/eltwise/eltwise.c — ADD, MUL, SCALE, CONCAT_ROWS, MEAN_ROWS ops.
 *
 * Work splits never depend on the thread count: element-wise ops cut the
 * flat range into fixed chunks (or rows, when b is broadcast), concat copies
 * rows, mean_rows gives each task whole columns and sums rows in order. */
#include "ops/eltwise/eltwise.h"

#include <math.h>
#include <string.h>

#include "ops/op.h"
#include "runtime/error.h"

#define UKERNEL_ENTRY(isa, fn, tile) {(isa), (tile), fn, #fn},
static const struct spr_f32_vbinary_ukernel k_add[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/eltwise/add.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vbinary_ukernel k_mul[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/eltwise/mul.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vscale_ukernel k_scale[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/eltwise/scale.inc"
#undef SPR_UKERNEL
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
/* the first entry whose ISA bits are all in isa; the last (scalar) needs none */
#define PICK(list, isa)                                       \
  do {                                                        \
    for (size_t i_ = 0; i_ < N_ELEMS(list); i_++) {           \
      if (((list)[i_].isa & ~(isa)) == 0) return &(list)[i_]; \
    }                                                         \
    return &(list)[N_ELEMS(list) - 1];                        \
  } while (0)

const struct spr_f32_vbinary_ukernel *spr_f32_add_select(uint32_t isa) {
  PICK(k_add, isa);
}
const struct spr_f32_vbinary_ukernel *spr_f32_mul_select(uint32_t isa) {
  PICK(k_mul, isa);
}
const struct spr_f32_vscale_ukernel *spr_f32_scale_select(uint32_t isa) {
  PICK(k_scale, isa);
}

/* Elements per task for flat element-wise work: fixed, a multiple of every
 * vector width. */
#define CHUNK 8192
/* Columns per MEAN_ROWS task. */
#define MEAN_COLS 64

static enum spr_status check_f32(const struct spr_tensor *t, const char *what, struct spr_error *err) {
  SPR_CHECK(t->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE, "%s must be f32 (is %s)", what,
            spr_dtype_name(t->type));
  return SPR_STATUS_OK;
}

static bool is_row_vector(const struct spr_tensor *b, const struct spr_tensor *a) {
  return b->ne[0] == a->ne[0] && spr_tensor_rows(b) == 1;
}

/* ---- ADD / MUL ----------------------------------------------------------- */

static enum spr_status binary_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 2 && n->src[0] >= 0 && n->src[1] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "needs two inputs");
  const struct spr_tensor *a = &ts[n->src[0]], *b = &ts[n->src[1]], *y = &ts[n->dst];
  SPR_TRY(check_f32(a, "first input", err));
  SPR_TRY(check_f32(b, "second input", err));
  SPR_TRY(check_f32(y, "output", err));
  SPR_CHECK(spr_same_shape(a, y), SPR_STATUS_BAD_SHAPE, "output shape differs from the first input's");
  SPR_CHECK(spr_same_shape(a, b) || is_row_vector(b, a), SPR_STATUS_BAD_SHAPE,
            "second input {%lld,%lld,%lld,%lld} is neither the first's shape {%lld,%lld,%lld,%lld} nor one row of "
            "it",
            (long long)b->ne[0], (long long)b->ne[1], (long long)b->ne[2], (long long)b->ne[3], (long long)a->ne[0],
            (long long)a->ne[1], (long long)a->ne[2], (long long)a->ne[3]);
  return SPR_STATUS_OK;
}

static void add_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const struct spr_f32_vbinary_ukernel *k = spr_f32_add_select(isa);
  n->impl = k;
  n->impl_name = k->name;
}
static void mul_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const struct spr_f32_vbinary_ukernel *k = spr_f32_mul_select(isa);
  n->impl = k;
  n->impl_name = k->name;
}

struct binary_ctx {
  spr_f32_vbinary_fn fn;
  const float *a, *b;
  float *y;
  size_t n; /* same shape: all elements; broadcast: row length */
};

static void binary_chunks(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct binary_ctx *c = p;
  const size_t lo = begin * CHUNK, hi = end * CHUNK < c->n ? end * CHUNK : c->n;
  c->fn(hi - lo, c->a + lo, c->b + lo, c->y + lo);
}

static void binary_rows(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct binary_ctx *c = p;
  for (size_t r = begin; r < end; r++) c->fn(c->n, c->a + r * c->n, c->b, c->y + r * c->n);
}

static void binary_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *a = &x->tensors[n->src[0]], *b = &x->tensors[n->src[1]];
  struct binary_ctx c = {
      .fn = ((const struct spr_f32_vbinary_ukernel *)n->impl)->fn,
      .a = a->data,
      .b = b->data,
      .y = x->tensors[n->dst].data,
  };
  if (spr_same_shape(a, b)) {
    c.n = (size_t)spr_tensor_nelem(a);
    spr_parallel(x, (c.n + CHUNK - 1) / CHUNK, binary_chunks, &c);
  } else {
    c.n = (size_t)a->ne[0];
    spr_parallel(x, (size_t)spr_tensor_rows(a), binary_rows, &c);
  }
}

static uint64_t one_per_elem(const struct spr_tensor *ts, const struct spr_node *n) {
  return (uint64_t)spr_tensor_nelem(&ts[n->src[0]]);
}

const struct spr_op_def spr_op_add_def = {
    .name = "add",
    .check = binary_check,
    .workspace = NULL,
    .prepare = add_prepare,
    .run = binary_run,
    .flops = one_per_elem,
};

const struct spr_op_def spr_op_mul_def = {
    .name = "mul",
    .check = binary_check,
    .workspace = NULL,
    .prepare = mul_prepare,
    .run = binary_run,
    .flops = one_per_elem,
};

/* ---- SCALE --------------------------------------------------------------- */

static enum spr_status scale_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "needs an input");
  const struct spr_tensor *x = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_TRY(check_f32(x, "input", err));
  SPR_TRY(check_f32(y, "output", err));
  SPR_CHECK(spr_same_shape(x, y), SPR_STATUS_BAD_SHAPE, "output shape differs from the input's");
  SPR_CHECK(isfinite(n->p.scale.s), SPR_STATUS_INVALID_ARGUMENT, "scale must be finite (is %g)", (double)n->p.scale.s);
  return SPR_STATUS_OK;
}

static void scale_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const struct spr_f32_vscale_ukernel *k = spr_f32_scale_select(isa);
  n->impl = k;
  n->impl_name = k->name;
}

struct scale_ctx {
  spr_f32_vscale_fn fn;
  const float *x;
  float *y;
  size_t n;
  float s;
};

static void scale_chunks(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct scale_ctx *c = p;
  const size_t lo = begin * CHUNK, hi = end * CHUNK < c->n ? end * CHUNK : c->n;
  c->fn(hi - lo, c->x + lo, c->s, c->y + lo);
}

static void scale_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *tx = &x->tensors[n->src[0]];
  struct scale_ctx c = {
      .fn = ((const struct spr_f32_vscale_ukernel *)n->impl)->fn,
      .x = tx->data,
      .y = x->tensors[n->dst].data,
      .n = (size_t)spr_tensor_nelem(tx),
      .s = n->p.scale.s,
  };
  spr_parallel(x, (c.n + CHUNK - 1) / CHUNK, scale_chunks, &c);
}

const struct spr_op_def spr_op_scale_def = {
    .name = "scale",
    .check = scale_check,
    .workspace = NULL,
    .prepare = scale_prepare,
    .run = scale_run,
    .flops = one_per_elem,
};

/* ---- CONCAT_ROWS --------------------------------------------------------- */

static enum spr_status concat_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 2 && n->src[0] >= 0 && n->src[1] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "needs two inputs");
  const struct spr_tensor *a = &ts[n->src[0]], *b = &ts[n->src[1]], *y = &ts[n->dst];
  SPR_TRY(check_f32(a, "first input", err));
  SPR_TRY(check_f32(b, "second input", err));
  SPR_TRY(check_f32(y, "output", err));
  SPR_CHECK(a->ne[0] == b->ne[0] && y->ne[0] == a->ne[0], SPR_STATUS_BAD_SHAPE,
            "row lengths differ (inputs %lld and %lld, output %lld)", (long long)a->ne[0], (long long)b->ne[0],
            (long long)y->ne[0]);
  SPR_CHECK(spr_tensor_rows(y) == spr_tensor_rows(a) + spr_tensor_rows(b), SPR_STATUS_BAD_SHAPE,
            "output has %lld rows, inputs %lld + %lld", (long long)spr_tensor_rows(y), (long long)spr_tensor_rows(a),
            (long long)spr_tensor_rows(b));
  return SPR_STATUS_OK;
}

static void concat_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts, (void)isa;
  n->impl = NULL;
  n->impl_name = "concat_rows_memcpy";
}

struct concat_ctx {
  const float *a, *b;
  float *y;
  size_t d, rows_a;
};

static void concat_rows(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct concat_ctx *c = p;
  if (begin < c->rows_a) {
    const size_t e = end < c->rows_a ? end : c->rows_a;
    memcpy(c->y + begin * c->d, c->a + begin * c->d, (e - begin) * c->d * sizeof(float));
    begin = e;
  }
  if (begin < end) memcpy(c->y + begin * c->d, c->b + (begin - c->rows_a) * c->d, (end - begin) * c->d * sizeof(float));
}

static void concat_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *a = &x->tensors[n->src[0]], *y = &x->tensors[n->dst];
  struct concat_ctx c = {
      .a = a->data,
      .b = x->tensors[n->src[1]].data,
      .y = y->data,
      .d = (size_t)a->ne[0],
      .rows_a = (size_t)spr_tensor_rows(a),
  };
  spr_parallel(x, (size_t)spr_tensor_rows(y), concat_rows, &c);
}

static uint64_t no_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  (void)ts, (void)n;
  return 0;
}

const struct spr_op_def spr_op_concat_rows_def = {
    .name = "concat_rows",
    .check = concat_check,
    .workspace = NULL,
    .prepare = concat_prepare,
    .run = concat_run,
    .flops = no_flops,
};

/* ---- MEAN_ROWS ----------------------------------------------------------- */

static enum spr_status mean_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "needs an input");
  const struct spr_tensor *x = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_TRY(check_f32(x, "input", err));
  SPR_TRY(check_f32(y, "output", err));
  SPR_CHECK(spr_tensor_rows(x) >= 1, SPR_STATUS_BAD_SHAPE, "no rows to average");
  SPR_CHECK(is_row_vector(y, x), SPR_STATUS_BAD_SHAPE, "output must be one row of %lld (is {%lld,%lld,%lld,%lld})",
            (long long)x->ne[0], (long long)y->ne[0], (long long)y->ne[1], (long long)y->ne[2], (long long)y->ne[3]);
  return SPR_STATUS_OK;
}

static void mean_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts, (void)isa;
  n->impl = NULL;
  n->impl_name = "mean_rows_f64acc";
}

struct mean_ctx {
  const float *x;
  float *y;
  size_t d, rows;
};

/* Each task owns MEAN_COLS columns and adds the rows in order, in double. */
static void mean_cols(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct mean_ctx *c = p;
  for (size_t blk = begin; blk < end; blk++) {
    const size_t c0 = blk * MEAN_COLS, w = c->d - c0 < MEAN_COLS ? c->d - c0 : MEAN_COLS;
    double acc[MEAN_COLS];
    for (size_t j = 0; j < w; j++) acc[j] = 0.0;
    for (size_t r = 0; r < c->rows; r++) {
      const float *row = c->x + r * c->d + c0;
      for (size_t j = 0; j < w; j++) acc[j] += row[j];
    }
    for (size_t j = 0; j < w; j++) c->y[c0 + j] = (float)(acc[j] / (double)c->rows);
  }
}

static void mean_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *tx = &x->tensors[n->src[0]];
  struct mean_ctx c = {
      .x = tx->data,
      .y = x->tensors[n->dst].data,
      .d = (size_t)tx->ne[0],
      .rows = (size_t)spr_tensor_rows(tx),
  };
  spr_parallel(x, (c.d + MEAN_COLS - 1) / MEAN_COLS, mean_cols, &c);
}

const struct spr_op_def spr_op_mean_rows_def = {
    .name = "mean_rows",
    .check = mean_check,
    .workspace = NULL,
    .prepare = mean_prepare,
    .run = mean_run,
    .flops = one_per_elem,
};
