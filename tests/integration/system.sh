#!/usr/bin/env bash
# Device clock and device log: Get/SetSystemDateAndTime (Manual, POSIX time
# zones, faults), the device clock used by the WS-UsernameToken window,
# Get/SetNTP, and GetSystemLog (System and Access logs, kept across a
# restart, no secrets in them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/keystore_lib.sh"
start_daemon
val_of() { xpath "$R" "string(//*[local-name()='$1']/*[local-name()='$2'])"; }
dt_xml() { # dt_xml Y M D h m s
    printf '<tds:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tds:UTCDateTime>' "$4" "$5" "$6" "$1" "$2" "$3"
}
set_time() { # set_time TZ Y M D h m s
    dsoap "<tds:SetSystemDateAndTime><tds:DateTimeType>Manual</tds:DateTimeType><tds:DaylightSavings>true</tds:DaylightSavings><tds:TimeZone><tt:TZ>$1</tt:TZ></tds:TimeZone>$(dt_xml "$2" "$3" "$4" "$5" "$6" "$7")</tds:SetSystemDateAndTime>"
}

# ---- every network-facing service, and nothing else listening ----
check "the ports file lists RTSP's port and the services that listen on nothing as off" \
    [ "$(sed -n 's/^\(rtsp\|multicast\|syslog\|ntp\)=//p' "$WORK/ports" | tr '\n' ' ')" = "$RTSP_PORT off off off " ]
tcp=$(ss -ltnpH 2>/dev/null | grep "pid=$DAEMON_PID," | awk '{print $4}' | sed 's/.*://' | sort -n | tr '\n' ' ')
udp=$(ss -lunpH 2>/dev/null | grep "pid=$DAEMON_PID," | awk '{print $4}' | sed 's/.*://' | sort -n | tr '\n' ' ')
want_tcp=$(printf '%s\n' "$HTTP_PORT" "$HTTPS_PORT" "$RTSP_PORT" | sort -n | tr '\n' ' ')
check "listening TCP sockets are exactly HTTP, HTTPS and RTSP ($tcp)" [ "$tcp" = "$want_tcp" ]
check "UDP sockets are exactly WS-Discovery ($udp)" [ "$udp" = "$DISC_PORT " ]
check "the log has the same view" grep -q "network services: http=$HTTP_PORT https=$HTTPS_PORT discovery=$DISC_PORT rtsp=$RTSP_PORT multicast=off syslog=off ntp=off" "$WORK/daemon.log"

code=$(dsoap '<tds:GetSystemDateAndTime/>')
expect "$code" 200 "GetSystemDateAndTime → 200"
check "fresh device: Manual, UTC0, the host's year" \
    [ "$(val DateTimeType)/$(val TZ)/$(xpath "$R" 'string(//*[local-name()="UTCDateTime"]//*[local-name()="Year"])')" = "Manual/UTC0/$(date -u +%Y)" ]

code=$(set_time 'Not A Zone!' 2030 6 1 10 0 0)
expect "$code" "400/ter:InvalidArgVal ter:InvalidTimeZone" "an invalid time zone → ter:InvalidTimeZone"
code=$(set_time 'UTC0' 2030 2 30 10 0 0)
expect "$code" "400/ter:InvalidArgVal ter:InvalidDateTime" "30 February → ter:InvalidDateTime"
code=$(dsoap '<tds:SetSystemDateAndTime><tds:DateTimeType>NTP</tds:DateTimeType><tds:DaylightSavings>false</tds:DaylightSavings></tds:SetSystemDateAndTime>')
expect "$code" "400/ter:InvalidArgVal ter:NtpServerUndefined" "NTP without a server → ter:NtpServerUndefined"
code=$(dsoap '<tds:GetSystemDateAndTime/>')
check "after the refusals: still UTC0 and the host's year" \
    [ "$(val TZ)/$(xpath "$R" 'string(//*[local-name()="UTCDateTime"]//*[local-name()="Year"])')" = "UTC0/$(date -u +%Y)" ]

code=$(set_time 'CET-1CEST,M3.5.0,M10.5.0/3' 2030 7 1 10 0 0)
expect "$code" 200 "SetSystemDateAndTime Manual 2030-07-01T10:00:00Z, Central European time → 200"
code=$(dsoap '<tds:GetSystemDateAndTime/>')
utc_h=$(xpath "$R" 'string(//*[local-name()="UTCDateTime"]//*[local-name()="Hour"])')
loc_h=$(xpath "$R" 'string(//*[local-name()="LocalDateTime"]//*[local-name()="Hour"])')
check "device clock: 2030-07-01, UTC 10 h, local 12 h (CEST), TZ kept ($(val TZ))" \
    [ "$(xpath "$R" 'string(//*[local-name()="UTCDateTime"]//*[local-name()="Year"])')/$utc_h/$loc_h/$(val TZ)/$(val DaylightSavings)" = "2030/10/12/CET-1CEST,M3.5.0,M10.5.0/3/true" ]
check "the host clock was not touched" [ "$(date -u +%Y)" != 2030 ]
out=$("$ONVIF_CLIENT" users "$URL" 2>&1 || true)
check "a UsernameToken made with the host's time is now outside the device clock's window" not grep -q '^user=' <<< "$out"
code=$(soap '<tds:GetUsers/>')
check "Digest does not depend on the clock ($code)" [ "$code" = 200 ]
now=($(date -u '+%Y %-m %-d %-H %-M %-S'))
code=$(set_time 'UTC0' "${now[@]}")
expect "$code" 200 "clock set back to the host's time"
out=$("$ONVIF_CLIENT" users "$URL" 2>&1 || true)
check "  ... UsernameTokens are accepted again" grep -q "^user=$ADMIN_USER" <<< "$out"

# ---- NTP servers ----
code=$(dsoap '<tds:SetNTP><tds:FromDHCP>false</tds:FromDHCP><tds:NTPManual><tt:Type>IPv4</tt:Type><tt:IPv4Address>300.1.2.3</tt:IPv4Address></tds:NTPManual></tds:SetNTP>')
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv4Address" "SetNTP with a bad IPv4 address → ter:InvalidIPv4Address"
code=$(dsoap '<tds:SetNTP><tds:FromDHCP>false</tds:FromDHCP><tds:NTPManual><tt:Type>DNS</tt:Type><tt:DNSname>bad..name</tt:DNSname></tds:NTPManual></tds:SetNTP>')
expect "$code" "400/ter:InvalidArgVal ter:InvalidDnsName" "SetNTP with a bad DNS name → ter:InvalidDnsName"
code=$(dsoap '<tds:SetNTP><tds:FromDHCP>false</tds:FromDHCP><tds:NTPManual><tt:Type>DNS</tt:Type><tt:DNSname>ntp.example.org</tt:DNSname></tds:NTPManual><tds:NTPManual><tt:Type>IPv4</tt:Type><tt:IPv4Address>192.0.2.123</tt:IPv4Address></tds:NTPManual></tds:SetNTP>')
expect "$code" 200 "SetNTP with a name and an address → 200"
code=$(dsoap '<tds:GetNTP/>')
check "GetNTP lists both ($code)" [ "$code/$(count NTPManual)/$(val DNSname)/$(val IPv4Address)" = "200/2/ntp.example.org/192.0.2.123" ]

# ---- the device log ----
code=$(dsoap '<tds:GetSystemLog><tds:LogType>System</tds:LogType></tds:GetSystemLog>')
expect "$code" 200 "GetSystemLog System → 200"
check "  ... has the start-up line" grep -q 'opennvtd .* started' "$R"
code=$(dsoap '<tds:GetSystemLog><tds:LogType>Access</tds:LogType></tds:GetSystemLog>')
expect "$code" 200 "GetSystemLog Access → 200"
check "  ... the login of $ADMIN_USER with its source address" grep -q "127.0.0.1: '$ADMIN_USER' (Administrator) logged in" "$R"
check "  ... the configuration change with the user" grep -q "127.0.0.1: '$ADMIN_USER' ran tds:SetSystemDateAndTime" "$R"
check "  ... no password in it" not grep -q "$ADMIN_PASS" "$R"
code=$(dsoap '<tds:GetSystemUris/>')
expect "$code" 200 "GetSystemUris → 200"
SYS_URI=$(xpath "$R" 'string(//*[local-name()="SystemLog"][*[local-name()="Type"]="System"]/*[local-name()="Uri"])')
ACC_URI=$(xpath "$R" 'string(//*[local-name()="SystemLog"][*[local-name()="Type"]="Access"]/*[local-name()="Uri"])')
check "  ... System and Access log URIs on this device ($SYS_URI)" \
    [ "${SYS_URI#http://127.0.0.1:$HTTP_PORT/}" != "$SYS_URI" ] && [ -n "$ACC_URI" ]
code=$(curl -sS --max-time 10 -o "$WORK/log.txt" -w '%{http_code}' --digest -u "$ADMIN_USER:$ADMIN_PASS" "$SYS_URI" || true)
check "HTTP GET of the System log as the Administrator → 200 with the log ($code)" [ "$code" = 200 ] && grep -q 'opennvtd .* started' "$WORK/log.txt"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$ACC_URI" || true)
check "  ... without credentials → 401 ($code)" [ "$code" = 401 ]
code=$(dsoap "<tds:CreateUsers><tds:User><tt:Username>viewer</tt:Username><tt:Password>View-Only-Pass-9</tt:Password><tt:UserLevel>User</tt:UserLevel></tds:User></tds:CreateUsers>")
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --digest -u viewer:View-Only-Pass-9 "$ACC_URI" || true)
check "  ... as a User-level user → 403 ($code)" [ "$code" = 403 ]
stop_daemon
check "daemon exits 0 ($DAEMON_RC)" [ "$DAEMON_RC" = 0 ]
check "log files are 0600 in a 0700 directory" \
    [ "$(stat -c %a "$STATE/log")/$(stat -c %a "$STATE/log/system.log")/$(stat -c %a "$STATE/log/access.log")" = 700/600/600 ]
start_daemon
code=$(dsoap '<tds:GetSystemLog><tds:LogType>Access</tds:LogType></tds:GetSystemLog>')
check "after a restart the Access log still has the earlier change ($code)" grep -q "ran tds:SetSystemDateAndTime" "$R"
code=$(dsoap '<tds:GetSystemLog><tds:LogType>System</tds:LogType></tds:GetSystemLog>')
check "  ... and the System log both starts" [ "$(grep -o 'opennvtd [^ ]* started' "$R" | wc -l)" -ge 2 ]
check "no secret in any log file" not grep -rq "$ADMIN_PASS" "$STATE/log"
all_responses_valid
stop_daemon
finish
