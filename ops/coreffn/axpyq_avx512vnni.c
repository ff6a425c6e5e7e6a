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

/* ---- the accumulating twin (the fused decode: one sub-block of neurons at a time) ----
 * y += the rule's group sums, continuing each element's fma chain from y:
 * called over consecutive groups from y = 0 it gives the bits of the
 * ukernel above over all of them. Groups outer, tiles inner: per group the
 * row pointers are computed once; per tile the 4 block scales of a row come
 * from one 64-byte load (words 0, 9, 18, 27) and are transposed with
 * vpermt2w, the coefficient quads are spread to the lanes with one vpermt2d
 * per quad, and y's 4 blocks are moved into and out of the lane layout by a
 * 4 x 4 transpose of 128-bit lanes. */

/* lanes: a[i].lane j <-> a[j].lane i */
static inline void transpose_lanes(__m512 v[4]) {
  const __m512 t0 = _mm512_shuffle_f32x4(v[0], v[1], 0x44), t1 = _mm512_shuffle_f32x4(v[0], v[1], 0xEE);
  const __m512 t2 = _mm512_shuffle_f32x4(v[2], v[3], 0x44), t3 = _mm512_shuffle_f32x4(v[2], v[3], 0xEE);
  v[0] = _mm512_shuffle_f32x4(t0, t2, 0x88);
  v[1] = _mm512_shuffle_f32x4(t0, t2, 0xDD);
  v[2] = _mm512_shuffle_f32x4(t1, t3, 0x88);
  v[3] = _mm512_shuffle_f32x4(t1, t3, 0xDD);
}

void spr_q4_0_axpyq_acc_ukernel_128__avx512vnni(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                                size_t ne, float *y, const int32_t *pf, size_t n_pf) {
  const size_t nb = ne / 32;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i sc_idx = _mm512_setr_epi64(0x001B001200090000ll, 0, 0, 0, 0, 0, 0, 0); /* words 0, 9, 18, 27 */
  __m512i tr_idx[4], q_idx[G / 4];
  for (int k = 0; k < 4; k++) { /* words 4i + k, i < 16 */
    int16_t t[32];
    for (int i = 0; i < 32; i++) t[i] = (int16_t)(i < 16 ? 4 * i + k : 0);
    tr_idx[k] = _mm512_loadu_si512(t);
  }
  __m512i code_idx;
  {
    int16_t t[32];
    for (int i = 0; i < 32; i++) t[i] = (int16_t)(9 * (i / 8) + 1 + i % 8);
    code_idx = _mm512_loadu_si512(t);
  }
  for (int q = 0; q < G / 4; q++) { /* dword 8k + q on lane k */
    int32_t t[16];
    for (int i = 0; i < 16; i++) t[i] = 8 * (i / 4) + q;
    q_idx[q] = _mm512_loadu_si512(t);
  }
  for (size_t g0 = 0; g0 < n; g0 += G) {
    const size_t gn = n - g0 < G ? n - g0 : G;
    const uint8_t *rows[G];
    float av[G];
    for (size_t i = 0; i < G; i++) {
      rows[i] = i < gn ? row_at(w, ldw, idx, g0 + i) : row_at(w, ldw, idx, g0);
      av[i] = i < gn ? a[g0 + i] : 0.0f;
    }
    const __m512 va0 = _mm512_loadu_ps(av), va1 = _mm512_loadu_ps(av + 16);
    for (size_t b0 = 0; b0 < nb; b0 += 4) {
      const size_t nbt = nb - b0 < 4 ? nb - b0 : 4;
      const size_t off = b0 * 18;
      if (g0 == 0) /* the prefetch rows' segments of this tile (72 bytes: one or two lines) */
        for (size_t j = 0; j < n_pf; j++) {
          const char *p = (const char *)row_at(w, ldw, pf, j) + off;
          _mm_prefetch(p, _MM_HINT_T1);
          _mm_prefetch(p + 71, _MM_HINT_T1);
        }
      /* the scales: per row words 0, 9, 18, 27 of the tile; blocks past nbt read as zero */
      uint64_t sc[G];
      const __mmask64 lm = nbt == 4 ? ~(__mmask64)0 : (((__mmask64)1 << (18 * nbt)) - 1);
      const __mmask64 lm2 = nbt == 4 ? (__mmask64)0xFF : 0; /* bytes 64..71 of a whole tile */
      for (size_t i = 0; i < G; i++) {
        const __m512i v = _mm512_maskz_loadu_epi8(lm, rows[i] + off);
        _mm_storel_epi64((__m128i *)(void *)&sc[i], _mm512_castsi512_si128(_mm512_permutexvar_epi16(sc_idx, v)));
      }
      const __m512i z0 = _mm512_loadu_si512(sc), z1 = _mm512_loadu_si512(sc + 8);
      const __m512i z2 = _mm512_loadu_si512(sc + 16), z3 = _mm512_loadu_si512(sc + 24);
      __m512i cq[2];
      int32_t corr[4];
      float sv[4];
      __m256i cbytes[4];
      for (size_t k = 0; k < 4; k++) {
        const __m512i lo = _mm512_permutex2var_epi16(z0, tr_idx[k], z1),
                      hi = _mm512_permutex2var_epi16(z2, tr_idx[k], z3);
        const __m512 p0 = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(lo)), va0);
        const __m512 p1 = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(hi)), va1);
        const float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(p0), _mm512_abs_ps(p1)));
        const float s = m > 0.0f ? m / 127.0f : 0.0f, inv = m > 0.0f ? 127.0f / m : 0.0f;
        const __m512i c0 = _mm512_cvtps_epi32(_mm512_mul_ps(p0, _mm512_set1_ps(inv)));
        const __m512i c1 = _mm512_cvtps_epi32(_mm512_mul_ps(p1, _mm512_set1_ps(inv)));
        corr[k] = 8 * _mm512_reduce_add_epi32(_mm512_add_epi32(c0, c1));
        cbytes[k] =
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(c0)), _mm512_cvtepi32_epi8(c1), 1);
        sv[k] = s;
      }
      /* dwords 8k + q: block k's coefficient quad q */
      cq[0] = _mm512_inserti64x4(_mm512_castsi256_si512(cbytes[0]), cbytes[1], 1);
      cq[1] = _mm512_inserti64x4(_mm512_castsi256_si512(cbytes[2]), cbytes[3], 1);
      __m512i acc[8];
      for (int m = 0; m < 8; m++) acc[m] = _mm512_setzero_si512();
      for (size_t q = 0; q < (gn + 3) / 4; q++) {
        const __m512i cv = _mm512_permutex2var_epi32(cq[0], q_idx[q], cq[1]);
        __m512i v[4];
        for (int r = 0; r < 4; r++) {
          /* the 4 blocks' codes (words 9k + 1 .. 9k + 8 of the tile) on the 4 lanes */
          const uint8_t *t = rows[4 * q + (size_t)r] + off;
          v[r] =
              _mm512_permutex2var_epi16(_mm512_maskz_loadu_epi8(lm, t), code_idx, _mm512_maskz_loadu_epi8(lm2, t + 64));
        }
        /* interleave the code bytes first, then split the nibbles (bytewise: the same
         * operands as dot4 on split rows, with half the unpacks) */
        const __m512i t0 = _mm512_unpacklo_epi8(v[0], v[1]), t1 = _mm512_unpackhi_epi8(v[0], v[1]);
        const __m512i t2 = _mm512_unpacklo_epi8(v[2], v[3]), t3 = _mm512_unpackhi_epi8(v[2], v[3]);
        const __m512i x[4] = {_mm512_unpacklo_epi16(t0, t2), _mm512_unpackhi_epi16(t0, t2),
                              _mm512_unpacklo_epi16(t1, t3), _mm512_unpackhi_epi16(t1, t3)};
        for (int m = 0; m < 4; m++) {
          acc[m] = _mm512_dpbusd_epi32(acc[m], _mm512_and_si512(x[m], m4), cv);
          acc[4 + m] = _mm512_dpbusd_epi32(acc[4 + m], _mm512_and_si512(_mm512_srli_epi16(x[m], 4), m4), cv);
        }
      }
      const __m512i vc =
          _mm512_permutexvar_epi32(lane, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(void *)corr)));
      const __m512 vs = _mm512_permutexvar_ps(lane, _mm512_castps128_ps512(_mm_loadu_ps(sv)));
      /* y's blocks b0.. into the lane layout: fy[m] lane k = outputs 4m..4m+3 of block k */
      __m512 fy[8];
      float *yt = y + 32 * b0;
      for (size_t k = 0; k < 4; k++) {
        fy[k] = k < nbt ? _mm512_loadu_ps(yt + 32 * k) : _mm512_setzero_ps();
        fy[4 + k] = k < nbt ? _mm512_loadu_ps(yt + 32 * k + 16) : _mm512_setzero_ps();
      }
      transpose_lanes(fy);
      transpose_lanes(fy + 4);
      for (int m = 0; m < 8; m++) fy[m] = _mm512_fmadd_ps(vs, _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[m], vc)), fy[m]);
      transpose_lanes(fy);
      transpose_lanes(fy + 4);
      for (size_t k = 0; k < nbt; k++) {
        _mm512_storeu_ps(yt + 32 * k, fy[k]);
        _mm512_storeu_ps(yt + 32 * k + 16, fy[4 + k]);
      }
    }
  }
}
