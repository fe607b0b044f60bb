/* soapload: a closed-loop SOAP 1.2 load client for the authentication
 * benchmark. N keep-alive connections on one epoll thread, each sending one
 * request at a time for a fixed duration, with no credentials, HTTP Digest
 * (per connection: one 401 to learn a nonce, then nc = 1, 2, ... as real
 * clients do) or a fresh WS-UsernameToken digest per request. Prints one
 * RESULT line: requests, req/s, p50/p99/max latency in microseconds, errors.
 * The same client drives every mode, so the modes compare fairly.
 *
 * cc -O2 -Wall -o soapload soapload.c -lcrypto */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define BUF_MAX 65536
#define HIST_MAX_US 4000000

enum auth_mode { AUTH_NONE, AUTH_DIGEST, AUTH_WSSE };

struct conn {
    int fd;
    char in[BUF_MAX];
    size_t in_len;
    char out[8192];
    size_t out_len, out_off;
    int64_t sent_us;
    char nonce[160];
    unsigned nc;
    int handshake;   /* digest: waiting for the 401 */
};

static const char *host = "127.0.0.1", *path = "/onvif/device_service", *op = "GetDeviceInformation";
static const char *user = "", *password = "";
static int port, nconns = 8, duration = 10;
static enum auth_mode mode = AUTH_NONE;
static uint32_t *hist;
static long long done_requests, errors, non200;
static int64_t max_us;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void md5_hex(const char *s, char out[33])
{
    unsigned char d[16];
    unsigned n;
    EVP_Digest(s, strlen(s), d, &n, EVP_md5(), NULL);
    hex(d, 16, out);
}

static void b64(const unsigned char *d, int n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, d, n);
}

static const char *envelope_head =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
    "xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\" "
    "xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" "
    "xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\">";

static size_t build_body(char *body, size_t cap)
{
    char header[1024] = "";
    if (mode == AUTH_WSSE) {
        unsigned char nonce[16], digest[20];
        RAND_bytes(nonce, sizeof nonce);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char created[96];
        snprintf(created, sizeof created, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
        EVP_DigestUpdate(ctx, nonce, sizeof nonce);
        EVP_DigestUpdate(ctx, created, strlen(created));
        EVP_DigestUpdate(ctx, password, strlen(password));
        EVP_DigestFinal_ex(ctx, digest, NULL);
        EVP_MD_CTX_free(ctx);
        char nonce64[32], digest64[40];
        b64(nonce, sizeof nonce, nonce64);
        b64(digest, sizeof digest, digest64);
        snprintf(header, sizeof header,
                 "<s:Header><wsse:Security s:mustUnderstand=\"1\"><wsse:UsernameToken><wsse:Username>%s</wsse:Username>"
                 "<wsse:Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest\">%s</wsse:Password>"
                 "<wsse:Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\">%s</wsse:Nonce>"
                 "<wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>",
                 user, digest64, nonce64, created);
    }
    return (size_t)snprintf(body, cap, "%s%s<s:Body><tds:%s/></s:Body></s:Envelope>", envelope_head, header, op);
}

static void build_request(struct conn *c)
{
    char body[4096];
    size_t blen = build_body(body, sizeof body);
    char authz[1024] = "";
    if (mode == AUTH_DIGEST && c->nonce[0]) {
        char a1[512], ha1[33], a2[256], ha2[33], cnonce[17], resp_in[1024], resp[33];
        unsigned char rnd[8];
        RAND_bytes(rnd, sizeof rnd);
        hex(rnd, 8, cnonce);
        snprintf(a1, sizeof a1, "%s:OpenNVT:%s", user, password);
        md5_hex(a1, ha1);
        snprintf(a2, sizeof a2, "POST:%s", path);
        md5_hex(a2, ha2);
        c->nc++;
        snprintf(resp_in, sizeof resp_in, "%s:%s:%08x:%s:auth:%s", ha1, c->nonce, c->nc, cnonce, ha2);
        md5_hex(resp_in, resp);
        snprintf(authz, sizeof authz,
                 "Authorization: Digest username=\"%s\", realm=\"OpenNVT\", nonce=\"%s\", uri=\"%s\", "
                 "algorithm=MD5, qop=auth, nc=%08x, cnonce=\"%s\", response=\"%s\"\r\n",
                 user, c->nonce, path, c->nc, cnonce, resp);
    }
    if (c->handshake)
        blen = 0; /* the empty probe that earns the 401 and its nonce */
    c->out_len = (size_t)snprintf(c->out, sizeof c->out,
                                  "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/soap+xml; charset=utf-8\r\n"
                                  "%sContent-Length: %zu\r\n\r\n%.*s",
                                  path, host, port, authz, blen, (int)blen, body);
    c->out_off = 0;
}

static int open_conn(struct conn *c, int ep)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->in_len = 0;
    c->nc = 0;
    c->nonce[0] = '\0';
    c->handshake = mode == AUTH_DIGEST;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void send_next(struct conn *c, int ep)
{
    build_request(c);
    c->sent_us = now_us();
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Returns the length of a complete response at the start of c->in, or 0. */
static size_t complete_response(struct conn *c, int *status)
{
    c->in[c->in_len < BUF_MAX ? c->in_len : BUF_MAX - 1] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return 0;
    size_t hlen = (size_t)(end + 4 - c->in);
    *status = atoi(c->in + 9);
    char *cl = strcasestr(c->in, "\r\nContent-Length:");
    size_t blen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    if (c->in_len < hlen + blen)
        return 0;
    if (*status == 401 && mode == AUTH_DIGEST) {
        char *n = strstr(c->in, "algorithm=MD5, nonce=\"");
        if (n && n < end) {
            n += 22;
            char *q = strchr(n, '"');
            if (q && (size_t)(q - n) < sizeof c->nonce) {
                memcpy(c->nonce, n, (size_t)(q - n));
                c->nonce[q - n] = '\0';
                c->nc = 0;
            }
        }
    }
    return hlen + blen;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--op")) op = argv[i + 1];
        else if (!strcmp(argv[i], "--conns")) nconns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--duration")) duration = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--user")) user = argv[i + 1];
        else if (!strcmp(argv[i], "--password")) password = argv[i + 1];
        else if (!strcmp(argv[i], "--auth")) mode = !strcmp(argv[i + 1], "digest") ? AUTH_DIGEST : !strcmp(argv[i + 1], "wsse") ? AUTH_WSSE : AUTH_NONE;
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!port || nconns < 1 || nconns > MAX_CONNS || duration < 1 || duration > 300) {
        fprintf(stderr, "usage: soapload --port N [--op OP] [--conns N<=%d] [--duration S<=300] [--auth none|digest|wsse --user U --password P]\n", MAX_CONNS);
        return 2;
    }
    hist = calloc(HIST_MAX_US + 1, sizeof *hist);
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    int ep = epoll_create1(0);
    for (int i = 0; i < nconns; i++) {
        if (open_conn(&conns[i], ep) != 0) {
            perror("connect");
            return 1;
        }
        send_next(&conns[i], ep);
    }
    int64_t start = now_us(), stop = start + (int64_t)duration * 1000000;
    struct epoll_event evs[256];
    while (now_us() < stop) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if ((evs[i].events & EPOLLOUT) && c->out_off < c->out_len) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w > 0)
                    c->out_off += (size_t)w;
                if (c->out_off == c->out_len) {
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r = recv(c->fd, c->in + c->in_len, BUF_MAX - 1 - c->in_len, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                errors++; /* closed by the server (keep-alive limit): reconnect */
                close(c->fd);
                if (open_conn(c, ep) != 0)
                    return 1;
                send_next(c, ep);
                continue;
            }
            c->in_len += (size_t)r;
            int status;
            size_t used = complete_response(c, &status);
            if (!used)
                continue;
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            if (c->handshake && status == 401) {
                c->handshake = 0;
            } else {
                int64_t lat = now_us() - c->sent_us;
                hist[lat > HIST_MAX_US ? HIST_MAX_US : lat]++;
                if (lat > max_us)
                    max_us = lat;
                done_requests++;
                if (status != 200)
                    non200++;
                if (status == 401 && mode == AUTH_DIGEST)
                    c->handshake = 0; /* stale: the 401 carried a fresh nonce */
            }
            send_next(c, ep);
        }
    }
    double secs = (double)(now_us() - start) / 1e6;
    long long p50 = 0, p99 = 0, seen = 0;
    for (int64_t us = 0; us <= HIST_MAX_US; us++) {
        seen += hist[us];
        if (!p50 && seen * 2 >= done_requests)
            p50 = us;
        if (!p99 && seen * 100 >= done_requests * 99) {
            p99 = us;
            break;
        }
    }
    printf("RESULT mode=%s op=%s conns=%d requests=%lld rps=%.0f p50_us=%lld p99_us=%lld max_us=%lld non200=%lld reconnects=%lld\n",
           mode == AUTH_NONE ? "none" : mode == AUTH_DIGEST ? "digest" : "wsse", op, nconns, done_requests,
           done_requests / secs, p50, p99, (long long)max_us, non200, errors);
    return non200 ? 3 : 0;
}
