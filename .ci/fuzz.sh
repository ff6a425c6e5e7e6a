#!/usr/bin/env bash
# Fuzzing in CI: builds the libFuzzer targets (clang, ASan + UBSan, LSan),
# replays each committed corpus and regression folder, then fuzzes each target
# for SECONDS (default 60). Any crash, leak, timeout or sanitizer report fails.
# Usage: .ci/fuzz.sh [SECONDS] [TARGET...]   (build folder: build-fuzz)
# Findings are written to build-fuzz/fuzz-artifacts/; a crash's reproducer goes
# to tests/fuzz/regressions/<target>/ with its fix (see tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_gguf fuzz_tokenizer fuzz_image fuzz_cli)
BUILD=build-fuzz

if ! command -v clang > /dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q "ok installed"; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    clang libclang-rt-dev
fi

CC=clang cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPR_FUZZ=ON \
  -DSPR_BUILD_TESTS=OFF -DSPR_BUILD_TOOLS=OFF > /dev/null
cmake --build "$BUILD" -j "$(nproc)"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ART="$BUILD/fuzz-artifacts"
mkdir -p "$ART"
summary=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/$t"
  corpus="tests/fuzz/corpus/$t"
  regress="tests/fuzz/regressions/$t"
  work="$BUILD/fuzz-work/$t"
  mkdir -p "$work"
  case "$t" in # inputs large enough for the target's formats, small enough to keep executions fast
    fuzz_gguf) max_len=131072 ;;
    fuzz_image) max_len=65536 ;;
    fuzz_tokenizer) max_len=8192 ;;
    *) max_len=4096 ;;
  esac
  opts=(-timeout=25 -rss_limit_mb=4096 -max_len=$max_len -artifact_prefix="$ART/$t-" -print_final_stats=1)
  [ -f "tests/fuzz/$t.dict" ] && opts+=(-dict="tests/fuzz/$t.dict")
  # the CLI and image harnesses print one error line per bad input: keep libFuzzer's output only
  case "$t" in fuzz_cli | fuzz_image) opts+=(-close_fd_mask=3) ;; *) opts+=(-close_fd_mask=1) ;; esac

  echo "=== $t: replay the corpus and the regressions"
  log="$BUILD/fuzz-work/$t.replay.log"
  if ! "$bin" "${opts[@]}" -runs=0 "$corpus" "$regress" > "$log" 2>&1; then
    echo "$t FAILED on a committed input; the last lines of $log:"
    tail -n 40 "$log"
    exit 1
  fi
  grep -E "INITED|DONE" "$log" | tail -n 2

  echo "=== $t: fuzz for ${SECS}s"
  log="$BUILD/fuzz-work/$t.log"
  set +e
  "$bin" "${opts[@]}" -max_total_time="$SECS" "$work" "$corpus" > "$log" 2>&1
  rc=$?
  set -e
  grep -E "^(#[0-9]+[[:space:]]+DONE|stat::|==[0-9]+==ERROR|SUMMARY|fuzz: )" "$log" || true
  if [ $rc != 0 ]; then
    echo "$t FAILED (exit $rc); the last lines of $log:"
    tail -n 40 "$log"
    exit 1
  fi
  done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  summary+=("$(printf '%-15s %10s execs %8s exec/s  cov %6s  ft %6s  crashes 0' "$t" "$execs" "$eps" "$cov" "$ft")")
done
echo "=== fuzz summary (${SECS}s per target)"
printf '%s\n' "${summary[@]}"
