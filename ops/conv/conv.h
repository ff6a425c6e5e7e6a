/* ops/conv/conv.h — conv2d / depthwise conv2d internals (NHWC, f32 activations).
 *
 * CONV2D runs on the GEMM driver (ops/gemm/gemm.h): output pixel p is GEMM
 * row p, its im2col row [KH][KW][Cin] matches a weight row of the
 * [Cout][KH][KW][Cin] kernel, so W is used in place and X rows are gathered
 * straight from the image into the driver's packed panels.
 *
 * DWCONV2D: one ukernel call computes one output row, vectorized along C. */
#ifndef SPR_OPS_CONV_CONV_H
#define SPR_OPS_CONV_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"

/* One output row of a depthwise convolution.
 *   in     input row iy0 of the image, [w_in][c]; rows iy0+1.. follow at
 *          in_stride floats; only kernel rows [ky0, ky1) are inside the image
 *          (in points at the row for ky0)
 *   wt     [kh][kw][c] kernel (the full kernel: rows ky0..ky1-1 are used)
 *   bias   [c] or NULL
 *   out    [ow][c]
 * out[ox][ch] = bias[ch] + sum over ky in [ky0,ky1), kx with 0 <= ix < w_in
 * (ix = ox*sw - pw + kx), in order ky then kx, of in[ky][ix][ch] * wt[ky][kx][ch]. */
typedef void (*spr_f32_dwconv_ukernel_fn)(size_t c, size_t ow, size_t kw, size_t sw, size_t pw, size_t w_in, size_t ky0,
                                          size_t ky1, const float *in, size_t in_stride, const float *wt,
                                          const float *bias, float *out);

struct spr_dwconv_ukernel {
  uint32_t isa;
  uint16_t tile; /* channels per vector */
  spr_f32_dwconv_ukernel_fn fn;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile)                                                                                    \
  void fn(size_t c, size_t ow, size_t kw, size_t sw, size_t pw, size_t w_in, size_t ky0, size_t ky1, const float *in, \
          size_t in_stride, const float *wt, const float *bias, float *out);
#include "ops/conv/f32_dwconv.inc"
#undef SPR_UKERNEL

extern const struct spr_dwconv_ukernel spr_dwconv_ukernels[];
extern const size_t spr_dwconv_ukernels_count;

/* First entry whose ISA bits are all in isa (scalar is last). */
const struct spr_dwconv_ukernel *spr_dwconv_select(uint32_t isa);

/* Oracles: obvious loops, double accumulation, zero padding.
 * x [h][w][cin]; w [cout][kh][kw][cin] (f32 or f16); bias [cout] or NULL;
 * dst [oh][ow][cout] with oh = (h + 2ph - kh)/sh + 1, ow likewise. */
void spr_f32_conv2d_ref(const float *x, size_t h, size_t w, size_t cin, const void *wt, enum spr_dtype wt_type,
                        const float *bias, size_t cout, const struct spr_conv_params *p, float *dst);
/* x [h][w][c]; wt [kh][kw][c]; bias [c] or NULL; dst [oh][ow][c]. */
void spr_f32_dwconv2d_ref(const float *x, size_t h, size_t w, size_t c, const float *wt, const float *bias,
                          const struct spr_conv_params *p, float *dst);

#endif
