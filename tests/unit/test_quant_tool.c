/* tests/unit/test_quant_tool.c — `sparrow quantize` (tools/sparrow/quantize.c):
 * which tensors are converted to what, the metadata written, the bytes of
 * the converted tensors (the reference quantizer's, row by row), thread
 * independence, requantization, and errors. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/common/fp16.h"
#include "ops/quant/quant.h"
#include "platform/blob.h"
#include "support/test_util.h"
#include "tools/sparrow/quantize.h"

struct src_tensor {
  const char *name;
  enum spr_dtype type;
  uint32_t n_dims;
  int64_t ne[4];
};

/* A llama-like model plus tensors that exercise every rule. */
static const struct src_tensor k_tensors[] = {
    {"token_embd.weight", SPR_DTYPE_F32, 2, {256, 6, 1, 1}},
    {"blk.0.attn_norm.weight", SPR_DTYPE_F32, 1, {256, 1, 1, 1}},
    {"blk.0.attn_q.weight", SPR_DTYPE_F16, 2, {256, 4, 1, 1}},
    {"blk.0.ffn_down.weight", SPR_DTYPE_F32, 2, {64, 3, 1, 1}},  /* rows of 64: no K-quant */
    {"blk.0.ffn_norm.weight", SPR_DTYPE_F32, 2, {256, 2, 1, 1}}, /* 2-D but "norm" */
    {"blk.0.attn_q.bias", SPR_DTYPE_F32, 1, {256, 1, 1, 1}},
    {"v.patch_embd.weight", SPR_DTYPE_F32, 2, {256, 2, 1, 1}}, /* name rule */
    {"blk.0.dw.weight", SPR_DTYPE_F32, 3, {32, 2, 2, 1}},      /* 3-D: kept */
    {"blk.0.odd.weight", SPR_DTYPE_F32, 2, {48, 2, 1, 1}},     /* rows of 48: kept */
    {"output.weight", SPR_DTYPE_F32, 2, {256, 6, 1, 1}},
};
enum { NT = sizeof k_tensors / sizeof k_tensors[0] };

static float *g_data[NT]; /* f32 values of each tensor (f16-rounded for f16 ones) */

static size_t nelem(const struct src_tensor *t) {
  return (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
}

static void write_model(const char *path, const char *arch, bool with_output) {
  struct spr_gguf_writer *w = NULL;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  spr_gguf_writer_add_str(w, "general.architecture", arch);
  spr_gguf_writer_add_u32(w, "general.file_type", 0);
  spr_gguf_writer_add_u32(w, "llama.block_count", 1);
  const char *toks[3] = {"<s>", "a", "b"};
  spr_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
  spr_gguf_writer_set_alignment(w, 64);
  void *bufs[NT] = {0};
  for (size_t i = 0; i < NT; i++) {
    const struct src_tensor *t = &k_tensors[i];
    if (!with_output && strcmp(t->name, "output.weight") == 0) continue;
    const size_t n = nelem(t);
    if (g_data[i] == NULL) {
      g_data[i] = malloc(n * sizeof(float));
      spr_test_fill(g_data[i], n, 100 + i, -1.0f, 1.0f);
      for (size_t k = 0; k < n; k += 29) g_data[i][k] *= 5.0f;
      if (t->type == SPR_DTYPE_F16)
        for (size_t k = 0; k < n; k++) g_data[i][k] = spr_fp16_to_f32(spr_fp16_from_f32(g_data[i][k]));
    }
    bufs[i] = malloc(n * 4);
    spr_quantize_row_get(t->type)(g_data[i], bufs[i], (int64_t)n);
    spr_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, bufs[i]);
  }
  struct spr_error err;
  assert_int_equal(spr_gguf_writer_write(w, path, &err), SPR_STATUS_OK);
  spr_gguf_writer_destroy(w);
  for (size_t i = 0; i < NT; i++) free(bufs[i]);
}

struct mapped {
  struct spr_blob blob;
  struct spr_gguf g;
};

static void map(struct mapped *m, const char *path) {
  struct spr_error err;
  assert_int_equal(spr_blob_map_file(path, &m->blob, &err), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_parse(m->blob.data, m->blob.size, &m->g, &err), SPR_STATUS_OK);
}

/* Checks tensor i of the output: type, and bytes == the reference quantizer's on the source values. */
static void expect_tensor(const struct mapped *m, size_t i, enum spr_dtype want) {
  const struct src_tensor *s = &k_tensors[i];
  struct spr_gguf_tensor t;
  assert_int_equal(spr_gguf_find_tensor(&m->g, s->name, &t), SPR_STATUS_OK);
  if (t.type != want) fail_msg("%s: type %s, expected %s", s->name, spr_dtype_name(t.type), spr_dtype_name(want));
  assert_int_equal(t.n_dims, s->n_dims);
  for (int d = 0; d < 4; d++) assert_int_equal(t.ne[d], s->ne[d]);
  const size_t n = nelem(s);
  uint8_t *ref = malloc(n * 4);
  spr_quantize_row_get(want)(g_data[i], ref, (int64_t)n); /* per row == whole (rows are whole blocks) */
  if (memcmp(ref, t.data, t.nbytes) != 0) fail_msg("%s: bytes differ from the reference quantizer", s->name);
  free(ref);
}

static uint32_t kv_u32(const struct mapped *m, const char *key) {
  uint32_t v = 0;
  assert_int_equal(spr_gguf_get_u32(&m->g, key, &v), SPR_STATUS_OK);
  return v;
}

static char g_in[64], g_out[64], g_out2[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_in, sizeof g_in, "/tmp/spr_qtool_in_%d.gguf", (int)getpid());
  snprintf(g_out, sizeof g_out, "/tmp/spr_qtool_out_%d.gguf", (int)getpid());
  snprintf(g_out2, sizeof g_out2, "/tmp/spr_qtool_out2_%d.gguf", (int)getpid());
  return 0;
}

static int teardown(void **state) {
  (void)state;
  remove(g_in), remove(g_out), remove(g_out2);
  for (size_t i = 0; i < NT; i++) free(g_data[i]), g_data[i] = NULL;
  return 0;
}

static void convert(const char *in, const char *out, enum spr_dtype t, bool all, int threads,
                    struct spr_quantize_stats *st) {
  const struct spr_quantize_opts o = {t, all, threads, NULL, false, -1, -1};
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_quantize_file(in, out, &o, st, &err);
  if (s != SPR_STATUS_OK) fail_msg("quantize %s: %s", spr_dtype_name(t), err.msg);
}

static void test_q4_0_llama(void **state) {
  (void)state;
  write_model(g_in, "llama", true);
  struct spr_quantize_stats st;
  convert(g_in, g_out, SPR_DTYPE_Q4_0, false, 1, &st);
  struct mapped m;
  map(&m, g_out);
  const enum spr_dtype want[NT] = {SPR_DTYPE_Q4_0, SPR_DTYPE_F32, SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_0, SPR_DTYPE_F32,
                                   SPR_DTYPE_F32,  SPR_DTYPE_F32, SPR_DTYPE_F32,  SPR_DTYPE_F32,  SPR_DTYPE_Q6_K};
  for (size_t i = 0; i < NT; i++) expect_tensor(&m, i, want[i]);
  assert_int_equal(kv_u32(&m, "general.file_type"), 2);
  assert_int_equal(kv_u32(&m, "general.quantization_version"), 2);
  assert_int_equal(kv_u32(&m, "llama.block_count"), 1);
  assert_int_equal(m.g.alignment, 64);
  struct spr_gguf_kv kv;
  assert_int_equal(spr_gguf_find_kv(&m.g, "tokenizer.ggml.tokens", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.arr_n, 3);
  assert_int_equal(st.n_tensors, NT);
  assert_int_equal(st.n_converted, 4);
  spr_blob_unmap(&m.blob);

  /* threads do not change a byte */
  convert(g_in, g_out2, SPR_DTYPE_Q4_0, false, 3, NULL);
  struct mapped a, b;
  map(&a, g_out), map(&b, g_out2);
  assert_int_equal(a.blob.size, b.blob.size);
  assert_memory_equal(a.blob.data, b.blob.data, a.blob.size);
  spr_blob_unmap(&a.blob), spr_blob_unmap(&b.blob);
}

static void test_q4_k_all_and_tied(void **state) {
  (void)state;
  /* --all: the name rule is off; rows of 64/48 stay; tied embeddings: token_embd takes output's Q6_K */
  write_model(g_in, "llama", false);
  convert(g_in, g_out, SPR_DTYPE_Q4_K, true, 2, NULL);
  struct mapped m;
  map(&m, g_out);
  const enum spr_dtype want[NT - 1] = {SPR_DTYPE_Q6_K, SPR_DTYPE_F32,  SPR_DTYPE_Q4_K, SPR_DTYPE_F32, SPR_DTYPE_Q4_K,
                                       SPR_DTYPE_F32,  SPR_DTYPE_Q4_K, SPR_DTYPE_F32,  SPR_DTYPE_F32};
  for (size_t i = 0; i < NT - 1; i++) expect_tensor(&m, i, want[i]);
  assert_int_equal(kv_u32(&m, "general.file_type"), 15);
  struct spr_gguf_tensor t;
  assert_int_equal(spr_gguf_find_tensor(&m.g, "output.weight", &t), SPR_STATUS_NOT_FOUND);
  spr_blob_unmap(&m.blob);
}

static void test_other_arch_and_types(void **state) {
  (void)state;
  /* not llama: no output rule */
  write_model(g_in, "vit", true);
  convert(g_in, g_out, SPR_DTYPE_Q8_0, false, 1, NULL);
  struct mapped m;
  map(&m, g_out);
  expect_tensor(&m, 9, SPR_DTYPE_Q8_0);
  expect_tensor(&m, 3, SPR_DTYPE_Q8_0);
  expect_tensor(&m, 8, SPR_DTYPE_F32); /* rows of 48 */
  assert_int_equal(kv_u32(&m, "general.file_type"), 7);
  spr_blob_unmap(&m.blob);
  /* f16: every eligible weight in f16, no quantization version */
  convert(g_in, g_out, SPR_DTYPE_F16, false, 1, NULL);
  map(&m, g_out);
  expect_tensor(&m, 0, SPR_DTYPE_F16);
  expect_tensor(&m, 2, SPR_DTYPE_F16);
  expect_tensor(&m, 1, SPR_DTYPE_F32);
  assert_int_equal(kv_u32(&m, "general.file_type"), 1);
  uint32_t v;
  assert_int_equal(spr_gguf_get_u32(&m.g, "general.quantization_version", &v), SPR_STATUS_NOT_FOUND);
  spr_blob_unmap(&m.blob);
}

/* A quantized input is dequantized then requantized; converting to its own type copies it. */
static void test_requantize(void **state) {
  (void)state;
  write_model(g_in, "llama", true);
  convert(g_in, g_out, SPR_DTYPE_Q4_0, false, 1, NULL);
  struct spr_quantize_stats st;
  convert(g_out, g_out2, SPR_DTYPE_Q8_0, false, 2, &st);
  assert_int_equal(st.n_requantized, 4);
  struct mapped a, b;
  map(&a, g_out), map(&b, g_out2);
  struct spr_gguf_tensor ta, tb;
  assert_int_equal(spr_gguf_find_tensor(&a.g, "blk.0.attn_q.weight", &ta), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_find_tensor(&b.g, "blk.0.attn_q.weight", &tb), SPR_STATUS_OK);
  assert_int_equal(tb.type, SPR_DTYPE_Q8_0);
  float *x = malloc(1024 * 4), *y = malloc(1024 * 4);
  spr_dequantize_row_q4_0(ta.data, x, 1024);
  uint8_t *q = malloc(1024 * 2);
  spr_quantize_row_q8_0_ref(x, q, 1024);
  assert_memory_equal(q, tb.data, tb.nbytes);
  free(x), free(y), free(q);
  spr_blob_unmap(&a.blob), spr_blob_unmap(&b.blob);
  /* q4_0 -> q4_0: the quantized tensors are copied as they are */
  convert(g_out, g_out2, SPR_DTYPE_Q4_0, false, 1, &st);
  assert_int_equal(st.n_converted, 0);
}

/* ---- vision models: vit, nat, biformer tensor names (converters' layouts) ----------------- */

struct vis_tensor {
  const char *name;
  uint32_t n_dims;
  int64_t ne[4];
  bool linear; /* converted by default */
  bool by_all; /* converted with --all only */
};

/* K: 0 kept, 1 converted by default, 2 converted with --all only */
#define V(name, nd, a, b, c, d, k) \
  { name, nd, {a, b, c, d}, (k) == 1, (k) == 2 }
static const struct vis_tensor k_vit[] = {
    /* tools/convert/vit.py: patch embedding [D][P][P][C], tokens, positions */
    V("patch_embd.weight", 4, 1, 4, 4, 64, 0),
    V("patch_embd.bias", 1, 64, 1, 1, 1, 0),
    V("cls_token", 1, 64, 1, 1, 1, 0),
    V("dist_token", 1, 64, 1, 1, 1, 0),
    V("pos_embd", 2, 64, 18, 1, 1, 0),
    V("blk.0.ln1.weight", 1, 64, 1, 1, 1, 0),
    V("blk.0.ln1.bias", 1, 64, 1, 1, 1, 0),
    V("blk.0.attn_qkv.weight", 2, 64, 192, 1, 1, 1),
    V("blk.0.attn_qkv.bias", 1, 192, 1, 1, 1, 0),
    V("blk.0.attn_out.weight", 2, 64, 64, 1, 1, 1),
    V("blk.0.ln2.weight", 1, 64, 1, 1, 1, 0),
    V("blk.0.ffn_up.weight", 2, 64, 128, 1, 1, 1),
    V("blk.0.ffn_down.weight", 2, 128, 64, 1, 1, 1),
    V("blk.0.ffn_down.bias", 1, 64, 1, 1, 1, 0),
    V("blk.11.ffn_up.weight", 2, 64, 128, 1, 1, 1),
    V("norm.weight", 1, 64, 1, 1, 1, 0),
    V("head.weight", 2, 64, 10, 1, 1, 1),
    V("head.bias", 1, 10, 1, 1, 1, 0),
    V("head_dist.weight", 2, 64, 10, 1, 1, 1),
    V("fc_norm.weight", 1, 64, 1, 1, 1, 0),
    /* a converter that flattens the patch embedding to 2-D: name rule */
    V("v.patch_embd.weight", 2, 64, 64, 1, 1, 2),
};
static const struct vis_tensor k_nat[] = {
    /* tools/convert/nat.py (branch visionsparse): conv tokenizer [Cout][KH][KW][Cin], NA blocks, conv downsamplers */
    V("tok.conv1.weight", 4, 3, 3, 3, 32, 0),
    V("tok.conv1.bias", 1, 32, 1, 1, 1, 0),
    V("tok.conv2.weight", 4, 32, 3, 3, 64, 0),
    V("tok.norm.weight", 1, 64, 1, 1, 1, 0),
    V("blk.0.ln1.weight", 1, 64, 1, 1, 1, 0),
    V("blk.0.attn_qkv.weight", 2, 64, 192, 1, 1, 1),
    V("blk.0.attn_qkv.bias", 1, 192, 1, 1, 1, 0),
    V("blk.0.attn_rpb", 3, 13, 13, 2, 1, 0),
    V("blk.0.attn_out.weight", 2, 64, 64, 1, 1, 1),
    V("blk.0.ffn_up.weight", 2, 64, 192, 1, 1, 1),
    V("blk.0.ffn_down.weight", 2, 192, 64, 1, 1, 1),
    V("blk.0.gamma1", 1, 64, 1, 1, 1, 0),
    V("blk.0.gamma2", 1, 64, 1, 1, 1, 0),
    V("ds.0.weight", 4, 64, 3, 3, 128, 0),
    V("ds.0.norm.weight", 1, 128, 1, 1, 1, 0),
    V("blk.1.attn_qkv.weight", 2, 128, 384, 1, 1, 1),
    V("blk.1.attn_rpb", 2, 13, 13, 1, 1, 0), /* one head, stored 2-D: no ".weight" */
    V("norm.weight", 1, 128, 1, 1, 1, 0),
    V("head.weight", 2, 128, 10, 1, 1, 1),
    /* a tokenizer conv stored 2-D ([Cout][Cin] 1x1): name rule */
    V("tok.conv3.weight", 2, 64, 64, 1, 1, 2),
};
static const struct vis_tensor k_biformer[] = {
    /* tools/convert/biformer.py (branch visionsparse): folded conv stem, depthwise [KH][KW][C] convs */
    V("stem.conv1.weight", 4, 3, 3, 3, 32, 0),
    V("stem.conv1.bias", 1, 32, 1, 1, 1, 0),
    V("stem.conv2.weight", 4, 32, 3, 3, 64, 0),
    V("ds.1.weight", 4, 64, 3, 3, 128, 0),
    V("ds.1.bias", 1, 128, 1, 1, 1, 0),
    V("blk.0.pos.weight", 3, 64, 3, 3, 1, 0),
    V("blk.0.pos.bias", 1, 64, 1, 1, 1, 0),
    V("blk.0.ln1.weight", 1, 64, 1, 1, 1, 0),
    V("blk.0.attn_qk.weight", 2, 64, 128, 1, 1, 1),
    V("blk.0.attn_qk.bias", 1, 128, 1, 1, 1, 0),
    V("blk.0.attn_v.weight", 2, 64, 64, 1, 1, 1),
    V("blk.0.attn_lce.weight", 3, 64, 5, 5, 1, 0),
    V("blk.0.attn_lce.bias", 1, 64, 1, 1, 1, 0),
    V("blk.0.attn_out.weight", 2, 64, 64, 1, 1, 1),
    V("blk.0.ffn_up.weight", 2, 64, 192, 1, 1, 1),
    V("blk.0.ffn_down.weight", 2, 192, 64, 1, 1, 1),
    V("blk.1.attn_qkv.weight", 2, 128, 384, 1, 1, 1), /* stage-4 global attention */
    V("norm.scale", 1, 128, 1, 1, 1, 0),
    V("norm.shift", 1, 128, 1, 1, 1, 0),
    V("head.weight", 2, 128, 10, 1, 1, 1),
    V("head.bias", 1, 10, 1, 1, 1, 0),
    /* depthwise kernels flattened to 2-D [C][KH*KW] by some converter: name rules */
    V("blk.2.pos.weight", 2, 64, 9, 1, 1, 2),
    V("blk.2.attn_lce.weight", 2, 64, 25, 1, 1, 2),
    V("blk.2.attn.lepe.weight", 2, 64, 25, 1, 1, 2),
    V("stem.proj.weight", 2, 64, 64, 1, 1, 2),
};
#undef V

static void write_vision(const char *path, const char *arch, const struct vis_tensor *ts, size_t n) {
  struct spr_gguf_writer *w = NULL;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  spr_gguf_writer_add_str(w, "general.architecture", arch);
  void **bufs = calloc(n, sizeof *bufs);
  for (size_t i = 0; i < n; i++) {
    const size_t ne = (size_t)(ts[i].ne[0] * ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]);
    bufs[i] = malloc(ne * sizeof(float));
    spr_test_fill(bufs[i], ne, 500 + i, -1.0f, 1.0f);
    spr_gguf_writer_add_tensor(w, ts[i].name, SPR_DTYPE_F32, ts[i].n_dims, ts[i].ne, bufs[i]);
  }
  struct spr_error err;
  assert_int_equal(spr_gguf_writer_write(w, path, &err), SPR_STATUS_OK);
  spr_gguf_writer_destroy(w);
  for (size_t i = 0; i < n; i++) free(bufs[i]);
  free(bufs);
}

static void expect_vision(const char *arch, const struct vis_tensor *ts, size_t n, enum spr_dtype to, bool all) {
  write_vision(g_in, arch, ts, n);
  struct spr_quantize_stats st;
  convert(g_in, g_out, to, all, 2, &st);
  struct mapped m;
  map(&m, g_out);
  uint64_t n_conv = 0;
  for (size_t i = 0; i < n; i++) {
    const bool conv = ts[i].linear || (all && ts[i].by_all);
    const enum spr_dtype want = conv ? to : SPR_DTYPE_F32;
    struct spr_gguf_tensor t;
    assert_int_equal(spr_gguf_find_tensor(&m.g, ts[i].name, &t), SPR_STATUS_OK);
    if (t.type != want)
      fail_msg("%s %s%s: %s is %s, expected %s", arch, spr_dtype_name(to), all ? " --all" : "", ts[i].name,
               spr_dtype_name(t.type), spr_dtype_name(want));
    assert_int_equal(t.n_dims, ts[i].n_dims);
    n_conv += conv;
  }
  assert_int_equal(st.n_converted, n_conv);
  assert_int_equal(st.n_tensors, n);
  spr_blob_unmap(&m.blob);
}

/* vit, nat, biformer: exactly the linear layers (qkv / qk / v, out, MLP, heads) are quantized;
 * norms, biases, layer scales, tokens, positions, rpb, conv stems, downsamplers and depthwise
 * convs stay F32; --all lifts the name rules only (conv kernels, vectors and tensors without
 * ".weight" never change: the ops reading them take F32/F16). */
static void test_vision_rules(void **state) {
  (void)state;
  const enum spr_dtype types[2] = {SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0};
  for (int t = 0; t < 2; t++) {
    for (int all = 0; all < 2; all++) {
      expect_vision("vit", k_vit, sizeof k_vit / sizeof k_vit[0], types[t], all != 0);
      expect_vision("nat", k_nat, sizeof k_nat / sizeof k_nat[0], types[t], all != 0);
      expect_vision("biformer", k_biformer, sizeof k_biformer / sizeof k_biformer[0], types[t], all != 0);
    }
  }
}

static void test_errors(void **state) {
  (void)state;
  const struct spr_quantize_opts o = {SPR_DTYPE_Q4_0, false, 1, NULL, false, -1, -1};
  struct spr_error err;
  assert_int_equal(spr_quantize_file("/nonexistent/x.gguf", g_out, &o, NULL, &err), SPR_STATUS_IO);
  write_model(g_in, "llama", true);
  assert_int_equal(spr_quantize_file(g_in, g_in, &o, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
  const struct spr_quantize_opts bad = {SPR_DTYPE_I8, false, 1, NULL, false, -1, -1};
  assert_int_equal(spr_quantize_file(g_in, g_out, &bad, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
  FILE *f = fopen(g_out2, "wb");
  fputs("not a gguf file at all", f);
  fclose(f);
  assert_int_equal(spr_quantize_file(g_out2, g_out, &o, NULL, &err), SPR_STATUS_BAD_MAGIC);
  enum spr_dtype t;
  assert_true(spr_quantize_parse_type("Q4_K", &t) && t == SPR_DTYPE_Q4_K);
  assert_true(spr_quantize_parse_type("f32", &t) && t == SPR_DTYPE_F32);
  assert_false(spr_quantize_parse_type("q5_0", &t));
  assert_false(spr_quantize_parse_type("q4_0x", &t));
  assert_int_equal(spr_quantize_ftype(SPR_DTYPE_Q6_K), 18);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_q4_0_llama),           cmocka_unit_test(test_q4_k_all_and_tied),
      cmocka_unit_test(test_other_arch_and_types), cmocka_unit_test(test_requantize),
      cmocka_unit_test(test_vision_rules),         cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
