/* Unit tests for rtsp_msg: RTSP/1.0 request heads (methods, CSeq, headers,
 * Content-Length, pipelining), what is refused and with which result
 * (syntax, version, sizes, control characters), the Transport header
 * alternatives, and the response heads. Every parse runs on a buffer of
 * exactly the input's length, so that a read past it shows under valgrind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opennvt/rtsp_msg.h"
#include "unit_helpers.h"

/* --- helpers ------------------------------------------------------------- */

/* A heap copy of n bytes (at least one byte allocated, none to spare). */
static char *dup_bytes(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, s, n);
    return b;
}

/* Parses text (its strlen) from a private copy; *buf keeps the copy, which
 * the header pointers point into, until the caller frees it. */
static int parse_keep(const char *text, struct rtsp_request *req, char **buf)
{
    size_t n = strlen(text);
    *buf = dup_bytes(text, n);
    return rtsp_parse_request(*buf, n, req);
}

/* Parses text and forgets the buffer: for results only. */
static int parse(const char *text, struct rtsp_request *req)
{
    char *buf;
    int rc = parse_keep(text, req, &buf);
    free(buf);
    return rc;
}

static int parse_rc(const char *text)
{
    struct rtsp_request req;
    return parse(text, &req);
}

/* A request "OPTIONS * RTSP/1.0" with CSeq 1 and the given header lines
 * (CRLF-terminated) inserted. With buf, the parse buffer is kept there for
 * header lookups; without, it is freed. */
static int parse_with_headers(const char *lines, struct rtsp_request *req, char **buf)
{
    char text[4096], *b;
    int n = snprintf(text, sizeof text, "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n%s\r\n", lines);
    assert_true(n > 0 && (size_t)n < sizeof text);
    int rc = parse_keep(text, req, &b);
    if (buf)
        *buf = b;
    else
        free(b);
    return rc;
}

static int transport(const char *value, struct rtsp_transport *t)
{
    memset(t, 0x5a, sizeof *t);
    return rtsp_parse_transport(value, t);
}

/* --- complete requests --------------------------------------------------- */

static const char req_options[] = "OPTIONS rtsp://192.0.2.10/stream1 RTSP/1.0\r\n"
                                  "CSeq: 1\r\n"
                                  "User-Agent: LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)\r\n"
                                  "\r\n";

static const char req_describe[] = "DESCRIBE rtsp://192.0.2.10/stream1 RTSP/1.0\r\n"
                                   "CSeq: 2\r\n"
                                   "Accept: application/sdp\r\n"
                                   "Authorization: Digest username=\"admin\", realm=\"cam\", nonce=\"abc\", "
                                   "uri=\"rtsp://192.0.2.10/stream1\", response=\"0123456789abcdef\"\r\n"
                                   "\r\n";

static const char req_setup[] = "SETUP rtsp://192.0.2.10/stream1/trackID=1 RTSP/1.0\r\n"
                                "CSeq: 3\r\n"
                                "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                                "\r\n";

static const char req_play[] = "PLAY rtsp://192.0.2.10/stream1/ RTSP/1.0\r\n"
                               "CSeq: 4\r\n"
                               "Session: 12345678\r\n"
                               "Range: npt=0.000-\r\n"
                               "\r\n";

static const char req_teardown[] = "TEARDOWN rtsp://192.0.2.10/stream1/ RTSP/1.0\r\n"
                                   "CSeq: 5\r\n"
                                   "Session: 12345678\r\n"
                                   "\r\n";

static const char req_get_parameter[] = "GET_PARAMETER rtsp://192.0.2.10/stream1/ RTSP/1.0\r\n"
                                        "CSeq: 6\r\n"
                                        "Session: 12345678\r\n"
                                        "Content-Type: text/parameters\r\n"
                                        "Content-Length: 16\r\n"
                                        "\r\n"
                                        "packets_received";
#define GET_PARAMETER_BODY_LEN 16

static void test_options(void **state)
{
    (void)state;
    struct rtsp_request req;
    char *buf;
    assert_int_equal(parse_keep(req_options, &req, &buf), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_OPTIONS);
    assert_string_equal(req.method_text, "OPTIONS");
    assert_string_equal(req.uri, "rtsp://192.0.2.10/stream1");
    assert_int_equal(req.version_ok, 1);
    assert_int_equal(req.cseq, 1);
    assert_int_equal(req.n_headers, 2);
    assert_string_equal(req.headers[0].name, "CSeq");
    assert_string_equal(req.headers[0].value, "1");
    assert_string_equal(req.headers[1].name, "User-Agent");
    assert_string_equal(req.headers[1].value, "LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)");
    assert_int_equal(req.content_length, 0);
    assert_int_equal(req.head_len, strlen(req_options));
    free(buf);

    /* The asterisk form, no headers at all. */
    assert_int_equal(parse_keep("OPTIONS * RTSP/1.0\r\n\r\n", &req, &buf), RTSP_PARSE_OK);
    assert_string_equal(req.uri, "*");
    assert_int_equal(req.n_headers, 0);
    assert_int_equal(req.cseq, -1);
    assert_int_equal(req.head_len, 22);
    free(buf);
}

static void test_describe(void **state)
{
    (void)state;
    struct rtsp_request req;
    char *buf;
    assert_int_equal(parse_keep(req_describe, &req, &buf), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_DESCRIBE);
    assert_int_equal(req.cseq, 2);
    assert_string_equal(rtsp_header(&req, "Accept"), "application/sdp");
    assert_string_equal(rtsp_header(&req, "Authorization"),
                        "Digest username=\"admin\", realm=\"cam\", nonce=\"abc\", "
                        "uri=\"rtsp://192.0.2.10/stream1\", response=\"0123456789abcdef\"");
    assert_int_equal(req.head_len, strlen(req_describe));
    free(buf);
}

static void test_setup_play_teardown(void **state)
{
    (void)state;
    struct rtsp_request req;
    char *buf;
    assert_int_equal(parse_keep(req_setup, &req, &buf), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_SETUP);
    assert_string_equal(req.uri, "rtsp://192.0.2.10/stream1/trackID=1");
    assert_int_equal(req.cseq, 3);
    assert_string_equal(rtsp_header(&req, "Transport"), "RTP/AVP/TCP;unicast;interleaved=0-1");
    free(buf);

    assert_int_equal(parse_keep(req_play, &req, &buf), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_PLAY);
    assert_int_equal(req.cseq, 4);
    assert_string_equal(rtsp_header(&req, "Session"), "12345678");
    assert_string_equal(rtsp_header(&req, "Range"), "npt=0.000-");
    free(buf);

    assert_int_equal(parse_keep(req_teardown, &req, &buf), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_TEARDOWN);
    assert_int_equal(req.cseq, 5);
    assert_int_equal(req.n_headers, 2);
    free(buf);
}

static void test_get_parameter_with_body(void **state)
{
    (void)state;
    struct rtsp_request req;
    char *buf;
    size_t total = strlen(req_get_parameter);
    assert_int_equal(parse_keep(req_get_parameter, &req, &buf), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_GET_PARAMETER);
    assert_int_equal(req.cseq, 6);
    assert_int_equal(req.content_length, GET_PARAMETER_BODY_LEN);
    assert_int_equal(req.head_len, total - GET_PARAMETER_BODY_LEN);
    /* The body follows the head and was not touched. */
    assert_memory_equal(buf + req.head_len, "packets_received", GET_PARAMETER_BODY_LEN);
    assert_string_equal(rtsp_header(&req, "Content-Type"), "text/parameters");
    free(buf);
}

static void test_every_method_name(void **state)
{
    (void)state;
    static const struct { const char *name; enum rtsp_method m; } cases[] = {
        { "OPTIONS", RTSP_OPTIONS },   { "DESCRIBE", RTSP_DESCRIBE },
        { "SETUP", RTSP_SETUP },       { "PLAY", RTSP_PLAY },
        { "PAUSE", RTSP_PAUSE },       { "TEARDOWN", RTSP_TEARDOWN },
        { "GET_PARAMETER", RTSP_GET_PARAMETER }, { "SET_PARAMETER", RTSP_SET_PARAMETER },
        { "ANNOUNCE", RTSP_ANNOUNCE }, { "RECORD", RTSP_RECORD },
        { "REDIRECT", RTSP_REDIRECT },
        /* Unknown (501 for the caller), and method names are case-sensitive. */
        { "FLUSH", RTSP_METHOD_UNKNOWN }, { "options", RTSP_METHOD_UNKNOWN },
        { "PLAYX", RTSP_METHOD_UNKNOWN }, { "PLA", RTSP_METHOD_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "%s rtsp://h/s RTSP/1.0\r\nCSeq: 9\r\n\r\n", cases[i].name);
        struct rtsp_request req;
        assert_int_equal(parse(text, &req), RTSP_PARSE_OK);
        assert_int_equal(req.method, cases[i].m);
        assert_string_equal(req.method_text, cases[i].name);
        assert_int_equal(req.cseq, 9);
    }
}

/* Bare LF line ends (RFC 2326 section 4 asks receivers to take them) and
 * empty lines before the request line (sent between requests). */
static void test_lf_line_ends_and_leading_empty_lines(void **state)
{
    (void)state;
    struct rtsp_request req;
    char *buf;
    const char text[] = "\r\n\nPLAY rtsp://h/s RTSP/1.0\nCSeq: 7\nSession: 1\n\n";
    assert_int_equal(parse_keep(text, &req, &buf), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_PLAY);
    assert_int_equal(req.cseq, 7);
    assert_string_equal(rtsp_header(&req, "Session"), "1");
    assert_int_equal(req.head_len, strlen(text));        /* counted from buf[0] */
    free(buf);
}

/* --- incomplete ---------------------------------------------------------- */

/* Every strict prefix of a head is INCOMPLETE and leaves the buffer as it
 * was (the caller appends to it); the full head is OK, with or without the
 * body behind it. */
static void check_prefixes(const char *text, size_t head_len)
{
    size_t total = strlen(text);
    for (size_t n = 0; n <= total; n++) {
        char *b = dup_bytes(text, n);
        struct rtsp_request req;
        int rc = rtsp_parse_request(b, n, &req);
        if (n < head_len) {
            assert_int_equal(rc, RTSP_PARSE_INCOMPLETE);
            assert_memory_equal(b, text, n);
        } else {
            assert_int_equal(rc, RTSP_PARSE_OK);
            assert_int_equal(req.head_len, head_len);
        }
        free(b);
    }
}

static void test_incomplete_at_every_prefix(void **state)
{
    (void)state;
    check_prefixes(req_options, strlen(req_options));
    check_prefixes(req_describe, strlen(req_describe));
    check_prefixes(req_setup, strlen(req_setup));
    check_prefixes(req_play, strlen(req_play));
    check_prefixes(req_teardown, strlen(req_teardown));
    check_prefixes(req_get_parameter, strlen(req_get_parameter) - GET_PARAMETER_BODY_LEN);
    check_prefixes("\r\nOPTIONS * RTSP/1.0\nCSeq: 1\n\n", 30);

    struct rtsp_request req;
    assert_int_equal(rtsp_parse_request(NULL, 0, &req), RTSP_PARSE_INCOMPLETE);
}

/* --- CSeq ---------------------------------------------------------------- */

static void test_cseq(void **state)
{
    (void)state;
    struct rtsp_request req;
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nUser-Agent: x\r\n\r\n", &req), RTSP_PARSE_OK);
    assert_int_equal(req.cseq, -1);
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\ncseq:   42  \r\n\r\n", &req), RTSP_PARSE_OK);
    assert_int_equal(req.cseq, 42);
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nCSEQ:0\r\n\r\n", &req), RTSP_PARSE_OK);
    assert_int_equal(req.cseq, 0);
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nCSeq: 2147483647\r\n\r\n", &req), RTSP_PARSE_OK);
    assert_int_equal(req.cseq, 2147483647L);

    static const char *bad[] = {
        "abc", "-1", "+1", "1 2", "1a", "0x10", "", "1.0", "2147483648", "99999999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "OPTIONS * RTSP/1.0\r\nCSeq: %s\r\n\r\n", bad[i]);
        assert_int_equal(parse(text, &req), RTSP_PARSE_BAD);
        assert_int_equal(req.cseq, -1);
    }
    /* Two CSeq headers: which one to echo is ambiguous. */
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\ncseq: 1\r\n\r\n", &req), RTSP_PARSE_BAD);

    /* A request refused for its request line still has its CSeq, so that
     * the error response can carry it. */
    assert_int_equal(parse("OPTIONS *\r\nCSeq: 17\r\n\r\n", &req), RTSP_PARSE_BAD);
    assert_int_equal(req.cseq, 17);
    assert_int_equal(parse("OPTIONS * RTSP/2.0\r\nCSeq: 18\r\n\r\n", &req), RTSP_PARSE_VERSION);
    assert_int_equal(req.cseq, 18);
}

/* --- refused requests ---------------------------------------------------- */

static void test_bad_request_line(void **state)
{
    (void)state;
    static const char *bad[] = {
        "OPTIONS\r\n\r\n",
        "OPTIONS *\r\n\r\n",
        "OPTIONS * \r\n\r\n",
        "OPTIONS  * RTSP/1.0\r\n\r\n",
        "OPTIONS *  RTSP/1.0\r\n\r\n",
        " OPTIONS * RTSP/1.0\r\n\r\n",
        "OPTIONS * RTSP/1.0 \r\n\r\n",
        "OPTIONS\t* RTSP/1.0\r\n\r\n",
        "OPTIONS *\tRTSP/1.0\r\n\r\n",
        "OPTIONS * rtsp/1.0\r\n\r\n",
        "OPTIONS * RTSP/\r\n\r\n",
        "OPTIONS * RTSP/1.\r\n\r\n",
        "OPTIONS * RTSP/1.0x\r\n\r\n",
        "OPTIONS * RTSP/1.0 extra\r\n\r\n",
        "OPT(ONS * RTSP/1.0\r\n\r\n",
        "OPTIONS rtsp://h/caf\xc3\xa9 RTSP/1.0\r\n\r\n",       /* URI: ASCII only */
        "OPTIONS\r\nCSeq: 1\r\n\r\n",
        "\r\n",                                                /* nothing but an empty line: not yet */
    };
    for (size_t i = 0; i + 1 < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse_rc(bad[i]), RTSP_PARSE_BAD);
    assert_int_equal(parse_rc(bad[sizeof bad / sizeof bad[0] - 1]), RTSP_PARSE_INCOMPLETE);

    /* A method name longer than method_text can hold. */
    char text[128];
    snprintf(text, sizeof text, "%s * RTSP/1.0\r\n\r\n", "ABCDEFGHIJKLMNOPQRSTUVWX");  /* 24 */
    assert_int_equal(parse_rc(text), RTSP_PARSE_BAD);
    snprintf(text, sizeof text, "%s * RTSP/1.0\r\n\r\n", "ABCDEFGHIJKLMNOPQRSTUVW");   /* 23 */
    struct rtsp_request req;
    assert_int_equal(parse(text, &req), RTSP_PARSE_OK);
    assert_string_equal(req.method_text, "ABCDEFGHIJKLMNOPQRSTUVW");
    assert_int_equal(req.method, RTSP_METHOD_UNKNOWN);
}

static void test_other_versions(void **state)
{
    (void)state;
    struct rtsp_request req;
    assert_int_equal(parse("OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n", &req), RTSP_PARSE_VERSION);
    assert_int_equal(req.version_ok, 0);
    assert_int_equal(parse_rc("OPTIONS * RTSP/1.1\r\n\r\n"), RTSP_PARSE_VERSION);
    assert_int_equal(parse_rc("OPTIONS * RTSP/10.0\r\n\r\n"), RTSP_PARSE_VERSION);
    assert_int_equal(parse_rc("GET / HTTP/1.1\r\nHost: cam\r\n\r\n"), RTSP_PARSE_VERSION);
}

/* The head (request line, headers, blank line) is at most RTSP_MAX_REQUEST
 * bytes; past that it is TOO_LARGE without waiting for its end. */
static void test_oversized_head(void **state)
{
    (void)state;
    const char *start = "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Pad: ";
    size_t fixed = strlen(start) + 4;                    /* + "\r\n\r\n" */
    char *text = malloc(RTSP_MAX_REQUEST * 2);
    assert_non_null(text);
    for (size_t head = RTSP_MAX_REQUEST - 2; head <= RTSP_MAX_REQUEST + 2; head++) {
        size_t pad = head - fixed;
        strcpy(text, start);
        memset(text + strlen(start), 'a', pad);
        strcpy(text + strlen(start) + pad, "\r\n\r\n");
        assert_int_equal(strlen(text), head);
        struct rtsp_request req;
        char *buf;
        int rc = parse_keep(text, &req, &buf);
        if (head <= RTSP_MAX_REQUEST) {
            assert_int_equal(rc, RTSP_PARSE_OK);
            assert_int_equal(req.head_len, head);
            assert_int_equal(strlen(rtsp_header(&req, "X-Pad")), pad);
        } else {
            assert_int_equal(rc, RTSP_PARSE_TOO_LARGE);
        }
        free(buf);
    }

    /* No end in sight: INCOMPLETE below the limit, TOO_LARGE at it. */
    memset(text, 'a', RTSP_MAX_REQUEST * 2);
    memcpy(text, start, strlen(start));
    for (size_t n = RTSP_MAX_REQUEST - 1; n <= RTSP_MAX_REQUEST + 1; n++) {
        char *b = dup_bytes(text, n);
        struct rtsp_request req;
        assert_int_equal(rtsp_parse_request(b, n, &req),
                         n < RTSP_MAX_REQUEST ? RTSP_PARSE_INCOMPLETE : RTSP_PARSE_TOO_LARGE);
        free(b);
    }
    /* Empty lines before the request count too: no endless CRLF stream. */
    for (size_t i = 0; i < RTSP_MAX_REQUEST; i += 2)
        memcpy(text + i, "\r\n", 2);
    char *b = dup_bytes(text, RTSP_MAX_REQUEST);
    struct rtsp_request req;
    assert_int_equal(rtsp_parse_request(b, RTSP_MAX_REQUEST, &req), RTSP_PARSE_TOO_LARGE);
    free(b);
    free(text);
}

static void test_too_many_headers(void **state)
{
    (void)state;
    char lines[4096];
    struct rtsp_request req;
    for (int count = RTSP_MAX_HEADERS - 1; count <= RTSP_MAX_HEADERS + 1; count++) {
        /* CSeq is one of them */
        size_t n = 0;
        for (int i = 1; i < count; i++)
            n += (size_t)snprintf(lines + n, sizeof lines - n, "X-H%d: %d\r\n", i, i);
        char *buf;
        int rc = parse_with_headers(lines, &req, &buf);
        if (count <= RTSP_MAX_HEADERS) {
            assert_int_equal(rc, RTSP_PARSE_OK);
            assert_int_equal(req.n_headers, count);
            assert_int_equal(rtsp_header_count(&req, "CSeq"), 1);
            assert_string_equal(rtsp_header(&req, "x-h1"), "1");
        } else {
            assert_int_equal(rc, RTSP_PARSE_TOO_LARGE);
        }
        free(buf);
    }
    /* Refused as soon as the line count is over, before the blank line. */
    size_t n = (size_t)snprintf(lines, sizeof lines, "OPTIONS * RTSP/1.0\r\n");
    for (int i = 0; i <= RTSP_MAX_HEADERS; i++)
        n += (size_t)snprintf(lines + n, sizeof lines - n, "X: %d\r\n", i);
    assert_int_equal(parse_rc(lines), RTSP_PARSE_TOO_LARGE);
}

static void test_content_length(void **state)
{
    (void)state;
    struct rtsp_request req;
    char line[128];
    assert_int_equal(parse_with_headers("Content-Length: 0\r\n", &req, NULL), RTSP_PARSE_OK);
    assert_int_equal(req.content_length, 0);
    assert_int_equal(parse_with_headers("content-length:  12 \r\n", &req, NULL), RTSP_PARSE_OK);
    assert_int_equal(req.content_length, 12);
    snprintf(line, sizeof line, "Content-Length: %d\r\n", RTSP_MAX_BODY);
    assert_int_equal(parse_with_headers(line, &req, NULL), RTSP_PARSE_OK);
    assert_int_equal(req.content_length, RTSP_MAX_BODY);

    /* Digits only, but more than a body may be. */
    snprintf(line, sizeof line, "Content-Length: %d\r\n", RTSP_MAX_BODY + 1);
    assert_int_equal(parse_with_headers(line, &req, NULL), RTSP_PARSE_TOO_LARGE);
    assert_int_equal(parse_with_headers("Content-Length: 99999999999999999999999999999\r\n", &req, NULL),
                     RTSP_PARSE_TOO_LARGE);
    assert_int_equal(parse_with_headers("Content-Length: 18446744073709551617\r\n", &req, NULL), RTSP_PARSE_TOO_LARGE);

    static const char *bad[] = {
        "Content-Length: -1\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 5x\r\n",
        "Content-Length: 0x10\r\n",
        "Content-Length: 1 2\r\n",
        "Content-Length: 1,1\r\n",
        "Content-Length:\r\n",
        "Content-Length: \r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",            /* duplicate, even equal */
        "Content-Length: 5\r\ncontent-length: 6\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_with_headers(bad[i], &req, NULL), RTSP_PARSE_BAD);
        assert_int_equal(req.content_length, 0);
    }
}

static void test_header_lookup(void **state)
{
    (void)state;
    struct rtsp_request req;
    char *buf;
    const char text[] = "SETUP rtsp://h/s RTSP/1.0\r\n"
                        "CSeq: 3\r\n"
                        "transport:RTP/AVP;unicast;client_port=5000-5001\r\n"
                        "X-Empty:\r\n"
                        "X-Tab:\t a\tb \t\r\n"
                        "Require: onvif-replay\r\n"
                        "REQUIRE: play.basic\r\n"
                        "User-Agent: caf\xc3\xa9\r\n"
                        "\r\n";
    assert_int_equal(parse_keep(text, &req, &buf), RTSP_PARSE_OK);
    assert_string_equal(rtsp_header(&req, "Transport"), "RTP/AVP;unicast;client_port=5000-5001");
    assert_string_equal(rtsp_header(&req, "TRANSPORT"), "RTP/AVP;unicast;client_port=5000-5001");
    assert_string_equal(rtsp_header(&req, "cseq"), "3");
    assert_string_equal(rtsp_header(&req, "X-Empty"), "");
    assert_string_equal(rtsp_header(&req, "x-tab"), "a\tb");
    assert_string_equal(rtsp_header(&req, "Require"), "onvif-replay");   /* the first */
    assert_int_equal(rtsp_header_count(&req, "require"), 2);
    assert_int_equal(rtsp_header_count(&req, "Session"), 0);
    assert_string_equal(rtsp_header(&req, "User-Agent"), "caf\xc3\xa9");  /* values may be UTF-8 */
    assert_null(rtsp_header(&req, "Session"));
    assert_null(rtsp_header(&req, "Trans"));
    assert_null(rtsp_header(&req, "Transport2"));
    assert_null(rtsp_header(&req, ""));
    free(buf);
}

static void test_bad_header_lines(void **state)
{
    (void)state;
    struct rtsp_request req;
    static const char *bad[] = {
        "NoColon\r\n",
        "Name : value\r\n",                 /* no space before the colon */
        ": value\r\n",
        "Na me: value\r\n",
        "Na(me): value\r\n",
        "N\xc3\xa4me: value\r\n",
        "X-A: 1\r\n folded\r\n",            /* obsolete line folding */
        "X-A: 1\r\n\tfolded\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse_with_headers(bad[i], &req, NULL), RTSP_PARSE_BAD);
}

/* NUL and control characters in the head are refused (a NUL would cut a C
 * string short of what the length says); a tab in a value is fine. Refused
 * as soon as they are seen, not only once the head is complete. */
static void test_control_characters(void **state)
{
    (void)state;
    static const struct { const char *text; size_t len; } bad[] = {
#define B(s) { s, sizeof s - 1 }
        B("OPTIONS *\0 RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nCSeq: 1\0\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a\0b\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nX: a\x01" "b\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nX: a\x1b[2Jb\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nX: a\x7f" "b\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nX: a\rb\r\n\r\n"),          /* bare CR */
        B("OPTIONS * RTSP/1.0\r\r\nX: a\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nX: a\r\n\r\r\n"),
        B("\0OPTIONS * RTSP/1.0\r\n\r\n"),
        B("OPTIONS * RTSP/1.0\r\nX: a\0"),                    /* head not complete yet */
        B("OPTIONS * RTSP/1.0\r\nX: a\rb"),
#undef B
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *b = dup_bytes(bad[i].text, bad[i].len);
        struct rtsp_request req;
        assert_int_equal(rtsp_parse_request(b, bad[i].len, &req), RTSP_PARSE_BAD);
        free(b);
    }
    struct rtsp_request req;
    assert_int_equal(parse_with_headers("X: a\tb\r\n", &req, NULL), RTSP_PARSE_OK);

    /* Body bytes are not the head's business. */
    const char text[] = "SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\n\0\r\x01";
    char *b = dup_bytes(text, sizeof text - 1);
    assert_int_equal(rtsp_parse_request(b, sizeof text - 1, &req), RTSP_PARSE_OK);
    assert_int_equal(req.content_length, 3);
    assert_memory_equal(b + req.head_len, "\0\r\x01", 3);
    free(b);
}

/* A URI of up to RTSP_MAX_URI characters is kept whole; a longer one is
 * TOO_LARGE (the caller answers 414). */
static void test_uri_length(void **state)
{
    (void)state;
    char uri[RTSP_MAX_URI + 2];
    memcpy(uri, "rtsp://h/", 9);
    for (size_t ulen = RTSP_MAX_URI - 1; ulen <= RTSP_MAX_URI + 1; ulen++) {
        memset(uri + 9, 'u', ulen - 9);
        uri[ulen] = '\0';
        char text[RTSP_MAX_URI + 64];
        snprintf(text, sizeof text, "DESCRIBE %s RTSP/1.0\r\nCSeq: 2\r\n\r\n", uri);
        struct rtsp_request req;
        int rc = parse(text, &req);
        if (ulen <= RTSP_MAX_URI) {
            assert_int_equal(rc, RTSP_PARSE_OK);
            assert_string_equal(req.uri, uri);
        } else {
            assert_int_equal(rc, RTSP_PARSE_TOO_LARGE);
            assert_int_equal(req.cseq, 2);
        }
    }
}

/* Several requests in one read: head_len plus the body is where the next
 * one begins (empty lines between them are skipped), and parsing one leaves
 * the next intact. */
static void test_pipelined_requests(void **state)
{
    (void)state;
    char text[1024];
    int n = snprintf(text, sizeof text, "%s%s\r\n%s", req_get_parameter, req_play, req_teardown);
    assert_true(n > 0 && (size_t)n < sizeof text);
    char *buf = dup_bytes(text, (size_t)n);
    size_t off = 0;
    static const struct { enum rtsp_method m; long cseq; } expect[] = {
        { RTSP_GET_PARAMETER, 6 }, { RTSP_PLAY, 4 }, { RTSP_TEARDOWN, 5 },
    };
    for (size_t i = 0; i < 3; i++) {
        struct rtsp_request req;
        assert_int_equal(rtsp_parse_request(buf + off, (size_t)n - off, &req), RTSP_PARSE_OK);
        assert_int_equal(req.method, expect[i].m);
        assert_int_equal(req.cseq, expect[i].cseq);
        if (i == 0)
            assert_memory_equal(buf + req.head_len, "packets_received", GET_PARAMETER_BODY_LEN);
        off += req.head_len + req.content_length;
    }
    assert_int_equal(off, (size_t)n);
    free(buf);

    /* Without a body, the next request starts right at head_len. */
    n = snprintf(text, sizeof text, "%s%s", req_setup, req_play);
    buf = dup_bytes(text, (size_t)n);
    struct rtsp_request req;
    assert_int_equal(rtsp_parse_request(buf, (size_t)n, &req), RTSP_PARSE_OK);
    assert_int_equal(req.head_len, strlen(req_setup));
    assert_memory_equal(buf + req.head_len, req_play, strlen(req_play));
    assert_int_equal(rtsp_parse_request(buf + req.head_len, (size_t)n - req.head_len, &req), RTSP_PARSE_OK);
    assert_int_equal(req.method, RTSP_PLAY);
    assert_int_equal(req.head_len, strlen(req_play));
    free(buf);
}

/* --- Transport ----------------------------------------------------------- */

static void test_transport_udp_unicast(void **state)
{
    (void)state;
    struct rtsp_transport t;
    assert_int_equal(transport("RTP/AVP;unicast;client_port=5000-5001", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP);
    assert_int_equal(t.client_rtp_port, 5000);
    assert_int_equal(t.client_rtcp_port, 5001);
    assert_int_equal(t.interleaved_rtp, -1);
    assert_int_equal(t.interleaved_rtcp, -1);
    assert_int_equal(t.ttl, -1);
    assert_int_equal(t.port_rtp, -1);
    assert_int_equal(t.port_rtcp, -1);
    assert_string_equal(t.destination, "");

    /* One port means the pair; UDP named; case and spaces; unknown and
     * irrelevant parameters ignored; a destination for unicast is not ours
     * to follow (the peer address is used). */
    assert_int_equal(transport("RTP/AVP/UDP;unicast;client_port=6970", &t), 0);
    assert_int_equal(t.client_rtp_port, 6970);
    assert_int_equal(t.client_rtcp_port, 6971);
    assert_int_equal(transport(" rtp/avp ; UNICAST ; Client_Port = 1-65535 ; ", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP);
    assert_int_equal(t.client_rtp_port, 1);
    assert_int_equal(t.client_rtcp_port, 65535);
    assert_int_equal(transport("RTP/AVP;unicast;client_port=5000-5001;ssrc=1A2B3C4D;server_port=1-2;"
                               "destination=198.51.100.7;mode=\"PLAY\"", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP);
    assert_string_equal(t.destination, "");
    assert_int_equal(transport("RTP/AVP;client_port=5000-5001;mode=play", &t), 0);    /* unicast implied */
    assert_int_equal(t.lower, RTSP_LOWER_UDP);
}

static void test_transport_tcp_interleaved(void **state)
{
    (void)state;
    struct rtsp_transport t;
    assert_int_equal(transport("RTP/AVP/TCP;unicast;interleaved=2-3", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_TCP);
    assert_int_equal(t.interleaved_rtp, 2);
    assert_int_equal(t.interleaved_rtcp, 3);
    assert_int_equal(t.client_rtp_port, -1);
    assert_int_equal(t.client_rtcp_port, -1);
    assert_int_equal(t.ttl, -1);
    assert_int_equal(t.port_rtp, -1);
    assert_string_equal(t.destination, "");

    assert_int_equal(transport("RTP/AVP/TCP;interleaved=0", &t), 0);
    assert_int_equal(t.interleaved_rtp, 0);
    assert_int_equal(t.interleaved_rtcp, 1);
    assert_int_equal(transport("RTP/AVP/TCP;interleaved=254-255", &t), 0);
    assert_int_equal(t.interleaved_rtcp, 255);
    /* Channels left to the server; client ports are meaningless over TCP. */
    assert_int_equal(transport("RTP/AVP/TCP;unicast;client_port=5000-5001", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_TCP);
    assert_int_equal(t.interleaved_rtp, -1);
    assert_int_equal(t.interleaved_rtcp, -1);
    assert_int_equal(t.client_rtp_port, -1);
    assert_int_equal(transport("RTP/AVP/TCP", &t), 0);
    assert_int_equal(t.interleaved_rtp, -1);
}

static void test_transport_multicast(void **state)
{
    (void)state;
    struct rtsp_transport t;
    assert_int_equal(transport("RTP/AVP;multicast;destination=239.1.2.3;port=4000-4001;ttl=16", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP_MULTICAST);
    assert_string_equal(t.destination, "239.1.2.3");
    assert_int_equal(t.port_rtp, 4000);
    assert_int_equal(t.port_rtcp, 4001);
    assert_int_equal(t.ttl, 16);
    assert_int_equal(t.client_rtp_port, -1);
    assert_int_equal(t.interleaved_rtp, -1);

    assert_int_equal(transport("RTP/AVP;multicast", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP_MULTICAST);
    assert_string_equal(t.destination, "");
    assert_int_equal(t.ttl, -1);
    assert_int_equal(t.port_rtp, -1);
    /* RFC 2326 12.39: multicast is the default when nothing says unicast. */
    assert_int_equal(transport("RTP/AVP", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP_MULTICAST);
    assert_int_equal(transport("RTP/AVP;multicast;destination=ff15::1:2", &t), 0);
    assert_string_equal(t.destination, "ff15::1:2");

    /* Client ports mean nothing for multicast. */
    assert_int_equal(transport("RTP/AVP;multicast;client_port=5000-5001", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP_MULTICAST);
    assert_int_equal(t.client_rtp_port, -1);

    char long_dest[128];
    memset(long_dest, 0, sizeof long_dest);
    snprintf(long_dest, sizeof long_dest, "RTP/AVP;multicast;destination=");
    memset(long_dest + strlen(long_dest), '1', 64);
    assert_int_equal(transport(long_dest, &t), -1);                 /* does not fit destination[64] */
    long_dest[strlen(long_dest) - 1] = '\0';
    assert_int_equal(transport(long_dest, &t), 0);                  /* 63 characters do */
    assert_int_equal(strlen(t.destination), 63);
    assert_int_equal(transport("RTP/AVP;multicast;destination=239.1.2.3;x", &t), 0);
    assert_int_equal(transport("RTP/AVP;multicast;destination=239.1.2.3/24", &t), -1);
    assert_int_equal(transport("RTP/AVP;multicast;destination=a b", &t), -1);
    assert_int_equal(transport("RTP/AVP;multicast;destination=", &t), -1);
}

static void test_transport_alternatives(void **state)
{
    (void)state;
    struct rtsp_transport t;
    /* The first acceptable one, in the client's order of preference. */
    assert_int_equal(transport("RTP/AVP/TCP;unicast;interleaved=0-1,RTP/AVP;unicast;client_port=5000-5001", &t),
                     0);
    assert_int_equal(t.lower, RTSP_LOWER_TCP);
    assert_int_equal(transport("RTP/AVP;unicast;client_port=5000-5001, RTP/AVP/TCP;unicast;interleaved=0-1", &t),
                     0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP);
    assert_int_equal(transport("RTP/SAVP;unicast;client_port=1000-1001,RAW/RAW/UDP;unicast;client_port=2000-2001,"
                               "RTP/AVP;unicast;client_port=3000-3001",
                               &t),
                     0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP);
    assert_int_equal(t.client_rtp_port, 3000);
    /* Refused alternatives leave nothing of theirs behind. */
    assert_int_equal(transport("RTP/AVP/TCP;interleaved=0-1;mode=RECORD,RTP/AVP;multicast", &t), 0);
    assert_int_equal(t.lower, RTSP_LOWER_UDP_MULTICAST);
    assert_int_equal(t.interleaved_rtp, -1);
    assert_int_equal(transport("RTP/AVP;unicast;client_port=70000-70001,RTP/AVP;unicast;client_port=8000-8001", &t),
                     0);
    assert_int_equal(t.client_rtp_port, 8000);
    /* A comma inside quotes does not split alternatives. */
    assert_int_equal(transport("RTP/AVP;unicast;client_port=5000-5001;mode=\"PLAY,RECORD\"", &t), -1);
    assert_int_equal(transport(",,RTP/AVP/TCP;interleaved=4-5,", &t), 0);
    assert_int_equal(t.interleaved_rtp, 4);
}

static void test_transport_refused(void **state)
{
    (void)state;
    struct rtsp_transport t;
    static const char *bad[] = {
        "",
        " ",
        ",",
        ";unicast",
        "RTP/SAVP;unicast;client_port=5000-5001",
        "RTP/SAVPF;unicast;client_port=5000-5001",
        "RAW/RAW/UDP;unicast;client_port=5000-5001",
        "RTP/AVP/SCTP;unicast",
        "RTP/AVPX;unicast;client_port=5000-5001",
        "RTP;unicast;client_port=5000-5001",
        "RTP/AVP;unicast",                           /* UDP unicast needs the client's ports */
        "RTP/AVP;unicast;multicast;client_port=5000-5001",
        "RTP/AVP/TCP;multicast",
        "RTP/AVP/TCP;interleaved=0-1;mode=RECORD",
        "RTP/AVP;unicast;client_port=5000-5001;mode=\"RECORD\"",
        "RTP/AVP;unicast;client_port=5000-5001;mode=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(transport(bad[i], &t), -1);
    assert_int_equal(rtsp_parse_transport(NULL, &t), -1);
    assert_int_equal(rtsp_parse_transport("RTP/AVP/TCP", NULL), -1);
}

static void test_transport_port_ranges(void **state)
{
    (void)state;
    struct rtsp_transport t;
    static const char *bad_client[] = {
        "0-1", "65535", "65535-65536", "65536-65537", "70000-70001", "5001-5000", "5000-5000", "-5001",
        "5000-", "-", "", "abc-def", "5000-5001-5002", "5000 -5001", "+5000-5001", "05000-050011",
        "999999-1000000",
    };
    for (size_t i = 0; i < sizeof bad_client / sizeof bad_client[0]; i++) {
        char v[128];
        snprintf(v, sizeof v, "RTP/AVP;unicast;client_port=%s", bad_client[i]);
        assert_int_equal(transport(v, &t), -1);
        snprintf(v, sizeof v, "RTP/AVP;multicast;port=%s", bad_client[i]);
        assert_int_equal(transport(v, &t), -1);
    }
    assert_int_equal(transport("RTP/AVP;unicast;client_port", &t), -1);
    assert_int_equal(transport("RTP/AVP;unicast;client_port=65534-65535", &t), 0);
    assert_int_equal(transport("RTP/AVP;unicast;client_port=1", &t), 0);
    assert_int_equal(transport("RTP/AVP;unicast;client_port=5000-6000", &t), 0);   /* not adjacent: allowed */
    assert_int_equal(t.client_rtcp_port, 6000);

    static const char *bad_channels[] = { "255", "256-257", "0-256", "1-0", "3-3", "-1-0", "a-b", "" };
    for (size_t i = 0; i < sizeof bad_channels / sizeof bad_channels[0]; i++) {
        char v[128];
        snprintf(v, sizeof v, "RTP/AVP/TCP;interleaved=%s", bad_channels[i]);
        assert_int_equal(transport(v, &t), -1);
    }
    assert_int_equal(transport("RTP/AVP;multicast;ttl=0", &t), -1);
    assert_int_equal(transport("RTP/AVP;multicast;ttl=256", &t), -1);
    assert_int_equal(transport("RTP/AVP;multicast;ttl=", &t), -1);
    assert_int_equal(transport("RTP/AVP;multicast;ttl=1", &t), 0);
    assert_int_equal(transport("RTP/AVP;multicast;ttl=255", &t), 0);
    assert_int_equal(t.ttl, 255);
}

/* --- responses ----------------------------------------------------------- */

static void test_response_formatting(void **state)
{
    (void)state;
    char out[512];
    int n = rtsp_format_response(out, sizeof out, 200, 3, NULL, 0);
    assert_string_equal(out, "RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n");
    assert_int_equal(n, strlen(out));

    n = rtsp_format_response(out, sizeof out, 400, -1, NULL, 0);
    assert_string_equal(out, "RTSP/1.0 400 Bad Request\r\n\r\n");
    assert_int_equal(n, strlen(out));

    n = rtsp_format_response(out, sizeof out, 200, 0, "Content-Type: application/sdp\r\nContent-Base: rtsp://h/s/\r\n",
                             456);
    assert_string_equal(out, "RTSP/1.0 200 OK\r\n"
                             "CSeq: 0\r\n"
                             "Content-Type: application/sdp\r\n"
                             "Content-Base: rtsp://h/s/\r\n"
                             "Content-Length: 456\r\n"
                             "\r\n");
    assert_int_equal(n, strlen(out));

    n = rtsp_format_response(out, sizeof out, 461, 2147483647L, "", 0);
    assert_string_equal(out, "RTSP/1.0 461 Unsupported Transport\r\nCSeq: 2147483647\r\n\r\n");
    assert_int_equal(n, strlen(out));
}

static void test_response_buffer_too_small(void **state)
{
    (void)state;
    const char *extra = "Session: 12345678;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n";
    char out[256];
    int n = rtsp_format_response(out, sizeof out, 200, 12, extra, 10);
    assert_true(n > 0);
    char expect[256];
    memcpy(expect, out, (size_t)n + 1);
    /* Every size that cannot hold it and its NUL is refused, never truncated. */
    for (size_t len = 1; len <= (size_t)n; len++) {
        char *b = malloc(len);
        assert_non_null(b);
        assert_int_equal(rtsp_format_response(b, len, 200, 12, extra, 10), -1);
        assert_int_equal(b[0], '\0');
        free(b);
    }
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(rtsp_format_response(b, (size_t)n + 1, 200, 12, extra, 10), n);
    assert_string_equal(b, expect);
    free(b);
    assert_int_equal(rtsp_format_response(out, 0, 200, 1, NULL, 0), -1);
    assert_int_equal(rtsp_format_response(NULL, 100, 200, 1, NULL, 0), -1);
}

/* Extra header lines go out verbatim: anything that is not whole CRLF
 * terminated lines could end the head early or add lines of its own. */
static void test_response_refuses_malformed_extra(void **state)
{
    (void)state;
    char out[256];
    static const char *bad[] = {
        "Session: 1",                               /* not terminated */
        "Session: 1\n",
        "Session: 1\r",
        "Session: 1\r\n\r\n",                       /* blank line: ends the head */
        "\r\n",
        "Session: 1\r\nX: a\rb\r\n",
        "Session: 1\r\nX: a\nb\r\n",
        "Session: 1\x01\r\n",
        "Session: 1\r\n\r\nRTSP/1.0 200 OK\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 'x', sizeof out);
        assert_int_equal(rtsp_format_response(out, sizeof out, 200, 1, bad[i], 0), -1);
        assert_int_equal(out[0], '\0');
    }
    assert_true(rtsp_format_response(out, sizeof out, 200, 1, "X: a\tb\r\nY: caf\xc3\xa9\r\n", 0) > 0);
}

static void test_status_texts(void **state)
{
    (void)state;
    assert_string_equal(rtsp_status_text(200), "OK");
    assert_string_equal(rtsp_status_text(401), "Unauthorized");
    assert_string_equal(rtsp_status_text(404), "Not Found");
    assert_string_equal(rtsp_status_text(413), "Request Entity Too Large");
    assert_string_equal(rtsp_status_text(414), "Request-URI Too Large");
    assert_string_equal(rtsp_status_text(454), "Session Not Found");
    assert_string_equal(rtsp_status_text(455), "Method Not Valid in This State");
    assert_string_equal(rtsp_status_text(461), "Unsupported Transport");
    assert_string_equal(rtsp_status_text(501), "Not Implemented");
    assert_string_equal(rtsp_status_text(505), "RTSP Version Not Supported");
    assert_string_equal(rtsp_status_text(299), "OK");
    assert_string_equal(rtsp_status_text(499), "Client Error");
    assert_string_equal(rtsp_status_text(599), "Server Error");
    assert_string_equal(rtsp_status_text(0), "Unknown");
    assert_string_equal(rtsp_status_text(-1), "Unknown");
    char out[64];
    assert_int_equal(rtsp_format_response(out, sizeof out, 99, 1, NULL, 0), -1);
    assert_int_equal(rtsp_format_response(out, sizeof out, 1000, 1, NULL, 0), -1);
    assert_true(rtsp_format_response(out, sizeof out, 999, 1, NULL, 0) > 0);
    assert_string_equal(out, "RTSP/1.0 999 Unknown\r\nCSeq: 1\r\n\r\n");
}

/* --- robustness ---------------------------------------------------------- */

/* Random heads built from RTSP-ish pieces and noise: every result is one of
 * the five, a parsed request is self-consistent, nothing is read past len. */
static void test_random_requests_never_misbehave(void **state)
{
    (void)state;
    static const char *pieces[] = {
        "OPTIONS", "PLAY", " ", "  ", "*", "rtsp://h/s", "RTSP/1.0", "RTSP/2.0", "\r\n", "\n", "\r", "CSeq:",
        "CSeq: 5", "Content-Length: 3", "Content-Length: -1", ":", "\t", "\0", "\x7f", "\xff", "a", "12", "\r\n\r\n",
        "Transport: RTP/AVP;unicast;client_port=1-2",
    };
    uint32_t x = 99;
    for (int iter = 0; iter < 20000; iter++) {
        char text[512];
        size_t n = 0;
        x = x * 1103515245u + 12345u;
        int count = (int)(x >> 16) % 24;
        for (int k = 0; k < count; k++) {
            x = x * 1103515245u + 12345u;
            const char *p = pieces[(x >> 16) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = *p ? strlen(p) : 1;
            if (n + pl > sizeof text)
                break;
            memcpy(text + n, p, pl);
            n += pl;
        }
        char *b = dup_bytes(text, n);
        struct rtsp_request req;
        int rc = rtsp_parse_request(b, n, &req);
        assert_true(rc == RTSP_PARSE_OK || rc == RTSP_PARSE_INCOMPLETE || rc == RTSP_PARSE_BAD ||
                    rc == RTSP_PARSE_TOO_LARGE || rc == RTSP_PARSE_VERSION);
        if (rc == RTSP_PARSE_OK) {
            assert_true(req.head_len > 0 && req.head_len <= n);
            assert_true(req.content_length <= RTSP_MAX_BODY);
            assert_true(req.n_headers >= 0 && req.n_headers <= RTSP_MAX_HEADERS);
            assert_int_equal(req.version_ok, 1);
            for (int i = 0; i < req.n_headers; i++) {
                assert_true(req.headers[i].name >= b && req.headers[i].name < b + req.head_len);
                assert_true(req.headers[i].value >= b && req.headers[i].value < b + req.head_len);
            }
        }
        free(b);
    }
}

static void test_random_transports_never_misbehave(void **state)
{
    (void)state;
    static const char *pieces[] = {
        "RTP/AVP", "RTP/AVP/TCP", "RTP/SAVP", ";", ",", "\"", "=", "-", "unicast", "multicast", "client_port",
        "interleaved", "port", "ttl", "destination", "mode", "0", "1", "65535", "99999", " ", "PLAY", "::1",
    };
    uint32_t x = 7;
    for (int iter = 0; iter < 20000; iter++) {
        char v[256];
        size_t n = 0;
        x = x * 1103515245u + 12345u;
        int count = (int)(x >> 16) % 20;
        for (int k = 0; k < count; k++) {
            x = x * 1103515245u + 12345u;
            const char *p = pieces[(x >> 16) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (n + pl >= sizeof v)
                break;
            memcpy(v + n, p, pl);
            n += pl;
        }
        v[n] = '\0';
        char *b = dup_bytes(v, n + 1);
        struct rtsp_transport t;
        if (rtsp_parse_transport(b, &t) == 0) {
            if (t.lower == RTSP_LOWER_UDP)
                assert_true(t.client_rtp_port >= 1 && t.client_rtp_port < t.client_rtcp_port &&
                            t.client_rtcp_port <= 65535);
            else if (t.lower == RTSP_LOWER_TCP)
                assert_true(t.interleaved_rtp == -1 ||
                            (t.interleaved_rtp < t.interleaved_rtcp && t.interleaved_rtcp <= 255));
            else
                assert_int_equal(t.lower, RTSP_LOWER_UDP_MULTICAST);
            assert_true(strlen(t.destination) < sizeof t.destination);
        }
        free(b);
    }
}

static const struct CMUnitTest rtsp_msg_tests[] = {
    cmocka_unit_test(test_options),
    cmocka_unit_test(test_describe),
    cmocka_unit_test(test_setup_play_teardown),
    cmocka_unit_test(test_get_parameter_with_body),
    cmocka_unit_test(test_every_method_name),
    cmocka_unit_test(test_lf_line_ends_and_leading_empty_lines),
    cmocka_unit_test(test_incomplete_at_every_prefix),
    cmocka_unit_test(test_cseq),
    cmocka_unit_test(test_bad_request_line),
    cmocka_unit_test(test_other_versions),
    cmocka_unit_test(test_oversized_head),
    cmocka_unit_test(test_too_many_headers),
    cmocka_unit_test(test_content_length),
    cmocka_unit_test(test_header_lookup),
    cmocka_unit_test(test_bad_header_lines),
    cmocka_unit_test(test_control_characters),
    cmocka_unit_test(test_uri_length),
    cmocka_unit_test(test_pipelined_requests),
    cmocka_unit_test(test_transport_udp_unicast),
    cmocka_unit_test(test_transport_tcp_interleaved),
    cmocka_unit_test(test_transport_multicast),
    cmocka_unit_test(test_transport_alternatives),
    cmocka_unit_test(test_transport_refused),
    cmocka_unit_test(test_transport_port_ranges),
    cmocka_unit_test(test_response_formatting),
    cmocka_unit_test(test_response_buffer_too_small),
    cmocka_unit_test(test_response_refuses_malformed_extra),
    cmocka_unit_test(test_status_texts),
    cmocka_unit_test(test_random_requests_never_misbehave),
    cmocka_unit_test(test_random_transports_never_misbehave),
};

UNIT_MAIN("rtsp_msg", rtsp_msg_tests)
