/* ops/gemm/gemm_ref.c — the GEMM oracle: obvious loops, double accumulation. */

#include "ops/common/fp16.h"
#include "ops/gemm/gemm.h"

static double weight(const void *w, enum spr_dtype t, size_t i) {
  if (t == SPR_DTYPE_F16) return (double)spr_fp16_to_f32(((const uint16_t *)w)[i]);
  return (double)((const float *)w)[i];
}

static float act_ref(enum spr_act act, float v) {
  switch (act) {
    case SPR_ACT_GELU:
      return spr_f32_gelu_ref(v);
    case SPR_ACT_SILU:
      return spr_f32_silu_ref(v);
    case SPR_ACT_RELU:
      return v > 0.0f ? v : 0.0f;
    case SPR_ACT_NONE:
      break;
  }
  return v;
}

void spr_f32_gemm_ref(size_t m, size_t n, size_t k, const float *x, const void *w, enum spr_dtype w_type,
                      const float *bias, enum spr_act act, const float *residual, float *dst) {
  for (size_t i = 0; i < m; i++) {
    for (size_t j = 0; j < n; j++) {
      double s = bias != NULL ? (double)bias[j] : 0.0;
      for (size_t kk = 0; kk < k; kk++) s += (double)x[i * k + kk] * weight(w, w_type, j * k + kk);
      float v = act_ref(act, (float)s);
      if (residual != NULL) v += residual[i * n + j];
      dst[i * n + j] = v;
    }
  }
}
