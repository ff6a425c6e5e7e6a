/* tests/fuzz/make_seeds.c — writes the seed corpora under tests/fuzz/corpus.
 *
 * Usage: fuzz_make_seeds CORPUS_DIR   (the folders fuzz_gguf, fuzz_tokenizer,
 * fuzz_image and fuzz_cli must exist). Every seed is a small valid input
 * written by the project's own code: tiny random ViT/llama models from
 * tests/support/tiny_models.c (f32, f16, and through the quantizer q8_0,
 * q4_0, q4_k, q6_k), PNG/JPEG/PGM/PPM images (stb_image_write) and IDX files
 * (raw and gzip), short texts for the tokenizer, command lines for the CLI.
 * The bundled sample PNGs are copied by .ci/fuzz.sh's corpus step as well;
 * the output is deterministic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image_write.h>
#include <zlib.h>

#include "sparrow/sparrow.h"
#include "support/tiny_models.h"
#include "tools/sparrow/quantize.h"

static const char *g_root;

static void put(const char *target, const char *name, const void *data, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/%s", g_root, target, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  printf("%-60s %7zu bytes\n", path, n);
}

static void put_str(const char *target, const char *name, const char *s) {
  put(target, name, s, strlen(s));
}

/* ---- models ---------------------------------------------------------------- */

static void vit(const char *name, int channels, bool mean_pool, bool distilled, enum spr_dtype type) {
  struct spr_tiny_vit c;
  spr_tiny_vit_defaults(&c);
  c.image = 8;
  c.channels = channels;
  c.patch = 4;
  c.dim = 8;
  c.depth = 1;
  c.heads = 2;
  c.ffn = 16;
  c.classes = 3;
  c.mean_pool = mean_pool;
  c.distilled = distilled;
  c.linear_type = type;
  void *buf;
  size_t n;
  if (spr_tiny_vit_write(&c, &buf, &n) != SPR_STATUS_OK) exit(1);
  put("fuzz_gguf", name, buf, n);
  free(buf);
}

static void llama_cfg(struct spr_tiny_llama *c, int dim, int ffn, int vocab, bool tokenizer, bool tied,
                      enum spr_dtype type) {
  spr_tiny_llama_defaults(c);
  c->dim = dim;
  c->layers = 1;
  c->heads = 2;
  c->kv_heads = 1;
  c->ffn = ffn;
  c->vocab = vocab;
  c->ctx = 16;
  c->tokenizer = tokenizer;
  c->tied = tied;
  c->matmul_type = type;
}

static void llama(const char *name, const struct spr_tiny_llama *c) {
  void *buf;
  size_t n;
  if (spr_tiny_llama_write(c, &buf, &n) != SPR_STATUS_OK) exit(1);
  put("fuzz_gguf", name, buf, n);
  free(buf);
}

/* A llama model converted by the quantizer (through temporary files). */
static void llama_quantized(const char *name, const struct spr_tiny_llama *c, enum spr_dtype type) {
  void *buf;
  size_t n;
  if (spr_tiny_llama_write(c, &buf, &n) != SPR_STATUS_OK) exit(1);
  char in[] = "/tmp/spr_seed_in_XXXXXX", out[] = "/tmp/spr_seed_out_XXXXXX";
  const int fi = mkstemp(in), fo = mkstemp(out);
  FILE *f = fi >= 0 ? fdopen(fi, "wb") : NULL;
  if (f == NULL || fo < 0 || fwrite(buf, 1, n, f) != n || fclose(f) != 0) exit(1);
  close(fo);
  free(buf);
  const struct spr_quantize_opts o = {type, false, 1, NULL, false, -1, -1};
  struct spr_error err;
  if (spr_quantize_file(in, out, &o, NULL, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "quantize: %s\n", err.msg);
    exit(1);
  }
  FILE *q = fopen(out, "rb");
  fseek(q, 0, SEEK_END);
  const long qn = ftell(q);
  rewind(q);
  void *qb = malloc((size_t)qn);
  if (fread(qb, 1, (size_t)qn, q) != (size_t)qn) exit(1);
  fclose(q);
  put("fuzz_gguf", name, qb, (size_t)qn);
  free(qb);
  remove(in);
  remove(out);
}

static void models(void) {
  vit("vit_cls_rgb_f32.gguf", 3, false, false, SPR_DTYPE_F32);
  vit("vit_mean_gray_f16.gguf", 1, true, false, SPR_DTYPE_F16);
  vit("vit_distilled_rgb_f32.gguf", 3, false, true, SPR_DTYPE_F32);
  struct spr_tiny_llama c;
  llama_cfg(&c, 8, 16, 300, true, false, SPR_DTYPE_F32);
  llama("llama_spm_vocab_f32.gguf", &c);
  llama_cfg(&c, 8, 16, 16, false, true, SPR_DTYPE_F16);
  llama("llama_tied_f16.gguf", &c);
  llama_cfg(&c, 32, 32, 16, false, false, SPR_DTYPE_F32);
  llama_quantized("llama_q8_0.gguf", &c, SPR_DTYPE_Q8_0);
  llama_quantized("llama_q4_0.gguf", &c, SPR_DTYPE_Q4_0);
  llama_cfg(&c, 32, 256, 16, false, true, SPR_DTYPE_F16);
  llama_quantized("llama_q4_k.gguf", &c, SPR_DTYPE_Q4_K);
  llama_quantized("llama_q6_k.gguf", &c, SPR_DTYPE_Q6_K);
}

/* ---- images and IDX ----------------------------------------------------------- */

struct mem {
  unsigned char *p;
  size_t n;
};

static void to_mem(void *ctx, void *data, int size) {
  struct mem *m = ctx;
  m->p = realloc(m->p, m->n + (size_t)size);
  memcpy(m->p + m->n, data, (size_t)size);
  m->n += (size_t)size;
}

static void gradient(unsigned char *px, int w, int h, int c) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) px[(y * w + x) * c + k] = (unsigned char)(x * 37 + y * 11 + k * 80);
}

static void image(const char *name, int w, int h, int c, bool jpeg) {
  unsigned char *px = malloc((size_t)w * h * c);
  gradient(px, w, h, c);
  struct mem m = {NULL, 0};
  const int ok = jpeg ? stbi_write_jpg_to_func(to_mem, &m, w, h, c, px, 75)
                      : stbi_write_png_to_func(to_mem, &m, w, h, c, px, w * c);
  if (!ok) exit(1);
  put("fuzz_image", name, m.p, m.n);
  free(m.p);
  free(px);
}

static void pnm(const char *name, const char *magic, int w, int h, int c) {
  char head[64];
  const int hn = snprintf(head, sizeof head, "%s\n%d %d\n255\n", magic, w, h);
  const size_t n = (size_t)hn + (size_t)w * h * c;
  unsigned char *b = malloc(n);
  memcpy(b, head, (size_t)hn);
  gradient(b + hn, w, h, c);
  put("fuzz_image", name, b, n);
  free(b);
}

static void be32(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static void gz(const char *name, const unsigned char *data, size_t n) {
  z_stream z;
  memset(&z, 0, sizeof z);
  unsigned char out[4096];
  if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
  z.next_in = (Bytef *)(uintptr_t)data;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = sizeof out;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
  put("fuzz_image", name, out, sizeof out - z.avail_out);
  deflateEnd(&z);
}

static void idx(void) {
  enum { N = 3, R = 5, C = 4 };
  unsigned char img[16 + N * R * C], lab[8 + N];
  be32(img, 0x803);
  be32(img + 4, N);
  be32(img + 8, R);
  be32(img + 12, C);
  gradient(img + 16, C, R * N, 1);
  be32(lab, 0x801);
  be32(lab + 4, N);
  for (int i = 0; i < N; i++) lab[8 + i] = (unsigned char)i;
  put("fuzz_image", "images.idx3", img, sizeof img);
  put("fuzz_image", "labels.idx1", lab, sizeof lab);
  gz("images.idx3.gz", img, sizeof img);
  gz("labels.idx1.gz", lab, sizeof lab);
}

static void images(void) {
  image("gray_6x5.png", 6, 5, 1, false);
  image("rgb_7x3.png", 7, 3, 3, false);
  image("rgba_4x4.png", 4, 4, 4, false);
  image("gray_9x8.jpg", 9, 8, 1, true);
  image("rgb_16x10.jpg", 16, 10, 3, true);
  pnm("gray_5x3.pgm", "P5", 5, 3, 1);
  pnm("rgb_3x2.ppm", "P6", 3, 2, 3);
  idx();
}

/* ---- tokenizer texts: byte 0 picks vocab/flags (see fuzz_tokenizer.c) ---------- */

static void text(const char *name, unsigned char sel, const char *s) {
  const size_t n = strlen(s);
  unsigned char *b = malloc(n + 1);
  b[0] = sel;
  memcpy(b + 1, s, n);
  put("fuzz_tokenizer", name, b, n + 1);
  free(b);
}

static void texts(void) {
  for (unsigned char v = 0; v < 4; v++) {
    char name[32];
    snprintf(name, sizeof name, "plain_%u.txt", v);
    text(name, v, "And God said, Let there be light: and there was light.");
    snprintf(name, sizeof name, "bos_eos_%u.txt", v);
    text(name, (unsigned char)(v | 0x30), "Once upon a time, there was a little girl named Lily.");
    snprintf(name, sizeof name, "special_%u.txt", v);
    text(name, (unsigned char)(v | 0x40), "<s>Hello</s> <unk> <|endoftext|> world");
    snprintf(name, sizeof name, "unicode_%u.txt", v);
    text(name, v,
         "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xe2\x96\x81 12,345.67 don't I'll");
    snprintf(name, sizeof name, "invalid_%u.txt", v);
    text(name, (unsigned char)(v | 0x80),
         "bad \xff\xfe\xc3 \xe2\x96 \xf4\x90\x80\x80 \xed\xa0\x80 end   \t\n\n  spaces");
  }
}

/* ---- command lines: one argument per line (see fuzz_cli.c) ---------------------- */

static void cli(void) {
  put_str("fuzz_cli", "info.txt", "info\nm.gguf\n--kernels\n--image\n28\n--ctx\n64\n--threads\n2");
  put_str("fuzz_cli", "plan.txt",
          "plan\nm.gguf\n--json\n--image=224\n--ctx\n128\n--batch\n8\n--window\n16\n--sinks\n2\n--emit-header\nh.h");
  put_str("fuzz_cli", "classify.txt",
          "classify\nm.gguf\ncat.png\n--top\n3\n--json\n--isa\nscalar\n--arena-bytes\n4096");
  put_str("fuzz_cli", "accuracy.txt",
          "accuracy\nm.gguf\n--idx-images\nx.gz\n--idx-labels=y.gz\n--limit\n10\n--predictions\np.txt\n--json");
  put_str("fuzz_cli", "generate.txt",
          "generate\nm.gguf\n-p\nOnce upon\n-n\n16\n--temp\n0.7\n--top-k\n40\n--top-p\n0.9\n--repeat-penalty\n1.1\n"
          "--repeat-last-n\n64\n--seed\n5\n--no-bos\n--quiet\n--kv-f32\n--check-finite");
  put_str("fuzz_cli", "perplexity.txt", "perplexity\nm.gguf\nt.txt\n--max-tokens\n100\n--ctx=64\n--json");
  put_str("fuzz_cli", "bench.txt", "bench\nm.gguf\n--runs\n3\n--warmup\n1\n--prompt\n8\n--gen\n8\n--json");
  put_str("fuzz_cli", "bench_op.txt",
          "bench-op\ngemm\n--m\n8\n--k\n32\n--n\n16\n--dtype\nf16\n--runs\n3\n--xnnpack\n--size\n4x4\n--heads\n2\n"
          "--head-dim\n8\n--causal\n--tokens\n9");
  put_str("fuzz_cli", "quantize.txt", "quantize\nin.gguf\nout.gguf\nq4_k\n--all\n--threads\n2");
  put_str("fuzz_cli", "help.txt", "generate\n--help");
  put_str("fuzz_cli", "dashdash.txt", "classify\n--\n-x.png\n--threads=0");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  models();
  images();
  texts();
  cli();
  return 0;
}
