/* ops/llm/llm_ref.c — oracles of the LLM op family: obvious code, double
 * where anything is computed. Never dispatched. */
#include <math.h>

#include "ops/common/fp16.h"
#include "ops/llm/llm.h"

void spr_get_rows_ref(enum spr_dtype type, const void *table, size_t d, size_t n_rows, const int32_t *ids, size_t n,
                      float *y) {
  for (size_t t = 0; t < n; t++) {
    const size_t row = ids[t] >= 0 && (size_t)ids[t] < n_rows ? (size_t)ids[t] : 0;
    for (size_t i = 0; i < d; i++) {
      const size_t k = row * d + i;
      y[t * d + i] = type == SPR_DTYPE_F16 ? spr_fp16_to_f32(((const uint16_t *)table)[k]) : ((const float *)table)[k];
    }
  }
}

void spr_f32_rope_ref(const struct spr_rope_params *p, size_t n_tokens, int64_t n_past, const float *x, size_t x_stride,
                      float *y) {
  const size_t hd = p->head_dim, row = (size_t)p->n_heads * hd;
  for (size_t t = 0; t < n_tokens; t++) {
    const double pos = (double)(n_past + (int64_t)t);
    for (size_t h = 0; h < p->n_heads; h++) {
      const float *xh = x + t * x_stride + p->col + h * hd;
      float *yh = y + t * row + h * hd;
      for (size_t i = 0; i < p->n_rot / 2u; i++) {
        const double theta = pos * (double)p->freq_scale * pow((double)p->freq_base, -2.0 * (double)i / p->n_rot);
        const double c = cos(theta), s = sin(theta);
        const double x0 = xh[2 * i], x1 = xh[2 * i + 1];
        yh[2 * i] = (float)(x0 * c - x1 * s);
        yh[2 * i + 1] = (float)(x0 * s + x1 * c);
      }
      for (size_t i = p->n_rot; i < hd; i++) yh[i] = xh[i];
    }
  }
}

void spr_kv_store_ref(const struct spr_kv_params *p, size_t w, size_t n, int64_t n_past, const float *x,
                      size_t x_stride, enum spr_dtype type, void *cache, size_t cap) {
  for (size_t t = 0; t < n; t++) {
    const uint32_t slot = spr_kv_slot((uint32_t)(n_past + (int64_t)t), p->window, p->sinks, p->ring);
    if (slot >= cap) continue;
    for (size_t i = 0; i < w; i++) {
      if (type == SPR_DTYPE_F16)
        ((uint16_t *)cache)[(size_t)slot * w + i] = spr_fp16_from_f32(x[t * x_stride + p->col + i]);
      else
        ((float *)cache)[(size_t)slot * w + i] = x[t * x_stride + p->col + i];
    }
  }
}
