/* ops/bra/bra.h — bi-level routing attention (SPR_OP_BRA): BiFormer's legacy
 * BRA (ops/bra_legacy.py of rayleizhu/BiFormer, the one its released
 * checkpoints use), up to and excluding the local context enhancement and
 * the output projection: the ukernel contract, the list and the oracle.
 *
 * Input: the q/k/v token rows of an h x w map (a fused qkv Linear output
 * [q (qk_dim) | k (qk_dim) | v (v_dim)], column offsets in the params),
 * tokens row-major. h and w must be multiples of n_win = S: the op takes an
 * already padded map (see Padding below).
 *
 *   regions      S x S regions of (h/S) x (w/S) = M tokens; region
 *                p = (row j, column i) -> p = j*S + i
 *   region q/k   q_r[p] = mean of q over the region's tokens, all qk_dim
 *                channels (every head together); k_r likewise. Computed in
 *                double (tokens in row-major order), rounded to f32.
 *   routing      A[p][r] = scale * q_r[p] . k_r[r] (double, eight partial
 *                sums by channel mod 8, see spr_bra_dot_acc); region p keeps
 *                the topk regions r with the largest A[p][r], ties broken by
 *                the lower region index (torch.topk leaves ties unspecified:
 *                this is our deterministic choice). The kept set need not
 *                contain p itself.
 *   attention    every query token of region p attends, per head m (q/k head
 *                dim qk_dim/n_heads, v head dim v_dim/n_heads), to the M*topk
 *                tokens of its routed regions: softmax(scale * q . k) v, with
 *                scale = qk_dim^-0.5 (the full qk_dim, not the head dim:
 *                BiFormer keeps this "to be consistent with old models").
 *   output       {v_dim} per token, heads contiguous. The model adds
 *                LCE = dwconv5x5(V over the whole map) (SPR_OP_DWCONV2D) and
 *                applies the output projection wo.
 * topk = S*S is dense attention over the map (same output as
 * SPR_OP_ATTENTION up to rounding). BiFormer's stage 4 (topk = -2) is plain
 * global MHSA: SPR_OP_ATTENTION, not this op.
 *
 * Memory: K and V are read in place (no top-k copies, no gathered tiles): a
 * key's token row is computed from the routed region list. Scratch per
 * thread is one attention register-tile workspace (as SPR_OP_ATTENTION's)
 * plus the routed region list. The routing data of a region (its key and
 * query means, its routing scores when there are many regions, its kept
 * list: A = 2 qk_dim + 2 S*S + topk floats) lives in the region's own output
 * rows before the attention phase overwrites them, when they are big enough
 * (M * v_dim >= A, true at every BiFormer shape); only smaller regions put
 * the S*S areas in scratch. Peak scratch is thus at most SPR_OP_ATTENTION's
 * at the same head dim whenever M * v_dim >= A (tests pin BiFormer-T's).
 * Padding: BiFormer's auto_pad pads x with zeros before the qkv Linear, so
 * padded tokens carry q/k/v = that Linear's bias and are ordinary tokens of
 * the means and the attention; the op takes the padded map (the model pads
 * x, runs qkv/BRA/LCE/wo on it and crops). Ties in the routing scores of
 * regions with identical content (e.g. all-padding regions) pick the same
 * keys whichever region wins, so such ties do not change the output.
 * Routing arithmetic: means and dot products in double with fixed orders
 * (the column-sum ukernels of ops/bra/bra_colsum.inc and the dot-product
 * ukernels of ops/bra/bra_dot.inc are bit-identical to the oracle's loops),
 * so every ISA and thread count routes exactly like the oracle. PyTorch routes from f32 matmuls: on a near-tie (scores
 * within f32 rounding) the two may pick different regions.
 * Phases (each a parallel loop over regions; results do not depend on the
 * thread count): 1. k_r and q_r of every region; 2. the routing scores and
 * the kept list of every region; 3. attention, one task per region (its heads
 * and query blocks in order), keys in increasing region index, tokens
 * row-major within a region, online softmax over blocks of
 * SPR_BRA_KEY_BLOCK keys (the small-region path of a few queries: blocks of
 * whole region token rows, at most SPR_BRA_KEY_BLOCK keys; one ukernel call
 * covers a tile of queries for every head). Region means go through the
 * column-sum ukernels, routing scores through the dot ukernels in tiles of
 * BRA_PBLOCK query regions x up to 4 key regions (phase 2 tasks are blocks
 * of regions when S*S <= 64). */
#ifndef SPR_OPS_BRA_BRA_H
#define SPR_OPS_BRA_BRA_H

#include <stddef.h>
#include <stdint.h>

#include "ops/params.h"

#define SPR_BRA_KEY_BLOCK 64
#define SPR_BRA_MAX_TILE 32

/* One ukernel call: lanes = up to the ukernel's tile queries of one region,
 * heads 0 .. n_heads-1 (head m: q[i] + m hd_qk, o[i] + m hd_v, k + m hd_qk,
 * v + m hd_v; the heads are independent); keys = the routed regions'
 * tokens. */
struct spr_f32_bra_task {
  size_t hd_qk, hd_v;
  size_t n_heads;         /* >= 1 */
  size_t nq;              /* lanes, 1 .. tile */
  const float *const *q;  /* nq pointers to the queries' head-0 slices (hd_qk floats) */
  float *const *o;        /* nq pointers to the outputs' head-0 slices (hd_v floats) */
  const size_t *reg_base; /* n_sel routed regions (increasing index): token row of each one's first token */
  size_t n_sel;
  size_t reg_h, reg_w;       /* region size in tokens (M = reg_h * reg_w) */
  size_t map_w;              /* tokens per map row */
  const float *k, *v;        /* head 0's column 0 at token row 0 */
  size_t k_stride, v_stride; /* floats per token row */
  float scale;
};

/* Per-thread ukernel scratch floats for any ukernel (head dims hd_qk, hd_v):
 * the lanes path's transposed Q, one key block of scores, the transposed
 * output accumulator and three row statistics, for the largest tile. */
static inline size_t spr_bra_scratch_floats(size_t hd_qk, size_t hd_v) {
  const size_t hv16 = (hd_v + 15) & ~(size_t)15;
  return (size_t)SPR_BRA_MAX_TILE * (hd_qk + SPR_BRA_KEY_BLOCK + hv16 + 3);
}

typedef void (*spr_f32_bra_ukernel_fn)(const struct spr_f32_bra_task *t, float *scratch);

struct spr_bra_ukernel {
  uint32_t isa;
  spr_f32_bra_ukernel_fn fn;
  uint32_t tile; /* lanes (queries) per call */
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) void fn(const struct spr_f32_bra_task *t, float *scratch);
#include "ops/bra/bra.inc"
#undef SPR_UKERNEL

/* Routing of the oracle and the op (shared so that both route identically;
 * tests pin it against hand-computed cases): sel[0..topk) = the topk
 * largest of a[0..n) (ties: lower index first), in increasing index order. */
void spr_bra_topk(const double *a, size_t n, size_t topk, int32_t *sel);

/* Routing dot products (shared by the oracle and the op so that both route
 * identically, whatever the area layout splits the channels into): adds
 * a[i] * b[i] (in double) to acc[(c0 + i) % 8] for i < n, where c0 is the
 * channel index of a[0]; spr_bra_dot_sum combines the eight partial sums in
 * a fixed order. Start from acc = 0 and feed the channels in any runs. */
void spr_bra_dot_acc(double acc[8], const float *a, const float *b, size_t c0, size_t n);
double spr_bra_dot_sum(const double acc[8]);
/* spr_bra_dot_sum's arithmetic, inline (the function calls this). */
static inline double spr_bra_dot_sum_inl(const double acc[8]) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Routing dot-product ukernel: for rows ia < na, r < nr and channels i < n,
 * adds a[ia][i] * b[r][i] (in double) to acc[8 * (ia * nr + r) + (c0 + i) % 8],
 * exactly as spr_bra_dot_acc does for each pair (the list:
 * ops/bra/bra_dot.inc). */
typedef void (*spr_f64_bra_dot_fn)(double *acc, const float *const *a, size_t na, const float *const *b, size_t nr,
                                   size_t c0, size_t n);

struct spr_bra_dot_ukernel {
  uint32_t isa;
  spr_f64_bra_dot_fn fn;
  uint32_t tile;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) \
  void fn(double *acc, const float *const *a, size_t na, const float *const *b, size_t nr, size_t c0, size_t n);
#include "ops/bra/bra_dot.inc"
#undef SPR_UKERNEL

/* Region-mean column-sum ukernel: for i < n, s = (first ? 0.0 : acc[i]) +
 * (double)rows[t][i] for rows t = 0 .. n_rows-1 in order (one sequential
 * double sum per channel, as the oracle), acc[i] = s, and when mean is not
 * NULL mean[i] = (float)(s / m) (the list: ops/bra/bra_colsum.inc). */
typedef void (*spr_f64_bra_colsum_fn)(double *acc, const float *const *rows, size_t n_rows, size_t n, int first,
                                      float *mean, double m);

#define SPR_UKERNEL(isa, fn, tile) \
  void fn(double *acc, const float *const *rows, size_t n_rows, size_t n, int first, float *mean, double m);
#include "ops/bra/bra_colsum.inc"
#undef SPR_UKERNEL

/* Oracle: the whole op, obvious code in double (routing as described above,
 * from region means rounded to f32 like the op's). q/k/v/o point at token row
 * 0, column 0 (column offsets from p); strides in floats per token row.
 * scratch: spr_bra_ref_scratch_doubles(p) doubles. */
size_t spr_bra_ref_scratch_doubles(const struct spr_bra_params *p);
void spr_f32_bra_ref(const struct spr_bra_params *p, const float *q, size_t q_stride, const float *k, size_t k_stride,
                     const float *v, size_t v_stride, float *o, size_t o_stride, double *scratch);

#endif
