/* runtime/status.c — names for status codes and the error formatter. */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "runtime/error.h"
#include "sparrow/status.h"

const char *spr_status_name(enum spr_status s) {
  switch (s) {
#define N(x)             \
  case SPR_STATUS_##x: \
    return #x;
    N(OK)
    N(INVALID_ARGUMENT)
    N(UNSUPPORTED)
    N(NOT_FOUND)
    N(MISALIGNED)
    N(BAD_INPUT)
    N(BAD_MAGIC)
    N(BAD_VERSION)
    N(TRUNCATED)
    N(BAD_STRING)
    N(BAD_KV_TYPE)
    N(BAD_DIMS)
    N(BAD_TENSOR_TYPE)
    N(BAD_OFFSET)
    N(BAD_ALIGNMENT)
    N(OVERFLOW)
    N(BAD_SHAPE)
    N(MISSING_KEY)
    N(MISSING_TENSOR)
    N(UNSUPPORTED_ARCH)
    N(BAD_METADATA)
    N(DUPLICATE)
    N(BAD_COUNT)
    N(NOT_FINITE)
    N(ARENA_TOO_SMALL)
    N(OUT_OF_MEMORY)
    N(CAPACITY)
    N(IO)
    N(MMAP)
    N(THREAD)
    N(ISA)
#undef N
  }
  return "UNKNOWN_STATUS";
}

const char *spr_status_describe(enum spr_status s) {
  if (s == SPR_STATUS_OK) return "success";
  if (s >= 100 && s < 200) return "invalid request";
  if (s >= 200 && s < 300) return "malformed or unsupported model file";
  if (s >= 300 && s < 400) return "not enough memory";
  if (s >= 400 && s < 500) return "platform failure";
  return "unknown status";
}

#if !defined(SPR_NO_ERROR_STRINGS) && defined(_NEWLIB_VERSION) && SIZE_MAX == UINT_MAX
/* newlib as built for bare metal (Debian's arm-none-eabi) has no C99 'z'
 * length modifier; where size_t is unsigned int, "%zu" means "%u". */
#define SPR_STRIP_Z 1
static const char *strip_z(const char *fmt, char *buf, size_t len) {
  size_t o = 0;
  for (const char *p = fmt; *p != '\0' && o + 1 < len; p++) {
    if (p[0] == 'z' && o > 0) {
      size_t q = o; /* drop the z of a conversion: %[flags][width][.prec]z */
      while (q > 0 && strchr("0123456789.-+ #", buf[q - 1]) != NULL) q--;
      if (q > 0 && buf[q - 1] == '%' && (q < 2 || buf[q - 2] != '%')) continue;
    }
    buf[o++] = *p;
  }
  buf[o] = '\0';
  return buf;
}
#endif

enum spr_status spr_error_set(struct spr_error *err, enum spr_status status, const char *fmt, ...) {
  if (err != NULL) {
    err->status = status;
    err->msg[0] = '\0';
#if !defined(SPR_NO_ERROR_STRINGS)
    va_list ap;
    va_start(ap, fmt);
#if SPR_STRIP_Z
    char plain[256];
    fmt = strip_z(fmt, plain, sizeof plain);
#endif
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
#else
    (void)fmt;
#endif
  }
  return status;
}
