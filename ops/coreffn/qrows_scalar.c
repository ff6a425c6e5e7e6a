/* ops/coreffn/qrows_scalar.c — portable row-gathered GEMV ukernels (contract
 * in coreffn.h), on the plain packed activations of ops/gemm/qgemm.h: per
 * block an exact integer sum, one f32 multiply-add per block. */
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"
#include "ops/gemm/qgemm.h"

void spr_q4_0_qrows_ukernel__scalar(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq,
                                    float *c) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_0_plain_d(xq, kb);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *row = (const uint8_t *)w + (size_t)idx[i] * ldw;
    float sum = 0.0f;
    for (size_t b = 0; b < kb; b++) {
      const uint8_t *blk = row + 18 * b, *q = blk + 2;
      const int8_t *x = qx + 32 * b;
      int32_t isum = 0;
      for (int t = 0; t < 16; t++) isum += ((q[t] & 0xF) - 8) * x[t] + ((q[t] >> 4) - 8) * x[t + 16];
      sum += (float)isum * (spr_fp16_load(blk) * dx[b]);
    }
    c[i] = sum;
  }
}

void spr_q8_0_qrows_ukernel__scalar(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq,
                                    float *c) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_0_plain_d(xq, kb);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *row = (const uint8_t *)w + (size_t)idx[i] * ldw;
    float sum = 0.0f;
    for (size_t b = 0; b < kb; b++) {
      const uint8_t *blk = row + 34 * b;
      const int8_t *q = (const int8_t *)(blk + 2), *x = qx + 32 * b;
      int32_t isum = 0;
      for (int t = 0; t < 32; t++) isum += q[t] * x[t];
      sum += (float)isum * (spr_fp16_load(blk) * dx[b]);
    }
    c[i] = sum;
  }
}

/* Bundled gate/up (gu.inc): the scalar qrows sum on the gate and the up
 * segment of each bundle (no prefetch). */
void spr_q4_0_gu_ukernel__scalar(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, size_t n_pf,
                                 const void *xq, float *g, float *u) {
  (void)n_pf;
  for (size_t i = 0; i < n; i++) {
    const int32_t r = idx != NULL ? idx[i] : (int32_t)i;
    spr_q4_0_qrows_ukernel__scalar(kb, 1, &r, w, ldw, xq, g + i);
    spr_q4_0_qrows_ukernel__scalar(kb, 1, &r, (const uint8_t *)w + 18 * kb, ldw, xq, u + i);
  }
}
