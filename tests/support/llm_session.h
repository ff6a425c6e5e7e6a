/* tests/support/llm_session.h — a model file and one planned session over a
 * test-allocated arena, for the LLM tests that open many of them (any
 * failure ends the test with the library's message). */
#ifndef SPR_TESTS_LLM_SESSION_H
#define SPR_TESTS_LLM_SESSION_H

#include "sparrow/sparrow.h"

struct spr_test_llm {
  struct spr_model *model;
  struct spr_session *session;
  void *arena;
  struct spr_plan plan;
};

/* Plans t->model with cfg, allocates the arena and creates the session. */
void spr_test_llm_open(struct spr_test_llm *t, const struct spr_config *cfg);
/* Destroys the session and frees the arena (the model stays). */
void spr_test_llm_close(struct spr_test_llm *t);
/* The model at path (spr_model_load_file). */
struct spr_model *spr_test_model_load(const char *path);

#endif
