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

void spr_f64_bra_dot_ukernel_8__neon(double *acc, const float *const *a, size_t na, const float *const *b, size_t nr,
                                     size_t c0, size_t n) {
  size_t head = (8 - (c0 & 7)) & 7;
  if (head > n) head = n;
  const size_t body = (n - head) & ~(size_t)7;
  if (head > 0)
    for (size_t i = 0; i < na; i++)
      for (size_t r = 0; r < nr; r++) spr_bra_dot_acc(acc + 8 * (i * nr + r), a[i], b[r], c0, head);
  if (body > 0) {
    size_t i0 = 0;
    for (; i0 + 2 <= na; i0 += 2) {
      size_t r0 = 0;
      for (; r0 + 2 <= nr; r0 += 2) dot_tile(acc, a, i0, 2, b, r0, 2, nr, head, body);
      for (; r0 < nr; r0++) dot_tile(acc, a, i0, 2, b, r0, 1, nr, head, body);
    }
    for (; i0 < na; i0++) {
      size_t r0 = 0;
      for (; r0 + 2 <= nr; r0 += 2) dot_tile(acc, a, i0, 1, b, r0, 2, nr, head, body);
      for (; r0 < nr; r0++) dot_tile(acc, a, i0, 1, b, r0, 1, nr, head, body);
    }
  }
  const size_t done = head + body;
  if (done < n)
    for (size_t i = 0; i < na; i++)
      for (size_t r = 0; r < nr; r++)
        spr_bra_dot_acc(acc + 8 * (i * nr + r), a[i] + done, b[r] + done, c0 + done, n - done);
}

#endif
