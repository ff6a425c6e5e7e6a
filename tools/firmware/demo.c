/* tools/firmware/demo.c — Sparrow on a Cortex-M: classify one image with the
 * model in flash and a static arena, print the top class over semihosting and
 * exit with 0 when it is the class the build machine predicted.
 *
 * Memory: the model is a const array in flash (sparrow embed); the arena is a
 * static buffer of exactly SPR_ARENA_BYTES (arena.h); load-time allocations
 * (the model object, spr_plan's temporary graph) come from a bump allocator
 * over a static buffer. The firmware has no heap at all (syscalls.c).
 *
 * The same file builds two images:
 *   SPR_FW_PLAN_ONLY=1  the planner: prints spr_plan()'s arena for this target
 *                       (struct sizes, 32-bit size_t, the scalar ukernels'
 *                       workspaces) as "SPR_PLAN arena_bytes=N"; the build runs
 *                       it under qemu and writes arena.h from it;
 *   SPR_FW_PLAN_ONLY=0  the demo: checks at boot that spr_plan() on the device
 *                       gives exactly the static arena's size, that one byte
 *                       less is refused, then classifies. */
#include <stdint.h>
#include <string.h>

#include "model_blob.h"
#include "sample_image.h"
#include "semihost.h"
#include "sparrow/sparrow.h"
#include "sparrow/vision.h"

#if !SPR_FW_PLAN_ONLY
#include "arena.h"
/* The whole run-time memory of the inference: graph, activations, scratch. */
static uint8_t g_arena[SPR_ARENA_BYTES] __attribute__((aligned(SPR_ARENA_ALIGN)));
#endif

#ifndef SPR_FW_LOAD_HEAP_BYTES
#define SPR_FW_LOAD_HEAP_BYTES (160u * 1024u)
#endif

/* ---- load-time bump allocator (LIFO release) --------------------------------- */

struct bump {
  uint8_t *base;
  size_t cap, used, peak;
  size_t last_off; /* offset of the latest allocation, for LIFO release */
};

static uint8_t g_load_heap[SPR_FW_LOAD_HEAP_BYTES] __attribute__((aligned(64)));
static struct bump g_bump = {g_load_heap, sizeof g_load_heap, 0, 0, 0};

static void *bump_alloc(void *user, size_t bytes, size_t align) {
  struct bump *b = user;
  const size_t at = (b->used + (align - 1)) & ~(align - 1);
  if (at < b->used || at > b->cap || bytes > b->cap - at) return NULL;
  b->last_off = at;
  b->used = at + bytes;
  if (b->used > b->peak) b->peak = b->used;
  return b->base + at;
}

/* Only the latest allocation is given back (spr_plan frees its temporary
 * graph right after allocating it); anything else stays until reset. */
static void bump_release(void *user, void *ptr) {
  struct bump *b = user;
  if (ptr == b->base + b->last_off) b->used = b->last_off;
}

static const struct spr_allocator k_bump = {bump_alloc, bump_release, &g_bump};

/* ---- helpers ------------------------------------------------------------------- */

static int failed(const char *what, enum spr_status s, const struct spr_error *err) {
  spr_fw_printf("error: %s: %s (%s)\n", what, spr_status_name(s), err->msg[0] ? err->msg : "no message");
  return 1;
}

#if !SPR_FW_PLAN_ONLY
/* Signed fixed-point with 3 decimals (newlib-nano's printf has no %f). */
static void print_milli(const char *prefix, float v) {
  const long m = (long)(v * 1000.0f + (v < 0 ? -0.5f : 0.5f));
  const long a = m < 0 ? -m : m;
  spr_fw_printf("%s%s%ld.%03ld", prefix, m < 0 ? "-" : "", a / 1000, a % 1000);
}
#endif

int main(void) {
  spr_fw_printf("sparrow %d.%d.%d firmware demo on %s (%s)\n", SPARROW_VERSION_MAJOR, SPARROW_VERSION_MINOR,
                SPARROW_VERSION_PATCH, SPR_FW_BOARD, SPR_FW_CPU);
  struct spr_error err = {SPR_STATUS_OK, ""};
  const struct spr_load_options opt = {&k_bump, false};
  struct spr_model *m = NULL;
  enum spr_status s = spr_model_load_blob(spr_fw_model, spr_fw_model_len, &opt, &m, &err);
  if (s != SPR_STATUS_OK) return failed("load", s, &err);
  spr_fw_printf("model: %s, %u bytes in flash at %p (weights %u bytes, read in place)\n", spr_model_arch(m),
                spr_fw_model_len, (const void *)spr_fw_model, (unsigned)spr_model_weights_bytes(m));

  struct spr_config cfg;
  spr_config_init(&cfg); /* one thread, best ISA this core has: the scalar ukernels */
  struct spr_plan plan;
  s = spr_plan(m, &cfg, &plan, &err);
  if (s != SPR_STATUS_OK) return failed("plan", s, &err);
  spr_fw_printf("plan on the device: arena %u bytes (activations %u, scratch %u, persistent %u), %u nodes\n",
                (unsigned)plan.arena_bytes, (unsigned)plan.activations_bytes, (unsigned)plan.scratch_bytes,
                (unsigned)plan.persistent_bytes, (unsigned)plan.n_nodes);
#if SPR_FW_PLAN_ONLY
  spr_fw_printf("SPR_PLAN arena_bytes=%u\n", (unsigned)plan.arena_bytes);
  spr_fw_printf("load-time memory used: %u of %u bytes\n", (unsigned)g_bump.peak, (unsigned)g_bump.cap);
  return 0;
#else
  spr_fw_printf("static arena (arena.h): %u bytes at %p\n", (unsigned)SPR_ARENA_BYTES, (void *)g_arena);
  if (plan.arena_bytes != SPR_ARENA_BYTES) {
    spr_fw_printf("error: the static arena is %u bytes but spr_plan needs %u: regenerate arena.h\n",
                  (unsigned)SPR_ARENA_BYTES, (unsigned)plan.arena_bytes);
    return 2;
  }
  struct spr_session *sess = NULL;
  s = spr_session_create(m, &cfg, g_arena, SPR_ARENA_BYTES - 1, &sess, &err);
  if (s != SPR_STATUS_ARENA_TOO_SMALL) {
    spr_fw_printf("error: an arena one byte short was not refused (%s)\n", spr_status_name(s));
    return 2;
  }
  spr_fw_printf("one byte less: %s\n", spr_status_name(s));
  s = spr_session_create(m, &cfg, g_arena, SPR_ARENA_BYTES, &sess, &err);
  if (s != SPR_STATUS_OK) return failed("session", s, &err);
  spr_fw_printf("load-time memory used: %u of %u bytes\n", (unsigned)g_bump.peak, (unsigned)g_bump.cap);

  struct spr_tensor_view in, out;
  spr_session_input(sess, 0, &in);
  s = spr_vision_preprocess(m, spr_fw_image, SPR_FW_IMAGE_W, SPR_FW_IMAGE_H, SPR_FW_IMAGE_C, in.data,
                            in.nbytes / sizeof(float), &err);
  if (s != SPR_STATUS_OK) return failed("preprocess", s, &err);
  s = spr_session_run(sess);
  if (s != SPR_STATUS_OK) return failed("run", s, &err);
  spr_session_output(sess, 0, &out);
  const float *logits = out.data;
  const uint32_t n = (uint32_t)(out.nbytes / sizeof(float));
  uint32_t best = 0;
  for (uint32_t i = 1; i < n; i++) best = logits[i] > logits[best] ? i : best;
  char label[64];
  spr_vision_label(m, best, label, sizeof label);
  spr_fw_printf("image: %s (%dx%dx%d)\nukernels:", SPR_FW_IMAGE_NAME, SPR_FW_IMAGE_W, SPR_FW_IMAGE_H, SPR_FW_IMAGE_C);
  for (uint32_t i = 0; i < spr_session_n_nodes(sess); i++) { /* each distinct one, in first-use order */
    struct spr_node_info info, prev;
    spr_session_node(sess, i, &info);
    int seen = info.ukernel == NULL;
    for (uint32_t j = 0; j < i && !seen; j++) {
      spr_session_node(sess, j, &prev);
      seen = prev.ukernel != NULL && strcmp(prev.ukernel, info.ukernel) == 0;
    }
    if (!seen) spr_fw_printf(" %s", info.ukernel);
  }
  spr_fw_puts("\n");
  print_milli("logits:", logits[0]);
  for (uint32_t i = 1; i < n; i++) print_milli(" ", logits[i]);
  spr_fw_puts("\n");
  spr_fw_printf("top-1: class %u (%s)\n", (unsigned)best, label);
  spr_session_destroy(sess);
  if (best != SPR_FW_EXPECTED_CLASS) {
    spr_fw_printf("error: the build machine predicted class %u (%s)\n", (unsigned)SPR_FW_EXPECTED_CLASS,
                  SPR_FW_EXPECTED_LABEL);
    return 1;
  }
  spr_fw_printf("matches the build machine's prediction: ok\n");
  return 0;
#endif
}
