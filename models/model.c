/* models/model.c — the public load/plan/session entry points. */
#include "models/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "runtime/error.h"

static const struct spr_arch *const k_archs[] = {
    &spr_arch_vit,
    &spr_arch_llama,
    &spr_arch_nat,
    &spr_arch_biformer,
};

enum spr_status spr_model_get_u32(const struct spr_gguf *g, const char *key, uint32_t lo, uint32_t hi,
                                  uint32_t *out, struct spr_error *err) {
  const enum spr_status s = spr_gguf_get_u32(g, key, out);
  SPR_CHECK(s != SPR_STATUS_NOT_FOUND, SPR_STATUS_MISSING_KEY, "metadata key %s is missing", key);
  SPR_CHECK(s == SPR_STATUS_OK, s, "metadata key %s has the wrong type", key);
  SPR_CHECK(*out >= lo && *out <= hi, SPR_STATUS_BAD_METADATA, "%s = %u is out of range [%u, %u]", key, *out, lo,
            hi);
  return SPR_STATUS_OK;
}

enum spr_status spr_model_get_int_array(const struct spr_gguf *g, const char *key, uint32_t n_max, int64_t lo,
                                        int64_t hi, int32_t *out, uint32_t *n, struct spr_error *err) {
  struct spr_gguf_kv kv;
  const enum spr_status s = spr_gguf_find_kv(g, key, &kv);
  SPR_CHECK(s != SPR_STATUS_NOT_FOUND, SPR_STATUS_MISSING_KEY, "metadata key %s is missing", key);
  SPR_TRY(s);
  SPR_CHECK(kv.type == SPR_GGUF_ARRAY && kv.arr_n >= 1 && kv.arr_n <= n_max, SPR_STATUS_BAD_METADATA,
            "%s must be an array of 1 to %u integers", key, n_max);
  for (uint32_t i = 0; i < (uint32_t)kv.arr_n; i++) {
    int64_t v;
    SPR_CHECK(spr_gguf_arr_get_i64(&kv, i, &v) == SPR_STATUS_OK, SPR_STATUS_BAD_METADATA, "%s[%u] is not an integer",
              key, i);
    SPR_CHECK(v >= lo && v <= hi, SPR_STATUS_BAD_METADATA, "%s[%u] = %lld is out of range [%lld, %lld]", key, i,
              (long long)v, (long long)lo, (long long)hi);
    out[i] = (int32_t)v;
  }
  *n = (uint32_t)kv.arr_n;
  return SPR_STATUS_OK;
}

enum spr_status spr_model_get_f32_array_or(const struct spr_gguf *g, const char *key, uint32_t c, float def,
                                           float *out, struct spr_error *err) {
  for (uint32_t i = 0; i < c; i++) out[i] = def;
  struct spr_gguf_kv kv;
  const enum spr_status s = spr_gguf_find_kv(g, key, &kv);
  if (s == SPR_STATUS_NOT_FOUND) return SPR_STATUS_OK;
  SPR_TRY(s);
  SPR_CHECK(kv.type == SPR_GGUF_ARRAY && kv.arr_n == c, SPR_STATUS_BAD_METADATA, "%s must be an array of %u numbers",
            key, c);
  for (uint32_t i = 0; i < c; i++) {
    double v;
    SPR_CHECK(spr_gguf_arr_get_f64(&kv, i, &v) == SPR_STATUS_OK && isfinite(v), SPR_STATUS_BAD_METADATA,
              "%s[%u] is not a finite number", key, i);
    out[i] = (float)v;
  }
  return SPR_STATUS_OK;
}

void spr_model_str(struct spr_gguf_str s, char *buf, size_t len) {
  if (len == 0) return;
  const size_t n = s.len < len - 1 ? (size_t)s.len : len - 1;
  memcpy(buf, s.ptr, n);
  buf[n] = '\0';
}

#if !SPR_FIRMWARE
static void *heap_alloc(void *user, size_t bytes, size_t align) {
  (void)user;
  void *p = NULL;
  if (align < sizeof(void *)) align = sizeof(void *);
  return posix_memalign(&p, align, bytes ? bytes : 1) == 0 ? p : NULL;
}
static void heap_release(void *user, void *p) {
  (void)user;
  free(p);
}
static const struct spr_allocator k_heap = {heap_alloc, heap_release, NULL};
#endif

static enum spr_status check_finite(const struct spr_gguf *g, struct spr_error *err) {
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    SPR_TRY(spr_gguf_tensor_at(g, i, &t));
    const size_t n = t.type == SPR_DTYPE_F32 ? t.nbytes / 4 : t.type == SPR_DTYPE_F16 ? t.nbytes / 2 : 0;
    for (size_t j = 0; j < n; j++) {
      float v;
      if (t.type == SPR_DTYPE_F32) {
        memcpy(&v, (const uint8_t *)t.data + 4 * j, 4);
      } else {
        uint16_t h;
        memcpy(&h, (const uint8_t *)t.data + 2 * j, 2);
        v = spr_fp16_to_f32(h);
      }
      SPR_CHECK(isfinite(v), SPR_STATUS_NOT_FINITE, "tensor %.*s holds a non-finite value at element %zu",
                (int)t.name.len, t.name.ptr, j);
    }
  }
  return SPR_STATUS_OK;
}

static enum spr_status load_common(struct spr_model *m, const struct spr_load_options *opt, struct spr_error *err) {
  SPR_TRY(spr_gguf_parse(m->blob.data, m->blob.size, &m->gguf, err));
  struct spr_gguf_str arch;
  const enum spr_status s = spr_gguf_get_str(&m->gguf, "general.architecture", &arch);
  SPR_CHECK(s != SPR_STATUS_NOT_FOUND, SPR_STATUS_MISSING_KEY, "general.architecture is missing");
  SPR_CHECK(s == SPR_STATUS_OK, s, "general.architecture is not a string");
  spr_model_str(arch, m->arch_name, sizeof m->arch_name);
  for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++) {
    if (spr_gguf_str_eq(arch, k_archs[i]->name)) m->arch = k_archs[i];
  }
  SPR_CHECK(m->arch != NULL, SPR_STATUS_UNSUPPORTED_ARCH, "architecture '%s' is not supported", m->arch_name);
  for (uint64_t i = 0; i < m->gguf.n_tensors; i++) {
    struct spr_gguf_tensor t;
    SPR_TRY(spr_gguf_tensor_at(&m->gguf, i, &t));
    m->weights_bytes += t.nbytes;
  }
  if (opt != NULL && opt->check_finite) SPR_TRY(check_finite(&m->gguf, err));
  return m->arch->load(m, err);
}

static enum spr_status new_model(const struct spr_load_options *opt, struct spr_model **out, struct spr_error *err) {
  const struct spr_allocator *a = opt != NULL ? opt->allocator : NULL;
#if !SPR_FIRMWARE
  if (a == NULL) a = &k_heap;
#endif
  SPR_CHECK(a != NULL && a->alloc != NULL, SPR_STATUS_INVALID_ARGUMENT, "no allocator given (firmware build)");
  struct spr_model *m = a->alloc(a->user, sizeof *m, 64);
  SPR_CHECK(m != NULL, SPR_STATUS_OUT_OF_MEMORY, "cannot allocate the model object");
  memset(m, 0, sizeof *m);
  m->alloc = *a;
  *out = m;
  return SPR_STATUS_OK;
}

enum spr_status spr_model_load_blob(const void *blob, size_t size, const struct spr_load_options *opt,
                                    struct spr_model **out, struct spr_error *err) {
  SPR_CHECK(out != NULL, SPR_STATUS_INVALID_ARGUMENT, "no output pointer");
  *out = NULL;
  SPR_CHECK(blob != NULL && size > 0, SPR_STATUS_INVALID_ARGUMENT, "empty model blob");
  SPR_CHECK(((uintptr_t)blob & 31) == 0, SPR_STATUS_MISALIGNED, "model blob must be 32-byte aligned");
  struct spr_model *m = NULL;
  SPR_TRY(new_model(opt, &m, err));
  m->blob.data = blob;
  m->blob.size = size;
  const enum spr_status s = load_common(m, opt, err);
  if (s != SPR_STATUS_OK) {
    spr_model_free(m);
    return s;
  }
  *out = m;
  return SPR_STATUS_OK;
}

enum spr_status spr_model_load_file(const char *path, const struct spr_load_options *opt, struct spr_model **out,
                                    struct spr_error *err) {
  SPR_CHECK(out != NULL, SPR_STATUS_INVALID_ARGUMENT, "no output pointer");
  *out = NULL;
  struct spr_model *m = NULL;
  SPR_TRY(new_model(opt, &m, err));
  enum spr_status s = spr_blob_map_file(path, &m->blob, err);
  if (s == SPR_STATUS_OK) s = load_common(m, opt, err);
  if (s != SPR_STATUS_OK) {
    spr_model_free(m);
    return s;
  }
  *out = m;
  return SPR_STATUS_OK;
}

void spr_model_free(struct spr_model *m) {
  if (m == NULL) return;
  if (m->arch != NULL && m->arch->unload != NULL) m->arch->unload(m);
  spr_blob_unmap(&m->blob);
  if (m->alloc.release != NULL) m->alloc.release(m->alloc.user, m);
}

const char *spr_model_arch(const struct spr_model *m) { return m != NULL ? m->arch_name : ""; }
const struct spr_gguf *spr_model_gguf(const struct spr_model *m) { return m != NULL ? &m->gguf : NULL; }
size_t spr_model_weights_bytes(const struct spr_model *m) { return m != NULL ? m->weights_bytes : 0; }

enum spr_status spr_plan(const struct spr_model *m, const struct spr_config *c, struct spr_plan *out,
                         struct spr_error *err) {
  SPR_CHECK(m != NULL && out != NULL, SPR_STATUS_INVALID_ARGUMENT, "spr_plan: NULL model or output");
  return spr_plan_graph(&m->gguf, m->arch->build, m, c, &m->alloc, out, err);
}

enum spr_status spr_session_create(const struct spr_model *m, const struct spr_config *c, void *arena,
                                   size_t arena_bytes, struct spr_session **out, struct spr_error *err) {
  SPR_CHECK(m != NULL, SPR_STATUS_INVALID_ARGUMENT, "spr_session_create: NULL model");
  return spr_session_bind(&m->gguf, m->arch->build, m, c, &m->alloc, arena, arena_bytes, out, err);
}
