/* tools/sparrow/image.c */
#include "tools/sparrow/image.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>
#include <zlib.h>

#include "sparrow/vision.h"
#include "tools/sparrow/cli.h"

/* Whole file into a malloc'd buffer (at most max bytes). 0, or 1 after an error. */
static int read_all(const char *path, const char *what, size_t max, uint8_t **data, size_t *size) {
  *data = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return cli_fail("cannot open %s%s", what, path);
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return cli_fail("%s is not a regular file", path);
  }
  long sz = -1;
  if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
  if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return cli_fail("cannot read %s%s", what, path);
  }
  if (sz == 0 || (unsigned long long)sz > max) {
    fclose(f);
    return cli_fail("%s: unexpected size %ld", path, sz);
  }
  uint8_t *buf = malloc((size_t)sz);
  if (buf == NULL || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
    fclose(f);
    free(buf);
    return cli_fail("cannot read %s%s", what, path);
  }
  fclose(f);
  *data = buf;
  *size = (size_t)sz;
  return 0;
}

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The size in a PNG header (stb_image refuses PNGs over 2^30 bytes of
 * pixels itself, with a message that does not name our limit). */
static bool png_size(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 24 || memcmp(p, sig, 8) != 0 || memcmp(p + 12, "IHDR", 4) != 0) return false;
  *w = be32(p + 16);
  *h = be32(p + 20);
  return true;
}

/* PGM/PPM headers, read as stb_image reads them (whitespace, # comments),
 * for two of its 2.27 bugs (fixed upstream in 2.28): header numbers parsed
 * into an int without an overflow check, and 16-bit samples (maximum value
 * above 255) converted to 8 bits from a buffer of half the size. NULL when
 * the header is fine (or not a PGM/PPM), else why it is refused. */
static const char *pnm_header_problem(const uint8_t *p, size_t n) {
  if (n < 2 || p[0] != 'P' || (p[1] != '5' && p[1] != '6')) return NULL;
  size_t i = 2;
  uint32_t v = 0;
  for (int k = 0; k < 3; k++) {
    for (;;) {
      while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r'))) i++;
      if (i >= n || p[i] != '#') break;
      while (i < n && p[i] != '\n' && p[i] != '\r') i++;
    }
    v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
      if (v > 99999999u) return "a header number of more than 9 digits";
      v = v * 10 + (uint32_t)(p[i] - '0');
    }
  }
  return v > 255 ? "16-bit samples are not supported" : NULL;
}

/* Two ways Debian's stb_image 2.27 reads or writes outside its Huffman
 * tables, found by fuzzing; the file is refused before stb sees it:
 *   - a DHT segment declaring more than 256 codes in one table: written past
 *     the table (upstream checks this since 2.28);
 *   - a scan that uses a table no DHT segment defined before it: stb's
 *     decoder state is not zeroed, so the scan decodes through uninitialized
 *     tables (an index of -61720 in the reproducer). Baseline scans use
 *     their DC and AC tables; progressive scans use the DC table in a first
 *     DC scan, the AC table in AC scans, none in a DC refinement scan.
 * This walks the marker segments as stb reads them (fill bytes and bytes
 * between segments skipped; a DHT segment's tables until its length is used
 * up, counts past the end of the data read as 0). Returns what is wrong, or
 * NULL (also for anything that is not a JPEG). */
static const char *jpeg_tables_problem(const uint8_t *p, size_t n) {
  size_t i = 1; /* SOI, after any fill bytes */
  while (i < n && p[i] == 0xff) i++;
  if (n < 2 || p[0] != 0xff || i >= n || p[i] != 0xd8) return NULL; /* not a JPEG */
  i++;
  unsigned dc = 0, ac = 0; /* tables defined so far, a bit per id 0..3 */
  bool progressive = false;
  while (i + 1 < n) {
    const uint8_t m = p[i + 1];
    if (p[i] != 0xff || m == 0xff) { /* entropy-coded data, fill bytes */
      i++;
      continue;
    }
    if (m == 0x00 || m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) { /* no length field */
      i += 2;
      continue;
    }
    if (m == 0xd9 || i + 3 >= n) return NULL;
    const size_t len = ((size_t)p[i + 2] << 8) | p[i + 3];
    if (m == 0xc2) progressive = true;
    if (m == 0xc0 || m == 0xc1) progressive = false;
    if (m == 0xc4) {
      long left = (long)len - 2;
      size_t q = i + 4;
      while (left > 0) {
        size_t count = 0;
        for (size_t k = 1; k <= 16; k++) count += q + k < n ? p[q + k] : 0;
        if (count > 256) return "Huffman table of more than 256 codes";
        if (q < n && (p[q] >> 4) <= 1 && (p[q] & 15) <= 3) { /* stb refuses other classes and ids */
          if ((p[q] >> 4) == 0)
            dc |= 1u << (p[q] & 15);
          else
            ac |= 1u << (p[q] & 15);
        }
        q += 17 + count;
        left -= 17 + (long)count;
      }
    }
    if (m == 0xda && i + 4 < n) {
      const size_t ns = p[i + 4];
      const size_t spectral = i + 5 + 2 * ns; /* Ss, Se, Ah:Al after the components */
      if (spectral + 2 >= n) return NULL;     /* stb stops at the end of the data */
      const bool dc_scan = p[spectral] == 0, first = (p[spectral + 2] >> 4) == 0;
      for (size_t c = 0; c < ns; c++) {
        const unsigned td = p[i + 6 + 2 * c] >> 4, ta = p[i + 6 + 2 * c] & 15;
        if (td > 3 || ta > 3) return NULL; /* stb refuses these itself */
        const bool need_dc = !progressive || (dc_scan && first), need_ac = !progressive || !dc_scan;
        if ((need_dc && !(dc >> td & 1)) || (need_ac && !(ac >> ta & 1)))
          return "a scan uses a Huffman table that is not defined";
      }
    }
    i += 2 + len;
  }
  return NULL;
}

int cli_image_probe(const uint8_t *data, size_t size, const char *name, int *w, int *h) {
  int c = 0;
  *w = *h = 0;
  if (size > INT_MAX) return cli_fail("%s: image file too large (%zu bytes)", name, size);
  uint32_t pw, ph;
  if (data != NULL && png_size(data, size, &pw, &ph) && (pw > SPR_VISION_MAX_SIDE || ph > SPR_VISION_MAX_SIDE))
    return cli_fail("%s is %ux%u: images larger than %d pixels per side are refused", name, pw, ph,
                    SPR_VISION_MAX_SIDE);
  const char *pnm = data != NULL ? pnm_header_problem(data, size) : NULL;
  if (pnm != NULL) return cli_fail("cannot decode %s: PGM/PPM with %s", name, pnm);
  const char *jpeg = data != NULL ? jpeg_tables_problem(data, size) : NULL;
  if (jpeg != NULL) return cli_fail("cannot decode %s: corrupt JPEG (%s)", name, jpeg);
  if (data == NULL || size == 0 || !stbi_info_from_memory(data, (int)size, w, h, &c))
    return cli_fail("%s is not a readable PNG, JPEG or PPM/PGM image (%s)", name,
                    size == 0 ? "empty file" : stbi_failure_reason());
  if (*w < 1 || *h < 1) return cli_fail("%s is empty (%dx%d)", name, *w, *h);
  if (*w > SPR_VISION_MAX_SIDE || *h > SPR_VISION_MAX_SIDE)
    return cli_fail("%s is %dx%d: images larger than %d pixels per side are refused", name, *w, *h,
                    SPR_VISION_MAX_SIDE);
  return 0;
}

int cli_image_decode(const uint8_t *data, size_t size, const char *name, int channels, struct cli_image *out) {
  memset(out, 0, sizeof *out);
  int w, h, c = 0;
  if (cli_image_probe(data, size, name, &w, &h) != 0) return 1;
  out->pixels = stbi_load_from_memory(data, (int)size, &out->w, &out->h, &c, channels);
  if (out->pixels == NULL) return cli_fail("cannot decode %s: %s", name, stbi_failure_reason());
  out->channels = channels;
  return 0;
}

int cli_image_load(const char *path, int channels, struct cli_image *out) {
  memset(out, 0, sizeof *out);
  uint8_t *data = NULL;
  size_t size = 0;
  if (read_all(path, "image ", CLI_IMAGE_MAX_FILE, &data, &size) != 0) return 1;
  const int rc = cli_image_decode(data, size, path, channels, out);
  free(data);
  return rc;
}

void cli_image_free(struct cli_image *img) {
  stbi_image_free(img->pixels);
  memset(img, 0, sizeof *img);
}

/* gzip through zlib (stb_image's inflate rejects some valid streams, e.g.
 * MNIST's label files with a one-code distance tree). */
static int gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *out_n, const char *path) {
  if (n < 18) return cli_fail("%s: truncated gzip file", path);
  /* the trailer holds the uncompressed size mod 2^32: a starting capacity,
   * trusted only up to what deflate can expand n bytes to (1032:1), so a
   * 20-byte file cannot make us allocate a gigabyte up front */
  const uint32_t isize = in[n - 4] | (in[n - 3] << 8) | (in[n - 2] << 16) | ((uint32_t)in[n - 1] << 24);
  const size_t most = n < ((size_t)1 << 20) ? 1032 * n : ((size_t)1 << 30);
  size_t cap = isize > 0 && isize <= most && isize < (1u << 30) ? isize : (most < (1u << 20) ? most : (1u << 20));
  uint8_t *buf = malloc(cap);
  if (buf == NULL) return cli_fail("out of memory");
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
    free(buf);
    return cli_fail("%s: cannot start inflate", path);
  }
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)n;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (z.total_out == cap) {
      if (cap >= ((size_t)1 << 31)) break;
      uint8_t *nb = realloc(buf, cap * 2);
      if (nb == NULL) break;
      buf = nb;
      cap *= 2;
    }
    z.next_out = buf + z.total_out;
    z.avail_out = (uInt)(cap - z.total_out);
    rc = inflate(&z, Z_NO_FLUSH);
  }
  const size_t got = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    free(buf);
    return cli_fail("%s: corrupt gzip data", path);
  }
  *out = buf;
  *out_n = got;
  return 0;
}

int cli_idx_load(const char *path, int want_images, struct cli_idx *out) {
  memset(out, 0, sizeof *out);
  uint8_t *raw = NULL;
  size_t n = 0;
  if (read_all(path, "", (size_t)1 << 30, &raw, &n) != 0) return 1;
  return cli_idx_parse(raw, n, path, want_images, out);
}

int cli_idx_parse(uint8_t *raw, size_t n, const char *path, int want_images, struct cli_idx *out) {
  memset(out, 0, sizeof *out);
  uint8_t *data = raw;
  if (n >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
    uint8_t *unz = NULL;
    size_t unz_n = 0;
    const int rc = gunzip(raw, n, &unz, &unz_n, path);
    free(raw);
    if (rc) return rc;
    data = unz;
    n = unz_n;
  }
  out->data = data;
  out->size = n;
  const uint32_t magic = n >= 4 ? be32(data) : 0;
  const uint32_t want = want_images ? 0x803u : 0x801u;
  if (magic != want) {
    cli_idx_free(out);
    return cli_fail("%s: not an IDX %s file (magic 0x%x, expected 0x%x)", path, want_images ? "image" : "label", magic,
                    want);
  }
  const size_t header = want_images ? 16 : 8;
  if (n < header) {
    cli_idx_free(out);
    return cli_fail("%s: truncated IDX header", path);
  }
  out->n = be32(data + 4);
  out->rows = want_images ? be32(data + 8) : 1;
  out->cols = want_images ? be32(data + 12) : 1;
  const unsigned long long need = (unsigned long long)out->n * out->rows * out->cols;
  if (out->rows == 0 || out->cols == 0 || out->rows > 4096 || out->cols > 4096 || need > n - header) {
    cli_idx_free(out);
    return cli_fail("%s: IDX dimensions do not match the file size", path);
  }
  out->items = data + header;
  return 0;
}

void cli_idx_free(struct cli_idx *idx) {
  free(idx->data);
  memset(idx, 0, sizeof *idx);
}
