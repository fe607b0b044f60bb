/* RTSP/1.0 request parsing (bounded, in place, nothing trusted), the
 * Transport header, status texts and response heads. No sockets, no
 * allocation. */
#include "opennvt/rtsp_msg.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CSEQ_LIMIT 2147483648ul        /* CSeq must fit a 32-bit signed long */

/* --- request head ------------------------------------------------------- */

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Finds the blank line ending the head without touching buf, so that an
 * INCOMPLETE answer leaves the buffer as the caller can append to it.
 * Refuses early what no amount of further bytes could repair. Leading empty
 * lines (CRLF sent between requests) are skipped; *start is the request line. */
static int scan_head(const char *buf, size_t len, size_t *start, size_t *head_len)
{
    size_t limit = len < RTSP_MAX_REQUEST ? len : RTSP_MAX_REQUEST;
    size_t ls = 0;
    int lines = 0;
    *start = 0;
    for (size_t i = 0; i < limit; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            size_t end = i > ls && buf[i - 1] == '\r' ? i - 1 : i;
            if (end == ls) {
                if (lines == 0) {
                    ls = *start = i + 1;
                    continue;
                }
                *head_len = i + 1;
                return RTSP_PARSE_OK;
            }
            /* Folded (continuation) lines are obsolete and read differently
             * by different parsers: refused. */
            if (lines > 0 && (buf[ls] == ' ' || buf[ls] == '\t'))
                return RTSP_PARSE_BAD;
            if (++lines > RTSP_MAX_HEADERS + 1)
                return RTSP_PARSE_TOO_LARGE;
            ls = i + 1;
        } else if (c == '\r') {
            if (i + 1 < len && buf[i + 1] != '\n')
                return RTSP_PARSE_BAD;     /* bare CR */
        } else if (is_ctl(c)) {
            return RTSP_PARSE_BAD;
        }
    }
    return len >= RTSP_MAX_REQUEST ? RTSP_PARSE_TOO_LARGE : RTSP_PARSE_INCOMPLETE;
}

/* NUL-terminates the line at p (dropping CR LF or LF); returns the next line. */
static char *cut_line(char *p)
{
    char *nl = strchr(p, '\n');
    *nl = '\0';
    if (nl > p && nl[-1] == '\r')
        nl[-1] = '\0';
    return nl + 1;
}

static const struct { const char *name; enum rtsp_method method; } methods[] = {
    { "OPTIONS", RTSP_OPTIONS }, { "DESCRIBE", RTSP_DESCRIBE }, { "SETUP", RTSP_SETUP },
    { "PLAY", RTSP_PLAY }, { "PAUSE", RTSP_PAUSE }, { "TEARDOWN", RTSP_TEARDOWN },
    { "GET_PARAMETER", RTSP_GET_PARAMETER }, { "SET_PARAMETER", RTSP_SET_PARAMETER },
    { "ANNOUNCE", RTSP_ANNOUNCE }, { "RECORD", RTSP_RECORD }, { "REDIRECT", RTSP_REDIRECT },
};

/* "NAME/digits.digits": a protocol version, even if not ours. */
static int looks_like_version(const char *v)
{
    const char *p = v;
    while (*p >= 'A' && *p <= 'Z')
        p++;
    if (p == v || *p++ != '/')
        return 0;
    const char *d = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == d || *p++ != '.')
        return 0;
    d = p;
    while (*p >= '0' && *p <= '9')
        p++;
    return p != d && *p == '\0';
}

/* "METHOD SP URI SP VERSION", single spaces, visible ASCII only. */
static int parse_request_line(const char *line, struct rtsp_request *req)
{
    const char *p = line, *m = p;
    while (is_tchar((unsigned char)*p))
        p++;
    size_t mlen = (size_t)(p - m);
    if (mlen == 0 || mlen >= sizeof req->method_text || *p != ' ')
        return RTSP_PARSE_BAD;
    memcpy(req->method_text, m, mlen);
    req->method_text[mlen] = '\0';
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(req->method_text, methods[i].name) == 0)
            req->method = methods[i].method;

    const char *u = ++p;
    while (*p > ' ' && *p < 0x7f)
        p++;
    size_t ulen = (size_t)(p - u);
    if (ulen == 0 || *p != ' ')
        return RTSP_PARSE_BAD;
    /* Well-formed but longer than we keep: TOO_LARGE (414), not BAD. */
    if (ulen > RTSP_MAX_URI)
        return RTSP_PARSE_TOO_LARGE;
    memcpy(req->uri, u, ulen);
    req->uri[ulen] = '\0';

    const char *v = ++p;
    if (strcmp(v, "RTSP/1.0") == 0) {
        req->version_ok = 1;
        return RTSP_PARSE_OK;
    }
    return looks_like_version(v) ? RTSP_PARSE_VERSION : RTSP_PARSE_BAD;
}

/* "name:value": a token directly before the colon; the value is trimmed. */
static int parse_header_line(char *line, struct rtsp_header *h)
{
    char *p = line;
    while (is_tchar((unsigned char)*p))
        p++;
    if (p == line || *p != ':')
        return RTSP_PARSE_BAD;
    *p++ = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    char *end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    h->name = line;
    h->value = p;
    return RTSP_PARSE_OK;
}

/* Digits only, no sign, no spaces, below limit. Returns 0 or -1. */
static int parse_decimal(const char *s, unsigned long limit, unsigned long *out)
{
    unsigned long v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned long d = (unsigned long)(*s - '0');
        /* Checked before multiplying: with a 32-bit long, v * 10 could wrap
         * back below the limit. */
        if (v > (limit - 1 - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int rtsp_parse_request(char *buf, size_t len, struct rtsp_request *req)
{
    if (!req)
        return RTSP_PARSE_BAD;
    memset(req, 0, sizeof *req);
    req->method = RTSP_METHOD_UNKNOWN;
    req->cseq = -1;
    if (!buf)
        return RTSP_PARSE_INCOMPLETE;

    size_t start, head_len;
    int rc = scan_head(buf, len, &start, &head_len);
    if (rc != RTSP_PARSE_OK)
        return rc;
    req->head_len = head_len;

    /* The head is complete and holds no NUL (control characters were
     * refused), so from here on lines are C strings. The blank line becomes
     * the terminator; what follows it is body and is not touched. */
    buf[head_len - 1] = '\0';
    if (head_len >= 2 && buf[head_len - 2] == '\r')
        buf[head_len - 2] = '\0';
    char *line = buf + start;
    char *next = cut_line(line);
    int line_rc = parse_request_line(line, req);

    int hdr_rc = RTSP_PARSE_OK;
    while (*next) {
        line = next;
        next = cut_line(line);
        if (req->n_headers >= RTSP_MAX_HEADERS) {
            hdr_rc = RTSP_PARSE_TOO_LARGE;    /* unreachable: scan_head counted */
            break;
        }
        if (parse_header_line(line, &req->headers[req->n_headers]) != RTSP_PARSE_OK) {
            hdr_rc = RTSP_PARSE_BAD;
            break;
        }
        req->n_headers++;
    }

    /* CSeq first, so that the caller can echo it in whatever error it sends. */
    int cseq_rc = RTSP_PARSE_OK;
    const char *cseq = rtsp_header(req, "CSeq");
    if (cseq) {
        unsigned long v;
        if (rtsp_header_count(req, "CSeq") != 1 || parse_decimal(cseq, CSEQ_LIMIT, &v) != 0)
            cseq_rc = RTSP_PARSE_BAD;
        else
            req->cseq = (long)v;
    }

    int cl_rc = RTSP_PARSE_OK;
    const char *cl = rtsp_header(req, "Content-Length");
    if (cl) {
        unsigned long v;
        const char *d = cl;
        while (*d >= '0' && *d <= '9')
            d++;
        if (rtsp_header_count(req, "Content-Length") != 1 || d == cl || *d)
            cl_rc = RTSP_PARSE_BAD;
        else if (parse_decimal(cl, (unsigned long)RTSP_MAX_BODY + 1, &v) != 0)
            cl_rc = RTSP_PARSE_TOO_LARGE;     /* digits only, but more than we accept */
        else
            req->content_length = v;
    }

    if (line_rc != RTSP_PARSE_OK)
        return line_rc;
    if (hdr_rc != RTSP_PARSE_OK)
        return hdr_rc;
    if (cseq_rc != RTSP_PARSE_OK)
        return cseq_rc;
    return cl_rc;
}

const char *rtsp_header(const struct rtsp_request *req, const char *name)
{
    for (int i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

int rtsp_header_count(const struct rtsp_request *req, const char *name)
{
    int n = 0;
    for (int i = 0; i < req->n_headers; i++)
        n += strcasecmp(req->headers[i].name, name) == 0;
    return n;
}

/* --- Transport ---------------------------------------------------------- */

struct span {
    const char *p;
    size_t n;
};

static struct span span_trim(struct span s)
{
    while (s.n && (*s.p == ' ' || *s.p == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

static int span_is(struct span s, const char *lit)
{
    return strlen(lit) == s.n && strncasecmp(s.p, lit, s.n) == 0;
}

/* Splits s at the first sep outside double quotes: *head is before it, s
 * becomes what follows. Returns 0 when s was empty. */
static int span_next(struct span *s, char sep, struct span *head)
{
    if (s->n == 0 && !s->p)
        return 0;
    int quoted = 0;
    size_t i = 0;
    while (i < s->n && (quoted || s->p[i] != sep)) {
        if (s->p[i] == '"')
            quoted = !quoted;
        i++;
    }
    head->p = s->p;
    head->n = i;
    if (i < s->n) {
        s->p += i + 1;
        s->n -= i + 1;
    } else {
        s->p = NULL;
        s->n = 0;
    }
    return 1;
}

static int span_uint(struct span s, int min, int max, int *out)
{
    if (s.n == 0 || s.n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "a" or "a-b" with min <= a < b <= max; a single value means a and a+1. */
static int span_range(struct span s, int min, int max, int *a, int *b)
{
    const char *dash = memchr(s.p, '-', s.n);
    struct span lo = { s.p, dash ? (size_t)(dash - s.p) : s.n };
    if (span_uint(lo, min, max, a) != 0)
        return -1;
    if (!dash) {
        if (*a >= max)
            return -1;
        *b = *a + 1;
        return 0;
    }
    struct span hi = { dash + 1, s.n - lo.n - 1 };
    if (span_uint(hi, min, max, b) != 0 || *b <= *a)
        return -1;
    return 0;
}

static int destination_valid(struct span v, size_t cap)
{
    if (v.n == 0 || v.n >= cap)
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
              c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static struct span unquote(struct span v)
{
    if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"') {
        v.p++;
        v.n -= 2;
    }
    return v;
}

/* One alternative, "spec;param;param=value...". Returns 0 if we serve it. */
static int parse_alternative(struct span alt, struct rtsp_transport *t)
{
    struct span rest = span_trim(alt), spec;
    int tcp, unicast = 0, multicast = 0, have_client = 0;

    memset(t, 0, sizeof *t);
    t->client_rtp_port = t->client_rtcp_port = -1;
    t->interleaved_rtp = t->interleaved_rtcp = -1;
    t->ttl = t->port_rtp = t->port_rtcp = -1;

    if (rest.n == 0 || !span_next(&rest, ';', &spec))
        return -1;
    spec = span_trim(spec);
    if (span_is(spec, "RTP/AVP") || span_is(spec, "RTP/AVP/UDP"))
        tcp = 0;
    else if (span_is(spec, "RTP/AVP/TCP"))
        tcp = 1;
    else
        return -1;

    struct span param;
    while (rest.p && span_next(&rest, ';', &param)) {
        param = span_trim(param);
        if (param.n == 0)
            continue;                              /* "a;;b" or a trailing ';' */
        const char *eq = memchr(param.p, '=', param.n);
        struct span name = span_trim((struct span){ param.p, eq ? (size_t)(eq - param.p) : param.n });
        struct span value = { "", 0 };
        if (eq)
            value = span_trim((struct span){ eq + 1, (size_t)(param.p + param.n - eq - 1) });

        if (span_is(name, "unicast")) {
            unicast = 1;
        } else if (span_is(name, "multicast")) {
            multicast = 1;
        } else if (span_is(name, "client_port")) {
            if (span_range(value, 1, 65535, &t->client_rtp_port, &t->client_rtcp_port) != 0)
                return -1;
            have_client = 1;
        } else if (span_is(name, "interleaved")) {
            if (span_range(value, 0, 255, &t->interleaved_rtp, &t->interleaved_rtcp) != 0)
                return -1;
        } else if (span_is(name, "port")) {
            if (span_range(value, 1, 65535, &t->port_rtp, &t->port_rtcp) != 0)
                return -1;
        } else if (span_is(name, "ttl")) {
            if (span_uint(value, 1, 255, &t->ttl) != 0)
                return -1;
        } else if (span_is(name, "destination")) {
            if (eq) {
                if (!destination_valid(value, sizeof t->destination))
                    return -1;
                memcpy(t->destination, value.p, value.n);
                t->destination[value.n] = '\0';
            }
        } else if (span_is(name, "mode")) {
            if (!span_is(unquote(value), "PLAY"))
                return -1;                         /* we only send */
        }
        /* server_port, ssrc, source, layers, append... say nothing we need. */
    }

    if (unicast && multicast)
        return -1;
    if (tcp) {
        if (multicast)
            return -1;
        t->lower = RTSP_LOWER_TCP;
        t->client_rtp_port = t->client_rtcp_port = -1;
        t->port_rtp = t->port_rtcp = -1;
        t->ttl = -1;
        t->destination[0] = '\0';
        return 0;
    }
    t->interleaved_rtp = t->interleaved_rtcp = -1;
    /* RFC 2326 makes multicast the default, but a client that names its
     * ports means unicast. */
    if (multicast || (!unicast && !have_client)) {
        t->lower = RTSP_LOWER_UDP_MULTICAST;
        t->client_rtp_port = t->client_rtcp_port = -1;
        return 0;
    }
    if (!have_client)
        return -1;
    t->lower = RTSP_LOWER_UDP;
    t->port_rtp = t->port_rtcp = -1;
    t->ttl = -1;
    t->destination[0] = '\0';
    return 0;
}

int rtsp_parse_transport(const char *value, struct rtsp_transport *out)
{
    if (!value || !out)
        return -1;
    struct span rest = { value, strlen(value) }, alt;
    struct rtsp_transport t;
    while (rest.p && span_next(&rest, ',', &alt)) {
        if (parse_alternative(alt, &t) == 0) {
            *out = t;
            return 0;
        }
    }
    return -1;
}

/* --- responses ---------------------------------------------------------- */

const char *rtsp_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 250: return "Low on Storage Space";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Moved Temporarily";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Time-out";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Large";
    case 415: return "Unsupported Media Type";
    case 451: return "Parameter Not Understood";
    case 452: return "Conference Not Found";
    case 453: return "Not Enough Bandwidth";
    case 454: return "Session Not Found";
    case 455: return "Method Not Valid in This State";
    case 456: return "Header Field Not Valid for Resource";
    case 457: return "Invalid Range";
    case 458: return "Parameter Is Read-Only";
    case 459: return "Aggregate Operation Not Allowed";
    case 460: return "Only Aggregate Operation Allowed";
    case 461: return "Unsupported Transport";
    case 462: return "Destination Unreachable";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Time-out";
    case 505: return "RTSP Version Not Supported";
    case 551: return "Option Not Supported";
    default: break;
    }
    if (status >= 200 && status < 300)
        return "OK";
    if (status >= 300 && status < 400)
        return "Redirection";
    if (status >= 400 && status < 500)
        return "Client Error";
    if (status >= 500 && status < 600)
        return "Server Error";
    return "Unknown";
}

struct out_buf {
    char *p;
    size_t cap, len;
    int err;
};

__attribute__((format(printf, 2, 3))) static void ob_printf(struct out_buf *b, const char *fmt, ...)
{
    if (b->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len)
        b->err = 1;
    else
        b->len += (size_t)n;
}

/* Extra goes out verbatim, so it must be whole header lines: each non-empty
 * and ended by CRLF, no other CR or LF (which would end the head early or
 * start a line of its own) and no other control character. */
static int extra_valid(const char *extra)
{
    const unsigned char *p = (const unsigned char *)extra;
    size_t line_len = 0;
    for (; *p; p++) {
        if (*p == '\r') {
            if (p[1] != '\n' || line_len == 0)
                return 0;
            p++;
            line_len = 0;
        } else if (is_ctl(*p)) {
            return 0;
        } else {
            line_len++;
        }
    }
    return line_len == 0;
}

int rtsp_format_response(char *out, size_t outlen, int status, long cseq, const char *extra, size_t body_len)
{
    if (!out || outlen == 0)
        return -1;
    out[0] = '\0';
    if (status < 100 || status > 999 || (extra && !extra_valid(extra)))
        return -1;
    struct out_buf b = { out, outlen, 0, 0 };
    ob_printf(&b, "RTSP/1.0 %d %s\r\n", status, rtsp_status_text(status));
    if (cseq >= 0)
        ob_printf(&b, "CSeq: %ld\r\n", cseq);
    if (extra)
        ob_printf(&b, "%s", extra);
    if (body_len > 0)
        ob_printf(&b, "Content-Length: %zu\r\n", body_len);
    ob_printf(&b, "\r\n");
    if (b.err || b.len > INT32_MAX) {
        out[0] = '\0';
        return -1;
    }
    return (int)b.len;
}
