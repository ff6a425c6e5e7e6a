/* ops/coreffn/qrows_avx512vnni.c — row-gathered Q4_0 / Q8_0 GEMV with
 * AVX-512 VNNI (contract in coreffn.h), and over rows in order the dense
 * Q4_0 decode GEMV of the GEMM (qgemm.h, decode path: it streams from DRAM
 * faster than the tile kernel at M = 1).
 *
 * Q4_0: eight blocks (144 bytes of a row) per step, read with three 64-byte
 * loads; vpermt2w gathers the 16 code bytes of blocks 0-3 into one zmm and
 * of blocks 4-7 into another (block t of a half on lanes 4t..4t+3) and the
 * eight fp16 scales into one xmm. Low nibbles (elements 0-15 of each block)
 * and high nibbles (16-31) each meet the matching activation bytes in one
 * vpdpbusd (u8 codes x s8 activations) accumulating onto the correction
 * -2 * sum(x_b) per lane (4 lanes x 2 dot products = the -8 of the codes),
 * then one FMA per half by (dw * dx) spread to the lanes. Packed activations,
 * per group of 8 blocks (384 bytes): for each half h (blocks 4h..4h+3)
 *   int8 lo[64] (x[0..15] of each block), int8 hi[64] (x[16..31]),
 *   int32 corr[16]; then f32 dx[8 per group] after all groups.
 * Blocks past kb are zero in the packed row and masked off the weights.
 * One row at a time (two interleaved rows streamed worse from DRAM); while
 * a row's group g is read, group g of the row PF entries ahead in the list
 * is prefetched into L2: exactly the core rows' bytes, spread evenly.
 *
 * Q8_0: two blocks per step. Packed activations, per pair of blocks (A, B):
 *   128 bytes: int8 xA[32] xB[32], f32 dx[16] (lanes 0-7 A, 8-15 B).
 * Products are signed x signed: |w| (u8) times x with w's sign (x is never
 * -128: ggml's quantizer keeps |x| <= 127). An odd last block leaves B zero
 * in the packed row and is never read from the weights. Four accumulators
 * per row. */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__) || !defined(__AVX512BW__)
#error "this file needs -mavx512f -mavx512bw -mavx512vnni"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"
#include "ops/gemm/qgemm.h"

/* Rows prefetched ahead, into L2 (T1): on the Zen 4 host prefetches into L1
 * (T0, NTA) of gathered rows held the row-gathered GEMV at 7-8 GB/s, T1 at
 * 11-13.5 GB/s (a dense GEMV streams 17-25 GB/s); the distance mattered
 * little from 4 to 32 rows. */
#ifndef QROWS_PF
#define QROWS_PF 8
#endif
enum { PF = QROWS_PF };
#ifndef QROWS_HINT
#define QROWS_HINT _MM_HINT_T1
#endif

static inline float half_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

static inline void prefetch_row(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)p + off, QROWS_HINT);
}

/* ---- packers ------------------------------------------------------------------------- */

static size_t groups_of(size_t kb) {
  return (kb + 7) / 8;
}

size_t spr_x8_0_xbytes_q4_0_rows__avx512vnni(size_t kb) {
  return groups_of(kb) * 384 + (groups_of(kb) * 32 + 63) / 64 * 64;
}

size_t spr_x8_0_xbytes_q8_0_rows__avx512vnni(size_t kb) {
  return (kb + 1) / 2 * 128;
}

void spr_x8_0_packx_q4_0_rows__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  uint8_t *row = xq;
  const size_t ng = groups_of(kb);
  float *dx = (float *)(void *)(row + ng * 384);
  for (size_t b = b0; b < b1; b++) {
    uint8_t *p = row + b / 8 * 384 + (b % 8) / 4 * 192 + 16 * (b % 4);
    int8_t qs[32];
    int32_t s;
    spr_x8_0_quantize_block__avx512vnni(x + 32 * b, qs, &dx[b], &s);
    memcpy(p, qs, 16);
    memcpy(p + 64, qs + 16, 16);
    _mm_storeu_si128((__m128i *)(void *)(p + 128), _mm_set1_epi32(-2 * s));
  }
  if (b1 == kb) {
    for (size_t b = kb; b < 8 * ng; b++) {
      uint8_t *p = row + b / 8 * 384 + (b % 8) / 4 * 192 + 16 * (b % 4);
      memset(p, 0, 16), memset(p + 64, 0, 16), memset(p + 128, 0, 16);
      dx[b] = 0.0f;
    }
  }
}

void spr_x8_0_packx_q8_0_rows__avx512vnni(size_t kb, size_t b0, size_t b1, const float *x, void *xq) {
  uint8_t *row = xq;
  for (size_t b = b0; b < b1; b++) {
    uint8_t *p = row + b / 2 * 128;
    const size_t h = b % 2;
    float d;
    int32_t s;
    spr_x8_0_quantize_block__avx512vnni(x + 32 * b, (int8_t *)(p + 32 * h), &d, &s);
    float *dx = (float *)(void *)(p + 64);
    for (int l = 0; l < 8; l++) dx[8 * h + l] = d;
  }
  if (b1 == kb && kb % 2 == 1) {
    uint8_t *p = row + kb / 2 * 128;
    memset(p + 32, 0, 32);
    float *dx = (float *)(void *)(p + 64);
    for (int l = 0; l < 8; l++) dx[8 + l] = 0.0f;
  }
}

/* ---- ukernels -------------------------------------------------------------------------- */

/* dw on the lanes of block A (mask 0) and B (mask lanes). */
static inline __m512 scales(float da, float db, __mmask16 b_lanes) {
  return _mm512_mask_blend_ps(b_lanes, _mm512_set1_ps(da), _mm512_set1_ps(db));
}

/* Word indices for vpermt2w over two concatenated zmm (64 words) of a
 * 144-byte group (block t: word 9t = scale, words 9t+1..9t+8 = codes). */
static const int16_t k_perm[3][32] = {
    /* codes of blocks 0-3 from bytes 0..127 */
    {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
     19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35},
    /* codes of blocks 4-7 from bytes 64..191 (word 9t+1 - 32) */
    {5,  6,  7,  8,  9,  10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21,
     23, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38, 39},
    /* scales of blocks 0-7 from bytes 0..127 */
    {0, 9, 18, 27, 36, 45, 54, 63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

struct q4_consts {
  __m512i perm[3], spread[2], m4;
};

static inline void q4_consts_init(struct q4_consts *k) {
  for (int t = 0; t < 3; t++) k->perm[t] = _mm512_loadu_si512(k_perm[t]);
  k->spread[0] = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  k->spread[1] = _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4);
  k->m4 = _mm512_set1_epi8(0x0F);
}

static inline __m512i load_masked(const uint8_t *p, size_t n) {
  return _mm512_maskz_loadu_epi8(n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1), p);
}

/* acc[h] += the 4 blocks of q[h] (block t on lanes 4t..4t+3) against the packed
 * activations of group xg, each block's product times its scale (dw * dx) in s. */
static inline void q4_0_group_dot(const struct q4_consts *k, const __m512i q[2], __m512 s, const uint8_t *xg,
                                  __m512 acc[2]) {
  for (int h = 0; h < 2; h++) {
    const uint8_t *xh = xg + 192 * h;
    __m512i t = _mm512_load_si512(xh + 128);
    t = _mm512_dpbusd_epi32(t, _mm512_and_si512(q[h], k->m4), _mm512_load_si512(xh));
    t = _mm512_dpbusd_epi32(t, _mm512_and_si512(_mm512_srli_epi16(q[h], 4), k->m4), _mm512_load_si512(xh + 64));
    acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_permutexvar_ps(k->spread[h], s), acc[h]);
  }
}

/* Adds group g of row w (bytes: the group's weight bytes, 144 except in a
 * last partial group) to acc[0..1]. */
static inline void q4_0_group(const struct q4_consts *k, const uint8_t *w, size_t bytes, const uint8_t *xg, __m256 dx,
                              __m512 acc[2]) {
  __m512i a, b, c;
  if (bytes == 144) {
    a = _mm512_loadu_si512(w), b = _mm512_loadu_si512(w + 64);
    c = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(w + 128)));
  } else {
    a = load_masked(w, bytes), b = load_masked(w + 64, bytes > 64 ? bytes - 64 : 0);
    c = load_masked(w + 128, bytes > 128 ? bytes - 128 : 0);
  }
  const __m512i q[2] = {_mm512_permutex2var_epi16(a, k->perm[0], b), _mm512_permutex2var_epi16(b, k->perm[1], c)};
  const __m256 d =
      _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(a, k->perm[2], b))), dx);
  q4_0_group_dot(k, q, _mm512_castps256_ps512(d), xg, acc);
}

/* NJ rows (the ukernel uses 1); each row's sequence is the same either way. While a
 * group of row j is read, the same group of pf[j] (a row PF entries ahead
 * in the list, or NULL) is prefetched: one steady stream of prefetches
 * interleaved with the loads, as a dense GEMV's sequential prefetch. */
static inline void q4_0_rows(const int NJ, size_t kb, const uint8_t *const *w, const uint8_t *const *pf,
                             const uint8_t *xq, float *c) {
  struct q4_consts k;
  q4_consts_init(&k);
  const size_t ng = groups_of(kb), row_bytes = 18 * kb;
  const float *dxs = (const float *)(const void *)(xq + ng * 384);
  __m512 acc[2][2];
  for (int j = 0; j < NJ; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
  for (size_t g = 0; g < ng; g++) {
    const size_t bytes = g + 1 < ng || kb % 8 == 0 ? 144 : 18 * (kb % 8);
    const __m256 dx = _mm256_loadu_ps(dxs + 8 * g);
    for (int j = 0; j < NJ; j++) {
      if (pf[j] != NULL) {
        const size_t end = 144 * g + bytes < row_bytes ? 144 * g + bytes : row_bytes;
        for (size_t off = 144 * g & ~(size_t)63; off < end; off += 64)
          _mm_prefetch((const char *)(pf[j] + off), QROWS_HINT);
      }
      q4_0_group(&k, w[j] + 144 * g, bytes, xq + 384 * g, dx, acc[j]);
    }
  }
  for (int j = 0; j < NJ; j++) c[j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[j][0], acc[j][1]));
}

/* c[i] = x . W(r_i) for i < n, r_i = idx[i] (idx NULL: i), each row
 * prefetched PF entries ahead while i + PF < lim (lim > n only without idx:
 * rows in order, the ones after the n belong to the same matrix). */
static void q4_0_row_run(size_t kb, size_t n, size_t lim, const int32_t *idx, const uint8_t *wb, size_t ldw,
                         const void *xq, float *c) {
  const size_t bytes = 18 * kb;
#define ROW(i) (wb + (idx != NULL ? (size_t)idx[i] : (i)) * ldw)
  /* the first PF rows: nothing runs ahead of them */
  for (size_t i = 0; i < n && i < PF; i++) prefetch_row(ROW(i), bytes);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *r[1] = {ROW(i)};
    const uint8_t *p[1] = {i + PF < lim ? ROW(i + PF) : NULL};
    q4_0_rows(1, kb, r, p, xq, c + i);
  }
#undef ROW
}

void spr_q4_0_qrows_ukernel__avx512vnni(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw,
                                        const void *xq, float *c) {
  q4_0_row_run(kb, n, n, idx, w, ldw, xq, c);
}

/* The dense decode GEMV of the Q4_0 GEMM entry (qgemm.h, decode path): the
 * qrows ukernel's sequence over rows in order (the same bits), prefetching
 * into the n_ahead rows after the call's own. */
void spr_q4_0_gemv_rows__avx512vnni(size_t kb, size_t nr, const void *w, size_t ldw, size_t n_ahead, const void *xq,
                                    const float *bias, float *c) {
  q4_0_row_run(kb, nr, nr + n_ahead, NULL, w, ldw, xq, c);
  if (bias != NULL)
    for (size_t i = 0; i < nr; i++) c[i] += bias[i];
}

const struct spr_qgemm_decode spr_q4_0_decode__avx512vnni = {
    spr_q4_0_gemv_rows__avx512vnni, spr_x8_0_packx_q4_0_rows__avx512vnni, spr_x8_0_xbytes_q4_0_rows__avx512vnni,
    "spr_q4_0_gemv_rows__avx512vnni"};

static float q8_0_row(size_t kb, const uint8_t *w, const uint8_t *xq) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const size_t pairs = (kb + 1) / 2;
  for (size_t p = 0; p < pairs; p++) {
    const uint8_t *a = w + 68 * p, *xp = xq + 128 * p;
    const bool full = 2 * p + 1 < kb;
    const __m256i wa = _mm256_loadu_si256((const __m256i *)(const void *)(a + 2));
    const __m256i wb = full ? _mm256_loadu_si256((const __m256i *)(const void *)(a + 36)) : _mm256_setzero_si256();
    const __m512i wz = _mm512_inserti64x4(_mm512_castsi256_si512(wa), wb, 1);
    const __m512i xz = _mm512_load_si512(xp);
    const __mmask64 neg = _mm512_movepi8_mask(wz);
    const __m512i xs = _mm512_mask_sub_epi8(xz, neg, _mm512_setzero_si512(), xz);
    const __m512i dp = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wz), xs);
    const __m512 s = _mm512_mul_ps(scales(half_at(a), full ? half_at(a + 34) : 0.0f, 0xFF00),
                                   _mm512_load_ps((const float *)(const void *)(xp + 64)));
    acc[p % 4] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), s, acc[p % 4]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

#define DEFINE_QROWS(name, row_fn, bb)                                                                      \
  void name(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq, float *c) { \
    const uint8_t *wb = w;                                                                                  \
    for (size_t i = 0; i < n && i < PF; i++) prefetch_row(wb + (size_t)idx[i] * ldw, kb * (bb));            \
    for (size_t i = 0; i < n; i++) {                                                                        \
      if (i + PF < n) prefetch_row(wb + (size_t)idx[i + PF] * ldw, kb * (bb));                              \
      c[i] = row_fn(kb, wb + (size_t)idx[i] * ldw, xq);                                                     \
    }                                                                                                       \
  }

DEFINE_QROWS(spr_q8_0_qrows_ukernel__avx512vnni, q8_0_row, 34)

/* ---- bundled gate/up (gu.inc): the gate and up rows of a neuron bundle share
 * the activation loads; while they are read, the gate and up rows of the
 * bundle SPR_GU_PF entries ahead (one contiguous run) are prefetched into
 * L2, spread evenly over the row's groups (down_acc prefetches the down
 * rows, a sub-block ahead, so that memory streams in both steps). Each product is
 * q4_0_rows's sequence for one row: the bits of the qrows ukernel. */

static inline void q4_0_gu_row(const struct q4_consts *k, size_t kb, const uint8_t *row, const uint8_t *pf,
                               size_t pf_bytes, const uint8_t *xq, float *g, float *u) {
  const size_t ng = groups_of(kb), seg = 18 * kb;
  const float *dxs = (const float *)(const void *)(xq + ng * 384);
  __m512 acc[2][2];
  for (int j = 0; j < 2; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
  const uintptr_t p0 = (uintptr_t)pf & ~(uintptr_t)63;
  const size_t lines = pf != NULL ? ((uintptr_t)pf + pf_bytes - 1 - p0) / 64 + 1 : 0;
  for (size_t gi = 0; gi < ng; gi++) {
    const size_t bytes = gi + 1 < ng || kb % 8 == 0 ? 144 : 18 * (kb % 8);
    const __m256 dx = _mm256_loadu_ps(dxs + 8 * gi);
    for (size_t l = lines * gi / ng; l < lines * (gi + 1) / ng; l++)
      _mm_prefetch((const char *)(p0 + 64 * l), QROWS_HINT);
    q4_0_group(k, row + 144 * gi, bytes, xq + 384 * gi, dx, acc[0]);
    q4_0_group(k, row + seg + 144 * gi, bytes, xq + 384 * gi, dx, acc[1]);
  }
  *g = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][0], acc[0][1]));
  *u = _mm512_reduce_add_ps(_mm512_add_ps(acc[1][0], acc[1][1]));
}

void spr_q4_0_gu_ukernel__avx512vnni(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, size_t n_pf,
                                     const void *xq, float *g, float *u) {
  struct q4_consts k;
  q4_consts_init(&k);
  const uint8_t *wb = w;
  const size_t lim = n + n_pf;
  for (size_t i = 0; i < n; i++) {
    const size_t r = idx != NULL ? (size_t)idx[i] : i;
    const uint8_t *pf = NULL;
    if (i + SPR_GU_PF < lim) pf = wb + (idx != NULL ? (size_t)idx[i + SPR_GU_PF] : i + SPR_GU_PF) * ldw;
    q4_0_gu_row(&k, kb, wb + r * ldw, pf, 2 * 18 * kb, xq, g + i, u + i);
  }
}

/* ---- the packed gate/up layout (the compact decode, coreffn.h): a group's
 * codes are two plain 64-byte loads (blocks 0-3 and 4-7, block t on lanes
 * 4t..4t+3, as the vpermt2w above leave them) and its scales one 16-byte
 * load; the rest is q4_0_group's sequence: the same bits. */
static inline void q4_0_group_packed(const struct q4_consts *k, const uint8_t *w, size_t m, const uint8_t *xg,
                                     __m256 dx, __m512 acc[2]) {
  __m512i q[2];
  __m128i sc;
  if (m == 8) {
    q[0] = _mm512_loadu_si512(w), q[1] = _mm512_loadu_si512(w + 64);
    sc = _mm_loadu_si128((const __m128i *)(const void *)(w + 128));
  } else {
    q[0] = load_masked(w, 16 * m), q[1] = load_masked(w + 64, m > 4 ? 16 * m - 64 : 0);
    sc = _mm_maskz_loadu_epi16((__mmask8)((1u << m) - 1), w + 16 * m);
  }
  q4_0_group_dot(k, q, _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(sc), dx)), xg, acc);
}

void spr_q4_0_gu_packed__avx512vnni(size_t kb, size_t n, const void *w, size_t ldw, size_t n_pf, const void *xq,
                                    float *g, float *u, const void *pf, size_t pf_bytes) {
  const char *pfc = pf;
  const size_t pf_lines = pf != NULL ? (pf_bytes + 63) / 64 : 0;
  struct q4_consts k;
  q4_consts_init(&k);
  const uint8_t *wb = w;
  const size_t ng = groups_of(kb), seg = 18 * kb, lim = n + n_pf;
  const float *dxs = (const float *)(const void *)((const uint8_t *)xq + ng * 384);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *row = wb + i * ldw;
    /* the gate and up rows SPR_GU_PF ahead (one run of 2 seg bytes), spread over the groups */
    const uintptr_t p0 = i + SPR_GU_PF < lim ? (uintptr_t)(row + SPR_GU_PF * ldw) & ~(uintptr_t)63 : 0;
    const size_t lines = p0 != 0 ? ((uintptr_t)(row + SPR_GU_PF * ldw) + 2 * seg - 1 - p0) / 64 + 1 : 0;
    __m512 acc[2][2];
    for (int j = 0; j < 2; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
    for (size_t gi = 0; gi < ng; gi++) {
      const size_t m = gi + 1 < ng || kb % 8 == 0 ? 8 : kb % 8;
      const __m256 dx = _mm256_loadu_ps(dxs + 8 * gi);
      for (size_t l = lines * gi / ng; l < lines * (gi + 1) / ng; l++)
        _mm_prefetch((const char *)(p0 + 64 * l), QROWS_HINT);
      q4_0_group_packed(&k, row + 144 * gi, m, (const uint8_t *)xq + 384 * gi, dx, acc[0]);
      q4_0_group_packed(&k, row + seg + 144 * gi, m, (const uint8_t *)xq + 384 * gi, dx, acc[1]);
    }
    for (size_t l = pf_lines * i / n; l < pf_lines * (i + 1) / n; l++) _mm_prefetch(pfc + 64 * l, QROWS_HINT);
    g[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][0], acc[0][1]));
    u[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[1][0], acc[1][1]));
  }
}
