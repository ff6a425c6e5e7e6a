/* tools/sparrow/cmd_bench_op.c — `sparrow bench-op OP [shape options] [--json]`.
 *
 * Times one op on random data outside any model: the median and minimum of
 * --runs timed runs after warm-up, and GFLOP/s from the op's own flop count
 * (only the work the op needs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/quant/quant.h"
#include "platform/time.h"
#include "runtime/planner.h"
#include "runtime/util.h"
#include "support/op_harness.h"
#include "tools/sparrow/cli.h"
#include "tools/sparrow/xnn_compare.h"

struct bench_args {
  int m, k, n, runs, heads, head_dim, tokens;
  int kernel, dilation, regions, topk;
  const char *dtype, *wtype, *size;
  bool json, causal, xnnpack, no_f32;
};

static void fill(float *x, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
  }
}

static int parse_size(const char *s, int *h, int *w) {
  char *end = NULL;
  const long a = strtol(s, &end, 10);
  if (end == s || (*end != 'x' && *end != 'X')) return -1;
  const char *t = end + 1;
  const long b = strtol(t, &end, 10);
  if (end == t || *end || a < 1 || b < 1 || a > 65536 || b > 65536) return -1;
  *h = (int)a;
  *w = (int)b;
  return 0;
}

/* Times h->exec (and base->exec, interleaved run by run, when base is not
 * NULL: the two see the same machine load) and prints the result line. */
static int time_and_report(struct spr_test_op *h, struct spr_test_op *base, const char *op, const char *shape_json,
                           const char *shape_text, const struct bench_args *a, const struct cli_common *c,
                           const char *extra_json) {
  const struct spr_op_def *def = spr_op_get((enum spr_op)h->node->op);
  const double flops = (double)def->flops(h->ts, h->node);
  for (int i = 0; i < 3; i++) { /* warm-up: caches, page faults, pool spin-up */
    spr_test_op_exec(h);
    if (base != NULL) spr_test_op_exec(base);
  }
  int runs = a->runs;
  if (runs <= 0) {
    const uint64_t t0 = spr_time_ns();
    spr_test_op_exec(h);
    if (base != NULL) spr_test_op_exec(base);
    const double one = (double)(spr_time_ns() - t0) * 1e-9;
    runs = one > 0 ? (int)(0.5 / one) : 100; /* about half a second of timed runs */
    runs = runs < 10 ? 10 : runs > 2000 ? 2000 : runs;
  }
  double *ms = malloc(2 * (size_t)runs * sizeof *ms);
  if (ms == NULL) return cli_fail("out of memory");
  double *bms = ms + runs;
  for (int i = 0; i < runs; i++) {
    uint64_t t0 = spr_time_ns();
    spr_test_op_exec(h);
    ms[i] = (double)(spr_time_ns() - t0) * 1e-6;
    if (base != NULL) {
      t0 = spr_time_ns();
      spr_test_op_exec(base);
      bms[i] = (double)(spr_time_ns() - t0) * 1e-6;
    }
  }
  double mn = ms[0], bmn = base != NULL ? bms[0] : 0.0;
  for (int i = 1; i < runs; i++) {
    if (ms[i] < mn) mn = ms[i];
    if (base != NULL && bms[i] < bmn) bmn = bms[i];
  }
  const double med = cli_median(ms, (size_t)runs), bmed = base != NULL ? cli_median(bms, (size_t)runs) : 0.0;
  free(ms);
  const double gflops = flops / (med * 1e-3) / 1e9;
  char bjs[256] = "", btx[256] = "";
  if (base != NULL) {
    snprintf(bjs, sizeof bjs,
             ", \"f32_ukernel\": \"%s\", \"f32_median_ms\": %.6f, \"f32_min_ms\": %.6f, \"f32_gflops\": %.3f, "
             "\"speedup_vs_f32\": %.3f",
             base->node->impl_name ? base->node->impl_name : "-", bmed, bmn, flops / (bmed * 1e-3) / 1e9, bmed / med);
    snprintf(btx, sizeof btx, "  f32 in the same run (%s): median %.4f ms, min %.4f ms, %.2f GFLOP/s; speedup %.2fx\n",
             base->node->impl_name ? base->node->impl_name : "-", bmed, bmn, flops / (bmed * 1e-3) / 1e9, bmed / med);
  }
  if (a->json) {
    printf("{\"op\": \"%s\", %s, \"threads\": %d, \"ukernel\": ", op, shape_json, c->threads);
    cli_json_str(stdout, h->node->impl_name ? h->node->impl_name : "-");
    printf(", \"runs\": %d, \"median_ms\": %.6f, \"min_ms\": %.6f, \"gflops\": %.3f, \"flops\": %.0f%s%s}\n", runs, med,
           mn, gflops, flops, bjs, extra_json ? extra_json : "");
  } else {
    printf("%s %s, %d thread(s), ukernel %s: median %.4f ms, min %.4f ms, %.2f %s (%d runs)\n", op, shape_text,
           c->threads, h->node->impl_name ? h->node->impl_name : "-", med, mn, gflops,
           base != NULL ? "GOP/s" : "GFLOP/s", runs);
    fputs(btx, stdout);
    if (extra_json != NULL) printf("  compare:%s\n", extra_json + 1);
  }
  return 0;
}

/* The weight types bench-op gemm takes (f32, f16, and the quantized ones). */
static int parse_wtype(const char *s, enum spr_dtype *t) {
  static const struct {
    const char *name;
    enum spr_dtype t;
  } k[] = {{"f32", SPR_DTYPE_F32},   {"f16", SPR_DTYPE_F16},   {"q8_0", SPR_DTYPE_Q8_0},
           {"q4_0", SPR_DTYPE_Q4_0}, {"q4_k", SPR_DTYPE_Q4_K}, {"q6_k", SPR_DTYPE_Q6_K}};
  if (s == NULL) {
    *t = SPR_DTYPE_F32;
    return 0;
  }
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (strcmp(s, k[i].name) == 0) {
      *t = k[i].t;
      return 0;
    }
  return -1;
}

static int bench_gemm(const struct bench_args *a, const struct cli_common *c) {
  if (a->m < 1 || a->k < 1 || a->n < 1) return cli_fail("gemm needs --m, --k and --n >= 1");
  enum spr_dtype wt;
  if (a->dtype != NULL && a->wtype != NULL && strcmp(a->dtype, a->wtype) != 0)
    return cli_fail("--dtype and --wtype disagree");
  if (parse_wtype(a->wtype != NULL ? a->wtype : a->dtype, &wt) != 0)
    return cli_fail("--wtype must be f32, f16, q8_0, q4_0, q4_k or q6_k");
  const bool f16 = wt == SPR_DTYPE_F16, quant = wt != SPR_DTYPE_F32 && !f16;
  const size_t M = (size_t)a->m, K = (size_t)a->k, N = (size_t)a->n;
  if (quant && K % (size_t)spr_dtype_block_elems(wt) != 0)
    return cli_fail("%s weights need K a multiple of %zu", spr_dtype_name(wt), (size_t)spr_dtype_block_elems(wt));
  const size_t wbytes = quant ? N * spr_quant_row_bytes(wt, (int64_t)K) : N * K * (f16 ? 2 : 4);
  float *x = malloc(M * K * sizeof(float)), *y = malloc(M * N * sizeof(float)), *b = malloc(N * sizeof(float));
  float *wf = malloc(N * K * sizeof(float)), *y32 = malloc(M * N * sizeof(float));
  void *w = malloc(wbytes);
  if (!x || !y || !b || !w || !wf || !y32) return cli_fail("out of memory for a %zux%zux%zu gemm", M, K, N);
  fill(x, M * K, 1);
  fill(b, N, 3);
  fill(wf, N * K, 2);
  if (f16) {
    for (size_t i = 0; i < N * K; i++) ((uint16_t *)w)[i] = spr_fp16_from_f32(wf[i]);
  } else if (quant) {
    const spr_quantize_row_fn qf = spr_quantize_row_get(wt);
    const size_t rb = spr_quant_row_bytes(wt, (int64_t)K);
    for (size_t j = 0; j < N; j++) qf(wf + j * K, (uint8_t *)w + j * rb, (int64_t)K);
  } else {
    memcpy(w, wf, N * K * sizeof(float));
  }
  struct spr_tensor ts[4], ts32[4];
  const int64_t nx[2] = {(int64_t)K, (int64_t)M}, nw[2] = {(int64_t)K, (int64_t)N}, nb[1] = {(int64_t)N},
                ny[2] = {(int64_t)N, (int64_t)M};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, nx, x);
  spr_test_tensor(&ts[1], wt, 2, nw, w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 1, nb, b);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ny, y);
  ts[1].role = SPR_ROLE_WEIGHT;
  struct spr_node node = {.op = SPR_OP_GEMM, .n_src = 4, .src = {0, 1, 2, -1, -1, -1}, .dst = 3};
  struct spr_test_op h, h32;
  struct spr_node node32; /* the harness keeps a pointer to it */
  struct spr_error err = {SPR_STATUS_OK, ""};
  enum spr_status s = spr_test_op_setup(&h, ts, &node, c->isa_mask, c->threads, &err);
  bool have32 = false;
  if (s == SPR_STATUS_OK && quant && !a->no_f32) {
    /* the f32 GEMM on the same (unquantized) weights, timed in the same run */
    memcpy(ts32, ts, sizeof ts32);
    spr_test_tensor(&ts32[1], SPR_DTYPE_F32, 2, nw, wf);
    ts32[1].role = SPR_ROLE_WEIGHT;
    spr_test_tensor(&ts32[3], SPR_DTYPE_F32, 2, ny, y32);
    node32 = node;
    s = spr_test_op_setup(&h32, ts32, &node32, c->isa_mask, c->threads, &err);
    if (s != SPR_STATUS_OK) spr_test_op_teardown(&h);
    have32 = s == SPR_STATUS_OK;
  }
  int rc;
  if (s != SPR_STATUS_OK) {
    rc = cli_fail_status(s, &err, "gemm");
  } else {
    char js[160], tx[96];
    snprintf(js, sizeof js, "\"m\": %d, \"k\": %d, \"n\": %d, \"dtype\": \"%s\"", a->m, a->k, a->n, spr_dtype_name(wt));
    snprintf(tx, sizeof tx, "M=%d K=%d N=%d %s", a->m, a->k, a->n, spr_dtype_name(wt));
    char extra[200] = "";
    rc = 0;
    if (a->xnnpack) {
      /* XNNPACK first, so its numbers are measured before ours in the same process. */
      const int runs = a->runs > 0 ? a->runs : 50;
      double xm = 0, xmin = 0;
      const int xr =
          wt != SPR_DTYPE_F32 ? -2 : cli_xnn_gemm(a->m, a->k, a->n, c->threads, x, w, b, y, runs, &xm, &xmin);
      if (xr == -1)
        rc = cli_fail("this build has no XNNPACK (install libxnnpack-dev libpthreadpool-dev)");
      else if (xr == -2)
        rc = cli_fail("--xnnpack compares f32 weights only");
      else if (xr != 0)
        rc = xr;
      snprintf(extra, sizeof extra, ", \"xnnpack_median_ms\": %.6f, \"xnnpack_min_ms\": %.6f, \"xnnpack_gflops\": %.3f",
               xm, xmin, 2.0 * a->m * (double)a->k * a->n / (xm * 1e-3) / 1e9);
    }
    if (rc == 0) rc = time_and_report(&h, have32 ? &h32 : NULL, "gemm", js, tx, a, c, a->xnnpack ? extra : NULL);
    spr_test_op_teardown(&h);
    if (have32) spr_test_op_teardown(&h32);
  }
  free(x);
  free(y);
  free(y32);
  free(b);
  free(w);
  free(wf);
  return rc;
}

/* Prints "workspace_bytes" of the node with the result (scratch comparisons). */
static void ws_json(char *buf, size_t len, const struct spr_test_op *h, int threads) {
  const struct spr_op_def *def = spr_op_get((enum spr_op)h->node->op);
  snprintf(buf, len, ", \"workspace_bytes\": %zu", def->workspace(h->ts, h->node, threads));
}

/* Times one attention-family node (node: src 0,0,0 = one fused qkv tensor
 * [q | k | v] of D columns each over T tokens, dst 1 = {D, T}) on random data
 * and reports it with its scratch bytes ("workspace_bytes"). */
static int bench_qkv_node(const struct bench_args *a, const struct cli_common *c, int T, int D, struct spr_node *node,
                          const char *op, const char *shape_json, const char *shape_text) {
  const size_t n_qkv = (size_t)T * 3 * (size_t)D;
  /* aligned as the planned arena places every tensor (SPR_PLAN_ALIGN; malloc's 16
   * bytes past a line would split each head slice over one more line) */
  float *qkv = aligned_alloc(SPR_PLAN_ALIGN, spr_align_up(n_qkv * sizeof(float), SPR_PLAN_ALIGN));
  float *y = aligned_alloc(SPR_PLAN_ALIGN, spr_align_up((size_t)T * (size_t)D * sizeof(float), SPR_PLAN_ALIGN));
  if (!qkv || !y) {
    free(qkv);
    free(y);
    return cli_fail("out of memory");
  }
  fill(qkv, n_qkv, 5);
  struct spr_tensor ts[2];
  const int64_t nq[2] = {3 * D, T}, ny[2] = {D, T};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, nq, qkv);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ny, y);
  struct spr_test_op h;
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_setup(&h, ts, node, c->isa_mask, c->threads, &err);
  int rc;
  if (s != SPR_STATUS_OK) {
    rc = cli_fail_status(s, &err, op);
  } else {
    char extra[64];
    ws_json(extra, sizeof extra, &h, c->threads);
    rc = time_and_report(&h, NULL, op, shape_json, shape_text, a, c, extra);
    spr_test_op_teardown(&h);
  }
  free(qkv);
  free(y);
  return rc;
}

static int bench_attention(const struct bench_args *a, const struct cli_common *c) {
  int T = a->tokens, hh = 0, ww = 0;
  if (a->size != NULL) {
    if (parse_size(a->size, &hh, &ww) != 0) return cli_fail("--size expects HxW, got '%s'", a->size);
    T = hh * ww;
  }
  if (T < 1 || a->heads < 1 || a->head_dim < 1)
    return cli_fail("attention needs --size HxW (or --tokens T), --heads, --head-dim");
  const int D = a->heads * a->head_dim;
  struct spr_node node = {.op = SPR_OP_ATTENTION, .n_src = 3, .src = {0, 0, 0, -1, -1, -1}, .dst = 1};
  node.p.attn = (struct spr_attn_params){.n_heads = (uint16_t)a->heads,
                                         .n_kv_heads = (uint16_t)a->heads,
                                         .head_dim = (uint16_t)a->head_dim,
                                         .causal = a->causal,
                                         .scale = 1.0f / sqrtf((float)a->head_dim),
                                         .q_col = 0,
                                         .k_col = (uint32_t)D,
                                         .v_col = (uint32_t)(2 * D)};
  char js[160], tx[96];
  snprintf(js, sizeof js, "\"tokens\": %d, \"heads\": %d, \"head_dim\": %d, \"causal\": %s", T, a->heads, a->head_dim,
           a->causal ? "true" : "false");
  snprintf(tx, sizeof tx, "T=%d heads=%d head_dim=%d%s", T, a->heads, a->head_dim, a->causal ? " causal" : "");
  return bench_qkv_node(a, c, T, D, &node, "attention", js, tx);
}

/* 2-D neighborhood attention over an HxW grid, fused qkv rows [q | k | v]. */
static int bench_na2d(const struct bench_args *a, const struct cli_common *c) {
  int hh = 0, ww = 0;
  if (a->size == NULL || parse_size(a->size, &hh, &ww) != 0) return cli_fail("na2d needs --size HxW");
  const int K = a->kernel, dl = a->dilation > 0 ? a->dilation : 1;
  if (K < 1 || a->heads < 1 || a->head_dim < 1) return cli_fail("na2d needs --kernel, --heads, --head-dim");
  const int D = a->heads * a->head_dim, T = hh * ww;
  struct spr_node node = {.op = SPR_OP_NEIGHBORHOOD_ATTN, .n_src = 3, .src = {0, 0, 0, -1, -1, -1}, .dst = 1};
  node.p.na = (struct spr_na_params){.n_heads = (uint16_t)a->heads,
                                     .head_dim = (uint16_t)a->head_dim,
                                     .n_dims = 2,
                                     .size = {(uint16_t)hh, (uint16_t)ww, 1},
                                     .kernel = {(uint16_t)K, (uint16_t)K, 1},
                                     .dilation = {(uint16_t)dl, (uint16_t)dl, 1},
                                     .stride = {1, 1, 1},
                                     .scale = 1.0f / sqrtf((float)a->head_dim),
                                     .q_col = 0,
                                     .k_col = (uint32_t)D,
                                     .v_col = (uint32_t)(2 * D)};
  char js[200], tx[128];
  snprintf(js, sizeof js, "\"size\": \"%dx%d\", \"kernel\": %d, \"dilation\": %d, \"heads\": %d, \"head_dim\": %d", hh,
           ww, K, dl, a->heads, a->head_dim);
  snprintf(tx, sizeof tx, "%dx%d K=%d d=%d heads=%d head_dim=%d", hh, ww, K, dl, a->heads, a->head_dim);
  return bench_qkv_node(a, c, T, D, &node, "na2d", js, tx);
}

/* Bi-level routing attention over an HxW map, fused qkv rows [q | k | v]
 * with qk_dim = v_dim = heads * head_dim (BiFormer's qk_dim == dim). */
static int bench_bra(const struct bench_args *a, const struct cli_common *c) {
  int hh = 0, ww = 0;
  if (a->size == NULL || parse_size(a->size, &hh, &ww) != 0) return cli_fail("bra needs --size HxW");
  if (a->regions < 1 || a->topk < 1 || a->heads < 1 || a->head_dim < 1)
    return cli_fail("bra needs --regions, --topk, --heads, --head-dim");
  if (hh % a->regions != 0 || ww % a->regions != 0)
    return cli_fail("--size %dx%d is not a multiple of --regions %d (BiFormer pads the map)", hh, ww, a->regions);
  const int D = a->heads * a->head_dim, T = hh * ww;
  struct spr_node node = {.op = SPR_OP_BRA, .n_src = 3, .src = {0, 0, 0, -1, -1, -1}, .dst = 1};
  node.p.bra = (struct spr_bra_params){.n_heads = (uint16_t)a->heads,
                                       .n_win = (uint16_t)a->regions,
                                       .topk = (uint16_t)a->topk,
                                       .h = (uint16_t)hh,
                                       .w = (uint16_t)ww,
                                       .qk_dim = (uint32_t)D,
                                       .v_dim = (uint32_t)D,
                                       .scale = 0.0f, /* qk_dim^-0.5 */
                                       .q_col = 0,
                                       .k_col = (uint32_t)D,
                                       .v_col = (uint32_t)(2 * D)};
  char js[200], tx[128];
  snprintf(js, sizeof js, "\"size\": \"%dx%d\", \"regions\": %d, \"topk\": %d, \"heads\": %d, \"head_dim\": %d", hh, ww,
           a->regions, a->topk, a->heads, a->head_dim);
  snprintf(tx, sizeof tx, "%dx%d S=%d topk=%d heads=%d head_dim=%d", hh, ww, a->regions, a->topk, a->heads,
           a->head_dim);
  return bench_qkv_node(a, c, T, D, &node, "bra", js, tx);
}

int cmd_bench_op(int argc, char **argv) {
  struct bench_args a = {0};
  const struct cli_opt opts[] = {
      {"m", CLI_INT, &a.m, "M", "gemm: rows of the activations"},
      {"k", CLI_INT, &a.k, "K", "gemm: inner dimension"},
      {"n", CLI_INT, &a.n, "N", "gemm: output features (rows of the weight)"},
      {"dtype", CLI_STR, &a.dtype, "TYPE", "gemm: weight type f32|f16|q8_0|q4_0|q4_k|q6_k (default f32)"},
      {"wtype", CLI_STR, &a.wtype, "TYPE",
       "gemm: = --dtype; a quantized type also times f32 on the same data, interleaved"},
      {"no-f32", CLI_FLAG, &a.no_f32, NULL, "gemm: quantized types: do not time f32 alongside"},
      {"xnnpack", CLI_FLAG, &a.xnnpack, NULL, "gemm: also time XNNPACK's fully-connected op on the same data"},
      {"size", CLI_STR, &a.size, "HxW", "attention/na2d/bra: token grid (T = H*W)"},
      {"tokens", CLI_INT, &a.tokens, "T", "attention: number of tokens (instead of --size)"},
      {"heads", CLI_INT, &a.heads, "H", "attention/na2d/bra: heads"},
      {"head-dim", CLI_INT, &a.head_dim, "D", "attention/na2d/bra: head dimension (bra: qk_dim = v_dim = H*D)"},
      {"causal", CLI_FLAG, &a.causal, NULL, "attention: causal mask"},
      {"kernel", CLI_INT, &a.kernel, "K", "na2d: window size per axis"},
      {"dilation", CLI_INT, &a.dilation, "D", "na2d: dilation per axis (default 1)"},
      {"regions", CLI_INT, &a.regions, "S", "bra: regions per side (S x S regions; H and W multiples of S)"},
      {"topk", CLI_INT, &a.topk, "K", "bra: routed regions per region"},
      {"runs", CLI_INT, &a.runs, "N", "timed runs (default: about 0.5 s worth, 10..2000)"},
      {"json", CLI_FLAG, &a.json, NULL,
       "print one JSON object (\"median_ms\", \"min_ms\", \"gflops\"; attention/na2d/bra: \"workspace_bytes\")"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[1];
  int n_pos;
  const int r =
      cli_parse(argc, argv,
                "sparrow bench-op gemm --m M --k K --n N [--wtype f32|f16|q8_0|q4_0|q4_k|q6_k] [--json]\n"
                "       sparrow bench-op attention --size HxW --heads H --head-dim D [--causal] [--json]\n"
                "       sparrow bench-op na2d --size HxW --kernel K [--dilation D] --heads H --head-dim D [--json]\n"
                "       sparrow bench-op bra --size HxW --regions S --topk K --heads H --head-dim D [--json]",
                "Times one op on random data at the given shape and reports the median and minimum\n"
                "latency and GFLOP/s, counting only the arithmetic the op needs (T = H*W tokens, C = heads *\n"
                "head-dim): attention 4*T^2*C (--causal: visible pairs only); na2d 4*T*K^2*C; bra 2*T*C\n"
                "(region means) + 2*S^4*C (routing) + 4*T*topk*M*C (attention, M = T/S^2 tokens per region).\n"
                "attention, na2d and bra also print the node's scratch bytes at --threads (\"workspace_bytes\",\n"
                "what `sparrow plan` counts for that node). Inputs: one fused qkv tensor [q | k | v] of C\n"
                "columns each; bra uses qk_dim = v_dim = C, scale C^-0.5, and needs H and W multiples of S.",
                opts, &c, pos, 1, 1, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  if (strcmp(pos[0], "gemm") == 0) return bench_gemm(&a, &c);
  if (strcmp(pos[0], "attention") == 0) return bench_attention(&a, &c);
  if (strcmp(pos[0], "na2d") == 0) return bench_na2d(&a, &c);
  if (strcmp(pos[0], "bra") == 0) return bench_bra(&a, &c);
  return cli_fail("unknown op '%s' for bench-op (gemm, attention, na2d, bra)", pos[0]);
}
