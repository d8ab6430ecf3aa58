#!/usr/bin/env bash
# test.sh: install dependencies, build ferry, run every test level.
#
#   sudo scripts/test.sh              all tests (unit, bpf, e2e)
#   sudo scripts/test.sh -L unit      extra arguments go to ctest
#
# Build directory: build/ (RelWithDebInfo, -j2; BUILD_DIR and JOBS override).
# Unit tests run unprivileged too (their privileged cases skip); the bpf and
# e2e levels need root, as on CI. Exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
JOBS=${JOBS:-2}
cd "$ROOT"

# Debian's own tools first: a python3 from pyenv or a venv has no scapy.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

if [[ $(id -u) -eq 0 ]]; then
  scripts/install-deps.sh
else
  echo "test.sh: not root: skipping install-deps.sh; bpf and e2e tests need root" >&2
fi

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}"
cmake --build "$BUILD_DIR" -j"$JOBS"

cd "$BUILD_DIR"
# A test must not hang CI: ctest's own per-test timeout backs up the
# scenarios' bounds.
ctest --output-on-failure --timeout 600 "$@"
