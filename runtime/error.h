/* runtime/error.h — status propagation and error messages for setup paths.
 *
 * SPR_CHECK(cond, status, fmt, ...) returns `status` from the enclosing
 * function after formatting the message into `err` (a `struct spr_error *`
 * that must be in scope, may be NULL). SPR_TRY(expr) returns the status of
 * expr when it is not OK. SPR_DASSERT checks our own invariants in debug
 * builds only; it is never used on input. */
#ifndef SPR_RUNTIME_ERROR_H
#define SPR_RUNTIME_ERROR_H

#include <assert.h>

#include "sparrow/types.h"

/* Records status + message in err (when non-NULL) and returns status. */
enum spr_status spr_error_set(struct spr_error *err, enum spr_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#if defined(SPR_NO_ERROR_STRINGS)
#define SPR_FAIL(status, ...) spr_error_set(err, (status), "")
#else
#define SPR_FAIL(status, ...) spr_error_set(err, (status), __VA_ARGS__)
#endif

#define SPR_CHECK(cond, status, ...)        \
  do {                                      \
    if (!(cond)) {                          \
      return SPR_FAIL((status), __VA_ARGS__); \
    }                                       \
  } while (0)

#define SPR_TRY(expr)                      \
  do {                                     \
    enum spr_status spr_try_s_ = (expr);   \
    if (spr_try_s_ != SPR_STATUS_OK) {     \
      return spr_try_s_;                   \
    }                                      \
  } while (0)

#define SPR_DASSERT(cond) assert(cond)

#endif
