/* tools/sparrow/cmd_generate.c — `sparrow generate` and `sparrow perplexity`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/time.h"
#include "sparrow/llm.h"
#include "tools/sparrow/cli.h"
#include "tools/sparrow/llm_cli.h"

int cli_llm_open(const char *path, const struct cli_common *c, struct cli_llm_opts *o, struct cli_session *cs,
                 struct spr_llm_info *info) {
  struct spr_config cfg;
  cli_config(c, &cfg);
  if (o->ctx < 0 || o->batch < 0 || o->window < 0 || o->sinks < 0)
    return cli_fail("--ctx, --batch, --window and --sinks must not be negative");
  if (o->sinks > 0 && o->window == 0) return cli_fail("--sinks needs --window");
  cfg.ctx = o->ctx;
  cfg.batch = o->batch;
  cfg.window = o->window;
  cfg.sinks = o->sinks;
  cfg.kv_f32 = o->kv_f32_flag;
  cfg.logits_all = o->logits_all;
  if (cli_sparse_ffn_parse(o->sparse_ffn, &cfg) != 0) return 1;
  o->cfg = cfg;
  const int open_rc = cli_open(path, &cfg, c->arena_bytes, cs);
  if (open_rc != 0) return open_rc;
  if (spr_llm_info(cs->model, info) != SPR_STATUS_OK) {
    const int rc = cli_fail("%s is a %s model, not a language model", path, spr_model_arch(cs->model));
    cli_close(cs);
    return rc;
  }
  return 0;
}

int cli_llm_tokenize(const struct cli_session *cs, const char *text, bool add_bos, int32_t **tokens, size_t *n) {
  const size_t len = strlen(text);
  const size_t work_bytes = spr_llm_tokenize_work_bytes(cs->model, len);
  void *work = NULL;
  if (posix_memalign(&work, 64, work_bytes ? work_bytes : 64) != 0) return cli_fail("out of memory");
  const size_t max = len + 8;
  *tokens = malloc(max * sizeof(int32_t));
  if (*tokens == NULL) {
    free(work);
    return cli_fail("out of memory");
  }
  enum spr_status s = spr_llm_tokenize(cs->model, text, len, add_bos, *tokens, max, n, work, work_bytes);
  if (s == SPR_STATUS_CAPACITY) { /* bytes that are not UTF-8 can take a token each after escaping */
    int32_t *more = realloc(*tokens, *n * sizeof(int32_t));
    if (more == NULL) {
      free(work);
      return cli_fail("out of memory");
    }
    *tokens = more;
    s = spr_llm_tokenize(cs->model, text, len, add_bos, *tokens, *n, n, work, work_bytes);
  }
  free(work);
  if (s == SPR_STATUS_UNSUPPORTED) return cli_fail("this model has no tokenizer (tokenizer.ggml.* metadata)");
  if (s != SPR_STATUS_OK) return cli_fail_status(s, NULL, "tokenize");
  return 0;
}

const char *cli_default_llm_model(void) {
  static const char *const candidates[] = {SPR_SOURCE_DIR "/models/llm-kjv.gguf", "models/llm-kjv.gguf"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    FILE *f = fopen(candidates[i], "rb");
    if (f != NULL) {
      fclose(f);
      return candidates[i];
    }
  }
  return candidates[0];
}

/* strip_space: the first piece of a text SentencePiece started with its
 * visible space (an empty prompt); the space is not part of the text. */
static void print_piece(const struct cli_session *cs, int32_t tok, bool strip_space) {
  char buf[256];
  size_t n = 0;
  if (spr_llm_token_piece(cs->model, tok, buf, sizeof buf, &n) != SPR_STATUS_OK) return;
  const size_t skip = strip_space && n > 0 && buf[0] == ' ' ? 1 : 0;
  fwrite(buf + skip, 1, n - skip, stdout);
}

static void print_json(const struct cli_session *cs, const int32_t *hist, size_t n_prompt, size_t n_hist,
                       double prompt_s, double gen_s) {
  printf("{\"prompt_ids\": [");
  for (size_t i = 0; i < n_prompt; i++) printf(i ? ", %d" : "%d", hist[i]);
  printf("], \"ids\": [");
  for (size_t i = n_prompt; i < n_hist; i++) printf(i > n_prompt ? ", %d" : "%d", hist[i]);
  printf("], \"text\": ");
  size_t len = 0;
  for (size_t i = n_prompt; i < n_hist; i++) {
    size_t k = 0;
    spr_llm_token_piece(cs->model, hist[i], NULL, 0, &k);
    len += k;
  }
  char *text = malloc(len + 1);
  size_t used = 0;
  for (size_t i = n_prompt; text != NULL && i < n_hist; i++) {
    size_t k = 0;
    if (spr_llm_token_piece(cs->model, hist[i], text + used, len - used, &k) == SPR_STATUS_OK) used += k;
  }
  if (text != NULL) text[used] = '\0';
  cli_json_str(stdout, text != NULL ? text : "");
  free(text);
  printf(", \"prompt_s\": %.6f, \"gen_s\": %.6f}\n", prompt_s, gen_s);
}

int cmd_generate(int argc, char **argv) {
  const char *prompt = "";
  int n_predict = 64;
  bool no_bos = false, quiet = false, json = false;
  struct spr_sampler sp;
  spr_sampler_init(&sp);
  int top_k = sp.top_k, seed = 1, last_n = sp.repeat_last_n;
  float temp = sp.temperature, top_p = sp.top_p, rep = sp.repeat_penalty;
  struct cli_llm_opts lo = {0};
  const struct cli_opt opts[] = {
      {"p|prompt", CLI_STR, &prompt, "TEXT", "prompt (empty: start from BOS alone)"},
      {"n|n-predict", CLI_INT, &n_predict, "N", "tokens to generate (default 64; stops early at EOS)"},
      {"temp", CLI_FLOAT, &temp, "T", "temperature (default 0.8; 0 = greedy)"},
      {"top-k", CLI_INT, &top_k, "K", "sample among the K most likely tokens (default 40; 0 = off)"},
      {"top-p", CLI_FLOAT, &top_p, "P", "nucleus sampling (default 0.95; 1 = off)"},
      {"repeat-penalty", CLI_FLOAT, &rep, "R", "penalize repeated tokens (default 1.0 = off)"},
      {"repeat-last-n", CLI_INT, &last_n, "N", "history the penalty looks at (default 64)"},
      {"seed", CLI_INT, &seed, "S", "random seed (default 1)"},
      {"no-bos", CLI_FLAG, &no_bos, NULL, "do not put BOS before the prompt"},
      {"quiet", CLI_FLAG, &quiet, NULL, "print only the generated text"},
      {"json", CLI_FLAG, &json, NULL, "print one JSON object instead (\"prompt_ids\", \"ids\", \"text\", timings)"},
      CLI_LLM_OPTS(lo),
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[1];
  int n_pos;
  const int r = cli_parse(argc, argv, "sparrow generate [MODEL] -p TEXT [-n N] [--temp T] [--top-k K] [--top-p P]",
                          "Generates text, streaming tokens as they come. Without MODEL the bundled model is used.\n"
                          "The prompt is evaluated in steps of --batch tokens (GEMM), then one token at a time\n"
                          "(GEMV); generation stops at EOS or after -n tokens.",
                          opts, &c, pos, 0, 1, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  if (n_predict < 0) return cli_fail("-n must not be negative");
  if (top_k < 0 || !(top_p > 0) || !(rep > 0) || last_n < 0 || temp < 0)
    return cli_fail("sampling options out of range (top-k >= 0, top-p > 0, repeat-penalty > 0, temp >= 0)");
  const char *path = n_pos == 1 ? pos[0] : cli_default_llm_model();
  struct cli_session cs;
  struct spr_llm_info info;
  const int llm_rc = cli_llm_open(path, &c, &lo, &cs, &info);
  if (llm_rc != 0) return llm_rc;
  if (json) quiet = true;
  if (!quiet) cli_sparse_ffn_report(&cs, &lo.cfg, stderr);
  int32_t *prompt_tok = NULL;
  size_t n_prompt = 0;
  int rc = 0;
  if (!info.has_tokenizer) {
    rc = cli_fail("%s has no tokenizer (tokenizer.ggml.* metadata): cannot generate text", path);
    goto done;
  }
  if (cli_llm_tokenize(&cs, prompt, !no_bos, &prompt_tok, &n_prompt) != 0) {
    rc = 1;
    goto done;
  }
  if (n_prompt == 0) {
    rc = cli_fail("the prompt is empty and the model has no BOS token to start from");
    goto done;
  }
  const uint32_t cap = spr_llm_capacity(cs.session);
  if (cap != UINT32_MAX && n_prompt > cap) {
    rc = cli_fail("the prompt has %zu tokens but the context holds %u (raise --ctx or use --window)", n_prompt, cap);
    goto done;
  }
  const size_t total = n_prompt + (size_t)n_predict;
  int32_t *hist = malloc((total ? total : 1) * sizeof(int32_t));
  if (hist == NULL) {
    rc = cli_fail("out of memory");
    goto done;
  }
  memcpy(hist, prompt_tok, n_prompt * sizeof(int32_t));
  size_t n_hist = n_prompt;
  sp.temperature = temp;
  sp.top_k = top_k;
  sp.top_p = top_p;
  sp.repeat_penalty = rep;
  sp.repeat_last_n = last_n;
  sp.seed = (uint64_t)seed;
  if (!quiet) fputs(prompt, stdout);
  fflush(stdout);
  const uint64_t t0 = spr_time_ns();
  enum spr_status s = spr_llm_eval(cs.session, prompt_tok, n_prompt, NULL);
  const uint64_t t1 = spr_time_ns();
  int generated = 0;
  for (; s == SPR_STATUS_OK && generated < n_predict; generated++) {
    const int32_t tok = spr_llm_sample(cs.session, &sp, hist, n_hist);
    if (tok == info.eos) break;
    hist[n_hist++] = tok;
    if (!json) print_piece(&cs, tok, generated == 0 && prompt[0] == '\0');
    fflush(stdout);
    if (cap != UINT32_MAX && spr_llm_position(cs.session) >= cap) {
      fprintf(stderr, "\n[context of %u tokens is full]", cap);
      generated++;
      break;
    }
    if (generated + 1 < n_predict) s = spr_llm_eval(cs.session, &tok, 1, NULL);
  }
  const uint64_t t2 = spr_time_ns();
  if (!json) printf("\n");
  if (s != SPR_STATUS_OK) rc = cli_fail_status(s, NULL, "eval");
  if (json && rc == 0) print_json(&cs, hist, n_prompt, n_hist, (double)(t1 - t0) * 1e-9, (double)(t2 - t1) * 1e-9);
  if (!quiet && rc == 0) {
    const double pre = (double)(t1 - t0) * 1e-9, gen = (double)(t2 - t1) * 1e-9;
    fprintf(stderr,
            "prompt: %zu tokens in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.1f tok/s); arena %zu bytes\n",
            n_prompt, pre, n_prompt / (pre > 0 ? pre : 1e-9), generated, gen, generated / (gen > 0 ? gen : 1e-9),
            cs.plan.arena_bytes);
  }
  free(hist);
done:
  free(prompt_tok);
  cli_close(&cs);
  return rc;
}

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  size_t got;
  while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      cap *= 2;
      char *nb = realloc(buf, cap + 1);
      if (nb == NULL) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (buf != NULL) buf[n] = '\0';
  *len = n;
  return buf;
}

/* Accumulates -log p(next token) over the positions of tok[0..n) whose next
 * token index is >= score_from. n_first: 0 feeds the tokens in batch-sized
 * steps (logits of every row); otherwise tok[0..n_first) is one call (a
 * prefill: with a sparse FFN, the selection window) and the rest one token
 * per call (decode steps). */
struct ppl_acc {
  double nll;
  size_t count, top1;
};

static int score_tokens(struct cli_session *cs, const int32_t *tok, size_t n, size_t n_first, size_t score_from,
                        size_t V, struct ppl_acc *acc) {
  spr_llm_reset(cs->session);
  const size_t batch = (size_t)spr_llm_batch(cs->session);
  for (size_t done = 0; done < n;) {
    size_t step = n - done < batch ? n - done : batch;
    if (n_first > 0) step = done == 0 ? (n_first < n ? n_first : n) : 1;
    const float *lg = NULL;
    const enum spr_status s = spr_llm_eval(cs->session, tok + done, step, &lg);
    if (s != SPR_STATUS_OK) return cli_fail_status(s, NULL, "eval");
    for (size_t i = 0; i < step; i++) {
      const size_t next = done + i + 1;
      if (next >= n) break;
      if (next < score_from) continue;
      const float *row = lg + i * V;
      size_t best = 0;
      for (size_t k = 1; k < V; k++) best = row[k] > row[best] ? k : best;
      const float mx = row[best];
      double sum = 0;
      for (size_t k = 0; k < V; k++) sum += exp((double)row[k] - mx);
      acc->nll += -((double)row[tok[next]] - mx - log(sum));
      acc->count++;
      acc->top1 += (int32_t)best == tok[next];
    }
    done += step;
  }
  return 0;
}

/* "1 5 9 | 3 4" per line: prompt ids, then the scored continuation. */
static int score_id_lines(struct cli_session *cs, char *text, size_t V, struct ppl_acc *acc) {
  int32_t *tok = NULL;
  size_t cap = 0;
  int rc = 0;
  for (char *line = text; line != NULL && *line != '\0' && rc == 0;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL) *nl = '\0';
    size_t n = 0, n_prompt = 0;
    bool bar = false;
    for (char *p = line; *p != '\0';) {
      if (*p == ' ' || *p == '\t' || *p == '\r') {
        p++;
      } else if (*p == '|') {
        n_prompt = n;
        bar = true;
        p++;
      } else {
        char *end = NULL;
        const long v = strtol(p, &end, 10);
        if (end == p || v < 0 || (size_t)v >= V) {
          rc = cli_fail("--ids: bad token id near '%.16s'", p);
          break;
        }
        if (n == cap) {
          cap = cap ? 2 * cap : 256;
          int32_t *nt = realloc(tok, cap * sizeof(int32_t));
          if (nt == NULL) {
            rc = cli_fail("out of memory");
            break;
          }
          tok = nt;
        }
        tok[n++] = (int32_t)v;
        p = end;
      }
    }
    if (rc == 0 && n > 0) {
      if (!bar || n_prompt == 0) rc = cli_fail("--ids: each line needs PROMPT_IDS | CONTINUATION_IDS");
      if (rc == 0 && spr_llm_capacity(cs->session) != UINT32_MAX && n > spr_llm_capacity(cs->session))
        rc = cli_fail("--ids: a line of %zu tokens exceeds the context (--ctx)", n);
      if (rc == 0) rc = score_tokens(cs, tok, n, n_prompt, n_prompt, V, acc);
    }
    line = nl != NULL ? nl + 1 : NULL;
  }
  free(tok);
  return rc;
}

int cmd_perplexity(int argc, char **argv) {
  int max_tokens = 0, prompt_tokens = 64;
  bool json = false, ids = false;
  struct cli_llm_opts lo = {0};
  const struct cli_opt opts[] = {
      {"max-tokens", CLI_INT, &max_tokens, "N", "only the first N tokens of the text"},
      {"json", CLI_FLAG, &json, NULL, "print JSON (fields \"ppl\", \"tokens\", \"nll\", \"top1\")"},
      {"ids", CLI_FLAG, &ids, NULL,
       "TEXTFILE holds token ids, one sequence per line: PROMPT_IDS | CONTINUATION_IDS; the prompt is one\n"
       "prefill, the continuation is decoded token by token and scored"},
      {"prompt-tokens", CLI_INT, &prompt_tokens, "N",
       "with --sparse-ffn on text: each window's first N tokens are one prefill (the selection), the rest\n"
       "are decoded one token per step (default 64)"},
      CLI_LLM_OPTS(lo),
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[2];
  int n_pos;
  const int r = cli_parse(argc, argv, "sparrow perplexity MODEL TEXTFILE [--ctx N] [--ids] [--sparse-ffn SPEC]",
                          "Perplexity of MODEL on a UTF-8 text: the text is tokenized (with BOS) and cut into\n"
                          "windows of --ctx tokens; every token after the first of a window is predicted from\n"
                          "the tokens before it in that window. Prints `perplexity: X over N tokens` and the\n"
                          "fraction of positions whose arg-max is the next token (top-1).",
                          opts, &c, pos, 2, 2, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  if (prompt_tokens < 1) return cli_fail("--prompt-tokens must be at least 1");
  size_t len = 0;
  char *text = read_text(pos[1], &len);
  if (text == NULL) return cli_fail("cannot read %s", pos[1]);
  lo.logits_all = 1;
  struct cli_session cs;
  struct spr_llm_info info;
  if (cli_llm_open(pos[0], &c, &lo, &cs, &info) != 0) {
    free(text);
    return 1;
  }
  const bool sparse = lo.cfg.sparse_ffn_beta > 0.0f;
  const size_t V = info.n_vocab;
  struct ppl_acc acc = {0, 0, 0};
  int32_t *tok = NULL;
  size_t n_tok = 0;
  int rc = 0;
  const uint64_t t0 = spr_time_ns();
  if (ids) {
    rc = score_id_lines(&cs, text, V, &acc);
  } else if (cli_llm_tokenize(&cs, text, true, &tok, &n_tok) != 0) {
    rc = 1;
  } else {
    if (max_tokens > 0 && (size_t)max_tokens < n_tok) n_tok = (size_t)max_tokens;
    const uint32_t cap = spr_llm_capacity(cs.session);
    const size_t win = cap == UINT32_MAX ? n_tok : cap;
    for (size_t start = 0; start + 1 < n_tok && rc == 0; start += win) {
      const size_t n = n_tok - start < win ? n_tok - start : win;
      rc = score_tokens(&cs, tok + start, n, sparse ? (size_t)prompt_tokens : 0, 1, V, &acc);
    }
  }
  const double secs = (double)(spr_time_ns() - t0) * 1e-9;
  if (rc == 0) {
    const double ppl = exp(acc.nll / (acc.count ? (double)acc.count : 1.0));
    const double top1 = acc.count ? (double)acc.top1 / (double)acc.count : 0.0;
    if (json)
      printf("{\"ppl\": %.6f, \"tokens\": %zu, \"nll\": %.6f, \"top1\": %.6f, \"seconds\": %.3f}\n", ppl, acc.count,
             acc.nll, top1, secs);
    else
      printf("perplexity: %.4f over %zu tokens, top-1 %.4f (%.1f tok/s)\n", ppl, acc.count, top1,
             acc.count / (secs > 0 ? secs : 1e-9));
  }
  free(tok);
  free(text);
  cli_close(&cs);
  return rc;
}
