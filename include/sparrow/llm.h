/* sparrow/llm.h — text generation with llama-architecture models.
 *
 * A session of an LLM holds the KV cache (in the arena, sized by spr_plan for
 * the configured ctx/batch/window) and the current position. spr_llm_eval
 * feeds tokens in steps of at most `batch` tokens (prefill through GEMM,
 * single tokens through GEMV) and returns the logits of the last token;
 * spr_llm_sample picks the next token. Nothing allocates after
 * spr_session_create: tokenizer tables live in the model object (allocated
 * once at load), sampler scratch in the arena. */
#ifndef SPARROW_LLM_H
#define SPARROW_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparrow/sparrow.h"

#ifdef __cplusplus
extern "C" {
#endif

struct spr_llm_info {
  uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot, ctx_train;
  float rope_freq_base, rms_eps;
  bool tied_output;   /* output.weight absent: logits use token_embd */
  bool has_tokenizer;
  int32_t bos, eos;   /* -1 when unknown */
};

/* UNSUPPORTED when m is not an LLM. */
enum spr_status spr_llm_info(const struct spr_model *m, struct spr_llm_info *out);

/* ---- tokenizer (from the model's GGUF metadata) ------------------------ */

/* Scratch bytes spr_llm_tokenize needs for a text of `len` bytes. */
size_t spr_llm_tokenize_work_bytes(const struct spr_model *m, size_t len);
/* Encodes text into tokens[0..max); *n receives the count. CAPACITY when
 * max is too small, UNSUPPORTED when the model has no tokenizer. */
enum spr_status spr_llm_tokenize(const struct spr_model *m, const char *text, size_t len, bool add_bos,
                                 int32_t *tokens, size_t max, size_t *n, void *work, size_t work_bytes);
/* The bytes of one token (may be a partial UTF-8 sequence); *n receives the
 * length. INVALID_ARGUMENT for an id outside the vocabulary. */
enum spr_status spr_llm_token_piece(const struct spr_model *m, int32_t id, char *buf, size_t len, size_t *n);

/* ---- evaluation ------------------------------------------------------------ */

/* Feeds n tokens after the current position; *logits (may be NULL) points at
 * the last token's n_vocab logits (valid until the next call), or with
 * logits_all at the n x n_vocab logits of the last step. CAPACITY when the
 * context would overflow (without a window), BAD_INPUT for an id outside the
 * vocabulary or n == 0. */
enum spr_status spr_llm_eval(struct spr_session *s, const int32_t *tokens, size_t n, const float **logits);
/* Forgets the cached tokens (position 0). */
void spr_llm_reset(struct spr_session *s);
/* Tokens evaluated since the last reset. */
uint32_t spr_llm_position(const struct spr_session *s);
/* Most tokens one step evaluates (the configured batch). */
uint32_t spr_llm_batch(const struct spr_session *s);
/* Context capacity of the session (ctx; unlimited = UINT32_MAX with a window). */
uint32_t spr_llm_capacity(const struct spr_session *s);

/* ---- core-neuron FFN (spr_config.sparse_ffn_*; docs/coreinfer.md) ------------ */

/* The sparse layers a configuration gives this model (CoreInfer sparsifies
 * layers 6..26 of 32; the default scales that to n_layer as
 * first = (6 n_layer + 16) / 32, last = n_layer - 1 - (5 n_layer + 16) / 32,
 * integer division) and the kept neurons per sparse layer,
 * n_core = max(1, floor(beta * n_ff)). INVALID_ARGUMENT for a bad range or
 * beta/alpha outside [0, 1]; *first = *last = -1 and *n_core = 0 when off. */
enum spr_status spr_llm_sparse_layers(const struct spr_model *m, const struct spr_config *c, int *first, int *last,
                                      uint32_t *n_core);

/* The current core set of `layer` in the session: n ascending neuron ids at
 * *idx (in the arena, valid until the next eval); n = 0 before the first
 * prefill. UNSUPPORTED when the layer is not sparse in this session. */
enum spr_status spr_llm_core_set(const struct spr_session *s, uint32_t layer, const int32_t **idx, uint32_t *n);

/* Weight bytes one decoded token reads (every matrix once; token_embd one
 * row unless it is also the output matrix). With a sparse FFN, each sparse
 * layer reads n_core of the n_ff rows of ffn_gate and ffn_up and, with the
 * sparse layout (ffn_down_t), n_core of its rows; llama.cpp's row-major
 * ffn_down is read whole (its quantized blocks run along n_ff, so skipped
 * neurons save arithmetic, not bytes). */
struct spr_llm_traffic {
  double dense;          /* bytes per decoded token without sparsity */
  double sparse;         /* with this configuration's sparse FFN (= dense when off) */
  double sparse_down_t;  /* what `sparse` would be with every sparse layer's down projection as ffn_down_t */
  uint32_t row_major_down; /* sparse layers whose file has the row-major ffn_down */
};
enum spr_status spr_llm_decode_traffic(const struct spr_model *m, const struct spr_config *c,
                                       struct spr_llm_traffic *out);

struct spr_sampler {
  float temperature;     /* <= 0: greedy (arg-max, lowest id on ties) */
  int top_k;             /* 0: off */
  float top_p;           /* >= 1: off */
  float repeat_penalty;  /* 1: off; divides positive / multiplies negative logits */
  int repeat_last_n;     /* tokens of history the penalty looks at */
  uint64_t seed;         /* state of the generator; advanced by every sample */
};
/* Defaults: temperature 0.8, top_k 40, top_p 0.95, repeat_penalty 1.0, last 64, seed 1. */
void spr_sampler_init(struct spr_sampler *p);

/* Picks a token from the logits of the last spr_llm_eval (uses arena
 * scratch, never allocates). history = tokens so far, for the penalty. */
int32_t spr_llm_sample(struct spr_session *s, struct spr_sampler *p, const int32_t *history, size_t n_history);

#ifdef __cplusplus
}
#endif
#endif
