/* ops/bra/f64_bra_dot_avx512.c — routing dot products, AVX-512: the eight
 * partial sums of a pair are one zmm of doubles; register tiles of 4 a rows
 * x 4 b rows (16 independent chains, each converted row used 4 times);
 * channels where c0 + i is not a multiple of 8 (a run's ragged head and
 * tail) go through spr_bra_dot_acc. The f32 x f32 products are exact in
 * double, so a fused multiply-add rounds exactly as the scalar code's
 * separate multiply and add. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>

#include "ops/bra/bra.h"

/* acc pairs (i, r) for i < ia (<= 4), r < rb (<= 4) of the tile at (i0, r0). */
static inline __attribute__((always_inline)) void dot_tile(double *acc, const float *const *a, size_t i0, size_t ia,
                                                           const float *const *b, size_t r0, size_t rb, size_t nr,
                                                           size_t off, size_t body) {
  __m512d s[4][4];
  for (size_t i = 0; i < ia; i++)
    for (size_t r = 0; r < rb; r++) s[i][r] = _mm512_loadu_pd(acc + 8 * ((i0 + i) * nr + r0 + r));
  for (size_t c = 0; c < body; c += 8) {
    __m512d av[4];
    for (size_t i = 0; i < ia; i++) av[i] = _mm512_cvtps_pd(_mm256_loadu_ps(a[i0 + i] + off + c));
    for (size_t r = 0; r < rb; r++) {
      const __m512d bv = _mm512_cvtps_pd(_mm256_loadu_ps(b[r0 + r] + off + c));
      for (size_t i = 0; i < ia; i++) s[i][r] = _mm512_fmadd_pd(av[i], bv, s[i][r]);
    }
  }
  for (size_t i = 0; i < ia; i++)
    for (size_t r = 0; r < rb; r++) _mm512_storeu_pd(acc + 8 * ((i0 + i) * nr + r0 + r), s[i][r]);
}

#define BRA_DOT_TILE 4
#define BRA_DOT_FN spr_f64_bra_dot_ukernel_8__avx512
#include "ops/bra/bra_dot_impl.h"
