/* ops/coreffn/topk_impl.h — what the top-k ukernels (topk.inc) share: the
 * key order, the scratch layout and the last step (internal to coreffn). */
#ifndef SPR_OPS_COREFFN_TOPK_IMPL_H
#define SPR_OPS_COREFFN_TOPK_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/common/fp16.h"
#include "runtime/util.h"

/* The keys' top RADIX_BITS bits index the histogram that finds the bin of
 * the k-th largest (sign, exponent, 2 mantissa bits: bins 2^(1/4) wide). */
enum { SPR_TOPK_RADIX_BITS = 11, SPR_TOPK_BINS = 1 << SPR_TOPK_RADIX_BITS, SPR_TOPK_SHIFT = 32 - SPR_TOPK_RADIX_BITS };

/* The float bits mapped to an unsigned order (-0 folded onto +0). */
static inline uint32_t spr_topk_order_of(float v) {
  const uint32_t u = spr_f32_to_bits(v + 0.0f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* A total order on (value, index): larger value first, then lower index. */
static inline uint64_t spr_topk_key_of(uint32_t order, size_t n) {
  return ((uint64_t)order << 32) | (uint32_t) ~(uint32_t)n;
}

/* Scratch of n_ff neurons, 64-aligned sections: ord u32[F] (padded to 16),
 * aux u32[F] (padded to 16), cand u64[F], two histograms u32[BINS]. */
struct spr_topk_scratch {
  uint32_t *ord, *aux, *hist0, *hist1;
  uint64_t *cand;
};

/* Byte offsets of the scratch's parts (spr_core_topk_scratch_bytes adds the
 * histograms to the last one). */
static inline size_t spr_topk_u32s_bytes(size_t n_ff) {
  return spr_align_up((n_ff + 16) * sizeof(uint32_t), 64);
}
static inline size_t spr_topk_hist_offset(size_t n_ff) {
  return 2 * spr_topk_u32s_bytes(n_ff) + spr_align_up(n_ff * sizeof(uint64_t), 64);
}

static inline struct spr_topk_scratch spr_topk_scratch_at(void *scratch, size_t n_ff) {
  uint8_t *p = scratch;
  const size_t u32s = spr_topk_u32s_bytes(n_ff);
  struct spr_topk_scratch s;
  s.ord = (uint32_t *)(void *)p;
  s.aux = (uint32_t *)(void *)(p + u32s);
  s.cand = (uint64_t *)(void *)(p + 2 * u32s);
  s.hist0 = (uint32_t *)(void *)(p + spr_topk_hist_offset(n_ff));
  s.hist1 = s.hist0 + SPR_TOPK_BINS;
  return s;
}

/* h0/h1[v[i] >> shift] += 1 for i < n, even i into h0 and odd i into h1:
 * activations crowd a few bins, and one histogram's increments of the same
 * bin would wait on each other. */
static inline void spr_topk_hist(const uint32_t *v, size_t n, unsigned shift, uint32_t *h0, uint32_t *h1) {
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    h0[v[i] >> shift]++;
    h1[v[i + 1] >> shift]++;
  }
  if (i < n) h0[v[i] >> shift]++;
}

/* The last step of every top-k ukernel: freq[n] += 1 for the neuron of each
 * of the `rest` largest of the m keys cand[] (all of them if rest >= m). */
void spr_topk_settle(uint64_t *cand, size_t m, size_t rest, int32_t *freq, bool atomic);

#endif
