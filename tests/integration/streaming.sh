#!/usr/bin/env bash
# Streaming: the RTSP server and the encoders judged by independent clients —
# ffprobe/ffmpeg over UDP, TCP interleaved and the HTTP tunnel (codec, size,
# frames actually decoded), GStreamer's rtspsrc, curl for snapshots — plus
# RTSP Digest, live encoder changes and hostile RTSP input.
. "$(dirname "$0")/lib.sh"

for tool in ffprobe ffmpeg gst-launch-1.0; do
    command -v "$tool" >/dev/null || { log "$tool is missing (scripts/setup.sh installs it)"; exit 1; }
done

# A small, fast source keeps the test light: 640x360 at 15 frames/s.
cat > "$WORK/opennvtd.xml" <<'XML'
<opennvt>
  <media>
    <source-width>640</source-width>
    <source-height>360</source-height>
    <source-framerate>15</source-framerate>
    <encoder-linger-ms>500</encoder-linger-ms>
    <rtsp-session-timeout-s>10</rtsp-session-timeout-s>
  </media>
</opennvt>
XML
start_daemon --config "$WORK/opennvtd.xml"
check "the ports file names the RTSP port" [ -n "$RTSP_PORT" ] && [ "$RTSP_PORT" != off ]
BASE="rtsp://127.0.0.1:$RTSP_PORT/stream"
AUTH_BASE="rtsp://$ADMIN_USER:$ADMIN_PASS@127.0.0.1:$RTSP_PORT/stream"

# probe URL TRANSPORT: codec,width,height of the first video stream
probe() {
    timeout 30 ffprobe -v error -rtsp_transport "$2" -select_streams v:0 \
        -show_entries stream=codec_name,width,height -of csv=p=0 "$1" 2>>"$WORK/ff.err" | head -1
}
# decoded_frames URL TRANSPORT N: how many frames ffmpeg decoded when asked for N
decoded_frames() {
    timeout 40 ffmpeg -nostdin -v error -rtsp_transport "$2" -i "$1" -frames:v "$3" -f framecrc - 2>>"$WORK/ff.err" |
        grep -c '^0,'
}

# ---- access: RTSP Digest against the device's users ----
rtsp_raw() { # rtsp_raw REQUEST_TEXT: sends it on a fresh connection, prints the response head
    (
        trap '' PIPE   # the server may close before it has read everything (413): keep the reply
        exec 3<>"/dev/tcp/127.0.0.1/$RTSP_PORT" || exit 0
        printf '%b' "$1" >&3 2>/dev/null
        while IFS= read -r -t 5 line <&3; do
            line=${line%$'\r'}
            printf '%s\n' "$line"
            [ -z "$line" ] && break
        done
    ) || true
}
resp=$(rtsp_raw "DESCRIBE $BASE/Profile_1 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n")
check "DESCRIBE without credentials → 401" grep -q '^RTSP/1.0 401' <<<"$resp"
check "the 401 carries a Digest challenge and the CSeq" bash -c 'grep -qi "^WWW-Authenticate: Digest" <<<"$1" && grep -q "^CSeq: 2" <<<"$1"' _ "$resp"
check "ffprobe with a wrong password is refused" \
    [ -z "$(probe "rtsp://$ADMIN_USER:wrong@127.0.0.1:$RTSP_PORT/stream/Profile_1" tcp)" ]
resp=$(rtsp_raw "OPTIONS $BASE/Profile_1 RTSP/1.0\r\nCSeq: 7\r\n\r\n")
check "OPTIONS (no credentials needed) lists the methods" \
    bash -c 'grep -q "^RTSP/1.0 200" <<<"$1" && grep -q "^Public:.*DESCRIBE.*SETUP.*PLAY.*TEARDOWN" <<<"$1"' _ "$resp"

# ---- H.264 main stream over the three unicast transports ----
for tr in tcp udp http; do
    got=$(probe "$AUTH_BASE/Profile_1" "$tr")
    check "ffprobe over $tr sees H.264 640x360 ($got)" [ "$got" = "h264,640,360" ]
done
# RTSP over HTTP on the web service's port, as GetStreamUri (HTTP) gives it.
got=$(probe "rtsp://$ADMIN_USER:$ADMIN_PASS@127.0.0.1:$HTTP_PORT/stream/Profile_1" http)
check "ffprobe tunnelled through the SOAP port sees H.264 640x360 ($got)" [ "$got" = "h264,640,360" ]
for tr in tcp udp http; do
    n=$(decoded_frames "$AUTH_BASE/Profile_1" "$tr" 20)
    check "ffmpeg over $tr decodes 20 frames ($n)" [ "$n" -ge 20 ]
done

# ---- MJPEG profile ----
got=$(probe "$AUTH_BASE/Profile_3" tcp)
check "ffprobe sees the JPEG profile as MJPEG ($got)" [ "${got%%,*}" = mjpeg ]
n=$(decoded_frames "$AUTH_BASE/Profile_3" udp 10)
check "ffmpeg decodes 10 JPEG frames over UDP ($n)" [ "$n" -ge 10 ]

# ---- a second, independent client: GStreamer ----
gst() { # gst PROTOCOLS DEPAY...: 15 decoded buffers within the time limit
    timeout 40 gst-launch-1.0 -q rtspsrc location="$BASE/$1" user-id="$ADMIN_USER" user-pw="$ADMIN_PASS" \
        protocols="$2" latency=0 ! "${@:3}" ! fakesink num-buffers=15 >>"$WORK/gst.log" 2>&1
}
check "GStreamer rtspsrc (TCP) decodes H.264" gst Profile_1 tcp rtph264depay ! h264parse ! avdec_h264
check "GStreamer rtspsrc (UDP) decodes H.264" gst Profile_2 udp rtph264depay ! h264parse ! avdec_h264
check "GStreamer rtspsrc (TCP) decodes JPEG" gst Profile_3 tcp rtpjpegdepay ! jpegdec

# ---- snapshots ----
code=$(curl -sS --max-time 20 -o "$WORK/snap.jpg" -w '%{http_code}' --digest -u "$ADMIN_USER:$ADMIN_PASS" \
    "http://127.0.0.1:$HTTP_PORT/onvif/snapshot/Profile_3")
check "snapshot → 200" [ "$code" = 200 ]
got=$(ffprobe -v error -show_entries stream=codec_name,width,height -of csv=p=0 "$WORK/snap.jpg" 2>/dev/null | head -1)
check "the snapshot decodes as a JPEG of the profile's size ($got)" [ "$got" = "mjpeg,640,360" ]
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/onvif/snapshot/Profile_3")
check "snapshot without credentials → 401" [ "$code" = 401 ]
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' --digest -u "$ADMIN_USER:$ADMIN_PASS" \
    "http://127.0.0.1:$HTTP_PORT/onvif/snapshot/NoSuchProfile")
check "snapshot of an unknown profile → 404" [ "$code" = 404 ]
start=$(date +%s%N)
for _ in 1 2 3 4 5; do
    curl -sS --max-time 20 -o /dev/null --digest -u "$ADMIN_USER:$ADMIN_PASS" "http://127.0.0.1:$HTTP_PORT/onvif/snapshot/Profile_2"
done
log "5 snapshots took $(( ($(date +%s%N) - start) / 1000000 )) ms"

# ---- live encoder change: the new size reaches new viewers ----
code=$(soap '<trt:GetVideoEncoderConfiguration><trt:ConfigurationToken>VideoEncoder_2</trt:ConfigurationToken></trt:GetVideoEncoderConfiguration>' "$WORK/vec.xml")
if [ "$code" = 200 ]; then
    sed -e 's/.*<trt:Configuration/<trt:Configuration/; s/<\/trt:Configuration>.*/<\/trt:Configuration>/' \
        -e 's/<tt:Width>[0-9]*<\/tt:Width>/<tt:Width>320<\/tt:Width>/; s/<tt:Height>[0-9]*<\/tt:Height>/<tt:Height>180<\/tt:Height>/' \
        "$WORK/vec.xml" > "$WORK/vec.cfg"
    code=$(soap "<trt:SetVideoEncoderConfiguration>$(cat "$WORK/vec.cfg")<trt:ForcePersistence>true</trt:ForcePersistence></trt:SetVideoEncoderConfiguration>" "$WORK/set.xml")
    check "SetVideoEncoderConfiguration to 320x180 → 200" [ "$code" = 200 ]
    got=$(probe "$AUTH_BASE/Profile_2" tcp)
    check "the stream now is 320x180 ($got)" [ "$got" = "h264,320,180" ]
else
    fail "GetVideoEncoderConfiguration → $code"
fi

# ---- hostile input: precise statuses, and the server keeps serving ----
resp=$(rtsp_raw "DESCRIBE $BASE/Profile_1 RTSP/1.0\r\nAccept: application/sdp\r\n\r\n")
check "a request without CSeq → 400" grep -q '^RTSP/1.0 400' <<<"$resp"
resp=$(rtsp_raw "DESCRIBE $BASE/Profile_1 RTSP/2.0\r\nCSeq: 1\r\n\r\n")
check "an unknown RTSP version → 505" grep -q '^RTSP/1.0 505' <<<"$resp"
resp=$(rtsp_raw "DESCRIBE $BASE/Profile_1 RTSP/1.0\r\nCSeq: 99999999999999999999\r\n\r\n")
check "an absurd CSeq → 400" grep -q '^RTSP/1.0 400' <<<"$resp"
big=$(head -c 20000 /dev/zero | tr '\0' 'a')
resp=$(rtsp_raw "OPTIONS $BASE/Profile_1 RTSP/1.0\r\nCSeq: 1\r\nX-Big: $big\r\n\r\n")
check "an oversized header block → 413 or a clean close" bash -c '[ -z "$1" ] || grep -q "^RTSP/1.0 413" <<<"$1"' _ "$resp"
resp=$(rtsp_raw "PLAY $BASE/Profile_1 RTSP/1.0\r\nCSeq: 3\r\nSession: 0123456789abcdef\r\n\r\n")
check "PLAY of an unknown session → 454 (or 401 before auth)" grep -q '^RTSP/1.0 \(454\|401\)' <<<"$resp"
printf '\x00\x01\x02garbage\r\n\r\n' > "$WORK/garbage"
for _ in 1 2 3; do
    (exec 3<>"/dev/tcp/127.0.0.1/$RTSP_PORT"; cat "$WORK/garbage" >&3; timeout 2 cat <&3 >/dev/null || true) || true
done
# Viewers that vanish mid-stream.
for _ in 1 2 3; do
    timeout -s KILL 2 ffmpeg -nostdin -v quiet -rtsp_transport tcp -i "$AUTH_BASE/Profile_1" -f null - || true
done
check "after the abuse the server still streams" [ "$(probe "$AUTH_BASE/Profile_1" tcp)" = "h264,640,360" ]
check "the daemon is still running" kill -0 "$DAEMON_PID"

# ---- encoders stop when the last viewer leaves (after the linger) ----
sleep 2
starts=$(grep -c 'stream VideoEncoder_1 started' "$WORK/daemon.log" || true)
stops=$(grep -c 'stream VideoEncoder_1 stopped' "$WORK/daemon.log" || true)
check "every start of the main encoder was followed by a stop ($starts/$stops)" [ "$starts" -ge 1 ] && [ "$starts" = "$stops" ]

stop_daemon
check "opennvtd exits cleanly" [ "$DAEMON_RC" = 0 ]
finish
