/* ops/attention/f32_attention_scalar.c — fused attention ukernel, portable C:
 * 4 lanes, 4 x 4 score and 4 x 4 P.V register tiles, libm exp2f. */
#define AV_RG 4
#define AV_UKERNEL spr_f32_attention_ukernel_4__scalar
#define AV_UKERNEL_F16 spr_f16_attention_rows_ukernel_1__scalar

#include "ops/attention/attention_vec_scalar.h"

/* the tile code, written against the shims */
#include "ops/attention/attention_impl.h"
