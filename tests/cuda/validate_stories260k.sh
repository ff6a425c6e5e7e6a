#!/bin/sh
# validate_stories260k.sh SPARROW SOURCE_DIR SHARED_DIR WORK_DIR BACKEND
# Converts ../shared/models/stories260K.bin (llama2.c format) to GGUF with
# tools/convert/llama2c.py and runs `sparrow validate` on it. Exits 77
# (skipped) when the model, its tokenizer or /usr/bin/python3 is missing,
# and passes validate's own 77 through (no CUDA device).
set -u
sparrow=$1 src=$2 shared=${SPR_SHARED_DIR:-$3} work=$4 backend=$5
bin=$shared/models/stories260K.bin
tok=$shared/models/tok512.bin
if [ ! -r "$bin" ] || [ ! -r "$tok" ] || [ ! -x /usr/bin/python3 ]; then
  echo "skipped: $bin, $tok or /usr/bin/python3 is missing"
  exit 77
fi
out=$work/stories260K-$backend.gguf
/usr/bin/python3 "$src/tools/convert/llama2c.py" "$bin" --tokenizer "$tok" -o "$out" > /dev/null || exit 1
exec "$sparrow" validate "$out" "Once upon a time" --steps 8 --backend "$backend"
