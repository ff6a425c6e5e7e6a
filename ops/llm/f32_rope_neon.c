/* ops/llm/f32_rope_neon.c — RoPE row ukernel, NEON (SIMDe names): 2 pairs
 * per vector; multiplies and an add, no FMA, so the bits equal the scalar
 * ukernel's. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>
#include <string.h>

#include "ops/llm/llm.h"

void spr_f32_rope_ukernel_4__neon(size_t n_heads, size_t head_dim, size_t n_rot, const float *cs, const float *x,
                                  float *y) {
  const float *cc = cs, *ss = cs + n_rot;
  const size_t nv = n_rot / 4 * 4;
  for (size_t h = 0; h < n_heads; h++, x += head_dim, y += head_dim) {
    size_t k = 0;
    for (; k < nv; k += 4) {
      const simde_float32x4_t v = simde_vld1q_f32(x + k);
      const simde_float32x4_t sw = simde_vrev64q_f32(v); /* (x1, x0) per pair */
      const simde_float32x4_t a = simde_vmulq_f32(v, simde_vld1q_f32(cc + k));
      const simde_float32x4_t b = simde_vmulq_f32(sw, simde_vld1q_f32(ss + k));
      simde_vst1q_f32(y + k, simde_vaddq_f32(a, b));
    }
    for (; k < n_rot; k += 2) {
      const float x0 = x[k], x1 = x[k + 1];
      y[k] = x0 * cc[k] + x1 * ss[k];
      y[k + 1] = x1 * cc[k + 1] + x0 * ss[k + 1];
    }
    if (y != x && head_dim > n_rot) memcpy(y + n_rot, x + n_rot, (head_dim - n_rot) * sizeof(float));
  }
}
