/* ops/params.h — the op list and each op's parameters.
 *
 * The comment of each op gives its inputs (src[i]) and output (dst) with
 * shapes in ggml order (ne[0] first). Optional inputs are -1 when absent. */
#ifndef SPR_OPS_PARAMS_H
#define SPR_OPS_PARAMS_H

#include <stdint.h>

enum spr_op {
  /* dst[M,N] = act(src0[M,K] . src1[N,K]^T + src2[N]) + src3[M,N]
   * src0 f32 activations (ne {K,M}); src1 weights (ne {K,N}), f32/f16/quant;
   * src2 optional bias f32 (ne {N}); src3 optional residual f32 (ne {N,M}). */
  SPR_OP_GEMM = 0,
  /* dst = (x - mean)/sqrt(var + eps) * src1 + src2 over ne[0]; src1/src2 f32 {D}, src2 optional */
  SPR_OP_LAYERNORM,
  /* dst = x / sqrt(mean(x^2) + eps) * src1 over ne[0] */
  SPR_OP_RMSNORM,
  /* dst = softmax(x * scale) over ne[0] */
  SPR_OP_SOFTMAX,
  /* dst = gelu(x) (erf form) */
  SPR_OP_GELU,
  /* dst = x * sigmoid(x) */
  SPR_OP_SILU,
  /* dst = src0 + src1; src1 has src0's shape or is {ne0} (broadcast over rows) */
  SPR_OP_ADD,
  /* dst = src0 * src1; same broadcasting as ADD */
  SPR_OP_MUL,
  /* dst[OH,OW,Cout] = conv(src0[H,W,Cin], src1[Cout,KH,KW,Cin]) + src2[Cout]
   * NHWC: src0 ne {Cin,W,H}; src1 ne {Cin,KW,KH,Cout}; dst ne {Cout,OW,OH} */
  SPR_OP_CONV2D,
  /* depthwise: dst[OH,OW,C] = dwconv(src0[H,W,C], src1[KH,KW,C]) + src2[C]
   * src1 ne {C,KW,KH} */
  SPR_OP_DWCONV2D,
  /* fused multi-head attention with online softmax.
   * src0 = Q rows, src1 = K rows, src2 = V rows (may be one fused qkv tensor;
   * column offsets in params). dst ne {n_heads*head_dim, Tq}. */
  SPR_OP_ATTENTION,
  /* dst = concat of src0 and src1 along ne[1] (rows); both share ne[0] */
  SPR_OP_CONCAT_ROWS,
  /* dst {ne0, 1} = mean of src0's rows */
  SPR_OP_MEAN_ROWS,
  /* dst = src0 * scale */
  SPR_OP_SCALE,
  /* dst[D, T] = rows src1[t] of table src0 {D, V} (f32/f16/q8_0/q4_0/q4_k/q6_k,
   * dequantized); src1 i32 {T} token ids (validated by the caller) */
  SPR_OP_GET_ROWS,
  /* rotary position embedding on the n_heads heads of f32 src0 {>= col +
   * n_heads*head_dim, T} starting at column rope.col (0: src0 is exactly the
   * heads): within each head the first n_rot dims are rotated in adjacent
   * pairs (2i, 2i+1) by angle pos * freq_scale * freq_base^(-2i/n_rot),
   * pos = run->n_past + row; other dims copied. dst {n_heads*head_dim, T}. */
  SPR_OP_ROPE,
  /* KV cache write: columns [kv.col, kv.col + W) of row t of f32 src0
   * {>= kv.col + W, T} go to row slot(run->n_past + t) of dst (a STATE tensor
   * {W, capacity}, f32 or f16), see spr_kv_slot(). dst is the cache itself
   * (written in place; the node's output). */
  SPR_OP_KV_STORE,
  /* dst {D, 1} = row run->n_tokens - 1 of src0 {D, T} (the last token's) */
  SPR_OP_LAST_ROW,
  /* zero-pad or crop an NHWC map at the bottom/right (ops/layout/layout.h):
   * dst {C, W2, H2} = the top-left min(H1,H2) x min(W1,W2) pixels of f32
   * src0 {C, W1, H1}, zeros elsewhere */
  SPR_OP_PAD2D,
  /* fused neighborhood attention, NATTEN semantics (ops/natten/natten.h):
   * 1-D/2-D/3-D grid p.na.size (axis 0 slowest), per-axis kernel, dilation,
   * stride, causal. src0/src1/src2 = Q/K/V token rows (f32, rows = product of
   * the sizes; may be one fused qkv tensor, column offsets in params);
   * optional src3 = relative position bias f32 {2K_last-1, .., 2K_0-1, heads}.
   * dst {n_heads*head_dim, rows of src0 (same ne[1..3])}. */
  SPR_OP_NEIGHBORHOOD_ATTN,
  /* bi-level routing attention, BiFormer's legacy BRA (ops/bra/bra.h):
   * p.bra.h x p.bra.w token map (a multiple of n_win per side: the model
   * pads), src0/src1/src2 = Q/K/V token rows (f32; may share one fused
   * tensor, column offsets in params). dst {v_dim, rows of src0 (same
   * ne[1..3])}: the attention output before LCE and the output projection. */
  SPR_OP_BRA,
  /* Several GEMMs over the same activations as one node (the activations are
   * quantized once and the threads split all the rows together):
   * src0 f32 x {K, M}; src1, src2 and optional src3 weights of one quantized
   * type (q8_0, q4_0, q4_k, q6_k) {K, N1}, {K, N2}, {K, N3}. params gemm_multi:
   *   glu = 0: dst {N1 + N2 + N3, M} = the products side by side
   *            (e.g. the Q, K and V projections);
   *   glu = 1: dst {N1, M} = act(x . src1^T) * (x . src2^T), N2 = N1, no src3
   *            (the SwiGLU feed-forward: act = SiLU, src1 = gate, src2 = up).
   * No bias, no residual. */
  SPR_OP_GEMM_MULTI,
  /* core-neuron FFN (ops/coreffn/coreffn.h): src4 = the layer's selection
   * state, src5 = the control tensor (both STATE I32; -1: always dense).
   * GEMM_ROWS: GEMM's src0..src3 and params; in sparse mode with one token
   * dst[i] = act(x . W[core[i]]) for i < n_core (compacted). */
  SPR_OP_GEMM_ROWS,
  /* CORE_SELECT: src0 = activations {F, T}, src1 = control; dst = the
   * layer's selection state (updated in select mode). params: core */
  SPR_OP_CORE_SELECT,
  /* FFN_DOWN: dst {E, T} = src3 (residual) + src0 {F, T} . W, W = src1:
   * ffn_down {F, E} or, with core.down_t, ffn_down_t {E, F}; in sparse mode
   * with one token only src0[0..n_core) (the compacted core neurons). */
  SPR_OP_FFN_DOWN,
  SPR_OP_COUNT_
};

enum spr_act {
  SPR_ACT_NONE = 0,
  SPR_ACT_GELU = 1, /* erf form */
  SPR_ACT_SILU = 2,
  SPR_ACT_RELU = 3,
};

struct spr_gemm_params {
  uint8_t act; /* enum spr_act, applied after bias and before residual */
};

struct spr_gemm_multi_params {
  uint8_t act; /* enum spr_act, glu only */
  uint8_t glu;
};

struct spr_norm_params {
  float eps;
};

struct spr_softmax_params {
  float scale;
};

struct spr_scale_params {
  float s;
};

struct spr_conv_params {
  uint16_t kh, kw; /* kernel */
  uint16_t sh, sw; /* stride */
  uint16_t ph, pw; /* zero padding on top/left (bottom/right as needed) */
};

struct spr_attn_params {
  uint16_t n_heads;
  uint16_t n_kv_heads; /* GQA: n_heads % n_kv_heads == 0 */
  uint16_t head_dim;
  uint8_t causal;
  float scale;                  /* logits = scale * q.k */
  uint32_t q_col, k_col, v_col; /* element offset of head 0 inside a row of src0/1/2 */
  /* kv_cache = 1: src1/src2 are KV caches (STATE tensors, f32 or f16, rows =
   * capacity) written by SPR_OP_KV_STORE; the query of row t is at absolute
   * position i = run->n_past + t and sees the keys at positions j <= i, and
   * when window > 0 only those with j < sinks or j > i - window; key j lives in
   * cache row spr_kv_slot(j, ...). causal must be 1. */
  uint8_t kv_cache;
  uint32_t window, sinks, ring; /* ring: rows of the circular part (see spr_kv_slot) */
};

struct spr_rope_params {
  uint16_t n_heads, head_dim, n_rot;
  float freq_base, freq_scale;
  uint32_t col; /* source column of head 0 (e.g. K inside a fused QKV row) */
};

/* Core-neuron FFN (CORE_SELECT, FFN_DOWN). */
struct spr_core_params {
  uint8_t act;    /* SPR_ACT_NONE: FFN_DOWN runs GEMM's code, which reads gemm.act */
  uint8_t down_t; /* FFN_DOWN: 1: src1 is ffn_down_t {E, F}; 2: neuron bundles {3E, F} (ops/coreffn/coreffn.h) */
  float alpha;    /* token top-k = floor(alpha * mean #positive activations) */
  float beta;     /* fraction of the FFN neurons kept */
};

/* Cache geometry shared by KV_STORE and cached ATTENTION. */
struct spr_kv_params {
  uint32_t window, sinks, ring;
  uint32_t col; /* KV_STORE: source column of the row's first value */
};

/* Row of the KV cache that holds absolute position p. Without a window the
 * cache is linear. With one, the first `sinks` positions are kept forever and
 * the rest rotate through `ring` rows (ring = window + batch - 1, so a
 * prefill step never overwrites a key one of its own queries still needs). */
static inline uint32_t spr_kv_slot(uint32_t p, uint32_t window, uint32_t sinks, uint32_t ring) {
  if (window == 0 || p < sinks) return p;
  return sinks + (p - sinks) % ring;
}

/* SPR_OP_NEIGHBORHOOD_ATTN. Axis a < n_dims (axis 0 slowest, the last axis
 * is the contiguous one): size[a] tokens, kernel[a] >= 1 (odd or even),
 * dilation[a] >= 1 with kernel*dilation <= size, 1 <= stride[a] <= kernel[a],
 * causal bit a. A relative position bias needs odd kernels, no causal axis
 * and stride 1. */
struct spr_na_params {
  uint16_t n_heads, head_dim;
  uint8_t n_dims; /* 1, 2 or 3 */
  uint8_t causal; /* bit a: axis a is causal */
  uint16_t size[3], kernel[3], dilation[3], stride[3];
  float scale;                  /* logits = scale * q.k; 0: head_dim^-0.5 */
  uint32_t q_col, k_col, v_col; /* element offset of head 0 inside a row of src0/1/2 */
};

/* SPR_OP_BRA: n_win x n_win regions of (h/n_win) x (w/n_win) tokens; q/k
 * heads have qk_dim/n_heads channels, v heads v_dim/n_heads. */
struct spr_bra_params {
  uint16_t n_heads;
  uint16_t n_win; /* S: regions per side */
  uint16_t topk;  /* routed regions per region, 1 .. n_win^2 */
  uint16_t h, w;  /* map size in tokens */
  uint32_t qk_dim, v_dim;
  float scale; /* router and attention scale; 0: qk_dim^-0.5 */
  uint32_t q_col, k_col, v_col;
};

union spr_op_params {
  struct spr_gemm_params gemm;
  struct spr_gemm_multi_params gemm_multi;
  struct spr_norm_params norm;
  struct spr_softmax_params softmax;
  struct spr_scale_params scale;
  struct spr_conv_params conv;
  struct spr_attn_params attn;
  struct spr_rope_params rope;
  struct spr_kv_params kv;
  struct spr_na_params na;
  struct spr_bra_params bra;
  struct spr_core_params core;
  uint8_t raw_[48];
};

#endif
