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
 * last), kernel columns [kx0, kx0 + nkx) starting at row offset in_off;
 * KW > 0: all kw = KW columns, known at compile time. */
static inline __attribute__((always_inline)) void pixel(const float *const *rows, size_t in_off, size_t kh, size_t kw,
                                                        size_t kx0, size_t nkx, size_t cs, const float *wpk,
                                                        const float *bias, float *o, const int nv, __mmask16 last,
                                                        const int KW) {
  __m512 a[4];
  const size_t n = KW > 0 ? (size_t)KW : nkx;
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) {
    const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
    a[v] = bias != NULL ? _mm512_maskz_loadu_ps(m, bias + 16 * v) : _mm512_setzero_ps();
  }
  for (size_t ky = 0; ky < kh; ky++) {
    const float *ip = rows[ky] + in_off, *wp = wpk + (ky * kw + kx0) * cs;
#pragma GCC unroll 8
    for (size_t kx = 0; kx < n; kx++, ip += cs, wp += cs) {
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

/* Stride 1, kernel width KW: R adjacent output pixels share each loaded input
 * column and weight (0.65 loads per FMA at KW = 5 instead of 2). Per output
 * the products are added in the same order as pixel() (ky, then kx). */
enum { R = 4 };

static inline __attribute__((always_inline)) void strip(const float *const *rows, size_t off, size_t kh, size_t cs,
                                                        const float *wpk, const float *bias, float *o, size_t c,
                                                        const int nv, __mmask16 last, const int KW) {
  __m512 a[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 2
    for (int v = 0; v < nv; v++) {
      const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
      a[r][v] = bias != NULL ? _mm512_maskz_loadu_ps(m, bias + 16 * v) : _mm512_setzero_ps();
    }
  for (size_t ky = 0; ky < kh; ky++) {
    const float *ip = rows[ky] + off, *wp = wpk + ky * (size_t)KW * cs;
    __m512 w[5][2];
#pragma GCC unroll 5
    for (int kx = 0; kx < KW; kx++)
#pragma GCC unroll 2
      for (int v = 0; v < nv; v++)
        w[kx][v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xffff, wp + (size_t)kx * cs + 16 * v);
#pragma GCC unroll 16
    for (int j = 0; j < R + KW - 1; j++) {
      __m512 xv[2];
#pragma GCC unroll 2
      for (int v = 0; v < nv; v++)
        xv[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xffff, ip + (size_t)j * cs + 16 * v);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) {
        if (j - r < 0 || j - r >= KW) continue;
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) a[r][v] = _mm512_fmadd_ps(xv[v], w[j - r][v], a[r][v]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 2
    for (int v = 0; v < nv; v++)
      _mm512_mask_storeu_ps(o + (size_t)r * c + 16 * v, v == nv - 1 ? last : (__mmask16)0xffff, a[r][v]);
}

struct row_args {
  size_t c, ow, kh, kw, sw, pw, w_in, cs;
  const float *const *rows;
  const float *wpk, *bias;
  float *out;
};

static inline __attribute__((always_inline)) void block(const struct row_args *r, size_t cc, const int nv,
                                                        __mmask16 last) {
  const float *b = r->bias != NULL ? r->bias + cc : NULL, *wpk = r->wpk + cc;
  const size_t cs = r->cs, kw = r->kw, kh = r->kh;
  size_t lo, hi;
  spr_dwconv_interior(r->ow, kw, r->sw, r->pw, r->w_in, &lo, &hi);
  for (size_t ox = 0; ox < r->ow; ox++) {
    float *o = r->out + ox * r->c + cc;
    if (ox < lo || ox >= hi) { /* border: clipped taps */
      size_t kx0, kx1, ix0;
      spr_dwconv_clip(ox, kw, r->sw, r->pw, r->w_in, &kx0, &kx1, &ix0);
      pixel(r->rows, ix0 * cs + cc, kh, kw, kx0, kx1 - kx0, cs, wpk, b, o, nv, last, 0);
      continue;
    }
    const size_t off = (ox * r->sw - r->pw) * cs + cc;
    if (nv <= 2 && r->sw == 1 && (kw == 3 || kw == 5) && ox + R <= hi) {
      if (kw == 3) {
        strip(r->rows, off, kh, cs, wpk, b, o, r->c, nv, last, 3);
      } else {
        strip(r->rows, off, kh, cs, wpk, b, o, r->c, nv, last, 5);
      }
      ox += R - 1;
    } else if (kw == 3) {
      pixel(r->rows, off, kh, kw, 0, kw, cs, wpk, b, o, nv, last, 3);
    } else if (kw == 5) {
      pixel(r->rows, off, kh, kw, 0, kw, cs, wpk, b, o, nv, last, 5);
    } else {
      pixel(r->rows, off, kh, kw, 0, kw, cs, wpk, b, o, nv, last, 0);
    }
  }
}

void spr_f32_dwconv_ukernel_16__avx512f(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, size_t pw, size_t w_in,
                                        const float *const *rows, size_t cs, const float *wpk, const float *bias,
                                        float *out) {
  const struct row_args r = {c, ow, kh, kw, sw, pw, w_in, cs, rows, wpk, bias, out};
  size_t cc = 0;
  if (sw == 1 && (kw == 3 || kw == 5)) { /* strips of 32 channels */
    for (; cc + 32 <= c; cc += 32) block(&r, cc, 2, 0xffff);
  }
  for (; cc + 64 <= c; cc += 64) block(&r, cc, 4, 0xffff);
  for (; cc + 16 <= c; cc += 16) block(&r, cc, 1, 0xffff);
  if (cc < c) block(&r, cc, 1, (__mmask16)((1u << (c - cc)) - 1u));
}
