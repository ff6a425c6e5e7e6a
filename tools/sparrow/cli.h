/* tools/sparrow/cli.h — shared pieces of the sparrow command-line tool.
 *
 * Every command parses its arguments with cli_parse(): options may appear
 * anywhere, `--name value` or `--name=value`; the common options (--threads,
 * --arena-bytes, --isa, --help) are accepted by every command. Errors print
 * one line "sparrow: error: ..." on stderr and the command exits 1 (2 for a
 * usage error). */
#ifndef SPR_TOOLS_CLI_H
#define SPR_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sparrow/sparrow.h"

enum cli_kind { CLI_FLAG, CLI_STR, CLI_INT, CLI_SIZE, CLI_FLOAT };

struct cli_opt {
  const char *name; /* without the leading "--"; "p|prompt" also accepts -p */
  enum cli_kind kind;
  void *dst;        /* bool*, const char**, int*, size_t*, float* */
  const char *arg;  /* placeholder shown in help ("N"), NULL for flags */
  const char *help;
};

struct cli_common {
  int threads;
  size_t arena_bytes; /* 0: the planned size */
  const char *isa;    /* NULL: best available */
  uint32_t isa_mask;
  bool help;
};

struct cli_cmd {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
};

/* Parses argv[1..argc) (argv[0] is the command name). Positional arguments go
 * to pos[0..max_pos). Returns 0 on success, 2 after printing a usage error,
 * and -1 when --help was given (help already printed). */
int cli_parse(int argc, char **argv, const char *usage, const char *description, const struct cli_opt *opts,
              struct cli_common *common, const char **pos, int min_pos, int max_pos, int *n_pos);

/* Prints "sparrow: error: <msg>" and returns 1. */
int cli_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Prints a library error (status name + message) and returns 1. */
int cli_fail_status(enum spr_status s, const struct spr_error *err, const char *what);

/* A spr_config from the common options. */
void cli_config(const struct cli_common *c, struct spr_config *cfg);

/* Loaded model + session over a heap arena sized by the plan (or by
 * --arena-bytes). */
struct cli_session {
  struct spr_model *model;
  struct spr_session *session;
  void *arena;
  struct spr_plan plan;
};
int cli_open(const char *path, const struct spr_config *cfg, size_t arena_bytes, struct cli_session *out);
void cli_close(struct cli_session *cs);

/* Default bundled model (relative to the source tree or the install prefix). */
const char *cli_default_vision_model(void);

/* Writes s as a JSON string literal (quoted, escaped). */
void cli_json_str(FILE *f, const char *s);

/* Median of n doubles (sorts in place). */
double cli_median(double *v, size_t n);

/* Commands. */
int cmd_info(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_bench_op(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_accuracy(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_embed(int argc, char **argv);

#endif
