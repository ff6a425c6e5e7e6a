/* ops/natten/natten.h — fused neighborhood attention (SPR_OP_NEIGHBORHOOD_ATTN,
 * NATTEN semantics): the window rule, the ukernel contract, the ukernel list
 * and the oracle.
 *
 * Semantics (per axis of length L, kernel K, dilation d, stride s, causal c;
 * NATTEN's reference mask, csrc/include/natten/cuda/reference/mask.hpp):
 *   - dilation splits the axis into d interleaved groups; token i is in group
 *     g = i % d at group coordinate i' = i / d; group g has
 *     Lg = L/d + (g < L%d) tokens; tokens of different groups never interact.
 *   - inside a group, with left = K/2 and right = K/2 + K%2 - 1 (an even
 *     K = 2r has r keys left of the query and r-1 right of it):
 *       non-causal: leader = min((i'/s)*s + s/2, Lg-1),
 *                   start  = max(leader-left, 0)
 *                            + (leader+right >= Lg) * (Lg-right-leader-1),
 *                   end    = start + K   (windows are shifted inward at the
 *                            borders: every query sees exactly K keys)
 *       causal:     leader = min((i'/s)*s + s-1, Lg-1),
 *                   start  = max(leader-(K-1), 0), end = min(i'+1, Lg)
 *                   (not shifted: the first queries see fewer keys)
 *     queries of one stride group (s consecutive group coordinates) share the
 *     leader's window start; s = 1 is classic NA.
 *   - 2-D / 3-D: the neighbourhood is the product of the per-axis windows;
 *     every axis has its own K, d, s and causal flag.
 *   - logits = scale * q.k (+ rpb[h][(Kz-1)+(kz'-z')][(Ky-1)+(ky'-y')][(Kx-1)+(kx'-x')],
 *     group coordinates; relative position bias, odd K, non-causal, s = 1
 *     only), softmax over the window, output = sum p * v.
 *
 * Layout: tokens row-major over the grid (the last axis fastest); q, k and v
 * are head slices of token rows (a fused qkv tensor with column offsets, as
 * SPR_OP_ATTENTION), heads contiguous head_dim blocks; the output row of a
 * token is {n_heads * head_dim}.
 *
 * The op normalizes every problem to three axes (z, y, x) = (planes, rows,
 * columns), unused axes of length 1. A task is one head, one dilation group,
 * one query plane z, a block of query rows [y0, y1) and a block of query
 * columns [x0, x1), all in group coordinates. The ukernel computes every
 * output of its task from start to end:
 *   - the key rows (kz, ky) its queries need are transposed, restricted to the
 *     columns the column block can see, into a per-thread ring of
 *     column-major rows kT[d][x] (and vT[c][x]) as the query rows advance, so
 *     each key row is read from the input once per task and no window copy
 *     of K/V ever exists;
 *   - queries are processed as tiles of VL consecutive columns (one vector
 *     lane each) times up to QR consecutive rows. Inside a tile, the key
 *     column of lane l at band offset o is x0 + l + dmin + o, so the scores of
 *     one band offset are one vector FMA chain over head_dim against a
 *     contiguous (unaligned) slice of kT: the band holds nb = K offsets for
 *     interior tiles (no wasted work) and a few more, masked per lane, at the
 *     borders; a loaded kT slice serves every query row of the tile whose
 *     window contains that key row;
 *   - each query's window is scored as a whole (at most Kz*Ky*nb scores per
 *     lane, never the full attention matrix), softmax in log2 units with the
 *     ISA's exp2, then P.V against vT the same way;
 *   - or (AVX-512, "direct P.V", when every column tile of the task sees
 *     whole bands: stride 1 or interior, K <= 8, head_dim % 16 == 0) V rows
 *     are copied untransposed into the ring and P.V runs with head_dim in
 *     the lanes, probabilities broadcast, outputs stored without a
 *     transpose; each output element is the same FMA chain either way.
 * Results do not depend on the tile or task a query falls in (masked band
 * positions add exact zeros), so they are identical for any thread count. */
#ifndef SPR_OPS_NATTEN_NATTEN_H
#define SPR_OPS_NATTEN_NATTEN_H

#include <stddef.h>
#include <stdint.h>

#include "ops/params.h"

/* One axis in group coordinates. len >= kernel >= 1, 1 <= stride <= kernel. */
struct spr_na_axis {
  int32_t len;    /* Lg: tokens of the dilation group along the axis */
  int32_t kernel; /* K */
  int32_t stride; /* s */
  int32_t causal; /* 0 or 1 */
};

/* Window [*start, *end) of group coordinate i (0 <= i < a->len). */
static inline void spr_na_window(const struct spr_na_axis *a, int32_t i, int32_t *start, int32_t *end) {
  const int32_t L = a->len, K = a->kernel, s = a->stride;
  if (a->causal) {
    int32_t leader = (i / s) * s + s - 1;
    if (leader > L - 1) leader = L - 1;
    const int32_t st = leader - (K - 1);
    *start = st > 0 ? st : 0;
    *end = i + 1 < L ? i + 1 : L;
  } else {
    const int32_t left = K / 2, right = K / 2 + K % 2 - 1;
    int32_t leader = (i / s) * s + s / 2;
    if (leader > L - 1) leader = L - 1;
    int32_t st = leader - left > 0 ? leader - left : 0;
    if (leader + right >= L) st += L - right - leader - 1;
    *start = st;
    *end = st + K;
  }
}

/* Tokens of dilation group g of an axis of length L with dilation d. */
static inline int32_t spr_na_group_len(int32_t L, int32_t d, int32_t g) {
  return L / d + (g < L % d ? 1 : 0);
}

/* Largest ukernel tile (lanes) and query rows per tile of any ukernel. */
#define SPR_NA_MAX_VL 16
#define SPR_NA_MAX_QR 3
/* Band offsets per score register tile and output columns per P.V register
 * tile, largest over the ukernels (the scratch layout pads for them). */
#define SPR_NA_MAX_NO 8
#define SPR_NA_MAX_NC 8

/* One ukernel call = one task (see the top). Group coordinate (z', y', x')
 * is token row tok0 + z'*tok_z + y'*tok_y + x'*tok_x of q/k/v/o. */
struct spr_f32_na_task {
  struct spr_na_axis ax[3]; /* z, y, x */
  int32_t z;                /* query plane */
  int32_t y0, y1;           /* query rows [y0, y1), y0 < y1 */
  int32_t x0, x1;           /* query columns [x0, x1), x0 < x1 */
  size_t head_dim;
  float scale; /* logits = scale * q.k (+ bias) */
  size_t tok0, tok_z, tok_y, tok_x;
  const float *q, *k, *v;              /* column 0 of this head, token row 0 */
  size_t q_stride, k_stride, v_stride; /* floats per token row */
  float *o;                            /* column 0 of this head, token row 0 */
  size_t o_stride;
  const float *rpb; /* NULL, or this head's [2Kz-1][2Ky-1][2Kx-1] table */
};

/* Scratch layout of a task for a ukernel with vl lanes, qr query rows per
 * tile, no band offsets per score tile, nc columns per P.V tile (all floats,
 * every buffer a multiple of 16 floats so that 64-byte alignment carries). */
struct spr_na_layout {
  size_t padl;                           /* columns kept left of x0 in a ring row */
  size_t row_w;                          /* floats per d of a ring row (columns x0-padl ..) */
  size_t n_ring;                         /* ring rows per key plane */
  size_t n_slots;                        /* n_ring * Kz */
  size_t q_w;                            /* floats per d of a transposed query tile (vl) */
  size_t nb_max;                         /* band offsets, >= any band rounded up to no */
  size_t hd_c;                           /* >= head_dim rounded up to nc */
  size_t kt, vt, qt, s, ot, lane, total; /* offsets (floats) and total */
};

static inline size_t spr_na_round(size_t x, size_t a) {
  return (x + a - 1) / a * a;
}

/* xw: columns of the task's query block (x1 - x0), or an upper bound. */
static inline void spr_na_layout(const struct spr_na_axis ax[3], size_t head_dim, size_t xw, size_t vl, size_t qr,
                                 size_t no, size_t nc, struct spr_na_layout *l) {
  const size_t kx = (size_t)ax[2].kernel, sx = (size_t)ax[2].stride;
  const size_t ky = (size_t)ax[1].kernel, sy = (size_t)ax[1].stride, kz = (size_t)ax[0].kernel;
  /* band offsets of a tile relative to its lanes stay within
   * [-(kx + sx), kx + sx] (see spr_na_window), plus a register tile's
   * overhang of no - 1 and the vl - 1 lanes */
  l->padl = spr_na_round(kx + sx, 4);
  l->row_w = spr_na_round(l->padl + xw + vl + 2 * (kx + sx) + no, 16);
  l->n_ring = ky + qr + sy;
  l->n_slots = l->n_ring * kz;
  l->q_w = vl;
  /* (additive bounds: the layout must grow with every parameter) */
  l->nb_max = 3 * (kx + sx) + no;
  l->hd_c = head_dim + nc;
  const size_t ring = spr_na_round(l->n_slots * head_dim * l->row_w, 16);
  l->kt = 0;
  l->vt = l->kt + ring;
  l->qt = l->vt + ring;
  l->s = l->qt + spr_na_round(qr * head_dim * l->q_w, 16);
  l->ot = l->s + spr_na_round(qr * kz * ky * l->nb_max * vl, 16);
  l->lane = l->ot + spr_na_round(qr * l->hd_c * vl, 16);
  l->total = l->lane + spr_na_round(8 * vl + 4 * qr * vl, 16);
}

/* Per-thread scratch floats that cover every ukernel in the list. */
static inline size_t spr_na_scratch_floats(const struct spr_na_axis ax[3], size_t head_dim, size_t xw) {
  struct spr_na_layout l;
  spr_na_layout(ax, head_dim, xw, SPR_NA_MAX_VL, SPR_NA_MAX_QR, SPR_NA_MAX_NO, SPR_NA_MAX_NC, &l);
  return l.total;
}

/* scratch: spr_na_scratch_floats(...) floats (for the task's geometry and
 * x-block width), 64-byte aligned, owned by the calling thread. */
typedef void (*spr_f32_na_ukernel_fn)(const struct spr_f32_na_task *t, float *scratch);

struct spr_na_ukernel {
  uint32_t isa;
  spr_f32_na_ukernel_fn fn;
  uint32_t tile; /* lanes (query columns) per tile */
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) void fn(const struct spr_f32_na_task *t, float *scratch);
#include "ops/natten/natten.inc"
#undef SPR_UKERNEL

/* Oracle: the whole op, obvious code in double, one query's window
 * materialized at a time. q/k/v/o point at column 0 of token row 0 (the
 * column offsets and heads come from p); strides are floats per token row;
 * rpb NULL or {heads, 2Kz-1, 2Ky-1, 2Kx-1} (unused axes K = 1). scores:
 * caller scratch of Kz*Ky*Kx doubles. */
void spr_f32_na_ref(const struct spr_na_params *p, const float *q, size_t q_stride, const float *k, size_t k_stride,
                    const float *v, size_t v_stride, const float *rpb, float *o, size_t o_stride, double *scores);

#endif
