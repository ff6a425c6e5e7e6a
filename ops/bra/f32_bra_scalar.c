/* ops/bra/f32_bra_scalar.c — bi-level routing attention ukernel, portable C: 4 queries, 4 x 4
 * score and 4 x 4 P.V register tiles, libm exp2f. */
#include <math.h>

typedef float av_v;
#define AV_VL 1
#define AV_MV 4
#define AV_NKR 4
#define AV_CR 4
#define AV_ROW_MAX_LANES 1
#define AV_UKERNEL spr_f32_bra_ukernel_4__scalar
#if defined(__GNUC__)
#define AV_INLINE static inline __attribute__((always_inline))
#define AV_NOINLINE static __attribute__((noinline))
#else
#define AV_INLINE static inline
#define AV_NOINLINE static
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
static inline av_v av_bcast(const float *p) {
  return *p;
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
static inline av_v av_exp2(av_v x) {
  return exp2f(x);
}
static inline float av_hsum(av_v x) {
  return x;
}
static inline void av_hsum4(av_v a, av_v b, av_v c, av_v d, float *out) {
  out[0] = a;
  out[1] = b;
  out[2] = c;
  out[3] = d;
}

#include "ops/bra/bra_impl.h"
