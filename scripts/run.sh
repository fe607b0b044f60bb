#!/usr/bin/env bash
# Builds OpenNVT and starts a camera with its defaults in the foreground
# (HTTP/SOAP on port 80 as root, 8080 otherwise; WS-Discovery on UDP 3702).
# Extra arguments go to opennvtd, e.g. scripts/run.sh --http-port 8000
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPENNVT_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target opennvtd
exec ./build/src/opennvtd --foreground "$@"
