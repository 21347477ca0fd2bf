#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang-14 and runs each one for
# a few seconds over its seed corpus (fuzz/corpus/<name>/). A crash, a
# sanitizer report, a leak or an input slower than --timeout fails the run
# and leaves the input in <build>/fuzz-artifacts/ (docs/reliability.md says
# how to turn it into a regression test).
#
#   scripts/fuzz.sh [--seconds N] [--build DIR] [--no-build] [--timeout S] [NAME...]
#
# NAME: gguf, tokenizer, ... (default: every fuzz/fuzz_*.cpp). New inputs
# the fuzzer finds go to <build>/fuzz-work/<name>/, never into the
# repository. The run is time-boxed (-max_total_time), so a slow machine
# runs fewer inputs instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=10
build=build-fuzz-clang
do_build=1
timeout=60
names=()
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --timeout) timeout=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if ((${#names[@]} == 0)); then
  for f in fuzz/fuzz_*.cpp; do
    n=$(basename "$f" .cpp)
    names+=("${n#fuzz_}")
  done
fi

if ((do_build)); then
  for tool in clang-14 clang++-14; do
    command -v "$tool" >/dev/null || {
      echo "fuzz.sh: $tool is missing; run scripts/install-deps.sh (clang-14, libfuzzer-14-dev)" >&2
      exit 1
    }
  done
  if [[ ! -f "$build/build.ninja" ]]; then
    CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DSPECULA_FUZZ=ON -DSPECULA_BUILD_TESTS=OFF -DSPECULA_BUILD_BENCH=OFF >/dev/null
  fi
  targets=()
  for n in "${names[@]}"; do targets+=("fuzz_$n"); done
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
fi

status=0
for n in "${names[@]}"; do
  bin="$build/fuzz/fuzz_$n"
  [[ -x "$bin" ]] || { echo "fuzz.sh: $bin is not built" >&2; exit 1; }
  work="$build/fuzz-work/$n"
  artifacts="$build/fuzz-artifacts"
  mkdir -p "$work" "$artifacts"
  seeds=()
  [[ -d "fuzz/corpus/$n" ]] && seeds+=("$root/fuzz/corpus/$n")
  echo "fuzz.sh: fuzz_$n for ${seconds}s"
  if ! SPECULA_VOCAB_DIR="$root/tests/data/vocab" "$bin" -max_total_time="$seconds" \
      -timeout="$timeout" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$n-" "$work" "${seeds[@]}" >"$build/fuzz-$n.log" 2>&1; then
    tail -n 60 "$build/fuzz-$n.log" >&2
    echo "fuzz.sh: fuzz_$n FAILED; input saved under $artifacts/ (log: $build/fuzz-$n.log)" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/fuzz-$n.log" | tr '\n' ' '
    echo
  fi
done
exit $status
