/* ops/softmax/f32_softmax_avx2.c — row softmax with AVX2+FMA: max and
 * exp-sum passes over 4 independent accumulators (32 elements per step),
 * then one vector at a time, then a masked tail. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <math.h>

#include "ops/common/vmath_avx2.h"
#include "ops/softmax/softmax.h"

void spr_f32_softmax_ukernel_32__avx2(size_t n, const float *x, float scale, float *y) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(m0, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    m1 = _mm256_max_ps(m1, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs));
    m2 = _mm256_max_ps(m2, _mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vs));
    m3 = _mm256_max_ps(m3, _mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vs));
  }
  for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
  if (i < n) {
    const __m256i k = spr_tail_mask_avx2(n - i);
    const __m256 v = _mm256_blendv_ps(ninf, _mm256_mul_ps(_mm256_maskload_ps(x + i, k), vs), _mm256_castsi256_ps(k));
    m1 = _mm256_max_ps(m1, v);
  }
  const float m = spr_hmax_avx2(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));

  const __m256 vnm = _mm256_set1_ps(-m);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (i = 0; i + 32 <= n; i += 32) {
    const __m256 e0 = spr_vexp_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, vnm));
    const __m256 e1 = spr_vexp_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), vs, vnm));
    const __m256 e2 = spr_vexp_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), vs, vnm));
    const __m256 e3 = spr_vexp_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), vs, vnm));
    _mm256_storeu_ps(y + i, e0);
    _mm256_storeu_ps(y + i + 8, e1);
    _mm256_storeu_ps(y + i + 16, e2);
    _mm256_storeu_ps(y + i + 24, e3);
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
    s2 = _mm256_add_ps(s2, e2);
    s3 = _mm256_add_ps(s3, e3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 e = spr_vexp_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, vnm));
    _mm256_storeu_ps(y + i, e);
    s0 = _mm256_add_ps(s0, e);
  }
  if (i < n) {
    const __m256i k = spr_tail_mask_avx2(n - i);
    const __m256 e =
        _mm256_and_ps(_mm256_castsi256_ps(k), spr_vexp_avx2(_mm256_fmadd_ps(_mm256_maskload_ps(x + i, k), vs, vnm)));
    _mm256_maskstore_ps(y + i, k, e);
    s1 = _mm256_add_ps(s1, e);
  }
  const float sum = spr_hsum_avx2(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));

  const __m256 vinv = _mm256_set1_ps(1.0f / sum);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vinv));
  if (i < n) {
    const __m256i k = spr_tail_mask_avx2(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(_mm256_maskload_ps(y + i, k), vinv));
  }
}
