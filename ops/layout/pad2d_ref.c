/* ops/layout/pad2d_ref.c — the PAD2D oracle: one element at a time. */
#include "ops/layout/layout.h"

void spr_f32_pad2d_ref(const float *x, size_t c, size_t w1, size_t h1, float *y, size_t w2, size_t h2) {
  for (size_t oy = 0; oy < h2; oy++)
    for (size_t ox = 0; ox < w2; ox++)
      for (size_t ch = 0; ch < c; ch++)
        y[(oy * w2 + ox) * c + ch] = oy < h1 && ox < w1 ? x[(oy * w1 + ox) * c + ch] : 0.0f;
}
