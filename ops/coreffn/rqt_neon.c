/* ops/coreffn/rqt_neon.c — transposing requantizers with NEON, written with
 * SIMDe (contract in coreffn.h). The output is column-major in the rows (a
 * column's 32 codes are one Q8_0 block), so the rows go in the lanes.
 * Q8_0: the 32 x 32 codes of a block of columns are transposed first (16 x
 * 16 byte tiles: VTRN on 8-, 16-, 32-bit lanes, then the 64-bit halves),
 * then per column the 32 values (code * row scale, one f32 multiply as the
 * scalar entry), their max |v| (exact in any order), the scale and inverse
 * in scalar f32 (divisions; A32 NEON has no vector divide), and the codes
 * trunc(s + copysign(0.5, s)) with s = v * id: the scalar entry's IEEE
 * operations, unfused, so the bytes are equal. (A32 NEON flushes
 * subnormals; none occur: |v| >= 2^-24 unless 0, so |s| >= 2^-24 * 127 /
 * 2^23 is normal.) Q4_0: per row its 16-entry table (the scalar entry's f32
 * products, rounded half to even by adding and subtracting 1.5 * 2^23: A32
 * has no rounding conversion; |f| >= 2^-24 * 127 / 2^19, so no product is
 * subnormal), its codes by VTBL, then the same 16 x 16 transposes. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/common/neon_compat.h"
#include "ops/coreffn/coreffn.h"

/* r[0..16) = 16 rows of 16 bytes -> r[j] = column j (its 16 rows in order) */
static inline void transpose16(simde_uint8x16_t *r) {
  simde_uint8x16_t a[16], b[16], c[16];
  for (int p = 0; p < 8; p++) {
    const simde_uint8x16x2_t t = simde_vtrnq_u8(r[2 * p], r[2 * p + 1]);
    a[2 * p] = t.val[0], a[2 * p + 1] = t.val[1];
  }
  for (int q = 0; q < 4; q++)
    for (int e = 0; e < 2; e++) {
      const simde_uint16x8x2_t t =
          simde_vtrnq_u16(simde_vreinterpretq_u16_u8(a[4 * q + e]), simde_vreinterpretq_u16_u8(a[4 * q + 2 + e]));
      b[4 * q + e] = simde_vreinterpretq_u8_u16(t.val[0]), b[4 * q + 2 + e] = simde_vreinterpretq_u8_u16(t.val[1]);
    }
  for (int s = 0; s < 2; s++)
    for (int f = 0; f < 4; f++) {
      const simde_uint32x4x2_t t =
          simde_vtrnq_u32(simde_vreinterpretq_u32_u8(b[8 * s + f]), simde_vreinterpretq_u32_u8(b[8 * s + 4 + f]));
      c[8 * s + f] = simde_vreinterpretq_u8_u32(t.val[0]), c[8 * s + 4 + f] = simde_vreinterpretq_u8_u32(t.val[1]);
    }
  for (int g = 0; g < 8; g++) {
    r[g] = simde_vcombine_u8(simde_vget_low_u8(c[g]), simde_vget_low_u8(c[8 + g]));
    r[8 + g] = simde_vcombine_u8(simde_vget_high_u8(c[g]), simde_vget_high_u8(c[8 + g]));
  }
}

/* 16 int8 codes -> 4 x 4 floats times the rows' scales d[0..4) */
static inline void widen16(simde_int8x16_t q, const simde_float32x4_t *d, simde_float32x4_t *v) {
  const simde_int16x8_t w0 = simde_vmovl_s8(simde_vget_low_s8(q)), w1 = simde_vmovl_s8(simde_vget_high_s8(q));
  v[0] = simde_vmulq_f32(simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_low_s16(w0))), d[0]);
  v[1] = simde_vmulq_f32(simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_high_s16(w0))), d[1]);
  v[2] = simde_vmulq_f32(simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_low_s16(w1))), d[2]);
  v[3] = simde_vmulq_f32(simde_vcvtq_f32_s32(simde_vmovl_s16(simde_vget_high_s16(w1))), d[3]);
}

static inline simde_int16x8_t narrow8(simde_int32x4_t a, simde_int32x4_t b) {
  return simde_vcombine_s16(simde_vmovn_s32(a), simde_vmovn_s32(b));
}

/* one column: its codes in rows 0..15 (q0) and 16..31 (q1), d[8] the rows'
 * scales; writes the Q8_0 block at blk */
static inline void column(simde_int8x16_t q0, simde_int8x16_t q1, const simde_float32x4_t *d, uint8_t *blk) {
  simde_float32x4_t v[8];
  widen16(q0, d, v);
  widen16(q1, d + 4, v + 4);
  simde_float32x4_t mx = simde_vabsq_f32(v[0]);
  for (int k = 1; k < 8; k++) mx = simde_vmaxq_f32(mx, simde_vabsq_f32(v[k]));
  simde_float32x2_t m2 = simde_vpmax_f32(simde_vget_low_f32(mx), simde_vget_high_f32(mx));
  m2 = simde_vpmax_f32(m2, m2);
  const float amax = simde_vget_lane_f32(m2, 0);
  const uint16_t h = spr_fp16_from_f32(amax / 127.0f);
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  memcpy(blk, &h, sizeof h);
  const simde_float32x4_t vid = simde_vdupq_n_f32(id);
  const simde_uint32x4_t sign = simde_vdupq_n_u32(0x80000000u), half = simde_vdupq_n_u32(0x3f000000u); /* 0.5f */
  simde_int32x4_t qi[8];
  for (int k = 0; k < 8; k++) {
    const simde_float32x4_t s = simde_vmulq_f32(v[k], vid);
    const simde_float32x4_t rh =
        simde_vreinterpretq_f32_u32(simde_vorrq_u32(half, simde_vandq_u32(simde_vreinterpretq_u32_f32(s), sign)));
    qi[k] = simde_vcvtq_s32_f32(simde_vaddq_f32(s, rh));
  }
  const simde_int8x16_t c0 =
      simde_vcombine_s8(simde_vmovn_s16(narrow8(qi[0], qi[1])), simde_vmovn_s16(narrow8(qi[2], qi[3])));
  const simde_int8x16_t c1 =
      simde_vcombine_s8(simde_vmovn_s16(narrow8(qi[4], qi[5])), simde_vmovn_s16(narrow8(qi[6], qi[7])));
  simde_vst1q_s8((int8_t *)(blk + 2), c0);
  simde_vst1q_s8((int8_t *)(blk + 18), c1);
}

/* the 32 rows' scales of the block at byte offset off */
static inline void row_scales(const uint8_t *w, size_t ldw, size_t off, simde_float32x4_t *d) {
  uint16_t h[32];
  for (size_t kk = 0; kk < 32; kk++) memcpy(&h[kk], w + kk * ldw + off, sizeof(uint16_t));
  for (int k = 0; k < 8; k++) d[k] = spr_vcvt_f32_f16_neon(simde_vld1_u16(h + 4 * k));
}

void spr_q4_0_rqt_ukernel__neon(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq) {
  const uint8_t *wb = w;
  const simde_uint8x16_t m4 = simde_vdupq_n_u8(0x0F);
  static const float kv[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
  simde_float32x4_t k[4];
  for (int i = 0; i < 4; i++) k[i] = simde_vld1q_f32(kv + 4 * i);
  const simde_float32x4_t magic = simde_vdupq_n_f32(0x1.8p23f); /* (x + m) - m: x rounded half to even */
  for (size_t b = 0; b < nbw / 32; b++) {
    float fk[32];
    uint16_t hd;
    uint8_t *out = (uint8_t *)wq + 32 * b * ldq;
    if (!spr_rqt_q4_0_group(wb + 18 * b, ldw, fk, &hd)) {
      for (size_t j = 0; j < 32; j++) memset(out + j * ldq, 0, 34);
      continue;
    }
    simde_uint8x16_t lo[32], hi[32]; /* row kk's codes of columns j (lo) and 16 + j (hi) */
    for (size_t kk = 0; kk < 32; kk++) {
      const simde_float32x4_t f = simde_vdupq_n_f32(fk[kk]);
      simde_int32x4_t t[4];
      for (int i = 0; i < 4; i++)
        t[i] = simde_vcvtq_s32_f32(simde_vsubq_f32(simde_vaddq_f32(simde_vmulq_f32(f, k[i]), magic), magic));
      const simde_uint8x16_t table = simde_vreinterpretq_u8_s8(
          simde_vcombine_s8(simde_vmovn_s16(narrow8(t[0], t[1])), simde_vmovn_s16(narrow8(t[2], t[3]))));
      const simde_uint8x16_t codes = simde_vld1q_u8(wb + kk * ldw + 18 * b + 2);
      lo[kk] = spr_vqtbl1q_u8_neon(table, simde_vandq_u8(codes, m4));
      hi[kk] = spr_vqtbl1q_u8_neon(table, simde_vshrq_n_u8(codes, 4));
    }
    transpose16(lo);
    transpose16(lo + 16);
    transpose16(hi);
    transpose16(hi + 16);
    for (size_t j = 0; j < 16; j++) {
      uint8_t *c0 = out + j * ldq, *c1 = out + (16 + j) * ldq;
      memcpy(c0, &hd, sizeof hd);
      memcpy(c1, &hd, sizeof hd);
      simde_vst1q_u8(c0 + 2, lo[j]);
      simde_vst1q_u8(c0 + 18, lo[16 + j]);
      simde_vst1q_u8(c1 + 2, hi[j]);
      simde_vst1q_u8(c1 + 18, hi[16 + j]);
    }
  }
}

void spr_q8_0_rqt_ukernel__neon(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq) {
  const uint8_t *wb = w;
  for (size_t b = 0; b < nbw / 32; b++) {
    simde_float32x4_t d[8];
    row_scales(wb, ldw, 34 * b, d);
    uint8_t *out = (uint8_t *)wq + 32 * b * ldq;
    for (size_t half = 0; half < 2; half++) { /* columns 16 * half + j */
      simde_uint8x16_t t0[16], t1[16];
      for (size_t kk = 0; kk < 16; kk++) {
        t0[kk] = simde_vld1q_u8(wb + kk * ldw + 34 * b + 2 + 16 * half);
        t1[kk] = simde_vld1q_u8(wb + (16 + kk) * ldw + 34 * b + 2 + 16 * half);
      }
      transpose16(t0);
      transpose16(t1);
      for (size_t j = 0; j < 16; j++)
        column(simde_vreinterpretq_s8_u8(t0[j]), simde_vreinterpretq_s8_u8(t1[j]), d, out + (16 * half + j) * ldq);
    }
  }
}
