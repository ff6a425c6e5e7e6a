/* ops/attention/attention_vec_scalar.h — the vector shims (av_*) of the fused attention and
 * bi-level routing attention ukernels, portable C: one "vector" = one float; the shared
 * tile code (attention_impl.h, ops/bra/bra_impl.h) is written against them. Include once,
 * from one ukernel file. */
#ifndef SPR_OPS_ATTENTION_ATTENTION_VEC_SCALAR_H
#define SPR_OPS_ATTENTION_ATTENTION_VEC_SCALAR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/common/fp16.h"

typedef float av_v;
#define AV_VL 1
#define AV_MV 4
#define AV_NKR 4
#define AV_CR 4
#define AV_ROW_MAX_LANES 1
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
static inline av_v av_load_h(const uint16_t *p) {
  return spr_fp16_to_f32(*p);
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
static inline av_v av_mask_keys(av_v s, float j, av_v lim) {
  return j > lim ? -INFINITY : s;
}

#endif
