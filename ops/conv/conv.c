/* ops/conv/conv.c — placeholder definitions; replaced by the real op family. */
#include "ops/op.h"
static void run_nothing(const struct spr_exec *x, const struct spr_node *n) { (void)x; (void)n; }
const struct spr_op_def spr_op_conv2d_def = {.name = "conv2d", .run = run_nothing};
const struct spr_op_def spr_op_dwconv2d_def = {.name = "dwconv2d", .run = run_nothing};
