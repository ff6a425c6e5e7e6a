/* ops/norm/f32_norm_avx2.c — LayerNorm / RMSNorm rows with AVX2+FMA:
 * reductions over 4 independent accumulators (32 elements per step), then
 * one vector at a time, then a masked tail. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <math.h>

#include "ops/common/vmath_avx2.h"
#include "ops/norm/norm.h"

static float row_sum(size_t n, const float *x) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
  if (i < n) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x + i, spr_tail_mask_avx2(n - i)));
  return spr_hsum_avx2(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* sum (x - c)^2 */
static float row_sumsq(size_t n, const float *x, float c) {
  const __m256 vc = _mm256_set1_ps(c);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vc);
    const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), vc);
    const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), vc);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    const __m256i k = spr_tail_mask_avx2(n - i);
    const __m256 d = _mm256_and_ps(_mm256_castsi256_ps(k), _mm256_sub_ps(_mm256_maskload_ps(x + i, k), vc));
    s1 = _mm256_fmadd_ps(d, d, s1);
  }
  return spr_hsum_avx2(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

void spr_f32_layernorm_ukernel_32__avx2(size_t n, const float *x, const float *gamma, const float *beta, float eps,
                                        float *y) {
  const float mean = row_sum(n, x) / (float)n;
  const float rstd = 1.0f / sqrtf(row_sumsq(n, x, mean) / (float)n + eps);
  const __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(rstd);
  size_t i = 0;
  if (beta != NULL) {
    for (; i + 8 <= n; i += 8) {
      const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
      _mm256_storeu_ps(y + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(gamma + i), _mm256_loadu_ps(beta + i)));
    }
    if (i < n) {
      const __m256i k = spr_tail_mask_avx2(n - i);
      const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm), vr);
      _mm256_maskstore_ps(y + i, k,
                          _mm256_fmadd_ps(t, _mm256_maskload_ps(gamma + i, k), _mm256_maskload_ps(beta + i, k)));
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
      _mm256_storeu_ps(y + i, _mm256_mul_ps(t, _mm256_loadu_ps(gamma + i)));
    }
    if (i < n) {
      const __m256i k = spr_tail_mask_avx2(n - i);
      const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm), vr);
      _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(t, _mm256_maskload_ps(gamma + i, k)));
    }
  }
}

void spr_f32_rmsnorm_ukernel_32__avx2(size_t n, const float *x, const float *gamma, float eps, float *y) {
  const float scale = 1.0f / sqrtf(row_sumsq(n, x, 0.0f) / (float)n + eps);
  const __m256 vs = _mm256_set1_ps(scale);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(t, _mm256_loadu_ps(gamma + i)));
  }
  if (i < n) {
    const __m256i k = spr_tail_mask_avx2(n - i);
    const __m256 t = _mm256_mul_ps(_mm256_maskload_ps(x + i, k), vs);
    _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(t, _mm256_maskload_ps(gamma + i, k)));
  }
}
