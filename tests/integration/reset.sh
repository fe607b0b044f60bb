#!/usr/bin/env bash
# Factory reset: SetSystemFactoryDefault Soft (keeps network settings) and
# Hard (keeps only the identity and the log), the command-line reset button,
# and that every secret is gone: new device key, no users (first-user state),
# empty keystore, no test password in any file left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/keystore_lib.sh"
start_daemon
sec_url
EXTRA_SCOPE=onvif://www.onvif.org/location/reset-test
OP_PASS='Operator-Pass-42x'
key_sum() { sha256sum "$STATE/device.key" 2>/dev/null | cut -d' ' -f1; }
UUID=$(soap '<tds:GetEndpointReference/>' >/dev/null; val GUID)

code=$(dsoap "<tds:CreateUsers><tds:User><tt:Username>operator1</tt:Username><tt:Password>$OP_PASS</tt:Password><tt:UserLevel>Operator</tt:UserLevel></tds:User></tds:CreateUsers>")
expect "$code" 200 "CreateUsers operator1 → 200"
code=$(dsoap "<tds:AddScopes><tds:ScopeItem>$EXTRA_SCOPE</tds:ScopeItem></tds:AddScopes>")
expect "$code" 200 "AddScopes $EXTRA_SCOPE → 200"
KEY=$(create_ec secp256r1 before-reset)
check "an EC key in the keystore ($KEY)" [ -n "$KEY" ]
KEY_BEFORE=$(key_sum)

# ---- soft ----
n=$(service_starts)
code=$(dsoap '<tds:SetSystemFactoryDefault><tds:FactoryDefault>Soft</tds:FactoryDefault></tds:SetSystemFactoryDefault>')
expect "$code" 200 "SetSystemFactoryDefault Soft → 200 (answered before the reset)"
check "services back after the soft reset" wait_restart "$n"
code=$(soap '<tds:GetUsers/>')
check "the old Administrator is gone: 401 ($code)" [ "$code" = 401 ]
check "a new device key" [ -n "$(key_sum)" ] && [ "$(key_sum)" != "$KEY_BEFORE" ]
code=$(SOAP_AUTH=none dsoap "<tds:CreateUsers><tds:User><tt:Username>$ADMIN_USER</tt:Username><tt:Password>$ADMIN_PASS</tt:Password><tt:UserLevel>Administrator</tt:UserLevel></tds:User></tds:CreateUsers>")
expect "$code" 200 "first-user state: CreateUsers of an Administrator without credentials → 200"
code=$(dsoap '<tds:GetUsers/>')
check "only the new Administrator exists" [ "$code/$(count User)" = 200/1 ]
code=$(sec '<tas:GetAllKeys/>')
check "the keystore is empty ($code)" [ "$code/$(count KeyAttribute)" = 200/0 ]
code=$(dsoap '<tds:GetScopes/>')
check "the network settings stayed: $EXTRA_SCOPE" grep -q "$EXTRA_SCOPE" "$R"
check "the identity stayed" [ "$(soap '<tds:GetEndpointReference/>' >/dev/null; val GUID)" = "$UUID" ]

# ---- hard ----
code=$(dsoap '<tds:SetSystemDateAndTime><tds:DateTimeType>Manual</tds:DateTimeType><tds:DaylightSavings>true</tds:DaylightSavings><tds:TimeZone><tt:TZ>CET-1CEST,M3.5.0,M10.5.0/3</tt:TZ></tds:TimeZone></tds:SetSystemDateAndTime>')
expect "$code" 200 "a time zone set before the hard reset (Manual without UTCDateTime keeps the clock)"
n=$(service_starts)
code=$(dsoap '<tds:SetSystemFactoryDefault><tds:FactoryDefault>Hard</tds:FactoryDefault></tds:SetSystemFactoryDefault>')
expect "$code" 200 "SetSystemFactoryDefault Hard → 200"
check "services back after the hard reset" wait_restart "$n"
code=$(SOAP_AUTH=none dsoap "<tds:CreateUsers><tds:User><tt:Username>$ADMIN_USER</tt:Username><tt:Password>$ADMIN_PASS</tt:Password><tt:UserLevel>Administrator</tt:UserLevel></tds:User></tds:CreateUsers>")
expect "$code" 200 "first-user state again"
code=$(dsoap '<tds:GetScopes/>')
check "the network settings went too (no $EXTRA_SCOPE)" not grep -q "$EXTRA_SCOPE" "$R"
code=$(dsoap '<tds:GetSystemDateAndTime/>')
check "  ... and the clock settings (UTC0 again: $(val TZ))" [ "$(val TZ)" = UTC0 ]
check "the identity stayed" [ "$(soap '<tds:GetEndpointReference/>' >/dev/null; val GUID)" = "$UUID" ]
code=$(dsoap '<tds:GetSystemLog><tds:LogType>Access</tds:LogType></tds:GetSystemLog>')
check "the Access log survived and names both resets" \
    [ "$(grep -c 'soft factory reset requested by' "$R")" -ge 1 ] && [ "$(grep -c 'hard factory reset requested by' "$R")" -ge 1 ]

# ---- the reset button ----
out=$("$OPENNVTD" --state-dir "$STATE" --factory-reset hard 2>&1 || true)
check "--factory-reset while the daemon runs is refused" grep -q 'in use' <<< "$out"
stop_daemon
check "daemon exits 0 ($DAEMON_RC)" [ "$DAEMON_RC" = 0 ]
rc=0; out=$("$OPENNVTD" --state-dir "$STATE" --factory-reset hard 2>&1) || rc=$?
check "--factory-reset hard on a stopped device → 0 ($out)" [ "$rc" = 0 ]
check "  ... users and device key gone" [ ! -e "$STATE/users.xml" ] && [ ! -e "$STATE/device.key" ]
check "  ... identity and log kept" [ -s "$STATE/device-uuid" ] && [ -s "$STATE/log/access.log" ]
rc=0; "$OPENNVTD" --state-dir "$STATE" --factory-reset everything > /dev/null 2>&1 || rc=$?
check "--factory-reset with an unknown kind → 2" [ "$rc" = 2 ]
check "no test password in any file left in the state directory" \
    not grep -rqa -e "$ADMIN_PASS" -e "$OP_PASS" "$STATE"
all_responses_valid
finish
