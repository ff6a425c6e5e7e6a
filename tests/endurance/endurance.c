/* tests/endurance/endurance.c — long runs in one process keep resident memory
 * flat (nothing grows per token or per image).
 *
 *   endurance generate MODEL N   generates N tokens (sampled, seed 1) with a
 *       sliding window of 64 tokens and 4 attention sinks, one spr_llm_eval
 *       per token after an 8-token prompt; VmRSS is read at 1000 tokens and
 *       at N;
 *   endurance classify MODEL N DIR   classifies N images cycling through the
 *       PNG files of DIR, each decoded from its bytes (cli_image_decode, as
 *       the CLI does), preprocessed and run; VmRSS at 1000 images and at N.
 * Either fails (exit 1) when VmRSS at N exceeds VmRSS at 1000 by 1 MiB or
 * more (SPR_ENDURANCE_MAX_GROWTH_KB), or when any call fails. The figures are
 * printed. VmRSS comes from /proc/self/status (Linux; elsewhere exit 77).
 * Under ASan run with ASAN_OPTIONS=quarantine_size_mb=0: the quarantine keeps
 * freed blocks resident by design (CTest sets it). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/time.h"
#include "sparrow/llm.h"
#include "sparrow/sparrow.h"
#include "sparrow/vision.h"
#include "tools/sparrow/image.h"

#define SPR_ENDURANCE_MAX_GROWTH_KB 1024L

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  }
  fclose(f);
  return kb;
}

static int fail(const char *what, enum spr_status s, const struct spr_error *err) {
  fprintf(stderr, "endurance: %s: %s (%s)\n", what, err != NULL ? err->msg : "", spr_status_name(s));
  return 1;
}

static void *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  rewind(f);
  void *p = NULL;
  if (n > 0 && posix_memalign(&p, 64, (size_t)n) == 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  *size = p != NULL ? (size_t)n : 0;
  return p;
}

struct session {
  void *blob;
  struct spr_model *m;
  void *arena;
  struct spr_session *s;
  struct spr_plan plan;
};

static int open_session(const char *path, const struct spr_config *cfg, struct session *x) {
  memset(x, 0, sizeof *x);
  size_t size = 0;
  x->blob = read_file(path, &size);
  if (x->blob == NULL) {
    fprintf(stderr, "endurance: cannot read %s\n", path);
    return 1;
  }
  struct spr_error err = {SPR_STATUS_OK, ""};
  enum spr_status s = spr_model_load_blob(x->blob, size, NULL, &x->m, &err);
  if (s != SPR_STATUS_OK) return fail("load", s, &err);
  s = spr_plan(x->m, cfg, &x->plan, &err);
  if (s != SPR_STATUS_OK) return fail("plan", s, &err);
  if (posix_memalign(&x->arena, SPR_ARENA_ALIGN, x->plan.arena_bytes) != 0) return 1;
  s = spr_session_create(x->m, cfg, x->arena, x->plan.arena_bytes, &x->s, &err);
  return s == SPR_STATUS_OK ? 0 : fail("session", s, &err);
}

static void close_session(struct session *x) {
  spr_session_destroy(x->s);
  free(x->arena);
  spr_model_free(x->m);
  free(x->blob);
}

static int verdict(const char *what, long n1, long rss1, long n, long rss, double secs) {
  const long growth = rss - rss1;
  printf("%s: VmRSS %ld kB after %ld, %ld kB after %ld: %+ld kB (limit < %ld kB); %.1f per second\n", what, rss1, n1,
         rss, n, growth, SPR_ENDURANCE_MAX_GROWTH_KB, (double)n / (secs > 0 ? secs : 1e-9));
  if (growth >= SPR_ENDURANCE_MAX_GROWTH_KB) {
    fprintf(stderr, "endurance: %s: resident memory grew by %ld kB\n", what, growth);
    return 1;
  }
  return 0;
}

static int generate(const char *path, long n) {
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = 2;
  cfg.window = 64;
  cfg.sinks = 4;
  cfg.batch = 8;
  struct session x;
  if (open_session(path, &cfg, &x) != 0) return 1;
  struct spr_llm_info li;
  if (spr_llm_info(x.m, &li) != SPR_STATUS_OK) return fail("not an LLM", SPR_STATUS_UNSUPPORTED, NULL);
  printf("generate: %s, window 64 + 4 sinks, arena %zu bytes, %ld tokens\n", path, x.plan.arena_bytes, n);
  int32_t prompt[8];
  for (int i = 0; i < 8; i++) prompt[i] = (int32_t)((5u + 17u * (uint32_t)i) % li.n_vocab);
  enum spr_status s = spr_llm_eval(x.s, prompt, 8, NULL);
  if (s != SPR_STATUS_OK) return fail("prompt", s, NULL);
  struct spr_sampler sp;
  spr_sampler_init(&sp);
  int32_t hist[64];
  long rss1 = -1;
  const uint64_t t0 = spr_time_ns();
  for (long i = 1; i <= n; i++) {
    const int32_t tok = spr_llm_sample(x.s, &sp, hist, i < 64 ? (size_t)i - 1 : 63);
    if (tok < 0 || (uint32_t)tok >= li.n_vocab) return fail("sample", SPR_STATUS_BAD_INPUT, NULL);
    hist[(i - 1) % 64] = tok;
    s = spr_llm_eval(x.s, &tok, 1, NULL);
    if (s != SPR_STATUS_OK) return fail("eval", s, NULL);
    if (i == 1000) rss1 = rss_kb();
  }
  const double secs = (double)(spr_time_ns() - t0) * 1e-9;
  const long rss = rss_kb();
  const int rc = verdict("generate", 1000, rss1, n, rss, secs);
  printf("generate: position %u after the run\n", spr_llm_position(x.s));
  close_session(&x);
  return rc;
}

static int classify(const char *path, long n, const char *dir) {
  enum { MAX_IMAGES = 64 };
  void *files[MAX_IMAGES];
  size_t sizes[MAX_IMAGES];
  int n_files = 0;
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "endurance: cannot open %s\n", dir);
    return 1;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n_files < MAX_IMAGES) {
    const size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".png") != 0) continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    files[n_files] = read_file(p, &sizes[n_files]);
    if (files[n_files] != NULL) n_files++;
  }
  closedir(d);
  if (n_files == 0) {
    fprintf(stderr, "endurance: no PNG in %s\n", dir);
    return 1;
  }
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = 1;
  struct session x;
  if (open_session(path, &cfg, &x) != 0) return 1;
  struct spr_vision_info vi;
  if (spr_vision_info(x.m, &vi) != SPR_STATUS_OK) return fail("not a vision model", SPR_STATUS_UNSUPPORTED, NULL);
  printf("classify: %s, %d sample image(s), arena %zu bytes, %ld images\n", path, n_files, x.plan.arena_bytes, n);
  struct spr_tensor_view in, out;
  spr_session_input(x.s, 0, &in);
  spr_session_output(x.s, 0, &out);
  long rss1 = -1, counts[16] = {0};
  const uint64_t t0 = spr_time_ns();
  for (long i = 1; i <= n; i++) {
    const int k = (int)(i % n_files);
    struct cli_image img;
    if (cli_image_decode(files[k], sizes[k], "sample", (int)vi.channels, &img) != 0) return 1;
    struct spr_error err = {SPR_STATUS_OK, ""};
    enum spr_status s =
        spr_vision_preprocess(x.m, img.pixels, img.w, img.h, img.channels, in.data, in.nbytes / sizeof(float), &err);
    cli_image_free(&img);
    if (s != SPR_STATUS_OK) return fail("preprocess", s, &err);
    s = spr_session_run(x.s);
    if (s != SPR_STATUS_OK) return fail("run", s, NULL);
    const float *lg = out.data;
    uint32_t best = 0;
    for (uint32_t c = 1; c < vi.n_classes; c++) best = lg[c] > lg[best] ? c : best;
    counts[best % 16]++;
    if (i == 1000) rss1 = rss_kb();
  }
  const double secs = (double)(spr_time_ns() - t0) * 1e-9;
  const long rss = rss_kb();
  const int rc = verdict("classify", 1000, rss1, n, rss, secs);
  close_session(&x);
  for (int i = 0; i < n_files; i++) free(files[i]);
  return rc;
}

int main(int argc, char **argv) {
  if (rss_kb() < 0) {
    fprintf(stderr, "endurance: no /proc/self/status here: skipped\n");
    return 77;
  }
  const long n = argc >= 4 ? strtol(argv[3], NULL, 10) : 0;
  if (argc == 4 && strcmp(argv[1], "generate") == 0 && n >= 1000) return generate(argv[2], n);
  if (argc == 5 && strcmp(argv[1], "classify") == 0 && n >= 1000) return classify(argv[2], n, argv[4]);
  fprintf(stderr, "usage: endurance generate MODEL N | endurance classify MODEL N DIR   (N >= 1000)\n");
  return 2;
}
