/* ops/attention/f16_rows_scalar.c — f16 -> f32 rows, portable C. */
#include "ops/attention/attention.h"
#include "ops/common/fp16.h"

void spr_f16_to_f32_rows_ukernel_1__scalar(size_t rows, size_t n, const uint16_t *x, size_t x_stride, float *y,
                                           size_t y_stride) {
  for (size_t r = 0; r < rows; r++, x += x_stride, y += y_stride)
    for (size_t c = 0; c < n; c++) y[c] = spr_fp16_to_f32(x[c]);
}
