/* tests/unit/test_hostile.c — hostile inputs through the public API: each gets
 * its documented status and a message that says what was wrong.
 *
 * Covered here (what other tests already cover is not repeated: ids out of
 * range and context overflow in spr_llm_eval, ctx beyond the model and sinks
 * without a window are in test_llm.c; a misaligned or non-GGUF blob and
 * threads 0 / 100000 in spr_plan are in test_session.c; GGUF structure in
 * test_gguf_reader.c; tokenizer metadata in test_tokenizer.c):
 *   - images: 0x0, negative, 100000x100000 (refused before any pixel is
 *     read), a channel count the model does not take, a wrong output size;
 *   - an empty vocabulary; a vocabulary and an embedding that disagree;
 *   - tensors whose shapes disagree with the metadata (ViT and llama);
 *   - NaN and Inf in f32 and f16 weights: loads by default, refused with
 *     check_finite, naming the tensor and the element;
 *   - configurations: threads 0 and 10000 in spr_session_create, ctx 0 (the
 *     model's default), negative ctx, batch beyond ctx, negative window;
 *   - prompts: non-UTF-8 bytes tokenize into valid ids and evaluate; a
 *     token budget too small is CAPACITY; token pieces of ids -1 and n_vocab
 *     are refused; evaluating ids out of range is BAD_INPUT and a prompt
 *     longer than the context CAPACITY, the session unchanged. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops/common/fp16.h"
#include "sparrow/llm.h"
#include "sparrow/sparrow.h"
#include "sparrow/vision.h"
#include "support/test_util.h"
#include "support/tiny_models.h"

#include <time.h>

static uint64_t spr_test_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the machine may be shared */
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- rewriting a model: drop/replace KVs, change one tensor ------------------------- */

struct edit {
  const char *drop[4];                    /* keys left out */
  void (*add)(struct spr_gguf_writer *w); /* extra KVs (may be NULL) */
  const char *tensor;                     /* tensor to change (NULL: none) */
  uint32_t n_dims;                        /* its new shape (0: keep) */
  int64_t ne[4];
  const void *data; /* its new data (NULL: keep, same size) */
};

/* A 64-byte aligned copy of blob with the edit applied (free() it). */
static void *rewrite(const void *blob, size_t size, const struct edit *e, size_t *out_size) {
  struct spr_gguf g;
  assert_int_equal(spr_gguf_parse(blob, size, &g, NULL), SPR_STATUS_OK);
  struct spr_gguf_writer *w = NULL;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  for (uint64_t i = 0; i < g.n_kv; i++) {
    struct spr_gguf_kv kv;
    assert_int_equal(spr_gguf_kv_at(&g, i, &kv), SPR_STATUS_OK);
    bool keep = true;
    for (int d = 0; d < 4; d++) keep = keep && !(e->drop[d] != NULL && spr_gguf_str_eq(kv.key, e->drop[d]));
    if (keep) spr_gguf_writer_copy_kv(w, &kv);
  }
  if (e->add != NULL) e->add(w);
  char name[SPR_GGUF_MAX_NAME + 1];
  for (uint64_t i = 0; i < g.n_tensors; i++) {
    struct spr_gguf_tensor t;
    assert_int_equal(spr_gguf_tensor_at(&g, i, &t), SPR_STATUS_OK);
    memcpy(name, t.name.ptr, (size_t)t.name.len);
    name[t.name.len] = '\0';
    const bool hit = e->tensor != NULL && strcmp(name, e->tensor) == 0;
    const uint32_t nd = hit && e->n_dims ? e->n_dims : t.n_dims;
    const int64_t *ne = hit && e->n_dims ? e->ne : t.ne;
    spr_gguf_writer_add_tensor(w, name, t.type, nd, ne, hit && e->data ? e->data : t.data);
  }
  void *mem = NULL;
  size_t n = 0;
  assert_int_equal(spr_gguf_writer_write_mem(w, &mem, &n, NULL), SPR_STATUS_OK);
  spr_gguf_writer_destroy(w);
  void *out = spr_test_aligned_alloc(n);
  memcpy(out, mem, n);
  free(mem);
  *out_size = n;
  return out;
}

/* Loads (and when that works, plans) blob; returns the first failing status
 * and its message in err. */
static enum spr_status load_and_plan(const void *blob, size_t size, bool check_finite, struct spr_error *err) {
  const struct spr_load_options opt = {NULL, check_finite};
  struct spr_model *m = NULL;
  err->msg[0] = '\0';
  enum spr_status s = spr_model_load_blob(blob, size, &opt, &m, err);
  if (s != SPR_STATUS_OK) {
    assert_null(m);
    return s;
  }
  struct spr_plan plan;
  s = spr_plan(m, NULL, &plan, err);
  spr_model_free(m);
  return s;
}

static void expect(enum spr_status got, enum spr_status want, const struct spr_error *err, const char *text) {
  if (got != want) fail_msg("got %s (%s), want %s", spr_status_name(got), err->msg, spr_status_name(want));
  if (text != NULL && strstr(err->msg, text) == NULL) fail_msg("message '%s' lacks '%s'", err->msg, text);
  printf("  %-16s %s\n", spr_status_name(got), got == SPR_STATUS_OK ? "" : err->msg);
}

static void *tiny_vit(enum spr_dtype type, size_t *size) {
  struct spr_tiny_vit c;
  spr_tiny_vit_defaults(&c);
  c.linear_type = type;
  void *blob;
  assert_int_equal(spr_tiny_vit_write(&c, &blob, size), SPR_STATUS_OK);
  return blob;
}

static void *tiny_llama(size_t *size) {
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  void *blob;
  assert_int_equal(spr_tiny_llama_write(&c, &blob, size), SPR_STATUS_OK);
  return blob;
}

/* ---- images ----------------------------------------------------------------------------- */

static void test_images(void **state) {
  (void)state;
  size_t size;
  void *blob = tiny_vit(SPR_DTYPE_F32, &size);
  struct spr_model *m = NULL;
  struct spr_error err;
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  float out[16 * 16 * 3];
  const uint8_t px[12] = {0};
  expect(spr_vision_preprocess(m, px, 0, 0, 3, out, 768, &err), SPR_STATUS_BAD_INPUT, &err, "empty (0x0)");
  expect(spr_vision_preprocess(m, px, -1, 4, 3, out, 768, &err), SPR_STATUS_BAD_INPUT, &err, "empty");
  /* the pixels are never read: the size is checked first */
  expect(spr_vision_preprocess(m, px, 100000, 100000, 3, out, 768, &err), SPR_STATUS_BAD_INPUT, &err,
         "100000x100000 is larger than the 16384-pixel limit");
  expect(spr_vision_preprocess(m, px, 2, 2, 1, out, 768, &err), SPR_STATUS_BAD_INPUT, &err,
         "image has 1 channels, the model takes 3");
  expect(spr_vision_preprocess(m, px, 2, 2, 3, out, 767, &err), SPR_STATUS_INVALID_ARGUMENT, &err, "need 768");
  expect(spr_vision_preprocess(m, px, 2, 2, 3, out, 768, &err), SPR_STATUS_OK, &err, NULL);
  spr_model_free(m);
  free(blob);
}

/* ---- vocabularies ---------------------------------------------------------------------- */

static void add_empty_vocab(struct spr_gguf_writer *w) {
  spr_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", NULL, 0);
  spr_gguf_writer_add_arr_f32(w, "tokenizer.ggml.scores", NULL, 0);
  spr_gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", NULL, 0);
}

static void test_vocab(void **state) {
  (void)state;
  size_t size, n;
  void *blob = tiny_llama(&size);
  struct spr_error err;
  const struct edit empty = {{"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", NULL},
                             add_empty_vocab,
                             NULL,
                             0,
                             {0},
                             NULL};
  void *bad = rewrite(blob, size, &empty, &n);
  expect(load_and_plan(bad, n, false, &err), SPR_STATUS_BAD_METADATA, &err, "empty vocab");
  free(bad);
  /* 300 tokens in the vocab, 299 rows in the embedding (and the output) */
  float *rows = calloc(32 * 299, sizeof(float));
  const struct edit short_embd = {{NULL}, NULL, "token_embd.weight", 2, {32, 299, 1, 1}, rows};
  bad = rewrite(blob, size, &short_embd, &n);
  expect(load_and_plan(bad, n, false, &err), SPR_STATUS_BAD_SHAPE, &err, "the tokenizer has 300 tokens");
  free(bad);
  free(rows);
  free(blob);
}

/* ---- shapes against metadata ----------------------------------------------------------- */

static void add_wide_vit(struct spr_gguf_writer *w) {
  spr_gguf_writer_add_u32(w, "vit.embedding_length", 64);
}

static void test_shapes(void **state) {
  (void)state;
  size_t size, n;
  struct spr_error err;
  void *blob = tiny_vit(SPR_DTYPE_F32, &size);
  /* the metadata says 64 wide, the tensors are 32 wide */
  const struct edit wide = {{"vit.embedding_length", NULL}, add_wide_vit, NULL, 0, {0}, NULL};
  void *bad = rewrite(blob, size, &wide, &n);
  expect(load_and_plan(bad, n, false, &err), SPR_STATUS_BAD_SHAPE, &err, "tensor patch_embd.weight has shape");
  free(bad);
  /* one projection one row short */
  float *qkv = calloc(32 * 95, sizeof(float));
  const struct edit short_qkv = {{NULL}, NULL, "blk.1.attn_qkv.weight", 2, {32, 95, 1, 1}, qkv};
  bad = rewrite(blob, size, &short_qkv, &n);
  expect(load_and_plan(bad, n, false, &err), SPR_STATUS_BAD_SHAPE, &err, "blk.1.attn_qkv.weight has shape [32,95");
  free(bad);
  free(qkv);
  free(blob);

  blob = tiny_llama(&size);
  float *embd = calloc(33 * 300, sizeof(float));
  const struct edit wide_embd = {{NULL}, NULL, "token_embd.weight", 2, {33, 300, 1, 1}, embd};
  bad = rewrite(blob, size, &wide_embd, &n);
  expect(load_and_plan(bad, n, false, &err), SPR_STATUS_BAD_SHAPE, &err, "token_embd.weight must be {32, n_vocab}");
  free(bad);
  free(embd);
  float *k = calloc(32 * 8, sizeof(float));
  const struct edit small_k = {{NULL}, NULL, "blk.0.attn_k.weight", 2, {32, 8, 1, 1}, k};
  bad = rewrite(blob, size, &small_k, &n);
  expect(load_and_plan(bad, n, false, &err), SPR_STATUS_BAD_SHAPE, &err, "blk.0.attn_k.weight has shape [32,8");
  free(bad);
  free(k);
  free(blob);
}

/* ---- NaN / Inf in weights -------------------------------------------------------------- */

static void test_non_finite(void **state) {
  (void)state;
  size_t size, n;
  struct spr_error err;
  void *blob = tiny_vit(SPR_DTYPE_F32, &size);
  struct spr_gguf g;
  assert_int_equal(spr_gguf_parse(blob, size, &g, NULL), SPR_STATUS_OK);
  struct spr_gguf_tensor t;
  assert_int_equal(spr_gguf_find_tensor(&g, "blk.0.ffn_up.weight", &t), SPR_STATUS_OK);
  float *w = malloc(t.nbytes);
  memcpy(w, t.data, t.nbytes);
  w[5] = NAN;
  const struct edit nan_w = {{NULL}, NULL, "blk.0.ffn_up.weight", 0, {0}, w};
  void *bad = rewrite(blob, size, &nan_w, &n);
  expect(load_and_plan(bad, n, false, &err), SPR_STATUS_OK, &err, NULL); /* the scan is opt-in */
  expect(load_and_plan(bad, n, true, &err), SPR_STATUS_NOT_FINITE, &err,
         "tensor blk.0.ffn_up.weight holds a non-finite value at element 5");
  free(bad);
  w[5] = 0.0f;
  w[t.nbytes / 4 - 1] = -INFINITY;
  bad = rewrite(blob, size, &nan_w, &n);
  expect(load_and_plan(bad, n, true, &err), SPR_STATUS_NOT_FINITE, &err, "at element 2047");
  free(bad);
  free(w);
  free(blob);

  blob = tiny_vit(SPR_DTYPE_F16, &size);
  assert_int_equal(spr_gguf_parse(blob, size, &g, NULL), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_find_tensor(&g, "head.weight", &t), SPR_STATUS_OK);
  assert_int_equal(t.type, SPR_DTYPE_F16);
  uint16_t *h = malloc(t.nbytes);
  memcpy(h, t.data, t.nbytes);
  h[17] = 0x7c00; /* +Inf */
  const struct edit inf_h = {{NULL}, NULL, "head.weight", 0, {0}, h};
  bad = rewrite(blob, size, &inf_h, &n);
  expect(load_and_plan(bad, n, true, &err), SPR_STATUS_NOT_FINITE, &err,
         "tensor head.weight holds a non-finite value at element 17");
  free(bad);
  free(h);
  expect(load_and_plan(blob, size, true, &err), SPR_STATUS_OK, &err, NULL); /* the good model passes the scan */
  free(blob);
}

/* ---- configurations ----------------------------------------------------------------------- */

static void test_configs(void **state) {
  (void)state;
  size_t size;
  void *blob = tiny_llama(&size);
  struct spr_model *m = NULL;
  struct spr_error err;
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  struct spr_config cfg;
  spr_config_init(&cfg);
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  uint8_t *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  const int threads[2] = {0, 10000};
  for (int i = 0; i < 2; i++) {
    cfg.threads = threads[i];
    expect(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_INVALID_ARGUMENT, &err,
           "threads must be 1..256");
    assert_null(s);
  }
  spr_config_init(&cfg);
  /* ctx 0 is the model's default: min(context_length 64, 2048) */
  struct spr_plan p0, p64;
  cfg.ctx = 0;
  assert_int_equal(spr_plan(m, &cfg, &p0, &err), SPR_STATUS_OK);
  cfg.ctx = 64;
  assert_int_equal(spr_plan(m, &cfg, &p64, &err), SPR_STATUS_OK);
  assert_int_equal(p0.arena_bytes, p64.arena_bytes);
  cfg.ctx = -1;
  expect(spr_plan(m, &cfg, &p0, &err), SPR_STATUS_INVALID_ARGUMENT, &err, "must not be negative");
  cfg.ctx = 1000000;
  expect(spr_plan(m, &cfg, &p0, &err), SPR_STATUS_UNSUPPORTED, &err, "exceeds the model's context length 64");
  cfg.ctx = 8;
  cfg.batch = 9;
  expect(spr_plan(m, &cfg, &p0, &err), SPR_STATUS_INVALID_ARGUMENT, &err, "batch 9 exceeds the context 8");
  cfg.batch = 0;
  cfg.window = -4;
  expect(spr_plan(m, &cfg, &p0, &err), SPR_STATUS_INVALID_ARGUMENT, &err, "window");
  free(arena);
  spr_model_free(m);
  free(blob);
}

/* ---- prompts ------------------------------------------------------------------------------- */

static void test_prompts(void **state) {
  (void)state;
  size_t size;
  void *blob = tiny_llama(&size);
  struct spr_model *m = NULL;
  struct spr_error err;
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  struct spr_llm_info li;
  assert_int_equal(spr_llm_info(m, &li), SPR_STATUS_OK);
  /* not UTF-8: lone continuation bytes, a truncated lead before a space,
   * an overlong form, a surrogate, bytes above U+10FFFF, NUL */
  static const char text[] = "\x80\xbf \xc7 \xe2\x96 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xff\xfe\x00 ok";
  const size_t len = sizeof text - 1;
  const size_t wb = spr_llm_tokenize_work_bytes(m, len);
  void *work = spr_test_aligned_alloc(wb);
  int32_t tok[128];
  size_t n = 0;
  assert_int_equal(spr_llm_tokenize(m, text, len, true, tok, 128, &n, work, wb), SPR_STATUS_OK);
  assert_true(n > 1 && n <= 128);
  for (size_t i = 0; i < n; i++) assert_true(tok[i] >= 0 && (uint32_t)tok[i] < li.n_vocab);
  /* every id decodes (as llama.cpp, a truncated lead byte takes the first
   * byte of an escaped space with it, so bytes need not come back as given) */
  char back[256];
  size_t used = 0;
  for (size_t i = 1; i < n; i++) {
    size_t k = 0;
    assert_int_equal(spr_llm_token_piece(m, tok[i], back + used, sizeof back - used, &k), SPR_STATUS_OK);
    used += k;
  }
  assert_true(used >= len && back[used - 2] == 'o' && back[used - 1] == 'k');
  size_t small = 0;
  assert_int_equal(spr_llm_tokenize(m, text, len, true, tok, 3, &small, work, wb), SPR_STATUS_CAPACITY);
  assert_int_equal(small, n);
  free(work);
  char piece[16];
  size_t k;
  assert_int_equal(spr_llm_token_piece(m, -1, piece, sizeof piece, &k), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_llm_token_piece(m, (int32_t)li.n_vocab, piece, sizeof piece, &k), SPR_STATUS_INVALID_ARGUMENT);

  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 64;
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  const float *lg = NULL;
  assert_int_equal(spr_llm_eval(s, tok, n, &lg), SPR_STATUS_OK);
  for (uint32_t i = 0; i < li.n_vocab; i++) assert_true(isfinite(lg[i]));
  /* ids out of range and a prompt longer than the context: the run-time
   * calls report a status only (their message is the status's description);
   * the session is unchanged and keeps working */
  const uint32_t pos = spr_llm_position(s);
  const int32_t bad_ids[] = {-1, (int32_t)li.n_vocab, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
    const int32_t two[2] = {tok[0], bad_ids[i]};
    const enum spr_status st = spr_llm_eval(s, two, 2, &lg);
    if (st != SPR_STATUS_BAD_INPUT) fail_msg("token id %d: %s", bad_ids[i], spr_status_name(st));
    assert_int_equal(spr_llm_position(s), pos);
  }
  int32_t longer[65];
  for (size_t i = 0; i < 65; i++) longer[i] = tok[i % n];
  assert_int_equal(spr_llm_eval(s, longer, 64 - pos + 1, &lg), SPR_STATUS_CAPACITY);
  assert_int_equal(spr_llm_position(s), pos);
  spr_llm_reset(s);
  assert_int_equal(spr_llm_eval(s, longer, 65, &lg), SPR_STATUS_CAPACITY);
  printf("ids out of range: %s (%s); prompt of 65 tokens in a context of 64: %s (%s)\n",
         spr_status_name(SPR_STATUS_BAD_INPUT), spr_status_describe(SPR_STATUS_BAD_INPUT),
         spr_status_name(SPR_STATUS_CAPACITY), spr_status_describe(SPR_STATUS_CAPACITY));
  assert_int_equal(spr_llm_eval(s, longer, 64, &lg), SPR_STATUS_OK);
  assert_int_equal(spr_llm_position(s), 64);
  for (uint32_t i = 0; i < li.n_vocab; i++) assert_true(isfinite(lg[i]));
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  free(blob);
}

/* ---- GGUF counts: the reader's limits bound its quadratic duplicate checks ------------- */

struct bytes {
  uint8_t *p;
  size_t n, cap;
};

static void put(struct bytes *b, const void *data, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = 2 * (b->n + n);
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

static void put_u32(struct bytes *b, uint32_t v) {
  put(b, &v, 4);
}
static void put_u64(struct bytes *b, uint64_t v) {
  put(b, &v, 8);
}

/* n distinct u8 KVs (keys "k000000"...) and m tensors f32 {8}, each 32 bytes. */
static void *many(uint64_t n_kv, uint64_t n_tensors, size_t *size) {
  struct bytes b = {NULL, 0, 0};
  put(&b, "GGUF", 4);
  put_u32(&b, 3);
  put_u64(&b, n_tensors);
  put_u64(&b, n_kv);
  char key[32]; /* room for any uint64 after the prefix (-Wformat-truncation) */
  for (uint64_t i = 0; i < n_kv; i++) {
    snprintf(key, sizeof key, "k%06llu", (unsigned long long)i);
    put_u64(&b, 7);
    put(&b, key, 7);
    put_u32(&b, 0); /* u8 */
    put(&b, "", 1);
  }
  for (uint64_t i = 0; i < n_tensors; i++) {
    snprintf(key, sizeof key, "t%06llu", (unsigned long long)i);
    put_u64(&b, 7);
    put(&b, key, 7);
    put_u32(&b, 1);
    put_u64(&b, 8);
    put_u32(&b, 0); /* f32 */
    put_u64(&b, 32 * i);
  }
  const size_t data = (b.n + 31) & ~(size_t)31;
  const size_t total = data + 32 * (size_t)n_tensors + 64 * 13; /* room for one more KV's worth */
  void *out = spr_test_aligned_alloc(total);
  memset(out, 0, total);
  memcpy(out, b.p, b.n);
  free(b.p);
  *size = total;
  return out;
}

static void test_gguf_counts(void **state) {
  (void)state;
  struct spr_error err;
  struct spr_gguf g;
  size_t size;
  void *blob = many(SPR_GGUF_MAX_KV, 4096, &size);
  const uint64_t t0 = spr_test_now_ns();
  expect(spr_gguf_parse(blob, size, &g, &err), SPR_STATUS_OK, &err, NULL);
  printf("  parse of %d KVs and 4096 tensors (every duplicate check): %.3f s of CPU\n", SPR_GGUF_MAX_KV,
         (double)(spr_test_now_ns() - t0) * 1e-9);
  free(blob);
  blob = many(SPR_GGUF_MAX_KV + 1, 0, &size);
  expect(spr_gguf_parse(blob, size, &g, &err), SPR_STATUS_BAD_COUNT, &err,
         "metadata_kv_count 4097 is above the reader's limit of 4096");
  free(blob);
  blob = many(0, SPR_GGUF_MAX_TENSORS + 1, &size);
  expect(spr_gguf_parse(blob, size, &g, &err), SPR_STATUS_BAD_COUNT, &err,
         "tensor_count 16385 is above the reader's limit of 16384");
  free(blob);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_images),      cmocka_unit_test(test_vocab),   cmocka_unit_test(test_shapes),
      cmocka_unit_test(test_non_finite),  cmocka_unit_test(test_configs), cmocka_unit_test(test_prompts),
      cmocka_unit_test(test_gguf_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
