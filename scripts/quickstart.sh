#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine: install the dependencies,
# build, and classify a bundled sample image with the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
sample=$(ls models/samples/*.png | head -n 1)
echo "+ build/bin/sparrow classify $sample"
build/bin/sparrow classify "$sample"
