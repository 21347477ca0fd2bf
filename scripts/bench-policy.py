#!/usr/bin/env python3
"""The adaptive draft length against every fixed g, measured inside one
process per prompt (docs/benchmarks.md, "Adaptive vs fixed g, in-process"):
for each workload prompt, one `specula bench -p PROMPT --json` run
interleaves plain decoding, each fixed g and the policies, repeat after
repeat, seconds apart, so machine noise hits every mode alike (the
process-per-run benchmark, bench-workloads.py, compares runs made up to a
minute apart on a shared host, and its ratios spread 0.5x-3x).

    scripts/bench-policy.py --build build --out DIR

The policy keeps its estimates across the repeats of one prompt (as the
Engine keeps them across requests), so this measures its steady state on
that text. The drafter sets (each drafter alone and the bandit over
them, all with the adaptive policy) keep their suffix caches across the
repeats too: after the first repeat the suffix cache has seen the text,
as a server answering the same request again would. Writes DIR/policy.json (every bench report) and DIR/policy.md.
For each workload: per prompt, the median over repeats of adaptive's
tokens/s over the best fixed g's of that prompt; and over the workload,
the geometric mean over prompts of each mode's speedup, with adaptive
against the best single fixed g for the whole workload (the issue's "best
fixed g"). Greedy outputs must equal plain decoding's; a mismatch makes
the script exit 1.

Needs only Python 3 (Debian's python3).
"""
import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_workload_prompts():
    """bench-workloads.py as a module: its prompt builders and random draft
    (one definition of the workloads for both benchmarks)."""
    spec = importlib.util.spec_from_file_location(
        "bench_workloads", os.path.join(HERE, "bench-workloads.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def run_bench(specula, target, draft, prompt, args):
    cmd = [specula, "bench", "-m", target, "-d", draft, "-t", str(args.threads), "-p", prompt,
           "-r", str(args.repeats), "-G", str(args.tokens), "--draft-max-list", args.draft_max_list,
           "--policy", args.policies, "--bandwidth-mb", "64", "--max-verify", "2", "-q", "--json"]
    if args.drafter_sets:
        cmd += ["--drafter-sets", args.drafter_sets]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench-policy: {' '.join(cmd[:8])} ... failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout)


def summarise_workload(name, reports):
    """Per-prompt and whole-workload ratios from the bench reports."""
    fixed_gs = [p["draft_max"] for p in reports[0]["speculative"]]
    policies = [p["policy"] for p in reports[0]["policies"]]
    speedups = {f"g={g}": [] for g in fixed_gs}
    speedups.update({p: [] for p in policies})
    per_prompt = []
    mismatches = []
    for i, report in enumerate(reports):
        row = {"prompt": i, "tokens": report["prompt_tokens"]}
        for point in report["speculative"]:
            speedups[f"g={point['draft_max']}"].append(point["speedup"]["median"])
            if not point["identical_to_plain"]:
                mismatches.append((name, i, f"g={point['draft_max']}"))
        for point in report["policies"]:
            speedups[point["policy"]].append(point["speedup"]["median"])
            if not point["identical_to_plain"]:
                mismatches.append((name, i, point["policy"]))
            row[point["policy"]] = {
                "speedup": point["speedup"]["median"],
                "vs_best_fixed": point["vs_best_fixed"]["median"],
                "best_fixed_g": point["best_fixed_draft_max"],
                "tokens_per_pass": point["tokens_per_pass"],
            }
        per_prompt.append(row)
    for report in reports:
        for point in report.get("drafter_sets", []):
            speedups.setdefault(f"drafters {point['drafters']}", []).append(
                point["speedup"]["median"])
            if not point["identical_to_plain"]:
                mismatches.append((name, report["prompt_tokens"], point["drafters"]))
    means = {mode: geometric_mean(values) for mode, values in speedups.items()}
    best_fixed = max((f"g={g}" for g in fixed_gs), key=lambda mode: means[mode])
    return {"name": name, "per_prompt": per_prompt, "mean_speedup": means,
            "best_fixed": best_fixed, "policies": policies, "mismatches": mismatches}


def markdown(summaries, args):
    lines = []
    for s in summaries:
        lines.append(f"#### {s['name']} ({len(s['per_prompt'])} prompts x {args.repeats} repeats, "
                     f"{args.tokens} tokens, greedy)\n")
        lines.append("| mode | speedup vs plain (geometric mean over prompts) |")
        lines.append("|---|---|")
        for mode, value in s["mean_speedup"].items():
            mark = " (best fixed)" if mode == s["best_fixed"] else ""
            lines.append(f"| {mode}{mark} | {value:.2f}x |")
        lines.append("")
        for policy in s["policies"]:
            ratio = s["mean_speedup"][policy] / max(s["mean_speedup"][s["best_fixed"]], 1.0)
            per = [row[policy]["vs_best_fixed"] for row in s["per_prompt"]]
            lines.append(f"- {policy} / best of (one fixed g for the workload: {s['best_fixed']}, "
                         f"plain) = {ratio:.3f}; vs plain {s['mean_speedup'][policy]:.2f}x")
            lines.append(f"- {policy} / each prompt's own best fixed g, per prompt (median over "
                         f"repeats): {', '.join(f'{v:.2f}' for v in per)}; median "
                         f"{statistics.median(per):.2f}")
        singles = [m for m in s["mean_speedup"] if m.startswith("drafters ") and "," not in m]
        bandits = [m for m in s["mean_speedup"] if m.startswith("drafters ") and "," in m]
        if singles:
            best = max(singles, key=lambda m: s["mean_speedup"][m])
            for bandit in bandits:
                lines.append(f"- {bandit} (bandit) / best single drafter ({best}, "
                             f"{s['mean_speedup'][best]:.2f}x) = "
                             f"{s['mean_speedup'][bandit] / s['mean_speedup'][best]:.3f}")
        if s["mismatches"]:
            lines.append(f"- **output differed from plain decoding**: {s['mismatches']}")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build directory holding specula")
    ap.add_argument("--target", default="models/specula-py-target-q8_0.gguf")
    ap.add_argument("--draft", default="models/specula-py-draft-distilled-f16.gguf")
    ap.add_argument("--out", required=True, help="directory for policy.json and policy.md")
    ap.add_argument("--prompts", type=int, default=7, help="prompts per workload")
    ap.add_argument("--repeats", type=int, default=9, help="interleaved repeats per prompt")
    ap.add_argument("--tokens", type=int, default=128, help="tokens generated per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--draft-max-list", default="1,2,3,4,6", help="fixed g compared")
    ap.add_argument("--policies", default="adaptive,heuristic", help="policies compared")
    ap.add_argument("--drafter-sets", default="model;lookup;suffix;model,lookup,suffix",
                    help="drafter sets compared (';'-separated --drafter lists); '' skips")
    ap.add_argument("--only", help="comma-separated workloads: code, edit, prose, no-help")
    args = ap.parse_args()

    specula = os.path.join(args.build, "specula")
    if not os.path.exists(specula):
        sys.exit(f"bench-policy: {specula} not found: build first (make build)")
    os.makedirs(args.out, exist_ok=True)
    bw = load_workload_prompts()
    workloads = [("code", bw.code_prompts(args.prompts), args.draft),
                 ("edit", bw.edit_prompts(args.prompts), args.draft),
                 ("prose", bw.prose_prompts(args.prompts), args.draft),
                 ("no-help", bw.code_prompts(args.prompts), None)]
    if args.only:
        wanted = set(args.only.split(","))
        workloads = [w for w in workloads if w[0] in wanted]
    if any(w[0] == "no-help" for w in workloads):
        random_draft = bw.make_random_draft(specula, args.target, args.out)
        workloads = [(n, p, random_draft if n == "no-help" else d) for n, p, d in workloads]

    reports, summaries = {}, []
    for name, prompts, draft in workloads:
        reports[name] = []
        for i, prompt in enumerate(prompts):
            reports[name].append(run_bench(specula, args.target, draft, prompt, args))
            print(f"  {name}: prompt {i + 1}/{len(prompts)} done", file=sys.stderr)
        summaries.append(summarise_workload(name, reports[name]))
    with open(os.path.join(args.out, "policy.json"), "w") as f:
        json.dump({"reports": reports, "summaries": summaries}, f, indent=1)
    text = markdown(summaries, args)
    with open(os.path.join(args.out, "policy.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    if any(s["mismatches"] for s in summaries):
        sys.exit(1)


if __name__ == "__main__":
    main()
