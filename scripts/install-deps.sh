#!/usr/bin/env bash
# Installs the Debian packages specula needs to build and test. Idempotent:
# prints nothing and touches nothing when every package is already present.
set -euo pipefail

packages=(
  cmake ninja-build g++ make pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libpcre2-dev nlohmann-json3-dev libcli11-dev jq gnuplot-nox libdnnl-dev
  libcpp-httplib-dev  # specula serve
  python3-jinja2  # the reference renderer the chat-template tests compare with
  tmux  # the specula chat terminal tests (tests/cli/chat_tmux_test.cpp)
  clang-14 libfuzzer-14-dev  # the fuzzing harnesses (fuzz/)
  libpython3-stdlib  # the corpus of the shipped model pair (make models)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# specula serve's openai client test needs node and npm (Debian ships npm
# apart from nodejs; a node from elsewhere may bring its own npm).
if ! command -v npm >/dev/null; then
  command -v node >/dev/null || missing+=(nodejs)
  missing+=(npm)
fi
# The nginx loopback test (deploy/) needs nginx, installed on its own below.
need_nginx=0
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then need_nginx=1; fi
[ ${#missing[@]} -eq 0 ] && [ $need_nginx -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $need_nginx -eq 1 ]; then
  # Debian's nginx package starts a system service on port 80, which may be
  # taken or impossible here: a policy-rc.d that answers 101 forbids service
  # starts during the install (the tests run nginx themselves, as a user).
  # A failed nginx install only skips the nginx test; it never fails here.
  echo "install-deps: installing nginx (no service started)" >&2
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" &&
      made_policy=1
  fi
  $sudo apt-get install -y -qq --no-install-recommends nginx-light >/dev/null ||
    $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null ||
    echo "install-deps: nginx did not install; the nginx loopback test will be skipped" >&2
  [ $made_policy -eq 1 ] && $sudo rm -f "$policy"
  true
fi
