#!/usr/bin/env bash
# Media service (trt, ver10) end to end: capabilities, the fixed profiles,
# video source and encoder configurations and their options, the NVR flow
# (CreateProfile, Add*, GetStreamUri, DeleteProfile) with persistence across
# a restart, faults for unknown tokens and refused values (nothing changed),
# stream and snapshot URIs judged by ffprobe and curl. Every response and
# fault is validated against the ONVIF schemas.
. "$(dirname "$0")/lib.sh"

command -v ffprobe >/dev/null || { log "ffprobe is missing (scripts/setup.sh installs it)"; exit 1; }

# A small, fast source keeps the test light: 640x360 at 15 frames/s.
cat > "$WORK/opennvtd.xml" <<'XML'
<opennvt>
  <media>
    <source-width>640</source-width>
    <source-height>360</source-height>
    <source-framerate>15</source-framerate>
    <encoder-linger-ms>500</encoder-linger-ms>
  </media>
</opennvt>
XML
start_daemon --config "$WORK/opennvtd.xml"
R=$WORK/r.xml

media_url() { printf '%s/onvif/media_service' "${URL%/onvif/device_service}"; }
# media BODY [OUT]: POSTs a SOAP 1.2 envelope (prefixes s, trt, tt) to the
# media service with HTTP Digest as the Administrator (SOAP_AUTH=none: no
# credentials); prints the HTTP status, the body goes to OUT ($R).
media() {
    local body=$1 out=${2:-$R} auth=(--digest -u "$ADMIN_USER:$ADMIN_PASS")
    [ "${SOAP_AUTH:-digest}" = none ] && auth=()
    curl -sS --max-time 20 -o "$out" -w '%{http_code}' -X POST "${auth[@]}" \
        -H 'Content-Type: application/soap+xml; charset=utf-8' \
        --data-binary "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\" xmlns:tt=\"http://www.onvif.org/ver10/schema\"><s:Body>$body</s:Body></s:Envelope>" \
        "$(media_url)" || true
}
# ok DESCRIPTION BODY: 200 and a schema-valid response (left in $R)
ok() {
    local code; code=$(media "$2")
    if [ "$code" = 200 ] && valid "$R"; then pass "$1"; else fail "$1 (HTTP $code: $(fault_subcodes "$R"))"; fi
}
# faults DESCRIPTION BODY STATUS/SUBCODES: that fault, schema-valid
faults() {
    local code got; code=$(media "$2"); got="$code/$(fault_subcodes "$R")"
    if [ "$got" = "$3" ] && valid "$R"; then pass "$1"; else fail "$1 (got $got, want $3)"; fi
}
# v XPATH: the string value in $R; n XPATH: a count in $R
v() { xpath "$R" "string($1)" || true; }
n() { xpath "$R" "count($1)" || true; }
E() { printf '*[local-name()="%s"]' "$1"; }   # an element step by local name

PROFILE="//$(E Profile)"
PROFILES="//$(E Profiles)"
CFG="//$(E Configuration)"

# ---- capabilities and discovery ----
code=$(SOAP_AUTH=none media '<trt:GetServiceCapabilities/>')
check "GetServiceCapabilities answers without credentials (PRE_AUTH)" [ "$code" = 200 ]
check "GetServiceCapabilities schema-valid" valid "$R"
CAPS="//$(E Capabilities)"
check "SnapshotUri true, Rotation/OSD/VideoSourceMode false" \
    [ "$(v "$CAPS/@SnapshotUri")/$(v "$CAPS/@Rotation")/$(v "$CAPS/@OSD")/$(v "$CAPS/@VideoSourceMode")" = true/false/false/false ]
check "MaximumNumberOfProfiles 24" [ "$(v "$CAPS/$(E ProfileCapabilities)/@MaximumNumberOfProfiles")" = 24 ]
SC="$CAPS/$(E StreamingCapabilities)"
check "streaming: RTPMulticast, RTP_TCP, RTP_RTSP_TCP true, NoRTSPStreaming false" \
    [ "$(v "$SC/@RTPMulticast")/$(v "$SC/@RTP_TCP")/$(v "$SC/@RTP_RTSP_TCP")/$(v "$SC/@NoRTSPStreaming")" = true/true/true/false ]

code=$(soap '<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>' "$R")
check "GetServices(IncludeCapability) 200" [ "$code" = 200 ]
check "GetServices with the media capabilities is schema-valid" valid "$R"
MSVC="//$(E Service)[$(E Namespace)='http://www.onvif.org/ver10/media/wsdl']"
check "GetServices lists the media service at the address used" [ "$(v "$MSVC/$(E XAddr)")" = "$(media_url)" ]
check "…with its capabilities" [ "$(v "$MSVC/$(E Capabilities)/$(E Capabilities)/@SnapshotUri")" = true ]
code=$(soap '<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>' "$R")
check "GetCapabilities(Media) 200" [ "$code" = 200 ]
check "GetCapabilities(Media) schema-valid" valid "$R"
check "GetCapabilities(Media) gives the media XAddr" [ "$(v "//$(E Media)/$(E XAddr)")" = "$(media_url)" ]
check "GetCapabilities(Media) claims RTP/RTSP/TCP" [ "$(v "//$(E Media)//$(E RTP_RTSP_TCP)")" = true ]

code=$(SOAP_AUTH=none media '<trt:GetProfiles/>')
check "GetProfiles without credentials → 401" [ "$code" = 401 ]

# ---- the fixed profiles ----
ok "GetProfiles schema-valid" '<trt:GetProfiles/>'
check "three profiles Profile_1..3" \
    [ "$(v "$PROFILES[1]/@token") $(v "$PROFILES[2]/@token") $(v "$PROFILES[3]/@token")/$(n "$PROFILES")" = "Profile_1 Profile_2 Profile_3/3" ]
check "all three are fixed" [ "$(n "$PROFILES[@fixed='true']")" = 3 ]
check "Profile_1: the video source configuration and H.264 VideoEncoder_1" \
    [ "$(v "$PROFILES[1]/$(E VideoSourceConfiguration)/@token")/$(v "$PROFILES[1]/$(E VideoEncoderConfiguration)/@token")/$(v "$PROFILES[1]/$(E VideoEncoderConfiguration)/$(E Encoding)")" = VideoSourceConfig_1/VideoEncoder_1/H264 ]
check "Profile_3 is JPEG" [ "$(v "$PROFILES[3]/$(E VideoEncoderConfiguration)/$(E Encoding)")" = JPEG ]
check "no audio configurations" [ "$(n "//$(E AudioSourceConfiguration)|//$(E AudioEncoderConfiguration)")" = 0 ]
ok "GetProfile(Profile_2) schema-valid" '<trt:GetProfile><trt:ProfileToken>Profile_2</trt:ProfileToken></trt:GetProfile>'
check "GetProfile returns Profile_2, fixed" [ "$(v "$PROFILE/@token")/$(v "$PROFILE/@fixed")" = Profile_2/true ]
faults "GetProfile of an unknown token → NoProfile" \
    '<trt:GetProfile><trt:ProfileToken>NoSuchProfile</trt:ProfileToken></trt:GetProfile>' "400/ter:InvalidArgVal ter:NoProfile"

# ---- video source and its configurations ----
ok "GetVideoSources schema-valid" '<trt:GetVideoSources/>'
check "one video source, 640x360 at 15 fps" \
    [ "$(n "//$(E VideoSources)")/$(v "//$(E VideoSources)/$(E Resolution)/$(E Width)")x$(v "//$(E VideoSources)/$(E Resolution)/$(E Height)")/$(v "//$(E VideoSources)/$(E Framerate)")" = "1/640x360/15" ]
SRC=$(v "//$(E VideoSources)/@token")
ok "GetVideoSourceConfigurations schema-valid" '<trt:GetVideoSourceConfigurations/>'
check "the configuration covers the source and is used by the 3 profiles" \
    [ "$(v "//$(E Configurations)/$(E SourceToken)")/$(v "//$(E Configurations)/$(E UseCount)")/$(v "//$(E Configurations)/$(E Bounds)/@width")" = "$SRC/3/640" ]
ok "GetVideoSourceConfiguration schema-valid" \
    '<trt:GetVideoSourceConfiguration><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken></trt:GetVideoSourceConfiguration>'
faults "GetVideoSourceConfiguration of an unknown token → NoConfig" \
    '<trt:GetVideoSourceConfiguration><trt:ConfigurationToken>Nope</trt:ConfigurationToken></trt:GetVideoSourceConfiguration>' "400/ter:InvalidArgVal ter:NoConfig"
ok "GetVideoSourceConfigurationOptions (generic) schema-valid" '<trt:GetVideoSourceConfigurationOptions/>'
check "options: bounds are the whole source; the source token" \
    [ "$(v "//$(E WidthRange)/$(E Max)")x$(v "//$(E HeightRange)/$(E Max)")/$(v "//$(E VideoSourceTokensAvailable)")" = "640x360/$SRC" ]
ok "GetVideoSourceConfigurationOptions (both tokens) schema-valid" \
    '<trt:GetVideoSourceConfigurationOptions><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:GetVideoSourceConfigurationOptions>'
faults "GetVideoSourceConfigurationOptions with an unknown profile → NoProfile" \
    '<trt:GetVideoSourceConfigurationOptions><trt:ProfileToken>Nope</trt:ProfileToken></trt:GetVideoSourceConfigurationOptions>' "400/ter:InvalidArgVal ter:NoProfile"
ok "GetCompatibleVideoSourceConfigurations schema-valid" \
    '<trt:GetCompatibleVideoSourceConfigurations><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:GetCompatibleVideoSourceConfigurations>'
check "…lists the configuration" [ "$(n "//$(E Configurations)")" = 1 ]
faults "GetCompatibleVideoSourceConfigurations of an unknown profile → NoProfile" \
    '<trt:GetCompatibleVideoSourceConfigurations><trt:ProfileToken>Nope</trt:ProfileToken></trt:GetCompatibleVideoSourceConfigurations>' "400/ter:InvalidArgVal ter:NoProfile"

vsc() { # vsc NAME X WIDTH: a SetVideoSourceConfiguration body
    printf '<trt:SetVideoSourceConfiguration><trt:Configuration token="VideoSourceConfig_1"><tt:Name>%s</tt:Name><tt:UseCount>3</tt:UseCount><tt:SourceToken>%s</tt:SourceToken><tt:Bounds x="%s" y="0" width="%s" height="360"/></trt:Configuration><trt:ForcePersistence>true</trt:ForcePersistence></trt:SetVideoSourceConfiguration>' "$1" "$SRC" "$2" "$3"
}
ok "SetVideoSourceConfiguration (new name) 200" "$(vsc Camera 0 640)"
media '<trt:GetVideoSourceConfiguration><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken></trt:GetVideoSourceConfiguration>' >/dev/null
check "the new name reads back" [ "$(v "$CFG/$(E Name)")" = Camera ]
faults "SetVideoSourceConfiguration with bounds outside the options → ConfigModify" "$(vsc Other 10 320)" \
    "400/ter:InvalidArgVal ter:ConfigModify"
media '<trt:GetVideoSourceConfiguration><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken></trt:GetVideoSourceConfiguration>' >/dev/null
check "…and nothing changed" [ "$(v "$CFG/$(E Name)")/$(v "$CFG/$(E Bounds)/@width")" = Camera/640 ]

# ---- video encoder configurations ----
ok "GetVideoEncoderConfigurations schema-valid" '<trt:GetVideoEncoderConfigurations/>'
check "three encoder configurations" [ "$(n "//$(E Configurations)")" = 3 ]
ok "GetVideoEncoderConfiguration schema-valid" \
    '<trt:GetVideoEncoderConfiguration><trt:ConfigurationToken>VideoEncoder_1</trt:ConfigurationToken></trt:GetVideoEncoderConfiguration>'
check "VideoEncoder_1: H.264 at the source size, a GOV length, multicast, session timeout" \
    [ "$(v "$CFG/$(E Encoding)")/$(v "$CFG/$(E Resolution)/$(E Width)")x$(v "$CFG/$(E Resolution)/$(E Height)")/$(n "$CFG/$(E H264)/$(E GovLength)")/$(v "$CFG/$(E Multicast)/$(E Address)/$(E Type)")/$(v "$CFG/$(E SessionTimeout)")" = "H264/640x360/1/IPv4/PT60S" ]
faults "GetVideoEncoderConfiguration of an unknown token → NoConfig" \
    '<trt:GetVideoEncoderConfiguration><trt:ConfigurationToken>Nope</trt:ConfigurationToken></trt:GetVideoEncoderConfiguration>' "400/ter:InvalidArgVal ter:NoConfig"
ok "GetVideoEncoderConfigurationOptions (generic) schema-valid" '<trt:GetVideoEncoderConfigurationOptions/>'
check "options for JPEG and H.264, with bitrate ranges in the extension" \
    [ "$(n "//$(E Options)/$(E JPEG)")/$(n "//$(E Options)/$(E H264)")/$(n "//$(E Extension)/$(E JPEG)/$(E BitrateRange)")/$(n "//$(E Extension)/$(E H264)/$(E BitrateRange)")" = 1/1/1/1 ]
check "H.264 profiles Baseline Main High; QualityRange 0..100" \
    [ "$(xpath "$R" "//$(E Options)/$(E H264)/$(E H264ProfilesSupported)/text()" | tr '\n' ' ')/$(v "//$(E QualityRange)/$(E Min)")..$(v "//$(E QualityRange)/$(E Max)")" = "Baseline Main High /0..100" ]
check "320x180 is offered" [ "$(n "//$(E Options)/$(E H264)/$(E ResolutionsAvailable)[$(E Width)=320][$(E Height)=180]")" = 1 ]
ok "GetVideoEncoderConfigurationOptions (both tokens) schema-valid" \
    '<trt:GetVideoEncoderConfigurationOptions><trt:ConfigurationToken>VideoEncoder_2</trt:ConfigurationToken><trt:ProfileToken>Profile_2</trt:ProfileToken></trt:GetVideoEncoderConfigurationOptions>'
faults "GetVideoEncoderConfigurationOptions with an unknown configuration → NoConfig" \
    '<trt:GetVideoEncoderConfigurationOptions><trt:ConfigurationToken>Nope</trt:ConfigurationToken></trt:GetVideoEncoderConfigurationOptions>' "400/ter:InvalidArgVal ter:NoConfig"
ok "GetCompatibleVideoEncoderConfigurations schema-valid" \
    '<trt:GetCompatibleVideoEncoderConfigurations><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:GetCompatibleVideoEncoderConfigurations>'
check "…lists the three" [ "$(n "//$(E Configurations)")" = 3 ]
ok "GetGuaranteedNumberOfVideoEncoderInstances schema-valid" \
    '<trt:GetGuaranteedNumberOfVideoEncoderInstances><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken></trt:GetGuaranteedNumberOfVideoEncoderInstances>'
check "…a total of at least 3" [ "$(v "//$(E TotalNumber)")" -ge 3 ]
faults "GetGuaranteedNumberOfVideoEncoderInstances of an unknown configuration → NoConfig" \
    '<trt:GetGuaranteedNumberOfVideoEncoderInstances><trt:ConfigurationToken>Nope</trt:ConfigurationToken></trt:GetGuaranteedNumberOfVideoEncoderInstances>' "400/ter:InvalidArgVal ter:NoConfig"

# vec ENCODING W H QUALITY FPS BITRATE GOV PROFILE [TIMEOUT]: a SetVideoEncoderConfiguration body for VideoEncoder_2
vec() {
    local h264=""
    [ "$1" = H264 ] && h264="<tt:H264><tt:GovLength>$7</tt:GovLength><tt:H264Profile>$8</tt:H264Profile></tt:H264>"
    printf '<trt:SetVideoEncoderConfiguration><trt:Configuration token="VideoEncoder_2"><tt:Name>SubStream</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>%s</tt:Encoding><tt:Resolution><tt:Width>%s</tt:Width><tt:Height>%s</tt:Height></tt:Resolution><tt:Quality>%s</tt:Quality><tt:RateControl><tt:FrameRateLimit>%s</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>%s</tt:BitrateLimit></tt:RateControl>%s<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>239.255.0.2</tt:IPv4Address></tt:Address><tt:Port>40002</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>%s</tt:SessionTimeout></trt:Configuration><trt:ForcePersistence>true</trt:ForcePersistence></trt:SetVideoEncoderConfiguration>' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$h264" "${9:-PT60S}"
}
get_vec2() { media '<trt:GetVideoEncoderConfiguration><trt:ConfigurationToken>VideoEncoder_2</trt:ConfigurationToken></trt:GetVideoEncoderConfiguration>' "$1" >/dev/null; }
get_vec2 "$WORK/vec2.before"
faults "SetVideoEncoderConfiguration with a resolution outside the options → ConfigModify" \
    "$(vec H264 123 77 50 10 512 20 Baseline)" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoEncoderConfiguration with MPEG4 → ConfigModify" \
    "$(vec MPEG4 320 180 50 10 512 20 Baseline)" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoEncoderConfiguration with a frame rate above the source's → ConfigModify" \
    "$(vec H264 320 180 50 60 512 20 Baseline)" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoEncoderConfiguration with a bad SessionTimeout → ConfigModify" \
    "$(vec H264 320 180 50 10 512 20 Baseline 60s)" "400/ter:InvalidArgVal ter:ConfigModify"
get_vec2 "$WORK/vec2.after"
check "refused changes changed nothing" cmp -s "$WORK/vec2.before" "$WORK/vec2.after"
ok "SetVideoEncoderConfiguration (320x180, quality 50, 10 fps, GOV 20, Baseline, PT2M) 200" \
    "$(vec H264 320 180 50 10 512 20 Baseline PT2M)"
get_vec2 "$R"
check "the change reads back" \
    [ "$(v "$CFG/$(E Resolution)/$(E Width)")x$(v "$CFG/$(E Resolution)/$(E Height)")/$(v "$CFG/$(E Quality)")/$(v "$CFG//$(E FrameRateLimit)")/$(v "$CFG//$(E BitrateLimit)")/$(v "$CFG/$(E H264)/$(E GovLength)")/$(v "$CFG/$(E H264)/$(E H264Profile)")/$(v "$CFG/$(E SessionTimeout)")" = "320x180/50/10/512/20/Baseline/PT120S" ]
ok "SetVideoEncoderConfiguration with an out-of-range BitrateLimit is adapted, not refused" \
    "$(vec H264 320 180 50 10 99999999 20 Baseline PT2M)"
get_vec2 "$R"
check "…to the options' maximum" [ "$(v "$CFG//$(E BitrateLimit)")" -lt 99999999 ]
ok "SetVideoEncoderConfiguration back to a sane bitrate" "$(vec H264 320 180 50 10 512 20 Baseline PT2M)"

# ---- stream and snapshot URIs ----
uri() { # uri STREAM PROTOCOL [PROFILE]: GetStreamUri body
    printf '<trt:GetStreamUri><trt:StreamSetup><tt:Stream>%s</tt:Stream><tt:Transport><tt:Protocol>%s</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>%s</trt:ProfileToken></trt:GetStreamUri>' "$1" "$2" "${3:-Profile_1}"
}
for proto in UDP RTSP TCP; do
    ok "GetStreamUri(RTP-Unicast/$proto) schema-valid" "$(uri RTP-Unicast "$proto")"
    check "…rtsp://127.0.0.1:$RTSP_PORT/stream/Profile_1" [ "$(v "//$(E Uri)")" = "rtsp://127.0.0.1:$RTSP_PORT/stream/Profile_1" ]
done
check "the URI is stable (InvalidAfterConnect/Reboot false, Timeout PT0S)" \
    [ "$(v "//$(E InvalidAfterConnect)")/$(v "//$(E InvalidAfterReboot)")/$(v "//$(E Timeout)")" = false/false/PT0S ]
ok "GetStreamUri(RTP-Unicast/HTTP) schema-valid" "$(uri RTP-Unicast HTTP)"
check "…the HTTP tunnel URI on the web service port http://127.0.0.1:$HTTP_PORT/stream/Profile_1" [ "$(v "//$(E Uri)")" = "http://127.0.0.1:$HTTP_PORT/stream/Profile_1" ]
ok "GetStreamUri(RTP-Multicast/UDP) schema-valid" "$(uri RTP-Multicast UDP)"
check "…an rtsp:// URI (multicast is set up over RTSP)" [ "$(v "//$(E Uri)")" = "rtsp://127.0.0.1:$RTSP_PORT/stream/Profile_1" ]
faults "GetStreamUri(RTP-Multicast/HTTP) → InvalidStreamSetup" "$(uri RTP-Multicast HTTP)" "400/ter:InvalidArgVal ter:InvalidStreamSetup"
faults "GetStreamUri of an unknown profile → NoProfile" "$(uri RTP-Unicast UDP Nope)" "400/ter:InvalidArgVal ter:NoProfile"
got=$(timeout 30 ffprobe -v error -rtsp_transport tcp -select_streams v:0 -show_entries stream=codec_name,width,height -of csv=p=0 \
    "rtsp://$ADMIN_USER:$ADMIN_PASS@127.0.0.1:$RTSP_PORT/stream/Profile_2" 2>>"$WORK/ff.err" | head -1 || true)
check "the stream of Profile_2 has the new encoder settings ($got)" [ "$got" = "h264,320,180" ]

snapshot_size() { # snapshot_size PROFILE: codec,width,height of the JPEG GetSnapshotUri gives
    media "<trt:GetSnapshotUri><trt:ProfileToken>$1</trt:ProfileToken></trt:GetSnapshotUri>" >/dev/null
    local url; url=$(v "//$(E Uri)")
    curl -sS --max-time 20 -o "$WORK/snap.jpg" --digest -u "$ADMIN_USER:$ADMIN_PASS" "$url" || true
    ffprobe -v error -show_entries stream=codec_name,width,height -of csv=p=0 "$WORK/snap.jpg" 2>/dev/null | head -1 || true
}
ok "GetSnapshotUri schema-valid" '<trt:GetSnapshotUri><trt:ProfileToken>Profile_3</trt:ProfileToken></trt:GetSnapshotUri>'
SNAP=$(v "//$(E Uri)")
check "the snapshot URI is on the SOAP listener" [ "$SNAP" = "http://127.0.0.1:$HTTP_PORT/onvif/snapshot/Profile_3" ]
check "…and stable (Timeout PT0S)" [ "$(v "//$(E Timeout)")" = PT0S ]
got=$(snapshot_size Profile_3)
check "the snapshot of Profile_3 is a JPEG of its encoder's size ($got)" [ "$got" = "mjpeg,640,360" ]
got=$(snapshot_size Profile_2)
check "the snapshot of Profile_2 follows the changed encoder ($got)" [ "$got" = "mjpeg,320,180" ]
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$SNAP" || true)
check "the snapshot without credentials → 401" [ "$code" = 401 ]
faults "GetSnapshotUri of an unknown profile → NoProfile" \
    '<trt:GetSnapshotUri><trt:ProfileToken>Nope</trt:ProfileToken></trt:GetSnapshotUri>' "400/ter:InvalidArgVal ter:NoProfile"

ok "SetSynchronizationPoint schema-valid" '<trt:SetSynchronizationPoint><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:SetSynchronizationPoint>'
faults "SetSynchronizationPoint of an unknown profile → NoProfile" \
    '<trt:SetSynchronizationPoint><trt:ProfileToken>Nope</trt:ProfileToken></trt:SetSynchronizationPoint>' "400/ter:InvalidArgVal ter:NoProfile"

ok "StartMulticastStreaming(Profile_2) schema-valid" '<trt:StartMulticastStreaming><trt:ProfileToken>Profile_2</trt:ProfileToken></trt:StartMulticastStreaming>'
ok "StopMulticastStreaming(Profile_2) schema-valid" '<trt:StopMulticastStreaming><trt:ProfileToken>Profile_2</trt:ProfileToken></trt:StopMulticastStreaming>'
ok "StopMulticastStreaming of a stream not started succeeds" '<trt:StopMulticastStreaming><trt:ProfileToken>Profile_3</trt:ProfileToken></trt:StopMulticastStreaming>'
faults "StartMulticastStreaming of an unknown profile → NoProfile" \
    '<trt:StartMulticastStreaming><trt:ProfileToken>Nope</trt:ProfileToken></trt:StartMulticastStreaming>' "400/ter:InvalidArgVal ter:NoProfile"

# ---- the NVR flow ----
ok "CreateProfile(nvr-1) schema-valid" '<trt:CreateProfile><trt:Name>NVR</trt:Name><trt:Token>nvr-1</trt:Token></trt:CreateProfile>'
check "…an empty, deletable profile with the token asked for" \
    [ "$(v "$PROFILE/@token")/$(v "$PROFILE/@fixed")/$(v "$PROFILE/$(E Name)")/$(n "$PROFILE/$(E VideoSourceConfiguration)")" = nvr-1/false/NVR/0 ]
faults "CreateProfile with a token in use → ProfileExists" \
    '<trt:CreateProfile><trt:Name>Again</trt:Name><trt:Token>nvr-1</trt:Token></trt:CreateProfile>' "400/ter:InvalidArgVal ter:ProfileExists"
faults "GetStreamUri of a profile without configurations → IncompleteConfiguration" "$(uri RTP-Unicast UDP nvr-1)" \
    "500/ter:Action ter:IncompleteConfiguration"
ok "GetCompatibleVideoEncoderConfigurations(nvr-1) schema-valid" \
    '<trt:GetCompatibleVideoEncoderConfigurations><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:GetCompatibleVideoEncoderConfigurations>'
check "…none before the profile has a source" [ "$(n "//$(E Configurations)")" = 0 ]
faults "AddVideoEncoderConfiguration before a source → ConfigurationConflict" \
    '<trt:AddVideoEncoderConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken><trt:ConfigurationToken>VideoEncoder_3</trt:ConfigurationToken></trt:AddVideoEncoderConfiguration>' \
    "500/ter:Action ter:ConfigurationConflict"
faults "AddVideoSourceConfiguration of an unknown configuration → NoConfig" \
    '<trt:AddVideoSourceConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken><trt:ConfigurationToken>Nope</trt:ConfigurationToken></trt:AddVideoSourceConfiguration>' \
    "400/ter:InvalidArgVal ter:NoConfig"
faults "AddVideoSourceConfiguration to an unknown profile → NoProfile" \
    '<trt:AddVideoSourceConfiguration><trt:ProfileToken>Nope</trt:ProfileToken><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken></trt:AddVideoSourceConfiguration>' \
    "400/ter:InvalidArgVal ter:NoProfile"
ok "AddVideoSourceConfiguration(nvr-1) 200" \
    '<trt:AddVideoSourceConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken></trt:AddVideoSourceConfiguration>'
faults "AddVideoEncoderConfiguration of an unknown configuration → NoConfig" \
    '<trt:AddVideoEncoderConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken><trt:ConfigurationToken>Nope</trt:ConfigurationToken></trt:AddVideoEncoderConfiguration>' \
    "400/ter:InvalidArgVal ter:NoConfig"
ok "AddVideoEncoderConfiguration(nvr-1, VideoEncoder_3) 200" \
    '<trt:AddVideoEncoderConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken><trt:ConfigurationToken>VideoEncoder_3</trt:ConfigurationToken></trt:AddVideoEncoderConfiguration>'
ok "GetProfile(nvr-1) schema-valid" '<trt:GetProfile><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:GetProfile>'
check "…with both configurations" \
    [ "$(v "$PROFILE/$(E VideoSourceConfiguration)/@token")/$(v "$PROFILE/$(E VideoEncoderConfiguration)/@token")" = VideoSourceConfig_1/VideoEncoder_3 ]
check "…and the encoder's UseCount counts it" [ "$(v "$PROFILE/$(E VideoEncoderConfiguration)/$(E UseCount)")" = 2 ]
ok "GetStreamUri(nvr-1) schema-valid" "$(uri RTP-Unicast RTSP nvr-1)"
check "…rtsp://127.0.0.1:$RTSP_PORT/stream/nvr-1" [ "$(v "//$(E Uri)")" = "rtsp://127.0.0.1:$RTSP_PORT/stream/nvr-1" ]
got=$(timeout 30 ffprobe -v error -rtsp_transport tcp -select_streams v:0 -show_entries stream=codec_name,width,height -of csv=p=0 \
    "rtsp://$ADMIN_USER:$ADMIN_PASS@127.0.0.1:$RTSP_PORT/stream/nvr-1" 2>>"$WORK/ff.err" | head -1 || true)
check "the created profile streams its JPEG encoder ($got)" [ "$got" = "mjpeg,640,360" ]
ok "CreateProfile without a token schema-valid" '<trt:CreateProfile><trt:Name>Empty</trt:Name></trt:CreateProfile>'
EMPTY=$(v "$PROFILE/@token")
check "…the device chose a token ($EMPTY)" [ -n "$EMPTY" ]

# ---- persistence across a restart ----
stop_daemon
check "opennvtd exits cleanly" [ "$DAEMON_RC" = 0 ]
start_daemon --config "$WORK/opennvtd.xml"
ok "after a restart GetProfile(nvr-1) schema-valid" '<trt:GetProfile><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:GetProfile>'
check "…the created profile kept its name and configurations" \
    [ "$(v "$PROFILE/$(E Name)")/$(v "$PROFILE/@fixed")/$(v "$PROFILE/$(E VideoSourceConfiguration)/@token")/$(v "$PROFILE/$(E VideoEncoderConfiguration)/@token")" = NVR/false/VideoSourceConfig_1/VideoEncoder_3 ]
get_vec2 "$R"
check "…the encoder change persisted" [ "$(v "$CFG/$(E Resolution)/$(E Width)")/$(v "$CFG/$(E H264)/$(E GovLength)")" = 320/20 ]
media '<trt:GetVideoSourceConfiguration><trt:ConfigurationToken>VideoSourceConfig_1</trt:ConfigurationToken></trt:GetVideoSourceConfiguration>' >/dev/null
check "…the source configuration's name persisted" [ "$(v "$CFG/$(E Name)")" = Camera ]

# ---- removal and deletion ----
ok "RemoveVideoEncoderConfiguration(nvr-1) 200" '<trt:RemoveVideoEncoderConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:RemoveVideoEncoderConfiguration>'
ok "RemoveVideoSourceConfiguration(nvr-1) 200" '<trt:RemoveVideoSourceConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:RemoveVideoSourceConfiguration>'
ok "RemoveVideoSourceConfiguration of an empty profile has no effect" '<trt:RemoveVideoSourceConfiguration><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:RemoveVideoSourceConfiguration>'
media '<trt:GetProfile><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:GetProfile>' >/dev/null
check "…the profile is empty again" [ "$(n "$PROFILE/$(E VideoSourceConfiguration)|$PROFILE/$(E VideoEncoderConfiguration)")" = 0 ]
faults "RemoveVideoEncoderConfiguration of an unknown profile → NoProfile" \
    '<trt:RemoveVideoEncoderConfiguration><trt:ProfileToken>Nope</trt:ProfileToken></trt:RemoveVideoEncoderConfiguration>' "400/ter:InvalidArgVal ter:NoProfile"
faults "DeleteProfile of a fixed profile → DeletionOfFixedProfile" \
    '<trt:DeleteProfile><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:DeleteProfile>' "400/ter:Action ter:DeletionOfFixedProfile"
faults "DeleteProfile of an unknown profile → NoProfile" \
    '<trt:DeleteProfile><trt:ProfileToken>Nope</trt:ProfileToken></trt:DeleteProfile>' "400/ter:InvalidArgVal ter:NoProfile"
ok "DeleteProfile(nvr-1) 200" '<trt:DeleteProfile><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:DeleteProfile>'
faults "…then GetProfile(nvr-1) → NoProfile" '<trt:GetProfile><trt:ProfileToken>nvr-1</trt:ProfileToken></trt:GetProfile>' "400/ter:InvalidArgVal ter:NoProfile"
ok "DeleteProfile($EMPTY) 200" "<trt:DeleteProfile><trt:ProfileToken>$EMPTY</trt:ProfileToken></trt:DeleteProfile>"

# ---- the profile limit ----
made=0
for i in $(seq 1 21); do
    [ "$(media "<trt:CreateProfile><trt:Name>Fill $i</trt:Name><trt:Token>fill-$i</trt:Token></trt:CreateProfile>")" = 200 ] && made=$((made + 1))
done
check "21 more profiles fit (24 in all)" [ "$made" = 21 ]
faults "one more → MaxNVTProfiles" '<trt:CreateProfile><trt:Name>Too many</trt:Name></trt:CreateProfile>' "500/ter:Action ter:MaxNVTProfiles"
for i in $(seq 1 21); do media "<trt:DeleteProfile><trt:ProfileToken>fill-$i</trt:ProfileToken></trt:DeleteProfile>" >/dev/null; done
ok "GetProfiles after the clean-up schema-valid" '<trt:GetProfiles/>'
check "…the three fixed profiles are left" [ "$(n "$PROFILES")" = 3 ]

# ---- what this device does not do ----
faults "GetAudioSources → ActionNotSupported" '<trt:GetAudioSources/>' "500/ter:ActionNotSupported"
faults "GetOSDs → ActionNotSupported" '<trt:GetOSDs/>' "500/ter:ActionNotSupported"

check "the daemon is still running" kill -0 "$DAEMON_PID"
stop_daemon
check "opennvtd exits cleanly" [ "$DAEMON_RC" = 0 ]

# ---- without the RTSP server: no streaming claimed, snapshots still work ----
sed 's#<media>#<media><rtsp-enabled>false</rtsp-enabled>#' "$WORK/opennvtd.xml" > "$WORK/no-rtsp.xml"
start_daemon --config "$WORK/no-rtsp.xml"
check "the ports file says RTSP is off" [ "$RTSP_PORT" = off ]
ok "GetServiceCapabilities without RTSP schema-valid" '<trt:GetServiceCapabilities/>'
check "NoRTSPStreaming true, RTPMulticast false" [ "$(v "$SC/@NoRTSPStreaming")/$(v "$SC/@RTPMulticast")" = true/false ]
faults "GetStreamUri without RTSP → ActionNotSupported" "$(uri RTP-Unicast UDP)" "500/ter:ActionNotSupported"
got=$(snapshot_size Profile_3)
check "snapshots still work ($got)" [ "$got" = "mjpeg,640,360" ]
stop_daemon
check "opennvtd exits cleanly" [ "$DAEMON_RC" = 0 ]
finish
