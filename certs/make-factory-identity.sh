#!/usr/bin/env bash
# certs/make-factory-identity.sh: the factory identity of OpenNVT devices.
#
#   make-factory-identity.sh ca   CA_DIR
#       creates the manufacturer CA (EC P-384 key, 20-year self-signed
#       certificate) in CA_DIR: ca.key (0600, keep it offline), ca.crt.
#   make-factory-identity.sh device CA_DIR OUT_DIR SERIAL UUID
#       creates one device's identity signed by that CA in OUT_DIR:
#       identity.key (PKCS#8 PEM, 0600), identity.crt (subject
#       CN=<UUID>, serialNumber=<SERIAL>, O from $FACTORY_ORG), chain.pem (the
#       manufacturer CA). OUT_DIR is then installed read-only on the device.
#   make-factory-identity.sh install OUT_DIR FACTORY_DIR
#       copies an identity into the device's factory directory (opennvtd's
#       security/factory-dir, /etc/opennvt/factory by default): files 0400,
#       directory 0500, so neither the daemon nor a factory reset (which wipes
#       the state directory only) changes it.
#
# The daemon lists the identity in its keystore as key FACTORY-KEY,
# certificates FACTORY-CERT and FACTORY-CA-1, path FACTORY-PATH, read-only.
# Environment: FACTORY_ORG (default "OpenNVT"), FACTORY_DAYS (device
# certificate lifetime, default 7300).
set -euo pipefail
ORG=${FACTORY_ORG:-OpenNVT}
DAYS=${FACTORY_DAYS:-7300}
die() { echo "make-factory-identity: $*" >&2; exit 2; }
command -v openssl >/dev/null || die "needs the openssl command"
umask 077

case "${1:-}" in
ca)
    dir=${2:?CA_DIR}
    mkdir -p "$dir"
    [ -e "$dir/ca.key" ] && die "$dir/ca.key exists: refusing to replace a manufacturer CA"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$dir/ca.key"
    openssl req -new -x509 -key "$dir/ca.key" -sha384 -days 7305 -subj "/O=$ORG/CN=$ORG Manufacturer CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -out "$dir/ca.crt"
    chmod 0644 "$dir/ca.crt"
    echo "manufacturer CA in $dir (keep ca.key offline)"
    ;;
device)
    ca=${2:?CA_DIR}; out=${3:?OUT_DIR}; serial=${4:?SERIAL}; uuid=${5:?UUID}
    [[ "$serial" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "serial must be 1..64 of [A-Za-z0-9._-]"
    [[ "$uuid" =~ ^[0-9a-fA-F-]{36}$ ]] || die "UUID must look like 8-4-4-4-12 hex"
    [ -r "$ca/ca.key" ] && [ -r "$ca/ca.crt" ] || die "no manufacturer CA in $ca (run: $0 ca $ca)"
    mkdir -p "$out"
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/identity.key"
    openssl req -new -key "$out/identity.key" -subj "/O=$ORG/serialNumber=$serial/CN=$uuid" -out "$work/req.csr"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth,clientAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
        "subjectAltName=URI:urn:uuid:$uuid" > "$work/ext.cnf"
    openssl x509 -req -in "$work/req.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -days "$DAYS" \
        -sha256 -extfile "$work/ext.cnf" -out "$out/identity.crt" 2>/dev/null
    cp "$ca/ca.crt" "$out/chain.pem"
    chmod 0600 "$out/identity.key"; chmod 0644 "$out/identity.crt" "$out/chain.pem"
    openssl verify -CAfile "$ca/ca.crt" "$out/identity.crt" >/dev/null || die "issued certificate does not verify"
    echo "device identity for $serial / $uuid in $out"
    ;;
install)
    src=${2:?OUT_DIR}; dst=${3:?FACTORY_DIR}
    for f in identity.key identity.crt; do [ -r "$src/$f" ] || die "$src/$f missing"; done
    mkdir -p "$dst"
    chmod u+w "$dst" 2>/dev/null || true
    for f in identity.key identity.crt chain.pem; do
        [ -e "$src/$f" ] || continue
        rm -f "$dst/$f"; cp "$src/$f" "$dst/$f"; chmod 0400 "$dst/$f"
    done
    chmod 0500 "$dst"
    echo "factory identity installed in $dst"
    ;;
*)
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
