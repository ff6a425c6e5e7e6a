/* ops/coreffn/qrows_dotprod.c — row-gathered Q4_0 / Q8_0 GEMV with NEON
 * dotprod (ARMv8.2-A SDOT: 4 int8 products per int32 lane), written with
 * SIMDe: qrows_neon_impl.h with the block sums by two SDOTs instead of
 * VMULL/VMLAL/VPADAL: the same exact int32 block sums and the same f32 steps,
 * so the same bits as qrows_neon.c. */
#if !defined(__ARM_FEATURE_DOTPROD) && !SPR_NEON_EMULATED
#error "this file needs -march=armv8.2-a+dotprod (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

#define QROWS_DOT16 simde_vdotq_s32
#define QROWS_Q4_0 spr_q4_0_qrows_ukernel__dotprod
#define QROWS_Q8_0 spr_q8_0_qrows_ukernel__dotprod
#include "ops/coreffn/qrows_neon_impl.h"
