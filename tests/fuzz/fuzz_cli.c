/* tests/fuzz/fuzz_cli.c — the sparrow CLI's argument parsing, with every
 * command's own option table.
 *
 * The input is split at newlines into argv: the first line names the command
 * (an unknown name picks one by its first byte), the others are its
 * arguments, each copied into a buffer of exactly its length + 1 so ASan sees
 * any read past a terminator. The command's real entry point is called with
 * cli_parse_only set: cli_parse then parses and validates everything as
 * usual (option tables, values, --isa, --threads, positional counts) but
 * returns -1 instead of 0, so the command returns before it opens, writes or
 * runs anything (every command calls cli_parse first). A command that
 * returns anything but 0 (help, or parse-only success) or 2 (usage error)
 * went past parsing, which would break that guarantee: the harness aborts. */
#include "fuzz_common.h"
#include "tools/sparrow/cli.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} k_cmds[] = {
    {"info", cmd_info},         {"plan", cmd_plan},         {"classify", cmd_classify},
    {"accuracy", cmd_accuracy}, {"generate", cmd_generate}, {"perplexity", cmd_perplexity},
    {"bench", cmd_bench},       {"bench-op", cmd_bench_op}, {"quantize", cmd_quantize},
    {"embed", cmd_embed},
};
enum { N_CMDS = sizeof k_cmds / sizeof k_cmds[0], MAX_ARGS = 64 };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  cli_parse_only = 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0 || size > 4096) return 0;
  cli_parse_only = 1;
  char *args[MAX_ARGS + 1];
  int argc = 0;
  size_t start = 0;
  for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
    if (i < size && data[i] != '\n') continue;
    const size_t n = i - start;
    args[argc] = malloc(n + 1);
    memcpy(args[argc], data + start, n);
    args[argc][n] = '\0';
    argc++;
    start = i + 1;
  }
  args[argc] = NULL;
  int cmd = -1;
  for (int k = 0; k < N_CMDS; k++) {
    if (strcmp(args[0], k_cmds[k].name) == 0) cmd = k;
  }
  if (cmd < 0) cmd = (unsigned char)args[0][0] % N_CMDS;
  const unsigned long ok_before = cli_parse_only_ok;
  const int rc = k_cmds[cmd].run(argc, args);
  SPR_FUZZ_REQUIRE(rc == 0 || rc == 2, "%s returned %d: it went past argument parsing", k_cmds[cmd].name, rc);
  SPR_FUZZ_REQUIRE(cli_parse_only_ok - ok_before <= 1, "cli_parse ran twice");
  for (int i = 0; i < argc; i++) free(args[i]);
  return 0;
}
