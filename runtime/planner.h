/* runtime/planner.h — places intermediates in the activation region.
 *
 * Greedy by size: tensors are taken largest first (ties: lower id first) and
 * each is put at the lowest offset that does not overlap any already-placed
 * tensor whose lifetime [first_use, last_use] intersects its own. Lifetimes
 * come from spr_graph_finalize. Every placed size is rounded up to 64 bytes.
 * The planner needs no memory of its own (it links tensors through
 * plan_next), so it runs inside the arena on firmware. */
#ifndef SPR_RUNTIME_PLANNER_H
#define SPR_RUNTIME_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "ops/tensor.h"

#define SPR_PLAN_ALIGN 64

/* True for roles placed in the activation region (ACT, INPUT, OUTPUT). */
static inline int spr_plan_is_act(const struct spr_tensor *t) {
  return t->role == SPR_ROLE_ACT || t->role == SPR_ROLE_INPUT || t->role == SPR_ROLE_OUTPUT;
}

/* Sets t->offset for every activation tensor of ts[0..n); returns the
 * region size. *naive_out (may be NULL) gets the sum of the sizes. */
size_t spr_plan_activations(struct spr_tensor *ts, int32_t n, size_t *naive_out);

/* Places STATE tensors one after another; returns the region size. */
size_t spr_plan_state(struct spr_tensor *ts, int32_t n);

#endif
