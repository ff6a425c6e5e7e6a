/* models/model.h — a loaded model and the architectures Sparrow builds.
 *
 * An architecture reads its hyper-parameters from GGUF metadata at load
 * (validating every value) and builds a graph for a run configuration.
 * Builders only describe the computation: no math, no I/O. */
#ifndef SPR_MODELS_MODEL_H
#define SPR_MODELS_MODEL_H

#include "models/biformer/biformer.h"
#include "models/llama/llama.h"
#include "models/nat/nat.h"
#include "models/vit/vit.h"
#include "platform/blob.h"
#include "runtime/session.h"
#include "sparrow/sparrow.h"
#include "sparrow/vision.h"

struct spr_model;

struct spr_arch {
  const char *name;
  enum spr_status (*load)(struct spr_model *m, struct spr_error *err);
  spr_build_fn build;
  /* vision architectures: input geometry and normalization; NULL otherwise */
  void (*vision)(const struct spr_model *m, struct spr_vision_info *out);
  /* releases what load allocated (may be NULL) */
  void (*unload)(struct spr_model *m);
};

struct spr_model {
  struct spr_gguf gguf;
  struct spr_blob blob; /* mapped file (hosted) or the caller's blob */
  struct spr_allocator alloc;
  const struct spr_arch *arch;
  char arch_name[32];
  size_t weights_bytes;
  union {
    struct spr_vit_hparams vit;
    struct spr_llama_hparams llama;
    struct spr_nat_hparams nat;
    struct spr_biformer_hparams biformer;
  } hp;
};

/* Reads a required u32 key within [lo, hi] (MISSING_KEY / BAD_METADATA). */
enum spr_status spr_model_get_u32(const struct spr_gguf *g, const char *key, uint32_t lo, uint32_t hi,
                                  uint32_t *out, struct spr_error *err);

/* Reads a required array of integers with 1..n_max elements, each within
 * [lo, hi], into out[] and its length into *n (MISSING_KEY / BAD_METADATA). */
enum spr_status spr_model_get_int_array(const struct spr_gguf *g, const char *key, uint32_t n_max, int64_t lo,
                                        int64_t hi, int32_t *out, uint32_t *n, struct spr_error *err);

/* Reads an optional array of exactly c finite numbers (default: all `def`). */
enum spr_status spr_model_get_f32_array_or(const struct spr_gguf *g, const char *key, uint32_t c, float def,
                                           float *out, struct spr_error *err);

/* Copies a GGUF string into a NUL-terminated buffer (truncating). */
void spr_model_str(struct spr_gguf_str s, char *buf, size_t len);

#endif
