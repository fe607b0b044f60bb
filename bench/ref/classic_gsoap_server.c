/* classic_gsoap_server.c - same-run REFERENCE server for bench/soap.sh.
 *
 * THIS IS A STAND-IN, NOT onvif_srvd. onvif_srvd cannot be downloaded here
 * (no network), so this file reproduces the server architecture the
 * benchmark issue attributes to it: the classic gSOAP multi-threaded
 * stand-alone server with a fixed pool of threads, as described in the gSOAP
 * user guide ("multi-threaded stand-alone service with a pool of threads"):
 *
 *   - one master context: soap_bind() + a blocking soap_accept() loop;
 *   - each accepted socket is put on a bounded ring queue (MAX_QUEUE);
 *   - a fixed pool of worker threads (default 8, as OpenNVT), each with its
 *     own soap_copy() of the master context, takes a socket from the queue and
 *     runs soap_serve() on it. soap_serve() loops over keep-alive requests, so
 *     ONE WORKER OWNS A CONNECTION UNTIL IT CLOSES (client close, timeout, or
 *     gSOAP's max_keep_alive, default 100 requests). Connections accepted while
 *     all workers are busy wait in the queue;
 *   - timeouts as in onvif_srvd's init_gsoap(): send_timeout = recv_timeout = 3 s;
 *   - no authentication.
 *
 * It is built from the very same gSOAP bindings as opennvtd
 * (libopennvt_gsoap.a: same generated serializers, same namespace table, so
 * the same response bytes), and answers tds:GetSystemDateAndTime and
 * tds:GetDeviceInformation with content equivalent to OpenNVT's. Every other
 * operation falls through to the library's weak ActionNotSupported stubs.
 * What differs from opennvtd is only the connection/threading architecture,
 * which is what the benchmark compares.
 *
 * Build (bench/soap.sh does this; the -D flags must match libgsoapssl):
 *   cc -O2 -DWITH_IPV6 -DWITH_OPENSSL -DWITH_GZIP -DWITH_DOM \
 *      -I BUILD/generated -I /usr/share/gsoap/plugin -I /usr/share/gsoap/custom \
 *      bench/ref/classic_gsoap_server.c BUILD/generated/libopennvt_gsoap.a \
 *      -lgsoapssl -lssl -lcrypto -lz -lpthread -o classic_gsoap_server
 *
 * Usage: classic_gsoap_server [--bind ADDR] [--port N] [--ports-file FILE]
 *          [--workers N] [--backlog N] [--max-keep-alive N] [--timeout S]
 *   --port 0 picks a free port; --ports-file receives "http=N".
 *   Stops on SIGTERM/SIGINT (default action: the process exits).
 */
#include "soapH.h"
#include "wsddapi.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

extern struct Namespace namespaces[]; /* onvif_nsmap.c in libopennvt_gsoap.a */

#define MAX_QUEUE 1000 /* as in the gSOAP user guide example */

static SOAP_SOCKET queue[MAX_QUEUE];
static int q_head, q_tail;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;

static int enqueue(SOAP_SOCKET s)
{
    int status = SOAP_OK;
    pthread_mutex_lock(&q_lock);
    int next = (q_tail + 1) % MAX_QUEUE;
    if (next == q_head) {
        status = SOAP_EOM; /* full */
    } else {
        queue[q_tail] = s;
        q_tail = next;
        pthread_cond_signal(&q_cond);
    }
    pthread_mutex_unlock(&q_lock);
    return status;
}

static SOAP_SOCKET dequeue(void)
{
    pthread_mutex_lock(&q_lock);
    while (q_head == q_tail)
        pthread_cond_wait(&q_cond, &q_lock);
    SOAP_SOCKET s = queue[q_head];
    q_head = (q_head + 1) % MAX_QUEUE;
    pthread_mutex_unlock(&q_lock);
    return s;
}

/* One worker: owns each dequeued connection for all its keep-alive requests. */
static void *process_queue(void *arg)
{
    struct soap *tsoap = arg;
    for (;;) {
        tsoap->socket = dequeue();
        if (!soap_valid_socket(tsoap->socket))
            break;
        soap_serve(tsoap);     /* loops while the connection is kept alive */
        soap_destroy(tsoap);
        soap_end(tsoap);
        soap_force_closesock(tsoap); /* normally already closed; never leak a socket */
    }
    return NULL;
}

/* ---- operations ------------------------------------------------------------ */

static void *zalloc(struct soap *soap, size_t n)
{
    void *p = soap_malloc(soap, n);
    if (p)
        memset(p, 0, n);
    return p;
}

static struct tt__DateTime *datetime_of(struct soap *soap, const struct tm *tm)
{
    struct tt__DateTime *dt = zalloc(soap, sizeof *dt);
    dt->Date = zalloc(soap, sizeof *dt->Date);
    dt->Time = zalloc(soap, sizeof *dt->Time);
    dt->Date->Year = tm->tm_year + 1900;
    dt->Date->Month = tm->tm_mon + 1;
    dt->Date->Day = tm->tm_mday;
    dt->Time->Hour = tm->tm_hour;
    dt->Time->Minute = tm->tm_min;
    dt->Time->Second = tm->tm_sec;
    return dt;
}

int __tds__GetSystemDateAndTime(struct soap *soap, struct _tds__GetSystemDateAndTime *req,
                                struct _tds__GetSystemDateAndTimeResponse *resp)
{
    (void)req;
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    struct tt__SystemDateTime *sdt = zalloc(soap, sizeof *sdt);
    sdt->DateTimeType = tt__SetDateTimeType__Manual;
    sdt->DaylightSavings = xsd__boolean__false_;
    sdt->TimeZone = zalloc(soap, sizeof *sdt->TimeZone);
    sdt->TimeZone->TZ = "UTC0";
    sdt->UTCDateTime = datetime_of(soap, &utc);
    sdt->LocalDateTime = datetime_of(soap, &utc);
    resp->SystemDateAndTime = sdt;
    return SOAP_OK;
}

int __tds__GetDeviceInformation(struct soap *soap, struct _tds__GetDeviceInformation *req,
                                struct _tds__GetDeviceInformationResponse *resp)
{
    (void)req;
    /* Same field lengths as OpenNVT's defaults, so the responses are the same size. */
    resp->Manufacturer = soap_strdup(soap, "OpenNVT");
    resp->Model = soap_strdup(soap, "OpenNVT-Linux");
    resp->FirmwareVersion = soap_strdup(soap, "0.1.0");
    resp->SerialNumber = soap_strdup(soap, "000000000000");
    resp->HardwareId = soap_strdup(soap, "linux-generic");
    return SOAP_OK;
}

/* Every other operation: the library's weak stubs call this. */
int onvif_fault_action_not_supported(struct soap *soap)
{
    return soap_receiver_fault_subcode(soap, "ter:ActionNotSupported", "Optional action not implemented", NULL);
}

/* The wsdd plugin in the library needs these callbacks; discovery is not served here. */
void wsdd_event_Hello(struct soap *soap, unsigned int InstanceId, const char *SequenceId, unsigned int MessageNumber,
                      const char *MessageID, const char *RelatesTo, const char *EndpointReference, const char *Types,
                      const char *Scopes, const char *MatchBy, const char *XAddrs, unsigned int MetadataVersion)
{ }
void wsdd_event_Bye(struct soap *soap, unsigned int InstanceId, const char *SequenceId, unsigned int MessageNumber,
                    const char *MessageID, const char *RelatesTo, const char *EndpointReference, const char *Types,
                    const char *Scopes, const char *MatchBy, const char *XAddrs, unsigned int *MetadataVersion)
{ }
soap_wsdd_mode wsdd_event_Probe(struct soap *soap, const char *MessageID, const char *ReplyTo, const char *Types,
                                const char *Scopes, const char *MatchBy, struct wsdd__ProbeMatchesType *matches)
{ return SOAP_WSDD_ADHOC; }
void wsdd_event_ProbeMatches(struct soap *soap, unsigned int InstanceId, const char *SequenceId,
                             unsigned int MessageNumber, const char *MessageID, const char *RelatesTo,
                             struct wsdd__ProbeMatchesType *matches)
{ }
soap_wsdd_mode wsdd_event_Resolve(struct soap *soap, const char *MessageID, const char *ReplyTo,
                                  const char *EndpointReference, struct wsdd__ResolveMatchType *match)
{ return SOAP_WSDD_ADHOC; }
void wsdd_event_ResolveMatches(struct soap *soap, unsigned int InstanceId, const char *SequenceId,
                               unsigned int MessageNumber, const char *MessageID, const char *RelatesTo,
                               struct wsdd__ResolveMatchType *match)
{ }

/* ---- main --------------------------------------------------------------------- */

static int bound_port(SOAP_SOCKET s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(s, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void usage(void)
{
    fprintf(stderr, "usage: classic_gsoap_server [--bind ADDR] [--port N] [--ports-file FILE] [--workers N]\n"
                    "         [--backlog N] [--max-keep-alive N] [--timeout S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *bind_addr = "127.0.0.1", *ports_file = NULL;
    int port = 0, workers = 8, backlog = 100, max_keep_alive = SOAP_MAXKEEPALIVE, timeout_s = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--bind")) bind_addr = argv[++i];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ports-file")) ports_file = argv[++i];
        else if (!strcmp(argv[i], "--workers")) workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--backlog")) backlog = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-keep-alive")) max_keep_alive = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout")) timeout_s = atoi(argv[++i]);
        else usage();
    }
    if (workers < 1 || workers > 1024 || backlog < 1)
        usage();
    signal(SIGPIPE, SIG_IGN);

    struct soap *master = soap_new1(SOAP_C_UTFSTRING | SOAP_IO_KEEPALIVE);
    if (!master)
        return 1;
    soap_set_namespaces(master, namespaces);
    master->bind_flags = SO_REUSEADDR;
    master->send_timeout = timeout_s;
    master->recv_timeout = timeout_s;
    master->accept_timeout = 0; /* block in accept */
    master->max_keep_alive = max_keep_alive;
    if (!soap_valid_socket(soap_bind(master, bind_addr, port, backlog))) {
        soap_print_fault(master, stderr);
        return 1;
    }
    int actual = bound_port(master->master);
    if (ports_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", ports_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "http=%d\n", actual) < 0 || fclose(f) != 0 || rename(tmp, ports_file) != 0) {
            perror("ports file");
            return 1;
        }
    }
    fprintf(stderr, "classic_gsoap_server: %s port %d, %d workers, backlog %d, max_keep_alive %d, timeouts %d s\n",
            bind_addr, actual, workers, backlog, max_keep_alive, timeout_s);

    pthread_t *tids = calloc((size_t)workers, sizeof *tids);
    for (int i = 0; i < workers; i++) {
        struct soap *tsoap = soap_copy(master);
        if (!tsoap || pthread_create(&tids[i], NULL, process_queue, tsoap) != 0) {
            fprintf(stderr, "cannot start worker %d\n", i);
            return 1;
        }
    }
    for (;;) {
        SOAP_SOCKET s = soap_accept(master);
        if (!soap_valid_socket(s)) {
            if (master->errnum == EINTR || master->errnum == ECONNABORTED || master->errnum == EMFILE ||
                master->errnum == ENFILE) {
                if (master->errnum == EMFILE || master->errnum == ENFILE)
                    usleep(10000);
                continue;
            }
            soap_print_fault(master, stderr);
            continue;
        }
        while (enqueue(s) == SOAP_EOM)
            sleep(1); /* the user-guide example's back-pressure */
    }
}
