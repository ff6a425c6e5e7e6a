/* ops/gemm/qgemm_ref.c — the quantized GEMM oracle: quantize/dequantize the
 * activations exactly as the kernels do (reference quantizer of the weight
 * type's vec_dot_type), dequantize the weights, double accumulation. */
#include "ops/gemm/qgemm.h"

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

void spr_qgemm_ref(enum spr_dtype w_type, size_t m, size_t n, size_t k, const float *x, const void *w,
                   const float *bias, enum spr_act act, const float *residual, float *dst) {
  const size_t qk = spr_dtype_block_elems(w_type), bb = spr_dtype_block_bytes(w_type), kb = k / qk;
  const spr_dequantize_row_fn deq_w = spr_dequantize_row_get(w_type);
  const bool k_act = qk == SPR_QK_K; /* Q4_K/Q6_K pair with Q8_K, Q8_0/Q4_0 with Q8_0 */
  float xd[SPR_QK_K], wd[SPR_QK_K];
  for (size_t i = 0; i < m; i++) {
    for (size_t j = 0; j < n; j++) {
      double s = bias != NULL ? (double)bias[j] : 0.0;
      for (size_t b = 0; b < kb; b++) {
        const float *xb = x + i * k + b * qk;
        if (k_act) {
          struct spr_block_q8_k q;
          spr_quantize_row_q8_k_ref(xb, &q, SPR_QK_K);
          spr_dequantize_row_q8_k(&q, xd, SPR_QK_K);
        } else {
          struct spr_block_q8_0 q;
          spr_quantize_row_q8_0_ref(xb, &q, SPR_QK8_0);
          spr_dequantize_row_q8_0(&q, xd, SPR_QK8_0);
        }
        deq_w((const uint8_t *)w + j * kb * bb + b * bb, wd, (int64_t)qk);
        for (size_t t = 0; t < qk; t++) s += (double)xd[t] * (double)wd[t];
      }
      float v = act_ref(act, (float)s);
      if (residual != NULL) v += residual[i * n + j];
      dst[i * n + j] = v;
    }
  }
}

void spr_qgemm_multi_ref(enum spr_dtype w_type, size_t m, size_t k, const float *x, const void *w1, size_t n1,
                         const void *w2, size_t n2, const void *w3, size_t n3, int glu, enum spr_act act, float *dst) {
  const size_t row_bytes = k / spr_dtype_block_elems(w_type) * spr_dtype_block_bytes(w_type);
  const uint8_t *ws[3] = {w1, w2, w3};
  const size_t ns[3] = {n1, n2, w3 != NULL ? n3 : 0};
  const size_t n = glu ? n1 : ns[0] + ns[1] + ns[2];
  for (size_t i = 0; i < m; i++) {
    size_t col = 0;
    for (int s = 0; s < (glu ? 1 : 3); s++) {
      for (size_t j = 0; j < ns[s]; j++) {
        float v;
        spr_qgemm_ref(w_type, 1, 1, k, x + i * k, ws[s] + j * row_bytes, NULL, glu ? act : SPR_ACT_NONE, NULL, &v);
        if (glu) {
          float u;
          spr_qgemm_ref(w_type, 1, 1, k, x + i * k, ws[1] + j * row_bytes, NULL, SPR_ACT_NONE, NULL, &u);
          v *= u;
        }
        dst[i * n + col + j] = v;
      }
      col += ns[s];
    }
  }
}
