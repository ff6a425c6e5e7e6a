/* ops/gemm/qgemm_avx512vnni.c — AVX-512 VNNI quantized GEMM ukernels (contracts in qgemm.h).
 *
 * Tiles: up to 4 activation rows x 2 weight rows, one f32 zmm accumulator
 * per output; each weight block is unpacked once per tile and used by every
 * row. vpdpbusd multiplies unsigned by signed bytes, so the weights are made
 * the unsigned operand and the activations stay signed:
 *   Q4_0: the raw nibble q in 0..15; sum (q - 8) x = sum q x - 8 sum x
 *   Q8_0: q ^ 0x80 = q + 128;        sum q x = sum (q + 128) x - 128 sum x
 * and the packer stores the correction (-8 or -128 times the block's sum of
 * x) spread over the block's int32 lanes, so it is the dpbusd accumulator's
 * starting value and the block's integer sum comes out exact. The K-quants
 * use vpmaddubsw (nibble / 6-bit code x int8, pairs in int16, no saturation:
 * 63 * 128 * 2 < 2^15) and vpdpwssd with the sub-block scales as int16, so
 * the scaling is folded into the accumulation.
 *
 * Weights are read in place (18/34/144/210-byte blocks, no alignment): Q4_0
 * and Q8_0 take 8 blocks (144/272 bytes) per step and gather their fp16
 * scales and code vectors with vpermt2w from a few loads; the activation
 * packers lay the int8 values out to match (see each packer). Loads that
 * could pass the end of the weights are masked.
 *
 * Decode (mr = 1) is memory bound: it walks the weight rows one after the
 * other (one sequential stream; tiles of rows would interleave several
 * short ones), prefetches QPF bytes ahead in software, and gives each
 * output two accumulators so the per-block FMAs do not form one chain.
 * Measured on Zen 4 (tools/bench/bench_quant.c): the Q4_0 inner loop is
 * bound by its vector shuffles/multiplies at ~1.4 cycles per block. */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__) || !defined(__AVX512BW__)
#error "this file needs -mavx512f -mavx512bw -mavx512vnni"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/gemm/qgemm.h"

#define INLINE static inline __attribute__((always_inline))

/* n (0..64) bytes at p into a zmm, the rest zero; nothing past p + n is read. */
INLINE __m512i load_bytes(const uint8_t *p, size_t n) {
  if (n >= 64) return _mm512_loadu_si512(p);
  if (n == 0) return _mm512_setzero_si512();
  return _mm512_maskz_loadu_epi8(~0ull >> (64 - n), p);
}

INLINE size_t clamp64(size_t bytes, size_t off) {
  return bytes <= off ? 0 : (bytes - off < 64 ? bytes - off : 64);
}

#ifndef QPF
#define QPF 4096
#endif
/* Software prefetch of the weight bytes PF ahead of p (the weights stream
 * from DRAM in decode; rows are contiguous, so this runs into the next row,
 * which is the next one a task computes). Never dereferenced, so an address
 * past the end of the weights is harmless. */
INLINE void prefetch_w(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)((uintptr_t)p + QPF + off), _MM_HINT_T0);
}

INLINE float half_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

/* The 16-lane sums of 8 accumulators v[0..7] as 8 floats (a tree of
 * cross-register shuffles instead of 8 separate reductions). */
INLINE __m256 reduce8(const __m512 v[8]) {
  __m512 t[4], u[2];
  for (int k = 0; k < 4; k++) /* 256-bit halves: [v2k folded | v2k+1 folded] */
    t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
  for (int k = 0; k < 2; k++) /* 128-bit quarters: v4k, v4k+1, v4k+2, v4k+3 folded to 4 lanes */
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xDD));
  /* quarter q: [a0+a2, b0+b2, a1+a3, b1+b3] with a = v_q, b = v_(q+4), then + its 64-bit swap */
  __m512 w = _mm512_add_ps(_mm512_unpacklo_ps(u[0], u[1]), _mm512_unpackhi_ps(u[0], u[1]));
  w = _mm512_add_ps(w, _mm512_permute_ps(w, 0x4E));
  /* lane 4q = sum v_q, lane 4q+1 = sum v_(q+4) */
  return _mm512_castps512_ps256(
      _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), w));
}

/* Sums of the f32 accumulators (na per output) + bias into C. */
INLINE void store_tile(int mr, size_t nr, int na, __m512 acc[4][2][2], const float *bias, float *c, size_t ldc) {
  if (mr == 4 && nr == 2 && na == 1) {
    const __m512 v[8] = {acc[0][0][0], acc[0][1][0], acc[1][0][0], acc[1][1][0],
                         acc[2][0][0], acc[2][1][0], acc[3][0][0], acc[3][1][0]};
    float r[8];
    _mm256_storeu_ps(r, reduce8(v));
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 2; j++) c[i * ldc + j] = r[2 * i + j] + (bias != NULL ? bias[j] : 0.0f);
    return;
  }
  for (int i = 0; i < mr; i++) {
    for (size_t j = 0; j < nr; j++) {
      const __m512 a = na > 1 ? _mm512_add_ps(acc[i][j][0], acc[i][j][1]) : acc[i][j][0];
      c[i * ldc + j] = _mm512_reduce_add_ps(a) + (bias != NULL ? bias[j] : 0.0f);
    }
  }
}

/* ---- activation quantizers: the values of ggml's reference quantizers ----------------
 * (spr_quantize_row_q8_0_ref / _q8_k_ref), vectorized. The same IEEE
 * operations on the same values: amax is exact, d and 1/d are scalar as in
 * the reference, x * id rounds the same, and the two roundings are done
 * exactly (roundf: truncate, then step away from zero when the dropped
 * fraction is >= 0.5; nearest_int: the same 1.5*2^23 addition). Blocks with
 * a NaN go to the scalar reference (its max scan is order dependent there). */

INLINE bool has_nan(__m512 a, __m512 b) {
  return (_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q)) != 0;
}

/* round half away from zero, then (int8_t) as x86 converts (out of range -> 0) */
INLINE __m128i roundf_i8(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(v, t);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(f), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one =
      _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)),
                                          _mm512_castps_si512(_mm512_set1_ps(1.0f))));
  const __m512 r = _mm512_mask_add_ps(t, up, t, one);
  return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r)); /* NaN / out of range -> INT32_MIN -> low byte 0 */
}

void spr_x8_0_quantize_block__avx512vnni(const float *x, int8_t *qs, float *d, int32_t *s) {
  const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
  if (has_nan(a, b)) {
    spr_x8_0_quantize_block(x, qs, d, s);
    return;
  }
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const float dd = amax / 127;
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  const __m128i q0 = roundf_i8(_mm512_mul_ps(a, _mm512_set1_ps(id)));
  const __m128i q1 = roundf_i8(_mm512_mul_ps(b, _mm512_set1_ps(id)));
  _mm_storeu_si128((__m128i *)qs, q0);
  _mm_storeu_si128((__m128i *)(qs + 16), q1);
  *d = spr_fp16_to_f32(spr_fp16_from_f32(dd));
  *s = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_cvtepi8_epi32(q0), _mm512_cvtepi8_epi32(q1)));
}

void spr_x8_k_quantize_block__avx512vnni(const float *x, struct spr_block_q8_k *y) {
  __m512 v[16], m = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int t = 0; t < 16; t++) {
    v[t] = _mm512_loadu_ps(x + 16 * t);
    nan |= _mm512_cmp_ps_mask(v[t], v[t], _CMP_UNORD_Q);
    m = _mm512_max_ps(m, _mm512_abs_ps(v[t]));
  }
  if (nan) {
    spr_quantize_row_q8_k_ref(x, y, 256);
    return;
  }
  const float amax = _mm512_reduce_max_ps(m);
  if (amax == 0.0f) {
    memset(y, 0, sizeof *y);
    return;
  }
  float max = 0.0f; /* the first value of largest magnitude, as the reference's strict > scan */
  for (int t = 0; t < 16; t++) {
    const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(v[t]), _mm512_set1_ps(amax), _CMP_EQ_OQ);
    if (hit) {
      max = x[16 * t + __builtin_ctz(hit)];
      break;
    }
  }
  const float iscale = -127.f / max;
  const __m512 vs = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.f);
  const __m512i lo = _mm512_set1_epi32(0x007fffff), off = _mm512_set1_epi32(0x00400000);
  for (int t = 0; t < 16; t++) {
    const __m512i bits = _mm512_castps_si512(_mm512_add_ps(_mm512_mul_ps(vs, v[t]), magic));
    __m512i q = _mm512_sub_epi32(_mm512_and_si512(bits, lo), off);
    q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
    const __m128i q8 = _mm512_cvtepi32_epi8(q); /* int -> int8_t: modulo, as the reference */
    _mm_storeu_si128((__m128i *)(y->qs + 16 * t), q8);
    y->bsums[t] = (int16_t)_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q8));
  }
  y->d = 1 / iscale;
}

/* ================================ Q4_0 ======================================== */
/* Packed activations, per group of 4 blocks (192 bytes):
 *   lo[64]:  x_b[0..15] for the 4 blocks b (16 bytes each)
 *   hi[64]:  x_b[16..31]
 *   corr[64]: 4 int32 lanes per block, each -2 * sum(x_b) (so -8 * sum per block)
 * then f32 d[kb8] (kb8 = kb rounded up to 8; padding blocks are all zero). */

static size_t kb8_of(size_t kb) {
  return (kb + 7) / 8 * 8;
}

size_t spr_x8_0_xbytes_q4_0__avx512vnni(size_t kb) {
  const size_t kb8 = kb8_of(kb);
  return kb8 / 4 * 192 + spr_align_up(kb8 * 4, 64);
}

void spr_x8_0_packx_q4_0__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  uint8_t *row = xq;
  const size_t kb8 = kb8_of(kb);
  float *d = (float *)(row + kb8 / 4 * 192);
  for (size_t b = b0; b < b1; b++) {
    int8_t qs[32];
    int32_t s;
    spr_x8_0_quantize_block__avx512vnni(x + 32 * b, qs, &d[b], &s);
    uint8_t *g = row + b / 4 * 192 + 16 * (b % 4);
    memcpy(g, qs, 16);
    memcpy(g + 64, qs + 16, 16);
    _mm_storeu_si128((__m128i *)(g + 128), _mm_set1_epi32(-2 * s));
  }
  if (b1 == kb) {
    for (size_t b = kb; b < kb8; b++) {
      uint8_t *g = row + b / 4 * 192 + 16 * (b % 4);
      memset(g, 0, 16), memset(g + 64, 0, 16), memset(g + 128, 0, 16);
      d[b] = 0.0f;
    }
  }
}

/* Word indices into two concatenated zmm (64 words) for vpermt2w. */
static const int16_t k_q4_0_idx[3][32] = {
    /* qs of blocks 0..3 of a 144-byte group from (bytes 0..63, 64..127): words 9t+1 .. 9t+8 */
    {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
     19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35},
    /* qs of blocks 4..7 from (bytes 64..127, 128..191): words 9t+1-32 .. for t = 4..7 */
    {5,  6,  7,  8,  9,  10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21,
     23, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38, 39},
    /* the 8 fp16 scales: words 9t */
    {0, 9, 18, 27, 36, 45, 54, 63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

struct q4_0_w {
  __m512i lo[2], hi[2]; /* nibbles of blocks 4h..4h+3: lo = elements 0..15, hi = 16..31 of each block */
  __m256 d;             /* the 8 block scales */
};

/* One group of 8 blocks at p; TAIL: only `bytes` (< 144) are weights. */
INLINE void q4_0_unpack(const uint8_t *p, const int TAIL, size_t bytes, const __m512i *idx, struct q4_0_w *u) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512i a, b, c;
  if (TAIL) {
    a = load_bytes(p, clamp64(bytes, 0)), b = load_bytes(p + 64, clamp64(bytes, 64));
    c = load_bytes(p + 128, clamp64(bytes, 128));
  } else {
    a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 64), c = _mm512_maskz_loadu_epi8(0xFFFF, p + 128);
  }
  const __m512i q0 = _mm512_permutex2var_epi16(a, idx[0], b), q1 = _mm512_permutex2var_epi16(b, idx[1], c);
  u->d = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(a, idx[2], b)));
  u->lo[0] = _mm512_and_si512(q0, m4);
  u->hi[0] = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4);
  u->lo[1] = _mm512_and_si512(q1, m4);
  u->hi[1] = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4);
}

/* NJ weight rows (1, or 2 with row 1 = row 0 when nr == 1) x MR activation
 * rows; NA accumulators per output (2 breaks the FMA chain of a 1x1 tile). */
INLINE void q4_0_group(const int MR, const int NJ, const int NA, const int TAIL, size_t g, size_t bytes,
                       const uint8_t *const *wr, const uint8_t *xq, size_t ldx, size_t dx_off, const __m512i *idx,
                       const __m512i *sidx, __m512 acc[4][2][2]) {
  struct q4_0_w u[2];
  for (int j = 0; j < NJ; j++) {
    if (!TAIL) prefetch_w(wr[j] + 144 * g, 144);
    q4_0_unpack(wr[j] + 144 * g, TAIL, bytes, idx, &u[j]);
  }
  for (int i = 0; i < MR; i++) {
    const uint8_t *xg = xq + (size_t)i * ldx + 2 * 192 * g;
    const __m256 dx = _mm256_loadu_ps((const float *)(xq + (size_t)i * ldx + dx_off) + 8 * g);
    for (int j = 0; j < NJ; j++) {
      const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(u[j].d, dx));
#if COMBINE
      __m512i t[2];
      for (int h = 0; h < 2; h++) {
        t[h] = _mm512_load_si512(xg + 192 * h + 128);
        t[h] = _mm512_dpbusd_epi32(t[h], u[j].lo[h], _mm512_load_si512(xg + 192 * h));
        t[h] = _mm512_dpbusd_epi32(t[h], u[j].hi[h], _mm512_load_si512(xg + 192 * h + 64));
      }
      const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
      const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
      const __m512i tt =
          _mm512_add_epi32(_mm512_permutex2var_epi32(t[0], ie, t[1]), _mm512_permutex2var_epi32(t[0], io, t[1]));
      const __m512i sidx2 = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
      const int a = NA > 1 ? (int)(g & 1) : 0;
      acc[i][j][a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tt), _mm512_permutexvar_ps(sidx2, s), acc[i][j][a]);
#else
      for (int h = 0; h < 2; h++) {
        __m512i t = _mm512_load_si512(xg + 192 * h + 128);
        t = _mm512_dpbusd_epi32(t, u[j].lo[h], _mm512_load_si512(xg + 192 * h));
        t = _mm512_dpbusd_epi32(t, u[j].hi[h], _mm512_load_si512(xg + 192 * h + 64));
        const int a = NA > 1 ? h : 0;
        acc[i][j][a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_permutexvar_ps(sidx[h], s), acc[i][j][a]);
      }
#endif
    }
  }
}

INLINE void q4_0_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  const size_t kb8 = kb8_of(kb), full = kb / 8, dx_off = kb8 / 4 * 192;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  __m512i idx[3];
  for (int t = 0; t < 3; t++) idx[t] = _mm512_loadu_si512(k_q4_0_idx[t]);
  /* lane l of a 4-block vector belongs to block l / 4 of the half */
  const __m512i sidx[2] = {_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                           _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4)};
  __m512 acc[4][2][2];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) acc[i][j][0] = acc[i][j][1] = _mm512_setzero_ps();
  size_t g = 0;
  for (; g < full; g++) q4_0_group(MR, NJ, NA, 0, g, 144, wr, xq, ldx, dx_off, idx, sidx, acc);
  if (g < kb8 / 8) q4_0_group(MR, NJ, NA, 1, g, kb * 18 - 144 * g, wr, xq, ldx, dx_off, idx, sidx, acc);
  store_tile(MR, NJ < (int)nr ? (size_t)NJ : nr, NA, acc, bias, c, ldc);
}

/* Decode (mr = 1) walks the weight rows one after the other: one sequential
 * stream, which the prefetchers follow; tiles of rows stream several. */
#define DEFINE_UKERNEL(name, tile)                                                                                     \
  void name(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq, size_t ldx, const float *bias, \
            float *c, size_t ldc) {                                                                                    \
    const uint8_t *wb = w, *xb = xq;                                                                                   \
    switch (mr) {                                                                                                      \
      case 1:                                                                                                          \
        for (size_t j = 0; j < nr; j++)                                                                                \
          tile(1, 1, 2, kb, 1, wb + j * ldw, ldw, xb, ldx, bias != NULL ? bias + j : NULL, c + j, ldc);                \
        break;                                                                                                         \
      case 2:                                                                                                          \
        tile(2, 2, 1, kb, nr, wb, ldw, xb, ldx, bias, c, ldc);                                                         \
        break;                                                                                                         \
      case 3:                                                                                                          \
        tile(3, 2, 1, kb, nr, wb, ldw, xb, ldx, bias, c, ldc);                                                         \
        break;                                                                                                         \
      default:                                                                                                         \
        tile(4, 2, 1, kb, nr, wb, ldw, xb, ldx, bias, c, ldc);                                                         \
        break;                                                                                                         \
    }                                                                                                                  \
  }

DEFINE_UKERNEL(spr_q4_0_gemm_ukernel_4x2__avx512vnni, q4_0_tile)

/* ================================ Q8_0 ======================================== */
/* Packed activations, per pair of blocks (128 bytes): qs[64] (the two
 * blocks' 32 values), corr[64] (8 int32 lanes per block, each -16 * sum(x_b),
 * so -128 * sum per block); then f32 d[kb8]; padding blocks are zero.
 * Weights: 8 blocks (272 bytes) per step from five loads; each pair's 64
 * code bytes and the 8 fp16 scales are picked with vpermt2w. */

size_t spr_x8_0_xbytes_q8_0__avx512vnni(size_t kb) {
  const size_t kb8 = kb8_of(kb);
  return kb8 / 2 * 128 + spr_align_up(kb8 * 4, 64);
}

void spr_x8_0_packx_q8_0__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  uint8_t *row = xq;
  const size_t kb8 = kb8_of(kb);
  float *d = (float *)(row + kb8 / 2 * 128);
  for (size_t b = b0; b < b1; b++) {
    int32_t s;
    uint8_t *p = row + b / 2 * 128 + 32 * (b % 2);
    spr_x8_0_quantize_block__avx512vnni(x + 32 * b, (int8_t *)p, &d[b], &s);
    _mm256_storeu_si256((__m256i *)(p + 64), _mm256_set1_epi32(-16 * s));
  }
  if (b1 == kb) {
    for (size_t b = kb; b < kb8; b++) {
      uint8_t *p = row + b / 2 * 128 + 32 * (b % 2);
      memset(p, 0, 32), memset(p + 64, 0, 32);
      d[b] = 0.0f;
    }
  }
}

/* pair q of a 272-byte group: words 34q+1 .. 34q+16 and 34q+18 .. 34q+33, from zmm q and q+1
 * (word 2q + 1 + t + (t >= 16) of the pair's two registers) */
#define PIDX(q)                                                                                                     \
  {                                                                                                                 \
    2 * q + 1, 2 * q + 2, 2 * q + 3, 2 * q + 4, 2 * q + 5, 2 * q + 6, 2 * q + 7, 2 * q + 8, 2 * q + 9, 2 * q + 10,  \
        2 * q + 11, 2 * q + 12, 2 * q + 13, 2 * q + 14, 2 * q + 15, 2 * q + 16, 2 * q + 18, 2 * q + 19, 2 * q + 20, \
        2 * q + 21, 2 * q + 22, 2 * q + 23, 2 * q + 24, 2 * q + 25, 2 * q + 26, 2 * q + 27, 2 * q + 28, 2 * q + 29, \
        2 * q + 30, 2 * q + 31, 2 * q + 32, 2 * q + 33                                                              \
  }
static const int16_t k_q8_0_pidx[4][32] = {PIDX(0), PIDX(1), PIDX(2), PIDX(3)};
#undef PIDX

struct q8_0_w {
  __m512i u[4]; /* codes + 128 of blocks (2q, 2q+1) */
  __m256 d;
};

INLINE void q8_0_unpack(const uint8_t *p, const int TAIL, size_t bytes, const __m512i *pidx, const __m512i *didx,
                        struct q8_0_w *u) {
  __m512i z[5];
  for (int t = 0; t < 5; t++) {
    if (TAIL)
      z[t] = load_bytes(p + 64 * t, clamp64(bytes, 64 * (size_t)t));
    else
      z[t] = t < 4 ? _mm512_loadu_si512(p + 64 * t) : _mm512_maskz_loadu_epi8(0xFFFF, p + 256);
  }
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  for (int q = 0; q < 4; q++) u->u[q] = _mm512_xor_si512(_mm512_permutex2var_epi16(z[q], pidx[q], z[q + 1]), flip);
  const __m512i d0 = _mm512_permutex2var_epi16(z[0], didx[0], z[1]),
                d1 = _mm512_permutex2var_epi16(z[2], didx[1], z[3]);
  u->d = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_mask_blend_epi16(0xF0, d0, d1)));
}

INLINE void q8_0_group(const int MR, const int NJ, const int NA, const int TAIL, size_t g, size_t bytes,
                       const uint8_t *const *wr, const uint8_t *xq, size_t ldx, size_t dx_off, const __m512i *pidx,
                       const __m512i *didx, const __m512i *sidx, __m512 acc[4][2][2]) {
  struct q8_0_w u[2];
  for (int j = 0; j < NJ; j++) {
    if (!TAIL) prefetch_w(wr[j] + 272 * g, 272);
    q8_0_unpack(wr[j] + 272 * g, TAIL, bytes, pidx, didx, &u[j]);
  }
  /* a tail group still runs 4 pairs: its missing blocks are zero codes (128 after the flip)
   * against zero activations, zero corrections and zero scales, so they add exactly 0 */
  for (int i = 0; i < MR; i++) {
    const uint8_t *xg = xq + (size_t)i * ldx + 4 * 128 * g;
    const __m256 dx = _mm256_loadu_ps((const float *)(xq + (size_t)i * ldx + dx_off) + 8 * g);
    for (int j = 0; j < NJ; j++) {
      const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(u[j].d, dx));
      for (int q = 0; q < 4; q++) {
        const __m512i t =
            _mm512_dpbusd_epi32(_mm512_load_si512(xg + 128 * q + 64), u[j].u[q], _mm512_load_si512(xg + 128 * q));
        const int a = NA > 1 ? (q & 1) : 0;
        acc[i][j][a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_permutexvar_ps(sidx[q], s), acc[i][j][a]);
      }
    }
  }
}

INLINE void q8_0_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  const size_t kb8 = kb8_of(kb), full = kb / 8, dx_off = kb8 / 2 * 128;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  __m512i pidx[4], didx[2], sidx[4];
  for (int q = 0; q < 4; q++) {
    pidx[q] = _mm512_loadu_si512(k_q8_0_pidx[q]);
    sidx[q] = _mm512_set_epi32(2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1,
                               2 * q, 2 * q, 2 * q, 2 * q, 2 * q, 2 * q, 2 * q, 2 * q);
  }
  /* scales: words 17t; t < 4 from zmm 0,1, t >= 4 from zmm 2,3 (words 4..7 of the result) */
  didx[0] = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 51, 34,
                             17, 0);
  didx[1] = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 55, 38, 21, 4, 0,
                             0, 0, 0);
  __m512 acc[4][2][2];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) acc[i][j][0] = acc[i][j][1] = _mm512_setzero_ps();
  size_t g = 0;
  for (; g < full; g++) q8_0_group(MR, NJ, NA, 0, g, 272, wr, xq, ldx, dx_off, pidx, didx, sidx, acc);
  if (g < kb8 / 8) q8_0_group(MR, NJ, NA, 1, g, kb * 34 - 272 * g, wr, xq, ldx, dx_off, pidx, didx, sidx, acc);
  store_tile(MR, NJ < (int)nr ? (size_t)NJ : nr, NA, acc, bias, c, ldc);
}

DEFINE_UKERNEL(spr_q8_0_gemm_ukernel_4x2__avx512vnni, q8_0_tile)

/* ================================ Q4_K ======================================== */
/* Packed activations: the plain x8_k layout, but each 128 values of a
 * super-block stored as [x0..31 | x64..95 | x32..63 | x96..127], so the low
 * nibbles of 64 weight bytes (sub-blocks 2c, 2c+2) and the high nibbles
 * (2c+1, 2c+3) each meet 64 contiguous activations. bsums stay in order. */

size_t spr_x8_k_xbytes_q4_k__avx512vnni(size_t kb) {
  return spr_x8_k_xbytes_plain(kb);
}

/* The plain x8_k layout through the vectorized quantizer; reorder: qs in
 * the order above (Q4_K) or as is (Q6_K). */
INLINE void packx_x8_k(size_t kb, size_t b0, size_t b1, const float *x, void *xq, const int reorder) {
  int8_t *qs = xq;
  float *d = (float *)spr_x8_k_plain_d(xq, kb);
  int16_t *bs = (int16_t *)spr_x8_k_plain_bsums(xq, kb);
  for (size_t b = b0; b < b1; b++) {
    struct spr_block_q8_k blk;
    spr_x8_k_quantize_block__avx512vnni(x + 256 * b, &blk);
    int8_t *p = qs + 256 * b;
    if (reorder) {
      for (int h = 0; h < 2; h++) {
        memcpy(p + 128 * h, blk.qs + 128 * h, 32);
        memcpy(p + 128 * h + 32, blk.qs + 128 * h + 64, 32);
        memcpy(p + 128 * h + 64, blk.qs + 128 * h + 32, 32);
        memcpy(p + 128 * h + 96, blk.qs + 128 * h + 96, 32);
      }
    } else {
      memcpy(p, blk.qs, 256);
    }
    d[b] = blk.d;
    memcpy(bs + 16 * b, blk.bsums, sizeof blk.bsums);
  }
}

void spr_x8_k_packx_q4_k__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  packx_x8_k(kb, b0, b1, x, xq, 1);
}

struct q4_k_w {
  __m512i q[4];  /* nibbles: [sub 0 | sub 2], [1 | 3], [4 | 6], [5 | 7] */
  __m512i sc[4]; /* int16 scales matching q[] */
  __m256i mins;  /* int16 [m0, m0, m1, m1, ..., m7, m7] (pairs of bsums) */
  float d, dmin;
};

INLINE void q4_k_unpack(const uint8_t *blk, struct q4_k_w *u) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  uint32_t s[3];
  memcpy(s, blk + 4, 12);
  const uint32_t sc_lo = s[0] & 0x3f3f3f3fu, sc_hi = (s[2] & 0x0f0f0f0fu) | (((s[0] >> 6) & 0x03030303u) << 4);
  const uint32_t m_lo = s[1] & 0x3f3f3f3fu, m_hi = ((s[2] >> 4) & 0x0f0f0f0fu) | (((s[1] >> 6) & 0x03030303u) << 4);
  const __m512i sc16 = _mm512_castsi128_si512(
      _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)sc_lo | (uint64_t)sc_hi << 32))));
  const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)m_lo | (uint64_t)m_hi << 32)));
  u->mins = _mm256_permutexvar_epi16(_mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7),
                                     _mm256_castsi128_si256(m16));
  static const uint8_t k_sub[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
  for (int v = 0; v < 4; v++)
    u->sc[v] = _mm512_permutexvar_epi16(
        _mm512_inserti64x4(_mm512_set1_epi16(k_sub[v][0]), _mm256_set1_epi16(k_sub[v][1]), 1), sc16);
  const __m512i v0 = _mm512_loadu_si512(blk + 16), v1 = _mm512_loadu_si512(blk + 80);
  u->q[0] = _mm512_and_si512(v0, m4);
  u->q[1] = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
  u->q[2] = _mm512_and_si512(v1, m4);
  u->q[3] = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
  u->d = half_at(blk);
  u->dmin = half_at(blk + 2);
}

INLINE void q4_k_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  (void)NA; /* one FMA per super-block and output: no chain to break */
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  __m512 acc[4][2][2];
  __m256 macc[4][2];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) {
      acc[i][j][0] = acc[i][j][1] = _mm512_setzero_ps();
      macc[i][j] = _mm256_setzero_ps();
    }
  for (size_t b = 0; b < kb; b++) {
    struct q4_k_w u[2];
    for (int j = 0; j < NJ; j++) {
      prefetch_w(wr[j] + 144 * b, 144);
      q4_k_unpack(wr[j] + 144 * b, &u[j]);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const int8_t *xb = (const int8_t *)xr + 256 * b;
      const float dx = spr_x8_k_plain_d(xr, kb)[b];
      const __m256i bs = _mm256_loadu_si256((const __m256i *)(spr_x8_k_plain_bsums(xr, kb) + 16 * b));
      __m512i xv[4];
      for (int v = 0; v < 4; v++) xv[v] = _mm512_load_si512(xb + 64 * v);
      for (int j = 0; j < NJ; j++) {
        __m512i t0 = _mm512_setzero_si512(), t1 = _mm512_setzero_si512();
        t0 = _mm512_dpwssd_epi32(t0, _mm512_maddubs_epi16(u[j].q[0], xv[0]), u[j].sc[0]);
        t1 = _mm512_dpwssd_epi32(t1, _mm512_maddubs_epi16(u[j].q[1], xv[1]), u[j].sc[1]);
        t0 = _mm512_dpwssd_epi32(t0, _mm512_maddubs_epi16(u[j].q[2], xv[2]), u[j].sc[2]);
        t1 = _mm512_dpwssd_epi32(t1, _mm512_maddubs_epi16(u[j].q[3], xv[3]), u[j].sc[3]);
        const __m512 f = _mm512_cvtepi32_ps(_mm512_add_epi32(t0, t1));
        acc[i][j][0] = _mm512_fmadd_ps(f, _mm512_set1_ps(u[j].d * dx), acc[i][j][0]);
        const __m256i m = _mm256_madd_epi16(bs, u[j].mins);
        macc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(u[j].dmin * dx), macc[i][j]);
      }
    }
  }
  const size_t nj = NJ < (int)nr ? (size_t)NJ : nr;
  for (int i = 0; i < MR; i++) {
    for (size_t j = 0; j < nj; j++) {
      const __m256 ms = macc[i][j];
      const __m128 m4 = _mm_add_ps(_mm256_castps256_ps128(ms), _mm256_extractf128_ps(ms, 1));
      const __m128 m2 = _mm_add_ps(m4, _mm_movehl_ps(m4, m4));
      const float msum = _mm_cvtss_f32(_mm_add_ss(m2, _mm_movehdup_ps(m2)));
      c[i * ldc + j] = (_mm512_reduce_add_ps(acc[i][j][0]) - msum) + (bias != NULL ? bias[j] : 0.0f);
    }
  }
}

DEFINE_UKERNEL(spr_q4_k_gemm_ukernel_4x2__avx512vnni, q4_k_tile)

/* ================================ Q6_K ======================================== */
/* Packed activations: the plain x8_k layout (ql's low nibbles of 64 bytes are
 * values 0..63 of a half in order, the high nibbles values 64..127). */

size_t spr_x8_k_xbytes_q6_k__avx512vnni(size_t kb) {
  return spr_x8_k_xbytes_plain(kb);
}

void spr_x8_k_packx_q6_k__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  packx_x8_k(kb, b0, b1, x, xq, 0);
}

struct q6_k_w {
  __m512i q[4];  /* 6-bit codes 0..63: values [0..63], [64..127], [128..191], [192..255] */
  __m512i sc[4]; /* int16 scales matching q[] (one per 16 values = 8 int16 lanes) */
  __m512i corr;  /* int16 -32 * scales[0..15] in the low 256 bits */
  float d;
};

INLINE void q6_k_unpack(const uint8_t *blk, struct q6_k_w *u) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const __m512i qh_shift = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
  for (int h = 0; h < 2; h++) {
    const __m512i ql = _mm512_loadu_si512(blk + 64 * h);
    /* [qh | qh >> 2]: bits 0-1 of each byte are the high bits of values 0..63 of
     * the half, bits 4-5 those of values 64..127 */
    const __m512i hb =
        _mm512_srlv_epi64(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h))), qh_shift);
    const __m512i h_lo = _mm512_and_si512(_mm512_slli_epi16(hb, 4), m30), h_hi = _mm512_and_si512(hb, m30);
    u->q[2 * h] = _mm512_ternarylogic_epi32(ql, m4, h_lo, 0xEA);                           /* (ql & m4) | h_lo */
    u->q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), m4, h_hi, 0xEA); /* ((ql>>4) & m4) | h_hi */
  }
  const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
  const __m512i sc512 = _mm512_castsi256_si512(sc16);
  for (int v = 0; v < 4; v++) {
    const __m512i idx = _mm512_set_epi16(
        4 * v + 3, 4 * v + 3, 4 * v + 3, 4 * v + 3, 4 * v + 3, 4 * v + 3, 4 * v + 3, 4 * v + 3, 4 * v + 2, 4 * v + 2,
        4 * v + 2, 4 * v + 2, 4 * v + 2, 4 * v + 2, 4 * v + 2, 4 * v + 2, 4 * v + 1, 4 * v + 1, 4 * v + 1, 4 * v + 1,
        4 * v + 1, 4 * v + 1, 4 * v + 1, 4 * v + 1, 4 * v, 4 * v, 4 * v, 4 * v, 4 * v, 4 * v, 4 * v, 4 * v);
    u->sc[v] = _mm512_permutexvar_epi16(idx, sc512);
  }
  u->corr = _mm512_zextsi256_si512(_mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32)));
  u->d = half_at(blk + 208);
}

INLINE void q6_k_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  (void)NA;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  __m512 acc[4][2][2];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) acc[i][j][0] = acc[i][j][1] = _mm512_setzero_ps();
  for (size_t b = 0; b < kb; b++) {
    struct q6_k_w u[2];
    for (int j = 0; j < NJ; j++) {
      prefetch_w(wr[j] + 210 * b, 210);
      q6_k_unpack(wr[j] + 210 * b, &u[j]);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const int8_t *xb = (const int8_t *)xr + 256 * b;
      const float dx = spr_x8_k_plain_d(xr, kb)[b];
      const __m512i bs =
          _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(spr_x8_k_plain_bsums(xr, kb) + 16 * b)));
      __m512i xv[4];
      for (int v = 0; v < 4; v++) xv[v] = _mm512_load_si512(xb + 64 * v);
      for (int j = 0; j < NJ; j++) {
        __m512i t0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), bs, u[j].corr); /* -32 sum sc_g bsum_g */
        __m512i t1 = _mm512_setzero_si512();
        t0 = _mm512_dpwssd_epi32(t0, _mm512_maddubs_epi16(u[j].q[0], xv[0]), u[j].sc[0]);
        t1 = _mm512_dpwssd_epi32(t1, _mm512_maddubs_epi16(u[j].q[1], xv[1]), u[j].sc[1]);
        t0 = _mm512_dpwssd_epi32(t0, _mm512_maddubs_epi16(u[j].q[2], xv[2]), u[j].sc[2]);
        t1 = _mm512_dpwssd_epi32(t1, _mm512_maddubs_epi16(u[j].q[3], xv[3]), u[j].sc[3]);
        const __m512 f = _mm512_cvtepi32_ps(_mm512_add_epi32(t0, t1));
        acc[i][j][0] = _mm512_fmadd_ps(f, _mm512_set1_ps(u[j].d * dx), acc[i][j][0]);
      }
    }
  }
  store_tile(MR, NJ < (int)nr ? (size_t)NJ : nr, 1, acc, bias, c, ldc);
}

DEFINE_UKERNEL(spr_q6_k_gemm_ukernel_4x2__avx512vnni, q6_k_tile)
