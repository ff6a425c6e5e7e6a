/* ops/coreffn/rqt_scalar.c — portable transposing requantizers (contract in
 * coreffn.h): Q8_0 32 columns at a time through a dequantized [32][32]
 * tile; Q4_0 through one 16-entry code table per row and block. */
#include <stdbool.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/coreffn/coreffn.h"

/* v[kk][j] = column j of row kk's block at blk(kk), as ops/quant dequantizes it */
static void rqt_tile(float v[32][32], uint8_t *wq, size_t ldq) {
  for (size_t j = 0; j < 32; j++) {
    float amax = 0.0f;
    for (size_t kk = 0; kk < 32; kk++) {
      const float a = v[kk][j] < 0.0f ? -v[kk][j] : v[kk][j];
      amax = a > amax ? a : amax;
    }
    const uint16_t h = spr_fp16_from_f32(amax / 127.0f);
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    uint8_t *blk = wq + j * ldq;
    memcpy(blk, &h, sizeof h);
    for (size_t kk = 0; kk < 32; kk++) {
      const float s = v[kk][j] * id;
      blk[2 + kk] = (uint8_t)(int8_t)(int32_t)(s + (s < 0.0f ? -0.5f : 0.5f));
    }
  }
}

/* Round half to even of |x| < 2^22 by the float adder (two statements: no
 * contraction, the same IEEE steps as the vector conversions). */
static int8_t rne_i8(float x) {
  const float m = 0x1.8p23f;
  float t = x + m;
  t = t - m;
  return (int8_t)(int32_t)t;
}

bool spr_rqt_q4_0_group(const uint8_t *w, size_t ldw, float f[32], uint16_t *dh) {
  float d[32], dmax = 0.0f;
  bool finite = true;
  for (size_t kk = 0; kk < 32; kk++) {
    uint16_t h;
    memcpy(&h, w + kk * ldw, sizeof h);
    finite = finite && (h & 0x7C00u) != 0x7C00u;
    d[kk] = spr_fp16_to_f32(h);
    const float a = d[kk] < 0.0f ? -d[kk] : d[kk];
    dmax = a > dmax ? a : dmax;
  }
  if (!finite || dmax == 0.0f) return false;
  const float r = 127.0f / (8.0f * dmax);
  for (size_t kk = 0; kk < 32; kk++) f[kk] = d[kk] * r;
  *dh = spr_fp16_from_f32(8.0f * dmax / 127.0f);
  return true;
}

void spr_q4_0_rqt_ukernel__scalar(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq) {
  for (size_t b = 0; b < nbw / 32; b++) {
    float fk[32];
    uint16_t hd;
    uint8_t *out = (uint8_t *)wq + 32 * b * ldq;
    if (!spr_rqt_q4_0_group((const uint8_t *)w + 18 * b, ldw, fk, &hd)) {
      for (size_t j = 0; j < 32; j++) memset(out + j * ldq, 0, 34);
      continue;
    }
    for (size_t j = 0; j < 32; j++) memcpy(out + j * ldq, &hd, sizeof hd);
    for (size_t kk = 0; kk < 32; kk++) {
      const uint8_t *blk = (const uint8_t *)w + kk * ldw + 18 * b;
      const float f = fk[kk];
      int8_t table[16];
      for (int n = 0; n < 16; n++) table[n] = rne_i8(f * (float)(n - 8));
      for (size_t j = 0; j < 16; j++) {
        out[j * ldq + 2 + kk] = (uint8_t)table[blk[2 + j] & 0x0F];
        out[(j + 16) * ldq + 2 + kk] = (uint8_t)table[blk[2 + j] >> 4];
      }
    }
  }
}

void spr_q8_0_rqt_ukernel__scalar(const void *w, size_t ldw, size_t nbw, void *wq, size_t ldq) {
  float v[32][32];
  for (size_t b = 0; b < nbw / 32; b++) {
    for (size_t kk = 0; kk < 32; kk++) {
      const uint8_t *blk = (const uint8_t *)w + kk * ldw + 34 * b;
      const float d = spr_fp16_load(blk);
      for (size_t j = 0; j < 32; j++) v[kk][j] = (float)(int8_t)blk[2 + j] * d;
    }
    rqt_tile(v, (uint8_t *)wq + 32 * b * ldq, ldq);
  }
}
