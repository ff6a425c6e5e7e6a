/* tools/bench/bench_coreffn.c — the core-neuron FFN ops at TinyLlama shapes
 * (E 2048, F 5632), dense vs sparse, one FFN layer (not part of the build).
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Iinclude -Itests tools/bench/bench_coreffn.c \
 *      tests/support/op_harness.c build/libsparrow.a -lpthread -lm -o /tmp/bench_coreffn
 *   bench_coreffn [--type q4_0|q8_0|f16|f32] [--threads N] [--beta 0.4] [--ms 300] [--tokens 64] [--cpu 1]
 *                 [--paired N]
 * (--cpu 1: time by this thread's CPU time, for 1 thread on a loaded machine; --paired N, q4_0:
 * also N runs alternating the dense gate GEMV and the compact decode, both from DRAM, and the
 * median ratio of their rates: the figure to compare two builds of the compact decode by)
 *
 * Prints the median time of: gate GEMV dense (GEMM op, M = 1; also with one copy of
 * the weights, i.e. from cache) and row-gathered
 * (GEMM_ROWS, sparse); ffn_down row-major dense and sparse (scatter + GEMV);
 * ffn_down_t dense (axpy over all neurons) and sparse (over the core); the
 * selection of one step of --tokens tokens; prefill of the down projection
 * (M = --tokens) with ffn_down (quantized GEMM) and ffn_down_t (Q4_0/Q8_0: the
 * Q8_0 GEMM over requantized strips; f32/f16: f32 GEMM on dequantized slices); for Q4_0 the
 * fused bundle decode and the `compact` decode (FFN_DOWN reading a core pack: one pack, from
 * cache, against copies rotating, from DRAM: how close the compute comes to the stream). Weights
 * rotate through >= 256 MiB of copies so each decode run reads DRAM, as a real decode does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/coreffn/coreffn.h"
#include "ops/quant/quant.h"
#include "platform/time.h"
#include "support/op_harness.h"

enum { E = 2048, F = 5632 };

static void *xalloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}

/* --cpu: this thread's CPU time instead of wall time (1 thread on a shared machine) */
static int g_cpu = 0, g_min = 0; /* --min 1: the fastest run instead of the median */
static uint64_t now_ns(void) {
  if (!g_cpu) return spr_time_ns();
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t g_seed = 12345;
static float frand(void) {
  g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((g_seed >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* copies of one weight matrix (rows x k of type t) so runs stream DRAM */
struct weights {
  uint8_t **copy;
  int n;
  size_t bytes;
};

static void make_weights(struct weights *w, enum spr_dtype t, size_t rows, size_t k) {
  float *f = xalloc(rows * k * sizeof(float));
  for (size_t i = 0; i < rows * k; i++) f[i] = frand() * 0.05f;
  w->bytes = spr_quant_row_bytes(t, (int64_t)k) * rows;
  w->n = (int)((256u << 20) / w->bytes) + 1;
  w->copy = malloc((size_t)w->n * sizeof *w->copy);
  for (int c = 0; c < w->n; c++) {
    w->copy[c] = xalloc(w->bytes);
    if (c == 0)
      spr_quantize_row_get(t)(f, w->copy[0], (int64_t)(rows * k));
    else
      memcpy(w->copy[c], w->copy[0], w->bytes);
  }
  free(f);
}

static int cmp_d(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* --paired N: N iterations of one dense GEMV (gnd over gts, gts[grot] rotating
 * through gw) and one compact decode (cnd over cts, cts[rot] rotating through
 * cw copies 1..), alternated on one thread pool; prints the median of the
 * per-iteration ratio of their rates (bytes / time) and the mean rates. One
 * host state meets both, so the ratio moves much less than two separate
 * medians do (on this host a rate moves 10-20 % within seconds). */
static void time_paired(struct spr_tensor *gts, int grot, struct spr_node *gnd, struct weights *gw,
                        struct spr_tensor *cts, int rot, struct spr_node *cnd, struct weights *cw,
                        struct spr_core_ctl *ctl, int threads, int iters) {
  struct spr_test_op hg, hc;
  struct spr_error err;
  ctl->mode = SPR_CORE_MODE_DENSE;
  const enum spr_status sg = spr_test_op_setup(&hg, gts, gnd, SPR_ISA_ALL, threads, &err);
  ctl->mode = SPR_CORE_MODE_SPARSE;
  if (sg != SPR_STATUS_OK || spr_test_op_setup(&hc, cts, cnd, SPR_ISA_ALL, threads, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "setup: %s\n", err.msg);
    exit(1);
  }
  hg.run.n_tokens = hc.run.n_tokens = 1;
  struct spr_pool *own = hg.exec.pool; /* one pool for both: a second one's worker would spin on a core */
  hg.exec.pool = hc.exec.pool;
  double *r = xalloc((size_t)iters * sizeof(double)), sum_g = 0, sum_c = 0;
  for (int i = 0; i < iters; i++) {
    gts[grot].data = gw->copy[i % gw->n];
    cts[rot].data = cw->copy[1 + i % (cw->n - 1)];
    ctl->mode = SPR_CORE_MODE_DENSE;
    const uint64_t t0 = now_ns();
    spr_test_op_exec(&hg);
    const uint64_t t1 = now_ns();
    ctl->mode = SPR_CORE_MODE_SPARSE;
    spr_test_op_exec(&hc);
    const uint64_t t2 = now_ns();
    const double g = (double)gw->bytes / (double)(t1 - t0), c = (double)cw->bytes / (double)(t2 - t1);
    r[i] = c / g;
    sum_g += g, sum_c += c;
  }
  qsort(r, (size_t)iters, sizeof r[0], cmp_d);
  printf("paired x%d: compact/dense-GEMV rate median %.3f (quartiles %.3f-%.3f); mean GB/s dense %.1f compact %.1f\n",
         iters, r[iters / 2], r[iters / 4], r[3 * iters / 4], sum_g / iters, sum_c / iters);
  free(r);
  hg.exec.pool = own;
  spr_test_op_teardown(&hg);
  spr_test_op_teardown(&hc);
}

/* median ms of op runs; rot: the weight tensor index to rotate (-1: none) */
static double time_op(struct spr_tensor *ts, struct spr_node *nd, int threads, int ms, int rot, struct weights *w,
                      int n_tokens) {
  struct spr_test_op h;
  struct spr_error err;
  if (spr_test_op_setup(&h, ts, nd, SPR_ISA_ALL, threads, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "setup: %s\n", err.msg);
    exit(1);
  }
  h.run.n_tokens = n_tokens;
  double t[4096];
  int n = 0;
  const uint64_t start = spr_time_ns();
  while (n < 4096 && (n < 5 || (double)(spr_time_ns() - start) * 1e-6 < ms)) {
    if (rot >= 0) ts[rot].data = w->copy[n % w->n];
    const uint64_t t0 = now_ns();
    spr_test_op_exec(&h);
    t[n++] = (double)(now_ns() - t0) * 1e-6;
  }
  spr_test_op_teardown(&h);
  qsort(t, (size_t)n, sizeof t[0], cmp_d);
  return g_min ? t[0] : t[n / 2];
}

int main(int argc, char **argv) {
  enum spr_dtype type = SPR_DTYPE_Q4_0;
  int threads = 1, ms = 300, tokens = 64, paired = 0;
  float beta = 0.4f;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--type") == 0) {
      type = strcmp(argv[i + 1], "q8_0") == 0  ? SPR_DTYPE_Q8_0
             : strcmp(argv[i + 1], "f16") == 0 ? SPR_DTYPE_F16
             : strcmp(argv[i + 1], "f32") == 0 ? SPR_DTYPE_F32
                                               : SPR_DTYPE_Q4_0;
    } else if (strcmp(argv[i], "--threads") == 0) {
      threads = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--ms") == 0) {
      ms = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--beta") == 0) {
      beta = strtof(argv[i + 1], NULL);
    } else if (strcmp(argv[i], "--paired") == 0) {
      paired = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--min") == 0) {
      g_min = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--cpu") == 0) {
      g_cpu = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--tokens") == 0) {
      tokens = atoi(argv[i + 1]);
    }
  }
  printf("type %s, threads %d, beta %.2f, E %d, F %d\n", spr_dtype_name(type), threads, (double)beta, E, F);
  struct weights wg, wd, wdt;
  make_weights(&wg, type, F, E);  /* gate: F rows of E */
  make_weights(&wd, type, E, F);  /* ffn_down: E rows of F */
  make_weights(&wdt, type, F, E); /* ffn_down_t: F rows of E */
  const int T = tokens;
  float *x = xalloc((size_t)T * F * sizeof(float)), *y = xalloc((size_t)T * F * sizeof(float));
  float *res = xalloc((size_t)T * E * sizeof(float)), *out = xalloc((size_t)T * E * sizeof(float));
  for (size_t i = 0; i < (size_t)T * F; i++) x[i] = frand();
  for (size_t i = 0; i < (size_t)T * E; i++) res[i] = frand();
  /* state: a random core set of n_core neurons */
  const size_t n_core = spr_core_count(beta, F);
  int32_t *sel_mem = xalloc(spr_core_sel_words(F) * sizeof(int32_t));
  int32_t *ctl_mem = xalloc((SPR_CORE_CTL_WORDS + 2 * 64) * sizeof(int32_t));
  memset(sel_mem, 0, spr_core_sel_words(F) * sizeof(int32_t));
  memset(ctl_mem, 0, (SPR_CORE_CTL_WORDS + 2 * 64) * sizeof(int32_t));
  struct spr_core_sel *sel = (struct spr_core_sel *)(void *)sel_mem;
  struct spr_core_ctl *ctl = (struct spr_core_ctl *)(void *)ctl_mem;
  int32_t *freq = spr_core_sel_freq(sel);
  for (size_t n = 0; n < F; n++) freq[n] = (int32_t)((unsigned)(frand() * 1000.0f + 1000.0f));
  spr_core_pick(freq, F, n_core, spr_core_sel_core(sel, F));
  sel->n_core = (int32_t)n_core;

  struct spr_tensor ts[8];
  const int64_t ne_x1[2] = {E, 1}, ne_w[2] = {E, F}, ne_f1[2] = {F, 1}, ne_wd[2] = {F, E}, ne_e1[2] = {E, 1};
  const int64_t ne_sel[1] = {(int64_t)spr_core_sel_words(F)}, ne_ctl[1] = {SPR_CORE_CTL_WORDS + 128};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x1, res);
  spr_test_tensor(&ts[1], type, 2, ne_w, wg.copy[0]);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_f1, y);
  spr_test_tensor(&ts[3], SPR_DTYPE_I32, 1, ne_sel, sel_mem);
  spr_test_tensor(&ts[4], SPR_DTYPE_I32, 1, ne_ctl, ctl_mem);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM_ROWS;
  nd.n_src = 6;
  const int32_t gsrc[6] = {0, 1, -1, -1, 3, 4};
  memcpy(nd.src, gsrc, sizeof gsrc);
  nd.dst = 2;
  nd.p.gemm.act = SPR_ACT_SILU;
  ctl->mode = SPR_CORE_MODE_DENSE;
  (void)time_op(ts, &nd, threads, ms, 1, &wg,
                1); /* warm-up: the first op timed in the process read 16-55x slower (2026-11-30) */
  const double gate_dense = time_op(ts, &nd, threads, ms, 1, &wg, 1);
  const double gate_dense_c = time_op(ts, &nd, threads, ms, -1, NULL, 1);
  ctl->mode = SPR_CORE_MODE_SPARSE;
  const double gate_sparse = time_op(ts, &nd, threads, ms, 1, &wg, 1);
  struct spr_tensor gts[8]; /* the dense gate GEMV, kept for --paired */
  memcpy(gts, ts, sizeof gts);
  struct spr_node gnd = nd;
  printf("gate GEMV dense     cache %7.3f ms (%.1f GB/s)   DRAM %7.3f ms (%.1f GB/s)\n", gate_dense_c,
         wg.bytes / gate_dense_c / 1e6, gate_dense, wg.bytes / gate_dense / 1e6);
  printf("gate GEMV          dense %8.3f ms   core rows %8.3f ms   (%.2fx; %.1f MB -> %.1f MB)\n", gate_dense,
         gate_sparse, gate_dense / gate_sparse, wg.bytes / 1e6, wg.bytes * (double)n_core / F / 1e6);

  /* ffn_down row-major: h {F,1} -> {E,1} */
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_f1, x);
  spr_test_tensor(&ts[1], type, 2, ne_wd, wd.copy[0]);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_e1, out);
  spr_test_tensor(&ts[5], SPR_DTYPE_F32, 2, ne_e1, res);
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_FFN_DOWN;
  nd.n_src = 6;
  const int32_t dsrc[6] = {0, 1, -1, 5, 3, 4};
  memcpy(nd.src, dsrc, sizeof dsrc);
  nd.dst = 2;
  ctl->mode = SPR_CORE_MODE_DENSE;
  const double down_dense = time_op(ts, &nd, threads, ms, 1, &wd, 1);
  ctl->mode = SPR_CORE_MODE_SPARSE;
  const double down_sparse = time_op(ts, &nd, threads, ms, 1, &wd, 1);
  printf("ffn_down (row-major) dense %6.3f ms   scatter+GEMV %6.3f ms (%.2fx)\n", down_dense, down_sparse,
         down_dense / down_sparse);
  double dt_sparse_g = 0;
  if (spr_axpy_supports(type)) {
    spr_test_tensor(&ts[1], type, 2, ne_w, wdt.copy[0]);
    nd.p.core.down_t = 1;
    ctl->mode = SPR_CORE_MODE_DENSE;
    const double dt_dense = time_op(ts, &nd, threads, ms, 1, &wdt, 1);
    ctl->mode = SPR_CORE_MODE_SPARSE;
    const double dt_sparse = time_op(ts, &nd, threads, ms, 1, &wdt, 1);
    dt_sparse_g = dt_sparse;
    printf("ffn_down_t (axpy)  dense %8.3f ms   core      %8.3f ms   (%.2fx; %.1f MB -> %.1f MB)\n", dt_dense,
           dt_sparse, dt_dense / dt_sparse, wdt.bytes / 1e6, wdt.bytes * (double)n_core / F / 1e6);
    /* prefill of the down projection: M = T */
    const int64_t ne_fT[2] = {F, T}, ne_eT[2] = {E, T};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_fT, x);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_eT, out);
    spr_test_tensor(&ts[5], SPR_DTYPE_F32, 2, ne_eT, res);
    const double pt = time_op(ts, &nd, threads, ms, -1, NULL, T);
    spr_test_tensor(&ts[1], type, 2, ne_wd, wd.copy[0]);
    nd.p.core.down_t = 0;
    const double pr = time_op(ts, &nd, threads, ms, -1, NULL, T);
    printf("down prefill M=%d   ffn_down %8.3f ms   ffn_down_t %8.3f ms  (%.2fx)\n", T, pr, pt, pr / pt);
  }
  if (type == SPR_DTYPE_Q4_0) {
    /* neuron bundles {3E, F}: the fused decode (FFN_DOWN over the bundle, n -> y) against the
     * separate ops above (gate + up row-gathered GEMV + ffn_down_t axpy, MUL not counted) */
    struct weights wb;
    make_weights(&wb, type, F, 3 * E);
    const int64_t ne_b[2] = {3 * E, F}, ne_fT[2] = {F, T}, ne_eT[2] = {E, T};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_f1, y);
    spr_test_tensor(&ts[1], type, 2, ne_b, wb.copy[0]);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_e1, out);
    spr_test_tensor(&ts[3], SPR_DTYPE_I32, 1, ne_sel, sel_mem);
    spr_test_tensor(&ts[4], SPR_DTYPE_I32, 1, ne_ctl, ctl_mem);
    spr_test_tensor(&ts[5], SPR_DTYPE_F32, 2, ne_e1, res);
    spr_test_tensor(&ts[6], SPR_DTYPE_F32, 2, ne_e1, res);
    memset(&nd, 0, sizeof nd);
    nd.op = SPR_OP_FFN_DOWN;
    nd.n_src = 6;
    const int32_t bsrc[6] = {0, 1, 6, 5, 3, 4};
    memcpy(nd.src, bsrc, sizeof bsrc);
    nd.dst = 2;
    nd.p.core.down_t = SPR_CORE_DOWN_BUNDLE;
    ctl->mode = SPR_CORE_MODE_DENSE;
    const double fd = time_op(ts, &nd, threads, ms, 1, &wb, 1);
    ctl->mode = SPR_CORE_MODE_SPARSE;
    const double fs = time_op(ts, &nd, threads, ms, 1, &wb, 1);
    printf(
        "fused bundle decode dense %7.3f ms   core      %8.3f ms   (separate ops: core %.3f ms, dense %.3f ms;\n"
        "                    fused core vs separate core %.2fx, vs separate dense %.2fx; %.1f MB -> %.1f MB)\n",
        fd, fs, 2 * gate_sparse + dt_sparse_g, 2 * gate_dense + down_dense, (2 * gate_sparse + dt_sparse_g) / fs,
        (2 * gate_dense + down_dense) / fs, wb.bytes / 1e6, wb.bytes * (double)n_core / F / 1e6);
    /* compact (src6): the core bundles' copy, read from cache (one pack, L3-sized) and from
     * DRAM (copies of it rotating): the compute's rate against the stream's */
    {
      const int64_t ne_pk[2] = {3 * E, (int64_t)spr_core_pack_rows(n_core)};
      struct weights wp;
      wp.bytes = (size_t)ne_pk[1] * spr_quant_row_bytes(type, 3 * E);
      wp.n = (int)((256u << 20) / wp.bytes) + 1;
      wp.copy = malloc((size_t)wp.n * sizeof *wp.copy);
      for (int c = 0; c < wp.n; c++)
        wp.copy[c] = xalloc(wp.bytes); /* [0]: the first run packs; the rest: copies of it */
      spr_test_tensor(&ts[7], type, 2, ne_pk, wp.copy[0]);
      nd.n_src = 7;
      nd.src[6] = 7;
      nd.p.core.beta = beta;
      ctl->mode = SPR_CORE_MODE_SPARSE;
      sel->packed = 0;
      const double fc = time_op(ts, &nd, threads, ms, -1, NULL, 1); /* the first run packs */
      for (int c = 1; c < wp.n; c++) memcpy(wp.copy[c], wp.copy[0], wp.bytes);
      const double fm = time_op(ts, &nd, threads, ms, 7, &wp, 1);
      printf("compact decode      cache %7.3f ms (%.1f GB/s)   DRAM %7.3f ms (%.1f GB/s)   (%.1f MB)\n", fc,
             wp.bytes / fc / 1e6, fm, wp.bytes / fm / 1e6, wp.bytes / 1e6);
      if (paired > 0) time_paired(gts, 1, &gnd, &wg, ts, 7, &nd, &wp, ctl, threads, paired);
      nd.n_src = 6;
      nd.src[6] = -1;
    }
    /* prefill of gate and up: the bundle's strided glu GEMM against two dense GEMMs (M = T) */
    const int64_t ne_xT[2] = {E, T};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_xT, res);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_fT, x);
    memset(&nd, 0, sizeof nd);
    nd.op = SPR_OP_GEMM_ROWS;
    nd.n_src = 6;
    memcpy(nd.src, gsrc, sizeof gsrc);
    nd.dst = 2;
    nd.p.gemm.act = SPR_ACT_SILU;
    ctl->mode = SPR_CORE_MODE_SELECT;
    const double pb = time_op(ts, &nd, threads, ms, -1, NULL, T);
    spr_test_tensor(&ts[1], type, 2, ne_w, wg.copy[0]);
    const double pg = time_op(ts, &nd, threads, ms, -1, NULL, T);
    printf("gate+up prefill M=%d  2 GEMMs %8.3f ms   bundle glu %8.3f ms  (%.2fx)\n", T, 2 * pg, pb, 2 * pg / pb);
    (void)ne_eT;
  }
  /* selection of one step of T tokens */
  const int64_t ne_a[2] = {F, T};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_I32, 1, ne_ctl, ctl_mem);
  spr_test_tensor(&ts[2], SPR_DTYPE_I32, 1, ne_sel, sel_mem);
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_CORE_SELECT;
  nd.n_src = 2;
  nd.src[0] = 0;
  nd.src[1] = 1;
  nd.dst = 2;
  nd.p.core.alpha = 0.2f;
  nd.p.core.beta = beta;
  ctl->mode = SPR_CORE_MODE_SELECT;
  ctl->new_window = 1;
  const double st = time_op(ts, &nd, threads, ms, -1, NULL, T);
  printf("core_select of %d tokens %8.3f ms (k = %d)\n", T, st, sel->k);
  return 0;
}
