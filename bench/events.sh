#!/usr/bin/env bash
# bench/events.sh - event delivery latency and the cost of motion detection.
#
# 1. Delivery: N pull-point subscriptions (N = 1 and 100) filtered on
#    tns1:Media/ProfileChanged, each with a PullMessages waiting, all held
#    by one light client process (src/pullbench.c: one thread, poll, pulls
#    again as soon as a response arrives); CreateProfile/DeleteProfile pairs
#    produce the events.
#    Latency = when the pull's response has arrived at the client minus the
#    event's UtcTime (stamped by the bus when the event is published; its
#    millisecond resolution adds up to 1 ms). ROUNDS events per N.
# 2. Motion detection: opennvtd at 1080p25 with one viewer, motion detection
#    (analysing every frame) on vs off; the capture thread ("opennvt-source",
#    where the detector runs) CPU over 20 s each, as % of one core.
#
# Usage: bench/events.sh   Env: ROUNDS (20), SCRATCH (/tmp/bench)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OPENNVTD=$ROOT/build/src/opennvtd
[ -x "$OPENNVTD" ] || { echo "build first: cmake -S . -B build && cmake --build build"; exit 1; }
ROUNDS=${ROUNDS:-20}
OUT=$HERE/results/events-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$HERE/results"
exec > >(tee "$OUT") 2>&1
echo "# bench/events.sh — $(date -u) ($(nproc) cores), ROUNDS=$ROUNDS"

W=$(mktemp -d)
DPID=""
trap '[ -n "$DPID" ] && kill $DPID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
USER_=operator1 PASS='Events-Bench-Pass1'

start() { # start CONFIG_XML
    rm -rf "$W/state" "$W/ports"
    printf '%s\n' "$PASS" | "$OPENNVTD" --state-dir "$W/state" --create-admin "$USER_" >/dev/null
    echo "$1" > "$W/cfg.xml"
    "$OPENNVTD" --foreground --config "$W/cfg.xml" --state-dir "$W/state" --bind 127.0.0.1 --http-port 0 \
        --https-port 0 --rtsp-port 0 --discovery-port 0 --ports-file "$W/ports" --log-level warning > "$W/d.log" 2>&1 &
    DPID=$!
    for _ in $(seq 100); do [ -s "$W/ports" ] && break; sleep 0.1; done
    HTTP=$(sed -n 's/^http=//p' "$W/ports")
}
stop() { kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""; }
post() { # post URL BODY OUT
    curl -sS --max-time 60 -o "$3" --digest -u "$USER_:$PASS" -H 'Content-Type: application/soap+xml' \
        --data-binary "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tev=\"http://www.onvif.org/ver10/events/wsdl\" xmlns:wsnt=\"http://docs.oasis-open.org/wsn/b-2\" xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\"><s:Body>$2</s:Body></s:Envelope>" "$1"
}
now_ns() { date +%s%N; }

# ---- 1. delivery latency ----
PB=${SCRATCH:-/tmp/bench}/bin/pullbench
mkdir -p "$(dirname "$PB")"
cc -O2 -Wall -o "$PB" "$HERE/src/pullbench.c"
start '<opennvt><security><anonymous-media>true</anonymous-media></security><events><max-pull-points>128</max-pull-points><motion-detection>false</motion-detection></events></opennvt>'
for N in ${NLIST:-1 100}; do
    DUR=$(( ROUNDS / 2 + 8 ))
    "$PB" 127.0.0.1 "$HTTP" "$N" "$DUR" tns1:Media/ProfileChanged > "$W/lat.$N" 2> "$W/pb.$N" &
    PBPID=$!
    for _ in $(seq 50); do grep -q ready "$W/pb.$N" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    # each round: a CreateProfile and a DeleteProfile, two events
    for r in $(seq 1 $(( ROUNDS / 2 ))); do
        post "http://127.0.0.1:$HTTP/onvif/media_service" "<trt:CreateProfile><trt:Name>b$r</trt:Name><trt:Token>Bench_${N}_$r</trt:Token></trt:CreateProfile>" "$W/cp.xml"
        sleep 0.25
        post "http://127.0.0.1:$HTTP/onvif/media_service" "<trt:DeleteProfile><trt:ProfileToken>Bench_${N}_$r</trt:ProfileToken></trt:DeleteProfile>" "$W/dp.xml"
        sleep 0.25
    done
    wait "$PBPID" || { cat "$W/pb.$N"; exit 1; }
    sort -n "$W/lat.$N" | awk -v n="$N" -v want=$(( ROUNDS * N )) '{a[NR]=$1} END{
        if (NR == 0) { printf "delivery N=%d: no samples\n", n; exit }
        p50=a[int(NR*0.50+0.5)>0?int(NR*0.50+0.5):1]; p99=a[int(NR*0.99+0.5)>0?int(NR*0.99+0.5):1];
        printf "delivery N=%-3d samples=%d/%d  publish->client p50=%.1f ms p99=%.1f ms max=%.1f ms\n", n, NR, want, p50/1000, p99/1000, a[NR]/1000 }'
done
stop

# ---- 2. motion detection cost at 1080p25 ----
tid_ticks() { for t in /proc/$DPID/task/*; do [ "$(cat "$t/comm")" = "$1" ] && awk '{print $14+$15}' "$t/stat" && return; done; echo 0; }
HZ=$(getconf CLK_TCK)
for M in false true; do
    start "<opennvt><security><anonymous-media>true</anonymous-media></security><media><source-width>1920</source-width><source-height>1080</source-height><source-framerate>25</source-framerate></media><events><motion-detection>$M</motion-detection><motion-fps>25</motion-fps></events></opennvt>"
    # A viewer keeps the capture running in both runs; the detector runs on
    # the capture thread, so the difference between the runs is its cost.
    RTSP=$(sed -n 's/^rtsp=//p' "$W/ports")
    timeout 30 ffmpeg -nostdin -v quiet -rtsp_transport tcp -i "rtsp://127.0.0.1:$RTSP/stream/Profile_2" -c copy -f null - &
    VIEWER=$!
    sleep 4
    a=$(tid_ticks opennvt-source); t0=$(now_ns); sleep 20; b=$(tid_ticks opennvt-source); t1=$(now_ns)
    awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v m="$M" 'BEGIN{
        printf "1080p25 capture thread (test pattern%s): %.2f%% of one core\n", m == "true" ? " + motion detection at 25 fps" : "", 100*(b-a)/hz/((t1-t0)/1e9) }'
    kill "$VIEWER" 2>/dev/null || true; wait "$VIEWER" 2>/dev/null || true
    stop
done
echo "results in $OUT"
