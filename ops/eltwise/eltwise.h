/* ops/eltwise/eltwise.h — element-wise add / mul / scale ukernels, and the
 * oracles of the eltwise family (ADD, MUL, SCALE, CONCAT_ROWS, MEAN_ROWS).
 *
 * Binary ukernels: y[i] = a[i] op b[i] for i < n (y may equal a or b). The
 * ADD/MUL ops call them once per chunk when b has a's shape, and once per
 * row with the same b when b is one row {ne0} broadcast over a's rows.
 * Scale ukernels: y[i] = x[i] * s (y may equal x).
 * Lists (order = preference): ops/eltwise/add.inc, mul.inc, scale.inc. */
#ifndef SPR_OPS_ELTWISE_ELTWISE_H
#define SPR_OPS_ELTWISE_ELTWISE_H

#include <stddef.h>
#include <stdint.h>

#include "sparrow/types.h"

typedef void (*spr_f32_vbinary_fn)(size_t n, const float *a, const float *b, float *y);
typedef void (*spr_f32_vscale_fn)(size_t n, const float *x, float s, float *y);

/* One entry of a ukernel list: usable when all `isa` bits are available. */
struct spr_f32_vbinary_ukernel {
  uint32_t isa;
  size_t tile;
  spr_f32_vbinary_fn fn;
  const char *name;
};
struct spr_f32_vscale_ukernel {
  uint32_t isa;
  size_t tile;
  spr_f32_vscale_fn fn;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile) void fn(size_t n, const float *a, const float *b, float *y);
#include "ops/eltwise/add.inc"
#include "ops/eltwise/mul.inc"
#undef SPR_UKERNEL
#define SPR_UKERNEL(isa, fn, tile) void fn(size_t n, const float *x, float s, float *y);
#include "ops/eltwise/scale.inc"
#undef SPR_UKERNEL

/* The first ukernel whose ISA bits are all in `isa` (never NULL). */
const struct spr_f32_vbinary_ukernel *spr_f32_add_select(uint32_t isa);
const struct spr_f32_vbinary_ukernel *spr_f32_mul_select(uint32_t isa);
const struct spr_f32_vscale_ukernel *spr_f32_scale_select(uint32_t isa);

/* Oracles (ops/eltwise/eltwise_ref.c): whole tensors, row-major [rows][d].
 * add/mul: b has `b_rows` rows, 1 (broadcast) or `rows`. */
void spr_f32_add_ref(size_t d, size_t rows, const float *a, const float *b, size_t b_rows, float *y);
void spr_f32_mul_ref(size_t d, size_t rows, const float *a, const float *b, size_t b_rows, float *y);
void spr_f32_scale_ref(size_t n, const float *x, float s, float *y);
/* y[rows_a + rows_b][d] = the rows of a, then the rows of b */
void spr_f32_concat_rows_ref(size_t d, size_t rows_a, const float *a, size_t rows_b, const float *b, float *y);
/* y[d] = mean over the rows of x[rows][d] (double accumulation) */
void spr_f32_mean_rows_ref(size_t d, size_t rows, const float *x, float *y);

#endif
