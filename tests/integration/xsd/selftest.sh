#!/usr/bin/env bash
# Self-test of validate-soap.sh: hand-written responses, valid and broken, and
# the exit code (and for some the message) each must give.  Proves that the
# validator can fail.  Needs no daemon; honours ONVIF_WSDL_DIR and SCHEMA_CACHE.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VALIDATE="$HERE/validate-soap.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/validate-soap-selftest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
CACHE=${SCHEMA_CACHE:-$WORK/cache}
FAILS=0
COUNT=0

now_ms() { date +%s%3N; }

# expect NAME WANTED_EXIT [REGEX that stderr must match]
expect() {
    local name=$1 want=$2 re=${3:-} rc=0
    COUNT=$((COUNT + 1))
    "$VALIDATE" --schema-cache "$CACHE" "$WORK/$name.xml" > "$WORK/out" 2> "$WORK/err" || rc=$?
    if [ "$rc" != "$want" ]; then
        printf 'FAIL - %s: exit %s, expected %s\n' "$name" "$rc" "$want" >&2
        sed 's/^/    /' "$WORK/err" >&2
        FAILS=$((FAILS + 1))
    elif [ -n "$re" ] && ! grep -Eq -- "$re" "$WORK/err"; then
        printf 'FAIL - %s: exit %s as expected, but no message matching /%s/:\n' "$name" "$rc" "$re" >&2
        sed 's/^/    /' "$WORK/err" >&2
        FAILS=$((FAILS + 1))
    else
        printf 'ok   - %s (exit %s)\n' "$name" "$rc" >&2
    fi
}

# envelope NAME BODY [EXTRA_XMLNS]: writes a SOAP 1.2 response like the daemon's
envelope() {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:ter="http://www.onvif.org/ver10/error" %s><SOAP-ENV:Body>%s</SOAP-ENV:Body></SOAP-ENV:Envelope>\n' \
        "${3:-}" "$2" > "$WORK/$1.xml"
}

DATETIME='<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>19</tt:Hour><tt:Minute>27</tt:Minute><tt:Second>9</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>11</tt:Month><tt:Day>22</tt:Day></tt:Date></tt:UTCDateTime>'
sdt() { printf '<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>%s</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>' "$1"; }

# --- valid responses
envelope datetime-valid "$(sdt "$DATETIME")"
envelope scopes-valid '<tds:GetScopesResponse><tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>onvif://www.onvif.org/type/video_encoder</tt:ScopeItem></tds:Scopes><tds:Scopes><tt:ScopeDef>Configurable</tt:ScopeDef><tt:ScopeItem>onvif://www.onvif.org/name/OpenNVT</tt:ScopeItem></tds:Scopes></tds:GetScopesResponse>'
# The service capabilities sit in an xs:any (lax) inside tds:Capabilities.
envelope services-valid '<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>http://192.0.2.1/onvif/device_service</tds:XAddr><tds:Capabilities><tds:Capabilities><tds:Network IPFilter="false" ZeroConfiguration="false" IPVersion6="false" DynDNS="false"/><tds:Security UsernameToken="true" HttpDigest="true"/><tds:System DiscoveryResolve="false" DiscoveryBye="true"/></tds:Capabilities></tds:Capabilities><tds:Version><tt:Major>25</tt:Major><tt:Minor>12</tt:Minor></tds:Version></tds:Service></tds:GetServicesResponse>'
# Declarations on Body and on the child itself, a default namespace, a Header.
cat > "$WORK/namespaces-valid.xml" <<'EOF'
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="urn:shadowed" xmlns="urn:outer">
  <s:Header><Action xmlns="http://www.w3.org/2005/08/addressing">x</Action></s:Header>
  <s:Body xmlns:tt="http://www.onvif.org/ver10/schema">
    <GetScopesResponse xmlns="http://www.onvif.org/ver10/device/wsdl">
      <Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>onvif://www.onvif.org/x</tt:ScopeItem></Scopes>
    </GetScopesResponse>
  </s:Body>
</s:Envelope>
EOF
FAULT_OK='<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>ter:OperationProhibited</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>ter:FixedScope</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">Trying to remove a fixed scope</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>'
envelope fault-valid "$FAULT_OK"

# --- invalid content
envelope month-not-integer "$(sdt "${DATETIME/<tt:Month>11</<tt:Month>eleven<}")"
envelope datetimetype-missing "$(sdt "${DATETIME#<tt:DateTimeType>Manual</tt:DateTimeType>}")"
envelope wrong-namespace '<tt:GetScopesResponse><tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>x</tt:ScopeItem></tds:Scopes></tt:GetScopesResponse>'
envelope child-wrong-namespace '<tds:GetScopesResponse><tds:Scopes><tds:ScopeDef>Fixed</tds:ScopeDef><tt:ScopeItem>x</tt:ScopeItem></tds:Scopes></tds:GetScopesResponse>'
envelope enum-invalid '<tds:GetScopesResponse><tds:Scopes><tt:ScopeDef>Permanent</tt:ScopeDef><tt:ScopeItem>x</tt:ScopeItem></tds:Scopes></tds:GetScopesResponse>'
envelope second-child-invalid "$(sdt "$DATETIME")<tds:GetScopesResponse><tds:Bogus/></tds:GetScopesResponse>"

# --- invalid faults
envelope fault-code-not-soap "${FAULT_OK/>SOAP-ENV:Sender</>ter:Sender<}"
envelope fault-code-unknown "${FAULT_OK/>SOAP-ENV:Sender</>SOAP-ENV:Bogus<}"
envelope fault-ter-wrong-namespace "$FAULT_OK" 'xmlns:onvif="http://www.onvif.org/ver10/schema"'
sed -i 's#>ter:FixedScope<#>onvif:FixedScope<#' "$WORK/fault-ter-wrong-namespace.xml"
envelope fault-undeclared-prefix "${FAULT_OK/>ter:FixedScope</>terr:FixedScope<}"
envelope fault-no-lang "${FAULT_OK/ xml:lang=\"en\"/}"
envelope fault-no-reason "${FAULT_OK/<SOAP-ENV:Reason>*<\/SOAP-ENV:Reason>/}"
envelope fault-not-alone "$FAULT_OK<tds:GetScopesResponse/>"

# --- invalid envelopes
printf '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"><SOAP-ENV:Body>' > "$WORK/not-well-formed.xml"
sed 's#http://www.w3.org/2003/05/soap-envelope#http://schemas.xmlsoap.org/soap/envelope/#' "$WORK/datetime-valid.xml" > "$WORK/soap11-envelope.xml"
sed 's#</SOAP-ENV:Body>#&<SOAP-ENV:Body/>#' "$WORK/datetime-valid.xml" > "$WORK/two-bodies.xml"
envelope empty-body ''

# --- run; the first call may build the schema cache
t0=$(now_ms)
expect datetime-valid 0
t1=$(now_ms)
expect datetime-valid 0
t2=$(now_ms)
expect scopes-valid 0
expect services-valid 0
expect namespaces-valid 0
expect fault-valid 0
expect month-not-integer 1 "Month.*'eleven' is not a valid value"
expect datetimetype-missing 1 "DaylightSavings': This element is not expected.*DateTimeType"
expect wrong-namespace 1 "No matching global declaration"
expect child-wrong-namespace 1 "ScopeDef': This element is not expected"
expect enum-invalid 1 "enumeration"
expect second-child-invalid 1 "Body child 2"
expect fault-code-not-soap 1 "Code/Value"
expect fault-code-unknown 1 "Code/Value"
expect fault-ter-wrong-namespace 1 "ONVIF subcode"
expect fault-undeclared-prefix 1 "not declared"
expect fault-no-lang 1 "xml:lang"
expect fault-no-reason 1 "Fault children"
expect fault-not-alone 1 "nothing else"
expect not-well-formed 1 "not well-formed"
expect soap11-envelope 1 "expected \{http://www.w3.org/2003/05/soap-envelope\}Envelope"
expect two-bodies 1 "2 Body"
expect empty-body 1 "Body is empty"

# --- usage and setup errors
COUNT=$((COUNT + 2))
rc=0; "$VALIDATE" > /dev/null 2>&1 || rc=$?
if [ "$rc" = 2 ]; then echo "ok   - no argument (exit 2)" >&2; else echo "FAIL - no argument: exit $rc" >&2; FAILS=$((FAILS + 1)); fi
rc=0; ONVIF_WSDL_DIR="$WORK/nonexistent" "$VALIDATE" --schema-cache "$CACHE" "$WORK/datetime-valid.xml" > /dev/null 2>&1 || rc=$?
if [ "$rc" = 2 ]; then echo "ok   - missing WSDL tree (exit 2)" >&2; else echo "FAIL - missing WSDL tree: exit $rc" >&2; FAILS=$((FAILS + 1)); fi

printf 'timing: first validation %s ms (includes building the schema cache if it was cold), cached %s ms\n' \
    "$((t1 - t0))" "$((t2 - t1))" >&2
if [ "$FAILS" -ne 0 ]; then
    printf '%s of %s self-test checks failed\n' "$FAILS" "$COUNT" >&2
    exit 1
fi
printf 'all %s self-test checks passed\n' "$COUNT" >&2
