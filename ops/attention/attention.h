/* ops/attention/attention.h — fused dense attention (SPR_OP_ATTENTION):
 * the ukernel contract, the ukernel list and the oracle.
 *
 * The op splits its work into tasks. A task is a set of "lanes": ng query
 * heads that share one K/V head (GQA group, or part of one) times nq
 * consecutive query rows, ng * nq <= the ukernel's tile. The ukernel computes
 * every output of its task from start to end with flash-attention style
 * online softmax over blocks of SPR_ATTN_KEY_BLOCK keys, so the T x T score
 * matrix never exists; its scratch holds at most one tile x key-block score
 * block plus the task's packed Q, output accumulator and row statistics.
 * Each ukernel has two paths (attention_impl.h): a "lanes" path with one
 * (head, query row) per vector lane (GEMM-like score and P.V register tiles,
 * for prefill / vision), and a "row" path with head_dim in the vector lanes
 * for tasks of a few lanes (decode), which streams each K/V row once for all
 * of its lanes. The path depends on the task shape only.
 *
 * Numerics: logits are computed in log2 units (Q is pre-multiplied by
 * scale * log2(e)), p = 2^(logit - running max) with each ISA's own exp2
 * (range reduction + degree-5 polynomial, rel. error < 2e-7; exactly 0 for
 * masked keys; the scalar ukernel uses libm exp2f), f32 accumulation,
 * output = O * (1 / l). Max abs error against the double oracle is ~1e-7 on
 * outputs in [-1, 1] for ordinary logits (see tests/unit/test_attention.c). */
#ifndef SPR_OPS_ATTENTION_ATTENTION_H
#define SPR_OPS_ATTENTION_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "ops/params.h"

/* Keys per online-softmax block (every ukernel uses this block size). */
#define SPR_ATTN_KEY_BLOCK 64
/* Largest tile (lanes per task) of any ukernel. */
#define SPR_ATTN_MAX_TILE 32

/* One task. Lane (g, i), g < ng, i < nq, is query head h0 + g at query row
 * i0 + i; the pointers below are already offset to head h0 / row i0 / kv head.
 *   q row i, head g:  q + i * q_stride + g * head_dim   (head_dim floats)
 *   key j:            k + j * k_stride                  (head_dim floats)
 *   value j:          v + j * v_stride                  (head_dim floats)
 *   output (g, i):    o + i * o_stride + g * head_dim   (head_dim floats)
 * Causal limit: lane (g, i) sees keys j <= lim0 + i (the op passes
 * lim0 >= nk - 1 when not causal). nk >= 1 keys are visited, lim0 >= 0, so
 * key 0 is visible to every lane. Strides are in floats. */
struct spr_f32_attn_task {
  size_t head_dim;
  size_t ng, nq;
  size_t nk;
  int64_t lim0;
  float scale;
  const float *q;
  const float *k;
  const float *v;
  float *o;
  size_t q_stride, k_stride, v_stride, o_stride;
};

/* scratch: spr_attn_scratch_floats(head_dim) floats, 64-byte aligned, owned
 * by the calling thread for the duration of the call. */
typedef void (*spr_f32_attention_ukernel_fn)(const struct spr_f32_attn_task *t, float *scratch);

struct spr_attn_ukernel {
  uint32_t isa; /* enum spr_isa bits the ukernel needs */
  spr_f32_attention_ukernel_fn fn;
  uint32_t tile; /* lanes per task (<= SPR_ATTN_MAX_TILE) */
  const char *name;
};

/* Per-thread scratch floats any ukernel needs for head_dim: covers
 * tile * (head_dim packed Q + key block scores + padded O + 8 statistics)
 * for the largest tile, rounded for 64-byte aligned sub-buffers. */
static inline size_t spr_attn_scratch_floats(size_t head_dim) {
  const size_t hd16 = (head_dim + 15) & ~(size_t)15;
  return (size_t)SPR_ATTN_MAX_TILE * (2 * hd16 + SPR_ATTN_KEY_BLOCK + 8) + SPR_ATTN_KEY_BLOCK + 64;
}

#define SPR_UKERNEL(isa, fn, tile) void fn(const struct spr_f32_attn_task *t, float *scratch);
#include "ops/attention/attention.inc"
#undef SPR_UKERNEL

/* Oracle: the whole op for one set of sources, obvious code in double.
 * q/k/v point at row 0 of src0/src1/src2 (column offsets are applied from
 * p); strides are row lengths in floats; dst is {n_heads*head_dim, tq}.
 * scores: tk doubles of caller scratch (one query's scores at a time).
 * A causal query with no visible key (only when tk < tq) gets zeros. */
void spr_f32_attention_ref(const struct spr_attn_params *p, size_t tq, size_t tk, const float *q, size_t q_stride,
                           const float *k, size_t k_stride, const float *v, size_t v_stride, float *dst,
                           double *scores);

#endif
