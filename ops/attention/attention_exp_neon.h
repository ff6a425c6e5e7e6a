/* ops/attention/attention_exp_neon.h — 2^x on 4 floats for the attention
 * ukernel (SIMDe names; A32 NEON + VFPv4 compatible), valid for x <= 0
 * (including -inf).
 *
 * x = n + f with n = ceil(x - 1/2) (truncation of a non-positive value),
 * f in (-1/2, 1/2]; 2^f by a degree-5 polynomial fitted for relative error
 * (< 2e-7 in f32 Horner); 2^n built in the exponent field. x is clamped at
 * -127, where the biased exponent is 0 and 2^n reads as +0: -inf (a masked
 * score) gives exactly 0. (ops/attention keeps its own exp; a generic vector
 * math module may later replace these few lines.) */
#ifndef SPR_OPS_ATTENTION_EXP_NEON_H
#define SPR_OPS_ATTENTION_EXP_NEON_H

#include <simde/arm/neon.h>

static inline simde_float32x4_t spr_attn_exp2_neon(simde_float32x4_t x) {
  x = simde_vmaxq_f32(x, simde_vdupq_n_f32(-127.0f));
  const simde_int32x4_t ni = simde_vcvtq_s32_f32(simde_vsubq_f32(x, simde_vdupq_n_f32(0.5f)));
  const simde_float32x4_t f = simde_vsubq_f32(x, simde_vcvtq_f32_s32(ni));
  simde_float32x4_t p = simde_vfmaq_f32(simde_vdupq_n_f32(9.671512991e-03f), simde_vdupq_n_f32(1.326472731e-03f), f);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(5.550733581e-02f), p, f);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(2.402224243e-01f), p, f);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(6.931470037e-01f), p, f);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(1.0f), p, f);
  const simde_int32x4_t e = simde_vshlq_n_s32(simde_vaddq_s32(ni, simde_vdupq_n_s32(127)), 23);
  return simde_vmulq_f32(p, simde_vreinterpretq_f32_s32(e));
}

#endif
