/* ops/common/vmath_neon.h — vector exp / erf / sigmoid building blocks for
 * the NEON ukernels, written with SIMDe names (native on ARM, emulated in the
 * SPR_NEON_EMULATED test build). Static inline; include only from *_neon.c
 * files, which carry the ISA guard. Only ARMv7-compatible intrinsics (with
 * VFPv4 FMA) are used: no vdivq, vrndnq or across-vector reductions. Same
 * algorithms and constants as vmath_avx2.h / vmath_avx512.h. */
#ifndef SPR_OPS_COMMON_VMATH_NEON_H
#define SPR_OPS_COMMON_VMATH_NEON_H

#include <simde/arm/neon.h>
#include <stddef.h>

#include "ops/common/vmath_coeffs.h"

static inline float spr_hsum_neon(simde_float32x4_t v) {
  simde_float32x2_t s = simde_vadd_f32(simde_vget_low_f32(v), simde_vget_high_f32(v));
  s = simde_vpadd_f32(s, s);
  return simde_vget_lane_f32(s, 0);
}

static inline float spr_hmax_neon(simde_float32x4_t v) {
  simde_float32x2_t s = simde_vmax_f32(simde_vget_low_f32(v), simde_vget_high_f32(v));
  s = simde_vpmax_f32(s, s);
  return simde_vget_lane_f32(s, 0);
}

/* 1/d for normal d with a normal reciprocal: estimate plus two Newton steps. */
static inline simde_float32x4_t spr_vrcp_neon(simde_float32x4_t d) {
  simde_float32x4_t r = simde_vrecpeq_f32(d);
  r = simde_vmulq_f32(r, simde_vrecpsq_f32(d, r));
  return simde_vmulq_f32(r, simde_vrecpsq_f32(d, r));
}

/* exp(x): 0 below SPR_VEXP_LO, saturates at exp(SPR_VEXP_HI), NaN stays NaN. */
static inline simde_float32x4_t spr_vexp_neon(simde_float32x4_t x) {
  const simde_uint32x4_t keep = simde_vmvnq_u32(simde_vcltq_f32(x, simde_vdupq_n_f32(SPR_VEXP_LO)));
  x = simde_vminq_f32(x, simde_vdupq_n_f32(SPR_VEXP_HI));
  x = simde_vmaxq_f32(x, simde_vdupq_n_f32(SPR_VEXP_LO));
  const simde_float32x4_t magic = simde_vdupq_n_f32(SPR_VEXP_MAGIC);
  const simde_float32x4_t t = simde_vfmaq_f32(magic, x, simde_vdupq_n_f32(SPR_VEXP_LOG2E));
  const simde_float32x4_t n = simde_vsubq_f32(t, magic);
  simde_float32x4_t r = simde_vfmaq_f32(x, n, simde_vdupq_n_f32(-SPR_VEXP_LN2_HI));
  r = simde_vfmaq_f32(r, n, simde_vdupq_n_f32(-SPR_VEXP_LN2_LO));
  simde_float32x4_t p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VEXP_C4), simde_vdupq_n_f32(SPR_VEXP_C5), r);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VEXP_C3), p, r);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VEXP_C2), p, r);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(1.0f), p, r);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(1.0f), p, r);
  const simde_float32x4_t scale = simde_vreinterpretq_f32_s32(simde_vshlq_n_s32(simde_vreinterpretq_s32_f32(t), 23));
  const simde_float32x4_t y = simde_vmulq_f32(p, scale);
  return simde_vreinterpretq_f32_u32(simde_vandq_u32(keep, simde_vreinterpretq_u32_f32(y)));
}

/* erf(z), exactly +-1 for |z| >= SPR_VERF_SAT. */
static inline simde_float32x4_t spr_verf_neon(simde_float32x4_t z) {
  const simde_uint32x4_t sign_bit = simde_vdupq_n_u32(0x80000000u);
  const simde_float32x4_t az = simde_vabsq_f32(z);
  const simde_uint32x4_t sat = simde_vcgeq_f32(az, simde_vdupq_n_f32(SPR_VERF_SAT));
  const simde_float32x4_t a = simde_vminq_f32(az, simde_vdupq_n_f32(SPR_VERF_SAT));
  const simde_float32x4_t t = simde_vmulq_f32(a, a);
  simde_float32x4_t p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_P4), simde_vdupq_n_f32(SPR_VERF_P5), t);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_P3), p, t);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_P2), p, t);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_P1), p, t);
  p = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_P0), p, t);
  simde_float32x4_t q = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_Q4), simde_vdupq_n_f32(SPR_VERF_Q5), t);
  q = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_Q3), q, t);
  q = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_Q2), q, t);
  q = simde_vfmaq_f32(simde_vdupq_n_f32(SPR_VERF_Q1), q, t);
  q = simde_vfmaq_f32(simde_vdupq_n_f32(1.0f), q, t);
  simde_float32x4_t e = simde_vmulq_f32(simde_vmulq_f32(a, p), spr_vrcp_neon(q));
  e = simde_vbslq_f32(sat, simde_vdupq_n_f32(1.0f), e);
  const simde_uint32x4_t zs = simde_vandq_u32(simde_vreinterpretq_u32_f32(z), sign_bit);
  return simde_vreinterpretq_f32_u32(simde_vorrq_u32(simde_vreinterpretq_u32_f32(e), zs));
}

/* gelu(x) = x/2 (1 + erf(x/sqrt2)); exactly -0 or x for large |x|. */
static inline simde_float32x4_t spr_vgelu_neon(simde_float32x4_t x) {
  const simde_float32x4_t e = spr_verf_neon(simde_vmulq_n_f32(x, SPR_SQRT1_2));
  const simde_float32x4_t h = simde_vmulq_n_f32(x, 0.5f);
  return simde_vfmaq_f32(h, h, e);
}

/* silu(x) = x sigmoid(x), with e = exp(-|x|) so nothing overflows:
 * sigmoid(|x|) = 1/(1+e), sigmoid(-|x|) = e/(1+e). */
static inline simde_float32x4_t spr_vsilu_neon(simde_float32x4_t x) {
  const simde_float32x4_t e = spr_vexp_neon(simde_vnegq_f32(simde_vabsq_f32(x)));
  const simde_float32x4_t s = spr_vrcp_neon(simde_vaddq_f32(e, simde_vdupq_n_f32(1.0f)));
  const simde_uint32x4_t neg = simde_vcltq_f32(x, simde_vdupq_n_f32(0.0f));
  return simde_vmulq_f32(x, simde_vbslq_f32(neg, simde_vmulq_f32(s, e), s));
}

#endif
