/* tests/unit/test_fp16.c — ops/common/fp16.h: exhaustive half -> float -> half
 * round trip, and both directions bit-compared with the F16C instructions
 * (round to nearest even) on every half value, every midpoint between
 * neighbouring halves (+-1 ulp), edge floats and random floats, when the CPU
 * has them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the headers above first
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "ops/common/fp16.h"
#include "sparrow/types.h"
#include "support/test_util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static bool half_is_nan(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}

static void test_round_trip_exhaustive(void **state) {
  (void)state;
  int nans = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    const float f = spr_fp16_to_f32((uint16_t)h);
    const uint16_t back = spr_fp16_from_f32(f);
    if (half_is_nan((uint16_t)h)) {
      /* NaN stays NaN with its sign; the payload is not kept */
      if (!isnan(f) || !half_is_nan(back) || (back & 0x8000u) != (h & 0x8000u)) {
        fail_msg("NaN 0x%04x -> %a -> 0x%04x", h, (double)f, back);
      }
      nans++;
      continue;
    }
    if (back != h) fail_msg("0x%04x -> %a -> 0x%04x", h, (double)f, back);
  }
  assert_int_equal(nans, 2 * 1023);
  /* a few exact values */
  assert_true(spr_fp16_to_f32(0x3c00) == 1.0f);
  assert_true(spr_fp16_to_f32(0xc000) == -2.0f);
  assert_true(spr_fp16_to_f32(0x7bff) == 65504.0f);
  assert_true(spr_fp16_to_f32(0x0001) == 0x1p-24f);
  assert_true(spr_fp16_to_f32(0x0400) == 0x1p-14f);
  assert_true(isinf(spr_fp16_to_f32(0xfc00)) && spr_fp16_to_f32(0xfc00) < 0);
  assert_int_equal(spr_fp16_from_f32(0x1p-25f), 0x0000);   /* tie to even: 0 */
  assert_int_equal(spr_fp16_from_f32(0x1.8p-24f), 0x0002); /* 1.5 ulp: tie to even 2 */
  assert_int_equal(spr_fp16_from_f32(65519.0f), 0x7bff);
  assert_int_equal(spr_fp16_from_f32(65520.0f), 0x7c00);
  assert_int_equal(spr_fp16_from_f32(-0.0f), 0x8000);
}

#if HAVE_X86
__attribute__((target("f16c"))) static uint16_t hw_from_f32(float f) {
  return (uint16_t)_cvtss_sh(f, 0 /* round to nearest even */);
}
__attribute__((target("f16c"))) static float hw_to_f32(uint16_t h) {
  return _cvtsh_ss(h);
}

/* Compares one float; NaNs only have to stay NaN with their sign. */
static int check_from(float f) {
  const uint16_t want = hw_from_f32(f), got = spr_fp16_from_f32(f);
  if (isnan(f)) {
    if (!half_is_nan(got) || (got & 0x8000u) != (want & 0x8000u)) {
      print_error("from_f32(%a [0x%08x]) = 0x%04x, F16C 0x%04x\n", (double)f, spr_f32_to_bits(f), got, want);
      return 1;
    }
    return 0;
  }
  if (got != want) {
    print_error("from_f32(%a [0x%08x]) = 0x%04x, F16C 0x%04x\n", (double)f, spr_f32_to_bits(f), got, want);
    return 1;
  }
  return 0;
}

static void test_vs_f16c(void **state) {
  (void)state;
  if (!(spr_cpu_isa() & SPR_ISA_X86_AVX2)) {
    printf("  no AVX2/F16C on this CPU: skipped\n");
    skip();
    return;
  }
  int bad = 0;
  size_t n = 0;
  /* half -> float on every value */
  for (uint32_t h = 0; h < 65536; h++) {
    const float want = hw_to_f32((uint16_t)h), got = spr_fp16_to_f32((uint16_t)h);
    if (half_is_nan((uint16_t)h) ? !(isnan(got) && isnan(want) && signbit(got) == signbit(want))
                                 : spr_f32_to_bits(got) != spr_f32_to_bits(want)) {
      if (bad++ < 10) print_error("to_f32(0x%04x) = %a, F16C %a\n", h, (double)got, (double)want);
    }
  }
  /* float -> half: each half, the midpoint to its successor (a tie), and +-1 ulp around both */
  for (uint32_t h = 0; h < 0x7c00; h++) {
    for (int s = 0; s < 2; s++) {
      const uint16_t hh = (uint16_t)(h | (s ? 0x8000u : 0));
      const float a = spr_fp16_to_f32(hh);
      const float b = spr_fp16_to_f32((uint16_t)(hh + 1)); /* 0x7bff + 1 = inf */
      const float mid = (float)(((double)a + (double)b) / 2);
      const float probes[6] = {a,   nextafterf(a, -INFINITY),   nextafterf(a, INFINITY),
                               mid, nextafterf(mid, -INFINITY), nextafterf(mid, INFINITY)};
      for (int k = 0; k < 6; k++, n++) bad += check_from(probes[k]);
    }
  }
  /* edge floats */
  const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x007fffffu, 0x00800000u, 0x33000000u,
                            0x33000001u, 0x337fffffu, 0x33800000u, 0x387fc000u, 0x387fe000u, 0x387ff000u,
                            0x38800000u, 0x477fe000u, 0x477fefffu, 0x477ff000u, 0x477fffffu, 0x47800000u,
                            0x7f7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7f800001u,
                            0x7fbfffffu, 0x3f800000u, 0x3f801000u, 0x3f803000u, 0x3f802000u, 0x3f806000u};
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++, n++) {
    bad += check_from(spr_f32_from_bits(edges[i]));
    bad += check_from(spr_f32_from_bits(edges[i] ^ 0x80000000u));
  }
  /* random bit patterns, and random values in and around the half range */
  uint64_t rng = 0x5eed;
  for (int i = 0; i < 400000; i++, n += 3) {
    const uint32_t bits = (uint32_t)spr_test_rng_next(&rng);
    bad += check_from(spr_f32_from_bits(bits));
    /* exponent in [-30, 17): covers subnormal halves through overflow */
    const uint32_t e = 97u + (uint32_t)(spr_test_rng_next(&rng) % 47);
    bad += check_from(spr_f32_from_bits((bits & 0x807fffffu) | (e << 23)));
    bad += check_from(spr_test_rng_uniform(&rng, -70000.0f, 70000.0f));
  }
  printf("  %zu floats compared with F16C\n", n);
  if (bad != 0) fail_msg("%d mismatches against F16C", bad);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip_exhaustive),
#if HAVE_X86
    cmocka_unit_test(test_vs_f16c),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
