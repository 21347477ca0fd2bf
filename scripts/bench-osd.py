#!/usr/bin/env python3
"""Online distillation on a domain the draft never saw (docs/benchmarks.md,
"Online distillation"): the shipped Python pair continues C headers.

    scripts/bench-osd.py --build build --out DIR

1. Learning stream: --learn prompts (20 lines from the middle of the Linux
   UAPI headers under /usr/include/linux, a fixed shuffled order) run one
   after another with a fixed draft length, once with the draft as shipped
   and once with --online-distill. The learning run is --chunks processes
   in a row, each starting from the draft the previous one saved
   (--osd-save), so that snapshots of the learning draft exist; the
   optimizer's moments restart with each chunk. Greedy decoding drafts the
   same way in both runs until the weights change, so their per-request
   acceptance compares like with like.
2. Held out: --held-out other headers. Acceptance of every snapshot at the
   fixed g (greedy: deterministic for given weights), and speed: plain
   decoding, the shipped and the final learned draft at fixed g and with the
   adaptive policy, each in its own process per repeat, interleaved;
   tokens/s ratios against plain decoding of the same repeat.

Writes DIR/osd.json (every request), DIR/osd.md (the tables) and, with
gnuplot, DIR/osd-acceptance.png (in-stream acceptance, a moving average,
and held-out acceptance of the snapshots). Needs Python 3 and libc6-dev's headers (scripts/install-deps.sh).
"""
import argparse
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys

HEADER_GLOBS = ["/usr/include/linux/*.h"]


def header_prompts(count, lines, seed):
    """`count` prompts of `lines` lines from the middle of distinct headers."""
    files = sorted({f for g in HEADER_GLOBS for f in glob.glob(g)})
    usable = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read().splitlines()
        except OSError:
            continue
        if len(text) >= 3 * lines:
            middle = len(text) // 2
            usable.append("\n".join(text[middle:middle + lines]))
    if len(usable) < count:
        sys.exit(f"bench-osd: found {len(usable)} usable headers under /usr/include/linux, "
                 f"need {count} (install linux-libc-dev: scripts/install-deps.sh)")
    random.Random(seed).shuffle(usable)
    return usable[:count]


def run_requests(args, prompts, extra, label):
    """One `generate --prompt-file` process; returns its JSON lines."""
    path = os.path.join(args.out, f"prompts-{label}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n---\n".join(prompts))
    command = [args.specula, "generate", "-m", args.target, "--prompt-file", path, "-n",
               str(args.tokens), "--temp", "0", "-t", str(args.threads), "--ignore-eos",
               "--json", "-q"] + extra
    print("bench-osd:", " ".join(command), file=sys.stderr)
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench-osd: {label} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    if len(rows) != len(prompts):
        sys.exit(f"bench-osd: {label}: {len(rows)} results for {len(prompts)} prompts")
    return rows


def acceptance(row):
    s = row["stats"]
    return s["accepted_tokens"] / s["drafted_tokens"] if s["drafted_tokens"] else 0.0


def moving_average(values, width):
    out = []
    for i in range(len(values)):
        window = values[max(0, i - width + 1):i + 1]
        out.append(sum(window) / len(window))
    return out


def pooled(rows):
    drafted = sum(r["stats"]["drafted_tokens"] for r in rows)
    accepted = sum(r["stats"]["accepted_tokens"] for r in rows)
    tokens = sum(r["stats"]["generated_tokens"] for r in rows)
    passes = sum(r["stats"]["target_passes"] for r in rows)
    return accepted / drafted if drafted else 0.0, tokens / passes if passes else 0.0


def decode_rate(rows):
    tokens = sum(r["stats"]["generated_tokens"] for r in rows)
    seconds = sum(r["stats"]["generated_tokens"] / r["stats"]["decode_tokens_per_second"]
                  for r in rows if r["stats"]["decode_tokens_per_second"] > 0)
    return tokens / seconds if seconds else 0.0


def plot(stream, snapshots, width, path):
    """Acceptance gain over the shipped draft, in points: in the stream (the
    same prompts, paired, a moving average) and on the held-out headers
    (each snapshot)."""
    if not shutil.which("gnuplot"):
        print("bench-osd: gnuplot not installed, no plot", file=sys.stderr)
        return
    gains = [100 * (acceptance(l) - acceptance(b))
             for l, b in zip(stream["learning"], stream["shipped"])]
    smooth = moving_average(gains, width)
    with open(path + ".dat", "w") as f:
        generated = 0
        for i, row in enumerate(stream["learning"]):
            generated += row["stats"]["generated_tokens"]
            f.write(f"{generated} {smooth[i]:.3f}\n")
    with open(path + ".snap.dat", "w") as f:
        for snap in snapshots:
            gain = 100 * (snap["acceptance"] - snapshots[0]["acceptance"])
            f.write(f"{snap['tokens_seen']} {gain:.3f}\n")
    script = f"""
set terminal pngcairo size 800,440 font ",10"
set output "{path}"
set title "Unseen domain (Linux headers): acceptance gain of the draft learning online, g fixed"
set xlabel "tokens generated in the learning stream"
set ylabel "acceptance gain over the shipped draft (points)"
set grid
set key bottom right
set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2
plot "{path}.dat" using 1:2 with lines lw 2 title "stream: same prompts, paired ({width}-request average)", \\
     "{path}.snap.dat" using 1:2 with linespoints lw 2 pt 7 title "held-out headers: snapshots of the learning draft"
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build directory holding specula")
    ap.add_argument("--target", default="models/specula-py-target-q8_0.gguf")
    ap.add_argument("--draft", default="models/specula-py-draft-distilled-f16.gguf")
    ap.add_argument("--out", required=True, help="directory for osd.json, .md and .png")
    ap.add_argument("--learn", type=int, default=120, help="prompts in the learning stream")
    ap.add_argument("--held-out", type=int, default=16, help="held-out prompts")
    ap.add_argument("--repeats", type=int, default=3, help="held-out interleaved repeats")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per request")
    ap.add_argument("--lines", type=int, default=20, help="lines per prompt")
    ap.add_argument("--draft-max", type=int, default=4, help="fixed draft length")
    ap.add_argument("--threads", type=int, default=1, help="generation threads")
    ap.add_argument("--osd", default="--osd-cpu 1 --osd-publish-every 4",
                    help="extra online-distillation flags of the learning run")
    ap.add_argument("--seed", type=int, default=7, help="order of the headers")
    ap.add_argument("--chunks", type=int, default=4, help="learning processes (snapshots)")
    ap.add_argument("--average", type=int, default=25, help="moving-average width (plot)")
    args = ap.parse_args()
    args.specula = os.path.join(args.build, "specula")
    if not os.access(args.specula, os.X_OK):
        sys.exit(f"bench-osd: no specula executable in {args.build}: build it first")
    os.makedirs(args.out, exist_ok=True)

    prompts = header_prompts(args.learn + args.held_out, args.lines, args.seed)
    learn, held_out = prompts[:args.learn], prompts[args.learn:]
    learned = os.path.join(args.out, "learned-draft.gguf")
    fixed = ["--drafter", "model", "--policy", "fixed", "--draft-max", str(args.draft_max)]

    stream = {"shipped": run_requests(args, learn, ["-d", args.draft] + fixed, "learn"),
              "learning": []}
    snapshot_files = [args.draft]
    per_chunk = (len(learn) + args.chunks - 1) // args.chunks
    for c in range(args.chunks):
        chunk = learn[c * per_chunk:(c + 1) * per_chunk]
        if not chunk:
            break
        saved = os.path.join(args.out, f"learned-draft-{c + 1}.gguf")
        stream["learning"] += run_requests(
            args, chunk, ["-d", snapshot_files[-1]] + fixed + ["--online-distill"] +
            args.osd.split() + ["--osd-save", saved], f"learn-{c + 1}")
        snapshot_files.append(saved)
    learned = snapshot_files[-1]
    snapshots = []
    seen = 0
    for k, path in enumerate(snapshot_files):
        if k > 0:
            seen = sum(r["stats"]["generated_tokens"]
                       for r in stream["learning"][:min(len(learn), k * per_chunk)])
        rows = run_requests(args, held_out, ["-d", path] + fixed, "held-out")
        snapshots.append({"file": path, "tokens_seen": seen, "acceptance": pooled(rows)[0],
                          "tokens_per_pass": pooled(rows)[1]})

    configs = {
        "plain": ["--draft-max", "0"],
        f"shipped draft g={args.draft_max}": ["-d", args.draft] + fixed,
        f"learned draft g={args.draft_max}": ["-d", learned] + fixed,
        "shipped draft adaptive": ["-d", args.draft, "--drafter", "model"],
        "learned draft adaptive": ["-d", learned, "--drafter", "model"],
    }
    held = {name: [] for name in configs}
    for repeat in range(args.repeats):
        for name, extra in configs.items():
            held[name].append(run_requests(args, held_out, extra, "held-out"))

    with open(os.path.join(args.out, "osd.json"), "w") as f:
        json.dump({"args": vars(args), "stream": stream, "snapshots": snapshots,
                   "held_out": held}, f)

    quarters = []
    for label in ("shipped", "learning"):
        rows = stream[label]
        q = len(rows) // 4
        quarters.append([pooled(rows[i * q:(i + 1) * q])[0] for i in range(4)])
    last = stream["learning"][-1]["learning"]  # of the last chunk
    lines = [
        f"#### Learning stream: {args.learn} Linux header prompts, {args.tokens} tokens each, "
        f"g = {args.draft_max} fixed, T = 0, {args.threads} generation thread(s), "
        f"`{args.osd}`", "",
        "| draft | acceptance, 1st quarter | 2nd | 3rd | 4th | whole stream |",
        "|---|---|---|---|---|---|",
    ]
    for label, q in zip(("as shipped", "learning online"), quarters):
        whole = pooled(stream["shipped" if label == "as shipped" else "learning"])[0]
        lines.append(f"| {label} | " + " | ".join(f"{100 * a:.1f}%" for a in q) +
                     f" | {100 * whole:.1f}% |")
    lines += ["", f"Learner (last chunk): {last['steps']} steps, {last['publishes']} weight versions, "
              f"{last['observed_rows']} target rows observed, buffer "
              f"{last['buffer_bytes'] / 2**20:.1f} MiB ({last['buffer_samples']} windows, "
              f"{last['dropped_samples']} dropped); last loss {last['last_loss']:.3f}.", ""]
    lines += [
        f"#### Held out: {args.held_out} other headers, acceptance of the learning draft's "
        f"snapshots (g = {args.draft_max} fixed)", "",
        "| snapshot | stream tokens learned from | acceptance | tokens/pass |", "|---|---|---|---|"]
    for k, snap in enumerate(snapshots):
        lines.append(f"| {'as shipped' if k == 0 else f'after chunk {k}'} | {snap['tokens_seen']} | "
                     f"{100 * snap['acceptance']:.1f}% | {snap['tokens_per_pass']:.2f} |")
    lines += [""]
    lines += [
        f"#### Held out: {args.held_out} other Linux headers, speed, {args.repeats} interleaved repeats "
        f"(one process per configuration and repeat)", "",
        "| configuration | acceptance | tokens/pass | tokens/s, median | vs plain, median "
        "[min - max] |",
        "|---|---|---|---|---|",
    ]
    plain_rates = [decode_rate(rows) for rows in held["plain"]]
    for name, runs in held.items():
        rates = [decode_rate(rows) for rows in runs]
        ratios = [r / p for r, p in zip(rates, plain_rates) if p > 0]
        acc, per_pass = pooled([row for rows in runs for row in rows])
        lines.append(f"| {name} | {'-' if name == 'plain' else f'{100 * acc:.1f}%'} | "
                     f"{per_pass:.2f} | {statistics.median(rates):.1f} | "
                     f"{statistics.median(ratios):.2f}x [{min(ratios):.2f} - {max(ratios):.2f}] |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "osd.md"), "w") as f:
        f.write(table)
    print(table)
    plot(stream, snapshots, args.average, os.path.join(args.out, "osd-acceptance.png"))


if __name__ == "__main__":
    main()
