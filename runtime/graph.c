/* runtime/graph.c — graph storage, builders and lifetimes. */
#include "runtime/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ops/op.h"
#include "runtime/error.h"
#include "runtime/util.h"

void spr_graph_init(struct spr_graph *g, void *mem, size_t bytes, const struct spr_gguf *gguf,
                    struct spr_error *err) {
  memset(g, 0, sizeof *g);
  g->lo = mem;
  g->hi = (uint8_t *)mem + bytes;
  g->tensors = mem;
  g->gguf = gguf;
  g->err = err;
  g->status = SPR_STATUS_OK;
}

/* While building, node i sits at hi - (i+1)*sizeof: the array grows down. */
struct spr_node *spr_graph_node(const struct spr_graph *g, int32_t i) {
  SPR_DASSERT(i >= 0 && i < g->n_nodes);
  if (g->finalized) return &g->nodes[i];
  return (struct spr_node *)(void *)g->hi - (i + 1);
}

int32_t spr_graph_fail(struct spr_graph *g, enum spr_status s, const char *fmt, ...) {
  if (g->status == SPR_STATUS_OK) {
    g->status = s;
    if (g->err != NULL) {
      g->err->status = s;
      g->err->msg[0] = '\0';
#if !defined(SPR_NO_ERROR_STRINGS)
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(g->err->msg, sizeof g->err->msg, fmt, ap);
      va_end(ap);
#else
      (void)fmt;
#endif
    }
  }
  return -1;
}

static size_t free_bytes(const struct spr_graph *g) {
  const uint8_t *tensor_end = (const uint8_t *)(g->tensors + g->n_tensors);
  const uint8_t *node_start = g->hi - (size_t)g->n_nodes * sizeof(struct spr_node);
  return node_start > tensor_end ? (size_t)(node_start - tensor_end) : 0;
}

void spr_g_dyn_rows(struct spr_graph *g, int32_t id) {
  if (g->status != SPR_STATUS_OK || id < 0) return;
  struct spr_tensor *t = spr_graph_tensor(g, id);
  if (t->role == SPR_ROLE_WEIGHT || t->role == SPR_ROLE_VIEW || t->role == SPR_ROLE_STATE) {
    spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "only activations can have dynamic rows");
    return;
  }
  t->flags |= SPR_TENSOR_DYN_ROWS;
  t->max_rows = (int32_t)t->ne[1];
}

void spr_tensor_name(const struct spr_tensor *t, char *buf, size_t len) {
  if (len == 0) return;
  const char *name = t->name != NULL ? t->name : "?";
  if (t->name_len > 0)
    snprintf(buf, len, "%.*s", (int)t->name_len, name);
  else if (t->layer >= 0)
    snprintf(buf, len, "blk.%d.%s", (int)t->layer, name);
  else
    snprintf(buf, len, "%s", name);
}

static int32_t new_tensor(struct spr_graph *g, enum spr_tensor_role role, enum spr_dtype type, int n_dims,
                          const int64_t *ne, const char *name, int layer) {
  if (g->status != SPR_STATUS_OK) return -1;
  if (g->finalized) return spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "graph already finalized");
  if (free_bytes(g) < sizeof(struct spr_tensor))
    return spr_graph_fail(g, SPR_STATUS_ARENA_TOO_SMALL, "arena too small for the graph (%d tensors)",
                          (int)g->n_tensors);
  if (n_dims < 1 || n_dims > SPR_MAX_DIMS)
    return spr_graph_fail(g, SPR_STATUS_BAD_DIMS, "tensor %s: %d dims", name, n_dims);
  const int32_t id = g->n_tensors++;
  struct spr_tensor *t = spr_graph_tensor(g, id);
  memset(t, 0, sizeof *t);
  t->type = type;
  t->role = (uint8_t)role;
  t->n_dims = (uint8_t)n_dims;
  for (int i = 0; i < SPR_MAX_DIMS; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
  for (int i = 0; i < n_dims; i++) {
    if (t->ne[i] < 1) return spr_graph_fail(g, SPR_STATUS_BAD_DIMS, "tensor %s: dim %d is %lld", name, i, (long long)ne[i]);
  }
  t->nbytes = spr_tensor_nbytes(type, t->ne, SPR_MAX_DIMS);
  if (t->nbytes == 0) return spr_graph_fail(g, SPR_STATUS_OVERFLOW, "tensor %s: size overflows", name);
  t->parent = -1;
  t->first_use = INT32_MAX;
  t->last_use = -1;
  t->plan_next = -1;
  t->name = name;
  t->layer = (int16_t)layer;
  return id;
}

int32_t spr_g_tensor(struct spr_graph *g, enum spr_tensor_role role, enum spr_dtype type, int n_dims,
                     const int64_t *ne, const char *name, int layer) {
  return new_tensor(g, role, type, n_dims, ne, name, layer);
}

int32_t spr_g_input(struct spr_graph *g, enum spr_dtype type, int n_dims, const int64_t *ne, const char *name) {
  if (g->status == SPR_STATUS_OK && g->n_inputs >= SPR_GRAPH_MAX_IO)
    return spr_graph_fail(g, SPR_STATUS_CAPACITY, "too many graph inputs");
  const int32_t id = new_tensor(g, SPR_ROLE_INPUT, type, n_dims, ne, name, -1);
  if (id >= 0) g->inputs[g->n_inputs++] = id;
  return id;
}

void spr_g_output(struct spr_graph *g, int32_t id) {
  if (g->status != SPR_STATUS_OK || id < 0) return;
  if (g->n_outputs >= SPR_GRAPH_MAX_IO) {
    spr_graph_fail(g, SPR_STATUS_CAPACITY, "too many graph outputs");
    return;
  }
  struct spr_tensor *t = spr_graph_tensor(g, id);
  if (t->role == SPR_ROLE_ACT) t->role = SPR_ROLE_OUTPUT;
  g->outputs[g->n_outputs++] = id;
}

static int32_t lookup_weight(struct spr_graph *g, const char *name, uint32_t types, int n_dims,
                             const int64_t *ne, bool optional) {
  if (g->status != SPR_STATUS_OK) return -1;
  struct spr_gguf_tensor gt;
  const enum spr_status s = g->gguf != NULL ? spr_gguf_find_tensor(g->gguf, name, &gt) : SPR_STATUS_NOT_FOUND;
  if (s == SPR_STATUS_NOT_FOUND) {
    if (optional) return -1;
    return spr_graph_fail(g, SPR_STATUS_MISSING_TENSOR, "tensor %s is missing from the model", name);
  }
  if (s != SPR_STATUS_OK) return spr_graph_fail(g, s, "tensor %s: cannot read its table entry", name);
  if (types != 0 && !(types & (1u << (unsigned)gt.type)))
    return spr_graph_fail(g, SPR_STATUS_BAD_TENSOR_TYPE, "tensor %s has type %s, not accepted here", name,
                          spr_dtype_name(gt.type));
  /* Trailing dims of size 1 may be omitted on either side. */
  for (int i = 0; i < SPR_MAX_DIMS; i++) {
    const int64_t want = i < n_dims ? ne[i] : 1;
    const int64_t have = i < (int)gt.n_dims ? gt.ne[i] : 1;
    if (want != have) {
      return spr_graph_fail(g, SPR_STATUS_BAD_SHAPE,
                            "tensor %s has shape [%lld,%lld,%lld,%lld], expected [%lld,%lld,%lld,%lld] (ne order)",
                            name, (long long)gt.ne[0], (long long)(gt.n_dims > 1 ? gt.ne[1] : 1),
                            (long long)(gt.n_dims > 2 ? gt.ne[2] : 1), (long long)(gt.n_dims > 3 ? gt.ne[3] : 1),
                            (long long)ne[0], (long long)(n_dims > 1 ? ne[1] : 1),
                            (long long)(n_dims > 2 ? ne[2] : 1), (long long)(n_dims > 3 ? ne[3] : 1));
    }
  }
  const int32_t id = new_tensor(g, SPR_ROLE_WEIGHT, gt.type, n_dims, ne, gt.name.ptr, -1);
  if (id < 0) return -1;
  struct spr_tensor *t = spr_graph_tensor(g, id);
  t->name_len = (uint16_t)gt.name.len;
  t->data = (void *)gt.data;
  return id;
}

int32_t spr_g_weight(struct spr_graph *g, const char *name, uint32_t types, int n_dims, const int64_t *ne) {
  return lookup_weight(g, name, types, n_dims, ne, false);
}

int32_t spr_g_weight_opt(struct spr_graph *g, const char *name, uint32_t types, int n_dims,
                         const int64_t *ne) {
  return lookup_weight(g, name, types, n_dims, ne, true);
}

int32_t spr_g_view(struct spr_graph *g, int32_t x, int n_dims, const int64_t *ne, size_t byte_off,
                   const char *name, int layer) {
  if (g->status != SPR_STATUS_OK || x < 0) return -1;
  const struct spr_tensor *p = spr_graph_tensor(g, x);
  if (p->type != SPR_DTYPE_F32 || p->role == SPR_ROLE_WEIGHT)
    return spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "views are of f32 activations only");
  int32_t root = x;
  size_t root_off = byte_off;
  if (p->role == SPR_ROLE_VIEW) {
    root = p->parent;
    root_off += p->offset;
  }
  const int32_t id = new_tensor(g, SPR_ROLE_VIEW, SPR_DTYPE_F32, n_dims, ne, name, layer);
  if (id < 0) return -1;
  struct spr_tensor *t = spr_graph_tensor(g, id);
  if (byte_off > p->nbytes || t->nbytes > p->nbytes - byte_off)
    return spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "view of %s is out of range", name);
  t->parent = root;
  t->offset = root_off;
  return id;
}

int32_t spr_g_view_rows(struct spr_graph *g, int32_t x, int64_t row0, int64_t n_rows, const char *name,
                        int layer) {
  if (g->status != SPR_STATUS_OK || x < 0) return -1;
  const struct spr_tensor *p = spr_graph_tensor(g, x);
  if (row0 < 0 || n_rows < 1 || row0 + n_rows > spr_tensor_rows(p))
    return spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "view of rows [%lld,+%lld) is out of range",
                          (long long)row0, (long long)n_rows);
  const int64_t ne[2] = {p->ne[0], n_rows};
  return spr_g_view(g, x, 2, ne, (size_t)row0 * (size_t)p->ne[0] * sizeof(float), name, layer);
}

int32_t spr_g_node(struct spr_graph *g, enum spr_op op, const union spr_op_params *p, const int32_t *srcs,
                   int n_src, int32_t dst) {
  if (g->status != SPR_STATUS_OK || dst < 0) return -1;
  if (n_src > SPR_MAX_SRCS) return spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "too many node inputs");
  if (free_bytes(g) < sizeof(struct spr_node))
    return spr_graph_fail(g, SPR_STATUS_ARENA_TOO_SMALL, "arena too small for the graph (%d nodes)",
                          (int)g->n_nodes);
  struct spr_node *n = (struct spr_node *)(void *)g->hi - (g->n_nodes + 1);
  memset(n, 0, sizeof *n);
  n->op = (uint16_t)op;
  n->n_src = (uint8_t)n_src;
  for (int i = 0; i < SPR_MAX_SRCS; i++) n->src[i] = i < n_src ? srcs[i] : -1;
  n->dst = dst;
  if (p != NULL) n->p = *p;
  for (int i = 0; i < n_src; i++) {
    if (srcs[i] >= g->n_tensors || srcs[i] < -1)
      return spr_graph_fail(g, SPR_STATUS_INVALID_ARGUMENT, "node input %d is not a tensor", i);
  }
  const struct spr_op_def *def = spr_op_get(op);
  if (def == NULL) return spr_graph_fail(g, SPR_STATUS_UNSUPPORTED, "unknown op %d", (int)op);
  if (def->check != NULL) {
    struct spr_error local = {SPR_STATUS_OK, ""};
    const enum spr_status s = def->check(g->tensors, n, &local);
    if (s != SPR_STATUS_OK) {
      char name[64];
      spr_tensor_name(&g->tensors[dst], name, sizeof name);
      return spr_graph_fail(g, s, "%s (%s): %s", def->name, name, local.msg);
    }
  }
  g->n_nodes++;
  return dst;
}

/* ---- finalize: compact storage and compute lifetimes ------------------- */

static void touch(struct spr_graph *g, int32_t id, int32_t node) {
  if (id < 0) return;
  struct spr_tensor *t = &g->tensors[id];
  if (t->role == SPR_ROLE_VIEW) touch(g, t->parent, node);
  if (node < t->first_use) t->first_use = node;
  if (node > t->last_use) t->last_use = node;
}

enum spr_status spr_graph_finalize(struct spr_graph *g) {
  if (g->status != SPR_STATUS_OK) return g->status;
  if (g->finalized) return SPR_STATUS_OK;
  /* Reverse the node block (stored top-down) and move it after the tensors. */
  struct spr_node *top = (struct spr_node *)(void *)g->hi - g->n_nodes;
  for (int32_t i = 0, j = g->n_nodes - 1; i < j; i++, j--) {
    struct spr_node tmp = top[i];
    top[i] = top[j];
    top[j] = tmp;
  }
  uint8_t *dst = g->lo + spr_align_up((size_t)g->n_tensors * sizeof(struct spr_tensor), 64);
  memmove(dst, top, (size_t)g->n_nodes * sizeof(struct spr_node));
  g->nodes = (struct spr_node *)(void *)dst;
  g->finalized = true;

  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct spr_node *n = &g->nodes[i];
    for (int k = 0; k < n->n_src; k++) touch(g, n->src[k], i);
    touch(g, n->dst, i);
  }
  /* Inputs are written before the first node, outputs read after the last. */
  for (int32_t i = 0; i < g->n_inputs; i++) touch(g, g->inputs[i], -1);
  for (int32_t i = 0; i < g->n_outputs; i++) touch(g, g->outputs[i], g->n_nodes);
  return SPR_STATUS_OK;
}

size_t spr_graph_bytes(const struct spr_graph *g) {
  return spr_align_up((size_t)g->n_tensors * sizeof(struct spr_tensor), 64) +
         spr_align_up((size_t)g->n_nodes * sizeof(struct spr_node), 64);
}
