/* ops/backends/cuda/cuda_ops.cu — the CUDA kernels and the (op, dtype) table.
 *
 * Correctness first: every kernel is a functor whose operator()(i) computes
 * output element (or row) i with plain loops, launched over a grid-stride
 * loop (one thread per index). The functors are __host__ __device__ so the
 * host emulation (SPR_CUDA_EMULATE) runs the very same code in a loop.
 *
 * Numerics mirror the CPU path where that matters for validation:
 *   - quantized GEMM quantizes each activation row to Q8_0 (Q8_0/Q4_0
 *     weights) or Q8_K (Q4_K/Q6_K) exactly as ggml's reference quantizer,
 *     integer block dot products, and the per-block f32 scaling of
 *     ops/gemm/qgemm_scalar.c;
 *   - RoPE uses ggml's float angle recurrence (spr_rope_table);
 *   - the f16 KV cache rounds to nearest even (ops/common/fp16.h);
 *   - reductions over rows (norms, softmax, mean) accumulate in double.
 * What differs from the CPU: summation order of the f32 dot products and
 * the device's expf/erff/cosf/sinf (a few ulp). The build passes
 * --fmad=false, so no multiply-add is contracted behind the source's back.
 *
 * The core-neuron FFN ops (GEMM_ROWS, CORE_SELECT, FFN_DOWN) read the
 * step's mode and core list on the device. A graph with an op the table
 * lacks fails at attach with SPR_STATUS_UNSUPPORTED naming the node. */
#include <math.h>
#include <string.h>

#include "ops/backends/cuda/cuda_impl.h"

#define HD __host__ __device__ __forceinline__

namespace {

/* ---- scalar helpers ------------------------------------------------------------ */

HD uint32_t f2u(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
#endif
}

HD float u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
#endif
}

/* fp16 bits -> f32 and f32 -> fp16 (nearest even), as ops/common/fp16.h. */
HD float h2f(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (e == 0) {
    const float v = (float)man * u2f(0x33800000u);
    return sign ? -v : v;
  }
  if (e == 31) return u2f(sign | 0x7f800000u | (man << 13));
  return u2f(sign | ((e + 112u) << 23) | (man << 13));
}

HD uint16_t f2h(float f) {
  const uint32_t x = f2u(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (ax < 0x38800000u) {
    const float r = u2f(ax) + 0.5f;
    return (uint16_t)(sign | (f2u(r) - 0x3f000000u));
  }
  const uint32_t odd = (ax >> 13) & 1u;
  const uint32_t v = ax + 0xc8000fffu + odd;
  return (uint16_t)(sign | (v >> 13));
}

/* Little-endian fp16 at any even address. */
HD float half_at(const uint8_t *p) {
  return h2f((uint16_t)(p[0] | (p[1] << 8)));
}

/* ggml's nearest_int (the 1.5 * 2^23 trick), int8 wrap, x86 float->int8. */
HD int nearest_int(float v) {
  const float t = v + 12582912.f;
  const int32_t i = (int32_t)f2u(t);
  return (int)((i & 0x007fffff) - 0x00400000);
}
HD int8_t wrap_i8(int32_t v) {
  const int b = (int)((uint32_t)v & 0xFFu);
  return (int8_t)(b >= 128 ? b - 256 : b);
}
HD int8_t cvt_i8_x86(float f) {
  const int32_t i = (f > -2147483648.0f && f < 2147483648.0f) ? (int32_t)f : INT32_MIN;
  return wrap_i8(i);
}

HD void q4_k_scale_min(int j, const uint8_t *s, int *sc, int *m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

HD uint32_t kv_slot(uint32_t p, uint32_t window, uint32_t sinks, uint32_t ring) {
  if (window == 0 || p < sinks) return p;
  return sinks + (p - sinks) % ring;
}

HD float act_apply(int act, float x) {
  switch (act) {
    case SPR_ACT_GELU:
      return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case SPR_ACT_SILU:
      return x / (1.0f + expf(-x));
    case SPR_ACT_RELU:
      return x > 0.0f ? x : 0.0f;
    default:
      return x;
  }
}

/* Element c of a row of `type` (dequantized as ops/quant/quant.c). */
HD float row_elem(const uint8_t *row, int type, int64_t c) {
  switch (type) {
    case SPR_DTYPE_F32:
      return ((const float *)row)[c];
    case SPR_DTYPE_F16:
      return h2f(((const uint16_t *)row)[c]);
    case SPR_DTYPE_Q8_0: {
      const uint8_t *b = row + (c / 32) * 34;
      return (float)((const int8_t *)(b + 2))[c % 32] * half_at(b);
    }
    case SPR_DTYPE_Q4_0: {
      const uint8_t *b = row + (c / 32) * 18;
      const int j = (int)(c % 32);
      const int q = j < 16 ? (b[2 + j] & 0xF) - 8 : (b[2 + j - 16] >> 4) - 8;
      return (float)q * half_at(b);
    }
    case SPR_DTYPE_Q4_K: {
      const uint8_t *b = row + (c / 256) * 144;
      const int v = (int)(c % 256), c64 = v / 64, l = v % 64;
      int sc, m;
      q4_k_scale_min(v / 32, b + 4, &sc, &m);
      const int q = l < 32 ? (b[16 + 32 * c64 + l] & 0xF) : (b[16 + 32 * c64 + l - 32] >> 4);
      const float d1 = half_at(b) * (float)sc, m1 = half_at(b + 2) * (float)m;
      return d1 * (float)q - m1;
    }
    case SPR_DTYPE_Q6_K: {
      const uint8_t *b = row + (c / 256) * 210;
      const int v = (int)(c % 256), h = v / 128, r = v % 128, l = r % 32, part = r / 32;
      const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
      const int8_t *sc = (const int8_t *)(b + 192);
      int q;
      switch (part) {
        case 0:
          q = (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4);
          break;
        case 1:
          q = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
          break;
        case 2:
          q = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
          break;
        default:
          q = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
          break;
      }
      return half_at(b + 208) * (float)sc[v / 16] * (float)(q - 32);
    }
    default:
      return 0.0f;
  }
}

/* ---- launch ------------------------------------------------------------------------ */

template <class F>
__global__ void k_each(F f, int64_t n) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

/* Runs f(i) for i in [0, n): on the device, or in a host loop (emulation). */
template <class F>
cudaError_t launch(const spr_cuda_ctx &c, int64_t n, const F &f) {
  if (n <= 0) return cudaSuccess;
  if (c.emulate) {
    for (int64_t i = 0; i < n; i++) f(i);
    return cudaSuccess;
  }
  const int threads = 128;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535 * 16) blocks = 65535 * 16;
  k_each<F><<<(unsigned)blocks, threads, 0, c.stream>>>(f, n);
  return cudaGetLastError();
}

template <class T>
T *dp(void *const *dptr, int32_t id) {
  return id >= 0 ? (T *)dptr[id] : nullptr;
}

size_t align256(size_t x) {
  return (x + 255) & ~(size_t)255;
}

/* ---- GEMM: f32 / f16 weights ----------------------------------------------------- */

struct GemmF {
  const float *x;
  const uint8_t *w;
  int wtype;
  const float *bias, *res;
  float *y;
  int64_t n, k;
  int act;
  HD void operator()(int64_t i) const {
    const int64_t m = i / n, j = i % n;
    const float *xr = x + m * k;
    float acc = 0.0f;
    if (wtype == SPR_DTYPE_F16) {
      const uint16_t *wr = (const uint16_t *)w + j * k;
      for (int64_t t = 0; t < k; t++) acc += xr[t] * h2f(wr[t]);
    } else {
      const float *wr = (const float *)w + j * k;
      for (int64_t t = 0; t < k; t++) acc += xr[t] * wr[t];
    }
    float v = act_apply(act, acc + (bias ? bias[j] : 0.0f));
    if (res) v += res[i];
    y[i] = v;
  }
};

/* ---- GEMM: quantized weights --------------------------------------------------- */

/* Activations quantized per block into scratch: qs [M][kb][QK] i8, d [M][kb]
 * f32, and for Q8_K bsums [M][kb][16] i16. */
struct XQ {
  int8_t *qs;
  float *d;
  int16_t *bsums;
};

bool is_k_quant(int t) {
  return t == SPR_DTYPE_Q4_K || t == SPR_DTYPE_Q6_K;
}

size_t xq_bytes(int wtype, int64_t m, int64_t k) {
  const int qk = is_k_quant(wtype) ? 256 : 32;
  const size_t nb = (size_t)m * (size_t)(k / qk);
  size_t b = align256(nb * qk) + align256(nb * sizeof(float));
  if (is_k_quant(wtype)) b += align256(nb * 16 * sizeof(int16_t));
  return b;
}

XQ xq_layout(uint8_t *base, int wtype, int64_t m, int64_t k) {
  const int qk = is_k_quant(wtype) ? 256 : 32;
  const size_t nb = (size_t)m * (size_t)(k / qk);
  XQ q;
  q.qs = (int8_t *)base;
  q.d = (float *)(base + align256(nb * qk));
  q.bsums = is_k_quant(wtype) ? (int16_t *)(base + align256(nb * qk) + align256(nb * sizeof(float))) : nullptr;
  return q;
}

/* One Q8_0 block per index, as spr_quantize_row_q8_0_ref (d stored as the f32
 * value of its fp16 rounding, as ggml's vec_dot uses it). */
struct QuantX8_0 {
  const float *x;
  XQ q;
  int64_t k, kb;
  HD void operator()(int64_t i) const {
    const int64_t m = i / kb, b = i % kb;
    const float *xb = x + m * k + b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
      const float a = fabsf(xb[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int8_t *qs = q.qs + i * 32;
    for (int j = 0; j < 32; j++) qs[j] = cvt_i8_x86(roundf(xb[j] * id));
    q.d[i] = h2f(f2h(d));
  }
};

/* One Q8_K block per index, as spr_quantize_row_q8_k_ref. */
struct QuantX8_K {
  const float *x;
  XQ q;
  int64_t k, kb;
  HD void operator()(int64_t i) const {
    const int64_t m = i / kb, b = i % kb;
    const float *xb = x + m * k + b * 256;
    int8_t *qs = q.qs + i * 256;
    int16_t *bs = q.bsums + i * 16;
    float mx = 0, amax = 0;
    for (int j = 0; j < 256; j++) {
      const float ax = fabsf(xb[j]);
      if (ax > amax) {
        amax = ax;
        mx = xb[j];
      }
    }
    if (amax == 0.0f) {
      for (int j = 0; j < 256; j++) qs[j] = 0;
      for (int g = 0; g < 16; g++) bs[g] = 0;
      q.d[i] = 0.0f;
      return;
    }
    const float iscale = -127.f / mx;
    for (int j = 0; j < 256; j++) {
      const int v = nearest_int(iscale * xb[j]);
      qs[j] = wrap_i8(v < 127 ? v : 127);
    }
    for (int g = 0; g < 16; g++) {
      int s = 0;
      for (int t = 0; t < 16; t++) s += qs[g * 16 + t];
      bs[g] = (int16_t)s;
    }
    q.d[i] = 1 / iscale;
  }
};

/* x row m (quantized in q) . weight row wr: block dot products as
 * ops/gemm/qgemm_scalar.c. */
HD float qdot(const uint8_t *wr, int wtype, const XQ &q, int64_t m, int64_t kb) {
  const float *dx = q.d + m * kb;
  float sum = 0.0f;
  switch (wtype) {
    case SPR_DTYPE_Q8_0: {
      const int8_t *qx = q.qs + m * kb * 32;
      for (int64_t b = 0; b < kb; b++) {
        const uint8_t *blk = wr + b * 34;
        const int8_t *qw = (const int8_t *)(blk + 2), *q8 = qx + b * 32;
        int32_t isum = 0;
        for (int t = 0; t < 32; t++) isum += qw[t] * q8[t];
        sum += (float)isum * (half_at(blk) * dx[b]);
      }
      break;
    }
    case SPR_DTYPE_Q4_0: {
      const int8_t *qx = q.qs + m * kb * 32;
      for (int64_t b = 0; b < kb; b++) {
        const uint8_t *blk = wr + b * 18, *qw = blk + 2;
        const int8_t *q8 = qx + b * 32;
        int32_t isum = 0;
        for (int t = 0; t < 16; t++) isum += ((qw[t] & 0xF) - 8) * q8[t] + ((qw[t] >> 4) - 8) * q8[t + 16];
        sum += (float)isum * (half_at(blk) * dx[b]);
      }
      break;
    }
    case SPR_DTYPE_Q4_K: {
      const int8_t *qx = q.qs + m * kb * 256;
      const int16_t *bsums = q.bsums + m * kb * 16;
      for (int64_t b = 0; b < kb; b++) {
        const uint8_t *blk = wr + b * 144, *scales = blk + 4, *qs = blk + 16;
        const int8_t *q8 = qx + b * 256;
        const int16_t *bs = bsums + b * 16;
        int32_t isum = 0, msum = 0;
        for (int c = 0; c < 4; c++) {
          int sc0, m0, sc1, m1;
          q4_k_scale_min(2 * c, scales, &sc0, &m0);
          q4_k_scale_min(2 * c + 1, scales, &sc1, &m1);
          int32_t d0 = 0, d1 = 0;
          for (int l = 0; l < 32; l++) {
            d0 += (qs[32 * c + l] & 0xF) * q8[64 * c + l];
            d1 += (qs[32 * c + l] >> 4) * q8[64 * c + 32 + l];
          }
          isum += sc0 * d0 + sc1 * d1;
          msum += m0 * (bs[4 * c] + bs[4 * c + 1]) + m1 * (bs[4 * c + 2] + bs[4 * c + 3]);
        }
        sum += (half_at(blk) * dx[b]) * (float)isum - (half_at(blk + 2) * dx[b]) * (float)msum;
      }
      break;
    }
    case SPR_DTYPE_Q6_K: {
      const int8_t *qx = q.qs + m * kb * 256;
      for (int64_t b = 0; b < kb; b++) {
        const uint8_t *blk = wr + b * 210, *ql = blk, *qh = blk + 128;
        const int8_t *sc = (const int8_t *)(blk + 192);
        const int8_t *q8 = qx + b * 256;
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
          int32_t g[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          for (int l = 0; l < 32; l++) {
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            const int is = l / 16;
            g[0 + is] += q1 * q8[l];
            g[2 + is] += q2 * q8[l + 32];
            g[4 + is] += q3 * q8[l + 64];
            g[6 + is] += q4 * q8[l + 96];
          }
          for (int r = 0; r < 8; r++) isum += sc[r] * g[r];
          ql += 64;
          qh += 32;
          sc += 8;
          q8 += 128;
        }
        sum += (half_at(blk + 208) * dx[b]) * (float)isum;
      }
      break;
    }
    default:
      break;
  }
  return sum;
}

/* Output (m, j) of a quantized GEMM. */
struct GemmQ {
  const uint8_t *w;
  size_t row_bytes;
  XQ q;
  int wtype;
  const float *bias, *res;
  float *y;
  int64_t n, kb;
  int act;
  HD void operator()(int64_t i) const {
    const int64_t m = i / n, j = i % n;
    const float sum = qdot(w + (size_t)j * row_bytes, wtype, q, m, kb);
    float v = act_apply(act, sum + (bias ? bias[j] : 0.0f));
    if (res) v += res[i];
    y[i] = v;
  }
};

/* GEMM_MULTI output (m, j) over the activations quantized once:
 *   glu = 0: column j of [x.W1^T | x.W2^T | x.W3^T];
 *   glu = 1: act(x.W1[j]) * (x.W2[j]) (act on the first product only). */
struct GemmMulti {
  const uint8_t *w1, *w2, *w3;
  int64_t n1, n2;
  size_t row_bytes;
  XQ q;
  int wtype;
  float *y;
  int64_t n, kb;
  int act, glu;
  HD void operator()(int64_t i) const {
    const int64_t m = i / n, j = i % n;
    if (glu) {
      const float g = qdot(w1 + (size_t)j * row_bytes, wtype, q, m, kb);
      const float u = qdot(w2 + (size_t)j * row_bytes, wtype, q, m, kb);
      y[i] = act_apply(act, g) * u;
      return;
    }
    const uint8_t *wr = j < n1        ? w1 + (size_t)j * row_bytes
                        : j < n1 + n2 ? w2 + (size_t)(j - n1) * row_bytes
                                      : w3 + (size_t)(j - n1 - n2) * row_bytes;
    y[i] = qdot(wr, wtype, q, m, kb);
  }
};

size_t row_bytes_of(int type, int64_t k) {
  switch (type) {
    case SPR_DTYPE_F32:
      return (size_t)k * 4;
    case SPR_DTYPE_F16:
      return (size_t)k * 2;
    case SPR_DTYPE_Q8_0:
      return (size_t)(k / 32) * 34;
    case SPR_DTYPE_Q4_0:
      return (size_t)(k / 32) * 18;
    case SPR_DTYPE_Q4_K:
      return (size_t)(k / 256) * 144;
    case SPR_DTYPE_Q6_K:
      return (size_t)(k / 256) * 210;
    default:
      return 0;
  }
}

/* Quantizes the m activation rows of x (k each) into the scratch for weights
 * of type wt: Q8_K blocks for the K-quants, else Q8_0. */
cudaError_t quantize_x(const spr_cuda_ctx &c, const float *x, int wt, int64_t m, int64_t k, XQ *q) {
  const int64_t kb = k / (is_k_quant(wt) ? 256 : 32);
  if (c.scratch_bytes < xq_bytes(wt, m, k)) return cudaErrorInvalidValue;
  *q = xq_layout(c.scratch, wt, m, k);
  if (is_k_quant(wt)) {
    QuantX8_K f{x, *q, k, kb};
    return launch(c, m * kb, f);
  }
  QuantX8_0 f{x, *q, k, kb};
  return launch(c, m * kb, f);
}

cudaError_t run_gemm(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                     const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]], *w = &ts[n->src[1]];
  const int64_t k = x->ne[0], m = spr_tensor_rows(x), nn = w->ne[1];
  const float *bias = n->n_src > 2 ? dp<const float>(dptr, n->src[2]) : nullptr;
  const float *res = n->n_src > 3 ? dp<const float>(dptr, n->src[3]) : nullptr;
  float *y = dp<float>(dptr, n->dst);
  const int wt = (int)w->type;
  if (wt == SPR_DTYPE_F32 || wt == SPR_DTYPE_F16) {
    GemmF f{dp<const float>(dptr, n->src[0]),
            dp<const uint8_t>(dptr, n->src[1]),
            wt,
            bias,
            res,
            y,
            nn,
            k,
            (int)n->p.gemm.act};
    return launch(c, m * nn, f);
  }
  const int64_t kb = k / (is_k_quant(wt) ? 256 : 32);
  XQ q;
  const cudaError_t e = quantize_x(c, dp<const float>(dptr, n->src[0]), wt, m, k, &q);
  if (e != cudaSuccess) return e;
  GemmQ g{dp<const uint8_t>(dptr, n->src[1]), row_bytes_of(wt, k), q, wt, bias, res, y, nn, kb, (int)n->p.gemm.act};
  return launch(c, m * nn, g);
}

cudaError_t run_gemm_multi(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                           const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]], *w1 = &ts[n->src[1]], *w2 = &ts[n->src[2]];
  const bool has3 = n->n_src > 3 && n->src[3] >= 0;
  const int64_t k = x->ne[0], m = spr_tensor_rows(x);
  const int wt = (int)w1->type;
  const int glu = n->p.gemm_multi.glu;
  const int64_t n1 = w1->ne[1], n2 = w2->ne[1], n3 = has3 ? ts[n->src[3]].ne[1] : 0;
  const int64_t nn = glu ? n1 : n1 + n2 + n3;
  XQ q;
  const cudaError_t e = quantize_x(c, dp<const float>(dptr, n->src[0]), wt, m, k, &q);
  if (e != cudaSuccess) return e;
  GemmMulti g{dp<const uint8_t>(dptr, n->src[1]),
              dp<const uint8_t>(dptr, n->src[2]),
              has3 ? dp<const uint8_t>(dptr, n->src[3]) : nullptr,
              n1,
              n2,
              row_bytes_of(wt, k),
              q,
              wt,
              dp<float>(dptr, n->dst),
              nn,
              k / (is_k_quant(wt) ? 256 : 32),
              (int)n->p.gemm_multi.act,
              glu};
  return launch(c, m * nn, g);
}

/* ---- norms, softmax, activations, eltwise ------------------------------------------ */

struct LayerNorm {
  const float *x, *g, *b;
  float *y;
  int64_t d;
  float eps;
  HD void operator()(int64_t r) const {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) s += xr[i];
    const double mean = s / (double)d;
    double v = 0.0;
    for (int64_t i = 0; i < d; i++) v += ((double)xr[i] - mean) * ((double)xr[i] - mean);
    const double inv = 1.0 / sqrt(v / (double)d + (double)eps);
    for (int64_t i = 0; i < d; i++) {
      double t = ((double)xr[i] - mean) * inv * (double)g[i];
      if (b) t += (double)b[i];
      yr[i] = (float)t;
    }
  }
};

struct RmsNorm {
  const float *x, *g;
  float *y;
  int64_t d;
  float eps;
  HD void operator()(int64_t r) const {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) s += (double)xr[i] * (double)xr[i];
    const double inv = 1.0 / sqrt(s / (double)d + (double)eps);
    for (int64_t i = 0; i < d; i++) yr[i] = (float)((double)xr[i] * inv * (double)g[i]);
  }
};

struct Softmax {
  const float *x;
  float *y;
  int64_t d;
  float scale;
  HD void operator()(int64_t r) const {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    double mx = -INFINITY;
    for (int64_t i = 0; i < d; i++) mx = fmax(mx, (double)xr[i] * (double)scale);
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) s += exp((double)xr[i] * (double)scale - mx);
    for (int64_t i = 0; i < d; i++) yr[i] = (float)(exp((double)xr[i] * (double)scale - mx) / s);
  }
};

struct Unary {
  const float *x;
  float *y;
  int act;
  float s; /* SCALE */
  HD void operator()(int64_t i) const { y[i] = act < 0 ? x[i] * s : act_apply(act, x[i]); }
};

struct Binary {
  const float *a, *b;
  float *y;
  int64_t d;
  bool bcast, mul;
  HD void operator()(int64_t i) const {
    const float bv = b[bcast ? i % d : i];
    y[i] = mul ? a[i] * bv : a[i] + bv;
  }
};

struct Concat {
  const float *a, *b;
  float *y;
  int64_t na; /* elements of a */
  HD void operator()(int64_t i) const { y[i] = i < na ? a[i] : b[i - na]; }
};

struct MeanRows {
  const float *x;
  float *y;
  int64_t d, rows;
  HD void operator()(int64_t c) const {
    double s = 0.0;
    for (int64_t r = 0; r < rows; r++) s += x[r * d + c];
    y[c] = (float)(s / (double)rows);
  }
};

struct Copy {
  const float *x;
  float *y;
  HD void operator()(int64_t i) const { y[i] = x[i]; }
};

cudaError_t run_layernorm(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                          const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]];
  LayerNorm f{dp<const float>(dptr, n->src[0]),
              dp<const float>(dptr, n->src[1]),
              n->n_src > 2 ? dp<const float>(dptr, n->src[2]) : nullptr,
              dp<float>(dptr, n->dst),
              x->ne[0],
              n->p.norm.eps};
  return launch(c, spr_tensor_rows(x), f);
}

cudaError_t run_rmsnorm(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                        const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]];
  RmsNorm f{dp<const float>(dptr, n->src[0]), dp<const float>(dptr, n->src[1]), dp<float>(dptr, n->dst), x->ne[0],
            n->p.norm.eps};
  return launch(c, spr_tensor_rows(x), f);
}

cudaError_t run_softmax(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                        const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]];
  Softmax f{dp<const float>(dptr, n->src[0]), dp<float>(dptr, n->dst), x->ne[0], n->p.softmax.scale};
  return launch(c, spr_tensor_rows(x), f);
}

cudaError_t run_unary(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n, int act,
                      float s) {
  Unary f{dp<const float>(dptr, n->src[0]), dp<float>(dptr, n->dst), act, s};
  return launch(c, spr_tensor_nelem(&ts[n->src[0]]), f);
}
cudaError_t run_gelu(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                     const spr_run_state &) {
  return run_unary(c, ts, dptr, n, SPR_ACT_GELU, 0.0f);
}
cudaError_t run_silu(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                     const spr_run_state &) {
  return run_unary(c, ts, dptr, n, SPR_ACT_SILU, 0.0f);
}
cudaError_t run_scale(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                      const spr_run_state &) {
  return run_unary(c, ts, dptr, n, -1, n->p.scale.s);
}

cudaError_t run_binary(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n, bool mul) {
  const spr_tensor *a = &ts[n->src[0]], *b = &ts[n->src[1]];
  Binary f{dp<const float>(dptr, n->src[0]),
           dp<const float>(dptr, n->src[1]),
           dp<float>(dptr, n->dst),
           a->ne[0],
           spr_tensor_nelem(b) != spr_tensor_nelem(a),
           mul};
  return launch(c, spr_tensor_nelem(a), f);
}
cudaError_t run_add(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                    const spr_run_state &) {
  return run_binary(c, ts, dptr, n, false);
}
cudaError_t run_mul(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                    const spr_run_state &) {
  return run_binary(c, ts, dptr, n, true);
}

cudaError_t run_concat_rows(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                            const spr_run_state &) {
  const int64_t na = spr_tensor_nelem(&ts[n->src[0]]), nb = spr_tensor_nelem(&ts[n->src[1]]);
  Concat f{dp<const float>(dptr, n->src[0]), dp<const float>(dptr, n->src[1]), dp<float>(dptr, n->dst), na};
  return launch(c, na + nb, f);
}

cudaError_t run_mean_rows(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                          const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]];
  MeanRows f{dp<const float>(dptr, n->src[0]), dp<float>(dptr, n->dst), x->ne[0], spr_tensor_rows(x)};
  return launch(c, x->ne[0], f);
}

cudaError_t run_last_row(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                         const spr_run_state &run) {
  const spr_tensor *a = &ts[n->src[0]];
  const int64_t rows = a->ne[1], nt = run.n_tokens;
  const int64_t r = nt >= 1 && nt <= rows ? nt - 1 : rows - 1;
  Copy f{dp<const float>(dptr, n->src[0]) + r * a->ne[0], dp<float>(dptr, n->dst)};
  return launch(c, a->ne[0], f);
}

/* ---- convolutions (NHWC) ---------------------------------------------------------- */

struct Conv2d {
  const float *x;
  const uint8_t *w;
  int wtype;
  const float *bias;
  float *y;
  int64_t h, wd, cin, cout, oh, ow;
  spr_conv_params p;
  HD void operator()(int64_t i) const {
    const int64_t co = i % cout, ox = (i / cout) % ow, oy = i / (cout * ow);
    float s = bias ? bias[co] : 0.0f;
    for (int ky = 0; ky < p.kh; ky++) {
      const int64_t iy = oy * p.sh + ky - p.ph;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < p.kw; kx++) {
        const int64_t ix = ox * p.sw + kx - p.pw;
        if (ix < 0 || ix >= wd) continue;
        const float *xr = x + (iy * wd + ix) * cin;
        const int64_t wo = ((co * p.kh + ky) * p.kw + kx) * cin;
        if (wtype == SPR_DTYPE_F16) {
          for (int64_t ci = 0; ci < cin; ci++) s += xr[ci] * h2f(((const uint16_t *)w)[wo + ci]);
        } else {
          for (int64_t ci = 0; ci < cin; ci++) s += xr[ci] * ((const float *)w)[wo + ci];
        }
      }
    }
    y[i] = s;
  }
};

struct DwConv2d {
  const float *x, *w, *bias;
  float *y;
  int64_t h, wd, ch, oh, ow;
  spr_conv_params p;
  HD void operator()(int64_t i) const {
    const int64_t c = i % ch, ox = (i / ch) % ow, oy = i / (ch * ow);
    float s = bias ? bias[c] : 0.0f;
    for (int ky = 0; ky < p.kh; ky++) {
      const int64_t iy = oy * p.sh + ky - p.ph;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < p.kw; kx++) {
        const int64_t ix = ox * p.sw + kx - p.pw;
        if (ix < 0 || ix >= wd) continue;
        s += x[(iy * wd + ix) * ch + c] * w[(ky * p.kw + kx) * ch + c];
      }
    }
    y[i] = s;
  }
};

cudaError_t run_conv2d(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                       const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]], *w = &ts[n->src[1]], *d = &ts[n->dst];
  Conv2d f{dp<const float>(dptr, n->src[0]),
           dp<const uint8_t>(dptr, n->src[1]),
           (int)w->type,
           n->n_src > 2 ? dp<const float>(dptr, n->src[2]) : nullptr,
           dp<float>(dptr, n->dst),
           x->ne[2],
           x->ne[1],
           x->ne[0],
           d->ne[0],
           d->ne[2],
           d->ne[1],
           n->p.conv};
  return launch(c, spr_tensor_nelem(d), f);
}

cudaError_t run_dwconv2d(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                         const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]], *d = &ts[n->dst];
  DwConv2d f{dp<const float>(dptr, n->src[0]),
             dp<const float>(dptr, n->src[1]),
             n->n_src > 2 ? dp<const float>(dptr, n->src[2]) : nullptr,
             dp<float>(dptr, n->dst),
             x->ne[2],
             x->ne[1],
             x->ne[0],
             d->ne[2],
             d->ne[1],
             n->p.conv};
  return launch(c, spr_tensor_nelem(d), f);
}

/* ---- attention ---------------------------------------------------------------------- */

/* One (query row, head) per index: scores in f32, softmax over the visible
 * keys with the max subtracted, P.V accumulated in f32, output O * (1/l) as
 * the CPU ukernels. Dense: query t sees keys [0, n_vis(t)) (the oracle's
 * causal rule, tk may differ from tq). Cached: query t is at position
 * n_past + t and sees positions j <= it (window / sinks as spr_kv_slot),
 * key j at cache row kv_slot(j); caches f32 or f16. */
struct Attention {
  const float *q;
  const uint8_t *k, *v;
  float *o;
  int64_t q_stride, k_stride, v_stride, tq, tk;
  bool k_f16, v_f16, cached;
  int64_t n_past;
  spr_attn_params p;

  HD float kval(int64_t row, int64_t c) const {
    const int64_t i = row * k_stride + c;
    return k_f16 ? h2f(((const uint16_t *)k)[i]) : ((const float *)k)[i];
  }
  HD float vval(int64_t row, int64_t c) const {
    const int64_t i = row * v_stride + c;
    return v_f16 ? h2f(((const uint16_t *)v)[i]) : ((const float *)v)[i];
  }
  /* Number of keys in the sequence and whether key j is visible / its row. */
  HD bool visible(int64_t pos, int64_t j) const {
    if (!cached) return true;
    return p.window == 0 || j < (int64_t)p.sinks || j + (int64_t)p.window > pos;
  }
  HD int64_t key_row(int64_t j) const { return cached ? (int64_t)kv_slot((uint32_t)j, p.window, p.sinks, p.ring) : j; }
  HD float score(const float *qi, int64_t kc, int64_t row) const {
    float s = 0.0f;
    for (int64_t d = 0; d < p.head_dim; d++) s += qi[d] * kval(row, kc + d);
    return s * p.scale;
  }

  HD void operator()(int64_t i) const {
    const int64_t nh = p.n_heads, hd = p.head_dim;
    const int64_t t = i / nh, h = i % nh, kvh = h / (nh / p.n_kv_heads);
    const float *qi = q + t * q_stride + p.q_col + h * hd;
    float *out = o + t * nh * hd + h * hd;
    const int64_t kc = p.k_col + kvh * hd, vc = p.v_col + kvh * hd;
    int64_t nk, pos = 0;
    if (cached) {
      pos = n_past + t;
      nk = pos + 1;
    } else {
      nk = tk;
      if (p.causal) nk = tk >= tq ? t + (tk - tq) + 1 : (t + 1 > tq - tk ? t + 1 - (tq - tk) : 0);
    }
    float mx = -INFINITY;
    bool any = false;
    for (int64_t j = 0; j < nk; j++) {
      if (!visible(pos, j)) continue;
      const float s = score(qi, kc, key_row(j));
      mx = any ? fmaxf(mx, s) : s;
      any = true;
    }
    if (!any) {
      for (int64_t c = 0; c < hd; c++) out[c] = 0.0f;
      return;
    }
    float acc[SPR_CUDA_MAX_HEAD_DIM];
    for (int64_t c = 0; c < hd; c++) acc[c] = 0.0f;
    float l = 0.0f;
    for (int64_t j = 0; j < nk; j++) {
      if (!visible(pos, j)) continue;
      const int64_t row = key_row(j);
      const float pj = expf(score(qi, kc, row) - mx);
      l += pj;
      for (int64_t c = 0; c < hd; c++) acc[c] += pj * vval(row, vc + c);
    }
    const float inv = 1.0f / l;
    for (int64_t c = 0; c < hd; c++) out[c] = acc[c] * inv;
  }
};

cudaError_t run_attention(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                          const spr_run_state &run) {
  const spr_tensor *q = &ts[n->src[0]], *k = &ts[n->src[1]], *v = &ts[n->src[2]];
  Attention f;
  f.q = dp<const float>(dptr, n->src[0]);
  f.k = dp<const uint8_t>(dptr, n->src[1]);
  f.v = dp<const uint8_t>(dptr, n->src[2]);
  f.o = dp<float>(dptr, n->dst);
  f.q_stride = q->ne[0];
  f.k_stride = k->ne[0];
  f.v_stride = v->ne[0];
  f.tq = q->ne[1];
  f.tk = k->ne[1];
  f.k_f16 = k->type == SPR_DTYPE_F16;
  f.v_f16 = v->type == SPR_DTYPE_F16;
  f.cached = n->p.attn.kv_cache != 0;
  f.n_past = run.n_past;
  f.p = n->p.attn;
  return launch(c, q->ne[1] * (int64_t)n->p.attn.n_heads, f);
}

/* ---- neighborhood attention ----------------------------------------------------------- */

/* One (token, head) per index, NATTEN semantics (ops/natten/natten.h): the
 * problem on three axes (z, y, x), unused leading axes of length 1. Per
 * axis the query's dilation group g = c % d, group coordinate c / d, group
 * length Lg; its window [lo, hi) in group coordinates by the rule of
 * spr_na_window (written out again here: device code). Keys are listed z
 * outermost, x innermost; scores in f32 (scale * q.k + rpb), softmax with
 * the max subtracted, P.V in f32, output O * (1/l), as the dense kernel. */
struct NeighborhoodAttn {
  const float *q, *k, *v, *rpb;
  float *o;
  int64_t q_stride, k_stride, v_stride;
  int32_t size[3], kernel[3], dil[3], stride[3], causal[3];
  int64_t n_heads, head_dim, q_col, k_col, v_col, rpb_head;
  float scale;

  HD static void window(int32_t L, int32_t K, int32_t s, int32_t causal, int32_t i, int32_t *lo, int32_t *hi) {
    if (causal) {
      int32_t leader = (i / s) * s + s - 1;
      if (leader > L - 1) leader = L - 1;
      const int32_t st = leader - (K - 1);
      *lo = st > 0 ? st : 0;
      *hi = i + 1 < L ? i + 1 : L;
    } else {
      const int32_t left = K / 2, right = K / 2 + K % 2 - 1;
      int32_t leader = (i / s) * s + s / 2;
      if (leader > L - 1) leader = L - 1;
      int32_t st = leader - left > 0 ? leader - left : 0;
      if (leader + right >= L) st += L - right - leader - 1;
      *lo = st;
      *hi = st + K;
    }
  }

  HD void operator()(int64_t i) const {
    const int64_t t = i / n_heads, h = i % n_heads, hd = head_dim;
    int32_t c[3], g[3], gc[3], lo[3], hi[3];
    int64_t rem = t;
    for (int a = 2; a >= 0; a--) {
      c[a] = (int32_t)(rem % size[a]);
      rem /= size[a];
    }
    for (int a = 0; a < 3; a++) {
      g[a] = c[a] % dil[a];
      gc[a] = c[a] / dil[a];
      const int32_t lg = size[a] / dil[a] + (g[a] < size[a] % dil[a] ? 1 : 0);
      window(lg, kernel[a], stride[a], causal[a], gc[a], &lo[a], &hi[a]);
    }
    const float *qi = q + t * q_stride + q_col + h * hd;
    float *out = o + t * n_heads * hd + h * hd;
    const int64_t kc = k_col + h * hd, vc = v_col + h * hd;
    const float *bias = rpb ? rpb + h * rpb_head : nullptr;
    float mx = -INFINITY;
    for (int32_t z = lo[0]; z < hi[0]; z++)
      for (int32_t y = lo[1]; y < hi[1]; y++)
        for (int32_t x = lo[2]; x < hi[2]; x++) {
          const float s = score(qi, kc, bias, z, y, x, g, gc);
          mx = fmaxf(mx, s);
        }
    float acc[SPR_CUDA_MAX_HEAD_DIM];
    for (int64_t e = 0; e < hd; e++) acc[e] = 0.0f;
    float l = 0.0f;
    for (int32_t z = lo[0]; z < hi[0]; z++)
      for (int32_t y = lo[1]; y < hi[1]; y++)
        for (int32_t x = lo[2]; x < hi[2]; x++) {
          const float pj = expf(score(qi, kc, bias, z, y, x, g, gc) - mx);
          l += pj;
          const float *vj = v + token(z, y, x, g) * v_stride + vc;
          for (int64_t e = 0; e < hd; e++) acc[e] += pj * vj[e];
        }
    const float inv = 1.0f / l;
    for (int64_t e = 0; e < hd; e++) out[e] = acc[e] * inv;
  }

  /* token row of group coordinates (z, y, x) of dilation groups g */
  HD int64_t token(int32_t z, int32_t y, int32_t x, const int32_t *g) const {
    return ((int64_t)(z * dil[0] + g[0]) * size[1] + (y * dil[1] + g[1])) * size[2] + (x * dil[2] + g[2]);
  }
  HD float score(const float *qi, int64_t kc, const float *bias, int32_t z, int32_t y, int32_t x, const int32_t *g,
                 const int32_t *gc) const {
    const float *kj = k + token(z, y, x, g) * k_stride + kc;
    float s = 0.0f;
    for (int64_t e = 0; e < head_dim; e++) s += qi[e] * kj[e];
    s *= scale;
    if (bias) {
      const int64_t bz = kernel[0] - 1 + z - gc[0], by = kernel[1] - 1 + y - gc[1], bx = kernel[2] - 1 + x - gc[2];
      s += bias[(bz * (2 * kernel[1] - 1) + by) * (2 * kernel[2] - 1) + bx];
    }
    return s;
  }
};

cudaError_t run_neighborhood_attn(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                                  const spr_run_state &) {
  const spr_na_params *p = &n->p.na;
  NeighborhoodAttn f;
  f.q = dp<const float>(dptr, n->src[0]);
  f.k = dp<const float>(dptr, n->src[1]);
  f.v = dp<const float>(dptr, n->src[2]);
  f.rpb = n->n_src >= 4 ? dp<const float>(dptr, n->src[3]) : nullptr;
  f.o = dp<float>(dptr, n->dst);
  f.q_stride = ts[n->src[0]].ne[0];
  f.k_stride = ts[n->src[1]].ne[0];
  f.v_stride = ts[n->src[2]].ne[0];
  const int off = 3 - p->n_dims;
  int64_t n_tok = 1;
  f.rpb_head = 1;
  for (int a = 0; a < 3; a++) {
    const bool used = a >= off;
    f.size[a] = used ? p->size[a - off] : 1;
    f.kernel[a] = used ? p->kernel[a - off] : 1;
    f.dil[a] = used ? p->dilation[a - off] : 1;
    f.stride[a] = used ? p->stride[a - off] : 1;
    f.causal[a] = used ? (p->causal >> (a - off)) & 1 : 0;
    n_tok *= f.size[a];
    f.rpb_head *= 2 * (int64_t)f.kernel[a] - 1;
  }
  f.n_heads = p->n_heads;
  f.head_dim = p->head_dim;
  f.q_col = p->q_col;
  f.k_col = p->k_col;
  f.v_col = p->v_col;
  f.scale = p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)p->head_dim);
  return launch(c, n_tok * (int64_t)p->n_heads, f);
}

/* ---- bi-level routing attention ------------------------------------------------------- */

/* BiFormer's legacy BRA (ops/bra/bra.h) in three launches on the stream:
 *   1. BraMeans: one (q|k, region, channel) per index: the region mean in
 *      double over its tokens in row-major order, rounded to f32 (scratch);
 *   2. BraRoute: one region per index: routing scores in double with the
 *      eight partial sums by channel mod 8 of spr_bra_dot_acc and the fixed
 *      combination of spr_bra_dot_sum, times the f32 scale as a double, and
 *      the top-k by spr_bra_topk's rule (ties: lower index; NaN as -inf),
 *      kept list in increasing region order (scratch). Double arithmetic
 *      with --fmad=false is IEEE, so the GPU routes exactly like the CPU;
 *   3. BraAttn: one (token, head) per index over the routed regions' tokens
 *      (regions in kept order, tokens row-major), f32 scores, softmax with
 *      the max subtracted, P.V in f32, O * (1/l).
 * Scratch (spr_cuda_node_scratch): k means, q means [P][qk_dim] f32, the
 * kept lists [P][topk] i32 and their scores [P][topk] f64. */
struct BraGeom {
  int64_t S, P, rh, rw, M, W, qk, vd, nh, topk;
  HD int64_t tok(int64_t reg, int64_t t) const { return ((reg / S) * rh + t / rw) * W + (reg % S) * rw + t % rw; }
};

struct BraScratch {
  float *kr, *qr;
  int32_t *sel;
  double *val;
};

size_t bra_scratch_part(const spr_bra_params *p, int part) {
  const size_t P = (size_t)p->n_win * p->n_win;
  switch (part) {
    case 0:
    case 1:
      return align256(P * p->qk_dim * sizeof(float));
    case 2:
      return align256(P * p->topk * sizeof(int32_t));
    default:
      return align256(P * p->topk * sizeof(double));
  }
}

size_t bra_scratch_bytes(const spr_bra_params *p) {
  return bra_scratch_part(p, 0) + bra_scratch_part(p, 1) + bra_scratch_part(p, 2) + bra_scratch_part(p, 3);
}

struct BraMeans {
  BraGeom g;
  const float *q, *k;
  int64_t q_stride, k_stride, q_col, k_col;
  BraScratch s;
  HD void operator()(int64_t i) const {
    const int64_t which = i / (g.P * g.qk), r = i / g.qk % g.P, c = i % g.qk;
    const float *src = which ? q : k;
    const int64_t stride = which ? q_stride : k_stride, col = which ? q_col : k_col;
    double sum = 0.0;
    for (int64_t t = 0; t < g.M; t++) sum += (double)src[g.tok(r, t) * stride + col + c];
    (which ? s.qr : s.kr)[r * g.qk + c] = (float)(sum / (double)g.M);
  }
};

/* spr_bra_topk's order: (ai, i) before (aj, j) */
HD bool bra_before(double ai, int64_t i, double aj, int64_t j) {
  if (ai > aj) return true;
  if (ai < aj) return false;
  if (ai == aj) return i < j;
  if (isnan(ai)) ai = -INFINITY;
  if (isnan(aj)) aj = -INFINITY;
  return ai > aj || (ai == aj && i < j);
}

struct BraRoute {
  BraGeom g;
  double rscale;
  BraScratch s;
  HD double route_score(int64_t p, int64_t r) const {
    const float *a = s.qr + p * g.qk, *b = s.kr + r * g.qk;
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c = 0; c < g.qk; c++) {
      const double prod = (double)a[c] * (double)b[c];
      acc[c & 7] += prod;
    }
    const double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    return rscale * sum;
  }
  HD void operator()(int64_t p) const {
    int32_t *sel = s.sel + p * g.topk;
    double *val = s.val + p * g.topk;
    int64_t cnt = 0;
    for (int64_t r = 0; r < g.P; r++) {
      const double a = route_score(p, r);
      if (cnt == g.topk && !bra_before(a, r, val[cnt - 1], sel[cnt - 1])) continue;
      int64_t j = cnt < g.topk ? cnt++ : cnt - 1;
      for (; j > 0 && bra_before(a, r, val[j - 1], sel[j - 1]); j--) {
        sel[j] = sel[j - 1];
        val[j] = val[j - 1];
      }
      sel[j] = (int32_t)r;
      val[j] = a;
    }
    for (int64_t k = 1; k < g.topk; k++) {
      const int32_t x = sel[k];
      int64_t j = k;
      for (; j > 0 && sel[j - 1] > x; j--) sel[j] = sel[j - 1];
      sel[j] = x;
    }
  }
};

struct BraAttn {
  BraGeom g;
  const float *q, *k, *v;
  float *o;
  int64_t q_stride, k_stride, v_stride, q_col, k_col, v_col;
  float scale;
  const int32_t *sel;
  HD float score(const float *qi, int64_t kt, int64_t kc, int64_t hq) const {
    const float *kj = k + kt * k_stride + kc;
    float s = 0.0f;
    for (int64_t d = 0; d < hq; d++) s += qi[d] * kj[d];
    return s * scale;
  }
  HD void operator()(int64_t i) const {
    const int64_t tok = i / g.nh, h = i % g.nh, hq = g.qk / g.nh, hv = g.vd / g.nh;
    const int64_t reg = (tok / g.W / g.rh) * g.S + (tok % g.W) / g.rw;
    const int32_t *rs = sel + reg * g.topk;
    const float *qi = q + tok * q_stride + q_col + h * hq;
    const int64_t kc = k_col + h * hq, vc = v_col + h * hv, nk = g.topk * g.M;
    float mx = -INFINITY;
    for (int64_t j = 0; j < nk; j++) mx = fmaxf(mx, score(qi, g.tok(rs[j / g.M], j % g.M), kc, hq));
    float acc[SPR_CUDA_MAX_HEAD_DIM];
    for (int64_t e = 0; e < hv; e++) acc[e] = 0.0f;
    float l = 0.0f;
    for (int64_t j = 0; j < nk; j++) {
      const int64_t kt = g.tok(rs[j / g.M], j % g.M);
      const float pj = expf(score(qi, kt, kc, hq) - mx);
      l += pj;
      const float *vj = v + kt * v_stride + vc;
      for (int64_t e = 0; e < hv; e++) acc[e] += pj * vj[e];
    }
    const float inv = 1.0f / l;
    float *out = o + tok * g.vd + h * hv;
    for (int64_t e = 0; e < hv; e++) out[e] = acc[e] * inv;
  }
};

cudaError_t run_bra(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                    const spr_run_state &) {
  const spr_bra_params *p = &n->p.bra;
  BraGeom g;
  g.S = p->n_win;
  g.P = g.S * g.S;
  g.rh = p->h / p->n_win;
  g.rw = p->w / p->n_win;
  g.M = g.rh * g.rw;
  g.W = p->w;
  g.qk = p->qk_dim;
  g.vd = p->v_dim;
  g.nh = p->n_heads;
  g.topk = p->topk;
  if (c.scratch_bytes < bra_scratch_bytes(p)) return cudaErrorInvalidValue;
  BraScratch s;
  uint8_t *sp = c.scratch;
  s.kr = (float *)sp;
  sp += bra_scratch_part(p, 0);
  s.qr = (float *)sp;
  sp += bra_scratch_part(p, 1);
  s.sel = (int32_t *)sp;
  sp += bra_scratch_part(p, 2);
  s.val = (double *)sp;
  const float scale = p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)p->qk_dim);
  const float *q = dp<const float>(dptr, n->src[0]), *k = dp<const float>(dptr, n->src[1]);
  const int64_t q_stride = ts[n->src[0]].ne[0], k_stride = ts[n->src[1]].ne[0];
  BraMeans fm{g, q, k, q_stride, k_stride, p->q_col, p->k_col, s};
  cudaError_t e = launch(c, 2 * g.P * g.qk, fm);
  if (e != cudaSuccess) return e;
  BraRoute fr{g, (double)scale, s};
  e = launch(c, g.P, fr);
  if (e != cudaSuccess) return e;
  BraAttn fa{g,
             q,
             k,
             dp<const float>(dptr, n->src[2]),
             dp<float>(dptr, n->dst),
             q_stride,
             k_stride,
             ts[n->src[2]].ne[0],
             p->q_col,
             p->k_col,
             p->v_col,
             scale,
             s.sel};
  return launch(c, (int64_t)p->h * p->w * g.nh, fa);
}

/* ---- LLM ops ---------------------------------------------------------------------------- */

struct GetRows {
  const uint8_t *table;
  const int32_t *ids;
  float *y;
  int type;
  int64_t d, n_rows;
  size_t row_bytes;
  HD void operator()(int64_t i) const {
    const int64_t t = i / d, c = i % d;
    const int32_t id = ids[t];
    const int64_t row = id >= 0 && id < n_rows ? id : 0;
    y[i] = row_elem(table + (size_t)row * row_bytes, type, c);
  }
};

cudaError_t run_get_rows(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                         const spr_run_state &) {
  const spr_tensor *tab = &ts[n->src[0]], *ids = &ts[n->src[1]];
  GetRows f{dp<const uint8_t>(dptr, n->src[0]),
            dp<const int32_t>(dptr, n->src[1]),
            dp<float>(dptr, n->dst),
            (int)tab->type,
            tab->ne[0],
            tab->ne[1],
            row_bytes_of((int)tab->type, tab->ne[0])};
  return launch(c, spr_tensor_nelem(ids) * tab->ne[0], f);
}

/* Element (t, col) of the rotated rows (rows of n_heads * head_dim floats;
 * the source row t starts at x + t * x_row and its head 0 at column x_col);
 * angle of pair k/2 by ggml's float recurrence theta = pos *
 * theta_scale^(k/2) (theta_scale from the host's powf, as spr_rope_table). */
struct Rope {
  const float *x;
  float *y;
  int64_t row, x_row, x_col, hd, n_rot, n_past;
  float theta_scale, freq_scale;
  HD void operator()(int64_t i) const {
    const int64_t t = i / row, col = i % row, cc = col % hd;
    const float *xr = x + t * x_row + x_col;
    if (cc >= n_rot) {
      y[i] = xr[col];
      return;
    }
    const int64_t k = cc & ~(int64_t)1, base = col - (cc - k);
    float theta = (float)(n_past + t);
    for (int64_t j = 0; j < k; j += 2) theta *= theta_scale;
    const float a = freq_scale * theta;
    const float cs = cosf(a), sn = sinf(a);
    const float x0 = xr[base], x1 = xr[base + 1];
    y[i] = (cc == k) ? x0 * cs + x1 * -sn : x1 * cs + x0 * sn;
  }
};

cudaError_t run_rope(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                     const spr_run_state &run) {
  const spr_tensor *a = &ts[n->src[0]], *y = &ts[n->dst];
  const spr_rope_params *p = &n->p.rope;
  Rope f{dp<const float>(dptr, n->src[0]),
         dp<float>(dptr, n->dst),
         y->ne[0],
         a->ne[0],
         (int64_t)p->col,
         p->head_dim,
         p->n_rot,
         run.n_past,
         powf(p->freq_base, -2.0f / (float)p->n_rot),
         p->freq_scale};
  return launch(c, y->ne[0] * spr_tensor_rows(a), f);
}

/* Cache rows of w values from columns [col, col + w) of the source rows
 * (x_row floats apart). */
struct KvStore {
  const float *x;
  uint8_t *cache;
  bool f16;
  int64_t w, x_row, cap, n_past;
  spr_kv_params p;
  HD void operator()(int64_t i) const {
    const int64_t t = i / w, c = i % w;
    const uint32_t slot = kv_slot((uint32_t)(n_past + t), p.window, p.sinks, p.ring);
    if ((int64_t)slot >= cap) return;
    const int64_t o = (int64_t)slot * w + c;
    const float v = x[t * x_row + p.col + c];
    if (f16)
      ((uint16_t *)cache)[o] = f2h(v);
    else
      ((float *)cache)[o] = v;
  }
};

cudaError_t run_kv_store(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                         const spr_run_state &run) {
  const spr_tensor *a = &ts[n->src[0]], *cache = &ts[n->dst];
  KvStore f{dp<const float>(dptr, n->src[0]),
            dp<uint8_t>(dptr, n->dst),
            cache->type == SPR_DTYPE_F16,
            cache->ne[0],
            a->ne[0],
            cache->ne[1],
            run.n_past,
            n->p.kv};
  return launch(c, cache->ne[0] * a->ne[1], f);
}

/* ---- core-neuron FFN (ops/coreffn/coreffn.h) ------------------------------------------- */

/* The control and selection state of a sparse layer (device words; ctl ==
 * nullptr: no state, always dense). The mode is read on the device, so the
 * host never waits for it. */
struct CoreRef {
  const int32_t *ctl, *sel;
  int64_t n_ff, rows;
};

CoreRef core_ref(const spr_tensor *ts, void *const *dptr, const spr_node *n, int64_t n_ff, int64_t rows) {
  CoreRef r{nullptr, nullptr, n_ff, rows};
  if (n->n_src > 5 && n->src[4] >= 0 && n->src[5] >= 0) {
    r.sel = dp<const int32_t>(dptr, n->src[4]);
    r.ctl = dp<const int32_t>(dptr, n->src[5]);
  }
  (void)ts;
  return r;
}

/* n_core of a sparse single-token step, 0 for a dense one (sparse_core() in
 * ops/coreffn/coreffn_ops.c). */
HD int64_t core_n(const CoreRef &r) {
  if (r.sel == nullptr || r.rows != 1 || r.ctl[offsetof(spr_core_ctl, mode) / 4] != SPR_CORE_MODE_SPARSE) return 0;
  const int32_t n = r.sel[offsetof(spr_core_sel, n_core) / 4];
  return n > 0 && n <= r.n_ff ? n : 0;
}

HD const int32_t *core_list(const CoreRef &r) {
  return r.sel + SPR_CORE_SEL_HEADER_WORDS + r.n_ff;
}

/* x row . weight row jr for f32 / f16 weights (GEMM's GemmF sum). */
HD float fdot(const float *xr, const uint8_t *w, int wtype, int64_t k, int64_t jr) {
  float acc = 0.0f;
  if (wtype == SPR_DTYPE_F16) {
    const uint16_t *wr = (const uint16_t *)w + jr * k;
    for (int64_t t = 0; t < k; t++) acc += xr[t] * h2f(wr[t]);
  } else {
    const float *wr = (const float *)w + jr * k;
    for (int64_t t = 0; t < k; t++) acc += xr[t] * wr[t];
  }
  return acc;
}

/* GEMM_ROWS output (m, j): the GEMM's, or in a sparse step dst[j] =
 * act(x . W[core[j]]) for j < n_core (the rest is left alone, as the CPU). */
struct GemmRows {
  const float *x;
  const uint8_t *w;
  int wtype;
  size_t row_bytes;
  XQ q;
  bool quant;
  float *y;
  int64_t n, k, kb;
  int act;
  CoreRef cr;
  HD void operator()(int64_t i) const {
    const int64_t nc = core_n(cr), m = i / n, j = i % n;
    int64_t jr = j;
    if (nc > 0) {
      if (j >= nc) return;
      jr = core_list(cr)[j];
    }
    const float s = quant ? qdot(w + (size_t)jr * row_bytes, wtype, q, m, kb) : fdot(x + m * k, w, wtype, k, jr);
    y[i] = act_apply(act, s);
  }
};

cudaError_t run_gemm_rows(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                          const spr_run_state &) {
  const spr_tensor *x = &ts[n->src[0]], *w = &ts[n->src[1]];
  const int64_t k = x->ne[0], m = spr_tensor_rows(x), nn = w->ne[1];
  const int wt = (int)w->type;
  const bool quant = wt != SPR_DTYPE_F32 && wt != SPR_DTYPE_F16;
  XQ q{nullptr, nullptr, nullptr};
  if (quant) {
    const cudaError_t e = quantize_x(c, dp<const float>(dptr, n->src[0]), wt, m, k, &q);
    if (e != cudaSuccess) return e;
  }
  GemmRows g{dp<const float>(dptr, n->src[0]),
             dp<const uint8_t>(dptr, n->src[1]),
             wt,
             row_bytes_of(wt, k),
             q,
             quant,
             dp<float>(dptr, n->dst),
             nn,
             k,
             quant ? k / (is_k_quant(wt) ? 256 : 32) : 0,
             (int)n->p.gemm.act,
             core_ref(ts, dptr, n, nn, m)};
  return launch(c, m * nn, g);
}

/* FFN_DOWN with ffn_down {F, E}: v = h (dense) or the core activations
 * scattered into zeros (sparse, one row), then the GEMM over v. */
struct DownScatter {
  const float *h;
  float *v;
  CoreRef cr;
  int phase;
  HD void operator()(int64_t i) const {
    const int64_t nc = core_n(cr);
    if (phase == 0)
      v[i] = nc > 0 ? 0.0f : h[i];
    else if (i < nc)
      v[core_list(cr)[i]] = h[i];
  }
};

/* FFN_DOWN with ffn_down_t {E, F}, the f32 rule (f32, f16 weights; q8_0 in
 * decode; q4_0 in decode when the CPU node's ukernel is an f32 axpy; prefill
 * when F is not a multiple of 32): output (t, e) = sum over the neurons (the
 * core list in a sparse step) of h * W[neuron][e], in neuron order from 0,
 * then + residual (the axpy ukernels' order). */
struct DownT {
  const float *h;
  const uint8_t *w;
  int wtype;
  size_t ldw;
  const float *res;
  float *y;
  int64_t e_n, f_n;
  CoreRef cr;
  HD void operator()(int64_t i) const {
    const int64_t nc = core_n(cr), t = i / e_n, e = i % e_n;
    float acc = 0.0f;
    if (nc > 0) {
      const int32_t *core = core_list(cr);
      for (int64_t a = 0; a < nc; a++) acc += h[a] * row_elem(w + (size_t)core[a] * ldw, wtype, e);
    } else {
      const float *ht = h + t * f_n;
      for (int64_t a = 0; a < f_n; a++) acc += ht[a] * row_elem(w + (size_t)a * ldw, wtype, e);
    }
    y[i] = res ? acc + res[i] : acc;
  }
};

/* FFN_DOWN, Q4_0 ffn_down_t, one token, the axpyq rule (coreffn.h, the
 * scalar twin ops/coreffn/axpyq_scalar.c, bit for bit): output e of block b
 * = sum over groups of SPR_AXPYQ_GROUP consecutive neurons (core list or all
 * F) of fma(S, t_e, y) with p_i = h_i * d_ib, m = max |p_i| (fmaxf), S =
 * m / 127, c_i = nearbyint(p_i * (127 / m)), t_e = sum_i c_i * (code_ie - 8)
 * exact in int32; a group with !(m > 0) adds nothing; then + residual. */
struct DownTAxpyQ {
  const float *h;
  const uint8_t *w;
  size_t ldw;
  const float *res;
  float *y;
  int64_t f_n;
  CoreRef cr;
  HD void operator()(int64_t e) const {
    const int64_t nc = core_n(cr), n = nc > 0 ? nc : f_n, b = e / 32;
    const int32_t *core = nc > 0 ? core_list(cr) : nullptr;
    const int j = (int)(e % 32);
    float acc = 0.0f;
    for (int64_t g0 = 0; g0 < n; g0 += SPR_AXPYQ_GROUP) {
      const int64_t grp = SPR_AXPYQ_GROUP, gn = n - g0 < grp ? n - g0 : grp;
      float m = 0.0f;
      for (int64_t a = g0; a < g0 + gn; a++) {
        const uint8_t *blk = w + (size_t)(core ? core[a] : a) * ldw + 18 * b;
        m = fmaxf(m, fabsf(h[a] * half_at(blk)));
      }
      if (!(m > 0.0f)) continue;
      const float s = m / 127.0f, inv = 127.0f / m;
      int32_t t = 0;
      for (int64_t a = g0; a < g0 + gn; a++) {
        const uint8_t *blk = w + (size_t)(core ? core[a] : a) * ldw + 18 * b;
        const int32_t c = (int32_t)nearbyintf((h[a] * half_at(blk)) * inv);
        const int q = (j < 16 ? (blk[2 + j] & 0xF) : (blk[2 + j - 16] >> 4)) - 8;
        t += c * q;
      }
      acc = fmaf(s, (float)t, acc);
    }
    y[e] = res ? acc + res[e] : acc;
  }
};

/* Prefill through a Q4_0 / Q8_0 ffn_down_t (F a multiple of 32), step 1:
 * one Q8_0 block per index (e, g): column e of neurons [32g, 32g + 32)
 * requantized as the rqt ukernels (ops/coreffn/rqt_scalar.c, bit for bit;
 * rule in ops/coreffn/coreffn.h), written to row e of a row-major Q8_0
 * matrix {F, E} (ldq bytes a row). Q8_0: v = the exact dequantized values,
 * amax = max |v|, d = fp16(amax / 127), id = amax > 0 ? 127 / amax : 0,
 * q = (int8)trunc(s +- 0.5), s = v * id. Q4_0: one scale for the 32 rows'
 * block holding column e: dmax = max |dk|, d = fp16(8 dmax / 127), code =
 * rne(dk * (127 / (8 dmax)) * (nibble - 8)); zero when dmax is 0 or a scale
 * is not finite. */
struct DownTRqt {
  const uint8_t *w;
  int wtype;
  size_t ldw, ldq;
  uint8_t *wq;
  int64_t kb;
  HD void operator()(int64_t i) const {
    const int64_t e = i / kb, g = i % kb;
    const uint8_t *w0 = w + (size_t)(32 * g) * ldw;
    uint8_t *blk = wq + (size_t)e * ldq + (size_t)g * 34;
    if (wtype == SPR_DTYPE_Q4_0) {
      const size_t off = (size_t)(e / 32) * 18;
      float dmax = 0.0f;
      bool finite = true;
      for (int kk = 0; kk < 32; kk++) {
        const uint8_t *p = w0 + (size_t)kk * ldw + off;
        finite = finite && (p[1] & 0x7Cu) != 0x7Cu;
        const float dk = half_at(p), a = dk < 0.0f ? -dk : dk;
        dmax = a > dmax ? a : dmax;
      }
      if (!finite || dmax == 0.0f) {
        for (int t = 0; t < 34; t++) blk[t] = 0;
        return;
      }
      const float r = 127.0f / (8.0f * dmax);
      const uint16_t hd = f2h(8.0f * dmax / 127.0f);
      blk[0] = (uint8_t)(hd & 0xFFu);
      blk[1] = (uint8_t)(hd >> 8);
      const int64_t j = e % 32;
      for (int kk = 0; kk < 32; kk++) {
        const uint8_t *p = w0 + (size_t)kk * ldw + off;
        const int nib = j < 16 ? (p[2 + j] & 0x0F) : (p[2 + j - 16] >> 4);
        const float f = half_at(p) * r;
        float t = f * (float)(nib - 8); /* --fmad=false: the products and sums round as the CPU's */
        t = t + 12582912.0f;              /* 1.5 * 2^23: round half to even */
        t = t - 12582912.0f;
        blk[2 + kk] = (uint8_t)(int8_t)(int)t;
      }
      return;
    }
    float amax = 0.0f;
    for (int kk = 0; kk < 32; kk++) {
      const float v = row_elem(w0 + (size_t)kk * ldw, wtype, e);
      const float a = v < 0.0f ? -v : v;
      amax = a > amax ? a : amax;
    }
    const uint16_t hd = f2h(amax / 127.0f);
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    blk[0] = (uint8_t)(hd & 0xFFu);
    blk[1] = (uint8_t)(hd >> 8);
    for (int kk = 0; kk < 32; kk++) {
      const float s = row_elem(w0 + (size_t)kk * ldw, wtype, e) * id;
      blk[2 + kk] = (uint8_t)cvt_i8_x86(s + (s < 0.0f ? -0.5f : 0.5f));
    }
  }
};

/* The CPU's prefill rule for ffn_down_t (down_t_integer() in
 * ops/coreffn/coreffn_ops.c): requantized Q8_0 strips x Q8_0 activations. */
bool down_t_integer(int wt, int64_t n_ff) {
  return (wt == SPR_DTYPE_Q4_0 || wt == SPR_DTYPE_Q8_0) && n_ff % 32 == 0;
}

/* Whether the CPU session picked an axpyq (int8-coefficient) ukernel for this
 * ffn_down_t node: prepare() stores the axpy.inc entry in node->impl; the
 * axpyq entries are the ones named spr_q4_0_axpyq_ukernel_*. A node that was
 * never prepared (impl NULL) takes the f32 rule. */
bool cpu_uses_axpyq(const spr_node *n) {
  const spr_axpy_ukernel *k = (const spr_axpy_ukernel *)n->impl;
  return k != nullptr && k->type == SPR_DTYPE_Q4_0 && k->name != nullptr && strstr(k->name, "_axpyq_") != nullptr;
}

size_t ffn_down_scratch(const spr_tensor *ts, const spr_node *n, int64_t rows) {
  const spr_tensor *h = &ts[n->src[0]], *w = &ts[n->src[1]];
  if (n->p.core.down_t) {
    if (rows <= 1 || !down_t_integer((int)w->type, h->ne[0])) return 0;
    return align256((size_t)w->ne[0] * row_bytes_of(SPR_DTYPE_Q8_0, h->ne[0])) +
           xq_bytes(SPR_DTYPE_Q8_0, rows, h->ne[0]);
  }
  size_t b = align256((size_t)h->ne[0] * (size_t)rows * sizeof(float));
  if (w->type != SPR_DTYPE_F32 && w->type != SPR_DTYPE_F16) b += xq_bytes((int)w->type, rows, h->ne[0]);
  return b;
}

cudaError_t run_ffn_down(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                         const spr_run_state &) {
  const spr_tensor *h = &ts[n->src[0]], *w = &ts[n->src[1]];
  const int64_t F = h->ne[0], T = spr_tensor_rows(h);
  const float *res = n->n_src > 3 ? dp<const float>(dptr, n->src[3]) : nullptr;
  float *y = dp<float>(dptr, n->dst);
  const int wt = (int)w->type;
  if (n->p.core.down_t) {
    const int64_t E = w->ne[0];
    const size_t ldw = row_bytes_of(wt, E);
    if (T > 1 && down_t_integer(wt, F)) {
      if (c.scratch_bytes < ffn_down_scratch(ts, n, T)) return cudaErrorInvalidValue;
      const size_t ldq = row_bytes_of(SPR_DTYPE_Q8_0, F), wqb = align256((size_t)E * ldq);
      DownTRqt r{dp<const uint8_t>(dptr, n->src[1]), wt, ldw, ldq, c.scratch, F / 32};
      cudaError_t e = launch(c, E * (F / 32), r);
      if (e != cudaSuccess) return e;
      spr_cuda_ctx c2{c.emulate, c.stream, c.scratch + wqb, c.scratch_bytes - wqb};
      XQ q;
      e = quantize_x(c2, dp<const float>(dptr, n->src[0]), SPR_DTYPE_Q8_0, T, F, &q);
      if (e != cudaSuccess) return e;
      GemmQ g{c.scratch, ldq, q, SPR_DTYPE_Q8_0, nullptr, res, y, E, F / 32, (int)SPR_ACT_NONE};
      return launch(c, T * E, g);
    }
    if (T == 1 && wt == SPR_DTYPE_Q4_0 && cpu_uses_axpyq(n)) {
      DownTAxpyQ f{dp<const float>(dptr, n->src[0]), dp<const uint8_t>(dptr, n->src[1]), ldw, res, y, F,
                   core_ref(ts, dptr, n, F, T)};
      return launch(c, E, f);
    }
    DownT f{dp<const float>(dptr, n->src[0]), dp<const uint8_t>(dptr, n->src[1]), wt, ldw, res, y, E, F,
            core_ref(ts, dptr, n, F, T)};
    return launch(c, T * E, f);
  }
  if (c.scratch_bytes < ffn_down_scratch(ts, n, T)) return cudaErrorInvalidValue;
  const CoreRef cr = core_ref(ts, dptr, n, F, T);
  float *v = (float *)c.scratch;
  DownScatter s0{dp<const float>(dptr, n->src[0]), v, cr, 0};
  cudaError_t e = launch(c, F * T, s0);
  if (e != cudaSuccess) return e;
  DownScatter s1{dp<const float>(dptr, n->src[0]), v, cr, 1};
  e = launch(c, F, s1);
  if (e != cudaSuccess) return e;
  const int64_t nn = w->ne[1];
  if (wt == SPR_DTYPE_F32 || wt == SPR_DTYPE_F16) {
    GemmF f{v, dp<const uint8_t>(dptr, n->src[1]), wt, nullptr, res, y, nn, F, (int)n->p.gemm.act};
    return launch(c, T * nn, f);
  }
  const size_t vb = align256((size_t)F * (size_t)T * sizeof(float));
  spr_cuda_ctx c2{c.emulate, c.stream, c.scratch + vb, c.scratch_bytes - vb};
  XQ q;
  e = quantize_x(c2, v, wt, T, F, &q);
  if (e != cudaSuccess) return e;
  GemmQ g{dp<const uint8_t>(dptr, n->src[1]), row_bytes_of(wt, F), q, wt, nullptr, res, y, nn,
          F / (is_k_quant(wt) ? 256 : 32),    (int)n->p.gemm.act};
  return launch(c, T * nn, g);
}

/* CORE_SELECT (select mode only; every launch reads the mode on the device):
 *   1. over F: a new window clears freq;
 *   2. one thread: the window's positives and tokens, k (the op's double
 *      arithmetic);
 *   3. over T x F: (t, n) adds 1 to freq[n] when fewer than k neurons of
 *      row t rank above it (larger value, then lower index; the keys of
 *      core_select.c: -0 folded onto +0);
 *   4. over F: n is in the core set when fewer than n_core neurons rank
 *      above it by (freq desc, index asc) (flags in scratch);
 *   5. one thread: the core list in ascending order, n_core. */
HD uint32_t order_key(float v) {
  uint32_t u = f2u(v);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct CoreSelect {
  const float *a;
  const int32_t *ctl;
  int32_t *sel;
  int32_t *flags;
  int64_t F, T, n_core;
  float alpha;
  int phase;
  HD int32_t *freq() const { return sel + SPR_CORE_SEL_HEADER_WORDS; }
  HD void operator()(int64_t i) const {
    if (ctl[offsetof(spr_core_ctl, mode) / 4] != SPR_CORE_MODE_SELECT) return;
    const bool fresh = ctl[offsetof(spr_core_ctl, new_window) / 4] != 0;
    int64_t *hdr = (int64_t *)sel; /* positives, tokens */
    switch (phase) {
      case 0:
        if (fresh) freq()[i] = 0;
        break;
      case 1: {
        if (fresh) hdr[0] = hdr[1] = 0;
        int64_t pos = 0;
        for (int64_t j = 0; j < F * T; j++) pos += a[j] > 0.0f;
        hdr[0] += pos;
        hdr[1] += T;
        const double kd = (double)alpha * (double)hdr[0] / (double)hdr[1];
        sel[offsetof(spr_core_sel, k) / 4] = (int32_t)(kd >= (double)F ? F : (int64_t)kd);
        break;
      }
      case 2: {
        const int64_t k = sel[offsetof(spr_core_sel, k) / 4], t = i / F, n = i % F;
        if (k <= 0) return;
        const float *row = a + t * F;
        const uint32_t kn = order_key(row[n]);
        int64_t above = 0;
        for (int64_t m = 0; m < F && above < k; m++) {
          const uint32_t km = order_key(row[m]);
          above += km > kn || (km == kn && m < n);
        }
        if (above < k) {
#ifdef __CUDA_ARCH__
          atomicAdd(&freq()[n], 1);
#else
          freq()[n]++;
#endif
        }
        break;
      }
      case 3: {
        const int32_t *fr = freq();
        int64_t above = 0;
        for (int64_t m = 0; m < F && above < n_core; m++) above += fr[m] > fr[i] || (fr[m] == fr[i] && m < i);
        flags[i] = above < n_core;
        break;
      }
      default: {
        int32_t *core = freq() + F, j = 0;
        for (int64_t m = 0; m < F; m++)
          if (flags[m]) core[j++] = (int32_t)m;
        sel[offsetof(spr_core_sel, n_core) / 4] = j;
        break;
      }
    }
  }
};

cudaError_t run_core_select(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                            const spr_run_state &) {
  const spr_tensor *a = &ts[n->src[0]];
  const int64_t F = a->ne[0], T = spr_tensor_rows(a);
  if (c.scratch_bytes < (size_t)F * sizeof(int32_t)) return cudaErrorInvalidValue;
  CoreSelect f{dp<const float>(dptr, n->src[0]),
               dp<const int32_t>(dptr, n->src[1]),
               dp<int32_t>(dptr, n->dst),
               (int32_t *)c.scratch,
               F,
               T,
               (int64_t)spr_core_count(n->p.core.beta, (size_t)F),
               n->p.core.alpha,
               0};
  const int64_t counts[5] = {F, 1, T * F, F, 1};
  for (int ph = 0; ph < 5; ph++) {
    f.phase = ph;
    const cudaError_t e = launch(c, counts[ph], f);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

/* ---- PAD2D (ops/layout/layout.h) ------------------------------------------------------------ */

/* Output (y, x, c) of dst {C, W2, H2}: the source pixel inside the top-left
 * min(H1,H2) x min(W1,W2), else 0 (plain copies: bit-exact). */
struct Pad2d {
  const float *x;
  float *y;
  int64_t c, w1, h1, w2;
  HD void operator()(int64_t i) const {
    const int64_t ch = i % c, px = i / c % w2, py = i / c / w2;
    y[i] = px < w1 && py < h1 ? x[(py * w1 + px) * c + ch] : 0.0f;
  }
};

cudaError_t run_pad2d(const spr_cuda_ctx &c, const spr_tensor *ts, void *const *dptr, const spr_node *n,
                      const spr_run_state &) {
  const spr_tensor *a = &ts[n->src[0]], *d = &ts[n->dst];
  Pad2d f{dp<const float>(dptr, n->src[0]), dp<float>(dptr, n->dst), a->ne[0], a->ne[1], a->ne[2], d->ne[1]};
  return launch(c, d->ne[0] * d->ne[1] * d->ne[2], f);
}

/* ---- the table ---------------------------------------------------------------------------- */

const spr_cuda_kernel k_kernels[] = {
    {SPR_OP_GEMM, SPR_DTYPE_F32, "cuda_gemm_f32", run_gemm},
    {SPR_OP_GEMM, SPR_DTYPE_F16, "cuda_gemm_f16", run_gemm},
    {SPR_OP_GEMM, SPR_DTYPE_Q8_0, "cuda_qgemm_q8_0", run_gemm},
    {SPR_OP_GEMM, SPR_DTYPE_Q4_0, "cuda_qgemm_q4_0", run_gemm},
    {SPR_OP_GEMM, SPR_DTYPE_Q4_K, "cuda_qgemm_q4_k", run_gemm},
    {SPR_OP_GEMM, SPR_DTYPE_Q6_K, "cuda_qgemm_q6_k", run_gemm},
    {SPR_OP_GEMM_MULTI, SPR_DTYPE_Q8_0, "cuda_qgemm_multi_q8_0", run_gemm_multi},
    {SPR_OP_GEMM_MULTI, SPR_DTYPE_Q4_0, "cuda_qgemm_multi_q4_0", run_gemm_multi},
    {SPR_OP_GEMM_MULTI, SPR_DTYPE_Q4_K, "cuda_qgemm_multi_q4_k", run_gemm_multi},
    {SPR_OP_GEMM_MULTI, SPR_DTYPE_Q6_K, "cuda_qgemm_multi_q6_k", run_gemm_multi},
    {SPR_OP_LAYERNORM, SPR_DTYPE_F32, "cuda_layernorm_f32", run_layernorm},
    {SPR_OP_RMSNORM, SPR_DTYPE_F32, "cuda_rmsnorm_f32", run_rmsnorm},
    {SPR_OP_SOFTMAX, SPR_DTYPE_F32, "cuda_softmax_f32", run_softmax},
    {SPR_OP_GELU, SPR_DTYPE_F32, "cuda_gelu_f32", run_gelu},
    {SPR_OP_SILU, SPR_DTYPE_F32, "cuda_silu_f32", run_silu},
    {SPR_OP_ADD, SPR_DTYPE_F32, "cuda_add_f32", run_add},
    {SPR_OP_MUL, SPR_DTYPE_F32, "cuda_mul_f32", run_mul},
    {SPR_OP_CONV2D, SPR_DTYPE_F32, "cuda_conv2d_f32", run_conv2d},
    {SPR_OP_CONV2D, SPR_DTYPE_F16, "cuda_conv2d_f16", run_conv2d},
    {SPR_OP_DWCONV2D, SPR_DTYPE_F32, "cuda_dwconv2d_f32", run_dwconv2d},
    {SPR_OP_ATTENTION, SPR_DTYPE_F32, "cuda_attention_f32", run_attention},
    {SPR_OP_ATTENTION, SPR_DTYPE_F16, "cuda_attention_kv_f16", run_attention},
    {SPR_OP_CONCAT_ROWS, SPR_DTYPE_F32, "cuda_concat_rows_f32", run_concat_rows},
    {SPR_OP_MEAN_ROWS, SPR_DTYPE_F32, "cuda_mean_rows_f32", run_mean_rows},
    {SPR_OP_SCALE, SPR_DTYPE_F32, "cuda_scale_f32", run_scale},
    {SPR_OP_GET_ROWS, SPR_DTYPE_F32, "cuda_get_rows_f32", run_get_rows},
    {SPR_OP_GET_ROWS, SPR_DTYPE_F16, "cuda_get_rows_f16", run_get_rows},
    {SPR_OP_GET_ROWS, SPR_DTYPE_Q8_0, "cuda_get_rows_q8_0", run_get_rows},
    {SPR_OP_GET_ROWS, SPR_DTYPE_Q4_0, "cuda_get_rows_q4_0", run_get_rows},
    {SPR_OP_GET_ROWS, SPR_DTYPE_Q4_K, "cuda_get_rows_q4_k", run_get_rows},
    {SPR_OP_GET_ROWS, SPR_DTYPE_Q6_K, "cuda_get_rows_q6_k", run_get_rows},
    {SPR_OP_ROPE, SPR_DTYPE_F32, "cuda_rope_f32", run_rope},
    {SPR_OP_KV_STORE, SPR_DTYPE_F32, "cuda_kv_store_f32", run_kv_store},
    {SPR_OP_KV_STORE, SPR_DTYPE_F16, "cuda_kv_store_f16", run_kv_store},
    {SPR_OP_LAST_ROW, SPR_DTYPE_F32, "cuda_last_row_f32", run_last_row},
    {SPR_OP_NEIGHBORHOOD_ATTN, SPR_DTYPE_F32, "cuda_neighborhood_attn_f32", run_neighborhood_attn},
    {SPR_OP_BRA, SPR_DTYPE_F32, "cuda_bra_f32", run_bra},
    {SPR_OP_PAD2D, SPR_DTYPE_F32, "cuda_pad2d_f32", run_pad2d},
    {SPR_OP_GEMM_ROWS, SPR_DTYPE_F32, "cuda_gemm_rows_f32", run_gemm_rows},
    {SPR_OP_GEMM_ROWS, SPR_DTYPE_F16, "cuda_gemm_rows_f16", run_gemm_rows},
    {SPR_OP_GEMM_ROWS, SPR_DTYPE_Q8_0, "cuda_gemm_rows_q8_0", run_gemm_rows},
    {SPR_OP_GEMM_ROWS, SPR_DTYPE_Q4_0, "cuda_gemm_rows_q4_0", run_gemm_rows},
    {SPR_OP_GEMM_ROWS, SPR_DTYPE_Q4_K, "cuda_gemm_rows_q4_k", run_gemm_rows},
    {SPR_OP_GEMM_ROWS, SPR_DTYPE_Q6_K, "cuda_gemm_rows_q6_k", run_gemm_rows},
    {SPR_OP_CORE_SELECT, SPR_DTYPE_F32, "cuda_core_select", run_core_select},
    {SPR_OP_FFN_DOWN, SPR_DTYPE_F32, "cuda_ffn_down_f32", run_ffn_down},
    {SPR_OP_FFN_DOWN, SPR_DTYPE_F16, "cuda_ffn_down_f16", run_ffn_down},
    {SPR_OP_FFN_DOWN, SPR_DTYPE_Q8_0, "cuda_ffn_down_q8_0", run_ffn_down},
    {SPR_OP_FFN_DOWN, SPR_DTYPE_Q4_0, "cuda_ffn_down_q4_0", run_ffn_down},
    {SPR_OP_FFN_DOWN, SPR_DTYPE_Q4_K, "cuda_ffn_down_q4_k", run_ffn_down},
    {SPR_OP_FFN_DOWN, SPR_DTYPE_Q6_K, "cuda_ffn_down_q6_k", run_ffn_down},
};

}  // namespace

int spr_cuda_key_dtype(const spr_tensor *ts, const spr_node *n) {
  switch (n->op) {
    case SPR_OP_GEMM:
    case SPR_OP_GEMM_MULTI:
    case SPR_OP_GEMM_ROWS:
    case SPR_OP_FFN_DOWN:
    case SPR_OP_CONV2D:
      return (int)ts[n->src[1]].type;
    case SPR_OP_GET_ROWS:
      return (int)ts[n->src[0]].type;
    case SPR_OP_KV_STORE:
      return (int)ts[n->dst].type;
    case SPR_OP_ATTENTION:
      return n->p.attn.kv_cache ? (int)ts[n->src[1]].type : (int)SPR_DTYPE_F32;
    default:
      return (int)ts[n->src[0]].type;
  }
}

const spr_cuda_kernel *spr_cuda_kernel_find(const spr_tensor *ts, const spr_node *n) {
  if (n->op == SPR_OP_ATTENTION && n->p.attn.head_dim > SPR_CUDA_MAX_HEAD_DIM) return nullptr;
  if (n->op == SPR_OP_NEIGHBORHOOD_ATTN && n->p.na.head_dim > SPR_CUDA_MAX_HEAD_DIM) return nullptr;
  if (n->op == SPR_OP_BRA && (n->p.bra.n_heads == 0 || n->p.bra.v_dim / n->p.bra.n_heads > SPR_CUDA_MAX_HEAD_DIM))
    return nullptr;
  const int dt = spr_cuda_key_dtype(ts, n);
  for (const spr_cuda_kernel &k : k_kernels) {
    if (k.op == n->op && (k.dtype < 0 || k.dtype == dt)) return &k;
  }
  return nullptr;
}

size_t spr_cuda_node_scratch(const spr_tensor *ts, const spr_node *n) {
  if (n->op == SPR_OP_BRA) return bra_scratch_bytes(&n->p.bra);
  if (n->op == SPR_OP_CORE_SELECT) return align256((size_t)ts[n->src[0]].ne[0] * sizeof(int32_t));
  if (n->op != SPR_OP_GEMM && n->op != SPR_OP_GEMM_MULTI && n->op != SPR_OP_GEMM_ROWS && n->op != SPR_OP_FFN_DOWN)
    return 0;
  const spr_tensor *x = &ts[n->src[0]], *w = &ts[n->src[1]];
  int64_t rows = spr_tensor_rows(x);
  if ((x->flags & SPR_TENSOR_DYN_ROWS) && x->max_rows > 0) rows = (int64_t)x->max_rows * x->ne[2] * x->ne[3];
  if (n->op == SPR_OP_FFN_DOWN) return ffn_down_scratch(ts, n, rows);
  if (w->type == SPR_DTYPE_F32 || w->type == SPR_DTYPE_F16) return 0;
  return xq_bytes((int)w->type, rows, x->ne[0]);
}

extern "C" const char *spr_cuda_kernel_name(const struct spr_tensor *ts, const struct spr_node *n) {
  const spr_cuda_kernel *k = spr_cuda_kernel_find(ts, n);
  return k ? k->name : nullptr;
}
