#!/bin/bash
# tools/bench/coreinfer_rounds.sh — the core-neuron decode benchmark of docs/coreinfer.md in rounds,
# and the spread of its ratios. On this host one round's sparse/dense decode ratio moves between
# about 1.3x and 1.6x with the host's DRAM state, so one number says little; this prints them all.
#
#   tools/bench/coreinfer_rounds.sh [--rounds N] [--threads T] [--prompt N] [--gen N]
#       [--sparse-ffn SPEC] [--interleave N] [--recache] [--llama-bench PATH] SPARSE.gguf DENSE.gguf
#
# Each round runs `sparrow bench SPARSE --sparse-ffn SPEC --compare-dense --dense-model DENSE
# --runs 3 --warmup 1 --interleave N [--recache] --json` (prefills A B B A, the two decodes alternate every N tokens,
# default 16, 0: whole runs; --recache: both files re-read into the page cache first, in the first
# round only) and, with --llama-bench (one you built yourself from llama.cpp; this script neither
# downloads nor builds it), `llama-bench -m DENSE -r 3` in the same round. Prints each round, then
# the median and range of the decode and prefill ratios and how many rounds reach decode >= 1.5x
# and prefill >= 0.9x of dense (and, with --llama-bench, decode >= 1.5x llama.cpp's). Not part of CI.
# Defaults: 5 rounds, 2 threads, prompt 64, gen 128, core:0.4,layers=all.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SPARROW=${SPARROW:-$root/build/bin/sparrow}
rounds=5 threads=2 prompt=64 gen=128 spec="core:0.4,layers=all" lb="" interleave=16 rc_flag=""
files=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    --sparse-ffn) spec=$2; shift 2 ;;
    --llama-bench) lb=$2; shift 2 ;;
    --interleave) interleave=$2; shift 2 ;;
    --recache) rc_flag=--recache; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
[ ${#files[@]} -eq 2 ] || { echo "usage: $0 [options] SPARSE.gguf DENSE.gguf (--help)" >&2; exit 2; }
[ -x "$SPARROW" ] || { echo "$SPARROW: build Sparrow first (or set SPARROW=...)" >&2; exit 1; }
[ -z "$lb" ] || [ -x "$lb" ] || { echo "$lb: not an executable llama-bench" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq "$rounds"); do
  s=$("$SPARROW" bench "${files[0]}" --threads "$threads" --prompt "$prompt" --gen "$gen" --runs 3 --warmup 1 \
    --sparse-ffn "$spec" --compare-dense --dense-model "${files[1]}" --interleave "$interleave" $rc_flag --json)
  rc_flag=""
  l="[]"
  [ -z "$lb" ] || l=$("$lb" -m "${files[1]}" -p "$prompt" -n "$gen" -t "$threads" -r 3 -o json 2>/dev/null)
  printf '%s\t%s\t%s\t%s\n' "$r" "$(date -u +%H:%M:%S)" "$s" "$(echo "$l" | tr -d '\n')" >>"$log"
  /usr/bin/python3 - "$log" <<'PY'
import json, sys
r, t, s, l = open(sys.argv[1]).read().splitlines()[-1].split("\t")
s, l = json.loads(s), json.loads(l)
tg = [x["avg_ts"] for x in l if x["n_prompt"] == 0]
print("round %s %s: sparse decode %.2f prefill %.2f | dense decode %.2f prefill %.2f | decode %.3fx prefill %.3fx%s"
      % (r, t, s["decode_tok_s"], s["prefill_tok_s"], s["dense_decode_tok_s"], s["dense_prefill_tok_s"],
         s["decode_speedup"], s["prefill_ratio"],
         " | llama.cpp decode %.2f (sparse %.2fx)" % (tg[0], s["decode_tok_s"] / tg[0]) if tg else ""))
PY
done
/usr/bin/python3 - "$log" <<'PY'
import json, statistics, sys
lines = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
rows = [json.loads(f[2]) for f in lines]
d = [x["decode_speedup"] for x in rows]
p = [x["prefill_ratio"] for x in rows]
print("decode sparse/dense: median %.3fx, range %.3f-%.3fx, %d of %d rounds >= 1.5x"
      % (statistics.median(d), min(d), max(d), sum(v >= 1.5 for v in d), len(d)))
print("prefill sparse/dense: median %.3fx, range %.3f-%.3fx, %d of %d rounds >= 0.9x"
      % (statistics.median(p), min(p), max(p), sum(v >= 0.9 for v in p), len(p)))
# sparse decode / llama.cpp's dense decode, for the rounds that ran llama-bench
lc = []
for f, x in zip(lines, rows):
    tg = [y["avg_ts"] for y in json.loads(f[3]) if y["n_prompt"] == 0]
    if tg:
        lc.append(x["decode_tok_s"] / tg[0])
if lc:
    print("decode sparse/llama.cpp dense: median %.3fx, range %.3f-%.3fx, %d of %d rounds >= 1.5x"
          % (statistics.median(lc), min(lc), max(lc), sum(v >= 1.5 for v in lc), len(lc)))
PY
