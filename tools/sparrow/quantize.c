/* tools/sparrow/quantize.c — GGUF weight conversion (rules in quantize.h). */
#include "tools/sparrow/quantize.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops/quant/quant.h"
#include "platform/blob.h"
#include "platform/threads.h"
#include "runtime/error.h"
#include "runtime/util.h"

/* Substrings of the names that stay as they are without --all (see quantize.h):
 * norms, biases, layer scales, position embeddings and tokens, relative
 * position biases, and the convolutions of the vision models: ViT's patch
 * embedding, NAT's conv tokenizer (tok.conv*), BiFormer's conv stem (stem.*),
 * its per-block depthwise positional conv (blk.N.pos.*), LCE (attn_lce) and
 * LePE depthwise convs. Most of these are not 2-D anyway (then they are kept
 * by the dimension rule); the names make the choice independent of how a
 * converter shapes them. */
static const char *const k_keep_names[] = {"norm",       "bias",       "gamma", "pos_embd", "pos_embed",
                                           "cls_token",  "dist_token", "rpb",   "lepe",     "attn_lce",
                                           "patch_embd", "tok.conv",   "stem.", ".pos."};

bool spr_quantize_parse_type(const char *s, enum spr_dtype *out) {
  static const struct {
    const char *name;
    enum spr_dtype t;
  } k[] = {{"q8_0", SPR_DTYPE_Q8_0}, {"q4_0", SPR_DTYPE_Q4_0}, {"q4_k", SPR_DTYPE_Q4_K},
           {"q6_k", SPR_DTYPE_Q6_K}, {"f16", SPR_DTYPE_F16},   {"f32", SPR_DTYPE_F32}};
  if (s == NULL) return false;
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    size_t c = 0;
    while (s[c] != '\0' && tolower((unsigned char)s[c]) == k[i].name[c]) c++;
    if (s[c] == '\0' && k[i].name[c] == '\0') {
      *out = k[i].t;
      return true;
    }
  }
  return false;
}

uint32_t spr_quantize_ftype(enum spr_dtype t) {
  switch (t) {
    case SPR_DTYPE_F32:
      return 0; /* LLAMA_FTYPE_ALL_F32 */
    case SPR_DTYPE_F16:
      return 1; /* LLAMA_FTYPE_MOSTLY_F16 */
    case SPR_DTYPE_Q4_0:
      return 2; /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    case SPR_DTYPE_Q8_0:
      return 7; /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    case SPR_DTYPE_Q4_K:
      return 15; /* LLAMA_FTYPE_MOSTLY_Q4_K_M (see quantize.h) */
    case SPR_DTYPE_Q6_K:
      return 18; /* LLAMA_FTYPE_MOSTLY_Q6_K */
    default:
      return 0;
  }
}

static bool is_quantized(enum spr_dtype t) {
  return spr_dtype_block_elems(t) > 1;
}

static bool str_ends(struct spr_gguf_str s, const char *suffix) {
  const size_t n = strlen(suffix);
  return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

static bool str_contains(struct spr_gguf_str s, const char *needle) {
  const size_t n = strlen(needle);
  for (uint64_t i = 0; i + n <= s.len; i++)
    if (memcmp(s.ptr + i, needle, n) == 0) return true;
  return false;
}

/* What happens to one tensor. */
struct plan {
  enum spr_dtype to;
  const char *note; /* printed after the line, or NULL */
};

static struct plan plan_tensor(const struct spr_gguf_tensor *t, const struct spr_quantize_opts *o, bool llama,
                               bool has_output) {
  struct plan p = {t->type, NULL};
  if (t->n_dims != 2 || !str_ends(t->name, ".weight")) return p;
  if (spr_dequantize_row_get(t->type) == NULL) return p; /* integer tensors */
  if (!o->all) {
    for (size_t i = 0; i < sizeof k_keep_names / sizeof k_keep_names[0]; i++) {
      if (str_contains(t->name, k_keep_names[i])) {
        p.note = "kept (name rule; --all converts it)";
        return p;
      }
    }
  }
  enum spr_dtype to = o->type;
  const bool is_output =
      spr_gguf_str_eq(t->name, "output.weight") || (!has_output && spr_gguf_str_eq(t->name, "token_embd.weight"));
  if (llama && is_output && (to == SPR_DTYPE_Q4_0 || to == SPR_DTYPE_Q4_K)) {
    to = t->ne[0] % 256 == 0 ? SPR_DTYPE_Q6_K : SPR_DTYPE_Q8_0;
    p.note = "output projection, as llama.cpp";
  }
  if (t->ne[0] % (int64_t)spr_dtype_block_elems(to) != 0) {
    p.note = to == SPR_DTYPE_Q4_K || to == SPR_DTYPE_Q6_K ? "kept: rows are not a multiple of 256"
                                                          : "kept: rows are not a multiple of 32";
    return p;
  }
  p.to = to;
  if (t->type != to && is_quantized(t->type) && is_quantized(to))
    p.note = "warning: requantized from a quantized type (both errors add up)";
  return p;
}

/* ---- parallel row conversion ---------------------------------------------------------- */

struct conv {
  const uint8_t *src;
  uint8_t *dst;
  size_t k, src_row, dst_row;
  spr_dequantize_row_fn deq;
  spr_quantize_row_fn quant;
  float *bufs; /* threads x k floats */
};

static void conv_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct conv *c = vctx;
  float *buf = c->bufs + (size_t)tid * c->k;
  for (size_t r = begin; r < end; r++) {
    c->deq(c->src + r * c->src_row, buf, (int64_t)c->k);
    c->quant(buf, c->dst + r * c->dst_row, (int64_t)c->k);
  }
}

static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  if (strcmp(a, b) == 0) return true;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* ---- sparse layout: ffn_down {F, E} -> ffn_down_t {E, F} -------------------------------- */

/* "blk.N.ffn_down.weight" -> N, else -1. */
static int down_layer(struct spr_gguf_str name) {
  static const char suffix[] = ".ffn_down.weight";
  const size_t ns = sizeof suffix - 1;
  if (name.len <= 4 + ns || memcmp(name.ptr, "blk.", 4) != 0 || !str_ends(name, suffix)) return -1;
  int l = 0;
  for (uint64_t i = 4; i < name.len - ns; i++) {
    if (name.ptr[i] < '0' || name.ptr[i] > '9' || l > 1000000) return -1;
    l = l * 10 + (name.ptr[i] - '0');
  }
  return l;
}

static enum spr_dtype down_t_type(enum spr_dtype target, int64_t n_embd) {
  enum spr_dtype t = target;
  if (t == SPR_DTYPE_Q4_K || t == SPR_DTYPE_Q6_K) t = SPR_DTYPE_Q8_0;
  if (n_embd % (int64_t)spr_dtype_block_elems(t) != 0) t = SPR_DTYPE_F32;
  return t;
}

struct transpose {
  const uint8_t *src;
  uint8_t *dst;
  size_t f, e, src_row, dst_row;
  spr_dequantize_row_fn deq;
  spr_quantize_row_fn quant;
  float *m;  /* [E][F] dequantized */
  float *mt; /* [F][E] */
};

static void deq_rows_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct transpose *c = vctx;
  for (size_t r = begin; r < end; r++) c->deq(c->src + r * c->src_row, c->m + r * c->f, (int64_t)c->f);
}

static void quant_rows_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct transpose *c = vctx;
  for (size_t n = begin; n < end; n++) {
    for (size_t e = 0; e < c->e; e++) c->mt[n * c->e + e] = c->m[e * c->f + n];
    c->quant(c->mt + n * c->e, c->dst + n * c->dst_row, (int64_t)c->e);
  }
}

/* Converts ffn_down t (ne {F, E}) into a new buffer of type `to` holding ne {E, F}. */
static enum spr_status transpose_down(struct spr_pool *pool, const struct spr_gguf_tensor *t, enum spr_dtype to,
                                      void **out, size_t *bytes, struct spr_error *err) {
  const size_t f = (size_t)t->ne[0], e = (size_t)t->ne[1];
  const int64_t ne_t[2] = {(int64_t)e, (int64_t)f};
  *bytes = spr_tensor_nbytes(to, ne_t, 2);
  size_t cells;
  SPR_CHECK(*bytes != 0 && spr_mul_ok(f, e, &cells) && cells <= SIZE_MAX / sizeof(float) / 2, SPR_STATUS_OVERFLOW,
            "quantize: ffn_down of %zu x %zu overflows", f, e);
  struct transpose c = {t->data,
                        malloc(*bytes),
                        f,
                        e,
                        spr_quant_row_bytes(t->type, (int64_t)f),
                        spr_quant_row_bytes(to, (int64_t)e),
                        spr_dequantize_row_get(t->type),
                        spr_quantize_row_get(to),
                        malloc(cells * sizeof(float)),
                        malloc(cells * sizeof(float))};
  if (c.dst == NULL || c.m == NULL || c.mt == NULL) {
    free(c.dst);
    free(c.m);
    free(c.mt);
    return SPR_FAIL(SPR_STATUS_OUT_OF_MEMORY, "quantize: cannot transpose ffn_down (%zu x %zu)", f, e);
  }
  spr_pool_run(pool, e, deq_rows_task, &c);
  spr_pool_run(pool, f, quant_rows_task, &c);
  free(c.m);
  free(c.mt);
  *out = c.dst;
  return SPR_STATUS_OK;
}

/* "blk.N.<suffix>" -> N, else -1. */
static int layer_of(struct spr_gguf_str name, const char *suffix) {
  const size_t ns = strlen(suffix);
  if (name.len <= 4 + ns || memcmp(name.ptr, "blk.", 4) != 0 || memcmp(name.ptr + name.len - ns, suffix, ns) != 0)
    return -1;
  int l = 0;
  for (uint64_t i = 4; i < name.len - ns; i++) {
    if (name.ptr[i] < '0' || name.ptr[i] > '9' || l > 1000000) return -1;
    l = l * 10 + (name.ptr[i] - '0');
  }
  return l;
}

/* Q4_0 rows of tensor `name` ({E, F}) into segment `part` of each bundle row. */
static enum spr_status bundle_part(const struct spr_gguf *g, const char *name, size_t e, size_t f, uint8_t *buf,
                                   size_t part, struct spr_error *err) {
  struct spr_gguf_tensor t;
  SPR_CHECK(spr_gguf_find_tensor(g, name, &t) == SPR_STATUS_OK && t.n_dims == 2 && (size_t)t.ne[0] == e &&
                (size_t)t.ne[1] == f && spr_dequantize_row_get(t.type) != NULL,
            SPR_STATUS_BAD_METADATA, "quantize: --bundle needs %s {%zu, %zu} of a float or block type", name, e, f);
  const size_t seg = spr_quant_row_bytes(SPR_DTYPE_Q4_0, (int64_t)e), src_row = spr_quant_row_bytes(t.type, (int64_t)e);
  float *row = malloc(e * sizeof *row);
  SPR_CHECK(row != NULL, SPR_STATUS_OUT_OF_MEMORY, "quantize: out of memory");
  for (size_t r = 0; r < f; r++) {
    spr_dequantize_row_get(t.type)((const uint8_t *)t.data + r * src_row, row, (int64_t)e);
    spr_quantize_row_get(SPR_DTYPE_Q4_0)(row, buf + (3 * r + part) * seg, (int64_t)e);
  }
  free(row);
  return SPR_STATUS_OK;
}

/* blk.L.ffn_bundle {3E, F} from layer L's ffn_gate, ffn_up ({E, F}) and ffn_down (t, {F, E}). */
static enum spr_status bundle_layer(struct spr_pool *pool, const struct spr_gguf *g, const struct spr_gguf_tensor *t,
                                    int l, void **out, size_t *bytes, struct spr_error *err) {
  const size_t f = (size_t)t->ne[0], e = (size_t)t->ne[1];
  SPR_CHECK(e % 32 == 0, SPR_STATUS_INVALID_ARGUMENT, "quantize: --bundle needs n_embd (%zu) a multiple of 32", e);
  void *dt = NULL;
  size_t dt_bytes = 0;
  SPR_TRY(transpose_down(pool, t, SPR_DTYPE_Q4_0, &dt, &dt_bytes, err));
  const size_t seg = spr_quant_row_bytes(SPR_DTYPE_Q4_0, (int64_t)e);
  *bytes = 3 * seg * f;
  uint8_t *buf = malloc(*bytes);
  if (buf == NULL) {
    free(dt);
    return SPR_FAIL(SPR_STATUS_OUT_OF_MEMORY, "quantize: cannot allocate the bundle of layer %d", l);
  }
  char name[SPR_GGUF_MAX_NAME + 1];
  enum spr_status st = SPR_STATUS_OK;
  snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
  st = bundle_part(g, name, e, f, buf, 0, err);
  if (st == SPR_STATUS_OK) {
    snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
    st = bundle_part(g, name, e, f, buf, 1, err);
  }
  for (size_t r = 0; st == SPR_STATUS_OK && r < f; r++) memcpy(buf + (3 * r + 2) * seg, (uint8_t *)dt + r * seg, seg);
  free(dt);
  if (st != SPR_STATUS_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  return SPR_STATUS_OK;
}

struct job {
  struct spr_blob blob;
  struct spr_gguf g;
  struct spr_gguf_writer *w;
  void **bufs; /* per tensor, NULL when copied */
  uint64_t n_bufs;
  float *rowbuf;
  void *pool_mem;
  struct spr_pool *pool;
};

static void job_free(struct job *j) {
  for (uint64_t i = 0; i < j->n_bufs; i++) free(j->bufs[i]);
  free(j->bufs);
  free(j->rowbuf);
  spr_pool_destroy(j->pool);
  free(j->pool_mem);
  spr_gguf_writer_destroy(j->w);
  spr_blob_unmap(&j->blob);
}

static enum spr_status run(struct job *j, const char *in_path, const char *out_path, const struct spr_quantize_opts *o,
                           bool want_bundle, struct spr_quantize_stats *st, struct spr_error *err) {
  SPR_CHECK(o != NULL && spr_quantize_row_get(o->type) != NULL, SPR_STATUS_INVALID_ARGUMENT,
            "quantize: unsupported target type %s", o != NULL ? spr_dtype_name(o->type) : "?");
  SPR_CHECK(o->threads >= 1 && o->threads <= 256, SPR_STATUS_INVALID_ARGUMENT, "quantize: bad thread count %d",
            o->threads);
  SPR_CHECK(in_path != NULL && out_path != NULL, SPR_STATUS_INVALID_ARGUMENT, "quantize: missing path");
  SPR_CHECK(!same_file(in_path, out_path), SPR_STATUS_INVALID_ARGUMENT,
            "quantize: the output would overwrite the input %s", in_path);
  SPR_TRY(spr_blob_map_file(in_path, &j->blob, err));
  SPR_TRY(spr_gguf_parse(j->blob.data, j->blob.size, &j->g, err));
  const struct spr_gguf *g = &j->g;
  SPR_TRY(spr_gguf_writer_create(&j->w));

  struct spr_gguf_str arch = {NULL, 0};
  const bool llama =
      spr_gguf_get_str(g, "general.architecture", &arch) == SPR_STATUS_OK && spr_gguf_str_eq(arch, "llama");
  struct spr_gguf_tensor probe;
  const bool has_output = spr_gguf_find_tensor(g, "output.weight", &probe) == SPR_STATUS_OK;

  /* the layers that get ffn_down_t */
  int sparse_first = o->sparse_first, sparse_last = o->sparse_last;
  if (o->sparse_layout && llama) {
    uint32_t n_layer = 0;
    SPR_CHECK(spr_gguf_get_u32(g, "llama.block_count", &n_layer) == SPR_STATUS_OK && n_layer > 0 && n_layer < 100000,
              SPR_STATUS_BAD_METADATA, "quantize: --sparse-layout needs llama.block_count");
    const int L = (int)n_layer;
    if (sparse_first < 0) sparse_first = (6 * L + 16) / 32;
    if (sparse_last < 0) sparse_last = L - 1 - (5 * L + 16) / 32;
    if (sparse_last >= L) sparse_last = L - 1;
    SPR_CHECK(sparse_first <= sparse_last, SPR_STATUS_INVALID_ARGUMENT, "quantize: sparse layers %d-%d are empty",
              sparse_first, sparse_last);
    SPR_CHECK(!want_bundle || o->type == SPR_DTYPE_Q4_0, SPR_STATUS_INVALID_ARGUMENT,
              "quantize: --bundle is for q4_0 (not %s)", spr_dtype_name(o->type));
    if (o->log != NULL)
      fprintf(o->log, "sparse layout: %s for layers %d-%d of %d\n", want_bundle ? "ffn_bundle" : "ffn_down_t",
              sparse_first, sparse_last, L);
  }
  const bool bundle = o->sparse_layout && llama && want_bundle;

  /* plans first: general.quantization_version depends on the output types */
  j->bufs = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *j->bufs);
  SPR_CHECK(j->bufs != NULL, SPR_STATUS_OUT_OF_MEMORY, "quantize: out of memory");
  j->n_bufs = g->n_tensors;
  bool any_quant = false;
  size_t max_k = 0;
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    SPR_TRY(spr_gguf_tensor_at(g, i, &t));
    const struct plan p = plan_tensor(&t, o, llama, has_output);
    any_quant |= is_quantized(p.to);
    if (p.to != t.type && (size_t)t.ne[0] > max_k) max_k = (size_t)t.ne[0];
  }

  for (uint64_t i = 0; i < g->n_kv; i++) {
    struct spr_gguf_kv kv;
    SPR_TRY(spr_gguf_kv_at(g, i, &kv));
    if (spr_gguf_str_eq(kv.key, "general.file_type") || spr_gguf_str_eq(kv.key, "general.quantization_version"))
      continue;
    spr_gguf_writer_copy_kv(j->w, &kv);
  }
  spr_gguf_writer_add_u32(j->w, "general.file_type", spr_quantize_ftype(o->type));
  if (any_quant) spr_gguf_writer_add_u32(j->w, "general.quantization_version", 2);

  if (max_k > 0 || o->sparse_layout) {
    j->rowbuf = malloc((size_t)o->threads * (max_k ? max_k : 1) * sizeof(float));
    SPR_CHECK(j->rowbuf != NULL, SPR_STATUS_OUT_OF_MEMORY, "quantize: out of memory");
    if (o->threads > 1) {
      j->pool_mem = aligned_alloc(64, (spr_pool_bytes(o->threads) + 63) / 64 * 64); /* the pool wants 64 */
      SPR_CHECK(j->pool_mem != NULL, SPR_STATUS_OUT_OF_MEMORY, "quantize: out of memory");
      const enum spr_status ps = spr_pool_create(j->pool_mem, o->threads, &j->pool);
      SPR_CHECK(ps == SPR_STATUS_OK, ps, "quantize: cannot start %d threads", o->threads);
    }
  }

  struct spr_quantize_stats s;
  memset(&s, 0, sizeof s);
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    SPR_TRY(spr_gguf_tensor_at(g, i, &t));
    const struct plan p = plan_tensor(&t, o, llama, has_output);
    char name[SPR_GGUF_MAX_NAME + 1];
    memcpy(name, t.name.ptr, (size_t)t.name.len);
    name[t.name.len] = '\0';
    const void *data = t.data;
    size_t bytes = t.nbytes;
    const int down = o->sparse_layout && llama && t.n_dims == 2 ? down_layer(t.name) : -1;
    if (bundle && t.n_dims == 2) { /* gate and up go into the layer's bundle */
      int gl = layer_of(t.name, ".ffn_gate.weight");
      if (gl < 0) gl = layer_of(t.name, ".ffn_up.weight");
      if (gl >= sparse_first && gl <= sparse_last) {
        s.bytes_in += t.nbytes;
        continue;
      }
    }
    if (bundle && down >= sparse_first && down <= sparse_last) {
      SPR_TRY(bundle_layer(j->pool, g, &t, down, &j->bufs[i], &bytes, err));
      snprintf(name, sizeof name, "blk.%d.ffn_bundle.weight", down);
      const int64_t ne_b[2] = {3 * t.ne[1], t.ne[0]};
      spr_gguf_writer_add_tensor(j->w, name, SPR_DTYPE_Q4_0, 2, ne_b, j->bufs[i]);
      s.n_tensors++;
      s.n_converted++;
      s.bytes_in += t.nbytes;
      s.bytes_out += bytes;
      if (o->log != NULL)
        fprintf(o->log, "%-40s %-5s -> %-5s %12zu -> %12zu bytes  sparse layout: gate, up, down_t rows per neuron\n",
                name, spr_dtype_name(t.type), spr_dtype_name(SPR_DTYPE_Q4_0), t.nbytes, bytes);
      continue;
    }
    if (down >= 0 && down >= sparse_first && down <= sparse_last && spr_dequantize_row_get(t.type) != NULL) {
      const enum spr_dtype to = down_t_type(o->type, t.ne[1]);
      SPR_TRY(transpose_down(j->pool, &t, to, &j->bufs[i], &bytes, err));
      snprintf(name, sizeof name, "blk.%d.ffn_down_t.weight", down);
      const int64_t ne_t[2] = {t.ne[1], t.ne[0]};
      spr_gguf_writer_add_tensor(j->w, name, to, 2, ne_t, j->bufs[i]);
      s.n_tensors++;
      s.n_converted++;
      s.bytes_in += t.nbytes;
      s.bytes_out += bytes;
      if (o->log != NULL)
        fprintf(o->log, "%-40s %-5s -> %-5s %12zu -> %12zu bytes  sparse layout: ffn_down transposed\n", name,
                spr_dtype_name(t.type), spr_dtype_name(to), t.nbytes, bytes);
      continue;
    }
    if (p.to != t.type) {
      bytes = spr_tensor_nbytes(p.to, t.ne, t.n_dims);
      SPR_CHECK(bytes != 0, SPR_STATUS_OVERFLOW, "quantize: %s: size of the %s tensor overflows", name,
                spr_dtype_name(p.to));
      j->bufs[i] = malloc(bytes);
      SPR_CHECK(j->bufs[i] != NULL, SPR_STATUS_OUT_OF_MEMORY, "quantize: %s: cannot allocate %zu bytes", name, bytes);
      const size_t k = (size_t)t.ne[0];
      struct conv c = {t.data,
                       j->bufs[i],
                       k,
                       spr_quant_row_bytes(t.type, (int64_t)k),
                       spr_quant_row_bytes(p.to, (int64_t)k),
                       spr_dequantize_row_get(t.type),
                       spr_quantize_row_get(p.to),
                       j->rowbuf};
      spr_pool_run(j->pool, (size_t)(t.ne[1] * t.ne[2] * t.ne[3]), conv_task, &c);
      data = j->bufs[i];
      s.n_converted++;
      if (is_quantized(t.type) && is_quantized(p.to)) s.n_requantized++;
    }
    spr_gguf_writer_add_tensor(j->w, name, p.to, t.n_dims, t.ne, data);
    s.n_tensors++;
    s.bytes_in += t.nbytes;
    s.bytes_out += bytes;
    if (o->log != NULL) {
      fprintf(o->log, "%-40s %-5s -> %-5s %12zu -> %12zu bytes%s%s\n", name, spr_dtype_name(t.type),
              spr_dtype_name(p.to), t.nbytes, bytes, p.note ? "  " : "", p.note ? p.note : "");
    }
  }
  if (o->log != NULL) {
    fprintf(o->log, "total: %llu tensors, %llu converted (%llu requantized), %.2f MB -> %.2f MB\n",
            (unsigned long long)s.n_tensors, (unsigned long long)s.n_converted, (unsigned long long)s.n_requantized,
            (double)s.bytes_in / 1e6, (double)s.bytes_out / 1e6);
  }
  SPR_TRY(spr_gguf_writer_write(j->w, out_path, err));
  if (st != NULL) *st = s;
  return SPR_STATUS_OK;
}

enum spr_status spr_quantize_file(const char *in_path, const char *out_path, const struct spr_quantize_opts *o,
                                  struct spr_quantize_stats *st, struct spr_error *err) {
  struct job j;
  memset(&j, 0, sizeof j);
  const enum spr_status s = run(&j, in_path, out_path, o, false, st, err);
  job_free(&j);
  return s;
}

enum spr_status spr_quantize_file_bundle(const char *in_path, const char *out_path, const struct spr_quantize_opts *o,
                                         bool bundle, struct spr_quantize_stats *st, struct spr_error *err) {
  struct job j;
  memset(&j, 0, sizeof j);
  const enum spr_status s = run(&j, in_path, out_path, o, bundle, st, err);
  job_free(&j);
  return s;
}
