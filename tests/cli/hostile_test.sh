#!/usr/bin/env bash
# Hostile inputs through the sparrow CLI: each gets its exit status and a
# one-line error naming what was wrong (never a crash, never a hang).
# What tests/cli/cli_test.sh already checks (unknown flag, --threads 0/10000
# and --isa for plan, missing/truncated/non-image files, a prompt longer than
# the context, --ctx beyond the model) is not repeated here.
# Usage: hostile_test.sh SPARROW_BINARY SOURCE_DIR
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

# expect CODE CMD...: exit status CODE within 60 s; output saved in $TMP/out
expect() {
  local want="$1"; shift
  timeout 60 "$@" > "$TMP/out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then ok "$* -> $got"; else bad "$* -> $got (want $want)"; sed 's/^/     /' "$TMP/out" | head -5; fi
}
contains() { if grep -aqF -- "$1" "$TMP/out"; then ok "output has '$1'"; else bad "output lacks '$1'"; sed 's/^/     /' "$TMP/out" | head -5; fi; }
one_line_error() {
  local n; n=$(grep -ac '^sparrow: error: ' "$TMP/out")
  if [ "$n" = 1 ] && [ "$(wc -l < "$TMP/out")" = 1 ]; then ok "one error line: $(cat "$TMP/out")"; else bad "error output is not one line:"; sed 's/^/     /' "$TMP/out" | head -5; fi
}

# ---- images --------------------------------------------------------------------
png_header() { # WIDTH HEIGHT: a PNG signature and IHDR claiming that size (gray, 8 bits), then IEND
  printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR'
  printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"
  printf "\\x$(printf %02x $(($2 >> 24 & 255)))\\x$(printf %02x $(($2 >> 16 & 255)))\\x$(printf %02x $(($2 >> 8 & 255)))\\x$(printf %02x $(($2 & 255)))"
  printf '\x08\x00\x00\x00\x00\x00\x00\x00\x00'
  printf '\x00\x00\x00\x00IEND\xae\x42\x60\x82'
}
png_header 0 0 > "$TMP/zero.png"
expect 1 "$S" classify "$VIT" "$TMP/zero.png"
one_line_error
contains "zero.png"
printf 'P5\n0 0\n255\n' > "$TMP/zero.pgm"
expect 1 "$S" classify "$VIT" "$TMP/zero.pgm"
one_line_error
png_header 100000 100000 > "$TMP/huge.png"
expect 1 "$S" classify "$VIT" "$TMP/huge.png"
one_line_error
contains "is 100000x100000: images larger than 16384 pixels per side are refused"
printf 'P5\n100000 100000\n255\n' > "$TMP/huge.pgm"
expect 1 "$S" classify "$VIT" "$TMP/huge.pgm"
one_line_error
contains "is 100000x100000: images larger than 16384 pixels per side are refused"
printf 'P6\n16385 1\n255\n' > "$TMP/wide.ppm"
expect 1 "$S" classify "$VIT" "$TMP/wide.ppm"
contains "16385x1"
printf 'P5\n2 2\n65535\n\x01\x02\x03\x04\x05\x06\x07\x08' > "$TMP/deep.pgm"
expect 1 "$S" classify "$VIT" "$TMP/deep.pgm"
one_line_error
contains "16-bit samples are not supported"
printf 'P5\n2 99999999999\n255\n' > "$TMP/long.pgm"
expect 1 "$S" classify "$VIT" "$TMP/long.pgm"
one_line_error
contains "more than 9 digits"
head -c 300 "$SRC/models/samples/0001-pullover.png" > "$TMP/cut.png"
expect 1 "$S" classify "$VIT" "$TMP/cut.png"
one_line_error
contains "cannot decode"
head -c 500 "$SRC/tests/fuzz/corpus/fuzz_image/rgb_16x10.jpg" > "$TMP/cut.jpg"
expect 1 "$S" classify "$VIT" "$TMP/cut.jpg"
one_line_error
contains "cannot decode"
# a scan using a Huffman table no DHT defined (stb_image 2.27 would decode
# through uninitialized tables: found by fuzzing); a progressive JPEG, whose
# first DC scan names an AC table defined only later, still decodes
expect 1 "$S" classify "$VIT" "$SRC/tests/fuzz/regressions/fuzz_image/jpeg_scan_uses_undefined_huffman_table"
one_line_error
contains "corrupt JPEG (a scan uses a Huffman table that is not defined)"
expect 0 "$S" classify "$VIT" "$SRC/tests/cli/data/progressive_rgb_29x37.jpg" --top 1
contains "(29x37)"
expect 1 "$S" classify "$VIT" "$TMP/missing-dir/"
one_line_error
mkdir "$TMP/dir.png"
expect 1 "$S" classify "$VIT" "$TMP/dir.png"
one_line_error
contains "is not a regular file"
: > "$TMP/empty.png"
expect 1 "$S" classify "$VIT" "$TMP/empty.png"
one_line_error
expect 1 "$S" accuracy "$VIT" --idx-images "$TMP/zero.png" --idx-labels "$TMP/zero.png"
one_line_error
contains "not an IDX image file"

# ---- LLM options and prompts ------------------------------------------------------
for t in 0 10000; do
  expect 2 "$S" generate "$LLM" -p "hi" --threads $t
  one_line_error
  contains "--threads must be between 1 and 256"
done
expect 2 "$S" generate "$LLM" -p "hi" --frobnicate
one_line_error
contains "unknown option '--frobnicate'"
expect 2 "$S" generate "$LLM" -p "hi" -n
one_line_error
contains "needs a value"
expect 2 "$S" generate "$LLM" -p "hi" --ctx 12abc
one_line_error
contains "expects an integer"
expect 2 "$S" classify "$VIT" x.png --check-finite=yes
one_line_error
contains "takes no value"
expect 0 "$S" generate "$LLM" -p "In the beginning" -n 4 --ctx 0 --temp 0
contains "In the beginning"
expect 1 "$S" generate "$LLM" -p "hi" --ctx -1
one_line_error
contains "must not be negative"
expect 1 "$S" generate "$LLM" -p "hi" --ctx 8 --batch 9
one_line_error
contains "batch 9 exceeds the context 8"
expect 1 "$S" generate "$LLM" -p "hi" --sinks 4
one_line_error
contains "--sinks needs --window"
# bytes that are not UTF-8 (lone continuation, truncated leads before spaces, 0xff)
expect 0 "$S" generate "$LLM" -p "$(printf 'And \x80\xbf \xc7 \xe2\x96 \xff\xfe God \xf4\x90\x80\x80 said')" -n 4 --temp 0
expect 0 "$S" generate "$LLM" -p "$(printf '\xc7 %.0s' $(seq 50))" -n 2 --temp 0

# ---- NaN in the weights: --check-finite names the tensor --------------------------------
if /usr/bin/python3 -c "import numpy" 2> /dev/null; then
  /usr/bin/python3 - "$SRC" "$VIT" "$TMP/nan.gguf" << 'EOF'
import sys
sys.path.insert(0, sys.argv[1] + "/tools/convert")
from gguf import GGUFReader
r = GGUFReader(sys.argv[2])
t = r.tensors["blk.2.ffn_up.weight"]
b = bytearray(r.buf)
at = r.data_start + t.offset + 4 * 7
b[at:at + 4] = b"\x00\x00\xc0\x7f"  # a NaN at element 7
open(sys.argv[3], "wb").write(b)
EOF
  expect 1 "$S" classify "$TMP/nan.gguf" "$SRC/models/samples/0002-trouser.png" --check-finite
  one_line_error
  contains "tensor blk.2.ffn_up.weight holds a non-finite value at element 7 (NOT_FINITE)"
  expect 1 "$S" info "$TMP/nan.gguf" --check-finite
  contains "NOT_FINITE"
  expect 1 "$S" plan "$TMP/nan.gguf" --check-finite
  contains "NOT_FINITE"
  expect 0 "$S" plan "$TMP/nan.gguf" # the scan is opt-in
  expect 0 "$S" classify "$VIT" "$SRC/models/samples/0002-trouser.png" --check-finite --top 1
  expect 0 "$S" generate "$LLM" -p "And" -n 2 --check-finite
else
  echo "skip: --check-finite checks need python3-numpy"
fi

echo "$fails failure(s)"
[ "$fails" = 0 ]
