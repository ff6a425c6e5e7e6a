/* tools/firmware/syscalls.c — the newlib hooks a firmware image links:
 * stdout/stderr go to the semihosting console, there are no files, exit is
 * SYS_EXIT_EXTENDED. The heap hooks are in noheap.c (demo) or heap.c (tests). */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

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

int _write(int fd, const void *buf, size_t n) {
  if (fd != 1 && fd != 2) {
    errno = EBADF;
    return -1;
  }
  char chunk[129]; /* SYS_WRITE0 takes NUL-terminated text */
  const char *p = buf;
  for (size_t done = 0; done < n;) {
    size_t len = n - done < sizeof chunk - 1 ? n - done : sizeof chunk - 1;
    memcpy(chunk, p + done, len);
    chunk[len] = '\0';
    spr_fw_puts(chunk);
    done += len;
  }
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
