/* tools/sparrow/cmd_plan.c — `sparrow plan MODEL [--json] [--image N] [--emit-header FILE]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparrow/llm.h"
#include "tools/sparrow/cli.h"
#include "tools/sparrow/llm_cli.h"

/* The target this planner runs on, and a preprocessor condition true only there. */
#if defined(__x86_64__)
#define SPR_PLAN_TARGET "x86-64"
#define SPR_PLAN_TARGET_COND "defined(__x86_64__)"
#elif defined(__aarch64__)
#define SPR_PLAN_TARGET "aarch64"
#define SPR_PLAN_TARGET_COND "defined(__aarch64__)"
#elif defined(__arm__)
#define SPR_PLAN_TARGET "32-bit ARM Linux"
#define SPR_PLAN_TARGET_COND "defined(__arm__) && defined(__linux__)"
#else
#define SPR_PLAN_TARGET "this host"
#define SPR_PLAN_TARGET_COND "1"
#endif

static double mib(size_t b) {
  return (double)b / 1048576.0;
}

#define PLAN_MAX_OPS 48

/* Largest workspace per op type, read from a session built in a planned-size arena. */
struct op_scratch {
  const char *op;
  size_t bytes;
  char node[64];
};

static int scratch_by_op(const struct spr_model *m, const struct spr_config *cfg, size_t arena_bytes,
                         struct op_scratch *out, int *n_out, struct spr_error *err) {
  void *arena = aligned_alloc(64, (arena_bytes + 63) / 64 * 64);
  if (arena == NULL) return cli_fail("out of memory (%zu bytes)", arena_bytes);
  struct spr_session *s = NULL;
  enum spr_status st = spr_session_create(m, cfg, arena, arena_bytes, &s, err);
  if (st != SPR_STATUS_OK) {
    free(arena);
    return cli_fail_status(st, err, "session");
  }
  int n = 0;
  for (uint32_t i = 0; i < spr_session_n_nodes(s); i++) {
    struct spr_node_info info;
    if (spr_session_node(s, i, &info) != SPR_STATUS_OK) continue;
    int k = 0;
    while (k < n && strcmp(out[k].op, info.op) != 0) k++;
    if (k == n) {
      if (n == PLAN_MAX_OPS) continue;
      out[n].op = info.op;
      out[n].bytes = 0;
      out[n].node[0] = 0;
      n++;
    }
    if (info.workspace_bytes > out[k].bytes || out[k].node[0] == 0) {
      out[k].bytes = info.workspace_bytes;
      snprintf(out[k].node, sizeof out[k].node, "%s", info.name);
    }
  }
  spr_session_destroy(s);
  free(arena);
  *n_out = n;
  return 0;
}

int cmd_plan(int argc, char **argv) {
  bool json = false, ops = false;
  int image = 0;
  const char *header = NULL;
  struct cli_llm_opts lo = {0};
  const struct cli_opt opts[] = {
      {"json", CLI_FLAG, &json, NULL, "print JSON (integer field \"arena_bytes\" plus the breakdown)"},
      {"image", CLI_INT, &image, "N", "vision: input side in pixels (default: the model's)"},
      CLI_LLM_OPTS(lo),
      {"emit-header", CLI_STR, &header, "FILE", "write a C header defining SPR_ARENA_BYTES for this plan"},
      {"ops", CLI_FLAG, &ops, NULL, "also list the largest scratch of each op type (builds a session)"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[1];
  int n_pos;
  const int r =
      cli_parse(argc, argv,
                "sparrow plan MODEL [--json] [--image N] [--ctx N --batch N --window W --sinks S] [--emit-header FILE]",
                "Computes the exact arena a run of MODEL needs with these options (threads and ISA\n"
                "change scratch and pool sizes): a session over that many bytes runs, one byte less\n"
                "is refused with ARENA_TOO_SMALL. Weights stay in the file mapping and are listed\n"
                "separately.",
                opts, &c, pos, 1, 1, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  if (image < 0 || lo.ctx < 0 || lo.batch < 0 || lo.window < 0 || lo.sinks < 0)
    return cli_fail("--image, --ctx, --batch, --window and --sinks must not be negative");

  struct spr_error err = {SPR_STATUS_OK, ""};
  struct spr_model *m = NULL;
  enum spr_status s = cli_load(pos[0], &m, &err);
  if (s != SPR_STATUS_OK) return cli_fail_status(s, &err, pos[0]);
  struct spr_config cfg;
  cli_config(&c, &cfg);
  cfg.image_size = image;
  cfg.ctx = lo.ctx;
  cfg.batch = lo.batch;
  cfg.window = lo.window;
  cfg.sinks = lo.sinks;
  cfg.kv_f32 = lo.kv_f32_flag;
  if (cli_sparse_ffn_parse(lo.sparse_ffn, &cfg) != 0) {
    spr_model_free(m);
    return 1;
  }
  struct spr_plan p;
  s = spr_plan(m, &cfg, &p, &err);
  if (s != SPR_STATUS_OK) {
    spr_model_free(m);
    return cli_fail_status(s, &err, "plan");
  }
  struct spr_llm_traffic tr;
  const bool llm = spr_llm_decode_traffic(m, &cfg, &tr) == SPR_STATUS_OK;
  const size_t compact = cli_compact_bytes(m, &cfg, &p);
  struct op_scratch by_op[PLAN_MAX_OPS];
  int n_ops = 0;
  if (ops) {
    const int rc = scratch_by_op(m, &cfg, p.arena_bytes, by_op, &n_ops, &err);
    if (rc != 0) {
      spr_model_free(m);
      return rc;
    }
  }
  spr_model_free(m);

  if (header != NULL) {
    FILE *f = fopen(header, "w");
    if (f == NULL) return cli_fail("cannot write %s", header);
    /* The arena depends on the target (pointer size and struct layout, the
     * ukernels its CPU gets): the header refuses to compile for another one.
     * Firmware plans on its own target (tools/firmware, docs/arm.md). */
    fprintf(f,
            "/* Generated by `sparrow plan` for %s (threads %d, isa %s) on %s.\n"
            " * Exact for builds of this same target only; firmware: see docs/arm.md. */\n"
            "#ifndef SPR_ARENA_BYTES\n#define SPR_ARENA_BYTES %zuu\n#endif\n"
            "#if !(%s) || __SIZEOF_POINTER__ != %d\n"
            "#error \"SPR_ARENA_BYTES was planned for %s: plan on the target you build for\"\n#endif\n",
            pos[0], cfg.threads, c.isa ? c.isa : "best", SPR_PLAN_TARGET, p.arena_bytes, SPR_PLAN_TARGET_COND,
            (int)sizeof(void *), SPR_PLAN_TARGET);
    if (fclose(f) != 0) return cli_fail("cannot write %s", header);
  }
  if (json) {
    printf("{\"model\": ");
    cli_json_str(stdout, pos[0]);
    printf(
        ", \"threads\": %d, \"arena_bytes\": %zu, \"activations_bytes\": %zu, "
        "\"scratch_bytes\": %zu, \"persistent_bytes\": %zu, \"backend_bytes\": %zu, \"weights_bytes\": %zu, "
        "\"activations_naive_bytes\": %zu, \"nodes\": %u, \"tensors\": %u",
        cfg.threads, p.arena_bytes, p.activations_bytes, p.scratch_bytes, p.persistent_bytes, p.backend_bytes,
        p.weights_bytes, p.activations_naive_bytes, p.n_nodes, p.n_tensors);
    if (llm)
      printf(
          ", \"decode_weight_bytes_per_token\": %.0f, \"sparse_decode_weight_bytes_per_token\": %.0f, "
          "\"sparse_ffn_beta\": %g",
          tr.dense, tr.sparse, (double)cfg.sparse_ffn_beta);
    if (ops) {
      printf(", \"scratch_by_op\": {");
      for (int i = 0; i < n_ops; i++) printf("%s\"%s\": %zu", i ? ", " : "", by_op[i].op, by_op[i].bytes);
      printf("}");
    }
    printf("}\n");
    return 0;
  }
  printf("arena:        %12zu bytes  (%.3f MiB)  exact: one byte less is refused\n", p.arena_bytes, mib(p.arena_bytes));
  printf("  activations %12zu bytes  (%.3f MiB; %.3f MiB without reuse)\n", p.activations_bytes,
         mib(p.activations_bytes), mib(p.activations_naive_bytes));
  printf("  scratch     %12zu bytes  (largest per-op workspace)\n", p.scratch_bytes);
  printf("  persistent  %12zu bytes  (graph, session, thread pool, caches)\n", p.persistent_bytes);
  printf("  backend     %12zu bytes\n", p.backend_bytes);
  printf("weights:      %12zu bytes  (%.3f MiB, mapped from the file, not in the arena)\n", p.weights_bytes,
         mib(p.weights_bytes));
  printf("graph:        %u nodes, %u tensors, %d thread(s)\n", p.n_nodes, p.n_tensors, cfg.threads);
  if (llm) {
    printf("decode:       %12.0f bytes of weights per token (dense)\n", tr.dense);
    if (cfg.sparse_ffn_beta > 0.0f)
      printf("  sparse FFN  %12.0f bytes per token (beta %g)%s\n", tr.sparse, (double)cfg.sparse_ffn_beta,
             tr.row_major_down > 0 ? "; ffn_down is row-major and read whole (--sparse-layout)" : "");
    if (cfg.sparse_ffn_compact)
      printf("  compact     %12zu bytes of the arena's persistent part: the core bundles' copy\n", compact);
  }
  if (ops) {
    printf("scratch by op (largest node of each type):\n");
    for (int i = 0; i < n_ops; i++) printf("  %-18s %12zu bytes  (%s)\n", by_op[i].op, by_op[i].bytes, by_op[i].node);
  }
  return 0;
}
