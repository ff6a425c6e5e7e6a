/* tools/bench/llm_bench.h — what the hand-built LLM bench tools share
 * (llm_profile.c, coreinfer_cputime.c, coreinfer_prefill_ab.c; not part of
 * the build): a session opened as the CLI opens one, the core-neuron
 * settings they compare, and a per-node-kind timer for the session observer.
 * Header-only (static functions) so that each tool stays one cc line. */
#ifndef SPR_TOOLS_BENCH_LLM_BENCH_H
#define SPR_TOOLS_BENCH_LLM_BENCH_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../sparrow/cli_arena.h"
#include "sparrow/llm.h"
#include "sparrow/sparrow.h"

static inline double llm_bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A config of threads, ctx (and batch when > 0) with --sparse-ffn
 * core:BETA[,layers=all][,compact] (beta 0: dense) */
static inline void llm_bench_config(struct spr_config *c, int threads, int ctx, int batch, float beta, int all_layers,
                                    int compact) {
  spr_config_init(c);
  c->threads = threads;
  c->ctx = ctx;
  if (batch > 0) c->batch = batch;
  c->sparse_ffn_beta = beta;
  if (all_layers) {
    c->sparse_ffn_first = 0;
    c->sparse_ffn_last = INT_MAX;
  }
  c->sparse_ffn_compact = compact;
}

/* Loads path, plans c and creates the session in an arena allocated as the
 * CLI allocates one (cli_arena_alloc).
 * Exits with a message on any failure. */
static inline struct spr_session *llm_bench_open(const char *path, const struct spr_config *c, struct spr_model **m,
                                                 void **arena) {
  struct spr_error err;
  if (spr_model_load_file(path, NULL, m, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "load %s: %s\n", path, err.msg);
    exit(1);
  }
  struct spr_plan plan;
  if (spr_plan(*m, c, &plan, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "plan %s: %s\n", path, err.msg);
    exit(1);
  }
  *arena = cli_arena_alloc(plan.arena_bytes);
  if (*arena == NULL) {
    fprintf(stderr, "%s: cannot allocate %zu arena bytes\n", path, plan.arena_bytes);
    exit(1);
  }
  struct spr_session *s = NULL;
  if (spr_session_create(*m, c, *arena, plan.arena_bytes, &s, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "session %s: %s\n", path, err.msg);
    exit(1);
  }
  return s;
}

/* Time per node kind ("op:tensor name", blk.N. dropped) through the session
 * observer: each node gets the time from the previous node's end to its own
 * end (the observer's cost included); set last before a timed eval, on to
 * count it. */
enum { LLM_BENCH_KINDS = 64 };

struct llm_bench_kind {
  char name[80];
  double ns;
  unsigned long count;
};

struct llm_bench_prof {
  struct llm_bench_kind k[LLM_BENCH_KINDS];
  int n;
  double last;
  int on;
};

static inline void llm_bench_observe(void *user, uint32_t idx, const struct spr_node_info *info) {
  (void)idx;
  struct llm_bench_prof *p = user;
  const double t = llm_bench_now_ns();
  if (p->on) {
    const char *nm = info->name;
    if (strncmp(nm, "blk.", 4) == 0 && strchr(nm + 4, '.') != NULL) nm = strchr(nm + 4, '.') + 1; /* blk.3.q -> q */
    char key[80];
    snprintf(key, sizeof key, "%.31s:%.47s", info->op, nm);
    int i = 0;
    while (i < p->n && strcmp(p->k[i].name, key) != 0) i++;
    if (i == p->n && p->n < LLM_BENCH_KINDS) snprintf(p->k[p->n++].name, sizeof p->k[0].name, "%s", key);
    if (i < LLM_BENCH_KINDS) {
      p->k[i].ns += t - p->last;
      p->k[i].count++;
    }
  }
  p->last = llm_bench_now_ns();
}

static inline double llm_bench_total_ns(const struct llm_bench_prof *p) {
  double t = 0;
  for (int i = 0; i < p->n; i++) t += p->k[i].ns;
  return t;
}

#endif
