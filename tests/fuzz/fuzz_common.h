/* tests/fuzz/fuzz_common.h — helpers shared by the fuzz targets.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). With -DSPR_FUZZ=ON and clang it is linked with
 * libFuzzer (executable fuzz_<name>); in every build it is also linked with
 * replay_main.c (executable fuzz_replay_<name>), which feeds it the committed
 * corpus and regression files without libFuzzer, so CTest replays them under
 * gcc, ASan and the NEON emulation alike.
 *
 * A harness aborts (a crash libFuzzer reports) only when a promise of the
 * library is broken: a failing call that left no status, a message that is
 * not one line, a session that runs in one byte less than the plan. Slow or
 * huge but valid requests are skipped by the harness limits below (they are
 * resources, not bugs: the caller decides how much memory it gives). */
#ifndef SPR_TESTS_FUZZ_COMMON_H
#define SPR_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparrow/sparrow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Harness limits: an arena above this is not allocated, and a graph of more
 * floating-point operations than this is planned and bound but not run. */
#define SPR_FUZZ_MAX_ARENA ((size_t)64 << 20)
#define SPR_FUZZ_MAX_FLOPS ((uint64_t)50 * 1000 * 1000)

/* Aborts with a message: the harness found a broken promise. */
#define SPR_FUZZ_REQUIRE(cond, ...)                         \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf(stderr, "fuzz: %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                         \
      fputc('\n', stderr);                                  \
      abort();                                              \
    }                                                       \
  } while (0)

/* A 64-byte aligned copy of data (the loader wants 32). */
static inline void *spr_fuzz_aligned_copy(const void *data, size_t size) {
  void *p = NULL;
  const size_t bytes = (size + 63) & ~(size_t)63;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
  if (size) memcpy(p, data, size);
  return p;
}

/* A whole file, 64-byte aligned; NULL when it cannot be read. */
static inline void *spr_fuzz_read_file(const char *path, size_t *size) {
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  void *p = NULL;
  if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && posix_memalign(&p, 64, (size_t)n) == 0) {
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
      free(p);
      p = NULL;
    }
  }
  fclose(f);
  if (p != NULL) *size = (size_t)n;
  return p;
}

/* A failed call's error: the status is recorded, and the message (when the
 * call wrote one) is a single line. */
static inline void spr_fuzz_check_error(enum spr_status s, const struct spr_error *err, const char *what) {
  SPR_FUZZ_REQUIRE(s != SPR_STATUS_OK, "%s", what);
  SPR_FUZZ_REQUIRE(spr_status_name(s) != NULL && strcmp(spr_status_name(s), "UNKNOWN_STATUS") != 0,
                   "%s returned the unknown status %d", what, (int)s);
  if (err != NULL && err->msg[0] != '\0') {
    SPR_FUZZ_REQUIRE(memchr(err->msg, '\0', sizeof err->msg) != NULL, "%s: message not terminated", what);
    SPR_FUZZ_REQUIRE(strchr(err->msg, '\n') == NULL, "%s: message has a newline: %s", what, err->msg);
  }
}

#endif
