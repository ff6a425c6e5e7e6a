/* ops/bra/bra_impl.h — the BRA attention ukernel body (one region, one
 * head, up to a tile of its queries against all its routed keys), written
 * once over a small vector vocabulary and compiled once per ISA. Same
 * structure and numerics as the fused dense attention
 * (ops/attention/attention_impl.h), with the keys read in place from the
 * routed regions' token rows instead of a contiguous row range.
 *
 * The including file (f32_bra_<isa>.c) defines, before including:
 *   av_v, AV_VL               vector type and lanes
 *   AV_MV                     query vectors per call (tile = AV_MV * AV_VL)
 *   AV_NKR                    keys per score register tile (divides the key block)
 *   AV_CR                     output columns per P.V register tile
 *   AV_ROW_MAX_LANES          calls with <= this many queries use the row path
 *   AV_UKERNEL, AV_INLINE, AV_NOINLINE
 *   av_zero av_set1 av_load av_store av_bcast av_fma av_add av_mul av_sub av_max
 *   av_exp2(x)                2^x for x <= 0
 *   av_hsum(v), av_hsum4(a, b, c, d, out)
 *
 * lanes path (many queries): lane = query; Q packed transposed and
 * pre-scaled (qT[d][lane] = q * scale * log2 e); score register tile
 * acc[query vector][key] += qT[d] * broadcast(k[key][d]); per key block the
 * probabilities go to sT[key][lane] and the P.V register tile is
 * acc[query vector][column] += sT[key] * broadcast(v[key][column]).
 * row path (a few queries, small regions): head_dim in the vector lanes,
 * each K/V row loaded once for up to 4 queries; when head_dim is 1-4 whole
 * vectors the queries stay in registers and two keys are scored at once.
 * Key token rows come from the routed regions' first-token rows
 * (task->reg_base) without divisions. */

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/bra/bra.h"

#define AV_QB (AV_MV * AV_VL)
#define AV_NK SPR_BRA_KEY_BLOCK
#define AV_LOG2E 1.4426950408889634f

#if AV_QB > SPR_BRA_MAX_TILE || (AV_NK % AV_NKR) != 0 || AV_ROW_MAX_LANES > 8
#error "BRA ukernel parameters out of range"
#endif

static inline size_t av_min(size_t a, size_t b) {
  return a < b ? a : b;
}

/* Token rows of keys [kb, kb + n) of the routed sequence (regions in
 * order, tokens row-major inside a region). */
static void bra_key_tokens(const struct spr_f32_bra_task *t, size_t kb, size_t n, size_t *tok) {
  const size_t m = t->reg_h * t->reg_w;
  size_t si = kb / m, rem = kb % m;
  size_t tr = rem / t->reg_w, tc = rem % t->reg_w;
  size_t row = t->reg_base[si] + tr * t->map_w;
  for (size_t j = 0; j < n; j++) {
    tok[j] = row + tc;
    if (++tc == t->reg_w) {
      tc = 0;
      row += t->map_w;
      if (++tr == t->reg_h) {
        tr = 0;
        if (++si < t->n_sel) row = t->reg_base[si];
      }
    }
  }
}

/* acc[r][jj] = sum_d qT[d][r*VL + lane] * kr[jj][d]. */
AV_INLINE void bra_score_tile(size_t mv, size_t hd, const float *qT, const float *const *kr, av_v acc[AV_MV][AV_NKR]) {
  for (size_t r = 0; r < mv; r++)
    for (size_t jj = 0; jj < AV_NKR; jj++) acc[r][jj] = av_zero();
  for (size_t d = 0; d < hd; d++) {
    av_v qv[AV_MV];
    for (size_t r = 0; r < mv; r++) qv[r] = av_load(qT + d * AV_QB + r * AV_VL);
    for (size_t jj = 0; jj < AV_NKR; jj++) {
      const av_v b = av_bcast(kr[jj] + d);
      for (size_t r = 0; r < mv; r++) acc[r][jj] = av_fma(qv[r], b, acc[r][jj]);
    }
  }
}

/* oT[cc][lanes] = alpha * oT + sum_j sT[j][lanes] * vr[j][c0 + cols[cc]]. */
AV_INLINE void bra_pv_tile(size_t mv, size_t nb, const float *sT, const float *const *vr, size_t c0, const size_t *cols,
                           const av_v *alpha, float *oT) {
  av_v acc[AV_MV][AV_CR];
  for (size_t cc = 0; cc < AV_CR; cc++)
    for (size_t r = 0; r < mv; r++) acc[r][cc] = av_mul(av_load(oT + cc * AV_QB + r * AV_VL), alpha[r]);
  for (size_t j = 0; j < nb; j++) {
    av_v p[AV_MV];
    for (size_t r = 0; r < mv; r++) p[r] = av_load(sT + j * AV_QB + r * AV_VL);
    const float *v = vr[j] + c0;
    for (size_t cc = 0; cc < AV_CR; cc++) {
      const av_v b = av_bcast(v + cols[cc]);
      for (size_t r = 0; r < mv; r++) acc[r][cc] = av_fma(p[r], b, acc[r][cc]);
    }
  }
  for (size_t cc = 0; cc < AV_CR; cc++)
    for (size_t r = 0; r < mv; r++) av_store(oT + cc * AV_QB + r * AV_VL, acc[r][cc]);
}

/* Online-softmax step of one key block (see attention_impl.h). */
AV_NOINLINE void bra_softmax_block(size_t mv, size_t nb, float *sT, float *mrow, float *lrow, float *ab) {
  for (size_t r = 0; r < mv; r++) {
    float *s = sT + r * AV_VL;
    av_v bmax = av_load(s);
    for (size_t j = 1; j < nb; j++) bmax = av_max(bmax, av_load(s + j * AV_QB));
    const av_v mold = av_load(mrow + r * AV_VL);
    const av_v mnew = av_max(mold, bmax);
    const av_v alpha = av_exp2(av_sub(mold, mnew));
    av_store(ab + r * AV_VL, alpha);
    av_store(mrow + r * AV_VL, mnew);
    av_v lsum = av_zero();
    for (size_t j = 0; j < nb; j++, s += AV_QB) {
      const av_v p = av_exp2(av_sub(av_load(s), mnew));
      av_store(s, p);
      lsum = av_add(lsum, p);
    }
    av_store(lrow + r * AV_VL, av_fma(av_load(lrow + r * AV_VL), alpha, lsum));
  }
}

AV_INLINE void bra_lanes(size_t mv, const struct spr_f32_bra_task *t, float *ws) {
  const size_t hq = t->hd_qk, hv = t->hd_v, nq = t->nq;
  const size_t nk = t->n_sel * t->reg_h * t->reg_w;
  const size_t hvc = (hv + AV_CR - 1) / AV_CR * AV_CR;
  float *qT = ws;                 /* [hq][QB]  scaled Q^T, zero in unused lanes */
  float *sT = qT + hq * AV_QB;    /* [NK][QB]  scores, then probabilities */
  float *oT = sT + AV_NK * AV_QB; /* [hvc][QB] unnormalized output */
  float *mrow = oT + hvc * AV_QB; /* [QB] running max (log2 units) */
  float *lrow = mrow + AV_QB;     /* [QB] running sum */
  float *ab = lrow + AV_QB;       /* [QB] alpha of the current key block */
  const float qscale = t->scale * AV_LOG2E;

  for (size_t r = 0; r < mv * AV_VL; r++) {
    for (size_t d = 0; d < hq; d++) qT[d * AV_QB + r] = r < nq ? t->q[r][d] * qscale : 0.0f;
    mrow[r] = -FLT_MAX;
    lrow[r] = 0.0f;
  }
  for (size_t c = 0; c < hvc; c++)
    for (size_t r = 0; r < mv; r++) av_store(oT + c * AV_QB + r * AV_VL, av_zero());

  size_t tok[AV_NK];
  const float *vr[AV_NK];
  for (size_t kb = 0; kb < nk; kb += AV_NK) {
    const size_t nb = av_min(AV_NK, nk - kb);
    bra_key_tokens(t, kb, nb, tok);
    for (size_t j0 = 0; j0 < nb; j0 += AV_NKR) {
      const size_t jr = av_min(AV_NKR, nb - j0);
      const float *kr[AV_NKR];
      for (size_t jj = 0; jj < AV_NKR; jj++) kr[jj] = t->k + tok[j0 + av_min(jj, jr - 1)] * t->k_stride;
      av_v acc[AV_MV][AV_NKR];
      bra_score_tile(mv, hq, qT, kr, acc);
      for (size_t jj = 0; jj < AV_NKR; jj++)
        for (size_t r = 0; r < mv; r++)
          if (jj < jr) av_store(sT + (j0 + jj) * AV_QB + r * AV_VL, acc[r][jj]);
    }
    bra_softmax_block(mv, nb, sT, mrow, lrow, ab);
    av_v alpha[AV_MV];
    for (size_t r = 0; r < mv; r++) alpha[r] = av_load(ab + r * AV_VL);
    for (size_t j = 0; j < nb; j++) vr[j] = t->v + tok[j] * t->v_stride;
    size_t c0 = 0;
    size_t cols[AV_CR];
    for (size_t cc = 0; cc < AV_CR; cc++) cols[cc] = cc;
    for (; c0 + AV_CR <= hv; c0 += AV_CR) bra_pv_tile(mv, nb, sT, vr, c0, cols, alpha, oT + c0 * AV_QB);
    if (c0 < hv) {
      for (size_t cc = 0; cc < AV_CR; cc++) cols[cc] = av_min(c0 + cc, hv - 1) - c0;
      bra_pv_tile(mv, nb, sT, vr, c0, cols, alpha, oT + c0 * AV_QB);
    }
  }

  for (size_t r = 0; r < nq; r++) {
    float *op = t->o[r];
    const float inv = 1.0f / lrow[r];
    for (size_t c = 0; c < hv; c++) op[c] = oT[c * AV_QB + r] * inv;
  }
}

/* Row path: scores of keys [0, n) for nl <= 4 queries, each K row loaded
 * once; sc[r][j] = q[r] . k[j] (log2 units). */
AV_INLINE void bra_rows_scores(size_t nl, size_t n, size_t hd, const float *qs, size_t hdv, const float *const *kr,
                               float *sc, size_t ss) {
  const size_t hdf = hd / AV_VL * AV_VL;
  for (size_t j = 0; j < n; j++) {
    const float *k = kr[j];
    av_v acc[4];
    for (size_t r = 0; r < 4; r++) acc[r] = av_zero();
    for (size_t c = 0; c < hdf; c += AV_VL) {
      const av_v kv = av_load(k + c);
      for (size_t r = 0; r < nl; r++) acc[r] = av_fma(av_load(qs + r * hdv + c), kv, acc[r]);
    }
    float s4[4];
    av_hsum4(acc[0], acc[1], acc[2], acc[3], s4);
    for (size_t r = 0; r < nl; r++) {
      float s = s4[r];
      for (size_t c = hdf; c < hd; c++) s += qs[r * hdv + c] * k[c];
      sc[r * ss + j] = s;
    }
  }
}

/* Row path scores when head_dim = nv vectors exactly (nv <= 4): the nl
 * queries stay in registers and two keys go at once (two independent
 * reduction chains). Same arithmetic per score as bra_rows_scores. */
AV_INLINE void bra_rows_scores_reg(size_t nl, size_t nv, size_t n, const float *qs, size_t hdv, const float *const *kr,
                                   float *sc, size_t ss) {
  av_v qv[4][4];
  for (size_t r = 0; r < nl; r++)
    for (size_t c = 0; c < nv; c++) qv[r][c] = av_load(qs + r * hdv + c * AV_VL);
  size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    av_v a0[4], a1[4];
    for (size_t r = 0; r < 4; r++) a0[r] = a1[r] = av_zero();
    for (size_t c = 0; c < nv; c++) {
      const av_v k0 = av_load(kr[j] + c * AV_VL), k1 = av_load(kr[j + 1] + c * AV_VL);
      for (size_t r = 0; r < nl; r++) {
        a0[r] = av_fma(qv[r][c], k0, a0[r]);
        a1[r] = av_fma(qv[r][c], k1, a1[r]);
      }
    }
    float s0[4], s1[4];
    av_hsum4(a0[0], a0[1], a0[2], a0[3], s0);
    av_hsum4(a1[0], a1[1], a1[2], a1[3], s1);
    for (size_t r = 0; r < nl; r++) {
      sc[r * ss + j] = s0[r];
      sc[r * ss + j + 1] = s1[r];
    }
  }
  if (j < n) {
    av_v a0[4];
    for (size_t r = 0; r < 4; r++) a0[r] = av_zero();
    for (size_t c = 0; c < nv; c++) {
      const av_v k0 = av_load(kr[j] + c * AV_VL);
      for (size_t r = 0; r < nl; r++) a0[r] = av_fma(qv[r][c], k0, a0[r]);
    }
    float s0[4];
    av_hsum4(a0[0], a0[1], a0[2], a0[3], s0);
    for (size_t r = 0; r < nl; r++) sc[r * ss + j] = s0[r];
  }
}

#define BRA_ROWS_REG(nl)                                                        \
  switch (hq / AV_VL) {                                                         \
    case 1:                                                                     \
      bra_rows_scores_reg(nl, 1, nb, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss); \
      break;                                                                    \
    case 2:                                                                     \
      bra_rows_scores_reg(nl, 2, nb, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss); \
      break;                                                                    \
    case 3:                                                                     \
      bra_rows_scores_reg(nl, 3, nb, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss); \
      break;                                                                    \
    default:                                                                    \
      bra_rows_scores_reg(nl, 4, nb, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss); \
      break;                                                                    \
  }

/* Row path P.V, columns [c, c + nv * VL) (nv <= 4): o[r] = alpha[r] * o[r]
 * + sum_j p[r][j] * v[j], each V vector loaded once for the nl <= 4
 * queries, nv column vectors per key (fewer loads per FMA). */
AV_INLINE void bra_rows_pv_blk(size_t nl, size_t nv, size_t n, size_t c, const float *p, size_t ps,
                               const float *const *vr, const float *alpha, float *o, size_t os) {
  av_v acc[4][4];
  for (size_t r = 0; r < nl; r++)
    for (size_t k = 0; k < nv; k++) acc[r][k] = av_mul(av_load(o + r * os + c + k * AV_VL), av_set1(alpha[r]));
  for (size_t j = 0; j < n; j++) {
    av_v vv[4];
    for (size_t k = 0; k < nv; k++) vv[k] = av_load(vr[j] + c + k * AV_VL);
    for (size_t r = 0; r < nl; r++) {
      const av_v pr = av_bcast(p + r * ps + j);
      for (size_t k = 0; k < nv; k++) acc[r][k] = av_fma(pr, vv[k], acc[r][k]);
    }
  }
  for (size_t r = 0; r < nl; r++)
    for (size_t k = 0; k < nv; k++) av_store(o + r * os + c + k * AV_VL, acc[r][k]);
}

/* Row path P.V: o[r][0 .. hdf) = alpha[r] * o[r] + sum_j p[r][j] * v[j],
 * up to four column vectors at a time. */
AV_INLINE void bra_rows_pv(size_t nl, size_t n, size_t hdf, const float *p, size_t ps, const float *const *vr,
                           const float *alpha, float *o, size_t os) {
  for (size_t c = 0; c < hdf; c += 4 * AV_VL) {
    switch (av_min(4, (hdf - c) / AV_VL)) {
      case 1:
        bra_rows_pv_blk(nl, 1, n, c, p, ps, vr, alpha, o, os);
        break;
      case 2:
        bra_rows_pv_blk(nl, 2, n, c, p, ps, vr, alpha, o, os);
        break;
      case 3:
        bra_rows_pv_blk(nl, 3, n, c, p, ps, vr, alpha, o, os);
        break;
      default:
        bra_rows_pv_blk(nl, 4, n, c, p, ps, vr, alpha, o, os);
        break;
    }
  }
}

static void bra_rows(const struct spr_f32_bra_task *t, float *ws) {
  const size_t hq = t->hd_qk, hv = t->hd_v, nq = t->nq;
  const size_t nk = t->n_sel * t->reg_h * t->reg_w;
  const size_t hqv = (hq + AV_VL - 1) / AV_VL * AV_VL, hvv = (hv + AV_VL - 1) / AV_VL * AV_VL;
  const size_t hvf = hv / AV_VL * AV_VL;
  const size_t ss = AV_NK + AV_VL;
  float *qs = ws;             /* [nq][hqv] scaled q */
  float *os = qs + nq * hqv;  /* [nq][hvv] unnormalized output */
  float *sc = os + nq * hvv;  /* [nq][NK + VL] scores, then probabilities */
  float *mrow = sc + nq * ss; /* [nq] */
  float *lrow = mrow + nq;    /* [nq] */
  float *alpha = lrow + nq;   /* [nq] */
  const float qscale = t->scale * AV_LOG2E;
  const int reg = hq % AV_VL == 0 && hq <= 4 * AV_VL;
  for (size_t r = 0; r < nq; r++) {
    size_t d = 0;
    for (; d + AV_VL <= hq; d += AV_VL) av_store(qs + r * hqv + d, av_mul(av_load(t->q[r] + d), av_set1(qscale)));
    for (; d < hqv; d++) qs[r * hqv + d] = d < hq ? t->q[r][d] * qscale : 0.0f;
    for (size_t e = 0; e < hvv; e++) os[r * hvv + e] = 0.0f;
    mrow[r] = -FLT_MAX;
    lrow[r] = 0.0f;
  }
  size_t tok[AV_NK];
  const float *kr[AV_NK], *vr[AV_NK];
  for (size_t kb = 0; kb < nk; kb += AV_NK) {
    const size_t nb = av_min(AV_NK, nk - kb), nbv = (nb + AV_VL - 1) / AV_VL * AV_VL;
    bra_key_tokens(t, kb, nb, tok);
    for (size_t j = 0; j < nb; j++) {
      kr[j] = t->k + tok[j] * t->k_stride;
      vr[j] = t->v + tok[j] * t->v_stride;
    }
    for (size_t r0 = 0; r0 < nq && reg; r0 += 4) {
      switch (av_min(4, nq - r0)) {
        case 1:
          BRA_ROWS_REG(1)
          break;
        case 2:
          BRA_ROWS_REG(2)
          break;
        case 3:
          BRA_ROWS_REG(3)
          break;
        default:
          BRA_ROWS_REG(4)
          break;
      }
    }
    for (size_t r0 = 0; r0 < nq && !reg; r0 += 4) {
      switch (av_min(4, nq - r0)) {
        case 1:
          bra_rows_scores(1, nb, hq, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss);
          break;
        case 2:
          bra_rows_scores(2, nb, hq, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss);
          break;
        case 3:
          bra_rows_scores(3, nb, hq, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss);
          break;
        default:
          bra_rows_scores(4, nb, hq, qs + r0 * hqv, hqv, kr, sc + r0 * ss, ss);
          break;
      }
    }
    for (size_t r = 0; r < nq; r++) {
      float *sr = sc + r * ss;
      for (size_t j = nb; j < nbv; j++) sr[j] = -INFINITY;
      av_v bm = av_set1(-INFINITY);
      for (size_t j = 0; j < nbv; j += AV_VL) bm = av_max(bm, av_load(sr + j));
      float tmp[AV_VL];
      av_store(tmp, bm);
      float bmax = tmp[0];
      for (size_t l = 1; l < AV_VL; l++) bmax = tmp[l] > bmax ? tmp[l] : bmax;
      const float mnew = mrow[r] > bmax ? mrow[r] : bmax;
      av_store(tmp, av_exp2(av_set1(mrow[r] - mnew)));
      alpha[r] = tmp[0];
      mrow[r] = mnew;
      const av_v mv = av_set1(mnew);
      av_v lsum = av_zero();
      for (size_t j = 0; j < nbv; j += AV_VL) {
        const av_v p = av_exp2(av_sub(av_load(sr + j), mv));
        av_store(sr + j, p);
        lsum = av_add(lsum, p);
      }
      lrow[r] = lrow[r] * alpha[r] + av_hsum(lsum);
    }
    for (size_t r0 = 0; r0 < nq; r0 += 4) {
      switch (av_min(4, nq - r0)) {
        case 1:
          bra_rows_pv(1, nb, hvf, sc + r0 * ss, ss, vr, alpha + r0, os + r0 * hvv, hvv);
          break;
        case 2:
          bra_rows_pv(2, nb, hvf, sc + r0 * ss, ss, vr, alpha + r0, os + r0 * hvv, hvv);
          break;
        case 3:
          bra_rows_pv(3, nb, hvf, sc + r0 * ss, ss, vr, alpha + r0, os + r0 * hvv, hvv);
          break;
        default:
          bra_rows_pv(4, nb, hvf, sc + r0 * ss, ss, vr, alpha + r0, os + r0 * hvv, hvv);
          break;
      }
    }
    for (size_t r = 0; r < nq; r++) {
      float *orow = os + r * hvv;
      const float *sr = sc + r * ss;
      for (size_t c = hvf; c < hv; c++) {
        float acc = orow[c] * alpha[r];
        for (size_t j = 0; j < nb; j++) acc += sr[j] * vr[j][c];
        orow[c] = acc;
      }
    }
  }
  for (size_t r = 0; r < nq; r++) {
    const float inv = 1.0f / lrow[r];
    for (size_t c = 0; c < hv; c++) t->o[r][c] = os[r * hvv + c] * inv;
  }
}

#if defined(AV_G4)
/* Small-region path (a few queries, head_dim a multiple of 4, <= 64): the
 * vector is AV_G groups of 4 lanes, one query per group. Scores: group g
 * of an accumulator holds 4 partial sums of q_g . k over channels 4t..4t+3
 * (Q pre-arranged once per call, K broadcast 4 floats at a time: no
 * shuffles in the inner loop); one 4x4 reduction per 4 keys leaves the
 * keys in the lanes, sc4[(j/4) VL + 4g + j%4] = score(query g, key j).
 * Softmax runs on those vectors (group-wise max); P.V as the row path, each
 * V vector loaded once for the AV_G queries. Scratch: [hd/4][VL] queries,
 * [KEY_BLOCK/4][VL] scores, [AV_G][hd_v] output (not growing with topk). */
#define AV_G (AV_VL / 4)
#define AV_SMALL_MAXT 16

AV_INLINE void bra_small_scores(size_t nt, size_t nb, const float *qg, const float *const *kr, size_t ko, float *sc4) {
  av_v qv[AV_SMALL_MAXT];
  for (size_t t = 0; t < nt; t++) qv[t] = av_load(qg + t * AV_VL);
  for (size_t j = 0; j < nb; j += 4) {
    const float *k[4];
    for (size_t u = 0; u < 4; u++) k[u] = kr[av_min(j + u, nb - 1)] + ko;
    av_v a[4];
    for (size_t u = 0; u < 4; u++) a[u] = av_mul(qv[0], av_bcast4(k[u]));
    for (size_t t = 1; t < nt; t++)
      for (size_t u = 0; u < 4; u++) a[u] = av_fma(qv[t], av_bcast4(k[u] + 4 * t), a[u]);
    av_store(sc4 + j / 4 * AV_VL, av_red4x4(a[0], a[1], a[2], a[3]));
  }
}

/* os[g][c .. c + nv VL) = al[4g] * os[g] + sum_j p(g, j) v[j][...], all AV_G groups. */
AV_INLINE void bra_small_pv_blk(size_t nv, size_t n, size_t vc, size_t c, const float *sc4, const float *const *vr,
                                const float *al, float *os, size_t hvv, float *const *out, const float *inv,
                                size_t ng) {
  av_v acc[AV_G][4];
  for (size_t g = 0; g < AV_G; g++)
    for (size_t k = 0; k < nv; k++)
      acc[g][k] = out != NULL ? av_zero() : av_mul(av_load(os + g * hvv + c + k * AV_VL), av_set1(al[4 * g]));
  size_t j = 0;
  for (; j + 4 <= n; j += 4) { /* four keys of one score vector: constant offsets */
    const float *pj = sc4 + j / 4 * AV_VL;
    for (size_t u = 0; u < 4; u++) {
      av_v vv[4];
      for (size_t k = 0; k < nv; k++) vv[k] = av_load(vr[j + u] + vc + k * AV_VL);
      for (size_t g = 0; g < AV_G; g++) {
        const av_v pr = av_bcast(pj + 4 * g + u);
        for (size_t k = 0; k < nv; k++) acc[g][k] = av_fma(pr, vv[k], acc[g][k]);
      }
    }
  }
  for (; j < n; j++) {
    av_v vv[4];
    for (size_t k = 0; k < nv; k++) vv[k] = av_load(vr[j] + vc + k * AV_VL);
    const float *pj = sc4 + j / 4 * AV_VL + j % 4;
    for (size_t g = 0; g < AV_G; g++) {
      const av_v pr = av_bcast(pj + 4 * g);
      for (size_t k = 0; k < nv; k++) acc[g][k] = av_fma(pr, vv[k], acc[g][k]);
    }
  }
  if (out != NULL) { /* the only key block: normalized outputs of the used groups */
    for (size_t g = 0; g < ng; g++)
      for (size_t k = 0; k < nv; k++) av_store(out[g] + vc + k * AV_VL, av_mul(acc[g][k], av_set1(inv[g])));
    return;
  }
  for (size_t g = 0; g < AV_G; g++)
    for (size_t k = 0; k < nv; k++) av_store(os + g * hvv + c + k * AV_VL, acc[g][k]);
}

/* Key pointers (head 0) of the whole token rows of the routed regions from
 * (region *si, row *tr0) on, up to NK keys (at least one row); returns the
 * count and advances (*si, *tr0). */
static size_t bra_small_keys(const struct spr_f32_bra_task *t, size_t *si, size_t *tr0, const float **kr,
                             const float **vr) {
  size_t nb = 0;
  do {
    const size_t row = t->reg_base[*si] + *tr0 * t->map_w;
    const float *kp = t->k + row * t->k_stride, *vp = t->v + row * t->v_stride;
    for (size_t tc = 0; tc < t->reg_w; tc++, nb++, kp += t->k_stride, vp += t->v_stride) {
      kr[nb] = kp;
      vr[nb] = vp;
    }
    if (++*tr0 == t->reg_h) {
      *tr0 = 0;
      ++*si;
    }
  } while (*si < t->n_sel && nb + t->reg_w <= AV_NK);
  return nb;
}

static void bra_small(const struct spr_f32_bra_task *t, float *ws) {
  const size_t hq = t->hd_qk, hv = t->hd_v, nt = hq / 4;
  const size_t hvv = (hv + AV_VL - 1) / AV_VL * AV_VL, hvf = hv / AV_VL * AV_VL;
  float *qg = ws;                      /* [nt][VL] scaled queries, group g = query g */
  float *sc4 = qg + nt * AV_VL;        /* [NK/4][VL] scores, then probabilities */
  float *os = sc4 + AV_NK / 4 * AV_VL; /* [G][hvv] unnormalized output */
  float al[AV_VL], lv[AV_VL];
  const float qscale = t->scale * AV_LOG2E;
  const float *kr[AV_NK], *vr[AV_NK];
  /* all keys in one block: their pointers serve every head and query group */
  size_t nb_all = 0;
  if (t->n_sel * t->reg_h * t->reg_w <= AV_NK) {
    size_t si = 0, tr0 = 0;
    while (si < t->n_sel) nb_all += bra_small_keys(t, &si, &tr0, kr + nb_all, vr + nb_all);
  }
  for (size_t h = 0, r0 = 0; h < t->n_heads;) { /* head h, queries r0 .. r0 + ng - 1 */
    const size_t ng = av_min(AV_G, t->nq - r0), ko = h * hq, vo = h * hv;
    const float *qp[AV_G]; /* unused groups repeat the last query (their results are dropped) */
    for (size_t g = 0; g < AV_G; g++) qp[g] = t->q[r0 + av_min(g, ng - 1)] + ko;
    for (size_t tt = 0; tt < nt; tt++) av_store(qg + tt * AV_VL, av_mul(av_load4g(qp, 4 * tt), av_set1(qscale)));
    for (size_t c = 0; c < AV_G * hvv; c += AV_VL) av_store(os + c, av_zero());
    av_v m = av_set1(-FLT_MAX), l = av_zero();
    size_t si = 0, tr0 = 0; /* next key: region si, token row tr0 of it (blocks of whole token rows) */
    while (si < t->n_sel) {
      size_t nb;
      if (nb_all > 0) {
        nb = nb_all;
        si = t->n_sel;
      } else {
        nb = bra_small_keys(t, &si, &tr0, kr, vr);
      }
      const size_t nb4 = (nb + 3) / 4;
      switch (nt) {
        case 8:
          bra_small_scores(8, nb, qg, kr, ko, sc4);
          break;
        case 16:
          bra_small_scores(16, nb, qg, kr, ko, sc4);
          break;
        default:
          bra_small_scores(nt, nb, qg, kr, ko, sc4);
          break;
      }
      for (size_t j = nb; j < nb4 * 4; j++)
        for (size_t g = 0; g < AV_G; g++) sc4[j / 4 * AV_VL + 4 * g + j % 4] = -INFINITY;
      av_v bm = av_load(sc4), bm1 = bm;
      size_t jm = 1;
      for (; jm + 2 <= nb4; jm += 2) {
        bm = av_max(bm, av_load(sc4 + jm * AV_VL));
        bm1 = av_max(bm1, av_load(sc4 + (jm + 1) * AV_VL));
      }
      if (jm < nb4) bm = av_max(bm, av_load(sc4 + jm * AV_VL));
      const av_v mnew = av_max(m, av_gmax4(av_max(bm, bm1)));
      const av_v alpha = av_exp2(av_sub(m, mnew));
      m = mnew;
      av_v ls = av_zero();
      for (size_t jb = 0; jb < nb4; jb++) {
        const av_v p = av_exp2(av_sub(av_load(sc4 + jb * AV_VL), mnew));
        av_store(sc4 + jb * AV_VL, p);
        ls = av_add(ls, p);
      }
      l = av_fma(l, alpha, ls);
      av_store(al, alpha);
      float *const *outp = NULL; /* the only key block: P.V writes the normalized outputs */
      float inv[AV_G] = {0.0f};
      if (nb_all > 0) {
        av_store(lv, l);
        for (size_t g = 0; g < AV_G; g++)
          inv[g] = 1.0f / ((lv[4 * g] + lv[4 * g + 1]) + (lv[4 * g + 2] + lv[4 * g + 3]));
        outp = t->o + r0;
      }
      for (size_t c = 0; c < hvf; c += 4 * AV_VL) {
        switch (av_min(4, (hvf - c) / AV_VL)) {
          case 1:
            bra_small_pv_blk(1, nb, vo + c, c, sc4, vr, al, os, hvv, outp, inv, ng);
            break;
          case 2:
            bra_small_pv_blk(2, nb, vo + c, c, sc4, vr, al, os, hvv, outp, inv, ng);
            break;
          case 3:
            bra_small_pv_blk(3, nb, vo + c, c, sc4, vr, al, os, hvv, outp, inv, ng);
            break;
          default:
            bra_small_pv_blk(4, nb, vo + c, c, sc4, vr, al, os, hvv, outp, inv, ng);
            break;
        }
      }
      for (size_t g = 0; g < ng; g++)
        for (size_t c = hvf; c < hv; c++) {
          float acc = outp != NULL ? 0.0f : os[g * hvv + c] * al[4 * g];
          for (size_t j = 0; j < nb; j++) acc += sc4[j / 4 * AV_VL + 4 * g + j % 4] * vr[j][vo + c];
          if (outp != NULL)
            outp[g][vo + c] = acc * inv[g];
          else
            os[g * hvv + c] = acc;
        }
    }
    av_store(lv, l);
    for (size_t g = 0; g < ng && nb_all == 0; g++) {
      const float inv = 1.0f / ((lv[4 * g] + lv[4 * g + 1]) + (lv[4 * g + 2] + lv[4 * g + 3]));
      size_t c = 0;
      for (; c < hvf; c += AV_VL) av_store(t->o[r0 + g] + vo + c, av_mul(av_load(os + g * hvv + c), av_set1(inv)));
      for (; c < hv; c++) t->o[r0 + g][vo + c] = os[g * hvv + c] * inv;
    }
    r0 += ng;
    if (r0 == t->nq) {
      r0 = 0;
      h++;
    }
  }
}
#endif

/* One head of a task (head h's slices), through the rows or the lanes path. */
static void bra_one_head(const struct spr_f32_bra_task *t, float *scratch) {
  if (t->nq <= AV_ROW_MAX_LANES) {
    bra_rows(t, scratch);
    return;
  }
  switch ((t->nq + AV_VL - 1) / AV_VL) {
    case 1:
      bra_lanes(1, t, scratch);
      break;
#if AV_MV >= 2
    case 2:
      bra_lanes(2, t, scratch);
      break;
#endif
#if AV_MV >= 3
    case 3:
      bra_lanes(3, t, scratch);
      break;
#endif
#if AV_MV >= 4
    case 4:
      bra_lanes(4, t, scratch);
      break;
#endif
    default:
      break;
  }
}

void AV_UKERNEL(const struct spr_f32_bra_task *t, float *scratch) {
#if defined(AV_G4)
  if (t->nq <= AV_ROW_MAX_LANES && t->hd_qk % 4 == 0 && t->hd_qk <= 4 * AV_SMALL_MAXT && t->reg_w <= AV_NK) {
    bra_small(t, scratch);
    return;
  }
#endif
  struct spr_f32_bra_task th = *t;
  const float *qh[SPR_BRA_MAX_TILE];
  float *oh[SPR_BRA_MAX_TILE];
  th.q = qh;
  th.o = oh;
  th.n_heads = 1;
  for (size_t h = 0; h < t->n_heads; h++) {
    for (size_t i = 0; i < t->nq; i++) {
      qh[i] = t->q[i] + h * t->hd_qk;
      oh[i] = t->o[i] + h * t->hd_v;
    }
    th.k = t->k + h * t->hd_qk;
    th.v = t->v + h * t->hd_v;
    bra_one_head(&th, scratch);
  }
}
