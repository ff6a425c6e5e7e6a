/* ops/act/f32_act_neon.c — GELU / SiLU / ReLU with NEON (SIMDe names): one
 * vector per step; the tail goes through a zero-padded 4-lane buffer so
 * every element sees the same instruction sequence. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <string.h>

#include "ops/act/act_ukernels.h"
#include "ops/common/vmath_neon.h"

/* x > 0 ? x : +0 on the bits: A32 NEON flushes subnormal inputs of vmaxq_f32
 * to zero, and an integer compare keeps them exactly (like the scalar path). */
static inline simde_float32x4_t relu(simde_float32x4_t x) {
  const simde_uint32x4_t pos = simde_vcgtq_s32(simde_vreinterpretq_s32_f32(x), simde_vdupq_n_s32(0));
  return simde_vreinterpretq_f32_u32(simde_vandq_u32(simde_vreinterpretq_u32_f32(x), pos));
}

#define UNARY_UKERNEL(name, op)                                                    \
  void name(size_t n, const float *x, float *y) {                                  \
    size_t i = 0;                                                                  \
    for (; i + 4 <= n; i += 4) simde_vst1q_f32(y + i, op(simde_vld1q_f32(x + i))); \
    if (i < n) {                                                                   \
      float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                     \
      memcpy(buf, x + i, (n - i) * sizeof(float));                                 \
      simde_vst1q_f32(buf, op(simde_vld1q_f32(buf)));                              \
      memcpy(y + i, buf, (n - i) * sizeof(float));                                 \
    }                                                                              \
  }

UNARY_UKERNEL(spr_f32_gelu_ukernel_4__neon, spr_vgelu_neon)
UNARY_UKERNEL(spr_f32_silu_ukernel_4__neon, spr_vsilu_neon)
UNARY_UKERNEL(spr_f32_relu_ukernel_4__neon, relu)
