/* platform/blob.h — read-only byte sources for model files.
 *
 * Hosted builds map the file (mmap, read-only, private). Where mmap is not
 * available the firmware path passes a const blob in flash directly to
 * spr_model_load_blob and never uses this header. */
#ifndef SPR_PLATFORM_BLOB_H
#define SPR_PLATFORM_BLOB_H

#include <stddef.h>

#include "sparrow/types.h"

struct spr_blob {
  const void *data;
  size_t size;
  int mapped; /* 1 when data must be unmapped */
};

/* Maps `path`. IO when it cannot be opened/stat'ed (or is empty / not a
 * regular file), MMAP when mapping fails. */
enum spr_status spr_blob_map_file(const char *path, struct spr_blob *out, struct spr_error *err);
void spr_blob_unmap(struct spr_blob *b);

#endif
