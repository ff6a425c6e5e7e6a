/* ops/bra/f64_bra_colsum_avx2.c — region-mean column sums, AVX2: up to 32
 * channels (8 ymm of doubles) stay in registers over all rows; the means (an
 * IEEE division, as the scalar code) and their f32 rounding in vectors. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "ops/bra/bra.h"

void spr_f64_bra_colsum_ukernel_4__avx2(double *acc, const float *const *rows, size_t n_rows, size_t n, int first,
                                        float *mean, double m) {
  const __m256d mv = _mm256_set1_pd(m);
  size_t c = 0;
  for (; c + 32 <= n; c += 32) {
    __m256d s[8];
    for (int k = 0; k < 8; k++) s[k] = first ? _mm256_setzero_pd() : _mm256_loadu_pd(acc + c + 4 * k);
    for (size_t t = 0; t < n_rows; t++)
      for (int k = 0; k < 8; k++) s[k] = _mm256_add_pd(s[k], _mm256_cvtps_pd(_mm_loadu_ps(rows[t] + c + 4 * k)));
    for (int k = 0; k < 8; k++) {
      _mm256_storeu_pd(acc + c + 4 * k, s[k]);
      if (mean != NULL) _mm_storeu_ps(mean + c + 4 * k, _mm256_cvtpd_ps(_mm256_div_pd(s[k], mv)));
    }
  }
  for (; c + 4 <= n; c += 4) {
    __m256d s = first ? _mm256_setzero_pd() : _mm256_loadu_pd(acc + c);
    for (size_t t = 0; t < n_rows; t++) s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(rows[t] + c)));
    _mm256_storeu_pd(acc + c, s);
    if (mean != NULL) _mm_storeu_ps(mean + c, _mm256_cvtpd_ps(_mm256_div_pd(s, mv)));
  }
  for (; c < n; c++) {
    double s = first ? 0.0 : acc[c];
    for (size_t t = 0; t < n_rows; t++) s += (double)rows[t][c];
    acc[c] = s;
    if (mean != NULL) mean[c] = (float)(s / m);
  }
}
