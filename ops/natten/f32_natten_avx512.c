/* ops/natten/f32_natten_avx512.c — neighborhood attention ukernel, AVX-512
 * (VL): 8 query columns per tile in 256-bit vectors, using the 32 vector
 * registers for 3 rows x 7 band offsets score and 3 rows x 8 columns P.V
 * register tiles (the P.V ones only where the direct P.V below does not
 * apply). 8 lanes, not 16: the band of a tile widens at the borders
 * of a row by the lanes' window shifts, and rows of NAT maps (56, 28, 14, 7
 * columns) fill 8-lane tiles exactly; on cores that split 512-bit FMAs in
 * two (Zen 4) a 256-bit FMA costs half as much, so nothing is lost. */
#if !defined(__AVX512F__) || !defined(__AVX512VL__)
#error "this file needs -mavx512f -mavx512vl"
#endif

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

typedef __m256 av_v;
#define NA_VL 8
#define NA_QR 3
#define NA_NO 7
#define NA_PNO 7
#define NA_UKERNEL spr_f32_na_ukernel_8__avx512
#define AV_INLINE static inline __attribute__((always_inline))

static inline av_v av_zero(void) {
  return _mm256_setzero_ps();
}
static inline av_v av_set1(float x) {
  return _mm256_set1_ps(x);
}
static inline av_v av_load(const float *p) {
  return _mm256_loadu_ps(p);
}
static inline void av_store(float *p, av_v v) {
  _mm256_storeu_ps(p, v);
}
static inline av_v av_fma(av_v a, av_v b, av_v c) {
  return _mm256_fmadd_ps(a, b, c);
}
static inline av_v av_add(av_v a, av_v b) {
  return _mm256_add_ps(a, b);
}
static inline av_v av_mul(av_v a, av_v b) {
  return _mm256_mul_ps(a, b);
}
static inline av_v av_sub(av_v a, av_v b) {
  return _mm256_sub_ps(a, b);
}
static inline av_v av_max(av_v a, av_v b) {
  return _mm256_max_ps(a, b);
}
#define NA_HAVE_PERMUTE 1
typedef __m256i av_idx;
static inline av_idx av_idx_load(const int32_t *p) {
  return _mm256_loadu_si256((const __m256i *)(const void *)p);
}
static inline av_v av_permute(av_v v, av_idx i) {
  return _mm256_permutevar8x32_ps(v, i);
}
static inline av_v av_keep(av_v v) {
  __asm__("" : "+v"(v));
  return v;
}
/* 2^x, the polynomial of ops/attention/attention_exp_avx512.h on 8 lanes
 * (AVX-512VL roundscale / scalef): x = n + f, |f| <= 1/2, degree-5 for 2^f,
 * rel. error < 2e-7; x clamped at -152 so that -inf gives exactly 0. */
static inline av_v av_exp2(av_v x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-152.0f));
  const __m256 n = _mm256_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.326472731e-03f), f, _mm256_set1_ps(9.671512991e-03f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550733581e-02f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402224243e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931470037e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  return _mm256_scalef_ps(p, n);
}
static inline av_v av_mask_range(av_v s, float o, av_v lo, av_v hi) {
  const __m256 ov = _mm256_set1_ps(o);
  const __mmask8 hidden = _mm256_cmp_ps_mask(ov, lo, _CMP_LT_OQ) | _mm256_cmp_ps_mask(ov, hi, _CMP_GE_OQ);
  return _mm256_mask_mov_ps(s, hidden, _mm256_set1_ps(-INFINITY));
}
#include "ops/natten/natten_transpose_ymm.h"

/* Direct P.V (see natten_impl.h, NA_DIRECT_PV): head_dim in the lanes of
 * zmm accumulators (8 queries x up to 32 columns = 16 zmm), V rows from the
 * ring's untransposed copy (tokens packed), probabilities broadcast from S,
 * outputs stored straight to the output rows: no V transpose, no output
 * transpose. Every output element is the same FMA chain as in the ring path
 * (key rows, then band offsets, ascending), so the bits do not depend on the
 * path. */
#define NA_DIRECT_PV 1
#define NA_DPV_MAX_NB 8
#define NA_DPV_MAX_ROWS 64

/* Lanes l and l + 1 whose windows start delta (0 or 1) columns apart, at
 * V row vj: acc[l] += p[o][l] * V(o), acc[l + 1] += p[o][l + 1] * V(o +
 * delta), one V row load per column. */
static inline __attribute__((always_inline)) void na_dpv_pair(const size_t delta, const size_t nb, const size_t nc16,
                                                              size_t l, const float *pa, const float *vj, size_t vstep,
                                                              __m512 acc[8][2]) {
#pragma GCC unroll 9
  for (size_t j = 0; j < nb + delta; j++, vj += vstep) {
    __m512 v[2];
    for (size_t h = 0; h < nc16; h++) {
      v[h] = _mm512_loadu_ps(vj + 16 * h);
      __asm__("" : "+v"(v[h]));
    }
    if (j < nb) {
      const __m512 pv = _mm512_set1_ps(pa[j * 8 + l]);
      for (size_t h = 0; h < nc16; h++) acc[l][h] = _mm512_fmadd_ps(pv, v[h], acc[l][h]);
    }
    if (j >= delta) {
      const __m512 pv = _mm512_set1_ps(pa[(j - delta) * 8 + l + 1]);
      for (size_t h = 0; h < nc16; h++) acc[l + 1][h] = _mm512_fmadd_ps(pv, v[h], acc[l + 1][h]);
    }
  }
}

/* Lanes q0 .. q0 + 3 whose windows start e1, e2, e3 columns after lane
 * q0's (steps of 0 or 1), 2 zmm per lane, at V row vq: one V row load per
 * column serves every lane of the quad that sees it. */
static inline __attribute__((always_inline)) void na_dpv_quad(const size_t e1, const size_t e2, const size_t e3,
                                                              const size_t nb, size_t q0, const float *pa,
                                                              const float *vq, size_t vstep, __m512 acc[8][2]) {
  const size_t e[4] = {0, e1, e2, e3};
#pragma GCC unroll 11
  for (size_t j = 0; j < nb + e3; j++, vq += vstep) {
    __m512 v[2];
    for (size_t h = 0; h < 2; h++) {
      v[h] = _mm512_loadu_ps(vq + 16 * h);
      __asm__("" : "+v"(v[h]));
    }
#pragma GCC unroll 4
    for (size_t i = 0; i < 4; i++) {
      if (j < e[i] || j - e[i] >= nb) continue;
      const __m512 pv = _mm512_set1_ps(pa[(j - e[i]) * 8 + q0 + i]);
      for (size_t h = 0; h < 2; h++) acc[q0 + i][h] = _mm512_fmadd_ps(pv, v[h], acc[q0 + i][h]);
    }
  }
}

/* shared: lane l's key at offset o is column cs[0] + l + o (one V row load
 * serves every lane that sees it); else lane l's is cs[l] + o. nc16: 1 or 2
 * zmm per lane (16 or 32 columns from column cb). */
static inline __attribute__((always_inline)) void na_dpv_cols(const int shared, const size_t nb, const size_t nc16,
                                                              const float *ps, size_t a_stride,
                                                              const float *const *vkey, size_t nkr, const int32_t *cs,
                                                              size_t vstep, size_t cb, float *const *orows,
                                                              const float *inv) {
  __m512 acc[8][2];
  for (int l = 0; l < 8; l++)
    for (size_t h = 0; h < nc16; h++) acc[l][h] = _mm512_setzero_ps();
  for (size_t a = 0; a < nkr; a++) {
    const float *pa = ps + a * a_stride;
    const float *vb = vkey[a] + cb;
    if (shared) {
      const float *vj = vb + (size_t)cs[0] * vstep;
#pragma GCC unroll 16
      for (size_t j = 0; j < nb + 7; j++, vj += vstep) {
        __m512 v[2];
        for (size_t h = 0; h < nc16; h++) {
          v[h] = _mm512_loadu_ps(vj + 16 * h);
          __asm__("" : "+v"(v[h])); /* one load per V row, not one per FMA */
        }
#pragma GCC unroll 8
        for (size_t l = 0; l < 8; l++) {
          if (l > j || j - l >= nb) continue;
          const __m512 pv = _mm512_set1_ps(pa[(j - l) * 8 + l]);
          for (size_t h = 0; h < nc16; h++) acc[l][h] = _mm512_fmadd_ps(pv, v[h], acc[l][h]);
        }
      }
    } else {
      /* lane pairs: the window of lane l + 1 starts 0 or 1 column after
       * lane l's (stride 1), so one V row load serves both; K = 7 (NAT)
       * with 32-column blocks: lane quads, one load for four lanes */
      size_t l_pairs = 0;
      if (nb == 7 && nc16 == 2) {
        for (size_t q0 = 0; q0 < 8; q0 += 4) {
          const int32_t e1 = cs[q0 + 1] - cs[q0], e2 = cs[q0 + 2] - cs[q0], e3 = cs[q0 + 3] - cs[q0];
          const int32_t d1 = e1, d2 = e2 - e1, d3 = e3 - e2;
          if ((d1 | d2 | d3) & ~1) break; /* the rest in pairs */
          const float *vq = vb + (size_t)cs[q0] * vstep;
          switch (d1 * 4 + d2 * 2 + d3) {
#define NA_QUAD(p)                                                                                               \
  case p:                                                                                                        \
    na_dpv_quad((p) >> 2, ((p) >> 2) + (((p) >> 1) & 1), ((p) >> 2) + (((p) >> 1) & 1) + ((p)&1), 7, q0, pa, vq, \
                vstep, acc);                                                                                     \
    break;
            NA_QUAD(0)
            NA_QUAD(1)
            NA_QUAD(2)
            NA_QUAD(3)
            NA_QUAD(4)
            NA_QUAD(5)
            NA_QUAD(6)
            NA_QUAD(7)
#undef NA_QUAD
            default:
              break;
          }
          l_pairs = q0 + 4;
        }
      }
#pragma GCC unroll 4
      for (size_t l = l_pairs; l < 8; l += 2) {
        const int32_t delta = cs[l + 1] - cs[l];
        const float *vj = vb + (size_t)cs[l] * vstep;
        if (delta == 0) {
          na_dpv_pair(0, nb, nc16, l, pa, vj, vstep, acc);
        } else if (delta == 1) {
          na_dpv_pair(1, nb, nc16, l, pa, vj, vstep, acc);
        } else {
          for (size_t i = l; i < l + 2; i++) {
            const float *vr = vb + (size_t)cs[i] * vstep;
            for (size_t o = 0; o < nb; o++, vr += vstep) {
              const __m512 pv = _mm512_set1_ps(pa[o * 8 + i]);
              for (size_t h = 0; h < nc16; h++)
                acc[i][h] = _mm512_fmadd_ps(pv, _mm512_loadu_ps(vr + 16 * h), acc[i][h]);
            }
          }
        }
      }
    }
  }
  for (int l = 0; l < 8; l++) {
    if (orows[l] == NULL) continue;
    const __m512 s = _mm512_set1_ps(inv[l]);
    for (size_t h = 0; h < nc16; h++) _mm512_storeu_ps(orows[l] + cb + 16 * h, _mm512_mul_ps(acc[l][h], s));
  }
}

static inline __attribute__((always_inline)) void na_dpv_nb(const int shared, const size_t nb, const float *ps,
                                                            size_t a_stride, const float *const *vkey, size_t nkr,
                                                            const int32_t *cs, size_t vstep, size_t hd,
                                                            float *const *orows, const float *inv) {
  size_t cb = 0;
  for (; cb + 32 <= hd; cb += 32) na_dpv_cols(shared, nb, 2, ps, a_stride, vkey, nkr, cs, vstep, cb, orows, inv);
  if (cb < hd) na_dpv_cols(shared, nb, 1, ps, a_stride, vkey, nkr, cs, vstep, cb, orows, inv);
}

/* P.V and the normalized output of one query row of a tile (hd % 16 == 0,
 * 1 <= nb <= NA_DPV_MAX_NB, nkr <= NA_DPV_MAX_ROWS): p[a][o][l] =
 * ps[a * a_stride + o * 8 + l]; V of key row a at column x is
 * vkey[a] + x * vstep; orows[l] NULL for lanes without a query; lsum[l]
 * the lane's sum of probabilities (the outputs are multiplied by 1 / lsum,
 * one vector division: the same bits as 8 scalar ones). */
static void na_direct_pv(int shared, size_t nb, const float *ps, size_t a_stride, const float *const *vkey, size_t nkr,
                         const int32_t *cs, size_t vstep, size_t hd, float *const *orows, const float *lsum) {
  float inv[8];
  _mm256_storeu_ps(inv, _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_loadu_ps(lsum)));
#define NA_DPV_CASE(k)                                                     \
  case k:                                                                  \
    if (shared)                                                            \
      na_dpv_nb(1, k, ps, a_stride, vkey, nkr, cs, vstep, hd, orows, inv); \
    else                                                                   \
      na_dpv_nb(0, k, ps, a_stride, vkey, nkr, cs, vstep, hd, orows, inv); \
    break;
  switch (nb) {
    NA_DPV_CASE(1)
    NA_DPV_CASE(2)
    NA_DPV_CASE(3)
    NA_DPV_CASE(4)
    NA_DPV_CASE(5)
    NA_DPV_CASE(6)
    NA_DPV_CASE(7)
    NA_DPV_CASE(8)
    default:
      break;
  }
#undef NA_DPV_CASE
}

#include "ops/natten/natten_impl.h"
