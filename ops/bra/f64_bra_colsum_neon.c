/* ops/bra/f64_bra_colsum_neon.c — region-mean column sums with NEON (A64:
 * float64x2; SIMDe): 16 channels (8 q registers of doubles) stay in
 * registers over all rows; f32 -> f64 by FCVTL (exact), one sequential
 * double add per channel and row as the scalar code, the means by an IEEE
 * division and FCVTN (round to nearest: (float)(s / m)). A32 NEON has no
 * double vectors: there the file is empty and bra_colsum.inc lists no entry
 * (the scalar ukernel runs on VFP). */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

#include "ops/bra/bra.h"
#include "ops/common/neon_compat.h"

#if SPR_NEON_A64 || SPR_NEON_EMULATED

static inline void add4(simde_float64x2_t *s, const float *p) {
  const simde_float32x4_t v = simde_vld1q_f32(p);
  s[0] = simde_vaddq_f64(s[0], simde_vcvt_f64_f32(simde_vget_low_f32(v)));
  s[1] = simde_vaddq_f64(s[1], simde_vcvt_f64_f32(simde_vget_high_f32(v)));
}

/* s / m per lane (FDIV; SIMDe has no vdivq_f64: scalar IEEE divisions there) */
static inline simde_float64x2_t div2(simde_float64x2_t s, double m) {
#if SPR_NEON_A64
  return vdivq_f64(s, vdupq_n_f64(m));
#else
  double t[2];
  simde_vst1q_f64(t, s);
  t[0] /= m, t[1] /= m;
  return simde_vld1q_f64(t);
#endif
}

static inline void store4(const simde_float64x2_t *s, double *acc, float *mean, double m) {
  simde_vst1q_f64(acc, s[0]);
  simde_vst1q_f64(acc + 2, s[1]);
  if (mean != NULL)
    simde_vst1q_f32(mean, simde_vcombine_f32(simde_vcvt_f32_f64(div2(s[0], m)), simde_vcvt_f32_f64(div2(s[1], m))));
}

void spr_f64_bra_colsum_ukernel_4__neon(double *acc, const float *const *rows, size_t n_rows, size_t n, int first,
                                        float *mean, double m) {
  const simde_float64x2_t zero = simde_vdupq_n_f64(0.0);
  size_t c = 0;
  for (; c + 16 <= n; c += 16) {
    simde_float64x2_t s[8];
    for (int k = 0; k < 8; k++) s[k] = first ? zero : simde_vld1q_f64(acc + c + 2 * k);
    for (size_t t = 0; t < n_rows; t++)
      for (int k = 0; k < 4; k++) add4(s + 2 * k, rows[t] + c + 4 * k);
    for (int k = 0; k < 4; k++) store4(s + 2 * k, acc + c + 4 * k, mean != NULL ? mean + c + 4 * k : NULL, m);
  }
  for (; c + 4 <= n; c += 4) {
    simde_float64x2_t s[2];
    for (int k = 0; k < 2; k++) s[k] = first ? zero : simde_vld1q_f64(acc + c + 2 * k);
    for (size_t t = 0; t < n_rows; t++) add4(s, rows[t] + c);
    store4(s, acc + c, mean != NULL ? mean + c : NULL, m);
  }
  for (; c < n; c++) {
    double s = first ? 0.0 : acc[c];
    for (size_t t = 0; t < n_rows; t++) s += (double)rows[t][c];
    acc[c] = s;
    if (mean != NULL) mean[c] = (float)(s / m);
  }
}

#endif
