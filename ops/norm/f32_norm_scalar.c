/* ops/norm/f32_norm_scalar.c — the plain-float twins of the vector norm
 * ukernels (sequential sums, no ISA flags): the fallback on any CPU. */
#include <math.h>

#include "ops/norm/norm.h"

void spr_f32_layernorm_ukernel_1__scalar(size_t n, const float *x, const float *gamma, const float *beta, float eps,
                                         float *y) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; i++) sum += x[i];
  const float mean = sum / (float)n;
  float ss = 0.0f;
  for (size_t i = 0; i < n; i++) {
    const float d = x[i] - mean;
    ss += d * d;
  }
  const float rstd = 1.0f / sqrtf(ss / (float)n + eps);
  if (beta != NULL) {
    for (size_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
  } else {
    for (size_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * gamma[i];
  }
}

void spr_f32_rmsnorm_ukernel_1__scalar(size_t n, const float *x, const float *gamma, float eps, float *y) {
  float ss = 0.0f;
  for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
  const float scale = 1.0f / sqrtf(ss / (float)n + eps);
  for (size_t i = 0; i < n; i++) y[i] = x[i] * scale * gamma[i];
}
