/* tests/unit/test_llm_coreffn_bundle.c — llama models with neuron bundles
 * (sparrow quantize --sparse-layout --bundle: blk.N.ffn_bundle.weight, row n =
 * neuron n's gate, up and ffn_down_t rows; docs/coreinfer.md).
 *
 *   - the file: each bundle row is the gate row, the up row and the
 *     ffn_down_t row of the --sparse-layout file, byte for byte; the layers'
 *     ffn_gate / ffn_up / ffn_down(_t) are gone; every other tensor is the
 *     same; --bundle with another type is refused;
 *   - beta 1.0 is bit-identical to dense (1 and 2 threads);
 *   - a sparse run is bit-identical for 1, 2 and 3 threads;
 *   - the bundle file's prefill picks the core sets of the --sparse-layout
 *     file, and its dense logits match that file's within the axpyq
 *     quantization error (2e-2), its sparse logits within f32 rounding (1e-4);
 *   - a sparse decode step matches a dense step of a copy of the file whose
 *     non-core neurons' gate rows are zero (the fused decode over all
 *     neurons, zero contributions included), within 5e-3 (other axpyq groups);
 *   - plan: the bundle reads keep * its bytes per token;
 *   - compact (sparse_ffn_compact): the same bits as without it for 1, 2 and
 *     3 threads, over two prompts and a sentence re-selection (each new core
 *     set is copied again); after a run each layer's core_pack holds the
 *     bundles of its core set in core order; the arena grows by
 *     LAYERS x n_core bundle rows; a file without bundles is refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops/quant/quant.h"
#include "runtime/session.h"
#include "sparrow/llm.h"
#include "support/llm_session.h"
#include "support/test_util.h"
#include "support/tiny_models.h"
#include "tools/sparrow/quantize.h"

#define TMP SPR_BINARY_DIR "/coreffn_bundle_tmp"

/* dim 64 (2 blocks per row), ffn 320: the dense fused decode runs 3 chunks */
enum { DIM = 64, FFN = 320, LAYERS = 2 };

/* TMP/base.gguf (f32 tiny llama), then TMP/<name>.gguf in Q4_0: plain (layout 0),
 * --sparse-layout (1) or --sparse-layout --bundle (2), every layer. */
static const char *tiny_file(int layout) {
  static char out[3][512];
  const char *base = TMP "/base.gguf";
  if (system("mkdir -p '" TMP "'") != 0) fail_msg("cannot create " TMP);
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  c.dim = DIM;
  c.ffn = FFN;
  c.layers = LAYERS;
  void *blob;
  size_t size;
  assert_int_equal(spr_tiny_llama_write(&c, &blob, &size), SPR_STATUS_OK);
  FILE *f = fopen(base, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(blob, 1, size, f), size);
  assert_int_equal(fclose(f), 0);
  free(blob);
  snprintf(out[layout], sizeof out[layout], TMP "/layout%d.gguf", layout);
  const struct spr_quantize_opts o = {SPR_DTYPE_Q4_0, false, 1, NULL, layout >= 1, 0, 1 << 30};
  struct spr_error err;
  if (spr_quantize_file_bundle(base, out[layout], &o, layout == 2, NULL, &err) != SPR_STATUS_OK)
    fail_msg("quantize: %s", err.msg);
  return out[layout];
}

static void sparse_cfg(struct spr_config *cfg, float beta, int threads) {
  spr_config_init(cfg);
  cfg->ctx = 64;
  cfg->batch = 16;
  cfg->kv_f32 = 1;
  cfg->threads = threads;
  cfg->sparse_ffn_beta = beta;
  cfg->sparse_ffn_first = 0;
  cfg->sparse_ffn_last = LAYERS - 1;
}

static const int32_t k_prompt[10] = {1, 259, 261, 270, 5, 299, 42, 259, 262, 263};
static const int32_t k_cont[8] = {264, 40, 281, 290, 7, 259, 300 - 3, 266};

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

/* logits of a whole sequence: (1 + 8) x V */
static float *seq_logits(const char *path, float beta, int threads, struct spr_test_llm *keep) {
  struct spr_test_llm t;
  memset(&t, 0, sizeof t);
  t.model = spr_test_model_load(path);
  struct spr_llm_info info;
  assert_int_equal(spr_llm_info(t.model, &info), SPR_STATUS_OK);
  float *out = malloc(9 * info.n_vocab * sizeof(float));
  struct spr_config cfg;
  sparse_cfg(&cfg, beta, threads);
  spr_test_llm_open(&t, &cfg);
  run_seq(&t, info.n_vocab, out);
  if (keep != NULL) {
    *keep = t;
    return out;
  }
  spr_test_llm_close(&t);
  spr_model_free(t.model);
  return out;
}

static void free_llm(struct spr_test_llm *t) {
  spr_test_llm_close(t);
  spr_model_free(t->model);
}

static void assert_close(const char *what, const float *a, const float *b, size_t n, size_t V, float tol) {
  for (size_t i = 0; i < n; i++) {
    if (!(fabsf(a[i] - b[i]) <= tol * (1.0f + fabsf(b[i]))))
      fail_msg("%s: step %zu logit %zu = %.9g, want %.9g", what, i / V, i % V, (double)a[i], (double)b[i]);
  }
}

/* ---- the file ------------------------------------------------------------------------------------ */

static void test_bundle_file(void **state) {
  (void)state;
  struct spr_model *ml = spr_test_model_load(tiny_file(1)), *mb = spr_test_model_load(tiny_file(2));
  const struct spr_gguf *gl = spr_model_gguf(ml), *gb = spr_model_gguf(mb);
  const size_t seg = spr_quant_row_bytes(SPR_DTYPE_Q4_0, DIM);
  int bundles = 0;
  for (uint64_t i = 0; i < gb->n_tensors; i++) {
    struct spr_gguf_tensor t, u;
    assert_int_equal(spr_gguf_tensor_at(gb, i, &t), SPR_STATUS_OK);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)t.name.len, t.name.ptr);
    assert_null(strstr(name, "ffn_gate"));
    assert_null(strstr(name, "ffn_up"));
    assert_null(strstr(name, "ffn_down"));
    int l = -1;
    if (strstr(name, "ffn_bundle") != NULL && sscanf(name, "blk.%d.", &l) == 1) {
      assert_int_equal(t.type, SPR_DTYPE_Q4_0);
      assert_int_equal(t.ne[0], 3 * DIM), assert_int_equal(t.ne[1], FFN);
      const char *parts[3] = {"ffn_gate.weight", "ffn_up.weight", "ffn_down_t.weight"};
      for (int p = 0; p < 3; p++) {
        snprintf(name, sizeof name, "blk.%d.%s", l, parts[p]);
        assert_int_equal(spr_gguf_find_tensor(gl, name, &u), SPR_STATUS_OK);
        assert_int_equal(u.type, SPR_DTYPE_Q4_0);
        for (size_t r = 0; r < FFN; r++) {
          if (memcmp((const uint8_t *)t.data + (3 * r + (size_t)p) * seg, (const uint8_t *)u.data + r * seg, seg) != 0)
            fail_msg("bundle %d row %zu: segment %d is not %s's row", l, r, p, name);
        }
      }
      bundles++;
      continue;
    }
    assert_int_equal(spr_gguf_find_tensor(gl, name, &u), SPR_STATUS_OK);
    assert_int_equal(t.type, u.type);
    assert_int_equal(t.nbytes, u.nbytes);
    assert_memory_equal(t.data, u.data, t.nbytes);
  }
  assert_int_equal(bundles, LAYERS);
  /* the bytes a decoded token reads: the bundles scale with keep */
  struct spr_config cfg;
  sparse_cfg(&cfg, 0.4f, 1);
  struct spr_llm_traffic tl, tb;
  assert_int_equal(spr_llm_decode_traffic(ml, &cfg, &tl), SPR_STATUS_OK);
  assert_int_equal(spr_llm_decode_traffic(mb, &cfg, &tb), SPR_STATUS_OK);
  assert_true(fabs(tl.dense - tb.dense) < 1.0 && fabs(tl.sparse - tb.sparse) < 1.0 && tb.sparse < tb.dense);
  spr_model_free(ml);
  spr_model_free(mb);
  /* q8_0 has no bundle */
  const struct spr_quantize_opts o = {SPR_DTYPE_Q8_0, false, 1, NULL, true, 0, 1 << 30};
  struct spr_error err;
  assert_int_equal(spr_quantize_file_bundle(TMP "/base.gguf", TMP "/q8.gguf", &o, true, NULL, &err),
                   SPR_STATUS_INVALID_ARGUMENT);
}

/* ---- beta 1, threads ------------------------------------------------------------------------------- */

static void test_beta1_and_threads(void **state) {
  (void)state;
  const char *path = tiny_file(2);
  const size_t V = 300, n = 9 * V;
  for (int threads = 1; threads <= 2; threads++) {
    float *dense = seq_logits(path, 0.0f, threads, NULL), *one = seq_logits(path, 1.0f, threads, NULL);
    for (size_t i = 0; i < n; i++) {
      if (memcmp(&dense[i], &one[i], sizeof(float)) != 0)
        fail_msg("bundle, %d threads: beta 1 step %zu logit %zu = %.9g, dense %.9g", threads, i / V, i % V,
                 (double)one[i], (double)dense[i]);
    }
    free(dense), free(one);
  }
  float *s1 = seq_logits(path, 0.4f, 1, NULL);
  for (int threads = 2; threads <= 3; threads++) {
    float *s = seq_logits(path, 0.4f, threads, NULL);
    for (size_t i = 0; i < n; i++) {
      if (memcmp(&s1[i], &s[i], sizeof(float)) != 0)
        fail_msg("bundle sparse: %d threads step %zu logit %zu = %.9g, 1 thread %.9g", threads, i / V, i % V,
                 (double)s[i], (double)s1[i]);
    }
    free(s);
  }
  free(s1);
}

/* ---- against the --sparse-layout file ----------------------------------------------------------------- */

/* The Q4_0 decode of either file quantizes a[i] * d per group of 32 neurons
 * to int8 (axpyq). Dense steps: the --sparse-layout file's gate/up come from
 * the dense GEMV (another sum order), so a coefficient may round the other
 * way: a few int8 steps apart. Sparse steps: both files' gate/up are the
 * row-gathered sums (the same bits) and the groups are the same, only the
 * chunk partials are added in another order: f32 rounding. A dense step of
 * the zeroed copy groups all neurons, not the core ones: other group scales
 * (measured on this model: at most 7e-4). */
#define AXPYQ_TOL 2e-2f
#define SPARSE_TOL 1e-4f
#define ZEROED_TOL 5e-3f

static void test_bundle_vs_layout(void **state) {
  (void)state;
  const char *pl = tiny_file(1), *pb = tiny_file(2);
  const size_t V = 300, n = 9 * V;
  float *dl = seq_logits(pl, 0.0f, 1, NULL), *db = seq_logits(pb, 0.0f, 1, NULL);
  /* the prompt step runs the same prefill kernels: the same bits */
  assert_memory_equal(dl, db, V * sizeof(float));
  assert_close("bundle vs sparse layout, dense", db, dl, n, V, AXPYQ_TOL);
  struct spr_test_llm a, b;
  float *sl = seq_logits(pl, 0.4f, 1, &a), *sb = seq_logits(pb, 0.4f, 1, &b);
  for (uint32_t l = 0; l < LAYERS; l++) {
    const int32_t *ia, *ib;
    uint32_t na, nb;
    assert_int_equal(spr_llm_core_set(a.session, l, &ia, &na), SPR_STATUS_OK);
    assert_int_equal(spr_llm_core_set(b.session, l, &ib, &nb), SPR_STATUS_OK);
    assert_int_equal(na, nb);
    assert_true(na > 0 && na < FFN);
    assert_memory_equal(ia, ib, na * sizeof(int32_t));
  }
  assert_close("bundle vs sparse layout, sparse", sb, sl, n, V, SPARSE_TOL);
  free_llm(&a), free_llm(&b);
  free(dl), free(db), free(sl), free(sb);
}

/* ---- sparse step vs dense step with the non-core gate rows zeroed ------------------------------------ */

static void test_bundle_zeroed(void **state) {
  (void)state;
  const char *pb = tiny_file(2);
  struct spr_test_llm a, z;
  memset(&z, 0, sizeof z);
  const size_t V = 300;
  float *sa = seq_logits(pb, 0.4f, 1, &a);
  /* the copy: gate segments of non-core rows zero */
  const struct spr_gguf *g = spr_model_gguf(a.model);
  struct spr_gguf_writer *w;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  for (uint64_t i = 0; i < g->n_kv; i++) {
    struct spr_gguf_kv kv;
    assert_int_equal(spr_gguf_kv_at(g, i, &kv), SPR_STATUS_OK);
    spr_gguf_writer_copy_kv(w, &kv);
  }
  void *copies[LAYERS];
  int n_copies = 0;
  const size_t seg = spr_quant_row_bytes(SPR_DTYPE_Q4_0, DIM);
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    assert_int_equal(spr_gguf_tensor_at(g, i, &t), SPR_STATUS_OK);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)t.name.len, t.name.ptr);
    const void *data = t.data;
    int l = -1;
    if (strstr(name, "ffn_bundle") != NULL && sscanf(name, "blk.%d.", &l) == 1) {
      const int32_t *idx;
      uint32_t nc;
      assert_int_equal(spr_llm_core_set(a.session, (uint32_t)l, &idx, &nc), SPR_STATUS_OK);
      uint8_t *c = malloc(t.nbytes);
      memcpy(c, t.data, t.nbytes);
      bool core[FFN] = {false};
      for (uint32_t k = 0; k < nc; k++) core[idx[k]] = true;
      for (size_t r = 0; r < FFN; r++)
        if (!core[r]) memset(c + 3 * r * seg, 0, seg);
      copies[n_copies++] = c;
      data = c;
    }
    spr_gguf_writer_add_tensor(w, name, t.type, t.n_dims, t.ne, data);
  }
  void *buf;
  size_t size;
  struct spr_error err;
  assert_int_equal(spr_gguf_writer_write_mem(w, &buf, &size, &err), SPR_STATUS_OK);
  spr_gguf_writer_destroy(w);
  for (int i = 0; i < n_copies; i++) free(copies[i]);
  void *blob = spr_test_aligned_alloc(size);
  memcpy(blob, buf, size);
  free(buf);
  if (spr_model_load_blob(blob, size, NULL, &z.model, &err) != SPR_STATUS_OK) fail_msg("zeroed copy: %s", err.msg);
  /* the original's dense prompt (the sparse run's prompt step is dense too), its KV cache
   * copied into the zeroed copy's session, then dense steps of the copy */
  struct spr_config cfg;
  sparse_cfg(&cfg, 0.0f, 1);
  struct spr_test_llm o;
  memset(&o, 0, sizeof o);
  o.model = spr_test_model_load(pb);
  spr_test_llm_open(&o, &cfg);
  spr_test_llm_open(&z, &cfg);
  const float *lo, *lz;
  spr_llm_reset(o.session);
  assert_int_equal(spr_llm_eval(o.session, k_prompt, 10, &lo), SPR_STATUS_OK);
  /* copy the prompt's KV cache into the zeroed copy's session */
  const struct spr_graph *ga = spr_session_graph(o.session), *gz = spr_session_graph(z.session);
  for (int32_t i = 0; i < ga->n_tensors; i++) {
    const struct spr_tensor *ta = &ga->tensors[i];
    if (ta->role != SPR_ROLE_STATE || ta->name_len != 0 ||
        (strcmp(ta->name, "k_cache") != 0 && strcmp(ta->name, "v_cache") != 0))
      continue;
    for (int32_t j = 0; j < gz->n_tensors; j++) {
      const struct spr_tensor *tz = &gz->tensors[j];
      if (tz->role == SPR_ROLE_STATE && tz->name_len == 0 && tz->layer == ta->layer && strcmp(tz->name, ta->name) == 0)
        memcpy(tz->data, ta->data, ta->nbytes);
    }
  }
  z.session->run.n_past = o.session->run.n_past;
  for (size_t i = 0; i < 8; i++) {
    assert_int_equal(spr_llm_eval(z.session, &k_cont[i], 1, &lz), SPR_STATUS_OK);
    char what[96];
    snprintf(what, sizeof what, "sparse step %zu vs zeroed-gate dense", i);
    assert_close(what, sa + (i + 1) * V, lz, V, V, ZEROED_TOL);
  }
  spr_test_llm_close(&o);
  spr_model_free(o.model);
  spr_test_llm_close(&z);
  spr_model_free(z.model);
  free(blob);
  free_llm(&a);
  free(sa);
}

/* ---- compact: the core bundles copied once per selection ------------------------------------------ */

/* Two prompts (a reset between: a new selection each) and, with reselect, a
 * sentence end in the generated tokens: (1 + 8) + (1 + n_gen) steps of logits. */
static size_t compact_run(const char *path, float beta, int compact, int threads, struct spr_test_llm *keep,
                          float **out) {
  struct spr_test_llm t;
  memset(&t, 0, sizeof t);
  t.model = spr_test_model_load(path);
  int32_t gen[32];
  char work[8192];
  size_t n_gen = 0;
  const char *text = " the cat sat on the mat. the dog ran";
  assert_int_equal(spr_llm_tokenize(t.model, text, strlen(text), false, gen, 32, &n_gen, work, sizeof work),
                   SPR_STATUS_OK);
  const size_t V = 300, steps = 9 + 1 + n_gen;
  *out = malloc(steps * V * sizeof(float));
  struct spr_config cfg;
  sparse_cfg(&cfg, beta, threads);
  cfg.sparse_ffn_compact = compact;
  cfg.sparse_ffn_reselect = 1;
  spr_test_llm_open(&t, &cfg);
  run_seq(&t, V, *out);
  spr_llm_reset(t.session);
  const float *lg;
  assert_int_equal(spr_llm_eval(t.session, k_cont, 8, &lg), SPR_STATUS_OK);
  memcpy(*out + 9 * V, lg, V * sizeof(float));
  for (size_t i = 0; i < n_gen; i++) {
    assert_int_equal(spr_llm_eval(t.session, &gen[i], 1, &lg), SPR_STATUS_OK);
    memcpy(*out + (10 + i) * V, lg, V * sizeof(float));
  }
  if (keep != NULL)
    *keep = t;
  else
    free_llm(&t);
  return steps;
}

static void test_compact(void **state) {
  (void)state;
  const char *pb = tiny_file(2);
  const size_t V = 300;
  /* beta 0.4: 128 of 320 neurons, whole sub-blocks; 0.33: 105, the last sub-block 9 neurons (3 quads) */
  for (int run = 0; run < 4; run++) {
    const int threads = run < 3 ? run + 1 : 2;
    const float beta = run < 3 ? 0.4f : 0.33f;
    float *plain, *packed;
    struct spr_test_llm t;
    const size_t steps = compact_run(pb, beta, 0, threads, NULL, &plain);
    assert_int_equal(compact_run(pb, beta, 1, threads, &t, &packed), steps);
    for (size_t i = 0; i < steps * V; i++) {
      if (memcmp(&plain[i], &packed[i], sizeof(float)) != 0)
        fail_msg("compact, beta %g, %d threads: step %zu logit %zu = %.9g, without %.9g", (double)beta, threads, i / V,
                 i % V, (double)packed[i], (double)plain[i]);
    }
    /* each layer's pack: its core bundles in core order, whole (plain) or as gate/up
     * pairs regrouped per 8 blocks then the down rows in quads (packed: coreffn.h),
     * one layout for all rows */
    const struct spr_graph *g = spr_session_graph(t.session);
    const struct spr_gguf *gf = spr_model_gguf(t.model);
    const size_t seg = spr_quant_row_bytes(SPR_DTYPE_Q4_0, DIM), kb = DIM / 32;
    int packs = 0;
    for (int32_t i = 0; i < g->n_tensors; i++) {
      const struct spr_tensor *pk = &g->tensors[i];
      if (pk->role != SPR_ROLE_STATE || pk->name_len != 0 || strcmp(pk->name, "core_pack") != 0) continue;
      const int32_t *idx;
      uint32_t nc;
      assert_int_equal(spr_llm_core_set(t.session, (uint32_t)pk->layer, &idx, &nc), SPR_STATUS_OK);
      assert_true(nc > 0 && nc < FFN);
      char name[64];
      snprintf(name, sizeof name, "blk.%d.ffn_bundle.weight", (int)pk->layer);
      struct spr_gguf_tensor b;
      assert_int_equal(spr_gguf_find_tensor(gf, name, &b), SPR_STATUS_OK);
      const uint8_t *pb8 = pk->data, *bb = b.data;
      bool whole = true, quads = true;
      const size_t n_pad = (nc + 3) / 4 * 4;
      for (uint32_t k = 0; k < nc; k++) {
        const uint8_t *row = bb + (size_t)idx[k] * 3 * seg;
        whole = whole && memcmp(pb8 + k * 3 * seg, row, 3 * seg) == 0;
        for (size_t part = 0; part < 2 && quads; part++) /* gate, up: regrouped per 8 blocks */
          for (size_t blk = 0; blk < kb; blk++) {
            const uint8_t *src = row + part * seg + 18 * blk, *grp = pb8 + k * 2 * seg + part * seg + 144 * (blk / 8);
            const size_t m = kb - blk / 8 * 8 < 8 ? kb - blk / 8 * 8 : 8;
            quads = quads && memcmp(grp + 16 * (blk % 8), src + 2, 16) == 0 &&
                    memcmp(grp + 16 * m + 2 * (blk % 8), src, 2) == 0;
          }
        const uint8_t *quad = pb8 + n_pad * 2 * seg + k / 4 * 4 * seg, *down = row + 2 * seg;
        for (size_t blk = 0; blk < kb && quads; blk++) {
          quads = memcmp(quad + k % 4 * 2 * kb + 2 * blk, down + 18 * blk, 2) == 0;
          for (size_t j = 0; j < 16; j++)
            quads = quads && quad[8 * kb + 64 * blk + 4 * j + k % 4] == down[18 * blk + 2 + j];
        }
      }
      if (!whole && !quads) fail_msg("layer %d: the pack holds neither layout of the core bundles", (int)pk->layer);
      if (threads == 1 || beta < 0.4f)
        printf("  beta %g layer %d: %u core bundles packed %s\n", (double)beta, (int)pk->layer, nc,
               quads ? "in quads" : "whole");
      packs++;
    }
    assert_int_equal(packs, LAYERS);
    free_llm(&t);
    free(plain), free(packed);
  }
  /* the arena: LAYERS packs of n_core bundle rows more (each rounded to the plan's alignment) */
  struct spr_model *m = spr_test_model_load(pb);
  struct spr_config cfg;
  sparse_cfg(&cfg, 0.4f, 1);
  struct spr_plan p0, p1;
  struct spr_error err;
  assert_int_equal(spr_plan(m, &cfg, &p0, &err), SPR_STATUS_OK);
  cfg.sparse_ffn_compact = 1;
  assert_int_equal(spr_plan(m, &cfg, &p1, &err), SPR_STATUS_OK);
  const size_t want = LAYERS * (size_t)(0.4 * FFN) * 3 * spr_quant_row_bytes(SPR_DTYPE_Q4_0, DIM);
  assert_true(p1.arena_bytes >= p0.arena_bytes + want);
  assert_true(p1.arena_bytes <= p0.arena_bytes + want + (LAYERS + 1) * SPR_ARENA_ALIGN + 4096);
  spr_model_free(m);
  /* a file without bundles */
  m = spr_test_model_load(tiny_file(1));
  assert_int_equal(spr_plan(m, &cfg, &p1, &err), SPR_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(err.msg, "bundles"));
  spr_model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bundle_file),      cmocka_unit_test(test_beta1_and_threads),
      cmocka_unit_test(test_bundle_vs_layout), cmocka_unit_test(test_bundle_zeroed),
      cmocka_unit_test(test_compact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
