/* ops/coreffn/axpy_neon.c — axpy-over-neurons ukernels with NEON, written
 * with SIMDe (contract in coreffn.h). A tile of 32 outputs lives in 8 q
 * accumulators while the selected neurons stream past (one Q8_0/Q4_0 block
 * per tile); tails use the same fused multiply-add per element. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"

enum { PF = 8 };

static inline const uint8_t *row_at(const uint8_t *w, size_t ldw, const int32_t *idx, size_t i) {
  return w + (idx != NULL ? (size_t)idx[i] : i) * ldw;
}

static inline void prefetch_row(const uint8_t *p) {
  __builtin_prefetch(p, 0, 3);
}

static inline simde_float32x4_t load4_f32(const uint8_t *p) {
  float t[4];
  memcpy(t, p, sizeof t);
  return simde_vld1q_f32(t);
}

static inline simde_float32x4_t load4_f16(const uint8_t *p) {
  uint16_t t[4];
  memcpy(t, p, sizeof t);
  return simde_vcvt_f32_f16(simde_vreinterpret_f16_u16(simde_vld1_u16(t)));
}

#define FLOAT_AXPY(name, esize, LOAD4)                                                                          \
  void name(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y) {     \
    const uint8_t *wb = w;                                                                                      \
    size_t e0 = 0;                                                                                              \
    for (; e0 + 32 <= ne; e0 += 32) {                                                                           \
      simde_float32x4_t acc[8];                                                                                 \
      for (int t = 0; t < 8; t++) acc[t] = simde_vdupq_n_f32(0.0f);                                             \
      const uint8_t *seg = wb + e0 * (esize);                                                                   \
      for (size_t i = 0; i < n; i++) {                                                                          \
        const uint8_t *r = row_at(seg, ldw, idx, i);                                                            \
        if (i + PF < n) prefetch_row(row_at(seg, ldw, idx, i + PF));                                            \
        const simde_float32x4_t vs = simde_vdupq_n_f32(a[i]);                                                   \
        for (int t = 0; t < 8; t++) acc[t] = simde_vfmaq_f32(acc[t], LOAD4(r + 4 * t * (esize)), vs);           \
      }                                                                                                         \
      for (int t = 0; t < 8; t++) simde_vst1q_f32(y + e0 + 4 * t, acc[t]);                                      \
    }                                                                                                           \
    for (; e0 + 4 <= ne; e0 += 4) {                                                                             \
      simde_float32x4_t acc = simde_vdupq_n_f32(0.0f);                                                          \
      const uint8_t *seg = wb + e0 * (esize);                                                                   \
      for (size_t i = 0; i < n; i++)                                                                            \
        acc = simde_vfmaq_f32(acc, LOAD4(row_at(seg, ldw, idx, i)), simde_vdupq_n_f32(a[i]));                   \
      simde_vst1q_f32(y + e0, acc);                                                                             \
    }                                                                                                           \
    if (e0 < ne) { /* the same vector FMA on a zero-padded copy (SIMDe may not fuse scalar and vector alike) */ \
      const size_t m = ne - e0;                                                                                 \
      simde_float32x4_t acc = simde_vdupq_n_f32(0.0f);                                                          \
      const uint8_t *seg = wb + e0 * (esize);                                                                   \
      for (size_t i = 0; i < n; i++) {                                                                          \
        uint8_t t[4 * (esize)];                                                                                 \
        memset(t, 0, sizeof t);                                                                                 \
        memcpy(t, row_at(seg, ldw, idx, i), m *(esize));                                                        \
        acc = simde_vfmaq_f32(acc, LOAD4(t), simde_vdupq_n_f32(a[i]));                                          \
      }                                                                                                         \
      float out[4];                                                                                             \
      simde_vst1q_f32(out, acc);                                                                                \
      memcpy(y + e0, out, m * sizeof(float));                                                                   \
    }                                                                                                           \
  }

FLOAT_AXPY(spr_f32_axpy_ukernel_32__neon, 4, load4_f32)
FLOAT_AXPY(spr_f16_axpy_ukernel_32__neon, 2, load4_f16)

/* The 32 codes of a block as 8 vectors of 4 floats (values 4t .. 4t+3). */
static inline void widen16(simde_int8x16_t q, simde_float32x4_t *v) {
  const simde_int16x8_t l = simde_vmovl_s8(simde_vget_low_s8(q)), h = simde_vmovl_s8(simde_vget_high_s8(q));
  v[0] = simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_low_s16(l)));
  v[1] = simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_high_s16(l)));
  v[2] = simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_low_s16(h)));
  v[3] = simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_high_s16(h)));
}

static inline void q8_0_codes(const uint8_t *blk, simde_float32x4_t *v) {
  int8_t t[32];
  memcpy(t, blk + 2, sizeof t);
  widen16(simde_vld1q_s8(t), v);
  widen16(simde_vld1q_s8(t + 16), v + 4);
}

static inline void q4_0_codes(const uint8_t *blk, simde_float32x4_t *v) {
  uint8_t t[16];
  memcpy(t, blk + 2, sizeof t);
  const simde_uint8x16_t q = simde_vld1q_u8(t);
  const simde_int8x16_t eight = simde_vdupq_n_s8(8);
  widen16(simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vandq_u8(q, simde_vdupq_n_u8(15))), eight), v);
  widen16(simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vshrq_n_u8(q, 4)), eight), v + 4);
}

#define BLOCK_AXPY(name, bb, CODES)                                                                         \
  void name(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y) { \
    const uint8_t *wb = w;                                                                                  \
    for (size_t b0 = 0; b0 < ne / 32; b0++) {                                                               \
      simde_float32x4_t acc[8];                                                                             \
      for (int t = 0; t < 8; t++) acc[t] = simde_vdupq_n_f32(0.0f);                                         \
      const uint8_t *seg = wb + b0 * (bb);                                                                  \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *blk = row_at(seg, ldw, idx, i);                                                      \
        if (i + PF < n) prefetch_row(row_at(seg, ldw, idx, i + PF));                                        \
        const simde_float32x4_t vs = simde_vdupq_n_f32(a[i] * spr_fp16_load(blk));                          \
        simde_float32x4_t v[8];                                                                             \
        CODES(blk, v);                                                                                      \
        for (int t = 0; t < 8; t++) acc[t] = simde_vfmaq_f32(acc[t], v[t], vs);                             \
      }                                                                                                     \
      for (int t = 0; t < 8; t++) simde_vst1q_f32(y + 32 * b0 + 4 * t, acc[t]);                             \
    }                                                                                                       \
  }

BLOCK_AXPY(spr_q8_0_axpy_ukernel_32__neon, 34, q8_0_codes)
BLOCK_AXPY(spr_q4_0_axpy_ukernel_32__neon, 18, q4_0_codes)
