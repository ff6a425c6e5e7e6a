/* ops/act/act.c — activation selection (also used by fused epilogues) and
 * the GELU / SILU ops: validation, ukernel choice, the flat element range
 * split into fixed chunks over the pool (each element is computed by the same
 * instruction sequence whatever the thread count). */
#include "ops/act/act.h"


#include "ops/act/act_ukernels.h"
#include "ops/op.h"
#include "runtime/error.h"

#define UKERNEL_ENTRY(isa, fn, tile) {(isa), (tile), fn, #fn},
static const struct spr_f32_vunary_ukernel k_gelu[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/act/gelu.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vunary_ukernel k_silu[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/act/silu.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vunary_ukernel k_relu[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/act/relu.inc"
#undef SPR_UKERNEL
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct spr_f32_vunary_ukernel *pick(const struct spr_f32_vunary_ukernel *list, size_t n, uint32_t isa) {
  for (size_t i = 0; i < n; i++) {
    if ((list[i].isa & ~isa) == 0) return &list[i];
  }
  return &list[n - 1]; /* scalar: needs no ISA bit */
}

const struct spr_f32_vunary_ukernel *spr_f32_act_ukernel(enum spr_act act, uint32_t isa) {
  switch (act) {
    case SPR_ACT_GELU:
      return pick(k_gelu, N_ELEMS(k_gelu), isa);
    case SPR_ACT_SILU:
      return pick(k_silu, N_ELEMS(k_silu), isa);
    case SPR_ACT_RELU:
      return pick(k_relu, N_ELEMS(k_relu), isa);
    case SPR_ACT_NONE:
      break;
  }
  return NULL;
}

spr_f32_vunary_fn spr_f32_act_select(enum spr_act act, uint32_t isa, const char **name) {
  const struct spr_f32_vunary_ukernel *k = spr_f32_act_ukernel(act, isa);
  if (name != NULL) *name = k != NULL ? k->name : "none";
  return k != NULL ? k->fn : NULL;
}

/* ---- GELU / SILU ops ------------------------------------------------------ */

/* Elements per task: fixed (never derived from the thread count), a multiple
 * of every vector width. */
#define CHUNK 8192

static enum spr_status unary_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "needs an input");
  const struct spr_tensor *x = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_CHECK(x->type == SPR_DTYPE_F32 && y->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "input and output must be f32 (are %s, %s)", spr_dtype_name(x->type), spr_dtype_name(y->type));
  SPR_CHECK(spr_same_shape(x, y), SPR_STATUS_BAD_SHAPE, "output shape differs from the input's");
  return SPR_STATUS_OK;
}

static void unary_prepare(struct spr_node *n, enum spr_act act, uint32_t isa) {
  const struct spr_f32_vunary_ukernel *k = spr_f32_act_ukernel(act, isa);
  n->impl = k;
  n->impl_name = k->name;
}
static void gelu_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  unary_prepare(n, SPR_ACT_GELU, isa);
}
static void silu_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  unary_prepare(n, SPR_ACT_SILU, isa);
}

struct unary_ctx {
  spr_f32_vunary_fn fn;
  const float *x;
  float *y;
  size_t n;
};

static void unary_chunks(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct unary_ctx *c = p;
  const size_t lo = begin * CHUNK, hi = end * CHUNK < c->n ? end * CHUNK : c->n;
  c->fn(hi - lo, c->x + lo, c->y + lo);
}

static void unary_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *tx = &x->tensors[n->src[0]];
  struct unary_ctx c = {
      .fn = ((const struct spr_f32_vunary_ukernel *)n->impl)->fn,
      .x = tx->data,
      .y = x->tensors[n->dst].data,
      .n = (size_t)spr_tensor_nelem(tx),
  };
  spr_parallel(x, (c.n + CHUNK - 1) / CHUNK, unary_chunks, &c);
}

/* gelu: scale, erf rational (~14 FMA + reciprocal), final FMA: ~20 */
static uint64_t gelu_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  return 20u * (uint64_t)spr_tensor_nelem(&ts[n->src[0]]);
}
/* silu: exp (~10), 1 + e, reciprocal, sign select, multiply: ~15 */
static uint64_t silu_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  return 15u * (uint64_t)spr_tensor_nelem(&ts[n->src[0]]);
}

const struct spr_op_def spr_op_gelu_def = {
    .name = "gelu",
    .check = unary_check,
    .workspace = NULL,
    .prepare = gelu_prepare,
    .run = unary_run,
    .flops = gelu_flops,
};

const struct spr_op_def spr_op_silu_def = {
    .name = "silu",
    .check = unary_check,
    .workspace = NULL,
    .prepare = silu_prepare,
    .run = unary_run,
    .flops = silu_flops,
};
