/* ops/attention/attention_impl.h — the fused-attention ukernel body, written
 * once over a small vector vocabulary and compiled once per ISA.
 *
 * The including file (f32_attention_<isa>.c) defines, before including:
 *   av_v                      vector of AV_VL floats
 *   AV_VL                     lanes per vector
 *   AV_MV                     query vectors per task (tile = AV_MV * AV_VL)
 *   AV_NKR                    keys per score register tile (divides SPR_ATTN_KEY_BLOCK)
 *   AV_CR                     output columns per P.V register tile (divides 16)
 *   AV_ROW_MAX_LANES          tasks with <= this many lanes use the row path
 *   AV_RG                     row path: vectors per P.V column group (<= 4)
 *   AV_UKERNEL                the ukernel's name
 *   AV_UKERNEL_F16            the name of its f16-K/V row-path twin (attention.h)
 *   AV_INLINE, AV_NOINLINE    forced-inline / never-inline qualifiers
 *   av_zero() av_set1(x) av_load(p) av_store(p, v) av_bcast(p) (= set1(*p))
 *   av_load_h(p)              AV_VL f16 values at p, converted exactly to f32
 *   av_fma(a, b, c) = a*b + c, av_add, av_mul, av_sub, av_max
 *   av_exp2(x)                2^x for x <= 0 (rel. err < 2e-7 down to 2^-125;
 *                             exactly 0 for x = -inf, tiny or 0 below -126)
 *   av_hsum(v)                sum of the lanes (fixed order)
 *   av_hsum4(a, b, c, d, out) out[0..3] = av_hsum of a, b, c, d (fixed order)
 *   av_mask_keys(s, j, lim)   s where j <= lim (per lane), else -inf (with -j and
 *                             -lo it also applies the lower limit j >= lo)
 *
 * Two paths, chosen from the task shape only (so thread count never matters):
 *
 * lanes path (many lanes): lane = (query head, query row). Q is packed
 * transposed and pre-scaled (qT[d][lane] = q * scale * log2 e), so a score
 * register tile is acc[query vector][key] += qT[d] * broadcast(k[key][d]),
 * read straight from the caller's K rows; per lane max/sum are plain vector
 * ops (no horizontal reductions). Scores of one key block go to sT[key][lane],
 * become probabilities in place, and the P.V register tile is
 * acc[query vector][column] += sT[key] * broadcast(v[key][column]), rescaled
 * by alpha once per key block in the transposed accumulator oT[column][lane].
 *
 * row path (few lanes, e.g. decode Tq = 1 with a few GQA heads): head_dim in
 * the vector lanes. For each key, the K row is loaded once and dotted with up
 * to 4 lanes' q, finished by one 4-way horizontal sum; probabilities are
 * vectors over keys; O[lane] += p * V row with each V row loaded once for up
 * to 4 lanes. So K and V are streamed once per task. The row path also
 * reads f16 K/V rows in place (AV_UKERNEL_F16, cached decode), converting
 * them in registers: the same operations on the same (exactly converted)
 * values as on gathered f32 rows. */

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/attention/attention.h"
#include "ops/common/fp16.h"

#define AV_QB (AV_MV * AV_VL)
#define AV_NK SPR_ATTN_KEY_BLOCK
#define AV_LOG2E 1.4426950408889634f

#if AV_QB > SPR_ATTN_MAX_TILE || (AV_NK % AV_NKR) != 0 || (16 % AV_CR) != 0 || AV_VL > 16 || AV_RG > 4 || \
    AV_ROW_MAX_LANES > 8
#error "attention ukernel parameters out of range"
#endif

static inline size_t av_round_up(size_t x, size_t a) {
  return (x + a - 1) / a * a;
}
static inline size_t av_min(size_t a, size_t b) {
  return a < b ? a : b;
}

/* Row path: how many keys ahead K and V rows are prefetched. Rows are
 * usually far apart (the K/V row of all kv heads), so the hardware stream
 * prefetchers see one short read per row; software prefetch keeps enough
 * rows in flight for the row path to stream K/V at memory speed. */
#define AV_PF_KEYS 8
/* Besides, each key block's K and V rows are requested into L2 in one burst
 * (the first block's before its scores, the next block's while this one
 * runs): a decode step's K/V come from DRAM (the weights streamed through
 * the caches since the previous step), and 8 keys of lead keep only about
 * 16 lines in flight. TinyLlama shape, 2 threads, attention per decode step
 * (llm_profile, old and new binaries alternating, 7 pairs): 440-508 ->
 * 348-436 us at 64 + 128 tokens; 890-984 -> 650-806 us at 256 + 64. */
#if defined(__GNUC__)
#define AV_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define AV_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#else
#define AV_PREFETCH(p) ((void)(p))
#define AV_PREFETCH_L2(p) ((void)(p))
#endif

static inline float av_exp2_1(float x) {
  float tmp[AV_VL];
  av_store(tmp, av_exp2(av_set1(x)));
  return tmp[0];
}

/* acc[r][jj] = sum_d qT[d][r*VL + lane] * kr[jj][d]. */
AV_INLINE void av_score_tile(size_t mv, size_t hd, const float *qT, const float *const *kr, av_v acc[AV_MV][AV_NKR]) {
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

/* oT[c0 + cc][lanes] = alpha * oT[..] + sum_j sT[j][lanes] * v[j][col[cc]] for
 * cc < AV_CR; v points at key 0 of the block, column 0 of the head. cols[cc]
 * are the column offsets read (clamped inside the head for a tail tile). */
AV_INLINE void av_pv_tile(size_t mv, size_t nb, const float *sT, const float *v, size_t vs, const size_t *cols,
                          const av_v *alpha, float *oT) {
  av_v acc[AV_MV][AV_CR];
  for (size_t cc = 0; cc < AV_CR; cc++)
    for (size_t r = 0; r < mv; r++) acc[r][cc] = av_mul(av_load(oT + cc * AV_QB + r * AV_VL), alpha[r]);
  for (size_t j = 0; j < nb; j++) {
    av_v p[AV_MV];
    for (size_t r = 0; r < mv; r++) p[r] = av_load(sT + j * AV_QB + r * AV_VL);
    for (size_t cc = 0; cc < AV_CR; cc++) {
      const av_v b = av_bcast(v + cols[cc]);
      for (size_t r = 0; r < mv; r++) acc[r][cc] = av_fma(p[r], b, acc[r][cc]);
    }
    v += vs;
  }
  for (size_t cc = 0; cc < AV_CR; cc++)
    for (size_t r = 0; r < mv; r++) av_store(oT + cc * AV_QB + r * AV_VL, acc[r][cc]);
}

/* Online-softmax step of one key block (nb keys) for the lanes path, per
 * lane: m = max(m, max_j sT[j]), alpha = 2^(m_old - m), sT[j] = 2^(sT[j] - m),
 * l = l * alpha + sum_j sT[j]; alpha is stored to ab. Kept out of line so that
 * its constants and temporaries do not occupy registers around the register
 * tiles. */
AV_NOINLINE void av_softmax_block(size_t mv, size_t nb, float *sT, float *mrow, float *lrow, float *ab) {
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

/* Lanes path, lower limit: hides keys j in [j_from, j_to) (sequence
 * indices, the block starts at jb) from the lanes with j < lo, i.e.
 * -j > nlo; out of line, off the register tiles' path. */
static inline int64_t av_min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}
AV_NOINLINE void av_mask_low(size_t mv, int64_t jb, int64_t j_from, int64_t j_to, const float *nlo, float *sT) {
  for (int64_t j = j_from; j < j_to; j++) {
    float *s = sT + (size_t)(j - jb) * AV_QB;
    for (size_t r = 0; r < mv; r++)
      av_store(s + r * AV_VL, av_mask_keys(av_load(s + r * AV_VL), -(float)j, av_load(nlo + r * AV_VL)));
  }
}

AV_INLINE void av_lanes(size_t mv, const struct spr_f32_attn_task *t, float *ws) {
  const size_t hd = t->head_dim, nq = t->nq, n_lanes = t->ng * nq, nk = t->nk;
  const size_t hdc = av_round_up(hd, AV_CR);
  float *qT = ws;                 /* [hd][QB]  scaled Q^T, zero in unused lanes */
  float *sT = qT + hd * AV_QB;    /* [NK][QB]  scores, then probabilities */
  float *oT = sT + AV_NK * AV_QB; /* [hdc][QB] unnormalized output */
  float *mrow = oT + hdc * AV_QB; /* [QB] running max (log2 units) */
  float *lrow = mrow + AV_QB;     /* [QB] running sum */
  float *lim = lrow + AV_QB;      /* [QB] last visible key (exact in f32: indices < 2^24) */
  float *ab = lim + AV_QB;        /* [QB] alpha of the current key block */
  float *nlo = ab + AV_QB;        /* [QB] minus the first visible key >= ns */
  const float qscale = t->scale * AV_LOG2E;

  if (t->first) {
    for (size_t r = 0; r < mv * AV_VL; r++) {
      if (r < n_lanes) {
        const size_t g = r / nq, i = r % nq;
        const float *qp = t->q + i * t->q_stride + g * hd;
        for (size_t d = 0; d < hd; d++) qT[d * AV_QB + r] = qp[d] * qscale;
        lim[r] = (float)(t->lim0 + (int64_t)i);
        nlo[r] = -(float)(t->lo0 + (int64_t)i);
      } else {
        for (size_t d = 0; d < hd; d++) qT[d * AV_QB + r] = 0.0f;
        lim[r] = FLT_MAX;
        nlo[r] = FLT_MAX;
      }
      mrow[r] = -FLT_MAX;
      lrow[r] = 0.0f;
    }
    for (size_t c = 0; c < hdc; c++)
      for (size_t r = 0; r < mv; r++) av_store(oT + c * AV_QB + r * AV_VL, av_zero());
  }

  /* keys in [ns, lo_end) are hidden from some lane by the lower limit */
  const int64_t ns = (int64_t)t->ns, lo_end = t->lo0 + (int64_t)nq - 1;
  for (size_t kb = 0; kb < nk; kb += AV_NK) {
    const size_t nb = av_min(AV_NK, nk - kb);
    const int64_t jb = (int64_t)(t->kbase + kb);     /* sequence index of the block's first key */
    const int diag = jb + (int64_t)nb - 1 > t->lim0; /* some lane cannot see some key */
    const int64_t lo_from = jb > ns ? jb : ns;
    for (size_t j0 = 0; j0 < nb; j0 += AV_NKR) {
      const size_t jr = av_min(AV_NKR, nb - j0);
      const float *kr[AV_NKR];
      for (size_t jj = 0; jj < AV_NKR; jj++) kr[jj] = t->k + (kb + j0 + av_min(jj, jr - 1)) * t->k_stride;
      av_v acc[AV_MV][AV_NKR];
      av_score_tile(mv, hd, qT, kr, acc);
      /* constant indices into acc (no early exit) keep it in registers */
      for (size_t jj = 0; jj < AV_NKR; jj++) {
        for (size_t r = 0; r < mv; r++) {
          if (jj < jr) {
            av_v s = acc[r][jj];
            if (diag) s = av_mask_keys(s, (float)(jb + (int64_t)(j0 + jj)), av_load(lim + r * AV_VL));
            av_store(sT + (j0 + jj) * AV_QB + r * AV_VL, s);
          }
        }
      }
    }
    if (lo_from < jb + (int64_t)nb && lo_from < lo_end)
      av_mask_low(mv, jb, lo_from, av_min64(jb + (int64_t)nb, lo_end), nlo, sT);

    av_softmax_block(mv, nb, sT, mrow, lrow, ab);
    av_v alpha[AV_MV];
    for (size_t r = 0; r < mv; r++) alpha[r] = av_load(ab + r * AV_VL);

    const float *vb = t->v + kb * t->v_stride;
    size_t c0 = 0;
    for (; c0 + AV_CR <= hd; c0 += AV_CR) {
      size_t cols[AV_CR];
      for (size_t cc = 0; cc < AV_CR; cc++) cols[cc] = cc;
      av_pv_tile(mv, nb, sT, vb + c0, t->v_stride, cols, alpha, oT + c0 * AV_QB);
    }
    if (c0 < hd) {
      size_t cols[AV_CR];
      for (size_t cc = 0; cc < AV_CR; cc++) cols[cc] = av_min(c0 + cc, hd - 1) - c0;
      av_pv_tile(mv, nb, sT, vb + c0, t->v_stride, cols, alpha, oT + c0 * AV_QB);
    }
  }

  if (!t->last) return;
  for (size_t r = 0; r < n_lanes; r++) {
    const size_t g = r / nq, i = r % nq;
    float *op = t->o + i * t->o_stride + g * hd;
    const float inv = 1.0f / lrow[r];
    for (size_t c = 0; c < hd; c++) op[c] = oT[c * AV_QB + r] * inv;
  }
}

/* Row-path K/V access: F16 = 0 reads f32 rows, F16 = 1 f16 rows (converted
 * exactly in registers, av_load_h); base and indices are in elements. */
AV_INLINE av_v av_kv_load(const int F16, const void *base, size_t i) {
  return F16 ? av_load_h((const uint16_t *)base + i) : av_load((const float *)base + i);
}
AV_INLINE float av_kv_at(const int F16, const void *base, size_t i) {
  return F16 ? spr_fp16_to_f32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}
AV_INLINE const void *av_kv_ptr(const int F16, const void *base, size_t i) {
  return F16 ? (const void *)((const uint16_t *)base + i) : (const void *)((const float *)base + i);
}
/* Prefetches the n elements at element i of base (one row), into L1, or
 * into L2 when L2 (a constant after inlining: __builtin_prefetch wants one). */
AV_INLINE void av_kv_prefetch(const int F16, const void *base, size_t i, size_t n, const int L2) {
  const char *p = (const char *)av_kv_ptr(F16, base, i);
  const size_t bytes = n * (F16 ? 2 : 4);
  for (size_t c = 0; c < bytes; c += 64) {
    if (L2)
      AV_PREFETCH_L2(p + c);
    else
      AV_PREFETCH(p + c);
  }
  if (L2)
    AV_PREFETCH_L2(p + bytes - 1);
  else
    AV_PREFETCH(p + bytes - 1);
}

/* Requests keys [0, n) of a block (K rows k + j ks, V rows v + j vs, hd
 * elements each; strides and offsets in elements) into L2. */
AV_INLINE void av_kv_block_prefetch(const int F16, const void *k, size_t ks, const void *v, size_t vs, size_t n,
                                    size_t hd) {
  for (size_t j = 0; j < n; j++) {
    av_kv_prefetch(F16, k, j * ks, hd, 1);
    av_kv_prefetch(F16, v, j * vs, hd, 1);
  }
}

/* Row path P.V for nl <= 4 lanes and one column group of nv vectors:
 * o[r][0 .. nv*VL) = alpha[r] * o[r] + sum_{j < n} p[r][j] * v[j][0 .. nv*VL),
 * each V row loaded once for the nl lanes. p rows are ps floats apart, o rows
 * os; V row j at element j * vs of v. */
AV_INLINE void av_rows_pv(const int F16, size_t nl, size_t nv, size_t n, const float *p, size_t ps, const void *v,
                          size_t vs, const float *alpha, float *o, size_t os) {
  av_v acc[4][AV_RG];
  for (size_t r = 0; r < nl; r++) {
    const av_v a = av_set1(alpha[r]);
    for (size_t c = 0; c < nv; c++) acc[r][c] = av_mul(av_load(o + r * os + c * AV_VL), a);
  }
  for (size_t j = 0; j < n; j++) {
    av_kv_prefetch(F16, v, (j + AV_PF_KEYS) * vs, nv * AV_VL, 0);
    av_v vv[AV_RG];
    for (size_t c = 0; c < nv; c++) vv[c] = av_kv_load(F16, v, j * vs + c * AV_VL);
    for (size_t r = 0; r < nl; r++) {
      const av_v pr = av_bcast(p + r * ps + j);
      for (size_t c = 0; c < nv; c++) acc[r][c] = av_fma(pr, vv[c], acc[r][c]);
    }
  }
  for (size_t r = 0; r < nl; r++)
    for (size_t c = 0; c < nv; c++) av_store(o + r * os + c * AV_VL, acc[r][c]);
}

AV_INLINE void av_rows_pv_lanes(const int F16, size_t nl, size_t hdf, size_t n, const float *p, size_t ps,
                                const void *v, size_t vs, const float *alpha, float *o, size_t os) {
  for (size_t c0 = 0; c0 < hdf; c0 += AV_RG * AV_VL) {
    const void *vc = av_kv_ptr(F16, v, c0);
    switch (av_min(AV_RG, (hdf - c0) / AV_VL)) {
      case 1:
        av_rows_pv(F16, nl, 1, n, p, ps, vc, vs, alpha, o + c0, os);
        break;
#if AV_RG >= 2
      case 2:
        av_rows_pv(F16, nl, 2, n, p, ps, vc, vs, alpha, o + c0, os);
        break;
#endif
#if AV_RG >= 3
      case 3:
        av_rows_pv(F16, nl, 3, n, p, ps, vc, vs, alpha, o + c0, os);
        break;
#endif
#if AV_RG >= 4
      case 4:
        av_rows_pv(F16, nl, 4, n, p, ps, vc, vs, alpha, o + c0, os);
        break;
#endif
      default:
        break;
    }
  }
}

/* Row path scores of keys [0, n) for nl <= 4 lanes: sc[r][j] = q[r] . k[j]
 * (log2 units), each K row loaded once for the nl lanes; the nl dot
 * products of a key are finished by one 4-way horizontal sum. K row j at
 * element j * ks of k. */
AV_INLINE void av_rows_scores(const int F16, size_t nl, size_t n, size_t hd, const float *qs, size_t hdv, const void *k,
                              size_t ks, float *sc, size_t ss) {
  const size_t hdf = hd / AV_VL * AV_VL;
  for (size_t j = 0; j < n; j++) {
    av_kv_prefetch(F16, k, (j + AV_PF_KEYS) * ks, hd, 0);
    av_v acc[4];
    for (size_t r = 0; r < 4; r++) acc[r] = av_zero();
    for (size_t c = 0; c < hdf; c += AV_VL) {
      const av_v kv = av_kv_load(F16, k, j * ks + c);
      for (size_t r = 0; r < nl; r++) acc[r] = av_fma(av_load(qs + r * hdv + c), kv, acc[r]);
    }
    float s4[4];
    av_hsum4(acc[0], acc[1], acc[2], acc[3], s4);
    for (size_t r = 0; r < nl; r++) {
      float s = s4[r];
      for (size_t c = hdf; c < hd; c++) s += qs[r * hdv + c] * av_kv_at(F16, k, j * ks + c);
      sc[r * ss + j] = s;
    }
  }
}

/* The row path; F16: K/V rows are f16 at t->k16 / t->v16, else f32 at t->k / t->v. */
AV_INLINE void av_rows(const int F16, const struct spr_f32_attn_task *t, float *ws) {
  const size_t hd = t->head_dim, nq = t->nq, nk = t->nk, n_lanes = t->ng * nq;
  const size_t hdv = av_round_up(hd, AV_VL), hdf = hd / AV_VL * AV_VL;
  const size_t ss = AV_NK + AV_VL;
  float *qs = ws;                  /* [lanes][hdv] scaled q, zero padded */
  float *os = qs + n_lanes * hdv;  /* [lanes][hdv] unnormalized output */
  float *sc = os + n_lanes * hdv;  /* [lanes][NK + VL] scores, then probabilities */
  float *mrow = sc + n_lanes * ss; /* [lanes] running max */
  float *lrow = mrow + n_lanes;    /* [lanes] running sum */
  float *alpha = lrow + n_lanes;   /* [lanes] this block's rescale */
  const float qscale = t->scale * AV_LOG2E;
  const void *kbase = F16 ? (const void *)t->k16 : (const void *)t->k;
  const void *vbase = F16 ? (const void *)t->v16 : (const void *)t->v;

  if (t->first) {
    for (size_t r = 0; r < n_lanes; r++) {
      const size_t g = r / nq, i = r % nq;
      const float *qp = t->q + i * t->q_stride + g * hd;
      for (size_t d = 0; d < hdv; d++) {
        qs[r * hdv + d] = d < hd ? qp[d] * qscale : 0.0f;
        os[r * hdv + d] = 0.0f;
      }
      mrow[r] = -FLT_MAX;
      lrow[r] = 0.0f;
    }
  }

  const int64_t ns = (int64_t)t->ns;
  for (size_t kb = 0; kb < nk; kb += AV_NK) {
    const size_t nb = av_min(AV_NK, nk - kb), nbv = av_round_up(nb, AV_VL);
    const int64_t jb = (int64_t)(t->kbase + kb); /* sequence index of the block's first key */
    const void *kb_rows = av_kv_ptr(F16, kbase, kb * t->k_stride), *vb_rows = av_kv_ptr(F16, vbase, kb * t->v_stride);
    if (kb == 0) av_kv_block_prefetch(F16, kb_rows, t->k_stride, vb_rows, t->v_stride, nb, hd);
    if (kb + AV_NK < nk) /* the next block */
      av_kv_block_prefetch(F16, av_kv_ptr(F16, kbase, (kb + AV_NK) * t->k_stride), t->k_stride,
                           av_kv_ptr(F16, vbase, (kb + AV_NK) * t->v_stride), t->v_stride,
                           av_min(AV_NK, nk - kb - AV_NK), hd);
    for (size_t r0 = 0; r0 < n_lanes; r0 += 4) {
      float *sg = sc + r0 * ss;
      const float *qg = qs + r0 * hdv;
      switch (av_min(4, n_lanes - r0)) {
        case 1:
          av_rows_scores(F16, 1, nb, hd, qg, hdv, kb_rows, t->k_stride, sg, ss);
          break;
        case 2:
          av_rows_scores(F16, 2, nb, hd, qg, hdv, kb_rows, t->k_stride, sg, ss);
          break;
        case 3:
          av_rows_scores(F16, 3, nb, hd, qg, hdv, kb_rows, t->k_stride, sg, ss);
          break;
        default:
          av_rows_scores(F16, 4, nb, hd, qg, hdv, kb_rows, t->k_stride, sg, ss);
          break;
      }
    }
    for (size_t r = 0; r < n_lanes; r++) {
      float *sr = sc + r * ss;
      const int64_t lim = t->lim0 + (int64_t)(r % nq), lo = t->lo0 + (int64_t)(r % nq);
      /* keys [nvis, nbv) are masked (or padding) */
      const size_t nvis = jb > lim ? 0 : av_min(nb, (size_t)(lim - jb) + 1);
      for (size_t j = nvis; j < nbv; j++) sr[j] = -INFINITY;
      /* and keys in [ns, lo) by the lower limit */
      const int64_t h0 = jb > ns ? jb : ns, h1 = jb + (int64_t)nvis < lo ? jb + (int64_t)nvis : lo;
      for (int64_t j = h0; j < h1; j++) sr[j - jb] = -INFINITY;
      av_v bm = av_set1(-INFINITY);
      for (size_t j = 0; j < nbv; j += AV_VL) bm = av_max(bm, av_load(sr + j));
      float tmp[AV_VL];
      av_store(tmp, bm);
      float bmax = tmp[0];
      for (size_t l = 1; l < AV_VL; l++) bmax = tmp[l] > bmax ? tmp[l] : bmax;
      const float mnew = mrow[r] > bmax ? mrow[r] : bmax;
      alpha[r] = av_exp2_1(mrow[r] - mnew);
      mrow[r] = mnew;
      const av_v mvec = av_set1(mnew);
      av_v lsum = av_zero();
      for (size_t j = 0; j < nbv; j += AV_VL) {
        const av_v p = av_exp2(av_sub(av_load(sr + j), mvec));
        av_store(sr + j, p);
        lsum = av_add(lsum, p);
      }
      lrow[r] = lrow[r] * alpha[r] + av_hsum(lsum);
    }

    for (size_t r0 = 0; r0 < n_lanes; r0 += 4) {
      const float *pg = sc + r0 * ss;
      float *og = os + r0 * hdv;
      switch (av_min(4, n_lanes - r0)) {
        case 1:
          av_rows_pv_lanes(F16, 1, hdf, nb, pg, ss, vb_rows, t->v_stride, alpha + r0, og, hdv);
          break;
        case 2:
          av_rows_pv_lanes(F16, 2, hdf, nb, pg, ss, vb_rows, t->v_stride, alpha + r0, og, hdv);
          break;
        case 3:
          av_rows_pv_lanes(F16, 3, hdf, nb, pg, ss, vb_rows, t->v_stride, alpha + r0, og, hdv);
          break;
        default:
          av_rows_pv_lanes(F16, 4, hdf, nb, pg, ss, vb_rows, t->v_stride, alpha + r0, og, hdv);
          break;
      }
    }
    for (size_t r = 0; r < n_lanes; r++) {
      float *orow = os + r * hdv;
      const float *sr = sc + r * ss;
      for (size_t c = hdf; c < hd; c++) {
        float acc = orow[c] * alpha[r];
        for (size_t j = 0; j < nb; j++) acc += sr[j] * av_kv_at(F16, vb_rows, j * t->v_stride + c);
        orow[c] = acc;
      }
    }
  }

  if (!t->last) return;
  for (size_t r = 0; r < n_lanes; r++) {
    const size_t g = r / nq, i = r % nq;
    float *op = t->o + i * t->o_stride + g * hd;
    const float inv = 1.0f / lrow[r];
    for (size_t c = 0; c < hd; c++) op[c] = os[r * hdv + c] * inv;
  }
}

/* f16 K/V rows read in place: always the row path (see attention.h). */
void AV_UKERNEL_F16(const struct spr_f32_attn_task *t, float *scratch) {
  av_rows(1, t, scratch);
}

void AV_UKERNEL(const struct spr_f32_attn_task *t, float *scratch) {
  const size_t n_lanes = t->ng * t->nq;
  if (n_lanes <= AV_ROW_MAX_LANES) {
    av_rows(0, t, scratch);
    return;
  }
  switch ((n_lanes + AV_VL - 1) / AV_VL) {
    case 1:
      av_lanes(1, t, scratch);
      break;
#if AV_MV >= 2
    case 2:
      av_lanes(2, t, scratch);
      break;
#endif
#if AV_MV >= 3
    case 3:
      av_lanes(3, t, scratch);
      break;
#endif
#if AV_MV >= 4
    case 4:
      av_lanes(4, t, scratch);
      break;
#endif
#if AV_MV >= 5
#error "AV_MV > 4 not instantiated"
#endif
    default:
      break;
  }
}
