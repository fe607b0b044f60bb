#!/usr/bin/env bash
# bench/encode.sh - encoder throughput of OpenNVT's encoder module next to the
# ffmpeg CLI and the libavcodec API (../shared/bench/encode.sh) on the same
# pre-rendered testsrc2 frames, H.264 (libx264) and MJPEG, 1080p and 720p,
# 1 and 2 threads; then the live cost that matters on a camera: opennvtd
# encoding its own 1080p30 test pattern for one viewer, as % of one core
# (the encoder thread's /proc/<tid>/stat over 10 s).
# Usage: bench/encode.sh   (about 5 min)   Env: SCRATCH (/tmp/bench), QUICK=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
SCRATCH=${SCRATCH:-/tmp/bench}; export SCRATCH
OUT=$HERE/results/encode-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$HERE/results" "$SCRATCH/bin"
exec > >(tee "$OUT") 2>&1
echo "# bench/encode.sh — $(date -u)"

# 1. the reference rows (and the raw clips they render)
ONLY='x264-ultrafast|mjpeg' "$SHARED/encode.sh" "1920x1080 1280x720" "1 2"

# 2. our encoder module on the same clips
BIN=$SCRATCH/bin/encbench
cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$ROOT/include" -o "$BIN" "$HERE/src/encbench.c" "$ROOT/src/media/encoder.c" \
    "$ROOT/src/core/log.c" $(pkg-config --cflags --libs libavcodec libswscale libavutil) -lpthread
. "$SHARED/lib.sh"
echo
echo "OpenNVT encoder module (src/media/encoder.c) on the same raw testsrc2 clips"
printf "%-20s %-10s %3s | %9s %9s %9s\n" encoder res thr fps "cpu ms/f" "kbps@25"
for RES in 1920x1080 1280x720; do
  W=${RES%x*}; H=${RES#*x}; RAW=$SCRATCH/enc/testsrc2_${RES}_n0.yuv
  for E in h264 jpeg; do
    for T in 1 2; do
      CPUS=0; [ "$T" -ge 2 ] && CPUS=0-1
      N=600; [ "$W" -le 1280 ] && N=1200; [ "${QUICK:-0}" = 1 ] && N=$((N / 3))
      wait_idle 90
      L=$(taskset -c $CPUS "$BIN" -i "$RAW" -W "$W" -H "$H" -e $E -t $T -n $N -b 4000 -g 50)
      g() { echo "$L" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
      printf "%-20s %-10s %3s | %9s %9s %9s\n" "opennvt-$E" "$RES" "$T" "$(g fps)" "$(g cpu_ms_per_frame)" "$(g kbps_at_25fps)"
    done
  done
done

# 3. live: opennvtd's own 1080p30 test pattern, one viewer, encoder thread CPU
OPENNVTD=$ROOT/build/src/opennvtd
W=$(mktemp -d); trap 'kill $DPID 2>/dev/null; wait $DPID 2>/dev/null; rm -rf "$W"' EXIT
cat > "$W/cfg.xml" <<'XML'
<opennvt><security><anonymous-media>true</anonymous-media></security>
<media><source-width>1920</source-width><source-height>1080</source-height><source-framerate>30</source-framerate>
<encoder-threads>1</encoder-threads></media><discovery><enabled>false</enabled></discovery></opennvt>
XML
# Anonymous viewing (the viewer sends no Digest) needs a device with an Administrator.
printf 'Encode-Admin-Pass1\n' | "$OPENNVTD" --state-dir "$W/state" --create-admin operator1 >/dev/null
"$OPENNVTD" --foreground --config "$W/cfg.xml" --state-dir "$W/state" --bind 127.0.0.1 --http-port 0 --https-port 0 \
    --rtsp-port 0 --ports-file "$W/ports" --log-level warning > "$W/d.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -s "$W/ports" ] && break; sleep 0.1; done
RTSP=$(sed -n 's/^rtsp=//p' "$W/ports")
timeout 20 ffmpeg -nostdin -v error -rtsp_transport tcp -i "rtsp://127.0.0.1:$RTSP/stream/Profile_1" -t 16 -c copy -f null - &
VP=$!
sleep 4
ticks() { for t in /proc/$DPID/task/*; do [ "$(cat "$t/comm")" = "$1" ] && awk '{s+=$14+$15} END{print s}' "$t/stat" || true; done | awk '{s+=$1} END{print s+0}'; }
E0=$(ticks opennvt-encode); S0=$(ticks opennvt-source); P0=$(awk '{print $14+$15}' /proc/$DPID/stat); T0=$(date +%s.%N)
sleep 10
E1=$(ticks opennvt-encode); S1=$(ticks opennvt-source); P1=$(awk '{print $14+$15}' /proc/$DPID/stat); T1=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
echo
awk -v e0="$E0" -v e1="$E1" -v s0="$S0" -v s1="$S1" -v p0="$P0" -v p1="$P1" -v t0="$T0" -v t1="$T1" -v hz="$HZ" 'BEGIN{
  dt=t1-t0; printf "live 1080p30 H.264 (one viewer): encoder thread %.1f%% of one core, test pattern %.1f%%, whole daemon %.1f%%\n",
  100*(e1-e0)/hz/dt, 100*(s1-s0)/hz/dt, 100*(p1-p0)/hz/dt }'
wait $VP 2>/dev/null || true
echo "results in $OUT"
