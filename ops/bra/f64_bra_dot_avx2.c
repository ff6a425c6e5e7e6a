/* ops/bra/f64_bra_dot_avx2.c — routing dot products, AVX2: the eight partial
 * sums of a pair are two ymm of doubles; register tiles of 2 a rows x 2 b
 * rows; ragged heads and tails of a run go through spr_bra_dot_acc. The
 * f32 x f32 products are exact in double, so a fused multiply-add rounds
 * exactly as the scalar code's separate multiply and add. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "ops/bra/bra.h"

static inline __attribute__((always_inline)) void dot_tile(double *acc, const float *const *a, size_t i0, size_t ia,
                                                           const float *const *b, size_t r0, size_t rb, size_t nr,
                                                           size_t off, size_t body) {
  __m256d s[2][2][2];
  for (size_t i = 0; i < ia; i++)
    for (size_t r = 0; r < rb; r++)
      for (size_t h = 0; h < 2; h++) s[i][r][h] = _mm256_loadu_pd(acc + 8 * ((i0 + i) * nr + r0 + r) + 4 * h);
  for (size_t c = 0; c < body; c += 8) {
    __m256d av[2][2];
    for (size_t i = 0; i < ia; i++)
      for (size_t h = 0; h < 2; h++) av[i][h] = _mm256_cvtps_pd(_mm_loadu_ps(a[i0 + i] + off + c + 4 * h));
    for (size_t r = 0; r < rb; r++)
      for (size_t h = 0; h < 2; h++) {
        const __m256d bv = _mm256_cvtps_pd(_mm_loadu_ps(b[r0 + r] + off + c + 4 * h));
        for (size_t i = 0; i < ia; i++) s[i][r][h] = _mm256_fmadd_pd(av[i][h], bv, s[i][r][h]);
      }
  }
  for (size_t i = 0; i < ia; i++)
    for (size_t r = 0; r < rb; r++)
      for (size_t h = 0; h < 2; h++) _mm256_storeu_pd(acc + 8 * ((i0 + i) * nr + r0 + r) + 4 * h, s[i][r][h]);
}

#define BRA_DOT_TILE 2
#define BRA_DOT_FN spr_f64_bra_dot_ukernel_8__avx2
#include "ops/bra/bra_dot_impl.h"
