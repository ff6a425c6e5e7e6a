/* ops/norm/norm.h — LayerNorm and RMSNorm: ukernels (one row each) and oracles.
 *
 * A ukernel normalizes one row x[0..n) into y[0..n) (n >= 1; y may equal x):
 *   layernorm  y = (x - mean) / sqrt(var + eps) * gamma + beta
 *              mean and the biased variance over the row (PyTorch LayerNorm),
 *              computed in two passes (mean, then centered sum of squares);
 *              beta may be NULL (no shift).
 *   rmsnorm    y = x / sqrt(mean(x^2) + eps) * gamma  (llama.cpp)
 * gamma and beta have n elements. The ukernel lists (order = preference) are
 * ops/norm/layernorm.inc and ops/norm/rmsnorm.inc; the oracles
 * (double accumulation, never dispatched) have the same signatures. */
#ifndef SPR_OPS_NORM_NORM_H
#define SPR_OPS_NORM_NORM_H

#include <stddef.h>
#include <stdint.h>

#include "sparrow/types.h"

typedef void (*spr_f32_layernorm_fn)(size_t n, const float *x, const float *gamma, const float *beta, float eps,
                                     float *y);
typedef void (*spr_f32_rmsnorm_fn)(size_t n, const float *x, const float *gamma, float eps, float *y);

/* One entry of a ukernel list: usable when all `isa` bits are available. */
struct spr_f32_layernorm_ukernel {
  uint32_t isa;
  size_t tile;
  spr_f32_layernorm_fn fn;
  const char *name;
};
struct spr_f32_rmsnorm_ukernel {
  uint32_t isa;
  size_t tile;
  spr_f32_rmsnorm_fn fn;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) \
  void fn(size_t n, const float *x, const float *gamma, const float *beta, float eps, float *y);
#include "ops/norm/layernorm.inc"
#undef SPR_UKERNEL
#define SPR_UKERNEL(isa, fn, tile) void fn(size_t n, const float *x, const float *gamma, float eps, float *y);
#include "ops/norm/rmsnorm.inc"
#undef SPR_UKERNEL

/* Oracles (ops/norm/layernorm_ref.c, ops/norm/rmsnorm_ref.c). */
void spr_f32_layernorm_ref(size_t n, const float *x, const float *gamma, const float *beta, float eps, float *y);
void spr_f32_rmsnorm_ref(size_t n, const float *x, const float *gamma, float eps, float *y);

/* The first ukernel of the list whose ISA bits are all in `isa` (never NULL:
 * the scalar entry needs none). */
const struct spr_f32_layernorm_ukernel *spr_f32_layernorm_select(uint32_t isa);
const struct spr_f32_rmsnorm_ukernel *spr_f32_rmsnorm_select(uint32_t isa);

#endif
