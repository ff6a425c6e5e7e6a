/* ops/attention/attention.c — SPR_OP_ATTENTION: fused multi-head attention
 * with online softmax (see attention.h for the task/ukernel contract).
 *
 * Work split: one task = (kv head, group of its query heads, block of query
 * rows), sized so that heads x rows fills the ukernel's tile; GQA heads that
 * share a K/V head share a task, so a decode step (Tq = 1) streams each K/V
 * head once. Causal tasks are ordered zig-zag (first, last, second, ...)
 * within a head group so that contiguous per-thread chunks get similar work.
 * The task geometry depends on shapes and the ukernel only, never on the
 * thread count, so results are bit-identical for any number of threads. */
#include "ops/attention/attention.h"

#include <math.h>
#include <stdint.h>

#include "ops/op.h"
#include "runtime/error.h"
#include "runtime/util.h"

static const struct spr_attn_ukernel k_ukernels[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/attention/attention.inc"
#undef SPR_UKERNEL
};

/* Largest sequence length: lane masks compare key positions in f32. */
#define ATTN_MAX_ROWS (1 << 24)

struct attn_geom {
  size_t tq, tk, hd, nh, nkv, group;
  size_t gs, n_sub; /* heads per task, head sub-groups per kv head */
  size_t qn, n_qb;  /* query rows per task, query blocks */
  size_t n_tasks;
};

static void attn_geometry(const struct spr_tensor *ts, const struct spr_node *n, size_t tile, struct attn_geom *g) {
  const struct spr_attn_params *p = &n->p.attn;
  g->tq = (size_t)ts[n->src[0]].ne[1];
  g->tk = (size_t)ts[n->src[1]].ne[1];
  g->hd = p->head_dim;
  g->nh = p->n_heads;
  g->nkv = p->n_kv_heads;
  g->group = g->nh / g->nkv;
  g->n_sub = (g->group + tile - 1) / tile;
  g->gs = (g->group + g->n_sub - 1) / g->n_sub;
  g->qn = tile / g->gs > 0 ? tile / g->gs : 1;
  g->n_qb = (g->tq + g->qn - 1) / g->qn;
  g->n_tasks = g->nkv * g->n_sub * g->n_qb;
}

static size_t attn_thread_bytes(size_t head_dim) {
  return spr_align_up(spr_attn_scratch_floats(head_dim) * sizeof(float), 64);
}

static enum spr_status attn_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  const struct spr_attn_params *p = &n->p.attn;
  SPR_CHECK(n->n_src >= 3 && n->src[0] >= 0 && n->src[1] >= 0 && n->src[2] >= 0 && n->dst >= 0,
            SPR_STATUS_INVALID_ARGUMENT, "needs Q, K and V inputs");
  const struct spr_tensor *q = &ts[n->src[0]], *k = &ts[n->src[1]], *v = &ts[n->src[2]], *d = &ts[n->dst];
  SPR_CHECK(
      q->type == SPR_DTYPE_F32 && k->type == SPR_DTYPE_F32 && v->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32,
      SPR_STATUS_UNSUPPORTED, "Q, K, V and the output must be f32");
  const struct spr_tensor *all[4] = {q, k, v, d};
  for (int i = 0; i < 4; i++) {
    SPR_CHECK(all[i]->ne[2] == 1 && all[i]->ne[3] == 1 && all[i]->ne[0] >= 1 && all[i]->ne[1] >= 1,
              SPR_STATUS_INVALID_ARGUMENT, "Q, K, V and the output must be non-empty 2-D tensors");
  }
  SPR_CHECK(p->head_dim >= 1 && p->n_heads >= 1 && p->n_kv_heads >= 1, SPR_STATUS_INVALID_ARGUMENT,
            "head_dim, n_heads and n_kv_heads must be >= 1 (got %u, %u, %u)", (unsigned)p->head_dim,
            (unsigned)p->n_heads, (unsigned)p->n_kv_heads);
  SPR_CHECK(p->n_heads % p->n_kv_heads == 0, SPR_STATUS_INVALID_ARGUMENT,
            "n_heads %u is not a multiple of n_kv_heads %u", (unsigned)p->n_heads, (unsigned)p->n_kv_heads);
  const int64_t hd = p->head_dim;
  SPR_CHECK((int64_t)p->q_col + p->n_heads * hd <= q->ne[0], SPR_STATUS_INVALID_ARGUMENT,
            "Q heads [%u, %lld) outside its row of %lld", (unsigned)p->q_col,
            (long long)((int64_t)p->q_col + p->n_heads * hd), (long long)q->ne[0]);
  SPR_CHECK((int64_t)p->k_col + p->n_kv_heads * hd <= k->ne[0], SPR_STATUS_INVALID_ARGUMENT,
            "K heads [%u, %lld) outside its row of %lld", (unsigned)p->k_col,
            (long long)((int64_t)p->k_col + p->n_kv_heads * hd), (long long)k->ne[0]);
  SPR_CHECK((int64_t)p->v_col + p->n_kv_heads * hd <= v->ne[0], SPR_STATUS_INVALID_ARGUMENT,
            "V heads [%u, %lld) outside its row of %lld", (unsigned)p->v_col,
            (long long)((int64_t)p->v_col + p->n_kv_heads * hd), (long long)v->ne[0]);
  SPR_CHECK(k->ne[1] == v->ne[1], SPR_STATUS_INVALID_ARGUMENT, "K has %lld rows but V has %lld", (long long)k->ne[1],
            (long long)v->ne[1]);
  SPR_CHECK(q->ne[1] <= ATTN_MAX_ROWS && k->ne[1] <= ATTN_MAX_ROWS, SPR_STATUS_UNSUPPORTED,
            "sequence longer than %d rows", ATTN_MAX_ROWS);
  SPR_CHECK(!p->causal || k->ne[1] >= q->ne[1], SPR_STATUS_INVALID_ARGUMENT,
            "causal attention needs at least as many keys (%lld) as queries (%lld)", (long long)k->ne[1],
            (long long)q->ne[1]);
  SPR_CHECK(isfinite(p->scale), SPR_STATUS_INVALID_ARGUMENT, "scale is not finite");
  SPR_CHECK(d->ne[0] == p->n_heads * hd && d->ne[1] == q->ne[1], SPR_STATUS_INVALID_ARGUMENT,
            "output is {%lld, %lld}, expected {%lld, %lld}", (long long)d->ne[0], (long long)d->ne[1],
            (long long)(p->n_heads * hd), (long long)q->ne[1]);
  return SPR_STATUS_OK;
}

static size_t attn_workspace(const struct spr_tensor *ts, const struct spr_node *n, int n_threads) {
  (void)ts;
  size_t total = 0;
  if (!spr_mul_ok(attn_thread_bytes(n->p.attn.head_dim), (size_t)(n_threads > 1 ? n_threads : 1), &total))
    return SIZE_MAX;
  return total;
}

static void attn_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const size_t count = sizeof k_ukernels / sizeof k_ukernels[0];
  for (size_t i = 0; i < count; i++) {
    if ((k_ukernels[i].isa & isa) == k_ukernels[i].isa) {
      n->impl = &k_ukernels[i];
      n->impl_name = k_ukernels[i].name;
      return;
    }
  }
}

struct attn_ctx {
  const struct spr_attn_ukernel *uk;
  struct attn_geom g;
  const struct spr_attn_params *p;
  const float *q, *k, *v;
  float *o;
  size_t q_stride, k_stride, v_stride;
  uint8_t *scratch;
  size_t thread_bytes;
};

static void attn_tasks(void *arg, size_t begin, size_t end, int tid) {
  const struct attn_ctx *c = arg;
  const struct attn_geom *g = &c->g;
  float *scratch = (float *)(void *)(c->scratch + (size_t)tid * c->thread_bytes);
  for (size_t task = begin; task < end; task++) {
    const size_t pos = task % g->n_qb, grp = task / g->n_qb;
    const size_t sub = grp % g->n_sub, kvh = grp / g->n_sub;
    size_t qb = pos;
    if (c->p->causal) qb = (pos & 1) ? g->n_qb - 1 - pos / 2 : pos / 2;
    const size_t h0 = kvh * g->group + sub * g->gs;
    const size_t i0 = qb * g->qn;
    struct spr_f32_attn_task t;
    t.head_dim = g->hd;
    t.ng = g->group - sub * g->gs < g->gs ? g->group - sub * g->gs : g->gs;
    t.nq = g->tq - i0 < g->qn ? g->tq - i0 : g->qn;
    if (c->p->causal) {
      t.lim0 = (int64_t)(i0 + (g->tk - g->tq));
      t.nk = (size_t)t.lim0 + t.nq < g->tk ? (size_t)t.lim0 + t.nq : g->tk;
    } else {
      t.lim0 = (int64_t)g->tk - 1;
      t.nk = g->tk;
    }
    t.scale = c->p->scale;
    t.q = c->q + i0 * c->q_stride + c->p->q_col + h0 * g->hd;
    t.k = c->k + c->p->k_col + kvh * g->hd;
    t.v = c->v + c->p->v_col + kvh * g->hd;
    t.o = c->o + i0 * g->nh * g->hd + h0 * g->hd;
    t.q_stride = c->q_stride;
    t.k_stride = c->k_stride;
    t.v_stride = c->v_stride;
    t.o_stride = g->nh * g->hd;
    c->uk->fn(&t, scratch);
  }
}

static void attn_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *ts = x->tensors;
  struct attn_ctx c;
  c.uk = n->impl;
  c.p = &n->p.attn;
  attn_geometry(ts, n, c.uk->tile, &c.g);
  c.q = ts[n->src[0]].data;
  c.k = ts[n->src[1]].data;
  c.v = ts[n->src[2]].data;
  c.o = ts[n->dst].data;
  c.q_stride = (size_t)ts[n->src[0]].ne[0];
  c.k_stride = (size_t)ts[n->src[1]].ne[0];
  c.v_stride = (size_t)ts[n->src[2]].ne[0];
  c.scratch = x->scratch;
  c.thread_bytes = attn_thread_bytes(c.p->head_dim);
  SPR_DASSERT(x->scratch_bytes >= c.thread_bytes * (size_t)(x->n_threads > 1 ? x->n_threads : 1));
  spr_parallel(x, c.g.n_tasks, attn_tasks, &c);
}

static uint64_t attn_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  const struct spr_attn_params *p = &n->p.attn;
  const uint64_t tq = (uint64_t)ts[n->src[0]].ne[1], tk = (uint64_t)ts[n->src[1]].ne[1];
  uint64_t pairs = tq * tk;
  if (p->causal) {
    /* query i sees min(tk, max(0, i + tk - tq + 1)) keys */
    pairs = tk >= tq ? tq * (tk - tq) + tq * (tq + 1) / 2 : tk * (tk + 1) / 2;
  }
  return 4ull * p->n_heads * p->head_dim * pairs;
}

const struct spr_op_def spr_op_attention_def = {
    .name = "attention",
    .check = attn_check,
    .workspace = attn_workspace,
    .prepare = attn_prepare,
    .run = attn_run,
    .flops = attn_flops,
};
