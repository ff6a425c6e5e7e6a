/* runtime/build_ops.c — one builder per op: output shape + node. */
#include "ops/op.h"
#include "runtime/graph.h"

static const struct spr_tensor *T(const struct spr_graph *g, int32_t id) { return spr_graph_tensor(g, id); }

static int ok(const struct spr_graph *g, int32_t a) { return g->status == SPR_STATUS_OK && a >= 0; }

static int32_t add_node(struct spr_graph *g, enum spr_op op, const union spr_op_params *p, const int32_t *srcs,
                        int n_src, int n_dims, const int64_t *ne, const char *name, int layer) {
  const int32_t dst = spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, n_dims, ne, name, layer);
  return spr_g_node(g, op, p, srcs, n_src, dst);
}

int32_t spr_g_gemm(struct spr_graph *g, int32_t x, int32_t w, int32_t bias, enum spr_act act, int32_t residual,
                   const char *name, int layer) {
  if (!ok(g, x) || !ok(g, w)) return -1;
  const struct spr_tensor *tx = T(g, x), *tw = T(g, w);
  const int64_t ne[4] = {tw->ne[1], tx->ne[1], tx->ne[2], tx->ne[3]};
  union spr_op_params p = {.gemm = {.act = (uint8_t)act}};
  const int32_t srcs[4] = {x, w, bias, residual};
  return add_node(g, SPR_OP_GEMM, &p, srcs, 4, tx->n_dims < 2 ? 2 : tx->n_dims, ne, name, layer);
}

int32_t spr_g_layernorm(struct spr_graph *g, int32_t x, int32_t gamma, int32_t beta, float eps, const char *name,
                        int layer) {
  if (!ok(g, x)) return -1;
  union spr_op_params p = {.norm = {.eps = eps}};
  const int32_t srcs[3] = {x, gamma, beta};
  return add_node(g, SPR_OP_LAYERNORM, &p, srcs, 3, T(g, x)->n_dims, T(g, x)->ne, name, layer);
}

int32_t spr_g_rmsnorm(struct spr_graph *g, int32_t x, int32_t gamma, float eps, const char *name, int layer) {
  if (!ok(g, x)) return -1;
  union spr_op_params p = {.norm = {.eps = eps}};
  const int32_t srcs[2] = {x, gamma};
  return add_node(g, SPR_OP_RMSNORM, &p, srcs, 2, T(g, x)->n_dims, T(g, x)->ne, name, layer);
}

int32_t spr_g_softmax(struct spr_graph *g, int32_t x, float scale, const char *name, int layer) {
  if (!ok(g, x)) return -1;
  union spr_op_params p = {.softmax = {.scale = scale}};
  return add_node(g, SPR_OP_SOFTMAX, &p, &x, 1, T(g, x)->n_dims, T(g, x)->ne, name, layer);
}

int32_t spr_g_unary(struct spr_graph *g, enum spr_op op, int32_t x, const char *name, int layer) {
  if (!ok(g, x)) return -1;
  return add_node(g, op, NULL, &x, 1, T(g, x)->n_dims, T(g, x)->ne, name, layer);
}

int32_t spr_g_binary(struct spr_graph *g, enum spr_op op, int32_t a, int32_t b, const char *name, int layer) {
  if (!ok(g, a) || !ok(g, b)) return -1;
  const int32_t srcs[2] = {a, b};
  return add_node(g, op, NULL, srcs, 2, T(g, a)->n_dims, T(g, a)->ne, name, layer);
}

static int32_t conv_common(struct spr_graph *g, enum spr_op op, int32_t x, int32_t w, int32_t bias,
                           const struct spr_conv_params *cp, int64_t c_out, const char *name, int layer) {
  const struct spr_tensor *tx = T(g, x);
  if (cp->kh == 0 || cp->kw == 0 || cp->sh == 0 || cp->sw == 0)
    return spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "%s: zero kernel or stride", name);
  const int64_t h = tx->ne[2] + 2 * (int64_t)cp->ph, wd = tx->ne[1] + 2 * (int64_t)cp->pw;
  if (h < cp->kh || wd < cp->kw)
    return spr_graph_fail(g, SPR_STATUS_BAD_SHAPE, "%s: input %lldx%lld smaller than the kernel", name,
                          (long long)tx->ne[2], (long long)tx->ne[1]);
  const int64_t ne[3] = {c_out, (wd - cp->kw) / cp->sw + 1, (h - cp->kh) / cp->sh + 1};
  union spr_op_params p = {.conv = *cp};
  const int32_t srcs[3] = {x, w, bias};
  return add_node(g, op, &p, srcs, 3, 3, ne, name, layer);
}

int32_t spr_g_conv2d(struct spr_graph *g, int32_t x, int32_t w, int32_t bias, const struct spr_conv_params *p,
                     const char *name, int layer) {
  if (!ok(g, x) || !ok(g, w)) return -1;
  return conv_common(g, SPR_OP_CONV2D, x, w, bias, p, T(g, w)->ne[3], name, layer);
}

int32_t spr_g_dwconv2d(struct spr_graph *g, int32_t x, int32_t w, int32_t bias, const struct spr_conv_params *p,
                       const char *name, int layer) {
  if (!ok(g, x) || !ok(g, w)) return -1;
  return conv_common(g, SPR_OP_DWCONV2D, x, w, bias, p, T(g, x)->ne[0], name, layer);
}

int32_t spr_g_attention(struct spr_graph *g, int32_t q, int32_t k, int32_t v, const struct spr_attn_params *ap,
                        const char *name, int layer) {
  if (!ok(g, q) || !ok(g, k) || !ok(g, v)) return -1;
  const int64_t ne[2] = {(int64_t)ap->n_heads * ap->head_dim, T(g, q)->ne[1]};
  union spr_op_params p = {.attn = *ap};
  const int32_t srcs[3] = {q, k, v};
  return add_node(g, SPR_OP_ATTENTION, &p, srcs, 3, 2, ne, name, layer);
}

int32_t spr_g_neighborhood_attn(struct spr_graph *g, int32_t q, int32_t k, int32_t v, int32_t rpb,
                                const struct spr_na_params *np, const char *name, int layer) {
  if (!ok(g, q) || !ok(g, k) || !ok(g, v)) return -1;
  const struct spr_tensor *tq = T(g, q);
  const int64_t ne[4] = {(int64_t)np->n_heads * np->head_dim, tq->ne[1], tq->ne[2], tq->ne[3]};
  union spr_op_params p = {.na = *np};
  const int32_t srcs[4] = {q, k, v, rpb};
  return add_node(g, SPR_OP_NEIGHBORHOOD_ATTN, &p, srcs, 4, tq->n_dims < 2 ? 2 : tq->n_dims, ne, name, layer);
}

int32_t spr_g_bra(struct spr_graph *g, int32_t q, int32_t k, int32_t v, const struct spr_bra_params *bp,
                  const char *name, int layer) {
  if (!ok(g, q) || !ok(g, k) || !ok(g, v)) return -1;
  const struct spr_tensor *tq = T(g, q);
  const int64_t ne[4] = {(int64_t)bp->v_dim, tq->ne[1], tq->ne[2], tq->ne[3]};
  union spr_op_params p = {.bra = *bp};
  const int32_t srcs[3] = {q, k, v};
  return add_node(g, SPR_OP_BRA, &p, srcs, 3, tq->n_dims < 2 ? 2 : tq->n_dims, ne, name, layer);
}

int32_t spr_g_concat_rows(struct spr_graph *g, int32_t a, int32_t b, const char *name, int layer) {
  if (!ok(g, a) || !ok(g, b)) return -1;
  const int64_t ne[2] = {T(g, a)->ne[0], T(g, a)->ne[1] + T(g, b)->ne[1]};
  const int32_t srcs[2] = {a, b};
  return add_node(g, SPR_OP_CONCAT_ROWS, NULL, srcs, 2, 2, ne, name, layer);
}

int32_t spr_g_mean_rows(struct spr_graph *g, int32_t x, const char *name, int layer) {
  if (!ok(g, x)) return -1;
  const int64_t ne[2] = {T(g, x)->ne[0], 1};
  return add_node(g, SPR_OP_MEAN_ROWS, NULL, &x, 1, 2, ne, name, layer);
}

int32_t spr_g_scale(struct spr_graph *g, int32_t x, float s, const char *name, int layer) {
  if (!ok(g, x)) return -1;
  union spr_op_params p = {.scale = {.s = s}};
  return add_node(g, SPR_OP_SCALE, &p, &x, 1, T(g, x)->n_dims, T(g, x)->ne, name, layer);
}

int32_t spr_g_pad2d(struct spr_graph *g, int32_t x, int64_t w, int64_t h, const char *name, int layer) {
  if (!ok(g, x)) return -1;
  if (w < 1 || h < 1) return spr_graph_fail(g, SPR_STATUS_BAD_SHAPE, "%s: empty map %lldx%lld", name, (long long)h,
                                            (long long)w);
  const int64_t ne[3] = {T(g, x)->ne[0], w, h};
  return add_node(g, SPR_OP_PAD2D, NULL, &x, 1, 3, ne, name, layer);
}
