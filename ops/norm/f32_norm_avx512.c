/* ops/norm/f32_norm_avx512.c — LayerNorm / RMSNorm rows with AVX-512:
 * reductions over 4 independent accumulators (64 elements per step), then
 * one vector at a time, then a masked tail. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <math.h>

#include "ops/common/vmath_avx512.h"
#include "ops/norm/norm.h"

static float row_sum(size_t n, const float *x) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 48));
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
  if (i < n) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(spr_tail_mask_avx512(n - i), x + i));
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* sum (x - c)^2 */
static float row_sumsq(size_t n, const float *x, float c) {
  const __m512 vc = _mm512_set1_ps(c);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vc);
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vc);
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), vc);
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), vc);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vc);
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    const __mmask16 k = spr_tail_mask_avx512(n - i);
    const __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), vc);
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

void spr_f32_layernorm_ukernel_64__avx512f(size_t n, const float *x, const float *gamma, const float *beta, float eps,
                                           float *y) {
  const float mean = row_sum(n, x) / (float)n;
  const float rstd = 1.0f / sqrtf(row_sumsq(n, x, mean) / (float)n + eps);
  const __m512 vm = _mm512_set1_ps(mean), vr = _mm512_set1_ps(rstd);
  size_t i = 0;
  if (beta != NULL) {
    for (; i + 16 <= n; i += 16) {
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vr);
      _mm512_storeu_ps(y + i, _mm512_fmadd_ps(t, _mm512_loadu_ps(gamma + i), _mm512_loadu_ps(beta + i)));
    }
    if (i < n) {
      const __mmask16 k = spr_tail_mask_avx512(n - i);
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vr);
      _mm512_mask_storeu_ps(
          y + i, k, _mm512_fmadd_ps(t, _mm512_maskz_loadu_ps(k, gamma + i), _mm512_maskz_loadu_ps(k, beta + i)));
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vr);
      _mm512_storeu_ps(y + i, _mm512_mul_ps(t, _mm512_loadu_ps(gamma + i)));
    }
    if (i < n) {
      const __mmask16 k = spr_tail_mask_avx512(n - i);
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vr);
      _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(t, _mm512_maskz_loadu_ps(k, gamma + i)));
    }
  }
}

void spr_f32_rmsnorm_ukernel_64__avx512f(size_t n, const float *x, const float *gamma, float eps, float *y) {
  const float scale = 1.0f / sqrtf(row_sumsq(n, x, 0.0f) / (float)n + eps);
  const __m512 vs = _mm512_set1_ps(scale);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 t = _mm512_mul_ps(_mm512_loadu_ps(x + i), vs);
    _mm512_storeu_ps(y + i, _mm512_mul_ps(t, _mm512_loadu_ps(gamma + i)));
  }
  if (i < n) {
    const __mmask16 k = spr_tail_mask_avx512(n - i);
    const __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(t, _mm512_maskz_loadu_ps(k, gamma + i)));
  }
}
