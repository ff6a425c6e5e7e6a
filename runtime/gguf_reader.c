/* runtime/gguf_reader.c — placeholder until the GGUF reader lands. */
#include <string.h>

#include "sparrow/gguf.h"

enum spr_status spr_gguf_parse(const void *blob, size_t size, struct spr_gguf *g, struct spr_error *err) {
  (void)blob; (void)size; (void)err;
  memset(g, 0, sizeof *g);
  return SPR_STATUS_UNSUPPORTED;
}
enum spr_status spr_gguf_find_tensor(const struct spr_gguf *g, const char *name, struct spr_gguf_tensor *t) {
  (void)g; (void)name; (void)t;
  return SPR_STATUS_NOT_FOUND;
}
