/* ops/act/act_ukernels.h — the activation ukernels behind act.h.
 *
 * Each ukernel is a spr_f32_vunary_fn: y[i] = act(x[i]) for i < n (y may
 * equal x). Lists (order = preference): ops/act/gelu.inc, silu.inc, relu.inc.
 * Vector versions use the shared approximations of ops/common/vmath_*.h
 * (|error| vs the double oracle <= ~1.5e-6 for GELU and SiLU on [-10, 10]);
 * the scalar versions are plain float code over libm's erff/expf. */
#ifndef SPR_OPS_ACT_ACT_UKERNELS_H
#define SPR_OPS_ACT_ACT_UKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ops/act/act.h"
#include "sparrow/types.h"

/* One entry of a ukernel list: usable when all `isa` bits are available. */
struct spr_f32_vunary_ukernel {
  uint32_t isa;
  size_t tile;
  spr_f32_vunary_fn fn;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) void fn(size_t n, const float *x, float *y);
#include "ops/act/gelu.inc"
#include "ops/act/relu.inc"
#include "ops/act/silu.inc"
#undef SPR_UKERNEL

/* ReLU oracle (GELU and SiLU oracles are in act.h). */
float spr_f32_relu_ref(float x);

/* The first ukernel for `act` whose ISA bits are all in `isa`; NULL for
 * SPR_ACT_NONE or an unknown act. */
const struct spr_f32_vunary_ukernel *spr_f32_act_ukernel(enum spr_act act, uint32_t isa);

#endif
