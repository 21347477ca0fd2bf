#!/usr/bin/env bash
# The default job of `make run`: a ~100M-parameter target and a draft made
# from its first layers (random weights, made once and cached under the build
# directory), then plain and speculative greedy generation of the same prompt
# side by side, with tokens/s, acceptance and the speedup.
#
# Random weights produce random bytes, not language: this run shows the
# engine's mechanics and speed. Trained models replace these once they land.
set -euo pipefail

build=${1:-build}
specula="$build/specula"
models="$build/models"
target="$models/default-target-100m-f16.gguf"
draft="$models/default-draft-2l-f16.gguf"
prompt=${SPECULA_PROMPT:-"def fibonacci(n):"}
n_predict=${SPECULA_N:-128}
draft_max=${SPECULA_DRAFT_MAX:-4}

mkdir -p "$models"
if [ ! -f "$target" ]; then
  echo "== making the default target (once): 16 layers, n_embd 768, ~100M parameters, F16" >&2
  "$specula" make-model --out "$target.tmp" --embd 768 --layers 16 --heads 12 --heads-kv 4 \
    --ff 2048 --ctx 2048 --type f16 --seed 1 --name "specula-default-target"
  mv "$target.tmp" "$target"
fi
if [ ! -f "$draft" ]; then
  echo "== deriving the default draft (once): the target's first 2 layers" >&2
  "$specula" make-model --from "$target" --layers 2 --out "$draft.tmp"
  mv "$draft.tmp" "$draft"
fi

common=(-m "$target" --temp 0 -n "$n_predict" --ignore-eos -q --json)
echo "== plain greedy decoding" >&2
plain=$("$specula" generate "${common[@]}" "$prompt")
echo "== speculative greedy decoding (draft up to $draft_max tokens)" >&2
spec=$("$specula" generate "${common[@]}" -d "$draft" --draft-max "$draft_max" "$prompt")

field() { jq -r "$2" <<<"$1"; }
if [ "$(field "$plain" '.tokens')" != "$(field "$spec" '.tokens')" ]; then
  echo "error: speculative output differs from plain greedy output" >&2
  exit 1
fi
plain_tps=$(field "$plain" '.stats.decode_tokens_per_second')
spec_tps=$(field "$spec" '.stats.decode_tokens_per_second')
printf '\nprompt: %s\n' "$prompt"
printf 'output (%s tokens, identical in both runs; random weights, so random bytes):\n%s\n\n' \
  "$(field "$spec" '.stats.generated_tokens')" "$(field "$spec" '.text' | head -c 300)"
printf '%-13s %12s %12s %16s\n' "mode" "tokens/s" "acceptance" "tokens/pass"
printf '%-13s %12.1f %12s %16.2f\n' "plain" "$plain_tps" "-" "$(field "$plain" '.stats.tokens_per_pass')"
printf '%-13s %12.1f %11.1f%% %16.2f\n' "speculative" "$spec_tps" \
  "$(field "$spec" '.stats.acceptance_rate * 100')" "$(field "$spec" '.stats.tokens_per_pass')"
printf 'speedup: %.2fx (speculative / plain decode tokens/s, same run)\n' \
  "$(jq -n "$spec_tps / $plain_tps")"
