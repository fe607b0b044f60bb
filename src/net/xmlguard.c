/* Request XML pre-check: element depth and DTD presence, in one pass. */
#include "opennvt/xmlguard.h"

#include <string.h>

/* Returns the position just past the terminator, or len when absent. */
static size_t skip_past(const char *buf, size_t len, size_t pos, const char *term)
{
    size_t tl = strlen(term);
    for (; pos + tl <= len; pos++)
        if (memcmp(buf + pos, term, tl) == 0)
            return pos + tl;
    return len;
}

int xmlguard_check(const char *buf, size_t len, int max_depth)
{
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        const char *lt = memchr(buf + i, '<', len - i);
        if (!lt)
            break;
        i = (size_t)(lt - buf);
        if (i + 1 >= len)
            break;
        char c = buf[i + 1];
        if (c == '?') {
            i = skip_past(buf, len, i + 2, "?>");
        } else if (c == '!') {
            if (len - i >= 4 && memcmp(buf + i, "<!--", 4) == 0)
                i = skip_past(buf, len, i + 4, "-->");
            else if (len - i >= 9 && memcmp(buf + i, "<![CDATA[", 9) == 0)
                i = skip_past(buf, len, i + 9, "]]>");
            else
                return XMLGUARD_DTD; /* <!DOCTYPE, <!ENTITY ... */
        } else if (c == '/') {
            depth--;
            i = skip_past(buf, len, i + 2, ">");
        } else {
            /* start tag: find its end outside attribute quotes */
            size_t j = i + 1;
            char quote = 0;
            for (; j < len; j++) {
                if (quote) {
                    if (buf[j] == quote)
                        quote = 0;
                } else if (buf[j] == '"' || buf[j] == '\'') {
                    quote = buf[j];
                } else if (buf[j] == '>') {
                    break;
                }
            }
            if (j >= len)
                break;
            if (buf[j - 1] != '/' && ++depth > max_depth)
                return XMLGUARD_TOO_DEEP;
            i = j + 1;
        }
    }
    return XMLGUARD_OK;
}
