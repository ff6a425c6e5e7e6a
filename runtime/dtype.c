/* runtime/dtype.c — element type sizes (ggml block layouts). */
#include <stddef.h>
#include <stdint.h>

#include "runtime/util.h"
#include "sparrow/gguf.h"
#include "sparrow/types.h"

size_t spr_dtype_block_elems(enum spr_dtype t) {
  switch (t) {
    case SPR_DTYPE_Q4_0:
    case SPR_DTYPE_Q8_0:
      return 32;
    case SPR_DTYPE_Q4_K:
    case SPR_DTYPE_Q6_K:
      return 256;
    case SPR_DTYPE_F32:
    case SPR_DTYPE_F16:
    case SPR_DTYPE_I8:
    case SPR_DTYPE_I16:
    case SPR_DTYPE_I32:
      return 1;
  }
  return 0;
}

size_t spr_dtype_block_bytes(enum spr_dtype t) {
  switch (t) {
    case SPR_DTYPE_F32: return 4;
    case SPR_DTYPE_F16: return 2;
    case SPR_DTYPE_Q4_0: return 18;  /* half d; u8 qs[16] */
    case SPR_DTYPE_Q8_0: return 34;  /* half d; i8 qs[32] */
    case SPR_DTYPE_Q4_K: return 144; /* half d, dmin; u8 scales[12]; u8 qs[128] */
    case SPR_DTYPE_Q6_K: return 210; /* u8 ql[128], qh[64]; i8 scales[16]; half d */
    case SPR_DTYPE_I8: return 1;
    case SPR_DTYPE_I16: return 2;
    case SPR_DTYPE_I32: return 4;
  }
  return 0;
}

const char *spr_dtype_name(enum spr_dtype t) {
  switch (t) {
    case SPR_DTYPE_F32: return "f32";
    case SPR_DTYPE_F16: return "f16";
    case SPR_DTYPE_Q4_0: return "q4_0";
    case SPR_DTYPE_Q8_0: return "q8_0";
    case SPR_DTYPE_Q4_K: return "q4_k";
    case SPR_DTYPE_Q6_K: return "q6_k";
    case SPR_DTYPE_I8: return "i8";
    case SPR_DTYPE_I16: return "i16";
    case SPR_DTYPE_I32: return "i32";
  }
  return "?";
}

size_t spr_tensor_nbytes(enum spr_dtype type, const int64_t *ne, uint32_t n_dims) {
  const size_t be = spr_dtype_block_elems(type), bb = spr_dtype_block_bytes(type);
  if (be == 0 || n_dims == 0 || n_dims > SPR_GGUF_MAX_DIMS) return 0;
  if (ne[0] < 1 || (size_t)ne[0] % be != 0) return 0;
  size_t total = (size_t)ne[0] / be;
  if (!spr_mul_ok(total, bb, &total)) return 0;
  for (uint32_t i = 1; i < n_dims; i++) {
    if (ne[i] < 1 || (uint64_t)ne[i] > SIZE_MAX) return 0;
    if (!spr_mul_ok(total, (size_t)ne[i], &total)) return 0;
  }
  return total;
}
