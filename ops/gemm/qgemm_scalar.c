/* ops/gemm/qgemm_scalar.c — portable quantized GEMM ukernels (contracts in qgemm.h).
 * Tile 2 x 2; integer block sums as ggml's generic vec_dot, one f32
 * multiply-add per block (per super-block for the K-quants). */
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/gemm/qgemm.h"

static float dot_q8_0(size_t kb, const uint8_t *w, const void *xq) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_0_plain_d(xq, kb);
  float sum = 0.0f;
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *blk = w + b * 34;
    const int8_t *qw = (const int8_t *)(blk + 2), *q8 = qx + b * 32;
    int32_t isum = 0;
    for (int t = 0; t < 32; t++) isum += qw[t] * q8[t];
    sum += (float)isum * (spr_fp16_load(blk) * dx[b]);
  }
  return sum;
}

static float dot_q4_0(size_t kb, const uint8_t *w, const void *xq) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_0_plain_d(xq, kb);
  float sum = 0.0f;
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *blk = w + b * 18, *qw = blk + 2;
    const int8_t *q8 = qx + b * 32;
    int32_t isum = 0;
    for (int t = 0; t < 16; t++) isum += ((qw[t] & 0xF) - 8) * q8[t] + ((qw[t] >> 4) - 8) * q8[t + 16];
    sum += (float)isum * (spr_fp16_load(blk) * dx[b]);
  }
  return sum;
}

static float dot_q4_k(size_t kb, const uint8_t *w, const void *xq) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_k_plain_d(xq, kb);
  const int16_t *bsums = spr_x8_k_plain_bsums(xq, kb);
  float sum = 0.0f;
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *blk = w + b * 144, *scales = blk + 4, *qs = blk + 16;
    const int8_t *q8 = qx + b * 256;
    const int16_t *bs = bsums + b * 16;
    int32_t isum = 0, msum = 0;
    for (int c = 0; c < 4; c++) {
      uint8_t sc0, m0, sc1, m1;
      spr_q4_k_scale_min(2 * c, scales, &sc0, &m0);
      spr_q4_k_scale_min(2 * c + 1, scales, &sc1, &m1);
      int32_t d0 = 0, d1 = 0;
      for (int l = 0; l < 32; l++) {
        d0 += (qs[32 * c + l] & 0xF) * q8[64 * c + l];
        d1 += (qs[32 * c + l] >> 4) * q8[64 * c + 32 + l];
      }
      isum += sc0 * d0 + sc1 * d1;
      msum += m0 * (bs[4 * c] + bs[4 * c + 1]) + m1 * (bs[4 * c + 2] + bs[4 * c + 3]);
    }
    sum += (spr_fp16_load(blk) * dx[b]) * (float)isum - (spr_fp16_load(blk + 2) * dx[b]) * (float)msum;
  }
  return sum;
}

static float dot_q6_k(size_t kb, const uint8_t *w, const void *xq) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_k_plain_d(xq, kb);
  float sum = 0.0f;
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *blk = w + b * 210, *ql = blk, *qh = blk + 128;
    const int8_t *sc = (const int8_t *)(blk + 192);
    const int8_t *q8 = qx + b * 256;
    int32_t isum = 0;
    for (int h = 0; h < 2; h++) {
      int32_t g[8] = {0, 0, 0, 0, 0, 0, 0, 0}; /* sums of 16 values: g[2r + l/16] for row r of 32 */
      for (int l = 0; l < 32; l++) {
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        const int is = l / 16;
        g[0 + is] += q1 * q8[l];
        g[2 + is] += q2 * q8[l + 32];
        g[4 + is] += q3 * q8[l + 64];
        g[6 + is] += q4 * q8[l + 96];
      }
      for (int r = 0; r < 8; r++) isum += sc[r] * g[r];
      ql += 64;
      qh += 32;
      sc += 8;
      q8 += 128;
    }
    sum += (spr_fp16_load(blk + 208) * dx[b]) * (float)isum;
  }
  return sum;
}

#define DEFINE_SCALAR(name, dot)                                                                                       \
  void name(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq, size_t ldx, const float *bias, \
            float *c, size_t ldc) {                                                                                    \
    for (size_t i = 0; i < mr; i++)                                                                                    \
      for (size_t j = 0; j < nr; j++)                                                                                  \
        c[i * ldc + j] =                                                                                               \
            dot(kb, (const uint8_t *)w + j * ldw, (const uint8_t *)xq + i * ldx) + (bias != NULL ? bias[j] : 0.0f);    \
  }

DEFINE_SCALAR(spr_q8_0_gemm_ukernel_2x2__scalar, dot_q8_0)
DEFINE_SCALAR(spr_q4_0_gemm_ukernel_2x2__scalar, dot_q4_0)
DEFINE_SCALAR(spr_q4_k_gemm_ukernel_2x2__scalar, dot_q4_k)
DEFINE_SCALAR(spr_q6_k_gemm_ukernel_2x2__scalar, dot_q6_k)
