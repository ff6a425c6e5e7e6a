/* runtime/unicode.c — UTF-8 and code point classes (llama.cpp semantics). */
#include "runtime/unicode.h"

enum spr_unicode_class spr_unicode_class(uint32_t cp) {
  if (cp < 0x80u) return (enum spr_unicode_class)((spr_unicode_ascii_class[cp >> 2] >> ((cp & 3u) * 2u)) & 3u);
  if (cp > SPR_UNICODE_MAX) return SPR_UCLASS_OTHER;
  /* last run whose first code point is <= cp */
  uint32_t lo = 0, hi = spr_unicode_class_n_runs;
  while (hi - lo > 1u) {
    const uint32_t mid = lo + (hi - lo) / 2u;
    if ((spr_unicode_class_runs[mid] >> 2) <= cp) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return (enum spr_unicode_class)(spr_unicode_class_runs[lo] & 3u);
}

static inline int is_cont(uint8_t b) {
  return (b & 0xC0u) == 0x80u;
}

uint32_t spr_utf8_decode(const uint8_t *s, size_t n, size_t *adv) {
  const uint8_t b0 = s[0];
  *adv = 1;
  if (b0 < 0x80u) return b0;
  if (!(b0 & 0x40u)) return SPR_UNICODE_REPLACEMENT; /* stray continuation byte */
  if (!(b0 & 0x20u)) {
    if (n < 2 || !is_cont(s[1])) return SPR_UNICODE_REPLACEMENT;
    *adv = 2;
    return ((uint32_t)(b0 & 0x1Fu) << 6) | (s[1] & 0x3Fu);
  }
  if (!(b0 & 0x10u)) {
    if (n < 3 || !is_cont(s[1]) || !is_cont(s[2])) return SPR_UNICODE_REPLACEMENT;
    *adv = 3;
    return ((uint32_t)(b0 & 0x0Fu) << 12) | ((uint32_t)(s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
  }
  if (!(b0 & 0x08u)) {
    if (n < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3])) return SPR_UNICODE_REPLACEMENT;
    const uint32_t cp = ((uint32_t)(b0 & 0x07u) << 18) | ((uint32_t)(s[1] & 0x3Fu) << 12) |
                        ((uint32_t)(s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    if (cp > SPR_UNICODE_MAX) return SPR_UNICODE_REPLACEMENT;
    *adv = 4;
    return cp;
  }
  return SPR_UNICODE_REPLACEMENT; /* 0xF8-0xFF */
}

size_t spr_utf8_encode(uint32_t cp, uint8_t out[4]) {
  if (cp < 0x80u) {
    out[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800u) {
    out[0] = (uint8_t)(0xC0u | (cp >> 6));
    out[1] = (uint8_t)(0x80u | (cp & 0x3Fu));
    return 2;
  }
  if (cp < 0x10000u) {
    out[0] = (uint8_t)(0xE0u | (cp >> 12));
    out[1] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
    out[2] = (uint8_t)(0x80u | (cp & 0x3Fu));
    return 3;
  }
  if (cp <= SPR_UNICODE_MAX) {
    out[0] = (uint8_t)(0xF0u | (cp >> 18));
    out[1] = (uint8_t)(0x80u | ((cp >> 12) & 0x3Fu));
    out[2] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
    out[3] = (uint8_t)(0x80u | (cp & 0x3Fu));
    return 4;
  }
  return 0;
}
