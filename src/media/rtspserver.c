/* The RTSP server: one epoll loop thread ("opennvt-rtsp") owns every
 * connection, session and stream group. Encoder threads only drop encoded
 * pictures (media_au references) into a group's inbox and wake the loop;
 * the loop caches the current GOP, queues each picture by reference on
 * every playing session and sends: TCP with writev straight from the shared
 * packet buffer, UDP and multicast with sendmmsg batches. */
#include "opennvt/rtspserver.h"
#include "opennvt/accesspolicy.h"
#include "opennvt/authn.h"
#include "opennvt/gate.h"
#include "opennvt/ipfilter.h"
#include "opennvt/log.h"
#include "opennvt/mediacfg.h"
#include "opennvt/netlisten.h"
#include "opennvt/rtp.h"
#include "opennvt/rtsp_msg.h"
#include "opennvt/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CONN_INBUF (RTSP_MAX_REQUEST + RTSP_MAX_BODY)
#define CONN_OUTBUF_MAX (64 * 1024)      /* queued responses and RTCP of one connection */
#define SESSION_ID_HEX 16
#define SESSION_QUEUE 512                /* pictures queued per session (a power of two) */
#define GOP_CACHE_MAX 512                /* pictures kept from the latest keyframe */
#define GOP_CACHE_BYTES (16u << 20)
#define INBOX_MAX 64
#define UDP_BATCH 512                    /* datagrams (or GSO runs) per sendmmsg */
#define UDP_IOV_POOL 4096                /* packets per sendmmsg */
#define GSO_MAX_SEGMENTS 64              /* the kernel's UDP_MAX_SEGMENTS */
#define GSO_MAX_BYTES 65000
#define UDP_CATCHUP_AUS 4                /* cached pictures a new UDP viewer gets per new picture */
#define TCP_IOV_MAX 512
#define RTCP_INTERVAL_MS 5000
#define REQUEST_IDLE_MS 30000            /* a connection without a session must send a request this often */
#define PARTIAL_REQUEST_MS 10000         /* a started request must complete within this */
#define TICK_MS 250
#define TRACK_CONTROL "track1"
#define SERVER_NAME "OpenNVT"

enum conn_kind { CONN_RTSP, CONN_TUNNEL_GET, CONN_TUNNEL_POST };

struct session;
struct group;

struct conn {
    int fd;
    enum conn_kind kind;
    struct sockaddr_storage peer, local;
    socklen_t peer_len, local_len;
    char peer_text[64];
    char cookie[128];                    /* HTTP tunnel x-sessioncookie */
    struct conn *tunnel_get;             /* POST half: the GET half it feeds */
    char in[CONN_INBUF];
    size_t in_len;
    int64_t partial_since_ms;            /* first byte of an incomplete request */
    int64_t last_request_ms;
    unsigned char b64_pending[4];        /* POST half: base64 characters not yet decoded */
    int n_b64_pending;
    uint8_t *out;                        /* responses, RTCP: written between pictures */
    size_t out_len, out_off, out_cap;
    int want_out;                        /* EPOLLOUT armed */
    int closing;                         /* close once out is written */
    struct session *session;             /* the session whose RTP goes on this connection (TCP, tunnel) */
    struct media_au *tail;               /* a picture half on the wire when its session ended */
    size_t tail_off;
    int tail_ch;
    size_t skip;                         /* bytes of a client's interleaved frame still to discard */
    int64_t last_progress_ms;            /* last successful write with data pending */
    struct conn *prev, *next;
};

struct session {
    char id[SESSION_ID_HEX + 1];
    struct rtspserver *srv;
    struct conn *ctl;                    /* connection that set it up (UDP: may go away) */
    struct conn *data;                   /* TCP / tunnel: where RTP goes */
    struct group *group;
    char profile[MEDIA_TOKEN_MAX + 1];
    enum rtsp_lower lower;
    int playing;
    int timeout_s;
    struct sockaddr_storage rtp_peer, rtcp_peer;
    socklen_t peer_len;
    int udp_family;
    int ch_rtp, ch_rtcp;
    struct media_au *q[SESSION_QUEUE];
    unsigned q_head, q_n;
    size_t head_off;                     /* bytes of q[head] already written (TCP) */
    size_t q_bytes;
    int wait_keyframe;
    int64_t last_activity_ms, next_rtcp_ms;
    uint32_t packets, octets, last_rtp_ts;
    int64_t last_capture_us;
    int have_sent;
    struct session *group_next;
    struct session *prev, *next;
};

struct group {
    struct rtspserver *srv;
    char vec[MEDIA_TOKEN_MAX + 1];
    struct stream_sub *sub;
    pthread_mutex_t inbox_lock;
    struct media_au *inbox[INBOX_MAX];
    int n_inbox, inbox_lost;
    struct media_au *gop[GOP_CACHE_MAX];
    int n_gop;
    size_t gop_bytes;
    struct session *sessions;
    int n_sessions;
    /* Multicast: sessions playing it plus StartMulticastStreaming. */
    int mc_sessions, mc_started;
    int mc_fd;
    struct sockaddr_storage mc_rtp, mc_rtcp;
    socklen_t mc_len;
    uint32_t ssrc;                       /* from the latest picture's RTP header */
    uint8_t payload_type;                /* likewise; a change ends the sessions */
    uint32_t mc_packets, mc_octets, mc_last_ts;
    int64_t mc_last_capture_us, mc_next_rtcp_ms;
    struct group *next;
};

struct udp_pair {
    int family;
    int rtp_fd, rtcp_fd;
    int rtp_port;
};

enum command_op { CMD_NONE, CMD_START_MULTICAST, CMD_STOP_MULTICAST };

struct adopted {
    int fd;
    size_t len;
    struct adopted *next;
    char data[];
};

struct rtspserver {
    struct rtspserver_settings s;
    char bind[64], multicast_if[32];
    struct rtspserver_deps d;
    int listen_fd, port;
    int epfd, wake_fd;
    pthread_t thread;
    atomic_int stop;

    struct conn *conns;
    int n_conns;
    struct session *sessions;
    int n_sessions;
    struct group *groups;
    struct udp_pair udp[2];              /* [0] IPv4, [1] IPv6; fds -1 until a UDP viewer comes */

    /* StartMulticastStreaming from the SOAP threads, run on the loop. */
    pthread_mutex_t cmd_lock;
    pthread_cond_t cmd_done;
    enum command_op cmd;
    char cmd_profile[MEDIA_TOKEN_MAX + 1];
    int cmd_result, cmd_seq, cmd_done_seq;

    /* Connections handed over by the SOAP listener (RTSP over HTTP on its port). */
    struct adopted *adopt_head;

    atomic_ullong packets_sent, keyframe_skips;
    atomic_int st_connections, st_sessions, st_playing;

    /* Send scratch (loop thread only). */
    struct mmsghdr mm[UDP_BATCH];
    struct iovec mm_iov[UDP_IOV_POOL];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(uint16_t))];
    } mm_ctl[UDP_BATCH];
    unsigned mm_packets[UDP_BATCH];      /* packets each message carries */
    int n_iov;
    int gso;                             /* UDP segmentation offload works here */
    struct iovec tcp_iov[TCP_IOV_MAX];
    uint8_t tcp_hdr[TCP_IOV_MAX][RTP_INTERLEAVED_LEN];
    int n_mm;
    int mm_fd;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void wake_loop(struct rtspserver *r)
{
    uint64_t one = 1;
    ssize_t n = write(r->wake_fd, &one, sizeof one);
    (void)n;
}

static void sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, sizeof buf);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, sizeof buf);
    const char *p = strncmp(buf, "::ffff:", 7) == 0 && strchr(buf, '.') ? buf + 7 : buf;
    snprintf(out, outlen, "%s", p);
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void sockaddr_set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* ---- connection output ----------------------------------------------------------------------------------- */

static void epoll_mod(struct rtspserver *r, struct conn *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* Appends bytes to the connection's control output (responses, RTCP). */
static int conn_queue(struct conn *c, const void *data, size_t len)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + len > CONN_OUTBUF_MAX)
        return -1;
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return -1;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

/* ---- session queues ----------------------------------------------------------------------------------------- */

static void session_queue_clear(struct session *s, int keep_partial_head)
{
    unsigned keep = keep_partial_head && s->head_off > 0 && s->q_n > 0 ? 1 : 0;
    while (s->q_n > keep) {
        unsigned idx = (s->q_head + s->q_n - 1) & (SESSION_QUEUE - 1);
        s->q_bytes -= s->q[idx]->data_len;
        media_au_unref(s->q[idx]);
        s->q[idx] = NULL;
        s->q_n--;
    }
    if (!keep)
        s->head_off = 0;
}

static void session_queue_pop(struct session *s)
{
    struct media_au *au = s->q[s->q_head];
    s->q_bytes -= au->data_len;
    s->packets += (uint32_t)au->n_packets;
    s->octets += au->payload_bytes;
    s->last_rtp_ts = au->rtp_ts;
    s->last_capture_us = au->capture_us;
    s->have_sent = 1;
    media_au_unref(au);
    s->q[s->q_head] = NULL;
    s->q_head = (s->q_head + 1) & (SESSION_QUEUE - 1);
    s->q_n--;
    s->head_off = 0;
}

/* Queues one picture for a playing session. A session that has fallen too
 * far behind drops what it has not started and waits for the next
 * keyframe: the others are never held back. */
static void session_push(struct session *s, struct media_au *au)
{
    if (s->wait_keyframe && !au->keyframe)
        return;
    size_t limit = (size_t)s->srv->s.max_tcp_backlog_kib * 1024;
    if (s->q_n == SESSION_QUEUE || (s->q_bytes + au->data_len > limit && s->q_n > 0)) {
        session_queue_clear(s, 1);
        atomic_fetch_add(&s->srv->keyframe_skips, 1);
        if (!au->keyframe) {
            s->wait_keyframe = 1;
            return;
        }
        if (s->q_n == SESSION_QUEUE)
            return;
    }
    s->wait_keyframe = 0;
    unsigned idx = (s->q_head + s->q_n) & (SESSION_QUEUE - 1);
    s->q[idx] = media_au_ref(au);
    s->q_n++;
    s->q_bytes += au->data_len;
}

/* ---- TCP sending ------------------------------------------------------------------------------------------------ */

/* Adds the iovecs for au from byte offset off, with the interleaved
 * channel ch (the shared buffer carries channel 0). Returns iovecs used. */
static int au_iov(struct rtspserver *r, int base, const struct media_au *au, size_t off, int ch)
{
    int n = base;
    if (ch == 0) {
        r->tcp_iov[n].iov_base = au->data + off;
        r->tcp_iov[n].iov_len = au->data_len - off;
        return 1;
    }
    for (int i = 0; i < au->n_packets && n + 2 <= TCP_IOV_MAX; i++) {
        size_t start = au->packets[i].off, hdr_end = start + RTP_INTERLEAVED_LEN,
               end = hdr_end + au->packets[i].len;
        if (off >= end)
            continue;
        if (off < hdr_end) {
            uint8_t *h = r->tcp_hdr[n];
            memcpy(h, au->data + start, RTP_INTERLEAVED_LEN);
            h[1] = (uint8_t)ch;
            r->tcp_iov[n].iov_base = h + (off - start);
            r->tcp_iov[n].iov_len = hdr_end - off;
            n++;
            off = hdr_end;
        }
        r->tcp_iov[n].iov_base = au->data + off;
        r->tcp_iov[n].iov_len = end - off;
        n++;
        off = end;
    }
    return n - base;
}

static void conn_close(struct rtspserver *r, struct conn *c);

/* Writes what the connection has: control output between pictures, then the
 * session's queued pictures. Returns -1 when the connection failed. */
static int conn_flush(struct rtspserver *r, struct conn *c)
{
    struct session *s = c->session;
    for (int rounds = 0; rounds < 16; rounds++) {
        if (c->tail) {
            int k = au_iov(r, 0, c->tail, c->tail_off, c->tail_ch);
            ssize_t w = writev(c->fd, r->tcp_iov, k);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    epoll_mod(r, c, 1);
                    return 0;
                }
                if (errno == EINTR)
                    continue;
                return -1;
            }
            c->tail_off += (size_t)w;
            if (c->tail_off < c->tail->data_len)
                continue;
            media_au_unref(c->tail);
            c->tail = NULL;
        }
        int n = 0;
        size_t ctl_bytes = 0;
        int at_boundary = !s || s->head_off == 0;
        if (at_boundary && c->out_off < c->out_len) {
            r->tcp_iov[n].iov_base = c->out + c->out_off;
            r->tcp_iov[n].iov_len = ctl_bytes = c->out_len - c->out_off;
            n++;
        }
        unsigned q_used = 0;
        if (s && s->playing) {
            size_t off = s->head_off;
            for (unsigned i = 0; i < s->q_n && n < TCP_IOV_MAX - 2; i++) {
                const struct media_au *au = s->q[(s->q_head + i) & (SESSION_QUEUE - 1)];
                n += au_iov(r, n, au, i == 0 ? off : 0, s->ch_rtp);
                q_used++;
            }
        }
        if (n == 0) {
            epoll_mod(r, c, 0);
            return 0;
        }
        ssize_t w = writev(c->fd, r->tcp_iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                epoll_mod(r, c, 1);
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->last_progress_ms = now_ms();
        size_t left = (size_t)w;
        if (ctl_bytes) {
            size_t k = left < ctl_bytes ? left : ctl_bytes;
            c->out_off += k;
            left -= k;
            if (c->out_off < c->out_len) {   /* partial control write: nothing else went */
                epoll_mod(r, c, 1);
                return 0;
            }
        }
        while (left > 0 && s && s->q_n > 0) {
            struct media_au *au = s->q[s->q_head];
            size_t remain = au->data_len - s->head_off;
            if (left >= remain) {
                left -= remain;
                atomic_fetch_add(&r->packets_sent, (unsigned long long)au->n_packets);
                session_queue_pop(s);
            } else {
                s->head_off += left;
                left = 0;
            }
        }
        (void)q_used;
        int more = (c->out_off < c->out_len) || (s && s->playing && s->q_n > 0);
        if (!more) {
            epoll_mod(r, c, 0);
            return 0;
        }
    }
    epoll_mod(r, c, 1);
    return 0;
}

/* ---- UDP sending ----------------------------------------------------------------------------------------------- */

static void udp_flush_batch(struct rtspserver *r)
{
    int done = 0;
    while (done < r->n_mm) {
        int k = sendmmsg(r->mm_fd, r->mm + done, (unsigned)(r->n_mm - done), MSG_DONTWAIT);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && r->gso && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT) &&
                r->mm[done].msg_hdr.msg_controllen) {
                /* No segmentation offload on this path: plain datagrams from now on. */
                r->gso = 0;
                log_info("rtsp", "UDP segmentation offload unavailable (%s); sending datagrams one by one",
                         strerror(errno));
            }
            break;   /* datagrams: what the socket cannot take is lost, as on the wire */
        }
        for (int i = 0; i < k; i++)
            atomic_fetch_add(&r->packets_sent, (unsigned long long)r->mm_packets[done + i]);
        done += k;
    }
    r->n_mm = 0;
    r->n_iov = 0;
}

/* Queues the picture's packets for one destination. With segmentation
 * offload, each run of equal-sized packets (plus a shorter last one) goes as
 * one message the kernel splits into datagrams: one trip through the stack
 * per run instead of per packet. */
static void udp_add(struct rtspserver *r, int fd, const struct media_au *au, const struct sockaddr_storage *to,
                    socklen_t tolen)
{
    if (r->n_mm > 0 && r->mm_fd != fd)
        udp_flush_batch(r);
    r->mm_fd = fd;
    int i = 0;
    while (i < au->n_packets) {
        int run = 1;
        size_t seg = au->packets[i].len, bytes = seg;
        if (r->gso) {
            while (i + run < au->n_packets && run < GSO_MAX_SEGMENTS) {
                size_t len = au->packets[i + run].len;
                if (len > seg || bytes + len > GSO_MAX_BYTES)
                    break;
                bytes += len;
                run++;
                if (len < seg)
                    break;   /* only the last segment may be shorter */
            }
        }
        if (r->n_mm == UDP_BATCH || r->n_iov + run > UDP_IOV_POOL)
            udp_flush_batch(r);
        struct iovec *iov = &r->mm_iov[r->n_iov];
        for (int k = 0; k < run; k++) {
            iov[k].iov_base = au->data + au->packets[i + k].off + RTP_INTERLEAVED_LEN;
            iov[k].iov_len = au->packets[i + k].len;
        }
        r->n_iov += run;
        struct msghdr *m = &r->mm[r->n_mm].msg_hdr;
        memset(m, 0, sizeof *m);
        m->msg_name = (void *)to;
        m->msg_namelen = tolen;
        m->msg_iov = iov;
        m->msg_iovlen = (size_t)run;
        if (run > 1) {
            m->msg_control = r->mm_ctl[r->n_mm].buf;
            m->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
            struct cmsghdr *cm = CMSG_FIRSTHDR(m);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t gso_size = (uint16_t)seg;
            memcpy(CMSG_DATA(cm), &gso_size, sizeof gso_size);
        }
        r->mm_packets[r->n_mm] = (unsigned)run;
        r->n_mm++;
        i += run;
    }
}

static struct udp_pair *udp_pair_of(struct rtspserver *r, int family)
{
    return &r->udp[family == AF_INET6 ? 1 : 0];
}

/* Sends up to budget queued pictures of a UDP session (a new viewer catches
 * up with the cached GOP a few pictures at a time). */
static void udp_session_send(struct rtspserver *r, struct session *s, unsigned budget)
{
    struct udp_pair *u = udp_pair_of(r, s->udp_family);
    while (s->q_n > 0 && budget-- > 0) {
        udp_add(r, u->rtp_fd, s->q[s->q_head], &s->rtp_peer, s->peer_len);
        session_queue_pop(s);
    }
}

static void udp_rtcp_send(struct rtspserver *r, struct session *s, const uint8_t *buf, size_t len)
{
    struct udp_pair *u = udp_pair_of(r, s->udp_family);
    sendto(u->rtcp_fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&s->rtcp_peer, s->peer_len);
}

static int open_udp_socket(int family, const struct sockaddr_storage *local, int port)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage a = *local;
    a.ss_family = (sa_family_t)family;
    sockaddr_set_port(&a, port);
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (family == AF_INET6) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (bind(fd, (struct sockaddr *)&a, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The server's RTP/RTCP port pair for one address family, opened on first
 * use on the address the listener is bound to (any address otherwise). */
static struct udp_pair *udp_pair_open(struct rtspserver *r, const struct conn *c)
{
    int family = c->local.ss_family;
    struct udp_pair *u = udp_pair_of(r, family);
    if (u->rtp_fd >= 0)
        return u;
    struct sockaddr_storage local;
    memset(&local, 0, sizeof local);
    if (r->bind[0])
        local = c->local;            /* only the configured address */
    local.ss_family = (sa_family_t)family;
    for (int attempt = 0; attempt < 64; attempt++) {
        int rtp = open_udp_socket(family, &local, 0);
        if (rtp < 0)
            return NULL;
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        getsockname(rtp, (struct sockaddr *)&got, &gl);
        int port = sockaddr_port(&got);
        if (port & 1 || port >= 65535) {
            close(rtp);
            continue;
        }
        int rtcp = open_udp_socket(family, &local, port + 1);
        if (rtcp < 0) {
            close(rtp);
            continue;
        }
        u->family = family;
        u->rtp_fd = rtp;
        u->rtcp_fd = rtcp;
        u->rtp_port = port;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &u->rtp_fd };
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, rtp, &ev);
        ev.data.ptr = &u->rtcp_fd;
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, rtcp, &ev);
        return u;
    }
    return NULL;
}

/* ---- stream groups --------------------------------------------------------------------------------------------- */

/* Encoder thread: hands the picture to the loop. Never blocks on the loop. */
static void group_on_au(void *arg, struct media_au *au)
{
    struct group *g = arg;
    pthread_mutex_lock(&g->inbox_lock);
    int was_empty = g->n_inbox == 0;
    if (g->n_inbox < INBOX_MAX)
        g->inbox[g->n_inbox++] = media_au_ref(au);
    else
        g->inbox_lost = 1;
    pthread_mutex_unlock(&g->inbox_lock);
    if (was_empty)
        wake_loop(g->srv);
}

static struct group *group_find(struct rtspserver *r, const char *vec)
{
    for (struct group *g = r->groups; g; g = g->next)
        if (strcmp(g->vec, vec) == 0)
            return g;
    return NULL;
}

static void gop_clear(struct group *g)
{
    for (int i = 0; i < g->n_gop; i++)
        media_au_unref(g->gop[i]);
    g->n_gop = 0;
    g->gop_bytes = 0;
}

static struct group *group_get(struct rtspserver *r, const char *vec, int *err)
{
    struct group *g = group_find(r, vec);
    if (g)
        return g;
    g = calloc(1, sizeof *g);
    if (!g) {
        *err = RTSPSERVER_E_NOMEM;
        return NULL;
    }
    g->srv = r;
    g->mc_fd = -1;
    snprintf(g->vec, sizeof g->vec, "%s", vec);
    pthread_mutex_init(&g->inbox_lock, NULL);
    int rc = stream_subscribe(r->d.streams, vec, group_on_au, g, &g->sub);
    if (rc != STREAM_OK) {
        log_warning("rtsp", "stream %s: %s", vec, stream_strerror(rc));
        pthread_mutex_destroy(&g->inbox_lock);
        free(g);
        *err = RTSPSERVER_E_STREAM;
        return NULL;
    }
    g->next = r->groups;
    r->groups = g;
    return g;
}

static void group_mc_close(struct group *g)
{
    if (g->mc_fd >= 0)
        close(g->mc_fd);
    g->mc_fd = -1;
}

/* Drops the group once nobody watches it (stopping its encoder). */
static void group_release_if_unused(struct rtspserver *r, struct group *g)
{
    if (g->n_sessions > 0 || g->mc_started || g->mc_sessions > 0)
        return;
    stream_unsubscribe(g->sub);   /* after this the encoder thread no longer calls group_on_au */
    for (struct group **p = &r->groups; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    for (int i = 0; i < g->n_inbox; i++)
        media_au_unref(g->inbox[i]);
    gop_clear(g);
    group_mc_close(g);
    pthread_mutex_destroy(&g->inbox_lock);
    free(g);
}

/* Opens the group's multicast sender on the encoder configuration's
 * address. Returns 0 or a negative rtspserver_error. */
static int group_mc_open(struct rtspserver *r, struct group *g)
{
    if (g->mc_fd >= 0)
        return 0;
    struct media_vec v;
    if (mediacfg_vec(r->d.mediacfg, g->vec, &v) != MEDIACFG_OK || !v.multicast.address[0] || v.multicast.port <= 0)
        return RTSPSERVER_E_NO_MULTICAST;
    struct sockaddr_storage a;
    memset(&a, 0, sizeof a);
    socklen_t len;
    if (inet_pton(AF_INET, v.multicast.address, &((struct sockaddr_in *)&a)->sin_addr) == 1) {
        a.ss_family = AF_INET;
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, v.multicast.address, &((struct sockaddr_in6 *)&a)->sin6_addr) == 1) {
        a.ss_family = AF_INET6;
        len = sizeof(struct sockaddr_in6);
    } else {
        return RTSPSERVER_E_NO_MULTICAST;
    }
    int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return RTSPSERVER_E_BIND;
    int ttl = v.multicast.ttl > 0 && v.multicast.ttl < 256 ? v.multicast.ttl : 1;
    unsigned ifindex = r->multicast_if[0] ? if_nametoindex(r->multicast_if) : 0;
    if (a.ss_family == AF_INET) {
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
        if (ifindex) {
            struct ip_mreqn mr = { .imr_ifindex = (int)ifindex };
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
        }
    } else {
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
        if (ifindex)
            setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex);
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    g->mc_fd = fd;
    g->mc_rtp = a;
    sockaddr_set_port(&g->mc_rtp, v.multicast.port);
    g->mc_rtcp = a;
    sockaddr_set_port(&g->mc_rtcp, v.multicast.port + 1);
    g->mc_len = len;
    g->mc_next_rtcp_ms = now_ms() + RTCP_INTERVAL_MS;
    log_info("rtsp", "multicast of %s to %s port %d (ttl %d) on", g->vec, v.multicast.address, v.multicast.port, ttl);
    return 0;
}

static void group_mc_maybe_close(struct group *g)
{
    if (g->mc_started || g->mc_sessions > 0 || g->mc_fd < 0)
        return;
    log_info("rtsp", "multicast of %s off", g->vec);
    group_mc_close(g);
}

static void session_set_playing(struct rtspserver *r, struct session *s, int playing);

/* One new picture: cache it, queue it on every playing session, send. */
static void group_deliver(struct rtspserver *r, struct group *g, struct media_au *au)
{
    if (au->n_packets > 0) {   /* the stream's SSRC, for RTCP: RTP header bytes 8..11 */
        const uint8_t *h = au->data + au->packets[0].off + RTP_INTERLEAVED_LEN;
        g->ssrc = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        uint8_t pt = h[1] & 0x7f;
        if (g->payload_type && pt != g->payload_type) {
            /* The encoding changed (e.g. H.264 to JPEG): the viewers' SDP no
             * longer describes the stream. Ending their sessions makes them
             * DESCRIBE again, as ONVIF Streaming expects. */
            log_notice("rtsp", "stream %s changed encoding: ending its sessions for a new DESCRIBE", g->vec);
            gop_clear(g);
            for (struct session *s = g->sessions; s; s = s->group_next) {
                if (s->data)
                    s->data->closing = 2;
                else
                    s->timeout_s = 0;   /* UDP/multicast: housekeeping ends it */
                session_set_playing(r, s, 0);
            }
        }
        g->payload_type = pt;
    }
    if (au->keyframe) {
        gop_clear(g);
    }
    if (g->n_gop < GOP_CACHE_MAX && g->gop_bytes + au->data_len <= GOP_CACHE_BYTES && (au->keyframe || g->n_gop > 0)) {
        g->gop[g->n_gop++] = media_au_ref(au);
        g->gop_bytes += au->data_len;
    } else {
        gop_clear(g);   /* a cache with a hole would give new viewers a broken start */
    }
    if (g->mc_fd >= 0) {
        udp_add(r, g->mc_fd, au, &g->mc_rtp, g->mc_len);
        g->mc_packets += (uint32_t)au->n_packets;
        g->mc_octets += au->payload_bytes;
        g->mc_last_ts = au->rtp_ts;
        g->mc_last_capture_us = au->capture_us;
    }
    for (struct session *s = g->sessions; s; s = s->group_next) {
        if (!s->playing || s->lower == RTSP_LOWER_UDP_MULTICAST)
            continue;
        session_push(s, au);
        if (s->lower == RTSP_LOWER_UDP)
            udp_session_send(r, s, UDP_CATCHUP_AUS);
    }
    udp_flush_batch(r);
    for (struct session *s = g->sessions; s; s = s->group_next)
        if (s->playing && s->data && s->q_n > 0 && !s->data->want_out)
            if (conn_flush(r, s->data) < 0)
                s->data->closing = 2;   /* failed: closed after the delivery round */
}

static void drain_inboxes(struct rtspserver *r)
{
    uint64_t v;
    ssize_t n = read(r->wake_fd, &v, sizeof v);
    (void)n;
    for (struct group *g = r->groups; g; g = g->next) {
        struct media_au *batch[INBOX_MAX];
        pthread_mutex_lock(&g->inbox_lock);
        int k = g->n_inbox, lost = g->inbox_lost;
        memcpy(batch, g->inbox, (size_t)k * sizeof batch[0]);
        g->n_inbox = 0;
        g->inbox_lost = 0;
        pthread_mutex_unlock(&g->inbox_lock);
        if (lost) {   /* the loop fell behind the encoder: everyone restarts at a keyframe */
            gop_clear(g);
            for (struct session *s = g->sessions; s; s = s->group_next)
                if (s->playing) {
                    session_queue_clear(s, 1);
                    s->wait_keyframe = 1;
                }
            stream_force_keyframe(r->d.streams, g->vec);
        }
        for (int i = 0; i < k; i++) {
            group_deliver(r, g, batch[i]);
            media_au_unref(batch[i]);
        }
    }
    /* Connections whose write failed are closed after the event batch. */
}

/* ---- sessions ---------------------------------------------------------------------------------------------------- */

static struct session *session_find(struct rtspserver *r, const char *id)
{
    for (struct session *s = r->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void session_set_playing(struct rtspserver *r, struct session *s, int playing)
{
    if (s->playing == playing)
        return;
    s->playing = playing;
    atomic_fetch_add(&r->st_playing, playing ? 1 : -1);
    if (s->lower == RTSP_LOWER_UDP_MULTICAST) {
        s->group->mc_sessions += playing ? 1 : -1;
        if (!playing)
            group_mc_maybe_close(s->group);
    }
}

static void session_free(struct rtspserver *r, struct session *s, const char *why)
{
    session_set_playing(r, s, 0);
    if (s->data && s->q_n > 0 && s->head_off > 0 && !s->data->tail) {
        /* The rest of the picture on the wire goes before anything else. */
        s->data->tail = media_au_ref(s->q[s->q_head]);
        s->data->tail_off = s->head_off;
        s->data->tail_ch = s->ch_rtp;
    }
    session_queue_clear(s, 0);
    struct group *g = s->group;
    for (struct session **p = &g->sessions; *p; p = &(*p)->group_next)
        if (*p == s) {
            *p = s->group_next;
            break;
        }
    g->n_sessions--;
    if (s->prev)
        s->prev->next = s->next;
    else
        r->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    r->n_sessions--;
    atomic_fetch_sub(&r->st_sessions, 1);
    if (s->data && s->data->session == s)
        s->data->session = NULL;
    if (s->ctl && s->ctl->session == s)
        s->ctl->session = NULL;
    log_info("rtsp", "%s: session %s of %s ended (%s)", s->ctl ? s->ctl->peer_text : "-", s->id, s->profile, why);
    free(s);
    group_release_if_unused(r, g);
}

/* RTCP sender reports for every playing session and multicast group. */
static void rtcp_tick(struct rtspserver *r, int64_t now)
{
    uint8_t buf[256];
    int64_t mono_now = mono_us();
    uint64_t wall_now = wall_us();
    for (struct group *g = r->groups; g; g = g->next) {
        if (g->mc_fd < 0 || !g->mc_packets || now < g->mc_next_rtcp_ms)
            continue;
        g->mc_next_rtcp_ms = now + RTCP_INTERVAL_MS;
        uint64_t ntp = wall_now - (uint64_t)(mono_now - g->mc_last_capture_us);
        int n = rtp_rtcp_sender_report(buf, sizeof buf, g->ssrc, ntp, g->mc_last_ts, g->mc_packets, g->mc_octets,
                                       SERVER_NAME);
        if (n > 0)
            sendto(g->mc_fd, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&g->mc_rtcp, g->mc_len);
    }
    for (struct session *s = r->sessions; s; s = s->next) {
        if (!s->playing || !s->have_sent || now < s->next_rtcp_ms || s->lower == RTSP_LOWER_UDP_MULTICAST)
            continue;
        s->next_rtcp_ms = now + RTCP_INTERVAL_MS;
        uint64_t ntp = wall_now - (uint64_t)(mono_now - s->last_capture_us);
        int n = rtp_rtcp_sender_report(buf + RTP_INTERLEAVED_LEN, sizeof buf - RTP_INTERLEAVED_LEN, s->group->ssrc,
                                       ntp, s->last_rtp_ts, s->packets, s->octets, SERVER_NAME);
        if (n <= 0)
            continue;
        if (s->lower == RTSP_LOWER_UDP) {
            udp_rtcp_send(r, s, buf + RTP_INTERLEAVED_LEN, (size_t)n);
        } else if (s->data) {
            buf[0] = '$';
            buf[1] = (uint8_t)s->ch_rtcp;
            buf[2] = (uint8_t)(n >> 8);
            buf[3] = (uint8_t)n;
            if (conn_queue(s->data, buf, (size_t)n + RTP_INTERLEAVED_LEN) == 0 && !s->data->want_out)
                conn_flush(r, s->data);
        }
    }
}

/* RTCP (receiver reports) from UDP viewers keep their sessions alive. */
static void udp_readable(struct rtspserver *r, int fd)
{
    uint8_t buf[1500];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        int port = sockaddr_port(&from);
        int64_t now = now_ms();
        for (struct session *s = r->sessions; s; s = s->next)
            if (s->lower == RTSP_LOWER_UDP && same_host(&s->rtcp_peer, &from) &&
                (sockaddr_port(&s->rtcp_peer) == port || sockaddr_port(&s->rtp_peer) == port))
                s->last_activity_ms = now;
    }
}

/* ---- requests ---------------------------------------------------------------------------------------------------- */

#define PUBLIC_METHODS "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"

static void reply(struct rtspserver *r, struct conn *c, int status, long cseq, const char *extra, const char *body,
                  size_t body_len)
{
    char head[2048], hdrs[1536];
    snprintf(hdrs, sizeof hdrs, "Server: " SERVER_NAME "\r\n%s", extra ? extra : "");
    int n = rtsp_format_response(head, sizeof head, status, cseq, hdrs, body_len);
    if (n < 0 || conn_queue(c, head, (size_t)n) != 0 || (body_len && conn_queue(c, body, body_len) != 0)) {
        c->closing = 1;
        return;
    }
    if (!c->want_out && conn_flush(r, c) < 0)
        c->closing = 2;
}

/* The profile token of a stream URI (rtsp://host[:port]/stream/<token>[/track1]
 * or the bare path); 0, or -1 when the URI names no stream. *track_out
 * tells whether a track control followed. */
static int uri_profile(const char *uri, char token[MEDIA_TOKEN_MAX + 1], int *track_out)
{
    const char *path = uri;
    const char *scheme = strstr(uri, "://");
    if (scheme) {
        path = strchr(scheme + 3, '/');
        if (!path)
            return -1;
    }
    if (strncmp(path, RTSP_STREAM_PATH, strlen(RTSP_STREAM_PATH)) != 0)
        return -1;
    const char *t = path + strlen(RTSP_STREAM_PATH);
    size_t n = strcspn(t, "/?");
    if (n == 0 || n > MEDIA_TOKEN_MAX)
        return -1;
    memcpy(token, t, n);
    token[n] = '\0';
    const char *rest = t + n;
    int track = 0;
    if (*rest == '/') {
        rest++;
        size_t m = strcspn(rest, "?");
        if (m == strlen(TRACK_CONTROL) && strncmp(rest, TRACK_CONTROL, m) == 0)
            track = 1;
        else if (m != 0)
            return -1;
    }
    if (track_out)
        *track_out = track;
    return 0;
}

/* The gate for stream access (Digest against the device's users, the
 * READ_MEDIA class). Returns 1 to go on; otherwise the reply has been sent. */
static int authorized(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    struct gate_request g = {
        .operation = "rtsp:Stream",
        .authorization = rtsp_header(req, "Authorization"),
        .authorization_count = rtsp_header_count(req, "Authorization"),
        .method = req->method_text,
        .uri = req->uri,
        .peer = c->peer_text,
        .rtsp = 1,
    };
    struct gate_policy policy = { .anonymous_classes = r->s.anonymous_classes };
    struct gate_decision d;
    gate_decide(r->d.authn, r->d.users, &policy, &g, &d);
    if (d.verdict == GATE_ALLOW)
        return 1;
    if (d.verdict == GATE_CHALLENGE) {
        char challenge[1024];
        if (authn_digest_challenge(r->d.authn, d.stale, challenge, sizeof challenge) < 0)
            challenge[0] = '\0';
        log_debug("rtsp", "%s: %s: 401 (%s)", c->peer_text, req->method_text, d.reason ? d.reason : "");
        reply(r, c, 401, req->cseq, challenge, NULL, 0);
        return 0;
    }
    log_info("rtsp", "%s: %s %s: 403 (%s)", c->peer_text, req->method_text, req->uri, d.reason ? d.reason : "");
    reply(r, c, 403, req->cseq, NULL, NULL, 0);
    return 0;
}

/* The profile and its encoder configuration; 0, or the status to answer. */
static int profile_vec(struct rtspserver *r, const char *uri, char profile[MEDIA_TOKEN_MAX + 1],
                       struct media_vec *vec, int *track)
{
    struct media_profile p;
    if (uri_profile(uri, profile, track) != 0 || mediacfg_profile(r->d.mediacfg, profile, &p) != MEDIACFG_OK ||
        !p.vec_token[0] || mediacfg_vec(r->d.mediacfg, p.vec_token, vec) != MEDIACFG_OK)
        return 404;
    return 0;
}

static void local_host_text(const struct conn *c, char *out, size_t outlen, const char **ipver)
{
    char a[64];
    sockaddr_text(&c->local, a, sizeof a);
    *ipver = strchr(a, ':') ? "IP6" : "IP4";
    snprintf(out, outlen, "%s", a);
}

static void handle_describe(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    char profile[MEDIA_TOKEN_MAX + 1];
    struct media_vec vec;
    int track;
    if (profile_vec(r, req->uri, profile, &vec, &track) != 0) {
        reply(r, c, 404, req->cseq, NULL, NULL, 0);
        return;
    }
    const char *accept = rtsp_header(req, "Accept");
    if (accept && !strstr(accept, "application/sdp") && !strstr(accept, "*/*")) {
        reply(r, c, 406, req->cseq, NULL, NULL, 0);
        return;
    }
    struct stream_info info;
    int rc = stream_get_info(r->d.streams, vec.token, &info);
    if (rc != STREAM_OK) {
        log_warning("rtsp", "%s: DESCRIBE %s: %s", c->peer_text, profile, stream_strerror(rc));
        reply(r, c, 503, req->cseq, NULL, NULL, 0);
        return;
    }
    char host[64], sdp[4096];
    const char *ipver;
    local_host_text(c, host, sizeof host, &ipver);
    uint64_t version = wall_us();
    int n = snprintf(sdp, sizeof sdp,
                     "v=0\r\n"
                     "o=- %llu %llu IN %s %s\r\n"
                     "s=%s\r\n"
                     "c=IN %s %s\r\n"
                     "t=0 0\r\n"
                     "a=control:*\r\n"
                     "a=range:npt=now-\r\n",
                     (unsigned long long)(version / 1000000u), (unsigned long long)version, ipver, host, profile,
                     ipver, strcmp(ipver, "IP6") == 0 ? "::" : "0.0.0.0");
    int m = n > 0 && (size_t)n < sizeof sdp
                ? rtp_sdp_media(sdp + n, sizeof sdp - (size_t)n, info.encoding, info.payload_type, info.param_sets,
                                info.param_len, info.width, info.height, info.framerate, TRACK_CONTROL)
                : -1;
    if (m < 0) {
        reply(r, c, 500, req->cseq, NULL, NULL, 0);
        return;
    }
    /* Content-Base ends with '/' so the track control resolves under the stream. */
    char extra[RTSP_MAX_URI + 128];
    size_t ul = strcspn(req->uri, "?");
    snprintf(extra, sizeof extra, "Content-Type: application/sdp\r\nContent-Base: %.*s%s\r\n", (int)ul, req->uri,
             ul && req->uri[ul - 1] == '/' ? "" : "/");
    reply(r, c, 200, req->cseq, extra, sdp, (size_t)(n + m));
}

static void new_session_id(char out[SESSION_ID_HEX + 1])
{
    uint8_t b[SESSION_ID_HEX / 2];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t t = (uint64_t)mono_us() ^ ((uint64_t)getpid() << 32);
        memcpy(b, &t, sizeof b);
    }
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The Session header's id (before ";timeout="). */
static int session_header_id(const struct rtsp_request *req, char out[SESSION_ID_HEX + 1])
{
    const char *v = rtsp_header(req, "Session");
    if (!v)
        return -1;
    size_t n = strcspn(v, "; \t");
    if (n == 0 || n > SESSION_ID_HEX)
        return 0 * (out[0] = '\0') - 2;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

static void handle_setup(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    char profile[MEDIA_TOKEN_MAX + 1], sid[SESSION_ID_HEX + 1];
    struct media_vec vec;
    int track;
    if (profile_vec(r, req->uri, profile, &vec, &track) != 0) {
        reply(r, c, 404, req->cseq, NULL, NULL, 0);
        return;
    }
    const char *tv = rtsp_header(req, "Transport");
    struct rtsp_transport t;
    if (!tv || rtsp_parse_transport(tv, &t) != 0) {
        reply(r, c, 461, req->cseq, NULL, NULL, 0);
        return;
    }
    struct session *existing = NULL;
    int has_sid = session_header_id(req, sid);
    if (has_sid == 0) {
        existing = session_find(r, sid);
        if (!existing) {
            reply(r, c, 454, req->cseq, NULL, NULL, 0);
            return;
        }
        if (strcmp(existing->profile, profile) != 0) {
            reply(r, c, 459, req->cseq, NULL, NULL, 0);   /* one stream per session */
            return;
        }
        if (existing->playing) {
            reply(r, c, 455, req->cseq, "Allow: PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER\r\n", NULL, 0);
            return;
        }
    } else if (has_sid == -2) {
        reply(r, c, 454, req->cseq, NULL, NULL, 0);
        return;
    }
    if (t.lower == RTSP_LOWER_TCP && c->session && c->session != existing) {
        reply(r, c, 459, req->cseq, NULL, NULL, 0);   /* one interleaved stream per connection */
        return;
    }
    if (!existing && r->n_sessions >= r->s.max_connections) {
        reply(r, c, 453, req->cseq, NULL, NULL, 0);
        return;
    }
    struct udp_pair *u = NULL;
    if (t.lower == RTSP_LOWER_UDP) {
        if (c->kind != CONN_RTSP && c->kind != CONN_TUNNEL_GET) {
            reply(r, c, 461, req->cseq, NULL, NULL, 0);
            return;
        }
        u = udp_pair_open(r, c);
        if (!u || t.client_rtp_port <= 0) {
            reply(r, c, u ? 461 : 500, req->cseq, NULL, NULL, 0);
            return;
        }
    }
    struct group *g = existing ? existing->group : NULL;
    int err = 0;
    if (!g && !(g = group_get(r, vec.token, &err))) {
        reply(r, c, err == RTSPSERVER_E_NOMEM ? 500 : 503, req->cseq, NULL, NULL, 0);
        return;
    }
    if (t.lower == RTSP_LOWER_UDP_MULTICAST && group_mc_open(r, g) != 0) {
        group_release_if_unused(r, g);
        reply(r, c, 461, req->cseq, NULL, NULL, 0);
        return;
    }
    struct session *s = existing;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            group_release_if_unused(r, g);
            reply(r, c, 500, req->cseq, NULL, NULL, 0);
            return;
        }
        do
            new_session_id(s->id);
        while (session_find(r, s->id));
        s->srv = r;
        s->group = g;
        snprintf(s->profile, sizeof s->profile, "%s", profile);
        s->group_next = g->sessions;
        g->sessions = s;
        g->n_sessions++;
        s->next = r->sessions;
        if (r->sessions)
            r->sessions->prev = s;
        r->sessions = s;
        r->n_sessions++;
        atomic_fetch_add(&r->st_sessions, 1);
    } else if (s->data && s->data->session == s) {
        s->data->session = NULL;
    }
    s->ctl = c;
    s->data = NULL;
    s->lower = t.lower;
    s->timeout_s = vec.session_timeout_s > 0 ? vec.session_timeout_s : r->s.session_timeout_s;
    if (s->timeout_s > r->s.session_timeout_s)
        s->timeout_s = r->s.session_timeout_s;
    s->last_activity_ms = now_ms();
    char transport[512];
    char ssrc[16];
    snprintf(ssrc, sizeof ssrc, "%08X", g->ssrc);
    if (t.lower == RTSP_LOWER_UDP) {
        s->udp_family = u->family;
        s->rtp_peer = c->peer;
        s->peer_len = c->peer_len;
        sockaddr_set_port(&s->rtp_peer, t.client_rtp_port);
        s->rtcp_peer = c->peer;
        sockaddr_set_port(&s->rtcp_peer, t.client_rtcp_port > 0 ? t.client_rtcp_port : t.client_rtp_port + 1);
        snprintf(transport, sizeof transport, "RTP/AVP;unicast;client_port=%d-%d;server_port=%d-%d",
                 t.client_rtp_port, t.client_rtcp_port > 0 ? t.client_rtcp_port : t.client_rtp_port + 1, u->rtp_port,
                 u->rtp_port + 1);
    } else if (t.lower == RTSP_LOWER_TCP) {
        s->ch_rtp = t.interleaved_rtp >= 0 ? t.interleaved_rtp : 0;
        s->ch_rtcp = t.interleaved_rtcp >= 0 ? t.interleaved_rtcp : s->ch_rtp + 1;
        s->data = c;
        c->session = s;
        snprintf(transport, sizeof transport, "RTP/AVP/TCP;unicast;interleaved=%d-%d", s->ch_rtp, s->ch_rtcp);
    } else {
        struct media_vec v;
        mediacfg_vec(r->d.mediacfg, g->vec, &v);
        snprintf(transport, sizeof transport, "RTP/AVP;multicast;destination=%s;port=%d-%d;ttl=%d",
                 v.multicast.address, v.multicast.port, v.multicast.port + 1, v.multicast.ttl > 0 ? v.multicast.ttl : 1);
    }
    char extra[768];
    snprintf(extra, sizeof extra, "Transport: %s\r\nSession: %s;timeout=%d\r\n", transport, s->id, s->timeout_s);
    log_info("rtsp", "%s: session %s: SETUP %s (%s)", c->peer_text, s->id, profile,
             t.lower == RTSP_LOWER_UDP ? "UDP" : t.lower == RTSP_LOWER_TCP ? (c->kind == CONN_TUNNEL_GET ? "HTTP" : "TCP")
                                                                            : "multicast");
    reply(r, c, 200, req->cseq, extra, NULL, 0);
}

static struct session *request_session(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    char sid[SESSION_ID_HEX + 1];
    struct session *s = session_header_id(req, sid) == 0 ? session_find(r, sid) : NULL;
    if (!s) {
        reply(r, c, 454, req->cseq, NULL, NULL, 0);
        return NULL;
    }
    /* A TCP session's data belongs to its connection: others may not drive it. */
    if (s->lower == RTSP_LOWER_TCP && s->data != c) {
        reply(r, c, 454, req->cseq, NULL, NULL, 0);
        return NULL;
    }
    s->last_activity_ms = now_ms();
    if (s->lower != RTSP_LOWER_TCP)
        s->ctl = c;
    return s;
}

static void handle_play(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    struct session *s = request_session(r, c, req);
    if (!s)
        return;
    char profile[MEDIA_TOKEN_MAX + 1];
    int track;
    if (uri_profile(req->uri, profile, &track) != 0 || strcmp(profile, s->profile) != 0) {
        reply(r, c, 404, req->cseq, NULL, NULL, 0);
        return;
    }
    if (rtsp_header(req, "Scale") && strtod(rtsp_header(req, "Scale"), NULL) != 1.0) {
        reply(r, c, 456, req->cseq, NULL, NULL, 0);   /* live: no trick play */
        return;
    }
    struct group *g = s->group;
    char extra[RTSP_MAX_URI + 256];
    size_t ul = strcspn(req->uri, "?");
    int base_has_track = track;
    if (!s->playing && g->n_gop > 0 && s->lower != RTSP_LOWER_UDP_MULTICAST) {
        /* Start at the most recent keyframe: the viewer decodes at once. */
        snprintf(extra, sizeof extra, "Range: npt=now-\r\nRTP-Info: url=%.*s%s;seq=%u;rtptime=%u\r\nSession: %s;timeout=%d\r\n",
                 (int)(ul && req->uri[ul - 1] == '/' ? ul - 1 : ul), req->uri, base_has_track ? "" : "/" TRACK_CONTROL,
                 g->gop[0]->first_seq, g->gop[0]->rtp_ts, s->id, s->timeout_s);
    } else {
        snprintf(extra, sizeof extra, "Range: npt=now-\r\nSession: %s;timeout=%d\r\n", s->id, s->timeout_s);
    }
    int was_playing = s->playing;
    reply(r, c, 200, req->cseq, extra, NULL, 0);
    if (was_playing)
        return;
    s->next_rtcp_ms = now_ms() + RTCP_INTERVAL_MS / 5;
    session_set_playing(r, s, 1);
    if (s->lower == RTSP_LOWER_UDP_MULTICAST)
        return;
    if (g->n_gop == 0)
        s->wait_keyframe = 1;
    for (int i = 0; i < g->n_gop; i++)
        session_push(s, g->gop[i]);
    if (s->lower == RTSP_LOWER_UDP) {
        udp_session_send(r, s, UDP_CATCHUP_AUS);
        udp_flush_batch(r);
    } else if (s->data && !s->data->want_out && conn_flush(r, s->data) < 0) {
        s->data->closing = 2;
    }
    if (g->n_gop == 0)
        stream_force_keyframe(r->d.streams, g->vec);   /* nothing cached: do not make the viewer wait a GOP */
}

static void handle_pause(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    struct session *s = request_session(r, c, req);
    if (!s)
        return;
    session_set_playing(r, s, 0);
    session_queue_clear(s, 1);
    char extra[128];
    snprintf(extra, sizeof extra, "Session: %s;timeout=%d\r\n", s->id, s->timeout_s);
    reply(r, c, 200, req->cseq, extra, NULL, 0);
}

static void handle_teardown(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    struct session *s = request_session(r, c, req);
    if (!s)
        return;
    session_free(r, s, "TEARDOWN");
    reply(r, c, 200, req->cseq, NULL, NULL, 0);
}

static void handle_parameter(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    char extra[128] = "";
    if (rtsp_header(req, "Session")) {
        struct session *s = request_session(r, c, req);
        if (!s)
            return;
        snprintf(extra, sizeof extra, "Session: %s;timeout=%d\r\n", s->id, s->timeout_s);
    }
    if (req->method == RTSP_SET_PARAMETER && req->content_length > 0) {
        reply(r, c, 451, req->cseq, extra, NULL, 0);   /* no settable parameters */
        return;
    }
    reply(r, c, 200, req->cseq, extra, NULL, 0);
}

static void handle_request(struct rtspserver *r, struct conn *c, const struct rtsp_request *req)
{
    c->last_request_ms = now_ms();
    if (req->cseq < 0) {
        reply(r, c, 400, -1, NULL, NULL, 0);
        return;
    }
    const char *require = rtsp_header(req, "Require");
    if (require) {
        char extra[256];
        snprintf(extra, sizeof extra, "Unsupported: %.200s\r\n", require);
        reply(r, c, 551, req->cseq, extra, NULL, 0);
        return;
    }
    switch (req->method) {
    case RTSP_OPTIONS:
        reply(r, c, 200, req->cseq, "Public: " PUBLIC_METHODS "\r\n", NULL, 0);
        return;
    case RTSP_DESCRIBE:
        if (authorized(r, c, req))
            handle_describe(r, c, req);
        return;
    case RTSP_SETUP:
        if (authorized(r, c, req))
            handle_setup(r, c, req);
        return;
    case RTSP_PLAY:
        if (authorized(r, c, req))
            handle_play(r, c, req);
        return;
    case RTSP_PAUSE:
        handle_pause(r, c, req);
        return;
    case RTSP_TEARDOWN:
        handle_teardown(r, c, req);
        return;
    case RTSP_GET_PARAMETER:
    case RTSP_SET_PARAMETER:
        handle_parameter(r, c, req);
        return;
    case RTSP_ANNOUNCE:
    case RTSP_RECORD:
    case RTSP_REDIRECT:
        reply(r, c, 405, req->cseq, "Allow: " PUBLIC_METHODS "\r\n", NULL, 0);
        return;
    case RTSP_METHOD_UNKNOWN:
        break;
    }
    reply(r, c, 501, req->cseq, NULL, NULL, 0);
}

/* ---- HTTP tunnel (RTSP over HTTP: a GET for the server's half, a POST
 * carrying base64 RTSP requests, paired by x-sessioncookie) ------------------------------------------------------ */

static void http_reply(struct rtspserver *r, struct conn *c, const char *status_line, const char *extra)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "HTTP/1.0 %s\r\nServer: " SERVER_NAME "\r\n%s\r\n", status_line,
                     extra ? extra : "Content-Length: 0\r\nConnection: close\r\n");
    if (n > 0 && (size_t)n < sizeof buf)
        conn_queue(c, buf, (size_t)n);
    conn_flush(r, c);
}

static int cookie_valid(const char *v, size_t n)
{
    if (n == 0 || n >= sizeof(((struct conn *)0)->cookie))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] == 127)
            return 0;
    return 1;
}

static void process_input(struct rtspserver *r, struct conn *c);

/* Decodes base64 from a POST half into its GET half's request buffer. */
static int tunnel_feed(struct rtspserver *r, struct conn *post, const char *data, size_t len)
{
    struct conn *get = post->tunnel_get;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+')
            v = 62;
        else if (ch == '/')
            v = 63;
        else if (ch == '=')
            v = 64;
        else if (ch == '\r' || ch == '\n' || ch == ' ' || ch == '\t')
            continue;
        else
            return -1;
        post->b64_pending[post->n_b64_pending++] = (unsigned char)v;
        if (post->n_b64_pending < 4)
            continue;
        unsigned char *q = post->b64_pending;
        post->n_b64_pending = 0;
        if (q[0] == 64 || q[1] == 64 || (q[2] == 64 && q[3] != 64))
            return -1;
        uint8_t out[3];
        int n = 1;
        out[0] = (uint8_t)(q[0] << 2 | q[1] >> 4);
        if (q[2] != 64) {
            out[1] = (uint8_t)(q[1] << 4 | q[2] >> 2);
            n = 2;
            if (q[3] != 64) {
                out[2] = (uint8_t)(q[2] << 6 | q[3]);
                n = 3;
            }
        }
        if (get->in_len + (size_t)n > sizeof get->in) {
            process_input(r, get);
            if (get->in_len + (size_t)n > sizeof get->in)
                return -1;
        }
        memcpy(get->in + get->in_len, out, (size_t)n);
        get->in_len += (size_t)n;
    }
    process_input(r, get);
    return 0;
}

/* The first request on a connection was HTTP. Returns bytes consumed, 0 for
 * more bytes, -1 to close. */
static long handle_http_head(struct rtspserver *r, struct conn *c, char *p, size_t avail)
{
    char *end = memmem(p, avail, "\r\n\r\n", 4);
    if (!end)
        return avail >= RTSP_MAX_REQUEST ? -1 : 0;
    size_t head_len = (size_t)(end - p) + 4;
    int is_get = strncmp(p, "GET ", 4) == 0;
    const char *path = p + (is_get ? 4 : 5);
    size_t path_len = strcspn(path, " \r\n");
    char pathbuf[RTSP_MAX_URI + 1], token[MEDIA_TOKEN_MAX + 1];
    if (path_len > RTSP_MAX_URI) {
        http_reply(r, c, "414 URI Too Long", NULL);
        return -1;
    }
    memcpy(pathbuf, path, path_len);
    pathbuf[path_len] = '\0';
    const char *cookie = NULL;
    size_t cookie_len = 0;
    for (char *line = memchr(p, '\n', head_len); line && line < end; line = memchr(line, '\n', (size_t)(end - line))) {
        line++;
        static const char name[] = "x-sessioncookie:";
        if ((size_t)(end - line) > sizeof name && strncasecmp(line, name, sizeof name - 1) == 0) {
            cookie = line + sizeof name - 1;
            while (*cookie == ' ' || *cookie == '\t')
                cookie++;
            cookie_len = strcspn(cookie, "\r\n");
            while (cookie_len && (cookie[cookie_len - 1] == ' ' || cookie[cookie_len - 1] == '\t'))
                cookie_len--;
        }
    }
    if (uri_profile(pathbuf, token, NULL) != 0) {
        http_reply(r, c, "404 Not Found", NULL);
        return -1;
    }
    if (!cookie || !cookie_valid(cookie, cookie_len)) {
        http_reply(r, c, "400 Bad Request", NULL);
        return -1;
    }
    if (is_get) {
        for (struct conn *o = r->conns; o; o = o->next)
            if (o->kind == CONN_TUNNEL_GET && strlen(o->cookie) == cookie_len && memcmp(o->cookie, cookie, cookie_len) == 0) {
                http_reply(r, c, "409 Conflict", NULL);
                return -1;
            }
        c->kind = CONN_TUNNEL_GET;
        memcpy(c->cookie, cookie, cookie_len);
        c->cookie[cookie_len] = '\0';
        http_reply(r, c, "200 OK",
                   "Connection: close\r\nCache-Control: no-store\r\nPragma: no-cache\r\n"
                   "Content-Type: application/x-rtsp-tunnelled\r\n");
        log_debug("rtsp", "%s: HTTP tunnel opened", c->peer_text);
        return (long)head_len;
    }
    struct conn *get = NULL;
    for (struct conn *o = r->conns; o; o = o->next)
        if (o->kind == CONN_TUNNEL_GET && strlen(o->cookie) == cookie_len && memcmp(o->cookie, cookie, cookie_len) == 0 &&
            same_host(&o->peer, &c->peer))
            get = o;
    if (!get) {
        http_reply(r, c, "404 Not Found", NULL);
        return -1;
    }
    c->kind = CONN_TUNNEL_POST;
    c->tunnel_get = get;
    return (long)head_len;
}

/* ---- connection input ------------------------------------------------------------------------------------------ */

static void process_input(struct rtspserver *r, struct conn *c)
{
    size_t pos = 0;
    while (pos < c->in_len && !c->closing) {
        char *p = c->in + pos;
        size_t avail = c->in_len - pos;
        if (c->skip) {
            size_t k = avail < c->skip ? avail : c->skip;
            c->skip -= k;
            pos += k;
            continue;
        }
        if (c->kind == CONN_TUNNEL_POST) {
            if (tunnel_feed(r, c, p, avail) != 0)
                c->closing = 1;
            pos += avail;
            break;
        }
        if (p[0] == '$') {   /* interleaved data from the client: RTCP receiver reports */
            if (avail < RTP_INTERLEAVED_LEN)
                break;
            size_t n = RTP_INTERLEAVED_LEN + ((size_t)(uint8_t)p[2] << 8 | (uint8_t)p[3]);
            if (c->session)
                c->session->last_activity_ms = now_ms();
            if (n > avail) {
                c->skip = n - avail;
                pos += avail;
                continue;
            }
            pos += n;
            continue;
        }
        if (c->kind == CONN_RTSP && c->last_request_ms == 0 && (strncmp(p, "GET ", avail < 4 ? avail : 4) == 0 ||
                                                                strncmp(p, "POST ", avail < 5 ? avail : 5) == 0)) {
            long k = handle_http_head(r, c, p, avail);
            if (k < 0) {
                c->closing = 1;
                break;
            }
            if (k == 0)
                break;
            c->last_request_ms = now_ms();
            pos += (size_t)k;
            continue;
        }
        struct rtsp_request req;
        int rc = rtsp_parse_request(p, avail, &req);
        if (rc == RTSP_PARSE_INCOMPLETE) {
            if (avail >= (size_t)r->s.max_request_bytes || avail >= RTSP_MAX_REQUEST) {
                reply(r, c, 413, -1, NULL, NULL, 0);
                c->closing = 1;
            }
            break;
        }
        if (rc != RTSP_PARSE_OK) {
            int status = rc == RTSP_PARSE_VERSION ? 505 : rc == RTSP_PARSE_TOO_LARGE ? 413 : 400;
            reply(r, c, status, req.cseq, NULL, NULL, 0);
            c->closing = 1;
            break;
        }
        size_t total = req.head_len + req.content_length;
        if (total > avail) {
            if (total > sizeof c->in) {
                reply(r, c, 413, req.cseq, NULL, NULL, 0);
                c->closing = 1;
            }
            break;
        }
        handle_request(r, c, &req);
        pos += total;
    }
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    c->partial_since_ms = c->in_len ? (c->partial_since_ms ? c->partial_since_ms : now_ms()) : 0;
}

/* ---- connections --------------------------------------------------------------------------------------------- */

static void conn_close(struct rtspserver *r, struct conn *c)
{
    if (c->session)
        session_free(r, c->session, "connection closed");
    for (struct session *s = r->sessions; s; s = s->next)
        if (s->ctl == c)
            s->ctl = NULL;
    if (c->kind == CONN_TUNNEL_GET)
        for (struct conn *o = r->conns; o; o = o->next)
            if (o->tunnel_get == c) {
                o->tunnel_get = NULL;
                o->closing = 1;
            }
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->n_conns--;
    atomic_fetch_sub(&r->st_connections, 1);
    if (c->tail)
        media_au_unref(c->tail);
    free(c->out);
    free(c);
}

static void conn_readable(struct rtspserver *r, struct conn *c)
{
    for (int i = 0; i < 4 && !c->closing; i++) {
        size_t room = sizeof c->in - c->in_len;
        if (room == 0) {
            c->closing = 1;
            break;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
        if (n == 0) {
            c->closing = 2;
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            c->closing = 2;
            return;
        }
        c->in_len += (size_t)n;
        if (c->kind == CONN_TUNNEL_POST && !c->tunnel_get) {
            c->closing = 2;
            return;
        }
        process_input(r, c);
        if ((size_t)n < room)
            break;
    }
}

static struct conn *conn_new(struct rtspserver *r, int fd, const struct sockaddr_storage *peer, socklen_t pl,
                             const char *text)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->peer = *peer;
    c->peer_len = pl;
    c->local_len = sizeof c->local;
    getsockname(fd, (struct sockaddr *)&c->local, &c->local_len);
    snprintf(c->peer_text, sizeof c->peer_text, "%s", text);
    c->partial_since_ms = now_ms();   /* the first request must come soon */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        return NULL;
    }
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->n_conns++;
    atomic_fetch_add(&r->st_connections, 1);
    return c;
}

/* Takes over the connections the SOAP listener handed over, with what it
 * had already read of them. */
static void adopt_pending(struct rtspserver *r)
{
    pthread_mutex_lock(&r->cmd_lock);
    struct adopted *list = r->adopt_head;
    r->adopt_head = NULL;
    pthread_mutex_unlock(&r->cmd_lock);
    while (list) {
        struct adopted *a = list;
        list = a->next;
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        char text[64] = "?";
        struct conn *c = NULL;
        if (getpeername(a->fd, (struct sockaddr *)&peer, &pl) == 0 && r->n_conns < r->s.max_connections) {
            sockaddr_text(&peer, text, sizeof text);
            c = conn_new(r, a->fd, &peer, pl, text);
        }
        if (!c) {
            close(a->fd);
        } else {
            memcpy(c->in, a->data, a->len);
            c->in_len = a->len;
            process_input(r, c);
            if (c->closing)
                c->closing = c->closing == 1 && c->out_off < c->out_len ? 1 : 2;
        }
        free(a);
    }
}

static void accept_ready(struct rtspserver *r)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(r->listen_fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        char text[64];
        sockaddr_text(&peer, text, sizeof text);
        if (r->d.ipfilter && !ipfilter_allows(r->d.ipfilter, (struct sockaddr *)&peer)) {
            log_debug("rtsp", "%s: refused by the IP address filter", text);
            close(fd);
            continue;
        }
        int from_peer = 0;
        for (struct conn *o = r->conns; o; o = o->next)
            from_peer += same_host(&o->peer, &peer);
        if (r->n_conns >= r->s.max_connections || from_peer >= r->s.max_connections_per_ip) {
            static const char busy[] = "RTSP/1.0 503 Service Unavailable\r\nServer: " SERVER_NAME "\r\n\r\n";
            ssize_t w = write(fd, busy, sizeof busy - 1);
            (void)w;
            log_info("rtsp", "%s: connection refused: limit of %d connections%s reached", text,
                     from_peer >= r->s.max_connections_per_ip ? r->s.max_connections_per_ip : r->s.max_connections,
                     from_peer >= r->s.max_connections_per_ip ? " per address" : "");
            close(fd);
            continue;
        }
        if (!conn_new(r, fd, &peer, pl, text))
            close(fd);
    }
}

/* Timeouts: sessions nobody keeps alive, connections that send nothing
 * useful, TCP viewers that stopped reading. */
static void housekeeping(struct rtspserver *r, int64_t now)
{
    for (struct session *s = r->sessions, *next; s; s = next) {
        next = s->next;   /* freeing s frees no other session */
        if (s->lower != RTSP_LOWER_TCP && now - s->last_activity_ms > (int64_t)s->timeout_s * 1000)
            session_free(r, s, "timeout");
    }
    for (struct conn *c = r->conns, *next; c; c = next) {
        next = c->next;
        int pending = c->out_off < c->out_len || c->tail || (c->session && c->session->q_n > 0);
        int stuck = pending && c->want_out && now - c->last_progress_ms > (int64_t)r->s.session_timeout_s * 1000;
        int slow_request = c->in_len > 0 && c->partial_since_ms && now - c->partial_since_ms > PARTIAL_REQUEST_MS;
        int silent = c->kind != CONN_TUNNEL_POST && !c->session && c->last_request_ms == 0 && c->partial_since_ms &&
                     now - c->partial_since_ms > PARTIAL_REQUEST_MS;
        int idle = 0;
        if (!c->session && c->kind != CONN_TUNNEL_POST && c->last_request_ms &&
            now - c->last_request_ms > REQUEST_IDLE_MS) {
            idle = 1;
            for (struct session *s = r->sessions; s; s = s->next)
                if (s->ctl == c)
                    idle = 0;
        }
        if (stuck || slow_request || silent || idle || c->closing == 2) {
            log_debug("rtsp", "%s: connection closed (%s)", c->peer_text,
                      stuck ? "not reading" : slow_request || silent ? "incomplete request" : idle ? "idle" : "gone");
            conn_close(r, c);
        }
    }
}

static void run_command(struct rtspserver *r)
{
    pthread_mutex_lock(&r->cmd_lock);
    if (r->cmd == CMD_NONE) {
        pthread_mutex_unlock(&r->cmd_lock);
        return;
    }
    enum command_op op = r->cmd;
    char profile[MEDIA_TOKEN_MAX + 1];
    memcpy(profile, r->cmd_profile, sizeof profile);
    pthread_mutex_unlock(&r->cmd_lock);

    int rc = RTSPSERVER_OK;
    struct media_profile p;
    if (mediacfg_profile(r->d.mediacfg, profile, &p) != MEDIACFG_OK)
        rc = RTSPSERVER_E_NO_PROFILE;
    else if (!p.vec_token[0])
        rc = RTSPSERVER_E_NO_MULTICAST;
    else if (op == CMD_START_MULTICAST) {
        struct group *g = group_get(r, p.vec_token, &rc);
        if (g) {
            rc = group_mc_open(r, g);
            if (rc == 0)
                g->mc_started = 1;
            group_release_if_unused(r, g);
        }
    } else {
        struct group *g = group_find(r, p.vec_token);
        if (g) {
            g->mc_started = 0;
            group_mc_maybe_close(g);
            group_release_if_unused(r, g);
        }
    }
    pthread_mutex_lock(&r->cmd_lock);
    r->cmd = CMD_NONE;
    r->cmd_result = rc;
    r->cmd_done_seq = r->cmd_seq;
    pthread_cond_broadcast(&r->cmd_done);
    pthread_mutex_unlock(&r->cmd_lock);
}

static void *loop_main(void *arg)
{
    struct rtspserver *r = arg;
    pthread_setname_np(pthread_self(), "opennvt-rtsp");
    struct epoll_event evs[128];
    int64_t next_tick = now_ms() + 1000;
    while (!atomic_load(&r->stop)) {
        int n = epoll_wait(r->epfd, evs, 128, TICK_MS);
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr == &r->listen_fd) {
                accept_ready(r);
            } else if (ptr == &r->wake_fd) {
                drain_inboxes(r);
                run_command(r);
                adopt_pending(r);
            } else if (ptr == &r->udp[0].rtp_fd || ptr == &r->udp[1].rtp_fd || ptr == &r->udp[0].rtcp_fd ||
                       ptr == &r->udp[1].rtcp_fd) {
                udp_readable(r, *(int *)ptr);
            } else {
                struct conn *c = ptr;
                if (c->closing == 3)
                    continue;
                if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    conn_readable(r, c);
                if (!c->closing && (evs[i].events & EPOLLOUT) && conn_flush(r, c) < 0)
                    c->closing = 2;
                if (c->closing == 1 && c->out_off >= c->out_len)
                    c->closing = 2;
                if (c->closing == 2) {
                    /* Freed after this batch: later events may still name it. */
                    c->closing = 3;
                }
            }
        }
        for (struct conn *c = r->conns, *next; c; c = next) {
            next = c->next;
            if (c->closing == 3 || c->closing == 2) {
                conn_close(r, c);
            } else if (c->closing == 1 && c->out_off >= c->out_len) {
                conn_close(r, c);
            }
        }
        int64_t now = now_ms();
        if (now >= next_tick) {
            next_tick = now + 1000;
            housekeeping(r, now);
            rtcp_tick(r, now);
        }
    }
    return NULL;
}

/* ---- API ---------------------------------------------------------------------------------------------------------- */

int rtspserver_start(struct rtspserver **out, const struct rtspserver_settings *s, const struct rtspserver_deps *d)
{
    *out = NULL;
    struct rtspserver *r = calloc(1, sizeof *r);
    if (!r)
        return RTSPSERVER_E_NOMEM;
    r->s = *s;
    snprintf(r->bind, sizeof r->bind, "%s", s->bind ? s->bind : "");
    snprintf(r->multicast_if, sizeof r->multicast_if, "%s", s->multicast_if ? s->multicast_if : "");
    r->s.bind = r->bind;
    r->s.multicast_if = r->multicast_if;
    if (r->s.max_connections <= 0)
        r->s.max_connections = 512;
    if (r->s.max_connections_per_ip <= 0)
        r->s.max_connections_per_ip = r->s.max_connections;
    if (r->s.session_timeout_s <= 0)
        r->s.session_timeout_s = 60;
    if (r->s.max_tcp_backlog_kib <= 0)
        r->s.max_tcp_backlog_kib = 2048;
    if (r->s.max_request_bytes <= 0 || r->s.max_request_bytes > RTSP_MAX_REQUEST)
        r->s.max_request_bytes = RTSP_MAX_REQUEST;
    r->d = *d;
    r->udp[0].rtp_fd = r->udp[0].rtcp_fd = r->udp[1].rtp_fd = r->udp[1].rtcp_fd = -1;
    r->gso = 1;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->listen_fd = netlisten_open(r->bind, s->port, "rtsp", &r->port);
    if (r->epfd < 0 || r->wake_fd < 0 || r->listen_fd < 0) {
        if (r->epfd >= 0)
            close(r->epfd);
        if (r->wake_fd >= 0)
            close(r->wake_fd);
        if (r->listen_fd >= 0)
            close(r->listen_fd);
        free(r);
        return RTSPSERVER_E_BIND;
    }
    pthread_mutex_init(&r->cmd_lock, NULL);
    pthread_cond_init(&r->cmd_done, NULL);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &r->listen_fd };
    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->listen_fd, &ev);
    ev.data.ptr = &r->wake_fd;
    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wake_fd, &ev);
    if (pthread_create(&r->thread, NULL, loop_main, r) != 0) {
        close(r->epfd);
        close(r->wake_fd);
        close(r->listen_fd);
        pthread_mutex_destroy(&r->cmd_lock);
        pthread_cond_destroy(&r->cmd_done);
        free(r);
        return RTSPSERVER_E_NOMEM;
    }
    log_info("rtsp", "RTSP server on port %d", r->port);
    *out = r;
    return RTSPSERVER_OK;
}

void rtspserver_stop(struct rtspserver *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    wake_loop(r);
    pthread_join(r->thread, NULL);
    while (r->conns)
        conn_close(r, r->conns);
    while (r->sessions)
        session_free(r, r->sessions, "server stopped");
    while (r->groups) {
        r->groups->mc_started = 0;
        r->groups->mc_sessions = 0;
        group_release_if_unused(r, r->groups);
    }
    for (int i = 0; i < 2; i++) {
        if (r->udp[i].rtp_fd >= 0)
            close(r->udp[i].rtp_fd);
        if (r->udp[i].rtcp_fd >= 0)
            close(r->udp[i].rtcp_fd);
    }
    pthread_mutex_lock(&r->cmd_lock);
    for (struct adopted *a = r->adopt_head, *n; a; a = n) {
        n = a->next;
        close(a->fd);
        free(a);
    }
    r->adopt_head = NULL;
    r->cmd_result = RTSPSERVER_E_STREAM;
    r->cmd_done_seq = r->cmd_seq;
    pthread_cond_broadcast(&r->cmd_done);
    pthread_mutex_unlock(&r->cmd_lock);
    close(r->listen_fd);
    close(r->wake_fd);
    close(r->epfd);
    pthread_mutex_destroy(&r->cmd_lock);
    pthread_cond_destroy(&r->cmd_done);
    free(r);
}

int rtspserver_port(const struct rtspserver *r)
{
    return r ? r->port : -1;
}

static int run_on_loop(struct rtspserver *r, enum command_op op, const char *profile)
{
    if (!r || !profile || strlen(profile) > MEDIA_TOKEN_MAX)
        return RTSPSERVER_E_NO_PROFILE;
    pthread_mutex_lock(&r->cmd_lock);
    while (r->cmd != CMD_NONE && !atomic_load(&r->stop))
        pthread_cond_wait(&r->cmd_done, &r->cmd_lock);
    if (atomic_load(&r->stop)) {
        pthread_mutex_unlock(&r->cmd_lock);
        return RTSPSERVER_E_STREAM;
    }
    r->cmd = op;
    snprintf(r->cmd_profile, sizeof r->cmd_profile, "%s", profile);
    int seq = ++r->cmd_seq;
    wake_loop(r);
    while (r->cmd_done_seq < seq)
        pthread_cond_wait(&r->cmd_done, &r->cmd_lock);
    int rc = r->cmd_result;
    pthread_mutex_unlock(&r->cmd_lock);
    return rc;
}

int rtspserver_adopt(struct rtspserver *r, int fd, const void *data, size_t len)
{
    if (!r || fd < 0 || len > CONN_INBUF || atomic_load(&r->stop))
        return -1;
    struct adopted *a = malloc(sizeof *a + len);
    if (!a)
        return -1;
    a->fd = fd;
    a->len = len;
    memcpy(a->data, data, len);
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    pthread_mutex_lock(&r->cmd_lock);
    a->next = r->adopt_head;
    r->adopt_head = a;
    pthread_mutex_unlock(&r->cmd_lock);
    wake_loop(r);
    return 0;
}

int rtspserver_start_multicast(struct rtspserver *r, const char *profile_token)
{
    return run_on_loop(r, CMD_START_MULTICAST, profile_token);
}

int rtspserver_stop_multicast(struct rtspserver *r, const char *profile_token)
{
    return run_on_loop(r, CMD_STOP_MULTICAST, profile_token);
}

void rtspserver_get_stats(struct rtspserver *r, struct rtspserver_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    out->connections = atomic_load(&r->st_connections);
    out->sessions = atomic_load(&r->st_sessions);
    out->playing = atomic_load(&r->st_playing);
    out->packets_sent = atomic_load(&r->packets_sent);
    out->keyframe_skips = atomic_load(&r->keyframe_skips);
}

const char *rtspserver_strerror(int err)
{
    switch (err) {
    case RTSPSERVER_OK: return "ok";
    case RTSPSERVER_E_BIND: return "cannot open the RTSP listening socket";
    case RTSPSERVER_E_NOMEM: return "out of memory";
    case RTSPSERVER_E_NO_PROFILE: return "no such media profile";
    case RTSPSERVER_E_NO_MULTICAST: return "the profile's encoder configuration has no multicast address and port";
    case RTSPSERVER_E_STREAM: return "the stream could not start";
    }
    return "unknown error";
}

int rtspserver_is_tunnel_request(const char *data, size_t len)
{
    static const char get[] = "GET " RTSP_STREAM_PATH, post[] = "POST " RTSP_STREAM_PATH;
    return (len >= sizeof get - 1 && memcmp(data, get, sizeof get - 1) == 0) ||
           (len >= sizeof post - 1 && memcmp(data, post, sizeof post - 1) == 0);
}
