/* ops/layout/pad2d.c — SPR_OP_PAD2D: zero-pad or crop an NHWC map at the
 * bottom/right (see layout.h). Threads split output rows. */
#include <string.h>

#include "ops/layout/layout.h"
#include "ops/op.h"
#include "runtime/error.h"

static enum spr_status pad2d_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "pad2d: needs x and dst");
  const struct spr_tensor *x = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_CHECK(x->type == SPR_DTYPE_F32 && y->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "pad2d: x and dst must be f32");
  for (int i = 0; i < 3; i++) SPR_CHECK(x->ne[i] >= 1 && y->ne[i] >= 1, SPR_STATUS_BAD_DIMS, "pad2d: empty dimension");
  SPR_CHECK(x->ne[3] == 1 && y->ne[3] == 1, SPR_STATUS_BAD_SHAPE, "pad2d: batched maps are not supported");
  SPR_CHECK(x->ne[0] == y->ne[0], SPR_STATUS_BAD_SHAPE, "pad2d: channels differ (%lld -> %lld)", (long long)x->ne[0],
            (long long)y->ne[0]);
  return SPR_STATUS_OK;
}

static void pad2d_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts, (void)isa;
  n->impl = NULL;
  n->impl_name = "pad2d_memcpy";
}

struct pad2d_ctx {
  const float *x;
  float *y;
  size_t c, w1, h1, w2;
};

static void pad2d_rows(void *p, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct pad2d_ctx *c = p;
  const size_t keep = (c->w1 < c->w2 ? c->w1 : c->w2) * c->c, row = c->w2 * c->c;
  for (size_t oy = begin; oy < end; oy++) {
    float *dst = c->y + oy * row;
    if (oy < c->h1) {
      memcpy(dst, c->x + oy * c->w1 * c->c, keep * sizeof(float));
      memset(dst + keep, 0, (row - keep) * sizeof(float));
    } else {
      memset(dst, 0, row * sizeof(float));
    }
  }
}

static void pad2d_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *tx = &x->tensors[n->src[0]], *ty = &x->tensors[n->dst];
  struct pad2d_ctx c = {
      .x = tx->data,
      .y = ty->data,
      .c = (size_t)tx->ne[0],
      .w1 = (size_t)tx->ne[1],
      .h1 = (size_t)tx->ne[2],
      .w2 = (size_t)ty->ne[1],
  };
  spr_parallel(x, (size_t)ty->ne[2], pad2d_rows, &c);
}

static uint64_t pad2d_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  (void)ts, (void)n;
  return 0;
}

const struct spr_op_def spr_op_pad2d_def = {
    .name = "pad2d",
    .check = pad2d_check,
    .workspace = NULL,
    .prepare = pad2d_prepare,
    .run = pad2d_run,
    .flops = pad2d_flops,
};
