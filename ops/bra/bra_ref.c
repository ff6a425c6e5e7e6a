/* ops/bra/bra_ref.c — routing selection (shared by the op and the oracle) and
 * the oracle for SPR_OP_BRA: obvious code in double, one query's scores over
 * its routed keys materialized at a time. Never dispatched. */
#include <math.h>
#include <stdint.h>

#include "ops/bra/bra.h"

/* (a_i, i) comes before (a_j, j) when a_i > a_j, or a_i == a_j and i < j;
 * NaN ranks as -inf. */
static int bra_before(double ai, size_t i, double aj, size_t j) {
  if (isnan(ai)) ai = -INFINITY;
  if (isnan(aj)) aj = -INFINITY;
  return ai > aj || (ai == aj && i < j);
}

void spr_bra_topk(const double *a, size_t n, size_t topk, int32_t *sel) {
  /* pick k: the first element (in the order above) after pick k-1 */
  size_t prev = n;
  for (size_t k = 0; k < topk; k++) {
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
      if (prev < n && !bra_before(a[prev], prev, a[i], i)) continue; /* not after the previous pick */
      if (best == n || bra_before(a[i], i, a[best], best)) best = i;
    }
    sel[k] = (int32_t)best;
    prev = best;
  }
  /* increasing region index */
  for (size_t k = 1; k < topk; k++) {
    const int32_t x = sel[k];
    size_t j = k;
    for (; j > 0 && sel[j - 1] > x; j--) sel[j] = sel[j - 1];
    sel[j] = x;
  }
}

size_t spr_bra_ref_scratch_doubles(const struct spr_bra_params *p) {
  const size_t P = (size_t)p->n_win * p->n_win, M = (size_t)(p->h / p->n_win) * (p->w / p->n_win);
  return P * p->qk_dim + p->qk_dim + P + (size_t)p->topk * M + (size_t)p->topk;
}

void spr_f32_bra_ref(const struct spr_bra_params *p, const float *q, size_t q_stride, const float *k, size_t k_stride,
                     const float *v, size_t v_stride, float *o, size_t o_stride, double *scratch) {
  const size_t S = p->n_win, P = S * S, rh = p->h / S, rw = p->w / S, M = rh * rw, W = p->w;
  const size_t qk = p->qk_dim, nh = p->n_heads, hq = qk / nh, hv = p->v_dim / nh, topk = p->topk;
  const double scale = p->scale != 0.0f ? (double)p->scale : 1.0 / sqrt((double)qk);
  double *kr = scratch;     /* [P][qk] region key means (f32 values) */
  double *qr = kr + P * qk; /* [qk] one region's query mean */
  double *a = qr + qk;      /* [P] routing scores of one region */
  double *sc = a + P;       /* [topk * M] one query's scores */
  int32_t *sel = (int32_t *)(void *)(sc + topk * M);
#define TOK(reg, t) ((((reg) / S) * rh + (t) / rw) * W + ((reg) % S) * rw + (t) % rw)
  for (size_t r = 0; r < P; r++) {
    for (size_t c = 0; c < qk; c++) {
      double s = 0.0;
      for (size_t t = 0; t < M; t++) s += (double)k[TOK(r, t) * k_stride + p->k_col + c];
      kr[r * qk + c] = (double)(float)(s / (double)M);
    }
  }
  for (size_t r = 0; r < P; r++) {
    for (size_t c = 0; c < qk; c++) {
      double s = 0.0;
      for (size_t t = 0; t < M; t++) s += (double)q[TOK(r, t) * q_stride + p->q_col + c];
      qr[c] = (double)(float)(s / (double)M);
    }
    for (size_t r2 = 0; r2 < P; r2++) {
      double s = 0.0;
      for (size_t c = 0; c < qk; c++) {
        const double prod = qr[c] * kr[r2 * qk + c]; /* (a separate statement: never contracted) */
        s += prod;
      }
      a[r2] = scale * s;
    }
    spr_bra_topk(a, P, topk, sel);
    for (size_t h = 0; h < nh; h++) {
      for (size_t t = 0; t < M; t++) {
        const float *qi = q + TOK(r, t) * q_stride + p->q_col + h * hq;
        double mx = -INFINITY;
        for (size_t j = 0; j < topk * M; j++) {
          const size_t kt = TOK((size_t)sel[j / M], j % M);
          const float *kj = k + kt * k_stride + p->k_col + h * hq;
          double s = 0.0;
          for (size_t d = 0; d < hq; d++) s += (double)qi[d] * (double)kj[d];
          sc[j] = scale * s;
          if (sc[j] > mx) mx = sc[j];
        }
        double sum = 0.0;
        for (size_t j = 0; j < topk * M; j++) {
          sc[j] = exp(sc[j] - mx);
          sum += sc[j];
        }
        float *out = o + TOK(r, t) * o_stride + h * hv;
        for (size_t c = 0; c < hv; c++) {
          double acc = 0.0;
          for (size_t j = 0; j < topk * M; j++) {
            const size_t kt = TOK((size_t)sel[j / M], j % M);
            acc += sc[j] * (double)v[kt * v_stride + p->v_col + h * hv + c];
          }
          out[c] = (float)(acc / sum);
        }
      }
    }
  }
#undef TOK
}
