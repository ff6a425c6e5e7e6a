/* ops/conv/f32_dwconv_scalar.c — portable depthwise conv row ukernel (see conv.h). */
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

void spr_f32_dwconv_ukernel_1__scalar(size_t c, size_t ow, size_t kw, size_t sw, size_t pw, size_t w_in, size_t ky0,
                                      size_t ky1, const float *in, size_t in_stride, const float *wt, const float *bias,
                                      float *out) {
  for (size_t ox = 0; ox < ow; ox++) {
    const ptrdiff_t start = (ptrdiff_t)(ox * sw) - (ptrdiff_t)pw;
    const size_t kx0 = start < 0 ? (size_t)-start : 0;
    const ptrdiff_t lim = (ptrdiff_t)w_in - start;
    const size_t kx1 = lim <= 0 ? 0 : ((size_t)lim < kw ? (size_t)lim : kw);
    float *o = out + ox * c;
    for (size_t ch = 0; ch < c; ch++) o[ch] = bias != NULL ? bias[ch] : 0.0f;
    for (size_t ky = ky0; ky < ky1; ky++) {
      for (size_t kx = kx0; kx < kx1; kx++) {
        const float *ip = in + (ky - ky0) * in_stride + (size_t)(start + (ptrdiff_t)kx) * c;
        const float *wp = wt + (ky * kw + kx) * c;
        for (size_t ch = 0; ch < c; ch++) o[ch] += ip[ch] * wp[ch];
      }
    }
  }
}
