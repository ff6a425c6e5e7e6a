/* ops/natten/f32_natten_scalar.c — neighborhood attention ukernel, portable
 * C: one query column per tile (the band is the window), 2 rows x 4 offsets
 * score and 2 rows x 4 columns P.V register tiles, libm exp2f. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef float av_v;
#define NA_VL 1
#define NA_QR 2
#define NA_NO 4
#define NA_PNO 4
#define NA_UKERNEL spr_f32_na_ukernel_1__scalar
#if defined(__GNUC__)
#define AV_INLINE static inline __attribute__((always_inline))
#else
#define AV_INLINE static inline
#endif

static inline av_v av_zero(void) {
  return 0.0f;
}
static inline av_v av_set1(float x) {
  return x;
}
static inline av_v av_load(const float *p) {
  return *p;
}
static inline void av_store(float *p, av_v v) {
  *p = v;
}
static inline av_v av_fma(av_v a, av_v b, av_v c) {
  return a * b + c;
}
static inline av_v av_add(av_v a, av_v b) {
  return a + b;
}
static inline av_v av_mul(av_v a, av_v b) {
  return a * b;
}
static inline av_v av_sub(av_v a, av_v b) {
  return a - b;
}
static inline av_v av_max(av_v a, av_v b) {
  return a > b ? a : b;
}
#define NA_HAVE_PERMUTE 0
typedef int av_idx;
static inline av_idx av_idx_load(const int32_t *p) {
  (void)p;
  return 0;
}
static inline av_v av_permute(av_v v, av_idx i) {
  (void)i;
  return v;
}
static inline av_v av_keep(av_v v) {
  return v;
}
static inline av_v av_exp2(av_v x) {
  return exp2f(x);
}
static inline av_v av_mask_range(av_v s, float o, av_v lo, av_v hi) {
  return (o < lo || o >= hi) ? -INFINITY : s;
}
static inline void av_transpose_load(const float *const *rows, size_t off, av_v out[1]) {
  out[0] = rows[0][off];
}

#include "ops/natten/natten_impl.h"
