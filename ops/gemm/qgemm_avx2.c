/* ops/gemm/qgemm_avx2.c — AVX2 quantized GEMM ukernels (contracts in qgemm.h).
 *
 * Tiles: up to 2 activation rows x 2 weight rows (decode, mr = 1, walks the
 * weight rows one after the other: one sequential stream). One weight block
 * per ymm; vpmaddubsw multiplies unsigned by signed bytes into int16 pairs
 * (no saturation: |pair| <= 2 * 128 * 127 < 2^15), vpmaddwd sums them (or
 * scales them by the K-quant sub-block scales) into int32:
 *   Q4_0: raw nibbles 0..15 against x, then - 8 * sum(x) (from the packed row)
 *   Q8_0: |w| against x * sign(w) (vpsignb; |-128| = 128 as unsigned)
 *   Q4_K: nibbles against x, madd by the 6-bit scales; mins from the bsums
 *   Q6_K: 6-bit codes 0..63 against x, madd by the scales; -32 * sum sc*bsum
 * Activations use the plain layouts, quantized with the reference's values
 * (vectorized: the same IEEE operations; degenerate blocks take the scalar
 * reference). */
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "this file needs -mavx2 -mfma -mf16c"
#endif

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/gemm/qgemm.h"

#define INLINE static inline __attribute__((always_inline))
#define PF_AHEAD 4096

INLINE void prefetch_w(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)((uintptr_t)p + PF_AHEAD + off), _MM_HINT_T0);
}

INLINE float half_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

INLINE float hsum_ps(__m256 v) {
  const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(b, _mm_movehdup_ps(b)));
}

INLINE int hsum_epi32(__m256i v) {
  const __m128i a = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(b, _mm_shuffle_epi32(b, 0xB1)));
}

/* ---- activation quantizers (the reference's values) ----------------------------------- */

/* roundf for finite |v| < 2^23: truncate, then away from zero on a fraction >= 0.5 */
INLINE __m256i roundf_epi32(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
  const __m256 frac = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)), _mm256_sub_ps(v, t));
  const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_or_ps(up, sign)));
}

/* 4 x 8 int32 (each in [-128, 127]) -> 32 int8 in order */
INLINE __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i v = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static void x8_0_block_avx2(const float *x, int8_t *qs, float *d, int32_t *s) {
  __m256 v[4], m = _mm256_setzero_ps();
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int t = 0; t < 4; t++) {
    v[t] = _mm256_loadu_ps(x + 8 * t);
    m = _mm256_max_ps(m, _mm256_and_ps(v[t], absmask));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
  const float dd = amax / 127;
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  int nan = 0;
  for (int t = 0; t < 4; t++) nan |= _mm256_movemask_ps(_mm256_cmp_ps(v[t], v[t], _CMP_UNORD_Q));
  if (nan || !(amax < INFINITY) || !(id < INFINITY)) { /* NaN / Inf / 1/d overflow: the reference */
    spr_x8_0_quantize_block(x, qs, d, s);
    return;
  }
  const __m256 vid = _mm256_set1_ps(id);
  __m256i q[4];
  for (int t = 0; t < 4; t++) q[t] = roundf_epi32(_mm256_mul_ps(v[t], vid));
  _mm256_storeu_si256((__m256i *)qs, pack_i8(q[0], q[1], q[2], q[3]));
  *d = spr_fp16_to_f32(spr_fp16_from_f32(dd));
  *s = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

void spr_x8_0_packx_plain__avx2(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  int8_t *qs = xq;
  float *d = (float *)spr_x8_0_plain_d(xq, kb);
  int32_t *s = (int32_t *)spr_x8_0_plain_s(xq, kb);
  for (size_t b = b0; b < b1; b++) x8_0_block_avx2(x + 32 * b, qs + 32 * b, &d[b], &s[b]);
}

static void x8_k_block_avx2(const float *x, int8_t *qs, float *d, int16_t *bsums) {
  __m256 v[32], m = _mm256_setzero_ps();
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  int nan = 0;
  for (int t = 0; t < 32; t++) {
    v[t] = _mm256_loadu_ps(x + 8 * t);
    nan |= _mm256_movemask_ps(_mm256_cmp_ps(v[t], v[t], _CMP_UNORD_Q));
    m = _mm256_max_ps(m, _mm256_and_ps(v[t], absmask));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
  float max = 0.0f;
  for (int j = 0; j < 256; j++) /* the first value of largest magnitude */
    if (fabsf(x[j]) == amax) {
      max = x[j];
      break;
    }
  const float iscale = amax != 0.0f ? -127.f / max : 0.0f;
  if (nan || amax == 0.0f || !(amax < INFINITY) || !(fabsf(iscale) < INFINITY)) {
    struct spr_block_q8_k blk;
    spr_quantize_row_q8_k_ref(x, &blk, 256);
    memcpy(qs, blk.qs, 256);
    *d = blk.d;
    memcpy(bsums, blk.bsums, sizeof blk.bsums);
    return;
  }
  const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.f);
  const __m256i lo = _mm256_set1_epi32(0x007fffff), off = _mm256_set1_epi32(0x00400000);
  for (int g = 0; g < 8; g++) {
    __m256i q[4];
    for (int t = 0; t < 4; t++) {
      const __m256i bits = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(vs, v[4 * g + t]), magic));
      q[t] = _mm256_min_epi32(_mm256_sub_epi32(_mm256_and_si256(bits, lo), off), _mm256_set1_epi32(127));
    }
    _mm256_storeu_si256((__m256i *)(qs + 32 * g), pack_i8(q[0], q[1], q[2], q[3]));
    bsums[2 * g] = (int16_t)hsum_epi32(_mm256_add_epi32(q[0], q[1]));
    bsums[2 * g + 1] = (int16_t)hsum_epi32(_mm256_add_epi32(q[2], q[3]));
  }
  *d = 1 / iscale;
}

void spr_x8_k_packx_plain__avx2(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  int8_t *qs = xq;
  float *d = (float *)spr_x8_k_plain_d(xq, kb);
  int16_t *bs = (int16_t *)spr_x8_k_plain_bsums(xq, kb);
  for (size_t b = b0; b < b1; b++) x8_k_block_avx2(x + 256 * b, qs + 256 * b, &d[b], bs + 16 * b);
}

/* ---- tiles ---------------------------------------------------------------------------- */

/* Decode walks weight rows one by one (NA = 2 accumulators per output break
 * the FMA chain); tiles of rows share each unpacked weight block. */
#define DEFINE_UKERNEL(name, tile)                                                                                     \
  void name(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq, size_t ldx, const float *bias, \
            float *c, size_t ldc) {                                                                                    \
    const uint8_t *wb = w, *xb = xq;                                                                                   \
    if (mr == 1) {                                                                                                     \
      for (size_t j = 0; j < nr; j++)                                                                                  \
        tile(1, 1, 2, kb, 1, wb + j * ldw, ldw, xb, ldx, bias != NULL ? bias + j : NULL, c + j, ldc);                  \
    } else {                                                                                                           \
      tile(2, 2, 1, kb, nr, wb, ldw, xb, ldx, bias, c, ldc);                                                           \
    }                                                                                                                  \
  }

INLINE void store_tile(int mr, size_t nr, int na, __m256 acc[2][2][2], const float *extra, const float *bias, float *c,
                       size_t ldc) {
  for (int i = 0; i < mr; i++)
    for (size_t j = 0; j < nr; j++) {
      const __m256 a = na > 1 ? _mm256_add_ps(acc[i][j][0], acc[i][j][1]) : acc[i][j][0];
      c[i * ldc + j] = (hsum_ps(a) - (extra != NULL ? extra[2 * i + j] : 0.0f)) + (bias != NULL ? bias[j] : 0.0f);
    }
}

#define ZERO_ACC(acc)            \
  for (int i_ = 0; i_ < 2; i_++) \
    for (int j_ = 0; j_ < 2; j_++) acc[i_][j_][0] = acc[i_][j_][1] = _mm256_setzero_ps();

INLINE void q4_0_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[2][2][2];
  ZERO_ACC(acc)
  for (size_t b = 0; b < kb; b++) {
    __m256i q[2];
    float dw[2];
    for (int j = 0; j < NJ; j++) {
      const uint8_t *blk = wr[j] + 18 * b;
      prefetch_w(blk, 18);
      const __m128i r = _mm_loadu_si128((const __m128i *)(blk + 2));
      q[j] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(r, 4), r), m4);
      dw[j] = half_at(blk);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const __m256i xv = _mm256_load_si256((const __m256i *)(xr + 32 * b));
      const float dx = spr_x8_0_plain_d(xr, kb)[b];
      const __m256i sx = _mm256_set1_epi32(spr_x8_0_plain_s(xr, kb)[b]);
      for (int j = 0; j < NJ; j++) {
        const __m256i p = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(q[j], xv), ones), sx);
        const int a = NA > 1 ? (int)(b & 1) : 0;
        acc[i][j][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[j] * dx), acc[i][j][a]);
      }
    }
  }
  store_tile(MR, NJ < (int)nr ? (size_t)NJ : nr, NA, acc, NULL, bias, c, ldc);
}

DEFINE_UKERNEL(spr_q4_0_gemm_ukernel_2x2__avx2, q4_0_tile)

INLINE void q8_0_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[2][2][2];
  ZERO_ACC(acc)
  for (size_t b = 0; b < kb; b++) {
    __m256i q[2], aq[2];
    float dw[2];
    for (int j = 0; j < NJ; j++) {
      const uint8_t *blk = wr[j] + 34 * b;
      prefetch_w(blk, 34);
      q[j] = _mm256_loadu_si256((const __m256i *)(blk + 2));
      aq[j] = _mm256_sign_epi8(q[j], q[j]);
      dw[j] = half_at(blk);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const __m256i xv = _mm256_load_si256((const __m256i *)(xr + 32 * b));
      const float dx = spr_x8_0_plain_d(xr, kb)[b];
      for (int j = 0; j < NJ; j++) {
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq[j], _mm256_sign_epi8(xv, q[j])), ones);
        const int a = NA > 1 ? (int)(b & 1) : 0;
        acc[i][j][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[j] * dx), acc[i][j][a]);
      }
    }
  }
  store_tile(MR, NJ < (int)nr ? (size_t)NJ : nr, NA, acc, NULL, bias, c, ldc);
}

DEFINE_UKERNEL(spr_q8_0_gemm_ukernel_2x2__avx2, q8_0_tile)

INLINE void q4_k_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  (void)NA;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[2][2][2];
  ZERO_ACC(acc)
  float mins[4] = {0, 0, 0, 0}; /* [i][j]: sum over blocks of dmin * dx * sum_s m_s bsum_s */
  for (size_t b = 0; b < kb; b++) {
    __m256i lo[2][4], hi[2][4], sc[2][8];
    uint8_t mn[2][8];
    float dw[2], dmw[2];
    for (int j = 0; j < NJ; j++) {
      const uint8_t *blk = wr[j] + 144 * b;
      prefetch_w(blk, 144);
      for (int cc = 0; cc < 4; cc++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * cc));
        lo[j][cc] = _mm256_and_si256(q, m4);
        hi[j][cc] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      }
      for (int s = 0; s < 8; s++) {
        uint8_t scv;
        spr_q4_k_scale_min(s, blk + 4, &scv, &mn[j][s]);
        sc[j][s] = _mm256_set1_epi16(scv);
      }
      dw[j] = half_at(blk);
      dmw[j] = half_at(blk + 2);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const int8_t *xb = (const int8_t *)xr + 256 * b;
      const int16_t *bs = spr_x8_k_plain_bsums(xr, kb) + 16 * b;
      const float dx = spr_x8_k_plain_d(xr, kb)[b];
      __m256i xv[8];
      for (int v = 0; v < 8; v++) xv[v] = _mm256_load_si256((const __m256i *)(xb + 32 * v));
      for (int j = 0; j < NJ; j++) {
        __m256i t0 = _mm256_setzero_si256(), t1 = _mm256_setzero_si256();
        for (int cc = 0; cc < 4; cc++) {
          t0 = _mm256_add_epi32(t0, _mm256_madd_epi16(_mm256_maddubs_epi16(lo[j][cc], xv[2 * cc]), sc[j][2 * cc]));
          t1 = _mm256_add_epi32(t1,
                                _mm256_madd_epi16(_mm256_maddubs_epi16(hi[j][cc], xv[2 * cc + 1]), sc[j][2 * cc + 1]));
        }
        acc[i][j][0] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(t0, t1)), _mm256_set1_ps(dw[j] * dx), acc[i][j][0]);
        int32_t ms = 0;
        for (int s = 0; s < 8; s++) ms += mn[j][s] * (bs[2 * s] + bs[2 * s + 1]);
        mins[2 * i + j] += (dmw[j] * dx) * (float)ms;
      }
    }
  }
  store_tile(MR, NJ < (int)nr ? (size_t)NJ : nr, 1, acc, mins, bias, c, ldc);
}

DEFINE_UKERNEL(spr_q4_k_gemm_ukernel_2x2__avx2, q4_k_tile)

INLINE void q6_k_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  (void)NA;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[2][2][2];
  ZERO_ACC(acc)
  for (size_t b = 0; b < kb; b++) {
    __m256i q[2][8], sc[2][8], sc16[2];
    float dw[2];
    for (int j = 0; j < NJ; j++) {
      const uint8_t *blk = wr[j] + 210 * b;
      prefetch_w(blk, 210);
      for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
        q[j][4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        q[j][4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        q[j][4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
        q[j][4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
      }
      const int8_t *scp = (const int8_t *)(blk + 192);
      for (int v = 0; v < 8; v++) /* 32 values = two scales, one per 128-bit half of the madd */
        sc[j][v] = _mm256_set_m128i(_mm_set1_epi16(scp[2 * v + 1]), _mm_set1_epi16(scp[2 * v]));
      sc16[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)scp));
      dw[j] = half_at(blk + 208);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const int8_t *xb = (const int8_t *)xr + 256 * b;
      const __m256i bs = _mm256_loadu_si256((const __m256i *)(spr_x8_k_plain_bsums(xr, kb) + 16 * b));
      const float dx = spr_x8_k_plain_d(xr, kb)[b];
      for (int j = 0; j < NJ; j++) {
        /* -32 * sum_g sc_g bsum_g */
        __m256i t0 = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16[j]), 5));
        __m256i t1 = _mm256_setzero_si256();
        for (int v = 0; v < 8; v += 2) {
          const __m256i x0 = _mm256_load_si256((const __m256i *)(xb + 32 * v));
          const __m256i x1 = _mm256_load_si256((const __m256i *)(xb + 32 * v + 32));
          t0 = _mm256_add_epi32(t0, _mm256_madd_epi16(_mm256_maddubs_epi16(q[j][v], x0), sc[j][v]));
          t1 = _mm256_add_epi32(t1, _mm256_madd_epi16(_mm256_maddubs_epi16(q[j][v + 1], x1), sc[j][v + 1]));
        }
        acc[i][j][0] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(t0, t1)), _mm256_set1_ps(dw[j] * dx), acc[i][j][0]);
      }
    }
  }
  store_tile(MR, NJ < (int)nr ? (size_t)NJ : nr, 1, acc, NULL, bias, c, ldc);
}

DEFINE_UKERNEL(spr_q6_k_gemm_ukernel_2x2__avx2, q6_k_tile)
