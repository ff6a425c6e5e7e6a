/* ops/coreffn/qrows_neon.c — row-gathered Q4_0 / Q8_0 GEMV with NEON,
 * written with SIMDe: the block sums by vmull_s8 + vmlal_s8 + vpadalq_s16
 * (two products per int16 lane, |w x| <= 128 * 127: no overflow); the rest is
 * qrows_neon_impl.h. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

static inline simde_int32x4_t dot16(simde_int32x4_t acc, simde_int8x16_t a, simde_int8x16_t b) {
  simde_int16x8_t p = simde_vmull_s8(simde_vget_low_s8(a), simde_vget_low_s8(b));
  p = simde_vmlal_s8(p, simde_vget_high_s8(a), simde_vget_high_s8(b));
  return simde_vpadalq_s16(acc, p);
}

#define QROWS_DOT16 dot16
#define QROWS_Q4_0 spr_q4_0_qrows_ukernel__neon
#define QROWS_Q8_0 spr_q8_0_qrows_ukernel__neon
#include "ops/coreffn/qrows_neon_impl.h"
