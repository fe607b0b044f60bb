#!/usr/bin/env bash
# bench/tls.sh - TLS handshakes/s of opennvtd's HTTPS port side by side with
# `openssl s_server` in the same run, and HTTPS keep-alive requests/s vs HTTP.
#
#  1. Full (s_time -new) and resumed (s_time -reuse) handshakes/s, TLS 1.3 and
#     TLS 1.2, with an ECDSA P-256 and an RSA-3072 server certificate, each
#     against opennvtd and against `openssl s_server` serving a certificate
#     chain of the same shape (leaf + CA, same key type). One sequential
#     client (`openssl s_time`, as in ../shared/bench/tls.sh), each row twice
#     in ABBA order (ours, ref, ref, ours), plus server CPU per handshake from
#     /proc/PID/stat (utime + stime) and s_time's own CPU per handshake.
#  2. The same full handshakes with BENCH_PAR concurrent s_time clients, so
#     that the server CPU rather than the client's round trip is the limit.
#  3. TLS 1.3 resumption needs the session ticket, which s_time only reads
#     when it reads application data: one supplementary row with -www (one
#     HTTP/1.0 GET per connection: ours answers a 404 from the SOAP server,
#     s_server -WWW an empty file), and an s_client -sess_out/-sess_in check.
#  4. Keep-alive GetSystemDateAndTime over HTTP and HTTPS on the same opennvtd
#     with the shared instrument ../shared/bench/soap_rps.sh (wrk).
#
# Certificates: ECDSA P-256 is the device CA's built-in server certificate
# (the device never exports its private key, so s_server gets its own EC P-256
# leaf signed by a throw-away EC P-256 CA, also sent as a 2-certificate chain).
# RSA-3072: one key + certificate from a throw-away RSA-3072 CA, uploaded to
# the device as PKCS#12 (UploadCertificateWithPrivateKeyInPKCS12 +
# AddServerCertificateAssignment) and given to s_server as is: identical chain.
#
# Usage: bench/tls.sh [SECONDS]   SECONDS per s_time/wrk run (default 4; about 9 min)
# Environment (optional):
#   BENCH_CERTS="ec rsa"   which certificates (rsa needs AddServerCertificateAssignment)
#   BENCH_PAR=4            concurrent s_time clients in part 2 (0 = skip part 2)
#   BENCH_KA_CONNS="1 8 32"  wrk connections for part 4 (empty = skip part 4)
#   BENCH_BUILD_DIR=build  where src/opennvtd is (built with cmake --build if missing)
#   BENCH_SERVER_CPU=1 BENCH_CLIENT_CPU=0   taskset CPUs
#   BENCH_OUT=bench/results/tls-<timestamp>
# Needs: openssl, curl, wrk, taskset, timeout, ss, awk.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"
SHARED=../shared/bench
RPS=$SHARED/soap_rps.sh
[ -f "$SHARED/lib.sh" ] && [ -f "$RPS" ] || { echo "tls.sh: $SHARED/{lib.sh,soap_rps.sh} not found (expected beside the repo)"; exit 1; }
. "$SHARED/lib.sh"   # busy_1s, wait_idle

SECS=${1:-4}
case "$SECS" in ''|*[!0-9]*) echo "usage: bench/tls.sh [SECONDS 1..120]"; exit 2;; esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 120 ] || { echo "SECONDS must be 1..120"; exit 2; }
CERTS=${BENCH_CERTS:-"ec rsa"}
PAR=${BENCH_PAR:-4}
KA_CONNS=${BENCH_KA_CONNS-"1 8 32"}
BUILD=${BENCH_BUILD_DIR:-$REPO/build}
SCPU=${BENCH_SERVER_CPU:-1}
CCPU=${BENCH_CLIENT_CPU:-0}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$HERE/results/tls-$STAMP}
for t in openssl curl wrk taskset timeout ss awk mkfifo; do command -v "$t" >/dev/null || { echo "tls.sh: need $t"; exit 1; }; done
HZ=$(getconf CLK_TCK)

if [ ! -x "$BUILD/src/opennvtd" ]; then
  echo "== $BUILD/src/opennvtd missing: building it"
  timeout 1800 cmake --build "$BUILD" -j2 --target opennvtd >/dev/null
fi

W=$(mktemp -d /tmp/opennvt-tlsbench.XXXXXX)
# A private copy: a rebuild by someone else during the run cannot swap the binary.
cp "$BUILD/src/opennvtd" "$W/opennvtd"
BIN=$W/opennvtd
OURS_PID=""; REF_PIDS=""
cleanup() {
  local p
  for p in $OURS_PID $REF_PIDS; do kill "$p" 2>/dev/null || true; done
  for p in $OURS_PID $REF_PIDS; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  exec 8>&- 2>/dev/null || true
  if [ -d "$OUT" ]; then
    cp "$W/ours.log" "$OUT/" 2>/dev/null || true
    # s_server logs one line per connection s_time closes without close_notify: keep counts only.
    [ -f "$W/s_server.log" ] && sed 's/^[0-9A-F]*:error:/error:/' "$W/s_server.log" | sort | uniq -c | sort -rn > "$OUT/s_server-log-counts.txt"
  fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT/raw"

# ---- certificates for s_server (and the RSA one for the device) --------------------
PKI=$W/pki; mkdir -p "$PKI"
printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
  'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1' 'subjectKeyIdentifier=hash' \
  'authorityKeyIdentifier=keyid' > "$PKI/leaf.ext"
make_chain() { # make_chain NAME OPENSSL-NEWKEY-ARGS...: NAME-ca.{key,pem}, NAME.{key,pem}
  local n=$1; shift
  openssl req -x509 "$@" -nodes -keyout "$PKI/$n-ca.key" -out "$PKI/$n-ca.pem" -days 30 -sha256 \
    -subj "/O=OpenNVT Bench/CN=Bench $n CA" 2>/dev/null
  openssl req -new "$@" -nodes -keyout "$PKI/$n.key" -out "$PKI/$n.csr" -subj /CN=127.0.0.1 2>/dev/null
  openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/$n-ca.pem" -CAkey "$PKI/$n-ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 30 -sha256 -extfile "$PKI/leaf.ext" -out "$PKI/$n.pem" 2>/dev/null
}
make_chain ec -newkey ec -pkeyopt ec_paramgen_curve:P-256
make_chain rsa -newkey rsa:3072
P12_PASS='P12-Bench-Pass-7'
# The device accepts PBKDF2 schemes only: AES-256-CBC for key and certificates, MAC sha256.
openssl pkcs12 -export -inkey "$PKI/rsa.key" -in "$PKI/rsa.pem" -certfile "$PKI/rsa-ca.pem" -passout "pass:$P12_PASS" \
  -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -out "$PKI/rsa.p12"
mkdir -p "$W/www"; : > "$W/www/empty"

# ---- opennvtd -----------------------------------------------------------------------
USER_NAME=bench PASS='Load-Tester-9x'
cat > "$W/opennvt.xml" <<XML
<opennvt>
  <log><level>notice</level></log>
  <discovery><enabled>false</enabled></discovery>
  <soap><max-keep-alive>1000000</max-keep-alive></soap>
  <security><confirm-window-s>0</confirm-window-s></security>
</opennvt>
XML
printf '%s\n' "$PASS" | "$BIN" --config "$W/opennvt.xml" --state-dir "$W/state" --create-admin "$USER_NAME" >/dev/null
taskset -c "$SCPU" "$BIN" --foreground --config "$W/opennvt.xml" --state-dir "$W/state" --bind 127.0.0.1 \
  --http-port 0 --https-port 0 --discovery-port 0 --ports-file "$W/ports" > "$W/ours.log" 2>&1 &
OURS_PID=$!
for _ in $(seq 100); do grep -q '^https=' "$W/ports" 2>/dev/null && break; kill -0 "$OURS_PID" 2>/dev/null || break; sleep 0.1; done
HTTP=$(sed -n 's/^http=//p' "$W/ports" 2>/dev/null); HTTPS=$(sed -n 's/^https=//p' "$W/ports" 2>/dev/null)
[ -n "$HTTP" ] && [ -n "$HTTPS" ] || { echo "tls.sh: opennvtd did not start with HTTPS"; cat "$W/ours.log"; exit 1; }
echo "== ours: opennvtd pid $OURS_PID, http $HTTP, https $HTTPS (CPU $SCPU)"

# s_server reads its standard input while a connection is open: give it a FIFO
# that is held open and never written (no EOF to spin on, nothing sent).
mkfifo "$W/stdin.fifo"; exec 8<>"$W/stdin.fifo"
REF_PID=""; REF_PORT=""
start_ref() { # start_ref NAME [extra s_server args]: sets REF_PID REF_PORT
  local n=$1; shift
  (cd "$W/www" && exec taskset -c "$SCPU" openssl s_server -accept 127.0.0.1:0 -cert "$PKI/$n.pem" -key "$PKI/$n.key" \
     -cert_chain "$PKI/$n-ca.pem" -quiet -naccept 1000000000 "$@" <&8 >> "$W/s_server.log" 2>&1) &
  REF_PID=$!; REF_PIDS="$REF_PIDS $REF_PID"; REF_PORT=""
  for _ in $(seq 50); do
    REF_PORT=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$REF_PID," 'index($0, p) {n = split($4, a, ":"); print a[n]; exit}')
    [ -n "$REF_PORT" ] && break; sleep 0.1
  done
  [ -n "$REF_PORT" ] || { echo "tls.sh: s_server ($n $*) did not start"; cat "$W/s_server.log"; exit 1; }
}
stop_ref() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

tas() { # tas BODY OUT -> HTTP status; ONVIF Security service as the Administrator (HTTP Digest)
  curl -sS --max-time 30 -o "$2" -w '%{http_code}' --digest -u "$USER_NAME:$PASS" \
    -H 'Content-Type: application/soap+xml; charset=utf-8' --data-binary \
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tas=\"http://www.onvif.org/ver10/advancedsecurity/wsdl\"><s:Body>$1</s:Body></s:Envelope>" \
    "http://127.0.0.1:$HTTP/onvif/security_service" || echo 000
}

proto_args() { # PROTO CERT -> s_time/s_client protocol (and TLS 1.2 cipher) options
  if [ "$1" = tls1_2 ]; then
    if [ "$2" = rsa ]; then echo "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"; else echo "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"; fi
  else echo "-tls1_3"; fi
}
# served PORT [PROTO CERT]: one line describing what a handshake negotiates and sends
served() {
  local o
  # shellcheck disable=SC2046
  o=$(timeout 10 openssl s_client -connect "127.0.0.1:$1" -showcerts $( [ -n "${2:-}" ] && proto_args "$2" "$3") </dev/null 2>&1 || true)
  awk '/^New, /{split($0, a, ", "); pr = a[2]} /Cipher is/{c = $NF} /Server Temp Key/{sub(/.*: /, ""); tk = $0}
       /Peer signature type/{st = $NF} /a:PKEY:/{sub(/.*a:PKEY: /, ""); sub(/; sigalg.*/, ""); gsub(/ \(bit\)/, ""); k = k (k ? " + " : "") $0; n++}
       /handshake has read/{rd = $5}
       END {printf "%s %s, key exchange %s, signature %s, chain of %d: [%s], %s bytes read\n", pr, c, tk, st, n, k, rd}' <<< "$o"
}
key_of() { served "$1" | sed -n 's/.*chain of [0-9]*: \[\([^]+]*[^] +]\).*/\1/p'; }   # "rsaEncryption, 3072" / "id-ecPublicKey, 256"

ms() { date +%s%N | awk '{printf "%.3f", $1 / 1e6}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ROWS=$OUT/rows.txt; : > "$ROWS"
: > "$OUT/noise.txt"; : > "$OUT/errors.txt"
# stime CERT PROTO MODE WHO PORT PID PASS [EXTRA s_time args]: one s_time run, one ROW line
stime() {
  local cert=$1 proto=$2 mode=$3 who=$4 port=$5 pid=$6 pass=$7; shift 7
  local busy k0 k1 t0 t1 o n cu marks f
  wait_idle 10 2>>"$OUT/noise.txt"; busy=$(busy_1s)
  f=$OUT/raw/stime.$cert.$proto.$mode.$who.$pass.txt
  # shellcheck disable=SC2046
  { k0=$(ticks "$pid"); t0=$(ms)
    o=$(timeout $((SECS + 30)) taskset -c "$CCPU" openssl s_time -connect "127.0.0.1:$port" -"${mode%-www}" \
          $(proto_args "$proto" "$cert") -time "$SECS" "$@" 2>&1 || true)
    t1=$(ms); k1=$(ticks "$pid"); }
  printf '%s\n' "$o" > "$f"
  n=$(sed -n 's/^\([0-9]*\) connections in [0-9]* real seconds.*/\1/p' <<< "$o" | tail -1)
  cu=$(sed -n 's/^\([0-9]*\) connections in \([0-9.]*\)s;.*/\2/p' <<< "$o" | tail -1)
  marks=$(sed -e 's/^Collecting connection statistics for [0-9]* seconds//' <<< "$o" | grep -E '^[*rt3]+$' | tr -d '\n' || true)
  local bad; bad=$(grep -ciE 'error|unable|fail' <<< "$o" || true)
  [ "${bad:-0}" -gt 0 ] && { echo "== $f"; grep -iE 'error|unable|fail' <<< "$o" | head -5; } >> "$OUT/errors.txt"
  local r=${marks//[!r]/} s=${marks//[!*]/}
  echo "ROW $cert $proto $mode $who $pass ${n:-0} $t0 $t1 $((k1 - k0)) ${cu:-0} ${#r} ${#s} ${bad:-0} $busy" | tee -a "$ROWS"
}
# par CERT PROTO WHO PORT PID: BENCH_PAR concurrent s_time -new clients, one PAR line
par() {
  local cert=$1 proto=$2 who=$3 port=$4 pid=$5 i k0 k1 t0 t1 n=0 bad=0 busy pids=""
  wait_idle 10 2>>"$OUT/noise.txt"; busy=$(busy_1s)
  k0=$(ticks "$pid"); t0=$(ms)
  for i in $(seq "$PAR"); do
    # shellcheck disable=SC2046
    timeout $((SECS + 30)) taskset -c "$CCPU" openssl s_time -connect "127.0.0.1:$port" -new $(proto_args "$proto" "$cert") \
      -time "$SECS" > "$W/par.$i.txt" 2>&1 &
    pids="$pids $!"
  done
  # shellcheck disable=SC2086
  wait $pids 2>/dev/null || true
  t1=$(ms); k1=$(ticks "$pid")
  for i in $(seq "$PAR"); do
    cat "$W/par.$i.txt" >> "$OUT/raw/par.$cert.$proto.$who.txt"
    n=$(( n + $(sed -n 's/^\([0-9]*\) connections in [0-9]* real seconds.*/\1/p' "$W/par.$i.txt" | tail -1 | grep . || echo 0) ))
    bad=$(( bad + $(grep -ciE 'error|unable|fail' "$W/par.$i.txt" || true) ))
  done
  echo "PAR $cert $proto new $who $PAR $n $t0 $t1 $((k1 - k0)) $bad $busy" | tee -a "$ROWS"
}
handshake_rows() { # CERT REF_PORT REF_PID
  local cert=$1 rport=$2 rpid=$3 proto mode
  for proto in tls1_3 tls1_2; do
    for mode in new reuse; do
      stime "$cert" "$proto" "$mode" ours "$HTTPS" "$OURS_PID" 1
      stime "$cert" "$proto" "$mode" ref "$rport" "$rpid" 1
      stime "$cert" "$proto" "$mode" ref "$rport" "$rpid" 2
      stime "$cert" "$proto" "$mode" ours "$HTTPS" "$OURS_PID" 2
    done
  done
  if [ "$PAR" -gt 0 ]; then
    for proto in tls1_3 tls1_2; do
      par "$cert" "$proto" ours "$HTTPS" "$OURS_PID"
      par "$cert" "$proto" ref "$rport" "$rpid"
    done
  fi
}
resume_check() { # CERT WHO PORT: does a real client resume? (TLS 1.3 needs the ticket read)
  local p a b
  for p in tls1_3 tls1_2; do
    # shellcheck disable=SC2046
    (sleep 0.5; echo) | timeout 10 openssl s_client -connect "127.0.0.1:$3" $(proto_args $p "$1") -sess_out "$W/sess" >/dev/null 2>&1 || true
    # shellcheck disable=SC2046
    a=$( (sleep 0.2; echo) | timeout 10 openssl s_client -connect "127.0.0.1:$3" $(proto_args $p "$1") -sess_in "$W/sess" 2>&1 | grep -E '^(New|Reused),' || echo "no handshake")
    echo "$1 $2 $p s_client -sess_out then -sess_in: $a" | tee -a "$OUT/resumption.txt"
    rm -f "$W/sess"
  done
}

{
  echo "date: $(date -Is)"
  echo "host: $(nproc) CPUs, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(openssl version)"
  echo "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || echo ' (src modified)')"
  echo "binary: $BUILD/src/opennvtd ($(grep -m1 '^CMAKE_BUILD_TYPE' "$BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2), built $(date -r "$BUILD/src/opennvtd" -Is))"
  echo "settings: ${SECS}s per run, certs '$CERTS', $PAR parallel clients, keep-alive conns '$KA_CONNS', server CPU $SCPU, client CPU $CCPU"
  echo "command: $(env | grep '^BENCH_' | sort | tr '\n' ' ')bench/tls.sh $*"
} > "$OUT/env.txt"
cat "$OUT/env.txt"
: > "$OUT/handshakes.txt"; : > "$OUT/resumption.txt"

for CERT in $CERTS; do
  if [ "$CERT" = rsa ]; then
    echo "== RSA-3072: UploadCertificateWithPrivateKeyInPKCS12 + AddServerCertificateAssignment"
    c=$(tas "<tas:UploadCertificateWithPrivateKeyInPKCS12><tas:CertWithPrivateKey>$(base64 -w0 < "$PKI/rsa.p12")</tas:CertWithPrivateKey><tas:CertificationPathAlias>bench-rsa3072</tas:CertificationPathAlias><tas:KeyAlias>bench-rsa3072</tas:KeyAlias><tas:Passphrase>$P12_PASS</tas:Passphrase></tas:UploadCertificateWithPrivateKeyInPKCS12>" "$W/up.xml")
    PATH_ID=$(sed -n 's:.*<tas\:CertificationPathID>\([^<]*\)</tas\:CertificationPathID>.*:\1:p' "$W/up.xml")
    cp "$W/up.xml" "$OUT/raw/upload-pkcs12.xml"
    [ "$c" = 200 ] && [ -n "$PATH_ID" ] || { echo "tls.sh: PKCS#12 upload failed (HTTP $c):"; head -c 2000 "$W/up.xml"; echo; echo "RSA part SKIPPED" | tee -a "$OUT/errors.txt"; continue; }
    c=$(tas "<tas:AddServerCertificateAssignment><tas:CertificationPathID>$PATH_ID</tas:CertificationPathID></tas:AddServerCertificateAssignment>" "$W/as.xml")
    cp "$W/as.xml" "$OUT/raw/add-assignment.xml"
    [ "$c" = 200 ] || { echo "tls.sh: AddServerCertificateAssignment $PATH_ID failed (HTTP $c):"; head -c 2000 "$W/as.xml"; echo; echo "RSA part SKIPPED (assignment fault)" | tee -a "$OUT/errors.txt"; continue; }
    k=$(key_of "$HTTPS")
    case "$k" in rsaEncryption,\ 3072) echo "== ours now serves $k (path $PATH_ID)";;
      *) echo "tls.sh: after the assignment the HTTPS port still serves '$k': RSA part SKIPPED" | tee -a "$OUT/errors.txt"; continue;; esac
  else
    k=$(key_of "$HTTPS")
    case "$k" in id-ecPublicKey,\ 256) ;; *) echo "tls.sh: ours serves '$k', not EC P-256: EC part SKIPPED" | tee -a "$OUT/errors.txt"; continue;; esac
  fi
  start_ref "$CERT"; RP=$REF_PID; RPORT=$REF_PORT
  echo "== ref : openssl s_server pid $RP port $RPORT ($CERT chain, CPU $SCPU)"
  for P in tls1_3 tls1_2; do
    echo "$CERT ours $P: $(served "$HTTPS" "$P" "$CERT")" | tee -a "$OUT/handshakes.txt"
    echo "$CERT ref  $P: $(served "$RPORT" "$P" "$CERT")" | tee -a "$OUT/handshakes.txt"
  done
  resume_check "$CERT" ours "$HTTPS"; resume_check "$CERT" ref "$RPORT"
  handshake_rows "$CERT" "$RPORT" "$RP"
  stop_ref "$RP"
  # Supplementary: TLS 1.3 resumption with application data read (-www)
  start_ref "$CERT" -WWW; WP=$REF_PID; WPORT=$REF_PORT
  stime "$CERT" tls1_3 reuse-www ours "$HTTPS" "$OURS_PID" 1 -www /onvif/device_service
  stime "$CERT" tls1_3 reuse-www ref "$WPORT" "$WP" 1 -www /empty
  stop_ref "$WP"
  echo "$CERT ours at the end: $(key_of "$HTTPS")" | tee -a "$OUT/handshakes.txt"
  kill -0 "$OURS_PID" 2>/dev/null || { echo "tls.sh: opennvtd died"; exit 1; }

  # Keep-alive HTTP vs HTTPS, once, with the first certificate measured (ABBA).
  if [ -n "$KA_CONNS" ] && [ ! -f "$OUT/raw/ka.done" ]; then
    # soap_rps.sh checks one request with curl first: trust nothing, skip verification
    # (loopback; wrk does not verify certificates either).
    mkdir -p "$W/curlhome"; echo insecure > "$W/curlhome/.curlrc"
    i=0
    for WHO in http https https http; do
      i=$((i + 1)); URL=http://127.0.0.1:$HTTP/onvif/device_service
      [ "$WHO" = https ] && URL=https://127.0.0.1:$HTTPS/onvif/device_service
      echo "== keep-alive $WHO ($URL) busy $(busy_1s)%" | tee -a "$OUT/noise.txt"
      CURL_HOME=$W/curlhome timeout $(( $(echo $KA_CONNS | wc -w) * (SECS + 100) )) bash "$RPS" "$URL" GetSystemDateAndTime \
        --duration "$SECS" --conns "$KA_CONNS" --modes ka --pid "$OURS_PID" --client-cpu "$CCPU" 2>&1 \
        | tee "$OUT/raw/ka.$WHO.$i.txt" || echo "tls.sh: soap_rps.sh failed for $WHO" | tee -a "$OUT/errors.txt"
      awk -v who="$WHO" -v cert="$CERT" '$1=="ka" && $3=="|" {print "KA", who, cert, $2, $4, $6, $8, $11, $14}' "$OUT/raw/ka.$WHO.$i.txt" >> "$ROWS"
    done
    touch "$OUT/raw/ka.done"
  fi
done

# ---- summary ------------------------------------------------------------------------
SUM=$OUT/summary.md
awk -v hz="$HZ" -v secs="$SECS" -v par="$PAR" '
  function r2(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
  $1 == "ROW" { k = $2 " " $3 " " $4; if (!(k in seen)) { seen[k] = 1; order[n++] = k }
    w = ($9 - $8) / 1000; rate[$5, k] += $7 / w; cnt[$5, k]++; hs[$5, k] += $7; tk[$5, k] += $10; cu[$5, k] += $11
    re[$5, k] += $12; nw[$5, k] += $13; er[$5, k] += $14; pr[$5, k] = pr[$5, k] (pr[$5, k] == "" ? "" : "/") sprintf("%.0f", $7 / w) }
  $1 == "PAR" { k = $2 " " $3; if (!(k in pseen)) { pseen[k] = 1; porder[pn++] = k }
    w = ($9 - $8) / 1000; prate[$5, k] = $7 / w; pcpu[$5, k] = 100 * $10 / hz / w; pus[$5, k] = ($7 > 0) ? 1e6 * $10 / hz / $7 : 0; per[$5, k] = $11 }
  $1 == "KA" { k = $4; if (!(k in kseen)) { kseen[k] = 1; korder[kn++] = k }
    krps[$2, k] += $5; kc[$2, k]++; kp99[$2, k] = (kp99[$2, k] == "" ? "" : kp99[$2, k] "/") $7; ker[$2, k] += $8; kus[$2, k] += $9 }
  END {
    print "ours = opennvtd HTTPS port, ref = openssl s_server; one sequential `openssl s_time` client, " secs " s per run,"
    print "each row run twice ABBA (hs/s = mean of the two runs, per-run values in brackets); srv us/hs = server"
    print "CPU (utime+stime) per handshake; cli us/hs = s_time user CPU per handshake; resumed = share of connections s_time marked r."
    print ""
    print "| cert | proto | handshake | ours hs/s | ref hs/s | ratio | ours srv us/hs | ref srv us/hs | CPU ratio | ours cli us/hs | ref cli us/hs | ours resumed | ref resumed | errors |"
    print "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for (i = 0; i < n; i++) { k = order[i]; split(k, f, " ")
      ro = rate["ours", k] / cnt["ours", k]; rr = rate["ref", k] / cnt["ref", k]
      uo = hs["ours", k] ? 1e6 * tk["ours", k] / hz / hs["ours", k] : 0; ur = hs["ref", k] ? 1e6 * tk["ref", k] / hz / hs["ref", k] : 0
      co = hs["ours", k] ? 1e6 * cu["ours", k] / hs["ours", k] : 0; cr = hs["ref", k] ? 1e6 * cu["ref", k] / hs["ref", k] : 0
      mo = re["ours", k] + nw["ours", k]; mr = re["ref", k] + nw["ref", k]
      cert = (f[1] == "rsa") ? "RSA-3072" : "ECDSA P-256"; proto = (f[2] == "tls1_3") ? "TLS 1.3" : "TLS 1.2"
      hsk = (f[3] == "new") ? "full" : (f[3] == "reuse") ? "resumed" : "resumed, 1 GET (-www)"
      printf "| %s | %s | %s | %.0f (%s) | %.0f (%s) | %s | %.0f | %.0f | %s | %.0f | %.0f | %s | %s | %d/%d |\n", cert, proto, hsk,
        ro, pr["ours", k], rr, pr["ref", k], r2(ro, rr), uo, ur, r2(uo, ur), co, cr,
        mo ? sprintf("%.0f %%", 100 * re["ours", k] / mo) : "-", mr ? sprintf("%.0f %%", 100 * re["ref", k] / mr) : "-",
        er["ours", k], er["ref", k]
      if (f[3] == "new") tgt = tgt sprintf("  %-11s %-7s full: ours/ref %s %s\n", cert, proto, r2(ro, rr), (rr > 0 && ro / rr >= 0.8) ? "PASS" : "FAIL")
    }
    if (pn) {
      print ""
      print "Full handshakes with " par " concurrent s_time clients (all on the client CPU), one run each:"
      print ""
      print "| cert | proto | ours hs/s | ref hs/s | ratio | ours srv %cpu | ref srv %cpu | ours srv us/hs | ref srv us/hs | errors |"
      print "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
      for (i = 0; i < pn; i++) { k = porder[i]; split(k, f, " ")
        cert = (f[1] == "rsa") ? "RSA-3072" : "ECDSA P-256"; proto = (f[2] == "tls1_3") ? "TLS 1.3" : "TLS 1.2"
        printf "| %s | %s | %.0f | %.0f | %s | %.0f | %.0f | %.0f | %.0f | %d/%d |\n", cert, proto, prate["ours", k], prate["ref", k],
          r2(prate["ours", k], prate["ref", k]), pcpu["ours", k], pcpu["ref", k], pus["ours", k], pus["ref", k], per["ours", k], per["ref", k]
        tgt = tgt sprintf("  %-11s %-7s full, %d clients: ours/ref %s %s\n", cert, proto, par, r2(prate["ours", k], prate["ref", k]),
          (prate["ref", k] > 0 && prate["ours", k] / prate["ref", k] >= 0.8) ? "PASS" : "FAIL") }
    }
    if (kn) {
      print ""
      print "Keep-alive GetSystemDateAndTime on opennvtd, HTTP vs HTTPS (soap_rps.sh / wrk -t1, twice ABBA, req/s = mean):"
      print ""
      print "| conns | HTTP req/s | HTTPS req/s | HTTPS/HTTP | HTTP p99 ms | HTTPS p99 ms | HTTP srv us/req | HTTPS srv us/req | errors HTTP/HTTPS |"
      print "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
      for (i = 0; i < kn; i++) { k = korder[i]
        h = kc["http", k] ? krps["http", k] / kc["http", k] : 0; s = kc["https", k] ? krps["https", k] / kc["https", k] : 0
        printf "| %s | %.0f | %.0f | %s | %s | %s | %.0f | %.0f | %d/%d |\n", k, h, s, r2(s, h), kp99["http", k], kp99["https", k],
          kc["http", k] ? kus["http", k] / kc["http", k] : 0, kc["https", k] ? kus["https", k] / kc["https", k] : 0, ker["http", k], ker["https", k] }
    }
    print ""
    print "Target: ours >= 80 % of s_server full handshakes/s"
    printf "%s", tgt
  }' "$ROWS" > "$SUM"
{
  echo; echo "Negotiated (s_client against each server):"; sed 's/^/  /' "$OUT/handshakes.txt"
  echo; echo "Resumption with a client that reads the ticket:"; sed 's/^/  /' "$OUT/resumption.txt"
  echo; echo "Client-side errors (s_time):"; if [ -s "$OUT/errors.txt" ]; then sed 's/^/  /' "$OUT/errors.txt"; else echo "  none"; fi
  echo; echo "opennvtd log (notice and above, $(wc -l < "$W/ours.log") lines):"; sed 's/^/  /' "$W/ours.log" | head -40
  echo; echo "Noise (wait_idle warnings; busy % before each run is the last ROW field):"; sed 's/^/  /' "$OUT/noise.txt"
} >> "$SUM"
echo
echo "================ summary ($SUM) ================"
cat "$OUT/env.txt"
cat "$SUM"
