#!/usr/bin/env bash
# Overlays saved `specula bench --json` results in two PNG plots, one line
# per run: the verify-cost curve t(n)/t(1) and the speedup against the draft
# length g. For comparing runs (weight types, thread counts, machines);
# `specula bench --plot-dir` already plots a single run.
#
#   specula bench -m f16.gguf -d draft.gguf --json > f16.json
#   specula bench -m q8.gguf  -d draft.gguf --json > q8.json
#   scripts/plot-bench.sh plots/ f16.json q8.json
#
# Each run is labelled with its JSON file name (without .json). Needs jq and
# gnuplot (Debian: jq gnuplot-nox).
set -euo pipefail

usage() {
  echo "usage: $0 OUT_DIR RESULT.json [RESULT.json ...]" >&2
  exit 2
}
[ $# -ge 2 ] || usage
out=$1
shift
for tool in jq gnuplot; do
  if ! command -v "$tool" >/dev/null; then
    echo "plot-bench: $tool is not installed (Debian: apt-get install ${tool/gnuplot/gnuplot-nox})" >&2
    exit 1
  fi
done
mkdir -p "$out"

verify_plots=()
speedup_plots=()
for result in "$@"; do
  if ! jq -e '.verify.points' "$result" >/dev/null 2>&1; then
    echo "plot-bench: $result is not the JSON of 'specula bench --json'" >&2
    exit 1
  fi
  label=$(basename "$result" .json)
  safe=$(printf '%s' "$label" | tr -c 'A-Za-z0-9_.-' '_')
  # Columns as in `specula bench --plot-dir`: n, ratio median/min/max.
  jq -r '.verify.points[] | "\(.rows) \(.ratio.median) \(.ratio.min) \(.ratio.max)"' \
    "$result" >"$out/$safe.verify.dat"
  verify_plots+=("'$safe.verify.dat' using 1:2:3:4 with yerrorlines lw 2 title '${label//\'/}'")
  if [ "$(jq '.speculative | length' "$result")" -gt 0 ]; then
    # g, speedup median/min/max.
    jq -r '.speculative[] | "\(.draft_max) \(.speedup.median) \(.speedup.min) \(.speedup.max)"' \
      "$result" >"$out/$safe.speedup.dat"
    speedup_plots+=("'$safe.speedup.dat' using 1:2:3:4 with yerrorlines lw 2 title '${label//\'/}'")
  fi
done

join() {
  local IFS=,
  echo "$*"
}
{
  echo "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 900,600 noenhanced } else { set terminal png size 900,600 noenhanced }"
  echo "set grid; set key top left"
  echo "set output 'verify-cost.png'"
  echo "set title 'verify cost t(n)/t(1) (median, min-max)'"
  echo "set xlabel 'rows n in one target forward'; set ylabel 't(n) / t(1)'"
  echo "set yrange [0:*]"
  echo "plot $(join "${verify_plots[@]}"), 1 with lines dt 2 lc rgb 'dark-green' title 'flat: memory-bound ideal'"
  echo "set output"
  if [ ${#speedup_plots[@]} -gt 0 ]; then
    echo "set output 'speedup.png'"
    echo "set title 'speculative / plain decode tokens/s (median, min-max)'"
    echo "set xlabel 'draft length g'; set ylabel 'speedup'; set offsets 0.5, 0.5, 0, 0"
    echo "plot $(join "${speedup_plots[@]}"), 1 with lines dt 3 lc rgb 'black' title 'plain'"
    echo "set output"
  fi
} >"$out/compare.gp"
(cd "$out" && gnuplot compare.gp)
echo "plot-bench: wrote $out/verify-cost.png${speedup_plots:+ and $out/speedup.png}" >&2
