/* ops/common/vmath_coeffs.h — constants of the vector exp and erf approximations
 * shared by every ISA's vmath_<isa>.h (so all ISAs compute the same function).
 *
 * exp(x), x clamped to [SPR_VEXP_LO, SPR_VEXP_HI]; exactly 0 below SPR_VEXP_LO:
 *   n = round(x / ln2), r = x - n ln2 (two-constant Cody-Waite, |r| <= ln2/2),
 *   exp(x) = 2^n * p(r), p(r) = 1 + r + c2 r^2 + c3 r^3 + c4 r^4 + c5 r^5.
 *   c2..c5: relative-error minimax on [-ln2/2, ln2/2] with the first two terms
 *   fixed (Remez exchange in double, then rounded to f32): 1.05e-7 relative
 *   before f32 evaluation; with f32 FMA evaluation about 2 ulp. The clamp keeps
 *   2^n normal (n in [-126, 127]) so the result is never Inf or a denormal.
 *
 * erf(z) = sign(z) * min(1, R(|z|)) with R(a) = a P(a^2) / Q(a^2), a = min(|z|, SPR_VERF_SAT),
 *   and exactly +-1 for |z| >= SPR_VERF_SAT (erfc(3.92) = 5e-8 < half an ulp of 1).
 *   P degree 5, Q degree 5 (q0 = 1): least squares on P - erf*Q refined by Lawson
 *   reweighting towards minimax on [0, 3.92]: 1.6e-8 absolute in exact arithmetic,
 *   about 4e-7 absolute after f32 evaluation (Horner rounding near a = 3.7). */
#ifndef SPR_OPS_COMMON_VMATH_COEFFS_H
#define SPR_OPS_COMMON_VMATH_COEFFS_H

#define SPR_VEXP_HI 88.0f  /* exp(88) = 1.65e38 < FLT_MAX */
#define SPR_VEXP_LO -87.0f /* below: 0 (exp(-87) = 1.6e-38, just above FLT_MIN) */
#define SPR_VEXP_LOG2E 1.44269502f
#define SPR_VEXP_LN2_HI 0.693115234375f /* ln2 with its low 12 mantissa bits cleared: n*LN2_HI is exact */
#define SPR_VEXP_LN2_LO 3.19461833e-5f  /* ln2 - LN2_HI */
#define SPR_VEXP_C2 4.999923110e-01f
#define SPR_VEXP_C3 1.666711420e-01f
#define SPR_VEXP_C4 4.189011455e-02f
#define SPR_VEXP_C5 8.312525228e-03f
/* 1.5*2^23 + 127: fma(x, log2e, MAGIC) rounds x/ln2 to an integer n in the low
 * mantissa bits, already biased by 127, so (bits << 23) is the f32 2^n. */
#define SPR_VEXP_MAGIC 12583039.0f

#define SPR_VERF_SAT 3.92f
#define SPR_VERF_P0 1.128378987e+00f
#define SPR_VERF_P1 1.927651614e-01f
#define SPR_VERF_P2 5.306062847e-02f
#define SPR_VERF_P3 3.868375672e-03f
#define SPR_VERF_P4 2.874807396e-04f
#define SPR_VERF_P5 2.034729505e-06f
#define SPR_VERF_Q1 5.041653514e-01f
#define SPR_VERF_Q2 1.150850728e-01f
#define SPR_VERF_Q3 1.517239213e-02f
#define SPR_VERF_Q4 1.188127324e-03f
#define SPR_VERF_Q5 3.807065514e-05f

#define SPR_SQRT1_2 0.707106781f

#endif
