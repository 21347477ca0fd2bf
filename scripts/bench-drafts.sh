#!/usr/bin/env bash
# Compares drafts for one target on held-out Python code (docs/benchmarks.md):
# for every held-out module of the shipped pair, a prompt of 30 lines from
# its middle, completed greedily and at T = 1, plain and with each draft,
# interleaved (plain, draft 1, draft 2, ... per prompt). Prints one line per
# draft and temperature: acceptance (accepted / drafted over all prompts),
# tokens per target pass, and the speedup over plain decoding (median and
# range of the per-prompt ratios of decode tokens/s).
#
#   scripts/bench-drafts.sh BUILD_DIR TARGET DRAFT [DRAFT...]
# Environment: N (tokens per completion, 128), EXTRA (more generate flags,
# e.g. "--draft-max 4"), PYLIB (the standard library, default the newest).
set -euo pipefail

build=$1
target=$2
shift 2
drafts=("$@")
specula="$build/specula"
n=${N:-128}
read -r -a extra <<<"${EXTRA:-}"
pylib=${PYLIB:-$(ls -d /usr/lib/python3.[0-9]* | sort -V | tail -1)}
heldout=(json/__init__.py json/decoder.py json/encoder.py argparse.py csv.py textwrap.py shlex.py
  calendar.py dataclasses.py)

prompts=()
for m in "${heldout[@]}"; do
  f="$pylib/$m"
  [ -f "$f" ] || continue
  lines=$(wc -l <"$f")
  start=$((lines / 2))
  prompts+=("$(sed -n "${start},$((start + 29))p" "$f")")
done
echo "bench-drafts: ${#prompts[@]} prompts from $pylib, $n tokens each" >&2

median_range() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2fx [%.2f - %.2f]", m, v[1], v[NR]}'
}

printf '%-46s %5s %11s %12s %s\n' draft T acceptance tokens/pass "speedup (median [min - max])"
for temp in 0 1; do
  declare -A drafted=() accepted=() passes=() generated=() ratios=()
  seed=0
  for p in "${prompts[@]}"; do
    seed=$((seed + 1))
    common=(-m "$target" --temp "$temp" --seed "$seed" -n "$n" --ignore-eos -q --json)
    # --draft-max 0: without it the default drafters (prompt lookup) would
    # speculate even with no draft model, and "plain" would not be plain.
    plain=$("$specula" generate "${common[@]}" --draft-max 0 "$p" | jq .stats.decode_tokens_per_second)
    for d in "${drafts[@]}"; do
      s=$("$specula" generate "${common[@]}" -d "$d" "${extra[@]}" "$p")
      drafted[$d]=$((${drafted[$d]:-0} + $(jq .stats.drafted_tokens <<<"$s")))
      accepted[$d]=$((${accepted[$d]:-0} + $(jq .stats.accepted_tokens <<<"$s")))
      passes[$d]=$((${passes[$d]:-0} + $(jq .stats.target_passes <<<"$s")))
      generated[$d]=$((${generated[$d]:-0} + $(jq .stats.generated_tokens <<<"$s")))
      ratios[$d]="${ratios[$d]:-} $(jq -n "$(jq .stats.decode_tokens_per_second <<<"$s") / $plain")"
    done
  done
  for d in "${drafts[@]}"; do
    read -r -a r <<<"${ratios[$d]}"
    printf '%-46s %5s %10.1f%% %12.2f %s\n' "$(basename "$d")" "$temp" \
      "$(jq -n "100 * ${accepted[$d]} / ([${drafted[$d]}, 1] | max)")" \
      "$(jq -n "${generated[$d]} / ${passes[$d]}")" "$(median_range "${r[@]}")"
  done
  unset drafted accepted passes generated ratios
done
