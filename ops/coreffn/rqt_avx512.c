/* ops/coreffn/rqt_avx512.c — transposing requantizers with AVX-512 (contract
 * in coreffn.h). Q8_0: 16 columns of 32 rows at a time; the values, scales
 * and codes are computed with the scalar entry's operations in the same
 * order (multiply, divide, add, truncate: no fused steps), so the bytes are
 * equal. Q4_0: the codes of four rows at a time by table lookups
 * (rqt_q4_avx512_impl.h). Either way 32 x 16 codes are transposed by four
 * rounds of unpacks per 16 rows. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"
#include "ops/coreffn/rqt_q4_avx512_impl.h"

static inline __m512 scale_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _mm512_set1_ps(_cvtsh_ss(h));
}

/* rows r[0..16) of 16 bytes -> column j's 16 bytes at out + j * ldq */
static inline void transpose16(const __m128i *r, uint8_t *out, size_t ldq) {
  __m128i s1[8][2], s2[4][2][2], s3[2][2][2][2];
  for (int p = 0; p < 8; p++) {
    s1[p][0] = _mm_unpacklo_epi8(r[2 * p], r[2 * p + 1]);
    s1[p][1] = _mm_unpackhi_epi8(r[2 * p], r[2 * p + 1]);
  }
  for (int q = 0; q < 4; q++)
    for (int g = 0; g < 2; g++) {
      s2[q][g][0] = _mm_unpacklo_epi16(s1[2 * q][g], s1[2 * q + 1][g]);
      s2[q][g][1] = _mm_unpackhi_epi16(s1[2 * q][g], s1[2 * q + 1][g]);
    }
  for (int u = 0; u < 2; u++)
    for (int g = 0; g < 2; g++)
      for (int h = 0; h < 2; h++) {
        s3[u][g][h][0] = _mm_unpacklo_epi32(s2[2 * u][g][h], s2[2 * u + 1][g][h]);
        s3[u][g][h][1] = _mm_unpackhi_epi32(s2[2 * u][g][h], s2[2 * u + 1][g][h]);
      }
  for (int g = 0; g < 2; g++)
    for (int h = 0; h < 2; h++)
      for (int i = 0; i < 2; i++) {
        const size_t j = (size_t)(8 * g + 4 * h + 2 * i);
        _mm_storeu_si128((__m128i *)(void *)(out + j * ldq), _mm_unpacklo_epi64(s3[0][g][h][i], s3[1][g][h][i]));
        _mm_storeu_si128((__m128i *)(void *)(out + (j + 1) * ldq), _mm_unpackhi_epi64(s3[0][g][h][i], s3[1][g][h][i]));
      }
}

/* v[kk] = 16 columns of row kk: the block scales and codes into wq's 16 blocks */
static inline void rqt16(const __m512 *v, uint8_t *wq, size_t ldq) {
  const __m512 sign = _mm512_set1_ps(-0.0f), half = _mm512_set1_ps(0.5f);
  __m512 amax = _mm512_setzero_ps();
  for (int kk = 0; kk < 32; kk++) amax = _mm512_max_ps(amax, _mm512_andnot_ps(sign, v[kk]));
  const __m512 d = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
  const __mmask16 nz = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ);
  const __m512 id = _mm512_maskz_div_ps(nz, _mm512_set1_ps(127.0f), amax);
  uint16_t dh[16];
  _mm256_storeu_si256((__m256i *)(void *)dh, _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (int j = 0; j < 16; j++) memcpy(wq + (size_t)j * ldq, &dh[j], 2);
  __m128i q[32];
  for (int kk = 0; kk < 32; kk++) {
    const __m512 s = _mm512_mul_ps(v[kk], id);
    const __m512 r = _mm512_add_ps(s, _mm512_or_ps(half, _mm512_and_ps(sign, s)));
    q[kk] = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r));
  }
  transpose16(q, wq + 2, ldq);
  transpose16(q + 16, wq + 18, ldq);
}

void spr_q4_0_rqt_ukernel__avx512f(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq) {
  for (size_t b = 0; b < nbw / 32; b++) {
    const uint8_t *blk = (const uint8_t *)w + 18 * b;
    uint8_t *out = (uint8_t *)wq + 32 * b * ldq;
    float f[32];
    uint16_t dh;
    if (!rqt_q4_group(blk, ldw, f, &dh)) {
      for (size_t j = 0; j < 32; j++) memset(out + j * ldq, 0, 34);
      continue;
    }
    for (size_t j = 0; j < 32; j++) memcpy(out + j * ldq, &dh, sizeof dh);
    uint8_t lo[32][16], hi[32][16]; /* codes: row kk, columns j (lo) and 16 + j (hi) */
    for (size_t q = 0; q < 8; q++) {
      __m512i l, h;
      rqt_q4_codes4(blk + 4 * q * ldw + 2, ldw, f + 4 * q, &l, &h);
      _mm512_storeu_si512(lo[4 * q], l);
      _mm512_storeu_si512(hi[4 * q], h);
    }
    __m128i r[32];
    for (int kk = 0; kk < 32; kk++) r[kk] = _mm_loadu_si128((const __m128i *)(const void *)lo[kk]);
    transpose16(r, out + 2, ldq);
    transpose16(r + 16, out + 18, ldq);
    for (int kk = 0; kk < 32; kk++) r[kk] = _mm_loadu_si128((const __m128i *)(const void *)hi[kk]);
    transpose16(r, out + 16 * ldq + 2, ldq);
    transpose16(r + 16, out + 16 * ldq + 18, ldq);
  }
}

void spr_q8_0_rqt_ukernel__avx512f(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq) {
  for (size_t b = 0; b < nbw / 32; b++) {
    __m512 lo[32], hi[32];
    for (size_t kk = 0; kk < 32; kk++) {
      const uint8_t *blk = (const uint8_t *)w + kk * ldw + 34 * b;
      const __m512 d = scale_at(blk);
      lo[kk] = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2)))), d);
      hi[kk] = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(blk + 18)))), d);
    }
    uint8_t *out = (uint8_t *)wq + 32 * b * ldq;
    rqt16(lo, out, ldq);
    rqt16(hi, out + 16 * ldq, ldq);
  }
}
