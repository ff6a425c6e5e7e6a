/* ops/conv/f32_dwconv_neon.c — NEON depthwise conv row ukernel, written with SIMDe (see conv.h).
 * Channel blocks of 4 q registers, then 1 q, then scalar; columns inner. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

/* One output pixel: kernel columns [kx0, kx0 + nkx) from row offset in_off. */
static inline __attribute__((always_inline)) void pixel(const float *const *rows, size_t in_off, size_t kh, size_t kw,
                                                        size_t kx0, size_t nkx, size_t cs, const float *wpk,
                                                        const float *bias, float *o, const int nv) {
  simde_float32x4_t a[4];
  for (int v = 0; v < nv; v++) a[v] = bias != NULL ? simde_vld1q_f32(bias + 4 * v) : simde_vdupq_n_f32(0.0f);
  for (size_t ky = 0; ky < kh; ky++) {
    const float *ip = rows[ky] + in_off, *wp = wpk + (ky * kw + kx0) * cs;
    for (size_t kx = 0; kx < nkx; kx++, ip += cs, wp += cs) {
      for (int v = 0; v < nv; v++)
        a[v] = simde_vfmaq_f32(a[v], simde_vld1q_f32(ip + 4 * v), simde_vld1q_f32(wp + 4 * v));
    }
  }
  for (int v = 0; v < nv; v++) simde_vst1q_f32(o + 4 * v, a[v]);
}

static void pixel_scalar(const float *const *rows, size_t in_off, size_t kh, size_t kw, size_t kx0, size_t nkx,
                         size_t cs, const float *wpk, const float *bias, float *o, size_t n) {
  for (size_t ch = 0; ch < n; ch++) {
    float s = bias != NULL ? bias[ch] : 0.0f;
    for (size_t ky = 0; ky < kh; ky++) {
      const float *ip = rows[ky] + in_off + ch, *wp = wpk + (ky * kw + kx0) * cs + ch;
      for (size_t kx = 0; kx < nkx; kx++, ip += cs, wp += cs) s += *ip * *wp;
    }
    o[ch] = s;
  }
}

void spr_f32_dwconv_ukernel_4__neon(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, size_t pw, size_t w_in,
                                    const float *const *rows, size_t cs, const float *wpk, const float *bias,
                                    float *out) {
  for (size_t ox = 0; ox < ow; ox++) {
    size_t kx0, kx1, ix0;
    spr_dwconv_clip(ox, kw, sw, pw, w_in, &kx0, &kx1, &ix0);
    const size_t nkx = kx1 - kx0;
    float *o = out + ox * c;
    size_t cc = 0;
    for (; cc + 16 <= c; cc += 16)
      pixel(rows, ix0 * cs + cc, kh, kw, kx0, nkx, cs, wpk + cc, bias != NULL ? bias + cc : NULL, o + cc, 4);
    for (; cc + 4 <= c; cc += 4)
      pixel(rows, ix0 * cs + cc, kh, kw, kx0, nkx, cs, wpk + cc, bias != NULL ? bias + cc : NULL, o + cc, 1);
    if (cc < c)
      pixel_scalar(rows, ix0 * cs + cc, kh, kw, kx0, nkx, cs, wpk + cc, bias != NULL ? bias + cc : NULL, o + cc,
                   c - cc);
  }
}
