/* tools/bench/fma_peak.c — measures this core's f32 FMA peak (GFLOP/s) with
 * independent FMA chains in registers, so GEMM and attention efficiency can be
 * stated against what the machine really does (the frequency and the number
 * of FMA pipes differ between CPUs that share an ISA).
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

int main(int argc, char **argv) {
  const double secs = argc > 1 ? atof(argv[1]) : 0.5;
  const uint32_t isa = spr_cpu_isa();
  printf("{");
  if (isa & SPR_ISA_X86_AVX512F) printf("\"avx512_gflops\": %.1f, ", peak_avx512(secs));
  if (isa & SPR_ISA_X86_AVX2) printf("\"avx2_gflops\": %.1f", peak_avx2(secs));
  printf("}\n");
  return 0;
}
