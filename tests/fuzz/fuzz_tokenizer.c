/* tests/fuzz/fuzz_tokenizer.c — encode arbitrary bytes and decode arbitrary
 * token ids with real vocabularies.
 *
 * Vocabularies (loaded once): the bundled models/llm-kjv.gguf (SentencePiece),
 * the llama test fixture tests/fixtures/llama/mqa_tied_f16.gguf, and when
 * ../shared is present llama.cpp's ggml-vocab-llama-spm.gguf and
 * ggml-vocab-gpt-2.gguf (byte-level BPE with the GPT-2 pre-tokenizer).
 *
 * Input: byte 0 picks the vocabulary (low bits) and the encode flags and
 * token budget (high bits); the rest is the text. The same bytes, read as
 * u32 words, become token ids in [-1, n_vocab] for decode and piece (so the
 * out-of-range ids -1 and n_vocab occur). Work and token buffers are
 * allocated at exactly the documented sizes, so ASan sees any overrun.
 * Checked promises: every id encode returns is in the vocabulary; CAPACITY
 * reports the full count; decode refuses an out-of-range id; decode's size
 * query matches what it writes; decode(encode(s)) == s for valid UTF-8 s
 * without special-token parsing or BOS (SentencePiece: without U+2581 in s,
 * which encode cannot tell from an escaped space; llama.cpp's vocab only,
 * whose byte tokens cover every byte). */
#include <stdbool.h>

#include "fuzz_common.h"
#include "runtime/tokenizer.h"

enum { MAX_VOCABS = 4 };

struct vocab {
  void *blob;
  struct spr_gguf g;
  struct spr_tokenizer t;
  void *mem;
  bool round_trip; /* decode(encode(s)) == s is promised for valid UTF-8 */
};

static struct vocab g_vocab[MAX_VOCABS];
static int g_n_vocab;

static void add_vocab(const char *path, bool round_trip) {
  if (g_n_vocab >= MAX_VOCABS) return;
  struct vocab *v = &g_vocab[g_n_vocab];
  size_t size = 0;
  v->blob = spr_fuzz_read_file(path, &size);
  if (v->blob == NULL) return;
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (spr_gguf_parse(v->blob, size, &v->g, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err.msg);
    abort();
  }
  const size_t bytes = spr_tokenizer_bytes(&v->g);
  if (posix_memalign(&v->mem, 64, bytes ? bytes : 64) != 0 ||
      spr_tokenizer_init(&v->t, v->mem, bytes, &v->g, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "fuzz_tokenizer: %s: tokenizer: %s\n", path, err.msg);
    abort();
  }
  v->round_trip = round_trip;
  g_n_vocab++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  add_vocab(SPR_SOURCE_DIR "/models/llm-kjv.gguf", false);
  add_vocab(SPR_SOURCE_DIR "/tests/fixtures/llama/mqa_tied_f16.gguf", false);
  add_vocab(SPR_SHARED_DIR "/data/tokenizers/ggml-vocab-llama-spm.gguf", true);
  add_vocab(SPR_SHARED_DIR "/data/tokenizers/ggml-vocab-gpt-2.gguf", true);
  if (g_n_vocab == 0) {
    fprintf(stderr, "fuzz_tokenizer: no vocabulary found under %s\n", SPR_SOURCE_DIR);
    abort();
  }
  return 0;
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static bool valid_utf8(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    size_t k;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      k = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      k = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      k = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t j = 1; j <= k; j++) {
      if (i + j >= n || (s[i + j] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += k + 1;
  }
  return true;
}

static bool has_visible_space(const uint8_t *s, size_t n) {
  for (size_t i = 0; i + 2 < n; i++) {
    if (s[i] == 0xe2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return true;
  }
  return false;
}

static void check_decode(const struct spr_tokenizer *t, const int32_t *ids, size_t n, bool expect_ok) {
  size_t need = 0;
  enum spr_status s = spr_tokenizer_decode(t, ids, n, NULL, 0, &need);
  if (!expect_ok) {
    SPR_FUZZ_REQUIRE(s == SPR_STATUS_INVALID_ARGUMENT, "decode of an out-of-range id gave %s", spr_status_name(s));
    return;
  }
  SPR_FUZZ_REQUIRE(s == SPR_STATUS_OK || s == SPR_STATUS_CAPACITY, "decode size query: %s", spr_status_name(s));
  char *buf = malloc(need ? need : 1);
  size_t got = 0;
  s = spr_tokenizer_decode(t, ids, n, need ? buf : NULL, need, &got);
  SPR_FUZZ_REQUIRE(s == SPR_STATUS_OK && got == need, "decode into %zu bytes: %s, wrote %zu", need, spr_status_name(s),
                   got);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const struct vocab *v = &g_vocab[data[0] % g_n_vocab];
  const struct spr_tokenizer *t = &v->t;
  const uint32_t V = spr_tokenizer_n_vocab(t);
  const uint8_t *text = data + 1;
  const size_t len = size - 1;
  uint32_t flags = 0;
  if ((data[0] & 0x10) && spr_tokenizer_bos(t) != SPR_TOKEN_NONE) flags |= SPR_TOKENIZE_ADD_BOS;
  if ((data[0] & 0x20) && spr_tokenizer_eos(t) != SPR_TOKEN_NONE) flags |= SPR_TOKENIZE_ADD_EOS;
  if (data[0] & 0x40) flags |= SPR_TOKENIZE_PARSE_SPECIAL;
  const bool small_budget = (data[0] & 0x80) != 0;

  /* encode */
  const size_t wb = spr_tokenizer_work_bytes(t, len);
  void *work = NULL;
  if (wb > 0 && posix_memalign(&work, SPR_TOKENIZER_ALIGN, wb) != 0) return 0;
  const size_t max = small_budget ? len / 2 : 3 * len + 2;
  int32_t *tok = malloc((max ? max : 1) * sizeof *tok);
  size_t n = 0;
  enum spr_status s = spr_tokenizer_encode_ex(t, (const char *)text, len, flags, max ? tok : NULL, max, &n, work, wb);
  SPR_FUZZ_REQUIRE(s == SPR_STATUS_OK || s == SPR_STATUS_CAPACITY || s == SPR_STATUS_BAD_INPUT,
                   "encode of %zu bytes: %s", len, spr_status_name(s));
  SPR_FUZZ_REQUIRE(s != SPR_STATUS_CAPACITY || n > max, "CAPACITY with %zu of %zu tokens", n, max);
  SPR_FUZZ_REQUIRE(s != SPR_STATUS_OK || n <= max, "OK with %zu of %zu tokens", n, max);
  if (s == SPR_STATUS_OK || s == SPR_STATUS_CAPACITY) {
    const size_t written = n < max ? n : max;
    for (size_t i = 0; i < written; i++)
      SPR_FUZZ_REQUIRE(tok[i] >= 0 && (uint32_t)tok[i] < V, "encode returned id %d (vocab %u)", tok[i], V);
    check_decode(t, tok, written, true);
    if (s == SPR_STATUS_OK && flags == 0 && v->round_trip && valid_utf8(text, len) &&
        !(spr_tokenizer_kind(t) == SPR_TOKENIZER_SPM && has_visible_space(text, len))) {
      char *back = malloc(len + 1);
      size_t got = 0;
      s = spr_tokenizer_decode(t, tok, n, back, len + 1, &got);
      SPR_FUZZ_REQUIRE(s == SPR_STATUS_OK && got == len && memcmp(back, text, len) == 0,
                       "decode(encode(s)) != s for %zu bytes (%zu back, %s)", len, got, spr_status_name(s));
      free(back);
    }
  }
  free(tok);
  free(work);

  /* decode / piece of ids from the same bytes, -1 and n_vocab included */
  const size_t n_ids = len / 4;
  if (n_ids > 0) {
    int32_t *ids = malloc(n_ids * sizeof *ids);
    bool all_ok = true;
    for (size_t i = 0; i < n_ids; i++) {
      uint32_t u;
      memcpy(&u, text + 4 * i, 4);
      ids[i] = (int32_t)(u % (V + 2)) - 1;
      all_ok = all_ok && ids[i] >= 0 && (uint32_t)ids[i] < V;
      char piece[8];
      size_t pn = 0;
      s = spr_tokenizer_piece(t, ids[i], piece, sizeof piece, &pn);
      if (ids[i] < 0 || (uint32_t)ids[i] >= V)
        SPR_FUZZ_REQUIRE(s == SPR_STATUS_INVALID_ARGUMENT, "piece of id %d: %s", ids[i], spr_status_name(s));
      else
        SPR_FUZZ_REQUIRE(s == SPR_STATUS_OK || (s == SPR_STATUS_CAPACITY && pn > sizeof piece), "piece of id %d: %s",
                         ids[i], spr_status_name(s));
    }
    check_decode(t, ids, n_ids, all_ok);
    free(ids);
  }
  return 0;
}
