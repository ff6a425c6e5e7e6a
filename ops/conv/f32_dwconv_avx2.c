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

static inline __attribute__((always_inline)) void pixel(const float *const *rows, size_t off, size_t kh, size_t kw,
                                                        size_t cs, const float *wpk, const float *bias, float *o,
                                                        const int nv, const int full, __m256i last, const int KW) {
  __m256 a[4];
  const size_t nkx = KW > 0 ? (size_t)KW : kw;
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++) a[v] = bias != NULL ? ld(bias + 8 * v, last, full || v < nv - 1) : _mm256_setzero_ps();
  for (size_t ky = 0; ky < kh; ky++) {
    const float *ip = rows[ky] + off, *wp = wpk + ky * nkx * cs;
#pragma GCC unroll 8
    for (size_t kx = 0; kx < nkx; kx++, ip += cs, wp += cs) {
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

static inline __attribute__((always_inline)) void block(size_t cc, size_t c, size_t ow, size_t kh, size_t kw, size_t sw,
                                                        const float *const *rows, size_t cs, const float *wpk,
                                                        const float *bias, float *out, const int nv, const int full,
                                                        __m256i last) {
  const float *b = bias != NULL ? bias + cc : NULL;
  for (size_t ox = 0; ox < ow; ox++) {
    const size_t off = ox * sw * cs + cc;
    float *o = out + ox * c + cc;
    if (kw == 3) {
      pixel(rows, off, kh, kw, cs, wpk + cc, b, o, nv, full, last, 3);
    } else if (kw == 5) {
      pixel(rows, off, kh, kw, cs, wpk + cc, b, o, nv, full, last, 5);
    } else {
      pixel(rows, off, kh, kw, cs, wpk + cc, b, o, nv, full, last, 0);
    }
  }
}

void spr_f32_dwconv_ukernel_8__avx2(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, const float *const *rows,
                                    size_t cs, const float *wpk, const float *bias, float *out) {
  const __m256i none = _mm256_setzero_si256();
  size_t cc = 0;
  for (; cc + 32 <= c; cc += 32) block(cc, c, ow, kh, kw, sw, rows, cs, wpk, bias, out, 4, 1, none);
  for (; cc + 8 <= c; cc += 8) block(cc, c, ow, kh, kw, sw, rows, cs, wpk, bias, out, 1, 1, none);
  if (cc < c) {
    const __m256i last =
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(c - cc)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    block(cc, c, ow, kh, kw, sw, rows, cs, wpk, bias, out, 1, 0, last);
  }
}
