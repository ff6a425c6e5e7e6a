/* ops/llm/llm_ops.c — GET_ROWS, ROPE, KV_STORE, LAST_ROW (see ops/params.h
 * for the semantics and ops/llm/llm.h for RoPE's arithmetic).
 *
 * Work splits never depend on the thread count: GET_ROWS, ROPE and KV_STORE
 * give each task one row; LAST_ROW is one copy. Run-time guards: a token id
 * outside the table reads row 0 and a KV row whose slot lies outside the
 * cache is not written, so a caller bug can never touch memory outside the
 * tensors (ids and the cache geometry are validated by the caller). */
#include <math.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/llm/llm.h"
#include "ops/op.h"
#include "ops/quant/quant.h"
#include "runtime/error.h"
#include "runtime/util.h"

static const struct spr_f32_rope_ukernel k_rope[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/llm/rope.inc"
#undef SPR_UKERNEL
};

const struct spr_f32_rope_ukernel *spr_f32_rope_select(uint32_t isa) {
  const size_t n = sizeof k_rope / sizeof k_rope[0];
  for (size_t i = 0; i < n; i++) {
    if ((k_rope[i].isa & ~isa) == 0) return &k_rope[i];
  }
  return &k_rope[n - 1];
}

void spr_rope_table(uint32_t n_rot, float freq_base, float freq_scale, int64_t pos, float *cs) {
  /* ggml's float recurrence (ggml_rope_cache_init, no YaRN, mscale 1) */
  const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
  float theta = (float)pos;
  for (uint32_t k = 0; k < n_rot; k += 2) {
    const float a = freq_scale * theta;
    const float c = cosf(a), s = sinf(a);
    cs[k] = c;
    cs[k + 1] = c;
    cs[n_rot + k] = -s;
    cs[n_rot + k + 1] = s;
    theta *= theta_scale;
  }
}

/* The run state, or an empty one (a graph without LLM steps). */
static struct spr_run_state run_state(const struct spr_exec *x) {
  if (x->run != NULL) return *x->run;
  const struct spr_run_state none = {0, 0};
  return none;
}

static bool is_2d(const struct spr_tensor *t) {
  return t->ne[0] >= 1 && t->ne[1] >= 1 && t->ne[2] == 1 && t->ne[3] == 1;
}

static enum spr_status need_f32(const struct spr_tensor *t, const char *what, struct spr_error *err) {
  SPR_CHECK(t->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE, "%s must be f32 (is %s)", what,
            spr_dtype_name(t->type));
  return SPR_STATUS_OK;
}

/* ---- GET_ROWS ------------------------------------------------------------- */

/* One table row of d elements to f32. */
typedef void (*get_row_fn)(const void *row, size_t d, float *y);

/* One table type. Quantized types (dequantizers from ops/quant) are added
 * here as {type, block elements, block bytes, row dequantizer, name}; check()
 * then also has to require D % block == 0. */
struct get_rows_impl {
  enum spr_dtype type;
  size_t blck, blck_bytes; /* a row of d elements is d / blck * blck_bytes bytes */
  get_row_fn fn;
  const char *name;
};

static void get_row_f32(const void *row, size_t d, float *y) {
  memcpy(y, row, d * sizeof(float));
}

static void get_row_f16(const void *row, size_t d, float *y) {
  const uint16_t *h = row;
  for (size_t i = 0; i < d; i++) y[i] = spr_fp16_to_f32(h[i]);
}

#define DEQUANT_ROW(t)                                           \
  static void get_row_##t(const void *row, size_t d, float *y) { \
    spr_dequantize_row_##t(row, y, (int64_t)d);                  \
  }
DEQUANT_ROW(q8_0)
DEQUANT_ROW(q4_0)
DEQUANT_ROW(q4_k)
DEQUANT_ROW(q6_k)
#undef DEQUANT_ROW

static const struct get_rows_impl k_get_rows[] = {
    {SPR_DTYPE_F32, 1, sizeof(float), get_row_f32, "get_rows_f32"},
    {SPR_DTYPE_F16, 1, sizeof(uint16_t), get_row_f16, "get_rows_f16"},
    {SPR_DTYPE_Q8_0, 32, 34, get_row_q8_0, "get_rows_q8_0"},
    {SPR_DTYPE_Q4_0, 32, 18, get_row_q4_0, "get_rows_q4_0"},
    {SPR_DTYPE_Q4_K, 256, 144, get_row_q4_k, "get_rows_q4_k"},
    {SPR_DTYPE_Q6_K, 256, 210, get_row_q6_k, "get_rows_q6_k"},
};

static const struct get_rows_impl *get_rows_find(enum spr_dtype type) {
  for (size_t i = 0; i < sizeof k_get_rows / sizeof k_get_rows[0]; i++) {
    if (k_get_rows[i].type == type) return &k_get_rows[i];
  }
  return NULL;
}

/* ids are {T} or {1, T} (the LLM graph uses {1, T} with dynamic rows). */
static bool ids_shape_ok(const struct spr_tensor *ids) {
  return ids->ne[2] == 1 && ids->ne[3] == 1 && ids->ne[0] >= 1 && ids->ne[1] >= 1 &&
         (ids->ne[0] == 1 || ids->ne[1] == 1);
}

static enum spr_status get_rows_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 2 && n->src[0] >= 0 && n->src[1] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "needs a table and token ids");
  const struct spr_tensor *tab = &ts[n->src[0]], *ids = &ts[n->src[1]], *y = &ts[n->dst];
  const struct get_rows_impl *impl = get_rows_find(tab->type);
  SPR_CHECK(impl != NULL, SPR_STATUS_UNSUPPORTED, "table type %s is not supported (f32, f16, q8_0, q4_0, q4_k, q6_k)",
            spr_dtype_name(tab->type));
  SPR_CHECK(tab->ne[0] % (int64_t)impl->blck == 0, SPR_STATUS_BAD_SHAPE, "row length %lld is not a multiple of %zu",
            (long long)tab->ne[0], impl->blck);
  SPR_CHECK(is_2d(tab), SPR_STATUS_BAD_SHAPE, "table must be a non-empty 2-D tensor {D, V}");
  SPR_CHECK(ids->type == SPR_DTYPE_I32, SPR_STATUS_BAD_TENSOR_TYPE, "token ids must be i32 (are %s)",
            spr_dtype_name(ids->type));
  SPR_CHECK(ids_shape_ok(ids), SPR_STATUS_BAD_SHAPE, "token ids must be {T} or {1, T} (are {%lld, %lld, %lld, %lld})",
            (long long)ids->ne[0], (long long)ids->ne[1], (long long)ids->ne[2], (long long)ids->ne[3]);
  SPR_TRY(need_f32(y, "output", err));
  const int64_t t = spr_tensor_nelem(ids);
  SPR_CHECK(is_2d(y) && y->ne[0] == tab->ne[0] && y->ne[1] == t, SPR_STATUS_BAD_SHAPE,
            "output is {%lld, %lld, %lld, %lld}, expected {%lld, %lld}", (long long)y->ne[0], (long long)y->ne[1],
            (long long)y->ne[2], (long long)y->ne[3], (long long)tab->ne[0], (long long)t);
  return SPR_STATUS_OK;
}

static void get_rows_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)isa;
  const struct get_rows_impl *impl = get_rows_find(ts[n->src[0]].type);
  n->impl = impl;
  n->impl_name = impl != NULL ? impl->name : NULL;
}

struct get_rows_ctx {
  const struct get_rows_impl *impl;
  const uint8_t *table;
  size_t d, n_rows, row_bytes;
  const int32_t *ids;
  float *y;
};

static void get_rows_tasks(void *arg, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct get_rows_ctx *c = arg;
  for (size_t t = begin; t < end; t++) {
    const int32_t id = c->ids[t];
    const size_t row = id >= 0 && (size_t)id < c->n_rows ? (size_t)id : 0; /* guard, see the top */
    c->impl->fn(c->table + row * c->row_bytes, c->d, c->y + t * c->d);
  }
}

static void get_rows_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *tab = &x->tensors[n->src[0]], *ids = &x->tensors[n->src[1]];
  struct get_rows_ctx c;
  c.impl = n->impl;
  c.table = tab->data;
  c.d = (size_t)tab->ne[0];
  c.n_rows = (size_t)tab->ne[1];
  c.row_bytes = c.d / c.impl->blck * c.impl->blck_bytes;
  c.ids = ids->data;
  c.y = x->tensors[n->dst].data;
  spr_parallel(x, (size_t)spr_tensor_nelem(ids), get_rows_tasks, &c);
}

static uint64_t zero_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  (void)ts;
  (void)n;
  return 0;
}

const struct spr_op_def spr_op_get_rows_def = {
    .name = "get_rows",
    .check = get_rows_check,
    .workspace = NULL,
    .prepare = get_rows_prepare,
    .run = get_rows_run,
    .flops = zero_flops,
};

/* ---- ROPE ------------------------------------------------------------------- */

static enum spr_status rope_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "needs an input");
  const struct spr_rope_params *p = &n->p.rope;
  const struct spr_tensor *a = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_TRY(need_f32(a, "input", err));
  SPR_TRY(need_f32(y, "output", err));
  SPR_CHECK(is_2d(a) && is_2d(y) && a->ne[1] == y->ne[1], SPR_STATUS_BAD_SHAPE,
            "input and output must be 2-D tensors with the same rows");
  SPR_CHECK(p->n_heads >= 1 && p->head_dim >= 2, SPR_STATUS_INVALID_ARGUMENT, "n_heads %u, head_dim %u",
            (unsigned)p->n_heads, (unsigned)p->head_dim);
  SPR_CHECK(p->n_rot >= 2 && p->n_rot % 2 == 0 && p->n_rot <= p->head_dim, SPR_STATUS_INVALID_ARGUMENT,
            "n_rot %u must be even and in [2, head_dim %u]", (unsigned)p->n_rot, (unsigned)p->head_dim);
  SPR_CHECK(y->ne[0] == (int64_t)p->n_heads * p->head_dim, SPR_STATUS_BAD_SHAPE,
            "output rows of %lld floats, expected n_heads %u x head_dim %u", (long long)y->ne[0], (unsigned)p->n_heads,
            (unsigned)p->head_dim);
  SPR_CHECK(a->ne[0] >= (int64_t)p->col + y->ne[0], SPR_STATUS_BAD_SHAPE,
            "input rows of %lld floats, the heads span columns [%u, %lld)", (long long)a->ne[0], (unsigned)p->col,
            (long long)((int64_t)p->col + y->ne[0]));
  SPR_CHECK(isfinite(p->freq_base) && p->freq_base > 0.0f, SPR_STATUS_INVALID_ARGUMENT,
            "freq_base %g must be finite and > 0", (double)p->freq_base);
  SPR_CHECK(isfinite(p->freq_scale) && p->freq_scale > 0.0f, SPR_STATUS_INVALID_ARGUMENT,
            "freq_scale %g must be finite and > 0", (double)p->freq_scale);
  return SPR_STATUS_OK;
}

static size_t rope_thread_bytes(const struct spr_node *n) {
  return spr_align_up(2u * n->p.rope.n_rot * sizeof(float), 64);
}

static size_t rope_workspace(const struct spr_tensor *ts, const struct spr_node *n, int n_threads) {
  (void)ts;
  return rope_thread_bytes(n) * (size_t)(n_threads > 1 ? n_threads : 1);
}

static void rope_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  const struct spr_f32_rope_ukernel *k = spr_f32_rope_select(isa);
  n->impl = k;
  n->impl_name = k->name;
}

struct rope_ctx {
  spr_f32_rope_fn fn;
  const struct spr_rope_params *p;
  const float *a;
  float *y;
  size_t row, y_row; /* input and output row lengths */
  int64_t n_past;
  uint8_t *scratch;
  size_t thread_bytes;
};

static void rope_tasks(void *arg, size_t begin, size_t end, int tid) {
  const struct rope_ctx *c = arg;
  float *cs = (float *)(void *)(c->scratch + (size_t)tid * c->thread_bytes); /* [2 n_rot] */
  for (size_t t = begin; t < end; t++) {
    spr_rope_table(c->p->n_rot, c->p->freq_base, c->p->freq_scale, c->n_past + (int64_t)t, cs);
    c->fn(c->p->n_heads, c->p->head_dim, c->p->n_rot, cs, c->a + t * c->row + c->p->col, c->y + t * c->y_row);
  }
}

static void rope_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *a = &x->tensors[n->src[0]];
  struct rope_ctx c;
  c.fn = ((const struct spr_f32_rope_ukernel *)n->impl)->fn;
  c.p = &n->p.rope;
  c.a = a->data;
  c.y = x->tensors[n->dst].data;
  c.row = (size_t)a->ne[0];
  c.y_row = (size_t)x->tensors[n->dst].ne[0];
  c.n_past = run_state(x).n_past;
  c.scratch = x->scratch;
  c.thread_bytes = rope_thread_bytes(n);
  SPR_DASSERT(x->scratch_bytes >= c.thread_bytes * (size_t)(x->n_threads > 1 ? x->n_threads : 1));
  spr_parallel(x, (size_t)a->ne[1], rope_tasks, &c);
}

/* 4 multiplies and 2 adds per rotated pair (the angle table is not counted) */
static uint64_t rope_flops(const struct spr_tensor *ts, const struct spr_node *n) {
  const struct spr_rope_params *p = &n->p.rope;
  return 3ull * p->n_rot * p->n_heads * (uint64_t)ts[n->src[0]].ne[1];
}

const struct spr_op_def spr_op_rope_def = {
    .name = "rope",
    .check = rope_check,
    .workspace = rope_workspace,
    .prepare = rope_prepare,
    .run = rope_run,
    .flops = rope_flops,
};

/* ---- KV_STORE ----------------------------------------------------------------- */

static enum spr_status kv_store_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "needs an input");
  const struct spr_kv_params *p = &n->p.kv;
  const struct spr_tensor *a = &ts[n->src[0]], *c = &ts[n->dst];
  SPR_TRY(need_f32(a, "input", err));
  SPR_CHECK(c->type == SPR_DTYPE_F32 || c->type == SPR_DTYPE_F16, SPR_STATUS_BAD_TENSOR_TYPE,
            "cache must be f32 or f16 (is %s)", spr_dtype_name(c->type));
  SPR_CHECK(is_2d(a) && is_2d(c), SPR_STATUS_BAD_SHAPE, "input and cache must be non-empty 2-D tensors");
  SPR_CHECK(a->ne[0] >= (int64_t)p->col + c->ne[0], SPR_STATUS_BAD_SHAPE,
            "input rows of %lld, cache rows of %lld from column %u", (long long)a->ne[0], (long long)c->ne[0],
            (unsigned)p->col);
  SPR_CHECK(p->window == 0 || p->ring >= 1, SPR_STATUS_INVALID_ARGUMENT, "a windowed cache needs ring >= 1");
  return SPR_STATUS_OK;
}

static void kv_store_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)isa;
  n->impl = NULL;
  n->impl_name = ts[n->dst].type == SPR_DTYPE_F16 ? "kv_store_f16" : "kv_store_f32";
}

struct kv_store_ctx {
  const struct spr_kv_params *p;
  const float *a;
  uint8_t *cache;
  size_t w, a_row, cap, elem;
  int64_t n_past;
};

static void kv_store_tasks(void *arg, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct kv_store_ctx *c = arg;
  for (size_t t = begin; t < end; t++) {
    const uint32_t slot = spr_kv_slot((uint32_t)(c->n_past + (int64_t)t), c->p->window, c->p->sinks, c->p->ring);
    if (slot >= c->cap) continue; /* guard, see the top */
    const float *src = c->a + t * c->a_row + c->p->col;
    if (c->elem == sizeof(float)) {
      memcpy(c->cache + (size_t)slot * c->w * sizeof(float), src, c->w * sizeof(float));
    } else {
      uint16_t *dst = (uint16_t *)(void *)(c->cache + (size_t)slot * c->w * sizeof(uint16_t));
      for (size_t i = 0; i < c->w; i++) dst[i] = spr_fp16_from_f32(src[i]);
    }
  }
}

static void kv_store_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *a = &x->tensors[n->src[0]], *cache = &x->tensors[n->dst];
  struct kv_store_ctx c;
  c.p = &n->p.kv;
  c.a = a->data;
  c.cache = cache->data;
  c.w = (size_t)cache->ne[0];
  c.a_row = (size_t)a->ne[0];
  c.cap = (size_t)cache->ne[1];
  c.elem = cache->type == SPR_DTYPE_F16 ? sizeof(uint16_t) : sizeof(float);
  c.n_past = run_state(x).n_past;
  spr_parallel(x, (size_t)a->ne[1], kv_store_tasks, &c);
}

const struct spr_op_def spr_op_kv_store_def = {
    .name = "kv_store",
    .check = kv_store_check,
    .workspace = NULL,
    .prepare = kv_store_prepare,
    .run = kv_store_run,
    .flops = zero_flops,
};

/* ---- LAST_ROW ------------------------------------------------------------------- */

static enum spr_status last_row_check(const struct spr_tensor *ts, const struct spr_node *n, struct spr_error *err) {
  SPR_CHECK(n->n_src >= 1 && n->src[0] >= 0 && n->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "needs an input");
  const struct spr_tensor *a = &ts[n->src[0]], *y = &ts[n->dst];
  SPR_TRY(need_f32(a, "input", err));
  SPR_TRY(need_f32(y, "output", err));
  SPR_CHECK(is_2d(a), SPR_STATUS_BAD_SHAPE, "input must be a non-empty 2-D tensor");
  SPR_CHECK(is_2d(y) && y->ne[0] == a->ne[0] && y->ne[1] == 1, SPR_STATUS_BAD_SHAPE,
            "output is {%lld, %lld, %lld, %lld}, expected {%lld, 1}", (long long)y->ne[0], (long long)y->ne[1],
            (long long)y->ne[2], (long long)y->ne[3], (long long)a->ne[0]);
  return SPR_STATUS_OK;
}

static void last_row_prepare(const struct spr_tensor *ts, struct spr_node *n, uint32_t isa) {
  (void)ts;
  (void)isa;
  n->impl = NULL;
  n->impl_name = "last_row";
}

/* Row n_tokens - 1; without a valid run state (n_tokens outside [1, rows])
 * the input's last row. */
static void last_row_run(const struct spr_exec *x, const struct spr_node *n) {
  const struct spr_tensor *a = &x->tensors[n->src[0]];
  const int64_t rows = a->ne[1], nt = run_state(x).n_tokens;
  const int64_t r = nt >= 1 && nt <= rows ? nt - 1 : rows - 1;
  const size_t d = (size_t)a->ne[0];
  memcpy(x->tensors[n->dst].data, (const float *)a->data + (size_t)r * d, d * sizeof(float));
}

const struct spr_op_def spr_op_last_row_def = {
    .name = "last_row",
    .check = last_row_check,
    .workspace = NULL,
    .prepare = last_row_prepare,
    .run = last_row_run,
    .flops = zero_flops,
};
