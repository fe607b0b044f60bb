#!/usr/bin/env bash
# bench/auth.sh - what authentication costs: GetDeviceInformation with HTTP
# Digest and with a WS-UsernameToken digest, against the unauthenticated
# GetSystemDateAndTime (PRE_AUTH; GetDeviceInformation itself needs
# credentials now), all on the same opennvtd in the same run, with the same
# client (bench/src/soapload.c: closed-loop keep-alive connections, Digest per
# connection with nc = 1, 2, ..., a fresh UsernameToken per request).
# Server pinned to CPU 1, client to CPU 0; server CPU per request from
# /proc. Rows are run twice, interleaved (A B C A B C), to expose noise.
#
# Usage: bench/auth.sh   (about 2 minutes with the defaults)
#   BENCH_DURATION=10  BENCH_CONNS="8 32"  BENCH_WORKERS=8
#   BENCH_BUILD_DIR=/tmp/opennvt-bench-build  BENCH_SKIP_BUILD=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"
. ../shared/bench/lib.sh   # wait_idle

DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-"8 32"}
WORKERS=${BENCH_WORKERS:-8}
BUILD=${BENCH_BUILD_DIR:-/tmp/opennvt-bench-build}
SCPU=${BENCH_SERVER_CPU:-1}
CCPU=${BENCH_CLIENT_CPU:-0}
OUT=${BENCH_OUT:-$HERE/results/auth-$(date +%Y%m%d-%H%M%S)}
for t in cmake cc taskset timeout; do command -v "$t" >/dev/null || { echo "auth.sh: need $t"; exit 1; }; done

OURS_BIN=$BUILD/src/opennvtd
LOAD_BIN=$BUILD/bench-ref/soapload
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "== building (Release) in $BUILD"
  timeout 900 cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOPENNVT_TESTS=OFF >/dev/null
  timeout 1800 cmake --build "$BUILD" -j"$(nproc)" --target opennvtd >/dev/null
  mkdir -p "$BUILD/bench-ref"
  timeout 120 cc -O2 -Wall -o "$LOAD_BIN" "$HERE/src/soapload.c" -lcrypto
fi

W=$(mktemp -d /tmp/opennvt-authbench.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done; kill -9 "$PID" 2>/dev/null || true; fi
  [ -d "$OUT" ] && cp "$W"/*.log "$OUT/" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

USER_NAME=bench
PASS='Load-Tester-9x'
cat > "$W/opennvt.xml" <<XML
<opennvt>
  <log><level>warning</level></log>
  <discovery><enabled>false</enabled></discovery>
  <soap><workers>$WORKERS</workers><max-keep-alive>1000000</max-keep-alive></soap>
</opennvt>
XML
printf '%s\n' "$PASS" | "$OURS_BIN" --config "$W/opennvt.xml" --state-dir "$W/state" --create-admin "$USER_NAME" >/dev/null
taskset -c "$SCPU" "$OURS_BIN" --foreground --config "$W/opennvt.xml" --state-dir "$W/state" \
  --bind 127.0.0.1 --http-port 0 --discovery-port 0 --ports-file "$W/ports" > "$W/ours.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -s "$W/ports" ] && break; sleep 0.1; done
PORT=$(sed -n 's/^http=//p' "$W/ports")
[ -n "$PORT" ] || { echo "auth.sh: opennvtd did not start"; cat "$W/ours.log"; exit 1; }
mkdir -p "$OUT"
{ echo "date: $(date -Is)"; echo "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"; echo "host: $(nproc) CPUs, $(uname -r)";
  echo "settings: $DUR s per row, conns '$CONNS', $WORKERS workers, server CPU $SCPU, client CPU $CCPU"; } > "$OUT/env.txt"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)

row() { # MODE OP CONNS
  wait_idle >/dev/null 2>&1 || true
  local t0 t1 line
  t0=$(cpu_ticks)
  line=$(timeout $((DUR + 30)) taskset -c "$CCPU" "$LOAD_BIN" --port "$PORT" --op "$2" --conns "$3" --duration "$DUR" \
         --auth "$1" --user "$USER_NAME" --password "$PASS" || true)
  t1=$(cpu_ticks)
  local req; req=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<< "$line")
  local us=0; [ "${req:-0}" -gt 0 ] && us=$(( (t1 - t0) * 1000000 / TICK / req ))
  echo "$line server_us_per_req=$us" | tee -a "$OUT/rows.txt"
}

: > "$OUT/rows.txt"
for c in $CONNS; do
  for pass in 1 2; do
    row none GetSystemDateAndTime "$c"
    row digest GetDeviceInformation "$c"
    row wsse GetDeviceInformation "$c"
  done
done

# Summary: best of the two passes per (mode, conns), ratio to the unauthenticated row.
awk '
  /^RESULT/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = v["mode"] " " v["conns"]
    if (!(k in rps) || v["rps"] + 0 > rps[k]) { rps[k] = v["rps"]; p50[k] = v["p50_us"]; p99[k] = v["p99_us"]; cpu[k] = v["server_us_per_req"]; bad[k] = v["non200"]; op[k] = v["op"] }
    conns[v["conns"]] = 1
  }
  END {
    print "| auth | operation | conns | req/s (best of 2) | vs none | p50 us | p99 us | server us/req | non-200 |"
    print "|---|---|--:|--:|--:|--:|--:|--:|--:|"
    n = split("none digest wsse", modes, " ")
    for (c in conns) for (m = 1; m <= n; m++) {
      k = modes[m] " " c; base = rps["none " c]
      printf "| %s | %s | %s | %d | %.2f | %s | %s | %s | %s |\n", modes[m], op[k], c, rps[k], base ? rps[k] / base : 0, p50[k], p99[k], cpu[k], bad[k]
    }
  }' "$OUT/rows.txt" | tee "$OUT/summary.md"
echo "== results in $OUT"
