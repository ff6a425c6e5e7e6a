/* runtime/util.h — small arithmetic helpers with overflow checks. */
#ifndef SPR_RUNTIME_UTIL_H
#define SPR_RUNTIME_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Rounds x up to a multiple of a (a power of two). Saturates at SIZE_MAX & ~(a-1). */
static inline size_t spr_align_up(size_t x, size_t a) {
  const size_t r = x + (a - 1);
  return r < x ? (SIZE_MAX & ~(a - 1)) : (r & ~(a - 1));
}

/* *out = a * b; false on overflow. */
static inline bool spr_mul_ok(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return false;
  *out = a * b;
  return true;
}

/* *out = a + b; false on overflow. */
static inline bool spr_add_ok(size_t a, size_t b, size_t *out) {
  if (b > SIZE_MAX - a) return false;
  *out = a + b;
  return true;
}

#endif
