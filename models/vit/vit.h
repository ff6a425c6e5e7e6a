/* models/vit/vit.h — ViT / DeiT from a GGUF with general.architecture "vit".
 *
 * Metadata (prefix "vit."; required unless a default is given):
 *   image_size u32, num_channels u32, patch_size u32, embedding_length u32 (D),
 *   block_count u32, attention.head_count u32, feed_forward_length u32,
 *   num_classes u32, pooling str ("cls" | "mean"),
 *   attention.layer_norm_epsilon f32 (default 1e-6),
 *   attention.scale f32 (default head_dim^-0.5),
 *   image_mean / image_std f32[num_channels] (defaults 0 / 1),
 *   class_labels str[num_classes] (optional),
 *   distilled bool (DeiT distillation token + head_dist; default false).
 * Tensors (ne order, ggml convention; T = prefix tokens + (S/P)^2):
 *   patch_embd.weight {C,P,P,D} (NHWC conv kernel: [D][P][P][C]), patch_embd.bias {D}
 *   cls_token {D}, dist_token {D} (distilled), pos_embd {D,T}
 *   blk.N.ln1.{weight,bias} {D}, blk.N.attn_qkv.weight {D,3D} (+ .bias {3D}: rows q|k|v),
 *   blk.N.attn_out.{weight {D,D}, bias {D}}, blk.N.ln2.{weight,bias},
 *   blk.N.ffn_up.{weight {D,F}, bias {F}}, blk.N.ffn_down.{weight {F,D}, bias {D}},
 *   norm.{weight,bias} {D} (applied to the CLS token, or after mean pooling),
 *   head.{weight {D,K}, bias {K}}, head_dist.{weight,bias} (distilled).
 * Graph input: the normalized image, f32 {C, S, S} (HWC). Output: logits {K, 1}. */
#ifndef SPR_MODELS_VIT_H
#define SPR_MODELS_VIT_H

#include <stdbool.h>
#include <stdint.h>

#define SPR_VIT_MAX_CHANNELS 4

struct spr_vit_hparams {
  uint32_t image_size, channels, patch, dim, depth, heads, ffn, classes;
  bool mean_pool, distilled;
  float eps, scale;
  float mean[SPR_VIT_MAX_CHANNELS], std[SPR_VIT_MAX_CHANNELS];
};

struct spr_arch;
extern const struct spr_arch spr_arch_vit;

#endif
