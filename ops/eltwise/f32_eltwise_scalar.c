/* ops/eltwise/f32_eltwise_scalar.c — plain-float add / mul / scale (no ISA
 * flags): the fallback on any CPU. */
#include "ops/eltwise/eltwise.h"

void spr_f32_add_ukernel_1__scalar(size_t n, const float *a, const float *b, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void spr_f32_mul_ukernel_1__scalar(size_t n, const float *a, const float *b, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

void spr_f32_scale_ukernel_1__scalar(size_t n, const float *x, float s, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] * s;
}
