/* tests/unit/test_gguf_reader.c — GGUF reader: a hand-built file (independent of
 * the writer), every field mutated to bad values with the exact status each must
 * give, truncation at every length, a byte-flip sweep (for ASan), duplicates,
 * overflow, offsets, and the real vocab files from ../shared when present. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the headers above first
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparrow/gguf.h"

/* ---- a tiny byte-level GGUF builder ------------------------------------------- */

struct tb {
  uint8_t *b;
  size_t n, cap;
};

static size_t tb_put(struct tb *t, const void *p, size_t n) {
  if (t->n + n > t->cap) {
    t->cap = (t->n + n) * 2 + 64;
    t->b = realloc(t->b, t->cap);
    assert_non_null(t->b);
  }
  const size_t at = t->n;
  if (n != 0) memcpy(t->b + at, p, n);
  t->n += n;
  return at;
}
static size_t tb_u8(struct tb *t, uint8_t v) {
  return tb_put(t, &v, 1);
}
static size_t tb_u16(struct tb *t, uint16_t v) {
  return tb_put(t, &v, 2);
}
static size_t tb_u32(struct tb *t, uint32_t v) {
  return tb_put(t, &v, 4);
}
static size_t tb_u64(struct tb *t, uint64_t v) {
  return tb_put(t, &v, 8);
}
static size_t tb_f32(struct tb *t, float v) {
  return tb_put(t, &v, 4);
}
/* Returns the offset of the length field. */
static size_t tb_str(struct tb *t, const char *s) {
  const size_t at = tb_u64(t, strlen(s));
  tb_put(t, s, strlen(s));
  return at;
}
static void tb_pad(struct tb *t, size_t align) {
  while (t->n % align != 0) tb_u8(t, 0);
}
static void tb_header(struct tb *t, uint64_t n_tensors, uint64_t n_kv) {
  tb_put(t, "GGUF", 4);
  tb_u32(t, 3);
  tb_u64(t, n_tensors);
  tb_u64(t, n_kv);
}
/* Offsets of one tensor info's fields. */
struct tinfo_off {
  size_t name_len, n_dims, ne[4], type, offset;
};
static struct tinfo_off tb_tensor(struct tb *t, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                                  uint64_t offset) {
  struct tinfo_off o;
  memset(&o, 0, sizeof o);
  o.name_len = tb_str(t, name);
  o.n_dims = tb_u32(t, n_dims);
  for (uint32_t d = 0; d < n_dims; d++) o.ne[d] = tb_u64(t, ne[d]);
  o.type = tb_u32(t, type);
  o.offset = tb_u64(t, offset);
  return o;
}

static void patch_u32(uint8_t *b, size_t at, uint32_t v) {
  memcpy(b + at, &v, 4);
}
static void patch_u64(uint8_t *b, size_t at, uint64_t v) {
  memcpy(b + at, &v, 8);
}

/* ---- the base file --------------------------------------------------------------
 * kv0 general.architecture str "llama"      kv1 general.alignment u32 64
 * kv2 test.u8 u8 7                           kv3 test.arr_i32 [i32 1,2,3]
 * kv4 test.arr_str [str "a","bc",""]         kv5 test.nested [[u16 1,2],[u16 3]]
 * kv6 test.f32 f32 1.5
 * t0 tok.weight f32 {4,2} @0 (32 B)   t1 blk.0.q q8_0 {32,2} @64 (68 B)   t2 blk.0.n f16 {3} @192 (6 B)
 * The file ends right after t2's data (no trailing padding), so every
 * truncation must fail. */
struct base {
  struct tb f;
  size_t n_tensors, n_kv, version;
  size_t key_len0, type0, str_len0;
  size_t align_type, align_val;
  size_t arr_i32_type, arr_i32_n;
  size_t arr_str_len1;
  size_t nested_inner_type;
  size_t f32_type;
  struct tinfo_off t[3];
  size_t data_offset;
};

static void build_base(struct base *b) {
  memset(b, 0, sizeof *b);
  struct tb *f = &b->f;
  tb_put(f, "GGUF", 4);
  b->version = tb_u32(f, 3);
  b->n_tensors = tb_u64(f, 3);
  b->n_kv = tb_u64(f, 7);
  b->key_len0 = tb_str(f, "general.architecture");
  b->type0 = tb_u32(f, 8);
  b->str_len0 = tb_str(f, "llama");
  tb_str(f, "general.alignment");
  b->align_type = tb_u32(f, 4);
  b->align_val = tb_u32(f, 64);
  tb_str(f, "test.u8");
  tb_u32(f, 0);
  tb_u8(f, 7);
  tb_str(f, "test.arr_i32");
  tb_u32(f, 9);
  b->arr_i32_type = tb_u32(f, 5);
  b->arr_i32_n = tb_u64(f, 3);
  for (uint32_t i = 1; i <= 3; i++) tb_u32(f, i);
  tb_str(f, "test.arr_str");
  tb_u32(f, 9);
  tb_u32(f, 8);
  tb_u64(f, 3);
  tb_str(f, "a");
  b->arr_str_len1 = tb_str(f, "bc");
  tb_str(f, "");
  tb_str(f, "test.nested");
  tb_u32(f, 9);
  tb_u32(f, 9);
  tb_u64(f, 2);
  b->nested_inner_type = tb_u32(f, 2);
  tb_u64(f, 2);
  tb_u16(f, 1);
  tb_u16(f, 2);
  tb_u32(f, 2);
  tb_u64(f, 1);
  tb_u16(f, 3);
  tb_str(f, "test.f32");
  b->f32_type = tb_u32(f, 6);
  tb_f32(f, 1.5f);
  const uint64_t ne0[2] = {4, 2}, ne1[2] = {32, 2}, ne2[1] = {3};
  b->t[0] = tb_tensor(f, "tok.weight", 2, ne0, 0, 0);
  b->t[1] = tb_tensor(f, "blk.0.q", 2, ne1, 8, 64);
  b->t[2] = tb_tensor(f, "blk.0.n", 1, ne2, 1, 192);
  tb_pad(f, 64);
  b->data_offset = f->n;
  for (int i = 0; i < 198; i++) tb_u8(f, (uint8_t)(i * 7 + 1));
}

/* Parses an exact-size heap copy so that ASan sees any over-read. */
static enum spr_status parse_copy(const uint8_t *b, size_t n, struct spr_error *err) {
  uint8_t *c = malloc(n ? n : 1);
  assert_non_null(c);
  if (n) memcpy(c, b, n);
  struct spr_gguf g;
  err->status = SPR_STATUS_OK;
  err->msg[0] = '\0';
  const enum spr_status s = spr_gguf_parse(c, n, &g, err);
  free(c);
  return s;
}

static void test_base_parses(void **state) {
  (void)state;
  struct base b;
  build_base(&b);
  assert_int_equal(b.data_offset, 512);
  assert_int_equal(b.f.n, 710);
  struct spr_gguf g;
  struct spr_error err = {0};
  assert_int_equal(spr_gguf_parse(b.f.b, b.f.n, &g, &err), SPR_STATUS_OK);
  assert_int_equal(g.version, 3);
  assert_int_equal(g.n_kv, 7);
  assert_int_equal(g.n_tensors, 3);
  assert_int_equal(g.alignment, 64);
  assert_int_equal(g.kv_offset, 24);
  assert_int_equal(g.tinfo_offset, b.t[0].name_len);
  assert_int_equal(g.data_offset, 512);
  assert_int_equal(g.data_bytes, 64 + 128 + 64);

  struct spr_gguf_str s;
  assert_int_equal(spr_gguf_get_str(&g, "general.architecture", &s), SPR_STATUS_OK);
  assert_true(spr_gguf_str_eq(s, "llama"));
  assert_false(spr_gguf_str_eq(s, "llam"));
  assert_false(spr_gguf_str_eq(s, "llamas"));
  uint32_t u = 0;
  assert_int_equal(spr_gguf_get_u32(&g, "test.u8", &u), SPR_STATUS_OK);
  assert_int_equal(u, 7);
  assert_int_equal(spr_gguf_get_u32(&g, "general.alignment", &u), SPR_STATUS_OK);
  assert_int_equal(u, 64);
  float f = 0;
  assert_int_equal(spr_gguf_get_f32(&g, "test.f32", &f), SPR_STATUS_OK);
  assert_true(f == 1.5f);
  assert_int_equal(spr_gguf_get_u32(&g, "test.f32", &u), SPR_STATUS_BAD_KV_TYPE);
  assert_int_equal(spr_gguf_get_u32(&g, "test.missing", &u), SPR_STATUS_NOT_FOUND);
  assert_int_equal(spr_gguf_get_u32(&g, "test", &u), SPR_STATUS_NOT_FOUND); /* prefix of a key */

  struct spr_gguf_kv kv;
  assert_int_equal(spr_gguf_find_kv(&g, "test.arr_i32", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.type, SPR_GGUF_ARRAY);
  assert_int_equal(kv.arr_type, SPR_GGUF_I32);
  assert_int_equal(kv.arr_n, 3);
  assert_int_equal(kv.arr_bytes, 12);
  for (uint64_t i = 0; i < 3; i++) {
    int64_t v;
    assert_int_equal(spr_gguf_arr_get_i64(&kv, i, &v), SPR_STATUS_OK);
    assert_int_equal(v, (int64_t)i + 1);
  }
  int64_t v;
  assert_int_equal(spr_gguf_arr_get_i64(&kv, 3, &v), SPR_STATUS_INVALID_ARGUMENT);

  assert_int_equal(spr_gguf_find_kv(&g, "test.arr_str", &kv), SPR_STATUS_OK);
  const char *want[3] = {"a", "bc", ""};
  size_t cur = 0;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(spr_gguf_arr_next_str(&kv, &cur, &s), SPR_STATUS_OK);
    assert_true(spr_gguf_str_eq(s, want[i]));
  }
  assert_int_equal(spr_gguf_arr_next_str(&kv, &cur, &s), SPR_STATUS_NOT_FOUND);

  assert_int_equal(spr_gguf_find_kv(&g, "test.nested", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.arr_type, SPR_GGUF_ARRAY);
  assert_int_equal(kv.arr_n, 2);
  assert_int_equal(kv.arr_bytes, (4 + 8 + 4) + (4 + 8 + 2));
  double d;
  assert_int_equal(spr_gguf_arr_get_f64(&kv, 0, &d), SPR_STATUS_BAD_KV_TYPE);

  assert_int_equal(spr_gguf_kv_at(&g, 6, &kv), SPR_STATUS_OK);
  assert_true(spr_gguf_str_eq(kv.key, "test.f32"));
  assert_int_equal(spr_gguf_kv_at(&g, 7, &kv), SPR_STATUS_INVALID_ARGUMENT);

  const char *names[3] = {"tok.weight", "blk.0.q", "blk.0.n"};
  const size_t offs[3] = {0, 64, 192}, nbytes[3] = {32, 68, 6};
  const enum spr_dtype types[3] = {SPR_DTYPE_F32, SPR_DTYPE_Q8_0, SPR_DTYPE_F16};
  for (uint64_t i = 0; i < 3; i++) {
    struct spr_gguf_tensor t, t2;
    assert_int_equal(spr_gguf_tensor_at(&g, i, &t), SPR_STATUS_OK);
    assert_int_equal(spr_gguf_find_tensor(&g, names[i], &t2), SPR_STATUS_OK);
    assert_true(spr_gguf_str_eq(t.name, names[i]));
    assert_int_equal(t.offset, offs[i]);
    assert_int_equal(t.nbytes, nbytes[i]);
    assert_int_equal(t.type, types[i]);
    assert_ptr_equal(t.data, b.f.b + 512 + offs[i]);
    assert_ptr_equal(t2.data, t.data);
    assert_int_equal(t.ne[2], 1);
    assert_int_equal(t.ne[3], 1);
  }
  struct spr_gguf_tensor t;
  assert_int_equal(spr_gguf_tensor_at(&g, 3, &t), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_gguf_find_tensor(&g, "blk.0", &t), SPR_STATUS_NOT_FOUND);
  free(b.f.b);
}

/* ---- mutations -------------------------------------------------------------------- */

enum width { W32, W64 };
struct mutation {
  const char *what;
  size_t at;
  enum width w;
  uint64_t value;
  enum spr_status want;
};

static void run_mutations(struct base *b, const struct mutation *m, size_t n) {
  int failures = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t *c = malloc(b->f.n);
    assert_non_null(c);
    memcpy(c, b->f.b, b->f.n);
    if (m[i].w == W32) {
      patch_u32(c, m[i].at, (uint32_t)m[i].value);
    } else {
      patch_u64(c, m[i].at, m[i].value);
    }
    struct spr_error err = {0};
    struct spr_gguf g;
    const enum spr_status s = spr_gguf_parse(c, b->f.n, &g, &err);
    printf("  %-40s = %-20llu -> %-15s %s\n", m[i].what, (unsigned long long)m[i].value, spr_status_name(s), err.msg);
    if (s != m[i].want) {
      print_error("mutation %s = %llu: got %s, want %s (%s)\n", m[i].what, (unsigned long long)m[i].value,
                  spr_status_name(s), spr_status_name(m[i].want), err.msg);
      failures++;
    }
    if (s != SPR_STATUS_OK && (err.status != s || err.msg[0] == '\0')) {
      print_error("mutation %s: error message not set\n", m[i].what);
      failures++;
    }
    free(c);
  }
  assert_int_equal(failures, 0);
}

static void test_mutations(void **state) {
  (void)state;
  struct base b;
  build_base(&b);
  const size_t size = b.f.n;
  const struct tinfo_off *t = b.t;
  const struct mutation m[] = {
      {"magic", 0, W32, 0x47475546u /* "FUGG" */, SPR_STATUS_BAD_MAGIC},
      {"magic", 0, W32, 0, SPR_STATUS_BAD_MAGIC},
      {"version", b.version, W32, 0, SPR_STATUS_BAD_VERSION},
      {"version", b.version, W32, 2, SPR_STATUS_BAD_VERSION},
      {"version", b.version, W32, 4, SPR_STATUS_BAD_VERSION},
      {"version", b.version, W32, 0xFFFFFFFFu, SPR_STATUS_BAD_VERSION},
      {"tensor count", b.n_tensors, W64, UINT64_MAX, SPR_STATUS_BAD_COUNT},
      {"tensor count", b.n_tensors, W64, 1ull << 40, SPR_STATUS_BAD_COUNT},
      {"tensor count", b.n_tensors, W64, (710 - 24) / 29 + 1, SPR_STATUS_BAD_COUNT},
      {"tensor count", b.n_tensors, W64, 4, SPR_STATUS_BAD_STRING}, /* 4th name length read from zero padding */
      {"tensor count", b.n_tensors, W64, 2, SPR_STATUS_OK},         /* t2's info becomes unused bytes */
      {"tensor count", b.n_tensors, W64, 0, SPR_STATUS_OK},
      {"kv count", b.n_kv, W64, UINT64_MAX, SPR_STATUS_BAD_COUNT},
      {"kv count", b.n_kv, W64, 1ull << 33, SPR_STATUS_BAD_COUNT},
      {"kv count", b.n_kv, W64, (710 - 24) / 13 + 1, SPR_STATUS_BAD_COUNT},
      {"kv count", b.n_kv, W64, 8, SPR_STATUS_BAD_STRING}, /* t0 read as a u16 KV, table then misaligned */
      {"kv count", b.n_kv, W64, 6, SPR_STATUS_BAD_DIMS},   /* test.f32 read as a tensor: n_dims = type 6 */
      {"kv count", b.n_kv, W64, 0, SPR_STATUS_BAD_DIMS},   /* kv0 read as a tensor: n_dims = type 8 */
      {"key length", b.key_len0, W64, 0, SPR_STATUS_BAD_STRING},
      {"key length", b.key_len0, W64, 65536, SPR_STATUS_BAD_STRING},
      {"key length", b.key_len0, W64, UINT64_MAX, SPR_STATUS_BAD_STRING},
      {"key length", b.key_len0, W64, 1000, SPR_STATUS_TRUNCATED},
      {"key length", b.key_len0, W64, 21, SPR_STATUS_BAD_KV_TYPE}, /* type = 0x05000000 */
      {"key length", b.key_len0, W64, 19, SPR_STATUS_BAD_KV_TYPE}, /* type = 0x865 */
      {"value type", b.type0, W32, 13, SPR_STATUS_BAD_KV_TYPE},
      {"value type", b.type0, W32, 0xFFFFFFFFu, SPR_STATUS_BAD_KV_TYPE},
      {"value type", b.type0, W32, 9, SPR_STATUS_TRUNCATED}, /* array of i32, count from "llam" */
      {"value type f32->f64", b.f32_type, W32, 12, SPR_STATUS_BAD_STRING},
      {"array elem type", b.arr_i32_type, W32, 13, SPR_STATUS_BAD_KV_TYPE},
      {"array elem type", b.arr_i32_type, W32, 0xFFFFFFFFu, SPR_STATUS_BAD_KV_TYPE},
      {"array elem type", b.arr_i32_type, W32, 9, SPR_STATUS_TRUNCATED},   /* inner count 0x300000002 */
      {"array elem type", b.arr_i32_type, W32, 8, SPR_STATUS_BAD_STRING},  /* string length 0x200000001 */
      {"array elem type", b.arr_i32_type, W32, 10, SPR_STATUS_BAD_STRING}, /* swallows next key length */
      {"array length", b.arr_i32_n, W64, UINT64_MAX, SPR_STATUS_TRUNCATED},
      {"array length", b.arr_i32_n, W64, 1ull << 62, SPR_STATUS_TRUNCATED},
      {"array length", b.arr_i32_n, W64, 0, SPR_STATUS_BAD_STRING},
      {"array length", b.arr_i32_n, W64, 4, SPR_STATUS_BAD_STRING},
      {"array length", b.arr_i32_n, W64, 2, SPR_STATUS_BAD_STRING},
      {"nested elem type", b.nested_inner_type, W32, 13, SPR_STATUS_BAD_KV_TYPE},
      {"string length", b.str_len0, W64, UINT64_MAX, SPR_STATUS_BAD_STRING},
      {"string length", b.str_len0, W64, 711, SPR_STATUS_BAD_STRING},
      {"string length", b.str_len0, W64, 710, SPR_STATUS_TRUNCATED},
      {"string length", b.str_len0, W64, 0, SPR_STATUS_BAD_STRING},
      {"array string length", b.arr_str_len1, W64, UINT64_MAX, SPR_STATUS_BAD_STRING},
      {"array string length", b.arr_str_len1, W64, 709, SPR_STATUS_TRUNCATED},
      {"alignment", b.align_val, W32, 0, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment", b.align_val, W32, 1, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment", b.align_val, W32, 4, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment", b.align_val, W32, 48, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment", b.align_val, W32, 65, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment", b.align_val, W32, 0xFFFFFFFFu, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment", b.align_val, W32, 8, SPR_STATUS_BAD_OFFSET},           /* t1 expected at 32 */
      {"alignment", b.align_val, W32, 32, SPR_STATUS_BAD_OFFSET},          /* t1 expected at 32 */
      {"alignment", b.align_val, W32, 128, SPR_STATUS_BAD_OFFSET},         /* t1 offset 64 misaligned */
      {"alignment", b.align_val, W32, 0x80000000u, SPR_STATUS_BAD_OFFSET}, /* t1 offset 64 misaligned */
      {"alignment type", b.align_type, W32, 5, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment type", b.align_type, W32, 10, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment type", b.align_type, W32, 0, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment type", b.align_type, W32, 8, SPR_STATUS_BAD_ALIGNMENT},
      {"alignment type", b.align_type, W32, 13, SPR_STATUS_BAD_ALIGNMENT},
      {"tensor name length", t[0].name_len, W64, 0, SPR_STATUS_BAD_STRING},
      {"tensor name length", t[0].name_len, W64, 65, SPR_STATUS_BAD_STRING},
      {"tensor name length", t[0].name_len, W64, UINT64_MAX, SPR_STATUS_BAD_STRING},
      {"tensor name length", t[0].name_len, W64, 11, SPR_STATUS_BAD_DIMS}, /* n_dims = 0x04000000 */
      {"tensor name length", t[0].name_len, W64, 9, SPR_STATUS_BAD_DIMS},  /* n_dims = 0x274 */
      {"tensor name length", t[2].name_len, W64, 64, SPR_STATUS_BAD_DIMS}, /* n_dims read from padding */
      {"n_dims", t[0].n_dims, W32, 0, SPR_STATUS_BAD_DIMS},
      {"n_dims", t[0].n_dims, W32, 5, SPR_STATUS_BAD_DIMS},
      {"n_dims", t[0].n_dims, W32, 0xFFFFFFFFu, SPR_STATUS_BAD_DIMS},
      {"n_dims", t[0].n_dims, W32, 1, SPR_STATUS_BAD_SHAPE}, /* type read from ne[1] = 2 = q4_0, ne[0] = 4 */
      {"n_dims", t[0].n_dims, W32, 3, SPR_STATUS_BAD_DIMS},  /* ne[2] read from type + offset = 0 */
      {"ne[0]", t[0].ne[0], W64, 0, SPR_STATUS_BAD_DIMS},
      {"ne[0]", t[0].ne[0], W64, UINT64_MAX, SPR_STATUS_BAD_DIMS},
      {"ne[0]", t[0].ne[0], W64, 1ull << 63, SPR_STATUS_BAD_DIMS},
      {"ne[1]", t[0].ne[1], W64, 0, SPR_STATUS_BAD_DIMS},
      {"ne[1]", t[0].ne[1], W64, 1ull << 62, SPR_STATUS_OVERFLOW},       /* 2^64 elements */
      {"ne[1]", t[0].ne[1], W64, 1ull << 61, SPR_STATUS_OVERFLOW},       /* 2^63 elements */
      {"ne[1]", t[0].ne[1], W64, (1ull << 61) - 1, SPR_STATUS_OVERFLOW}, /* bytes overflow size_t */
      {"ne[1]", t[0].ne[1], W64, 3, SPR_STATUS_OK},                      /* 48 B still pads to 64 */
      {"ne[1]", t[0].ne[1], W64, 17, SPR_STATUS_BAD_OFFSET},             /* t1 expected at 320 */
      {"q8_0 ne[0]", t[1].ne[0], W64, 33, SPR_STATUS_BAD_SHAPE},
      {"q8_0 ne[0]", t[1].ne[0], W64, 16, SPR_STATUS_BAD_SHAPE},
      {"q8_0 ne[0]", t[1].ne[0], W64, 0, SPR_STATUS_BAD_DIMS},
      {"q8_0 ne[0]", t[1].ne[0], W64, 64, SPR_STATUS_BAD_OFFSET}, /* t2 expected at 256 */
      {"q8_0 ne[1]", t[1].ne[1], W64, 1ull << 58, SPR_STATUS_OVERFLOW},
      {"last ne[0]", t[2].ne[0], W64, 1000, SPR_STATUS_TRUNCATED},
      {"last ne[0]", t[2].ne[0], W64, 4, SPR_STATUS_TRUNCATED}, /* one element past the end */
      {"last ne[0]", t[2].ne[0], W64, 2, SPR_STATUS_OK},
      {"tensor type", t[0].type, W32, 3, SPR_STATUS_BAD_TENSOR_TYPE},
      {"tensor type", t[0].type, W32, 1000, SPR_STATUS_BAD_TENSOR_TYPE},
      {"tensor type", t[0].type, W32, 0xFFFFFFFFu, SPR_STATUS_BAD_TENSOR_TYPE},
      {"tensor type", t[0].type, W32, 1, SPR_STATUS_OK},        /* f16: 16 B, pads to 64 */
      {"tensor type", t[0].type, W32, 8, SPR_STATUS_BAD_SHAPE}, /* q8_0 with ne[0] = 4 */
      {"tensor type", t[2].type, W32, 0, SPR_STATUS_TRUNCATED}, /* f32: 12 B */
      {"tensor offset", t[0].offset, W64, 64, SPR_STATUS_BAD_OFFSET},
      {"tensor offset", t[0].offset, W64, 1, SPR_STATUS_BAD_OFFSET},
      {"tensor offset", t[0].offset, W64, UINT64_MAX, SPR_STATUS_BAD_OFFSET},
      {"tensor offset", t[1].offset, W64, 0, SPR_STATUS_BAD_OFFSET},   /* overlap */
      {"tensor offset", t[1].offset, W64, 32, SPR_STATUS_BAD_OFFSET},  /* misaligned, overlap */
      {"tensor offset", t[1].offset, W64, 63, SPR_STATUS_BAD_OFFSET},  /* misaligned */
      {"tensor offset", t[1].offset, W64, 128, SPR_STATUS_BAD_OFFSET}, /* gap */
      {"tensor offset", t[2].offset, W64, 64, SPR_STATUS_BAD_OFFSET},  /* out of order */
      {"tensor offset", t[2].offset, W64, 256, SPR_STATUS_BAD_OFFSET}, /* gap */
      {"tensor offset", t[2].offset, W64, 1ull << 60, SPR_STATUS_BAD_OFFSET},
  };
  (void)size;
  run_mutations(&b, m, sizeof m / sizeof m[0]);
  free(b.f.b);
}

/* ---- truncation and byte flips -------------------------------------------------------- */

static bool is_model_error(enum spr_status s) {
  return (int)s >= 200 && (int)s < 300;
}

static void test_truncation(void **state) {
  (void)state;
  struct base b;
  build_base(&b);
  for (size_t n = 0; n < b.f.n; n++) {
    struct spr_error err;
    const enum spr_status s = parse_copy(b.f.b, n, &err);
    if (n < 4) {
      assert_true(s == SPR_STATUS_TRUNCATED || s == SPR_STATUS_BAD_MAGIC);
    } else if (!is_model_error(s)) {
      fail_msg("truncated to %zu bytes: status %s (%s)", n, spr_status_name(s), err.msg);
    }
    assert_int_equal(err.status, s);
    assert_true(err.msg[0] != '\0');
  }
  struct spr_error err;
  assert_int_equal(parse_copy(b.f.b, b.f.n, &err), SPR_STATUS_OK);
  free(b.f.b);
}

/* Touches everything reachable from a parsed file (ASan checks the reads). */
static void exercise(const struct spr_gguf *g) {
  unsigned sink = 0;
  for (uint64_t i = 0; i < g->n_kv; i++) {
    struct spr_gguf_kv kv, kv2;
    assert_int_equal(spr_gguf_kv_at(g, i, &kv), SPR_STATUS_OK);
    char key[80];
    if (kv.key.len < sizeof key && memchr(kv.key.ptr, 0, (size_t)kv.key.len) == NULL) {
      memcpy(key, kv.key.ptr, (size_t)kv.key.len);
      key[kv.key.len] = '\0';
      assert_int_equal(spr_gguf_find_kv(g, key, &kv2), SPR_STATUS_OK);
      assert_int_equal(kv2.type, kv.type);
    }
    if (kv.type == SPR_GGUF_STRING && kv.val.str.len > 0) sink += (uint8_t)kv.val.str.ptr[kv.val.str.len - 1];
    if (kv.type != SPR_GGUF_ARRAY) continue;
    if (kv.arr_type == SPR_GGUF_STRING) {
      size_t cur = 0;
      struct spr_gguf_str s;
      uint64_t n = 0;
      while (spr_gguf_arr_next_str(&kv, &cur, &s) == SPR_STATUS_OK) {
        if (s.len > 0) sink += (uint8_t)s.ptr[s.len - 1];
        n++;
      }
      assert_int_equal(n, kv.arr_n);
    } else {
      for (uint64_t j = 0; j < kv.arr_n && j < 64; j++) {
        double d;
        const enum spr_status s = spr_gguf_arr_get_f64(&kv, j, &d);
        assert_true(s == SPR_STATUS_OK || s == SPR_STATUS_BAD_KV_TYPE);
      }
    }
  }
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t, t2;
    assert_int_equal(spr_gguf_tensor_at(g, i, &t), SPR_STATUS_OK);
    const uint8_t *p = t.data;
    sink += p[0] + p[t.nbytes - 1];
    char name[80];
    memcpy(name, t.name.ptr, (size_t)t.name.len);
    name[t.name.len] = '\0';
    if (strlen(name) == t.name.len) assert_int_equal(spr_gguf_find_tensor(g, name, &t2), SPR_STATUS_OK);
  }
  (void)sink;
}

static void test_byte_flips(void **state) {
  (void)state;
  struct base b;
  build_base(&b);
  const size_t n = b.f.n;
  size_t n_ok = 0, n_err = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t o = b.f.b[i];
    const uint8_t vals[6] = {0x00, 0xFF, (uint8_t)(o ^ 0x01), (uint8_t)(o ^ 0x80), (uint8_t)(o + 1), 0x40};
    for (int k = 0; k < 6; k++) {
      uint8_t *c = malloc(n);
      assert_non_null(c);
      memcpy(c, b.f.b, n);
      c[i] = vals[k];
      struct spr_gguf g;
      struct spr_error err = {0};
      const enum spr_status s = spr_gguf_parse(c, n, &g, &err);
      if (s == SPR_STATUS_OK) {
        exercise(&g);
        n_ok++;
      } else {
        if (!is_model_error(s) || err.status != s || err.msg[0] == '\0') {
          fail_msg("byte %zu = 0x%02x: status %s (%s)", i, vals[k], spr_status_name(s), err.msg);
        }
        n_err++;
      }
      free(c);
    }
  }
  printf("  byte flips: %zu parsed, %zu rejected\n", n_ok, n_err);
  assert_true(n_ok > 0 && n_err > 0);
  free(b.f.b);
}

/* ---- targeted cases ---------------------------------------------------------------- */

static enum spr_status parse_tb(struct tb *f, struct spr_error *err) {
  const enum spr_status s = parse_copy(f->b, f->n, err);
  free(f->b);
  memset(f, 0, sizeof *f);
  return s;
}

static void test_duplicates(void **state) {
  (void)state;
  struct spr_error err;
  struct tb f = {0};
  tb_header(&f, 0, 3);
  tb_str(&f, "a.b");
  tb_u32(&f, 4);
  tb_u32(&f, 1);
  tb_str(&f, "a.c");
  tb_u32(&f, 4);
  tb_u32(&f, 1);
  tb_str(&f, "a.b");
  tb_u32(&f, 8);
  tb_str(&f, "x");
  assert_int_equal(parse_tb(&f, &err), SPR_STATUS_DUPLICATE);
  assert_non_null(strstr(err.msg, "kv 2 (a.b)"));

  tb_header(&f, 0, 2); /* general.alignment twice, both valid */
  for (int i = 0; i < 2; i++) {
    tb_str(&f, "general.alignment");
    tb_u32(&f, 4);
    tb_u32(&f, 32);
  }
  assert_int_equal(parse_tb(&f, &err), SPR_STATUS_DUPLICATE);

  const uint64_t ne[1] = {8};
  tb_header(&f, 3, 0);
  tb_tensor(&f, "w", 1, ne, 0, 0);
  tb_tensor(&f, "v", 1, ne, 0, 32);
  tb_tensor(&f, "w", 1, ne, 0, 64);
  tb_pad(&f, 32);
  for (int i = 0; i < 96; i++) tb_u8(&f, 0);
  assert_int_equal(parse_tb(&f, &err), SPR_STATUS_DUPLICATE);
  assert_non_null(strstr(err.msg, "tensor 2 (w)"));

  /* same names but different lengths are not duplicates */
  tb_header(&f, 2, 2);
  tb_str(&f, "k");
  tb_u32(&f, 0);
  tb_u8(&f, 1);
  tb_str(&f, "kk");
  tb_u32(&f, 0);
  tb_u8(&f, 1);
  tb_tensor(&f, "w", 1, ne, 0, 0);
  tb_tensor(&f, "ww", 1, ne, 0, 32);
  tb_pad(&f, 32);
  for (int i = 0; i < 64; i++) tb_u8(&f, 0);
  assert_int_equal(parse_tb(&f, &err), SPR_STATUS_OK);
}

static void test_overflow_and_offsets(void **state) {
  (void)state;
  struct spr_error err;
  struct tb f = {0};
  /* ne product overflows int64 across 4 dims */
  const uint64_t big[4] = {1ull << 16, 1ull << 16, 1ull << 16, 1ull << 16};
  tb_header(&f, 1, 0);
  tb_tensor(&f, "w", 4, big, 0, 0);
  tb_pad(&f, 32);
  tb_u64(&f, 0);
  assert_int_equal(parse_tb(&f, &err), SPR_STATUS_OVERFLOW);
  assert_non_null(strstr(err.msg, "tensor 0 (w)"));

  /* a valid but huge q4_0 tensor in a tiny file (its 2^50 elements do not fit a
   * 32-bit size_t: there the count itself is refused) */
  const uint64_t fits[2] = {1ull << 40, 1ull << 10};
  tb_header(&f, 1, 0);
  tb_tensor(&f, "w", 2, fits, 2, 0);
  tb_pad(&f, 32);
  assert_int_equal(parse_tb(&f, &err), SIZE_MAX > UINT32_MAX ? SPR_STATUS_TRUNCATED : SPR_STATUS_OVERFLOW);

  /* 2^31 f32 elements: the count fits any size_t, the 8 GiB of bytes only a
   * 64-bit one (32-bit targets: OVERFLOW, never a wrapped size) */
  const uint64_t big32[1] = {1ull << 31};
  tb_header(&f, 1, 0);
  tb_tensor(&f, "w", 1, big32, 0, 0);
  tb_pad(&f, 32);
  assert_int_equal(parse_tb(&f, &err), SIZE_MAX > UINT32_MAX ? SPR_STATUS_TRUNCATED : SPR_STATUS_OVERFLOW);

  /* ne[0] not a multiple of 32 for q8_0 */
  const uint64_t ne_bad[2] = {48, 2};
  tb_header(&f, 1, 0);
  tb_tensor(&f, "q", 2, ne_bad, 8, 0);
  tb_pad(&f, 32);
  for (int i = 0; i < 256; i++) tb_u8(&f, 0);
  assert_int_equal(parse_tb(&f, &err), SPR_STATUS_BAD_SHAPE);
  assert_non_null(strstr(err.msg, "ne[0] = 48"));

  /* overlap / out of order / gap with default alignment 32 */
  const uint64_t ne8[1] = {8}; /* f32: 32 bytes */
  const uint64_t cases[4][3] = {{0, 32, 64}, {0, 0, 32}, {0, 64, 32}, {0, 32, 96}};
  const enum spr_status want[4] = {SPR_STATUS_OK, SPR_STATUS_BAD_OFFSET, SPR_STATUS_BAD_OFFSET, SPR_STATUS_BAD_OFFSET};
  for (int c = 0; c < 4; c++) {
    tb_header(&f, 3, 0);
    tb_tensor(&f, "a", 1, ne8, 0, cases[c][0]);
    tb_tensor(&f, "b", 1, ne8, 0, cases[c][1]);
    tb_tensor(&f, "c", 1, ne8, 0, cases[c][2]);
    tb_pad(&f, 32);
    for (int i = 0; i < 128; i++) tb_u8(&f, 0);
    const enum spr_status s = parse_tb(&f, &err);
    if (s != want[c]) fail_msg("offset case %d: %s (%s)", c, spr_status_name(s), err.msg);
  }
  /* the message names the tensor and where it should have been */
  tb_header(&f, 2, 0);
  tb_tensor(&f, "blk.0.attn_k.weight", 1, ne8, 0, 0);
  tb_tensor(&f, "blk.0.attn_q.weight", 1, ne8, 0, 96);
  tb_pad(&f, 32);
  for (int i = 0; i < 160; i++) tb_u8(&f, 0);
  assert_int_equal(parse_tb(&f, &err), SPR_STATUS_BAD_OFFSET);
  assert_string_equal(err.msg,
                      "tensor 1 (blk.0.attn_q.weight): offset 96 is not where the previous tensor ends (expected 32)");
}

/* Array nesting: 4 levels parse, 5 do not. */
static void nested(struct tb *f, int levels) {
  tb_header(f, 0, 1);
  tb_str(f, "deep");
  tb_u32(f, 9);
  for (int l = 1; l < levels; l++) {
    tb_u32(f, 9);
    tb_u64(f, 1);
  }
  tb_u32(f, 4);
  tb_u64(f, 2);
  tb_u32(f, 11);
  tb_u32(f, 22);
}

static void test_nesting_and_small(void **state) {
  (void)state;
  struct spr_error err;
  struct tb f = {0};
  for (int levels = 1; levels <= 6; levels++) {
    nested(&f, levels);
    const enum spr_status s = parse_tb(&f, &err);
    assert_int_equal(s, levels <= 4 ? SPR_STATUS_OK : SPR_STATUS_BAD_KV_TYPE);
  }
  /* header only: valid, default alignment */
  tb_header(&f, 0, 0);
  struct spr_gguf g;
  assert_int_equal(spr_gguf_parse(f.b, f.n, &g, &err), SPR_STATUS_OK);
  assert_int_equal(g.alignment, 32);
  assert_int_equal(g.data_offset, 24); /* clamped: no tensors, file ends unpadded */
  assert_int_equal(g.data_bytes, 0);
  free(f.b);
  memset(&f, 0, sizeof f);
  /* empty string value, one-byte key */
  tb_header(&f, 0, 1);
  tb_str(&f, "k");
  tb_u32(&f, 8);
  tb_str(&f, "");
  uint8_t *copy = malloc(f.n);
  memcpy(copy, f.b, f.n);
  assert_int_equal(spr_gguf_parse(copy, f.n, &g, &err), SPR_STATUS_OK);
  struct spr_gguf_str s;
  assert_int_equal(spr_gguf_get_str(&g, "k", &s), SPR_STATUS_OK);
  assert_int_equal(s.len, 0);
  free(copy);
  free(f.b);
  memset(&f, 0, sizeof f);
  /* NULL/size edge cases */
  assert_int_equal(spr_gguf_parse(NULL, 0, &g, &err), SPR_STATUS_TRUNCATED);
  assert_int_equal(spr_gguf_parse(NULL, 10, &g, &err), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(spr_gguf_parse("GG", 2, &g, NULL), SPR_STATUS_TRUNCATED);
  assert_int_equal(spr_gguf_parse("GX", 2, &g, NULL), SPR_STATUS_BAD_MAGIC);
  /* the blob may be unaligned */
  struct base b;
  build_base(&b);
  uint8_t *un = malloc(b.f.n + 1);
  memcpy(un + 1, b.f.b, b.f.n);
  assert_int_equal(spr_gguf_parse(un + 1, b.f.n, &g, &err), SPR_STATUS_OK);
  exercise(&g);
  free(un);
  free(b.f.b);
}

/* ---- the real vocab files ---------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return NULL;
  fseek(fp, 0, SEEK_END);
  const long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
  assert_non_null(b);
  *n = fread(b, 1, (size_t)len, fp);
  fclose(fp);
  assert_int_equal(*n, (size_t)len);
  return b;
}

static void check_vocab(const char *file, const char *model) {
  const char *dir = getenv("SPR_SHARED_DIR");
  if (dir == NULL || dir[0] == '\0') dir = SPR_SHARED_DIR;
  char path[1024];
  snprintf(path, sizeof path, "%s/data/tokenizers/%s", dir, file);
  size_t n = 0;
  uint8_t *b = read_file(path, &n);
  if (b == NULL) {
    printf("  %s absent: skipped\n", path);
    skip();
    return;
  }
  struct spr_gguf g;
  struct spr_error err = {0};
  assert_int_equal(spr_gguf_parse(b, n, &g, &err), SPR_STATUS_OK);
  assert_int_equal(g.n_tensors, 0);
  struct spr_gguf_str s;
  assert_int_equal(spr_gguf_get_str(&g, "tokenizer.ggml.model", &s), SPR_STATUS_OK);
  assert_true(spr_gguf_str_eq(s, model));
  struct spr_gguf_kv kv;
  assert_int_equal(spr_gguf_find_kv(&g, "tokenizer.ggml.tokens", &kv), SPR_STATUS_OK);
  assert_int_equal(kv.type, SPR_GGUF_ARRAY);
  assert_int_equal(kv.arr_type, SPR_GGUF_STRING);
  size_t cur = 0;
  uint64_t count = 0;
  while (spr_gguf_arr_next_str(&kv, &cur, &s) == SPR_STATUS_OK) count++;
  assert_int_equal(count, kv.arr_n);
  assert_int_equal(cur, kv.arr_bytes);
  printf("  %s: %llu KVs, %llu tokens\n", file, (unsigned long long)g.n_kv, (unsigned long long)count);
  exercise(&g);
  /* a few truncations of a real file must fail too */
  for (int i = 1; i <= 16; i++) {
    const size_t len = n - (size_t)i * (n / 17);
    assert_true(is_model_error(parse_copy(b, len, &err)));
  }
  assert_true(is_model_error(parse_copy(b, n - 1, &err)));
  free(b);
}

static void test_vocab_llama(void **state) {
  (void)state;
  check_vocab("ggml-vocab-llama-spm.gguf", "llama");
}

static void test_vocab_gpt2(void **state) {
  (void)state;
  check_vocab("ggml-vocab-gpt-2.gguf", "gpt2");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_base_parses),       cmocka_unit_test(test_mutations),
      cmocka_unit_test(test_truncation),        cmocka_unit_test(test_byte_flips),
      cmocka_unit_test(test_duplicates),        cmocka_unit_test(test_overflow_and_offsets),
      cmocka_unit_test(test_nesting_and_small), cmocka_unit_test(test_vocab_llama),
      cmocka_unit_test(test_vocab_gpt2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
