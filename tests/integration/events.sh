#!/usr/bin/env bash
# Events service: pull-point subscriptions driven with curl (SOAP 1.2,
# responses validated against the ONVIF/OASIS XSDs): capabilities, the topic
# set, filters, PullMessages waiting and limits, Renew/Unsubscribe/expiry,
# SetSynchronizationPoint, and the producers: motion on the moving test
# pattern (and none on a still one), media profile changes, the AuthFailed
# alarm, key status during key generation.
. "$(dirname "$0")/lib.sh"

cat > "$WORK/opennvtd.xml" <<'XML'
<opennvt>
  <media><source-width>640</source-width><source-height>360</source-height><source-framerate>15</source-framerate></media>
  <events><motion-hold-ms>800</motion-hold-ms></events>
</opennvt>
XML
start_daemon --config "$WORK/opennvtd.xml"
EV="http://127.0.0.1:$HTTP_PORT/onvif/event_service"
R=$WORK/ev.xml

# esoap URL BODY [OUT]: a SOAP 1.2 request with the event namespaces, as the Administrator
esoap() {
    local url=$1 body=$2 out=${3:-$R} auth=(--digest -u "$ADMIN_USER:$ADMIN_PASS")
    [ "${SOAP_AUTH:-digest}" = none ] && auth=()
    curl -sS --max-time 30 -o "$out" -w '%{http_code}' -X POST "${auth[@]}" \
        -H 'Content-Type: application/soap+xml; charset=utf-8' \
        --data-binary "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tev=\"http://www.onvif.org/ver10/events/wsdl\" xmlns:wsnt=\"http://docs.oasis-open.org/wsn/b-2\" xmlns:tns1=\"http://www.onvif.org/ver10/topics\" xmlns:tt=\"http://www.onvif.org/ver10/schema\" xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\" xmlns:tas=\"http://www.onvif.org/ver10/advancedsecurity/wsdl\"><s:Body>$body</s:Body></s:Envelope>" \
        "$url"
}
E() { printf '*[local-name()="%s"]' "$1"; }
v() { xpath "$R" "string($1)"; }
# subscribe [FILTER] [TERMINATION]: prints the subscription address
subscribe() {
    local filter="" term=${2:-PT60S}
    [ -n "${1:-}" ] && filter="<tev:Filter><wsnt:TopicExpression Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet\">$1</wsnt:TopicExpression></tev:Filter>"
    local code; code=$(esoap "$EV" "<tev:CreatePullPointSubscription>$filter<tev:InitialTerminationTime>$term</tev:InitialTerminationTime></tev:CreatePullPointSubscription>" "$WORK/sub.xml")
    [ "$code" = 200 ] || { log "CreatePullPointSubscription → $code $(fault_subcodes "$WORK/sub.xml")"; return 1; }
    xpath "$WORK/sub.xml" 'string(//*[local-name()="SubscriptionReference"]/*[local-name()="Address"])'
}
# pull ADDRESS TIMEOUT LIMIT [OUT]: prints the HTTP status
pull() { esoap "$1" "<tev:PullMessages><tev:Timeout>$2</tev:Timeout><tev:MessageLimit>$3</tev:MessageLimit></tev:PullMessages>" "${4:-$R}"; }
# messages FILE TOPIC: how many notifications of that topic (local path) the response holds
messages() { xpath "$1" "count(//*[local-name()='NotificationMessage'][contains(*[local-name()='Topic'], '$2')])"; }
# wait_message ADDRESS TOPIC XPATH-PREDICATE SECONDS: pulls until a message matches
wait_message() {
    local addr=$1 topic=$2 pred=$3 end=$((SECONDS + $4))
    while [ $SECONDS -lt $end ]; do
        pull "$addr" PT2S 50 "$WORK/w.xml" >/dev/null || return 1
        [ "$(xpath "$WORK/w.xml" "count(//*[local-name()='NotificationMessage'][contains(*[local-name()='Topic'], '$topic')]$pred)")" -ge 1 ] 2>/dev/null && return 0
    done
    return 1
}

# ---- capabilities and the topic set ----
code=$(esoap "$EV" '<tev:GetServiceCapabilities/>')
check "GetServiceCapabilities → 200, schema-valid" [ "$code" = 200 ] && valid "$R"
check "MaxPullPoints is 32, no pausable subscriptions" \
    [ "$(v "//$(E Capabilities)/@MaxPullPoints")/$(v "//$(E Capabilities)/@WSPausableSubscriptionManagerInterfaceSupport")" = "32/false" ]
code=$(esoap "$EV" '<tev:GetEventProperties/>')
check "GetEventProperties → 200, schema-valid" [ "$code" = 200 ] && valid "$R"
check "the topic set has MotionAlarm as a property with its State" \
    [ "$(v "//$(E TopicSet)/$(E VideoSource)/$(E MotionAlarm)/$(E MessageDescription)/@IsProperty")/$(v "//$(E MotionAlarm)//$(E Data)/$(E SimpleItemDescription)/@Name")" = "true/State" ]
check "…and KeyStatus, AuthFailed, ProfileChanged, ConfigurationChanged" \
    [ "$(v "count(//$(E KeyStatus)) + count(//$(E AuthFailed)) + count(//$(E ProfileChanged)) + count(//$(E ConfigurationChanged))")" = 4 ]
check "ConcreteSet and ItemFilter are the listed dialects" \
    bash -c 'grep -q "topicExpression/ConcreteSet" "$1" && grep -q "messageContentFilter/ItemFilter" "$1"' _ "$R"
code=$(soap '<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>' "$WORK/svc.xml")
check "GetServices lists the events service" \
    [ "$(xpath "$WORK/svc.xml" 'count(//*[local-name()="Service"][*[local-name()="Namespace"]="http://www.onvif.org/ver10/events/wsdl"])')" = 1 ]
code=$(soap '<tds:GetCapabilities><tds:Category>Events</tds:Category></tds:GetCapabilities>' "$WORK/caps.xml")
check "GetCapabilities(Events) gives the event service address and pull points" \
    [ "$code/$(xpath "$WORK/caps.xml" 'string(//*[local-name()="Events"]/*[local-name()="XAddr"])')/$(xpath "$WORK/caps.xml" 'string(//*[local-name()="Events"]/*[local-name()="WSPullPointSupport"])')" = "200/$EV/true" ]

# ---- access ----
code=$(SOAP_AUTH=none esoap "$EV" '<tev:CreatePullPointSubscription/>')
check "CreatePullPointSubscription without credentials → 401" [ "$code" = 401 ]

# ---- a subscription to everything: motion on the moving pattern ----
ALL=$(subscribe "" PT120S)
check "CreatePullPointSubscription answers a subscription address" \
    bash -c '[[ "$1" == http://127.0.0.1:*/onvif/event_subscription/* ]]' _ "$ALL"
check "…schema-valid" valid "$WORK/sub.xml"
code=$(pull "$ALL" PT5S 100 "$WORK/first.xml"); cp "$WORK/first.xml" "$R"
check "PullMessages → 200, schema-valid" [ "$code" = 200 ] && valid "$R"
check "the first pull has the current motion state (Initialized)" \
    [ "$(xpath "$R" "count(//*[local-name()='NotificationMessage'][contains(*[local-name()='Topic'],'MotionAlarm')]//*[local-name()='Message'][@PropertyOperation='Initialized'])")" -ge 1 ]
motion_true="[.//*[local-name()='SimpleItem'][@Name='State'][@Value='true']]"
motion_seen() { # in the first pull, or in one of the next
    [ "$(xpath "$WORK/first.xml" "count(//*[local-name()='NotificationMessage'][contains(*[local-name()='Topic'],'MotionAlarm')]$motion_true)")" -ge 1 ] ||
        wait_message "$ALL" MotionAlarm "$motion_true" 15
}
check "motion on the moving test pattern: State true" motion_seen

# ---- a content filter (ItemFilter): only the true motion state ----
CF='<tev:CreatePullPointSubscription><tev:Filter><wsnt:TopicExpression Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:VideoSource/MotionAlarm</wsnt:TopicExpression><wsnt:MessageContent Dialect="http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter">boolean(//tt:SimpleItem[@Name="State" and @Value="true"])</wsnt:MessageContent></tev:Filter><tev:InitialTerminationTime>PT60S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>'
code=$(esoap "$EV" "$CF" "$WORK/sub.xml")
TRUE_ONLY=$(xpath "$WORK/sub.xml" 'string(//*[local-name()="SubscriptionReference"]/*[local-name()="Address"])')
check "a subscription with an ItemFilter content filter is created" [ "$code" = 200 ] && [ -n "$TRUE_ONLY" ]
check "…it delivers a true motion state" \
    wait_message "$TRUE_ONLY" MotionAlarm "[.//*[local-name()='SimpleItem'][@Name='State'][@Value='true']]" 15
check "…and never a false one" [ "$(xpath "$WORK/w.xml" "count(//*[local-name()='SimpleItem'][@Name='State'][@Value='false'])")" = 0 ]
code=$(esoap "$EV" '<tev:CreatePullPointSubscription><tev:Filter><wsnt:MessageContent Dialect="http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter">count(//tt:SimpleItem) &gt; 2</wsnt:MessageContent></tev:Filter></tev:CreatePullPointSubscription>')
check "an unsupported content expression → 400 InvalidMessageContentExpression" [ "$code" = 400 ] && grep -q 'InvalidMessageContentExpressionFault' "$R"

# ---- SetSynchronizationPoint re-sends the states ----
pull "$ALL" PT0S 1000 >/dev/null
code=$(esoap "$ALL" '<tev:SetSynchronizationPoint/>')
check "SetSynchronizationPoint → 200, schema-valid" [ "$code" = 200 ] && valid "$R"
pull "$ALL" PT2S 1000 >/dev/null
check "…the next pull has MotionAlarm Initialized again" \
    [ "$(xpath "$R" "count(//*[local-name()='Message'][@PropertyOperation='Initialized'])")" -ge 1 ]

# ---- a topic filter: only profile changes ----
PROF=$(subscribe "tns1:Media/ProfileChanged" PT60S)
check "a filtered subscription is created" [ -n "$PROF" ]
T0=$(date +%s%N)
( sleep 1; soap '<trt:CreateProfile><trt:Name>EventsTest</trt:Name><trt:Token>EvProfile</trt:Token></trt:CreateProfile>' "$WORK/cp.xml" >/dev/null ) &
CREATOR=$!
code=$(pull "$PROF" PT10S 10)
T1=$(date +%s%N); wait "$CREATOR"
check "a waiting PullMessages returns with the ProfileChanged message" \
    [ "$code/$(messages "$R" ProfileChanged)" = "200/1" ]
check "…naming the profile" [ "$(v "//$(E SimpleItem)[@Name='Token']/@Value")" = EvProfile ]
check "…well before the 10 s timeout ($(( (T1 - T0) / 1000000 )) ms)" [ $(( (T1 - T0) / 1000000 )) -lt 5000 ]
check "…and no motion message in it" [ "$(messages "$R" MotionAlarm)" = 0 ]
T0=$(date +%s%N); code=$(pull "$PROF" PT2S 10); T1=$(date +%s%N)
check "an empty pull waits for its timeout (2 s: $(( (T1 - T0) / 1000000 )) ms) and returns nothing" \
    [ "$code/$(messages "$R" ProfileChanged)" = "200/0" ] && [ $(( (T1 - T0) / 1000000 )) -ge 1800 ]

# ---- bad filters and arguments ----
code=$(esoap "$EV" '<tev:CreatePullPointSubscription><tev:Filter><wsnt:TopicExpression Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:NoSuch/Topic</wsnt:TopicExpression></tev:Filter></tev:CreatePullPointSubscription>')
check "a topic the device does not have → 400 TopicNotSupported ($(fault_subcodes "$R"))" [ "$code" = 400 ] && grep -q 'TopicNotSupportedFault' "$R"
code=$(esoap "$EV" '<tev:CreatePullPointSubscription><tev:InitialTerminationTime>tomorrow</tev:InitialTerminationTime></tev:CreatePullPointSubscription>')
check "an unreadable termination time → 400 UnacceptableInitialTerminationTime" [ "$code" = 400 ] && grep -q 'UnacceptableInitialTerminationTimeFault' "$R"
code=$(pull "$ALL" PT1S 0)
check "MessageLimit 0 → 400 InvalidArgVal" [ "$code/$(fault_subcodes "$R")" = "400/ter:InvalidArgVal" ]
code=$(pull "$ALL" forever 5)
check "a Timeout that is no duration → 400 InvalidArgVal" [ "$code/$(fault_subcodes "$R")" = "400/ter:InvalidArgVal" ]
code=$(pull "http://127.0.0.1:$HTTP_PORT/onvif/event_subscription/999999999" PT1S 5)
check "PullMessages on an unknown subscription → ResourceUnknown ($code $(fault_subcodes "$R"))" [ "$code" = 400 ] && grep -q 'ResourceUnknownFault' "$R"
check "…schema-valid fault" valid "$R"

# ---- security producers ----
SEC=$(subscribe "tns1:Device/SecurityPolicy/AuthFailed|tns1:Advancedsecurity/Keystore/KeyStatus" PT120S)
for _ in $(seq 1 7); do
    curl -s -o /dev/null --digest -u "intruder:wrong-password" -X POST -H 'Content-Type: application/soap+xml' \
        --data-binary '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetUsers xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>' "$URL"
done
check "a burst of failed logins (an unknown user: the Administrator is not locked out) → AuthFailed with the source address" \
    wait_message "$SEC" AuthFailed "[.//*[local-name()='SimpleItem'][@Name='SourceIPv4'][@Value='127.0.0.1']][.//*[local-name()='Source']/*[@Name='NetworkInterface']]" 5
code=$(esoap "http://127.0.0.1:$HTTP_PORT/onvif/security_service" '<tas:CreateRSAKeyPair><tas:KeyLength>2048</tas:KeyLength></tas:CreateRSAKeyPair>' "$WORK/key.xml")
KEY=$(xpath "$WORK/key.xml" 'string(//*[local-name()="KeyID"])')
check "CreateRSAKeyPair → 200 ($KEY)" [ "$code" = 200 ] && [ -n "$KEY" ]
check "KeyStatus: generating" wait_message "$SEC" KeyStatus "[.//*[local-name()='SimpleItem'][@Name='NewStatus'][@Value='generating']]" 5
check "KeyStatus: ok, from generating" wait_message "$SEC" KeyStatus "[.//*[local-name()='SimpleItem'][@Name='NewStatus'][@Value='ok']][.//*[local-name()='SimpleItem'][@Name='OldStatus'][@Value='generating']]" 60

# ---- Renew, Unsubscribe, expiry ----
code=$(esoap "$PROF" '<wsnt:Renew><wsnt:TerminationTime>PT300S</wsnt:TerminationTime></wsnt:Renew>')
check "Renew → 200, schema-valid" [ "$code" = 200 ] && valid "$R"
code=$(esoap "$PROF" '<wsnt:Unsubscribe/>')
check "Unsubscribe → 200, schema-valid" [ "$code" = 200 ] && valid "$R"
code=$(pull "$PROF" PT1S 5)
check "PullMessages after Unsubscribe → ResourceUnknown" [ "$code" = 400 ] && grep -q 'ResourceUnknownFault' "$R"
SHORT=$(subscribe "" PT2S)
sleep 3
code=$(pull "$SHORT" PT1S 5)
check "a subscription past its termination time is gone" [ "$code" = 400 ] && grep -q 'ResourceUnknownFault' "$R"
stop_daemon
check "opennvtd exits cleanly" [ "$DAEMON_RC" = 0 ]

# ---- a still picture: no motion ----
STATE=$WORK/still start_daemon --config "$WORK/opennvtd.xml" --source testsrc:still
EV="http://127.0.0.1:$HTTP_PORT/onvif/event_service"
STILL=$(subscribe "tns1:VideoSource/MotionAlarm" PT60S)
check "on a still picture the motion state is false" \
    wait_message "$STILL" MotionAlarm "[.//*[local-name()='SimpleItem'][@Name='State'][@Value='false']]" 10
if wait_message "$STILL" MotionAlarm "[.//*[local-name()='SimpleItem'][@Name='State'][@Value='true']]" 4; then
    fail "…and it stays false"
else
    pass "…and it stays false"
fi
stop_daemon
finish
