/* tools/sparrow/cmd_bench.c — `sparrow bench MODEL [--runs N] [--json]`:
 * whole-model latency on random input (vision models). */
#include <stdio.h>
#include <stdlib.h>

#include "platform/time.h"
#include "sparrow/llm.h"
#include "tools/sparrow/cli.h"
#include "tools/sparrow/llm_cli.h"

/* Bytes of weights one decoded token reads: every matrix once, the embedding
 * table only for its one row (unless it doubles as the output matrix). */
static double decode_weight_bytes(const struct spr_model *m, const struct spr_llm_info *info) {
  const struct spr_gguf *g = spr_model_gguf(m);
  double total = 0;
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    if (spr_gguf_tensor_at(g, i, &t) != SPR_STATUS_OK) break;
    if (spr_gguf_str_eq(t.name, "token_embd.weight"))
      total += info->tied_output ? (double)t.nbytes : (double)t.nbytes / (double)info->n_vocab;
    else
      total += (double)t.nbytes;
  }
  return total;
}

static int bench_llm(const char *path, const struct cli_common *c, struct cli_llm_opts *lo, int n_prompt, int n_gen,
                     int runs, bool json) {
  if (n_prompt < 1 || n_gen < 1) return cli_fail("--prompt and --gen must be at least 1");
  if (lo->ctx == 0) lo->ctx = n_prompt + n_gen;
  struct cli_session cs;
  struct spr_llm_info info;
  const int llm_rc = cli_llm_open(path, c, lo, &cs, &info);
  if (llm_rc != 0) return llm_rc;
  int32_t *tok = malloc((size_t)(n_prompt + n_gen) * sizeof(int32_t));
  uint32_t seed = 7;
  for (int i = 0; i < n_prompt + n_gen; i++) {
    seed = seed * 1664525u + 1013904223u;
    tok[i] = (int32_t)((seed >> 8) % info.n_vocab);
  }
  double *pre = malloc((size_t)runs * sizeof(double)), *dec = malloc((size_t)runs * sizeof(double));
  int rc = 0;
  for (int r = -1; r < runs && rc == 0; r++) { /* r = -1: warm-up */
    spr_llm_reset(cs.session);
    const uint64_t t0 = spr_time_ns();
    enum spr_status s = spr_llm_eval(cs.session, tok, (size_t)n_prompt, NULL);
    const uint64_t t1 = spr_time_ns();
    for (int i = 0; i < n_gen && s == SPR_STATUS_OK; i++) s = spr_llm_eval(cs.session, &tok[n_prompt + i], 1, NULL);
    const uint64_t t2 = spr_time_ns();
    if (s != SPR_STATUS_OK) rc = cli_fail_status(s, NULL, "eval");
    if (r >= 0) {
      pre[r] = (double)n_prompt / ((double)(t1 - t0) * 1e-9);
      dec[r] = (double)n_gen / ((double)(t2 - t1) * 1e-9);
    }
  }
  if (rc == 0) {
    const double p = cli_median(pre, (size_t)runs), d = cli_median(dec, (size_t)runs);
    const double bytes = decode_weight_bytes(cs.model, &info);
    if (json) {
      printf("{\"model\": ");
      cli_json_str(stdout, path);
      printf(", \"threads\": %d, \"prompt\": %d, \"gen\": %d, \"runs\": %d, \"prefill_tok_s\": %.3f, "
             "\"decode_tok_s\": %.3f, \"decode_weight_bytes_per_token\": %.0f, \"decode_gb_s\": %.3f, "
             "\"arena_bytes\": %zu, \"weights_bytes\": %zu}\n",
             c->threads, n_prompt, n_gen, runs, p, d, bytes, bytes * d / 1e9, cs.plan.arena_bytes,
             cs.plan.weights_bytes);
    } else {
      printf("%s: prefill %.2f tok/s (%d tokens), decode %.2f tok/s (%d tokens), %d thread(s), median of %d\n", path,
             p, n_prompt, d, n_gen, c->threads, runs);
      printf("decode reads %.1f MB of weights per token = %.2f GB/s; arena %zu bytes, weights %zu bytes\n",
             bytes / 1e6, bytes * d / 1e9, cs.plan.arena_bytes, cs.plan.weights_bytes);
    }
  }
  free(tok);
  free(pre);
  free(dec);
  cli_close(&cs);
  return rc;
}

int cmd_bench(int argc, char **argv) {
  int runs = 0, warmup = 3, image = 0, n_prompt = 64, n_gen = 128;
  bool json = false;
  struct cli_llm_opts lo = {0};
  const struct cli_opt opts[] = {
      {"prompt", CLI_INT, &n_prompt, "N", "LLM: prompt tokens (prefill) per run (default 64)"},
      {"gen", CLI_INT, &n_gen, "N", "LLM: decoded tokens per run (default 128)"},
      CLI_LLM_OPTS(lo),
      {"runs", CLI_INT, &runs, "N", "timed runs (default: about 2 s worth, 10..1000)"},
      {"warmup", CLI_INT, &warmup, "N", "untimed runs first (default 3)"},
      {"image", CLI_INT, &image, "N", "vision: input side (default: the model's)"},
      {"json", CLI_FLAG, &json, NULL,
       "print JSON (vision: \"median_ms\", \"min_ms\", \"gflops\"; LLM: \"prefill_tok_s\", \"decode_tok_s\")"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[1];
  int n_pos;
  const int r = cli_parse(argc, argv, "sparrow bench MODEL [--runs N] [--json] [--prompt N --gen N]",
                          "Vision models: runs MODEL on random input and reports the median and minimum latency of\n"
                          "whole runs, and GFLOP/s from the ops' own flop counts. LLMs: evaluates --prompt random\n"
                          "tokens (prefill) then decodes --gen tokens one at a time, and reports both rates (median\n"
                          "of --runs, default 3) and the weight bytes a decoded token reads. Weights stay in the\n"
                          "file mapping; the arena is allocated once at the planned size.",
                          opts, &c, pos, 1, 1, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  if (runs < 0 || warmup < 0) return cli_fail("--runs and --warmup must not be negative");
  {
    struct spr_model *probe = NULL;
    struct spr_error err;
    const enum spr_status s = spr_model_load_file(pos[0], NULL, &probe, &err);
    if (s != SPR_STATUS_OK) return cli_fail_status(s, &err, pos[0]);
    const bool is_llm = spr_llm_info(probe, &(struct spr_llm_info){0}) == SPR_STATUS_OK;
    spr_model_free(probe);
    if (is_llm) return bench_llm(pos[0], &c, &lo, n_prompt, n_gen, runs > 0 ? runs : 3, json);
  }
  struct spr_config cfg;
  cli_config(&c, &cfg);
  cfg.image_size = image;
  struct cli_session cs;
  const int open_rc = cli_open(pos[0], &cfg, c.arena_bytes, &cs);
  if (open_rc != 0) return open_rc;
  for (uint32_t i = 0; i < spr_session_n_inputs(cs.session); i++) {
    struct spr_tensor_view in;
    spr_session_input(cs.session, i, &in);
    float *x = in.data;
    uint32_t seed = 12345u + i;
    for (size_t k = 0; k < in.nbytes / sizeof(float); k++) {
      seed = seed * 1664525u + 1013904223u;
      x[k] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
  }
  double flops = 0;
  for (uint32_t i = 0; i < spr_session_n_nodes(cs.session); i++) {
    struct spr_node_info info;
    spr_session_node(cs.session, i, &info);
    flops += (double)info.flops;
  }
  for (int i = 0; i < warmup; i++) spr_session_run(cs.session);
  if (runs == 0) {
    const uint64_t t0 = spr_time_ns();
    spr_session_run(cs.session);
    const double one = (double)(spr_time_ns() - t0) * 1e-9;
    runs = one > 0 ? (int)(2.0 / one) : 1000;
    runs = runs < 10 ? 10 : runs > 1000 ? 1000 : runs;
  }
  double *ms = malloc((size_t)runs * sizeof *ms);
  if (ms == NULL) {
    cli_close(&cs);
    return cli_fail("out of memory");
  }
  for (int i = 0; i < runs; i++) {
    const uint64_t t0 = spr_time_ns();
    spr_session_run(cs.session);
    ms[i] = (double)(spr_time_ns() - t0) * 1e-6;
  }
  const double med = cli_median(ms, (size_t)runs), mn = ms[0];
  free(ms);
  const double gflops = flops / (med * 1e-3) / 1e9;
  if (json) {
    printf("{\"model\": ");
    cli_json_str(stdout, pos[0]);
    printf(", \"arch\": \"%s\", \"threads\": %d, \"runs\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, "
           "\"gflop\": %.4f, \"gflops\": %.2f, \"arena_bytes\": %zu, \"weights_bytes\": %zu}\n",
           spr_model_arch(cs.model), c.threads, runs, med, mn, flops / 1e9, gflops, cs.plan.arena_bytes,
           cs.plan.weights_bytes);
  } else {
    printf("%s (%s): median %.3f ms, min %.3f ms over %d runs, %d thread(s); %.3f GFLOP per run = %.1f GFLOP/s\n",
           pos[0], spr_model_arch(cs.model), med, mn, runs, c.threads, flops / 1e9, gflops);
    printf("arena %zu bytes, weights %zu bytes (mapped)\n", cs.plan.arena_bytes, cs.plan.weights_bytes);
  }
  cli_close(&cs);
  return 0;
}
