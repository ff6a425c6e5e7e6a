/* tools/firmware/semihost.h — Arm semihosting: console output and exit code
 * through the debugger (qemu -semihosting, or a debug probe: OpenOCD
 * `arm semihosting enable`, pyOCD, J-Link). On a board without a debugger
 * attached, BKPT 0xAB halts the core (or faults): replace these two
 * functions with a UART driver for a standalone image (docs/arm.md). */
#ifndef SPR_FW_SEMIHOST_H
#define SPR_FW_SEMIHOST_H

/* Writes a NUL-terminated string to the host console (SYS_WRITE0). */
void spr_fw_puts(const char *s);
/* printf-style through a 256-byte buffer (newlib-nano vsnprintf: no floats). */
void spr_fw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Ends the program with an exit code (SYS_EXIT_EXTENDED; qemu exits with it). */
__attribute__((noreturn)) void spr_fw_exit(int code);

#endif
