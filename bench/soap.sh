#!/usr/bin/env bash
# bench/soap.sh - SOAP throughput/latency of opennvtd side by side with a
# same-run reference server (bench/ref/classic_gsoap_server.c: the classic
# gSOAP thread-pool architecture attributed to onvif_srvd; a stand-in, not
# onvif_srvd itself), measured with the shared instrument
# ../shared/bench/soap_rps.sh (wrk + Lua), same client, same machine, same run.
#
# Usage: bench/soap.sh            (from anywhere; ~10-11 min with the defaults)
# Environment (all optional):
#   BENCH_DURATION=10              seconds per row (soap_rps.sh caps at 300)
#   BENCH_CONNS="1 8 32 256"       concurrent connections
#   BENCH_MODES="ka close"         keep-alive and Connection: close
#   BENCH_OPS="GetSystemDateAndTime"   (GetDeviceInformation needs credentials
#                                  on opennvtd: bench/auth.sh measures it)
#   BENCH_WORKERS=8                SOAP worker threads, both servers
#   BENCH_BUILD_DIR=/tmp/opennvt-bench-build   Release build of the project
#   BENCH_OUT=bench/results/<timestamp>        raw tables, logs, summary
#   BENCH_SERVER_CPU=1 BENCH_CLIENT_CPU=0      taskset CPUs (server / wrk)
#   BENCH_REF_BACKLOG=100 BENCH_REF_MAX_KEEP_ALIVE=100 BENCH_REF_TIMEOUT=3
#                                  reference's listen backlog, gSOAP max_keep_alive,
#                                  send/recv timeouts (s) - gSOAP / onvif_srvd values
#   BENCH_SKIP_BUILD=1             use the binaries already in BENCH_BUILD_DIR
# Needs: bash, cmake, cc, pkg-config, gsoap dev files, wrk, curl, taskset, awk.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"
RPS=../shared/bench/soap_rps.sh      # the measuring instrument, relative to the repo root
[ -f "$RPS" ] || { echo "soap.sh: $RPS not found (expected beside the repo)"; exit 1; }
. ../shared/bench/lib.sh               # busy_1s, wait_idle

DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-"1 8 32 256"}
MODES=${BENCH_MODES:-"ka close"}
OPS=${BENCH_OPS:-"GetSystemDateAndTime"}
WORKERS=${BENCH_WORKERS:-8}
BUILD=${BENCH_BUILD_DIR:-/tmp/opennvt-bench-build}
SCPU=${BENCH_SERVER_CPU:-1}
CCPU=${BENCH_CLIENT_CPU:-0}
REF_BACKLOG=${BENCH_REF_BACKLOG:-100}
REF_MKA=${BENCH_REF_MAX_KEEP_ALIVE:-100}
REF_TIMEOUT=${BENCH_REF_TIMEOUT:-3}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$HERE/results/$STAMP}

case "$DUR" in ''|*[!0-9]*) echo "BENCH_DURATION must be whole seconds"; exit 2;; esac
[ "$DUR" -ge 1 ] && [ "$DUR" -le 300 ] || { echo "BENCH_DURATION must be 1..300"; exit 2; }
for t in cmake cc pkg-config wrk curl taskset awk timeout; do
  command -v "$t" >/dev/null || { echo "soap.sh: need $t"; exit 1; }
done

# ---- build ------------------------------------------------------------------------
OURS_BIN=$BUILD/src/opennvtd
REF_BIN=$BUILD/bench-ref/classic_gsoap_server
GSOAP_LIB=$BUILD/generated/libopennvt_gsoap.a
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "== building (Release) in $BUILD"
  timeout 900 cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOPENNVT_TESTS=OFF >/dev/null
  timeout 1800 cmake --build "$BUILD" -j"$(nproc)" --target opennvtd opennvt_gsoap >/dev/null
  mkdir -p "$BUILD/bench-ref"
  SRC=$HERE/ref/classic_gsoap_server.c
  if [ ! -x "$REF_BIN" ] || [ "$SRC" -nt "$REF_BIN" ] || [ "$GSOAP_LIB" -nt "$REF_BIN" ]; then
    # Same -D flags as libgsoapssl (they change struct soap's layout) and as libopennvt_gsoap.a.
    # shellcheck disable=SC2046
    timeout 300 cc -O2 -Wall -Wno-unused-parameter $(pkg-config --cflags gsoapssl) \
      -I"$BUILD/generated" -I/usr/share/gsoap/plugin -I/usr/share/gsoap/custom \
      "$SRC" "$GSOAP_LIB" $(pkg-config --libs gsoapssl) -lssl -lcrypto -lz -lpthread -o "$REF_BIN"
  fi
fi
[ -x "$OURS_BIN" ] && [ -x "$REF_BIN" ] || { echo "soap.sh: binaries missing in $BUILD"; exit 1; }

# ---- servers ------------------------------------------------------------------------
W=$(mktemp -d /tmp/opennvt-soapbench.XXXXXX)
OURS_PID=""; REF_PID=""
cleanup() {
  local p
  for p in $OURS_PID $REF_PID; do kill "$p" 2>/dev/null || true; done
  for p in $OURS_PID $REF_PID; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ -d "$OUT" ]; then cp "$W"/*.log "$OUT/" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() { # FILE PID NAME -> prints the port
  local i
  for i in $(seq 100); do
    if [ -s "$1" ] && grep -q '^http=' "$1"; then sed -n 's/^http=//p' "$1"; return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "soap.sh: $3 exited at start:" >&2; cat "$W/$3.log" >&2; return 1; }
    sleep 0.1
  done
  echo "soap.sh: $3 did not write its port within 10 s" >&2; return 1
}

cat > "$W/opennvt.xml" <<EOF
<opennvt>
  <log><level>warning</level></log>
  <discovery><enabled>false</enabled></discovery>
  <soap><workers>$WORKERS</workers></soap>
</opennvt>
EOF
mkdir -p "$OUT/raw"
taskset -c "$SCPU" "$OURS_BIN" --foreground --config "$W/opennvt.xml" --state-dir "$W/state" \
  --bind 127.0.0.1 --http-port 0 --discovery-port 0 --ports-file "$W/ours.ports" > "$W/ours.log" 2>&1 &
OURS_PID=$!
taskset -c "$SCPU" "$REF_BIN" --bind 127.0.0.1 --port 0 --ports-file "$W/ref.ports" --workers "$WORKERS" \
  --backlog "$REF_BACKLOG" --max-keep-alive "$REF_MKA" --timeout "$REF_TIMEOUT" > "$W/ref.log" 2>&1 &
REF_PID=$!
OURS_PORT=$(wait_port "$W/ours.ports" "$OURS_PID" ours)
REF_PORT=$(wait_port "$W/ref.ports" "$REF_PID" ref)
OURS_URL=http://127.0.0.1:$OURS_PORT/onvif/device_service
REF_URL=http://127.0.0.1:$REF_PORT/onvif/device_service
echo "== ours: opennvtd pid $OURS_PID $OURS_URL ($WORKERS workers)"
echo "== ref : classic_gsoap_server pid $REF_PID $REF_URL ($WORKERS workers, backlog $REF_BACKLOG, max_keep_alive $REF_MKA, timeouts ${REF_TIMEOUT}s)"

# ---- measurements -------------------------------------------------------------------
NROWS=$(( $(echo $CONNS | wc -w) * $(echo $MODES | wc -w) ))
LIMIT=$(( NROWS * (DUR + 100) + 60 ))   # wait_idle (<=60 s) + wrk (<=DUR+30 s) per row
{
  echo "date: $(date -Is)"
  echo "host: $(nproc) CPUs, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
  echo "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src include generated wsdl CMakeLists.txt 2>/dev/null || echo ' (src modified)')"
  echo "settings: duration ${DUR}s, conns '$CONNS', modes '$MODES', workers $WORKERS, server CPU $SCPU, wrk CPU $CCPU"
} > "$OUT/env.txt"
: > "$OUT/noise.txt"
run_one() { # OP WHO URL PID
  local f="$OUT/raw/$1.$2.txt"
  echo "== $1 on $2 (busy before: $(busy_1s)% load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/noise.txt"
  timeout "$LIMIT" bash "$RPS" "$3" "$1" --duration "$DUR" --conns "$CONNS" --modes "$MODES" --pid "$4" \
    --client-cpu "$CCPU" 2>&1 | tee "$f" || echo "soap.sh: soap_rps.sh failed or timed out for $1 on $2" | tee -a "$f"
  kill -0 "$4" 2>/dev/null || { echo "soap.sh: $2 server died"; exit 1; }
  grep -h WARNING "$f" >> "$OUT/noise.txt" || true
}
i=0
for OP in $OPS; do
  # ABBA order, so slow drifts of background load hit both servers alike.
  if [ $((i % 2)) -eq 0 ]; then order="ours ref"; else order="ref ours"; fi
  for WHO in $order; do
    if [ "$WHO" = ours ]; then run_one "$OP" ours "$OURS_URL" "$OURS_PID"
    else run_one "$OP" ref "$REF_URL" "$REF_PID"; fi
  done
  i=$((i + 1))
done

# ---- summary ------------------------------------------------------------------------
ROWS=$OUT/rows.txt; : > "$ROWS"
for OP in $OPS; do for WHO in ours ref; do
  f="$OUT/raw/$OP.$WHO.txt"; [ -f "$f" ] || continue
  # soap_rps.sh row: mode conns | req/s | p50 p90 p99 max | errors | srv%cpu srv-us/req
  awk -v op="$OP" -v who="$WHO" '($1=="ka"||$1=="close") && $3=="|" {print op, who, $1, $2, $4, $6, $7, $8, $9, $11, $13, $14}' "$f" >> "$ROWS"
done; done

SUM=$OUT/summary.md
awk -v dur="$DUR" '
  function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
  { k = $1 SUBSEP $3 SUBSEP $4; if (!(k in seen)) { seen[k] = 1; order[n++] = k }
    rps[$2, k] = $5; p50[$2, k] = $6; p99[$2, k] = $8; mx[$2, k] = $9; err[$2, k] = $10; us[$2, k] = $12 }
  END {
    print "ours = opennvtd, ref = classic gSOAP thread-pool stand-in (bench/ref); ratio = ours/ref; " dur " s per row"
    print ""
    print "| operation | mode | conns | ours req/s | ref req/s | ratio | ours p50 ms | ref p50 ms | ours p99 ms | ref p99 ms | p99 ratio | ours max ms | ref max ms | ours err | ref err | ours us/req | ref us/req |"
    print "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for (i = 0; i < n; i++) { k = order[i]; split(k, f, SUBSEP)
      printf "| %s | %s | %d | %.0f | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %s | %.1f | %.1f | %d | %d | %s | %s |\n",
        f[1], f[2], f[3], rps["ours", k], rps["ref", k], ratio(rps["ours", k], rps["ref", k]),
        p50["ours", k], p50["ref", k], p99["ours", k], p99["ref", k], ratio(p99["ours", k], p99["ref", k]),
        mx["ours", k], mx["ref", k], err["ours", k], err["ref", k], us["ours", k], us["ref", k] }
    print ""
    print "Targets (ours; ref in brackets): >= 10000 req/s at 8 conns; p99 < 10 ms at 32 and 256 conns"
    for (i = 0; i < n; i++) { k = order[i]; split(k, f, SUBSEP)
      if (f[3] == 8)
        printf "  %-22s %-5s   8 conns: %6.0f req/s %s   [ref %6.0f %s]\n", f[1], f[2], rps["ours", k],
          (rps["ours", k] >= 10000 ? "PASS" : "FAIL"), rps["ref", k], (rps["ref", k] >= 10000 ? "PASS" : "FAIL")
      if (f[3] == 32 || f[3] == 256)
        printf "  %-22s %-5s %3d conns: p99 %8.2f ms %s [ref %8.2f %s]%s\n", f[1], f[2], f[3], p99["ours", k],
          (p99["ours", k] < 10 && err["ours", k] == 0 ? "PASS" : "FAIL"), p99["ref", k],
          (p99["ref", k] < 10 && err["ref", k] == 0 ? "PASS" : "FAIL"),
          (err["ours", k] + err["ref", k] > 0 ? sprintf("  (errors: ours %d, ref %d)", err["ours", k], err["ref", k]) : "") }
  }' "$ROWS" > "$SUM"
{
  echo; echo "Noise log (machine busy % over 1 s before each table; WARNING = wait_idle gave up):"
  sed 's/^/  /' "$OUT/noise.txt"
} >> "$SUM"
echo
echo "================ summary ($OUT/summary.md) ================"
cat "$OUT/env.txt"
cat "$SUM"
