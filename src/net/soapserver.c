/* HTTP/SOAP listener. One epoll thread accepts connections and buffers each
 * request until it is complete (bounded by httpframe); complete requests go to
 * a fixed pool of gSOAP workers, which parse from memory and write the
 * response; keep-alive connections then return to the loop. A worker is only
 * ever busy with a request that has fully arrived. HTTPS is the same service
 * on a second set of listening sockets: the loop drives a non-blocking
 * OpenSSL handshake, then reads through SSL_read into the same framing; every
 * write (worker responses, error replies) goes through conn_write. */
#include "opennvt/soapserver.h"
#include "opennvt/accesspolicy.h"
#include "opennvt/deviceca.h"
#include "opennvt/gate.h"
#include "opennvt/httpframe.h"
#include "opennvt/ipfilter.h"
#include "opennvt/keystore.h"
#include "opennvt/log.h"
#include "opennvt/netlisten.h"
#include "opennvt/rtspserver.h"
#include "opennvt/tlspolicy.h"
#include "opennvt/users.h"
#include "opennvt/xmlguard.h"
#include "soapH.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern struct Namespace namespaces[];

#define READ_CHUNK 16384
#define MAX_LISTENERS 2
#define EXTRA_WORKERS_MAX 256       /* workers beyond soap/workers, for long-polling pulls */
#define EXTRA_WORKER_IDLE_S 30

enum conn_state { CONN_HANDSHAKE, CONN_READING, CONN_QUEUED, CONN_SERVING, CONN_LINGERING };

struct conn {
    int fd;
    enum conn_state state;
    char *buf;
    size_t len, cap;
    struct httpframe frame;
    int continue_sent;
    int requests;
    int64_t deadline_ms;          /* request or idle deadline */
    int64_t request_started_ms;   /* 0 while idle */
    int close_after;              /* worker decided to close */
    SSL *ssl;                     /* TLS connections only */
    int tls_dead;                 /* fatal TLS error: no close_notify */
    int tls_shut;                 /* close_notify already sent */
    int client_verified;          /* TLS client certificate valid under the policy */
    char client_cn[257];          /* its CN (a user name when CnMapsToUser applies) */
    unsigned long verified_policy;    /* policy and keystore generations it was verified under */
    unsigned long verified_keystore;
    int cn_maps;                  /* CnMapsToUser when accepted */
    unsigned long generation;     /* network policy in force when accepted */
    int policy_changed;           /* its request changed the network policy */
    char logged_in[USERS_NAME_MAX + 1];   /* user whose login the Access log has for this connection */
    uint32_t events;              /* what the loop waits for in epoll */
    struct sockaddr_storage peer;
    struct sockaddr_storage local;
    char peer_text[64];
    char local_host[64];
    int local_port;
    struct conn *prev, *next;     /* loop's list of connections */
    struct conn *qnext;           /* work queue / return queue */
};

struct soapserver {
    const struct opennvt_config *cfg;
    struct onvif_device *dev;
    int listen_fd[MAX_LISTENERS];
    int n_listen;
    int port;
    int tls_listen_fd[MAX_LISTENERS];
    int n_tls_listen;
    int https_port;               /* 0: HTTPS not running */
    SSL_CTX *tls_ctx;
    /* The network policy the listeners follow (loop thread only). */
    struct tlspolicy_state applied;
    unsigned long applied_generation;
    int64_t generation_seen_ms;   /* when a not yet applied change was first seen */
    int n_serving;                /* requests handed to workers, not yet returned */
    int reconfigure_due;          /* a returned request changed the policy */
    int epfd;
    int wake_fd;                  /* eventfd: returns from workers, shutdown */
    volatile int stopping;
    pthread_t loop_thread;
    pthread_t *workers;
    int n_workers;
    struct soap *master;

    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    /* Workers beyond the configured ones start when every worker is busy
     * (long-polling PullMessages hold one each) and leave when idle. */
    int idle_workers;
    int n_extra;
    pthread_cond_t extra_gone;
    struct conn *work_head, *work_tail;   /* complete requests */
    struct conn *ret_head;                /* back from workers */

    struct conn *conns;                   /* owned by the loop thread */
    int n_conns;
};

static int apply_tls_settings(struct soapserver *srv, SSL *ssl);
static void start_extra_worker(struct soapserver *srv);
static int conn_still_allowed(struct soapserver *srv, struct conn *c);
static void reconfigure(struct soapserver *srv);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void addr_text(const struct sockaddr_storage *ss, char *host, size_t hostlen, int *port, int bracket_v6)
{
    char tmp[INET6_ADDRSTRLEN] = "?";
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, tmp, sizeof tmp);
        *port = ntohs(s->sin_port);
        snprintf(host, hostlen, "%s", tmp);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        *port = ntohs(s->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
            inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], tmp, sizeof tmp);
            snprintf(host, hostlen, "%s", tmp);
        } else {
            inet_ntop(AF_INET6, &s->sin6_addr, tmp, sizeof tmp);
            snprintf(host, hostlen, bracket_v6 ? "[%s]" : "%s", tmp);
        }
    } else {
        snprintf(host, hostlen, "?");
    }
}

/* ---- listening sockets ---------------------------------------------------- */

/* Opens the listening socket for one port (the bind address rules are
 * netlisten's); stores it in fds and the bound port in *bound. */
static int open_listeners(struct soapserver *srv, int port, int *fds, int *n_fds, int *bound)
{
    int fd = netlisten_open(srv->cfg->bind, port, "soap", bound);
    if (fd < 0)
        return fd;
    fds[(*n_fds)++] = fd;
    return 0;
}

/* ---- connection bookkeeping (loop thread only) ----------------------------- */

static void conn_unlink_and_free(struct soapserver *srv, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    if (c->ssl) {
        if (!c->tls_dead && !c->tls_shut && SSL_is_init_finished(c->ssl)) {
            ERR_clear_error();
            SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
        }
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0) {
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    free(c->buf);
    free(c);
}

/* Closing a socket with unread input makes the kernel send a reset, which can
 * destroy the error response before the client reads it; so half-close, then
 * drain briefly before the real close. */
static void linger_close(struct soapserver *srv, struct conn *c)
{
    (void)srv;
    if (c->ssl && !c->tls_dead && !c->tls_shut && SSL_is_init_finished(c->ssl)) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        c->tls_shut = 1;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGERING;
    c->len = 0;
    c->deadline_ms = now_ms() + 2000;
}

static void drain(struct soapserver *srv, struct conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_unlink_and_free(srv, c);
        return;
    }
}

/* The one way bytes leave for a client: send() on plain connections,
 * SSL_write() on TLS ones, waiting for the socket at most until deadline_ms
 * (0: never wait, for the loop thread). Only the thread that owns the
 * connection at the time calls it (the loop, or the worker serving it), so an
 * SSL is never used concurrently. Returns 0 when everything was written. */
static int conn_write(struct conn *c, const char *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        short wait_for;
        if (c->ssl) {
            if (c->tls_dead || c->tls_shut)
                return -1;
            ERR_clear_error();
            int w = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
                continue;
            }
            int e = SSL_get_error(c->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE)
                wait_for = POLLOUT;
            else if (e == SSL_ERROR_WANT_READ)
                wait_for = POLLIN;
            else {
                c->tls_dead = 1;
                ERR_clear_error();
                return -1;
            }
        } else {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
                continue;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                wait_for = POLLOUT;
            else
                return -1;
        }
        int64_t left = deadline_ms - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = { .fd = c->fd, .events = wait_for };
        int r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0 && (pfd.revents & (POLLERR | POLLNVAL)))
            return -1;
    }
    return 0;
}

static void send_all_best_effort(struct conn *c, const char *p, size_t n)
{
    conn_write(c, p, n, 0);
}

static void reply_status_and_close(struct soapserver *srv, struct conn *c, int status, const char *reason,
                                   const char *extra_header)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n%s\n",
                     status, reason, strlen(reason) + 1, extra_header ? extra_header : "", reason);
    send_all_best_effort(c, msg, (size_t)n);
    log_info("soap", "%s: HTTP %d %s%s", c->peer_text, status, reason, c->ssl ? " (TLS)" : "");
    linger_close(srv, c);
}

/* Connections from this address (only those still in the TLS handshake when
 * handshaking). */
static int count_peer_conns(struct soapserver *srv, const struct sockaddr_storage *peer, int handshaking)
{
    int n = 0;
    for (struct conn *c = srv->conns; c; c = c->next) {
        if (c->peer.ss_family != peer->ss_family || (handshaking && c->state != CONN_HANDSHAKE))
            continue;
        if (peer->ss_family == AF_INET &&
            ((struct sockaddr_in *)&c->peer)->sin_addr.s_addr == ((const struct sockaddr_in *)peer)->sin_addr.s_addr)
            n++;
        else if (peer->ss_family == AF_INET6 &&
                 memcmp(&((struct sockaddr_in6 *)&c->peer)->sin6_addr, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16) == 0)
            n++;
    }
    return n;
}

/* Changes what epoll waits for on a connection (TLS may need to write while
 * reading, or read while handshaking). */
static int conn_wait_for(struct soapserver *srv, struct conn *c, uint32_t events)
{
    if (c->events == events)
        return 0;
    struct epoll_event ev = { .events = events | EPOLLRDHUP, .data.ptr = c };
    if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        return -1;
    c->events = events;
    return 0;
}

static const char *tls_error_text(int ssl_error)
{
    unsigned long e = ERR_peek_last_error();
    if (e) {
        const char *r = ERR_reason_error_string(e);
        return r ? r : "TLS error";
    }
    return ssl_error == SSL_ERROR_SYSCALL ? "connection closed" : "TLS error";
}

static void read_conn(struct soapserver *srv, struct conn *c);

/* A resumed session skips certificate verification, and sessions are only
 * resumable under the policy generation they were made in (see
 * apply_tls_settings); still, the user a CN names is read again here. */
static int verify_resumed_client(struct soapserver *srv, struct conn *c)
{
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    const char *why = "no client certificate";
    if (leaf && tlspolicy_verify_client(srv->dev->tlspolicy, leaf, SSL_get_peer_cert_chain(c->ssl), c->client_cn,
                                        sizeof c->client_cn, &why) == TLSPOLICY_OK) {
        c->client_verified = 1;
        c->verified_policy = srv->applied_generation;
        c->verified_keystore = keystore_generation(srv->dev->keystore);
        return 0;
    }
    log_info("soap", "%s: client certificate refused on resumption: %s", c->peer_text, why);
    return -1;
}

/* Drives the server handshake as far as the socket allows. */
static void handshake_conn(struct soapserver *srv, struct conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        log_debug("soap", "%s: TLS handshake done: %s %s%s", c->peer_text, SSL_get_version(c->ssl),
                  SSL_get_cipher_name(c->ssl), SSL_session_reused(c->ssl) ? " (resumed)" : "");
        if ((srv->applied.client_auth_required && !c->client_verified && verify_resumed_client(srv, c) != 0) ||
            !conn_still_allowed(srv, c)) {
            c->tls_dead = 1;
            conn_unlink_and_free(srv, c);
            return;
        }
        c->state = CONN_READING;
        c->deadline_ms = now_ms() + srv->cfg->soap_idle_timeout_ms;
        if (conn_wait_for(srv, c, EPOLLIN) != 0) {
            conn_unlink_and_free(srv, c);
            return;
        }
        read_conn(srv, c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (conn_wait_for(srv, c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) != 0)
            conn_unlink_and_free(srv, c);
        return;
    }
    log_info("soap", "%s: TLS handshake failed: %s", c->peer_text, tls_error_text(e));
    c->tls_dead = 1;
    ERR_clear_error();
    conn_unlink_and_free(srv, c);
}

static void accept_all(struct soapserver *srv, int lfd, int tls)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or EMFILE: try again on the next wakeup */
        }
        /* Host access restrictions: before a byte is read. */
        if (srv->dev->ipfilter && !ipfilter_allows(srv->dev->ipfilter, (struct sockaddr *)&peer)) {
            char phost[64];
            int pport;
            addr_text(&peer, phost, sizeof phost, &pport, 0);
            log_info("soap", "%s: connection refused by the IP address filter", phost);
            close(fd);
            continue;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->peer = peer;
        if (tls) {
            c->ssl = SSL_new(srv->tls_ctx);
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1 || apply_tls_settings(srv, c->ssl) != 0) {
                SSL_free(c->ssl);
                ERR_clear_error();
                free(c);
                close(fd);
                continue;
            }
            SSL_set_accept_state(c->ssl);
            SSL_set_app_data(c->ssl, c);
        }
        c->generation = srv->applied_generation;
        c->cn_maps = srv->applied.cn_maps_to_user;
        socklen_t llen = sizeof c->local;
        getsockname(fd, (struct sockaddr *)&c->local, &llen);
        int pport;
        char phost[64];
        addr_text(&peer, phost, sizeof phost, &pport, 0);
        snprintf(c->peer_text, sizeof c->peer_text, "%s", phost);
        addr_text(&c->local, c->local_host, sizeof c->local_host, &c->local_port, 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->n_conns++;
        c->state = tls ? CONN_HANDSHAKE : CONN_READING;
        /* A handshake must finish in its own, short time: stalled handshakes
         * (slowloris) hold no worker, and each address gets few at once. */
        c->deadline_ms = now_ms() + (tls ? srv->cfg->soap_tls_handshake_timeout_ms : srv->cfg->soap_idle_timeout_ms);
        if (srv->n_conns > srv->cfg->soap_max_connections ||
            count_peer_conns(srv, &peer, 0) > srv->cfg->soap_max_connections_per_ip ||
            (tls && count_peer_conns(srv, &peer, 1) > srv->cfg->soap_max_tls_handshakes_per_ip)) {
            if (tls) {
                /* No HTTP status can be said before the handshake: just close. */
                log_info("soap", "%s: too many connections, TLS connection closed", c->peer_text);
                conn_unlink_and_free(srv, c);
            } else {
                reply_status_and_close(srv, c, 503, "Service Unavailable", "Retry-After: 1\r\n");
            }
            continue;
        }
        c->events = EPOLLIN;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
        if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_unlink_and_free(srv, c);
    }
}

static void queue_work(struct soapserver *srv, struct conn *c)
{
    c->state = CONN_QUEUED;
    srv->n_serving++;
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    pthread_mutex_lock(&srv->qlock);
    c->qnext = NULL;
    if (srv->work_tail)
        srv->work_tail->qnext = c;
    else
        srv->work_head = c;
    srv->work_tail = c;
    if (srv->idle_workers == 0 && srv->n_extra < EXTRA_WORKERS_MAX && !srv->stopping)
        start_extra_worker(srv);
    pthread_cond_signal(&srv->qcond);
    pthread_mutex_unlock(&srv->qlock);
}

/* Frames what is buffered; queues a complete request or answers an error. */
static void examine_buffer(struct soapserver *srv, struct conn *c)
{
    if (c->len == 0)
        return;
    /* RTSP over HTTP uses this port too (ONVIF: the web service's port): the
     * tunnel's legs go to the RTSP server, which owns the socket from here. */
    if (!c->ssl && c->requests == 0 && srv->dev->rtsp && rtspserver_is_tunnel_request(c->buf, c->len)) {
        int fd = c->fd;
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, fd, NULL);
        if (rtspserver_adopt(srv->dev->rtsp, fd, c->buf, c->len) == 0)
            c->fd = -1;
        conn_unlink_and_free(srv, c);
        return;
    }
    if (!c->request_started_ms) {
        c->request_started_ms = now_ms();
        c->deadline_ms = c->request_started_ms + srv->cfg->soap_recv_timeout_ms;
    }
    int r = httpframe_parse(c->buf, c->len, (size_t)srv->cfg->soap_max_header_bytes,
                            (size_t)srv->cfg->soap_max_request_bytes, &c->frame);
    if (r == HTTPFRAME_COMPLETE) {
        if (!conn_still_allowed(srv, c)) {
            log_info("soap", "%s: connection no longer allowed by the network settings, closing", c->peer_text);
            conn_unlink_and_free(srv, c);
            return;
        }
        queue_work(srv, c);
    } else if (r == HTTPFRAME_NEED_BODY) {
        if (c->frame.expect_continue && !c->continue_sent) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            send_all_best_effort(c, cont, sizeof cont - 1);
            c->continue_sent = 1;
        }
    } else if (r < 0) {
        const char *reason;
        int status = httpframe_status(r, &reason);
        reply_status_and_close(srv, c, status, reason, NULL);
    }
}

static void read_conn(struct soapserver *srv, struct conn *c)
{
    for (;;) {
        if (c->cap - c->len < READ_CHUNK / 2) {
            size_t limit = (size_t)srv->cfg->soap_max_request_bytes + READ_CHUNK;
            if (c->cap >= limit) {
                /* Buffered more than any acceptable request; let framing decide. */
                break;
            }
            size_t ncap = c->cap ? c->cap * 2 : READ_CHUNK;
            if (ncap > limit)
                ncap = limit;
            char *nb = realloc(c->buf, ncap);
            if (!nb) {
                conn_unlink_and_free(srv, c);
                return;
            }
            c->buf = nb;
            c->cap = ncap;
        }
        if (c->ssl) {
            size_t room = c->cap - c->len;
            ERR_clear_error();
            int r = SSL_read(c->ssl, c->buf + c->len, room > INT32_MAX ? INT32_MAX : (int)room);
            if (r > 0) {
                c->len += (size_t)r;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (conn_wait_for(srv, c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) != 0) {
                    conn_unlink_and_free(srv, c);
                    return;
                }
                break;
            }
            /* close_notify, EOF or a TLS error: a half-sent request is dropped. */
            if (e != SSL_ERROR_ZERO_RETURN) {
                log_debug("soap", "%s: TLS connection ended: %s", c->peer_text, tls_error_text(e));
                c->tls_dead = 1;
            }
            ERR_clear_error();
            conn_unlink_and_free(srv, c);
            return;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* EOF or error: a half-sent request is simply dropped. */
        conn_unlink_and_free(srv, c);
        return;
    }
    examine_buffer(srv, c);
}

static void take_returns(struct soapserver *srv)
{
    pthread_mutex_lock(&srv->qlock);
    struct conn *list = srv->ret_head;
    srv->ret_head = NULL;
    pthread_mutex_unlock(&srv->qlock);
    int changed = 0;
    while (list) {
        struct conn *c = list;
        list = list->qnext;
        srv->n_serving--;
        changed |= c->policy_changed;
        c->policy_changed = 0;
        if (c->close_after || srv->stopping || !conn_still_allowed(srv, c)) {
            conn_unlink_and_free(srv, c);
            continue;
        }
        /* Keep pipelined bytes that followed the request just served. */
        size_t used = c->frame.total_len;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        c->continue_sent = 0;
        c->request_started_ms = 0;
        c->state = CONN_READING;
        c->deadline_ms = now_ms() + srv->cfg->soap_idle_timeout_ms;
        c->events = EPOLLIN;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
        if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            conn_unlink_and_free(srv, c);
            continue;
        }
        /* Decrypted bytes already inside the SSL never wake epoll. */
        if (c->ssl && SSL_has_pending(c->ssl))
            read_conn(srv, c);
        else
            examine_buffer(srv, c);
    }
    /* The request that changed the network policy has had its response:
     * now the listeners follow the policy. */
    if (changed)
        srv->reconfigure_due = 1;
}

static void expire_conns(struct soapserver *srv)
{
    int64_t now = now_ms();
    struct conn *c = srv->conns;
    while (c) {
        struct conn *next = c->next;
        if (c->state == CONN_LINGERING && now >= c->deadline_ms) {
            conn_unlink_and_free(srv, c);
        } else if (c->state == CONN_HANDSHAKE && now >= c->deadline_ms) {
            log_info("soap", "%s: TLS handshake timed out, closing", c->peer_text);
            conn_unlink_and_free(srv, c);
        } else if (c->state == CONN_READING && now >= c->deadline_ms) {
            if (c->request_started_ms)
                reply_status_and_close(srv, c, 408, "Request Timeout", NULL);
            else
                conn_unlink_and_free(srv, c);
        }
        c = next;
    }
}

/* Changes made elsewhere (a rollback when the confirmation window passed, a
 * request whose connection has not come back yet) are applied by the sweep;
 * a change still being answered gets half a second for its response. */
static void follow_policy(struct soapserver *srv, int64_t now)
{
    struct tlspolicy *tp = srv->dev->tlspolicy;
    if (!tp)
        return;
    int rolled_back = tlspolicy_expire(tp);
    if (tlspolicy_generation(tp) == srv->applied_generation) {
        srv->generation_seen_ms = 0;
        return;
    }
    if (!srv->generation_seen_ms)
        srv->generation_seen_ms = now;
    if (rolled_back || srv->n_serving == 0 || now - srv->generation_seen_ms >= 500)
        reconfigure(srv);
}

static void *loop_main(void *arg)
{
    struct soapserver *srv = arg;
    struct epoll_event events[64];
    int64_t last_sweep = now_ms();
    while (!srv->stopping) {
        int n = epoll_wait(srv->epfd, events, 64, 200);
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &srv->wake_fd) {
                uint64_t v;
                if (read(srv->wake_fd, &v, sizeof v) < 0) { /* nothing to do */ }
                take_returns(srv);
            } else if (p == &srv->listen_fd[0] || p == &srv->listen_fd[1]) {
                accept_all(srv, *(int *)p, 0);
            } else if (p == &srv->tls_listen_fd[0] || p == &srv->tls_listen_fd[1]) {
                accept_all(srv, *(int *)p, 1);
            } else {
                struct conn *c = p;
                if (c->state == CONN_HANDSHAKE)
                    handshake_conn(srv, c);
                else if (c->state == CONN_READING)
                    read_conn(srv, c);
                else if (c->state == CONN_LINGERING)
                    drain(srv, c);
            }
        }
        /* Policy changes free connections: only between event batches. */
        if (srv->reconfigure_due) {
            srv->reconfigure_due = 0;
            reconfigure(srv);
        }
        int64_t now = now_ms();
        if (now - last_sweep >= 100) {
            expire_conns(srv);
            follow_policy(srv, now);
            last_sweep = now;
        }
    }
    return NULL;
}

/* ---- workers ---------------------------------------------------------------- */

struct worker_io {
    struct conn *conn;
    size_t pos;
    int close_requested;
    size_t sent;
    int64_t send_deadline_ms;     /* the whole response must leave by then */
};

static int (*gsoap_fsend)(struct soap *, const char *, size_t);

/* Writes gSOAP's output through conn_write (plain or TLS) and counts it, so a
 * request never ends without a response. */
static int fsend_counted(struct soap *soap, const char *s, size_t n)
{
    struct worker_io *io = soap->data[0];
    if (!io)
        return gsoap_fsend(soap, s, n);
    io->sent += n;
    if (conn_write(io->conn, s, n, io->send_deadline_ms) != 0)
        return soap->error = SOAP_EOF;
    return SOAP_OK;
}

/* SOAP 1.2, or MTOM (multipart/related: the envelope plus binary parts,
 * as RestoreSystem sends a backup). */
static int is_soap_media_type(const char *t)
{
    return !strcmp(t, "application/soap+xml") || !strcmp(t, "text/xml") || !strcmp(t, "application/xml") ||
           !strcmp(t, "multipart/related");
}

/* The XML of a request: the body, or of an MTOM request only its root part
 * (the first), since attachments are binary and not XML. */
static void request_xml(const struct conn *c, const char **xml, size_t *len)
{
    const char *body = c->buf + c->frame.header_len;
    size_t n = c->frame.body_len;
    *xml = body;
    *len = n;
    if (strcmp(c->frame.content_type, "multipart/related") != 0 || n < 4 || memcmp(body, "--", 2) != 0)
        return;
    const char *eol = memmem(body, n, "\r\n", 2);
    if (!eol || eol - body > 200)
        return;
    char delim[208] = "\r\n";
    memcpy(delim + 2, body, (size_t)(eol - body));
    size_t dlen = 2 + (size_t)(eol - body);
    const char *headers_end = memmem(eol, n - (size_t)(eol - body), "\r\n\r\n", 4);
    if (!headers_end)
        return;
    const char *start = headers_end + 4;
    const char *end = memmem(start, n - (size_t)(start - body), delim, dlen);
    if (!end)
        return;
    *xml = start;
    *len = (size_t)(end - start);
}

static void reply_simple(struct worker_io *io, int status, const char *reason, const char *extra)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\n%s\r\n", status, reason,
                     extra ? extra : "", io->close_requested ? "Connection: close\r\n" : "");
    conn_write(io->conn, msg, (size_t)n, io->send_deadline_ms);
    io->sent += (size_t)n;
}

static size_t frecv_buffer(struct soap *soap, char *s, size_t n)
{
    struct worker_io *io = soap->data[0];
    if (!io)
        return 0;
    size_t left = io->conn->frame.total_len - io->pos;
    if (n > left)
        n = left;
    memcpy(s, io->conn->buf + io->pos, n);
    io->pos += n;
    return n;
}

/* gSOAP "closes" through here when it decides the connection ends; the loop
 * owns the socket, so only record the decision. */
static int fclose_deferred(struct soap *soap)
{
    struct worker_io *io = soap->data[0];
    if (io)
        io->close_requested = 1;
    return SOAP_OK;
}

/* GET serves the device CA certificate, without credentials (anyone may
 * fetch what they are asked to trust); everything else is 404. */
static int fget_resource(struct soap *soap)
{
    const struct onvif_request *req = onvif_request_of(soap);
    int pem = !strcmp(soap->path, "/certs/device-ca.pem"), der = !strcmp(soap->path, "/certs/device-ca.der");
    if (req && !pem && !der) {
        /* The gate already let this request in (see serve_one). */
        unsigned char *body = NULL;
        size_t blen = 0;
        const char *type = NULL;
        int status = onvif_http_resource(req->dev, soap->path, &body, &blen, &type);
        if (status != 200)
            return soap_send_empty_response(soap, status);
        soap->http_content = type;
        int rc = soap_response(soap, SOAP_FILE) || soap_send_raw(soap, (const char *)body, blen) || soap_end_send(soap);
        OPENSSL_cleanse(body, blen);
        free(body);
        return rc ? soap->error : SOAP_OK;
    }
    if (!req || !req->dev->deviceca || (!pem && !der))
        return soap_send_empty_response(soap, 404);
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = pem ? deviceca_ca_pem(req->dev->deviceca, (char **)&data, &len) : deviceca_ca_der(req->dev->deviceca, &data, &len);
    if (rc != DEVICECA_OK)
        return soap_send_empty_response(soap, 500);
    soap->http_content = pem ? "application/x-pem-file" : "application/pkix-cert";
    rc = soap_response(soap, SOAP_FILE) || soap_send_raw(soap, (const char *)data, len) || soap_end_send(soap);
    free(data);
    return rc ? soap->error : SOAP_OK;
}

/* The fault body of a 401: ONVIF clients read ter:NotAuthorized from it. */
static const char unauthorized_fault[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:ter=\"http://www.onvif.org/ver10/error\">"
    "<env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized</env:Value>"
    "</env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">Sender not Authorized</env:Text></env:Reason>"
    "</env:Fault></env:Body></env:Envelope>\n";

static void reply_challenge(struct soapserver *srv, struct worker_io *io, int stale)
{
    char challenge[1024];
    if (authn_digest_challenge(srv->dev->authn, stale, challenge, sizeof challenge) < 0)
        challenge[0] = '\0';
    char head[1536];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 401 Unauthorized\r\n%sContent-Type: application/soap+xml; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     challenge, sizeof unauthorized_fault - 1, io->close_requested ? "Connection: close\r\n" : "");
    if (conn_write(io->conn, head, (size_t)n, io->send_deadline_ms) == 0)
        conn_write(io->conn, unauthorized_fault, sizeof unauthorized_fault - 1, io->send_deadline_ms);
    io->sent += (size_t)n + sizeof unauthorized_fault - 1;
}

/* The Body element's operation under our prefixes ("tds:GetUsers"), matched
 * the way the dispatcher matches it (by namespace, whatever the prefix). */
static int operation_of(struct soap *soap, char *out, size_t outlen)
{
    static const char *const prefixes[] = { "tds", "trt", "tr2", "tas", "tev", "timg", "wsnt", "wsdd" };
    const char *colon = strchr(soap->tag, ':');
    const char *local = colon ? colon + 1 : soap->tag;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        enum access_class cls;
        if (snprintf(out, outlen, "%s:%s", prefixes[i], local) >= (int)outlen)
            return -1;
        if (accesspolicy_class_of(out, &cls) == 0 && soap_match_tag(soap, soap->tag, out) == SOAP_OK)
            return 0;
    }
    return -1;
}

/* Copies the UsernameToken of the request's wsse:Security header, if any. */
static int username_token_of(struct soap *soap, struct gate_username_token *t)
{
    memset(t, 0, sizeof *t);
    struct _wsse__UsernameToken *u = soap->header && soap->header->wsse__Security
                                         ? soap->header->wsse__Security->UsernameToken : NULL;
    if (!u)
        return 0;
    t->username = u->Username;
    if (u->Password) {
        t->password = u->Password->__item;
        t->password_type = u->Password->Type;
    }
    t->nonce = u->Nonce ? u->Nonce->__item : NULL;
    t->created = u->wsu__Created;
    return 1;
}

/* Runs the gate. Returns SOAP_OK to dispatch, SOAP_FAULT with the fault set,
 * or SOAP_STOP when the response (a 401) has been written. */
static int decide(struct soapserver *srv, struct soap *soap, struct conn *c, struct onvif_request *req,
                  struct worker_io *io, const char *operation);

static int admit(struct soapserver *srv, struct soap *soap, struct conn *c, struct onvif_request *req,
                 struct worker_io *io, char *operation, size_t operation_len)
{
    operation[0] = '\0';
    /* Fail closed: a start tag gSOAP cannot read must never reach dispatch,
     * which would still act on the tag it saw. */
    if (soap_peek_element(soap) != SOAP_OK)
        return soap->error != SOAP_OK ? soap->error : SOAP_NO_TAG;
    if (operation_of(soap, operation, operation_len) != 0)
        return onvif_sender_fault(soap, "ter:UnknownAction", NULL, "The request names an operation this device does not know");
    return decide(srv, soap, c, req, io, operation);
}

/* The gate for one request that is (or stands for) operation. Returns
 * SOAP_OK to go on, SOAP_FAULT with the fault set, or SOAP_STOP when the
 * response (401, 403) has been written. */
static int decide(struct soapserver *srv, struct soap *soap, struct conn *c, struct onvif_request *req,
                  struct worker_io *io, const char *operation)
{
    char authorization[4096];
    const char *authz = NULL;
    if (c->frame.authorization_len) {
        if (c->frame.authorization_len >= sizeof authorization) {
            reply_challenge(srv, io, 0); /* never judge a truncated credential */
            return soap->error = SOAP_STOP;
        }
        memcpy(authorization, c->buf + c->frame.authorization_off, c->frame.authorization_len);
        authorization[c->frame.authorization_len] = '\0';
        authz = authorization;
    }
    struct gate_username_token token;
    struct gate_request g = {
        .operation = operation, .authorization = authz, .authorization_count = c->frame.authorization_count,
        .method = c->frame.method, .uri = c->frame.path,
        .token = username_token_of(soap, &token) ? &token : NULL, .peer = c->peer_text, .tls = req->tls,
        .certificate_user = c->client_verified && c->cn_maps ? c->client_cn : NULL,
    };
    struct gate_policy policy = {
        .anonymous_classes = srv->cfg->anonymous_media ? ACCESS_BIT(ACCESS_READ_MEDIA) : 0,
        .first_admin_over_network = srv->cfg->first_admin_over_network,
    };
    struct gate_decision d;
    gate_decide(srv->dev->authn, srv->dev->users, &policy, &g, &d);
    if (authz)
        OPENSSL_cleanse(authorization, sizeof authorization);
    if (g.token && token.password)
        OPENSSL_cleanse((char *)token.password, strlen(token.password));
    req->principal = d.principal;
    req->first_admin_setup = d.first_admin_setup;
    switch (d.verdict) {
    case GATE_ALLOW:
        if (d.principal.user[0] && strcmp(c->logged_in, d.principal.user) != 0) {
            log_info("access", "%s: '%s' (%s) logged in with %s%s", c->peer_text, d.principal.user,
                     users_level_name(d.principal.level),
                     d.by_certificate ? "a client certificate" : authz ? "HTTP Digest" : "a UsernameToken",
                     req->tls ? " over TLS" : "");
            snprintf(c->logged_in, sizeof c->logged_in, "%s", d.principal.user);
        }
        /* An administrator who got in over a changed network policy
         * confirms it (see tlspolicy.h: safe apply). */
        if (d.principal.level == USER_LEVEL_ADMINISTRATOR && d.principal.user[0] && srv->dev->tlspolicy &&
            tlspolicy_confirm(srv->dev->tlspolicy, c->generation, c->ssl != NULL))
            log_notice("security", "%s: network settings change confirmed by '%s'", c->peer_text, d.principal.user);
        return SOAP_OK;
    case GATE_FORBIDDEN:
        log_debug("auth", "%s: %s: 403 (%s)", c->peer_text, operation, d.reason ? d.reason : "");
        reply_simple(io, 403, "Forbidden", NULL);
        return soap->error = SOAP_STOP;
    case GATE_CHALLENGE:
        log_debug("auth", "%s: %s: 401 (%s)", c->peer_text, operation, d.reason ? d.reason : "");
        reply_challenge(srv, io, d.stale);
        return soap->error = SOAP_STOP;
    case GATE_UNKNOWN_OPERATION:
        return onvif_sender_fault(soap, "ter:UnknownAction", NULL, "The request names an operation this device does not know");
    case GATE_NOT_AUTHORIZED:
        break;
    }
    log_debug("auth", "%s: %s: not authorized (%s)", c->peer_text, operation, d.reason ? d.reason : "");
    return onvif_sender_fault(soap, "ter:NotAuthorized", NULL, "Sender not Authorized");
}

/* An empty body, plain or chunked (first chunk of size zero). */
static int body_is_empty(const struct conn *c)
{
    if (c->frame.body_len == 0)
        return 1;
    if (!c->frame.chunked)
        return 0;
    const char *p = c->buf + c->frame.header_len, *end = p + c->frame.body_len;
    if (p >= end || *p != '0')
        return 0;
    while (p < end && *p == '0')
        p++;
    return p < end && (*p == '\r' || *p == ';');
}

static int check_request_xml(const struct conn *c, int max_depth)
{
    const char *xml;
    size_t len;
    request_xml(c, &xml, &len);
    return xmlguard_check(xml, len, max_depth);
}

/* The Access log names every operation that changed the configuration. */
static void log_change(const struct onvif_request *req, const char *operation, int soap_error)
{
    enum access_class cls;
    if (soap_error != SOAP_OK || !operation[0] || accesspolicy_class_of(operation, &cls) != 0)
        return;
    if (cls == ACCESS_WRITE_SYSTEM || cls == ACCESS_UNRECOVERABLE || cls == ACCESS_ACTUATE)
        log_notice("access", "%s: '%s' ran %s", req->peer, req->first_admin_setup ? "(first setup)" : req->principal.user,
                   operation);
}

/* An upload (StartSystemRestore, StartFirmwareUpgrade): a raw body POSTed to
 * the URI the operation gave, guarded like that operation. */
static void serve_upload(struct soapserver *srv, struct soap *soap, struct conn *c, struct onvif_request *req,
                         struct worker_io *io)
{
    int rc = decide(srv, soap, c, req, io, onvif_http_upload_operation(c->frame.path));
    if (rc == SOAP_STOP)
        return;
    if (rc != SOAP_OK) {
        reply_simple(io, 403, "Forbidden", NULL);
        return;
    }
    if (c->frame.chunked) {
        reply_simple(io, 411, "Length Required", NULL);
        return;
    }
    const char *reason = NULL;
    int status = onvif_http_upload(req, c->frame.path, (const unsigned char *)c->buf + c->frame.header_len,
                                   c->frame.body_len, &reason);
    char extra[160] = "";
    if (reason)
        snprintf(extra, sizeof extra, "X-Reason: %s\r\n", reason);
    reply_simple(io, status, status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 409 ? "Conflict"
                                                                      : "Internal Server Error",
                 extra[0] ? extra : NULL);
}

static void serve_one(struct soapserver *srv, struct soap *soap, struct conn *c)
{
    /* The filter may have changed since this keep-alive connection was
     * accepted: every request is checked again. */
    if (srv->dev->ipfilter && !ipfilter_allows(srv->dev->ipfilter, (struct sockaddr *)&c->peer)) {
        log_info("soap", "%s: request refused by the IP address filter, closing", c->peer_text);
        c->close_after = 1;
        return;
    }
    struct onvif_request req = { .dev = srv->dev, .local_port = c->local_port, .tls = c->ssl != NULL };
    snprintf(req.local_host, sizeof req.local_host, "%s", c->local_host);
    snprintf(req.peer, sizeof req.peer, "%s", c->peer_text);
    req.peer_addr = c->peer;
    req.principal.level = USER_LEVEL_ANONYMOUS;
    struct worker_io io = { .conn = c, .pos = 0, .send_deadline_ms = now_ms() + srv->cfg->soap_send_timeout_ms };

    soap->user = &req;
    soap->data[0] = &io;
    soap->socket = c->fd;
    soap->bufidx = 0;
    soap->buflen = 0;
    soap->keep_alive = 1;
    c->requests++;
    int last = c->requests >= srv->cfg->soap_max_keep_alive;
    if (last) {
        soap_clr_imode(soap, SOAP_IO_KEEPALIVE);
        soap_clr_omode(soap, SOAP_IO_KEEPALIVE);
    } else {
        soap_set_imode(soap, SOAP_IO_KEEPALIVE);
        soap_set_omode(soap, SOAP_IO_KEEPALIVE);
    }
    if (c->peer.ss_family == AF_INET)
        soap->ip = ntohl(((struct sockaddr_in *)&c->peer)->sin_addr.s_addr);
    snprintf(soap->host, sizeof soap->host, "%s", c->peer_text);

    io.close_requested = c->frame.connection_close || (!c->frame.http11 && !c->frame.connection_keep_alive);
    int guard;
    if (strcmp(c->frame.method, "POST") != 0 && strcmp(c->frame.method, "GET") != 0) {
        reply_simple(&io, 405, "Method Not Allowed", "Allow: GET, POST\r\n");
    } else if (strcmp(c->frame.method, "POST") == 0 && onvif_http_upload_operation(c->frame.path)) {
        serve_upload(srv, soap, c, &req, &io);
    } else if (strcmp(c->frame.method, "POST") == 0 && !onvif_service_by_path(c->frame.path)) {
        reply_simple(&io, 404, "Not Found", NULL);
    } else if (strcmp(c->frame.method, "POST") == 0 && c->frame.body_len > 0 && !is_soap_media_type(c->frame.content_type)) {
        reply_simple(&io, 415, "Unsupported Media Type", NULL);
    } else if (strcmp(c->frame.method, "POST") == 0 &&
               (guard = check_request_xml(c, srv->cfg->soap_max_xml_depth)) != XMLGUARD_OK) {
        soap->version = 2;
        io.close_requested = 1;
        soap->keep_alive = 0;
        onvif_sender_fault(soap, "ter:WellFormed", NULL,
                           guard == XMLGUARD_DTD ? "Document type declarations are not allowed in SOAP messages"
                                                 : "XML nesting is deeper than this device accepts");
        soap_send_fault(soap);
        soap_destroy(soap);
        soap_end(soap);
    } else if (strcmp(c->frame.method, "POST") == 0 && !c->frame.authorization_len && body_is_empty(c)) {
        /* curl --digest and others probe with an empty POST first. */
        reply_challenge(srv, &io, 0);
    } else {
        soap->error = SOAP_OK;
        int is_post = strcmp(c->frame.method, "POST") == 0;
        const char *resource_operation = is_post ? NULL : onvif_http_resource_operation(c->frame.path);
        unsigned long policy_before = srv->dev->tlspolicy ? tlspolicy_generation(srv->dev->tlspolicy) : 0;
        char operation[128] = "";
        int gate_rc = resource_operation ? decide(srv, soap, c, &req, &io, resource_operation) : SOAP_OK;
        if (gate_rc == SOAP_FAULT) {
            /* A file, not a SOAP call: a plain refusal. */
            reply_simple(&io, 403, "Forbidden", NULL);
            soap->error = SOAP_STOP;
        }
        if (gate_rc != SOAP_OK || soap_begin_serve(soap) != SOAP_OK ||
            (is_post && admit(srv, soap, c, &req, &io, operation, sizeof operation) != SOAP_OK) ||
            soap_serve_request(soap) != SOAP_OK) {
            log_debug("soap", "%s: request failed with gSOAP error %d", c->peer_text, soap->error);
            if (soap->error == SOAP_POST) {
                /* XML, but not a SOAP 1.2 envelope: ONVIF speaks SOAP 1.2 only. */
                soap->version = 2;
                soap->keep_alive = 0;
                if (memmem(c->buf + c->frame.header_len, c->frame.body_len, "schemas.xmlsoap.org/soap/envelope", 33))
                    soap->error = SOAP_VERSIONMISMATCH;
                else
                    soap->error = SOAP_SYNTAX_ERROR;
            }
            if (soap->error < SOAP_STOP) {
                onvif_fault_from_soap_error(soap);
                soap_send_fault(soap);
            }
        }
        if (!soap->keep_alive)
            io.close_requested = 1;
        if (srv->dev->tlspolicy && tlspolicy_generation(srv->dev->tlspolicy) != policy_before)
            c->policy_changed = 1;
        log_change(&req, operation, soap->error);
        soap_destroy(soap);
        soap_end(soap);
        if (io.sent == 0) {
            /* gSOAP stopped without answering (e.g. a form post): say so. */
            io.close_requested = 1;
            reply_simple(&io, 400, "Bad Request", NULL);
        }
    }
    if (soap->error == SOAP_EOF || soap->error == SOAP_TCP_ERROR || c->tls_dead)
        io.close_requested = 1;
    c->close_after = io.close_requested || last;
    /* Requests carry credentials (Authorization, UsernameToken, CreateUsers
     * passwords): wipe the consumed bytes and gSOAP's copy of them. */
    OPENSSL_cleanse(c->buf, c->frame.total_len);
    OPENSSL_cleanse(soap->buf, soap->buflen < sizeof soap->buf ? soap->buflen : sizeof soap->buf);
    soap->data[0] = NULL;
    soap->user = NULL;
    soap->socket = SOAP_INVALID_SOCKET;
}

/* One worker; an extra one leaves after EXTRA_WORKER_IDLE_S without work. */
static void *run_worker(struct soapserver *srv, int extra)
{
    struct soap *soap = soap_copy(srv->master);
    if (!soap)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&srv->qlock);
        srv->idle_workers++;
        int timed_out = 0;
        while (!srv->work_head && !srv->stopping && !timed_out) {
            if (!extra) {
                pthread_cond_wait(&srv->qcond, &srv->qlock);
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += EXTRA_WORKER_IDLE_S;
            timed_out = pthread_cond_timedwait(&srv->qcond, &srv->qlock, &until) == ETIMEDOUT && !srv->work_head;
        }
        srv->idle_workers--;
        if (srv->stopping || timed_out) {
            pthread_mutex_unlock(&srv->qlock);
            break;
        }
        struct conn *c = srv->work_head;
        srv->work_head = c->qnext;
        if (!srv->work_head)
            srv->work_tail = NULL;
        c->state = CONN_SERVING;
        pthread_mutex_unlock(&srv->qlock);

        serve_one(srv, soap, c);

        pthread_mutex_lock(&srv->qlock);
        c->qnext = srv->ret_head;
        srv->ret_head = c;
        pthread_mutex_unlock(&srv->qlock);
        uint64_t one = 1;
        if (write(srv->wake_fd, &one, sizeof one) < 0) { /* the loop sweeps anyway */ }
    }
    soap_destroy(soap);
    soap_end(soap);
    soap_free(soap);
    return NULL;
}

static void *worker_main(void *arg)
{
    return run_worker(arg, 0);
}

static void *extra_worker_main(void *arg)
{
    struct soapserver *srv = arg;
    run_worker(srv, 1);
    pthread_mutex_lock(&srv->qlock);
    srv->n_extra--;
    pthread_cond_broadcast(&srv->extra_gone);
    pthread_mutex_unlock(&srv->qlock);
    return NULL;
}

/* qlock held. */
static void start_extra_worker(struct soapserver *srv)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    if (pthread_create(&t, &attr, extra_worker_main, srv) == 0)
        srv->n_extra++;
    pthread_attr_destroy(&attr);
}

static struct soap *make_master(const struct opennvt_config *cfg)
{
    struct soap *soap = soap_new1(SOAP_C_UTFSTRING | SOAP_IO_KEEPALIVE);
    if (!soap)
        return NULL;
    soap_set_namespaces(soap, namespaces);
    soap->frecv = frecv_buffer;
    gsoap_fsend = soap->fsend;
    soap->fsend = fsend_counted;
    soap->fclose = fclose_deferred;
    soap->fget = fget_resource;
    soap->recv_maxlength = (ULONG64)cfg->soap_max_request_bytes;
    soap->maxlevel = (unsigned int)cfg->soap_max_xml_depth;
    soap->maxoccurs = (size_t)cfg->soap_max_xml_occurs;
    soap->send_timeout = -(cfg->soap_send_timeout_ms * 1000);
    soap->recv_timeout = 0; /* requests are read from memory; the loop enforces the deadline */
    soap->transfer_timeout = (cfg->soap_send_timeout_ms + 999) / 1000;
    soap->max_keep_alive = 0; /* counted per connection by the loop */
    return soap;
}

/* ---- TLS ------------------------------------------------------------------------ */

/* The certificate is chosen per handshake, not fixed in the SSL_CTX: an
 * assigned certification path can be replaced, and the device CA re-issues
 * its server certificate when the addresses change; new handshakes must
 * present the current one at once while established connections keep
 * theirs. So one SSL_CTX lives as long as the server and this callback loads
 * the current identity into each SSL: the assigned paths (one RSA and one EC
 * at most; OpenSSL picks what the client supports), else the device CA's. */
static int tls_cert_cb(SSL *ssl, void *arg)
{
    struct soapserver *srv = arg;
    struct tlspolicy_identity ids[TLSPOLICY_MAX_SERVER_PATHS] = { 0 };
    size_t n = 0;
    if (srv->dev->tlspolicy && tlspolicy_server_identities(srv->dev->tlspolicy, ids, &n) != TLSPOLICY_OK)
        n = 0;
    if (n == 0) {
        if (!srv->dev->deviceca ||
            deviceca_server_identity(srv->dev->deviceca, &ids[0].key, &ids[0].cert, &ids[0].chain) != DEVICECA_OK ||
            !ids[0].key || !ids[0].cert) {
            log_err("soap", "TLS handshake: no server certificate is available");
            EVP_PKEY_free(ids[0].key);
            X509_free(ids[0].cert);
            sk_X509_pop_free(ids[0].chain, X509_free);
            return 0;
        }
        n = 1;
    }
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = SSL_use_certificate(ssl, ids[i].cert) == 1 && SSL_use_PrivateKey(ssl, ids[i].key) == 1 &&
             SSL_set1_chain(ssl, ids[i].chain) == 1;
    tlspolicy_identities_free(ids, n);
    if (!ok) {
        log_err("soap", "TLS handshake: cannot use the server certificate");
        ERR_clear_error();
    }
    return ok;
}

/* Client certificates are judged by the policy (its trust anchors, the
 * keystore's certificates and CRLs), not by an OpenSSL trust store. */
static int verify_client_cb(X509_STORE_CTX *xs, void *arg)
{
    struct soapserver *srv = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    const char *why = "no validation policy";
    if (c && srv->dev->tlspolicy &&
        tlspolicy_verify_client(srv->dev->tlspolicy, X509_STORE_CTX_get0_cert(xs), X509_STORE_CTX_get0_untrusted(xs),
                                c->client_cn, sizeof c->client_cn, &why) == TLSPOLICY_OK) {
        c->client_verified = 1;
        c->verified_policy = srv->applied_generation;
        c->verified_keystore = keystore_generation(srv->dev->keystore);
        return 1;
    }
    log_info("soap", "%s: client certificate refused: %s", c ? c->peer_text : "?", why);
    X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
    return 0;
}

/* TLS 1.2 and 1.3 at most; for 1.2 only ECDHE with AEAD ciphers; no
 * compression, no renegotiation; server-side session resumption. The
 * versions and client authentication in force are set per connection. */
static SSL_CTX *make_tls_ctx(struct soapserver *srv)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    static const unsigned char sid_ctx[] = "opennvt-soap";
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 4096);
    SSL_CTX_set_timeout(ctx, 300);
    SSL_CTX_set_cert_cb(ctx, tls_cert_cb, srv);
    SSL_CTX_set_cert_verify_callback(ctx, verify_client_cb, srv);
    return ctx;
}

/* The applied policy for one new TLS connection. Sessions are resumable only
 * under the policy generation they were made in: a resumed session skips
 * client verification, so a changed policy must not be bypassed by one. */
static int apply_tls_settings(struct soapserver *srv, SSL *ssl)
{
    unsigned v = srv->applied.tls_versions ? srv->applied.tls_versions : TLSPOLICY_TLS_ALL;
    if (SSL_set_min_proto_version(ssl, (v & TLSPOLICY_TLS12) ? TLS1_2_VERSION : TLS1_3_VERSION) != 1 ||
        SSL_set_max_proto_version(ssl, (v & TLSPOLICY_TLS13) ? TLS1_3_VERSION : TLS1_2_VERSION) != 1)
        return -1;
    char sid[48];
    int n = snprintf(sid, sizeof sid, "opennvt-soap-%lu", srv->applied_generation);
    if (srv->applied.client_auth_required) {
        /* No resumption while client certificates are required: a resumed
         * session carries the leaf but not the chain the client sent, so it
         * could not be validated again. A context of its own per connection
         * makes every lookup a miss; no tickets are issued. */
        static unsigned long unique;
        n = snprintf(sid, sizeof sid, "opennvt-mtls-%lu-%lu", srv->applied_generation, ++unique);
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
        SSL_set_num_tickets(ssl, 0);
        SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (SSL_set_session_id_context(ssl, (const unsigned char *)sid, (unsigned)n) != 1)
        return -1;
    return 0;
}

/* Whether a connection may hand a request to the workers under the applied
 * policy: its protocol is still served, and for TLS its version is still
 * enabled, CnMapsToUser is what it was at accept, and when client
 * certificates are required its certificate was verified under the current
 * policy and keystore (a CRL uploaded or a policy replaced since is checked
 * again here). A new server certificate alone never ends a connection.
 * Requests complete before a change are served under the old policy. */
static int conn_still_allowed(struct soapserver *srv, struct conn *c)
{
    if (!c->ssl)
        return srv->n_listen > 0;
    if (srv->n_tls_listen == 0 || c->cn_maps != srv->applied.cn_maps_to_user)
        return 0;
    unsigned v = srv->applied.tls_versions ? srv->applied.tls_versions : TLSPOLICY_TLS_ALL;
    int version = SSL_version(c->ssl);
    if (!((version == TLS1_2_VERSION && (v & TLSPOLICY_TLS12)) || (version == TLS1_3_VERSION && (v & TLSPOLICY_TLS13))))
        return 0;
    if (!srv->applied.client_auth_required)
        return 1;
    if (!c->client_verified)
        return 0;
    unsigned long ks_gen = keystore_generation(srv->dev->keystore);
    if (c->verified_policy == srv->applied_generation && c->verified_keystore == ks_gen)
        return 1;
    const char *why = "no client certificate";
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    if (leaf && tlspolicy_verify_client(srv->dev->tlspolicy, leaf, SSL_get_peer_cert_chain(c->ssl), c->client_cn,
                                        sizeof c->client_cn, &why) == TLSPOLICY_OK) {
        c->verified_policy = srv->applied_generation;
        c->verified_keystore = ks_gen;
        return 1;
    }
    log_info("soap", "%s: client certificate no longer accepted: %s", c->peer_text, why);
    c->client_verified = 0;
    return 0;
}

static void close_listeners(struct soapserver *srv, int tls)
{
    int *fds = tls ? srv->tls_listen_fd : srv->listen_fd;
    int *n = tls ? &srv->n_tls_listen : &srv->n_listen;
    for (int i = 0; i < *n; i++) {
        if (srv->epfd >= 0)
            epoll_ctl(srv->epfd, EPOLL_CTL_DEL, fds[i], NULL);
        close(fds[i]);
    }
    *n = 0;
    __atomic_store_n(tls ? &srv->https_port : &srv->port, 0, __ATOMIC_RELAXED);
}

/* Makes the HTTP (tls 0) or HTTPS listeners serve port (0: keep the current
 * one, or a free one) or nothing. New sockets are bound before the old ones
 * close, so a port that cannot be bound changes nothing. */
static int set_listeners(struct soapserver *srv, int tls, int enabled, int port)
{
    int *fds = tls ? srv->tls_listen_fd : srv->listen_fd;
    int *n = tls ? &srv->n_tls_listen : &srv->n_listen;
    int *bound_now = tls ? &srv->https_port : &srv->port;
    if (!enabled) {
        close_listeners(srv, tls);
        return 0;
    }
    if (*n > 0 && (port == 0 || port == *bound_now))
        return 0;
    if (tls && !srv->tls_ctx) {
        srv->tls_ctx = make_tls_ctx(srv);
        if (!srv->tls_ctx) {
            log_err("soap", "HTTPS is not started: cannot set up TLS");
            ERR_clear_error();
            return -EINVAL;
        }
    }
    int fresh[MAX_LISTENERS], n_fresh = 0, bound = 0;
    int rc = open_listeners(srv, port, fresh, &n_fresh, &bound);
    if (rc != 0) {
        for (int i = 0; i < n_fresh; i++)
            close(fresh[i]);
        return rc;
    }
    close_listeners(srv, tls);
    for (int i = 0; i < n_fresh; i++) {
        fds[i] = fresh[i];
        if (srv->epfd >= 0) {
            struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &fds[i] };
            epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fds[i], &lev);
        }
    }
    *n = n_fresh;
    __atomic_store_n(bound_now, bound, __ATOMIC_RELAXED);
    return 0;
}

/* What the listeners should follow: the policy, or without one the config. */
static void wanted_policy(struct soapserver *srv, struct tlspolicy_state *st)
{
    if (srv->dev->tlspolicy) {
        tlspolicy_get(srv->dev->tlspolicy, st);
        return;
    }
    memset(st, 0, sizeof *st);
    st->protocols.http_enabled = 1;
    st->protocols.http_port = srv->cfg->http_port;
    st->protocols.https_enabled = srv->cfg->https_enabled;
    st->protocols.https_port = srv->cfg->https_port;
    st->tls_versions = TLSPOLICY_TLS_ALL;
}

static void log_listeners(struct soapserver *srv)
{
    const char *where = srv->cfg->bind[0] ? srv->cfg->bind : "all addresses";
    if (srv->port)
        log_notice("soap", "HTTP listening on %s port %d", where, srv->port);
    else
        log_notice("soap", "HTTP is off");
    if (srv->https_port) {
        char versions[16];
        tlspolicy_format_versions(srv->applied.tls_versions, versions, sizeof versions);
        log_notice("soap", "HTTPS listening on %s port %d (TLS %s, %s certificate%s)", where, srv->https_port, versions,
                   srv->applied.n_server_paths ? "assigned" : "device CA",
                   srv->applied.client_auth_required ? ", client certificates required" : "");
    } else {
        log_notice("soap", "HTTPS is off");
    }
}

/* Loop thread: makes listeners and kept-alive connections follow the policy.
 * A port that cannot be bound rolls the change back (and logs why). */
static void reconfigure(struct soapserver *srv)
{
    struct tlspolicy *tp = srv->dev->tlspolicy;
    if (!tp)
        return;
    for (int attempt = 0; attempt < 2; attempt++) {
        unsigned long gen = tlspolicy_generation(tp);
        if (gen == srv->applied_generation && attempt == 0)
            return;
        struct tlspolicy_state st;
        tlspolicy_get(tp, &st);
        char why[128] = "";
        if (set_listeners(srv, 0, st.protocols.http_enabled, st.protocols.http_port) != 0)
            snprintf(why, sizeof why, "cannot listen on HTTP port %d", st.protocols.http_port);
        else if (set_listeners(srv, 1, st.protocols.https_enabled, st.protocols.https_port) != 0)
            snprintf(why, sizeof why, "cannot listen on HTTPS port %d", st.protocols.https_port);
        if (why[0] && attempt == 0 && tlspolicy_rollback(tp, why) > 0)
            continue;
        if (why[0])
            log_err("soap", "network settings only partly applied: %s", why);
        srv->applied = st;
        srv->applied_generation = gen;
        srv->generation_seen_ms = 0;
        break;
    }
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_READING && !conn_still_allowed(srv, c))
            conn_unlink_and_free(srv, c);
    }
    log_listeners(srv);
    if (srv->dev->ports_changed)
        srv->dev->ports_changed(srv->dev->ports_arg);
}

/* The first listeners. HTTP that cannot listen is fatal; HTTPS that cannot
 * start (no certificate, port taken) leaves the device on HTTP, logged;
 * neither running is fatal. */
static int start_listeners(struct soapserver *srv)
{
    wanted_policy(srv, &srv->applied);
    srv->applied_generation = srv->dev->tlspolicy ? tlspolicy_generation(srv->dev->tlspolicy) : 0;
    const struct tlspolicy_protocols *p = &srv->applied.protocols;
    int rc = set_listeners(srv, 0, p->http_enabled, p->http_port);
    if (rc != 0)
        return rc;
    if (p->https_enabled) {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *chain = NULL;
        int have = srv->dev->deviceca && deviceca_server_identity(srv->dev->deviceca, &key, &cert, &chain) == DEVICECA_OK && key && cert;
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(chain, X509_free);
        if (!have)
            log_err("soap", "HTTPS is not started: no server certificate is available");
        else if (set_listeners(srv, 1, 1, p->https_port) != 0)
            log_err("soap", "HTTPS is not started: cannot listen on port %d", p->https_port);
    }
    if (srv->n_listen == 0 && srv->n_tls_listen == 0) {
        log_err("soap", "neither HTTP nor HTTPS is running");
        return -EADDRNOTAVAIL;
    }
    return 0;
}

int soapserver_start(struct soapserver **out, const struct opennvt_config *cfg, struct onvif_device *dev)
{
    *out = NULL;
    struct soapserver *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->cfg = cfg;
    srv->dev = dev;
    srv->epfd = -1;
    srv->wake_fd = -1;
    pthread_mutex_init(&srv->qlock, NULL);
    pthread_cond_init(&srv->qcond, NULL);
    pthread_cond_init(&srv->extra_gone, NULL);
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    srv->master = make_master(cfg);
    int rc = 0;
    if (srv->epfd < 0 || srv->wake_fd < 0 || !srv->master) {
        rc = -ENOMEM;
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->wake_fd };
    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->wake_fd, &ev);
    rc = start_listeners(srv);
    if (rc != 0)
        goto fail;
    srv->workers = calloc((size_t)cfg->soap_workers, sizeof *srv->workers);
    if (!srv->workers) {
        rc = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < cfg->soap_workers; i++) {
        if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0)
            break;
        srv->n_workers++;
    }
    if (srv->n_workers == 0 || pthread_create(&srv->loop_thread, NULL, loop_main, srv) != 0) {
        rc = -EAGAIN;
        srv->stopping = 1;
        pthread_cond_broadcast(&srv->qcond);
        for (int i = 0; i < srv->n_workers; i++)
            pthread_join(srv->workers[i], NULL);
        srv->n_workers = 0;
        goto fail;
    }
    log_notice("soap", "%d workers", srv->n_workers);
    log_listeners(srv);
    *out = srv;
    return 0;
fail:
    for (int i = 0; i < srv->n_listen; i++)
        close(srv->listen_fd[i]);
    for (int i = 0; i < srv->n_tls_listen; i++)
        close(srv->tls_listen_fd[i]);
    SSL_CTX_free(srv->tls_ctx);
    if (srv->epfd >= 0)
        close(srv->epfd);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    if (srv->master)
        soap_free(srv->master);
    free(srv->workers);
    free(srv);
    return rc;
}

/* The bound ports are read by workers while the loop thread moves them. */
int soapserver_port(const struct soapserver *srv)
{
    return __atomic_load_n(&srv->port, __ATOMIC_RELAXED);
}

int soapserver_https_port(const struct soapserver *srv)
{
    return srv ? __atomic_load_n(&srv->https_port, __ATOMIC_RELAXED) : 0;
}

void soapserver_stop(struct soapserver *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->qlock);
    srv->stopping = 1;
    pthread_cond_broadcast(&srv->qcond);
    pthread_mutex_unlock(&srv->qlock);
    uint64_t one = 1;
    if (write(srv->wake_fd, &one, sizeof one) < 0) { /* loop wakes on its timeout */ }
    pthread_join(srv->loop_thread, NULL);
    for (int i = 0; i < srv->n_workers; i++)
        pthread_join(srv->workers[i], NULL);
    pthread_mutex_lock(&srv->qlock);
    while (srv->n_extra > 0)
        pthread_cond_wait(&srv->extra_gone, &srv->qlock);
    pthread_mutex_unlock(&srv->qlock);
    /* Workers are gone: every connection is back in the loop's list or queued. */
    pthread_mutex_lock(&srv->qlock);
    srv->work_head = srv->work_tail = NULL;
    srv->ret_head = NULL;
    pthread_mutex_unlock(&srv->qlock);
    while (srv->conns)
        conn_unlink_and_free(srv, srv->conns);
    for (int i = 0; i < srv->n_listen; i++)
        close(srv->listen_fd[i]);
    for (int i = 0; i < srv->n_tls_listen; i++)
        close(srv->tls_listen_fd[i]);
    SSL_CTX_free(srv->tls_ctx);
    close(srv->epfd);
    close(srv->wake_fd);
    soap_free(srv->master);
    free(srv->workers);
    pthread_mutex_destroy(&srv->qlock);
    pthread_cond_destroy(&srv->qcond);
    pthread_cond_destroy(&srv->extra_gone);
    free(srv);
}

int soapserver_port_available(struct soapserver *srv, int port)
{
    if (!srv || port < 1 || port > 65535)
        return 0;
    if (port == soapserver_port(srv) || port == soapserver_https_port(srv))
        return 1;
    int fds[MAX_LISTENERS], n = 0, bound = 0;
    int rc = open_listeners(srv, port, fds, &n, &bound);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return rc == 0;
}
