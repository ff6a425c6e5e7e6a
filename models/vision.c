/* models/vision.c — vision model info, labels and image preprocessing. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "runtime/error.h"

enum spr_status spr_vision_info(const struct spr_model *m, struct spr_vision_info *out) {
  if (m == NULL || out == NULL) return SPR_STATUS_INVALID_ARGUMENT;
  if (m->arch->vision == NULL) return SPR_STATUS_UNSUPPORTED;
  m->arch->vision(m, out);
  return SPR_STATUS_OK;
}

enum spr_status spr_vision_label(const struct spr_model *m, uint32_t id, char *buf, size_t len) {
  struct spr_vision_info vi;
  SPR_TRY(spr_vision_info(m, &vi));
  if (id >= vi.n_classes) return SPR_STATUS_NOT_FOUND;
  if (len == 0) return SPR_STATUS_INVALID_ARGUMENT;
  char key[64];
  snprintf(key, sizeof key, "%s.class_labels", m->arch_name);
  struct spr_gguf_kv kv;
  if (spr_gguf_find_kv(&m->gguf, key, &kv) == SPR_STATUS_OK && kv.type == SPR_GGUF_ARRAY &&
      kv.arr_type == SPR_GGUF_STRING && kv.arr_n == vi.n_classes) {
    size_t cursor = 0;
    struct spr_gguf_str s = {NULL, 0};
    for (uint32_t i = 0; i <= id; i++) SPR_TRY(spr_gguf_arr_next_str(&kv, &cursor, &s));
    spr_model_str(s, buf, len);
    return SPR_STATUS_OK;
  }
  snprintf(buf, len, "class %u", id);
  return SPR_STATUS_OK;
}

enum spr_status spr_vision_preprocess(const struct spr_model *m, const uint8_t *pixels, int w, int h, int channels,
                                      float *out, size_t out_elems, struct spr_error *err) {
  struct spr_vision_info vi;
  SPR_CHECK(m != NULL && pixels != NULL && out != NULL, SPR_STATUS_INVALID_ARGUMENT, "NULL argument");
  SPR_CHECK(spr_vision_info(m, &vi) == SPR_STATUS_OK, SPR_STATUS_UNSUPPORTED, "%s is not a vision model",
            m->arch_name);
  SPR_CHECK(w >= 1 && h >= 1, SPR_STATUS_BAD_INPUT, "image is empty (%dx%d)", w, h);
  SPR_CHECK(w <= SPR_VISION_MAX_SIDE && h <= SPR_VISION_MAX_SIDE, SPR_STATUS_BAD_INPUT,
            "image %dx%d is larger than the %d-pixel limit", w, h, SPR_VISION_MAX_SIDE);
  SPR_CHECK((uint32_t)channels == vi.channels, SPR_STATUS_BAD_INPUT, "image has %d channels, the model takes %u",
            channels, vi.channels);
  const size_t S = vi.image_size, C = vi.channels;
  SPR_CHECK(out_elems == S * S * C, SPR_STATUS_INVALID_ARGUMENT, "output holds %zu values, need %zu", out_elems,
            S * S * C);
  float scale[4], shift[4];
  for (size_t c = 0; c < C; c++) {
    scale[c] = 1.0f / (255.0f * vi.std[c]);
    shift[c] = -vi.mean[c] / vi.std[c];
  }
  const float sx = (float)w / (float)S, sy = (float)h / (float)S;
  for (size_t oy = 0; oy < S; oy++) {
    float fy = ((float)oy + 0.5f) * sy - 0.5f;
    if (fy < 0) fy = 0;
    int y0 = (int)fy;
    if (y0 > h - 1) y0 = h - 1;
    const int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    const float wy = fy - (float)y0 > 1.0f ? 1.0f : fy - (float)y0;
    for (size_t ox = 0; ox < S; ox++) {
      float fx = ((float)ox + 0.5f) * sx - 0.5f;
      if (fx < 0) fx = 0;
      int x0 = (int)fx;
      if (x0 > w - 1) x0 = w - 1;
      const int x1 = x0 + 1 < w ? x0 + 1 : w - 1;
      const float wx = fx - (float)x0 > 1.0f ? 1.0f : fx - (float)x0;
      for (size_t c = 0; c < C; c++) {
        const float p00 = pixels[((size_t)y0 * (size_t)w + (size_t)x0) * C + c];
        const float p01 = pixels[((size_t)y0 * (size_t)w + (size_t)x1) * C + c];
        const float p10 = pixels[((size_t)y1 * (size_t)w + (size_t)x0) * C + c];
        const float p11 = pixels[((size_t)y1 * (size_t)w + (size_t)x1) * C + c];
        const float top = p00 + (p01 - p00) * wx, bot = p10 + (p11 - p10) * wx;
        out[(oy * S + ox) * C + c] = (top + (bot - top) * wy) * scale[c] + shift[c];
      }
    }
  }
  return SPR_STATUS_OK;
}
