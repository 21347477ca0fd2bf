#!/usr/bin/env python3
"""Load generator for an OpenAI-style completions server (specula serve,
llama-server): CONCURRENCY closed-loop clients, each sending its next
request as soon as the last one returns, until REQUESTS requests were sent
or TIME_LIMIT seconds passed (requests in flight then finish). Prints one
JSON object: requests done and failed, completion tokens, wall seconds,
total tokens/s and request latency percentiles. Python 3 standard library
only. Used by scripts/bench-serve.sh.

  serve-load.py --url http://127.0.0.1:8080 --prompts p0.txt p1.txt ... \
                --concurrency 8 --requests 16 --max-tokens 64

Every request is greedy (temperature 0 unless --temperature) and sets
ignore_eos (and cache_prompt false), so each completion is --max-tokens long and the engines compare
on the same work. Request i uses prompt i mod len(prompts).
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def percentile(values, q):
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least 1
    return ordered[int(rank) - 1]


class Client:
    def __init__(self, url, timeout):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise SystemExit(f"serve-load: --url {url}: use http://HOST:PORT")
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.timeout = timeout

    def healthy(self):
        """True when GET /health answers 200 (a server still loading: 503)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def complete(self, body):
        """(status, parsed JSON or None, seconds) of one POST /v1/completions."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        start = time.monotonic()
        try:
            conn.request("POST", "/v1/completions", body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            seconds = time.monotonic() - start
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
            return response.status, parsed, seconds
        finally:
            conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--prompts", nargs="+", required=True, help="text files, one prompt each")
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True, help="requests to send (at most)")
    ap.add_argument("--time-limit", type=float, default=60.0,
                    help="seconds after which no new request starts [60]")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1,
                    help="short requests (8 tokens) sent one by one before measuring [1]")
    ap.add_argument("--wait", type=float, default=0.0,
                    help="first wait up to this many seconds for GET /health to answer 200 [0]")
    ap.add_argument("--request-timeout", type=float, default=600.0,
                    help="seconds one request may take [600]")
    args = ap.parse_args()
    for name in ("concurrency", "requests", "max_tokens"):
        if getattr(args, name) < 1:
            raise SystemExit(f"serve-load: --{name.replace('_', '-')} must be >= 1")
    if args.time_limit <= 0 or args.request_timeout <= 0:
        raise SystemExit("serve-load: --time-limit and --request-timeout must be > 0")
    prompts = []
    for path in args.prompts:
        with open(path, encoding="utf-8") as f:
            prompts.append(f.read())
    client = Client(args.url, args.request_timeout)
    if args.wait > 0:
        wait_until = time.monotonic() + args.wait
        while not client.healthy():
            if time.monotonic() > wait_until:
                raise SystemExit(f"serve-load: {args.url}/health did not answer 200 "
                                 f"within {args.wait:g} s")
            time.sleep(0.25)

    # cache_prompt false: llama-server would otherwise reuse the KV cache of
    # a prompt it saw before (the prompts repeat), which specula serve does
    # not do; both then prefill every prompt (specula ignores the field).
    def body(i, max_tokens=args.max_tokens):
        return {"prompt": prompts[i % len(prompts)], "max_tokens": max_tokens,
                "temperature": args.temperature, "seed": args.seed + i, "ignore_eos": True,
                "cache_prompt": False}

    for i in range(args.warmup):
        status, parsed, _ = client.complete(body(i, min(8, args.max_tokens)))
        if status != 200:
            raise SystemExit(f"serve-load: the warm-up request got HTTP {status}: {parsed}")

    lock = threading.Lock()
    next_request = [0]
    latencies, errors = [], []
    totals = {"completion_tokens": 0, "prompt_tokens": 0, "drafted": 0, "accepted": 0}
    start = time.monotonic()
    deadline = start + args.time_limit
    last_done = [start]

    def worker():
        while True:
            with lock:
                i = next_request[0]
                if i >= args.requests or time.monotonic() >= deadline:
                    return
                next_request[0] += 1
            try:
                status, parsed, seconds = client.complete(body(i))
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(f"request {i}: {e}")
                continue
            with lock:
                last_done[0] = max(last_done[0], time.monotonic())
                if status != 200 or not isinstance(parsed, dict) or "usage" not in parsed:
                    errors.append(f"request {i}: HTTP {status}: {str(parsed)[:200]}")
                    continue
                latencies.append(seconds)
                usage = parsed["usage"]
                totals["completion_tokens"] += int(usage.get("completion_tokens", 0))
                totals["prompt_tokens"] += int(usage.get("prompt_tokens", 0))
                spec = parsed.get("speculative") or {}
                totals["drafted"] += int(spec.get("drafted", 0))
                totals["accepted"] += int(spec.get("accepted", 0))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = last_done[0] - start
    result = {
        "concurrency": args.concurrency,
        "requests": len(latencies),
        "failed": len(errors),
        "errors": errors[:5],
        "wall_seconds": round(wall, 3),
        **totals,
        "tokens_per_second": round(totals["completion_tokens"] / wall, 2) if wall > 0 else 0.0,
        "latency_p50": round(percentile(latencies, 50), 3) if latencies else None,
        "latency_p99": round(percentile(latencies, 99), 3) if latencies else None,
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0 if latencies and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
