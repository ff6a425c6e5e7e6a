/* runtime/session.h — binding a graph to an arena, and running it.
 *
 * Arena layout (offsets from the arena base, every part 64-byte aligned):
 *   [session struct][thread pool][graph: tensors, nodes][state][activations][scratch][backend]
 * The first three parts and state are the "persistent" bytes of the plan. */
#ifndef SPR_RUNTIME_SESSION_H
#define SPR_RUNTIME_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"
#include "runtime/graph.h"
#include "sparrow/sparrow.h"

/* An executor that replaces the CPU loop of spr_session_run (a GPU backend,
 * ops/backends/cuda): it runs every node of s's graph with s->run as the run
 * state, reads the INPUT tensors' data before and writes the OUTPUT tensors'
 * data after, and calls s->observer (if any) after each node. */
struct spr_session;
typedef enum spr_status (*spr_session_exec_fn)(void *user, struct spr_session *s);

/* Builds the model's graph for a configuration into g. */
typedef enum spr_status (*spr_build_fn)(const void *model, const struct spr_config *cfg, struct spr_graph *g);

struct spr_layout {
  size_t session, pool, graph, state, act, scratch, backend;
  size_t graph_off, state_off, act_off, scratch_off, backend_off, total;
  size_t act_naive;
};

struct spr_session {
  const void *model;
  struct spr_config cfg;
  uint8_t *arena;
  size_t arena_bytes;
  struct spr_graph graph;
  struct spr_layout layout;
  struct spr_pool *pool;
  struct spr_run_state run;
  struct spr_error last_error;
  spr_node_observer_fn observer;
  void *observer_user;
  spr_session_exec_fn exec; /* NULL: the CPU executor */
  void *exec_user;
};

/* Installs (fn != NULL) or removes (NULL) an executor replacing the CPU loop. */
void spr_session_set_executor(struct spr_session *s, spr_session_exec_fn fn, void *user);

/* Normalizes a configuration (defaults, clamps). INVALID_ARGUMENT for values
 * out of range. */
enum spr_status spr_config_resolve(const struct spr_config *in, struct spr_config *out, struct spr_error *err);

/* Runs prepare + workspace on every node of a finalized graph and computes
 * the layout (and the planned offsets inside the graph's tensors). */
enum spr_status spr_graph_layout(struct spr_graph *g, const struct spr_config *cfg, struct spr_layout *L,
                                 struct spr_error *err);

/* Plan with temporary memory from `alloc`. */
enum spr_status spr_plan_graph(const struct spr_gguf *gguf, spr_build_fn build, const void *model,
                               const struct spr_config *cfg, const struct spr_allocator *alloc,
                               struct spr_plan *out, struct spr_error *err);

/* Session over a caller arena. */
enum spr_status spr_session_bind(const struct spr_gguf *gguf, spr_build_fn build, const void *model,
                                 const struct spr_config *cfg, const struct spr_allocator *alloc, void *arena,
                                 size_t arena_bytes, struct spr_session **out, struct spr_error *err);

/* Sets the run state of the next runs: n_past tokens already cached and
 * n_tokens rows for the SPR_TENSOR_DYN_ROWS tensors (1..their capacity). */
enum spr_status spr_session_set_step(struct spr_session *s, int32_t n_past, int32_t n_tokens);

/* The session's graph (for model layers that need their tensors). */
static inline struct spr_graph *spr_session_graph(struct spr_session *s) { return &s->graph; }

#endif
