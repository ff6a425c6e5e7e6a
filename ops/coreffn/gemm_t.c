/* ops/coreffn/gemm_t.c — prefill through ffn_down_t: C[M,N] = X[M,K] . Wt[K,N]
 * (+ R) with Wt stored K rows of N values (each FFN neuron's output weights
 * contiguous, quantized along N).
 *
 * The packed-panel f32 GEMM ukernels (ops/gemm/gemm.h) want W as slices
 * [KC][NR] — for Wt that is a plain copy of row segments, so a task
 * dequantizes its [KC x NB] strip of Wt once per K block straight into NB/NR
 * slices and runs the ukernel over every X panel of the row chunk, keeping
 * K-partial tiles in its acc buffer. X is packed per row chunk as in
 * gemm_driver.c. Blocking depends on the shapes only; each output element is
 * produced by one task: bit-identical for any thread count. */
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"
#include "ops/gemm/gemm.h"
#include "ops/gemm/qgemm.h"
#include "ops/quant/quant.h"
#include "runtime/util.h"

enum {
  KC_TARGET = 192,
  NB_MIN = 64,             /* columns per task (a multiple of NR and of the weight block) */
  XPACK_FLOATS = 1u << 18, /* packed X per chunk, as gemm_driver.c */
  MC_MIN = 128,
};

static size_t cdiv(size_t a, size_t b) {
  return (a + b - 1) / b;
}

struct geom {
  size_t mr, nr, qk;
  size_t kc, n_kb;
  size_t mc, panels;
  size_t nb, n_nb;
  size_t slice; /* floats between the [KC][NR] slices of a strip (64-byte multiple) */
  size_t xp_bytes, strip_bytes, acc_bytes, tmp_bytes, thread_bytes;
};

static void geom_init(struct geom *g, const struct spr_gemm_ukernel *uk, enum spr_dtype wt, size_t m, size_t n,
                      size_t k) {
  memset(g, 0, sizeof *g);
  g->mr = uk->mr;
  g->nr = uk->nr;
  g->qk = spr_dtype_block_elems(wt);
  g->n_kb = cdiv(k, KC_TARGET);
  g->kc = spr_align_up(cdiv(k, g->n_kb), 16); /* K blocks start 64-byte aligned in the X panels */
  if (g->kc > k) g->kc = k;
  g->n_kb = cdiv(k, g->kc);
  size_t mc = XPACK_FLOATS / k;
  if (mc < MC_MIN) mc = MC_MIN;
  mc = mc / g->mr * g->mr;
  if (mc < g->mr) mc = g->mr;
  const size_t m_pad = cdiv(m, g->mr) * g->mr;
  g->mc = mc < m_pad ? mc : m_pad;
  g->panels = g->mc / g->mr;
  size_t nb = NB_MIN;
  while (nb % g->nr != 0 || nb % g->qk != 0) nb *= 2; /* all are powers of two */
  g->nb = nb;
  g->n_nb = cdiv(n, nb);
  g->xp_bytes = spr_align_up(g->panels * g->mr * k * sizeof(float), 64);
  g->slice = spr_align_up(g->kc * g->nr * sizeof(float), 64) / sizeof(float);
  g->strip_bytes = nb / g->nr * g->slice * sizeof(float);
  g->acc_bytes = g->n_kb > 1 ? spr_align_up(g->panels * nb * g->mr * sizeof(float), 64) : 0;
  g->tmp_bytes = spr_align_up(nb * sizeof(float), 64);
  g->thread_bytes = g->strip_bytes + g->acc_bytes + g->tmp_bytes;
}

size_t spr_gemm_t_workspace(const void *f32_gemm_ukernel, enum spr_dtype w_type, size_t m, size_t n, size_t k,
                            int n_threads) {
  struct geom g;
  geom_init(&g, f32_gemm_ukernel, w_type, m, n, k);
  return g.xp_bytes + (size_t)(n_threads > 1 ? n_threads : 1) * g.thread_bytes;
}

struct run {
  const struct spr_gemm_ukernel *uk;
  struct geom g;
  enum spr_dtype wt;
  spr_dequantize_row_fn deq;
  spr_deq_ukernel_fn fast; /* Q4_0 / Q8_0: the ISA's strip dequantizer */
  size_t m, n, k, row_bytes, bb;
  const float *x;
  const uint8_t *w;
  const float *residual;
  float *dst;
  uint8_t *scratch;
  float *xp;
  size_t m0, rows, panels;
};

static void pack_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct run *c = vctx;
  for (size_t p = begin; p < end; p++) {
    const size_t m = c->m0 + p * c->g.mr, rows = c->rows - p * c->g.mr < c->g.mr ? c->rows - p * c->g.mr : c->g.mr;
    c->uk->packx(c->k, rows, c->x + m * c->k, c->k, c->xp + p * c->g.mr * c->k);
  }
}

/* dst += residual over rows [m0, m0 + rows), columns [n0, n0 + nbw) (n a row) */
static void add_residual(const float *residual, float *dst, size_t n, size_t m0, size_t rows, size_t n0, size_t nbw) {
  if (residual == NULL) return;
  for (size_t m = m0; m < m0 + rows; m++) {
    float *d = dst + m * n + n0;
    const float *r = residual + m * n + n0;
    for (size_t j = 0; j < nbw; j++) d[j] += r[j];
  }
}

static void compute_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct run *c = vctx;
  const struct geom *g = &c->g;
  const size_t mr = g->mr, nr = g->nr, k = c->k, n = c->n;
  uint8_t *mem = c->scratch + g->xp_bytes + (size_t)tid * g->thread_bytes;
  float *strip = (float *)(void *)mem, *acc = (float *)(void *)(mem + g->strip_bytes);
  float *tmp = (float *)(void *)(mem + g->strip_bytes + g->acc_bytes);
  for (size_t t = begin; t < end; t++) {
    const size_t n0 = t * g->nb, nbw = n - n0 < g->nb ? n - n0 : g->nb;
    const size_t n_sl = cdiv(nbw, nr);
    for (size_t kb = 0; kb < g->n_kb; kb++) {
      const size_t k0 = kb * g->kc, kc = k - k0 < g->kc ? k - k0 : g->kc;
      /* strip: slice s = columns [n0 + s*nr, +nr) as [kc][NR], zero-padded */
      for (size_t kk = 0; kk < kc; kk++) {
        const uint8_t *src = c->w + (k0 + kk) * c->row_bytes + n0 / g->qk * c->bb;
        if (c->fast != NULL)
          c->fast(src, tmp, nbw);
        else
          c->deq(src, tmp, (int64_t)nbw);
        for (size_t s = 0; s < n_sl; s++) {
          float *wp = strip + s * g->slice + kk * nr;
          const size_t j0 = s * nr, nrj = nbw - j0 < nr ? nbw - j0 : nr;
          memcpy(wp, tmp + j0, nrj * sizeof(float));
          for (size_t j = nrj; j < nr; j++) wp[j] = 0.0f;
        }
      }
      const unsigned flags = (kb > 0 ? SPR_GEMM_ACC_LOAD : 0u) | (kb + 1 == g->n_kb ? SPR_GEMM_FINAL : 0u);
      for (size_t s = 0; s < n_sl; s++) {
        const size_t j0 = s * nr, nrj = nbw - j0 < nr ? nbw - j0 : nr;
        for (size_t p = 0; p < c->panels; p++) {
          const size_t rows = c->rows - p * mr < mr ? c->rows - p * mr : mr;
          c->uk->gemm(kc, c->xp + p * mr * k + k0 * mr, strip + s * g->slice, acc + (s * c->panels + p) * nr * mr,
                      flags, rows, nrj, NULL, c->dst + (c->m0 + p * mr) * n + n0 + j0, n);
        }
      }
    }
    add_residual(c->residual, c->dst, n, c->m0, c->rows, n0, nbw);
  }
}

void spr_gemm_t_run(const struct spr_exec *x, const void *f32_gemm_ukernel, enum spr_dtype w_type, uint32_t isa,
                    size_t m, size_t n, size_t k, const float *xm, const void *wt, size_t ldw, const float *residual,
                    float *dst) {
  struct run c;
  memset(&c, 0, sizeof c);
  c.uk = f32_gemm_ukernel;
  geom_init(&c.g, c.uk, w_type, m, n, k);
  c.wt = w_type;
  c.deq = spr_dequantize_row_get(w_type);
  const struct spr_deq_ukernel *dk = spr_deq_select(w_type, isa);
  c.fast = dk != NULL ? dk->fn : NULL;
  c.m = m, c.n = n, c.k = k;
  c.row_bytes = ldw != 0 ? ldw : spr_quant_row_bytes(w_type, (int64_t)n);
  c.bb = spr_dtype_block_bytes(w_type);
  c.x = xm;
  c.w = wt;
  c.residual = residual;
  c.dst = dst;
  c.scratch = x->scratch;
  c.xp = (float *)(void *)x->scratch;
  for (size_t m0 = 0; m0 < m; m0 += c.g.mc) {
    c.m0 = m0;
    c.rows = m - m0 < c.g.mc ? m - m0 : c.g.mc;
    c.panels = cdiv(c.rows, c.g.mr);
    spr_parallel(x, c.panels, pack_task, &c);
    spr_parallel(x, c.g.n_nb, compute_task, &c);
  }
}

/* ---- Q4_0 / Q8_0 Wt: integer GEMM over requantized strips ------------------------------
 *
 * A task takes a strip of NQ output columns [n0, n0 + NQ): for each group of
 * 32 neurons (rows of Wt) the rqt.inc ukernel requantizes each column's 32
 * values into one Q8_0 block (the rule in coreffn.h), written transposed:
 * the strip becomes NQ rows of F/32 Q8_0 blocks, the row-major ffn_down
 * layout of those columns. The Q8_0 GEMM ukernel (its packed-panel path for
 * M >= SPR_QGEMM_PACKED_MIN_M) then runs the chunk's quantized activation
 * rows against it: activations as in every quantized GEMM, weights carrying
 * at most half a Q8_0 step of requantization error on top of their own.
 * Where an rqtp.inc entry writes the packed path's panel layout, the strip
 * is requantized panel by panel straight into it (the same bytes, one pass
 * instead of rqt + packw). Only NQ rows are ever held per thread. Each
 * output is one ukernel call over the whole K: bit-identical for any thread
 * count. */

enum { NQ = 64, QMC_MAX = 256 };

/* Panels per strip of the rqtp path: each row of wt is visited once per
 * RQTP_NP * 32 columns. */
enum { RQTP_NP = 8, NQP = 32 * RQTP_NP };

static bool rqtp_layout(const struct spr_qgemm_ukernel *uk) {
  for (size_t i = 0; i < spr_rqtp_ukernels_count; i++)
    if (uk->packed != NULL && spr_rqtp_ukernels[i].packed == uk->packed) return true;
  return false;
}

struct qgeom {
  size_t kb, n_kb32, ldq, xrow, mc, wq_bytes, panel_bytes, thread_bytes, xq_bytes;
  bool packed;
};

static void qgeom_init(struct qgeom *g, const struct spr_qgemm_ukernel *uk, size_t m, size_t k) {
  memset(g, 0, sizeof *g);
  g->kb = k / 32;
  g->ldq = g->kb * 34;
  g->mc = m < QMC_MAX ? m : QMC_MAX;
  g->packed = uk->packed != NULL && m >= SPR_QGEMM_PACKED_MIN_M;
  g->xrow = g->packed ? uk->packed->xbytes(g->kb) : uk->xbytes(g->kb);
  g->xq_bytes = spr_align_up(g->mc * g->xrow, 64);
  g->wq_bytes = spr_align_up(NQ * g->ldq, 64);
  g->panel_bytes = g->packed ? spr_align_up(uk->packed->wbytes(g->kb), 64) : 0;
  g->thread_bytes = g->wq_bytes + g->panel_bytes;
  if (g->packed && rqtp_layout(uk) && RQTP_NP * g->panel_bytes > g->thread_bytes)
    g->thread_bytes = RQTP_NP * g->panel_bytes;
}

size_t spr_gemm_tq_workspace(const void *q8_0_gemm_ukernel, size_t m, size_t n, size_t k, int n_threads) {
  (void)n;
  struct qgeom g;
  qgeom_init(&g, q8_0_gemm_ukernel, m, k);
  return g.xq_bytes + (size_t)(n_threads > 1 ? n_threads : 1) * g.thread_bytes;
}

struct qrun_t {
  const struct spr_qgemm_ukernel *uk;
  struct qgeom g;
  spr_rqt_ukernel_fn rqt;
  spr_rqtp_ukernel_fn rqtp; /* NULL: rqt into wq, then packw */
  size_t nq;                /* columns a task: NQP with rqtp, else NQ */
  size_t n, k, row_bytes, bb;
  const float *x;
  const uint8_t *w;
  const float *residual;
  float *dst;
  uint8_t *xq, *tbuf;
  size_t m0, rows;
};

/* Rows [begin, end) of a chunk starting at row m0 of x (k values a row) into
 * the packed activations xq (xrow bytes a row), by the packed path's packer or
 * the ukernel's own. Shared by the strip GEMM and the bundled GLU prefill. */
static void pack_rows(const struct spr_qgemm_ukernel *uk, bool packed, size_t kb, size_t k, const float *x, size_t m0,
                      uint8_t *xq, size_t xrow, size_t begin, size_t end) {
  for (size_t r = begin; r < end; r++) {
    const float *xr = x + (m0 + r) * k;
    if (packed)
      uk->packed->packx(kb, 0, kb, xr, xq + r * xrow);
    else
      uk->packx(kb, 0, kb, xr, xq + r * xrow);
  }
}

/* out[i][j] (ldo floats a row) for the chunk's rows against a packed panel of nr columns */
static void panel_rows(const struct spr_qgemm_packed *pk, size_t kb, size_t rows, const uint8_t *panel, size_t nr,
                       const uint8_t *xq, size_t xrow, float *out, size_t ldo) {
  for (size_t i = 0; i < rows; i += pk->mr) {
    const size_t mr = rows - i < pk->mr ? rows - i : pk->mr;
    pk->gemm(kb, mr, nr, panel, xq + i * xrow, xrow, NULL, out + i * ldo, ldo);
  }
}

/* rows x nbw products of the quantized activation rows xq with the weight rows
 * at w (ldw bytes apart, uk's type): through packed panels (packw into panel)
 * or uk's own GEMM. Shared by the requantized strips and the bundled GLU. */
static void rows_product(const struct spr_qgemm_ukernel *uk, bool packed, size_t kb, size_t rows, const uint8_t *xq,
                         size_t xrow, uint8_t *panel, const uint8_t *w, size_t ldw, size_t nbw, float *out,
                         size_t ldo) {
  if (packed) {
    const struct spr_qgemm_packed *pk = uk->packed;
    for (size_t j0 = 0; j0 < nbw; j0 += pk->nr) {
      const size_t nr = nbw - j0 < pk->nr ? nbw - j0 : pk->nr;
      pk->packw(kb, nr, w + j0 * ldw, ldw, panel);
      panel_rows(pk, kb, rows, panel, nr, xq, xrow, out + j0, ldo);
    }
    return;
  }
  for (size_t j0 = 0; j0 < nbw; j0 += uk->nr) {
    const size_t nr = nbw - j0 < uk->nr ? nbw - j0 : uk->nr;
    for (size_t i = 0; i < rows; i += uk->mr) {
      const size_t mr = rows - i < uk->mr ? rows - i : uk->mr;
      uk->gemm(kb, mr, nr, w + j0 * ldw, ldw, xq + i * xrow, xrow, NULL, out + i * ldo + j0, ldo);
    }
  }
}

static void qpack_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct qrun_t *c = vctx;
  pack_rows(c->uk, c->g.packed, c->g.kb, c->k, c->x, c->m0, c->xq, c->g.xrow, begin, end);
}

static void qcompute_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct qrun_t *c = vctx;
  const struct qgeom *g = &c->g;
  const size_t n = c->n;
  uint8_t *mem = c->tbuf + (size_t)tid * g->thread_bytes;
  uint8_t *wq = mem, *panel = mem + g->wq_bytes;
  for (size_t t = begin; t < end; t++) {
    const size_t n0 = t * c->nq, nbw = n - n0 < c->nq ? n - n0 : c->nq;
    float *out = c->dst + c->m0 * n + n0;
    if (c->rqtp != NULL) { /* panels of 32 columns (n is a multiple of 32: whole blocks) */
      const struct spr_qgemm_packed *pk = c->uk->packed;
      c->rqtp(c->w + n0 / 32 * c->bb, c->row_bytes, g->kb, nbw / 32, mem);
      for (size_t j0 = 0; j0 < nbw; j0 += 32)
        panel_rows(pk, g->kb, c->rows, mem + j0 / 32 * g->panel_bytes, 32, c->xq, g->xrow, out + j0, n);
      add_residual(c->residual, c->dst, n, c->m0, c->rows, n0, nbw);
      continue;
    }
    for (size_t gi = 0; gi < g->kb; gi++)
      c->rqt(c->w + 32 * gi * c->row_bytes + n0 / 32 * c->bb, c->row_bytes, nbw, wq + 34 * gi, g->ldq);
    rows_product(c->uk, g->packed, g->kb, c->rows, c->xq, g->xrow, panel, wq, g->ldq, nbw, out, n);
    add_residual(c->residual, c->dst, n, c->m0, c->rows, n0, nbw);
  }
}

void spr_gemm_tq_run(const struct spr_exec *x, const void *q8_0_gemm_ukernel, enum spr_dtype w_type, uint32_t isa,
                     size_t m, size_t n, size_t k, const float *xm, const void *wt, size_t ldw, const float *residual,
                     float *dst) {
  struct qrun_t c;
  memset(&c, 0, sizeof c);
  c.uk = q8_0_gemm_ukernel;
  qgeom_init(&c.g, c.uk, m, k);
  c.rqt = spr_rqt_select(w_type, isa)->fn;
  if (c.g.packed) {
    const struct spr_rqtp_ukernel *p = spr_rqtp_select(w_type, c.uk->packed, isa);
    c.rqtp = p != NULL ? p->fn : NULL;
  }
  c.nq = c.rqtp != NULL ? NQP : NQ;
  c.n = n, c.k = k;
  c.row_bytes = ldw != 0 ? ldw : spr_quant_row_bytes(w_type, (int64_t)n);
  c.bb = spr_dtype_block_bytes(w_type);
  c.x = xm;
  c.w = wt;
  c.residual = residual;
  c.dst = dst;
  c.xq = x->scratch;
  c.tbuf = x->scratch + c.g.xq_bytes;
  for (size_t m0 = 0; m0 < m; m0 += c.g.mc) {
    c.m0 = m0;
    c.rows = m - m0 < c.g.mc ? m - m0 : c.g.mc;
    spr_parallel(x, c.rows, qpack_task, &c);
    spr_parallel(x, cdiv(n, c.nq), qcompute_task, &c);
  }
}

/* ---- bundled gate/up prefill: act(X . G^T) * (X . U^T) with strided weight rows ---------
 *
 * The rows of G and U are ldw bytes apart (the neuron bundles of
 * blk.N.ffn_bundle), which the quantized GEMM driver does not take; the
 * ukernels do. A task takes a strip of NQ output columns: per panel of nr
 * columns the gate rows are packed and multiplied into dst, the up rows
 * into the thread's tmp [rows][NQ], then dst = act(dst) * tmp. Activation
 * rows are quantized once per row chunk (as qpack_task). */

struct qglu_geom {
  size_t kb, xrow, mc, xq_bytes, panel_bytes, tmp_bytes, thread_bytes;
  bool packed;
};

static void qglu_geom_init(struct qglu_geom *g, const struct spr_qgemm_ukernel *uk, size_t m, size_t k) {
  memset(g, 0, sizeof *g);
  g->kb = k / 32;
  g->mc = m < QMC_MAX ? m : QMC_MAX;
  g->packed = uk->packed != NULL && m >= SPR_QGEMM_PACKED_MIN_M;
  g->xrow = g->packed ? uk->packed->xbytes(g->kb) : uk->xbytes(g->kb);
  g->xq_bytes = spr_align_up(g->mc * g->xrow, 64);
  g->panel_bytes = g->packed ? spr_align_up(uk->packed->wbytes(g->kb), 64) : 0;
  g->tmp_bytes = spr_align_up(g->mc * NQ * sizeof(float), 64);
  g->thread_bytes = g->panel_bytes + g->tmp_bytes;
}

size_t spr_gemm_qglu_workspace(const void *qgemm_ukernel, size_t m, size_t k, int n_threads) {
  struct qglu_geom g;
  qglu_geom_init(&g, qgemm_ukernel, m, k);
  return g.xq_bytes + (size_t)(n_threads > 1 ? n_threads : 1) * g.thread_bytes;
}

struct qglu_run {
  const struct spr_qgemm_ukernel *uk;
  struct qglu_geom g;
  void (*act)(size_t, const float *, float *);
  size_t n, k, ldw, up_off;
  const float *x;
  const uint8_t *w;
  float *dst;
  uint8_t *xq, *tbuf;
  size_t m0, rows;
};

static void qglu_pack_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct qglu_run *c = vctx;
  pack_rows(c->uk, c->g.packed, c->g.kb, c->k, c->x, c->m0, c->xq, c->g.xrow, begin, end);
}

/* rows x nbw products of the weight rows at w (ldw apart) into out (ldo floats apart) */
static void qglu_product(const struct qglu_run *c, uint8_t *panel, const uint8_t *w, size_t nbw, float *out,
                         size_t ldo) {
  rows_product(c->uk, c->g.packed, c->g.kb, c->rows, c->xq, c->g.xrow, panel, w, c->ldw, nbw, out, ldo);
}

static void qglu_compute_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct qglu_run *c = vctx;
  uint8_t *mem = c->tbuf + (size_t)tid * c->g.thread_bytes;
  uint8_t *panel = mem;
  float *tmp = (float *)(void *)(mem + c->g.panel_bytes);
  for (size_t t = begin; t < end; t++) {
    const size_t n0 = t * NQ, nbw = c->n - n0 < NQ ? c->n - n0 : NQ;
    float *out = c->dst + c->m0 * c->n + n0;
    qglu_product(c, panel, c->w + n0 * c->ldw, nbw, out, c->n);
    qglu_product(c, panel, c->w + c->up_off + n0 * c->ldw, nbw, tmp, NQ);
    for (size_t i = 0; i < c->rows; i++) {
      float *d = out + i * c->n;
      const float *u = tmp + i * NQ;
      if (c->act != NULL) c->act(nbw, d, d);
      for (size_t j = 0; j < nbw; j++) d[j] *= u[j];
    }
  }
}

void spr_gemm_qglu_run(const struct spr_exec *x, const void *qgemm_ukernel, void (*act)(size_t, const float *, float *),
                       size_t m, size_t n, size_t k, const float *xm, const void *w, size_t ldw, size_t up_off,
                       float *dst) {
  struct qglu_run c;
  memset(&c, 0, sizeof c);
  c.uk = qgemm_ukernel;
  qglu_geom_init(&c.g, c.uk, m, k);
  c.act = act;
  c.n = n, c.k = k, c.ldw = ldw, c.up_off = up_off;
  c.x = xm;
  c.w = w;
  c.dst = dst;
  c.xq = x->scratch;
  c.tbuf = x->scratch + c.g.xq_bytes;
  for (size_t m0 = 0; m0 < m; m0 += c.g.mc) {
    c.m0 = m0;
    c.rows = m - m0 < c.g.mc ? m - m0 : c.g.mc;
    spr_parallel(x, c.rows, qglu_pack_task, &c);
    spr_parallel(x, cdiv(n, NQ), qglu_compute_task, &c);
  }
}
