/* ops/softmax/softmax.c — SOFTMAX op: validation, ukernel choice, rows split
 * over the pool (each row is computed by one task, so results do not depend
 * on the thread count). */
#include "ops/softmax/softmax.h"

#include <math.h>

#include "ops/op.h"
#include "runtime/error.h"

static const struct spr_f32_softmax_ukernel k_softmax[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/softmax/softmax.inc"
#undef SPR_UKERNEL
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

const struct spr_f32_softmax_ukernel *spr_f32_softmax_select(uint32_t isa) {
  for (size_t i = 0; i < N_ELEMS(k_softmax); i++) {
    if ((k_softmax[i].isa & ~isa) == 0) return &k_softmax[i];
  }
  return &k_softmax[N_ELEMS(k_softmax) - 1];
}

static enum spr_status softmax_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "needs an input");
  const struct spr_tensor *x = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_CHECK(x->type == SPR_DTYPE_F32 && y->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "input and output must be f32 (are %s, %s)", spr_dtype_name(x->type), spr_dtype_name(y->type));
  SPR_CHECK(x->ne[0] >= 1, SPR_STATUS_BAD_SHAPE, "empty rows");
  SPR_CHECK(spr_same_shape(x, y), SPR_STATUS_BAD_SHAPE, "output shape differs from the input's");
  SPR_CHECK(isfinite(n->p.softmax.scale), SPR_STATUS_INVALID_ARGUMENT, "scale must be finite (is %g)",
            (double)n->p.softmax.scale);
  return SPR_STATUS_OK;
}

static void softmax_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const struct spr_f32_softmax_ukernel *k = spr_f32_softmax_select(isa);
  n->impl = k;
  n->impl_name = k->name;
}

struct softmax_ctx {
  spr_f32_softmax_fn fn;
  const float *x;
  float *y;
  size_t d;
  float scale;
};

static void softmax_rows(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct softmax_ctx *c = p;
  for (size_t r = begin; r < end; r++) c->fn(c->d, c->x + r * c->d, c->scale, c->y + r * c->d);
}

static void softmax_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *tx = &x->tensors[n->src[0]];
  struct softmax_ctx c = {
      .fn = ((const struct spr_f32_softmax_ukernel *)n->impl)->fn,
      .x = tx->data,
      .y = x->tensors[n->dst].data,
      .d = (size_t)tx->ne[0],
      .scale = n->p.softmax.scale,
  };
  spr_parallel(x, (size_t)spr_tensor_rows(tx), softmax_rows, &c);
}

/* scale + max (2), scale-shift + exp (~12) + sum (1), normalize (1) */
static uint64_t softmax_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  return 16u * (uint64_t)spr_tensor_nelem(&ts[n->src[0]]);
}

const struct spr_op_def spr_op_softmax_def = {
    .name = "softmax",
    .check = softmax_check,
    .workspace = NULL,
    .prepare = softmax_prepare,
    .run = softmax_run,
    .flops = softmax_flops,
};
