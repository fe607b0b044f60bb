#!/usr/bin/env bash
# TLS policy: server certificate assignment (served chain, replacement under
# load with no failed request), TLS versions, client-certificate
# authentication with validation policies (trust anchors, CRLs, CN to user),
# and the legacy client certificate mode. openssl s_client / verify, curl and
# the gSOAP client judge what the device does.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/keystore_lib.sh"
O=$WORK/pki
mkdir -p "$O"

cat > "$WORK/config.xml" <<EOF
<opennvt><security><confirm-window-s>0</confirm-window-s></security></opennvt>
EOF
start_daemon --config "$WORK/config.xml"
sec_url
DEVCA=$O/device-ca.pem
curl -sS --max-time 10 -o "$DEVCA" "http://127.0.0.1:$HTTP_PORT/certs/device-ca.pem"
SURL="https://127.0.0.1:$HTTPS_PORT/onvif/device_service"
SSEC="https://127.0.0.1:$HTTPS_PORT/onvif/security_service"
# sclient ARGS...: one handshake to the HTTPS port, output in $WORK/sclient.out
sclient() { timeout 15 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" "$@" < /dev/null > "$WORK/sclient.out" 2>&1; }
served_leaf() { sclient -showcerts "$@" || true; openssl x509 -in "$WORK/sclient.out" -noout -subject -nameopt RFC2253 2>/dev/null | sed 's/^subject= *//'; }
served_chain_len() { grep -c 'BEGIN CERTIFICATE' "$WORK/sclient.out"; }

# ---- capabilities ----
code=$(sec '<tas:GetServiceCapabilities/>')
expect "$code" 200 "GetServiceCapabilities → 200"
check "TLSServerCapabilities: TLSServerSupported '1.2 1.3', client auth and CnMapsToUser supported" \
    [ "$(xpath "$R" 'string(//*[local-name()="TLSServerCapabilities"]/@TLSServerSupported)')/$(xpath "$R" 'string(//*[local-name()="TLSServerCapabilities"]/@TLSClientAuthSupported)')/$(xpath "$R" 'string(//*[local-name()="TLSServerCapabilities"]/@CnMapsToUserSupported)')" = "1.2 1.3/true/true" ]

# ---- TLS versions ----
code=$(sec '<tas:GetEnabledTLSVersions/>')
check "GetEnabledTLSVersions: 1.2 1.3 ($code)" [ "$code/$(val Versions)" = "200/1.2 1.3" ]
code=$(sec '<tas:SetEnabledTLSVersions><tas:Versions>1.1 1.2</tas:Versions></tas:SetEnabledTLSVersions>')
expect "$code" "400/ter:InvalidArgVal ter:TLSVersion" "SetEnabledTLSVersions '1.1 1.2' → ter:TLSVersion"
code=$(sec '<tas:SetEnabledTLSVersions><tas:Versions></tas:Versions></tas:SetEnabledTLSVersions>')
expect "$code" "400/ter:InvalidArgVal ter:EmptyList" "SetEnabledTLSVersions '' → ter:EmptyList"
code=$(sec '<tas:SetEnabledTLSVersions><tas:Versions>1.3</tas:Versions></tas:SetEnabledTLSVersions>')
expect "$code" 200 "SetEnabledTLSVersions '1.3' → 200"
sleep 0.3
check "  ... TLS 1.2 is now refused" not sclient -tls1_2 -CAfile "$DEVCA"
check "  ... TLS 1.3 works" sclient -tls1_3 -CAfile "$DEVCA" -verify_return_error
code=$(ONVIF_CAFILE=$DEVCA "$ONVIF_CLIENT" tls-versions "$SSEC" > "$WORK/gc.out" || true; sed -n 's/^tls-versions=//p' "$WORK/gc.out")
check "gSOAP client over HTTPS reads the versions back ($code)" [ "$code" = 1.3 ]
code=$(sec '<tas:SetEnabledTLSVersions><tas:Versions>1.2 1.3</tas:Versions></tas:SetEnabledTLSVersions>')
expect "$code" 200 "SetEnabledTLSVersions '1.2 1.3' → 200"
sleep 0.3
check "  ... TLS 1.2 works again" sclient -tls1_2 -CAfile "$DEVCA" -verify_return_error

# ---- server certificates: a CA-issued identity uploaded as PKCS#12 ----
# p12_identity NAME CN KEYSPEC DAYS: a key (openssl genpkey KEYSPEC) and a leaf
# issued by the test server CA, uploaded; prints the CertificationPathID
P12_PW='P12-Export-Pass-7'
ca_make "$O/srvca" "Test Server CA"
p12_identity() {
    local n=$1
    openssl genpkey $3 -out "$O/$n.key" 2>/dev/null
    openssl req -new -key "$O/$n.key" -subj "/CN=$2" -outform DER -out "$O/$n.csr" 2>/dev/null
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
        'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1' > "$O/$n.ext"
    openssl req -inform DER -in "$O/$n.csr" -out "$O/$n.csr.pem" 2>/dev/null
    openssl x509 -req -in "$O/$n.csr.pem" -CA "$O/srvca/ca.pem" -CAkey "$O/srvca/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days "$4" -sha256 -extfile "$O/$n.ext" -out "$O/$n.pem" 2>/dev/null
    openssl pkcs12 -export -inkey "$O/$n.key" -in "$O/$n.pem" -certfile "$O/srvca/ca.pem" -passout "pass:$P12_PW" \
        -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -out "$O/$n.p12" 2>/dev/null
    sec "<tas:UploadCertificateWithPrivateKeyInPKCS12><tas:CertWithPrivateKey>$(b64 "$O/$n.p12")</tas:CertWithPrivateKey><tas:CertificationPathAlias>$n</tas:CertificationPathAlias><tas:KeyAlias>$n-key</tas:KeyAlias><tas:IgnoreAdditionalCertificates>false</tas:IgnoreAdditionalCertificates><tas:Passphrase>$P12_PW</tas:Passphrase></tas:UploadCertificateWithPrivateKeyInPKCS12>" "$WORK/p12.xml" >/dev/null
    val CertificationPathID "$WORK/p12.xml"
}
PATH_A=$(p12_identity srv-a server-a.test "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" 30)
PATH_B=$(p12_identity srv-b server-b.test "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" 30)
check "two server identities uploaded ($PATH_A, $PATH_B)" [ -n "$PATH_A" ] && [ -n "$PATH_B" ]

check "before any assignment the device CA's certificate is served" bash -c "sclient -CAfile '$DEVCA' -verify_return_error; true" 
check "  ... and it verifies against the device CA" grep -q 'Verify return code: 0 (ok)' "$WORK/sclient.out"
code=$(sec '<tas:GetAssignedServerCertificates/>')
check "GetAssignedServerCertificates: none ($code)" [ "$code/$(count CertificationPathID)" = 200/0 ]
code=$(sec "<tas:AddServerCertificateAssignment><tas:CertificationPathID>PATH-999</tas:CertificationPathID></tas:AddServerCertificateAssignment>")
expect "$code" "400/ter:InvalidArgVal ter:CertificationPathID" "AddServerCertificateAssignment of an unknown path → ter:CertificationPathID"
code=$(sec "<tas:AddServerCertificateAssignment><tas:CertificationPathID>$PATH_A</tas:CertificationPathID></tas:AddServerCertificateAssignment>")
expect "$code" 200 "AddServerCertificateAssignment $PATH_A → 200"
code=$(sec "<tas:AddServerCertificateAssignment><tas:CertificationPathID>$PATH_A</tas:CertificationPathID></tas:AddServerCertificateAssignment>")
expect "$code" 200 "  ... again: no effect, 200"
code=$(sec "<tas:AddServerCertificateAssignment><tas:CertificationPathID>$PATH_B</tas:CertificationPathID></tas:AddServerCertificateAssignment>")
expect "$code" "500/ter:Action ter:MaximumNumberOfTLSCertificationPathsReached" "a second EC path → MaximumNumberOfTLSCertificationPathsReached"
code=$(sec '<tas:GetAssignedServerCertificates/>')
check "GetAssignedServerCertificates: $PATH_A ($code)" [ "$code/$(val CertificationPathID)" = "200/$PATH_A" ]
check "new handshakes present server-a.test" [ "$(served_leaf -CAfile "$O/srvca/ca.pem")" = "CN=server-a.test" ]
check "  ... with the whole chain (leaf and CA)" [ "$(served_chain_len)" = 2 ]
check "  ... which openssl verifies against the test CA, for 127.0.0.1" sclient -CAfile "$O/srvca/ca.pem" -verify_return_error -verify_ip 127.0.0.1
openssl x509 -in "$WORK/sclient.out" -out "$O/served.pem" 2>/dev/null || true
check "openssl verify: served leaf against the test CA" openssl verify -CAfile "$O/srvca/ca.pem" "$O/served.pem"
export CURL_CA_BUNDLE=$O/srvca/ca.pem
code=$(URL=$SURL soap '<tds:GetDeviceInformation/>')
check "Digest over HTTPS with the assigned certificate → 200 ($code)" [ "$code" = 200 ]
code=$(sec "<tas:DeleteCertificationPath><tas:CertificationPathID>$PATH_A</tas:CertificationPathID></tas:DeleteCertificationPath>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "an assigned path cannot be deleted → ter:ReferenceExists"
code=$(sec "<tas:RemoveServerCertificateAssignment><tas:CertificationPathID>$PATH_A</tas:CertificationPathID></tas:RemoveServerCertificateAssignment>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "removing the last assignment while HTTPS is on → ter:ReferenceExists"
code=$(sec "<tas:RemoveServerCertificateAssignment><tas:CertificationPathID>$PATH_B</tas:CertificationPathID></tas:RemoveServerCertificateAssignment>")
expect "$code" "400/ter:InvalidArgVal ter:OldCertificationPathID" "removing an unassigned path → ter:OldCertificationPathID"

# Replacement under load: a keep-alive client and a stream of new connections
# keep requesting while the certificate is replaced; none may fail.
cat "$O/srvca/ca.pem" "$DEVCA" > "$O/both.pem"
export CURL_CA_BUNDLE=$O/both.pem
load_until() { # load_until FLAGFILE OUT: HTTPS requests on fresh connections until FLAGFILE exists
    local ok=0 bad=0 c
    while [ ! -e "$1" ] && [ $((ok + bad)) -lt 2000 ]; do
        c=$(curl -sS --max-time 10 --digest -u "$ADMIN_USER:$ADMIN_PASS" -o /dev/null -w '%{http_code}' -X POST \
            -H 'Content-Type: application/soap+xml' --data-binary '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetDeviceInformation/></s:Body></s:Envelope>' \
            "$SURL" 2>/dev/null || true)
        if [ "$c" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    done
    echo "$ok $bad" > "$2"
}
# a long keep-alive connection: 40 requests in one curl (one TCP+TLS connection)
ka_urls=(); for _ in $(seq 40); do ka_urls+=(-o /dev/null "$SURL"); done
( curl -sS --max-time 60 --digest -u "$ADMIN_USER:$ADMIN_PASS" -w '%{http_code} %{num_connects}\n' \
    -X POST -H 'Content-Type: application/soap+xml' --data-binary '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetSystemDateAndTime/></s:Body></s:Envelope>' \
    --rate 20/s "${ka_urls[@]}" > "$WORK/ka.out" 2>&1 || true ) &
KA_PID=$!
load_until "$WORK/stop" "$WORK/load1.out" &
L1=$!
load_until "$WORK/stop" "$WORK/load2.out" &
L2=$!
sleep 1
code=$(sec "<tas:ReplaceServerCertificateAssignment><tas:OldCertificationPathID>$PATH_A</tas:OldCertificationPathID><tas:NewCertificationPathID>$PATH_B</tas:NewCertificationPathID></tas:ReplaceServerCertificateAssignment>")
expect "$code" 200 "ReplaceServerCertificateAssignment $PATH_A → $PATH_B under load → 200"
sleep 1.5
touch "$WORK/stop"
wait "$L1" "$L2" "$KA_PID" || true
read -r ok1 bad1 < "$WORK/load1.out"; read -r ok2 bad2 < "$WORK/load2.out"
check "no failed request during the replacement ($((ok1 + ok2)) ok, $((bad1 + bad2)) failed)" [ $((bad1 + bad2)) = 0 ] && [ $((ok1 + ok2)) -gt 5 ]
ka_codes=$(awk '{print $1}' "$WORK/ka.out" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
ka_conns=$(awk '{s += $2} END {print s}' "$WORK/ka.out")
check "the kept-alive connection was not dropped (40 × 200 on $ka_conns connection: $ka_codes)" \
    [ "$(grep -c '^200 ' "$WORK/ka.out")" = 40 ] && [ "$ka_conns" = 1 ]
check "new handshakes present server-b.test" [ "$(served_leaf -CAfile "$O/srvca/ca.pem")" = "CN=server-b.test" ]
code=$(sec "<tas:ReplaceServerCertificateAssignment><tas:OldCertificationPathID>$PATH_A</tas:OldCertificationPathID><tas:NewCertificationPathID>$PATH_B</tas:NewCertificationPathID></tas:ReplaceServerCertificateAssignment>")
expect "$code" "400/ter:InvalidArgVal ter:OldCertificationPathID" "Replace of a path no longer assigned → ter:OldCertificationPathID"
code=$(sec "<tas:ReplaceServerCertificateAssignment><tas:OldCertificationPathID>$PATH_B</tas:OldCertificationPathID><tas:NewCertificationPathID>PATH-999</tas:NewCertificationPathID></tas:ReplaceServerCertificateAssignment>")
expect "$code" "400/ter:InvalidArgVal ter:NewCertificationPathID" "Replace with an unknown path → ter:NewCertificationPathID"
code=$(sec "<tas:DeleteCertificationPath><tas:CertificationPathID>$PATH_A</tas:CertificationPathID></tas:DeleteCertificationPath>")
expect "$code" 200 "the replaced path is free again: DeleteCertificationPath → 200"

# ---- client authentication ----
code=$(sec '<tas:SetClientAuthenticationRequired><tas:clientAuthenticationRequired>true</tas:clientAuthenticationRequired></tas:SetClientAuthenticationRequired>')
expect "$code" "500/ter:ActionNotSupported ter:EnablingClientAuthenticationFailed" "client auth without a validation policy → EnablingClientAuthenticationFailed"
ca_make "$O/cli" "Test Client CA"
ca_make "$O/other" "Other CA"
code=$(upload_cert "$O/cli/ca.der" client-ca); CLI_CA=$(val CertificateID)
expect "$code" 200 "client CA certificate uploaded ($CLI_CA)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/leaf.key" -subj /CN=not-a-ca \
    -addext basicConstraints=critical,CA:FALSE -days 30 -outform DER -out "$O/leaf.der" 2>/dev/null
code=$(upload_cert "$O/leaf.der" not-a-ca); LEAF_ID=$(val CertificateID)
expect "$code" 200 "a CA:FALSE certificate uploaded ($LEAF_ID)"
code=$(sec "<tas:CreateCertPathValidationPolicy><tas:Alias>leaf</tas:Alias><tas:Parameters/><tas:TrustAnchor><tas:CertificateID>$LEAF_ID</tas:CertificateID></tas:TrustAnchor></tas:CreateCertPathValidationPolicy>")
expect "$code" "400/ter:InvalidArgVal ter:CertificateID" "a non-CA trust anchor ($LEAF_ID) is refused → ter:CertificateID"
code=$(sec "<tas:CreateCertPathValidationPolicy><tas:Alias>clients</tas:Alias><tas:Parameters><tas:RequireTLSWWWClientAuthExtendedKeyUsage>true</tas:RequireTLSWWWClientAuthExtendedKeyUsage></tas:Parameters><tas:TrustAnchor><tas:CertificateID>$CLI_CA</tas:CertificateID></tas:TrustAnchor></tas:CreateCertPathValidationPolicy>")
expect "$code" 200 "CreateCertPathValidationPolicy (client CA, client-auth EKU required) → 200"
CPV=$(val CertPathValidationPolicyID)
code=$(sec "<tas:GetCertPathValidationPolicy><tas:CertPathValidationPolicyID>$CPV</tas:CertPathValidationPolicyID></tas:GetCertPathValidationPolicy>")
expect "$code" 200 "GetCertPathValidationPolicy $CPV → 200"
check "  ... alias, anchor and EKU flag as created" \
    [ "$(val Alias)/$(xpath "$R" 'string(//*[local-name()="TrustAnchor"]/*[local-name()="CertificateID"])')/$(val RequireTLSWWWClientAuthExtendedKeyUsage)" = "clients/$CLI_CA/true" ]
code=$(sec '<tas:GetAllCertPathValidationPolicies/>')
check "GetAllCertPathValidationPolicies lists it ($code)" [ "$code/$(count CertPathValidationPolicy)" = 200/1 ]
code=$(sec "<tas:DeleteCertificate><tas:CertificateID>$CLI_CA</tas:CertificateID></tas:DeleteCertificate>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "a trust anchor cannot be deleted → ter:ReferenceExists"
code=$(sec "<tas:AddCertPathValidationPolicyAssignment><tas:CertPathValidationPolicyID>CPVP-999</tas:CertPathValidationPolicyID></tas:AddCertPathValidationPolicyAssignment>")
expect "$code" "400/ter:InvalidArgVal ter:CertPathValidationPolicyID" "assigning an unknown policy → ter:CertPathValidationPolicyID"
code=$(sec "<tas:AddCertPathValidationPolicyAssignment><tas:CertPathValidationPolicyID>$CPV</tas:CertPathValidationPolicyID></tas:AddCertPathValidationPolicyAssignment>")
expect "$code" 200 "AddCertPathValidationPolicyAssignment $CPV → 200"
code=$(sec "<tas:DeleteCertPathValidationPolicy><tas:CertPathValidationPolicyID>$CPV</tas:CertPathValidationPolicyID></tas:DeleteCertPathValidationPolicy>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "an assigned policy cannot be deleted → ter:ReferenceExists"
code=$(sec '<tas:GetAssignedCertPathValidationPolicies/>')
check "GetAssignedCertPathValidationPolicies: $CPV ($code)" [ "$code/$(val CertPathValidationPolicyID)" = "200/$CPV" ]

# client_cert NAME CN CADIR [EKU]: a key and certificate for a TLS client (PEM key+cert in NAME.both.pem)
client_cert() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$O/$1.key" 2>/dev/null
    openssl req -new -key "$O/$1.key" -subj "/O=Clients/CN=$2" -out "$O/$1.csr" 2>/dev/null
    { echo 'basicConstraints=critical,CA:FALSE'; echo 'keyUsage=critical,digitalSignature'; [ -z "${4:-}" ] || echo "extendedKeyUsage=$4"; } > "$O/$1.ext"
    openssl x509 -req -in "$O/$1.csr" -CA "$O/$3/ca.pem" -CAkey "$O/$3/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 30 -sha256 -extfile "$O/$1.ext" -out "$O/$1.pem" 2>/dev/null
    cat "$O/$1.key" "$O/$1.pem" > "$O/$1.both.pem"
}
client_cert admin-cli "$ADMIN_USER" cli clientAuth
client_cert noeku "$ADMIN_USER" cli
client_cert stranger "$ADMIN_USER" other clientAuth
client_cert nobody no-such-user cli clientAuth
code=$(sec '<tas:SetClientAuthenticationRequired><tas:clientAuthenticationRequired>true</tas:clientAuthenticationRequired></tas:SetClientAuthenticationRequired>')
expect "$code" 200 "SetClientAuthenticationRequired true → 200"
sleep 0.3
code=$(sec '<tas:GetClientAuthenticationRequired/>')
check "GetClientAuthenticationRequired: true" [ "$code/$(val clientAuthenticationRequired)" = 200/true ]
code=$(soap '<tds:GetClientCertificateMode/>')
check "legacy GetClientCertificateMode: true ($code)" [ "$code/$(val Enabled)" = 200/true ]
CA_B=$O/srvca/ca.pem
check "s_client (TLS 1.2) without a client certificate: handshake refused" not sclient -CAfile "$CA_B" -verify_return_error -tls1_2
check "s_client with a certificate from the client CA: handshake done" sclient -CAfile "$CA_B" -cert "$O/admin-cli.pem" -key "$O/admin-cli.key" -verify_return_error
# TLS 1.3 reports a refused client certificate after the handshake: a request tells.
mtls() { # mtls NAME [curl args...]: GetUsers over HTTPS with that client certificate; prints the status
    local n=$1; shift
    curl -sS --max-time 10 --cacert "$CA_B" --cert "$O/$n.pem" --key "$O/$n.key" -o "$R" -w '%{http_code}' -X POST "$@" \
        -H 'Content-Type: application/soap+xml' --data-binary '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetUsers/></s:Body></s:Envelope>' \
        "$SURL" 2>/dev/null || true
}
check "curl mutual TLS + Digest → 200" [ "$(mtls admin-cli --digest -u "$ADMIN_USER:$ADMIN_PASS")" = 200 ]
check "curl mutual TLS without Digest (CnMapsToUser off) → 401" [ "$(mtls admin-cli)" = 401 ]
check "a certificate without the client-auth EKU is refused" [ "$(mtls noeku --digest -u "$ADMIN_USER:$ADMIN_PASS")" = 000 ]
check "a certificate from another CA is refused" [ "$(mtls stranger --digest -u "$ADMIN_USER:$ADMIN_PASS")" = 000 ]
check "curl without a client certificate is refused" \
    [ "$(curl -sS --max-time 10 --cacert "$CA_B" -o /dev/null -w '%{http_code}' "$SURL" 2>/dev/null || true)" = 000 ]
check "refusals logged" grep -q 'client certificate refused' "$WORK/daemon.log"
out=$(ONVIF_CAFILE=$CA_B ONVIF_CLIENT_PEM=$O/admin-cli.both.pem "$ONVIF_CLIENT" users "$SURL" 2>&1 || true)
check "gSOAP client with a client certificate + UsernameToken over HTTPS lists users" grep -q "^user=$ADMIN_USER 0" <<< "$out"
out=$(ONVIF_CAFILE=$CA_B "$ONVIF_CLIENT" users "$SURL" 2>&1 || true)
check "gSOAP client without a client certificate fails" not grep -q "^user=" <<< "$out"

# CN to user
code=$(sec '<tas:SetCnMapsToUser><tas:cnMapsToUser>true</tas:cnMapsToUser></tas:SetCnMapsToUser>')
expect "$code" 200 "SetCnMapsToUser true → 200"
sleep 0.3
code=$(sec '<tas:GetCnMapsToUser/>')
check "GetCnMapsToUser: true" [ "$code/$(val cnMapsToUser)" = 200/true ]
check "client certificate CN=$ADMIN_USER alone authenticates as the Administrator" [ "$(mtls admin-cli)" = 200 ]
check "  ... and the response lists the users" grep -q "<tt:Username>$ADMIN_USER</tt:Username>\|>$ADMIN_USER<" "$R"
check "a CN that is no user → 403" [ "$(mtls nobody)" = 403 ]
code=$(soap "<tds:CreateUsers><tds:User><tt:Username>viewer</tt:Username><tt:Password>View-Only-Pass-9</tt:Password><tt:UserLevel>User</tt:UserLevel></tds:User></tds:CreateUsers>")
expect "$code" 200 "CreateUsers viewer (User level) → 200"
client_cert viewer viewer cli clientAuth
check "CN=viewer may not GetUsers → 403" [ "$(mtls viewer)" = 403 ]
check "Digest still works alongside the certificate" [ "$(mtls viewer --digest -u "$ADMIN_USER:$ADMIN_PASS")" = 200 ]

# CRLs from the keystore: revoke the admin client certificate
mkdir -p "$O/cli/db"; : > "$O/cli/db/index.txt"; echo 01 > "$O/cli/db/crlnumber"
cat > "$O/cli/ca.cnf" <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $O/cli/db/index.txt
crlnumber = $O/cli/db/crlnumber
certificate = $O/cli/ca.pem
private_key = $O/cli/ca.key
default_md = sha256
default_crl_days = 30
CNF
openssl ca -config "$O/cli/ca.cnf" -revoke "$O/admin-cli.pem" -batch 2>/dev/null || true
openssl ca -config "$O/cli/ca.cnf" -gencrl -batch -out "$O/cli.crl.pem" 2>/dev/null || true
openssl crl -in "$O/cli.crl.pem" -outform DER -out "$O/cli.crl.der" 2>/dev/null || true
check "before the CRL the admin certificate works" [ "$(mtls admin-cli)" = 200 ]
code=$(sec "<tas:UploadCRL><tas:Crl>$(b64 "$O/cli.crl.der")</tas:Crl><tas:Alias>clients-crl</tas:Alias></tas:UploadCRL>" "$WORK/crl.xml")
expect "$code" 200 "UploadCRL revoking the admin client certificate → 200" "$WORK/crl.xml"
check "the revoked certificate is refused on a new connection" [ "$(mtls admin-cli)" = 000 ]
check "the viewer certificate of the same CA still works (with Digest)" [ "$(mtls viewer --digest -u "$ADMIN_USER:$ADMIN_PASS")" = 200 ]

code=$(sec "<tas:RemoveCertPathValidationPolicyAssignment><tas:CertPathValidationPolicyID>$CPV</tas:CertPathValidationPolicyID></tas:RemoveCertPathValidationPolicyAssignment>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "the last policy cannot be removed while client auth is on → ter:ReferenceExists"
code=$(soap '<tds:SetClientCertificateMode><tds:Enabled>false</tds:Enabled></tds:SetClientCertificateMode>')
expect "$code" 200 "legacy SetClientCertificateMode false → 200"
sleep 0.3
code=$(sec '<tas:GetClientAuthenticationRequired/>')
check "  ... GetClientAuthenticationRequired: false" [ "$code/$(val clientAuthenticationRequired)" = 200/false ]
check "  ... plain HTTPS without a client certificate works again" \
    [ "$(URL=$SURL soap '<tds:GetDeviceInformation/>')" = 200 ]
code=$(sec "<tas:RemoveCertPathValidationPolicyAssignment><tas:CertPathValidationPolicyID>$CPV</tas:CertPathValidationPolicyID></tas:RemoveCertPathValidationPolicyAssignment>")
expect "$code" 200 "RemoveCertPathValidationPolicyAssignment → 200"
code=$(sec "<tas:DeleteCertPathValidationPolicy><tas:CertPathValidationPolicyID>$CPV</tas:CertPathValidationPolicyID></tas:DeleteCertPathValidationPolicy>")
expect "$code" 200 "DeleteCertPathValidationPolicy → 200"

# ---- persistence: the assignment and versions survive a restart ----
stop_daemon
check "daemon exits 0 ($DAEMON_RC)" [ "$DAEMON_RC" = 0 ]
check "tlspolicy.xml is 0600" [ "$(stat -c %a "$STATE/tlspolicy.xml")" = 600 ]
start_daemon --config "$WORK/config.xml"
sec_url
SURL="https://127.0.0.1:$HTTPS_PORT/onvif/device_service"
check "after a restart server-b.test is still served" [ "$(served_leaf -CAfile "$O/srvca/ca.pem")" = "CN=server-b.test" ]
check "no secret in the log" not grep -q "$P12_PW\|$ADMIN_PASS" "$WORK/daemon.log"
all_responses_valid
stop_daemon
finish
