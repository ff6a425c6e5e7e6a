/* tools/sparrow/quantize.h — GGUF -> GGUF weight conversion behind
 * `sparrow quantize` (also linked into the tests).
 *
 * Works on any GGUF the library's reader accepts (any architecture): the
 * input is mapped (platform/blob.h) and parsed (spr_gguf_parse); every
 * metadata KV is copied (general.alignment kept), general.file_type and
 * general.quantization_version are rewritten. Which tensors change:
 *   - a tensor is converted when it has 2 dimensions and its name ends in
 *     ".weight": the matrices of the linear layers (GEMM weights). Everything
 *     else is copied byte for byte: 1-D norms, biases and layer scales, the
 *     3-D/4-D convolution kernels (ViT patch embedding, NAT conv tokenizer and
 *     downsamplers, BiFormer stem, downsamplers and depthwise convs: the conv
 *     ops read F32/F16 only), NAT's rpb [heads, 2K-1, 2K-1], ViT's pos_embd
 *     and cls/dist tokens (no ".weight"), integer tensors; even with `all`;
 *   - unless `all`, 2-D weights whose name contains one of "norm", "bias",
 *     "gamma", "pos_embd", "pos_embed", "cls_token", "dist_token", "rpb",
 *     "lepe", "attn_lce", "patch_embd", "tok.conv", "stem.", ".pos." are small
 *     or precision-critical and are copied as well. So for vit, nat and
 *     biformer exactly the linear layers are converted: attn_qkv (NAT, ViT,
 *     BiFormer's global stage), attn_qk and attn_v (BiFormer's BRA), attn_out,
 *     ffn_up, ffn_down and the classifier heads (head, head_dist);
 *   - llama.cpp's rule for the output projection: when general.architecture
 *     is "llama" and the type is q4_0 or q4_k, output.weight (token_embd.weight
 *     when the model has no output.weight: tied embeddings) becomes Q6_K
 *     (Q8_0 when its rows are not a multiple of 256);
 *   - a tensor whose rows (ne[0]) are not a multiple of the target block size
 *     (32 for q8_0/q4_0, 256 for q4_k/q6_k) is copied unchanged (noted);
 *   - a tensor already of the target type is copied; one of another
 *     quantized type is dequantized and requantized (a warning is printed:
 *     the error of both quantizations adds up).
 * Quantization uses the reference quantizers (ops/quant/quant.h), bit-exact
 * with ggml's, so the bytes equal llama.cpp's reference path (no importance
 * matrix). Rows are converted in parallel; the output does not depend on
 * the thread count. The converted data is held in memory until the file is
 * written (copied tensors are not: they point into the input mapping).
 *
 * sparse_layout (llama only): blk.N.ffn_down.weight {n_ff, n_embd} of each layer N in
 * [sparse_first, sparse_last] is written transposed as blk.N.ffn_down_t.weight
 * {n_embd, n_ff} — row n holds
 * FFN neuron n's n_embd output weights, quantized along n_embd (PowerInfer's
 * convention), so a sparse decode reads only the rows of the neurons it
 * uses. It replaces ffn_down (one copy of the weights). Its type is the
 * target type when the core-FFN kernels have it (f32, f16, q8_0, q4_0) and
 * q8_0 otherwise (q4_k, q6_k targets); f32 when n_embd is not a multiple of
 * that type's block. The values are dequantized, transposed and quantized
 * again along the other axis (a quantized input adds its error). Only the
 * layers that will run sparse should get it: a dense step through ffn_down_t
 * (an axpy per neuron in decode, an f32 GEMM on dequantized slices in
 * prefill) is slower than through the row-major ffn_down on integer dot
 * products. */
#ifndef SPR_TOOLS_QUANTIZE_H
#define SPR_TOOLS_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sparrow/gguf.h"
#include "sparrow/types.h"

struct spr_quantize_opts {
  enum spr_dtype type; /* F32, F16, Q8_0, Q4_0, Q4_K or Q6_K */
  bool all;            /* no name exclusions */
  int threads;         /* >= 1 */
  FILE *log;           /* one line per tensor, warnings, a total; NULL: silent */
  bool sparse_layout;  /* llama: write blk.N.ffn_down_t (see below) instead of blk.N.ffn_down */
  int sparse_first, sparse_last; /* layers that get it; -1 each: the default sparse layers of
                                    --sparse-ffn (llama.block_count L: (6L+16)/32 .. L-1-(5L+16)/32) */
};

struct spr_quantize_stats {
  uint64_t n_tensors, n_converted, n_requantized;
  uint64_t bytes_in, bytes_out; /* tensor data */
};

/* "q8_0", "q4_0", "q4_k", "q6_k", "f16", "f32" (any case); false otherwise. */
bool spr_quantize_parse_type(const char *s, enum spr_dtype *out);

/* general.file_type written for a target type: llama.cpp's LLAMA_FTYPE
 * (ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q4_K_M 15,
 * MOSTLY_Q6_K 18). q4_k maps to Q4_K_M, the llama.cpp name of "Q4_K with a
 * Q6_K output", although llama.cpp's Q4_K_M also promotes some attn_v and
 * ffn_down tensors to Q6_K, which this tool does not. */
uint32_t spr_quantize_ftype(enum spr_dtype t);

/* Converts in_path into out_path (which must be another file). Statuses: the
 * reader's for a bad input (IO, BAD_MAGIC, ...), INVALID_ARGUMENT for a bad
 * type/option or out == in, OUT_OF_MEMORY, the writer's IO. `st` may be NULL. */
enum spr_status spr_quantize_file(const char *in_path, const char *out_path, const struct spr_quantize_opts *o,
                                  struct spr_quantize_stats *st, struct spr_error *err);
/* The same with bundle: with o->sparse_layout and type Q4_0, the sparse layers'
 * ffn_gate, ffn_up and ffn_down become one blk.N.ffn_bundle.weight {3 n_embd,
 * n_ff}: row n = neuron n's gate row, up row and ffn_down_t row (one contiguous
 * run per neuron; the same Q4_0 bytes as the separate tensors). */
enum spr_status spr_quantize_file_bundle(const char *in_path, const char *out_path, const struct spr_quantize_opts *o,
                                         bool bundle, struct spr_quantize_stats *st, struct spr_error *err);

#endif
