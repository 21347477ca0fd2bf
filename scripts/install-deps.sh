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
  clang-14 libfuzzer-14-dev  # the fuzzing harnesses (fuzz/)
  libpython3-stdlib  # the corpus of the shipped model pair (make models)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
