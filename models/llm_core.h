/* models/llm_core.h — the core-neuron FFN's part of spr_llm_eval (llm_core.c). */
#ifndef SPR_MODELS_LLM_CORE_H
#define SPR_MODELS_LLM_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/session.h"

struct spr_core_ctl;

/* The session's control tensor, or NULL when it has no sparse FFN. */
struct spr_core_ctl *spr_llm_core_ctl(struct spr_session *s);

/* spr_llm_eval for a session with a sparse FFN (arguments already checked). */
enum spr_status spr_llm_core_eval(struct spr_session *s, struct spr_core_ctl *ctl, const int32_t *tokens, size_t n);

#endif
