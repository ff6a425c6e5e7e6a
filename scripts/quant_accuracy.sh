#!/usr/bin/env bash
# Accuracy of quantized vision models: for every GGUF given, quantize it to each
# type (default q8_0 and q4_0) with `sparrow quantize` (default rules: the linear
# layers only, see docs/quant-vision.md), run `sparrow accuracy` on the whole
# held-out set for the original and every quantized file, and print a Markdown
# table: file size, top-1, the change against the original, and the agreement of
# the predictions with the original's (same class on the same image).
#
# Usage: scripts/quant_accuracy.sh [options] MODEL.gguf...
#   --sparrow BIN      the sparrow binary (default build/bin/sparrow)
#   --images F         IDX images (default Fashion-MNIST t10k from Debian's dataset-fashion-mnist)
#   --labels F         IDX labels (default the matching t10k labels)
#   --types "T..."     quantized types to measure (default "q8_0 q4_0")
#   --threads N        threads for quantize and accuracy (default 2)
#   --max-drop P       exit 1 when a q8_0 top-1 is more than P points below the original's
#                      (default 0.3, the issue's bar; "" disables the check)
#   --keep DIR         keep the quantized files and prediction lists in DIR
# Exit status: 0 when all ran (and the q8_0 bar holds), 1 otherwise, 77 when the data set is absent.
# The original is whatever the GGUF holds (F32 or F16 weights): its row says which.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S="$ROOT/build/bin/sparrow"
DS=/usr/share/datasets/fashion-mnist
IMAGES="$DS/t10k-images-idx3-ubyte.gz"
LABELS="$DS/t10k-labels-idx1-ubyte.gz"
TYPES="q8_0 q4_0"
THREADS=2
MAX_DROP=0.3
KEEP=""
MODELS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sparrow) S="$2"; shift 2 ;;
    --images) IMAGES="$2"; shift 2 ;;
    --labels) LABELS="$2"; shift 2 ;;
    --types) TYPES="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --max-drop) MAX_DROP="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "quant_accuracy.sh: unknown option $1" >&2; exit 2 ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
[ ${#MODELS[@]} -gt 0 ] || { echo "usage: scripts/quant_accuracy.sh [options] MODEL.gguf... (--help)" >&2; exit 2; }
[ -x "$S" ] || { echo "quant_accuracy.sh: no sparrow binary at $S (build first or pass --sparrow)" >&2; exit 2; }
if [ ! -f "$IMAGES" ] || [ ! -f "$LABELS" ]; then
  echo "skipped: $IMAGES or $LABELS is missing (apt-get install dataset-fashion-mnist)" >&2
  exit 77
fi
if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"; WORK="$KEEP"
else
  WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
fi

# accuracy MODEL PREDS -> "correct images top1 seconds"
accuracy() {
  "$S" accuracy "$1" --idx-images "$IMAGES" --idx-labels "$LABELS" --json --predictions "$2" --threads "$THREADS" |
    sed -E 's/.*"images": ([0-9]+), "correct": ([0-9]+), "top1": ([0-9.]+), "seconds": ([0-9.]+).*/\2 \1 \3 \4/'
}
# weight_type MODEL -> the type of its largest tensor data (what "F32" means for this file)
weight_type() {
  "$S" info "$1" | awk '/^types:/ { on = 1; next } on && /tensors/ { if ($4 + 0 > best) { best = $4 + 0; t = $1 } }
                       END { print toupper(t) }'
}

status=0
echo "| model | weights | file size | top-1 | vs original | agreement with original |"
echo "|---|---|---|---|---|---|"
for M in "${MODELS[@]}"; do
  base=$(basename "$M" .gguf)
  read -r c0 n0 t0 s0 < <(accuracy "$M" "$WORK/$base.preds.txt")
  wt=$(weight_type "$M")
  printf '| `%s` | %s (original) | %.2f MB | %.2f %% (%d / %d) | | |\n' "$base" "$wt" \
    "$(echo "$(stat -c %s "$M") / 1000000" | bc -l)" "$t0" "$c0" "$n0"
  echo "$base $wt: top-1 $t0 % in $s0 s" >&2
  for T in $TYPES; do
    Q="$WORK/$base-$T.gguf"
    "$S" quantize "$M" "$Q" "$T" --threads "$THREADS" > "$WORK/$base-$T.quantize.log"
    read -r c n t s < <(accuracy "$Q" "$WORK/$base-$T.preds.txt")
    same=$(paste -d' ' "$WORK/$base.preds.txt" "$WORK/$base-$T.preds.txt" | awk '$1 == $2 { k++ } END { print k + 0 }')
    conv=$(sed -nE 's/^total: ([0-9]+) tensors, ([0-9]+) converted.*/\2 of \1 tensors/p' "$WORK/$base-$T.quantize.log")
    drop=$(echo "$t0 - $t" | bc -l)
    printf '| `%s` | %s (%s) | %.2f MB | %.2f %% (%d / %d) | %+.2f | %.2f %% (%d / %d) |\n' "$base" \
      "$(echo "$T" | tr a-z A-Z)" "$conv" "$(echo "$(stat -c %s "$Q") / 1000000" | bc -l)" "$t" "$c" "$n" \
      "$(echo "$t - $t0" | bc -l)" "$(echo "100 * $same / $n" | bc -l)" "$same" "$n"
    echo "$base $T: top-1 $t % in $s s, agreement $same / $n" >&2
    if [ "$T" = q8_0 ] && [ -n "$MAX_DROP" ] && [ "$(echo "$drop > $MAX_DROP" | bc -l)" = 1 ]; then
      echo "$base: Q8_0 top-1 is $drop points below the original's (more than $MAX_DROP)" >&2
      status=1
    fi
  done
done
exit $status
