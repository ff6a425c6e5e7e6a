/* ops/gemm/qgemm_packed_avx512vnni.c — AVX-512 VNNI GEMM for M > 1 with
 * Q8_0 / Q4_0 weights over packed weight panels (contracts in qgemm.h,
 * struct spr_qgemm_packed).
 *
 * The driver packs a panel of up to 32 weight rows (output columns) once per
 * task into the thread's scratch and runs every row tile of the activations
 * past it, so the weights are unpacked once per panel instead of once per
 * tile. vpdpbusd multiplies unsigned by signed bytes: the activations are
 * made the unsigned operand (q + 128) and the weights stay signed (Q8_0: q,
 * Q4_0: nibble - 8), so sum (q + 128) w = sum q w + 128 sum w, and the
 * correction -128 sum w is a property of the weights, computed once when
 * the panel is packed. Panel layout, per 32-value block b (1280 bytes):
 *   [   0,1024)  8 quads q: 128 bytes = 32 columns x 4 bytes: column c's
 *                signed codes of values 4q..4q+3; columns 0..15 in the
 *                first 64 bytes
 *   [1024,1152)  f32 weight scale of columns 0..31
 *   [1152,1280)  i32 -128 * (sum of column c's 32 codes), columns 0..31
 * Columns past the panel's rows repeat its first row (their sums are never
 * stored).
 *
 * Activations (per row, quantized per 32-value block to the int8 values
 * and fp16-rounded scale of ggml's reference quantizer, vectorized):
 *   u8 qs[kb][32] = q + 128 | f32 d[kb]   (sections 64-aligned)
 * The int32 accumulator of a block starts at the correction, takes 8
 * vpdpbusd (4 values of the row broadcast against the 32 columns' 4 codes
 * each), so it holds the exact integer dot product of the block; one
 * conversion, one multiply by the column scales and one FMA by the row's
 * scale finish it in f32.
 *
 * Tile: up to 6 rows x 32 columns, 12 int32 + 12 f32 accumulators. */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__) || !defined(__AVX512BW__)
#error "this file needs -mavx512f -mavx512bw -mavx512vnni"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/gemm/qgemm.h"

#define INLINE static inline __attribute__((always_inline))

#define PNV SPR_QX_0_PGEMM_NV /* zmm vectors (16 columns each) per panel */
#define PMR SPR_QX_0_PGEMM_MR /* rows per tile */
enum { PNR = 16 * PNV, WQ = 64 * PNV, WBLK = 10 * 64 * PNV, WD = 8 * WQ, WC = 9 * WQ };

static size_t x_qs_bytes(size_t kb) {
  return spr_align_up(kb * 32, 64);
}
static size_t x_d_bytes(size_t kb) {
  return spr_align_up(kb * 4, 64);
}

size_t spr_x8_0_xbytes_packed__avx512vnni(size_t kb) {
  return x_qs_bytes(kb) + x_d_bytes(kb);
}

/* roundf (half away from zero) of 16 values of magnitude < 2^23, as int32:
 * truncate v + copysign(0.5 - 2^-25, v) (exact: the sum rounds up to the
 * next integer exactly when v's fraction is >= 0.5; checked against roundf
 * for every float below 256 in magnitude). */
INLINE __m512i roundf_epi32(__m512 v) {
  const __m512i half = _mm512_castps_si512(_mm512_set1_ps(0x1.fffffep-2f));
  const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
  /* (v & sign) | half */
  const __m512 h = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(v), sign, half, 0xEA));
  return _mm512_cvttps_epi32(_mm512_add_ps(v, h));
}

/* One block of 32 values as ggml's reference quantizer makes it (qs + 128
 * stored as bytes, d the f32 value of the fp16 scale). */
INLINE void quantize_block_u8(const float *x, uint8_t *qs, float *d) {
  const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
  if (_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) != 0) { /* a NaN: the reference's order-dependent scan */
    int8_t q[32];
    int32_t s;
    spr_x8_0_quantize_block(x, q, d, &s);
    for (int t = 0; t < 32; t++) qs[t] = (uint8_t)(q[t] ^ 0x80);
    return;
  }
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const float dd = amax / 127;
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  const __m512 vid = _mm512_set1_ps(id);
  const __m512i flip = _mm512_set1_epi32(128);
  /* |x * id| <= 127 (+ rounding): in range; + 128 then the low byte */
  const __m128i q0 = _mm512_cvtepi32_epi8(_mm512_add_epi32(roundf_epi32(_mm512_mul_ps(a, vid)), flip));
  const __m128i q1 = _mm512_cvtepi32_epi8(_mm512_add_epi32(roundf_epi32(_mm512_mul_ps(b, vid)), flip));
  _mm_storeu_si128((__m128i *)(void *)qs, q0);
  _mm_storeu_si128((__m128i *)(void *)(qs + 16), q1);
  *d = _cvtsh_ss(_cvtss_sh(dd, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* Lane j = the largest lane of m[j], j < 16 (a transposing max tree). */
INLINE __m512 max16(const __m512 m[16]) {
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; i++) /* [m2i folded to 8 lanes | m2i+1 folded] */
    a[i] = _mm512_max_ps(_mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; i++) /* quarter k: block 4i + k folded to 4 lanes */
    b[i] = _mm512_max_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; i++) /* quarter q: [b2i 2 lanes, b2i+1 2 lanes] interleaved */
    c[i] = _mm512_max_ps(_mm512_unpacklo_ps(b[2 * i], b[2 * i + 1]), _mm512_unpackhi_ps(b[2 * i], b[2 * i + 1]));
  const __m512 r = _mm512_max_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(c[0]), _mm512_castps_pd(c[1]))),
                                 _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(c[0]), _mm512_castps_pd(c[1]))));
  /* lane 4q + k holds block 4k + q */
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
}

/* n <= 16 blocks (block j at xs[j], its codes to qs[j], its scale to
 * *ds[j]): the values of quantize_block_u8 with the per-block scalar work
 * (max, the two divisions, the fp16 rounding) done 16 blocks at a time. */
INLINE void quantize16_u8(int n, const float *const xs[16], uint8_t *const qs[16], float *const ds[16]) {
  __m512 m[16];
  __mmask16 nan = 0;
  for (int j = 0; j < 16; j++) {
    if (j >= n) {
      m[j] = _mm512_setzero_ps();
      continue;
    }
    const __m512 a = _mm512_loadu_ps(xs[j]), b = _mm512_loadu_ps(xs[j] + 16);
    nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
    m[j] = _mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b));
  }
  if (nan) { /* the reference's order-dependent scan, block by block */
    for (int j = 0; j < n; j++) quantize_block_u8(xs[j], qs[j], ds[j]);
    return;
  }
  const __m512 dd = _mm512_div_ps(max16(m), _mm512_set1_ps(127.0f));
  const __mmask16 nz = _mm512_cmp_ps_mask(dd, _mm512_setzero_ps(), _CMP_NEQ_OQ);
  float id[16], d[16];
  _mm512_storeu_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), dd));
  _mm512_storeu_ps(d, _mm512_cvtph_ps(_mm512_cvtps_ph(dd, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  const __m512i flip = _mm512_set1_epi32(128);
  for (int j = 0; j < n; j++) {
    const __m512 vid = _mm512_set1_ps(id[j]);
    const __m512 a = _mm512_loadu_ps(xs[j]), b = _mm512_loadu_ps(xs[j] + 16);
    const __m128i q0 = _mm512_cvtepi32_epi8(_mm512_add_epi32(roundf_epi32(_mm512_mul_ps(a, vid)), flip));
    const __m128i q1 = _mm512_cvtepi32_epi8(_mm512_add_epi32(roundf_epi32(_mm512_mul_ps(b, vid)), flip));
    _mm_storeu_si128((__m128i *)(void *)qs[j], q0);
    _mm_storeu_si128((__m128i *)(void *)(qs[j] + 16), q1);
    *ds[j] = d[j];
  }
}

/* Blocks [b0, b1) of rows [0, rows) (x rows ldx floats apart, packed rows
 * xrow bytes apart), 16 blocks at a time across row ends. */
INLINE void packx_blocks(size_t kb, size_t b0, size_t b1, size_t rows, const float *x, size_t ldx, uint8_t *xq,
                         size_t xrow) {
  const size_t per_row = b1 - b0, total = rows * per_row, qsb = x_qs_bytes(kb);
  const float *xs[16];
  uint8_t *qs[16];
  float *ds[16];
  int n = 0;
  for (size_t g = 0; g < total; g++) {
    const size_t r = g / per_row, b = b0 + g % per_row;
    uint8_t *row = xq + r * xrow;
    xs[n] = x + r * ldx + 32 * b;
    qs[n] = row + 32 * b;
    ds[n] = (float *)(void *)(row + qsb) + b;
    if (++n == 16) {
      quantize16_u8(16, xs, qs, ds);
      n = 0;
    }
  }
  if (n > 0) quantize16_u8(n, xs, qs, ds);
}

void spr_x8_0_packx_u8_packed__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  packx_blocks(kb, b0, b1, 1, x, 0, xq, 0);
}

void spr_x8_0_packx_rows_u8_packed__avx512vnni(size_t kb, size_t rows, const float *x, size_t ldx, void *xq,
                                               size_t xrow) {
  packx_blocks(kb, 0, kb, rows, x, ldx, xq, xrow);
}

size_t spr_q8_0_packw_bytes__avx512vnni(size_t kb) {
  return kb * WBLK;
}

/* The fp16 scales of block b (at byte bo of it) of the 16 rows r[], as f32. */
INLINE __m512 row_scales(const uint8_t *const r[16], size_t bo) {
  uint16_t h[16];
  for (int c = 0; c < 16; c++) memcpy(&h[c], r[c] + bo, 2);
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h));
}

/* Packing reads 16 weight rows side by side (16 streams the hardware
 * prefetchers follow poorly): prefetch each this many bytes ahead. Never
 * dereferenced, so addresses past the weights are harmless. */
#define PW_AHEAD 256

/* The 16 weight rows of half h of the panel (rows past nr repeat row 0). */
INLINE void row_ptrs(const uint8_t *w, size_t ldw, size_t nr, int h, const uint8_t *r[16]) {
  for (int c = 0; c < 16; c++) {
    const size_t j = 16 * (size_t)h + (size_t)c;
    r[c] = w + (j < nr ? j : 0) * ldw;
  }
}

void spr_q8_0_packw__avx512vnni(size_t kb, size_t nr, const void *w, size_t ldw, void *wp) {
  const uint8_t *wb = w;
  uint8_t *out = wp;
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int h = 0; h < PNV; h++) {
    const uint8_t *r[16];
    row_ptrs(wb, ldw, nr, h, r);
    for (size_t b = 0; b < kb; b++) {
      /* z[j] = [codes of row j | codes of row j + 8] (8 dwords each); transpose the two 8x8 dword matrices */
      __m512i z[8], a[8], t[8];
      for (int j = 0; j < 16; j++) _mm_prefetch((const char *)(r[j] + 34 * b + PW_AHEAD), _MM_HINT_T0);
      for (int j = 0; j < 8; j++)
        z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(r[j] + 34 * b + 2))),
                                  _mm256_loadu_si256((const __m256i *)(r[j + 8] + 34 * b + 2)), 1);
      for (int j = 0; j < 8; j += 2) {
        a[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
        a[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
      }
      for (int g = 0; g < 2; g++) { /* rows 4g..4g+3: t[4g + i] lane L = their dword 4(L%2) + i */
        t[4 * g + 0] = _mm512_unpacklo_epi64(a[4 * g], a[4 * g + 2]);
        t[4 * g + 1] = _mm512_unpackhi_epi64(a[4 * g], a[4 * g + 2]);
        t[4 * g + 2] = _mm512_unpacklo_epi64(a[4 * g + 1], a[4 * g + 3]);
        t[4 * g + 3] = _mm512_unpackhi_epi64(a[4 * g + 1], a[4 * g + 3]);
      }
      uint8_t *o = out + WBLK * b + 64 * h;
      __m512i ws = _mm512_setzero_si512();
      for (int i = 0; i < 4; i++) {
        const __m512i v0 = _mm512_permutex2var_epi64(t[i], lo, t[4 + i]),
                      v1 = _mm512_permutex2var_epi64(t[i], hi, t[4 + i]);
        _mm512_store_si512(o + WQ * i, v0);
        _mm512_store_si512(o + WQ * (i + 4), v1);
        ws = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ws, ones, v0), ones, v1);
      }
      _mm512_store_ps(out + WBLK * b + WD + 64 * h, row_scales(r, 34 * b));
      _mm512_store_si512(out + WBLK * b + WC + 64 * h, _mm512_mullo_epi32(ws, _mm512_set1_epi32(-128)));
    }
  }
}

void spr_q4_0_packw__avx512vnni(size_t kb, size_t nr, const void *w, size_t ldw, void *wp) {
  const uint8_t *wb = w;
  uint8_t *out = wp;
  const __m512i m4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8), ones = _mm512_set1_epi8(1);
  for (int h = 0; h < PNV; h++) {
    const uint8_t *r[16];
    row_ptrs(wb, ldw, nr, h, r);
    for (size_t b = 0; b < kb; b++) {
      /* z[j] lane L = the 16 code bytes of row j + 4L; a 4x4 dword transpose per lane gives
       * t[q] = dword q (code bytes 4q..4q+3) of rows 0..15 */
      __m512i z[4], a[4], t[4];
      for (int j = 0; j < 16; j++) _mm_prefetch((const char *)(r[j] + 18 * b + PW_AHEAD), _MM_HINT_T0);
      for (int j = 0; j < 4; j++) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(r[j] + 18 * b + 2)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(r[j + 4] + 18 * b + 2)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(r[j + 8] + 18 * b + 2)), 2);
        z[j] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(r[j + 12] + 18 * b + 2)), 3);
      }
      a[0] = _mm512_unpacklo_epi32(z[0], z[1]), a[1] = _mm512_unpackhi_epi32(z[0], z[1]);
      a[2] = _mm512_unpacklo_epi32(z[2], z[3]), a[3] = _mm512_unpackhi_epi32(z[2], z[3]);
      t[0] = _mm512_unpacklo_epi64(a[0], a[2]), t[1] = _mm512_unpackhi_epi64(a[0], a[2]);
      t[2] = _mm512_unpacklo_epi64(a[1], a[3]), t[3] = _mm512_unpackhi_epi64(a[1], a[3]);
      uint8_t *o = out + WBLK * b + 64 * h;
      __m512i ws = _mm512_setzero_si512();
      for (int q = 0; q < 4; q++) { /* low nibbles: values 4q..; high nibbles: values 16 + 4q.. (minus 8) */
        const __m512i v0 = _mm512_sub_epi8(_mm512_and_si512(t[q], m4), eight);
        const __m512i v1 = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(t[q], 4), m4), eight);
        _mm512_store_si512(o + WQ * q, v0);
        _mm512_store_si512(o + WQ * (q + 4), v1);
        ws = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ws, ones, v0), ones, v1);
      }
      _mm512_store_ps(out + WBLK * b + WD + 64 * h, row_scales(r, 18 * b));
      _mm512_store_si512(out + WBLK * b + WC + 64 * h, _mm512_mullo_epi32(ws, _mm512_set1_epi32(-128)));
    }
  }
}

/* MR rows x PNR columns over all kb blocks. */
INLINE void tile(const int MR, size_t kb, size_t nr, const uint8_t *wp, const uint8_t *xq, size_t ldx,
                 const float *bias, float *c, size_t ldc) {
  __m512 acc[PMR][PNV];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < PNV; v++) acc[i][v] = _mm512_setzero_ps();
  const size_t qsb = x_qs_bytes(kb);
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *wb = wp + WBLK * b;
    __m512i ai[PMR][PNV];
    for (int v = 0; v < PNV; v++) {
      const __m512i cv = _mm512_load_si512(wb + WC + 64 * v);
      for (int i = 0; i < MR; i++) ai[i][v] = cv;
    }
    _mm_prefetch((const char *)(wb + 4 * WBLK), _MM_HINT_T0);
    for (int q = 0; q < 8; q++) {
      __m512i wv[PNV];
      for (int v = 0; v < PNV; v++) wv[v] = _mm512_load_si512(wb + WQ * q + 64 * v);
      for (int i = 0; i < MR; i++) {
        int32_t xv;
        memcpy(&xv, xq + (size_t)i * ldx + 32 * b + 4 * q, 4);
        const __m512i xb = _mm512_set1_epi32(xv);
        for (int v = 0; v < PNV; v++) ai[i][v] = _mm512_dpbusd_epi32(ai[i][v], xb, wv[v]);
      }
    }
    __m512 dw[PNV];
    for (int v = 0; v < PNV; v++) dw[v] = _mm512_load_ps(wb + WD + 64 * v);
    for (int i = 0; i < MR; i++) {
      const float *dx = (const float *)(const void *)(xq + (size_t)i * ldx + qsb);
      const __m512 s = _mm512_set1_ps(dx[b]);
      for (int v = 0; v < PNV; v++)
        acc[i][v] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ai[i][v]), dw[v]), s, acc[i][v]);
    }
  }
  __mmask16 m[PNV];
  __m512 bv[PNV];
  for (int v = 0; v < PNV; v++) {
    const size_t lo = 16 * (size_t)v;
    m[v] = nr >= lo + 16 ? (__mmask16)0xFFFF : nr <= lo ? 0 : (__mmask16)((1u << (nr - lo)) - 1);
    bv[v] = bias != NULL ? _mm512_maskz_loadu_ps(m[v], bias + lo) : _mm512_setzero_ps();
  }
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < PNV; v++)
      _mm512_mask_storeu_ps(c + (size_t)i * ldc + 16 * v, m[v], _mm512_add_ps(acc[i][v], bv[v]));
}

void spr_qx_0_pgemm_ukernel_6x32__avx512vnni(size_t kb, size_t mr, size_t nr, const void *wp, const void *xq,
                                             size_t ldx, const float *bias, float *c, size_t ldc) {
  switch (mr) {
    case 1:
      tile(1, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
#if PMR >= 2
    case 2:
      tile(2, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
#endif
#if PMR >= 3
    case 3:
      tile(3, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
#endif
#if PMR >= 4
    case 4:
      tile(4, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
#endif
#if PMR >= 5
    case 5:
      tile(5, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
#endif
#if PMR >= 6
    case 6:
      tile(6, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
#endif
    default:
      tile(PMR, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
  }
}
