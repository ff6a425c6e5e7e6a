/* platform/blob.c — memory-mapped model files (POSIX). */
#include "platform/blob.h"

#include <string.h>

#include "runtime/error.h"

#if !SPR_FIRMWARE
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum spr_status spr_blob_map_file(const char *path, struct spr_blob *out, struct spr_error *err) {
  memset(out, 0, sizeof *out);
  SPR_CHECK(path != NULL, SPR_STATUS_INVALID_ARGUMENT, "no model path given");
  const int fd = open(path, O_RDONLY);
  SPR_CHECK(fd >= 0, SPR_STATUS_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    close(fd);
    return SPR_FAIL(SPR_STATUS_IO, "cannot stat %s: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
    close(fd);
    return SPR_FAIL(SPR_STATUS_IO, "%s is %s", path, S_ISREG(st.st_mode) ? "empty" : "not a regular file");
  }
  if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
    close(fd);
    return SPR_FAIL(SPR_STATUS_OVERFLOW, "%s is too large to map", path);
  }
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int e = errno;
  close(fd);
  SPR_CHECK(p != MAP_FAILED, SPR_STATUS_MMAP, "cannot map %s: %s", path, strerror(e));
  out->data = p;
  out->size = (size_t)st.st_size;
  out->mapped = 1;
  return SPR_STATUS_OK;
}

void spr_blob_unmap(struct spr_blob *b) {
  if (b != NULL && b->mapped && b->data != NULL) munmap((void *)b->data, b->size);
  if (b != NULL) memset(b, 0, sizeof *b);
}

#else

enum spr_status spr_blob_map_file(const char *path, struct spr_blob *out, struct spr_error *err) {
  (void)path;
  memset(out, 0, sizeof *out);
  return SPR_FAIL(SPR_STATUS_UNSUPPORTED, "no file system in firmware builds: load a blob");
}

void spr_blob_unmap(struct spr_blob *b) { (void)b; }
#endif
