#!/usr/bin/env bash
# Device service core, driven by curl (raw SOAP, responses validated against
# the ONVIF XSDs) and by the gSOAP-generated onvif_client.
. "$(dirname "$0")/lib.sh"

cat > "$WORK/opennvtd.xml" <<'XML'
<opennvt>
  <device>
    <manufacturer>Example Cameras</manufacturer>
    <model>EX-100</model>
    <serial>SN-0042</serial>
    <hardware-id>hw-7</hardware-id>
    <name>Lobby Cam</name>
  </device>
</opennvt>
XML
start_daemon --config "$WORK/opennvtd.xml"
R=$WORK/r.xml

code=$(soap '<tds:GetSystemDateAndTime/>' "$R")
check "GetSystemDateAndTime answers 200 without credentials" [ "$code" = 200 ]
check "GetSystemDateAndTime response is schema-valid" valid "$R"
y=$(xpath "$R" 'string(//*[local-name()="UTCDateTime"]/*[local-name()="Date"]/*[local-name()="Year"])')
h=$(xpath "$R" 'string(//*[local-name()="UTCDateTime"]/*[local-name()="Time"]/*[local-name()="Hour"])')
mi=$(xpath "$R" 'string(//*[local-name()="UTCDateTime"]/*[local-name()="Time"]/*[local-name()="Minute"])')
dev_min=$(( 10#$h * 60 + 10#$mi )); now_min=$(( 10#$(date -u +%H) * 60 + 10#$(date -u +%M) ))
diff=$(( (dev_min - now_min + 1440) % 1440 ))
check "device UTC time is the real UTC time" [ "$y" = "$(date -u +%Y)" -a \( "$diff" -le 1 -o "$diff" -ge 1439 \) ]

code=$(soap '<tds:GetDeviceInformation/>' "$R")
check "GetDeviceInformation 200 and valid" [ "$code" = 200 ]
check "GetDeviceInformation response is schema-valid" valid "$R"
check "manufacturer/model/serial/hardware from the config file" \
    [ "$(xpath "$R" 'string(//*[local-name()="Manufacturer"])')/$(xpath "$R" 'string(//*[local-name()="Model"])')/$(xpath "$R" 'string(//*[local-name()="SerialNumber"])')/$(xpath "$R" 'string(//*[local-name()="HardwareId"])')" = "Example Cameras/EX-100/SN-0042/hw-7" ]
check "firmware version is the build's version" [ "$(xpath "$R" 'string(//*[local-name()="FirmwareVersion"])')" = "$("$OPENNVTD" --version | awk '{print $2}')" ]

for inc in true false; do
    code=$(soap "<tds:GetServices><tds:IncludeCapability>$inc</tds:IncludeCapability></tds:GetServices>" "$R")
    check "GetServices(IncludeCapability=$inc) 200 and schema-valid" [ "$code" = 200 ]
    check "GetServices(IncludeCapability=$inc) schema-valid" valid "$R"
    check "GetServices XAddr is the address and port the client used" \
        [ "$(xpath "$R" 'string(//*[local-name()="Service"][*[local-name()="Namespace"]="http://www.onvif.org/ver10/device/wsdl"]/*[local-name()="XAddr"])')" = "$URL" ]
    ncaps=$(xpath "$R" 'count(//*[local-name()="Service"]/*[local-name()="Capabilities"])')
    if [ "$inc" = true ]; then check "capabilities included when asked" [ "$ncaps" -ge 1 ]; else check "capabilities omitted when not asked" [ "$ncaps" = 0 ]; fi
done
svc_count() { xpath "$R" "count(//*[local-name()='Service'][*[local-name()='Namespace']='$1'])"; }
check "GetServices advertises exactly the implemented services (device, security, media, media2, events)" \
    [ "$(xpath "$R" 'count(//*[local-name()="Service"])')/$(svc_count http://www.onvif.org/ver10/advancedsecurity/wsdl)/$(svc_count http://www.onvif.org/ver10/media/wsdl)/$(svc_count http://www.onvif.org/ver20/media/wsdl)/$(svc_count http://www.onvif.org/ver10/events/wsdl)" = 5/1/1/1/1 ]

code=$(soap '<tds:GetServiceCapabilities/>' "$R")
check "GetServiceCapabilities schema-valid" valid "$R"
check "capabilities claim user handling, digest and TLS 1.2 (not 1.0/1.1)" \
    [ "$(xpath "$R" 'string(//*[local-name()="Security"]/@HttpDigest)')/$(xpath "$R" 'string(//*[local-name()="Security"]/@TLS1.2)')/$(xpath "$R" 'string(//*[local-name()="Security"]/@TLS1.1)')/$(xpath "$R" 'string(//*[local-name()="System"]/@UserConfigNotSupported)')" = "true/true/false/false" ]

code=$(soap '<tds:GetCapabilities/>' "$R")
check "GetCapabilities (all) 200 and schema-valid" [ "$code" = 200 ]
check "GetCapabilities schema-valid" valid "$R"
check "GetCapabilities lists Device, Media and Events, nothing it does not serve" \
    [ "$(xpath "$R" 'count(//*[local-name()="Capabilities"]/*[local-name()="PTZ" or local-name()="Imaging" or local-name()="Analytics"])')/$(xpath "$R" 'count(//*[local-name()="Capabilities"]/*[local-name()="Media" or local-name()="Events"])')" = 0/2 ]
code=$(soap '<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>' "$R")
check "GetCapabilities(Media) → the media service address" \
    [ "$code/$(xpath "$R" 'string(//*[local-name()="Media"]/*[local-name()="XAddr"])')" = "200/http://127.0.0.1:$HTTP_PORT/onvif/media_service" ]
code=$(soap '<tds:GetCapabilities><tds:Category>PTZ</tds:Category></tds:GetCapabilities>' "$R")
check "GetCapabilities(PTZ) → 500 ActionNotSupported/NoSuchService" \
    [ "$code/$(fault_subcodes "$R")" = "500/ter:ActionNotSupported ter:NoSuchService" ]
check "the fault is a well-formed SOAP 1.2 ONVIF fault" valid "$R"

soap '<tds:GetWsdlUrl/>' "$R" >/dev/null
check "GetWsdlUrl schema-valid" valid "$R"
soap '<tds:GetEndpointReference/>' "$R" >/dev/null
check "GetEndpointReference is the persisted device UUID" \
    [ "$(xpath "$R" 'string(//*[local-name()="GUID"])')" = "urn:uuid:$(cat "$STATE/device-uuid")" ]
check "GetEndpointReference schema-valid" valid "$R"
soap '<tds:GetHostname/>' "$R" >/dev/null
check "GetHostname is the host's name" [ "$(xpath "$R" 'string(//*[local-name()="Name"])')" = "$(hostname)" ]
check "GetHostname schema-valid" valid "$R"
soap '<tds:GetNetworkInterfaces/>' "$R" >/dev/null
check "GetNetworkInterfaces schema-valid" valid "$R"
first_if=$(xpath "$R" 'string(//*[local-name()="NetworkInterfaces"][1]/@token)')
check "GetNetworkInterfaces lists a real host interface ($first_if)" [ -n "$first_if" -a -e "/sys/class/net/$first_if" ]

# Scopes: fixed vs configurable, persisted
soap '<tds:GetScopes/>' "$R" >/dev/null
check "GetScopes schema-valid" valid "$R"
check "GetScopes has fixed type and hardware scopes" \
    [ "$(xpath "$R" 'count(//*[local-name()="Scopes"][*[local-name()="ScopeDef"]="Fixed"])')" = 2 ]
check "configured name became a configurable scope (percent-encoded)" \
    grep -q 'onvif://www.onvif.org/name/Lobby%20Cam' "$R"
code=$(soap '<tds:SetScopes><tds:Scopes>onvif://www.onvif.org/location/building/7</tds:Scopes><tds:Scopes>onvif://www.onvif.org/name/Door</tds:Scopes></tds:SetScopes>' "$R")
check "SetScopes 200" [ "$code" = 200 ]
code=$(soap '<tds:AddScopes><tds:ScopeItem>onvif://www.onvif.org/extra/one</tds:ScopeItem></tds:AddScopes>' "$R")
check "AddScopes 200" [ "$code" = 200 ]
code=$(soap '<tds:RemoveScopes><tds:ScopeItem>onvif://www.onvif.org/type/Network_Video_Transmitter</tds:ScopeItem></tds:RemoveScopes>' "$R")
check "RemoveScopes of a fixed scope → 400 OperationProhibited/FixedScope" \
    [ "$code/$(fault_subcodes "$R")" = "400/ter:OperationProhibited ter:FixedScope" ]
code=$(soap '<tds:RemoveScopes><tds:ScopeItem>onvif://www.onvif.org/extra/one</tds:ScopeItem><tds:ScopeItem>onvif://www.onvif.org/never/there</tds:ScopeItem></tds:RemoveScopes>' "$R")
check "RemoveScopes with an absent scope → 400 InvalidArgVal/NoScope" \
    [ "$code/$(fault_subcodes "$R")" = "400/ter:InvalidArgVal ter:NoScope" ]
code=$(soap '<tds:AddScopes><tds:ScopeItem>not a uri</tds:ScopeItem></tds:AddScopes>' "$R")
check "AddScopes with an invalid URI → 400 InvalidArgVal" [ "$code/$(fault_subcodes "$R")" = "400/ter:InvalidArgVal" ]
many=""; for i in $(seq 1 40); do many="$many<tds:ScopeItem>onvif://www.onvif.org/x/$i</tds:ScopeItem>"; done
code=$(soap "<tds:AddScopes>$many</tds:AddScopes>" "$R")
check "AddScopes beyond the limit → 500 Action/TooManyScopes" [ "$code/$(fault_subcodes "$R")" = "500/ter:Action ter:TooManyScopes" ]
"$ONVIF_CLIENT" scopes "$URL" > "$WORK/scopes.txt"
check "failed scope changes changed nothing (all-or-nothing)" \
    [ "$(grep -c configurable "$WORK/scopes.txt")" = 3 ]
check "gSOAP client sees the new scopes" grep -q 'configurable onvif://www.onvif.org/location/building/7' "$WORK/scopes.txt"

code=$(soap '<tds:SetDiscoveryMode><tds:DiscoveryMode>NonDiscoverable</tds:DiscoveryMode></tds:SetDiscoveryMode>' "$R")
check "SetDiscoveryMode 200" [ "$code" = 200 ]
soap '<tds:GetDiscoveryMode/>' "$R" >/dev/null
check "GetDiscoveryMode reflects it and is schema-valid" [ "$(xpath "$R" 'string(//*[local-name()="DiscoveryMode"])')" = NonDiscoverable ]
check "GetDiscoveryMode schema-valid" valid "$R"

# Not implemented yet: the ONVIF fault, never a fake success
code=$(soap '<tds:GetSystemSupportInformation/>' "$R")
check "unimplemented GetSystemSupportInformation → 500 Receiver/ActionNotSupported" \
    [ "$code/$(fault_subcodes "$R")" = "500/ter:ActionNotSupported" ]
check "ActionNotSupported fault is valid" valid "$R"
code=$(soap '<trt:GetAudioSources/>' "$R")
check "Media operation the device does not implement (audio) → ActionNotSupported" [ "$code/$(fault_subcodes "$R")" = "500/ter:ActionNotSupported" ]

# The gSOAP client
check "gSOAP client: device operations succeed" "$ONVIF_CLIENT" device "$URL" > "$WORK/client.txt"
check "gSOAP client: serial" grep -qx 'info.serial=SN-0042' "$WORK/client.txt"
check "gSOAP client: GetCapabilities XAddr" grep -qx "capabilities.device.xaddr=$URL" "$WORK/client.txt"

# Persistence across a restart (same state directory)
uuid=$(cat "$STATE/device-uuid")
stop_daemon TERM
check "SIGTERM stops cleanly with exit 0" [ "$DAEMON_RC" = 0 ]
check "state directory is 0700" [ "$(stat -c %a "$STATE")" = 700 ]
start_daemon --config "$WORK/opennvtd.xml"
check "device UUID persisted" [ "$(cat "$STATE/device-uuid")" = "$uuid" ]
"$ONVIF_CLIENT" scopes "$URL" > "$WORK/scopes2.txt"
check "scopes persisted across restart" cmp -s "$WORK/scopes.txt" "$WORK/scopes2.txt"
"$ONVIF_CLIENT" discovery-mode "$URL" > "$WORK/mode.txt"
check "discovery mode persisted" grep -qx 'discovery-mode=NonDiscoverable' "$WORK/mode.txt"

# SystemReboot: answers first, then the services restart in-process on the same port
"$ONVIF_CLIENT" reboot "$URL" > "$WORK/reboot.txt"
check "SystemReboot answers with a message" grep -q '^message=' "$WORK/reboot.txt"
ok=1; for _ in $(seq 1 50); do sleep 0.1; if "$ONVIF_CLIENT" scopes "$URL" >/dev/null 2>&1 && grep -q 'restarting services' "$WORK/daemon.log"; then ok=0; break; fi; done
check "services are back after SystemReboot" [ "$ok" = 0 ]
check "daemon process survived the reboot (in-process restart)" kill -0 "$DAEMON_PID"
finish
