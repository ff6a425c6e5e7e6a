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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sparrow/llm.h"
#include "sparrow/sparrow.h"

enum { MAX_KINDS = 64 };

struct kind {
  char name[80];
  double ns;
  unsigned long count;
};

struct prof {
  struct kind k[MAX_KINDS];
  int n;
  double last;
  int on;
};

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void observe(void *user, uint32_t idx, const struct spr_node_info *info) {
  (void)idx;
  struct prof *p = user;
  const double t = now_ns();
  if (p->on) {
    char key[80];
    char base[64];
    const char *nm = info->name;
    if (strncmp(nm, "blk.", 4) == 0 && strchr(nm + 4, '.') != NULL) nm = strchr(nm + 4, '.') + 1; /* blk.3.q -> q */
    snprintf(base, sizeof base, "%s", nm);
    snprintf(key, sizeof key, "%s:%s", info->op, base);
    int i = 0;
    while (i < p->n && strcmp(p->k[i].name, key) != 0) i++;
    if (i == p->n && p->n < MAX_KINDS) snprintf(p->k[p->n++].name, sizeof p->k[0].name, "%s", key);
    if (i < MAX_KINDS) {
      p->k[i].ns += t - p->last;
      p->k[i].count++;
    }
  }
  p->last = now_ns();
}

static int by_time(const void *a, const void *b) {
  const struct kind *x = a, *y = b;
  return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static void report(const char *what, struct prof *p, double steps, double tokens) {
  double total = 0;
  for (int i = 0; i < p->n; i++) total += p->k[i].ns;
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
  struct spr_error err;
  struct spr_model *m = NULL;
  if (spr_model_load_file(argv[1], NULL, &m, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "load: %s\n", err.msg);
    return 1;
  }
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = threads;
  cfg.ctx = n_prompt + n_gen;
  if (sparse > 0) {
    cfg.sparse_ffn_beta = 0.4f;
    if (sparse >= 2) cfg.sparse_ffn_first = 0, cfg.sparse_ffn_last = INT_MAX;
    cfg.sparse_ffn_compact = sparse == 3;
  }
  struct spr_plan plan;
  if (spr_plan(m, &cfg, &plan, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "plan: %s\n", err.msg);
    return 1;
  }
  void *arena = NULL;
  /* as the CLI: a large arena in transparent huge pages (tools/sparrow/cli.c) */
  const size_t huge = (size_t)2 << 20;
  if (posix_memalign(&arena, plan.arena_bytes >= 16 * huge ? huge : SPR_ARENA_ALIGN, plan.arena_bytes) != 0) return 1;
#ifdef MADV_HUGEPAGE
  if (plan.arena_bytes >= 16 * huge) (void)madvise(arena, plan.arena_bytes / huge * huge, MADV_HUGEPAGE);
#endif
  struct spr_session *s = NULL;
  if (spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "session: %s\n", err.msg);
    return 1;
  }
  struct spr_llm_info info;
  spr_llm_info(m, &info);
  int32_t *tok = malloc((size_t)(n_prompt + n_gen) * sizeof(int32_t));
  uint32_t seed = 7;
  for (int i = 0; i < n_prompt + n_gen; i++) {
    seed = seed * 1664525u + 1013904223u;
    tok[i] = (int32_t)((seed >> 8) % info.n_vocab);
  }
  static struct prof pre, dec;
  for (int pass = 0; pass < 2; pass++) {
    spr_llm_reset(s);
    pre.on = pass;
    spr_session_set_observer(s, observe, &pre);
    pre.last = now_ns();
    spr_llm_eval(s, tok, (size_t)n_prompt, NULL);
    dec.on = pass;
    spr_session_set_observer(s, observe, &dec);
    for (int i = 0; i < n_gen; i++) {
      dec.last = now_ns();
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
