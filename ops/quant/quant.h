/* ops/quant/quant.h — ggml block formats, reference quantizers and dequantizers.
 *
 * Every function here is bit-exact with ggml's reference implementation of
 * the same name (ggml/src/ggml-quants.c: quantize_row_*_ref, dequantize_row_*,
 * nearest_int, make_qx_quants, make_qkx2_quants): a model quantized by
 * `sparrow quantize` is byte-identical to one made by llama.cpp's reference
 * path (llama-quantize without an importance matrix uses the same *_ref
 * functions for these types), and a GGUF made by llama.cpp dequantizes to
 * the same floats. Formats (all little-endian, `d`/`dmin` are IEEE fp16 bits):
 *
 *   Q8_0  32 values, 34 B   { u16 d; i8 qs[32] }            y = d * qs[j]
 *   Q4_0  32 values, 18 B   { u16 d; u8 qs[16] }            y[j] = d * ((qs[j] & 15) - 8),
 *                                                           y[j+16] = d * ((qs[j] >> 4) - 8)
 *   Q4_K 256 values, 144 B  { u16 d, dmin; u8 scales[12]; u8 qs[128] }
 *         8 sub-blocks of 32 with 6-bit scale sc and min m (spr_q4_k_scale_min);
 *         qs[32c + l] holds value 64c + l (low nibble) and 64c + 32 + l (high);
 *         y = d * sc * q - dmin * m
 *   Q6_K 256 values, 210 B  { u8 ql[128], qh[64]; i8 scales[16]; u16 d }
 *         per half h (128 values, ql += 64h, qh += 32h, scales += 8h), l < 32:
 *         q(l)     = (ql[l]    & 15) | ((qh[l] >> 0 & 3) << 4)
 *         q(l+32)  = (ql[l+32] & 15) | ((qh[l] >> 2 & 3) << 4)
 *         q(l+64)  = (ql[l]   >> 4) | ((qh[l] >> 4 & 3) << 4)
 *         q(l+96)  = (ql[l+32] >> 4) | ((qh[l] >> 6 & 3) << 4)
 *         y(v) = d * scales[v / 16] * (q(v) - 32)
 *   Q8_K 256 values, 292 B  { f32 d; i8 qs[256]; i16 bsums[16] }   activation side only:
 *         y = d * qs[j]; bsums[g] = sum of qs[16g .. 16g+15]
 *
 * k (values per row) must be a multiple of the block size (callers check;
 * the functions assume it). Inputs are never read beyond k values / k/QK
 * blocks. Non-finite inputs, and blocks so small that ggml's 1/d overflows
 * (|max| < ~1e-37), give the codes ggml produces on x86-64, never UB. */
#ifndef SPR_OPS_QUANT_QUANT_H
#define SPR_OPS_QUANT_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparrow/types.h"

#define SPR_QK8_0 32
#define SPR_QK4_0 32
#define SPR_QK_K 256

struct spr_block_q8_0 {
  uint16_t d;
  int8_t qs[SPR_QK8_0];
};

struct spr_block_q4_0 {
  uint16_t d;
  uint8_t qs[SPR_QK4_0 / 2];
};

struct spr_block_q4_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[SPR_QK_K / 2];
};

struct spr_block_q6_k {
  uint8_t ql[SPR_QK_K / 2];
  uint8_t qh[SPR_QK_K / 4];
  int8_t scales[SPR_QK_K / 16];
  uint16_t d;
};

struct spr_block_q8_k {
  float d;
  int8_t qs[SPR_QK_K];
  int16_t bsums[SPR_QK_K / 16];
};

_Static_assert(sizeof(struct spr_block_q8_0) == 34, "q8_0 block is 34 bytes");
_Static_assert(sizeof(struct spr_block_q4_0) == 18, "q4_0 block is 18 bytes");
_Static_assert(sizeof(struct spr_block_q4_k) == 144, "q4_K block is 144 bytes");
_Static_assert(sizeof(struct spr_block_q6_k) == 210, "q6_K block is 210 bytes");
_Static_assert(sizeof(struct spr_block_q8_k) == 292, "q8_K block is 292 bytes");

/* ---- reference quantizers: x[k] floats -> k/QK blocks at y ---------------- */
void spr_quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void spr_quantize_row_q4_0_ref(const float *x, void *y, int64_t k);
void spr_quantize_row_q4_k_ref(const float *x, void *y, int64_t k);
void spr_quantize_row_q6_k_ref(const float *x, void *y, int64_t k);
void spr_quantize_row_q8_k_ref(const float *x, void *y, int64_t k);

/* ---- dequantizers: k/QK blocks at x -> y[k] --------------------------------- */
void spr_dequantize_row_q8_0(const void *x, float *y, int64_t k);
void spr_dequantize_row_q4_0(const void *x, float *y, int64_t k);
void spr_dequantize_row_q4_k(const void *x, float *y, int64_t k);
void spr_dequantize_row_q6_k(const void *x, float *y, int64_t k);
void spr_dequantize_row_q8_k(const void *x, float *y, int64_t k);

/* ggml's get_scale_min_k4: 6-bit scale and min of sub-block j (0..7) of a
 * Q4_K block from its 12 packed bytes. */
static inline void spr_q4_k_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
  if (j < 4) {
    *sc = (uint8_t)(s[j] & 63);
    *m = (uint8_t)(s[j + 4] & 63);
  } else {
    *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

/* ---- dispatch by type (F32, F16, Q8_0, Q4_0, Q4_K, Q6_K) ---------------------- */
typedef void (*spr_quantize_row_fn)(const float *x, void *y, int64_t k);
typedef void (*spr_dequantize_row_fn)(const void *x, float *y, int64_t k);

/* NULL for a type without a row (de)quantizer. F32 is a copy, F16 converts
 * with round-to-nearest-even (ops/common/fp16.h). */
spr_quantize_row_fn spr_quantize_row_get(enum spr_dtype t);
spr_dequantize_row_fn spr_dequantize_row_get(enum spr_dtype t);

/* Dequantizes k values of type t at x into y (the LLM's token-embedding
 * lookup: row r of a [n_vocab][n_embd] matrix starts at r * row bytes).
 * UNSUPPORTED for a type without a dequantizer, INVALID_ARGUMENT when k is
 * not a positive multiple of the type's block size. */
enum spr_status spr_dequantize_row(enum spr_dtype t, const void *x, float *y, int64_t k);

/* Bytes of one row of k values of type t (0 when k is not a positive
 * multiple of the block size, or t is unknown). */
size_t spr_quant_row_bytes(enum spr_dtype t, int64_t k);

#endif
