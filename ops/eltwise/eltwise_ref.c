/* ops/eltwise/eltwise_ref.c — oracles of the eltwise family: the definitions. */
#include <string.h>

#include "ops/eltwise/eltwise.h"

void spr_f32_add_ref(size_t d, size_t rows, const float *a, const float *b, size_t b_rows, float *y) {
  for (size_t r = 0; r < rows; r++) {
    const float *br = b + (b_rows == 1 ? 0 : r * d);
    for (size_t i = 0; i < d; i++) y[r * d + i] = (float)((double)a[r * d + i] + (double)br[i]);
  }
}

void spr_f32_mul_ref(size_t d, size_t rows, const float *a, const float *b, size_t b_rows, float *y) {
  for (size_t r = 0; r < rows; r++) {
    const float *br = b + (b_rows == 1 ? 0 : r * d);
    for (size_t i = 0; i < d; i++) y[r * d + i] = (float)((double)a[r * d + i] * (double)br[i]);
  }
}

void spr_f32_scale_ref(size_t n, const float *x, float s, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = (float)((double)x[i] * (double)s);
}

void spr_f32_concat_rows_ref(size_t d, size_t rows_a, const float *a, size_t rows_b, const float *b, float *y) {
  for (size_t r = 0; r < rows_a; r++)
    for (size_t i = 0; i < d; i++) y[r * d + i] = a[r * d + i];
  for (size_t r = 0; r < rows_b; r++)
    for (size_t i = 0; i < d; i++) y[(rows_a + r) * d + i] = b[r * d + i];
}

void spr_f32_mean_rows_ref(size_t d, size_t rows, const float *x, float *y) {
  for (size_t i = 0; i < d; i++) {
    double s = 0.0;
    for (size_t r = 0; r < rows; r++) s += x[r * d + i];
    y[i] = (float)(s / (double)rows);
  }
}
