/* tools/bench/fma_peak.c — measures this core's f32 FMA peak (GFLOP/s) with
 * independent FMA chains in registers, so GEMM and attention efficiency can be
 * stated against what the machine really does (the frequency and the number
 * of FMA pipes differ between CPUs that share an ISA).
 * Also the int8 dot-product peak of AVX-512 VNNI (vpdpbusd: 64 multiply-adds
 * = 128 int8 ops per instruction), alone and mixed 8:3 with the int->f32
 * conversion, multiply and FMA that finish a 32-value block in the
 * quantized GEMM (the pgemm ukernel's instruction mix).
 * Usage: fma_peak [seconds]   (x86-64: AVX-512 and AVX2 variants) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <immintrin.h>

#include "sparrow/types.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHAINS 12 /* enough independent accumulators to cover FMA latency x pipes */

__attribute__((target("avx512f,fma"))) static double peak_avx512(double secs) {
  __m512 acc[CHAINS];
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  long iters = 0;
  const double t0 = now();
  double t;
  do {
    for (int r = 0; r < 1000; r++) {
      for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    iters += 1000;
  } while ((t = now() - t0) < secs);
  float sink = 0;
  for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_ps(acc[i]);
  if (sink == 12345.0f) printf(" ");
  return (double)iters * CHAINS * 16 * 2 / t / 1e9;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(double secs) {
  __m256 acc[CHAINS];
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  long iters = 0;
  const double t0 = now();
  double t;
  do {
    for (int r = 0; r < 1000; r++) {
      for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    iters += 1000;
  } while ((t = now() - t0) < secs);
  float tmp[8], sink = 0;
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_ps(tmp, acc[i]);
    sink += tmp[0];
  }
  if (sink == 12345.0f) printf(" ");
  return (double)iters * CHAINS * 8 * 2 / t / 1e9;
}

/* MIX = 0: vpdpbusd only; 1: per 8 vpdpbusd on a chain, one cvt + mul + FMA (the pgemm block epilogue) */
__attribute__((target("avx512f,avx512vnni"))) static double peak_vnni(double secs, const int MIX) {
  __m512i acc[CHAINS];
  __m512 f[CHAINS];
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_epi32(i), f[i] = _mm512_setzero_ps();
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
  const __m512 s = _mm512_set1_ps(1e-9f);
  long iters = 0;
  const double t0 = now();
  double t;
  do {
    for (int r = 0; r < 1000; r++) {
      for (int k = 0; k < 8; k++)
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
      if (MIX)
        for (int i = 0; i < CHAINS; i++) f[i] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[i]), s), s, f[i]);
    }
    iters += 1000;
  } while ((t = now() - t0) < secs);
  int32_t sink = 0;
  for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_epi32(acc[i]) + (int32_t)_mm512_reduce_add_ps(f[i]);
  if (sink == 12345) printf(" ");
  return (double)iters * CHAINS * 8 * 128 / t / 1e9;
}

int main(int argc, char **argv) {
  const double secs = argc > 1 ? atof(argv[1]) : 0.5;
  const uint32_t isa = spr_cpu_isa();
  printf("{");
  if (isa & SPR_ISA_X86_AVX512F) printf("\"avx512_gflops\": %.1f, ", peak_avx512(secs));
  if ((isa & SPR_ISA_X86_AVX512F) && (isa & SPR_ISA_X86_AVX512VNNI))
    printf("\"vnni_int8_gops\": %.1f, \"vnni_int8_gops_with_block_epilogue\": %.1f, ", peak_vnni(secs, 0),
           peak_vnni(secs, 1));
  if (isa & SPR_ISA_X86_AVX2) printf("\"avx2_gflops\": %.1f", peak_avx2(secs));
  printf("}\n");
  return 0;
}
