/* tests/support/tiny_models.h — small random-weight model files written with
 * the project's own GGUF writer, for tests that need a real model. */
#ifndef SPR_TESTS_TINY_MODELS_H
#define SPR_TESTS_TINY_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparrow/types.h"

struct spr_tiny_vit {
  int image, channels, patch, dim, depth, heads, ffn, classes;
  bool mean_pool, distilled, qkv_bias;
  enum spr_dtype linear_type; /* F32 or F16 */
  uint64_t seed;
};

/* Defaults: 16x16x3 image, patch 4, dim 32, depth 2, 2 heads, ffn 64, 10 classes. */
void spr_tiny_vit_defaults(struct spr_tiny_vit *c);

/* Writes the model to a malloc'd, 64-byte aligned buffer (free with free()). */
enum spr_status spr_tiny_vit_write(const struct spr_tiny_vit *c, void **buf, size_t *size);

struct spr_tiny_llama {
  int dim, layers, heads, kv_heads, ffn, vocab, ctx;
  bool tied;          /* no output.weight */
  bool tokenizer;     /* write a small "llama" (SentencePiece-style) vocabulary */
  float freq_base;
  enum spr_dtype matmul_type; /* F32 or F16 */
  uint64_t seed;
};

/* Defaults: dim 32, 2 layers, 4 heads, 2 kv heads, ffn 64, vocab 300 (with a
 * tokenizer: 3 control tokens, 256 byte tokens, 41 word pieces), ctx 64. */
void spr_tiny_llama_defaults(struct spr_tiny_llama *c);
enum spr_status spr_tiny_llama_write(const struct spr_tiny_llama *c, void **buf, size_t *size);

#endif
