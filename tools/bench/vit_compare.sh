#!/usr/bin/env bash
# DeiT-Tiny (random weights at the real shape), batch 1, f32: Sparrow vs ONNX
# Runtime vs PyTorch, 1 and 2 threads, measured in one run on this machine.
#
# Usage: tools/bench/vit_compare.sh [--runs N]
# Needs: a build in build/ (scripts/test.sh or the quick start), /usr/bin/python3
# with torch, and for ONNX Runtime the npm package onnxruntime-node installed with
#   ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix /tmp/ortbench onnxruntime-node
# (its postinstall downloads GPU binaries; the CPU ones ship in the package).
# The model files are written to out/bench/ (gitignored) on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=30
[ "${1:-}" = "--runs" ] && RUNS="$2"
OUT=out/bench
SPARROW=build/bin/sparrow
[ -x "$SPARROW" ] || { echo "build Sparrow first (scripts/test.sh)" >&2; exit 1; }
if [ ! -f "$OUT/deit-tiny-f32.gguf" ] || [ ! -f "$OUT/deit-tiny.onnx" ]; then
  /usr/bin/python3 tools/bench/deit_tiny.py --out-dir "$OUT" --no-time
fi
echo "load before: $(uptime | sed 's/.*load average: //')"
for t in 1 2; do
  "$SPARROW" bench "$OUT/deit-tiny-f32.gguf" --threads "$t" --runs "$RUNS" --json | sed "s/^/sparrow /"
done
if node -e "require('/tmp/ortbench/node_modules/onnxruntime-node')" 2>/dev/null; then
  node tools/bench/ort_bench.js "$OUT/deit-tiny.onnx" --input "$OUT/input.f32" --check "$OUT/logits.f32" \
    --runs "$RUNS" --ort-prefix /tmp/ortbench | tr -d '\n' | sed 's/  */ /g; s/^/onnxruntime /'
  echo
else
  echo "onnxruntime: not installed (see the header of this script)"
fi
/usr/bin/python3 tools/bench/deit_tiny.py --out-dir "$OUT" --runs "$RUNS" --no-onnx 2>/dev/null | tail -n 20 | sed "s/^/pytorch /"
echo "load after: $(uptime | sed 's/.*load average: //')"
