/* ops/gemm/f32_gemm_mve.c — Helium (Armv8.1-M MVE) GEMM/GEMV ukernels for
 * Cortex-M55/M85 (contracts in gemm.h), with the ACLE intrinsics of
 * <arm_mve.h> (SIMDe has no MVE).
 *
 * GEMM tile 6 (m) x 4 (n): the packed W slice gives one q register of 4
 * columns per k, each of the 6 X values of the packed panel multiplies it
 * from a general-purpose register (VFMA by scalar), so the tile needs 6
 * accumulators + 1 operand of the 8 q registers; rows land in C's layout and
 * column tails are stored with a tail predicate (VCTP). The W slice uses the
 * scalar 4-wide packers (same [kc][4] layout).
 *
 * GEMV: 4 W rows per step, vectorized along k with predicated tail loads
 * (inactive lanes read nothing and add zero); the 4 lanes are reduced in a
 * fixed order. f16 weights are converted exactly in software (see load_f16). */
#if !defined(__ARM_FEATURE_MVE) || !(__ARM_FEATURE_MVE & 2)
#error "this file needs Helium with floating point (-mcpu=cortex-m55, or -march=armv8.1-m.main+mve.fp)"
#endif

#include <arm_mve.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/common/fp16.h"
#include "ops/gemm/gemm.h"

void spr_f32_gemm_ukernel_6x4__mve(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags, size_t mr,
                                   size_t nr, const float *bias, float *c, size_t ldc) {
  float32x4_t a[6];
#pragma GCC unroll 6
  for (int i = 0; i < 6; i++) a[i] = (flags & SPR_GEMM_ACC_LOAD) ? vld1q_f32(acc + 4 * i) : vdupq_n_f32(0.0f);
  for (size_t k = 0; k < kc; k++) {
    const float32x4_t w = vld1q_f32(wp + 4 * k);
    const float *x = xp + 6 * k;
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) a[i] = vfmaq_n_f32(a[i], w, x[i]);
  }
  if (!(flags & SPR_GEMM_FINAL)) {
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) vst1q_f32(acc + 4 * i, a[i]);
    return;
  }
  const mve_pred16_t cols = vctp32q((uint32_t)nr);
  const float32x4_t b = bias != NULL ? vldrwq_z_f32(bias, cols) : vdupq_n_f32(0.0f);
#pragma GCC unroll 6
  for (int i = 0; i < 6; i++) {
    if ((size_t)i >= mr) break;
    vstrwq_p_f32(c + (size_t)i * ldc, vaddq_f32(a[i], b), cols);
  }
}

/* [k][6] panel of mr rows (zero padded); a strided gather, the ukernel dominates. */
void spr_f32_gemm_packx_ukernel_6__mve(size_t k, size_t mr, const float *x, size_t ldx, float *xp) {
  for (size_t kk = 0; kk < k; kk++)
    for (size_t i = 0; i < 6; i++) xp[6 * kk + i] = i < mr ? x[i * ldx + kk] : 0.0f;
}

static inline float hsum(float32x4_t v) {
  return (vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1)) + (vgetq_lane_f32(v, 2) + vgetq_lane_f32(v, 3));
}

static inline float32x4_t load_f32(const float *p, mve_pred16_t live) {
  return vldrwq_z_f32(p, live);
}

/* f16 rows: converted in software (exact, ops/common/fp16.h). The MVE VCVTB
 * that GCC 12 emits for vcvtbq_f32_f16 is assembled by binutils 2.40 to an
 * encoding that qemu 7.2 (and objdump) reject as undefined. */
static inline float32x4_t load_f16(const uint16_t *p, mve_pred16_t live) {
  float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const size_t n = (size_t)__builtin_popcount(live) / 4; /* 4 predicate bits per 32-bit lane */
  for (size_t i = 0; i < n; i++) t[i] = spr_fp16_to_f32(p[i]);
  return vld1q_f32(t);
}

#define DEFINE_GEMV(name, elem_t, load)                                                                              \
  void name(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *wv, size_t ldw, const float *bias, \
            float *c, size_t ldc) {                                                                                  \
    const elem_t *w = (const elem_t *)wv;                                                                            \
    for (size_t j0 = 0; j0 < n; j0 += 4) {                                                                           \
      const size_t nb = n - j0 < 4 ? n - j0 : 4;                                                                     \
      for (size_t i = 0; i < m; i++) {                                                                               \
        const float *xr = x + i * ldx;                                                                               \
        float32x4_t a[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};             \
        for (size_t k0 = 0; k0 < k; k0 += 4) {                                                                       \
          const mve_pred16_t live = vctp32q((uint32_t)(k - k0 < 4 ? k - k0 : 4));                                    \
          const float32x4_t xv = vldrwq_z_f32(xr + k0, live);                                                        \
          for (size_t r = 0; r < nb; r++) a[r] = vfmaq_f32(a[r], xv, load(w + (j0 + r) * ldw + k0, live));           \
        }                                                                                                            \
        for (size_t r = 0; r < nb; r++) c[i * ldc + j0 + r] = hsum(a[r]) + (bias != NULL ? bias[j0 + r] : 0.0f);     \
      }                                                                                                              \
    }                                                                                                                \
  }

DEFINE_GEMV(spr_f32_gemv_ukernel_4__mve, float, load_f32)
DEFINE_GEMV(spr_f16_gemv_ukernel_4__mve, uint16_t, load_f16)
