/* ops/llm/llm.h — the LLM op family (ops/llm/llm_ops.c): GET_ROWS, ROPE,
 * KV_STORE and LAST_ROW (semantics in ops/params.h), the RoPE ukernels and
 * the oracles.
 *
 * Step-dependent values come from the run state (op.h): pos = n_past + row
 * for ROPE and KV_STORE, the last row n_tokens - 1 for LAST_ROW. Row counts
 * come from the tensors themselves (the session patches ne[1] of the
 * SPR_TENSOR_DYN_ROWS tensors before each step; check() sees capacities).
 *
 * RoPE (llama.cpp NORM mode, adjacent pairs). For a row at position pos the
 * op builds a table of the n_rot/2 angles exactly as ggml does, in float:
 *   theta_scale = powf(freq_base, -2.0f / n_rot);  theta = (float)pos;
 *   for pair i: a = freq_scale * theta; c_i = cosf(a); s_i = sinf(a);
 *               theta *= theta_scale;
 * and stores it as cs[0 .. n_rot) = {c0, c0, c1, c1, ...} followed by
 * cs[n_rot .. 2 n_rot) = {-s0, s0, -s1, s1, ...}. A ukernel then rotates
 * every head of the row:
 *   y[2i]   = x[2i] * c_i + x[2i+1] * (-s_i)     (= x0 cos - x1 sin)
 *   y[2i+1] = x[2i+1] * c_i + x[2i] * s_i        (= x0 sin + x1 cos)
 * with one multiply per product and one add (no fused multiply-add), which
 * is ggml's arithmetic, so every ukernel gives the same bits; dims
 * [n_rot, head_dim) of each head are copied. y may equal x. */
#ifndef SPR_OPS_LLM_LLM_H
#define SPR_OPS_LLM_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "ops/params.h"
#include "sparrow/types.h"

/* Rotates one row: n_heads heads of head_dim floats, the first n_rot (even,
 * >= 2, <= head_dim) dims of each by the table cs (2 * n_rot floats, see
 * above); the rest copied. y may equal x. */
typedef void (*spr_f32_rope_fn)(size_t n_heads, size_t head_dim, size_t n_rot, const float *cs, const float *x,
                                float *y);

struct spr_f32_rope_ukernel {
  uint32_t isa;
  size_t tile; /* floats per main-loop step */
  spr_f32_rope_fn fn;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) \
  void fn(size_t n_heads, size_t head_dim, size_t n_rot, const float *cs, const float *x, float *y);
#include "ops/llm/rope.inc"
#undef SPR_UKERNEL

/* The first RoPE ukernel whose ISA bits are all in `isa` (never NULL). */
const struct spr_f32_rope_ukernel *spr_f32_rope_select(uint32_t isa);

/* Fills cs (2 * n_rot floats) for position pos as described above. */
void spr_rope_table(uint32_t n_rot, float freq_base, float freq_scale, int64_t pos, float *cs);

/* ---- oracles (ops/llm/llm_ref.c): obvious code, double where it computes ---- */

/* y[t][0..d) = row ids[t] of table {d, n_rows} (f32 or f16), for t < n;
 * ids outside [0, n_rows) read row 0 (as the op does). */
void spr_get_rows_ref(enum spr_dtype type, const void *table, size_t d, size_t n_rows, const int32_t *ids, size_t n,
                      float *y);
/* RoPE of the heads of rows x[t] (t < n_tokens; row t at x + t * x_stride,
 * head 0 at column p->col) into rows of n_heads * head_dim floats of y, at
 * positions n_past + t, angles pos * freq_scale * freq_base^(-2i/n_rot)
 * computed in double (the mathematical definition, not ggml's float
 * recurrence: see tests/unit/test_llm_ops.c for the tolerance this implies). */
void spr_f32_rope_ref(const struct spr_rope_params *p, size_t n_tokens, int64_t n_past, const float *x, size_t x_stride,
                      float *y);
/* KV_STORE into cache (type f32 or f16, rows of w elements, cap rows):
 * columns [p->col, p->col + w) of row t of x (t < n, rows x_stride floats
 * apart) go to row spr_kv_slot(n_past + t) (skipped when >= cap). */
void spr_kv_store_ref(const struct spr_kv_params *p, size_t w, size_t n, int64_t n_past, const float *x,
                      size_t x_stride, enum spr_dtype type, void *cache, size_t cap);

#endif
