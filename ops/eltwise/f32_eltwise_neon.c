/* ops/eltwise/f32_eltwise_neon.c — add / mul / scale with NEON (SIMDe names):
 * one vector per step, scalar tail (these ops round identically either way). */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

#include "ops/eltwise/eltwise.h"

void spr_f32_add_ukernel_4__neon(size_t n, const float *a, const float *b, float *y) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) simde_vst1q_f32(y + i, simde_vaddq_f32(simde_vld1q_f32(a + i), simde_vld1q_f32(b + i)));
  for (; i < n; i++) y[i] = a[i] + b[i];
}

void spr_f32_mul_ukernel_4__neon(size_t n, const float *a, const float *b, float *y) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) simde_vst1q_f32(y + i, simde_vmulq_f32(simde_vld1q_f32(a + i), simde_vld1q_f32(b + i)));
  for (; i < n; i++) y[i] = a[i] * b[i];
}

void spr_f32_scale_ukernel_4__neon(size_t n, const float *x, float s, float *y) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) simde_vst1q_f32(y + i, simde_vmulq_n_f32(simde_vld1q_f32(x + i), s));
  for (; i < n; i++) y[i] = x[i] * s;
}
