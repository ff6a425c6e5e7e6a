/* ops/coreffn/core_select.c — the selection kernels (rules in coreffn.h):
 * positive counts, per-token top-k, and the pick of the most frequent
 * neurons.
 *
 * Top-k: each value becomes an unsigned key whose order is the value order
 * (-0 folded onto +0); a histogram of the keys' top RADIX_BITS bits finds
 * the bin holding the k-th largest; every neuron in a higher bin is in the
 * top k, and the bin itself is settled by quickselect on (key, index)
 * pairs (larger value first, then lower index): the same set as ranking
 * everything, in about three branch-light passes over the row instead of a
 * quickselect over all of it. The bin's neurons (1-2 %) are gathered by
 * testing 16 at a time and looking only into groups that hold some: 9.1-9.6
 * -> 6.6-7.0 us per row of 5632 (one thread, SiLU(g) * u of random g, u; k
 * 562), where a branch-free compress of every neuron took half the time.
 * This is the scalar entry of topk.inc (the twin of topk_avx512.c). */
#include <math.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"
#include "ops/coreffn/topk_impl.h"

size_t spr_core_count(float beta, size_t n_ff) {
  if (!(beta > 0.0f)) return 0;
  const double c = floor((double)beta * (double)n_ff);
  if (c < 1.0) return 1;
  return c >= (double)n_ff ? n_ff : (size_t)c;
}

size_t spr_core_count_positive(const float *a, size_t n_ff) {
  size_t p = 0;
  for (size_t n = 0; n < n_ff; n++) p += a[n] > 0.0f;
  return p;
}

size_t spr_core_topk_scratch_bytes(size_t n_ff) {
  return spr_topk_hist_offset(n_ff) + spr_align_up(2 * SPR_TOPK_BINS * sizeof(uint32_t), 64);
}

static inline void swap_keys(uint64_t *a, uint64_t *b) {
  const uint64_t t = *a;
  *a = *b;
  *b = t;
}

/* Rearranges keys[0..n) so that keys[0..k) are the k largest (any order). */
static void select_largest(uint64_t *keys, size_t n, size_t k) {
  size_t lo = 0, hi = n; /* the boundary k lies in [lo, hi) */
  while (hi - lo > 16) {
    /* median of three as the pivot, moved to hi - 1 */
    const size_t mid = lo + (hi - lo) / 2;
    if (keys[mid] > keys[lo]) swap_keys(&keys[mid], &keys[lo]);
    if (keys[hi - 1] > keys[lo]) swap_keys(&keys[hi - 1], &keys[lo]);
    if (keys[mid] > keys[hi - 1]) swap_keys(&keys[mid], &keys[hi - 1]);
    const uint64_t pivot = keys[hi - 1];
    size_t store = lo;
    for (size_t i = lo; i + 1 < hi; i++) {
      if (keys[i] > pivot) swap_keys(&keys[i], &keys[store++]);
    }
    swap_keys(&keys[store], &keys[hi - 1]); /* keys[store] = pivot: store items are larger */
    if (store == k || store + 1 == k) return;
    if (store > k)
      hi = store;
    else
      lo = store + 1;
  }
  /* insertion sort of the small remaining range, descending */
  for (size_t i = lo + 1; i < hi; i++) {
    const uint64_t v = keys[i];
    size_t j = i;
    while (j > lo && keys[j - 1] < v) {
      keys[j] = keys[j - 1];
      j--;
    }
    keys[j] = v;
  }
}

void spr_topk_settle(uint64_t *cand, size_t m, size_t rest, int32_t *freq, bool atomic) {
  if (rest < m) select_largest(cand, m, rest);
  if (rest > m) rest = m;
  for (size_t i = 0; i < rest; i++) {
    const uint32_t n = ~(uint32_t)cand[i];
    if (atomic)
      __atomic_fetch_add(&freq[n], 1, __ATOMIC_RELAXED);
    else
      freq[n]++;
  }
}

void spr_core_topk_count__scalar(const float *a, size_t n_ff, size_t k, void *scratch, int32_t *freq, bool atomic) {
  if (k == 0) return;
  if (k > n_ff) k = n_ff;
  const struct spr_topk_scratch sc = spr_topk_scratch_at(scratch, n_ff);
  uint32_t *ord = sc.ord, *hist = sc.hist0, *hist1 = sc.hist1;
  uint64_t *cand = sc.cand;
  memset(hist, 0, 2 * SPR_TOPK_BINS * sizeof(uint32_t));
  for (size_t n = 0; n < n_ff; n++) ord[n] = spr_topk_order_of(a[n]); /* apart from the counts: a vector loop */
  spr_topk_hist(ord, n_ff, SPR_TOPK_SHIFT, hist, hist1);
  for (size_t b = 0; b < SPR_TOPK_BINS; b++) hist[b] += hist1[b];
  /* bin: the one holding the k-th largest; above: how many are in higher bins */
  size_t above = 0;
  uint32_t bin = SPR_TOPK_BINS - 1;
  while (above + hist[bin] < k) above += hist[bin--];
  /* the neurons above the bin (about k of n_ff, scattered: a branch per
   * neuron would mispredict often): a branch-free pass; then the bin's */
  size_t m = 0;
  const uint32_t lim = (bin + 1) << SPR_TOPK_SHIFT; /* ord >= lim: in a higher bin (0 past the top bin) */
  if (lim == 0) {
  } else if (atomic) {
    for (size_t n = 0; n < n_ff; n++)
      if (ord[n] >= lim) __atomic_fetch_add(&freq[n], 1, __ATOMIC_RELAXED);
  } else {
    for (size_t n = 0; n < n_ff; n++) freq[n] += ord[n] >= lim;
  }
  /* the bin's neurons: about 2 % of them, in no pattern. Per 16 neurons one
   * vectorizable test; only a group that holds some is looked at one by one
   * (a branch-free compress of every neuron took half of the top-k's time) */
  size_t g = 0;
  for (; g + 16 <= n_ff; g += 16) {
    uint32_t any = 0;
    for (size_t j = 0; j < 16; j++) any |= (uint32_t)(ord[g + j] >> SPR_TOPK_SHIFT == bin);
    if (!any) continue;
    for (size_t j = g; j < g + 16; j++)
      if (ord[j] >> SPR_TOPK_SHIFT == bin) cand[m++] = spr_topk_key_of(ord[j], j);
  }
  for (; g < n_ff; g++)
    if (ord[g] >> SPR_TOPK_SHIFT == bin) cand[m++] = spr_topk_key_of(ord[g], g);
  spr_topk_settle(cand, m, k - above, freq, atomic);
}

enum { PICK_BINS = 256, PICK_HISTS = 2 }; /* 2 KiB of stack */

void spr_core_pick(const int32_t *freq, size_t n_ff, size_t n_core, int32_t *core) {
  if (n_core == 0) return;
  if (n_core > n_ff) n_core = n_ff;
  int32_t top = 0;
  for (size_t n = 0; n < n_ff; n++) top = freq[n] > top ? freq[n] : top;
  /* lo = the largest value with #{freq >= lo} >= n_core (0 always qualifies);
   * above = #{freq > lo}. Counts below PICK_BINS (a selection window of fewer
   * tokens) by one histogram pass, two histograms taking alternate neurons
   * (neighbours often share a count: one histogram's increments would wait
   * on each other); larger counts by bisection, a pass a step. */
  int32_t lo = 0;
  size_t above = 0;
  if (top < PICK_BINS) {
    uint32_t hist[PICK_HISTS][PICK_BINS];
    for (int h = 0; h < PICK_HISTS; h++) memset(hist[h], 0, (size_t)(top + 1) * sizeof hist[h][0]);
    for (size_t n = 0; n < n_ff; n++) hist[n % PICK_HISTS][freq[n] > 0 ? freq[n] : 0]++;
    for (int32_t v = 0; v <= top; v++)
      for (int h = 1; h < PICK_HISTS; h++) hist[0][v] += hist[h][v];
    for (lo = top; lo > 0 && above + hist[0][lo] < n_core; lo--) above += hist[0][lo];
  } else {
    int32_t hi = top;
    while (lo < hi) {
      const int32_t mid = lo + (hi - lo + 1) / 2;
      size_t c = 0;
      for (size_t n = 0; n < n_ff; n++) c += freq[n] >= mid;
      if (c >= n_core)
        lo = mid;
      else
        hi = mid - 1;
    }
    for (size_t n = 0; n < n_ff; n++) above += freq[n] > lo;
  }
  /* without branches: about 40 % of the neurons are taken, in no pattern a
   * predictor learns; core[out] is written for every n and kept when taken
   * (core has room: out < n_core until the last one is taken, then the loop ends) */
  size_t ties = n_core - above, out = 0;
  for (size_t n = 0; n < n_ff && out < n_core; n++) {
    const size_t tie = (size_t)(freq[n] == lo) & (size_t)(ties > 0);
    core[out] = (int32_t)n;
    out += (size_t)(freq[n] > lo) | tie;
    ties -= tie;
  }
}
