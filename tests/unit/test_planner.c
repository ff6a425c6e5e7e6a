/* tests/unit/test_planner.c — the greedy activation planner on random graphs.
 *
 * Properties checked on many random lifetime sets:
 *   - no two tensors whose lifetimes intersect share a byte;
 *   - every tensor lies inside the returned region, and the region ends at
 *     the end of some tensor (the plan is exact, no slack);
 *   - the region is at least the largest simultaneous live size (a lower
 *     bound no planner can beat) and at most the naive sum;
 *   - the result is deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/planner.h"
#include "runtime/util.h"
#include "support/test_util.h"

static void make_random(struct spr_tensor *ts, int32_t n, uint64_t seed, int32_t n_nodes) {
  for (int32_t i = 0; i < n; i++) {
    memset(&ts[i], 0, sizeof ts[i]);
    const uint64_t r = spr_test_rng_next(&seed);
    ts[i].role = (r % 10 == 0) ? SPR_ROLE_WEIGHT : (r % 10 == 1) ? SPR_ROLE_STATE : SPR_ROLE_ACT;
    /* sizes from 1 byte to ~1 MB, skewed small like real graphs */
    const int shift = (int)(spr_test_rng_next(&seed) % 20);
    ts[i].nbytes = 1 + (size_t)(spr_test_rng_next(&seed) % ((uint64_t)1 << shift));
    const int32_t a = (int32_t)(spr_test_rng_next(&seed) % (uint64_t)n_nodes) - 1;
    const int32_t len = (int32_t)(spr_test_rng_next(&seed) % 8);
    ts[i].first_use = a;
    ts[i].last_use = a + len > n_nodes ? n_nodes : a + len;
    ts[i].parent = -1;
  }
}

static void check_plan(struct spr_tensor *ts, int32_t n, size_t region, size_t naive, int32_t n_nodes) {
  size_t max_end = 0;
  for (int32_t i = 0; i < n; i++) {
    if (!spr_plan_is_act(&ts[i])) continue;
    const size_t sz = spr_align_up(ts[i].nbytes, SPR_PLAN_ALIGN);
    assert_int_equal(ts[i].offset % SPR_PLAN_ALIGN, 0);
    if (ts[i].offset + sz > region) fail_msg("tensor %d [%zu,+%zu) outside region %zu", i, ts[i].offset, sz, region);
    if (ts[i].offset + sz > max_end) max_end = ts[i].offset + sz;
    for (int32_t j = i + 1; j < n; j++) {
      if (!spr_plan_is_act(&ts[j])) continue;
      const int live = ts[i].first_use <= ts[j].last_use && ts[j].first_use <= ts[i].last_use;
      if (!live) continue;
      const size_t szj = spr_align_up(ts[j].nbytes, SPR_PLAN_ALIGN);
      const int disjoint = ts[i].offset + sz <= ts[j].offset || ts[j].offset + szj <= ts[i].offset;
      if (!disjoint)
        fail_msg("live tensors %d [%zu,+%zu) life [%d,%d] and %d [%zu,+%zu) life [%d,%d] overlap", i, ts[i].offset,
                 sz, ts[i].first_use, ts[i].last_use, j, ts[j].offset, szj, ts[j].first_use, ts[j].last_use);
    }
  }
  assert_int_equal(max_end, region);
  /* lower bound: the largest live set at any step */
  size_t peak = 0;
  for (int32_t step = -1; step <= n_nodes; step++) {
    size_t live = 0;
    for (int32_t i = 0; i < n; i++) {
      if (spr_plan_is_act(&ts[i]) && ts[i].first_use <= step && step <= ts[i].last_use)
        live += spr_align_up(ts[i].nbytes, SPR_PLAN_ALIGN);
    }
    if (live > peak) peak = live;
  }
  assert_true(region >= peak);
  assert_true(region <= naive);
}

static void test_random_graphs(void **state) {
  (void)state;
  enum { N = 300 };
  static struct spr_tensor ts[N], copy[N];
  for (uint64_t seed = 1; seed <= 200; seed++) {
    const int32_t n = 1 + (int32_t)(seed * 7 % N);
    const int32_t n_nodes = 2 + (int32_t)(seed % 60);
    make_random(ts, n, seed, n_nodes);
    memcpy(copy, ts, sizeof ts);
    size_t naive = 0;
    const size_t region = spr_plan_activations(ts, n, &naive);
    check_plan(ts, n, region, naive, n_nodes);
    size_t naive2 = 0;
    const size_t region2 = spr_plan_activations(copy, n, &naive2);
    assert_int_equal(region, region2);
    for (int32_t i = 0; i < n; i++) assert_int_equal(ts[i].offset, copy[i].offset);
  }
}

/* A chain (each tensor used by the next node only) needs two buffers at a
 * time: the planner must reuse memory down to max(a_i + a_{i+1}). */
static void test_chain_reuses_memory(void **state) {
  (void)state;
  enum { N = 50 };
  struct spr_tensor ts[N];
  memset(ts, 0, sizeof ts);
  for (int32_t i = 0; i < N; i++) {
    ts[i].role = SPR_ROLE_ACT;
    ts[i].nbytes = 4096;
    ts[i].first_use = i;
    ts[i].last_use = i + 1;
  }
  size_t naive = 0;
  const size_t region = spr_plan_activations(ts, N, &naive);
  assert_int_equal(naive, (size_t)N * 4096);
  assert_int_equal(region, 2 * 4096);
}

static void test_state_is_sequential(void **state) {
  (void)state;
  struct spr_tensor ts[3];
  memset(ts, 0, sizeof ts);
  ts[0].role = SPR_ROLE_STATE;
  ts[0].nbytes = 10;
  ts[1].role = SPR_ROLE_ACT;
  ts[1].nbytes = 100;
  ts[2].role = SPR_ROLE_STATE;
  ts[2].nbytes = 70;
  assert_int_equal(spr_plan_state(ts, 3), 64 + 128);
  assert_int_equal(ts[0].offset, 0);
  assert_int_equal(ts[2].offset, 64);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_graphs),
      cmocka_unit_test(test_chain_reuses_memory),
      cmocka_unit_test(test_state_is_sequential),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
