/* models/llama/llama_core.h — the core-neuron FFN part of the llama graph
 * (ops in ops/coreffn/coreffn.h, semantics in docs/coreinfer.md).
 *
 * Graph of a layer whose FFN is not the plain dense one (a sparse layer, or
 * any layer of a file with the sparse layout blk.N.ffn_down_t.weight {E, F}):
 *   gate = GEMM_ROWS(n, ffn_gate, SiLU)   up = GEMM_ROWS(n, ffn_up)
 *   h = MUL(gate, up)   CORE_SELECT(h) -> core_sel (sparse layers)
 *   x = FFN_DOWN(h, ffn_down | ffn_down_t, residual x)
 * A file with neuron bundles (blk.N.ffn_bundle.weight {3E, F} Q4_0, row n =
 * neuron n's gate, up and ffn_down_t rows; sparrow quantize --sparse-layout
 * --bundle) instead builds
 *   h = GEMM_ROWS(n, ffn_bundle, SiLU)  (SiLU(gate) * up; nothing in single-token steps)
 *   CORE_SELECT(h) -> core_sel (sparse layers)
 *   x = FFN_DOWN(h, ffn_bundle, n, residual x)  (single-token steps: the fused decode)
 * and, with sparse_ffn_compact, passes each sparse layer's "core_pack" (Q4_0
 * STATE {3E, n_core rounded up to 4}) to FFN_DOWN as src[6]: the core
 * bundles, copied there by the first single-token step after each selection
 * (in the packed down layout where the ukernels have one: coreffn.h).
 * Sparse layers pass their core_sel state (I32 STATE, spr_core_sel_words(F))
 * and the session's control tensor (I32 STATE "core_ctl", SPR_CORE_CTL_WORDS
 * + 2 * batch words: header, the token ring, and a linear copy for
 * re-selection; graph slot SPR_LLAMA_AUX_CORE); other layers pass none and
 * always run dense. */
#ifndef SPR_MODELS_LLAMA_CORE_H
#define SPR_MODELS_LLAMA_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "models/llama/llama.h"
#include "runtime/graph.h"
#include "sparrow/sparrow.h"

struct spr_llama_core {
  bool on;
  float alpha, beta;
  int first, last; /* sparse layers, inclusive (-1 when off) */
  bool reselect;
  bool compact; /* the core bundles copied into a STATE block per selection */
  uint32_t n_core;
};

/* Validates and resolves cfg's sparse_ffn_* for a model of n_layer layers
 * and n_ff neurons (INVALID_ARGUMENT with a message). */
enum spr_status spr_llama_core_resolve(const struct spr_config *cfg, uint32_t n_layer, uint32_t n_ff,
                                       struct spr_llama_core *out, struct spr_error *err);

/* Creates the control tensor when core->on and sets g->aux[SPR_LLAMA_AUX_CORE]
 * (-1 when off). */
void spr_llama_core_begin(struct spr_graph *g, const struct spr_llama_core *core, uint32_t batch);

/* True when layer l needs the ops above (sparse, or ffn_down_t in the file). */
bool spr_llama_core_layer(const struct spr_graph *g, const struct spr_llama_core *core, int l);

/* Builds the FFN of layer l on n = ffn_norm(x); returns the new x. */
int32_t spr_llama_core_ffn(struct spr_graph *g, const struct spr_llama_hparams *h, const struct spr_llama_core *core,
                           int l, int32_t n, int32_t x);

#endif
