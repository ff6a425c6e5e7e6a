/* tools/sparrow/cmd_quantize.c — `sparrow quantize IN.gguf OUT.gguf TYPE [--all] [--sparse-layout ...]`. */
#include <stdio.h>
#include <string.h>

#include "tools/sparrow/cli.h"
#include "tools/sparrow/quantize.h"

int cmd_quantize(int argc, char **argv) {
  bool all = false, sparse_layout = false, bundle = false;
  const char *sparse_layers = NULL;
  const struct cli_opt opts[] = {
      {"all", CLI_FLAG, &all, NULL, "convert every 2-D .weight tensor (no name exclusions)"},
      {"sparse-layout", CLI_FLAG, &sparse_layout, NULL,
       "llama: store ffn_down transposed as blk.N.ffn_down_t (neuron-major rows, for --sparse-ffn)"},
      {"sparse-layers", CLI_STR, &sparse_layers, "F-L|all",
       "with --sparse-layout: the layers to transpose (default: --sparse-ffn's default sparse layers)"},
      {"bundle", CLI_FLAG, &bundle, NULL,
       "with --sparse-layout and q4_0: store each neuron's gate, up and ffn_down_t rows together as\n"
       "blk.N.ffn_bundle (one contiguous run per neuron: the fused sparse decode)"},
      {NULL, CLI_FLAG, NULL, NULL, NULL},
  };
  struct cli_common c;
  const char *pos[3];
  int n_pos = 0;
  const int r = cli_parse(
      argc, argv,
      "sparrow quantize IN.gguf OUT.gguf TYPE [--all] [--sparse-layout [--sparse-layers F-L|all] [--bundle]]\n"
      "       [--threads N]",
      "Converts the weight matrices of a GGUF model (any architecture) to TYPE and copies everything else.\n"
      "TYPE: q8_0, q4_0, q4_k, q6_k (ggml block formats, bit-exact with ggml's reference quantizers), f16, f32.\n"
      "\n"
      "Which tensors change:\n"
      "  - 2-D tensors whose name ends in \".weight\" (the linear layers); 1-D tensors (norms, biases),\n"
      "    3-D/4-D tensors (conv kernels: patch embeddings, conv stems, downsamplers, depthwise convs;\n"
      "    rpb), tensors without \".weight\" (pos_embd, cls_token) and integer tensors are copied unchanged,\n"
      "    also with --all;\n"
      "  - without --all, 2-D weights whose name contains norm, bias, gamma, pos_embd, pos_embed,\n"
      "    cls_token, dist_token, rpb, lepe, attn_lce, patch_embd, tok.conv, stem. or .pos. stay as they\n"
      "    are (small or precision-critical). For vit, nat and biformer models this converts exactly the\n"
      "    linear layers: attn_qkv / attn_qk / attn_v, attn_out, ffn_up, ffn_down and the heads;\n"
      "  - llama models (general.architecture = llama) with q4_0 or q4_k: output.weight (token_embd.weight\n"
      "    when there is no output.weight) is stored as Q6_K (Q8_0 if its rows are not a multiple of 256),\n"
      "    as llama.cpp does;\n"
      "  - a tensor whose rows (ne[0]) are not a multiple of the block (32; 256 for q4_k/q6_k) is kept\n"
      "    as it is, with a note;\n"
      "  - an already quantized tensor of another type is dequantized and requantized (a warning is\n"
      "    printed: the two quantization errors add up).\n"
      "Metadata is copied; general.file_type is set to llama.cpp's ftype (f32 0, f16 1, q4_0 2, q8_0 7,\n"
      "q4_k 15 = MOSTLY_Q4_K_M: Q4_K with a Q6_K output, without llama.cpp's extra Q6_K layers, q6_k 18)\n"
      "and general.quantization_version to 2. --threads converts rows in parallel (same output).\n"
      "\n"
      "--sparse-layout (llama): blk.N.ffn_down.weight {n_ff, n_embd} is written instead as\n"
      "blk.N.ffn_down_t.weight {n_embd, n_ff}: row n = FFN neuron n's n_embd output weights, quantized along\n"
      "n_embd (PowerInfer's layout), so sparse decode (--sparse-ffn) reads only the rows of the neurons it\n"
      "keeps. Type: TYPE for f32/f16/q8_0/q4_0, q8_0 for q4_k/q6_k; f32 when n_embd is not a multiple of\n"
      "its block. Only the layers of --sparse-layers are transposed (default: the layers --sparse-ffn makes\n"
      "sparse by default, CoreInfer's 6..26 of 32 scaled: (6L+16)/32 .. L-1-(5L+16)/32): a dense step\n"
      "through ffn_down_t is slower than through ffn_down. Sparrow reads both layouts; llama.cpp does not.\n"
      "--bundle (with --sparse-layout, q4_0): those layers' ffn_gate, ffn_up and ffn_down are written as one\n"
      "blk.N.ffn_bundle.weight {3 n_embd, n_ff}: row n = neuron n's gate row, up row and ffn_down_t row (the\n"
      "same Q4_0 bytes as the separate tensors), so a core neuron is one contiguous 3-row run: decode reads\n"
      "it in one pass and computes SiLU(gate)*up and its share of ffn_down together (docs/coreinfer.md).",
      opts, &c, pos, 3, 3, &n_pos);
  if (r != 0) return r < 0 ? 0 : r;
  enum spr_dtype type;
  if (!spr_quantize_parse_type(pos[2], &type))
    return cli_fail("unknown type '%s' (q8_0, q4_0, q4_k, q6_k, f16, f32)", pos[2]) + 1;
  int first = -1, last = -1;
  if (sparse_layers != NULL && strcmp(sparse_layers, "all") == 0) {
    first = 0;
    last = 1 << 30;
  } else if (sparse_layers != NULL &&
             (sscanf(sparse_layers, "%d-%d", &first, &last) != 2 || first < 0 || last < first)) {
    return cli_fail("--sparse-layers '%s' must be FIRST-LAST (0-based, inclusive) or all", sparse_layers) + 1;
  }
  if (bundle && !sparse_layout) return cli_fail("--bundle needs --sparse-layout") + 1;
  const struct spr_quantize_opts o = {type, all, c.threads, stdout, sparse_layout, first, last};
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_quantize_file_bundle(pos[0], pos[1], &o, bundle, NULL, &err);
  if (s != SPR_STATUS_OK) return cli_fail_status(s, &err, "quantize");
  printf("wrote %s (%s)\n", pos[1], spr_dtype_name(type));
  return 0;
}
