/* ops/gemm/qgemm_driver.c — blocking and threading around the quantized
 * GEMM ukernels (the scheme is explained in qgemm.h).
 *
 * Per row chunk of MC activation rows (its packed rows fit L2):
 *   phase 1  quantize the chunk's rows into scratch; tasks = (row, segment
 *            of about 2048 values), so a single decode row is split too
 *   phase 2  tasks = (n block of NB weight rows) x (group of row tiles); a
 *            task walks its n block NR weight rows at a time and runs the
 *            ukernel over its row tiles (the NR weight rows stay in L1/L2
 *            while the packed activation tiles stream past), then applies
 *            act + residual to its rows of the n block.
 * Every blocking size depends on the shapes and the ukernel only. */
#include <string.h>

#include "ops/gemm/qgemm.h"

enum {
  XQ_TARGET = 1u << 20, /* packed activations per chunk: ~1 MiB, the L2 of a big core */
  MC_MIN = 64,          /* but at least this many rows (W is re-streamed per chunk) */
  NB_TARGET = 64,       /* weight rows per task (and per act/residual segment) */
  MIN_TASKS = 12,       /* split the row tiles too when there are fewer n blocks */
  PACK_VALUES = 2048,   /* activation values quantized per pack task */
};

static size_t cdiv(size_t a, size_t b) {
  return (a + b - 1) / b;
}

struct qgeom {
  size_t kb, xrow;   /* blocks per row, packed row bytes */
  size_t mc;         /* rows per chunk */
  size_t seg, n_seg; /* blocks per pack task, pack tasks per row */
  size_t nb, n_nb;   /* n blocks */
};

static void qgeom_init(struct qgeom *g, const struct spr_qgemm_ukernel *uk, enum spr_dtype wt, size_t m, size_t n,
                       size_t k) {
  memset(g, 0, sizeof *g);
  const size_t qk = spr_dtype_block_elems(wt);
  g->kb = k / qk;
  g->xrow = uk->xbytes(g->kb);
  size_t mc = XQ_TARGET / (g->xrow ? g->xrow : 1);
  if (mc < MC_MIN) mc = MC_MIN;
  mc = mc / uk->mr * uk->mr;
  if (mc < uk->mr) mc = uk->mr;
  g->mc = mc < m ? mc : m;
  size_t seg = PACK_VALUES / qk;
  const size_t pb = uk->pack_blocks ? uk->pack_blocks : 1;
  seg = seg < pb ? pb : seg / pb * pb;
  g->seg = seg;
  g->n_seg = cdiv(g->kb, seg);
  size_t nb = NB_TARGET / uk->nr * uk->nr;
  if (nb < uk->nr) nb = uk->nr;
  while (nb > uk->nr && cdiv(n, nb) < 8) {
    const size_t half = nb / 2 / uk->nr * uk->nr;
    nb = half < uk->nr ? uk->nr : half;
  }
  g->nb = nb;
  g->n_nb = cdiv(n, nb);
}

size_t spr_qgemm_driver_workspace(const struct spr_qgemm_ukernel *uk, enum spr_dtype w_type, size_t m, size_t n,
                                  size_t k) {
  struct qgeom g;
  qgeom_init(&g, uk, w_type, m, n, k);
  return g.mc * g.xrow;
}

struct qrun {
  const struct spr_gemm_args *a;
  const struct spr_qgemm_ukernel *uk;
  struct qgeom g;
  uint8_t *xq;
  size_t m0, rows;      /* current chunk */
  size_t tiles;         /* row tiles in the chunk */
  size_t tpg, n_groups; /* row tiles per group, groups */
};

static void pack_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct qrun *c = vctx;
  const size_t kb = c->g.kb;
  for (size_t t = begin; t < end; t++) {
    const size_t r = t / c->g.n_seg, s = t % c->g.n_seg;
    const size_t b0 = s * c->g.seg, b1 = b0 + c->g.seg < kb ? b0 + c->g.seg : kb;
    c->uk->packx(kb, b0, b1, c->a->x + (c->m0 + r) * c->a->k, c->xq + r * c->g.xrow);
  }
}

static void compute_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct qrun *c = vctx;
  const struct spr_gemm_args *a = c->a;
  const struct spr_qgemm_ukernel *uk = c->uk;
  const size_t mr = uk->mr, nr = uk->nr, n = a->n;
  const size_t ldw = c->g.kb * spr_dtype_block_bytes(a->w_type);
  const uint8_t *w = a->w;
  for (size_t t = begin; t < end; t++) {
    const size_t nbi = t / c->n_groups, gi = t % c->n_groups;
    const size_t n0 = nbi * c->g.nb, n1 = n0 + c->g.nb < n ? n0 + c->g.nb : n;
    const size_t p0 = gi * c->tpg, p1 = p0 + c->tpg < c->tiles ? p0 + c->tpg : c->tiles;
    /* a single row is a GEMV: the ukernel walks the whole n block in one call */
    const size_t step = c->rows == 1 ? n1 - n0 : nr;
    for (size_t j = n0; j < n1; j += step) {
      const size_t nrj = n1 - j < step ? n1 - j : step;
      for (size_t p = p0; p < p1; p++) {
        const size_t i = p * mr, mri = c->rows - i < mr ? c->rows - i : mr;
        uk->gemm(c->g.kb, mri, nrj, w + j * ldw, ldw, c->xq + i * c->g.xrow, c->g.xrow,
                 a->bias != NULL ? a->bias + j : NULL, a->dst + (c->m0 + i) * n + j, n);
      }
    }
    const size_t m_end = p1 * mr < c->rows ? p1 * mr : c->rows;
    spr_gemm_finish_rows(a, c->m0 + p0 * mr, c->m0 + m_end, n0, n1);
  }
}

void spr_qgemm_driver_run(const struct spr_exec *x, const struct spr_qgemm_ukernel *uk, const struct spr_gemm_args *a) {
  struct qrun c;
  memset(&c, 0, sizeof c);
  c.a = a;
  c.uk = uk;
  c.xq = x->scratch;
  qgeom_init(&c.g, uk, a->w_type, a->m, a->n, a->k);
  for (size_t m0 = 0; m0 < a->m; m0 += c.g.mc) {
    c.m0 = m0;
    c.rows = a->m - m0 < c.g.mc ? a->m - m0 : c.g.mc;
    c.tiles = cdiv(c.rows, uk->mr);
    size_t groups = cdiv(MIN_TASKS, c.g.n_nb);
    if (groups > c.tiles) groups = c.tiles;
    c.tpg = cdiv(c.tiles, groups);
    c.n_groups = cdiv(c.tiles, c.tpg);
    /* a lone decode row of <= 2048 values is quantized by the caller (no pool round trip) */
    if (c.rows * c.g.n_seg == 1)
      pack_task(&c, 0, 1, 0);
    else
      spr_parallel(x, c.rows * c.g.n_seg, pack_task, &c);
    spr_parallel(x, c.g.n_nb * c.n_groups, compute_task, &c);
  }
}
