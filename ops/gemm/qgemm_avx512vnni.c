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
 * takes 8 blocks (144 bytes) and Q8_0 4 blocks (136 bytes) per step from
 * four overlapping loads and gathers their code bytes and fp16 scales with
 * vpermt2w so that each block owns whole int32 lanes (2 per Q4_0 block, 4
 * per Q8_0 block): all the dpbusd of a step accumulate into one vector and a
 * single int->f32 conversion and FMA (by the per-lane product of the two
 * block scales, the activation scales stored per lane by the packer) finish
 * it. The activation packers lay the int8 values out to match (see each
 * packer). Loads that could pass the end of the weights are masked.
 *
 * Decode (mr = 1, nr = a whole block of weight rows) is memory bound: it
 * walks the weight rows one after the other (one sequential stream; tiles of
 * rows would interleave several short ones), prefetches QPF bytes ahead into
 * L2 in software, gives each output two accumulators so the per-step FMAs do
 * not form one chain, and reduces the row sums 8 at a time. On Zen 4 most
 * zmm operations issue once per cycle (bitwise ones twice): the Q4_0 step is
 * 17 of them for 8 blocks (it was 21 with 4 lanes per block). */
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
#define QPF 12288
#endif
#ifndef QPF_HINT
#define QPF_HINT _MM_HINT_T1
#endif
/* Software prefetch into L2 of the weight bytes QPF ahead of p (the weights
 * stream from DRAM in decode; rows are contiguous, so this runs into the
 * next rows, which are the next ones a task computes). Into L2, not L1: L1
 * prefetches that far ahead occupy its few miss buffers, while L2 ones keep
 * many lines in flight (measured on Zen 4, one thread: 0.78 ns per Q4_0
 * block with L2 prefetch 8-16 KiB ahead, 1.0 ns with L1 prefetch 4 KiB
 * ahead or none). Never dereferenced, so an address past the end of the
 * weights is harmless. A second prefetch, into L1, QPF0 bytes ahead pulls
 * the lines from L2 before the loads reach them: the loop's demand loads
 * otherwise wait on L2 with few misses in flight (2026-11-30, TinyLlama-shape
 * Q4_0 decode, 2 threads, dense steps alternating with and without it in one
 * process: 32.8-36.1 -> 37.6-42.3 tok/s, best at 2 KiB among 1, 2 and 4 KiB;
 * `sparrow bench` decode alternating binaries 37.4-39.8 -> 39.8-44.2 tok/s). */
#ifndef QPF0
#define QPF0 2048
#endif
INLINE void prefetch_w(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)((uintptr_t)p + QPF + off), QPF_HINT);
  if (QPF0)
    for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)((uintptr_t)p + QPF0 + off), _MM_HINT_T0);
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

/* store_tile for one accumulator per output. */
INLINE void store_tile2(int mr, size_t nr, __m512 acc[4][2], const float *bias, float *c, size_t ldc) {
  __m512 a[4][2][2];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) a[i][j][0] = a[i][j][1] = acc[i][j];
  store_tile(mr, nr, 1, a, bias, c, ldc);
}

/* c[j0 + t] = sum of the lanes of v[t] (+ bias[j0 + t]) for t < n (<= 8);
 * v[n..7] are clobbered. */
INLINE void store_sums(__m512 v[8], size_t j0, size_t n, const float *bias, float *c) {
  for (size_t t = n; t < 8; t++) v[t] = _mm512_setzero_ps();
  float r[8];
  _mm256_storeu_ps(r, reduce8(v));
  for (size_t t = 0; t < n; t++) c[j0 + t] = r[t] + (bias != NULL ? bias[j0 + t] : 0.0f);
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
/* Two int32 lanes per block. A group of 8 weight blocks (144 bytes) is read
 * with four loads, L0 = bytes [0, 64), L1 = [72, 136), L2 = [8, 72) and
 * L3 = [80, 144) of the group; one vpermt2w index gathers the code bytes
 * 0..7 of block b (from L0|L1) into qword b of A and, applied to L2|L3,
 * bytes 8..15 into qword b of B; a second one puts the fp16 scale of block b
 * into words 2b and 2b+1. The four dpbusd (low and high nibbles of A and B)
 * all accumulate into the same 16 lanes, lane 2b + e holding 16 products of
 * block b, so one int->f32 conversion and one FMA (by the per-lane product
 * of the two block scales) finish 8 blocks.
 *
 * Packed activations, per group of 8 blocks (384 bytes; padding blocks zero):
 *   [  0, 64)  x_b[0..7]   at 8b    (meets the low nibbles of A)
 *   [ 64,128)  x_b[16..23]          (high nibbles of A)
 *   [128,192)  x_b[8..15]           (low nibbles of B)
 *   [192,256)  x_b[24..31]          (high nibbles of B)
 *   [256,320)  i32 corr: lane 2b + e = -8 * the sum of the 16 x_b of lane 2b + e
 *              (e = 0: x_b[0..3, 8..11, 16..19, 24..27]; e = 1: the others)
 *   [320,384)  f32 d_b at lanes 2b and 2b+1 */

enum { Q4_0_XG = 384 };

static size_t kb8_of(size_t kb) {
  return (kb + 7) / 8 * 8;
}

/* Decode's flat walk. The rows of a weight matrix are contiguous, so a GEMV
 * can read all of a call's rows as one run of 8-block groups that cross row
 * ends, instead of padding every row to a multiple of 8 blocks: at K = 576
 * (SmolLM, 18 blocks) a row otherwise costs 3 groups of work for 2.25 of
 * weights. The activation blocks such a run meets repeat every
 * P = kb / gcd(kb, 8) groups; the packer appends those P groups after the
 * row's ordinary ones (slot i of flat group h holds x block (8h + i) % kb).
 * Only for kb >= 8 (a group then holds at most one row end) and kb % 8 != 0,
 * and while the P groups stay small. */
enum { Q4_0_FLAT_MAX = 32 };

static size_t q4_0_flat_period(size_t kb) {
  if (kb < 8 || kb % 8 == 0) return 0;
  const size_t p = kb / (kb % 4 == 0 ? 4 : kb % 2 == 0 ? 2 : 1);
  return p <= Q4_0_FLAT_MAX ? p : 0;
}

size_t spr_x8_0_xbytes_q4_0__avx512vnni(size_t kb) {
  return (kb8_of(kb) / 8 + q4_0_flat_period(kb)) * Q4_0_XG;
}

/* u[l] = sum of qs[4l..4l+3] + qs[16+4l..16+4l+3], l < 4 (one block). */
INLINE __m128i quad_sums(const int8_t *qs) {
  const __m128i ones = _mm_set1_epi8(1);
  const __m128i t = _mm_dpbusd_epi32(_mm_setzero_si128(), ones, _mm_loadu_si128((const __m128i *)(const void *)qs));
  return _mm_dpbusd_epi32(t, ones, _mm_loadu_si128((const __m128i *)(const void *)(qs + 16)));
}

/* Block of 32 codes qs (scale d, quad sums s0/s1) into slot e of group g. */
static void q4_0_put_block(uint8_t *g, size_t e, const int8_t *qs, float d, int32_t s0, int32_t s1) {
  memcpy(g + 8 * e, qs, 8);
  memcpy(g + 64 + 8 * e, qs + 16, 8);
  memcpy(g + 128 + 8 * e, qs + 8, 8);
  memcpy(g + 192 + 8 * e, qs + 24, 8);
  int32_t *corr = (int32_t *)(void *)(g + 256);
  float *dx = (float *)(void *)(g + 320);
  corr[2 * e] = -8 * s0, corr[2 * e + 1] = -8 * s1;
  dx[2 * e] = dx[2 * e + 1] = d;
}

void spr_x8_0_packx_q4_0__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  uint8_t *row = xq;
  const size_t kb8 = kb8_of(kb), flat = q4_0_flat_period(kb);
  for (size_t b = b0; b < b1; b++) {
    int8_t qs[32];
    int32_t s, s0, s1;
    float d;
    spr_x8_0_quantize_block__avx512vnni(x + 32 * b, qs, &d, &s);
    (void)s;
    int32_t u[4];
    _mm_storeu_si128((__m128i *)(void *)u, quad_sums(qs));
    s0 = u[0] + u[2], s1 = u[1] + u[3];
    q4_0_put_block(row + b / 8 * Q4_0_XG, b % 8, qs, d, s0, s1);
    /* the flat groups' slots that hold block b: G = b + t kb < 8P */
    for (size_t gi = b; gi < 8 * flat; gi += kb)
      q4_0_put_block(row + (kb8 / 8 + gi / 8) * Q4_0_XG, gi % 8, qs, d, s0, s1);
  }
  if (b1 == kb) {
    for (size_t b = kb; b < kb8; b++) {
      uint8_t *g = row + b / 8 * Q4_0_XG;
      const size_t e = b % 8;
      for (int s = 0; s < 6; s++) memset(g + 64 * s + 8 * e, 0, 8);
    }
  }
}

/* Word indices into two concatenated zmm (64 words) for vpermt2w. */
static const int16_t k_q4_0_idx[2][32] = {
    /* code bytes 0..7 of block b: words 9b+1..9b+4 of L0 (b < 4), of L1 at 9b-36+1 (b >= 4);
     * bytes 8..15 at the same words of L2|L3 */
    {1,  2,  3,  4,  10, 11, 12, 13, 19, 20, 21, 22, 28, 29, 30, 31,
     33, 34, 35, 36, 42, 43, 44, 45, 51, 52, 53, 54, 60, 61, 62, 63},
    /* fp16 scale of block b (word 9b of L0, 9b-36 of L1) at words 2b, 2b+1 */
    {0, 0, 9, 9, 18, 18, 27, 27, 32, 32, 41, 41, 50, 50, 59, 59, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

struct q4_0_w {
  __m512i alo, ahi, blo, bhi;
  __m512 d; /* the weight scales, per lane */
};

/* One group of 8 blocks at p; TAIL: only `bytes` (< 144) are weights. */
INLINE void q4_0_unpack(const uint8_t *p, const int TAIL, size_t bytes, const __m512i *idx, struct q4_0_w *u) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512i l0, l1, l2, l3;
  if (TAIL) {
    l0 = load_bytes(p, clamp64(bytes, 0)), l1 = load_bytes(p + 72, clamp64(bytes, 72));
    l2 = load_bytes(p + 8, clamp64(bytes, 8)), l3 = load_bytes(p + 80, clamp64(bytes, 80));
  } else {
    l0 = _mm512_loadu_si512(p), l1 = _mm512_loadu_si512(p + 72);
    l2 = _mm512_loadu_si512(p + 8), l3 = _mm512_loadu_si512(p + 80);
  }
  const __m512i a = _mm512_permutex2var_epi16(l0, idx[0], l1), b = _mm512_permutex2var_epi16(l2, idx[0], l3);
  u->d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(l0, idx[1], l1)));
  u->alo = _mm512_and_si512(a, m4);
  u->ahi = _mm512_and_si512(_mm512_srli_epi16(a, 4), m4);
  u->blo = _mm512_and_si512(b, m4);
  u->bhi = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
}

/* The 16 lanes of one group: corr + the four nibble dot products (exact). */
INLINE __m512i q4_0_dot(const struct q4_0_w *u, const uint8_t *xg) {
  __m512i t = _mm512_load_si512(xg + 256);
  t = _mm512_dpbusd_epi32(t, u->alo, _mm512_load_si512(xg));
  t = _mm512_dpbusd_epi32(t, u->ahi, _mm512_load_si512(xg + 64));
  t = _mm512_dpbusd_epi32(t, u->blo, _mm512_load_si512(xg + 128));
  return _mm512_dpbusd_epi32(t, u->bhi, _mm512_load_si512(xg + 192));
}

INLINE __m512 q4_0_fma(const struct q4_0_w *u, const uint8_t *xg, __m512 acc) {
  const __m512 s = _mm512_mul_ps(u->d, _mm512_load_ps((const float *)(const void *)(xg + 320)));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_0_dot(u, xg)), s, acc);
}

/* MR (2..4) activation rows x 2 weight rows (row 1 = row 0 when nr == 1). */
INLINE void q4_0_tile_group(const int MR, const int TAIL, size_t g, size_t bytes, const uint8_t *const *wr,
                            const uint8_t *xq, size_t ldx, const __m512i *idx, __m512 acc[4][2]) {
  struct q4_0_w u[2];
  for (int j = 0; j < 2; j++) {
    if (!TAIL) prefetch_w(wr[j] + 144 * g, 144);
    q4_0_unpack(wr[j] + 144 * g, TAIL, bytes, idx, &u[j]);
  }
  for (int i = 0; i < MR; i++) {
    const uint8_t *xg = xq + (size_t)i * ldx + Q4_0_XG * g;
    for (int j = 0; j < 2; j++) acc[i][j] = q4_0_fma(&u[j], xg, acc[i][j]);
  }
}

INLINE void q4_0_tile(const int MR, size_t kb, size_t nr, const uint8_t *w, size_t ldw, const uint8_t *xq, size_t ldx,
                      const float *bias, float *c, size_t ldc) {
  const size_t full = kb / 8;
  const uint8_t *wr[2] = {w, nr > 1 ? w + ldw : w};
  __m512i idx[2];
  for (int t = 0; t < 2; t++) idx[t] = _mm512_loadu_si512(k_q4_0_idx[t]);
  __m512 acc[4][2];
  for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  size_t g = 0;
  for (; g < full; g++) q4_0_tile_group(MR, 0, g, 144, wr, xq, ldx, idx, acc);
  if (kb % 8) q4_0_tile_group(MR, 1, g, kb * 18 - 144 * g, wr, xq, ldx, idx, acc);
  store_tile2(MR, nr < 2 ? nr : 2, acc, bias, c, ldc);
}

/* Decode: nr weight rows one after the other (one sequential stream), two
 * accumulators per row (alternate groups), row sums reduced 8 at a time. */
INLINE void q4_0_gemv(size_t kb, size_t nr, const uint8_t *w, size_t ldw, const uint8_t *xq, const float *bias,
                      float *c) {
  const size_t full = kb / 8, groups = kb8_of(kb) / 8;
  __m512i idx[2];
  for (int t = 0; t < 2; t++) idx[t] = _mm512_loadu_si512(k_q4_0_idx[t]);
  __m512 sums[8];
  for (size_t j = 0; j < nr; j++) {
    const uint8_t *wr = w + j * ldw;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t g = 0;
    for (; g + 2 <= full; g += 2) {
      struct q4_0_w u;
      prefetch_w(wr + 144 * g, 288);
      q4_0_unpack(wr + 144 * g, 0, 144, idx, &u);
      a0 = q4_0_fma(&u, xq + Q4_0_XG * g, a0);
      q4_0_unpack(wr + 144 * (g + 1), 0, 144, idx, &u);
      a1 = q4_0_fma(&u, xq + Q4_0_XG * (g + 1), a1);
    }
    for (; g < groups; g++) {
      struct q4_0_w u;
      if (g < full) {
        prefetch_w(wr + 144 * g, 144);
        q4_0_unpack(wr + 144 * g, 0, 144, idx, &u);
      } else {
        q4_0_unpack(wr + 144 * g, 1, kb * 18 - 144 * g, idx, &u);
      }
      a0 = q4_0_fma(&u, xq + Q4_0_XG * g, a0);
    }
    sums[j % 8] = _mm512_add_ps(a0, a1);
    if (j % 8 == 7 || j + 1 == nr) store_sums(sums, j / 8 * 8, j % 8 + 1, bias, c);
  }
}

/* Decode over contiguous rows (see q4_0_flat_period): one run of groups; a
 * group that holds a row end adds its first 2e lanes (e blocks) to the
 * ending row and starts the next row with the rest. */
INLINE void q4_0_gemv_flat(size_t kb, size_t period, size_t nr, const uint8_t *w, const uint8_t *xf, const float *bias,
                           float *c) {
  __m512i idx[2];
  for (int t = 0; t < 2; t++) idx[t] = _mm512_loadu_si512(k_q4_0_idx[t]);
  const size_t total = nr * kb, groups = (total + 7) / 8;
  __m512 sums[8], acc = _mm512_setzero_ps();
  size_t row = 0, row_end = kb, hp = 0;
  for (size_t h = 0; h < groups; h++) {
    const size_t g0 = 8 * h, left = (total - g0) * 18;
    struct q4_0_w u;
    if (left >= 144) {
      prefetch_w(w + 144 * h, 144);
      q4_0_unpack(w + 144 * h, 0, 144, idx, &u);
    } else {
      q4_0_unpack(w + 144 * h, 1, left, idx, &u);
    }
    const uint8_t *xg = xf + Q4_0_XG * hp;
    hp = hp + 1 == period ? 0 : hp + 1;
    const __m512 s = _mm512_mul_ps(u.d, _mm512_load_ps((const float *)(const void *)(xg + 320)));
    const __m512 f = _mm512_cvtepi32_ps(q4_0_dot(&u, xg));
    if (g0 + 8 < row_end) {
      acc = _mm512_fmadd_ps(f, s, acc);
      continue;
    }
    const __mmask16 k = (__mmask16)((1u << (2 * (row_end - g0))) - 1u);
    sums[row % 8] = _mm512_mask3_fmadd_ps(f, s, acc, k);
    if (row % 8 == 7 || row + 1 == nr) store_sums(sums, row / 8 * 8, row % 8 + 1, bias, c);
    if (++row == nr) break;
    row_end += kb;
    acc = _mm512_maskz_mul_ps((__mmask16)~k, f, s);
  }
}

void spr_q4_0_gemm_ukernel_4x2__avx512vnni(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq,
                                           size_t ldx, const float *bias, float *c, size_t ldc) {
  switch (mr) {
    case 1: {
      const size_t period = q4_0_flat_period(kb);
      if (period > 0 && nr > 1 && ldw == kb * 18)
        q4_0_gemv_flat(kb, period, nr, w, (const uint8_t *)xq + kb8_of(kb) / 8 * Q4_0_XG, bias, c);
      else
        q4_0_gemv(kb, nr, w, ldw, xq, bias, c);
      break;
    }
    case 2:
      q4_0_tile(2, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
      break;
    case 3:
      q4_0_tile(3, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
      break;
    default:
      q4_0_tile(4, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
      break;
  }
}

/* ================================ Q8_0 ======================================== */
/* Four int32 lanes per block. A group of 8 weight blocks (272 bytes) is two
 * halves of 4 blocks (136 bytes at 136h), each read with four loads,
 * L0 = [0, 64), L1 = [64, 128), L2 = [8, 72), L3 = [72, 136) of the half:
 * vpermt2w gathers the code bytes 0..15 of block b (from L0|L1) into lanes
 * 4b..4b+3 of R0 and bytes 16..31 (from L2|L3) into R1, and the fp16 scale of
 * block b into words 4b..4b+3. Codes are made unsigned for vpdpbusd by
 * q ^ 0x80 = q + 128 (the packer's correction removes 128 * sum x), both
 * dpbusd accumulate into the same lanes, and one conversion and FMA finish
 * the half.
 *
 * Packed activations, per group of 8 blocks (512 bytes; padding zero), per
 * half h at 256h (blocks 4h + b, b < 4):
 *   [  0, 64)  x[0..15] of each block at 16b
 *   [ 64,128)  x[16..31]
 *   [128,192)  i32 corr: lane 4b + l = -128 * (sum x[4l..4l+3] + sum x[16+4l..16+4l+3])
 *   [192,256)  f32 d at lanes 4b..4b+3 */

enum { Q8_0_XG = 512 };

size_t spr_x8_0_xbytes_q8_0__avx512vnni(size_t kb) {
  return kb8_of(kb) / 8 * Q8_0_XG;
}

void spr_x8_0_packx_q8_0__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  uint8_t *row = xq;
  const size_t kb8 = kb8_of(kb);
  for (size_t b = b0; b < b1; b++) {
    int8_t qs[32];
    int32_t s;
    float d;
    spr_x8_0_quantize_block__avx512vnni(x + 32 * b, qs, &d, &s);
    (void)s;
    uint8_t *hp = row + b / 8 * Q8_0_XG + 256 * (b % 8 / 4);
    const size_t e = b % 4;
    memcpy(hp + 16 * e, qs, 16);
    memcpy(hp + 64 + 16 * e, qs + 16, 16);
    _mm_storeu_si128((__m128i *)(void *)(hp + 128 + 16 * e), _mm_mullo_epi32(quad_sums(qs), _mm_set1_epi32(-128)));
    _mm_storeu_ps((float *)(void *)(hp + 192 + 16 * e), _mm_set1_ps(d));
  }
  if (b1 == kb) {
    for (size_t b = kb; b < kb8; b++) {
      uint8_t *hp = row + b / 8 * Q8_0_XG + 256 * (b % 8 / 4);
      const size_t e = b % 4;
      for (int s = 0; s < 4; s++) memset(hp + 64 * s + 16 * e, 0, 16);
    }
  }
}

static const int16_t k_q8_0_idx[3][32] = {
    /* code bytes 0..15 of block b: words 17b+1 .. 17b+8 of L0|L1 */
    {1,  2,  3,  4,  5,  6,  7,  8,  18, 19, 20, 21, 22, 23, 24, 25,
     35, 36, 37, 38, 39, 40, 41, 42, 52, 53, 54, 55, 56, 57, 58, 59},
    /* bytes 16..31: words 17b+5 .. 17b+12 of L2|L3 (L2 starts at byte 8) */
    {5,  6,  7,  8,  9,  10, 11, 12, 22, 23, 24, 25, 26, 27, 28, 29,
     39, 40, 41, 42, 43, 44, 45, 46, 56, 57, 58, 59, 60, 61, 62, 63},
    /* scale of block b (word 17b) at words 4b..4b+3 */
    {0, 0, 0, 0, 17, 17, 17, 17, 34, 34, 34, 34, 51, 51, 51, 51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

struct q8_0_w {
  __m512i r0, r1; /* codes + 128 */
  __m512 d;
};

/* One half (4 blocks) at p; TAIL: only `bytes` (< 136) are weights. */
INLINE void q8_0_unpack(const uint8_t *p, const int TAIL, size_t bytes, const __m512i *idx, struct q8_0_w *u) {
  __m512i l0, l1, l2, l3;
  if (TAIL) {
    l0 = load_bytes(p, clamp64(bytes, 0)), l1 = load_bytes(p + 64, clamp64(bytes, 64));
    l2 = load_bytes(p + 8, clamp64(bytes, 8)), l3 = load_bytes(p + 72, clamp64(bytes, 72));
  } else {
    l0 = _mm512_loadu_si512(p), l1 = _mm512_loadu_si512(p + 64);
    l2 = _mm512_loadu_si512(p + 8), l3 = _mm512_loadu_si512(p + 72);
  }
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  u->r0 = _mm512_xor_si512(_mm512_permutex2var_epi16(l0, idx[0], l1), flip);
  u->r1 = _mm512_xor_si512(_mm512_permutex2var_epi16(l2, idx[1], l3), flip);
  u->d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(l0, idx[2], l1)));
}

INLINE __m512 q8_0_fma(const struct q8_0_w *u, const uint8_t *xh, __m512 acc) {
  __m512i t = _mm512_load_si512(xh + 128);
  t = _mm512_dpbusd_epi32(t, u->r0, _mm512_load_si512(xh));
  t = _mm512_dpbusd_epi32(t, u->r1, _mm512_load_si512(xh + 64));
  const __m512 s = _mm512_mul_ps(u->d, _mm512_load_ps((const float *)(const void *)(xh + 192)));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), s, acc);
}

INLINE void q8_0_tile_half(const int MR, const int TAIL, size_t h, size_t bytes, const uint8_t *const *wr,
                           const uint8_t *xq, size_t ldx, const __m512i *idx, __m512 acc[4][2]) {
  struct q8_0_w u[2];
  for (int j = 0; j < 2; j++) {
    if (!TAIL) prefetch_w(wr[j] + 136 * h, 136);
    q8_0_unpack(wr[j] + 136 * h, TAIL, bytes, idx, &u[j]);
  }
  for (int i = 0; i < MR; i++) {
    const uint8_t *xh = xq + (size_t)i * ldx + 256 * h;
    for (int j = 0; j < 2; j++) acc[i][j] = q8_0_fma(&u[j], xh, acc[i][j]);
  }
}

INLINE void q8_0_tile(const int MR, size_t kb, size_t nr, const uint8_t *w, size_t ldw, const uint8_t *xq, size_t ldx,
                      const float *bias, float *c, size_t ldc) {
  const size_t full = kb / 4;
  const uint8_t *wr[2] = {w, nr > 1 ? w + ldw : w};
  __m512i idx[3];
  for (int t = 0; t < 3; t++) idx[t] = _mm512_loadu_si512(k_q8_0_idx[t]);
  __m512 acc[4][2];
  for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  size_t h = 0;
  for (; h < full; h++) q8_0_tile_half(MR, 0, h, 136, wr, xq, ldx, idx, acc);
  if (kb % 4) q8_0_tile_half(MR, 1, h, kb * 34 - 136 * h, wr, xq, ldx, idx, acc);
  store_tile2(MR, nr < 2 ? nr : 2, acc, bias, c, ldc);
}

INLINE void q8_0_gemv(size_t kb, size_t nr, const uint8_t *w, size_t ldw, const uint8_t *xq, const float *bias,
                      float *c) {
  const size_t halves = (kb + 3) / 4, full = kb / 4;
  __m512i idx[3];
  for (int t = 0; t < 3; t++) idx[t] = _mm512_loadu_si512(k_q8_0_idx[t]);
  __m512 sums[8];
  for (size_t j = 0; j < nr; j++) {
    const uint8_t *wr = w + j * ldw;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t h = 0;
    for (; h + 2 <= full; h += 2) {
      struct q8_0_w u;
      prefetch_w(wr + 136 * h, 272);
      q8_0_unpack(wr + 136 * h, 0, 136, idx, &u);
      a0 = q8_0_fma(&u, xq + 256 * h, a0);
      q8_0_unpack(wr + 136 * (h + 1), 0, 136, idx, &u);
      a1 = q8_0_fma(&u, xq + 256 * (h + 1), a1);
    }
    for (; h < halves; h++) {
      struct q8_0_w u;
      if (h < full) {
        prefetch_w(wr + 136 * h, 136);
        q8_0_unpack(wr + 136 * h, 0, 136, idx, &u);
      } else {
        q8_0_unpack(wr + 136 * h, 1, kb * 34 - 136 * h, idx, &u);
      }
      a0 = q8_0_fma(&u, xq + 256 * h, a0);
    }
    sums[j % 8] = _mm512_add_ps(a0, a1);
    if (j % 8 == 7 || j + 1 == nr) store_sums(sums, j / 8 * 8, j % 8 + 1, bias, c);
  }
}

void spr_q8_0_gemm_ukernel_4x2__avx512vnni(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq,
                                           size_t ldx, const float *bias, float *c, size_t ldc) {
  switch (mr) {
    case 1:
      q8_0_gemv(kb, nr, w, ldw, xq, bias, c);
      break;
    case 2:
      q8_0_tile(2, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
      break;
    case 3:
      q8_0_tile(3, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
      break;
    default:
      q8_0_tile(4, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
      break;
  }
}

/* K-quants: decode (mr = 1) walks the weight rows one after the other (one
 * sequential stream); tiles of rows share each unpacked super-block. */
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
