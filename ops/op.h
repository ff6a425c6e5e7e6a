/* ops/op.h — the lifecycle every op implements, and the execution context.
 *
 *   check      graph build: validate shapes/types of the node's tensors
 *   workspace  plan time: scratch bytes the node needs while it runs
 *              (shared by all nodes; one node runs at a time)
 *   prepare    bind time: pick the ukernel for this CPU and isa mask once,
 *              store it in node->impl / node->impl_name
 *   run        trusts check; never allocates; splits work over the pool
 *              in a way that is independent of the thread count
 *   flops      arithmetic operations per run (for bench and info)
 */
#ifndef SPR_OPS_OP_H
#define SPR_OPS_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/tensor.h"
#include "platform/threads.h"
#include "sparrow/types.h"

/* Values that change from run to run of the same graph (LLM steps). */
struct spr_run_state {
  int32_t n_past;   /* tokens already in the KV cache before this step */
  int32_t n_tokens; /* rows of the SPR_TENSOR_DYN_ROWS tensors in this step */
};

struct spr_exec {
  struct spr_tensor *tensors; /* data pointers resolved */
  const struct spr_run_state *run;
  struct spr_pool *pool; /* NULL: serial */
  int n_threads;
  uint8_t *scratch; /* node->ws_bytes usable, SPR_ARENA_ALIGN aligned */
  size_t scratch_bytes;
};

struct spr_op_def {
  const char *name;
  enum spr_status (*check)(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err);
  size_t (*workspace)(const struct spr_tensor *ts, const struct spr_node *n, int n_threads);
  void (*prepare)(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa);
  void (*run)(const struct spr_exec *x, const struct spr_node *n);
  uint64_t (*flops)(const struct spr_tensor *ts, const struct spr_node *n);
};

/* The definition of op `op` (< SPR_OP_COUNT_); never NULL for a valid op. */
const struct spr_op_def *spr_op_get(enum spr_op op);

/* One definition per op, each in its family's folder (ops/registry.c lists them). */
extern const struct spr_op_def spr_op_gemm_def;              /* ops/gemm */
extern const struct spr_op_def spr_op_gemm_multi_def;        /* ops/gemm */
extern const struct spr_op_def spr_op_conv2d_def;            /* ops/conv */
extern const struct spr_op_def spr_op_dwconv2d_def;          /* ops/conv */
extern const struct spr_op_def spr_op_layernorm_def;         /* ops/norm */
extern const struct spr_op_def spr_op_rmsnorm_def;           /* ops/norm */
extern const struct spr_op_def spr_op_softmax_def;           /* ops/softmax */
extern const struct spr_op_def spr_op_gelu_def;              /* ops/act */
extern const struct spr_op_def spr_op_silu_def;              /* ops/act */
extern const struct spr_op_def spr_op_add_def;               /* ops/eltwise */
extern const struct spr_op_def spr_op_mul_def;               /* ops/eltwise */
extern const struct spr_op_def spr_op_concat_rows_def;       /* ops/eltwise */
extern const struct spr_op_def spr_op_mean_rows_def;         /* ops/eltwise */
extern const struct spr_op_def spr_op_scale_def;             /* ops/eltwise */
extern const struct spr_op_def spr_op_attention_def;         /* ops/attention */
extern const struct spr_op_def spr_op_get_rows_def;          /* ops/llm */
extern const struct spr_op_def spr_op_rope_def;              /* ops/llm */
extern const struct spr_op_def spr_op_kv_store_def;          /* ops/llm */
extern const struct spr_op_def spr_op_last_row_def;          /* ops/llm */
extern const struct spr_op_def spr_op_pad2d_def;             /* ops/layout */
extern const struct spr_op_def spr_op_neighborhood_attn_def; /* ops/natten */
extern const struct spr_op_def spr_op_bra_def;               /* ops/bra */
extern const struct spr_op_def spr_op_gemm_rows_def;         /* ops/coreffn */
extern const struct spr_op_def spr_op_core_select_def;       /* ops/coreffn */
extern const struct spr_op_def spr_op_ffn_down_def;          /* ops/coreffn */

/* Runs fn over [0, n_tasks) split into one contiguous chunk per thread:
 * thread t gets [n*t/T, n*(t+1)/T). Chunks depend only on n_tasks and T;
 * ops make results independent of T by computing each output element in
 * exactly one task with a fixed instruction sequence. */
static inline void spr_parallel(const struct spr_exec *x, size_t n_tasks, spr_task_fn fn, void *ctx) {
  spr_pool_run(x->pool, n_tasks, fn, ctx);
}

/* The shape of dst must already be set by the builder; check functions use
 * these to compare shapes. */
static inline bool spr_same_shape(const struct spr_tensor *a, const struct spr_tensor *b) {
  return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] && a->ne[2] == b->ne[2] && a->ne[3] == b->ne[3];
}

#endif
