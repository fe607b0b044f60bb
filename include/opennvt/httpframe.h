/* HTTP/1.x request framing for the listener: where does one request end, and
 * is it acceptable at all (sizes, syntax), before any parser sees it. */
#ifndef OPENNVT_HTTPFRAME_H
#define OPENNVT_HTTPFRAME_H

#include <stddef.h>

enum httpframe_result {
    HTTPFRAME_COMPLETE = 0,
    HTTPFRAME_INCOMPLETE = 1,        /* headers not complete yet */
    HTTPFRAME_NEED_BODY = 2,         /* headers parsed, body not complete */
    HTTPFRAME_BAD_REQUEST = -1,
    HTTPFRAME_HEADER_TOO_LARGE = -2,
    HTTPFRAME_TOO_LARGE = -3,
    HTTPFRAME_LENGTH_REQUIRED = -4,
    HTTPFRAME_NOT_IMPLEMENTED = -5,
    HTTPFRAME_URI_TOO_LONG = -6,
    HTTPFRAME_EXPECTATION_FAILED = -7,
};

struct httpframe {
    char method[16];
    char path[1024];
    int http11;
    int chunked;
    int expect_continue;
    int connection_close;
    int connection_keep_alive;
    char content_type[64];  /* media type only, lowercase, without parameters */
    size_t authorization_off; /* Authorization value: offset in the buffer, */
    size_t authorization_len; /* and length (0: no such header) */
    int authorization_count;  /* more than one is refused by the gate */
    size_t header_len;   /* through the blank line */
    size_t body_len;     /* as transmitted (chunk framing included) */
    size_t total_len;    /* header_len + body_len, when complete */
};

/* Parses the request at the start of buf. max_header bounds the header block,
 * max_total the whole request. Returns an httpframe_result. */
int httpframe_parse(const char *buf, size_t len, size_t max_header, size_t max_total, struct httpframe *f);

/* HTTP status code and reason phrase for a negative result. */
int httpframe_status(int result, const char **reason);

#endif
