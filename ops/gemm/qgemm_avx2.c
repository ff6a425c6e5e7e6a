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

/* Q4_0 packed activations, per pair of blocks (96 bytes): lo[32] = x_b[0..15] |
 * x_b+1[0..15], hi[32] = x_b[16..31] | x_b+1[16..31], corr[32] = 4 int32
 * lanes per block of -2 * sum(x_b); then f32 d[kb8]; padding blocks zero.
 * A weight pair's 32 code bytes (one ymm) then give both blocks' low
 * nibbles with one and, the high ones with a shift and an and. */

static size_t kb8_of(size_t kb) {
  return (kb + 7) / 8 * 8;
}

size_t spr_x8_0_xbytes_q4_0__avx2(size_t kb) {
  return kb8_of(kb) / 2 * 96 + spr_align_up(kb8_of(kb) * 4, 64);
}

void spr_x8_0_packx_q4_0__avx2(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  uint8_t *row = xq;
  const size_t kb8 = kb8_of(kb);
  float *d = (float *)(row + kb8 / 2 * 96);
  for (size_t b = b0; b < b1; b++) {
    int8_t qs[32];
    int32_t sum;
    x8_0_block_avx2(x + 32 * b, qs, &d[b], &sum);
    uint8_t *p = row + b / 2 * 96 + 16 * (b % 2);
    memcpy(p, qs, 16);
    memcpy(p + 32, qs + 16, 16);
    _mm_storeu_si128((__m128i *)(p + 64), _mm_set1_epi32(-2 * sum));
  }
  if (b1 == kb) {
    for (size_t b = kb; b < kb8; b++) {
      uint8_t *p = row + b / 2 * 96 + 16 * (b % 2);
      memset(p, 0, 16), memset(p + 32, 0, 16), memset(p + 64, 0, 16);
      d[b] = 0.0f;
    }
  }
}

/* The 8 fp16 scales of a group of 8 blocks (n valid) as f32. */
INLINE __m256 q4_0_d8(const uint8_t *p, size_t n) {
  uint64_t lo = 0, hi = 0; /* assembled in integer registers (no store-to-load forwarding stall) */
  for (size_t t = 0; t < n; t++) {
    uint16_t h;
    memcpy(&h, p + 18 * t, 2);
    if (t < 4)
      lo |= (uint64_t)h << (16 * t);
    else
      hi |= (uint64_t)h << (16 * (t - 4));
  }
  return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

INLINE void q4_0_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  const size_t kb8 = kb8_of(kb), d_off = kb8 / 2 * 96;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[2][2][2];
  ZERO_ACC(acc)
  for (size_t g = 0; g < kb8 / 8; g++) {
    const size_t nblk = kb - 8 * g < 8 ? kb - 8 * g : 8;
    __m256 dw[2];
    for (int j = 0; j < NJ; j++) {
      if (nblk == 8) prefetch_w(wr[j] + 144 * g, 144);
      dw[j] = q4_0_d8(wr[j] + 144 * g, nblk);
    }
    for (int q = 0; q < 4; q++) {
      const size_t b = 8 * g + 2 * q;
      if (b >= kb) break;
      __m256i lo[2], hi[2];
      for (int j = 0; j < NJ; j++) {
        const uint8_t *p = wr[j] + 18 * b + 2;
        const __m128i r0 = _mm_loadu_si128((const __m128i *)p);
        const __m128i r1 = b + 1 < kb ? _mm_loadu_si128((const __m128i *)(p + 18)) : _mm_setzero_si128();
        const __m256i v = _mm256_set_m128i(r1, r0);
        lo[j] = _mm256_and_si256(v, m4);
        hi[j] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      }
      const __m256i sidx = _mm256_setr_epi32(2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1);
      for (int i = 0; i < MR; i++) {
        const uint8_t *xp = xq + (size_t)i * ldx + (4 * g + (size_t)q) * 96;
        const __m256i xl = _mm256_load_si256((const __m256i *)xp), xh = _mm256_load_si256((const __m256i *)(xp + 32));
        const __m256i corr = _mm256_load_si256((const __m256i *)(xp + 64));
        const __m256 dx = _mm256_loadu_ps((const float *)(xq + (size_t)i * ldx + d_off) + 8 * g);
        for (int j = 0; j < NJ; j++) {
          /* pairs <= 2 * 15 * 127 each, two of them < 2^15 */
          const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[j], xl), _mm256_maddubs_epi16(hi[j], xh));
          const __m256i p32 = _mm256_add_epi32(_mm256_madd_epi16(p16, ones), corr);
          const __m256 sc = _mm256_permutevar8x32_ps(_mm256_mul_ps(dw[j], dx), sidx);
          const int a = NA > 1 ? (q & 1) : 0;
          acc[i][j][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), sc, acc[i][j][a]);
        }
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

/* The 8 6-bit scales and mins of a Q4_K block as int16 words in both 128-bit
 * lanes (ggml's get_scale_min_k4, on 32-bit words). */
INLINE void q4_k_scales(const uint8_t *blk, __m256i *sc, __m256i *mn) {
  uint32_t s[3];
  memcpy(s, blk + 4, 12);
  const uint32_t sc_lo = s[0] & 0x3f3f3f3fu, sc_hi = (s[2] & 0x0f0f0f0fu) | (((s[0] >> 6) & 0x03030303u) << 4);
  const uint32_t m_lo = s[1] & 0x3f3f3f3fu, m_hi = ((s[2] >> 4) & 0x0f0f0f0fu) | (((s[1] >> 6) & 0x03030303u) << 4);
  *sc = _mm256_broadcastsi128_si256(
      _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)sc_lo | (uint64_t)sc_hi << 32))));
  *mn = _mm256_broadcastsi128_si256(
      _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)m_lo | (uint64_t)m_hi << 32))));
}

/* pshufb patterns: word k of a lane in all 8 words */
#define WORD_BCAST(k) _mm256_set1_epi16((short)((2 * (k)) | ((2 * (k) + 1) << 8)))

INLINE void q4_k_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  (void)NA;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  /* [m0 m0 m1 m1 m2 m2 m3 m3 | m4 m4 m5 m5 m6 m6 m7 m7] against the 16 bsums (both lanes hold m0..m7) */
  const __m256i pair_idx = _mm256_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11,
                                            12, 13, 12, 13, 14, 15, 14, 15);
  __m256 acc[2][2][2], macc[2][2];
  ZERO_ACC(acc)
  for (int i = 0; i < 2; i++) macc[i][0] = macc[i][1] = _mm256_setzero_ps();
  for (size_t b = 0; b < kb; b++) {
    __m256i q[2][4], sc[2], mp[2];
    float dw[2], dmw[2];
    for (int j = 0; j < NJ; j++) {
      const uint8_t *blk = wr[j] + 144 * b;
      prefetch_w(blk, 144);
      for (int cc = 0; cc < 4; cc++) q[j][cc] = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * cc));
      __m256i mn;
      q4_k_scales(blk, &sc[j], &mn);
      mp[j] = _mm256_shuffle_epi8(mn, pair_idx); /* low lane m0..m3 paired, high lane m4..m7 */
      dw[j] = half_at(blk);
      dmw[j] = half_at(blk + 2);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const int8_t *xb = (const int8_t *)xr + 256 * b;
      const __m256i bs = _mm256_loadu_si256((const __m256i *)(spr_x8_k_plain_bsums(xr, kb) + 16 * b));
      const float dx = spr_x8_k_plain_d(xr, kb)[b];
      for (int j = 0; j < NJ; j++) {
        __m256i t0 = _mm256_setzero_si256(), t1 = _mm256_setzero_si256();
        for (int cc = 0; cc < 4; cc++) {
          const __m256i lo = _mm256_and_si256(q[j][cc], m4), hi = _mm256_and_si256(_mm256_srli_epi16(q[j][cc], 4), m4);
          const __m256i x0 = _mm256_load_si256((const __m256i *)(xb + 64 * cc));
          const __m256i x1 = _mm256_load_si256((const __m256i *)(xb + 64 * cc + 32));
          const __m256i s0 = _mm256_shuffle_epi8(sc[j], WORD_BCAST(2 * cc));
          const __m256i s1 = _mm256_shuffle_epi8(sc[j], WORD_BCAST(2 * cc + 1));
          t0 = _mm256_add_epi32(t0, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), s0));
          t1 = _mm256_add_epi32(t1, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), s1));
        }
        acc[i][j][0] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(t0, t1)), _mm256_set1_ps(dw[j] * dx), acc[i][j][0]);
        macc[i][j] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mp[j])), _mm256_set1_ps(dmw[j] * dx), macc[i][j]);
      }
    }
  }
  float mins[4];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) mins[2 * i + j] = hsum_ps(macc[i][j]);
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
