/* tests/support/op_harness.c */
#include "op_harness.h"

#include <stdlib.h>
#include <string.h>

#include "platform/threads.h"
#include "sparrow/gguf.h"

void spr_test_tensor(struct spr_tensor *t, enum spr_dtype type, int n_dims, const int64_t *ne, void *data) {
  memset(t, 0, sizeof *t);
  t->type = type;
  t->role = SPR_ROLE_ACT;
  t->n_dims = (uint8_t)n_dims;
  for (int i = 0; i < SPR_MAX_DIMS; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
  t->nbytes = spr_tensor_nbytes(type, t->ne, SPR_MAX_DIMS);
  t->data = data;
  t->parent = -1;
  t->name = "test";
  t->layer = -1;
}

enum spr_status spr_test_op_setup(struct spr_test_op *h, struct spr_tensor *ts, struct spr_node *node, uint32_t isa,
                                  int n_threads, struct spr_error *err) {
  memset(h, 0, sizeof *h);
  const struct spr_op_def *def = spr_op_get((enum spr_op)node->op);
  if (def == NULL) return SPR_STATUS_UNSUPPORTED;
  struct spr_error local = {SPR_STATUS_OK, ""};
  if (err == NULL) err = &local;
  if (def->check != NULL) {
    const enum spr_status s = def->check(ts, node, err);
    if (s != SPR_STATUS_OK) return s;
  }
  node->isa = spr_cpu_isa() & isa;
  if (def->prepare != NULL) def->prepare(ts, node, node->isa);
  node->ws_bytes = def->workspace != NULL ? def->workspace(ts, node, n_threads) : 0;
  if (posix_memalign(&h->scratch, 64, node->ws_bytes ? node->ws_bytes : 64) != 0) return SPR_STATUS_OUT_OF_MEMORY;
  struct spr_pool *pool = NULL;
  if (n_threads > 1) {
    if (posix_memalign(&h->pool_mem, 64, spr_pool_bytes(n_threads)) != 0) {
      spr_test_op_teardown(h);
      return SPR_STATUS_OUT_OF_MEMORY;
    }
    const enum spr_status s = spr_pool_create(h->pool_mem, n_threads, &pool);
    if (s != SPR_STATUS_OK) {
      spr_test_op_teardown(h);
      return s;
    }
  }
  h->ts = ts;
  h->node = node;
  h->exec = (struct spr_exec){.tensors = ts,
                              .run = &h->run,
                              .pool = pool,
                              .n_threads = n_threads,
                              .scratch = h->scratch,
                              .scratch_bytes = node->ws_bytes};
  return SPR_STATUS_OK;
}

void spr_test_op_exec(struct spr_test_op *h) { spr_op_get((enum spr_op)h->node->op)->run(&h->exec, h->node); }

void spr_test_op_teardown(struct spr_test_op *h) {
  spr_pool_destroy(h->exec.pool);
  free(h->pool_mem);
  free(h->scratch);
  memset(h, 0, sizeof *h);
}

enum spr_status spr_test_op_run(struct spr_tensor *ts, struct spr_node *node, uint32_t isa, int n_threads, int reps,
                                const char **impl_name, struct spr_error *err) {
  struct spr_test_op h;
  const enum spr_status s = spr_test_op_setup(&h, ts, node, isa, n_threads, err);
  if (s != SPR_STATUS_OK) return s;
  if (impl_name != NULL) *impl_name = node->impl_name;
  for (int r = 0; r < reps; r++) spr_test_op_exec(&h);
  spr_test_op_teardown(&h);
  return SPR_STATUS_OK;
}
