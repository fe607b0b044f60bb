#!/usr/bin/env bash
# bench/rtsp.sh - RTSP fan-out of one 1080p H.264 stream: opennvtd side by side
# with gst-rtsp-server (Debian's libgstrtspserver, the shared instrument's
# reference) in the same run, same light client (../shared/bench/rtspcount.c
# via rtsp_fanout.sh), N = 1 10 50 100 200 viewers over TCP and UDP.
#
# What is compared: the server's RTSP/RTP work. gst-rtsp-server re-payloads a
# pre-encoded 1080p25 4 Mbit/s stream that a feeder process (on the client
# core) sends it; opennvtd encodes its own 1080p25 test pattern at 4 Mbit/s.
# So that both sides are charged for serving only, opennvtd's capture and
# encoder threads are moved to the client core, and the measured "server" is
# opennvtd's RTSP loop thread (its /proc/<tid>/stat), pinned alone to the
# server core; the process total (encoder included) is reported separately.
#
# Usage: bench/rtsp.sh [N_LIST] [SECONDS] [TRANSPORTS]
#   defaults "1 10 50 100 200", 20, "tcp udp"   (about 15 min for everything)
# Env: SCRATCH (/tmp/bench), SERVER_CPU (1), CLIENT_CPU (0), SKIP_GST=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
NLIST=${1:-"1 10 50 100 200"}; DUR=${2:-20}; TRS=${3:-"tcp udp"}
SCPU=${SERVER_CPU:-1}; CCPU=${CLIENT_CPU:-0}
SCRATCH=${SCRATCH:-/tmp/bench}; export SCRATCH
OUT=$HERE/results/rtsp-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$HERE/results" "$SCRATCH"
OPENNVTD=$ROOT/build/src/opennvtd
[ -x "$OPENNVTD" ] || { echo "build first: cmake -S . -B build && cmake --build build"; exit 1; }

exec > >(tee "$OUT") 2>&1
echo "# bench/rtsp.sh $* — $(date -u)  ($(nproc) cores: server on $SCPU, clients on $CCPU)"
"$SHARED/rtsp_anchors.sh" prepare

# ---- opennvtd ----
W=$(mktemp -d)
trap 'kill $DPID 2>/dev/null; wait $DPID 2>/dev/null; rm -rf "$W"' EXIT
cat > "$W/cfg.xml" <<'XML'
<opennvt>
  <security><anonymous-media>true</anonymous-media></security>
  <media>
    <source-width>1920</source-width><source-height>1080</source-height><source-framerate>25</source-framerate>
    <encoder-linger-ms>600000</encoder-linger-ms>
    <rtsp-max-connections>1024</rtsp-max-connections><rtsp-max-connections-per-ip>1024</rtsp-max-connections-per-ip>
  </media>
  <discovery><enabled>false</enabled></discovery>
</opennvt>
XML
# Anonymous viewing (the light client has no Digest) needs a device with an Administrator.
printf 'Fanout-Admin-Pass1\n' | "$OPENNVTD" --state-dir "$W/state" --create-admin operator1 >/dev/null
# The main stream as the reference's: 1080p25 H.264 High, 4 Mbit/s CBR, GOP 2 s.
cat > "$W/state/media.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<media version="1" next-profile="4">
  <vsc token="VideoSourceConfig_1" name="VideoSourceConfig_1" source="VideoSource_1" x="0" y="0" width="1920" height="1080"/>
  <vec token="VideoEncoder_1" name="MainStream" encoding="H264" width="1920" height="1080" quality="70" framerate="25" encoding-interval="1" bitrate-kbps="4000" constant-bitrate="true" gov-length="50" profile="High" session-timeout="60">
    <multicast address="239.255.0.1" port="40000" ttl="1" autostart="false"/>
  </vec>
  <vec token="VideoEncoder_2" name="SubStream" encoding="H264" width="640" height="360" quality="70" framerate="25" encoding-interval="1" bitrate-kbps="1024" constant-bitrate="false" gov-length="50" profile="Main" session-timeout="60">
    <multicast address="239.255.0.2" port="40002" ttl="1" autostart="false"/>
  </vec>
  <vec token="VideoEncoder_3" name="JPEG" encoding="JPEG" width="640" height="360" quality="70" framerate="15" encoding-interval="1" bitrate-kbps="4096" constant-bitrate="false" gov-length="0" profile="Baseline" session-timeout="60">
    <multicast address="239.255.0.3" port="40004" ttl="1" autostart="false"/>
  </vec>
  <profile token="Profile_1" name="MainStream" fixed="true" vsc="VideoSourceConfig_1" vec="VideoEncoder_1"/>
  <profile token="Profile_2" name="SubStream" fixed="true" vsc="VideoSourceConfig_1" vec="VideoEncoder_2"/>
  <profile token="Profile_3" name="JPEG" fixed="true" vsc="VideoSourceConfig_1" vec="VideoEncoder_3"/>
</media>
XML
chmod 600 "$W/state/media.xml"
( ulimit -n "$(ulimit -Hn)"; exec taskset -c "$CCPU" "$OPENNVTD" --foreground --config "$W/cfg.xml" --state-dir "$W/state" \
    --bind 127.0.0.1 --http-port 0 --https-port 0 --rtsp-port 0 --ports-file "$W/ports" --log-level warning ) > "$W/d.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -s "$W/ports" ] && break; sleep 0.1; done
RTSP=$(sed -n 's/^rtsp=//p' "$W/ports"); HTTP=$(sed -n 's/^http=//p' "$W/ports")
# Main stream at 1080p25, 4 Mbit/s CBR, GOP 2 s (as the reference stream).
curl -s -o /dev/null "http://127.0.0.1:$HTTP/onvif/device_service" || true
URL=rtsp://127.0.0.1:$RTSP/stream/Profile_1
# One viewer starts the encoder; then the threads are placed.
timeout 10 ffprobe -v error -rtsp_transport tcp "$URL" >/dev/null 2>&1 || true
tid_of() { for t in /proc/$DPID/task/*; do [ "$(cat "$t/comm")" = "$1" ] && { basename "$t"; return 0; }; done; return 0; }
LOOP=$(tid_of opennvt-rtsp)
[ -n "$LOOP" ] || { echo "no opennvt-rtsp thread"; exit 1; }
taskset -pc "$SCPU" "$LOOP" >/dev/null
echo "opennvtd pid $DPID, RTSP loop thread $LOOP pinned to CPU $SCPU; encoder and capture on CPU $CCPU"
"$SHARED/rtsp_fanout.sh" "$URL" "$NLIST" "$DUR" --pid "$LOOP" --server-cpu "$SCPU" --client-cpu "$CCPU" \
    --transports "$TRS" --label opennvt-loop
echo "opennvtd process (all threads, encoder included) CPU seconds so far: $(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14+$15)/hz}' /proc/$DPID/stat)"
echo "opennvtd peak RSS: $(awk '/VmHWM/{print $2/1024 " MB"}' /proc/$DPID/status)"
kill $DPID; wait $DPID 2>/dev/null || true

# ---- the reference, same client, same machine, same run ----
[ "${SKIP_GST:-0}" = 1 ] || SERVER_CPU=$SCPU CLIENT_CPU=$CCPU "$SHARED/rtsp_anchors.sh" gst "$NLIST" "$DUR" "$TRS"
echo "results in $OUT"
