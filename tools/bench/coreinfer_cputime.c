/* tools/bench/coreinfer_cputime.c — sparse vs dense decode on a loaded machine:
 * one thread, CPU time of this thread (CLOCK_THREAD_CPUTIME_ID), dense and
 * sparse steps alternated token by token (not part of the build).
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude tools/bench/coreinfer_cputime.c build/libsparrow.a \
 *      -lpthread -lm -o /tmp/coreinfer_cputime
 *   coreinfer_cputime DENSE.gguf SPARSE.gguf ALL ROUNDS
 *
 * DENSE runs with --sparse-ffn off, SPARSE with core:0.4 (ALL = 1: every
 * layer, else the default layers). Each round: a reset, a 64-token prompt
 * (random ids, one prefill step each: dense then sparse), then 128 decode
 * steps of fixed random ids, dense and sparse alternated. The first round is
 * a warm-up. Wall-clock rates on a machine shared with other jobs measure the
 * scheduler as much as the code (a thread hand-off can wait a whole time
 * slice); this thread's CPU time does not, though memory and cache contention
 * from other jobs still count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_bench.h"
static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
struct S {
  struct spr_model *m;
  struct spr_session *s;
  void *arena;
};
static void open1(struct S *x, const char *path, float beta, int all, int threads) {
  struct spr_config c;
  llm_bench_config(&c, threads, 256, 64, beta, all, 0);
  x->s = llm_bench_open(path, &c, &x->m, &x->arena);
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
int main(int argc, char **argv) {
  if (argc != 5 || atoi(argv[4]) < 2) {
    fprintf(stderr, "usage: coreinfer_cputime DENSE.gguf SPARSE.gguf ALL(0|1) ROUNDS(>= 2)\n");
    return 2;
  }
  int all = atoi(argv[3]), rounds = atoi(argv[4]);
  struct S a, b;
  open1(&a, argv[1], 0.0f, 0, 1);
  open1(&b, argv[2], 0.4f, all, 1);
  int32_t prompt[64], gen[128];
  unsigned s = 12345;
  for (int i = 0; i < 64; i++) {
    s = s * 1103515245u + 12345u;
    prompt[i] = 100 + (int)((s >> 8) % 30000);
  }
  for (int i = 0; i < 128; i++) {
    s = s * 1103515245u + 12345u;
    gen[i] = 100 + (int)((s >> 8) % 30000);
  }
  double pa = 0, pb = 0, da = 0, db = 0;
  double ra[64], rb[64];
  int nr = 0;
  const float *lg;
  for (int r = 0; r < rounds; r++) {
    spr_llm_reset(a.s);
    spr_llm_reset(b.s);
    double t0 = cpu();
    spr_llm_eval(a.s, prompt, 64, &lg);
    double t1 = cpu();
    spr_llm_eval(b.s, prompt, 64, &lg);
    double t2 = cpu();
    if (r > 0) {
      pa += t1 - t0;
      pb += t2 - t1;
    }
    double ta = 0, tb = 0;
    for (int i = 0; i < 128; i++) {
      double u0 = cpu();
      spr_llm_eval(a.s, &gen[i], 1, &lg);
      double u1 = cpu();
      spr_llm_eval(b.s, &gen[i], 1, &lg);
      double u2 = cpu();
      ta += u1 - u0;
      tb += u2 - u1;
    }
    if (r > 0) {
      da += ta;
      db += tb;
      ra[nr] = ta;
      rb[nr] = tb;
      nr++;
    }
  }
  printf(
      "1 thread CPU time, %d rounds after 1 warm-up: prefill 64: dense %.1f ms, sparse %.1f ms (sparse/dense speed "
      "%.3fx); "
      "decode 128: dense %.2f ms/token, sparse %.2f ms/token (%.3fx)\n",
      rounds - 1, pa / (rounds - 1) * 1e3, pb / (rounds - 1) * 1e3, pa / pb, da / nr / 128 * 1e3, db / nr / 128 * 1e3,
      da / db);
  qsort(ra, nr, sizeof(double), cmpd);
  qsort(rb, nr, sizeof(double), cmpd);
  printf("   per-round decode ratio of medians %.3fx\n", ra[nr / 2] / rb[nr / 2]);
  return 0;
}
