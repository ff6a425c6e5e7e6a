/* runtime/unicode.h — the few Unicode facts the tokenizers need.
 *
 * Everything here follows llama.cpp's src/unicode.cpp so that tokenization is
 * bit-exact with it:
 *   - spr_utf8_lead_len: length of a UTF-8 sequence from its lead byte by the
 *     high nibble only (0x0-0xB -> 1, 0xC-0xD -> 2, 0xE -> 3, 0xF -> 4); no
 *     validation. The SPM tokenizer and BPE merging split symbols with it.
 *   - spr_utf8_decode: decodes one code point. Continuation bytes are checked
 *     but overlong forms and surrogates are accepted (as llama.cpp). An invalid
 *     sequence yields U+FFFD and consumes ONE byte. A 4-byte form above
 *     U+10FFFF is also treated as invalid here (llama.cpp throws on it later).
 *   - spr_unicode_class: letter (\p{L}) / number (\p{N}) / whitespace
 *     (White_Space) / other, from the generated table in unicode_tables.c.
 *   - GPT-2 byte-level mapping (bytes_to_unicode): the 188 printable bytes
 *     map to themselves, the other 68 to U+0100.. in byte order.
 * No allocation, no global state beyond const tables. */
#ifndef SPR_RUNTIME_UNICODE_H
#define SPR_RUNTIME_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum spr_unicode_class {
  SPR_UCLASS_OTHER = 0,
  SPR_UCLASS_LETTER = 1, /* general category L* */
  SPR_UCLASS_NUMBER = 2, /* general category N* */
  SPR_UCLASS_SPACE = 3,  /* White_Space property */
};

#define SPR_UNICODE_REPLACEMENT 0xFFFDu
#define SPR_UNICODE_MAX 0x10FFFFu

/* Generated tables (runtime/unicode_tables.c). */
extern const uint8_t spr_unicode_ascii_class[32];
extern const uint32_t spr_unicode_class_runs[];
extern const uint32_t spr_unicode_class_n_runs;

/* Class of a code point; OTHER for anything above U+10FFFF. */
enum spr_unicode_class spr_unicode_class(uint32_t cp);

static inline size_t spr_utf8_lead_len(uint8_t lead) {
  /* 1 for 0x00-0xBF, 2 for 0xC0-0xDF, 3 for 0xE0-0xEF, 4 for 0xF0-0xFF */
  return lead < 0xC0u ? 1u : lead < 0xE0u ? 2u : lead < 0xF0u ? 3u : 4u;
}

/* Decodes the code point at s[0..n) (n >= 1); *adv receives the bytes used
 * (1..4). Invalid input gives SPR_UNICODE_REPLACEMENT with *adv = 1. */
uint32_t spr_utf8_decode(const uint8_t *s, size_t n, size_t *adv);

/* Encodes cp (<= U+10FFFF) into out; returns 1..4 (0 for cp > U+10FFFF). */
size_t spr_utf8_encode(uint32_t cp, uint8_t out[4]);

/* GPT-2 bytes_to_unicode: the code point byte b is written as (< U+0144). */
static inline uint32_t spr_gpt2_byte_to_cp(uint8_t b) {
  if ((b >= 0x21u && b <= 0x7Eu) || (b >= 0xA1u && b <= 0xACu) || b >= 0xAEu) return b;
  /* the 68 others in order: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD (1) */
  if (b <= 0x20u) return 0x100u + b;
  if (b <= 0xA0u) return 0x100u + 33u + (uint32_t)(b - 0x7Fu);
  return 0x100u + 67u; /* 0xAD */
}

/* Inverse of spr_gpt2_byte_to_cp; -1 when cp is not the image of a byte. */
static inline int spr_gpt2_cp_to_byte(uint32_t cp) {
  if ((cp >= 0x21u && cp <= 0x7Eu) || (cp >= 0xA1u && cp <= 0xACu) || (cp >= 0xAEu && cp <= 0xFFu)) return (int)cp;
  if (cp < 0x100u || cp > 0x100u + 67u) return -1;
  const uint32_t n = cp - 0x100u;
  if (n < 33u) return (int)n;
  if (n < 67u) return (int)(0x7Fu + (n - 33u));
  return 0xAD;
}

#endif
