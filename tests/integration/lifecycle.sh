#!/usr/bin/env bash
# The daemon's contract: options, config errors (exit 2, file:line:setting,
# nothing overwritten), state directory, ports file, SIGHUP reload, SIGTERM,
# IPv6 binding, and crash safety of persisted state (kill -9 mid-write).
. "$(dirname "$0")/lib.sh"

check "--help exits 0 and names the options" bash -c "\"$OPENNVTD\" --help | grep -q -- --ports-file"
check "--version prints the version" bash -c "\"$OPENNVTD\" --version | grep -Eq '^opennvtd [0-9]+\.[0-9]+\.[0-9]+'"
rc=0; "$OPENNVTD" --no-such-option 2>/dev/null || rc=$?
check "unknown option → exit 2" [ "$rc" = 2 ]
rc=0; "$OPENNVTD" --http-port 70000 --state-dir "$WORK/x" 2>"$WORK/err" || rc=$?
check "out-of-range --http-port → exit 2 naming the setting" [ "$rc" = 2 ] && grep -q "network/http-port" "$WORK/err"
check "print-config output is a config the daemon accepts" bash -c "\"$OPENNVTD\" --print-config > \"$WORK/def.xml\" && \"$OPENNVTD\" --config \"$WORK/def.xml\" --print-config | cmp -s - \"$WORK/def.xml\""

mkdir -p "$WORK/pre" && echo "keep" > "$WORK/pre/netcfg.xml.sentinel"
bad_config() { # bad_config NAME CONTENT EXPECTED-IN-MESSAGE
    printf '%s\n' "$2" > "$WORK/$1.xml"
    local rc=0
    "$OPENNVTD" --foreground --config "$WORK/$1.xml" --state-dir "$WORK/pre" --http-port 0 2> "$WORK/$1.err" || rc=$?
    check "bad config ($1) → exit 2 with '$3'" bash -c "[ $rc = 2 ] && grep -q -- \"$WORK/$1.xml:\" \"$WORK/$1.err\" && grep -q -- '$3' \"$WORK/$1.err\""
}
bad_config syntax $'<opennvt>\n  <network>\n    <http-port>80</http-port>\n  </netwrk>\n</opennvt>' ':4:'
bad_config unknown $'<opennvt>\n  <network>\n    <colour>blue</colour>\n  </network>\n</opennvt>' "network/colour"
bad_config range $'<opennvt>\n\n  <soap><workers>100000</workers></soap>\n</opennvt>' "soap/workers"
bad_config type $'<opennvt>\n  <discovery><enabled>maybe</enabled></discovery>\n</opennvt>' "discovery/enabled"
bad_config section $'<opennvt>\n  <telemetry/>\n</opennvt>' "telemetry"
check "a refused config wrote nothing to the state directory" [ "$(ls "$WORK/pre")" = "netcfg.xml.sentinel" ]

# Ports file and state directory
cat > "$WORK/cfg.xml" <<'XML'
<opennvt><device><model>Model-A</model></device></opennvt>
XML
start_daemon --config "$WORK/cfg.xml"
check "ports file has http= and discovery= lines" grep -Eqx 'http=[0-9]+' "$WORK/ports"
check "ports file http port answers" bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml' --data '<x/>' '$URL' | grep -q 400"
check "state dir is 0700" [ "$(stat -c %a "$STATE")" = 700 ]
check "device-uuid is 0600" [ "$(stat -c %a "$STATE/device-uuid")" = 600 ]
rc=0; timeout 10 "$OPENNVTD" --foreground --state-dir "$STATE" --http-port 0 --discovery-port 0 2>"$WORK/second.err" || rc=$?
check "a second daemon on the same state dir is refused" [ "$rc" = 1 ] && grep -q "in use" "$WORK/second.err"

# SIGHUP: reload; a broken file keeps the running configuration
model() { "$ONVIF_CLIENT" device "$URL" | sed -n 's/^info.model=//p'; }
check "model from config" [ "$(model)" = Model-A ]
echo '<opennvt><device><model>Model-B</model></device></opennvt>' > "$WORK/cfg.xml"
kill -HUP "$DAEMON_PID"
ok=1; for _ in $(seq 1 50); do sleep 0.1; [ "$(model 2>/dev/null)" = Model-B ] && { ok=0; break; }; done
check "SIGHUP reloads the configuration on the same port" [ "$ok" = 0 ]
echo '<opennvt><device><model>Model-C</model></devic></opennvt>' > "$WORK/cfg.xml"
kill -HUP "$DAEMON_PID"; sleep 1
check "SIGHUP with a broken file keeps running with the old config" [ "$(model)" = Model-B ]
check "…and logs why" grep -q "reload refused" "$WORK/daemon.log"
stop_daemon INT
check "SIGINT stops cleanly" [ "$DAEMON_RC" = 0 ]

# IPv6
if ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
    rm -f "$WORK/ports"
    "$OPENNVTD" --foreground --state-dir "$WORK/v6" --bind ::1 --http-port 0 --discovery-port 0 --ports-file "$WORK/ports" >> "$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 50); do [ -s "$WORK/ports" ] && break; sleep 0.1; done
    p6=$(sed -n 's/^http=//p' "$WORK/ports")
    curl -sS -g -o "$WORK/v6.xml" -X POST -H 'Content-Type: application/soap+xml' \
        --data '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetServices xmlns="http://www.onvif.org/ver10/device/wsdl"><IncludeCapability>false</IncludeCapability></GetServices></s:Body></s:Envelope>' "http://[::1]:$p6/onvif/device_service"
    check "IPv6: XAddr uses the bracketed address the client connected to" grep -q "http://\[::1\]:$p6/onvif/device_service" "$WORK/v6.xml"
    stop_daemon TERM
else
    log "skip - no IPv6 loopback here"
fi

# kill -9 while scopes are being rewritten: the file is always old or new, never torn
STATE=$WORK/crash
for round in 1 2 3 4 5; do
    start_daemon
    ( for i in $(seq 1 200); do "$ONVIF_CLIENT" set-scopes "$URL" "onvif://www.onvif.org/name/r$round-$i" "onvif://www.onvif.org/location/l$i" >/dev/null 2>&1 || break; done ) &
    writer=$!
    sleep "0.$(( (RANDOM % 8) + 2 ))"
    kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""
    wait "$writer" 2>/dev/null || true
    check "round $round: netcfg.xml parses after kill -9" xmllint --noout "$STATE/netcfg.xml"
    start_daemon
    check "round $round: no temporary files survive a restart" bash -c "! ls \"$STATE\" | grep -q '\.tmp\.'"
    check "round $round: daemon restarts on the surviving state" bash -c "\"$ONVIF_CLIENT\" scopes '$URL' | grep -q 'name/r$round-\|name/'"
    stop_daemon TERM
done
finish
