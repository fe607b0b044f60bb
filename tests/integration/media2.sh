#!/usr/bin/env bash
# Media2 service (tr2, ver20) end to end: capabilities, GetProfiles with its
# Token and Type filters, CreateProfile/AddConfiguration/RemoveConfiguration
# (all or nothing, dependencies), video source and encoder configurations
# with their filters and options, encoder instances, stream URIs per
# protocol (RtspOverHttp included), snapshots judged by ffprobe, multicast
# control and persistence across a restart. Every response and fault is
# validated against the ONVIF schemas.
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

media2_url() { printf '%s/onvif/media2_service' "${URL%/onvif/device_service}"; }
# media2 BODY [OUT]: POSTs a SOAP 1.2 envelope (prefixes s, tr2, tt) to the
# Media2 service with HTTP Digest as the Administrator (SOAP_AUTH=none: no
# credentials); prints the HTTP status, the body goes to OUT ($R).
media2() {
    local body=$1 out=${2:-$R} auth=(--digest -u "$ADMIN_USER:$ADMIN_PASS")
    [ "${SOAP_AUTH:-digest}" = none ] && auth=()
    curl -sS --max-time 20 -o "$out" -w '%{http_code}' -X POST "${auth[@]}" \
        -H 'Content-Type: application/soap+xml; charset=utf-8' \
        --data-binary "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tr2=\"http://www.onvif.org/ver20/media/wsdl\" xmlns:tt=\"http://www.onvif.org/ver10/schema\"><s:Body>$body</s:Body></s:Envelope>" \
        "$(media2_url)" || true
}
# ok DESCRIPTION BODY: 200 and a schema-valid response (left in $R)
ok() {
    local code; code=$(media2 "$2")
    if [ "$code" = 200 ] && valid "$R"; then pass "$1"; else fail "$1 (HTTP $code: $(fault_subcodes "$R"))"; fi
}
# faults DESCRIPTION BODY STATUS/SUBCODES: that fault, schema-valid
faults() {
    local code got; code=$(media2 "$2"); got="$code/$(fault_subcodes "$R")"
    if [ "$got" = "$3" ] && valid "$R"; then pass "$1"; else fail "$1 (got $got, want $3)"; fi
}
v() { xpath "$R" "string($1)" || true; }
n() { xpath "$R" "count($1)" || true; }
E() { printf '*[local-name()="%s"]' "$1"; }   # an element step by local name

P="//$(E Profiles)"
CFGS="//$(E Configurations)"
# profiles [TOKEN] [TYPE...]: a GetProfiles body
profiles() {
    local body="" t
    [ -n "${1:-}" ] && body="<tr2:Token>$1</tr2:Token>"
    for t in "${@:2}"; do body="$body<tr2:Type>$t</tr2:Type>"; done
    printf '<tr2:GetProfiles>%s</tr2:GetProfiles>' "$body"
}
# ref TYPE [TOKEN]: a tr2:ConfigurationRef
ref() { printf '<tr2:Configuration><tr2:Type>%s</tr2:Type>%s</tr2:Configuration>' "$1" "${2:+<tr2:Token>$2</tr2:Token>}"; }
# get NAME [CONFIG] [PROFILE]: a Get<entity>Configurations(Options) body
get() { printf '<tr2:%s>%s%s</tr2:%s>' "$1" "${2:+<tr2:ConfigurationToken>$2</tr2:ConfigurationToken>}" "${3:+<tr2:ProfileToken>$3</tr2:ProfileToken>}" "$1"; }
count_profiles() { media2 "$(profiles)" >/dev/null; n "$P"; }

# ---- capabilities and discovery ----
code=$(SOAP_AUTH=none media2 '<tr2:GetServiceCapabilities/>')
check "GetServiceCapabilities answers without credentials (PRE_AUTH)" [ "$code" = 200 ]
check "GetServiceCapabilities schema-valid" valid "$R"
CAPS="//$(E Capabilities)"
check "SnapshotUri true; Rotation, VideoSourceMode, OSD, TemporaryOSDText, Mask, SourceMask false" \
    [ "$(v "$CAPS/@SnapshotUri")/$(v "$CAPS/@Rotation")/$(v "$CAPS/@VideoSourceMode")/$(v "$CAPS/@OSD")/$(v "$CAPS/@TemporaryOSDText")/$(v "$CAPS/@Mask")/$(v "$CAPS/@SourceMask")" = true/false/false/false/false/false/false ]
PC="$CAPS/$(E ProfileCapabilities)"
check "24 profiles; configurations VideoSource and VideoEncoder" \
    [ "$(v "$PC/@MaximumNumberOfProfiles")/$(v "$PC/@ConfigurationsSupported")" = "24/VideoSource VideoEncoder" ]
SC="$CAPS/$(E StreamingCapabilities)"
check "RTSPStreaming, RTPMulticast, RTP_RTSP_TCP true; AutoStartMulticast false" \
    [ "$(v "$SC/@RTSPStreaming")/$(v "$SC/@RTPMulticast")/$(v "$SC/@RTP_RTSP_TCP")/$(v "$SC/@AutoStartMulticast")" = true/true/true/false ]
code=$(soap '<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>' "$R")
check "GetServices(IncludeCapability) 200" [ "$code" = 200 ]
check "GetServices with the Media2 capabilities is schema-valid" valid "$R"
MSVC="//$(E Service)[$(E Namespace)='http://www.onvif.org/ver20/media/wsdl']"
check "GetServices lists Media2 at the address used" [ "$(v "$MSVC/$(E XAddr)")" = "$(media2_url)" ]
check "…with its capabilities" [ "$(v "$MSVC/$(E Capabilities)/$(E Capabilities)/$(E ProfileCapabilities)/@ConfigurationsSupported")" = "VideoSource VideoEncoder" ]
code=$(SOAP_AUTH=none media2 "$(profiles)")
check "GetProfiles without credentials → 401" [ "$code" = 401 ]

# ---- GetProfiles and its filters ----
ok "GetProfiles schema-valid" "$(profiles)"
check "Profile_1..3, all fixed" \
    [ "$(v "$P[1]/@token") $(v "$P[2]/@token") $(v "$P[3]/@token")/$(n "$P")/$(n "$P[@fixed='true']")" = "Profile_1 Profile_2 Profile_3/3/3" ]
check "without Type: no configurations" [ "$(n "$P/$(E Configurations)")" = 0 ]
ok "GetProfiles(Type=All) schema-valid" "$(profiles "" All)"
check "Type=All: the source and the encoder of each" \
    [ "$(n "$P/$(E Configurations)/$(E VideoSource)")/$(n "$P/$(E Configurations)/$(E VideoEncoder)")" = 3/3 ]
check "Profile_1's encoder is H.264 with a GOV length and profile" \
    [ "$(v "$P[1]//$(E VideoEncoder)/$(E Encoding)")/$(n "$P[1]//$(E VideoEncoder)/@GovLength")/$(n "$P[1]//$(E VideoEncoder)/@Profile")" = H264/1/1 ]
check "Profile_3's encoder is JPEG" [ "$(v "$P[3]//$(E VideoEncoder)/$(E Encoding)")" = JPEG ]
ok "GetProfiles(Type=VideoSource) schema-valid" "$(profiles "" VideoSource)"
check "Type=VideoSource: sources only" \
    [ "$(n "$P/$(E Configurations)/$(E VideoSource)")/$(n "$P/$(E Configurations)/$(E VideoEncoder)")" = 3/0 ]
ok "GetProfiles(Type=VideoEncoder) schema-valid" "$(profiles "" VideoEncoder)"
check "Type=VideoEncoder: encoders only" \
    [ "$(n "$P/$(E Configurations)/$(E VideoSource)")/$(n "$P/$(E Configurations)/$(E VideoEncoder)")" = 0/3 ]
ok "GetProfiles(Type=AudioSource) schema-valid" "$(profiles "" AudioSource)"
check "Type=AudioSource: no configurations (there is no audio)" [ "$(n "$P/$(E Configurations)/*")/$(n "$P")" = 0/3 ]
ok "GetProfiles(Token=Profile_2, Type=All) schema-valid" "$(profiles Profile_2 All)"
check "Token: exactly that profile" [ "$(n "$P")/$(v "$P/@token")/$(v "$P//$(E VideoEncoder)/@token")" = 1/Profile_2/VideoEncoder_2 ]
faults "GetProfiles of an unknown token → NoProfile" "$(profiles NoSuchProfile)" "400/ter:InvalidArgVal ter:NoProfile"

# ---- video source configurations ----
ok "GetVideoSourceConfigurations schema-valid" "$(get GetVideoSourceConfigurations)"
check "one configuration, used by the three profiles" [ "$(n "$CFGS")/$(v "$CFGS/$(E UseCount)")" = 1/3 ]
SRC=$(v "$CFGS/$(E SourceToken)")
ok "GetVideoSourceConfigurations(ConfigurationToken) schema-valid" "$(get GetVideoSourceConfigurations VideoSourceConfig_1)"
check "…that one" [ "$(n "$CFGS")/$(v "$CFGS/@token")" = 1/VideoSourceConfig_1 ]
ok "GetVideoSourceConfigurations(ProfileToken) schema-valid" "$(get GetVideoSourceConfigurations "" Profile_1)"
check "…the compatible ones" [ "$(n "$CFGS")" = 1 ]
faults "GetVideoSourceConfigurations(unknown configuration) → NoConfig" "$(get GetVideoSourceConfigurations Nope)" "400/ter:InvalidArgVal ter:NoConfig"
faults "GetVideoSourceConfigurations(unknown profile) → NoProfile" "$(get GetVideoSourceConfigurations "" Nope)" "400/ter:InvalidArgVal ter:NoProfile"
ok "GetVideoSourceConfigurationOptions schema-valid" "$(get GetVideoSourceConfigurationOptions VideoSourceConfig_1 Profile_1)"
check "options: the whole source" [ "$(v "//$(E WidthRange)/$(E Max)")x$(v "//$(E HeightRange)/$(E Max)")/$(v "//$(E VideoSourceTokensAvailable)")" = "640x360/$SRC" ]
faults "GetVideoSourceConfigurationOptions(unknown configuration) → NoConfig" "$(get GetVideoSourceConfigurationOptions Nope)" "400/ter:InvalidArgVal ter:NoConfig"
vsc() { printf '<tr2:SetVideoSourceConfiguration><tr2:Configuration token="VideoSourceConfig_1"><tt:Name>%s</tt:Name><tt:UseCount>3</tt:UseCount><tt:SourceToken>%s</tt:SourceToken><tt:Bounds x="0" y="0" width="%s" height="360"/></tr2:Configuration></tr2:SetVideoSourceConfiguration>' "$1" "${3:-$SRC}" "$2"; }
ok "SetVideoSourceConfiguration (new name) 200" "$(vsc Lens 640)"
faults "SetVideoSourceConfiguration with bounds outside the options → ConfigModify" "$(vsc Other 100)" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoSourceConfiguration with another source → ConfigModify" "$(vsc Other 640 NoSource)" "400/ter:InvalidArgVal ter:ConfigModify"
media2 "$(get GetVideoSourceConfigurations VideoSourceConfig_1)" >/dev/null
check "the accepted change reads back, the refused ones changed nothing" [ "$(v "$CFGS/$(E Name)")/$(v "$CFGS/$(E Bounds)/@width")" = Lens/640 ]

# ---- video encoder configurations ----
ok "GetVideoEncoderConfigurations schema-valid" "$(get GetVideoEncoderConfigurations)"
check "three encoder configurations" [ "$(n "$CFGS")" = 3 ]
ok "GetVideoEncoderConfigurations(ConfigurationToken) schema-valid" "$(get GetVideoEncoderConfigurations VideoEncoder_3)"
check "…that one, JPEG without GOV length" [ "$(n "$CFGS")/$(v "$CFGS/@token")/$(v "$CFGS/$(E Encoding)")/$(n "$CFGS/@GovLength")" = 1/VideoEncoder_3/JPEG/0 ]
faults "GetVideoEncoderConfigurations(unknown configuration) → NoConfig" "$(get GetVideoEncoderConfigurations Nope)" "400/ter:InvalidArgVal ter:NoConfig"
faults "GetVideoEncoderConfigurations(unknown profile) → NoProfile" "$(get GetVideoEncoderConfigurations "" Nope)" "400/ter:InvalidArgVal ter:NoProfile"
ok "GetVideoEncoderConfigurationOptions schema-valid" "$(get GetVideoEncoderConfigurationOptions)"
OPT="//$(E Options)"
check "options for H264 and JPEG" [ "$(n "$OPT[$(E Encoding)='H264']")/$(n "$OPT[$(E Encoding)='JPEG']")" = 1/1 ]
H="$OPT[$(E Encoding)='H264']"
check "H264: profiles, CBR, GOV range, bitrate range, frame rates up to the source's" \
    [ "$(v "$H/@ProfilesSupported")/$(v "$H/@ConstantBitRateSupported")/$(v "$H/@GovLengthRange")/$(n "$H/$(E BitrateRange)")/$(v "$H/@FrameRatesSupported" | cut -d' ' -f1)" = "Baseline Main High/true/1 300/1/15" ]
check "H264: 320x180 is offered" [ "$(n "$H/$(E ResolutionsAvailable)[$(E Width)=320][$(E Height)=180]")" = 1 ]
check "JPEG: no GOV length or profiles" [ "$(n "$OPT[$(E Encoding)='JPEG']/@GovLengthRange")/$(n "$OPT[$(E Encoding)='JPEG']/@ProfilesSupported")" = 0/0 ]
HAVE_H265=$(n "$OPT[$(E Encoding)='H265']")
ok "GetVideoEncoderConfigurationOptions(both tokens) schema-valid" "$(get GetVideoEncoderConfigurationOptions VideoEncoder_2 Profile_2)"
faults "GetVideoEncoderConfigurationOptions(unknown profile) → NoProfile" "$(get GetVideoEncoderConfigurationOptions "" Nope)" "400/ter:InvalidArgVal ter:NoProfile"

# vec ENCODING W H FPS BITRATE CBR ATTRS: a SetVideoEncoderConfiguration body for VideoEncoder_2
vec() {
    printf '<tr2:SetVideoEncoderConfiguration><tr2:Configuration token="VideoEncoder_2" %s><tt:Name>SubStream</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>%s</tt:Encoding><tt:Resolution><tt:Width>%s</tt:Width><tt:Height>%s</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate="%s"><tt:FrameRateLimit>%s</tt:FrameRateLimit><tt:BitrateLimit>%s</tt:BitrateLimit></tt:RateControl><tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>239.255.0.2</tt:IPv4Address></tt:Address><tt:Port>40002</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:Quality>60</tt:Quality></tr2:Configuration></tr2:SetVideoEncoderConfiguration>' \
        "$7" "$1" "$2" "$3" "$6" "$4" "$5"
}
get_vec2() { media2 "$(get GetVideoEncoderConfigurations VideoEncoder_2)" "$1" >/dev/null; }
get_vec2 "$WORK/vec2.before"
faults "SetVideoEncoderConfiguration with a resolution outside the options → ConfigModify" \
    "$(vec H264 123 77 10 512 false 'GovLength="30" Profile="High"')" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoEncoderConfiguration with an unknown encoding → ConfigModify" \
    "$(vec MPV4-ES 320 180 10 512 false 'GovLength="30"')" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoEncoderConfiguration with an unknown profile → ConfigModify" \
    "$(vec H264 320 180 10 512 false 'GovLength="30" Profile="Extended"')" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoEncoderConfiguration with a GOV length outside the options → ConfigModify" \
    "$(vec H264 320 180 10 512 false 'GovLength="100000"')" "400/ter:InvalidArgVal ter:ConfigModify"
faults "SetVideoEncoderConfiguration of an unknown configuration → NoConfig" \
    "$(vec H264 320 180 10 512 false 'GovLength="30"' | sed 's/token="VideoEncoder_2"/token="Nope"/')" "400/ter:InvalidArgVal ter:NoConfig"
get_vec2 "$WORK/vec2.after"
check "refused changes changed nothing" cmp -s "$WORK/vec2.before" "$WORK/vec2.after"
ok "SetVideoEncoderConfiguration (320x180, 10 fps, 512 kbit/s CBR, GOV 30, High) 200" \
    "$(vec H264 320 180 10 512 true 'GovLength="30" Profile="High"')"
get_vec2 "$R"
C="$CFGS"
check "the change reads back" \
    [ "$(v "$C/$(E Resolution)/$(E Width)")x$(v "$C/$(E Resolution)/$(E Height)")/$(v "$C//$(E FrameRateLimit)")/$(v "$C//$(E BitrateLimit)")/$(v "$C/$(E RateControl)/@ConstantBitRate")/$(v "$C/@GovLength")/$(v "$C/@Profile")/$(v "$C/$(E Quality)")" = "320x180/10/512/true/30/High/60" ]
got=$(timeout 30 ffprobe -v error -rtsp_transport tcp -select_streams v:0 -show_entries stream=codec_name,width,height -of csv=p=0 \
    "rtsp://$ADMIN_USER:$ADMIN_PASS@127.0.0.1:$RTSP_PORT/stream/Profile_2" 2>>"$WORK/ff.err" | head -1 || true)
check "the stream of Profile_2 has the new settings ($got)" [ "$got" = "h264,320,180" ]
if [ "$HAVE_H265" = 1 ]; then
    ok "SetVideoEncoderConfiguration to H265 without a profile attribute 200" "$(vec H265 320 180 10 512 false 'GovLength="30"')"
    get_vec2 "$R"
    check "…H265 with its Main profile" [ "$(v "$C/$(E Encoding)")/$(v "$C/@Profile")" = H265/Main ]
    ok "SetVideoEncoderConfiguration back to H264" "$(vec H264 320 180 10 512 true 'GovLength="30" Profile="High"')"
fi

ok "GetVideoEncoderInstances schema-valid" '<tr2:GetVideoEncoderInstances><tr2:ConfigurationToken>VideoSourceConfig_1</tr2:ConfigurationToken></tr2:GetVideoEncoderInstances>'
check "a total of at least 3, per codec H264 and JPEG" \
    [ "$(v "//$(E Total)")" -ge 3 ] && [ "$(n "//$(E Codec)[$(E Encoding)='H264']")/$(n "//$(E Codec)[$(E Encoding)='JPEG']")" = 1/1 ]
faults "GetVideoEncoderInstances of an unknown configuration → NoConfig" \
    '<tr2:GetVideoEncoderInstances><tr2:ConfigurationToken>Nope</tr2:ConfigurationToken></tr2:GetVideoEncoderInstances>' "400/ter:InvalidArgVal ter:NoConfig"

# ---- stream and snapshot URIs ----
uri() { printf '<tr2:GetStreamUri><tr2:Protocol>%s</tr2:Protocol><tr2:ProfileToken>%s</tr2:ProfileToken></tr2:GetStreamUri>' "$1" "${2:-Profile_1}"; }
for proto in RtspUnicast RTSP RtspMulticast; do
    ok "GetStreamUri($proto) schema-valid" "$(uri "$proto")"
    check "…rtsp://127.0.0.1:$RTSP_PORT/stream/Profile_1" [ "$(v "//$(E Uri)")" = "rtsp://127.0.0.1:$RTSP_PORT/stream/Profile_1" ]
done
ok "GetStreamUri(RtspOverHttp) schema-valid" "$(uri RtspOverHttp)"
check "…an http:// URI of the tunnel on the web service port" [ "$(v "//$(E Uri)")" = "http://127.0.0.1:$HTTP_PORT/stream/Profile_1" ]
faults "GetStreamUri(an unknown protocol) → InvalidArgVal" "$(uri CarrierPigeon)" "400/ter:InvalidArgVal ter:InvalidStreamSetup"
faults "GetStreamUri(RtspsUnicast, not offered) → InvalidArgVal" "$(uri RtspsUnicast)" "400/ter:InvalidArgVal ter:InvalidStreamSetup"
faults "GetStreamUri of an unknown profile → NoProfile" "$(uri RtspUnicast Nope)" "400/ter:InvalidArgVal ter:NoProfile"

snapshot_size() { # snapshot_size PROFILE: codec,width,height of the JPEG GetSnapshotUri gives
    media2 "<tr2:GetSnapshotUri><tr2:ProfileToken>$1</tr2:ProfileToken></tr2:GetSnapshotUri>" >/dev/null
    curl -sS --max-time 20 -o "$WORK/snap.jpg" --digest -u "$ADMIN_USER:$ADMIN_PASS" "$(v "//$(E Uri)")" || true
    ffprobe -v error -show_entries stream=codec_name,width,height -of csv=p=0 "$WORK/snap.jpg" 2>/dev/null | head -1 || true
}
ok "GetSnapshotUri schema-valid" '<tr2:GetSnapshotUri><tr2:ProfileToken>Profile_2</tr2:ProfileToken></tr2:GetSnapshotUri>'
check "the snapshot URI is on the SOAP listener" [ "$(v "//$(E Uri)")" = "http://127.0.0.1:$HTTP_PORT/onvif/snapshot/Profile_2" ]
got=$(snapshot_size Profile_2)
check "the snapshot is a JPEG of the encoder's size ($got)" [ "$got" = "mjpeg,320,180" ]
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/onvif/snapshot/Profile_2" || true)
check "the snapshot without credentials → 401" [ "$code" = 401 ]
faults "GetSnapshotUri of an unknown profile → NoProfile" \
    '<tr2:GetSnapshotUri><tr2:ProfileToken>Nope</tr2:ProfileToken></tr2:GetSnapshotUri>' "400/ter:InvalidArgVal ter:NoProfile"

ok "SetSynchronizationPoint schema-valid" '<tr2:SetSynchronizationPoint><tr2:ProfileToken>Profile_1</tr2:ProfileToken></tr2:SetSynchronizationPoint>'
faults "SetSynchronizationPoint of an unknown profile → NoProfile" \
    '<tr2:SetSynchronizationPoint><tr2:ProfileToken>Nope</tr2:ProfileToken></tr2:SetSynchronizationPoint>' "400/ter:InvalidArgVal ter:NoProfile"
ok "StartMulticastStreaming(Profile_2) schema-valid" '<tr2:StartMulticastStreaming><tr2:ProfileToken>Profile_2</tr2:ProfileToken></tr2:StartMulticastStreaming>'
ok "StopMulticastStreaming(Profile_2) schema-valid" '<tr2:StopMulticastStreaming><tr2:ProfileToken>Profile_2</tr2:ProfileToken></tr2:StopMulticastStreaming>'
faults "StopMulticastStreaming of an unknown profile → NoProfile" \
    '<tr2:StopMulticastStreaming><tr2:ProfileToken>Nope</tr2:ProfileToken></tr2:StopMulticastStreaming>' "400/ter:InvalidArgVal ter:NoProfile"

# ---- creating and changing profiles ----
ok "CreateProfile with a source and an encoder schema-valid" \
    "<tr2:CreateProfile><tr2:Name>NVR</tr2:Name>$(ref VideoSource VideoSourceConfig_1)$(ref VideoEncoder VideoEncoder_3)$(ref All)</tr2:CreateProfile>"
NVR=$(v "//$(E Token)")
check "…a token was assigned ($NVR)" [ -n "$NVR" ]
ok "GetProfiles(Token=$NVR, Type=All) schema-valid" "$(profiles "$NVR" All)"
check "…a deletable profile with both configurations" \
    [ "$(v "$P/@fixed")/$(v "$P/$(E Name)")/$(v "$P//$(E VideoSource)/@token")/$(v "$P//$(E VideoEncoder)/@token")" = false/NVR/VideoSourceConfig_1/VideoEncoder_3 ]
ok "GetStreamUri of the created profile schema-valid" "$(uri RtspUnicast "$NVR")"
check "…rtsp://127.0.0.1:$RTSP_PORT/stream/$NVR" [ "$(v "//$(E Uri)")" = "rtsp://127.0.0.1:$RTSP_PORT/stream/$NVR" ]
before=$(count_profiles)
faults "CreateProfile naming an unknown configuration → NoConfig" \
    "<tr2:CreateProfile><tr2:Name>Bad</tr2:Name>$(ref VideoSource Nope)</tr2:CreateProfile>" "400/ter:InvalidArgVal ter:NoConfig"
faults "CreateProfile with an encoder but no source → ConfigurationConflict" \
    "<tr2:CreateProfile><tr2:Name>Bad</tr2:Name>$(ref VideoEncoder VideoEncoder_1)</tr2:CreateProfile>" "500/ter:Action ter:ConfigurationConflict"
check "…and no profile was left behind" [ "$(count_profiles)" = "$before" ]

ok "CreateProfile (empty) schema-valid" "<tr2:CreateProfile><tr2:Name>Empty</tr2:Name></tr2:CreateProfile>"
EMPTY=$(v "//$(E Token)")
faults "GetStreamUri of an empty profile → IncompleteConfiguration" "$(uri RtspUnicast "$EMPTY")" "500/ter:Action ter:IncompleteConfiguration"
faults "AddConfiguration of an encoder alone → ConfigurationConflict" \
    "<tr2:AddConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken>$(ref VideoEncoder VideoEncoder_1)</tr2:AddConfiguration>" "500/ter:Action ter:ConfigurationConflict"
faults "AddConfiguration of an unknown configuration → NoConfig" \
    "<tr2:AddConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken><tr2:Name>Renamed</tr2:Name>$(ref VideoSource Nope)</tr2:AddConfiguration>" "400/ter:InvalidArgVal ter:NoConfig"
faults "AddConfiguration without a token → NoConfig" \
    "<tr2:AddConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken>$(ref VideoSource)</tr2:AddConfiguration>" "400/ter:InvalidArgVal ter:NoConfig"
faults "AddConfiguration to an unknown profile → NoProfile" \
    "<tr2:AddConfiguration><tr2:ProfileToken>Nope</tr2:ProfileToken>$(ref VideoSource VideoSourceConfig_1)</tr2:AddConfiguration>" "400/ter:InvalidArgVal ter:NoProfile"
media2 "$(profiles "$EMPTY" All)" >/dev/null
check "…refused additions changed nothing (name, configurations)" [ "$(v "$P/$(E Name)")/$(n "$P/$(E Configurations)/*")" = Empty/0 ]
ok "AddConfiguration of encoder and source in one request (encoder first), with a new name" \
    "<tr2:AddConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken><tr2:Name>Renamed</tr2:Name>$(ref VideoEncoder VideoEncoder_1)$(ref VideoSource VideoSourceConfig_1)</tr2:AddConfiguration>"
media2 "$(profiles "$EMPTY" All)" >/dev/null
check "…both configurations and the name read back" \
    [ "$(v "$P/$(E Name)")/$(v "$P//$(E VideoSource)/@token")/$(v "$P//$(E VideoEncoder)/@token")" = Renamed/VideoSourceConfig_1/VideoEncoder_1 ]
ok "AddConfiguration replacing the encoder" \
    "<tr2:AddConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken>$(ref VideoEncoder VideoEncoder_2)</tr2:AddConfiguration>"
media2 "$(profiles "$EMPTY" VideoEncoder)" >/dev/null
check "…the encoder was replaced" [ "$(v "$P//$(E VideoEncoder)/@token")" = VideoEncoder_2 ]
ok "RemoveConfiguration(VideoEncoder) 200" \
    "<tr2:RemoveConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken>$(ref VideoEncoder)</tr2:RemoveConfiguration>"
media2 "$(profiles "$EMPTY" All)" >/dev/null
check "…the encoder went, the source stayed" [ "$(n "$P//$(E VideoEncoder)")/$(n "$P//$(E VideoSource)")" = 0/1 ]
ok "RemoveConfiguration(All) 200" \
    "<tr2:RemoveConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken>$(ref All)</tr2:RemoveConfiguration>"
media2 "$(profiles "$EMPTY" All)" >/dev/null
check "…the profile is empty" [ "$(n "$P/$(E Configurations)/*")" = 0 ]
ok "RemoveConfiguration of what is not there is ignored" \
    "<tr2:RemoveConfiguration><tr2:ProfileToken>$EMPTY</tr2:ProfileToken>$(ref VideoEncoder Whatever)$(ref Metadata)</tr2:RemoveConfiguration>"
faults "RemoveConfiguration of an unknown profile → NoProfile" \
    "<tr2:RemoveConfiguration><tr2:ProfileToken>Nope</tr2:ProfileToken>$(ref All)</tr2:RemoveConfiguration>" "400/ter:InvalidArgVal ter:NoProfile"
ok "GetVideoEncoderConfigurations(ProfileToken of a profile without source) schema-valid" "$(get GetVideoEncoderConfigurations "" "$EMPTY")"
check "…none is compatible" [ "$(n "$CFGS")" = 0 ]

# ---- persistence across a restart ----
stop_daemon
check "opennvtd exits cleanly" [ "$DAEMON_RC" = 0 ]
start_daemon --config "$WORK/opennvtd.xml"
ok "after a restart GetProfiles(Token=$NVR, Type=All) schema-valid" "$(profiles "$NVR" All)"
check "…the created profile kept its configurations" \
    [ "$(v "$P/$(E Name)")/$(v "$P//$(E VideoSource)/@token")/$(v "$P//$(E VideoEncoder)/@token")" = NVR/VideoSourceConfig_1/VideoEncoder_3 ]
get_vec2 "$R"
check "…the encoder change persisted" [ "$(v "$C/$(E Resolution)/$(E Width)")/$(v "$C/@GovLength")/$(v "$C/@Profile")" = 320/30/High ]

# ---- deletion ----
faults "DeleteProfile of a fixed profile → DeletionOfFixedProfile" \
    '<tr2:DeleteProfile><tr2:Token>Profile_1</tr2:Token></tr2:DeleteProfile>' "400/ter:Action ter:DeletionOfFixedProfile"
faults "DeleteProfile of an unknown profile → NoProfile" \
    '<tr2:DeleteProfile><tr2:Token>Nope</tr2:Token></tr2:DeleteProfile>' "400/ter:InvalidArgVal ter:NoProfile"
ok "DeleteProfile($NVR) 200" "<tr2:DeleteProfile><tr2:Token>$NVR</tr2:Token></tr2:DeleteProfile>"
ok "DeleteProfile($EMPTY) 200" "<tr2:DeleteProfile><tr2:Token>$EMPTY</tr2:Token></tr2:DeleteProfile>"
faults "…then GetProfiles(Token=$NVR) → NoProfile" "$(profiles "$NVR")" "400/ter:InvalidArgVal ter:NoProfile"
check "the three fixed profiles are left" [ "$(count_profiles)" = 3 ]

# ---- what this device does not do ----
faults "GetAudioSourceConfigurations → ActionNotSupported" "$(get GetAudioSourceConfigurations)" "500/ter:ActionNotSupported"
faults "GetOSDs → ActionNotSupported" '<tr2:GetOSDs/>' "500/ter:ActionNotSupported"
faults "GetMasks → ActionNotSupported" '<tr2:GetMasks/>' "500/ter:ActionNotSupported"

check "the daemon is still running" kill -0 "$DAEMON_PID"
stop_daemon
check "opennvtd exits cleanly" [ "$DAEMON_RC" = 0 ]
finish
