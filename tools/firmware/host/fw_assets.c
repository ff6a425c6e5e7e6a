/* tools/firmware/host/fw_assets.c — build-time helper of the firmware demo,
 * run on the build machine:
 *
 *   spr_fw_assets tiny-vit OUT.gguf
 *       writes a small random-weight ViT for Fashion-MNIST-shaped input
 *       (28x28 gray, patch 4, 10 classes) with tests/support/tiny_models.c,
 *       for when the bundled trained model is not there;
 *   spr_fw_assets image MODEL (IMAGE | --synthetic) OUT.h
 *       decodes IMAGE (PNG/JPEG/PGM, with Debian's stb_image like
 *       `sparrow classify`) to 8-bit pixels with the model's channel count,
 *       or draws a synthetic 28x28 one, and writes them as a C array. It also
 *       classifies the image with the library on this machine (scalar ukernels,
 *       like a Cortex-M) and writes the expected class, so the device checks
 *       its own answer. The device does the resizing and normalization itself
 *       (spr_vision_preprocess): no image decoder on the device. */
#include <stb_image.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparrow/sparrow.h"
#include "sparrow/vision.h"
#include "support/test_util.h"
#include "support/tiny_models.h"

static int fail(const char *msg, const char *what) {
  fprintf(stderr, "spr_fw_assets: %s%s%s\n", msg, what ? ": " : "", what ? what : "");
  return 1;
}

static const char *base_name(const char *path) {
  const char *b = strrchr(path, '/');
  return b != NULL ? b + 1 : path;
}

static int write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) return fail("cannot write", path);
  const int ok = fwrite(data, 1, n, f) == n;
  return (fclose(f) == 0 && ok) ? 0 : fail("cannot write", path);
}

static int tiny_vit(const char *out) {
  struct spr_tiny_vit c;
  spr_tiny_vit_defaults(&c);
  c.image = 28;
  c.channels = 1;
  c.patch = 4;
  c.dim = 64;
  c.depth = 2;
  c.heads = 4;
  c.ffn = 128;
  c.classes = 10;
  c.seed = 2024;
  void *blob = NULL;
  size_t size = 0;
  if (spr_tiny_vit_write(&c, &blob, &size) != SPR_STATUS_OK) return fail("cannot write the tiny ViT", NULL);
  const int rc = write_file(out, blob, size);
  free(blob);
  if (rc == 0) printf("wrote %s: random ViT 28x28x1, patch 4, dim 64, depth 2, %zu bytes\n", out, size);
  return rc;
}

/* A 28x28 gray pattern: a bright ring on a dark background. */
static unsigned char *synthetic(int channels, int *w, int *h) {
  const int n = 28;
  unsigned char *p = malloc((size_t)n * n * (size_t)channels);
  if (p == NULL) return NULL;
  for (int y = 0; y < n; y++) {
    for (int x = 0; x < n; x++) {
      const int dx = 2 * x - n + 1, dy = 2 * y - n + 1, r2 = dx * dx + dy * dy;
      const unsigned char v = (r2 > 200 && r2 < 500) ? 230 : (unsigned char)(x * 3);
      for (int c = 0; c < channels; c++) p[((size_t)y * n + (size_t)x) * (size_t)channels + (size_t)c] = v;
    }
  }
  *w = *h = n;
  return p;
}

/* Classifies pixels with the library (scalar: what a Cortex-M runs). */
static int classify(const struct spr_model *m, const unsigned char *px, int w, int h, int c, uint32_t *cls, char *label,
                    size_t label_len) {
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.isa_mask = 0;
  struct spr_error err = {SPR_STATUS_OK, ""};
  struct spr_plan plan;
  if (spr_plan(m, &cfg, &plan, &err) != SPR_STATUS_OK) return fail("plan", err.msg);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  if (spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err) != SPR_STATUS_OK) {
    free(arena);
    return fail("session", err.msg);
  }
  struct spr_tensor_view in, out;
  spr_session_input(s, 0, &in);
  int rc = 0;
  if (spr_vision_preprocess(m, px, w, h, c, in.data, in.nbytes / sizeof(float), &err) != SPR_STATUS_OK ||
      spr_session_run(s) != SPR_STATUS_OK) {
    rc = fail("classify", err.msg);
  } else {
    spr_session_output(s, 0, &out);
    const float *lg = out.data;
    const uint32_t n = (uint32_t)(out.nbytes / sizeof(float));
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++) best = lg[i] > lg[best] ? i : best;
    *cls = best;
    spr_vision_label(m, best, label, label_len);
  }
  spr_session_destroy(s);
  free(arena);
  return rc;
}

static int image(const char *model_path, const char *image_path, const char *out) {
  struct spr_model *m = NULL;
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (spr_model_load_file(model_path, NULL, &m, &err) != SPR_STATUS_OK) return fail(model_path, err.msg);
  struct spr_vision_info vi;
  if (spr_vision_info(m, &vi) != SPR_STATUS_OK) {
    spr_model_free(m);
    return fail("not an image classifier", model_path);
  }
  const int synth = strcmp(image_path, "--synthetic") == 0;
  int w = 0, h = 0, c = (int)vi.channels, file_c = 0;
  unsigned char *px = synth ? synthetic(c, &w, &h) : stbi_load(image_path, &w, &h, &file_c, c);
  if (px == NULL) {
    spr_model_free(m);
    return fail("cannot decode", synth ? "synthetic image" : image_path);
  }
  uint32_t cls = 0;
  char label[128] = "";
  int rc = classify(m, px, w, h, c, &cls, label, sizeof label);
  FILE *f = rc == 0 ? fopen(out, "w") : NULL;
  if (rc == 0 && f == NULL) rc = fail("cannot write", out);
  if (f != NULL) {
    for (char *p = label; *p; p++)
      if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '_';
    fprintf(f,
            "/* Generated by spr_fw_assets from %s: %dx%d, %d channel(s), 8-bit, decoded on the\n"
            " * build machine; the device resizes and normalizes it (spr_vision_preprocess). */\n"
            "#ifndef SPR_FW_SAMPLE_IMAGE_H\n#define SPR_FW_SAMPLE_IMAGE_H\n\n"
            "#define SPR_FW_IMAGE_NAME \"%s\"\n#define SPR_FW_IMAGE_W %d\n#define SPR_FW_IMAGE_H %d\n"
            "#define SPR_FW_IMAGE_C %d\n"
            "/* What the library predicts for it on the build machine (scalar ukernels). */\n"
            "#define SPR_FW_EXPECTED_CLASS %uu\n#define SPR_FW_EXPECTED_LABEL \"%s\"\n\n"
            "static const unsigned char spr_fw_image[%d * %d * %d] = {\n",
            synth ? "a synthetic pattern" : image_path, w, h, c, synth ? "synthetic" : base_name(image_path), w, h, c,
            (unsigned)cls, label, w, h, c);
    const size_t n = (size_t)w * (size_t)h * (size_t)c;
    for (size_t i = 0; i < n; i++) fprintf(f, "%u,%s", px[i], (i % 28 == 27 || i + 1 == n) ? "\n" : "");
    fprintf(f, "};\n\n#endif\n");
    if (fclose(f) != 0) rc = fail("cannot write", out);
  }
  if (rc == 0) printf("wrote %s: %dx%dx%d, expected class %u (%s)\n", out, w, h, c, (unsigned)cls, label);
  if (synth)
    free(px);
  else
    stbi_image_free(px);
  spr_model_free(m);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "tiny-vit") == 0) return tiny_vit(argv[2]);
  if (argc == 5 && strcmp(argv[1], "image") == 0) return image(argv[2], argv[3], argv[4]);
  fprintf(stderr,
          "usage: spr_fw_assets tiny-vit OUT.gguf\n"
          "       spr_fw_assets image MODEL (IMAGE | --synthetic) OUT.h\n");
  return 2;
}
