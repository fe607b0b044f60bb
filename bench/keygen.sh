#!/usr/bin/env bash
# bench/keygen.sh - key generation on the device, side by side with
# `openssl genpkey` in the same run, and SOAP latency while RSA-4096 keys are
# being generated versus idle.
#  1. For RSA 2048/3072/4096 and EC P-256/P-384: time from CreateRSAKeyPair /
#     CreateECCKeyPair until GetKeyStatus says ok (polled every 20 ms), and
#     `openssl genpkey` for the same key, both pinned to the server CPU.
#  2. p50/p99 of unauthenticated GetSystemDateAndTime (bench/src/soapload.c,
#     8 connections) for BENCH_DURATION s idle, then with 4 RSA-4096
#     generations running (topped up once a second), same client.
# Usage: bench/keygen.sh   (about 3 minutes)
#   BENCH_REPS=3 BENCH_DURATION=10 BENCH_BUILD_DIR=/tmp/opennvt-bench-build BENCH_SKIP_BUILD=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"
REPS=${BENCH_REPS:-3}
DUR=${BENCH_DURATION:-10}
BUILD=${BENCH_BUILD_DIR:-/tmp/opennvt-bench-build}
SCPU=${BENCH_SERVER_CPU:-1}
CCPU=${BENCH_CLIENT_CPU:-0}
OUT=${BENCH_OUT:-$HERE/results/keygen-$(date +%Y%m%d-%H%M%S)}
for t in cmake cc taskset timeout curl openssl; do command -v "$t" >/dev/null || { echo "keygen.sh: need $t"; exit 1; }; done

OURS_BIN=$BUILD/src/opennvtd
LOAD_BIN=$BUILD/bench-ref/soapload
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "== building (Release) in $BUILD"
  timeout 900 cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOPENNVT_TESTS=OFF >/dev/null
  timeout 1800 cmake --build "$BUILD" -j"$(nproc)" --target opennvtd >/dev/null
  mkdir -p "$BUILD/bench-ref"
  timeout 120 cc -O2 -Wall -o "$LOAD_BIN" "$HERE/src/soapload.c" -lcrypto
fi

W=$(mktemp -d /tmp/opennvt-keybench.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done; kill -9 "$PID" 2>/dev/null || true; fi
  [ -d "$OUT" ] && cp "$W"/*.log "$OUT/" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

USER_NAME=bench PASS='Load-Tester-9x'
cat > "$W/opennvt.xml" <<XML
<opennvt>
  <log><level>warning</level></log>
  <discovery><enabled>false</enabled></discovery>
  <soap><max-keep-alive>1000000</max-keep-alive></soap>
</opennvt>
XML
printf '%s\n' "$PASS" | "$OURS_BIN" --config "$W/opennvt.xml" --state-dir "$W/state" --create-admin "$USER_NAME" >/dev/null
taskset -c "$SCPU" "$OURS_BIN" --foreground --config "$W/opennvt.xml" --state-dir "$W/state" \
  --bind 127.0.0.1 --http-port 0 --discovery-port 0 --ports-file "$W/ports" > "$W/ours.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -s "$W/ports" ] && break; sleep 0.1; done
PORT=$(sed -n 's/^http=//p' "$W/ports")
[ -n "$PORT" ] || { echo "keygen.sh: opennvtd did not start"; cat "$W/ours.log"; exit 1; }
URL=http://127.0.0.1:$PORT/onvif/security_service
mkdir -p "$OUT"
{ echo "date: $(date -Is)"; echo "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"; echo "host: $(nproc) CPUs, $(uname -r)";
  echo "settings: $REPS reps, $DUR s load rows, server CPU $SCPU, client CPU $CCPU"; } > "$OUT/env.txt"

tas() { # tas BODY -> response on stdout
  curl -sS --max-time 30 --digest -u "$USER_NAME:$PASS" -H 'Content-Type: application/soap+xml' --data-binary \
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tas=\"http://www.onvif.org/ver10/advancedsecurity/wsdl\"><s:Body>$1</s:Body></s:Envelope>" "$URL"
}
key_id() { sed -n 's:.*<tas\:KeyID>\([^<]*\)</tas\:KeyID>.*:\1:p'; }
create() { # create rsa BITS | ec CURVE -> KeyID
  if [ "$1" = rsa ]; then tas "<tas:CreateRSAKeyPair><tas:KeyLength>$2</tas:KeyLength></tas:CreateRSAKeyPair>" | key_id
  else tas "<tas:CreateECCKeyPair><tas:EllipticCurve>$2</tas:EllipticCurve></tas:CreateECCKeyPair>" | key_id; fi
}
status() { tas "<tas:GetKeyStatus><tas:KeyID>$1</tas:KeyID></tas:GetKeyStatus>" | sed -n 's:.*<tas\:KeyStatus>\([^<]*\)</tas\:KeyStatus>.*:\1:p'; }
delete() { tas "<tas:DeleteKey><tas:KeyID>$1</tas:KeyID></tas:DeleteKey>" >/dev/null; }
ms() { date +%s%3N; }

echo "| key | device ms (median of $REPS) | openssl genpkey ms (median of $REPS) | ratio |" | tee "$OUT/keygen.md"
echo "|---|--:|--:|--:|" | tee -a "$OUT/keygen.md"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for spec in "rsa 2048 RSA rsa_keygen_bits:2048" "rsa 3072 RSA rsa_keygen_bits:3072" "rsa 4096 RSA rsa_keygen_bits:4096" \
            "ec secp256r1 EC ec_paramgen_curve:P-256" "ec secp384r1 EC ec_paramgen_curve:P-384"; do
  read -r kind param alg opt <<< "$spec"
  : > "$W/dev.txt"; : > "$W/ossl.txt"
  for _ in $(seq "$REPS"); do
    t0=$(ms); id=$(create "$kind" "$param")
    [ -n "$id" ] || { echo "keygen.sh: create $kind $param failed"; exit 1; }
    for _ in $(seq 6000); do [ "$(status "$id")" = ok ] && break; sleep 0.02; done
    echo $(( $(ms) - t0 )) >> "$W/dev.txt"
    delete "$id"
    t0=$(ms); taskset -c "$SCPU" openssl genpkey -algorithm "$alg" -pkeyopt "$opt" -out /dev/null 2>/dev/null
    echo $(( $(ms) - t0 )) >> "$W/ossl.txt"
  done
  d=$(median < "$W/dev.txt"); o=$(median < "$W/ossl.txt")
  printf '| %s %s | %s | %s | %s |\n' "$kind" "$param" "$d" "$o" "$(awk -v d="$d" -v o="$o" 'BEGIN {printf "%.2f", o ? d / o : 0}')" | tee -a "$OUT/keygen.md"
done

load() { taskset -c "$CCPU" "$LOAD_BIN" --port "$PORT" --op GetSystemDateAndTime --conns 8 --duration "$DUR"; }
echo "== SOAP latency idle" | tee "$OUT/latency.txt"
load | tee -a "$OUT/latency.txt"
echo "== SOAP latency while 4 RSA-4096 keys are generated (kept at 4)" | tee -a "$OUT/latency.txt"
( end=$(( $(date +%s) + DUR + 2 ))
  # One GetAllKeys a second (on the client CPU): keep 4 generations running
  # without the poller itself loading the machine.
  while [ "$(date +%s)" -lt "$end" ]; do
    running=$(tas '<tas:GetAllKeys/>' | grep -o '<tas:KeyStatus>generating</tas:KeyStatus>' | wc -l)
    while [ "$running" -lt 4 ]; do create rsa 4096 >/dev/null; running=$((running + 1)); done
    sleep 1
  done ) > "$W/gen.log" 2>&1 &
GEN=$!
taskset -pc "$CCPU" "$GEN" >/dev/null 2>&1 || true
sleep 1
load | tee -a "$OUT/latency.txt"
wait "$GEN" || true
echo "== results in $OUT"
