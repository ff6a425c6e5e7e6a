#!/bin/sh
# validate_sparse_ffn.sh SPARROW SOURCE_DIR WORK_DIR BACKEND
# llm-kjv with core-neuron FFN sparsity (--sparse-ffn core:0.4: selection in
# the prompt, GEMM_ROWS / FFN_DOWN over the core neurons in decode): f32,
# q8_0 (ffn_down row-major) and q4_0 --sparse-layout (ffn_down_t), each end
# to end and --isolate. Exits with validate's status (77 passes through).
set -u
sparrow=$1 src=$2 work=$3 backend=$4
mkdir -p "$work"
for spec in f32 q8_0 q4_0:--sparse-layout; do
  type=${spec%%:*} layout=""
  [ "$spec" != "$type" ] && layout=${spec#*:}
  out=$work/llm-kjv-sparse-$type-$backend.gguf
  if [ "$type" = f32 ]; then
    cp "$src/models/llm-kjv.gguf" "$out" || exit 1
  else
    "$sparrow" quantize "$src/models/llm-kjv.gguf" "$out" "$type" --all $layout > /dev/null || exit 1
  fi
  for mode in "" --isolate; do
    echo "== llm-kjv $type $layout --sparse-ffn core:0.4 $mode"
    "$sparrow" validate "$out" "In the beginning God created" --steps 6 --sparse-ffn core:0.4 \
      --backend "$backend" $mode > "$out.log" 2>&1
    rc=$?
    tail -n 2 "$out.log"
    if [ $rc -ne 0 ]; then
      [ $rc -eq 77 ] || cat "$out.log"
      exit $rc
    fi
  done
done
