/* ops/bra/f64_bra_dot_scalar.c — routing dot products, portable C: pair by
 * pair through spr_bra_dot_acc (the oracle's code). */
#include "ops/bra/bra.h"

void spr_f64_bra_dot_ukernel_8__scalar(double *acc, const float *const *a, size_t na, const float *const *b, size_t nr,
                                       size_t c0, size_t n) {
  for (size_t i = 0; i < na; i++)
    for (size_t r = 0; r < nr; r++) spr_bra_dot_acc(acc + 8 * (i * nr + r), a[i], b[r], c0, n);
}
