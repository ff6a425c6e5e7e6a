/* ops/coreffn/rqtp_avx512vnni.c — Q4_0 ffn_down_t columns requantized
 * straight into the AVX-512 VNNI Q8_0 GEMM's packed panel (contract in
 * coreffn.h; layout in ops/gemm/qgemm_packed_avx512vnni.c: per block 8
 * quads x 32 columns x 4 codes, 32 f32 scales, 32 int32 -128 * column sums).
 * A group of 32 rows is one block of the panel and the four rows of a quad
 * are the four codes of each column's dword, so the codes of a quad (rows in
 * the lanes, rqt_q4_avx512_impl.h) need one cross-lane dword transpose and
 * one in-lane byte shuffle to become the panel's bytes: no Q8_0 strip in
 * between and no 32 x 32 byte transpose. */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__) || !defined(__AVX512BW__)
#error "this file needs -mavx512f -mavx512bw -mavx512vnni"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"
#include "ops/coreffn/rqt_q4_avx512_impl.h"
#include "ops/gemm/qgemm.h"

#if SPR_QX_0_PGEMM_NV != 2
#error "rqtp_avx512vnni.c writes 32-column panels (SPR_QX_0_PGEMM_NV 2)"
#endif

enum { WQ = 128, WD = 1024, WC = 1152, WBLK = 1280, SETUPS = 8, PF_GROUPS = 2 };

void spr_q4_0_rqtp_ukernel__avx512vnni(const void *w, size_t ldw, size_t kb, size_t np, void *panels) {
  /* in lane i: [row r's codes of columns 4i..4i+3]_r -> [column 4i+c's codes of rows 0..3]_c */
  const __m512i cols = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  const __m512i ones = _mm512_set1_epi8(1), m128 = _mm512_set1_epi32(-128);
  for (size_t g = 0; g < kb; g++) {
    const uint8_t *rows = (const uint8_t *)w + 32 * g * ldw;
    /* the 32 rows PF_GROUPS groups ahead, ldw apart: no hardware prefetcher
     * follows them. Into L2: 96 lines into L1 at once stalled on its few miss
     * buffers (one group ahead into L1: ffn_down prefill 76 ms per 64-token
     * step of the TinyLlama-shape bundle file; into L2: 66-67 ms, 2 threads) */
    if (g + PF_GROUPS < kb)
      for (size_t kk = 0; kk < 32; kk++) {
        const char *r = (const char *)(rows + (32 * PF_GROUPS + kk) * ldw);
        for (size_t off = 0; off < 18 * np; off += 64) _mm_prefetch(r + off, _MM_HINT_T1);
        _mm_prefetch(r + 18 * np - 1, _MM_HINT_T1);
      }
    for (size_t p0 = 0; p0 < np; p0 += SETUPS) {
      /* the group scales of up to SETUPS panels first: each one's chain (32
       * strided loads, a reduction, a division) is independent of the others'
       * and of the codes below, so they overlap (7 % faster with rows in L2) */
      const size_t pn = np - p0 < SETUPS ? np - p0 : SETUPS;
      float fs[SETUPS][32];
      uint16_t dhs[SETUPS];
      bool live[SETUPS];
      for (size_t p = 0; p < pn; p++) live[p] = rqt_q4_group(rows + 18 * (p0 + p), ldw, fs[p], &dhs[p]);
      for (size_t pp = 0; pp < pn; pp++) {
        const size_t p = p0 + pp;
        const uint8_t *blk = rows + 18 * p;
        uint8_t *o = (uint8_t *)panels + WBLK * (p * kb + g);
        const float *f = fs[pp];
        const uint16_t dh = dhs[pp];
        if (!live[pp]) {
          memset(o, 0, WBLK);
          continue;
        }
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        for (size_t q = 0; q < 8; q++) {
          __m512i lo, hi;
          rqt_q4_codes4(blk + 4 * q * ldw + 2, ldw, f + 4 * q, &lo, &hi);
          lo = _mm512_shuffle_epi8(rqt_q4_xpose4(lo), cols);
          hi = _mm512_shuffle_epi8(rqt_q4_xpose4(hi), cols);
          _mm512_store_si512(o + WQ * q, lo);
          _mm512_store_si512(o + WQ * q + 64, hi);
          s0 = _mm512_dpbusd_epi32(s0, ones, lo);
          s1 = _mm512_dpbusd_epi32(s1, ones, hi);
        }
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(dh));
        _mm512_store_ps(o + WD, d);
        _mm512_store_ps(o + WD + 64, d);
        _mm512_store_si512(o + WC, _mm512_mullo_epi32(s0, m128));
        _mm512_store_si512(o + WC + 64, _mm512_mullo_epi32(s1, m128));
      }
    }
  }
}
