/* ops/attention/attention_vec_neon.h — the vector shims (av_*) of the fused attention and
 * bi-level routing attention ukernels, NEON (SIMDe names; A32 + VFPv4 compatible): one vector = 4 f32 lanes; the shared
 * tile code (attention_impl.h, ops/bra/bra_impl.h) is written against them. Include once,
 * from one ukernel file. */
#ifndef SPR_OPS_ATTENTION_ATTENTION_VEC_NEON_H
#define SPR_OPS_ATTENTION_ATTENTION_VEC_NEON_H

#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this header needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <math.h>
#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/attention/attention_exp_neon.h"

typedef simde_float32x4_t av_v;
#define AV_VL 4
#define AV_MV 4
#define AV_NKR 4
#define AV_CR 4
#define AV_ROW_MAX_LANES 2
#define AV_INLINE static inline __attribute__((always_inline))
#define AV_NOINLINE static __attribute__((noinline))

static inline av_v av_zero(void) {
  return simde_vdupq_n_f32(0.0f);
}
static inline av_v av_set1(float x) {
  return simde_vdupq_n_f32(x);
}
static inline av_v av_load(const float *p) {
  return simde_vld1q_f32(p);
}
static inline av_v av_load_h(const uint16_t *p) {
  return simde_vcvt_f32_f16(simde_vreinterpret_f16_u16(simde_vld1_u16(p)));
}
static inline void av_store(float *p, av_v v) {
  simde_vst1q_f32(p, v);
}
static inline av_v av_bcast(const float *p) {
  return simde_vld1q_dup_f32(p);
}
static inline av_v av_fma(av_v a, av_v b, av_v c) {
  return simde_vfmaq_f32(c, a, b);
}
static inline av_v av_add(av_v a, av_v b) {
  return simde_vaddq_f32(a, b);
}
static inline av_v av_mul(av_v a, av_v b) {
  return simde_vmulq_f32(a, b);
}
static inline av_v av_sub(av_v a, av_v b) {
  return simde_vsubq_f32(a, b);
}
static inline av_v av_max(av_v a, av_v b) {
  return simde_vmaxq_f32(a, b);
}
static inline av_v av_exp2(av_v x) {
  return spr_attn_exp2_neon(x);
}
static inline float av_hsum(av_v x) {
  simde_float32x2_t s = simde_vadd_f32(simde_vget_low_f32(x), simde_vget_high_f32(x));
  s = simde_vpadd_f32(s, s);
  return simde_vget_lane_f32(s, 0);
}
static inline void av_hsum4(av_v a, av_v b, av_v c, av_v d, float *out) {
  const simde_float32x2_t sa = simde_vadd_f32(simde_vget_low_f32(a), simde_vget_high_f32(a));
  const simde_float32x2_t sb = simde_vadd_f32(simde_vget_low_f32(b), simde_vget_high_f32(b));
  const simde_float32x2_t sc = simde_vadd_f32(simde_vget_low_f32(c), simde_vget_high_f32(c));
  const simde_float32x2_t sd = simde_vadd_f32(simde_vget_low_f32(d), simde_vget_high_f32(d));
  simde_vst1q_f32(out, simde_vcombine_f32(simde_vpadd_f32(sa, sb), simde_vpadd_f32(sc, sd)));
}
static inline av_v av_mask_keys(av_v s, float j, av_v lim) {
  const simde_uint32x4_t hidden = simde_vcgtq_f32(simde_vdupq_n_f32(j), lim);
  return simde_vbslq_f32(hidden, simde_vdupq_n_f32(-INFINITY), s);
}

#endif
