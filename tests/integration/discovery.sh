#!/usr/bin/env bash
# WS-Discovery with real UDP datagrams on loopback (gSOAP client), including
# type/scope matching, Resolve, NonDiscoverable mode and metadata changes.
. "$(dirname "$0")/lib.sh"
start_daemon
EP="soap.udp://127.0.0.1:$DISC_PORT"
UUID=$(cat "$STATE/device-uuid")
P=$WORK/probe.txt

check "Probe without types or scopes is answered" "$ONVIF_CLIENT" probe "$EP" > "$P"
check "ProbeMatch carries our endpoint reference" grep -qx "match.epr=urn:uuid:$UUID" "$P"
check "ProbeMatch types are NVT and Device" grep -qx 'match.types=tdn:NetworkVideoTransmitter tds:Device' "$P"
check "ProbeMatch XAddrs point at our SOAP port" grep -qx "match.xaddrs=http://127.0.0.1:$HTTP_PORT/onvif/device_service" "$P"
check "ProbeMatch scopes include the fixed type scope" grep -q 'match.scopes=.*onvif://www.onvif.org/type/Network_Video_Transmitter' "$P"
check "Probe for tdn:NetworkVideoTransmitter matches" "$ONVIF_CLIENT" probe "$EP" "tdn:NetworkVideoTransmitter" > /dev/null
check "Probe for tds:Device matches" "$ONVIF_CLIENT" probe "$EP" "tds:Device" > /dev/null
rc=0; "$ONVIF_CLIENT" probe "$EP" "tds:Printer" > "$P" || rc=$?
check "Probe for another type gets no answer" [ "$rc" = 3 ]
check "Probe with a matching scope prefix (RFC 3986)" "$ONVIF_CLIENT" probe "$EP" "" "onvif://www.onvif.org/type" > /dev/null
rc=0; "$ONVIF_CLIENT" probe "$EP" "" "onvif://www.onvif.org/typ" > /dev/null || rc=$?
check "a partial path segment does not match" [ "$rc" = 3 ]
rc=0; "$ONVIF_CLIENT" probe "$EP" "" "onvif://www.onvif.org/type/Network_Video_Transmitter" "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0" > /dev/null || rc=$?
check "strcmp0 MatchBy matches an exact scope" [ "$rc" = 0 ]
rc=0; "$ONVIF_CLIENT" probe "$EP" "" "onvif://www.onvif.org/type" "urn:example:unknown-rule" > /dev/null || rc=$?
check "an unknown MatchBy rule gets no match" [ "$rc" = 3 ]
check "Resolve of our EPR answers with XAddrs" "$ONVIF_CLIENT" resolve "$EP" "urn:uuid:$UUID" > "$P"
check "ResolveMatch XAddrs" grep -qx "resolve.xaddrs=http://127.0.0.1:$HTTP_PORT/onvif/device_service" "$P"
rc=0; "$ONVIF_CLIENT" resolve "$EP" "urn:uuid:00000000-0000-4000-8000-000000000000" > /dev/null || rc=$?
check "Resolve of another EPR is ignored" [ "$rc" = 3 ]

# Scope change: new metadata version and the new scope in matches
"$ONVIF_CLIENT" probe "$EP" > "$P"
v1=$(sed -n 's/^match.metadata=//p' "$P")
"$ONVIF_CLIENT" add-scopes "$URL" "onvif://www.onvif.org/location/roof" > /dev/null
"$ONVIF_CLIENT" probe "$EP" "" "onvif://www.onvif.org/location/roof" > "$P"
v2=$(sed -n 's/^match.metadata=//p' "$P")
check "a scope change is visible to probes with a higher MetadataVersion" [ -n "$v2" ] && [ "$v2" -gt "$v1" ]

# NonDiscoverable: silence; back to Discoverable: answers again
"$ONVIF_CLIENT" set-discovery-mode "$URL" NonDiscoverable > /dev/null
rc=0; "$ONVIF_CLIENT" probe "$EP" > /dev/null || rc=$?
check "NonDiscoverable: probes get no answer" [ "$rc" = 3 ]
rc=0; "$ONVIF_CLIENT" resolve "$EP" "urn:uuid:$UUID" > /dev/null || rc=$?
check "NonDiscoverable: resolves get no answer" [ "$rc" = 3 ]
"$ONVIF_CLIENT" set-discovery-mode "$URL" Discoverable > /dev/null
check "Discoverable again: probes are answered" "$ONVIF_CLIENT" probe "$EP" > /dev/null

# Garbage datagrams do not stop the responder
head -c 3000 /dev/urandom > "$WORK/junk.bin"
if command -v bash >/dev/null; then
    exec 3<>"/dev/udp/127.0.0.1/$DISC_PORT"; cat "$WORK/junk.bin" >&3; printf '<not-soap/>' >&3; exec 3>&-
fi
check "responder survives junk datagrams" "$ONVIF_CLIENT" probe "$EP" > /dev/null
# Regression: a datagram that ends inside an element made gSOAP read the next
# datagram (another client's probe) as the rest of the same message.
for i in 1 2 3; do
    exec 3<>"/dev/udp/127.0.0.1/$DISC_PORT"; printf '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><a' >&3; exec 3>&-
    rc=0; "$ONVIF_CLIENT" probe "$EP" > /dev/null || rc=$?
    check "a probe right after a truncated datagram is answered ($i)" [ "$rc" = 0 ]
done

stop_daemon TERM
check "clean stop" [ "$DAEMON_RC" = 0 ]
finish
