/* ops/backends/cuda/cuda_backend.cu — device memory, the session executor and
 * the single-op runner (cuda_backend.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/backends/cuda/cuda_impl.h"

namespace {

void set_err(spr_error *err, spr_status s, const char *fmt, ...) {
  if (err == nullptr) return;
  err->status = s;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
}

/* Memory of one mode: cudaMalloc / cudaMemcpy on the device, malloc / memcpy
 * in emulation. */
cudaError_t mem_alloc(bool emu, void **p, size_t bytes) {
  if (bytes == 0) bytes = 256;
  if (emu) {
    *p = aligned_alloc(256, (bytes + 255) & ~(size_t)255);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
  }
  return cudaMalloc(p, bytes);
}
void mem_free(bool emu, void *p) {
  if (p == nullptr) return;
  if (emu)
    free(p);
  else
    cudaFree(p);
}
cudaError_t mem_copy(bool emu, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t st) {
  if (bytes == 0) return cudaSuccess;
  if (emu) {
    memcpy(dst, src, bytes);
    return cudaSuccess;
  }
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, st);
  if (e != cudaSuccess) return e;
  return kind == cudaMemcpyHostToDevice ? cudaSuccess : cudaStreamSynchronize(st);
}

size_t a256(size_t x) {
  return (x + 255) & ~(size_t)255;
}

}  // namespace

struct spr_cuda {
  spr_session *s;
  bool emulate;
  cudaStream_t stream;
  uint8_t *dev; /* the one allocation */
  size_t planned, scratch, weights, total;
  void **dptr;                  /* device address of every tensor */
  const spr_cuda_kernel **kern; /* per node */
  uint8_t *stage;               /* host staging for the observer (largest node output) */
  size_t stage_bytes;
  spr_cuda_source_fn source; /* validate --isolate */
  void *source_user;
  char device[96];
};

extern "C" enum spr_status spr_cuda_probe(char *msg, size_t len) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (msg)
      snprintf(msg, len, "no usable CUDA device: cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e),
               cudaGetErrorName(e));
    return SPR_STATUS_UNSUPPORTED;
  }
  if (n < 1) {
    if (msg) snprintf(msg, len, "no CUDA device");
    return SPR_STATUS_UNSUPPORTED;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    if (msg) snprintf(msg, len, "cudaGetDeviceProperties failed");
    return SPR_STATUS_UNSUPPORTED;
  }
  if (msg) snprintf(msg, len, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
  return SPR_STATUS_OK;
}

namespace {

enum spr_status cuda_fail(spr_error *err, cudaError_t e, const char *what) {
  const spr_status s = e == cudaErrorMemoryAllocation ? SPR_STATUS_OUT_OF_MEMORY : SPR_STATUS_UNSUPPORTED;
  set_err(err, s, "CUDA: %s: %s", what, cudaGetErrorString(e));
  return s;
}

/* The executor installed on the session. */
enum spr_status cuda_exec(void *user, spr_session *s) {
  spr_cuda *c = (spr_cuda *)user;
  spr_graph *g = &s->graph;
  const bool emu = c->emulate;
  spr_cuda_ctx ctx{emu, c->stream, c->dev + c->planned, c->scratch};
  cudaError_t e = cudaSuccess;
  for (int32_t i = 0; i < g->n_inputs && e == cudaSuccess; i++) {
    const spr_tensor *t = &g->tensors[g->inputs[i]];
    e = mem_copy(emu, c->dptr[g->inputs[i]], t->data, t->nbytes, cudaMemcpyHostToDevice, c->stream);
  }
  /* The core-neuron FFN's control tensor (STATE) is written by the LLM
   * layer on the host before each step (models/llm_core.c): upload it. */
  for (int32_t i = 0, last = -1; i < g->n_nodes && e == cudaSuccess; i++) {
    const spr_node *n = &g->nodes[i];
    int32_t id = -1;
    if (n->op == SPR_OP_CORE_SELECT && n->n_src > 1)
      id = n->src[1];
    else if ((n->op == SPR_OP_GEMM_ROWS || n->op == SPR_OP_FFN_DOWN) && n->n_src > 5)
      id = n->src[5];
    if (id < 0 || id == last) continue;
    e = mem_copy(emu, c->dptr[id], g->tensors[id].data, g->tensors[id].nbytes, cudaMemcpyHostToDevice, c->stream);
    last = id;
  }
  for (int32_t i = 0; i < g->n_nodes && e == cudaSuccess; i++) {
    const spr_node *n = &g->nodes[i];
    for (int k = 0; c->source != nullptr && k < n->n_src && e == cudaSuccess; k++) {
      const int32_t id = n->src[k];
      if (id < 0 || g->tensors[id].role == SPR_ROLE_WEIGHT) continue;
      const void *h = c->source(c->source_user, (uint32_t)i, id);
      if (h != nullptr) e = mem_copy(emu, c->dptr[id], h, g->tensors[id].nbytes, cudaMemcpyHostToDevice, c->stream);
    }
    if (e != cudaSuccess) break;
    e = c->kern[i]->run(ctx, g->tensors, c->dptr, n, s->run);
    if (e == cudaSuccess && s->observer != nullptr) {
      const spr_tensor *d = &g->tensors[n->dst];
      e = mem_copy(emu, c->stage, c->dptr[n->dst], d->nbytes, cudaMemcpyDeviceToHost, c->stream);
      if (e == cudaSuccess) {
        spr_node_info info;
        spr_session_node(s, (uint32_t)i, &info);
        info.data = c->stage;
        info.ukernel = c->kern[i]->name;
        s->observer(s->observer_user, (uint32_t)i, &info);
      }
    }
  }
  for (int32_t i = 0; i < g->n_outputs && e == cudaSuccess; i++) {
    const spr_tensor *t = &g->tensors[g->outputs[i]];
    e = mem_copy(emu, t->data, c->dptr[g->outputs[i]], t->nbytes, cudaMemcpyDeviceToHost, c->stream);
  }
  if (e == cudaSuccess && !emu) e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) return cuda_fail(&s->last_error, e, "run");
  return SPR_STATUS_OK;
}

}  // namespace

extern "C" enum spr_status spr_cuda_attach(struct spr_session *s, enum spr_cuda_mode mode, struct spr_cuda **out,
                                           struct spr_error *err) {
  if (s == nullptr || out == nullptr) {
    set_err(err, SPR_STATUS_INVALID_ARGUMENT, "spr_cuda_attach needs a session and an output");
    return SPR_STATUS_INVALID_ARGUMENT;
  }
  *out = nullptr;
  const bool emu = mode == SPR_CUDA_EMULATE;
  char dev_name[96] = "host emulation";
  if (!emu) {
    char msg[200];
    if (spr_cuda_probe(msg, sizeof msg) != SPR_STATUS_OK) {
      set_err(err, SPR_STATUS_UNSUPPORTED, "%s", msg);
      return SPR_STATUS_UNSUPPORTED;
    }
    snprintf(dev_name, sizeof dev_name, "%.95s", msg);
  }
  spr_graph *g = &s->graph;
  /* Kernels first: a graph the backend cannot run costs no device memory. */
  size_t scratch = 0, stage = 0, weights = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const spr_node *n = &g->nodes[i];
    if (n->op == SPR_OP_FFN_DOWN && n->n_src > 6 && n->src[6] >= 0) {
      set_err(err, SPR_STATUS_UNSUPPORTED, "CUDA: the sparse FFN's compact copy (--sparse-ffn ...,compact) is CPU-only");
      return SPR_STATUS_UNSUPPORTED;
    }
    if (spr_cuda_kernel_find(g->tensors, n) == nullptr) {
      char name[64];
      spr_tensor_name(&g->tensors[n->dst], name, sizeof name);
      set_err(err, SPR_STATUS_UNSUPPORTED, "CUDA: no kernel for node %d (%s, %s, key dtype %s)", (int)i,
              spr_op_get((enum spr_op)n->op)->name, name,
              spr_dtype_name((enum spr_dtype)spr_cuda_key_dtype(g->tensors, n)));
      return SPR_STATUS_UNSUPPORTED;
    }
    const size_t sb = spr_cuda_node_scratch(g->tensors, n);
    scratch = sb > scratch ? sb : scratch;
    const spr_tensor *d = &g->tensors[n->dst];
    size_t db = d->nbytes;
    if ((d->flags & SPR_TENSOR_DYN_ROWS) && d->max_rows > 0 && d->ne[1] > 0)
      db = d->nbytes / (size_t)d->ne[1] * (size_t)d->max_rows;
    stage = db > stage ? db : stage;
  }
  for (int32_t i = 0; i < g->n_tensors; i++)
    if (g->tensors[i].role == SPR_ROLE_WEIGHT) weights += a256(g->tensors[i].nbytes);

  spr_cuda *c = (spr_cuda *)calloc(1, sizeof *c);
  if (c == nullptr) {
    set_err(err, SPR_STATUS_OUT_OF_MEMORY, "CUDA: cannot allocate the backend state");
    return SPR_STATUS_OUT_OF_MEMORY;
  }
  c->s = s;
  c->emulate = emu;
  snprintf(c->device, sizeof c->device, "%s", dev_name);
  /* The planned part mirrors the arena from the state region to the end of
   * the activations: same offsets. */
  c->planned = a256(s->layout.state + s->layout.act);
  c->scratch = a256(scratch);
  c->weights = weights;
  c->total = c->planned + c->scratch + c->weights;
  c->dptr = (void **)calloc((size_t)g->n_tensors + 1, sizeof(void *));
  c->kern = (const spr_cuda_kernel **)calloc((size_t)g->n_nodes + 1, sizeof(void *));
  c->stage_bytes = stage;
  c->stage = (uint8_t *)malloc(stage ? stage : 1);
  enum spr_status st = SPR_STATUS_OK;
  cudaError_t e = cudaSuccess;
  if (c->dptr == nullptr || c->kern == nullptr || c->stage == nullptr) {
    set_err(err, SPR_STATUS_OUT_OF_MEMORY, "CUDA: cannot allocate the backend tables");
    st = SPR_STATUS_OUT_OF_MEMORY;
  }
  if (st == SPR_STATUS_OK && !emu) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
  if (st == SPR_STATUS_OK && e == cudaSuccess) e = mem_alloc(emu, (void **)&c->dev, c->total);
  if (st == SPR_STATUS_OK && e != cudaSuccess) st = cuda_fail(err, e, "allocating device memory");
  if (st == SPR_STATUS_OK) {
    /* state + activations start zeroed (the KV cache's unwritten rows are
     * never read; zero makes them equal to a zeroed CPU cache) */
    const uint8_t *host_state = s->arena + s->layout.state_off;
    e = emu ? (memset(c->dev, 0, c->planned + c->scratch), cudaSuccess)
            : cudaMemsetAsync(c->dev, 0, c->planned + c->scratch, c->stream);
    size_t woff = c->planned + c->scratch;
    for (int32_t i = 0; i < g->n_tensors && e == cudaSuccess; i++) {
      spr_tensor *t = &g->tensors[i];
      if (t->role == SPR_ROLE_WEIGHT) {
        c->dptr[i] = c->dev + woff;
        e = mem_copy(emu, c->dptr[i], t->data, t->nbytes, cudaMemcpyHostToDevice, c->stream);
        woff += a256(t->nbytes);
      } else if (spr_plan_is_act(t) || t->role == SPR_ROLE_STATE) {
        c->dptr[i] = c->dev + ((uint8_t *)t->data - host_state);
      }
    }
    for (int32_t i = 0; i < g->n_tensors; i++) {
      const spr_tensor *t = &g->tensors[i];
      if (t->role == SPR_ROLE_VIEW) c->dptr[i] = (uint8_t *)c->dptr[t->parent] + t->offset;
    }
    if (e == cudaSuccess && !emu) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) st = cuda_fail(err, e, "copying the weights");
  }
  if (st != SPR_STATUS_OK) {
    c->s = nullptr;
    spr_cuda_detach(c);
    return st;
  }
  for (int32_t i = 0; i < g->n_nodes; i++) c->kern[i] = spr_cuda_kernel_find(g->tensors, &g->nodes[i]);
  spr_session_set_executor(s, cuda_exec, c);
  *out = c;
  return SPR_STATUS_OK;
}

extern "C" void spr_cuda_detach(struct spr_cuda *c) {
  if (c == nullptr) return;
  if (c->s != nullptr) spr_session_set_executor(c->s, nullptr, nullptr);
  mem_free(c->emulate, c->dev);
  if (!c->emulate && c->stream != nullptr) cudaStreamDestroy(c->stream);
  free(c->dptr);
  free(c->kern);
  free(c->stage);
  free(c);
}

extern "C" void spr_cuda_set_source_hook(struct spr_cuda *c, spr_cuda_source_fn fn, void *user) {
  if (c == nullptr) return;
  c->source = fn;
  c->source_user = user;
}

extern "C" void spr_cuda_info(const struct spr_cuda *c, struct spr_cuda_info *out) {
  memset(out, 0, sizeof *out);
  if (c == nullptr) return;
  out->total_bytes = c->total;
  out->planned_bytes = c->planned;
  out->scratch_bytes = c->scratch;
  out->weights_bytes = c->weights;
  snprintf(out->device, sizeof out->device, "%s", c->device);
}

extern "C" enum spr_status spr_cuda_op_run(struct spr_tensor *ts, int32_t n_tensors, const struct spr_node *n,
                                           const struct spr_run_state *run, enum spr_cuda_mode mode,
                                           struct spr_error *err) {
  const bool emu = mode == SPR_CUDA_EMULATE;
  if (!emu) {
    char msg[200];
    if (spr_cuda_probe(msg, sizeof msg) != SPR_STATUS_OK) {
      set_err(err, SPR_STATUS_UNSUPPORTED, "%s", msg);
      return SPR_STATUS_UNSUPPORTED;
    }
  }
  const spr_cuda_kernel *k = spr_cuda_kernel_find(ts, n);
  if (k == nullptr) {
    set_err(err, SPR_STATUS_UNSUPPORTED, "CUDA: no kernel for op %s", spr_op_get((enum spr_op)n->op)->name);
    return SPR_STATUS_UNSUPPORTED;
  }
  void **dptr = (void **)calloc((size_t)n_tensors + 1, sizeof(void *));
  if (dptr == nullptr) return SPR_STATUS_OUT_OF_MEMORY;
  cudaError_t e = cudaSuccess;
  const size_t sb = spr_cuda_node_scratch(ts, n);
  void *scratch = nullptr;
  e = mem_alloc(emu, &scratch, sb);
  /* every tensor the node uses gets a buffer; sources are uploaded, and so
   * is dst (KV_STORE writes into an existing cache) */
  int32_t ids[SPR_MAX_SRCS + 1];
  int n_ids = 0;
  for (int i = 0; i < n->n_src; i++)
    if (n->src[i] >= 0) ids[n_ids++] = n->src[i];
  ids[n_ids++] = n->dst;
  for (int i = 0; i < n_ids && e == cudaSuccess; i++) {
    const int32_t id = ids[i];
    if (dptr[id] != nullptr) continue;
    e = mem_alloc(emu, &dptr[id], ts[id].nbytes);
    if (e == cudaSuccess) e = mem_copy(emu, dptr[id], ts[id].data, ts[id].nbytes, cudaMemcpyHostToDevice, nullptr);
  }
  if (e == cudaSuccess) {
    const spr_run_state none = {0, 0};
    spr_cuda_ctx ctx{emu, nullptr, (uint8_t *)scratch, sb};
    e = k->run(ctx, ts, dptr, n, run != nullptr ? *run : none);
    if (e == cudaSuccess && !emu) e = cudaDeviceSynchronize();
    if (e == cudaSuccess)
      e = mem_copy(emu, ts[n->dst].data, dptr[n->dst], ts[n->dst].nbytes, cudaMemcpyDeviceToHost, nullptr);
  }
  for (int32_t i = 0; i < n_tensors; i++) mem_free(emu, dptr[i]);
  mem_free(emu, scratch);
  free(dptr);
  if (e != cudaSuccess) return cuda_fail(err, e, k->name);
  return SPR_STATUS_OK;
}
