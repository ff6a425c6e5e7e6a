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

#include "llm_bench.h"

enum { PROMPT = 64 };

struct side {
  struct spr_model *m;
  struct spr_session *s;
  void *arena;
  struct llm_bench_prof pr;
};

static void open_side(struct side *x, const char *path, int sparse, int threads) {
  struct spr_config c;
  llm_bench_config(&c, threads, 256, PROMPT, sparse ? 0.4f : 0.0f, sparse, sparse);
  x->s = llm_bench_open(path, &c, &x->m, &x->arena);
  spr_session_set_observer(x->s, llm_bench_observe, &x->pr);
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
      x->pr.last = llm_bench_now_ns();
      enum spr_status st = spr_llm_eval(x->s, prompt, PROMPT, &lg);
      x->pr.on = 0;
      if (st == SPR_STATUS_OK) st = spr_llm_eval(x->s, prompt, 1, &lg);
      if (st != SPR_STATUS_OK) {
        fprintf(stderr, "eval failed\n");
        return 1;
      }
    }
  const double td = llm_bench_total_ns(&sd[0].pr), ts = llm_bench_total_ns(&sd[1].pr);
  printf("%d pairs, %d threads, prompt %d: prefill dense %.2f ms, sparse %.2f ms per step (sparse/dense speed %.3f)\n",
         pairs, threads, PROMPT, td / pairs / 1e6, ts / pairs / 1e6, td / ts);
  const char *label[2] = {"dense ", "sparse"};
  for (int m = 0; m < 2; m++)
    for (int i = 0; i < sd[m].pr.n; i++)
      printf("  %s %-28s %8.2f ms\n", label[m], sd[m].pr.k[i].name, sd[m].pr.k[i].ns / pairs / 1e6);
  return 0;
}
