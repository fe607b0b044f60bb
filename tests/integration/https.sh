#!/usr/bin/env bash
# HTTPS: the same SOAP service over TLS with the built-in device CA's server
# certificate; TLS 1.2/1.3 only, ECDHE+AEAD for 1.2, session resumption;
# https XAddrs and PasswordText UsernameTokens over TLS; handshake garbage and
# stalled handshakes are closed within the handshake timeout while others are
# served.
. "$(dirname "$0")/lib.sh"
R=$WORK/resp.xml
not() { ! "$@"; }

WSSE_NS=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd
WSU_NS=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd
UT_PROFILE=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0
B64_ENC=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary

# A short handshake timeout (soap/tls-handshake-timeout-ms) keeps the stall check quick.
HS_TIMEOUT_MS=2000
cat > "$WORK/config.xml" <<EOF
<opennvt>
  <soap><tls-handshake-timeout-ms>$HS_TIMEOUT_MS</tls-handshake-timeout-ms></soap>
</opennvt>
EOF
start_daemon --config "$WORK/config.xml"
check "ports file names the HTTPS port" [ -n "$HTTPS_PORT" ] && [ "$HTTPS_PORT" -gt 0 ]
check "HTTP and HTTPS ports differ" [ "$HTTPS_PORT" != "$HTTP_PORT" ]

CA=$WORK/ca.pem
code=$(curl -sS --max-time 10 -o "$CA" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/certs/device-ca.pem" || true)
check "device CA fetched over HTTP ($code)" [ "$code" = 200 ] && grep -q 'BEGIN CERTIFICATE' "$CA"

# soap() from lib.sh talks to $URL; curl reads the trust anchor from CURL_CA_BUNDLE.
export CURL_CA_BUNDLE=$CA
URL="https://127.0.0.1:$HTTPS_PORT/onvif/device_service"

code=$(soap '<tds:GetDeviceInformation/>' "$R" || true)
check "GetDeviceInformation over HTTPS (Digest) → 200 ($code)" [ "$code" = 200 ]
check "GetDeviceInformation over HTTPS schema-valid" valid "$R"

code=$(curl -sS --max-time 10 --cacert "$CA" -o "$WORK/ca-tls.pem" -w '%{http_code}' "https://127.0.0.1:$HTTPS_PORT/certs/device-ca.pem" || true)
check "GET /certs/device-ca.pem over HTTPS → 200 ($code)" [ "$code" = 200 ] && cmp -s "$CA" "$WORK/ca-tls.pem"

code=$(soap '<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>' "$R" || true)
check "GetServices over HTTPS → 200 ($code)" [ "$code" = 200 ]
n_all=$(xpath "$R" 'count(//*[local-name()="XAddr"])')
n_https=$(xpath "$R" "count(//*[local-name()='XAddr'][starts-with(normalize-space(.), 'https://127.0.0.1:$HTTPS_PORT/')])")
check "every XAddr over HTTPS starts with https://127.0.0.1:$HTTPS_PORT ($n_https of $n_all)" [ "$n_all" -ge 1 ] && [ "$n_all" = "$n_https" ]

# ---- the TLS parameters, seen by openssl s_client ----
sclient() { timeout 15 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -CAfile "$CA" "$@" < /dev/null > "$WORK/sclient.out" 2>&1; }
check "s_client verifies the chain and 127.0.0.1 against the device CA" \
    sclient -verify_return_error -verify_ip 127.0.0.1
check "  ... Verify return code: 0 (ok)" grep -q 'Verify return code: 0 (ok)' "$WORK/sclient.out"
check "TLS 1.3 handshake succeeds" sclient -tls1_3 -verify_return_error
check "  ... negotiated TLSv1.3" grep -q 'TLSv1.3' "$WORK/sclient.out"
check "TLS 1.2 handshake succeeds" sclient -tls1_2 -verify_return_error
check "  ... with an ECDHE AEAD cipher" grep -Eq 'Cipher is ECDHE-[A-Z0-9]+-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)' "$WORK/sclient.out"
check "TLS 1.1 is refused" not sclient -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check "TLS 1.0 is refused" not sclient -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
check "TLS 1.2 with a non-AEAD cipher (AES128-SHA) is refused" not sclient -tls1_2 -cipher AES128-SHA
check "TLS 1.2 with static RSA AES-GCM (no ECDHE) is refused" not sclient -tls1_2 -cipher AES128-GCM-SHA256
rm -f "$WORK/sess.pem"
sclient -tls1_2 -sess_out "$WORK/sess.pem" || true
check "TLS 1.2 session is resumed" sclient -tls1_2 -sess_in "$WORK/sess.pem"
check "  ... Reused" grep -q '^Reused' "$WORK/sclient.out"
check "no TLS compression" grep -q 'Compression: NONE' "$WORK/sclient.out"

# ---- WS-UsernameToken with PasswordText: accepted over TLS ----
ut_text_header() {
    printf '<wsse:Security s:mustUnderstand="1"><wsse:UsernameToken><wsse:Username>%s</wsse:Username><wsse:Password Type="%s#PasswordText">%s</wsse:Password><wsse:Nonce EncodingType="%s">%s</wsse:Nonce><wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security>' \
        "$1" "$UT_PROFILE" "$2" "$B64_ENC" "$(openssl rand -base64 16)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
printf '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:wsse="%s" xmlns:wsu="%s"><s:Header>%s</s:Header><s:Body><tds:GetUsers/></s:Body></s:Envelope>' \
    "$WSSE_NS" "$WSU_NS" "$(ut_text_header "$ADMIN_USER" "$ADMIN_PASS")" > "$WORK/ut-text.xml"
code=$(curl -sS --max-time 20 -o "$R" -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml; charset=utf-8' \
    --data-binary @"$WORK/ut-text.xml" "$URL" || true)
check "PasswordText UsernameToken over HTTPS → 200 ($code)" [ "$code" = 200 ] && valid "$R"
code=$(curl -sS --max-time 20 -o "$R" -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml; charset=utf-8' \
    --data-binary @"$WORK/ut-text.xml" "http://127.0.0.1:$HTTP_PORT/onvif/device_service" || true)
check "the same token over plain HTTP is still refused ($code)" [ "$code" != 200 ]

# ---- hostile handshakes ----
# closed_within SECONDS FD: the peer closes (FIN or reset) within SECONDS
closed_within() { local rc=0; timeout "$1" cat <&"$2" > /dev/null 2>&1 || rc=$?; [ "$rc" != 124 ]; }
exec 4<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
# (written from a subshell: the daemon may close before the last byte, EPIPE)
( trap '' PIPE; printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02garbage' >&4 ) 2>/dev/null || true
check "garbage instead of a ClientHello is closed" closed_within 5 4
exec 4<&- 4>&-
exec 5<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
( trap '' PIPE; head -c 3000 /dev/urandom >&5 ) 2>/dev/null || true
check "random bytes to the HTTPS port are closed" closed_within 5 5
exec 5<&- 5>&-

# A client that connects and sends nothing, and one that stops mid-handshake.
t0=$(date +%s%N)
exec 6<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
exec 7<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
( trap '' PIPE; printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >&7 ) || true   # the start of a ClientHello, then silence
code=$(soap '<tds:GetDeviceInformation/>' "$R" || true)
t1=$(date +%s%N)
check "another client is served while two handshakes stall ($code)" [ "$code" = 200 ] && [ $(( (t1 - t0) / 1000000 )) -lt "$HS_TIMEOUT_MS" ]
check "silent client is closed within the handshake timeout" closed_within $(( HS_TIMEOUT_MS / 1000 + 3 )) 6
check "client stalled mid-handshake is closed within the timeout" closed_within 3 7
t2=$(date +%s%N)
ms=$(( (t2 - t0) / 1000000 ))
check "  ... after about the timeout (${ms} ms, timeout $HS_TIMEOUT_MS ms)" [ "$ms" -ge $(( HS_TIMEOUT_MS - 200 )) ] && [ "$ms" -lt $(( HS_TIMEOUT_MS + 3000 )) ]
exec 6<&- 6>&- 7<&- 7>&-
check "stalled handshake logged" grep -q 'TLS handshake timed out' "$WORK/daemon.log"
check "garbage handshake logged" grep -q 'TLS handshake failed' "$WORK/daemon.log"

code=$(soap '<tds:GetDeviceInformation/>' "$R" || true)
check "HTTPS still serves after the hostile clients ($code)" [ "$code" = 200 ]
code=$(URL="http://127.0.0.1:$HTTP_PORT/onvif/device_service" soap '<tds:GetDeviceInformation/>' "$R" || true)
check "HTTP still serves ($code)" [ "$code" = 200 ]

# Keep-alive over TLS: several requests on one connection.
code=$(curl -sS --max-time 20 --digest -u "$ADMIN_USER:$ADMIN_PASS" -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
    -X POST -H 'Content-Type: application/soap+xml' \
    --data-binary '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetSystemDateAndTime/></s:Body></s:Envelope>' \
    "$URL" "$URL" | tr '\n' ' ' || true)
check "two requests on one TLS connection ($code)" [ "$code" = "200 1 200 0 " ]

stop_daemon
check "daemon exits 0 ($DAEMON_RC)" [ "$DAEMON_RC" = 0 ]

# The per-address cap counts TLS connections too; over the cap a TLS
# connection is closed at once (no HTTP status exists before the handshake).
cat > "$WORK/cap.xml" <<EOF
<opennvt><soap><max-connections-per-ip>2</max-connections-per-ip><recv-timeout-ms>5000</recv-timeout-ms></soap></opennvt>
EOF
start_daemon --config "$WORK/cap.xml"
exec 6<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
exec 7<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
exec 8<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
check "a TLS connection over the per-address cap is closed at once" closed_within 2 8
exec 6<&- 6>&- 7<&- 7>&- 8<&- 8>&-
sleep 0.3
URL="https://127.0.0.1:$HTTPS_PORT/onvif/device_service"
code=$(soap '<tds:GetDeviceInformation/>' "$R" || true)
check "served again once the stalled connections are gone ($code)" [ "$code" = 200 ]
check "cap logged" grep -q 'too many connections, TLS connection closed' "$WORK/daemon.log"
stop_daemon

# HTTPS can be switched off.
cat > "$WORK/off.xml" <<EOF
<opennvt><network><https-enabled>false</https-enabled></network></opennvt>
EOF
start_daemon --config "$WORK/off.xml"
check "network/https-enabled=false: no https= line" [ -z "$HTTPS_PORT" ]
stop_daemon
finish
