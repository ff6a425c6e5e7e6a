/* tests/support/test_util.h — deterministic random data and small helpers for tests.
 * Include after <cmocka.h>'s prerequisites (stdarg, stddef, setjmp). */
#ifndef SPR_TESTS_TEST_UTIL_H
#define SPR_TESTS_TEST_UTIL_H

/* aarch64-linux-gnu-gcc 12 crashes (internal compiler error in
 * vect_transform_reduction) when it vectorizes some fmax reductions at -O3;
 * functions with such a loop are marked with this. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__aarch64__)
#define SPR_TEST_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#else
#define SPR_TEST_NO_VECTORIZE
#endif

#include <stddef.h>
#include <stdint.h>

uint64_t spr_test_rng_next(uint64_t *state);
float spr_test_rng_uniform(uint64_t *state, float lo, float hi);
/* x[i] uniform in [lo, hi), from a fixed seed. */
void spr_test_fill(float *x, size_t n, uint64_t seed, float lo, float hi);
/* 64-byte aligned; free() it. */
void *spr_test_aligned_alloc(size_t bytes);
/* Whole file into a 64-byte aligned buffer (free() it); NULL when unreadable. */
void *spr_test_read_file(const char *path, size_t *size);

#endif
