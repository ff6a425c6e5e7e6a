/* ops/coreffn/axpy_avx512.c — axpy-over-neurons ukernels with AVX-512
 * (contract in coreffn.h). A tile of 256 outputs lives in 16 zmm
 * accumulators while the selected neurons stream past; the segment of the
 * neuron PF steps ahead is prefetched into L2 (rows are scattered; T1 beat
 * T0 on the Zen 4 host, see qrows_avx512vnni.c). Tails run the
 * same per-element instructions one block (or 16 floats, masked) at a time. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"

enum { PF = 16 }; /* neurons ahead */

static inline const uint8_t *row_at(const uint8_t *w, size_t ldw, const int32_t *idx, size_t i) {
  return w + (idx != NULL ? (size_t)idx[i] : i) * ldw;
}

static inline void prefetch_bytes(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)p + off, _MM_HINT_T1);
  _mm_prefetch((const char *)p + bytes - 1, _MM_HINT_T1);
}

static inline float half_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

/* ---- f32 / f16 ------------------------------------------------------------------ */

#define FLOAT_AXPY(name, esize, LOAD16, LOADMASK)                                                           \
  void name(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y) { \
    const uint8_t *wb = w;                                                                                  \
    size_t e0 = 0;                                                                                          \
    for (; e0 + 256 <= ne; e0 += 256) {                                                                     \
      __m512 acc[16];                                                                                       \
      for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();                                            \
      const uint8_t *seg = wb + e0 * (esize);                                                               \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *r = row_at(seg, ldw, idx, i);                                                        \
        if (i + PF < n) prefetch_bytes(row_at(seg, ldw, idx, i + PF), 256 * (esize));                       \
        const __m512 vs = _mm512_set1_ps(a[i]);                                                             \
        for (int t = 0; t < 16; t++) acc[t] = _mm512_fmadd_ps(LOAD16(r + 16 * t * (esize)), vs, acc[t]);    \
      }                                                                                                     \
      for (int t = 0; t < 16; t++) _mm512_storeu_ps(y + e0 + 16 * t, acc[t]);                               \
    }                                                                                                       \
    for (; e0 < ne; e0 += 16) {                                                                             \
      const size_t m = ne - e0 < 16 ? ne - e0 : 16;                                                         \
      const __mmask16 k = (__mmask16)((1u << m) - 1u);                                                      \
      __m512 acc = _mm512_setzero_ps();                                                                     \
      const uint8_t *seg = wb + e0 * (esize);                                                               \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *r = row_at(seg, ldw, idx, i);                                                        \
        acc = _mm512_fmadd_ps(LOADMASK(k, r), _mm512_set1_ps(a[i]), acc);                                   \
      }                                                                                                     \
      _mm512_mask_storeu_ps(y + e0, k, acc);                                                                \
    }                                                                                                       \
  }

#define LOAD16_F32(p) _mm512_loadu_ps(p)
#define LOADM_F32(k, p) _mm512_maskz_loadu_ps((k), (p))
#define LOAD16_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define LOADM_F16(k, p) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((k), (p)))

FLOAT_AXPY(spr_f32_axpy_ukernel_256__avx512f, 4, LOAD16_F32, LOADM_F32)
FLOAT_AXPY(spr_f16_axpy_ukernel_256__avx512f, 2, LOAD16_F16, LOADM_F16)

/* ---- Q8_0 / Q4_0: blocks of 32 ------------------------------------------------------- */

/* The 32 codes of a block as two vectors of 16 floats (values 0..15, 16..31). */
static inline void q8_0_codes(const uint8_t *blk, __m512 *lo, __m512 *hi) {
  const __m128i q0 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
  const __m128i q1 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 18));
  *lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0));
  *hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1));
}

/* Q4_0 codes through a 16-entry table {-8.0f .. 7.0f}: vpermps reads only the
 * low 4 bits of each index, so the low nibble needs no mask. */
static inline void q4_0_codes(const uint8_t *blk, __m512 *lo, __m512 *hi) {
  const __m512 table = _mm512_setr_ps(-8.0f, -7.0f, -6.0f, -5.0f, -4.0f, -3.0f, -2.0f, -1.0f, 0.0f, 1.0f, 2.0f, 3.0f,
                                      4.0f, 5.0f, 6.0f, 7.0f);
  const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2)));
  *lo = _mm512_permutexvar_ps(q, table);
  *hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
}

#define BLOCK_AXPY(name, bb, CODES)                                                                         \
  void name(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y) { \
    const uint8_t *wb = w;                                                                                  \
    const size_t nb = ne / 32;                                                                              \
    size_t b0 = 0;                                                                                          \
    for (; b0 + 8 <= nb; b0 += 8) {                                                                         \
      __m512 acc[16];                                                                                       \
      for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();                                            \
      const uint8_t *seg = wb + b0 * (bb);                                                                  \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *r = row_at(seg, ldw, idx, i);                                                        \
        if (i + PF < n) prefetch_bytes(row_at(seg, ldw, idx, i + PF), 8 * (bb));                            \
        for (int b = 0; b < 8; b++) {                                                                       \
          const uint8_t *blk = r + b * (bb);                                                                \
          const __m512 vs = _mm512_set1_ps(a[i] * half_at(blk));                                            \
          __m512 lo, hi;                                                                                    \
          CODES(blk, &lo, &hi);                                                                             \
          acc[2 * b] = _mm512_fmadd_ps(lo, vs, acc[2 * b]);                                                 \
          acc[2 * b + 1] = _mm512_fmadd_ps(hi, vs, acc[2 * b + 1]);                                         \
        }                                                                                                   \
      }                                                                                                     \
      for (int t = 0; t < 16; t++) _mm512_storeu_ps(y + 32 * b0 + 16 * t, acc[t]);                          \
    }                                                                                                       \
    for (; b0 < nb; b0++) {                                                                                 \
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                                        \
      const uint8_t *seg = wb + b0 * (bb);                                                                  \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *blk = row_at(seg, ldw, idx, i);                                                      \
        const __m512 vs = _mm512_set1_ps(a[i] * half_at(blk));                                              \
        __m512 lo, hi;                                                                                      \
        CODES(blk, &lo, &hi);                                                                               \
        acc0 = _mm512_fmadd_ps(lo, vs, acc0);                                                               \
        acc1 = _mm512_fmadd_ps(hi, vs, acc1);                                                               \
      }                                                                                                     \
      _mm512_storeu_ps(y + 32 * b0, acc0);                                                                  \
      _mm512_storeu_ps(y + 32 * b0 + 16, acc1);                                                             \
    }                                                                                                       \
  }

BLOCK_AXPY(spr_q8_0_axpy_ukernel_256__avx512f, 34, q8_0_codes)
BLOCK_AXPY(spr_q4_0_axpy_ukernel_256__avx512f, 18, q4_0_codes)
