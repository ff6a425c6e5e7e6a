/* ops/norm/layernorm_ref.c — LayerNorm oracle: the definition, in double. */
#include <math.h>

#include "ops/norm/norm.h"

void spr_f32_layernorm_ref(size_t n, const float *x, const float *gamma, const float *beta, float eps, float *y) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += x[i];
  const double mean = sum / (double)n;
  double ss = 0.0;
  for (size_t i = 0; i < n; i++) ss += ((double)x[i] - mean) * ((double)x[i] - mean);
  const double rstd = 1.0 / sqrt(ss / (double)n + (double)eps);
  for (size_t i = 0; i < n; i++) {
    const double v = ((double)x[i] - mean) * rstd * gamma[i] + (beta != NULL ? (double)beta[i] : 0.0);
    y[i] = (float)v;
  }
}
