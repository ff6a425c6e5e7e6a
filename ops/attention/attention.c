/* ops/attention/attention.c — SPR_OP_ATTENTION: fused multi-head attention
 * with online softmax (see attention.h for the task/ukernel contract).
 *
 * Work split: one task = (kv head, group of its query heads, block of query
 * rows), sized so that heads x rows fills the ukernel's tile; GQA heads that
 * share a K/V head share a task, so a decode step (Tq = 1) streams each K/V
 * head once. Causal tasks are ordered zig-zag (first, last, second, ...)
 * within a head group so that contiguous per-thread chunks get similar work.
 * The task geometry depends on shapes and the ukernel only, never on the
 * thread count, so results are bit-identical for any number of threads.
 *
 * Cached mode (p.kv_cache, see attention.h): the same tasks over the query
 * rows of the step; a task's keys are its visible positions, read in place
 * (f32 cache without a window; f16 cache without a window for a task the
 * f32 ukernel would run on its row path, e.g. a decode step, through the
 * f16 row-path ukernels) or gathered a chunk at a time into the thread's scratch
 * and converted to f32. Guards: a key whose cache row would lie past
 * the capacity (a caller bug: n_past + n_tokens over a linear cache's
 * capacity, or a ring geometry larger than the cache) is clamped into the
 * cache, never read out of bounds. */
#include "ops/attention/attention.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops/op.h"
#include "runtime/error.h"
#include "runtime/util.h"

static const struct spr_attn_ukernel k_ukernels[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/attention/attention.inc"
#undef SPR_UKERNEL
};

static const struct spr_attn_ukernel k_f16_attn[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/attention/attention_f16.inc"
#undef SPR_UKERNEL
};

static const struct spr_f16_rows_ukernel k_f16_rows[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), fn, (tile), #fn},
#include "ops/attention/f16_rows.inc"
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
  g->tk = (size_t)ts[n->src[1]].ne[1]; /* cached mode: the capacity */
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

/* Keys per gathered chunk: a multiple of the key block, ~32 KB of K (and as
 * much V) per chunk so that a chunk stays in L1/L2 between its gather and
 * its use. */
static size_t attn_chunk_keys(size_t head_dim) {
  size_t c = (8192 / head_dim) / SPR_ATTN_KEY_BLOCK * SPR_ATTN_KEY_BLOCK;
  if (c < SPR_ATTN_KEY_BLOCK) c = SPR_ATTN_KEY_BLOCK;
  if (c > 8 * SPR_ATTN_KEY_BLOCK) c = 8 * SPR_ATTN_KEY_BLOCK;
  return c;
}

/* Cached mode: the ukernel's scratch, then K and V chunk buffers. */
static size_t attn_cached_thread_bytes(size_t head_dim) {
  return attn_thread_bytes(head_dim) + 2 * spr_align_up(attn_chunk_keys(head_dim) * head_dim * sizeof(float), 64);
}

static enum spr_status attn_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  const struct spr_attn_params *p = &n->p.attn;
  SPR_CHECK(n->n_src >= 3 && n->src[0] >= 0 && n->src[1] >= 0 && n->src[2] >= 0 && n->dst >= 0,
            SPR_STATUS_INVALID_ARGUMENT, "needs Q, K and V inputs");
  const struct spr_tensor *q = &ts[n->src[0]], *k = &ts[n->src[1]], *v = &ts[n->src[2]], *d = &ts[n->dst];
  if (p->kv_cache) {
    SPR_CHECK(q->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32, SPR_STATUS_UNSUPPORTED,
              "Q and the output must be f32");
    SPR_CHECK((k->type == SPR_DTYPE_F32 || k->type == SPR_DTYPE_F16) &&
                  (v->type == SPR_DTYPE_F32 || v->type == SPR_DTYPE_F16),
              SPR_STATUS_UNSUPPORTED, "K and V caches must be f32 or f16 (are %s, %s)", spr_dtype_name(k->type),
              spr_dtype_name(v->type));
    SPR_CHECK(p->causal, SPR_STATUS_INVALID_ARGUMENT, "cached attention must be causal");
    SPR_CHECK(p->window == 0 || p->ring >= 1, SPR_STATUS_INVALID_ARGUMENT, "a windowed cache needs ring >= 1");
    SPR_CHECK((uint64_t)p->window + p->sinks <= ATTN_MAX_ROWS - SPR_ATTN_MAX_TILE, SPR_STATUS_UNSUPPORTED,
              "window %u + sinks %u too large", (unsigned)p->window, (unsigned)p->sinks);
  } else {
    SPR_CHECK(
        q->type == SPR_DTYPE_F32 && k->type == SPR_DTYPE_F32 && v->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32,
        SPR_STATUS_UNSUPPORTED, "Q, K, V and the output must be f32");
  }
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
  SPR_CHECK(p->kv_cache || !p->causal || k->ne[1] >= q->ne[1], SPR_STATUS_INVALID_ARGUMENT,
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
  const size_t hd = n->p.attn.head_dim;
  const size_t per = n->p.attn.kv_cache ? attn_cached_thread_bytes(hd) : attn_thread_bytes(hd);
  size_t total = 0;
  if (!spr_mul_ok(per, (size_t)(n_threads > 1 ? n_threads : 1), &total)) return SIZE_MAX;
  return total;
}

static void attn_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const size_t count = sizeof k_ukernels / sizeof k_ukernels[0];
  for (size_t i = 0; i < count; i++) {
    if ((k_ukernels[i].isa & isa) == k_ukernels[i].isa) {
      n->impl = &k_ukernels[i];
      n->impl_name = k_ukernels[i].name;
      break;
    }
  }
  const size_t n_cvt = sizeof k_f16_rows / sizeof k_f16_rows[0];
  n->impl2 = &k_f16_rows[n_cvt - 1];
  for (size_t i = 0; i < n_cvt; i++) {
    if ((k_f16_rows[i].isa & isa) == k_f16_rows[i].isa) {
      n->impl2 = &k_f16_rows[i];
      break;
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
  /* cached mode */
  const struct spr_f16_rows_ukernel *cvt;
  const uint8_t *kc, *vc; /* caches, row 0 column 0 */
  size_t cap;             /* cache rows */
  int k_f16, v_f16;
  int gather_k, gather_v;
  size_t chunk;                       /* keys per call when gathering */
  const struct spr_attn_ukernel *f16; /* f16 K/V read in place (decode), or NULL */
  int64_t n_past;
};

/* The task's lanes: kv head, heads h0 .., query rows i0 .. i0 + t->nq. */
static void attn_task_lanes(const struct attn_ctx *c, size_t task, struct spr_f32_attn_task *t, size_t *kvh, size_t *h0,
                            size_t *i0) {
  const struct attn_geom *g = &c->g;
  const size_t pos = task % g->n_qb, grp = task / g->n_qb;
  const size_t sub = grp % g->n_sub;
  size_t qb = pos;
  if (c->p->causal) qb = (pos & 1) ? g->n_qb - 1 - pos / 2 : pos / 2;
  *kvh = grp / g->n_sub;
  *h0 = *kvh * g->group + sub * g->gs;
  *i0 = qb * g->qn;
  t->head_dim = g->hd;
  t->ng = g->group - sub * g->gs < g->gs ? g->group - sub * g->gs : g->gs;
  t->nq = g->tq - *i0 < g->qn ? g->tq - *i0 : g->qn;
  t->scale = c->p->scale;
  t->q = c->q + *i0 * c->q_stride + c->p->q_col + *h0 * g->hd;
  t->o = c->o + *i0 * g->nh * g->hd + *h0 * g->hd;
  t->q_stride = c->q_stride;
  t->o_stride = g->nh * g->hd;
  t->kbase = 0;
  t->first = 1;
  t->last = 1;
  t->k16 = NULL;
  t->v16 = NULL;
}

static void attn_tasks(void *arg, size_t begin, size_t end, int tid) {
  const struct attn_ctx *c = arg;
  const struct attn_geom *g = &c->g;
  float *scratch = (float *)(void *)(c->scratch + (size_t)tid * c->thread_bytes);
  for (size_t task = begin; task < end; task++) {
    struct spr_f32_attn_task t;
    size_t kvh, h0, i0;
    attn_task_lanes(c, task, &t, &kvh, &h0, &i0);
    if (c->p->causal) {
      t.lim0 = (int64_t)(i0 + (g->tk - g->tq));
      t.nk = (size_t)t.lim0 + t.nq < g->tk ? (size_t)t.lim0 + t.nq : g->tk;
    } else {
      t.lim0 = (int64_t)g->tk - 1;
      t.nk = g->tk;
    }
    t.ns = t.nk;
    t.lo0 = 0;
    t.k = c->k + c->p->k_col + kvh * g->hd;
    t.v = c->v + c->p->v_col + kvh * g->hd;
    t.k_stride = c->k_stride;
    t.v_stride = c->v_stride;
    c->uk->fn(&t, scratch);
  }
}

/* A task's key sequence in cached mode: keys [0, ns) are positions [0, ns),
 * keys [ns, nk) are positions p_lo + (j - ns). Without a window ns = nk and
 * p_lo = 0. */
struct kv_seq {
  size_t nk, ns;
  int64_t p_lo;
};

/* Cache row of key j and how many of the following keys are in the next
 * rows (>= 1, stops at the sequence end, a ring wrap or the capacity). */
static size_t kv_run(const struct attn_ctx *c, const struct kv_seq *s, size_t j, size_t *row) {
  const struct spr_attn_params *p = c->p;
  size_t r, len;
  if (j < s->ns) {
    r = j;
    len = s->ns - j;
  } else {
    const uint64_t pos = (uint64_t)s->p_lo + (j - s->ns);
    r = spr_kv_slot((uint32_t)pos, p->window, p->sinks, p->ring);
    len = s->nk - j;
    if (p->window > 0 && pos >= p->sinks && p->sinks + p->ring - r < len) len = p->sinks + p->ring - r;
  }
  if (r >= c->cap) { /* guard, see the top */
    r = c->cap - 1;
    len = 1;
  } else if (len > c->cap - r) {
    len = c->cap - r;
  }
  *row = r;
  return len;
}

/* Copies keys [j0, j0 + n) of one kv head's column range from a cache
 * (f32 or f16, rows of `row` elements, column offset col) to buf[n][hd]. */
static void kv_gather(const struct attn_ctx *c, const struct kv_seq *s, size_t j0, size_t n, const uint8_t *cache,
                      int f16, size_t row_elems, size_t col, float *buf) {
  const size_t hd = c->g.hd;
  for (size_t j = j0; j < j0 + n;) {
    size_t r;
    size_t len = kv_run(c, s, j, &r);
    if (len > j0 + n - j) len = j0 + n - j;
    float *dst = buf + (j - j0) * hd;
    if (f16) {
      const uint16_t *src = (const uint16_t *)(const void *)cache + r * row_elems + col;
      c->cvt->fn(len, hd, src, row_elems, dst, hd);
    } else {
      const float *src = (const float *)(const void *)cache + r * row_elems + col;
      for (size_t i = 0; i < len; i++) memcpy(dst + i * hd, src + i * row_elems, hd * sizeof(float));
    }
    j += len;
  }
}

static void attn_cached_tasks(void *arg, size_t begin, size_t end, int tid) {
  const struct attn_ctx *c = arg;
  const struct attn_geom *g = &c->g;
  const struct spr_attn_params *p = c->p;
  uint8_t *mem = c->scratch + (size_t)tid * c->thread_bytes;
  float *scratch = (float *)(void *)mem;
  float *kbuf = (float *)(void *)(mem + attn_thread_bytes(g->hd));                         /* [chunk][hd] */
  float *vbuf = kbuf + spr_align_up(c->chunk * g->hd * sizeof(float), 64) / sizeof(float); /* [chunk][hd] */
  for (size_t task = begin; task < end; task++) {
    struct spr_f32_attn_task t;
    size_t kvh, h0, i0;
    attn_task_lanes(c, task, &t, &kvh, &h0, &i0);
    const int64_t ia = c->n_past + (int64_t)i0, ib = ia + (int64_t)t.nq - 1; /* query positions */
    struct kv_seq s;
    if (p->window == 0) {
      s.nk = (size_t)ib + 1 < c->cap ? (size_t)ib + 1 : c->cap; /* guard, see the top */
      s.ns = s.nk;
      s.p_lo = 0;
      t.lim0 = ia;
      t.lo0 = 0;
    } else {
      const int64_t w = p->window;
      s.ns = (size_t)((int64_t)p->sinks < ib + 1 ? (int64_t)p->sinks : ib + 1);
      s.p_lo = (int64_t)s.ns > ia - w + 1 ? (int64_t)s.ns : ia - w + 1;
      s.nk = s.ns + (size_t)(ib >= s.p_lo ? ib - s.p_lo + 1 : 0);
      t.lim0 = (int64_t)s.ns + ia - s.p_lo;
      t.lo0 = (int64_t)s.ns + ia - w + 1 - s.p_lo;
    }
    t.ns = s.ns;
    const size_t kcol = p->k_col + kvh * g->hd, vcol = p->v_col + kvh * g->hd;
    if (c->f16 != NULL && t.ng * t.nq <= c->f16->tile) {
      /* f16 rows in place, one call: keys [0, nk) are cache rows [0, nk) */
      t.k16 = (const uint16_t *)(const void *)c->kc + kcol;
      t.v16 = (const uint16_t *)(const void *)c->vc + vcol;
      t.k_stride = c->k_stride;
      t.v_stride = c->v_stride;
      t.kbase = 0;
      t.nk = s.nk;
      c->f16->fn(&t, scratch);
      continue;
    }
    const size_t step = c->gather_k || c->gather_v ? c->chunk : s.nk;
    for (size_t j0 = 0; j0 < s.nk; j0 += step) {
      const size_t n = s.nk - j0 < step ? s.nk - j0 : step;
      if (c->gather_k) {
        kv_gather(c, &s, j0, n, c->kc, c->k_f16, c->k_stride, kcol, kbuf);
        t.k = kbuf;
        t.k_stride = g->hd;
      } else {
        t.k = (const float *)(const void *)c->kc + j0 * c->k_stride + kcol;
        t.k_stride = c->k_stride;
      }
      if (c->gather_v) {
        kv_gather(c, &s, j0, n, c->vc, c->v_f16, c->v_stride, vcol, vbuf);
        t.v = vbuf;
        t.v_stride = g->hd;
      } else {
        t.v = (const float *)(const void *)c->vc + j0 * c->v_stride + vcol;
        t.v_stride = c->v_stride;
      }
      t.kbase = j0;
      t.nk = n;
      t.first = j0 == 0;
      t.last = j0 + n == s.nk;
      c->uk->fn(&t, scratch);
    }
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
  if (c.p->kv_cache) {
    const struct spr_tensor *kt = &ts[n->src[1]], *vt = &ts[n->src[2]];
    c.thread_bytes = attn_cached_thread_bytes(c.p->head_dim);
    c.cvt = n->impl2;
    c.kc = kt->data;
    c.vc = vt->data;
    c.cap = (size_t)kt->ne[1];
    c.k_f16 = kt->type == SPR_DTYPE_F16;
    c.v_f16 = vt->type == SPR_DTYPE_F16;
    c.gather_k = c.k_f16 || c.p->window > 0;
    c.gather_v = c.v_f16 || c.p->window > 0;
    c.chunk = attn_chunk_keys(c.p->head_dim);
    c.f16 = NULL;
    if (c.k_f16 && c.v_f16 && c.p->window == 0) {
      for (size_t i = 0; i < sizeof k_f16_attn / sizeof k_f16_attn[0]; i++) {
        if ((k_f16_attn[i].isa & n->isa) == k_f16_attn[i].isa) {
          c.f16 = &k_f16_attn[i];
          break;
        }
      }
    }
    c.n_past = x->run != NULL ? x->run->n_past : 0;
  } else {
    c.thread_bytes = attn_thread_bytes(c.p->head_dim);
  }
  SPR_DASSERT(x->scratch_bytes >= c.thread_bytes * (size_t)(x->n_threads > 1 ? x->n_threads : 1));
  spr_parallel(x, c.g.n_tasks, c.p->kv_cache ? attn_cached_tasks : attn_tasks, &c);
}

/* Cached mode: flops() has no run state, so it counts the step that ends at
 * the cache's capacity (n_past = capacity - Tq, or 0 when Tq is larger):
 * query i sees min(i + 1, sinks + window) keys with a window, i + 1
 * without. */
static uint64_t attn_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  const struct spr_attn_params *p = &n->p.attn;
  const uint64_t tq = (uint64_t)ts[n->src[0]].ne[1], tk = (uint64_t)ts[n->src[1]].ne[1];
  if (p->kv_cache) {
    const uint64_t past = tk > tq ? tk - tq : 0, lim = p->window > 0 ? (uint64_t)p->window + p->sinks : UINT64_MAX;
    uint64_t vis = 0;
    for (uint64_t i = past; i < past + tq; i++) vis += i + 1 < lim ? i + 1 : lim;
    return 4ull * p->n_heads * p->head_dim * vis;
  }
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
