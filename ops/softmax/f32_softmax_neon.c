/* ops/softmax/f32_softmax_neon.c — row softmax with NEON (SIMDe names): max
 * and exp-sum passes over 4 independent accumulators (16 elements per step),
 * then one vector at a time; the tail goes through a 4-lane buffer so every
 * element's exp is the vector one. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <math.h>
#include <string.h>

#include "ops/common/vmath_neon.h"
#include "ops/softmax/softmax.h"

void spr_f32_softmax_ukernel_16__neon(size_t n, const float *x, float scale, float *y) {
  simde_float32x4_t m0 = simde_vdupq_n_f32(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = simde_vmaxq_f32(m0, simde_vmulq_n_f32(simde_vld1q_f32(x + i), scale));
    m1 = simde_vmaxq_f32(m1, simde_vmulq_n_f32(simde_vld1q_f32(x + i + 4), scale));
    m2 = simde_vmaxq_f32(m2, simde_vmulq_n_f32(simde_vld1q_f32(x + i + 8), scale));
    m3 = simde_vmaxq_f32(m3, simde_vmulq_n_f32(simde_vld1q_f32(x + i + 12), scale));
  }
  for (; i + 4 <= n; i += 4) m0 = simde_vmaxq_f32(m0, simde_vmulq_n_f32(simde_vld1q_f32(x + i), scale));
  float m = spr_hmax_neon(simde_vmaxq_f32(simde_vmaxq_f32(m0, m1), simde_vmaxq_f32(m2, m3)));
  for (; i < n; i++) {
    const float v = x[i] * scale;
    m = v > m ? v : m;
  }

  const simde_float32x4_t vs = simde_vdupq_n_f32(scale), vnm = simde_vdupq_n_f32(-m);
  simde_float32x4_t s0 = simde_vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
  for (i = 0; i + 16 <= n; i += 16) {
    const simde_float32x4_t e0 = spr_vexp_neon(simde_vfmaq_f32(vnm, simde_vld1q_f32(x + i), vs));
    const simde_float32x4_t e1 = spr_vexp_neon(simde_vfmaq_f32(vnm, simde_vld1q_f32(x + i + 4), vs));
    const simde_float32x4_t e2 = spr_vexp_neon(simde_vfmaq_f32(vnm, simde_vld1q_f32(x + i + 8), vs));
    const simde_float32x4_t e3 = spr_vexp_neon(simde_vfmaq_f32(vnm, simde_vld1q_f32(x + i + 12), vs));
    simde_vst1q_f32(y + i, e0);
    simde_vst1q_f32(y + i + 4, e1);
    simde_vst1q_f32(y + i + 8, e2);
    simde_vst1q_f32(y + i + 12, e3);
    s0 = simde_vaddq_f32(s0, e0);
    s1 = simde_vaddq_f32(s1, e1);
    s2 = simde_vaddq_f32(s2, e2);
    s3 = simde_vaddq_f32(s3, e3);
  }
  for (; i + 4 <= n; i += 4) {
    const simde_float32x4_t e = spr_vexp_neon(simde_vfmaq_f32(vnm, simde_vld1q_f32(x + i), vs));
    simde_vst1q_f32(y + i, e);
    s0 = simde_vaddq_f32(s0, e);
  }
  float sum = spr_hsum_neon(simde_vaddq_f32(simde_vaddq_f32(s0, s1), simde_vaddq_f32(s2, s3)));
  if (i < n) {
    float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(buf, x + i, (n - i) * sizeof(float));
    simde_vst1q_f32(buf, spr_vexp_neon(simde_vfmaq_f32(vnm, simde_vld1q_f32(buf), vs)));
    for (size_t j = 0; j < n - i; j++) sum += buf[j];
    memcpy(y + i, buf, (n - i) * sizeof(float));
  }

  const float inv = 1.0f / sum;
  for (i = 0; i + 4 <= n; i += 4) simde_vst1q_f32(y + i, simde_vmulq_n_f32(simde_vld1q_f32(y + i), inv));
  for (; i < n; i++) y[i] *= inv;
}
