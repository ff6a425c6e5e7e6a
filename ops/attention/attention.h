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

/* Cached attention (p.attn.kv_cache = 1, ops/params.h): src1/src2 are KV
 * caches ({>= k_col + n_kv_heads*head_dim, capacity}, f32 or f16 each)
 * written by SPR_OP_KV_STORE; the query of row t is at absolute position
 * n_past + t (run state). A task's key sequence is the positions its
 * queries see, in increasing order: [0, last query's position] without a
 * window; with one, the sinks [0, min(sinks, last + 1)) then the contiguous
 * range from the first query's window start to the last query's position
 * (later queries hide the keys older than their own window through the
 * ukernel's lower limit, earlier ones the newer keys through the causal
 * limit). Keys are read straight
 * from an f32 cache without a window (row = position, as the non-cached
 * path); otherwise the op gathers them (rows spr_kv_slot(position), f16
 * converted exactly to f32) into per-thread buffers a chunk of keys at a
 * time and runs the ukernel over the chunks (see spr_f32_attn_task), so the
 * same register tiles do the work and each K/V row is read once per task. */

/* Keys per online-softmax block (every ukernel uses this block size). */
#define SPR_ATTN_KEY_BLOCK 64
/* Largest tile (lanes per task) of any ukernel. */
#define SPR_ATTN_MAX_TILE 32

/* One ukernel call. Lane (g, i), g < ng, i < nq, is query head h0 + g at
 * query row i0 + i; the pointers below are already offset to head h0 / row
 * i0 / kv head.
 *   q row i, head g:  q + i * q_stride + g * head_dim   (head_dim floats)
 *   key kbase + j:    k + j * k_stride                  (head_dim floats)
 *   value kbase + j:  v + j * v_stride                  (head_dim floats)
 *   output (g, i):    o + i * o_stride + g * head_dim   (head_dim floats)
 * A task's key sequence may be passed in several consecutive calls
 * ("chunks", e.g. keys gathered from a KV cache a piece at a time): a call
 * gets the nk >= 1 keys [kbase, kbase + nk) of the sequence. first = 1 on
 * the first call (kbase = 0) initializes the task's running state in
 * scratch, last = 1 on the final call writes the outputs; in between the
 * caller keeps scratch untouched and the other fields unchanged. kbase is a
 * multiple of SPR_ATTN_KEY_BLOCK, so chunked calls give the same bits as one
 * call over the whole sequence.
 * Visibility, with j the index of a key in the task's sequence: lane (g, i)
 * sees key j iff
 *     j <= lim0 + i   and   (j < ns  or  j >= lo0 + i)
 * (causal limit; sliding-window lower limit that spares the first ns keys,
 * the attention sinks). The op passes lim0 >= all keys - 1 when not causal
 * and ns >= all keys without a window. Every lane sees at least one key of
 * the sequence. Indices are below 2^24 (compared in f32). Strides are in
 * floats. */
struct spr_f32_attn_task {
  size_t head_dim;
  size_t ng, nq;
  size_t nk;    /* keys in this call */
  size_t kbase; /* index of this call's first key in the task's sequence */
  int64_t lim0; /* causal limit of row 0 */
  size_t ns;    /* keys [0, ns) are exempt from the lower limit */
  int64_t lo0;  /* lower limit of row 0 for keys >= ns */
  uint8_t first, last;
  float scale;
  const float *q;
  const float *k;
  const float *v;
  float *o;
  size_t q_stride, k_stride, v_stride, o_stride;
  /* f16 ukernels (attention_f16.inc) only: K/V rows as f16 (k / v unused),
   * key kbase + j at k16 + j * k_stride, value at v16 + j * v_stride
   * (strides in elements) */
  const uint16_t *k16;
  const uint16_t *v16;
};

/* scratch: spr_attn_scratch_floats(head_dim) floats, 64-byte aligned, owned
 * by the calling thread from the task's first call to its last. */
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

/* Cached decode over an f16 KV cache: these ukernels read the f16 K/V rows
 * in place (t->k16 / t->v16) instead of a gathered f32 copy, converting
 * them in registers; they always take the row path of the f32 ukernel of
 * the same ISA (same file, attention_impl.h), so a task gets the bits it
 * would get from that path over the converted rows. For tasks of at most
 * tile lanes (the f32 ukernel's row-path limit, <= SPR_ATTN_F16_MAX_LANES,
 * the row path's scratch), same contract otherwise as
 * spr_f32_attention_ukernel_fn. The op uses them for linear caches (no
 * window: key j in cache row j) and tasks of at most tile lanes, so a
 * window that covers the sequence gives the bits of no window. */
#define SPR_ATTN_F16_MAX_LANES 8
#define SPR_UKERNEL(isa, fn, tile) void fn(const struct spr_f32_attn_task *t, float *scratch);
#include "ops/attention/attention_f16.inc"
#undef SPR_UKERNEL

/* Oracle: the whole op for one set of sources, obvious code in double.
 * q/k/v point at row 0 of src0/src1/src2 (column offsets are applied from
 * p); strides are row lengths in floats; dst is {n_heads*head_dim, tq}.
 * scores: tk doubles of caller scratch (one query's scores at a time).
 * A causal query with no visible key (only when tk < tq) gets zeros. */
void spr_f32_attention_ref(const struct spr_attn_params *p, size_t tq, size_t tk, const float *q, size_t q_stride,
                           const float *k, size_t k_stride, const float *v, size_t v_stride, float *dst,
                           double *scores);

/* Oracle of cached attention (p->kv_cache = 1), by absolute position: the
 * query of row t (t < tq) is at position i = n_past + t and sees the keys at
 * positions j <= i, and when p->window > 0 only those with j < p->sinks or
 * j > i - p->window. k_pos / v_pos hold the key / value row of every
 * position 0 .. n_past + tq - 1 (row j at k_pos + j * kv_stride, column
 * offsets from p), i.e. the values as the cache stores them (f16-rounded
 * for an f16 cache). dst is {n_heads*head_dim, tq}; scores: n_past + tq
 * doubles of caller scratch. */
void spr_f32_attention_cached_ref(const struct spr_attn_params *p, size_t n_past, size_t tq, const float *q,
                                  size_t q_stride, const float *k_pos, const float *v_pos, size_t kv_stride, float *dst,
                                  double *scores);

/* f16 -> f32 row converters (gather of K/V cache rows for cached attention):
 * y[r * y_stride + c] = x[r * x_stride + c] for r < rows, c < n (strides in
 * elements), exact (every f16 is an f32), as spr_fp16_to_f32. The list
 * (order = preference, scalar last) is ops/attention/f16_rows.inc. */
typedef void (*spr_f16_to_f32_rows_fn)(size_t rows, size_t n, const uint16_t *x, size_t x_stride, float *y,
                                       size_t y_stride);
struct spr_f16_rows_ukernel {
  uint32_t isa;
  spr_f16_to_f32_rows_fn fn;
  uint32_t tile; /* elements per vector step */
  const char *name;
};
#define SPR_UKERNEL(isa, fn, tile) \
  void fn(size_t rows, size_t n, const uint16_t *x, size_t x_stride, float *y, size_t y_stride);
#include "ops/attention/f16_rows.inc"
#undef SPR_UKERNEL

#endif
