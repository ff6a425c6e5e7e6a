/* ops/bra/f64_bra_colsum_scalar.c — region-mean column sums, portable C (the
 * oracle's order: rows outer, one double sum per channel). */
#include "ops/bra/bra.h"

void spr_f64_bra_colsum_ukernel_1__scalar(double *acc, const float *const *rows, size_t n_rows, size_t n) {
  for (size_t t = 0; t < n_rows; t++)
    for (size_t i = 0; i < n; i++) acc[i] += (double)rows[t][i];
}
