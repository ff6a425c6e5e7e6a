/* sparrow/sparrow.h — the public C API of the Sparrow runtime.
 *
 * Life cycle:
 *   load  (zero-copy view of a file mapping or of a caller's memory blob)
 *   plan  (exact arena bytes for a model and a run configuration)
 *   bind  (spr_session_create over a caller-provided arena of that size)
 *   run   (spr_session_run, many times; never allocates)
 *
 * Memory: the model object is allocated once at load through the allocator in
 * spr_load_options (malloc by default; firmware passes a bump allocator over a
 * static buffer). Everything a session needs (graph, activations, per-op
 * scratch, persistent state, thread pool) lives in the arena, whose exact size
 * spr_plan() reports. A session over an arena one byte smaller than the plan
 * fails with SPR_STATUS_ARENA_TOO_SMALL and says how many bytes it needs.
 */
#ifndef SPARROW_SPARROW_H
#define SPARROW_SPARROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparrow/gguf.h"
#include "sparrow/status.h"
#include "sparrow/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPARROW_VERSION_MAJOR 0
#define SPARROW_VERSION_MINOR 1
#define SPARROW_VERSION_PATCH 0

/* Arena base address alignment required by spr_session_create. */
#define SPR_ARENA_ALIGN 64
/* Upper bound on worker threads of one session. */
#define SPR_MAX_THREADS 256

struct spr_model;
struct spr_session;

/* Load-time allocator. `alloc` returns memory aligned to `align` (a power of
 * two <= 64) or NULL; `release` may be NULL for bump allocators. */
struct spr_allocator {
  void *(*alloc)(void *user, size_t bytes, size_t align);
  void (*release)(void *user, void *ptr);
  void *user;
};

struct spr_load_options {
  const struct spr_allocator *allocator; /* NULL: malloc (hosted builds) */
  bool check_finite;                     /* scan F32/F16 weights for NaN/Inf */
};

/* Hosted builds only: maps `path` read-only and loads from the mapping. */
enum spr_status spr_model_load_file(const char *path, const struct spr_load_options *opt, struct spr_model **out,
                                    struct spr_error *err);
/* Loads from blob[0..size), which must stay valid and unchanged while the
 * model is used. The blob must be aligned to 32 bytes (GGUF data alignment)
 * for zero-copy tensor access, else MISALIGNED. */
enum spr_status spr_model_load_blob(const void *blob, size_t size, const struct spr_load_options *opt,
                                    struct spr_model **out, struct spr_error *err);
void spr_model_free(struct spr_model *m);

/* general.architecture of the model ("vit", "llama", ...). */
const char *spr_model_arch(const struct spr_model *m);
/* The parsed container, for inspection (tensor table, metadata). */
const struct spr_gguf *spr_model_gguf(const struct spr_model *m);
/* Bytes of tensor data in the mapping (what weights cost in flash/RAM). */
size_t spr_model_weights_bytes(const struct spr_model *m);

/* Run configuration. Zero means "the model's default" for sizes. */
struct spr_config {
  int threads;       /* worker threads, 1..SPR_MAX_THREADS (default 1) */
  uint32_t isa_mask; /* allowed ISAs (default SPR_ISA_ALL) */
  int image_size;    /* vision: input side in pixels (default: model's) */
  int ctx;           /* LLM: context length (default: min(model's, 2048)) */
  int batch;         /* LLM: max tokens per prefill step (default min(64, ctx)) */
  int kv_f32;        /* LLM: 1 keeps the KV cache in f32 (default 0: f16) */
  int window;        /* LLM: > 0 keeps only the last `window` keys (+ sinks): */
  int sinks;         /*      causal sliding-window attention with attention sinks; */
                     /*      KV memory is constant in the generated length */
  int logits_all;    /* LLM: 1 outputs logits for every token of a step (perplexity) */
  /* LLM core-neuron FFN sparsity (CoreInfer, stability-guided; docs/coreinfer.md). Off when
   * sparse_ffn_beta is 0. A prefill (the first spr_llm_eval after a reset, or any call with
   * more than one token) runs dense and picks each sparse layer's core neurons; single-token
   * steps then compute only those rows of ffn_gate/ffn_up and neurons of ffn_down. */
  float sparse_ffn_beta;   /* fraction of the FFN neurons kept, (0, 1] (CoreInfer: 0.4) */
  float sparse_ffn_alpha;  /* token top-k = floor(alpha * mean #positive activations); 0: 0.2 */
  int sparse_ffn_first;    /* first and last sparse layer (0-based, inclusive); -1 each: */
  int sparse_ffn_last;     /*   CoreInfer's 6..26 of 32 scaled to the depth (see docs); last INT_MAX: the last layer */
  int sparse_ffn_reselect; /* 1: re-select when a generated token ends a sentence (. ! ?) */
  int sparse_ffn_compact;  /* 1 (with neuron bundles, docs/coreinfer.md): after each selection, the first
                            * single-token step copies each sparse layer's core bundles into one contiguous
                            * block of the arena and decodes from it (sequential reads instead of gathered
                            * ones); costs n_core x the bundle row bytes of arena per sparse layer */
};
/* Zeroes c, then threads 1, isa_mask SPR_ISA_ALL, sparse_ffn_first/last -1. */
void spr_config_init(struct spr_config *c);

/* The arena, by part. arena_bytes == activations + scratch + persistent +
 * backend, each part rounded to SPR_ARENA_ALIGN. */
struct spr_plan {
  size_t arena_bytes;
  size_t activations_bytes;       /* intermediates, placed by the greedy planner */
  size_t scratch_bytes;           /* per-op workspace, one region shared by all ops */
  size_t persistent_bytes;        /* graph, session, thread pool, caches: live across runs */
  size_t backend_bytes;           /* allocations made by backends (XNNPACK) */
  size_t weights_bytes;           /* tensor data in the mapping, not in the arena */
  size_t activations_naive_bytes; /* sum of all intermediates without reuse */
  uint32_t n_nodes;
  uint32_t n_tensors;
};

/* Computes the exact arena for (m, c). Builds the graph in temporary memory
 * from the model's allocator (hosted: malloc), then frees it. */
enum spr_status spr_plan(const struct spr_model *m, const struct spr_config *c, struct spr_plan *out,
                         struct spr_error *err);

/* Binds a session to arena[0..arena_bytes) (aligned to SPR_ARENA_ALIGN).
 * Builds the graph inside the arena, places every buffer, selects ukernels
 * and starts worker threads. Fails with ARENA_TOO_SMALL (message gives the
 * bytes needed) when the arena is smaller than spr_plan's arena_bytes. */
enum spr_status spr_session_create(const struct spr_model *m, const struct spr_config *c, void *arena,
                                   size_t arena_bytes, struct spr_session **out, struct spr_error *err);
/* Stops worker threads. The arena belongs to the caller. */
void spr_session_destroy(struct spr_session *s);

/* A tensor of a session: inputs are written by the caller before a run,
 * outputs read after it. */
struct spr_tensor_view {
  const char *name;
  enum spr_dtype type;
  uint32_t n_dims;
  int64_t ne[4];
  void *data;
  size_t nbytes;
};
uint32_t spr_session_n_inputs(const struct spr_session *s);
uint32_t spr_session_n_outputs(const struct spr_session *s);
enum spr_status spr_session_input(struct spr_session *s, uint32_t index, struct spr_tensor_view *v);
enum spr_status spr_session_output(struct spr_session *s, uint32_t index, struct spr_tensor_view *v);

/* Runs the graph once. Never allocates. */
enum spr_status spr_session_run(struct spr_session *s);

/* Introspection: one entry per graph node, in execution order. */
struct spr_node_info {
  const char *op;      /* "gemm", "layernorm", ... */
  const char *ukernel; /* the ukernel chosen for this CPU and isa_mask */
  char name[64];       /* output tensor name */
  uint32_t n_dims;
  int64_t ne[4];          /* output shape */
  uint64_t flops;         /* floating-point (or integer) operations per run */
  void *data;             /* output data (valid after a run) */
  size_t workspace_bytes; /* the node's scratch (workspace) for the session's thread count */
};
uint32_t spr_session_n_nodes(const struct spr_session *s);
enum spr_status spr_session_node(const struct spr_session *s, uint32_t index, struct spr_node_info *info);

/* Optional callback after every node of a run (validation, golden dumps). */
typedef void (*spr_node_observer_fn)(void *user, uint32_t node_index, const struct spr_node_info *info);
void spr_session_set_observer(struct spr_session *s, spr_node_observer_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
