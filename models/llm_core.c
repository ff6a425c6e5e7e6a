/* models/llm_core.c — the LLM layer of the core-neuron FFN: which steps
 * select and which run sparse, sentence re-selection, and the public
 * queries (sparrow/llm.h; docs/coreinfer.md).
 *
 * Windows. The first spr_llm_eval after a reset, and every call with more
 * than one token, is a prefill: its steps run dense in mode SELECT (the first
 * one with new_window set) and the core set of each sparse layer is final
 * after the call. Single-token calls run in mode SPARSE.
 * Re-selection (reselect=sentence). The control tensor keeps the tokens fed
 * since the last window in a ring of `batch` entries. When a single-token
 * call's token contains '.', '!' or '?' (the text of the token just
 * generated), the call instead rolls the position back to the first token
 * after the last window and evaluates those tokens (at most batch - 1 of
 * them, the latest) plus this one again as a new window: one dense prefill
 * step over the sentence, which also replaces the sentence's KV entries by
 * dense ones (as CoreInfer's per-sentence re-prefill does). */
#include <string.h>

#include "models/llama/llama_core.h"
#include "models/llm_core.h"
#include "models/model.h"
#include "ops/coreffn/coreffn.h"
#include "runtime/error.h"
#include "sparrow/llm.h"

struct spr_core_ctl *spr_llm_core_ctl(struct spr_session *s) {
  const int32_t id = s->graph.aux[SPR_LLAMA_AUX_CORE];
  return id >= 0 ? s->graph.tensors[id].data : NULL;
}

/* Evaluates tokens in steps of at most batch; the first step carries the
 * control's new_window flag, which is cleared after it. */
static enum spr_status steps(struct spr_session *s, struct spr_core_ctl *ctl, const int32_t *tokens, size_t n) {
  struct spr_graph *g = &s->graph;
  const size_t batch = (size_t)g->aux[SPR_LLAMA_AUX_BATCH];
  struct spr_tensor *ids = &g->tensors[g->inputs[0]];
  for (size_t done = 0; done < n;) {
    const size_t step = n - done < batch ? n - done : batch;
    SPR_TRY(spr_session_set_step(s, s->run.n_past, (int32_t)step));
    memcpy(ids->data, tokens + done, step * sizeof(int32_t));
    SPR_TRY(spr_session_run(s));
    ctl->new_window = 0;
    s->run.n_past += (int32_t)step;
    done += step;
  }
  return SPR_STATUS_OK;
}

static enum spr_status window(struct spr_session *s, struct spr_core_ctl *ctl, const int32_t *tokens, size_t n) {
  ctl->mode = SPR_CORE_MODE_SELECT;
  ctl->new_window = 1;
  const enum spr_status st = steps(s, ctl, tokens, n);
  ctl->mode = SPR_CORE_MODE_SPARSE;
  ctl->new_window = 0;
  ctl->win_start = s->run.n_past;
  ctl->win_count = 0;
  return st;
}

static bool ends_sentence(const struct spr_session *s, int32_t tok) {
  char buf[128];
  size_t n = 0;
  if (spr_llm_token_piece(s->model, tok, buf, sizeof buf, &n) != SPR_STATUS_OK) n = n < sizeof buf ? n : 0;
  for (size_t i = 0; i < n && i < sizeof buf; i++) {
    if (buf[i] == '.' || buf[i] == '!' || buf[i] == '?') return true;
  }
  return false;
}

enum spr_status spr_llm_core_eval(struct spr_session *s, struct spr_core_ctl *ctl, const int32_t *tokens, size_t n) {
  if (n > 1 || s->run.n_past == 0) return window(s, ctl, tokens, n);
  const int32_t cap = s->graph.aux[SPR_LLAMA_AUX_BATCH];
  int32_t *ring = ctl->tokens, *lin = ctl->tokens + cap;
  if (s->cfg.sparse_ffn_reselect && ends_sentence(s, tokens[0])) {
    int32_t back = ctl->win_count < cap - 1 ? ctl->win_count : cap - 1;
    if (back > s->run.n_past - ctl->win_start) back = s->run.n_past - ctl->win_start; /* a reset in between */
    if (back < 0) back = 0;
    const int32_t from = s->run.n_past - back;
    for (int32_t i = 0; i < back; i++) lin[i] = ring[(from + i) % cap];
    lin[back] = tokens[0];
    s->run.n_past = from;
    return window(s, ctl, lin, (size_t)back + 1);
  }
  ctl->mode = SPR_CORE_MODE_SPARSE;
  const int32_t pos = s->run.n_past;
  SPR_TRY(steps(s, ctl, tokens, 1));
  ring[pos % cap] = tokens[0];
  ctl->win_count++;
  return SPR_STATUS_OK;
}

/* ---- queries -------------------------------------------------------------------------- */

static const struct spr_llama_hparams *llama_hp(const struct spr_model *m) {
  return m != NULL && m->arch == &spr_arch_llama ? &m->hp.llama : NULL;
}

enum spr_status spr_llm_sparse_layers(const struct spr_model *m, const struct spr_config *c, int *first, int *last,
                                      uint32_t *n_core) {
  const struct spr_llama_hparams *h = llama_hp(m);
  if (h == NULL) return SPR_STATUS_UNSUPPORTED;
  struct spr_config cfg;
  spr_config_init(&cfg);
  if (c != NULL) cfg = *c;
  struct spr_llama_core core;
  const enum spr_status st = spr_llama_core_resolve(&cfg, h->n_layer, h->n_ff, &core, NULL);
  if (st != SPR_STATUS_OK) return st;
  if (first != NULL) *first = core.first;
  if (last != NULL) *last = core.last;
  if (n_core != NULL) *n_core = core.n_core;
  return SPR_STATUS_OK;
}

enum spr_status spr_llm_core_set(const struct spr_session *s, uint32_t layer, const int32_t **idx, uint32_t *n) {
  if (s == NULL || idx == NULL || n == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  const struct spr_llama_hparams *h = llama_hp(s->model);
  if (h == NULL) return SPR_STATUS_UNSUPPORTED;
  const struct spr_graph *g = &s->graph;
  for (int32_t i = 0; i < g->n_tensors; i++) {
    const struct spr_tensor *t = &g->tensors[i];
    if (t->role != SPR_ROLE_STATE || t->layer != (int)layer || t->name_len != 0 || strcmp(t->name, "core_sel") != 0)
      continue;
    struct spr_core_sel *sel = t->data;
    *n = sel->n_core > 0 ? (uint32_t)sel->n_core : 0;
    *idx = spr_core_sel_core(sel, h->n_ff);
    return SPR_STATUS_OK;
  }
  return SPR_STATUS_UNSUPPORTED;
}

static bool layer_tensor(struct spr_gguf_str name, int *layer, const char **rest) {
  if (name.len < 5 || memcmp(name.ptr, "blk.", 4) != 0) return false;
  int l = 0;
  size_t i = 4;
  while (i < name.len && name.ptr[i] >= '0' && name.ptr[i] <= '9' && l < 100000) l = l * 10 + (name.ptr[i++] - '0');
  if (i == 4 || i >= name.len || name.ptr[i] != '.') return false;
  *layer = l;
  *rest = name.ptr + i + 1;
  return true;
}

static bool rest_is(struct spr_gguf_str name, const char *rest, const char *want) {
  const size_t n = strlen(want);
  return (size_t)(name.ptr + name.len - rest) == n && memcmp(rest, want, n) == 0;
}

enum spr_status spr_llm_decode_traffic(const struct spr_model *m, const struct spr_config *c,
                                       struct spr_llm_traffic *out) {
  const struct spr_llama_hparams *h = llama_hp(m);
  if (h == NULL || out == NULL) return h == NULL ? SPR_STATUS_UNSUPPORTED : SPR_STATUS_INVALID_ARGUMENT;
  memset(out, 0, sizeof *out);
  int first = -1, last = -1;
  uint32_t n_core = 0;
  SPR_TRY(spr_llm_sparse_layers(m, c, &first, &last, &n_core));
  const double keep = h->n_ff > 0 ? (double)n_core / (double)h->n_ff : 1.0;
  const struct spr_gguf *g = &m->gguf;
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    if (spr_gguf_tensor_at(g, i, &t) != SPR_STATUS_OK) break;
    double b = (double)t.nbytes;
    if (spr_gguf_str_eq(t.name, "token_embd.weight") && !h->tied_output) b /= (double)h->n_vocab;
    out->dense += b;
    int l;
    const char *rest;
    const bool sparse = first >= 0 && layer_tensor(t.name, &l, &rest) && l >= first && l <= last;
    if (!sparse) {
      out->sparse += b;
      out->sparse_down_t += b;
    } else if (rest_is(t.name, rest, "ffn_gate.weight") || rest_is(t.name, rest, "ffn_up.weight") ||
               rest_is(t.name, rest, "ffn_down_t.weight") || rest_is(t.name, rest, "ffn_bundle.weight")) {
      out->sparse += b * keep;
      out->sparse_down_t += b * keep;
    } else if (rest_is(t.name, rest, "ffn_down.weight")) {
      out->sparse += b;
      out->sparse_down_t += b * keep;
      out->row_major_down++;
    } else {
      out->sparse += b;
      out->sparse_down_t += b;
    }
  }
  return SPR_STATUS_OK;
}
