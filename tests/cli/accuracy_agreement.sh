#!/usr/bin/env bash
# Sparrow's predictions on the full Fashion-MNIST test set (10,000 held-out
# images) against PyTorch's, committed by the reference forward
# (tools/reference/vit_predict.py, sparse_vision_predict.py) as
# models/NAME-fmnist.t10k-preds.txt: they must agree on >= 99.9 %.
# Usage: accuracy_agreement.sh SPARROW_BINARY SOURCE_DIR [NAME]   NAME: vit (default) | nat | biformer
# (exit 77: data set or model absent)
set -euo pipefail
S="$1"; SRC="$2"; NAME="${3:-vit}"
DS=/usr/share/datasets/fashion-mnist
[ -f "$DS/t10k-images-idx3-ubyte.gz" ] || { echo "skipped: install dataset-fashion-mnist"; exit 77; }
MODEL="$SRC/models/$NAME-fmnist.gguf"; PREDS="$SRC/models/$NAME-fmnist.t10k-preds.txt"
[ -f "$MODEL" ] && [ -f "$PREDS" ] || { echo "skipped: $MODEL or its predictions are absent"; exit 77; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
"$S" accuracy "$MODEL" --idx-images "$DS/t10k-images-idx3-ubyte.gz" \
  --idx-labels "$DS/t10k-labels-idx1-ubyte.gz" --predictions "$TMP/sparrow.txt" --threads 2
paste -d' ' "$TMP/sparrow.txt" "$PREDS" |
  awk '$1 == $2 { same++ } END { printf "agreement with PyTorch: %d / %d = %.2f%%\n", same, NR, 100 * same / NR;
                                 exit !(NR == 10000 && same >= 9990) }'
