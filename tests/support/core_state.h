/* tests/support/core_state.h — what the core-neuron op tests share: the
 * selection state buffers the ops read and write (struct spr_core_sel and
 * struct spr_core_ctl, as I32 tensors), and a reproducible choice of
 * neuron ids. Header-only: the helpers are small and static. */
#ifndef SPR_TESTS_CORE_STATE_H
#define SPR_TESTS_CORE_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ops/coreffn/coreffn.h"
#include "support/test_util.h"

struct spr_test_core_state {
  int32_t *sel, *ctl;
  size_t sel_words;
};

/* Zeroed buffers for F neurons (the control block with 8 spare words); free with _free. */
static inline void spr_test_core_state_init(struct spr_test_core_state *b, size_t F) {
  b->sel_words = spr_core_sel_words(F);
  b->sel = calloc(b->sel_words, sizeof(int32_t));
  b->ctl = calloc(SPR_CORE_CTL_WORDS + 8, sizeof(int32_t));
}

static inline void spr_test_core_state_free(struct spr_test_core_state *b) {
  free(b->sel);
  free(b->ctl);
}

static inline struct spr_core_sel *spr_test_core_sel(struct spr_test_core_state *b) {
  return (struct spr_core_sel *)(void *)b->sel;
}

static inline struct spr_core_ctl *spr_test_core_ctl(struct spr_test_core_state *b) {
  return (struct spr_core_ctl *)(void *)b->ctl;
}

/* n distinct ascending ids in [0, range), from a fixed seed */
static inline void spr_test_pick_ids(int32_t *ids, size_t n, size_t range, uint64_t seed) {
  uint64_t s = seed;
  size_t got = 0;
  for (size_t r = 0; r < range && got < n; r++) {
    const size_t left = range - r, need = n - got;
    if (spr_test_rng_next(&s) % left < need) ids[got++] = (int32_t)r;
  }
}

#endif
