/* ops/softmax/f32_softmax_scalar.c — the plain-float twin of the vector
 * softmax ukernels (libm expf, no ISA flags): the fallback on any CPU.
 * The vector ukernels keep 16-64 float partial sums instead. */
#include <math.h>

#include "ops/softmax/softmax.h"

void spr_f32_softmax_ukernel_1__scalar(size_t n, const float *x, float scale, float *y) {
  float m = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    const float v = x[i] * scale;
    m = v > m ? v : m;
  }
  /* Compensated (Kahan) sum: one float accumulator alone drifts by ~n ulp on
   * long rows and the row would no longer sum to 1 within 1e-6. */
  float sum = 0.0f, comp = 0.0f;
  for (size_t i = 0; i < n; i++) {
    const float e = expf(x[i] * scale - m);
    y[i] = e;
    const float v = e - comp, t = sum + v;
    comp = (t - sum) - v;
    sum = t;
  }
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; i++) y[i] *= inv;
}
