/* tools/firmware/heap.c — newlib's malloc for the test images (tests/unit
 * run under qemu): _sbrk hands out the RAM between .bss and the stack
 * (__heap_start..__heap_end from the linker script). Not linked into the
 * demo, which has no heap (noheap.c). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern uint8_t __heap_start[], __heap_end[];
void *_sbrk(ptrdiff_t incr);

void *_sbrk(ptrdiff_t incr) {
  static uint8_t *brk = __heap_start;
  if (incr < 0 || incr > __heap_end - brk) {
    errno = ENOMEM;
    return (void *)-1;
  }
  uint8_t *old = brk;
  brk += incr;
  return old;
}

/* newlib declares posix_memalign but does not implement it; the tests use it. */
#include <malloc.h>
int posix_memalign(void **out, size_t align, size_t bytes);
int posix_memalign(void **out, size_t align, size_t bytes) {
  if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
  void *p = memalign(align, bytes);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
