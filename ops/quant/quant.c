/* ops/quant/quant.c — reference (de)quantizers, bit-exact with ggml's (see quant.h).
 *
 * Bit-exactness needs the same float operations in the same order as ggml's
 * C code, unfused: GCC in ISO C mode (-std=c11) does not contract a*b+c, and
 * clang is told so below. Float-to-int conversions that ggml writes as casts
 * go through helpers that agree with the cast for every in-range value and
 * stay defined elsewhere (NaN/Inf, degenerate tiny blocks), giving the bytes
 * ggml gives on x86-64. */
#include "ops/quant/quant.h"

#include <math.h>
#include <string.h>

#include "ops/common/fp16.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) {
  return a < b ? a : b;
}
static inline int imax(int a, int b) {
  return a > b ? a : b;
}

/* ggml's nearest_int: round to nearest even through the 1.5 * 2^23 trick
 * (exact for |v| <= 4194303; outside that the same bits as ggml, no UB). */
static inline int nearest_int(float v) {
  const float t = v + 12582912.f;
  int32_t i;
  memcpy(&i, &t, sizeof i);
  return (int)((i & 0x007fffff) - 0x00400000);
}

/* int -> int8_t as GCC/clang define it (modulo 2^8), spelled portably. */
static inline int8_t wrap_i8(int32_t v) {
  const int b = (int)((uint32_t)v & 0xFFu);
  return (int8_t)(b >= 128 ? b - 256 : b);
}

/* (int8_t)f as compiled for x86-64: cvttss2si (NaN and |f| >= 2^31 give
 * INT32_MIN) then the low byte. Equal to the C cast for every in-range f;
 * where ggml's cast is undefined (NaN/Inf, id = 1/d overflowing for blocks
 * of magnitude < ~1e-37) this reproduces what ggml does on x86. */
static inline int8_t cvt_i8_x86(float f) {
  const int32_t i = (f > -2147483648.0f && f < 2147483648.0f) ? (int32_t)f : INT32_MIN;
  return wrap_i8(i);
}

/* ---- Q8_0 ------------------------------------------------------------------------ */

void spr_quantize_row_q8_0_ref(const float *x, void *vy, int64_t k) {
  struct spr_block_q8_0 *y = vy;
  const int64_t nb = k / SPR_QK8_0;
  for (int64_t i = 0; i < nb; i++) {
    const float *xb = x + i * SPR_QK8_0;
    float amax = 0.0f;
    for (int j = 0; j < SPR_QK8_0; j++) {
      const float a = fabsf(xb[j]);
      amax = amax > a ? amax : a; /* ggml's MAX(amax, |v|) */
    }
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = spr_fp16_from_f32(d);
    for (int j = 0; j < SPR_QK8_0; j++) y[i].qs[j] = cvt_i8_x86(roundf(xb[j] * id));
  }
}

void spr_dequantize_row_q8_0(const void *vx, float *y, int64_t k) {
  const struct spr_block_q8_0 *x = vx;
  const int64_t nb = k / SPR_QK8_0;
  for (int64_t i = 0; i < nb; i++) {
    const float d = spr_fp16_to_f32(x[i].d);
    for (int j = 0; j < SPR_QK8_0; j++) y[i * SPR_QK8_0 + j] = x[i].qs[j] * d;
  }
}

/* ---- Q4_0 ------------------------------------------------------------------------ */

void spr_quantize_row_q4_0_ref(const float *x, void *vy, int64_t k) {
  struct spr_block_q4_0 *y = vy;
  const int64_t nb = k / SPR_QK4_0;
  for (int64_t i = 0; i < nb; i++) {
    const float *xb = x + i * SPR_QK4_0;
    float amax = 0.0f, max = 0.0f; /* max: the signed value of largest magnitude (first one wins) */
    for (int j = 0; j < SPR_QK4_0; j++) {
      if (amax < fabsf(xb[j])) {
        amax = fabsf(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = spr_fp16_from_f32(d);
    for (int j = 0; j < SPR_QK4_0 / 2; j++) {
      const int q0 = imin(15, cvt_i8_x86(xb[j] * id + 8.5f));
      const int q1 = imin(15, cvt_i8_x86(xb[j + SPR_QK4_0 / 2] * id + 8.5f));
      /* ggml: uint8_t xi = MIN(...); qs = xi0 | xi1 << 4 (q < 0 only for degenerate blocks) */
      y[i].qs[j] = (uint8_t)((uint8_t)q0 | (uint8_t)((unsigned)(uint8_t)q1 << 4));
    }
  }
}

void spr_dequantize_row_q4_0(const void *vx, float *y, int64_t k) {
  const struct spr_block_q4_0 *x = vx;
  const int64_t nb = k / SPR_QK4_0;
  for (int64_t i = 0; i < nb; i++) {
    const float d = spr_fp16_to_f32(x[i].d);
    for (int j = 0; j < SPR_QK4_0 / 2; j++) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8, x1 = (x[i].qs[j] >> 4) - 8;
      y[i * SPR_QK4_0 + j] = x0 * d;
      y[i * SPR_QK4_0 + j + SPR_QK4_0 / 2] = x1 * d;
    }
  }
}

/* ---- K-quant helpers (ggml's make_qx_quants with rmse_type 1 and no weights,
 * make_qkx2_quants) ----------------------------------------------------------------- */

static float make_qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    const float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (int i = 0; i < n; i++) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    int l = nearest_int(iscale * x[i]);
    l = imax(-nmax, imin(nmax - 1, l));
    L[i] = (int8_t)(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; i++) {
      int l = nearest_int(iscale * x[i]);
      l = imax(-nmax, imin(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; i++) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; i++) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = (uint8_t)imax(0, imin(nmax, l));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? fabsf(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; i++) {
      int l = nearest_int(iscale * (x[i] - min));
      l = imax(0, imin(nmax, l));
      Laux[i] = (uint8_t)l;
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; i++) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; i++) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/* ---- Q4_K ------------------------------------------------------------------------ */

void spr_quantize_row_q4_k_ref(const float *x, void *vy, int64_t k) {
  struct spr_block_q4_k *y = vy;
  const int64_t nb = k / SPR_QK_K;
  uint8_t L[SPR_QK_K], Laux[32];
  float weights[32], mins[SPR_QK_K / 32], scales[SPR_QK_K / 32];
  for (int64_t i = 0; i < nb; i++) {
    float max_scale = 0, max_min = 0; /* the min is subtracted, so scales are positive */
    for (int j = 0; j < SPR_QK_K / 32; j++) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = sqrtf(sum_x2 / 32);
      for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
      scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, false);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < SPR_QK_K / 32; j++) {
      uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]); /* ggml: uint8_t = int (mod 256) */
      uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
      ls = ls < 63 ? ls : 63;
      lm = lm < 63 ? lm : 63;
      if (j < 4) {
        y[i].scales[j] = ls;
        y[i].scales[j + 4] = lm;
      } else {
        y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
        y[i].scales[j - 0] |= (uint8_t)((lm >> 4) << 6);
      }
    }
    y[i].d = spr_fp16_from_f32(max_scale / 63.f);
    y[i].dmin = spr_fp16_from_f32(max_min / 63.f);
    for (int j = 0; j < SPR_QK_K / 32; j++) {
      uint8_t sc, m;
      spr_q4_k_scale_min(j, y[i].scales, &sc, &m);
      const float d = spr_fp16_to_f32(y[i].d) * sc;
      if (d == 0.0f) continue; /* keeps make_qkx2_quants's L for this sub-block, as ggml */
      const float dm = spr_fp16_to_f32(y[i].dmin) * m;
      for (int ii = 0; ii < 32; ii++) {
        const int l = nearest_int((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = (uint8_t)imax(0, imin(15, l));
      }
    }
    uint8_t *q = y[i].qs;
    for (int j = 0; j < SPR_QK_K; j += 64) {
      for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
    x += SPR_QK_K;
  }
}

void spr_dequantize_row_q4_k(const void *vx, float *y, int64_t k) {
  const struct spr_block_q4_k *x = vx;
  const int64_t nb = k / SPR_QK_K;
  for (int64_t i = 0; i < nb; i++) {
    const uint8_t *q = x[i].qs;
    const float d = spr_fp16_to_f32(x[i].d), min = spr_fp16_to_f32(x[i].dmin);
    int is = 0;
    for (int j = 0; j < SPR_QK_K; j += 64) {
      uint8_t sc, m;
      spr_q4_k_scale_min(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      spr_q4_k_scale_min(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

/* ---- Q6_K ------------------------------------------------------------------------ */

void spr_quantize_row_q6_k_ref(const float *x, void *vy, int64_t k) {
  struct spr_block_q6_k *y = vy;
  const int64_t nb = k / SPR_QK_K;
  int8_t L[SPR_QK_K];
  float scales[SPR_QK_K / 16];
  for (int64_t i = 0; i < nb; i++) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < SPR_QK_K / 16; ib++) {
      const float scale = make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = fabsf(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
      memset(&y[i], 0, sizeof y[i]);
      x += SPR_QK_K;
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = spr_fp16_from_f32(1 / iscale);
    for (int ib = 0; ib < SPR_QK_K / 16; ib++) {
      /* in [-128, 127] for finite input; ggml's implicit int -> int8 conversion */
      y[i].scales[ib] = wrap_i8(imin(127, nearest_int(iscale * scales[ib])));
    }
    for (int j = 0; j < SPR_QK_K / 16; j++) {
      const float d = spr_fp16_to_f32(y[i].d) * y[i].scales[j];
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ii++) {
        int l = nearest_int(x[16 * j + ii] / d);
        l = imax(-32, imin(31, l));
        L[16 * j + ii] = (int8_t)(l + 32);
      }
    }
    uint8_t *ql = y[i].ql, *qh = y[i].qh;
    for (int j = 0; j < SPR_QK_K; j += 128) {
      for (int l = 0; l < 32; l++) {
        const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
        ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
        qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                          ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
    x += SPR_QK_K;
  }
}

void spr_dequantize_row_q6_k(const void *vx, float *y, int64_t k) {
  const struct spr_block_q6_k *x = vx;
  const int64_t nb = k / SPR_QK_K;
  for (int64_t i = 0; i < nb; i++) {
    const float d = spr_fp16_to_f32(x[i].d);
    const uint8_t *ql = x[i].ql, *qh = x[i].qh;
    const int8_t *sc = x[i].scales;
    for (int n = 0; n < SPR_QK_K; n += 128) {
      for (int l = 0; l < 32; l++) {
        const int is = l / 16;
        const int q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

/* ---- Q8_K ------------------------------------------------------------------------ */

void spr_quantize_row_q8_k_ref(const float *x, void *vy, int64_t k) {
  struct spr_block_q8_k *y = vy;
  const int64_t nb = k / SPR_QK_K;
  for (int64_t i = 0; i < nb; i++) {
    float max = 0, amax = 0;
    for (int j = 0; j < SPR_QK_K; j++) {
      const float ax = fabsf(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      /* ggml leaves bsums unwritten here; they are zero like the values */
      memset(&y[i], 0, sizeof y[i]);
      x += SPR_QK_K;
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < SPR_QK_K; j++) {
      const int v = nearest_int(iscale * x[j]);
      y[i].qs[j] = wrap_i8(imin(127, v)); /* >= -127 for finite input */
    }
    for (int j = 0; j < SPR_QK_K / 16; j++) {
      int sum = 0;
      for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = (int16_t)sum;
    }
    y[i].d = 1 / iscale;
    x += SPR_QK_K;
  }
}

void spr_dequantize_row_q8_k(const void *vx, float *y, int64_t k) {
  const struct spr_block_q8_k *x = vx;
  const int64_t nb = k / SPR_QK_K;
  for (int64_t i = 0; i < nb; i++)
    for (int j = 0; j < SPR_QK_K; j++) y[i * SPR_QK_K + j] = x[i].d * x[i].qs[j];
}

/* ---- plain types and dispatch -------------------------------------------------- */

static void quantize_row_f32(const float *x, void *y, int64_t k) {
  memcpy(y, x, (size_t)k * sizeof(float));
}

static void quantize_row_f16(const float *x, void *vy, int64_t k) {
  uint16_t *y = vy;
  for (int64_t i = 0; i < k; i++) y[i] = spr_fp16_from_f32(x[i]);
}

static void dequantize_row_f32(const void *x, float *y, int64_t k) {
  memcpy(y, x, (size_t)k * sizeof(float));
}

static void dequantize_row_f16(const void *vx, float *y, int64_t k) {
  const uint16_t *x = vx;
  for (int64_t i = 0; i < k; i++) y[i] = spr_fp16_to_f32(x[i]);
}

spr_quantize_row_fn spr_quantize_row_get(enum spr_dtype t) {
  switch (t) {
    case SPR_DTYPE_F32:
      return quantize_row_f32;
    case SPR_DTYPE_F16:
      return quantize_row_f16;
    case SPR_DTYPE_Q8_0:
      return spr_quantize_row_q8_0_ref;
    case SPR_DTYPE_Q4_0:
      return spr_quantize_row_q4_0_ref;
    case SPR_DTYPE_Q4_K:
      return spr_quantize_row_q4_k_ref;
    case SPR_DTYPE_Q6_K:
      return spr_quantize_row_q6_k_ref;
    default:
      return NULL;
  }
}

spr_dequantize_row_fn spr_dequantize_row_get(enum spr_dtype t) {
  switch (t) {
    case SPR_DTYPE_F32:
      return dequantize_row_f32;
    case SPR_DTYPE_F16:
      return dequantize_row_f16;
    case SPR_DTYPE_Q8_0:
      return spr_dequantize_row_q8_0;
    case SPR_DTYPE_Q4_0:
      return spr_dequantize_row_q4_0;
    case SPR_DTYPE_Q4_K:
      return spr_dequantize_row_q4_k;
    case SPR_DTYPE_Q6_K:
      return spr_dequantize_row_q6_k;
    default:
      return NULL;
  }
}

enum spr_status spr_dequantize_row(enum spr_dtype t, const void *x, float *y, int64_t k) {
  const spr_dequantize_row_fn fn = spr_dequantize_row_get(t);
  if (fn == NULL) return SPR_STATUS_UNSUPPORTED;
  const size_t be = spr_dtype_block_elems(t);
  if (k <= 0 || (uint64_t)k % be != 0) return SPR_STATUS_INVALID_ARGUMENT;
  fn(x, y, k);
  return SPR_STATUS_OK;
}

size_t spr_quant_row_bytes(enum spr_dtype t, int64_t k) {
  const size_t be = spr_dtype_block_elems(t), bb = spr_dtype_block_bytes(t);
  if (be == 0 || k <= 0 || (uint64_t)k % be != 0) return 0;
  return (size_t)k / be * bb;
}
