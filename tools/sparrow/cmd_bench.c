/* tools/sparrow/cmd_bench.c — `sparrow bench MODEL [--runs N] [--json]`:
 * whole-model latency on random input (vision models). */
#include <stdio.h>
#include <stdlib.h>

#include "platform/time.h"
#include "tools/sparrow/cli.h"

int cmd_bench(int argc, char **argv) {
  int runs = 0, warmup = 3, image = 0;
  bool json = false;
  const struct cli_opt opts[] = {
      {"runs", CLI_INT, &runs, "N", "timed runs (default: about 2 s worth, 10..1000)"},
      {"warmup", CLI_INT, &warmup, "N", "untimed runs first (default 3)"},
      {"image", CLI_INT, &image, "N", "vision: input side (default: the model's)"},
      {"json", CLI_FLAG, &json, NULL, "print JSON (fields \"median_ms\", \"min_ms\", \"gflops\")"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[1];
  int n_pos;
  const int r = cli_parse(argc, argv, "sparrow bench MODEL [--runs N] [--json]",
                          "Runs MODEL on random input and reports the median and minimum latency of whole runs,\n"
                          "and GFLOP/s from the ops' own flop counts. Weights stay in the file mapping; the arena\n"
                          "is allocated once at the planned size.",
                          opts, &c, pos, 1, 1, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  if (runs < 0 || warmup < 0) return cli_fail("--runs and --warmup must not be negative");
  struct spr_config cfg;
  cli_config(&c, &cfg);
  cfg.image_size = image;
  struct cli_session cs;
  if (cli_open(pos[0], &cfg, c.arena_bytes, &cs) != 0) return 1;
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
