/* ops/act/f32_act_scalar.c — the plain-float twins of the vector activation
 * ukernels (libm erff/expf, no ISA flags): the fallback on any CPU. */
#include <math.h>

#include "ops/act/act_ukernels.h"

void spr_f32_gelu_ukernel_1__scalar(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678f));
  }
}

void spr_f32_silu_ukernel_1__scalar(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    y[i] = v / (1.0f + expf(-v));
  }
}

void spr_f32_relu_ukernel_1__scalar(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
