/* tools/sparrow/llm_cli.h — options and setup shared by the LLM commands. */
#ifndef SPR_TOOLS_LLM_CLI_H
#define SPR_TOOLS_LLM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparrow/llm.h"
#include "tools/sparrow/cli.h"

struct cli_llm_opts {
  int ctx, batch, window, sinks;
  bool kv_f32_flag;
  int logits_all;
  const char *sparse_ffn; /* --sparse-ffn SPEC (llm_sparse.c) */
  struct spr_config cfg;  /* cli_llm_open: the session's configuration */
};

#define CLI_SPARSE_FFN_HELP                                                                            \
  "core-neuron FFN sparsity (CoreInfer): core[:BETA][,alpha=A][,layers=F-L|all][,reselect=sentence]\n" \
  "[,compact].\n"                                                                                      \
  "BETA = fraction of FFN neurons kept (default 0.4), alpha = per-token top-k\n"                       \
  "fraction of the mean #positive activations (0.2); layers default to\n"                              \
  "CoreInfer's 6..26 of 32 scaled to L layers: (6L+16)/32 .. L-1-(5L+16)/32\n"                         \
  "(integer division); reselect=sentence re-selects after . ! ?; compact (files\n"                     \
  "with neuron bundles) copies the core bundles into the arena once per selection\n"                   \
  "and decodes from that copy: sequential reads, n_core x 3456 B more arena per\n"                     \
  "sparse layer at TinyLlama's width (docs/coreinfer.md)"

/* The run-configuration options every LLM command takes. */
#define CLI_LLM_OPTS(o)                                                                                              \
  {"ctx", CLI_INT, &(o).ctx, "N", "context length (default min(model's, 2048))"},                                    \
      {"batch", CLI_INT, &(o).batch, "N", "prompt tokens per prefill step (default min(64, ctx))"},                  \
      {"window", CLI_INT, &(o).window, "W", "sliding-window attention over the last W tokens (constant KV memory)"}, \
      {"sinks", CLI_INT, &(o).sinks, "S", "with --window: also keep the first S tokens (attention sinks)"},          \
      {"kv-f32", CLI_FLAG, &(o).kv_f32_flag, NULL, "keep the KV cache in f32 (default f16)"}, {                      \
    "sparse-ffn", CLI_STR, &(o).sparse_ffn, "SPEC", CLI_SPARSE_FFN_HELP                                              \
  }

int cli_llm_open(const char *path, const struct cli_common *c, struct cli_llm_opts *o, struct cli_session *cs,
                 struct spr_llm_info *info);
/* Tokenizes text into a malloc'd array. */
int cli_llm_tokenize(const struct cli_session *cs, const char *text, bool add_bos, int32_t **tokens, size_t *n);
const char *cli_default_llm_model(void);

/* The arena bytes sparse_ffn_compact adds: planned (cfg's plan) minus the plan without it; 0 when off. */
size_t cli_compact_bytes(const struct spr_model *m, const struct spr_config *cfg, const struct spr_plan *planned);
/* Applies a --sparse-ffn SPEC (NULL: nothing) to cfg; 0, or 1 after printing an error. */
int cli_sparse_ffn_parse(const char *spec, struct spr_config *cfg);
/* One line on the sparse layers and decode traffic, plus the row-major ffn_down note (nothing when off). */
void cli_sparse_ffn_report(const struct cli_session *cs, const struct spr_config *cfg, FILE *f);

#endif
