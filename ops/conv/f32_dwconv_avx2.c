/* ops/conv/f32_dwconv_avx2.c — AVX2+FMA depthwise conv row ukernel (see conv.h).
 * Channels in blocks of 4 ymm, then single ymm, then one masked ymm. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

struct taps {
  size_t c, kw, kx0, kx1, ky0, ky1, in_stride;
  const float *in;
  const float *wt;
};

static inline __m256 ld(const float *p, __m256i m, const int full) {
  return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

static inline __attribute__((always_inline)) void block(const struct taps *t, size_t cc, const int nv, const int full,
                                                        __m256i last, const float *bias, float *o) {
  __m256 a[4];
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) {
    const int f = full || v < nv - 1;
    a[v] = bias != NULL ? ld(bias + cc + 8 * v, last, f) : _mm256_setzero_ps();
  }
  for (size_t ky = t->ky0; ky < t->ky1; ky++) {
    const float *ip = t->in + (ky - t->ky0) * t->in_stride + cc;
    const float *wp = t->wt + (ky - t->ky0) * t->kw * t->c + cc;
    for (size_t kx = t->kx0; kx < t->kx1; kx++, ip += t->c, wp += t->c) {
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++) {
        const int f = full || v < nv - 1;
        a[v] = _mm256_fmadd_ps(ld(ip + 8 * v, last, f), ld(wp + 8 * v, last, f), a[v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) {
    if (full || v < nv - 1) {
      _mm256_storeu_ps(o + cc + 8 * v, a[v]);
    } else {
      _mm256_maskstore_ps(o + cc + 8 * v, last, a[v]);
    }
  }
}

void spr_f32_dwconv_ukernel_8__avx2(size_t c, size_t ow, size_t kw, size_t sw, size_t pw, size_t w_in, size_t ky0,
                                    size_t ky1, const float *in, size_t in_stride, const float *wt, const float *bias,
                                    float *out) {
  const __m256i none = _mm256_setzero_si256();
  for (size_t ox = 0; ox < ow; ox++) {
    const ptrdiff_t start = (ptrdiff_t)(ox * sw) - (ptrdiff_t)pw;
    const size_t kx0 = start < 0 ? (size_t)-start : 0;
    const ptrdiff_t lim = (ptrdiff_t)w_in - start;
    const size_t kx1 = lim <= 0 ? 0 : ((size_t)lim < kw ? (size_t)lim : kw);
    struct taps t = {c, kw, kx0, kx1 > kx0 ? kx1 : kx0, ky0, ky1, in_stride, NULL, wt + (ky0 * kw + kx0) * c};
    t.in = in + (size_t)(start + (ptrdiff_t)kx0) * c;
    float *o = out + ox * c;
    size_t cc = 0;
    for (; cc + 32 <= c; cc += 32) block(&t, cc, 4, 1, none, bias, o);
    for (; cc + 8 <= c; cc += 8) block(&t, cc, 1, 1, none, bias, o);
    if (cc < c) {
      const __m256i last =
          _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(c - cc)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      block(&t, cc, 1, 0, last, bias, o);
    }
  }
}
