#!/usr/bin/env bash
# Hostile and broken input: every case gets the precise HTTP status or SOAP
# fault, and the daemon keeps serving others. Run under valgrind by the
# integration.badinput.valgrind test (OPENNVTD_WRAPPER).
. "$(dirname "$0")/lib.sh"

cat > "$WORK/limits.xml" <<'XML'
<opennvt>
  <soap>
    <recv-timeout-ms>8000</recv-timeout-ms>
    <idle-timeout-ms>20000</idle-timeout-ms>
    <max-connections-per-ip>60</max-connections-per-ip>
  </soap>
</opennvt>
XML
start_daemon --config "$WORK/limits.xml"
R=$WORK/r.xml
post_raw() { # post_raw FILE [curl args...] → status (HTTP Digest as the Administrator)
    local f=$1; shift
    curl -sS --max-time 20 -o "$R" -w '%{http_code}' -X POST --digest -u "$ADMIN_USER:$ADMIN_PASS" \
        -H 'Content-Type: application/soap+xml' "$@" --data-binary @"$f" "$URL"
}
alive() { [ "$(soap '<tds:GetSystemDateAndTime/>' "$WORK/alive.xml")" = 200 ]; }
env_open='<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body>'
env_close='</s:Body></s:Envelope>'

printf '%s<tds:GetScopes><unclosed>%s' "$env_open" "$env_close" > "$WORK/malformed.xml"
code=$(post_raw "$WORK/malformed.xml")
check "malformed XML → 400 env:Sender/ter:WellFormed" [ "$code/$(fault_subcodes "$R")" = "400/ter:WellFormed" ]
code=$(curl -sS --max-time 20 -o "$R" -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml' --data-binary @"$WORK/malformed.xml" "$URL")
check "…but without credentials it is refused (401) before the body is parsed" [ "$code" = 401 ]
check "the malformed-XML fault is a valid SOAP fault" valid "$R"

printf '%s<tds:GetSc' "$env_open" > "$WORK/truncated.xml"
code=$(post_raw "$WORK/truncated.xml")
check "truncated body (complete HTTP, cut XML) → 400 fault" [ "$code" = 400 ]

printf 'this is not xml at all' > "$WORK/text.xml"
code=$(post_raw "$WORK/text.xml")
check "non-XML body → 400" [ "$code" = 400 ]

printf '%s<x:GetScopes xmlns:x="urn:example:unknown"/>%s' "$env_open" "$env_close" > "$WORK/unknown-ns.xml"
code=$(post_raw "$WORK/unknown-ns.xml")
check "operation in an unknown namespace → 400 ter:UnknownAction" [ "$code/$(fault_subcodes "$R")" = "400/ter:UnknownAction" ]

printf '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><tds:GetScopes xmlns:tds="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>' > "$WORK/soap11.xml"
code=$(post_raw "$WORK/soap11.xml")
check "SOAP 1.1 envelope → VersionMismatch fault, not a crash" grep -q 'VersionMismatch' "$R"

{ printf '%s<tds:AddScopes><tds:ScopeItem>onvif://www.onvif.org/name/' "$env_open"; printf '\xff\xfe\xc3'; printf '</tds:ScopeItem></tds:AddScopes>%s' "$env_close"; } > "$WORK/badutf8.xml"
code=$(post_raw "$WORK/badutf8.xml")
check "invalid UTF-8 → 400, nothing stored" [ "$code" = 400 ]
check "invalid UTF-8 did not reach the scopes" bash -c "! \"$ONVIF_CLIENT\" scopes \"$URL\" | grep -q 'name/.*[^[:print:]]'"

{ printf '%s<tds:GetScopes>' "$env_open"; for _ in $(seq 1 5000); do printf '<a>'; done; for _ in $(seq 1 5000); do printf '</a>'; done; printf '</tds:GetScopes>%s' "$env_close"; } > "$WORK/deep.xml"
code=$(post_raw "$WORK/deep.xml")
check "5000-deep nesting → 400 fault" [ "$code" = 400 ]

{ printf '%s<tds:SetScopes>' "$env_open"; for i in $(seq 1 20000); do printf '<tds:Scopes>onvif://x/%d</tds:Scopes>' "$i"; done; printf '</tds:SetScopes>%s' "$env_close"; } > "$WORK/wide.xml"
code=$(post_raw "$WORK/wide.xml")
check "20000-item array → 4xx/5xx fault, nothing applied" [ "$code" -ge 400 ]
check "scopes unchanged after the oversized array" bash -c "[ \$(\"$ONVIF_CLIENT\" scopes \"$URL\" | wc -l) -lt 10 ]"

head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'a' > "$WORK/10mb.bin"
code=$(post_raw "$WORK/10mb.bin")
check "10 MB body → 413 before it is read" [ "$code" = 413 ]

code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data 'x' "$URL")
check "wrong media type → 415" [ "$code" = 415 ]
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/")
check "GET of an unknown resource → 404" [ "$code" = 404 ]
code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$URL")
check "DELETE → 405" [ "$code" = 405 ]
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml' --data 'x' "http://127.0.0.1:$HTTP_PORT/not/a/service")
check "POST to an unknown path → 404" [ "$code" = 404 ]
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' 'b')" -X POST -H 'Content-Type: application/soap+xml' --data 'x' "$URL")
check "20 KB header block → 431" [ "$code" = 431 ]

printf '%s<tds:GetScopes/>%s' "$env_open" "$env_close" > "$WORK/getscopes.xml"
code=$(post_raw "$WORK/getscopes.xml" -H 'Transfer-Encoding: chunked')
check "chunked request body is accepted" [ "$code" = 200 ]
code=$(post_raw "$WORK/getscopes.xml" -H 'Expect: 100-continue')
check "Expect: 100-continue is honoured" [ "$code" = 200 ]

# Raw socket cases (bash /dev/tcp)
raw() { # raw "bytes" seconds → prints what the server sent
    local data=$1 secs=$2
    exec {fd}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
    printf "%b" "$data" >&"$fd" 2>/dev/null || true  # the server may close early
    timeout "$secs" cat <&"$fd" || true
    exec {fd}>&-
}
printf '%s<tds:GetSystemDateAndTime/>%s' "$env_open" "$env_close" > "$WORK/gettime.xml"
len=$(wc -c < "$WORK/gettime.xml")
req="POST /onvif/device_service HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\nContent-Length: $len\r\n\r\n$(cat "$WORK/gettime.xml")"
out=$(raw "$req$req" 2)
check "two pipelined requests get two responses" [ "$(printf '%s' "$out" | grep -c '^HTTP/1.1 200')" = 2 ]
out=$(raw "POST /onvif/device_service HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n\r\n<x/>" 2)
check "POST without Content-Length → 411" grep -q '411' <<< "$out"
out=$(raw "GARBAGE\r\n\r\n" 2)
check "garbage request line → 400" grep -q '^HTTP/1.1 400' <<< "$out"
out=$(raw "POST /onvif/device_service HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" 2)
check "Content-Length with chunked (smuggling shape) → 400" grep -q '^HTTP/1.1 400' <<< "$out"

# A slow client holds no worker: others are served while it is still connected
# (its 408 has not come yet), and it gets 408 at the receive deadline.
exec {slow}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
printf 'POST /onvif/device_service HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n' >&"$slow"
timeout 30 cat <&"$slow" > "$WORK/slow.out" &
slow_reader=$!
okcount=0; for _ in $(seq 1 20); do alive && okcount=$((okcount + 1)); done
check "20 requests served while a slow client holds a half-sent request" [ "$okcount" = 20 ]
check "…and the slow client was still waiting meanwhile" kill -0 "$slow_reader"
wait "$slow_reader" || true; exec {slow}>&-
check "the slow client gets 408 at the receive deadline" grep -q '^HTTP/1.1 408' "$WORK/slow.out"

# Idle keep-alive connections do not block anyone; the per-address cap answers 503.
fds=()
for _ in $(seq 1 59); do exec {f}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"; fds+=("$f"); done
sleep 0.3
check "59 idle connections open, a request is still served" alive
exec {f}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"; fds+=("$f")
sleep 0.3
exec {extra}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
over=$(timeout 3 cat <&"$extra" || true); exec {extra}>&-
check "61st connection from one address (cap 60) → 503" grep -q '^HTTP/1.1 503' <<< "$over"
for f in "${fds[@]}"; do exec {f}>&-; done
sleep 0.3

# Clients vanishing mid-request
for _ in $(seq 1 20); do
    exec {v}<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
    printf 'POST /onvif/device_service HTTP/1.1\r\nContent-Type: application/soap+xml\r\nContent-Length: 1000\r\n\r\n<s:Env' >&"$v"
    exec {v}>&-
done
check "daemon alive after clients vanished mid-request" alive

stop_daemon TERM
check "clean exit after the abuse (0 = no crash, no valgrind error)" [ "$DAEMON_RC" = 0 ]
finish
