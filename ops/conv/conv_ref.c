/* ops/conv/conv_ref.c — conv oracles: obvious loops, double accumulation, zero padding. */
#include "ops/common/fp16.h"
#include "ops/conv/conv.h"

static double weight(const void *w, enum spr_dtype t, size_t i) {
  if (t == SPR_DTYPE_F16) return (double)spr_fp16_to_f32(((const uint16_t *)w)[i]);
  return (double)((const float *)w)[i];
}

void spr_f32_conv2d_ref(const float *x, size_t h, size_t w, size_t cin, const void *wt, enum spr_dtype wt_type,
                        const float *bias, size_t cout, const struct spr_conv_params *p, float *dst) {
  const size_t oh = (h + 2u * p->ph - p->kh) / p->sh + 1, ow = (w + 2u * p->pw - p->kw) / p->sw + 1;
  for (size_t oy = 0; oy < oh; oy++) {
    for (size_t ox = 0; ox < ow; ox++) {
      for (size_t co = 0; co < cout; co++) {
        double s = bias != NULL ? (double)bias[co] : 0.0;
        for (size_t ky = 0; ky < p->kh; ky++) {
          for (size_t kx = 0; kx < p->kw; kx++) {
            const long iy = (long)(oy * p->sh + ky) - (long)p->ph, ix = (long)(ox * p->sw + kx) - (long)p->pw;
            if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)w) continue;
            for (size_t ci = 0; ci < cin; ci++) {
              s += (double)x[((size_t)iy * w + (size_t)ix) * cin + ci] *
                   weight(wt, wt_type, ((co * p->kh + ky) * p->kw + kx) * cin + ci);
            }
          }
        }
        dst[(oy * ow + ox) * cout + co] = (float)s;
      }
    }
  }
}

void spr_f32_dwconv2d_ref(const float *x, size_t h, size_t w, size_t c, const float *wt, const float *bias,
                          const struct spr_conv_params *p, float *dst) {
  const size_t oh = (h + 2u * p->ph - p->kh) / p->sh + 1, ow = (w + 2u * p->pw - p->kw) / p->sw + 1;
  for (size_t oy = 0; oy < oh; oy++) {
    for (size_t ox = 0; ox < ow; ox++) {
      for (size_t ch = 0; ch < c; ch++) {
        double s = bias != NULL ? (double)bias[ch] : 0.0;
        for (size_t ky = 0; ky < p->kh; ky++) {
          for (size_t kx = 0; kx < p->kw; kx++) {
            const long iy = (long)(oy * p->sh + ky) - (long)p->ph, ix = (long)(ox * p->sw + kx) - (long)p->pw;
            if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)w) continue;
            s += (double)x[((size_t)iy * w + (size_t)ix) * c + ch] * (double)wt[(ky * p->kw + kx) * c + ch];
          }
        }
        dst[(oy * ow + ox) * c + ch] = (float)s;
      }
    }
  }
}
