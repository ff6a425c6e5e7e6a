/* ops/attention/f32_attention_avx512.c — fused attention ukernel, AVX-512:
 * 32 lanes (2 zmm of queries), 2 x 8 score and 2 x 8 P.V register tiles. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#define AV_RG 4
#define AV_UKERNEL spr_f32_attention_ukernel_32__avx512
#define AV_UKERNEL_F16 spr_f16_attention_rows_ukernel_8__avx512

#include "ops/attention/attention_vec_avx512.h"

/* the tile code, written against the shims */
#include "ops/attention/attention_impl.h"
