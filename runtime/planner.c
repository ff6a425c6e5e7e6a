/* runtime/planner.c — greedy-by-size placement of intermediates. */
#include "runtime/planner.h"

#include "runtime/util.h"

static int lifetimes_overlap(const struct spr_tensor *a, const struct spr_tensor *b) {
  return a->first_use <= b->last_use && b->first_use <= a->last_use;
}

size_t spr_plan_activations(struct spr_tensor *ts, int32_t n, size_t *naive_out) {
  size_t naive = 0, region = 0;
  int32_t head = -1; /* placed tensors, sorted by offset */
  for (int32_t i = 0; i < n; i++) {
    if (!spr_plan_is_act(&ts[i])) continue;
    ts[i].offset = SIZE_MAX;
    ts[i].plan_next = -1;
    if (ts[i].last_use < ts[i].first_use) ts[i].first_use = ts[i].last_use = -1; /* unused */
    naive += spr_align_up(ts[i].nbytes, SPR_PLAN_ALIGN);
  }
  for (;;) {
    /* Largest unplaced tensor; O(n^2) overall, n is a few thousand at most. */
    int32_t best = -1;
    size_t best_size = 0;
    for (int32_t i = 0; i < n; i++) {
      if (!spr_plan_is_act(&ts[i]) || ts[i].offset != SIZE_MAX) continue;
      const size_t sz = spr_align_up(ts[i].nbytes, SPR_PLAN_ALIGN);
      if (best < 0 || sz > best_size) {
        best = i;
        best_size = sz;
      }
    }
    if (best < 0) break;
    struct spr_tensor *t = &ts[best];
    size_t at = 0;
    int32_t prev = -1;
    for (int32_t j = head; j >= 0; j = ts[j].plan_next) {
      const struct spr_tensor *p = &ts[j];
      if (lifetimes_overlap(t, p)) {
        if (p->offset >= at && p->offset - at >= best_size) break;
        const size_t end = p->offset + spr_align_up(p->nbytes, SPR_PLAN_ALIGN);
        if (end > at) at = end;
      }
    }
    t->offset = at;
    /* Insert into the offset-sorted list (stable: after equal offsets). */
    for (int32_t j = head; j >= 0 && ts[j].offset <= at; j = ts[j].plan_next) prev = j;
    if (prev < 0) {
      t->plan_next = head;
      head = best;
    } else {
      t->plan_next = ts[prev].plan_next;
      ts[prev].plan_next = best;
    }
    if (at + best_size > region) region = at + best_size;
  }
  if (naive_out != NULL) *naive_out = naive;
  return region;
}

size_t spr_plan_state(struct spr_tensor *ts, int32_t n) {
  size_t at = 0;
  for (int32_t i = 0; i < n; i++) {
    if (ts[i].role != SPR_ROLE_STATE) continue;
    ts[i].offset = at;
    at += spr_align_up(ts[i].nbytes, SPR_PLAN_ALIGN);
  }
  return at;
}
