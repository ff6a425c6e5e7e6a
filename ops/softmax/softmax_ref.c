/* ops/softmax/softmax_ref.c — softmax oracle: the definition, in double. */
#include <math.h>

#include "ops/softmax/softmax.h"

void spr_f32_softmax_ref(size_t n, const float *x, float scale, float *y) {
  double m = -INFINITY;
  /* Not fmax(): GCC 12's aarch64 vectorizer crashes on that reduction at -O3
   * (internal compiler error in vect_transform_reduction). Same result: NaNs
   * are skipped either way. */
  for (size_t i = 0; i < n; i++) {
    const double v = (double)x[i] * scale;
    if (v > m) m = v;
  }
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += exp((double)x[i] * scale - m);
  for (size_t i = 0; i < n; i++) y[i] = (float)(exp((double)x[i] * scale - m) / sum);
}
