/* runtime/gguf_reader.c — GGUF v3 reader: validate once, then walk on demand.
 *
 * No allocation and no libc beyond <string.h>, so it runs on bare metal over
 * a blob in flash. Every read goes through `struct cur`, which checks the
 * length against what is left before touching a byte (pos <= size always
 * holds, so `size - pos` never wraps). Multi-byte fields are read with memcpy
 * because the blob may be unaligned. The look-up functions reuse the same
 * checked walkers, so they stay in bounds even on a struct they did not
 * expect; they simply return an error instead of crashing.
 *
 * Layout decisions (see include/sparrow/gguf.h for the list of checks):
 *  - array nesting: a top-level array is depth 1, at most 4 levels.
 *  - a file with no tensors may end before the padded data section start
 *    (ggml's vocab-only files do); data_offset is then clamped to size.
 *  - the last tensor need not be followed by its padding in the file. */
#include <float.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/util.h"
#include "sparrow/gguf.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

enum {
  HEADER_BYTES = 24,    /* magic, version, n_tensors, n_kv */
  MIN_KV_BYTES = 13,    /* u64 key length, u32 type, 1-byte value */
  MIN_TINFO_BYTES = 29, /* u64 name length, u32 n_dims, u64 ne, u32 type, u64 offset */
  MAX_KEY = 65535,
  MAX_ARRAY_DEPTH = 4,
  KEY_SHOWN = 60, /* key bytes quoted in messages */
};

/* ---- checked cursor ----------------------------------------------------- */

struct cur {
  const uint8_t *b;
  size_t size;
  size_t pos; /* invariant: pos <= size */
};

static inline size_t cur_left(const struct cur *c) {
  return c->size - c->pos;
}

static inline bool cur_u32(struct cur *c, uint32_t *v) {
  if (cur_left(c) < 4) return false;
  memcpy(v, c->b + c->pos, 4);
  c->pos += 4;
  return true;
}

static inline bool cur_u64(struct cur *c, uint64_t *v) {
  if (cur_left(c) < 8) return false;
  memcpy(v, c->b + c->pos, 8);
  c->pos += 8;
  return true;
}

/* Size of a fixed-width value type; 0 for string, array and unknown. */
static size_t type_size(uint32_t t) {
  switch (t) {
    case SPR_GGUF_U8:
    case SPR_GGUF_I8:
    case SPR_GGUF_BOOL:
      return 1;
    case SPR_GGUF_U16:
    case SPR_GGUF_I16:
      return 2;
    case SPR_GGUF_U32:
    case SPR_GGUF_I32:
    case SPR_GGUF_F32:
      return 4;
    case SPR_GGUF_U64:
    case SPR_GGUF_I64:
    case SPR_GGUF_F64:
      return 8;
    default:
      return 0;
  }
}

static bool type_known(uint32_t t) {
  return t <= SPR_GGUF_F64;
}

static bool type_is_int(uint32_t t) {
  switch (t) {
    case SPR_GGUF_U8:
    case SPR_GGUF_I8:
    case SPR_GGUF_U16:
    case SPR_GGUF_I16:
    case SPR_GGUF_U32:
    case SPR_GGUF_I32:
    case SPR_GGUF_U64:
    case SPR_GGUF_I64:
      return true;
    default:
      return false;
  }
}

static bool type_is_unsigned(uint32_t t) {
  return t == SPR_GGUF_U8 || t == SPR_GGUF_U16 || t == SPR_GGUF_U32 || t == SPR_GGUF_U64;
}

/* Decodes one fixed-width scalar at p into the kv value union. */
static void decode_scalar(uint32_t t, const uint8_t *p, struct spr_gguf_kv *kv) {
  switch (t) {
    case SPR_GGUF_U8:
      kv->val.u = p[0];
      break;
    case SPR_GGUF_I8:
      kv->val.i = (int8_t)p[0];
      break;
    case SPR_GGUF_BOOL:
      kv->val.b = p[0] != 0;
      break;
    case SPR_GGUF_U16: {
      uint16_t v;
      memcpy(&v, p, 2);
      kv->val.u = v;
      break;
    }
    case SPR_GGUF_I16: {
      int16_t v;
      memcpy(&v, p, 2);
      kv->val.i = v;
      break;
    }
    case SPR_GGUF_U32: {
      uint32_t v;
      memcpy(&v, p, 4);
      kv->val.u = v;
      break;
    }
    case SPR_GGUF_I32: {
      int32_t v;
      memcpy(&v, p, 4);
      kv->val.i = v;
      break;
    }
    case SPR_GGUF_F32: {
      float v;
      memcpy(&v, p, 4);
      kv->val.f = v;
      break;
    }
    case SPR_GGUF_U64:
      memcpy(&kv->val.u, p, 8);
      break;
    case SPR_GGUF_I64:
      memcpy(&kv->val.i, p, 8);
      break;
    case SPR_GGUF_F64:
      memcpy(&kv->val.f, p, 8);
      break;
    default:
      break;
  }
}

/* ---- messages ------------------------------------------------------------ */

/* Which KV a message is about. The key is quoted (shortened) when known. */
struct kv_ctx {
  uint64_t index;
  const char *key;
  int key_len;
};

#define KV_FMT "kv %llu (%.*s): "
#define KV_ARGS(k) (unsigned long long)(k)->index, (k)->key_len, (k)->key

static void kv_ctx_set_key(struct kv_ctx *k, const uint8_t *p, uint64_t len) {
  k->key = (const char *)p;
  k->key_len = (int)(len < KEY_SHOWN ? len : KEY_SHOWN);
}

/* ---- values -------------------------------------------------------------- */

/* Validates and steps over a string (u64 length + bytes). */
static enum spr_status walk_string(struct cur *c, const struct kv_ctx *k, const char *what, struct spr_error *err) {
  uint64_t len;
  SPR_CHECK(cur_u64(c, &len), SPR_STATUS_TRUNCATED, KV_FMT "%s length is cut off at byte %zu", KV_ARGS(k), what,
            c->size);
  SPR_CHECK(len <= c->size, SPR_STATUS_BAD_STRING, KV_FMT "%s length %llu exceeds the file size (%zu)", KV_ARGS(k),
            what, (unsigned long long)len, c->size);
  SPR_CHECK(len <= cur_left(c), SPR_STATUS_TRUNCATED, KV_FMT "%s of %llu bytes at byte %zu runs past the end (%zu)",
            KV_ARGS(k), what, (unsigned long long)len, c->pos, c->size);
  c->pos += (size_t)len;
  return SPR_STATUS_OK;
}

/* Validates and steps over a value of `type`; `depth` = arrays enclosing it. */
static enum spr_status walk_value(struct cur *c, uint32_t type, int depth, const struct kv_ctx *k,
                                  struct spr_error *err) {
  const size_t ts = type_size(type);
  if (ts != 0) {
    SPR_CHECK(ts <= cur_left(c), SPR_STATUS_TRUNCATED, KV_FMT "value at byte %zu runs past the end (%zu)", KV_ARGS(k),
              c->pos, c->size);
    c->pos += ts;
    return SPR_STATUS_OK;
  }
  if (type == SPR_GGUF_STRING) return walk_string(c, k, "string", err);
  SPR_CHECK(type == SPR_GGUF_ARRAY, SPR_STATUS_BAD_KV_TYPE, KV_FMT "unknown value type %u", KV_ARGS(k), type);
  SPR_CHECK(depth < MAX_ARRAY_DEPTH, SPR_STATUS_BAD_KV_TYPE, KV_FMT "arrays nested deeper than %d", KV_ARGS(k),
            MAX_ARRAY_DEPTH);

  uint32_t et;
  uint64_t n;
  SPR_CHECK(cur_u32(c, &et) && cur_u64(c, &n), SPR_STATUS_TRUNCATED, KV_FMT "array header is cut off at byte %zu",
            KV_ARGS(k), c->size);
  SPR_CHECK(type_known(et), SPR_STATUS_BAD_KV_TYPE, KV_FMT "unknown array element type %u", KV_ARGS(k), et);
  /* Every element takes at least min_elem bytes: reject impossible counts before walking. */
  const size_t es = type_size(et);
  const size_t min_elem = es != 0 ? es : et == SPR_GGUF_STRING ? 8 : 12;
  SPR_CHECK(n <= cur_left(c) / min_elem, SPR_STATUS_TRUNCATED,
            KV_FMT "array of %llu elements (>= %zu bytes each) at byte %zu runs past the end (%zu)", KV_ARGS(k),
            (unsigned long long)n, min_elem, c->pos, c->size);
  if (es != 0) {
    c->pos += (size_t)n * es;
  } else if (et == SPR_GGUF_STRING) {
    /* Hot path at load: token lists hold tens of thousands of strings. */
    for (uint64_t i = 0; i < n; i++) {
      uint64_t len;
      SPR_CHECK(cur_u64(c, &len), SPR_STATUS_TRUNCATED, KV_FMT "length of array string %llu is cut off at byte %zu",
                KV_ARGS(k), (unsigned long long)i, c->size);
      if (len > cur_left(c)) {
        return SPR_FAIL(len > c->size ? SPR_STATUS_BAD_STRING : SPR_STATUS_TRUNCATED,
                        KV_FMT "array string %llu of %llu bytes at byte %zu runs past the end (%zu)", KV_ARGS(k),
                        (unsigned long long)i, (unsigned long long)len, c->pos, c->size);
      }
      c->pos += (size_t)len;
    }
  } else {
    for (uint64_t i = 0; i < n; i++) SPR_TRY(walk_value(c, SPR_GGUF_ARRAY, depth + 1, k, err));
  }
  return SPR_STATUS_OK;
}

/* Reads the key of the KV at c (length 1..65535, inside the blob). */
static enum spr_status read_key(struct cur *c, struct spr_gguf_str *key, struct kv_ctx *k, struct spr_error *err) {
  uint64_t len;
  SPR_CHECK(cur_u64(c, &len), SPR_STATUS_TRUNCATED, "kv %llu: key length is cut off at byte %zu",
            (unsigned long long)k->index, c->size);
  SPR_CHECK(len >= 1 && len <= MAX_KEY, SPR_STATUS_BAD_STRING, "kv %llu: key length %llu is not in 1..%d",
            (unsigned long long)k->index, (unsigned long long)len, MAX_KEY);
  SPR_CHECK(len <= cur_left(c), SPR_STATUS_TRUNCATED, "kv %llu: key of %llu bytes at byte %zu runs past the end (%zu)",
            (unsigned long long)k->index, (unsigned long long)len, c->pos, c->size);
  key->ptr = (const char *)(c->b + c->pos);
  key->len = len;
  kv_ctx_set_key(k, c->b + c->pos, len);
  c->pos += (size_t)len;
  return SPR_STATUS_OK;
}

static bool str_same(struct spr_gguf_str a, struct spr_gguf_str b) {
  return a.len == b.len && memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

/* Reads the KV at c into kv (when non-NULL) and steps over it. */
static enum spr_status next_kv(struct cur *c, struct kv_ctx *k, struct spr_gguf_kv *kv, struct spr_error *err) {
  struct spr_gguf_str key;
  uint32_t type;
  SPR_TRY(read_key(c, &key, k, err));
  SPR_CHECK(cur_u32(c, &type), SPR_STATUS_TRUNCATED, KV_FMT "value type is cut off at byte %zu", KV_ARGS(k), c->size);
  const size_t at = c->pos;
  SPR_TRY(walk_value(c, type, 0, k, err));
  if (kv == NULL) return SPR_STATUS_OK;

  memset(kv, 0, sizeof *kv);
  kv->key = key;
  kv->type = (enum spr_gguf_type)type;
  if (type_size(type) != 0) {
    decode_scalar(type, c->b + at, kv);
  } else if (type == SPR_GGUF_STRING) {
    memcpy(&kv->val.str.len, c->b + at, 8);
    kv->val.str.ptr = (const char *)(c->b + at + 8);
  } else { /* array: header already validated by walk_value */
    uint32_t et;
    memcpy(&et, c->b + at, 4);
    memcpy(&kv->arr_n, c->b + at + 4, 8);
    kv->arr_type = (enum spr_gguf_type)et;
    kv->arr_data = c->b + at + 12;
    kv->arr_bytes = c->pos - (at + 12);
  }
  return SPR_STATUS_OK;
}

/* ---- tensor infos ---------------------------------------------------------- */

struct tinfo {
  struct spr_gguf_str name;
  uint32_t n_dims;
  uint64_t ne[SPR_GGUF_MAX_DIMS];
  uint32_t type;
  uint64_t offset;
};

/* Bounds-checked read of one tensor info with no semantic checks: used to
 * walk a table that spr_gguf_parse already validated. */
static bool next_tinfo_raw(struct cur *c, struct tinfo *t) {
  uint64_t len;
  if (!cur_u64(c, &len) || len > cur_left(c)) return false;
  t->name.ptr = (const char *)(c->b + c->pos);
  t->name.len = len;
  c->pos += (size_t)len;
  if (!cur_u32(c, &t->n_dims) || t->n_dims > SPR_GGUF_MAX_DIMS) return false;
  for (uint32_t d = 0; d < SPR_GGUF_MAX_DIMS; d++) {
    t->ne[d] = 1;
    if (d < t->n_dims && !cur_u64(c, &t->ne[d])) return false;
  }
  return cur_u32(c, &t->type) && cur_u64(c, &t->offset);
}

static bool dtype_supported(uint32_t t) {
  switch (t) {
    case SPR_DTYPE_F32:
    case SPR_DTYPE_F16:
    case SPR_DTYPE_Q4_0:
    case SPR_DTYPE_Q8_0:
    case SPR_DTYPE_Q4_K:
    case SPR_DTYPE_Q6_K:
    case SPR_DTYPE_I8:
    case SPR_DTYPE_I16:
    case SPR_DTYPE_I32:
      return true;
    default:
      return false;
  }
}

#define T_FMT "tensor %llu (%.*s): "
#define T_ARGS(i, t) (unsigned long long)(i), (int)(t)->name.len, (t)->name.ptr

/* Reads and fully validates tensor info `i` (everything but its offset). */
static enum spr_status parse_tinfo(struct cur *c, uint64_t i, struct tinfo *t, size_t *nbytes, struct spr_error *err) {
  uint64_t len;
  SPR_CHECK(cur_u64(c, &len), SPR_STATUS_TRUNCATED, "tensor %llu: name length is cut off at byte %zu",
            (unsigned long long)i, c->size);
  SPR_CHECK(len >= 1 && len <= SPR_GGUF_MAX_NAME, SPR_STATUS_BAD_STRING,
            "tensor %llu: name length %llu is not in 1..%d", (unsigned long long)i, (unsigned long long)len,
            SPR_GGUF_MAX_NAME);
  SPR_CHECK(len <= cur_left(c), SPR_STATUS_TRUNCATED, "tensor %llu: name at byte %zu runs past the end (%zu)",
            (unsigned long long)i, c->pos, c->size);
  t->name.ptr = (const char *)(c->b + c->pos);
  t->name.len = len;
  c->pos += (size_t)len;

  SPR_CHECK(cur_u32(c, &t->n_dims), SPR_STATUS_TRUNCATED, T_FMT "n_dims is cut off at byte %zu", T_ARGS(i, t), c->size);
  SPR_CHECK(t->n_dims >= 1 && t->n_dims <= SPR_GGUF_MAX_DIMS, SPR_STATUS_BAD_DIMS, T_FMT "n_dims %u is not in 1..%d",
            T_ARGS(i, t), t->n_dims, SPR_GGUF_MAX_DIMS);
  uint64_t elems = 1;
  for (uint32_t d = 0; d < SPR_GGUF_MAX_DIMS; d++) {
    t->ne[d] = 1;
    if (d >= t->n_dims) continue;
    SPR_CHECK(cur_u64(c, &t->ne[d]), SPR_STATUS_TRUNCATED, T_FMT "ne[%u] is cut off at byte %zu", T_ARGS(i, t), d,
              c->size);
    SPR_CHECK(t->ne[d] >= 1 && t->ne[d] <= (uint64_t)INT64_MAX, SPR_STATUS_BAD_DIMS, T_FMT "ne[%u] = %lld is not >= 1",
              T_ARGS(i, t), d, (long long)t->ne[d]);
    SPR_CHECK(elems <= (uint64_t)INT64_MAX / t->ne[d], SPR_STATUS_OVERFLOW,
              T_FMT "element count overflows int64 at ne[%u] = %llu", T_ARGS(i, t), d, (unsigned long long)t->ne[d]);
    elems *= t->ne[d];
#if SIZE_MAX < UINT64_MAX
    SPR_CHECK(elems <= SIZE_MAX, SPR_STATUS_OVERFLOW, T_FMT "element count overflows size_t at ne[%u] = %llu",
              T_ARGS(i, t), d, (unsigned long long)t->ne[d]);
#endif
  }
  SPR_CHECK(cur_u32(c, &t->type), SPR_STATUS_TRUNCATED, T_FMT "type is cut off at byte %zu", T_ARGS(i, t), c->size);
  SPR_CHECK(dtype_supported(t->type), SPR_STATUS_BAD_TENSOR_TYPE, T_FMT "type %u is not supported", T_ARGS(i, t),
            t->type);
  const enum spr_dtype dt = (enum spr_dtype)t->type;
  const size_t block = spr_dtype_block_elems(dt);
  SPR_CHECK(t->ne[0] % block == 0, SPR_STATUS_BAD_SHAPE,
            T_FMT "ne[0] = %llu is not a multiple of the %s block size %zu", T_ARGS(i, t), (unsigned long long)t->ne[0],
            spr_dtype_name(dt), block);
  int64_t ne[SPR_GGUF_MAX_DIMS];
  for (int d = 0; d < SPR_GGUF_MAX_DIMS; d++) ne[d] = (int64_t)t->ne[d];
  *nbytes = spr_tensor_nbytes(dt, ne, t->n_dims);
  SPR_CHECK(*nbytes != 0, SPR_STATUS_OVERFLOW, T_FMT "size in bytes of %llu %s elements overflows", T_ARGS(i, t),
            (unsigned long long)elems, spr_dtype_name(dt));
  SPR_CHECK(cur_u64(c, &t->offset), SPR_STATUS_TRUNCATED, T_FMT "offset is cut off at byte %zu", T_ARGS(i, t), c->size);
  return SPR_STATUS_OK;
}

static void fill_tensor(const struct spr_gguf *g, const struct tinfo *t, struct spr_gguf_tensor *out) {
  out->name = t->name;
  out->n_dims = t->n_dims;
  for (int d = 0; d < SPR_GGUF_MAX_DIMS; d++) out->ne[d] = (int64_t)t->ne[d];
  out->type = (enum spr_dtype)t->type;
  out->offset = t->offset;
  out->nbytes = spr_tensor_nbytes(out->type, out->ne, out->n_dims);
  out->data = g->base + g->data_offset + (size_t)t->offset;
}

/* Checks the tensor's data lies inside the blob (tables from parse always do). */
static bool tensor_in_blob(const struct spr_gguf *g, const struct tinfo *t) {
  if (!dtype_supported(t->type) || t->n_dims < 1) return false;
  int64_t ne[SPR_GGUF_MAX_DIMS];
  for (int d = 0; d < SPR_GGUF_MAX_DIMS; d++) ne[d] = (int64_t)t->ne[d];
  const size_t nb = spr_tensor_nbytes((enum spr_dtype)t->type, ne, t->n_dims);
  size_t end;
  return nb != 0 && g->data_offset <= g->size && t->offset <= g->size - g->data_offset &&
         spr_add_ok(g->data_offset + (size_t)t->offset, nb, &end) && end <= g->size;
}

/* ---- parse ------------------------------------------------------------------ */

static enum spr_status parse_kvs(struct spr_gguf *g, struct cur *c, struct spr_error *err) {
  for (uint64_t i = 0; i < g->n_kv; i++) {
    struct kv_ctx k = {i, "", 0};
    struct spr_gguf_kv kv;
    const size_t start = c->pos;
    /* general.alignment's type is checked before its value is walked. */
    struct cur probe = *c;
    struct spr_gguf_str key = {0};
    uint32_t type = 0;
    SPR_TRY(read_key(&probe, &key, &k, err));
    SPR_CHECK(cur_u32(&probe, &type), SPR_STATUS_TRUNCATED, KV_FMT "value type is cut off at byte %zu", KV_ARGS(&k),
              c->size);
    const bool is_alignment = spr_gguf_str_eq(key, "general.alignment");
    SPR_CHECK(!is_alignment || type == SPR_GGUF_U32, SPR_STATUS_BAD_ALIGNMENT, KV_FMT "must have type u32 (4), not %u",
              KV_ARGS(&k), type);
    SPR_TRY(next_kv(c, &k, &kv, err));
    if (is_alignment) {
      const uint64_t a = kv.val.u;
      SPR_CHECK(a >= 8 && (a & (a - 1)) == 0, SPR_STATUS_BAD_ALIGNMENT, KV_FMT "%llu is not a power of two >= 8",
                KV_ARGS(&k), (unsigned long long)a);
      g->alignment = (size_t)a;
    }

    /* Duplicates: compare with every earlier key (validated, so this cannot fail). */
    struct cur p = {c->b, start, g->kv_offset};
    struct kv_ctx pk = {0, "", 0};
    for (uint64_t j = 0; j < i; j++) {
      struct spr_gguf_kv prev;
      pk.index = j;
      SPR_TRY(next_kv(&p, &pk, &prev, err));
      SPR_CHECK(!str_same(prev.key, kv.key), SPR_STATUS_DUPLICATE, KV_FMT "duplicate key (first seen as kv %llu)",
                KV_ARGS(&k), (unsigned long long)j);
    }
  }
  return SPR_STATUS_OK;
}

static enum spr_status parse_tensors(struct spr_gguf *g, struct cur *c, struct spr_error *err) {
  size_t expected = 0; /* where the next tensor must start: sum of padded sizes so far */
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct tinfo t = {0};
    size_t nbytes = 0;
    const size_t start = c->pos;
    SPR_TRY(parse_tinfo(c, i, &t, &nbytes, err));
    SPR_CHECK(t.offset % g->alignment == 0, SPR_STATUS_BAD_OFFSET,
              T_FMT "offset %llu is not a multiple of the alignment %zu", T_ARGS(i, &t), (unsigned long long)t.offset,
              g->alignment);
    SPR_CHECK(t.offset == expected, SPR_STATUS_BAD_OFFSET,
              T_FMT "offset %llu is not where the previous tensor ends (expected %zu)", T_ARGS(i, &t),
              (unsigned long long)t.offset, expected);
    SPR_CHECK(
        nbytes <= SIZE_MAX - (g->alignment - 1) && spr_add_ok(expected, spr_align_up(nbytes, g->alignment), &expected),
        SPR_STATUS_OVERFLOW, T_FMT "data section size overflows", T_ARGS(i, &t));

    struct cur p = {c->b, start, g->tinfo_offset};
    for (uint64_t j = 0; j < i; j++) {
      struct tinfo prev;
      SPR_CHECK(next_tinfo_raw(&p, &prev), SPR_STATUS_TRUNCATED, "tensor %llu: table walk failed",
                (unsigned long long)j);
      SPR_CHECK(!str_same(prev.name, t.name), SPR_STATUS_DUPLICATE, T_FMT "duplicate name (first seen as tensor %llu)",
                T_ARGS(i, &t), (unsigned long long)j);
    }
  }
  g->data_bytes = expected;
  return SPR_STATUS_OK;
}

static enum spr_status parse(const uint8_t *b, size_t size, struct spr_gguf *g, struct spr_error *err) {
  static const uint8_t k_magic[4] = {'G', 'G', 'U', 'F'};
  SPR_CHECK(size == 0 || memcmp(b, k_magic, size < 4 ? size : 4) == 0, SPR_STATUS_BAD_MAGIC,
            "gguf: magic is not \"GGUF\" (not a GGUF file)");
  SPR_CHECK(size >= HEADER_BYTES, SPR_STATUS_TRUNCATED, "gguf: file of %zu bytes is shorter than the %d-byte header",
            size, HEADER_BYTES);

  struct cur c = {b, size, 4};
  (void)cur_u32(&c, &g->version);
  (void)cur_u64(&c, &g->n_tensors);
  (void)cur_u64(&c, &g->n_kv);
  SPR_CHECK(g->version == SPR_GGUF_VERSION, SPR_STATUS_BAD_VERSION, "gguf: version %u is not %d", g->version,
            SPR_GGUF_VERSION);
  const uint64_t room = size - HEADER_BYTES;
  SPR_CHECK(g->n_kv <= room / MIN_KV_BYTES, SPR_STATUS_BAD_COUNT,
            "gguf: metadata_kv_count %llu cannot fit in a file of %zu bytes", (unsigned long long)g->n_kv, size);
  SPR_CHECK(g->n_tensors <= (room - g->n_kv * MIN_KV_BYTES) / MIN_TINFO_BYTES, SPR_STATUS_BAD_COUNT,
            "gguf: tensor_count %llu (after %llu KVs) cannot fit in a file of %zu bytes",
            (unsigned long long)g->n_tensors, (unsigned long long)g->n_kv, size);

  g->base = b;
  g->size = size;
  g->alignment = SPR_GGUF_DEFAULT_ALIGNMENT;
  g->kv_offset = c.pos;
  SPR_TRY(parse_kvs(g, &c, err));
  g->tinfo_offset = c.pos;
  SPR_TRY(parse_tensors(g, &c, err));

  size_t data_offset;
  SPR_CHECK(spr_add_ok(c.pos, g->alignment - 1, &data_offset), SPR_STATUS_OVERFLOW, "gguf: data offset overflows");
  data_offset &= ~(g->alignment - 1);
  if (g->n_tensors == 0) {
    g->data_offset = data_offset < size ? data_offset : size; /* vocab-only files end unpadded */
    return SPR_STATUS_OK;
  }
  g->data_offset = data_offset;
  /* Offsets are contiguous, so report the first tensor whose data leaves the blob. */
  struct cur p = {b, size, g->tinfo_offset};
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct tinfo t = {0};
    SPR_CHECK(next_tinfo_raw(&p, &t), SPR_STATUS_TRUNCATED, "tensor %llu: table walk failed", (unsigned long long)i);
    if (!tensor_in_blob(g, &t)) {
      int64_t ne[SPR_GGUF_MAX_DIMS];
      for (int d = 0; d < SPR_GGUF_MAX_DIMS; d++) ne[d] = (int64_t)t.ne[d];
      (void)ne; /* only the message reads it (SPR_NO_ERROR_STRINGS drops messages) */
      return SPR_FAIL(SPR_STATUS_TRUNCATED,
                      T_FMT "%zu bytes of data at %zu + offset %llu run past the end of the file (%zu)", T_ARGS(i, &t),
                      spr_tensor_nbytes((enum spr_dtype)t.type, ne, t.n_dims), data_offset,
                      (unsigned long long)t.offset, size);
    }
  }
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_parse(const void *blob, size_t size, struct spr_gguf *g, struct spr_error *err) {
  SPR_CHECK(g != NULL, SPR_STATUS_INVALID_ARGUMENT, "gguf: output struct is NULL");
  memset(g, 0, sizeof *g);
  SPR_CHECK(blob != NULL || size == 0, SPR_STATUS_INVALID_ARGUMENT, "gguf: blob is NULL");
  const enum spr_status s = parse((const uint8_t *)blob, size, g, err);
  if (s != SPR_STATUS_OK) memset(g, 0, sizeof *g);
  return s;
}

/* ---- metadata look-up --------------------------------------------------------- */

enum spr_status spr_gguf_kv_at(const struct spr_gguf *g, uint64_t index, struct spr_gguf_kv *kv) {
  if (g == NULL || kv == NULL || index >= g->n_kv) return SPR_STATUS_INVALID_ARGUMENT;
  struct cur c = {g->base, g->tinfo_offset, g->kv_offset};
  struct kv_ctx k = {0, "", 0};
  for (uint64_t i = 0; i < index; i++) SPR_TRY(next_kv(&c, &k, NULL, NULL));
  return next_kv(&c, &k, kv, NULL);
}

enum spr_status spr_gguf_find_kv(const struct spr_gguf *g, const char *key, struct spr_gguf_kv *kv) {
  if (g == NULL || key == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  struct cur c = {g->base, g->tinfo_offset, g->kv_offset};
  struct kv_ctx k = {0, "", 0};
  for (uint64_t i = 0; i < g->n_kv; i++) {
    struct spr_gguf_str name = {0};
    uint32_t type = 0;
    const size_t start = c.pos;
    SPR_TRY(read_key(&c, &name, &k, NULL));
    if (!cur_u32(&c, &type)) return SPR_STATUS_TRUNCATED;
    if (spr_gguf_str_eq(name, key)) {
      c.pos = start;
      struct spr_gguf_kv tmp;
      return next_kv(&c, &k, kv != NULL ? kv : &tmp, NULL);
    }
    SPR_TRY(walk_value(&c, type, 0, &k, NULL));
  }
  return SPR_STATUS_NOT_FOUND;
}

/* The value of an integer KV as (negative?, magnitude). */
static enum spr_status kv_int(const struct spr_gguf *g, const char *key, bool *neg, uint64_t *mag) {
  struct spr_gguf_kv kv;
  SPR_TRY(spr_gguf_find_kv(g, key, &kv));
  if (!type_is_int(kv.type)) return SPR_STATUS_BAD_KV_TYPE;
  if (type_is_unsigned(kv.type)) {
    *neg = false;
    *mag = kv.val.u;
  } else {
    *neg = kv.val.i < 0;
    *mag = *neg ? (uint64_t)0 - (uint64_t)kv.val.i : (uint64_t)kv.val.i;
  }
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_get_u32(const struct spr_gguf *g, const char *key, uint32_t *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  bool neg;
  uint64_t mag;
  SPR_TRY(kv_int(g, key, &neg, &mag));
  if (neg || mag > UINT32_MAX) return SPR_STATUS_BAD_METADATA;
  *out = (uint32_t)mag;
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_get_i64(const struct spr_gguf *g, const char *key, int64_t *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  bool neg;
  uint64_t mag;
  SPR_TRY(kv_int(g, key, &neg, &mag));
  if (neg) {
    if (mag > (uint64_t)INT64_MAX + 1) return SPR_STATUS_BAD_METADATA;
    *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  } else {
    if (mag > (uint64_t)INT64_MAX) return SPR_STATUS_BAD_METADATA;
    *out = (int64_t)mag;
  }
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_get_f32(const struct spr_gguf *g, const char *key, float *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  struct spr_gguf_kv kv;
  SPR_TRY(spr_gguf_find_kv(g, key, &kv));
  if (kv.type != SPR_GGUF_F32 && kv.type != SPR_GGUF_F64) return SPR_STATUS_BAD_KV_TYPE;
  const double v = kv.val.f;
  /* A finite f64 beyond the f32 range is out of range (inf and NaN pass through). */
  const bool finite = v - v == 0.0;
  if (finite && (v > FLT_MAX || v < -FLT_MAX)) return SPR_STATUS_BAD_METADATA;
  *out = (float)v;
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_get_bool(const struct spr_gguf *g, const char *key, bool *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  struct spr_gguf_kv kv;
  SPR_TRY(spr_gguf_find_kv(g, key, &kv));
  if (kv.type != SPR_GGUF_BOOL) return SPR_STATUS_BAD_KV_TYPE;
  *out = kv.val.b;
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_get_str(const struct spr_gguf *g, const char *key, struct spr_gguf_str *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  struct spr_gguf_kv kv;
  SPR_TRY(spr_gguf_find_kv(g, key, &kv));
  if (kv.type != SPR_GGUF_STRING) return SPR_STATUS_BAD_KV_TYPE;
  *out = kv.val.str;
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_get_u32_or(const struct spr_gguf *g, const char *key, uint32_t def, uint32_t *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  const enum spr_status s = spr_gguf_get_u32(g, key, out);
  if (s == SPR_STATUS_NOT_FOUND) {
    *out = def;
    return SPR_STATUS_OK;
  }
  return s;
}

enum spr_status spr_gguf_get_f32_or(const struct spr_gguf *g, const char *key, float def, float *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  const enum spr_status s = spr_gguf_get_f32(g, key, out);
  if (s == SPR_STATUS_NOT_FOUND) {
    *out = def;
    return SPR_STATUS_OK;
  }
  return s;
}

/* ---- arrays ------------------------------------------------------------------- */

/* Locates numeric element i: BAD_KV_TYPE unless kv is a numeric array, INVALID_ARGUMENT past its end. */
static enum spr_status arr_elem(const struct spr_gguf_kv *kv, uint64_t i, const uint8_t **p, size_t *es) {
  if (kv == NULL || kv->type != SPR_GGUF_ARRAY) return SPR_STATUS_BAD_KV_TYPE;
  *es = type_size(kv->arr_type);
  if (*es == 0 || kv->arr_type == SPR_GGUF_BOOL) return SPR_STATUS_BAD_KV_TYPE;
  if (i >= kv->arr_n || i >= kv->arr_bytes / *es) return SPR_STATUS_INVALID_ARGUMENT;
  *p = kv->arr_data + (size_t)i * *es;
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_arr_get_f64(const struct spr_gguf_kv *kv, uint64_t i, double *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  const uint8_t *p;
  size_t es;
  SPR_TRY(arr_elem(kv, i, &p, &es));
  struct spr_gguf_kv v;
  memset(&v, 0, sizeof v); /* GCC 12 (arm) cannot see that decode_scalar sets the member read */
  decode_scalar(kv->arr_type, p, &v);
  switch (kv->arr_type) {
    case SPR_GGUF_F32:
    case SPR_GGUF_F64:
      *out = v.val.f;
      break;
    default:
      *out = type_is_unsigned(kv->arr_type) ? (double)v.val.u : (double)v.val.i;
      break;
  }
  return SPR_STATUS_OK;
}

/* Integer element types only; a u64 above INT64_MAX is BAD_METADATA. */
enum spr_status spr_gguf_arr_get_i64(const struct spr_gguf_kv *kv, uint64_t i, int64_t *out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  const uint8_t *p;
  size_t es;
  SPR_TRY(arr_elem(kv, i, &p, &es));
  if (!type_is_int(kv->arr_type)) return SPR_STATUS_BAD_KV_TYPE;
  struct spr_gguf_kv v;
  memset(&v, 0, sizeof v); /* GCC 12 (arm) cannot see that decode_scalar sets the member read */
  decode_scalar(kv->arr_type, p, &v);
  if (type_is_unsigned(kv->arr_type)) {
    if (v.val.u > (uint64_t)INT64_MAX) return SPR_STATUS_BAD_METADATA;
    *out = (int64_t)v.val.u;
  } else {
    *out = v.val.i;
  }
  return SPR_STATUS_OK;
}

/* NOT_FOUND once the cursor reaches the end of the array. */
enum spr_status spr_gguf_arr_next_str(const struct spr_gguf_kv *kv, size_t *cursor, struct spr_gguf_str *out) {
  if (kv == NULL || cursor == NULL || out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  if (kv->type != SPR_GGUF_ARRAY || kv->arr_type != SPR_GGUF_STRING) return SPR_STATUS_BAD_KV_TYPE;
  if (*cursor == kv->arr_bytes) return SPR_STATUS_NOT_FOUND;
  struct cur c = {kv->arr_data, kv->arr_bytes, *cursor};
  uint64_t len;
  if (*cursor > kv->arr_bytes || !cur_u64(&c, &len) || len > cur_left(&c)) return SPR_STATUS_INVALID_ARGUMENT;
  out->ptr = (const char *)(c.b + c.pos);
  out->len = len;
  *cursor = c.pos + (size_t)len;
  return SPR_STATUS_OK;
}

/* ---- tensors ------------------------------------------------------------------- */

enum spr_status spr_gguf_tensor_at(const struct spr_gguf *g, uint64_t index, struct spr_gguf_tensor *t) {
  if (g == NULL || t == NULL || index >= g->n_tensors) return SPR_STATUS_INVALID_ARGUMENT;
  struct cur c = {g->base, g->size, g->tinfo_offset};
  struct tinfo ti;
  for (uint64_t i = 0; i <= index; i++) {
    if (!next_tinfo_raw(&c, &ti)) return SPR_STATUS_TRUNCATED;
  }
  if (!tensor_in_blob(g, &ti)) return SPR_STATUS_TRUNCATED;
  fill_tensor(g, &ti, t);
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_find_tensor(const struct spr_gguf *g, const char *name, struct spr_gguf_tensor *t) {
  if (g == NULL || name == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  struct cur c = {g->base, g->size, g->tinfo_offset};
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct tinfo ti;
    if (!next_tinfo_raw(&c, &ti)) return SPR_STATUS_TRUNCATED;
    if (spr_gguf_str_eq(ti.name, name)) {
      if (!tensor_in_blob(g, &ti)) return SPR_STATUS_TRUNCATED;
      if (t != NULL) fill_tensor(g, &ti, t);
      return SPR_STATUS_OK;
    }
  }
  return SPR_STATUS_NOT_FOUND;
}

bool spr_gguf_str_eq(struct spr_gguf_str s, const char *c) {
  if (c == NULL) return false;
  for (uint64_t i = 0; i < s.len; i++) {
    if (c[i] == '\0' || c[i] != s.ptr[i]) return false;
  }
  return c[s.len] == '\0';
}
