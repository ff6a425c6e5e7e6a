/* tools/firmware/noheap.c — the demo has no heap.
 *
 * The library never calls malloc, but newlib-nano's vsnprintf keeps
 * references to _malloc_r/_realloc_r/_free_r for the buffers it grows (the
 * asprintf family), never used for snprintf into a caller buffer. Defining
 * them here keeps newlib's allocator out of the image, and any call would
 * fail cleanly (NULL); _sbrk refuses as well. */
#include <errno.h>
#include <stddef.h>

struct _reent;
void *_malloc_r(struct _reent *r, size_t n);
void *_realloc_r(struct _reent *r, void *p, size_t n);
void _free_r(struct _reent *r, void *p);
void *_sbrk(ptrdiff_t incr);

void *_malloc_r(struct _reent *r, size_t n) {
  (void)r, (void)n;
  return NULL;
}
void *_realloc_r(struct _reent *r, void *p, size_t n) {
  (void)r, (void)p, (void)n;
  return NULL;
}
void _free_r(struct _reent *r, void *p) {
  (void)r, (void)p;
}

void *_sbrk(ptrdiff_t incr) {
  (void)incr;
  errno = ENOMEM;
  return (void *)-1;
}
