/* ops/conv/conv.h — conv2d / depthwise conv2d internals (NHWC, f32 activations).
 *
 * CONV2D runs on the GEMM driver (ops/gemm/gemm.h): output pixel p is GEMM
 * row p, its im2col row [KH][KW][Cin] matches a weight row of the
 * [Cout][KH][KW][Cin] kernel, so W is used in place and X rows are gathered
 * straight from the image into the driver's packed panels.
 *
 * DWCONV2D: one ukernel call computes one output row, vectorized along C.
 * Rows are read in place, except when C is a multiple of 256: then NHWC
 * pixels sit 1 KiB-multiples apart, a KxK window overflows the L1 sets it
 * maps to, and each thread copies the rows it needs into a ring of rows with
 * pixel stride cs = C + 16 (and the kernel into [KH][KW][cs]). The ukernels
 * walk channel blocks outer, columns inner, so a block's weights and its
 * window stay in L1; interior columns skip the clipping. */
#ifndef SPR_OPS_CONV_CONV_H
#define SPR_OPS_CONV_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"

/* Largest kernel height DWCONV2D accepts (row pointers live on the stack). */
#define SPR_DWCONV_MAX_KH 31

/* One output row of a depthwise convolution.
 *   rows   kh pointers to input rows [w_in][cs] (pixel stride cs >= c
 *          floats); a row outside the image points at zeros
 *   wpk    [kh][kw][cs] kernel (channel stride cs like the rows)
 *   bias   [c] or NULL
 *   out    [ow][c]
 * out[ox][ch] = bias[ch] + sum over ky, then kx with 0 <= ix < w_in
 * (ix = ox*sw - pw + kx), of rows[ky][ix*cs + ch] * wpk[(ky*kw + kx)*cs + ch]
 * for ch < c. Lanes c..cs-1 may hold anything. */
typedef void (*spr_f32_dwconv_ukernel_fn)(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, size_t pw, size_t w_in,
                                          const float *const *rows, size_t cs, const float *wpk, const float *bias,
                                          float *out);

/* Output columns [*lo, *hi) have every tap inside the row (no clipping). */
static inline void spr_dwconv_interior(size_t ow, size_t kw, size_t sw, size_t pw, size_t w_in, size_t *lo,
                                       size_t *hi) {
  size_t l = (pw + sw - 1) / sw, h = w_in + pw >= kw ? (w_in + pw - kw) / sw + 1 : 0;
  if (h > ow) h = ow;
  if (l > h) l = h;
  *lo = l, *hi = h;
}

/* Taps of output column ox inside the row: kernel columns [*kx0, *kx1),
 * the first at input column *ix0. */
static inline void spr_dwconv_clip(size_t ox, size_t kw, size_t sw, size_t pw, size_t w_in, size_t *kx0, size_t *kx1,
                                   size_t *ix0) {
  const ptrdiff_t start = (ptrdiff_t)(ox * sw) - (ptrdiff_t)pw, lim = (ptrdiff_t)w_in - start;
  const size_t a = start < 0 ? (size_t)-start : 0;
  size_t b = lim <= 0 ? 0 : ((size_t)lim < kw ? (size_t)lim : kw);
  if (b < a) b = a;
  *kx0 = a, *kx1 = b, *ix0 = (size_t)(start + (ptrdiff_t)a);
}

struct spr_dwconv_ukernel {
  uint32_t isa;
  uint16_t tile; /* channels per vector */
  spr_f32_dwconv_ukernel_fn fn;
  const char *name;
};

#define SPR_UKERNEL(isa, fn, tile)                                                                                \
  void fn(size_t c, size_t ow, size_t kh, size_t kw, size_t sw, size_t pw, size_t w_in, const float *const *rows, \
          size_t cs, const float *wpk, const float *bias, float *out);
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
