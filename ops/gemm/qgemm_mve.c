/* ops/gemm/qgemm_mve.c — Helium (Armv8.1-M MVE) quantized GEMM ukernels for
 * Q8_0 and Q4_0 weights (contracts in qgemm.h; plain x8_0 activations).
 *
 * Tile 2 x 2: each weight block is loaded once for both activation rows. A
 * block's 32 int8 products are summed exactly by two VMLADAV(A) (16 lanes
 * each, int32 accumulator) and scaled in f32 in the scalar kernel's order, so
 * the results are bit-identical to spr_q*_gemm_ukernel_2x2__scalar. Q4_0
 * nibbles are unpacked with VAND / VSHR and recentred by 8. Missing rows of a
 * tail tile alias row 0 (every element still gets the same instructions).
 * For a single activation row (GEMV) the driver passes the whole block of
 * weight rows in one call; the kernel walks it in column pairs. */
#if !defined(__ARM_FEATURE_MVE)
#error "this file needs Helium (-mcpu=cortex-m55, or -march=armv8.1-m.main+mve)"
#endif

#include <arm_mve.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/gemm/qgemm.h"

/* The int8 weights of block b of a row: two halves of 16 values. */
struct wq {
  int8x16_t lo, hi;
  float d;
};

static inline struct wq load_q8_0(const uint8_t *row, size_t b) {
  const uint8_t *blk = row + b * 34;
  const struct wq q = {vld1q_s8((const int8_t *)(blk + 2)), vld1q_s8((const int8_t *)(blk + 18)), spr_fp16_load(blk)};
  return q;
}

static inline struct wq load_q4_0(const uint8_t *row, size_t b) {
  const uint8_t *blk = row + b * 18;
  const uint8x16_t q = vld1q_u8(blk + 2);
  const int8x16_t eight = vdupq_n_s8(8);
  const struct wq r = {vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0xF))), eight),
                       vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight), spr_fp16_load(blk)};
  return r;
}

/* One tile of MR (1 or 2) activation rows x NJ (1 or 2) weight rows; a
 * missing row of the pair aliases row 0 and is not stored. Per element the
 * same sequence as the scalar kernel: exact int32 block sum, then
 * s += (float)isum * (dw * dx) block by block. */
#define DEFINE_TILE(tname, load)                                                                                       \
  static inline __attribute__((always_inline)) void tname(const int MR, size_t kb, size_t nr, const uint8_t *w0,       \
                                                          size_t ldw, const int8_t *x0, size_t ldx, const float *bias, \
                                                          float *c, size_t ldc) {                                      \
    const uint8_t *w1 = nr > 1 ? w0 + ldw : w0;                                                                        \
    const int8_t *x1 = MR > 1 ? (const int8_t *)((const uint8_t *)x0 + ldx) : x0;                                      \
    const float *d0 = spr_x8_0_plain_d(x0, kb), *d1 = spr_x8_0_plain_d(x1, kb);                                        \
    float s00 = 0.0f, s01 = 0.0f, s10 = 0.0f, s11 = 0.0f;                                                              \
    for (size_t b = 0; b < kb; b++) {                                                                                  \
      const struct wq a = load(w0, b), e = load(w1, b);                                                                \
      const int8x16_t p0 = vld1q_s8(x0 + 32 * b), q0 = vld1q_s8(x0 + 32 * b + 16);                                     \
      s00 += (float)vmladavaq_s8(vmladavq_s8(a.lo, p0), a.hi, q0) * (a.d * d0[b]);                                     \
      s01 += (float)vmladavaq_s8(vmladavq_s8(e.lo, p0), e.hi, q0) * (e.d * d0[b]);                                     \
      if (MR > 1) {                                                                                                    \
        const int8x16_t p1 = vld1q_s8(x1 + 32 * b), q1 = vld1q_s8(x1 + 32 * b + 16);                                   \
        s10 += (float)vmladavaq_s8(vmladavq_s8(a.lo, p1), a.hi, q1) * (a.d * d1[b]);                                   \
        s11 += (float)vmladavaq_s8(vmladavq_s8(e.lo, p1), e.hi, q1) * (e.d * d1[b]);                                   \
      }                                                                                                                \
    }                                                                                                                  \
    const float b0 = bias != NULL ? bias[0] : 0.0f, b1 = bias != NULL && nr > 1 ? bias[1] : 0.0f;                      \
    c[0] = s00 + b0;                                                                                                   \
    if (nr > 1) c[1] = s01 + b1;                                                                                       \
    if (MR > 1) {                                                                                                      \
      c[ldc] = s10 + b0;                                                                                               \
      if (nr > 1) c[ldc + 1] = s11 + b1;                                                                               \
    }                                                                                                                  \
  }

/* The contract (qgemm.h): mr <= 2, and nr <= 2 except for mr == 1, where the
 * driver passes a whole block of weight rows (a GEMV: nr up to the driver's
 * 64-row block). The kernel walks nr in column pairs in both cases, so no
 * output column is left unwritten. */
#define DEFINE_MVE(name, tile)                                                                                         \
  void name(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq, size_t ldx, const float *bias, \
            float *c, size_t ldc) {                                                                                    \
    const uint8_t *wb = (const uint8_t *)w;                                                                            \
    const int8_t *xb = (const int8_t *)xq;                                                                             \
    for (size_t j = 0; j < nr; j += 2) {                                                                               \
      const size_t nj = nr - j < 2 ? nr - j : 2;                                                                       \
      const float *bj = bias != NULL ? bias + j : NULL;                                                                \
      if (mr > 1)                                                                                                      \
        tile(2, kb, nj, wb + j * ldw, ldw, xb, ldx, bj, c + j, ldc);                                                   \
      else                                                                                                             \
        tile(1, kb, nj, wb + j * ldw, ldw, xb, ldx, bj, c + j, ldc);                                                   \
    }                                                                                                                  \
  }

DEFINE_TILE(q8_0_tile, load_q8_0)
DEFINE_TILE(q4_0_tile, load_q4_0)
DEFINE_MVE(spr_q8_0_gemm_ukernel_2x2__mve, q8_0_tile)
DEFINE_MVE(spr_q4_0_gemm_ukernel_2x2__mve, q4_0_tile)
