#!/usr/bin/env bash
# The default job of `make run`: the shipped model pair (models/README.md)
# (target and the draft distilled from it)
# completes a Python prompt, plain and speculative, interleaved three times
# each; prints the completion, the acceptance rate and the speedup measured
# in this run, and fails if the two outputs differ.
set -euo pipefail

build=${1:-build}
specula="$build/specula"
target=${SPECULA_TARGET:-models/specula-py-target-q8_0.gguf}
draft=${SPECULA_DRAFT:-models/specula-py-draft-distilled-f16.gguf}
n_predict=${SPECULA_N:-160}
repeats=${SPECULA_REPEATS:-3}
prompt=${SPECULA_PROMPT:-$'class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n'}

for f in "$target" "$draft"; do
  if [ ! -f "$f" ]; then
    echo "run: $f is missing: it ships with the repository (git checkout models/), or rebuild it with make models" >&2
    exit 1
  fi
done

common=(-m "$target" --temp 0 -n "$n_predict" --ignore-eos -q --json)
plain_tps=()
spec_tps=()
for ((r = 1; r <= repeats; r++)); do
  echo "== round $r/$repeats: plain, then speculative" >&2
  plain=$("$specula" generate "${common[@]}" --draft-max 0 "$prompt")
  spec=$("$specula" generate "${common[@]}" -d "$draft" "$prompt")
  if [ "$(jq -c .tokens <<<"$plain")" != "$(jq -c .tokens <<<"$spec")" ]; then
    echo "error: speculative output differs from plain greedy output" >&2
    exit 1
  fi
  plain_tps+=("$(jq .stats.decode_tokens_per_second <<<"$plain")")
  spec_tps+=("$(jq .stats.decode_tokens_per_second <<<"$spec")")
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratios=()
for ((i = 0; i < repeats; i++)); do ratios+=("$(jq -n "${spec_tps[i]} / ${plain_tps[i]}")"); done
field() { jq -r "$1" <<<"$spec"; }

printf '\n%s' "$prompt"
field .text
printf '\n(%s tokens, greedy; identical with and without speculation)\n\n' \
  "$(field .stats.generated_tokens)"
printf '%-13s %12s %12s %16s\n' "mode" "tokens/s" "acceptance" "tokens/pass"
printf '%-13s %12.1f %12s %16.2f\n' "plain" "$(median "${plain_tps[@]}")" "-" 1
printf '%-13s %12.1f %11.1f%% %16.2f\n' "speculative" "$(median "${spec_tps[@]}")" \
  "$(field '.stats.acceptance_rate * 100')" "$(field .stats.tokens_per_pass)"
printf 'speedup: %.2fx median of %d interleaved rounds [%.2f - %.2f]\n' "$(median "${ratios[@]}")" \
  "$repeats" "$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)" \
  "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)"
