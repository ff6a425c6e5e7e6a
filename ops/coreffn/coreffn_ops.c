/* ops/coreffn/coreffn_ops.c — GEMM_ROWS, CORE_SELECT and FFN_DOWN (see
 * coreffn.h), and the axpy ukernel table generated from axpy.inc.
 *
 * Dense steps run exactly the code of SPR_OP_GEMM (its definition is called
 * with the same node layout: src0..src3 as GEMM), so a sparse layer in a
 * dense step gives the bits of a dense layer. Sparse single-token steps:
 *   GEMM_ROWS  Q4_0 / Q8_0 weights: x is quantized once into the packed
 *              row of the row-gathered ukernel (qrows.inc) and the core list
 *              is cut into chunks of QROWS_GROUP rows over the threads; each
 *              row is one ukernel sum (its bits do not depend on the cut or
 *              the thread count, but differ in rounding from the dense GEMV's
 *              sum order). Other weights: the GEMM/GEMV ukernels over groups
 *              of NR core rows; consecutive core rows a fixed stride apart are
 *              one call with that stride as the row pitch, other groups go row
 *              by row. A core set of every neuron (beta 1) runs the dense GEMM:
 *              the dense bits.
 *   FFN_DOWN   ffn_down_t: the axpy ukernel over the core neurons, threads
 *              split the output on block boundaries (each element is one
 *              ukernel's fixed sum order: bit-identical for any thread
 *              count). ffn_down: the compacted activations are scattered
 *              into a zero vector of F values and the dense GEMV runs (the
 *              rows are read whole: quantized blocks run along F).
 * Neuron bundles (blk.N.ffn_bundle {3E, F}, Q4_0; coreffn.h): GEMM_ROWS over
 * a bundle computes SiLU(x . gate) * (x . up) in prefill and selection steps
 * (spr_gemm_qglu_run) and nothing in other single-token steps, where FFN_DOWN
 * (core.down_t = 2, src2 = the FFN input) runs the fused decode: fixed chunks
 * of the core list over the threads, per sub-block gate/up (gu.inc), SiLU *
 * up and the accumulating axpy into the chunk's partial output, then the
 * partials added in chunk order. Prefill through a bundle is the ffn_down_t
 * prefill on its third segments (row stride 3 segments).
 * CORE_SELECT counts positives per token (tasks = tokens), then ranks each
 * token (tasks = tokens, per-thread scratch and private integer counts,
 * summed afterwards: the counts do not depend on the order), then picks
 * the core set serially. */
#include <string.h>

#include "ops/coreffn/coreffn.h"
#include "ops/gemm/gemm.h"
#include "ops/gemm/qgemm.h"
#include "ops/quant/quant.h"
#include "runtime/error.h"
#include "runtime/util.h"

const struct spr_axpy_ukernel spr_axpy_ukernels[] = {
#define SPR_AXPY_UKERNEL(type, isa, tile, fn) {(type), (isa), (tile), fn, #fn},
#include "ops/coreffn/axpy.inc"
#undef SPR_AXPY_UKERNEL
};
const size_t spr_axpy_ukernels_count = sizeof spr_axpy_ukernels / sizeof spr_axpy_ukernels[0];

const struct spr_axpy_ukernel *spr_axpy_select(enum spr_dtype type, uint32_t isa) {
  for (size_t i = 0; i < spr_axpy_ukernels_count; i++) {
    if (spr_axpy_ukernels[i].type == type && (spr_axpy_ukernels[i].isa & ~isa) == 0) return &spr_axpy_ukernels[i];
  }
  return NULL;
}

bool spr_axpy_supports(enum spr_dtype type) {
  return spr_axpy_select(type, 0) != NULL;
}

const struct spr_qrows_ukernel spr_qrows_ukernels[] = {
#define SPR_QROWS_UKERNEL(type, isa, fn, packx, xbytes) {(type), (isa), fn, packx, xbytes, #fn},
#include "ops/coreffn/qrows.inc"
#undef SPR_QROWS_UKERNEL
};
const size_t spr_qrows_ukernels_count = sizeof spr_qrows_ukernels / sizeof spr_qrows_ukernels[0];

const struct spr_qrows_ukernel *spr_qrows_select(enum spr_dtype type, uint32_t isa) {
  for (size_t i = 0; i < spr_qrows_ukernels_count; i++) {
    if (spr_qrows_ukernels[i].type == type && (spr_qrows_ukernels[i].isa & ~isa) == 0) return &spr_qrows_ukernels[i];
  }
  return NULL;
}

const struct spr_deq_ukernel spr_deq_ukernels[] = {
#define SPR_DEQ_UKERNEL(type, isa, fn) {(type), (isa), fn, #fn},
#include "ops/coreffn/deq.inc"
#undef SPR_DEQ_UKERNEL
};
const size_t spr_deq_ukernels_count = sizeof spr_deq_ukernels / sizeof spr_deq_ukernels[0];

const struct spr_deq_ukernel *spr_deq_select(enum spr_dtype type, uint32_t isa) {
  for (size_t i = 0; i < spr_deq_ukernels_count; i++) {
    if (spr_deq_ukernels[i].type == type && (spr_deq_ukernels[i].isa & ~isa) == 0) return &spr_deq_ukernels[i];
  }
  return NULL;
}

const struct spr_topk_ukernel spr_topk_ukernels[] = {
#define SPR_TOPK_UKERNEL(isa, fn) {(isa), fn, #fn},
#include "ops/coreffn/topk.inc"
#undef SPR_TOPK_UKERNEL
};
const size_t spr_topk_ukernels_count = sizeof spr_topk_ukernels / sizeof spr_topk_ukernels[0];

const struct spr_topk_ukernel *spr_topk_select(uint32_t isa) {
  for (size_t i = 0; i < spr_topk_ukernels_count; i++) {
    if ((spr_topk_ukernels[i].isa & ~isa) == 0) return &spr_topk_ukernels[i];
  }
  return &spr_topk_ukernels[spr_topk_ukernels_count - 1];
}

const struct spr_rqt_ukernel spr_rqt_ukernels[] = {
#define SPR_RQT_UKERNEL(type, isa, fn) {(type), (isa), fn, #fn},
#include "ops/coreffn/rqt.inc"
#undef SPR_RQT_UKERNEL
};
const size_t spr_rqt_ukernels_count = sizeof spr_rqt_ukernels / sizeof spr_rqt_ukernels[0];

const struct spr_rqt_ukernel *spr_rqt_select(enum spr_dtype type, uint32_t isa) {
  for (size_t i = 0; i < spr_rqt_ukernels_count; i++) {
    if (spr_rqt_ukernels[i].type == type && (spr_rqt_ukernels[i].isa & ~isa) == 0) return &spr_rqt_ukernels[i];
  }
  return NULL;
}

const struct spr_rqtp_ukernel spr_rqtp_ukernels[] = {
#define SPR_RQTP_UKERNEL(type, isa, packed, fn) {(type), (isa), (packed), fn, #fn},
#include "ops/coreffn/rqtp.inc"
#undef SPR_RQTP_UKERNEL
    {SPR_DTYPE_F32, 0, NULL, NULL, NULL}, /* end (the list may be empty) */
};
const size_t spr_rqtp_ukernels_count = sizeof spr_rqtp_ukernels / sizeof spr_rqtp_ukernels[0] - 1;

const struct spr_rqtp_ukernel *spr_rqtp_select(enum spr_dtype type, const void *packed, uint32_t isa) {
  for (size_t i = 0; i < spr_rqtp_ukernels_count; i++) {
    const struct spr_rqtp_ukernel *k = &spr_rqtp_ukernels[i];
    if (k->type == type && k->packed == packed && packed != NULL && (k->isa & ~isa) == 0) return k;
  }
  return NULL;
}

const struct spr_gu_ukernel spr_gu_ukernels[] = {
#define SPR_GU_UKERNEL(type, isa, fn, packx, xbytes, down_acc, down_packed, gu_packed) \
  {(type), (isa), fn, packx, xbytes, down_acc, down_packed, gu_packed, #fn},
#include "ops/coreffn/gu.inc"
#undef SPR_GU_UKERNEL
};
const size_t spr_gu_ukernels_count = sizeof spr_gu_ukernels / sizeof spr_gu_ukernels[0];

const struct spr_gu_ukernel *spr_gu_select(enum spr_dtype type, uint32_t isa) {
  for (size_t i = 0; i < spr_gu_ukernels_count; i++) {
    if (spr_gu_ukernels[i].type == type && (spr_gu_ukernels[i].isa & ~isa) == 0) return &spr_gu_ukernels[i];
  }
  return NULL;
}

static size_t cdiv(size_t a, size_t b) {
  return (a + b - 1) / b;
}

/* ---- shared pieces --------------------------------------------------------------- */

static const struct spr_tensor *opt_src(const struct spr_tensor *ts, const struct spr_node *nd, int i) {
  return nd->n_src > i && nd->src[i] >= 0 ? &ts[nd->src[i]] : NULL;
}

static enum spr_status check_state(const struct spr_tensor *ts, const struct spr_node *nd, size_t n_ff,
                                   struct spr_error *err) {
  const struct spr_tensor *sel = opt_src(ts, nd, 4), *ctl = opt_src(ts, nd, 5);
  SPR_CHECK((sel == NULL) == (ctl == NULL), SPR_STATUS_INVALID_ARGUMENT,
            "selection state and control come together (src4, src5)");
  if (sel == NULL) return SPR_STATUS_OK;
  SPR_CHECK(sel->type == SPR_DTYPE_I32 && ctl->type == SPR_DTYPE_I32, SPR_STATUS_BAD_TENSOR_TYPE,
            "selection state and control must be i32");
  SPR_CHECK((size_t)spr_tensor_nelem(sel) >= spr_core_sel_words(n_ff), SPR_STATUS_BAD_SHAPE,
            "selection state of %lld words, need %zu for %zu neurons", (long long)spr_tensor_nelem(sel),
            spr_core_sel_words(n_ff), n_ff);
  SPR_CHECK(spr_tensor_nelem(ctl) >= SPR_CORE_CTL_WORDS, SPR_STATUS_BAD_SHAPE, "control of %lld words, need %d",
            (long long)spr_tensor_nelem(ctl), SPR_CORE_CTL_WORDS);
  return SPR_STATUS_OK;
}

/* The core list when this step runs sparse, else NULL. */
static const int32_t *sparse_core(const struct spr_tensor *ts, const struct spr_node *nd, size_t n_ff, size_t rows,
                                  size_t *n_core) {
  const struct spr_tensor *sel = opt_src(ts, nd, 4), *ctl = opt_src(ts, nd, 5);
  if (sel == NULL || rows != 1) return NULL;
  const struct spr_core_ctl *c = ctl->data;
  struct spr_core_sel *s = sel->data;
  if (c->mode != SPR_CORE_MODE_SPARSE || s->n_core <= 0 || (size_t)s->n_core > n_ff) return NULL;
  *n_core = (size_t)s->n_core;
  return spr_core_sel_core(s, n_ff);
}

/* Neuron bundles (blk.N.ffn_bundle {3E, F}, Q4_0): GEMM_ROWS with such a
 * weight computes act(x . gate) * (x . up) (the bundle's first two
 * segments) in prefill steps; in the fused steps (below) it does nothing and
 * FFN_DOWN (core.down_t == SPR_CORE_DOWN_BUNDLE) computes the whole FFN. */
static bool bundle_rows(const struct spr_tensor *ts, const struct spr_node *nd) {
  return nd->n_src >= 2 && nd->src[0] >= 0 && nd->src[1] >= 0 && ts[nd->src[1]].ne[0] != ts[nd->src[0]].ne[0];
}

/* A single-token step that is not a selection step: the fused decode. */
static bool fused_step(const struct spr_tensor *ts, const struct spr_node *nd, size_t rows) {
  const struct spr_tensor *ctl = opt_src(ts, nd, 5);
  if (rows != 1) return false;
  return ctl == NULL || ((const struct spr_core_ctl *)ctl->data)->mode != SPR_CORE_MODE_SELECT;
}

static size_t bundle_ldw(size_t e) {
  return 3 * spr_quant_row_bytes(SPR_DTYPE_Q4_0, (int64_t)e);
}

/* ---- GEMM_ROWS ------------------------------------------------------------------------ */

static enum spr_status bundle_rows_check(const struct spr_tensor *ts, const struct spr_node *nd,
                                         struct spr_error *err) {
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]];
  SPR_CHECK(nd->dst >= 0, SPR_STATUS_INVALID_ARGUMENT, "gemm_rows needs dst");
  const struct spr_tensor *d = &ts[nd->dst];
  SPR_CHECK(w->type == SPR_DTYPE_Q4_0 && x->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32,
            SPR_STATUS_BAD_TENSOR_TYPE, "a neuron bundle must be q4_0 (is %s) with f32 activations",
            spr_dtype_name(w->type));
  SPR_CHECK(x->ne[2] == 1 && x->ne[3] == 1 && w->ne[2] == 1 && w->ne[3] == 1 && d->ne[2] == 1 && d->ne[3] == 1,
            SPR_STATUS_BAD_SHAPE, "gemm_rows over a bundle is 2-D");
  SPR_CHECK(w->ne[0] == 3 * x->ne[0] && x->ne[0] % 32 == 0 && d->ne[0] == w->ne[1] && d->ne[1] == x->ne[1],
            SPR_STATUS_BAD_SHAPE, "bundle {%lld, %lld} does not map rows of %lld to %lld outputs", (long long)w->ne[0],
            (long long)w->ne[1], (long long)x->ne[0], (long long)d->ne[0]);
  return SPR_STATUS_OK;
}

static enum spr_status gemm_rows_check(const struct spr_tensor *ts, const struct spr_node *nd, struct spr_error *err) {
  SPR_CHECK(nd->n_src >= 2 && nd->src[0] >= 0 && nd->src[1] >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "gemm_rows needs x and a weight");
  if (bundle_rows(ts, nd))
    SPR_TRY(bundle_rows_check(ts, nd, err));
  else
    SPR_TRY(spr_op_gemm_def.check(ts, nd, err));
  SPR_CHECK(opt_src(ts, nd, 2) == NULL && opt_src(ts, nd, 3) == NULL, SPR_STATUS_INVALID_ARGUMENT,
            "gemm_rows takes no bias and no residual");
  return check_state(ts, nd, (size_t)ts[nd->src[1]].ne[1], err);
}

struct rows_ctx {
  const int32_t *core;
  size_t n_core, group;
  const float *x;
  const uint8_t *w;
  size_t k, row_bytes;
  const struct spr_qrows_ukernel *qr; /* quantized weights with a row-gathered ukernel */
  const struct spr_qgemm_ukernel *qk; /* other quantized weights */
  const void *xq;
  size_t xrow, kb;
  spr_f32_gemv_ukernel_fn gemv; /* f32/f16 weights */
  size_t esize;
  spr_f32_vunary_fn act;
  float *dst;
};

/* Rows r, r + stride, ... (cnt of them) into dst[0..cnt). */
static void rows_call(const struct rows_ctx *c, size_t r, size_t stride, size_t cnt, float *dst) {
  if (c->qk != NULL)
    c->qk->gemm(c->kb, 1, cnt, c->w + r * c->row_bytes, stride * c->row_bytes, c->xq, c->xrow, NULL, dst, cnt);
  else
    c->gemv(c->k, 1, cnt, c->x, c->k, c->w + r * c->row_bytes, stride * c->k, NULL, dst, cnt);
}

/* The rows of the group PF_GROUPS ahead: gathered rows defeat the hardware
 * prefetcher, which a dense GEMV's sequential stream does not. */
enum { PF_GROUPS = 4 };

static void prefetch_group(const struct rows_ctx *c, size_t g) {
  const size_t i0 = g * c->group;
  for (size_t i = i0; i < i0 + c->group && i < c->n_core; i++) {
    const uint8_t *r = c->w + (size_t)c->core[i] * c->row_bytes;
    for (size_t off = 0; off < c->row_bytes; off += 64) __builtin_prefetch(r + off, 0, 3);
  }
}

static void rows_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct rows_ctx *c = vctx;
  for (size_t g = begin; g < begin + PF_GROUPS && g < end; g++) prefetch_group(c, g);
  for (size_t g = begin; g < end; g++) {
    if (g + PF_GROUPS < end) prefetch_group(c, g + PF_GROUPS);
    const size_t i0 = g * c->group, cnt = c->n_core - i0 < c->group ? c->n_core - i0 : c->group;
    const int32_t *ix = c->core + i0;
    bool even = true;
    const size_t stride = cnt > 1 ? (size_t)(ix[1] - ix[0]) : 1;
    for (size_t i = 1; i < cnt && even; i++) even = ix[i] > ix[i - 1] && (size_t)(ix[i] - ix[i - 1]) == stride;
    if (even) {
      rows_call(c, (size_t)ix[0], stride, cnt, c->dst + i0);
    } else {
      for (size_t i = 0; i < cnt; i++) rows_call(c, (size_t)ix[i], 1, 1, c->dst + i0 + i);
    }
    if (c->act != NULL) c->act(cnt, c->dst + i0, c->dst + i0);
  }
}

/* Core rows per task of the row-gathered ukernels (they prefetch along the
 * list themselves: one call per contiguous chunk of tasks). */
enum { QROWS_GROUP = 16 };

static void qrows_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct rows_ctx *c = vctx;
  const size_t i0 = begin * QROWS_GROUP, i1 = end * QROWS_GROUP < c->n_core ? end * QROWS_GROUP : c->n_core;
  c->qr->fn(c->kb, i1 - i0, c->core + i0, c->w, c->row_bytes, c->xq, c->dst + i0);
  if (c->act != NULL) c->act(i1 - i0, c->dst + i0, c->dst + i0);
}

static void gemm_rows_run(const struct spr_exec *x, const struct spr_node *nd) {
  const struct spr_tensor *ts = x->tensors;
  const struct spr_tensor *tx = &ts[nd->src[0]], *tw = &ts[nd->src[1]];
  if (bundle_rows(ts, nd)) {
    const size_t T = (size_t)spr_tensor_rows(tx), K = (size_t)tx->ne[0];
    if (fused_step(ts, nd, T)) return; /* FFN_DOWN computes the FFN */
    spr_gemm_qglu_run(x, nd->impl, spr_f32_act_select((enum spr_act)nd->p.gemm.act, nd->isa, NULL), T,
                      (size_t)tw->ne[1], K, tx->data, tw->data, bundle_ldw(K),
                      spr_quant_row_bytes(SPR_DTYPE_Q4_0, (int64_t)K), ts[nd->dst].data);
    return;
  }
  struct rows_ctx c;
  memset(&c, 0, sizeof c);
  c.core = sparse_core(ts, nd, (size_t)tw->ne[1], (size_t)spr_tensor_rows(tx), &c.n_core);
  if (c.core == NULL || c.n_core == (size_t)tw->ne[1]) { /* every neuron (ascending, distinct): the dense bits */
    spr_op_gemm_def.run(x, nd);
    return;
  }
  c.x = tx->data;
  c.w = tw->data;
  c.k = (size_t)tx->ne[0];
  c.row_bytes = spr_quant_row_bytes(tw->type, (int64_t)c.k);
  c.act = spr_f32_act_select((enum spr_act)nd->p.gemm.act, nd->isa, NULL);
  c.dst = ts[nd->dst].data;
  if (nd->impl2 != NULL && spr_qgemm_supports(tw->type)) {
    const struct spr_qrows_ukernel *qr = nd->impl2;
    c.qr = qr;
    c.kb = c.k / spr_dtype_block_elems(tw->type);
    qr->packx(c.kb, 0, c.kb, c.x, x->scratch);
    c.xq = x->scratch;
    spr_parallel(x, cdiv(c.n_core, QROWS_GROUP), qrows_task, &c);
    return;
  }
  if (spr_qgemm_supports(tw->type)) {
    c.qk = nd->impl;
    c.kb = c.k / spr_dtype_block_elems(tw->type);
    c.xrow = c.qk->xbytes(c.kb);
    c.qk->packx(c.kb, 0, c.kb, c.x, x->scratch);
    c.xq = x->scratch;
    c.group = c.qk->nr;
  } else {
    const struct spr_gemv_ukernel *gv = nd->impl2;
    c.gemv = tw->type == SPR_DTYPE_F16 ? gv->f16 : gv->f32;
    c.group = gv->rows;
  }
  spr_parallel(x, cdiv(c.n_core, c.group), rows_task, &c);
}

static size_t gemm_rows_workspace(const struct spr_tensor *ts, const struct spr_node *nd, int n_threads) {
  if (bundle_rows(ts, nd)) {
    size_t most = 0;
    for (size_t i = 0; i < spr_q4_0_gemm_ukernels_count; i++) {
      const size_t b = spr_gemm_qglu_workspace(&spr_q4_0_gemm_ukernels[i], (size_t)ts[nd->src[0]].ne[1],
                                               (size_t)ts[nd->src[0]].ne[0], n_threads);
      most = b > most ? b : most;
    }
    return most;
  }
  size_t most = spr_op_gemm_def.workspace(ts, nd, n_threads);
  const struct spr_tensor *tw = &ts[nd->src[1]];
  for (size_t i = 0; i < spr_qrows_ukernels_count; i++) {
    if (spr_qrows_ukernels[i].type != tw->type) continue;
    const size_t kb = (size_t)ts[nd->src[0]].ne[0] / spr_dtype_block_elems(tw->type);
    const size_t b = spr_align_up(spr_qrows_ukernels[i].xbytes(kb), 64);
    most = b > most ? b : most;
  }
  return most;
}

/* The GEMM's ukernel (dense steps) in impl, and for Q4_0 / Q8_0 weights the
 * row-gathered ukernel of sparse steps in impl2 (the GEMM leaves impl2 NULL
 * for quantized weights). */
static void gemm_rows_prepare(const struct spr_tensor *ts, struct spr_node *nd, uint32_t isa) {
  if (bundle_rows(ts, nd)) { /* prefill: the Q4_0 GEMM ukernel over strided rows */
    const struct spr_qgemm_ukernel *uk = spr_qgemm_select(SPR_DTYPE_Q4_0, isa);
    nd->impl = uk;
    nd->impl2 = NULL;
    nd->impl_name = uk->name;
    return;
  }
  spr_op_gemm_def.prepare(ts, nd, isa);
  const enum spr_dtype wt = ts[nd->src[1]].type;
  if (spr_qgemm_supports(wt)) nd->impl2 = spr_qrows_select(wt, isa);
}

static uint64_t gemm_rows_flops(const struct spr_tensor *ts, const struct spr_node *nd) {
  if (bundle_rows(ts, nd)) /* two products */
    return 4u * (uint64_t)spr_tensor_rows(&ts[nd->src[0]]) * (uint64_t)ts[nd->src[0]].ne[0] *
           (uint64_t)ts[nd->src[1]].ne[1];
  return spr_op_gemm_def.flops(ts, nd);
}

const struct spr_op_def spr_op_gemm_rows_def = {
    .name = "gemm_rows",
    .check = gemm_rows_check,
    .workspace = gemm_rows_workspace,
    .prepare = gemm_rows_prepare,
    .run = gemm_rows_run,
    .flops = gemm_rows_flops,
};

/* ---- CORE_SELECT --------------------------------------------------------------------- */

static enum spr_status core_select_check(const struct spr_tensor *ts, const struct spr_node *nd,
                                         struct spr_error *err) {
  SPR_CHECK(nd->n_src >= 2 && nd->src[0] >= 0 && nd->src[1] >= 0 && nd->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "core_select needs activations, control and a state");
  const struct spr_tensor *a = &ts[nd->src[0]], *ctl = &ts[nd->src[1]], *sel = &ts[nd->dst];
  SPR_CHECK(a->type == SPR_DTYPE_F32 && a->ne[2] == 1 && a->ne[3] == 1, SPR_STATUS_BAD_TENSOR_TYPE,
            "activations must be a 2-D f32 tensor");
  SPR_CHECK(a->ne[0] <= INT32_MAX, SPR_STATUS_BAD_SHAPE, "too many neurons");
  const struct spr_core_params *p = &nd->p.core;
  SPR_CHECK(p->alpha >= 0.0f && p->alpha <= 1.0f && p->beta > 0.0f && p->beta <= 1.0f, SPR_STATUS_INVALID_ARGUMENT,
            "alpha %g must be in [0, 1] and beta %g in (0, 1]", (double)p->alpha, (double)p->beta);
  SPR_CHECK(sel->type == SPR_DTYPE_I32 && ctl->type == SPR_DTYPE_I32, SPR_STATUS_BAD_TENSOR_TYPE,
            "selection state and control must be i32");
  SPR_CHECK((size_t)spr_tensor_nelem(sel) >= spr_core_sel_words((size_t)a->ne[0]), SPR_STATUS_BAD_SHAPE,
            "selection state too small for %lld neurons", (long long)a->ne[0]);
  SPR_CHECK(spr_tensor_nelem(ctl) >= SPR_CORE_CTL_WORDS, SPR_STATUS_BAD_SHAPE, "control too small");
  return SPR_STATUS_OK;
}

static size_t select_counts_bytes(const struct spr_tensor *a) {
  return spr_align_up((size_t)a->ne[1] * sizeof(int32_t), 64);
}

/* per thread: the top-k scratch, then private counts (F int32) */
static size_t select_keys_bytes(const struct spr_tensor *a) {
  return spr_align_up(spr_core_topk_scratch_bytes((size_t)a->ne[0]), 64) +
         spr_align_up((size_t)a->ne[0] * sizeof(int32_t), 64);
}

static size_t core_select_workspace(const struct spr_tensor *ts, const struct spr_node *nd, int n_threads) {
  const struct spr_tensor *a = &ts[nd->src[0]];
  return select_counts_bytes(a) + (size_t)(n_threads > 1 ? n_threads : 1) * select_keys_bytes(a);
}

static void core_select_prepare(const struct spr_tensor *ts, struct spr_node *nd, uint32_t isa) {
  (void)ts;
  const struct spr_topk_ukernel *uk = spr_topk_select(isa);
  nd->impl = uk;
  nd->impl_name = uk->name;
}

struct select_ctx {
  spr_core_topk_fn topk;
  const float *a;
  size_t n_ff, k;
  int32_t *counts;
  uint8_t *keys;
  size_t keys_bytes;
  int32_t *freq;
  int n_threads;
};

static void positives_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct select_ctx *c = vctx;
  for (size_t t = begin; t < end; t++) c->counts[t] = (int32_t)spr_core_count_positive(c->a + t * c->n_ff, c->n_ff);
}

static int32_t *private_freq(const struct select_ctx *c, int tid) {
  return (int32_t *)(void *)(c->keys + (size_t)tid * c->keys_bytes +
                             spr_align_up(spr_core_topk_scratch_bytes(c->n_ff), 64));
}

/* counts into the thread's private array (integer sums: merged in any
 * order, the same result) */
static void topk_task(void *vctx, size_t begin, size_t end, int tid) {
  const struct select_ctx *c = vctx;
  uint8_t *scratch = c->keys + (size_t)tid * c->keys_bytes;
  for (size_t t = begin; t < end; t++) c->topk(c->a + t * c->n_ff, c->n_ff, c->k, scratch, private_freq(c, tid), false);
}

/* freq += the threads' private counts (integer sums: any split gives the
 * same counts), MERGE_COLS neurons a task, so the threads share the merge */
enum { MERGE_COLS = 512 };
static void merge_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct select_ctx *c = vctx;
  const size_t n0 = begin * MERGE_COLS, n1 = end * MERGE_COLS < c->n_ff ? end * MERGE_COLS : c->n_ff;
  for (int t = 0; t < c->n_threads; t++) {
    const int32_t *pf = private_freq(c, t);
    for (size_t n = n0; n < n1; n++) c->freq[n] += pf[n];
  }
}

static void core_select_run(const struct spr_exec *x, const struct spr_node *nd) {
  const struct spr_tensor *a = &x->tensors[nd->src[0]];
  struct spr_core_ctl *ctl = x->tensors[nd->src[1]].data;
  if (ctl->mode != SPR_CORE_MODE_SELECT) return;
  const size_t F = (size_t)a->ne[0], T = (size_t)a->ne[1];
  struct spr_core_sel *s = x->tensors[nd->dst].data;
  int32_t *freq = spr_core_sel_freq(s);
  if (ctl->new_window) {
    s->positives = 0;
    s->tokens = 0;
    memset(freq, 0, F * sizeof(int32_t));
  }
  struct select_ctx c = {
      .topk = ((const struct spr_topk_ukernel *)nd->impl)->fn,
      .a = a->data,
      .n_ff = F,
      .counts = (int32_t *)(void *)x->scratch,
      .keys = x->scratch + select_counts_bytes(a),
      .keys_bytes = select_keys_bytes(a),
      .freq = freq,
      .n_threads = x->n_threads > 1 ? x->n_threads : 1,
  };
  spr_parallel(x, T, positives_task, &c);
  int64_t pos = 0;
  for (size_t t = 0; t < T; t++) pos += c.counts[t];
  s->positives += pos;
  s->tokens += (int64_t)T;
  const double kd = (double)nd->p.core.alpha * (double)s->positives / (double)s->tokens;
  c.k = kd >= (double)F ? F : (size_t)kd;
  s->k = (int32_t)c.k;
  for (int t = 0; t < c.n_threads; t++) memset(private_freq(&c, t), 0, F * sizeof(int32_t));
  spr_parallel(x, T, topk_task, &c);
  spr_parallel(x, cdiv(F, MERGE_COLS), merge_task, &c);
  const size_t n_core = spr_core_count(nd->p.core.beta, F);
  spr_core_pick(freq, F, n_core, spr_core_sel_core(s, F));
  s->n_core = (int32_t)n_core;
  s->packed = 0;
}

static uint64_t core_select_flops(const struct spr_tensor *ts, const struct spr_node *nd) {
  (void)ts;
  (void)nd;
  return 0;
}

const struct spr_op_def spr_op_core_select_def = {
    .name = "core_select",
    .check = core_select_check,
    .workspace = core_select_workspace,
    .prepare = core_select_prepare,
    .run = core_select_run,
    .flops = core_select_flops,
};

/* ---- FFN_DOWN --------------------------------------------------------------------------- */

static enum spr_status ffn_down_check(const struct spr_tensor *ts, const struct spr_node *nd, struct spr_error *err) {
  SPR_CHECK(nd->n_src >= 2 && nd->src[0] >= 0 && nd->src[1] >= 0 && nd->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "ffn_down needs activations, a weight and dst");
  SPR_CHECK(nd->p.core.down_t == SPR_CORE_DOWN_BUNDLE || opt_src(ts, nd, 2) == NULL, SPR_STATUS_INVALID_ARGUMENT,
            "ffn_down takes no bias");
  SPR_CHECK(nd->p.core.down_t == SPR_CORE_DOWN_BUNDLE || opt_src(ts, nd, 6) == NULL, SPR_STATUS_INVALID_ARGUMENT,
            "only ffn_down over neuron bundles takes a core pack (src6)");
  const struct spr_tensor *h = &ts[nd->src[0]], *w = &ts[nd->src[1]], *d = &ts[nd->dst], *r = opt_src(ts, nd, 3);
  if (!nd->p.core.down_t) {
    SPR_TRY(spr_op_gemm_def.check(ts, nd, err));
    return check_state(ts, nd, (size_t)h->ne[0], err);
  }
  SPR_CHECK(h->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "activations and dst must be f32");
  if (nd->p.core.down_t == SPR_CORE_DOWN_BUNDLE) {
    const struct spr_tensor *n = opt_src(ts, nd, 2);
    SPR_CHECK(n != NULL && n->type == SPR_DTYPE_F32, SPR_STATUS_INVALID_ARGUMENT,
              "ffn_down over a bundle needs the FFN input (src2, f32)");
    SPR_CHECK(w->type == SPR_DTYPE_Q4_0, SPR_STATUS_BAD_TENSOR_TYPE, "a neuron bundle must be q4_0 (is %s)",
              spr_dtype_name(w->type));
    SPR_CHECK(h->ne[2] == 1 && h->ne[3] == 1 && n->ne[2] == 1 && n->ne[3] == 1 && d->ne[2] == 1 && d->ne[3] == 1,
              SPR_STATUS_BAD_SHAPE, "ffn_down over a bundle is 2-D");
    SPR_CHECK(w->ne[0] == 3 * d->ne[0] && w->ne[1] == h->ne[0] && n->ne[0] == d->ne[0] && n->ne[1] == h->ne[1] &&
                  d->ne[1] == h->ne[1] && d->ne[0] % 32 == 0,
              SPR_STATUS_BAD_SHAPE, "bundle {%lld, %lld} does not fit %lld neurons and rows of %lld",
              (long long)w->ne[0], (long long)w->ne[1], (long long)h->ne[0], (long long)d->ne[0]);
    if (r != NULL) {
      SPR_CHECK(r->type == SPR_DTYPE_F32 && spr_same_shape(r, d), SPR_STATUS_BAD_SHAPE,
                "residual must be f32 with dst's shape");
    }
    const struct spr_tensor *pk = opt_src(ts, nd, 6);
    if (pk != NULL) {
      const int64_t n_core = (int64_t)spr_core_pack_rows(spr_core_count(nd->p.core.beta, (size_t)h->ne[0]));
      SPR_CHECK(opt_src(ts, nd, 4) != NULL, SPR_STATUS_INVALID_ARGUMENT, "a core pack needs the selection state");
      SPR_CHECK(pk->type == SPR_DTYPE_Q4_0 && pk->ne[0] == w->ne[0] && pk->ne[1] >= n_core && pk->ne[2] == 1 &&
                    pk->ne[3] == 1,
                SPR_STATUS_BAD_SHAPE, "core pack {%lld, %lld} (%s) does not hold %lld bundles of %lld",
                (long long)pk->ne[0], (long long)pk->ne[1], spr_dtype_name(pk->type), (long long)n_core,
                (long long)w->ne[0]);
    }
    return check_state(ts, nd, (size_t)h->ne[0], err);
  }
  SPR_CHECK(spr_axpy_supports(w->type), SPR_STATUS_BAD_TENSOR_TYPE,
            "ffn_down_t of type %s is not supported (f32, f16, q8_0, q4_0)", spr_dtype_name(w->type));
  SPR_CHECK(h->ne[2] == 1 && h->ne[3] == 1 && w->ne[2] == 1 && w->ne[3] == 1, SPR_STATUS_BAD_SHAPE,
            "activations and weight must be 2-D");
  SPR_CHECK(w->ne[1] == h->ne[0] && w->ne[0] == d->ne[0] && d->ne[1] == h->ne[1] && d->ne[2] == 1 && d->ne[3] == 1,
            SPR_STATUS_BAD_SHAPE, "ffn_down_t {%lld, %lld} does not map %lld neurons to dst rows of %lld",
            (long long)w->ne[0], (long long)w->ne[1], (long long)h->ne[0], (long long)d->ne[0]);
  SPR_CHECK(w->ne[0] % (int64_t)spr_dtype_block_elems(w->type) == 0, SPR_STATUS_BAD_SHAPE,
            "ffn_down_t rows of %lld are not a multiple of the %s block", (long long)w->ne[0], spr_dtype_name(w->type));
  if (r != NULL) {
    SPR_CHECK(r->type == SPR_DTYPE_F32 && spr_same_shape(r, d), SPR_STATUS_BAD_SHAPE,
              "residual must be f32 with dst's shape");
  }
  return check_state(ts, nd, (size_t)h->ne[0], err);
}

/* Prefill through ffn_down_t on integers (spr_gemm_tq_run): Q4_0 / Q8_0
 * weights and F a multiple of 32 (else the f32 GEMM on dequantized slices). */
static bool down_t_integer(enum spr_dtype wt, size_t n_ff) {
  return (wt == SPR_DTYPE_Q4_0 || wt == SPR_DTYPE_Q8_0) && n_ff % 32 == 0;
}

/* Scratch of the fused decode: the packed x, the index list (dense steps:
 * the identity), g / h and u per listed neuron, and one partial output per
 * chunk. */
struct fused_ws {
  size_t xq, idx, g, u, part, tmp, total;
};

static struct fused_ws fused_ws(size_t n_ff, size_t e, int n_threads) {
  const size_t kb = e / 32;
  struct fused_ws f = {0, 0, 0, 0, 0, 0, 0};
  size_t xb = 0;
  for (size_t i = 0; i < spr_gu_ukernels_count; i++) {
    const size_t b = spr_gu_ukernels[i].xbytes(kb);
    xb = b > xb ? b : xb;
  }
  for (size_t i = 0; i < spr_qrows_ukernels_count; i++) {
    if (spr_qrows_ukernels[i].type != SPR_DTYPE_Q4_0) continue;
    const size_t b = spr_qrows_ukernels[i].xbytes(kb);
    xb = b > xb ? b : xb;
  }
  f.idx = spr_align_up(xb, 64);
  f.g = f.idx + spr_align_up(n_ff * sizeof(int32_t), 64);
  f.u = f.g + spr_align_up(n_ff * sizeof(float), 64);
  f.part = f.u + spr_align_up(n_ff * sizeof(float), 64);
  f.tmp = f.part + cdiv(n_ff, SPR_BUNDLE_CHUNK) * spr_align_up(e * sizeof(float), 64);
  f.total = f.tmp + (size_t)(n_threads > 1 ? n_threads : 1) * spr_align_up(e * sizeof(float), 64);
  return f;
}

static size_t ffn_down_workspace(const struct spr_tensor *ts, const struct spr_node *nd, int n_threads) {
  const struct spr_tensor *h = &ts[nd->src[0]], *w = &ts[nd->src[1]];
  if (!nd->p.core.down_t)
    return spr_op_gemm_def.workspace(ts, nd, n_threads) + spr_align_up((size_t)h->ne[0] * sizeof(float), 64);
  size_t most = 0;
  if (nd->p.core.down_t == SPR_CORE_DOWN_BUNDLE)
    most = fused_ws((size_t)h->ne[0], (size_t)ts[nd->dst].ne[0], n_threads).total;
  if (down_t_integer(w->type, (size_t)h->ne[0])) {
    for (size_t i = 0; i < spr_q8_0_gemm_ukernels_count; i++) {
      const size_t b = spr_gemm_tq_workspace(&spr_q8_0_gemm_ukernels[i], (size_t)h->ne[1], (size_t)w->ne[0],
                                             (size_t)h->ne[0], n_threads);
      most = b > most ? b : most;
    }
    return most;
  }
  for (size_t i = 0; i < spr_gemm_ukernels_count; i++) {
    const size_t b = spr_gemm_t_workspace(&spr_gemm_ukernels[i], w->type, (size_t)h->ne[1], (size_t)w->ne[0],
                                          (size_t)h->ne[0], n_threads);
    most = b > most ? b : most;
  }
  return most;
}

static void ffn_down_prepare(const struct spr_tensor *ts, struct spr_node *nd, uint32_t isa) {
  if (!nd->p.core.down_t) {
    spr_op_gemm_def.prepare(ts, nd, isa);
    return;
  }
  const struct spr_axpy_ukernel *k = spr_axpy_select(ts[nd->src[1]].type, isa);
  nd->impl = k;
  const enum spr_dtype wt = ts[nd->src[1]].type;
  if (down_t_integer(wt, (size_t)ts[nd->src[0]].ne[0])) /* prefill: the integer GEMM over requantized strips */
    nd->impl2 = spr_qgemm_select(SPR_DTYPE_Q8_0, isa);
  else
    nd->impl2 = spr_gemm_select(isa);
  nd->impl_name = k != NULL ? k->name : NULL;
}

struct axpy_ctx {
  spr_axpy_ukernel_fn fn;
  size_t n, unit, ne_all, ldw, unit_bytes;
  const int32_t *idx;
  const float *a;
  const uint8_t *w;
  const float *residual;
  float *y;
};

static void axpy_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct axpy_ctx *c = vctx;
  const size_t e0 = begin * c->unit, e1 = end * c->unit < c->ne_all ? end * c->unit : c->ne_all;
  c->fn(c->n, c->idx, c->a, c->w + begin * c->unit_bytes, c->ldw, e1 - e0, c->y + e0);
  if (c->residual != NULL)
    for (size_t e = e0; e < e1; e++) c->y[e] += c->residual[e];
}

/* ---- the fused decode of a bundled FFN (coreffn.h, SPR_BUNDLE_CHUNK) ----------------- */

struct fused_ctx {
  const struct spr_gu_ukernel *gu; /* NULL: qr on the gate and up segments */
  const struct spr_qrows_ukernel *qr;
  spr_axpy_ukernel_fn axpy;
  spr_f32_vunary_fn silu;
  size_t kb, e, n, ldw, seg, part_stride;
  const int32_t *idx; /* NULL with quads: rows in order */
  const uint8_t *w;
  const uint8_t *quads; /* non-NULL: the packed layout (w: gate/up rows, ldw 2 seg; quads: the down rows) */
  const void *xq;
  float *g, *u, *part, *tmp;
  const float *res; /* y = res + part_0 + part_1 + ... (res NULL: 0 + ...) */
  float *y;
  size_t *summed; /* the chunks already added to y (atomic: the relay below) */
};

/* y = (ch == 0 ? res or 0 : y) + part_ch: one step of the chunks' sum in order */
static void sum_step(const struct fused_ctx *c, size_t ch) {
  const float *p = c->part + ch * c->part_stride;
  float *y = c->y;
  if (ch > 0)
    for (size_t e = 0; e < c->e; e++) y[e] += p[e];
  else if (c->res != NULL)
    for (size_t e = 0; e < c->e; e++) y[e] = c->res[e] + p[e];
  else
    for (size_t e = 0; e < c->e; e++) y[e] = 0.0f + p[e];
}

/* chunks [from, to) into y in order, then publish that y holds every chunk before `to` */
static void sum_steps(const struct fused_ctx *c, size_t from, size_t to) {
  for (size_t ch = from; ch < to; ch++) sum_step(c, ch);
  __atomic_store_n(c->summed, to, __ATOMIC_RELEASE);
}

static void fused_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct fused_ctx *c = vctx;
  const size_t i_beg = spr_bundle_chunk_start(c->n, begin), i_end = spr_bundle_chunk_start(c->n, end);
  /* nothing runs ahead of the task's first SPR_GU_PF bundles and its first sub-block's down rows */
  const size_t qbytes = spr_down_pack_quad_bytes(c->kb);
  for (size_t i = i_beg; i < i_end && i < i_beg + SPR_BUNDLE_SUB; i++) {
    const uint8_t *b = c->w + (c->idx != NULL ? (size_t)c->idx[i] : i) * c->ldw;
    const size_t from = i < i_beg + SPR_GU_PF ? 0 : 2 * c->seg;
    const size_t to = c->quads != NULL ? 2 * c->seg : c->ldw;
    for (size_t off = from; off < to; off += 64) __builtin_prefetch(b + off, 0, 2);
    if (c->quads != NULL && i % 4 == 0)
      for (size_t off = 0; off < qbytes; off += 64) __builtin_prefetch(c->quads + i / 4 * qbytes + off, 0, 2);
  }
  float *tmp = c->tmp + (size_t)tid * c->part_stride;
  for (size_t ch = begin; ch < end; ch++) {
    const size_t i0 = spr_bundle_chunk_start(c->n, ch), i1 = spr_bundle_chunk_start(c->n, ch + 1);
    float *part = c->part + ch * c->part_stride;
    /* sub-blocks: the down rows of a sub-block are used while the gu ukernel's
     * prefetches of the next one are in flight */
    for (size_t s0 = i0; s0 < i1; s0 += SPR_BUNDLE_SUB) {
      const size_t cnt = i1 - s0 < SPR_BUNDLE_SUB ? i1 - s0 : SPR_BUNDLE_SUB;
      float *g = c->g + s0, *u = c->u + s0;
      if (c->quads != NULL) { /* the packed layout: rows in list order */
        /* this sub-block's down quads too, spread over its gate/up rows: the
         * down kernel's prefetch of them (below, one sub-block ahead) does not
         * all arrive in time (measured: node 5 % faster, down 35 % faster) */
        c->gu->gu_packed(c->kb, cnt, c->w + s0 * c->ldw, c->ldw, i_end - (s0 + cnt), c->xq, g, u,
                         c->quads + s0 / 4 * qbytes, (cnt + 3) / 4 * qbytes);
      } else if (c->gu != NULL) {
        c->gu->fn(c->kb, cnt, c->idx + s0, c->w, c->ldw, i_end - (s0 + cnt), c->xq, g, u);
      } else {
        c->qr->fn(c->kb, cnt, c->idx + s0, c->w, c->ldw, c->xq, g);
        c->qr->fn(c->kb, cnt, c->idx + s0, c->w + c->seg, c->ldw, c->xq, u);
      }
      c->silu(cnt, g, g);
      for (size_t i = 0; i < cnt; i++) g[i] *= u[i];
      if (c->gu != NULL) { /* the chunk: the axpyq rule over its neurons, one sub-block at a time */
        if (s0 == i0) memset(part, 0, c->e * sizeof(float));
        /* the next sub-block's down rows (this task's) are prefetched while this one's are used */
        const size_t s1 = s0 + cnt, nx = s1 < i_end ? (i_end - s1 < SPR_BUNDLE_SUB ? i_end - s1 : SPR_BUNDLE_SUB) : 0;
        if (c->quads != NULL) /* s0 is a multiple of 4: the sub-block starts a quad */
          c->gu->down_packed(cnt, g, c->quads + s0 / 4 * qbytes, c->kb, part,
                             nx > 0 ? c->quads + s1 / 4 * qbytes : NULL, (nx + 3) / 4 * qbytes);
        else
          c->gu->down_acc(cnt, c->idx + s0, g, c->w + 2 * c->seg, c->ldw, c->e, part, c->idx + s1, nx);
      } else if (s0 == i0) {
        c->axpy(cnt, c->idx + s0, g, c->w + 2 * c->seg, c->ldw, c->e, part);
      } else {
        c->axpy(cnt, c->idx + s0, g, c->w + 2 * c->seg, c->ldw, c->e, tmp);
        for (size_t e = 0; e < c->e; e++) part[e] += tmp[e];
      }
    }
    /* the sum as a relay: once the earlier tasks' chunks are all in y, this
     * task adds its finished ones as it goes, from this core's cache. It was a
     * second dispatch over the output that read half of the partials across
     * cores: the relay took the compact FFN node 0.4-4.6 % faster in alternate
     * decode steps of one run (TinyLlama-shape Q4_0, 2 threads, 2026-12-01). */
    const size_t done = __atomic_load_n(c->summed, __ATOMIC_ACQUIRE);
    if (done >= begin) sum_steps(c, done, ch + 1); /* [done, ch] are this task's: only it adds them */
  }
  /* the rest once the earlier chunks (claimed before these: spr_pool_run) are in */
  size_t done;
  for (int spins = 1; (done = __atomic_load_n(c->summed, __ATOMIC_ACQUIRE)) < begin; spins++) spr_pool_spin(spins);
  if (done < end) sum_steps(c, done, end);
}

/* Compact (src6): the core bundles copied in core[] order, once per selection:
 * where the gu entry has packed ukernels, as n_pad gate/up row pairs (2 seg
 * each, spr_gu_pack_row) then the down rows in quads (spr_down_pack_quad;
 * n_pad = n rounded up to 4), else as whole bundles. Either way the ukernels then read
 * the same values in the same order: the same bits as from the file. */
struct pack_ctx {
  const int32_t *core;
  const uint8_t *w;
  uint8_t *pack;
  size_t n, ldw, seg, kb;
  bool quads;
};

static void pack_task(void *vctx, size_t begin, size_t end, int tid) {
  (void)tid;
  const struct pack_ctx *c = vctx;
  if (!c->quads) {
    for (size_t i = begin; i < end; i++) memcpy(c->pack + i * c->ldw, c->w + (size_t)c->core[i] * c->ldw, c->ldw);
    return;
  }
  uint8_t *quads = c->pack + spr_core_pack_rows(c->n) * 2 * c->seg;
  for (size_t q = begin; q < end; q++) {
    /* the next quad's bundles (gathered: no hardware prefetcher finds them) */
    for (size_t r = 0; r < 4 && q + 1 < end && 4 * (q + 1) + r < c->n; r++) {
      const uint8_t *b = c->w + (size_t)c->core[4 * (q + 1) + r] * c->ldw;
      for (size_t off = 0; off < c->ldw; off += 64) __builtin_prefetch(b + off, 0, 2);
    }
    const uint8_t *rows[4] = {NULL, NULL, NULL, NULL};
    for (size_t r = 0; r < 4 && 4 * q + r < c->n; r++) {
      const uint8_t *b = c->w + (size_t)c->core[4 * q + r] * c->ldw;
      uint8_t *gu = c->pack + (4 * q + r) * 2 * c->seg;
      spr_gu_pack_row(b, c->kb, gu);
      spr_gu_pack_row(b + c->seg, c->kb, gu + c->seg);
      rows[r] = b + 2 * c->seg;
    }
    spr_down_pack_quad(rows, c->kb, quads + q * spr_down_pack_quad_bytes(c->kb));
  }
}

static void fused_run(const struct spr_exec *x, const struct spr_node *nd, const int32_t *core, size_t n_core) {
  const struct spr_tensor *ts = x->tensors;
  const struct spr_tensor *h = &ts[nd->src[0]], *w = &ts[nd->src[1]], *tn = &ts[nd->src[2]], *r = opt_src(ts, nd, 3);
  const size_t F = (size_t)h->ne[0], E = (size_t)w->ne[0] / 3;
  const struct fused_ws ws = fused_ws(F, E, x->n_threads);
  struct fused_ctx c;
  memset(&c, 0, sizeof c);
  c.qr = spr_qrows_select(SPR_DTYPE_Q4_0, nd->isa);
  c.gu = spr_gu_select(SPR_DTYPE_Q4_0, nd->isa);
  if (c.gu != NULL && (c.qr->isa & ~c.gu->isa) != 0) c.gu = NULL; /* a better qrows ukernel than the gu entry */
  c.axpy = ((const struct spr_axpy_ukernel *)nd->impl)->fn;
  c.silu = spr_f32_act_select(SPR_ACT_SILU, nd->isa, NULL);
  c.kb = E / 32;
  c.e = E;
  c.seg = spr_quant_row_bytes(SPR_DTYPE_Q4_0, (int64_t)E);
  c.ldw = 3 * c.seg;
  c.w = w->data;
  c.xq = x->scratch;
  if (c.gu != NULL)
    c.gu->packx(c.kb, 0, c.kb, tn->data, x->scratch);
  else
    c.qr->packx(c.kb, 0, c.kb, tn->data, x->scratch);
  const struct spr_tensor *pk = opt_src(ts, nd, 6);
  if (core != NULL && pk != NULL) { /* compact: decode from the core bundles' copy, in core[] order */
    struct spr_core_sel *s = ts[nd->src[4]].data;
    const bool quads = c.gu != NULL && c.gu->down_packed != NULL && c.gu->gu_packed != NULL;
    if (!s->packed) {
      struct pack_ctx pc = {core, w->data, pk->data, n_core, c.ldw, c.seg, c.kb, quads};
      spr_parallel(x, quads ? spr_core_pack_rows(n_core) / 4 : n_core, pack_task, &pc);
      s->packed = 1;
    }
    c.w = pk->data;
    if (quads) {
      c.ldw = 2 * c.seg;
      c.quads = c.w + spr_core_pack_rows(n_core) * c.ldw;
    }
    core = NULL;             /* the copy's rows in order: the identity list below */
  } else if (core == NULL) { /* every neuron */
    n_core = F;
  }
  if (core == NULL && c.quads == NULL) { /* the identity list (the packed kernels take rows in order, no list) */
    int32_t *id = (int32_t *)(void *)(x->scratch + ws.idx);
    for (size_t i = 0; i < n_core; i++) id[i] = (int32_t)i;
    core = id;
  }
  c.idx = core;
  c.n = n_core;
  c.g = (float *)(void *)(x->scratch + ws.g);
  c.u = (float *)(void *)(x->scratch + ws.u);
  c.part = (float *)(void *)(x->scratch + ws.part);
  c.tmp = (float *)(void *)(x->scratch + ws.tmp);
  c.part_stride = spr_align_up(E * sizeof(float), 64) / sizeof(float);
  size_t summed = 0;
  c.res = r != NULL ? r->data : NULL;
  c.y = ts[nd->dst].data;
  c.summed = &summed;
  spr_parallel(x, cdiv(n_core, SPR_BUNDLE_CHUNK), fused_task, &c);
}

static void ffn_down_run(const struct spr_exec *x, const struct spr_node *nd) {
  const struct spr_tensor *ts = x->tensors;
  const struct spr_tensor *h = &ts[nd->src[0]], *w = &ts[nd->src[1]], *r = opt_src(ts, nd, 3);
  const size_t F = (size_t)h->ne[0], T = (size_t)h->ne[1];
  size_t n_core = 0;
  const int32_t *core = sparse_core(ts, nd, F, T, &n_core);
  float *dst = ts[nd->dst].data;
  if (!nd->p.core.down_t) {
    if (core == NULL) {
      spr_op_gemm_def.run(x, nd);
      return;
    }
    float *v = (float *)(void *)x->scratch; /* [F]: the core activations in place, zeros elsewhere */
    memset(v, 0, F * sizeof(float));
    const float *hv = h->data;
    for (size_t i = 0; i < n_core; i++) v[core[i]] = hv[i];
    const size_t vb = spr_align_up(F * sizeof(float), 64);
    struct spr_exec x2 = *x;
    x2.scratch = x->scratch + vb;
    x2.scratch_bytes = x->scratch_bytes - vb;
    const struct spr_gemm_args a = {
        .m = 1,
        .n = (size_t)w->ne[1],
        .k = F,
        .x = v,
        .w = w->data,
        .w_type = w->type,
        .residual = r != NULL ? r->data : NULL,
        .dst = dst,
    };
    if (spr_qgemm_supports(w->type))
      spr_qgemm_driver_run(&x2, nd->impl, &a);
    else
      spr_gemm_driver_run(&x2, nd->impl, nd->impl2, &a);
    return;
  }
  const bool bundle = nd->p.core.down_t == SPR_CORE_DOWN_BUNDLE;
  const size_t E = bundle ? (size_t)w->ne[0] / 3 : (size_t)w->ne[0];
  if (bundle && fused_step(ts, nd, T)) {
    fused_run(x, nd, core, n_core);
    return;
  }
  /* the ffn_down_t rows: the third segment of each bundle */
  const uint8_t *wd = (const uint8_t *)w->data + (bundle ? 2 * spr_quant_row_bytes(w->type, (int64_t)E) : 0);
  const size_t ldw = bundle ? bundle_ldw(E) : spr_quant_row_bytes(w->type, (int64_t)E);
  if (T > 1 && down_t_integer(w->type, F)) {
    spr_gemm_tq_run(x, nd->impl2, w->type, nd->isa, T, E, F, h->data, wd, ldw, r != NULL ? r->data : NULL, dst);
    return;
  }
  if (T > 1) {
    spr_gemm_t_run(x, nd->impl2, w->type, nd->isa, T, E, F, h->data, wd, ldw, r != NULL ? r->data : NULL, dst);
    return;
  }
  const struct spr_axpy_ukernel *k = nd->impl;
  const size_t qk = spr_dtype_block_elems(w->type);
  struct axpy_ctx c = {
      .fn = k->fn,
      .n = core != NULL ? n_core : F,
      .unit = qk > 1 ? qk : 16,
      .ne_all = E,
      .ldw = ldw,
      .idx = core,
      .a = h->data,
      .w = wd,
      .residual = r != NULL ? r->data : NULL,
      .y = dst,
  };
  c.unit_bytes = c.unit / qk * spr_dtype_block_bytes(w->type);
  spr_parallel(x, cdiv(E, c.unit), axpy_task, &c);
}

static uint64_t ffn_down_flops(const struct spr_tensor *ts, const struct spr_node *nd) {
  const struct spr_tensor *h = &ts[nd->src[0]], *d = &ts[nd->dst];
  return 2u * (uint64_t)h->ne[1] * (uint64_t)h->ne[0] * (uint64_t)d->ne[0];
}

const struct spr_op_def spr_op_ffn_down_def = {
    .name = "ffn_down",
    .check = ffn_down_check,
    .workspace = ffn_down_workspace,
    .prepare = ffn_down_prepare,
    .run = ffn_down_run,
    .flops = ffn_down_flops,
};
