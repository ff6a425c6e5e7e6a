/* tools/sparrow/cmd_classify.c — `sparrow classify [MODEL] IMAGE [--top K]`
 * and `sparrow accuracy MODEL --idx-images F --idx-labels F [--json]`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/time.h"
#include "sparrow/vision.h"
#include "tools/sparrow/cli.h"
#include "tools/sparrow/image.h"

static int ends_with(const char *s, const char *suffix) {
  const size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Opens a vision model and checks its single input/output. */
static int open_vision(const char *path, const struct cli_common *c, struct cli_session *cs,
                       struct spr_vision_info *vi) {
  struct spr_config cfg;
  cli_config(c, &cfg);
  const int open_rc = cli_open(path, &cfg, c->arena_bytes, cs);
  if (open_rc != 0) return open_rc;
  if (spr_vision_info(cs->model, vi) != SPR_STATUS_OK) {
    const int rc = cli_fail("%s is a %s model, not an image classifier", path, spr_model_arch(cs->model));
    cli_close(cs);
    return rc;
  }
  return 0;
}

/* Softmax in double over the logits; returns the arg-max. */
static uint32_t softmax(const float *logits, uint32_t n, double *prob) {
  uint32_t best = 0;
  for (uint32_t i = 1; i < n; i++) best = logits[i] > logits[best] ? i : best;
  double sum = 0;
  for (uint32_t i = 0; i < n; i++) sum += prob[i] = exp((double)logits[i] - (double)logits[best]);
  for (uint32_t i = 0; i < n; i++) prob[i] /= sum;
  return best;
}

int cmd_classify(int argc, char **argv) {
  int top = 5;
  bool json = false;
  const struct cli_opt opts[] = {
      {"top", CLI_INT, &top, "K", "print the K most likely classes (default 5)"},
      {"json", CLI_FLAG, &json, NULL, "print JSON"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[2];
  int n_pos;
  const int r = cli_parse(argc, argv, "sparrow classify [MODEL] IMAGE [--top K]",
                          "Classifies a PNG, JPEG or PPM/PGM image. The image is converted to the model's channel\n"
                          "count, resized to its input size (bilinear) and normalized with the mean/std in the\n"
                          "model's metadata. Without MODEL the bundled Fashion-MNIST ViT is used.",
                          opts, &c, pos, 1, 2, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  const char *model = n_pos == 2 ? pos[0] : cli_default_vision_model();
  const char *image = pos[n_pos - 1];
  if (n_pos == 1 && ends_with(image, ".gguf")) return cli_fail("missing IMAGE (usage: sparrow classify [MODEL] IMAGE)");
  if (top < 1) return cli_fail("--top must be at least 1");

  struct cli_session cs;
  struct spr_vision_info vi;
  const int vrc = open_vision(model, &c, &cs, &vi);
  if (vrc != 0) return vrc;
  struct cli_image img;
  if (cli_image_load(image, (int)vi.channels, &img) != 0) {
    cli_close(&cs);
    return 1;
  }
  struct spr_tensor_view in, out;
  spr_session_input(cs.session, 0, &in);
  struct spr_error err = {SPR_STATUS_OK, ""};
  enum spr_status s = spr_vision_preprocess(cs.model, img.pixels, img.w, img.h, img.channels, in.data,
                                            in.nbytes / sizeof(float), &err);
  int rc = 0;
  if (s != SPR_STATUS_OK) {
    rc = cli_fail_status(s, &err, image);
  } else {
    const uint64_t t0 = spr_time_ns();
    s = spr_session_run(cs.session);
    const double ms = (double)(spr_time_ns() - t0) * 1e-6;
    spr_session_output(cs.session, 0, &out);
    const uint32_t n = (uint32_t)(out.nbytes / sizeof(float));
    double *prob = malloc(n * sizeof(double));
    uint32_t *order = malloc(n * sizeof(uint32_t));
    softmax(out.data, n, prob);
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    const uint32_t k = (uint32_t)top < n ? (uint32_t)top : n;
    for (uint32_t i = 0; i < k; i++) { /* partial selection sort: k is small */
      for (uint32_t j = i + 1; j < n; j++) {
        if (prob[order[j]] > prob[order[i]]) {
          const uint32_t t = order[i];
          order[i] = order[j];
          order[j] = t;
        }
      }
    }
    char label[128];
    if (json) {
      printf("{\"model\": ");
      cli_json_str(stdout, model);
      printf(", \"image\": ");
      cli_json_str(stdout, image);
      printf(", \"ms\": %.4f, \"top\": [", ms);
      for (uint32_t i = 0; i < k; i++) {
        spr_vision_label(cs.model, order[i], label, sizeof label);
        printf("%s{\"class\": %u, \"label\": ", i ? ", " : "", order[i]);
        cli_json_str(stdout, label);
        printf(", \"p\": %.6f}", prob[order[i]]);
      }
      printf("]}\n");
    } else {
      printf("model: %s (%s, %ux%ux%u, %u classes)\nimage: %s (%dx%d)\n", model, spr_model_arch(cs.model),
             vi.image_size, vi.image_size, vi.channels, vi.n_classes, image, img.w, img.h);
      for (uint32_t i = 0; i < k; i++) {
        spr_vision_label(cs.model, order[i], label, sizeof label);
        printf("  %u. %-24s %6.2f%%\n", i + 1, label, 100.0 * prob[order[i]]);
      }
      printf("inference: %.3f ms, arena %zu bytes, %d thread(s)\n", ms, cs.plan.arena_bytes, c.threads);
    }
    free(prob);
    free(order);
  }
  cli_image_free(&img);
  cli_close(&cs);
  return rc;
}

int cmd_accuracy(int argc, char **argv) {
  const char *images = NULL, *labels = NULL, *preds = NULL;
  bool json = false;
  int limit = 0;
  const struct cli_opt opts[] = {
      {"idx-images", CLI_STR, &images, "FILE", "IDX image file (raw or .gz), u8 n x rows x cols"},
      {"idx-labels", CLI_STR, &labels, "FILE", "IDX label file (raw or .gz)"},
      {"limit", CLI_INT, &limit, "N", "only the first N images"},
      {"predictions", CLI_STR, &preds, "FILE", "write the predicted class of every image, one per line"},
      {"json", CLI_FLAG, &json, NULL, "print JSON (field \"top1\" in percent)"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[1];
  int n_pos;
  const int r = cli_parse(argc, argv, "sparrow accuracy MODEL --idx-images FILE --idx-labels FILE [--json]",
                          "Top-1 accuracy of an image classifier on an IDX data set (MNIST-style: gray images,\n"
                          "resized to the model's input like classify does). Prints `top-1: 91.23%`.",
                          opts, &c, pos, 1, 1, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  if (images == NULL || labels == NULL) return cli_fail("accuracy needs --idx-images and --idx-labels");
  struct cli_idx xi, yi;
  if (cli_idx_load(images, 1, &xi) != 0) return 1;
  if (cli_idx_load(labels, 0, &yi) != 0) {
    cli_idx_free(&xi);
    return 1;
  }
  int rc = 0;
  struct cli_session cs;
  struct spr_vision_info vi;
  FILE *pf = NULL;
  if (xi.n != yi.n) {
    rc = cli_fail("%u images but %u labels", xi.n, yi.n);
  } else if ((rc = open_vision(pos[0], &c, &cs, &vi)) != 0) {
    /* error printed */
  } else if (vi.channels != 1) {
    rc = cli_fail("IDX images are gray; %s takes %u channels", pos[0], vi.channels);
    cli_close(&cs);
  } else if (preds != NULL && (pf = fopen(preds, "w")) == NULL) {
    rc = cli_fail("cannot write %s", preds);
    cli_close(&cs);
  } else {
    const uint32_t n = limit > 0 && (uint32_t)limit < xi.n ? (uint32_t)limit : xi.n;
    const size_t px = (size_t)xi.rows * xi.cols;
    struct spr_tensor_view in, out;
    spr_session_input(cs.session, 0, &in);
    spr_session_output(cs.session, 0, &out);
    uint32_t correct = 0;
    const uint64_t t0 = spr_time_ns();
    for (uint32_t i = 0; i < n && rc == 0; i++) {
      struct spr_error err = {SPR_STATUS_OK, ""};
      const enum spr_status s = spr_vision_preprocess(cs.model, xi.items + i * px, (int)xi.cols, (int)xi.rows, 1,
                                                      in.data, in.nbytes / sizeof(float), &err);
      if (s != SPR_STATUS_OK) {
        rc = cli_fail_status(s, &err, images);
        break;
      }
      spr_session_run(cs.session);
      const float *lg = out.data;
      uint32_t best = 0;
      for (uint32_t k = 1; k < vi.n_classes; k++) best = lg[k] > lg[best] ? k : best;
      correct += best == yi.items[i];
      if (pf != NULL) fprintf(pf, "%u\n", best);
    }
    const double secs = (double)(spr_time_ns() - t0) * 1e-9;
    if (rc == 0) {
      const double top1 = 100.0 * correct / (n ? n : 1);
      if (json) {
        printf("{\"model\": ");
        cli_json_str(stdout, pos[0]);
        printf(", \"images\": %u, \"correct\": %u, \"top1\": %.4f, \"seconds\": %.3f}\n", n, correct, top1, secs);
      } else {
        printf("top-1: %.2f%% (%u of %u images, %.3f ms per image)\n", top1, correct, n, 1e3 * secs / (n ? n : 1));
      }
    }
    if (pf != NULL && fclose(pf) != 0 && rc == 0) rc = cli_fail("cannot write %s", preds);
    cli_close(&cs);
  }
  cli_idx_free(&xi);
  cli_idx_free(&yi);
  return rc;
}
