/* ops/bra/f64_bra_dot_scalar.c — routing dot products, portable C: region by
 * region through spr_bra_dot_acc (the oracle's code). */
#include "ops/bra/bra.h"

void spr_f64_bra_dot_ukernel_8__scalar(double *acc, const float *a, const float *const *b, size_t nr, size_t c0,
                                       size_t n) {
  for (size_t r = 0; r < nr; r++) spr_bra_dot_acc(acc + 8 * r, a, b[r], c0, n);
}
