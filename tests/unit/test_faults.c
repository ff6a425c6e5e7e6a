/* tests/unit/test_faults.c — fault injection: every failure is a status, and
 * nothing is left half-initialized.
 *
 *   - every arena size from 0 to the planned size minus one is refused with
 *     ARENA_TOO_SMALL (a small ViT: all sizes; a small llama: a sweep), and
 *     the planned size still works afterwards in the same memory;
 *   - a thread that cannot be created: THREAD, the workers already started
 *     are joined (none left running), the next session in the same arena
 *     works;
 *   - mmap, open and fstat failing: MMAP / IO with the path in the message,
 *     no file descriptor left open, the next load works;
 *   - a file truncated inside its tensor data (and at every 1/64 of its
 *     length): a status, no descriptor or mapping left;
 *   - the load-time allocator failing at its k-th call, for every k until
 *     the load (and the plan) succeed: OUT_OF_MEMORY, every block returned;
 *   - a read error (fread failing with EIO) in the CLI's readers of images
 *     and IDX files: one error line naming the file, nothing kept, the next
 *     read works. The library itself never calls read(): a model file is
 *     mapped, so its read errors are the open/fstat/mmap failures above.
 * Leaks of heap memory are LSan's job: the ASan build runs this test.
 *
 * How the faults are injected: the test executable is linked with
 * -Wl,--wrap=pthread_create,--wrap=pthread_join,--wrap=mmap,--wrap=mmap64,--wrap=open,
 * --wrap=open64,--wrap=fstat,--wrap=fstat64,--wrap=fread (tests/CMakeLists.txt),
 * so the calls that libsparrow.a (and the CLI's code) make go to the __wrap_* functions below, which fail
 * on request and otherwise forward to the real ones. The library has no
 * test hook and no global state for this: the wrapping is link-time and only
 * in this executable. Where the linker cannot wrap (SPR_TEST_WRAP=0), those
 * tests are skipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sparrow/llm.h"
#include "sparrow/sparrow.h"
#include "support/test_util.h"
#include "support/tiny_models.h"
#include "tools/sparrow/image.h"

#ifndef SPR_TEST_WRAP
#define SPR_TEST_WRAP 0
#endif

/* ---- injected faults (link-time wrapping) ------------------------------------ */

static atomic_int g_thread_fail_at = -1; /* fail the k-th pthread_create from now (-1: never) */
static atomic_int g_thread_calls, g_threads_live;
static atomic_int g_fail_mmap, g_fail_open, g_fail_fstat;
static atomic_int g_mmap_calls;
static atomic_int g_fail_fread, g_fread_calls;

#if SPR_TEST_WRAP
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_pthread_join(pthread_t t, void **ret);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_open(const char *path, int flags, ...);
int __real_open64(const char *path, int flags, ...);
int __real_fstat(int fd, struct stat *st);
int __real_fstat64(int fd, void *st);
size_t __real_fread(void *ptr, size_t size, size_t n, FILE *f);

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_join(pthread_t t, void **ret);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);
int __wrap_fstat(int fd, struct stat *st);
int __wrap_fstat64(int fd, void *st);
size_t __wrap_fread(void *ptr, size_t size, size_t n, FILE *f);

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
  const int k = atomic_fetch_add(&g_thread_calls, 1);
  if (k == atomic_load(&g_thread_fail_at)) return EAGAIN;
  const int r = __real_pthread_create(t, a, fn, arg);
  if (r == 0) atomic_fetch_add(&g_threads_live, 1);
  return r;
}

int __wrap_pthread_join(pthread_t t, void **ret) {
  const int r = __real_pthread_join(t, ret);
  if (r == 0) atomic_fetch_sub(&g_threads_live, 1);
  return r;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  atomic_fetch_add(&g_mmap_calls, 1);
  if (atomic_load(&g_fail_mmap)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return __real_mmap(addr, len, prot, flags, fd, off);
}

/* 32-bit Linux builds use 64-bit file offsets (_FILE_OFFSET_BITS=64, so off_t
 * is 64 bits here): glibc's headers turn the library's mmap into mmap64. */
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  atomic_fetch_add(&g_mmap_calls, 1);
  if (atomic_load(&g_fail_mmap)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return __real_mmap64(addr, len, prot, flags, fd, off);
}

int __wrap_open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = (flags & O_CREAT) ? va_arg(ap, int) : 0;
  va_end(ap);
  if (atomic_load(&g_fail_open)) {
    errno = EIO;
    return -1;
  }
  return __real_open(path, flags, mode);
}

int __wrap_open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = (flags & O_CREAT) ? va_arg(ap, int) : 0;
  va_end(ap);
  if (atomic_load(&g_fail_open)) {
    errno = EIO;
    return -1;
  }
  return __real_open64(path, flags, mode);
}

int __wrap_fstat(int fd, struct stat *st) {
  if (atomic_load(&g_fail_fstat)) {
    errno = EIO;
    return -1;
  }
  return __real_fstat(fd, st);
}

int __wrap_fstat64(int fd, void *st) {
  if (atomic_load(&g_fail_fstat)) {
    errno = EIO;
    return -1;
  }
  return __real_fstat64(fd, st);
}

/* A device error in the middle of the file: half of it arrives, then EIO. */
size_t __wrap_fread(void *ptr, size_t size, size_t n, FILE *f) {
  atomic_fetch_add(&g_fread_calls, 1);
  if (atomic_load(&g_fail_fread) && size != 0) {
    const size_t got = __real_fread(ptr, size, n / 2, f);
    errno = EIO;
    return got;
  }
  return __real_fread(ptr, size, n, f);
}
#endif

/* ---- helpers ------------------------------------------------------------------- */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

static void small_vit(void **blob, size_t *size) {
  struct spr_tiny_vit c;
  spr_tiny_vit_defaults(&c);
  c.image = 8;
  c.patch = 4;
  c.dim = 8;
  c.depth = 1;
  c.heads = 2;
  c.ffn = 16;
  c.classes = 3;
  assert_int_equal(spr_tiny_vit_write(&c, blob, size), SPR_STATUS_OK);
}

static void small_llama(void **blob, size_t *size) {
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  c.dim = 16;
  c.layers = 1;
  c.ffn = 32;
  c.ctx = 16;
  assert_int_equal(spr_tiny_llama_write(&c, blob, size), SPR_STATUS_OK);
}

static char *write_temp(const void *data, size_t n) {
  char *path = strdup("/tmp/spr_faults_XXXXXX");
  const int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, n), (ssize_t)n);
  assert_int_equal(close(fd), 0);
  return path;
}

/* Loads, plans, binds and runs a good model: the process is still healthy. */
static void good_model_works(const char *path) {
  struct spr_model *m = NULL;
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (spr_model_load_file(path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("good model: %s", err.msg);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = 2;
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  struct spr_tensor_view in;
  assert_int_equal(spr_session_input(s, 0, &in), SPR_STATUS_OK);
  memset(in.data, 0, in.nbytes);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
}

/* ---- arena sizes ------------------------------------------------------------------ */

/* Every size in [0, plan) with step `step` is refused; the message of every
 * `msg_every`-th names the bytes needed. */
static void sweep(const struct spr_model *m, const struct spr_config *cfg, size_t step, size_t msg_every) {
  struct spr_plan plan;
  struct spr_error err;
  assert_int_equal(spr_plan(m, cfg, &plan, &err), SPR_STATUS_OK);
  uint8_t *arena = spr_test_aligned_alloc(plan.arena_bytes);
  char want[64];
  snprintf(want, sizeof want, "needs %zu", plan.arena_bytes);
  size_t checked = 0;
  for (size_t sz = 0; sz < plan.arena_bytes; sz += step) {
    struct spr_session *s = (struct spr_session *)(uintptr_t)1;
    const bool with_msg = (sz / step) % msg_every == 0;
    err.msg[0] = '\0';
    const enum spr_status st = spr_session_create(m, cfg, arena, sz, &s, with_msg ? &err : NULL);
    if (st != SPR_STATUS_ARENA_TOO_SMALL)
      fail_msg("arena of %zu bytes (plan %zu) gave %s", sz, plan.arena_bytes, spr_status_name(st));
    if (s != NULL) fail_msg("arena of %zu bytes: a refused session was returned", sz);
    if (with_msg && strstr(err.msg, want) == NULL) fail_msg("arena %zu: message '%s' lacks '%s'", sz, err.msg, want);
    checked++;
  }
  /* the exact size still works in the same memory, after all that */
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  spr_session_destroy(s);
  free(arena);
  printf("arena sweep: %zu sizes below the plan of %zu bytes refused (%d thread(s))\n", checked, plan.arena_bytes,
         cfg->threads);
}

static void test_every_arena_size(void **state) {
  (void)state;
  void *blob;
  size_t size;
  small_vit(&blob, &size);
  struct spr_model *m = NULL;
  struct spr_error err;
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  struct spr_config cfg;
  spr_config_init(&cfg);
  sweep(m, &cfg, 1, 257); /* every size */
  cfg.threads = 3;
  sweep(m, &cfg, 7, 31); /* the pool is part of the arena too */
  spr_model_free(m);
  free(blob);

  small_llama(&blob, &size);
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  spr_config_init(&cfg);
  cfg.ctx = 16;
  cfg.batch = 4;
  sweep(m, &cfg, 13, 17);
  cfg.window = 4;
  cfg.sinks = 1;
  sweep(m, &cfg, 13, 17);
  spr_model_free(m);
  free(blob);
}

/* ---- threads ----------------------------------------------------------------------- */

static void test_thread_create_fails(void **state) {
  (void)state;
#if !SPR_TEST_WRAP || !SPR_THREADS
  skip();
#else
  void *blob;
  size_t size;
  small_vit(&blob, &size);
  struct spr_model *m = NULL;
  struct spr_error err;
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = 4;
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  for (int k = 0; k < cfg.threads - 1; k++) {
    atomic_store(&g_thread_calls, 0);
    atomic_store(&g_thread_fail_at, k);
    struct spr_session *s = (struct spr_session *)(uintptr_t)1;
    err.msg[0] = '\0';
    const enum spr_status st = spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err);
    atomic_store(&g_thread_fail_at, -1);
    if (st != SPR_STATUS_THREAD) fail_msg("worker %d failing: %s", k, spr_status_name(st));
    assert_null(s);
    assert_non_null(strstr(err.msg, "worker threads"));
    if (atomic_load(&g_threads_live) != 0)
      fail_msg("worker %d failing left %d thread(s) running", k, atomic_load(&g_threads_live));
  }
  /* nothing half-initialized: the same arena binds and runs */
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  assert_int_equal(atomic_load(&g_threads_live), cfg.threads - 1);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  spr_session_destroy(s);
  assert_int_equal(atomic_load(&g_threads_live), 0);
  free(arena);
  spr_model_free(m);
  /* and a fresh load of a good model (from a file, 2 threads) works */
  char *path = write_temp(blob, size);
  good_model_works(path);
  assert_int_equal(atomic_load(&g_threads_live), 0);
  remove(path);
  free(path);
  free(blob);
#endif
}

/* ---- files ---------------------------------------------------------------------------- */

static void test_mmap_open_fstat_fail(void **state) {
  (void)state;
#if !SPR_TEST_WRAP
  skip();
#else
  void *blob;
  size_t size;
  small_vit(&blob, &size);
  char *path = write_temp(blob, size);
  const int fds = count_fds();
  struct {
    atomic_int *flag;
    enum spr_status want;
    const char *text;
  } cases[] = {
      {&g_fail_mmap, SPR_STATUS_MMAP, "cannot map"},
      {&g_fail_open, SPR_STATUS_IO, "cannot open"},
      {&g_fail_fstat, SPR_STATUS_IO, "cannot stat"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct spr_model *m = (struct spr_model *)(uintptr_t)1;
    struct spr_error err = {SPR_STATUS_OK, ""};
    const int mmaps = atomic_load(&g_mmap_calls);
    atomic_store(cases[i].flag, 1);
    const enum spr_status st = spr_model_load_file(path, NULL, &m, &err);
    atomic_store(cases[i].flag, 0);
    if (st != cases[i].want) fail_msg("%s: got %s (%s)", cases[i].text, spr_status_name(st), err.msg);
    assert_null(m);
    if (strstr(err.msg, cases[i].text) == NULL || strstr(err.msg, path) == NULL)
      fail_msg("message '%s' lacks '%s' or the path", err.msg, cases[i].text);
    if (cases[i].flag == &g_fail_mmap) assert_true(atomic_load(&g_mmap_calls) > mmaps); /* the fault did fire */
    assert_int_equal(count_fds(), fds);
    good_model_works(path);
    assert_int_equal(count_fds(), fds);
  }
  remove(path);
  free(path);
  free(blob);
#endif
}

static void test_truncated_files(void **state) {
  (void)state;
  void *blobs[2];
  size_t sizes[2];
  small_vit(&blobs[0], &sizes[0]);
  small_llama(&blobs[1], &sizes[1]);
  const int fds = count_fds();
  for (int b = 0; b < 2; b++) {
    /* where the last tensor's data starts */
    struct spr_gguf g;
    assert_int_equal(spr_gguf_parse(blobs[b], sizes[b], &g, NULL), SPR_STATUS_OK);
    struct spr_gguf_tensor last;
    assert_int_equal(spr_gguf_tensor_at(&g, g.n_tensors - 1, &last), SPR_STATUS_OK);
    const size_t data_start = (size_t)((const uint8_t *)last.data - (const uint8_t *)blobs[b]);
    size_t cuts[80];
    size_t n_cuts = 0;
    cuts[n_cuts++] = data_start + last.nbytes - 1; /* one byte short */
    cuts[n_cuts++] = data_start + last.nbytes / 2; /* inside the last tensor */
    cuts[n_cuts++] = data_start;                   /* its data all missing */
    cuts[n_cuts++] = (size_t)g.data_offset + 1;    /* inside the first tensor */
    for (size_t k = 1; k < 64; k++) cuts[n_cuts++] = sizes[b] * k / 64;
    for (size_t i = 0; i < n_cuts; i++) {
      if (cuts[i] == 0) continue;
      char *path = write_temp(blobs[b], cuts[i]);
      struct spr_model *m = (struct spr_model *)(uintptr_t)1;
      struct spr_error err = {SPR_STATUS_OK, ""};
      const enum spr_status st = spr_model_load_file(path, NULL, &m, &err);
      if (st == SPR_STATUS_OK) fail_msg("model %d cut at %zu of %zu bytes loaded", b, cuts[i], sizes[b]);
      assert_null(m);
      assert_true(err.msg[0] != '\0');
      if (cuts[i] > (size_t)g.data_offset && st != SPR_STATUS_TRUNCATED)
        fail_msg("model %d cut at %zu (inside tensor data): %s (%s)", b, cuts[i], spr_status_name(st), err.msg);
      remove(path);
      free(path);
    }
    assert_int_equal(count_fds(), fds);
    char *path = write_temp(blobs[b], sizes[b]);
    if (b == 0) good_model_works(path);
    struct spr_model *m = NULL;
    assert_int_equal(spr_model_load_file(path, NULL, &m, NULL), SPR_STATUS_OK);
    spr_model_free(m);
    remove(path);
    free(path);
    free(blobs[b]);
  }
  assert_int_equal(count_fds(), fds);
}

/* ---- the load-time allocator ------------------------------------------------------------- */

struct counting_alloc {
  int calls, fail_at, live;
};

static void *ca_alloc(void *user, size_t bytes, size_t align) {
  struct counting_alloc *a = user;
  if (a->calls++ == a->fail_at) return NULL;
  void *p = NULL;
  if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, bytes ? bytes : 1) != 0) return NULL;
  a->live++;
  return p;
}

static void ca_release(void *user, void *p) {
  struct counting_alloc *a = user;
  if (p != NULL) a->live--;
  free(p);
}

static void test_allocator_fails(void **state) {
  (void)state;
  for (int b = 0; b < 2; b++) {
    void *blob;
    size_t size;
    if (b == 0)
      small_vit(&blob, &size);
    else
      small_llama(&blob, &size); /* with a tokenizer: two allocations at load */
    int succeeded_at = -1;
    for (int k = 0; k < 64 && succeeded_at < 0; k++) {
      struct counting_alloc ca = {0, k, 0};
      const struct spr_allocator al = {ca_alloc, ca_release, &ca};
      const struct spr_load_options opt = {&al, false};
      struct spr_model *m = (struct spr_model *)(uintptr_t)1;
      struct spr_error err = {SPR_STATUS_OK, ""};
      enum spr_status st = spr_model_load_blob(blob, size, &opt, &m, &err);
      if (st != SPR_STATUS_OK) {
        if (st != SPR_STATUS_OUT_OF_MEMORY) fail_msg("model %d, allocation %d failing: %s", b, k, spr_status_name(st));
        assert_null(m);
        if (ca.live != 0) fail_msg("model %d, allocation %d failing: %d block(s) not returned", b, k, ca.live);
        continue;
      }
      struct spr_plan plan;
      st = spr_plan(m, NULL, &plan, &err);
      if (st == SPR_STATUS_OK) {
        succeeded_at = k;
      } else if (st != SPR_STATUS_OUT_OF_MEMORY) {
        fail_msg("model %d, allocation %d failing in plan: %s", b, k, spr_status_name(st));
      }
      spr_model_free(m);
      if (ca.live != 0) fail_msg("model %d, allocation %d failing: %d block(s) not returned", b, k, ca.live);
    }
    if (succeeded_at < 0) fail_msg("model %d never loaded and planned", b);
    printf("allocator faults: model %d makes %d allocation(s) to load and plan; each one failing gave OUT_OF_MEMORY\n",
           b, succeeded_at);
    free(blob);
  }
}

/* ---- read errors in the CLI's file readers ---------------------------------------------------- */

/* Runs fn(arg) with stderr going to a file; returns what it printed. */
static char *capture_stderr(int (*fn)(const char *), const char *arg, int *rc) {
  char path[] = "/tmp/spr_faults_err_XXXXXX";
  const int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stderr);
  const int saved = dup(2);
  assert_true(saved >= 0);
  assert_int_equal(dup2(fd, 2), 2);
  *rc = fn(arg);
  fflush(stderr);
  assert_int_equal(dup2(saved, 2), 2);
  close(saved);
  char *text = calloc(1, 4096);
  assert_true(pread(fd, text, 4095, 0) >= 0);
  close(fd);
  remove(path);
  return text;
}

static int load_png(const char *path) {
  struct cli_image img = {0};
  const int r = cli_image_load(path, 1, &img);
  if (r == 0) {
    assert_true(img.w == 28 && img.h == 28 && img.pixels != NULL);
    cli_image_free(&img);
  } else {
    assert_null(img.pixels);
  }
  return r;
}

static int load_idx(const char *path) {
  struct cli_idx idx = {0};
  const int r = cli_idx_load(path, 1, &idx);
  if (r == 0) {
    assert_true(idx.n == 2 && idx.rows == 3 && idx.cols == 4);
    cli_idx_free(&idx);
  } else {
    assert_null(idx.data);
  }
  return r;
}

static void test_read_errors(void **state) {
  (void)state;
#if !SPR_TEST_WRAP
  skip();
#else
  static const uint8_t idx[16 + 24] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 1, 2, 3};
  char *idx_path = write_temp(idx, sizeof idx);
  const char *png_path = SPR_SOURCE_DIR "/models/samples/0001-pullover.png";
  const struct {
    int (*fn)(const char *);
    const char *path;
  } cases[] = {{load_png, png_path}, {load_idx, idx_path}};
  const int fds = count_fds();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc;
    const int calls = atomic_load(&g_fread_calls);
    atomic_store(&g_fail_fread, 1);
    char *msg = capture_stderr(cases[i].fn, cases[i].path, &rc);
    atomic_store(&g_fail_fread, 0);
    assert_true(atomic_load(&g_fread_calls) > calls); /* the fault did fire */
    assert_int_equal(rc, 1);
    if (strncmp(msg, "sparrow: error: cannot read ", 28) != 0 || strstr(msg, cases[i].path) == NULL ||
        strchr(msg, '\n') != msg + strlen(msg) - 1)
      fail_msg("read error on %s: message '%s'", cases[i].path, msg);
    printf("read error: %s", msg);
    free(msg);
    assert_int_equal(count_fds(), fds);
    /* the same file reads and decodes afterwards */
    msg = capture_stderr(cases[i].fn, cases[i].path, &rc);
    if (rc != 0) fail_msg("after the read error, %s: %s", cases[i].path, msg);
    free(msg);
  }
  assert_int_equal(count_fds(), fds);
  remove(idx_path);
  free(idx_path);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_arena_size),     cmocka_unit_test(test_thread_create_fails),
      cmocka_unit_test(test_mmap_open_fstat_fail), cmocka_unit_test(test_truncated_files),
      cmocka_unit_test(test_allocator_fails),      cmocka_unit_test(test_read_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
