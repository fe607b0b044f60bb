/* Host access filter: validation of ONVIF IPAddressFilter entries, the
 * peer check run after accept(), all-or-nothing set/add/remove with lockout
 * protection, and persistence in state_dir/ipfilter.xml through atomicfile. */
#include "opennvt/ipfilter.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define IPFILTER_FILE_MAX (64 * 1024)
#define IPFILTER_FILE_NAME "ipfilter.xml"

/* What the peer check reads: the network with host bits cleared, so a match
 * is a byte compare plus one masked byte. IPv4 networks use net[0..3]. */
struct match_entry {
    uint8_t prefix;
    uint8_t applies_to_v4;  /* IPv6 entry inside ::ffff:0:0/96: also matches IPv4 peers */
    uint8_t net[16];
};

struct family_list {
    size_t n;
    struct match_entry m[IPFILTER_MAX_PER_FAMILY];
    uint8_t given[IPFILTER_MAX_PER_FAMILY][16];  /* address as configured (host bits kept) */
};

/* One immutable rule set; a change builds a new one and swaps the pointer. */
struct ruleset {
    enum ipfilter_type type;
    struct family_list v4, v6;
};

struct ipfilter {
    pthread_rwlock_t lock;        /* guards the rules pointer; peer checks hold it for reading */
    pthread_mutex_t change_lock;  /* serialises set/add/remove across validation, store and swap */
    char path[PATH_MAX];
    struct ruleset *rules;
};

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

const char *ipfilter_strerror(int err)
{
    switch (err) {
    case IPFILTER_OK: return "ok";
    case IPFILTER_E_INVALID_V4: return "invalid IPv4 address or prefix length";
    case IPFILTER_E_INVALID_V6: return "invalid IPv6 address or prefix length";
    case IPFILTER_E_TOO_MANY: return "IP filter list is full";
    case IPFILTER_E_LOCKOUT: return "change would lock out the requesting client";
    case IPFILTER_E_NO_ENTRY: return "no such IP filter entry";
    case IPFILTER_E_STORE: return "could not save IP filter";
    case IPFILTER_E_NOMEM: return "out of memory";
    case IPFILTER_E_INVALID_TYPE: return "invalid IP filter type";
    }
    return "unknown error";
}

/* --- entries -------------------------------------------------------------- */

static int family_error(int family)
{
    return family == AF_INET6 ? IPFILTER_E_INVALID_V6 : IPFILTER_E_INVALID_V4;
}

/* Parses one entry into addr (4 or 16 bytes used). inet_pton is strict: a
 * dotted quad for AF_INET, no zone index or surrounding blanks for AF_INET6. */
static int parse_entry(int family, const struct ipfilter_prefix *p, uint8_t addr[16])
{
    if (family != AF_INET && family != AF_INET6)
        return IPFILTER_E_INVALID_V4;
    if (!p || !memchr(p->address, '\0', sizeof p->address))
        return family_error(family);
    int max_prefix = family == AF_INET ? 32 : 128;
    if (p->prefix_len < 0 || p->prefix_len > max_prefix)
        return family_error(family);
    memset(addr, 0, 16);
    if (inet_pton(family, p->address, addr) != 1)
        return family_error(family);
    return IPFILTER_OK;
}

int ipfilter_prefix_valid(int family, const struct ipfilter_prefix *p)
{
    uint8_t addr[16];
    return parse_entry(family, p, addr);
}

static void make_match(struct match_entry *m, const uint8_t addr[16], int len, int prefix)
{
    memset(m, 0, sizeof *m);
    m->prefix = (uint8_t)prefix;
    int full = prefix / 8, rem = prefix % 8;
    memcpy(m->net, addr, (size_t)full);
    if (rem && full < len)
        m->net[full] = (uint8_t)(addr[full] & (0xff << (8 - rem)));
    m->applies_to_v4 = len == 16 && prefix >= 96 && memcmp(m->net, v4_mapped_prefix, 12) == 0;
}

static int prefix_matches(const struct match_entry *m, const uint8_t *addr)
{
    unsigned full = m->prefix / 8u, rem = m->prefix % 8u;
    if (memcmp(m->net, addr, full) != 0)
        return 0;
    return rem == 0 || ((m->net[full] ^ addr[full]) & (0xffu << (8 - rem)) & 0xffu) == 0;
}

static long list_find(const struct family_list *l, const uint8_t addr[16], int prefix)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->m[i].prefix == prefix && memcmp(l->given[i], addr, 16) == 0)
            return (long)i;
    return -1;
}

/* Appends an entry unless the same address and prefix are listed already. */
static int list_add(struct family_list *l, int family, const uint8_t addr[16], int prefix)
{
    if (list_find(l, addr, prefix) >= 0)
        return IPFILTER_OK;
    if (l->n >= IPFILTER_MAX_PER_FAMILY)
        return IPFILTER_E_TOO_MANY;
    memcpy(l->given[l->n], addr, 16);
    make_match(&l->m[l->n], addr, family == AF_INET ? 4 : 16, prefix);
    l->n++;
    return IPFILTER_OK;
}

/* --- peer check ----------------------------------------------------------- */

/* 1 when rs admits peer. No allocation, no system call. */
static int ruleset_allows(const struct ruleset *rs, const struct sockaddr *peer)
{
    const uint8_t *v4 = NULL, *v6 = NULL;
    uint8_t mapped[16];
    if (peer->sa_family == AF_INET) {
        v4 = (const uint8_t *)&((const struct sockaddr_in *)(const void *)peer)->sin_addr;
        memcpy(mapped, v4_mapped_prefix, 12);
        memcpy(mapped + 12, v4, 4);
        v6 = mapped;
    } else if (peer->sa_family == AF_INET6) {
        v6 = ((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr.s6_addr;
        if (memcmp(v6, v4_mapped_prefix, 12) == 0)
            v4 = v6 + 12;
    } else {
        return 1;
    }
    int hit = 0;
    if (v4)
        for (size_t i = 0; i < rs->v4.n && !hit; i++)
            hit = prefix_matches(&rs->v4.m[i], v4);
    for (size_t i = 0; i < rs->v6.n && !hit; i++)
        if (!v4 || rs->v6.m[i].applies_to_v4)
            hit = prefix_matches(&rs->v6.m[i], v6);
    return rs->type == IPFILTER_ALLOW ? hit : !hit;
}

int ipfilter_allows(struct ipfilter *f, const struct sockaddr *peer)
{
    if (!peer)
        return 0;
    pthread_rwlock_rdlock(&f->lock);
    int ok = ruleset_allows(f->rules, peer);
    pthread_rwlock_unlock(&f->lock);
    return ok;
}

/* --- persistence ---------------------------------------------------------- */

static int append_list(char *buf, size_t cap, size_t *used, const char *tag, int family,
                       const struct family_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        char text[INET6_ADDRSTRLEN];
        if (!inet_ntop(family, l->given[i], text, sizeof text))
            return -1;
        int n = snprintf(buf + *used, cap - *used, "  <%s>%s/%u</%s>\n", tag, text, l->m[i].prefix, tag);
        if (n < 0 || (size_t)n >= cap - *used)
            return -1;
        *used += (size_t)n;
    }
    return 0;
}

/* Writes rs to the file; called before rs becomes the current rule set. */
static int store(const struct ipfilter *f, const struct ruleset *rs)
{
    size_t cap = 256 + (rs->v4.n + rs->v6.n) * (2 * sizeof "<ipv6></ipv6>" + INET6_ADDRSTRLEN + 8);
    char *buf = malloc(cap);
    if (!buf)
        return IPFILTER_E_NOMEM;
    size_t used = 0;
    int n = snprintf(buf, cap, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ipfilter>\n  <type>%s</type>\n",
                     rs->type == IPFILTER_ALLOW ? "Allow" : "Deny");
    int rc = n > 0 && (size_t)n < cap ? 0 : -1;
    if (rc == 0) {
        used = (size_t)n;
        rc = append_list(buf, cap, &used, "ipv4", AF_INET, &rs->v4);
    }
    if (rc == 0)
        rc = append_list(buf, cap, &used, "ipv6", AF_INET6, &rs->v6);
    if (rc == 0) {
        n = snprintf(buf + used, cap - used, "</ipfilter>\n");
        rc = n > 0 && (size_t)n < cap - used ? 0 : -1;
        used += rc == 0 ? (size_t)n : 0;
    }
    if (rc != 0) {
        free(buf);
        log_err("security", "formatting %s failed", f->path);
        return IPFILTER_E_STORE;
    }
    rc = atomicfile_write(f->path, buf, used, 0600);
    free(buf);
    if (rc != 0) {
        log_err("security", "saving %s failed: %s", f->path, strerror(-rc));
        return IPFILTER_E_STORE;
    }
    return IPFILTER_OK;
}

/* Parses "address/prefix" as written by store (blanks around it tolerated). */
static int parse_stored_entry(int family, const char *text, uint8_t addr[16], int *prefix)
{
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                       text[len - 1] == '\r'))
        len--;
    const char *slash = memchr(text, '/', len);
    if (!slash)
        return -1;
    struct ipfilter_prefix p = { .prefix_len = 0 };
    size_t alen = (size_t)(slash - text);
    if (alen == 0 || alen >= sizeof p.address)
        return -1;
    memcpy(p.address, text, alen);
    const char *d = slash + 1, *end = text + len;
    if (d == end || end - d > 3 || (*d == '0' && end - d > 1))
        return -1;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9')
            return -1;
        p.prefix_len = p.prefix_len * 10 + (*d - '0');
    }
    if (parse_entry(family, &p, addr) != IPFILTER_OK)
        return -1;
    *prefix = p.prefix_len;
    return 0;
}

static int text_is_blank(const xmlChar *t)
{
    for (; t && *t; t++)
        if (*t != ' ' && *t != '\t' && *t != '\n' && *t != '\r')
            return 0;
    return 1;
}

/* Reads the file into rs. Returns 0, -ENOENT when absent, or another -errno
 * (-EINVAL for anything that is not exactly a filter we would have written). */
static int load(const struct ipfilter *f, struct ruleset *rs)
{
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(f->path, IPFILTER_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, f->path, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc)
        return -EINVAL;
    xmlNode *root = xmlDocGetRootElement(doc);
    rc = root && !strcmp((const char *)root->name, "ipfilter") ? 0 : -EINVAL;
    int have_type = 0;
    for (xmlNode *c = root ? root->children : NULL; c && rc == 0; c = c->next) {
        if (c->type == XML_TEXT_NODE) {
            rc = text_is_blank(c->content) ? 0 : -EINVAL;
            continue;
        }
        if (c->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *t = xmlNodeGetContent(c);
        const char *name = (const char *)c->name, *text = t ? (const char *)t : "";
        if (!strcmp(name, "type") && !have_type) {
            have_type = 1;
            if (!strcmp(text, "Allow"))
                rs->type = IPFILTER_ALLOW;
            else if (!strcmp(text, "Deny"))
                rs->type = IPFILTER_DENY;
            else
                rc = -EINVAL;
        } else if (!strcmp(name, "ipv4") || !strcmp(name, "ipv6")) {
            int family = name[3] == '4' ? AF_INET : AF_INET6;
            uint8_t addr[16];
            int prefix = 0;
            if (parse_stored_entry(family, text, addr, &prefix) != 0 ||
                list_add(family == AF_INET ? &rs->v4 : &rs->v6, family, addr, prefix) != IPFILTER_OK)
                rc = -EINVAL;
        } else {
            rc = -EINVAL;
        }
        xmlFree(t);
    }
    xmlFreeDoc(doc);
    if (rc == 0 && !have_type)
        rc = -EINVAL;
    return rc;
}

/* --- lifecycle ------------------------------------------------------------ */

int ipfilter_open(struct ipfilter **out, const char *state_dir)
{
    *out = NULL;
    struct ipfilter *f = calloc(1, sizeof *f);
    struct ruleset *rs = calloc(1, sizeof *rs);
    if (!f || !rs) {
        free(f);
        free(rs);
        return IPFILTER_E_NOMEM;
    }
    if (snprintf(f->path, sizeof f->path, "%s/%s", state_dir, IPFILTER_FILE_NAME) >= (int)sizeof f->path) {
        log_err("security", "state directory path too long for %s", IPFILTER_FILE_NAME);
        free(f);
        free(rs);
        return IPFILTER_E_STORE;
    }
    int rc = load(f, rs);
    if (rc == -ENOENT) {
        memset(rs, 0, sizeof *rs);
        rs->type = IPFILTER_DENY;  /* no filter configured: everyone admitted */
    } else if (rc != 0) {
        log_err("security", "%s is unreadable or corrupt (%s); refusing to start over it", f->path,
                strerror(-rc));
        free(f);
        free(rs);
        return IPFILTER_E_STORE;
    }
    /* Peer checks arrive continuously; without writer preference glibc lets
     * them starve a rule change indefinitely. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#ifdef PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&f->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&f->change_lock, NULL);
    f->rules = rs;
    *out = f;
    return IPFILTER_OK;
}

void ipfilter_close(struct ipfilter *f)
{
    if (!f)
        return;
    pthread_rwlock_destroy(&f->lock);
    pthread_mutex_destroy(&f->change_lock);
    free(f->rules);
    free(f);
}

static void list_to_text(int family, const struct family_list *l, struct ipfilter_prefix *out, size_t *n)
{
    for (size_t i = 0; i < l->n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        if (!inet_ntop(family, l->given[i], out[i].address, sizeof out[i].address))
            out[i].address[0] = '\0';
        out[i].prefix_len = l->m[i].prefix;
    }
    *n = l->n;
}

int ipfilter_get(struct ipfilter *f, struct ipfilter_rules *out)
{
    pthread_rwlock_rdlock(&f->lock);
    const struct ruleset *rs = f->rules;
    out->type = rs->type;
    list_to_text(AF_INET, &rs->v4, out->v4, &out->n_v4);
    list_to_text(AF_INET6, &rs->v6, out->v6, &out->n_v6);
    pthread_rwlock_unlock(&f->lock);
    return IPFILTER_OK;
}

/* --- changes -------------------------------------------------------------- */

/* Every entry of a request, parsed: v4 first, then v6, as bad_index counts. */
struct parsed_request {
    size_t n_v4, n_v6;
    uint8_t addr[2 * IPFILTER_MAX_PER_FAMILY][16];
};

static int parse_request(const struct ipfilter_rules *r, struct parsed_request *pr, size_t *bad)
{
    if (r->n_v4 > IPFILTER_MAX_PER_FAMILY) {
        *bad = IPFILTER_MAX_PER_FAMILY;
        return IPFILTER_E_TOO_MANY;
    }
    if (r->n_v6 > IPFILTER_MAX_PER_FAMILY) {
        *bad = r->n_v4 + IPFILTER_MAX_PER_FAMILY;
        return IPFILTER_E_TOO_MANY;
    }
    pr->n_v4 = r->n_v4;
    pr->n_v6 = r->n_v6;
    for (size_t i = 0; i < r->n_v4; i++) {
        int rc = parse_entry(AF_INET, &r->v4[i], pr->addr[i]);
        if (rc != IPFILTER_OK) {
            *bad = i;
            return rc;
        }
    }
    for (size_t i = 0; i < r->n_v6; i++) {
        int rc = parse_entry(AF_INET6, &r->v6[i], pr->addr[r->n_v4 + i]);
        if (rc != IPFILTER_OK) {
            *bad = r->n_v4 + i;
            return rc;
        }
    }
    return IPFILTER_OK;
}

/* Appends the request's entries to next; *bad names the first that does not fit. */
static int add_request(struct ruleset *next, const struct ipfilter_rules *r, const struct parsed_request *pr,
                       size_t *bad)
{
    for (size_t i = 0; i < pr->n_v4 + pr->n_v6; i++) {
        int v4 = i < pr->n_v4;
        int prefix = v4 ? r->v4[i].prefix_len : r->v6[i - pr->n_v4].prefix_len;
        int rc = list_add(v4 ? &next->v4 : &next->v6, v4 ? AF_INET : AF_INET6, pr->addr[i], prefix);
        if (rc != IPFILTER_OK) {
            *bad = i;
            return rc;
        }
    }
    return IPFILTER_OK;
}

/* Checks, stores and installs next; called with change_lock held. Takes next. */
static int commit(struct ipfilter *f, struct ruleset *next, const struct sockaddr *requester)
{
    int rc = IPFILTER_OK;
    if (requester && !ruleset_allows(next, requester))
        rc = IPFILTER_E_LOCKOUT;
    if (rc == IPFILTER_OK)
        rc = store(f, next);
    if (rc != IPFILTER_OK) {
        free(next);
        return rc;
    }
    pthread_rwlock_wrlock(&f->lock);
    struct ruleset *old = f->rules;
    f->rules = next;
    pthread_rwlock_unlock(&f->lock);
    free(old);
    return IPFILTER_OK;
}

/* Builds next as cur without the request's entries; every one must be listed. */
static int remove_request(struct ruleset *next, const struct ruleset *cur, const struct ipfilter_rules *r,
                          const struct parsed_request *pr, size_t *bad)
{
    uint8_t drop4[IPFILTER_MAX_PER_FAMILY] = { 0 }, drop6[IPFILTER_MAX_PER_FAMILY] = { 0 };
    for (size_t i = 0; i < pr->n_v4 + pr->n_v6; i++) {
        int v4 = i < pr->n_v4;
        int prefix = v4 ? r->v4[i].prefix_len : r->v6[i - pr->n_v4].prefix_len;
        long k = list_find(v4 ? &cur->v4 : &cur->v6, pr->addr[i], prefix);
        if (k < 0) {
            *bad = i;
            return IPFILTER_E_NO_ENTRY;
        }
        (v4 ? drop4 : drop6)[k] = 1;
    }
    next->type = cur->type;
    for (size_t i = 0; i < cur->v4.n; i++)
        if (!drop4[i])
            list_add(&next->v4, AF_INET, cur->v4.given[i], cur->v4.m[i].prefix);
    for (size_t i = 0; i < cur->v6.n; i++)
        if (!drop6[i])
            list_add(&next->v6, AF_INET6, cur->v6.given[i], cur->v6.m[i].prefix);
    return IPFILTER_OK;
}

enum change_kind { CHANGE_SET, CHANGE_ADD, CHANGE_REMOVE };

/* Shared frame of set/add/remove: parse everything, build the new rule set
 * under change_lock, then commit (lockout check, store, swap). */
static int change(struct ipfilter *f, enum change_kind kind, const struct ipfilter_rules *r,
                  const struct sockaddr *requester, size_t *bad_index)
{
    size_t bad_dummy;
    size_t *bad = bad_index ? bad_index : &bad_dummy;
    *bad = SIZE_MAX;
    if (kind == CHANGE_SET && r->type != IPFILTER_DENY && r->type != IPFILTER_ALLOW)
        return IPFILTER_E_INVALID_TYPE;
    struct parsed_request *pr = malloc(sizeof *pr);
    struct ruleset *next = calloc(1, sizeof *next);
    if (!pr || !next) {
        free(pr);
        free(next);
        return IPFILTER_E_NOMEM;
    }
    int rc = parse_request(r, pr, bad);
    if (rc != IPFILTER_OK) {
        free(pr);
        free(next);
        return rc;
    }
    pthread_mutex_lock(&f->change_lock);
    const struct ruleset *cur = f->rules;  /* stable: only changed under change_lock */
    if (kind == CHANGE_SET) {
        next->type = r->type;
        rc = add_request(next, r, pr, bad);
    } else if (kind == CHANGE_ADD) {
        *next = *cur;
        rc = add_request(next, r, pr, bad);
    } else {
        rc = remove_request(next, cur, r, pr, bad);
    }
    if (rc == IPFILTER_OK)
        rc = commit(f, next, requester);
    else
        free(next);
    pthread_mutex_unlock(&f->change_lock);
    free(pr);
    return rc;
}

int ipfilter_set(struct ipfilter *f, const struct ipfilter_rules *rules, const struct sockaddr *requester,
                 size_t *bad_index)
{
    return change(f, CHANGE_SET, rules, requester, bad_index);
}

int ipfilter_add(struct ipfilter *f, const struct ipfilter_rules *entries, const struct sockaddr *requester,
                 size_t *bad_index)
{
    return change(f, CHANGE_ADD, entries, requester, bad_index);
}

int ipfilter_remove(struct ipfilter *f, const struct ipfilter_rules *entries, const struct sockaddr *requester,
                    size_t *bad_index)
{
    return change(f, CHANGE_REMOVE, entries, requester, bad_index);
}
