#!/usr/bin/env bash
# `make models`: reproduces the default model pair shipped in models/ from
# Debian's Python 3 standard library (models/README.md is its model card).
#
#   scripts/make-models.sh [BUILD_DIR] [STAGE...]
#
# Stages (all by default, in this order): vocab target quantize pretrain
# draft draft-corpus install (the last copies the pair into models/):
# pretrain trains the draft on the corpus alone; draft distils it further
# from the target; draft-corpus, the control, continues the pretrained
# draft on the corpus for the same steps instead. Every stage
# is resumable: the training stages checkpoint under $work every 10 steps
# and continue from the checkpoint when run again (an interrupted `make
# models` is continued by running it again), and a stage whose output exists
# in $work is skipped. Environment knobs (defaults are
# what made the shipped files):
#   SPECULA_MODELS_WORK   work directory (checkpoints, vocab)   build/models-work
#   SPECULA_MODELS_OUT    where the finished files go           models
#   TARGET_STEPS PRETRAIN_STEPS DISTILL_STEPS THREADS GEMM
set -euo pipefail

build=${1:-build}
shift || true
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(vocab target quantize pretrain draft draft-corpus install)

specula="$build/specula"
work=${SPECULA_MODELS_WORK:-build/models-work}
out=${SPECULA_MODELS_OUT:-models}
threads=${THREADS:-0}
gemm=${GEMM:-}
target_steps=${TARGET_STEPS:-800}
pretrain_steps=${PRETRAIN_STEPS:-400}
distill_steps=${DISTILL_STEPS:-150}

# The corpus: the newest Python 3 standard library on the machine.
pylib=$(ls -d /usr/lib/python3.[0-9]* 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pylib" ] || [ ! -f "$pylib/os.py" ]; then
  echo "make-models: no Python 3 standard library under /usr/lib (run scripts/install-deps.sh)" >&2
  exit 1
fi
# Held out for evaluation, never trained on (module paths under $pylib).
heldout_modules=(json argparse.py csv.py textwrap.py shlex.py calendar.py dataclasses.py)
mapfile -t all_files < <(find "$pylib" -name '*.py' -type f | LC_ALL=C sort)
train_files=()
eval_files=()
for f in "${all_files[@]}"; do
  rel=${f#"$pylib"/}
  held=0
  for m in "${heldout_modules[@]}"; do
    if [ "$rel" = "$m" ] || [[ "$rel" == "$m"/* ]]; then held=1; fi
  done
  if [ $held -eq 1 ]; then eval_files+=("$f"); else train_files+=("$f"); fi
done

mkdir -p "$work" "$out"
vocab="$work/vocab-8k.gguf"
target_f16="$work/target-f16.gguf"
target="$work/specula-py-target-q8_0.gguf"
pretrained="$work/draft-pretrained-f16.gguf"
pretrained_ckpt="$work/draft-corpus.ckpt.gguf"  # F32 weights: what the next stages start from
draft="$work/specula-py-draft-distilled-f16.gguf"
draft_corpus="$work/draft-corpus-continued-f16.gguf"
gemm_flag=()
[ -n "$gemm" ] && gemm_flag=(--gemm "$gemm")

# Shapes: target ~20M parameters, draft ~2M (models/README.md).
target_shape=(--embd 384 --layers 9 --heads 6 --heads-kv 2 --ff 1024 --ctx 1024)
draft_shape=(--embd 128 --layers 2 --heads 4 --heads-kv 2 --ff 352 --ctx 1024)

# Runs a training command with --checkpoint, adding --resume when the
# checkpoint exists, unless the final output already exists.
run_resumable() {
  local output=$1 checkpoint=$2
  shift 2
  if [ -f "$output" ]; then
    echo "make-models: $output exists, skipping" >&2
    return
  fi
  local resume=()
  [ -f "$checkpoint" ] && resume=(--resume) && echo "make-models: resuming $checkpoint" >&2
  "$@" --checkpoint "$checkpoint" --checkpoint-every 10 "${resume[@]}" --out "$output.tmp"
  mv "$output.tmp" "$output"
}

for stage in "${stages[@]}"; do
  echo "== make-models: $stage ($(date -u +%H:%M:%S))" >&2
  case $stage in
    vocab)
      [ -f "$vocab" ] || "$specula" tokenizer train --input "${train_files[@]}" --vocab-size 8192 \
        --pre default --out "$vocab"
      ;;
    target)
      run_resumable "$target_f16" "$work/target.ckpt.gguf" \
        "$specula" train --vocab "$vocab" --input "${train_files[@]}" \
        --eval-input "${eval_files[@]}" "${target_shape[@]}" --name specula-py-target \
        --seq-len 256 --batch 16 --steps "$target_steps" --lr 1.5e-3 --min-lr 1e-4 \
        --warmup 40 --eval-every 50 --eval-tokens 16384 --log-every 5 --seed 1 \
        -t "$threads" "${gemm_flag[@]}"
      ;;
    quantize)
      [ -f "$target" ] || "$specula" quantize "$target_f16" "$target" q8_0
      ;;
    pretrain)
      # The draft shape trained on the corpus alone (cross-entropy): the
      # start of both the distilled draft and the control.
      run_resumable "$pretrained" "$pretrained_ckpt" \
        "$specula" train --vocab "$vocab" --input "${train_files[@]}" \
        --eval-input "${eval_files[@]}" "${draft_shape[@]}" --name specula-py-draft-pretrained \
        --seq-len 256 --batch 16 --steps "$pretrain_steps" --lr 3e-3 --min-lr 2e-4 --warmup 20 \
        --eval-every 100 --log-every 10 --seed 2 -t "$threads" "${gemm_flag[@]}"
      ;;
    draft)
      # The pretrained draft distilled from the shipped (Q8_0) target, so it
      # imitates what ships: forward KL, 10% teacher continuations.
      run_resumable "$draft" "$work/draft.ckpt.gguf" \
        "$specula" distill --teacher "$target" --input "${train_files[@]}" \
        --eval-input "${eval_files[@]}" --init "$pretrained_ckpt" --name specula-py-draft \
        --loss kl --on-policy-fraction 0.1 --seq-len 256 --batch 16 --steps "$distill_steps" \
        --lr 1e-3 --min-lr 1e-4 --warmup 10 --eval-every 50 --log-every 10 --seed 3 \
        -t "$threads" "${gemm_flag[@]}"
      ;;
    draft-corpus)
      # The control: the same pretrained draft, the same steps and schedule,
      # continued on the corpus alone (cross-entropy).
      run_resumable "$draft_corpus" "$work/draft-control.ckpt.gguf" \
        "$specula" train --vocab "$vocab" --input "${train_files[@]}" \
        --eval-input "${eval_files[@]}" --init "$pretrained_ckpt" \
        --name specula-py-draft-corpus --seq-len 256 --batch 16 --steps "$distill_steps" \
        --lr 1e-3 --min-lr 1e-4 --warmup 10 --eval-every 50 --log-every 10 --seed 3 \
        -t "$threads" "${gemm_flag[@]}"
      ;;
    install)
      cp "$target" "$draft" "$out/"
      cp "$draft_corpus" "$out/specula-py-draft-corpus-f16.gguf"
      echo "make-models: installed the target and both drafts in $out/" >&2
      ;;
    *)
      echo "make-models: unknown stage '$stage' (vocab target quantize pretrain draft draft-corpus install)" >&2
      exit 1
      ;;
  esac
done
