/* models/biformer/biformer.h — BiFormer (bi-level routing attention) from a
 * GGUF with general.architecture "biformer" (written by
 * tools/convert/biformer.py, which folds every BatchNorm).
 *
 * Metadata (prefix "biformer."; required unless a default is given). S =
 * stages, B = blocks over all stages (stage-major):
 *   image_size u32 (nominal input side; a run may ask for another),
 *   num_channels u32 (1..4), block_count u32 (B),
 *   embedding_length u32[S] (C_i, C_0 even), depths u32[S] (sum = B),
 *   attention.head_count u32[S], qk_dim u32[S] (= C_i in released models),
 *   n_win u32[S] (regions per side), topk i32[S] (> 0: bi-level routing
 *   attention keeping topk of n_win^2 regions; <= 0: global attention with
 *   LePE, BiFormer's last stage), feed_forward_length u32[S],
 *   pos_kernel u32 (odd, 3), lce_kernel u32 (odd, 5), num_classes u32,
 *   attention.layer_norm_epsilon f32 (default 1e-6),
 *   image_mean / image_std f32[num_channels] (defaults 0 / 1),
 *   class_labels str[num_classes] (optional).
 * Tensors (ne order; dense conv kernels [Cout][KH][KW][Cin], depthwise
 * [KH][KW][C]; every conv here has its BatchNorm folded into weight + bias):
 *   stem.conv1.{weight {Cin,3,3,C_0/2}, bias}   conv 3x3 s2 p1 (+BN), then GELU
 *   stem.conv2.{weight {C_0/2,3,3,C_0}, bias}   conv 3x3 s2 p1 (+BN)
 *   ds.I.{weight {C_{I-1},3,3,C_I}, bias}       conv 3x3 s2 p1 (+BN), 1 <= I < S
 *   per block N (stage i, C = C_i, q = qk_dim[i], F = feed_forward_length[i]):
 *     blk.N.pos.{weight {C,pk,pk}, bias {C}}     x += dwconv(x)
 *     blk.N.ln1.{weight,bias}, blk.N.ln2.{weight,bias} {C}
 *     routed (topk > 0): blk.N.attn_qk.{weight {C,2q}, bias {2q}} (rows q | k),
 *       blk.N.attn_v.{weight {C,C}, bias {C}} (the official fused qkv split
 *       after its q|k rows; biases optional)
 *     global (topk <= 0): blk.N.attn_qkv.weight {C,3C} (+ optional bias)
 *     blk.N.attn_lce.{weight {C,lk,lk}, bias {C}}   LCE on V / LePE on the input
 *     blk.N.attn_out.{weight {C,C}, bias {C}}       wo / proj
 *     blk.N.ffn_up.{weight {C,F}, bias {F}}, blk.N.ffn_down.{weight {F,C}, bias {C}}
 *   norm.scale, norm.shift {C_{S-1}}   the final BatchNorm as y = x * scale + shift
 *   head.{weight {C_{S-1},K}, bias {K}}
 * Graph: stem; per stage (downsample conv first when i > 0) per block
 * x += dwconv_pk(x); x += attn(LN(x)); x += fc2(gelu(fc1(LN(x)))).
 * Routed attn (legacy BRA, checkpoint-compatible): the LN output is zero-
 * padded bottom/right to multiples of n_win (SPR_OP_PAD2D) BEFORE the q|k and
 * v GEMMs; SPR_OP_BRA (region means, top-k routing, attention over the routed
 * regions, scale q^-0.5 for router and attention); + dwconv_lk(V) over the
 * whole padded map (LCE); attn_out; cropped back. Global attn: MHSA with
 * attention.head_count heads, scale head_dim^-0.5, + dwconv_lk(LN output)
 * (LePE); attn_out. Head: mean over tokens, then the folded BatchNorm (an
 * affine per channel commutes with the mean), then head.
 * Graph input: the normalized image, f32 {Cin, S, S} (HWC). Output: logits
 * {K, 1}. Node names (golden tests): stem.conv1 stem.gelu stem.conv2 ds.I,
 * blk.N.{pos_conv, pos, ln1, ln1_pad, qk, v, qkv, attn, lce, lepe, attn_lce,
 * attn_out, attn_crop, attn_res, ln2, ffn_up, ffn_res}, tokens, pooled,
 * norm_scale, norm, logits. */
#ifndef SPR_MODELS_BIFORMER_H
#define SPR_MODELS_BIFORMER_H

#include <stdint.h>

#define SPR_BIFORMER_MAX_CHANNELS 4
#define SPR_BIFORMER_MAX_STAGES 8

struct spr_biformer_hparams {
  uint32_t image_size, channels, n_stages, n_blocks, classes, pos_kernel, lce_kernel;
  uint32_t dims[SPR_BIFORMER_MAX_STAGES], depths[SPR_BIFORMER_MAX_STAGES], heads[SPR_BIFORMER_MAX_STAGES];
  uint32_t qk_dims[SPR_BIFORMER_MAX_STAGES], n_win[SPR_BIFORMER_MAX_STAGES], ffn[SPR_BIFORMER_MAX_STAGES];
  int32_t topk[SPR_BIFORMER_MAX_STAGES];
  float eps;
  float mean[SPR_BIFORMER_MAX_CHANNELS], std[SPR_BIFORMER_MAX_CHANNELS];
};

struct spr_arch;
extern const struct spr_arch spr_arch_biformer;

#endif
