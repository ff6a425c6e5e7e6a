/* tests/unit/test_quant_gemm.c — SPR_OP_GEMM with Q8_0 / Q4_0 / Q4_K / Q6_K weights.
 *
 * Every quantized GEMM ukernel runs through the driver against spr_qgemm_ref
 * (activations quantized and dequantized the same way, weights dequantized,
 * double accumulation). The kernels compute each block's integer sum
 * exactly and then round: the block-scale product, the int->f32 conversion
 * (|sum| >= 2^24 only for extreme Q4_K blocks), the product, and the sum
 * over blocks in f32; the oracle rounds each dequantized value (up to three
 * roundings for the K-quants). So we allow
 *     |got - ref| <= 1.25 * 4 * (nb + 8) * FLT_EPSILON * A + 1e-5 * (1 + |ref|)
 * where nb = blocks per row and A = sum_k |xd_k| * |w|_k, with |w|_k the
 * magnitude of weight k before the cancellation of the Q4_K min term
 * (|d sc q| + |dmin m|); 1.25 covers the activations' slopes and 1e-5 their
 * vectorized approximations and the residual add.
 *
 * Against plain f32 math (unquantized x times dequantized W, double), the
 * activation quantization adds at most e_b = amax_b * (0.5/127 + 2^-11)
 * (Q8_0: half a step plus the fp16 rounding of the scale; Q8_K: half a
 * step) per value of block b, so the bound there is the one above plus
 * sum_b e_b * sum_{k in b} |w_k|. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/gemm/qgemm.h"
#include "runtime/error.h"
#include "support/op_harness.h"
#include "support/test_util.h"

static const enum spr_dtype k_types[] = {SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};

static bool host_has(uint32_t isa) {
  return (isa & ~spr_cpu_isa()) == 0;
}

/* Magnitudes of the dequantized weights of one row, before the Q4_K min
 * term cancels: |d sc q| + |dmin m| for Q4_K, |w| otherwise. */
static void weight_mag(enum spr_dtype t, const uint8_t *row, size_t k, float *mag) {
  spr_dequantize_row_get(t)(row, mag, (int64_t)k);
  if (t != SPR_DTYPE_Q4_K) {
    for (size_t i = 0; i < k; i++) mag[i] = fabsf(mag[i]);
    return;
  }
  for (size_t b = 0; b < k / 256; b++) {
    const struct spr_block_q4_k *blk = (const struct spr_block_q4_k *)(row + 144 * b);
    const float d = spr_fp16_to_f32(blk->d), dmin = spr_fp16_to_f32(blk->dmin);
    for (int j = 0; j < 8; j++) {
      uint8_t sc, m;
      spr_q4_k_scale_min(j, blk->scales, &sc, &m);
      for (int l = 0; l < 32; l++) {
        const int v = 256 * (int)b + 32 * j + l, c = (32 * j + l) / 64, lo = ((32 * j + l) % 64) < 32;
        const int q = lo ? blk->qs[32 * c + l] & 0xF : blk->qs[32 * c + l] >> 4;
        mag[v] = fabsf(d * sc * q) + fabsf(dmin * m);
      }
    }
  }
}

struct prob {
  enum spr_dtype wt;
  size_t m, n, k, qk, nb, row_bytes;
  enum spr_act act;
  bool has_bias, has_res;
  float *x, *bias, *res, *dst, *ref, *tol, *f32ref, *f32tol;
  uint8_t *w;
};

/* Quantizes random weights with the reference quantizer, then overwrites the
 * codes (never the fp16 scales) of about one block in four with random bytes
 * so every code value (Q8_0's -128, all Q4_K/Q6_K scales) is exercised. */
static void make_weights(struct prob *p, uint64_t seed) {
  float *wf = malloc(p->n * p->k * sizeof(float));
  spr_test_fill(wf, p->n * p->k, seed, -1.0f, 1.0f);
  for (size_t i = 0; i < p->n * p->k; i += 37) wf[i] *= 3.0f;
  spr_quantize_row_get(p->wt)(wf, p->w, (int64_t)(p->n * p->k));
  const size_t bb = spr_dtype_block_bytes(p->wt), nblk = p->n * p->nb;
  size_t c0 = 0, c1 = bb; /* the code bytes of a block */
  switch (p->wt) {
    case SPR_DTYPE_Q8_0:
    case SPR_DTYPE_Q4_0:
      c0 = 2;
      break;
    case SPR_DTYPE_Q4_K:
      c0 = 4;
      break;
    case SPR_DTYPE_Q6_K:
      c1 = 208;
      break;
    default:
      break;
  }
  uint64_t s = seed * 7 + 3;
  for (size_t b = 0; b < nblk; b++) {
    if (spr_test_rng_next(&s) % 4 != 0) continue;
    for (size_t i = c0; i < c1; i++) p->w[b * bb + i] = (uint8_t)spr_test_rng_next(&s);
  }
  free(wf);
}

/* w_seed: the weights' seed (prob_init: seed + 1) */
static void prob_init_w(struct prob *p, enum spr_dtype wt, size_t m, size_t n, size_t k, bool bias, enum spr_act act,
                        bool res, uint64_t seed, uint64_t w_seed, bool with_ref);

static void prob_init(struct prob *p, enum spr_dtype wt, size_t m, size_t n, size_t k, bool bias, enum spr_act act,
                      bool res, uint64_t seed, bool with_ref) {
  prob_init_w(p, wt, m, n, k, bias, act, res, seed, seed + 1, with_ref);
}

static void prob_init_w(struct prob *p, enum spr_dtype wt, size_t m, size_t n, size_t k, bool bias, enum spr_act act,
                        bool res, uint64_t seed, uint64_t w_seed, bool with_ref) {
  memset(p, 0, sizeof *p);
  p->wt = wt, p->m = m, p->n = n, p->k = k, p->act = act, p->has_bias = bias, p->has_res = res;
  p->qk = spr_dtype_block_elems(wt);
  p->nb = k / p->qk;
  p->row_bytes = p->nb * spr_dtype_block_bytes(wt);
  p->x = spr_test_aligned_alloc(m * k * sizeof(float));
  p->w = malloc(n * p->row_bytes); /* exact size: ASan catches any read past the weights */
  p->bias = bias ? spr_test_aligned_alloc(n * sizeof(float)) : NULL;
  p->res = res ? spr_test_aligned_alloc(m * n * sizeof(float)) : NULL;
  p->dst = spr_test_aligned_alloc(m * n * sizeof(float));
  spr_test_fill(p->x, m * k, seed, -1.0f, 1.0f);
  for (size_t i = 0; i < m * k; i += 53) p->x[i] *= 4.0f;
  if (k >= 64 && m > 1) memset(p->x + k + 32, 0, 32 * sizeof(float)); /* a zero activation block */
  make_weights(p, w_seed);
  if (bias) spr_test_fill(p->bias, n, seed + 2, -1.0f, 1.0f);
  if (res) spr_test_fill(p->res, m * n, seed + 3, -1.0f, 1.0f);
  for (size_t i = 0; i < m * n; i++) p->dst[i] = NAN;
  if (!with_ref) return;
  p->ref = spr_test_aligned_alloc(m * n * sizeof(float));
  p->tol = spr_test_aligned_alloc(m * n * sizeof(float));
  p->f32ref = spr_test_aligned_alloc(m * n * sizeof(float));
  p->f32tol = spr_test_aligned_alloc(m * n * sizeof(float));
  spr_qgemm_ref(wt, m, n, k, p->x, p->w, p->bias, act, p->res, p->ref);
  float *wd = malloc(n * k * sizeof(float)), *wm = malloc(n * k * sizeof(float));
  float *xd = malloc(m * k * sizeof(float)), *eb = malloc(m * p->nb * sizeof(float));
  spr_dequantize_row_get(wt)(p->w, wd, (int64_t)(n * k));
  for (size_t j = 0; j < n; j++) weight_mag(wt, p->w + j * p->row_bytes, k, wm + j * k);
  for (size_t i = 0; i < m; i++) {
    for (size_t b = 0; b < p->nb; b++) {
      const float *xb = p->x + i * k + b * p->qk;
      float *xdb = xd + i * k + b * p->qk, amax = 0;
      if (p->qk == 256) {
        struct spr_block_q8_k q;
        spr_quantize_row_q8_k_ref(xb, &q, 256);
        spr_dequantize_row_q8_k(&q, xdb, 256);
      } else {
        struct spr_block_q8_0 q;
        spr_quantize_row_q8_0_ref(xb, &q, 32);
        spr_dequantize_row_q8_0(&q, xdb, 32);
      }
      for (size_t t = 0; t < p->qk; t++) amax = fmaxf(amax, fabsf(xb[t]));
      eb[i * p->nb + b] = amax * (0.5f / 127.0f + 0x1p-11f);
    }
  }
  /* the plain f32 result: unquantized x times dequantized W */
  spr_f32_gemm_ref(m, n, k, p->x, wd, SPR_DTYPE_F32, p->bias, act, p->res, p->f32ref);
  for (size_t i = 0; i < m; i++) {
    for (size_t j = 0; j < n; j++) {
      double a = bias ? fabs((double)p->bias[j]) : 0.0, q = 0.0;
      for (size_t kk = 0; kk < k; kk++) {
        a += fabs((double)xd[i * k + kk]) * wm[j * k + kk];
        q += (double)eb[i * p->nb + kk / p->qk] * fabs((double)wd[j * k + kk]);
      }
      const double base = 1.25 * 4.0 * (double)(p->nb + 8) * FLT_EPSILON * a;
      p->tol[i * n + j] = (float)(base + 1e-5 * (1.0 + fabs(p->ref[i * n + j])));
      p->f32tol[i * n + j] = (float)(base + 1.25 * q * (1 + 1e-6) + 1e-5 * (1.0 + fabs(p->f32ref[i * n + j])));
    }
  }
  free(wd), free(wm), free(xd), free(eb);
}

static void prob_free(struct prob *p) {
  free(p->x), free(p->w), free(p->bias), free(p->res), free(p->dst), free(p->ref), free(p->tol), free(p->f32ref),
      free(p->f32tol);
}

static void prob_expect(const struct prob *p, const char *kernel) {
  for (size_t i = 0; i < p->m * p->n; i++) {
    const float got = p->dst[i];
    if (!(fabsf(got - p->ref[i]) <= p->tol[i]))
      fail_msg("%s %s M=%zu N=%zu K=%zu act=%d bias=%d res=%d: dst[%zu][%zu] = %.9g, ref %.9g (tol %.3g)", kernel,
               spr_dtype_name(p->wt), p->m, p->n, p->k, (int)p->act, (int)p->has_bias, (int)p->has_res, i / p->n,
               i % p->n, (double)got, (double)p->ref[i], (double)p->tol[i]);
    if (!(fabsf(got - p->f32ref[i]) <= p->f32tol[i]))
      fail_msg("%s %s M=%zu N=%zu K=%zu: dst[%zu][%zu] = %.9g, plain f32 %.9g (tol %.3g)", kernel,
               spr_dtype_name(p->wt), p->m, p->n, p->k, i / p->n, i % p->n, (double)got, (double)p->f32ref[i],
               (double)p->f32tol[i]);
  }
}

/* Runs p through the quantized driver with one ukernel, one thread. */
static void run_driver(struct prob *p, const struct spr_qgemm_ukernel *uk, uint32_t isa) {
  const struct spr_gemm_args a = {
      .m = p->m,
      .n = p->n,
      .k = p->k,
      .x = p->x,
      .w = p->w,
      .w_type = p->wt,
      .bias = p->bias,
      .residual = p->res,
      .dst = p->dst,
      .act = spr_f32_act_select(p->act, isa, NULL),
  };
  const size_t ws = spr_qgemm_driver_workspace(uk, p->wt, p->m, p->n, p->k, 1);
  void *scratch = spr_test_aligned_alloc(ws ? ws : 64);
  memset(scratch, 0xA5, ws); /* packers must write every byte kernels read */
  const struct spr_exec x = {.tensors = NULL, .pool = NULL, .n_threads = 1, .scratch = scratch, .scratch_bytes = ws};
  spr_qgemm_driver_run(&x, uk, &a);
  free(scratch);
}

static void test_ukernels(void **state) {
  (void)state;
  unsigned c = 0;
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    const enum spr_dtype wt = k_types[ti];
    size_t count = 0;
    const struct spr_qgemm_ukernel *tab = spr_qgemm_table(wt, &count);
    assert_true(count >= 1 && tab[count - 1].isa == 0);
    const size_t qk = spr_dtype_block_elems(wt);
    /* 32-value blocks: AVX-512 kernels step 8 (Q4_0) or 4 (Q8_0) blocks at a time; 9, 18 and 25
     * take the Q4_0 GEMV's flat walk across row ends at M = 1 (P = 9, 9, 25 groups), 18 is SmolLM's K */
    const size_t kbs32[] = {1, 2, 3, 7, 8, 9, 18, 25}, kbs256[] = {1, 2};
    const size_t *kbs = qk == 32 ? kbs32 : kbs256, nkb = qk == 32 ? 8 : 2;
    for (size_t u = 0; u < count; u++) {
      const struct spr_qgemm_ukernel *uk = &tab[u];
      if (!host_has(uk->isa)) {
        printf("skip %s (ISA not on this host)\n", uk->name);
        continue;
      }
      const size_t mr = uk->mr, nr = uk->nr;
      const size_t ms[] = {1, mr > 1 ? mr - 1 : 2, mr, mr + 1, 3 * mr + 1, 7};
      const size_t ns[] = {1, nr > 1 ? nr - 1 : 2, nr, nr + 1, 3 * nr + 1, 67}; /* 67: two n blocks */
      for (size_t a = 0; a < 6; a++) {
        for (size_t b = 0; b < 6; b++) {
          for (size_t d = 0; d < nkb; d++, c++) {
            struct prob p;
            prob_init(&p, wt, ms[a], ns[b], kbs[d] * qk, (c & 1) != 0, (enum spr_act)((c >> 1) % 4),
                      ((c >> 3) & 1) != 0, 1000 + c, true);
            run_driver(&p, uk, uk->isa);
            prob_expect(&p, uk->name);
            prob_free(&p);
          }
        }
      }
    }
  }
}

/* The GEMV contract (qgemm.h): with one activation row a ukernel takes any
 * nr, the whole n block the driver hands it, in one call. Each entry is
 * called directly with mr = 1 and nr past its tile (odd, a 64-row block, 67)
 * on a row packed by its own packer; every column must be written and
 * match the oracle. (The Helium kernels once stored only 2 columns.) */
static void test_gemv_call(void **state) {
  (void)state;
  unsigned c = 0;
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    const enum spr_dtype wt = k_types[ti];
    size_t count = 0;
    const struct spr_qgemm_ukernel *tab = spr_qgemm_table(wt, &count);
    const size_t qk = spr_dtype_block_elems(wt), kb = qk == 32 ? 9 : 2;
    for (size_t u = 0; u < count; u++) {
      const struct spr_qgemm_ukernel *uk = &tab[u];
      if (!host_has(uk->isa)) continue;
      const size_t ns[] = {2 * (size_t)uk->nr + 1, 64, 67};
      for (size_t b = 0; b < 3; b++, c++) {
        struct prob p;
        prob_init(&p, wt, 1, ns[b], kb * qk, (c & 1) == 0, SPR_ACT_NONE, false, 7000 + c, true);
        const size_t xb = uk->xbytes(kb);
        void *xq = spr_test_aligned_alloc(xb);
        memset(xq, 0xA5, xb);
        uk->packx(kb, 0, kb, p.x, xq);
        uk->gemm(kb, 1, p.n, p.w, p.row_bytes, xq, xb, p.bias, p.dst, p.n);
        prob_expect(&p, uk->name);
        free(xq);
        prob_free(&p);
      }
    }
  }
}

/* The decode path of each entry that has one (qgemm.h): called directly on
 * a row packed by its own packer, the rows cut into two calls (the first
 * told that the second's rows follow, so it may prefetch them), K at tails
 * of the 8-block step, with and without bias, against the oracle; no
 * output past the call's rows is written. The driver's M = 1 runs in
 * test_ukernels take this path too. */
static void test_decode_call(void **state) {
  (void)state;
  unsigned c = 0, tested = 0;
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    const enum spr_dtype wt = k_types[ti];
    size_t count = 0;
    const struct spr_qgemm_ukernel *tab = spr_qgemm_table(wt, &count);
    const size_t qk = spr_dtype_block_elems(wt);
    for (size_t u = 0; u < count; u++) {
      const struct spr_qgemm_decode *dec = tab[u].decode;
      if (dec == NULL) continue;
      if (!host_has(tab[u].isa)) {
        printf("skip %s (ISA not on this host)\n", dec->name);
        continue;
      }
      const size_t kbs[] = {1, 7, 8, 9, 25, 64}, ns[] = {1, 9, 67};
      for (size_t d = 0; d < 6; d++) {
        for (size_t b = 0; b < 3; b++, c++) {
          struct prob p;
          prob_init(&p, wt, 1, ns[b], kbs[d] * qk, (c & 1) == 0, SPR_ACT_NONE, false, 9000 + c, true);
          const size_t xb = dec->xbytes(kbs[d]);
          void *xq = spr_test_aligned_alloc(xb);
          memset(xq, 0xA5, xb);
          dec->packx(kbs[d], 0, kbs[d], p.x, xq);
          const size_t cut = p.n / 3;
          float *out = spr_test_aligned_alloc((p.n + 1) * sizeof(float));
          for (size_t j = 0; j <= p.n; j++) out[j] = NAN;
          dec->gemv(kbs[d], cut, p.w, p.row_bytes, p.n - cut, xq, p.bias, out);
          assert_true(cut == 0 || !isnan(out[cut - 1]));
          for (size_t j = cut; j <= p.n; j++) assert_true(isnan(out[j])); /* nothing past the call's rows */
          dec->gemv(kbs[d], p.n - cut, p.w + cut * p.row_bytes, p.row_bytes, 0, xq, p.bias ? p.bias + cut : NULL,
                    out + cut);
          assert_true(isnan(out[p.n]));
          memcpy(p.dst, out, p.n * sizeof(float));
          prob_expect(&p, dec->name);
          free(out);
          free(xq);
          prob_free(&p);
          tested++;
        }
      }
    }
  }
  printf("decode path: %u problems\n", tested);
}

/* The packed-panel path of each entry that has one (rows >= SPR_QGEMM_PACKED_MIN_M):
 * rows at every remainder of the row tile, columns at the panel edges, K at
 * 1..25 blocks, through the driver against the reference. */
static void test_packed(void **state) {
  (void)state;
  unsigned c = 0;
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    const enum spr_dtype wt = k_types[ti];
    size_t count = 0;
    const struct spr_qgemm_ukernel *tab = spr_qgemm_table(wt, &count);
    for (size_t u = 0; u < count; u++) {
      const struct spr_qgemm_ukernel *uk = &tab[u];
      if (uk->packed == NULL) continue;
      if (!host_has(uk->isa)) {
        printf("skip %s (ISA not on this host)\n", uk->packed->name);
        continue;
      }
      const size_t mr = uk->packed->mr, nr = uk->packed->nr, qk = spr_dtype_block_elems(wt);
      assert_true(2 * mr >= SPR_QGEMM_PACKED_MIN_M); /* every ms[] takes the packed path */
      size_t ms[8];
      for (size_t r = 0; r < mr && r < 6; r++) ms[r] = 2 * mr + r; /* every remainder mod mr */
      ms[6] = 3 * mr + 1, ms[7] = 37;
      const size_t ns[] = {1, nr - 1, nr, nr + 1, 3 * nr + 1, 67};
      const size_t kbs[] = {1, 7, 25};
      const unsigned c0 = c;
      for (size_t a = 0; a < 8; a++) {
        if (a >= mr && a < 6) continue;
        for (size_t b = 0; b < 6; b++) {
          for (size_t d = 0; d < 3; d++, c++) {
            struct prob p;
            prob_init(&p, wt, ms[a], ns[b], kbs[d] * qk, (c & 1) != 0, (enum spr_act)((c >> 1) % 4),
                      ((c >> 3) & 1) != 0, 5000 + c, true);
            run_driver(&p, uk, uk->isa);
            prob_expect(&p, uk->packed->name);
            prob_free(&p);
          }
        }
      }
      printf("%s (%s): %u cases\n", uk->packed->name, spr_dtype_name(wt), c - c0);
    }
  }
}

/* ---- through the op ----------------------------------------------------------------------- */

enum { TX, TW, TB, TR, TD, NT };

static void op_tensors(struct prob *p, struct spr_tensor *ts, struct spr_node *nd) {
  const int64_t xne[2] = {(int64_t)p->k, (int64_t)p->m}, wne[2] = {(int64_t)p->k, (int64_t)p->n};
  const int64_t bne[1] = {(int64_t)p->n}, dne[2] = {(int64_t)p->n, (int64_t)p->m};
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 2, xne, p->x);
  spr_test_tensor(&ts[TW], p->wt, 2, wne, p->w);
  spr_test_tensor(&ts[TB], SPR_DTYPE_F32, 1, bne, p->bias);
  spr_test_tensor(&ts[TR], SPR_DTYPE_F32, 2, dne, p->res);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 2, dne, p->dst);
  memset(nd, 0, sizeof *nd);
  nd->op = SPR_OP_GEMM;
  nd->n_src = 4;
  nd->src[0] = TX, nd->src[1] = TW, nd->src[2] = p->has_bias ? TB : -1, nd->src[3] = p->has_res ? TR : -1;
  nd->dst = TD;
  nd->p.gemm.act = (uint8_t)p->act;
}

static enum spr_status op_run(struct prob *p, uint32_t isa, int threads, const char **name) {
  struct spr_tensor ts[NT];
  struct spr_node nd;
  op_tensors(p, ts, &nd);
  struct spr_error err;
  const enum spr_status s = spr_test_op_run(ts, &nd, isa, threads, 1, name, &err);
  if (s != SPR_STATUS_OK) printf("op_run: %s\n", err.msg);
  return s;
}

/* The kernel name a node reports for m activation rows: the entry's decode
 * path for one row, where it has one. */
static const char *expected_name(enum spr_dtype wt, uint32_t isa, size_t m) {
  const struct spr_qgemm_ukernel *uk = spr_qgemm_select(wt, isa);
  return m == 1 && uk->decode != NULL ? uk->decode->name : uk->name;
}

/* Each ISA through the op (the mask selects that table entry). */
static void test_op_isas(void **state) {
  (void)state;
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    const enum spr_dtype wt = k_types[ti];
    size_t count = 0;
    const struct spr_qgemm_ukernel *tab = spr_qgemm_table(wt, &count);
    for (size_t u = 0; u < count; u++) {
      if (!host_has(tab[u].isa)) continue;
      const size_t ms[] = {1, 9};
      for (size_t i = 0; i < 2; i++) {
        struct prob p;
        prob_init(&p, wt, ms[i], 45, 2 * 256, true, SPR_ACT_GELU, true, 77 + i, true);
        const char *name = NULL;
        assert_int_equal(op_run(&p, tab[u].isa, 1, &name), SPR_STATUS_OK);
        assert_string_equal(name, expected_name(wt, tab[u].isa, ms[i]));
        prob_expect(&p, name);
        prob_free(&p);
      }
    }
  }
}

/* 1 vs 2 threads: bit-identical; shapes with several n blocks, row groups,
 * pack segments and (the K = 8192 ones) row chunks. */
static void test_threads(void **state) {
  (void)state;
  const size_t shapes[][3] = {{1, 300, 2048}, {37, 130, 512}, {4, 70, 4096}, {150, 20, 8192}, {100, 8, 256}};
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      struct prob p;
      prob_init(&p, k_types[ti], shapes[s][0], shapes[s][1], shapes[s][2], true, SPR_ACT_SILU, (s & 1) == 0, 300 + s,
                false);
      const char *name = NULL;
      assert_int_equal(op_run(&p, SPR_ISA_ALL, 1, &name), SPR_STATUS_OK);
      float *one = spr_test_aligned_alloc(p.m * p.n * sizeof(float));
      memcpy(one, p.dst, p.m * p.n * sizeof(float));
      assert_int_equal(op_run(&p, SPR_ISA_ALL, 2, &name), SPR_STATUS_OK);
      for (size_t i = 0; i < p.m * p.n; i++) {
        if (memcmp(&one[i], &p.dst[i], sizeof(float)) != 0)
          fail_msg("%s %s M=%zu N=%zu K=%zu: 1 vs 2 threads differ at [%zu][%zu]: %.9g vs %.9g", name,
                   spr_dtype_name(p.wt), p.m, p.n, p.k, i / p.n, i % p.n, (double)one[i], (double)p.dst[i]);
      }
      free(one);
      prob_free(&p);
    }
  }
}

/* ---- SPR_OP_GEMM_MULTI ----------------------------------------------------------- */

/* Runs x through a GEMM_MULTI node over the weights of parts[0..n_parts)
 * (same x, same K) on `threads` threads with the ukernel of isa; dst
 * {cols, m}. */
static void multi_run(struct prob *parts, int n_parts, int glu, enum spr_act act, uint32_t isa, int threads, float *dst,
                      size_t cols, const char **name) {
  struct spr_tensor ts[5];
  const struct prob *p = &parts[0];
  const int64_t xne[2] = {(int64_t)p->k, (int64_t)p->m}, dne[2] = {(int64_t)cols, (int64_t)p->m};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, xne, p->x);
  for (int s = 0; s < n_parts; s++) {
    const int64_t wne[2] = {(int64_t)p->k, (int64_t)parts[s].n};
    spr_test_tensor(&ts[1 + s], p->wt, 2, wne, parts[s].w);
  }
  spr_test_tensor(&ts[4], SPR_DTYPE_F32, 2, dne, dst);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM_MULTI;
  nd.n_src = 4;
  for (int s = 0; s < 4; s++) nd.src[s] = s <= n_parts ? s : -1;
  nd.dst = 4;
  nd.p.gemm_multi.glu = (uint8_t)glu;
  nd.p.gemm_multi.act = (uint8_t)act;
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status st = spr_test_op_run(ts, &nd, isa, threads, 1, name, &err);
  if (st != SPR_STATUS_OK) fail_msg("gemm_multi: %s", err.msg);
}

/* Side by side (3 and 2 weights, n blocks that straddle two weights) and
 * gated (act(first) * second), every ukernel, against the per-weight
 * problems' references (the first with act for glu); 1 vs 2 threads
 * bit-identical. */
static void test_multi(void **state) {
  (void)state;
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    const enum spr_dtype wt = k_types[ti];
    const size_t qk = spr_dtype_block_elems(wt);
    size_t count = 0;
    const struct spr_qgemm_ukernel *tab = spr_qgemm_table(wt, &count);
    for (size_t u = 0; u < count; u++) {
      if (!host_has(tab[u].isa)) continue;
      const size_t ms[] = {1, 5, 20}, ks[] = {qk * (qk == 32 ? 9 : 2), qk}; /* 20: the packed path */
      for (size_t mi = 0; mi < 3; mi++) {
        for (size_t ki = 0; ki < 2; ki++) {
          for (int mode = 0; mode < 3; mode++) { /* 0: three weights, 1: two, 2: glu */
            const size_t m = ms[mi], k = ks[ki];
            const size_t ns[3] = {mode == 2 ? 67 : 70, mode == 2 ? 67 : 13, 3};
            const int n_parts = mode == 0 ? 3 : 2, glu = mode == 2;
            const enum spr_act act = glu ? SPR_ACT_SILU : SPR_ACT_NONE;
            const uint64_t seed = 700 + 10 * mi + ki + 100 * (uint64_t)mode;
            struct prob parts[3];
            size_t cols = 0;
            for (int s = 0; s < n_parts; s++) {
              prob_init_w(&parts[s], wt, m, ns[s], k, false, s == 0 ? act : SPR_ACT_NONE, false, seed,
                          seed * 13 + (uint64_t)s, true);
              cols += glu && s > 0 ? 0 : ns[s];
            }
            float *dst = spr_test_aligned_alloc(m * cols * sizeof(float));
            float *two = spr_test_aligned_alloc(m * cols * sizeof(float));
            const char *name = NULL;
            multi_run(parts, n_parts, glu, act, tab[u].isa, 1, dst, cols, &name);
            assert_string_equal(name, expected_name(wt, tab[u].isa, m));
            for (size_t i = 0; i < m; i++) {
              size_t col = 0;
              for (int s = 0; s < (glu ? 1 : n_parts); s++) {
                for (size_t j = 0; j < ns[s]; j++) {
                  const float got = dst[i * cols + col + j];
                  float want = parts[s].ref[i * ns[s] + j], tol = parts[s].tol[i * ns[s] + j];
                  if (glu) {
                    const float a = want, b = parts[1].ref[i * ns[s] + j], tb = parts[1].tol[i * ns[s] + j];
                    want = a * b;
                    tol = fabsf(a) * tb + fabsf(b) * tol + tol * tb + 1e-6f * (1.0f + fabsf(want));
                  }
                  if (!(fabsf(got - want) <= tol))
                    fail_msg("gemm_multi %s %s mode %d M=%zu K=%zu: dst[%zu][%zu] = %.9g, want %.9g (tol %.3g)", name,
                             spr_dtype_name(wt), mode, m, k, i, col + j, (double)got, (double)want, (double)tol);
                }
                col += ns[s];
              }
            }
            multi_run(parts, n_parts, glu, act, tab[u].isa, 2, two, cols, &name);
            if (memcmp(dst, two, m * cols * sizeof(float)) != 0)
              fail_msg("gemm_multi %s %s mode %d M=%zu K=%zu: 1 vs 2 threads differ", name, spr_dtype_name(wt), mode, m,
                       k);
            free(dst), free(two);
            for (int s = 0; s < n_parts; s++) prob_free(&parts[s]);
          }
        }
      }
    }
  }
}

/* glu over several row chunks (K = 8192: the packed rows of a chunk fill
 * the L2 target) and n blocks: reference and 1 vs 2 threads. */
static void test_multi_chunks(void **state) {
  (void)state;
  const enum spr_dtype types[2] = {SPR_DTYPE_Q4_0, SPR_DTYPE_Q8_0};
  for (int ti = 0; ti < 2; ti++) {
    struct prob parts[2];
    const size_t m = 110, n = 20, k = 8192; /* two row chunks on every path */
    prob_init_w(&parts[0], types[ti], m, n, k, false, SPR_ACT_SILU, false, 31, 32, true);
    prob_init_w(&parts[1], types[ti], m, n, k, false, SPR_ACT_NONE, false, 31, 33, true);
    float *one = spr_test_aligned_alloc(m * n * sizeof(float)), *two = spr_test_aligned_alloc(m * n * sizeof(float));
    const char *name = NULL;
    multi_run(parts, 2, 1, SPR_ACT_SILU, SPR_ISA_ALL, 1, one, n, &name);
    multi_run(parts, 2, 1, SPR_ACT_SILU, SPR_ISA_ALL, 2, two, n, &name);
    for (size_t i = 0; i < m * n; i++) {
      const float a = parts[0].ref[i], b = parts[1].ref[i], ta = parts[0].tol[i], tb = parts[1].tol[i];
      const float tol = fabsf(a) * tb + fabsf(b) * ta + ta * tb + 1e-6f * (1.0f + fabsf(a * b));
      if (!(fabsf(one[i] - a * b) <= tol))
        fail_msg("gemm_multi glu %s %s: [%zu][%zu] = %.9g, want %.9g", name, spr_dtype_name(types[ti]), i / n, i % n,
                 (double)one[i], (double)(a * b));
    }
    if (memcmp(one, two, m * n * sizeof(float)) != 0)
      fail_msg("gemm_multi glu %s: 1 vs 2 threads differ", spr_dtype_name(types[ti]));
    free(one), free(two);
    prob_free(&parts[0]), prob_free(&parts[1]);
  }
}

/* The multi-weight oracle agrees with per-weight spr_qgemm_ref. */
static void test_multi_ref(void **state) {
  (void)state;
  struct prob a, b;
  prob_init_w(&a, SPR_DTYPE_Q4_0, 3, 5, 64, false, SPR_ACT_SILU, false, 5, 6, true);
  prob_init_w(&b, SPR_DTYPE_Q4_0, 3, 5, 64, false, SPR_ACT_NONE, false, 5, 7, true);
  float cat[3 * 10], glu[3 * 5];
  spr_qgemm_multi_ref(SPR_DTYPE_Q4_0, 3, 64, a.x, a.w, 5, b.w, 5, NULL, 0, 0, SPR_ACT_NONE, cat);
  spr_qgemm_multi_ref(SPR_DTYPE_Q4_0, 3, 64, a.x, a.w, 5, b.w, 5, NULL, 0, 1, SPR_ACT_SILU, glu);
  float plain[15];
  spr_qgemm_ref(SPR_DTYPE_Q4_0, 3, 5, 64, a.x, a.w, NULL, SPR_ACT_NONE, NULL, plain);
  for (size_t i = 0; i < 3; i++)
    for (size_t j = 0; j < 5; j++) {
      assert_true(cat[i * 10 + j] == plain[i * 5 + j]);
      assert_true(cat[i * 10 + 5 + j] == b.ref[i * 5 + j]);
      assert_true(glu[i * 5 + j] == a.ref[i * 5 + j] * b.ref[i * 5 + j]);
    }
  prob_free(&a), prob_free(&b);
}

/* check() of GEMM_MULTI: mixed weight types, glu with unequal rows or three
 * weights, a wrong dst width. */
static void test_multi_check(void **state) {
  (void)state;
  static float buf[1 << 14];
  struct spr_tensor ts[5];
  const int64_t xne[2] = {64, 3}, w1ne[2] = {64, 5}, w2ne[2] = {64, 4}, dne[2] = {9, 3};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, xne, buf);
  spr_test_tensor(&ts[1], SPR_DTYPE_Q4_0, 2, w1ne, buf);
  spr_test_tensor(&ts[2], SPR_DTYPE_Q4_0, 2, w2ne, buf);
  spr_test_tensor(&ts[3], SPR_DTYPE_Q4_0, 2, w2ne, buf);
  spr_test_tensor(&ts[4], SPR_DTYPE_F32, 2, dne, buf);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM_MULTI, nd.n_src = 4, nd.src[0] = 0, nd.src[1] = 1, nd.src[2] = 2, nd.src[3] = -1, nd.dst = 4;
  const struct spr_op_def *def = spr_op_get(SPR_OP_GEMM_MULTI);
  struct spr_error err = {SPR_STATUS_OK, ""};
  assert_int_equal(def->check(ts, &nd, &err), SPR_STATUS_OK);
  nd.p.gemm_multi.glu = 1; /* 5 vs 4 rows */
  assert_int_not_equal(def->check(ts, &nd, &err), SPR_STATUS_OK);
  nd.p.gemm_multi.glu = 0;
  ts[2].type = SPR_DTYPE_Q8_0;
  assert_int_equal(def->check(ts, &nd, &err), SPR_STATUS_BAD_TENSOR_TYPE);
  ts[2].type = SPR_DTYPE_Q4_0;
  nd.src[3] = 3; /* 13 columns, dst has 9 */
  assert_int_equal(def->check(ts, &nd, &err), SPR_STATUS_BAD_SHAPE);
  nd.p.gemm_multi.glu = 1;
  assert_int_not_equal(def->check(ts, &nd, &err), SPR_STATUS_OK);
  ts[1].type = ts[2].type = ts[3].type = SPR_DTYPE_F32;
  nd.p.gemm_multi.glu = 0;
  nd.src[3] = -1;
  assert_int_equal(def->check(ts, &nd, &err), SPR_STATUS_BAD_TENSOR_TYPE);
}

/* check() accepts the quantized types and still rejects K not a multiple of the block. */
static void test_check(void **state) {
  (void)state;
  static float buf[1 << 14];
  const int64_t ks[] = {256, 288, 48};
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    for (size_t ki = 0; ki < 3; ki++) {
      struct spr_tensor ts[NT];
      const int64_t xne[2] = {ks[ki], 3}, wne[2] = {ks[ki], 5}, dne[2] = {5, 3};
      spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 2, xne, buf);
      spr_test_tensor(&ts[TW], SPR_DTYPE_F32, 2, wne, buf);
      ts[TW].type = k_types[ti];
      spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 2, dne, buf);
      struct spr_node nd;
      memset(&nd, 0, sizeof nd);
      nd.op = SPR_OP_GEMM, nd.n_src = 2, nd.src[0] = TX, nd.src[1] = TW, nd.dst = TD;
      struct spr_error err = {SPR_STATUS_OK, ""};
      const enum spr_status s = spr_op_get(SPR_OP_GEMM)->check(ts, &nd, &err);
      const bool ok = ks[ki] % (int64_t)spr_dtype_block_elems(k_types[ti]) == 0;
      if (s != (ok ? SPR_STATUS_OK : SPR_STATUS_BAD_SHAPE))
        fail_msg("%s K=%lld: check %s (%s)", spr_dtype_name(k_types[ti]), (long long)ks[ki], spr_status_name(s),
                 err.msg);
    }
  }
}

/* The op's workspace covers every ukernel of the type. */
static void test_workspace(void **state) {
  (void)state;
  for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
    struct spr_tensor ts[NT];
    const int64_t xne[2] = {2048, 197}, wne[2] = {2048, 5632}, dne[2] = {5632, 197};
    spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 2, xne, NULL);
    spr_test_tensor(&ts[TW], k_types[ti], 2, wne, NULL);
    spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 2, dne, NULL);
    struct spr_node nd;
    memset(&nd, 0, sizeof nd);
    nd.op = SPR_OP_GEMM, nd.n_src = 2, nd.src[0] = TX, nd.src[1] = TW, nd.dst = TD;
    const size_t ws = spr_op_get(SPR_OP_GEMM)->workspace(ts, &nd, 2);
    size_t count = 0;
    const struct spr_qgemm_ukernel *tab = spr_qgemm_table(k_types[ti], &count);
    for (size_t u = 0; u < count; u++)
      assert_true(ws >= spr_qgemm_driver_workspace(&tab[u], k_types[ti], 197, 5632, 2048, 2));
  }
}

/* Random blocks of several kinds (ties, NaN, Inf, tiny, zeros, |max| ties). */
#if SPR_ENABLE_AVX2 || SPR_ENABLE_AVX512
static void special_row(float *x, int n, int rep, uint64_t *st) {
  const int kind = rep % 8;
  const float mag = ldexpf(1.0f, (int)(spr_test_rng_next(st) % 60) - 30);
  for (int i = 0; i < n; i++) {
    float v = spr_test_rng_uniform(st, -mag, mag);
    if (kind == 1) v = (float)((int)(spr_test_rng_next(st) % 255) - 127) * 0.5f; /* ties */
    if (kind == 2 && i % 9 == 0) v = NAN;
    if (kind == 3 && i % 13 == 0) v = -INFINITY;
    if (kind == 4) v *= 1e-38f;
    if (kind == 5 && i % 3) v = 0.0f;
    x[i] = v;
  }
  if (kind == 1) x[0] = 127.0f;
  if (kind == 6) x[7] = -mag, x[3] = mag; /* |max| ties: first wins */
}
#endif

/* The AVX2 packers give the plain packers' bytes (same layout). */
/* The packed path's activation packer: the reference quantizer's int8
 * values (+ 128) and scales, on rows with ties, NaN, Inf, tiny values. */
static void test_packed_packer(void **state) {
  (void)state;
#if SPR_ENABLE_AVX512
  if (!host_has(SPR_ISA_X86_AVX512F | SPR_ISA_X86_AVX512VNNI)) {
    printf("skip: no AVX-512 VNNI\n");
    return;
  }
  enum { KB = 64 };
  float x[32 * KB];
  uint64_t st = 19;
  uint8_t *a = spr_test_aligned_alloc(spr_x8_0_xbytes_plain(KB));
  uint8_t *b = spr_test_aligned_alloc(spr_x8_0_xbytes_packed__avx512vnni(KB));
  for (int rep = 0; rep < 400; rep++) {
    special_row(x, 32 * KB, rep, &st);
    const size_t b0 = (size_t)(rep % 3); /* the 16-block steps start anywhere; tails of 1..15 blocks */
    spr_x8_0_packx_plain(KB, 0, KB, x, a);
    if (b0 > 0) spr_x8_0_packx_u8_packed__avx512vnni(KB, 0, b0, x, b);
    spr_x8_0_packx_u8_packed__avx512vnni(KB, b0, KB - (size_t)(rep % 17), x, b);
    if (rep % 17) spr_x8_0_packx_u8_packed__avx512vnni(KB, KB - (size_t)(rep % 17), KB, x, b);
    const float *da = spr_x8_0_plain_d(a, KB), *db = (const float *)(const void *)(b + spr_align_up(KB * 32, 64));
    for (int i = 0; i < 32 * KB; i++)
      if ((uint8_t)(a[i] ^ 0x80) != b[i])
        fail_msg("packed packer: rep %d value %d: %d vs %d", rep, i, (int)(int8_t)a[i], (int)b[i] - 128);
    for (int i = 0; i < KB; i++)
      if (memcmp(&da[i], &db[i], sizeof(float)) != 0)
        fail_msg("packed packer: rep %d block %d scale %.9g vs %.9g", rep, i, (double)da[i], (double)db[i]);
    /* the whole-row packer: 5 rows of 12 blocks (batches of 16 cross the row ends) */
    const size_t kb2 = 12, xrow = spr_x8_0_xbytes_packed__avx512vnni(kb2);
    uint8_t *rows = spr_test_aligned_alloc(5 * xrow), *one = spr_test_aligned_alloc(spr_x8_0_xbytes_plain(kb2));
    spr_x8_0_packx_rows_u8_packed__avx512vnni(kb2, 5, x, 12 * 32 + 7, rows, xrow);
    for (size_t r = 0; r < 5; r++) {
      spr_x8_0_packx_plain(kb2, 0, kb2, x + r * (12 * 32 + 7), one);
      const float *d1 = spr_x8_0_plain_d(one, kb2);
      const float *d2 = (const float *)(const void *)(rows + r * xrow + spr_align_up(kb2 * 32, 64));
      for (size_t i = 0; i < 32 * kb2; i++)
        if ((uint8_t)(one[i] ^ 0x80) != rows[r * xrow + i])
          fail_msg("rows packer: rep %d row %zu value %zu", rep, r, i);
      if (memcmp(d1, d2, kb2 * sizeof(float)) != 0) fail_msg("rows packer: rep %d row %zu scales differ", rep, r);
    }
    free(rows), free(one);
  }
  free(a), free(b);
#endif
}

static void test_simd_packers(void **state) {
  (void)state;
#if SPR_ENABLE_AVX2
  if (!host_has(SPR_ISA_X86_AVX2)) {
    printf("skip: no AVX2\n");
    return;
  }
  enum { KB = 8 };
  float x[256 * KB];
  uint64_t st = 9;
  const size_t bytes = spr_x8_k_xbytes_plain(KB) + spr_x8_0_xbytes_plain(8 * KB);
  uint8_t *a = spr_test_aligned_alloc(bytes), *b = spr_test_aligned_alloc(bytes);
  for (int rep = 0; rep < 400; rep++) {
    special_row(x, 256 * KB, rep, &st);
    memset(a, 0, bytes), memset(b, 0, bytes);
    spr_x8_0_packx_plain(8 * KB, 0, 8 * KB, x, a);
    spr_x8_0_packx_plain__avx2(8 * KB, 0, 8 * KB, x, b);
    if (memcmp(a, b, spr_x8_0_xbytes_plain(8 * KB)) != 0) fail_msg("x8_0 avx2 packer differs: rep %d", rep);
    memset(a, 0, bytes), memset(b, 0, bytes);
    spr_x8_k_packx_plain(KB, 0, KB, x, a);
    spr_x8_k_packx_plain__avx2(KB, 0, KB, x, b);
    if (memcmp(a, b, spr_x8_k_xbytes_plain(KB)) != 0) fail_msg("x8_k avx2 packer differs: rep %d", rep);
  }
  free(a), free(b);
#endif
}

/* The AVX-512 packers' vectorized activation quantizers give the reference's bytes. */
static void test_simd_quantizers(void **state) {
  (void)state;
#if SPR_ENABLE_AVX512
  if (!host_has(SPR_ISA_X86_AVX512F | SPR_ISA_X86_AVX512VNNI)) {
    printf("skip: no AVX-512 VNNI\n");
    return;
  }
  float x[256];
  uint64_t st = 5;
  for (int rep = 0; rep < 3000; rep++) {
    special_row(x, 256, rep, &st);
    for (int b = 0; b < 8; b++) {
      int8_t qa[32], qb[32];
      float da, db;
      int32_t sa, sb;
      spr_x8_0_quantize_block(x + 32 * b, qa, &da, &sa);
      spr_x8_0_quantize_block__avx512vnni(x + 32 * b, qb, &db, &sb);
      if (memcmp(qa, qb, 32) != 0 || memcmp(&da, &db, 4) != 0 || sa != sb)
        fail_msg("x8_0 avx512 quantizer differs: rep %d block %d", rep, b);
    }
    struct spr_block_q8_k ka, kb;
    memset(&ka, 0, sizeof ka), memset(&kb, 0, sizeof kb);
    spr_quantize_row_q8_k_ref(x, &ka, 256);
    spr_x8_k_quantize_block__avx512vnni(x, &kb);
    if (memcmp(&ka, &kb, sizeof ka) != 0) fail_msg("x8_k avx512 quantizer differs: rep %d", rep);
  }
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check),        cmocka_unit_test(test_workspace),     cmocka_unit_test(test_ukernels),
      cmocka_unit_test(test_gemv_call),    cmocka_unit_test(test_decode_call),   cmocka_unit_test(test_packed),
      cmocka_unit_test(test_op_isas),      cmocka_unit_test(test_threads),       cmocka_unit_test(test_simd_quantizers),
      cmocka_unit_test(test_simd_packers), cmocka_unit_test(test_packed_packer), cmocka_unit_test(test_multi),
      cmocka_unit_test(test_multi_ref),    cmocka_unit_test(test_multi_chunks),  cmocka_unit_test(test_multi_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
