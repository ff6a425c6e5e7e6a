/* tests/support/op_harness.h — run one op outside a graph (tests, bench-op).
 *
 * The caller fills a tensor array (data pointers set, shapes set, roles
 * arbitrary) and a node whose src/dst index that array. The harness runs the
 * op's check, prepare (with isa mask), workspace, allocates the scratch and
 * a pool of n_threads, then runs the op. It allocates with malloc: it is a
 * tool for tests and benchmarks, never part of an inference path. */
#ifndef SPR_TESTS_OP_HARNESS_H
#define SPR_TESTS_OP_HARNESS_H

#include <stdint.h>

#include "ops/op.h"

/* Fills t with a contiguous shape (nbytes computed); data left to the caller. */
void spr_test_tensor(struct spr_tensor *t, enum spr_dtype type, int n_dims, const int64_t *ne, void *data);

struct spr_test_op {
  struct spr_tensor *ts;
  struct spr_node *node;
  struct spr_exec exec;
  struct spr_run_state run; /* exec.run points here; set n_past/n_tokens before exec */
  void *scratch;
  void *pool_mem;
};

/* check + prepare + workspace + scratch + pool. Returns check's status. */
enum spr_status spr_test_op_setup(struct spr_test_op *h, struct spr_tensor *ts, struct spr_node *node, uint32_t isa,
                                  int n_threads, struct spr_error *err);
void spr_test_op_exec(struct spr_test_op *h);
void spr_test_op_teardown(struct spr_test_op *h);

/* setup, `reps` runs, teardown (run state: n_past 0, n_tokens 0). *impl_name (may be NULL) receives the
 * chosen ukernel's name. */
enum spr_status spr_test_op_run(struct spr_tensor *ts, struct spr_node *node, uint32_t isa, int n_threads, int reps,
                                const char **impl_name, struct spr_error *err);

#endif
