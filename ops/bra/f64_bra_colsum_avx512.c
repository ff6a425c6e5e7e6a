/* ops/bra/f64_bra_colsum_avx512.c — region-mean column sums, AVX-512: up to
 * 64 channels (8 zmm of doubles) stay in registers over all rows; the means
 * (an IEEE division, as the scalar code) and their f32 rounding in vectors. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>

#include "ops/bra/bra.h"

void spr_f64_bra_colsum_ukernel_8__avx512(double *acc, const float *const *rows, size_t n_rows, size_t n, int first,
                                          float *mean, double m) {
  const __m512d mv = _mm512_set1_pd(m);
  size_t c = 0;
  for (; c + 64 <= n; c += 64) {
    __m512d s[8];
    for (int k = 0; k < 8; k++) s[k] = first ? _mm512_setzero_pd() : _mm512_loadu_pd(acc + c + 8 * k);
    for (size_t t = 0; t < n_rows; t++)
      for (int k = 0; k < 8; k++) s[k] = _mm512_add_pd(s[k], _mm512_cvtps_pd(_mm256_loadu_ps(rows[t] + c + 8 * k)));
    for (int k = 0; k < 8; k++) {
      _mm512_storeu_pd(acc + c + 8 * k, s[k]);
      if (mean != NULL) _mm256_storeu_ps(mean + c + 8 * k, _mm512_cvtpd_ps(_mm512_div_pd(s[k], mv)));
    }
  }
  for (; c + 8 <= n; c += 8) {
    __m512d s = first ? _mm512_setzero_pd() : _mm512_loadu_pd(acc + c);
    for (size_t t = 0; t < n_rows; t++) s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm256_loadu_ps(rows[t] + c)));
    _mm512_storeu_pd(acc + c, s);
    if (mean != NULL) _mm256_storeu_ps(mean + c, _mm512_cvtpd_ps(_mm512_div_pd(s, mv)));
  }
  for (; c < n; c++) {
    double s = first ? 0.0 : acc[c];
    for (size_t t = 0; t < n_rows; t++) s += (double)rows[t][c];
    acc[c] = s;
    if (mean != NULL) mean[c] = (float)(s / m);
  }
}
