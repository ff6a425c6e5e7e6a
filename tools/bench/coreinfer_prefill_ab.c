/* tools/bench/coreinfer_prefill_ab.c — where the sparse prefill's time goes:
 * the dense and the core-neuron (compact, layers=all) prefill of the same
 * prompt, alternated in one process, per node kind (not part of the build).
 *
 *   cc -O2 -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Iinclude \
 *      tools/bench/coreinfer_prefill_ab.c build/libsparrow.a -lpthread -lm -o /tmp/coreinfer_prefill_ab
 *   coreinfer_prefill_ab DENSE.gguf BUNDLE.gguf PAIRS THREADS
 *
 * DENSE (the plain file) runs dense; BUNDLE (a --bundle file) with
 * core:0.4,layers=all,compact. Each pair: a reset and a 64-token prefill of
 * each session (random ids), the one that goes first swapping from pair to
 * pair, then one decode step (so the compact copy is made outside the timed
 * prefill, as in `sparrow bench`); two warm-up pairs. Alternating in one
 * process lets both prefills meet the same host: timed a second apart in
 * separate runs they can differ by 10 % on this host for no reason in the
 * code. Prints the mean prefill per step of each, the speed ratio, and the
 * time per node kind (session observer: time from one node's end to the
 * next's, the observer's own cost included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sparrow/llm.h"
#include "sparrow/sparrow.h"

enum { MAX_KINDS = 64, PROMPT = 64 };

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

struct kind {
  char name[80];
  double ns;
};

struct prof {
  struct kind k[MAX_KINDS];
  int n;
  double last;
  int on;
};

static void observe(void *user, uint32_t idx, const struct spr_node_info *info) {
  (void)idx;
  struct prof *p = user;
  const double t = now_ns();
  if (p->on) {
    const char *nm = info->name;
    if (strncmp(nm, "blk.", 4) == 0 && strchr(nm + 4, '.') != NULL) nm = strchr(nm + 4, '.') + 1; /* blk.3.q -> q */
    char key[80];
    snprintf(key, sizeof key, "%.31s:%.47s", info->op, nm);
    int i = 0;
    while (i < p->n && strcmp(p->k[i].name, key) != 0) i++;
    if (i == p->n && p->n < MAX_KINDS) snprintf(p->k[p->n++].name, sizeof p->k[0].name, "%s", key);
    if (i < MAX_KINDS) p->k[i].ns += t - p->last;
  }
  p->last = now_ns();
}

struct side {
  struct spr_model *m;
  struct spr_session *s;
  struct prof pr;
};

static void open_side(struct side *x, const char *path, int sparse, int threads) {
  struct spr_error err;
  if (spr_model_load_file(path, NULL, &x->m, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", path, err.msg);
    exit(1);
  }
  struct spr_config c;
  spr_config_init(&c);
  c.ctx = 256;
  c.batch = PROMPT;
  c.threads = threads;
  if (sparse) {
    c.sparse_ffn_beta = 0.4f;
    c.sparse_ffn_first = 0;
    c.sparse_ffn_last = 2147483647;
    c.sparse_ffn_compact = 1;
  }
  struct spr_plan p;
  if (spr_plan(x->m, &c, &p, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", path, err.msg);
    exit(1);
  }
  /* as the CLI: the arena in transparent huge pages (tools/sparrow/cli.c) */
  const size_t huge = (size_t)2 << 20, bytes = (p.arena_bytes + huge - 1) / huge * huge;
  void *arena = aligned_alloc(huge, bytes);
  if (arena == NULL) exit(1);
#ifdef MADV_HUGEPAGE
  (void)madvise(arena, bytes, MADV_HUGEPAGE);
#endif
  if (spr_session_create(x->m, &c, arena, p.arena_bytes, &x->s, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", path, err.msg);
    exit(1);
  }
  spr_session_set_observer(x->s, observe, &x->pr);
}

static double total_ns(const struct prof *p) {
  double t = 0;
  for (int i = 0; i < p->n; i++) t += p->k[i].ns;
  return t;
}

int main(int argc, char **argv) {
  if (argc != 5 || atoi(argv[3]) < 1 || atoi(argv[4]) < 1) {
    fprintf(stderr, "usage: coreinfer_prefill_ab DENSE.gguf BUNDLE.gguf PAIRS THREADS\n");
    return 2;
  }
  const int pairs = atoi(argv[3]), threads = atoi(argv[4]);
  struct side *sd = calloc(2, sizeof *sd);
  if (sd == NULL) return 1;
  open_side(&sd[0], argv[1], 0, threads);
  open_side(&sd[1], argv[2], 1, threads);
  int32_t prompt[PROMPT];
  unsigned s = 12345;
  for (int i = 0; i < PROMPT; i++) {
    s = s * 1103515245u + 12345u;
    prompt[i] = 100 + (int)((s >> 8) % 30000);
  }
  const float *lg;
  for (int k = -2; k < pairs; k++)
    for (int j = 0; j < 2; j++) {
      struct side *x = &sd[(j + (k & 1)) % 2];
      spr_llm_reset(x->s);
      x->pr.on = k >= 0;
      x->pr.last = now_ns();
      if (spr_llm_eval(x->s, prompt, PROMPT, &lg) != SPR_STATUS_OK ||
          (x->pr.on = 0, spr_llm_eval(x->s, prompt, 1, &lg)) != SPR_STATUS_OK) {
        fprintf(stderr, "eval failed\n");
        return 1;
      }
    }
  const double td = total_ns(&sd[0].pr), ts = total_ns(&sd[1].pr);
  printf("%d pairs, %d threads, prompt %d: prefill dense %.2f ms, sparse %.2f ms per step (sparse/dense speed %.3f)\n",
         pairs, threads, PROMPT, td / pairs / 1e6, ts / pairs / 1e6, td / ts);
  const char *label[2] = {"dense ", "sparse"};
  for (int m = 0; m < 2; m++)
    for (int i = 0; i < sd[m].pr.n; i++)
      printf("  %s %-28s %8.2f ms\n", label[m], sd[m].pr.k[i].name, sd[m].pr.k[i].ns / pairs / 1e6);
  return 0;
}
