/* ops/gemm/qgemm.c — the quantized-weight ukernel tables (generated from the
 * .inc lists), selection, and the plain activation packers (see qgemm.h). */
#include "ops/gemm/qgemm.h"

#include <string.h>

#include "ops/common/fp16.h"

#if SPR_ENABLE_AVX512
const struct spr_qgemm_packed spr_q8_0_packed__avx512vnni = {
    SPR_QX_0_PGEMM_MR,
    16 * SPR_QX_0_PGEMM_NV,
    spr_qx_0_pgemm_ukernel_6x32__avx512vnni,
    spr_q8_0_packw__avx512vnni,
    spr_q8_0_packw_bytes__avx512vnni,
    spr_x8_0_packx_u8_packed__avx512vnni,
    spr_x8_0_xbytes_packed__avx512vnni,
    spr_x8_0_packx_rows_u8_packed__avx512vnni,
    "spr_qx_0_pgemm_ukernel_6x32__avx512vnni",
};
const struct spr_qgemm_packed spr_q4_0_packed__avx512vnni = {
    SPR_QX_0_PGEMM_MR,
    16 * SPR_QX_0_PGEMM_NV,
    spr_qx_0_pgemm_ukernel_6x32__avx512vnni,
    spr_q4_0_packw__avx512vnni,
    spr_q8_0_packw_bytes__avx512vnni,
    spr_x8_0_packx_u8_packed__avx512vnni,
    spr_x8_0_xbytes_packed__avx512vnni,
    spr_x8_0_packx_rows_u8_packed__avx512vnni,
    "spr_qx_0_pgemm_ukernel_6x32__avx512vnni",
};
#endif

/* ---- the portable 8-column panel (qgemm.h) ------------------------------------ */

size_t spr_qx_0_packw_8_bytes(size_t kb) {
  return kb * SPR_QX_0_PANEL8_BLOCK;
}

/* Rows past nr repeat row 0 (their sums are never stored). */
static void packw_8(const int Q4, size_t kb, size_t nr, const void *w, size_t ldw, void *wp) {
  const uint8_t *wb = w;
  uint8_t *out = wp;
  const size_t bb = Q4 ? 18 : 34;
  for (size_t c = 0; c < 8; c++) {
    const uint8_t *row = wb + (c < nr ? c : 0) * ldw;
    for (size_t b = 0; b < kb; b++) {
      const uint8_t *blk = row + bb * b;
      uint8_t *o = out + SPR_QX_0_PANEL8_BLOCK * b;
      int8_t v[32];
      for (int t = 0; t < 32; t++)
        v[t] = Q4 ? (int8_t)(((t < 16 ? blk[2 + t] : blk[2 + t - 16] >> 4) & 0x0F) - 8) : (int8_t)blk[2 + t];
      for (int q = 0; q < 8; q++) memcpy(o + 32 * q + 4 * c, v + 4 * q, 4);
      uint16_t h;
      memcpy(&h, blk, 2);
      const float d = spr_fp16_to_f32(h);
      memcpy(o + 256 + 4 * c, &d, 4);
    }
  }
}

void spr_q8_0_packw_8(size_t kb, size_t nr, const void *w, size_t ldw, void *wp) {
  packw_8(0, kb, nr, w, ldw, wp);
}

void spr_q4_0_packw_8(size_t kb, size_t nr, const void *w, size_t ldw, void *wp) {
  packw_8(1, kb, nr, w, ldw, wp);
}

#if SPR_ENABLE_NEON
#define PACKED8(name, fn, packw)         \
  const struct spr_qgemm_packed name = { \
      4, 8, fn, packw, spr_qx_0_packw_8_bytes, spr_x8_0_packx_plain, spr_x8_0_xbytes_plain, NULL, #fn};
PACKED8(spr_q8_0_packed__neon, spr_qx_0_pgemm_ukernel_4x8__neon, spr_q8_0_packw_8)
PACKED8(spr_q4_0_packed__neon, spr_qx_0_pgemm_ukernel_4x8__neon, spr_q4_0_packw_8)
PACKED8(spr_q8_0_packed__dotprod, spr_qx_0_pgemm_ukernel_4x8__dotprod, spr_q8_0_packw_8)
PACKED8(spr_q4_0_packed__dotprod, spr_qx_0_pgemm_ukernel_4x8__dotprod, spr_q4_0_packw_8)
#undef PACKED8
#endif

#define SPR_QGEMM_UKERNEL(isa, mr, nr, pack_blocks, gemm, packx, xbytes, packed, decode) \
  {(isa), (mr), (nr), (pack_blocks), gemm, packx, xbytes, packed, decode, #gemm},

const struct spr_qgemm_ukernel spr_q8_0_gemm_ukernels[] = {
#include "ops/gemm/q8_0_gemm.inc"
};
const size_t spr_q8_0_gemm_ukernels_count = sizeof spr_q8_0_gemm_ukernels / sizeof spr_q8_0_gemm_ukernels[0];

const struct spr_qgemm_ukernel spr_q4_0_gemm_ukernels[] = {
#include "ops/gemm/q4_0_gemm.inc"
};
const size_t spr_q4_0_gemm_ukernels_count = sizeof spr_q4_0_gemm_ukernels / sizeof spr_q4_0_gemm_ukernels[0];

const struct spr_qgemm_ukernel spr_q4_k_gemm_ukernels[] = {
#include "ops/gemm/q4_k_gemm.inc"
};
const size_t spr_q4_k_gemm_ukernels_count = sizeof spr_q4_k_gemm_ukernels / sizeof spr_q4_k_gemm_ukernels[0];

const struct spr_qgemm_ukernel spr_q6_k_gemm_ukernels[] = {
#include "ops/gemm/q6_k_gemm.inc"
};
const size_t spr_q6_k_gemm_ukernels_count = sizeof spr_q6_k_gemm_ukernels / sizeof spr_q6_k_gemm_ukernels[0];
#undef SPR_QGEMM_UKERNEL

bool spr_qgemm_supports(enum spr_dtype w_type) {
  return w_type == SPR_DTYPE_Q8_0 || w_type == SPR_DTYPE_Q4_0 || w_type == SPR_DTYPE_Q4_K || w_type == SPR_DTYPE_Q6_K;
}

const struct spr_qgemm_ukernel *spr_qgemm_table(enum spr_dtype w_type, size_t *count) {
  switch (w_type) {
    case SPR_DTYPE_Q8_0:
      *count = spr_q8_0_gemm_ukernels_count;
      return spr_q8_0_gemm_ukernels;
    case SPR_DTYPE_Q4_0:
      *count = spr_q4_0_gemm_ukernels_count;
      return spr_q4_0_gemm_ukernels;
    case SPR_DTYPE_Q4_K:
      *count = spr_q4_k_gemm_ukernels_count;
      return spr_q4_k_gemm_ukernels;
    case SPR_DTYPE_Q6_K:
      *count = spr_q6_k_gemm_ukernels_count;
      return spr_q6_k_gemm_ukernels;
    default:
      *count = 0;
      return NULL;
  }
}

const struct spr_qgemm_ukernel *spr_qgemm_select(enum spr_dtype w_type, uint32_t isa) {
  size_t n = 0;
  const struct spr_qgemm_ukernel *t = spr_qgemm_table(w_type, &n);
  for (size_t i = 0; i < n; i++) {
    if ((t[i].isa & ~isa) == 0) return &t[i];
  }
  return n > 0 ? &t[n - 1] : NULL;
}

/* ---- plain packers --------------------------------------------------------------- */

void spr_x8_0_quantize_block(const float *x, int8_t *qs, float *d, int32_t *s) {
  struct spr_block_q8_0 b;
  spr_quantize_row_q8_0_ref(x, &b, SPR_QK8_0);
  int32_t sum = 0;
  for (int t = 0; t < SPR_QK8_0; t++) sum += b.qs[t];
  memcpy(qs, b.qs, SPR_QK8_0);
  *d = spr_fp16_to_f32(b.d);
  *s = sum;
}

size_t spr_x8_0_xbytes_plain(size_t kb) {
  return spr_x8_0_plain_qs_bytes(kb) + 2 * spr_x8_0_plain_d_bytes(kb);
}

void spr_x8_0_packx_plain(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  int8_t *qs = xq;
  float *d = (float *)spr_x8_0_plain_d(xq, kb);
  int32_t *s = (int32_t *)spr_x8_0_plain_s(xq, kb);
  for (size_t b = b0; b < b1; b++) spr_x8_0_quantize_block(x + b * SPR_QK8_0, qs + b * SPR_QK8_0, &d[b], &s[b]);
}

size_t spr_x8_k_xbytes_plain(size_t kb) {
  return spr_x8_k_plain_qs_bytes(kb) + spr_x8_k_plain_d_bytes(kb) + spr_align_up(kb * 32, 64);
}

void spr_x8_k_packx_plain(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  int8_t *qs = xq;
  float *d = (float *)spr_x8_k_plain_d(xq, kb);
  int16_t *bs = (int16_t *)spr_x8_k_plain_bsums(xq, kb);
  for (size_t b = b0; b < b1; b++) {
    struct spr_block_q8_k blk;
    spr_quantize_row_q8_k_ref(x + b * SPR_QK_K, &blk, SPR_QK_K);
    memcpy(qs + b * SPR_QK_K, blk.qs, SPR_QK_K);
    d[b] = blk.d;
    memcpy(bs + b * 16, blk.bsums, sizeof blk.bsums);
  }
}
