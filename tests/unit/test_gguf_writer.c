/* tests/unit/test_gguf_writer.c — GGUF writer -> memory/file -> reader round trips:
 * every KV value type (via add_* and copy_kv of a hand-built file), tensors of
 * every supported type, custom alignments, the getters' conversions and error
 * statuses, and the writer's sticky input validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the headers above first
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparrow/gguf.h"
#include "support/test_util.h"

/* ---- a tiny byte-level GGUF builder (independent of the writer) -------------- */

struct tb {
  uint8_t *b;
  size_t n, cap;
};

static void tb_put(struct tb *t, const void *p, size_t n) {
  if (t->n + n > t->cap) {
    t->cap = (t->n + n) * 2 + 64;
    t->b = realloc(t->b, t->cap);
    assert_non_null(t->b);
  }
  if (n != 0) memcpy(t->b + t->n, p, n);
  t->n += n;
}
#define TB_VAL(t, type, v)             \
  do {                                 \
    const type tb_v_ = (v);            \
    tb_put((t), &tb_v_, sizeof tb_v_); \
  } while (0)
static void tb_str(struct tb *t, const char *s) {
  TB_VAL(t, uint64_t, strlen(s));
  tb_put(t, s, strlen(s));
}
static void tb_key(struct tb *t, const char *key, uint32_t type) {
  tb_str(t, key);
  TB_VAL(t, uint32_t, type);
}

/* KVs of every value type, including nested arrays, with edge values. */
enum { SRC_N_KV = 22 };
static void build_source(struct tb *t) {
  memset(t, 0, sizeof *t);
  tb_put(t, "GGUF", 4);
  TB_VAL(t, uint32_t, 3);
  TB_VAL(t, uint64_t, 0);
  TB_VAL(t, uint64_t, SRC_N_KV);
  tb_key(t, "s.u8", SPR_GGUF_U8);
  TB_VAL(t, uint8_t, 200);
  tb_key(t, "s.i8", SPR_GGUF_I8);
  TB_VAL(t, int8_t, -3);
  tb_key(t, "s.i8p", SPR_GGUF_I8);
  TB_VAL(t, int8_t, 5);
  tb_key(t, "s.u16", SPR_GGUF_U16);
  TB_VAL(t, uint16_t, 65535);
  tb_key(t, "s.i16", SPR_GGUF_I16);
  TB_VAL(t, int16_t, -1);
  tb_key(t, "s.u32", SPR_GGUF_U32);
  TB_VAL(t, uint32_t, 0xFFFFFFFFu);
  tb_key(t, "s.i32", SPR_GGUF_I32);
  TB_VAL(t, int32_t, -1);
  tb_key(t, "s.u64big", SPR_GGUF_U64);
  TB_VAL(t, uint64_t, 1ull << 63);
  tb_key(t, "s.u64", SPR_GGUF_U64);
  TB_VAL(t, uint64_t, 7);
  tb_key(t, "s.i64min", SPR_GGUF_I64);
  TB_VAL(t, int64_t, INT64_MIN);
  tb_key(t, "s.i64", SPR_GGUF_I64);
  TB_VAL(t, int64_t, 1ll << 31);
  tb_key(t, "s.f64big", SPR_GGUF_F64);
  TB_VAL(t, double, 1e300);
  tb_key(t, "s.f64", SPR_GGUF_F64);
  TB_VAL(t, double, 0.1);
  tb_key(t, "s.f64inf", SPR_GGUF_F64);
  TB_VAL(t, double, -INFINITY);
  tb_key(t, "s.bool", SPR_GGUF_BOOL);
  TB_VAL(t, uint8_t, 1);
  tb_key(t, "s.str", SPR_GGUF_STRING);
  tb_str(t, "hello");
  /* array of arrays of strings: [["x", ""], [], ["yz"]] */
  tb_key(t, "s.nested_str", SPR_GGUF_ARRAY);
  TB_VAL(t, uint32_t, SPR_GGUF_ARRAY);
  TB_VAL(t, uint64_t, 3);
  TB_VAL(t, uint32_t, SPR_GGUF_STRING);
  TB_VAL(t, uint64_t, 2);
  tb_str(t, "x");
  tb_str(t, "");
  TB_VAL(t, uint32_t, SPR_GGUF_STRING);
  TB_VAL(t, uint64_t, 0);
  TB_VAL(t, uint32_t, SPR_GGUF_STRING);
  TB_VAL(t, uint64_t, 1);
  tb_str(t, "yz");
  /* 3 levels: [[[u8 1, 2]], [[i64 -5]]] */
  tb_key(t, "s.nested3", SPR_GGUF_ARRAY);
  TB_VAL(t, uint32_t, SPR_GGUF_ARRAY);
  TB_VAL(t, uint64_t, 2);
  TB_VAL(t, uint32_t, SPR_GGUF_ARRAY);
  TB_VAL(t, uint64_t, 1);
  TB_VAL(t, uint32_t, SPR_GGUF_U8);
  TB_VAL(t, uint64_t, 2);
  TB_VAL(t, uint8_t, 1);
  TB_VAL(t, uint8_t, 2);
  TB_VAL(t, uint32_t, SPR_GGUF_ARRAY);
  TB_VAL(t, uint64_t, 1);
  TB_VAL(t, uint32_t, SPR_GGUF_I64);
  TB_VAL(t, uint64_t, 1);
  TB_VAL(t, int64_t, -5);
  tb_key(t, "s.au64", SPR_GGUF_ARRAY);
  TB_VAL(t, uint32_t, SPR_GGUF_U64);
  TB_VAL(t, uint64_t, 2);
  TB_VAL(t, uint64_t, (1ull << 63) + 1);
  TB_VAL(t, uint64_t, 9);
  tb_key(t, "s.ai8", SPR_GGUF_ARRAY);
  TB_VAL(t, uint32_t, SPR_GGUF_I8);
  TB_VAL(t, uint64_t, 3);
  TB_VAL(t, int8_t, -128);
  TB_VAL(t, int8_t, 0);
  TB_VAL(t, int8_t, 127);
  tb_key(t, "s.abool", SPR_GGUF_ARRAY);
  TB_VAL(t, uint32_t, SPR_GGUF_BOOL);
  TB_VAL(t, uint64_t, 2);
  TB_VAL(t, uint8_t, 1);
  TB_VAL(t, uint8_t, 0);
  tb_key(t, "s.af64", SPR_GGUF_ARRAY);
  TB_VAL(t, uint32_t, SPR_GGUF_F64);
  TB_VAL(t, uint64_t, 1);
  TB_VAL(t, double, -2.5);
}

static void parse_ok(const void *b, size_t n, struct spr_gguf *g) {
  struct spr_error err = {0};
  const enum spr_status s = spr_gguf_parse(b, n, g, &err);
  if (s != SPR_STATUS_OK) fail_msg("parse: %s: %s", spr_status_name(s), err.msg);
}

/* Copies every KV of src into w. */
static void copy_all(struct spr_gguf_writer *w, const struct spr_gguf *src) {
  for (uint64_t i = 0; i < src->n_kv; i++) {
    struct spr_gguf_kv kv;
    assert_int_equal(spr_gguf_kv_at(src, i, &kv), SPR_STATUS_OK);
    spr_gguf_writer_copy_kv(w, &kv);
  }
}

/* ---- round trip ------------------------------------------------------------------- */

struct tspec {
  const char *name;
  enum spr_dtype type;
  uint32_t n_dims;
  int64_t ne[4];
};

static const struct tspec k_tensors[] = {
    {"t.f32", SPR_DTYPE_F32, 1, {3, 1, 1, 1}},     {"t.f16", SPR_DTYPE_F16, 2, {5, 3, 1, 1}},
    {"t.q4_0", SPR_DTYPE_Q4_0, 2, {64, 2, 1, 1}},  {"t.q8_0", SPR_DTYPE_Q8_0, 3, {32, 3, 2, 1}},
    {"t.q4_k", SPR_DTYPE_Q4_K, 2, {256, 2, 1, 1}}, {"t.q6_k", SPR_DTYPE_Q6_K, 4, {512, 1, 1, 2}},
    {"t.i8", SPR_DTYPE_I8, 3, {7, 2, 2, 1}},       {"t.i16", SPR_DTYPE_I16, 1, {9, 1, 1, 1}},
    {"t.i32", SPR_DTYPE_I32, 4, {2, 2, 2, 2}},
};
enum { N_TENSORS = sizeof k_tensors / sizeof k_tensors[0] };

static void round_trip(uint32_t alignment) {
  struct tb src;
  build_source(&src);
  struct spr_gguf sg;
  parse_ok(src.b, src.n, &sg);

  struct spr_gguf_writer *w = NULL;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  if (alignment != 0) spr_gguf_writer_set_alignment(w, alignment);
  const uint32_t align = alignment != 0 ? alignment : 32;
  spr_gguf_writer_add_u32(w, "w.u32", 4000000000u);
  spr_gguf_writer_add_i32(w, "w.i32", -5);
  spr_gguf_writer_add_u64(w, "w.u64", 1ull << 40);
  spr_gguf_writer_add_f32(w, "w.f32", 0.25f);
  spr_gguf_writer_add_bool(w, "w.bool", true);
  spr_gguf_writer_add_bool(w, "w.false", false);
  spr_gguf_writer_add_str(w, "w.str", "h\xc3\xa9llo");
  spr_gguf_writer_add_str(w, "w.empty", "");
  const float af[5] = {1.0f, -2.0f, 0.5f, 1e30f, -0.0f};
  const int32_t ai[4] = {INT32_MIN, -1, 0, INT32_MAX};
  const char *const as[3] = {"a", "", "ccc"};
  spr_gguf_writer_add_arr_f32(w, "w.af32", af, 5);
  spr_gguf_writer_add_arr_i32(w, "w.ai32", ai, 4);
  spr_gguf_writer_add_arr_i32(w, "w.aempty", NULL, 0);
  spr_gguf_writer_add_arr_str(w, "w.astr", as, 3);
  const int n_added = 12;
  copy_all(w, &sg);

  uint8_t *data[N_TENSORS];
  for (int i = 0; i < N_TENSORS; i++) {
    const struct tspec *t = &k_tensors[i];
    const size_t nb = spr_tensor_nbytes(t->type, t->ne, t->n_dims);
    assert_true(nb > 0);
    data[i] = malloc(nb);
    uint64_t rng = 1234 + (uint64_t)i;
    for (size_t j = 0; j < nb; j++) data[i][j] = (uint8_t)spr_test_rng_next(&rng);
    spr_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, data[i]);
  }

  void *buf = NULL;
  size_t size = 0;
  struct spr_error err = {0};
  const enum spr_status ws = spr_gguf_writer_write_mem(w, &buf, &size, &err);
  if (ws != SPR_STATUS_OK) fail_msg("write_mem: %s: %s", spr_status_name(ws), err.msg);
  struct spr_gguf g;
  parse_ok(buf, size, &g);
  const uint8_t *b = buf;

  /* layout */
  const uint64_t extra = align != 32 ? 1 : 0;
  assert_int_equal(g.n_kv, (uint64_t)n_added + SRC_N_KV + extra);
  assert_int_equal(g.n_tensors, N_TENSORS);
  assert_int_equal(g.alignment, align);
  assert_int_equal(g.data_offset % align, 0);
  assert_int_equal(size, g.data_offset + g.data_bytes);
  size_t table_end = g.tinfo_offset;
  for (int i = 0; i < N_TENSORS; i++) table_end += 8 + strlen(k_tensors[i].name) + 4 + 8 * k_tensors[i].n_dims + 4 + 8;
  assert_true(table_end <= g.data_offset && g.data_offset - table_end < align);
  for (size_t j = table_end; j < g.data_offset; j++) assert_int_equal(b[j], 0);
  if (extra) {
    struct spr_gguf_kv kv;
    assert_int_equal(spr_gguf_kv_at(&g, 0, &kv), SPR_STATUS_OK);
    assert_true(spr_gguf_str_eq(kv.key, "general.alignment"));
    assert_int_equal(kv.type, SPR_GGUF_U32);
  }

  /* values added directly */
  uint32_t u32;
  int64_t i64;
  float f32;
  bool bo;
  struct spr_gguf_str s;
  assert_int_equal(spr_gguf_get_u32(&g, "w.u32", &u32), SPR_STATUS_OK);
  assert_int_equal(u32, 4000000000u);
  assert_int_equal(spr_gguf_get_i64(&g, "w.i32", &i64), SPR_STATUS_OK);
  assert_int_equal(i64, -5);
  assert_int_equal(spr_gguf_get_i64(&g, "w.u64", &i64), SPR_STATUS_OK);
  assert_int_equal(i64, 1ll << 40);
  assert_int_equal(spr_gguf_get_f32(&g, "w.f32", &f32), SPR_STATUS_OK);
  assert_true(f32 == 0.25f);
  assert_int_equal(spr_gguf_get_bool(&g, "w.bool", &bo), SPR_STATUS_OK);
  assert_true(bo);
  assert_int_equal(spr_gguf_get_bool(&g, "w.false", &bo), SPR_STATUS_OK);
  assert_false(bo);
  assert_int_equal(spr_gguf_get_str(&g, "w.str", &s), SPR_STATUS_OK);
  assert_true(spr_gguf_str_eq(s, "h\xc3\xa9llo"));
  assert_int_equal(spr_gguf_get_str(&g, "w.empty", &s), SPR_STATUS_OK);
  assert_int_equal(s.len, 0);
  struct spr_gguf_kv kv;
  assert_int_equal(spr_gguf_find_kv(&g, "w.af32", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.arr_type, SPR_GGUF_F32);
  assert_int_equal(kv.arr_n, 5);
  for (uint64_t j = 0; j < 5; j++) {
    double d;
    assert_int_equal(spr_gguf_arr_get_f64(&kv, j, &d), SPR_STATUS_OK);
    assert_true((float)d == af[j]);
  }
  assert_int_equal(spr_gguf_find_kv(&g, "w.ai32", &kv), SPR_STATUS_OK);
  for (uint64_t j = 0; j < 4; j++) {
    assert_int_equal(spr_gguf_arr_get_i64(&kv, j, &i64), SPR_STATUS_OK);
    assert_int_equal(i64, ai[j]);
  }
  assert_int_equal(spr_gguf_find_kv(&g, "w.aempty", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.arr_n, 0);
  assert_int_equal(spr_gguf_arr_get_i64(&kv, 0, &i64), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_gguf_find_kv(&g, "w.astr", &kv), SPR_STATUS_OK);
  size_t cur = 0;
  for (int j = 0; j < 3; j++) {
    assert_int_equal(spr_gguf_arr_next_str(&kv, &cur, &s), SPR_STATUS_OK);
    assert_true(spr_gguf_str_eq(s, as[j]));
  }
  assert_int_equal(spr_gguf_arr_next_str(&kv, &cur, &s), SPR_STATUS_NOT_FOUND);

  /* copied KVs are identical to the source, type and bytes */
  for (uint64_t i = 0; i < sg.n_kv; i++) {
    struct spr_gguf_kv a, c;
    assert_int_equal(spr_gguf_kv_at(&sg, i, &a), SPR_STATUS_OK);
    assert_int_equal(spr_gguf_kv_at(&g, extra + (uint64_t)n_added + i, &c), SPR_STATUS_OK);
    assert_true(a.key.len == c.key.len && memcmp(a.key.ptr, c.key.ptr, (size_t)a.key.len) == 0);
    assert_int_equal(a.type, c.type);
    if (a.type == SPR_GGUF_ARRAY) {
      assert_int_equal(a.arr_type, c.arr_type);
      assert_int_equal(a.arr_n, c.arr_n);
      assert_int_equal(a.arr_bytes, c.arr_bytes);
      assert_memory_equal(a.arr_data, c.arr_data, a.arr_bytes);
    } else if (a.type == SPR_GGUF_STRING) {
      assert_true(a.val.str.len == c.val.str.len && memcmp(a.val.str.ptr, c.val.str.ptr, (size_t)a.val.str.len) == 0);
    } else if (a.type == SPR_GGUF_BOOL) {
      assert_int_equal(a.val.b, c.val.b);
    } else {
      assert_memory_equal(&a.val, &c.val, 8);
    }
  }

  /* tensors: metadata, data, contiguous padded offsets, zero padding */
  size_t expect = 0;
  for (int i = 0; i < N_TENSORS; i++) {
    const struct tspec *t = &k_tensors[i];
    struct spr_gguf_tensor gt;
    assert_int_equal(spr_gguf_tensor_at(&g, (uint64_t)i, &gt), SPR_STATUS_OK);
    assert_true(spr_gguf_str_eq(gt.name, t->name));
    assert_int_equal(gt.type, t->type);
    assert_int_equal(gt.n_dims, t->n_dims);
    for (int d = 0; d < 4; d++) assert_int_equal(gt.ne[d], t->ne[d]);
    assert_int_equal(gt.nbytes, spr_tensor_nbytes(t->type, t->ne, t->n_dims));
    assert_int_equal(gt.offset, expect);
    assert_memory_equal(gt.data, data[i], gt.nbytes);
    const size_t padded = (gt.nbytes + align - 1) / align * align;
    for (size_t j = gt.nbytes; j < padded; j++) assert_int_equal(((const uint8_t *)gt.data)[j], 0);
    expect += padded;
    free(data[i]);
  }
  assert_int_equal(g.data_bytes, expect);

  spr_gguf_writer_destroy(w);
  free(buf);
  free(src.b);
}

static void test_round_trip_default(void **state) {
  (void)state;
  round_trip(0);
}

static void test_round_trip_aligned(void **state) {
  (void)state;
  const uint32_t aligns[4] = {8, 16, 64, 256};
  for (int i = 0; i < 4; i++) round_trip(aligns[i]);
}

/* ---- getters -------------------------------------------------------------------- */

static void test_getters(void **state) {
  (void)state;
  struct tb src;
  build_source(&src);
  /* read through the writer, so copy_kv's scalars are checked too */
  struct spr_gguf sg;
  parse_ok(src.b, src.n, &sg);
  struct spr_gguf_writer *w = NULL;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  copy_all(w, &sg);
  void *buf = NULL;
  size_t size = 0;
  assert_int_equal(spr_gguf_writer_write_mem(w, &buf, &size, NULL), SPR_STATUS_OK);
  spr_gguf_writer_destroy(w);
  struct spr_gguf g;
  parse_ok(buf, size, &g);
  /* with default alignment and no tensors, the copy is byte-identical up to the end of the KVs */
  assert_int_equal(g.tinfo_offset, sg.tinfo_offset);
  assert_memory_equal(buf, src.b, sg.tinfo_offset);

  struct {
    const char *key;
    enum spr_status s;
    uint32_t v;
  } u32c[] = {
      {"s.u8", SPR_STATUS_OK, 200},          {"s.i8", SPR_STATUS_BAD_METADATA, 0},
      {"s.i8p", SPR_STATUS_OK, 5},           {"s.u16", SPR_STATUS_OK, 65535},
      {"s.i16", SPR_STATUS_BAD_METADATA, 0}, {"s.u32", SPR_STATUS_OK, 0xFFFFFFFFu},
      {"s.i32", SPR_STATUS_BAD_METADATA, 0}, {"s.u64big", SPR_STATUS_BAD_METADATA, 0},
      {"s.u64", SPR_STATUS_OK, 7},           {"s.i64min", SPR_STATUS_BAD_METADATA, 0},
      {"s.i64", SPR_STATUS_OK, 1u << 31},    {"s.f64", SPR_STATUS_BAD_KV_TYPE, 0},
      {"s.bool", SPR_STATUS_BAD_KV_TYPE, 0}, {"s.str", SPR_STATUS_BAD_KV_TYPE, 0},
      {"s.au64", SPR_STATUS_BAD_KV_TYPE, 0}, {"s.missing", SPR_STATUS_NOT_FOUND, 0},
  };
  for (size_t i = 0; i < sizeof u32c / sizeof u32c[0]; i++) {
    uint32_t v = 12345;
    const enum spr_status s = spr_gguf_get_u32(&g, u32c[i].key, &v);
    if (s != u32c[i].s || (s == SPR_STATUS_OK && v != u32c[i].v)) {
      fail_msg("get_u32(%s): %s %u", u32c[i].key, spr_status_name(s), v);
    }
  }
  int64_t i64;
  assert_int_equal(spr_gguf_get_i64(&g, "s.u64big", &i64), SPR_STATUS_BAD_METADATA);
  assert_int_equal(spr_gguf_get_i64(&g, "s.i64min", &i64), SPR_STATUS_OK);
  assert_true(i64 == INT64_MIN);
  assert_int_equal(spr_gguf_get_i64(&g, "s.i8", &i64), SPR_STATUS_OK);
  assert_int_equal(i64, -3);
  assert_int_equal(spr_gguf_get_i64(&g, "s.u32", &i64), SPR_STATUS_OK);
  assert_int_equal(i64, 0xFFFFFFFFll);
  assert_int_equal(spr_gguf_get_i64(&g, "s.f64", &i64), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_get_i64(&g, "s.nope", &i64), SPR_STATUS_NOT_FOUND);

  float f;
  assert_int_equal(spr_gguf_get_f32(&g, "s.f64", &f), SPR_STATUS_OK);
  assert_true(f == (float)0.1);
  assert_int_equal(spr_gguf_get_f32(&g, "s.f64big", &f), SPR_STATUS_BAD_METADATA);
  assert_int_equal(spr_gguf_get_f32(&g, "s.f64inf", &f), SPR_STATUS_OK);
  assert_true(isinf(f) && f < 0);
  assert_int_equal(spr_gguf_get_f32(&g, "s.u32", &f), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_get_f32(&g, "s.nope", &f), SPR_STATUS_NOT_FOUND);

  bool b;
  assert_int_equal(spr_gguf_get_bool(&g, "s.bool", &b), SPR_STATUS_OK);
  assert_true(b);
  assert_int_equal(spr_gguf_get_bool(&g, "s.u8", &b), SPR_STATUS_BAD_KV_TYPE);
  struct spr_gguf_str s;
  assert_int_equal(spr_gguf_get_str(&g, "s.str", &s), SPR_STATUS_OK);
  assert_true(spr_gguf_str_eq(s, "hello"));
  assert_int_equal(spr_gguf_get_str(&g, "s.u32", &s), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_get_str(&g, "s.nope", &s), SPR_STATUS_NOT_FOUND);

  /* _or: the default only when absent */
  uint32_t u = 0;
  assert_int_equal(spr_gguf_get_u32_or(&g, "s.nope", 77, &u), SPR_STATUS_OK);
  assert_int_equal(u, 77);
  assert_int_equal(spr_gguf_get_u32_or(&g, "s.u16", 77, &u), SPR_STATUS_OK);
  assert_int_equal(u, 65535);
  assert_int_equal(spr_gguf_get_u32_or(&g, "s.str", 77, &u), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_get_u32_or(&g, "s.i8", 77, &u), SPR_STATUS_BAD_METADATA);
  assert_int_equal(spr_gguf_get_f32_or(&g, "s.nope", 1.5f, &f), SPR_STATUS_OK);
  assert_true(f == 1.5f);
  assert_int_equal(spr_gguf_get_f32_or(&g, "s.f64", 1.5f, &f), SPR_STATUS_OK);
  assert_true(f == (float)0.1);
  assert_int_equal(spr_gguf_get_f32_or(&g, "s.u8", 1.5f, &f), SPR_STATUS_BAD_KV_TYPE);

  /* arrays */
  struct spr_gguf_kv kv, scalar;
  double d;
  assert_int_equal(spr_gguf_find_kv(&g, "s.u8", &scalar), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_arr_get_f64(&scalar, 0, &d), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_find_kv(&g, "s.au64", &kv), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_arr_get_f64(&kv, 0, &d), SPR_STATUS_OK);
  assert_true(d == 9223372036854775808.0);
  assert_int_equal(spr_gguf_arr_get_i64(&kv, 0, &i64), SPR_STATUS_BAD_METADATA);
  assert_int_equal(spr_gguf_arr_get_i64(&kv, 1, &i64), SPR_STATUS_OK);
  assert_int_equal(i64, 9);
  assert_int_equal(spr_gguf_arr_get_i64(&kv, 2, &i64), SPR_STATUS_INVALID_ARGUMENT);
  size_t cur = 0;
  assert_int_equal(spr_gguf_arr_next_str(&kv, &cur, &s), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_find_kv(&g, "s.ai8", &kv), SPR_STATUS_OK);
  const int8_t i8s[3] = {-128, 0, 127};
  for (uint64_t i = 0; i < 3; i++) {
    assert_int_equal(spr_gguf_arr_get_i64(&kv, i, &i64), SPR_STATUS_OK);
    assert_int_equal(i64, i8s[i]);
    assert_int_equal(spr_gguf_arr_get_f64(&kv, i, &d), SPR_STATUS_OK);
    assert_true(d == i8s[i]);
  }
  assert_int_equal(spr_gguf_find_kv(&g, "s.af64", &kv), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_arr_get_f64(&kv, 0, &d), SPR_STATUS_OK);
  assert_true(d == -2.5);
  assert_int_equal(spr_gguf_arr_get_i64(&kv, 0, &i64), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_find_kv(&g, "s.abool", &kv), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_arr_get_f64(&kv, 0, &d), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_find_kv(&g, "s.nested_str", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.arr_type, SPR_GGUF_ARRAY);
  assert_int_equal(kv.arr_n, 3);
  assert_int_equal(spr_gguf_arr_get_f64(&kv, 0, &d), SPR_STATUS_BAD_KV_TYPE);
  cur = 0;
  assert_int_equal(spr_gguf_arr_next_str(&kv, &cur, &s), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_find_kv(&g, "s.nested3", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.arr_bytes, (12 + 12 + 2) + (12 + 12 + 8));
  /* a string array with a cursor that is not at an element start stays in bounds */
  assert_int_equal(spr_gguf_find_kv(&g, "s.str", &kv), SPR_STATUS_OK);
  cur = 0;
  assert_int_equal(spr_gguf_arr_next_str(&kv, &cur, &s), SPR_STATUS_BAD_KV_TYPE);

  free(buf);
  free(src.b);
}

/* ---- writer input validation ---------------------------------------------------- */

static char g_long_key[65537];

static enum spr_status finish(struct spr_gguf_writer *w, struct spr_error *err) {
  void *buf = (void *)1;
  size_t size = 1;
  const enum spr_status s = spr_gguf_writer_write_mem(w, &buf, &size, err);
  if (s == SPR_STATUS_OK) {
    struct spr_gguf g;
    parse_ok(buf, size, &g);
    free(buf);
  } else {
    assert_null(buf);
    assert_int_equal(size, 0);
    assert_int_equal(err->status, s);
    assert_true(err->msg[0] != '\0');
  }
  spr_gguf_writer_destroy(w);
  return s;
}

static void test_writer_errors(void **state) {
  (void)state;
  const int64_t ne32[2] = {32, 2};
  static uint8_t data[1 << 12];
  struct spr_error err;
  struct spr_gguf_writer *w;
#define NEW() assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK)
#define EXPECT(st) assert_int_equal(finish(w, &err), (st))

  NEW();
  spr_gguf_writer_add_u32(w, "", 1);
  EXPECT(SPR_STATUS_BAD_STRING);
  NEW();
  spr_gguf_writer_add_u32(w, NULL, 1);
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  memset(g_long_key, 'k', 65536);
  g_long_key[65536] = '\0';
  NEW();
  spr_gguf_writer_add_u32(w, g_long_key, 1);
  EXPECT(SPR_STATUS_BAD_STRING);
  g_long_key[65535] = '\0'; /* the longest key is fine */
  NEW();
  spr_gguf_writer_add_u32(w, g_long_key, 1);
  EXPECT(SPR_STATUS_OK);
  NEW();
  spr_gguf_writer_add_u32(w, "a", 1);
  spr_gguf_writer_add_str(w, "a", "x");
  EXPECT(SPR_STATUS_DUPLICATE);
  assert_non_null(strstr(err.msg, "a"));
  NEW();
  spr_gguf_writer_add_str(w, "k", NULL);
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  NEW();
  const char *const bad_arr[2] = {"x", NULL};
  spr_gguf_writer_add_arr_str(w, "k", bad_arr, 2);
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  NEW();
  spr_gguf_writer_add_arr_f32(w, "k", NULL, 3);
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  NEW();
  spr_gguf_writer_copy_kv(w, NULL);
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);

  /* alignment */
  NEW();
  spr_gguf_writer_set_alignment(w, 12);
  EXPECT(SPR_STATUS_BAD_ALIGNMENT);
  NEW();
  spr_gguf_writer_set_alignment(w, 4);
  EXPECT(SPR_STATUS_BAD_ALIGNMENT);
  NEW();
  spr_gguf_writer_add_str(w, "general.alignment", "64");
  EXPECT(SPR_STATUS_BAD_ALIGNMENT);
  NEW();
  spr_gguf_writer_add_u32(w, "general.alignment", 16);
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 1, ne32, data);
  {
    void *buf;
    size_t size;
    assert_int_equal(spr_gguf_writer_write_mem(w, &buf, &size, &err), SPR_STATUS_OK);
    struct spr_gguf g;
    parse_ok(buf, size, &g);
    assert_int_equal(g.alignment, 16);
    assert_int_equal(g.n_kv, 1);
    free(buf);
    spr_gguf_writer_destroy(w);
  }

  /* tensors */
  char name65[66];
  memset(name65, 'n', 65);
  name65[65] = '\0';
  NEW();
  spr_gguf_writer_add_tensor(w, name65, SPR_DTYPE_F32, 2, ne32, data);
  EXPECT(SPR_STATUS_BAD_STRING);
  name65[64] = '\0';
  NEW();
  spr_gguf_writer_add_tensor(w, name65, SPR_DTYPE_F32, 2, ne32, data);
  EXPECT(SPR_STATUS_OK);
  NEW();
  spr_gguf_writer_add_tensor(w, "", SPR_DTYPE_F32, 2, ne32, data);
  EXPECT(SPR_STATUS_BAD_STRING);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 0, ne32, data);
  EXPECT(SPR_STATUS_BAD_DIMS);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 5, ne32, data);
  EXPECT(SPR_STATUS_BAD_DIMS);
  const int64_t ne_zero[2] = {32, 0}, ne_neg[1] = {-32}, ne_33[1] = {33}, ne_huge[2] = {1ll << 40, 1ll << 40};
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 2, ne_zero, data);
  EXPECT(SPR_STATUS_BAD_DIMS);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 1, ne_neg, data);
  EXPECT(SPR_STATUS_BAD_DIMS);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", (enum spr_dtype)3, 2, ne32, data);
  EXPECT(SPR_STATUS_BAD_TENSOR_TYPE);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_Q8_0, 1, ne_33, data);
  EXPECT(SPR_STATUS_BAD_SHAPE);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 2, ne_huge, data);
  EXPECT(SPR_STATUS_OVERFLOW);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 2, ne32, NULL);
  EXPECT(SPR_STATUS_INVALID_ARGUMENT);
  NEW();
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 2, ne32, data);
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F16, 2, ne32, data);
  EXPECT(SPR_STATUS_DUPLICATE);

  /* sticky: the first error wins and later calls do nothing */
  NEW();
  spr_gguf_writer_add_u32(w, "ok", 1);
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_Q8_0, 1, ne_33, data);
  spr_gguf_writer_add_u32(w, "", 1);
  spr_gguf_writer_set_alignment(w, 3);
  spr_gguf_writer_add_tensor(w, "w", SPR_DTYPE_F32, 2, ne32, data);
  EXPECT(SPR_STATUS_BAD_SHAPE);
  assert_non_null(strstr(err.msg, "ne[0] = 33"));

  /* NULL handling */
  spr_gguf_writer_destroy(NULL);
  spr_gguf_writer_add_u32(NULL, "k", 1);
  assert_int_equal(spr_gguf_writer_create(NULL), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_gguf_writer_write(NULL, "/tmp/x", &err), SPR_STATUS_INVALID_ARGUMENT);
  NEW();
  assert_int_equal(spr_gguf_writer_write(w, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_gguf_writer_write_mem(w, NULL, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
  spr_gguf_writer_destroy(w);
#undef NEW
#undef EXPECT
}

/* ---- file output ------------------------------------------------------------------- */

static void test_write_file(void **state) {
  (void)state;
  struct spr_gguf_writer *w;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  spr_gguf_writer_set_alignment(w, 64);
  spr_gguf_writer_add_str(w, "general.architecture", "test");
  const int64_t ne[2] = {256, 3};
  const size_t nb = spr_tensor_nbytes(SPR_DTYPE_Q4_K, ne, 2);
  uint8_t *data = malloc(nb);
  for (size_t i = 0; i < nb; i++) data[i] = (uint8_t)(i * 13);
  spr_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", SPR_DTYPE_Q4_K, 2, ne, data);
  spr_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", SPR_DTYPE_Q4_K, 2, ne, data);

  char path[] = "/tmp/spr_gguf_writer_XXXXXX";
  const int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  struct spr_error err = {0};
  assert_int_equal(spr_gguf_writer_write(w, path, &err), SPR_STATUS_OK);
  void *mem;
  size_t size;
  assert_int_equal(spr_gguf_writer_write_mem(w, &mem, &size, &err), SPR_STATUS_OK);

  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  uint8_t *file = malloc(size + 1);
  const size_t got = fread(file, 1, size + 1, fp);
  fclose(fp);
  remove(path);
  assert_int_equal(got, size);
  assert_memory_equal(file, mem, size);
  struct spr_gguf g;
  parse_ok(file, got, &g);
  struct spr_gguf_tensor t;
  assert_int_equal(spr_gguf_find_tensor(&g, "blk.0.ffn_down.weight", &t), SPR_STATUS_OK);
  assert_memory_equal(t.data, data, nb);

  assert_int_equal(spr_gguf_writer_write(w, "/nonexistent-dir-spr/x.gguf", &err), SPR_STATUS_IO);
  assert_non_null(strstr(err.msg, "/nonexistent-dir-spr/x.gguf"));
  spr_gguf_writer_destroy(w);
  free(file);
  free(mem);
  free(data);
}

/* Copying every KV of a real vocab file keeps the metadata byte-identical. */
static void test_copy_real_vocab(void **state) {
  (void)state;
  const char *dir = getenv("SPR_SHARED_DIR");
  if (dir == NULL || dir[0] == '\0') dir = SPR_SHARED_DIR;
  char path[1024];
  snprintf(path, sizeof path, "%s/data/tokenizers/ggml-vocab-gpt-2.gguf", dir);
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) {
    printf("  %s absent: skipped\n", path);
    skip();
    return;
  }
  fseek(fp, 0, SEEK_END);
  const size_t n = (size_t)ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *b = malloc(n);
  assert_int_equal(fread(b, 1, n, fp), n);
  fclose(fp);
  struct spr_gguf src;
  parse_ok(b, n, &src);
  struct spr_gguf_writer *w;
  assert_int_equal(spr_gguf_writer_create(&w), SPR_STATUS_OK);
  copy_all(w, &src);
  void *out;
  size_t size;
  assert_int_equal(spr_gguf_writer_write_mem(w, &out, &size, NULL), SPR_STATUS_OK);
  struct spr_gguf g;
  parse_ok(out, size, &g);
  assert_int_equal(g.tinfo_offset, src.tinfo_offset);
  assert_memory_equal(out, b, src.tinfo_offset);
  spr_gguf_writer_destroy(w);
  free(out);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_default),
      cmocka_unit_test(test_round_trip_aligned),
      cmocka_unit_test(test_getters),
      cmocka_unit_test(test_writer_errors),
      cmocka_unit_test(test_write_file),
      cmocka_unit_test(test_copy_real_vocab),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
