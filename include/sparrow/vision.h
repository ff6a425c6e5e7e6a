/* sparrow/vision.h — what an image classifier expects, and preprocessing.
 *
 * Works for every vision architecture (vit, and later nat, biformer). The
 * graph input of a vision model is the normalized image as f32 {C, S, S}
 * (HWC: channel fastest). */
#ifndef SPARROW_VISION_H
#define SPARROW_VISION_H

#include <stddef.h>
#include <stdint.h>

#include "sparrow/sparrow.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest image side the preprocessor accepts (pixels); decoders should
 * refuse bigger images before decoding them. */
#define SPR_VISION_MAX_SIDE 16384

struct spr_vision_info {
  uint32_t image_size; /* S: the model's input side */
  uint32_t channels;   /* C: 1 (gray) or 3 (RGB) */
  uint32_t n_classes;
  float mean[4], std[4]; /* per channel, on pixel values scaled to [0, 1] */
};

/* UNSUPPORTED when m is not a vision model. */
enum spr_status spr_vision_info(const struct spr_model *m, struct spr_vision_info *out);

/* The label of a class (from <arch>.class_labels), or "class <id>" when the
 * model has none. NOT_FOUND when id >= n_classes. */
enum spr_status spr_vision_label(const struct spr_model *m, uint32_t id, char *buf, size_t len);

/* Resizes an 8-bit image (w x h, `channels` interleaved, same channel count
 * as the model) to S x S with bilinear sampling (half-pixel centres, like
 * PyTorch's align_corners=False, no antialiasing), scales to [0, 1] and
 * normalizes with the model's mean/std into out[S*S*C]. BAD_INPUT for an
 * empty or oversized image or a channel mismatch. Allocates nothing. */
enum spr_status spr_vision_preprocess(const struct spr_model *m, const uint8_t *pixels, int w, int h, int channels,
                                      float *out, size_t out_elems, struct spr_error *err);

#ifdef __cplusplus
}
#endif
#endif
