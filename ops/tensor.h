/* ops/tensor.h — tensor descriptors and graph nodes, as ops see them.
 *
 * Shapes follow ggml: ne[0] is the fastest-varying (contiguous) dimension,
 * unused dimensions are 1. A 2-D activation "[M, K]" in row-major terms has
 * ne = {K, M}. All tensors are contiguous; a VIEW aliases a byte range of its
 * parent (the planner keeps the parent alive as long as the view is used). */
#ifndef SPR_OPS_TENSOR_H
#define SPR_OPS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "ops/params.h"
#include "sparrow/types.h"

#define SPR_MAX_DIMS 4
#define SPR_MAX_SRCS 7

enum spr_tensor_role {
  SPR_ROLE_WEIGHT = 0, /* data points into the model mapping */
  SPR_ROLE_ACT,        /* intermediate, placed by the planner */
  SPR_ROLE_INPUT,      /* written by the caller before a run (planner: live from the start) */
  SPR_ROLE_OUTPUT,     /* read by the caller after a run (planner: live to the end) */
  SPR_ROLE_STATE,      /* persistent across runs (KV cache, ...) */
  SPR_ROLE_VIEW,       /* byte range of tensor `parent` */
};

/* Tensor flags. */
enum {
  /* ne[1] is a capacity: before each run the session sets ne[1] (and nbytes)
   * to the run's n_tokens (LLM steps of 1..batch tokens share one graph).
   * Planning and check() see the capacity. */
  SPR_TENSOR_DYN_ROWS = 1u << 0,
};

struct spr_tensor {
  enum spr_dtype type;
  uint8_t role;                 /* enum spr_tensor_role */
  uint8_t n_dims;
  uint8_t flags;                /* SPR_TENSOR_* */
  int64_t ne[SPR_MAX_DIMS];
  size_t nbytes;
  void *data;                   /* resolved at bind time for non-weights */
  size_t offset;                /* arena/region offset (planner), or view byte offset */
  int32_t parent;               /* VIEW: the aliased tensor; else -1 */
  int32_t first_use, last_use;  /* node index range (planner) */
  int32_t plan_next;            /* planner's intrusive list link */
  int32_t max_rows;             /* SPR_TENSOR_DYN_ROWS: the ne[1] capacity */
  const char *name;             /* weights: GGUF name (name_len bytes, in the mapping);
                                   others: static string, NUL-terminated */
  uint16_t name_len;            /* 0: name is NUL-terminated */
  int16_t layer;                /* >= 0: printed as "blk.<layer>.<name>" */
};

struct spr_node {
  uint16_t op;                  /* enum spr_op */
  uint8_t n_src;
  int32_t src[SPR_MAX_SRCS];    /* tensor ids; -1 for an absent optional input */
  int32_t dst;
  size_t ws_bytes;              /* workspace (scratch) bytes, set at plan time */
  uint32_t isa;                 /* ISA mask prepare() was given (for helpers picked at run) */
  const void *impl;             /* ukernel table entry chosen by prepare */
  const void *impl2;            /* a second choice (fused epilogue, ...) when an op needs one */
  const char *impl_name;
  union spr_op_params p;
};

/* Number of elements of t. */
static inline int64_t spr_tensor_nelem(const struct spr_tensor *t) {
  return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}
/* Rows = product of ne[1..3]. */
static inline int64_t spr_tensor_rows(const struct spr_tensor *t) {
  return t->ne[1] * t->ne[2] * t->ne[3];
}

#endif
