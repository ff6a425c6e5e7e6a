/* tools/bench/llm_profile.c — where an LLM step spends its time, by node
 * kind (not part of the build).
 *
 * Build by hand from the repository root against a configured build dir:
 *   cc -O2 -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Iinclude tools/bench/llm_profile.c \
 *      build/libsparrow.a -lpthread -lm -o /tmp/llm_profile
 *
 *   llm_profile MODEL [--threads T] [--prompt P] [--gen G] [--sparse 1|2|3]
 *
 * Runs a prefill of P random tokens and G decode steps (after one warm-up
 * pass) and times every node through the session observer (the time from
 * the previous node's end to this node's end; the observer's own cost is
 * included). Prints, for prefill and decode separately, the total per node
 * kind ("op:tensor name") and its share of the step, largest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_bench.h"

static int by_time(const void *a, const void *b) {
  const struct llm_bench_kind *x = a, *y = b;
  return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static void report(const char *what, struct llm_bench_prof *p, double steps, double tokens) {
  const double total = llm_bench_total_ns(p);
  qsort(p->k, (size_t)p->n, sizeof p->k[0], by_time);
  printf("%s: %.3f ms per step, %.2f tok/s (observer included)\n", what, total / steps / 1e6, tokens / (total * 1e-9));
  for (int i = 0; i < p->n; i++)
    printf("  %-28s %8.1f us/step %5.1f %%  (%lu nodes/step)\n", p->k[i].name, p->k[i].ns / steps / 1e3,
           100.0 * p->k[i].ns / total, (unsigned long)(p->k[i].count / steps));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: llm_profile MODEL [--threads T] [--prompt P] [--gen G] [--sparse 1|2|3]\n");
    return 2;
  }
  int threads = 1, n_prompt = 64, n_gen = 64, sparse = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
    if (strcmp(argv[i], "--prompt") == 0) n_prompt = atoi(argv[i + 1]);
    if (strcmp(argv[i], "--gen") == 0) n_gen = atoi(argv[i + 1]);
    if (strcmp(argv[i], "--sparse") == 0) sparse = atoi(argv[i + 1]); /* 1: core:0.4, 2: + layers=all, 3: + compact */
  }
  struct spr_config cfg;
  llm_bench_config(&cfg, threads, n_prompt + n_gen, 0, sparse > 0 ? 0.4f : 0.0f, sparse >= 2, sparse == 3);
  struct spr_model *m = NULL;
  void *arena = NULL;
  struct spr_session *s = llm_bench_open(argv[1], &cfg, &m, &arena);
  struct spr_llm_info info;
  spr_llm_info(m, &info);
  int32_t *tok = malloc((size_t)(n_prompt + n_gen) * sizeof(int32_t));
  uint32_t seed = 7;
  for (int i = 0; i < n_prompt + n_gen; i++) {
    seed = seed * 1664525u + 1013904223u;
    tok[i] = (int32_t)((seed >> 8) % info.n_vocab);
  }
  static struct llm_bench_prof pre, dec;
  for (int pass = 0; pass < 2; pass++) {
    spr_llm_reset(s);
    pre.on = pass;
    spr_session_set_observer(s, llm_bench_observe, &pre);
    pre.last = llm_bench_now_ns();
    spr_llm_eval(s, tok, (size_t)n_prompt, NULL);
    dec.on = pass;
    spr_session_set_observer(s, llm_bench_observe, &dec);
    for (int i = 0; i < n_gen; i++) {
      dec.last = llm_bench_now_ns();
      spr_llm_eval(s, &tok[n_prompt + i], 1, NULL);
    }
  }
  const int batch = (int)spr_llm_batch(s);
  const int pre_steps = (n_prompt + batch - 1) / batch;
  report("prefill", &pre, pre_steps, n_prompt);
  report("decode", &dec, n_gen, n_gen);
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  free(tok);
  return 0;
}
