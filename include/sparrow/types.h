/* sparrow/types.h — value types shared by every public header. */
#ifndef SPARROW_TYPES_H
#define SPARROW_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "sparrow/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tensor element types. The numeric values are ggml's type ids so that a
 * GGUF tensor's type field maps to this enum without a table. Only the
 * types listed here are accepted by the loader. */
enum spr_dtype {
  SPR_DTYPE_F32 = 0,
  SPR_DTYPE_F16 = 1,
  SPR_DTYPE_Q4_0 = 2,
  SPR_DTYPE_Q8_0 = 8,
  SPR_DTYPE_Q4_K = 12,
  SPR_DTYPE_Q6_K = 14,
  SPR_DTYPE_I8 = 24,
  SPR_DTYPE_I16 = 25,
  SPR_DTYPE_I32 = 26,
};

/* Elements per block (1 for plain types) and bytes per block; 0 bytes for an
 * id that is not a supported type. */
size_t spr_dtype_block_elems(enum spr_dtype t);
size_t spr_dtype_block_bytes(enum spr_dtype t);
/* "f32", "q4_0", ...; "?" for an unknown id. */
const char *spr_dtype_name(enum spr_dtype t);

/* Instruction-set features, as a bit mask. A ukernel is usable when every
 * bit it needs is present in (detected features & allowed mask). The x86
 * bits are only set when the OS saves the register state (XGETBV); the ARM
 * bits come from HWCAP on Linux. */
enum spr_isa {
  SPR_ISA_X86_AVX2 = 1u << 0,        /* AVX2 + FMA3 + F16C */
  SPR_ISA_X86_AVX512F = 1u << 1,     /* AVX-512 F + BW + DQ + VL */
  SPR_ISA_X86_AVX512VNNI = 1u << 2,  /* AVX-512 VNNI */
  SPR_ISA_X86_AVXVNNI = 1u << 3,     /* AVX-VNNI (VEX encoded) */
  SPR_ISA_ARM_NEON = 1u << 8,        /* Advanced SIMD (A64, or A32 with VFPv4) */
  SPR_ISA_ARM_DOTPROD = 1u << 9,     /* SDOT/UDOT (armv8.2-a+dotprod) */
  SPR_ISA_ARM_I8MM = 1u << 10,       /* SMMLA (armv8.6-a+i8mm) */
  SPR_ISA_ARM_FP16 = 1u << 11,       /* half-precision vector arithmetic */
  SPR_ISA_ARM_MVE = 1u << 12,        /* Helium: Armv8.1-M MVE, integer + float (Cortex-M55/M85) */
  SPR_ISA_ALL = 0xffffffffu,
};

/* Detected features of this CPU (cached after the first call; the only
 * global state of the library). */
uint32_t spr_cpu_isa(void);

/* Parses "scalar", "avx2", "avx512", "neon", "dotprod", "mve" into an allowed mask
 * (every ISA up to and including the named one). Returns
 * SPR_STATUS_INVALID_ARGUMENT for an unknown name. */
enum spr_status spr_isa_mask_parse(const char *name, uint32_t *mask_out);

/* Writes the names of the bits in mask, space separated, into buf. */
void spr_isa_mask_format(uint32_t mask, char *buf, size_t len);

/* Error detail filled by fallible setup calls when the caller passes one.
 * msg is a single line without trailing newline; empty when the library is
 * built with SPR_NO_ERROR_STRINGS (firmware builds, to save flash). */
struct spr_error {
  enum spr_status status;
  char msg[240];
};

#ifdef __cplusplus
}
#endif
#endif
