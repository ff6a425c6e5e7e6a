/* ops/gemm/qgemm_dotprod.c — NEON dotprod quantized GEMM ukernels
 * (ARMv8.2-A+dotprod: SDOT, 4 int8 products per int32 lane; SIMDe). */
#if !defined(__ARM_FEATURE_DOTPROD) && !SPR_NEON_EMULATED
#error "this file needs -march=armv8.2-a+dotprod (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

#define QDOT(acc, a, b) simde_vdotq_s32((acc), (a), (b))
#define QNAME(t) spr_##t##_gemm_ukernel_2x2__dotprod
#include "ops/gemm/qgemm_neon_impl.h"

#define QDOT4(acc, w, x) simde_vdotq_s32((acc), (w), (x))
#define QPGEMM spr_qx_0_pgemm_ukernel_4x8__dotprod
#include "ops/gemm/qgemm_packed_neon_impl.h"
