/* runtime/tokenizer.c — tokenizer tables from GGUF metadata; look-ups; decode.
 *
 * Init reads the metadata twice: read_meta() validates keys, types, lengths
 * and special ids and counts what the tables need (shared with
 * spr_tokenizer_bytes); fill() then builds the tables in caller memory.
 * Encoding lives in tokenizer_encode.c. */
#include "runtime/tokenizer.h"

#include <string.h>

#include "runtime/error.h"
#include "runtime/unicode.h"
#include "runtime/util.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_BOS "tokenizer.ggml.bos_token_id"
#define KEY_EOS "tokenizer.ggml.eos_token_id"
#define KEY_UNK "tokenizer.ggml.unknown_token_id"
#define KEY_PAD "tokenizer.ggml.padding_token_id"
#define KEY_ADD_BOS "tokenizer.ggml.add_bos_token"
#define KEY_ADD_EOS "tokenizer.ggml.add_eos_token"
#define KEY_ADD_SPACE "tokenizer.ggml.add_space_prefix"

/* pre-tokenizer names llama.cpp maps to the plain GPT-2 regex with no other
 * behaviour change (src/llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_GPT2/MPT/OLMO) */
static const char *const k_gpt2_pre[] = {"gpt-2", "phi-2", "mpt", "olmo"};

/* ---- hashing ---------------------------------------------------------------- */

uint32_t spr_tok_fnv(uint32_t h, const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 16777619u;
  }
  return h;
}

int32_t spr_tok_lookup(const struct spr_tokenizer *t, const uint8_t *s, size_t n) {
  if (n == 0 || n > t->max_token_len) return SPR_TOKEN_NONE;
  uint32_t i = spr_tok_fnv(SPR_TOK_FNV_INIT, s, n) & t->tok_mask;
  for (;;) {
    const uint32_t v = t->tok_hash[i];
    if (v == 0) return SPR_TOKEN_NONE;
    const uint32_t id = v - 1;
    if (t->tok_len[id] == n && memcmp(t->base + t->tok_off[id], s, n) == 0) return (int32_t)id;
    i = (i + 1) & t->tok_mask;
  }
}

int32_t spr_tok_merge_rank(const struct spr_tokenizer *t, const uint8_t *l, size_t nl, const uint8_t *r, size_t nr) {
  const size_t total = nl + 1 + nr;
  if (t->n_merges == 0 || total > t->max_merge_len) return -1;
  static const uint8_t space = ' ';
  uint32_t h = spr_tok_fnv(SPR_TOK_FNV_INIT, l, nl);
  h = spr_tok_fnv(h, &space, 1);
  h = spr_tok_fnv(h, r, nr);
  uint32_t i = h & t->merge_mask;
  for (;;) {
    const uint32_t v = t->merge_hash[i];
    if (v == 0) return -1;
    const uint32_t rank = v - 1;
    const uint8_t *m = t->base + t->merge_off[rank];
    if (t->merge_len[rank] == total && memcmp(m, l, nl) == 0 && m[nl] == ' ' && memcmp(m + nl + 1, r, nr) == 0)
      return (int32_t)rank;
    i = (i + 1) & t->merge_mask;
  }
}

/* ---- metadata ------------------------------------------------------------------ */

struct meta {
  enum spr_tokenizer_kind kind;
  struct spr_gguf_kv tokens, scores, types, merges;
  bool has_scores, has_types;
  uint32_t n_vocab, n_merges, n_special_cap;
  int32_t bos, eos, unk, pad;
  bool add_bos, add_eos, add_space_prefix;
};

/* Table layout in the init memory; offsets in bytes, all multiples of 4. */
struct layout {
  size_t off, len, score, hash, moff, mlen, mhash, special, byte_tok, type, total;
  uint32_t tok_cap, merge_cap;
};

static uint32_t hash_cap(uint32_t n) {
  uint32_t cap = 2;
  while (cap < 2u * (uint64_t)n && cap < 0x80000000u) cap <<= 1;
  if (cap < 2u * (uint64_t)n) cap = 0; /* > 2^31 entries: never reached (n_vocab <= INT32_MAX / 2) */
  return cap;
}

static bool plan_layout(const struct meta *m, struct layout *L) {
  memset(L, 0, sizeof *L);
  L->tok_cap = hash_cap(m->n_vocab);
  L->merge_cap = m->kind == SPR_TOKENIZER_BPE ? hash_cap(m->n_merges) : 0;
  if (L->tok_cap == 0 || (m->kind == SPR_TOKENIZER_BPE && L->merge_cap == 0)) return false;
  size_t pos = 0, sz;
  const size_t n = m->n_vocab;
#define ADD(field, count, elem)                                                                         \
  do {                                                                                                  \
    L->field = pos;                                                                                     \
    if (!spr_mul_ok((count), (elem), &sz) || !spr_add_ok(pos, spr_align_up(sz, 8), &pos)) return false; \
  } while (0)
  ADD(off, n, 4);
  ADD(len, n, 4);
  ADD(score, m->kind == SPR_TOKENIZER_SPM ? n : 0, 4);
  ADD(hash, L->tok_cap, 4);
  ADD(moff, m->n_merges, 4);
  ADD(mlen, m->n_merges, 4);
  ADD(mhash, L->merge_cap, 4);
  ADD(special, m->n_special_cap, 4);
  ADD(byte_tok, 256, 4);
  ADD(type, n, 1);
#undef ADD
  L->total = pos;
  return true;
}

static enum spr_status get_string_array(const struct spr_gguf *g, const char *key, struct spr_gguf_kv *kv,
                                        struct spr_error *err) {
  const enum spr_status s = spr_gguf_find_kv(g, key, kv);
  if (s == SPR_STATUS_NOT_FOUND) return SPR_FAIL(SPR_STATUS_MISSING_KEY, "tokenizer: missing key %s", key);
  if (s != SPR_STATUS_OK) return SPR_FAIL(s, "tokenizer: cannot read %s (%s)", key, spr_status_name(s));
  SPR_CHECK(kv->type == SPR_GGUF_ARRAY && kv->arr_type == SPR_GGUF_STRING, SPR_STATUS_BAD_KV_TYPE,
            "tokenizer: %s must be an array of strings", key);
  return SPR_STATUS_OK;
}

/* An optional numeric array of exactly n elements (integer types, plus f32
 * when allow_f32). *present false when absent. */
static enum spr_status get_num_array(const struct spr_gguf *g, const char *key, uint32_t n, bool allow_f32,
                                     struct spr_gguf_kv *kv, bool *present, struct spr_error *err) {
  const enum spr_status s = spr_gguf_find_kv(g, key, kv);
  *present = false;
  if (s == SPR_STATUS_NOT_FOUND) return SPR_STATUS_OK;
  if (s != SPR_STATUS_OK) return SPR_FAIL(s, "tokenizer: cannot read %s (%s)", key, spr_status_name(s));
  const bool ok_type =
      kv->type == SPR_GGUF_ARRAY && (kv->arr_type == SPR_GGUF_I32 || (allow_f32 && kv->arr_type == SPR_GGUF_F32));
  SPR_CHECK(ok_type, SPR_STATUS_BAD_KV_TYPE, "tokenizer: %s must be an array of %s", key,
            allow_f32 ? "f32 (or i32)" : "i32");
  SPR_CHECK(kv->arr_n == n, SPR_STATUS_BAD_METADATA, "tokenizer: %s has %llu entries but the vocab has %u tokens", key,
            (unsigned long long)kv->arr_n, n);
  *present = true;
  return SPR_STATUS_OK;
}

static enum spr_status get_special_id(const struct spr_gguf *g, const char *key, uint32_t n_vocab, int32_t def,
                                      int32_t *out, struct spr_error *err) {
  uint32_t v;
  const enum spr_status s = spr_gguf_get_u32(g, key, &v);
  if (s == SPR_STATUS_NOT_FOUND) {
    *out = def >= 0 && (uint32_t)def < n_vocab ? def : SPR_TOKEN_NONE;
    return SPR_STATUS_OK;
  }
  SPR_CHECK(s != SPR_STATUS_BAD_KV_TYPE, s, "tokenizer: %s must be an unsigned integer", key);
  SPR_CHECK(s == SPR_STATUS_OK, s, "tokenizer: %s is not a valid token id (%s)", key, spr_status_name(s));
  SPR_CHECK(v < n_vocab, SPR_STATUS_BAD_METADATA, "tokenizer: %s = %u is outside the vocab (%u tokens)", key, v,
            n_vocab);
  *out = (int32_t)v;
  return SPR_STATUS_OK;
}

static enum spr_status get_flag(const struct spr_gguf *g, const char *key, bool def, bool *out, struct spr_error *err) {
  const enum spr_status s = spr_gguf_get_bool(g, key, out);
  if (s == SPR_STATUS_NOT_FOUND) {
    *out = def;
    return SPR_STATUS_OK;
  }
  SPR_CHECK(s == SPR_STATUS_OK, s, "tokenizer: %s must be a bool", key);
  return SPR_STATUS_OK;
}

static bool is_special_type(int64_t type) {
  return type == SPR_TOKEN_TYPE_UNKNOWN || type == SPR_TOKEN_TYPE_CONTROL || type == SPR_TOKEN_TYPE_USER_DEFINED;
}

static enum spr_status read_meta(const struct spr_gguf *g, struct meta *m, struct spr_error *err) {
  memset(m, 0, sizeof *m);
  SPR_CHECK(g != NULL, SPR_STATUS_INVALID_ARGUMENT, "tokenizer: NULL gguf");

  struct spr_gguf_str model;
  enum spr_status s = spr_gguf_get_str(g, KEY_MODEL, &model);
  SPR_CHECK(s != SPR_STATUS_NOT_FOUND, SPR_STATUS_MISSING_KEY, "tokenizer: missing key " KEY_MODEL);
  SPR_CHECK(s == SPR_STATUS_OK, s, "tokenizer: " KEY_MODEL " must be a string");
  if (spr_gguf_str_eq(model, "llama")) {
    m->kind = SPR_TOKENIZER_SPM;
  } else if (spr_gguf_str_eq(model, "gpt2")) {
    m->kind = SPR_TOKENIZER_BPE;
  } else {
    return SPR_FAIL(SPR_STATUS_UNSUPPORTED, "tokenizer: model '%.*s' is not supported (only 'llama' and 'gpt2')",
                    (int)(model.len > 40 ? 40 : model.len), model.ptr);
  }

  if (m->kind == SPR_TOKENIZER_BPE) {
    struct spr_gguf_str pre;
    s = spr_gguf_get_str(g, KEY_PRE, &pre);
    SPR_CHECK(s != SPR_STATUS_NOT_FOUND, SPR_STATUS_UNSUPPORTED,
              "tokenizer: gpt2 model without " KEY_PRE " (llama.cpp's 'default' pre-tokenizer) is not supported");
    SPR_CHECK(s == SPR_STATUS_OK, s, "tokenizer: " KEY_PRE " must be a string");
    bool known = false;
    for (size_t i = 0; i < sizeof k_gpt2_pre / sizeof k_gpt2_pre[0]; i++)
      known = known || spr_gguf_str_eq(pre, k_gpt2_pre[i]);
    SPR_CHECK(known, SPR_STATUS_UNSUPPORTED,
              "tokenizer: pre-tokenizer '%.*s' is not supported (only the GPT-2 regex: gpt-2, phi-2, mpt, olmo)",
              (int)(pre.len > 40 ? 40 : pre.len), pre.ptr);
  }

  SPR_TRY(get_string_array(g, KEY_TOKENS, &m->tokens, err));
  SPR_CHECK(m->tokens.arr_n > 0, SPR_STATUS_BAD_METADATA, "tokenizer: empty vocab (" KEY_TOKENS " has 0 entries)");
  SPR_CHECK(m->tokens.arr_n <= (uint64_t)INT32_MAX / 2, SPR_STATUS_UNSUPPORTED,
            "tokenizer: vocab of %llu tokens is too large", (unsigned long long)m->tokens.arr_n);
  m->n_vocab = (uint32_t)m->tokens.arr_n;

  SPR_TRY(get_num_array(g, KEY_SCORES, m->n_vocab, true, &m->scores, &m->has_scores, err));
  SPR_CHECK(m->has_scores || m->kind != SPR_TOKENIZER_SPM, SPR_STATUS_MISSING_KEY,
            "tokenizer: missing key " KEY_SCORES " (required by the llama tokenizer)");
  SPR_TRY(get_num_array(g, KEY_TYPES, m->n_vocab, false, &m->types, &m->has_types, err));
  for (uint32_t i = 0; m->has_types && i < m->n_vocab; i++) {
    int64_t ty = 0;
    s = spr_gguf_arr_get_i64(&m->types, i, &ty);
    SPR_CHECK(s == SPR_STATUS_OK, s, "tokenizer: cannot read " KEY_TYPES "[%u]", i);
    SPR_CHECK(ty >= 0 && ty <= SPR_TOKEN_TYPE_BYTE, SPR_STATUS_BAD_METADATA,
              "tokenizer: " KEY_TYPES "[%u] = %lld is not a token type (0..6)", i, (long long)ty);
    m->n_special_cap += is_special_type(ty);
  }

  if (m->kind == SPR_TOKENIZER_BPE) {
    SPR_TRY(get_string_array(g, KEY_MERGES, &m->merges, err));
    SPR_CHECK(m->merges.arr_n <= (uint64_t)INT32_MAX / 2, SPR_STATUS_UNSUPPORTED, "tokenizer: %llu merges are too many",
              (unsigned long long)m->merges.arr_n);
    m->n_merges = (uint32_t)m->merges.arr_n;
  }

  const bool spm = m->kind == SPR_TOKENIZER_SPM;
  SPR_TRY(get_special_id(g, KEY_BOS, m->n_vocab, spm ? 1 : 11, &m->bos, err));
  SPR_TRY(get_special_id(g, KEY_EOS, m->n_vocab, spm ? 2 : 11, &m->eos, err));
  SPR_TRY(get_special_id(g, KEY_UNK, m->n_vocab, spm ? 0 : SPR_TOKEN_NONE, &m->unk, err));
  SPR_TRY(get_special_id(g, KEY_PAD, m->n_vocab, SPR_TOKEN_NONE, &m->pad, err));
  SPR_TRY(get_flag(g, KEY_ADD_BOS, spm, &m->add_bos, err));
  SPR_TRY(get_flag(g, KEY_ADD_EOS, false, &m->add_eos, err));
  SPR_TRY(get_flag(g, KEY_ADD_SPACE, spm, &m->add_space_prefix, err));
  SPR_CHECK(!m->add_bos || m->bos != SPR_TOKEN_NONE, SPR_STATUS_BAD_METADATA,
            "tokenizer: " KEY_ADD_BOS " is true but the model has no bos token");
  SPR_CHECK(!m->add_eos || m->eos != SPR_TOKEN_NONE, SPR_STATUS_BAD_METADATA,
            "tokenizer: " KEY_ADD_EOS " is true but the model has no eos token");
  return SPR_STATUS_OK;
}

size_t spr_tokenizer_bytes(const struct spr_gguf *g) {
  struct meta m;
  struct layout L;
  if (read_meta(g, &m, NULL) != SPR_STATUS_OK || !plan_layout(&m, &L)) return 0;
  return L.total;
}

/* ---- init ---------------------------------------------------------------------- */

static bool is_hex(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static uint8_t hex_val(uint8_t c) {
  return (uint8_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

/* True when s is "<0xHH>"; *b receives the byte. */
static bool parse_byte_token(const uint8_t *s, size_t n, uint8_t *b) {
  if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || !is_hex(s[3]) || !is_hex(s[4]) || s[5] != '>')
    return false;
  *b = (uint8_t)(hex_val(s[3]) << 4 | hex_val(s[4]));
  return true;
}

/* Special-token order: longer text first, then lower id (llama.cpp sorts by
 * length only, with an unstable sort; ties only matter for overlapping
 * equal-length special tokens). */
static bool special_before(const struct spr_tokenizer *t, int32_t a, int32_t b) {
  const uint32_t la = t->tok_len[a], lb = t->tok_len[b];
  return la != lb ? la > lb : a < b;
}

/* In-place heapsort of ids by special_before (no allocation, O(k log k)). */
static void sort_special(const struct spr_tokenizer *t, int32_t *v, uint32_t n) {
  /* max-heap on "comes later" so the sorted result is ascending in order */
  for (uint32_t k = n; k-- > 0;) {
    for (uint32_t i = k, c; (c = 2 * i + 1) < n; i = c) {
      if (c + 1 < n && special_before(t, v[c], v[c + 1])) c++;
      if (!special_before(t, v[i], v[c])) break;
      const int32_t tmp = v[i];
      v[i] = v[c];
      v[c] = tmp;
    }
  }
  for (uint32_t end = n; end-- > 1;) {
    const int32_t tmp = v[0];
    v[0] = v[end];
    v[end] = tmp;
    for (uint32_t i = 0, c; (c = 2 * i + 1) < end; i = c) {
      if (c + 1 < end && special_before(t, v[c], v[c + 1])) c++;
      if (!special_before(t, v[i], v[c])) break;
      const int32_t tmp2 = v[i];
      v[i] = v[c];
      v[c] = tmp2;
    }
  }
}

static enum spr_status fill(struct spr_tokenizer *t, uint8_t *mem, const struct meta *m, const struct layout *L,
                            const struct spr_gguf *g, struct spr_error *err) {
  uint32_t *off = (uint32_t *)(void *)(mem + L->off);
  uint32_t *len = (uint32_t *)(void *)(mem + L->len);
  float *score = m->kind == SPR_TOKENIZER_SPM ? (float *)(void *)(mem + L->score) : NULL;
  uint32_t *hash = (uint32_t *)(void *)(mem + L->hash);
  uint32_t *moff = (uint32_t *)(void *)(mem + L->moff);
  uint32_t *mlen = (uint32_t *)(void *)(mem + L->mlen);
  uint32_t *mhash = (uint32_t *)(void *)(mem + L->mhash);
  int32_t *special = (int32_t *)(void *)(mem + L->special);
  int32_t *byte_tok = (int32_t *)(void *)(mem + L->byte_tok);
  uint8_t *type = mem + L->type;

  t->kind = m->kind;
  t->base = g->base;
  t->n_vocab = m->n_vocab;
  t->bos = m->bos;
  t->eos = m->eos;
  t->unk = m->unk;
  t->pad = m->pad;
  t->add_bos = m->add_bos;
  t->add_eos = m->add_eos;
  t->add_space_prefix = m->add_space_prefix;
  t->tok_mask = L->tok_cap - 1;
  t->tok_off = off;
  t->tok_len = len;
  t->tok_type = type;
  t->score = score;
  t->tok_hash = hash;
  t->merge_off = moff;
  t->merge_len = mlen;
  t->merge_hash = mhash;
  t->special = special;
  t->byte_tok = byte_tok;
  memset(hash, 0, (size_t)L->tok_cap * 4);

  size_t cur = 0;
  for (uint32_t i = 0; i < m->n_vocab; i++) {
    struct spr_gguf_str s;
    enum spr_status st = spr_gguf_arr_next_str(&m->tokens, &cur, &s);
    SPR_CHECK(st == SPR_STATUS_OK, SPR_STATUS_BAD_METADATA, "tokenizer: cannot read " KEY_TOKENS "[%u]", i);
    const size_t o = (size_t)((const uint8_t *)s.ptr - g->base);
    SPR_CHECK(o <= UINT32_MAX && s.len <= UINT32_MAX - o, SPR_STATUS_UNSUPPORTED,
              "tokenizer: token %u lies beyond 4 GiB into the file", i);
    off[i] = (uint32_t)o;
    len[i] = (uint32_t)s.len;
    if (len[i] > t->max_token_len) t->max_token_len = len[i];
    int64_t ty = SPR_TOKEN_TYPE_NORMAL;
    if (m->has_types) (void)spr_gguf_arr_get_i64(&m->types, i, &ty); /* validated by read_meta */
    type[i] = (uint8_t)ty;
    if (score != NULL) {
      double d = 0.0;
      if (m->has_scores) (void)spr_gguf_arr_get_f64(&m->scores, i, &d);
      score[i] = (float)d;
      SPR_CHECK(score[i] == score[i], SPR_STATUS_BAD_METADATA, "tokenizer: " KEY_SCORES "[%u] is NaN", i);
    }
    if (m->kind == SPR_TOKENIZER_SPM && ty == SPR_TOKEN_TYPE_BYTE) {
      uint8_t b;
      SPR_CHECK(parse_byte_token((const uint8_t *)s.ptr, s.len, &b), SPR_STATUS_BAD_METADATA,
                "tokenizer: byte token %u is '%.*s', not <0xHH>", i, (int)(s.len > 16 ? 16 : s.len), s.ptr);
    }
    if (s.len == 0) continue; /* never matched */
    uint32_t h = spr_tok_fnv(SPR_TOK_FNV_INIT, (const uint8_t *)s.ptr, s.len) & t->tok_mask;
    for (;; h = (h + 1) & t->tok_mask) {
      if (hash[h] == 0) {
        hash[h] = i + 1;
        break;
      }
      const uint32_t j = hash[h] - 1;
      SPR_CHECK(!(len[j] == s.len && memcmp(g->base + off[j], s.ptr, s.len) == 0), SPR_STATUS_DUPLICATE,
                "tokenizer: tokens %u and %u have the same text '%.*s'", j, i, (int)(s.len > 40 ? 40 : s.len), s.ptr);
    }
  }

  /* special tokens, longest first */
  for (uint32_t i = 0; i < m->n_vocab; i++) {
    if (!is_special_type(type[i]) || len[i] == 0) continue;
    special[t->n_special++] = (int32_t)i;
    t->n_user_defined += type[i] == SPR_TOKEN_TYPE_USER_DEFINED;
  }
  sort_special(t, special, t->n_special);

  /* byte fallback */
  for (uint32_t b = 0; b < 256; b++) {
    const uint8_t one = (uint8_t)b;
    const int32_t single = spr_tok_lookup(t, &one, 1);
    if (m->kind == SPR_TOKENIZER_BPE) {
      byte_tok[b] = single;
      continue;
    }
    static const char hex[] = "0123456789ABCDEF";
    const uint8_t name[6] = {'<', '0', 'x', (uint8_t)hex[b >> 4], (uint8_t)hex[b & 15], '>'};
    int32_t id = spr_tok_lookup(t, name, sizeof name);
    if (id == SPR_TOKEN_NONE) id = single;
    if (id == SPR_TOKEN_NONE) id = t->unk;
    byte_tok[b] = id;
  }

  /* merges: rank = index; a string without a separator past position 0 is
   * never matched (llama.cpp records it as the pair ("", "")); a repeated
   * string keeps its first (lowest) rank */
  if (m->kind == SPR_TOKENIZER_BPE) {
    t->merge_mask = L->merge_cap - 1;
    memset(mhash, 0, (size_t)L->merge_cap * 4);
    cur = 0;
    for (uint32_t i = 0; i < m->n_merges; i++) {
      struct spr_gguf_str s;
      enum spr_status st = spr_gguf_arr_next_str(&m->merges, &cur, &s);
      SPR_CHECK(st == SPR_STATUS_OK, SPR_STATUS_BAD_METADATA, "tokenizer: cannot read " KEY_MERGES "[%u]", i);
      const size_t o = (size_t)((const uint8_t *)s.ptr - g->base);
      SPR_CHECK(o <= UINT32_MAX && s.len <= UINT32_MAX - o, SPR_STATUS_UNSUPPORTED,
                "tokenizer: merge %u lies beyond 4 GiB into the file", i);
      moff[i] = (uint32_t)o;
      mlen[i] = (uint32_t)s.len;
      if (s.len < 3 || memchr(s.ptr + 1, ' ', s.len - 1) == NULL) continue;
      if (mlen[i] > t->max_merge_len) t->max_merge_len = mlen[i];
      uint32_t h = spr_tok_fnv(SPR_TOK_FNV_INIT, (const uint8_t *)s.ptr, s.len) & t->merge_mask;
      for (;; h = (h + 1) & t->merge_mask) {
        if (mhash[h] == 0) {
          mhash[h] = i + 1;
          break;
        }
        const uint32_t j = mhash[h] - 1;
        if (mlen[j] == s.len && memcmp(g->base + moff[j], s.ptr, s.len) == 0) break;
      }
    }
    t->n_merges = m->n_merges;
  }
  return SPR_STATUS_OK;
}

enum spr_status spr_tokenizer_init(struct spr_tokenizer *t, void *mem, size_t bytes, const struct spr_gguf *g,
                                   struct spr_error *err) {
  SPR_CHECK(t != NULL && g != NULL, SPR_STATUS_INVALID_ARGUMENT, "tokenizer: NULL argument");
  memset(t, 0, sizeof *t);
  struct meta m;
  struct layout L;
  SPR_TRY(read_meta(g, &m, err));
  SPR_CHECK(plan_layout(&m, &L), SPR_STATUS_OVERFLOW, "tokenizer: table size overflows");
  SPR_CHECK(mem != NULL || L.total == 0, SPR_STATUS_INVALID_ARGUMENT, "tokenizer: NULL memory");
  SPR_CHECK(((uintptr_t)mem & (SPR_TOKENIZER_ALIGN - 1)) == 0, SPR_STATUS_MISALIGNED,
            "tokenizer: memory must be %u-byte aligned", SPR_TOKENIZER_ALIGN);
  SPR_CHECK(bytes >= L.total, SPR_STATUS_INVALID_ARGUMENT, "tokenizer: %zu bytes given, %zu needed", bytes, L.total);
  const enum spr_status s = fill(t, (uint8_t *)mem, &m, &L, g, err);
  if (s != SPR_STATUS_OK) memset(t, 0, sizeof *t);
  return s;
}

/* ---- accessors ------------------------------------------------------------------ */

uint32_t spr_tokenizer_n_vocab(const struct spr_tokenizer *t) {
  return t->n_vocab;
}
int32_t spr_tokenizer_bos(const struct spr_tokenizer *t) {
  return t->bos;
}
int32_t spr_tokenizer_eos(const struct spr_tokenizer *t) {
  return t->eos;
}
int32_t spr_tokenizer_unk(const struct spr_tokenizer *t) {
  return t->unk;
}
int32_t spr_tokenizer_pad(const struct spr_tokenizer *t) {
  return t->pad;
}
bool spr_tokenizer_add_bos_default(const struct spr_tokenizer *t) {
  return t->add_bos;
}
enum spr_tokenizer_kind spr_tokenizer_kind(const struct spr_tokenizer *t) {
  return t->kind;
}

static bool id_ok(const struct spr_tokenizer *t, int32_t id) {
  return t != NULL && t->n_vocab > 0 && id >= 0 && (uint32_t)id < t->n_vocab;
}

enum spr_status spr_tokenizer_token_text(const struct spr_tokenizer *t, int32_t id, const char **text, size_t *len) {
  if (!id_ok(t, id) || text == NULL || len == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  *text = (const char *)(t->base + t->tok_off[id]);
  *len = t->tok_len[id];
  return SPR_STATUS_OK;
}

enum spr_status spr_tokenizer_token_type(const struct spr_tokenizer *t, int32_t id, enum spr_token_type *type) {
  if (!id_ok(t, id) || type == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  *type = (enum spr_token_type)t->tok_type[id];
  return SPR_STATUS_OK;
}

int32_t spr_tokenizer_find(const struct spr_tokenizer *t, const char *text, size_t len) {
  if (t == NULL || t->n_vocab == 0 || text == NULL) return SPR_TOKEN_NONE;
  return spr_tok_lookup(t, (const uint8_t *)text, len);
}

/* ---- decode ---------------------------------------------------------------------- */

/* Byte sink: counts every byte, stores those that fit; optionally drops one
 * leading ' ' of the whole output (the SPM space prefix). */
struct sink {
  char *buf;
  size_t cap, n;
  bool strip;
};

static inline void put(struct sink *k, uint8_t b) {
  if (k->strip) {
    k->strip = false;
    if (b == ' ') return;
  }
  if (k->n < k->cap) k->buf[k->n] = (char)b;
  k->n++;
}

static void put_piece(const struct spr_tokenizer *t, int32_t id, struct sink *k) {
  const uint8_t *s = t->base + t->tok_off[id];
  const size_t n = t->tok_len[id];
  switch (t->tok_type[id]) {
    case SPR_TOKEN_TYPE_USER_DEFINED:
      for (size_t i = 0; i < n; i++) put(k, s[i]);
      return;
    case SPR_TOKEN_TYPE_BYTE: {
      uint8_t b;
      if (parse_byte_token(s, n, &b)) put(k, b);
      return;
    }
    case SPR_TOKEN_TYPE_NORMAL:
      break;
    default: /* control, unknown, unused, undefined: not rendered */
      return;
  }
  if (t->kind == SPR_TOKENIZER_SPM) {
    for (size_t i = 0; i < n; i++) {
      if (i + 2 < n && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
        put(k, ' ');
        i += 2;
      } else {
        put(k, s[i]);
      }
    }
    return;
  }
  for (size_t i = 0; i < n;) {
    size_t adv;
    const uint32_t cp = spr_utf8_decode(s + i, n - i, &adv);
    const int b = spr_gpt2_cp_to_byte(cp);
    if (b >= 0) {
      put(k, (uint8_t)b);
    } else {
      for (size_t j = 0; j < adv; j++) put(k, s[i + j]);
    }
    i += adv;
  }
}

enum spr_status spr_tokenizer_piece(const struct spr_tokenizer *t, int32_t id, char *buf, size_t len, size_t *n) {
  if (!id_ok(t, id) || n == NULL || (buf == NULL && len > 0)) return SPR_STATUS_INVALID_ARGUMENT;
  struct sink count = {NULL, 0, 0, false};
  put_piece(t, id, &count);
  *n = count.n;
  if (count.n > len) return SPR_STATUS_CAPACITY;
  struct sink k = {buf, len, 0, false};
  put_piece(t, id, &k);
  return SPR_STATUS_OK;
}

enum spr_status spr_tokenizer_decode(const struct spr_tokenizer *t, const int32_t *tokens, size_t n_tokens, char *buf,
                                     size_t len, size_t *n) {
  if (t == NULL || t->n_vocab == 0 || n == NULL || (tokens == NULL && n_tokens > 0) || (buf == NULL && len > 0))
    return SPR_STATUS_INVALID_ARGUMENT;
  for (size_t i = 0; i < n_tokens; i++) {
    if (!id_ok(t, tokens[i])) return SPR_STATUS_INVALID_ARGUMENT;
  }
  struct sink k = {buf, len, 0, t->kind == SPR_TOKENIZER_SPM && t->add_space_prefix};
  for (size_t i = 0; i < n_tokens; i++) put_piece(t, tokens[i], &k);
  *n = k.n;
  return k.n > len ? SPR_STATUS_CAPACITY : SPR_STATUS_OK;
}
