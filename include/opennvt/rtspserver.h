/* The RTSP server (RFC 2326 + ONVIF Streaming): one epoll loop serves every
 * RTSP connection and sends RTP for every viewer: UDP unicast (RTCP sender
 * reports), RTP interleaved in the RTSP TCP connection, RTSP tunnelled in an
 * HTTP GET/POST pair, and multicast. Viewers of one stream share the encoded
 * packets by reference; a new viewer starts at the most recent keyframe; a
 * TCP viewer that cannot keep up skips to the next keyframe and never stalls
 * the others. Every connection passes the IP filter right after accept and
 * the gate (RTSP Digest against the device's users, READ_MEDIA class). */
#ifndef OPENNVT_RTSPSERVER_H
#define OPENNVT_RTSPSERVER_H

/* Stream URLs: rtsp://host:port/stream/<profile token> (also the HTTP tunnel's path). */
#define RTSP_STREAM_PATH "/stream/"

#include <stddef.h>

struct mediacfg;
struct stream_hub;
struct authn;
struct users;
struct ipfilter;

enum rtspserver_error {
    RTSPSERVER_OK = 0,
    RTSPSERVER_E_BIND = -1,
    RTSPSERVER_E_NOMEM = -2,
    RTSPSERVER_E_NO_PROFILE = -3,
    RTSPSERVER_E_NO_MULTICAST = -4,   /* the profile's encoder has no multicast address/port */
    RTSPSERVER_E_STREAM = -5,
};

struct rtspserver_settings {
    const char *bind;                 /* "" / NULL: all addresses (IPv6 dual stack) */
    int port;                         /* 0: an ephemeral port */
    int max_connections;              /* all RTSP connections */
    int max_connections_per_ip;
    int session_timeout_s;            /* sessions without a request / RTCP for this long are closed */
    int max_tcp_backlog_kib;          /* a TCP viewer further behind skips to the next keyframe */
    int max_request_bytes;            /* request line + headers */
    unsigned anonymous_classes;       /* ACCESS_BIT()s granted without credentials */
    const char *multicast_if;         /* interface for multicast sends; "" default */
};

struct rtspserver_deps {
    struct mediacfg *mediacfg;
    struct stream_hub *streams;
    struct authn *authn;
    struct users *users;
    struct ipfilter *ipfilter;
};

struct rtspserver;

/* Binds and starts the loop thread. */
int rtspserver_start(struct rtspserver **out, const struct rtspserver_settings *s, const struct rtspserver_deps *d);
/* Closes every connection and session, joins the thread. */
void rtspserver_stop(struct rtspserver *r);
int rtspserver_port(const struct rtspserver *r);

/* RTSP over HTTP on the SOAP port: the SOAP listener hands over a plain
 * HTTP connection whose first request is a tunnel GET or POST on
 * RTSP_STREAM_PATH, with the bytes it has read. Thread-safe. Returns 0 (the
 * server owns fd now) or -1 (the caller still does). */
int rtspserver_adopt(struct rtspserver *r, int fd, const void *data, size_t len);
/* 1 when the buffered start of an HTTP request is an RTSP tunnel leg. */
int rtspserver_is_tunnel_request(const char *data, size_t len);

/* StartMulticastStreaming / StopMulticastStreaming: the server sends the
 * profile's stream to its encoder configuration's multicast group whether or
 * not an RTSP client asked for it. */
int rtspserver_start_multicast(struct rtspserver *r, const char *profile_token);
int rtspserver_stop_multicast(struct rtspserver *r, const char *profile_token);

/* Counters for tests and logs. */
struct rtspserver_stats {
    int connections, sessions, playing;
    unsigned long long packets_sent, keyframe_skips;
};
void rtspserver_get_stats(struct rtspserver *r, struct rtspserver_stats *out);

const char *rtspserver_strerror(int err);

#endif
