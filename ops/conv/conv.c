/* ops/conv/conv.c — SPR_OP_CONV2D (im2col rows fed to the GEMM driver) and
 * SPR_OP_DWCONV2D (row ukernels, threads split output rows). */
#include "ops/conv/conv.h"

#include <string.h>

#include "ops/gemm/gemm.h"
#include "runtime/error.h"
#include "runtime/util.h"

const struct spr_dwconv_ukernel spr_dwconv_ukernels[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/conv/f32_dwconv.inc"
#undef SPR_UKERNEL
};
const size_t spr_dwconv_ukernels_count = sizeof spr_dwconv_ukernels / sizeof spr_dwconv_ukernels[0];

const struct spr_dwconv_ukernel *spr_dwconv_select(uint32_t isa) {
  for (size_t i = 0; i < spr_dwconv_ukernels_count; i++) {
    if ((spr_dwconv_ukernels[i].isa & ~isa) == 0) return &spr_dwconv_ukernels[i];
  }
  return &spr_dwconv_ukernels[spr_dwconv_ukernels_count - 1];
}

static const struct spr_tensor *opt_src(const struct spr_tensor *ts, const struct spr_node *nd, int i) {
  return nd->n_src > i && nd->src[i] >= 0 ? &ts[nd->src[i]] : NULL;
}

/* Shared checks: x {C, W, H}, params, dst {cout, OW, OH}, optional f32 bias {cout}. */
static enum spr_status check_common(const struct spr_tensor *ts, const struct spr_node *nd, int64_t cout,
                                    struct spr_error *err) {
  const struct spr_tensor *x = &ts[nd->src[0]], *d = &ts[nd->dst], *b = opt_src(ts, nd, 2);
  const struct spr_conv_params *p = &nd->p.conv;
  SPR_CHECK(x->type == SPR_DTYPE_F32 && d->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE,
            "conv: x and dst must be f32");
  SPR_CHECK(p->kh > 0 && p->kw > 0 && p->sh > 0 && p->sw > 0, SPR_STATUS_INVALID_ARGUMENT,
            "conv: zero kernel or stride");
  for (int i = 0; i < SPR_MAX_DIMS; i++) SPR_CHECK(x->ne[i] >= 1, SPR_STATUS_BAD_DIMS, "conv: empty input dimension");
  SPR_CHECK(x->ne[3] == 1, SPR_STATUS_BAD_SHAPE, "conv: batched input (ne[3] = %lld) is not supported",
            (long long)x->ne[3]);
  const int64_t hp = x->ne[2] + 2 * (int64_t)p->ph, wp = x->ne[1] + 2 * (int64_t)p->pw;
  SPR_CHECK(hp >= p->kh && wp >= p->kw, SPR_STATUS_BAD_SHAPE, "conv: padded input %lldx%lld smaller than kernel %ux%u",
            (long long)hp, (long long)wp, (unsigned)p->kh, (unsigned)p->kw);
  const int64_t oh = (hp - p->kh) / p->sh + 1, ow = (wp - p->kw) / p->sw + 1;
  SPR_CHECK(d->ne[0] == cout && d->ne[1] == ow && d->ne[2] == oh && d->ne[3] == 1, SPR_STATUS_BAD_SHAPE,
            "conv: dst {%lld,%lld,%lld} should be {%lld,%lld,%lld}", (long long)d->ne[0], (long long)d->ne[1],
            (long long)d->ne[2], (long long)cout, (long long)ow, (long long)oh);
  if (b != NULL) {
    SPR_CHECK(b->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE, "conv: bias must be f32");
    SPR_CHECK(b->ne[0] == cout && spr_tensor_nelem(b) == cout, SPR_STATUS_BAD_SHAPE,
              "conv: bias has %lld values, want %lld", (long long)spr_tensor_nelem(b), (long long)cout);
  }
  return SPR_STATUS_OK;
}

/* ---- conv2d ---------------------------------------------------------------------- */

static enum spr_status conv2d_check(const struct spr_tensor *ts, const struct spr_node *nd, struct spr_error *err) {
  SPR_CHECK(nd->n_src >= 2 && nd->src[0] >= 0 && nd->src[1] >= 0 && nd->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "conv2d: needs x, w and dst");
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]];
  const struct spr_conv_params *p = &nd->p.conv;
  SPR_CHECK(w->type == SPR_DTYPE_F32 || w->type == SPR_DTYPE_F16, SPR_STATUS_BAD_TENSOR_TYPE,
            "conv2d: weight type %s (want f32 or f16)", spr_dtype_name(w->type));
  SPR_CHECK(w->ne[0] == x->ne[0] && w->ne[1] == p->kw && w->ne[2] == p->kh && w->ne[3] >= 1, SPR_STATUS_BAD_SHAPE,
            "conv2d: w {%lld,%lld,%lld,%lld} should be {Cin=%lld, KW=%u, KH=%u, Cout}", (long long)w->ne[0],
            (long long)w->ne[1], (long long)w->ne[2], (long long)w->ne[3], (long long)x->ne[0], (unsigned)p->kw,
            (unsigned)p->kh);
  return check_common(ts, nd, w->ne[3], err);
}

struct conv_dims {
  size_t m, n, k, h, w, cin, oh, ow;
};

static struct conv_dims conv_dims(const struct spr_tensor *ts, const struct spr_node *nd) {
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]], *d = &ts[nd->dst];
  struct conv_dims c;
  c.cin = (size_t)x->ne[0], c.w = (size_t)x->ne[1], c.h = (size_t)x->ne[2];
  c.ow = (size_t)d->ne[1], c.oh = (size_t)d->ne[2];
  c.m = c.oh * c.ow;
  c.n = (size_t)w->ne[3];
  c.k = (size_t)w->ne[0] * (size_t)w->ne[1] * (size_t)w->ne[2];
  return c;
}

/* A 1x1, stride 1, unpadded conv is a GEMM on the image as it is. */
static int is_pointwise(const struct spr_conv_params *p) {
  return p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->ph == 0 && p->pw == 0;
}

static size_t conv2d_workspace(const struct spr_tensor *ts, const struct spr_node *nd, int n_threads) {
  const struct conv_dims c = conv_dims(ts, nd);
  const unsigned flags = is_pointwise(&nd->p.conv) ? 0u : SPR_GEMM_WS_ROWS;
  size_t most = 0;
  for (size_t i = 0; i < spr_gemm_ukernels_count; i++) {
    const size_t b = spr_gemm_driver_workspace(&spr_gemm_ukernels[i], c.m, c.n, c.k, flags, n_threads);
    if (b > most) most = b;
  }
  return most;
}

static void conv2d_prepare(const struct spr_tensor *ts, struct spr_node *nd, uint32_t isa) {
  (void)ts;
  const struct spr_gemm_ukernel *uk = spr_gemm_select(isa);
  nd->impl = uk;
  nd->impl_name = uk->name;
}

struct im2col {
  const float *x;
  struct conv_dims d;
  struct spr_conv_params p;
};

/* Rows [m0, m0+mr) of the im2col matrix: row p = output pixel p, laid out
 * [KH][KW][Cin] like a weight row; taps in the padding are zero. */
static void im2col_rows(const void *vctx, size_t m0, size_t mr, float *rows) {
  const struct im2col *c = vctx;
  const size_t cin = c->d.cin, kw = c->p.kw, kh = c->p.kh, k = c->d.k;
  for (size_t i = 0; i < mr; i++) {
    const size_t oy = (m0 + i) / c->d.ow, ox = (m0 + i) % c->d.ow;
    const long x0 = (long)(ox * c->p.sw) - (long)c->p.pw;
    const long kx0 = x0 < 0 ? -x0 : 0, kx1 = (long)c->d.w - x0 < (long)kw ? (long)c->d.w - x0 : (long)kw;
    float *row = rows + i * k;
    for (size_t ky = 0; ky < kh; ky++) {
      float *seg = row + ky * kw * cin;
      const long iy = (long)(oy * c->p.sh + ky) - (long)c->p.ph;
      const size_t n = kw * cin;
      if (iy < 0 || iy >= (long)c->d.h || kx1 <= kx0) {
        for (size_t j = 0; j < n; j++) seg[j] = 0.0f;
        continue;
      }
      /* plain loops: segments are often a few floats (Cin = 3), too short for memcpy calls */
      const size_t a = (size_t)kx0 * cin, b = (size_t)kx1 * cin;
      const float *src = c->x + ((size_t)iy * c->d.w + (size_t)(x0 + kx0)) * cin - a;
      for (size_t j = 0; j < a; j++) seg[j] = 0.0f;
      for (size_t j = a; j < b; j++) seg[j] = src[j];
      for (size_t j = b; j < n; j++) seg[j] = 0.0f;
    }
  }
}

static void conv2d_run(const struct spr_exec *x, const struct spr_node *nd) {
  const struct spr_tensor *ts = x->tensors;
  const struct spr_tensor *tx = &ts[nd->src[0]], *tw = &ts[nd->src[1]], *b = opt_src(ts, nd, 2);
  const struct im2col ctx = {tx->data, conv_dims(ts, nd), nd->p.conv};
  const int pointwise = is_pointwise(&nd->p.conv);
  const struct spr_gemm_args a = {
      .m = ctx.d.m,
      .n = ctx.d.n,
      .k = ctx.d.k,
      .x = pointwise ? tx->data : NULL,
      .rows = pointwise ? NULL : im2col_rows,
      .rows_ctx = &ctx,
      .w = tw->data,
      .w_type = tw->type,
      .bias = b != NULL ? b->data : NULL,
      .dst = ts[nd->dst].data,
  };
  spr_gemm_driver_run(x, nd->impl, NULL, &a);
}

static uint64_t conv2d_flops(const struct spr_tensor *ts, const struct spr_node *nd) {
  const struct conv_dims c = conv_dims(ts, nd);
  return 2u * (uint64_t)c.m * (uint64_t)c.n * (uint64_t)c.k;
}

const struct spr_op_def spr_op_conv2d_def = {
    .name = "conv2d",
    .check = conv2d_check,
    .workspace = conv2d_workspace,
    .prepare = conv2d_prepare,
    .run = conv2d_run,
    .flops = conv2d_flops,
};

/* ---- dwconv2d ---------------------------------------------------------------------- */

static enum spr_status dwconv2d_check(const struct spr_tensor *ts, const struct spr_node *nd, struct spr_error *err) {
  SPR_CHECK(nd->n_src >= 2 && nd->src[0] >= 0 && nd->src[1] >= 0 && nd->dst >= 0, SPR_STATUS_INVALID_ARGUMENT,
            "dwconv2d: needs x, w and dst");
  const struct spr_tensor *x = &ts[nd->src[0]], *w = &ts[nd->src[1]];
  const struct spr_conv_params *p = &nd->p.conv;
  SPR_CHECK(w->type == SPR_DTYPE_F32, SPR_STATUS_BAD_TENSOR_TYPE, "dwconv2d: weight type %s (want f32)",
            spr_dtype_name(w->type));
  SPR_CHECK(w->ne[0] == x->ne[0] && w->ne[1] == p->kw && w->ne[2] == p->kh && w->ne[3] == 1, SPR_STATUS_BAD_SHAPE,
            "dwconv2d: w {%lld,%lld,%lld,%lld} should be {C=%lld, KW=%u, KH=%u}", (long long)w->ne[0],
            (long long)w->ne[1], (long long)w->ne[2], (long long)w->ne[3], (long long)x->ne[0], (unsigned)p->kw,
            (unsigned)p->kh);
  SPR_CHECK(p->kh <= SPR_DWCONV_MAX_KH, SPR_STATUS_UNSUPPORTED, "dwconv2d: kernel height %u > %d", (unsigned)p->kh,
            SPR_DWCONV_MAX_KH);
  return check_common(ts, nd, x->ne[0], err);
}

static void dwconv2d_prepare(const struct spr_tensor *ts, struct spr_node *nd, uint32_t isa) {
  (void)ts;
  const struct spr_dwconv_ukernel *uk = spr_dwconv_select(isa);
  nd->impl = uk;
  nd->impl_name = uk->name;
}

/* Per-thread scratch: a zero row [w][cs] (rows above/below the image) and,
 * when rows are copied (C a multiple of 256, see conv.h), the kernel
 * [kh][kw][cs] and a ring of kh rows [w][cs]. */
struct dw_geom {
  int copy;
  size_t cs, wpk_bytes, row_bytes, thread_bytes;
};

static struct dw_geom dw_geom(size_t c, size_t w, const struct spr_conv_params *p) {
  struct dw_geom g;
  g.copy = c % 256 == 0;
  g.cs = g.copy ? c + 16 : c;
  g.wpk_bytes = g.copy ? spr_align_up((size_t)p->kh * p->kw * g.cs * sizeof(float), 64) : 0;
  g.row_bytes = spr_align_up(w * g.cs * sizeof(float), 64);
  g.thread_bytes = g.wpk_bytes + (1u + (g.copy ? p->kh : 0u)) * g.row_bytes;
  return g;
}

static size_t dwconv2d_workspace(const struct spr_tensor *ts, const struct spr_node *nd, int n_threads) {
  const struct spr_tensor *x = &ts[nd->src[0]];
  const struct dw_geom g = dw_geom((size_t)x->ne[0], (size_t)x->ne[1], &nd->p.conv);
  return (n_threads > 1 ? (size_t)n_threads : 1u) * g.thread_bytes;
}

struct dw_ctx {
  const struct spr_dwconv_ukernel *uk;
  const float *x, *wt, *bias;
  float *dst;
  uint8_t *scratch;
  size_t c, h, w, oh, ow;
  struct spr_conv_params p;
  struct dw_geom g;
};

static void dwconv_rows(void *vctx, size_t begin, size_t end, int tid) {
  const struct dw_ctx *c = vctx;
  const struct spr_conv_params *p = &c->p;
  const size_t cs = c->g.cs, kh = p->kh, kw = p->kw, ch = c->c;
  uint8_t *mem = c->scratch + (size_t)tid * c->g.thread_bytes;
  float *wpk = (float *)mem, *zero = (float *)(mem + c->g.wpk_bytes);
  memset(zero, 0, c->w * cs * sizeof(float));
  float *ring[SPR_DWCONV_MAX_KH];
  long tag[SPR_DWCONV_MAX_KH];
  if (c->g.copy) {
    for (size_t t = 0; t < kh * kw; t++) memcpy(wpk + t * cs, c->wt + t * ch, ch * sizeof(float));
    for (size_t s = 0; s < kh; s++) {
      ring[s] = (float *)(mem + c->g.wpk_bytes + (1 + s) * c->g.row_bytes);
      tag[s] = -1;
    }
  }
  const float *rows[SPR_DWCONV_MAX_KH];
  for (size_t oy = begin; oy < end; oy++) {
    const long y0 = (long)(oy * p->sh) - (long)p->ph;
    for (size_t ky = 0; ky < kh; ky++) {
      const long iy = y0 + (long)ky;
      if (iy < 0 || iy >= (long)c->h) {
        rows[ky] = zero;
        continue;
      }
      const float *src = c->x + (size_t)iy * c->w * ch;
      if (!c->g.copy) {
        rows[ky] = src;
        continue;
      }
      const size_t s = (size_t)iy % kh;
      if (tag[s] != iy) {
        for (size_t ix = 0; ix < c->w; ix++) memcpy(ring[s] + ix * cs, src + ix * ch, ch * sizeof(float));
        tag[s] = iy;
      }
      rows[ky] = ring[s];
    }
    c->uk->fn(ch, c->ow, kh, kw, p->sw, p->pw, c->w, rows, cs, c->g.copy ? wpk : c->wt, c->bias,
              c->dst + oy * c->ow * ch);
  }
}

static void dwconv2d_run(const struct spr_exec *x, const struct spr_node *nd) {
  const struct spr_tensor *ts = x->tensors;
  const struct spr_tensor *tx = &ts[nd->src[0]], *b = opt_src(ts, nd, 2), *d = &ts[nd->dst];
  struct dw_ctx c = {
      .uk = nd->impl,
      .x = tx->data,
      .wt = ts[nd->src[1]].data,
      .bias = b != NULL ? b->data : NULL,
      .dst = d->data,
      .scratch = x->scratch,
      .c = (size_t)tx->ne[0],
      .w = (size_t)tx->ne[1],
      .h = (size_t)tx->ne[2],
      .ow = (size_t)d->ne[1],
      .oh = (size_t)d->ne[2],
      .p = nd->p.conv,
  };
  c.g = dw_geom(c.c, c.w, &c.p);
  spr_parallel(x, c.oh, dwconv_rows, &c);
}

static uint64_t dwconv2d_flops(const struct spr_tensor *ts, const struct spr_node *nd) {
  const struct spr_tensor *d = &ts[nd->dst];
  return 2u * (uint64_t)d->ne[0] * (uint64_t)d->ne[1] * (uint64_t)d->ne[2] * nd->p.conv.kh * nd->p.conv.kw;
}

const struct spr_op_def spr_op_dwconv2d_def = {
    .name = "dwconv2d",
    .check = dwconv2d_check,
    .workspace = dwconv2d_workspace,
    .prepare = dwconv2d_prepare,
    .run = dwconv2d_run,
    .flops = dwconv2d_flops,
};
