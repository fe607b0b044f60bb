/* Discovery scopes and mode: validation, all-or-nothing updates, persistence
 * in state_dir/netcfg.xml through atomicfile. */
#include "opennvt/netcfg.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define NETCFG_MAX_FIXED 8
#define NETCFG_FILE_MAX (64 * 1024)

struct scope_list {
    size_t n;
    char uri[NETCFG_MAX_SCOPES][NETCFG_SCOPE_MAX_LEN + 1];
};

struct netcfg {
    pthread_mutex_t lock;
    char path[PATH_MAX];
    size_t n_fixed;
    char fixed[NETCFG_MAX_FIXED][NETCFG_SCOPE_MAX_LEN + 1];
    struct scope_list scopes;   /* configurable */
    int discoverable;
    void (*hook)(void *);
    void *hook_arg;
};

const char *netcfg_strerror(int err)
{
    switch (err) {
    case NETCFG_OK: return "ok";
    case NETCFG_E_TOO_MANY: return "too many scopes";
    case NETCFG_E_INVALID: return "invalid scope URI";
    case NETCFG_E_FIXED: return "fixed scope cannot be changed";
    case NETCFG_E_NO_SCOPE: return "no such scope";
    case NETCFG_E_STORE: return "could not save settings";
    case NETCFG_E_NOMEM: return "out of memory";
    }
    return "unknown error";
}

int netcfg_scope_is_valid(const char *uri)
{
    if (!uri)
        return 0;
    size_t len = strlen(uri);
    if (len == 0 || len > NETCFG_SCOPE_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] >= 0x7f)
            return 0;
    /* scheme ":" ... per RFC 3986 */
    if (!isalpha((unsigned char)uri[0]))
        return 0;
    const char *colon = strchr(uri, ':');
    if (!colon || colon[1] == '\0')
        return 0;
    for (const char *p = uri; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return 0;
    return 1;
}

static int is_fixed(const struct netcfg *nc, const char *uri)
{
    for (size_t i = 0; i < nc->n_fixed; i++)
        if (strcmp(nc->fixed[i], uri) == 0)
            return 1;
    return 0;
}

static int list_contains(const struct scope_list *l, const char *uri)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->uri[i], uri) == 0)
            return 1;
    return 0;
}

static void xml_escape_append(char **p, size_t *left, const char *s)
{
    for (; *s && *left > 8; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        }
        if (rep) {
            size_t n = strlen(rep);
            memcpy(*p, rep, n);
            *p += n;
            *left -= n;
        } else {
            *(*p)++ = *s;
            (*left)--;
        }
    }
    **p = '\0';
}

/* Writes the given state; called with the lock held, before committing it in memory. */
static int store(const struct netcfg *nc, const struct scope_list *scopes, int discoverable)
{
    size_t cap = 512 + scopes->n * (NETCFG_SCOPE_MAX_LEN * 6 + 32);
    char *buf = malloc(cap);
    if (!buf)
        return NETCFG_E_NOMEM;
    char *p = buf;
    size_t left = cap;
    int n = snprintf(p, left, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<netcfg>\n"
                              "  <discovery-mode>%s</discovery-mode>\n  <scopes>\n",
                     discoverable ? "Discoverable" : "NonDiscoverable");
    p += n;
    left -= (size_t)n;
    for (size_t i = 0; i < scopes->n; i++) {
        n = snprintf(p, left, "    <scope>");
        p += n;
        left -= (size_t)n;
        xml_escape_append(&p, &left, scopes->uri[i]);
        n = snprintf(p, left, "</scope>\n");
        p += n;
        left -= (size_t)n;
    }
    n = snprintf(p, left, "  </scopes>\n</netcfg>\n");
    p += n;
    int rc = atomicfile_write(nc->path, buf, (size_t)(p - buf), 0600);
    free(buf);
    if (rc != 0) {
        log_err("config", "saving %s failed: %s", nc->path, strerror(-rc));
        return NETCFG_E_STORE;
    }
    return NETCFG_OK;
}

static int load(struct netcfg *nc)
{
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(nc->path, NETCFG_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, nc->path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc)
        return -EINVAL;
    struct scope_list scopes = { 0 };
    int discoverable = 1;
    rc = 0;
    xmlNode *root = xmlDocGetRootElement(doc);
    for (xmlNode *c = root ? root->children : NULL; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)c->name, "discovery-mode")) {
            xmlChar *t = xmlNodeGetContent(c);
            discoverable = !(t && !strcmp((const char *)t, "NonDiscoverable"));
            xmlFree(t);
        } else if (!strcmp((const char *)c->name, "scopes")) {
            for (xmlNode *s = c->children; s; s = s->next) {
                if (s->type != XML_ELEMENT_NODE)
                    continue;
                xmlChar *t = xmlNodeGetContent(s);
                if (t && netcfg_scope_is_valid((const char *)t) && scopes.n < NETCFG_MAX_SCOPES &&
                    !is_fixed(nc, (const char *)t) && !list_contains(&scopes, (const char *)t))
                    snprintf(scopes.uri[scopes.n++], NETCFG_SCOPE_MAX_LEN + 1, "%s", (const char *)t);
                xmlFree(t);
            }
        }
    }
    xmlFreeDoc(doc);
    nc->scopes = scopes;
    nc->discoverable = discoverable;
    return 0;
}

int netcfg_open(struct netcfg **out, const char *state_dir,
                const char *const *fixed_scopes, size_t n_fixed,
                const char *const *default_scopes, size_t n_default)
{
    *out = NULL;
    struct netcfg *nc = calloc(1, sizeof *nc);
    if (!nc)
        return NETCFG_E_NOMEM;
    pthread_mutex_init(&nc->lock, NULL);
    snprintf(nc->path, sizeof nc->path, "%s/netcfg.xml", state_dir);
    for (size_t i = 0; i < n_fixed && nc->n_fixed < NETCFG_MAX_FIXED; i++)
        if (netcfg_scope_is_valid(fixed_scopes[i]))
            snprintf(nc->fixed[nc->n_fixed++], NETCFG_SCOPE_MAX_LEN + 1, "%s", fixed_scopes[i]);
    int rc = load(nc);
    if (rc == -ENOENT) {
        nc->discoverable = 1;
        for (size_t i = 0; i < n_default && nc->scopes.n < NETCFG_MAX_SCOPES; i++)
            if (netcfg_scope_is_valid(default_scopes[i]) && !is_fixed(nc, default_scopes[i]) &&
                !list_contains(&nc->scopes, default_scopes[i]))
                snprintf(nc->scopes.uri[nc->scopes.n++], NETCFG_SCOPE_MAX_LEN + 1, "%s", default_scopes[i]);
        rc = store(nc, &nc->scopes, nc->discoverable);
    } else if (rc != 0) {
        log_err("config", "%s is unreadable or corrupt; refusing to start over it", nc->path);
        rc = NETCFG_E_STORE;
    }
    if (rc != 0) {
        netcfg_close(nc);
        return rc;
    }
    *out = nc;
    return NETCFG_OK;
}

void netcfg_close(struct netcfg *nc)
{
    if (!nc)
        return;
    pthread_mutex_destroy(&nc->lock);
    free(nc);
}

void netcfg_set_change_hook(struct netcfg *nc, void (*hook)(void *arg), void *arg)
{
    pthread_mutex_lock(&nc->lock);
    nc->hook = hook;
    nc->hook_arg = arg;
    pthread_mutex_unlock(&nc->lock);
}

static void notify(struct netcfg *nc)
{
    pthread_mutex_lock(&nc->lock);
    void (*hook)(void *) = nc->hook;
    void *arg = nc->hook_arg;
    pthread_mutex_unlock(&nc->lock);
    if (hook)
        hook(arg);
}

int netcfg_get_scopes(struct netcfg *nc, struct netcfg_scope **scopes, size_t *n)
{
    pthread_mutex_lock(&nc->lock);
    size_t total = nc->n_fixed + nc->scopes.n;
    struct netcfg_scope *out = calloc(total ? total : 1, sizeof *out);
    if (!out) {
        pthread_mutex_unlock(&nc->lock);
        return NETCFG_E_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < nc->n_fixed; i++, k++) {
        memcpy(out[k].uri, nc->fixed[i], sizeof out[k].uri);
        out[k].fixed = 1;
    }
    for (size_t i = 0; i < nc->scopes.n; i++, k++)
        memcpy(out[k].uri, nc->scopes.uri[i], sizeof out[k].uri);
    pthread_mutex_unlock(&nc->lock);
    *scopes = out;
    *n = total;
    return NETCFG_OK;
}

/* Validates uris and appends them (skipping duplicates and fixed ones) to list. */
static int append_scopes(const struct netcfg *nc, struct scope_list *list, const char *const *uris, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!netcfg_scope_is_valid(uris[i]))
            return NETCFG_E_INVALID;
        if (is_fixed(nc, uris[i]) || list_contains(list, uris[i]))
            continue;
        if (list->n >= NETCFG_MAX_SCOPES)
            return NETCFG_E_TOO_MANY;
        snprintf(list->uri[list->n++], NETCFG_SCOPE_MAX_LEN + 1, "%s", uris[i]);
    }
    return NETCFG_OK;
}

static int commit_scopes(struct netcfg *nc, const struct scope_list *next)
{
    int rc = store(nc, next, nc->discoverable);
    if (rc == NETCFG_OK)
        nc->scopes = *next;
    return rc;
}

int netcfg_set_scopes(struct netcfg *nc, const char *const *uris, size_t n)
{
    if (n > NETCFG_MAX_SCOPES)
        return NETCFG_E_TOO_MANY;
    struct scope_list *next = calloc(1, sizeof *next);
    if (!next)
        return NETCFG_E_NOMEM;
    pthread_mutex_lock(&nc->lock);
    int rc = append_scopes(nc, next, uris, n);
    if (rc == NETCFG_OK)
        rc = commit_scopes(nc, next);
    pthread_mutex_unlock(&nc->lock);
    free(next);
    if (rc == NETCFG_OK)
        notify(nc);
    return rc;
}

int netcfg_add_scopes(struct netcfg *nc, const char *const *uris, size_t n)
{
    struct scope_list *next = malloc(sizeof *next);
    if (!next)
        return NETCFG_E_NOMEM;
    pthread_mutex_lock(&nc->lock);
    *next = nc->scopes;
    int rc = n > NETCFG_MAX_SCOPES ? NETCFG_E_TOO_MANY : append_scopes(nc, next, uris, n);
    if (rc == NETCFG_OK)
        rc = commit_scopes(nc, next);
    pthread_mutex_unlock(&nc->lock);
    free(next);
    if (rc == NETCFG_OK)
        notify(nc);
    return rc;
}

int netcfg_remove_scopes(struct netcfg *nc, const char *const *uris, size_t n)
{
    struct scope_list *next = malloc(sizeof *next);
    if (!next)
        return NETCFG_E_NOMEM;
    pthread_mutex_lock(&nc->lock);
    *next = nc->scopes;
    int rc = NETCFG_OK;
    for (size_t i = 0; i < n && rc == NETCFG_OK; i++) {
        if (!uris[i] || is_fixed(nc, uris[i])) {
            rc = uris[i] ? NETCFG_E_FIXED : NETCFG_E_INVALID;
            break;
        }
        size_t k = 0;
        while (k < next->n && strcmp(next->uri[k], uris[i]) != 0)
            k++;
        if (k == next->n) {
            rc = NETCFG_E_NO_SCOPE;
            break;
        }
        memmove(next->uri[k], next->uri[k + 1], (next->n - k - 1) * sizeof next->uri[0]);
        next->n--;
    }
    if (rc == NETCFG_OK)
        rc = commit_scopes(nc, next);
    pthread_mutex_unlock(&nc->lock);
    free(next);
    if (rc == NETCFG_OK)
        notify(nc);
    return rc;
}

int netcfg_get_discoverable(struct netcfg *nc)
{
    pthread_mutex_lock(&nc->lock);
    int d = nc->discoverable;
    pthread_mutex_unlock(&nc->lock);
    return d;
}

int netcfg_set_discoverable(struct netcfg *nc, int discoverable)
{
    pthread_mutex_lock(&nc->lock);
    int rc = store(nc, &nc->scopes, discoverable ? 1 : 0);
    int changed = 0;
    if (rc == NETCFG_OK) {
        changed = nc->discoverable != (discoverable ? 1 : 0);
        nc->discoverable = discoverable ? 1 : 0;
    }
    pthread_mutex_unlock(&nc->lock);
    if (rc == NETCFG_OK && changed)
        notify(nc);
    return rc;
}
