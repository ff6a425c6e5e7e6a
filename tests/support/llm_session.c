/* tests/support/llm_session.c — see llm_session.h. */
#include "llm_session.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_util.h"

void spr_test_llm_open(struct spr_test_llm *t, const struct spr_config *cfg) {
  struct spr_error err;
  if (spr_plan(t->model, cfg, &t->plan, &err) != SPR_STATUS_OK) fail_msg("plan: %s", err.msg);
  t->arena = spr_test_aligned_alloc(t->plan.arena_bytes);
  if (spr_session_create(t->model, cfg, t->arena, t->plan.arena_bytes, &t->session, &err) != SPR_STATUS_OK)
    fail_msg("session: %s", err.msg);
}

void spr_test_llm_close(struct spr_test_llm *t) {
  spr_session_destroy(t->session);
  free(t->arena);
  t->session = NULL;
  t->arena = NULL;
}

struct spr_model *spr_test_model_load(const char *path) {
  struct spr_model *m = NULL;
  struct spr_error err;
  if (spr_model_load_file(path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("%s: %s", path, err.msg);
  return m;
}
