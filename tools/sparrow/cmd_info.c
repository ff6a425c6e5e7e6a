/* tools/sparrow/cmd_info.c — `sparrow info MODEL [--kernels]`. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/sparrow/cli.h"

static void print_scalar(const struct spr_gguf_kv *kv) {
  switch (kv->type) {
    case SPR_GGUF_U8:
    case SPR_GGUF_U16:
    case SPR_GGUF_U32:
    case SPR_GGUF_U64:
      printf("%" PRIu64, kv->val.u);
      break;
    case SPR_GGUF_I8:
    case SPR_GGUF_I16:
    case SPR_GGUF_I32:
    case SPR_GGUF_I64:
      printf("%" PRId64, kv->val.i);
      break;
    case SPR_GGUF_F32:
    case SPR_GGUF_F64:
      printf("%g", kv->val.f);
      break;
    case SPR_GGUF_BOOL:
      printf("%s", kv->val.b ? "true" : "false");
      break;
    case SPR_GGUF_STRING:
      printf("\"%.*s\"", (int)(kv->val.str.len > 80 ? 80 : kv->val.str.len), kv->val.str.ptr);
      if (kv->val.str.len > 80) printf("...");
      break;
    case SPR_GGUF_ARRAY:
      break;
  }
}

static void print_array(const struct spr_gguf_kv *kv) {
  printf("[%" PRIu64 " ", kv->arr_n);
  const uint64_t show = kv->arr_n < 6 ? kv->arr_n : 6;
  if (kv->arr_type == SPR_GGUF_STRING) {
    printf("strings:");
    size_t cur = 0;
    for (uint64_t i = 0; i < show; i++) {
      struct spr_gguf_str s;
      if (spr_gguf_arr_next_str(kv, &cur, &s) != SPR_STATUS_OK) break;
      printf(" \"%.*s\"", (int)(s.len > 24 ? 24 : s.len), s.ptr);
    }
  } else if (kv->arr_type == SPR_GGUF_ARRAY) {
    printf("arrays");
  } else {
    printf("numbers:");
    for (uint64_t i = 0; i < show; i++) {
      double v;
      if (spr_gguf_arr_get_f64(kv, i, &v) != SPR_STATUS_OK) break;
      printf(" %g", v);
    }
  }
  printf("%s]", kv->arr_n > show ? " ..." : "");
}

static void print_shape(uint32_t n_dims, const int64_t *ne) {
  char buf[96];
  size_t used = 0;
  for (uint32_t d = 0; d < n_dims && used < sizeof buf; d++)
    used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%" PRId64, d ? "," : "", ne[d]);
  printf("{%-*s}", 18, buf);
}

/* ---- the per-type summary of the tensor table ------------------------------------------ */

/* Tensors grouped by type and name pattern: every dot-separated component made
 * of digits only becomes "*" (blk.3.ffn_up.weight -> blk.*.ffn_up.weight). */
struct tgroup {
  enum spr_dtype type;
  uint32_t count;
  char pattern[SPR_GGUF_MAX_NAME + 1];
};

static void name_pattern(struct spr_gguf_str name, char *out) {
  size_t o = 0;
  for (uint64_t i = 0; i < name.len;) {
    uint64_t e = i;
    while (e < name.len && name.ptr[e] != '.') e++;
    bool digits = e > i;
    for (uint64_t k = i; k < e; k++) digits &= isdigit((unsigned char)name.ptr[k]) != 0;
    if (digits) {
      out[o++] = '*';
    } else {
      memcpy(out + o, name.ptr + i, (size_t)(e - i));
      o += (size_t)(e - i);
    }
    if (e < name.len) out[o++] = '.';
    i = e + 1;
  }
  out[o] = '\0';
}

/* "types:" lines: per type, the tensor count and bytes, then its name
 * patterns (xN when a pattern covers N tensors), so a quantized model shows
 * at a glance which layers were converted and which were kept. */
static void print_type_summary(const struct spr_gguf *g) {
  struct tgroup *gr = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *gr);
  if (gr == NULL) return;
  size_t n_gr = 0;
  enum { SLOTS = 32 }; /* type ids are < 32 (the reader accepts only enum spr_dtype's) */
  uint64_t count[SLOTS] = {0}, bytes[SLOTS] = {0}, n_quant = 0, total = 0;
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    if (spr_gguf_tensor_at(g, i, &t) != SPR_STATUS_OK || (unsigned)t.type >= SLOTS) break;
    count[t.type]++;
    bytes[t.type] += t.nbytes;
    total += t.nbytes;
    if (spr_dtype_block_elems(t.type) > 1) n_quant++;
    char pat[SPR_GGUF_MAX_NAME + 1];
    name_pattern(t.name, pat);
    size_t k = 0;
    while (k < n_gr && !(gr[k].type == t.type && strcmp(gr[k].pattern, pat) == 0)) k++;
    if (k == n_gr) {
      gr[k].type = t.type;
      memcpy(gr[k].pattern, pat, strlen(pat) + 1);
      n_gr++;
    }
    gr[k].count++;
  }
  printf("\ntypes: %" PRIu64 " of %" PRIu64 " tensors quantized\n", n_quant, g->n_tensors);
  for (int ty = 0; ty < SLOTS; ty++) {
    if (count[ty] == 0) continue;
    printf("  %-5s %4" PRIu64 " tensors %12" PRIu64 " bytes (%5.1f %%):", spr_dtype_name((enum spr_dtype)ty), count[ty],
           bytes[ty], total ? 100.0 * (double)bytes[ty] / (double)total : 0.0);
    size_t col = 50;
    for (size_t k = 0; k < n_gr; k++) {
      if ((int)gr[k].type != ty) continue;
      char item[SPR_GGUF_MAX_NAME + 16];
      const int len = gr[k].count > 1 ? snprintf(item, sizeof item, " %s x%u", gr[k].pattern, gr[k].count)
                                      : snprintf(item, sizeof item, " %s", gr[k].pattern);
      if (col + (size_t)len > 110) {
        printf("\n       ");
        col = 7;
      }
      printf("%s", item);
      col += (size_t)len;
    }
    printf("\n");
  }
  free(gr);
}

int cmd_info(int argc, char **argv) {
  bool kernels = false;
  int image = 0, ctx = 0;
  const struct cli_opt opts[] = {
      {"kernels", CLI_FLAG, &kernels, NULL, "also build the graph and list each node's op and chosen ukernel"},
      {"image", CLI_INT, &image, "N", "vision: input side for --kernels (default: the model's)"},
      {"ctx", CLI_INT, &ctx, "N", "LLM: context length for --kernels"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[1];
  int n_pos;
  const int r = cli_parse(argc, argv, "sparrow info MODEL [--kernels]",
                          "Prints the model's metadata and tensor table, the CPU features found, and with --kernels\n"
                          "the ukernel every graph node will use on this CPU (after --isa and --threads).",
                          opts, &c, pos, 1, 1, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;

  struct spr_error err = {SPR_STATUS_OK, ""};
  struct spr_model *m = NULL;
  enum spr_status s = cli_load(pos[0], &m, &err);
  if (s != SPR_STATUS_OK) return cli_fail_status(s, &err, pos[0]);
  const struct spr_gguf *g = spr_model_gguf(m);
  char isa[128];
  spr_isa_mask_format(spr_cpu_isa(), isa, sizeof isa);
  printf("model:        %s\narchitecture: %s\n", pos[0], spr_model_arch(m));
  printf("gguf:         v%u, %" PRIu64 " metadata keys, %" PRIu64 " tensors, alignment %zu\n", g->version, g->n_kv,
         g->n_tensors, g->alignment);
  printf("weights:      %zu bytes (%.2f MiB, in the mapping)\n", spr_model_weights_bytes(m),
         (double)spr_model_weights_bytes(m) / 1048576.0);
  printf("cpu:          %s\n", isa);

  printf("\nmetadata:\n");
  for (uint64_t i = 0; i < g->n_kv; i++) {
    struct spr_gguf_kv kv;
    if (spr_gguf_kv_at(g, i, &kv) != SPR_STATUS_OK) break;
    printf("  %-44.*s = ", (int)kv.key.len, kv.key.ptr);
    if (kv.type == SPR_GGUF_ARRAY)
      print_array(&kv);
    else
      print_scalar(&kv);
    printf("\n");
  }
  printf("\ntensors:\n  %-40s %-5s %-20s %12s\n", "name", "type", "shape (ne)", "bytes");
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    struct spr_gguf_tensor t;
    if (spr_gguf_tensor_at(g, i, &t) != SPR_STATUS_OK) break;
    printf("  %-40.*s %-5s ", (int)t.name.len, t.name.ptr, spr_dtype_name(t.type));
    print_shape(t.n_dims, t.ne);
    printf(" %12zu\n", t.nbytes);
  }
  print_type_summary(g);
  spr_model_free(m);
  if (!kernels) return 0;

  struct spr_config cfg;
  cli_config(&c, &cfg);
  cfg.image_size = image;
  cfg.ctx = ctx;
  struct cli_session cs;
  if (cli_open(pos[0], &cfg, c.arena_bytes, &cs) != 0) return 1;
  const uint32_t n = spr_session_n_nodes(cs.session);
  printf("\ngraph: %u nodes, %d thread(s), isa %s\n  %4s %-12s %-40s %-28s %-20s %10s\n", n, cfg.threads,
         c.isa ? c.isa : "best", "#", "op", "ukernel", "output", "shape", "MFLOP");
  for (uint32_t i = 0; i < n; i++) {
    struct spr_node_info info;
    spr_session_node(cs.session, i, &info);
    printf("  %4u %-12s %-40s %-28s ", i, info.op, info.ukernel, info.name);
    print_shape(info.n_dims, info.ne);
    printf(" %10.3f\n", (double)info.flops / 1e6);
  }
  cli_close(&cs);
  return 0;
}
