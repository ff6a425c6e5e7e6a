/* ops/coreffn/axpyq_avx512vnni.c — the Q4_0 axpy over neurons with int8
 * neuron coefficients (rule in coreffn.h, spr_axpyq) on AVX-512 VNNI.
 *
 * A tile is 4 output blocks, one per 128-bit lane. Per group of 32 neurons:
 * the 32 x 4 products a[i] * d are quantized (one scale per block); then
 * 4 neurons at a time, the code bytes of 4 rows (4 blocks each, one per
 * lane) are split into nibbles and interleaved with unpack{lo,hi}_epi{8,16}
 * so that dword j of a lane holds the 4 neurons' codes of output j; one
 * vpdpbusd per 4 outputs per lane adds code (u8) x coefficient (s8) for the 4
 * neurons into int32. At the end of the group, 8 x sum(c) is subtracted and
 * y += S * sum (fma). Dword t of accumulator m is output 4m + t of the
 * lane's block. Lanes past the last block read block 0 with zero scales.
 * Two loop orders for the same bits: this one (tiles outer, each tile over
 * all neurons) for ffn_down_t rows 1152 bytes apart, and the accumulating
 * twin below (panels and groups outer) for the fused bundle decode. Running
 * the plain ukernel as the twin from y = 0 was tried: the sparse ffn_down_t
 * decode went from 0.25 to 0.41 ms (bench_coreffn, q4_0, 1 thread). */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error "this file needs -mavx512f -mavx512vnni"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"

enum { G = SPR_AXPYQ_GROUP };

static inline const uint8_t *row_at(const uint8_t *w, size_t ldw, const int32_t *idx, size_t i) {
  return w + (idx != NULL ? (size_t)idx[i] : i) * ldw;
}

static inline __m512i lanes4(const uint8_t *p, const size_t *boff) {
  __m512i r = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(p + boff[0])));
  r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(const void *)(p + boff[1])), 1);
  r = _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(const void *)(p + boff[2])), 2);
  return _mm512_inserti32x4(r, _mm_loadu_si128((const __m128i *)(const void *)(p + boff[3])), 3);
}

/* acc[0..3] += the 4 rows' codes v[0..3] (one byte per output) times cv */
static inline void dot4(__m512i *acc, const __m512i *v, __m512i cv) {
  const __m512i t0 = _mm512_unpacklo_epi8(v[0], v[1]), t1 = _mm512_unpackhi_epi8(v[0], v[1]);
  const __m512i t2 = _mm512_unpacklo_epi8(v[2], v[3]), t3 = _mm512_unpackhi_epi8(v[2], v[3]);
  acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_unpacklo_epi16(t0, t2), cv);
  acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_unpackhi_epi16(t0, t2), cv);
  acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_unpacklo_epi16(t1, t3), cv);
  acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_unpackhi_epi16(t1, t3), cv);
}

void spr_q4_0_axpyq_ukernel_128__avx512vnni(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                            size_t ne, float *y) {
  const uint8_t *wb = w;
  const size_t nb = ne / 32;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (size_t b0 = 0; b0 < nb; b0 += 4) {
    const size_t nbt = nb - b0 < 4 ? nb - b0 : 4;
    const uint8_t *seg = wb + b0 * 18;
    size_t boff[4];
    for (size_t k = 0; k < 4; k++) boff[k] = (k < nbt ? k : 0) * 18;
    __m512 fy[8];
    for (int m = 0; m < 8; m++) fy[m] = _mm512_setzero_ps();
    for (size_t g0 = 0; g0 < n; g0 += G) {
      const size_t gn = n - g0 < G ? n - g0 : G;
      const uint8_t *rows[G];
      float av[G];
      uint16_t h[4][G];
      for (size_t i = 0; g0 + G + i < n && i < G; i++) { /* the next group's segments into L2 */
        const char *p = (const char *)row_at(seg, ldw, idx, g0 + G + i);
        _mm_prefetch(p, _MM_HINT_T1);
        _mm_prefetch(p + 4 * 18 - 1, _MM_HINT_T1);
      }
      for (size_t i = 0; i < G; i++) {
        rows[i] = i < gn ? row_at(seg, ldw, idx, g0 + i) : rows[0];
        av[i] = i < gn ? a[g0 + i] : 0.0f;
        for (size_t k = 0; k < 4; k++) {
          if (k < nbt)
            memcpy(&h[k][i], rows[i] + boff[k], sizeof(uint16_t));
          else
            h[k][i] = 0;
        }
      }
      uint32_t cw[G / 4][4];
      float sv[4];
      int32_t corr[4];
      for (size_t k = 0; k < 4; k++) {
        const __m512 p0 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h[k])),
                                        _mm512_loadu_ps(av));
        const __m512 p1 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h[k] + 16))),
                                        _mm512_loadu_ps(av + 16));
        const float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(p0), _mm512_abs_ps(p1)));
        const float s = m > 0.0f ? m / 127.0f : 0.0f, inv = m > 0.0f ? 127.0f / m : 0.0f;
        const __m512i c0 = _mm512_cvtps_epi32(_mm512_mul_ps(p0, _mm512_set1_ps(inv)));
        const __m512i c1 = _mm512_cvtps_epi32(_mm512_mul_ps(p1, _mm512_set1_ps(inv)));
        corr[k] = 8 * _mm512_reduce_add_epi32(_mm512_add_epi32(c0, c1));
        uint32_t t[G / 4];
        _mm_storeu_si128((__m128i *)(void *)t, _mm512_cvtepi32_epi8(c0));
        _mm_storeu_si128((__m128i *)(void *)(t + 4), _mm512_cvtepi32_epi8(c1));
        for (size_t q = 0; q < G / 4; q++) cw[q][k] = t[q];
        sv[k] = s;
      }
      __m512i acc[8];
      for (int m = 0; m < 8; m++) acc[m] = _mm512_setzero_si512();
      for (size_t q = 0; q < (gn + 3) / 4; q++) {
        const __m512i cv =
            _mm512_permutexvar_epi32(lane, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(void *)cw[q])));
        __m512i lo[4], hi[4];
        for (int r = 0; r < 4; r++) {
          const __m512i v = lanes4(rows[4 * q + (size_t)r] + 2, boff);
          lo[r] = _mm512_and_si512(v, m4);
          hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        dot4(acc, lo, cv);
        dot4(acc + 4, hi, cv);
      }
      const __m512i vc =
          _mm512_permutexvar_epi32(lane, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(void *)corr)));
      const __m512 vs = _mm512_permutexvar_ps(lane, _mm512_castps128_ps512(_mm_loadu_ps(sv)));
      for (int m = 0; m < 8; m++) fy[m] = _mm512_fmadd_ps(vs, _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[m], vc)), fy[m]);
    }
    float buf[8][16];
    for (int m = 0; m < 8; m++) _mm512_storeu_ps(buf[m], fy[m]);
    for (size_t k = 0; k < nbt; k++)
      for (size_t m = 0; m < 8; m++)
        for (size_t t = 0; t < 4; t++) y[32 * (b0 + k) + 4 * m + t] = buf[m][4 * k + t];
  }
}

/* ---- the accumulating twin (the fused decode: one sub-block of neurons at a time) ----
 * y += the rule's group sums, continuing each element's fma chain from y:
 * called over consecutive groups from y = 0 it gives the bits of the
 * ukernel above over all of them.
 *
 * The outputs run in panels of PB blocks; per panel and group, the rule's
 * per-block steps are done row by row with the blocks in the lanes (no
 * horizontal reductions): each row's PB block scales are picked out of its
 * 18-byte blocks with vpermt2w over 128-byte windows, p = a d and the running
 * max per block are kept, then S, 1 / S, the int8 coefficients and their sums
 * per block follow lane-wise, and two packs and a vpshufb per quad of
 * neurons give the dword quads vpdpbusd takes. Per 4-block tile, each
 * row's codes are gathered with vpermt2w so that dword m of 128-bit lane L
 * holds code bytes 4L..4L+3 of block m; the 4-row byte interleave then
 * leaves block m's outputs in natural order in one register (dword j: code
 * byte j, low nibble output j, high nibble output 16 + j), so each block's
 * coefficient quad is broadcast and y is updated with plain loads and
 * stores. (Done per tile with horizontal reductions per block, the scale
 * steps took about 40 % of the ukernel's time with the rows in L2; row-wise
 * they took 16 % less; the natural order instead of a 4 x 4 transpose of
 * y's blocks per tile and the full-panel scale path took 7 % off the fused
 * gate/up + down, rows in L2, 2026-11-30. From DRAM the fused decode is held
 * by the gathered reads, not by this ukernel: no measurable change there.) */

enum { PB = 32, NWIN = (18 * PB + 127) / 128 }; /* blocks per panel; 128-byte windows over its bytes */

static inline __mmask64 first_bytes(ptrdiff_t n) {
  return n >= 64 ? ~(__mmask64)0 : n <= 0 ? 0 : (((__mmask64)1 << n) - 1);
}

struct acc_consts {
  __m512i m4, code_idx;
  __m512i win_idx[NWIN]; /* window m: output word p = word 9 p - 64 m of the window, */
  __mmask32 win_k[NWIN]; /* for the p whose scale lies in it */
};

static void acc_consts_init(struct acc_consts *k) {
  k->m4 = _mm512_set1_epi8(0x0F);
  int16_t t[32];
  /* lane L, dword m of a row's tile: code bytes 4L..4L+3 of block m (words 9 m + 1 + 2 L + e) */
  for (int L = 0; L < 4; L++)
    for (int m = 0; m < 4; m++)
      for (int e = 0; e < 2; e++) t[8 * L + 2 * m + e] = (int16_t)(9 * m + 1 + 2 * L + e);
  k->code_idx = _mm512_loadu_si512(t);
  for (int m = 0; m < NWIN; m++) {
    __mmask32 km = 0;
    for (int p = 0; p < 32; p++) {
      const int wd = 9 * p - 64 * m;
      t[p] = (int16_t)(wd >= 0 && wd < 64 ? wd : 0);
      if (wd >= 0 && wd < 64) km |= (__mmask32)1 << p;
    }
    k->win_idx[m] = _mm512_loadu_si512(t);
    k->win_k[m] = km;
  }
}

/* The np <= PB block scales (fp16) of the panel at r, word p = block p. */
static inline __m512i panel_scales(const struct acc_consts *k, const uint8_t *r, size_t np) {
  if (np == PB) { /* 576 bytes: four whole windows and the first half of a fifth (no masks) */
    __m512i s =
        _mm512_maskz_permutex2var_epi16(k->win_k[0], _mm512_loadu_si512(r), k->win_idx[0], _mm512_loadu_si512(r + 64));
    __m512i s1 = _mm512_maskz_permutex2var_epi16(k->win_k[1], _mm512_loadu_si512(r + 128), k->win_idx[1],
                                                 _mm512_loadu_si512(r + 192));
    __m512i s2 = _mm512_maskz_permutex2var_epi16(k->win_k[2], _mm512_loadu_si512(r + 256), k->win_idx[2],
                                                 _mm512_loadu_si512(r + 320));
    __m512i s3 = _mm512_maskz_permutex2var_epi16(k->win_k[3], _mm512_loadu_si512(r + 384), k->win_idx[3],
                                                 _mm512_loadu_si512(r + 448));
    const __m512i w8 = _mm512_loadu_si512(r + 512);
    __m512i s4 = _mm512_maskz_permutex2var_epi16(k->win_k[4], w8, k->win_idx[4], w8);
    return _mm512_or_si512(_mm512_or_si512(s, s1), _mm512_or_si512(_mm512_or_si512(s2, s3), s4));
  }
  const ptrdiff_t bytes = (ptrdiff_t)(18 * np);
  __m512i s = _mm512_setzero_si512();
  for (ptrdiff_t m = 0; m < NWIN && 128 * m < bytes; m++) {
    const __m512i lo = _mm512_maskz_loadu_epi8(first_bytes(bytes - 128 * m), r + 128 * m);
    const __m512i hi = _mm512_maskz_loadu_epi8(first_bytes(bytes - 128 * m - 64), r + 128 * m + 64);
    s = _mm512_or_si512(s, _mm512_maskz_permutex2var_epi16(k->win_k[m], lo, k->win_idx[m], hi));
  }
  return s;
}

/* The rule's per-block steps of one group over a panel, from p = a d (P, rows
 * < gn) and the max |p| per block (mx): S and 8 sum c per block, and the
 * coefficient quads X[q][b] (block b's c of rows 4q..4q+3, row r in byte r).
 * Rows gn..gq-1 get c = 0. Per quad and 16 blocks, the four rows' int32 c
 * are narrowed by two signed packs (|c| <= 127: exact), which leave each
 * 128-bit lane holding the 4 rows' c of its 4 blocks row by row, and one
 * vpshufb turns that block by block (one thread, rows in L3: down ukernel
 * 82.0-84.2 -> 80.3-81.0 us per 2252 neurons against vpmovdb per row and a
 * 4-row unpack transpose). */
struct group_coefs {
  _Alignas(64) float S[PB];
  _Alignas(64) int32_t corr[PB];
  _Alignas(64) int32_t X[G / 4][PB];
};

static void group_coefs(float (*P)[PB], const __m512 mx[2], size_t gn, size_t gq, struct group_coefs *gc) {
  __m512 inv[2];
  __m512i corr[2];
  for (int j = 0; j < 2; j++) { /* S = m / 127, 1 / S = 127 / m (0 where m = 0) */
    const __mmask16 nz = _mm512_cmp_ps_mask(mx[j], _mm512_setzero_ps(), _CMP_GT_OQ);
    _mm512_store_ps(gc->S + 16 * j, _mm512_maskz_div_ps(nz, mx[j], _mm512_set1_ps(127.0f)));
    inv[j] = _mm512_maskz_div_ps(nz, _mm512_set1_ps(127.0f), mx[j]);
    corr[j] = _mm512_setzero_si512();
  }
  /* byte 4 m + r of a lane <- byte 4 r + m (row r, the lane's block m) */
  const __m512i order = _mm512_set4_epi32(0x0F0B0703, 0x0E0A0602, 0x0D090501, 0x0C080400);
  for (size_t q = 0; q < gq / 4; q++) {
    for (int j = 0; j < 2; j++) {
      __m512i c[4]; /* c = nearbyint(p / S) */
      for (size_t r = 0; r < 4; r++) {
        const size_t i = 4 * q + r;
        c[r] =
            i < gn ? _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(&P[i][16 * j]), inv[j])) : _mm512_setzero_si512();
        corr[j] = _mm512_add_epi32(corr[j], c[r]);
      }
      const __m512i b8 = _mm512_packs_epi16(_mm512_packs_epi32(c[0], c[1]), _mm512_packs_epi32(c[2], c[3]));
      _mm512_store_si512(&gc->X[q][16 * j], _mm512_shuffle_epi8(b8, order));
    }
  }
  for (int j = 0; j < 2; j++) _mm512_store_si512(gc->corr + 16 * j, _mm512_slli_epi32(corr[j], 3));
}

/* The coefficient quad of rows 4q..4q+3 for block b of the panel. */
static inline __m512i coef_quad(const struct group_coefs *gc, size_t q, size_t b) {
  return _mm512_set1_epi32(gc->X[q][b]);
}

/* acc += block b's codes x (4 rows interleaved: dword j = code byte j) times the quad cv */
static inline void dot_block(const struct acc_consts *k, __m512i x, __m512i cv, __m512i *lo, __m512i *hi) {
  *lo = _mm512_dpbusd_epi32(*lo, _mm512_and_si512(x, k->m4), cv);
  *hi = _mm512_dpbusd_epi32(*hi, _mm512_and_si512(_mm512_srli_epi16(x, 4), k->m4), cv);
}

/* y's block b (32 outputs) = fma(S, acc - corr, y) */
static inline void block_update(float *yb, const struct group_coefs *gc, size_t b, __m512i lo, __m512i hi) {
  const __m512 s = _mm512_set1_ps(gc->S[b]);
  const __m512i c = _mm512_set1_epi32(gc->corr[b]);
  _mm512_storeu_ps(yb, _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(lo, c)), _mm512_loadu_ps(yb)));
  _mm512_storeu_ps(yb + 16, _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(hi, c)), _mm512_loadu_ps(yb + 16)));
}

/* p = a d per row and block of the panel (d: the rows' fp16 scales, word p = block p), and the max |p| */
static inline void panel_p(__m512i s, float a, float *Pi, __m512 mx[2]) {
  const __m512 va = _mm512_set1_ps(a);
  for (int j = 0; j < 2; j++) {
    const __m256i d = j ? _mm512_extracti64x4_epi64(s, 1) : _mm512_castsi512_si256(s);
    const __m512 p = _mm512_mul_ps(_mm512_cvtph_ps(d), va);
    _mm512_store_ps(Pi + 16 * j, p);
    mx[j] = _mm512_max_ps(_mm512_abs_ps(p), mx[j]);
  }
}

/* One group (gn <= G rows at rows[], coefficients a[]) over the panel's np blocks. */
static void group_panel(const struct acc_consts *k, const uint8_t *const *rows, const float *a, size_t gn, size_t np,
                        float *y, const uint8_t *pfw, size_t ldw, const int32_t *pf, size_t n_pf) {
  const size_t gq = (gn + 3) & ~(size_t)3; /* rows read by the quads; those past gn have c = 0 */
  _Alignas(64) float P[G][PB];
  __m512 mx[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (size_t i = 0; i < gn; i++) panel_p(panel_scales(k, rows[i], np), a[i], P[i], mx);
  struct group_coefs gc;
  group_coefs(P, mx, gn, gq, &gc);
  for (size_t t = 0; t < (np + 3) / 4; t++) {
    const size_t nbt = np - 4 * t < 4 ? np - 4 * t : 4, off = 72 * t;
    for (size_t j = 0; j < n_pf; j++) { /* the prefetch rows' segments of this tile (72 bytes: one or two lines) */
      const char *p = (const char *)row_at(pfw, ldw, pf, j) + off;
      _mm_prefetch(p, _MM_HINT_T1);
      _mm_prefetch(p + 71, _MM_HINT_T1);
    }
    const __mmask64 lm = nbt == 4 ? ~(__mmask64)0 : (((__mmask64)1 << (18 * nbt)) - 1);
    const __mmask64 lm2 = nbt == 4 ? (__mmask64)0xFF : 0; /* bytes 64..71 of a whole tile */
    __m512i acc[8]; /* acc[m], acc[4 + m]: block m's low and high nibble outputs */
    for (int m = 0; m < 8; m++) acc[m] = _mm512_setzero_si512();
    for (size_t q = 0; q < gq / 4; q++) {
      __m512i v[4];
      for (int r = 0; r < 4; r++) {
        const uint8_t *tp = rows[4 * q + (size_t)r] + off;
        v[r] = _mm512_permutex2var_epi16(_mm512_maskz_loadu_epi8(lm, tp), k->code_idx,
                                         _mm512_maskz_loadu_epi8(lm2, tp + 64));
      }
      const __m512i t0 = _mm512_unpacklo_epi8(v[0], v[1]), t1 = _mm512_unpackhi_epi8(v[0], v[1]);
      const __m512i t2 = _mm512_unpacklo_epi8(v[2], v[3]), t3 = _mm512_unpackhi_epi8(v[2], v[3]);
      /* x[m]: block m's code bytes of the 4 rows, output order (dword j = code byte j) */
      const __m512i x[4] = {_mm512_unpacklo_epi16(t0, t2), _mm512_unpackhi_epi16(t0, t2), _mm512_unpacklo_epi16(t1, t3),
                            _mm512_unpackhi_epi16(t1, t3)};
      for (size_t m = 0; m < 4; m++) dot_block(k, x[m], coef_quad(&gc, q, 4 * t + m), &acc[m], &acc[4 + m]);
    }
    for (size_t m = 0; m < nbt; m++) block_update(y + 32 * (4 * t + m), &gc, 4 * t + m, acc[m], acc[4 + m]);
  }
}

void spr_q4_0_axpyq_acc_ukernel_128__avx512vnni(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw,
                                                size_t ne, float *y, const int32_t *pf, size_t n_pf) {
  const size_t nb = ne / 32;
  struct acc_consts k;
  acc_consts_init(&k);
  for (size_t p0 = 0; p0 < nb; p0 += PB) {
    const size_t np = nb - p0 < PB ? nb - p0 : PB;
    for (size_t g0 = 0; g0 < n; g0 += G) {
      const size_t gn = n - g0 < G ? n - g0 : G;
      const uint8_t *rows[G];
      for (size_t i = 0; i < G; i++) rows[i] = row_at(w, ldw, idx, g0 + (i < gn ? i : 0)) + 18 * p0;
      group_panel(&k, rows, a + g0, gn, np, y + 32 * p0, (const uint8_t *)w + 18 * p0, ldw, pf, g0 == 0 ? n_pf : 0);
    }
  }
}

/* ---- the same rule over the packed down layout (coreffn.h, spr_down_pack_quad) ----
 * The quads hold each block's codes of 4 rows already interleaved (one
 * 64-byte load per block and quad) and each row's scales contiguous (one
 * load per panel and row): no vpermt2w and no unpacks. The same integer sums
 * and f32 steps as above: the same bits. The prefetch bytes [pf, pf +
 * pf_bytes) (the next sub-block's quads) are spread over the group's tiles. */
void spr_q4_0_down_packed_acc__avx512vnni(size_t n, const float *a, const void *quads, size_t kb, float *y,
                                          const void *pf, size_t pf_bytes) {
  struct acc_consts k;
  acc_consts_init(&k);
  const uint8_t *qb = quads;
  const size_t qbytes = spr_down_pack_quad_bytes(kb), tiles = (kb + 3) / 4;
  const char *pfc = pf;
  const size_t lines = pf != NULL ? (pf_bytes + 63) / 64 : 0;
  for (size_t g0 = 0; g0 < n; g0 += G) {
    const size_t gn = n - g0 < G ? n - g0 : G, gq = (gn + 3) & ~(size_t)3;
    const uint8_t *gquads = qb + g0 / 4 * qbytes;
    for (size_t p0 = 0; p0 < kb; p0 += PB) {
      const size_t np = kb - p0 < PB ? kb - p0 : PB;
      const __mmask32 sm = np == PB ? ~(__mmask32)0 : (((__mmask32)1 << np) - 1);
      _Alignas(64) float P[G][PB];
      __m512 mx[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
      for (size_t i = 0; i < gn; i++) {
        const uint8_t *sc = gquads + i / 4 * qbytes + i % 4 * 2 * kb + 2 * p0;
        panel_p(_mm512_maskz_loadu_epi16(sm, sc), a[g0 + i], P[i], mx);
      }
      struct group_coefs gc;
      group_coefs(P, mx, gn, gq, &gc);
      for (size_t t = 0; t < (np + 3) / 4; t++) {
        const size_t nbt = np - 4 * t < 4 ? np - 4 * t : 4, tg = p0 / 4 + t; /* tile of the row */
        if (g0 == 0)
          for (size_t l = lines * tg / tiles; l < lines * (tg + 1) / tiles; l++)
            _mm_prefetch(pfc + 64 * l, _MM_HINT_T1);
        __m512i acc[8];
        for (int m = 0; m < 8; m++) acc[m] = _mm512_setzero_si512();
        for (size_t q = 0; q < gq / 4; q++) {
          const uint8_t *codes = gquads + q * qbytes + 8 * kb + 64 * (p0 + 4 * t);
          for (size_t m = 0; m < nbt; m++)
            dot_block(&k, _mm512_loadu_si512(codes + 64 * m), coef_quad(&gc, q, 4 * t + m), &acc[m], &acc[4 + m]);
        }
        for (size_t m = 0; m < nbt; m++) block_update(y + 32 * (p0 + 4 * t + m), &gc, 4 * t + m, acc[m], acc[4 + m]);
      }
    }
  }
}
