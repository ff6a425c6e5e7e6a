/* tools/bench/bench_llm_ops.c — timing of ROPE, KV_STORE and GET_ROWS at
 * TinyLlama's shapes (not built by CMake). Build by hand after building the
 * library:
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Iinclude -Itests \
 *      tools/bench/bench_llm_ops.c tests/support/op_harness.c build/libsparrow.a \
 *      -lm -lpthread -o build/bench_llm_ops
 *   build/bench_llm_ops [isa [threads]]
 *
 * Prints the median wall time of one run of each op (run state: n_past 1000,
 * n_tokens = the case's rows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"
#include "platform/time.h"
#include "support/op_harness.h"

static int cmp_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void *xalloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) exit(1);
  memset(p, 0, bytes);
  return p;
}

static void time_node(const char *name, struct spr_tensor *ts, struct spr_node *node, uint32_t isa, int threads,
                      int rows) {
  struct spr_test_op h;
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (spr_test_op_setup(&h, ts, node, isa, threads, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", name, err.msg);
    exit(1);
  }
  h.run.n_past = 1000;
  h.run.n_tokens = rows;
  enum { REPS = 301 };
  uint64_t t[REPS];
  spr_test_op_exec(&h);
  for (int r = 0; r < REPS; r++) {
    const uint64_t t0 = spr_time_ns();
    spr_test_op_exec(&h);
    t[r] = spr_time_ns() - t0;
  }
  qsort(t, REPS, sizeof t[0], cmp_u64);
  printf("%-34s threads=%d %-34s %8.2f us (min %.2f)\n", name, threads, node->impl_name ? node->impl_name : "-",
         (double)t[REPS / 2] * 1e-3, (double)t[0] * 1e-3);
  spr_test_op_teardown(&h);
}

int main(int argc, char **argv) {
  uint32_t isa = SPR_ISA_ALL;
  if (argc > 1 && spr_isa_mask_parse(argv[1], &isa) != SPR_STATUS_OK) return 2;
  const int threads = argc > 2 ? atoi(argv[2]) : 1;
  const int tokens[2] = {1, 64};
  for (int i = 0; i < 2; i++) {
    const int T = tokens[i];
    char name[64];
    /* ROPE of Q: 32 heads x 64 */
    {
      struct spr_tensor ts[2];
      const int64_t ne[2] = {32 * 64, T};
      float *x = xalloc((size_t)32 * 64 * T * sizeof(float)), *y = xalloc((size_t)32 * 64 * T * sizeof(float));
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, x);
      spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne, y);
      struct spr_node n;
      memset(&n, 0, sizeof n);
      n.op = SPR_OP_ROPE;
      n.n_src = 1;
      for (int s = 1; s < SPR_MAX_SRCS; s++) n.src[s] = -1;
      n.dst = 1;
      n.p.rope = (struct spr_rope_params){32, 64, 64, 10000.0f, 1.0f};
      snprintf(name, sizeof name, "rope Q 32x64 T=%d", T);
      time_node(name, ts, &n, isa, threads, T);
      free(x);
      free(y);
    }
    /* KV_STORE of K: 4 kv heads x 64 into an f16 cache of 2048 rows */
    {
      struct spr_tensor ts[2];
      const int64_t ne_a[2] = {4 * 64, T}, ne_c[2] = {4 * 64, 2048};
      float *a = xalloc((size_t)4 * 64 * T * sizeof(float));
      uint16_t *c = xalloc((size_t)4 * 64 * 2048 * sizeof(uint16_t));
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, a);
      spr_test_tensor(&ts[1], SPR_DTYPE_F16, 2, ne_c, c);
      struct spr_node n;
      memset(&n, 0, sizeof n);
      n.op = SPR_OP_KV_STORE;
      n.n_src = 1;
      for (int s = 1; s < SPR_MAX_SRCS; s++) n.src[s] = -1;
      n.dst = 1;
      snprintf(name, sizeof name, "kv_store 4x64 f16 T=%d", T);
      time_node(name, ts, &n, isa, threads, T);
      free(a);
      free(c);
    }
    /* GET_ROWS from an f16 {2048, 32000} table */
    {
      struct spr_tensor ts[3];
      const int64_t ne_t[2] = {2048, 32000}, ne_i[2] = {1, T}, ne_y[2] = {2048, T};
      uint16_t *tab = xalloc((size_t)2048 * 32000 * sizeof(uint16_t));
      int32_t *ids = xalloc((size_t)T * sizeof(int32_t));
      float *y = xalloc((size_t)2048 * T * sizeof(float));
      for (int k = 0; k < T; k++) ids[k] = (k * 7919) % 32000;
      spr_test_tensor(&ts[0], SPR_DTYPE_F16, 2, ne_t, tab);
      spr_test_tensor(&ts[1], SPR_DTYPE_I32, 2, ne_i, ids);
      spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, y);
      struct spr_node n;
      memset(&n, 0, sizeof n);
      n.op = SPR_OP_GET_ROWS;
      n.n_src = 2;
      n.src[1] = 1;
      for (int s = 2; s < SPR_MAX_SRCS; s++) n.src[s] = -1;
      n.dst = 2;
      snprintf(name, sizeof name, "get_rows f16 2048 T=%d", T);
      time_node(name, ts, &n, isa, threads, T);
      free(tab);
      free(ids);
      free(y);
    }
  }
  return 0;
}
