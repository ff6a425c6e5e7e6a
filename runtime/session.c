/* runtime/session.c — plan, bind and run a graph in one arena. */
#include "runtime/session.h"

#include <stdio.h>
#include <string.h>

#include "platform/threads.h"
#include "runtime/error.h"
#include "runtime/planner.h"
#include "runtime/util.h"

#define A64(x) spr_align_up((x), SPR_ARENA_ALIGN)

void spr_config_init(struct spr_config *c) {
  if (c == NULL) return;
  memset(c, 0, sizeof *c);
  c->threads = 1;
  c->isa_mask = SPR_ISA_ALL;
  c->sparse_ffn_first = -1; /* the default layer range (models/llama/llama_core.c) */
  c->sparse_ffn_last = -1;
}

enum spr_status spr_config_resolve(const struct spr_config *in, struct spr_config *out, struct spr_error *err) {
  struct spr_config c;
  spr_config_init(&c);
  if (in != NULL) c = *in;
  SPR_CHECK(c.threads >= 1 && c.threads <= SPR_MAX_THREADS, SPR_STATUS_INVALID_ARGUMENT,
            "threads must be 1..%d, got %d", SPR_MAX_THREADS, c.threads);
#if !SPR_THREADS
  c.threads = 1; /* the serial executor: any thread count runs on the caller's thread */
#endif
  SPR_CHECK(c.image_size >= 0 && c.ctx >= 0 && c.batch >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "image size, context and batch must not be negative");
  *out = c;
  return SPR_STATUS_OK;
}

enum spr_status spr_graph_layout(struct spr_graph *g, const struct spr_config *cfg, struct spr_layout *L,
                                 struct spr_error *err) {
  SPR_TRY(spr_graph_finalize(g));
  const uint32_t isa = spr_cpu_isa() & cfg->isa_mask;
  size_t scratch = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct spr_node *n = &g->nodes[i];
    const struct spr_op_def *def = spr_op_get((enum spr_op)n->op);
    n->isa = isa;
    if (def->prepare != NULL) def->prepare(g->tensors, n, isa);
    n->ws_bytes = def->workspace != NULL ? def->workspace(g->tensors, n, cfg->threads) : 0;
    if (n->ws_bytes > scratch) scratch = n->ws_bytes;
  }
  memset(L, 0, sizeof *L);
  L->session = A64(sizeof(struct spr_session));
  L->pool = A64(spr_pool_bytes(cfg->threads));
  L->graph = spr_graph_bytes(g);
  L->state = spr_plan_state(g->tensors, g->n_tensors);
  L->act = A64(spr_plan_activations(g->tensors, g->n_tensors, &L->act_naive));
  L->scratch = A64(scratch);
  L->backend = 0;
  L->graph_off = L->session + L->pool;
  L->state_off = L->graph_off + L->graph;
  L->act_off = L->state_off + L->state;
  L->scratch_off = L->act_off + L->act;
  L->backend_off = L->scratch_off + L->scratch;
  L->total = L->backend_off + L->backend;
  SPR_CHECK(L->total >= L->backend_off && L->act_off >= L->state_off, SPR_STATUS_OVERFLOW,
            "arena size overflows");
  return SPR_STATUS_OK;
}

static void fill_plan(const struct spr_layout *L, const struct spr_graph *g, struct spr_plan *p) {
  memset(p, 0, sizeof *p);
  p->arena_bytes = L->total;
  p->activations_bytes = L->act;
  p->scratch_bytes = L->scratch;
  p->persistent_bytes = L->session + L->pool + L->graph + L->state;
  p->backend_bytes = L->backend;
  p->activations_naive_bytes = L->act_naive;
  p->n_nodes = (uint32_t)g->n_nodes;
  p->n_tensors = (uint32_t)g->n_tensors;
  for (int32_t i = 0; i < g->n_tensors; i++) {
    if (g->tensors[i].role == SPR_ROLE_WEIGHT) p->weights_bytes += g->tensors[i].nbytes;
  }
}

enum spr_status spr_plan_graph(const struct spr_gguf *gguf, spr_build_fn build, const void *model,
                               const struct spr_config *cfg_in, const struct spr_allocator *alloc,
                               struct spr_plan *out, struct spr_error *err) {
  SPR_CHECK(out != NULL && alloc != NULL && alloc->alloc != NULL, SPR_STATUS_INVALID_ARGUMENT,
            "spr_plan needs an output and an allocator");
  struct spr_config cfg;
  SPR_TRY(spr_config_resolve(cfg_in, &cfg, err));
  /* The graph's size is only known once built: retry with more room. */
  /* Up to 16 GiB where size_t allows, else the largest power of two (32-bit targets). */
  const size_t cap_max = SIZE_MAX > ((uint64_t)1 << 34) ? (size_t)((uint64_t)1 << 34) : (SIZE_MAX >> 1) + 1;
  for (size_t cap = 64 * 1024; cap != 0 && cap <= cap_max; cap *= 2) {
    void *mem = alloc->alloc(alloc->user, cap, 64);
    SPR_CHECK(mem != NULL, SPR_STATUS_OUT_OF_MEMORY, "cannot allocate %zu bytes to plan the graph", cap);
    struct spr_graph g;
    spr_graph_init(&g, mem, cap, gguf, err);
    enum spr_status s = build(model, &cfg, &g);
    if (s == SPR_STATUS_OK) s = g.status;
    if (s == SPR_STATUS_ARENA_TOO_SMALL) {
      if (alloc->release) alloc->release(alloc->user, mem);
      continue;
    }
    struct spr_layout L;
    if (s == SPR_STATUS_OK) s = spr_graph_layout(&g, &cfg, &L, err);
    if (s == SPR_STATUS_OK) fill_plan(&L, &g, out);
    if (alloc->release) alloc->release(alloc->user, mem);
    return s;
  }
  return SPR_FAIL(SPR_STATUS_OUT_OF_MEMORY, "graph too large to plan");
}

static void resolve_pointers(struct spr_session *s) {
  struct spr_graph *g = &s->graph;
  for (int32_t i = 0; i < g->n_tensors; i++) {
    struct spr_tensor *t = &g->tensors[i];
    if (spr_plan_is_act(t))
      t->data = s->arena + s->layout.act_off + t->offset;
    else if (t->role == SPR_ROLE_STATE)
      t->data = s->arena + s->layout.state_off + t->offset;
  }
  for (int32_t i = 0; i < g->n_tensors; i++) {
    struct spr_tensor *t = &g->tensors[i];
    if (t->role == SPR_ROLE_VIEW) t->data = (uint8_t *)g->tensors[t->parent].data + t->offset;
  }
}

enum spr_status spr_session_bind(const struct spr_gguf *gguf, spr_build_fn build, const void *model,
                                 const struct spr_config *cfg_in, const struct spr_allocator *alloc, void *arena,
                                 size_t arena_bytes, struct spr_session **out, struct spr_error *err) {
  SPR_CHECK(out != NULL, SPR_STATUS_INVALID_ARGUMENT, "no session output pointer");
  *out = NULL;
  SPR_CHECK(arena != NULL || arena_bytes == 0, SPR_STATUS_INVALID_ARGUMENT, "arena is NULL");
  SPR_CHECK(((uintptr_t)arena & (SPR_ARENA_ALIGN - 1)) == 0, SPR_STATUS_MISALIGNED,
            "arena must be aligned to %d bytes", SPR_ARENA_ALIGN);
  struct spr_config cfg;
  SPR_TRY(spr_config_resolve(cfg_in, &cfg, err));

  const size_t head = A64(sizeof(struct spr_session)) + A64(spr_pool_bytes(cfg.threads));
  enum spr_status s = SPR_STATUS_ARENA_TOO_SMALL;
  struct spr_graph g;
  struct spr_layout L;
  if (arena_bytes > head) {
    const size_t room = (arena_bytes - head) & ~(size_t)(SPR_ARENA_ALIGN - 1);
    spr_graph_init(&g, (uint8_t *)arena + head, room, gguf, err);
    s = build(model, &cfg, &g);
    if (s == SPR_STATUS_OK) s = g.status;
    if (s == SPR_STATUS_OK) s = spr_graph_layout(&g, &cfg, &L, err);
    if (s == SPR_STATUS_OK && L.total > arena_bytes) s = SPR_STATUS_ARENA_TOO_SMALL;
  }
  if (s == SPR_STATUS_ARENA_TOO_SMALL) {
    struct spr_plan plan;
    if (alloc != NULL && spr_plan_graph(gguf, build, model, &cfg, alloc, &plan, NULL) == SPR_STATUS_OK)
      return SPR_FAIL(SPR_STATUS_ARENA_TOO_SMALL, "arena of %zu bytes is too small: this model needs %zu",
                      arena_bytes, plan.arena_bytes);
    return SPR_FAIL(SPR_STATUS_ARENA_TOO_SMALL, "arena of %zu bytes is too small", arena_bytes);
  }
  if (s != SPR_STATUS_OK) return s;

  struct spr_session *ss = arena;
  memset(ss, 0, sizeof *ss);
  ss->model = model;
  ss->cfg = cfg;
  ss->arena = arena;
  ss->arena_bytes = arena_bytes;
  ss->graph = g;
  ss->graph.err = &ss->last_error;
  ss->layout = L;
  resolve_pointers(ss);
  memset((uint8_t *)arena + L.state_off, 0, L.state); /* STATE tensors start zeroed */
  s = spr_pool_create((uint8_t *)arena + L.session, cfg.threads, &ss->pool);
  SPR_CHECK(s == SPR_STATUS_OK, s, "cannot start %d worker threads", cfg.threads - 1);
  *out = ss;
  return SPR_STATUS_OK;
}

void spr_session_destroy(struct spr_session *s) {
  if (s == NULL) return;
  spr_pool_destroy(s->pool);
  s->pool = NULL;
}

static enum spr_status view_of(struct spr_session *s, int32_t id, struct spr_tensor_view *v) {
  const struct spr_tensor *t = &s->graph.tensors[id];
  memset(v, 0, sizeof *v);
  v->name = t->name;
  v->type = t->type;
  v->n_dims = t->n_dims;
  for (int i = 0; i < 4; i++) v->ne[i] = t->ne[i];
  v->data = t->data;
  v->nbytes = t->nbytes;
  return SPR_STATUS_OK;
}

uint32_t spr_session_n_inputs(const struct spr_session *s) { return s ? (uint32_t)s->graph.n_inputs : 0; }
uint32_t spr_session_n_outputs(const struct spr_session *s) { return s ? (uint32_t)s->graph.n_outputs : 0; }

enum spr_status spr_session_input(struct spr_session *s, uint32_t index, struct spr_tensor_view *v) {
  if (s == NULL || v == NULL || index >= (uint32_t)s->graph.n_inputs) return SPR_STATUS_INVALID_ARGUMENT;
  return view_of(s, s->graph.inputs[index], v);
}

enum spr_status spr_session_output(struct spr_session *s, uint32_t index, struct spr_tensor_view *v) {
  if (s == NULL || v == NULL || index >= (uint32_t)s->graph.n_outputs) return SPR_STATUS_INVALID_ARGUMENT;
  return view_of(s, s->graph.outputs[index], v);
}

uint32_t spr_session_n_nodes(const struct spr_session *s) { return s ? (uint32_t)s->graph.n_nodes : 0; }

enum spr_status spr_session_node(const struct spr_session *s, uint32_t index, struct spr_node_info *info) {
  if (s == NULL || info == NULL || index >= (uint32_t)s->graph.n_nodes) return SPR_STATUS_INVALID_ARGUMENT;
  const struct spr_node *n = &s->graph.nodes[index];
  const struct spr_tensor *t = &s->graph.tensors[n->dst];
  const struct spr_op_def *def = spr_op_get((enum spr_op)n->op);
  memset(info, 0, sizeof *info);
  info->op = def->name;
  info->ukernel = n->impl_name != NULL ? n->impl_name : "-";
  spr_tensor_name(t, info->name, sizeof info->name);
  info->n_dims = t->n_dims;
  for (int i = 0; i < 4; i++) info->ne[i] = t->ne[i];
  info->flops = def->flops != NULL ? def->flops(s->graph.tensors, n) : 0;
  info->data = t->data;
  info->workspace_bytes = n->ws_bytes;
  return SPR_STATUS_OK;
}

enum spr_status spr_session_set_step(struct spr_session *s, int32_t n_past, int32_t n_tokens) {
  if (s == NULL || n_past < 0 || n_tokens < 1) return SPR_STATUS_INVALID_ARGUMENT;
  struct spr_graph *g = &s->graph;
  for (int32_t i = 0; i < g->n_tensors; i++) {
    const struct spr_tensor *t = &g->tensors[i];
    if ((t->flags & SPR_TENSOR_DYN_ROWS) && n_tokens > t->max_rows) return SPR_STATUS_CAPACITY;
  }
  for (int32_t i = 0; i < g->n_tensors; i++) {
    struct spr_tensor *t = &g->tensors[i];
    if (!(t->flags & SPR_TENSOR_DYN_ROWS)) continue;
    t->ne[1] = n_tokens;
    t->nbytes = spr_tensor_nbytes(t->type, t->ne, SPR_MAX_DIMS);
  }
  s->run.n_past = n_past;
  s->run.n_tokens = n_tokens;
  return SPR_STATUS_OK;
}

void spr_session_set_observer(struct spr_session *s, spr_node_observer_fn fn, void *user) {
  if (s == NULL) return;
  s->observer = fn;
  s->observer_user = user;
}

void spr_session_set_executor(struct spr_session *s, spr_session_exec_fn fn, void *user) {
  if (s == NULL) return;
  s->exec = fn;
  s->exec_user = user;
}

enum spr_status spr_session_run(struct spr_session *s) {
  if (s == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  if (s->exec != NULL) return s->exec(s->exec_user, s);
  struct spr_exec x = {
      .tensors = s->graph.tensors,
      .run = &s->run,
      .pool = s->pool,
      .n_threads = s->cfg.threads,
      .scratch = s->arena + s->layout.scratch_off,
      .scratch_bytes = s->layout.scratch,
  };
  for (int32_t i = 0; i < s->graph.n_nodes; i++) {
    const struct spr_node *n = &s->graph.nodes[i];
    spr_op_get((enum spr_op)n->op)->run(&x, n);
    if (s->observer != NULL) {
      struct spr_node_info info;
      spr_session_node(s, (uint32_t)i, &info);
      s->observer(s->observer_user, (uint32_t)i, &info);
    }
  }
  return SPR_STATUS_OK;
}
