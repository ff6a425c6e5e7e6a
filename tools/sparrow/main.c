/* tools/sparrow/main.c — `sparrow COMMAND ...` dispatch. */
#include <stdio.h>
#include <string.h>

#include "tools/sparrow/cli.h"

static const struct cli_cmd k_cmds[] = {
    {"info", "metadata, tensors and the ukernel each op uses on this CPU", cmd_info},
    {"plan", "exact arena bytes for a model and run configuration, by part", cmd_plan},
    {"classify", "classify an image (PNG/JPEG/PPM/PGM) with a vision model", cmd_classify},
    {"accuracy", "top-1 accuracy of a vision model on an IDX data set", cmd_accuracy},
    {"generate", "generate text with a llama-architecture LLM", cmd_generate},
    {"perplexity", "perplexity of an LLM on a text file", cmd_perplexity},
    {"bench", "whole-model latency (vision) or prefill/decode tok/s (LLM)", cmd_bench},
    {"bench-op", "time one op at a given shape (gemm, attention, ...)", cmd_bench_op},
    {"quantize", "convert a GGUF model's weights to q8_0/q4_0/q4_k/q6_k/f16/f32", cmd_quantize},
    {"embed", "a GGUF model as a const, aligned C array for firmware (flash)", cmd_embed},
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: sparrow COMMAND [ARGS] [--threads N] [--arena-bytes N] [--isa NAME] [--help]\n\n"
          "Sparrow %d.%d.%d — static-allocation transformer inference for edge CPUs.\n\ncommands:\n",
          SPARROW_VERSION_MAJOR, SPARROW_VERSION_MINOR, SPARROW_VERSION_PATCH);
  for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
    fprintf(f, "  %-10s %s\n", k_cmds[i].name, k_cmds[i].summary);
  fprintf(f, "\n`sparrow COMMAND --help` describes a command's arguments.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("sparrow %d.%d.%d\n", SPARROW_VERSION_MAJOR, SPARROW_VERSION_MINOR, SPARROW_VERSION_PATCH);
    return 0;
  }
  for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++) {
    if (strcmp(argv[1], k_cmds[i].name) == 0) return k_cmds[i].run(argc - 1, argv + 1);
  }
  return cli_fail("unknown command '%s' (see sparrow --help)", argv[1]) + 1;
}
