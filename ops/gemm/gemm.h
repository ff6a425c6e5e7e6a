/* ops/gemm/gemm.h — f32 GEMM ukernels and the GEMM driver (internal to ops/).
 *
 * Problem: C[M,N] = act(X[M,K] . W[N,K]^T + bias[N]) + R[M,N], row-major,
 * X f32 (row stride K), W f32 or f16 with row n holding K contiguous values
 * (PyTorch nn.Linear layout, zero-copy view of the model file).
 *
 * Packing: W must not be repacked persistently (zero-copy weights) and its
 * rows are K-contiguous, so both operands are packed per call into scratch:
 * X once per row chunk into panels [K][MR] (MR rows interleaved, zero
 * padded), W per thread in small slices [KC][NR] (NR rows interleaved; this
 * also converts f16 and zero-pads the N tail). A W slice stays in L1 while
 * the chunk's X panels stream past it from L2; the next slice's W rows are
 * prefetched meanwhile. The ukernel then computes an MR x NR tile of C from
 * the two packed slices; which operand it vectorizes is its own choice
 * (AVX-512: NR = 16 columns of W in one zmm, X broadcast by row, results in
 * C's layout; AVX2/NEON/scalar: MR lanes of X, W broadcast, tile transposed
 * through a small buffer when stored). Row tails cost what they use
 * (AVX-512: R valid rows cost R FMAs per k).
 *
 * For M <= SPR_GEMV_MAX_M a GEMV ukernel vectorized along K streams W rows
 * directly (memory bound: one pass over W for all M rows).
 *
 * Determinism: each output element is produced by one ukernel call whose
 * inputs (panel, W slice, K blocking) depend only on the shapes and the
 * chosen implementation, never on the thread count; the activation and the
 * residual are applied on row segments whose bounds are fixed by the shapes. */
#ifndef SPR_OPS_GEMM_GEMM_H
#define SPR_OPS_GEMM_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "ops/act/act.h"
#include "ops/op.h"

/* ---- packed-panel GEMM ukernels ------------------------------------------ */

/* ukernel flags */
#define SPR_GEMM_ACC_LOAD 1u /* start from acc (else from zero) */
#define SPR_GEMM_FINAL 2u    /* store the tile to C (+ bias); else store it back to acc */

/* One MR x NR tile of C over kc values of K.
 *   xp   [kc][MR]  packed X panel slice, 64-byte aligned
 *   wp   [kc][NR]  packed W slice, 64-byte aligned
 *   acc  NR*MR floats of partial sums between K blocks of the same tile
 *                  (layout private to the ukernel), 64-byte aligned; read
 *                  when ACC_LOAD, written when not FINAL
 *   FINAL: c[m*ldc + n] = sum_k xp[k][m] * wp[k][n] (+ acc) + bias[n]
 *          for m < mr, n < nr (bias may be NULL); 1 <= mr <= MR, 1 <= nr <= NR. */
typedef void (*spr_f32_gemm_ukernel_fn)(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags,
                                        size_t mr, size_t nr, const float *bias, float *c, size_t ldc);

/* Packs mr (1..MR) rows of X (row stride ldx floats, k values each) into
 * xp[k][MR]; lanes mr..MR-1 are zero. */
typedef void (*spr_f32_gemm_packx_fn)(size_t k, size_t mr, const float *x, size_t ldx, float *xp);

/* Packs nr (1..NR) rows of W (row stride ldw elements, kc values each, f32 or
 * f16 per the function) into wp[kc][NR] as f32; lanes nr..NR-1 are zero. */
typedef void (*spr_f32_gemm_packw_fn)(size_t kc, size_t nr, const void *w, size_t ldw, float *wp);

struct spr_gemm_ukernel {
  uint32_t isa;
  uint8_t mr, nr;
  spr_f32_gemm_ukernel_fn gemm;
  spr_f32_gemm_packx_fn packx;
  spr_f32_gemm_packw_fn packw_f32, packw_f16;
  const char *name;
};

/* ---- GEMV ukernels (small M) --------------------------------------------- */

#define SPR_GEMV_MAX_M 4

/* c[i*ldc + j] = sum_k x[i*ldx + k] * w[j*ldw + k] + bias[j]
 * for i < m (1..SPR_GEMV_MAX_M), j < n; w is f32 or f16 per the function;
 * bias may be NULL. */
typedef void (*spr_f32_gemv_ukernel_fn)(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *w,
                                        size_t ldw, const float *bias, float *c, size_t ldc);

struct spr_gemv_ukernel {
  uint32_t isa;
  uint8_t rows; /* W rows processed together */
  spr_f32_gemv_ukernel_fn f32, f16;
  const char *name;
};

/* ---- the ukernel declarations (one per line of the .inc lists) ---------- */
#define SPR_GEMM_UKERNEL(isa, mr, nr, gemm, packx, packw_f32, packw_f16)                                     \
  void gemm(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags, size_t mr_, size_t nr_, \
            const float *bias, float *c, size_t ldc);                                                        \
  void packx(size_t k, size_t mr_, const float *x, size_t ldx, float *xp);                                   \
  void packw_f32(size_t kc, size_t nr_, const void *w, size_t ldw, float *wp);                               \
  void packw_f16(size_t kc, size_t nr_, const void *w, size_t ldw, float *wp);
#include "ops/gemm/f32_gemm.inc"
#undef SPR_GEMM_UKERNEL

#define SPR_GEMV_UKERNEL(isa, rows, f32fn, f16fn)                                                                    \
  void f32fn(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *w, size_t ldw, const float *bias, \
             float *c, size_t ldc);                                                                                  \
  void f16fn(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *w, size_t ldw, const float *bias, \
             float *c, size_t ldc);
#include "ops/gemm/f32_gemv.inc"
#undef SPR_GEMV_UKERNEL

/* The tables generated from the lists (order = preference, scalar last). */
extern const struct spr_gemm_ukernel spr_gemm_ukernels[];
extern const size_t spr_gemm_ukernels_count;
extern const struct spr_gemv_ukernel spr_gemv_ukernels[];
extern const size_t spr_gemv_ukernels_count;

/* First entry whose ISA bits are all in isa (never NULL: scalar is last). */
const struct spr_gemm_ukernel *spr_gemm_select(uint32_t isa);
const struct spr_gemv_ukernel *spr_gemv_select(uint32_t isa);

/* ---- the driver (shared with ops/conv) ----------------------------------- */

/* Produces rows [m0, m0+mr) of X into rows (row-major, K floats each) when X
 * is not a plain matrix (conv im2col). */
typedef void (*spr_gemm_rows_fn)(const void *ctx, size_t m0, size_t mr, float *rows);

struct spr_gemm_args {
  size_t m, n, k;
  const float *x; /* [M][K], or NULL with rows/rows_ctx */
  spr_gemm_rows_fn rows;
  const void *rows_ctx;
  const void *w; /* [N][K] f32 or f16 */
  enum spr_dtype w_type;
  const float *bias;     /* [N] or NULL */
  const float *residual; /* [M][N] or NULL */
  float *dst;            /* [M][N], no alias with any input */
  spr_f32_vunary_fn act; /* NULL: none */
  /* Quantized multi-weight GEMM (SPR_OP_GEMM_MULTI; else w2 = w3 = NULL):
   * further weights of w_type with K columns, n1/n2/n3 rows (w has n1);
   * glu = 0: dst = [x w^T | x w2^T | x w3^T], n = n1 + n2 + n3 (w3 may be NULL, n3 = 0);
   * glu = 1: dst = act(x w^T) * (x w2^T), n = n1 = n2 (act on the first product only).
   * No bias or residual. */
  const void *w2, *w3;
  size_t n1, n2, n3;
  int glu;
};

/* workspace flags */
#define SPR_GEMM_WS_GEMV 1u /* the run passes a GEMV ukernel (plain X): small M needs no scratch */
#define SPR_GEMM_WS_ROWS 2u /* X comes from the rows callback */

/* Scratch bytes the driver needs for this problem with n_threads threads. */
size_t spr_gemm_driver_workspace(const struct spr_gemm_ukernel *uk, size_t m, size_t n, size_t k, unsigned flags,
                                 int n_threads);

/* Runs the problem on x's pool with x's scratch (>= the workspace above).
 * gv may be NULL (never the GEMV path); with gv, a->x must be set. */
void spr_gemm_driver_run(const struct spr_exec *x, const struct spr_gemm_ukernel *uk, const struct spr_gemv_ukernel *gv,
                         const struct spr_gemm_args *a);

/* The epilogue of every GEMM path (f32/f16 here, quantized in qgemm.h):
 * a->act then a->residual on rows [m0, m1) x columns [n0, n1) of a->dst. */
void spr_gemm_finish_rows(const struct spr_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);

/* ---- oracle ------------------------------------------------------------- */

/* Obvious triple loop, double accumulation; w f32 or f16; act applied with
 * the scalar oracles (GELU erf form, SiLU, ReLU). Never dispatched. */
void spr_f32_gemm_ref(size_t m, size_t n, size_t k, const float *x, const void *w, enum spr_dtype w_type,
                      const float *bias, enum spr_act act, const float *residual, float *dst);

#endif
