/* ops/coreffn/coreffn_ref.c — oracles: the whole selection by full sorts,
 * and the axpy over neurons with dequantized weights and double sums. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"
#include "ops/quant/quant.h"

/* These two oracles allocate their work buffers (they are only called by
 * tests); the firmware library has no heap, so it leaves them out. */
#if !SPR_FIRMWARE
struct ranked {
  float v;
  int32_t n;
};

static int by_value_desc(const void *pa, const void *pb) {
  const struct ranked *a = pa, *b = pb;
  const float va = a->v + 0.0f, vb = b->v + 0.0f;
  if (va > vb) return -1;
  if (va < vb) return 1;
  return (a->n > b->n) - (a->n < b->n);
}

struct counted {
  int32_t f, n;
};

static int by_freq_desc(const void *pa, const void *pb) {
  const struct counted *a = pa, *b = pb;
  if (a->f != b->f) return a->f > b->f ? -1 : 1;
  return (a->n > b->n) - (a->n < b->n);
}

static int by_int(const void *pa, const void *pb) {
  const int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  return (a > b) - (a < b);
}

size_t spr_core_select_ref(const float *a, size_t n_tokens, size_t n_ff, size_t step, float alpha, float beta,
                           int32_t *core) {
  struct ranked *row = malloc(n_ff * sizeof *row);
  struct counted *cnt = malloc(n_ff * sizeof *cnt);
  int32_t *freq = calloc(n_ff, sizeof *freq);
  if (step == 0) step = n_tokens;
  long long pos = 0, seen = 0;
  for (size_t t0 = 0; t0 < n_tokens; t0 += step) {
    const size_t t1 = t0 + step < n_tokens ? t0 + step : n_tokens;
    for (size_t t = t0; t < t1; t++)
      for (size_t n = 0; n < n_ff; n++) pos += a[t * n_ff + n] > 0.0f;
    seen += (long long)(t1 - t0);
    size_t k = (size_t)floor((double)alpha * (double)pos / (double)seen);
    if (k > n_ff) k = n_ff;
    for (size_t t = t0; t < t1; t++) {
      for (size_t n = 0; n < n_ff; n++) row[n] = (struct ranked){a[t * n_ff + n], (int32_t)n};
      qsort(row, n_ff, sizeof *row, by_value_desc);
      for (size_t i = 0; i < k; i++) freq[row[i].n]++;
    }
  }
  const size_t c = spr_core_count(beta, n_ff);
  for (size_t n = 0; n < n_ff; n++) cnt[n] = (struct counted){freq[n], (int32_t)n};
  qsort(cnt, n_ff, sizeof *cnt, by_freq_desc);
  for (size_t i = 0; i < c; i++) core[i] = cnt[i].n;
  qsort(core, c, sizeof *core, by_int);
  free(row);
  free(cnt);
  free(freq);
  return c;
}

void spr_axpy_rows_ref(enum spr_dtype type, size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                       size_t ne, float *y) {
  const spr_dequantize_row_fn deq = spr_dequantize_row_get(type);
  float *row = malloc(ne * sizeof *row);
  double *acc = calloc(ne, sizeof *acc);
  for (size_t i = 0; i < n; i++) {
    const size_t r = idx != NULL ? (size_t)idx[i] : i;
    deq((const uint8_t *)w + r * ldw, row, (int64_t)ne);
    for (size_t e = 0; e < ne; e++) acc[e] += (double)a[i] * (double)row[e];
  }
  for (size_t e = 0; e < ne; e++) y[e] = (float)acc[e];
  free(row);
  free(acc);
}
#endif /* !SPR_FIRMWARE */

void spr_axpyq_rows_ref(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y) {
  for (size_t b = 0; b < ne / 32; b++) {
    double acc[32] = {0};
    for (size_t g0 = 0; g0 < n; g0 += SPR_AXPYQ_GROUP) {
      const size_t gn = n - g0 < SPR_AXPYQ_GROUP ? n - g0 : SPR_AXPYQ_GROUP;
      float p[SPR_AXPYQ_GROUP], m = 0.0f;
      const uint8_t *blk[SPR_AXPYQ_GROUP];
      for (size_t i = 0; i < gn; i++) {
        blk[i] = (const uint8_t *)w + (idx != NULL ? (size_t)idx[g0 + i] : g0 + i) * ldw + 18 * b;
        uint16_t h;
        memcpy(&h, blk[i], sizeof h);
        p[i] = a[g0 + i] * spr_fp16_to_f32(h);
        if (fabsf(p[i]) > m) m = fabsf(p[i]);
      }
      if (!(m > 0.0f)) continue;
      const float s = m / 127.0f, inv = 127.0f / m;
      for (size_t i = 0; i < gn; i++) {
        const long c = lrintf(p[i] * inv);
        for (int j = 0; j < 32; j++) {
          const int q = (j < 16 ? (blk[i][2 + j] & 0xF) : (blk[i][2 + j - 16] >> 4)) - 8;
          acc[j] += (double)s * (double)(c * q);
        }
      }
    }
    for (int j = 0; j < 32; j++) y[32 * b + j] = (float)acc[j];
  }
}

#if !SPR_FIRMWARE /* allocates (tests only); see above */
void spr_qrows_ref(enum spr_dtype type, size_t k, size_t n, const int32_t *idx, const void *w, size_t ldw,
                   const float *x, float *c, double *mag) {
  const size_t kb = k / SPR_QK8_0;
  const spr_dequantize_row_fn deq = spr_dequantize_row_get(type);
  struct spr_block_q8_0 *xq = malloc(kb * sizeof *xq);
  float *xd = malloc(k * sizeof *xd), *row = malloc(k * sizeof *row);
  spr_quantize_row_q8_0_ref(x, xq, (int64_t)k);
  spr_dequantize_row_get(SPR_DTYPE_Q8_0)(xq, xd, (int64_t)k);
  for (size_t i = 0; i < n; i++) {
    deq((const uint8_t *)w + (size_t)idx[i] * ldw, row, (int64_t)k);
    double s = 0.0, m = 0.0;
    for (size_t e = 0; e < k; e++) {
      s += (double)row[e] * (double)xd[e];
      m += fabs((double)row[e] * (double)xd[e]);
    }
    c[i] = (float)s;
    if (mag != NULL) mag[i] = m;
  }
  free(xq);
  free(xd);
  free(row);
}
#endif /* !SPR_FIRMWARE */

#if !SPR_FIRMWARE /* allocates (tests only) */
void spr_bundle_ffn_ref(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const float *x,
                        const float *residual, float *y) {
  const size_t k = 32 * kb;
  int32_t *ix = calloc(n ? n : 1, sizeof *ix);
  float *g = malloc((n ? n : 1) * sizeof *g), *u = malloc((n ? n : 1) * sizeof *u), *row = malloc(k * sizeof *row);
  double *acc = calloc(k, sizeof *acc);
  for (size_t i = 0; i < n; i++) ix[i] = idx != NULL ? idx[i] : (int32_t)i;
  spr_qrows_ref(SPR_DTYPE_Q4_0, k, n, ix, w, ldw, x, g, NULL);
  spr_qrows_ref(SPR_DTYPE_Q4_0, k, n, ix, (const uint8_t *)w + 18 * kb, ldw, x, u, NULL);
  for (size_t i = 0; i < n; i++) {
    const double gd = g[i], h = gd / (1.0 + exp(-gd)) * (double)u[i];
    spr_dequantize_row_get(SPR_DTYPE_Q4_0)((const uint8_t *)w + (size_t)ix[i] * ldw + 36 * kb, row, (int64_t)k);
    for (size_t e = 0; e < k; e++) acc[e] += h * (double)row[e];
  }
  for (size_t e = 0; e < k; e++) y[e] = (float)(acc[e] + (residual != NULL ? (double)residual[e] : 0.0));
  free(ix);
  free(g);
  free(u);
  free(row);
  free(acc);
}
#endif /* !SPR_FIRMWARE */
