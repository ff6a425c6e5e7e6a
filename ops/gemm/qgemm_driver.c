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
#include <stdbool.h>
#include <string.h>

#include "ops/gemm/qgemm.h"

enum {
  XQ_TARGET = 1u << 20, /* packed activations per chunk: ~1 MiB, the L2 of a big core */
  MC_MIN = 64,          /* but at least this many rows (W is re-streamed per chunk) */
  NB_TARGET = 64,       /* weight rows per task (and per act/residual segment) */
  MIN_TASKS = 12,       /* split the row tiles too when there are fewer n blocks */
  PACK_VALUES = 2048,   /* activation values quantized per pack task */
  PACKED_MIN_TASKS = 4, /* packed path: split the row tiles when there are fewer panels */
  DECODE_PACK_SEGS = 4, /* a single row of up to this many pack segments is packed inline */
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

/* ---- packed-panel path ---------------------------------------------------------- */

static bool use_packed(const struct spr_qgemm_ukernel *uk, size_t m) {
  return uk->packed != NULL && m >= SPR_QGEMM_PACKED_MIN_M;
}

/* Rows per chunk of the packed path (its packed rows fit L2). */
static size_t packed_mc(const struct spr_qgemm_packed *pk, size_t kb, size_t m) {
  const size_t xrow = pk->xbytes(kb);
  size_t mc = XQ_TARGET / (xrow ? xrow : 1);
  if (mc < MC_MIN) mc = MC_MIN;
  mc = mc / pk->mr * pk->mr;
  if (mc < pk->mr) mc = pk->mr;
  return mc < m ? mc : m;
}

/* per thread: one packed panel, and with glu the second product of a chunk's rows x panel */
static size_t packed_thread_bytes(const struct spr_qgemm_packed *pk, size_t kb, size_t mc, int glu) {
  return spr_align_up(pk->wbytes(kb), 64) + (glu ? spr_align_up(mc * pk->nr * sizeof(float), 64) : 0);
}

static size_t packed_workspace(const struct spr_qgemm_ukernel *uk, enum spr_dtype w_type, size_t m, size_t k, int glu,
                               int n_threads) {
  const struct spr_qgemm_packed *pk = uk->packed;
  const size_t kb = k / spr_dtype_block_elems(w_type), mc = packed_mc(pk, kb, m);
  const size_t t = n_threads > 1 ? (size_t)n_threads : 1;
  return spr_align_up(mc * pk->xbytes(kb), 64) + t * packed_thread_bytes(pk, kb, mc, glu);
}

/* Packed activation bytes of a chunk: the tile path's rows, or a decode row
 * (a run may have one row whatever was planned). */
static size_t xq_bytes(const struct spr_qgemm_ukernel *uk, const struct qgeom *g) {
  const size_t b = g->mc * g->xrow, d = uk->decode != NULL ? uk->decode->xbytes(g->kb) : 0;
  return spr_align_up(b > d ? b : d, 64);
}

size_t spr_qgemm_driver_workspace(const struct spr_qgemm_ukernel *uk, enum spr_dtype w_type, size_t m, size_t n,
                                  size_t k, int n_threads) {
  /* the larger of the paths: a run may have fewer rows than planned */
  struct qgeom g;
  qgeom_init(&g, uk, w_type, m, n, k);
  const size_t b = xq_bytes(uk, &g), bp = use_packed(uk, m) ? packed_workspace(uk, w_type, m, k, 0, n_threads) : 0;
  return b > bp ? b : bp;
}

/* glu: per thread, the second product of a task's rows x n block */
static size_t glu_thread_bytes(const struct qgeom *g) {
  return spr_align_up(g->mc * g->nb * sizeof(float), 64);
}

size_t spr_qgemm_driver_workspace_multi(const struct spr_qgemm_ukernel *uk, enum spr_dtype w_type, size_t m, size_t n,
                                        size_t k, int glu, int n_threads) {
  struct qgeom g;
  qgeom_init(&g, uk, w_type, m, n, k);
  const size_t t = n_threads > 1 ? (size_t)n_threads : 1;
  const size_t b = xq_bytes(uk, &g) + (glu ? t * glu_thread_bytes(&g) : 0);
  const size_t bp = use_packed(uk, m) ? packed_workspace(uk, w_type, m, k, glu, n_threads) : 0;
  return b > bp ? b : bp;
}

struct qrun {
  const struct spr_gemm_args *a;
  const struct spr_qgemm_ukernel *uk;
  const struct spr_qgemm_decode *dec; /* non-NULL: one row, the entry's decode path */
  spr_qgemm_packx_fn packx;           /* the packer of the path taken (g.xrow its row bytes) */
  struct qgeom g;
  uint8_t *xq;
  uint8_t *glu_tmp; /* glu: per-thread buffers after the packed rows */
  const uint8_t *w[3];
  size_t wn[3];         /* rows of each weight (one weight: wn[0] = n) */
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
    c->packx(kb, b0, b1, c->a->x + (c->m0 + r) * c->a->k, c->xq + r * c->g.xrow);
  }
}

/* Rows [j0, j1) of weight matrix w (w_rows rows, row stride ldw) for row
 * tiles [p0, p1) of the chunk into c_out (row i of the chunk at c_out + (i -
 * i0) * ldc, weight row j0 at column 0). A single activation row is a GEMV:
 * the decode path or the ukernel walks the whole range in one call. */
static void run_part(const struct qrun *c, const uint8_t *w, size_t w_rows, size_t j0, size_t j1, size_t p0, size_t p1,
                     float *c_out, size_t ldc, size_t i0, const float *bias) {
  const struct spr_qgemm_ukernel *uk = c->uk;
  const size_t mr = uk->mr, ldw = c->g.kb * spr_dtype_block_bytes(c->a->w_type);
  if (c->dec != NULL) {
    c->dec->gemv(c->g.kb, j1 - j0, w + j0 * ldw, ldw, w_rows - j1, c->xq, bias != NULL ? bias + j0 : NULL, c_out);
    return;
  }
  const size_t step = c->rows == 1 ? j1 - j0 : uk->nr;
  for (size_t j = j0; j < j1; j += step) {
    const size_t nrj = j1 - j < step ? j1 - j : step;
    for (size_t p = p0; p < p1; p++) {
      const size_t i = p * mr, mri = c->rows - i < mr ? c->rows - i : mr;
      uk->gemm(c->g.kb, mri, nrj, w + j * ldw, ldw, c->xq + i * c->g.xrow, c->g.xrow, bias != NULL ? bias + j : NULL,
               c_out + (i - i0) * ldc + (j - j0), ldc);
    }
  }
}

static void compute_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct qrun *c = vctx;
  const struct spr_gemm_args *a = c->a;
  const size_t mr = c->uk->mr, n = a->n;
  for (size_t t = begin; t < end; t++) {
    const size_t nbi = t / c->n_groups, gi = t % c->n_groups;
    const size_t n0 = nbi * c->g.nb, n1 = n0 + c->g.nb < n ? n0 + c->g.nb : n;
    const size_t p0 = gi * c->tpg, p1 = p0 + c->tpg < c->tiles ? p0 + c->tpg : c->tiles;
    const size_t m_end = p1 * mr < c->rows ? p1 * mr : c->rows;
    float *out = a->dst + c->m0 * n;
    if (a->glu) {
      /* first product into dst, second into this thread's buffer, then act(first) * second */
      float *tmp = (float *)(void *)(c->glu_tmp + (size_t)tid * glu_thread_bytes(&c->g));
      run_part(c, c->w[0], n, n0, n1, p0, p1, out + n0, n, 0, NULL);
      run_part(c, c->w[1], n, n0, n1, p0, p1, tmp, c->g.nb, p0 * mr, NULL);
      for (size_t i = p0 * mr; i < m_end; i++) {
        float *d = out + i * n + n0;
        const float *u = tmp + (i - p0 * mr) * c->g.nb;
        if (a->act != NULL) a->act(n1 - n0, d, d);
        for (size_t j = 0; j < n1 - n0; j++) d[j] *= u[j];
      }
      continue;
    }
    /* the n block's columns, split where one weight matrix ends and the next begins */
    size_t base = 0;
    for (int s = 0; s < 3; s++) {
      const size_t lo = n0 > base ? n0 : base, hi = n1 < base + c->wn[s] ? n1 : base + c->wn[s];
      if (lo < hi)
        run_part(c, c->w[s], c->wn[s], lo - base, hi - base, p0, p1, out + lo, n, 0,
                 a->bias != NULL ? a->bias + base : NULL);
      base += c->wn[s];
    }
    spr_gemm_finish_rows(a, c->m0 + p0 * mr, c->m0 + m_end, n0, n1);
  }
}

/* The packed path: tasks = (panel of up to pk->nr rows of one weight matrix)
 * x (group of row tiles). A task packs its panel into its thread's buffer,
 * then runs every row tile of its group past it. */
struct prun {
  const struct spr_gemm_args *a;
  const struct spr_qgemm_packed *pk;
  size_t kb, ldw, xrow, mc, thread_bytes;
  uint8_t *xq, *tbuf;
  const uint8_t *w[3];
  size_t wn[3], np[3], n_panels;
  size_t m0, rows, tiles, tpg, n_groups;
};

enum { PACK_ROWS = 8 }; /* rows per task of a whole-row packer */

static void ppack_rows_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct prun *c = vctx;
  for (size_t t = begin; t < end; t++) {
    const size_t r0 = t * PACK_ROWS, n = c->rows - r0 < PACK_ROWS ? c->rows - r0 : PACK_ROWS;
    c->pk->packx_rows(c->kb, n, c->a->x + (c->m0 + r0) * c->a->k, c->a->k, c->xq + r0 * c->xrow, c->xrow);
  }
}

static void ppack_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct prun *c = vctx;
  const size_t n_seg = (c->kb + PACK_VALUES / 32 - 1) / (PACK_VALUES / 32);
  for (size_t t = begin; t < end; t++) {
    const size_t r = t / n_seg, sgi = t % n_seg, seg = PACK_VALUES / 32;
    const size_t b0 = sgi * seg, b1 = b0 + seg < c->kb ? b0 + seg : c->kb;
    c->pk->packx(c->kb, b0, b1, c->a->x + (c->m0 + r) * c->a->k, c->xq + r * c->xrow);
  }
}

/* Row tiles [p0, p1) of the chunk against the packed panel wp (nr columns)
 * into out (chunk row i at out + (i - i0) * ldc). */
static void prun_rows(const struct prun *c, const uint8_t *wp, size_t nr, size_t p0, size_t p1, const float *bias,
                      float *out, size_t ldc, size_t i0) {
  const size_t mr = c->pk->mr;
  for (size_t p = p0; p < p1; p++) {
    const size_t i = p * mr, mri = c->rows - i < mr ? c->rows - i : mr;
    c->pk->gemm(c->kb, mri, nr, wp, c->xq + i * c->xrow, c->xrow, bias, out + (i - i0) * ldc, ldc);
  }
}

/* Panel pi: its weight matrix s, that matrix's first output column base,
 * and the panel's rows [j0, j0 + nr) of it. */
static void panel_of(const struct prun *c, size_t pi, size_t *s, size_t *base, size_t *j0, size_t *nr) {
  size_t w = 0, q = pi, b = 0;
  while (q >= c->np[w]) q -= c->np[w], b += c->wn[w], w++;
  const size_t pnr = c->pk->nr;
  *s = w, *base = b, *j0 = q * pnr;
  *nr = c->wn[w] - *j0 < pnr ? c->wn[w] - *j0 : pnr;
}

static void pcompute_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct prun *c = vctx;
  const struct spr_gemm_args *a = c->a;
  const size_t mr = c->pk->mr, pnr = c->pk->nr, n = a->n;
  uint8_t *wp = c->tbuf + (size_t)tid * c->thread_bytes;
  for (size_t t = begin; t < end; t++) {
    const size_t pi = t / c->n_groups, gi = t % c->n_groups;
    const size_t p0 = gi * c->tpg, p1 = p0 + c->tpg < c->tiles ? p0 + c->tpg : c->tiles;
    const size_t m_end = p1 * mr < c->rows ? p1 * mr : c->rows;
    float *out = a->dst + c->m0 * n;
    size_t s, base, j0, nr;
    panel_of(c, pi, &s, &base, &j0, &nr);
    c->pk->packw(c->kb, nr, c->w[s] + j0 * c->ldw, c->ldw, wp);
    if (t + 1 < end && (t + 1) / c->n_groups != pi) {
      /* the next task's panel into L2 while this one computes (its rows are contiguous) */
      size_t s2, b2, j2, n2;
      panel_of(c, pi + 1, &s2, &b2, &j2, &n2);
      const uint8_t *p2 = c->w[s2] + j2 * c->ldw;
      for (size_t off = 0; off < n2 * c->ldw; off += 64) __builtin_prefetch(p2 + off, 0, 2);
    }
    if (a->glu) {
      float *tmp = (float *)(void *)(wp + spr_align_up(c->pk->wbytes(c->kb), 64));
      prun_rows(c, wp, nr, p0, p1, NULL, out + j0, n, 0);
      c->pk->packw(c->kb, nr, c->w[1] + j0 * c->ldw, c->ldw, wp);
      prun_rows(c, wp, nr, p0, p1, NULL, tmp, pnr, p0 * mr);
      for (size_t i = p0 * mr; i < m_end; i++) {
        float *d = out + i * n + j0;
        const float *u = tmp + (i - p0 * mr) * pnr;
        if (a->act != NULL) a->act(nr, d, d);
        for (size_t j = 0; j < nr; j++) d[j] *= u[j];
      }
      continue;
    }
    prun_rows(c, wp, nr, p0, p1, a->bias != NULL ? a->bias + base + j0 : NULL, out + base + j0, n, 0);
    spr_gemm_finish_rows(a, c->m0 + p0 * mr, c->m0 + m_end, base + j0, base + j0 + nr);
  }
}

static void packed_run(const struct spr_exec *x, const struct spr_qgemm_ukernel *uk, const struct spr_gemm_args *a) {
  struct prun c;
  memset(&c, 0, sizeof c);
  c.a = a;
  c.pk = uk->packed;
  c.kb = a->k / spr_dtype_block_elems(a->w_type);
  c.ldw = c.kb * spr_dtype_block_bytes(a->w_type);
  c.xrow = c.pk->xbytes(c.kb);
  c.mc = packed_mc(c.pk, c.kb, a->m);
  c.thread_bytes = packed_thread_bytes(c.pk, c.kb, c.mc, a->glu);
  c.xq = x->scratch;
  c.tbuf = c.xq + spr_align_up(c.mc * c.xrow, 64);
  c.w[0] = a->w, c.w[1] = a->w2, c.w[2] = a->w3;
  if (a->w2 != NULL && !a->glu) {
    c.wn[0] = a->n1, c.wn[1] = a->n2, c.wn[2] = a->w3 != NULL ? a->n3 : 0;
  } else {
    c.wn[0] = a->n, c.wn[1] = c.wn[2] = 0;
  }
  for (int s = 0; s < 3; s++) {
    c.np[s] = cdiv(c.wn[s], c.pk->nr);
    c.n_panels += c.np[s];
  }
  const size_t n_seg = cdiv(c.kb, PACK_VALUES / 32);
  for (size_t m0 = 0; m0 < a->m; m0 += c.mc) {
    c.m0 = m0;
    c.rows = a->m - m0 < c.mc ? a->m - m0 : c.mc;
    c.tiles = cdiv(c.rows, c.pk->mr);
    size_t groups = cdiv(PACKED_MIN_TASKS, c.n_panels);
    if (groups > c.tiles) groups = c.tiles;
    c.tpg = cdiv(c.tiles, groups);
    c.n_groups = cdiv(c.tiles, c.tpg);
    if (c.pk->packx_rows != NULL && n_seg == 1) /* short rows: pack several per task, blocks batched across them */
      spr_parallel(x, cdiv(c.rows, PACK_ROWS), ppack_rows_task, &c);
    else
      spr_parallel(x, c.rows * n_seg, ppack_task, &c);
    spr_parallel(x, c.n_panels * c.n_groups, pcompute_task, &c);
  }
}

void spr_qgemm_driver_run(const struct spr_exec *x, const struct spr_qgemm_ukernel *uk, const struct spr_gemm_args *a) {
  if (use_packed(uk, a->m)) {
    packed_run(x, uk, a);
    return;
  }
  struct qrun c;
  memset(&c, 0, sizeof c);
  c.a = a;
  c.uk = uk;
  c.xq = x->scratch;
  qgeom_init(&c.g, uk, a->w_type, a->m, a->n, a->k);
  c.glu_tmp = c.xq + xq_bytes(uk, &c.g);
  c.packx = uk->packx;
  if (a->m == 1 && uk->decode != NULL) {
    c.dec = uk->decode;
    c.packx = c.dec->packx;
    c.g.xrow = c.dec->xbytes(c.g.kb);
  }
  c.w[0] = a->w, c.w[1] = a->w2, c.w[2] = a->w3;
  if (a->w2 != NULL && !a->glu) {
    c.wn[0] = a->n1, c.wn[1] = a->n2, c.wn[2] = a->w3 != NULL ? a->n3 : 0;
  } else {
    c.wn[0] = a->n, c.wn[1] = c.wn[2] = 0;
  }
  for (size_t m0 = 0; m0 < a->m; m0 += c.g.mc) {
    c.m0 = m0;
    c.rows = a->m - m0 < c.g.mc ? a->m - m0 : c.g.mc;
    c.tiles = cdiv(c.rows, uk->mr);
    size_t groups = cdiv(MIN_TASKS, c.g.n_nb);
    if (groups > c.tiles) groups = c.tiles;
    c.tpg = cdiv(c.tiles, groups);
    c.n_groups = cdiv(c.tiles, c.tpg);
    /* a lone decode row is quantized by the caller: a few microseconds of
     * work, less than a pool round trip (the segments are independent, so
     * running them in order on one thread gives the same bytes) */
    if (c.rows == 1 && c.g.n_seg <= DECODE_PACK_SEGS)
      pack_task(&c, 0, c.g.n_seg, 0);
    else
      spr_parallel(x, c.rows * c.g.n_seg, pack_task, &c);
    spr_parallel(x, c.g.n_nb * c.n_groups, compute_task, &c);
  }
}
