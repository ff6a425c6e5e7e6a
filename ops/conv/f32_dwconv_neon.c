/* ops/conv/f32_dwconv_neon.c — NEON depthwise conv row ukernel, written with SIMDe (see conv.h).
 * Channels in blocks of 4 q registers, then single q, then scalar. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

struct taps {
  size_t c, kw, kx0, kx1, ky0, ky1, in_stride;
  const float *in;
  const float *wt;
};

static inline __attribute__((always_inline)) void block(const struct taps *t, size_t cc, const int nv,
                                                        const float *bias, float *o) {
  simde_float32x4_t a[4];
  for (int v = 0; v < nv; v++) a[v] = bias != NULL ? simde_vld1q_f32(bias + cc + 4 * v) : simde_vdupq_n_f32(0.0f);
  for (size_t ky = t->ky0; ky < t->ky1; ky++) {
    const float *ip = t->in + (ky - t->ky0) * t->in_stride + cc;
    const float *wp = t->wt + (ky - t->ky0) * t->kw * t->c + cc;
    for (size_t kx = t->kx0; kx < t->kx1; kx++, ip += t->c, wp += t->c) {
      for (int v = 0; v < nv; v++)
        a[v] = simde_vfmaq_f32(a[v], simde_vld1q_f32(ip + 4 * v), simde_vld1q_f32(wp + 4 * v));
    }
  }
  for (int v = 0; v < nv; v++) simde_vst1q_f32(o + cc + 4 * v, a[v]);
}

static void tail(const struct taps *t, size_t cc, const float *bias, float *o) {
  for (size_t ch = cc; ch < t->c; ch++) {
    float s = bias != NULL ? bias[ch] : 0.0f;
    for (size_t ky = t->ky0; ky < t->ky1; ky++) {
      const float *ip = t->in + (ky - t->ky0) * t->in_stride + ch;
      const float *wp = t->wt + (ky - t->ky0) * t->kw * t->c + ch;
      for (size_t kx = t->kx0; kx < t->kx1; kx++, ip += t->c, wp += t->c) s += *ip * *wp;
    }
    o[ch] = s;
  }
}

void spr_f32_dwconv_ukernel_4__neon(size_t c, size_t ow, size_t kw, size_t sw, size_t pw, size_t w_in, size_t ky0,
                                    size_t ky1, const float *in, size_t in_stride, const float *wt, const float *bias,
                                    float *out) {
  for (size_t ox = 0; ox < ow; ox++) {
    const ptrdiff_t start = (ptrdiff_t)(ox * sw) - (ptrdiff_t)pw;
    const size_t kx0 = start < 0 ? (size_t)-start : 0;
    const ptrdiff_t lim = (ptrdiff_t)w_in - start;
    const size_t kx1 = lim <= 0 ? 0 : ((size_t)lim < kw ? (size_t)lim : kw);
    struct taps t = {c, kw, kx0, kx1 > kx0 ? kx1 : kx0, ky0, ky1, in_stride, NULL, wt + (ky0 * kw + kx0) * c};
    t.in = in + (size_t)(start + (ptrdiff_t)kx0) * c;
    float *o = out + ox * c;
    size_t cc = 0;
    for (; cc + 16 <= c; cc += 16) block(&t, cc, 4, bias, o);
    for (; cc + 4 <= c; cc += 4) block(&t, cc, 1, bias, o);
    if (cc < c) tail(&t, cc, bias, o);
  }
}
