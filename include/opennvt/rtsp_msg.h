/* RTSP/1.0 messages (RFC 2326 as ONVIF Streaming uses them): bounded request
 * parsing, the Transport header, and response formatting. No sockets. */
#ifndef OPENNVT_RTSP_MSG_H
#define OPENNVT_RTSP_MSG_H

#include <stddef.h>

#define RTSP_MAX_REQUEST 8192          /* request line + headers */
#define RTSP_MAX_BODY 4096             /* SET_PARAMETER / GET_PARAMETER bodies */
#define RTSP_MAX_HEADERS 32
#define RTSP_MAX_URI 1024

enum rtsp_method {
    RTSP_OPTIONS, RTSP_DESCRIBE, RTSP_SETUP, RTSP_PLAY, RTSP_PAUSE, RTSP_TEARDOWN,
    RTSP_GET_PARAMETER, RTSP_SET_PARAMETER, RTSP_ANNOUNCE, RTSP_RECORD, RTSP_REDIRECT,
    RTSP_METHOD_UNKNOWN,
};

struct rtsp_header { const char *name, *value; };   /* point into the parse buffer */

struct rtsp_request {
    enum rtsp_method method;
    char method_text[24];
    char uri[RTSP_MAX_URI + 1];
    int version_ok;                 /* "RTSP/1.0" */
    long cseq;                      /* -1 when absent */
    int n_headers;
    struct rtsp_header headers[RTSP_MAX_HEADERS];
    size_t content_length;
    size_t head_len;                /* bytes of request line + headers (+ blank line) */
};

enum rtsp_parse_result {
    RTSP_PARSE_OK = 0,
    RTSP_PARSE_INCOMPLETE = 1,      /* need more bytes */
    RTSP_PARSE_BAD = -1,            /* 400 */
    RTSP_PARSE_TOO_LARGE = -2,      /* 413 (request header fields too large / body too large) */
    RTSP_PARSE_VERSION = -3,        /* 505 */
};

/* Parses one request head from buf[0..len). Modifies buf (headers are split
 * in place: NUL-terminated). On OK, the body (content_length bytes) follows at
 * buf + head_len; the caller checks it has arrived. */
int rtsp_parse_request(char *buf, size_t len, struct rtsp_request *req);
/* Case-insensitive header lookup; NULL when absent. */
const char *rtsp_header(const struct rtsp_request *req, const char *name);
/* Number of headers with that name. */
int rtsp_header_count(const struct rtsp_request *req, const char *name);

enum rtsp_lower { RTSP_LOWER_UDP, RTSP_LOWER_TCP, RTSP_LOWER_UDP_MULTICAST };

struct rtsp_transport {
    enum rtsp_lower lower;
    int client_rtp_port, client_rtcp_port;   /* UDP unicast */
    int interleaved_rtp, interleaved_rtcp;   /* TCP; -1 when not given */
    char destination[64];                    /* multicast: ignored if the server decides */
    int ttl;                                 /* -1 */
    int port_rtp, port_rtcp;                 /* multicast port=; -1 */
};

/* Picks the first acceptable alternative of a Transport header
 * ("RTP/AVP;unicast;client_port=a-b", "RTP/AVP/TCP;interleaved=0-1",
 * "RTP/AVP;multicast"). Returns 0, or -1 (461 Unsupported Transport). */
int rtsp_parse_transport(const char *value, struct rtsp_transport *out);

const char *rtsp_status_text(int status);
/* "RTSP/1.0 <status> <text>\r\nCSeq: n\r\n" + extra (already CRLF-terminated
 * header lines, may be NULL) + "Content-Length" when body_len > 0 + blank
 * line. cseq < 0 omits CSeq. Returns the length written, or -1. */
int rtsp_format_response(char *out, size_t outlen, int status, long cseq, const char *extra, size_t body_len);

#endif
