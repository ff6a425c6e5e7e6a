/* ops/softmax/f32_softmax_avx512.c — row softmax with AVX-512: max and
 * exp-sum passes over 4 independent accumulators (64 elements per step),
 * then one vector at a time, then a masked tail. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <math.h>

#include "ops/common/vmath_avx512.h"
#include "ops/softmax/softmax.h"

void spr_f32_softmax_ukernel_64__avx512f(size_t n, const float *x, float scale, float *y) {
  const __m512 vs = _mm512_set1_ps(scale);
  __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(m0, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
    m1 = _mm512_max_ps(m1, _mm512_mul_ps(_mm512_loadu_ps(x + i + 16), vs));
    m2 = _mm512_max_ps(m2, _mm512_mul_ps(_mm512_loadu_ps(x + i + 32), vs));
    m3 = _mm512_max_ps(m3, _mm512_mul_ps(_mm512_loadu_ps(x + i + 48), vs));
  }
  for (; i + 16 <= n; i += 16) m0 = _mm512_max_ps(m0, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
  if (i < n) {
    const __mmask16 k = spr_tail_mask_avx512(n - i);
    m1 = _mm512_mask_max_ps(m1, k, m1, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
  }
  const float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));

  const __m512 vnm = _mm512_set1_ps(-m);
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (i = 0; i + 64 <= n; i += 64) {
    const __m512 e0 = spr_vexp_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), vs, vnm));
    const __m512 e1 = spr_vexp_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), vs, vnm));
    const __m512 e2 = spr_vexp_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), vs, vnm));
    const __m512 e3 = spr_vexp_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), vs, vnm));
    _mm512_storeu_ps(y + i, e0);
    _mm512_storeu_ps(y + i + 16, e1);
    _mm512_storeu_ps(y + i + 32, e2);
    _mm512_storeu_ps(y + i + 48, e3);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
    s2 = _mm512_add_ps(s2, e2);
    s3 = _mm512_add_ps(s3, e3);
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 e = spr_vexp_avx512(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), vs, vnm));
    _mm512_storeu_ps(y + i, e);
    s0 = _mm512_add_ps(s0, e);
  }
  if (i < n) {
    const __mmask16 k = spr_tail_mask_avx512(n - i);
    const __m512 e = spr_vexp_avx512(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), vs, vnm));
    _mm512_mask_storeu_ps(y + i, k, e);
    s1 = _mm512_mask_add_ps(s1, k, s1, e);
  }
  const float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));

  const __m512 vinv = _mm512_set1_ps(1.0f / sum);
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), vinv));
  if (i < n) {
    const __mmask16 k = spr_tail_mask_avx512(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), vinv));
  }
}
