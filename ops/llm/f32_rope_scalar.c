/* ops/llm/f32_rope_scalar.c — RoPE row ukernel, portable C: one pair at a time. */
#include <string.h>

#include "ops/llm/llm.h"

void spr_f32_rope_ukernel_2__scalar(size_t n_heads, size_t head_dim, size_t n_rot, const float *cs, const float *x,
                                    float *y) {
  const float *cc = cs, *ss = cs + n_rot;
  for (size_t h = 0; h < n_heads; h++, x += head_dim, y += head_dim) {
    for (size_t k = 0; k < n_rot; k += 2) {
      const float x0 = x[k], x1 = x[k + 1];
      y[k] = x0 * cc[k] + x1 * ss[k];
      y[k + 1] = x1 * cc[k + 1] + x0 * ss[k + 1];
    }
    if (y != x && head_dim > n_rot) memcpy(y + n_rot, x + n_rot, (head_dim - n_rot) * sizeof(float));
  }
}
