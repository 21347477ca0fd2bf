#!/usr/bin/env python3
"""Adaptive speculation over workloads of different predictability
(docs/benchmarks.md, "Workloads"): plain decoding, fixed draft lengths, the
adaptive policy, each drafter alone and the bandit over drafters, run
interleaved on the same prompts so that every ratio compares runs made
moments apart.

    scripts/bench-workloads.py --build build --suite shipped --out DIR
    scripts/bench-workloads.py --build build --suite 1b --target 1b-q4_0.gguf --out DIR

Writes DIR/SUITE.json (every run), DIR/SUITE.md (the tables) and, with
gnuplot, DIR/SUITE-speedup.png. With --llama-bin, llama.cpp's plain and
speculative decoding (llama-cli, llama-speculative) run on the same files,
prompts and thread count in the same interleaved order. Each run is one `specula generate --json`
process; tokens/s is its decode rate (prefill and loading excluded). For each
workload, prompt and repeat, every configuration's tokens/s is divided by
plain decoding's of the same prompt and repeat; the tables give the median
and range of those ratios. Greedy runs must reproduce plain decoding's
tokens exactly; a mismatch is reported and makes the script exit 1.

Needs only Python 3 (Debian's python3) and, for the plot, gnuplot.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

PYLIB_CANDIDATES = sorted(
    (d for d in os.listdir("/usr/lib") if d.startswith("python3.") and d[8:].isdigit()),
    key=lambda d: int(d[8:]))
HELD_OUT = ["json/decoder.py", "json/encoder.py", "argparse.py", "csv.py", "textwrap.py",
            "shlex.py", "calendar.py", "dataclasses.py"]
PROSE_FILES = ["/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"]


def pylib():
    for d in reversed(PYLIB_CANDIDATES):
        if os.path.exists(f"/usr/lib/{d}/os.py"):
            return f"/usr/lib/{d}"
    sys.exit("bench-workloads: no Python standard library under /usr/lib "
             "(scripts/install-deps.sh installs it)")


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def code_prompts(count, lines=30):
    """`lines` lines from the middle of each held-out module."""
    out = []
    for module in HELD_OUT[:count]:
        text = read_lines(f"{pylib()}/{module}")
        start = len(text) // 2
        out.append("\n".join(text[start:start + lines]))
    return out


def edit_prompts(count, lines=30):
    """A block of held-out code, a blank line, then its first two lines
    again: the continuation that fits is the block once more (a rewrite with
    small changes, prompt lookup's home ground)."""
    out = []
    for module in HELD_OUT[:count]:
        text = read_lines(f"{pylib()}/{module}")
        start = len(text) // 3
        block = text[start:start + lines]
        out.append("\n".join(block) + "\n\n" + "\n".join(block[:2]))
    return out


def prose_prompts(count, lines=12):
    """Paragraphs of English prose (licence texts every Debian system has)."""
    out = []
    for path in PROSE_FILES:
        if not os.path.exists(path):
            continue
        text = [l for l in read_lines(path)]
        step = max(1, len(text) // (count + 1))
        for i in range(1, count + 1):
            if len(out) == count:
                break
            out.append("\n".join(text[i * step:i * step + lines]))
    if len(out) < count:
        sys.exit("bench-workloads: no prose found under /usr/share/common-licenses")
    return out


def run_generate(specula, model, prompt, n, temp, seed, flags):
    cmd = [specula, "generate", "-m", model, "-n", str(n), "--temp", str(temp), "--seed",
           str(seed), "-t", "2", "--ignore-eos", "-q", "--json", "--prompt=" + prompt] + flags
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench-workloads: {' '.join(cmd[:12])} ... failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout)


def run_llama(llama_bin, kind, target, draft, prompt, n):
    """llama.cpp on the same files, greedy, 2 threads: `plain` (llama-cli) or
    `speculative` (llama-speculative, --draft-max 4, its other defaults).
    Returns its decode tokens/s."""
    if kind == "plain":
        cmd = [os.path.join(llama_bin, "llama-cli"), "-m", target, "-no-cnv", "--ignore-eos"]
        pattern = r"\beval time =\s+[\d.]+ ms /\s+\d+ runs.*?([\d.]+) tokens per second"
    else:
        cmd = [os.path.join(llama_bin, "llama-speculative"), "-m", target, "-md", draft,
               "--draft-max", "4"]
        pattern = r"decoded\s+\d+ tokens in\s+[\d.]+ seconds, speed:\s+([\d.]+) t/s"
    cmd += ["-p", prompt, "-n", str(n), "--temp", "0", "-t", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    match = re.search(pattern, result.stdout + result.stderr)
    if result.returncode != 0 or not match:
        sys.exit(f"bench-workloads: {cmd[0]} failed or printed no speed:\n"
                 f"{(result.stdout + result.stderr)[-2000:]}")
    return float(match.group(1))


def summarise(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def run_workload(args, w):
    """Runs every configuration of workload `w` on every prompt, `repeats`
    times, in a fixed interleaved order; returns per-configuration results."""
    runs = []
    configs = w["configs"]
    mismatches = []
    for repeat in range(args.repeats):
        for p, prompt in enumerate(w["prompts"]):
            plain_tokens = None
            plain_rate = None
            for label, flags in configs:
                if label.startswith("llama.cpp"):
                    kind = "plain" if label == "llama.cpp plain" else "speculative"
                    rate = run_llama(args.llama_bin, kind, w["target"], flags, prompt, w["n"])
                    runs.append({"config": label, "prompt": p, "repeat": repeat,
                                 "tokens_per_second": rate, "ratio": rate / plain_rate,
                                 "drafted": 0, "accepted": 0, "passes": 0, "generated": 0})
                    continue
                out = run_generate(args.specula, w["target"], prompt, w["n"], w["temp"], p + 1,
                                   flags)
                s = out["stats"]
                rate = s["decode_tokens_per_second"]
                tokens = out["tokens"]
                if label == "plain":
                    plain_rate = rate
                    plain_tokens = tokens
                elif w["temp"] == 0 and tokens is not None and tokens != plain_tokens:
                    mismatches.append((w["name"], label, p))
                runs.append({
                    "config": label, "prompt": p, "repeat": repeat, "tokens_per_second": rate,
                    "ratio": rate / plain_rate, "drafted": s.get("drafted_tokens", 0),
                    "accepted": s.get("accepted_tokens", 0),
                    "passes": s.get("target_passes", 0), "generated": s["generated_tokens"],
                    "draft_length_steps": s.get("draft_length_steps"),
                })
            print(f"  {w['name']}: repeat {repeat + 1}/{args.repeats}, prompt {p + 1}/"
                  f"{len(w['prompts'])} done", file=sys.stderr)
    return summarise_runs(w, configs, runs, mismatches, args.repeats)


def run_session(specula, model, prompts, n, temp, flags, path):
    """All prompts in one `generate --prompt-file` process; its JSON lines."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n---\n".join(prompts))
    cmd = [specula, "generate", "-m", model, "-n", str(n), "--temp", str(temp), "--seed", "1",
           "-t", "2", "--ignore-eos", "-q", "--json", "--prompt-file", path] + flags
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench-workloads: {' '.join(cmd[:12])} ... failed:\n{result.stderr.strip()}")
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(rows) != len(prompts):
        sys.exit(f"bench-workloads: {len(rows)} results for {len(prompts)} prompts")
    return rows


def run_workload_session(args, w):
    """--session: each configuration runs the workload's prompts in one
    process (one engine, as a server would), after a warm-up request that is
    not counted; every request's tokens/s is divided by plain decoding's for
    the same request and repeat. llama.cpp is left out (one prompt per
    process)."""
    configs = [(label, flags) for label, flags in w["configs"]
               if not label.startswith("llama.cpp")]
    prompts = [w["warmup"]] + w["prompts"]
    path = os.path.join(args.out, "session-prompts.txt")
    runs, mismatches = [], []
    for repeat in range(args.repeats):
        plain_rows = None
        for label, flags in configs:
            rows = run_session(args.specula, w["target"], prompts, w["n"], w["temp"], flags, path)
            if label == "plain":
                plain_rows = rows
            for p, (row, plain) in enumerate(zip(rows, plain_rows)):
                if p == 0:
                    continue  # the warm-up request
                s = row["stats"]
                if label != "plain" and w["temp"] == 0 and row["tokens"] != plain["tokens"]:
                    mismatches.append((w["name"], label, p))
                rate = s["decode_tokens_per_second"]
                runs.append({
                    "config": label, "prompt": p - 1, "repeat": repeat,
                    "tokens_per_second": rate,
                    "ratio": rate / plain["stats"]["decode_tokens_per_second"],
                    "drafted": s.get("drafted_tokens", 0), "accepted": s.get("accepted_tokens", 0),
                    "passes": s.get("target_passes", 0), "generated": s["generated_tokens"],
                    "draft_length_steps": s.get("draft_length_steps"),
                })
        print(f"  {w['name']}: repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    return summarise_runs(w, configs, runs, mismatches, args.repeats)


def summarise_runs(w, configs, runs, mismatches, repeats):
    table = {}
    for label, _ in configs:
        mine = [r for r in runs if r["config"] == label]
        drafted = sum(r["drafted"] for r in mine)
        table[label] = {
            "speedup": summarise([r["ratio"] for r in mine]),
            "tokens_per_second": summarise([r["tokens_per_second"] for r in mine]),
            "acceptance": (sum(r["accepted"] for r in mine) / drafted) if drafted else None,
            "tokens_per_pass": (sum(r["generated"] for r in mine) / sum(r["passes"] for r in mine))
            if sum(r["passes"] for r in mine) else None,
        }
    return {"name": w["name"], "description": w["description"], "temp": w["temp"], "n": w["n"],
            "prompts": len(w["prompts"]), "repeats": repeats, "runs": runs, "table": table,
            "mismatches": mismatches}


def fixed(drafter, g):
    return (f"{drafter} g={g}", ["--drafter", drafter, "--policy", "fixed", "--draft-max", str(g)])


def adaptive(drafter, label=None):
    return (label or f"{drafter} adaptive", ["--drafter", drafter, "--policy", "adaptive",
                                             "--draft-max", "8"])


def make_random_draft(specula, target, out_dir):
    """The no-help workload's draft: random weights with the target's
    tokenizer, made once in out_dir. Returns its path."""
    path = os.path.join(out_dir, "random-draft-f16.gguf")
    if not os.path.exists(path):
        subprocess.run([specula, "make-model", "--out", path, "--tokenizer-from", target,
                        "--embd", "128", "--layers", "2", "--heads", "4", "--heads-kv", "2",
                        "--ff", "352", "--type", "f16", "--seed", "11"], check=True,
                       capture_output=True)
    return path


def shipped_suite(args):
    target = args.target or "models/specula-py-target-q8_0.gguf"
    draft = args.draft or "models/specula-py-draft-distilled-f16.gguf"
    random_draft = make_random_draft(args.specula, target, args.out)
    d = ["-d", draft]
    plain = ("plain", ["--draft-max", "0"])
    model_configs = [plain] + [(l, d + f) for l, f in
                               [fixed("model", 1), fixed("model", 2), fixed("model", 4),
                                adaptive("model")]]
    singles = [(l, d + f) for l, f in [adaptive("lookup"), adaptive("suffix"),
                                        adaptive("self:3")]]
    bandit = ("bandit model,lookup,suffix",
              d + ["--drafter", "model,lookup,suffix", "--policy", "adaptive", "--draft-max", "8"])
    n_prompts = args.prompts
    llama = []
    if args.llama_bin:
        llama = [("llama.cpp plain", None), ("llama.cpp speculative g=4", draft)]
    workloads = [
        {"name": "code", "description": "held-out Python, 30-line prompt, greedy",
         "prompts": code_prompts(n_prompts), "temp": 0, "configs":
         model_configs + singles + [bandit] + llama},
        {"name": "edit", "description": "held-out code block, then its first lines again",
         "prompts": edit_prompts(n_prompts), "temp": 0, "configs":
         model_configs + [(l, d + f) for l, f in [fixed("lookup", 1), fixed("lookup", 2),
                                                  fixed("lookup", 4), fixed("lookup", 8)]]
         + singles + [bandit] + llama},
        {"name": "prose", "description": "English licence text (the models saw only code)",
         "prompts": prose_prompts(n_prompts), "temp": 0, "configs":
         model_configs + singles + [bandit]},
        {"name": "no-help", "description": "held-out Python with a random-weight draft",
         "prompts": code_prompts(n_prompts), "temp": 0, "configs":
         [plain] + [(l, ["-d", random_draft] + f) for l, f in
                    [fixed("model", 1), fixed("model", 2), fixed("model", 4),
                     adaptive("model")]]},
        {"name": "hot", "description": "held-out Python at temperature 1.5, trained draft",
         "prompts": code_prompts(n_prompts), "temp": 1.5, "configs": model_configs + [bandit]},
    ]
    for w in workloads:
        w["target"] = target
        w["n"] = args.tokens
        # --session's uncounted first request: the last held-out module's.
        w["warmup"] = (prose_prompts(n_prompts + 1)[-1] if w["name"] == "prose"
                       else code_prompts(len(HELD_OUT))[-1])
    return workloads


def one_b_suite(args):
    if not args.target:
        sys.exit("bench-workloads: --suite 1b needs --target (e.g. the 836M make-model file)")
    plain = ("plain", ["--draft-max", "0"])
    singles = [fixed("lookup", 2), fixed("lookup", 4), adaptive("lookup"), fixed("self:4", 2),
               adaptive("self:4"), adaptive("suffix")]
    bandit = ("bandit lookup,suffix,self:4",
              ["--drafter", "lookup,suffix,self:4", "--policy", "adaptive", "--draft-max", "8"])
    workloads = [
        {"name": "1b code", "description": "held-out Python prompt, greedy",
         "prompts": code_prompts(args.prompts, 12), "temp": 0,
         "configs": [plain] + singles + [bandit]},
        {"name": "1b edit", "description": "code block, then its first lines again",
         "prompts": edit_prompts(args.prompts, 12), "temp": 0,
         "configs": [plain] + singles + [bandit]},
    ]
    for w in workloads:
        w["target"] = args.target
        w["n"] = args.tokens
        w["warmup"] = code_prompts(len(HELD_OUT), 12)[-1]
    return workloads


def markdown(results):
    lines = []
    for r in results:
        lines.append(f"### {r['name']}: {r['description']} ({r['prompts']} prompts x "
                     f"{r['repeats']} repeats, {r['n']} tokens, T = {r['temp']})\n")
        lines.append("| configuration | tokens/s (median) | speedup vs plain, median [min - max] "
                     "| acceptance | tokens/pass |")
        lines.append("|---|---|---|---|---|")
        for label, t in r["table"].items():
            s = t["speedup"]
            acc = "-" if t["acceptance"] is None else f"{100 * t['acceptance']:.1f}%"
            tpp = "-" if t["tokens_per_pass"] is None else f"{t['tokens_per_pass']:.2f}"
            lines.append(f"| {label} | {t['tokens_per_second']['median']:.1f} | "
                         f"{s['median']:.2f}x [{s['min']:.2f} - {s['max']:.2f}] | {acc} | "
                         f"{tpp} |")
        lines.append("")
        lines.extend(verdicts(r))
        lines.append("")
    return "\n".join(lines)


def verdicts(r):
    """The issue's targets, checked on this workload's medians."""
    t = r["table"]
    med = {label: v["speedup"]["median"] for label, v in t.items()}
    out = []
    for drafter in ["model", "lookup"]:
        fixed_labels = [l for l in med if l.startswith(f"{drafter} g=")]
        if not fixed_labels or f"{drafter} adaptive" not in med:
            continue
        best = max(fixed_labels, key=lambda l: med[l])
        reference = max(med[best], 1.0)  # plain decoding is a fixed choice too (g = 0)
        a = med[f"{drafter} adaptive"]
        out.append(f"- {drafter} adaptive / best of (fixed g, plain) = {a / reference:.3f} "
                   f"(best fixed: {best} {med[best]:.2f}x); vs plain {a:.2f}x")
    bandits = [l for l in med if l.startswith("bandit")]
    singles = [l for l in med if l.endswith("adaptive")]
    if bandits and singles:
        best = max(singles, key=lambda l: med[l])
        out.append(f"- {bandits[0]} / best single drafter ({best} {med[best]:.2f}x) = "
                   f"{med[bandits[0]] / med[best]:.3f}")
    if "llama.cpp plain" in t and "llama.cpp speculative g=4" in t:
        lp = t["llama.cpp plain"]["tokens_per_second"]["median"]
        ls = t["llama.cpp speculative g=4"]["tokens_per_second"]["median"]
        out.append(f"- llama.cpp speculative (g = 4) / llama.cpp plain = {ls / lp:.2f}x; "
                   f"specula plain / llama.cpp plain = {1 / med['llama.cpp plain']:.2f}x")
    if r["mismatches"]:
        out.append(f"- **output differed from plain decoding**: {r['mismatches']}")
    return out


def plot(results, path):
    if not shutil.which("gnuplot"):
        print("bench-workloads: gnuplot not installed, no plot", file=sys.stderr)
        return
    data = path + ".dat"
    with open(data, "w") as f:
        for r in results:
            f.write(f'# "{r["name"]}"\n')
            for label, t in r["table"].items():
                s = t["speedup"]
                f.write(f'"{r["name"]}: {label}" {s["median"]} {s["min"]} {s["max"]}\n')
    rows = sum(len(r["table"]) for r in results)
    script = f"""
set terminal pngcairo size 900,{120 + 16 * rows} font ",9"
set output "{path}"
set title "Speedup over plain decoding (median, range over prompts x repeats)"
set xlabel "tokens/s relative to plain decoding"
set grid x
set key off
set yrange [-1:{rows}]
set ytics nomirror
set xrange [0:*]
set arrow from 1, graph 0 to 1, graph 1 nohead dt 2
plot "{data}" using 2:($0):3:4:ytic(1) with xerrorbars pt 7 ps 0.8
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build directory holding specula")
    ap.add_argument("--suite", choices=["shipped", "1b"], default="shipped")
    ap.add_argument("--target", help="target GGUF (shipped: models/specula-py-target-q8_0.gguf)")
    ap.add_argument("--draft", help="trained draft (shipped suite)")
    ap.add_argument("--out", required=True, help="directory for SUITE.json, .md and .png")
    ap.add_argument("--prompts", type=int, default=4, help="prompts per workload")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats")
    ap.add_argument("--tokens", type=int, default=128, help="tokens generated per run")
    ap.add_argument("--only", help="comma-separated workload names to run")
    ap.add_argument("--session", action="store_true",
                    help="run each configuration's prompts in one process (one engine, as a "
                    "server would: what the policy and drafters learn carries over), after an "
                    "uncounted warm-up request; llama.cpp is left out")
    ap.add_argument("--llama-bin", help="llama.cpp's build/bin: adds its plain and speculative "
                    "decoding on the same files (code and edit workloads)")
    args = ap.parse_args()
    args.specula = os.path.join(args.build, "specula")
    if not os.access(args.specula, os.X_OK):
        sys.exit(f"bench-workloads: {args.specula} not found: build first (make)")
    if args.prompts < 1 or args.repeats < 1 or args.tokens < 1:
        sys.exit("bench-workloads: --prompts, --repeats and --tokens must be at least 1")
    if args.session and args.prompts >= len(HELD_OUT):
        sys.exit(f"bench-workloads: --session takes at most {len(HELD_OUT) - 1} prompts "
                 "(one held-out module is the warm-up)")
    os.makedirs(args.out, exist_ok=True)
    workloads = shipped_suite(args) if args.suite == "shipped" else one_b_suite(args)
    if args.only:
        wanted = set(args.only.split(","))
        workloads = [w for w in workloads if w["name"] in wanted]
    results = []
    for w in workloads:
        print(f"bench-workloads: {w['name']} ({len(w['configs'])} configurations)",
              file=sys.stderr)
        results.append(run_workload_session(args, w) if args.session else run_workload(args, w))
    base = os.path.join(args.out, args.suite + ("-session" if args.session else ""))
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=1)
    text = markdown(results)
    with open(base + ".md", "w") as f:
        f.write(text)
    print(text)
    plot(results, base + "-speedup.png")
    if any(r["mismatches"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
