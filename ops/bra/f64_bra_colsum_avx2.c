/* ops/bra/f64_bra_colsum_avx2.c — region-mean column sums, AVX2: up to 32
 * channels (8 ymm of doubles) stay in registers over all rows. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "ops/bra/bra.h"

void spr_f64_bra_colsum_ukernel_4__avx2(double *acc, const float *const *rows, size_t n_rows, size_t n) {
  size_t c = 0;
  for (; c + 32 <= n; c += 32) {
    __m256d s[8];
    for (int k = 0; k < 8; k++) s[k] = _mm256_loadu_pd(acc + c + 4 * k);
    for (size_t t = 0; t < n_rows; t++)
      for (int k = 0; k < 8; k++) s[k] = _mm256_add_pd(s[k], _mm256_cvtps_pd(_mm_loadu_ps(rows[t] + c + 4 * k)));
    for (int k = 0; k < 8; k++) _mm256_storeu_pd(acc + c + 4 * k, s[k]);
  }
  for (; c + 4 <= n; c += 4) {
    __m256d s = _mm256_loadu_pd(acc + c);
    for (size_t t = 0; t < n_rows; t++) s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(rows[t] + c)));
    _mm256_storeu_pd(acc + c, s);
  }
  for (; c < n; c++) {
    double s = acc[c];
    for (size_t t = 0; t < n_rows; t++) s += (double)rows[t][c];
    acc[c] = s;
  }
}
