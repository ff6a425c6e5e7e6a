/* ops/coreffn/qrows_scalar.c — portable row-gathered GEMV ukernels (contract
 * in coreffn.h), on the plain packed activations of ops/gemm/qgemm.h: per
 * block an exact integer sum, one f32 multiply-add per block. Also the
 * packed gate/up layout of the compact decode: its packer and the bundled
 * gate/up ukernel's twin over it. */
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

/* The packed gate/up layout (coreffn.h): block b's codes and scale. */
static inline const uint8_t *packed_codes(const uint8_t *row, size_t kb, size_t b) {
  return row + 144 * (b / 8) + 16 * (b % 8);
}
static inline float packed_d(const uint8_t *row, size_t kb, size_t b) {
  const size_t m = kb - b / 8 * 8 < 8 ? kb - b / 8 * 8 : 8;
  return spr_fp16_load(row + 144 * (b / 8) + 16 * m + 2 * (b % 8));
}

static float q4_0_packed_dot(size_t kb, const uint8_t *row, const int8_t *qx, const float *dx) {
  float sum = 0.0f; /* the steps of spr_q4_0_qrows_ukernel__scalar */
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *q = packed_codes(row, kb, b);
    const int8_t *x = qx + 32 * b;
    int32_t isum = 0;
    for (int t = 0; t < 16; t++) isum += ((q[t] & 0xF) - 8) * x[t] + ((q[t] >> 4) - 8) * x[t + 16];
    sum += (float)isum * (packed_d(row, kb, b) * dx[b]);
  }
  return sum;
}

void spr_q4_0_gu_packed__scalar(size_t kb, size_t n, const void *w, size_t ldw, size_t n_pf, const void *xq, float *g,
                                float *u, const void *pf, size_t pf_bytes) {
  (void)n_pf, (void)pf, (void)pf_bytes; /* no prefetch in the portable twin */
  const float *dx = spr_x8_0_plain_d(xq, kb);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *row = (const uint8_t *)w + i * ldw;
    g[i] = q4_0_packed_dot(kb, row, xq, dx);
    u[i] = q4_0_packed_dot(kb, row + 18 * kb, xq, dx);
  }
}

void spr_gu_pack_row(const uint8_t *row, size_t kb, uint8_t *out) {
  for (size_t h = 0; 8 * h < kb; h++) {
    const size_t m = kb - 8 * h < 8 ? kb - 8 * h : 8;
    for (size_t t = 0; t < m; t++) {
      const uint8_t *blk = row + 18 * (8 * h + t);
      memcpy(out + 144 * h + 16 * t, blk + 2, 16);
      memcpy(out + 144 * h + 16 * m + 2 * t, blk, 2);
    }
  }
}
