/* ops/gemm/qgemm_neon_impl.h — the NEON quantized GEMM ukernels, written once
 * for two ISAs (contracts in qgemm.h). The including file defines
 *   QDOT(acc, a, b)  int32x4 acc += dot products of the int8x16 a and b
 *                    (4 products per lane; any grouping within the lane)
 *   QNAME(t)         the ukernel name for weight type t
 * qgemm_neon.c does it with vmull_s8 + vmlal_s8 + vpadalq_s16 (two products
 * per int16 lane: |w x| <= 128 * 127, so no overflow for activations in
 * [-127, 127], which every quantizer produces for finite input);
 * qgemm_dotprod.c with vdotq_s32.
 *
 * Weights are signed before the dot (Q4_0 nibble - 8, Q6_K code - 32), so
 * no correction terms are needed; the K-quants' blocks are unpacked once per
 * tile into a small buffer in value order, then each group of values (32
 * for Q4_K, 16 for Q6_K) is dotted and scaled by its int scale in int32.
 * Tiles: 2 activation rows x 2 weight rows; decode (mr = 1) walks the weight
 * rows one after the other. Activations use the plain layouts. */
#ifndef SPR_OPS_GEMM_QGEMM_NEON_IMPL_H
#define SPR_OPS_GEMM_QGEMM_NEON_IMPL_H

#include <simde/arm/neon.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/gemm/qgemm.h"

#define INLINE static inline __attribute__((always_inline))

INLINE void prefetch_w(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch((const void *)((uintptr_t)p + 2048 + off), 0, 3);
}

INLINE float hsum_f32(simde_float32x4_t v) {
  const simde_float32x2_t s = simde_vadd_f32(simde_vget_low_f32(v), simde_vget_high_f32(v));
  return simde_vget_lane_f32(simde_vpadd_f32(s, s), 0);
}

struct neon_acc {
  simde_float32x4_t v[2][2][2]; /* [i][j][na] */
  float extra[2][2];            /* subtracted at the end (Q4_K mins) */
};

INLINE void acc_zero(struct neon_acc *a) {
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) {
      a->v[i][j][0] = a->v[i][j][1] = simde_vdupq_n_f32(0.0f);
      a->extra[i][j] = 0.0f;
    }
}

INLINE void acc_store(const struct neon_acc *a, int mr, size_t nr, int na, const float *bias, float *c, size_t ldc) {
  for (int i = 0; i < mr; i++)
    for (size_t j = 0; j < nr; j++) {
      const simde_float32x4_t s = na > 1 ? simde_vaddq_f32(a->v[i][j][0], a->v[i][j][1]) : a->v[i][j][0];
      c[i * ldc + j] = (hsum_f32(s) - a->extra[i][j]) + (bias != NULL ? bias[j] : 0.0f);
    }
}

/* ---- Q8_0 / Q4_0: one weight block = two int8x16 of signed values --------------------- */

INLINE void x8_0_tile(const int MR, const int NJ, const int NA, const int Q4, size_t kb, size_t nr, const uint8_t *w,
                      size_t ldw, const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  const size_t bb = Q4 ? 18 : 34;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  struct neon_acc acc;
  acc_zero(&acc);
  for (size_t b = 0; b < kb; b++) {
    simde_int8x16_t q[2][2];
    float dw[2];
    for (int j = 0; j < NJ; j++) {
      const uint8_t *blk = wr[j] + bb * b;
      prefetch_w(blk, bb);
      if (Q4) {
        const simde_uint8x16_t r = simde_vld1q_u8(blk + 2);
        const simde_int8x16_t eight = simde_vdupq_n_s8(8);
        q[j][0] = simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vandq_u8(r, simde_vdupq_n_u8(0x0F))), eight);
        q[j][1] = simde_vsubq_s8(simde_vreinterpretq_s8_u8(simde_vshrq_n_u8(r, 4)), eight);
      } else {
        q[j][0] = simde_vld1q_s8((const int8_t *)(blk + 2));
        q[j][1] = simde_vld1q_s8((const int8_t *)(blk + 18));
      }
      dw[j] = spr_fp16_load(blk);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const simde_int8x16_t x0 = simde_vld1q_s8((const int8_t *)xr + 32 * b);
      const simde_int8x16_t x1 = simde_vld1q_s8((const int8_t *)xr + 32 * b + 16);
      const float dx = spr_x8_0_plain_d(xr, kb)[b];
      for (int j = 0; j < NJ; j++) {
        simde_int32x4_t t = simde_vdupq_n_s32(0);
        t = QDOT(t, q[j][0], x0);
        t = QDOT(t, q[j][1], x1);
        const int a = NA > 1 ? (int)(b & 1) : 0;
        acc.v[i][j][a] = simde_vfmaq_f32(acc.v[i][j][a], simde_vcvtq_f32_s32(t), simde_vdupq_n_f32(dw[j] * dx));
      }
    }
  }
  acc_store(&acc, MR, NJ < (int)nr ? (size_t)NJ : nr, NA, bias, c, ldc);
}

INLINE void q8_0_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  x8_0_tile(MR, NJ, NA, 0, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
}

INLINE void q4_0_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  x8_0_tile(MR, NJ, NA, 1, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
}

/* ---- K-quants: unpack a super-block into int8 values in order + int scales ---------------- */

struct kq_unpacked {
  int8_t q[256];  /* signed values (Q4_K: 0..15, Q6_K: -32..31) */
  int32_t sc[16]; /* per group */
  int32_t m[8];   /* Q4_K: per sub-block min */
  float d, dmin;
};

INLINE void q4_k_unpack(const uint8_t *blk, struct kq_unpacked *u) {
  const simde_uint8x16_t m4 = simde_vdupq_n_u8(0x0F);
  for (int cc = 0; cc < 4; cc++) {
    for (int h = 0; h < 2; h++) {
      const simde_uint8x16_t r = simde_vld1q_u8(blk + 16 + 32 * cc + 16 * h);
      simde_vst1q_s8(u->q + 64 * cc + 16 * h, simde_vreinterpretq_s8_u8(simde_vandq_u8(r, m4)));
      simde_vst1q_s8(u->q + 64 * cc + 32 + 16 * h, simde_vreinterpretq_s8_u8(simde_vshrq_n_u8(r, 4)));
    }
  }
  for (int s = 0; s < 8; s++) {
    uint8_t sc, m;
    spr_q4_k_scale_min(s, blk + 4, &sc, &m);
    u->sc[s] = sc;
    u->m[s] = m;
  }
  u->d = spr_fp16_load(blk);
  u->dmin = spr_fp16_load(blk + 2);
}

INLINE void q6_k_unpack(const uint8_t *blk, struct kq_unpacked *u) {
  const simde_uint8x16_t m4 = simde_vdupq_n_u8(0x0F), m3 = simde_vdupq_n_u8(3);
  const simde_int8x16_t off = simde_vdupq_n_s8(32);
  for (int h = 0; h < 2; h++) {
    for (int k = 0; k < 2; k++) {
      const simde_uint8x16_t la = simde_vld1q_u8(blk + 64 * h + 16 * k);
      const simde_uint8x16_t lb = simde_vld1q_u8(blk + 64 * h + 32 + 16 * k);
      const simde_uint8x16_t qh = simde_vld1q_u8(blk + 128 + 32 * h + 16 * k);
      const simde_uint8x16_t v[4] = {
          simde_vorrq_u8(simde_vandq_u8(la, m4), simde_vshlq_n_u8(simde_vandq_u8(qh, m3), 4)),
          simde_vorrq_u8(simde_vandq_u8(lb, m4), simde_vshlq_n_u8(simde_vandq_u8(simde_vshrq_n_u8(qh, 2), m3), 4)),
          simde_vorrq_u8(simde_vshrq_n_u8(la, 4), simde_vshlq_n_u8(simde_vandq_u8(simde_vshrq_n_u8(qh, 4), m3), 4)),
          simde_vorrq_u8(simde_vshrq_n_u8(lb, 4), simde_vshlq_n_u8(simde_vshrq_n_u8(qh, 6), 4)),
      };
      for (int r = 0; r < 4; r++)
        simde_vst1q_s8(u->q + 128 * h + 32 * r + 16 * k, simde_vsubq_s8(simde_vreinterpretq_s8_u8(v[r]), off));
    }
  }
  for (int g = 0; g < 16; g++) u->sc[g] = (int8_t)blk[192 + g];
  u->d = spr_fp16_load(blk + 208);
  u->dmin = 0.0f;
}

/* GS values per scale group: 32 (Q4_K, with mins) or 16 (Q6_K). */
INLINE void kq_tile(const int MR, const int NJ, const int GS, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                    const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  const size_t bb = GS == 32 ? 144 : 210;
  const uint8_t *wr[2] = {w, NJ > 1 && nr > 1 ? w + ldw : w};
  struct neon_acc acc;
  acc_zero(&acc);
  struct kq_unpacked u[2];
  for (size_t b = 0; b < kb; b++) {
    for (int j = 0; j < NJ; j++) {
      prefetch_w(wr[j] + bb * b, bb);
      if (GS == 32)
        q4_k_unpack(wr[j] + bb * b, &u[j]);
      else
        q6_k_unpack(wr[j] + bb * b, &u[j]);
    }
    for (int i = 0; i < MR; i++) {
      const uint8_t *xr = xq + (size_t)i * ldx;
      const int8_t *xb = (const int8_t *)xr + 256 * b;
      const int16_t *bs = spr_x8_k_plain_bsums(xr, kb) + 16 * b;
      const float dx = spr_x8_k_plain_d(xr, kb)[b];
      for (int j = 0; j < NJ; j++) {
        simde_int32x4_t isum = simde_vdupq_n_s32(0);
        for (int g = 0; g < 256 / GS; g++) {
          simde_int32x4_t t = simde_vdupq_n_s32(0);
          for (int v = 0; v < GS; v += 16)
            t = QDOT(t, simde_vld1q_s8(u[j].q + GS * g + v), simde_vld1q_s8(xb + GS * g + v));
          isum = simde_vmlaq_n_s32(isum, t, u[j].sc[g]);
        }
        acc.v[i][j][0] = simde_vfmaq_f32(acc.v[i][j][0], simde_vcvtq_f32_s32(isum), simde_vdupq_n_f32(u[j].d * dx));
        if (GS == 32) {
          int32_t ms = 0;
          for (int s = 0; s < 8; s++) ms += u[j].m[s] * (bs[2 * s] + bs[2 * s + 1]);
          acc.extra[i][j] += (u[j].dmin * dx) * (float)ms;
        }
      }
    }
  }
  acc_store(&acc, MR, NJ < (int)nr ? (size_t)NJ : nr, 1, bias, c, ldc);
}

INLINE void q4_k_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  (void)NA;
  kq_tile(MR, NJ, 32, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
}

INLINE void q6_k_tile(const int MR, const int NJ, const int NA, size_t kb, size_t nr, const uint8_t *w, size_t ldw,
                      const uint8_t *xq, size_t ldx, const float *bias, float *c, size_t ldc) {
  (void)NA;
  kq_tile(MR, NJ, 16, kb, nr, w, ldw, xq, ldx, bias, c, ldc);
}

#define DEFINE_UKERNEL(name, tile)                                                                                     \
  void name(size_t kb, size_t mr, size_t nr, const void *w, size_t ldw, const void *xq, size_t ldx, const float *bias, \
            float *c, size_t ldc) {                                                                                    \
    const uint8_t *wb = w, *xb = xq;                                                                                   \
    if (mr == 1) {                                                                                                     \
      for (size_t j = 0; j < nr; j++)                                                                                  \
        tile(1, 1, 2, kb, 1, wb + j * ldw, ldw, xb, ldx, bias != NULL ? bias + j : NULL, c + j, ldc);                  \
    } else {                                                                                                           \
      tile(2, 2, 1, kb, nr, wb, ldw, xb, ldx, bias, c, ldc);                                                           \
    }                                                                                                                  \
  }

DEFINE_UKERNEL(QNAME(q8_0), q8_0_tile)
DEFINE_UKERNEL(QNAME(q4_0), q4_0_tile)
DEFINE_UKERNEL(QNAME(q4_k), q4_k_tile)
DEFINE_UKERNEL(QNAME(q6_k), q6_k_tile)

#endif
