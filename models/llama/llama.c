/* models/llama/llama.c — hyper-parameters, tokenizer and graph of a llama LLM.
 *
 * One graph serves prefill and decode: every token-dimension tensor has
 * dynamic rows (capacity = batch), so a step of n <= batch tokens runs the
 * same nodes with ne[1] = n (GEMM takes its GEMV path at n = 1). */
#include "models/llama/llama.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "runtime/error.h"
#include "runtime/graph.h"
#include "runtime/tokenizer.h"
#include "runtime/util.h"

#define F32_ONLY (1u << SPR_DTYPE_F32)
#define MATMUL_TYPES                                                                                  \
  ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16) | (1u << SPR_DTYPE_Q8_0) | (1u << SPR_DTYPE_Q4_0) | \
   (1u << SPR_DTYPE_Q4_K) | (1u << SPR_DTYPE_Q6_K))

static enum spr_status opt_u32(const struct spr_gguf *g, const char *key, uint32_t def, uint32_t lo, uint32_t hi,
                               uint32_t *out, struct spr_error *err) {
  const enum spr_status s = spr_gguf_get_u32_or(g, key, def, out);
  SPR_CHECK(s == SPR_STATUS_OK, s, "metadata key %s has the wrong type", key);
  SPR_CHECK(*out >= lo && *out <= hi, SPR_STATUS_BAD_METADATA, "%s = %u is out of range [%u, %u]", key, *out, lo,
            hi);
  return SPR_STATUS_OK;
}

static enum spr_status load_tokenizer(struct spr_model *m, struct spr_error *err) {
  struct spr_llama_hparams *h = &m->hp.llama;
  struct spr_gguf_kv kv;
  if (spr_gguf_find_kv(&m->gguf, "tokenizer.ggml.model", &kv) == SPR_STATUS_NOT_FOUND) return SPR_STATUS_OK;
  /* The tables follow the struct, at the alignment they need (the struct is
   * 100 bytes on 32-bit targets). */
  const size_t head = spr_align_up(sizeof(struct spr_tokenizer), SPR_TOKENIZER_ALIGN);
  const size_t bytes = spr_tokenizer_bytes(&m->gguf) + head;
  void *mem = m->alloc.alloc(m->alloc.user, bytes, 64);
  SPR_CHECK(mem != NULL, SPR_STATUS_OUT_OF_MEMORY, "cannot allocate %zu bytes for the tokenizer", bytes);
  h->tok_mem = mem;
  h->tok = mem;
  SPR_TRY(spr_tokenizer_init(h->tok, (uint8_t *)mem + head, bytes - head, &m->gguf, err));
  SPR_CHECK(spr_tokenizer_n_vocab(h->tok) == h->n_vocab, SPR_STATUS_BAD_SHAPE,
            "the tokenizer has %u tokens but token_embd has %u rows", spr_tokenizer_n_vocab(h->tok), h->n_vocab);
  return SPR_STATUS_OK;
}

static enum spr_status llama_load(struct spr_model *m, struct spr_error *err) {
  const struct spr_gguf *g = &m->gguf;
  struct spr_llama_hparams *h = &m->hp.llama;
  memset(h, 0, sizeof *h);
  SPR_TRY(spr_model_get_u32(g, "llama.context_length", 1, 1u << 24, &h->ctx_train, err));
  SPR_TRY(spr_model_get_u32(g, "llama.embedding_length", 1, 1u << 16, &h->n_embd, err));
  SPR_TRY(spr_model_get_u32(g, "llama.block_count", 1, 1024, &h->n_layer, err));
  SPR_TRY(spr_model_get_u32(g, "llama.feed_forward_length", 1, 1u << 20, &h->n_ff, err));
  SPR_TRY(spr_model_get_u32(g, "llama.attention.head_count", 1, 1024, &h->n_head, err));
  SPR_TRY(opt_u32(g, "llama.attention.head_count_kv", h->n_head, 1, h->n_head, &h->n_head_kv, err));
  SPR_CHECK(h->n_embd % h->n_head == 0, SPR_STATUS_BAD_METADATA, "embedding_length %u is not a multiple of %u heads",
            h->n_embd, h->n_head);
  SPR_CHECK(h->n_head % h->n_head_kv == 0, SPR_STATUS_BAD_METADATA, "%u heads cannot share %u kv heads", h->n_head,
            h->n_head_kv);
  h->head_dim = h->n_embd / h->n_head;
  SPR_CHECK(h->head_dim <= 1024, SPR_STATUS_BAD_METADATA, "head dim %u is too large", h->head_dim);
  SPR_TRY(opt_u32(g, "llama.rope.dimension_count", h->head_dim, 2, h->head_dim, &h->n_rot, err));
  SPR_CHECK(h->n_rot % 2 == 0, SPR_STATUS_BAD_METADATA, "rope.dimension_count %u is odd", h->n_rot);

  enum spr_status s = spr_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &h->eps);
  SPR_CHECK(s != SPR_STATUS_NOT_FOUND, SPR_STATUS_MISSING_KEY, "llama.attention.layer_norm_rms_epsilon is missing");
  SPR_CHECK(s == SPR_STATUS_OK && isfinite(h->eps) && h->eps > 0 && h->eps < 1, SPR_STATUS_BAD_METADATA,
            "llama.attention.layer_norm_rms_epsilon must be a number in (0, 1)");
  SPR_TRY(spr_gguf_get_f32_or(g, "llama.rope.freq_base", 10000.0f, &h->freq_base));
  SPR_CHECK(isfinite(h->freq_base) && h->freq_base > 1, SPR_STATUS_BAD_METADATA, "rope.freq_base must be > 1");
  h->freq_scale = 1.0f;
  struct spr_gguf_str scaling;
  if (spr_gguf_get_str(g, "llama.rope.scaling.type", &scaling) == SPR_STATUS_OK &&
      !spr_gguf_str_eq(scaling, "none")) {
    SPR_CHECK(spr_gguf_str_eq(scaling, "linear"), SPR_STATUS_UNSUPPORTED,
              "rope scaling '%.*s' is not supported (none, linear)", (int)scaling.len, scaling.ptr);
    float factor = 1.0f;
    SPR_TRY(spr_gguf_get_f32_or(g, "llama.rope.scaling.factor", 1.0f, &factor));
    SPR_CHECK(isfinite(factor) && factor >= 1, SPR_STATUS_BAD_METADATA, "rope.scaling.factor must be >= 1");
    h->freq_scale = 1.0f / factor;
  }
  uint32_t experts = 0;
  SPR_TRY(opt_u32(g, "llama.expert_count", 0, 0, 1u << 16, &experts, err));
  SPR_CHECK(experts == 0, SPR_STATUS_UNSUPPORTED, "mixture-of-experts models (%u experts) are not supported", experts);

  struct spr_gguf_tensor te;
  SPR_CHECK(spr_gguf_find_tensor(g, "token_embd.weight", &te) == SPR_STATUS_OK, SPR_STATUS_MISSING_TENSOR,
            "tensor token_embd.weight is missing from the model");
  SPR_CHECK(te.n_dims == 2 && te.ne[0] == (int64_t)h->n_embd && te.ne[1] <= (1 << 24), SPR_STATUS_BAD_SHAPE,
            "token_embd.weight must be {%u, n_vocab}", h->n_embd);
  h->n_vocab = (uint32_t)te.ne[1];
  struct spr_gguf_tensor out;
  h->tied_output = spr_gguf_find_tensor(g, "output.weight", &out) == SPR_STATUS_NOT_FOUND;
  return load_tokenizer(m, err);
}

static void llama_unload(struct spr_model *m) {
  struct spr_llama_hparams *h = &m->hp.llama;
  if (h->tok_mem != NULL && m->alloc.release != NULL) m->alloc.release(m->alloc.user, h->tok_mem);
  h->tok_mem = NULL;
  h->tok = NULL;
}

static int32_t w(struct spr_graph *g, uint32_t types, const char *fmt, int layer, int64_t ne0, int64_t ne1) {
  char name[SPR_GGUF_MAX_NAME + 1];
  snprintf(name, sizeof name, fmt, layer);
  const int64_t ne[2] = {ne0, ne1};
  return spr_g_weight(g, name, types, ne1 > 1 ? 2 : 1, ne);
}

/* The KV geometry a configuration implies (shared with the LLM layer). */
static void kv_geometry(const struct spr_config *cfg, uint32_t ctx, uint32_t batch, struct spr_kv_params *kv,
                        uint32_t *capacity) {
  memset(kv, 0, sizeof *kv);
  if (cfg->window > 0) {
    kv->window = (uint32_t)cfg->window;
    kv->sinks = (uint32_t)cfg->sinks;
    kv->ring = kv->window + batch - 1;
    *capacity = kv->sinks + kv->ring;
  } else {
    *capacity = ctx;
  }
}

static enum spr_status llama_build(const void *model, const struct spr_config *cfg, struct spr_graph *g) {
  const struct spr_model *m = model;
  const struct spr_llama_hparams *h = &m->hp.llama;
  uint32_t ctx = cfg->ctx > 0 ? (uint32_t)cfg->ctx : (h->ctx_train < 2048 ? h->ctx_train : 2048);
  if (cfg->ctx > 0 && (uint32_t)cfg->ctx > h->ctx_train) {
    spr_graph_fail(g, SPR_STATUS_UNSUPPORTED, "ctx %d exceeds the model's context length %u", cfg->ctx, h->ctx_train);
    return g->status;
  }
  if (cfg->window < 0 || cfg->sinks < 0 || (cfg->window == 0 && cfg->sinks > 0)) {
    spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "sinks need a window (--window W --sinks S, W >= 1)");
    return g->status;
  }
  const uint32_t batch = cfg->batch > 0 ? (uint32_t)cfg->batch : (ctx < 64 ? ctx : 64);
  if (batch > ctx && cfg->window == 0) {
    spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "batch %u exceeds the context %u", batch, ctx);
    return g->status;
  }
  struct spr_kv_params kv;
  uint32_t capacity;
  kv_geometry(cfg, ctx, batch, &kv, &capacity);
  const int64_t E = h->n_embd, V = h->n_vocab, F = h->n_ff, hd = h->head_dim;
  const int64_t QW = (int64_t)h->n_head * hd, KW = (int64_t)h->n_head_kv * hd, B = batch;
  const enum spr_dtype kv_type = cfg->kv_f32 ? SPR_DTYPE_F32 : SPR_DTYPE_F16;

  const int64_t ids_ne[2] = {1, B};
  const int32_t ids = spr_g_input(g, SPR_DTYPE_I32, 2, ids_ne, "tokens");
  const int32_t tok_embd = w(g, MATMUL_TYPES, "token_embd.weight", 0, E, V);
  const int32_t gr_srcs[2] = {tok_embd, ids};
  const int64_t x_ne[2] = {E, B};
  int32_t x = spr_g_node(g, SPR_OP_GET_ROWS, NULL, gr_srcs, 2,
                         spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, x_ne, "embed", -1));

  const union spr_op_params rope = {.rope = {.n_heads = (uint16_t)h->n_head,
                                             .head_dim = (uint16_t)hd,
                                             .n_rot = (uint16_t)h->n_rot,
                                             .freq_base = h->freq_base,
                                             .freq_scale = h->freq_scale}};
  union spr_op_params rope_k = rope;
  rope_k.rope.n_heads = (uint16_t)h->n_head_kv;
  const union spr_op_params kvp = {.kv = kv};
  const struct spr_attn_params ap = {.n_heads = (uint16_t)h->n_head,
                                     .n_kv_heads = (uint16_t)h->n_head_kv,
                                     .head_dim = (uint16_t)hd,
                                     .causal = 1,
                                     .scale = 1.0f / sqrtf((float)hd),
                                     .kv_cache = 1,
                                     .window = kv.window,
                                     .sinks = kv.sinks,
                                     .ring = kv.ring};
  const int64_t cache_ne[2] = {KW, capacity};
  for (int l = 0; l < (int)h->n_layer; l++) {
    int32_t t = spr_g_rmsnorm(g, x, w(g, F32_ONLY, "blk.%d.attn_norm.weight", l, E, 1), h->eps, "attn_norm", l);
    int32_t q = spr_g_gemm(g, t, w(g, MATMUL_TYPES, "blk.%d.attn_q.weight", l, E, QW), -1, SPR_ACT_NONE, -1, "q", l);
    int32_t k = spr_g_gemm(g, t, w(g, MATMUL_TYPES, "blk.%d.attn_k.weight", l, E, KW), -1, SPR_ACT_NONE, -1, "k", l);
    const int32_t v =
        spr_g_gemm(g, t, w(g, MATMUL_TYPES, "blk.%d.attn_v.weight", l, E, KW), -1, SPR_ACT_NONE, -1, "v", l);
    const int64_t q_ne[2] = {QW, B}, k_ne[2] = {KW, B};
    q = spr_g_node(g, SPR_OP_ROPE, &rope, &q, 1, spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, q_ne, "q_rope", l));
    k = spr_g_node(g, SPR_OP_ROPE, &rope_k, &k, 1,
                   spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, k_ne, "k_rope", l));
    const int32_t kc = spr_g_tensor(g, SPR_ROLE_STATE, kv_type, 2, cache_ne, "k_cache", l);
    const int32_t vc = spr_g_tensor(g, SPR_ROLE_STATE, kv_type, 2, cache_ne, "v_cache", l);
    spr_g_node(g, SPR_OP_KV_STORE, &kvp, &k, 1, kc);
    spr_g_node(g, SPR_OP_KV_STORE, &kvp, &v, 1, vc);
    t = spr_g_attention(g, q, kc, vc, &ap, "attn", l);
    x = spr_g_gemm(g, t, w(g, MATMUL_TYPES, "blk.%d.attn_output.weight", l, QW, E), -1, SPR_ACT_NONE, x, "attn_res",
                   l);
    t = spr_g_rmsnorm(g, x, w(g, F32_ONLY, "blk.%d.ffn_norm.weight", l, E, 1), h->eps, "ffn_norm", l);
    const int32_t gate =
        spr_g_gemm(g, t, w(g, MATMUL_TYPES, "blk.%d.ffn_gate.weight", l, E, F), -1, SPR_ACT_SILU, -1, "ffn_gate", l);
    const int32_t up =
        spr_g_gemm(g, t, w(g, MATMUL_TYPES, "blk.%d.ffn_up.weight", l, E, F), -1, SPR_ACT_NONE, -1, "ffn_up", l);
    t = spr_g_binary(g, SPR_OP_MUL, gate, up, "ffn_act", l);
    x = spr_g_gemm(g, t, w(g, MATMUL_TYPES, "blk.%d.ffn_down.weight", l, F, E), -1, SPR_ACT_NONE, x, "ffn_res", l);
  }
  x = spr_g_rmsnorm(g, x, w(g, F32_ONLY, "output_norm.weight", 0, E, 1), h->eps, "output_norm", -1);
  const int32_t out_w = h->tied_output ? tok_embd : w(g, MATMUL_TYPES, "output.weight", 0, E, V);
  int32_t logits;
  if (cfg->logits_all) {
    logits = spr_g_gemm(g, x, out_w, -1, SPR_ACT_NONE, -1, "logits", -1);
  } else {
    const int64_t one_ne[2] = {E, 1};
    const int32_t last = spr_g_node(g, SPR_OP_LAST_ROW, NULL, &x, 1,
                                    spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, one_ne, "last", -1));
    logits = spr_g_gemm(g, last, out_w, -1, SPR_ACT_NONE, -1, "logits", -1);
  }
  spr_g_output(g, logits);
  /* sampler scratch: probabilities and candidate ids, n_vocab each */
  const int64_t samp_ne[1] = {2 * V};
  g->aux[SPR_LLAMA_AUX_SAMPLER] = spr_g_tensor(g, SPR_ROLE_STATE, SPR_DTYPE_F32, 1, samp_ne, "sampler", -1);
  g->aux[SPR_LLAMA_AUX_BATCH] = (int32_t)batch;
  if (g->status != SPR_STATUS_OK) return g->status;

  /* Every token-dimension activation follows the step's token count. */
  for (int32_t i = 0; i < g->n_tensors; i++) {
    const struct spr_tensor *t = spr_graph_tensor(g, i);
    const bool act = t->role == SPR_ROLE_ACT || t->role == SPR_ROLE_INPUT || t->role == SPR_ROLE_OUTPUT;
    if (act && t->ne[1] == B && t->ne[2] == 1 && B > 1) spr_g_dyn_rows(g, i);
  }
  return g->status;
}

const struct spr_arch spr_arch_llama = {"llama", llama_load, llama_build, NULL, llama_unload};
