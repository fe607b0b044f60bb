#!/usr/bin/env bash
# Access control end to end: first-Administrator provisioning (network and
# local), HTTP Digest (curl and hand-computed), WS-UsernameToken (gSOAP client
# and hand-built tokens), the ONVIF default access policy per user level,
# user-management faults and password policy, failed-login lockout, secrets at
# rest, crash safety of the user store, and security/anonymous-media.
# The IP address filter is in ipfilter.sh.
NO_ADMIN=1   # the first part is a fresh device; provisioning is tested here
. "$(dirname "$0")/lib.sh"
R=$WORK/resp.xml   # soap()'s default output
T0=$SECONDS

WSSE_NS=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd
WSU_NS=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd
UT_PROFILE=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0
B64_ENC=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary

# envelope HEADER BODY: a SOAP 1.2 request with a Header
envelope() {
    printf '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:wsse="%s" xmlns:wsu="%s"><s:Header>%s</s:Header><s:Body>%s</s:Body></s:Envelope>' \
        "$WSSE_NS" "$WSU_NS" "$1" "$2"
}
# post FILE OUT [curl args...]: POSTs FILE as is (no credentials unless in the
# args); prints the HTTP status (000 when no response).
post() {
    local f=$1 out=$2; shift 2
    curl -sS --max-time 20 -o "$out" -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml; charset=utf-8' \
        "$@" --data-binary @"$f" "$URL" 2>>"$WORK/curl.err" || true
}
# ut_digest NONCE_B64 CREATED PASSWORD: Base64(SHA-1(nonce | created | password))
ut_digest() { { printf '%s' "$1" | base64 -d; printf '%s%s' "$2" "$3"; } | openssl dgst -sha1 -binary | base64; }
# ut_header USER PASSWORD CREATED [NONCE_B64 [Text]]: a wsse:Security header
ut_header() {
    local user=$1 pass=$2 created=$3 nonce=${4:-$(openssl rand -base64 16)} kind=${5:-Digest} pw
    if [ "$kind" = Text ]; then pw=$pass; else pw=$(ut_digest "$nonce" "$created" "$pass"); fi
    printf '<wsse:Security s:mustUnderstand="1"><wsse:UsernameToken><wsse:Username>%s</wsse:Username><wsse:Password Type="%s#Password%s">%s</wsse:Password><wsse:Nonce EncodingType="%s">%s</wsse:Nonce><wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security>' \
        "$user" "$UT_PROFILE" "$kind" "$pw" "$B64_ENC" "$nonce" "$created"
}
md5hex() { printf '%s' "$1" | openssl dgst -md5 -r | cut -d' ' -f1; }
# challenge FILE: POSTs FILE without credentials; sets NONCE and OPAQUE from
# the MD5 challenge of the 401 (headers in $WORK/challenge.txt)
challenge() {
    curl -sS --max-time 10 -D "$WORK/challenge.txt" -o /dev/null -X POST -H 'Content-Type: application/soap+xml' \
        --data-binary @"$1" "$URL" >/dev/null
    local line
    line=$(tr -d '\r' < "$WORK/challenge.txt" | grep -i '^WWW-Authenticate: Digest .*algorithm=MD5' | head -1)
    NONCE=$(sed -n 's/.* nonce="\([^"]*\)".*/\1/p' <<< "$line")
    OPAQUE=$(sed -n 's/.* opaque="\([^"]*\)".*/\1/p' <<< "$line")
}
# digest_authz USER PASS NONCE URI NC CNONCE: an RFC 7616 MD5 qop=auth header
digest_authz() {
    local ha1 ha2 resp
    ha1=$(md5hex "$1:OpenNVT:$2"); ha2=$(md5hex "POST:$4"); resp=$(md5hex "$ha1:$3:$5:$6:auth:$ha2")
    printf 'Authorization: Digest username="%s", realm="OpenNVT", nonce="%s", uri="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s", response="%s", opaque="%s"' \
        "$1" "$3" "$4" "$5" "$6" "$resp" "$OPAQUE"
}
user_xml() { # user_xml NAME PASSWORD LEVEL
    printf '<tds:User><tt:Username>%s</tt:Username><tt:Password>%s</tt:Password><tt:UserLevel>%s</tt:UserLevel></tds:User>' "$1" "$2" "$3"
}
as_user() { SOAP_CRED="$1:$2" soap "$3" "${4:-$R}"; }   # as_user NAME PASS BODY [OUT]
anon() { SOAP_AUTH=none soap "$@"; }
status_fault() { printf '%s/%s' "$1" "$(fault_subcodes "${2:-$R}")"; }
# expect CODE WANT DESCRIPTION: WANT is 200 (the response in $R must then be
# schema-valid) or STATUS/SUBCODES of a fault (also validated).
expect() {
    local code=$1 want=$2 what=$3 got
    if [ "$want" = 200 ]; then got=$code; else got=$(status_fault "$code"); fi
    if [ "$got" = "$want" ] && valid "$R"; then pass "$what"; else fail "$what (got $got)"; fi
}
not() { ! "$@"; }
count_users() { # count_users NAME...: how many of the names GetUsers lists
    local n=0 u
    soap '<tds:GetUsers/>' "$WORK/getusers.xml" >/dev/null
    for u in "$@"; do n=$((n + $(xpath "$WORK/getusers.xml" "count(//*[local-name()='User'][*[local-name()='Username']='$u'])"))); done
    echo "$n"
}
has_user() { soap '<tds:GetUsers/>' "$WORK/getusers.xml" >/dev/null; [ "$(xpath "$WORK/getusers.xml" "count(//*[local-name()='User'][*[local-name()='Username']='$1'])")" = 1 ]; }
digest_ok() { [ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --digest -u "$1:$2" -X POST "${@:3}" -H 'Content-Type: application/soap+xml' --data-binary @"$WORK/getinfo.xml" "$URL" 2>/dev/null)" = 200 ]; }
log_since() { tail -c +"$(( $1 + 1 ))" "$WORK/daemon.log"; }   # log_since BYTE_OFFSET
wait_until() { # wait_until EPOCH_SECOND (bounded: at most 30 s)
    local n=0
    while [ "$(date +%s)" -lt "$1" ] && [ "$n" -lt 60 ]; do sleep 0.5; n=$((n + 1)); done
}
log_size() { stat -c %s "$WORK/daemon.log"; }

envelope '' '<tds:GetDeviceInformation/>' > "$WORK/getinfo.xml"

# ---- 1. A fresh device: no Administrator, first one created over the network ----
STATE=$WORK/fresh
start_daemon
code=$(anon '<tds:GetSystemDateAndTime/>' "$R")
expect "$code" 200 "fresh: GetSystemDateAndTime without credentials → 200 (schema-valid)"
code=$(curl -sS --max-time 10 -D "$WORK/h401.txt" -o "$R" -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml' \
    --data-binary @"$WORK/getinfo.xml" "$URL")
tr -d '\r' < "$WORK/h401.txt" > "$WORK/h401"
expect "$code" 401/ter:NotAuthorized "fresh: GetDeviceInformation without credentials → 401"
check "401 carries two WWW-Authenticate Digest headers" [ "$(grep -ci '^WWW-Authenticate: Digest ' "$WORK/h401")" = 2 ]
check "…one with algorithm=SHA-256" grep -qiE '^WWW-Authenticate: Digest .*algorithm=SHA-256(,|$)' "$WORK/h401"
check "…one with algorithm=MD5" grep -qiE '^WWW-Authenticate: Digest .*algorithm=MD5(,|$)' "$WORK/h401"
check "…both with qop=\"auth\"" [ "$(grep -ci '^WWW-Authenticate: Digest .*qop="auth"' "$WORK/h401")" = 2 ]
check "…SHA-256 offered first" bash -c "grep -i '^WWW-Authenticate' '$WORK/h401' | head -1 | grep -q 'SHA-256'"
code=$(anon "<tds:CreateUsers>$(user_xml firstop 'Oper8tor-Key-1' Operator)</tds:CreateUsers>" "$R")
expect "$code" 400/ter:NotAuthorized "fresh: CreateUsers creating only an Operator → 400 NotAuthorized"
code=$(anon "<tds:CreateUsers>$(user_xml spy 'Spy-Agent-K3y' Operator)$(user_xml first 'F1rst-Admin-Key' Administrator)</tds:CreateUsers>" "$R")
expect "$code" 400/ter:NotAuthorized "fresh: CreateUsers of an Administrator plus an Operator → refused (exactly one Administrator first)"
off=$(log_size)
code=$(anon "<tds:CreateUsers>$(user_xml boss 'B0ss-Strong-Key' Administrator)</tds:CreateUsers>" "$R")
expect "$code" 200 "fresh: CreateUsers of an Administrator → 200"
check "daemon log names the source address of the first Administrator" \
    bash -c "grep 'boss' <<< \"\$1\" | grep -q '127\.0\.0\.1'" _ "$(log_since "$off")"
code=$(anon "<tds:CreateUsers>$(user_xml late 'L8te-Comer-Key' Administrator)</tds:CreateUsers>" "$R")
expect "$code" 401/ter:NotAuthorized "afterwards an unauthenticated CreateUsers → 401"
code=$(SOAP_CRED='boss:B0ss-Strong-Key' soap '<tds:GetUsers/>' "$R")
check "the new Administrator works (GetUsers 200), the Operator was not created" \
    [ "$code/$(xpath "$R" 'count(//*[local-name()="User"])')" = 200/1 ]
# Regression: an operation start tag gSOAP cannot read (duplicate attribute)
# once skipped the gate while dispatch still ran the handler.
code=$(anon '<tds:GetUsers a="1" a="2"></tds:GetUsers>' "$R")
check "unreadable operation start tag without credentials → refused, never served ($code)" \
    bash -c "[ '$code' != 200 ] && ! grep -q GetUsersResponse '$R'"
code=$(anon "<tds:CreateUsers x=\"1\" x=\"2\">$(user_xml evil 'Ev1l-Admin-Key' Administrator)</tds:CreateUsers>" "$R")
SOAP_CRED='boss:B0ss-Strong-Key' soap '<tds:GetUsers/>' "$WORK/u.xml" >/dev/null
check "…and a CreateUsers hidden that way creates nobody (GetUsers lists boss only)" \
    [ "$(xpath "$WORK/u.xml" 'count(//*[local-name()="User"])')/$(xpath "$WORK/u.xml" 'string(//*[local-name()="Username"])')" = 1/boss ]
# anonymous-media default (false): Media is refused before the handler
code=$(anon '<trt:GetProfiles/>' "$R")
expect "$code" 401/ter:NotAuthorized "anonymous-media default: unauthenticated trt:GetProfiles → 401"
code=$(anon '<tds:GetDeviceInformation/>' "$R")
expect "$code" 401/ter:NotAuthorized "anonymous-media default: unauthenticated READ_SYSTEM → 401"
stop_daemon

# ---- 2. security/first-admin-over-network false; local provisioning ----
cat > "$WORK/main.xml" <<'XML'
<opennvt>
  <security>
    <first-admin-over-network>false</first-admin-over-network>
    <digest-nonce-lifetime-s>10</digest-nonce-lifetime-s>
  </security>
</opennvt>
XML
STATE=$WORK/state
start_daemon --config "$WORK/main.xml"
code=$(anon "<tds:CreateUsers>$(user_xml boss 'B0ss-Strong-Key' Administrator)</tds:CreateUsers>" "$R")
check "first-admin-over-network=false: network CreateUsers of an Administrator refused ($code)" [ "$code" = 401 -o "$code" = 400 ]
check "…the daemon log tells how to provision instead" grep -q -- '--create-admin' "$WORK/daemon.log"
out=$(create_admin "$ADMIN_USER" "$ADMIN_PASS") && rc=0 || rc=$?
check "--create-admin while the daemon runs → non-zero (state dir in use)" [ "$rc" -ne 0 ]
check "…and says so" grep -qi 'in use' <<< "$out"
stop_daemon
out=$(create_admin "$ADMIN_USER" password) && rc=0 || rc=$?
check "--create-admin with a weak password → non-zero" [ "$rc" -ne 0 ]
check "…with a reason ($out)" grep -qi 'weak' <<< "$out"
out=$(create_admin "$ADMIN_USER" "$ADMIN_PASS") && rc=0 || rc=$?
check "--create-admin with a good password → 0" [ "$rc" = 0 ]
unset NO_ADMIN
export ONVIF_USER=$ADMIN_USER ONVIF_PASSWORD=$ADMIN_PASS
start_daemon --config "$WORK/main.xml"
code=$(soap '<tds:GetUsers/>' "$R")
check "locally provisioned Administrator: GetUsers 200, only that user" \
    [ "$code/$(xpath "$R" 'string(//*[local-name()="User"]/*[local-name()="Username"])')/$(xpath "$R" 'count(//*[local-name()="User"])')" = "200/admin/1" ]
check "GetUsers never shows a password" [ "$(xpath "$R" 'count(//*[local-name()="Password"])')" = 0 ]

# ---- 5. User levels and the default access policy ----
OP=op1 OP_PASS='Oper8tor-Key-x'
VU=viewer VU_PASS='Look-0nly-Key'
check "gSOAP client (UsernameToken) creates an Operator" "$ONVIF_CLIENT" create-user "$URL" "$OP" "$OP_PASS" 1 >/dev/null
check "gSOAP client (UsernameToken) creates a User" "$ONVIF_CLIENT" create-user "$URL" "$VU" "$VU_PASS" 2 >/dev/null
"$ONVIF_CLIENT" users "$URL" > "$WORK/users.txt"
check "gSOAP client users: right password works and lists all three with levels" \
    [ "$(sort "$WORK/users.txt" | tr '\n' ,)" = "user=admin 0,user=op1 1,user=viewer 2," ]
code=$(as_user "$VU" "$VU_PASS" '<tds:GetDeviceInformation/>')
expect "$code" 200 "User: GetDeviceInformation 200"
code=$(as_user "$VU" "$VU_PASS" '<tds:GetUsers/>')
expect "$code" "400/ter:NotAuthorized" "User: GetUsers → 400 ter:NotAuthorized"
code=$(as_user "$VU" "$VU_PASS" '<tds:SetScopes><tds:Scopes>onvif://www.onvif.org/name/x</tds:Scopes></tds:SetScopes>')
expect "$code" "400/ter:NotAuthorized" "User: SetScopes → 400 ter:NotAuthorized"
code=$(as_user "$OP" "$OP_PASS" '<tds:GetUsers/>')
expect "$code" "400/ter:NotAuthorized" "Operator: GetUsers → 400 ter:NotAuthorized"
code=$(as_user "$OP" "$OP_PASS" "<tds:CreateUsers>$(user_xml sneaky 'Sn3aky-Admin-Pw' Administrator)</tds:CreateUsers>")
expect "$code" "400/ter:NotAuthorized" "Operator: CreateUsers → 400 ter:NotAuthorized"
code=$(as_user "$OP" "$OP_PASS" '<tds:GetDeviceInformation/>')
expect "$code" 200 "Operator: GetDeviceInformation 200"
code=$(soap '<tds:GetUsers/>' "$R")
expect "$code" 200 "Administrator: GetUsers 200"
check "refusals by level are logged with user and operation" grep -q "user 'viewer' (User) refused tds:GetUsers" "$WORK/daemon.log"

# ---- 4. WS-UsernameToken ----
check "gSOAP client with the right password: GetUsers" "$ONVIF_CLIENT" users "$URL" >/dev/null
ONVIF_PASSWORD=wrong-Passw0rd "$ONVIF_CLIENT" users "$URL" > "$WORK/wrong.txt" && rc=0 || rc=$?
check "gSOAP client with a wrong password → fault ter:NotAuthorized" \
    [ "$rc/$(grep '^fault.subcode1=' "$WORK/wrong.txt")" = 1/fault.subcode1=ter:NotAuthorized ]
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
envelope "$(ut_header "$ADMIN_USER" wrong-Passw0rd "$(now)")" '<tds:GetUsers/>' > "$WORK/ut-wrong.xml"
code=$(post "$WORK/ut-wrong.xml" "$R")
expect "$code" "400/ter:NotAuthorized" "curl, token with a wrong password → 400 ter:NotAuthorized"
envelope "$(ut_header "$ADMIN_USER" "$ADMIN_PASS" "$(now)")" '<tds:GetUsers/>' > "$WORK/ut.xml"
code=$(post "$WORK/ut.xml" "$R")
expect "$code" 200 "hand-built token (openssl SHA-1 digest) → 200"
code=$(post "$WORK/ut.xml" "$R")
expect "$code" "400/ter:NotAuthorized" "the identical token again (replay) → 400 ter:NotAuthorized"
envelope "$(ut_header "$ADMIN_USER" "$ADMIN_PASS" "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)")" '<tds:GetUsers/>' > "$WORK/ut-old.xml"
code=$(post "$WORK/ut-old.xml" "$R")
expect "$code" "400/ter:NotAuthorized" "token Created one hour ago → 400 ter:NotAuthorized"
envelope "$(ut_header "$ADMIN_USER" "$ADMIN_PASS" "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)")" '<tds:GetUsers/>' > "$WORK/ut-future.xml"
code=$(post "$WORK/ut-future.xml" "$R")
expect "$code" "400/ter:NotAuthorized" "token Created one hour ahead → 400 ter:NotAuthorized"
envelope "$(ut_header "$ADMIN_USER" "$ADMIN_PASS" "$(date -u +%Y-%m-%dT%H:%M:%S.%3N+00:00)")" '<tds:GetUsers/>' > "$WORK/ut-ms.xml"
code=$(post "$WORK/ut-ms.xml" "$R")
expect "$code" 200 "token Created with milliseconds and +00:00 → 200"
envelope "$(ut_header "$ADMIN_USER" "$ADMIN_PASS" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)")" '<tds:GetUsers/>' > "$WORK/ut-msz.xml"
code=$(post "$WORK/ut-msz.xml" "$R")
expect "$code" 200 "token Created with milliseconds and Z → 200"
envelope "$(ut_header "$ADMIN_USER" "$ADMIN_PASS" "$(now)" '' Text)" '<tds:GetUsers/>' > "$WORK/ut-text.xml"
code=$(post "$WORK/ut-text.xml" "$R")
expect "$code" "400/ter:NotAuthorized" "PasswordText token over plain HTTP → 400 ter:NotAuthorized"
envelope "$(ut_header "$ADMIN_USER" "$ADMIN_PASS" "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)")" '<tds:GetSystemDateAndTime/>' > "$WORK/ut-gst.xml"
code=$(post "$WORK/ut-gst.xml" "$R")
expect "$code" 200 "stale token attached to GetSystemDateAndTime is ignored → 200"
envelope "$(ut_header "$ADMIN_USER" wrong-Passw0rd "$(now)")" '<tds:GetSystemDateAndTime/>' > "$WORK/ut-gst2.xml"
code=$(post "$WORK/ut-gst2.xml" "$R")
expect "$code" 200 "wrong-password token attached to GetSystemDateAndTime is ignored → 200"
envelope "$(ut_header "$VU" "$VU_PASS" "$(now)")" '<tds:GetUsers/>' > "$WORK/ut-user.xml"
code=$(post "$WORK/ut-user.xml" "$R")
expect "$code" "400/ter:NotAuthorized" "token of a User level user on GetUsers → 400 ter:NotAuthorized (level, not credentials)"

# ---- 6. User operations: faults, policies, persistence ----
code=$(soap "<tds:CreateUsers>$(user_xml "$OP" 'Other-Passw0rd-1' User)</tds:CreateUsers>")
expect "$code" "400/ter:OperationProhibited ter:UsernameClash" "CreateUsers of an existing name → 400 OperationProhibited/UsernameClash"
code=$(soap "<tds:CreateUsers>$(user_xml "$(printf 'u%.0s' $(seq 1 33))" 'Long-Name-Pw-1' User)</tds:CreateUsers>")
expect "$code" "400/ter:OperationProhibited ter:UsernameTooLong" "33-byte user name → 400 OperationProhibited/UsernameTooLong"
code=$(soap "<tds:CreateUsers>$(user_xml longpw "Aa1$(printf 'x%.0s' $(seq 1 62))" User)</tds:CreateUsers>")
expect "$code" "400/ter:OperationProhibited ter:PasswordTooLong" "65-byte password → 400 OperationProhibited/PasswordTooLong"
code=$(soap "<tds:CreateUsers>$(user_xml maxpw "Aa1$(printf 'x%.0s' $(seq 1 61))" User)</tds:CreateUsers>")
expect "$code" 200 "64-byte password accepted"
for weak in weakpassword 'Short1a' 'NoDigitsHere' 'P@ssw0rd1' 'Weakling-Weakling1'; do
    code=$(soap "<tds:CreateUsers>$(user_xml weakling "$weak" User)</tds:CreateUsers>")
    expect "$code" "400/ter:OperationProhibited ter:PasswordTooWeak" "weak password '$weak' → 400 OperationProhibited/PasswordTooWeak"
done
code=$(soap "<tds:CreateUsers>$(user_xml nobody 'N0body-Key-x' Anonymous)</tds:CreateUsers>")
expect "$code" "400/ter:OperationProhibited ter:AnonymousNotAllowed" "level Anonymous → 400 OperationProhibited/AnonymousNotAllowed"
code=$(soap '<tds:DeleteUsers><tds:Username>ghost</tds:Username></tds:DeleteUsers>')
expect "$code" "400/ter:InvalidArgVal ter:UsernameMissing" "DeleteUsers of an unknown user → 400 InvalidArgVal/UsernameMissing"
code=$(soap "<tds:DeleteUsers><tds:Username>$ADMIN_USER</tds:Username></tds:DeleteUsers>")
# Core, DeleteUsers and SetUser: "env:Sender - ter:InvalidArgVal - ter:FixedUser".
expect "$code" "400/ter:InvalidArgVal ter:FixedUser" "DeleteUsers of the last Administrator → 400 InvalidArgVal/FixedUser"
check "…and the Administrator is still there" has_user "$ADMIN_USER"
code=$(soap "<tds:SetUser>$(user_xml "$ADMIN_USER" 'Demoted-Adm1n-Key' Operator)</tds:SetUser>")
expect "$code" "400/ter:InvalidArgVal ter:FixedUser" "SetUser demoting the last Administrator → 400 InvalidArgVal/FixedUser"
check "…and it is still an Administrator with its password" digest_ok "$ADMIN_USER" "$ADMIN_PASS"
code=$(soap "<tds:SetUser>$(user_xml ghost 'Gh0st-Key-xyz' User)</tds:SetUser>")
expect "$code" "400/ter:InvalidArgVal ter:UsernameMissing" "SetUser of an unknown user → 400 InvalidArgVal/UsernameMissing"
code=$(soap "<tds:SetUser>$(user_xml "$VU" 'New-View3r-Key' User)</tds:SetUser>")
expect "$code" 200 "SetUser changing the User's password → 200"
check "…the new password works" digest_ok "$VU" 'New-View3r-Key'
check "…the old one does not" not digest_ok "$VU" "$VU_PASS"
code=$(soap "<tds:SetUser>$(user_xml "$VU" "$VU_PASS" User)</tds:SetUser>")
expect "$code" "400/ter:OperationProhibited ter:PasswordTooWeak" "SetUser back to the previous password (history) → PasswordTooWeak"
VU_PASS='New-View3r-Key'
code=$(soap "<tds:CreateUsers>$(user_xml goodone 'G00d-One-Key' User)$(user_xml badone weak User)</tds:CreateUsers>")
expect "$code" "400/ter:OperationProhibited ter:PasswordTooWeak" "CreateUsers good+bad → PasswordTooWeak"
check "…and neither was created (all-or-nothing)" [ "$(count_users goodone badone)" = 0 ]
code=$(soap "<tds:CreateUsers>$(user_xml twin 'Tw1n-Key-abc' User)$(user_xml twin 'Tw1n-Key-def' User)</tds:CreateUsers>")
expect "$code" "400/ter:OperationProhibited ter:UsernameClash" "CreateUsers with the same name twice → UsernameClash, nothing created"
check "…twin absent" [ "$(count_users twin)" = 0 ]

# Password complexity / history / auth-failure configuration
code=$(soap '<tds:GetPasswordComplexityOptions/>')
expect "$code" 200 "GetPasswordComplexityOptions 200 (schema-valid)"
check "…MinLenRange 8..64" [ "$(xpath "$R" 'string(//*[local-name()="MinLenRange"]/*[local-name()="Min"])')-$(xpath "$R" 'string(//*[local-name()="MinLenRange"]/*[local-name()="Max"])')" = 8-64 ]
code=$(soap '<tds:GetPasswordComplexityConfiguration/>')
check "GetPasswordComplexityConfiguration defaults (8/1/1/0/true)" \
    [ "$code/$(xpath "$R" 'concat(string(//*[local-name()="MinLen"]),"/",string(//*[local-name()="Uppercase"]),"/",string(//*[local-name()="Number"]),"/",string(//*[local-name()="SpecialChars"]),"/",string(//*[local-name()="BlockUsernameOccurrence"]))')" = "200/8/1/1/0/true" ]
check "…schema-valid" valid "$R"
code=$(soap '<tds:SetPasswordComplexityConfiguration><tds:MinLen>12</tds:MinLen><tds:Uppercase>2</tds:Uppercase><tds:Number>2</tds:Number><tds:SpecialChars>1</tds:SpecialChars><tds:BlockUsernameOccurrence>true</tds:BlockUsernameOccurrence></tds:SetPasswordComplexityConfiguration>')
expect "$code" 200 "SetPasswordComplexityConfiguration 200"
code=$(soap '<tds:SetPasswordComplexityConfiguration><tds:MinLen>4</tds:MinLen></tds:SetPasswordComplexityConfiguration>')
expect "$code" "400/ter:InvalidArgVal" "MinLen 4 (below the range) → 400 InvalidArgVal"
code=$(soap '<tds:SetPasswordComplexityConfiguration><tds:MinLen>65</tds:MinLen></tds:SetPasswordComplexityConfiguration>')
expect "$code" "400/ter:InvalidArgVal" "MinLen 65 (above the range) → 400 InvalidArgVal"
code=$(soap "<tds:CreateUsers>$(user_xml policy1 'Shorter-Pw1' User)</tds:CreateUsers>")
expect "$code" "400/ter:OperationProhibited ter:PasswordTooWeak" "the new policy is enforced (11 chars, 1 digit) → PasswordTooWeak"
code=$(soap '<tds:GetPasswordHistoryConfiguration/>')
check "GetPasswordHistoryConfiguration defaults (true/3), schema-valid" \
    [ "$code/$(xpath "$R" 'string(//*[local-name()="Enabled"])')/$(xpath "$R" 'string(//*[local-name()="Length"])')" = "200/true/3" ]
check "…schema-valid" valid "$R"
code=$(soap '<tds:SetPasswordHistoryConfiguration><tds:Enabled>true</tds:Enabled><tds:Length>5</tds:Length></tds:SetPasswordHistoryConfiguration>')
expect "$code" 200 "SetPasswordHistoryConfiguration 200"
code=$(soap '<tds:SetPasswordHistoryConfiguration><tds:Enabled>true</tds:Enabled><tds:Length>11</tds:Length></tds:SetPasswordHistoryConfiguration>')
expect "$code" "400/ter:InvalidArgVal" "history Length 11 (above 10) → 400 InvalidArgVal"
code=$(soap '<tds:GetAuthFailureWarningOptions/>')
expect "$code" 200 "GetAuthFailureWarningOptions 200"
code=$(soap '<tds:GetAuthFailureWarningConfiguration/>')
check "GetAuthFailureWarningConfiguration defaults (true/60/5)" \
    [ "$code/$(xpath "$R" 'concat(string(//*[local-name()="Enabled"]),"/",string(//*[local-name()="MonitorPeriod"]),"/",string(//*[local-name()="MaxAuthFailures"]))')" = "200/true/60/5" ]
check "…schema-valid" valid "$R"
code=$(soap '<tds:SetAuthFailureWarningConfiguration><tds:Enabled>true</tds:Enabled><tds:MonitorPeriod>0</tds:MonitorPeriod><tds:MaxAuthFailures>3</tds:MaxAuthFailures></tds:SetAuthFailureWarningConfiguration>')
expect "$code" "400/ter:InvalidArgVal" "MonitorPeriod 0 (out of range) → 400 InvalidArgVal"
code=$(soap '<tds:SetAuthFailureWarningConfiguration><tds:Enabled>true</tds:Enabled><tds:MonitorPeriod>5</tds:MonitorPeriod><tds:MaxAuthFailures>3</tds:MaxAuthFailures></tds:SetAuthFailureWarningConfiguration>')
expect "$code" 200 "SetAuthFailureWarningConfiguration(5 s, 3) 200"

stop_daemon
check "clean exit before the restart" [ "$DAEMON_RC" = 0 ]
start_daemon --config "$WORK/main.xml"
code=$(soap '<tds:GetPasswordComplexityConfiguration/>')
check "complexity policy persisted across a restart (12/2/2/1/true)" \
    [ "$code/$(xpath "$R" 'concat(string(//*[local-name()="MinLen"]),"/",string(//*[local-name()="Uppercase"]),"/",string(//*[local-name()="Number"]),"/",string(//*[local-name()="SpecialChars"]),"/",string(//*[local-name()="BlockUsernameOccurrence"]))')" = "200/12/2/2/1/true" ]
code=$(soap '<tds:GetPasswordHistoryConfiguration/>')
check "history policy persisted (true/5)" \
    [ "$code/$(xpath "$R" 'string(//*[local-name()="Enabled"])')/$(xpath "$R" 'string(//*[local-name()="Length"])')" = "200/true/5" ]
code=$(soap '<tds:GetAuthFailureWarningConfiguration/>')
check "auth failure monitoring persisted (true/5/3)" \
    [ "$code/$(xpath "$R" 'concat(string(//*[local-name()="Enabled"]),"/",string(//*[local-name()="MonitorPeriod"]),"/",string(//*[local-name()="MaxAuthFailures"]))')" = "200/true/5/3" ]
check "users persisted: the User's changed password works after the restart" digest_ok "$VU" "$VU_PASS"
code=$(soap '<tds:SetPasswordComplexityConfiguration><tds:MinLen>8</tds:MinLen><tds:Uppercase>1</tds:Uppercase><tds:Number>1</tds:Number><tds:SpecialChars>0</tds:SpecialChars></tds:SetPasswordComplexityConfiguration>')
expect "$code" 200 "complexity policy back to the defaults"

# ---- 3. HTTP Digest ----
# A nonce for the expiry check at the end of this part (lifetime 10 s here).
# The daemon compares whole seconds of the wall clock: the nonce was issued
# at or before STALE_T, so STALE_T + 11 is past its lifetime for sure.
challenge "$WORK/getinfo.xml"; STALE_NONCE=$NONCE STALE_OPAQUE=$OPAQUE STALE_T=$(date +%s)
check "digest: curl --digest with the right password → 200" digest_ok "$ADMIN_USER" "$ADMIN_PASS"
code=$(post "$WORK/getinfo.xml" "$R" --digest -u "$ADMIN_USER:Wrong-Passw0rd")
expect "$code" 401/ter:NotAuthorized "digest: wrong password → 401"
code=$(post "$WORK/getinfo.xml" "$R" --digest -u "nosuchuser:$ADMIN_PASS")
expect "$code" 401/ter:NotAuthorized "digest: unknown user → 401"
challenge "$WORK/getinfo.xml"
check "a nonce from a 401 (64 hex digits)" grep -qE '^[0-9a-f]{64}$' <<< "$NONCE"
authz=$(digest_authz "$ADMIN_USER" "$ADMIN_PASS" "$NONCE" /onvif/device_service 00000001 "c$RANDOM$RANDOM")
code=$(post "$WORK/getinfo.xml" "$R" -H "$authz")
expect "$code" 200 "hand-computed MD5 digest (openssl) → 200"
code=$(curl -sS --max-time 10 -D "$WORK/replay.h" -o "$R" -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml' -H "$authz" --data-binary @"$WORK/getinfo.xml" "$URL")
expect "$code" 401/ter:NotAuthorized "the same Authorization (same nc) replayed → 401"
check "…with stale=true" grep -qi 'stale=true' "$WORK/replay.h"
authz2=$(digest_authz "$ADMIN_USER" "$ADMIN_PASS" "$NONCE" /onvif/device_service 00000002 "c$RANDOM$RANDOM")
code=$(post "$WORK/getinfo.xml" "$R" -H "$authz2")
expect "$code" 200 "same nonce with the next nc → 200"
authz3=$(digest_authz "$ADMIN_USER" "$ADMIN_PASS" "$NONCE" /onvif/media_service 00000003 "c$RANDOM$RANDOM")
code=$(post "$WORK/getinfo.xml" "$R" -H "$authz3")
expect "$code" 401/ter:NotAuthorized "digest computed for another uri than the request's → 401"
authz4=$(digest_authz "$ADMIN_USER" "$ADMIN_PASS" "${NONCE:0:60}0000" /onvif/device_service 00000001 "c$RANDOM")
code=$(post "$WORK/getinfo.xml" "$R" -H "$authz4")
expect "$code" 401/ter:NotAuthorized "forged nonce → 401"
code=$(post "$WORK/getinfo.xml" "$R" -H "$authz2" -H "$authz")
expect "$code" 401/ter:NotAuthorized "two Authorization headers → 401"
code=$(post "$WORK/getinfo.xml" "$R" -H "Authorization: Basic $(printf '%s:%s' "$ADMIN_USER" "$ADMIN_PASS" | base64)")
expect "$code" 401/ter:NotAuthorized "HTTP Basic over plain HTTP → 401"

# ---- 7. Lockout after repeated failures ----
LK=locky LK_PASS='L0ck-Test-Key'
code=$(soap "<tds:CreateUsers>$(user_xml "$LK" "$LK_PASS" User)</tds:CreateUsers>")
expect "$code" 200 "lockout: user created"
check "lockout: right password works before" digest_ok "$LK" "$LK_PASS"
off=$(log_size)
for i in 1 2 3 4; do post "$WORK/getinfo.xml" /dev/null --digest -u "$LK:Wrong-Guess-$i" >/dev/null; done
LOCK_T=$(date +%s)   # the block started at or before this second
code=$(post "$WORK/getinfo.xml" "$R" --digest -u "$LK:$LK_PASS")
expect "$code" 401/ter:NotAuthorized "after 4 failures (max 3 in 5 s) the right password from 127.0.0.1 → 401 (blocked)"
check "daemon log warns, naming 127.0.0.1 and the user" \
    bash -c "grep -i 'warning' <<< \"\$1\" | grep '127\.0\.0\.1' | grep -q \"'$LK'\"" _ "$(log_since "$off")"
check "the right password from 127.0.0.2 → 200 (only the guessing source is blocked)" \
    digest_ok "$LK" "$LK_PASS" --interface 127.0.0.2
check "another user from 127.0.0.1 is not blocked" digest_ok "$ADMIN_USER" "$ADMIN_PASS"
ONVIF_USER=$LK ONVIF_PASSWORD=$LK_PASS "$ONVIF_CLIENT" scopes "$URL" > "$WORK/blocked.txt" && rc=0 || rc=$?
check "the block covers WS-UsernameToken too (NotAuthorized)" \
    [ "$rc/$(grep '^fault.subcode1=' "$WORK/blocked.txt")" = 1/fault.subcode1=ter:NotAuthorized ]
wait_until $((LOCK_T + 6))
check "after 6 s the right password from 127.0.0.1 works again" digest_ok "$LK" "$LK_PASS"

# ---- 3 (end). An expired Digest nonce gets stale=true ----
wait_until $((STALE_T + 11))
OPAQUE=$STALE_OPAQUE
authz=$(digest_authz "$ADMIN_USER" "$ADMIN_PASS" "$STALE_NONCE" /onvif/device_service 00000001 "c$RANDOM$RANDOM")
code=$(curl -sS --max-time 10 -D "$WORK/stale.h" -o "$R" -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml' -H "$authz" --data-binary @"$WORK/getinfo.xml" "$URL")
expect "$code" 401/ter:NotAuthorized "digest with a nonce older than digest-nonce-lifetime-s (10 s) → 401"
check "…whose WWW-Authenticate carries stale=true" grep -qi '^WWW-Authenticate: Digest .*stale=true' "$WORK/stale.h"
check "…with a fresh nonce" bash -c "! grep -q '$STALE_NONCE' '$WORK/stale.h'"
check "curl --digest still works afterwards" digest_ok "$ADMIN_USER" "$ADMIN_PASS"

# ---- 9. Secrets at rest, concurrency, crash safety ----
check "users.xml is mode 0600" [ "$(stat -c %a "$STATE/users.xml")" = 600 ]
check "device.key is mode 0600" [ "$(stat -c %a "$STATE/device.key")" = 600 ]
leak=0
for pw in "$ADMIN_PASS" "$OP_PASS" "$VU_PASS" "$LK_PASS" 'Look-0nly-Key'; do
    b64=$(printf '%s' "$pw" | base64 -w0)
    if grep -qF -- "$pw" "$STATE/users.xml" || grep -qF -- "$b64" "$STATE/users.xml" || grep -qF -- "${b64%%=*}" "$STATE/users.xml"; then
        leak=1; log "users.xml contains '$pw' or its base64"
    fi
done
check "users.xml contains no password, nor its base64" [ "$leak" = 0 ]
check "users.xml is well-formed XML" xmllint --noout "$STATE/users.xml"
pids=()
for i in 1 2 3 4; do
    soap "<tds:CreateUsers>$(user_xml "conc$i" "C0ncurrent-Key-$i" User)</tds:CreateUsers>" "$WORK/conc$i.xml" > "$WORK/conc$i.code" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
check "4 concurrent CreateUsers all answered 200" [ "$(cat "$WORK"/conc[1-4].code | tr -d '\n')" = 200200200200 ]
ok=1; for i in 1 2 3 4; do has_user "conc$i" || ok=0; done
check "…and all 4 users exist" [ "$ok" = 1 ]
ok=1; for i in 1 2 3 4; do digest_ok "conc$i" "C0ncurrent-Key-$i" || ok=0; done
check "…each with its password" [ "$ok" = 1 ]

# kill -9 in the middle of user changes: the store is never torn
code=$(soap "<tds:CreateUsers>$(user_xml crashy 'Crash-Key-0' User)</tds:CreateUsers>")
expect "$code" 200 "crash test user created"
: > "$WORK/crash.log"
(
    for i in $(seq 1 200); do
        printf 'try %s\n' "$i" >> "$WORK/crash.log"
        c=$(soap "<tds:SetUser>$(user_xml crashy "Crash-Key-$i" User)</tds:SetUser>" "$WORK/crash-r.xml" 2>/dev/null) || c=000
        printf 'set %s %s\n' "$i" "$c" >> "$WORK/crash.log"
        [ "$c" = 000 ] && break
        c=$(soap "<tds:CreateUsers>$(user_xml "crash$i" "Crash-New-$i" User)</tds:CreateUsers>" "$WORK/crash-r.xml" 2>/dev/null) || c=000
        printf 'create %s %s\n' "$i" "$c" >> "$WORK/crash.log"
        [ "$c" = 000 ] && break
    done
) &
loop=$!
for _ in $(seq 1 100); do [ "$(grep -c '^create .* 200' "$WORK/crash.log" 2>/dev/null)" -ge 3 ] && break; sleep 0.05; done
{ stop_daemon KILL; } 2>/dev/null   # (no "Killed" job notice)
wait "$loop" || true
start_daemon --config "$WORK/main.xml"
code=$(soap '<tds:GetUsers/>' "$R")
expect "$code" 200 "after kill -9 the daemon restarts on the same state and GetUsers answers"
cp "$R" "$WORK/users-after.xml"
present() { [ "$(xpath "$WORK/users-after.xml" "count(//*[local-name()='User'][*[local-name()='Username']='$1'])")" = 1 ]; }
ok=1
for u in "$ADMIN_USER" "$OP" "$VU" "$LK" conc1 conc2 conc3 conc4 crashy; do present "$u" || { ok=0; log "missing $u"; }; done
while read -r kind i c; do
    [ "$kind" = create ] && [ "$c" = 200 ] && { present "crash$i" || { ok=0; log "missing crash$i"; }; }
done < "$WORK/crash.log"
check "every user is present, including each acknowledged CreateUsers ($(grep -c '^create .* 200' "$WORK/crash.log") of them)" [ "$ok" = 1 ]
# crashy's password: the last acknowledged one, or the one in flight
last_ack=$(awk '$1=="set" && $3==200 {n=$2} END {print n+0}' "$WORK/crash.log")
tried=$(awk '$1=="try" {n=$2} END {print n+0}' "$WORK/crash.log")
works=""
for i in $(seq "$last_ack" "$tried"); do digest_ok crashy "Crash-Key-$i" && works="$works $i"; done
check "crashy has a working password: acknowledged #$last_ack or the one in flight (works:$works)" [ -n "$works" ]
ok=1
while read -r kind i c; do
    [ "$kind" = create ] && [ "$c" = 200 ] && { digest_ok "crash$i" "Crash-New-$i" || ok=0; }
done < "$WORK/crash.log"
check "each user created before the crash logs in with its password" [ "$ok" = 1 ]
check "the Operator still logs in" digest_ok "$OP" "$OP_PASS"
check "the Administrator still logs in" digest_ok "$ADMIN_USER" "$ADMIN_PASS"
stop_daemon
check "clean exit" [ "$DAEMON_RC" = 0 ]

# ---- 10. security/anonymous-media ----
cat > "$WORK/anon.xml" <<'XML'
<opennvt><security><anonymous-media>true</anonymous-media></security></opennvt>
XML
STATE=$WORK/anonstate
start_daemon --config "$WORK/anon.xml"
code=$(anon '<trt:GetProfiles/>' "$R")
expect "$code" 200 "anonymous-media=true: unauthenticated trt:GetProfiles is served"
check "anonymous-media=true: the profiles are listed" [ "$(xpath "$R" 'count(//*[local-name()="Profiles"])')" -ge 3 ]
code=$(anon '<tds:GetDeviceInformation/>' "$R")
expect "$code" 401/ter:NotAuthorized "anonymous-media=true: unauthenticated READ_SYSTEM still 401"
code=$(anon '<tds:GetUsers/>' "$R")
expect "$code" 401/ter:NotAuthorized "anonymous-media=true: unauthenticated GetUsers still 401"
stop_daemon

log "auth.sh ran in $((SECONDS - T0)) s"
finish
