/* ops/gemm/gemm.c — SPR_OP_GEMM: check, workspace, prepare, run, flops, and
 * the ukernel tables generated from the .inc lists. */
#include "ops/gemm/gemm.h"

#include "ops/gemm/qgemm.h"

#include "runtime/error.h"

const struct spr_gemm_ukernel spr_gemm_ukernels[] = {
#define SPR_GEMM_UKERNEL(isa, mr, nr, gemm, packx, packw_f32, packw_f16) \
  {(isa), (mr), (nr), gemm, packx, packw_f32, packw_f16, #gemm},
#include "ops/gemm/f32_gemm.inc"
#undef SPR_GEMM_UKERNEL
};
const size_t spr_gemm_ukernels_count = sizeof spr_gemm_ukernels / sizeof spr_gemm_ukernels[0];

const struct spr_gemv_ukernel spr_gemv_ukernels[] = {
#define SPR_GEMV_UKERNEL(isa, rows, f32fn, f16fn) {(isa), (rows), f32fn, f16fn, #f32fn},
#include "ops/gemm/f32_gemv.inc"
#undef SPR_GEMV_UKERNEL
};
const size_t spr_gemv_ukernels_count = sizeof spr_gemv_ukernels / sizeof spr_gemv_ukernels[0];

const struct spr_gemm_ukernel *spr_gemm_select(uint32_t isa) {
  for (size_t i = 0; i < spr_gemm_ukernels_count; i++) {
    if ((spr_gemm_ukernels[i].isa & ~isa) == 0) return &spr_gemm_ukernels[i];
  }
  return &spr_gemm_ukernels[spr_gemm_ukernels_count - 1];
}

const struct spr_gemv_ukernel *spr_gemv_select(uint32_t isa) {
  for (size_t i = 0; i < spr_gemv_ukernels_count; i++) {
    if ((spr_gemv_ukernels[i].isa & ~isa) == 0) return &spr_gemv_ukernels[i];
  }
  return &spr_gemv_ukernels[spr_gemv_ukernels_count - 1];
}

/* ---- the op ------------------------------------------------------------------ */

static const struct spr_tensor *opt_src(const struct spr_tensor *ts, const struct spr_node *nd, int i) {
  return nd->n_src > i && nd->src[i] >= 0 ? &ts[nd->src[i]] : NULL;
}

static enum spr_status gemm_check(const struct spr_tensor *ts, const struct spr_node *nd, struct spr_error *err) {
  SPR_CHECK(nd->n_src >= 2 && nd->src[0] >= 0 && nd->src[1] >= 0 && nd->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "gemm: needs x, w and dst");
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]], *d = &ts[nd->dst];
  const struct spr_tensor *b = opt_src(ts, nd, 2), *r = opt_src(ts, nd, 3);
  SPR_CHECK(x->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "gemm: x and dst must be f32 (x %s, dst %s)", spr_dtype_name(x->type), spr_dtype_name(d->type));
  SPR_CHECK(w->type == SPR_DTYPE_F32 || w->type == SPR_DTYPE_F16 || spr_qgemm_supports(w->type),
            SPR_STATUS_BAD_TENSOR_TYPE, "gemm: weight type %s (want f32, f16, q8_0, q4_0, q4_k or q6_k)",
            spr_dtype_name(w->type));
  for (int i = 0; i < SPR_MAX_DIMS; i++) {
    SPR_CHECK(x->ne[i] >= 1 && w->ne[i] >= 1 && d->ne[i] >= 1, SPR_STATUS_BAD_DIMS, "gemm: empty dimension");
  }
  SPR_CHECK(w->ne[0] == x->ne[0] && w->ne[2] == 1 && w->ne[3] == 1, SPR_STATUS_BAD_SHAPE,
            "gemm: w {%lld,%lld,%lld,%lld} does not match x rows of %lld", (long long)w->ne[0], (long long)w->ne[1],
            (long long)w->ne[2], (long long)w->ne[3], (long long)x->ne[0]);
  SPR_CHECK(w->ne[0] % (int64_t)spr_dtype_block_elems(w->type) == 0, SPR_STATUS_BAD_SHAPE,
            "gemm: %s weights need K = %lld to be a multiple of %zu", spr_dtype_name(w->type), (long long)w->ne[0],
            spr_dtype_block_elems(w->type));
  SPR_CHECK(d->ne[0] == w->ne[1] && d->ne[1] == x->ne[1] && d->ne[2] == x->ne[2] && d->ne[3] == x->ne[3],
            SPR_STATUS_BAD_SHAPE, "gemm: dst shape is not {N=%lld, rows of x}", (long long)w->ne[1]);
  if (b != NULL) {
    SPR_CHECK(b->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE, "gemm: bias must be f32");
    SPR_CHECK(b->ne[0] == w->ne[1] && spr_tensor_nelem(b) == w->ne[1], SPR_STATUS_BAD_SHAPE,
              "gemm: bias has %lld values, want %lld", (long long)spr_tensor_nelem(b), (long long)w->ne[1]);
  }
  if (r != NULL) {
    SPR_CHECK(r->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE, "gemm: residual must be f32");
    SPR_CHECK(spr_same_shape(r, d), SPR_STATUS_BAD_SHAPE, "gemm: residual shape differs from dst");
  }
  SPR_CHECK(nd->p.gemm.act <= SPR_ACT_RELU, SPR_STATUS_INVALID_ARGUMENT, "gemm: unknown activation %u",
            (unsigned)nd->p.gemm.act);
  return SPR_STATUS_OK;
}

static size_t gemm_workspace(const struct spr_tensor *ts, const struct spr_node *nd, int n_threads) {
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]];
  /* plan time may precede prepare: size for every ukernel this build has */
  size_t most = 0;
  if (spr_qgemm_supports(w->type)) {
    size_t count = 0;
    const struct spr_qgemm_ukernel *t = spr_qgemm_table(w->type, &count);
    for (size_t i = 0; i < count; i++) {
      const size_t b = spr_qgemm_driver_workspace(&t[i], w->type, (size_t)spr_tensor_rows(x), (size_t)w->ne[1],
                                                  (size_t)x->ne[0], n_threads);
      if (b > most) most = b;
    }
    return most;
  }
  for (size_t i = 0; i < spr_gemm_ukernels_count; i++) {
    const size_t b = spr_gemm_driver_workspace(&spr_gemm_ukernels[i], (size_t)spr_tensor_rows(x), (size_t)w->ne[1],
                                               (size_t)x->ne[0], SPR_GEMM_WS_GEMV, n_threads);
    if (b > most) most = b;
  }
  return most;
}

/* The kernel a run of `rows` activation rows takes (the driver's decode path for one row). */
static const char *qgemm_name(const struct spr_qgemm_ukernel *qk, int64_t rows) {
  return rows == 1 && qk->decode != NULL ? qk->decode->name : qk->name;
}

static void gemm_prepare(const struct spr_tensor *ts, struct spr_node *nd, uint32_t isa) {
  const enum spr_dtype wt = ts[nd->src[1]].type;
  if (spr_qgemm_supports(wt)) {
    const struct spr_qgemm_ukernel *qk = spr_qgemm_select(wt, isa);
    nd->impl = qk;
    nd->impl2 = NULL;
    nd->impl_name = qgemm_name(qk, spr_tensor_rows(&ts[nd->src[0]]));
    return;
  }
  const struct spr_gemm_ukernel *uk = spr_gemm_select(isa);
  const struct spr_gemv_ukernel *gv = spr_gemv_select(isa);
  nd->impl = uk;
  nd->impl2 = gv;
  nd->impl_name = spr_tensor_rows(&ts[nd->src[0]]) <= SPR_GEMV_MAX_M ? gv->name : uk->name;
}

static void gemm_run(const struct spr_exec *x, const struct spr_node *nd) {
  const struct spr_tensor *ts = x->tensors;
  const struct spr_tensor *tx = &ts[nd->src[0]], *tw = &ts[nd->src[1]];
  const struct spr_tensor *b = opt_src(ts, nd, 2), *r = opt_src(ts, nd, 3);
  const struct spr_gemm_args a = {
      .m = (size_t)spr_tensor_rows(tx),
      .n = (size_t)tw->ne[1],
      .k = (size_t)tx->ne[0],
      .x = tx->data,
      .w = tw->data,
      .w_type = tw->type,
      .bias = b != NULL ? b->data : NULL,
      .residual = r != NULL ? r->data : NULL,
      .dst = ts[nd->dst].data,
      .act = spr_f32_act_select((enum spr_act)nd->p.gemm.act, nd->isa, NULL),
  };
  if (spr_qgemm_supports(tw->type)) {
    spr_qgemm_driver_run(x, nd->impl, &a);
    return;
  }
  spr_gemm_driver_run(x, nd->impl, nd->impl2, &a);
}

static uint64_t gemm_flops(const struct spr_tensor *ts, const struct spr_node *nd) {
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]];
  return 2u * (uint64_t)spr_tensor_rows(x) * (uint64_t)w->ne[1] * (uint64_t)x->ne[0];
}

const struct spr_op_def spr_op_gemm_def = {
    .name = "gemm",
    .check = gemm_check,
    .workspace = gemm_workspace,
    .prepare = gemm_prepare,
    .run = gemm_run,
    .flops = gemm_flops,
};

/* ---- SPR_OP_GEMM_MULTI -------------------------------------------------------- */

static enum spr_status gemm_multi_check(const struct spr_tensor *ts, const struct spr_node *nd, struct spr_error *err) {
  const struct spr_gemm_multi_params *p = &nd->p.gemm_multi;
  SPR_CHECK(nd->n_src >= 3 && nd->src[0] >= 0 && nd->src[1] >= 0 && nd->src[2] >= 0 && nd->dst >= 0,
            SPR_STATUS_INVALID_ARGUMENT, "gemm_multi: needs x, two or three weights and dst");
  const struct spr_tensor *x = &ts[nd->src[0]], *d = &ts[nd->dst], *w3 = opt_src(ts, nd, 3);
  const struct spr_tensor *w[3] = {&ts[nd->src[1]], &ts[nd->src[2]], w3};
  SPR_CHECK(x->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "gemm_multi: x and dst must be f32 (x %s, dst %s)", spr_dtype_name(x->type), spr_dtype_name(d->type));
  SPR_CHECK(spr_qgemm_supports(w[0]->type), SPR_STATUS_BAD_TENSOR_TYPE,
            "gemm_multi: weight type %s (want q8_0, q4_0, q4_k or q6_k)", spr_dtype_name(w[0]->type));
  SPR_CHECK(p->glu <= 1 && p->act <= SPR_ACT_RELU, SPR_STATUS_INVALID_ARGUMENT, "gemm_multi: glu %u, act %u",
            (unsigned)p->glu, (unsigned)p->act);
  SPR_CHECK(!p->glu || w3 == NULL, SPR_STATUS_INVALID_ARGUMENT, "gemm_multi: glu takes two weights");
  for (int i = 0; i < SPR_MAX_DIMS; i++) {
    SPR_CHECK(x->ne[i] >= 1 && d->ne[i] >= 1, SPR_STATUS_BAD_DIMS, "gemm_multi: empty dimension");
  }
  int64_t n = 0;
  for (int s = 0; s < 3; s++) {
    if (w[s] == NULL) continue;
    SPR_CHECK(w[s]->type == w[0]->type, SPR_STATUS_BAD_TENSOR_TYPE, "gemm_multi: weights of types %s and %s",
              spr_dtype_name(w[0]->type), spr_dtype_name(w[s]->type));
    SPR_CHECK(w[s]->ne[0] == x->ne[0] && w[s]->ne[1] >= 1 && w[s]->ne[2] == 1 && w[s]->ne[3] == 1, SPR_STATUS_BAD_SHAPE,
              "gemm_multi: weight %d {%lld,%lld,%lld,%lld} does not match x rows of %lld", s, (long long)w[s]->ne[0],
              (long long)w[s]->ne[1], (long long)w[s]->ne[2], (long long)w[s]->ne[3], (long long)x->ne[0]);
    n += w[s]->ne[1];
  }
  SPR_CHECK(x->ne[0] % (int64_t)spr_dtype_block_elems(w[0]->type) == 0, SPR_STATUS_BAD_SHAPE,
            "gemm_multi: %s weights need K = %lld to be a multiple of %zu", spr_dtype_name(w[0]->type),
            (long long)x->ne[0], spr_dtype_block_elems(w[0]->type));
  if (p->glu) {
    SPR_CHECK(w[1]->ne[1] == w[0]->ne[1], SPR_STATUS_BAD_SHAPE, "gemm_multi: glu weights of %lld and %lld rows",
              (long long)w[0]->ne[1], (long long)w[1]->ne[1]);
    n = w[0]->ne[1];
  }
  SPR_CHECK(d->ne[0] == n && d->ne[1] == x->ne[1] && d->ne[2] == x->ne[2] && d->ne[3] == x->ne[3], SPR_STATUS_BAD_SHAPE,
            "gemm_multi: dst shape is not {N=%lld, rows of x}", (long long)n);
  return SPR_STATUS_OK;
}

static size_t multi_n(const struct spr_tensor *ts, const struct spr_node *nd) {
  size_t n = 0;
  for (int s = 1; s <= (nd->p.gemm_multi.glu ? 1 : 3); s++) {
    const struct spr_tensor *w = opt_src(ts, nd, s);
    if (w != NULL) n += (size_t)w->ne[1];
  }
  return n;
}

static size_t gemm_multi_workspace(const struct spr_tensor *ts, const struct spr_node *nd, int n_threads) {
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]];
  size_t most = 0, count = 0;
  const struct spr_qgemm_ukernel *t = spr_qgemm_table(w->type, &count);
  for (size_t i = 0; i < count; i++) {
    const size_t b = spr_qgemm_driver_workspace_multi(&t[i], w->type, (size_t)spr_tensor_rows(x), multi_n(ts, nd),
                                                      (size_t)x->ne[0], nd->p.gemm_multi.glu, n_threads);
    if (b > most) most = b;
  }
  return most;
}

static void gemm_multi_prepare(const struct spr_tensor *ts, struct spr_node *nd, uint32_t isa) {
  const struct spr_qgemm_ukernel *qk = spr_qgemm_select(ts[nd->src[1]].type, isa);
  nd->impl = qk;
  nd->impl2 = NULL;
  nd->impl_name = qgemm_name(qk, spr_tensor_rows(&ts[nd->src[0]]));
}

static void gemm_multi_run(const struct spr_exec *x, const struct spr_node *nd) {
  const struct spr_tensor *ts = x->tensors;
  const struct spr_tensor *tx = &ts[nd->src[0]], *w1 = &ts[nd->src[1]], *w2 = &ts[nd->src[2]];
  const struct spr_tensor *w3 = opt_src(ts, nd, 3);
  const int glu = nd->p.gemm_multi.glu;
  const struct spr_gemm_args a = {
      .m = (size_t)spr_tensor_rows(tx),
      .n = multi_n(ts, nd),
      .k = (size_t)tx->ne[0],
      .x = tx->data,
      .w = w1->data,
      .w_type = w1->type,
      .dst = ts[nd->dst].data,
      .act = glu ? spr_f32_act_select((enum spr_act)nd->p.gemm_multi.act, nd->isa, NULL) : NULL,
      .w2 = w2->data,
      .w3 = w3 != NULL ? w3->data : NULL,
      .n1 = (size_t)w1->ne[1],
      .n2 = (size_t)w2->ne[1],
      .n3 = w3 != NULL ? (size_t)w3->ne[1] : 0,
      .glu = glu,
  };
  spr_qgemm_driver_run(x, nd->impl, &a);
}

static uint64_t gemm_multi_flops(const struct spr_tensor *ts, const struct spr_node *nd) {
  const struct spr_tensor *x = &ts[nd->src[0]];
  uint64_t rows = 0;
  for (int s = 1; s <= 3; s++) {
    const struct spr_tensor *w = opt_src(ts, nd, s);
    if (w != NULL) rows += (uint64_t)w->ne[1];
  }
  return 2u * (uint64_t)spr_tensor_rows(x) * rows * (uint64_t)x->ne[0];
}

const struct spr_op_def spr_op_gemm_multi_def = {
    .name = "gemm_multi",
    .check = gemm_multi_check,
    .workspace = gemm_multi_workspace,
    .prepare = gemm_multi_prepare,
    .run = gemm_multi_run,
    .flops = gemm_multi_flops,
};
