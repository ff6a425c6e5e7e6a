/* ops/act/act.c — placeholder definitions; replaced by the real op family. */
#include "ops/op.h"
static void run_nothing(const struct spr_exec *x, const struct spr_node *n) { (void)x; (void)n; }
const struct spr_op_def spr_op_gelu_def = {.name = "gelu", .run = run_nothing};
const struct spr_op_def spr_op_silu_def = {.name = "silu", .run = run_nothing};
