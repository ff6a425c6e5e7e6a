/* ops/act/act.c — placeholder: scalar activations until the act family lands. */
#include "ops/act/act.h"

#include <math.h>

#include "ops/op.h"

float spr_f32_gelu_ref(float x) { return (float)(0.5 * (double)x * (1.0 + erf((double)x / sqrt(2.0)))); }
float spr_f32_silu_ref(float x) { return (float)((double)x / (1.0 + exp(-(double)x))); }

static void gelu_scalar(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = spr_f32_gelu_ref(x[i]);
}
static void silu_scalar(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = spr_f32_silu_ref(x[i]);
}
static void relu_scalar(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

spr_f32_vunary_fn spr_f32_act_select(enum spr_act act, uint32_t isa, const char **name) {
  (void)isa;
  const char *nm = "none";
  spr_f32_vunary_fn fn = NULL;
  switch (act) {
    case SPR_ACT_NONE: break;
    case SPR_ACT_GELU: fn = gelu_scalar; nm = "gelu_scalar"; break;
    case SPR_ACT_SILU: fn = silu_scalar; nm = "silu_scalar"; break;
    case SPR_ACT_RELU: fn = relu_scalar; nm = "relu_scalar"; break;
  }
  if (name != NULL) *name = nm;
  return fn;
}

static void run_nothing(const struct spr_exec *x, const struct spr_node *n) { (void)x; (void)n; }
const struct spr_op_def spr_op_gelu_def = {.name = "gelu", .run = run_nothing};
const struct spr_op_def spr_op_silu_def = {.name = "silu", .run = run_nothing};
