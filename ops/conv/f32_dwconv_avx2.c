/* ops/conv/f32_dwconv_avx2.c — AVX2+FMA depthwise conv row ukernel (see conv.h).
 * Channel blocks of 4 ymm, then 1 ymm, then one masked ymm; columns inner. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/conv/conv.h"

static inline __m256 ld(const float *p, __m256i m, const int full) {
  return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

/* One output pixel: kernel columns [kx0, kx0 + nkx) from row offset in_off;
 * KW > 0: all KW columns (compile-time width). */
static inline __attribute__((always_inline)) void pixel(const float *const *rows, size_t in_off, size_t kh, size_t kw,
                                                        size_t kx0, size_t nkx, size_t cs, const float *wpk,
                                                        const float *bias, float *o, const int nv, const int full,
                                                        __m256i last, const int KW) {
  __m256 a[4];
  const size_t n = KW > 0 ? (size_t)KW : nkx;
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) a[v] = bias != NULL ? ld(bias + 8 * v, last, full || v < nv - 1) : _mm256_setzero_ps();
  for (size_t ky = 0; ky < kh; ky++) {
    const float *ip = rows[ky] + in_off, *wp = wpk + (ky * kw + kx0) * cs;
#pragma GCC unroll 8
    for (size_t kx = 0; kx < n; kx++, ip += cs, wp += cs) {
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
      _mm256_storeu_ps(o + 8 * v, a[v]);
    } else {
      _mm256_maskstore_ps(o + 8 * v, last, a[v]);
    }
  }
}

struct row_args {
  size_t c, ow, kh, kw, sw, pw, w_in, cs;
  const float *const *rows;
  const float *wpk, *bias;
  float *out;
};

static inline __attribute__((always_inline)) void block(const struct row_args *r, size_t cc, const int nv,
                                                        const int full, __m256i last) {
  const float *b = r->bias != NULL ? r->bias + cc : NULL, *wpk = r->wpk + cc;
  const size_t cs = r->cs, kw = r->kw, kh = r->kh;
  size_t lo, hi;
  spr_dwconv_interior(r->ow, kw, r->sw, r->pw, r->w_in, &lo, &hi);
  for (size_t ox = 0; ox < r->ow; ox++) {
    float *o = r->out + ox * r->c + cc;
    if (ox < lo || ox >= hi) {
      size_t kx0, kx1, ix0;
      spr_dwconv_clip(ox, kw, r->sw, r->pw, r->w_in, &kx0, &kx1, &ix0);
      pixel(r->rows, ix0 * cs + cc, kh, kw, kx0, kx1 - kx0, cs, wpk, b, o, nv, full, last, 0);
      continue;
    }
    const size_t off = (ox * r->sw - r->pw) * cs + cc;
    if (kw == 3) {
      pixel(r->rows, off, kh, kw, 0, kw, cs, wpk, b, o, nv, full, last, 3);
    } else if (kw == 5) {
      pixel(r->rows, off, kh, kw, 0, kw, cs, wpk, b, o, nv, full, last, 5);
    } else {
      pixel(r->rows, off, kh, kw, 0, kw, cs, wpk, b, o, nv, full, last, 0);
    }
  }
}

void spr_f32_dwconv_ukernel_8__avx2(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, size_t pw, size_t w_in,
                                    const float *const *rows, size_t cs, const float *wpk, const float *bias,
                                    float *out) {
  const struct row_args r = {c, ow, kh, kw, sw, pw, w_in, cs, rows, wpk, bias, out};
  const __m256i none = _mm256_setzero_si256();
  size_t cc = 0;
  for (; cc + 32 <= c; cc += 32) block(&r, cc, 4, 1, none);
  for (; cc + 8 <= c; cc += 8) block(&r, cc, 1, 1, none);
  if (cc < c) {
    const __m256i last =
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(c - cc)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    block(&r, cc, 1, 0, last);
  }
}
