/* ops/coreffn/axpyq_scalar.c — the portable Q4_0 axpy over neurons with
 * int8 neuron coefficients (the rule is in coreffn.h, spr_axpyq): per
 * output block and group of 32 neurons, a[i] * d_i is quantized to int8 with
 * one shared scale, the codes are summed in int32 exactly, and the group
 * adds S * sum to y with one fused multiply-add. Also the packed down layout
 * of the compact decode (coreffn.h): its packer and the rule's twin over it. */
#include <math.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"

/* Where the rows are: rows of Q4_0 blocks (w, ldw, idx) or the packed down
 * layout (quads != NULL). Row i's scale and code byte j of block b. */
struct rows_src {
  const uint8_t *w;
  size_t ldw;
  const int32_t *idx;
  const uint8_t *quads;
  size_t kb;
};

static inline float src_scale(const struct rows_src *r, size_t i, size_t b) {
  if (r->quads != NULL)
    return spr_fp16_load(r->quads + i / 4 * spr_down_pack_quad_bytes(r->kb) + i % 4 * 2 * r->kb + 2 * b);
  return spr_fp16_load(r->w + (r->idx != NULL ? (size_t)r->idx[i] : i) * r->ldw + 18 * b);
}

static inline uint8_t src_code(const struct rows_src *r, size_t i, size_t b, size_t j) {
  if (r->quads != NULL) return r->quads[i / 4 * spr_down_pack_quad_bytes(r->kb) + 8 * r->kb + 64 * b + 4 * j + i % 4];
  return r->w[(r->idx != NULL ? (size_t)r->idx[i] : i) * r->ldw + 18 * b + 2 + j];
}

/* y += the group sums (each element's fma chain continues from y). */
static void acc_rule(size_t n, const float *a, const struct rows_src *r, size_t nb, float *y) {
  for (size_t b = 0; b < nb; b++) {
    float *yb = y + 32 * b;
    for (size_t g0 = 0; g0 < n; g0 += SPR_AXPYQ_GROUP) {
      const size_t gn = n - g0 < SPR_AXPYQ_GROUP ? n - g0 : SPR_AXPYQ_GROUP;
      float p[SPR_AXPYQ_GROUP], m = 0.0f;
      for (size_t i = 0; i < gn; i++) {
        p[i] = a[g0 + i] * src_scale(r, g0 + i, b);
        m = fmaxf(m, fabsf(p[i]));
      }
      if (!(m > 0.0f)) continue;
      const float s = m / 127.0f, inv = 127.0f / m;
      int32_t acc[32] = {0}, sc = 0;
      for (size_t i = 0; i < gn; i++) {
        const int32_t c = (int32_t)nearbyintf(p[i] * inv);
        sc += c;
        for (size_t j = 0; j < 16; j++) {
          const uint8_t q = src_code(r, g0 + i, b, j);
          acc[j] += c * (q & 0xF);
          acc[j + 16] += c * (q >> 4);
        }
      }
      for (int j = 0; j < 32; j++) yb[j] = fmaf(s, (float)(acc[j] - 8 * sc), yb[j]);
    }
  }
}

void spr_q4_0_axpyq_acc_ukernel_32__scalar(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                           size_t ne, float *y, const int32_t *pf, size_t n_pf) {
  (void)pf; /* no prefetch */
  (void)n_pf;
  const struct rows_src r = {w, ldw, idx, NULL, ne / 32};
  acc_rule(n, a, &r, ne / 32, y);
}

/* The same over the packed down layout: the same steps in the same order. */
void spr_q4_0_down_packed_acc__scalar(size_t n, const float *a, const void *quads, size_t kb, float *y, const void *pf,
                                      size_t pf_bytes) {
  (void)pf; /* no prefetch */
  (void)pf_bytes;
  const struct rows_src r = {NULL, 0, NULL, quads, kb};
  acc_rule(n, a, &r, kb, y);
}

void spr_down_pack_quad(const uint8_t *const rows[4], size_t kb, uint8_t *quad) {
  static const uint8_t zero[18] = {0};
  const uint8_t *src[4];
  size_t step[4]; /* a NULL row reads the zero block at every b */
  for (size_t r = 0; r < 4; r++) {
    src[r] = rows[r] != NULL ? rows[r] : zero;
    step[r] = rows[r] != NULL ? 18 : 0;
    for (size_t b = 0; b < kb; b++) memcpy(quad + 2 * kb * r + 2 * b, src[r] + step[r] * b, 2);
  }
  /* the code bytes: a 4 x 16 byte transpose per block, one 32-bit word per j
   * (built in a word, stored as its 4 bytes: the same bytes on any byte order;
   * 4 stores per word instead of 4 scattered ones: the copy of the compact
   * decode spent most of its time here) */
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *c0 = src[0] + step[0] * b + 2, *c1 = src[1] + step[1] * b + 2, *c2 = src[2] + step[2] * b + 2,
                  *c3 = src[3] + step[3] * b + 2;
    uint8_t *o = quad + 8 * kb + 64 * b;
    for (size_t j = 0; j < 16; j++) {
      o[4 * j] = c0[j];
      o[4 * j + 1] = c1[j];
      o[4 * j + 2] = c2[j];
      o[4 * j + 3] = c3[j];
    }
  }
}

/* y = the group sums: the accumulating twin from y = 0 (the same fma chains). */
void spr_q4_0_axpyq_ukernel_32__scalar(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                       size_t ne, float *y) {
  memset(y, 0, ne * sizeof(float));
  spr_q4_0_axpyq_acc_ukernel_32__scalar(n, idx, a, w, ldw, ne, y, NULL, 0);
}
