/* ops/bra/f64_bra_colsum_scalar.c — region-mean column sums, portable C (the
 * oracle's order: one double sum per channel from 0, rows in order). */
#include "ops/bra/bra.h"

void spr_f64_bra_colsum_ukernel_1__scalar(double *acc, const float *const *rows, size_t n_rows, size_t n, int first,
                                          float *mean, double m) {
  for (size_t i = 0; i < n; i++) {
    double s = first ? 0.0 : acc[i];
    for (size_t t = 0; t < n_rows; t++) s += (double)rows[t][i];
    acc[i] = s;
    if (mean != NULL) mean[i] = (float)(s / m);
  }
}
