/* ops/norm/rmsnorm_ref.c — RMSNorm oracle: the definition, in double. */
#include <math.h>

#include "ops/norm/norm.h"

void spr_f32_rmsnorm_ref(size_t n, const float *x, const float *gamma, float eps, float *y) {
  double ss = 0.0;
  for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
  const double scale = 1.0 / sqrt(ss / (double)n + (double)eps);
  for (size_t i = 0; i < n; i++) y[i] = (float)((double)x[i] * scale * gamma[i]);
}
