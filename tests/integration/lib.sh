# Shared helpers for the integration tests: start opennvtd on 127.0.0.1 with
# ephemeral ports and a temporary state directory, talk to it with real
# clients (curl, the gSOAP onvif_client), assert, and always clean up.
# Every wait is bounded in time.
set -euo pipefail

: "${OPENNVTD:?path to opennvtd}"
: "${ONVIF_CLIENT:?path to onvif_client}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VALIDATE="$HERE/xsd/validate-soap.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/opennvt-it.XXXXXX")
DAEMON_PID=""
FAILS=0
# Optional wrapper (e.g. valgrind) for the daemon.
read -r -a DAEMON_WRAPPER <<< "${OPENNVTD_WRAPPER:-}"

cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }
pass() { log "ok   - $*"; }
fail() { log "FAIL - $*"; FAILS=$((FAILS + 1)); }
finish() {
    if [ "$FAILS" -ne 0 ]; then
        log "$FAILS check(s) failed; daemon log:"; sed 's/^/    /' "$WORK/daemon.log" >&2 2>/dev/null || true
        exit 1
    fi
    log "all checks passed"
}

check() { # check "description" command...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# The Administrator every test provisions locally (opennvtd --create-admin)
# unless NO_ADMIN=1; soap() and onvif_client authenticate as it.
ADMIN_USER=admin
ADMIN_PASS='Camera-Adm1n-Pass'
if [ -z "${NO_ADMIN:-}" ]; then
    export ONVIF_USER=$ADMIN_USER ONVIF_PASSWORD=$ADMIN_PASS
fi

# create_admin NAME PASSWORD: the local provisioning command; prints its output.
create_admin() {
    printf '%s\n' "$2" | "$OPENNVTD" --state-dir "${STATE:-$WORK/state}" --create-admin "$1" 2>&1
}

# start_daemon [extra opennvtd options...]: sets HTTP_PORT, HTTPS_PORT, DISC_PORT, RTSP_PORT, URL, STATE
start_daemon() {
    STATE=${STATE:-$WORK/state}
    if [ -z "${NO_ADMIN:-}" ] && [ ! -e "$STATE/users.xml" ]; then
        create_admin "$ADMIN_USER" "$ADMIN_PASS" >> "$WORK/daemon.log" || { log "cannot provision the Administrator"; return 1; }
    fi
    rm -f "$WORK/ports"
    "${DAEMON_WRAPPER[@]}" "$OPENNVTD" --foreground --state-dir "$STATE" --bind 127.0.0.1 \
        --http-port 0 --https-port 0 --discovery-port 0 --rtsp-port 0 --ports-file "$WORK/ports" --log-level "${LOG_LEVEL:-info}" "$@" \
        >> "$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 300); do
        [ -s "$WORK/ports" ] && break
        kill -0 "$DAEMON_PID" 2>/dev/null || { log "opennvtd exited early"; cat "$WORK/daemon.log" >&2; return 1; }
        sleep 0.1
    done
    [ -s "$WORK/ports" ] || { log "opennvtd did not write its ports file"; return 1; }
    HTTP_PORT=$(sed -n 's/^http=//p' "$WORK/ports")
    HTTPS_PORT=$(sed -n 's/^https=//p' "$WORK/ports")
    DISC_PORT=$(sed -n 's/^discovery=//p' "$WORK/ports")
    RTSP_PORT=$(sed -n 's/^rtsp=//p' "$WORK/ports")
    URL="http://127.0.0.1:$HTTP_PORT/onvif/device_service"
}

stop_daemon() { # stop_daemon [signal]: waits (bounded) and returns the exit code in DAEMON_RC
    local sig=${1:-TERM}
    kill "-$sig" "$DAEMON_PID"
    DAEMON_RC=0
    for _ in $(seq 1 200); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$DAEMON_PID" || DAEMON_RC=$?
    DAEMON_PID=""
}

# soap BODY_XML [OUTFILE]: POSTs a SOAP 1.2 envelope to the device service
# with HTTP Digest as the Administrator (SOAP_AUTH=none: no credentials;
# SOAP_CRED=user:password: other credentials); prints the HTTP status; the
# response body goes to OUTFILE ($WORK/resp.xml).
soap() {
    local body=$1 out=${2:-$WORK/resp.xml}
    local auth=()
    if [ "${SOAP_AUTH:-digest}" = digest ] && [ -z "${NO_ADMIN:-}${SOAP_CRED:+x}" ]; then
        auth=(--digest -u "$ADMIN_USER:$ADMIN_PASS")
    elif [ -n "${SOAP_CRED:-}" ] && [ "${SOAP_AUTH:-digest}" = digest ]; then
        auth=(--digest -u "$SOAP_CRED")
    fi
    curl -sS --max-time 20 -o "$out" -w '%{http_code}' -X POST "${auth[@]}" \
        -H 'Content-Type: application/soap+xml; charset=utf-8' \
        --data-binary "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\" xmlns:tt=\"http://www.onvif.org/ver10/schema\" xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\"><s:Body>$body</s:Body></s:Envelope>" \
        "$URL"
}

# valid FILE: the response is a SOAP envelope whose content the official XSDs accept
valid() { "$VALIDATE" --schema-cache "${SCHEMA_CACHE:-${TMPDIR:-/tmp}/opennvt-schema-cache}" "$1" >/dev/null 2>"$WORK/validate.err" || { cat "$WORK/validate.err" >&2; return 1; }; }

# xpath FILE EXPR: evaluates with local-name() friendly output
xpath() { xmllint --xpath "$2" "$1" 2>/dev/null; }

fault_subcodes() { # prints the fault's subcode values, space-separated
    xmllint --xpath '//*[local-name()="Subcode"]/*[local-name()="Value"]/text()' "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'
}

# service_starts: how many times the daemon has started its services so far
service_starts() { grep -c 'opennvtd .* started' "$WORK/daemon.log"; }
# wait_restart N: the services started again after N starts (an in-process
# restart: SystemReboot, a reset, a restore) and answer; fails when they did not
wait_restart() {
    local i
    for i in $(seq 100); do [ "$(service_starts)" -gt "$1" ] && break; sleep 0.1; done
    [ "$(service_starts)" -gt "$1" ] || return 1
    for i in $(seq 50); do
        [ "$(SOAP_AUTH=none soap '<tds:GetSystemDateAndTime/>' "$WORK/t.xml" || true)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
