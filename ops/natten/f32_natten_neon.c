/* ops/natten/f32_natten_neon.c — neighborhood attention ukernel, NEON
 * (SIMDe names; A32 + VFPv4 compatible): 4 query columns per tile, 2 rows x 4
 * band offsets score and 2 rows x 4 columns P.V register tiles. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <math.h>
#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/attention/attention_exp_neon.h"

typedef simde_float32x4_t av_v;
#define NA_VL 4
#define NA_QR 2
#define NA_NO 4
#define NA_PNO 6
#define NA_UKERNEL spr_f32_na_ukernel_4__neon
#define AV_INLINE static inline __attribute__((always_inline))

static inline av_v av_zero(void) {
  return simde_vdupq_n_f32(0.0f);
}
static inline av_v av_set1(float x) {
  return simde_vdupq_n_f32(x);
}
static inline av_v av_load(const float *p) {
  return simde_vld1q_f32(p);
}
static inline void av_store(float *p, av_v v) {
  simde_vst1q_f32(p, v);
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
#define NA_HAVE_PERMUTE 0
typedef int av_idx;
static inline av_idx av_idx_load(const int32_t *p) {
  (void)p;
  return 0;
}
static inline av_v av_permute(av_v v, av_idx i) {
  (void)i;
  return v;
}
static inline av_v av_keep(av_v v) {
  return v;
}
static inline av_v av_exp2(av_v x) {
  return spr_attn_exp2_neon(x);
}
static inline av_v av_mask_range(av_v s, float o, av_v lo, av_v hi) {
  const simde_float32x4_t ov = simde_vdupq_n_f32(o);
  const simde_uint32x4_t hidden = simde_vorrq_u32(simde_vcltq_f32(ov, lo), simde_vcgeq_f32(ov, hi));
  return simde_vbslq_f32(hidden, simde_vdupq_n_f32(-INFINITY), s);
}
static inline void av_transpose_load(const float *const *rows, size_t off, av_v out[4]) {
  const simde_float32x4x2_t p = simde_vtrnq_f32(simde_vld1q_f32(rows[0] + off), simde_vld1q_f32(rows[1] + off));
  const simde_float32x4x2_t q = simde_vtrnq_f32(simde_vld1q_f32(rows[2] + off), simde_vld1q_f32(rows[3] + off));
  out[0] = simde_vcombine_f32(simde_vget_low_f32(p.val[0]), simde_vget_low_f32(q.val[0]));
  out[1] = simde_vcombine_f32(simde_vget_low_f32(p.val[1]), simde_vget_low_f32(q.val[1]));
  out[2] = simde_vcombine_f32(simde_vget_high_f32(p.val[0]), simde_vget_high_f32(q.val[0]));
  out[3] = simde_vcombine_f32(simde_vget_high_f32(p.val[1]), simde_vget_high_f32(q.val[1]));
}

#include "ops/natten/natten_impl.h"
