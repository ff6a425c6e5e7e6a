/* ops/coreffn/axpyq_neon.c — the Q4_0 axpy over neurons with int8 neuron
 * coefficients (rule in coreffn.h, spr_axpyq) with NEON, written with SIMDe.
 *
 * A tile is one output block (32 outputs). Per group of 32 neurons: the 32
 * products a[i] * d_i (f32, 4 per vector), their max |p| (exact in any
 * order), S = m / 127 and 127 / m in scalar f32 (A32 NEON has no divide),
 * the coefficients c_i = round-half-even(p_i * (127 / m)) (A64 FCVTNS; A32
 * adds and subtracts 1.5 * 2^23, exact for |x| <= 127.5). Then per neuron
 * one VMLAL.S8 per 8 outputs of c_i * (code - 8) into int16: |c q| <= 127 *
 * 8 = 1016, so a whole group of 32 sums to at most 32512 (exact, no int32
 * widening or -8 * sum(c) correction inside the group). At the end of the
 * group the 32 int16 sums are widened and y = fma(S, (float)t, y) (VFMA).
 * The same IEEE operations as the scalar entry: the same bits.
 *
 * Groups whose m is below 2^-64 (tiny or subnormal activations) run the
 * scalar rule as written: A32 NEON flushes subnormal inputs and results to
 * zero, which the scalar VFP code does not, and 127 / m may overflow. From
 * m >= 2^-64 on, any product that NEON flushes has |p| < 2^-110 and a
 * coefficient that rounds to 0 either way, S >= 2^-71, and every y stays a
 * multiple of 2^-94: nothing subnormal is left to flush.
 *
 * vdotq_s32 is not used: it sums 4 neighbouring bytes into one lane, which
 * here would be the codes of 4 different neurons (rows) for the same output,
 * so every 4 neurons x 32 outputs would need 8 ZIPs before 8 SDOTs, against
 * 16 SMLALs on the int16 path; the per-neuron unpacking is the same. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <math.h>
#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/common/neon_compat.h"
#include "ops/coreffn/coreffn.h"

enum { G = SPR_AXPYQ_GROUP, PF = 8 };

static inline const uint8_t *row_at(const uint8_t *w, size_t ldw, const int32_t *idx, size_t i) {
  return w + (idx != NULL ? (size_t)idx[i] : i) * ldw;
}

/* round to nearest, ties to even, to int32 (|x| <= 127.5 here) */
static inline simde_int32x4_t round_s32(simde_float32x4_t x) {
#if SPR_NEON_A64
  return vcvtnq_s32_f32(x);
#else
  const simde_float32x4_t magic = simde_vdupq_n_f32(12582912.0f); /* 1.5 * 2^23 */
  return simde_vcvtq_s32_f32(simde_vsubq_f32(simde_vaddq_f32(x, magic), magic));
#endif
}

/* y + s * t, fused (VFMA). SIMDe's emulation on an x86 host without FMA
 * computes the product and the sum separately: there, per lane fmaf. */
static inline simde_float32x4_t fma_s(simde_float32x4_t y, simde_float32x4_t s, simde_float32x4_t t) {
#if SPR_NEON_EMULATED
  float vy[4], vs[4], vt[4];
  simde_vst1q_f32(vy, y);
  simde_vst1q_f32(vs, s);
  simde_vst1q_f32(vt, t);
  for (int l = 0; l < 4; l++) vy[l] = fmaf(vs[l], vt[l], vy[l]);
  return simde_vld1q_f32(vy);
#else
  return simde_vfmaq_f32(y, s, t);
#endif
}

/* The scalar entry's group step for one block (rows[i] = neuron g0 + i's
 * block), into yb[32]. */
static void group_scalar(size_t gn, const uint8_t *const *rows, const float *a, float *yb) {
  float p[G], m = 0.0f;
  for (size_t i = 0; i < gn; i++) {
    p[i] = a[i] * spr_fp16_load(rows[i]);
    m = fmaxf(m, fabsf(p[i]));
  }
  if (!(m > 0.0f)) return;
  const float s = m / 127.0f, inv = 127.0f / m;
  int32_t acc[32] = {0}, sc = 0;
  for (size_t i = 0; i < gn; i++) {
    const int32_t c = (int32_t)nearbyintf(p[i] * inv);
    const uint8_t *q = rows[i] + 2;
    sc += c;
    for (int j = 0; j < 16; j++) {
      acc[j] += c * (q[j] & 0xF);
      acc[j + 16] += c * (q[j] >> 4);
    }
  }
  for (int j = 0; j < 32; j++) yb[j] = fmaf(s, (float)(acc[j] - 8 * sc), yb[j]);
}

void spr_q4_0_axpyq_ukernel_32__neon(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne,
                                     float *y) {
  const uint8_t *wb = w;
  const simde_uint8x16_t m4 = simde_vdupq_n_u8(0x0F);
  const simde_int8x16_t eight = simde_vdupq_n_s8(8);
  for (size_t b = 0; b < ne / 32; b++) {
    const uint8_t *seg = wb + 18 * b;
    simde_float32x4_t fy[8];
    for (int k = 0; k < 8; k++) fy[k] = simde_vdupq_n_f32(0.0f);
    for (size_t g0 = 0; g0 < n; g0 += G) {
      const size_t gn = n - g0 < G ? n - g0 : G;
      const uint8_t *rows[G];
      uint16_t h[G];
      float av[G];
      for (size_t i = 0; i < G; i++) {
        rows[i] = i < gn ? row_at(seg, ldw, idx, g0 + i) : seg;
        av[i] = i < gn ? a[g0 + i] : 0.0f;
        h[i] = 0;
        if (i < gn) memcpy(&h[i], rows[i], sizeof(uint16_t));
      }
      simde_float32x4_t p[G / 4], mx = simde_vdupq_n_f32(0.0f);
      for (size_t k = 0; k < G / 4; k++) {
        p[k] = simde_vmulq_f32(simde_vld1q_f32(av + 4 * k), spr_vcvt_f32_f16_neon(simde_vld1_u16(h + 4 * k)));
        mx = simde_vmaxq_f32(mx, simde_vabsq_f32(p[k]));
      }
      simde_float32x2_t m2 = simde_vpmax_f32(simde_vget_low_f32(mx), simde_vget_high_f32(mx));
      m2 = simde_vpmax_f32(m2, m2);
      const float m = simde_vget_lane_f32(m2, 0);
      if (!(m > 0.0f)) continue;
      if (m < 0x1p-64f) { /* the scalar rule (see the top) */
        float yb[32];
        for (int k = 0; k < 8; k++) simde_vst1q_f32(yb + 4 * k, fy[k]);
        group_scalar(gn, rows, a + g0, yb);
        for (int k = 0; k < 8; k++) fy[k] = simde_vld1q_f32(yb + 4 * k);
        continue;
      }
      const float s = m / 127.0f, inv = 127.0f / m;
      int8_t c[G];
      for (size_t k = 0; k < G / 8; k++) {
        const simde_int32x4_t c0 = round_s32(simde_vmulq_n_f32(p[2 * k], inv));
        const simde_int32x4_t c1 = round_s32(simde_vmulq_n_f32(p[2 * k + 1], inv));
        simde_vst1_s8(c + 8 * k, simde_vmovn_s16(simde_vcombine_s16(simde_vmovn_s32(c0), simde_vmovn_s32(c1))));
      }
      simde_int16x8_t acc[4];
      for (int k = 0; k < 4; k++) acc[k] = simde_vdupq_n_s16(0);
      for (size_t i = 0; i < gn; i++) {
        if (g0 + i + PF < n) __builtin_prefetch(row_at(seg, ldw, idx, g0 + i + PF), 0, 3);
        const simde_uint8x16_t r = simde_vld1q_u8(rows[i] + 2);
        const simde_int8x16_t lo = simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vandq_u8(r, m4)), eight);
        const simde_int8x16_t hi = simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vshrq_n_u8(r, 4)), eight);
        const simde_int8x8_t cv = simde_vdup_n_s8(c[i]);
        acc[0] = simde_vmlal_s8(acc[0], simde_vget_low_s8(lo), cv);
        acc[1] = simde_vmlal_s8(acc[1], simde_vget_high_s8(lo), cv);
        acc[2] = simde_vmlal_s8(acc[2], simde_vget_low_s8(hi), cv);
        acc[3] = simde_vmlal_s8(acc[3], simde_vget_high_s8(hi), cv);
      }
      const simde_float32x4_t vs = simde_vdupq_n_f32(s);
      for (int k = 0; k < 4; k++) {
        const simde_int32x4_t t0 = simde_vmovl_s16(simde_vget_low_s16(acc[k]));
        const simde_int32x4_t t1 = simde_vmovl_s16(simde_vget_high_s16(acc[k]));
        fy[2 * k] = fma_s(fy[2 * k], vs, simde_vcvtq_f32_s32(t0));
        fy[2 * k + 1] = fma_s(fy[2 * k + 1], vs, simde_vcvtq_f32_s32(t1));
      }
    }
    for (int k = 0; k < 8; k++) simde_vst1q_f32(y + 32 * b + 4 * k, fy[k]);
  }
}
