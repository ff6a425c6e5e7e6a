/* ops/natten/natten.c — SPR_OP_NEIGHBORHOOD_ATTN: fused neighborhood
 * attention (NATTEN semantics; see natten.h for the rule, the task and the
 * ukernel contract).
 *
 * Work split: a task is (head, dilation group, query plane, block of query
 * rows, block of query columns). Column blocks hold at most
 * NA_COLS_PER_TASK columns, which bounds the per-thread ring of transposed
 * key rows (1-D sequences are split along their length). Row blocks are as
 * tall as the thread count allows (about two tasks per thread; no split
 * when equal tasks already divide evenly among the threads), because a
 * block transposes its rows plus the window's halo of key rows. A query's
 * result does not depend on the task, row tile or column tile it falls in:
 * its scores, max, exponentials, sums and P.V accumulations are the same
 * operations in the same order (positions outside its window only ever add
 * exact zeros), so any thread count, and so any split, gives the same bits. */
#include "ops/natten/natten.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops/op.h"
#include "runtime/error.h"
#include "runtime/util.h"

_Static_assert(sizeof(struct spr_na_params) <= sizeof(((union spr_op_params *)0)->raw_),
               "spr_na_params must fit in the op params union");

static const struct spr_na_ukernel k_ukernels[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/natten/natten.inc"
#undef SPR_UKERNEL
};

#define NA_MIN_ROWS_PER_TASK 8
#define NA_COLS_PER_TASK 256

/* The problem on three axes z, y, x (unused leading axes: length 1). */
struct na_geom {
  int32_t size[3], kernel[3], dil[3], stride[3], causal[3];
  size_t n_tok;
  int32_t gmax[3];  /* ceil(size / dilation): the longest group */
  int32_t nyb, nxb; /* row / column blocks per group plane */
  size_t n_groups;  /* dz * dy * dx */
  size_t n_tasks;
  size_t xw_max; /* widest column block */
};

static void na_geometry(const struct spr_na_params *p, int n_threads, struct na_geom *g) {
  const int off = 3 - p->n_dims;
  g->n_tok = 1;
  for (int a = 0; a < 3; a++) {
    if (a < off) {
      g->size[a] = g->kernel[a] = g->dil[a] = g->stride[a] = 1;
      g->causal[a] = 0;
    } else {
      const int s = a - off;
      g->size[a] = p->size[s];
      g->kernel[a] = p->kernel[s];
      g->dil[a] = p->dilation[s];
      g->stride[a] = p->stride[s];
      g->causal[a] = (p->causal >> s) & 1;
    }
    g->gmax[a] = (g->size[a] + g->dil[a] - 1) / g->dil[a];
    g->n_tok *= (size_t)g->size[a];
  }
  g->nxb = (g->gmax[2] + NA_COLS_PER_TASK - 1) / NA_COLS_PER_TASK;
  const size_t base = (size_t)p->n_heads * (size_t)g->dil[0] * (size_t)g->dil[1] * (size_t)g->dil[2] *
                      (size_t)g->gmax[0] * (size_t)g->nxb;
  /* equal tasks (dilation groups of one size) that already divide evenly
   * among the threads need no row split: a split only adds the window's
   * halo of key rows to transpose again */
  int even = 1;
  for (int a = 0; a < 3; a++) even &= g->size[a] % g->dil[a] == 0;
  const size_t want =
      n_threads <= 1 || (even && base % (size_t)n_threads == 0) ? 1 : (2 * (size_t)n_threads + base - 1) / base;
  const size_t most = (size_t)((g->gmax[1] + NA_MIN_ROWS_PER_TASK - 1) / NA_MIN_ROWS_PER_TASK);
  g->nyb = (int32_t)(want < most ? want : most);
  if (g->nyb < 1) g->nyb = 1;
  g->xw_max = (size_t)((g->gmax[2] + g->nxb - 1) / g->nxb);
  g->n_groups = (size_t)g->dil[0] * (size_t)g->dil[1] * (size_t)g->dil[2];
  g->n_tasks = (size_t)p->n_heads * g->n_groups * (size_t)g->gmax[0] * (size_t)g->nyb * (size_t)g->nxb;
}

static void na_axes(const struct na_geom *g, struct spr_na_axis ax[3]) {
  for (int a = 0; a < 3; a++) {
    ax[a].len = g->gmax[a];
    ax[a].kernel = g->kernel[a];
    ax[a].stride = g->stride[a];
    ax[a].causal = g->causal[a];
  }
}

static size_t na_thread_bytes(const struct na_geom *g, size_t head_dim) {
  struct spr_na_axis ax[3];
  na_axes(g, ax);
  return spr_align_up(spr_na_scratch_floats(ax, head_dim, g->xw_max) * sizeof(float), 64);
}

static enum spr_status na_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  const struct spr_na_params *p = &n->p.na;
  SPR_CHECK(n->n_src >= 3 && n->src[0] >= 0 && n->src[1] >= 0 && n->src[2] >= 0 && n->dst >= 0,
            SPR_STATUS_INVALID_ARGUMENT, "needs Q, K and V inputs");
  const struct spr_tensor *q = &ts[n->src[0]], *k = &ts[n->src[1]], *v = &ts[n->src[2]], *d = &ts[n->dst];
  SPR_CHECK(
      q->type == SPR_DTYPE_F32 && k->type == SPR_DTYPE_F32 && v->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32,
      SPR_STATUS_UNSUPPORTED, "Q, K, V and the output must be f32");
  SPR_CHECK(p->n_dims >= 1 && p->n_dims <= 3, SPR_STATUS_INVALID_ARGUMENT, "n_dims must be 1, 2 or 3 (got %u)",
            (unsigned)p->n_dims);
  SPR_CHECK(p->n_heads >= 1 && p->head_dim >= 1, SPR_STATUS_INVALID_ARGUMENT, "n_heads and head_dim must be >= 1");
  SPR_CHECK((p->causal >> p->n_dims) == 0, SPR_STATUS_INVALID_ARGUMENT, "causal flag for an axis >= n_dims");
  uint64_t n_tok = 1;
  for (int a = 0; a < p->n_dims; a++) {
    const unsigned L = p->size[a], K = p->kernel[a], dl = p->dilation[a], s = p->stride[a];
    SPR_CHECK(L >= 1 && K >= 1 && dl >= 1 && s >= 1, SPR_STATUS_INVALID_ARGUMENT,
              "axis %d: size, kernel, dilation and stride must be >= 1 (got %u, %u, %u, %u)", a, L, K, dl, s);
    SPR_CHECK((uint64_t)K * dl <= L, SPR_STATUS_INVALID_ARGUMENT,
              "axis %d: kernel %u x dilation %u is larger than the size %u", a, K, dl, L);
    SPR_CHECK(s <= K, SPR_STATUS_INVALID_ARGUMENT, "axis %d: stride %u is larger than the kernel %u", a, s, K);
    n_tok *= L;
  }
  SPR_CHECK(n_tok <= (uint64_t)INT32_MAX, SPR_STATUS_UNSUPPORTED, "grid of %llu tokens is too large",
            (unsigned long long)n_tok);
  const struct spr_tensor *all[4] = {q, k, v, d};
  for (int i = 0; i < 4; i++)
    SPR_CHECK(all[i]->ne[0] >= 1 && (uint64_t)spr_tensor_rows(all[i]) == n_tok, SPR_STATUS_INVALID_ARGUMENT,
              "Q, K, V and the output need %llu token rows (tensor %d has %lld)", (unsigned long long)n_tok, i,
              (long long)spr_tensor_rows(all[i]));
  const int64_t hd = p->head_dim, w = (int64_t)p->n_heads * hd;
  SPR_CHECK((int64_t)p->q_col + w <= q->ne[0], SPR_STATUS_INVALID_ARGUMENT,
            "Q heads [%u, %lld) outside its row of %lld", (unsigned)p->q_col, (long long)(p->q_col + w),
            (long long)q->ne[0]);
  SPR_CHECK((int64_t)p->k_col + w <= k->ne[0], SPR_STATUS_INVALID_ARGUMENT,
            "K heads [%u, %lld) outside its row of %lld", (unsigned)p->k_col, (long long)(p->k_col + w),
            (long long)k->ne[0]);
  SPR_CHECK((int64_t)p->v_col + w <= v->ne[0], SPR_STATUS_INVALID_ARGUMENT,
            "V heads [%u, %lld) outside its row of %lld", (unsigned)p->v_col, (long long)(p->v_col + w),
            (long long)v->ne[0]);
  SPR_CHECK(d->ne[0] == w && d->ne[1] == q->ne[1] && d->ne[2] == q->ne[2] && d->ne[3] == q->ne[3],
            SPR_STATUS_INVALID_ARGUMENT, "output is {%lld, %lld, %lld, %lld}, expected {%lld, ...} with Q's rows",
            (long long)d->ne[0], (long long)d->ne[1], (long long)d->ne[2], (long long)d->ne[3], (long long)w);
  SPR_CHECK(isfinite(p->scale), SPR_STATUS_INVALID_ARGUMENT, "scale is not finite");
  if (n->n_src >= 4 && n->src[3] >= 0) {
    const struct spr_tensor *b = &ts[n->src[3]];
    SPR_CHECK(b->type == SPR_DTYPE_F32, SPR_STATUS_UNSUPPORTED, "relative position bias must be f32");
    SPR_CHECK(p->causal == 0, SPR_STATUS_INVALID_ARGUMENT, "a relative position bias needs non-causal axes");
    int64_t per_head = 1;
    for (int a = 0; a < p->n_dims; a++) {
      SPR_CHECK(p->kernel[a] % 2 == 1 && p->stride[a] == 1, SPR_STATUS_INVALID_ARGUMENT,
                "a relative position bias needs odd kernels and stride 1 (axis %d: kernel %u, stride %u)", a,
                (unsigned)p->kernel[a], (unsigned)p->stride[a]);
      per_head *= 2 * (int64_t)p->kernel[a] - 1;
    }
    SPR_CHECK(b->ne[0] == 2 * (int64_t)p->kernel[p->n_dims - 1] - 1 && spr_tensor_nelem(b) == per_head * p->n_heads,
              SPR_STATUS_INVALID_ARGUMENT, "relative position bias must be {2K-1 per axis (last first), heads}");
  }
  return SPR_STATUS_OK;
}

static size_t na_workspace(const struct spr_tensor *ts, const struct spr_node *n, int n_threads) {
  (void)ts;
  struct na_geom g;
  na_geometry(&n->p.na, n_threads, &g);
  size_t total = 0;
  if (!spr_mul_ok(na_thread_bytes(&g, n->p.na.head_dim), (size_t)(n_threads > 1 ? n_threads : 1), &total))
    return SIZE_MAX;
  return total;
}

static void na_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
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

struct na_ctx {
  const struct spr_na_ukernel *uk;
  const struct spr_na_params *p;
  struct na_geom g;
  const float *q, *k, *v, *rpb;
  float *o;
  size_t q_stride, k_stride, v_stride, rpb_head;
  float scale;
  uint8_t *scratch;
  size_t thread_bytes;
};

static void na_tasks(void *arg, size_t begin, size_t end, int tid) {
  const struct na_ctx *c = arg;
  const struct na_geom *g = &c->g;
  float *scratch = (float *)(void *)(c->scratch + (size_t)tid * c->thread_bytes);
  for (size_t task = begin; task < end; task++) {
    size_t r = task;
    const int32_t xb = (int32_t)(r % (size_t)g->nxb);
    r /= (size_t)g->nxb;
    const int32_t yb = (int32_t)(r % (size_t)g->nyb);
    r /= (size_t)g->nyb;
    const int32_t z = (int32_t)(r % (size_t)g->gmax[0]);
    r /= (size_t)g->gmax[0];
    const size_t grp = r % g->n_groups, h = r / g->n_groups;
    const int32_t gx = (int32_t)(grp % (size_t)g->dil[2]);
    const int32_t gy = (int32_t)(grp / (size_t)g->dil[2] % (size_t)g->dil[1]);
    const int32_t gz = (int32_t)(grp / ((size_t)g->dil[2] * (size_t)g->dil[1]));

    struct spr_f32_na_task t;
    const int32_t gg[3] = {gz, gy, gx};
    for (int a = 0; a < 3; a++) {
      t.ax[a].len = spr_na_group_len(g->size[a], g->dil[a], gg[a]);
      t.ax[a].kernel = g->kernel[a];
      t.ax[a].stride = g->stride[a];
      t.ax[a].causal = g->causal[a];
    }
    if (z >= t.ax[0].len) continue;
    const int32_t ly = t.ax[1].len, lx = t.ax[2].len;
    t.y0 = (int32_t)((int64_t)yb * ly / g->nyb);
    t.y1 = (int32_t)((int64_t)(yb + 1) * ly / g->nyb);
    t.x0 = (int32_t)((int64_t)xb * lx / g->nxb);
    t.x1 = (int32_t)((int64_t)(xb + 1) * lx / g->nxb);
    if (t.y0 >= t.y1 || t.x0 >= t.x1) continue;
    t.z = z;
    t.head_dim = c->p->head_dim;
    t.scale = c->scale;
    const size_t sx = (size_t)g->size[2], sy = (size_t)g->size[1];
    t.tok0 = ((size_t)gz * sy + (size_t)gy) * sx + (size_t)gx;
    t.tok_z = (size_t)g->dil[0] * sy * sx;
    t.tok_y = (size_t)g->dil[1] * sx;
    t.tok_x = (size_t)g->dil[2];
    const size_t hc = h * c->p->head_dim;
    t.q = c->q + c->p->q_col + hc;
    t.k = c->k + c->p->k_col + hc;
    t.v = c->v + c->p->v_col + hc;
    t.o = c->o + hc;
    t.q_stride = c->q_stride;
    t.k_stride = c->k_stride;
    t.v_stride = c->v_stride;
    t.o_stride = (size_t)c->p->n_heads * c->p->head_dim;
    t.rpb = c->rpb != NULL ? c->rpb + h * c->rpb_head : NULL;
    c->uk->fn(&t, scratch);
  }
}

static void na_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *ts = x->tensors;
  struct na_ctx c;
  c.uk = n->impl;
  c.p = &n->p.na;
  na_geometry(c.p, x->n_threads, &c.g);
  c.q = ts[n->src[0]].data;
  c.k = ts[n->src[1]].data;
  c.v = ts[n->src[2]].data;
  c.o = ts[n->dst].data;
  c.q_stride = (size_t)ts[n->src[0]].ne[0];
  c.k_stride = (size_t)ts[n->src[1]].ne[0];
  c.v_stride = (size_t)ts[n->src[2]].ne[0];
  c.rpb = n->n_src >= 4 && n->src[3] >= 0 ? ts[n->src[3]].data : NULL;
  c.rpb_head = 1;
  for (int a = 0; a < 3; a++) c.rpb_head *= (size_t)(2 * c.g.kernel[a] - 1);
  c.scale = c.p->scale != 0.0f ? c.p->scale : 1.0f / sqrtf((float)c.p->head_dim);
  c.scratch = x->scratch;
  c.thread_bytes = na_thread_bytes(&c.g, c.p->head_dim);
  SPR_DASSERT(x->scratch_bytes >= c.thread_bytes * (size_t)(x->n_threads > 1 ? x->n_threads : 1));
  spr_parallel(x, c.g.n_tasks, na_tasks, &c);
}

/* Keys seen by all queries of one axis, summed over its dilation groups. */
static uint64_t na_axis_pairs(int32_t L, int32_t K, int32_t dl, int32_t s, int32_t causal) {
  uint64_t total = 0;
  for (int32_t gi = 0; gi < dl; gi++) {
    const struct spr_na_axis a = {spr_na_group_len(L, dl, gi), K, s, causal};
    if (!causal) {
      total += (uint64_t)a.len * (uint64_t)K;
      continue;
    }
    for (int32_t i = 0; i < a.len; i++) {
      int32_t st, en;
      spr_na_window(&a, i, &st, &en);
      total += (uint64_t)(en - st);
    }
  }
  return total;
}

/* 4 * heads * head_dim * (query, key) pairs: each axis's window is
 * independent, so the pair count is the product of the per-axis sums. */
static uint64_t na_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  (void)ts;
  const struct spr_na_params *p = &n->p.na;
  uint64_t pairs = 1;
  for (int a = 0; a < p->n_dims; a++)
    pairs *= na_axis_pairs(p->size[a], p->kernel[a], p->dilation[a], p->stride[a], (p->causal >> a) & 1);
  return 4ull * p->n_heads * p->head_dim * pairs;
}

const struct spr_op_def spr_op_neighborhood_attn_def = {
    .name = "neighborhood_attn",
    .check = na_check,
    .workspace = na_workspace,
    .prepare = na_prepare,
    .run = na_run,
    .flops = na_flops,
};
