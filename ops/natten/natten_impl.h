/* ops/natten/natten_impl.h — the neighborhood-attention ukernel body (one
 * task, see natten.h), written once over a small vector vocabulary and
 * compiled once per ISA.
 *
 * The including file (f32_natten_<isa>.c) defines, before including:
 *   av_v, NA_VL               vector type and its lanes (the tile: query columns)
 *   NA_QR                     query rows per register tile (<= SPR_NA_MAX_QR)
 *   NA_NO                     band offsets per score register tile
 *   NA_NC                     output columns per P.V register tile
 *   NA_UKERNEL                the ukernel's name
 *   AV_INLINE                 forced-inline qualifier
 *   av_zero() av_set1(x) av_load(p) av_store(p, v) av_fma(a, b, c) = a*b + c,
 *   av_mul, av_sub, av_add, av_max
 *   av_exp2(x)                2^x for x <= 0, exactly 0 for -inf
 *   av_mask_range(s, o, lo, hi)  s where lo <= o < hi (per lane), else -inf
 *   av_transpose_load(rows, off, out)  out[j] lane i = rows[i][off + j],
 *                             i, j < NA_VL (rows: NA_VL pointers)
 *
 * Buffers (floats, layout from spr_na_layout):
 *   kT, vT  ring of transposed key/value rows: slot s, dim d, position p holds
 *           element d of the token at column colbase + p of the slot's key row
 *           (positions outside the task's column union are finite filler);
 *   qT      the query rows of the current row tile, transposed and scaled by
 *           scale * log2(e): [row][d][x - x0] (zero-padded past x1);
 *   S       scores then probabilities of one column tile:
 *           [row][key row of the row's window][band offset][lane];
 *   oT      P.V accumulators [row][column][lane];
 *   lane    per-lane band limits lo/hi and row sums. */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/natten/natten.h"

#define NA_LOG2E 1.4426950408889634f

#if NA_QR > SPR_NA_MAX_QR || NA_VL > SPR_NA_MAX_VL || NA_NO > SPR_NA_MAX_NO || NA_NC > SPR_NA_MAX_NC
#error "neighborhood attention ukernel parameters out of range"
#endif

static inline int32_t na_min32(int32_t a, int32_t b) {
  return a < b ? a : b;
}
static inline int32_t na_max32(int32_t a, int32_t b) {
  return a > b ? a : b;
}

/* Score register tile: for nr query rows and NA_NO band offsets,
 * s[r][o][lanes] = sum_d qT[r][d][lanes] * kT[d][kp + o + lanes]. */
AV_INLINE void na_qk_tile(size_t nr, size_t hd, const float *const *qr, size_t qs, const float *kp, size_t ks,
                          float *const *sr) {
  av_v acc[NA_QR][NA_NO];
  for (size_t r = 0; r < nr; r++)
    for (size_t o = 0; o < NA_NO; o++) acc[r][o] = av_zero();
  for (size_t d = 0; d < hd; d++) {
    av_v qv[NA_QR];
    for (size_t r = 0; r < nr; r++) qv[r] = av_load(qr[r] + d * qs);
    const float *kd = kp + d * ks;
    for (size_t o = 0; o < NA_NO; o++) {
      const av_v kv = av_load(kd + o);
      for (size_t r = 0; r < nr; r++) acc[r][o] = av_fma(qv[r], kv, acc[r][o]);
    }
  }
  for (size_t r = 0; r < nr; r++)
    for (size_t o = 0; o < NA_NO; o++) av_store(sr[r] + o * NA_VL, acc[r][o]);
}

/* P.V register tile: for nr query rows and NA_NC output columns,
 * o[r][c][lanes] += sum_{o < nb} p[r][o][lanes] * vT[c][vp + o + lanes]. */
AV_INLINE void na_pv_tile(size_t nr, size_t nb, const float *const *pr, const float *const *vr, float *const *orow) {
  av_v acc[NA_QR][NA_NC];
  for (size_t r = 0; r < nr; r++)
    for (size_t c = 0; c < NA_NC; c++) acc[r][c] = av_load(orow[r] + c * NA_VL);
  for (size_t o = 0; o < nb; o++) {
    av_v p[NA_QR];
    for (size_t r = 0; r < nr; r++) p[r] = av_load(pr[r] + o * NA_VL);
    for (size_t c = 0; c < NA_NC; c++) {
      const av_v vv = av_load(vr[c] + o);
      for (size_t r = 0; r < nr; r++) acc[r][c] = av_fma(p[r], vv, acc[r][c]);
    }
  }
  for (size_t r = 0; r < nr; r++)
    for (size_t c = 0; c < NA_NC; c++) av_store(orow[r] + c * NA_VL, acc[r][c]);
}

/* Transposes columns [xa, xb) of one token line (first token `src`, tokens
 * tstride floats apart, head_dim floats each) to dst[d * dstride + (x - xa)],
 * times mul. A partial last block repeats its last token past xb (the
 * caller leaves room for NA_VL - 1 extra positions). */
static void na_transpose_line(const float *src, size_t tstride, int32_t xa, int32_t xb, size_t hd, float mul,
                              float *dst, size_t dstride) {
  const size_t hdv = hd / NA_VL * NA_VL;
  const av_v m = av_set1(mul);
  for (int32_t x = xa; x < xb; x += NA_VL) {
    const int32_t n = na_min32(NA_VL, xb - x);
    const float *rows[NA_VL];
    for (int32_t i = 0; i < NA_VL; i++) rows[i] = src + (size_t)(x + na_min32(i, n - 1)) * tstride;
    float *dx = dst + (x - xa);
    for (size_t d0 = 0; d0 < hdv; d0 += NA_VL) {
      av_v out[NA_VL];
      av_transpose_load(rows, d0, out);
      for (size_t j = 0; j < NA_VL; j++) av_store(dx + (d0 + j) * dstride, av_mul(out[j], m));
    }
    for (size_t d = hdv; d < hd; d++)
      for (int32_t i = 0; i < NA_VL; i++) dx[d * dstride + (size_t)i] = rows[i][d] * mul;
  }
}

/* The column union of a task must stay inside a ring row: see
 * spr_na_layout. */
void NA_UKERNEL(const struct spr_f32_na_task *t, float *ws) {
  const size_t hd = t->head_dim;
  const struct spr_na_axis *az = &t->ax[0], *ay = &t->ax[1], *axx = &t->ax[2];
  struct spr_na_layout L;
  spr_na_layout(t->ax, hd, (size_t)(t->x1 - t->x0), NA_VL, NA_QR, NA_NO, NA_NC, &L);
  float *const kt = ws + L.kt, *const vt = ws + L.vt, *const qt = ws + L.qt, *const sc = ws + L.s;
  float *const ot = ws + L.ot, *const lane = ws + L.lane;
  float *const lo_f = lane, *const hi_f = lane + NA_VL, *const lsum = lane + 8 * NA_VL;
  const size_t row_w = L.row_w, q_w = L.q_w, slot_f = hd * row_w;
  const float qscale = t->scale * NA_LOG2E;

  int32_t zs, ze, us, ue, tmp;
  spr_na_window(az, t->z, &zs, &ze);
  spr_na_window(axx, t->x0, &us, &tmp);
  spr_na_window(axx, t->x1 - 1, &tmp, &ue);
  const int32_t colbase = t->x0 - (int32_t)L.padl; /* column of ring position 0 */
  const size_t pa = (size_t)(us - colbase), pb = (size_t)(ue - colbase);

  /* filler outside the union: zeros (finite, so masked lanes stay finite) */
  for (size_t s = 0; s < L.n_slots; s++) {
    for (size_t d = 0; d < hd; d++) {
      float *kr = kt + s * slot_f + d * row_w, *vr = vt + s * slot_f + d * row_w;
      memset(kr, 0, pa * sizeof(float));
      memset(vr, 0, pa * sizeof(float));
      memset(kr + pb, 0, (row_w - pb) * sizeof(float));
      memset(vr + pb, 0, (row_w - pb) * sizeof(float));
    }
  }
  const size_t nz = (size_t)(ze - zs);
  const size_t tok_x_k = t->tok_x * t->k_stride, tok_x_v = t->tok_x * t->v_stride;

  int32_t ky_next = -1;
  for (int32_t y = t->y0; y < t->y1; y += NA_QR) {
    const size_t nr = (size_t)na_min32(NA_QR, t->y1 - y);
    int32_t ys[NA_QR], ye[NA_QR];
    for (size_t r = 0; r < nr; r++) spr_na_window(ay, y + (int32_t)r, &ys[r], &ye[r]);
    const int32_t kya = ys[0], kyb = ye[nr - 1];
    if (ky_next < kya) ky_next = kya;
    for (; ky_next < kyb; ky_next++) {
      for (int32_t kz = zs; kz < ze; kz++) {
        const size_t slot = (size_t)(kz - zs) * L.n_ring + (size_t)ky_next % L.n_ring;
        const size_t tok = t->tok0 + (size_t)kz * t->tok_z + (size_t)ky_next * t->tok_y + (size_t)us * t->tok_x;
        na_transpose_line(t->k + tok * t->k_stride, tok_x_k, 0, ue - us, hd, 1.0f, kt + slot * slot_f + pa, row_w);
        na_transpose_line(t->v + tok * t->v_stride, tok_x_v, 0, ue - us, hd, 1.0f, vt + slot * slot_f + pa, row_w);
      }
    }
    for (size_t r = 0; r < nr; r++) {
      const size_t tok =
          t->tok0 + (size_t)t->z * t->tok_z + (size_t)(y + (int32_t)r) * t->tok_y + (size_t)t->x0 * t->tok_x;
      na_transpose_line(t->q + tok * t->q_stride, t->tok_x * t->q_stride, 0, t->x1 - t->x0, hd, qscale,
                        qt + r * hd * q_w, q_w);
    }

    for (int32_t c0 = t->x0; c0 < t->x1; c0 += NA_VL) {
      const int32_t nq = na_min32(NA_VL, t->x1 - c0);
      /* band of the tile: key column of lane l at offset o is c0 + l + dmin + o */
      int32_t dlo[NA_VL], dhi[NA_VL];
      int32_t dmin = INT32_MAX, dmax = INT32_MIN;
      for (int32_t l = 0; l < NA_VL; l++) {
        const int32_t qc = c0 + na_min32(l, nq - 1);
        int32_t cs, ce;
        spr_na_window(axx, qc, &cs, &ce);
        dlo[l] = cs - qc;
        dhi[l] = ce - qc;
        dmin = na_min32(dmin, dlo[l]);
        dmax = na_max32(dmax, dhi[l]);
      }
      const size_t nb = (size_t)(dmax - dmin);
      const size_t nbs = (nb + NA_NO - 1) / NA_NO * NA_NO; /* band stride in S */
      int interior = 1;
      for (int32_t l = 0; l < NA_VL; l++) {
        lo_f[l] = (float)(dlo[l] - dmin);
        hi_f[l] = (float)(dhi[l] - dmin);
        interior &= dlo[l] == dmin && dhi[l] == dmax;
      }
      const av_v lo_v = av_load(lo_f), hi_v = av_load(hi_f);
      const size_t kcol = (size_t)(c0 + dmin - colbase);
      const size_t nky_max = (size_t)ay->kernel;

      /* scores, key row by key row; each kT slice serves all rows that see it */
      for (int32_t kz = zs; kz < ze; kz++) {
        for (int32_t ky = kya; ky < kyb; ky++) {
          size_t ra = 0, rb = nr;
          while (ra < nr && ye[ra] <= ky) ra++;
          while (rb > ra && ys[rb - 1] > ky) rb--;
          if (ra == rb) continue;
          const size_t slot = (size_t)(kz - zs) * L.n_ring + (size_t)ky % L.n_ring;
          const float *kp = kt + slot * slot_f + kcol;
          const float *qr[NA_QR];
          float *sr[NA_QR];
          for (size_t r = ra; r < rb; r++) {
            const size_t a = (size_t)(kz - zs) * (size_t)(ye[r] - ys[r]) + (size_t)(ky - ys[r]);
            qr[r - ra] = qt + r * hd * q_w + (size_t)(c0 - t->x0);
            sr[r - ra] = sc + ((r * nz * nky_max + a) * nbs) * NA_VL;
          }
          for (size_t o0 = 0; o0 < nb; o0 += NA_NO) {
            float *so[NA_QR];
            for (size_t r = 0; r < rb - ra; r++) so[r] = sr[r] + o0 * NA_VL;
            switch (rb - ra) {
              case 1:
                na_qk_tile(1, hd, qr, q_w, kp + o0, row_w, so);
                break;
#if NA_QR >= 2
              case 2:
                na_qk_tile(2, hd, qr, q_w, kp + o0, row_w, so);
                break;
#endif
#if NA_QR >= 3
              case 3:
                na_qk_tile(3, hd, qr, q_w, kp + o0, row_w, so);
                break;
#endif
              default:
                break;
            }
          }
        }
      }

      /* softmax over each query's window (log2 units) */
      for (size_t r = 0; r < nr; r++) {
        const size_t nky = (size_t)(ye[r] - ys[r]), nkr = nz * nky;
        float *s0 = sc + r * nz * nky_max * nbs * NA_VL;
        if (!interior || t->rpb != NULL) {
          for (size_t a = 0; a < nkr; a++) {
            float *sa = s0 + a * nbs * NA_VL;
            const float *bias = NULL;
            if (t->rpb != NULL) {
              const int32_t kz = zs + (int32_t)(a / nky), ky = ys[r] + (int32_t)(a % nky);
              const size_t bz = (size_t)(az->kernel - 1 + kz - t->z),
                           by = (size_t)(ay->kernel - 1 + ky - (y + (int32_t)r));
              bias = t->rpb + (bz * (size_t)(2 * ay->kernel - 1) + by) * (size_t)(2 * axx->kernel - 1) +
                     (size_t)(axx->kernel - 1 + dmin);
            }
            for (size_t o = 0; o < nb; o++) {
              av_v s = av_load(sa + o * NA_VL);
              if (!interior) s = av_mask_range(s, (float)o, lo_v, hi_v);
              if (bias != NULL && (int32_t)o + axx->kernel - 1 + dmin <= 2 * axx->kernel - 2)
                s = av_add(s, av_set1(bias[o] * NA_LOG2E));
              av_store(sa + o * NA_VL, s);
            }
          }
        }
        av_v m = av_set1(-INFINITY);
        for (size_t a = 0; a < nkr; a++) {
          const float *sa = s0 + a * nbs * NA_VL;
          for (size_t o = 0; o < nb; o++) m = av_max(m, av_load(sa + o * NA_VL));
        }
        av_v l = av_zero();
        for (size_t a = 0; a < nkr; a++) {
          float *sa = s0 + a * nbs * NA_VL;
          for (size_t o = 0; o < nb; o++) {
            const av_v p = av_exp2(av_sub(av_load(sa + o * NA_VL), m));
            av_store(sa + o * NA_VL, p);
            l = av_add(l, p);
          }
        }
        av_store(lsum + r * NA_VL, l);
      }

      /* P.V */
      memset(ot, 0, nr * L.hd_c * NA_VL * sizeof(float));
      for (int32_t kz = zs; kz < ze; kz++) {
        for (int32_t ky = kya; ky < kyb; ky++) {
          size_t ra = 0, rb = nr;
          while (ra < nr && ye[ra] <= ky) ra++;
          while (rb > ra && ys[rb - 1] > ky) rb--;
          if (ra == rb) continue;
          const size_t slot = (size_t)(kz - zs) * L.n_ring + (size_t)ky % L.n_ring;
          const float *vp = vt + slot * slot_f + kcol;
          const float *pr[NA_QR];
          float *orow[NA_QR];
          for (size_t r = ra; r < rb; r++) {
            const size_t a = (size_t)(kz - zs) * (size_t)(ye[r] - ys[r]) + (size_t)(ky - ys[r]);
            pr[r - ra] = sc + ((r * nz * nky_max + a) * nbs) * NA_VL;
            orow[r - ra] = ot + r * L.hd_c * NA_VL;
          }
          for (size_t c0c = 0; c0c < hd; c0c += NA_NC) {
            const float *vr[NA_NC];
            float *oc[NA_QR];
            for (size_t c = 0; c < NA_NC; c++) vr[c] = vp + (c0c + c < hd ? c0c + c : hd - 1) * row_w;
            for (size_t r = 0; r < rb - ra; r++) oc[r] = orow[r] + c0c * NA_VL;
            switch (rb - ra) {
              case 1:
                na_pv_tile(1, nb, pr, vr, oc);
                break;
#if NA_QR >= 2
              case 2:
                na_pv_tile(2, nb, pr, vr, oc);
                break;
#endif
#if NA_QR >= 3
              case 3:
                na_pv_tile(3, nb, pr, vr, oc);
                break;
#endif
              default:
                break;
            }
          }
        }
      }

      /* normalize and write the outputs of lanes < nq */
      const size_t hdv = hd / NA_VL * NA_VL;
      for (size_t r = 0; r < nr; r++) {
        float inv[NA_VL];
        for (int32_t l = 0; l < NA_VL; l++) inv[l] = 1.0f / lsum[r * NA_VL + (size_t)l];
        const size_t tok = t->tok0 + (size_t)t->z * t->tok_z + (size_t)(y + (int32_t)r) * t->tok_y;
        float *orows[NA_VL];
        for (int32_t l = 0; l < nq; l++) orows[l] = t->o + (tok + (size_t)(c0 + l) * t->tok_x) * t->o_stride;
        const float *oro = ot + r * L.hd_c * NA_VL;
        for (size_t cb = 0; cb < hdv; cb += NA_VL) {
          const float *rows[NA_VL];
          for (size_t i = 0; i < NA_VL; i++) rows[i] = oro + (cb + i) * NA_VL;
          av_v out[NA_VL];
          av_transpose_load(rows, 0, out);
          for (int32_t l = 0; l < nq; l++) av_store(orows[l] + cb, av_mul(out[l], av_set1(inv[l])));
        }
        for (size_t c = hdv; c < hd; c++)
          for (int32_t l = 0; l < nq; l++) orows[l][c] = oro[c * NA_VL + (size_t)l] * inv[l];
      }
    }
  }
}
