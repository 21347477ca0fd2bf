#!/usr/bin/env bash
# The serving benchmark of issue 13: `specula serve` under concurrent load,
# one server per (model, policy), CONCURRENCY closed-loop clients
# (scripts/serve-load.py) sending greedy completions of held-out Python
# prompts. Prints one markdown report on stdout (progress goes to stderr):
# total completion tokens/s and p50/p99 request latency per policy and
# concurrency, with the exact command, the machine and the date.
#
#   scripts/bench-serve.sh BUILD_DIR
#
# Models: `shipped` is the shipped pair in models/ (a 21 MB target, so
# compute-bound at a few rows); `padded` is the shipped target padded to a
# memory-bound size with `specula make-model --pad-from` (the same function,
# 1.09 GB of F16 read per pass; docs/benchmarks.md "Memory-bound shipped
# pair"), made here once into WORK, never into the repository. Both use the
# shipped distilled draft. Policies (`specula serve --policy`): plain (no
# draft), fixed (g = DRAFT_MAX every step), adaptive (each sequence on its
# own, as `generate`), capacity (joint draft lengths from the measured cost
# of a target pass; the server's default). The speculative ones use the
# server's default drafters (the draft model and prompt lookup).
#
# llama-server on the same GGUF files, at the same concurrency and threads,
# plain and with the same draft (--draft-max DRAFT_MAX), when LLAMA_CPP_DIR
# names a llama.cpp build made outside this repository (this script never
# downloads or builds it): the folder holding llama-server, or one whose
# bin/ or build/bin/ does.
#
# Each cell: one warm-up request per server start, then CONCURRENCY clients
# send up to max(MIN_REQUESTS, REQUESTS_PER_CLIENT x CONCURRENCY) requests of
# MAX_TOKENS tokens each (ignore_eos, so every completion is that long); no
# request starts after CELL_SECONDS (those in flight finish). tokens/s =
# completion tokens / (first request sent -> last one done); latency = one
# request's submit -> complete (no streaming). p99 of fewer than 100
# requests is close to their maximum. Defaults take about 10-15 minutes on
# 2 cores.
#
# Environment (default in brackets):
#   WORK            folder for the padded target (reused by later runs) and
#                   the raw outputs [/tmp/specula-bench-serve]
#   MODELS          shipped, padded or both [shipped,padded]
#   POLICIES        [plain,fixed,adaptive,capacity]
#   CONCURRENCY     concurrent clients, comma-separated [1,2,4,8,16,32]
#   PARALLEL        the servers' sequence slots [the largest CONCURRENCY]
#   THREADS         compute threads of every server [nproc]
#   MAX_TOKENS      tokens per completion [64]
#   REQUESTS_PER_CLIENT, MIN_REQUESTS   requests per cell, see above [2, 4]
#   CELL_SECONDS    no new request after this many seconds of a cell [15]
#   PROMPTS         held-out prompts (PROMPT_LINES lines from the middle of
#                   a Python standard-library module never trained on) [8]
#   PROMPT_LINES    [8]
#   CTX             tokens per slot, prompt + completion [512]
#   DRAFT_MAX       [4]
#   DRAFT           [models/specula-py-draft-distilled-f16.gguf]
#   PAD_LAYERS, PAD_FF, PAD_TYPE   the padded target [28, 16384, f16]
#   LLAMA_CPP_DIR   a llama.cpp build with llama-server [none: specula only]
#   PYLIB           the Python standard library [the newest /usr/lib/python3.*]
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() {
  echo "bench-serve: $*" >&2
  exit 1
}
[ $# -eq 1 ] || { usage >&2; exit 2; }
case $1 in -h | --help) usage; exit 0 ;; esac

build=$1
specula=$build/specula
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$specula" ] || die "$specula is not an executable: build specula first (cmake --build $build --target specula_cli)"
command -v python3 >/dev/null || die "python3 is missing (the load generator, scripts/serve-load.py, needs it)"
load=$repo/scripts/serve-load.py

work=${WORK:-/tmp/specula-bench-serve}
models=${MODELS:-shipped,padded}
policies=${POLICIES:-plain,fixed,adaptive,capacity}
concurrency=${CONCURRENCY:-1,2,4,8,16,32}
threads=${THREADS:-$(nproc)}
max_tokens=${MAX_TOKENS:-64}
requests_per_client=${REQUESTS_PER_CLIENT:-2}
min_requests=${MIN_REQUESTS:-4}
cell_seconds=${CELL_SECONDS:-15}
n_prompts=${PROMPTS:-8}
prompt_lines=${PROMPT_LINES:-8}
ctx=${CTX:-512}
draft_max=${DRAFT_MAX:-4}
draft=${DRAFT:-$repo/models/specula-py-draft-distilled-f16.gguf}
pad_layers=${PAD_LAYERS:-28}
pad_ff=${PAD_FF:-16384}
pad_type=${PAD_TYPE:-f16}
target=$repo/models/specula-py-target-q8_0.gguf

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"; }
for v in threads max_tokens requests_per_client min_requests cell_seconds n_prompts prompt_lines \
  ctx draft_max pad_layers pad_ff; do
  name=${v^^}
  [ "$v" = n_prompts ] && name=PROMPTS
  positive "$name" "${!v}"
done
IFS=, read -r -a model_list <<<"$models"
IFS=, read -r -a policy_list <<<"$policies"
IFS=, read -r -a levels <<<"$concurrency"
[ ${#model_list[@]} -gt 0 ] || die "MODELS is empty: use shipped, padded or shipped,padded"
[ ${#levels[@]} -gt 0 ] || die "CONCURRENCY is empty: give levels such as 1,2,4"
for m in "${model_list[@]}"; do
  case $m in shipped | padded) ;; *) die "MODELS names '$m'; use shipped, padded or shipped,padded" ;; esac
done
for p in "${policy_list[@]}"; do
  case $p in plain | fixed | adaptive | capacity) ;;
    *) die "POLICIES names '$p'; use plain, fixed, adaptive and/or capacity" ;;
  esac
done
for c in "${levels[@]}"; do positive CONCURRENCY "$c"; done
parallel=${PARALLEL:-$(printf '%s\n' "${levels[@]}" | sort -n | tail -1)}
positive PARALLEL "$parallel"
for f in "$target" "$draft"; do
  [ -f "$f" ] || die "$f is missing: it ships with the repository (git checkout models/)"
done

llama_server=""
if [ -n "${LLAMA_CPP_DIR:-}" ]; then
  for d in "$LLAMA_CPP_DIR" "$LLAMA_CPP_DIR/bin" "$LLAMA_CPP_DIR/build/bin"; do
    if [ -x "$d/llama-server" ]; then llama_server=$d/llama-server; break; fi
  done
  [ -n "$llama_server" ] || die "no llama-server in $LLAMA_CPP_DIR, its bin/ or build/bin/: build llama.cpp there first (cmake -B build && cmake --build build --target llama-server)"
fi

mkdir -p "$work/runs" || die "cannot make $work"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
runs=$work/runs/$stamp
mkdir -p "$runs"
log() { echo "bench-serve: $*" >&2; }

# The exact command, with every setting spelled out.
command_line="WORK=$work MODELS=$models POLICIES=$policies CONCURRENCY=$concurrency PARALLEL=$parallel THREADS=$threads MAX_TOKENS=$max_tokens REQUESTS_PER_CLIENT=$requests_per_client MIN_REQUESTS=$min_requests CELL_SECONDS=$cell_seconds PROMPTS=$n_prompts PROMPT_LINES=$prompt_lines CTX=$ctx DRAFT_MAX=$draft_max PAD_LAYERS=$pad_layers PAD_FF=$pad_ff PAD_TYPE=$pad_type${LLAMA_CPP_DIR:+ LLAMA_CPP_DIR=$LLAMA_CPP_DIR} scripts/bench-serve.sh $build"

# ---------------------------------------------------------------- servers
server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# Starts `specula serve` for MODEL POLICY; sets server_pid and, once it is
# ready, url. (Not run in $(...): server_pid must reach stop_server.)
start_specula() {
  local model=$1 policy=$2 out=$3
  local flags=(-m "$model" --parallel "$parallel" --ctx "$ctx" -t "$threads" --port 0
    --queue-max "$parallel" --policy "$policy")
  [ "$policy" = plain ] || flags+=(-d "$draft" --draft-max "$draft_max")
  "$specula" serve "${flags[@]}" >"$out" 2>&1 &
  server_pid=$!
  url=""
  for _ in $(seq 1 1200); do  # up to 10 minutes: loading, profiling the cost curve
    url=$(sed -n 's|^specula: ready on \(http://[0-9.]*:[0-9]*\):.*|\1|p' "$out" | head -1)
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || die "specula serve exited before it was ready: $(tail -5 "$out")"
    sleep 0.5
  done
  [ -n "$url" ] || die "specula serve was not ready within 10 minutes: $(tail -5 "$out")"
}

# Starts llama-server for MODEL MODE (plain or draft); sets server_pid and
# url (serve-load.py --wait polls its /health until it is ready).
start_llama() {
  local model=$1 mode=$2 out=$3 port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local flags=(-m "$model" -np "$parallel" -c $((parallel * ctx)) -t "$threads" -tb "$threads"
    --host 127.0.0.1 --port "$port")
  [ "$mode" = plain ] || flags+=(-md "$draft" --draft-max "$draft_max" --draft-min 0)
  "$llama_server" "${flags[@]}" >"$out" 2>&1 &
  server_pid=$!
  url="http://127.0.0.1:$port"
}

# ---------------------------------------------------------------- prompts
# shellcheck disable=SC2012
pylib=${PYLIB:-$(ls -d /usr/lib/python3.[0-9]* 2>/dev/null | sort -V | tail -1)}
heldout=(json/decoder.py argparse.py csv.py textwrap.py shlex.py calendar.py dataclasses.py
  json/encoder.py json/__init__.py)
prompt_files=()
for m in "${heldout[@]}"; do
  [ ${#prompt_files[@]} -lt "$n_prompts" ] || break
  f=$pylib/$m
  [ -f "$f" ] || continue
  lines=$(wc -l <"$f")
  p=$runs/prompt-${#prompt_files[@]}.py
  printf '%s' "$(sed -n "$((lines / 2)),$((lines / 2 + prompt_lines - 1))p" "$f")" >"$p"
  prompt_files+=("$p")
done
[ ${#prompt_files[@]} -gt 0 ] || die "no held-out prompts: no Python standard library in ${pylib:-/usr/lib/python3.*} (set PYLIB)"

# ---------------------------------------------------------------- models
model_path() {
  case $1 in
    shipped) echo "$target" ;;
    padded)
      local out=$work/specula-py-target-pad-L$pad_layers-ff$pad_ff-$pad_type.gguf
      if [ ! -f "$out" ]; then
        log "padding the shipped target to $pad_layers layers, ff $pad_ff, $pad_type (once, into $work)"
        "$specula" make-model --pad-from "$target" --layers "$pad_layers" --ff "$pad_ff" \
          --type "$pad_type" --out "$out" >&2
      fi
      echo "$out"
      ;;
  esac
}

# ---------------------------------------------------------------- runs
declare -A tps p50 p99 note acceptance
rows=()
for p in "${policy_list[@]}"; do rows+=("specula|$p"); done
if [ -n "$llama_server" ]; then rows+=("llama-server|plain" "llama-server|draft"); fi
# The policy column: what each row ran.
row_label() {
  case $1 in
    specula\|plain) echo "specula | plain" ;;
    specula\|fixed) echo "specula | fixed g = $draft_max" ;;
    specula\|*) echo "specula | ${1#*|} (g <= $draft_max)" ;;
    llama-server\|plain) echo "llama-server | plain" ;;
    llama-server\|draft) echo "llama-server | draft model, --draft-max $draft_max" ;;
  esac
}

# One cell: the load at concurrency C against URL; fills the tables.
run_cell() {
  local key=$1 url=$2 c=$3 warmup=$4 out=$5 n
  n=$((requests_per_client * c))
  ((n >= min_requests)) || n=$min_requests
  python3 "$load" --url "$url" --prompts "${prompt_files[@]}" --concurrency "$c" --requests "$n" \
    --time-limit "$cell_seconds" --max-tokens "$max_tokens" --warmup "$warmup" --wait 600 \
    >"$out" 2>"$out.err" || true
  [ -s "$out" ] || die "the load generator failed for $key at concurrency $c: $(tail -3 "$out.err")"
  local fields
  fields=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
acc = "%.0f%%" % (100.0 * r["accepted"] / r["drafted"]) if r["drafted"] else "-"
def f(v, d): return "-" if v is None else ("%." + str(d) + "f") % v
print(f(r["tokens_per_second"], 1), f(r["latency_p50"], 2), f(r["latency_p99"], 2), r["requests"], r["failed"], acc)
' "$out")
  local t l50 l99 n_done failed acc
  read -r t l50 l99 n_done failed acc <<<"$fields"
  tps[$key|$c]=$t
  p50[$key|$c]=$l50
  p99[$key|$c]=$l99
  acceptance[$key|$c]=$acc
  note[$key|$c]=""
  if ((failed > 0)); then
    note[$key|$c]=" ($failed failed)"
    log "  $failed requests failed; the first: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"][:1])' "$out")"
  fi
  log "  c=$c: $n_done requests, $t tokens/s, p50 $l50 s, p99 $l99 s, acceptance $acc"
}

start=$(date +%s)
for m in "${model_list[@]}"; do
  path=$(model_path "$m")
  for row in "${rows[@]}"; do
    engine=${row%%|*}
    mode=${row#*|}
    key="$m|$row"
    log "$m target, $engine $mode"
    if [ "$engine" = specula ]; then
      start_specula "$path" "$mode" "$runs/server-$m-$engine-$mode.log"
    else
      start_llama "$path" "$mode" "$runs/server-$m-$engine-$mode.log"
    fi
    warmup=1
    for c in "${levels[@]}"; do
      run_cell "$key" "$url" "$c" "$warmup" "$runs/load-$m-$engine-$mode-c$c.json"
      kill -0 "$server_pid" 2>/dev/null ||
        die "$engine ($mode) exited during the run at concurrency $c: $(tail -5 "$runs/server-$m-$engine-$mode.log")"
      warmup=0
    done
    stop_server
  done
done
elapsed=$(($(date +%s) - start))

# ---------------------------------------------------------------- report
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
sockets=$(lscpu | sed -n 's/^Socket(s): *//p' | head -1)
cores_per_socket=$(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1)
specula_commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
llama_version="not run (set LLAMA_CPP_DIR)"
if [ -n "$llama_server" ]; then
  llama_version="$llama_server, $("$llama_server" --version 2>&1 | grep -m1 -i version || true)"
fi

header() {
  local line="| server | policy |" rule="|---|---|"
  for c in "${levels[@]}"; do
    line+=" c=$c |"
    rule+="---|"
  done
  echo "$line"
  echo "$rule"
}
{
  echo "## Serving: \`specula serve\` under concurrent load, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- command: \`$command_line\`"
  echo "- machine: $cpu, $((sockets * cores_per_socket)) cores ($(nproc) CPUs online); load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "- specula $specula_commit; llama-server: $llama_version"
  echo "- $threads threads, $parallel slots of $ctx tokens, greedy, $max_tokens tokens per completion (ignore_eos), ${#prompt_files[@]} held-out prompts of $prompt_lines lines; draft $(basename "$draft"), --draft-max $draft_max; $((elapsed / 60)) min $((elapsed % 60)) s; raw outputs in $runs"
  for m in "${model_list[@]}"; do
    path=$(model_path "$m")
    echo
    echo "### Target $(basename "$path") ($(($(stat -c %s "$path") / 1000000)) MB)"
    echo
    echo "Total completion tokens/s:"
    echo
    header
    for row in "${rows[@]}"; do
      line="| $(row_label "$row") |"
      for c in "${levels[@]}"; do line+=" ${tps[$m|$row|$c]:--}${note[$m|$row|$c]:-} |"; done
      echo "$line"
    done
    echo
    echo "Request latency p50 / p99, seconds:"
    echo
    header
    for row in "${rows[@]}"; do
      line="| $(row_label "$row") |"
      for c in "${levels[@]}"; do line+=" ${p50[$m|$row|$c]:--} / ${p99[$m|$row|$c]:--} |"; done
      echo "$line"
    done
    echo
    echo "Acceptance (accepted / drafted tokens; specula's speculative policies):"
    echo
    header
    for row in "${rows[@]}"; do
      if [ "${row%%|*}" != specula ] || [ "${row#*|}" = plain ]; then continue; fi
      line="| $(row_label "$row") |"
      for c in "${levels[@]}"; do line+=" ${acceptance[$m|$row|$c]:--} |"; done
      echo "$line"
    done
  done
} | tee "$runs/report.md"
