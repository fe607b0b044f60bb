/* Incremental HTTP/1.x request framing: finds where one request ends in a
 * buffer (headers, then Content-Length or chunked body) without trusting any
 * size the client claims beyond the configured limits. No allocation. */
#include "opennvt/httpframe.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *find_crlfcrlf(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return buf + i + 1;
    return NULL;
}

/* RFC 9110 token characters, for field names. */
static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field line is "name:value" with a token name directly before the colon
 * and no CR, LF or NUL inside (RFC 9112 section 5): anything else is refused,
 * since a lenient peer parser could read the line differently. */
static int field_line_valid(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= len || line[i] != ':')
        return 0;
    for (; i < len; i++)
        if (line[i] == '\r' || line[i] == '\n' || line[i] == '\0')
            return 0;
    return 1;
}

/* When the field line names `name`, points v and vlen at its value with the
 * surrounding blanks trimmed and returns 1. */
static int header_value(const char *line, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return 0;
    const char *b = line + n + 1;
    const char *end = line + len;
    while (b < end && (*b == ' ' || *b == '\t'))
        b++;
    while (end > b && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *v = b;
    *vlen = (size_t)(end - b);
    return 1;
}

/* Copies a header value bounded by outlen (for values only compared). */
static void copy_value(const char *v, size_t vlen, char *out, size_t outlen)
{
    if (vlen >= outlen)
        vlen = outlen - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
}

/* Parses all digits of a Content-Length value; -1 when not a number,
 * -2 when larger than limit. */
static long parse_content_length(const char *v, size_t vlen, size_t limit)
{
    if (vlen == 0)
        return -1;
    unsigned long long n = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (!isdigit((unsigned char)v[i]))
            return -1;
        n = n * 10 + (unsigned)(v[i] - '0');
        if (n > limit)
            return -2;
    }
    return (long)n;
}

/* Scans a chunked body starting at p; returns the body's total length when
 * complete, 0 when more bytes are needed, -1 when malformed. */
static long chunked_length(const char *p, size_t len)
{
    size_t pos = 0;
    for (;;) {
        size_t line_end = pos;
        while (line_end + 1 < len && !(p[line_end] == '\r' && p[line_end + 1] == '\n'))
            line_end++;
        if (line_end + 1 >= len)
            return len - pos > 64 ? -1 : 0; /* a chunk-size line is short */
        unsigned long size = 0;
        size_t i = pos;
        int digits = 0;
        while (i < line_end && isxdigit((unsigned char)p[i])) {
            if (size > (1UL << 30))
                return -1;
            size = size * 16 + (unsigned long)(isdigit((unsigned char)p[i]) ? p[i] - '0' : (tolower((unsigned char)p[i]) - 'a' + 10));
            i++;
            digits++;
        }
        if (!digits || (i < line_end && p[i] != ';'))
            return -1;
        pos = line_end + 2;
        if (size == 0) {
            /* trailers end with an empty line */
            for (;;) {
                size_t e = pos;
                while (e + 1 < len && !(p[e] == '\r' && p[e + 1] == '\n'))
                    e++;
                if (e + 1 >= len)
                    return 0;
                if (e == pos)
                    return (long)(e + 2);
                pos = e + 2;
            }
        }
        if (len - pos < size + 2)
            return 0;
        if (p[pos + size] != '\r' || p[pos + size + 1] != '\n')
            return -1;
        pos += size + 2;
    }
}

int httpframe_parse(const char *buf, size_t len, size_t max_header, size_t max_total, struct httpframe *f)
{
    memset(f, 0, sizeof *f);
    const char *hend = find_crlfcrlf(buf, len < max_header ? len : max_header);
    if (!hend)
        return len >= max_header ? HTTPFRAME_HEADER_TOO_LARGE : HTTPFRAME_INCOMPLETE;
    f->header_len = (size_t)(hend - buf);

    /* request line: METHOD SP target SP HTTP/1.x */
    const char *eol = memchr(buf, '\r', f->header_len);
    if (!eol || eol[1] != '\n' || memchr(buf, '\n', (size_t)(eol - buf)) || memchr(buf, '\0', (size_t)(eol - buf)))
        return HTTPFRAME_BAD_REQUEST;
    const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    if (!sp1 || sp1 == buf || (size_t)(sp1 - buf) >= sizeof f->method)
        return HTTPFRAME_BAD_REQUEST;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1 || (size_t)(sp2 - sp1 - 1) >= sizeof f->path)
        return sp2 && (size_t)(sp2 - sp1 - 1) >= sizeof f->path ? HTTPFRAME_URI_TOO_LONG : HTTPFRAME_BAD_REQUEST;
    if (eol - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
        return HTTPFRAME_BAD_REQUEST;
    memcpy(f->method, buf, (size_t)(sp1 - buf));
    for (const char *m = f->method; *m; m++)
        if (!isupper((unsigned char)*m))
            return HTTPFRAME_BAD_REQUEST;
    memcpy(f->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    for (const char *c = f->path; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return HTTPFRAME_BAD_REQUEST;
    f->http11 = sp2[8] == '1';

    long content_length = -1;
    int chunked = 0;
    const char *line = eol + 2;
    while (line < hend - 2) {
        const char *le = memchr(line, '\r', (size_t)(hend - line));
        if (!le || le[1] != '\n')
            return HTTPFRAME_BAD_REQUEST;
        size_t ll = (size_t)(le - line);
        const char *v;
        size_t vl;
        char value[128];
        if (ll == 0)
            break;
        if (!field_line_valid(line, ll))
            return HTTPFRAME_BAD_REQUEST; /* also refuses obsolete line folding */
        if (header_value(line, ll, "Content-Length", &v, &vl)) {
            long cl = parse_content_length(v, vl, max_total);
            if (cl == -1 || (cl >= 0 && content_length >= 0 && cl != content_length))
                return HTTPFRAME_BAD_REQUEST;
            if (cl == -2)
                return HTTPFRAME_TOO_LARGE;
            content_length = cl;
        } else if (header_value(line, ll, "Transfer-Encoding", &v, &vl)) {
            if (vl != 7 || strncasecmp(v, "chunked", 7) != 0)
                return HTTPFRAME_NOT_IMPLEMENTED;
            chunked = 1;
        } else if (header_value(line, ll, "Expect", &v, &vl)) {
            if (vl != 12 || strncasecmp(v, "100-continue", 12) != 0)
                return HTTPFRAME_EXPECTATION_FAILED;
            f->expect_continue = 1;
        } else if (header_value(line, ll, "Content-Type", &v, &vl)) {
            size_t k = 0;
            for (; k < vl && v[k] != ';' && v[k] != ' ' && k + 1 < sizeof f->content_type; k++)
                f->content_type[k] = (char)tolower((unsigned char)v[k]);
            f->content_type[k] = '\0';
        } else if (header_value(line, ll, "Authorization", &v, &vl)) {
            f->authorization_off = (size_t)(v - buf);
            f->authorization_len = vl;
            f->authorization_count++;
        } else if (header_value(line, ll, "Connection", &v, &vl)) {
            copy_value(v, vl, value, sizeof value);
            if (strcasestr(value, "close"))
                f->connection_close = 1;
            if (strcasestr(value, "keep-alive"))
                f->connection_keep_alive = 1;
        }
        line = le + 2;
    }
    if (chunked && content_length >= 0)
        return HTTPFRAME_BAD_REQUEST; /* request smuggling shape */
    f->chunked = chunked;

    size_t avail = len - f->header_len;
    if (chunked) {
        long body = chunked_length(hend, avail);
        if (body < 0)
            return HTTPFRAME_BAD_REQUEST;
        if (body == 0)
            return f->header_len + avail >= max_total ? HTTPFRAME_TOO_LARGE : HTTPFRAME_NEED_BODY;
        if (f->header_len + (size_t)body > max_total)
            return HTTPFRAME_TOO_LARGE;
        f->body_len = (size_t)body;
    } else if (content_length >= 0) {
        f->body_len = (size_t)content_length;
        if (f->header_len + f->body_len > max_total)
            return HTTPFRAME_TOO_LARGE;
        if (avail < f->body_len)
            return HTTPFRAME_NEED_BODY;
    } else if (strcmp(f->method, "POST") == 0) {
        return HTTPFRAME_LENGTH_REQUIRED;
    }
    f->total_len = f->header_len + f->body_len;
    return HTTPFRAME_COMPLETE;
}

int httpframe_status(int result, const char **reason)
{
    switch (result) {
    case HTTPFRAME_BAD_REQUEST: *reason = "Bad Request"; return 400;
    case HTTPFRAME_LENGTH_REQUIRED: *reason = "Length Required"; return 411;
    case HTTPFRAME_TOO_LARGE: *reason = "Payload Too Large"; return 413;
    case HTTPFRAME_URI_TOO_LONG: *reason = "URI Too Long"; return 414;
    case HTTPFRAME_EXPECTATION_FAILED: *reason = "Expectation Failed"; return 417;
    case HTTPFRAME_HEADER_TOO_LARGE: *reason = "Request Header Fields Too Large"; return 431;
    case HTTPFRAME_NOT_IMPLEMENTED: *reason = "Not Implemented"; return 501;
    }
    *reason = "Bad Request";
    return 400;
}
