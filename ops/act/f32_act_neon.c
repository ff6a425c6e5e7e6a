/* ops/act/f32_act_neon.c — GELU / SiLU / ReLU with NEON (SIMDe names): one
 * vector per step; the tail goes through a zero-padded 4-lane buffer so
 * every element sees the same instruction sequence. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <string.h>

#include "ops/act/act_ukernels.h"
#include "ops/common/vmath_neon.h"

static inline simde_float32x4_t relu(simde_float32x4_t x) {
  return simde_vmaxq_f32(x, simde_vdupq_n_f32(0.0f));
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
