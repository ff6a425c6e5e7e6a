/* models/llama/llama_core.c — the core-neuron FFN part of the llama graph
 * (see llama_core.h). */
#include "models/llama/llama_core.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"
#include "runtime/error.h"

#define MATMUL_TYPES                                                                                 \
  ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16) | (1u << SPR_DTYPE_Q8_0) | (1u << SPR_DTYPE_Q4_0) | \
   (1u << SPR_DTYPE_Q4_K) | (1u << SPR_DTYPE_Q6_K))
#define DOWN_T_TYPES ((1u << SPR_DTYPE_F32) | (1u << SPR_DTYPE_F16) | (1u << SPR_DTYPE_Q8_0) | (1u << SPR_DTYPE_Q4_0))

enum spr_status spr_llama_core_resolve(const struct spr_config *cfg, uint32_t n_layer, uint32_t n_ff,
                                       struct spr_llama_core *out, struct spr_error *err) {
  memset(out, 0, sizeof *out);
  out->first = out->last = -1;
  const float beta = cfg->sparse_ffn_beta, alpha = cfg->sparse_ffn_alpha;
  SPR_CHECK(beta >= 0.0f && beta <= 1.0f, SPR_STATUS_INVALID_ARGUMENT, "sparse FFN beta %g must be in (0, 1]",
            (double)beta);
  SPR_CHECK(alpha >= 0.0f && alpha <= 1.0f, SPR_STATUS_INVALID_ARGUMENT, "sparse FFN alpha %g must be in (0, 1]",
            (double)alpha);
  if (beta == 0.0f) return SPR_STATUS_OK;
  out->on = true;
  out->beta = beta;
  out->alpha = alpha > 0.0f ? alpha : 0.2f;
  out->reselect = cfg->sparse_ffn_reselect != 0;
  out->compact = cfg->sparse_ffn_compact != 0;
  const int L = (int)n_layer;
  int first = cfg->sparse_ffn_first, last = cfg->sparse_ffn_last;
  if (first < 0) first = (6 * L + 16) / 32;
  if (last < 0) last = L - 1 - (5 * L + 16) / 32;
  if (last == INT_MAX) last = L - 1;
  SPR_CHECK(first >= 0 && first <= last && last < L, SPR_STATUS_INVALID_ARGUMENT,
            "sparse FFN layers %d-%d are not a range inside the model's %d layers", first, last, L);
  out->first = first;
  out->last = last;
  out->n_core = (uint32_t)spr_core_count(beta, n_ff);
  return SPR_STATUS_OK;
}

void spr_llama_core_begin(struct spr_graph *g, const struct spr_llama_core *core, uint32_t batch) {
  g->aux[SPR_LLAMA_AUX_CORE] = -1;
  if (!core->on) return;
  const int64_t ne[1] = {SPR_CORE_CTL_WORDS + 2 * (int64_t)batch};
  const int32_t id = spr_g_tensor(g, SPR_ROLE_STATE, SPR_DTYPE_I32, 1, ne, "core_ctl", -1);
  g->aux[SPR_LLAMA_AUX_CORE] = id;
}

static bool has_down_t(const struct spr_graph *g, int l) {
  char name[SPR_GGUF_MAX_NAME + 1];
  snprintf(name, sizeof name, "blk.%d.ffn_down_t.weight", l);
  struct spr_gguf_tensor t;
  return g->gguf != NULL && spr_gguf_find_tensor(g->gguf, name, &t) == SPR_STATUS_OK;
}

static bool has_bundle(const struct spr_graph *g, int l) {
  char name[SPR_GGUF_MAX_NAME + 1];
  snprintf(name, sizeof name, "blk.%d.ffn_bundle.weight", l);
  struct spr_gguf_tensor t;
  return g->gguf != NULL && spr_gguf_find_tensor(g->gguf, name, &t) == SPR_STATUS_OK;
}

bool spr_llama_core_layer(const struct spr_graph *g, const struct spr_llama_core *core, int l) {
  return (core->on && l >= core->first && l <= core->last) || has_down_t(g, l) || has_bundle(g, l);
}

static int32_t weight(struct spr_graph *g, uint32_t types, const char *fmt, int l, int64_t ne0, int64_t ne1) {
  char name[SPR_GGUF_MAX_NAME + 1];
  snprintf(name, sizeof name, fmt, l);
  const int64_t ne[2] = {ne0, ne1};
  return spr_g_weight(g, name, types, 2, ne);
}

int32_t spr_llama_core_ffn(struct spr_graph *g, const struct spr_llama_hparams *h, const struct spr_llama_core *core,
                           int l, int32_t n, int32_t x) {
  if (g->status != SPR_STATUS_OK) return -1; /* n may be -1: nothing to read */
  const int64_t E = h->n_embd, F = h->n_ff, B = spr_graph_tensor(g, n)->ne[1];
  const bool sparse = core->on && l >= core->first && l <= core->last;
  int32_t sel = -1, ctl = -1;
  if (sparse) {
    const int64_t sel_ne[1] = {(int64_t)spr_core_sel_words((size_t)F)};
    sel = spr_g_tensor(g, SPR_ROLE_STATE, SPR_DTYPE_I32, 1, sel_ne, "core_sel", l);
    ctl = g->aux[SPR_LLAMA_AUX_CORE];
  }
  const int64_t f_ne[2] = {F, B};
  const union spr_op_params silu = {.gemm = {.act = SPR_ACT_SILU}};
  if (sparse && core->compact && !has_bundle(g, l)) {
    spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT,
                   "sparse FFN compact copies neuron bundles, and layer %d has none (sparrow quantize IN OUT q4_0 "
                   "--sparse-layout --bundle)",
                   l);
    return -1;
  }
  if (has_bundle(g, l)) {
    /* neuron bundles: act = SiLU(gate) * up in one GEMM_ROWS node (prefill steps); the
     * FFN_DOWN node computes the whole FFN in single-token steps (coreffn.h) */
    const int32_t wb = weight(g, 1u << SPR_DTYPE_Q4_0, "blk.%d.ffn_bundle.weight", l, 3 * E, F);
    const int32_t bsrc[6] = {n, wb, -1, -1, sel, ctl};
    const int32_t act = spr_g_node(g, SPR_OP_GEMM_ROWS, &silu, bsrc, 6,
                                   spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, f_ne, "ffn_act", l));
    union spr_op_params bp = {
        .core = {.act = SPR_ACT_NONE, .down_t = SPR_CORE_DOWN_BUNDLE, .alpha = core->alpha, .beta = core->beta}};
    if (sparse) {
      const int32_t ssrc[2] = {act, ctl};
      spr_g_node(g, SPR_OP_CORE_SELECT, &bp, ssrc, 2, sel);
    }
    int32_t pack = -1;
    if (sparse && core->compact) {
      const int64_t p_ne[2] = {3 * E, (int64_t)spr_core_pack_rows(core->n_core)};
      pack = spr_g_tensor(g, SPR_ROLE_STATE, SPR_DTYPE_Q4_0, 2, p_ne, "core_pack", l);
    }
    const int32_t dsrc[7] = {act, wb, n, x, sel, ctl, pack};
    const int64_t x_ne[2] = {E, B};
    return spr_g_node(g, SPR_OP_FFN_DOWN, &bp, dsrc, 7,
                      spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, x_ne, "ffn_res", l));
  }
  int32_t src[6] = {n, weight(g, MATMUL_TYPES, "blk.%d.ffn_gate.weight", l, E, F), -1, -1, sel, ctl};
  const int32_t gate = spr_g_node(g, SPR_OP_GEMM_ROWS, &silu, src, 6,
                                  spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, f_ne, "ffn_gate", l));
  src[1] = weight(g, MATMUL_TYPES, "blk.%d.ffn_up.weight", l, E, F);
  const int32_t up =
      spr_g_node(g, SPR_OP_GEMM_ROWS, NULL, src, 6, spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, f_ne, "ffn_up", l));
  const int32_t act = spr_g_binary(g, SPR_OP_MUL, gate, up, "ffn_act", l);
  union spr_op_params cp = {.core = {.act = SPR_ACT_NONE, .down_t = 0, .alpha = core->alpha, .beta = core->beta}};
  if (sparse) {
    const int32_t ssrc[2] = {act, ctl};
    spr_g_node(g, SPR_OP_CORE_SELECT, &cp, ssrc, 2, sel);
  }
  int32_t down;
  if (has_down_t(g, l)) {
    cp.core.down_t = 1;
    down = weight(g, DOWN_T_TYPES, "blk.%d.ffn_down_t.weight", l, E, F);
  } else {
    down = weight(g, MATMUL_TYPES, "blk.%d.ffn_down.weight", l, F, E);
  }
  const int32_t dsrc[6] = {act, down, -1, x, sel, ctl};
  const int64_t x_ne[2] = {E, B};
  return spr_g_node(g, SPR_OP_FFN_DOWN, &cp, dsrc, 6,
                    spr_g_tensor(g, SPR_ROLE_ACT, SPR_DTYPE_F32, 2, x_ne, "ffn_res", l));
}
