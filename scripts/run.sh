#!/usr/bin/env bash
# Builds OpenNVT and starts a camera with its defaults in the foreground
# (HTTP/SOAP on port 80 as root, 8080 otherwise; RTSP on 554 or 8554 streaming
# the built-in test pattern; WS-Discovery on UDP 3702).
# A fresh device has no users: on a terminal this offers to create the first
# Administrator (opennvtd --create-admin, password read without echo);
# otherwise the first ONVIF CreateUsers of an Administrator is accepted.
# Extra arguments go to opennvtd, e.g. scripts/run.sh --http-port 8000
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPENNVT_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target opennvtd
OPENNVTD=./build/src/opennvtd

# The state directory the daemon will use (the options may name another one).
state_dir=$("$OPENNVTD" "$@" --print-config | sed -n 's:.*<state-dir>\(.*\)</state-dir>.*:\1:p')
if [ -t 0 ] && [ -n "$state_dir" ] && ! grep -q 'level="Administrator"' "$state_dir/users.xml" 2>/dev/null; then
    echo "No Administrator exists yet on this device ($state_dir)."
    read -r -p "Name of the first Administrator (empty: skip): " admin
    if [ -n "$admin" ]; then
        read -r -s -p "Password (8+ characters, upper and lower case, a digit): " password; echo
        printf '%s\n' "$password" | "$OPENNVTD" "$@" --create-admin "$admin" || true
        unset password
    fi
fi
exec "$OPENNVTD" --foreground "$@"
