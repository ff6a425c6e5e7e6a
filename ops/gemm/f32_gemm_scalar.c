/* ops/gemm/f32_gemm_scalar.c — portable GEMM/GEMV ukernels (see gemm.h for the contracts).
 * Tile 4 (m) x 4 (n): 16 accumulators fit the FPU register file of small cores. */
#include <stddef.h>
#include <stdint.h>

#include "ops/common/fp16.h"
#include "ops/gemm/gemm.h"

void spr_f32_gemm_ukernel_4x4__scalar(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags,
                                      size_t mr, size_t nr, const float *bias, float *c, size_t ldc) {
  float a[4][4]; /* [n][m] */
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < 4; i++) a[r][i] = (flags & SPR_GEMM_ACC_LOAD) ? acc[4 * r + i] : 0.0f;
  for (size_t k = 0; k < kc; k++) {
    const float *x = xp + 4 * k, *w = wp + 4 * k;
    for (int r = 0; r < 4; r++)
      for (int i = 0; i < 4; i++) a[r][i] += x[i] * w[r];
  }
  if (!(flags & SPR_GEMM_FINAL)) {
    for (int r = 0; r < 4; r++)
      for (int i = 0; i < 4; i++) acc[4 * r + i] = a[r][i];
    return;
  }
  for (size_t i = 0; i < mr; i++)
    for (size_t r = 0; r < nr; r++) c[i * ldc + r] = a[r][i] + (bias != NULL ? bias[r] : 0.0f);
}

void spr_f32_gemm_packx_ukernel_4__scalar(size_t k, size_t mr, const float *x, size_t ldx, float *xp) {
  for (size_t kk = 0; kk < k; kk++)
    for (size_t i = 0; i < 4; i++) xp[4 * kk + i] = i < mr ? x[i * ldx + kk] : 0.0f;
}

void spr_f32_gemm_packw_ukernel_4__scalar(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  const float *s = (const float *)w;
  for (size_t kk = 0; kk < kc; kk++)
    for (size_t r = 0; r < 4; r++) wp[4 * kk + r] = r < nr ? s[r * ldw + kk] : 0.0f;
}

void spr_f16_gemm_packw_ukernel_4__scalar(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  const uint16_t *s = (const uint16_t *)w;
  for (size_t kk = 0; kk < kc; kk++)
    for (size_t r = 0; r < 4; r++) wp[4 * kk + r] = r < nr ? spr_fp16_to_f32(s[r * ldw + kk]) : 0.0f;
}

/* Four partial sums (k mod 4) break the FPU dependency chain. */
#define DEFINE_GEMV(name, elem_t, cvt)                                                                               \
  void name(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *wv, size_t ldw, const float *bias, \
            float *c, size_t ldc) {                                                                                  \
    const elem_t *w = (const elem_t *)wv;                                                                            \
    for (size_t j = 0; j < n; j++) {                                                                                 \
      const elem_t *wr = w + j * ldw;                                                                                \
      for (size_t i = 0; i < m; i++) {                                                                               \
        const float *xr = x + i * ldx;                                                                               \
        float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                                                       \
        size_t kk = 0;                                                                                               \
        for (; kk + 4 <= k; kk += 4)                                                                                 \
          for (int u = 0; u < 4; u++) s[u] += xr[kk + u] * cvt(wr[kk + u]);                                          \
        for (; kk < k; kk++) s[0] += xr[kk] * cvt(wr[kk]);                                                           \
        c[i * ldc + j] = ((s[0] + s[1]) + (s[2] + s[3])) + (bias != NULL ? bias[j] : 0.0f);                          \
      }                                                                                                              \
    }                                                                                                                \
  }

static inline float id_f32(float v) {
  return v;
}

DEFINE_GEMV(spr_f32_gemv_ukernel_1__scalar, float, id_f32)
DEFINE_GEMV(spr_f16_gemv_ukernel_1__scalar, uint16_t, spr_fp16_to_f32)
