/* ops/attention/f16_rows_neon.c — f16 -> f32 rows, NEON (SIMDe names):
 * 4 elements per step (vcvt_f32_f16), scalar tail. */
#if !defined(__ARM_NEON) && !SPR_NEON_EMULATED
#error "this file needs NEON (or SPR_NEON_EMULATED)"
#endif

#include <simde/arm/neon.h>

#include "ops/attention/attention.h"
#include "ops/common/fp16.h"
#include "ops/common/neon_compat.h"

void spr_f16_to_f32_rows_ukernel_4__neon(size_t rows, size_t n, const uint16_t *x, size_t x_stride, float *y,
                                         size_t y_stride) {
  const size_t nv = n / 4 * 4;
  for (size_t r = 0; r < rows; r++, x += x_stride, y += y_stride) {
    size_t c = 0;
    for (; c < nv; c += 4)
      simde_vst1q_f32(y + c, spr_vcvt_f32_f16_neon(simde_vld1_u16(x + c)));
    for (; c < n; c++) y[c] = spr_fp16_to_f32(x[c]);
  }
}
