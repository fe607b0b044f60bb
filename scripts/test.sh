#!/usr/bin/env bash
# Builds OpenNVT and runs the whole test suite (unit + integration).
# Installs the Debian packages it needs first (scripts/setup.sh).
# usage: scripts/test.sh [ctest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPENNVT_TESTS=ON
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j2 "$@"
