/* ops/bra/f32_bra_scalar.c — bi-level routing attention ukernel, portable C: 4 queries, 4 x 4
 * score and 4 x 4 P.V register tiles, libm exp2f. */
#define AV_UKERNEL spr_f32_bra_ukernel_4__scalar

#include "ops/attention/attention_vec_scalar.h"

#include "ops/bra/bra_impl.h"
