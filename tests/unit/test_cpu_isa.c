/* tests/unit/test_cpu_isa.c — what spr_cpu_isa() reports on this CPU, and that
 * dispatch follows it: a Q8_0 llama picks the dotprod GEMM ukernels exactly
 * when the dotprod bit is set, the plain NEON ones on a NEON CPU without it.
 *
 * Cross builds run this under qemu with a chosen -cpu; the build passes the
 * features that CPU model must (and must not) report in SPR_EXPECT_ISA, e.g.
 * "neon dotprod i8mm" for -cpu max or "neon -dotprod -i8mm" for cortex-a53:
 * this checks the HWCAP reading of platform/cpu.c. Without the variable the
 * test only prints the mask and checks dispatch against it. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparrow/sparrow.h"
#include "support/test_util.h"
#include "support/tiny_models.h"
#include "tools/sparrow/quantize.h"

static const struct {
  const char *name;
  uint32_t bit;
} k_bits[] = {
    {"avx2", SPR_ISA_X86_AVX2},       {"avx512f", SPR_ISA_X86_AVX512F}, {"avx512vnni", SPR_ISA_X86_AVX512VNNI},
    {"avxvnni", SPR_ISA_X86_AVXVNNI}, {"neon", SPR_ISA_ARM_NEON},       {"dotprod", SPR_ISA_ARM_DOTPROD},
    {"i8mm", SPR_ISA_ARM_I8MM},       {"fp16", SPR_ISA_ARM_FP16},       {"mve", SPR_ISA_ARM_MVE},
};

static uint32_t bit_of(const char *name) {
  for (size_t i = 0; i < sizeof k_bits / sizeof k_bits[0]; i++) {
    if (strcmp(k_bits[i].name, name) == 0) return k_bits[i].bit;
  }
  fail_msg("SPR_EXPECT_ISA names an unknown feature '%s'", name);
  return 0;
}

static void test_reported_isa(void **state) {
  (void)state;
  const uint32_t isa = spr_cpu_isa();
  char buf[128];
  spr_isa_mask_format(isa, buf, sizeof buf);
  printf("spr_cpu_isa() = 0x%08x: %s\n", (unsigned)isa, buf);
  assert_int_equal(isa, spr_cpu_isa()); /* cached, stable */
#if defined(__aarch64__)
  assert_true(isa & SPR_ISA_ARM_NEON); /* Advanced SIMD is mandatory in AArch64 */
#endif
  const char *want = getenv("SPR_EXPECT_ISA");
  if (want == NULL || *want == '\0') return;
  printf("expected: %s\n", want);
  char list[256];
  snprintf(list, sizeof list, "%s", want);
  for (char *tok = strtok(list, " ,"); tok != NULL; tok = strtok(NULL, " ,")) {
    const int absent = tok[0] == '-';
    const uint32_t bit = bit_of(tok + absent);
    if (absent && (isa & bit)) fail_msg("%s is reported but this CPU model must not have it", tok + 1);
    if (!absent && !(isa & bit)) fail_msg("%s is not reported but this CPU model has it", tok);
  }
}

/* Writes a tiny llama quantized to Q8_0 and returns the chosen ukernel of
 * every node, space separated, for a session allowed `mask`. */
static void session_kernels(uint32_t mask, char *out, size_t len) {
  char f32_path[96], q_path[96];
  snprintf(f32_path, sizeof f32_path, "%s/cpu_isa_%d.gguf", SPR_BINARY_DIR, (int)getpid());
  snprintf(q_path, sizeof q_path, "%s/cpu_isa_%d_q8_0.gguf", SPR_BINARY_DIR, (int)getpid());
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  c.ctx = 16;
  void *blob = NULL;
  size_t size = 0;
  assert_int_equal(spr_tiny_llama_write(&c, &blob, &size), SPR_STATUS_OK);
  FILE *f = fopen(f32_path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(blob, 1, size, f), size);
  assert_int_equal(fclose(f), 0);
  free(blob);
  struct spr_error err = {SPR_STATUS_OK, ""};
  const struct spr_quantize_opts o = {SPR_DTYPE_Q8_0, false, 1, NULL};
  if (spr_quantize_file(f32_path, q_path, &o, NULL, &err) != SPR_STATUS_OK) fail_msg("quantize: %s", err.msg);

  struct spr_model *m = NULL;
  if (spr_model_load_file(q_path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("load: %s", err.msg);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.isa_mask = mask;
  cfg.ctx = 16;
  struct spr_plan plan;
  if (spr_plan(m, &cfg, &plan, &err) != SPR_STATUS_OK) fail_msg("plan: %s", err.msg);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  if (spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err) != SPR_STATUS_OK) fail_msg("session: %s", err.msg);
  out[0] = '\0';
  for (uint32_t i = 0; i < spr_session_n_nodes(s); i++) {
    struct spr_node_info info;
    assert_int_equal(spr_session_node(s, i, &info), SPR_STATUS_OK);
    if (info.ukernel == NULL || strstr(out, info.ukernel) != NULL) continue;
    const size_t used = strlen(out);
    snprintf(out + used, len - used, "%s%s", used ? " " : "", info.ukernel);
  }
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  remove(f32_path), remove(q_path);
}

static void test_dispatch_follows_isa(void **state) {
  (void)state;
  const uint32_t isa = spr_cpu_isa();
  char k[4096];
  session_kernels(SPR_ISA_ALL, k, sizeof k);
  printf("ukernels (best): %s\n", k);
  const int has_dotprod = strstr(k, "__dotprod") != NULL, has_neon = strstr(k, "__neon") != NULL;
  if ((isa & SPR_ISA_ARM_NEON) && (isa & SPR_ISA_ARM_DOTPROD)) {
    assert_true(has_dotprod);
  } else {
    assert_false(has_dotprod);
  }
  if (isa & SPR_ISA_ARM_NEON) assert_true(has_neon);

  /* --isa neon: the dotprod ukernels must give way to plain NEON ones */
  uint32_t neon = 0;
  assert_int_equal(spr_isa_mask_parse("neon", &neon), SPR_STATUS_OK);
  session_kernels(neon, k, sizeof k);
  printf("ukernels (--isa neon): %s\n", k);
  assert_null(strstr(k, "__dotprod"));
  if (isa & SPR_ISA_ARM_NEON) assert_non_null(strstr(k, "q8_0_gemm_ukernel_2x2__neon"));

  session_kernels(0, k, sizeof k);
  printf("ukernels (--isa scalar): %s\n", k);
  assert_null(strstr(k, "__neon"));
  assert_null(strstr(k, "__dotprod"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reported_isa),
      cmocka_unit_test(test_dispatch_follows_isa),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
