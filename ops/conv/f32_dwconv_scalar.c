/* ops/conv/f32_dwconv_scalar.c — portable depthwise conv row ukernel (see conv.h). */
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

void spr_f32_dwconv_ukernel_1__scalar(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, const float *const *rows,
                                      size_t cs, const float *wpk, const float *bias, float *out) {
  for (size_t ox = 0; ox < ow; ox++) {
    float *o = out + ox * c;
    for (size_t ch = 0; ch < c; ch++) o[ch] = bias != NULL ? bias[ch] : 0.0f;
    for (size_t ky = 0; ky < kh; ky++) {
      for (size_t kx = 0; kx < kw; kx++) {
        const float *ip = rows[ky] + (ox * sw + kx) * cs, *wp = wpk + (ky * kw + kx) * cs;
        for (size_t ch = 0; ch < c; ch++) o[ch] += ip[ch] * wp[ch];
      }
    }
  }
}
