#!/usr/bin/env bash
# Network protocols and safe apply: GetNetworkProtocols/SetNetworkProtocols
# (validation, live port changes, HTTPS only), the confirmation window with a
# simulated administrator who never confirms (rollback) and one who does,
# certificate expiry warnings and the expired-certificate fallback, and
# handshake floods from one address while another address is served.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/keystore_lib.sh"
O=$WORK/pki
mkdir -p "$O"
WINDOW=4
cat > "$WORK/config.xml" <<EOF
<opennvt>
  <security><confirm-window-s>$WINDOW</confirm-window-s><cert-expiry-warning-days>30</cert-expiry-warning-days></security>
  <soap><tls-handshake-timeout-ms>3000</tls-handshake-timeout-ms><max-tls-handshakes-per-ip>4</max-tls-handshakes-per-ip></soap>
</opennvt>
EOF
start_daemon --config "$WORK/config.xml"
sec_url
DEVCA=$O/device-ca.pem
curl -sS --max-time 10 -o "$DEVCA" "http://127.0.0.1:$HTTP_PORT/certs/device-ca.pem"
export CURL_CA_BUNDLE=$DEVCA

# free_port: a TCP port nothing listens on now
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    return 1
}
proto_xml() { # proto_xml NAME ENABLED [PORT]
    printf '<tds:NetworkProtocols><tt:Name>%s</tt:Name><tt:Enabled>%s</tt:Enabled>%s</tds:NetworkProtocols>' "$1" "$2" "${3:+<tt:Port>$3</tt:Port>}"
}
proto() { # proto NAME FIELD: from the last GetNetworkProtocols in $R
    xpath "$R" "string(//*[local-name()='NetworkProtocols'][*[local-name()='Name']='$1']/*[local-name()='$2'])"
}
reachable() { # reachable URL: an unauthenticated GetSystemDateAndTime answers 200 (never confirms anything)
    [ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml' \
        --data-binary '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetSystemDateAndTime/></s:Body></s:Envelope>' \
        "$1" 2>/dev/null || true)" = 200 ]
}
ports_line() { sed -n "s/^$1=//p" "$WORK/ports"; }

# ---- GetNetworkProtocols ----
code=$(dsoap '<tds:GetNetworkProtocols/>')
expect "$code" 200 "GetNetworkProtocols → 200"
check "HTTP on, port $HTTP_PORT; HTTPS on, port $HTTPS_PORT" \
    [ "$(proto HTTP Enabled)/$(proto HTTP Port)/$(proto HTTPS Enabled)/$(proto HTTPS Port)" = "true/$HTTP_PORT/true/$HTTPS_PORT" ]

# ---- validation: nothing changes on a refusal ----
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP true 22)</tds:SetNetworkProtocols>")
expect "$code" "400/ter:InvalidArgVal ter:PortAlreadyInUse" "a reserved port (22) → ter:PortAlreadyInUse"
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP true "$HTTPS_PORT")</tds:SetNetworkProtocols>")
expect "$code" "400/ter:InvalidArgVal ter:PortAlreadyInUse" "HTTP on the HTTPS port → ter:PortAlreadyInUse"
SQUAT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/squat.key" -out "$WORK/squat.pem" -subj /CN=squat -days 1 2>/dev/null
openssl s_server -accept "127.0.0.1:$SQUAT" -cert "$WORK/squat.pem" -key "$WORK/squat.key" -quiet -naccept 1000 > /dev/null 2>&1 &
SQ_PID=$!
timeout 5 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/$SQUAT) 2>/dev/null; do sleep 0.1; done" || true
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP true "$SQUAT")</tds:SetNetworkProtocols>")
expect "$code" "400/ter:InvalidArgVal ter:PortAlreadyInUse" "a port another program listens on ($SQUAT) → ter:PortAlreadyInUse"
kill "$SQ_PID" 2>/dev/null || true
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP true 70000)</tds:SetNetworkProtocols>")
check "port 70000 → InvalidArgVal ($code $(fault_subcodes "$R"))" [ "$code" = 400 ] && grep -q 'InvalidArgVal' "$R"
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP false)$(proto_xml HTTPS false)</tds:SetNetworkProtocols>")
check "HTTP and HTTPS both off → InvalidArgVal ($code)" [ "$code" = 400 ] && grep -q 'InvalidArgVal' "$R"
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml RTSP true "$(free_port)")</tds:SetNetworkProtocols>")
expect "$code" "400/ter:InvalidArgVal ter:ServiceNotSupported" "moving RTSP (set in the configuration) → ter:ServiceNotSupported"
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml RTSP true "$RTSP_PORT")</tds:SetNetworkProtocols>")
expect "$code" 200 "restating RTSP as it is → 200"
code=$(dsoap '<tds:GetNetworkProtocols/>')
check "after the refusals nothing changed" \
    [ "$(proto HTTP Enabled)/$(proto HTTP Port)/$(proto HTTPS Enabled)/$(proto HTTPS Port)" = "true/$HTTP_PORT/true/$HTTPS_PORT" ]
check "RTSP is listed on, port $RTSP_PORT" [ "$(proto RTSP Enabled)/$(proto RTSP Port)" = "true/$RTSP_PORT" ]

# ---- a live port change, confirmed ----
NEW_HTTP=$(free_port)
OLD_HTTP=$HTTP_PORT
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP true "$NEW_HTTP")</tds:SetNetworkProtocols>")
expect "$code" 200 "SetNetworkProtocols HTTP → port $NEW_HTTP (response on the old port)"
for _ in $(seq 30); do [ "$(ports_line http)" = "$NEW_HTTP" ] && break; sleep 0.1; done
check "ports file says http=$NEW_HTTP" [ "$(ports_line http)" = "$NEW_HTTP" ]
check "the old port is closed" not reachable "http://127.0.0.1:$OLD_HTTP/onvif/device_service"
check "the new port serves" reachable "http://127.0.0.1:$NEW_HTTP/onvif/device_service"
URL="http://127.0.0.1:$NEW_HTTP/onvif/device_service"
code=$(dsoap '<tds:GetNetworkProtocols/>')
check "an administrator request over the new port (confirms) sees port $NEW_HTTP ($code)" [ "$code/$(proto HTTP Port)" = "200/$NEW_HTTP" ]
check "  ... confirmation logged" grep -q 'network settings change confirmed' "$WORK/daemon.log"
sleep $((WINDOW + 2))
check "after the window the confirmed port stays" reachable "http://127.0.0.1:$NEW_HTTP/onvif/device_service"
HTTP_PORT=$NEW_HTTP

# ---- HTTPS only, never confirmed: rolled back ----
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP false)</tds:SetNetworkProtocols>")
expect "$code" 200 "SetNetworkProtocols HTTP off (HTTPS only) → 200"
for _ in $(seq 30); do [ -z "$(ports_line http)" ] && break; sleep 0.1; done
check "ports file has no http= line" [ -z "$(ports_line http)" ]
check "HTTP is closed" not reachable "$URL"
check "HTTPS still serves" reachable "https://127.0.0.1:$HTTPS_PORT/onvif/device_service"
# nobody confirms (only anonymous requests above); wait out the window
t0=$(date +%s)
for _ in $(seq $(( (WINDOW + 6) * 10 ))); do [ -n "$(ports_line http)" ] && break; sleep 0.1; done
t1=$(date +%s)
RB_HTTP=$(ports_line http)
check "unconfirmed, HTTP comes back after the window (http=$RB_HTTP after $((t1 - t0)) s)" [ -n "$RB_HTTP" ] && [ $((t1 - t0)) -le $((WINDOW + 5)) ]
check "  ... on the confirmed port" [ "$RB_HTTP" = "$NEW_HTTP" ]
check "  ... and serves" reachable "http://127.0.0.1:$RB_HTTP/onvif/device_service"
check "  ... the log says why" grep -q 'rolled back' "$WORK/daemon.log"
code=$(dsoap '<tds:GetNetworkProtocols/>')
check "GetNetworkProtocols: HTTP on again" [ "$code/$(proto HTTP Enabled)" = 200/true ]

# ---- HTTPS only, confirmed over HTTPS ----
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP false)</tds:SetNetworkProtocols>")
expect "$code" 200 "SetNetworkProtocols HTTP off again → 200"
sleep 0.5
code=$(URL="https://127.0.0.1:$HTTPS_PORT/onvif/device_service" soap '<tds:GetDeviceInformation/>')
check "the administrator confirms over HTTPS ($code)" [ "$code" = 200 ]
sleep $((WINDOW + 2))
check "confirmed: HTTP stays off" not reachable "$URL"
check "  ... ports file: https only" [ -z "$(ports_line http)" ] && [ -n "$(ports_line https)" ]
"$ONVIF_CLIENT" probe "soap.udp://127.0.0.1:$DISC_PORT" > "$WORK/probe.txt" 2>&1 || true
check "WS-Discovery now advertises the HTTPS XAddr" grep -q "^match.xaddrs=https://[^ ]*:$HTTPS_PORT/onvif/device_service" "$WORK/probe.txt"

# ---- restart keeps HTTPS only ----
stop_daemon
rm -f "$WORK/ports"
"$OPENNVTD" --foreground --state-dir "$STATE" --bind 127.0.0.1 --https-port "$HTTPS_PORT" --discovery-port 0 \
    --ports-file "$WORK/ports" --config "$WORK/config.xml" >> "$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do [ -s "$WORK/ports" ] && break; sleep 0.1; done
check "restarted without --http-port: the stored HTTPS-only setting holds" [ -z "$(ports_line http)" ] && [ "$(ports_line https)" = "$HTTPS_PORT" ]
URL="https://127.0.0.1:$HTTPS_PORT/onvif/device_service"
code=$(dsoap "<tds:SetNetworkProtocols>$(proto_xml HTTP true "$NEW_HTTP")</tds:SetNetworkProtocols>")
expect "$code" 200 "HTTP back on over HTTPS → 200"
for _ in $(seq 30); do [ -n "$(ports_line http)" ] && break; sleep 0.1; done
check "  ... http=$NEW_HTTP" [ "$(ports_line http)" = "$NEW_HTTP" ]
code=$(URL="http://127.0.0.1:$NEW_HTTP/onvif/device_service" soap '<tds:GetDeviceInformation/>')
check "  ... confirmed over HTTP ($code)" [ "$code" = 200 ]
HTTP_PORT=$NEW_HTTP
URL="http://127.0.0.1:$HTTP_PORT/onvif/device_service"
sec_url

# ---- a server certificate that expires soon, and one that has expired ----
ca_make "$O/srvca" "Test Server CA"
mkdir -p "$O/srvca/db"; : > "$O/srvca/db/index.txt"; echo 01 > "$O/srvca/db/serial"
cat > "$O/srvca/ca.cnf" <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $O/srvca/db/index.txt
serial = $O/srvca/db/serial
new_certs_dir = $O/srvca/db
certificate = $O/srvca/ca.pem
private_key = $O/srvca/ca.key
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
CNF
P12_PW='P12-Export-Pass-8'
identity() { # identity NAME CN CA-ARGS...: key + leaf from openssl ca, uploaded as PKCS#12; prints the path ID
    local n=$1 cn=$2; shift 2
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$O/$n.key" 2>/dev/null
    openssl req -new -key "$O/$n.key" -subj "/CN=$cn" -out "$O/$n.csr" 2>/dev/null
    openssl ca -config "$O/srvca/ca.cnf" -batch -notext -in "$O/$n.csr" -out "$O/$n.pem" "$@" 2>/dev/null
    openssl pkcs12 -export -inkey "$O/$n.key" -in "$O/$n.pem" -certfile "$O/srvca/ca.pem" -passout "pass:$P12_PW" \
        -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -out "$O/$n.p12" 2>/dev/null
    sec "<tas:UploadCertificateWithPrivateKeyInPKCS12><tas:CertWithPrivateKey>$(b64 "$O/$n.p12")</tas:CertWithPrivateKey><tas:CertificationPathAlias>$n</tas:CertificationPathAlias><tas:Passphrase>$P12_PW</tas:Passphrase></tas:UploadCertificateWithPrivateKeyInPKCS12>" "$WORK/p12.xml" >/dev/null
    val CertificationPathID "$WORK/p12.xml"
}
PATH_SOON=$(identity soon expiring-soon.test -days 5)
PATH_OLD=$(identity old expired.test -startdate 20200101000000Z -enddate 20200201000000Z)
check "two identities uploaded ($PATH_SOON, $PATH_OLD)" [ -n "$PATH_SOON" ] && [ -n "$PATH_OLD" ]
code=$(sec "<tas:AddServerCertificateAssignment><tas:CertificationPathID>$PATH_SOON</tas:CertificationPathID></tas:AddServerCertificateAssignment>")
expect "$code" 200 "assign the certificate that expires in 5 days"
cat "$O/srvca/ca.pem" "$DEVCA" > "$O/both.pem"
HTTPS_URL="https://127.0.0.1:$HTTPS_PORT/onvif/device_service"
code=$(soap '<tds:GetDeviceInformation/>')
check "  ... an administrator request over plain HTTP does not confirm a TLS change" not grep -q 'confirmed by' <(tail -n 3 "$WORK/daemon.log")
code=$(URL=$HTTPS_URL CURL_CA_BUNDLE=$O/both.pem soap '<tds:GetDeviceInformation/>')   # confirms
check "  ... one over HTTPS does ($code)" [ "$code" = 200 ]
sclient_leaf() { timeout 15 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" < /dev/null 2>/dev/null | openssl x509 -noout -subject -nameopt RFC2253 2>/dev/null | sed 's/^subject= *//'; }
check "  ... it is served" [ "$(sclient_leaf)" = "CN=expiring-soon.test" ]
for _ in $(seq 80); do grep -q "expires in" "$WORK/daemon.log" && break; sleep 0.1; done
check "  ... a warning that it expires soon is logged" grep -q "$PATH_SOON.*expires in\|expires in.*$PATH_SOON" "$WORK/daemon.log"
code=$(sec "<tas:ReplaceServerCertificateAssignment><tas:OldCertificationPathID>$PATH_SOON</tas:OldCertificationPathID><tas:NewCertificationPathID>$PATH_OLD</tas:NewCertificationPathID></tas:ReplaceServerCertificateAssignment>")
expect "$code" 200 "replace it by an expired certificate → 200"
code=$(URL=$HTTPS_URL CURL_CA_BUNDLE=$O/both.pem soap '<tds:GetDeviceInformation/>')   # confirms
check "  ... HTTPS goes on with the device CA certificate, not the expired one" [ "$(sclient_leaf)" != "CN=expired.test" ]
check "  ... which verifies against the device CA" \
    bash -c "timeout 15 openssl s_client -connect 127.0.0.1:$HTTPS_PORT -CAfile '$DEVCA' -verify_return_error < /dev/null > /dev/null 2>&1"
for _ in $(seq 80); do grep -q "$PATH_OLD expired" "$WORK/daemon.log" && break; sleep 0.1; done
check "  ... and the log says why" grep -q "$PATH_OLD expired [0-9]* day(s) ago; the device CA certificate is served instead" "$WORK/daemon.log"
check "HTTPS is still listed and serving, and HTTP is as configured (on)" \
    [ "$(ports_line https)" = "$HTTPS_PORT" ] && [ "$(ports_line http)" = "$HTTP_PORT" ] && \
    reachable "https://127.0.0.1:$HTTPS_PORT/onvif/device_service"

# ---- handshake floods from one address; another address is served ----
exec 5<>"/dev/tcp/127.0.0.1/$HTTPS_PORT" 6<>"/dev/tcp/127.0.0.1/$HTTPS_PORT" 7<>"/dev/tcp/127.0.0.1/$HTTPS_PORT" 8<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
exec 9<>"/dev/tcp/127.0.0.1/$HTTPS_PORT"
closed_within() { local rc=0; timeout "$1" cat <&"$2" > /dev/null 2>&1 || rc=$?; [ "$rc" != 124 ]; }
check "a fifth stalled handshake from one address is closed at once" closed_within 2 9
code=$(curl -sS --max-time 10 --interface 127.0.0.2 -k --digest -u "$ADMIN_USER:$ADMIN_PASS" -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/soap+xml' --data-binary '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetDeviceInformation/></s:Body></s:Envelope>' \
    "https://127.0.0.1:$HTTPS_PORT/onvif/device_service" 2>/dev/null || true)
check "meanwhile a client from 127.0.0.2 is served over HTTPS ($code)" [ "$code" = 200 ]
check "the stalled handshakes are closed by the handshake timeout" closed_within 6 5
exec 5<&- 6<&- 7<&- 8<&- 9<&-
all_responses_valid
stop_daemon
check "daemon exits 0 ($DAEMON_RC)" [ "$DAEMON_RC" = 0 ]
finish
