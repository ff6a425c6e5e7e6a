/* ops/softmax/softmax.h — row softmax: ukernels (one row each) and oracle.
 *
 * A ukernel computes y = softmax(x * scale) over one row of n >= 1 elements
 * (y may equal x): m = max(x * scale), e = exp(x * scale - m), y = e / sum(e).
 * Three passes (max; exp, store and sum; scale by 1/sum). exp comes from
 * ops/common/vmath_<isa>.h: exp of anything below -87 is exactly 0, so -Inf
 * inputs (masked positions) give 0; a row whose entries are all -Inf gives NaN,
 * like the definition. The sum of exp is kept in 16-64 float partial sums by
 * the vector ukernels (rows sum to 1 within ~1e-6 up to n ~ 16k) and
 * compensated (Kahan) by the scalar one. List (order = preference):
 * ops/softmax/softmax.inc. */
#ifndef SPR_OPS_SOFTMAX_SOFTMAX_H
#define SPR_OPS_SOFTMAX_SOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#include "sparrow/types.h"

typedef void (*spr_f32_softmax_fn)(size_t n, const float *x, float scale, float *y);

/* One entry of the ukernel list: usable when all `isa` bits are available. */
struct spr_f32_softmax_ukernel {
  uint32_t isa;
  size_t tile;
  spr_f32_softmax_fn fn;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) void fn(size_t n, const float *x, float scale, float *y);
#include "ops/softmax/softmax.inc"
#undef SPR_UKERNEL

/* Oracle (ops/softmax/softmax_ref.c): double precision inside. */
void spr_f32_softmax_ref(size_t n, const float *x, float scale, float *y);

/* The first ukernel whose ISA bits are all in `isa` (never NULL). */
const struct spr_f32_softmax_ukernel *spr_f32_softmax_select(uint32_t isa);

#endif
