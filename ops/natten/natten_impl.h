/* ops/natten/natten_impl.h — the neighborhood-attention ukernel body (one
 * task, see natten.h), written once over a small vector vocabulary and
 * compiled once per ISA.
 *
 * The including file (f32_natten_<isa>.c) defines, before including:
 *   av_v, NA_VL               vector type and its lanes (the tile: query columns)
 *   NA_QR                     query rows per register tile (<= SPR_NA_MAX_QR)
 *   NA_NO                     band offsets per score register tile
 *   NA_PNO                    band offsets per P.V register tile
 *   NA_UKERNEL                the ukernel's name
 *   AV_INLINE                 forced-inline qualifier
 *   av_zero() av_set1(x) av_load(p) av_store(p, v) av_fma(a, b, c) = a*b + c,
 *   av_mul, av_sub, av_add, av_max
 *   av_exp2(x)                2^x for x <= 0, exactly 0 for -inf
 *   av_mask_range(s, o, lo, hi)  s where lo <= o < hi (per lane), else -inf
 *   av_transpose_load(rows, off, out)  out[j] lane i = rows[i][off + j],
 *                             i, j < NA_VL (rows: NA_VL pointers)
 *   NA_HAVE_PERMUTE, av_idx, av_idx_load(const int32_t *), av_permute(v, idx)
 *                             (lane i of the result = lane idx[i] of v) when
 *                             the ISA has a cheap lane permute (else 0 and
 *                             dummies): border tiles then gather each lane's
 *                             own window instead of widening the band
 *   av_keep(v)                v, held in a register (an empty asm on x86:
 *                             otherwise the compiler folds the shared K/V
 *                             load into every row's FMA, one load per FMA)
 * and optionally NA_DIRECT_PV 1 with NA_DPV_MAX_NB, NA_DPV_MAX_ROWS and
 *   na_direct_pv(shared, nb, ps, a_stride, vkey, nkr, cs, vstep, hd, orows, lsum)
 *                             P.V of one query row of a tile with head_dim in
 *                             the lanes, V rows from an untransposed copy in
 *                             the ring (tokens packed: vT slot, position p
 *                             at p * head_dim) and the outputs written
 *                             normalized (see f32_natten_avx512.c): a task
 *                             whose column tiles all see whole bands (no
 *                             masked band position) then needs no V
 *                             transpose and no output transpose
 *
 * Buffers (floats, layout from spr_na_layout):
 *   kT, vT  ring of transposed key/value rows: slot s, dim d, position p holds
 *           element d of the token at column colbase + p of the slot's key row
 *           (positions outside the task's column union are finite filler);
 *   qT      the queries of the current tile (NA_VL columns of each of its
 *           rows), transposed and scaled by scale * log2(e) just before
 *           its scores: [row][d][lane];
 *   S       scores then probabilities of one column tile:
 *           [row][key row of the row's window][band offset][lane];
 *   oT      P.V accumulators [row][column][lane];
 *   lane    per-lane band limits lo/hi and row sums. */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/natten/natten.h"

#define NA_LOG2E 1.4426950408889634f

#ifndef NA_DIRECT_PV
#define NA_DIRECT_PV 0
#define NA_DPV_MAX_NB 8
#define NA_DPV_MAX_ROWS 64
#endif
/* column tiles whose bands a task computes once */
#define NA_BAND_CACHE 32

#if NA_QR > 3 || NA_QR > SPR_NA_MAX_QR || NA_VL > SPR_NA_MAX_VL || NA_NO > SPR_NA_MAX_NO || NA_PNO > SPR_NA_MAX_NO
#error "neighborhood attention ukernel parameters out of range"
#endif

static inline int32_t na_min32(int32_t a, int32_t b) {
  return a < b ? a : b;
}
static inline int32_t na_max32(int32_t a, int32_t b) {
  return a > b ? a : b;
}

/* Score register tile: for nr query rows and no <= NA_NO band offsets,
 * s[r][o][lanes] = sum_d qT[r][d][lanes] * kT[d][kp + o + lanes]
 * (+ bias[r][o] * log2 e when bias != NULL), and when mx != NULL
 * mx[r][lanes] = max(mx[r], s[r][o]) (interior tiles: every band position
 * is in the window, so the softmax max needs no separate pass). */
AV_INLINE void na_qk_tile(size_t nr, size_t no, int perm, av_idx idx, size_t hd, const float *const *qr, size_t qs,
                          const float *kp, size_t ks, float *const *sr, const float *const *bias, float *const *mx) {
  av_v acc[NA_QR][NA_NO];
  for (size_t r = 0; r < nr; r++)
    for (size_t o = 0; o < no; o++) acc[r][o] = av_zero();
  for (size_t d = 0; d < hd; d++) {
    av_v qv[NA_QR];
    for (size_t r = 0; r < nr; r++) qv[r] = av_load(qr[r] + d * qs);
    const float *kd = kp + d * ks;
    for (size_t o = 0; o < no; o++) {
      av_v kv = av_load(kd + o);
      if (perm) kv = av_permute(kv, idx);
      kv = av_keep(kv);
      for (size_t r = 0; r < nr; r++) acc[r][o] = av_fma(qv[r], kv, acc[r][o]);
    }
  }
  if (bias != NULL)
    for (size_t r = 0; r < nr; r++)
      for (size_t o = 0; o < no; o++) acc[r][o] = av_add(acc[r][o], av_set1(bias[r][o] * NA_LOG2E));
  for (size_t r = 0; r < nr; r++)
    for (size_t o = 0; o < no; o++) av_store(sr[r] + o * NA_VL, acc[r][o]);
  if (mx != NULL) {
    for (size_t r = 0; r < nr; r++) {
      av_v m = av_load(mx[r]);
      for (size_t o = 0; o < no; o++) m = av_max(m, acc[r][o]);
      av_store(mx[r], m);
    }
  }
}

#define NA_MINC(k, n) ((k) < (n) ? (k) : (n))

/* na_qk_tile with compile-time offset count (1 .. NA_NO) and permute flag. */
AV_INLINE void na_qk_no(size_t nr, size_t no, int perm, av_idx idx, size_t hd, const float *const *qr, size_t qs,
                        const float *kp, size_t ks, float *const *sr, const float *const *bias, float *const *mx) {
#define NA_QK_CASE(k)                                                              \
  case k:                                                                          \
    if (NA_HAVE_PERMUTE && perm)                                                   \
      na_qk_tile(nr, NA_MINC(k, NA_NO), 1, idx, hd, qr, qs, kp, ks, sr, bias, mx); \
    else                                                                           \
      na_qk_tile(nr, NA_MINC(k, NA_NO), 0, idx, hd, qr, qs, kp, ks, sr, bias, mx); \
    break;
  switch (no) {
    NA_QK_CASE(1)
    NA_QK_CASE(2)
    NA_QK_CASE(3)
    NA_QK_CASE(4)
    NA_QK_CASE(5)
    NA_QK_CASE(6)
    NA_QK_CASE(7)
    NA_QK_CASE(8)
    default:
      break;
  }
#undef NA_QK_CASE
}

/* P.V tile: for nr query rows and no <= NA_PNO band offsets (their
 * probabilities held in registers), every output column c < hd:
 * o[r][c][lanes] += sum_o p[r][o][lanes] * vT[c][vp + o + lanes]. The loop
 * order mirrors the score tile (one contiguous vT slice per column). */
AV_INLINE void na_pv_tile(size_t nr, size_t no, int perm, av_idx idx, size_t hd, const float *const *pr,
                          const float *vp, size_t vs, float *const *orow, const float *const *mr, float *const *lr) {
  /* probabilities from the scores: p = 2^(s - max), and the row sums */
  av_v p[NA_QR][NA_PNO];
  for (size_t r = 0; r < nr; r++) {
    const av_v m = av_load(mr[r]);
    av_v l = av_load(lr[r]);
    for (size_t o = 0; o < no; o++) {
      p[r][o] = av_exp2(av_sub(av_load(pr[r] + o * NA_VL), m));
      l = av_add(l, p[r][o]);
    }
    av_store(lr[r], l);
  }
  for (size_t c = 0; c < hd; c++) {
    av_v acc[NA_QR];
    for (size_t r = 0; r < nr; r++) acc[r] = av_load(orow[r] + c * NA_VL);
    const float *vc = vp + c * vs;
    for (size_t o = 0; o < no; o++) {
      av_v vv = av_load(vc + o);
      if (perm) vv = av_permute(vv, idx);
      vv = av_keep(vv);
      for (size_t r = 0; r < nr; r++) acc[r] = av_fma(p[r][o], vv, acc[r]);
    }
    for (size_t r = 0; r < nr; r++) av_store(orow[r] + c * NA_VL, acc[r]);
  }
}

AV_INLINE void na_pv_no(size_t nr, size_t no, int perm, av_idx idx, size_t hd, const float *const *pr, const float *vp,
                        size_t vs, float *const *orow, const float *const *mr, float *const *lr) {
#define NA_PV_CASE(k)                                                           \
  case k:                                                                       \
    if (NA_HAVE_PERMUTE && perm)                                                \
      na_pv_tile(nr, NA_MINC(k, NA_PNO), 1, idx, hd, pr, vp, vs, orow, mr, lr); \
    else                                                                        \
      na_pv_tile(nr, NA_MINC(k, NA_PNO), 0, idx, hd, pr, vp, vs, orow, mr, lr); \
    break;
  switch (no) {
    NA_PV_CASE(1)
    NA_PV_CASE(2)
    NA_PV_CASE(3)
    NA_PV_CASE(4)
    NA_PV_CASE(5)
    NA_PV_CASE(6)
    NA_PV_CASE(7)
    NA_PV_CASE(8)
    default:
      break;
  }
#undef NA_PV_CASE
}

/* Transposes columns [xa, xb) of one token line (first token `src`, tokens
 * tstride floats apart, head_dim floats each) to dst[d * dstride + (x - xa)],
 * times mul. A partial last block repeats its last token past xb (the
 * caller leaves room for NA_VL - 1 extra positions). */
static void na_transpose_line(const float *src, size_t tstride, int32_t xa, int32_t xb, size_t hd, float mul,
                              float *dst, size_t dstride) {
  const size_t hdv = hd / NA_VL * NA_VL;
  const av_v m = av_set1(mul);
  for (int32_t x = xa; x < xb; x += NA_VL) {
    const int32_t n = na_min32(NA_VL, xb - x);
    const float *rows[NA_VL];
    const float *r0 = src + (size_t)x * tstride;
    if (n == NA_VL)
      for (int32_t i = 0; i < NA_VL; i++) rows[i] = r0 + (size_t)i * tstride;
    else
      for (int32_t i = 0; i < NA_VL; i++) rows[i] = r0 + (size_t)na_min32(i, n - 1) * tstride;
    float *dx = dst + (x - xa);
    for (size_t d0 = 0; d0 < hdv; d0 += NA_VL) {
      av_v out[NA_VL];
      av_transpose_load(rows, d0, out);
      for (size_t j = 0; j < NA_VL; j++) av_store(dx + (d0 + j) * dstride, av_mul(out[j], m));
    }
    for (size_t d = hdv; d < hd; d++)
      for (int32_t i = 0; i < NA_VL; i++) dx[d * dstride + (size_t)i] = rows[i][d] * mul;
  }
}

/* The band of a column tile (first query column c0, nq <= NA_VL queries):
 * the key column of lane l at offset o is c0 + l + dmin + o; lanes whose
 * window is shifted (borders, strides) widen the band and mask what they do
 * not see. Gather mode (perm: stride 1, a lane permute available): offset o
 * of lane l is column cs[l] + o, a permute of the load at cs[0] + o, so the
 * band keeps the window's width. */
struct na_band {
  int32_t cs[NA_VL], dlo[NA_VL], idx[NA_VL];
  float lo[NA_VL], hi[NA_VL]; /* per lane: band positions [lo, hi) are in its window */
  int32_t dmin, base;         /* base: key column of band position 0 (lane 0) */
  size_t nb;                  /* band offsets */
  int perm, need_mask;
};

static void na_band(const struct spr_na_axis *axx, int32_t c0, int32_t nq, struct na_band *b) {
  int32_t dhi[NA_VL], ce[NA_VL];
  int32_t dmin = INT32_MAX, dmax = INT32_MIN, wmax = 0;
  for (int32_t l = 0; l < NA_VL; l++) {
    const int32_t qc = c0 + na_min32(l, nq - 1);
    spr_na_window(axx, qc, &b->cs[l], &ce[l]);
    b->dlo[l] = b->cs[l] - qc;
    dhi[l] = ce[l] - qc;
    dmin = na_min32(dmin, b->dlo[l]);
    dmax = na_max32(dmax, dhi[l]);
    wmax = na_max32(wmax, ce[l] - b->cs[l]);
  }
  b->dmin = dmin;
  b->perm = NA_HAVE_PERMUTE && axx->stride == 1 && wmax < dmax - dmin;
  b->need_mask = 0;
  if (b->perm) {
    b->nb = (size_t)wmax;
    b->base = b->cs[0];
    for (int32_t l = 0; l < NA_VL; l++) {
      b->idx[l] = b->cs[l] - b->cs[0];
      b->lo[l] = 0.0f;
      b->hi[l] = (float)(ce[l] - b->cs[l]);
      b->need_mask |= ce[l] - b->cs[l] != wmax;
    }
  } else {
    b->nb = (size_t)(dmax - dmin);
    b->base = c0 + dmin;
    for (int32_t l = 0; l < NA_VL; l++) {
      b->idx[l] = l;
      b->lo[l] = (float)(b->dlo[l] - dmin);
      b->hi[l] = (float)(dhi[l] - dmin);
      b->need_mask |= b->dlo[l] != dmin || dhi[l] != dmax;
    }
  }
}

/* The column union of a task must stay inside a ring row: see
 * spr_na_layout. */
void NA_UKERNEL(const struct spr_f32_na_task *t, float *ws) {
  const size_t hd = t->head_dim;
  const struct spr_na_axis *az = &t->ax[0], *ay = &t->ax[1], *axx = &t->ax[2];
  struct spr_na_layout L;
  spr_na_layout(t->ax, hd, (size_t)(t->x1 - t->x0), NA_VL, NA_QR, NA_NO > NA_PNO ? NA_NO : NA_PNO, 1, &L);
  float *const kt = ws + L.kt, *const vt = ws + L.vt, *const qt = ws + L.qt, *const sc = ws + L.s;
  float *const ot = ws + L.ot, *const lane = ws + L.lane;
  float *const lo_f = lane, *const hi_f = lane + NA_VL, *const lsum = lane + 8 * NA_VL;
  float *const mrow = lsum + NA_QR * NA_VL; /* [QR][VL] running max of interior tiles */
  const size_t row_w = L.row_w, slot_f = hd * row_w;
  const float qscale = t->scale * NA_LOG2E;

  int32_t zs, ze, us, ue, tmp;
  spr_na_window(az, t->z, &zs, &ze);
  spr_na_window(axx, t->x0, &us, &tmp);
  spr_na_window(axx, t->x1 - 1, &tmp, &ue);
  const int32_t colbase = t->x0 - (int32_t)L.padl; /* column of ring position 0 */
  const size_t pa = (size_t)(us - colbase), pb = (size_t)(ue - colbase);

  /* the bands of the column tiles (the same for every row tile), kept when
   * there are few tiles; direct P.V for the whole task (V rows copied, not
   * transposed) when every column tile sees whole bands: the choice depends
   * on the task's columns only, never on the thread count */
  const int32_t n_tiles = (t->x1 - t->x0 + NA_VL - 1) / NA_VL;
  struct na_band bands[NA_BAND_CACHE];
  const int cache = n_tiles <= NA_BAND_CACHE;
  int direct = 1;
  for (int32_t ti = 0; ti < n_tiles && (cache || direct); ti++) {
    const int32_t c0 = t->x0 + ti * NA_VL;
    struct na_band one, *b = cache ? &bands[ti] : &one;
    na_band(axx, c0, na_min32(NA_VL, t->x1 - c0), b);
    direct &= !b->need_mask && b->nb >= 1 && b->nb <= NA_DPV_MAX_NB;
  }
  direct &= NA_DIRECT_PV && hd % 16 == 0 && (size_t)(ze - zs) * (size_t)ay->kernel <= NA_DPV_MAX_ROWS;

  /* filler outside the union: zeros (finite, so masked lanes stay finite) */
  for (size_t s = 0; s < L.n_slots; s++) {
    for (size_t d = 0; d < hd; d++) {
      float *kr = kt + s * slot_f + d * row_w, *vr = vt + s * slot_f + d * row_w;
      memset(kr, 0, pa * sizeof(float));
      memset(kr + pb, 0, (row_w - pb) * sizeof(float));
      if (direct) continue;
      memset(vr, 0, pa * sizeof(float));
      memset(vr + pb, 0, (row_w - pb) * sizeof(float));
    }
  }
  const size_t nz = (size_t)(ze - zs);
  const size_t tok_x_k = t->tok_x * t->k_stride, tok_x_v = t->tok_x * t->v_stride;

  int32_t ky_next = -1;
  for (int32_t y = t->y0; y < t->y1; y += NA_QR) {
    const size_t nr = (size_t)na_min32(NA_QR, t->y1 - y);
    int32_t ys[NA_QR], ye[NA_QR];
    for (size_t r = 0; r < nr; r++) spr_na_window(ay, y + (int32_t)r, &ys[r], &ye[r]);
    const int32_t kya = ys[0], kyb = ye[nr - 1];
    if (ky_next < kya) ky_next = kya;
    for (; ky_next < kyb; ky_next++) {
      for (int32_t kz = zs; kz < ze; kz++) {
        const size_t slot = (size_t)(kz - zs) * L.n_ring + (size_t)ky_next % L.n_ring;
        const size_t tok = t->tok0 + (size_t)kz * t->tok_z + (size_t)ky_next * t->tok_y + (size_t)us * t->tok_x;
        na_transpose_line(t->k + tok * t->k_stride, tok_x_k, 0, ue - us, hd, 1.0f, kt + slot * slot_f + pa, row_w);
        if (!direct) {
          na_transpose_line(t->v + tok * t->v_stride, tok_x_v, 0, ue - us, hd, 1.0f, vt + slot * slot_f + pa, row_w);
        } else {
          /* direct P.V: the V rows as they are, tokens packed (hd % 16 == 0) */
          const float *src = t->v + tok * t->v_stride;
          float *dst = vt + slot * slot_f + pa * hd;
          for (int32_t x = 0; x < ue - us; x++, src += tok_x_v, dst += hd)
            for (size_t c = 0; c < hd; c += NA_VL) av_store(dst + c, av_load(src + c));
        }
      }
    }

    /* no software prefetch: with the key rows entering the ring in
     * streams and the queries read per tile, the hardware prefetchers keep
     * up; main's prefetch of the next row tile measured -2 % (1 thread) and
     * -5 % (2 threads) here */

    for (int32_t c0 = t->x0; c0 < t->x1; c0 += NA_VL) {
      const int32_t nq = na_min32(NA_VL, t->x1 - c0);
      /* the tile's queries, transposed and scaled: qt[r][d][lane] (just
       * before use: a whole row tile's would fill L1) */
      for (size_t r = 0; r < nr; r++) {
        const size_t tok =
            t->tok0 + (size_t)t->z * t->tok_z + (size_t)(y + (int32_t)r) * t->tok_y + (size_t)c0 * t->tok_x;
        na_transpose_line(t->q + tok * t->q_stride, t->tok_x * t->q_stride, 0, nq, hd, qscale, qt + r * hd * L.q_w,
                          L.q_w);
      }
      struct na_band bd_tmp;
      const struct na_band *bdp = &bd_tmp;
      if (cache)
        bdp = &bands[(c0 - t->x0) / NA_VL];
      else
        na_band(axx, c0, nq, &bd_tmp);
      const struct na_band bd = *bdp;
      const int perm = bd.perm, need_mask = bd.need_mask;
      const size_t nb = bd.nb;
      const int32_t base = bd.base, dmin = bd.dmin;
      const int32_t *const dlo = bd.dlo;
      for (int32_t l = 0; l < NA_VL; l++) {
        lo_f[l] = bd.lo[l];
        hi_f[l] = bd.hi[l];
      }
      const int32_t *const idx_i = bd.idx;
      const av_idx idx = av_idx_load(idx_i);
      const size_t nbs = nb; /* band stride in S */
      const av_v lo_v = av_load(lo_f), hi_v = av_load(hi_f);
      /* no masking needed and a bias that is uniform over the lanes: bias and
       * the running max are applied by the score tile */
      const int fused = !need_mask && (t->rpb == NULL || !perm);
      for (size_t r = 0; r < nr; r++) av_store(mrow + r * NA_VL, av_set1(-INFINITY));
      const size_t kcol = (size_t)(base - colbase);
      const size_t nky_max = (size_t)ay->kernel;

      /* scores, key row by key row; each kT slice serves all rows that see it */
      for (int32_t kz = zs; kz < ze; kz++) {
        size_t ry = (size_t)kya % L.n_ring; /* ring row of ky */
        for (int32_t ky = kya; ky < kyb; ky++, ry = ry + 1 == L.n_ring ? 0 : ry + 1) {
          size_t ra = 0, rb = nr;
          while (ra < nr && ye[ra] <= ky) ra++;
          while (rb > ra && ys[rb - 1] > ky) rb--;
          if (ra == rb) continue;
          const size_t slot = (size_t)(kz - zs) * L.n_ring + ry;
          const float *kp = kt + slot * slot_f + kcol;
          const float *qr[NA_QR], *br[NA_QR];
          float *sr[NA_QR], *mr[NA_QR];
          for (size_t r = ra; r < rb; r++) {
            const size_t a = (size_t)(kz - zs) * (size_t)(ye[r] - ys[r]) + (size_t)(ky - ys[r]);
            qr[r - ra] = qt + r * hd * L.q_w;
            sr[r - ra] = sc + ((r * nz * nky_max + a) * nbs) * NA_VL;
            mr[r - ra] = mrow + r * NA_VL;
            if (fused && t->rpb != NULL) {
              const size_t bz = (size_t)(az->kernel - 1 + kz - t->z),
                           by = (size_t)(ay->kernel - 1 + ky - (y + (int32_t)r));
              br[r - ra] = t->rpb + (bz * (size_t)(2 * ay->kernel - 1) + by) * (size_t)(2 * axx->kernel - 1) +
                           (size_t)(axx->kernel - 1 + dmin);
            }
          }
          /* the band in n_ch chunks of at most NA_NO offsets, as even as possible */
          const size_t n_ch = (nb + NA_NO - 1) / NA_NO;
          for (size_t ch = 0, o0 = 0; ch < n_ch; ch++) {
            const size_t o1 = nb * (ch + 1) / n_ch;
            float *so[NA_QR];
            const float *bo[NA_QR];
            for (size_t r = 0; r < rb - ra; r++) {
              so[r] = sr[r] + o0 * NA_VL;
              bo[r] = fused && t->rpb != NULL ? br[r] + o0 : NULL;
            }
            const float *const *bias = fused && t->rpb != NULL ? bo : NULL;
            float *const *mx = fused ? mr : NULL;
            switch (rb - ra) {
              case 1:
                na_qk_no(1, o1 - o0, perm, idx, hd, qr, L.q_w, kp + o0, row_w, so, bias, mx);
                break;
#if NA_QR >= 2
              case 2:
                na_qk_no(2, o1 - o0, perm, idx, hd, qr, L.q_w, kp + o0, row_w, so, bias, mx);
                break;
#endif
#if NA_QR >= 3
              case 3:
                na_qk_no(3, o1 - o0, perm, idx, hd, qr, L.q_w, kp + o0, row_w, so, bias, mx);
                break;
#endif
              default:
                break;
            }
            o0 = o1;
          }
        }
      }

      /* border tiles: hide the band positions outside each lane's window, add
       * the bias and take the max (the P.V tiles turn scores into
       * probabilities 2^(s - max) and sum them) */
      for (size_t r = 0; r < nr; r++) av_store(lsum + r * NA_VL, av_zero());
      if (!fused) {
        for (size_t r = 0; r < nr; r++) {
          const size_t nky = (size_t)(ye[r] - ys[r]), nkr = nz * nky;
          float *s0 = sc + r * nz * nky_max * nbs * NA_VL;
          av_v m = av_load(mrow + r * NA_VL);
          for (size_t a = 0; a < nkr; a++) {
            float *sa = s0 + a * nbs * NA_VL;
            const float *brow = NULL; /* rpb at relative column offset 0 */
            if (t->rpb != NULL) {
              const int32_t kz = zs + (int32_t)(a / nky), ky = ys[r] + (int32_t)(a % nky);
              const size_t bz = (size_t)(az->kernel - 1 + kz - t->z),
                           by = (size_t)(ay->kernel - 1 + ky - (y + (int32_t)r));
              brow = t->rpb + (bz * (size_t)(2 * ay->kernel - 1) + by) * (size_t)(2 * axx->kernel - 1) +
                     (size_t)(axx->kernel - 1);
            }
            for (size_t o = 0; o < nb; o++) {
              av_v sv = av_mask_range(av_load(sa + o * NA_VL), (float)o, lo_v, hi_v);
              if (brow != NULL) {
                /* per lane: relative offset dlo + o (gather) or dmin + o (band),
                 * inside the table wherever the lane sees the key */
                float bv[NA_VL];
                for (int32_t l = 0; l < NA_VL; l++) {
                  const int32_t rel = (perm ? dlo[l] : dmin) + (int32_t)o;
                  bv[l] = (float)o >= lo_f[l] && (float)o < hi_f[l] ? brow[rel] * NA_LOG2E : 0.0f;
                }
                sv = av_add(sv, av_load(bv));
              }
              av_store(sa + o * NA_VL, sv);
              m = av_max(m, sv);
            }
          }
          av_store(mrow + r * NA_VL, m);
        }
      }

#if NA_DIRECT_PV
      if (direct) {
        /* probabilities 2^(s - max) in place and their sums (the order of
         * the ring path's P.V tiles), then P.V row by row */
        const int shared = !perm && nq == NA_VL;
        for (size_t r = 0; r < nr; r++) {
          const size_t nky = (size_t)(ye[r] - ys[r]), nkr = nz * nky;
          float *s0 = sc + r * nz * nky_max * nbs * NA_VL;
          const av_v m = av_load(mrow + r * NA_VL);
          av_v l = av_zero();
          for (size_t a = 0; a < nkr; a++) {
            float *sa = s0 + a * nbs * NA_VL;
            for (size_t o = 0; o < nb; o++) {
              const av_v pv = av_exp2(av_sub(av_load(sa + o * NA_VL), m));
              av_store(sa + o * NA_VL, pv);
              l = av_add(l, pv);
            }
          }
          av_store(lsum + r * NA_VL, l);
          const float *vkey[NA_DPV_MAX_ROWS];
          for (size_t kz = 0, a = 0; kz < nz; kz++) {
            size_t ry = (size_t)ys[r] % L.n_ring;
            for (size_t i = 0; i < nky; i++, a++, ry = ry + 1 == L.n_ring ? 0 : ry + 1)
              vkey[a] = vt + (kz * L.n_ring + ry) * slot_f;
          }
          const size_t tok = t->tok0 + (size_t)t->z * t->tok_z + (size_t)(y + (int32_t)r) * t->tok_y;
          float *orows[NA_VL];
          for (int32_t q = 0; q < NA_VL; q++)
            orows[q] = q < nq ? t->o + (tok + (size_t)(c0 + q) * t->tok_x) * t->o_stride : NULL;
          int32_t csr[NA_VL];
          for (int32_t q = 0; q < NA_VL; q++) csr[q] = bd.cs[q] - colbase;
          na_direct_pv(shared, nb, s0, nbs * NA_VL, vkey, nkr, csr, hd, hd, orows, lsum + r * NA_VL);
        }
        continue;
      }
#endif

      /* P.V, key row by key row; each vT slice serves all rows that see it */
      memset(ot, 0, nr * L.hd_c * NA_VL * sizeof(float));
      for (int32_t kz = zs; kz < ze; kz++) {
        for (int32_t ky = kya; ky < kyb; ky++) {
          size_t ra = 0, rb = nr;
          while (ra < nr && ye[ra] <= ky) ra++;
          while (rb > ra && ys[rb - 1] > ky) rb--;
          if (ra == rb) continue;
          const size_t slot = (size_t)(kz - zs) * L.n_ring + (size_t)ky % L.n_ring;
          const float *vp = vt + slot * slot_f + kcol;
          const float *pr[NA_QR], *mrp[NA_QR];
          float *orow[NA_QR], *lrp[NA_QR];
          for (size_t r = ra; r < rb; r++) {
            const size_t a = (size_t)(kz - zs) * (size_t)(ye[r] - ys[r]) + (size_t)(ky - ys[r]);
            pr[r - ra] = sc + ((r * nz * nky_max + a) * nbs) * NA_VL;
            orow[r - ra] = ot + r * L.hd_c * NA_VL;
            mrp[r - ra] = mrow + r * NA_VL;
            lrp[r - ra] = lsum + r * NA_VL;
          }
          const size_t n_ch = (nb + NA_PNO - 1) / NA_PNO;
          for (size_t ch = 0, o0 = 0; ch < n_ch; ch++) {
            const size_t o1 = nb * (ch + 1) / n_ch;
            const float *po[NA_QR];
            for (size_t r = 0; r < rb - ra; r++) po[r] = pr[r] + o0 * NA_VL;
            switch (rb - ra) {
              case 1:
                na_pv_no(1, o1 - o0, perm, idx, hd, po, vp + o0, row_w, orow, mrp, lrp);
                break;
#if NA_QR >= 2
              case 2:
                na_pv_no(2, o1 - o0, perm, idx, hd, po, vp + o0, row_w, orow, mrp, lrp);
                break;
#endif
#if NA_QR >= 3
              case 3:
                na_pv_no(3, o1 - o0, perm, idx, hd, po, vp + o0, row_w, orow, mrp, lrp);
                break;
#endif
              default:
                break;
            }
            o0 = o1;
          }
        }
      }

      /* normalize and write the outputs of lanes < nq */
      const size_t hdv = hd / NA_VL * NA_VL;
      for (size_t r = 0; r < nr; r++) {
        float inv[NA_VL];
        for (int32_t l = 0; l < NA_VL; l++) inv[l] = 1.0f / lsum[r * NA_VL + (size_t)l];
        const size_t tok = t->tok0 + (size_t)t->z * t->tok_z + (size_t)(y + (int32_t)r) * t->tok_y;
        float *orows[NA_VL];
        for (int32_t l = 0; l < nq; l++) orows[l] = t->o + (tok + (size_t)(c0 + l) * t->tok_x) * t->o_stride;
        const float *oro = ot + r * L.hd_c * NA_VL;
        for (size_t cb = 0; cb < hdv; cb += NA_VL) {
          const float *rows[NA_VL];
          for (size_t i = 0; i < NA_VL; i++) rows[i] = oro + (cb + i) * NA_VL;
          av_v out[NA_VL];
          av_transpose_load(rows, 0, out);
          for (int32_t l = 0; l < nq; l++) av_store(orows[l] + cb, av_mul(out[l], av_set1(inv[l])));
        }
        for (size_t c = hdv; c < hd; c++)
          for (int32_t l = 0; l < nq; l++) orows[l][c] = oro[c * NA_VL + (size_t)l] * inv[l];
      }
    }
  }
}
