/* runtime/tokenizer_encode.c — text -> token ids (SPM and GPT-2 BPE).
 *
 * Both tokenizers merge adjacent symbols greedily: SPM takes the pair whose
 * concatenation is the vocab token with the highest score, BPE the pair with
 * the lowest merge rank; ties go to the leftmost pair. llama.cpp keeps a lazy
 * priority queue of candidate pairs and skips stale entries; here every
 * symbol owns at most one candidate (itself + its right neighbour) in an
 * indexed binary heap that is updated in place, which pops the same pairs in
 * the same order with O(symbols) memory. Ordering key: (score desc | rank
 * asc, left symbol index asc) — the symbol index grows left to right, as
 * llama.cpp's `left`.
 *
 * Work memory (see spr_tokenizer_work_bytes), for an input of len bytes:
 *   frag   [2*len+1] text fragments around special tokens (only when the vocab has any)
 *   SPM:   esc [3*(len+1)] escaped text, sym [len+1], heap [len+1]
 *   BPE:   cpts [len] code points, mapped [6*len] byte-level text of one word,
 *          sym [3*len], heap [3*len]  (an invalid byte becomes U+FFFD = 3 UTF-8
 *          bytes, each written as a 2-byte character) */
#include <string.h>

#include "runtime/tokenizer.h"
#include "runtime/unicode.h"
#include "runtime/util.h"

struct frag {
  uint32_t off, len; /* raw text span (tok < 0) */
  int32_t tok;       /* special token id, or -1 for raw text */
  int32_t next;      /* next fragment, -1 at the end */
};

struct sym {
  int32_t prev, next; /* neighbours in the live chain, -1 at the ends */
  uint32_t off, n;    /* bytes [off, off+n) of the symbol text; n == 0 once merged away */
  float score;        /* SPM: score of the candidate (this + next) */
  int32_t rank;       /* BPE: rank of the candidate (this + next) */
  int32_t hpos;       /* position in the heap, -1 when no candidate */
};

struct out {
  int32_t *tokens;
  size_t max, n;
};

static inline void push(struct out *o, int32_t id) {
  if (o->n < o->max) o->tokens[o->n] = id;
  o->n++;
}

struct work_layout {
  size_t frag, a, b, sym, heap, total; /* a, b: SPM esc / BPE cpts, mapped */
};

static bool plan_work(const struct spr_tokenizer *t, size_t len, struct work_layout *w) {
  memset(w, 0, sizeof *w);
  if (len == 0) return true;
  if (len > SPR_TOKENIZER_MAX_TEXT) return false;
  size_t pos = 0, sz;
  const bool spm = t->kind == SPR_TOKENIZER_SPM;
  const size_t n_frag = t->n_special > 0 ? 2 * len + 1 : 0;
  /* SPM symbols start at UTF-8 lead bytes of the ESCAPED text: one per input
   * byte, except an escaped space (3 bytes) whose first byte a truncated lead
   * before it swallowed: its other two bytes are then one symbol each. */
  const size_t n_sym = spm ? 2 * len + 1 : 3 * len;
#define ADD(field, count, elem)                                                                         \
  do {                                                                                                  \
    w->field = pos;                                                                                     \
    if (!spr_mul_ok((count), (elem), &sz) || !spr_add_ok(pos, spr_align_up(sz, 8), &pos)) return false; \
  } while (0)
  ADD(frag, n_frag, sizeof(struct frag));
  ADD(a, spm ? 3 * (len + 1) : len, spm ? 1 : sizeof(uint32_t));
  ADD(b, spm ? 0 : 6 * len, 1);
  ADD(sym, n_sym, sizeof(struct sym));
  ADD(heap, n_sym, sizeof(int32_t));
#undef ADD
  w->total = pos;
  return true;
}

size_t spr_tokenizer_work_bytes(const struct spr_tokenizer *t, size_t text_len) {
  struct work_layout w;
  if (t == NULL || t->n_vocab == 0 || !plan_work(t, text_len, &w)) return 0;
  return w.total;
}

/* ---- indexed heap of candidate pairs ------------------------------------------- */

struct merger {
  const struct spr_tokenizer *t;
  const uint8_t *text; /* symbol bytes */
  struct sym *sym;
  int32_t *heap; /* symbol indices */
  uint32_t hn;
  bool spm;
};

/* True when the candidate of symbol a is popped before that of b. */
static inline bool better(const struct merger *M, int32_t a, int32_t b) {
  const struct sym *sa = &M->sym[a], *sb = &M->sym[b];
  if (M->spm) {
    if (sa->score != sb->score) return sa->score > sb->score;
  } else if (sa->rank != sb->rank) {
    return sa->rank < sb->rank;
  }
  return a < b;
}

static inline void heap_set(struct merger *M, uint32_t pos, int32_t i) {
  M->heap[pos] = i;
  M->sym[i].hpos = (int32_t)pos;
}

static void sift_up(struct merger *M, uint32_t pos) {
  const int32_t i = M->heap[pos];
  while (pos > 0) {
    const uint32_t parent = (pos - 1) / 2;
    if (!better(M, i, M->heap[parent])) break;
    heap_set(M, pos, M->heap[parent]);
    pos = parent;
  }
  heap_set(M, pos, i);
}

static void sift_down(struct merger *M, uint32_t pos) {
  const int32_t i = M->heap[pos];
  for (;;) {
    uint32_t c = 2 * pos + 1;
    if (c >= M->hn) break;
    if (c + 1 < M->hn && better(M, M->heap[c + 1], M->heap[c])) c++;
    if (!better(M, M->heap[c], i)) break;
    heap_set(M, pos, M->heap[c]);
    pos = c;
  }
  heap_set(M, pos, i);
}

static void heap_remove(struct merger *M, int32_t i) {
  const uint32_t pos = (uint32_t)M->sym[i].hpos;
  M->sym[i].hpos = -1;
  const int32_t last = M->heap[--M->hn];
  if (pos == M->hn) return;
  heap_set(M, pos, last);
  sift_down(M, pos);
  sift_up(M, (uint32_t)M->sym[last].hpos);
}

/* (Re)computes the candidate pair (i, next(i)) and its place in the heap. */
static void set_candidate(struct merger *M, int32_t i) {
  struct sym *s = &M->sym[i];
  bool valid = false;
  if (s->next >= 0) {
    const struct sym *r = &M->sym[s->next];
    if (M->spm) {
      const int32_t id = spr_tok_lookup(M->t, M->text + s->off, (size_t)s->n + r->n);
      if (id != SPR_TOKEN_NONE) {
        s->score = M->t->score[id];
        valid = true;
      }
    } else {
      s->rank = spr_tok_merge_rank(M->t, M->text + s->off, s->n, M->text + r->off, r->n);
      valid = s->rank >= 0;
    }
  }
  if (!valid) {
    if (s->hpos >= 0) heap_remove(M, i);
    return;
  }
  if (s->hpos < 0) {
    heap_set(M, M->hn++, i);
    sift_up(M, (uint32_t)s->hpos);
  } else {
    const uint32_t pos = (uint32_t)s->hpos;
    sift_down(M, pos);
    sift_up(M, (uint32_t)s->hpos);
  }
}

/* Splits text[0..n) into symbols (UTF-8 characters by lead byte, clamped to
 * the end) and merges them until no candidate is left. */
static void merge_all(struct merger *M, size_t n) {
  int32_t n_sym = 0;
  for (size_t pos = 0; pos < n; n_sym++) {
    size_t l = spr_utf8_lead_len(M->text[pos]);
    if (l > n - pos) l = n - pos;
    M->sym[n_sym] = (struct sym){n_sym - 1, n_sym + 1, (uint32_t)pos, (uint32_t)l, 0.0f, -1, -1};
    pos += l;
  }
  if (n_sym > 0) M->sym[n_sym - 1].next = -1;
  M->hn = 0;
  for (int32_t i = 0; i + 1 < n_sym; i++) set_candidate(M, i);
  while (M->hn > 0) {
    const int32_t i = M->heap[0];
    heap_remove(M, i);
    struct sym *l = &M->sym[i];
    const int32_t j = l->next;
    struct sym *r = &M->sym[j];
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (l->next >= 0) M->sym[l->next].prev = i;
    if (r->hpos >= 0) heap_remove(M, j);
    if (l->prev >= 0) set_candidate(M, l->prev);
    set_candidate(M, i);
  }
}

/* ---- SPM ---------------------------------------------------------------------- */

static enum spr_status spm_fragment(const struct spr_tokenizer *t, const uint8_t *s, size_t n, bool prefix,
                                    uint8_t *esc, struct sym *sym, int32_t *heap, struct out *o) {
  size_t ne = 0;
  if (prefix) {
    esc[ne++] = 0xE2;
    esc[ne++] = 0x96;
    esc[ne++] = 0x81;
  }
  for (size_t i = 0; i < n; i++) {
    if (s[i] == ' ') {
      esc[ne++] = 0xE2;
      esc[ne++] = 0x96;
      esc[ne++] = 0x81;
    } else {
      esc[ne++] = s[i];
    }
  }
  struct merger M = {t, esc, sym, heap, 0, true};
  merge_all(&M, ne);
  if (ne == 0) return SPR_STATUS_OK;
  for (int32_t i = 0; i != -1; i = sym[i].next) {
    const int32_t id = spr_tok_lookup(t, esc + sym[i].off, sym[i].n);
    if (id != SPR_TOKEN_NONE) {
      push(o, id);
      continue;
    }
    for (uint32_t k = 0; k < sym[i].n; k++) {
      const int32_t b = t->byte_tok[esc[sym[i].off + k]];
      if (b == SPR_TOKEN_NONE) return SPR_STATUS_BAD_INPUT;
      push(o, b);
    }
  }
  return SPR_STATUS_OK;
}

/* ---- GPT-2 BPE ------------------------------------------------------------------ */

struct bpe_ctx {
  const struct spr_tokenizer *t;
  uint8_t *mapped;
  struct sym *sym;
  int32_t *heap;
  struct out *o;
};

/* One pre-tokenized word: byte-level mapping, merges, ids. */
static void bpe_word(struct bpe_ctx *c, const uint32_t *cp, size_t n) {
  size_t nm = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t u[4];
    const size_t k = spr_utf8_encode(cp[i], u);
    for (size_t j = 0; j < k; j++) nm += spr_utf8_encode(spr_gpt2_byte_to_cp(u[j]), c->mapped + nm);
  }
  struct merger M = {c->t, c->mapped, c->sym, c->heap, 0, false};
  merge_all(&M, nm);
  if (nm == 0) return;
  for (int32_t i = 0; i != -1; i = c->sym[i].next) {
    const uint8_t *s = c->mapped + c->sym[i].off;
    const int32_t id = spr_tok_lookup(c->t, s, c->sym[i].n);
    if (id != SPR_TOKEN_NONE) {
      push(c->o, id);
      continue;
    }
    /* as llama.cpp: look each byte of the mapped text up as a 1-byte token */
    for (uint32_t k = 0; k < c->sym[i].n; k++) {
      const int32_t b = c->t->byte_tok[s[k]];
      if (b != SPR_TOKEN_NONE) push(c->o, b);
    }
  }
}

enum { CLS_NONE = 4 }; /* past the end of the fragment */

static inline int cls_at(const uint32_t *cp, size_t n, size_t pos) {
  return pos < n ? (int)spr_unicode_class(cp[pos]) : CLS_NONE;
}

/* The GPT-2 pre-tokenizer, as llama.cpp's unicode_regex_split_custom_gpt2:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Calls bpe_word for each match, in order. */
static void gpt2_split(struct bpe_ctx *c, const uint32_t *cp, size_t n) {
  size_t start = 0, pos = 0;
#define EMIT(end)                                            \
  do {                                                       \
    if ((end) > start) bpe_word(c, cp + start, (end)-start); \
    start = pos = (end);                                     \
  } while (0)
  while (pos < n) {
    const uint32_t ch = cp[pos];
    if (ch == '\'' && pos + 1 < n) {
      const uint32_t a = cp[pos + 1];
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        EMIT(pos + 2);
        continue;
      }
      if (pos + 2 < n) {
        const uint32_t b = cp[pos + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
          EMIT(pos + 3);
          continue;
        }
      }
    }
    const int c2 = ch == ' ' ? cls_at(cp, n, pos + 1) : cls_at(cp, n, pos);
    if (c2 == SPR_UCLASS_LETTER || c2 == SPR_UCLASS_NUMBER || c2 == SPR_UCLASS_OTHER) {
      size_t e = pos + (ch == ' ');
      while (cls_at(cp, n, e) == c2) e++;
      EMIT(e);
      continue;
    }
    size_t ws = 0;
    while (cls_at(cp, n, pos + ws) == SPR_UCLASS_SPACE) ws++;
    if (ws > 1 && pos + ws < n) { /* \s+(?!\S): leave the last space to the next word */
      EMIT(pos + ws - 1);
      continue;
    }
    if (ws > 0) {
      EMIT(pos + ws);
      continue;
    }
    EMIT(pos + 1); /* unreachable: every code point has a class */
  }
#undef EMIT
}

static void bpe_fragment(struct bpe_ctx *c, const uint8_t *s, size_t n, uint32_t *cpts) {
  size_t ncp = 0;
  for (size_t i = 0; i < n;) {
    size_t adv;
    cpts[ncp++] = spr_utf8_decode(s + i, n - i, &adv);
    i += adv;
  }
  gpt2_split(c, cpts, ncp);
}

/* ---- special tokens in text ------------------------------------------------------ */

static size_t find_bytes(const uint8_t *hay, size_t hn, const uint8_t *needle, size_t nn) {
  if (nn == 0 || nn > hn) return SIZE_MAX;
  const uint8_t *p = hay, *last = hay + (hn - nn);
  while (p <= last) {
    p = memchr(p, needle[0], (size_t)(last - p) + 1);
    if (p == NULL) return SIZE_MAX;
    if (memcmp(p + 1, needle + 1, nn - 1) == 0) return (size_t)(p - hay);
    p++;
  }
  return SIZE_MAX;
}

/* Splits text into raw fragments and special tokens, as llama.cpp's
 * tokenizer_st_partition: for each special token (longest first), every
 * non-overlapping occurrence inside the remaining raw fragments, left to
 * right, becomes its own fragment. The list starts at f[0]. */
static void split_special(const struct spr_tokenizer *t, const uint8_t *s, size_t len, bool parse_special,
                          struct frag *f) {
  uint32_t nf = 1;
  f[0] = (struct frag){0, (uint32_t)len, -1, -1};
  for (uint32_t k = 0; k < t->n_special; k++) {
    const int32_t id = t->special[k];
    if (!parse_special && t->tok_type[id] != SPR_TOKEN_TYPE_USER_DEFINED) continue;
    const uint8_t *tt = t->base + t->tok_off[id];
    const uint32_t tl = t->tok_len[id];
    for (int32_t i = 0; i != -1; i = f[i].next) {
      while (f[i].tok < 0) {
        const size_t m = find_bytes(s + f[i].off, f[i].len, tt, tl);
        if (m == SIZE_MAX) break;
        const uint32_t rest = f[i].len - (uint32_t)m - tl;
        int32_t tok_frag = i;
        if (m > 0) { /* keep the left part in i, the token goes after it */
          tok_frag = (int32_t)nf++;
          f[tok_frag].next = f[i].next;
          f[i].next = tok_frag;
          f[i].len = (uint32_t)m;
        }
        f[tok_frag].off = f[i].off + (uint32_t)m;
        f[tok_frag].len = tl;
        f[tok_frag].tok = id;
        i = tok_frag;
        if (rest == 0) break;
        const int32_t r = (int32_t)nf++;
        f[r] = (struct frag){f[i].off + tl, rest, -1, f[i].next};
        f[i].next = r;
        i = r; /* keep searching in the right part */
      }
    }
  }
}

/* ---- entry points --------------------------------------------------------------- */

enum spr_status spr_tokenizer_encode_ex(const struct spr_tokenizer *t, const char *text, size_t len, uint32_t flags,
                                        int32_t *tokens, size_t max_tokens, size_t *n_tokens, void *work,
                                        size_t work_bytes) {
  if (t == NULL || t->n_vocab == 0 || n_tokens == NULL || (text == NULL && len > 0) ||
      (tokens == NULL && max_tokens > 0) || len > SPR_TOKENIZER_MAX_TEXT)
    return SPR_STATUS_INVALID_ARGUMENT;
  if (flags & ~(uint32_t)(SPR_TOKENIZE_ADD_BOS | SPR_TOKENIZE_ADD_EOS | SPR_TOKENIZE_PARSE_SPECIAL))
    return SPR_STATUS_INVALID_ARGUMENT;
  struct work_layout w;
  if (!plan_work(t, len, &w) || work_bytes < w.total || (work == NULL && w.total > 0))
    return SPR_STATUS_INVALID_ARGUMENT;
  if (((uintptr_t)work & (SPR_TOKENIZER_ALIGN - 1)) != 0) return SPR_STATUS_MISALIGNED;
  if ((flags & SPR_TOKENIZE_ADD_BOS) && t->bos == SPR_TOKEN_NONE) return SPR_STATUS_UNSUPPORTED;
  if ((flags & SPR_TOKENIZE_ADD_EOS) && t->eos == SPR_TOKEN_NONE) return SPR_STATUS_UNSUPPORTED;

  *n_tokens = 0;
  struct out o = {tokens, max_tokens, 0};
  if (flags & SPR_TOKENIZE_ADD_BOS) push(&o, t->bos);
  if (len > 0) {
    uint8_t *wb = (uint8_t *)work;
    const uint8_t *s = (const uint8_t *)text;
    struct sym *sym = (struct sym *)(void *)(wb + w.sym);
    int32_t *heap = (int32_t *)(void *)(wb + w.heap);
    const bool parse_special = (flags & SPR_TOKENIZE_PARSE_SPECIAL) != 0;
    struct frag whole = {0, (uint32_t)len, -1, -1};
    struct frag *f = &whole;
    if (t->n_user_defined > 0 || (parse_special && t->n_special > 0)) {
      f = (struct frag *)(void *)(wb + w.frag);
      split_special(t, s, len, parse_special, f);
    }
    struct bpe_ctx bc = {t, wb + w.b, sym, heap, &o};
    bool prev_special = true;
    for (int32_t i = 0; i != -1; i = f[i].next) {
      if (f[i].tok >= 0) {
        push(&o, f[i].tok);
        prev_special = true;
        continue;
      }
      if (t->kind == SPR_TOKENIZER_SPM) {
        const enum spr_status st =
            spm_fragment(t, s + f[i].off, f[i].len, t->add_space_prefix && prev_special, wb + w.a, sym, heap, &o);
        if (st != SPR_STATUS_OK) return st;
      } else {
        bpe_fragment(&bc, s + f[i].off, f[i].len, (uint32_t *)(void *)(wb + w.a));
      }
      prev_special = false;
    }
  }
  if (flags & SPR_TOKENIZE_ADD_EOS) push(&o, t->eos);
  *n_tokens = o.n;
  return o.n > max_tokens ? SPR_STATUS_CAPACITY : SPR_STATUS_OK;
}

enum spr_status spr_tokenizer_encode(const struct spr_tokenizer *t, const char *text, size_t len, bool add_bos,
                                     int32_t *tokens, size_t max_tokens, size_t *n_tokens, void *work,
                                     size_t work_bytes) {
  return spr_tokenizer_encode_ex(t, text, len, add_bos ? SPR_TOKENIZE_ADD_BOS : 0u, tokens, max_tokens, n_tokens, work,
                                 work_bytes);
}
