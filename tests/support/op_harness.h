/* tests/support/op_harness.h — run one op outside a graph (tests, bench-op).
 *
 * The caller fills a tensor array (data pointers set, shapes set, roles
 * arbitrary) and a node whose src/dst index that array. The harness runs the
 * op's check, prepare (with isa mask), workspace, allocates the scratch and
 * a pool of n_threads, then runs the op `reps` times. */
#ifndef SPR_TESTS_OP_HARNESS_H
#define SPR_TESTS_OP_HARNESS_H

#include <stdint.h>

#include "ops/op.h"

/* Fills t with a contiguous shape (nbytes computed); data left to the caller. */
void spr_test_tensor(struct spr_tensor *t, enum spr_dtype type, int n_dims, const int64_t *ne, void *data);

/* Returns the op's check status (message in err when non-OK), else runs it.
 * *impl_name (may be NULL) receives the chosen ukernel's name. */
enum spr_status spr_test_op_run(struct spr_tensor *ts, struct spr_node *node, uint32_t isa, int n_threads, int reps,
                                const char **impl_name, struct spr_error *err);

#endif
