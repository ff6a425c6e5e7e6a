#!/bin/bash
# tools/bench/vs_llamacpp.sh — Sparrow vs llama.cpp on the same GGUF files, alternated in one run,
# so both see the same machine load. This host's DRAM bandwidth and CPU share move by up to 2x
# from minute to minute; only figures measured side by side can be compared.
#
#   tools/bench/vs_llamacpp.sh --llama-bench PATH [--pairs N] [--threads T] [--prompt N] [--gen N] MODEL.gguf...
#
# PATH is a llama-bench you built yourself from llama.cpp (CPU backend; this script neither
# downloads nor builds it). Each pair runs `llama-bench -p N -n N -t T -r 3 -o json` and then
# `sparrow bench --prompt N --gen N --threads T --runs 3 --warmup 1 --roof --json` on the same
# file and prints both rates, the ratios, and Sparrow's decode as a fraction of the streaming-read
# roof measured between its runs. Not part of CI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SPARROW=${SPARROW:-$root/build/bin/sparrow}
lb="" pairs=3 threads=2 prompt=64 gen=128
models=()
while [ $# -gt 0 ]; do
  case $1 in
    --llama-bench) lb=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) models+=("$1"); shift ;;
  esac
done
usage="usage: $0 --llama-bench PATH [--pairs N] [--threads T] [--prompt N] [--gen N] MODEL.gguf..."
[ -n "$lb" ] && [ ${#models[@]} -gt 0 ] || { echo "$usage" >&2; exit 2; }
[ -x "$lb" ] || { echo "$lb: not an executable llama-bench" >&2; exit 1; }
[ -x "$SPARROW" ] || { echo "$SPARROW: build Sparrow first (or set SPARROW=...)" >&2; exit 1; }
for m in "${models[@]}"; do
  for i in $(seq "$pairs"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    l=$("$lb" -m "$m" -p "$prompt" -n "$gen" -t "$threads" -r 3 -o json 2>/dev/null)
    s=$("$SPARROW" bench "$m" --threads "$threads" --prompt "$prompt" --gen "$gen" --runs 3 --warmup 1 --roof --json)
    /usr/bin/python3 - "$l" "$s" "$m" "$load" <<'PY'
import json, os, sys
runs, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rate = {("pp" if r["n_prompt"] > 0 else "tg"): r["avg_ts"] for r in runs}
print("%s (load %s): llama.cpp prefill %.1f decode %.2f | sparrow prefill %.1f decode %.2f "
      "(%.1f GB/s, %.0f %% of the %.1f GB/s read roof) | sparrow/llama.cpp prefill %.2fx decode %.2fx"
      % (os.path.basename(sys.argv[3]), sys.argv[4], rate["pp"], rate["tg"], s["prefill_tok_s"], s["decode_tok_s"],
         s["decode_gb_s"], 100 * s["decode_roof_fraction"], s["read_roof_gb_s"], s["prefill_tok_s"] / rate["pp"],
         s["decode_tok_s"] / rate["tg"]))
PY
  done
done
