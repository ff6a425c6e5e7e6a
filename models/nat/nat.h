/* models/nat/nat.h — NAT / DiNAT (neighborhood attention transformers) from a
 * GGUF with general.architecture "nat" (written by tools/convert/nat.py).
 *
 * Metadata (prefix "nat."; required unless a default is given). L = levels,
 * B = blocks over all levels (level-major), level i has C_i = C << i channels:
 *   image_size u32 (nominal input side; a run may ask for another),
 *   num_channels u32 (1..4), embedding_length u32 (C, even),
 *   block_count u32 (B), depths u32[L] (sum = B), attention.head_count u32[L],
 *   feed_forward_length u32[L] (MLP hidden size per level),
 *   kernel_sizes u32[B], dilations u32[B] (per block: DiNAT alternates),
 *   num_classes u32, attention.layer_norm_epsilon f32 (default 1e-5),
 *   image_mean / image_std f32[num_channels] (defaults 0 / 1),
 *   class_labels str[num_classes] (optional).
 * Tensors (ne order, ggml convention; conv kernels NHWC: [Cout][KH][KW][Cin]):
 *   tok.conv1.weight {Cin,3,3,C/2}, tok.conv1.bias {C/2}       conv 3x3 s2 p1
 *   tok.conv2.weight {C/2,3,3,C}, tok.conv2.bias {C}           conv 3x3 s2 p1
 *   tok.norm.{weight,bias} {C}                                  LayerNorm
 *   per block N (level i, D = C_i, F = feed_forward_length[i], K = kernel_sizes[N],
 *   h = head_count[i]):
 *     blk.N.ln1.{weight,bias} {D}
 *     blk.N.attn_qkv.weight {D,3D} (+ .bias {3D}): rows q | k | v, heads contiguous
 *     blk.N.attn_rpb {2K-1,2K-1,h} (optional; PyTorch rpb[h][2K-1][2K-1], odd K)
 *     blk.N.attn_out.{weight {D,D}, bias {D}}
 *     blk.N.ln2.{weight,bias} {D}
 *     blk.N.ffn_up.{weight {D,F}, bias {F}}, blk.N.ffn_down.{weight {F,D}, bias {D}}
 *     blk.N.gamma1, blk.N.gamma2 {D} (optional, both or neither: layer scale)
 *   ds.I.weight {C_I,3,3,2C_I} (no bias), ds.I.norm.{weight,bias} {2C_I}   I < L-1
 *   norm.{weight,bias} {C_{L-1}}, head.{weight {C_{L-1},K}, bias {K}}
 * Graph: tokenizer conv -> conv -> LN; per block x += g1 * proj(NA(qkv(LN(x))))
 * and x += g2 * fc2(gelu(fc1(LN(x)))), where NA is SPR_OP_NEIGHBORHOOD_ATTN
 * (2-D, kernel K, dilation d, scale head_dim^-0.5, rpb); a map smaller than
 * K*d on an axis is zero-padded bottom/right to K*d before qkv and the
 * attention output cropped before proj (NATTEN 0.14); after each level but
 * the last, conv 3x3 s2 p1 -> LN; then LN -> mean over tokens -> head.
 * Graph input: the normalized image, f32 {Cin, S, S} (HWC). Output: logits
 * {K, 1}. Node names (for golden tests): tok_conv1 tok_conv2 tok_norm,
 * blk.N.{ln1, ln1_pad, qkv, attn, attn_crop, attn_out, attn_scaled, attn_res,
 * ln2, ffn_up, ffn_out, ffn_scaled, ffn_res}, ds.I.conv ds.I.norm, norm,
 * tokens, pooled, logits. */
#ifndef SPR_MODELS_NAT_H
#define SPR_MODELS_NAT_H

#include <stdint.h>

#define SPR_NAT_MAX_CHANNELS 4
#define SPR_NAT_MAX_LEVELS 8
#define SPR_NAT_MAX_BLOCKS 256

struct spr_nat_hparams {
  uint32_t image_size, channels, dim, n_levels, n_blocks, classes;
  uint32_t depths[SPR_NAT_MAX_LEVELS], heads[SPR_NAT_MAX_LEVELS], ffn[SPR_NAT_MAX_LEVELS];
  uint16_t kernel[SPR_NAT_MAX_BLOCKS], dilation[SPR_NAT_MAX_BLOCKS];
  float eps;
  float mean[SPR_NAT_MAX_CHANNELS], std[SPR_NAT_MAX_CHANNELS];
};

struct spr_arch;
extern const struct spr_arch spr_arch_nat;

#endif
