/* models/nat/nat.c — hyper-parameters and graph of a NAT / DiNAT classifier. */
#include "models/nat/nat.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "runtime/error.h"
#include "runtime/graph.h"

#define F32_ONLY ((1u << SPR_DTYPE_F32))
#define LINEAR_TYPES ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16) | (1u << SPR_DTYPE_Q8_0) | (1u << SPR_DTYPE_Q4_0))
#define CONV_TYPES ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16))

static enum spr_status nat_load(struct spr_model *m, struct spr_error *err) {
  const struct spr_gguf *g = &m->gguf;
  struct spr_nat_hparams *h = &m->hp.nat;
  memset(h, 0, sizeof *h);
  int32_t v[SPR_NAT_MAX_BLOCKS];
  uint32_t n;
  SPR_TRY(spr_model_get_u32(g, "nat.image_size", 1, 8192, &h->image_size, err));
  SPR_TRY(spr_model_get_u32(g, "nat.num_channels", 1, SPR_NAT_MAX_CHANNELS, &h->channels, err));
  SPR_TRY(spr_model_get_u32(g, "nat.embedding_length", 2, 65536, &h->dim, err));
  SPR_CHECK(h->dim % 2 == 0, SPR_STATUS_BAD_METADATA, "nat.embedding_length %u must be even", h->dim);
  SPR_TRY(spr_model_get_u32(g, "nat.block_count", 1, SPR_NAT_MAX_BLOCKS, &h->n_blocks, err));
  SPR_TRY(spr_model_get_u32(g, "nat.num_classes", 1, 1 << 20, &h->classes, err));
  SPR_TRY(spr_model_get_int_array(g, "nat.depths", SPR_NAT_MAX_LEVELS, 1, SPR_NAT_MAX_BLOCKS, v, &h->n_levels, err));
  uint32_t total = 0;
  for (uint32_t i = 0; i < h->n_levels; i++) total += h->depths[i] = (uint32_t)v[i];
  SPR_CHECK(total == h->n_blocks, SPR_STATUS_BAD_METADATA, "nat.depths add up to %u blocks, block_count is %u", total,
            h->n_blocks);
  SPR_CHECK(((uint64_t)h->dim << (h->n_levels - 1)) <= 65536, SPR_STATUS_BAD_METADATA,
            "the last level would have %llu channels", (unsigned long long)h->dim << (h->n_levels - 1));
  SPR_TRY(spr_model_get_int_array(g, "nat.attention.head_count", SPR_NAT_MAX_LEVELS, 1, 65535, v, &n, err));
  SPR_CHECK(n == h->n_levels, SPR_STATUS_BAD_METADATA, "nat.attention.head_count has %u entries for %u levels", n,
            h->n_levels);
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t d = h->dim << i;
    h->heads[i] = (uint32_t)v[i];
    SPR_CHECK(d % h->heads[i] == 0, SPR_STATUS_BAD_METADATA, "level %u: %u channels are not a multiple of %u heads", i,
              d, h->heads[i]);
  }
  SPR_TRY(spr_model_get_int_array(g, "nat.feed_forward_length", SPR_NAT_MAX_LEVELS, 1, 1 << 20, v, &n, err));
  SPR_CHECK(n == h->n_levels, SPR_STATUS_BAD_METADATA, "nat.feed_forward_length has %u entries for %u levels", n,
            h->n_levels);
  for (uint32_t i = 0; i < n; i++) h->ffn[i] = (uint32_t)v[i];
  SPR_TRY(spr_model_get_int_array(g, "nat.kernel_sizes", SPR_NAT_MAX_BLOCKS, 1, 1024, v, &n, err));
  SPR_CHECK(n == h->n_blocks, SPR_STATUS_BAD_METADATA, "nat.kernel_sizes has %u entries for %u blocks", n, h->n_blocks);
  for (uint32_t i = 0; i < n; i++) h->kernel[i] = (uint16_t)v[i];
  SPR_TRY(spr_model_get_int_array(g, "nat.dilations", SPR_NAT_MAX_BLOCKS, 1, 1024, v, &n, err));
  SPR_CHECK(n == h->n_blocks, SPR_STATUS_BAD_METADATA, "nat.dilations has %u entries for %u blocks", n, h->n_blocks);
  for (uint32_t i = 0; i < n; i++) h->dilation[i] = (uint16_t)v[i];
  SPR_TRY(spr_gguf_get_f32_or(g, "nat.attention.layer_norm_epsilon", 1e-5f, &h->eps));
  SPR_CHECK(isfinite(h->eps) && h->eps > 0 && h->eps < 1, SPR_STATUS_BAD_METADATA, "layer norm epsilon out of range");
  SPR_TRY(spr_model_get_f32_array_or(g, "nat.image_mean", h->channels, 0.0f, h->mean, err));
  SPR_TRY(spr_model_get_f32_array_or(g, "nat.image_std", h->channels, 1.0f, h->std, err));
  for (uint32_t i = 0; i < h->channels; i++)
    SPR_CHECK(h->std[i] > 0, SPR_STATUS_BAD_METADATA, "nat.image_std[%u] must be positive", i);
  return SPR_STATUS_OK;
}

/* A weight named fmt % layer of shape {ne0, ne1, ne2} (trailing 1s dropped). */
static int32_t wt(struct spr_graph *g, uint32_t types, const char *fmt, int layer, int64_t ne0, int64_t ne1,
                  int64_t ne2, int64_t ne3, bool optional) {
  char name[SPR_GGUF_MAX_NAME + 1];
  snprintf(name, sizeof name, fmt, layer);
  const int64_t ne[4] = {ne0, ne1, ne2, ne3};
  const int nd = ne3 > 1 ? 4 : ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1;
  return optional ? spr_g_weight_opt(g, name, types, nd, ne) : spr_g_weight(g, name, types, nd, ne);
}

static const char *const k_ds_conv[SPR_NAT_MAX_LEVELS] = {"ds.0.conv", "ds.1.conv", "ds.2.conv", "ds.3.conv",
                                                          "ds.4.conv", "ds.5.conv", "ds.6.conv", "ds.7.conv"};
static const char *const k_ds_norm[SPR_NAT_MAX_LEVELS] = {"ds.0.norm", "ds.1.norm", "ds.2.norm", "ds.3.norm",
                                                          "ds.4.norm", "ds.5.norm", "ds.6.norm", "ds.7.norm"};

/* 3x3 stride-2 pad-1 convolution (tokenizer, downsampler). */
static int32_t conv_s2(struct spr_graph *g, int32_t x, int32_t w, int32_t b, const char *name) {
  const struct spr_conv_params cp = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1};
  return spr_g_conv2d(g, x, w, b, &cp, name, -1);
}

/* x + gamma * y (layer scale) or x + y, as the last step of a residual branch:
 * the GEMM adds the residual itself when there is no gamma. */
static int32_t residual_gemm(struct spr_graph *g, int32_t in, int32_t w, int32_t b, int32_t gamma, int32_t x,
                             const char *out_name, const char *scaled_name, const char *res_name, int layer) {
  if (gamma < 0) return spr_g_gemm(g, in, w, b, SPR_ACT_NONE, x, res_name, layer);
  int32_t y = spr_g_gemm(g, in, w, b, SPR_ACT_NONE, -1, out_name, layer);
  y = spr_g_binary(g, SPR_OP_MUL, y, gamma, scaled_name, layer);
  return spr_g_binary(g, SPR_OP_ADD, x, y, res_name, layer);
}

static enum spr_status nat_build(const void *model, const struct spr_config *cfg, struct spr_graph *g) {
  const struct spr_model *m = model;
  const struct spr_nat_hparams *h = &m->hp.nat;
  const int64_t S = cfg->image_size != 0 ? cfg->image_size : (int64_t)h->image_size, Cin = h->channels;
  const int64_t C = h->dim;
  if (S < 1 || S > 8192) {
    spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "image size %lld is out of range [1, 8192]", (long long)S);
    return g->status;
  }
  const int64_t in_ne[3] = {Cin, S, S};
  int32_t x = spr_g_input(g, SPR_DTYPE_F32, 3, in_ne, "image");
  x = conv_s2(g, x, wt(g, CONV_TYPES, "tok.conv1.weight", 0, Cin, 3, 3, C / 2, false),
              wt(g, F32_ONLY, "tok.conv1.bias", 0, C / 2, 1, 1, 1, false), "tok_conv1");
  x = conv_s2(g, x, wt(g, CONV_TYPES, "tok.conv2.weight", 0, C / 2, 3, 3, C, false),
              wt(g, F32_ONLY, "tok.conv2.bias", 0, C, 1, 1, 1, false), "tok_conv2");
  x = spr_g_layernorm(g, x, wt(g, F32_ONLY, "tok.norm.weight", 0, C, 1, 1, 1, false),
                      wt(g, F32_ONLY, "tok.norm.bias", 0, C, 1, 1, 1, false), h->eps, "tok_norm", -1);
  int blk = 0;
  for (uint32_t lv = 0; lv < h->n_levels && g->status == SPR_STATUS_OK; lv++) {
    const int64_t D = C << lv, F = h->ffn[lv], heads = h->heads[lv], hd = D / heads;
    for (uint32_t j = 0; j < h->depths[lv] && g->status == SPR_STATUS_OK; j++, blk++) {
      const struct spr_tensor *tx = spr_graph_tensor(g, x);
      const int64_t W = tx->ne[1], H = tx->ne[2], K = h->kernel[blk], dil = h->dilation[blk];
      const int64_t win = K * dil, Wp = W < win ? win : W, Hp = H < win ? win : H;
      const bool padded = Wp != W || Hp != H;
      if (Wp > 65535 || Hp > 65535 || hd > 65535) {
        spr_graph_fail(g, SPR_STATUS_UNSUPPORTED, "block %d: map %lldx%lld or head dim %lld is too large", blk,
                       (long long)Hp, (long long)Wp, (long long)hd);
        break;
      }
      int32_t t = spr_g_layernorm(g, x, wt(g, F32_ONLY, "blk.%d.ln1.weight", blk, D, 1, 1, 1, false),
                                  wt(g, F32_ONLY, "blk.%d.ln1.bias", blk, D, 1, 1, 1, false), h->eps, "ln1", blk);
      if (padded) t = spr_g_pad2d(g, t, Wp, Hp, "ln1_pad", blk);
      t = spr_g_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.attn_qkv.weight", blk, D, 3 * D, 1, 1, false),
                     wt(g, F32_ONLY, "blk.%d.attn_qkv.bias", blk, 3 * D, 1, 1, 1, true), SPR_ACT_NONE, -1, "qkv", blk);
      const int32_t rpb = wt(g, F32_ONLY, "blk.%d.attn_rpb", blk, 2 * K - 1, 2 * K - 1, heads, 1, true);
      const struct spr_na_params np = {.n_heads = (uint16_t)heads,
                                       .head_dim = (uint16_t)hd,
                                       .n_dims = 2,
                                       .causal = 0,
                                       .size = {(uint16_t)Hp, (uint16_t)Wp, 1},
                                       .kernel = {(uint16_t)K, (uint16_t)K, 1},
                                       .dilation = {(uint16_t)dil, (uint16_t)dil, 1},
                                       .stride = {1, 1, 1},
                                       .scale = 1.0f / sqrtf((float)hd),
                                       .q_col = 0,
                                       .k_col = (uint32_t)D,
                                       .v_col = (uint32_t)(2 * D)};
      t = spr_g_neighborhood_attn(g, t, t, t, rpb, &np, "attn", blk);
      if (padded) t = spr_g_pad2d(g, t, W, H, "attn_crop", blk);
      const int32_t g1 = wt(g, F32_ONLY, "blk.%d.gamma1", blk, D, 1, 1, 1, true);
      const int32_t g2 = wt(g, F32_ONLY, "blk.%d.gamma2", blk, D, 1, 1, 1, true);
      if ((g1 < 0) != (g2 < 0) && g->status == SPR_STATUS_OK) {
        spr_graph_fail(g, SPR_STATUS_MISSING_TENSOR, "blk.%d has only one of gamma1 / gamma2", blk);
        break;
      }
      x = residual_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.attn_out.weight", blk, D, D, 1, 1, false),
                        wt(g, F32_ONLY, "blk.%d.attn_out.bias", blk, D, 1, 1, 1, true), g1, x, "attn_out",
                        "attn_scaled", "attn_res", blk);
      t = spr_g_layernorm(g, x, wt(g, F32_ONLY, "blk.%d.ln2.weight", blk, D, 1, 1, 1, false),
                          wt(g, F32_ONLY, "blk.%d.ln2.bias", blk, D, 1, 1, 1, false), h->eps, "ln2", blk);
      t = spr_g_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.ffn_up.weight", blk, D, F, 1, 1, false),
                     wt(g, F32_ONLY, "blk.%d.ffn_up.bias", blk, F, 1, 1, 1, true), SPR_ACT_GELU, -1, "ffn_up", blk);
      x = residual_gemm(g, t, wt(g, LINEAR_TYPES, "blk.%d.ffn_down.weight", blk, F, D, 1, 1, false),
                        wt(g, F32_ONLY, "blk.%d.ffn_down.bias", blk, D, 1, 1, 1, true), g2, x, "ffn_out", "ffn_scaled",
                        "ffn_res", blk);
    }
    if (lv + 1 < h->n_levels) {
      x = conv_s2(g, x, wt(g, CONV_TYPES, "ds.%d.weight", (int)lv, D, 3, 3, 2 * D, false), -1, k_ds_conv[lv]);
      x = spr_g_layernorm(g, x, wt(g, F32_ONLY, "ds.%d.norm.weight", (int)lv, 2 * D, 1, 1, 1, false),
                          wt(g, F32_ONLY, "ds.%d.norm.bias", (int)lv, 2 * D, 1, 1, 1, false), h->eps, k_ds_norm[lv],
                          -1);
    }
  }
  if (g->status != SPR_STATUS_OK) return g->status;
  const int64_t Dl = C << (h->n_levels - 1), K = h->classes;
  x = spr_g_layernorm(g, x, wt(g, F32_ONLY, "norm.weight", 0, Dl, 1, 1, 1, false),
                      wt(g, F32_ONLY, "norm.bias", 0, Dl, 1, 1, 1, false), h->eps, "norm", -1);
  if (g->status != SPR_STATUS_OK) return g->status; /* x may be -1: nothing to read */
  const struct spr_tensor *tx = spr_graph_tensor(g, x);
  const int64_t tok_ne[2] = {Dl, tx->ne[1] * tx->ne[2]};
  x = spr_g_mean_rows(g, spr_g_view(g, x, 2, tok_ne, 0, "tokens", -1), "pooled", -1);
  x = spr_g_gemm(g, x, wt(g, LINEAR_TYPES, "head.weight", 0, Dl, K, 1, 1, false),
                 wt(g, F32_ONLY, "head.bias", 0, K, 1, 1, 1, true), SPR_ACT_NONE, -1, "logits", -1);
  spr_g_output(g, x);
  return g->status;
}

static void nat_vision(const struct spr_model *m, struct spr_vision_info *out) {
  const struct spr_nat_hparams *h = &m->hp.nat;
  memset(out, 0, sizeof *out);
  out->image_size = h->image_size;
  out->channels = h->channels;
  out->n_classes = h->classes;
  for (uint32_t i = 0; i < h->channels; i++) {
    out->mean[i] = h->mean[i];
    out->std[i] = h->std[i];
  }
}

const struct spr_arch spr_arch_nat = {"nat", nat_load, nat_build, nat_vision, NULL};
