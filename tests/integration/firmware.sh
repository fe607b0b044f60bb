#!/usr/bin/env bash
# Firmware: UpgradeSystemFirmware (MTOM, the gSOAP client) accepts a package
# only when its CMS signature verifies against security/firmware-trust;
# unsigned, tampered, wrongly signed packages and a device without trust
# anchors are refused with ter:InvalidFirmware and nothing is staged;
# GetDeviceInformation reports the real version.
. "$(dirname "$0")/lib.sh"
F=$WORK/fw
mkdir -p "$F"
# a firmware signing CA and a signing certificate; another CA as a stranger
mkca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$F/$1.key" -subj "/CN=$1" \
        -days 30 -out "$F/$1.pem" 2>/dev/null
}
mkca fwca
mkca stranger
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$F/signer.key" -subj /CN=firmware-signer \
    -out "$F/signer.csr" 2>/dev/null
printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' 'extendedKeyUsage=codeSigning' > "$F/ext"
openssl x509 -req -in "$F/signer.csr" -CA "$F/fwca.pem" -CAkey "$F/fwca.key" -set_serial 7 -days 30 -extfile "$F/ext" \
    -out "$F/signer.pem" 2>/dev/null
{ printf 'OPENNVT-FIRMWARE version=9.8.7\n'; head -c 20000 /dev/urandom; } > "$F/payload"
sign() { openssl cms -sign -binary -nodetach -in "$F/payload" -signer "$2" -inkey "$3" -outform DER -out "$1" 2>/dev/null; }
sign "$F/good.pkg" "$F/signer.pem" "$F/signer.key"
sign "$F/stranger.pkg" "$F/stranger.pem" "$F/stranger.key"
cp "$F/good.pkg" "$F/tampered.pkg"
at=$(( $(stat -c %s "$F/good.pkg") - 5000 ))
b=$(od -An -tu1 -j"$at" -N1 "$F/good.pkg" | tr -d ' ')
printf "\\$(printf '%03o' $(( (b + 1) % 256 )))" | dd of="$F/tampered.pkg" bs=1 seek="$at" conv=notrunc 2>/dev/null
cp "$F/payload" "$F/unsigned.pkg"
staged() { [ -e "$STATE/firmware/staged.pkg" ]; }
not() { ! "$@"; }

# no trust anchors: everything refused
start_daemon --config <(printf '<opennvt><security><firmware-trust>%s</firmware-trust></security></opennvt>' "$F/none.pem")
out=$("$ONVIF_CLIENT" upgrade "$URL" "$F/good.pkg" 2>&1 || true)
check "without firmware trust anchors even a signed package is refused" grep -q 'fault.subcode2=ter:InvalidFirmware' <<< "$out"
check "  ... nothing staged" not staged
stop_daemon

printf '<opennvt><security><firmware-trust>%s</firmware-trust></security></opennvt>' "$F/fwca.pem" > "$WORK/config.xml"
start_daemon --config "$WORK/config.xml"
out=$("$ONVIF_CLIENT" device "$URL" 2>&1 || true)
check "GetDeviceInformation reports the daemon's version ($("$OPENNVTD" --version 2>&1 | head -1))" \
    grep -q "^info.firmware=$("$OPENNVTD" --version 2>&1 | head -1 | awk '{print $NF}')" <<< "$out"
for p in unsigned tampered stranger; do
    out=$("$ONVIF_CLIENT" upgrade "$URL" "$F/$p.pkg" 2>&1 || true)
    check "a $p package is refused with ter:InvalidFirmware" grep -q 'fault.subcode2=ter:InvalidFirmware' <<< "$out"
done
check "  ... nothing staged" not staged
check "  ... refusals logged" [ "$(grep -c 'firmware package from .* refused' "$WORK/daemon.log")" -ge 3 ]
code=$(SOAP_CRED="nobody:Wrong-Pass-123" soap '<tds:UpgradeSystemFirmware><tds:Firmware/></tds:UpgradeSystemFirmware>')
check "without credentials: 401 ($code)" [ "$code" = 401 ]
out=$("$ONVIF_CLIENT" upgrade "$URL" "$F/good.pkg" 2>&1); rc=$?
check "a package signed by the trusted CA is accepted ($out)" [ "$rc" = 0 ] && grep -q 'Firmware 9.8.7 verified and staged' <<< "$out"
check "  ... staged as signed, 0600, with its version" \
    cmp -s "$F/good.pkg" "$STATE/firmware/staged.pkg" && [ "$(stat -c %a "$STATE/firmware/staged.pkg")" = 600 ] && \
    [ "$(cat "$STATE/firmware/staged.version")" = 9.8.7 ]
check "  ... and the staged package verifies with openssl cms" \
    openssl cms -verify -binary -inform DER -in "$STATE/firmware/staged.pkg" -CAfile "$F/fwca.pem" -purpose any -out /dev/null
rm -rf "$STATE/firmware"
code=$(soap '<tds:StartFirmwareUpgrade/>' "$WORK/sfu.xml")
UP_URI=$(xmllint --xpath 'string(//*[local-name()="UploadUri"])' "$WORK/sfu.xml" 2>/dev/null || true)
check "StartFirmwareUpgrade gives an upload URI ($UP_URI)" [ "$code" = 200 ] && [ -n "$UP_URI" ] && valid "$WORK/sfu.xml"
post() { curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$@" -X POST -H 'Content-Type: application/octet-stream' "$UP_URI" || true; }
check "  ... upload without credentials → 401" [ "$(post --data-binary @"$F/good.pkg")" = 401 ]
check "  ... a tampered package → 400" [ "$(post --digest -u "$ADMIN_USER:$ADMIN_PASS" --data-binary @"$F/tampered.pkg")" = 400 ]
check "  ... nothing staged" not staged
check "  ... the signed package → 200" [ "$(post --digest -u "$ADMIN_USER:$ADMIN_PASS" --data-binary @"$F/good.pkg")" = 200 ]
check "  ... staged" cmp -s "$F/good.pkg" "$STATE/firmware/staged.pkg"
stop_daemon
check "daemon exits 0 ($DAEMON_RC)" [ "$DAEMON_RC" = 0 ]
finish
