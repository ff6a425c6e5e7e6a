/* ops/common/fp16.h — IEEE binary16 <-> binary32 without hardware support.
 * Bit-exact with F16C / ggml's conversions (round to nearest even). */
#ifndef SPR_OPS_COMMON_FP16_H
#define SPR_OPS_COMMON_FP16_H

#include <stdint.h>
#include <string.h>

static inline float spr_f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline uint32_t spr_f32_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float spr_fp16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0) {
    /* zero or subnormal: man * 2^-24 */
    const float v = (float)man * spr_f32_from_bits(0x33800000u);
    return sign ? -v : v;
  }
  if (exp == 31) return spr_f32_from_bits(sign | 0x7f800000u | (man << 13));
  return spr_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

/* The little-endian fp16 at p (any alignment, e.g. a quant block's scale) as f32. */
static inline float spr_fp16_load(const void *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return spr_fp16_to_f32(h);
}

static inline uint16_t spr_fp16_from_f32(float f) {
  const uint32_t x = spr_f32_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0)); /* inf/nan */
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
  if (ax < 0x38800000u) {
    /* result is subnormal or zero: add 0.5 (as float) so the FPU rounds for us */
    const float r = spr_f32_from_bits(ax) + 0.5f;
    return (uint16_t)(sign | (spr_f32_to_bits(r) - 0x3f000000u));
  }
  const uint32_t odd = (ax >> 13) & 1u;
  const uint32_t v = ax + 0xc8000fffu + odd; /* rebias exponent (-112<<23) and round to nearest even */
  return (uint16_t)(sign | (v >> 13));
}

#endif
