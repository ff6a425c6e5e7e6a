/* runtime/graph.h — a computation graph and the builder models use.
 *
 * Storage: the graph lives in one caller region [lo, hi). Tensors grow up
 * from lo (so ops can index them as a flat array while the graph is being
 * built) and nodes grow down from hi; spr_graph_finalize() moves the nodes to
 * follow the tensors, so the graph then occupies spr_graph_bytes() at lo. Session creation builds straight into the arena;
 * spr_plan builds into temporary memory.
 *
 * Builder error model: the first failure is recorded in g->status (with the
 * message in g->err) and every later builder call returns -1 without doing
 * anything, so model code can build a whole graph and check once at the end.
 * Tensor ids are int32 indices; -1 means "absent" or "failed". */
#ifndef SPR_RUNTIME_GRAPH_H
#define SPR_RUNTIME_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/tensor.h"
#include "sparrow/gguf.h"
#include "sparrow/types.h"

#define SPR_GRAPH_MAX_IO 8

struct spr_graph {
  struct spr_tensor *tensors; /* [n_tensors] at lo */
  struct spr_node *nodes;     /* after finalize: [n_nodes] after the tensors */
  int32_t n_nodes, n_tensors;
  uint8_t *lo, *hi;           /* storage region while building */
  bool finalized;
  int32_t inputs[SPR_GRAPH_MAX_IO], outputs[SPR_GRAPH_MAX_IO];
  int32_t n_inputs, n_outputs;
  int32_t aux[4];              /* model-defined slots (tensor ids, sizes) */
  const struct spr_gguf *gguf; /* weights are looked up here */
  enum spr_status status;      /* sticky first error */
  struct spr_error *err;
};

/* Starts a graph in [mem, mem+bytes) (mem aligned to 64). */
void spr_graph_init(struct spr_graph *g, void *mem, size_t bytes, const struct spr_gguf *gguf,
                    struct spr_error *err);

/* Tensor by id. */
static inline struct spr_tensor *spr_graph_tensor(const struct spr_graph *g, int32_t id) {
  return &g->tensors[id];
}
/* Node by index (valid during build and after finalize). */
struct spr_node *spr_graph_node(const struct spr_graph *g, int32_t i);

/* Compacts storage; after this the graph occupies spr_graph_bytes(g) at lo.
 * Also computes tensor lifetimes for the planner. */
enum spr_status spr_graph_finalize(struct spr_graph *g);
size_t spr_graph_bytes(const struct spr_graph *g);

/* Records a builder failure (sticky) and returns -1. */
int32_t spr_graph_fail(struct spr_graph *g, enum spr_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Marks an activation's ne[1] as dynamic (see SPR_TENSOR_DYN_ROWS). */
void spr_g_dyn_rows(struct spr_graph *g, int32_t id);

/* Formats a tensor's display name ("blk.3.attn_out", "token_embd.weight"). */
void spr_tensor_name(const struct spr_tensor *t, char *buf, size_t len);

/* ---- builders ---------------------------------------------------------
 * ne arrays are ggml order and n_dims long; missing dims are 1. */

/* A weight from the GGUF, checked against the expected type set and shape.
 * `types` is a bit mask of (1u << spr_dtype) accepted (0: any supported). */
int32_t spr_g_weight(struct spr_graph *g, const char *name, uint32_t types, int n_dims, const int64_t *ne);
/* Same, but returns -1 without error when the tensor is absent. */
int32_t spr_g_weight_opt(struct spr_graph *g, const char *name, uint32_t types, int n_dims,
                         const int64_t *ne);
/* New tensor of a role (INPUT, ACT, STATE). */
int32_t spr_g_tensor(struct spr_graph *g, enum spr_tensor_role role, enum spr_dtype type, int n_dims,
                     const int64_t *ne, const char *name, int layer);
int32_t spr_g_input(struct spr_graph *g, enum spr_dtype type, int n_dims, const int64_t *ne,
                    const char *name);
void spr_g_output(struct spr_graph *g, int32_t id);
/* A view of x's bytes [byte_off, byte_off + nbytes(shape)) with a new shape
 * (f32 only; reshape when byte_off is 0). */
int32_t spr_g_view(struct spr_graph *g, int32_t x, int n_dims, const int64_t *ne, size_t byte_off,
                   const char *name, int layer);
/* A view of rows [row0, row0+n_rows) of x seen as 2-D {ne0, rows}. */
int32_t spr_g_view_rows(struct spr_graph *g, int32_t x, int64_t row0, int64_t n_rows, const char *name,
                        int layer);
/* Appends a node with output dst (already created); runs the op's check. */
int32_t spr_g_node(struct spr_graph *g, enum spr_op op, const union spr_op_params *p, const int32_t *srcs,
                   int n_src, int32_t dst);

/* Op builders: create the output tensor, add the node, return the output id. */
int32_t spr_g_gemm(struct spr_graph *g, int32_t x, int32_t w, int32_t bias, enum spr_act act,
                   int32_t residual, const char *name, int layer);
int32_t spr_g_layernorm(struct spr_graph *g, int32_t x, int32_t gamma, int32_t beta, float eps,
                        const char *name, int layer);
int32_t spr_g_rmsnorm(struct spr_graph *g, int32_t x, int32_t gamma, float eps, const char *name,
                      int layer);
int32_t spr_g_softmax(struct spr_graph *g, int32_t x, float scale, const char *name, int layer);
int32_t spr_g_unary(struct spr_graph *g, enum spr_op op, int32_t x, const char *name, int layer);
int32_t spr_g_binary(struct spr_graph *g, enum spr_op op, int32_t a, int32_t b, const char *name,
                     int layer);
int32_t spr_g_conv2d(struct spr_graph *g, int32_t x, int32_t w, int32_t bias,
                     const struct spr_conv_params *p, const char *name, int layer);
int32_t spr_g_dwconv2d(struct spr_graph *g, int32_t x, int32_t w, int32_t bias,
                       const struct spr_conv_params *p, const char *name, int layer);
/* q/k/v: tensors whose rows hold the heads at column offsets p->q_col etc.
 * Output: {n_heads*head_dim, rows of q}. */
int32_t spr_g_attention(struct spr_graph *g, int32_t q, int32_t k, int32_t v, const struct spr_attn_params *p,
                        const char *name, int layer);
/* Neighborhood attention (SPR_OP_NEIGHBORHOOD_ATTN, ops/natten/natten.h):
 * q/k/v token rows (heads at column offsets p->q_col etc.; may be one fused
 * qkv tensor), rpb the relative position bias or -1. Output: {n_heads *
 * head_dim} per token, with q's ne[1..3]. */
int32_t spr_g_neighborhood_attn(struct spr_graph *g, int32_t q, int32_t k, int32_t v, int32_t rpb,
                                const struct spr_na_params *p, const char *name, int layer);
/* Bi-level routing attention (SPR_OP_BRA, ops/bra/bra.h): q/k/v token rows
 * of a p->h x p->w map (heads at column offsets p->q_col etc.; may be one
 * fused qkv tensor). Output: {v_dim} per token, with q's ne[1..3]. */
int32_t spr_g_bra(struct spr_graph *g, int32_t q, int32_t k, int32_t v, const struct spr_bra_params *p,
                  const char *name, int layer);
int32_t spr_g_concat_rows(struct spr_graph *g, int32_t a, int32_t b, const char *name, int layer);
int32_t spr_g_scale(struct spr_graph *g, int32_t x, float s, const char *name, int layer);
int32_t spr_g_mean_rows(struct spr_graph *g, int32_t x, const char *name, int layer);
/* x {C, W, H} -> {C, w, h}: zero-padded or cropped at the bottom/right (SPR_OP_PAD2D). */
int32_t spr_g_pad2d(struct spr_graph *g, int32_t x, int64_t w, int64_t h, const char *name, int layer);

#endif
