#!/usr/bin/env bash
# End-to-end checks of the sparrow CLI: every command's --help, one-line
# errors with non-zero exits, classify/plan/bench/generate on the bundled
# models. Usage: cli_test.sh SPARROW_BINARY SOURCE_DIR
set -uo pipefail
S="$1"
SRC="$2"
VIT="$SRC/models/vit-fmnist.gguf"
LLM="$SRC/models/llm-kjv.gguf"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

# expect CODE CMD...: exit status CODE; stdout+stderr saved in $TMP/out
expect() {
  local want="$1"; shift
  "$@" > "$TMP/out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then ok "$* -> $got"; else bad "$* -> $got (want $want)"; sed 's/^/     /' "$TMP/out" | head -5; fi
}
# contains TEXT: the last output holds TEXT
contains() { if grep -qF -- "$1" "$TMP/out"; then ok "output has '$1'"; else bad "output lacks '$1'"; sed 's/^/     /' "$TMP/out" | head -5; fi; }
one_line_error() {
  local n; n=$(grep -c '^sparrow: error: ' "$TMP/out")
  if [ "$n" = 1 ] && [ "$(wc -l < "$TMP/out")" = 1 ]; then ok "one error line"; else bad "error output is not one line:"; sed 's/^/     /' "$TMP/out" | head -5; fi
}

expect 0 "$S" --help
for c in info plan classify accuracy generate perplexity bench bench-op quantize; do
  expect 0 "$S" "$c" --help
  contains "usage: sparrow $c"
done
expect 2 "$S"
expect 2 "$S" frobnicate
one_line_error
expect 2 "$S" plan "$VIT" --no-such-flag
one_line_error
expect 2 "$S" plan "$VIT" --threads 0
one_line_error
expect 2 "$S" plan "$VIT" --threads 10000
one_line_error
expect 2 "$S" plan "$VIT" --isa mips
one_line_error
expect 1 "$S" info "$TMP/missing.gguf"
one_line_error
contains "missing.gguf"
printf 'GGUF\3\0\0\0' > "$TMP/trunc.gguf"
expect 1 "$S" info "$TMP/trunc.gguf"
one_line_error
contains "TRUNCATED"

# plan: JSON with the exact arena, and the arena really is exact
expect 0 "$S" plan "$VIT" --json
contains '"arena_bytes": '
arena=$(sed -n 's/.*"arena_bytes": \([0-9]*\).*/\1/p' "$TMP/out")
expect 0 "$S" classify "$VIT" "$SRC/models/samples/0002-trouser.png" --arena-bytes "$arena"
expect 1 "$S" classify "$VIT" "$SRC/models/samples/0002-trouser.png" --arena-bytes $((arena - 1))
contains "ARENA_TOO_SMALL"
contains "needs $arena"

# classify: every bundled sample gets its own label
for img in "$SRC"/models/samples/*.png; do
  label=$(basename "$img" .png | cut -d- -f2- | tr '-' ' ')
  expect 0 "$S" classify "$img" --top 1
  if grep -i "1\. " "$TMP/out" | tr 'A-Z/-' 'a-z  ' | grep -qF "$label"; then ok "$(basename "$img") -> $label"; else bad "$(basename "$img") not classified as $label"; cat "$TMP/out"; fi
done
expect 0 "$S" classify "$SRC/models/samples/0000-ankle-boot.png" --json --threads 2 --isa scalar
contains '"label": "Ankle boot"'
echo "not an image" > "$TMP/x.png"
expect 1 "$S" classify "$TMP/x.png"
one_line_error
expect 1 "$S" classify "$VIT" "$TMP/nothere.png"
one_line_error
expect 1 "$S" classify "$LLM" "$SRC/models/samples/0002-trouser.png"
one_line_error

expect 0 "$S" info "$VIT" --kernels
contains "ukernel"
# quantize a ViT: exactly the linear layers change; info lists the types and the summary
expect 0 "$S" quantize "$VIT" "$TMP/vit-q8.gguf" q8_0
contains "blk.0.attn_qkv.weight                    f32   -> q8_0"
contains "total: 56 tensors, 17 converted"
expect 0 "$S" info "$TMP/vit-q8.gguf"
contains "types: 17 of 56 tensors quantized"
contains "blk.*.attn_qkv.weight x4 blk.*.attn_out.weight x4"
contains "blk.*.ffn_up.weight x4 blk.*.ffn_down.weight x4 head.weight"
contains "patch_embd.weight                        f32"
contains "pos_embd                                 f32"
expect 0 "$S" quantize "$VIT" "$TMP/vit-q4.gguf" q4_0 --all
contains "total: 56 tensors, 17 converted"
expect 0 "$S" classify "$TMP/vit-q4.gguf" "$SRC/models/samples/0002-trouser.png"
contains "Trouser"
expect 0 "$S" bench "$VIT" --runs 5 --json
contains '"median_ms": '
contains '"min_ms": '
expect 0 "$S" bench-op gemm --m 8 --k 32 --n 16 --runs 3 --json
contains '"gflops": '
expect 0 "$S" bench-op attention --size 4x4 --heads 2 --head-dim 8 --runs 3 --json
contains '"median_ms": '
expect 0 "$S" bench-op na2d --size 9x9 --kernel 3 --dilation 2 --heads 2 --head-dim 8 --runs 3 --json
contains '"gflops": '
expect 0 "$S" bench-op bra --size 8x8 --regions 2 --topk 2 --heads 2 --head-dim 8 --runs 3 --threads 2 --json
contains '"workspace_bytes": '
expect 1 "$S" bench-op bra --size 9x8 --regions 2 --topk 2 --heads 2 --head-dim 8
one_line_error

# LLM: the bundled model is the default; errors are clear
expect 0 "$S" generate -p "And God said" -n 8 --temp 0
contains "And God said"
expect 0 "$S" generate "$LLM" -p "" -n 4 --seed 5
expect 1 "$S" generate "$LLM" -p "$(head -c 3000 /dev/zero | tr '\0' 'a')" --ctx 16
one_line_error
contains "context"
expect 1 "$S" generate "$VIT" -p "hi"
one_line_error
expect 0 "$S" plan "$LLM" --ctx 128 --json
expect 1 "$S" plan "$LLM" --ctx 100000
one_line_error
expect 0 "$S" bench "$LLM" --prompt 8 --gen 8 --runs 1 --json
contains '"prefill_tok_s": '
contains '"decode_tok_s": '
expect 0 "$S" bench "$LLM" --prompt 8 --gen 8 --runs 2 --warmup 0 --threads 2 --roof --json
contains '"read_roof_gb_s": '
contains '"decode_roof_fraction": '
if grep -q '"read_roof_gb_s": 0\.000' "$TMP/out"; then bad "read roof is zero"; else ok "read roof measured"; fi
expect 0 "$S" bench "$LLM" --prompt 8 --gen 8 --runs 1 --warmup 0 --roof
contains "read roof (the same bytes"
# core-neuron FFN sparsity (docs/coreinfer.md)
expect 0 "$S" bench "$LLM" --prompt 8 --gen 8 --runs 1 --warmup 0 --sparse-ffn core:0.4,reselect=sentence \
  --compare-dense --dense-model "$LLM" --sentence 4
contains "sparse FFN: layers 1-3 of 5"
contains "decode reads"
contains "(2 sentence ends per run)"
contains "sparse/dense: decode"
expect 1 "$S" bench "$LLM" --dense-model "$LLM"
one_line_error
# the two decodes alternating every 3 tokens (8 = 3 + 3 + 2), the file re-read into the page cache first
expect 0 "$S" bench "$LLM" --prompt 8 --gen 8 --runs 1 --warmup 0 --sparse-ffn core:0.4 --compare-dense \
  --interleave 3 --recache --json
contains '"interleave": 3'
contains '"decode_speedup": '
expect 0 "$S" bench "$LLM" --prompt 8 --gen 8 --runs 1 --warmup 0 --sparse-ffn core:0.4 --compare-dense --interleave 8
contains "alternated every 8 tokens"
expect 1 "$S" bench "$LLM" --interleave 4
one_line_error
expect 1 "$S" bench "$LLM" --sparse-ffn core --compare-dense --interleave -1
one_line_error
expect 1 "$S" generate "$LLM" -p "hi" --sparse-ffn core:1.5
one_line_error
expect 0 "$S" plan "$LLM" --sparse-ffn core
contains "sparse FFN"
# compact: a bundle file's core bundles copied once per selection; the same text as without
expect 0 "$S" quantize "$LLM" "$TMP/llm-bundle.gguf" q4_0 --sparse-layout --bundle
for c in "" ",compact"; do
  "$S" generate "$TMP/llm-bundle.gguf" -p "And God said" -n 16 --temp 0 --sparse-ffn "core:0.4,reselect=sentence$c" \
    > "$TMP/text$c.txt" 2>/dev/null || bad "generate --sparse-ffn core:0.4,reselect=sentence$c failed"
done
if [ -s "$TMP/text.txt" ] && cmp -s "$TMP/text.txt" "$TMP/text,compact.txt"; then ok "compact: the same text"; else bad "compact: another text"; fi
expect 0 "$S" bench "$TMP/llm-bundle.gguf" --prompt 8 --gen 8 --runs 1 --warmup 0 --sparse-ffn core:0.4,compact
contains "compact: the core bundles are copied once per selection into"
expect 0 "$S" plan "$TMP/llm-bundle.gguf" --sparse-ffn core:0.4,compact
contains "bytes of the arena's persistent part: the core bundles' copy"
expect 1 "$S" bench "$LLM" --prompt 8 --gen 8 --runs 1 --sparse-ffn core:0.4,compact
one_line_error
contains "neuron bundles"
expect 1 "$S" generate "$LLM" -p "hi" --sparse-ffn core:0.4,compacted
one_line_error
expect 0 "$S" generate --help
contains ",compact"
printf 'And God said unto Moses, Let there be light.\n' > "$TMP/t.txt"
expect 0 "$S" perplexity "$LLM" "$TMP/t.txt"
contains "perplexity: "

echo "$fails failure(s)"
[ "$fails" = 0 ]
