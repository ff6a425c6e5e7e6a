/* ops/attention/f32_attention_avx2.c — fused attention ukernel, AVX2 + FMA:
 * 16 lanes (2 ymm of queries), 2 x 4 score and 2 x 4 P.V register tiles. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#define AV_RG 4
#define AV_UKERNEL spr_f32_attention_ukernel_16__avx2
#define AV_UKERNEL_F16 spr_f16_attention_rows_ukernel_4__avx2

#include "ops/attention/attention_vec_avx2.h"

/* the tile code, written against the shims */
#include "ops/attention/attention_impl.h"
