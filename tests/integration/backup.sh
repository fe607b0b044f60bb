#!/usr/bin/env bash
# Encrypted backup and restore: GetSystemBackup refused without a backup
# passphrase, made (MTOM) with one; a tampered backup or a wrong passphrase
# refused with nothing changed; then a hard factory reset, the backup
# restored, and the device equal to before: users log in with their old
# passwords, keys and certificates identical by fingerprint, the same device
# CA. The gSOAP client does the backup and the restore.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/keystore_lib.sh"
start_daemon
sec_url
BK_PASS='Backup-Passphrase-77'
OP_PASS='Operator-Pass-42x'
B=$WORK/backup.bin
# fingerprint: keys (id, alias, type) and the certificates' DER hashes, and the device CA
fingerprint() {
    sec '<tas:GetAllKeys/>' "$WORK/fk.xml" >/dev/null
    { xpath "$WORK/fk.xml" '//*[local-name()="KeyAttribute"]/*[local-name()="KeyID" or local-name()="Alias"]/text()' || true; } | sort | tr '\n' ' '
    sec '<tas:GetAllCertificates/>' "$WORK/fc.xml" >/dev/null
    { xpath "$WORK/fc.xml" '//*[local-name()="CertificateContent"]/text()' || true; } | tr -d ' \n' | sha256sum | cut -c1-16
    curl -sS --max-time 10 "http://127.0.0.1:$HTTP_PORT/certs/device-ca.pem" | sha256sum | cut -c1-16
}

out=$("$ONVIF_CLIENT" backup "$URL" "$B" 2>&1 || true)
check "GetSystemBackup without a backup passphrase is refused" not grep -q '^backup.bytes=' <<< "$out"
code=$(sec "<tas:UploadPassphrase><tas:Passphrase>$BK_PASS</tas:Passphrase><tas:PassphraseAlias>backup</tas:PassphraseAlias></tas:UploadPassphrase>")
expect "$code" 200 "UploadPassphrase alias 'backup' → 200"
code=$(dsoap "<tds:CreateUsers><tds:User><tt:Username>operator1</tt:Username><tt:Password>$OP_PASS</tt:Password><tt:UserLevel>Operator</tt:UserLevel></tds:User></tds:CreateUsers>")
expect "$code" 200 "CreateUsers operator1"
KEY=$(create_ec secp256r1 camera-key)
wait_key "$KEY" >/dev/null
code=$(self_signed "$KEY" camera.test "$SHA256_ECDSA")
expect "$code" 200 "a self-signed certificate for $KEY"
code=$(dsoap '<tds:SetSystemDateAndTime><tds:DateTimeType>Manual</tds:DateTimeType><tds:DaylightSavings>true</tds:DaylightSavings><tds:TimeZone><tt:TZ>JST-9</tt:TZ></tds:TimeZone></tds:SetSystemDateAndTime>')
expect "$code" 200 "time zone JST-9 set"
FP_BEFORE=$(fingerprint)

out=$("$ONVIF_CLIENT" backup "$URL" "$B" 2>&1 || true)
check "gSOAP client: GetSystemBackup (MTOM) → a backup file" grep -q '^backup.bytes=' <<< "$out"
check "  ... it is encrypted: no user name, alias or PEM in clear" \
    not grep -aq -e operator1 -e camera-key -e 'BEGIN' -e '<users' "$B"
curl -sS --max-time 20 --digest -u "$ADMIN_USER:$ADMIN_PASS" -X POST -H 'Content-Type: application/soap+xml' \
    --data-binary '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetSystemBackup/></s:Body></s:Envelope>' \
    "$URL" -o "$WORK/mtom.bin" -D "$WORK/mtom.h"
# the root part: from the XML declaration to the end of the envelope
LC_ALL=C sed -n '/^<?xml/,/<\/SOAP-ENV:Envelope>/p' "$WORK/mtom.bin" | LC_ALL=C sed 's|</SOAP-ENV:Envelope>.*|</SOAP-ENV:Envelope>|' > "$R" || true
check "the MTOM response's envelope is schema-valid" valid "$R"
check "  ... multipart/related with application/xop+xml" grep -qi 'multipart/related.*application/xop+xml' "$WORK/mtom.h"

code=$(dsoap '<tds:GetSystemUris/>')
BK_URI=$(val SystemBackupUri)
code=$(curl -sS --max-time 20 -o "$WORK/http.bin" -w '%{http_code}' --digest -u "$ADMIN_USER:$ADMIN_PASS" "$BK_URI" || true)
check "the SystemBackupUri serves an encrypted backup over HTTP ($code)" [ "$code" = 200 ] && [ "$(head -c 8 "$WORK/http.bin")" = ONVTBAK1 ]

# tampered and wrong-passphrase restores change nothing
cp "$B" "$WORK/tampered.bin"
# flip one byte inside the ciphertext (a different value whatever it was)
b=$(od -An -tu1 -j100 -N1 "$B" | tr -d ' ')
printf "\\$(printf '%03o' $(( (b + 1) % 256 )))" | dd of="$WORK/tampered.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
check "the tampered copy differs from the backup" not cmp -s "$B" "$WORK/tampered.bin"
out=$("$ONVIF_CLIENT" restore "$URL" "$WORK/tampered.bin" 2>&1 || true)
check "a tampered backup is refused with ter:InvalidBackupFile" grep -q 'fault.subcode2=ter:InvalidBackupFile' <<< "$out"
head -c 30 "$B" > "$WORK/short.bin"
out=$("$ONVIF_CLIENT" restore "$URL" "$WORK/short.bin" 2>&1 || true)
check "a truncated backup is refused with ter:InvalidBackupFile" grep -q 'fault.subcode2=ter:InvalidBackupFile' <<< "$out"
code=$(dsoap '<tds:StartSystemRestore/>')
UP_URI=$(val UploadUri)
check "StartSystemRestore gives an upload URI on this device ($UP_URI)" [ "$code" = 200 ] && [ "${UP_URI#http://127.0.0.1:$HTTP_PORT/}" != "$UP_URI" ]
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary @"$WORK/tampered.bin" "$UP_URI" || true)
check "  ... an upload without credentials → 401 ($code)" [ "$code" = 401 ]
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' --digest -u "$ADMIN_USER:$ADMIN_PASS" -X POST \
    -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/tampered.bin" "$UP_URI" || true)
check "  ... a tampered upload → 400 ($code)" [ "$code" = 400 ]
check "  ... nothing staged" [ ! -e "$STATE/restore.ready" ] && [ ! -e "$STATE/restore.staging" ]
check "  ... refusals in the Access log" grep -q 'restore by .* refused' "$WORK/daemon.log"
check "  ... and the device unchanged" [ "$(fingerprint)" = "$FP_BEFORE" ]

# hard reset, then restore
n=$(service_starts)
code=$(dsoap '<tds:SetSystemFactoryDefault><tds:FactoryDefault>Hard</tds:FactoryDefault></tds:SetSystemFactoryDefault>')
expect "$code" 200 "SetSystemFactoryDefault Hard"
check "services back" wait_restart "$n"
NEW_ADMIN_PASS='Other-Admin-Pass-9q'
code=$(SOAP_AUTH=none dsoap "<tds:CreateUsers><tds:User><tt:Username>newadmin</tt:Username><tt:Password>$NEW_ADMIN_PASS</tt:Password><tt:UserLevel>Administrator</tt:UserLevel></tds:User></tds:CreateUsers>")
expect "$code" 200 "a new Administrator after the reset"
out=$(ONVIF_USER=newadmin ONVIF_PASSWORD=$NEW_ADMIN_PASS "$ONVIF_CLIENT" restore "$URL" "$B" 2>&1 || true)
check "restore without the backup passphrase on the device is refused" grep -q '^error=' <<< "$out"
code=$(SEC_CRED="newadmin:$NEW_ADMIN_PASS" sec "<tas:UploadPassphrase><tas:Passphrase>Not-The-Right-One-1</tas:Passphrase><tas:PassphraseAlias>backup</tas:PassphraseAlias></tas:UploadPassphrase>")
expect "$code" 200 "a wrong backup passphrase uploaded"
WRONG=$(val PassphraseID)
out=$(ONVIF_USER=newadmin ONVIF_PASSWORD=$NEW_ADMIN_PASS "$ONVIF_CLIENT" restore "$URL" "$B" 2>&1 || true)
check "restore with the wrong passphrase → ter:InvalidBackupFile" grep -q 'fault.subcode2=ter:InvalidBackupFile' <<< "$out"
code=$(SEC_CRED="newadmin:$NEW_ADMIN_PASS" sec "<tas:DeletePassphrase><tas:PassphraseID>$WRONG</tas:PassphraseID></tas:DeletePassphrase>")
code=$(SEC_CRED="newadmin:$NEW_ADMIN_PASS" sec "<tas:UploadPassphrase><tas:Passphrase>$BK_PASS</tas:Passphrase><tas:PassphraseAlias>backup</tas:PassphraseAlias></tas:UploadPassphrase>")
expect "$code" 200 "the right backup passphrase uploaded"
n=$(service_starts)
out=$(ONVIF_USER=newadmin ONVIF_PASSWORD=$NEW_ADMIN_PASS "$ONVIF_CLIENT" restore "$URL" "$B" 2>&1); rc=$?
check "gSOAP client: RestoreSystem (MTOM) → 0 ($out)" [ "$rc" = 0 ]
check "services restart with the restored configuration" wait_restart "$n"
code=$(dsoap '<tds:GetUsers/>')
check "the old Administrator logs in with the old password ($code)" [ "$code" = 200 ]
check "  ... operator1 is back and the reset-time user is gone" grep -q '>operator1<' "$R" && not grep -q '>newadmin<' "$R"
code=$(SOAP_CRED="operator1:$OP_PASS" soap '<tds:GetDeviceInformation/>')
check "operator1 logs in with its password ($code)" [ "$code" = 200 ]
check "keys, certificates and the device CA identical by fingerprint" [ "$(fingerprint)" = "$FP_BEFORE" ]
code=$(dsoap '<tds:GetSystemDateAndTime/>')
check "the clock settings are back too (TZ $(val TZ))" [ "$(val TZ)" = JST-9 ]
check "no staging left" [ ! -e "$STATE/restore.ready" ] && [ ! -e "$STATE/restore.staging" ]
check "no secret in the log" not grep -q -e "$BK_PASS" -e "$OP_PASS" -e "$ADMIN_PASS" "$WORK/daemon.log"
all_responses_valid
stop_daemon
check "daemon exits 0 ($DAEMON_RC)" [ "$DAEMON_RC" = 0 ]
finish
