/* ops/gemm/qgemm_packed_avx512vnni.c — AVX-512 VNNI GEMM for M > 1 with
 * Q8_0 / Q4_0 weights over packed weight panels (contracts in qgemm.h,
 * struct spr_qgemm_packed).
 *
 * The driver packs a panel of up to 32 weight rows (output columns) once per
 * task into the thread's scratch and runs every row tile of the activations
 * past it, so the weights are unpacked once per panel instead of once per
 * tile. Panel layout, per 32-value block b of the panel (1152 bytes):
 *   [   0,1024)  8 quads q: 128 bytes = 32 columns x 4 bytes: column c's
 *                codes of values 4q..4q+3, made unsigned (Q8_0: q + 128,
 *                Q4_0: the raw nibble 0..15, as vpdpbusd wants its first
 *                operand unsigned); columns 0..15 in the first 64 bytes
 *   [1024,1152)  f32 weight scale of columns 0..31
 * Columns past the panel's rows repeat its first row (their sums are never
 * stored).
 *
 * Activations (per row, quantized per 32-value block with ggml's reference
 * quantizer's values, spr_x8_0_quantize_block__avx512vnni):
 *   i8 qs[kb][32] | f32 d[kb] | i32 corr[kb]   (sections 64-aligned)
 * with corr = -128 * sum(qs) (Q8_0) or -8 * sum(qs) (Q4_0), the term the
 * unsigned codes add: sum (q + 128) x = sum q x + 128 sum x. The int32
 * accumulator of a block starts at corr, takes 8 vpdpbusd (4 values of the
 * row broadcast against the 16 columns' 4 codes each), so it holds the
 * exact integer dot product of the block; one conversion, one multiply by
 * the column scales and one FMA by the row's scale finish it in f32.
 *
 * Tile: up to 6 rows x 32 columns, 12 int32 + 12 f32 accumulators. */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__) || !defined(__AVX512BW__)
#error "this file needs -mavx512f -mavx512bw -mavx512vnni"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/gemm/qgemm.h"

#define INLINE static inline __attribute__((always_inline))

enum { PNR = 32, PMR = 6, WBLK = 1152, QS_OFF = 0 };

static size_t x_qs_bytes(size_t kb) {
  return spr_align_up(kb * 32, 64);
}
static size_t x_d_bytes(size_t kb) {
  return spr_align_up(kb * 4, 64);
}

size_t spr_x8_0_xbytes_packed__avx512vnni(size_t kb) {
  return x_qs_bytes(kb) + 2 * x_d_bytes(kb);
}

INLINE void packx(size_t kb, size_t b0, size_t b1, const float *x, void *xq, int32_t factor) {
  int8_t *qs = xq;
  float *d = (float *)(void *)((uint8_t *)xq + x_qs_bytes(kb));
  int32_t *corr = (int32_t *)(void *)((uint8_t *)xq + x_qs_bytes(kb) + x_d_bytes(kb));
  for (size_t b = b0; b < b1; b++) {
    int32_t s;
    spr_x8_0_quantize_block__avx512vnni(x + 32 * b, qs + 32 * b, &d[b], &s);
    corr[b] = factor * s;
  }
}

void spr_x8_0_packx_q8_0_packed__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  packx(kb, b0, b1, x, xq, -128);
}

void spr_x8_0_packx_q4_0_packed__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  packx(kb, b0, b1, x, xq, -8);
}

size_t spr_q8_0_packw_bytes__avx512vnni(size_t kb) {
  return kb * WBLK;
}

/* Byte offsets of the first byte of each of the 16 weight rows c0..c0+15 of
 * the panel (rows past nr repeat row 0). */
INLINE __m512i row_offsets(size_t c0, size_t nr, size_t ldw) {
  const __m512i c = _mm512_add_epi32(_mm512_set1_epi32((int)c0),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __mmask16 valid = _mm512_cmplt_epi32_mask(c, _mm512_set1_epi32((int)nr));
  return _mm512_maskz_mullo_epi32(valid, c, _mm512_set1_epi32((int)ldw));
}

/* The fp16 scale at each offset (4 bytes read: the scale and the first two
 * code bytes, inside the block). */
INLINE __m512 gather_scales(const uint8_t *base, __m512i off) {
  const __m512i v = _mm512_i32gather_epi32(off, (const void *)base, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}

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
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int h = 0; h < 2; h++) {
    const __m512i off = row_offsets(16 * (size_t)h, nr, ldw);
    const uint8_t *r[16];
    row_ptrs(wb, ldw, nr, h, r);
    for (size_t b = 0; b < kb; b++) {
      /* z[j] = [codes of row j | codes of row j + 8] (8 dwords each); transpose the two 8x8 dword matrices */
      __m512i z[8], a[8], t[8];
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
      for (int i = 0; i < 4; i++) {
        _mm512_store_si512(o + 128 * i, _mm512_xor_si512(_mm512_permutex2var_epi64(t[i], lo, t[4 + i]), flip));
        _mm512_store_si512(o + 128 * (i + 4), _mm512_xor_si512(_mm512_permutex2var_epi64(t[i], hi, t[4 + i]), flip));
      }
      _mm512_store_ps(out + WBLK * b + 1024 + 64 * h, gather_scales(wb + 34 * b, off));
    }
  }
}

void spr_q4_0_packw__avx512vnni(size_t kb, size_t nr, const void *w, size_t ldw, void *wp) {
  const uint8_t *wb = w;
  uint8_t *out = wp;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int h = 0; h < 2; h++) {
    const __m512i off = row_offsets(16 * (size_t)h, nr, ldw);
    const uint8_t *r[16];
    row_ptrs(wb, ldw, nr, h, r);
    for (size_t b = 0; b < kb; b++) {
      /* z[j] lane L = the 16 code bytes of row j + 4L; a 4x4 dword transpose per lane gives
       * t[q] = dword q (code bytes 4q..4q+3) of rows 0..15 */
      __m512i z[4], a[4], t[4];
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
      for (int q = 0; q < 4; q++) { /* low nibbles: values 4q..; high nibbles: values 16 + 4q.. */
        _mm512_store_si512(o + 128 * q, _mm512_and_si512(t[q], m4));
        _mm512_store_si512(o + 128 * (q + 4), _mm512_and_si512(_mm512_srli_epi16(t[q], 4), m4));
      }
      _mm512_store_ps(out + WBLK * b + 1024 + 64 * h, gather_scales(wb + 18 * b, off));
    }
  }
}

/* MR rows x 32 columns over all kb blocks. */
INLINE void tile(const int MR, size_t kb, size_t nr, const uint8_t *wp, const uint8_t *xq, size_t ldx,
                 const float *bias, float *c, size_t ldc) {
  __m512 acc[PMR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const size_t qsb = x_qs_bytes(kb), db = x_d_bytes(kb);
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *wb = wp + WBLK * b;
    __m512i ai[PMR][2];
    for (int i = 0; i < MR; i++) {
      const int32_t *corr = (const int32_t *)(const void *)(xq + (size_t)i * ldx + qsb + db);
      ai[i][0] = ai[i][1] = _mm512_set1_epi32(corr[b]);
    }
    _mm_prefetch((const char *)(wb + 4 * WBLK), _MM_HINT_T0);
    for (int q = 0; q < 8; q++) {
      const __m512i w0 = _mm512_load_si512(wb + 128 * q), w1 = _mm512_load_si512(wb + 128 * q + 64);
      for (int i = 0; i < MR; i++) {
        int32_t xv;
        memcpy(&xv, xq + (size_t)i * ldx + 32 * b + 4 * q, 4);
        const __m512i xb = _mm512_set1_epi32(xv);
        ai[i][0] = _mm512_dpbusd_epi32(ai[i][0], w0, xb);
        ai[i][1] = _mm512_dpbusd_epi32(ai[i][1], w1, xb);
      }
    }
    const __m512 d0 = _mm512_load_ps(wb + 1024), d1 = _mm512_load_ps(wb + 1088);
    for (int i = 0; i < MR; i++) {
      const float *dx = (const float *)(const void *)(xq + (size_t)i * ldx + qsb);
      const __m512 s = _mm512_set1_ps(dx[b]);
      acc[i][0] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ai[i][0]), d0), s, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ai[i][1]), d1), s, acc[i][1]);
    }
  }
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
  __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  if (bias != NULL) {
    b0 = _mm512_maskz_loadu_ps(m0, bias);
    b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  for (int i = 0; i < MR; i++) {
    _mm512_mask_storeu_ps(c + (size_t)i * ldc, m0, _mm512_add_ps(acc[i][0], b0));
    _mm512_mask_storeu_ps(c + (size_t)i * ldc + 16, m1, _mm512_add_ps(acc[i][1], b1));
  }
}

void spr_qx_0_pgemm_ukernel_6x32__avx512vnni(size_t kb, size_t mr, size_t nr, const void *wp, const void *xq,
                                             size_t ldx, const float *bias, float *c, size_t ldc) {
  switch (mr) {
    case 1:
      tile(1, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    case 2:
      tile(2, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    case 3:
      tile(3, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    case 4:
      tile(4, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    case 5:
      tile(5, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    default:
      tile(6, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
  }
}
