/* tests/unit/test_quant.c — ggml block formats: quantizers and dequantizers.
 *
 * Three independent checks:
 *  1. Q8_0 and Q4_0 quantizers against straightforward implementations of
 *     the REFERENCE.md 4.1 formulas written here (byte-exact). Note: ggml,
 *     and so the formula here, scales by id = 1/d (x * id), not x / d; the
 *     two differ at rounding ties.
 *  2. Golden FNV-1a hashes of the bytes ggml's own reference functions
 *     (ggml/src/ggml-quants.c, built separately, -DNDEBUG, x86-64) produce
 *     for a fixed input (golden_x below), for all five quantizers and four
 *     dequantizers; set 1 holds degenerate blocks (1/d overflowing, fp16
 *     underflow, subnormals, Inf), where ggml's casts are undefined and the
 *     bytes are those of ggml on x86-64.
 *  3. Dequantizers against the REFERENCE.md formulas on random bytes, crafted
 *     blocks with known results, and round-trip error bounds. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/quant/quant.h"
#include "support/test_util.h"

/* ---- independent Q8_0 / Q4_0 from REFERENCE.md 4.1 ------------------------------ */

/* (int8)f as x86-64 compiles it: truncate to int32 (out of range / NaN ->
 * INT32_MIN), keep the low byte. Equal to the C cast when f is in range. */
static int8_t x86_i8(float f) {
  int64_t i = -2147483648LL;
  if (f == f && fabsf(f) < 2147483648.0f) i = (int64_t)f;
  const unsigned lo = (unsigned)(i & 0xff);
  return (int8_t)((int)lo - (lo > 127 ? 256 : 0));
}

static void ind_q8_0(const float *x, uint8_t *out, int nblocks) {
  for (int b = 0; b < nblocks; b++, x += 32, out += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
      if (!(amax > fabsf(x[j]))) amax = fabsf(x[j]);
    const float d = amax / 127.0f, id = d == 0.0f ? 0.0f : 1.0f / d;
    const uint16_t h = spr_fp16_from_f32(d);
    out[0] = (uint8_t)(h & 0xff), out[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < 32; j++) out[2 + j] = (uint8_t)x86_i8(roundf(x[j] * id));
  }
}

static void ind_q4_0(const float *x, uint8_t *out, int nblocks) {
  for (int b = 0; b < nblocks; b++, x += 32, out += 18) {
    int at = 0; /* first element of largest magnitude */
    for (int j = 1; j < 32; j++)
      if (fabsf(x[j]) > fabsf(x[at])) at = j;
    const float max = fabsf(x[at]) > 0.0f ? x[at] : 0.0f; /* +0 when every |x| is 0 */
    const float d = max / -8.0f;                          /* -0 for a zero block: fp16 0x8000 */
    const float id = d == 0.0f ? 0.0f : 1.0f / d;
    const uint16_t h = spr_fp16_from_f32(d);
    out[0] = (uint8_t)(h & 0xff), out[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < 16; j++) {
      int lo = x86_i8(x[j] * id + 8.5f), hi = x86_i8(x[j + 16] * id + 8.5f);
      if (lo > 15) lo = 15;
      if (hi > 15) hi = 15;
      out[2 + j] = (uint8_t)(((unsigned)lo & 0xff) | (((unsigned)hi & 0xff) << 4));
    }
  }
}

/* ---- independent dequantizers (REFERENCE.md 4.1) -------------------------------------- */

static float h16(const uint8_t *p) {
  return spr_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

static void ind_deq_q4_k(const uint8_t *blk, float *y) {
  const float d = h16(blk), dmin = h16(blk + 2);
  const uint8_t *s = blk + 4, *qs = blk + 16;
  for (int j = 0; j < 8; j++) {
    int sc, m;
    if (j < 4) {
      sc = s[j] & 63, m = s[j + 4] & 63;
    } else {
      sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
      m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    const int c = j / 2, shift = (j & 1) * 4;
    for (int l = 0; l < 32; l++) y[32 * j + l] = d * sc * ((qs[32 * c + l] >> shift) & 0xF) - dmin * m;
  }
}

static void ind_deq_q6_k(const uint8_t *blk, float *y) {
  const float d = h16(blk + 208);
  for (int v = 0; v < 256; v++) {
    const int h = v / 128, r = v % 128, quarter = r / 32, l = r % 32;
    const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
    const int low =
        quarter & 1 ? (quarter & 2 ? ql[l + 32] >> 4 : ql[l + 32] & 0xF) : (quarter & 2 ? ql[l] >> 4 : ql[l] & 0xF);
    const int q = low | (((qh[l] >> (2 * quarter)) & 3) << 4);
    const int8_t sc = (int8_t)blk[192 + v / 16];
    y[v] = d * sc * (q - 32);
  }
}

/* ---- golden data from ggml ------------------------------------------------------------ */

static float golden_x(int set, int i) {
  uint32_t h = (uint32_t)i * 2654435761u;
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  float v = (float)((int)(h % 20001u) - 10000) / 10000.0f;
  static const float mag[8] = {1.0f, 0.01f, 30.0f, 0.5f, 0.0f, 2.0f, 1e-3f, 7.0f};
  if (set == 0) {
    if (i % 97 == 13) v *= 5;
    return v * mag[(i / 32) % 8];
  }
  switch ((i / 32) % 4) {
    case 0:
      return v * 1e-38f;
    case 1:
      return v * 1e-42f;
    case 2:
      return (i % 9 == 0) ? INFINITY : v;
    default:
      return v * 3e-37f;
  }
}

static uint64_t fnv(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

enum { GN = 1024 };
struct golden {
  enum spr_dtype type; /* Q8_K has no dtype: SPR_DTYPE_I8 stands for it */
  size_t bytes;
  uint64_t q[2], deq; /* per set; dequantized floats of set 0 */
};
static const struct golden k_golden[] = {
    {SPR_DTYPE_Q8_0, GN / 32 * 34, {0x2ee99059ffd21d52ull, 0x26b54213f5895d83ull}, 0x6d3cff8acac28d0aull},
    {SPR_DTYPE_Q4_0, GN / 32 * 18, {0xfb63adc10f1c7a65ull, 0x1d17f89d01b2fb56ull}, 0xa05c4d7e3f7daad0ull},
    {SPR_DTYPE_Q4_K, GN / 256 * 144, {0xd848ea7dcedc066eull, 0x8dd1cf09b7463ea3ull}, 0x138a99287c029e7eull},
    {SPR_DTYPE_Q6_K, GN / 256 * 210, {0xbe96ab0132c9ba31ull, 0x04c6042f6f7a18e3ull}, 0x11f6297fe7051e80ull},
    {SPR_DTYPE_I8, GN / 256 * 292, {0x90d4856d4b9f1818ull, 0xfd6f7907187067a3ull}, 0},
};

static void test_golden_ggml(void **state) {
  (void)state;
  float *x = malloc(GN * sizeof(float)), *y = malloc(GN * sizeof(float));
  uint8_t *q = malloc(GN / 256 * 292);
  for (int set = 0; set < 2; set++) {
    for (int i = 0; i < GN; i++) x[i] = golden_x(set, i);
    for (size_t g = 0; g < sizeof k_golden / sizeof k_golden[0]; g++) {
      const struct golden *G = &k_golden[g];
      memset(q, 0, GN / 256 * 292);
      const char *name = G->type == SPR_DTYPE_I8 ? "q8_k" : spr_dtype_name(G->type);
      if (G->type == SPR_DTYPE_I8)
        spr_quantize_row_q8_k_ref(x, q, GN);
      else
        spr_quantize_row_get(G->type)(x, q, GN);
      const uint64_t h = fnv(q, G->bytes);
      if (h != G->q[set])
        fail_msg("%s set %d: quantized bytes hash 0x%016llx, ggml 0x%016llx", name, set, (unsigned long long)h,
                 (unsigned long long)G->q[set]);
      if (set == 0 && G->deq != 0) {
        spr_dequantize_row_get(G->type)(q, y, GN);
        const uint64_t hd = fnv(y, GN * sizeof(float));
        if (hd != G->deq)
          fail_msg("%s: dequantized hash 0x%016llx, ggml 0x%016llx", name, (unsigned long long)hd,
                   (unsigned long long)G->deq);
      }
    }
  }
  free(x), free(y), free(q);
}

/* ---- Q8_0 / Q4_0 against the independent implementations ----------------------------- */

static int j_of(uint64_t s) {
  return (int)(s % 32);
}

/* Block b of a test row: random with a per-block magnitude, or crafted. */
static void fill_case(float *x, int n, uint64_t seed) {
  uint64_t s = seed;
  for (int b = 0; b < n / 32; b++) {
    float *xb = x + 32 * b;
    const int kind = (int)(spr_test_rng_next(&s) % 12);
    const float mag = ldexpf(1.0f, (int)(spr_test_rng_next(&s) % 40) - 20);
    for (int j = 0; j < 32; j++) xb[j] = spr_test_rng_uniform(&s, -mag, mag);
    switch (kind) {
      case 0:
        memset(xb, 0, 32 * sizeof(float));
        break; /* all zero */
      case 1:
        memset(xb, 0, 32 * sizeof(float)), xb[j_of(s)] = 3.0f;
        break; /* single max */
      case 2:
        memset(xb, 0, 32 * sizeof(float)), xb[j_of(s)] = -2.0f;
        break; /* single negative max */
      case 3:
        xb[5] = -mag * 1.5f, xb[9] = mag * 1.5f;
        break; /* |max| tie: first wins */
      case 4:  /* x * id lands on .5 */
        for (int j = 0; j < 32; j++) xb[j] = (float)((int)(spr_test_rng_next(&s) % 255) - 127) * 0.5f;
        xb[0] = 127.0f;
        break;
      case 5:
        for (int j = 0; j < 32; j++) xb[j] *= 1e-30f;
        break; /* small */
      case 6:
        for (int j = 0; j < 32; j++) xb[j] = spr_test_rng_uniform(&s, -1e-40f, 1e-40f);
        break; /* subnormal */
      case 7:
        for (int j = 0; j < 32; j++) xb[j] = spr_test_rng_uniform(&s, -1e-38f, 1e-38f);
        break; /* 1/d overflows */
      default:
        break;
    }
  }
}

static void expect_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n, int bsize,
                         uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    if (got[i] != want[i])
      fail_msg("%s seed %llu: byte %zu (block %zu) = 0x%02x, expected 0x%02x", what, (unsigned long long)seed, i,
               i / (size_t)bsize, got[i], want[i]);
  }
}

static void test_q8_0_q4_0_exact(void **state) {
  (void)state;
  enum { NB = 64, N = NB * 32 };
  float *x = malloc(N * sizeof(float));
  uint8_t *a = malloc(NB * 34), *b = malloc(NB * 34);
  for (uint64_t seed = 1; seed <= 300; seed++) {
    fill_case(x, N, seed);
    spr_quantize_row_q8_0_ref(x, a, N);
    ind_q8_0(x, b, NB);
    expect_bytes("q8_0", a, b, NB * 34, 34, seed);
    spr_quantize_row_q4_0_ref(x, a, N);
    ind_q4_0(x, b, NB);
    expect_bytes("q4_0", a, b, NB * 18, 18, seed);
  }
  free(x), free(a), free(b);
}

/* ---- crafted blocks with known codes ----------------------------------------------------- */

static void test_crafted(void **state) {
  (void)state;
  float x[256], y[256];
  struct spr_block_q8_0 q8;
  struct spr_block_q4_0 q4;
  /* all zero: d = 0 (Q4_0: max / -8 = -0, fp16 0x8000, as ggml); Q4_0 stores code 8 (value 0) */
  memset(x, 0, sizeof x);
  spr_quantize_row_q8_0_ref(x, &q8, 32);
  assert_int_equal(q8.d, 0);
  for (int j = 0; j < 32; j++) assert_int_equal(q8.qs[j], 0);
  spr_quantize_row_q4_0_ref(x, &q4, 32);
  assert_int_equal(q4.d, 0x8000);
  for (int j = 0; j < 16; j++) assert_int_equal(q4.qs[j], 0x88);
  struct spr_block_q4_k qk;
  struct spr_block_q6_k q6;
  struct spr_block_q8_k q8k;
  spr_quantize_row_q4_k_ref(x, &qk, 256);
  spr_quantize_row_q6_k_ref(x, &q6, 256);
  spr_quantize_row_q8_k_ref(x, &q8k, 256);
  const uint8_t zero[292] = {0};
  assert_memory_equal(&qk, zero, sizeof qk);
  assert_memory_equal(&q6, zero, sizeof q6);
  assert_memory_equal(&q8k, zero, sizeof q8k);

  /* single max element: code +-127 / Q4_0's -8 end; the rest code 0 */
  x[7] = 3.0f;
  spr_quantize_row_q8_0_ref(x, &q8, 32);
  assert_int_equal(q8.d, spr_fp16_from_f32(3.0f / 127.0f));
  for (int j = 0; j < 32; j++) assert_int_equal(q8.qs[j], j == 7 ? 127 : 0);
  spr_quantize_row_q4_0_ref(x, &q4, 32);
  assert_int_equal(q4.d, spr_fp16_from_f32(-0.375f)); /* 3 / -8 */
  for (int j = 0; j < 16; j++) assert_int_equal(q4.qs[j], j == 7 ? 0x80 : 0x88);
  spr_dequantize_row_q4_0(&q4, y, 32);
  assert_true(y[7] == 3.0f && y[8] == 0.0f);

  /* negative max: Q4_0 maps it exactly to code 0; a positive value as large clips to code 15 (+7 d) */
  x[7] = -2.0f, x[20] = 2.0f;
  spr_quantize_row_q4_0_ref(x, &q4, 32);
  assert_int_equal(q4.d, spr_fp16_from_f32(0.25f));
  assert_int_equal(q4.qs[7] & 0xF, 0);
  assert_int_equal(q4.qs[4] >> 4, 15); /* x[20] */
  spr_dequantize_row_q4_0(&q4, y, 32);
  assert_true(y[7] == -2.0f && y[20] == 1.75f);
  spr_quantize_row_q8_0_ref(x, &q8, 32);
  assert_int_equal(q8.qs[7], -127);
  assert_int_equal(q8.qs[20], 127);

  /* ties: Q8_0 uses roundf (half away from zero), Q8_K ggml's nearest_int (half to even) */
  memset(x, 0, sizeof x);
  x[0] = 127.0f, x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f, x[4] = 1.5f, x[5] = -0.5f;
  spr_quantize_row_q8_0_ref(x, &q8, 32); /* d = 1 */
  assert_int_equal(q8.d, spr_fp16_from_f32(1.0f));
  assert_int_equal(q8.qs[1], 3);
  assert_int_equal(q8.qs[2], -3);
  assert_int_equal(q8.qs[3], 1);
  assert_int_equal(q8.qs[4], 2);
  assert_int_equal(q8.qs[5], -1);
  x[0] = -127.0f; /* Q8_K: iscale = -127 / max = 1 */
  spr_quantize_row_q8_k_ref(x, &q8k, 256);
  assert_true(q8k.d == 1.0f);
  assert_int_equal(q8k.qs[1], 2);
  assert_int_equal(q8k.qs[2], -2);
  assert_int_equal(q8k.qs[3], 0);
  assert_int_equal(q8k.qs[4], 2);
  assert_int_equal(q8k.qs[5], 0);
  assert_int_equal(q8k.bsums[0], -127 + 2 - 2 + 0 + 2 + 0);

  /* tiny values: fp16 scales underflow to 0, so everything dequantizes to 0 */
  for (int j = 0; j < 256; j++) x[j] = ldexpf((float)(j % 17) - 8.0f, -140);
  spr_quantize_row_q8_0_ref(x, &q8, 32);
  spr_dequantize_row_q8_0(&q8, y, 32);
  for (int j = 0; j < 32; j++) assert_true(y[j] == 0.0f);
  spr_quantize_row_q4_k_ref(x, &qk, 256);
  spr_dequantize_row_q4_k(&qk, y, 256);
  for (int j = 0; j < 256; j++) assert_true(fabsf(y[j]) == 0.0f);
  spr_quantize_row_q6_k_ref(x, &q6, 256);
  spr_dequantize_row_q6_k(&q6, y, 256);
  for (int j = 0; j < 256; j++) assert_true(fabsf(y[j]) == 0.0f);
}

/* ---- dequantizers against the formulas on random bytes ---------------------------------- */

static bool same_float(float a, float b) {
  uint32_t ua, ub;
  memcpy(&ua, &a, 4), memcpy(&ub, &b, 4);
  return ua == ub || (a != a && b != b);
}

static void test_dequant_formulas(void **state) {
  (void)state;
  uint64_t s = 42;
  uint8_t blk[4 * 210];
  float y[1024], z[1024];
  for (int rep = 0; rep < 200; rep++) {
    for (size_t i = 0; i < sizeof blk; i++) blk[i] = (uint8_t)spr_test_rng_next(&s);
    spr_dequantize_row_q4_k(blk, y, 4 * 256);
    for (int b = 0; b < 4; b++) ind_deq_q4_k(blk + 144 * b, z + 256 * b);
    for (int i = 0; i < 1024; i++)
      if (!same_float(y[i], z[i])) fail_msg("q4_k rep %d value %d: %g, formula %g", rep, i, y[i], z[i]);
    spr_dequantize_row_q6_k(blk, y, 4 * 256);
    for (int b = 0; b < 4; b++) ind_deq_q6_k(blk + 210 * b, z + 256 * b);
    for (int i = 0; i < 1024; i++)
      if (!same_float(y[i], z[i])) fail_msg("q6_k rep %d value %d: %g, formula %g", rep, i, y[i], z[i]);
    spr_dequantize_row_q8_0(blk, y, 32 * 24);
    for (int b = 0; b < 24; b++)
      for (int j = 0; j < 32; j++) {
        const float want = (int8_t)blk[34 * b + 2 + j] * h16(blk + 34 * b);
        if (!same_float(y[32 * b + j], want)) fail_msg("q8_0 rep %d block %d value %d", rep, b, j);
      }
    spr_dequantize_row_q4_0(blk, y, 32 * 32);
    for (int b = 0; b < 32; b++)
      for (int j = 0; j < 16; j++) {
        const uint8_t q = blk[18 * b + 2 + j];
        const float d = h16(blk + 18 * b);
        if (!same_float(y[32 * b + j], ((q & 0xF) - 8) * d) || !same_float(y[32 * b + j + 16], ((q >> 4) - 8) * d))
          fail_msg("q4_0 rep %d block %d value %d", rep, b, j);
      }
  }
}

/* ---- round trips ------------------------------------------------------------------------------ */

/* Max error over a row, relative to the row's block max magnitude. Bounds:
 *  Q8_0 half a step (amax/254) plus the fp16 rounding of d (|q| <= 127 steps of
 *  2^-11 relative); Q4_0 half a step of amax/8 except the clipped +8 end (a
 *  full step); Q4_K/Q6_K (6-bit scales, searched) measured with margin. */
static void roundtrip(enum spr_dtype t, int qk, double bound, uint64_t seed) {
  enum { N = 4096 };
  float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
  void *q = malloc(N * sizeof(float));
  spr_test_fill(x, N, seed, -1.0f, 1.0f);
  for (int i = 0; i < N; i += 97) x[i] *= 4.0f; /* outliers */
  spr_quantize_row_get(t)(x, q, N);
  assert_int_equal(spr_dequantize_row(t, q, y, N), SPR_STATUS_OK);
  double worst = 0, se = 0;
  for (int b = 0; b < N / qk; b++) {
    float amax = 0;
    for (int j = 0; j < qk; j++) amax = fmaxf(amax, fabsf(x[b * qk + j]));
    for (int j = 0; j < qk; j++) {
      const double e = fabs((double)y[b * qk + j] - x[b * qk + j]);
      se += e * e;
      if (e / amax > worst) worst = e / amax;
    }
  }
  printf("%s: max error %.4f of the block max, rmse %.5f\n", spr_dtype_name(t), worst, sqrt(se / N));
  if (worst > bound) fail_msg("%s round trip: max error %.5f of the block max > %.5f", spr_dtype_name(t), worst, bound);
  free(x), free(y), free(q);
}

static void test_roundtrip(void **state) {
  (void)state;
  roundtrip(SPR_DTYPE_Q8_0, 32, 0.5 / 127 + 127.0 / 127 * 0x1p-11 + 1e-6, 1);
  roundtrip(SPR_DTYPE_Q4_0, 32, 1.0 / 8 + 8.0 / 8 * 0x1p-11 + 1e-6, 2);
  roundtrip(SPR_DTYPE_Q4_K, 256, 0.12, 3);
  roundtrip(SPR_DTYPE_Q6_K, 256, 0.03, 4);
  roundtrip(SPR_DTYPE_F16, 1, 0x1p-11, 5);
  roundtrip(SPR_DTYPE_F32, 1, 0.0, 6);
}

/* ---- dispatch --------------------------------------------------------------------------------- */

static void test_dispatch(void **state) {
  (void)state;
  float y[64];
  const uint8_t buf[68] = {0};
  assert_int_equal(spr_dequantize_row(SPR_DTYPE_I8, buf, y, 32), SPR_STATUS_UNSUPPORTED);
  assert_int_equal(spr_dequantize_row(SPR_DTYPE_Q8_0, buf, y, 33), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_dequantize_row(SPR_DTYPE_Q8_0, buf, y, 0), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_dequantize_row(SPR_DTYPE_Q8_0, buf, y, 64), SPR_STATUS_OK);
  assert_null(spr_quantize_row_get(SPR_DTYPE_I32));
  assert_non_null(spr_dequantize_row_get(SPR_DTYPE_Q6_K));
  assert_int_equal(spr_quant_row_bytes(SPR_DTYPE_Q4_0, 2048), 2048 / 32 * 18);
  assert_int_equal(spr_quant_row_bytes(SPR_DTYPE_Q6_K, 512), 2 * 210);
  assert_int_equal(spr_quant_row_bytes(SPR_DTYPE_Q4_K, 300), 0);
  assert_int_equal(spr_quant_row_bytes(SPR_DTYPE_F16, 3), 6);
  /* f16 rows: the embedding lookup path */
  const uint16_t h[2] = {0x3c00, 0xc000};
  assert_int_equal(spr_dequantize_row(SPR_DTYPE_F16, h, y, 2), SPR_STATUS_OK);
  assert_true(y[0] == 1.0f && y[1] == -2.0f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_ggml),      cmocka_unit_test(test_q8_0_q4_0_exact), cmocka_unit_test(test_crafted),
      cmocka_unit_test(test_dequant_formulas), cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_dispatch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
