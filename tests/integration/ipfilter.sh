#!/usr/bin/env bash
# The IP address filter (host access restrictions): Get/Set/Add/Remove with
# their faults, enforcement right after accept() for real loopback sources
# (127.0.0.1 vs 127.0.0.2, ::1), the lock-out guard, and persistence.
. "$(dirname "$0")/lib.sh"
R=$WORK/resp.xml   # soap()'s default output
T0=$SECONDS

status_fault() { printf '%s/%s' "$1" "$(fault_subcodes "${2:-$R}")"; }
# expect CODE WANT DESCRIPTION: WANT is 200 (the response must then be
# schema-valid) or STATUS/SUBCODES of a fault (also validated).
expect() {
    local code=$1 want=$2 what=$3 got
    if [ "$want" = 200 ]; then got=$code; else got=$(status_fault "$code"); fi
    if [ "$got" = "$want" ] && valid "$R"; then pass "$what"; else fail "$what (got $got)"; fi
}
v4() { printf '<tt:IPv4Address><tt:Address>%s</tt:Address><tt:PrefixLength>%s</tt:PrefixLength></tt:IPv4Address>' "$1" "$2"; }
v6() { printf '<tt:IPv6Address><tt:Address>%s</tt:Address><tt:PrefixLength>%s</tt:PrefixLength></tt:IPv6Address>' "$1" "$2"; }
filter() { # filter OPERATION TYPE ENTRIES_XML
    printf '<tds:%s><tds:IPAddressFilter><tt:Type>%s</tt:Type>%s</tds:IPAddressFilter></tds:%s>' "$1" "$2" "$3" "$1"
}
# from SOURCE [URL]: status of a GetDeviceInformation as the Administrator
# sent from SOURCE (000 when the connection gives no HTTP response)
from() {
    curl -sS --max-time 5 -o "$WORK/from.xml" -w '%{http_code}' --interface "$1" --digest -u "$ADMIN_USER:$ADMIN_PASS" \
        -X POST -H 'Content-Type: application/soap+xml' --data-binary @"$WORK/getinfo.xml" "${2:-$URL}" 2>/dev/null || true
}
# summary: the current filter as "Type v4/len ... | v6/len ..."
summary() {
    soap '<tds:GetIPAddressFilter/>' "$WORK/filter.xml" >/dev/null
    local f=$WORK/filter.xml out fam n i
    out=$(xpath "$f" 'string(//*[local-name()="IPAddressFilter"]/*[local-name()="Type"])')
    for fam in IPv4Address IPv6Address; do
        [ "$fam" = IPv6Address ] && out="$out |"
        n=$(xpath "$f" "count(//*[local-name()='$fam'])")
        for i in $(seq 1 "$n"); do
            out="$out $(xpath "$f" "string((//*[local-name()='$fam'])[$i]/*[local-name()='Address'])")/$(xpath "$f" "string((//*[local-name()='$fam'])[$i]/*[local-name()='PrefixLength'])")"
        done
    done
    printf '%s' "$out"
}
printf '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetDeviceInformation/></s:Body></s:Envelope>' > "$WORK/getinfo.xml"

start_daemon
code=$(soap '<tds:GetIPAddressFilter/>')
expect "$code" 200 "GetIPAddressFilter 200 (schema-valid)"
check "default filter: Deny with empty lists" [ "$(summary)" = "Deny |" ]
check "127.0.0.2 is served while nothing is denied" [ "$(from 127.0.0.2)" = 200 ]

# A keep-alive connection from 127.0.0.2, opened before the Deny below: one
# request now, one after the filter changes (perl: bash cannot pick the
# source address). Prints each answer's status line, or EOF.
printf '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body><tds:GetSystemDateAndTime/></s:Body></s:Envelope>' > "$WORK/gettime.xml"
perl -MIO::Socket::INET -e '
    my ($port, $body, $flag) = @ARGV;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, LocalAddr => "127.0.0.2", Timeout => 5) or die "connect: $!";
    my $req = "POST /onvif/device_service HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
    sub answer { my $buf = ""; local $SIG{ALRM} = sub { die "timeout\n" }; alarm 5;
        while ($buf !~ /\r\n\r\n/) { my $n = sysread($s, $buf, 65536, length $buf); last unless $n; }
        my ($len) = $buf =~ /Content-Length: (\d+)/i; $len //= 0; my ($head) = $buf =~ /^(.*?)\r\n\r\n/s;
        while (defined $head && length($buf) < length($head) + 4 + $len) { my $n = sysread($s, $buf, 65536, length $buf); last unless $n; }
        alarm 0; return $buf =~ /^(HTTP\/1\.1 \d+)/ ? $1 : "EOF"; }
    print $s $req; print answer(), "\n";
    for (1 .. 100) { last if -e $flag; select(undef, undef, undef, 0.1); }
    print $s $req; print answer(), "\n";
' "$HTTP_PORT" "$(cat "$WORK/gettime.xml")" "$WORK/filter-changed" > "$WORK/keepalive.out" 2>&1 &
ka_pid=$!
for _ in $(seq 50); do [ -s "$WORK/keepalive.out" ] && break; sleep 0.1; done

code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 127.0.0.2 32)")")
expect "$code" 200 "SetIPAddressFilter Deny 127.0.0.2/32 → 200"
touch "$WORK/filter-changed"
wait "$ka_pid" || true
check "a keep-alive connection from 127.0.0.2 opened before the Deny was served before it" \
    [ "$(sed -n 1p "$WORK/keepalive.out")" = "HTTP/1.1 200" ]
check "…and its next request after the Deny gets no answer ($(sed -n 2p "$WORK/keepalive.out"))" \
    [ "$(sed -n 2p "$WORK/keepalive.out")" = EOF ]
check "GetIPAddressFilter shows it ($(summary))" [ "$(summary)" = "Deny 127.0.0.2/32 |" ]
check "GetIPAddressFilter schema-valid" valid "$WORK/filter.xml"
check "a request from 127.0.0.2 gets no HTTP response (connection closed)" [ "$(from 127.0.0.2)" = 000 ]
curl -sS --max-time 5 -o /dev/null --interface 127.0.0.2 -X POST -H 'Content-Type: application/soap+xml' \
    --data-binary @"$WORK/getinfo.xml" "$URL" 2>/dev/null && rc=0 || rc=$?
check "…curl exits non-zero for it (rc=$rc)" [ "$rc" -ne 0 ]
check "the refusal is logged with the source" grep -q '127.0.0.2: connection refused by the IP address filter' "$WORK/daemon.log"
check "127.0.0.1 is still served" [ "$(from 127.0.0.1)" = 200 ]

code=$(soap "$(filter SetIPAddressFilter Allow "$(v4 127.0.0.2 32)")")
expect "$code" 400/ter:OperationProhibited "SetIPAddressFilter Allow only 127.0.0.2/32 from 127.0.0.1 → refused (would lock out the requester)"
check "…nothing changed" [ "$(summary)" = "Deny 127.0.0.2/32 |" ]
check "…127.0.0.1 still served" [ "$(from 127.0.0.1)" = 200 ]
code=$(soap "$(filter SetIPAddressFilter Allow "")")
expect "$code" 400/ter:OperationProhibited "SetIPAddressFilter Allow with empty lists → refused (admits nobody)"

code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 300.1.1.1 32)")")
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv4Address" "IPv4 300.1.1.1 → InvalidIPv4Address"
code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 10.0.0.0 33)")")
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv4Address" "IPv4 prefix 33 → InvalidIPv4Address"
code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 10.0.0.0 -1)")")
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv4Address" "IPv4 prefix -1 → InvalidIPv4Address"
code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 2001:db8:: 32)")")
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv4Address" "an IPv6 address in the IPv4 list → InvalidIPv4Address"
code=$(soap "$(filter SetIPAddressFilter Deny "$(v6 2001:db8::zz 64)")")
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv6Address" "IPv6 2001:db8::zz → InvalidIPv6Address"
code=$(soap "$(filter SetIPAddressFilter Deny "$(v6 2001:db8:: 129)")")
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv6Address" "IPv6 prefix 129 → InvalidIPv6Address"
code=$(soap "$(filter AddIPAddressFilter Deny "$(v4 10.9.9.9 32)$(v6 nonsense 64)")")
expect "$code" "400/ter:InvalidArgVal ter:InvalidIPv6Address" "Add with a valid IPv4 and an invalid IPv6 → InvalidIPv6Address"
many=""; for i in $(seq 1 65); do many="$many$(v4 "10.0.$i.0" 24)"; done
code=$(soap "$(filter SetIPAddressFilter Deny "$many")")
expect "$code" "400/ter:InvalidArgVal ter:IPFilterListIsFull" "65 IPv4 entries → IPFilterListIsFull"
many=""; for i in $(seq 1 63); do many="$many$(v4 "10.0.$i.0" 24)"; done
code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 127.0.0.2 32)$many")")
expect "$code" 200 "64 IPv4 entries accepted"
code=$(soap "$(filter AddIPAddressFilter Deny "$(v4 10.1.0.0 16)")")
expect "$code" "400/ter:InvalidArgVal ter:IPFilterListIsFull" "adding a 65th entry → IPFilterListIsFull"
code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 127.0.0.2 32)")")
expect "$code" 200 "back to Deny 127.0.0.2/32"
check "none of the refused changes changed anything" [ "$(summary)" = "Deny 127.0.0.2/32 |" ]

# Add / Remove
code=$(soap "$(filter AddIPAddressFilter Deny "$(v4 192.0.2.0 24)$(v6 2001:db8:: 32)")")
expect "$code" 200 "AddIPAddressFilter 192.0.2.0/24 and 2001:db8::/32 → 200"
check "…Get lists them" [ "$(summary)" = "Deny 127.0.0.2/32 192.0.2.0/24 | 2001:db8::/32" ]
code=$(soap "$(filter AddIPAddressFilter Deny "$(v4 192.0.2.0 24)")")
expect "$code" 200 "adding an exact duplicate is accepted"
check "…and not listed twice" [ "$(summary)" = "Deny 127.0.0.2/32 192.0.2.0/24 | 2001:db8::/32" ]
code=$(soap "$(filter RemoveIPAddressFilter Deny "$(v4 192.0.2.0 24)$(v6 2001:db8:: 32)")")
expect "$code" 200 "RemoveIPAddressFilter of both → 200"
check "…Get is back to the previous filter" [ "$(summary)" = "Deny 127.0.0.2/32 |" ]
code=$(soap "$(filter RemoveIPAddressFilter Deny "$(v4 198.51.100.0 24)")")
expect "$code" "400/ter:InvalidArgVal ter:NoIPv4Address" "Remove of an absent IPv4 entry → NoIPv4Address"
code=$(soap "$(filter RemoveIPAddressFilter Deny "$(v4 127.0.0.2 24)")")
expect "$code" "400/ter:InvalidArgVal ter:NoIPv4Address" "Remove with the right address but another prefix → NoIPv4Address"
code=$(soap "$(filter RemoveIPAddressFilter Deny "$(v6 2001:db8:1:: 48)")")
expect "$code" "400/ter:InvalidArgVal ter:NoIPv6Address" "Remove of an absent IPv6 entry → NoIPv6Address"
code=$(soap "$(filter RemoveIPAddressFilter Deny "$(v4 127.0.0.2 32)$(v4 198.51.100.0 24)")")
expect "$code" "400/ter:InvalidArgVal ter:NoIPv4Address" "Remove of a present and an absent entry → NoIPv4Address…"
check "…and the present one is still there (all-or-nothing)" [ "$(summary)" = "Deny 127.0.0.2/32 |" ]

# An Allow list that includes the requester
code=$(soap "$(filter SetIPAddressFilter Allow "$(v4 127.0.0.1 32)")")
expect "$code" 200 "SetIPAddressFilter Allow 127.0.0.1/32 from 127.0.0.1 → 200"
check "Allow: 127.0.0.1 served" [ "$(from 127.0.0.1)" = 200 ]
check "Allow: 127.0.0.2 (not listed) gets no response" [ "$(from 127.0.0.2)" = 000 ]
code=$(soap "$(filter RemoveIPAddressFilter Allow "$(v4 127.0.0.1 32)")")
expect "$code" 400/ter:OperationProhibited "removing the requester's own Allow entry → refused (lock-out)"
check "…still Allow 127.0.0.1/32" [ "$(summary)" = "Allow 127.0.0.1/32 |" ]
code=$(soap "$(filter SetIPAddressFilter Deny "$(v4 127.0.0.2 32)")")
expect "$code" 200 "back to Deny 127.0.0.2/32"

# Persistence
stop_daemon
check "clean exit" [ "$DAEMON_RC" = 0 ]
start_daemon
check "the filter survives a restart" [ "$(summary)" = "Deny 127.0.0.2/32 |" ]
check "…127.0.0.2 still gets no response" [ "$(from 127.0.0.2)" = 000 ]
check "…127.0.0.1 still served" [ "$(from 127.0.0.1)" = 200 ]
stop_daemon

# IPv6: a daemon bound to ::1
STATE=$WORK/state6
start_daemon --bind ::1
URL="http://[::1]:$HTTP_PORT/onvif/device_service"
check "daemon bound to ::1 answers over IPv6" [ "$(from ::1)" = 200 ]
code=$(soap "$(filter SetIPAddressFilter Allow "$(v6 2001:db8::1 128)")")
expect "$code" 400/ter:OperationProhibited "from ::1: Allow only 2001:db8::1/128 → refused (lock-out)"
code=$(soap "$(filter SetIPAddressFilter Allow "$(v6 ::1 128)")")
expect "$code" 200 "from ::1: SetIPAddressFilter Allow ::1/128 → 200"
check "…Get shows it" [ "$(summary)" = "Allow | ::1/128" ]
check "…and the daemon keeps answering ::1" [ "$(from ::1)" = 200 ]
check "…also after several requests" [ "$(from ::1)$(from ::1)$(from ::1)" = 200200200 ]
stop_daemon
check "clean exit" [ "$DAEMON_RC" = 0 ]

log "ipfilter.sh ran in $((SECONDS - T0)) s"
finish
