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
};

/* The run-configuration options every LLM command takes. */
#define CLI_LLM_OPTS(o)                                                                                            \
  {"ctx", CLI_INT, &(o).ctx, "N", "context length (default min(model's, 2048))"},                                   \
      {"batch", CLI_INT, &(o).batch, "N", "prompt tokens per prefill step (default min(64, ctx))"},                \
      {"window", CLI_INT, &(o).window, "W", "sliding-window attention over the last W tokens (constant KV memory)"}, \
      {"sinks", CLI_INT, &(o).sinks, "S", "with --window: also keep the first S tokens (attention sinks)"},        \
      {"kv-f32", CLI_FLAG, &(o).kv_f32_flag, NULL, "keep the KV cache in f32 (default f16)"}

int cli_llm_open(const char *path, const struct cli_common *c, const struct cli_llm_opts *o, struct cli_session *cs,
                 struct spr_llm_info *info);
/* Tokenizes text into a malloc'd array. */
int cli_llm_tokenize(const struct cli_session *cs, const char *text, bool add_bos, int32_t **tokens, size_t *n);
const char *cli_default_llm_model(void);

#endif
