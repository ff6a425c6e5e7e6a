/* ops/attention/f32_attention_neon.c — fused attention ukernel, NEON (SIMDe
 * names; A32 + VFPv4 compatible): 16 lanes (4 q-registers of queries),
 * 4 x 4 score and 4 x 4 P.V register tiles. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#define AV_RG 4
#define AV_UKERNEL spr_f32_attention_ukernel_16__neon
#define AV_UKERNEL_F16 spr_f16_attention_rows_ukernel_2__neon

#include "ops/attention/attention_vec_neon.h"

/* the tile code, written against the shims */
#include "ops/attention/attention_impl.h"
