/* ops/attention/attention_ref.c — the oracle for SPR_OP_ATTENTION: one query
 * at a time, all its scores materialized, double precision throughout.
 * Never dispatched; tests compare every ukernel against it. */
#include <math.h>

#include "ops/attention/attention.h"

void spr_f32_attention_ref(const struct spr_attn_params *p, size_t tq, size_t tk, const float *q, size_t q_stride,
                           const float *k, size_t k_stride, const float *v, size_t v_stride, float *dst,
                           double *scores) {
  const size_t hd = p->head_dim, nh = p->n_heads, group = nh / p->n_kv_heads;
  const size_t off = tk >= tq ? tk - tq : 0;
  for (size_t h = 0; h < nh; h++) {
    const size_t kvh = h / group;
    for (size_t i = 0; i < tq; i++) {
      const float *qi = q + i * q_stride + p->q_col + h * hd;
      float *out = dst + i * nh * hd + h * hd;
      /* keys 0 .. n_vis-1 are visible */
      size_t n_vis = tk;
      if (p->causal) n_vis = tk >= tq ? i + off + 1 : (i + 1 > tq - tk ? i + 1 - (tq - tk) : 0);
      if (n_vis == 0) {
        for (size_t c = 0; c < hd; c++) out[c] = 0.0f;
        continue;
      }
      double mx = -INFINITY;
      for (size_t j = 0; j < n_vis; j++) {
        const float *kj = k + j * k_stride + p->k_col + kvh * hd;
        double s = 0.0;
        for (size_t d = 0; d < hd; d++) s += (double)qi[d] * (double)kj[d];
        scores[j] = (double)p->scale * s;
        if (scores[j] > mx) mx = scores[j];
      }
      double sum = 0.0;
      for (size_t j = 0; j < n_vis; j++) {
        scores[j] = exp(scores[j] - mx);
        sum += scores[j];
      }
      for (size_t c = 0; c < hd; c++) {
        double acc = 0.0;
        for (size_t j = 0; j < n_vis; j++) acc += scores[j] * (double)v[j * v_stride + p->v_col + kvh * hd + c];
        out[c] = (float)(acc / sum);
      }
    }
  }
}

void spr_f32_attention_cached_ref(const struct spr_attn_params *p, size_t n_past, size_t tq, const float *q,
                                  size_t q_stride, const float *k_pos, const float *v_pos, size_t kv_stride, float *dst,
                                  double *scores) {
  const size_t hd = p->head_dim, nh = p->n_heads, group = nh / p->n_kv_heads;
  for (size_t h = 0; h < nh; h++) {
    const size_t kvh = h / group;
    for (size_t t = 0; t < tq; t++) {
      const size_t i = n_past + t; /* the query's position */
      const float *qi = q + t * q_stride + p->q_col + h * hd;
      float *out = dst + t * nh * hd + h * hd;
      double mx = -INFINITY;
      for (size_t j = 0; j <= i; j++) {
        const int visible = p->window == 0 || j < p->sinks || j + p->window > i;
        if (!visible) {
          scores[j] = -INFINITY;
          continue;
        }
        const float *kj = k_pos + j * kv_stride + p->k_col + kvh * hd;
        double s = 0.0;
        for (size_t d = 0; d < hd; d++) s += (double)qi[d] * (double)kj[d];
        scores[j] = (double)p->scale * s;
        if (scores[j] > mx) mx = scores[j];
      }
      double sum = 0.0;
      for (size_t j = 0; j <= i; j++) {
        scores[j] = scores[j] == -INFINITY ? 0.0 : exp(scores[j] - mx);
        sum += scores[j];
      }
      for (size_t c = 0; c < hd; c++) {
        double acc = 0.0;
        for (size_t j = 0; j <= i; j++) acc += scores[j] * (double)v_pos[j * kv_stride + p->v_col + kvh * hd + c];
        out[c] = (float)(acc / sum);
      }
    }
  }
}
