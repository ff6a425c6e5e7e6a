/* tools/firmware/startup.c — vector table and reset handler for the Cortex-M
 * demo (M7 and M55; the linker script places .vectors where the core reads
 * its initial stack pointer and reset vector: VTOR's reset value).
 *
 * Reset: enable the FPU (and Helium on the M55: same CPACR bits) before any
 * floating-point instruction, copy .data from flash, zero .bss, run main and
 * report its return value as the exit code. Faults print the fault status
 * registers and exit with code 3. No interrupts are used. */
#include <stdint.h>

#include "semihost.h"

/* From the linker script. */
extern uint32_t __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];

int main(void);
void spr_fw_reset(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* Called with the exception's stacked frame (r0-r3, r12, lr, pc, xpsr). */
__attribute__((noreturn, used)) static void fault(const uint32_t *frame, const char *what) {
  spr_fw_printf("\n%s at pc=0x%08lx (lr=0x%08lx): CFSR=0x%08lx HFSR=0x%08lx MMFAR=0x%08lx BFAR=0x%08lx\n", what,
                (unsigned long)frame[6], (unsigned long)frame[5], (unsigned long)SCB_CFSR, (unsigned long)SCB_HFSR,
                (unsigned long)SCB_MMFAR, (unsigned long)SCB_BFAR);
  spr_fw_exit(3);
}

/* The handlers pass the main stack pointer (the frame; no PSP is used) and their name. */
#define FAULT_HANDLER(fn, text)                 \
  static const char fn##_name[] = text;         \
  __attribute__((naked)) static void fn(void) { \
    __asm__ volatile(                           \
        "mrs r0, msp\n\t"                       \
        "ldr r1, =%c0\n\t"                      \
        "b fault\n\t" ::"i"(fn##_name));        \
  }

FAULT_HANDLER(on_nmi, "NMI")
FAULT_HANDLER(on_hard_fault, "HardFault")
FAULT_HANDLER(on_mem_manage, "MemManage fault")
FAULT_HANDLER(on_bus_fault, "BusFault")
FAULT_HANDLER(on_usage_fault, "UsageFault")
FAULT_HANDLER(on_unexpected, "unexpected exception")

typedef void (*spr_fw_vector)(void);

/* The 16 system exception entries; no device interrupt is enabled. */
__attribute__((section(".vectors"), used)) const spr_fw_vector spr_fw_vectors[16] = {
    (spr_fw_vector)(uintptr_t)__stack_top, /* initial main stack pointer */
    spr_fw_reset,
    on_nmi,
    on_hard_fault,
    on_mem_manage,
    on_bus_fault,
    on_usage_fault,
    on_unexpected, /* SecureFault (Armv8-M) */
    0,
    0,
    0,
    on_unexpected, /* SVCall */
    on_unexpected, /* DebugMonitor */
    0,
    on_unexpected, /* PendSV */
    on_unexpected, /* SysTick */
};

void spr_fw_reset(void) {
  /* CP10 + CP11 full access: FPU (and MVE) instructions before anything else. */
  SCB_CPACR |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
  for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
  spr_fw_exit(main());
}
