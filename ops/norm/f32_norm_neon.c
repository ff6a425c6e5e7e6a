/* ops/norm/f32_norm_neon.c — LayerNorm / RMSNorm rows with NEON (SIMDe
 * names): reductions over 4 independent accumulators (16 elements per step),
 * then one vector at a time, then a scalar tail. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <math.h>

#include "ops/common/vmath_neon.h"
#include "ops/norm/norm.h"

/* sum (x - c)^2, or sum x when square is 0 */
static float row_reduce(size_t n, const float *x, float c, int square) {
  const simde_float32x4_t vc = simde_vdupq_n_f32(c);
  simde_float32x4_t s0 = simde_vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  if (square) {
    for (; i + 16 <= n; i += 16) {
      const simde_float32x4_t d0 = simde_vsubq_f32(simde_vld1q_f32(x + i), vc);
      const simde_float32x4_t d1 = simde_vsubq_f32(simde_vld1q_f32(x + i + 4), vc);
      const simde_float32x4_t d2 = simde_vsubq_f32(simde_vld1q_f32(x + i + 8), vc);
      const simde_float32x4_t d3 = simde_vsubq_f32(simde_vld1q_f32(x + i + 12), vc);
      s0 = simde_vfmaq_f32(s0, d0, d0);
      s1 = simde_vfmaq_f32(s1, d1, d1);
      s2 = simde_vfmaq_f32(s2, d2, d2);
      s3 = simde_vfmaq_f32(s3, d3, d3);
    }
    for (; i + 4 <= n; i += 4) {
      const simde_float32x4_t d = simde_vsubq_f32(simde_vld1q_f32(x + i), vc);
      s0 = simde_vfmaq_f32(s0, d, d);
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      s0 = simde_vaddq_f32(s0, simde_vld1q_f32(x + i));
      s1 = simde_vaddq_f32(s1, simde_vld1q_f32(x + i + 4));
      s2 = simde_vaddq_f32(s2, simde_vld1q_f32(x + i + 8));
      s3 = simde_vaddq_f32(s3, simde_vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = simde_vaddq_f32(s0, simde_vld1q_f32(x + i));
  }
  float tail = 0.0f;
  for (; i < n; i++) {
    const float d = x[i] - c;
    tail += square ? d * d : x[i];
  }
  return spr_hsum_neon(simde_vaddq_f32(simde_vaddq_f32(s0, s1), simde_vaddq_f32(s2, s3))) + tail;
}

void spr_f32_layernorm_ukernel_16__neon(size_t n, const float *x, const float *gamma, const float *beta, float eps,
                                        float *y) {
  const float mean = row_reduce(n, x, 0.0f, 0) / (float)n;
  const float rstd = 1.0f / sqrtf(row_reduce(n, x, mean, 1) / (float)n + eps);
  const simde_float32x4_t vm = simde_vdupq_n_f32(mean);
  size_t i = 0;
  if (beta != NULL) {
    for (; i + 4 <= n; i += 4) {
      const simde_float32x4_t t = simde_vmulq_n_f32(simde_vsubq_f32(simde_vld1q_f32(x + i), vm), rstd);
      simde_vst1q_f32(y + i, simde_vfmaq_f32(simde_vld1q_f32(beta + i), t, simde_vld1q_f32(gamma + i)));
    }
    for (; i < n; i++) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
  } else {
    for (; i + 4 <= n; i += 4) {
      const simde_float32x4_t t = simde_vmulq_n_f32(simde_vsubq_f32(simde_vld1q_f32(x + i), vm), rstd);
      simde_vst1q_f32(y + i, simde_vmulq_f32(t, simde_vld1q_f32(gamma + i)));
    }
    for (; i < n; i++) y[i] = (x[i] - mean) * rstd * gamma[i];
  }
}

void spr_f32_rmsnorm_ukernel_16__neon(size_t n, const float *x, const float *gamma, float eps, float *y) {
  const float scale = 1.0f / sqrtf(row_reduce(n, x, 0.0f, 1) / (float)n + eps);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const simde_float32x4_t t = simde_vmulq_n_f32(simde_vld1q_f32(x + i), scale);
    simde_vst1q_f32(y + i, simde_vmulq_f32(t, simde_vld1q_f32(gamma + i)));
  }
  for (; i < n; i++) y[i] = x[i] * scale * gamma[i];
}
