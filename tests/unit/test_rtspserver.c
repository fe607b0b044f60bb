/* Unit tests for the RTSP server, driven over real loopback sockets against
 * the real stream hub (built-in test pattern, libx264/MJPEG): methods and
 * status codes, SDP, TCP interleaved and UDP delivery, one encoder shared by
 * several viewers, the HTTP tunnel, Digest challenges, multicast errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "opennvt/accesspolicy.h"
#include "opennvt/authn.h"
#include "opennvt/encoder.h"
#include "opennvt/log.h"
#include "opennvt/mediacfg.h"
#include "opennvt/rtsp_msg.h"
#include "opennvt/rtspserver.h"
#include "opennvt/secretbox.h"
#include "opennvt/source.h"
#include "opennvt/stream.h"
#include "opennvt/users.h"
#include "unit_helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct fixture {
    struct temp_dir dir;
    struct secretbox *box;
    struct users *users;
    struct authn *authn;
    struct source *src;
    struct mediacfg *cfg;
    struct stream_hub *hub;
    struct rtspserver *rtsp;
    int port;
};

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_fixture(void **state, unsigned anonymous_classes)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    struct authn_settings as = { .realm = "OpenNVT", .nonce_lifetime_s = 300, .created_window_s = 300 };
    struct source_settings ss = { .spec = "testsrc", .width = 640, .height = 360, .framerate = 15 };
    struct media_video_source vs = { .token = "VideoSource_1" };
    if (secretbox_open(&fx->box, fx->dir.path) != SECRETBOX_OK ||
        users_open(&fx->users, fx->dir.path, fx->box) != USERS_OK ||
        authn_open(&fx->authn, fx->users, fx->box, &as) != AUTHN_OK || source_open(&fx->src, &ss) != SOURCE_OK)
        return -1;
    /* Anonymous access is only ever granted on a device that has an Administrator. */
    struct users_entry admin = { "admin", "Str0ng-Camera-Pass!", USER_LEVEL_ADMINISTRATOR };
    if (users_create(fx->users, &admin, 1, NULL) != USERS_OK)
        return -1;
    source_format(fx->src, &vs.width, &vs.height, &vs.framerate);
    if (mediacfg_open(&fx->cfg, fx->dir.path, &vs, encoder_available()) != MEDIACFG_OK)
        return -1;
    struct stream_hub_settings hs = { .linger_ms = 0, .encoder_threads = 1, .mtu = RTP_DEFAULT_MTU };
    if (stream_hub_open(&fx->hub, fx->cfg, fx->src, &hs) != STREAM_OK)
        return -1;
    struct rtspserver_settings rs = {
        .bind = "127.0.0.1", .port = 0, .max_connections = 64, .max_connections_per_ip = 64,
        .session_timeout_s = 10, .max_tcp_backlog_kib = 2048, .max_request_bytes = 8192,
        .anonymous_classes = anonymous_classes,
    };
    struct rtspserver_deps deps = { fx->cfg, fx->hub, fx->authn, fx->users, NULL };
    if (rtspserver_start(&fx->rtsp, &rs, &deps) != RTSPSERVER_OK)
        return -1;
    fx->port = rtspserver_port(fx->rtsp);
    *state = fx;
    return 0;
}

static int setup_anonymous(void **state) { return open_fixture(state, ACCESS_BIT(ACCESS_READ_MEDIA)); }
static int setup_protected(void **state) { return open_fixture(state, 0); }

static int teardown(void **state)
{
    struct fixture *fx = *state;
    rtspserver_stop(fx->rtsp);
    stream_hub_close(fx->hub);
    mediacfg_close(fx->cfg);
    source_close(fx->src);
    authn_close(fx->authn);
    users_close(fx->users);
    secretbox_close(fx->box);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

/* ---- a minimal client ------------------------------------------------------------------------------------------- */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_text(int fd, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
}

/* Reads exactly n bytes within timeout_ms; returns 0 or -1. */
static int read_exact(int fd, void *out, size_t n, int timeout_ms)
{
    uint8_t *p = out;
    int64_t end = ms_now() + timeout_ms;
    while (n > 0) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int left = (int)(end - ms_now());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return -1;
        ssize_t k = recv(fd, p, n, 0);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads one RTSP response (head and body), skipping interleaved frames in
 * between. Returns the status, -1 on timeout / close. */
static int read_response(int fd, char *out, size_t outlen)
{
    size_t len = 0;
    for (;;) {
        if (len == 0) {
            uint8_t c;
            if (read_exact(fd, &c, 1, 5000) != 0)
                return -1;
            if (c == '$') {
                uint8_t h[3];
                if (read_exact(fd, h, 3, 5000) != 0)
                    return -1;
                size_t n = (size_t)h[1] << 8 | h[2];
                uint8_t skip[65536];
                if (read_exact(fd, skip, n, 5000) != 0)
                    return -1;
                continue;
            }
            out[len++] = (char)c;
            continue;
        }
        if (len + 1 >= outlen || read_exact(fd, out + len, 1, 5000) != 0)
            return -1;
        len++;
        out[len] = '\0';
        if (len >= 4 && memcmp(out + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    const char *cl = strcasestr(out, "\r\nContent-Length:");
    if (cl) {
        size_t body = strtoul(cl + 17, NULL, 10);
        if (len + body + 1 > outlen || read_exact(fd, out + len, body, 5000) != 0)
            return -1;
        out[len + body] = '\0';
    }
    int status = -1;
    if (sscanf(out, "RTSP/1.0 %d", &status) != 1 && sscanf(out, "HTTP/1.0 %d", &status) != 1)
        return -1;
    return status;
}

static void header_value(const char *resp, const char *name, char *out, size_t outlen)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = strcasestr(resp, key);
    assert_non_null(p);
    p += strlen(key);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    assert_true(n < outlen);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void session_of(const char *resp, char *out, size_t outlen)
{
    header_value(resp, "Session", out, outlen);
    out[strcspn(out, ";")] = '\0';
}

/* Reads interleaved frames until n RTP packets on channel ch arrived
 * (timeout_ms); returns how many arrived and checks their headers. */
static int read_rtp_tcp(int fd, int ch, int n, int timeout_ms, uint32_t *ssrc_out, int *first_nal)
{
    int got = 0;
    int64_t end = ms_now() + timeout_ms;
    uint16_t last_seq = 0;
    while (got < n && ms_now() < end) {
        uint8_t h[4];
        if (read_exact(fd, h, 4, 3000) != 0)
            break;
        assert_int_equal(h[0], '$');
        size_t len = (size_t)h[2] << 8 | h[3];
        uint8_t pkt[65536];
        if (read_exact(fd, pkt, len, 3000) != 0)
            break;
        if (h[1] != ch)
            continue;
        assert_true(len > 12);
        assert_int_equal(pkt[0] >> 6, 2);
        uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
        if (got > 0)
            assert_int_equal(seq, (uint16_t)(last_seq + 1));
        last_seq = seq;
        if (got == 0) {
            if (ssrc_out)
                *ssrc_out = (uint32_t)pkt[8] << 24 | (uint32_t)pkt[9] << 16 | (uint32_t)pkt[10] << 8 | pkt[11];
            if (first_nal)
                *first_nal = pkt[12] & 0x1f;
        }
        got++;
    }
    return got;
}

static void url_of(const struct fixture *fx, const char *profile, const char *suffix, char *out, size_t outlen)
{
    snprintf(out, outlen, "rtsp://127.0.0.1:%d" RTSP_STREAM_PATH "%s%s", fx->port, profile, suffix);
}

/* ---- tests ------------------------------------------------------------------------------------------------------------ */

static void test_options_and_status_codes(void **state)
{
    struct fixture *fx = *state;
    char url[256], resp[8192];
    url_of(fx, "Profile_1", "", url, sizeof url);
    int fd = connect_to(fx->port);
    send_text(fd, "OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "CSeq: 1\r\n"));
    assert_non_null(strstr(resp, "DESCRIBE"));
    assert_non_null(strstr(resp, "GET_PARAMETER"));

    send_text(fd, "FROBNICATE %s RTSP/1.0\r\nCSeq: 2\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 501);
    send_text(fd, "RECORD %s RTSP/1.0\r\nCSeq: 3\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 405);
    send_text(fd, "PLAY %s RTSP/1.0\r\nCSeq: 4\r\nSession: 0123456789abcdef\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 454);
    send_text(fd, "PLAY %s RTSP/1.0\r\nCSeq: 5\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 454);
    url_of(fx, "NoSuchProfile", "", url, sizeof url);
    send_text(fd, "DESCRIBE %s RTSP/1.0\r\nCSeq: 6\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 404);
    send_text(fd, "DESCRIBE rtsp://127.0.0.1/elsewhere RTSP/1.0\r\nCSeq: 7\r\n\r\n");
    assert_int_equal(read_response(fd, resp, sizeof resp), 404);
    url_of(fx, "Profile_1", "", url, sizeof url);
    send_text(fd, "PLAY %s RTSP/1.0\r\nCSeq: 8\r\nRequire: onvif-replay\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 551);
    assert_non_null(strstr(resp, "Unsupported: onvif-replay"));
    send_text(fd, "SETUP %s/track1 RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/SAVP;unicast;client_port=5000-5001\r\n\r\n",
              url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 461);
    send_text(fd, "GET_PARAMETER %s RTSP/1.0\r\nCSeq: 10\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    /* Without CSeq: 400, and the connection still answers. */
    send_text(fd, "OPTIONS %s RTSP/1.0\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 400);
    close(fd);

    fd = connect_to(fx->port);
    send_text(fd, "OPTIONS %s RTSP/2.0\r\nCSeq: 1\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 505);
    close(fd);
}

static void test_describe_gives_sdp(void **state)
{
    struct fixture *fx = *state;
    char url[256], resp[8192], base[512];
    url_of(fx, "Profile_2", "", url, sizeof url);
    int fd = connect_to(fx->port);
    send_text(fd, "DESCRIBE %s RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    header_value(resp, "Content-Type", base, sizeof base);
    assert_string_equal(base, "application/sdp");
    header_value(resp, "Content-Base", base, sizeof base);
    assert_int_equal(base[strlen(base) - 1], '/');
    assert_non_null(strstr(resp, "m=video 0 RTP/AVP 96"));
    assert_non_null(strstr(resp, "a=rtpmap:96 H264/90000"));
    assert_non_null(strstr(resp, "sprop-parameter-sets="));
    assert_non_null(strstr(resp, "a=control:track1"));

    url_of(fx, "Profile_3", "", url, sizeof url);
    send_text(fd, "DESCRIBE %s RTSP/1.0\r\nCSeq: 3\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "m=video 0 RTP/AVP 26"));
    close(fd);
}

/* SETUP over TCP, PLAY, and count packets; returns the connection. */
static int play_tcp(struct fixture *fx, const char *profile, char *session, size_t slen)
{
    char url[256], resp[8192];
    url_of(fx, profile, "/track1", url, sizeof url);
    int fd = connect_to(fx->port);
    send_text(fd, "SETUP %s RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "interleaved=0-1"));
    session_of(resp, session, slen);
    url_of(fx, profile, "", url, sizeof url);
    send_text(fd, "PLAY %s RTSP/1.0\r\nCSeq: 2\r\nSession: %s\r\nRange: npt=0-\r\n\r\n", url, session);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    return fd;
}

static void test_tcp_interleaved(void **state)
{
    struct fixture *fx = *state;
    char session[64], url[256], resp[8192];
    int fd = play_tcp(fx, "Profile_2", session, sizeof session);
    uint32_t ssrc = 0;
    int nal = -1;
    assert_int_equal(read_rtp_tcp(fd, 0, 40, 8000, &ssrc, &nal), 40);
    /* The first packet starts a decodable picture: parameter sets (alone or aggregated). */
    assert_true(nal == 7 || nal == 24);
    struct rtspserver_stats st;
    int64_t end = ms_now() + 2000;   /* the counter follows the write the client already read */
    do
        rtspserver_get_stats(fx->rtsp, &st);
    while (st.packets_sent < 40 && ms_now() < end && usleep(10000) == 0);
    assert_int_equal(st.playing, 1);
    assert_true(st.packets_sent >= 40);

    url_of(fx, "Profile_2", "", url, sizeof url);
    send_text(fd, "TEARDOWN %s RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n", url, session);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    rtspserver_get_stats(fx->rtsp, &st);
    assert_int_equal(st.sessions, 0);
    close(fd);
}

static void test_tcp_jpeg(void **state)
{
    struct fixture *fx = *state;
    char session[64];
    int fd = play_tcp(fx, "Profile_3", session, sizeof session);
    assert_int_equal(read_rtp_tcp(fd, 0, 20, 8000, NULL, NULL), 20);
    close(fd);
}

static void test_udp_unicast(void **state)
{
    struct fixture *fx = *state;
    int rtp = socket(AF_INET, SOCK_DGRAM, 0), rtcp = -1, port = 0;
    for (int p = 41000; p < 42000 && rtcp < 0; p += 2) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(rtp, (struct sockaddr *)&a, sizeof a) != 0)
            continue;
        rtcp = socket(AF_INET, SOCK_DGRAM, 0);
        a.sin_port = htons((uint16_t)(p + 1));
        if (bind(rtcp, (struct sockaddr *)&a, sizeof a) != 0) {
            close(rtcp);
            rtcp = -1;
            close(rtp);
            rtp = socket(AF_INET, SOCK_DGRAM, 0);
            continue;
        }
        port = p;
    }
    assert_true(port > 0);
    char url[256], resp[8192], session[64], transport[256];
    url_of(fx, "Profile_2", "/track1", url, sizeof url);
    int fd = connect_to(fx->port);
    send_text(fd, "SETUP %s RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=%d-%d\r\n\r\n", url, port,
              port + 1);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    header_value(resp, "Transport", transport, sizeof transport);
    assert_non_null(strstr(transport, "server_port="));
    session_of(resp, session, sizeof session);
    url_of(fx, "Profile_2", "", url, sizeof url);
    send_text(fd, "PLAY %s RTSP/1.0\r\nCSeq: 2\r\nSession: %s\r\n\r\n", url, session);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    int got = 0;
    int64_t end = ms_now() + 8000;
    while (got < 30 && ms_now() < end) {
        struct pollfd pfd = { rtp, POLLIN, 0 };
        if (poll(&pfd, 1, 1000) <= 0)
            continue;
        uint8_t pkt[2048];
        ssize_t n = recv(rtp, pkt, sizeof pkt, 0);
        assert_true(n > 12 && n <= RTP_DEFAULT_MTU);   /* one RTP packet per datagram, segmented or not */
        assert_int_equal(pkt[0] >> 6, 2);
        assert_int_equal(pkt[1] & 0x7f, 96);
        got++;
    }
    assert_int_equal(got, 30);
    send_text(fd, "TEARDOWN %s RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n", url, session);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    close(fd);
    close(rtp);
    close(rtcp);
}

/* Several viewers of one profile get the same encoded stream (one SSRC). */
static void test_viewers_share_one_encoder(void **state)
{
    struct fixture *fx = *state;
    enum { N = 5 };
    int fds[N];
    uint32_t ssrc[N];
    char session[64];
    for (int i = 0; i < N; i++)
        fds[i] = play_tcp(fx, "Profile_2", session, sizeof session);
    for (int i = 0; i < N; i++)
        assert_int_equal(read_rtp_tcp(fds[i], 0, 10, 8000, &ssrc[i], NULL), 10);
    for (int i = 1; i < N; i++)
        assert_int_equal(ssrc[i], ssrc[0]);
    struct rtspserver_stats st;
    rtspserver_get_stats(fx->rtsp, &st);
    assert_int_equal(st.playing, N);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    /* Closing the connections ends their sessions. */
    int64_t end = ms_now() + 3000;
    do {
        rtspserver_get_stats(fx->rtsp, &st);
    } while (st.sessions > 0 && ms_now() < end && usleep(20000) == 0);
    assert_int_equal(st.sessions, 0);
}

static void b64(const char *in, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(uint8_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint8_t)in[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static void test_http_tunnel(void **state)
{
    struct fixture *fx = *state;
    char resp[8192], req[1024], enc[2048], url[256];
    int get = connect_to(fx->port);
    send_text(get, "GET " RTSP_STREAM_PATH "Profile_2 HTTP/1.0\r\nx-sessioncookie: abc123\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n");
    assert_int_equal(read_response(get, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "application/x-rtsp-tunnelled"));
    int post = connect_to(fx->port);
    send_text(post, "POST " RTSP_STREAM_PATH "Profile_2 HTTP/1.0\r\nx-sessioncookie: abc123\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n");
    url_of(fx, "Profile_2", "", url, sizeof url);
    snprintf(req, sizeof req, "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n\r\n", url);
    b64(req, enc);
    /* Split mid-quantum: the decoder keeps state across writes. */
    size_t half = strlen(enc) / 2 + 1;
    assert_int_equal(send(post, enc, half, 0), (ssize_t)half);
    usleep(20000);
    send_text(post, "%s", enc + half);
    assert_int_equal(read_response(get, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "m=video"));

    /* An unknown cookie is refused. */
    int stray = connect_to(fx->port);
    send_text(stray, "POST " RTSP_STREAM_PATH "Profile_2 HTTP/1.0\r\nx-sessioncookie: nope\r\n\r\n");
    assert_int_equal(read_response(stray, resp, sizeof resp), 404);
    close(stray);
    close(post);
    close(get);
}

static void test_digest_challenge(void **state)
{
    struct fixture *fx = *state;
    char url[256], resp[8192];
    url_of(fx, "Profile_1", "", url, sizeof url);
    int fd = connect_to(fx->port);
    send_text(fd, "DESCRIBE %s RTSP/1.0\r\nCSeq: 5\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 401);
    assert_non_null(strstr(resp, "WWW-Authenticate: Digest "));
    assert_non_null(strstr(resp, "CSeq: 5"));
    send_text(fd, "DESCRIBE %s RTSP/1.0\r\nCSeq: 6\r\nAuthorization: Digest username=\"x\", realm=\"OpenNVT\", "
                  "nonce=\"00\", uri=\"%s\", response=\"00\"\r\n\r\n",
              url, url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 401);
    /* OPTIONS needs no credentials. */
    send_text(fd, "OPTIONS %s RTSP/1.0\r\nCSeq: 7\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    close(fd);
}

static void test_multicast_needs_an_address(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(rtspserver_start_multicast(fx->rtsp, "NoSuchProfile"), RTSPSERVER_E_NO_PROFILE);
    struct media_vec v;
    /* "0.0.0.0" is how clients say "no multicast address". */
    assert_int_equal(mediacfg_vec(fx->cfg, "VideoEncoder_1", &v), MEDIACFG_OK);
    snprintf(v.multicast.address, sizeof v.multicast.address, "0.0.0.0");
    assert_int_equal(mediacfg_set_vec(fx->cfg, &v), MEDIACFG_OK);
    assert_int_equal(rtspserver_start_multicast(fx->rtsp, "Profile_1"), RTSPSERVER_E_NO_MULTICAST);
    char url0[256], resp0[8192];
    url_of(fx, "Profile_1", "/track1", url0, sizeof url0);
    int fd0 = connect_to(fx->port);
    send_text(fd0, "SETUP %s RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n", url0);
    assert_int_equal(read_response(fd0, resp0, sizeof resp0), 461);
    close(fd0);
    assert_int_equal(mediacfg_vec(fx->cfg, "VideoEncoder_2", &v), MEDIACFG_OK);
    snprintf(v.multicast.address, sizeof v.multicast.address, "239.255.42.42");
    v.multicast.port = 40000;
    v.multicast.ttl = 1;
    assert_int_equal(mediacfg_set_vec(fx->cfg, &v), MEDIACFG_OK);
    assert_int_equal(rtspserver_start_multicast(fx->rtsp, "Profile_2"), RTSPSERVER_OK);
    /* A multicast SETUP answers with the configured group. */
    char url[256], resp[8192];
    url_of(fx, "Profile_2", "/track1", url, sizeof url);
    int fd = connect_to(fx->port);
    send_text(fd, "SETUP %s RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "destination=239.255.42.42;port=40000-40001;ttl=1"));
    close(fd);
    assert_int_equal(rtspserver_stop_multicast(fx->rtsp, "Profile_2"), RTSPSERVER_OK);
}

static void test_garbage_closes_only_that_connection(void **state)
{
    struct fixture *fx = *state;
    char resp[8192], url[256];
    int bad = connect_to(fx->port);
    send_text(bad, "\x01\x02garbage\r\n\r\n");
    assert_int_equal(read_response(bad, resp, sizeof resp), 400);
    close(bad);
    /* An oversized head gets 413 (or the connection closes). */
    int big = connect_to(fx->port);
    char line[RTSP_MAX_REQUEST + 64];
    memset(line, 'a', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    send_text(big, "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: ");
    send(big, line, strlen(line), MSG_NOSIGNAL);
    int st = read_response(big, resp, sizeof resp);
    assert_true(st == 413 || st == -1);
    close(big);
    int fd = connect_to(fx->port);
    url_of(fx, "Profile_1", "", url, sizeof url);
    send_text(fd, "OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    close(fd);
}

/* A change of encoding invalidates the viewers' SDP: their sessions end so
 * that they DESCRIBE again. */
static void test_encoding_change_ends_sessions(void **state)
{
    struct fixture *fx = *state;
    char session[64];
    int fd = play_tcp(fx, "Profile_2", session, sizeof session);
    assert_int_equal(read_rtp_tcp(fd, 0, 5, 8000, NULL, NULL), 5);
    struct media_vec v;
    assert_int_equal(mediacfg_vec(fx->cfg, "VideoEncoder_2", &v), MEDIACFG_OK);
    v.encoding = MEDIA_ENC_JPEG;
    assert_int_equal(mediacfg_set_vec(fx->cfg, &v), MEDIACFG_OK);
    stream_reconfigure(fx->hub, "VideoEncoder_2");
    int64_t end = ms_now() + 8000;
    int closed = 0;
    while (!closed && ms_now() < end) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, 500) <= 0)
            continue;
        uint8_t buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        closed = n <= 0;
    }
    assert_true(closed);
    close(fd);
    /* A new DESCRIBE tells of the JPEG stream. */
    char url[256], resp[8192];
    url_of(fx, "Profile_2", "", url, sizeof url);
    fd = connect_to(fx->port);
    send_text(fd, "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n\r\n", url);
    assert_int_equal(read_response(fd, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "m=video 0 RTP/AVP 26"));
    close(fd);
}

static void quiet_log(void *arg, enum log_level level, const char *area, const char *line)
{
    (void)arg;
    (void)level;
    (void)area;
    (void)line;
}

int main(void)
{
    log_set_sink(quiet_log, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options_and_status_codes, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_describe_gives_sdp, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_interleaved, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_jpeg, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_udp_unicast, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_viewers_share_one_encoder, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_http_tunnel, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_digest_challenge, setup_protected, teardown),
        cmocka_unit_test_setup_teardown(test_multicast_needs_an_address, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_closes_only_that_connection, setup_anonymous, teardown),
        cmocka_unit_test_setup_teardown(test_encoding_change_ends_sessions, setup_anonymous, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
