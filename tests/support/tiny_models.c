/* tests/support/tiny_models.c */
#include "tiny_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "sparrow/gguf.h"
#include "test_util.h"

void spr_tiny_vit_defaults(struct spr_tiny_vit *c) {
  memset(c, 0, sizeof *c);
  c->image = 16;
  c->channels = 3;
  c->patch = 4;
  c->dim = 32;
  c->depth = 2;
  c->heads = 2;
  c->ffn = 64;
  c->classes = 10;
  c->qkv_bias = true;
  c->linear_type = SPR_DTYPE_F32;
  c->seed = 42;
}

/* The writer borrows tensor data until write: keep every buffer in a list. */
struct owned {
  void *bufs[1024];
  int n;
};

static void *own(struct owned *o, size_t bytes) {
  if (o->n >= 1024) return NULL;
  void *p = calloc(1, bytes ? bytes : 1);
  o->bufs[o->n++] = p;
  return p;
}

static void add_f32(struct spr_gguf_writer *w, struct owned *o, uint64_t *seed, const char *name, int n_dims,
                    const int64_t *ne, float scale, float offset) {
  size_t n = 1;
  for (int i = 0; i < n_dims; i++) n *= (size_t)ne[i];
  float *d = own(o, n * sizeof(float));
  for (size_t i = 0; i < n; i++) d[i] = offset + scale * spr_test_rng_uniform(seed, -1.0f, 1.0f);
  spr_gguf_writer_add_tensor(w, name, SPR_DTYPE_F32, (uint32_t)n_dims, ne, d);
}

static void add_linear(struct spr_gguf_writer *w, struct owned *o, uint64_t *seed, const char *name, int64_t in,
                       int64_t out, enum spr_dtype type) {
  const int64_t ne[2] = {in, out};
  const size_t n = (size_t)(in * out);
  const float scale = 1.0f / (float)in;
  if (type == SPR_DTYPE_F16) {
    uint16_t *d = own(o, n * 2);
    for (size_t i = 0; i < n; i++) d[i] = spr_fp16_from_f32(3.0f * scale * spr_test_rng_uniform(seed, -1.0f, 1.0f));
    spr_gguf_writer_add_tensor(w, name, SPR_DTYPE_F16, 2, ne, d);
  } else {
    add_f32(w, o, seed, name, 2, ne, 3.0f * scale, 0.0f);
  }
}

static enum spr_status finish(struct spr_gguf_writer *w, struct owned *o, void **buf, size_t *size);

enum spr_status spr_tiny_vit_write(const struct spr_tiny_vit *c, void **buf, size_t *size) {
  struct spr_gguf_writer *w = NULL;
  enum spr_status s = spr_gguf_writer_create(&w);
  if (s != SPR_STATUS_OK) return s;
  struct owned o = {.n = 0};
  uint64_t seed = c->seed;
  const int64_t D = c->dim, F = c->ffn, K = c->classes, P = c->patch, C = c->channels;
  const int64_t grid = c->image / c->patch, T = grid * grid + (c->distilled ? 2 : 1);
  spr_gguf_writer_add_str(w, "general.architecture", "vit");
  spr_gguf_writer_add_str(w, "general.name", "tiny random vit (test)");
  spr_gguf_writer_add_u32(w, "vit.image_size", (uint32_t)c->image);
  spr_gguf_writer_add_u32(w, "vit.num_channels", (uint32_t)c->channels);
  spr_gguf_writer_add_u32(w, "vit.patch_size", (uint32_t)c->patch);
  spr_gguf_writer_add_u32(w, "vit.embedding_length", (uint32_t)c->dim);
  spr_gguf_writer_add_u32(w, "vit.block_count", (uint32_t)c->depth);
  spr_gguf_writer_add_u32(w, "vit.attention.head_count", (uint32_t)c->heads);
  spr_gguf_writer_add_u32(w, "vit.feed_forward_length", (uint32_t)c->ffn);
  spr_gguf_writer_add_u32(w, "vit.num_classes", (uint32_t)c->classes);
  spr_gguf_writer_add_str(w, "vit.pooling", c->mean_pool ? "mean" : "cls");
  spr_gguf_writer_add_f32(w, "vit.attention.layer_norm_epsilon", 1e-6f);
  if (c->distilled) spr_gguf_writer_add_bool(w, "vit.distilled", true);

  const int64_t pw[4] = {C, P, P, D}, d1[1] = {D}, pos[2] = {D, T};
  add_f32(w, &o, &seed, "patch_embd.weight", 4, pw, 0.2f, 0.0f);
  add_f32(w, &o, &seed, "patch_embd.bias", 1, d1, 0.1f, 0.0f);
  add_f32(w, &o, &seed, "cls_token", 1, d1, 0.5f, 0.0f);
  if (c->distilled) add_f32(w, &o, &seed, "dist_token", 1, d1, 0.5f, 0.0f);
  add_f32(w, &o, &seed, "pos_embd", 2, pos, 0.1f, 0.0f);
  char name[64];
  for (int l = 0; l < c->depth; l++) {
    const int64_t d3[1] = {3 * D}, f1[1] = {F};
#define NM(fmt) (snprintf(name, sizeof name, fmt, l), name)
    add_f32(w, &o, &seed, NM("blk.%d.ln1.weight"), 1, d1, 0.2f, 1.0f);
    add_f32(w, &o, &seed, NM("blk.%d.ln1.bias"), 1, d1, 0.1f, 0.0f);
    add_linear(w, &o, &seed, NM("blk.%d.attn_qkv.weight"), D, 3 * D, c->linear_type);
    if (c->qkv_bias) add_f32(w, &o, &seed, NM("blk.%d.attn_qkv.bias"), 1, d3, 0.1f, 0.0f);
    add_linear(w, &o, &seed, NM("blk.%d.attn_out.weight"), D, D, c->linear_type);
    add_f32(w, &o, &seed, NM("blk.%d.attn_out.bias"), 1, d1, 0.1f, 0.0f);
    add_f32(w, &o, &seed, NM("blk.%d.ln2.weight"), 1, d1, 0.2f, 1.0f);
    add_f32(w, &o, &seed, NM("blk.%d.ln2.bias"), 1, d1, 0.1f, 0.0f);
    add_linear(w, &o, &seed, NM("blk.%d.ffn_up.weight"), D, F, c->linear_type);
    add_f32(w, &o, &seed, NM("blk.%d.ffn_up.bias"), 1, f1, 0.1f, 0.0f);
    add_linear(w, &o, &seed, NM("blk.%d.ffn_down.weight"), F, D, c->linear_type);
    add_f32(w, &o, &seed, NM("blk.%d.ffn_down.bias"), 1, d1, 0.1f, 0.0f);
#undef NM
  }
  const int64_t k1[1] = {K};
  add_f32(w, &o, &seed, "norm.weight", 1, d1, 0.2f, 1.0f);
  add_f32(w, &o, &seed, "norm.bias", 1, d1, 0.1f, 0.0f);
  add_linear(w, &o, &seed, "head.weight", D, K, c->linear_type);
  add_f32(w, &o, &seed, "head.bias", 1, k1, 0.1f, 0.0f);
  if (c->distilled) {
    add_linear(w, &o, &seed, "head_dist.weight", D, K, c->linear_type);
    add_f32(w, &o, &seed, "head_dist.bias", 1, k1, 0.1f, 0.0f);
  }
  return finish(w, &o, buf, size);
}

/* Writes to memory, frees the borrowed buffers, returns a 64-aligned copy. */
static enum spr_status finish(struct spr_gguf_writer *w, struct owned *o, void **buf, size_t *size) {
  void *mem = NULL;
  size_t n = 0;
  const enum spr_status s = spr_gguf_writer_write_mem(w, &mem, &n, NULL);
  spr_gguf_writer_destroy(w);
  for (int i = 0; i < o->n; i++) free(o->bufs[i]);
  if (s != SPR_STATUS_OK) return s;
  /* The loader wants a 32-byte aligned blob (zero-copy tensor views). */
  void *aligned = spr_test_aligned_alloc(n);
  if (aligned == NULL) {
    free(mem);
    return SPR_STATUS_OUT_OF_MEMORY;
  }
  memcpy(aligned, mem, n);
  free(mem);
  *buf = aligned;
  *size = n;
  return SPR_STATUS_OK;
}

void spr_tiny_llama_defaults(struct spr_tiny_llama *c) {
  memset(c, 0, sizeof *c);
  c->dim = 32;
  c->layers = 2;
  c->heads = 4;
  c->kv_heads = 2;
  c->ffn = 64;
  c->vocab = 300;
  c->ctx = 64;
  c->tokenizer = true;
  c->freq_base = 10000.0f;
  c->matmul_type = SPR_DTYPE_F32;
  c->seed = 7;
}

/* U+2581, SentencePiece's visible space */
#define SP "\xe2\x96\x81"

static const char *const k_words[41] = {
    SP "the", SP "a", SP "cat", SP "dog", SP "sat",
    SP "on", SP "mat", SP "and", SP "ran", SP "to",
    SP "it", SP "was", SP "big", SP "red", SP "ball",
    SP "Once", SP "upon", SP "time", SP "there", SP "girl",
    SP, "th", "he", "at", "an", "in", "er", "on", "re", "ed", "is", "it", "or", "ou", "es", "ng",
    ".", ",", "!", SP "t", SP "c"};

enum spr_status spr_tiny_llama_write(const struct spr_tiny_llama *c, void **buf, size_t *size) {
  struct spr_gguf_writer *w = NULL;
  enum spr_status s = spr_gguf_writer_create(&w);
  if (s != SPR_STATUS_OK) return s;
  struct owned o = {.n = 0};
  uint64_t seed = c->seed;
  const int64_t E = c->dim, F = c->ffn, V = c->vocab, hd = c->dim / c->heads;
  const int64_t QW = c->heads * hd, KW = c->kv_heads * hd;
  spr_gguf_writer_add_str(w, "general.architecture", "llama");
  spr_gguf_writer_add_str(w, "general.name", "tiny random llama (test)");
  spr_gguf_writer_add_u32(w, "llama.context_length", (uint32_t)c->ctx);
  spr_gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)E);
  spr_gguf_writer_add_u32(w, "llama.block_count", (uint32_t)c->layers);
  spr_gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)F);
  spr_gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)c->heads);
  spr_gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)c->kv_heads);
  spr_gguf_writer_add_u32(w, "llama.rope.dimension_count", (uint32_t)hd);
  spr_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  spr_gguf_writer_add_f32(w, "llama.rope.freq_base", c->freq_base);
  if (c->tokenizer && V >= 300) {
    const char **tokens = calloc((size_t)V, sizeof *tokens);
    float *scores = own(&o, (size_t)V * sizeof(float));
    int32_t *types = own(&o, (size_t)V * sizeof(int32_t));
    char *bytes = own(&o, 256 * 8);
    tokens[0] = "<unk>";
    tokens[1] = "<s>";
    tokens[2] = "</s>";
    types[0] = 2;
    types[1] = types[2] = 3;
    for (int b = 0; b < 256; b++) {
      snprintf(bytes + 8 * b, 8, "<0x%02X>", b);
      tokens[3 + b] = bytes + 8 * b;
      types[3 + b] = 6;
    }
    for (int i = 0; i < 41; i++) {
      tokens[259 + i] = k_words[i];
      types[259 + i] = 1;
      scores[259 + i] = -(float)i;
    }
    for (int64_t i = 300; i < V; i++) {
      char *t = own(&o, 24);
      if (t == NULL) break;
      snprintf(t, 24, "<extra_%d>", (int)i);
      tokens[i] = t;
      types[i] = 5;
    }
    spr_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    spr_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tokens, (uint64_t)V);
    spr_gguf_writer_add_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)V);
    spr_gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)V);
    spr_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    spr_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    spr_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    free(tokens);
  }
  const int64_t e1[1] = {E}, emb[2] = {E, V};
  add_f32(w, &o, &seed, "token_embd.weight", 2, emb, 1.0f, 0.0f);
  char name[64];
  for (int l = 0; l < c->layers; l++) {
#define NM(fmt) (snprintf(name, sizeof name, fmt, l), name)
    add_f32(w, &o, &seed, NM("blk.%d.attn_norm.weight"), 1, e1, 0.2f, 1.0f);
    add_linear(w, &o, &seed, NM("blk.%d.attn_q.weight"), E, QW, c->matmul_type);
    add_linear(w, &o, &seed, NM("blk.%d.attn_k.weight"), E, KW, c->matmul_type);
    add_linear(w, &o, &seed, NM("blk.%d.attn_v.weight"), E, KW, c->matmul_type);
    add_linear(w, &o, &seed, NM("blk.%d.attn_output.weight"), QW, E, c->matmul_type);
    add_f32(w, &o, &seed, NM("blk.%d.ffn_norm.weight"), 1, e1, 0.2f, 1.0f);
    add_linear(w, &o, &seed, NM("blk.%d.ffn_gate.weight"), E, F, c->matmul_type);
    add_linear(w, &o, &seed, NM("blk.%d.ffn_up.weight"), E, F, c->matmul_type);
    add_linear(w, &o, &seed, NM("blk.%d.ffn_down.weight"), F, E, c->matmul_type);
#undef NM
  }
  add_f32(w, &o, &seed, "output_norm.weight", 1, e1, 0.2f, 1.0f);
  if (!c->tied) add_linear(w, &o, &seed, "output.weight", E, V, c->matmul_type);
  return finish(w, &o, buf, size);
}
