/* ops/conv/f32_dwconv_avx512.c — AVX-512 depthwise conv row ukernel (see conv.h).
 * Channels in blocks of 4 zmm (4 independent FMA chains), then single zmm,
 * then one masked zmm for the tail. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

struct taps {
  size_t c, kw, kx0, kx1, ky0, ky1, in_stride;
  const float *in; /* at (row ky0, column ix = kx0 + start) */
  const float *wt; /* at (ky0, kx0) */
};

static inline __attribute__((always_inline)) void block(const struct taps *t, size_t cc, const int nv, __mmask16 last,
                                                        const float *bias, float *o) {
  __m512 a[4];
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) {
    const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
    a[v] = bias != NULL ? _mm512_maskz_loadu_ps(m, bias + cc + 16 * v) : _mm512_setzero_ps();
  }
  for (size_t ky = t->ky0; ky < t->ky1; ky++) {
    const float *ip = t->in + (ky - t->ky0) * t->in_stride + cc;
    const float *wp = t->wt + (ky - t->ky0) * t->kw * t->c + cc;
    for (size_t kx = t->kx0; kx < t->kx1; kx++, ip += t->c, wp += t->c) {
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++) {
        const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
        a[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, ip + 16 * v), _mm512_maskz_loadu_ps(m, wp + 16 * v), a[v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(o + cc + 16 * v, v == nv - 1 ? last : (__mmask16)0xffff, a[v]);
}

void spr_f32_dwconv_ukernel_16__avx512f(size_t c, size_t ow, size_t kw, size_t sw, size_t pw, size_t w_in, size_t ky0,
                                        size_t ky1, const float *in, size_t in_stride, const float *wt,
                                        const float *bias, float *out) {
  for (size_t ox = 0; ox < ow; ox++) {
    const ptrdiff_t start = (ptrdiff_t)(ox * sw) - (ptrdiff_t)pw;
    const size_t kx0 = start < 0 ? (size_t)-start : 0;
    const ptrdiff_t lim = (ptrdiff_t)w_in - start;
    const size_t kx1 = lim <= 0 ? 0 : ((size_t)lim < kw ? (size_t)lim : kw);
    struct taps t = {c, kw, kx0, kx1 > kx0 ? kx1 : kx0, ky0, ky1, in_stride, NULL, wt + (ky0 * kw + kx0) * c};
    t.in = in + (size_t)(start + (ptrdiff_t)kx0) * c;
    float *o = out + ox * c;
    size_t cc = 0;
    for (; cc + 64 <= c; cc += 64) block(&t, cc, 4, 0xffff, bias, o);
    for (; cc + 16 <= c; cc += 16) block(&t, cc, 1, 0xffff, bias, o);
    if (cc < c) block(&t, cc, 1, (__mmask16)((1u << (c - cc)) - 1u), bias, o);
  }
}
