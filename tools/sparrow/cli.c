/* tools/sparrow/cli.c — argument parsing, errors and model/session setup. */
#include "tools/sparrow/cli.h"
#include "tools/sparrow/cli_arena.h"

#if SPR_CUDA
#include "ops/backends/cuda/cuda_backend.h"
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("sparrow: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

int cli_fail_status(enum spr_status s, const struct spr_error *err, const char *what) {
  if (err != NULL && err->msg[0] != '\0') return cli_fail("%s: %s (%s)", what, err->msg, spr_status_name(s));
  return cli_fail("%s: %s (%s)", what, spr_status_describe(s), spr_status_name(s));
}

int cli_parse_only;
unsigned long cli_parse_only_ok;

/* --check-finite of the command being run (cli_load reads it). */
static bool g_check_finite;

static const struct cli_opt k_common_opts[] = {
    {"threads", CLI_INT, NULL, "N", "worker threads (default 1)"},
    {"arena-bytes", CLI_SIZE, NULL, "N", "arena size in bytes (default: exactly the planned size)"},
    {"isa", CLI_STR, NULL, "NAME", "force a ukernel path: scalar|avx2|avx512|neon|dotprod (default: best)"},
    {"backend", CLI_STR, NULL, "NAME", "run the model on: cpu (default) or cuda (-DSPR_CUDA=ON builds, docs/cuda.md)"},
    {"check-finite", CLI_FLAG, NULL, NULL, "on load, refuse a model whose f32/f16 weights hold NaN or Inf"},
    {"help", CLI_FLAG, NULL, NULL, "show this help"},
    {NULL, CLI_FLAG, NULL, NULL, NULL},
};

/* "p|prompt": short alias before the bar. */
static const char *long_name(const char *name) {
  const char *bar = strchr(name, '|');
  return bar ? bar + 1 : name;
}

static int has_short(const char *name, char c) {
  return name[0] == c && name[1] == '|';
}

/* An option's help starts at this column; its further lines (after a '\n'
 * in the help text) are indented to it here, so the texts carry no padding. */
enum { HELP_COLUMN = 29 };

static void print_opts(const struct cli_opt *opts) {
  for (const struct cli_opt *o = opts; o != NULL && o->name != NULL; o++) {
    char left[64];
    if (strchr(o->name, '|'))
      snprintf(left, sizeof left, "-%c, --%s%s%s", o->name[0], long_name(o->name), o->arg ? " " : "",
               o->arg ? o->arg : "");
    else
      snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    printf("  %-*s ", HELP_COLUMN - 3, left);
    for (const char *h = o->help; *h != '\0'; h++)
      if (*h == '\n')
        printf("\n%*s", HELP_COLUMN, "");
      else
        putchar(*h);
    putchar('\n');
  }
}

static void print_help(const char *usage, const char *description, const struct cli_opt *opts) {
  printf("usage: %s\n\n%s\n", usage, description);
  if (opts != NULL && opts[0].name != NULL) {
    printf("\noptions:\n");
    print_opts(opts);
  }
  printf("\ncommon options:\n");
  print_opts(k_common_opts);
}

static int parse_value(const struct cli_opt *o, const char *v, void *dst) {
  char *end = NULL;
  errno = 0;
  switch (o->kind) {
    case CLI_FLAG:
      *(bool *)dst = true;
      return 0;
    case CLI_STR:
      *(const char **)dst = v;
      return 0;
    case CLI_INT: {
      const long x = strtol(v, &end, 10);
      if (errno || end == v || *end || x < -2147483647L || x > 2147483647L)
        return cli_fail("--%s expects an integer, got '%s'", long_name(o->name), v) + 1;
      *(int *)dst = (int)x;
      return 0;
    }
    case CLI_SIZE: {
      if (v[0] == '-') return cli_fail("--%s expects a non-negative size, got '%s'", long_name(o->name), v) + 1;
      const unsigned long long x = strtoull(v, &end, 10);
      if (errno || end == v || *end || x > SIZE_MAX)
        return cli_fail("--%s expects a size in bytes, got '%s'", long_name(o->name), v) + 1;
      *(size_t *)dst = (size_t)x;
      return 0;
    }
    case CLI_FLOAT: {
      const float x = strtof(v, &end);
      if (errno || end == v || *end) return cli_fail("--%s expects a number, got '%s'", long_name(o->name), v) + 1;
      *(float *)dst = x;
      return 0;
    }
  }
  return 2;
}

int cli_parse(int argc, char **argv, const char *usage, const char *description, const struct cli_opt *opts,
              struct cli_common *common, const char **pos, int min_pos, int max_pos, int *n_pos) {
  memset(common, 0, sizeof *common);
  common->threads = 1;
  common->isa_mask = SPR_ISA_ALL;
  void *common_dst[] = {&common->threads, &common->arena_bytes,  &common->isa,
                        &common->backend, &common->check_finite, &common->help};
  *n_pos = 0;
  bool only_pos = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (*n_pos >= max_pos) {
        cli_fail("unexpected argument '%s' (see --help)", a);
        return 2;
      }
      pos[(*n_pos)++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    const struct cli_opt *found = NULL;
    void *dst = NULL;
    const char *name, *eq;
    size_t len;
    if (a[1] != '-') {
      /* -x VALUE: a short alias */
      for (const struct cli_opt *o = opts; a[2] == '\0' && o != NULL && o->name != NULL; o++) {
        if (has_short(o->name, a[1])) found = o, dst = o->dst;
      }
      if (found == NULL) {
        cli_fail("unknown option '%s' (see --help)", a);
        return 2;
      }
      name = long_name(found->name);
      eq = NULL;
      len = strlen(name);
    } else {
      name = a + 2;
      eq = strchr(name, '=');
      len = eq ? (size_t)(eq - name) : strlen(name);
    }
    for (const struct cli_opt *o = opts; found == NULL && o != NULL && o->name != NULL; o++) {
      const char *ln = long_name(o->name);
      if (strlen(ln) == len && strncmp(ln, name, len) == 0) found = o, dst = o->dst;
    }
    for (int k = 0; found == NULL && k_common_opts[k].name != NULL; k++) {
      if (strlen(k_common_opts[k].name) == len && strncmp(k_common_opts[k].name, name, len) == 0)
        found = &k_common_opts[k], dst = common_dst[k];
    }
    if (found == NULL) {
      cli_fail("unknown option '--%.*s' (see --help)", (int)len, name);
      return 2;
    }
    const char *v = NULL;
    if (found->kind == CLI_FLAG) {
      if (eq) {
        cli_fail("option --%s takes no value", long_name(found->name));
        return 2;
      }
    } else if (eq) {
      v = eq + 1;
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      cli_fail("option --%s needs a value", long_name(found->name));
      return 2;
    }
    if (parse_value(found, v, dst) != 0) return 2;
  }
  if (common->help) {
    print_help(usage, description, opts);
    return -1;
  }
  if (common->threads < 1 || common->threads > SPR_MAX_THREADS) {
    cli_fail("--threads must be between 1 and %d, got %d", SPR_MAX_THREADS, common->threads);
    return 2;
  }
  if (common->isa != NULL) {
    if (spr_isa_mask_parse(common->isa, &common->isa_mask) != SPR_STATUS_OK) {
      cli_fail("unknown --isa '%s' (scalar, avx2, avx512, neon, dotprod)", common->isa);
      return 2;
    }
    /* The named ISA itself must exist here; what it implies may fall back. */
    const uint32_t have = spr_cpu_isa();
    const uint32_t top = strcmp(common->isa, "avx512") == 0    ? SPR_ISA_X86_AVX512F
                         : strcmp(common->isa, "avx2") == 0    ? SPR_ISA_X86_AVX2
                         : strcmp(common->isa, "neon") == 0    ? SPR_ISA_ARM_NEON
                         : strcmp(common->isa, "dotprod") == 0 ? SPR_ISA_ARM_DOTPROD
                                                               : 0;
    if (top != 0 && !(have & top)) {
      cli_fail("--isa %s is not available on this CPU", common->isa);
      return 2;
    }
  }
  if (common->backend != NULL && strcmp(common->backend, "cpu") != 0 && strcmp(common->backend, "cuda") != 0 &&
      strcmp(common->backend, "cuda-emu") != 0) {
    cli_fail("unknown --backend '%s' (cpu, cuda)", common->backend);
    return 2;
  }
  if (*n_pos < min_pos) {
    cli_fail("missing argument (usage: %s)", usage);
    return 2;
  }
  g_check_finite = common->check_finite;
  if (cli_parse_only) {
    cli_parse_only_ok++;
    return -1;
  }
  return 0;
}

/* --backend of the command line, for cli_open (one command per process). */
static const char *g_backend;

int cli_backend_attach(const char *backend, struct spr_session *s, void **handle) {
  *handle = NULL;
  if (backend == NULL || strcmp(backend, "cpu") == 0) return 0;
#if SPR_CUDA
  struct spr_error err = {SPR_STATUS_OK, ""};
  struct spr_cuda *c = NULL;
  const enum spr_status st =
      spr_cuda_attach(s, strcmp(backend, "cuda-emu") == 0 ? SPR_CUDA_EMULATE : SPR_CUDA_DEVICE, &c, &err);
  if (st != SPR_STATUS_OK) {
    char probe[200];
    if (strcmp(backend, "cuda") == 0 && spr_cuda_probe(probe, sizeof probe) != SPR_STATUS_OK) {
      cli_fail("--backend cuda: %s", probe);
      return CLI_EXIT_NO_CUDA;
    }
    return cli_fail_status(st, &err, "--backend cuda");
  }
  *handle = c;
  return 0;
#else
  (void)s;
  cli_fail("--backend %s: this sparrow was built without the CUDA backend (configure with -DSPR_CUDA=ON)", backend);
  return CLI_EXIT_NO_CUDA;
#endif
}

void cli_backend_detach(void *handle) {
#if SPR_CUDA
  spr_cuda_detach(handle);
#else
  (void)handle;
#endif
}

void cli_config(const struct cli_common *c, struct spr_config *cfg) {
  g_backend = c->backend;
  spr_config_init(cfg);
  cfg->threads = c->threads;
  cfg->isa_mask = c->isa_mask;
}

enum spr_status cli_load(const char *path, struct spr_model **out, struct spr_error *err) {
  struct spr_load_options opt = {NULL, g_check_finite};
  return spr_model_load_file(path, &opt, out, err);
}

int cli_open(const char *path, const struct spr_config *cfg, size_t arena_bytes, struct cli_session *out) {
  memset(out, 0, sizeof *out);
  struct spr_error err = {SPR_STATUS_OK, ""};
  enum spr_status s = cli_load(path, &out->model, &err);
  if (s != SPR_STATUS_OK) return cli_fail_status(s, &err, path);
  s = spr_plan(out->model, cfg, &out->plan, &err);
  if (s != SPR_STATUS_OK) {
    cli_close(out);
    return cli_fail_status(s, &err, "plan");
  }
  const size_t bytes = arena_bytes != 0 ? arena_bytes : out->plan.arena_bytes;
  out->arena = cli_arena_alloc(bytes);
  if (out->arena == NULL) {
    cli_close(out);
    return cli_fail("cannot allocate an arena of %zu bytes", bytes);
  }
  s = spr_session_create(out->model, cfg, out->arena, bytes, &out->session, &err);
  if (s != SPR_STATUS_OK) {
    cli_close(out);
    return cli_fail_status(s, &err, "session");
  }
  const int rc = cli_backend_attach(g_backend, out->session, &out->backend);
  if (rc != 0) cli_close(out);
  return rc;
}

void cli_close(struct cli_session *cs) {
  cli_backend_detach(cs->backend);
  spr_session_destroy(cs->session);
  free(cs->arena);
  spr_model_free(cs->model);
  memset(cs, 0, sizeof *cs);
}

const char *cli_default_vision_model(void) {
  static const char *const candidates[] = {
      SPR_SOURCE_DIR "/models/vit-fmnist.gguf",
      "models/vit-fmnist.gguf",
  };
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    if (access(candidates[i], R_OK) == 0) return candidates[i];
  }
  return candidates[0];
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double cli_median(double *v, size_t n) {
  if (n == 0) return 0;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void cli_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}
