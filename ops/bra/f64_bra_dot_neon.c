/* ops/bra/f64_bra_dot_neon.c — routing dot products with NEON (A64:
 * float64x2; SIMDe): the eight partial sums of a pair are four q registers
 * of doubles; register tiles of 2 a rows x 2 b rows (16 accumulators, each
 * converted row used twice); channels where c0 + i is not a multiple of 8
 * (a run's ragged head and tail) go through spr_bra_dot_acc. The f32 x f32
 * products are exact in double, so FMLA rounds exactly as the scalar code's
 * separate multiply and add. A32 NEON has no double vectors: there the file
 * is empty and bra_dot.inc lists no entry (the scalar ukernel runs on VFP). */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

#include "ops/bra/bra.h"
#include "ops/common/neon_compat.h"

#if SPR_NEON_A64 || SPR_NEON_EMULATED

/* 8 floats at p as 4 x 2 doubles (exact) */
static inline void load8(simde_float64x2_t *v, const float *p) {
  const simde_float32x4_t lo = simde_vld1q_f32(p), hi = simde_vld1q_f32(p + 4);
  v[0] = simde_vcvt_f64_f32(simde_vget_low_f32(lo));
  v[1] = simde_vcvt_f64_f32(simde_vget_high_f32(lo));
  v[2] = simde_vcvt_f64_f32(simde_vget_low_f32(hi));
  v[3] = simde_vcvt_f64_f32(simde_vget_high_f32(hi));
}

static inline __attribute__((always_inline)) void dot_tile(double *acc, const float *const *a, size_t i0, size_t ia,
                                                           const float *const *b, size_t r0, size_t rb, size_t nr,
                                                           size_t off, size_t body) {
  simde_float64x2_t s[2][2][4];
  for (size_t i = 0; i < ia; i++)
    for (size_t r = 0; r < rb; r++)
      for (size_t h = 0; h < 4; h++) s[i][r][h] = simde_vld1q_f64(acc + 8 * ((i0 + i) * nr + r0 + r) + 2 * h);
  for (size_t c = 0; c < body; c += 8) {
    simde_float64x2_t av[2][4], bv[4];
    for (size_t i = 0; i < ia; i++) load8(av[i], a[i0 + i] + off + c);
    for (size_t r = 0; r < rb; r++) {
      load8(bv, b[r0 + r] + off + c);
      for (size_t i = 0; i < ia; i++)
        for (size_t h = 0; h < 4; h++) s[i][r][h] = simde_vfmaq_f64(s[i][r][h], av[i][h], bv[h]);
    }
  }
  for (size_t i = 0; i < ia; i++)
    for (size_t r = 0; r < rb; r++)
      for (size_t h = 0; h < 4; h++) simde_vst1q_f64(acc + 8 * ((i0 + i) * nr + r0 + r) + 2 * h, s[i][r][h]);
}

#define BRA_DOT_TILE 2
#define BRA_DOT_FN spr_f64_bra_dot_ukernel_8__neon
#include "ops/bra/bra_dot_impl.h"

#endif
