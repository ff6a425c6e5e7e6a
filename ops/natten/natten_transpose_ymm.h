/* ops/natten/natten_transpose_ymm.h — the 8 x 8 f32 transpose both x86
 * NATTEN ukernels use (AVX2, and AVX-512 whose NA tiles are 8-lane ymm
 * too): rows[i] + off holds row i's 8 values, out[j] gets column j.
 * Include from an ISA file after `typedef __m256 av_v;`. */
#ifndef SPR_OPS_NATTEN_NATTEN_TRANSPOSE_YMM_H
#define SPR_OPS_NATTEN_NATTEN_TRANSPOSE_YMM_H

#include <immintrin.h>
#include <stddef.h>

/* 8 x 8 transpose: the loads pair 128-bit halves of rows i and i + 4
 * (a[i] = lo(row i) | lo(row i+4), a[4 + i] = hi(row i) | hi(row i+4)),
 * so two in-lane stages of 8 shuffles finish it (16 shuffles, not 24; the
 * 128-bit inserts from memory are loads plus a cheap blend-class op). */
static inline void av_transpose_load(const float *const *rows, size_t off, av_v out[8]) {
  __m256 a[8];
  for (int i = 0; i < 4; i++) {
    a[i] =
        _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(rows[i] + off)), _mm_loadu_ps(rows[i + 4] + off), 1);
    a[4 + i] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(rows[i] + off + 4)),
                                    _mm_loadu_ps(rows[i + 4] + off + 4), 1);
  }
  for (int h = 0; h < 2; h++) {
    const __m256 t0 = _mm256_unpacklo_ps(a[4 * h], a[4 * h + 1]), t1 = _mm256_unpackhi_ps(a[4 * h], a[4 * h + 1]);
    const __m256 t2 = _mm256_unpacklo_ps(a[4 * h + 2], a[4 * h + 3]),
                 t3 = _mm256_unpackhi_ps(a[4 * h + 2], a[4 * h + 3]);
    out[4 * h + 0] = _mm256_shuffle_ps(t0, t2, 0x44);
    out[4 * h + 1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    out[4 * h + 2] = _mm256_shuffle_ps(t1, t3, 0x44);
    out[4 * h + 3] = _mm256_shuffle_ps(t1, t3, 0xEE);
  }
}

#endif
