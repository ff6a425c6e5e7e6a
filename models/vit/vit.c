/* models/vit/vit.c — hyper-parameters and graph of a ViT/DeiT classifier. */
#include "models/vit/vit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "runtime/error.h"
#include "runtime/graph.h"

#define F32_ONLY ((1u << SPR_DTYPE_F32))
#define LINEAR_TYPES ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16) | (1u << SPR_DTYPE_Q8_0) | (1u << SPR_DTYPE_Q4_0))
#define CONV_TYPES ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16))

static enum spr_status get_channel_array(const struct spr_gguf *g, const char *key, uint32_t c, float def,
                                         float *out, struct spr_error *err) {
  for (uint32_t i = 0; i < c; i++) out[i] = def;
  struct spr_gguf_kv kv;
  const enum spr_status s = spr_gguf_find_kv(g, key, &kv);
  if (s == SPR_STATUS_NOT_FOUND) return SPR_STATUS_OK;
  SPR_TRY(s);
  SPR_CHECK(kv.type == SPR_GGUF_ARRAY && kv.arr_n == c, SPR_STATUS_BAD_METADATA,
            "%s must be an array of %u numbers", key, c);
  for (uint32_t i = 0; i < c; i++) {
    double v;
    SPR_CHECK(spr_gguf_arr_get_f64(&kv, i, &v) == SPR_STATUS_OK && isfinite(v), SPR_STATUS_BAD_METADATA,
              "%s[%u] is not a finite number", key, i);
    out[i] = (float)v;
  }
  return SPR_STATUS_OK;
}

static enum spr_status vit_load(struct spr_model *m, struct spr_error *err) {
  const struct spr_gguf *g = &m->gguf;
  struct spr_vit_hparams *h = &m->hp.vit;
  memset(h, 0, sizeof *h);
  SPR_TRY(spr_model_get_u32(g, "vit.image_size", 1, 8192, &h->image_size, err));
  SPR_TRY(spr_model_get_u32(g, "vit.num_channels", 1, SPR_VIT_MAX_CHANNELS, &h->channels, err));
  SPR_TRY(spr_model_get_u32(g, "vit.patch_size", 1, 1024, &h->patch, err));
  SPR_TRY(spr_model_get_u32(g, "vit.embedding_length", 1, 65536, &h->dim, err));
  SPR_TRY(spr_model_get_u32(g, "vit.block_count", 1, 1024, &h->depth, err));
  SPR_TRY(spr_model_get_u32(g, "vit.attention.head_count", 1, 1024, &h->heads, err));
  SPR_TRY(spr_model_get_u32(g, "vit.feed_forward_length", 1, 1 << 20, &h->ffn, err));
  SPR_TRY(spr_model_get_u32(g, "vit.num_classes", 1, 1 << 20, &h->classes, err));
  SPR_CHECK(h->dim % h->heads == 0, SPR_STATUS_BAD_METADATA, "embedding_length %u is not a multiple of %u heads",
            h->dim, h->heads);
  SPR_CHECK(h->dim / h->heads <= 1024, SPR_STATUS_BAD_METADATA, "head dim %u is too large", h->dim / h->heads);
  SPR_CHECK(h->image_size % h->patch == 0, SPR_STATUS_BAD_METADATA, "image_size %u is not a multiple of patch %u",
            h->image_size, h->patch);
  struct spr_gguf_str pool;
  enum spr_status s = spr_gguf_get_str(g, "vit.pooling", &pool);
  SPR_CHECK(s != SPR_STATUS_NOT_FOUND, SPR_STATUS_MISSING_KEY, "metadata key vit.pooling is missing");
  SPR_TRY(s);
  if (spr_gguf_str_eq(pool, "mean"))
    h->mean_pool = true;
  else
    SPR_CHECK(spr_gguf_str_eq(pool, "cls"), SPR_STATUS_BAD_METADATA, "vit.pooling must be \"cls\" or \"mean\"");
  SPR_TRY(spr_gguf_get_f32_or(g, "vit.attention.layer_norm_epsilon", 1e-6f, &h->eps));
  SPR_CHECK(isfinite(h->eps) && h->eps > 0 && h->eps < 1, SPR_STATUS_BAD_METADATA, "layer norm epsilon out of range");
  SPR_TRY(spr_gguf_get_f32_or(g, "vit.attention.scale", 1.0f / sqrtf((float)(h->dim / h->heads)), &h->scale));
  SPR_CHECK(isfinite(h->scale) && h->scale > 0, SPR_STATUS_BAD_METADATA, "attention scale must be positive");
  s = spr_gguf_get_bool(g, "vit.distilled", &h->distilled);
  SPR_CHECK(s == SPR_STATUS_OK || s == SPR_STATUS_NOT_FOUND, s, "vit.distilled must be a bool");
  SPR_CHECK(!(h->distilled && h->mean_pool), SPR_STATUS_BAD_METADATA, "distilled models pool with cls tokens");
  SPR_TRY(get_channel_array(g, "vit.image_mean", h->channels, 0.0f, h->mean, err));
  SPR_TRY(get_channel_array(g, "vit.image_std", h->channels, 1.0f, h->std, err));
  for (uint32_t i = 0; i < h->channels; i++)
    SPR_CHECK(h->std[i] > 0, SPR_STATUS_BAD_METADATA, "vit.image_std[%u] must be positive", i);
  return SPR_STATUS_OK;
}

static int32_t w2(struct spr_graph *g, uint32_t types, const char *fmt, int layer, int64_t ne0, int64_t ne1,
                  bool optional) {
  char name[SPR_GGUF_MAX_NAME + 1];
  snprintf(name, sizeof name, fmt, layer);
  const int64_t ne[2] = {ne0, ne1};
  const int nd = ne1 > 1 ? 2 : 1;
  return optional ? spr_g_weight_opt(g, name, types, nd, ne) : spr_g_weight(g, name, types, nd, ne);
}

static enum spr_status vit_build(const void *model, const struct spr_config *cfg, struct spr_graph *g) {
  const struct spr_model *m = model;
  const struct spr_vit_hparams *h = &m->hp.vit;
  if (cfg->image_size != 0 && (uint32_t)cfg->image_size != h->image_size) {
    spr_graph_fail(g, SPR_STATUS_UNSUPPORTED, "this ViT takes %ux%u images (position embeddings are not resized)",
                   h->image_size, h->image_size);
    return g->status;
  }
  const int64_t D = h->dim, S = h->image_size, P = h->patch, C = h->channels, F = h->ffn;
  const int64_t grid = S / P, n_patch = grid * grid, n_prefix = h->distilled ? 2 : 1, T = n_patch + n_prefix;

  const int64_t in_ne[3] = {C, S, S};
  const int32_t img = spr_g_input(g, SPR_DTYPE_F32, 3, in_ne, "image");
  const int64_t pw_ne[4] = {C, P, P, D};
  const int32_t pw = spr_g_weight(g, "patch_embd.weight", CONV_TYPES, 4, pw_ne);
  const int32_t pb = w2(g, F32_ONLY, "patch_embd.bias", 0, D, 1, false);
  const struct spr_conv_params cp = {.kh = (uint16_t)P, .kw = (uint16_t)P, .sh = (uint16_t)P, .sw = (uint16_t)P};
  int32_t x = spr_g_conv2d(g, img, pw, pb, &cp, "patch_embd", -1);
  const int64_t tok_ne[2] = {D, n_patch};
  x = spr_g_view(g, x, 2, tok_ne, 0, "patch_tokens", -1);
  if (h->distilled) x = spr_g_concat_rows(g, w2(g, F32_ONLY, "dist_token", 0, D, 1, false), x, "with_dist", -1);
  x = spr_g_concat_rows(g, w2(g, F32_ONLY, "cls_token", 0, D, 1, false), x, "with_cls", -1);
  x = spr_g_binary(g, SPR_OP_ADD, x, w2(g, F32_ONLY, "pos_embd", 0, D, T, false), "embed", -1);

  const struct spr_attn_params ap = {.n_heads = (uint16_t)h->heads,
                                     .n_kv_heads = (uint16_t)h->heads,
                                     .head_dim = (uint16_t)(h->dim / h->heads),
                                     .causal = 0,
                                     .scale = h->scale,
                                     .q_col = 0,
                                     .k_col = (uint32_t)D,
                                     .v_col = (uint32_t)(2 * D)};
  for (int l = 0; l < (int)h->depth; l++) {
    int32_t t = spr_g_layernorm(g, x, w2(g, F32_ONLY, "blk.%d.ln1.weight", l, D, 1, false),
                                w2(g, F32_ONLY, "blk.%d.ln1.bias", l, D, 1, false), h->eps, "ln1", l);
    t = spr_g_gemm(g, t, w2(g, LINEAR_TYPES, "blk.%d.attn_qkv.weight", l, D, 3 * D, false),
                   w2(g, F32_ONLY, "blk.%d.attn_qkv.bias", l, 3 * D, 1, true), SPR_ACT_NONE, -1, "qkv", l);
    t = spr_g_attention(g, t, t, t, &ap, "attn", l);
    x = spr_g_gemm(g, t, w2(g, LINEAR_TYPES, "blk.%d.attn_out.weight", l, D, D, false),
                   w2(g, F32_ONLY, "blk.%d.attn_out.bias", l, D, 1, true), SPR_ACT_NONE, x, "attn_res", l);
    t = spr_g_layernorm(g, x, w2(g, F32_ONLY, "blk.%d.ln2.weight", l, D, 1, false),
                        w2(g, F32_ONLY, "blk.%d.ln2.bias", l, D, 1, false), h->eps, "ln2", l);
    t = spr_g_gemm(g, t, w2(g, LINEAR_TYPES, "blk.%d.ffn_up.weight", l, D, F, false),
                   w2(g, F32_ONLY, "blk.%d.ffn_up.bias", l, F, 1, true), SPR_ACT_GELU, -1, "ffn_up", l);
    x = spr_g_gemm(g, t, w2(g, LINEAR_TYPES, "blk.%d.ffn_down.weight", l, F, D, false),
                   w2(g, F32_ONLY, "blk.%d.ffn_down.bias", l, D, 1, true), SPR_ACT_NONE, x, "ffn_res", l);
  }
  const int32_t nw = w2(g, F32_ONLY, "norm.weight", 0, D, 1, false);
  const int32_t nb = w2(g, F32_ONLY, "norm.bias", 0, D, 1, false);
  const int64_t K = h->classes;
  int32_t logits;
  if (h->mean_pool) {
    int32_t p = spr_g_view_rows(g, x, n_prefix, n_patch, "patch_out", -1);
    p = spr_g_mean_rows(g, p, "pooled", -1);
    p = spr_g_layernorm(g, p, nw, nb, h->eps, "fc_norm", -1);
    logits = spr_g_gemm(g, p, w2(g, LINEAR_TYPES, "head.weight", 0, D, K, false),
                        w2(g, F32_ONLY, "head.bias", 0, K, 1, true), SPR_ACT_NONE, -1, "logits", -1);
  } else {
    /* LayerNorm is per token, so normalizing only the tokens the heads read
     * is exact and skips the other T-1 rows. */
    const int32_t cls = spr_g_layernorm(g, spr_g_view_rows(g, x, 0, n_prefix, "cls_out", -1), nw, nb, h->eps,
                                        "norm", -1);
    logits = spr_g_gemm(g, spr_g_view_rows(g, cls, 0, 1, "cls", -1),
                        w2(g, LINEAR_TYPES, "head.weight", 0, D, K, false),
                        w2(g, F32_ONLY, "head.bias", 0, K, 1, true), SPR_ACT_NONE, -1,
                        h->distilled ? "logits_cls" : "logits", -1);
    if (h->distilled) {
      /* DeiT inference: average of the class and distillation heads. */
      const int32_t ld = spr_g_gemm(g, spr_g_view_rows(g, cls, 1, 1, "dist", -1),
                                    w2(g, LINEAR_TYPES, "head_dist.weight", 0, D, K, false),
                                    w2(g, F32_ONLY, "head_dist.bias", 0, K, 1, true), SPR_ACT_NONE, -1,
                                    "logits_dist", -1);
      logits = spr_g_binary(g, SPR_OP_ADD, logits, ld, "logits_sum", -1);
      logits = spr_g_scale(g, logits, 0.5f, "logits", -1);
    }
  }
  spr_g_output(g, logits);
  return g->status;
}

static void vit_vision(const struct spr_model *m, struct spr_vision_info *out) {
  const struct spr_vit_hparams *h = &m->hp.vit;
  memset(out, 0, sizeof *out);
  out->image_size = h->image_size;
  out->channels = h->channels;
  out->n_classes = h->classes;
  for (uint32_t i = 0; i < h->channels; i++) {
    out->mean[i] = h->mean[i];
    out->std[i] = h->std[i];
  }
}

const struct spr_arch spr_arch_vit = {"vit", vit_load, vit_build, vit_vision, NULL};
