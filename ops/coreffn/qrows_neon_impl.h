/* ops/coreffn/qrows_neon_impl.h — the row-gathered Q4_0 / Q8_0 GEMV of
 * qrows_neon.c and qrows_dotprod.c (contract in coreffn.h), on the plain
 * packed activations of ops/gemm/qgemm.h. Per block: the weights signed
 * (Q4_0 nibble - 8), the 32 int8 products summed exactly into int32 lanes by
 * QROWS_DOT16(acc, a, b) (16 products of a and b added to acc; the including
 * file defines it), one fused multiply-add by dw * dx into one of two
 * accumulators; the rows PF entries ahead in idx are prefetched. The
 * including file defines QROWS_DOT16 and QROWS_Q4_0 / QROWS_Q8_0 (the
 * ukernels' names), then includes this once. */
#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"
#include "ops/gemm/qgemm.h"

enum { PF = 4 };

static inline void prefetch_row(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
}

static inline float hsum(simde_float32x4_t v) {
  const simde_float32x2_t s = simde_vadd_f32(simde_vget_low_f32(v), simde_vget_high_f32(v));
  return simde_vget_lane_f32(simde_vpadd_f32(s, s), 0);
}

static float x8_0_row(const int Q4, size_t kb, const uint8_t *w, const void *xq) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_0_plain_d(xq, kb);
  const size_t bb = Q4 ? 18 : 34;
  simde_float32x4_t acc[2] = {simde_vdupq_n_f32(0.0f), simde_vdupq_n_f32(0.0f)};
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *blk = w + bb * b;
    simde_int8x16_t q0, q1;
    if (Q4) {
      const simde_uint8x16_t r = simde_vld1q_u8(blk + 2);
      const simde_int8x16_t eight = simde_vdupq_n_s8(8);
      q0 = simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vandq_u8(r, simde_vdupq_n_u8(0x0F))), eight);
      q1 = simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vshrq_n_u8(r, 4)), eight);
    } else {
      q0 = simde_vld1q_s8((const int8_t *)(blk + 2));
      q1 = simde_vld1q_s8((const int8_t *)(blk + 18));
    }
    simde_int32x4_t t = QROWS_DOT16(simde_vdupq_n_s32(0), q0, simde_vld1q_s8(qx + 32 * b));
    t = QROWS_DOT16(t, q1, simde_vld1q_s8(qx + 32 * b + 16));
    acc[b & 1] = simde_vfmaq_f32(acc[b & 1], simde_vcvtq_f32_s32(t), simde_vdupq_n_f32(spr_fp16_load(blk) * dx[b]));
  }
  return hsum(simde_vaddq_f32(acc[0], acc[1]));
}

static inline void qrows(const int Q4, size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw,
                         const void *xq, float *c) {
  const uint8_t *wb = w;
  const size_t bytes = kb * (Q4 ? 18 : 34);
  for (size_t i = 0; i < n && i < PF; i++) prefetch_row(wb + (size_t)idx[i] * ldw, bytes);
  for (size_t i = 0; i < n; i++) {
    if (i + PF < n) prefetch_row(wb + (size_t)idx[i + PF] * ldw, bytes);
    c[i] = x8_0_row(Q4, kb, wb + (size_t)idx[i] * ldw, xq);
  }
}

void QROWS_Q4_0(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq, float *c) {
  qrows(1, kb, n, idx, w, ldw, xq, c);
}

void QROWS_Q8_0(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq, float *c) {
  qrows(0, kb, n, idx, w, ldw, xq, c);
}
