/* runtime/gguf_writer.c — GGUF v3 writer (hosted builds only).
 *
 * KVs are serialized as they are added into one growing buffer (key, type,
 * value exactly as in the file); tensors are kept as descriptors with a
 * borrowed data pointer. write() lays the file out as ggml's reader wants:
 * header, KVs, tensor infos, zero padding to the alignment, then each
 * tensor's data in table order followed by zeros up to the alignment.
 *
 * general.alignment is not an ordinary KV here: spr_gguf_writer_set_alignment
 * (or adding/copying a u32 "general.alignment", which calls it) records it,
 * and it is written as the first KV, as u32, only when it differs from the
 * default 32 (a reader then assumes 32, which is the same file).
 *
 * Input errors are sticky: the first one is kept with its message and
 * returned by write(); later calls do nothing. Statuses are those the reader
 * would report for such a file (BAD_STRING, BAD_DIMS, BAD_TENSOR_TYPE,
 * BAD_SHAPE, OVERFLOW, DUPLICATE, BAD_ALIGNMENT, BAD_KV_TYPE), plus
 * INVALID_ARGUMENT for NULL pointers and OUT_OF_MEMORY. */
#if !SPR_FIRMWARE

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/util.h"
#include "sparrow/gguf.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF writer assumes a little-endian host"
#endif

enum { MAX_KEY = 65535 };

struct wkey {
  size_t off; /* key bytes inside kv */
  size_t len;
};

struct wtensor {
  char name[SPR_GGUF_MAX_NAME + 1];
  size_t name_len;
  uint32_t n_dims;
  int64_t ne[SPR_GGUF_MAX_DIMS];
  enum spr_dtype type;
  const void *data; /* borrowed */
  size_t nbytes;
};

struct spr_gguf_writer {
  struct spr_error err; /* first error; status OK while there is none */
  uint32_t alignment;
  uint8_t *kv; /* serialized KVs [kv_len] */
  size_t kv_len, kv_cap;
  struct wkey *keys; /* [n_kv] */
  size_t n_kv, keys_cap;
  struct wtensor *t; /* [n_t] */
  size_t n_t, t_cap;
};

/* Records the first error only. */
static void fail(struct spr_gguf_writer *w, enum spr_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fail(struct spr_gguf_writer *w, enum spr_status s, const char *fmt, ...) {
  if (w->err.status != SPR_STATUS_OK) return;
  w->err.status = s;
  w->err.msg[0] = '\0';
#if !defined(SPR_NO_ERROR_STRINGS)
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->err.msg, sizeof w->err.msg, fmt, ap);
  va_end(ap);
#else
  (void)fmt;
#endif
}

static bool ok(const struct spr_gguf_writer *w) {
  return w != NULL && w->err.status == SPR_STATUS_OK;
}

/* Grows *p (elements of `size` bytes) to hold at least `need`. */
static bool grow(struct spr_gguf_writer *w, void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return true;
  size_t n = *cap < 16 ? 16 : *cap;
  while (n < need) {
    if (n > SIZE_MAX / 2) {
      n = need;
      break;
    }
    n *= 2;
  }
  size_t bytes;
  void *q = spr_mul_ok(n, size, &bytes) ? realloc(*p, bytes) : NULL;
  if (q == NULL) {
    fail(w, SPR_STATUS_OUT_OF_MEMORY, "gguf writer: out of memory growing a buffer to %zu elements", n);
    return false;
  }
  *p = q;
  *cap = n;
  return true;
}

static void put(struct spr_gguf_writer *w, const void *src, size_t n) {
  size_t need;
  if (!ok(w)) return;
  if (!spr_add_ok(w->kv_len, n, &need)) {
    fail(w, SPR_STATUS_OVERFLOW, "gguf writer: metadata size overflows");
    return;
  }
  if (!grow(w, (void **)&w->kv, &w->kv_cap, need, 1)) return;
  if (n != 0) memcpy(w->kv + w->kv_len, src, n);
  w->kv_len = need;
}

static void put_u32(struct spr_gguf_writer *w, uint32_t v) {
  put(w, &v, 4);
}
static void put_u64(struct spr_gguf_writer *w, uint64_t v) {
  put(w, &v, 8);
}
static void put_str(struct spr_gguf_writer *w, const char *s, size_t n) {
  put_u64(w, n);
  put(w, s, n);
}

static bool is_alignment_key(const char *key, size_t len) {
  return len == 17 && memcmp(key, "general.alignment", 17) == 0;
}

/* Validates the key, checks it is new, and writes key + type. False on error. */
static bool begin_kv(struct spr_gguf_writer *w, const char *key, size_t len, enum spr_gguf_type type) {
  if (!ok(w)) return false;
  if (key == NULL) {
    fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: key is NULL");
    return false;
  }
  if (len < 1 || len > MAX_KEY) {
    fail(w, SPR_STATUS_BAD_STRING, "gguf writer: key length %zu is not in 1..%d", len, MAX_KEY);
    return false;
  }
  const int shown = (int)(len < 60 ? len : 60);
  if (is_alignment_key(key, len)) {
    fail(w, SPR_STATUS_BAD_ALIGNMENT, "gguf writer: general.alignment must be a u32 (type %d given)", (int)type);
    return false;
  }
  for (size_t i = 0; i < w->n_kv; i++) {
    if (w->keys[i].len == len && memcmp(w->kv + w->keys[i].off, key, len) == 0) {
      fail(w, SPR_STATUS_DUPLICATE, "gguf writer: key %.*s added twice", shown, key);
      return false;
    }
  }
  if (!grow(w, (void **)&w->keys, &w->keys_cap, w->n_kv + 1, sizeof *w->keys)) return false;
  put_u64(w, len);
  const size_t off = w->kv_len;
  put(w, key, len);
  put_u32(w, (uint32_t)type);
  if (!ok(w)) return false;
  w->keys[w->n_kv].off = off;
  w->keys[w->n_kv].len = len;
  w->n_kv++;
  return true;
}

enum spr_status spr_gguf_writer_create(struct spr_gguf_writer **out) {
  if (out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  *out = calloc(1, sizeof **out);
  if (*out == NULL) return SPR_STATUS_OUT_OF_MEMORY;
  (*out)->alignment = SPR_GGUF_DEFAULT_ALIGNMENT;
  return SPR_STATUS_OK;
}

void spr_gguf_writer_destroy(struct spr_gguf_writer *w) {
  if (w == NULL) return;
  free(w->kv);
  free(w->keys);
  free(w->t);
  free(w);
}

void spr_gguf_writer_set_alignment(struct spr_gguf_writer *w, uint32_t alignment) {
  if (!ok(w)) return;
  if (alignment < 8 || (alignment & (alignment - 1)) != 0) {
    fail(w, SPR_STATUS_BAD_ALIGNMENT, "gguf writer: alignment %u is not a power of two >= 8", alignment);
    return;
  }
  w->alignment = alignment;
}

void spr_gguf_writer_add_u32(struct spr_gguf_writer *w, const char *key, uint32_t v) {
  if (ok(w) && key != NULL && is_alignment_key(key, strlen(key))) {
    spr_gguf_writer_set_alignment(w, v);
    return;
  }
  if (begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_U32)) put_u32(w, v);
}

void spr_gguf_writer_add_i32(struct spr_gguf_writer *w, const char *key, int32_t v) {
  if (begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_I32)) put(w, &v, 4);
}

void spr_gguf_writer_add_u64(struct spr_gguf_writer *w, const char *key, uint64_t v) {
  if (begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_U64)) put_u64(w, v);
}

void spr_gguf_writer_add_f32(struct spr_gguf_writer *w, const char *key, float v) {
  if (begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_F32)) put(w, &v, 4);
}

void spr_gguf_writer_add_bool(struct spr_gguf_writer *w, const char *key, bool v) {
  const uint8_t b = v ? 1 : 0;
  if (begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_BOOL)) put(w, &b, 1);
}

void spr_gguf_writer_add_str(struct spr_gguf_writer *w, const char *key, const char *v) {
  if (ok(w) && v == NULL) {
    fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: string value of %s is NULL", key != NULL ? key : "(null)");
    return;
  }
  if (begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_STRING)) put_str(w, v, strlen(v));
}

/* Array of fixed-size elements: type, count, raw bytes. */
static void add_arr_raw(struct spr_gguf_writer *w, const char *key, enum spr_gguf_type et, const void *v, uint64_t n,
                        size_t es) {
  size_t bytes;
  if (ok(w) && (n > SIZE_MAX || !spr_mul_ok((size_t)n, es, &bytes))) {
    fail(w, SPR_STATUS_OVERFLOW, "gguf writer: array %s of %llu elements is too large", key != NULL ? key : "(null)",
         (unsigned long long)n);
    return;
  }
  if (ok(w) && v == NULL && n != 0) {
    fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: array %s has %llu elements but no data",
         key != NULL ? key : "(null)", (unsigned long long)n);
    return;
  }
  if (!begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_ARRAY)) return;
  put_u32(w, (uint32_t)et);
  put_u64(w, n);
  put(w, v, (size_t)n * es);
}

void spr_gguf_writer_add_arr_f32(struct spr_gguf_writer *w, const char *key, const float *v, uint64_t n) {
  add_arr_raw(w, key, SPR_GGUF_F32, v, n, 4);
}

void spr_gguf_writer_add_arr_i32(struct spr_gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
  add_arr_raw(w, key, SPR_GGUF_I32, v, n, 4);
}

void spr_gguf_writer_add_arr_str(struct spr_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
  if (ok(w) && v == NULL && n != 0) {
    fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: string array %s has %llu elements but no data",
         key != NULL ? key : "(null)", (unsigned long long)n);
    return;
  }
  for (uint64_t i = 0; ok(w) && i < n; i++) {
    if (v[i] == NULL) {
      fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: string %llu of array %s is NULL", (unsigned long long)i,
           key != NULL ? key : "(null)");
      return;
    }
  }
  if (!begin_kv(w, key, key != NULL ? strlen(key) : 0, SPR_GGUF_ARRAY)) return;
  put_u32(w, SPR_GGUF_STRING);
  put_u64(w, n);
  for (uint64_t i = 0; ok(w) && i < n; i++) put_str(w, v[i], strlen(v[i]));
}

static size_t scalar_size(enum spr_gguf_type t) {
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
    case SPR_GGUF_STRING:
    case SPR_GGUF_ARRAY:
      break;
  }
  return 0;
}

void spr_gguf_writer_copy_kv(struct spr_gguf_writer *w, const struct spr_gguf_kv *kv) {
  if (!ok(w)) return;
  if (kv == NULL || (kv->key.ptr == NULL && kv->key.len != 0)) {
    fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: copy_kv given a NULL KV or key");
    return;
  }
  const uint32_t type = (uint32_t)kv->type;
  if (type > SPR_GGUF_F64 || (type == SPR_GGUF_ARRAY && (uint32_t)kv->arr_type > SPR_GGUF_F64)) {
    fail(w, SPR_STATUS_BAD_KV_TYPE, "gguf writer: copy_kv of %.*s: unknown value type %u",
         (int)(kv->key.len < 60 ? kv->key.len : 60), kv->key.ptr, type);
    return;
  }
  if (kv->key.len <= MAX_KEY && is_alignment_key(kv->key.ptr, (size_t)kv->key.len) && type == SPR_GGUF_U32) {
    spr_gguf_writer_set_alignment(w, (uint32_t)kv->val.u);
    return;
  }
  if ((type == SPR_GGUF_STRING && kv->val.str.ptr == NULL && kv->val.str.len != 0) ||
      (type == SPR_GGUF_ARRAY && kv->arr_data == NULL && kv->arr_bytes != 0)) {
    fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: copy_kv of %.*s: value has no data",
         (int)(kv->key.len < 60 ? kv->key.len : 60), kv->key.ptr);
    return;
  }
  if (!begin_kv(w, kv->key.ptr, kv->key.len > MAX_KEY ? (size_t)MAX_KEY + 1 : (size_t)kv->key.len, kv->type)) return;
  switch (kv->type) {
    case SPR_GGUF_U8:
    case SPR_GGUF_U16:
    case SPR_GGUF_U32:
    case SPR_GGUF_U64:
      put(w, &kv->val.u, scalar_size(kv->type)); /* little-endian: low bytes first */
      break;
    case SPR_GGUF_I8:
    case SPR_GGUF_I16:
    case SPR_GGUF_I32:
    case SPR_GGUF_I64:
      put(w, &kv->val.i, scalar_size(kv->type));
      break;
    case SPR_GGUF_BOOL: {
      const uint8_t b = kv->val.b ? 1 : 0;
      put(w, &b, 1);
      break;
    }
    case SPR_GGUF_F32: {
      const float f = (float)kv->val.f;
      put(w, &f, 4);
      break;
    }
    case SPR_GGUF_F64:
      put(w, &kv->val.f, 8);
      break;
    case SPR_GGUF_STRING:
      if (kv->val.str.len > SIZE_MAX) {
        fail(w, SPR_STATUS_OVERFLOW, "gguf writer: string too long");
        return;
      }
      put_str(w, kv->val.str.ptr, (size_t)kv->val.str.len);
      break;
    case SPR_GGUF_ARRAY: /* elements verbatim, nested arrays and strings included */
      put_u32(w, (uint32_t)kv->arr_type);
      put_u64(w, kv->arr_n);
      put(w, kv->arr_data, kv->arr_bytes);
      break;
  }
}

void spr_gguf_writer_add_tensor(struct spr_gguf_writer *w, const char *name, enum spr_dtype type, uint32_t n_dims,
                                const int64_t *ne, const void *data) {
  if (!ok(w)) return;
  if (name == NULL || ne == NULL || data == NULL) {
    fail(w, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: tensor %s: NULL name, shape or data",
         name != NULL ? name : "(null)");
    return;
  }
  const size_t len = strlen(name);
  if (len < 1 || len > SPR_GGUF_MAX_NAME) {
    fail(w, SPR_STATUS_BAD_STRING, "gguf writer: tensor name '%.64s' has length %zu, not 1..%d", name, len,
         SPR_GGUF_MAX_NAME);
    return;
  }
  if (n_dims < 1 || n_dims > SPR_GGUF_MAX_DIMS) {
    fail(w, SPR_STATUS_BAD_DIMS, "gguf writer: tensor %s: n_dims %u is not in 1..%d", name, n_dims, SPR_GGUF_MAX_DIMS);
    return;
  }
  for (uint32_t d = 0; d < n_dims; d++) {
    if (ne[d] < 1) {
      fail(w, SPR_STATUS_BAD_DIMS, "gguf writer: tensor %s: ne[%u] = %lld is not >= 1", name, d, (long long)ne[d]);
      return;
    }
  }
  const size_t block = spr_dtype_block_elems(type);
  if (block == 0) {
    fail(w, SPR_STATUS_BAD_TENSOR_TYPE, "gguf writer: tensor %s: type %d is not supported", name, (int)type);
    return;
  }
  if ((uint64_t)ne[0] % block != 0) {
    fail(w, SPR_STATUS_BAD_SHAPE, "gguf writer: tensor %s: ne[0] = %lld is not a multiple of the %s block size %zu",
         name, (long long)ne[0], spr_dtype_name(type), block);
    return;
  }
  uint64_t elems = 1;
  for (uint32_t d = 0; d < n_dims; d++) {
    if (elems > (uint64_t)INT64_MAX / (uint64_t)ne[d]) {
      fail(w, SPR_STATUS_OVERFLOW, "gguf writer: tensor %s: element count overflows", name);
      return;
    }
    elems *= (uint64_t)ne[d];
  }
  const size_t nbytes = spr_tensor_nbytes(type, ne, n_dims);
  if (nbytes == 0 || nbytes > SIZE_MAX - w->alignment) {
    fail(w, SPR_STATUS_OVERFLOW, "gguf writer: tensor %s: size in bytes overflows", name);
    return;
  }
  for (size_t i = 0; i < w->n_t; i++) {
    if (w->t[i].name_len == len && memcmp(w->t[i].name, name, len) == 0) {
      fail(w, SPR_STATUS_DUPLICATE, "gguf writer: tensor %s added twice", name);
      return;
    }
  }
  if (!grow(w, (void **)&w->t, &w->t_cap, w->n_t + 1, sizeof *w->t)) return;
  struct wtensor *t = &w->t[w->n_t++];
  memset(t, 0, sizeof *t);
  memcpy(t->name, name, len);
  t->name_len = len;
  t->n_dims = n_dims;
  for (uint32_t d = 0; d < SPR_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
  t->type = type;
  t->data = data;
  t->nbytes = nbytes;
}

/* ---- output ------------------------------------------------------------------ */

/* Memory buffer or FILE*; remembers the first write failure. */
struct sink {
  uint8_t *mem;
  size_t pos;
  FILE *f;
  int io_errno; /* 0 while fine */
};

static void emit(struct sink *s, const void *p, size_t n) {
  if (n == 0 || s->io_errno != 0) return;
  if (s->mem != NULL) {
    memcpy(s->mem + s->pos, p, n);
  } else if (fwrite(p, 1, n, s->f) != n) {
    s->io_errno = errno != 0 ? errno : EIO;
    return;
  }
  s->pos += n;
}

static void emit_zeros(struct sink *s, size_t n) {
  static const uint8_t k_zeros[256];
  while (n > 0) {
    const size_t k = n < sizeof k_zeros ? n : sizeof k_zeros;
    emit(s, k_zeros, k);
    n -= k;
  }
}

static void emit_u32(struct sink *s, uint32_t v) {
  emit(s, &v, 4);
}
static void emit_u64(struct sink *s, uint64_t v) {
  emit(s, &v, 8);
}

/* Sizes of the parts of the file. */
struct layout {
  size_t meta;        /* header + KVs + tensor infos */
  size_t data_offset; /* meta padded to the alignment */
  size_t total;       /* data_offset + padded tensor data */
};

static enum spr_status plan(const struct spr_gguf_writer *w, struct layout *l, struct spr_error *err) {
  const size_t a = w->alignment;
  size_t m = 24 + w->kv_len;
  if (a != SPR_GGUF_DEFAULT_ALIGNMENT) m += 8 + 17 + 4 + 4;
  for (size_t i = 0; i < w->n_t; i++) m += 8 + w->t[i].name_len + 4 + 8 * (size_t)w->t[i].n_dims + 4 + 8;
  l->meta = m; /* the KV buffer fits in memory, so these sums cannot overflow */
  size_t total = spr_align_up(m, a);
  l->data_offset = total;
  for (size_t i = 0; i < w->n_t; i++) {
    SPR_CHECK(w->t[i].nbytes <= SIZE_MAX - (a - 1) && spr_add_ok(total, spr_align_up(w->t[i].nbytes, a), &total),
              SPR_STATUS_OVERFLOW, "gguf writer: file size overflows at tensor %zu (%s)", i, w->t[i].name);
  }
  l->total = total;
  return SPR_STATUS_OK;
}

static void emit_file(const struct spr_gguf_writer *w, const struct layout *l, struct sink *s) {
  const size_t a = w->alignment;
  emit(s, "GGUF", 4);
  emit_u32(s, SPR_GGUF_VERSION);
  emit_u64(s, w->n_t);
  emit_u64(s, w->n_kv + (a != SPR_GGUF_DEFAULT_ALIGNMENT ? 1 : 0));
  if (a != SPR_GGUF_DEFAULT_ALIGNMENT) {
    emit_u64(s, 17);
    emit(s, "general.alignment", 17);
    emit_u32(s, SPR_GGUF_U32);
    emit_u32(s, (uint32_t)a);
  }
  emit(s, w->kv, w->kv_len);
  uint64_t offset = 0;
  for (size_t i = 0; i < w->n_t; i++) {
    const struct wtensor *t = &w->t[i];
    emit_u64(s, t->name_len);
    emit(s, t->name, t->name_len);
    emit_u32(s, t->n_dims);
    for (uint32_t d = 0; d < t->n_dims; d++) emit_u64(s, (uint64_t)t->ne[d]);
    emit_u32(s, (uint32_t)t->type);
    emit_u64(s, offset);
    offset += spr_align_up(t->nbytes, a);
  }
  emit_zeros(s, l->data_offset - l->meta);
  for (size_t i = 0; i < w->n_t; i++) {
    emit(s, w->t[i].data, w->t[i].nbytes);
    emit_zeros(s, spr_align_up(w->t[i].nbytes, a) - w->t[i].nbytes);
  }
}

static enum spr_status check_writer(const struct spr_gguf_writer *w, struct spr_error *err) {
  SPR_CHECK(w != NULL, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: writer is NULL");
  if (w->err.status != SPR_STATUS_OK) {
    if (err != NULL) *err = w->err;
    return w->err.status;
  }
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_writer_write(struct spr_gguf_writer *w, const char *path, struct spr_error *err) {
  SPR_TRY(check_writer(w, err));
  SPR_CHECK(path != NULL, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: path is NULL");
  struct layout l;
  SPR_TRY(plan(w, &l, err));
  errno = 0;
  struct sink s = {NULL, 0, fopen(path, "wb"), 0};
  SPR_CHECK(s.f != NULL, SPR_STATUS_IO, "gguf writer: cannot create %s: %s", path, strerror(errno));
  emit_file(w, &l, &s);
  if (fclose(s.f) != 0 && s.io_errno == 0) s.io_errno = errno != 0 ? errno : EIO;
  if (s.io_errno != 0) {
    remove(path);
    return SPR_FAIL(SPR_STATUS_IO, "gguf writer: writing %s failed: %s", path, strerror(s.io_errno));
  }
  return SPR_STATUS_OK;
}

enum spr_status spr_gguf_writer_write_mem(struct spr_gguf_writer *w, void **buf, size_t *size, struct spr_error *err) {
  SPR_CHECK(buf != NULL && size != NULL, SPR_STATUS_INVALID_ARGUMENT, "gguf writer: NULL output buffer or size");
  *buf = NULL;
  *size = 0;
  SPR_TRY(check_writer(w, err));
  struct layout l;
  SPR_TRY(plan(w, &l, err));
  struct sink s = {malloc(l.total), 0, NULL, 0};
  SPR_CHECK(s.mem != NULL, SPR_STATUS_OUT_OF_MEMORY, "gguf writer: cannot allocate %zu bytes", l.total);
  emit_file(w, &l, &s);
  *buf = s.mem;
  *size = s.pos;
  return SPR_STATUS_OK;
}

#endif /* !SPR_FIRMWARE */
