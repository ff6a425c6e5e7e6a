/* sparrow/gguf.h — GGUF v3 reader (zero-copy, allocation-free) and writer.
 *
 * Reader: spr_gguf_parse() validates every byte of the header, the metadata
 * and the tensor table of an untrusted blob once, and records where each
 * section starts. Later look-ups walk the already-validated sections, so the
 * reader needs no memory of its own: `struct spr_gguf` is a few words that
 * point into the caller's blob, which must outlive it. Tensor data is never
 * copied; spr_gguf_tensor.data points into the blob.
 *
 * Checks performed by spr_gguf_parse (status on failure):
 *   magic "GGUF"                                   BAD_MAGIC
 *   version == 3                                   BAD_VERSION
 *   counts fit in the file (each KV >= 13 bytes,
 *     each tensor info >= 29 bytes)                BAD_COUNT
 *   at most SPR_GGUF_MAX_KV KVs and
 *     SPR_GGUF_MAX_TENSORS tensors                 BAD_COUNT
 *   every field inside the blob                    TRUNCATED
 *   string lengths <= 65535 (keys), <= blob size   BAD_STRING
 *   value types known, array nesting <= 4          BAD_KV_TYPE
 *   duplicate keys / tensor names                  DUPLICATE
 *   general.alignment: u32, power of two, >= 8     BAD_ALIGNMENT
 *   n_dims in 1..4, every ne >= 1, product fits    BAD_DIMS / OVERFLOW
 *   tensor type supported, ne[0] % block == 0      BAD_TENSOR_TYPE / BAD_SHAPE
 *   offset aligned, in order, no overlap, in file  BAD_OFFSET / TRUNCATED
 *   tensor name length 1..64                       BAD_STRING
 */
#ifndef SPARROW_GGUF_H
#define SPARROW_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparrow/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPR_GGUF_VERSION 3
#define SPR_GGUF_DEFAULT_ALIGNMENT 32
#define SPR_GGUF_MAX_DIMS 4
#define SPR_GGUF_MAX_NAME 64 /* tensor names, as ggml */
/* Limits on the counts of a file. The reader has no memory of its own, so it
 * finds duplicate keys and names by comparing each with the earlier ones:
 * parse time is quadratic in these counts. The limits bound it for a hostile
 * file (about 0.1 s for 4096 KVs, 1 s for 16384 tensors on a desktop core)
 * and are far above real models (llama.cpp files: tens of KVs, at most a
 * few thousand tensors). */
#define SPR_GGUF_MAX_KV 4096
#define SPR_GGUF_MAX_TENSORS 16384

enum spr_gguf_type {
  SPR_GGUF_U8 = 0,
  SPR_GGUF_I8 = 1,
  SPR_GGUF_U16 = 2,
  SPR_GGUF_I16 = 3,
  SPR_GGUF_U32 = 4,
  SPR_GGUF_I32 = 5,
  SPR_GGUF_F32 = 6,
  SPR_GGUF_BOOL = 7,
  SPR_GGUF_STRING = 8,
  SPR_GGUF_ARRAY = 9,
  SPR_GGUF_U64 = 10,
  SPR_GGUF_I64 = 11,
  SPR_GGUF_F64 = 12,
};

/* A string inside the blob: NOT NUL-terminated. */
struct spr_gguf_str {
  const char *ptr;
  uint64_t len;
};

/* A parsed file. All pointers refer to the caller's blob. */
struct spr_gguf {
  const uint8_t *base;
  size_t size;
  uint32_t version;
  uint64_t n_tensors;
  uint64_t n_kv;
  size_t alignment;
  size_t kv_offset;     /* first KV pair */
  size_t tinfo_offset;  /* first tensor info */
  size_t data_offset;   /* start of the tensor data section */
  size_t data_bytes;    /* bytes used by tensor data (padded) */
};

/* One metadata entry. For scalars `val` holds the value (integers widened:
 * use the field matching `type`). For strings `str`. For arrays `arr_type`,
 * `arr_n` and `arr_data` (first element; strings are length-prefixed). */
struct spr_gguf_kv {
  struct spr_gguf_str key;
  enum spr_gguf_type type;
  union {
    uint64_t u;
    int64_t i;
    double f;
    bool b;
    struct spr_gguf_str str;
  } val;
  enum spr_gguf_type arr_type;
  uint64_t arr_n;
  const uint8_t *arr_data;
  size_t arr_bytes;
};

struct spr_gguf_tensor {
  struct spr_gguf_str name;
  uint32_t n_dims;
  int64_t ne[SPR_GGUF_MAX_DIMS]; /* ne[0] fastest; unused dims are 1 */
  enum spr_dtype type;
  uint64_t offset; /* relative to data_offset */
  size_t nbytes;
  const void *data; /* base + data_offset + offset */
};

/* Validates blob[0..size) and fills *g. `err` may be NULL. */
enum spr_status spr_gguf_parse(const void *blob, size_t size, struct spr_gguf *g,
                               struct spr_error *err);

/* Metadata access. index < g->n_kv. */
enum spr_status spr_gguf_kv_at(const struct spr_gguf *g, uint64_t index, struct spr_gguf_kv *kv);
/* SPR_STATUS_NOT_FOUND when absent. */
enum spr_status spr_gguf_find_kv(const struct spr_gguf *g, const char *key, struct spr_gguf_kv *kv);

/* Typed getters. Integer getters accept any integer value type whose value
 * fits the destination (else BAD_METADATA); float getters accept f32/f64.
 * NOT_FOUND when absent, BAD_KV_TYPE when the type does not convert. */
enum spr_status spr_gguf_get_u32(const struct spr_gguf *g, const char *key, uint32_t *out);
enum spr_status spr_gguf_get_i64(const struct spr_gguf *g, const char *key, int64_t *out);
enum spr_status spr_gguf_get_f32(const struct spr_gguf *g, const char *key, float *out);
enum spr_status spr_gguf_get_bool(const struct spr_gguf *g, const char *key, bool *out);
enum spr_status spr_gguf_get_str(const struct spr_gguf *g, const char *key, struct spr_gguf_str *out);
/* Same, returning `def` when the key is absent (other errors still fail). */
enum spr_status spr_gguf_get_u32_or(const struct spr_gguf *g, const char *key, uint32_t def, uint32_t *out);
enum spr_status spr_gguf_get_f32_or(const struct spr_gguf *g, const char *key, float def, float *out);

/* Array element access for numeric arrays (any integer/float type converted
 * to double/int64) and string arrays. Elements of string arrays are found by
 * walking, so iterate with spr_gguf_arr_next_str rather than by index. */
enum spr_status spr_gguf_arr_get_f64(const struct spr_gguf_kv *kv, uint64_t i, double *out);
enum spr_status spr_gguf_arr_get_i64(const struct spr_gguf_kv *kv, uint64_t i, int64_t *out);
/* *cursor starts at 0; returns the string at the cursor and advances it. */
enum spr_status spr_gguf_arr_next_str(const struct spr_gguf_kv *kv, size_t *cursor,
                                      struct spr_gguf_str *out);

/* Tensor access. */
enum spr_status spr_gguf_tensor_at(const struct spr_gguf *g, uint64_t index, struct spr_gguf_tensor *t);
enum spr_status spr_gguf_find_tensor(const struct spr_gguf *g, const char *name, struct spr_gguf_tensor *t);

/* True when s equals the NUL-terminated c. */
bool spr_gguf_str_eq(struct spr_gguf_str s, const char *c);

/* Size in bytes of a tensor of this type and shape; 0 on overflow or when
 * ne[0] is not a multiple of the block size. */
size_t spr_tensor_nbytes(enum spr_dtype type, const int64_t *ne, uint32_t n_dims);

/* ---- writer (hosted builds only: it allocates with malloc) ---------------
 * Collects metadata and tensor descriptors, then writes a GGUF v3 file laid
 * out as ggml's reader requires (tensor data in table order, each padded to
 * the alignment). Tensor data pointers are borrowed until spr_gguf_writer_write
 * returns. Errors are sticky: the first failure is returned by write(). */
struct spr_gguf_writer;

enum spr_status spr_gguf_writer_create(struct spr_gguf_writer **out);
void spr_gguf_writer_destroy(struct spr_gguf_writer *w);
void spr_gguf_writer_set_alignment(struct spr_gguf_writer *w, uint32_t alignment);
void spr_gguf_writer_add_u32(struct spr_gguf_writer *w, const char *key, uint32_t v);
void spr_gguf_writer_add_i32(struct spr_gguf_writer *w, const char *key, int32_t v);
void spr_gguf_writer_add_u64(struct spr_gguf_writer *w, const char *key, uint64_t v);
void spr_gguf_writer_add_f32(struct spr_gguf_writer *w, const char *key, float v);
void spr_gguf_writer_add_bool(struct spr_gguf_writer *w, const char *key, bool v);
void spr_gguf_writer_add_str(struct spr_gguf_writer *w, const char *key, const char *v);
void spr_gguf_writer_add_arr_f32(struct spr_gguf_writer *w, const char *key, const float *v, uint64_t n);
void spr_gguf_writer_add_arr_i32(struct spr_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
void spr_gguf_writer_add_arr_str(struct spr_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Copies a KV verbatim from a parsed file (used by quantize to keep metadata). */
void spr_gguf_writer_copy_kv(struct spr_gguf_writer *w, const struct spr_gguf_kv *kv);
/* Declares a tensor; `data` holds spr_tensor_nbytes(type, ne, n_dims) bytes. */
void spr_gguf_writer_add_tensor(struct spr_gguf_writer *w, const char *name, enum spr_dtype type,
                                uint32_t n_dims, const int64_t *ne, const void *data);
/* Writes the file. Returns the first error recorded since create. */
enum spr_status spr_gguf_writer_write(struct spr_gguf_writer *w, const char *path, struct spr_error *err);
/* Same, into a malloc'd buffer the caller frees with free(). */
enum spr_status spr_gguf_writer_write_mem(struct spr_gguf_writer *w, void **buf, size_t *size,
                                          struct spr_error *err);

#ifdef __cplusplus
}
#endif
#endif
