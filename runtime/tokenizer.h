/* runtime/tokenizer.h — LLM tokenizers from GGUF metadata, allocation-free.
 *
 * Two tokenizers, chosen by `tokenizer.ggml.model`, each bit-exact with
 * llama.cpp (src/llama-vocab.cpp, src/unicode.cpp) on its conformance files:
 *   "llama"  SentencePiece-style BPE over UTF-8 characters (SPM): spaces are
 *            escaped to U+2581, one U+2581 is prepended when add_space_prefix
 *            (default true), then the adjacent pair whose concatenation is a
 *            vocab token with the highest score is merged (ties: leftmost)
 *            until none is left; symbols that are not tokens fall back to the
 *            byte tokens <0xXX> (or a single-byte token, else unk).
 *   "gpt2"   byte-level BPE: the text is split with the GPT-2 pre-tokenizer
 *            regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
 *            ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+), every byte of a word is written
 *            as its GPT-2 bytes_to_unicode character, and merges are applied by
 *            rank (lowest first, ties leftmost). `tokenizer.ggml.pre` must name
 *            the GPT-2 regex: "gpt-2" (or the llama.cpp aliases "phi-2", "mpt",
 *            "olmo"); anything else, or no `pre` key, is UNSUPPORTED.
 * Merging uses an indexed binary heap: O(n log n) in the number of characters
 * of a word (SPM: of a text fragment).
 *
 * Memory. Nothing allocates. spr_tokenizer_init() builds its tables (token
 * offsets/lengths/types/scores, an open-addressing FNV-1a hash index of the
 * token strings, the merge-rank index, the special-token list) in caller
 * memory of spr_tokenizer_bytes(g) bytes, 8-byte aligned. Token strings are
 * NOT copied: the tokenizer points into the GGUF blob, which must outlive it
 * (and must not move). A `struct spr_tokenizer` is immutable after init, so
 * several threads may encode/decode concurrently, each with its own work
 * buffer of spr_tokenizer_work_bytes() bytes (8-byte aligned).
 *
 * Metadata read (GGUF keys):
 *   tokenizer.ggml.model        string  required: "llama" | "gpt2"
 *   tokenizer.ggml.tokens       string[n_vocab] required, n_vocab >= 1
 *   tokenizer.ggml.scores       f32|i32[n_vocab] required for "llama", optional for "gpt2"
 *   tokenizer.ggml.token_type   i32[n_vocab] optional (default 1 = normal); values 0..6
 *   tokenizer.ggml.merges       string[] required for "gpt2" ("left right")
 *   tokenizer.ggml.pre          string  required for "gpt2" (see above)
 *   tokenizer.ggml.bos_token_id / eos_token_id / unknown_token_id / padding_token_id
 *                               u32, optional; must be < n_vocab. Defaults as
 *                               llama.cpp: llama bos 1, eos 2, unk 0; gpt2 bos = eos = 11;
 *                               a default outside the vocab becomes "none" (-1).
 *   tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix  bool, optional
 *                               (defaults: llama true/false/true, gpt2 false/false/false)
 * Errors from init (each with a one-line message in err):
 *   MISSING_KEY     model / tokens / scores (llama) / merges (gpt2) absent
 *   BAD_KV_TYPE     a key with the wrong GGUF type (e.g. tokens not a string array)
 *   BAD_METADATA    empty vocab, array length != n_vocab, special id >= n_vocab,
 *                   token type outside 0..6, NaN score, SPM byte token not "<0xHH>",
 *                   add_bos/add_eos true with no bos/eos token
 *   DUPLICATE       two tokens with the same text (llama.cpp rejects these too)
 *   UNSUPPORTED     another tokenizer model or pre-tokenizer (or gpt2 without
 *                   tokenizer.ggml.pre); a vocab or merge list beyond 2^30
 *                   entries; token strings beyond 4 GiB into the blob
 *   INVALID_ARGUMENT NULL pointer, or bytes < spr_tokenizer_bytes(g)
 *   MISALIGNED      mem not 8-byte aligned
 *
 * Special tokens in text. As llama.cpp, before tokenizing, the text is split
 * at occurrences of user-defined tokens (type 4) — always — and of control
 * and unknown tokens (types 3, 2) only with SPR_TOKENIZE_PARSE_SPECIAL; the
 * longest token text is matched first (ties: lower id). Each piece between
 * them is tokenized separately; for SPM, a piece that starts the text or
 * follows a special token gets the space prefix.
 *
 * Known differences from llama.cpp (none affect its conformance files):
 *   - Unicode classes come from Python 3.11's unicodedata (Unicode 14.0);
 *     llama.cpp's tables may be newer, so letters/numbers assigned after 14.0
 *     can be pre-tokenized differently.
 *   - An empty token string is never matched (llama.cpp renames it
 *     "[EMPTY_<id>]"); its piece is empty.
 *   - Token attributes that llama.cpp infers from token TEXT or model NAME
 *     (e.g. "<|im_end|>" forced to control, "unused" tokens, phi-3 rstrip)
 *     are not applied: types come only from tokenizer.ggml.token_type.
 *   - Decode does not apply llama.cpp's clean_up_tokenization_spaces (gpt2),
 *     so decode(encode(s)) == s; it also strips the SPM space prefix after a
 *     leading BOS (llama.cpp keeps it there), and never strips for gpt2
 *     (llama.cpp does when a gpt2 file sets add_space_prefix, which its BPE
 *     encoder ignores).
 *   - SPM: a byte with neither a <0xXX> nor a 1-byte token becomes unk
 *     (llama.cpp throws).
 *   - BPE: a 4-byte UTF-8 form above U+10FFFF becomes U+FFFD per byte
 *     (llama.cpp throws on it). A BPE token character that is not a GPT-2
 *     byte image decodes to its own UTF-8 (llama.cpp writes "[UNK_BYTE_..]").
 */
#ifndef SPR_RUNTIME_TOKENIZER_H
#define SPR_RUNTIME_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparrow/gguf.h"
#include "sparrow/status.h"
#include "sparrow/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPR_TOKEN_NONE (-1)    /* "no such token" (e.g. a model without unk) */
#define SPR_TOKENIZER_ALIGN 8u /* alignment of the init memory and of work */
/* Longest text encode accepts (bytes); longer input is INVALID_ARGUMENT. */
#define SPR_TOKENIZER_MAX_TEXT ((size_t)1 << 28)

enum spr_tokenizer_kind {
  SPR_TOKENIZER_SPM = 1, /* tokenizer.ggml.model = "llama" */
  SPR_TOKENIZER_BPE = 2, /* tokenizer.ggml.model = "gpt2" */
};

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum spr_token_type {
  SPR_TOKEN_TYPE_UNDEFINED = 0,
  SPR_TOKEN_TYPE_NORMAL = 1,
  SPR_TOKEN_TYPE_UNKNOWN = 2,
  SPR_TOKEN_TYPE_CONTROL = 3,
  SPR_TOKEN_TYPE_USER_DEFINED = 4,
  SPR_TOKEN_TYPE_UNUSED = 5,
  SPR_TOKEN_TYPE_BYTE = 6,
};

/* Flags for spr_tokenizer_encode_ex. */
enum spr_tokenize_flags {
  SPR_TOKENIZE_ADD_BOS = 1u << 0,       /* prepend bos (UNSUPPORTED if the model has none) */
  SPR_TOKENIZE_ADD_EOS = 1u << 1,       /* append eos (UNSUPPORTED if the model has none) */
  SPR_TOKENIZE_PARSE_SPECIAL = 1u << 2, /* match control/unknown token texts in the input */
};

/* Filled by spr_tokenizer_init; treat as opaque (read it through the
 * accessors). Pointers refer to the init memory and to the GGUF blob. */
struct spr_tokenizer {
  enum spr_tokenizer_kind kind;
  const uint8_t *base; /* the GGUF blob; token i's text is base + tok_off[i] */
  uint32_t n_vocab;
  uint32_t n_merges;          /* BPE: merge ranks indexed (0 for SPM) */
  uint32_t n_special;         /* entries in special[] */
  uint32_t n_user_defined;    /* user-defined tokens among special[] */
  int32_t bos, eos, unk, pad; /* SPR_TOKEN_NONE when absent */
  bool add_bos, add_eos, add_space_prefix;
  uint32_t max_token_len;     /* longest token text (bytes) */
  uint32_t max_merge_len;     /* BPE: longest merge string "l r" (bytes) */
  uint32_t tok_mask;          /* tok_hash has tok_mask + 1 slots (power of two) */
  uint32_t merge_mask;        /* merge_hash has merge_mask + 1 slots (0 slots if SPM) */
  const uint32_t *tok_off;    /* [n_vocab] offset of the text from base */
  const uint32_t *tok_len;    /* [n_vocab] text length in bytes */
  const uint8_t *tok_type;    /* [n_vocab] enum spr_token_type */
  const float *score;         /* [n_vocab] SPM merge scores (NULL for BPE) */
  const uint32_t *tok_hash;   /* [tok_mask+1] id + 1, 0 = empty slot */
  const uint32_t *merge_off;  /* [n_merges] offset of merge string i (rank i) from base */
  const uint32_t *merge_len;  /* [n_merges] its length */
  const uint32_t *merge_hash; /* [merge_mask+1] rank + 1, 0 = empty slot */
  const int32_t *special;     /* [n_special] control/unknown/user-defined ids, longest text first */
  const int32_t *byte_tok;    /* [256] SPM byte fallback for each byte (<0xXX>, else the 1-byte
                                 token, else unk, else SPR_TOKEN_NONE); BPE: the 1-byte token */
};

/* Bytes of init memory the tokenizer of g needs; 0 when the metadata is too
 * broken to size (spr_tokenizer_init then reports why). */
size_t spr_tokenizer_bytes(const struct spr_gguf *g);

/* Validates the tokenizer metadata of g and builds the tables in
 * mem[0..bytes). On failure *t is zeroed and err (may be NULL) says why. */
enum spr_status spr_tokenizer_init(struct spr_tokenizer *t, void *mem, size_t bytes, const struct spr_gguf *g,
                                   struct spr_error *err);

/* Scratch bytes encode needs for any text of text_len bytes: per input byte
 * about 67 (SPM: an escaped space after a truncated UTF-8 lead byte can
 * become 2 symbols) or 106 (BPE: an invalid byte can become 3 symbols), plus 32
 * when the vocab has control/unknown/user-defined tokens (text fragments).
 * 0 when text_len is 0 (work may then be NULL) or > SPR_TOKENIZER_MAX_TEXT. */
size_t spr_tokenizer_work_bytes(const struct spr_tokenizer *t, size_t text_len);

/* Tokenizes text[0..len) (any bytes; invalid UTF-8 never fails: SPM falls
 * back to byte tokens, BPE reads each invalid byte as U+FFFD as llama.cpp).
 * Writes up to max_tokens ids to tokens and the full count to *n_tokens.
 * add_bos prepends the bos token (the model's preference is
 * spr_tokenizer_add_bos_default). Special-token texts are not parsed.
 * Returns:
 *   OK                all *n_tokens ids written
 *   CAPACITY          *n_tokens > max_tokens; the first max_tokens ids are written
 *   INVALID_ARGUMENT  NULL pointer (text may be NULL when len == 0; tokens may
 *                     be NULL when max_tokens == 0), len > SPR_TOKENIZER_MAX_TEXT,
 *                     work_bytes < spr_tokenizer_work_bytes(t, len)
 *   MISALIGNED        work not 8-byte aligned
 *   UNSUPPORTED       add_bos with no bos token
 *   BAD_INPUT         SPM: a byte needs the fallback but the vocab has no
 *                     byte token for it and no unk token (cannot happen with
 *                     llama.cpp's default unk id 0; llama.cpp throws here) */
enum spr_status spr_tokenizer_encode(const struct spr_tokenizer *t, const char *text, size_t len, bool add_bos,
                                     int32_t *tokens, size_t max_tokens, size_t *n_tokens, void *work,
                                     size_t work_bytes);

/* Same with enum spr_tokenize_flags. */
enum spr_status spr_tokenizer_encode_ex(const struct spr_tokenizer *t, const char *text, size_t len, uint32_t flags,
                                        int32_t *tokens, size_t max_tokens, size_t *n_tokens, void *work,
                                        size_t work_bytes);

/* The bytes token id stands for, as llama.cpp's token_to_piece with
 * special = false: normal tokens -> their text (SPM: U+2581 -> ' '; BPE:
 * each GPT-2 byte character -> its byte), byte tokens <0xAB> -> that byte,
 * user-defined -> their text verbatim, control/unknown/unused/undefined ->
 * nothing. Writes *n bytes to buf (no NUL). Returns INVALID_ARGUMENT for an id
 * outside [0, n_vocab) or a NULL pointer; CAPACITY (nothing written) with
 * *n = bytes needed when len is too small. buf may be NULL when len == 0. */
enum spr_status spr_tokenizer_piece(const struct spr_tokenizer *t, int32_t id, char *buf, size_t len, size_t *n);

/* Concatenated pieces of tokens[0..n_tokens); for SPM with add_space_prefix,
 * the first non-empty piece loses one leading ' ' (the prefix encode added),
 * so decode(encode(s)) == s for every valid UTF-8 s a vocab can represent
 * (SPM, as llama.cpp, groups an invalid lead byte with the next bytes of the
 * ESCAPED text, so a following space can come back as raw U+2581 bytes;
 * BPE reads invalid bytes as U+FFFD). Writes *n
 * bytes (no NUL). INVALID_ARGUMENT for any id out of range (nothing
 * written); CAPACITY with *n = bytes needed when len is too small (buf
 * contents then unspecified). */
enum spr_status spr_tokenizer_decode(const struct spr_tokenizer *t, const int32_t *tokens, size_t n_tokens, char *buf,
                                     size_t len, size_t *n);

/* The raw vocab text of a token (zero-copy into the blob, not
 * NUL-terminated) and its type. INVALID_ARGUMENT for an id out of range. */
enum spr_status spr_tokenizer_token_text(const struct spr_tokenizer *t, int32_t id, const char **text, size_t *len);
enum spr_status spr_tokenizer_token_type(const struct spr_tokenizer *t, int32_t id, enum spr_token_type *type);

/* Id of the token whose text is exactly text[0..len), or SPR_TOKEN_NONE. */
int32_t spr_tokenizer_find(const struct spr_tokenizer *t, const char *text, size_t len);

/* Accessors (SPR_TOKEN_NONE when the model has no such token). */
uint32_t spr_tokenizer_n_vocab(const struct spr_tokenizer *t);
int32_t spr_tokenizer_bos(const struct spr_tokenizer *t);
int32_t spr_tokenizer_eos(const struct spr_tokenizer *t);
int32_t spr_tokenizer_unk(const struct spr_tokenizer *t);
int32_t spr_tokenizer_pad(const struct spr_tokenizer *t);
/* tokenizer.ggml.add_bos_token (default: true for llama, false for gpt2). */
bool spr_tokenizer_add_bos_default(const struct spr_tokenizer *t);
enum spr_tokenizer_kind spr_tokenizer_kind(const struct spr_tokenizer *t);

/* ---- internal: shared by runtime/tokenizer*.c, not for callers ---------------- */
#define SPR_TOK_FNV_INIT 2166136261u
/* FNV-1a 32-bit, continuing from h. */
uint32_t spr_tok_fnv(uint32_t h, const uint8_t *s, size_t n);
/* Id of the token with text s[0..n), or SPR_TOKEN_NONE. */
int32_t spr_tok_lookup(const struct spr_tokenizer *t, const uint8_t *s, size_t n);
/* BPE rank of the merge "l r", or -1. l and r must not contain ' '. */
int32_t spr_tok_merge_rank(const struct spr_tokenizer *t, const uint8_t *l, size_t nl, const uint8_t *r, size_t nr);

#ifdef __cplusplus
}
#endif
#endif
