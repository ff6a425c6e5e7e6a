/* ops/layout/layout.h — data-movement ops on NHWC maps: SPR_OP_PAD2D.
 *
 * PAD2D copies the top-left min(H1,H2) x min(W1,W2) pixels of an f32 map
 * src {C, W1, H1} into dst {C, W2, H2} and zero-fills the rest: with
 * H2 >= H1 and W2 >= W1 it zero-pads bottom/right (BiFormer's BRA auto-pad,
 * NATTEN 0.14's padding of maps smaller than kernel * dilation), with
 * H2 <= H1 and W2 <= W1 it crops back. No arithmetic: plain copies, so the
 * result is bit-exact for any thread count (tasks are output rows). */
#ifndef SPR_OPS_LAYOUT_LAYOUT_H
#define SPR_OPS_LAYOUT_LAYOUT_H

#include <stddef.h>

/* Oracle: x [h1][w1][c] -> y [h2][w2][c]. */
void spr_f32_pad2d_ref(const float *x, size_t c, size_t w1, size_t h1, float *y, size_t w2, size_t h2);

#endif
