#!/usr/bin/env bash
# Two `specula serve` processes behind nginx (deploy/nginx/specula.conf) on
# 127.0.0.1, one killed mid-run: every request must either complete or end
# with a clean error (an HTTP error status, or for a stream whose server
# died, a connection closed early; never a hang), and every request after
# the kill must complete through the server that is left.
#   test-nginx-loopback.sh SPECULA_EXECUTABLE
# Exits 77 (ctest: skipped) when nginx is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
specula=$1
models="$here/../models"
nginx_bin=$(command -v nginx || true)
[ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
  echo "nginx loopback test: nginx is not installed (scripts/install-deps.sh installs it): skipped"
  exit 77
fi

work=$(mktemp -d /tmp/specula-nginx-XXXXXX)
pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  [ -f "$work/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

# Two servers on free ports of their own choosing.
start_server() {
  "$specula" serve --host 127.0.0.1 --port 0 -t 1 --parallel 4 --ctx 256 \
    -m "$models/specula-py-target-q8_0.gguf" -d "$models/specula-py-draft-distilled-f16.gguf" \
    >"$work/serve-$1.log" 2>&1 &
  pids+=($!)
}
wait_port() {
  for _ in $(seq 600); do
    port=$(sed -nE 's/.*ready on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$work/serve-$1.log")
    [ -n "$port" ] && { echo "$port"; return; }
    sleep 0.1
  done
  echo "server $1 did not start:" >&2
  cat "$work/serve-$1.log" >&2
  exit 1
}
start_server a
start_server b
port_a=$(wait_port a)
port_b=$(wait_port b)
pid_a=${pids[0]}
front=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

mkdir -p "$work/logs" "$work/tmp"
sed -e "s/127.0.0.1:8080/127.0.0.1:$front/" -e "s/127.0.0.1:8081/127.0.0.1:$port_a/" \
  -e "s/127.0.0.1:8082/127.0.0.1:$port_b/" "$here/nginx/specula.conf" >"$work/nginx.conf"
globals="daemon on;"
# A root master would switch its workers to "nobody", who cannot read $work.
[ "$(id -u)" -eq 0 ] && globals="$globals user root;"
"$nginx_bin" -p "$work" -c "$work/nginx.conf" -g "$globals" -e "$work/logs/error.log"
for _ in $(seq 100); do [ -f "$work/nginx.pid" ] && break; sleep 0.05; done
echo "nginx on 127.0.0.1:$front -> specula on $port_a and $port_b"

# The load: 24 requests (a third of them streamed) from 8 threads; server A
# is killed once 8 have been sent; then 12 more.
python3 - "$front" "$pid_a" <<'PY'
import http.client, json, os, signal, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

port, pid_a = int(sys.argv[1]), int(sys.argv[2])

def request(i):
    stream = i % 3 == 0
    body = json.dumps({"prompt": "def f%d(x):\n" % i, "max_tokens": 48, "temperature": 0,
                       "stream": stream})
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read().decode()
        if r.status != 200:
            json.loads(data)["error"] if data.startswith("{") else None
            return ("error", "HTTP %d" % r.status)
        if stream:
            if not data.rstrip().endswith("data: [DONE]"):
                return ("error", "stream ended early")
            return ("ok", "stream")
        answer = json.loads(data)
        assert answer["choices"][0]["finish_reason"] in ("length", "stop"), data
        return ("ok", answer["usage"]["completion_tokens"])
    except (http.client.HTTPException, ConnectionError, OSError) as e:
        # Only a stream may be cut: its answer had started on the dead server.
        return ("error" if stream else "bad", "%s: %s" % (type(e).__name__, e))

results = {}
with ThreadPoolExecutor(8) as pool:
    before = {i: pool.submit(request, i) for i in range(12)}
    time.sleep(1.0)
    os.kill(pid_a, signal.SIGKILL)  # the script's `wait` reaps it
    print("killed server A (pid %d) with requests in flight" % pid_a)
    results.update({i: f.result() for i, f in before.items()})
    after = {i: pool.submit(request, i) for i in range(12, 24)}
    results.update({i: f.result() for i, f in after.items()})

bad = 0
for i in sorted(results):
    kind, what = results[i]
    print("request %2d: %s %s" % (i, kind, what))
    if kind == "bad" or (i >= 12 and kind != "ok"):
        bad += 1
ok = sum(1 for k, _ in results.values() if k == "ok")
print("%d of %d completed; %d failed the check" % (ok, len(results), bad))
sys.exit(1 if bad else 0)
PY
# nginx saw the dead server (and routed around it).
if ! grep -qE "upstream|connect\(\) failed" "$work/logs/error.log"; then
  echo "nginx logged no failed upstream: the killed server was never tried" >&2
  exit 1
fi
grep -E "upstream|connect\(\) failed" "$work/logs/error.log" | sed -E 's/^[0-9\/: ]+//' | cut -c1-160 | head -5
echo "nginx loopback test: passed"
