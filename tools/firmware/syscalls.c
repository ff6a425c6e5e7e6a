/* tools/firmware/syscalls.c — the few newlib hooks a firmware image links.
 *
 * No heap. The library never calls malloc, but newlib-nano's vsnprintf keeps
 * references to _malloc_r/_realloc_r/_free_r for the buffers it grows (the
 * asprintf family), never used for snprintf into a caller buffer. Defining
 * them here keeps newlib's allocator out of the image, and any call would
 * fail cleanly (NULL); _sbrk refuses as well. */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>

void *_sbrk(ptrdiff_t incr);
int _write(int fd, const void *buf, size_t n);
int _read(int fd, void *buf, size_t n);
int _close(int fd);
int _lseek(int fd, int off, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _getpid(void);
int _kill(int pid, int sig);
void _exit(int code);

#include "semihost.h"

struct _reent;
void *_malloc_r(struct _reent *r, size_t n);
void *_realloc_r(struct _reent *r, void *p, size_t n);
void _free_r(struct _reent *r, void *p);

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
int _write(int fd, const void *buf, size_t n) {
  (void)fd, (void)buf;
  return (int)n;
}
int _read(int fd, void *buf, size_t n) {
  (void)fd, (void)buf, (void)n;
  return 0;
}
int _close(int fd) {
  (void)fd;
  return -1;
}
int _lseek(int fd, int off, int whence) {
  (void)fd, (void)off, (void)whence;
  return 0;
}
int _fstat(int fd, struct stat *st) {
  (void)fd;
  st->st_mode = S_IFCHR;
  return 0;
}
int _isatty(int fd) {
  (void)fd;
  return 1;
}
int _getpid(void) {
  return 1;
}
int _kill(int pid, int sig) {
  (void)pid, (void)sig;
  errno = EINVAL;
  return -1;
}
void _exit(int code) {
  spr_fw_exit(code);
}
