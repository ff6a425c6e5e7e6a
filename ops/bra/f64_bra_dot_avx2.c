/* ops/bra/f64_bra_dot_avx2.c — routing dot products, AVX2: the eight partial
 * sums of a region are two ymm of doubles; ragged heads and tails of a run
 * go through spr_bra_dot_acc. Separate multiply and add (no FMA): the same
 * roundings as the scalar code. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "ops/bra/bra.h"

void spr_f64_bra_dot_ukernel_8__avx2(double *acc, const float *a, const float *const *b, size_t nr, size_t c0,
                                     size_t n) {
  size_t head = (8 - (c0 & 7)) & 7;
  if (head > n) head = n;
  const size_t body = (n - head) & ~(size_t)7;
  if (head > 0)
    for (size_t r = 0; r < nr; r++) spr_bra_dot_acc(acc + 8 * r, a, b[r], c0, head);
  size_t r = 0;
  for (; r + 2 <= nr; r += 2) {
    __m256d s0 = _mm256_loadu_pd(acc + 8 * r), s1 = _mm256_loadu_pd(acc + 8 * r + 4);
    __m256d s2 = _mm256_loadu_pd(acc + 8 * r + 8), s3 = _mm256_loadu_pd(acc + 8 * r + 12);
    const float *b0 = b[r] + head, *b1 = b[r + 1] + head;
    for (size_t i = 0; i < body; i += 8) {
      const __m256d qa = _mm256_cvtps_pd(_mm_loadu_ps(a + head + i));
      const __m256d qb = _mm256_cvtps_pd(_mm_loadu_ps(a + head + i + 4));
      s0 = _mm256_add_pd(s0, _mm256_mul_pd(qa, _mm256_cvtps_pd(_mm_loadu_ps(b0 + i))));
      s1 = _mm256_add_pd(s1, _mm256_mul_pd(qb, _mm256_cvtps_pd(_mm_loadu_ps(b0 + i + 4))));
      s2 = _mm256_add_pd(s2, _mm256_mul_pd(qa, _mm256_cvtps_pd(_mm_loadu_ps(b1 + i))));
      s3 = _mm256_add_pd(s3, _mm256_mul_pd(qb, _mm256_cvtps_pd(_mm_loadu_ps(b1 + i + 4))));
    }
    _mm256_storeu_pd(acc + 8 * r, s0);
    _mm256_storeu_pd(acc + 8 * r + 4, s1);
    _mm256_storeu_pd(acc + 8 * r + 8, s2);
    _mm256_storeu_pd(acc + 8 * r + 12, s3);
  }
  for (; r < nr; r++) {
    __m256d s0 = _mm256_loadu_pd(acc + 8 * r), s1 = _mm256_loadu_pd(acc + 8 * r + 4);
    const float *b0 = b[r] + head;
    for (size_t i = 0; i < body; i += 8) {
      s0 = _mm256_add_pd(
          s0, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + head + i)), _mm256_cvtps_pd(_mm_loadu_ps(b0 + i))));
      s1 = _mm256_add_pd(s1, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + head + i + 4)),
                                           _mm256_cvtps_pd(_mm_loadu_ps(b0 + i + 4))));
    }
    _mm256_storeu_pd(acc + 8 * r, s0);
    _mm256_storeu_pd(acc + 8 * r + 4, s1);
  }
  const size_t done = head + body;
  if (done < n)
    for (size_t k = 0; k < nr; k++) spr_bra_dot_acc(acc + 8 * k, a + done, b[k] + done, c0 + done, n - done);
}
