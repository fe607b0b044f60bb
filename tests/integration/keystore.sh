#!/usr/bin/env bash
# The keystore of the Security Configuration Service (tas) end to end:
# capabilities, key generation (asynchronous), PKCS#10 requests, self-signed
# and uploaded certificates, certification paths and referential integrity,
# PKCS#8 and PKCS#12 uploads, passphrases, CRLs, limits, persistence, crash
# safety and access control. The openssl CLI judges everything the device
# produces; every response and fault is validated against the ONVIF schemas.
# The device CA, the factory identity and the legacy Device operations are in
# keystore-certs.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/keystore_lib.sh"
T0=$SECONDS
O=$WORK/o   # openssl material
mkdir -p "$O"

# Hermetic: no factory identity from the host (/etc/opennvt/factory).
cat > "$WORK/main.xml" <<XML
<opennvt><security><factory-dir>$WORK/no-factory</factory-dir></security></opennvt>
XML
start_daemon --config "$WORK/main.xml"
sec_url

# ---- 1. Service discovery and capabilities ----
code=$(dsoap '<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>' "$R")
expect "$code" 200 "GetServices(IncludeCapability) 200"
SVC="//*[local-name()='Service'][*[local-name()='Namespace']='$TAS_NS']"
check "GetServices lists the security service at the address used" \
    [ "$(xpath "$R" "string($SVC/*[local-name()='XAddr'])")" = "$SEC_URL" ]
check "…with its KeystoreCapabilities" \
    [ "$(xpath "$R" "count($SVC/*[local-name()='Capabilities']//*[local-name()='KeystoreCapabilities'])")" = 1 ]
code=$(sec '<tas:GetServiceCapabilities/>')
expect "$code" 200 "tas:GetServiceCapabilities 200 (schema-valid)"
kc() { xpath "$R" "string(//*[local-name()='KeystoreCapabilities']/@$1)" || true; }
check "RSAKeyLengths \"2048 3072 4096\"" [ "$(kc RSAKeyLengths)" = "2048 3072 4096" ]
check "EllipticCurves secp256r1 secp384r1" [ "$(kc EllipticCurves)" = "secp256r1 secp384r1" ]
check "PKCS10/PKCS8/PKCS12/SelfSignedCertificateCreation true" \
    [ "$(kc PKCS10)/$(kc PKCS8)/$(kc PKCS12)/$(kc SelfSignedCertificateCreation)" = true/true/true/true ]
check "maxima: keys 32, certificates 64, paths 32, passphrases 16, CRLs 16" \
    [ "$(kc MaximumNumberOfKeys)/$(kc MaximumNumberOfCertificates)/$(kc MaximumNumberOfCertificationPaths)/$(kc MaximumNumberOfPassphrases)/$(kc MaximumNumberOfCRLs)" = 32/64/32/16/16 ]
check "signature algorithms listed (sha256WithRSA, ecdsa-with-SHA256)" \
    bash -c "grep -q '$SHA256_RSA' '$R' && grep -q '$SHA256_ECDSA' '$R'"

# ---- 2. Key generation ----
code=$(SEC_FMT='%{http_code} %{time_total}' sec '<tas:CreateRSAKeyPair><tas:KeyLength>4096</tas:KeyLength><tas:Alias>big</tas:Alias></tas:CreateRSAKeyPair>')
K_BIG=$(val KeyID)
expect "${code% *}" 200 "CreateRSAKeyPair 4096 → 200"
check "…answered at once ($(printf '%s' "${code#* }") s < 1 s) with a KeyID ($K_BIG) and EstimatedCreationTime ($(val EstimatedCreationTime))" \
    bash -c "awk 'BEGIN{exit !(${code#* } < 1.0)}' && [ -n '$K_BIG' ] && [ -n '$(val EstimatedCreationTime)' ]"
code=$(SEC_FMT='%{http_code} %{time_total}' sec "<tas:GetKeyStatus><tas:KeyID>$K_BIG</tas:KeyID></tas:GetKeyStatus>")
st=$(val KeyStatus)
expect "${code% *}" 200 "GetKeyStatus during the RSA-4096 generation → 200"
check "…answered in ${code#* } s (< 1 s) while the key is still \"generating\" (got \"$st\")" \
    bash -c "awk 'BEGIN{exit !(${code#* } < 1.0)}' && [ '$st' = generating ]"
code=$(SEC_FMT='%{http_code} %{time_total}' sec '<tas:GetAllKeys/>')
check "GetAllKeys during the generation answered in ${code#* } s (< 1 s)" \
    bash -c "awk 'BEGIN{exit !(${code#* } < 1.0)}' && [ '${code% *}' = 200 ]"

code=$(sec '<tas:CreateRSAKeyPair><tas:KeyLength>2048</tas:KeyLength><tas:Alias>rsa2048</tas:Alias></tas:CreateRSAKeyPair>')
expect "$code" 200 "CreateRSAKeyPair 2048 → 200"
K_RSA=$(val KeyID)
check "…KeyID ($K_RSA) and EstimatedCreationTime ($(val EstimatedCreationTime)) at once" \
    [ -n "$K_RSA" -a -n "$(val EstimatedCreationTime)" ]
first=$(key_status "$K_RSA")
check "GetKeyStatus right after creation: \"$first\" (generating, or already ok)" \
    [ "$first" = generating -o "$first" = ok ]
valid "$WORK/ks.xml" || fail "GetKeyStatus response schema-valid"
check "RSA-2048 becomes \"ok\" (bounded poll)" [ "$(wait_key "$K_RSA" 200)" = ok ]
log "     (RSA-2048 was seen \"$first\" first; RSA-4096 was seen \"$st\")"

code=$(sec '<tas:CreateECCKeyPair><tas:EllipticCurve>secp256r1</tas:EllipticCurve><tas:Alias>p256</tas:Alias></tas:CreateECCKeyPair>')
expect "$code" 200 "CreateECCKeyPair secp256r1 → 200"
K_EC=$(val KeyID)
code=$(sec '<tas:CreateECCKeyPair><tas:EllipticCurve>secp384r1</tas:EllipticCurve></tas:CreateECCKeyPair>')
expect "$code" 200 "CreateECCKeyPair secp384r1 → 200"
K_EC384=$(val KeyID)
check "both EC keys become ok" [ "$(wait_key "$K_EC")/$(wait_key "$K_EC384")" = ok/ok ]
check "all KeyIDs distinct" [ "$(printf '%s\n' "$K_BIG" "$K_RSA" "$K_EC" "$K_EC384" | sort -u | wc -l)" = 4 ]
code=$(sec '<tas:CreateRSAKeyPair><tas:KeyLength>1024</tas:KeyLength></tas:CreateRSAKeyPair>')
expect "$code" "400/ter:InvalidArgVal ter:KeyLength" "CreateRSAKeyPair 1024 → ter:KeyLength"
code=$(sec '<tas:CreateECCKeyPair><tas:EllipticCurve>secp521r1</tas:EllipticCurve></tas:CreateECCKeyPair>')
expect "$code" "400/ter:InvalidArgVal ter:UnsupportedEllipticCurve" "CreateECCKeyPair secp521r1 → ter:UnsupportedEllipticCurve"
code=$(sec '<tas:GetKeyStatus><tas:KeyID>KEY-9999</tas:KeyID></tas:GetKeyStatus>')
expect "$code" "400/ter:InvalidArgVal ter:KeyID" "GetKeyStatus of an unknown KeyID → ter:KeyID"
code=$(sec '<tas:GetAllKeys/>')
expect "$code" 200 "GetAllKeys 200"
KA="//*[local-name()='KeyAttribute']"
ka() { xpath "$R" "string($KA[*[local-name()='KeyID']='$1']/*[local-name()='$2'])" || true; }
check "GetAllKeys lists the four keys" [ "$(for k in "$K_BIG" "$K_RSA" "$K_EC" "$K_EC384"; do ka "$k" KeyID; echo; done | grep -c .)" = 4 ]
check "…each with hasPrivateKey true, externallyGenerated false" \
    [ "$(ka "$K_RSA" hasPrivateKey)/$(ka "$K_EC" hasPrivateKey)/$(ka "$K_EC384" hasPrivateKey)/$(ka "$K_RSA" externallyGenerated)" = true/true/true/false ]
check "…with the aliases given" [ "$(ka "$K_RSA" Alias)/$(ka "$K_EC" Alias)/$(ka "$K_BIG" Alias)" = rsa2048/p256/big ]

# ---- 3. PKCS#10 requests ----
SUBJ=$(subject_xml DE 'Acme Test GmbH' Bayern cam1.example.test Muenchen)
SAN_NAME=cam1.example.test   # 17 octets: GeneralNames = 30 13 82 11 <name>
printf '\x30\x13\x82\x11%s' "$SAN_NAME" > "$O/san.der"
check "hand-built subjectAltName DER parses with openssl asn1parse" \
    bash -c "openssl asn1parse -inform DER -in '$O/san.der' | grep -q 'cont \[ 2 \]'"
SAN_ATTR="<tas:CSRAttribute><tas:X509v3Extension><tas:extnOID>2.5.29.17</tas:extnOID><tas:critical>false</tas:critical><tas:extnValue>$(b64 "$O/san.der")</tas:extnValue></tas:X509v3Extension></tas:CSRAttribute>"
code=$(sec "<tas:CreatePKCS10CSR>$SUBJ<tas:KeyID>$K_RSA</tas:KeyID>$SAN_ATTR$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
expect "$code" 200 "CreatePKCS10CSR (C, O, ST, CN, L and a subjectAltName attribute) → 200"
b64file PKCS10CSR "$O/rsa.csr"
check "openssl req -inform DER -verify accepts the CSR" csr_ok "$O/rsa.csr"
subj=$(openssl req -inform DER -in "$O/rsa.csr" -noout -subject -nameopt RFC2253 2>/dev/null | sed 's/^subject=//' | tr ',' '\n' | sort | tr '\n' ',')
check "…subject matches (got $subj)" [ "$subj" = "C=DE,CN=cam1.example.test,L=Muenchen,O=Acme Test GmbH,ST=Bayern," ]
openssl req -inform DER -in "$O/rsa.csr" -noout -text > "$O/rsa.csr.txt" 2>/dev/null || true
check "…the subjectAltName extension request is in it (DNS:$SAN_NAME)" \
    bash -c "grep -A1 'Subject Alternative Name' '$O/rsa.csr.txt' | grep -q 'DNS:$SAN_NAME'"
check "…signed with sha256WithRSAEncryption" grep -q 'Signature Algorithm: sha256WithRSAEncryption' "$O/rsa.csr.txt"
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml ec.example.test)<tas:KeyID>$K_EC</tas:KeyID>$(alg_xml $SHA256_ECDSA)</tas:CreatePKCS10CSR>")
expect "$code" 200 "CreatePKCS10CSR for the EC key (ecdsa-with-SHA256) → 200"
b64file PKCS10CSR "$O/ec.csr"
check "openssl verifies the EC CSR" csr_ok "$O/ec.csr"
code=$(sec "<tas:CreatePKCS10CSR>$(subject_xml DEU Acme Bayern cam Muenchen)<tas:KeyID>$K_RSA</tas:KeyID>$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
expect "$code" "400/ter:InvalidArgVal ter:InvalidSubject" "Country \"DEU\" → ter:InvalidSubject"
CN65=$(printf 'a%.0s' $(seq 1 65))
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml "$CN65")<tas:KeyID>$K_RSA</tas:KeyID>$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
expect "$code" "400/ter:InvalidArgVal ter:InvalidSubject" "CommonName of 65 characters → ter:InvalidSubject"
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml "${CN65:1}")<tas:KeyID>$K_RSA</tas:KeyID>$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
expect "$code" 200 "CommonName of 64 characters → 200 (the limit)"
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml x)<tas:KeyID>KEY-9999</tas:KeyID>$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
expect "$code" "400/ter:InvalidArgVal ter:KeyID" "CreatePKCS10CSR with an unknown KeyID → ter:KeyID"
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml x)<tas:KeyID>$K_EC</tas:KeyID>$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
expect "$code" "400/ter:InvalidArgVal ter:KeySignatureAlgorithmMismatch" "sha256WithRSA for an EC key → ter:KeySignatureAlgorithmMismatch"

# ---- 4. Self-signed certificates ----
DATES='<tas:notValidBefore>2026-01-01T00:00:00Z</tas:notValidBefore><tas:notValidAfter>2027-06-30T12:00:00Z</tas:notValidAfter>'
code=$(sec "<tas:CreateSelfSignedCertificate>$(cn_xml self.example.test)<tas:KeyID>$K_RSA</tas:KeyID><tas:Alias>selfie</tas:Alias>$DATES$(alg_xml $SHA256_RSA)</tas:CreateSelfSignedCertificate>")
expect "$code" 200 "CreateSelfSignedCertificate (RSA, notValidBefore/After) → 200"
C_SELF=$(val CertificateID)
code=$(get_cert "$C_SELF" "$O/self.der")
expect "$code" 200 "GetCertificate $C_SELF → 200" "$WORK/gc.xml"
check "openssl x509 -inform DER reads it" openssl x509 -inform DER -in "$O/self.der" -noout
dates=$(openssl x509 -inform DER -in "$O/self.der" -noout -dates 2>/dev/null | tr '\n' ' ')
check "…validity honoured (got: $dates)" \
    [ "$dates" = "notBefore=Jan  1 00:00:00 2026 GMT notAfter=Jun 30 12:00:00 2027 GMT " ]
check "…its public key is the key's (equals the CSR's public key)" \
    [ -n "$(pubkey_of_csr "$O/rsa.csr")" -a "$(pubkey_of_cert "$O/self.der")" = "$(pubkey_of_csr "$O/rsa.csr")" ]
check "…self-signed: openssl verify -CAfile itself" \
    bash -c "openssl x509 -inform DER -in '$O/self.der' -out '$O/self.pem' && openssl verify -CAfile '$O/self.pem' '$O/self.pem' >/dev/null"
check "…GetCertificate names KeyID $K_RSA, alias selfie, HasPrivateKey true" \
    [ "$(val KeyID "$WORK/gc.xml")/$(val Alias "$WORK/gc.xml")/$(val HasPrivateKey "$WORK/gc.xml")" = "$K_RSA/selfie/true" ]
code=$(self_signed "$K_EC" ec-self.example.test $SHA256_ECDSA)
expect "$code" 200 "CreateSelfSignedCertificate (EC, default validity) → 200"
C_ECSELF=$(val CertificateID)
code=$(sec "<tas:CreateSelfSignedCertificate>$(cn_xml bad)<tas:KeyID>$K_RSA</tas:KeyID><tas:notValidBefore>2027-01-01T00:00:00Z</tas:notValidBefore><tas:notValidAfter>2026-01-01T00:00:00Z</tas:notValidAfter>$(alg_xml $SHA256_RSA)</tas:CreateSelfSignedCertificate>")
expect "$code" "400/ter:InvalidArgVal ter:InvalidDateTime" "notValidAfter before notValidBefore → ter:InvalidDateTime"
code=$(self_signed KEY-9999 x $SHA256_RSA)
expect "$code" "400/ter:InvalidArgVal ter:KeyID" "CreateSelfSignedCertificate with an unknown KeyID → ter:KeyID"
code=$(sec '<tas:GetAllCertificates/>')
expect "$code" 200 "GetAllCertificates 200"
check "…lists both self-signed certificates" bash -c "grep -q '>$C_SELF<' '$R' && grep -q '>$C_ECSELF<' '$R'"
code=$(sec '<tas:GetCertificate><tas:CertificateID>CERT-9999</tas:CertificateID></tas:GetCertificate>')
expect "$code" "400/ter:InvalidArgVal ter:CertificateID" "GetCertificate of an unknown ID → ter:CertificateID"

# ---- 5. Uploaded certificates ----
ca_make "$O/ca1" "Test CA One"
code=$(upload_cert "$O/ca1/ca.der" ca-one)
expect "$code" 200 "UploadCertificate of an openssl CA certificate (no key on the device) → 200"
C_CA1=$(val CertificateID) K_CA1=$(val KeyID)
check "…a new key ($K_CA1) was created for it" bash -c "[ -n '$K_CA1' ] && ! printf '%s\n' '$K_BIG' '$K_RSA' '$K_EC' '$K_EC384' | grep -qx '$K_CA1'"
code=$(sec "<tas:GetPrivateKeyStatus><tas:KeyID>$K_CA1</tas:KeyID></tas:GetPrivateKeyStatus>")
expect "$code" 200 "GetPrivateKeyStatus of that key 200"
check "…hasPrivateKey false (public key only)" [ "$(val hasPrivateKey)" = false ]
code=$(sec "<tas:GetPrivateKeyStatus><tas:KeyID>$K_EC</tas:KeyID></tas:GetPrivateKeyStatus>")
check "GetPrivateKeyStatus of a generated key: true" [ "$code/$(val hasPrivateKey)" = 200/true ]
ca_sign "$O/ca1" "$O/ec.csr" "$O/leaf1.pem"
openssl x509 -in "$O/leaf1.pem" -outform DER -out "$O/leaf1.der"
check "openssl: the CA-signed leaf verifies against the CA" quiet openssl verify -CAfile "$O/ca1/ca.pem" "$O/leaf1.pem"
code=$(upload_cert "$O/leaf1.der" leaf-one)
expect "$code" 200 "UploadCertificate of the device key's certificate (CSR signed by the openssl CA) → 200"
C_LEAF1=$(val CertificateID)
check "…bound to the device's KeyID $K_EC (got $(val KeyID))" [ "$(val KeyID)" = "$K_EC" ]
code=$(get_cert "$C_LEAF1" "$O/leaf1.back.der")
check "…GetCertificate returns exactly the uploaded DER" cmp -s "$O/leaf1.der" "$O/leaf1.back.der"
# PrivateKeyRequired (Security, UploadCertificate)
ca_make "$O/ca4" "Test CA Four"
code=$(sec "<tas:UploadCertificate><tas:Certificate>$(b64 "$O/ca4/ca.der")</tas:Certificate><tas:Alias>pkr</tas:Alias><tas:PrivateKeyRequired>true</tas:PrivateKeyRequired></tas:UploadCertificate>")
expect "$code" "500/ter:Action ter:NoMatchingPrivateKey" "UploadCertificate PrivateKeyRequired=true without a matching private key → ter:NoMatchingPrivateKey"
code=$(sec '<tas:GetAllCertificates/>')
check "…and the certificate was not stored" not grep -q '<[^>]*Alias>pkr<' "$R"
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml pkr.example.test)<tas:KeyID>$K_RSA</tas:KeyID>$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
b64file PKCS10CSR "$O/pkr.csr"
ca_sign "$O/ca1" "$O/pkr.csr" "$O/pkr.pem"
openssl x509 -in "$O/pkr.pem" -outform DER -out "$O/pkr.der"
code=$(sec "<tas:UploadCertificate><tas:Certificate>$(b64 "$O/pkr.der")</tas:Certificate><tas:PrivateKeyRequired>true</tas:PrivateKeyRequired></tas:UploadCertificate>")
expect "$code" 200 "UploadCertificate PrivateKeyRequired=true for a device key's certificate → 200"
check "…bound to $K_RSA" [ "$(val KeyID)" = "$K_RSA" ]
printf 'this is not a certificate' > "$O/garbage"
code=$(upload_cert "$O/garbage")
expect "$code" "400/ter:InvalidArgVal ter:BadCertificate" "UploadCertificate of garbage → ter:BadCertificate"
code=$(upload_cert "$O/ca1/ca.der")
expect "$code" "400/ter:InvalidArgVal ter:Duplicate" "the same certificate uploaded twice → ter:Duplicate"
code=$(sec "<tas:UploadCertificate><tas:Certificate>$(base64 -w0 < "$O/ca1/ca.pem")</tas:Certificate></tas:UploadCertificate>")
expect "$code" "400/ter:InvalidArgVal ter:Duplicate" "…also when sent as PEM → ter:Duplicate"

# ---- 6. Certification paths and referential integrity ----
ids_xml() { local i; printf '<tas:CertificateIDs>'; for i; do printf '<tas:CertificateID>%s</tas:CertificateID>' "$i"; done; printf '</tas:CertificateIDs>'; }
code=$(sec "<tas:CreateCertificationPath>$(ids_xml "$C_LEAF1" "$C_CA1")<tas:Alias>path-one</tas:Alias></tas:CreateCertificationPath>")
expect "$code" 200 "CreateCertificationPath [leaf, CA] → 200"
P1=$(val CertificationPathID)
code=$(sec "<tas:CreateCertificationPath>$(ids_xml "$C_CA1" "$C_LEAF1")</tas:CreateCertificationPath>")
expect "$code" "400/ter:InvalidArgVal ter:InvalidCertificationPath" "CreateCertificationPath [CA, leaf] (wrong order) → ter:InvalidCertificationPath"
code=$(sec "<tas:CreateCertificationPath>$(ids_xml "$C_SELF" "$C_CA1")</tas:CreateCertificationPath>")
expect "$code" "400/ter:InvalidArgVal ter:InvalidCertificationPath" "CreateCertificationPath [unrelated, CA] → ter:InvalidCertificationPath"
code=$(sec "<tas:CreateCertificationPath>$(ids_xml "$C_LEAF1" CERT-9999)</tas:CreateCertificationPath>")
expect "$code" "400/ter:InvalidArgVal ter:CertificateID" "CreateCertificationPath with an unknown certificate → ter:CertificateID"
code=$(sec "<tas:GetCertificationPath><tas:CertificationPathID>$P1</tas:CertificationPathID></tas:GetCertificationPath>")
expect "$code" 200 "GetCertificationPath $P1 → 200"
check "…holds [leaf, CA] in order, alias path-one" \
    [ "$( { xpath "$R" '//*[local-name()="CertificationPath"]/*[local-name()="CertificateID"]/text()' || true; } | tr '\n' ' ')/$(val Alias)" = "$C_LEAF1 $C_CA1 /path-one" ]
code=$(sec '<tas:GetAllCertificationPaths/>')
expect "$code" 200 "GetAllCertificationPaths 200"
check "…lists $P1" grep -q ">$P1<" "$R"
code=$(sec '<tas:GetCertificationPath><tas:CertificationPathID>PATH-9999</tas:CertificationPathID></tas:GetCertificationPath>')
expect "$code" "400/ter:InvalidArgVal ter:CertificationPathID" "GetCertificationPath of an unknown ID → ter:CertificationPathID"
code=$(sec "<tas:DeleteCertificate><tas:CertificateID>$C_LEAF1</tas:CertificateID></tas:DeleteCertificate>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "DeleteCertificate of a certificate in a path → ter:ReferenceExists"
code=$(sec "<tas:DeleteKey><tas:KeyID>$K_EC</tas:KeyID></tas:DeleteKey>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "DeleteKey of a key with a certificate → ter:ReferenceExists"
code=$(sec "<tas:DeleteCertificationPath><tas:CertificationPathID>$P1</tas:CertificationPathID></tas:DeleteCertificationPath>")
expect "$code" 200 "DeleteCertificationPath → 200"
code=$(sec "<tas:DeleteKey><tas:KeyID>$K_EC</tas:KeyID></tas:DeleteKey>")
expect "$code" "400/ter:InvalidArgVal ter:ReferenceExists" "DeleteKey while two certificates still use the key → ter:ReferenceExists"
code=$(sec "<tas:DeleteCertificate><tas:CertificateID>$C_LEAF1</tas:CertificateID></tas:DeleteCertificate>")
expect "$code" 200 "DeleteCertificate of the leaf (path gone) → 200"
code=$(sec "<tas:DeleteCertificate><tas:CertificateID>$C_ECSELF</tas:CertificateID></tas:DeleteCertificate>")
expect "$code" 200 "DeleteCertificate of the EC self-signed certificate → 200"
code=$(sec "<tas:DeleteKey><tas:KeyID>$K_EC</tas:KeyID></tas:DeleteKey>")
expect "$code" 200 "DeleteKey (no certificate left) → 200"
code=$(sec "<tas:GetKeyStatus><tas:KeyID>$K_EC</tas:KeyID></tas:GetKeyStatus>")
expect "$code" "400/ter:InvalidArgVal ter:KeyID" "…the deleted key is gone (ter:KeyID)"
code=$(sec "<tas:GetCertificate><tas:CertificateID>$C_LEAF1</tas:CertificateID></tas:GetCertificate>")
expect "$code" "400/ter:InvalidArgVal ter:CertificateID" "…the deleted certificate is gone (ter:CertificateID)"
code=$(sec "<tas:DeleteCertificationPath><tas:CertificationPathID>$P1</tas:CertificationPathID></tas:DeleteCertificationPath>")
expect "$code" "400/ter:InvalidArgVal ter:CertificationPathID" "DeleteCertificationPath again → ter:CertificationPathID"

# ---- 7. PKCS#8 uploads and passphrases ----
PW_INLINE='Inline-PKCS8-Pass-7'
PW_STORED='Stored-PKCS8-Pass-9'
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$O/k8a.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$O/k8a.pem" -outform DER -out "$O/k8a.der"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$O/k8b.pem" 2>/dev/null
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$O/k8b.pem" -passout "pass:$PW_INLINE" -outform DER -out "$O/k8b.der"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$O/k8c.pem" 2>/dev/null
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$O/k8c.pem" -passout "pass:$PW_STORED" -outform DER -out "$O/k8c.der"
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/k8a.der")</tas:KeyPair><tas:Alias>p8-plain</tas:Alias></tas:UploadKeyPairInPKCS8>")
expect "$code" 200 "UploadKeyPairInPKCS8 of a plain PKCS#8 DER (RSA-2048) → 200"
K_P8A=$(val KeyID)
code=$(sec '<tas:GetAllKeys/>')
check "…listed: hasPrivateKey true, externallyGenerated true, status ok" \
    [ "$(ka "$K_P8A" hasPrivateKey)/$(ka "$K_P8A" externallyGenerated)/$(ka "$K_P8A" KeyStatus)" = true/true/ok ]
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml p8.example.test)<tas:KeyID>$K_P8A</tas:KeyID>$(alg_xml $SHA256_RSA)</tas:CreatePKCS10CSR>")
b64file PKCS10CSR "$O/p8a.csr"
check "a CSR signed with the uploaded key carries its public key (openssl pkey -pubout)" \
    [ "$code/$(pubkey_of_csr "$O/p8a.csr")" = "200/$(openssl pkey -in "$O/k8a.pem" -pubout 2>/dev/null)" ]
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/k8b.der")</tas:KeyPair><tas:EncryptionPassphrase>Wrong-Pass-1</tas:EncryptionPassphrase></tas:UploadKeyPairInPKCS8>")
expect "$code" "400/ter:InvalidArgVal ter:DecryptionFailed" "encrypted PKCS#8 with a wrong passphrase → ter:DecryptionFailed"
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/k8b.der")</tas:KeyPair></tas:UploadKeyPairInPKCS8>")
expect "$code" "400/ter:InvalidArgVal ter:DecryptionFailed" "encrypted PKCS#8 without a passphrase → ter:DecryptionFailed"
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/k8b.der")</tas:KeyPair><tas:Alias>p8-inline</tas:Alias><tas:EncryptionPassphrase>$PW_INLINE</tas:EncryptionPassphrase></tas:UploadKeyPairInPKCS8>")
expect "$code" 200 "encrypted PKCS#8 (EC P-256) with the passphrase inline → 200"
K_P8B=$(val KeyID)
code=$(sec "<tas:UploadPassphrase><tas:Passphrase>$PW_STORED</tas:Passphrase><tas:PassphraseAlias>p8-pass</tas:PassphraseAlias></tas:UploadPassphrase>")
expect "$code" 200 "UploadPassphrase → 200"
PASS1=$(val PassphraseID)
code=$(sec "<tas:UploadPassphrase><tas:Passphrase>Wrong-Pass-2</tas:Passphrase><tas:PassphraseAlias>wrong-pass</tas:PassphraseAlias></tas:UploadPassphrase>")
PASS_WRONG=$(val PassphraseID)
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/k8c.der")</tas:KeyPair><tas:EncryptionPassphraseID>$PASS_WRONG</tas:EncryptionPassphraseID></tas:UploadKeyPairInPKCS8>")
expect "$code" "400/ter:InvalidArgVal ter:DecryptionFailed" "encrypted PKCS#8 with a stored wrong passphrase → ter:DecryptionFailed"
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/k8c.der")</tas:KeyPair><tas:EncryptionPassphraseID>PASS-9999</tas:EncryptionPassphraseID></tas:UploadKeyPairInPKCS8>")
expect "$code" "400/ter:InvalidArgVal ter:PassphraseID" "…with an unknown EncryptionPassphraseID → ter:PassphraseID"
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/k8c.der")</tas:KeyPair><tas:Alias>p8-stored</tas:Alias><tas:EncryptionPassphraseID>$PASS1</tas:EncryptionPassphraseID></tas:UploadKeyPairInPKCS8>")
expect "$code" 200 "encrypted PKCS#8 (EC P-384) with UploadPassphrase + EncryptionPassphraseID → 200"
K_P8C=$(val KeyID)
code=$(sec "<tas:UploadKeyPairInPKCS8><tas:KeyPair>$(b64 "$O/garbage")</tas:KeyPair></tas:UploadKeyPairInPKCS8>")
expect "$code" "400/ter:InvalidArgVal ter:BadPKCS8File" "UploadKeyPairInPKCS8 of garbage → ter:BadPKCS8File"
code=$(sec '<tas:GetAllPassphrases/>')
expect "$code" 200 "GetAllPassphrases 200"
check "…lists both aliases with their IDs" \
    [ "$(xpath "$R" "string(//*[local-name()='PassphraseAttribute'][*[local-name()='PassphraseID']='$PASS1']/*[local-name()='Alias'])")" = p8-pass ]
check "…and never a passphrase" bash -c "! grep -qF -e '$PW_STORED' -e 'Wrong-Pass-2' '$R'"
code=$(sec "<tas:DeletePassphrase><tas:PassphraseID>$PASS_WRONG</tas:PassphraseID></tas:DeletePassphrase>")
expect "$code" 200 "DeletePassphrase → 200"
code=$(sec '<tas:GetAllPassphrases/>')
check "…no longer listed" bash -c "[ '$code' = 200 ] && ! grep -q '>$PASS_WRONG<' '$R' && grep -q '>$PASS1<' '$R'"
code=$(sec "<tas:DeletePassphrase><tas:PassphraseID>$PASS_WRONG</tas:PassphraseID></tas:DeletePassphrase>")
expect "$code" "400/ter:InvalidArgVal ter:PassphraseID" "DeletePassphrase again → ter:PassphraseID"

# ---- 8. PKCS#12 ----
P12_PW='P12-Export-Pass-3'
ca_make "$O/ca2" "Test CA Two"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$O/p12.key" 2>/dev/null
openssl req -new -key "$O/p12.key" -subj "/CN=p12.example.test" -outform DER -out "$O/p12.csr" 2>/dev/null
ca_sign "$O/ca2" "$O/p12.csr" "$O/p12.pem"
openssl pkcs12 -export -inkey "$O/p12.key" -in "$O/p12.pem" -certfile "$O/ca2/ca.pem" -passout "pass:$P12_PW" \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -out "$O/id.p12" 2>/dev/null
code=$(sec "<tas:UploadCertificateWithPrivateKeyInPKCS12><tas:CertWithPrivateKey>$(b64 "$O/id.p12")</tas:CertWithPrivateKey><tas:CertificationPathAlias>p12-path</tas:CertificationPathAlias><tas:KeyAlias>p12-key</tas:KeyAlias><tas:Passphrase>Wrong-P12-Pass</tas:Passphrase></tas:UploadCertificateWithPrivateKeyInPKCS12>")
expect "$code" "400/ter:InvalidArgVal ter:DecryptionFailed" "PKCS#12 with a wrong passphrase → ter:DecryptionFailed"
code=$(sec "<tas:UploadCertificateWithPrivateKeyInPKCS12><tas:CertWithPrivateKey>$(b64 "$O/garbage")</tas:CertWithPrivateKey><tas:Passphrase>$P12_PW</tas:Passphrase></tas:UploadCertificateWithPrivateKeyInPKCS12>")
expect "$code" "400/ter:InvalidArgVal ter:BadPKCS12File" "PKCS#12 garbage → ter:BadPKCS12File"
code=$(sec "<tas:UploadCertificateWithPrivateKeyInPKCS12><tas:CertWithPrivateKey>$(b64 "$O/id.p12")</tas:CertWithPrivateKey><tas:CertificationPathAlias>p12-path</tas:CertificationPathAlias><tas:KeyAlias>p12-key</tas:KeyAlias><tas:Passphrase>$P12_PW</tas:Passphrase></tas:UploadCertificateWithPrivateKeyInPKCS12>")
expect "$code" 200 "UploadCertificateWithPrivateKeyInPKCS12 (AES-256-CBC, MAC sha256, with the CA) → 200"
P12_PATH=$(val CertificationPathID) K_P12=$(val KeyID)
check "…returns CertificationPathID ($P12_PATH) and KeyID ($K_P12)" [ -n "$P12_PATH" -a -n "$K_P12" ]
code=$(sec "<tas:GetCertificationPath><tas:CertificationPathID>$P12_PATH</tas:CertificationPathID></tas:GetCertificationPath>")
expect "$code" 200 "GetCertificationPath of the PKCS#12 path → 200"
read -r P12_C1 P12_C2 P12_C3 <<< "$( { xpath "$R" '//*[local-name()="CertificationPath"]/*[local-name()="CertificateID"]/text()' || true; } | tr '\n' ' ')"
check "…two certificates, alias p12-path" [ -n "$P12_C2" -a -z "${P12_C3:-}" -a "$(val Alias)" = p12-path ]
get_cert "$P12_C1" "$O/p12-1.der" >/dev/null
check "…first the leaf (same DER as p12.pem), bound to KeyID $K_P12" \
    bash -c "openssl x509 -in '$O/p12.pem' -outform DER | cmp -s - '$O/p12-1.der' && [ '$(val KeyID "$WORK/gc.xml")' = '$K_P12' ]"
get_cert "$P12_C2" "$O/p12-2.der" >/dev/null
check "…then the CA" cmp -s "$O/ca2/ca.der" "$O/p12-2.der"
code=$(sec "<tas:GetPrivateKeyStatus><tas:KeyID>$K_P12</tas:KeyID></tas:GetPrivateKeyStatus>")
check "…its key has the private key" [ "$code/$(val hasPrivateKey)" = 200/true ]
code=$(sec '<tas:GetAllKeys/>')
check "…key alias p12-key" [ "$(ka "$K_P12" Alias)" = p12-key ]

# ---- 9. CRLs ----
mkdir -p "$O/ca1/db"; : > "$O/ca1/db/index.txt"; echo 01 > "$O/ca1/db/crlnumber"
cat > "$O/ca1/ca.cnf" <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $O/ca1/db/index.txt
crlnumber = $O/ca1/db/crlnumber
certificate = $O/ca1/ca.pem
private_key = $O/ca1/ca.key
default_md = sha256
default_crl_days = 30
CNF
openssl ca -config "$O/ca1/ca.cnf" -revoke "$O/leaf1.pem" -batch 2>/dev/null || true
openssl ca -config "$O/ca1/ca.cnf" -gencrl -batch -out "$O/crl.pem" 2>/dev/null || true
openssl crl -in "$O/crl.pem" -outform DER -out "$O/crl.der" 2>/dev/null || true
check "openssl ca -gencrl made a CRL revoking the leaf" \
    bash -c "openssl crl -inform DER -in '$O/crl.der' -noout -text | grep -qi \"serial number: *$(openssl x509 -in "$O/leaf1.pem" -noout -serial | cut -d= -f2)\""
code=$(sec "<tas:UploadCRL><tas:Crl>$(b64 "$O/crl.der")</tas:Crl><tas:Alias>crl-one</tas:Alias></tas:UploadCRL>")
expect "$code" 200 "UploadCRL → 200"
CRL1=$(val CrlID)
code=$(sec "<tas:GetCRL><tas:CrlID>$CRL1</tas:CrlID></tas:GetCRL>")
expect "$code" 200 "GetCRL → 200"
b64file CRLContent "$O/crl.back.der"
check "…openssl crl -inform DER reads it, the same CRL, alias crl-one" \
    bash -c "openssl crl -inform DER -in '$O/crl.back.der' -noout && cmp -s '$O/crl.der' '$O/crl.back.der' && [ '$(val Alias)' = crl-one ]"
code=$(sec "<tas:UploadCRL><tas:Crl>$(b64 "$O/crl.der")</tas:Crl></tas:UploadCRL>")
expect "$code" 200 "the same CRL again → 200 (copies allowed, Security \"Uniqueness\")"
CRL2=$(val CrlID)
code=$(sec '<tas:GetAllCRLs/>')
expect "$code" 200 "GetAllCRLs 200"
check "…lists both ($CRL1, $CRL2)" [ "$(vals Crl CRLID)" = "$(printf '%s\n' "$CRL1" "$CRL2" | sort | tr '\n' ' ' | sed 's/ *$//')" ]
code=$(sec "<tas:DeleteCRL><tas:CrlID>$CRL2</tas:CrlID></tas:DeleteCRL>")
expect "$code" 200 "DeleteCRL → 200"
code=$(sec "<tas:GetCRL><tas:CrlID>$CRL2</tas:CrlID></tas:GetCRL>")
expect "$code" "400/ter:InvalidArgVal ter:CRLID" "…GetCRL of the deleted CRL → ter:CRLID"
code=$(sec "<tas:UploadCRL><tas:Crl>$(b64 "$O/garbage")</tas:Crl></tas:UploadCRL>")
expect "$code" "400/ter:InvalidArgVal ter:BadCRL" "UploadCRL of garbage → ter:BadCRL"

# ---- 2 (end). The RSA-4096 key ----
check "RSA-4096 key becomes ok (bounded poll, 60 s)" [ "$(wait_key "$K_BIG" 600)" = ok ]

# ---- 10. Limits ----
code=$(sec '<tas:GetAllKeys/>')
have=$(count KeyAttribute)
fillers=() last="" busy=0
for _ in $(seq 1 60); do
    code=$(sec '<tas:CreateECCKeyPair><tas:EllipticCurve>secp256r1</tas:EllipticCurve><tas:Alias>filler</tas:Alias></tas:CreateECCKeyPair>')
    if [ "$code" = 200 ]; then fillers+=("$(val KeyID)"); continue; fi
    last=$(status_fault "$code")
    # KEYSTORE_MAX_KEYGEN generations at once: a bare ter:Action, retry
    if [ "$last" = "500/ter:Action" ]; then busy=$((busy + 1)); sleep 0.1; continue; fi
    break
done
cp "$R" "$WORK/full.xml"
check "keys created up to 32 in all ($have + ${#fillers[@]}, $busy busy retries)" [ $((have + ${#fillers[@]})) = 32 ]
expect "$code" "500/ter:Action ter:MaximumNumberOfKeysReached" "the 33rd key → ter:MaximumNumberOfKeysReached" "$WORK/full.xml"
code=$(sec '<tas:CreateRSAKeyPair><tas:KeyLength>2048</tas:KeyLength></tas:CreateRSAKeyPair>')
expect "$code" "500/ter:Action ter:MaximumNumberOfKeysReached" "…also for RSA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/extra.key" -subj /CN=extra -days 1 -outform DER -out "$O/extra.der" 2>/dev/null
code=$(upload_cert "$O/extra.der")
# Security, UploadCertificate: "If the device does not have enough storage
# capacity for storing the key pair that eventually has to be created, the
# device shall generate a maximum number of keys reached fault."
expect "$code" "500/ter:Action ter:MaximumNumberOfKeysReached" "…and for an UploadCertificate needing a new public key (certificates are far from full)"
for k in "${fillers[@]}"; do wait_key "$k" >/dev/null; sec "<tas:DeleteKey><tas:KeyID>$k</tas:KeyID></tas:DeleteKey>" "$WORK/del.xml" >/dev/null; done
code=$(sec '<tas:GetAllKeys/>')
check "fillers deleted again ($(count KeyAttribute) keys)" [ "$(count KeyAttribute)" = "$have" ]

# ---- 15. Access control ----
code=$(dsoap "<tds:CreateUsers><tds:User><tt:Username>opx</tt:Username><tt:Password>Oper8tor-Key-1</tt:Password><tt:UserLevel>Operator</tt:UserLevel></tds:User><tds:User><tt:Username>viewer</tt:Username><tt:Password>Look-0nly-Key</tt:Password><tt:UserLevel>User</tt:UserLevel></tds:User></tds:CreateUsers>")
expect "$code" 200 "CreateUsers Operator + User → 200"
code=$(SEC_CRED='opx:Oper8tor-Key-1' sec '<tas:CreateECCKeyPair><tas:EllipticCurve>secp256r1</tas:EllipticCurve></tas:CreateECCKeyPair>')
expect "$code" "400/ter:NotAuthorized" "Operator: CreateECCKeyPair → ter:NotAuthorized"
code=$(SEC_CRED='opx:Oper8tor-Key-1' sec '<tas:CreateRSAKeyPair><tas:KeyLength>2048</tas:KeyLength></tas:CreateRSAKeyPair>')
expect "$code" "400/ter:NotAuthorized" "Operator: CreateRSAKeyPair → ter:NotAuthorized"
code=$(SEC_CRED='opx:Oper8tor-Key-1' sec '<tas:GetAllKeys/>')
expect "$code" "400/ter:NotAuthorized" "Operator: GetAllKeys (READ_SYSTEM_SECRET) → ter:NotAuthorized"
code=$(SEC_CRED='viewer:Look-0nly-Key' sec '<tas:CreateRSAKeyPair><tas:KeyLength>2048</tas:KeyLength></tas:CreateRSAKeyPair>')
expect "$code" "400/ter:NotAuthorized" "User: CreateRSAKeyPair → ter:NotAuthorized"
code=$(SEC_CRED='viewer:Look-0nly-Key' sec "<tas:DeleteKey><tas:KeyID>$K_RSA</tas:KeyID></tas:DeleteKey>")
expect "$code" "400/ter:NotAuthorized" "User: DeleteKey → ter:NotAuthorized"
code=$(SEC_AUTH=none sec '<tas:CreateRSAKeyPair><tas:KeyLength>2048</tas:KeyLength></tas:CreateRSAKeyPair>')
expect "$code" "401/ter:NotAuthorized" "unauthenticated CreateRSAKeyPair → 401"
code=$(SEC_AUTH=none sec '<tas:GetAllCertificates/>')
expect "$code" "401/ter:NotAuthorized" "unauthenticated GetAllCertificates → 401"
code=$(SEC_AUTH=none sec '<tas:GetServiceCapabilities/>')
expect "$code" 200 "unauthenticated tas:GetServiceCapabilities (PRE_AUTH) → 200"
code=$(sec '<tas:GetAllKeys/>')
check "no key was created by the refused requests" [ "$(count KeyAttribute)" = "$have" ]

# ---- 11. Persistence ----
snapshot() { # snapshot OUT: keys (id status private alias), certificates (id key), paths (id: certs)
    local f=$WORK/snap.xml
    {
        sec '<tas:GetAllKeys/>' "$f" >/dev/null
        xpath "$f" "//*[local-name()='KeyAttribute']" || true
        echo
        sec '<tas:GetAllCertificates/>' "$f" >/dev/null
        for c in $(vals Certificate CertificateID "$f"); do
            printf 'cert %s key %s\n' "$c" "$(xpath "$f" "string(//*[local-name()='Certificate'][*[local-name()='CertificateID']='$c']/*[local-name()='KeyID'])")"
        done
        sec '<tas:GetAllCertificationPaths/>' "$f" >/dev/null
        for p in $( { xpath "$f" '//*[local-name()="CertificationPathID"]/text()' || true; } | sort); do
            sec "<tas:GetCertificationPath><tas:CertificationPathID>$p</tas:CertificationPathID></tas:GetCertificationPath>" "$WORK/snap2.xml" >/dev/null
            printf 'path %s: %s\n' "$p" "$( { xpath "$WORK/snap2.xml" '//*[local-name()="CertificateID"]/text()' || true; } | tr '\n' ' ')"
        done
        sec '<tas:GetAllPassphrases/>' "$f" >/dev/null; printf 'passphrases %s\n' "$(vals PassphraseAttribute PassphraseID "$f")"
        sec '<tas:GetAllCRLs/>' "$f" >/dev/null; printf 'crls %s\n' "$(vals Crl CRLID "$f")"
    } > "$1"
}
snapshot "$WORK/before.txt"
stop_daemon
check "clean exit (rc $DAEMON_RC)" [ "$DAEMON_RC" = 0 ]
KS=$STATE/keystore.xml
check "keystore.xml is mode 0600" [ "$(stat -c %a "$KS")" = 600 ]
check "keystore.xml is well-formed XML" xmllint --noout "$KS"
check "keystore.xml holds no \"PRIVATE KEY\" PEM" not grep -q 'PRIVATE KEY' "$KS"
leak=0
for pw in "$PW_STORED" "$PW_INLINE" "$P12_PW" Wrong-Pass-2; do
    b=$(printf '%s' "$pw" | base64 -w0)
    if grep -qF -e "$pw" -e "${b%%=*}" "$KS"; then leak=1; log "keystore.xml contains '$pw' or its base64"; fi
done
check "keystore.xml holds no passphrase (nor its base64)" [ "$leak" = 0 ]
p8prefix=$(b64 "$O/k8a.der" | cut -c 1-48)
check "…nor a PKCS#8 private key in the clear (DER base64 prefix $p8prefix)" not grep -qF -- "$p8prefix" "$KS"
ecpriv=$(openssl pkey -in "$O/k8b.pem" -noout -text 2>/dev/null | sed -n '/^priv:/,/^pub:/p' | sed '1d;$d' | tr -d ' :\n')
ecpriv_b64=$(printf '%s' "$ecpriv" | xxd -r -p 2>/dev/null | base64 -w0 | cut -c 1-40)
check "…nor the uploaded EC private scalar (hex ${ecpriv:0:8}…, or its base64)" \
    bash -c "[ \${#1} -ge 60 ] && ! grep -qiF -- \"\$1\" '$KS' && ! grep -qF -- \"\$2\" '$KS'" _ "$ecpriv" "$ecpriv_b64"
start_daemon --config "$WORK/main.xml"
sec_url
snapshot "$WORK/after.txt"
check "after a restart keys, certificates, paths, passphrases and CRLs are the same, with the same IDs" \
    cmp -s "$WORK/before.txt" "$WORK/after.txt"
cmp -s "$WORK/before.txt" "$WORK/after.txt" || diff "$WORK/before.txt" "$WORK/after.txt" >&2 || true
code=$(get_cert "$C_SELF" "$O/self.again.der")
check "…the self-signed certificate's DER unchanged" cmp -s "$O/self.der" "$O/self.again.der"
code=$(sec "<tas:CreatePKCS10CSR>$(cn_xml after.restart)<tas:KeyID>$K_P8C</tas:KeyID>$(alg_xml 1.2.840.10045.4.3.3)</tas:CreatePKCS10CSR>")
b64file PKCS10CSR "$O/p8c.csr"
check "…a restored (sealed) private key still signs: CSR verifies with the uploaded key's public key" \
    bash -c "[ '$code' = 200 ] && openssl req -inform DER -in '$O/p8c.csr' -noout -verify 2>&1 | grep -q 'verify OK' && [ \"\$(openssl req -inform DER -in '$O/p8c.csr' -noout -pubkey)\" = \"\$(openssl pkey -in '$O/k8c.pem' -pubout)\" ]"
code=$(create_ec secp256r1 after-restart)
lastf=KEY-0; [ ${#fillers[@]} -gt 0 ] && lastf=${fillers[${#fillers[@]}-1]}
n_new=${code##*-} n_last=${lastf##*-}
check "a key created after the restart gets a new ID, above every deleted one ($code after $lastf)" \
    bash -c "[[ '$code' =~ ^KEY-[0-9]+\$ ]] && ! grep -q '>$code<' '$WORK/before.txt' && [ '$n_new' -gt '$n_last' ]"
wait_key "$code" >/dev/null

# ---- 11 (end). kill -9 during keystore changes ----
: > "$WORK/crash.log"
(
    AUTO_VALID=0   # as fast as possible: the kill should hit a change in flight
    for i in $(seq 1 200); do
        k=$(create_ec secp256r1 "crash$i") || true
        printf 'create %s %s\n' "$i" "${k:-000}" >> "$WORK/crash.log"
        [ -n "$k" ] || break
        wait_key "$k" 20 >/dev/null
        c=$(self_signed "$k" "crash$i" $SHA256_ECDSA 2>/dev/null) || c=000
        printf 'cert %s %s\n' "$i" "$c" >> "$WORK/crash.log"
        [ "$c" = 000 ] && break
        cid=$(val CertificateID)
        if [ $((i % 2)) = 0 ] && [ -n "$cid" ]; then
            c=$(sec "<tas:DeleteCertificate><tas:CertificateID>$cid</tas:CertificateID></tas:DeleteCertificate>" "$WORK/crash-r.xml") || c=000
            [ "$c" = 000 ] && break
            c=$(sec "<tas:DeleteKey><tas:KeyID>$k</tas:KeyID></tas:DeleteKey>" "$WORK/crash-r.xml") || c=000
            printf 'delete %s %s\n' "$i" "$c" >> "$WORK/crash.log"
            [ "$c" = 000 ] && break
        fi
    done
) 2>/dev/null &
loop=$!
for _ in $(seq 1 150); do [ "$(grep -c '^cert .* 200' "$WORK/crash.log" 2>/dev/null)" -ge 5 ] && break; sleep 0.05; done
{ stop_daemon KILL; } 2>/dev/null
wait "$loop" || true
check "the loop made changes before the kill ($(grep -c . "$WORK/crash.log") steps)" [ "$(grep -c '^cert .* 200' "$WORK/crash.log")" -ge 1 ]
check "keystore.xml well-formed after kill -9" xmllint --noout "$KS"
check "…and still mode 0600" [ "$(stat -c %a "$KS")" = 600 ]
start_daemon --config "$WORK/main.xml"
sec_url
code=$(sec '<tas:GetAllKeys/>' "$WORK/keys-after.xml")
expect "$code" 200 "after kill -9 the daemon restarts and GetAllKeys answers" "$WORK/keys-after.xml"
code=$(sec '<tas:GetAllCertificates/>' "$WORK/certs-after.xml")
expect "$code" 200 "…GetAllCertificates answers" "$WORK/certs-after.xml"
ok=1
for kid in $(vals Certificate KeyID "$WORK/certs-after.xml"); do
    grep -q ">$kid<" "$WORK/keys-after.xml" || { ok=0; log "certificate key $kid missing"; }
done
check "every listed certificate's KeyID exists ($(count Certificate "$WORK/certs-after.xml") certificates)" [ "$ok" = 1 ]
ok=1
while read -r kind i k; do
    [ "$kind" = create ] && [ "$k" != 000 ] || continue
    deleted=$(awk -v i="$i" '$1=="delete" && $2==i && $3==200' "$WORK/crash.log")
    if [ -z "$deleted" ] && [ "$(awk -v i="$i" '$1=="create" && $2>i' "$WORK/crash.log")" ]; then
        grep -q ">$k<" "$WORK/keys-after.xml" || { ok=0; log "acknowledged key $k (crash$i) missing"; }
    fi
done < "$WORK/crash.log"
check "every acknowledged, undeleted key of the loop is still there" [ "$ok" = 1 ]
check "keys from before the loop are still there" \
    bash -c "grep -q '>$K_RSA<' '$WORK/keys-after.xml' && grep -q '>$K_P12<' '$WORK/keys-after.xml' && grep -q '>$K_CA1<' '$WORK/keys-after.xml'"
bad=$(xpath "$WORK/keys-after.xml" "count(//*[local-name()='KeyAttribute'][*[local-name()='KeyStatus']='generating'])" || echo 0)
check "no key is left \"generating\" after the restart (found $bad)" [ "$bad" = 0 ]
code=$(create_ec secp256r1 post-crash)
check "the keystore still accepts changes ($code)" bash -c "[ -n '$code' ]"
stop_daemon
check "clean exit" [ "$DAEMON_RC" = 0 ]

log "keystore.sh ran in $((SECONDS - T0)) s"
all_responses_valid
finish
