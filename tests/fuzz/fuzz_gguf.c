/* tests/fuzz/fuzz_gguf.c — a model file from hostile bytes, through every
 * public entry point a loaded model reaches.
 *
 * The input is the whole GGUF file. It is copied into a 64-byte aligned
 * buffer (the loader's zero-copy contract) and loaded with
 * spr_model_load_blob (with the NaN/Inf scan when the last byte is odd), which
 * parses it and builds whichever architecture general.architecture names.
 * A model that loads is then planned, bound to an arena of exactly the
 * planned size (one byte less must be refused), and run once on a zeroed
 * input: a vision model through spr_session_run, an LLM through one
 * spr_llm_eval of token 0 and a greedy sample. The architecture-specific
 * helpers (labels, preprocessing, tokenizer, pieces) are called as well. */
#include <math.h>

#include "fuzz_common.h"
#include "sparrow/llm.h"
#include "sparrow/vision.h"

static uint64_t graph_flops(const struct spr_session *s) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < spr_session_n_nodes(s); i++) {
    struct spr_node_info info;
    if (spr_session_node(s, i, &info) == SPR_STATUS_OK) total += info.flops;
  }
  return total;
}

static void exercise_vision(const struct spr_model *m, struct spr_session *s) {
  struct spr_vision_info vi;
  if (spr_vision_info(m, &vi) != SPR_STATUS_OK) return;
  char label[64];
  SPR_FUZZ_REQUIRE(spr_vision_label(m, 0, label, sizeof label) == SPR_STATUS_OK, "label 0");
  SPR_FUZZ_REQUIRE(spr_vision_label(m, vi.n_classes - 1, label, sizeof label) == SPR_STATUS_OK, "last label");
  SPR_FUZZ_REQUIRE(spr_vision_label(m, vi.n_classes, label, sizeof label) == SPR_STATUS_NOT_FOUND, "label n");
  if (s == NULL) return;
  struct spr_tensor_view in;
  SPR_FUZZ_REQUIRE(spr_session_input(s, 0, &in) == SPR_STATUS_OK, "input view");
  const uint8_t px[2 * 3 * 4] = {0, 255, 17, 200, 3, 90, 255, 0, 128, 64, 32, 16};
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status st =
      spr_vision_preprocess(m, px, 2, 2, (int)vi.channels, in.data, in.nbytes / sizeof(float), &err);
  SPR_FUZZ_REQUIRE(st == SPR_STATUS_OK, "preprocess a 2x2 image: %s", err.msg);
}

static void exercise_llm(const struct spr_model *m) {
  struct spr_llm_info li;
  if (spr_llm_info(m, &li) != SPR_STATUS_OK || !li.has_tokenizer) return;
  static const char text[] = "Hello world, \xe2\x96\x81the cat\xff\xfe <s> 12";
  const size_t len = sizeof text - 1;
  const size_t wb = spr_llm_tokenize_work_bytes(m, len);
  void *work = NULL;
  if (posix_memalign(&work, 64, wb ? wb : 64) != 0) return;
  int32_t tok[64];
  size_t n = 0;
  const enum spr_status st = spr_llm_tokenize(m, text, len, true, tok, 64, &n, work, wb);
  SPR_FUZZ_REQUIRE(
      st == SPR_STATUS_OK || st == SPR_STATUS_CAPACITY || st == SPR_STATUS_UNSUPPORTED || st == SPR_STATUS_BAD_INPUT,
      "tokenize: %s", spr_status_name(st));
  if (st == SPR_STATUS_OK) {
    for (size_t i = 0; i < n; i++)
      SPR_FUZZ_REQUIRE(tok[i] >= 0 && (uint32_t)tok[i] < li.n_vocab, "token %d outside the vocab", tok[i]);
  }
  free(work);
  char piece[32];
  size_t pn = 0;
  for (int32_t id = 0; id < 8 && (uint32_t)id < li.n_vocab; id++)
    (void)spr_llm_token_piece(m, id, piece, sizeof piece, &pn);
  SPR_FUZZ_REQUIRE(spr_llm_token_piece(m, (int32_t)li.n_vocab, piece, sizeof piece, &pn) != SPR_STATUS_OK,
                   "piece of id n_vocab");
}

static void run_model(const struct spr_model *m) {
  struct spr_config cfg;
  spr_config_init(&cfg);
  struct spr_plan plan;
  struct spr_error err = {SPR_STATUS_OK, ""};
  enum spr_status s = spr_plan(m, &cfg, &plan, &err);
  if (s != SPR_STATUS_OK) {
    spr_fuzz_check_error(s, &err, "spr_plan");
    exercise_vision(m, NULL);
    return;
  }
  SPR_FUZZ_REQUIRE(
      plan.arena_bytes == plan.activations_bytes + plan.scratch_bytes + plan.persistent_bytes + plan.backend_bytes,
      "plan parts do not add up");
  if (plan.arena_bytes > SPR_FUZZ_MAX_ARENA) return;
  void *arena = NULL;
  if (posix_memalign(&arena, SPR_ARENA_ALIGN, plan.arena_bytes) != 0) return;
  struct spr_session *ss = NULL;
  /* the plan is exact: one byte less is refused */
  s = spr_session_create(m, &cfg, arena, plan.arena_bytes - 1, &ss, &err);
  SPR_FUZZ_REQUIRE(s == SPR_STATUS_ARENA_TOO_SMALL && ss == NULL, "arena of plan - 1 gave %s", spr_status_name(s));
  memset(arena, 0, plan.arena_bytes);
  s = spr_session_create(m, &cfg, arena, plan.arena_bytes, &ss, &err);
  SPR_FUZZ_REQUIRE(s == SPR_STATUS_OK, "planned arena refused: %s (%s)", spr_status_name(s), err.msg);
  exercise_vision(m, ss);
  if (graph_flops(ss) <= SPR_FUZZ_MAX_FLOPS) {
    struct spr_llm_info li;
    if (spr_llm_info(m, &li) == SPR_STATUS_OK) {
      const int32_t tok = 0;
      const float *logits = NULL;
      SPR_FUZZ_REQUIRE(spr_llm_eval(ss, &tok, 1, &logits) == SPR_STATUS_OK && logits != NULL, "eval");
      struct spr_sampler sp;
      spr_sampler_init(&sp);
      sp.temperature = 0;
      const int32_t next = spr_llm_sample(ss, &sp, &tok, 1);
      SPR_FUZZ_REQUIRE(next >= 0 && (uint32_t)next < li.n_vocab, "greedy sample %d", next);
      const int32_t bad = (int32_t)li.n_vocab;
      SPR_FUZZ_REQUIRE(spr_llm_eval(ss, &bad, 1, NULL) == SPR_STATUS_BAD_INPUT, "id n_vocab accepted");
    } else {
      struct spr_tensor_view in;
      for (uint32_t i = 0; i < spr_session_n_inputs(ss); i++) {
        if (spr_session_input(ss, i, &in) == SPR_STATUS_OK) memset(in.data, 0, in.nbytes);
      }
      SPR_FUZZ_REQUIRE(spr_session_run(ss) == SPR_STATUS_OK, "run");
    }
  }
  spr_session_destroy(ss);
  free(arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  void *blob = spr_fuzz_aligned_copy(data, size);
  if (blob == NULL) return 0;
  const struct spr_load_options opt = {NULL, (data[size - 1] & 1) != 0};
  struct spr_model *m = NULL;
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_model_load_blob(blob, size, &opt, &m, &err);
  if (s != SPR_STATUS_OK) {
    spr_fuzz_check_error(s, &err, "spr_model_load_blob");
    SPR_FUZZ_REQUIRE(m == NULL, "failed load left a model");
  } else {
    exercise_llm(m);
    run_model(m);
    spr_model_free(m);
  }
  free(blob);
  return 0;
}
