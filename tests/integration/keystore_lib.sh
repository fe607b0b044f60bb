# Helpers shared by keystore.sh and keystore-certs.sh (sourced after lib.sh):
# SOAP to the Security Configuration Service (tas), expectations in the style
# of auth.sh, and small openssl/xpath utilities. The openssl CLI is the
# independent judge of everything the device produces.
R=$WORK/resp.xml
TAS_NS=http://www.onvif.org/ver10/advancedsecurity/wsdl

# sec BODY [OUT]: POSTs a SOAP 1.2 envelope (prefixes s, tas, tt, tds) to
# /onvif/security_service with HTTP Digest as the Administrator
# (SEC_CRED=user:password: other credentials; SEC_AUTH=none: none); prints
# curl's -w output ($SEC_FMT, default the HTTP status; 000 = no answer).
sec() {
    local body=$1 out=${2:-$R}
    local auth=(--digest -u "${SEC_CRED:-$ADMIN_USER:$ADMIN_PASS}")
    local fmt=${SEC_FMT:-}
    [ -n "$fmt" ] || fmt='%{http_code}'
    [ "${SEC_AUTH:-digest}" = none ] && auth=()
    curl -sS --max-time 20 -o "$out" -w "$fmt" -X POST "${auth[@]}" \
        -H 'Content-Type: application/soap+xml; charset=utf-8' \
        --data-binary "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tas=\"$TAS_NS\" xmlns:tt=\"http://www.onvif.org/ver10/schema\" xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\"><s:Body>$body</s:Body></s:Envelope>" \
        "$SEC_URL" 2>>"$WORK/curl.err" || true
    autovalid "$out" "$body"
}
# autovalid FILE REQUEST: validates every response as it arrives (unless
# AUTO_VALID=0: polling loops, the crash loop); the verdict goes to FILE.v for
# expect, an invalid one also to $WORK/invalid.log (checked at the end, since
# sec runs in command substitutions, i.e. subshells).
autovalid() {
    rm -f "$1.v"
    [ "${AUTO_VALID:-1}" = 1 ] && [ -s "$1" ] || return 0
    if valid "$1"; then echo 1 > "$1.v"; else echo 0 > "$1.v"; printf '%s\n' "${2:0:120}" >> "$WORK/invalid.log"; fi
}
# dsoap BODY [OUT]: lib.sh's soap (device service) with autovalid
dsoap() { local c; c=$(soap "$@"); autovalid "${2:-$R}" "$1"; printf '%s' "$c"; }
is_valid() { if [ -f "$1.v" ]; then [ "$(cat "$1.v")" = 1 ]; else valid "$1"; fi; }
# all_responses_valid: the final check of a script
all_responses_valid() {
    if [ -s "$WORK/invalid.log" ]; then
        fail "every response was schema-valid ($(wc -l < "$WORK/invalid.log") were not)"; sed 's/^/    invalid response to: /' "$WORK/invalid.log" >&2
    else
        pass "every response was schema-valid"
    fi
}
sec_url() { SEC_URL="http://127.0.0.1:$HTTP_PORT/onvif/security_service"; }

status_fault() { printf '%s/%s' "$1" "$(fault_subcodes "${2:-$R}")"; }
# expect CODE WANT DESCRIPTION [FILE]: WANT is 200 (the response must then be
# schema-valid) or STATUS/SUBCODES of a fault (also validated).
expect() {
    local code=$1 want=$2 what=$3 f=${4:-$R} got
    if [ "$want" = 200 ]; then got=$code; else got=$(status_fault "$code" "$f"); fi
    if [ "$got" = "$want" ] && is_valid "$f"; then pass "$what"; else
        if [ "$got" = "$want" ]; then fail "$what (schema-invalid response)"; else
            fail "$what (got $got, want $want)"
            [ -z "$(val Text "$f")" ] || log "    reason: $(val Text "$f")"
        fi
    fi
}
not() { ! "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
# val NAME [FILE]: text of the first element with that local name ("" if none)
val() { xpath "${2:-$R}" "string(//*[local-name()='$1'])" || true; }
# vals PARENT CHILD [FILE]: the CHILD texts under every PARENT, space-separated, sorted
vals() { { xpath "${3:-$R}" "//*[local-name()='$1']/*[local-name()='$2']/text()" || true; } | sort | tr '\n' ' ' | sed 's/ *$//'; }
# b64file NAME OUT [FILE]: decodes the base64 content of the first NAME element into OUT
b64file() { val "$1" "${3:-$R}" | tr -d ' \r\n\t' | base64 -d > "$2" 2>/dev/null; }
b64() { base64 -w0 < "$1"; }
count() { xpath "${2:-$R}" "count(//*[local-name()='$1'])" || echo 0; }

subject_xml() { # subject_xml C O ST CN L (in the order of tas:DistinguishedName)
    printf '<tas:Subject><tas:Country>%s</tas:Country><tas:Organization>%s</tas:Organization><tas:StateOrProvinceName>%s</tas:StateOrProvinceName><tas:CommonName>%s</tas:CommonName><tas:Locality>%s</tas:Locality></tas:Subject>' "$@"
}
cn_xml() { printf '<tas:Subject><tas:CommonName>%s</tas:CommonName></tas:Subject>' "$1"; }
alg_xml() { printf '<tas:SignatureAlgorithm><tas:algorithm>%s</tas:algorithm></tas:SignatureAlgorithm>' "$1"; }
SHA256_RSA=1.2.840.113549.1.1.11
SHA256_ECDSA=1.2.840.10045.4.3.2

# key_status ID: GetKeyStatus's KeyStatus ("" on a fault)
key_status() { AUTO_VALID=0 sec "<tas:GetKeyStatus><tas:KeyID>$1</tas:KeyID></tas:GetKeyStatus>" "$WORK/ks.xml" >/dev/null; val KeyStatus "$WORK/ks.xml"; }
# wait_key ID [TENTHS]: polls (bounded, default 10 s) until not "generating"; prints the status
wait_key() {
    local st="" i
    for ((i = 0; i < ${2:-100}; i++)); do st=$(key_status "$1"); [ "$st" = generating ] || break; sleep 0.1; done
    printf '%s' "$st"
}
# create_ec CURVE [ALIAS]: creates an EC key, prints its KeyID (empty on failure); response in $WORK/ec.xml
create_ec() {
    local c
    c=$(sec "<tas:CreateECCKeyPair><tas:EllipticCurve>$1</tas:EllipticCurve>${2:+<tas:Alias>$2</tas:Alias>}</tas:CreateECCKeyPair>" "$WORK/ec.xml")
    [ "$c" = 200 ] && val KeyID "$WORK/ec.xml"
    return 0
}
# self_signed KEYID CN ALG [EXTRA]: CreateSelfSignedCertificate; prints the code, response in $R
self_signed() {
    sec "<tas:CreateSelfSignedCertificate>$(cn_xml "$2")<tas:KeyID>$1</tas:KeyID>${4:-}$(alg_xml "$3")</tas:CreateSelfSignedCertificate>"
}
upload_cert() { # upload_cert DERFILE [ALIAS]: UploadCertificate; prints the code
    sec "<tas:UploadCertificate><tas:Certificate>$(b64 "$1")</tas:Certificate>${2:+<tas:Alias>$2</tas:Alias>}</tas:UploadCertificate>"
}
get_cert() { # get_cert CERTID OUT.der: GetCertificate, decoded; prints the code
    local c; c=$(sec "<tas:GetCertificate><tas:CertificateID>$1</tas:CertificateID></tas:GetCertificate>" "$WORK/gc.xml")
    b64file CertificateContent "$2" "$WORK/gc.xml" || true
    printf '%s' "$c"
}
pubkey_of_cert() { openssl x509 -inform "${2:-DER}" -in "$1" -noout -pubkey 2>/dev/null; }
# csr_ok FILE.der: openssl req -verify succeeds (its exit status does not tell: read its message)
csr_ok() { openssl req -inform DER -in "$1" -noout -verify 2>&1 | grep -q 'verify OK'; }
pubkey_of_csr() { openssl req -inform DER -in "$1" -noout -pubkey 2>/dev/null; }

# ca_make DIR CN: a throw-away EC P-256 CA made with openssl (DIR/ca.key, ca.pem, ca.der)
ca_make() {
    mkdir -p "$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/ca.key" -subj "/O=OpenNVT Test/CN=$2" \
        -days 30 -sha256 -out "$1/ca.pem" 2>/dev/null
    openssl x509 -in "$1/ca.pem" -outform DER -out "$1/ca.der"
}
# ca_sign CADIR CSR.der OUT.pem: signs a (DER) request as a CA:FALSE end-entity certificate
ca_sign() {
    openssl req -inform DER -in "$2" -out "$WORK/sign.csr.pem" 2>/dev/null
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
        'subjectKeyIdentifier=hash' 'authorityKeyIdentifier=keyid' > "$WORK/leaf.ext"
    openssl x509 -req -in "$WORK/sign.csr.pem" -CA "$1/ca.pem" -CAkey "$1/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 30 -sha256 -extfile "$WORK/leaf.ext" -out "$3" 2>/dev/null
}
