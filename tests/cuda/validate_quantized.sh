#!/bin/sh
# validate_quantized.sh SPARROW SOURCE_DIR WORK_DIR BACKEND
# Quantizes the bundled models (every weight matrix: --all) to each block
# format and runs `sparrow validate` on each, end to end and --isolate.
# Exits with validate's status: 77 (no CUDA device) passes through.
set -u
sparrow=$1 src=$2 work=$3 backend=$4
mkdir -p "$work"
for spec in llm-kjv:q8_0 llm-kjv:q4_0 llm-kjv:q4_k llm-kjv:q6_k llm-kjv:f16 vit-fmnist:q8_0 vit-fmnist:q4_0; do
  model=${spec%%:*} type=${spec##*:}
  out=$work/$model-$type-$backend.gguf
  "$sparrow" quantize "$src/models/$model.gguf" "$out" "$type" --all > /dev/null || exit 1
  for mode in "" --isolate; do
    echo "== $model $type $mode"
    "$sparrow" validate "$out" --steps 4 --backend "$backend" $mode > "$out.log" 2>&1
    rc=$?
    tail -n 2 "$out.log"
    if [ $rc -ne 0 ]; then
      [ $rc -eq 77 ] || cat "$out.log"
      exit $rc
    fi
  done
done
