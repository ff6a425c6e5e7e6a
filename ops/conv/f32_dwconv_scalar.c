/* ops/conv/f32_dwconv_scalar.c — portable depthwise conv row ukernel (see conv.h). */
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

void spr_f32_dwconv_ukernel_1__scalar(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, size_t pw, size_t w_in,
                                      const float *const *rows, size_t cs, const float *wpk, const float *bias,
                                      float *out) {
  for (size_t ox = 0; ox < ow; ox++) {
    size_t kx0, kx1, ix0;
    spr_dwconv_clip(ox, kw, sw, pw, w_in, &kx0, &kx1, &ix0);
    float *o = out + ox * c;
    for (size_t ch = 0; ch < c; ch++) o[ch] = bias != NULL ? bias[ch] : 0.0f;
    for (size_t ky = 0; ky < kh; ky++) {
      for (size_t kx = kx0; kx < kx1; kx++) {
        const float *ip = rows[ky] + (ix0 + kx - kx0) * cs, *wp = wpk + (ky * kw + kx) * cs;
        for (size_t ch = 0; ch < c; ch++) o[ch] += ip[ch] * wp[ch];
      }
    }
  }
}
