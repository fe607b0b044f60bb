/* pullbench: N pull-point subscriptions held by one process (one thread,
 * poll), so that the client is never the bottleneck. Each connection
 * creates its subscription, then keeps one PullMessages waiting; whenever a
 * response with a message arrives it records (arrival time - the message's
 * UtcTime) and pulls again. Runs for SECONDS, then prints one latency per
 * line (microseconds). Anonymous access (security/anonymous-media) only.
 *
 * usage: pullbench HOST PORT N SECONDS TOPIC_EXPRESSION > latencies */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXN 1024
#define BUF 65536

struct client {
    int fd;
    char path[128];
    char buf[BUF];
    size_t len;
    int subscribed;
};

static const char *host;
static int port;

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void send_soap(struct client *c, const char *path, const char *body)
{
    char env[2048], req[4096];
    int n = snprintf(env, sizeof env,
                     "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
                     "xmlns:tev=\"http://www.onvif.org/ver10/events/wsdl\" xmlns:wsnt=\"http://docs.oasis-open.org/wsn/b-2\">"
                     "<s:Body>%s</s:Body></s:Envelope>", body);
    int m = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/soap+xml\r\nContent-Length: %d\r\n\r\n%s",
                     path, host, port, n, env);
    if (write(c->fd, req, (size_t)m) != m) {
        perror("write");
        exit(1);
    }
}

static void pull(struct client *c)
{
    send_soap(c, c->path, "<tev:PullMessages><tev:Timeout>PT30S</tev:Timeout><tev:MessageLimit>100</tev:MessageLimit></tev:PullMessages>");
}

/* One complete HTTP response in c->buf? Returns its length or 0. */
static size_t complete(struct client *c)
{
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return 0;
    char *cl = strcasestr(c->buf, "Content-Length:");
    size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
    size_t total = (size_t)(end + 4 - c->buf) + body;
    return c->len >= total ? total : 0;
}

/* "2026-12-03T10:24:44.123Z" -> microseconds since 1970 */
static int64_t utc_us(const char *s)
{
    struct tm tm = { 0 };
    int ms = 0;
    if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000 + ms * 1000;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: pullbench HOST PORT N SECONDS TOPIC_EXPRESSION\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int n = atoi(argv[3]), secs = atoi(argv[4]);
    if (n < 1 || n > MAXN)
        return 2;
    static struct client cl[MAXN];
    struct pollfd pfd[MAXN];
    char create[1024];
    snprintf(create, sizeof create,
             "<tev:CreatePullPointSubscription><tev:Filter><wsnt:TopicExpression "
             "Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet\">%s</wsnt:TopicExpression>"
             "</tev:Filter><tev:InitialTerminationTime>PT600S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>",
             argv[5]);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, host, &a.sin_addr);
    for (int i = 0; i < n; i++) {
        cl[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cl[i].fd, (struct sockaddr *)&a, sizeof a) != 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_soap(&cl[i], "/onvif/event_service", create);
        pfd[i].fd = cl[i].fd;
        pfd[i].events = POLLIN;
    }
    int64_t end = wall_us() + (int64_t)secs * 1000000;
    int ready = 0;
    while (wall_us() < end) {
        if (poll(pfd, (nfds_t)n, 200) <= 0)
            continue;
        int64_t now = wall_us();
        for (int i = 0; i < n; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            struct client *c = &cl[i];
            ssize_t k = read(c->fd, c->buf + c->len, BUF - 1 - c->len);
            if (k <= 0) {
                fprintf(stderr, "connection %d closed\n", i);
                return 1;
            }
            c->len += (size_t)k;
            size_t total;
            while ((total = complete(c)) > 0) {
                if (!c->subscribed) {
                    char *addr = strstr(c->buf, "/onvif/event_subscription/");
                    if (!addr) {
                        fprintf(stderr, "no subscription: %.300s\n", c->buf);
                        return 1;
                    }
                    snprintf(c->path, sizeof c->path, "%.*s", (int)strcspn(addr, "<"), addr);
                    c->subscribed = 1;
                    if (++ready == n)
                        fprintf(stderr, "%d subscriptions ready\n", n);
                } else {
                    for (char *p = c->buf; (p = strstr(p, "UtcTime=\"")) && p < c->buf + total; p += 9) {
                        int64_t t = utc_us(p + 9);
                        if (t)
                            printf("%lld\n", (long long)(now - t));
                    }
                }
                memmove(c->buf, c->buf + total, c->len - total);
                c->len -= total;
                pull(c);
            }
        }
    }
    return 0;
}
