/* tools/sparrow/cmd_validate.c — `sparrow validate MODEL [INPUT] --backend cuda`.
 *
 * Runs the model twice on the same input: a CPU session (the edge code path)
 * and a session of the same graph attached to the GPU backend
 * (ops/backends/cuda). A node observer keeps every node's CPU output; the
 * GPU run's observer compares node by node and prints, per node, the max
 * absolute difference and the relative difference (max |gpu - cpu| over
 * max |cpu| of the node's output). A node fails when its relative
 * difference exceeds the tolerance of the least precise weight type the run
 * has gone through up to that node (docs/cuda.md; errors propagate, so a
 * node after a q4_0 GEMM is held to q4_0's tolerance) and its absolute
 * difference exceeds 1e-5.
 *
 * Vision models: INPUT is an image (default: a deterministic pseudo-random
 * input). LLMs: INPUT is a prompt (default "Once upon a time"); the prompt
 * is evaluated in steps of at most --batch tokens (GEMM path), then --steps
 * single tokens (GEMV path, cached attention) with the CPU's greedy choice
 * fed to both sessions; each step is one compared run.
 *
 * Exit: 0 every node within tolerance; 1 a node over tolerance (the first
 * one is named) or an error; 2 usage; 77 (CLI_EXIT_NO_CUDA) this build has
 * no CUDA backend or no CUDA device is usable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "runtime/session.h"
#include "sparrow/llm.h"
#include "sparrow/vision.h"
#include "tools/sparrow/cli.h"
#include "tools/sparrow/image.h"

#if SPR_CUDA
#include "ops/backends/cuda/cuda_backend.h"
#endif

/* Relative tolerance by weight type (see docs/cuda.md for the reasoning). */
static double tol_of(enum spr_dtype t) {
  switch (t) {
    case SPR_DTYPE_F32:
    case SPR_DTYPE_F16:
      return 1e-4;
    case SPR_DTYPE_Q8_0:
    case SPR_DTYPE_Q6_K:
    case SPR_DTYPE_Q4_0:
    case SPR_DTYPE_Q4_K:
      return 2e-2;
    default:
      return 1e-4;
  }
}
#define ABS_FLOOR 1e-5
/* An f16 KV cache rounds K and V to 11 bits; a value on either side of a
 * rounding boundary moves by one f16 ulp (2^-11 relative). */
#define F16_KV_TOL 2e-3

/* Tolerance of every node with --isolate: each node runs on the CPU's
 * inputs, so only its own arithmetic differs (f32 summation order, the
 * device's libm); quantized activations and f16 roundings are identical. */
#define ISOLATE_TOL 1e-4

struct node_ref {
  uint8_t *cpu; /* CPU output of the node in the current run (raw bytes) */
  size_t cap;   /* bytes */
  size_t n;     /* values written by the CPU run */
  double tol;   /* tolerance of this node */
  bool f16;     /* the output is f16 (an f16 KV cache) */
};

struct validator {
  struct node_ref *nodes;
  uint32_t n_nodes;
  const struct spr_graph *graph; /* the CPU session's */
  int32_t *producer;             /* per tensor: the node writing it, or -1 */
  double tol_scale;
  bool all;
  int run;
  /* results */
  uint64_t compared;
  double worst_rel;
  int worst_run;
  uint32_t worst_node;
  int fail_run;
  uint32_t fail_node;
  char fail_msg[256];
  bool failed;
  bool print_header;
};

static float value_at(const void *data, size_t k, bool f16) {
  return f16 ? spr_fp16_to_f32(((const uint16_t *)data)[k]) : ((const float *)data)[k];
}

/* Elements of a node's output (the current run's shape). */
static size_t info_elems(const struct spr_node_info *info) {
  size_t n = 1;
  for (uint32_t d = 0; d < 4; d++) n *= (size_t)(info->ne[d] > 0 ? info->ne[d] : 1);
  return n;
}

static void cpu_observer(void *user, uint32_t i, const struct spr_node_info *info) {
  struct validator *v = user;
  if (i >= v->n_nodes) return;
  struct node_ref *r = &v->nodes[i];
  const size_t n = info_elems(info), bytes = n * (r->f16 ? 2 : 4);
  r->n = 0;
  if (bytes > r->cap) {
    free(r->cpu);
    r->cpu = malloc(bytes);
    r->cap = r->cpu != NULL ? bytes : 0;
  }
  if (r->cpu == NULL) return;
  memcpy(r->cpu, info->data, bytes);
  r->n = n;
}

static void gpu_observer(void *user, uint32_t i, const struct spr_node_info *info) {
  struct validator *v = user;
  if (i >= v->n_nodes) return;
  struct node_ref *r = &v->nodes[i];
  const bool f16 = r->f16;
  double max_abs = 0, max_ref = 0;
  bool nan = false;
  size_t n = r->n;
  for (size_t k = 0; k < n; k++) {
    const float c = value_at(r->cpu, k, f16), g = value_at(info->data, k, f16);
    if (isnan(c) != isnan(g) || (isnan(c) && isnan(g))) {
      if (isnan(c) != isnan(g)) nan = true;
      continue;
    }
    const double d = fabs((double)g - (double)c);
    if (d > max_abs) max_abs = d;
    if (fabs((double)c) > max_ref) max_ref = fabs((double)c);
  }
  const double rel = nan ? INFINITY : max_ref > 0 ? max_abs / max_ref : (max_abs > 0 ? INFINITY : 0.0);
  const double tol = r->tol * v->tol_scale;
  const bool bad = nan || (rel > tol && max_abs > ABS_FLOOR);
  v->compared += n;
  if (rel > v->worst_rel) {
    v->worst_rel = rel;
    v->worst_run = v->run;
    v->worst_node = i;
  }
  if (bad && !v->failed) {
    v->failed = true;
    v->fail_run = v->run;
    v->fail_node = i;
    snprintf(v->fail_msg, sizeof v->fail_msg, "run %d node %u (%s %s): max abs %.3g, rel %.3g > tolerance %.3g%s",
             v->run, i, info->op, info->name, max_abs, rel, tol, nan ? " (NaN on one side only)" : "");
  }
  if (v->all || bad || v->run == 0) {
    if (v->print_header) {
      printf("%4s %5s  %-12s %-28s %-20s %10s %10s %9s  %s\n", "run", "node", "op", "output", "kernel", "max_abs",
             "rel", "tol", "");
      v->print_header = false;
    }
    printf("%4d %5u  %-12s %-28s %-20s %10.3g %10.3g %9.2g  %s\n", v->run, i, info->op, info->name, info->ukernel,
           max_abs, rel, tol, bad ? "MISMATCH" : "ok");
  }
}

#if SPR_CUDA
/* --isolate: the CPU's value of tensor t as node i reads it: the snapshot
 * of the node that wrote t (or the tensor t is a view of) earlier in this
 * run; NULL (keep the device's) for inputs. */
static const void *cpu_source(void *user, uint32_t i, int32_t t) {
  const struct validator *v = user;
  const struct spr_graph *g = v->graph;
  size_t off = 0;
  int32_t root = t;
  while (root >= 0 && g->tensors[root].role == SPR_ROLE_VIEW) {
    off += g->tensors[root].offset;
    root = g->tensors[root].parent;
  }
  if (root < 0) return NULL;
  const int32_t j = v->producer[root];
  if (j < 0 || (uint32_t)j >= i || (uint32_t)j >= v->n_nodes) return NULL;
  const struct node_ref *r = &v->nodes[j];
  const size_t have = r->n * (r->f16 ? 2 : 4);
  if (r->cpu == NULL || off + g->tensors[t].nbytes > have) return NULL;
  return r->cpu + off;
}
#endif

/* Tolerance of every node: the least precise weight type seen so far in
 * execution order (GEMM / conv / embedding tables), and at least F16_KV_TOL
 * from the first f16 KV store on. */
static void set_tolerances(struct validator *v, struct spr_session *s, bool isolate) {
  const struct spr_graph *g = spr_session_graph(s);
  double tol = tol_of(SPR_DTYPE_F32);
  for (int32_t i = 0; i < g->n_nodes && (uint32_t)i < v->n_nodes; i++) {
    const struct spr_node *n = &g->nodes[i];
    if (n->op == SPR_OP_GEMM || n->op == SPR_OP_CONV2D) {
      const double t = tol_of(g->tensors[n->src[1]].type);
      tol = t > tol ? t : tol;
    } else if (n->op == SPR_OP_GET_ROWS) {
      const double t = tol_of(g->tensors[n->src[0]].type);
      tol = t > tol ? t : tol;
    } else if (n->op == SPR_OP_KV_STORE && g->tensors[n->dst].type == SPR_DTYPE_F16) {
      tol = F16_KV_TOL > tol ? F16_KV_TOL : tol;
    }
    v->nodes[i].tol = isolate ? ISOLATE_TOL : tol;
    v->nodes[i].f16 = g->tensors[n->dst].type == SPR_DTYPE_F16;
  }
}

static int validate_run(struct validator *v, struct spr_session *cpu, struct spr_session *gpu,
                        enum spr_status (*step)(void *ctx, struct spr_session *s), void *ctx) {
  spr_session_set_observer(cpu, cpu_observer, v);
  spr_session_set_observer(gpu, gpu_observer, v);
  enum spr_status s = step(ctx, cpu);
  if (s != SPR_STATUS_OK) return cli_fail_status(s, NULL, "CPU run");
  s = step(ctx, gpu);
  if (s != SPR_STATUS_OK) return cli_fail_status(s, &gpu->last_error, "GPU run");
  v->run++;
  return 0;
}

static enum spr_status run_plain(void *ctx, struct spr_session *s) {
  (void)ctx;
  return spr_session_run(s);
}

struct llm_step {
  const int32_t *tokens;
  size_t n;
};
static enum spr_status run_llm(void *ctx, struct spr_session *s) {
  const struct llm_step *st = ctx;
  return spr_llm_eval(s, st->tokens, st->n, NULL);
}

static uint32_t argmax(const float *x, size_t n) {
  uint32_t b = 0;
  for (size_t i = 1; i < n; i++) b = x[i] > x[b] ? (uint32_t)i : b;
  return b;
}

int cmd_validate(int argc, char **argv) {
  int steps = 4, batch = 0, ctx = 0;
  bool all = false, kv_f32 = false, isolate = false;
  float tol_scale = 1.0f;
  const char *backend_default = "cuda";
  const struct cli_opt opts[] = {
      {"steps", CLI_INT, &steps, "N", "LLM: single-token decode steps after the prompt (default 4)"},
      {"batch", CLI_INT, &batch, "N", "LLM: most prompt tokens per step (default: the model's)"},
      {"ctx", CLI_INT, &ctx, "N", "LLM: context length (default: 256, or the model's if shorter)"},
      {"kv-f32", CLI_FLAG, &kv_f32, NULL, "LLM: keep the KV cache in f32 (default f16)"},
      {"all", CLI_FLAG, &all, NULL,
       "print every node of every run (default: every node of the first run, then "
       "mismatches only)"},
      {"isolate", CLI_FLAG, &isolate, NULL,
       "run every GPU node on the CPU's inputs: each node's own difference, not propagated (tolerance 1e-4)"},
      {"tol-scale", CLI_FLOAT, &tol_scale, "F", "multiply every tolerance by F (default 1)"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[2];
  int n_pos;
  const int r =
      cli_parse(argc, argv, "sparrow validate MODEL [INPUT] [--backend cuda]",
                "Runs MODEL on the CPU and on a CUDA GPU and compares the output of every graph node: max abs\n"
                "difference, relative difference (max abs diff / max |cpu value| of the node), and the first node\n"
                "over the tolerance of the weight types it depends on (docs/cuda.md). INPUT: an image for a vision\n"
                "model (default: a fixed pseudo-random input), a prompt for an LLM (default \"Once upon a time\").\n"
                "Exit status: 0 match, 1 mismatch or error, 2 usage, 77 no CUDA backend or no CUDA device.",
                opts, &c, pos, 1, 2, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  const char *backend = c.backend != NULL ? c.backend : backend_default;
  if (strcmp(backend, "cpu") == 0) return cli_fail("validate compares the CPU with --backend cuda") + 1;
  if (steps < 0 || batch < 0 || ctx < 0) return cli_fail("--steps, --batch and --ctx must not be negative") + 1;
  if (!(tol_scale > 0)) return cli_fail("--tol-scale must be positive") + 1;

  /* Two sessions of the same configuration: the CPU one stays on the CPU. */
  struct cli_common cc = c;
  cc.backend = "cpu";
  struct spr_config cfg;
  cli_config(&cc, &cfg);
  struct cli_session cpu, gpu;
  int rc = cli_open(pos[0], &cfg, c.arena_bytes, &cpu);
  if (rc != 0) return rc;
  const bool is_llm = strcmp(spr_model_arch(cpu.model), "llama") == 0;
  if (is_llm) {
    struct spr_llm_info li;
    spr_llm_info(cpu.model, &li);
    cfg.ctx = ctx > 0 ? ctx : (li.ctx_train > 0 && li.ctx_train < 256 ? (int)li.ctx_train : 256);
    cfg.batch = batch;
    cfg.kv_f32 = kv_f32 ? 1 : 0;
    cli_close(&cpu);
    rc = cli_open(pos[0], &cfg, c.arena_bytes, &cpu);
    if (rc != 0) return rc;
  }
  cc.backend = backend;
  struct spr_config unused;
  cli_config(&cc, &unused); /* records the backend for the GPU session's cli_open */
  rc = cli_open(pos[0], &cfg, c.arena_bytes, &gpu);
  if (rc != 0) {
    cli_close(&cpu);
    return rc;
  }

  /* The device state starts zeroed; so does the CPU's (KV caches: the rows
   * not written yet are compared too). */
  memset(cpu.session->arena + cpu.session->layout.state_off, 0, cpu.session->layout.state);

  struct validator v;
  memset(&v, 0, sizeof v);
  v.n_nodes = spr_session_n_nodes(cpu.session);
  v.nodes = calloc(v.n_nodes ? v.n_nodes : 1, sizeof *v.nodes);
  v.tol_scale = tol_scale;
  v.all = all;
  v.print_header = true;
  v.worst_rel = 0;
  set_tolerances(&v, cpu.session, isolate);
  v.graph = spr_session_graph(cpu.session);
  v.producer = malloc((size_t)(v.graph->n_tensors > 0 ? v.graph->n_tensors : 1) * sizeof(int32_t));
  for (int32_t t = 0; t < v.graph->n_tensors; t++) v.producer[t] = -1;
  for (int32_t i = 0; i < v.graph->n_nodes; i++) v.producer[v.graph->nodes[i].dst] = i;
#if SPR_CUDA
  if (isolate) spr_cuda_set_source_hook(gpu.backend, cpu_source, &v);
#endif
  printf("validate %s: %u nodes, CPU vs %s\n", pos[0], v.n_nodes, backend);
#if SPR_CUDA
  struct spr_cuda_info ci;
  spr_cuda_info(gpu.backend, &ci);
  printf("device: %s; one allocation of %zu bytes = planned state+activations %zu + scratch %zu + weights %zu\n",
         ci.device, ci.total_bytes, ci.planned_bytes, ci.scratch_bytes, ci.weights_bytes);
#endif

  if (!is_llm) {
    struct spr_tensor_view in_c, in_g;
    spr_session_input(cpu.session, 0, &in_c);
    spr_session_input(gpu.session, 0, &in_g);
    struct spr_vision_info vi;
    if (n_pos == 2 && spr_vision_info(cpu.model, &vi) == SPR_STATUS_OK) {
      struct cli_image img;
      if (cli_image_load(pos[1], (int)vi.channels, &img) != 0) {
        rc = 1;
      } else {
        struct spr_error err = {SPR_STATUS_OK, ""};
        const enum spr_status s = spr_vision_preprocess(cpu.model, img.pixels, img.w, img.h, img.channels, in_c.data,
                                                        in_c.nbytes / sizeof(float), &err);
        if (s != SPR_STATUS_OK) rc = cli_fail_status(s, &err, pos[1]);
        cli_image_free(&img);
      }
    } else {
      uint64_t st = 0x9e3779b97f4a7c15ull;
      float *x = in_c.data;
      for (size_t i = 0; i < in_c.nbytes / sizeof(float); i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        x[i] = (float)((double)(st >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
      }
    }
    if (rc == 0) {
      memcpy(in_g.data, in_c.data, in_c.nbytes);
      rc = validate_run(&v, cpu.session, gpu.session, run_plain, NULL);
    }
  } else {
    const char *prompt = n_pos == 2 ? pos[1] : "Once upon a time";
    const size_t len = strlen(prompt);
    const size_t work_bytes = spr_llm_tokenize_work_bytes(cpu.model, len);
    void *work = malloc(work_bytes ? work_bytes : 1);
    const size_t max = len + 8 + (size_t)steps;
    int32_t *tok = malloc(max * sizeof(int32_t));
    size_t n_tok = 0;
    enum spr_status s = work && tok ? spr_llm_tokenize(cpu.model, prompt, len, true, tok, max, &n_tok, work, work_bytes)
                                    : SPR_STATUS_OUT_OF_MEMORY;
    if (s != SPR_STATUS_OK) rc = cli_fail_status(s, NULL, "tokenize");
    const size_t b = spr_llm_batch(cpu.session);
    for (size_t done = 0; rc == 0 && done < n_tok;) {
      struct llm_step st = {tok + done, n_tok - done < b ? n_tok - done : b};
      rc = validate_run(&v, cpu.session, gpu.session, run_llm, &st);
      done += st.n;
    }
    struct spr_llm_info info;
    spr_llm_info(cpu.model, &info);
    for (int k = 0; rc == 0 && k < steps; k++) {
      struct spr_tensor_view out;
      spr_session_output(cpu.session, 0, &out);
      const size_t V = info.n_vocab;
      const float *lg = (const float *)out.data + (out.nbytes / sizeof(float) - V);
      tok[n_tok] = (int32_t)argmax(lg, V);
      struct llm_step st = {tok + n_tok, 1};
      n_tok++;
      rc = validate_run(&v, cpu.session, gpu.session, run_llm, &st);
    }
    free(work);
    free(tok);
  }

  if (rc == 0) {
    printf("%d run(s), %llu values compared; largest relative difference %.3g (run %d, node %u)\n", v.run,
           (unsigned long long)v.compared, v.worst_rel, v.worst_run, v.worst_node);
    if (v.failed) {
      printf("MISMATCH: first node over tolerance: %s\n", v.fail_msg);
      rc = 1;
    } else {
      printf("OK: every node within tolerance\n");
    }
  }
  for (uint32_t i = 0; i < v.n_nodes; i++) free(v.nodes[i].cpu);
  free(v.nodes);
  free(v.producer);
  cli_close(&gpu);
  cli_close(&cpu);
  return rc;
}
