#!/usr/bin/env bash
# Certificates around the keystore: the built-in device CA (downloadable
# without credentials), the read-only factory identity made with
# certs/make-factory-identity.sh (security/factory-dir) and its survival of a
# factory reset, and the legacy Device certificate operations mapped onto the
# keystore. openssl judges; every response and fault is schema-validated.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/keystore_lib.sh"
T0=$SECONDS
O=$WORK/o
mkdir -p "$O"
MKID="$HERE/../../certs/make-factory-identity.sh"
# The installed factory directory is 0500 with 0400 files: make it removable.
trap 'chmod -R u+w "$WORK" 2>/dev/null || true; cleanup' EXIT

# ---- 13. Factory identity (made like in the factory) ----
UUID=5b3c2a10-7d4e-4f21-9a6b-0c1d2e3f4a5b SERIAL=SN-0042
out=$(FACTORY_ORG='OpenNVT Test' bash "$MKID" ca "$WORK/mfg" 2>&1) && rc=0 || rc=$?
check "make-factory-identity.sh ca → manufacturer CA ($rc)" [ "$rc" = 0 -a -s "$WORK/mfg/ca.crt" ]
out=$(FACTORY_ORG='OpenNVT Test' bash "$MKID" device "$WORK/mfg" "$WORK/ident" "$SERIAL" "$UUID" 2>&1) && rc=0 || rc=$?
check "make-factory-identity.sh device → identity ($rc)" [ "$rc" = 0 -a -s "$WORK/ident/identity.crt" ]
out=$(bash "$MKID" install "$WORK/ident" "$WORK/factory" 2>&1) && rc=0 || rc=$?
check "make-factory-identity.sh install → factory dir 0500 ($rc)" [ "$rc" = 0 -a "$(stat -c %a "$WORK/factory")" = 500 ]
check "openssl: the identity verifies against the manufacturer CA" \
    quiet openssl verify -CAfile "$WORK/mfg/ca.crt" "$WORK/factory/identity.crt"
cat > "$WORK/factory.xml" <<XML
<opennvt><security><factory-dir>$WORK/factory</factory-dir></security></opennvt>
XML
start_daemon --config "$WORK/factory.xml"
sec_url
all_valid() { local f; for f; do valid "$f" || return 1; done; }
factory_listed() { # factory_listed PREFIX: checks the three lists; sets FK FC FP
    sec '<tas:GetAllKeys/>' "$WORK/fk.xml" >/dev/null
    sec '<tas:GetAllCertificates/>' "$WORK/fc.xml" >/dev/null
    sec '<tas:GetAllCertificationPaths/>' "$WORK/fp.xml" >/dev/null
    check "$1: GetAllKeys lists FACTORY-KEY (private key, ok)" \
        [ "$(xpath "$WORK/fk.xml" "string(//*[local-name()='KeyAttribute'][*[local-name()='KeyID']='FACTORY-KEY']/*[local-name()='hasPrivateKey'])")/$(xpath "$WORK/fk.xml" "string(//*[local-name()='KeyAttribute'][*[local-name()='KeyID']='FACTORY-KEY']/*[local-name()='KeyStatus'])")" = true/ok ]
    check "$1: GetAllCertificates lists FACTORY-CERT (key FACTORY-KEY) and FACTORY-CA-1" \
        [ "$(xpath "$WORK/fc.xml" "string(//*[local-name()='Certificate'][*[local-name()='CertificateID']='FACTORY-CERT']/*[local-name()='KeyID'])")/$(xpath "$WORK/fc.xml" "count(//*[local-name()='Certificate'][*[local-name()='CertificateID']='FACTORY-CA-1'])")" = FACTORY-KEY/1 ]
    check "$1: FACTORY-CA-1 is bound to the public-key-only FACTORY-CA-KEY-1" \
        [ "$(xpath "$WORK/fc.xml" "string(//*[local-name()='Certificate'][*[local-name()='CertificateID']='FACTORY-CA-1']/*[local-name()='KeyID'])")/$(xpath "$WORK/fk.xml" "string(//*[local-name()='KeyAttribute'][*[local-name()='KeyID']='FACTORY-CA-KEY-1']/*[local-name()='hasPrivateKey'])")" = FACTORY-CA-KEY-1/false ]
    check "$1: GetAllCertificationPaths lists FACTORY-PATH" grep -q '>FACTORY-PATH<' "$WORK/fp.xml"
    check "$1: the three lists are schema-valid" all_valid "$WORK/fk.xml" "$WORK/fc.xml" "$WORK/fp.xml"
}
factory_listed "factory"
code=$(get_cert FACTORY-CERT "$O/fcert.der")
expect "$code" 200 "GetCertificate FACTORY-CERT → 200" "$WORK/gc.xml"
check "…the installed identity.crt (DER compare with openssl)" \
    bash -c "openssl x509 -in '$WORK/factory/identity.crt' -outform DER | cmp -s - '$O/fcert.der'"
check "…subject CN=$UUID, serialNumber=$SERIAL" \
    bash -c "openssl x509 -inform DER -in '$O/fcert.der' -noout -subject -nameopt RFC2253 | grep -q 'CN=$UUID,serialNumber=$SERIAL,O=OpenNVT Test'"
code=$(sec '<tas:GetCertificationPath><tas:CertificationPathID>FACTORY-PATH</tas:CertificationPathID></tas:GetCertificationPath>')
expect "$code" 200 "GetCertificationPath FACTORY-PATH → 200"
check "…[FACTORY-CERT, FACTORY-CA-1]" \
    [ "$( { xpath "$R" '//*[local-name()="CertificationPath"]/*[local-name()="CertificateID"]/text()' || true; } | tr '\n' ' ')" = "FACTORY-CERT FACTORY-CA-1 " ]
get_cert FACTORY-CA-1 "$O/fca.der" >/dev/null
check "FACTORY-CA-1 is the manufacturer CA" bash -c "openssl x509 -in '$WORK/mfg/ca.crt' -outform DER | cmp -s - '$O/fca.der'"
code=$(sec '<tas:DeleteKey><tas:KeyID>FACTORY-KEY</tas:KeyID></tas:DeleteKey>')
expect "$code" "500/ter:Action ter:KeyDeletionFailed" "DeleteKey FACTORY-KEY refused → ter:KeyDeletionFailed"
code=$(sec '<tas:DeleteCertificate><tas:CertificateID>FACTORY-CERT</tas:CertificateID></tas:DeleteCertificate>')
expect "$code" "500/ter:Action ter:CertificateDeletionFailed" "DeleteCertificate FACTORY-CERT refused → ter:CertificateDeletionFailed"
code=$(sec '<tas:DeleteCertificate><tas:CertificateID>FACTORY-CA-1</tas:CertificateID></tas:DeleteCertificate>')
expect "$code" "500/ter:Action ter:CertificateDeletionFailed" "DeleteCertificate FACTORY-CA-1 refused → ter:CertificateDeletionFailed"
code=$(sec '<tas:DeleteCertificationPath><tas:CertificationPathID>FACTORY-PATH</tas:CertificationPathID></tas:DeleteCertificationPath>')
expect "$code" "500/ter:Action ter:CertificationPathDeletionFailed" "DeleteCertificationPath FACTORY-PATH refused → ter:CertificationPathDeletionFailed"
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml "$UUID")<tas:KeyID>FACTORY-KEY</tas:KeyID>$(alg_xml $SHA256_ECDSA)</tas:CreatePKCS10CSR>")
expect "$code" 200 "CreatePKCS10CSR with FACTORY-KEY → 200"
b64file PKCS10CSR "$O/fcsr.der"
check "…verifies and carries the factory identity's public key" \
    bash -c "openssl req -inform DER -in '$O/fcsr.der' -noout -verify 2>&1 | grep -q 'verify OK' && [ \"\$(openssl req -inform DER -in '$O/fcsr.der' -noout -pubkey)\" = \"\$(openssl x509 -in '$WORK/factory/identity.crt' -noout -pubkey)\" ]"
code=$(sec "<tas:UploadCertificate><tas:Certificate>$(openssl x509 -in "$WORK/mfg/ca.crt" -outform DER | base64 -w0)</tas:Certificate></tas:UploadCertificate>")
expect "$code" "400/ter:InvalidArgVal ter:Duplicate" "uploading the manufacturer CA again → ter:Duplicate"
code=$(create_ec secp256r1 own)
check "own keys still work next to the factory identity ($code)" [ -n "$code" ]
check "the keystore state has none of the factory key" not grep -q 'FACTORY-KEY' "$STATE/keystore.xml"
stop_daemon
check "clean exit" [ "$DAEMON_RC" = 0 ]
# Factory reset: the state directory goes, the factory directory stays.
rm -rf "$STATE"
start_daemon --config "$WORK/factory.xml"
sec_url
factory_listed "after a factory reset"
check "…and nothing else: keys FACTORY-CA-KEY-1 (the CA's public key) and FACTORY-KEY only" \
    [ "$(vals KeyAttribute KeyID "$WORK/fk.xml")" = "FACTORY-CA-KEY-1 FACTORY-KEY" ]

# ---- 12. Device CA ----
BASE="http://127.0.0.1:$HTTP_PORT"
code=$(curl -sS --max-time 10 -D "$O/pem.h" -o "$O/dca.pem" -w '%{http_code}' "$BASE/certs/device-ca.pem" || true)
check "GET /certs/device-ca.pem without credentials → 200 ($code)" [ "$code" = 200 ]
check "…Content-Type application/x-pem-file" grep -qi '^Content-Type: application/x-pem-file' "$O/pem.h"
code=$(curl -sS --max-time 10 -D "$O/der.h" -o "$O/dca.der" -w '%{http_code}' "$BASE/certs/device-ca.der" || true)
check "GET /certs/device-ca.der without credentials → 200 ($code)" [ "$code" = 200 ]
check "…Content-Type application/pkix-cert" grep -qi '^Content-Type: application/pkix-cert' "$O/der.h"
check "openssl x509 reads the PEM" openssl x509 -in "$O/dca.pem" -noout
check "openssl x509 -inform DER reads the DER" openssl x509 -inform DER -in "$O/dca.der" -noout
check "…the same certificate in both forms" bash -c "openssl x509 -in '$O/dca.pem' -outform DER | cmp -s - '$O/dca.der'"
openssl x509 -in "$O/dca.pem" -noout -text > "$O/dca.txt" 2>/dev/null || true
check "…basicConstraints CA:TRUE" bash -c "grep -A1 'X509v3 Basic Constraints' '$O/dca.txt' | grep -q 'CA:TRUE'"
check "…keyUsage includes Certificate Sign" grep -q 'Certificate Sign' "$O/dca.txt"
check "…EC P-256 key (security/device-ca-key default)" grep -q 'NIST CURVE: P-256\|ASN1 OID: prime256v1' "$O/dca.txt"
check "openssl verify -CAfile (the device CA against itself)" quiet openssl verify -CAfile "$O/dca.pem" "$O/dca.pem"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$BASE/certs/device-ca.key" || true)
check "GET of another /certs/ path → 404 ($code)" [ "$code" = 404 ]
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$BASE/certs/" || true)
check "GET /certs/ → 404 ($code)" [ "$code" = 404 ]
check "state/deviceca.xml is 0600 and holds no PRIVATE KEY PEM" \
    bash -c "[ \"\$(stat -c %a '$STATE/deviceca.xml')\" = 600 ] && ! grep -q 'PRIVATE KEY' '$STATE/deviceca.xml'"
cp "$O/dca.der" "$O/dca.first.der"
stop_daemon
start_daemon --config "$WORK/factory.xml"
BASE="http://127.0.0.1:$HTTP_PORT"
curl -sS --max-time 10 -o "$O/dca2.der" "$BASE/certs/device-ca.der" || true
check "the device CA is the same after a restart" cmp -s "$O/dca.first.der" "$O/dca2.der"
stop_daemon
# security/device-ca-key RSA-3072 on a fresh state
cat > "$WORK/rsa-ca.xml" <<XML
<opennvt><security><factory-dir>$WORK/no-factory</factory-dir><device-ca-key>RSA-3072</device-ca-key></security></opennvt>
XML
STATE=$WORK/rsa-state
start_daemon --config "$WORK/rsa-ca.xml"
curl -sS --max-time 10 -o "$O/rsa-ca.pem" "http://127.0.0.1:$HTTP_PORT/certs/device-ca.pem" || true
check "security/device-ca-key RSA-3072: the device CA has a 3072-bit RSA key" \
    bash -c "openssl x509 -in '$O/rsa-ca.pem' -noout -text | grep -q 'Public-Key: (3072 bit)'"

# ---- 14. Legacy Device certificate operations (device service) ----
sec_url
code=$(dsoap '<tds:CreateCertificate><tds:CertificateID>legacy-cert</tds:CertificateID><tds:Subject>CN=legacy</tds:Subject></tds:CreateCertificate>')
expect "$code" 200 "tds:CreateCertificate (Subject CN=legacy) → 200"
check "…NvtCertificate CertificateID legacy-cert" [ "$(val CertificateID)" = legacy-cert ]
b64file Data "$O/legacy.der"
check "…its DER is read by openssl x509, subject CN=legacy" \
    bash -c "openssl x509 -inform DER -in '$O/legacy.der' -noout -subject | grep -q 'CN *= *legacy'"
code=$(dsoap '<tds:CreateCertificate><tds:CertificateID>legacy-cert</tds:CertificateID><tds:Subject>CN=again</tds:Subject></tds:CreateCertificate>')
expect "$code" "400/ter:InvalidArgVal ter:CertificateID" "CreateCertificate with a CertificateID in use → ter:CertificateID"
code=$(dsoap '<tds:GetCertificates/>')
expect "$code" 200 "tds:GetCertificates → 200"
check "…lists legacy-cert" [ "$(xpath "$R" "count(//*[local-name()='NvtCertificate'][*[local-name()='CertificateID']='legacy-cert'])")" = 1 ]
b64file Data "$O/legacy.list.der"
check "…with the same DER" cmp -s "$O/legacy.der" "$O/legacy.list.der"
code=$(dsoap '<tds:GetCertificateInformation><tds:CertificateID>legacy-cert</tds:CertificateID></tds:GetCertificateInformation>')
expect "$code" 200 "tds:GetCertificateInformation → 200"
check "…SubjectDN contains legacy ($(val SubjectDN))" bash -c "grep -q legacy <<< '$(val SubjectDN)'"
check "…KeyLength 256 (EC P-256, as openssl says: $(openssl x509 -inform DER -in "$O/legacy.der" -noout -text | grep -o 'Public-Key: ([0-9]* bit)'))" \
    [ "$(val KeyLength)" = 256 ]
nb=$(date -u -d "$(openssl x509 -inform DER -in "$O/legacy.der" -noout -startdate | cut -d= -f2)" +%s 2>/dev/null || echo x)
na=$(date -u -d "$(openssl x509 -inform DER -in "$O/legacy.der" -noout -enddate | cut -d= -f2)" +%s 2>/dev/null || echo y)
vf=$(date -u -d "$(val From)" +%s 2>/dev/null || echo z)
vu=$(date -u -d "$(val Until)" +%s 2>/dev/null || echo w)
check "…Validity From/Until equal openssl's notBefore/notAfter ($(val From) .. $(val Until))" [ "$vf/$vu" = "$nb/$na" ]
code=$(dsoap '<tds:GetCertificateInformation><tds:CertificateID>no-such-cert</tds:CertificateID></tds:GetCertificateInformation>')
expect "$code" "400/ter:InvalidArgVal ter:CertificateID" "GetCertificateInformation of an unknown ID → ter:CertificateID"
code=$(dsoap '<tds:GetPkcs10Request><tds:CertificateID>legacy-cert</tds:CertificateID><tds:Subject>CN=legacy, O=OpenNVT Test</tds:Subject></tds:GetPkcs10Request>')
expect "$code" 200 "tds:GetPkcs10Request → 200"
b64file Data "$O/legacy.csr"
check "…openssl req -verify accepts it" csr_ok "$O/legacy.csr"
check "…for the certificate's key" [ "$(pubkey_of_csr "$O/legacy.csr")" = "$(pubkey_of_cert "$O/legacy.der")" ]
ca_make "$O/lca" "Legacy Test CA"
code=$(dsoap "<tds:LoadCACertificates><tds:CACertificate><tt:CertificateID>legacy-ca</tt:CertificateID><tt:Certificate><tt:Data>$(b64 "$O/lca/ca.der")</tt:Data></tt:Certificate></tds:CACertificate></tds:LoadCACertificates>")
expect "$code" 200 "tds:LoadCACertificates of an openssl CA certificate → 200"
code=$(dsoap '<tds:GetCACertificates/>')
expect "$code" 200 "tds:GetCACertificates → 200"
check "…lists legacy-ca" [ "$(xpath "$R" "count(//*[local-name()='CACertificate'][*[local-name()='CertificateID']='legacy-ca'])")" = 1 ]
b64file Data "$O/lca.back.der"
check "…with the uploaded DER" cmp -s "$O/lca/ca.der" "$O/lca.back.der"
code=$(dsoap '<tds:GetCertificates/>')
check "…and GetCertificates does not list the CA certificate" [ "$(xpath "$R" "count(//*[local-name()='NvtCertificate'][*[local-name()='CertificateID']='legacy-ca'])")" = 0 ]
code=$(sec '<tas:GetAllCertificates/>')
check "the legacy certificates are keystore certificates (aliases legacy-cert, legacy-ca)" \
    [ "$(vals Certificate Alias)" = "legacy-ca legacy-cert" ]
code=$(sec '<tas:GetAllKeys/>')
nkeys=$(count KeyAttribute)
code=$(dsoap '<tds:DeleteCertificates><tds:CertificateID>legacy-cert</tds:CertificateID></tds:DeleteCertificates>')
expect "$code" 200 "tds:DeleteCertificates legacy-cert → 200"
code=$(dsoap '<tds:GetCertificates/>')
check "…GetCertificates no longer lists it" bash -c "[ '$code' = 200 ] && ! grep -q '>legacy-cert<' '$R'"
code=$(sec '<tas:GetAllKeys/>')
# Security: deleting a certificate never deletes its key (it may serve other
# certificates or the Security service); the key stays listed.
check "…and its key stays in the keystore ($nkeys → $(count KeyAttribute) keys)" [ "$(count KeyAttribute)" = "$nkeys" ]
code=$(dsoap '<tds:DeleteCertificates><tds:CertificateID>legacy-cert</tds:CertificateID></tds:DeleteCertificates>')
expect "$code" "400/ter:InvalidArgVal ter:CertificateID" "DeleteCertificates of it again → ter:CertificateID"
code=$(dsoap '<tds:LoadCACertificates><tds:CACertificate><tt:CertificateID>junk</tt:CertificateID><tt:Certificate><tt:Data>bm90IGEgY2VydGlmaWNhdGU=</tt:Data></tt:Certificate></tds:CACertificate></tds:LoadCACertificates>')
expect "$code" "400/ter:InvalidArgVal ter:CertificateFormat" "LoadCACertificates of garbage → ter:CertificateFormat"
code=$(SOAP_CRED='nobody:Wrong-Pass-1' dsoap '<tds:CreateCertificate><tds:Subject>CN=x</tds:Subject></tds:CreateCertificate>')
expect "$code" "401/ter:NotAuthorized" "CreateCertificate with wrong credentials → 401"
stop_daemon
check "clean exit" [ "$DAEMON_RC" = 0 ]

log "keystore-certs.sh ran in $((SECONDS - T0)) s"
all_responses_valid
finish
