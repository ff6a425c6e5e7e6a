/* platform/cpu.c — which ISAs this CPU and OS can run.
 *
 * x86: CPUID says what the core implements, XGETBV says whether the OS saves
 * the YMM/ZMM state on context switches; both must agree before a ukernel
 * may use the registers. ARM Linux: HWCAP from the auxiliary vector. */
#include <stdatomic.h>
#include <string.h>

#include "platform/cpu.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static uint32_t detect(void) {
  uint32_t a, b, c, d, isa = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int has_osxsave = (c >> 27) & 1, has_fma = (c >> 12) & 1, has_f16c = (c >> 29) & 1;
  const int has_avx = (c >> 28) & 1;
  if (!has_osxsave || !has_avx) return 0;
  const uint64_t xcr0 = xgetbv0();
  const int os_ymm = (xcr0 & 0x6) == 0x6;     /* SSE + AVX state */
  const int os_zmm = (xcr0 & 0xe6) == 0xe6;   /* + opmask, ZMM_Hi256, Hi16_ZMM */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  const int avx2 = (b >> 5) & 1;
  const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1;
  const int avx512vl = (b >> 31) & 1, avx512vnni = (c >> 11) & 1;
  if (os_ymm && avx2 && has_fma && has_f16c) isa |= SPR_ISA_X86_AVX2;
  if (os_zmm && (isa & SPR_ISA_X86_AVX2) && avx512f && avx512dq && avx512bw && avx512vl) {
    isa |= SPR_ISA_X86_AVX512F;
    if (avx512vnni) isa |= SPR_ISA_X86_AVX512VNNI;
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && os_ymm && ((a >> 4) & 1)) isa |= SPR_ISA_X86_AVXVNNI;
  return isa;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define SPR_HWCAP_ASIMD (1ul << 1)
#define SPR_HWCAP_FPHP (1ul << 9)
#define SPR_HWCAP_ASIMDHP (1ul << 10)
#define SPR_HWCAP_ASIMDDP (1ul << 20)
#define SPR_HWCAP2_I8MM (1ul << 13)

static uint32_t detect(void) {
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  uint32_t isa = 0;
  if (hw & SPR_HWCAP_ASIMD) isa |= SPR_ISA_ARM_NEON;
  if (hw & SPR_HWCAP_ASIMDDP) isa |= SPR_ISA_ARM_DOTPROD;
  if ((hw & SPR_HWCAP_FPHP) && (hw & SPR_HWCAP_ASIMDHP)) isa |= SPR_ISA_ARM_FP16;
  if (hw2 & SPR_HWCAP2_I8MM) isa |= SPR_ISA_ARM_I8MM;
  return isa;
}

#elif defined(__arm__) && defined(__linux__)
#include <sys/auxv.h>
#define SPR_HWCAP_NEON (1ul << 12)
#define SPR_HWCAP_VFPv4 (1ul << 16)
#define SPR_HWCAP2_ASIMDDP_A32 (1ul << 24) /* HWCAP_ASIMDDP on arm (hwcap, not hwcap2) */

static uint32_t detect(void) {
  const unsigned long hw = getauxval(AT_HWCAP);
  uint32_t isa = 0;
  if ((hw & SPR_HWCAP_NEON) && (hw & SPR_HWCAP_VFPv4)) isa |= SPR_ISA_ARM_NEON;
  if (hw & SPR_HWCAP2_ASIMDDP_A32) isa |= SPR_ISA_ARM_DOTPROD;
  return isa;
}

#elif defined(__arm__) && defined(__ARM_FEATURE_MVE)
/* Bare-metal Armv8.1-M (Cortex-M55/M85): Helium is part of the compile-time
 * target (no run-time discovery on M-profile); the ukernels need mve.fp. */
static uint32_t detect(void) { return (__ARM_FEATURE_MVE & 2) ? SPR_ISA_ARM_MVE : 0; }

#elif defined(__aarch64__)
/* Bare-metal or another OS: trust the compile-time target. */
static uint32_t detect(void) {
  uint32_t isa = SPR_ISA_ARM_NEON;
#if defined(__ARM_FEATURE_DOTPROD)
  isa |= SPR_ISA_ARM_DOTPROD;
#endif
  return isa;
}
#else
static uint32_t detect(void) { return 0; }
#endif

/* The one global of the library: detection is idempotent, so a race only
 * repeats the same work and stores the same value. Bit 31 marks "detected". */
static _Atomic uint32_t g_isa;

uint32_t spr_cpu_isa(void) {
  uint32_t v = atomic_load_explicit(&g_isa, memory_order_relaxed);
  if (v == 0) {
    v = detect() | (1u << 31);
#if SPR_NEON_EMULATED
    /* Testing build: the NEON ukernels run through SIMDe emulation. */
    v |= SPR_ISA_ARM_NEON | SPR_ISA_ARM_DOTPROD;
#endif
    atomic_store_explicit(&g_isa, v, memory_order_relaxed);
  }
  return v & ~(1u << 31);
}

static const struct {
  const char *name;
  uint32_t mask; /* this ISA and every ISA it implies we may fall back to */
} k_isa_names[] = {
    {"scalar", 0},
    {"avx2", SPR_ISA_X86_AVX2},
    {"avx512", SPR_ISA_X86_AVX2 | SPR_ISA_X86_AVX512F | SPR_ISA_X86_AVX512VNNI | SPR_ISA_X86_AVXVNNI},
    {"neon", SPR_ISA_ARM_NEON | SPR_ISA_ARM_FP16},
    {"dotprod", SPR_ISA_ARM_NEON | SPR_ISA_ARM_FP16 | SPR_ISA_ARM_DOTPROD},
    {"mve", SPR_ISA_ARM_MVE},
    {"all", SPR_ISA_ALL},
};

enum spr_status spr_isa_mask_parse(const char *name, uint32_t *mask_out) {
  if (name == NULL || mask_out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  for (size_t i = 0; i < sizeof k_isa_names / sizeof k_isa_names[0]; i++) {
    if (strcmp(name, k_isa_names[i].name) == 0) {
      *mask_out = k_isa_names[i].mask;
      return SPR_STATUS_OK;
    }
  }
  return SPR_STATUS_INVALID_ARGUMENT;
}

void spr_isa_mask_format(uint32_t mask, char *buf, size_t len) {
  static const struct {
    uint32_t bit;
    const char *name;
  } bits[] = {{SPR_ISA_X86_AVX2, "avx2"},       {SPR_ISA_X86_AVX512F, "avx512f"},
              {SPR_ISA_X86_AVX512VNNI, "avx512vnni"}, {SPR_ISA_X86_AVXVNNI, "avxvnni"},
              {SPR_ISA_ARM_NEON, "neon"},       {SPR_ISA_ARM_DOTPROD, "dotprod"},
              {SPR_ISA_ARM_I8MM, "i8mm"},       {SPR_ISA_ARM_FP16, "fp16"},
              {SPR_ISA_ARM_MVE, "mve"}};
  if (len == 0) return;
  buf[0] = '\0';
  size_t used = 0;
  for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
    if (!(mask & bits[i].bit)) continue;
    const size_t n = strlen(bits[i].name) + (used ? 1 : 0);
    if (used + n + 1 > len) break;
    if (used) buf[used++] = ' ';
    memcpy(buf + used, bits[i].name, strlen(bits[i].name) + 1);
    used += strlen(bits[i].name);
  }
  if (used == 0 && len > 6) memcpy(buf, "scalar", 7);
}

#if !SPR_FIRMWARE && (defined(__linux__) || defined(__unix__))
#include <unistd.h>
int spr_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
#else
int spr_cpu_count(void) { return 1; }
#endif
