/* tools/sparrow/cmd_bench.c — `sparrow bench MODEL [--runs N] [--json]`:
 * whole-model latency on random input (vision models). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/time.h"
#include "sparrow/llm.h"
#include "tools/sparrow/cli.h"
#include "tools/sparrow/llm_cli.h"
#include "tools/sparrow/read_roof.h"

/* One LLM configuration under test: its session, token rates per run. */
struct llm_case {
  struct cli_session cs;
  struct cli_llm_opts lo;
  struct spr_llm_info info;
  struct spr_llm_traffic tr;
  double *pre, *dec;
};

/* A reset and the prefill of case k; its time into *ns. */
static enum spr_status prefill(struct llm_case *k, const int32_t *tok, int n_prompt, uint64_t *ns) {
  spr_llm_reset(k->cs.session);
  const uint64_t t0 = spr_time_ns();
  const enum spr_status s = spr_llm_eval(k->cs.session, tok, (size_t)n_prompt, NULL);
  *ns = spr_time_ns() - t0;
  return s;
}

/* Decodes tokens [from, to) of the generated part one at a time; adds the time to *ns. */
static enum spr_status decode(struct llm_case *k, const int32_t *gen_tok, int from, int to, uint64_t *ns) {
  enum spr_status s = SPR_STATUS_OK;
  const uint64_t t0 = spr_time_ns();
  for (int j = from; j < to && s == SPR_STATUS_OK; j++) s = spr_llm_eval(k->cs.session, &gen_tok[j], 1, NULL);
  *ns += spr_time_ns() - t0;
  return s;
}

/* One run of each case, rates into run r (r < 0: warm-up). every == 0: whole
 * runs, one case after the other. every > 0 (--interleave, two cases): the
 * prefills A B B A, then the decodes alternating every `every` tokens, so that
 * the two rates see the same seconds of the machine (on a shared host, whole
 * runs a second or two apart can meet bandwidths that differ by 2x); the
 * case that goes first (A, and each pair of decode blocks) swaps from run to
 * run, so that neither is always the one timed before a change of the host's
 * state. */
static int run_cases(struct llm_case *k, int n_cases, const int32_t *tok, int n_prompt, int n_gen, int r, int every) {
  uint64_t pre[2] = {0, 0}, dec[2] = {0, 0};
  const int n_pre = every > 0 && n_cases > 1 ? 2 : 1; /* prefills per case and run */
  enum spr_status s = SPR_STATUS_OK;
  if (every == 0 || n_cases == 1) {
    for (int i = 0; i < n_cases && s == SPR_STATUS_OK; i++) {
      s = prefill(&k[i], tok, n_prompt, &pre[i]);
      if (s == SPR_STATUS_OK) s = decode(&k[i], tok + n_prompt, 0, n_gen, &dec[i]);
    }
  } else {
    const int first = r & 1; /* r = -1 (warm-up): case 1 first */
    /* the prefills in the order A B B A, each case's time the sum of its two:
     * a prefill run right after the other case's was measured 4-9 % slower
     * than one run first (2026-11-30), so with one prefill each the case that
     * went first in more of the runs had the better median */
    for (int j = 0; j < 2 * n_cases && s == SPR_STATUS_OK; j++) {
      const int i = (j < n_cases ? j + first : 2 * n_cases - 1 - j + first) % n_cases;
      uint64_t t = 0;
      s = prefill(&k[i], tok, n_prompt, &t);
      pre[i] += t;
    }
    for (int g = 0; g < n_gen && s == SPR_STATUS_OK; g += every)
      for (int j = 0; j < n_cases && s == SPR_STATUS_OK; j++) {
        const int i = (j + first) % n_cases;
        s = decode(&k[i], tok + n_prompt, g, n_gen - g < every ? n_gen : g + every, &dec[i]);
      }
  }
  if (s != SPR_STATUS_OK) return cli_fail_status(s, NULL, "eval");
  if (r >= 0)
    for (int i = 0; i < n_cases; i++) {
      k[i].pre[r] = (double)n_prompt * n_pre / ((double)pre[i] * 1e-9);
      k[i].dec[r] = (double)n_gen / ((double)dec[i] * 1e-9);
    }
  return 0;
}

/* --recache: drops the file's clean pages from the page cache and reads it
 * once from start to end, so that the files a comparison maps are cached
 * the same way. Why: how a file came into the cache (written in small
 * pieces, or read in one sequential pass, which on Linux 6.x with ext4 gets
 * large folios) moved this host's dense decode by 30 % (docs/coreinfer.md).
 * Affects other processes that read the file; a benchmark option only. */
static int recache(const char *path) {
  const int fd = open(path, O_RDONLY);
  if (fd < 0) return cli_fail("--recache: cannot open %s", path);
  int rc =
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 ? 0 : cli_fail("--recache: posix_fadvise failed on %s", path);
  enum { CHUNK = 1 << 20 };
  char *buf = rc == 0 ? malloc(CHUNK) : NULL;
  if (rc == 0 && buf == NULL) rc = cli_fail("out of memory");
  while (rc == 0) {
    const ssize_t n = read(fd, buf, CHUNK);
    if (n == 0) break;
    if (n < 0) rc = cli_fail("--recache: cannot read %s", path);
  }
  free(buf);
  close(fd);
  return rc;
}

/* The weight bytes a decoded token reads: the traffic model of sparrow/llm.h. */
static double case_bytes(const struct llm_case *k) {
  return k->lo.cfg.sparse_ffn_beta > 0.0f ? k->tr.sparse : k->tr.dense;
}

/* The first token whose text contains '.' (-1: none). */
static int32_t period_token(const struct spr_model *m, uint32_t n_vocab) {
  for (uint32_t id = 0; id < n_vocab; id++) {
    char buf[64];
    size_t n = 0;
    if (spr_llm_token_piece(m, (int32_t)id, buf, sizeof buf, &n) != SPR_STATUS_OK || n > sizeof buf) continue;
    if (memchr(buf, '.', n) != NULL) return (int32_t)id;
  }
  return -1;
}

static int bench_llm(const char *path, const struct cli_common *c, struct cli_llm_opts *lo, int n_prompt, int n_gen,
                     int runs, bool json, bool compare_dense, const char *dense_path, int sentence, bool roof,
                     int interleave, bool re_cache) {
  if (n_prompt < 1 || n_gen < 1) return cli_fail("--prompt and --gen must be at least 1");
  if (lo->ctx == 0) lo->ctx = n_prompt + n_gen;
  /* case 0: as configured; case 1 (--compare-dense): the same without --sparse-ffn (from --dense-model
   * when given, e.g. the plain GGUF the sparse layout was made from), runs interleaved */
  struct llm_case k[2];
  memset(k, 0, sizeof k);
  const int n_cases = compare_dense ? 2 : 1;
  k[0].lo = *lo;
  k[1].lo = *lo;
  k[1].lo.sparse_ffn = NULL;
  int rc = 0, opened = 0;
  if (re_cache) {
    rc = recache(path);
    if (rc == 0 && compare_dense && dense_path != NULL) rc = recache(dense_path);
  }
  for (; opened < n_cases && rc == 0; opened++) {
    const char *file = opened == 1 && dense_path != NULL ? dense_path : path;
    const int open_rc = cli_llm_open(file, c, &k[opened].lo, &k[opened].cs, &k[opened].info);
    if (open_rc != 0) {
      rc = open_rc;
      break;
    }
    if (opened == 1 && k[1].info.n_vocab != k[0].info.n_vocab) {
      rc =
          cli_fail("--dense-model %s has %u tokens, %s has %u", dense_path, k[1].info.n_vocab, path, k[0].info.n_vocab);
      opened++; /* closed below */
      break;
    }
    spr_llm_decode_traffic(k[opened].cs.model, &k[opened].lo.cfg, &k[opened].tr);
    k[opened].pre = calloc((size_t)runs, sizeof(double));
    k[opened].dec = calloc((size_t)runs, sizeof(double));
    if (k[opened].pre == NULL || k[opened].dec == NULL) rc = cli_fail("out of memory");
  }
  int32_t *tok = malloc((size_t)(n_prompt + n_gen) * sizeof(int32_t));
  if (rc == 0 && tok == NULL) rc = cli_fail("out of memory");
  if (rc == 0) {
    if (!json) cli_sparse_ffn_report(&k[0].cs, &k[0].lo.cfg, stdout);
    uint32_t seed = 7;
    for (int i = 0; i < n_prompt + n_gen; i++) {
      seed = seed * 1664525u + 1013904223u;
      tok[i] = (int32_t)((seed >> 8) % k[0].info.n_vocab);
    }
    if (sentence > 0) { /* every sentence-th decoded token ends a sentence (reselect=sentence's trigger) */
      const int32_t dot = period_token(k[0].cs.model, k[0].info.n_vocab);
      if (dot < 0) rc = cli_fail("--sentence: the vocabulary has no token with '.'");
      for (int i = sentence - 1; i < n_gen && rc == 0; i += sentence) tok[n_prompt + i] = dot;
      if (rc == 0 && !json)
        printf("decode: token %d ('.') every %d tokens (%d sentence ends per run)\n", dot, sentence, n_gen / sentence);
    }
  }
  /* --roof: a streaming read of the file's first bytes-per-token bytes after every run */
  struct read_roof *rr = NULL;
  double *roof_gbs = NULL;
  if (rc == 0 && roof) {
    rr = read_roof_open(path, (size_t)case_bytes(&k[0]), c->threads);
    roof_gbs = calloc((size_t)runs, sizeof(double));
    if (rr == NULL || roof_gbs == NULL) rc = cli_fail("--roof: cannot set up the read measurement");
  }
  for (int r = -1; r < runs && rc == 0; r++) { /* r = -1: warm-up */
    rc = run_cases(k, n_cases, tok, n_prompt, n_gen, r, interleave);
    if (rc == 0 && rr != NULL) {
      const double g = read_roof_measure(rr);
      if (r >= 0) roof_gbs[r] = g;
    }
  }
  const double roof_med = rc == 0 && rr != NULL ? cli_median(roof_gbs, (size_t)runs) : 0.0;
  read_roof_close(rr);
  free(roof_gbs);
  if (rc == 0) {
    double p[2], d[2];
    for (int i = 0; i < n_cases; i++) {
      p[i] = cli_median(k[i].pre, (size_t)runs);
      d[i] = cli_median(k[i].dec, (size_t)runs);
    }
    const struct cli_session *cs = &k[0].cs;
    const double bytes = case_bytes(&k[0]);
    if (json) {
      printf("{\"model\": ");
      cli_json_str(stdout, path);
      printf(
          ", \"threads\": %d, \"prompt\": %d, \"gen\": %d, \"runs\": %d, \"prefill_tok_s\": %.3f, "
          "\"decode_tok_s\": %.3f, \"decode_weight_bytes_per_token\": %.0f, "
          "\"sparse_decode_weight_bytes_per_token\": %.0f, \"sparse_ffn_beta\": %g, \"decode_gb_s\": %.3f, "
          "\"arena_bytes\": %zu, \"weights_bytes\": %zu",
          c->threads, n_prompt, n_gen, runs, p[0], d[0], k[0].tr.dense, k[0].tr.sparse,
          (double)k[0].lo.cfg.sparse_ffn_beta, bytes * d[0] / 1e9, cs->plan.arena_bytes, cs->plan.weights_bytes);
      if (compare_dense)
        printf(
            ", \"dense_prefill_tok_s\": %.3f, \"dense_decode_tok_s\": %.3f, \"decode_speedup\": %.4f, "
            "\"prefill_ratio\": %.4f, \"interleave\": %d",
            p[1], d[1], d[0] / d[1], p[0] / p[1], interleave);
      if (roof)
        printf(", \"read_roof_gb_s\": %.3f, \"decode_roof_fraction\": %.4f", roof_med, bytes * d[0] / 1e9 / roof_med);
      printf("}\n");
    } else {
      printf("%s: prefill %.2f tok/s (%d tokens), decode %.2f tok/s (%d tokens), %d thread(s), median of %d\n", path,
             p[0], n_prompt, d[0], n_gen, c->threads, runs);
      printf("decode reads %.1f MB of weights per token = %.2f GB/s; arena %zu bytes, weights %zu bytes\n", bytes / 1e6,
             bytes * d[0] / 1e9, cs->plan.arena_bytes, cs->plan.weights_bytes);
      if (roof)
        printf(
            "read roof (the same bytes streamed by %d thread(s) between the runs, median): %.2f GB/s; decode at %.0f "
            "%%\n",
            c->threads, roof_med, 100.0 * bytes * d[0] / 1e9 / roof_med);
      if (compare_dense)
        printf("dense%s%s (%s): prefill %.2f tok/s, decode %.2f tok/s; sparse/dense: decode %.3fx, prefill %.3fx\n",
               dense_path != NULL ? " " : "", dense_path != NULL ? dense_path : "",
               interleave > 0 ? "same runs, decode alternating" : "same runs, interleaved", p[1], d[1], d[0] / d[1],
               p[0] / p[1]);
      if (compare_dense && interleave > 0) printf("(the two models' decodes alternated every %d tokens)\n", interleave);
    }
  }
  free(tok);
  for (int i = 0; i < 2; i++) {
    free(k[i].pre);
    free(k[i].dec);
    if (k[i].cs.session != NULL || k[i].cs.model != NULL) cli_close(&k[i].cs);
  }
  return rc;
}

int cmd_bench(int argc, char **argv) {
  int runs = 0, warmup = 3, image = 0, n_prompt = 64, n_gen = 128;
  bool json = false, compare_dense = false, roof = false, re_cache = false;
  const char *dense_model = NULL;
  int sentence = 0, interleave = 0;
  struct cli_llm_opts lo = {0};
  const struct cli_opt opts[] = {
      {"prompt", CLI_INT, &n_prompt, "N", "LLM: prompt tokens (prefill) per run (default 64)"},
      {"gen", CLI_INT, &n_gen, "N", "LLM: decoded tokens per run (default 128)"},
      CLI_LLM_OPTS(lo),
      {"compare-dense", CLI_FLAG, &compare_dense, NULL,
       "LLM with --sparse-ffn: also time the dense model, runs interleaved (the same machine load)"},
      {"dense-model", CLI_STR, &dense_model, "FILE",
       "with --compare-dense: the dense runs use FILE (e.g. the plain GGUF a --sparse-layout file came from)"},
      {"recache", CLI_FLAG, &re_cache, NULL,
       "LLM: first drop MODEL (and --dense-model) from the page cache and read each once from\n"
       "start to end, so that the files compared are cached alike (Linux)"},
      {"interleave", CLI_INT, &interleave, "N",
       "with --compare-dense: in each run, prefill A B B A (each model's prefill rate from its\n"
       "two), then alternate the two models' decode every N tokens;\n"
       "the model that goes first swaps from run to run\n"
       "(default 0: one whole run of each, one after the other)"},
      {"sentence", CLI_INT, &sentence, "N",
       "LLM: every N-th decoded token is a '.' token (sentence ends: what --sparse-ffn ...,reselect=sentence "
       "reacts to)"},
      {"roof", CLI_FLAG, &roof, NULL,
       "LLM: after every run also stream as many bytes of the file as a decoded token reads,\n"
       "with the same threads, and report decode GB/s as a fraction of that read\n"
       "(the bandwidth the machine gives right now; JSON \"read_roof_gb_s\",\n"
       "\"decode_roof_fraction\")"},
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
  if (runs < 0 || warmup < 0 || sentence < 0 || interleave < 0)
    return cli_fail("--runs, --warmup, --sentence and --interleave must not be negative");
  {
    struct spr_model *probe = NULL;
    struct spr_error err;
    const enum spr_status s = cli_load(pos[0], &probe, &err);
    if (s != SPR_STATUS_OK) return cli_fail_status(s, &err, pos[0]);
    const bool is_llm = spr_llm_info(probe, &(struct spr_llm_info){0}) == SPR_STATUS_OK;
    spr_model_free(probe);
    if (dense_model != NULL && !compare_dense) return cli_fail("--dense-model needs --compare-dense");
    if (interleave > 0 && !compare_dense) return cli_fail("--interleave needs --compare-dense");
    if (is_llm)
      return bench_llm(pos[0], &c, &lo, n_prompt, n_gen, runs > 0 ? runs : 3, json, compare_dense, dense_model,
                       sentence, roof, interleave, re_cache);
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
    printf(
        ", \"arch\": \"%s\", \"threads\": %d, \"runs\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, "
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
