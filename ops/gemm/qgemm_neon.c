/* ops/gemm/qgemm_neon.c — NEON quantized GEMM ukernels (ARMv8.0 / ARMv7 with
 * NEON; SIMDe). The int8 dot: vmull_s8 + vmlal_s8 into int16, vpadalq_s16
 * into int32 (see qgemm_neon_impl.h). */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

#include "ops/common/neon_compat.h"

static inline simde_int32x4_t qdot_neon(simde_int32x4_t acc, simde_int8x16_t a, simde_int8x16_t b) {
  simde_int16x8_t p = simde_vmull_s8(simde_vget_low_s8(a), simde_vget_low_s8(b));
  p = simde_vmlal_s8(p, simde_vget_high_s8(a), simde_vget_high_s8(b));
  return simde_vpadalq_s16(acc, p);
}

#define QDOT(acc, a, b) qdot_neon((acc), (a), (b))
#define QNAME(t) spr_##t##_gemm_ukernel_2x2__neon
#include "ops/gemm/qgemm_neon_impl.h"

/* The packed-panel GEMM (qgemm_packed_neon_impl.h) needs the four products
 * of each int32 lane's own bytes: the products of bytes 0..7 and 8..15 in
 * int16, pairs added (|sum| <= 2 * 128 * 127 < 2^15), then pairs of pairs
 * into the int32 lanes. */
static inline simde_int32x4_t qdot4_neon(simde_int32x4_t acc, simde_int8x16_t a, simde_int8x16_t b) {
  const simde_int16x8_t lo = simde_vmull_s8(simde_vget_low_s8(a), simde_vget_low_s8(b));
  const simde_int16x8_t hi = simde_vmull_s8(simde_vget_high_s8(a), simde_vget_high_s8(b));
  return simde_vpadalq_s16(acc, spr_vpaddq_s16_neon(lo, hi));
}

#define QDOT4(acc, w, x) qdot4_neon((acc), (w), (x))
#define QPGEMM spr_qx_0_pgemm_ukernel_4x8__neon
#include "ops/gemm/qgemm_packed_neon_impl.h"
