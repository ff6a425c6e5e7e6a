/* ops/bra/f64_bra_dot_avx512.c — routing dot products, AVX-512: the eight
 * partial sums of a region are one zmm of doubles; channels where c0 + i is
 * not a multiple of 8 (a run's ragged head and tail) go through
 * spr_bra_dot_acc. Separate multiply and add (no FMA): the same roundings
 * as the scalar code. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>

#include "ops/bra/bra.h"

void spr_f64_bra_dot_ukernel_8__avx512(double *acc, const float *a, const float *const *b, size_t nr, size_t c0,
                                       size_t n) {
  size_t head = (8 - (c0 & 7)) & 7;
  if (head > n) head = n;
  const size_t body = (n - head) & ~(size_t)7;
  if (head > 0)
    for (size_t r = 0; r < nr; r++) spr_bra_dot_acc(acc + 8 * r, a, b[r], c0, head);
  size_t r = 0;
  for (; r + 4 <= nr; r += 4) {
    __m512d s0 = _mm512_loadu_pd(acc + 8 * r), s1 = _mm512_loadu_pd(acc + 8 * r + 8);
    __m512d s2 = _mm512_loadu_pd(acc + 8 * r + 16), s3 = _mm512_loadu_pd(acc + 8 * r + 24);
    const float *b0 = b[r] + head, *b1 = b[r + 1] + head, *b2 = b[r + 2] + head, *b3 = b[r + 3] + head;
    for (size_t i = 0; i < body; i += 8) {
      const __m512d q = _mm512_cvtps_pd(_mm256_loadu_ps(a + head + i));
      s0 = _mm512_add_pd(s0, _mm512_mul_pd(q, _mm512_cvtps_pd(_mm256_loadu_ps(b0 + i))));
      s1 = _mm512_add_pd(s1, _mm512_mul_pd(q, _mm512_cvtps_pd(_mm256_loadu_ps(b1 + i))));
      s2 = _mm512_add_pd(s2, _mm512_mul_pd(q, _mm512_cvtps_pd(_mm256_loadu_ps(b2 + i))));
      s3 = _mm512_add_pd(s3, _mm512_mul_pd(q, _mm512_cvtps_pd(_mm256_loadu_ps(b3 + i))));
    }
    _mm512_storeu_pd(acc + 8 * r, s0);
    _mm512_storeu_pd(acc + 8 * r + 8, s1);
    _mm512_storeu_pd(acc + 8 * r + 16, s2);
    _mm512_storeu_pd(acc + 8 * r + 24, s3);
  }
  for (; r < nr; r++) {
    __m512d s0 = _mm512_loadu_pd(acc + 8 * r);
    const float *b0 = b[r] + head;
    for (size_t i = 0; i < body; i += 8) {
      const __m512d q = _mm512_cvtps_pd(_mm256_loadu_ps(a + head + i));
      s0 = _mm512_add_pd(s0, _mm512_mul_pd(q, _mm512_cvtps_pd(_mm256_loadu_ps(b0 + i))));
    }
    _mm512_storeu_pd(acc + 8 * r, s0);
  }
  const size_t done = head + body;
  if (done < n)
    for (size_t k = 0; k < nr; k++) spr_bra_dot_acc(acc + 8 * k, a + done, b[k] + done, c0 + done, n - done);
}
