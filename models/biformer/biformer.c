/* models/biformer/biformer.c — hyper-parameters and graph of a BiFormer classifier. */
#include "models/biformer/biformer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "runtime/error.h"
#include "runtime/graph.h"

#define F32_ONLY ((1u << SPR_DTYPE_F32))
#define LINEAR_TYPES ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16) | (1u << SPR_DTYPE_Q8_0) | (1u << SPR_DTYPE_Q4_0))
#define CONV_TYPES ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16))

/* One u32 (or i32) entry per stage. */
static enum spr_status stage_array(const struct spr_gguf *g, const char *key, uint32_t n_stages, int64_t lo, int64_t hi,
                                   uint32_t *out_u, int32_t *out_i, struct spr_error *err) {
  int32_t v[SPR_BIFORMER_MAX_STAGES];
  uint32_t n;
  SPR_TRY(spr_model_get_int_array(g, key, SPR_BIFORMER_MAX_STAGES, lo, hi, v, &n, err));
  SPR_CHECK(n == n_stages, SPR_STATUS_BAD_METADATA, "%s has %u entries for %u stages", key, n, n_stages);
  for (uint32_t i = 0; i < n; i++) {
    if (out_u != NULL) out_u[i] = (uint32_t)v[i];
    if (out_i != NULL) out_i[i] = v[i];
  }
  return SPR_STATUS_OK;
}

static enum spr_status biformer_load(struct spr_model *m, struct spr_error *err) {
  const struct spr_gguf *g = &m->gguf;
  struct spr_biformer_hparams *h = &m->hp.biformer;
  memset(h, 0, sizeof *h);
  int32_t v[SPR_BIFORMER_MAX_STAGES];
  SPR_TRY(spr_model_get_u32(g, "biformer.image_size", 1, 8192, &h->image_size, err));
  SPR_TRY(spr_model_get_u32(g, "biformer.num_channels", 1, SPR_BIFORMER_MAX_CHANNELS, &h->channels, err));
  SPR_TRY(spr_model_get_u32(g, "biformer.block_count", 1, 4096, &h->n_blocks, err));
  SPR_TRY(spr_model_get_u32(g, "biformer.num_classes", 1, 1 << 20, &h->classes, err));
  SPR_TRY(spr_model_get_u32(g, "biformer.pos_kernel", 1, 31, &h->pos_kernel, err));
  SPR_TRY(spr_model_get_u32(g, "biformer.lce_kernel", 1, 31, &h->lce_kernel, err));
  SPR_CHECK(h->pos_kernel % 2 == 1 && h->lce_kernel % 2 == 1, SPR_STATUS_BAD_METADATA,
            "biformer.pos_kernel and lce_kernel must be odd (%u, %u)", h->pos_kernel, h->lce_kernel);
  SPR_TRY(spr_model_get_int_array(g, "biformer.depths", SPR_BIFORMER_MAX_STAGES, 1, 4096, v, &h->n_stages, err));
  uint32_t total = 0;
  for (uint32_t i = 0; i < h->n_stages; i++) {
    h->depths[i] = (uint32_t)v[i];
    total += h->depths[i];
  }
  SPR_CHECK(total == h->n_blocks, SPR_STATUS_BAD_METADATA, "biformer.depths add up to %u blocks, block_count is %u",
            total, h->n_blocks);
  const uint32_t S = h->n_stages;
  SPR_TRY(stage_array(g, "biformer.embedding_length", S, 1, 65536, h->dims, NULL, err));
  SPR_CHECK(h->dims[0] % 2 == 0, SPR_STATUS_BAD_METADATA, "biformer.embedding_length[0] = %u must be even", h->dims[0]);
  SPR_TRY(stage_array(g, "biformer.attention.head_count", S, 1, 65535, h->heads, NULL, err));
  SPR_TRY(stage_array(g, "biformer.qk_dim", S, 1, 65536, h->qk_dims, NULL, err));
  SPR_TRY(stage_array(g, "biformer.n_win", S, 1, 1024, h->n_win, NULL, err));
  SPR_TRY(stage_array(g, "biformer.topk", S, -1000000, 1000000, NULL, h->topk, err));
  SPR_TRY(stage_array(g, "biformer.feed_forward_length", S, 1, 1 << 20, h->ffn, NULL, err));
  for (uint32_t i = 0; i < S; i++) {
    if (h->topk[i] > 0) {
      SPR_CHECK((uint64_t)h->topk[i] <= (uint64_t)h->n_win[i] * h->n_win[i] && h->topk[i] <= 65535,
                SPR_STATUS_BAD_METADATA, "stage %u: topk %d exceeds the %u x %u regions", i, h->topk[i], h->n_win[i],
                h->n_win[i]);
      SPR_CHECK(h->qk_dims[i] % h->heads[i] == 0 && h->dims[i] % h->heads[i] == 0, SPR_STATUS_BAD_METADATA,
                "stage %u: qk_dim %u and %u channels must be multiples of %u heads", i, h->qk_dims[i], h->dims[i],
                h->heads[i]);
    } else {
      SPR_CHECK(h->dims[i] % h->heads[i] == 0 && h->dims[i] / h->heads[i] <= 65535, SPR_STATUS_BAD_METADATA,
                "stage %u: %u channels are not a multiple of %u heads", i, h->dims[i], h->heads[i]);
    }
  }
  SPR_TRY(spr_gguf_get_f32_or(g, "biformer.attention.layer_norm_epsilon", 1e-6f, &h->eps));
  SPR_CHECK(isfinite(h->eps) && h->eps > 0 && h->eps < 1, SPR_STATUS_BAD_METADATA, "layer norm epsilon out of range");
  SPR_TRY(spr_model_get_f32_array_or(g, "biformer.image_mean", h->channels, 0.0f, h->mean, err));
  SPR_TRY(spr_model_get_f32_array_or(g, "biformer.image_std", h->channels, 1.0f, h->std, err));
  for (uint32_t i = 0; i < h->channels; i++)
    SPR_CHECK(h->std[i] > 0, SPR_STATUS_BAD_METADATA, "biformer.image_std[%u] must be positive", i);
  return SPR_STATUS_OK;
}

/* A weight named fmt % layer of shape {ne0, ne1, ne2, ne3} (trailing 1s dropped). */
static int32_t wt(struct spr_graph *g, uint32_t types, const char *fmt, int layer, int64_t ne0, int64_t ne1,
                  int64_t ne2, int64_t ne3, bool optional) {
  char name[SPR_GGUF_MAX_NAME + 1];
  snprintf(name, sizeof name, fmt, layer);
  const int64_t ne[4] = {ne0, ne1, ne2, ne3};
  const int nd = ne3 > 1 ? 4 : ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1;
  return optional ? spr_g_weight_opt(g, name, types, nd, ne) : spr_g_weight(g, name, types, nd, ne);
}

static const char *const k_ds[SPR_BIFORMER_MAX_STAGES] = {"ds.0", "ds.1", "ds.2", "ds.3",
                                                          "ds.4", "ds.5", "ds.6", "ds.7"};

static int32_t conv_s2(struct spr_graph *g, int32_t x, int32_t w, int32_t b, const char *name) {
  const struct spr_conv_params cp = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1};
  return spr_g_conv2d(g, x, w, b, &cp, name, -1);
}

/* Depthwise k x k, stride 1, "same" padding, with bias. */
static int32_t dwconv_same(struct spr_graph *g, int32_t x, int32_t w, int32_t b, uint32_t k, const char *name,
                           int layer) {
  const struct spr_conv_params cp = {
      .kh = (uint16_t)k, .kw = (uint16_t)k, .sh = 1, .sw = 1, .ph = (uint16_t)(k / 2), .pw = (uint16_t)(k / 2)};
  return spr_g_dwconv2d(g, x, w, b, &cp, name, layer);
}

/* Bi-level routing attention on t {C, W, H}; returns wo(attn + LCE) cropped to W x H. */
static int32_t routed_attn(struct spr_graph *g, const struct spr_biformer_hparams *h, uint32_t st, int blk, int32_t t,
                           int32_t x) {
  if (g->status != SPR_STATUS_OK) return -1; /* t may be -1: nothing to read */
  const struct spr_tensor *tt = spr_graph_tensor(g, t);
  const int64_t C = h->dims[st], q = h->qk_dims[st], S = h->n_win[st], W = tt->ne[1], H = tt->ne[2];
  const int64_t Wp = (W + S - 1) / S * S, Hp = (H + S - 1) / S * S;
  const bool padded = Wp != W || Hp != H;
  if (Wp > 65535 || Hp > 65535) return spr_graph_fail(g, SPR_STATUS_UNSUPPORTED, "block %d: map too large", blk);
  if (padded) t = spr_g_pad2d(g, t, Wp, Hp, "ln1_pad", blk);
  const int32_t qk =
      spr_g_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.attn_qk.weight", blk, C, 2 * q, 1, 1, false),
                 wt(g, F32_ONLY, "blk.%d.attn_qk.bias", blk, 2 * q, 1, 1, 1, true), SPR_ACT_NONE, -1, "qk", blk);
  const int32_t v =
      spr_g_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.attn_v.weight", blk, C, C, 1, 1, false),
                 wt(g, F32_ONLY, "blk.%d.attn_v.bias", blk, C, 1, 1, 1, true), SPR_ACT_NONE, -1, "v", blk);
  const struct spr_bra_params bp = {.n_heads = (uint16_t)h->heads[st],
                                    .n_win = (uint16_t)S,
                                    .topk = (uint16_t)h->topk[st],
                                    .h = (uint16_t)Hp,
                                    .w = (uint16_t)Wp,
                                    .qk_dim = (uint32_t)q,
                                    .v_dim = (uint32_t)C,
                                    .scale = 1.0f / sqrtf((float)q),
                                    .q_col = 0,
                                    .k_col = (uint32_t)q,
                                    .v_col = 0};
  int32_t a = spr_g_bra(g, qk, qk, v, &bp, "attn", blk);
  const int32_t lce =
      dwconv_same(g, v, wt(g, F32_ONLY, "blk.%d.attn_lce.weight", blk, C, h->lce_kernel, h->lce_kernel, 1, false),
                  wt(g, F32_ONLY, "blk.%d.attn_lce.bias", blk, C, 1, 1, 1, false), h->lce_kernel, "lce", blk);
  a = spr_g_binary(g, SPR_OP_ADD, a, lce, "attn_lce", blk);
  const int32_t wo = wt(g, LINEAR_TYPES, "blk.%d.attn_out.weight", blk, C, C, 1, 1, false);
  const int32_t bo = wt(g, F32_ONLY, "blk.%d.attn_out.bias", blk, C, 1, 1, 1, true);
  if (!padded) return spr_g_gemm(g, a, wo, bo, SPR_ACT_NONE, x, "attn_res", blk);
  a = spr_g_gemm(g, a, wo, bo, SPR_ACT_NONE, -1, "attn_out", blk);
  a = spr_g_pad2d(g, a, W, H, "attn_crop", blk);
  return spr_g_binary(g, SPR_OP_ADD, x, a, "attn_res", blk);
}

/* Global attention with LePE on t {C, W, H}: x + proj(MHSA(t) + dwconv(t)). */
static int32_t global_attn(struct spr_graph *g, const struct spr_biformer_hparams *h, uint32_t st, int blk, int32_t t,
                           int32_t x) {
  if (g->status != SPR_STATUS_OK) return -1; /* t may be -1: nothing to read */
  const struct spr_tensor *tt = spr_graph_tensor(g, t);
  const int64_t C = h->dims[st], heads = h->heads[st], W = tt->ne[1], H = tt->ne[2];
  const int32_t qkv =
      spr_g_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.attn_qkv.weight", blk, C, 3 * C, 1, 1, false),
                 wt(g, F32_ONLY, "blk.%d.attn_qkv.bias", blk, 3 * C, 1, 1, 1, true), SPR_ACT_NONE, -1, "qkv", blk);
  const int64_t rows_ne[2] = {3 * C, W * H}, map_ne[3] = {C, W, H};
  const int32_t rows = spr_g_view(g, qkv, 2, rows_ne, 0, "qkv_rows", blk);
  const struct spr_attn_params ap = {.n_heads = (uint16_t)heads,
                                     .n_kv_heads = (uint16_t)heads,
                                     .head_dim = (uint16_t)(C / heads),
                                     .causal = 0,
                                     .scale = 1.0f / sqrtf((float)(C / heads)),
                                     .q_col = 0,
                                     .k_col = (uint32_t)C,
                                     .v_col = (uint32_t)(2 * C)};
  int32_t a = spr_g_attention(g, rows, rows, rows, &ap, "attn", blk);
  a = spr_g_view(g, a, 3, map_ne, 0, "attn_map", blk);
  const int32_t lepe =
      dwconv_same(g, t, wt(g, F32_ONLY, "blk.%d.attn_lce.weight", blk, C, h->lce_kernel, h->lce_kernel, 1, false),
                  wt(g, F32_ONLY, "blk.%d.attn_lce.bias", blk, C, 1, 1, 1, false), h->lce_kernel, "lepe", blk);
  a = spr_g_binary(g, SPR_OP_ADD, a, lepe, "attn_lce", blk);
  return spr_g_gemm(g, a, wt(g, LINEAR_TYPES, "blk.%d.attn_out.weight", blk, C, C, 1, 1, false),
                    wt(g, F32_ONLY, "blk.%d.attn_out.bias", blk, C, 1, 1, 1, true), SPR_ACT_NONE, x, "attn_res", blk);
}

static enum spr_status biformer_build(const void *model, const struct spr_config *cfg, struct spr_graph *g) {
  const struct spr_model *m = model;
  const struct spr_biformer_hparams *h = &m->hp.biformer;
  const int64_t S = cfg->image_size != 0 ? cfg->image_size : (int64_t)h->image_size, Cin = h->channels;
  if (S < 1 || S > 8192) {
    spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "image size %lld is out of range [1, 8192]", (long long)S);
    return g->status;
  }
  const int64_t C0 = h->dims[0];
  const int64_t in_ne[3] = {Cin, S, S};
  int32_t x = spr_g_input(g, SPR_DTYPE_F32, 3, in_ne, "image");
  x = conv_s2(g, x, wt(g, CONV_TYPES, "stem.conv1.weight", 0, Cin, 3, 3, C0 / 2, false),
              wt(g, F32_ONLY, "stem.conv1.bias", 0, C0 / 2, 1, 1, 1, false), "stem.conv1");
  x = spr_g_unary(g, SPR_OP_GELU, x, "stem.gelu", -1);
  x = conv_s2(g, x, wt(g, CONV_TYPES, "stem.conv2.weight", 0, C0 / 2, 3, 3, C0, false),
              wt(g, F32_ONLY, "stem.conv2.bias", 0, C0, 1, 1, 1, false), "stem.conv2");
  int blk = 0;
  for (uint32_t st = 0; st < h->n_stages && g->status == SPR_STATUS_OK; st++) {
    const int64_t C = h->dims[st], F = h->ffn[st];
    if (st > 0)
      x = conv_s2(g, x, wt(g, CONV_TYPES, "ds.%d.weight", (int)st, h->dims[st - 1], 3, 3, C, false),
                  wt(g, F32_ONLY, "ds.%d.bias", (int)st, C, 1, 1, 1, false), k_ds[st]);
    for (uint32_t j = 0; j < h->depths[st] && g->status == SPR_STATUS_OK; j++, blk++) {
      const int32_t pos =
          dwconv_same(g, x, wt(g, F32_ONLY, "blk.%d.pos.weight", blk, C, h->pos_kernel, h->pos_kernel, 1, false),
                      wt(g, F32_ONLY, "blk.%d.pos.bias", blk, C, 1, 1, 1, false), h->pos_kernel, "pos_conv", blk);
      x = spr_g_binary(g, SPR_OP_ADD, x, pos, "pos", blk);
      int32_t t = spr_g_layernorm(g, x, wt(g, F32_ONLY, "blk.%d.ln1.weight", blk, C, 1, 1, 1, false),
                                  wt(g, F32_ONLY, "blk.%d.ln1.bias", blk, C, 1, 1, 1, false), h->eps, "ln1", blk);
      x = h->topk[st] > 0 ? routed_attn(g, h, st, blk, t, x) : global_attn(g, h, st, blk, t, x);
      t = spr_g_layernorm(g, x, wt(g, F32_ONLY, "blk.%d.ln2.weight", blk, C, 1, 1, 1, false),
                          wt(g, F32_ONLY, "blk.%d.ln2.bias", blk, C, 1, 1, 1, false), h->eps, "ln2", blk);
      t = spr_g_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.ffn_up.weight", blk, C, F, 1, 1, false),
                     wt(g, F32_ONLY, "blk.%d.ffn_up.bias", blk, F, 1, 1, 1, true), SPR_ACT_GELU, -1, "ffn_up", blk);
      x = spr_g_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.ffn_down.weight", blk, F, C, 1, 1, false),
                     wt(g, F32_ONLY, "blk.%d.ffn_down.bias", blk, C, 1, 1, 1, true), SPR_ACT_NONE, x, "ffn_res", blk);
    }
  }
  if (g->status != SPR_STATUS_OK) return g->status;
  const int64_t Cl = h->dims[h->n_stages - 1], K = h->classes;
  const struct spr_tensor *tx = spr_graph_tensor(g, x);
  const int64_t tok_ne[2] = {Cl, tx->ne[1] * tx->ne[2]};
  x = spr_g_mean_rows(g, spr_g_view(g, x, 2, tok_ne, 0, "tokens", -1), "pooled", -1);
  x = spr_g_binary(g, SPR_OP_MUL, x, wt(g, F32_ONLY, "norm.scale", 0, Cl, 1, 1, 1, false), "norm_scale", -1);
  x = spr_g_binary(g, SPR_OP_ADD, x, wt(g, F32_ONLY, "norm.shift", 0, Cl, 1, 1, 1, false), "norm", -1);
  x = spr_g_gemm(g, x, wt(g, LINEAR_TYPES, "head.weight", 0, Cl, K, 1, 1, false),
                 wt(g, F32_ONLY, "head.bias", 0, K, 1, 1, 1, true), SPR_ACT_NONE, -1, "logits", -1);
  spr_g_output(g, x);
  return g->status;
}

static void biformer_vision(const struct spr_model *m, struct spr_vision_info *out) {
  const struct spr_biformer_hparams *h = &m->hp.biformer;
  memset(out, 0, sizeof *out);
  out->image_size = h->image_size;
  out->channels = h->channels;
  out->n_classes = h->classes;
  for (uint32_t i = 0; i < h->channels; i++) {
    out->mean[i] = h->mean[i];
    out->std[i] = h->std[i];
  }
}

const struct spr_arch spr_arch_biformer = {"biformer", biformer_load, biformer_build, biformer_vision, NULL};
