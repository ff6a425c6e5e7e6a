/* ops/natten/natten_ref.c — the oracle for SPR_OP_NEIGHBORHOOD_ATTN: one
 * query at a time, its whole window listed and scored in double precision,
 * straight from the per-axis rule (written out here independently of
 * spr_na_window). Never dispatched; tests compare every ukernel with it. */
#include <math.h>
#include <stdint.h>

#include "ops/natten/natten.h"

/* Window of token i (global coordinate) on one axis: keys j with
 * j % d == i % d and lo <= j / d < hi. */
static void ref_axis_window(int64_t L, int64_t K, int64_t d, int64_t s, int causal, int64_t i, int64_t *lo,
                            int64_t *hi) {
  const int64_t g = i % d, ii = i / d;
  const int64_t Lg = L / d + (g < L % d ? 1 : 0);
  if (causal) {
    int64_t leader = (ii / s) * s + s - 1;
    if (leader > Lg - 1) leader = Lg - 1;
    *lo = leader - (K - 1) < 0 ? 0 : leader - (K - 1);
    *hi = ii + 1 < Lg ? ii + 1 : Lg;
    return;
  }
  const int64_t left = K / 2, right = K / 2 + K % 2 - 1;
  int64_t leader = (ii / s) * s + s / 2;
  if (leader > Lg - 1) leader = Lg - 1;
  int64_t start = leader - left < 0 ? 0 : leader - left;
  if (leader + right >= Lg) start += Lg - right - leader - 1;
  *lo = start;
  *hi = start + K;
}

void spr_f32_na_ref(const struct spr_na_params *p, const float *q, size_t q_stride, const float *k, size_t k_stride,
                    const float *v, size_t v_stride, const float *rpb, float *o, size_t o_stride, double *scores) {
  const int nd = p->n_dims;
  const size_t hd = p->head_dim;
  const double scale = p->scale != 0.0f ? (double)p->scale : 1.0 / sqrt((double)hd);
  int64_t n_tok = 1, rpb_head = 1;
  for (int a = 0; a < nd; a++) {
    n_tok *= p->size[a];
    rpb_head *= 2 * (int64_t)p->kernel[a] - 1;
  }
  for (size_t h = 0; h < p->n_heads; h++) {
    for (int64_t t = 0; t < n_tok; t++) {
      /* coordinates of the query (axis nd-1 fastest) and its windows */
      int64_t c[3], lo[3], hi[3], rem = t;
      for (int a = nd - 1; a >= 0; a--) {
        c[a] = rem % p->size[a];
        rem /= p->size[a];
      }
      int64_t n_keys = 1;
      for (int a = 0; a < nd; a++) {
        ref_axis_window(p->size[a], p->kernel[a], p->dilation[a], p->stride[a], (p->causal >> a) & 1, c[a], &lo[a],
                        &hi[a]);
        n_keys *= hi[a] - lo[a];
      }
      const float *qi = q + (size_t)t * q_stride + p->q_col + h * hd;
      /* enumerate the window, axis 0 outermost */
      double mx = -INFINITY;
      for (int64_t w = 0; w < n_keys; w++) {
        int64_t kc[3], wr = w, tok = 0, bidx = 0;
        for (int a = nd - 1; a >= 0; a--) {
          const int64_t n = hi[a] - lo[a];
          kc[a] = lo[a] + wr % n; /* group coordinate */
          wr /= n;
        }
        for (int a = 0; a < nd; a++) {
          const int64_t d = p->dilation[a];
          tok = tok * p->size[a] + kc[a] * d + c[a] % d;
          bidx = bidx * (2 * (int64_t)p->kernel[a] - 1) + (p->kernel[a] - 1) + (kc[a] - c[a] / d);
        }
        const float *kj = k + (size_t)tok * k_stride + p->k_col + h * hd;
        double s = 0.0;
        for (size_t e = 0; e < hd; e++) s += (double)qi[e] * (double)kj[e];
        s *= scale;
        if (rpb != NULL) s += (double)rpb[h * (size_t)rpb_head + (size_t)bidx];
        scores[w] = s;
        if (s > mx) mx = s;
      }
      double sum = 0.0;
      for (int64_t w = 0; w < n_keys; w++) {
        scores[w] = exp(scores[w] - mx);
        sum += scores[w];
      }
      float *out = o + (size_t)t * o_stride + h * hd;
      for (size_t e = 0; e < hd; e++) {
        double acc = 0.0;
        for (int64_t w = 0; w < n_keys; w++) {
          int64_t kc[3], wr = w, tok = 0;
          for (int a = nd - 1; a >= 0; a--) {
            const int64_t n = hi[a] - lo[a];
            kc[a] = lo[a] + wr % n;
            wr /= n;
          }
          for (int a = 0; a < nd; a++) tok = tok * p->size[a] + kc[a] * p->dilation[a] + c[a] % p->dilation[a];
          acc += scores[w] * (double)v[(size_t)tok * v_stride + p->v_col + h * hd + e];
        }
        out[e] = (float)(acc / sum);
      }
    }
  }
}
