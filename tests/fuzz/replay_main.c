/* tests/fuzz/replay_main.c — runs a fuzz target's LLVMFuzzerTestOneInput on
 * files, without libFuzzer (any compiler, any sanitizer or none).
 *
 * Usage: fuzz_replay_<name> PATH...   (a PATH that is a directory: every
 * regular file in it, in name order). Exits 0 after replaying everything; a
 * harness check or a sanitizer aborts the process. A missing PATH is an
 * error (the corpus and regression folders are committed). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

/* Targets without an initializer get this one. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

static int replay_file(const char *path) {
  size_t size = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  uint8_t *buf = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    /* exactly n bytes (ASan sees a read past the input, as under libFuzzer) */
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) n = -1;
  }
  fclose(f);
  if (buf == NULL || n < 0) {
    free(buf);
    fprintf(stderr, "replay: cannot read %s\n", path);
    return -1;
  }
  size = (size_t)n;
  LLVMFuzzerTestOneInput(buf, size);
  free(buf);
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "replay: cannot open folder %s\n", dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      names = realloc(names, cap * sizeof *names);
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (n > 1) qsort(names, n, sizeof *names, by_name);
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      const int r = replay_file(path);
      if (r < 0) count = -1;
      if (count >= 0) count += r;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
    return 2;
  }
  LLVMFuzzerInitialize(&argc, &argv);
  int total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s does not exist\n", argv[i]);
      return 1;
    }
    const int r = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
    if (r < 0) return 1;
    total += r;
    printf("replayed %d input(s) from %s\n", r, argv[i]);
  }
  printf("%d input(s) replayed without a crash\n", total);
  return 0;
}
