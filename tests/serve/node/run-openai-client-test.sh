#!/usr/bin/env bash
# The openai npm client test: installs the locked client (npm ci) into a
# work directory and runs openai_client.test.mjs with node's test runner
# against the given `specula` executable. Registered with ctest
# (tests/CMakeLists.txt); node and npm come from scripts/install-deps.sh.
#   run-openai-client-test.sh WORK_DIR SPECULA_EXECUTABLE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$1
export SPECULA_CLI_PATH=$2
export SPECULA_SOURCE_DIR=$(cd "$here/../../.." && pwd)

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "openai client test: $tool is not installed: run scripts/install-deps.sh" >&2
    exit 1
  fi
done

mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/openai_client.test.mjs" "$work/"
cd "$work"
# npm ci again only when the lock changed.
if ! cmp -s package-lock.json node_modules/.specula-lock 2>/dev/null; then
  timeout 300 npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.specula-lock
fi
exec timeout 400 node --test --test-reporter=spec openai_client.test.mjs
