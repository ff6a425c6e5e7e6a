/* ops/coreffn/axpyq_avx512vnni.c — the Q4_0 axpy over neurons with int8
 * neuron coefficients (rule in coreffn.h, spr_axpyq) on AVX-512 VNNI.
 *
 * A tile is 4 output blocks, one per 128-bit lane. Per group of 32 neurons:
 * the 32 x 4 products a[i] * d are quantized (one scale per block); then
 * 4 neurons at a time, the code bytes of 4 rows (4 blocks each, one per
 * lane) are split into nibbles and interleaved with unpack{lo,hi}_epi{8,16}
 * so that dword j of a lane holds the 4 neurons' codes of output j; one
 * vpdpbusd per 4 outputs per lane adds code (u8) x coefficient (s8) for the 4
 * neurons into int32. At the end of the group, 8 x sum(c) is subtracted and
 * y += S * sum (fma). Dword t of accumulator m is output 4m + t of the
 * lane's block. Lanes past the last block read block 0 with zero scales. */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error "this file needs -mavx512f -mavx512vnni"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"

enum { G = SPR_AXPYQ_GROUP };

static inline const uint8_t *row_at(const uint8_t *w, size_t ldw, const int32_t *idx, size_t i) {
  return w + (idx != NULL ? (size_t)idx[i] : i) * ldw;
}

static inline __m512i lanes4(const uint8_t *p, const size_t *boff) {
  __m512i r = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(p + boff[0])));
  r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(const void *)(p + boff[1])), 1);
  r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(const void *)(p + boff[2])), 2);
  return _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(const void *)(p + boff[3])), 3);
}

/* acc[0..3] += the 4 rows' codes v[0..3] (one byte per output) times cv */
static inline void dot4(__m512i *acc, const __m512i *v, __m512i cv) {
  const __m512i t0 = _mm512_unpacklo_epi8(v[0], v[1]), t1 = _mm512_unpackhi_epi8(v[0], v[1]);
  const __m512i t2 = _mm512_unpacklo_epi8(v[2], v[3]), t3 = _mm512_unpackhi_epi8(v[2], v[3]);
  acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_unpacklo_epi16(t0, t2), cv);
  acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_unpackhi_epi16(t0, t2), cv);
  acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_unpacklo_epi16(t1, t3), cv);
  acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_unpackhi_epi16(t1, t3), cv);
}

void spr_q4_0_axpyq_ukernel_128__avx512vnni(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                            size_t ne, float *y) {
  const uint8_t *wb = w;
  const size_t nb = ne / 32;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (size_t b0 = 0; b0 < nb; b0 += 4) {
    const size_t nbt = nb - b0 < 4 ? nb - b0 : 4;
    const uint8_t *seg = wb + b0 * 18;
    size_t boff[4];
    for (size_t k = 0; k < 4; k++) boff[k] = (k < nbt ? k : 0) * 18;
    __m512 fy[8];
    for (int m = 0; m < 8; m++) fy[m] = _mm512_setzero_ps();
    for (size_t g0 = 0; g0 < n; g0 += G) {
      const size_t gn = n - g0 < G ? n - g0 : G;
      const uint8_t *rows[G];
      float av[G];
      uint16_t h[4][G];
      for (size_t i = 0; g0 + G + i < n && i < G; i++) { /* the next group's segments into L2 */
        const char *p = (const char *)row_at(seg, ldw, idx, g0 + G + i);
        _mm_prefetch(p, _MM_HINT_T1);
        _mm_prefetch(p + 4 * 18 - 1, _MM_HINT_T1);
      }
      for (size_t i = 0; i < G; i++) {
        rows[i] = i < gn ? row_at(seg, ldw, idx, g0 + i) : rows[0];
        av[i] = i < gn ? a[g0 + i] : 0.0f;
        for (size_t k = 0; k < 4; k++) {
          if (k < nbt)
            memcpy(&h[k][i], rows[i] + boff[k], sizeof(uint16_t));
          else
            h[k][i] = 0;
        }
      }
      uint32_t cw[G / 4][4];
      float sv[4];
      int32_t corr[4];
      for (size_t k = 0; k < 4; k++) {
        const __m512 p0 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h[k])),
                                        _mm512_loadu_ps(av));
        const __m512 p1 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h[k] + 16))),
                                        _mm512_loadu_ps(av + 16));
        const float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(p0), _mm512_abs_ps(p1)));
        const float s = m > 0.0f ? m / 127.0f : 0.0f, inv = m > 0.0f ? 127.0f / m : 0.0f;
        const __m512i c0 = _mm512_cvtps_epi32(_mm512_mul_ps(p0, _mm512_set1_ps(inv)));
        const __m512i c1 = _mm512_cvtps_epi32(_mm512_mul_ps(p1, _mm512_set1_ps(inv)));
        corr[k] = 8 * _mm512_reduce_add_epi32(_mm512_add_epi32(c0, c1));
        uint32_t t[G / 4];
        _mm_storeu_si128((__m128i *)(void *)t, _mm512_cvtepi32_epi8(c0));
        _mm_storeu_si128((__m128i *)(void *)(t + 4), _mm512_cvtepi32_epi8(c1));
        for (size_t q = 0; q < G / 4; q++) cw[q][k] = t[q];
        sv[k] = s;
      }
      __m512i acc[8];
      for (int m = 0; m < 8; m++) acc[m] = _mm512_setzero_si512();
      for (size_t q = 0; q < (gn + 3) / 4; q++) {
        const __m512i cv =
            _mm512_permutexvar_epi32(lane, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(void *)cw[q])));
        __m512i lo[4], hi[4];
        for (int r = 0; r < 4; r++) {
          const __m512i v = lanes4(rows[4 * q + (size_t)r] + 2, boff);
          lo[r] = _mm512_and_si512(v, m4);
          hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        dot4(acc, lo, cv);
        dot4(acc + 4, hi, cv);
      }
      const __m512i vc =
          _mm512_permutexvar_epi32(lane, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(void *)corr)));
      const __m512 vs = _mm512_permutexvar_ps(lane, _mm512_castps128_ps512(_mm_loadu_ps(sv)));
      for (int m = 0; m < 8; m++) fy[m] = _mm512_fmadd_ps(vs, _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[m], vc)), fy[m]);
    }
    float buf[8][16];
    for (int m = 0; m < 8; m++) _mm512_storeu_ps(buf[m], fy[m]);
    for (size_t k = 0; k < nbt; k++)
      for (size_t m = 0; m < 8; m++)
        for (size_t t = 0; t < 4; t++) y[32 * (b0 + k) + 4 * m + t] = buf[m][4 * k + t];
  }
}
