/* ops/conv/f32_dwconv_avx512.c — AVX-512 depthwise conv row ukernel (see conv.h).
 * Channel blocks of 4 zmm (4 independent FMA chains), then 1 zmm, then one
 * masked zmm; columns inner so the block's weights stay in L1. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

/* One output pixel, channels [cc, cc + 16*nv) (the last vector masked by
 * last); KW > 0 is the kernel width known at compile time (else kw). */
static inline __attribute__((always_inline)) void pixel(const float *const *rows, size_t off, size_t kh, size_t kw,
                                                        size_t cs, const float *wpk, const float *bias, float *o,
                                                        const int nv, __mmask16 last, const int KW) {
  __m512 a[4];
  const size_t nkx = KW > 0 ? (size_t)KW : kw;
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) {
    const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
    a[v] = bias != NULL ? _mm512_maskz_loadu_ps(m, bias + 16 * v) : _mm512_setzero_ps();
  }
  for (size_t ky = 0; ky < kh; ky++) {
    const float *ip = rows[ky] + off, *wp = wpk + ky * nkx * cs;
#pragma GCC unroll 8
    for (size_t kx = 0; kx < nkx; kx++, ip += cs, wp += cs) {
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++) {
        const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
        a[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, ip + 16 * v), _mm512_maskz_loadu_ps(m, wp + 16 * v), a[v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(o + 16 * v, v == nv - 1 ? last : (__mmask16)0xffff, a[v]);
}

static inline __attribute__((always_inline)) void block(size_t cc, size_t c, size_t ow, size_t kh, size_t kw, size_t sw,
                                                        const float *const *rows, size_t cs, const float *wpk,
                                                        const float *bias, float *out, const int nv, __mmask16 last) {
  const float *b = bias != NULL ? bias + cc : NULL;
  for (size_t ox = 0; ox < ow; ox++) {
    const size_t off = ox * sw * cs + cc;
    float *o = out + ox * c + cc;
    if (kw == 3) {
      pixel(rows, off, kh, kw, cs, wpk + cc, b, o, nv, last, 3);
    } else if (kw == 5) {
      pixel(rows, off, kh, kw, cs, wpk + cc, b, o, nv, last, 5);
    } else {
      pixel(rows, off, kh, kw, cs, wpk + cc, b, o, nv, last, 0);
    }
  }
}

void spr_f32_dwconv_ukernel_16__avx512f(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, const float *const *rows,
                                        size_t cs, const float *wpk, const float *bias, float *out) {
  size_t cc = 0;
  for (; cc + 64 <= c; cc += 64) block(cc, c, ow, kh, kw, sw, rows, cs, wpk, bias, out, 4, 0xffff);
  for (; cc + 16 <= c; cc += 16) block(cc, c, ow, kh, kw, sw, rows, cs, wpk, bias, out, 1, 0xffff);
  if (cc < c) block(cc, c, ow, kh, kw, sw, rows, cs, wpk, bias, out, 1, (__mmask16)((1u << (c - cc)) - 1u));
}
