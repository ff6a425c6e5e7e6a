/* tests/fuzz/fuzz_image.c — image files and IDX data sets from hostile bytes,
 * through the CLI's own decoders and the library's preprocessing.
 *
 * Every input is read three ways:
 *   - as an image file (PNG/JPEG/PPM/PGM, cli_image_decode: what classify
 *     does after reading the file), converted to 1 and to 3 channels, each
 *     then resized and normalized by spr_vision_preprocess for the bundled
 *     Fashion-MNIST ViT (gray) and a 3-channel test fixture;
 *   - as an IDX image file and as an IDX label file (cli_idx_parse, raw or
 *     gzip: what accuracy does), the first image then preprocessed.
 * Harness limit: images over 2^24 pixels are not decoded (the CLI accepts
 * them up to SPR_VISION_MAX_SIDE per side; decoding them is memory, not a
 * bug). Inputs are limited to 1 MiB. */
#include "fuzz_common.h"
#include "sparrow/vision.h"
#include "tools/sparrow/image.h"

static struct spr_model *g_gray, *g_rgb;
static void *g_gray_blob, *g_rgb_blob;

static struct spr_model *load(const char *path, void **blob) {
  size_t size = 0;
  *blob = spr_fuzz_read_file(path, &size);
  struct spr_model *m = NULL;
  struct spr_error err = {SPR_STATUS_OK, ""};
  if (*blob == NULL || spr_model_load_blob(*blob, size, NULL, &m, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "fuzz_image: cannot load %s: %s\n", path, err.msg);
    abort();
  }
  return m;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  g_gray = load(SPR_SOURCE_DIR "/models/vit-fmnist.gguf", &g_gray_blob);
  g_rgb = load(SPR_SOURCE_DIR "/tests/fixtures/vit/timm_c3.gguf", &g_rgb_blob);
  return 0;
}

static void preprocess(const struct spr_model *m, const uint8_t *px, int w, int h, int channels) {
  struct spr_vision_info vi;
  SPR_FUZZ_REQUIRE(spr_vision_info(m, &vi) == SPR_STATUS_OK, "vision info");
  const size_t n = (size_t)vi.image_size * vi.image_size * vi.channels;
  float *out = malloc(n * sizeof *out);
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_vision_preprocess(m, px, w, h, channels, out, n, &err);
  SPR_FUZZ_REQUIRE(s == SPR_STATUS_OK, "preprocess of a decoded %dx%dx%d image: %s", w, h, channels, err.msg);
  for (size_t i = 0; i < n; i++) SPR_FUZZ_REQUIRE(out[i] == out[i], "NaN after preprocessing at %zu", i);
  free(out);
}

static void image(const uint8_t *data, size_t size, int channels, const struct spr_model *m) {
  int w = 0, h = 0;
  if (cli_image_probe(data, size, "fuzz-input", &w, &h) == 0 && (uint64_t)w * (uint64_t)h > ((uint64_t)1 << 24)) return;
  struct cli_image img;
  if (cli_image_decode(data, size, "fuzz-input", channels, &img) != 0) {
    SPR_FUZZ_REQUIRE(img.pixels == NULL, "a failed decode left pixels");
    return;
  }
  SPR_FUZZ_REQUIRE(img.pixels != NULL && img.w >= 1 && img.h >= 1 && img.w <= SPR_VISION_MAX_SIDE &&
                       img.h <= SPR_VISION_MAX_SIDE && img.channels == channels,
                   "decoded %dx%dx%d", img.w, img.h, img.channels);
  preprocess(m, img.pixels, img.w, img.h, img.channels);
  cli_image_free(&img);
}

static void idx(const uint8_t *data, size_t size, int want_images) {
  uint8_t *copy = malloc(size);
  if (copy == NULL) return;
  memcpy(copy, data, size);
  struct cli_idx x;
  if (cli_idx_parse(copy, size, "fuzz-input", want_images, &x) != 0) {
    SPR_FUZZ_REQUIRE(x.data == NULL, "a failed IDX parse left data");
    return;
  }
  const size_t item = (size_t)x.rows * x.cols;
  SPR_FUZZ_REQUIRE(x.items >= x.data && (size_t)(x.items - x.data) + (size_t)x.n * item <= x.size,
                   "IDX items run past the data");
  if (want_images && x.n > 0) preprocess(g_gray, x.items, (int)x.cols, (int)x.rows, 1);
  cli_idx_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0 || size > ((size_t)1 << 20)) return 0;
  image(data, size, 1, g_gray);
  image(data, size, 3, g_rgb);
  idx(data, size, 1);
  idx(data, size, 0);
  return 0;
}
