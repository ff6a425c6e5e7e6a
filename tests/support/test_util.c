/* tests/support/test_util.c — helpers shared by the unit tests. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>

uint64_t spr_test_rng_next(uint64_t *s) {
  /* splitmix64: deterministic, seedable */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

float spr_test_rng_uniform(uint64_t *s, float lo, float hi) {
  const double u = (double)(spr_test_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(lo + (hi - lo) * u);
}

void spr_test_fill(float *x, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = spr_test_rng_uniform(&seed, lo, hi);
}

void *spr_test_aligned_alloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
  return p;
}

void *spr_test_read_file(const char *path, size_t *size) {
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  rewind(f);
  void *buf = n > 0 ? spr_test_aligned_alloc((size_t)n) : NULL;
  if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf != NULL) *size = (size_t)n;
  return buf;
}
