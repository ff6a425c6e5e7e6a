/* ops/coreffn/rqt_q4_avx512_impl.h — the Q4_0 rule of the rqt ukernels
 * (coreffn.h) with AVX-512 F + BW, shared by rqt_avx512.c (transposed Q8_0
 * rows) and rqtp_avx512vnni.c (packed panels): one group's scales, and the
 * codes of four rows at a time with the rows in the 128-bit lanes, each
 * lane looking its row's 16 codes up in the row's own table (vpshufb works
 * per lane, so four tables ride in one register). */
#ifndef SPR_OPS_COREFFN_RQT_Q4_AVX512_IMPL_H
#define SPR_OPS_COREFFN_RQT_Q4_AVX512_IMPL_H

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The 32 rows' scales of the block at w (row kk at w + kk * ldw): f[kk] =
 * dk * r and *dh = fp16(8 dmax / 127); false if the group is zero (dmax 0 or
 * a scale not finite). */
static inline bool rqt_q4_group(const uint8_t *w, size_t ldw, float f[32], uint16_t *dh) {
  uint16_t h[32];
  for (size_t kk = 0; kk < 32; kk++) memcpy(&h[kk], w + kk * ldw, sizeof h[kk]);
  const __m512i hb = _mm512_loadu_si512(h), e = _mm512_set1_epi16(0x7C00);
  if (_mm512_cmpeq_epi16_mask(_mm512_and_si512(hb, e), e) != 0) return false;
  const __m512 d0 = _mm512_cvtph_ps(_mm512_castsi512_si256(hb)), d1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(hb, 1));
  const float dmax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(d0), _mm512_abs_ps(d1)));
  if (dmax == 0.0f) return false;
  const float r = 127.0f / (8.0f * dmax);
  *dh = _cvtss_sh(8.0f * dmax / 127.0f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm512_storeu_ps(f, _mm512_mul_ps(d0, _mm512_set1_ps(r)));
  _mm512_storeu_ps(f + 16, _mm512_mul_ps(d1, _mm512_set1_ps(r)));
  return true;
}

/* dword i of lane L <-> dword L of lane i */
static inline __m512i rqt_q4_xpose4(__m512i v) {
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), v);
}

/* Rows 0..3 at w (ldw apart, each at its block's code bytes), their factors
 * f[0..3]: lane r of *lo = row r's codes of columns 0..15, of *hi columns 16..31. */
static inline void rqt_q4_codes4(const uint8_t *w, size_t ldw, const float *f, __m512i *lo, __m512i *hi) {
  const __m512 k = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  __m512i t[4];
  for (int i = 0; i < 4; i++) /* RNE, as the scalar rule (|.| <= 127: exact in any int type) */
    t[i] =
        _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_set1_ps(f[i]), k), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  /* lane L of the packs: [t0 t1 t2 t3] entries 4L..4L+3; transposed: lane r = table r */
  const __m512i tab = rqt_q4_xpose4(_mm512_packs_epi16(_mm512_packs_epi32(t[0], t[1]), _mm512_packs_epi32(t[2], t[3])));
  __m512i b = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)w));
  b = _mm512_inserti32x4(b, _mm_loadu_si128((const __m128i *)(const void *)(w + ldw)), 1);
  b = _mm512_inserti32x4(b, _mm_loadu_si128((const __m128i *)(const void *)(w + 2 * ldw)), 2);
  b = _mm512_inserti32x4(b, _mm_loadu_si128((const __m128i *)(const void *)(w + 3 * ldw)), 3);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  *lo = _mm512_shuffle_epi8(tab, _mm512_and_si512(b, m4));
  *hi = _mm512_shuffle_epi8(tab, _mm512_and_si512(_mm512_srli_epi16(b, 4), m4));
}

#endif
