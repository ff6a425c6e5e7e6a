/* ops/act/act_ref.c — activation oracles: the definitions, in double. */
#include <math.h>

#include "ops/act/act_ukernels.h"

float spr_f32_gelu_ref(float x) {
  return (float)(0.5 * (double)x * (1.0 + erf((double)x / sqrt(2.0))));
}
float spr_f32_silu_ref(float x) {
  return (float)((double)x / (1.0 + exp(-(double)x)));
}
float spr_f32_relu_ref(float x) {
  return x > 0.0f ? x : 0.0f;
}
