/* ops/registry.c — op id -> definition. */
#include "ops/op.h"

static const struct spr_op_def *const k_ops[SPR_OP_COUNT_] = {
    [SPR_OP_GEMM] = &spr_op_gemm_def,
    [SPR_OP_LAYERNORM] = &spr_op_layernorm_def,
    [SPR_OP_RMSNORM] = &spr_op_rmsnorm_def,
    [SPR_OP_SOFTMAX] = &spr_op_softmax_def,
    [SPR_OP_GELU] = &spr_op_gelu_def,
    [SPR_OP_SILU] = &spr_op_silu_def,
    [SPR_OP_ADD] = &spr_op_add_def,
    [SPR_OP_MUL] = &spr_op_mul_def,
    [SPR_OP_CONV2D] = &spr_op_conv2d_def,
    [SPR_OP_DWCONV2D] = &spr_op_dwconv2d_def,
    [SPR_OP_ATTENTION] = &spr_op_attention_def,
    [SPR_OP_CONCAT_ROWS] = &spr_op_concat_rows_def,
    [SPR_OP_MEAN_ROWS] = &spr_op_mean_rows_def,
    [SPR_OP_SCALE] = &spr_op_scale_def,
    [SPR_OP_GET_ROWS] = &spr_op_get_rows_def,
    [SPR_OP_ROPE] = &spr_op_rope_def,
    [SPR_OP_KV_STORE] = &spr_op_kv_store_def,
    [SPR_OP_LAST_ROW] = &spr_op_last_row_def,
    [SPR_OP_PAD2D] = &spr_op_pad2d_def,
    [SPR_OP_NEIGHBORHOOD_ATTN] = &spr_op_neighborhood_attn_def,
    [SPR_OP_BRA] = &spr_op_bra_def,
    [SPR_OP_GEMM_MULTI] = &spr_op_gemm_multi_def,
    [SPR_OP_GEMM_ROWS] = &spr_op_gemm_rows_def,
    [SPR_OP_CORE_SELECT] = &spr_op_core_select_def,
    [SPR_OP_FFN_DOWN] = &spr_op_ffn_down_def,
};

const struct spr_op_def *spr_op_get(enum spr_op op) {
  if ((unsigned)op >= SPR_OP_COUNT_) return NULL;
  return k_ops[op];
}
