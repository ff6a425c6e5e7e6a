/* ops/coreffn/deq_neon.c — Q4_0 / Q8_0 strip dequantizers with NEON, written
 * with SIMDe (contract in coreffn.h): the same single rounding as ops/quant's. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"

static inline float scale_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return spr_fp16_to_f32(h);
}

/* 16 int8 values -> 16 floats times d at y */
static inline void store16(simde_int8x16_t q, float d, float *y) {
  const simde_int16x8_t w[2] = {simde_vmovl_s8(simde_vget_low_s8(q)), simde_vmovl_s8(simde_vget_high_s8(q))};
  for (int h = 0; h < 2; h++) {
    const simde_int32x4_t a = simde_vmovl_s16(simde_vget_low_s16(w[h])), b = simde_vmovl_s16(simde_vget_high_s16(w[h]));
    simde_vst1q_f32(y + 8 * h, simde_vmulq_n_f32(simde_vcvtq_f32_s32(a), d));
    simde_vst1q_f32(y + 8 * h + 4, simde_vmulq_n_f32(simde_vcvtq_f32_s32(b), d));
  }
}

void spr_q4_0_deq_ukernel__neon(const void *x, float *y, size_t n) {
  const uint8_t *b = x;
  const simde_int8x16_t eight = simde_vdupq_n_s8(8);
  for (size_t i = 0; i < n / 32; i++, b += 18) {
    const float d = scale_at(b);
    const simde_uint8x16_t r = simde_vld1q_u8(b + 2);
    store16(simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vandq_u8(r, simde_vdupq_n_u8(0x0F))), eight), d, y + 32 * i);
    store16(simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vshrq_n_u8(r, 4)), eight), d, y + 32 * i + 16);
  }
}

void spr_q8_0_deq_ukernel__neon(const void *x, float *y, size_t n) {
  const uint8_t *b = x;
  for (size_t i = 0; i < n / 32; i++, b += 34) {
    const float d = scale_at(b);
    store16(simde_vld1q_s8((const int8_t *)(b + 2)), d, y + 32 * i);
    store16(simde_vld1q_s8((const int8_t *)(b + 18)), d, y + 32 * i + 16);
  }
}
