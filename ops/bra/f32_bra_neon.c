/* ops/bra/f32_bra_neon.c — bi-level routing attention ukernel, NEON (SIMDe
 * names; A32 + VFPv4 compatible): 16 queries (4 q-registers), 4 x 4 score
 * and 4 x 4 P.V register tiles. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#define AV_UKERNEL spr_f32_bra_ukernel_16__neon

#include "ops/attention/attention_vec_neon.h"

/* Small-region path (one 4-lane group: one query per pass). */
#define AV_G4 1
static inline av_v av_bcast4(const float *p) {
  return simde_vld1q_f32(p);
}
/* [sum a, sum b, sum c, sum d] (64-bit pairwise adds: A32-safe). */
static inline av_v av_red4x4(av_v a, av_v b, av_v c, av_v d) {
  const simde_float32x2_t sa = simde_vadd_f32(simde_vget_low_f32(a), simde_vget_high_f32(a));
  const simde_float32x2_t sb = simde_vadd_f32(simde_vget_low_f32(b), simde_vget_high_f32(b));
  const simde_float32x2_t sc = simde_vadd_f32(simde_vget_low_f32(c), simde_vget_high_f32(c));
  const simde_float32x2_t sd = simde_vadd_f32(simde_vget_low_f32(d), simde_vget_high_f32(d));
  return simde_vcombine_f32(simde_vpadd_f32(sa, sb), simde_vpadd_f32(sc, sd));
}
/* The max of the four lanes, in every lane. */
static inline av_v av_gmax4(av_v x) {
  const av_v m = simde_vmaxq_f32(x, simde_vrev64q_f32(x));
  return simde_vmaxq_f32(m, simde_vextq_f32(m, m, 2));
}

/* The one group = p[0][off .. off + 4). */
static inline av_v av_load4g(const float *const *p, size_t off) {
  return simde_vld1q_f32(p[0] + off);
}

#include "ops/bra/bra_impl.h"
