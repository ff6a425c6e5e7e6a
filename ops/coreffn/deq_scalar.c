/* ops/coreffn/deq_scalar.c — the portable strip dequantizers: ops/quant's. */
#include "ops/coreffn/coreffn.h"
#include "ops/quant/quant.h"

void spr_q4_0_deq_ukernel__scalar(const void *x, float *y, size_t n) {
  spr_dequantize_row_q4_0(x, y, (int64_t)n);
}

void spr_q8_0_deq_ukernel__scalar(const void *x, float *y, size_t n) {
  spr_dequantize_row_q8_0(x, y, (int64_t)n);
}
