/* ops/gemm/gemm_driver.c — blocking, packing and threading around the GEMM
 * ukernels (the loop nest is explained in gemm.h).
 *
 * Per row chunk of MC rows:
 *   phase 1  pack the chunk's X panels [K][MR] (tasks = panels)
 *   phase 2  tasks = (n block of NB columns) x (group of panels); a task
 *            walks its n block NR rows at a time, packs each KC slice of
 *            those W rows into its own [KC][NR] buffer and runs the ukernel
 *            over its panels, keeping K-partial tiles in its acc buffer;
 *            then applies act + residual to its rows of the n block.
 * Every blocking size is a function of the shapes and the ukernel only. */
#include <string.h>

#include "ops/gemm/gemm.h"
#include "runtime/util.h"

enum {
  KC_TARGET = 192,         /* K block: a [KC][NR] W slice and a [KC][MR] X slice share L1 */
  NB_TARGET = 64,          /* columns per task (and per act/residual segment) */
  MIN_TASKS = 12,          /* split the panels too when there are fewer n blocks */
  XPACK_FLOATS = 1u << 18, /* packed X per chunk: ~1 MiB, the L2 of a big core */
  MC_MIN = 128,            /* but at least this many rows (W is re-streamed per chunk) */
  GEMV_NB = 64,            /* W rows per GEMV task */
};

static size_t cdiv(size_t a, size_t b) {
  return (a + b - 1) / b;
}

struct geom {
  size_t mr, nr;
  size_t kc, n_kb;   /* K blocks of kc (the last may be shorter) */
  size_t mc, panels; /* rows and panels per chunk (chunk 0 is the largest) */
  size_t nb, n_nb;   /* n blocks */
  size_t xp_bytes;   /* packed X of one chunk */
  size_t wp_bytes, acc_bytes, rows_bytes, thread_bytes;
};

static void geom_init(struct geom *g, const struct spr_gemm_ukernel *uk, size_t m, size_t n, size_t k, int rows_cb) {
  memset(g, 0, sizeof *g);
  g->mr = uk->mr;
  g->nr = uk->nr;
  g->n_kb = cdiv(k, KC_TARGET);
  g->kc = spr_align_up(cdiv(k, g->n_kb), 16);
  if (g->kc > k) g->kc = k;
  g->n_kb = cdiv(k, g->kc);
  size_t mc = XPACK_FLOATS / k;
  if (mc < MC_MIN) mc = MC_MIN;
  mc = mc / g->mr * g->mr;
  if (mc < g->mr) mc = g->mr;
  const size_t m_pad = cdiv(m, g->mr) * g->mr;
  g->mc = mc < m_pad ? mc : m_pad;
  g->panels = g->mc / g->mr;
  size_t nb = NB_TARGET / g->nr * g->nr;
  if (nb < g->nr) nb = g->nr;
  while (nb > g->nr && cdiv(n, nb) < 8) {
    size_t half = nb / 2 / g->nr * g->nr;
    nb = half < g->nr ? g->nr : half;
  }
  g->nb = nb;
  g->n_nb = cdiv(n, nb);
  g->xp_bytes = spr_align_up(g->panels * g->mr * k * sizeof(float), 64);
  g->wp_bytes = spr_align_up(g->kc * g->nr * sizeof(float), 64);
  g->acc_bytes = g->n_kb > 1 ? spr_align_up(g->panels * g->nr * g->mr * sizeof(float), 64) : 0;
  g->rows_bytes = rows_cb ? spr_align_up(g->mr * k * sizeof(float), 64) : 0;
  g->thread_bytes = g->wp_bytes + g->acc_bytes + g->rows_bytes;
}

static int use_gemv(const struct spr_gemm_args *a) {
  return a->x != NULL && a->m <= SPR_GEMV_MAX_M;
}

size_t spr_gemm_driver_workspace(const struct spr_gemm_ukernel *uk, size_t m, size_t n, size_t k, unsigned flags,
                                 int n_threads) {
  if ((flags & SPR_GEMM_WS_GEMV) && m <= SPR_GEMV_MAX_M) return 0;
  struct geom g;
  geom_init(&g, uk, m, n, k, (flags & SPR_GEMM_WS_ROWS) != 0);
  const size_t t = n_threads > 1 ? (size_t)n_threads : 1;
  return g.xp_bytes + t * g.thread_bytes;
}

/* ---- epilogue: act then residual on one row segment ------------------------ */

void spr_gemm_finish_rows(const struct spr_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
  if (a->act == NULL && a->residual == NULL) return;
  for (size_t m = m0; m < m1; m++) {
    float *c = a->dst + m * a->n + n0;
    if (a->act != NULL) a->act(n1 - n0, c, c);
    if (a->residual != NULL) {
      const float *r = a->residual + m * a->n + n0;
      for (size_t j = 0; j < n1 - n0; j++) c[j] += r[j];
    }
  }
}

/* ---- packed path ------------------------------------------------------------ */

struct run_ctx {
  const struct spr_gemm_args *a;
  const struct spr_gemm_ukernel *uk;
  const struct spr_gemv_ukernel *gv;
  struct geom g;
  uint8_t *scratch;
  float *xp;
  size_t m0, rows, panels; /* current chunk */
  size_t ppg, n_groups;    /* panels per group, groups in this chunk */
};

static uint8_t *thread_mem(const struct run_ctx *c, int tid) {
  return c->scratch + c->g.xp_bytes + (size_t)tid * c->g.thread_bytes;
}

static void pack_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct run_ctx *c = vctx;
  const struct spr_gemm_args *a = c->a;
  const size_t mr = c->g.mr, k = a->k;
  float *tmp = (float *)(thread_mem(c, tid) + c->g.wp_bytes + c->g.acc_bytes);
  for (size_t p = begin; p < end; p++) {
    const size_t m = c->m0 + p * mr, rows = c->rows - p * mr < mr ? c->rows - p * mr : mr;
    float *dst = c->xp + p * mr * k;
    if (a->x != NULL) {
      c->uk->packx(k, rows, a->x + m * k, k, dst);
    } else {
      a->rows(a->rows_ctx, m, rows, tmp);
      c->uk->packx(k, rows, tmp, k, dst);
    }
  }
}

/* Prefetches part q of P of the W slice (rows [j, j+nr), k [k0, k0+kc)) so
 * that the next pack reads cache, not DRAM, while the ukernel computes. */
static void prefetch_part(const uint8_t *w, size_t ldb, size_t nr, size_t bytes, size_t q, size_t parts) {
  const size_t r0 = nr * q / parts, r1 = nr * (q + 1) / parts;
  for (size_t r = r0; r < r1; r++)
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(w + r * ldb + off, 0, 2);
}

static void compute_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct run_ctx *c = vctx;
  const struct spr_gemm_args *a = c->a;
  const struct spr_gemm_ukernel *uk = c->uk;
  const size_t mr = c->g.mr, nr = c->g.nr, k = a->k, n = a->n;
  const size_t esize = a->w_type == SPR_DTYPE_F16 ? 2 : 4;
  const spr_f32_gemm_packw_fn packw = a->w_type == SPR_DTYPE_F16 ? uk->packw_f16 : uk->packw_f32;
  const uint8_t *w = a->w;
  uint8_t *mem = thread_mem(c, tid);
  float *wp = (float *)mem, *acc = (float *)(mem + c->g.wp_bytes);
  for (size_t t = begin; t < end; t++) {
    const size_t nbi = t / c->n_groups, gi = t % c->n_groups;
    const size_t n0 = nbi * c->g.nb, n1 = n0 + c->g.nb < n ? n0 + c->g.nb : n;
    const size_t p0 = gi * c->ppg, p1 = p0 + c->ppg < c->panels ? p0 + c->ppg : c->panels;
    for (size_t j = n0; j < n1; j += nr) {
      const size_t nrj = n1 - j < nr ? n1 - j : nr;
      for (size_t kb = 0; kb < c->g.n_kb; kb++) {
        const size_t k0 = kb * c->g.kc, kc = k - k0 < c->g.kc ? k - k0 : c->g.kc;
        packw(kc, nrj, w + (j * k + k0) * esize, k, wp);
        /* the slice after this one: next K block, else the next NR rows */
        const size_t nk0 = kb + 1 < c->g.n_kb ? k0 + kc : 0, nj = kb + 1 < c->g.n_kb ? j : j + nr;
        const size_t nnr = nj < n1 ? (n1 - nj < nr ? n1 - nj : nr) : 0;
        const size_t nkc = k - nk0 < c->g.kc ? k - nk0 : c->g.kc;
        const unsigned flags = (kb > 0 ? SPR_GEMM_ACC_LOAD : 0u) | (kb + 1 == c->g.n_kb ? SPR_GEMM_FINAL : 0u);
        for (size_t p = p0; p < p1; p++) {
          if (nnr > 0) prefetch_part(w + (nj * k + nk0) * esize, k * esize, nnr, nkc * esize, p - p0, p1 - p0);
          const size_t rows = c->rows - p * mr < mr ? c->rows - p * mr : mr;
          float *dst = a->dst + (c->m0 + p * mr) * n + j;
          uk->gemm(kc, c->xp + p * mr * k + k0 * mr, wp, acc + (p - p0) * nr * mr, flags, rows, nrj,
                   a->bias != NULL ? a->bias + j : NULL, dst, n);
        }
      }
    }
    const size_t m_end = c->m0 + p1 * mr < c->m0 + c->rows ? c->m0 + p1 * mr : c->m0 + c->rows;
    spr_gemm_finish_rows(a, c->m0 + p0 * mr, m_end, n0, n1);
  }
}

/* ---- GEMV path -------------------------------------------------------------- */

static void gemv_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct run_ctx *c = vctx;
  const struct spr_gemm_args *a = c->a;
  const size_t esize = a->w_type == SPR_DTYPE_F16 ? 2 : 4;
  const spr_f32_gemv_ukernel_fn fn = a->w_type == SPR_DTYPE_F16 ? c->gv->f16 : c->gv->f32;
  for (size_t t = begin; t < end; t++) {
    const size_t n0 = t * GEMV_NB, n1 = n0 + GEMV_NB < a->n ? n0 + GEMV_NB : a->n;
    fn(a->k, a->m, n1 - n0, a->x, a->k, (const uint8_t *)a->w + n0 * a->k * esize, a->k,
       a->bias != NULL ? a->bias + n0 : NULL, a->dst + n0, a->n);
    spr_gemm_finish_rows(a, 0, a->m, n0, n1);
  }
}

void spr_gemm_driver_run(const struct spr_exec *x, const struct spr_gemm_ukernel *uk, const struct spr_gemv_ukernel *gv,
                         const struct spr_gemm_args *a) {
  struct run_ctx c;
  memset(&c, 0, sizeof c);
  c.a = a;
  c.uk = uk;
  c.gv = gv;
  c.scratch = x->scratch;
  if (gv != NULL && use_gemv(a)) {
    spr_parallel(x, cdiv(a->n, GEMV_NB), gemv_task, &c);
    return;
  }
  geom_init(&c.g, uk, a->m, a->n, a->k, a->x == NULL);
  c.xp = (float *)x->scratch;
  for (size_t m0 = 0; m0 < a->m; m0 += c.g.mc) {
    c.m0 = m0;
    c.rows = a->m - m0 < c.g.mc ? a->m - m0 : c.g.mc;
    c.panels = cdiv(c.rows, c.g.mr);
    size_t groups = cdiv(MIN_TASKS, c.g.n_nb);
    if (groups > c.panels) groups = c.panels;
    c.ppg = cdiv(c.panels, groups);
    c.n_groups = cdiv(c.panels, c.ppg);
    spr_parallel(x, c.panels, pack_task, &c);
    spr_parallel(x, c.g.n_nb * c.n_groups, compute_task, &c);
  }
}
