/* tests/unit/test_llm_coreffn.c — core-neuron FFN sparsity on whole llama models.
 *
 *   - golden: the core sets Sparrow picks at prefill equal those of the
 *     independent PyTorch implementation (tools/reference/coreinfer_ref.py,
 *     tests/fixtures/coreinfer/NAME.golden.gguf: random f32/f16 models, the
 *     bundled llm-kjv.gguf, stories260K when ../shared exists; one prefill
 *     step and several), and the sparse decode logits after each continuation
 *     token match the reference's within 1e-4 (f32 KV cache); again with the
 *     model in the sparse layout (ffn_down_t), and with 2 threads;
 *   - beta 1.0 is bit-identical to dense (f32, q8_0, q4_0, sparse layout;
 *     1 and 2 threads);
 *   - a sparse decode step equals a dense step of a copy of the model whose
 *     non-core ffn_gate rows are zero, from the same KV cache (both layouts;
 *     f32 bit-identical, q8_0 within 1e-5: its sparse gate/up use the
 *     row-gathered ukernel's sum order);
 *   - ffn_down_t gives the logits of ffn_down within rounding (f32 weights);
 *   - 1 vs 2 threads bit-identical with sentence re-selection;
 *   - re-selection after a sentence end equals an explicit prefill of the
 *     sentence (core sets and logits, bit for bit);
 *   - the plan stays exact; bad settings are refused. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/session.h"
#include "sparrow/llm.h"
#include "support/llm_session.h"
#include "support/test_util.h"
#include "support/tiny_models.h"
#include "tools/sparrow/quantize.h"

#define FIXTURES SPR_SOURCE_DIR "/tests/fixtures/coreinfer"
#define TMP SPR_BINARY_DIR "/coreffn_tmp"

static void write_file(const char *path, const void *buf, size_t size) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, size, f), size);
  assert_int_equal(fclose(f), 0);
}

/* The tiny llama (f32) written to TMP/<name>.gguf; then converted to `type`,
 * in the sparse layout when asked. Returns the path (static buffer). */
static const char *tiny_file(const char *name, enum spr_dtype type, bool sparse_layout) {
  static char out[512];
  char base[512];
  if (system("mkdir -p '" TMP "'") != 0) fail_msg("cannot create " TMP);
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  void *blob;
  size_t size;
  assert_int_equal(spr_tiny_llama_write(&c, &blob, &size), SPR_STATUS_OK);
  snprintf(base, sizeof base, TMP "/%s-base.gguf", name);
  write_file(base, blob, size);
  free(blob);
  snprintf(out, sizeof out, TMP "/%s.gguf", name);
  const struct spr_quantize_opts o = {type, false, 1, NULL, sparse_layout, 0, 1 << 30};
  struct spr_error err;
  if (spr_quantize_file(base, out, &o, NULL, &err) != SPR_STATUS_OK) fail_msg("quantize: %s", err.msg);
  return out;
}

static void sparse_cfg(struct spr_config *cfg, float beta, int first, int last) {
  spr_config_init(cfg);
  cfg->ctx = 64;
  cfg->batch = 16;
  cfg->kv_f32 = 1;
  cfg->sparse_ffn_beta = beta;
  cfg->sparse_ffn_first = first;
  cfg->sparse_ffn_last = last;
}

static const int32_t k_prompt[10] = {1, 259, 261, 270, 5, 299, 42, 259, 262, 263};
static const int32_t k_cont[8] = {264, 40, 281, 290, 7, 259, 300 - 3, 266};

/* Logits of the prompt (one eval) then of each continuation token: (1 + n_cont) x V. */
static void run_seq(struct spr_test_llm *t, size_t V, float *out) {
  spr_llm_reset(t->session);
  const float *lg;
  assert_int_equal(spr_llm_eval(t->session, k_prompt, 10, &lg), SPR_STATUS_OK);
  memcpy(out, lg, V * sizeof(float));
  for (size_t i = 0; i < 8; i++) {
    assert_int_equal(spr_llm_eval(t->session, &k_cont[i], 1, &lg), SPR_STATUS_OK);
    memcpy(out + (i + 1) * V, lg, V * sizeof(float));
  }
}

/* ---- golden -------------------------------------------------------------------------------- */

static const char *shared_dir(void) {
  const char *env = getenv("SPR_SHARED_DIR");
  return env != NULL ? env : SPR_SHARED_DIR;
}

static bool golden_model(struct spr_gguf_str name, char *path, size_t len) {
  if (spr_gguf_str_eq(name, "stories260K")) {
    char bin[512], tok[512], cmd[4096];
    snprintf(bin, sizeof bin, "%s/models/stories260K.bin", shared_dir());
    snprintf(tok, sizeof tok, "%s/models/tok512.bin", shared_dir());
    if (access(bin, R_OK) != 0 || access(tok, R_OK) != 0 || access("/usr/bin/python3", X_OK) != 0) return false;
    if (system("mkdir -p '" TMP "'") != 0) fail_msg("cannot create " TMP);
    snprintf(path, len, TMP "/stories260K.gguf");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/convert/llama2c.py '%s' --tokenizer '%s' -o '%s' -q",
             SPR_SOURCE_DIR, bin, tok, path);
    if (system(cmd) != 0) fail_msg("conversion failed: %s", cmd);
    return true;
  }
  snprintf(path, len, "%s/%.*s", FIXTURES, (int)name.len, name.ptr);
  return true;
}

SPR_TEST_NO_VECTORIZE /* test_util.h */
    static void
    run_golden(const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", FIXTURES, file);
  size_t size = 0;
  void *gblob = spr_test_read_file(path, &size);
  assert_non_null(gblob);
  struct spr_gguf g;
  struct spr_error err;
  assert_int_equal(spr_gguf_parse(gblob, size, &g, &err), SPR_STATUS_OK);
  struct spr_gguf_str mname;
  assert_int_equal(spr_gguf_get_str(&g, "golden.model", &mname), SPR_STATUS_OK);
  char mpath[1024];
  if (!golden_model(mname, mpath, sizeof mpath)) {
    printf("  %s: skipped (../shared/models/stories260K.bin or python3 missing)\n", file);
    free(gblob);
    return;
  }
  float alpha, beta;
  uint32_t first, last, batch, n_prompt;
  assert_int_equal(spr_gguf_get_f32(&g, "golden.alpha", &alpha), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_get_f32(&g, "golden.beta", &beta), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_get_u32(&g, "golden.first", &first), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_get_u32(&g, "golden.last", &last), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_get_u32(&g, "golden.batch", &batch), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_get_u32(&g, "golden.n_prompt", &n_prompt), SPR_STATUS_OK);
  struct spr_gguf_tensor tt, lt;
  assert_int_equal(spr_gguf_find_tensor(&g, "tokens", &tt), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_find_tensor(&g, "logits", &lt), SPR_STATUS_OK);
  const int32_t *tokens = tt.data;
  const size_t T = (size_t)tt.ne[0], n_cont = T - n_prompt;
  const float *want = lt.data;

  /* the plain model and its sparse layout (f32, exact transposition) */
  if (system("mkdir -p '" TMP "'") != 0) fail_msg("cannot create " TMP);
  char layouts[2][1024];
  snprintf(layouts[0], sizeof layouts[0], "%s", mpath);
  snprintf(layouts[1], sizeof layouts[1], TMP "/golden-sparse-layout.gguf");
  const struct spr_quantize_opts qo = {SPR_DTYPE_F32, false, 1, NULL, true, 0, 1 << 30};
  if (spr_quantize_file(mpath, layouts[1], &qo, NULL, &err) != SPR_STATUS_OK) fail_msg("quantize: %s", err.msg);
  for (int li = 0; li < 2; li++) {
    struct spr_test_llm t;
    memset(&t, 0, sizeof t);
    t.model = spr_test_model_load(layouts[li]);
    struct spr_llm_info info;
    assert_int_equal(spr_llm_info(t.model, &info), SPR_STATUS_OK);
    const size_t V = info.n_vocab;
    for (int threads = 1; threads <= 2; threads++) {
      struct spr_config cfg;
      sparse_cfg(&cfg, beta, (int)first, (int)last);
      cfg.sparse_ffn_alpha = alpha;
      cfg.batch = (int)batch;
      cfg.ctx = (int)(T + 8 > batch ? T + 8 : batch);
      cfg.threads = threads;
      spr_test_llm_open(&t, &cfg);
      const float *lg;
      assert_int_equal(spr_llm_eval(t.session, tokens, n_prompt, &lg), SPR_STATUS_OK);
      for (uint32_t l = first; l <= last; l++) {
        char name[32];
        snprintf(name, sizeof name, "core.%u", l);
        struct spr_gguf_tensor ct;
        assert_int_equal(spr_gguf_find_tensor(&g, name, &ct), SPR_STATUS_OK);
        const int32_t *idx;
        uint32_t n;
        assert_int_equal(spr_llm_core_set(t.session, l, &idx, &n), SPR_STATUS_OK);
        if ((int64_t)n != ct.ne[0])
          fail_msg("%s layer %u: %u core neurons, reference %lld", file, l, n, (long long)ct.ne[0]);
        for (uint32_t i = 0; i < n; i++) {
          if (idx[i] != ((const int32_t *)ct.data)[i])
            fail_msg("%s layer %u: core[%u] = %d, reference %d", file, l, i, idx[i], ((const int32_t *)ct.data)[i]);
        }
      }
      for (size_t j = 0; j < n_cont; j++) {
        assert_int_equal(spr_llm_eval(t.session, &tokens[n_prompt + j], 1, &lg), SPR_STATUS_OK);
        const float *w = want + j * V;
        double scale = 0;
        for (size_t k = 0; k < V; k++) scale = fmax(scale, fabs((double)w[k]));
        for (size_t k = 0; k < V; k++) {
          if (!(fabs((double)lg[k] - (double)w[k]) <= 1e-4 * (1.0 + scale)))
            fail_msg("%s (%s, %d threads): sparse decode step %zu logit %zu: %.7g, reference %.7g", file,
                     li ? "ffn_down_t" : "ffn_down", threads, j, k, (double)lg[k], (double)w[k]);
        }
      }
      spr_test_llm_close(&t);
    }
    spr_model_free(t.model);
  }
  printf("  %-32s layers %u-%u: core sets and %zu sparse decode steps match (both layouts)\n", file, first, last,
         n_cont);
  free(gblob);
}

static void test_golden(void **state) {
  (void)state;
  DIR *d = opendir(FIXTURES);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const size_t len = strlen(e->d_name);
    if (len < 12 || strcmp(e->d_name + len - 12, ".golden.gguf") != 0) continue;
    run_golden(e->d_name);
    n++;
  }
  closedir(d);
  assert_true(n >= 4);
}

/* ---- beta 1 == dense ---------------------------------------------------------------------------- */

static void test_beta1_bit_identical(void **state) {
  (void)state;
  const struct {
    enum spr_dtype t;
    bool layout;
  } cases[] = {{SPR_DTYPE_F32, false},
               {SPR_DTYPE_Q8_0, false},
               {SPR_DTYPE_Q4_0, false},
               {SPR_DTYPE_Q8_0, true},
               {SPR_DTYPE_F32, true}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct spr_test_llm t;
    memset(&t, 0, sizeof t);
    t.model = spr_test_model_load(tiny_file("beta1", cases[c].t, cases[c].layout));
    struct spr_llm_info info;
    assert_int_equal(spr_llm_info(t.model, &info), SPR_STATUS_OK);
    const size_t V = info.n_vocab, n = 9 * V;
    float *dense = malloc(n * sizeof(float)), *sparse = malloc(n * sizeof(float));
    for (int threads = 1; threads <= 2; threads++) {
      struct spr_config cfg;
      sparse_cfg(&cfg, 0.0f, -1, -1);
      cfg.threads = threads;
      spr_test_llm_open(&t, &cfg);
      run_seq(&t, V, dense);
      spr_test_llm_close(&t);
      sparse_cfg(&cfg, 1.0f, 0, 1);
      cfg.threads = threads;
      spr_test_llm_open(&t, &cfg);
      run_seq(&t, V, sparse);
      spr_test_llm_close(&t);
      for (size_t i = 0; i < n; i++) {
        if (memcmp(&dense[i], &sparse[i], sizeof(float)) != 0)
          fail_msg("%s%s, %d threads: beta 1 step %zu logit %zu = %.9g, dense %.9g", spr_dtype_name(cases[c].t),
                   cases[c].layout ? " (sparse layout)" : "", threads, i / V, i % V, (double)sparse[i],
                   (double)dense[i]);
      }
    }
    free(dense), free(sparse);
    spr_model_free(t.model);
  }
}

/* ---- sparse step == dense step of the model with non-core gate rows zeroed ---------------------------- */

/* A copy of m's file whose blk.L.ffn_gate rows outside core[L] are zero (L in [first, last]). */
static struct spr_model *zeroed_copy(const struct spr_model *m, struct spr_test_llm *sparse, int first, int last,
                                     void **blob_out) {
  const struct spr_gguf *g = spr_model_gguf(m);
  struct spr_gguf_writer *w;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  for (uint64_t i = 0; i < g->n_kv; i++) {
    struct spr_gguf_kv kv;
    assert_int_equal(spr_gguf_kv_at(g, i, &kv), SPR_STATUS_OK);
    spr_gguf_writer_copy_kv(w, &kv);
  }
  void *copies[64];
  int n_copies = 0;
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    assert_int_equal(spr_gguf_tensor_at(g, i, &t), SPR_STATUS_OK);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)t.name.len, t.name.ptr);
    const void *data = t.data;
    int l = -1;
    char want[128];
    if (sscanf(name, "blk.%d.", &l) == 1) snprintf(want, sizeof want, "blk.%d.ffn_gate.weight", l);
    if (l >= first && l <= last && strcmp(name, want) == 0) {
      const int32_t *idx;
      uint32_t n;
      assert_int_equal(spr_llm_core_set(sparse->session, (uint32_t)l, &idx, &n), SPR_STATUS_OK);
      const size_t row = t.nbytes / (size_t)t.ne[1];
      uint8_t *z = calloc(1, t.nbytes);
      for (uint32_t k = 0; k < n; k++)
        memcpy(z + (size_t)idx[k] * row, (const uint8_t *)t.data + (size_t)idx[k] * row, row);
      copies[n_copies++] = z;
      data = z;
    }
    spr_gguf_writer_add_tensor(w, name, t.type, t.n_dims, t.ne, data);
  }
  void *buf;
  size_t size;
  struct spr_error err;
  assert_int_equal(spr_gguf_writer_write_mem(w, &buf, &size, &err), SPR_STATUS_OK);
  spr_gguf_writer_destroy(w);
  for (int i = 0; i < n_copies; i++) free(copies[i]);
  *blob_out = spr_test_aligned_alloc(size);
  memcpy(*blob_out, buf, size);
  free(buf);
  struct spr_model *z;
  if (spr_model_load_blob(*blob_out, size, NULL, &z, &err) != SPR_STATUS_OK) fail_msg("zeroed copy: %s", err.msg);
  return z;
}

/* Copies every layer's KV cache of a into b and b's position. */
static void copy_kv(struct spr_session *a, struct spr_session *b) {
  const struct spr_graph *ga = spr_session_graph(a), *gb = spr_session_graph(b);
  int copied = 0;
  for (int32_t i = 0; i < ga->n_tensors; i++) {
    const struct spr_tensor *ta = &ga->tensors[i];
    if (ta->role != SPR_ROLE_STATE || ta->name_len != 0 ||
        (strcmp(ta->name, "k_cache") != 0 && strcmp(ta->name, "v_cache") != 0))
      continue;
    for (int32_t j = 0; j < gb->n_tensors; j++) {
      const struct spr_tensor *tb = &gb->tensors[j];
      if (tb->role == SPR_ROLE_STATE && tb->name_len == 0 && tb->layer == ta->layer &&
          strcmp(tb->name, ta->name) == 0) {
        assert_int_equal(tb->nbytes, ta->nbytes);
        memcpy(tb->data, ta->data, ta->nbytes);
        copied++;
      }
    }
  }
  assert_true(copied >= 4);
  b->run.n_past = a->run.n_past;
}

static void test_sparse_equals_zeroed(void **state) {
  (void)state;
  const struct {
    enum spr_dtype t;
    bool layout;
  } cases[] = {{SPR_DTYPE_F32, false}, {SPR_DTYPE_Q8_0, false}, {SPR_DTYPE_F32, true}, {SPR_DTYPE_Q8_0, true}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct spr_test_llm a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.model = spr_test_model_load(tiny_file("zeroed", cases[c].t, cases[c].layout));
    struct spr_llm_info info;
    assert_int_equal(spr_llm_info(a.model, &info), SPR_STATUS_OK);
    const size_t V = info.n_vocab;
    struct spr_config cfg;
    sparse_cfg(&cfg, 0.4f, 0, 1);
    spr_test_llm_open(&a, &cfg);
    const float *la, *lb;
    assert_int_equal(spr_llm_eval(a.session, k_prompt, 10, &la), SPR_STATUS_OK);
    void *zblob;
    b.model = zeroed_copy(a.model, &a, 0, 1, &zblob);
    sparse_cfg(&cfg, 0.0f, -1, -1);
    spr_test_llm_open(&b, &cfg);
    copy_kv(a.session, b.session);
    for (size_t i = 0; i < 8; i++) {
      assert_int_equal(spr_llm_eval(a.session, &k_cont[i], 1, &la), SPR_STATUS_OK);
      assert_int_equal(spr_llm_eval(b.session, &k_cont[i], 1, &lb), SPR_STATUS_OK);
      /* f32: the same bits. Q8_0: gate/up go through the row-gathered
       * ukernel, whose block-sum order may differ from the dense GEMV's */
      const bool exact = cases[c].t == SPR_DTYPE_F32;
      for (size_t k = 0; k < V; k++) {
        if (exact ? memcmp(&la[k], &lb[k], sizeof(float)) != 0
                  : !(fabsf(la[k] - lb[k]) <= 1e-5f * (1.0f + fabsf(lb[k]))))
          fail_msg("%s%s: sparse step %zu logit %zu = %.9g, zeroed-gate dense %.9g", spr_dtype_name(cases[c].t),
                   cases[c].layout ? " (sparse layout)" : "", i, k, (double)la[k], (double)lb[k]);
      }
    }
    spr_test_llm_close(&a);
    spr_test_llm_close(&b);
    spr_model_free(a.model);
    spr_model_free(b.model);
    free(zblob);
  }
}

/* ---- ffn_down_t vs ffn_down ------------------------------------------------------------------------ */

static void test_layouts_agree(void **state) {
  (void)state;
  struct spr_test_llm t;
  memset(&t, 0, sizeof t);
  const size_t V = 300, n = 9 * V;
  float *out[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  for (int layout = 0; layout < 2; layout++) {
    t.model = spr_test_model_load(tiny_file("layouts", SPR_DTYPE_F32, layout == 1));
    struct spr_config cfg;
    sparse_cfg(&cfg, 0.0f, -1, -1); /* dense */
    spr_test_llm_open(&t, &cfg);
    run_seq(&t, V, out[layout]);
    spr_test_llm_close(&t);
    spr_model_free(t.model);
  }
  for (size_t i = 0; i < n; i++) {
    if (!(fabsf(out[0][i] - out[1][i]) <= 1e-5f * (1.0f + fabsf(out[0][i]))))
      fail_msg("ffn_down_t vs ffn_down: step %zu logit %zu: %.9g vs %.9g", i / V, i % V, (double)out[1][i],
               (double)out[0][i]);
  }
  free(out[0]), free(out[1]);
}

/* ---- threads and re-selection ---------------------------------------------------------------------- */

/* "the cat sat!" style tokens: the tiny vocabulary's byte token for '!' ends a sentence */
static size_t tokenize(const struct spr_model *m, const char *text, int32_t *tok, size_t max) {
  char work[8192];
  size_t n = 0;
  assert_int_equal(spr_llm_tokenize(m, text, strlen(text), false, tok, max, &n, work, sizeof work), SPR_STATUS_OK);
  return n;
}

static void test_threads_reselect(void **state) {
  (void)state;
  struct spr_test_llm t;
  memset(&t, 0, sizeof t);
  t.model = spr_test_model_load(tiny_file("threads", SPR_DTYPE_Q8_0, true));
  int32_t gen[32];
  const size_t n_gen = tokenize(t.model, " the cat sat on the mat! the cat", gen, 32);
  const size_t V = 300;
  float *out[2] = {malloc((n_gen + 1) * V * sizeof(float)), malloc((n_gen + 1) * V * sizeof(float))};
  for (int threads = 1; threads <= 2; threads++) {
    struct spr_config cfg;
    sparse_cfg(&cfg, 0.4f, 0, 1);
    cfg.sparse_ffn_reselect = 1;
    cfg.threads = threads;
    spr_test_llm_open(&t, &cfg);
    const float *lg;
    assert_int_equal(spr_llm_eval(t.session, k_prompt, 10, &lg), SPR_STATUS_OK);
    memcpy(out[threads - 1], lg, V * sizeof(float));
    for (size_t i = 0; i < n_gen; i++) {
      assert_int_equal(spr_llm_eval(t.session, &gen[i], 1, &lg), SPR_STATUS_OK);
      memcpy(out[threads - 1] + (i + 1) * V, lg, V * sizeof(float));
    }
    assert_int_equal(spr_llm_position(t.session), 10 + n_gen);
    spr_test_llm_close(&t);
  }
  assert_memory_equal(out[0], out[1], (n_gen + 1) * V * sizeof(float));
  free(out[0]), free(out[1]);
  spr_model_free(t.model);
}

static void test_reselect_equals_prefill(void **state) {
  (void)state;
  struct spr_test_llm a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.model = spr_test_model_load(tiny_file("reselect", SPR_DTYPE_F32, false));
  b.model = a.model;
  int32_t sent[32];
  const size_t n = tokenize(a.model, " the cat sat!", sent, 32);
  assert_true(n >= 3);
  char last[16];
  size_t k = 0;
  assert_int_equal(spr_llm_token_piece(a.model, sent[n - 1], last, sizeof last, &k), SPR_STATUS_OK);
  assert_true(k >= 1 && last[k - 1] == '!');
  struct spr_config cfg;
  sparse_cfg(&cfg, 0.4f, 0, 1);
  cfg.sparse_ffn_reselect = 1;
  spr_test_llm_open(&a, &cfg);
  cfg.sparse_ffn_reselect = 0;
  spr_test_llm_open(&b, &cfg);
  const float *la, *lb;
  assert_int_equal(spr_llm_eval(a.session, k_prompt, 10, &la), SPR_STATUS_OK);
  assert_int_equal(spr_llm_eval(b.session, k_prompt, 10, &lb), SPR_STATUS_OK);
  const int32_t *ia, *ib;
  uint32_t na, nb;
  assert_int_equal(spr_llm_core_set(a.session, 1, &ia, &na), SPR_STATUS_OK);
  int32_t before[64];
  memcpy(before, ia, na * sizeof(int32_t));
  const uint32_t n_before = na;
  /* a: the sentence token by token (sparse, then the '!' step re-selects); b: one prefill of it */
  for (size_t i = 0; i < n; i++) assert_int_equal(spr_llm_eval(a.session, &sent[i], 1, &la), SPR_STATUS_OK);
  assert_int_equal(spr_llm_eval(b.session, sent, n, &lb), SPR_STATUS_OK);
  assert_int_equal(spr_llm_position(a.session), spr_llm_position(b.session));
  assert_memory_equal(la, lb, 300 * sizeof(float));
  for (uint32_t l = 0; l <= 1; l++) {
    assert_int_equal(spr_llm_core_set(a.session, l, &ia, &na), SPR_STATUS_OK);
    assert_int_equal(spr_llm_core_set(b.session, l, &ib, &nb), SPR_STATUS_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof(int32_t));
  }
  assert_int_equal(spr_llm_core_set(a.session, 1, &ia, &na), SPR_STATUS_OK);
  assert_true(na != n_before || memcmp(ia, before, na * sizeof(int32_t)) != 0); /* it did re-select */
  /* the next steps agree too (same KV cache) */
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(spr_llm_eval(a.session, &k_cont[i], 1, &la), SPR_STATUS_OK);
    assert_int_equal(spr_llm_eval(b.session, &k_cont[i], 1, &lb), SPR_STATUS_OK);
    assert_memory_equal(la, lb, 300 * sizeof(float));
  }
  spr_test_llm_close(&a);
  spr_test_llm_close(&b);
  spr_model_free(a.model);
}

/* ---- plan and settings ------------------------------------------------------------------------------ */

static void test_plan_and_settings(void **state) {
  (void)state;
  struct spr_model *m = spr_test_model_load(tiny_file("plan", SPR_DTYPE_Q4_0, true));
  struct spr_config cfg;
  sparse_cfg(&cfg, 0.4f, -1, -1);
  cfg.sparse_ffn_reselect = 1;
  struct spr_plan p;
  struct spr_error err;
  assert_int_equal(spr_plan(m, &cfg, &p, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(p.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, p.arena_bytes - 1, &s, &err), SPR_STATUS_ARENA_TOO_SMALL);
  assert_int_equal(spr_session_create(m, &cfg, arena, p.arena_bytes, &s, &err), SPR_STATUS_OK);
  /* default layers for 2 layers: (12+16)/32 = 0 .. 1 - (10+16)/32 = 1 */
  int first, last;
  uint32_t n_core;
  assert_int_equal(spr_llm_sparse_layers(m, &cfg, &first, &last, &n_core), SPR_STATUS_OK);
  assert_int_equal(first, 0), assert_int_equal(last, 1), assert_int_equal(n_core, 25);
  const int32_t *idx;
  uint32_t n;
  assert_int_equal(spr_llm_core_set(s, 0, &idx, &n), SPR_STATUS_OK);
  assert_int_equal(n, 0); /* before the first prefill */
  spr_session_destroy(s);
  free(arena);
  struct spr_llm_traffic tr;
  assert_int_equal(spr_llm_decode_traffic(m, &cfg, &tr), SPR_STATUS_OK);
  assert_true(tr.sparse < tr.dense && tr.sparse == tr.sparse_down_t && tr.row_major_down == 0);
  /* CoreInfer's 32 layers -> 6..26 */
  const int Ls[] = {32, 22, 5, 1};
  const int want[][2] = {{6, 26}, {4, 18}, {1, 3}, {0, 0}};
  for (int i = 0; i < 4; i++) {
    const int L = Ls[i];
    assert_int_equal((6 * L + 16) / 32, want[i][0]);
    assert_int_equal(L - 1 - (5 * L + 16) / 32, want[i][1]);
  }
  sparse_cfg(&cfg, 1.5f, -1, -1);
  assert_int_equal(spr_plan(m, &cfg, &p, &err), SPR_STATUS_INVALID_ARGUMENT);
  sparse_cfg(&cfg, 0.4f, 1, 5);
  assert_int_equal(spr_plan(m, &cfg, &p, &err), SPR_STATUS_INVALID_ARGUMENT);
  sparse_cfg(&cfg, 0.4f, 1, 0);
  assert_int_equal(spr_plan(m, &cfg, &p, &err), SPR_STATUS_INVALID_ARGUMENT);
  spr_model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden),
      cmocka_unit_test(test_beta1_bit_identical),
      cmocka_unit_test(test_sparse_equals_zeroed),
      cmocka_unit_test(test_layouts_agree),
      cmocka_unit_test(test_threads_reselect),
      cmocka_unit_test(test_reselect_equals_prefill),
      cmocka_unit_test(test_plan_and_settings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
