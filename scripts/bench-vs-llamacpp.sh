#!/usr/bin/env bash
# specula against llama.cpp on the same GGUF files, same thread counts, in
# alternating rounds (issue 17; results in docs/benchmarks.md). Prints one
# markdown report on stdout (progress goes to stderr):
#
#  1. the machine: CPU model, cores, vector extensions, and the read
#     bandwidth measured in this run (specula bench's probe);
#  2. kernels, per weight type and thread count: decode and prefill
#     tokens/s (`specula bench` against `llama-bench`) and the verify cost
#     t(n)/t(1) for n = 8 and 16 (specula bench's verify curve against
#     llama-bench's prompt processing of n tokens);
#  3. speculative decoding on the padded shipped pair: the shipped target
#     padded to a memory-bound size (`specula make-model --pad-from`, the
#     same function) with the shipped distilled draft, plain and
#     speculative in both engines, greedy, on held-out Python prompts.
#
# Figures are medians [min - max] over rounds; the ratios are taken per
# round (and prompt), each pair run back to back, the engine that goes
# first alternating between rounds.
#
#   LLAMA_CPP_DIR=/path/to/llama.cpp scripts/bench-vs-llamacpp.sh BUILD_DIR
#
# LLAMA_CPP_DIR is a llama.cpp build made outside this repository (this
# script never downloads or builds it): the folder holding llama-bench,
# or one whose bin/ or build/bin/ does. It needs llama-bench,
# llama-speculative-simple (or llama-speculative) and llama-completion (or
# llama-cli) for plain decoding. SPECULA_ONLY=1 runs specula's half alone.
#
# Environment (default in brackets):
#   WORK          folder for the models made here and the raw outputs,
#                 reused by later runs [/tmp/specula-vs-llamacpp]
#   PARTS         kernels, spec or both [kernels,spec]
#   THREADS       thread counts, comma-separated [every core: nproc]
#   ROUNDS        alternating rounds [3]
#   TYPES         weight types for the kernel part [f16,q8_0,q4_0]
#   KERNEL_MODEL  random: the ~0.8B Llama shape of issue 17 (embd 2048,
#                 16 layers, 32/4 heads, ff 5632, vocab 32000), made with
#                 make-model and converted with specula quantize; padded:
#                 the padded shipped target converted to each type; or a
#                 GGUF path (converted to each type) [random]
#   REPEATS       repeats inside each specula bench / llama-bench run [3]
#   PP, TG        prefill and decode tokens in the kernel part [64, 64]
#   VERIFY_MAX    the largest n of the verify cost t(n)/t(1): 16, 32 or 64;
#                 from 32 a table of the curve at n = 2, 4, ..., VERIFY_MAX
#                 follows the kernels table [16]
#   BANDWIDTH_MB  buffer of the bandwidth probe, MiB [2048]
#   PAD_LAYERS, PAD_FF, PAD_TYPE
#                 the padded target [28, 16384, f16: 1.1 GB of F16]
#   DRAFT         [models/specula-py-draft-distilled-f16.gguf]
#   SPEC_N        tokens per completion [128]
#   SPEC_PROMPTS  held-out prompts (30 lines from the middle of a Python
#                 standard-library module never trained on) [3]
#   SPEC_TEXT     python: those prompts; prose: 30 lines from the middle of
#                 Debian's license texts (/usr/share/common-licenses), which
#                 the Python-trained pair drafts poorly [python]
#   SPEC_THREADS  threads of the speculative part [the largest of THREADS]
#   SPEC_DRAFT_MAX  draft length bound of llama.cpp, and of a second
#                 specula row next to its default [8]
#   SPEC_FIXED    fixed draft lengths g run by specula too (--policy fixed),
#                 comma-separated, to compare its default with the best
#                 fixed setting; empty for none [empty]
#   SPEC_DRAFTERS drafter sets run by specula too (--drafter), separated by
#                 spaces, e.g. "model lookup" to compare the default bandit
#                 over both with each one alone [empty]
#   PYLIB         the Python standard library [the newest /usr/lib/python3.*]
#   LLAMA_CPP_VERSION  how the report names llama.cpp's build [what llama-cli
#                 --version says]
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() {
  echo "bench-vs-llamacpp: $*" >&2
  exit 1
}
[ $# -eq 1 ] || { usage >&2; exit 2; }
case $1 in -h | --help) usage; exit 0 ;; esac

build=$1
specula=$build/specula
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$specula" ] || die "$specula is not an executable: build specula first (cmake --build $build --target specula_cli)"
command -v jq >/dev/null || die "jq is missing (scripts/install-deps.sh installs it)"

work=${WORK:-/tmp/specula-vs-llamacpp}
parts=${PARTS:-kernels,spec}
threads_list=${THREADS:-$(nproc)}
rounds=${ROUNDS:-3}
types=${TYPES:-f16,q8_0,q4_0}
kernel_model=${KERNEL_MODEL:-random}
repeats=${REPEATS:-3}
pp=${PP:-64}
tg=${TG:-64}
verify_max=${VERIFY_MAX:-16}
bandwidth_mb=${BANDWIDTH_MB:-2048}
pad_layers=${PAD_LAYERS:-28}
pad_ff=${PAD_FF:-16384}
pad_type=${PAD_TYPE:-f16}
target=$repo/models/specula-py-target-q8_0.gguf
draft=${DRAFT:-$repo/models/specula-py-draft-distilled-f16.gguf}
spec_n=${SPEC_N:-128}
spec_prompts=${SPEC_PROMPTS:-3}
spec_draft_max=${SPEC_DRAFT_MAX:-8}
specula_only=${SPECULA_ONLY:-0}
llama_ctx=$((spec_n + 1024))  # the prompt (30 lines) and the completion

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"; }
for v in rounds repeats pp tg bandwidth_mb pad_layers pad_ff spec_n spec_prompts spec_draft_max; do
  positive "${v^^}" "${!v}"
done
case $verify_max in 16 | 32 | 64) ;; *) die "VERIFY_MAX must be 16, 32 or 64, not '$verify_max'" ;; esac
verify_ns=()
for n in 2 4 8 16 32 64; do
  if ((n <= verify_max)); then verify_ns+=("$n"); fi
done
IFS=, read -r -a threads <<<"$threads_list"
for t in "${threads[@]}"; do positive THREADS "$t"; done
spec_threads=${SPEC_THREADS:-$(printf '%s\n' "${threads[@]}" | sort -n | tail -1)}
positive SPEC_THREADS "$spec_threads"
IFS=, read -r -a type_list <<<"$types"
for p in ${parts//,/ }; do
  case $p in kernels | spec) ;; *) die "PARTS names '$p'; use kernels, spec or kernels,spec" ;; esac
done
want() { [[ ,$parts, == *,$1,* ]]; }
for f in "$target" "$draft"; do
  [ -f "$f" ] || die "$f is missing: it ships with the repository (git checkout models/)"
done

# llama.cpp's tools, found in LLAMA_CPP_DIR.
llama_bin=""
if [ "$specula_only" != 1 ]; then
  [ -n "${LLAMA_CPP_DIR:-}" ] || die "set LLAMA_CPP_DIR to a llama.cpp build (or SPECULA_ONLY=1 for specula's half alone)"
  for d in "$LLAMA_CPP_DIR" "$LLAMA_CPP_DIR/bin" "$LLAMA_CPP_DIR/build/bin"; do
    if [ -x "$d/llama-bench" ]; then llama_bin=$d; break; fi
  done
  [ -n "$llama_bin" ] || die "no llama-bench in $LLAMA_CPP_DIR, its bin/ or build/bin/: build llama.cpp there first (cmake -B build && cmake --build build)"
  llama_spec=$llama_bin/llama-speculative-simple
  [ -x "$llama_spec" ] || llama_spec=$llama_bin/llama-speculative
  llama_plain=$llama_bin/llama-completion
  llama_plain_flags=()
  if [ ! -x "$llama_plain" ]; then
    llama_plain=$llama_bin/llama-cli
    llama_plain_flags=(-no-cnv)
  fi
  if want spec; then
    [ -x "$llama_spec" ] || die "no llama-speculative-simple or llama-speculative in $llama_bin"
    [ -x "$llama_plain" ] || die "no llama-completion or llama-cli in $llama_bin"
  fi
  # Rows appended to a context of PP tokens, as specula's verify curve does,
  # where this llama-bench has --n-depth.
  llama_depth=()
  if "$llama_bin/llama-bench" --help 2>&1 | grep -q -- '--n-depth'; then llama_depth=(-d "$pp"); fi
fi

mkdir -p "$work/runs" || die "cannot make $work"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
runs=$work/runs/$stamp
mkdir -p "$runs"
log() { echo "bench-vs-llamacpp: $*" >&2; }

# "median [min - max]" of the arguments, with `digits` decimals.
stats() {
  local digits=$1
  shift
  [ $# -gt 0 ] || { echo "-"; return; }
  printf '%s\n' "$@" | sort -g | awk -v d="$digits" '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    fmt = "%." d "f [%." d "f - %." d "f]"; printf fmt, m, v[1], v[NR]}'
}
median() {
  [ $# -gt 0 ] || { echo "-"; return; }
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    printf "%.4g", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.4f", a / b; else print "nan" }'; }

# ---------------------------------------------------------------- models
make_kernel_model() {  # TYPE -> path
  local type=$1 base out
  case $kernel_model in
    random)
      base=$work/random-0.8b-f16.gguf
      if [ ! -f "$base" ]; then
        log "making $base (836M parameters, F16)"
        "$specula" make-model --out "$base" --vocab 32000 --embd 2048 --layers 16 --heads 32 \
          --heads-kv 4 --ff 5632 --ctx 2048 --type f16 --seed 7 >&2
      fi
      [ "$type" = f16 ] && { echo "$base"; return; }
      ;;
    padded)
      case $type in
        f32 | f16 | bf16 | q8_0 | q4_0 | q4_k | q5_k | q6_k)
          make_padded_target "$type"
          return
          ;;
      esac
      base=$(make_padded_target f16)
      ;;
    *)
      [ -f "$kernel_model" ] || die "KERNEL_MODEL $kernel_model: no such file (use random, padded or a GGUF path)"
      base=$kernel_model
      ;;
  esac
  out=$work/kernel-$(basename "${base%.gguf}")-$type.gguf
  if [ ! -f "$out" ]; then
    log "converting $base to $type"
    "$specula" quantize "$base" "$out" "$type" >&2
  fi
  echo "$out"
}

make_padded_target() {  # [TYPE] -> path
  local type=${1:-$pad_type}
  local out=$work/specula-py-target-pad-L$pad_layers-ff$pad_ff-$type.gguf
  if [ ! -f "$out" ]; then
    log "padding the shipped target to $pad_layers layers, ff $pad_ff, $type"
    "$specula" make-model --pad-from "$target" --layers "$pad_layers" --ff "$pad_ff" \
      --type "$type" --out "$out" >&2
  fi
  echo "$out"
}

# ---------------------------------------------------------------- machine
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
sockets=$(lscpu | sed -n 's/^Socket(s): *//p' | head -1)
cores_per_socket=$(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1)
l3=$(lscpu | sed -n 's/^L3 cache: *//p' | head -1)
extensions=$(grep -m1 -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_int8|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)
specula_commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
llama_version="-"
if [ -n "$llama_bin" ]; then
  # llama-bench has no --version; a build from a source snapshot (no git)
  # says "version: 0 (unknown)": LLAMA_CPP_VERSION names it then.
  llama_version=${LLAMA_CPP_VERSION:-$(LD_LIBRARY_PATH="$llama_bin:${LD_LIBRARY_PATH:-}" \
    "$llama_bin/llama-cli" --version 2>&1 | grep -m1 '^version' || echo "-")}
fi

# Bandwidth figures of this run: "threads value" lines.
bandwidth_file=$runs/bandwidth.txt
: >"$bandwidth_file"

# ---------------------------------------------------------------- kernels
# s_curve / l_curve: t(n)/t(1) per "type threads n", one value per round.
declare -A s_dec s_pre s_curve l_dec l_pre l_curve r_dec r_pre s_share l_share
kernel_round() {  # TYPE THREADS ROUND MODEL
  local type=$1 t=$2 round=$3 model=$4 key="$1 $2" order sj lj lv sd sp ld lp bw
  if ((round % 2)); then order="specula llama"; else order="llama specula"; fi
  [ "$specula_only" = 1 ] && order=specula
  for engine in $order; do
    if [ "$engine" = specula ]; then
      sj=$runs/kernel-$type-t$t-r$round-specula.json
      log "round $round: specula bench $type, $t threads"
      "$specula" bench -m "$model" -t "$t" -r "$repeats" -P "$pp" -G "$tg" --max-verify "$verify_max" \
        --policy none --bandwidth-mb "$bandwidth_mb" --json -q >"$sj"
    else
      lj=$runs/kernel-$type-t$t-r$round-llama.json
      lv=$runs/kernel-$type-t$t-r$round-llama-verify.json
      log "round $round: llama-bench $type, $t threads"
      "$llama_bin/llama-bench" -m "$model" -t "$t" -r "$repeats" -p "$pp" -n "$tg" -o json \
        >"$lj" 2>"$lj.log"
      "$llama_bin/llama-bench" -m "$model" -t "$t" -r "$repeats" -p "1,$(IFS=,; echo "${verify_ns[*]}")" -n 0 \
        "${llama_depth[@]}" -o json >"$lv" 2>"$lv.log"
    fi
  done
  sd=$(jq .decode.tokens_per_second.median "$sj")
  sp=$(jq .prefill.tokens_per_second.median "$sj")
  bw=$(jq .read_bandwidth.gb_per_second.median "$sj")
  echo "$t $bw" >>"$bandwidth_file"
  s_dec[$key]+=" $sd"
  s_pre[$key]+=" $sp"
  local n
  for n in "${verify_ns[@]}"; do
    s_curve[$key $n]+=" $(jq ".verify.points[] | select(.rows == $n) | .ratio.median" "$sj")"
  done
  s_share[$key]+=" $(jq .decode.bandwidth_fraction "$sj")"
  [ "$specula_only" = 1 ] && return
  ld=$(jq "[.[] | select(.n_prompt == 0 and .n_gen == $tg) | .avg_ts][0]" "$lj")
  lp=$(jq "[.[] | select(.n_prompt == $pp and .n_gen == 0) | .avg_ts][0]" "$lj")
  local ts1 tsn
  ts1=$(jq '[.[] | select(.n_prompt == 1 and .n_gen == 0) | .avg_ts][0]' "$lv")
  l_dec[$key]+=" $ld"
  l_pre[$key]+=" $lp"
  # t(n) = n / (tokens/s of n rows), so t(n)/t(1) = n * ts(1) / ts(n).
  for n in "${verify_ns[@]}"; do
    tsn=$(jq "[.[] | select(.n_prompt == $n and .n_gen == 0) | .avg_ts][0]" "$lv")
    l_curve[$key $n]+=" $(awk -v a="$ts1" -v b="$tsn" -v n="$n" 'BEGIN { printf "%.4f", n * a / b }')"
  done
  l_share[$key]+=" $(jq -n "$ld * $(jq .target_weight_bytes "$sj") / ($bw * 1e9)")"
  r_dec[$key]+=" $(ratio "$sd" "$ld")"
  r_pre[$key]+=" $(ratio "$sp" "$lp")"
}

if want kernels; then
  declare -A kernel_models
  for type in "${type_list[@]}"; do kernel_models[$type]=$(make_kernel_model "$type"); done
  for ((round = 1; round <= rounds; round++)); do
    for type in "${type_list[@]}"; do
      for t in "${threads[@]}"; do kernel_round "$type" "$t" "$round" "${kernel_models[$type]}"; done
    done
  done
fi

# ---------------------------------------------------------------- speculative
# Rows of the speculative table: specula plain, specula default, specula
# with llama.cpp's bound, llama.cpp plain, llama.cpp speculative.
declare -A tps acceptance
declare -a spec_ratio plain_ratio
declare -A default_vs  # per prompt and round: specula's default / a SPEC_FIXED or SPEC_DRAFTERS mode
specula_generate() {  # NAME PROMPT_FILE OUT EXTRA...
  local prompt=$2 out=$3
  shift 3
  "$specula" generate -m "$padded" -t "$spec_threads" --temp 0 -n "$spec_n" --ignore-eos -q \
    --json "$@" --prompt="$(cat "$prompt")" >"$out"
}
spec_run() {  # MODE PROMPT_FILE ROUND PROMPT_INDEX
  local mode=$1 prompt=$2 out=$runs/spec-$1-r$3-p$4
  case $mode in
    specula-plain) specula_generate "$mode" "$prompt" "$out.json" --draft-max 0 ;;
    specula-spec) specula_generate "$mode" "$prompt" "$out.json" -d "$draft" ;;
    specula-spec-g) specula_generate "$mode" "$prompt" "$out.json" -d "$draft" \
      --draft-max "$spec_draft_max" ;;
    specula-fixed-*) specula_generate "$mode" "$prompt" "$out.json" -d "$draft" \
      --policy fixed --draft-max "${mode#specula-fixed-}" ;;
    specula-drafter-*) specula_generate "$mode" "$prompt" "$out.json" -d "$draft" \
      --drafter "${mode#specula-drafter-}" ;;
    llama-plain)
      "$llama_plain" "${llama_plain_flags[@]}" -m "$padded" -t "$spec_threads" -f "$prompt" \
        -n "$spec_n" --temp 0 --ignore-eos -c "$llama_ctx" </dev/null >"$out.log" 2>&1 ;;
    llama-spec)
      "$llama_spec" -m "$padded" -md "$draft" -t "$spec_threads" -f "$prompt" \
        -n "$spec_n" --temp 0 --ignore-eos --draft-max "$spec_draft_max" -c "$llama_ctx" \
        </dev/null >"$out.log" 2>&1 ;;
  esac
  case $mode in
    specula-*)
      tps[$mode]+=" $(jq .stats.decode_tokens_per_second "$out.json")"
      if [ "$mode" != specula-plain ]; then
        acceptance[$mode]+=" $(jq '100 * .stats.accepted_tokens / ([.stats.drafted_tokens, 1] | max)' "$out.json")"
      fi
      ;;
    llama-plain)
      # llama_perf_context_print: eval time = X ms / N runs (Y ms per token, Z tokens per second)
      local v
      v=$(grep -E 'eval time' "$out.log" | grep -v 'prompt eval' | tail -1 |
        sed -E 's/.*, *([0-9.]+) tokens per second.*/\1/')
      [[ $v =~ ^[0-9.]+$ ]] || die "no eval speed in $out.log (llama.cpp's output changed?)"
      tps[$mode]+=" $v"
      ;;
    llama-spec)
      local v a
      v=$(grep -E 'decoded +[0-9]+ tokens in' "$out.log" | tail -1 | sed -E 's/.*speed: *([0-9.]+) t\/s.*/\1/')
      a=$(grep -E '^.*accept += *[0-9.]+%' "$out.log" | tail -1 | sed -E 's/.*= *([0-9.]+)%.*/\1/')
      [[ $v =~ ^[0-9.]+$ ]] || die "no decode speed in $out.log (llama.cpp's output changed?)"
      tps[$mode]+=" $v"
      acceptance[$mode]+=" ${a:-nan}"
      ;;
  esac
}
last() { local a; read -r -a a <<<"$1"; echo "${a[-1]}"; }

if want spec; then
  padded=$(make_padded_target)
  # shellcheck disable=SC2012
  pylib=${PYLIB:-$(ls -d /usr/lib/python3.[0-9]* 2>/dev/null | sort -V | tail -1)}
  case ${SPEC_TEXT:-python} in
    python)
      text_dir=$pylib
      heldout=(json/decoder.py argparse.py csv.py textwrap.py shlex.py calendar.py dataclasses.py
        json/encoder.py json/__init__.py) ;;
    prose)
      text_dir=/usr/share/common-licenses
      heldout=(GPL-3 Apache-2.0 MPL-2.0 LGPL-2.1 GFDL-1.3 Artistic CC0-1.0 MPL-1.1 GPL-2) ;;
    *) die "SPEC_TEXT: '$SPEC_TEXT' is neither python nor prose" ;;
  esac
  prompt_files=()
  for m in "${heldout[@]}"; do
    [ ${#prompt_files[@]} -lt "$spec_prompts" ] || break
    f=$text_dir/$m
    [ -f "$f" ] || continue
    lines=$(wc -l <"$f")
    p=$runs/prompt-${#prompt_files[@]}.py
    # No trailing newline: both engines then read exactly the same text.
    printf '%s' "$(sed -n "$((lines / 2)),$((lines / 2 + 29))p" "$f")" >"$p"
    prompt_files+=("$p")
  done
  [ ${#prompt_files[@]} -gt 0 ] || die "no held-out prompts in ${text_dir:-/usr/lib/python3.*} (set PYLIB, or SPEC_TEXT)"
  fixed_modes=()
  IFS=, read -r -a fixed_gs <<<"${SPEC_FIXED:-}"
  for g in "${fixed_gs[@]}"; do
    [[ $g =~ ^[1-9][0-9]?$ ]] || die "SPEC_FIXED: '$g' is not a draft length 1..99"
    fixed_modes+=("specula-fixed-$g")
  done
  read -r -a drafter_sets <<<"${SPEC_DRAFTERS:-}"
  for set in "${drafter_sets[@]}"; do
    [[ $set =~ ^[a-z0-9:,-]+$ ]] || die "SPEC_DRAFTERS: '$set' is not a --drafter list"
    fixed_modes+=("specula-drafter-$set")
  done
  modes=(specula-plain specula-spec specula-spec-g "${fixed_modes[@]}" llama-plain llama-spec)
  [ "$specula_only" = 1 ] && modes=(specula-plain specula-spec specula-spec-g "${fixed_modes[@]}")
  for ((round = 1; round <= rounds; round++)); do
    # Bandwidth at the speculative part's thread count, once per round.
    "$specula" bench -m "$draft" -t "$spec_threads" -r 1 -P 8 -G 8 --max-verify 1 --policy none \
      --bandwidth-mb "$bandwidth_mb" --json -q >"$runs/bandwidth-r$round.json"
    echo "$spec_threads $(jq .read_bandwidth.gb_per_second.median "$runs/bandwidth-r$round.json")" \
      >>"$bandwidth_file"
    order=("${modes[@]}")
    if ((round % 2 == 0)); then
      order=()
      for ((i = ${#modes[@]} - 1; i >= 0; i--)); do order+=("${modes[i]}"); done
    fi
    for i in "${!prompt_files[@]}"; do
      log "round $round, prompt $((i + 1))/${#prompt_files[@]}: ${order[*]}"
      for mode in "${order[@]}"; do spec_run "$mode" "${prompt_files[i]}" "$round" "$i"; done
      if [ "$specula_only" != 1 ]; then
        spec_ratio+=("$(ratio "$(last "${tps[specula-spec]}")" "$(last "${tps[llama-spec]}")")")
        plain_ratio+=("$(ratio "$(last "${tps[specula-plain]}")" "$(last "${tps[llama-plain]}")")")
      fi
      for mode in "${fixed_modes[@]}"; do
        default_vs[$mode]+=" $(ratio "$(last "${tps[specula-spec]}")" "$(last "${tps[$mode]}")")"
      done
    done
  done
fi

# ---------------------------------------------------------------- report
echo "## specula vs llama.cpp, $(date -u +%Y-%m-%d)"
echo
echo "- machine: $cpu, $((sockets * cores_per_socket)) cores ($(nproc) CPUs online), L3 $l3; $extensions"
echo "- specula $specula_commit; llama.cpp: $llama_version"
echo "- $rounds alternating rounds; raw outputs in $runs"
while read -r t; do
  # shellcheck disable=SC2046
  echo "- read bandwidth at $t threads (specula bench's probe, ${bandwidth_mb} MiB, this run): $(stats 1 $(awk -v t="$t" '$1 == t {print $2}' "$bandwidth_file")) GB/s"
done < <(awk '{print $1}' "$bandwidth_file" | sort -un)
echo

if want kernels; then
  echo "### Kernels (KERNEL_MODEL=$kernel_model; prefill $pp tokens, decode $tg)"
  echo
  echo "| type | threads | decode tok/s specula / llama.cpp | decode ratio | prefill tok/s specula / llama.cpp | prefill ratio | t(8)/t(1) specula / llama.cpp | t(16)/t(1) specula / llama.cpp | decode share of bandwidth specula / llama.cpp |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for type in "${type_list[@]}"; do
    for t in "${threads[@]}"; do
      k="$type $t"
      # shellcheck disable=SC2086
      echo "| $type | $t | $(median ${s_dec[$k]}) / $(median ${l_dec[$k]:-}) | $(stats 2 ${r_dec[$k]:-}) | $(median ${s_pre[$k]}) / $(median ${l_pre[$k]:-}) | $(stats 2 ${r_pre[$k]:-}) | $(median ${s_curve[$k 8]}) / $(median ${l_curve[$k 8]:-}) | $(median ${s_curve[$k 16]}) / $(median ${l_curve[$k 16]:-}) | $(median ${s_share[$k]}) / $(median ${l_share[$k]:-}) |"
    done
  done
  echo
  if ((verify_max > 16)); then
    echo "Verify cost t(n)/t(1), medians over the rounds, specula / llama.cpp:"
    echo
    header="| type | threads |"
    rule="|---|---|"
    for n in "${verify_ns[@]}"; do
      header+=" n = $n |"
      rule+="---|"
    done
    echo "$header"
    echo "$rule"
    for type in "${type_list[@]}"; do
      for t in "${threads[@]}"; do
        row="| $type | $t |"
        for n in "${verify_ns[@]}"; do
          # shellcheck disable=SC2086
          row+=" $(median ${s_curve[$type $t $n]}) / $(median ${l_curve[$type $t $n]:-}) |"
        done
        echo "$row"
      done
    done
    echo
  fi
  if [ "$specula_only" != 1 ] && [ ${#llama_depth[@]} -eq 0 ]; then
    echo "llama.cpp's t(n) rows start from an empty context (this llama-bench has no --n-depth); specula's are appended to $pp tokens."
    echo
  fi
fi

if want spec; then
  echo "### Speculative decoding on the padded shipped pair"
  echo
  echo "Target $(basename "$padded") ($(($(stat -c %s "$padded") / 1000000)) MB; the shipped target padded: the same function as the shipped target converted to $pad_type), draft $(basename "$draft"), $spec_threads threads, greedy, $spec_n tokens, ${#prompt_files[@]} held-out prompts x $rounds rounds."
  echo
  echo "| engine | mode | tokens/s | acceptance % | vs its own plain (medians) |"
  echo "|---|---|---|---|---|"
  # shellcheck disable=SC2086
  for mode in "${modes[@]}"; do
    case $mode in
      specula-plain) name="specula | plain"; base="specula-plain" ;;
      specula-spec) name="specula | speculative (defaults)"; base="specula-plain" ;;
      specula-spec-g) name="specula | speculative, --draft-max $spec_draft_max"; base="specula-plain" ;;
      specula-fixed-*) name="specula | speculative, --policy fixed --draft-max ${mode#specula-fixed-}"; base="specula-plain" ;;
      specula-drafter-*) name="specula | speculative, --drafter ${mode#specula-drafter-}"; base="specula-plain" ;;
      llama-plain) name="llama.cpp | plain"; base="llama-plain" ;;
      llama-spec) name="llama.cpp | speculative, --draft-max $spec_draft_max"; base="llama-plain" ;;
    esac
    echo "| $name | $(stats 1 ${tps[$mode]}) | $(stats 1 ${acceptance[$mode]:-}) | $(awk -v r="$(ratio "$(median ${tps[$mode]})" "$(median ${tps[$base]})")" 'BEGIN { printf "%.2fx", r }') |"
  done
  echo
  # Which drafter the default run's bandit chose, per run: steps and acceptance.
  echo "Drafters of specula's default runs (steps, acceptance %; per prompt and round): $(
    for f in "$runs"/spec-specula-spec-r*-p*.json; do
      jq -r '[.stats.drafters[] | "\(.name | split(" ")[0] | sub("draft"; "model")) \(.steps) \(.acceptance_rate * 100 | round)%"] | join(" + ")' "$f"
    done | paste -sd ';' | sed 's/;/; /g')."
  echo
  for mode in "${fixed_modes[@]}"; do
    # shellcheck disable=SC2086
    echo "Per prompt and round: specula's defaults / ${mode#specula-} $(stats 2 ${default_vs[$mode]})x."
  done
  [ ${#fixed_modes[@]} -eq 0 ] || echo
  if [ "$specula_only" != 1 ]; then
    echo "Per prompt and round: specula speculative (defaults) / llama.cpp speculative $(stats 2 "${spec_ratio[@]}")x; specula plain / llama.cpp plain $(stats 2 "${plain_ratio[@]}")x."
  fi
fi
