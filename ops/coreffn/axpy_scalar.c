/* ops/coreffn/axpy_scalar.c — portable axpy-over-neurons ukernels (contract
 * in coreffn.h): neuron by neuron, the output segment accumulates in y. */
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"

static inline const uint8_t *row_at(const void *w, size_t ldw, const int32_t *idx, size_t i) {
  return (const uint8_t *)w + (idx != NULL ? (size_t)idx[i] : i) * ldw;
}

void spr_f32_axpy_ukernel_1__scalar(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne,
                                    float *y) {
  memset(y, 0, ne * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    const uint8_t *r = row_at(w, ldw, idx, i);
    const float s = a[i];
    for (size_t e = 0; e < ne; e++) {
      float v;
      memcpy(&v, r + 4 * e, sizeof v);
      y[e] += s * v;
    }
  }
}

void spr_f16_axpy_ukernel_1__scalar(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne,
                                    float *y) {
  memset(y, 0, ne * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    const uint8_t *r = row_at(w, ldw, idx, i);
    const float s = a[i];
    for (size_t e = 0; e < ne; e++) y[e] += s * spr_fp16_load(r + 2 * e);
  }
}

void spr_q8_0_axpy_ukernel_32__scalar(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                      size_t ne, float *y) {
  memset(y, 0, ne * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    const uint8_t *r = row_at(w, ldw, idx, i);
    for (size_t b = 0; b < ne / 32; b++) {
      const uint8_t *blk = r + 34 * b;
      const float s = a[i] * spr_fp16_load(blk);
      const int8_t *q = (const int8_t *)(blk + 2);
      float *yb = y + 32 * b;
      for (int j = 0; j < 32; j++) yb[j] += s * (float)q[j];
    }
  }
}

void spr_q4_0_axpy_ukernel_32__scalar(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                      size_t ne, float *y) {
  memset(y, 0, ne * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    const uint8_t *r = row_at(w, ldw, idx, i);
    for (size_t b = 0; b < ne / 32; b++) {
      const uint8_t *blk = r + 18 * b;
      const float s = a[i] * spr_fp16_load(blk);
      const uint8_t *q = blk + 2;
      float *yb = y + 32 * b;
      for (int j = 0; j < 16; j++) {
        yb[j] += s * (float)((q[j] & 0xF) - 8);
        yb[j + 16] += s * (float)((q[j] >> 4) - 8);
      }
    }
  }
}
