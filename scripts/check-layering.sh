#!/usr/bin/env bash
# Checks docs/architecture.md's rule: a part of src/ includes only the parts
# below it. Prints each offending include and exits 1; run by ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

# part: the parts it may include besides itself and the public include/specula.
declare -A allowed=(
  [core]=""
  [kernels]="core"
  [gguf]="core"
  [model]="core kernels gguf"
  [tokenizer]="core gguf"
  [sampling]="core"
  [learn]="core kernels gguf model"
  [train]="core kernels gguf model learn tokenizer sampling"
  [policies]="core sampling"
  [speculative]="core kernels gguf model sampling policies"
  [drafters]="core kernels gguf model sampling policies speculative"
  [online]="core kernels gguf model sampling policies speculative drafters learn"
  [engine]="core kernels gguf model sampling policies speculative drafters online learn tokenizer"
  [benchmark]="core kernels gguf model sampling policies speculative drafters online learn tokenizer engine"
  [chat]="core gguf tokenizer"
  [serve]="core kernels gguf model sampling policies speculative drafters online learn tokenizer engine chat"
)

status=0
for dir in src/*/; do
  part=$(basename "$dir")
  [ "$part" = cli ] && continue  # the front end may include every part
  if [ -z "${allowed[$part]+set}" ]; then
    echo "src/$part: a part the layering check does not know: add it to scripts/check-layering.sh and docs/architecture.md"
    status=1
    continue
  fi
  while IFS= read -r line; do
    file=${line%%:*}
    included=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$line")
    [ "$included" = "$part" ] || [ "$included" = specula ] && continue
    if ! grep -qw -- "$included" <<<"${allowed[$part]}"; then
      echo "$file includes $included/, which is above $part (docs/architecture.md)"
      status=1
    fi
  done < <(grep -rHE '^#include "[a-z_]+/' "$dir" || true)
done
[ $status -eq 0 ] && echo "layering: every part includes only the parts below it"
exit $status
