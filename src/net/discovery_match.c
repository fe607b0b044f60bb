/* WS-Discovery matching rules (WS-Discovery 2005/04 section 5.1). */
#include "opennvt/discovery.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Length of the scheme+authority part ("onvif://www.onvif.org"), or of the
 * scheme only for URIs without an authority. */
static size_t authority_end(const char *uri)
{
    const char *colon = strchr(uri, ':');
    if (!colon)
        return 0;
    if (colon[1] == '/' && colon[2] == '/') {
        const char *slash = strchr(colon + 3, '/');
        return slash ? (size_t)(slash - uri) : strlen(uri);
    }
    return (size_t)(colon - uri + 1);
}

static int rfc3986_match(const char *probe, const char *dev)
{
    size_t pa = authority_end(probe), da = authority_end(dev);
    if (!pa || pa != da || strncasecmp(probe, dev, pa) != 0)
        return 0;
    const char *p = probe + pa, *d = dev + da;
    /* Segment-wise prefix: every probe segment equals the device's segment. */
    for (;;) {
        while (*p == '/')
            p++;
        while (*d == '/')
            d++;
        if (!*p || *p == '?' || *p == '#')
            return 1;
        size_t pl = strcspn(p, "/?#"), dl = strcspn(d, "/?#");
        if (pl != dl || strncmp(p, d, pl) != 0)
            return 0;
        p += pl;
        d += dl;
    }
}

int discovery_scope_matches(const char *match_by, const char *probe_scope, const char *device_scope)
{
    if (!match_by || !*match_by || !strcmp(match_by, DISCOVERY_MATCH_RFC3986))
        return rfc3986_match(probe_scope, device_scope);
    if (!strcmp(match_by, DISCOVERY_MATCH_STRCMP0))
        return strcmp(probe_scope, device_scope) == 0;
    return -1;
}

/* Calls fn for each space-separated token; stops early when fn returns nonzero. */
static int each_token(const char *list, int (*fn)(const char *tok, size_t len, void *arg), void *arg)
{
    const char *p = list;
    while (p && *p) {
        while (isspace((unsigned char)*p))
            p++;
        size_t len = 0;
        while (p[len] && !isspace((unsigned char)p[len]))
            len++;
        if (len) {
            int r = fn(p, len, arg);
            if (r)
                return r;
        }
        p += len;
    }
    return 0;
}

struct scope_ctx {
    const char *match_by;
    const char *device_scopes;
    char probe[512];
    int found;
};

static int device_scope_cb(const char *tok, size_t len, void *arg)
{
    struct scope_ctx *c = arg;
    char dev[512];
    if (len >= sizeof dev)
        return 0;
    memcpy(dev, tok, len);
    dev[len] = '\0';
    int m = discovery_scope_matches(c->match_by, c->probe, dev);
    if (m < 0)
        return -1;
    if (m)
        c->found = 1;
    return m;
}

static int probe_scope_cb(const char *tok, size_t len, void *arg)
{
    struct scope_ctx *c = arg;
    if (len >= sizeof c->probe)
        return 2; /* longer than any scope we hold: no match */
    memcpy(c->probe, tok, len);
    c->probe[len] = '\0';
    c->found = 0;
    if (each_token(c->device_scopes, device_scope_cb, c) < 0)
        return -1;
    return c->found ? 0 : 2;
}

int discovery_scopes_match(const char *match_by, const char *probe_scopes, const char *device_scopes)
{
    struct scope_ctx c = { .match_by = match_by, .device_scopes = device_scopes };
    if (match_by && *match_by && strcmp(match_by, DISCOVERY_MATCH_RFC3986) && strcmp(match_by, DISCOVERY_MATCH_STRCMP0))
        return -1;
    int r = each_token(probe_scopes, probe_scope_cb, &c);
    if (r < 0)
        return -1;
    return r == 0;
}

struct type_ctx {
    const char *ours;
    const char *tok;
    size_t len;
};

static int our_type_cb(const char *tok, size_t len, void *arg)
{
    struct type_ctx *c = arg;
    return len == c->len && strncmp(tok, c->tok, len) == 0;
}

static int probe_type_cb(const char *tok, size_t len, void *arg)
{
    struct type_ctx *c = arg;
    c->tok = tok;
    c->len = len;
    return each_token(c->ours, our_type_cb, c) ? 0 : 1;
}

int discovery_types_match(const char *probe_types, const char *our_types)
{
    struct type_ctx c = { .ours = our_types };
    return each_token(probe_types, probe_type_cb, &c) == 0;
}
