/* ops/bra/bra_ref.c — routing selection (shared by the op and the oracle) and
 * the oracle for SPR_OP_BRA: obvious code in double, one query's scores over
 * its routed keys materialized at a time. Never dispatched. */
#include <math.h>
#include <stdint.h>

#include "ops/bra/bra.h"

/* (a_i, i) comes before (a_j, j) when a_i > a_j, or a_i == a_j and i < j;
 * NaN ranks as -inf. */
static inline int bra_before(double ai, size_t i, double aj, size_t j) {
  if (ai > aj) return 1;
  if (ai < aj) return 0;
  if (ai == aj) return i < j;
  /* unordered (a NaN): NaN ranks as -inf */
  if (isnan(ai)) ai = -INFINITY;
  if (isnan(aj)) aj = -INFINITY;
  return ai > aj || (ai == aj && i < j);
}

/* Insertion into the running top list (kept in the order above): each
 * element is compared with the list's last, so the usual cost is O(n). An
 * element equal to a listed one comes later in the index order, so ties
 * keep the lower index without a special case. */
void spr_bra_topk(const double *a, size_t n, size_t topk, int32_t *sel) {
  size_t cnt = 0;
  for (size_t i = 0; i < n; i++) {
    if (cnt == topk && !bra_before(a[i], i, a[sel[cnt - 1]], (size_t)sel[cnt - 1])) continue;
    size_t j = cnt < topk ? cnt++ : cnt - 1;
    for (; j > 0 && bra_before(a[i], i, a[sel[j - 1]], (size_t)sel[j - 1]); j--) sel[j] = sel[j - 1];
    sel[j] = (int32_t)i;
  }
  /* increasing region index */
  for (size_t k = 1; k < topk; k++) {
    const int32_t x = sel[k];
    size_t j = k;
    for (; j > 0 && sel[j - 1] > x; j--) sel[j] = sel[j - 1];
    sel[j] = x;
  }
}

void spr_bra_dot_acc(double acc[8], const float *a, const float *b, size_t c0, size_t n) {
  size_t i = 0;
  for (; i < n && ((c0 + i) & 7) != 0; i++) {
    const double prod = (double)a[i] * (double)b[i]; /* a separate statement: never contracted */
    acc[(c0 + i) & 7] += prod;
  }
  for (; i + 8 <= n; i += 8) {
    double prod[8];
    for (size_t j = 0; j < 8; j++) prod[j] = (double)a[i + j] * (double)b[i + j];
    for (size_t j = 0; j < 8; j++) acc[j] += prod[j];
  }
  for (; i < n; i++) {
    const double prod = (double)a[i] * (double)b[i];
    acc[(c0 + i) & 7] += prod;
  }
}

double spr_bra_dot_sum(const double acc[8]) {
  return spr_bra_dot_sum_inl(acc);
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
  /* routing uses the op's f32 scale (the ranking must match it exactly) */
  const double rscale = (double)(p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)qk));
  float *kr = (float *)(void *)scratch; /* [P][qk] region key means (in P * qk doubles) */
  float *qr = kr + P * qk;              /* [qk] one region's query mean (in qk doubles) */
  double *a = scratch + P * qk + qk;    /* [P] routing scores of one region */
  double *sc = a + P;                   /* [topk * M] one query's scores */
  int32_t *sel = (int32_t *)(void *)(sc + topk * M);
#define TOK(reg, t) ((((reg) / S) * rh + (t) / rw) * W + ((reg) % S) * rw + (t) % rw)
  for (size_t r = 0; r < P; r++) {
    for (size_t c = 0; c < qk; c++) {
      double s = 0.0;
      for (size_t t = 0; t < M; t++) s += (double)k[TOK(r, t) * k_stride + p->k_col + c];
      kr[r * qk + c] = (float)(s / (double)M);
    }
  }
  for (size_t r = 0; r < P; r++) {
    for (size_t c = 0; c < qk; c++) {
      double s = 0.0;
      for (size_t t = 0; t < M; t++) s += (double)q[TOK(r, t) * q_stride + p->q_col + c];
      qr[c] = (float)(s / (double)M);
    }
    for (size_t r2 = 0; r2 < P; r2++) {
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      spr_bra_dot_acc(acc, qr, kr + r2 * qk, 0, qk);
      a[r2] = rscale * spr_bra_dot_sum(acc);
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
