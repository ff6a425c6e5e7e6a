/* ops/common/neon_compat.h — NEON operations whose natural intrinsic exists in
 * A64 only (or that SIMDe does not map to the instruction), written so that
 * every target gets native code: A64 (Pi 3/4/5 64-bit, Jetson), A32 with
 * NEON + VFPv4 (Pi 2/3/4 32-bit; the _neon.c files get -mfpu=neon-vfpv4
 * -mfp16-format=ieee), and the SIMDe emulation build on x86. Each helper gives
 * the same bits on every path (same operations in the same order).
 * Include only from *_neon.c / *_dotprod.c files, which carry the ISA guard. */
#ifndef SPR_OPS_COMMON_NEON_COMPAT_H
#define SPR_OPS_COMMON_NEON_COMPAT_H

#include <simde/arm/neon.h>

#if defined(__aarch64__) && defined(__ARM_NEON) && !SPR_NEON_EMULATED
#define SPR_NEON_A64 1
#else
#define SPR_NEON_A64 0
#endif

/* a + b * x[lane] (fused). A64: FMLA by element; A32 has no fused by-element
 * form (VMLA by scalar rounds twice), so the lane is broadcast first. */
#if SPR_NEON_A64
#define SPR_VFMAQ_LANEQ_F32(a, b, x, lane) vfmaq_laneq_f32((a), (b), (x), (lane))
#else
#define SPR_VFMAQ_LANEQ_F32(a, b, x, lane) \
  simde_vfmaq_f32((a), (b), simde_vdupq_n_f32(simde_vgetq_lane_f32((x), (lane))))
#endif

/* [a0+a1, a2+a3, b0+b1, b2+b3] (A64 FADDP; A32: two VPADD on the halves). */
static inline simde_float32x4_t spr_vpaddq_f32_neon(simde_float32x4_t a, simde_float32x4_t b) {
#if SPR_NEON_A64
  return vpaddq_f32(a, b);
#else
  return simde_vcombine_f32(simde_vpadd_f32(simde_vget_low_f32(a), simde_vget_high_f32(a)),
                            simde_vpadd_f32(simde_vget_low_f32(b), simde_vget_high_f32(b)));
#endif
}

/* [a0+a1, a2+a3, ..., b6+b7] in int16 (A64 ADDP; A32: two VPADD on the halves). */
static inline simde_int16x8_t spr_vpaddq_s16_neon(simde_int16x8_t a, simde_int16x8_t b) {
#if SPR_NEON_A64
  return vpaddq_s16(a, b);
#else
  return simde_vcombine_s16(simde_vpadd_s16(simde_vget_low_s16(a), simde_vget_high_s16(a)),
                            simde_vpadd_s16(simde_vget_low_s16(b), simde_vget_high_s16(b)));
#endif
}

/* Byte i = t[idx[i]] for idx < 16 (A64 TBL with one q register; A32 has
 * VTBL on d registers only: two lookups into the table's two halves). */
static inline simde_uint8x16_t spr_vqtbl1q_u8_neon(simde_uint8x16_t t, simde_uint8x16_t idx) {
#if SPR_NEON_A64
  return vqtbl1q_u8(t, idx);
#else
  simde_uint8x8x2_t tt;
  tt.val[0] = simde_vget_low_u8(t);
  tt.val[1] = simde_vget_high_u8(t);
  return simde_vcombine_u8(simde_vtbl2_u8(tt, simde_vget_low_u8(idx)), simde_vtbl2_u8(tt, simde_vget_high_u8(idx)));
#endif
}

/* 4 IEEE half floats (as bits) to f32, exactly. The conversion is base NEON
 * (A64 FCVTL; A32 VCVT.F32.F16 with VFPv4 and -mfp16-format=ieee), but SIMDe
 * only uses it when fp16 *arithmetic* is enabled and otherwise converts in
 * scalar software: call the instruction directly where it exists. */
static inline simde_float32x4_t spr_vcvt_f32_f16_neon(simde_uint16x4_t h) {
#if defined(__ARM_NEON) && !SPR_NEON_EMULATED && \
    (defined(__aarch64__) || ((__ARM_FP & 2) && defined(__ARM_FP16_FORMAT_IEEE)))
  return vcvt_f32_f16(vreinterpret_f16_u16(h));
#else
  return simde_vcvt_f32_f16(simde_vreinterpret_f16_u16(h));
#endif
}

#endif
