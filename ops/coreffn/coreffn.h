/* ops/coreffn/coreffn.h — core-neuron FFN sparsity (CoreInfer, stability
 * guided): the ops, their state, the axpy ukernels and the oracles
 * (internal to ops/ and models/; the semantics are in docs/coreinfer.md).
 *
 * A llama FFN is  y = x + down(silu(gate(n)) * up(n)). In a sparse layer the
 * graph builds it from three ops that read a per-session control tensor
 * (struct spr_core_ctl, a STATE tensor written by the LLM layer before each
 * step) and a per-layer selection state (struct spr_core_sel, STATE):
 *
 *   SPR_OP_GEMM_ROWS   gate / up. mode SPARSE and one token: only the rows
 *                      core[0..n_core) of W, outputs compacted in list order
 *                      (dst[i] = act(x . W[core[i]])); else the plain GEMM.
 *   SPR_OP_CORE_SELECT mode SELECT: ranks every token's activation vector
 *                      h = silu(gate) * up and updates the core set (below).
 *   SPR_OP_FFN_DOWN    y = residual + down(h). mode SPARSE and one token:
 *                      only the core neurons; else every neuron. The weight
 *                      is either llama.cpp's ffn_down {F, E} (row e = output
 *                      e, K = F contiguous: a neuron is a column) or the
 *                      sparse layout ffn_down_t {E, F} (row n = neuron n's E
 *                      output weights, PowerInfer's convention), or neuron
 *                      bundles (below: the fused decode).
 *
 * Selection (per layer, over the tokens of a "window" = the steps run in mode
 * SELECT since the LLM layer set new_window): for a step of T tokens with
 * activation rows h_t (F values each)
 *   P += #{(t, n) : h_t[n] > 0};  T_all += T
 *   k  = floor((double)alpha * (double)P / (double)T_all)      (same for every token of the step)
 *   for each token: its k largest activations by signed value (ties: lower
 *   index first) each add 1 to freq[n]
 *   core = the n_core = max(1, floor((double)beta * F)) neurons of largest
 *   freq (ties: lower index first), stored in ascending index order.
 * When the window is one step (a prompt <= --batch tokens) k is exactly
 * CoreInfer's int(alpha * count(a > 0) / T); a longer window uses the mean
 * over the tokens seen so far for each step's k (no T x F buffer is kept). */
#ifndef SPR_OPS_COREFFN_COREFFN_H
#define SPR_OPS_COREFFN_COREFFN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"
#include "sparrow/types.h"

/* ---- state shared with the LLM layer --------------------------------------------- */

enum spr_core_mode {
  SPR_CORE_MODE_DENSE = 0,  /* every neuron, no selection */
  SPR_CORE_MODE_SELECT = 1, /* every neuron, and the step's tokens join the selection window */
  SPR_CORE_MODE_SPARSE = 2, /* single-token steps use the core set */
};

/* The control tensor: an I32 STATE tensor of SPR_CORE_CTL_WORDS + 2 * batch
 * words. STATE tensors start zeroed (mode DENSE, no core set). */
struct spr_core_ctl {
  int32_t mode;       /* enum spr_core_mode of the next step */
  int32_t new_window; /* 1: the next step starts a window (selection state cleared first) */
  int32_t win_start;  /* LLM layer: position of the first token after the last window */
  int32_t win_count;  /* LLM layer: single-token steps since then */
  int32_t reserved[12];
  int32_t tokens[]; /* LLM layer: 2 * batch entries: the token at position p >= win_start is
                       tokens[p % batch]; tokens[batch..] is scratch for re-selection */
};
#define SPR_CORE_CTL_WORDS 16

/* The selection state of one layer: an I32 STATE tensor of
 * spr_core_sel_words(F) words: header, then freq[F], then core[F]. */
struct spr_core_sel {
  int64_t positives; /* P of the window */
  int64_t tokens;    /* T_all of the window */
  int32_t n_core;    /* entries of core[] in use (0 before the first window) */
  int32_t k;         /* the k of the last step */
  int32_t packed;    /* 1: the layer's core_pack holds the bundles of core[] (FFN_DOWN sets it after
                        copying them; CORE_SELECT clears it whenever it writes core[]) */
  int32_t reserved[9];
  int32_t data[]; /* freq[F] then core[F] (ascending indices) */
};
#define SPR_CORE_SEL_HEADER_WORDS 16
static inline size_t spr_core_sel_words(size_t n_ff) {
  return SPR_CORE_SEL_HEADER_WORDS + 2 * n_ff;
}
static inline int32_t *spr_core_sel_freq(struct spr_core_sel *s) {
  return s->data;
}
static inline int32_t *spr_core_sel_core(struct spr_core_sel *s, size_t n_ff) {
  return s->data + n_ff;
}

/* n_core = max(1, floor((double)beta * n_ff)), at most n_ff. */
size_t spr_core_count(float beta, size_t n_ff);

/* ---- selection kernels (ops/coreffn/core_select.c; pure, no threads) ------------ */

/* #{n < F : a[n] > 0}. */
size_t spr_core_count_positive(const float *a, size_t n_ff);
/* Top-k count ukernels (topk.inc): add 1 to freq[n] for each of the k
 * largest a[n] (ties: lower n first; -0 equals +0; NaN ranks above +inf).
 * scratch: spr_core_topk_scratch_bytes(F) bytes, 64-aligned. atomic: the
 * increments are atomic (several threads share freq). */
typedef void (*spr_core_topk_fn)(const float *a, size_t n_ff, size_t k, void *scratch, int32_t *freq, bool atomic);
size_t spr_core_topk_scratch_bytes(size_t n_ff);

struct spr_topk_ukernel {
  uint32_t isa;
  spr_core_topk_fn fn;
  const char *name;
};

#define SPR_TOPK_UKERNEL(isa, fn) \
  void fn(const float *a, size_t n_ff, size_t k, void *scratch, int32_t *freq, bool atomic);
#include "ops/coreffn/topk.inc"
#undef SPR_TOPK_UKERNEL

extern const struct spr_topk_ukernel spr_topk_ukernels[];
extern const size_t spr_topk_ukernels_count;

/* The first entry whose ISA bits are all in isa (the scalar one at worst). */
const struct spr_topk_ukernel *spr_topk_select(uint32_t isa);
/* Writes the n_core (<= F) neurons of largest freq (ties: lower index) to
 * core[] in ascending index order. */
void spr_core_pick(const int32_t *freq, size_t n_ff, size_t n_core, int32_t *core);

/* ---- oracles (ops/coreffn/coreffn_ref.c; obvious code, never dispatched) ---------- */

/* The whole selection of one window from its activation rows a[T][F] fed in
 * steps of `step` rows (step >= T: CoreInfer's single pass): core[] gets
 * spr_core_count(beta, F) indices ascending; returns that count. Sorts each
 * row in full (qsort on (value desc, index asc)); work: T + F ints + F
 * floats + F ints from malloc (tests only). */
size_t spr_core_select_ref(const float *a, size_t n_tokens, size_t n_ff, size_t step, float alpha, float beta,
                           int32_t *core);

/* y[e] = sum_i a[i] * W(r_i)[e], double accumulation (see spr_axpy_ukernel_fn). */
void spr_axpy_rows_ref(enum spr_dtype type, size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                       size_t ne, float *y);

/* c[i] = x~ . W(idx[i]) for i < n, x~ = x quantized to Q8_0 by ggml's reference
 * quantizer and dequantized, W(r) the k values (type Q4_0 or Q8_0) at w + r * ldw,
 * summed in double; mag[i] (may be NULL) gets sum |products| (a tolerance scale). */
void spr_qrows_ref(enum spr_dtype type, size_t k, size_t n, const int32_t *idx, const void *w, size_t ldw,
                   const float *x, float *c, double *mag);

/* ---- axpyq: Q4_0 ffn_down_t with int8 neuron coefficients ------------------------
 * The rule (spr_q4_0_axpyq_* ukernels, same signature and y contract as the
 * axpy ukernels below): for each output block b (32 outputs) and each group
 * g of SPR_AXPYQ_GROUP consecutive selected neurons (the last may be short):
 *   p_i = a[i] * d_ib (f32), m = max |p_i|; m == 0: the group adds nothing;
 *   S = m / 127, c_i = nearbyint(p_i * (127 / m)) in [-127, 127] (f32 math);
 *   t_j = sum_i c_i * q_ij (int32, exact; q = code - 8);
 *   y_j = fma(S, (float)t_j, y_j), groups in order from y = 0.
 * Error against the exact sum: |y_j - sum_i a_i w_ij| <= sum_g 0.5 S_gb sum_i
 * |q_ij| plus f32 rounding of the group sums (the same order as activating a
 * Q8_0 vector: relative 1/254 of the group's largest |a d|). All
 * implementations give the same bits for finite p (the int sums are exact
 * and the f32 steps are the same IEEE operations); a NaN or infinite p gives
 * unspecified values (the conversion of a NaN to int differs). */
enum { SPR_AXPYQ_GROUP = 32 };
/* The rule above with double accumulation of S * t over groups. */
void spr_axpyq_rows_ref(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y);

/* ---- axpy ukernels: sum over selected neurons of a[i] * down_t[r_i, :] ----------- */

/* y[e] = sum_{i < n} a[i] * W(r_i)[e] for e < ne; r_i = idx[i] (idx NULL:
 * r_i = i). W(r) = the ne values at w + r * ldw bytes (ne a multiple of the
 * type's block: 1 for f32/f16, 32 for Q8_0/Q4_0). y is overwritten.
 * Arithmetic of one element, in the order of i, from y = 0:
 *   f32/f16:    y = y + a[i] * w                    (w exact in f32)
 *   Q8_0/Q4_0:  y = y + (a[i] * d) * q              (d the block's fp16 scale,
 *               q its integer code, -8 for Q4_0; a[i] * d rounded to f32 first)
 * SIMD ukernels fuse the multiply-add (the scalar ones need not). The value
 * of an element never depends on ne, on its position in a tile or on the
 * alignment of w: callers may cut the output anywhere on block boundaries
 * (the op splits it over threads) and get the same bits. */
typedef void (*spr_axpy_ukernel_fn)(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne,
                                    float *y);

struct spr_axpy_ukernel {
  enum spr_dtype type;
  uint32_t isa;
  uint16_t tile; /* elements per register tile */
  spr_axpy_ukernel_fn fn;
  const char *name;
};

#define SPR_AXPY_UKERNEL(type, isa, tile, fn) \
  void fn(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y);
#include "ops/coreffn/axpy.inc"
#undef SPR_AXPY_UKERNEL

extern const struct spr_axpy_ukernel spr_axpy_ukernels[];
extern const size_t spr_axpy_ukernels_count;

/* The first entry for `type` whose ISA bits are all in isa; NULL when the
 * type has no axpy ukernel. */
const struct spr_axpy_ukernel *spr_axpy_select(enum spr_dtype type, uint32_t isa);
/* True when type has axpy ukernels (F32, F16, Q8_0, Q4_0). */
bool spr_axpy_supports(enum spr_dtype type);

/* ---- row-gathered quantized GEMV: the core rows of ffn_gate / ffn_up ------------ */

/* c[i] = x . W(idx[i]) for i < n: W(r) = the kb blocks (Q4_0 or Q8_0) at
 * w + r * ldw, x packed by the entry's packer (the same int8 values and
 * scales as ggml's Q8_0 reference quantizer). Per row: exact integer block
 * sums, each scaled by (weight scale * activation scale) in f32 and summed in
 * f32 (the order is the ukernel's own). The ukernel prefetches the rows a
 * few entries ahead in idx itself: the GEMM ukernels prefetch sequentially
 * ahead of the row they read, which for gathered rows fetches the skipped
 * ones (about the whole matrix at 40 % kept). */
typedef void (*spr_qrows_ukernel_fn)(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq,
                                     float *c);
/* Quantizes blocks [b0, b1) of x (kb blocks in all) into the packed row xq;
 * the packers here take any range (b1 == kb writes the padding too). */
typedef void (*spr_qrows_packx_fn)(size_t kb, size_t b0, size_t b1, const float *x, void *xq);
typedef size_t (*spr_qrows_xbytes_fn)(size_t kb);

struct spr_qrows_ukernel {
  enum spr_dtype type;
  uint32_t isa;
  spr_qrows_ukernel_fn fn;
  spr_qrows_packx_fn packx;
  spr_qrows_xbytes_fn xbytes;
  const char *name;
};

#define SPR_QROWS_UKERNEL(type, isa, fn, packx, xbytes)                                                  \
  void fn(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq, float *c); \
  void packx(size_t kb, size_t b0, size_t b1, const float *x, void *xq);                                 \
  size_t xbytes(size_t kb);
#include "ops/coreffn/qrows.inc"
#undef SPR_QROWS_UKERNEL

extern const struct spr_qrows_ukernel spr_qrows_ukernels[];
extern const size_t spr_qrows_ukernels_count;

/* The first entry for `type` whose ISA bits are all in isa, or NULL. */
const struct spr_qrows_ukernel *spr_qrows_select(enum spr_dtype type, uint32_t isa);

/* ---- neuron bundles: the fused decode of a bundled FFN ----------------------------- *
 * A bundled layer stores blk.N.ffn_bundle {3E, F} (Q4_0): row n = neuron n's
 * gate row (E values), up row (E values) and ffn_down_t row (its E output
 * weights), each kb = E / 32 blocks, so the three rows a core neuron needs
 * are one contiguous run of ldw = 3 * 18 * kb bytes.
 *
 * Bundled gate/up ukernel: for i < n, r = idx[i] (idx NULL: r = i),
 *   g[i] = x . gate(r),  u[i] = x . up(r)
 * gate(r) at w + r * ldw, up(r) at w + r * ldw + 18 * kb; x packed by the
 * entry's packer. Each product is exactly the qrows ukernel of the same ISA
 * (the same bits). While neuron i is read the gate and up rows of entry
 * i + SPR_GU_PF are prefetched when i + SPR_GU_PF < n + n_pf: idx (or the
 * rows after w) may be read up to n + n_pf entries. (The down rows are
 * prefetched by down_acc, one sub-block ahead: the memory stream then runs
 * during both steps.) */
/* FFN_DOWN's core.down_t: 1 = ffn_down_t {E, F}; 2 = neuron bundles {3E, F}
 * (src2 = the FFN input, for the fused decode). */
enum { SPR_CORE_DOWN_T = 1, SPR_CORE_DOWN_BUNDLE = 2 };
enum { SPR_GU_PF = 8 };
typedef void (*spr_down_acc_fn)(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne,
                                float *y, const int32_t *pf, size_t n_pf);
typedef void (*spr_gu_ukernel_fn)(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, size_t n_pf,
                                  const void *xq, float *g, float *u);

/* The packed down layout (the compact decode's copy, where the entry has a
 * down_packed ukernel). Rows (neurons) in pack order, 4 per quad; a quad of
 * Q4_0 rows of kb blocks is spr_down_pack_quad_bytes(kb) = 4 x 18 kb bytes:
 *   [0, 8 kb)         the 4 rows' fp16 block scales, row r at 2 kb r (block b at + 2 b)
 *   [8 kb, 72 kb)     per block b, 64 bytes: byte 4 j + r = row r's code byte j of block b
 *                     (j < 16; low nibble: output 32 b + j, high nibble: output 32 b + 16 + j)
 * so one 64-byte load is a block's codes of the quad, interleaved the way
 * vpdpbusd takes 4 rows. rows[r] NULL: a zero row (scales and codes 0). */
static inline size_t spr_down_pack_quad_bytes(size_t kb) {
  return 72 * kb;
}
/* Rows of a core pack (the compact decode's copy) for n_core neurons: whole quads. */
static inline size_t spr_core_pack_rows(size_t n_core) {
  return (n_core + 3) / 4 * 4;
}
void spr_down_pack_quad(const uint8_t *const rows[4], size_t kb, uint8_t *quad);
/* The packed gate/up layout: a Q4_0 row of kb blocks regrouped per 8 blocks
 * (the AVX-512 step): group h of m = min(8, kb - 8 h) blocks keeps its 18 m
 * bytes at 144 h, the m blocks' 16 code bytes first (block t at 16 t), then
 * their fp16 scales (block t at 16 m + 2 t). The same bytes, 18 kb per row. */
void spr_gu_pack_row(const uint8_t *row, size_t kb, uint8_t *out);
/* g[i] = x . gate(i), u[i] = x . up(i) over rows in that layout: gate(i) at
 * w + i ldw, up(i) at w + i ldw + 18 kb; prefetches rows i + SPR_GU_PF < n + n_pf
 * into L2, and [pf, pf + pf_bytes) spread over the n rows (the compact decode
 * passes the down quads of these rows: see fused_task).
 * The bits of the entry's fn over the same rows in the bundle layout. */
typedef void (*spr_gu_packed_fn)(size_t kb, size_t n, const void *w, size_t ldw, size_t n_pf, const void *xq, float *g,
                                 float *u, const void *pf, size_t pf_bytes);
/* y += the axpyq rule (below) over n rows in the packed layout (quads: the
 * quad of rows 0..3; n may end inside a quad), groups of SPR_AXPYQ_GROUP in
 * order, continuing each element's fma chain from y: the bits of down_acc over
 * the same rows in the same order. Prefetches [pf, pf + pf_bytes) into L2. */
typedef void (*spr_down_packed_fn)(size_t n, const float *a, const void *quads, size_t kb, float *y, const void *pf,
                                   size_t pf_bytes);

struct spr_gu_ukernel {
  enum spr_dtype type;
  uint32_t isa;
  spr_gu_ukernel_fn fn;
  spr_qrows_packx_fn packx;
  spr_qrows_xbytes_fn xbytes;
  /* y += sum_i a[i] * W(r_i): the axpyq rule (below) continued from y, so that
   * calls over consecutive groups of SPR_AXPYQ_GROUP neurons from y = 0 give the
   * bits of one spr_q4_0_axpyq_* call over all of them (the axpy arguments), and
   * the rows W(pf[j]), j < n_pf, are prefetched into L2 along the way */
  spr_down_acc_fn down_acc;
  spr_down_packed_fn down_packed; /* the same rule over the packed down layout */
  spr_gu_packed_fn gu_packed;     /* fn over the packed gate/up layout */
  const char *name;
};

#define SPR_GU_UKERNEL(type, isa, fn, packx, xbytes, down_acc, down_packed, gu_packed)                                 \
  void fn(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, size_t n_pf, const void *xq, float *g,   \
          float *u);                                                                                                   \
  void down_acc(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y,          \
                const int32_t *pf, size_t n_pf);                                                                       \
  void down_packed(size_t n, const float *a, const void *quads, size_t kb, float *y, const void *pf, size_t pf_bytes); \
  void gu_packed(size_t kb, size_t n, const void *w, size_t ldw, size_t n_pf, const void *xq, float *g, float *u,      \
                 const void *pf, size_t pf_bytes);
#include "ops/coreffn/gu.inc"
#undef SPR_GU_UKERNEL

extern const struct spr_gu_ukernel spr_gu_ukernels[];
extern const size_t spr_gu_ukernels_count;

/* The first entry for `type` whose ISA bits are all in isa, or NULL. */
const struct spr_gu_ukernel *spr_gu_select(enum spr_dtype type, uint32_t isa);

/* Neurons per chunk of the fused decode, at most (a multiple of SPR_AXPYQ_GROUP).
 * The n listed neurons are cut into C = ceil(n / SPR_BUNDLE_CHUNK) chunks (a
 * function of n only, spr_bundle_chunk_start: whole groups of
 * SPR_AXPYQ_GROUP, spread evenly, so the threads' runs of whole chunks carry
 * nearly equal work); chunk c computes, for its neurons,
 *   h_i = silu(g_i) * u_i     (g_i, u_i: the gu products above)
 *   y_c = sum_i h_i * down_t(r_i)     (the axpy ukernel's rule per sub-block, below;
 *                                      axpyq for Q4_0 on VNNI)
 * and the output is y = residual + y_0 + y_1 + ... (f32, chunks in order):
 * bit-identical for any thread count. The threads add their chunks to y in
 * that order as a relay (a thread adds a chunk once every earlier one is in). */
/* 192 rather than 128: TinyLlama's 2252 core neurons make 12 chunks, not 18 (12 splits evenly
 * over 2, 3, 4 and 6 threads), and each chunk costs a partial output written, zeroed and read
 * again by the sum (then a second dispatch reading across cores; since 1ccd38c a relay in the
 * task). Against a dense GEMV in the same loop (bench_coreffn --paired, 2 threads, 2026-12-01)
 * the compact decode's rate went from 0.808-0.840 to 0.841-0.880 of the GEMV's (6 runs each;
 * 0.811 -> 0.865 over 10 in a first harness); 384-neuron chunks (6) gained another 2.6 % but
 * split badly over 4 threads. With the relay, 96 and 128 were still slower than 192 (alternated
 * decode steps, 2026-12-01: +1.8 % and +1.3 % on the FFN node, means of two). */
enum { SPR_BUNDLE_CHUNK = 192 };
/* The first neuron of chunk c (c = C: n). Spread evenly, TinyLlama's 2252 core neurons
 * give 2 threads 1120 and 1132 (with equal chunks and the short one last, 128-neuron
 * chunks gave 1152 and 1100). */
static inline size_t spr_bundle_chunk_start(size_t n, size_t c) {
  const size_t groups = (n + SPR_AXPYQ_GROUP - 1) / SPR_AXPYQ_GROUP;
  const size_t chunks = (n + SPR_BUNDLE_CHUNK - 1) / SPR_BUNDLE_CHUNK;
  const size_t s = chunks == 0 ? 0 : SPR_AXPYQ_GROUP * (c * groups / chunks);
  return s < n ? s : n;
}
/* Within a chunk, the neurons run in sub-blocks of SPR_BUNDLE_SUB (gate/up,
 * then their share of the output): y_c = the first sub-block's axpy result,
 * then + each further sub-block's (f32 adds, in order). */
#ifndef SPR_BUNDLE_SUB
#define SPR_BUNDLE_SUB 32
#endif

/* Oracle of the fused decode: y[e] = residual[e] (NULL: 0) + sum over the n
 * listed neurons of silu(g) * u * down_t(r)[e], g and u as spr_qrows_ref
 * (x quantized to Q8_0 and dequantized; double sums), silu in double. */
void spr_bundle_ffn_ref(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const float *x,
                        const float *residual, float *y);

/* ---- strip dequantizers (prefill through ffn_down_t) ------------------------------- */

/* y[0..n) = the n values (n a multiple of 32) of the Q4_0 / Q8_0 blocks at x,
 * bit-identical to ops/quant's spr_dequantize_row_q4_0 / _q8_0. */
typedef void (*spr_deq_ukernel_fn)(const void *x, float *y, size_t n);

struct spr_deq_ukernel {
  enum spr_dtype type;
  uint32_t isa;
  spr_deq_ukernel_fn fn;
  const char *name;
};

#define SPR_DEQ_UKERNEL(type, isa, fn) void fn(const void *x, float *y, size_t n);
#include "ops/coreffn/deq.inc"
#undef SPR_DEQ_UKERNEL

extern const struct spr_deq_ukernel spr_deq_ukernels[];
extern const size_t spr_deq_ukernels_count;

/* The first entry for `type` whose ISA bits are all in isa, or NULL (other types). */
const struct spr_deq_ukernel *spr_deq_select(enum spr_dtype type, uint32_t isa);

/* ---- transposing requantizers (integer prefill through ffn_down_t) ------------------ */

/* Reads a group of 32 rows (neurons; row kk at w + kk * ldw) of nbw values
 * (a multiple of 32; Q4_0 or Q8_0 blocks) and writes, for each column j <
 * nbw, one Q8_0 block at wq + j * ldq holding the column's 32 values.
 * Q8_0 rows, per column:
 *   v  = the values as ops/quant dequantizes them;  amax = max |v|
 *   d  = fp16(amax / 127);  id = amax > 0 ? 127 / amax : 0  (f32, unfused)
 *   q  = (int8)trunc(s + (s < 0 ? -0.5 : 0.5)), s = v * id
 * Q4_0 rows, per block of 32 columns (one Q4_0 block of each row), one
 * scale for the 32 x 32 values, so that each row's 16 possible values map
 * through a 16-entry table (a byte shuffle per code instead of a float
 * round trip; prefill pays this for every weight of ffn_down_t):
 *   dk = row k's block scale (f32 of the fp16), dmax = max_k |dk|
 *   if dmax == 0 or a scale is not finite (fp16 exponent 31): every column's
 *     block is zero (scale and codes);
 *   else r = 127 / (8 * dmax), fk = dk * r, table_k[n] = rne(fk * (n - 8))
 *     (f32, unfused; rne = round half to even, |.| <= 127), code of row k
 *     and column j = table_k[nibble j], d = fp16(8 * dmax / 127).
 *   The step 8 * dmax / 127 is at most 8 / 7 of the per-column amax / 127
 *   when a row holding dmax has a -8 or 7 code in the column, larger otherwise;
 *   its half-step error stays under 1/16 of the Q4_0 step of the largest row.
 * Every entry writes the bytes of the scalar one. */
typedef void (*spr_rqt_ukernel_fn)(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq);

struct spr_rqt_ukernel {
  enum spr_dtype type;
  uint32_t isa;
  spr_rqt_ukernel_fn fn;
  const char *name;
};

#define SPR_RQT_UKERNEL(type, isa, fn) void fn(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq);
#include "ops/coreffn/rqt.inc"
#undef SPR_RQT_UKERNEL

extern const struct spr_rqt_ukernel spr_rqt_ukernels[];
extern const size_t spr_rqt_ukernels_count;

/* The first entry for `type` whose ISA bits are all in isa, or NULL (other types). */
const struct spr_rqt_ukernel *spr_rqt_select(enum spr_dtype type, uint32_t isa);

/* The Q4_0 rule's group setup, shared by the portable entries: the 32 rows'
 * block scales at w (row kk at w + kk * ldw) -> f[kk] = dk * 127 / (8 dmax)
 * and *dh = fp16(8 dmax / 127); false for a zero block (dmax 0 or a scale
 * not finite). */
bool spr_rqt_q4_0_group(const uint8_t *w, size_t ldw, float f[32], uint16_t *dh);

/* ---- requantizing straight into a packed Q8_0 panel (rqt + packw fused) ------------ */

/* For the packed-panel layout `packed` (a struct spr_qgemm_packed * of the
 * Q8_0 GEMM): writes np panels of 32 columns each, panel p (at panels + p *
 * packed->wbytes(kb)) of the columns [32p, 32p + 32) from w, for kb groups
 * of 32 rows (row i at w + i * ldw): the bytes packed->packw writes for the
 * Q8_0 rows the rqt rule above makes of those columns (so the scalar rqt
 * entry followed by packw is its twin and oracle). The strip GEMM of
 * gemm_t.c takes it when its ukernel's packed layout is `packed`: no
 * transposed Q8_0 strip, no second pass over it, and each row of wt is
 * visited once per np panels (its rows are far apart: a TLB miss each). */
typedef void (*spr_rqtp_ukernel_fn)(const void *w, size_t ldw, size_t kb, size_t np, void *panels);

struct spr_rqtp_ukernel {
  enum spr_dtype type;
  uint32_t isa;
  const void *packed;
  spr_rqtp_ukernel_fn fn;
  const char *name;
};

#define SPR_RQTP_UKERNEL(type, isa, packed, fn) void fn(const void *w, size_t ldw, size_t kb, size_t np, void *panels);
#include "ops/coreffn/rqtp.inc"
#undef SPR_RQTP_UKERNEL

extern const struct spr_rqtp_ukernel spr_rqtp_ukernels[];
extern const size_t spr_rqtp_ukernels_count;

/* The first entry for `type` and the panel layout `packed` whose ISA bits are all in isa, or NULL. */
const struct spr_rqtp_ukernel *spr_rqtp_select(enum spr_dtype type, const void *packed, uint32_t isa);

/* ---- prefill with ffn_down_t: C[M,N] = X[M,K] . Wt[K,N] (+ R) ---------------------- */

/* Scratch bytes for m rows (capacity), k = F, n = E with n_threads. */
size_t spr_gemm_t_workspace(const void *f32_gemm_ukernel, enum spr_dtype w_type, size_t m, size_t n, size_t k,
                            int n_threads);
/* dst[M][N] = x[M][K] . wt + residual (may be NULL); wt: K rows of N values
 * of w_type, ldw bytes apart (0: spr_quant_row_bytes). Uses the packed-panel f32 GEMM
 * ukernel uk (struct spr_gemm_ukernel *) with W dequantized into its slices
 * (by spr_deq_select(w_type, isa) where there is one).
 * Deterministic for any thread count (N split into fixed blocks). */
void spr_gemm_t_run(const struct spr_exec *x, const void *f32_gemm_ukernel, enum spr_dtype w_type, uint32_t isa,
                    size_t m, size_t n, size_t k, const float *xm, const void *wt, size_t ldw, const float *residual,
                    float *dst);

/* The same product for Q4_0 / Q8_0 wt on integers: per strip of 64 output
 * columns, wt's column segments are requantized by the rqt rule (one Q8_0
 * block per column and 32 neurons) into a row-major Q8_0 strip, or straight
 * into the GEMM's packed panels where an rqtp entry exists, and the Q8_0
 * GEMM ukernel uk (struct spr_qgemm_ukernel *, spr_qgemm_select(Q8_0, isa))
 * multiplies it with the activations quantized as in every quantized GEMM
 * (its packed-panel path for m >= SPR_QGEMM_PACKED_MIN_M). Deterministic
 * for any thread count. */
size_t spr_gemm_tq_workspace(const void *q8_0_gemm_ukernel, size_t m, size_t n, size_t k, int n_threads);
/* ldw: bytes between wt's rows (0: packed, spr_quant_row_bytes(w_type, n)). */
void spr_gemm_tq_run(const struct spr_exec *x, const void *q8_0_gemm_ukernel, enum spr_dtype w_type, uint32_t isa,
                     size_t m, size_t n, size_t k, const float *xm, const void *wt, size_t ldw, const float *residual,
                     float *dst);

/* Prefill of a bundled layer's gate and up: dst[M][N] = act(x . G^T) * (x . U^T),
 * G's row j at w + j * ldw, U's at w + up_off + j * ldw (K values each, of
 * the Q4_0 / Q8_0 type of uk, a struct spr_qgemm_ukernel *), act an f32
 * vector function (NULL: none). Per strip of 64 output columns the quantized
 * GEMM ukernel (its packed-panel path for M >= SPR_QGEMM_PACKED_MIN_M) runs
 * over the whole K, as the quantized GEMM driver does: bit-identical for
 * any thread count. */
size_t spr_gemm_qglu_workspace(const void *qgemm_ukernel, size_t m, size_t k, int n_threads);
void spr_gemm_qglu_run(const struct spr_exec *x, const void *qgemm_ukernel, void (*act)(size_t, const float *, float *),
                       size_t m, size_t n, size_t k, const float *xm, const void *w, size_t ldw, size_t up_off,
                       float *dst);

#endif
