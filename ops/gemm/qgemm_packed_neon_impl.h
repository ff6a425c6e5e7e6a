/* ops/gemm/qgemm_packed_neon_impl.h — the NEON packed-panel GEMM for M > 1
 * with Q8_0 / Q4_0 weights (struct spr_qgemm_packed in qgemm.h), written
 * once for two ISAs. The including file defines
 *   QDOT4(acc, w, x)  int32x4 acc, lane c += the dot product of bytes
 *                     4c..4c+3 of the int8x16 w and x
 *   QPGEMM            the ukernel's name
 *
 * Panel (spr_qx_0_packw_8, qgemm.c): 8 weight rows (output columns); per
 * 32-value block (288 bytes): 8 quads q of 32 bytes, column c's signed
 * codes of values 4q..4q+3 at 32q + 4c (Q4_0: nibble - 8), then the 8 f32
 * weight scales. Activations: the plain x8_0 layout (signed int8, f32
 * scale per block). Signed x signed: no correction term.
 *
 * Tile: up to 4 rows x 8 columns; per block and quad, two weight vectors
 * and one broadcast of 4 activation bytes per row feed 8 dot products; the
 * block's int32 sums are converted, multiplied by the column scales and
 * accumulated with the row's scale (one FMA). */
#ifndef SPR_OPS_GEMM_QGEMM_PACKED_NEON_IMPL_H
#define SPR_OPS_GEMM_QGEMM_PACKED_NEON_IMPL_H

#include <simde/arm/neon.h>
#include <string.h>

#include "ops/gemm/qgemm.h"

#define PINLINE static inline __attribute__((always_inline))

PINLINE void pn_tile(const int MR, size_t kb, size_t nr, const uint8_t *wp, const uint8_t *xq, size_t ldx,
                     const float *bias, float *c, size_t ldc) {
  simde_float32x4_t acc[4][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = simde_vdupq_n_f32(0.0f);
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *wb = wp + SPR_QX_0_PANEL8_BLOCK * b;
    simde_int32x4_t ai[4][2];
    for (int i = 0; i < MR; i++) ai[i][0] = ai[i][1] = simde_vdupq_n_s32(0);
    for (int q = 0; q < 8; q++) {
      const simde_int8x16_t w0 = simde_vld1q_s8((const int8_t *)(wb + 32 * q));
      const simde_int8x16_t w1 = simde_vld1q_s8((const int8_t *)(wb + 32 * q + 16));
      for (int i = 0; i < MR; i++) {
        int32_t xv;
        memcpy(&xv, xq + (size_t)i * ldx + 32 * b + 4 * q, 4);
        const simde_int8x16_t xb = simde_vreinterpretq_s8_s32(simde_vdupq_n_s32(xv));
        ai[i][0] = QDOT4(ai[i][0], w0, xb);
        ai[i][1] = QDOT4(ai[i][1], w1, xb);
      }
    }
    float dw[8];
    memcpy(dw, wb + 256, sizeof dw);
    const simde_float32x4_t d0 = simde_vld1q_f32(dw), d1 = simde_vld1q_f32(dw + 4);
    for (int i = 0; i < MR; i++) {
      const simde_float32x4_t s = simde_vdupq_n_f32(spr_x8_0_plain_d(xq + (size_t)i * ldx, kb)[b]);
      acc[i][0] = simde_vfmaq_f32(acc[i][0], simde_vmulq_f32(simde_vcvtq_f32_s32(ai[i][0]), d0), s);
      acc[i][1] = simde_vfmaq_f32(acc[i][1], simde_vmulq_f32(simde_vcvtq_f32_s32(ai[i][1]), d1), s);
    }
  }
  for (int i = 0; i < MR; i++) {
    float r[8];
    simde_vst1q_f32(r, acc[i][0]);
    simde_vst1q_f32(r + 4, acc[i][1]);
    for (size_t j = 0; j < nr && j < 8; j++) c[(size_t)i * ldc + j] = r[j] + (bias != NULL ? bias[j] : 0.0f);
  }
}

void QPGEMM(size_t kb, size_t mr, size_t nr, const void *wp, const void *xq, size_t ldx, const float *bias, float *c,
            size_t ldc) {
  switch (mr) {
    case 1:
      pn_tile(1, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    case 2:
      pn_tile(2, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    case 3:
      pn_tile(3, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
    default:
      pn_tile(4, kb, nr, wp, xq, ldx, bias, c, ldc);
      break;
  }
}

#endif
