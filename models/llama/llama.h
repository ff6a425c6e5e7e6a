/* models/llama/llama.h — llama-architecture LLMs from llama.cpp GGUF files.
 *
 * Metadata (prefix "llama."): context_length, embedding_length, block_count,
 * feed_forward_length, attention.head_count, attention.layer_norm_rms_epsilon
 * (required); attention.head_count_kv (default head_count), rope.dimension_count
 * (default head_dim), rope.freq_base (default 10000), rope.scaling.type
 * ("none" or "linear" with rope.scaling.factor); expert_count > 0 is refused.
 * Tensors (ggml ne order): token_embd {E,V}; blk.N.attn_norm {E};
 * attn_q {E,H*hd}; attn_k/attn_v {E,KV*hd}; attn_output {H*hd,E}; ffn_norm {E};
 * ffn_gate/ffn_up {E,F}; ffn_down {F,E} or instead the sparse layout
 * ffn_down_t {E,F} (llama_core.h); output_norm {E}; output {E,V}
 * (absent: tied to token_embd). Q/K are expected permuted as llama.cpp's
 * converters do, so RoPE rotates adjacent pairs. */
#ifndef SPR_MODELS_LLAMA_H
#define SPR_MODELS_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

struct spr_tokenizer;

struct spr_llama_hparams {
  uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot, head_dim, ctx_train;
  float eps, freq_base, freq_scale;
  bool tied_output;
  struct spr_tokenizer *tok; /* NULL when the file has no tokenizer */
  void *tok_mem;             /* tables, from the model's allocator */
};

/* Graph slots (struct spr_graph.aux) the LLM layer reads. */
enum { SPR_LLAMA_AUX_SAMPLER = 0, SPR_LLAMA_AUX_BATCH = 1, SPR_LLAMA_AUX_CORE = 2 /* core_ctl or -1 */ };

struct spr_arch;
extern const struct spr_arch spr_arch_llama;

#endif
