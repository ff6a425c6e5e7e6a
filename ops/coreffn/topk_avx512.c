/* ops/coreffn/topk_avx512.c — the per-token top-k count (contract in
 * coreffn.h, the scalar twin in core_select.c) with AVX-512.
 *
 * The same three steps as the scalar kernel, with the scalar parts cut:
 * - keys: one vector pass writes the keys and compresses the bins of the
 *   positive keys into aux. When the row has at least k positive values
 *   (k = alpha * mean positive count: nearly always), the k-th largest is
 *   one of them and only they are histogrammed (about half of the row);
 * - the walk down the histogram starts at the bin of the largest key;
 * - one vector pass adds 1 to every neuron above the bin and compresses
 *   the bin's keys and indices (the scalar twin looked into every group of
 *   16 holding one: with SiLU(g) * u of random g, u that bin holds about
 *   100 of 5632 and a quarter of the groups);
 * then the bin is settled as in the scalar kernel (spr_topk_settle). */
#if !defined(__AVX512F__) || !defined(__AVX512BW__)
#error "this file needs -mavx512f -mavx512bw"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"
#include "ops/coreffn/topk_impl.h"

static inline __mmask16 tail_mask(size_t n, size_t g) {
  return n - g >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - g)) - 1u);
}

void spr_core_topk_count__avx512(const float *a, size_t n_ff, size_t k, void *scratch, int32_t *freq, bool atomic) {
  if (k == 0) return;
  if (k > n_ff) k = n_ff;
  const struct spr_topk_scratch sc = spr_topk_scratch_at(scratch, n_ff);
  uint32_t *ord = sc.ord, *aux = sc.aux, *hist = sc.hist0, *hist1 = sc.hist1;
  const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
  __m512i vmax = _mm512_setzero_si512();
  size_t pos = 0; /* keys above +0: the positive values (and +NaN) */
  for (size_t g = 0; g < n_ff; g += 16) {
    const __mmask16 live = tail_mask(n_ff, g);
    const __m512i u = _mm512_castps_si512(_mm512_add_ps(_mm512_maskz_loadu_ps(live, a + g), _mm512_setzero_ps()));
    const __m512i key = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), sign));
    _mm512_storeu_si512(ord + g, key); /* ord holds 16 more than n_ff */
    vmax = _mm512_max_epu32(vmax, _mm512_maskz_mov_epi32(live, key));
    const __mmask16 p = _mm512_mask_cmpgt_epu32_mask(live, key, sign);
    _mm512_storeu_si512(aux + pos, _mm512_maskz_compress_epi32(p, _mm512_srli_epi32(key, SPR_TOPK_SHIFT)));
    pos += (size_t)__builtin_popcount((unsigned)p);
  }
  /* the histogram: of the positive keys' bins when those hold the k-th
   * largest (then every bin above it holds only positive keys), else of all */
  const uint32_t top = _mm512_reduce_max_epu32(vmax) >> SPR_TOPK_SHIFT;
  memset(hist, 0, (top + 1) * sizeof(uint32_t));
  memset(hist1, 0, (top + 1) * sizeof(uint32_t));
  if (pos >= k)
    spr_topk_hist(aux, pos, 0, hist, hist1);
  else
    spr_topk_hist(ord, n_ff, SPR_TOPK_SHIFT, hist, hist1);
  size_t above = 0;
  uint32_t bin = top;
  while (above + hist[bin] + hist1[bin] < k) above += hist[bin] + hist1[bin], bin--;
  /* one pass: +1 above the bin, the bin's keys and indices compressed to
   * the front of ord and aux (behind the pass: a store at m <= g never
   * reaches a key not yet read) */
  const __m512i lim = _mm512_set1_epi32((int)((bin + 1) << SPR_TOPK_SHIFT)), vbin = _mm512_set1_epi32((int)bin);
  const bool any_above = bin < SPR_TOPK_BINS - 1;
  const __m512i one = _mm512_set1_epi32(1), step = _mm512_set1_epi32(16);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t m = 0;
  for (size_t g = 0; g < n_ff; g += 16, idx = _mm512_add_epi32(idx, step)) {
    const __mmask16 live = tail_mask(n_ff, g);
    const __m512i key = _mm512_loadu_si512(ord + g);
    if (any_above) {
      __mmask16 up = _mm512_mask_cmpge_epu32_mask(live, key, lim);
      if (!atomic) {
        const __m512i f = _mm512_maskz_loadu_epi32(live, freq + g);
        _mm512_mask_storeu_epi32(freq + g, live, _mm512_mask_add_epi32(f, up, f, one));
      } else {
        for (; up != 0; up &= (__mmask16)(up - 1))
          __atomic_fetch_add(&freq[g + (size_t)__builtin_ctz(up)], 1, __ATOMIC_RELAXED);
      }
    }
    const __mmask16 in = _mm512_mask_cmpeq_epi32_mask(live, _mm512_srli_epi32(key, SPR_TOPK_SHIFT), vbin);
    if (in != 0) {
      _mm512_storeu_si512(ord + m, _mm512_maskz_compress_epi32(in, key));
      _mm512_storeu_si512(aux + m, _mm512_maskz_compress_epi32(in, idx));
      m += (size_t)__builtin_popcount((unsigned)in);
    }
  }
  for (size_t i = 0; i < m; i++) sc.cand[i] = spr_topk_key_of(ord[i], aux[i]);
  spr_topk_settle(sc.cand, m, k - above, freq, atomic);
}
