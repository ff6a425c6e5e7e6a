/* ops/gemm/qgemm.h — GEMM/GEMV with quantized weights (internal to ops/).
 *
 * Problem: C[M,N] = act(X[M,K] . W[N,K]^T + bias[N]) + R[M,N] with W in a
 * ggml block format (Q8_0, Q4_0, Q4_K, Q6_K), a zero-copy view of the model
 * file (row n = K/QK consecutive blocks). As in ggml, the activations are
 * quantized on the fly into the weight type's dot-product partner
 * ("vec_dot_type"): Q8_0 blocks of 32 for Q8_0/Q4_0 weights, Q8_K blocks of
 * 256 for Q4_K/Q6_K. The dot products run on integers (int8 x int8 or
 * uint8 x int8 summed in int32, exact), and each block's integer sum is
 * scaled in f32 by the product of the two block scales:
 *   Q8_0/Q4_0:  c += (dw_b * dx_b) * sum_t qw_t qx_t          (qw of Q4_0 = nibble - 8)
 *   Q4_K:       c += (d * dx) * sum_s sc_s sum_t q_t qx_t - (dmin * dx) * sum_s m_s sum_t qx_t
 *   Q6_K:       c += (d * dx) * sum_g sc_g sum_t (q_t - 32) qx_t
 * (dx of Q8_0 activations is the fp16-rounded scale, as ggml's vec_dot.)
 *
 * Quantized activations: each ukernel entry names its own X packer and row
 * size, because SIMD kernels want the activations laid out to match how
 * they unpack the weights (and some precomputed per-block sums). Every
 * packer produces the SAME int8 values and scales as ggml's reference
 * quantizer (spr_quantize_row_q8_0_ref / _q8_k_ref); only the layout differs.
 * The "plain" layouts, used by the scalar/AVX2/NEON kernels:
 *   x8_0 row (kb blocks):  i8 qs[kb][32] | f32 d[kb] | i32 s[kb]        (sections 64-aligned)
 *                          d = fp16->f32 of the block's fp16 scale, s = sum of the block's qs
 *   x8_k row (kb blocks):  i8 qs[kb][256] | f32 d[kb] | i16 bsums[kb][16]
 *
 * Tiles: a ukernel computes an mr x nr tile (mr <= MR activation rows, nr <=
 * NR weight rows) over the whole K, so each weight block is read once per
 * tile of rows and each output element is produced by one ukernel call.
 * The driver splits N into 64-row blocks (tasks) and M into row chunks
 * whose quantized rows fit L2; tile bounds depend on the shapes only, so
 * results are bit-identical for any thread count. For M = 1 (decode) this
 * is a GEMV threaded by whole 64-row chunks of W. */
#ifndef SPR_OPS_GEMM_QGEMM_H
#define SPR_OPS_GEMM_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/gemm/gemm.h"
#include "ops/quant/quant.h"
#include "runtime/util.h"

/* c[i*ldc + j] = sum_k x_i[k] w_j[k] (quantized as above) + bias[j] for
 * i < mr, j < nr (1 <= mr <= MR, 1 <= nr <= NR; for mr = 1, a GEMV, nr may be
 * any count: the driver passes a whole block of weight rows).
 *   kb   weight blocks per row (K / QK of the weight type)
 *   w    first weight row; row j at w + j*ldw bytes (no alignment assumed)
 *   xq   first packed activation row; row i at xq + i*ldx bytes (64-aligned)
 *   bias NULL or nr floats */
typedef void (*spr_qgemm_ukernel_fn)(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq,
                                     size_t ldx, const float *bias, float *c, size_t ldc);

/* Quantizes blocks [b0, b1) of one activation row x (kb blocks in all) into
 * the packed row xq (which holds the whole row). b0 is a multiple of the
 * entry's pack_blocks; b1 too, or b1 == kb. */
typedef void (*spr_qgemm_packx_fn)(size_t kb, size_t b0, size_t b1, const float *x, void *xq);

/* Bytes of one packed activation row of kb blocks (a multiple of 64). */
typedef size_t (*spr_qgemm_xbytes_fn)(size_t kb);

/* ---- packed-panel path (GEMM, M >= SPR_QGEMM_PACKED_MIN_M) --------------------
 * An entry may carry a second path for many activation rows: the driver
 * packs a panel of up to nr weight rows (output columns) into the thread's
 * scratch once per task (packw, wbytes(kb) bytes, 64-aligned), quantizes
 * the activation rows with its own packer (packx / xbytes, the same int8
 * values and scales as ggml's reference quantizer, per 32-value block), and
 * runs gemm over row tiles of up to mr rows against the panel:
 *   c[i*ldc + j] = sum_k x_i[k] w_j[k] + bias[j], i < mr_, j < nr_
 * (each output one call, over the whole K: bit-identical for any thread
 * count). The layouts are private to the ISA file. */
typedef void (*spr_qgemm_pgemm_fn)(size_t kb, size_t mr, size_t nr, const void *wp, const void *xq, size_t ldx,
                                   const float *bias, float *c, size_t ldc);
typedef void (*spr_qgemm_packw_fn)(size_t kb, size_t nr, const void *w, size_t ldw, void *wp);
/* packx over whole rows: rows x rows ldx floats apart into packed rows xrow bytes apart */
typedef void (*spr_qgemm_packx_rows_fn)(size_t kb, size_t rows, const float *x, size_t ldx, void *xq, size_t xrow);

struct spr_qgemm_packed {
  uint8_t mr, nr;
  spr_qgemm_pgemm_fn gemm;
  spr_qgemm_packw_fn packw;
  spr_qgemm_xbytes_fn wbytes;
  spr_qgemm_packx_fn packx;
  spr_qgemm_xbytes_fn xbytes;
  spr_qgemm_packx_rows_fn packx_rows; /* NULL: packx row by row */
  const char *name;
};

/* The portable 8-column panel of the NEON packed kernels
 * (qgemm_packed_neon_impl.h): per block 8 quads x 8 columns x 4 signed
 * codes, then 8 f32 scales. */
#define SPR_QX_0_PANEL8_BLOCK 288
void spr_q8_0_packw_8(size_t kb, size_t nr, const void *w, size_t ldw, void *wp);
void spr_q4_0_packw_8(size_t kb, size_t nr, const void *w, size_t ldw, void *wp);
size_t spr_qx_0_packw_8_bytes(size_t kb);
#if SPR_ENABLE_NEON
void spr_qx_0_pgemm_ukernel_4x8__neon(size_t kb, size_t mr, size_t nr, const void *wp, const void *xq, size_t ldx,
                                      const float *bias, float *c, size_t ldc);
void spr_qx_0_pgemm_ukernel_4x8__dotprod(size_t kb, size_t mr, size_t nr, const void *wp, const void *xq, size_t ldx,
                                         const float *bias, float *c, size_t ldc);
extern const struct spr_qgemm_packed spr_q8_0_packed__neon, spr_q4_0_packed__neon;
extern const struct spr_qgemm_packed spr_q8_0_packed__dotprod, spr_q4_0_packed__dotprod;
#endif

/* ---- decode path (M = 1) ----------------------------------------------------------
 * An entry may carry its own GEMV for a lone activation row, with its own
 * packer (packx / xbytes: the same int8 values and scales as ggml's
 * reference quantizer, the layout private to the ISA file):
 *   c[j] = sum_k x[k] w_j[k] + bias[j] for j < nr, row j at w + j*ldw
 * (the same sums as the entry's gemm, in the kernel's own order). The rows
 * after the call's last one, up to n_ahead more, belong to the same matrix:
 * the kernel may prefetch them (the driver's tasks are runs of rows, so the
 * next task of a thread continues the stream). The driver takes this path
 * whenever a run has one activation row. Why a second GEMV: on the Zen 4
 * host the AVX-512 Q4_0 tile kernel at mr = 1 streamed a 2.4 MB matrix from
 * DRAM at 20-21 GB/s (2 threads), the row kernel of the sparse decode
 * (ops/coreffn/qrows_avx512vnni.c: 3 loads and 2-deep dot chains per 8
 * blocks, each row prefetched whole 8 rows ahead) at 32-34 GB/s. */
typedef void (*spr_qgemm_gemv_fn)(size_t kb, size_t nr, const void *w, size_t ldw, size_t n_ahead, const void *xq,
                                  const float *bias, float *c);
struct spr_qgemm_decode {
  spr_qgemm_gemv_fn gemv;
  spr_qgemm_packx_fn packx;
  spr_qgemm_xbytes_fn xbytes;
  const char *name;
};
#if SPR_ENABLE_AVX512
void spr_q4_0_gemv_rows__avx512vnni(size_t kb, size_t nr, const void *w, size_t ldw, size_t n_ahead, const void *xq,
                                    const float *bias, float *c);
/* in ops/coreffn/qrows_avx512vnni.c, with the row kernel it shares (Q8_0 has no
 * decode path: the same wiring over that file's Q8_0 row kernel decoded TinyLlama-shape
 * Q8_0 at 20.0-22.0 tok/s against 21.7-23.4 for the tile kernel, alternated, 2026-11-30) */
extern const struct spr_qgemm_decode spr_q4_0_decode__avx512vnni;
#endif

/* The driver takes the packed path for row chunks of at least this many rows. */
#define SPR_QGEMM_PACKED_MIN_M 8

struct spr_qgemm_ukernel {
  uint32_t isa;
  uint8_t mr, nr;
  uint8_t pack_blocks;
  spr_qgemm_ukernel_fn gemm;
  spr_qgemm_packx_fn packx;
  spr_qgemm_xbytes_fn xbytes;
  const struct spr_qgemm_packed *packed; /* NULL: none */
  const struct spr_qgemm_decode *decode; /* NULL: decode runs gemm with mr = 1 */
  const char *name;
};

#if SPR_ENABLE_AVX512
/* the AVX-512 VNNI tile: rows, and zmm vectors of 16 columns */
#ifndef SPR_QX_0_PGEMM_MR
#define SPR_QX_0_PGEMM_MR 6
#endif
#ifndef SPR_QX_0_PGEMM_NV
#define SPR_QX_0_PGEMM_NV 2
#endif
void spr_qx_0_pgemm_ukernel_6x32__avx512vnni(size_t kb, size_t mr, size_t nr, const void *wp, const void *xq,
                                             size_t ldx, const float *bias, float *c, size_t ldc);
void spr_q8_0_packw__avx512vnni(size_t kb, size_t nr, const void *w, size_t ldw, void *wp);
void spr_q4_0_packw__avx512vnni(size_t kb, size_t nr, const void *w, size_t ldw, void *wp);
size_t spr_q8_0_packw_bytes__avx512vnni(size_t kb);
void spr_x8_0_packx_u8_packed__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq);
void spr_x8_0_packx_rows_u8_packed__avx512vnni(size_t kb, size_t rows, const float *x, size_t ldx, void *xq,
                                               size_t xrow);
size_t spr_x8_0_xbytes_packed__avx512vnni(size_t kb);
extern const struct spr_qgemm_packed spr_q8_0_packed__avx512vnni;
extern const struct spr_qgemm_packed spr_q4_0_packed__avx512vnni;
#endif

/* ---- the ukernel declarations (one per line of the .inc lists) ---------- */
#define SPR_QGEMM_UKERNEL(isa, mr, nr, pack_blocks, gemm, packx, xbytes, packed, decode)              \
  void gemm(size_t kb, size_t mr_, size_t nr_, const void *w, size_t ldw, const void *xq, size_t ldx, \
            const float *bias, float *c, size_t ldc);                                                 \
  void packx(size_t kb, size_t b0, size_t b1, const float *x, void *xq);                              \
  size_t xbytes(size_t kb);
#include "ops/gemm/q4_0_gemm.inc"
#include "ops/gemm/q4_k_gemm.inc"
#include "ops/gemm/q6_k_gemm.inc"
#include "ops/gemm/q8_0_gemm.inc"
#undef SPR_QGEMM_UKERNEL

/* The tables generated from the lists (order = preference, scalar last). */
extern const struct spr_qgemm_ukernel spr_q8_0_gemm_ukernels[];
extern const size_t spr_q8_0_gemm_ukernels_count;
extern const struct spr_qgemm_ukernel spr_q4_0_gemm_ukernels[];
extern const size_t spr_q4_0_gemm_ukernels_count;
extern const struct spr_qgemm_ukernel spr_q4_k_gemm_ukernels[];
extern const size_t spr_q4_k_gemm_ukernels_count;
extern const struct spr_qgemm_ukernel spr_q6_k_gemm_ukernels[];
extern const size_t spr_q6_k_gemm_ukernels_count;

/* True for the weight types this file handles (Q8_0, Q4_0, Q4_K, Q6_K). */
bool spr_qgemm_supports(enum spr_dtype w_type);

/* The table of w_type (NULL, count 0 when unsupported). */
const struct spr_qgemm_ukernel *spr_qgemm_table(enum spr_dtype w_type, size_t *count);

/* First entry of w_type's table whose ISA bits are all in isa (scalar last);
 * NULL when w_type is unsupported. */
const struct spr_qgemm_ukernel *spr_qgemm_select(enum spr_dtype w_type, uint32_t isa);

/* ---- plain packed-activation layouts (see above) ------------------------------ */

static inline size_t spr_x8_0_plain_qs_bytes(size_t kb) {
  return spr_align_up(kb * 32, 64);
}
static inline size_t spr_x8_0_plain_d_bytes(size_t kb) {
  return spr_align_up(kb * 4, 64);
}
static inline const float *spr_x8_0_plain_d(const void *xq, size_t kb) {
  return (const float *)((const uint8_t *)xq + spr_x8_0_plain_qs_bytes(kb));
}
static inline const int32_t *spr_x8_0_plain_s(const void *xq, size_t kb) {
  return (const int32_t *)((const uint8_t *)xq + spr_x8_0_plain_qs_bytes(kb) + spr_x8_0_plain_d_bytes(kb));
}

static inline size_t spr_x8_k_plain_qs_bytes(size_t kb) {
  return spr_align_up(kb * 256, 64);
}
static inline size_t spr_x8_k_plain_d_bytes(size_t kb) {
  return spr_align_up(kb * 4, 64);
}
static inline const float *spr_x8_k_plain_d(const void *xq, size_t kb) {
  return (const float *)((const uint8_t *)xq + spr_x8_k_plain_qs_bytes(kb));
}
static inline const int16_t *spr_x8_k_plain_bsums(const void *xq, size_t kb) {
  return (const int16_t *)((const uint8_t *)xq + spr_x8_k_plain_qs_bytes(kb) + spr_x8_k_plain_d_bytes(kb));
}

void spr_x8_0_packx_plain(size_t kb, size_t b0, size_t b1, const float *x, void *xq);
size_t spr_x8_0_xbytes_plain(size_t kb);
void spr_x8_k_packx_plain(size_t kb, size_t b0, size_t b1, const float *x, void *xq);
size_t spr_x8_k_xbytes_plain(size_t kb);

/* One Q8_0 block of activations as ggml's reference quantizer makes it:
 * qs[32], the f32 value of its fp16 scale, and the sum of qs. */
void spr_x8_0_quantize_block(const float *x, int8_t *qs, float *d, int32_t *s);

/* The same values from the AVX-512 packers' vectorized quantizers (tests). */
void spr_x8_0_quantize_block__avx512vnni(const float *x, int8_t *qs, float *d, int32_t *s);
void spr_x8_k_quantize_block__avx512vnni(const float *x, struct spr_block_q8_k *y);

/* ---- the driver ------------------------------------------------------------------ */

/* Scratch bytes for a problem of m rows, n outputs, k inputs on n_threads threads. */
size_t spr_qgemm_driver_workspace(const struct spr_qgemm_ukernel *uk, enum spr_dtype w_type, size_t m, size_t n,
                                  size_t k, int n_threads);

/* The same for a multi-weight problem (a->w2 set; n = all output columns,
 * or n1 with glu, which adds a per-thread buffer for the second product). */
size_t spr_qgemm_driver_workspace_multi(const struct spr_qgemm_ukernel *uk, enum spr_dtype w_type, size_t m, size_t n,
                                        size_t k, int glu, int n_threads);

/* Runs a (a->x plain, a->w_type quantized, K a multiple of the block; one
 * weight matrix, or several with a->w2) on x's pool with x's scratch (>= the
 * workspace above). Each output element is one ukernel call's; with several
 * weights an n block that spans two of them calls the ukernel on each part. */
void spr_qgemm_driver_run(const struct spr_exec *x, const struct spr_qgemm_ukernel *uk, const struct spr_gemm_args *a);

/* ---- oracle ------------------------------------------------------------------------ */

/* The multi-weight oracle: spr_qgemm_ref per weight; glu = 0: the products
 * side by side (dst {n1 + n2 + n3, m}, w3 may be NULL with n3 = 0); glu = 1:
 * act(first) * second (dst {n1, m}, n2 = n1, act rounded to f32 first). */
void spr_qgemm_multi_ref(enum spr_dtype w_type, size_t m, size_t k, const float *x, const void *w1, size_t n1,
                         const void *w2, size_t n2, const void *w3, size_t n3, int glu, enum spr_act act, float *dst);

/* Each activation row quantized to the weight type's vec_dot_type with the
 * reference quantizer and dequantized, each weight row dequantized, then an
 * obvious loop with double accumulation, bias, the scalar activation oracle
 * and the residual. The SIMD kernels agree with it to f32 rounding of the
 * block-scale products and of the sum over blocks. Never dispatched. */
void spr_qgemm_ref(enum spr_dtype w_type, size_t m, size_t n, size_t k, const float *x, const void *w,
                   const float *bias, enum spr_act act, const float *residual, float *dst);

#endif
