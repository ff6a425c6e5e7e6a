/* ops/gemm/f32_gemm_neon.c — NEON GEMM/GEMV ukernels, written with SIMDe (see gemm.h).
 *
 * GEMM tile: 8 rows (lanes of two q registers of the packed X panel, used by
 * lane) x 8 columns (two q registers of the packed W slice): 16
 * accumulators, per k 4 loads and 16 FMAs by lane; rows land in C's layout. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/common/neon_compat.h"
#include "ops/gemm/gemm.h"

#define FMA_LANE(a, w, x, l) SPR_VFMAQ_LANEQ_F32((a), (w), (x), (l))

/* Tile rows i (x lane i of the packed panel) x 8 columns (two q of the
 * packed W slice): a[i][h] += w_h * x[i]; rows land in C's layout. acc
 * holds rows [8][8] between K blocks. */
void spr_f32_gemm_ukernel_8x8__neon(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags, size_t mr,
                                    size_t nr, const float *bias, float *c, size_t ldc) {
  simde_float32x4_t a[8][2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++)
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
      a[i][h] = (flags & SPR_GEMM_ACC_LOAD) ? simde_vld1q_f32(acc + 8 * i + 4 * h) : simde_vdupq_n_f32(0.0f);
  for (size_t k = 0; k < kc; k++) {
    const simde_float32x4_t x0 = simde_vld1q_f32(xp + 8 * k), x1 = simde_vld1q_f32(xp + 8 * k + 4);
    const simde_float32x4_t w0 = simde_vld1q_f32(wp + 8 * k), w1 = simde_vld1q_f32(wp + 8 * k + 4);
    a[0][0] = FMA_LANE(a[0][0], w0, x0, 0);
    a[0][1] = FMA_LANE(a[0][1], w1, x0, 0);
    a[1][0] = FMA_LANE(a[1][0], w0, x0, 1);
    a[1][1] = FMA_LANE(a[1][1], w1, x0, 1);
    a[2][0] = FMA_LANE(a[2][0], w0, x0, 2);
    a[2][1] = FMA_LANE(a[2][1], w1, x0, 2);
    a[3][0] = FMA_LANE(a[3][0], w0, x0, 3);
    a[3][1] = FMA_LANE(a[3][1], w1, x0, 3);
    a[4][0] = FMA_LANE(a[4][0], w0, x1, 0);
    a[4][1] = FMA_LANE(a[4][1], w1, x1, 0);
    a[5][0] = FMA_LANE(a[5][0], w0, x1, 1);
    a[5][1] = FMA_LANE(a[5][1], w1, x1, 1);
    a[6][0] = FMA_LANE(a[6][0], w0, x1, 2);
    a[6][1] = FMA_LANE(a[6][1], w1, x1, 2);
    a[7][0] = FMA_LANE(a[7][0], w0, x1, 3);
    a[7][1] = FMA_LANE(a[7][1], w1, x1, 3);
  }
  if (!(flags & SPR_GEMM_FINAL)) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) simde_vst1q_f32(acc + 8 * i + 4 * h, a[i][h]);
    return;
  }
  float b[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  if (bias != NULL) memcpy(b, bias, nr * sizeof(float));
  const simde_float32x4_t b0 = simde_vld1q_f32(b), b1 = simde_vld1q_f32(b + 4);
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    if ((size_t)i >= mr) break;
    float *row = c + (size_t)i * ldc;
    const simde_float32x4_t v0 = simde_vaddq_f32(a[i][0], b0), v1 = simde_vaddq_f32(a[i][1], b1);
    if (nr == 8) {
      simde_vst1q_f32(row, v0);
      simde_vst1q_f32(row + 4, v1);
    } else {
      float t[8];
      simde_vst1q_f32(t, v0);
      simde_vst1q_f32(t + 4, v1);
      memcpy(row, t, nr * sizeof(float));
    }
  }
}

/* ---- packing (a strided copy; the ukernel dominates) -------------------------- */

void spr_f32_gemm_packx_ukernel_8__neon(size_t k, size_t mr, const float *x, size_t ldx, float *xp) {
  for (size_t kk = 0; kk < k; kk++)
    for (size_t i = 0; i < 8; i++) xp[8 * kk + i] = i < mr ? x[i * ldx + kk] : 0.0f;
}

void spr_f32_gemm_packw_ukernel_8__neon(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  spr_f32_gemm_packx_ukernel_8__neon(kc, nr, (const float *)w, ldw, wp);
}

void spr_f16_gemm_packw_ukernel_8__neon(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  const uint16_t *s = (const uint16_t *)w;
  for (size_t kk = 0; kk < kc; kk++)
    for (size_t r = 0; r < 8; r++) wp[8 * kk + r] = r < nr ? spr_fp16_to_f32(s[r * ldw + kk]) : 0.0f;
}

/* ---- GEMV: 4 W rows x up to 2 X rows per pass, vectorized along k ---------------- */

static inline simde_float32x4_t load4_f32(const float *p, size_t n) {
  if (n == 4) return simde_vld1q_f32(p);
  float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  memcpy(t, p, n * sizeof(float));
  return simde_vld1q_f32(t);
}

static inline simde_float32x4_t load4_f16(const uint16_t *p, size_t n) {
  uint16_t t[4] = {0, 0, 0, 0};
  if (n == 4) {
    memcpy(t, p, sizeof t);
  } else {
    memcpy(t, p, n * sizeof(uint16_t));
  }
  return spr_vcvt_f32_f16_neon(simde_vld1_u16(t));
}

/* [sum(a0), sum(a1), sum(a2), sum(a3)] with a fixed pairwise tree. */
static inline simde_float32x4_t reduce4(simde_float32x4_t a0, simde_float32x4_t a1, simde_float32x4_t a2,
                                        simde_float32x4_t a3) {
  return spr_vpaddq_f32_neon(spr_vpaddq_f32_neon(a0, a1), spr_vpaddq_f32_neon(a2, a3));
}

#define DEFINE_DOT(name, elem_t, load)                                                                         \
  static inline __attribute__((always_inline)) void name(                                                      \
      size_t k, const float *x, size_t ldx, const elem_t *const w[4], const int m, simde_float32x4_t out[2]) { \
    simde_float32x4_t a[2][4];                                                                                 \
    for (int i = 0; i < 2; i++)                                                                                \
      for (int r = 0; r < 4; r++) a[i][r] = simde_vdupq_n_f32(0.0f);                                           \
    for (size_t k0 = 0; k0 < k; k0 += 4) {                                                                     \
      const size_t kb = k - k0 < 4 ? k - k0 : 4;                                                               \
      simde_float32x4_t wv[4];                                                                                 \
      for (int r = 0; r < 4; r++) wv[r] = load(w[r] + k0, kb);                                                 \
      for (int i = 0; i < m; i++) {                                                                            \
        const simde_float32x4_t xv = load4_f32(x + (size_t)i * ldx + k0, kb);                                  \
        for (int r = 0; r < 4; r++) a[i][r] = simde_vfmaq_f32(a[i][r], xv, wv[r]);                             \
      }                                                                                                        \
    }                                                                                                          \
    for (int i = 0; i < m; i++) out[i] = reduce4(a[i][0], a[i][1], a[i][2], a[i][3]);                          \
  }

DEFINE_DOT(dot4_f32, float, load4_f32)
DEFINE_DOT(dot4_f16, uint16_t, load4_f16)

static inline void store4(simde_float32x4_t s, size_t nr, const float *bias, float *c) {
  float t[4];
  simde_vst1q_f32(t, s);
  for (size_t r = 0; r < nr; r++) c[r] = t[r] + (bias != NULL ? bias[r] : 0.0f);
}

#define DEFINE_GEMV_UKERNEL(name, elem_t, dot)                                                                       \
  void name(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *wv, size_t ldw, const float *bias, \
            float *c, size_t ldc) {                                                                                  \
    const elem_t *w = (const elem_t *)wv;                                                                            \
    for (size_t j = 0; j < n; j += 4) {                                                                              \
      const size_t nr = n - j < 4 ? n - j : 4;                                                                       \
      const elem_t *rows[4];                                                                                         \
      for (size_t r = 0; r < 4; r++) rows[r] = w + (j + (r < nr ? r : nr - 1)) * ldw;                                \
      for (size_t i = 0; i < m; i += 2) {                                                                            \
        simde_float32x4_t s[2];                                                                                      \
        if (m - i >= 2) {                                                                                            \
          dot(k, x + i * ldx, ldx, rows, 2, s);                                                                      \
        } else {                                                                                                     \
          dot(k, x + i * ldx, ldx, rows, 1, s);                                                                      \
        }                                                                                                            \
        for (size_t u = 0; u < 2 && i + u < m; u++)                                                                  \
          store4(s[u], nr, bias != NULL ? bias + j : NULL, c + (i + u) * ldc + j);                                   \
      }                                                                                                              \
    }                                                                                                                \
  }

DEFINE_GEMV_UKERNEL(spr_f32_gemv_ukernel_4__neon, float, dot4_f32)
DEFINE_GEMV_UKERNEL(spr_f16_gemv_ukernel_4__neon, uint16_t, dot4_f16)
