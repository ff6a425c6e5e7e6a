/* tools/firmware/semihost.c — see semihost.h. */
#include "semihost.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

enum {
  SYS_WRITE0 = 0x04,
  SYS_EXIT_EXTENDED = 0x20,
  ADP_STOPPED_APPLICATION_EXIT = 0x20026,
};

/* The M-profile semihosting trap: operation in r0, argument in r1, result in r0. */
static int semihost_call(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void spr_fw_puts(const char *s) {
  semihost_call(SYS_WRITE0, s);
}

void spr_fw_printf(const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  spr_fw_puts(buf);
}

void spr_fw_exit(int code) {
  /* SYS_EXIT_EXTENDED takes {reason, subcode}: A32/T32 SYS_EXIT has no code. */
  const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  for (;;) semihost_call(SYS_EXIT_EXTENDED, block);
}
