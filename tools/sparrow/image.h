/* tools/sparrow/image.h — image files and IDX data sets for the CLI. */
#ifndef SPR_TOOLS_IMAGE_H
#define SPR_TOOLS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* An 8-bit image, channels interleaved. */
struct cli_image {
  uint8_t *pixels;
  int w, h, channels;
};

/* Decodes PNG/JPEG/PPM/PGM converted to `channels` (1 gray, 3 RGB). Checks
 * the header's size against SPR_VISION_MAX_SIDE before decoding. Returns 0,
 * or 1 after printing an error. */
int cli_image_load(const char *path, int channels, struct cli_image *out);
/* Same on a file already in memory (data[0..size), not kept); `name` is used
 * in messages. cli_image_load reads the file (at most CLI_IMAGE_MAX_FILE
 * bytes) and calls this; the image fuzzer calls it directly. */
int cli_image_decode(const uint8_t *data, size_t size, const char *name, int channels, struct cli_image *out);
/* The size an image file in memory claims, read from its header after the
 * checks decoding makes first (size limit, inputs Debian's stb_image 2.27
 * mishandles). 0, or 1 after printing an error. */
int cli_image_probe(const uint8_t *data, size_t size, const char *name, int *w, int *h);
#define CLI_IMAGE_MAX_FILE ((size_t)1 << 28)
void cli_image_free(struct cli_image *img);

/* An IDX file (raw or gzip): images (magic 0x803, n x rows x cols, u8) or
 * labels (0x801, n, u8). */
struct cli_idx {
  uint8_t *data; /* whole decompressed file */
  size_t size;
  const uint8_t *items; /* first item */
  uint32_t n, rows, cols; /* rows = cols = 1 for labels */
};
int cli_idx_load(const char *path, int want_images, struct cli_idx *out);
/* Same on a file in memory: takes ownership of raw (malloc'd; freed or kept
 * as out->data on every path). `path` is used in messages. */
int cli_idx_parse(uint8_t *raw, size_t n, const char *path, int want_images, struct cli_idx *out);
void cli_idx_free(struct cli_idx *idx);

#endif
