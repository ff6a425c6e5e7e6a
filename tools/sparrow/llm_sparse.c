/* tools/sparrow/llm_sparse.c — `--sparse-ffn core:BETA[,alpha=A][,layers=F-L][,reselect=sentence][,compact]`
 * and the lines the LLM commands print about it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/sparrow/llm_cli.h"

static int parse_float(const char *s, size_t len, float *out) {
  char buf[64];
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *end = NULL;
  const float v = strtof(buf, &end);
  if (end == buf || *end != '\0') return -1;
  *out = v;
  return 0;
}

static int parse_int(const char *s, size_t len, int *out) {
  char buf[32];
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *end = NULL;
  const long v = strtol(buf, &end, 10);
  if (end == buf || *end != '\0' || v < 0 || v > INT_MAX) return -1;
  *out = (int)v;
  return 0;
}

int cli_sparse_ffn_parse(const char *spec, struct spr_config *cfg) {
  if (spec == NULL) return 0;
  if (strcmp(spec, "off") == 0 || strcmp(spec, "dense") == 0) {
    cfg->sparse_ffn_beta = 0.0f;
    return 0;
  }
  if (strncmp(spec, "core", 4) != 0 || (spec[4] != '\0' && spec[4] != ':'))
    return cli_fail(
        "--sparse-ffn '%s': expected core[:BETA][,alpha=A][,layers=FIRST-LAST][,reselect=sentence][,compact]", spec);
  cfg->sparse_ffn_beta = 0.4f;
  const char *p = spec[4] == ':' ? spec + 5 : spec + 4;
  bool first_item = true;
  while (*p != '\0') {
    const char *end = strchr(p, ',');
    const size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (eq == NULL && len == 7 && strncmp(p, "compact", 7) == 0) {
      cfg->sparse_ffn_compact = 1;
    } else if (eq == NULL) {
      if (!first_item || parse_float(p, len, &cfg->sparse_ffn_beta) != 0 || !(cfg->sparse_ffn_beta > 0.0f) ||
          cfg->sparse_ffn_beta > 1.0f)
        return cli_fail("--sparse-ffn: '%.*s' is not a fraction of neurons to keep in (0, 1]", (int)len, p);
    } else {
      const size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
      const char *v = eq + 1;
      if (klen == 5 && strncmp(p, "alpha", 5) == 0) {
        if (parse_float(v, vlen, &cfg->sparse_ffn_alpha) != 0 || !(cfg->sparse_ffn_alpha > 0.0f) ||
            cfg->sparse_ffn_alpha > 1.0f)
          return cli_fail("--sparse-ffn: alpha '%.*s' must be in (0, 1]", (int)vlen, v);
      } else if (klen == 6 && strncmp(p, "layers", 6) == 0) {
        const char *dash = memchr(v, '-', vlen);
        if (vlen == 3 && strncmp(v, "all", 3) == 0) {
          cfg->sparse_ffn_first = 0;
          cfg->sparse_ffn_last = INT_MAX;
        } else if (dash == NULL || parse_int(v, (size_t)(dash - v), &cfg->sparse_ffn_first) != 0 ||
                   parse_int(dash + 1, vlen - (size_t)(dash - v) - 1, &cfg->sparse_ffn_last) != 0) {
          return cli_fail("--sparse-ffn: layers '%.*s' must be FIRST-LAST (0-based, inclusive) or all", (int)vlen, v);
        }
      } else if (klen == 8 && strncmp(p, "reselect", 8) == 0) {
        if (vlen == 8 && strncmp(v, "sentence", 8) == 0)
          cfg->sparse_ffn_reselect = 1;
        else if (vlen == 4 && strncmp(v, "none", 4) == 0)
          cfg->sparse_ffn_reselect = 0;
        else
          return cli_fail("--sparse-ffn: reselect '%.*s' must be sentence or none", (int)vlen, v);
      } else {
        return cli_fail("--sparse-ffn: unknown setting '%.*s' (alpha, layers, reselect, compact)", (int)klen, p);
      }
    }
    first_item = false;
    p = end != NULL ? end + 1 : p + len;
  }
  return 0;
}

size_t cli_compact_bytes(const struct spr_model *m, const struct spr_config *cfg, const struct spr_plan *planned) {
  if (!cfg->sparse_ffn_compact) return 0;
  struct spr_config plain = *cfg;
  plain.sparse_ffn_compact = 0;
  struct spr_plan b;
  struct spr_error err;
  if (spr_plan(m, &plain, &b, &err) != SPR_STATUS_OK) return 0;
  return planned->arena_bytes > b.arena_bytes ? planned->arena_bytes - b.arena_bytes : 0;
}

void cli_sparse_ffn_report(const struct cli_session *cs, const struct spr_config *cfg, FILE *f) {
  if (!(cfg->sparse_ffn_beta > 0.0f)) return;
  struct spr_llm_info info;
  int first = -1, last = -1;
  uint32_t n_core = 0;
  struct spr_llm_traffic tr;
  if (spr_llm_info(cs->model, &info) != SPR_STATUS_OK ||
      spr_llm_sparse_layers(cs->model, cfg, &first, &last, &n_core) != SPR_STATUS_OK ||
      spr_llm_decode_traffic(cs->model, cfg, &tr) != SPR_STATUS_OK)
    return;
  fprintf(f,
          "sparse FFN: layers %d-%d of %u keep %u of %u neurons (beta %g, alpha %g%s); decode reads %.1f MB/token, "
          "dense %.1f MB\n",
          first, last, info.n_layer, n_core, info.n_ff, (double)cfg->sparse_ffn_beta,
          cfg->sparse_ffn_alpha > 0 ? (double)cfg->sparse_ffn_alpha : 0.2,
          cfg->sparse_ffn_reselect ? ", reselect per sentence" : "", tr.sparse / 1e6, tr.dense / 1e6);
  if (cfg->sparse_ffn_compact)
    fprintf(f, "compact: the core bundles are copied once per selection into %.1f MB of arena\n",
            (double)cli_compact_bytes(cs->model, cfg, &cs->plan) / 1e6);
  if (tr.row_major_down > 0)
    fprintf(
        f,
        "ffn_down is row-major: sparse decode reads %.1f MB/token instead of %.1f (sparrow quantize --sparse-layout)\n",
        tr.sparse / 1e6, tr.sparse_down_t / 1e6);
}
