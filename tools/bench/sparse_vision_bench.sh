#!/usr/bin/env bash
# NAT-Mini, DiNAT-Mini and BiFormer-T (random weights at the real shapes, 224x224x3,
# f32, batch 1) next to DeiT-Tiny: Sparrow latency and GFLOP/s, measured in one run.
#
# Usage: tools/bench/sparse_vision_bench.sh [--runs N] [--threads "1 2"] [--models "nat-mini ..."]
# Needs: a build in build/ and /usr/bin/python3 with torch. The model files are written to
# out/bench/ (gitignored, 50-80 MB each; never commit them) on first use:
#   nat-mini-f32.gguf       tools/convert/nat.py --random --variant nat_mini        (seed 0)
#   dinat-mini-f32.gguf     tools/convert/nat.py --random --variant dinat_mini      (seed 0)
#   biformer-tiny-f32.gguf  tools/convert/biformer.py --random --variant biformer_tiny (seed 0)
#   deit-tiny-f32.gguf      tools/bench/deit_tiny.py (seed 2024)
# GFLOP/s = the ops' own FLOP counts (only what each op needs: NA counts K*K keys per
# query, BRA topk*M keys) / the median latency. Also prints `sparrow plan` for each model
# (arena, activations, peak per-op scratch). Report the load (printed before and after):
# on a shared machine compare the models within one run, not across runs.
# With perf(1) installed, each bench also runs under `perf stat -e task-clock` and the
# line gets "cpu_ms_per_run" and "gflops_cpu" = FLOPs / the process's CPU time per run
# (load, plan and warm-up runs included, so slightly pessimistic): CPU time does not count
# the time the process waits for a core, so on an oversubscribed machine it is the steadier
# figure for comparing models.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=10
THREADS="1"
MODELS="deit-tiny nat-mini dinat-mini biformer-tiny"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=out/bench
SPARROW=build/bin/sparrow
[ -x "$SPARROW" ] || { echo "build Sparrow first (cmake --build build)" >&2; exit 1; }
mkdir -p "$OUT"
make_model() {
  local f="$OUT/$1-f32.gguf"
  [ -f "$f" ] && return 0
  case "$1" in
    deit-tiny) /usr/bin/python3 tools/bench/deit_tiny.py --out-dir "$OUT" --no-time --no-onnx >/dev/null ;;
    nat-mini) /usr/bin/python3 tools/convert/nat.py --random --variant nat_mini -o "$f" ;;
    dinat-mini) /usr/bin/python3 tools/convert/nat.py --random --variant dinat_mini -o "$f" ;;
    biformer-tiny) /usr/bin/python3 tools/convert/biformer.py --random --variant biformer_tiny -o "$f" ;;
    *) echo "unknown model $1" >&2; exit 2 ;;
  esac
}
for m in $MODELS; do make_model "$m"; done
for m in $MODELS; do
  echo "== plan $m"
  "$SPARROW" plan "$OUT/$m-f32.gguf" | sed -n '1,4p'
done
echo "load before: $(uptime | sed 's/.*load average: //')"
for t in $THREADS; do
  for m in $MODELS; do
    if command -v perf >/dev/null 2>&1; then
      perf stat -x, -e task-clock -o "$OUT/.perf_stat" \
        "$SPARROW" bench "$OUT/$m-f32.gguf" --threads "$t" --runs "$RUNS" --warmup 2 --json |
        /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
ms = [float(l.split(",")[0]) for l in open(sys.argv[1]) if "task-clock" in l][0]
n = d["runs"] + 2
d["cpu_ms_per_run"] = round(ms / n, 3)
d["gflops_cpu"] = round(d["gflop"] * n / ms * 1e3, 2)
print(json.dumps(d))' "$OUT/.perf_stat"
    else
      "$SPARROW" bench "$OUT/$m-f32.gguf" --threads "$t" --runs "$RUNS" --warmup 2 --json
    fi
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
