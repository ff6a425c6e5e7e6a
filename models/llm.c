/* models/llm.c — the LLM API: tokenizer access, stepping through tokens,
 * sampling. */
#include <math.h>
#include <string.h>

#include "models/llm_core.h"
#include "models/model.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "sparrow/llm.h"

static const struct spr_llama_hparams *llama_of(const struct spr_model *m) {
  return m != NULL && m->arch == &spr_arch_llama ? &m->hp.llama : NULL;
}

static const struct spr_model *model_of(const struct spr_session *s) { return s->model; }

enum spr_status spr_llm_info(const struct spr_model *m, struct spr_llm_info *out) {
  const struct spr_llama_hparams *h = llama_of(m);
  if (h == NULL || out == NULL) return h == NULL ? SPR_STATUS_UNSUPPORTED : SPR_STATUS_INVALID_ARGUMENT;
  memset(out, 0, sizeof *out);
  out->n_vocab = h->n_vocab;
  out->n_embd = h->n_embd;
  out->n_layer = h->n_layer;
  out->n_head = h->n_head;
  out->n_head_kv = h->n_head_kv;
  out->n_ff = h->n_ff;
  out->n_rot = h->n_rot;
  out->ctx_train = h->ctx_train;
  out->rope_freq_base = h->freq_base;
  out->rms_eps = h->eps;
  out->tied_output = h->tied_output;
  out->has_tokenizer = h->tok != NULL;
  out->bos = h->tok != NULL ? spr_tokenizer_bos(h->tok) : -1;
  out->eos = h->tok != NULL ? spr_tokenizer_eos(h->tok) : -1;
  return SPR_STATUS_OK;
}

size_t spr_llm_tokenize_work_bytes(const struct spr_model *m, size_t len) {
  const struct spr_llama_hparams *h = llama_of(m);
  return h != NULL && h->tok != NULL ? spr_tokenizer_work_bytes(h->tok, len) : 0;
}

enum spr_status spr_llm_tokenize(const struct spr_model *m, const char *text, size_t len, bool add_bos,
                                 int32_t *tokens, size_t max, size_t *n, void *work, size_t work_bytes) {
  const struct spr_llama_hparams *h = llama_of(m);
  if (h == NULL) return SPR_STATUS_UNSUPPORTED;
  if (h->tok == NULL) return SPR_STATUS_UNSUPPORTED;
  return spr_tokenizer_encode(h->tok, text, len, add_bos, tokens, max, n, work, work_bytes);
}

enum spr_status spr_llm_token_piece(const struct spr_model *m, int32_t id, char *buf, size_t len, size_t *n) {
  const struct spr_llama_hparams *h = llama_of(m);
  if (h == NULL || h->tok == NULL) return SPR_STATUS_UNSUPPORTED;
  return spr_tokenizer_piece(h->tok, id, buf, len, n);
}

uint32_t spr_llm_position(const struct spr_session *s) { return s != NULL ? (uint32_t)s->run.n_past : 0; }

void spr_llm_reset(struct spr_session *s) {
  if (s != NULL) s->run.n_past = 0;
}

uint32_t spr_llm_batch(const struct spr_session *s) {
  return s != NULL && llama_of(model_of(s)) != NULL ? (uint32_t)s->graph.aux[SPR_LLAMA_AUX_BATCH] : 0;
}

/* Capacity: ctx rows of KV cache, or unlimited with a sliding window. */
uint32_t spr_llm_capacity(const struct spr_session *s) {
  if (s == NULL || llama_of(model_of(s)) == NULL) return 0;
  if (s->cfg.window > 0) return UINT32_MAX;
  const struct spr_llama_hparams *h = llama_of(model_of(s));
  return s->cfg.ctx > 0 ? (uint32_t)s->cfg.ctx : (h->ctx_train < 2048 ? h->ctx_train : 2048);
}

enum spr_status spr_llm_eval(struct spr_session *s, const int32_t *tokens, size_t n, const float **logits) {
  if (s == NULL || (tokens == NULL && n > 0)) return SPR_STATUS_INVALID_ARGUMENT;
  const struct spr_llama_hparams *h = llama_of(model_of(s));
  if (h == NULL) return SPR_STATUS_UNSUPPORTED;
  if (n == 0) return SPR_STATUS_BAD_INPUT;
  for (size_t i = 0; i < n; i++) {
    if (tokens[i] < 0 || (uint32_t)tokens[i] >= h->n_vocab) return SPR_STATUS_BAD_INPUT;
  }
  const uint32_t cap = spr_llm_capacity(s);
  if (cap != UINT32_MAX && ((uint64_t)s->run.n_past + n > cap)) return SPR_STATUS_CAPACITY;
  if ((uint64_t)s->run.n_past + n > (uint64_t)INT32_MAX - 1) return SPR_STATUS_CAPACITY;
  struct spr_graph *g = &s->graph;
  struct spr_core_ctl *core = spr_llm_core_ctl(s); /* core-neuron FFN: models/llm_core.c */
  if (core != NULL) {
    SPR_TRY(spr_llm_core_eval(s, core, tokens, n));
    const struct spr_tensor *lt = &g->tensors[g->outputs[0]];
    /* one token in, one row out (a re-selection step evaluates several) */
    if (logits != NULL) *logits = (const float *)lt->data + (n == 1 ? (size_t)(lt->ne[1] - 1) * h->n_vocab : 0);
    return SPR_STATUS_OK;
  }
  const size_t batch = (size_t)g->aux[SPR_LLAMA_AUX_BATCH];
  struct spr_tensor *ids = &g->tensors[g->inputs[0]];
  for (size_t done = 0; done < n;) {
    const size_t step = n - done < batch ? n - done : batch;
    SPR_TRY(spr_session_set_step(s, s->run.n_past, (int32_t)step));
    memcpy(ids->data, tokens + done, step * sizeof(int32_t));
    SPR_TRY(spr_session_run(s));
    s->run.n_past += (int32_t)step;
    done += step;
  }
  if (logits != NULL) *logits = g->tensors[g->outputs[0]].data;
  return SPR_STATUS_OK;
}

void spr_sampler_init(struct spr_sampler *p) {
  if (p == NULL) return;
  p->temperature = 0.8f;
  p->top_k = 40;
  p->top_p = 0.95f;
  p->repeat_penalty = 1.0f;
  p->repeat_last_n = 64;
  p->seed = 1;
}

/* xorshift64*: small, seedable, deterministic across platforms */
static double next_uniform(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return (double)((x * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* Keeps the k largest of cand[0..n) (by prob) in cand[0..k), sorted
 * descending, ties by lower id. Insertion into a sorted prefix: k is small. */
static size_t top_k_sorted(const float *val, int32_t *cand, size_t n, size_t k) {
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    const int32_t id = cand[i];
    const float v = val[id];
    if (kept == k && !(v > val[cand[kept - 1]])) continue;
    size_t j = kept < k ? kept++ : kept - 1;
    while (j > 0 && (val[cand[j - 1]] < v)) {
      cand[j] = cand[j - 1];
      j--;
    }
    cand[j] = id;
  }
  return kept;
}

int32_t spr_llm_sample(struct spr_session *s, struct spr_sampler *p, const int32_t *history, size_t n_history) {
  const struct spr_llama_hparams *h = llama_of(model_of(s));
  if (h == NULL || p == NULL) return -1;
  struct spr_graph *g = &s->graph;
  const struct spr_tensor *lt = &g->tensors[g->outputs[0]];
  const size_t V = h->n_vocab;
  /* the last row when the step output all rows */
  const float *logits = (const float *)lt->data + (size_t)(lt->ne[1] - 1) * V;
  float *val = g->tensors[g->aux[SPR_LLAMA_AUX_SAMPLER]].data;
  int32_t *cand = (int32_t *)(val + V);
  memcpy(val, logits, V * sizeof(float));
  if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0 && history != NULL) {
    const size_t from = n_history > (size_t)p->repeat_last_n ? n_history - (size_t)p->repeat_last_n : 0;
    for (size_t i = from; i < n_history; i++) {
      const int32_t t = history[i];
      if (t < 0 || (size_t)t >= V) continue;
      /* once per distinct token: mark with the candidate array */
      bool seen = false;
      for (size_t j = from; j < i && !seen; j++) seen = history[j] == t;
      if (!seen) val[t] = val[t] > 0 ? val[t] / p->repeat_penalty : val[t] * p->repeat_penalty;
    }
  }
  if (!(p->temperature > 0)) {
    size_t best = 0;
    for (size_t i = 1; i < V; i++) best = val[i] > val[best] ? i : best;
    return (int32_t)best;
  }
  for (size_t i = 0; i < V; i++) cand[i] = (int32_t)i;
  size_t n = V;
  if (p->top_k > 0 && (size_t)p->top_k < V) {
    n = top_k_sorted(val, cand, V, (size_t)p->top_k);
  } else if (p->top_p < 1.0f) {
    n = top_k_sorted(val, cand, V, V); /* full sort: only without top-k */
  }
  /* softmax over the candidates with temperature */
  float mx = -INFINITY;
  for (size_t i = 0; i < n; i++) mx = val[cand[i]] > mx ? val[cand[i]] : mx;
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    const float e = expf((val[cand[i]] - mx) / p->temperature);
    val[cand[i]] = e;
    sum += e;
  }
  if (p->top_p < 1.0f && n < V + 1) {
    /* candidates are sorted descending here (top-k or full sort) */
    double acc = 0;
    size_t keep = n;
    for (size_t i = 0; i < n; i++) {
      acc += val[cand[i]] / sum;
      if (acc >= p->top_p) {
        keep = i + 1;
        break;
      }
    }
    double new_sum = 0;
    for (size_t i = 0; i < keep; i++) new_sum += val[cand[i]];
    n = keep;
    sum = new_sum;
  }
  const double r = next_uniform(&p->seed) * sum;
  double acc = 0;
  for (size_t i = 0; i < n; i++) {
    acc += val[cand[i]];
    if (r < acc) return cand[i];
  }
  return cand[n - 1];
}
