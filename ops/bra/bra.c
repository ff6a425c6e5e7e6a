/* ops/bra/bra.c — SPR_OP_BRA: bi-level routing attention (see bra.h for the
 * semantics, the phases and the memory rule).
 *
 * The routing data of region p (its key and query means, its routing scores
 * when there are many regions, its kept list) is kept in p's own output
 * rows, addressed as one "area" of A = 2 qk + 2 P + topk floats (token t of
 * the region, column c = area float t * v_dim + c); when M * v_dim < A the
 * areas are a [P][A] block of scratch instead (same code, other address).
 * Phase 1 writes every region's means into its area; phase 2 reads the means of all regions and writes only
 * region p's scores and list into p's area, past the means; phase 3 copies
 * p's list to the thread's scratch before any output of region p is written,
 * and only the task of region p touches p's rows in phase 3. Means and
 * routing scores are accumulated in double in the same order as the oracle
 * (spr_f32_bra_ref), so routing is identical to it. */
#include "ops/bra/bra.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops/op.h"
#include "runtime/error.h"
#include "runtime/util.h"

_Static_assert(sizeof(struct spr_bra_params) <= sizeof(((union spr_op_params *)0)->raw_),
               "spr_bra_params must fit in the op params union");

static const struct spr_bra_ukernel k_ukernels[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/bra/bra.inc"
#undef SPR_UKERNEL
};

static const struct spr_bra_dot_ukernel k_dots[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/bra/bra_dot.inc"
#undef SPR_UKERNEL
};

/* The routing dot ukernel for an attention ukernel: the first whose ISA bits
 * it has (all give identical results). */
static spr_f64_bra_dot_fn bra_dot_for(uint32_t isa) {
  const size_t count = sizeof k_dots / sizeof k_dots[0];
  for (size_t i = 0; i < count; i++)
    if ((k_dots[i].isa & isa) == k_dots[i].isa) return k_dots[i].fn;
  return spr_f64_bra_dot_ukernel_8__scalar;
}

static const struct spr_bra_colsum_ukernel {
  uint32_t isa;
  spr_f64_bra_colsum_fn fn;
} k_colsums[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn},
#include "ops/bra/bra_colsum.inc"
#undef SPR_UKERNEL
};

static spr_f64_bra_colsum_fn bra_colsum_for(uint32_t isa) {
  const size_t count = sizeof k_colsums / sizeof k_colsums[0];
  for (size_t i = 0; i < count; i++)
    if ((k_colsums[i].isa & isa) == k_colsums[i].isa) return k_colsums[i].fn;
  return spr_f64_bra_colsum_ukernel_1__scalar;
}

/* Channels of a region mean accumulated at once (doubles on the stack). */
#define BRA_CHUNK 64
_Static_assert(BRA_CHUNK <= 64, "bra_topk_small keeps a 64-bit mask");
/* Channels of the region means accumulated at once (doubles on the stack). */
#define BRA_MEAN_CH 256

struct bra_geom {
  size_t S, P, rh, rw, M, W, qk, vd, nh, hq, hv, topk;
  size_t A;      /* floats of one region's routing area: 2 qk + 2 P + topk */
  int in_output; /* the areas live in the output (M * vd >= A), else in scratch */
};

static void bra_geometry(const struct spr_bra_params *p, struct bra_geom *g) {
  g->S = p->n_win;
  g->P = g->S * g->S;
  g->rh = p->h / g->S;
  g->rw = p->w / g->S;
  g->M = g->rh * g->rw;
  g->W = p->w;
  g->qk = p->qk_dim;
  g->vd = p->v_dim;
  g->nh = p->n_heads;
  g->hq = g->qk / g->nh;
  g->hv = g->vd / g->nh;
  g->topk = p->topk;
  g->A = 2 * g->qk + 2 * g->P + g->topk;
  g->in_output = g->M * g->vd >= g->A;
}

/* Token row of token t (row-major) of region r. */
static inline size_t bra_tok(const struct bra_geom *g, size_t r, size_t t) {
  return ((r / g->S) * g->rh + t / g->rw) * g->W + (r % g->S) * g->rw + t % g->rw;
}

/* Float f of region r's area: in the output (token f / vd of the region,
 * column f % vd) or, when a region's rows are too small, in the shared
 * scratch block `areas` ([P][A] floats, after the per-thread blocks). */
static inline float *bra_area(const struct bra_geom *g, float *o, float *areas, size_t r, size_t f) {
  if (!g->in_output) return areas + r * g->A + f;
  return o + bra_tok(g, r, f / g->vd) * g->vd + f % g->vd;
}

/* bra_area(g, o, areas, r, f) = (region r's area base) + bra_area_off(g, f):
 * the base is o + (r's first token row) * vd in the output, else
 * areas + r * A. */
static inline size_t bra_area_off(const struct bra_geom *g, size_t f) {
  if (!g->in_output) return f;
  const size_t t = f / g->vd;
  return ((t / g->rw) * g->W + t % g->rw) * g->vd + f % g->vd;
}

/* Contiguous floats of an area from float f on. */
static inline size_t bra_area_run(const struct bra_geom *g, size_t f) {
  return g->in_output ? g->vd - f % g->vd : g->A - f;
}

static size_t bra_thread_bytes(const struct bra_geom *g) {
  return spr_align_up(spr_bra_scratch_floats(g->hq, g->hv) * sizeof(float) + g->topk * sizeof(size_t), 64);
}

static size_t bra_areas_bytes(const struct bra_geom *g) {
  return g->in_output ? 0 : spr_align_up(g->P * g->A * sizeof(float), 64);
}

static enum spr_status bra_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  const struct spr_bra_params *p = &n->p.bra;
  SPR_CHECK(n->n_src >= 3 && n->src[0] >= 0 && n->src[1] >= 0 && n->src[2] >= 0 && n->dst >= 0,
            SPR_STATUS_INVALID_ARGUMENT, "needs Q, K and V inputs");
  const struct spr_tensor *q = &ts[n->src[0]], *k = &ts[n->src[1]], *v = &ts[n->src[2]], *d = &ts[n->dst];
  SPR_CHECK(
      q->type == SPR_DTYPE_F32 && k->type == SPR_DTYPE_F32 && v->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32,
      SPR_STATUS_UNSUPPORTED, "Q, K, V and the output must be f32");
  SPR_CHECK(p->n_heads >= 1 && p->n_win >= 1 && p->qk_dim >= 1 && p->v_dim >= 1, SPR_STATUS_INVALID_ARGUMENT,
            "n_heads, n_win, qk_dim and v_dim must be >= 1");
  SPR_CHECK(p->qk_dim % p->n_heads == 0 && p->v_dim % p->n_heads == 0, SPR_STATUS_INVALID_ARGUMENT,
            "qk_dim %u and v_dim %u must be multiples of n_heads %u", (unsigned)p->qk_dim, (unsigned)p->v_dim,
            (unsigned)p->n_heads);
  SPR_CHECK(p->h >= p->n_win && p->w >= p->n_win && p->h % p->n_win == 0 && p->w % p->n_win == 0,
            SPR_STATUS_INVALID_ARGUMENT, "map %ux%u is not a multiple of n_win %u (pad the map first)", (unsigned)p->h,
            (unsigned)p->w, (unsigned)p->n_win);
  const uint64_t P = (uint64_t)p->n_win * p->n_win, tokens = (uint64_t)p->h * p->w;
  SPR_CHECK(P <= INT32_MAX, SPR_STATUS_UNSUPPORTED, "%llu regions (more than 2^31 - 1)", (unsigned long long)P);
  SPR_CHECK(p->topk >= 1 && p->topk <= P, SPR_STATUS_INVALID_ARGUMENT, "topk %u outside [1, %llu]", (unsigned)p->topk,
            (unsigned long long)P);
  const struct spr_tensor *all[4] = {q, k, v, d};
  for (int i = 0; i < 4; i++)
    SPR_CHECK((uint64_t)spr_tensor_rows(all[i]) == tokens && all[i]->ne[0] >= 1, SPR_STATUS_INVALID_ARGUMENT,
              "Q, K, V and the output need %llu token rows (tensor %d has %lld)", (unsigned long long)tokens, i,
              (long long)spr_tensor_rows(all[i]));
  SPR_CHECK((int64_t)p->q_col + p->qk_dim <= q->ne[0] && (int64_t)p->k_col + p->qk_dim <= k->ne[0] &&
                (int64_t)p->v_col + p->v_dim <= v->ne[0],
            SPR_STATUS_INVALID_ARGUMENT, "q/k/v columns outside their rows");
  SPR_CHECK(d->ne[0] == p->v_dim && d->ne[1] == q->ne[1] && d->ne[2] == q->ne[2] && d->ne[3] == q->ne[3],
            SPR_STATUS_INVALID_ARGUMENT, "output must be {v_dim %u} per token with Q's rows", (unsigned)p->v_dim);
  SPR_CHECK(isfinite(p->scale), SPR_STATUS_INVALID_ARGUMENT, "scale is not finite");
  return SPR_STATUS_OK;
}

static size_t bra_workspace(const struct spr_tensor *ts, const struct spr_node *n, int n_threads) {
  (void)ts;
  struct bra_geom g;
  bra_geometry(&n->p.bra, &g);
  size_t total = 0;
  if (!spr_mul_ok(bra_thread_bytes(&g), (size_t)(n_threads > 1 ? n_threads : 1), &total)) return SIZE_MAX;
  return spr_add_ok(total, bra_areas_bytes(&g), &total) ? total : SIZE_MAX;
}

static void bra_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const size_t count = sizeof k_ukernels / sizeof k_ukernels[0];
  for (size_t i = 0; i < count; i++) {
    if ((k_ukernels[i].isa & isa) == k_ukernels[i].isa) {
      n->impl = &k_ukernels[i];
      n->impl_name = k_ukernels[i].name;
      break;
    }
  }
}

struct bra_ctx {
  const struct spr_bra_ukernel *uk;
  const struct spr_bra_params *p;
  struct bra_geom g;
  const float *q, *k, *v;
  float *o;
  size_t q_stride, k_stride, v_stride;
  float scale;
  uint8_t *scratch;
  size_t thread_bytes;
  float *areas; /* routing areas when not in the output */
  spr_f64_bra_dot_fn dot;
  spr_f64_bra_colsum_fn colsum;
};

/* Means of channels [c0, c0 + n) of q and of k over region r's tokens, in
 * double (tokens in row-major order, through the column-sum ukernel: the
 * oracle's order), rounded to f32. */
static void bra_means(const struct bra_ctx *c, size_t r, size_t c0, size_t n, float *qm, float *km) {
  double qa[BRA_MEAN_CH], ka[BRA_MEAN_CH];
  const float *qrows[BRA_CHUNK], *krows[BRA_CHUNK];
  const size_t t0 = bra_tok(&c->g, r, 0);
  const double m = (double)c->g.M;
  size_t nb = 0, seen = 0;
  int first = 1;
  for (size_t tr = 0; tr < c->g.rh; tr++) { /* tokens in row-major order, no divisions */
    const size_t tok = t0 + tr * c->g.W;
    const float *qrow = c->q + tok * c->q_stride + c->p->q_col + c0;
    const float *krow = c->k + tok * c->k_stride + c->p->k_col + c0;
    for (size_t tc = 0; tc < c->g.rw; tc++, qrow += c->q_stride, krow += c->k_stride) {
      qrows[nb] = qrow;
      krows[nb] = krow;
      const int last = ++seen == c->g.M;
      if (++nb == BRA_CHUNK && !last) { /* a full batch; the last one (with the means) goes below */
        c->colsum(qa, qrows, nb, n, first, NULL, m);
        c->colsum(ka, krows, nb, n, first, NULL, m);
        first = 0;
        nb = 0;
      }
    }
  }
  c->colsum(qa, qrows, nb, n, first, qm, m);
  c->colsum(ka, krows, nb, n, first, km, m);
}

/* Writes n floats to region r's area from float f on (crossing token rows). */
static void bra_area_write(const struct bra_ctx *c, size_t r, size_t f, const float *src, size_t n) {
  while (n > 0) {
    size_t run = bra_area_run(&c->g, f);
    if (run > n) run = n;
    memcpy(bra_area(&c->g, c->o, c->areas, r, f), src, run * sizeof(float));
    f += run;
    src += run;
    n -= run;
  }
}

/* Phase 1: the key and query means of each region into its area,
 * [0, qk) and [qk, 2 qk). */
static void bra_phase_means(void *arg, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct bra_ctx *c = arg;
  for (size_t r = begin; r < end; r++) {
    for (size_t c0 = 0; c0 < c->g.qk; c0 += BRA_MEAN_CH) {
      const size_t n = c->g.qk - c0 < BRA_MEAN_CH ? c->g.qk - c0 : BRA_MEAN_CH;
      float qm[BRA_MEAN_CH], km[BRA_MEAN_CH];
      bra_means(c, r, c0, n, qm, km);
      bra_area_write(c, r, c0, km, n);
      bra_area_write(c, r, c->g.qk + c0, qm, n);
    }
  }
}

/* Regions whose routing scores one phase-2 task computes together (when
 * P <= BRA_CHUNK): each converted mean is used for several pairs. */
#define BRA_PBLOCK 4

/* Routing scores of regions [p0, p0 + np) (np <= BRA_PBLOCK) for regions
 * [r0, r0 + nr) (nr <= BRA_CHUNK), a[i * BRA_CHUNK + r] = scale *
 * q_r[p0 + i] . k_r[r0 + r] through the dot ukernel (spr_bra_dot_acc's
 * order, whatever the blocking), run by run of the areas (their layout is
 * the same for every region, so one run covers the same channels in all of
 * them). */
static void bra_scores(const struct bra_ctx *c, size_t p0, size_t np, size_t r0, size_t nr, double *a) {
  const struct bra_geom *g = &c->g;
  double acc[BRA_PBLOCK * BRA_CHUNK * 8];
  const float *b[BRA_CHUNK], *qa[BRA_PBLOCK];
  float *rb[BRA_CHUNK], *pb[BRA_PBLOCK];
  for (size_t i = 0; i < np * nr * 8; i++) acc[i] = 0.0;
  /* area(r, f) = area base of r + an offset that depends on f only */
  for (size_t r = 0, row = r0 / g->S, col = r0 % g->S; r < nr; r++) {
    rb[r] = g->in_output ? c->o + (row * g->rh * g->W + col * g->rw) * g->vd : c->areas + (r0 + r) * g->A;
    if (++col == g->S) {
      col = 0;
      row++;
    }
  }
  for (size_t i = 0; i < np; i++)
    pb[i] = g->in_output ? c->o + bra_tok(g, p0 + i, 0) * g->vd : c->areas + (p0 + i) * g->A;
  for (size_t f = 0; f < g->qk;) {
    size_t run = bra_area_run(g, g->qk + f), run_k = bra_area_run(g, f);
    if (run > run_k) run = run_k;
    if (run > g->qk - f) run = g->qk - f;
    const size_t ko = bra_area_off(g, f), qo = bra_area_off(g, g->qk + f);
    for (size_t r = 0; r < nr; r++) b[r] = rb[r] + ko;
    for (size_t i = 0; i < np; i++) qa[i] = pb[i] + qo;
    c->dot(acc, qa, np, b, nr, f, run);
    f += run;
  }
  for (size_t i = 0; i < np; i++)
    for (size_t r = 0; r < nr; r++)
      a[i * BRA_CHUNK + r] = (double)c->scale * spr_bra_dot_sum_inl(acc + 8 * (i * nr + r));
}

/* Area double j of region p (routing scores when P is large), two floats. */
static double bra_get_d(const struct bra_ctx *c, size_t p, size_t j) {
  uint32_t w[2];
  memcpy(&w[0], bra_area(&c->g, c->o, c->areas, p, 2 * c->g.qk + 2 * j), 4);
  memcpy(&w[1], bra_area(&c->g, c->o, c->areas, p, 2 * c->g.qk + 2 * j + 1), 4);
  double x;
  memcpy(&x, w, 8);
  return x;
}
static void bra_put_d(const struct bra_ctx *c, size_t p, size_t j, double x) {
  uint32_t w[2];
  memcpy(w, &x, 8);
  memcpy(bra_area(&c->g, c->o, c->areas, p, 2 * c->g.qk + 2 * j), &w[0], 4);
  memcpy(bra_area(&c->g, c->o, c->areas, p, 2 * c->g.qk + 2 * j + 1), &w[1], 4);
}

/* spr_bra_topk for n <= BRA_CHUNK, the same selection: NaN counts as -inf
 * (sanitized once), and an element (a higher index than every listed one)
 * goes before a listed one exactly when it is strictly greater; the kept
 * set comes out in increasing index order through a bit mask. */
static void bra_topk_small(const double *a, size_t n, size_t topk, int32_t *sel) {
  double lv[BRA_CHUNK];
  size_t li[BRA_CHUNK], cnt = 0;
  for (size_t i = 0; i < n; i++) {
    const double x = isnan(a[i]) ? -INFINITY : a[i];
    if (cnt == topk && !(x > lv[cnt - 1])) continue;
    size_t j = cnt < topk ? cnt++ : cnt - 1;
    for (; j > 0 && x > lv[j - 1]; j--) {
      lv[j] = lv[j - 1];
      li[j] = li[j - 1];
    }
    lv[j] = x;
    li[j] = i;
  }
  uint64_t kept = 0;
  for (size_t k = 0; k < topk; k++) kept |= (uint64_t)1 << li[k];
  for (size_t i = 0, k = 0; i < n; i++)
    if ((kept >> i) & 1u) sel[k++] = (int32_t)i;
}

/* Phase 2: region p's routing scores and kept list (area floats
 * [2 qk + 2P, + topk), increasing region index). */
static void bra_phase_route(void *arg, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct bra_ctx *c = arg;
  const struct bra_geom *g = &c->g;
  const size_t sel_f = 2 * g->qk + 2 * g->P;
  if (g->P <= BRA_CHUNK) { /* tasks are blocks of BRA_PBLOCK regions */
    for (size_t blk = begin; blk < end; blk++) {
      const size_t p0 = blk * BRA_PBLOCK, np = g->P - p0 < BRA_PBLOCK ? g->P - p0 : BRA_PBLOCK;
      double a[BRA_PBLOCK * BRA_CHUNK];
      int32_t sel[BRA_CHUNK];
      bra_scores(c, p0, np, 0, g->P, a);
      for (size_t i = 0; i < np; i++) {
        bra_topk_small(a + i * BRA_CHUNK, g->P, g->topk, sel);
        bra_area_write(c, p0 + i, sel_f, (const float *)(const void *)sel, g->topk);
      }
    }
    return;
  }
  for (size_t p = begin; p < end; p++) {
    /* many regions: the scores wait in the area; the same selection as
     * spr_bra_topk (order: score desc, then index asc; NaN as -inf) */
    for (size_t r0 = 0; r0 < g->P; r0 += BRA_CHUNK) {
      double a[BRA_CHUNK];
      const size_t nr = g->P - r0 < BRA_CHUNK ? g->P - r0 : BRA_CHUNK;
      bra_scores(c, p, 1, r0, nr, a);
      for (size_t r = 0; r < nr; r++) bra_put_d(c, p, r0 + r, isnan(a[r]) ? -INFINITY : a[r]);
    }
    size_t prev = g->P;
    double prev_a = 0.0;
    for (size_t k = 0; k < g->topk; k++) {
      size_t best = g->P;
      double best_a = 0.0;
      for (size_t r = 0; r < g->P; r++) {
        const double ar = bra_get_d(c, p, r);
        if (prev < g->P && !(prev_a > ar || (prev_a == ar && prev < r))) continue;
        if (best == g->P || ar > best_a || (ar == best_a && r < best)) {
          best = r;
          best_a = ar;
        }
      }
      const int32_t b = (int32_t)best;
      memcpy(bra_area(g, c->o, c->areas, p, sel_f + k), &b, 4);
      prev = best;
      prev_a = best_a;
    }
    for (size_t k = 1; k < g->topk; k++) {
      int32_t x, y;
      memcpy(&x, bra_area(g, c->o, c->areas, p, sel_f + k), 4);
      size_t j = k;
      for (; j > 0; j--) {
        memcpy(&y, bra_area(g, c->o, c->areas, p, sel_f + j - 1), 4);
        if (y <= x) break;
        memcpy(bra_area(g, c->o, c->areas, p, sel_f + j), &y, 4);
      }
      memcpy(bra_area(g, c->o, c->areas, p, sel_f + j), &x, 4);
    }
  }
}

/* Phase 3: attention of region p's queries, head by head, a tile of queries
 * at a time. */
static void bra_phase_attend(void *arg, size_t begin, size_t end, int tid) {
  const struct bra_ctx *c = arg;
  const struct bra_geom *g = &c->g;
  uint8_t *mem = c->scratch + (size_t)tid * c->thread_bytes;
  float *ws = (float *)(void *)mem;
  size_t *base = (size_t *)(void *)(mem + spr_bra_scratch_floats(g->hq, g->hv) * sizeof(float));
  const size_t tile = c->uk->tile;
  for (size_t p = begin; p < end; p++) {
    for (size_t k0 = 0; k0 < g->topk;) { /* the kept list, run by run of the area */
      size_t run = bra_area_run(g, 2 * g->qk + 2 * g->P + k0);
      if (run > g->topk - k0) run = g->topk - k0;
      const float *src = bra_area(g, c->o, c->areas, p, 2 * g->qk + 2 * g->P + k0);
      for (size_t k = 0; k < run; k++) {
        int32_t r;
        memcpy(&r, src + k, 4);
        base[k0 + k] = (size_t)(r / (int32_t)g->S) * g->rh * g->W + (size_t)(r % (int32_t)g->S) * g->rw;
      }
      k0 += run;
    }
    for (size_t i0 = 0; i0 < g->M; i0 += tile) { /* a tile of queries, all heads in one call */
      const size_t nq = g->M - i0 < tile ? g->M - i0 : tile;
      const float *qp[SPR_BRA_MAX_TILE];
      float *op[SPR_BRA_MAX_TILE];
      for (size_t i = 0; i < nq; i++) {
        const size_t tok = bra_tok(g, p, i0 + i);
        qp[i] = c->q + tok * c->q_stride + c->p->q_col;
        op[i] = c->o + tok * g->vd;
      }
      const struct spr_f32_bra_task t = {
          .hd_qk = g->hq,
          .hd_v = g->hv,
          .n_heads = g->nh,
          .nq = nq,
          .q = qp,
          .o = op,
          .reg_base = base,
          .n_sel = g->topk,
          .reg_h = g->rh,
          .reg_w = g->rw,
          .map_w = g->W,
          .k = c->k + c->p->k_col,
          .v = c->v + c->p->v_col,
          .k_stride = c->k_stride,
          .v_stride = c->v_stride,
          .scale = c->scale,
      };
      c->uk->fn(&t, ws);
    }
  }
}

static void bra_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *ts = x->tensors;
  struct bra_ctx c;
  c.uk = n->impl;
  c.dot = bra_dot_for(c.uk->isa);
  c.colsum = bra_colsum_for(c.uk->isa);
  c.p = &n->p.bra;
  bra_geometry(c.p, &c.g);
  c.q = ts[n->src[0]].data;
  c.k = ts[n->src[1]].data;
  c.v = ts[n->src[2]].data;
  c.o = ts[n->dst].data;
  c.q_stride = (size_t)ts[n->src[0]].ne[0];
  c.k_stride = (size_t)ts[n->src[1]].ne[0];
  c.v_stride = (size_t)ts[n->src[2]].ne[0];
  c.scale = c.p->scale != 0.0f ? c.p->scale : 1.0f / sqrtf((float)c.p->qk_dim);
  c.scratch = x->scratch;
  c.thread_bytes = bra_thread_bytes(&c.g);
  const size_t n_thr = (size_t)(x->n_threads > 1 ? x->n_threads : 1);
  c.areas = c.g.in_output ? NULL : (float *)(void *)(x->scratch + c.thread_bytes * n_thr);
  SPR_DASSERT(x->scratch_bytes >= c.thread_bytes * n_thr + bra_areas_bytes(&c.g));
  spr_parallel(x, c.g.P, bra_phase_means, &c);
  spr_parallel(x, c.g.P <= BRA_CHUNK ? (c.g.P + BRA_PBLOCK - 1) / BRA_PBLOCK : c.g.P, bra_phase_route, &c);
  spr_parallel(x, c.g.P, bra_phase_attend, &c);
}

/* Region means (2 * tokens * qk_dim), routing scores (2 * P^2 * qk_dim) and
 * attention (2 * tokens * topk * M * (qk_dim + v_dim)). */
static uint64_t bra_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  (void)ts;
  const struct spr_bra_params *p = &n->p.bra;
  const uint64_t tokens = (uint64_t)p->h * p->w, P = (uint64_t)p->n_win * p->n_win, M = tokens / P;
  return 2 * tokens * p->qk_dim + 2 * P * P * p->qk_dim + 2 * tokens * p->topk * M * (p->qk_dim + p->v_dim);
}

const struct spr_op_def spr_op_bra_def = {
    .name = "bra",
    .check = bra_check,
    .workspace = bra_workspace,
    .prepare = bra_prepare,
    .run = bra_run,
    .flops = bra_flops,
};
