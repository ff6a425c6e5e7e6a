/* ops/norm/norm.c — LAYERNORM and RMSNORM ops: validation, ukernel choice,
 * rows split over the pool (each row is normalized by one task, so results do
 * not depend on the thread count). */
#include "ops/norm/norm.h"

#include <math.h>

#include "ops/op.h"
#include "runtime/error.h"

static const struct spr_f32_layernorm_ukernel k_layernorm[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/norm/layernorm.inc"
#undef SPR_UKERNEL
};

static const struct spr_f32_rmsnorm_ukernel k_rmsnorm[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/norm/rmsnorm.inc"
#undef SPR_UKERNEL
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

const struct spr_f32_layernorm_ukernel *spr_f32_layernorm_select(uint32_t isa) {
  for (size_t i = 0; i < N_ELEMS(k_layernorm); i++) {
    if ((k_layernorm[i].isa & ~isa) == 0) return &k_layernorm[i];
  }
  return &k_layernorm[N_ELEMS(k_layernorm) - 1];
}

const struct spr_f32_rmsnorm_ukernel *spr_f32_rmsnorm_select(uint32_t isa) {
  for (size_t i = 0; i < N_ELEMS(k_rmsnorm); i++) {
    if ((k_rmsnorm[i].isa & ~isa) == 0) return &k_rmsnorm[i];
  }
  return &k_rmsnorm[N_ELEMS(k_rmsnorm) - 1];
}

/* A per-channel vector of x's row length: f32 with ne {D} (other dims 1). */
static enum spr_status check_channel_vec(const struct spr_tensor *v, int64_t d, const char *what,
                                         struct spr_error *err) {
  SPR_CHECK(v->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE, "%s must be f32 (is %s)", what,
            spr_dtype_name(v->type));
  SPR_CHECK(v->ne[0] == d && spr_tensor_rows(v) == 1, SPR_STATUS_BAD_SHAPE,
            "%s must have shape {%lld} (has {%lld,%lld,%lld,%lld})", what, (long long)d, (long long)v->ne[0],
            (long long)v->ne[1], (long long)v->ne[2], (long long)v->ne[3]);
  return SPR_STATUS_OK;
}

static enum spr_status check_norm(const struct spr_tensor *ts, const struct spr_node *n, int n_vecs,
                                  struct spr_error *err) {
  SPR_CHECK(n->n_src >= 2 && n->src[0] >= 0 && n->src[1] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "needs an input and a weight");
  const struct spr_tensor *x = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_CHECK(x->type == SPR_DTYPE_F32 && y->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "input and output must be f32 (are %s, %s)", spr_dtype_name(x->type), spr_dtype_name(y->type));
  SPR_CHECK(x->ne[0] >= 1, SPR_STATUS_BAD_SHAPE, "empty rows");
  SPR_CHECK(spr_same_shape(x, y), SPR_STATUS_BAD_SHAPE, "output shape differs from the input's");
  SPR_TRY(check_channel_vec(&ts[n->src[1]], x->ne[0], "weight", err));
  if (n_vecs > 1 && n->n_src >= 3 && n->src[2] >= 0) SPR_TRY(check_channel_vec(&ts[n->src[2]], x->ne[0], "bias", err));
  SPR_CHECK(isfinite(n->p.norm.eps) && n->p.norm.eps >= 0.0f, SPR_STATUS_INVALID_ARGUMENT,
            "eps must be finite and >= 0 (is %g)", (double)n->p.norm.eps);
  return SPR_STATUS_OK;
}

static enum spr_status layernorm_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  return check_norm(ts, n, 2, err);
}
static enum spr_status rmsnorm_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  return check_norm(ts, n, 1, err);
}

static void layernorm_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const struct spr_f32_layernorm_ukernel *k = spr_f32_layernorm_select(isa);
  n->impl = k;
  n->impl_name = k->name;
}
static void rmsnorm_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const struct spr_f32_rmsnorm_ukernel *k = spr_f32_rmsnorm_select(isa);
  n->impl = k;
  n->impl_name = k->name;
}

struct norm_ctx {
  const void *k;
  const float *x, *gamma, *beta;
  float *y;
  size_t d;
  float eps;
};

static void layernorm_rows(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct norm_ctx *c = p;
  const spr_f32_layernorm_fn fn = ((const struct spr_f32_layernorm_ukernel *)c->k)->fn;
  for (size_t r = begin; r < end; r++) fn(c->d, c->x + r * c->d, c->gamma, c->beta, c->eps, c->y + r * c->d);
}
static void rmsnorm_rows(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct norm_ctx *c = p;
  const spr_f32_rmsnorm_fn fn = ((const struct spr_f32_rmsnorm_ukernel *)c->k)->fn;
  for (size_t r = begin; r < end; r++) fn(c->d, c->x + r * c->d, c->gamma, c->eps, c->y + r * c->d);
}

static void norm_run(const struct spr_exec *x, const struct spr_node *n, spr_task_fn rows_fn) {
  const struct spr_tensor *tx = &x->tensors[n->src[0]];
  const bool has_beta = n->op == SPR_OP_LAYERNORM && n->n_src >= 3 && n->src[2] >= 0;
  struct norm_ctx c = {
      .k = n->impl,
      .x = tx->data,
      .gamma = x->tensors[n->src[1]].data,
      .beta = has_beta ? x->tensors[n->src[2]].data : NULL,
      .y = x->tensors[n->dst].data,
      .d = (size_t)tx->ne[0],
      .eps = n->p.norm.eps,
  };
  spr_parallel(x, (size_t)spr_tensor_rows(tx), rows_fn, &c);
}

static void layernorm_run(const struct spr_exec *x, const struct spr_node *n) {
  norm_run(x, n, layernorm_rows);
}
static void rmsnorm_run(const struct spr_exec *x, const struct spr_node *n) {
  norm_run(x, n, rmsnorm_rows);
}

/* layernorm: sum (1), center + square-add (3), normalize + affine (4) */
static uint64_t layernorm_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  return 8u * (uint64_t)spr_tensor_nelem(&ts[n->src[0]]);
}
/* rmsnorm: square-add (2), scale + weight (2) */
static uint64_t rmsnorm_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  return 4u * (uint64_t)spr_tensor_nelem(&ts[n->src[0]]);
}

const struct spr_op_def spr_op_layernorm_def = {
    .name = "layernorm",
    .check = layernorm_check,
    .workspace = NULL,
    .prepare = layernorm_prepare,
    .run = layernorm_run,
    .flops = layernorm_flops,
};

const struct spr_op_def spr_op_rmsnorm_def = {
    .name = "rmsnorm",
    .check = rmsnorm_check,
    .workspace = NULL,
    .prepare = rmsnorm_prepare,
    .run = rmsnorm_run,
    .flops = rmsnorm_flops,
};
