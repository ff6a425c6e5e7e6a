/* ops/act/act.h — element-wise activations, also used as fused epilogues
 * (GEMM applies its activation to each finished output tile through these). */
#ifndef SPR_OPS_ACT_H
#define SPR_OPS_ACT_H

#include <stddef.h>
#include <stdint.h>

#include "ops/params.h"

/* y[i] = act(x[i]) for i < n; y may equal x (in place). */
typedef void (*spr_f32_vunary_fn)(size_t n, const float *x, float *y);

/* Best ukernel for `act` among those whose ISA bits are all in `isa`;
 * NULL for SPR_ACT_NONE. *name (may be NULL) receives the ukernel name. */
spr_f32_vunary_fn spr_f32_act_select(enum spr_act act, uint32_t isa, const char **name);

/* Oracles (double precision inside). */
float spr_f32_gelu_ref(float x); /* 0.5 x (1 + erf(x / sqrt 2)) */
float spr_f32_silu_ref(float x); /* x / (1 + exp(-x)) */

#endif
