/* TLS server policy: network protocols and ports, the certification paths and
 * TLS versions the TLS server uses, client authentication and its validation
 * policies; safe apply (tentative changes restored unless confirmed),
 * state_dir/tlspolicy.xml, and the identities and validation stores the TLS
 * server reads per handshake, cached per keystore and policy generation. */
#include "opennvt/tlspolicy.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <openssl/x509v3.h>

#define AREA "security"
#define TLSPOLICY_FILE_NAME "tlspolicy.xml"
#define TLSPOLICY_FILE_MAX (16 * 1024)
#define TLSPOLICY_TEXT_MAX 64          /* longest element text we ever write */
#define TLSPOLICY_WINDOW_MAX_S 86400
#define DAY_S 86400

enum key_family { FAMILY_OTHER, FAMILY_RSA, FAMILY_EC, FAMILY_ED25519, FAMILY_ED448 };

/* What the keystore says about an assigned path. Paths, certificates and keys
 * never change in the keystore and cannot be deleted while assigned, so this
 * stays true; the reference check answers from it without calling back. */
struct path_ref {
    size_t n_certs;
    char cert_ids[KEYSTORE_MAX_PATH_LEN][KEYSTORE_ID_MAX];
    char key_id[KEYSTORE_ID_MAX];
    int family;
    time_t not_before, not_after;     /* of the leaf */
};

/* One configuration, as stored. Protocols are stored only once set. */
struct conf {
    int protocols_stored;
    struct tlspolicy_protocols protocols;
    unsigned tls_versions;
    size_t n_paths;
    char paths[TLSPOLICY_MAX_SERVER_PATHS][KEYSTORE_ID_MAX];
    struct path_ref refs[TLSPOLICY_MAX_SERVER_PATHS];
    int client_auth;
    int cn_maps;
    size_t n_policies;
    char policies[TLSPOLICY_MAX_CPV_POLICIES][KEYSTORE_ID_MAX];
    /* TLSPOLICY_FORCE_* still in effect (memory only): the command line's
     * ports hold until protocols are set; a rollback brings them back. */
    unsigned forced;
};

struct identity_entry {
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) *chain;
    time_t not_before, not_after;
};

/* Loaded identities of the assigned paths; replaced as a whole. */
struct identity_cache {
    unsigned long ks_gen, tp_gen;
    size_t n;
    struct identity_entry e[TLSPOLICY_MAX_SERVER_PATHS];
};

struct cpv_entry {
    X509_STORE *store;                /* anchors trusted, CRLs, revocation flags */
    STACK_OF(X509) *certs;            /* every keystore certificate: candidate intermediates */
    int require_eku;
};

/* Prepared validation stores; reference counted so a verification can run
 * outside the lock while a newer cache replaces this one. */
struct cpv_cache {
    unsigned refs;
    unsigned long ks_gen, tp_gen;
    size_t n_assigned;                /* policies assigned; n of them could be prepared */
    size_t n;
    struct cpv_entry e[TLSPOLICY_MAX_CPV_POLICIES];
};

enum expiry_kind { EXPIRY_SOON = 1, EXPIRY_PAST = 2 };

struct expiry_note {
    char path_id[KEYSTORE_ID_MAX];
    enum expiry_kind kind;
    time_t logged;
};

/* Lock order: the keystore calls reference_check with its write lock held,
 * and that takes lock. So lock is never held across a keystore call;
 * change_lock (held over validation, which reads the keystore, and the
 * store) is never taken from inside the keystore, so keystore calls under
 * change_lock cannot deadlock. */
struct tlspolicy {
    pthread_mutex_t change_lock;      /* serialises changes, confirm, rollback */
    pthread_mutex_t lock;             /* guards cur, confirmed, pending, generation */
    pthread_mutex_t cache_lock;       /* guards ids, cpv */
    pthread_mutex_t expiry_lock;      /* guards notes */
    tlspolicy_expiry_fn expiry_fn;    /* told of each expiry note (events); set before use */
    void *expiry_arg;
    struct keystore *ks;
    struct tlspolicy_settings s;
    int reserved[TLSPOLICY_MAX_RESERVED_PORTS];
    char path[PATH_MAX];
    struct conf cur;
    struct conf confirmed;            /* equals cur while nothing is pending */
    int pending;
    unsigned long pending_gen;
    int64_t deadline_ms;
    unsigned long generation;
    struct identity_cache *ids;
    struct cpv_cache *cpv;
    struct expiry_note notes[TLSPOLICY_MAX_SERVER_PATHS];
    const char *claim_kind;           /* an ID being validated for assignment: "path", "cpvpolicy" */
    char claim_id[KEYSTORE_ID_MAX];
};

const char *tlspolicy_strerror(int err)
{
    switch (err) {
    case TLSPOLICY_OK: return "ok";
    case TLSPOLICY_E_STORE: return "TLS policy state unreadable or could not be saved";
    case TLSPOLICY_E_NOMEM: return "out of memory";
    case TLSPOLICY_E_INVALID: return "invalid argument";
    case TLSPOLICY_E_PORT: return "port outside 1..65535";
    case TLSPOLICY_E_PORT_CONFLICT: return "HTTP and HTTPS on the same port";
    case TLSPOLICY_E_PORT_RESERVED: return "port reserved for another service";
    case TLSPOLICY_E_NO_PROTOCOL: return "HTTP and HTTPS cannot both be disabled";
    case TLSPOLICY_E_PATH_NOT_FOUND: return "no such certification path";
    case TLSPOLICY_E_NO_PRIVATE_KEY: return "the certification path's first certificate has no usable private key";
    case TLSPOLICY_E_NOT_ASSIGNED: return "not assigned";
    case TLSPOLICY_E_FULL: return "maximum number of assignments reached";
    case TLSPOLICY_E_KEY_TYPE: return "a certification path with a key of the same type is assigned";
    case TLSPOLICY_E_IN_USE: return "still needed by HTTPS or client authentication";
    case TLSPOLICY_E_POLICY_NOT_FOUND: return "no such certification path validation policy";
    case TLSPOLICY_E_VERSION: return "unsupported TLS version";
    case TLSPOLICY_E_EMPTY: return "empty TLS version list";
    case TLSPOLICY_E_NO_CLIENT_POLICY: return "client authentication needs an assigned validation policy";
    case TLSPOLICY_E_NO_SERVER_CERT: return "client authentication needs an assigned server certificate";
    case TLSPOLICY_E_CLIENT_CERT: return "client certificate not valid under any assigned policy";
    }
    return "unknown error";
}

/* --- small helpers -------------------------------------------------------- */

static int64_t mono_ms(const struct tlspolicy *tp)
{
    if (tp->s.now_ms)
        return tp->s.now_ms();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static time_t wall_now(const struct tlspolicy *tp)
{
    return tp->s.now ? tp->s.now() : time(NULL);
}

/* A keystore ID: an ASCII NCName shorter than KEYSTORE_ID_MAX. */
static int id_ok(const char *id)
{
    if (!id)
        return 0;
    size_t len = strnlen(id, KEYSTORE_ID_MAX);
    if (len == 0 || len >= KEYSTORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        int other = (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!alpha && (i == 0 || !other))
            return 0;
    }
    return 1;
}

static int family_of(const char *type)
{
    if (!strncmp(type, "RSA", 3))
        return FAMILY_RSA;
    if (!strncmp(type, "EC", 2))
        return FAMILY_EC;
    if (!strncmp(type, "Ed25519", 7) || !strncmp(type, "ED25519", 7))
        return FAMILY_ED25519;
    if (!strncmp(type, "Ed448", 5) || !strncmp(type, "ED448", 5))
        return FAMILY_ED448;
    return FAMILY_OTHER;
}

/* Index of id in n IDs stored KEYSTORE_ID_MAX apart from ids, or -1. */
static long find_id_at(const char *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids + i * KEYSTORE_ID_MAX, id))
            return (long)i;
    return -1;
}
#define find_id(ids, n, id) find_id_at(&(ids)[0][0], (n), (id))

static int protocols_equal(const struct tlspolicy_protocols *a, const struct tlspolicy_protocols *b)
{
    return !!a->http_enabled == !!b->http_enabled && a->http_port == b->http_port &&
           !!a->https_enabled == !!b->https_enabled && a->https_port == b->https_port;
}

/* Equal as stored (refs follow from the path IDs). */
static int conf_equal(const struct conf *a, const struct conf *b)
{
    if (a->forced != b->forced || a->protocols_stored != b->protocols_stored ||
        (a->protocols_stored && !protocols_equal(&a->protocols, &b->protocols)))
        return 0;
    if (a->tls_versions != b->tls_versions || a->client_auth != b->client_auth || a->cn_maps != b->cn_maps ||
        a->n_paths != b->n_paths || a->n_policies != b->n_policies)
        return 0;
    for (size_t i = 0; i < a->n_paths; i++)
        if (strcmp(a->paths[i], b->paths[i]))
            return 0;
    for (size_t i = 0; i < a->n_policies; i++)
        if (strcmp(a->policies[i], b->policies[i]))
            return 0;
    return 1;
}

/* The protocols in effect: stored ones (or the defaults), with forced ports
 * from the command line. */
static struct tlspolicy_protocols effective_protocols(const struct tlspolicy *tp, const struct conf *c)
{
    struct tlspolicy_protocols p = c->protocols_stored ? c->protocols : tp->s.defaults;
    if (c->forced & TLSPOLICY_FORCE_HTTP_PORT)
        p.http_port = tp->s.defaults.http_port;
    if (c->forced & TLSPOLICY_FORCE_HTTPS_PORT)
        p.https_port = tp->s.defaults.https_port;
    p.http_enabled = !!p.http_enabled;
    p.https_enabled = !!p.https_enabled;
    return p;
}

static void remove_path_at(struct conf *c, size_t i)
{
    memmove(&c->paths[i], &c->paths[i + 1], (c->n_paths - i - 1) * sizeof c->paths[0]);
    memmove(&c->refs[i], &c->refs[i + 1], (c->n_paths - i - 1) * sizeof c->refs[0]);
    c->n_paths--;
    memset(&c->paths[c->n_paths], 0, sizeof c->paths[0]);
    memset(&c->refs[c->n_paths], 0, sizeof c->refs[0]);
}

static void remove_policy_at(struct conf *c, size_t i)
{
    memmove(&c->policies[i], &c->policies[i + 1], (c->n_policies - i - 1) * sizeof c->policies[0]);
    c->n_policies--;
    memset(&c->policies[c->n_policies], 0, sizeof c->policies[0]);
}

/* --- TLS versions --------------------------------------------------------- */

int tlspolicy_parse_versions(const char *list, unsigned *versions)
{
    if (!list || !versions)
        return TLSPOLICY_E_INVALID;
    unsigned mask = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        size_t len = (size_t)(p - start);
        if (len == 3 && !strncmp(start, "1.2", 3))
            mask |= TLSPOLICY_TLS12;
        else if (len == 3 && !strncmp(start, "1.3", 3))
            mask |= TLSPOLICY_TLS13;
        else
            return TLSPOLICY_E_VERSION;
    }
    if (!mask)
        return TLSPOLICY_E_EMPTY;
    *versions = mask;
    return TLSPOLICY_OK;
}

void tlspolicy_format_versions(unsigned versions, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    snprintf(buf, len, "%s%s%s", (versions & TLSPOLICY_TLS12) ? "1.2" : "",
             (versions & TLSPOLICY_TLS12) && (versions & TLSPOLICY_TLS13) ? " " : "",
             (versions & TLSPOLICY_TLS13) ? "1.3" : "");
}

/* --- keystore look-ups ---------------------------------------------------- */

/* Resolves an assignable path: it exists, and (when need_private) its first
 * certificate's key holds a private key and is ok. No lock of ours held. */
static int resolve_path(struct keystore *ks, const char *id, struct path_ref *ref, int need_private)
{
    struct keystore_path_info pi;
    struct keystore_cert_info ci;
    struct keystore_key_info ki;
    if (!id_ok(id) || keystore_path_info(ks, id, &pi) != KEYSTORE_OK || pi.n_certs == 0 ||
        pi.n_certs > KEYSTORE_MAX_PATH_LEN)
        return TLSPOLICY_E_PATH_NOT_FOUND;
    if (keystore_cert_info(ks, pi.cert_ids[0], &ci) != KEYSTORE_OK || keystore_key_info(ks, ci.key_id, &ki) != KEYSTORE_OK)
        return TLSPOLICY_E_NO_PRIVATE_KEY;
    if (need_private && (!ki.has_private_key || ki.status != KEYSTORE_KEY_OK))
        return TLSPOLICY_E_NO_PRIVATE_KEY;
    memset(ref, 0, sizeof *ref);
    ref->n_certs = pi.n_certs;
    memcpy(ref->cert_ids, pi.cert_ids, sizeof ref->cert_ids);
    memcpy(ref->key_id, ci.key_id, sizeof ref->key_id);
    ref->family = family_of(ki.type);
    ref->not_before = ci.not_before;
    ref->not_after = ci.not_after;
    return TLSPOLICY_OK;
}

static int policy_exists(struct keystore *ks, const char *id)
{
    struct keystore_cpv_policy p;
    return id_ok(id) && keystore_cpv_policy_info(ks, id, &p) == KEYSTORE_OK;
}

/* --- reference check (called by the keystore, its write lock held) -------- */

static int conf_uses(const struct conf *c, const char *kind, const char *id)
{
    if (!strcmp(kind, "path"))
        return find_id(c->paths, c->n_paths, id) >= 0;
    if (!strcmp(kind, "cpvpolicy"))
        return find_id(c->policies, c->n_policies, id) >= 0;
    for (size_t i = 0; i < c->n_paths; i++) {
        const struct path_ref *r = &c->refs[i];
        if (!strcmp(kind, "cert") && find_id(r->cert_ids, r->n_certs, id) >= 0)
            return 1;
        if (!strcmp(kind, "key") && !strcmp(r->key_id, id))
            return 1;
    }
    return 0;
}

/* The confirmed state counts too: a rollback must find its objects. */
static int reference_check(void *arg, const char *kind, const char *id)
{
    struct tlspolicy *tp = arg;
    if (!kind || !id)
        return 0;
    pthread_mutex_lock(&tp->lock);
    int used = conf_uses(&tp->cur, kind, id) || conf_uses(&tp->confirmed, kind, id) ||
               (tp->claim_kind && !strcmp(tp->claim_kind, kind) && !strcmp(tp->claim_id, id));
    pthread_mutex_unlock(&tp->lock);
    return used;
}

/* Protects id from deletion while it is validated and assigned (change_lock
 * held). A delete that asked the reference check before the claim was
 * visible still holds the keystore's write lock until it is committed;
 * registering the check again takes that lock, so once it returns, such a
 * delete is complete and the validation that follows sees it. Without this,
 * an assignment could land on an object deleted at the same moment. */
static void claim(struct tlspolicy *tp, const char *kind, const char *id)
{
    if (!id_ok(id))
        return;
    pthread_mutex_lock(&tp->lock);
    tp->claim_kind = kind;
    memcpy(tp->claim_id, id, strlen(id) + 1);
    pthread_mutex_unlock(&tp->lock);
    keystore_set_reference_check(tp->ks, reference_check, tp);
}

static void unclaim(struct tlspolicy *tp)
{
    pthread_mutex_lock(&tp->lock);
    tp->claim_kind = NULL;
    tp->claim_id[0] = '\0';
    pthread_mutex_unlock(&tp->lock);
}

/* --- persistence ---------------------------------------------------------- */

static int appendf(char *buf, size_t cap, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int appendf(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    if (*used >= cap)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *used)
        return -1;
    *used += (size_t)n;
    return 0;
}

static int append_conf(char *buf, size_t cap, size_t *used, const char *tag, const struct conf *c)
{
    char versions[16];
    tlspolicy_format_versions(c->tls_versions, versions, sizeof versions);
    int rc = appendf(buf, cap, used, "  <%s>\n", tag);
    if (rc == 0 && c->protocols_stored)
        rc = appendf(buf, cap, used,
                     "    <http-enabled>%d</http-enabled>\n    <http-port>%d</http-port>\n"
                     "    <https-enabled>%d</https-enabled>\n    <https-port>%d</https-port>\n",
                     !!c->protocols.http_enabled, c->protocols.http_port, !!c->protocols.https_enabled,
                     c->protocols.https_port);
    if (rc == 0)
        rc = appendf(buf, cap, used,
                     "    <tls-versions>%s</tls-versions>\n    <client-auth>%d</client-auth>\n"
                     "    <cn-maps-to-user>%d</cn-maps-to-user>\n",
                     versions, !!c->client_auth, !!c->cn_maps);
    for (size_t i = 0; rc == 0 && i < c->n_paths; i++)
        rc = appendf(buf, cap, used, "    <server-path>%s</server-path>\n", c->paths[i]);
    for (size_t i = 0; rc == 0 && i < c->n_policies; i++)
        rc = appendf(buf, cap, used, "    <cpv-policy>%s</cpv-policy>\n", c->policies[i]);
    if (rc == 0)
        rc = appendf(buf, cap, used, "  </%s>\n", tag);
    return rc;
}

/* Writes cur, and confirmed while a change is pending (NULL otherwise). IDs
 * are NCNames, so nothing needs escaping. */
static int store(const struct tlspolicy *tp, const struct conf *cur, const struct conf *confirmed)
{
    char buf[8192];
    size_t used = 0;
    int rc = appendf(buf, sizeof buf, &used, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tlspolicy>\n");
    if (rc == 0)
        rc = append_conf(buf, sizeof buf, &used, "current", cur);
    if (rc == 0 && confirmed)
        rc = append_conf(buf, sizeof buf, &used, "confirmed", confirmed);
    if (rc == 0)
        rc = appendf(buf, sizeof buf, &used, "</tlspolicy>\n");
    if (rc != 0) {
        log_err(AREA, "formatting %s failed", tp->path);
        return TLSPOLICY_E_STORE;
    }
    rc = atomicfile_write(tp->path, buf, used, 0600);
    if (rc != 0) {
        log_err(AREA, "saving %s failed: %s", tp->path, strerror(-rc));
        return TLSPOLICY_E_STORE;
    }
    return TLSPOLICY_OK;
}

static int text_is_blank(const xmlChar *t)
{
    for (; t && *t; t++)
        if (*t != ' ' && *t != '\t' && *t != '\n' && *t != '\r')
            return 0;
    return 1;
}

/* The text of an element that holds text only, at most TLSPOLICY_TEXT_MAX
 * bytes. Returns 0 or -EINVAL. */
static int leaf_text(const xmlNode *n, char out[TLSPOLICY_TEXT_MAX + 1])
{
    size_t used = 0;
    out[0] = '\0';
    if (n->properties)
        return -EINVAL;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE)
            return -EINVAL;
        size_t len = c->content ? strlen((const char *)c->content) : 0;
        if (len > TLSPOLICY_TEXT_MAX - used)
            return -EINVAL;
        memcpy(out + used, c->content, len);
        used += len;
        out[used] = '\0';
    }
    return 0;
}

/* A decimal in lo..hi, digits only, no leading zeros. */
static int parse_int(const char *t, long lo, long hi, int *out)
{
    size_t len = strlen(t);
    if (len == 0 || len > 9 || (t[0] == '0' && len > 1))
        return -EINVAL;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] < '0' || t[i] > '9')
            return -EINVAL;
        v = v * 10 + (t[i] - '0');
    }
    if (v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

enum conf_field {
    F_HTTP_ENABLED = 1 << 0,
    F_HTTP_PORT = 1 << 1,
    F_HTTPS_ENABLED = 1 << 2,
    F_HTTPS_PORT = 1 << 3,
    F_VERSIONS = 1 << 4,
    F_CLIENT_AUTH = 1 << 5,
    F_CN_MAPS = 1 << 6,
};
#define F_PROTOCOLS (F_HTTP_ENABLED | F_HTTP_PORT | F_HTTPS_ENABLED | F_HTTPS_PORT)
#define F_REQUIRED (F_VERSIONS | F_CLIENT_AUTH | F_CN_MAPS)

static const struct {
    const char *name;
    enum conf_field field;
} conf_fields[] = {
    { "http-enabled", F_HTTP_ENABLED }, { "http-port", F_HTTP_PORT },   { "https-enabled", F_HTTPS_ENABLED },
    { "https-port", F_HTTPS_PORT },     { "tls-versions", F_VERSIONS }, { "client-auth", F_CLIENT_AUTH },
    { "cn-maps-to-user", F_CN_MAPS },
};

static int parse_field(struct conf *c, enum conf_field f, const char *text)
{
    switch (f) {
    case F_HTTP_ENABLED: return parse_int(text, 0, 1, &c->protocols.http_enabled);
    case F_HTTP_PORT: return parse_int(text, 1, 65535, &c->protocols.http_port);
    case F_HTTPS_ENABLED: return parse_int(text, 0, 1, &c->protocols.https_enabled);
    case F_HTTPS_PORT: return parse_int(text, 1, 65535, &c->protocols.https_port);
    case F_VERSIONS: {
        unsigned v = 0;
        if (tlspolicy_parse_versions(text, &v) != TLSPOLICY_OK)
            return -EINVAL;
        c->tls_versions = v;
        return 0;
    }
    case F_CLIENT_AUTH: return parse_int(text, 0, 1, &c->client_auth);
    case F_CN_MAPS: return parse_int(text, 0, 1, &c->cn_maps);
    }
    return -EINVAL;
}

/* Parses one <current>/<confirmed> element: every field once, protocols all
 * or none, IDs NCNames without duplicates, the same invariants the setters
 * keep. Returns 0 or -EINVAL. */
static int parse_conf(const xmlNode *node, struct conf *c)
{
    memset(c, 0, sizeof *c);
    unsigned seen = 0;
    if (node->properties)
        return -EINVAL;
    for (const xmlNode *n = node->children; n; n = n->next) {
        if (n->type == XML_TEXT_NODE) {
            if (!text_is_blank(n->content))
                return -EINVAL;
            continue;
        }
        if (n->type == XML_COMMENT_NODE)
            continue;
        if (n->type != XML_ELEMENT_NODE || n->ns)
            return -EINVAL;
        char text[TLSPOLICY_TEXT_MAX + 1];
        if (leaf_text(n, text) != 0)
            return -EINVAL;
        const char *name = (const char *)n->name;
        if (!strcmp(name, "server-path") || !strcmp(name, "cpv-policy")) {
            int is_path = name[0] == 's';
            char (*ids)[KEYSTORE_ID_MAX] = is_path ? c->paths : c->policies;
            size_t *count = is_path ? &c->n_paths : &c->n_policies;
            size_t max = is_path ? TLSPOLICY_MAX_SERVER_PATHS : TLSPOLICY_MAX_CPV_POLICIES;
            if (!id_ok(text) || *count >= max || find_id(ids, *count, text) >= 0)
                return -EINVAL;
            memcpy(ids[(*count)++], text, strlen(text) + 1);
            continue;
        }
        size_t i = 0;
        while (i < sizeof conf_fields / sizeof conf_fields[0] && strcmp(conf_fields[i].name, name))
            i++;
        if (i == sizeof conf_fields / sizeof conf_fields[0] || (seen & conf_fields[i].field))
            return -EINVAL;
        seen |= conf_fields[i].field;
        if (parse_field(c, conf_fields[i].field, text) != 0)
            return -EINVAL;
    }
    if ((seen & F_REQUIRED) != F_REQUIRED)
        return -EINVAL;
    if ((seen & F_PROTOCOLS) != 0 && (seen & F_PROTOCOLS) != F_PROTOCOLS)
        return -EINVAL;
    c->protocols_stored = (seen & F_PROTOCOLS) == F_PROTOCOLS;
    if (c->protocols_stored &&
        ((!c->protocols.http_enabled && !c->protocols.https_enabled) || c->protocols.http_port == c->protocols.https_port))
        return -EINVAL;
    if (c->client_auth && (c->n_paths == 0 || c->n_policies == 0))
        return -EINVAL;
    return 0;
}

/* Reads the file: cur, and confirmed when a change was pending (*pending).
 * Returns 0, -ENOENT when absent, or another -errno (-EINVAL when it is not
 * exactly what store writes). */
static int load(const struct tlspolicy *tp, struct conf *cur, struct conf *confirmed, int *pending)
{
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(tp->path, TLSPOLICY_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, tp->path, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc)
        return -EINVAL;
    const xmlNode *root = xmlDocGetRootElement(doc);
    rc = root && !root->ns && !root->properties && !strcmp((const char *)root->name, "tlspolicy") &&
                 doc->intSubset == NULL
             ? 0
             : -EINVAL;
    int have_cur = 0;
    *pending = 0;
    for (const xmlNode *n = root ? root->children : NULL; n && rc == 0; n = n->next) {
        if (n->type == XML_TEXT_NODE) {
            rc = text_is_blank(n->content) ? 0 : -EINVAL;
        } else if (n->type == XML_COMMENT_NODE) {
            continue;
        } else if (n->type != XML_ELEMENT_NODE || n->ns) {
            rc = -EINVAL;
        } else if (!strcmp((const char *)n->name, "current") && !have_cur) {
            have_cur = 1;
            rc = parse_conf(n, cur);
        } else if (!strcmp((const char *)n->name, "confirmed") && !*pending) {
            *pending = 1;
            rc = parse_conf(n, confirmed);
        } else {
            rc = -EINVAL;
        }
    }
    xmlFreeDoc(doc);
    if (rc == 0 && !have_cur)
        rc = -EINVAL;
    return rc;
}

/* Drops assignments the keystore no longer has (it was replaced or restored
 * behind our back) and fills the path references. Returns 1 when c changed. */
static int reconcile(struct tlspolicy *tp, struct conf *c)
{
    int changed = 0;
    for (size_t i = 0; i < c->n_paths;) {
        if (resolve_path(tp->ks, c->paths[i], &c->refs[i], 0) != TLSPOLICY_OK) {
            log_warning(AREA, "TLS server: certification path %s is gone from the keystore; assignment dropped",
                        c->paths[i]);
            remove_path_at(c, i);
            changed = 1;
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < c->n_policies;) {
        if (!policy_exists(tp->ks, c->policies[i])) {
            log_warning(AREA, "TLS server: validation policy %s is gone from the keystore; assignment dropped",
                        c->policies[i]);
            remove_policy_at(c, i);
            changed = 1;
        } else {
            i++;
        }
    }
    if (c->client_auth && (c->n_paths == 0 || c->n_policies == 0)) {
        log_warning(AREA, "TLS server: client authentication turned off: it lacks %s",
                    c->n_paths == 0 ? "a server certificate" : "a validation policy");
        c->client_auth = 0;
        changed = 1;
    }
    return changed;
}

/* --- lifecycle ------------------------------------------------------------ */

static int settings_ok(const struct tlspolicy_settings *s)
{
    const struct tlspolicy_protocols *d = &s->defaults;
    int http_min = (s->forced & TLSPOLICY_FORCE_HTTP_PORT) ? 0 : 1;
    int https_min = (s->forced & TLSPOLICY_FORCE_HTTPS_PORT) ? 0 : 1;
    if (d->http_port < http_min || d->http_port > 65535 || d->https_port < https_min || d->https_port > 65535)
        return 0;
    if ((s->forced & ~(TLSPOLICY_FORCE_HTTP_PORT | TLSPOLICY_FORCE_HTTPS_PORT)) != 0)
        return 0;
    if (s->n_reserved_ports > TLSPOLICY_MAX_RESERVED_PORTS || (s->n_reserved_ports && !s->reserved_ports))
        return 0;
    return s->confirm_window_s >= 0 && s->confirm_window_s <= TLSPOLICY_WINDOW_MAX_S && s->expiry_warning_days >= 0 &&
           s->expiry_warning_days <= 3650;
}

int tlspolicy_open(struct tlspolicy **out, const char *state_dir, struct keystore *ks,
                   const struct tlspolicy_settings *s)
{
    if (!out)
        return TLSPOLICY_E_INVALID;
    *out = NULL;
    if (!state_dir || !ks || !s || !settings_ok(s))
        return TLSPOLICY_E_INVALID;
    struct tlspolicy *tp = calloc(1, sizeof *tp);
    if (!tp)
        return TLSPOLICY_E_NOMEM;
    tp->ks = ks;
    tp->s = *s;
    if (s->n_reserved_ports)
        memcpy(tp->reserved, s->reserved_ports, s->n_reserved_ports * sizeof tp->reserved[0]);
    tp->s.reserved_ports = tp->reserved;
    tp->s.defaults.http_enabled = !!s->defaults.http_enabled;
    tp->s.defaults.https_enabled = !!s->defaults.https_enabled;
    if (snprintf(tp->path, sizeof tp->path, "%s/%s", state_dir, TLSPOLICY_FILE_NAME) >= (int)sizeof tp->path) {
        log_err(AREA, "state directory path too long for %s", TLSPOLICY_FILE_NAME);
        free(tp);
        return TLSPOLICY_E_STORE;
    }
    struct conf cur, confirmed;
    int pending = 0;
    int rc = load(tp, &cur, &confirmed, &pending);
    int dirty = 0;
    if (rc == -ENOENT) {
        memset(&cur, 0, sizeof cur);
        cur.tls_versions = TLSPOLICY_TLS_ALL;
    } else if (rc != 0) {
        log_err(AREA, "%s is unreadable or corrupt (%s); refusing to start over it", tp->path, strerror(-rc));
        free(tp);
        return TLSPOLICY_E_STORE;
    } else if (pending) {
        /* Nobody confirmed it before the daemon stopped. */
        log_warning(AREA, "TLS/network settings: an unconfirmed change found at start was rolled back");
        cur = confirmed;
        dirty = 1;
    }
    if (reconcile(tp, &cur))
        dirty = 1;
    /* Failing to save here is not fatal: the file still rolls back (or drops)
     * the same way at the next start. */
    if (dirty)
        (void)store(tp, &cur, NULL);
    cur.forced = tp->s.forced;
    tp->cur = cur;
    tp->confirmed = cur;
    tp->generation = 1;
    pthread_mutex_init(&tp->change_lock, NULL);
    pthread_mutex_init(&tp->lock, NULL);
    pthread_mutex_init(&tp->cache_lock, NULL);
    pthread_mutex_init(&tp->expiry_lock, NULL);
    keystore_set_reference_check(ks, reference_check, tp);
    *out = tp;
    return TLSPOLICY_OK;
}

static void identity_cache_free(struct identity_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        EVP_PKEY_free(c->e[i].key);
        X509_free(c->e[i].cert);
        sk_X509_pop_free(c->e[i].chain, X509_free);
    }
    free(c);
}

static void cpv_cache_free(struct cpv_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        X509_STORE_free(c->e[i].store);
        sk_X509_pop_free(c->e[i].certs, X509_free);
    }
    free(c);
}

void tlspolicy_close(struct tlspolicy *tp)
{
    if (!tp)
        return;
    keystore_set_reference_check(tp->ks, NULL, NULL);
    identity_cache_free(tp->ids);
    cpv_cache_free(tp->cpv);
    pthread_mutex_destroy(&tp->change_lock);
    pthread_mutex_destroy(&tp->lock);
    pthread_mutex_destroy(&tp->cache_lock);
    pthread_mutex_destroy(&tp->expiry_lock);
    free(tp);
}

void tlspolicy_get(struct tlspolicy *tp, struct tlspolicy_state *out)
{
    if (!tp || !out)
        return;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&tp->lock);
    const struct conf *c = &tp->cur;
    out->protocols = effective_protocols(tp, c);
    out->tls_versions = c->tls_versions;
    out->n_server_paths = c->n_paths;
    memcpy(out->server_paths, c->paths, sizeof out->server_paths);
    out->client_auth_required = c->client_auth;
    out->cn_maps_to_user = c->cn_maps;
    out->n_cpv_policies = c->n_policies;
    memcpy(out->cpv_policies, c->policies, sizeof out->cpv_policies);
    pthread_mutex_unlock(&tp->lock);
}

unsigned long tlspolicy_generation(struct tlspolicy *tp)
{
    if (!tp)
        return 0;
    pthread_mutex_lock(&tp->lock);
    unsigned long g = tp->generation;
    pthread_mutex_unlock(&tp->lock);
    return g;
}

/* --- changes -------------------------------------------------------------- */

/* Applies next (validated) as a tentative change: stored first, then made
 * current. change_lock held. Unchanged: nothing happens. */
static int commit_change(struct tlspolicy *tp, const struct conf *next)
{
    if (conf_equal(next, &tp->cur))
        return TLSPOLICY_OK;
    int final = tp->s.confirm_window_s == 0;
    const struct conf *keep = final ? NULL : tp->pending ? &tp->confirmed : &tp->cur;
    int rc = store(tp, next, keep);
    if (rc != TLSPOLICY_OK)
        return rc;
    pthread_mutex_lock(&tp->lock);
    if (final) {
        tp->confirmed = *next;
    } else if (!tp->pending) {
        tp->confirmed = tp->cur;
        tp->pending = 1;
    }
    tp->cur = *next;
    tp->generation++;
    if (tp->pending) {
        tp->pending_gen = tp->generation;
        tp->deadline_ms = mono_ms(tp) + (int64_t)tp->s.confirm_window_s * 1000;
    }
    unsigned long gen = tp->generation;
    pthread_mutex_unlock(&tp->lock);
    if (final)
        log_notice(AREA, "TLS/network settings changed (generation %lu)", gen);
    else
        log_notice(AREA, "TLS/network settings changed (generation %lu); restored unless confirmed within %d s", gen,
                   tp->s.confirm_window_s);
    return TLSPOLICY_OK;
}

static int port_reserved(const struct tlspolicy *tp, int port)
{
    for (size_t i = 0; i < tp->s.n_reserved_ports; i++)
        if (tp->reserved[i] == port)
            return 1;
    return 0;
}

int tlspolicy_set_protocols(struct tlspolicy *tp, const struct tlspolicy_protocols *p)
{
    if (!tp || !p)
        return TLSPOLICY_E_INVALID;
    struct tlspolicy_protocols want = { !!p->http_enabled, p->http_port, !!p->https_enabled, p->https_port };
    if (want.http_port < 1 || want.http_port > 65535 || want.https_port < 1 || want.https_port > 65535)
        return TLSPOLICY_E_PORT;
    if (port_reserved(tp, want.http_port) || port_reserved(tp, want.https_port))
        return TLSPOLICY_E_PORT_RESERVED;
    if (want.http_port == want.https_port)
        return TLSPOLICY_E_PORT_CONFLICT;
    if (!want.http_enabled && !want.https_enabled)
        return TLSPOLICY_E_NO_PROTOCOL;

    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    next.protocols_stored = 1;
    next.protocols = want;
    next.forced = 0;
    /* The ports in effect this run must not collide either. */
    struct tlspolicy_protocols eff = effective_protocols(tp, &next);
    int rc = TLSPOLICY_OK;
    if (eff.http_port != 0 && eff.http_port == eff.https_port)
        rc = TLSPOLICY_E_PORT_CONFLICT;
    else if (!tp->cur.protocols_stored && protocols_equal(&want, &tp->s.defaults)) {
        /* Same values as in effect: only record that they are now the
         * administrator's (a later change of the defaults no longer applies);
         * no new generation, nothing to confirm. */
        struct conf keep = tp->confirmed;
        if (!keep.protocols_stored) {
            keep.protocols_stored = 1;
            keep.protocols = want;
        }
        rc = store(tp, &next, tp->pending ? &keep : NULL);
        if (rc == TLSPOLICY_OK) {
            pthread_mutex_lock(&tp->lock);
            tp->cur = next;
            tp->confirmed = tp->pending ? keep : next;
            pthread_mutex_unlock(&tp->lock);
        }
    } else {
        rc = commit_change(tp, &next);
    }
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

/* Validates path_id for assignment next to the paths in c except skip (-1:
 * none), into ref. */
static int check_new_path(struct tlspolicy *tp, const struct conf *c, long skip, const char *path_id,
                          struct path_ref *ref)
{
    int rc = resolve_path(tp->ks, path_id, ref, 1);
    if (rc != TLSPOLICY_OK)
        return rc;
    size_t others = c->n_paths - (skip >= 0 ? 1 : 0);
    if (others >= TLSPOLICY_MAX_SERVER_PATHS)
        return TLSPOLICY_E_FULL;
    for (size_t i = 0; i < c->n_paths; i++)
        if ((long)i != skip && c->refs[i].family == ref->family)
            return TLSPOLICY_E_KEY_TYPE;
    return TLSPOLICY_OK;
}

int tlspolicy_add_server_path(struct tlspolicy *tp, const char *path_id)
{
    if (!tp || !path_id)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    struct path_ref ref;
    int rc = TLSPOLICY_OK;
    if (find_id(next.paths, next.n_paths, path_id) < 0) {
        claim(tp, "path", path_id);
        rc = check_new_path(tp, &next, -1, path_id, &ref);
        if (rc == TLSPOLICY_OK) {
            memcpy(next.paths[next.n_paths], path_id, strlen(path_id) + 1);
            next.refs[next.n_paths++] = ref;
            rc = commit_change(tp, &next);
        }
        unclaim(tp);
    }
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_remove_server_path(struct tlspolicy *tp, const char *path_id)
{
    if (!tp || !path_id)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    long i = find_id(next.paths, next.n_paths, path_id);
    int rc = TLSPOLICY_OK;
    if (i < 0)
        rc = TLSPOLICY_E_NOT_ASSIGNED;
    else if (effective_protocols(tp, &next).https_enabled || (next.n_paths == 1 && next.client_auth))
        rc = TLSPOLICY_E_IN_USE;   /* Security: ReferenceExists while the TLS server is enabled */
    if (rc == TLSPOLICY_OK) {
        remove_path_at(&next, (size_t)i);
        rc = commit_change(tp, &next);
    }
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_replace_server_path(struct tlspolicy *tp, const char *old_id, const char *new_id)
{
    if (!tp || !old_id || !new_id)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    long i = find_id(next.paths, next.n_paths, old_id);
    long j = find_id(next.paths, next.n_paths, new_id);
    struct path_ref ref;
    int rc = TLSPOLICY_OK;
    if (i < 0) {
        rc = TLSPOLICY_E_NOT_ASSIGNED;
    } else if (j >= 0) {
        /* new already assigned: what remains is new alone in its place */
        if (i != j) {
            remove_path_at(&next, (size_t)i);
            rc = commit_change(tp, &next);
        }
    } else {
        claim(tp, "path", new_id);
        rc = check_new_path(tp, &next, i, new_id, &ref);
        if (rc == TLSPOLICY_OK) {
            memset(next.paths[i], 0, sizeof next.paths[i]);
            memcpy(next.paths[i], new_id, strlen(new_id) + 1);
            next.refs[i] = ref;
            rc = commit_change(tp, &next);
        }
        unclaim(tp);
    }
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_set_tls_versions(struct tlspolicy *tp, unsigned versions)
{
    if (!tp)
        return TLSPOLICY_E_INVALID;
    if (versions & ~TLSPOLICY_TLS_ALL)
        return TLSPOLICY_E_VERSION;
    if (!versions)
        return TLSPOLICY_E_EMPTY;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    next.tls_versions = versions;
    int rc = commit_change(tp, &next);
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_set_client_auth(struct tlspolicy *tp, int required)
{
    if (!tp)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    next.client_auth = !!required;
    int rc = TLSPOLICY_OK;
    if (next.client_auth && next.n_policies == 0)
        rc = TLSPOLICY_E_NO_CLIENT_POLICY;
    else if (next.client_auth && next.n_paths == 0)
        rc = TLSPOLICY_E_NO_SERVER_CERT;
    else
        rc = commit_change(tp, &next);
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_set_cn_maps_to_user(struct tlspolicy *tp, int on)
{
    if (!tp)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    next.cn_maps = !!on;
    int rc = commit_change(tp, &next);
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_add_cpv_policy(struct tlspolicy *tp, const char *policy_id)
{
    if (!tp || !policy_id)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    int rc = TLSPOLICY_OK;
    if (find_id(next.policies, next.n_policies, policy_id) < 0) {
        claim(tp, "cpvpolicy", policy_id);
        if (!policy_exists(tp->ks, policy_id))
            rc = TLSPOLICY_E_POLICY_NOT_FOUND;
        else if (next.n_policies >= TLSPOLICY_MAX_CPV_POLICIES)
            rc = TLSPOLICY_E_FULL;
        if (rc == TLSPOLICY_OK) {
            memcpy(next.policies[next.n_policies++], policy_id, strlen(policy_id) + 1);
            rc = commit_change(tp, &next);
        }
        unclaim(tp);
    }
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_remove_cpv_policy(struct tlspolicy *tp, const char *policy_id)
{
    if (!tp || !policy_id)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    long i = find_id(next.policies, next.n_policies, policy_id);
    int rc = TLSPOLICY_OK;
    if (i < 0)
        rc = TLSPOLICY_E_NOT_ASSIGNED;
    else if (next.n_policies == 1 && next.client_auth)
        rc = TLSPOLICY_E_IN_USE;
    if (rc == TLSPOLICY_OK) {
        remove_policy_at(&next, (size_t)i);
        rc = commit_change(tp, &next);
    }
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

int tlspolicy_replace_cpv_policy(struct tlspolicy *tp, const char *old_id, const char *new_id)
{
    if (!tp || !old_id || !new_id)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    struct conf next = tp->cur;
    long i = find_id(next.policies, next.n_policies, old_id);
    long j = find_id(next.policies, next.n_policies, new_id);
    int rc = TLSPOLICY_OK;
    if (i < 0) {
        rc = TLSPOLICY_E_NOT_ASSIGNED;
    } else if (j >= 0) {
        if (i != j) {
            remove_policy_at(&next, (size_t)i);
            rc = commit_change(tp, &next);
        }
    } else {
        claim(tp, "cpvpolicy", new_id);
        if (!policy_exists(tp->ks, new_id)) {
            rc = TLSPOLICY_E_POLICY_NOT_FOUND;
        } else {
            memset(next.policies[i], 0, sizeof next.policies[i]);
            memcpy(next.policies[i], new_id, strlen(new_id) + 1);
            rc = commit_change(tp, &next);
        }
        unclaim(tp);
    }
    pthread_mutex_unlock(&tp->change_lock);
    return rc;
}

/* --- safe apply ----------------------------------------------------------- */

int tlspolicy_pending(struct tlspolicy *tp, unsigned long *generation, int64_t *remaining_ms)
{
    if (!tp)
        return 0;
    int64_t now = mono_ms(tp);
    pthread_mutex_lock(&tp->lock);
    int pending = tp->pending;
    if (pending && generation)
        *generation = tp->pending_gen;
    if (pending && remaining_ms)
        *remaining_ms = tp->deadline_ms > now ? tp->deadline_ms - now : 0;
    pthread_mutex_unlock(&tp->lock);
    return pending;
}

/* Whether the pending change is about what TLS clients meet (certificates,
 * versions, client authentication, the HTTPS port) while HTTPS is on: then
 * only a TLS connection shows the new settings work. */
static int change_needs_tls(const struct tlspolicy *tp)
{
    const struct conf *a = &tp->cur, *b = &tp->confirmed;
    struct tlspolicy_protocols pa = effective_protocols(tp, a), pb = effective_protocols(tp, b);
    if (!pa.https_enabled)
        return 0;
    /* Port 0 (a free port from the command line) is whatever is bound now. */
    int port_moved = pa.https_port && pb.https_port && pa.https_port != pb.https_port;
    if (!pb.https_enabled || port_moved || a->tls_versions != b->tls_versions ||
        a->client_auth != b->client_auth || a->cn_maps != b->cn_maps || a->n_paths != b->n_paths ||
        a->n_policies != b->n_policies)
        return 1;
    for (size_t i = 0; i < a->n_paths; i++)
        if (strcmp(a->paths[i], b->paths[i]))
            return 1;
    for (size_t i = 0; i < a->n_policies; i++)
        if (strcmp(a->policies[i], b->policies[i]))
            return 1;
    return 0;
}

int tlspolicy_confirm(struct tlspolicy *tp, unsigned long seen, int over_tls)
{
    if (!tp)
        return 0;
    pthread_mutex_lock(&tp->change_lock);
    int done = 0;
    if (tp->pending && seen >= tp->pending_gen && (over_tls || !change_needs_tls(tp))) {
        /* Stored without the confirmed state first; if that fails the change
         * stays pending (a restart would roll it back anyway). */
        if (store(tp, &tp->cur, NULL) == TLSPOLICY_OK) {
            pthread_mutex_lock(&tp->lock);
            tp->confirmed = tp->cur;
            tp->pending = 0;
            unsigned long gen = tp->generation;
            pthread_mutex_unlock(&tp->lock);
            log_notice(AREA, "TLS/network settings of generation %lu confirmed", gen);
            done = 1;
        }
    }
    pthread_mutex_unlock(&tp->change_lock);
    return done;
}

/* Restores the confirmed state; change_lock held. The restore takes effect
 * even when it cannot be saved: the file still holds the confirmed state,
 * which the next start restores too. */
static int rollback_locked(struct tlspolicy *tp, const char *why)
{
    if (!tp->pending)
        return 0;
    (void)store(tp, &tp->confirmed, NULL);
    pthread_mutex_lock(&tp->lock);
    unsigned long undone = tp->pending_gen;
    tp->cur = tp->confirmed;
    tp->pending = 0;
    tp->generation++;
    pthread_mutex_unlock(&tp->lock);
    log_warning(AREA, "TLS/network settings change (generation %lu) rolled back: %s", undone,
                why ? why : "no reason given");
    return 1;
}

int tlspolicy_expire(struct tlspolicy *tp)
{
    if (!tp)
        return 0;
    /* Called by the listener every sweep: look first without change_lock,
     * which is held across stores and keystore waits. */
    pthread_mutex_lock(&tp->lock);
    int due = tp->pending && mono_ms(tp) >= tp->deadline_ms;
    pthread_mutex_unlock(&tp->lock);
    if (!due)
        return 0;
    pthread_mutex_lock(&tp->change_lock);
    int done = 0;
    if (tp->pending && mono_ms(tp) >= tp->deadline_ms)
        done = rollback_locked(tp, "not confirmed within the confirmation window");
    pthread_mutex_unlock(&tp->change_lock);
    return done;
}

int tlspolicy_rollback(struct tlspolicy *tp, const char *why)
{
    if (!tp)
        return TLSPOLICY_E_INVALID;
    pthread_mutex_lock(&tp->change_lock);
    int done = rollback_locked(tp, why);
    pthread_mutex_unlock(&tp->change_lock);
    return done;
}

/* --- server identities ---------------------------------------------------- */

static X509 *load_cert(struct keystore *ks, const char *id)
{
    unsigned char *der = NULL;
    size_t len = 0;
    if (keystore_cert_der(ks, id, &der, &len) != KEYSTORE_OK)
        return NULL;
    const unsigned char *p = der;
    X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (x && p != der + len) {
        X509_free(x);
        x = NULL;
    }
    free(der);
    return x;
}

/* Loads the identity of one assigned path; 0 or -1 (logged). */
static int load_identity(struct keystore *ks, const char *path_id, struct identity_entry *e)
{
    struct keystore_path_info pi;
    struct keystore_cert_info ci;
    memset(e, 0, sizeof *e);
    if (keystore_path_info(ks, path_id, &pi) != KEYSTORE_OK || pi.n_certs == 0 ||
        keystore_cert_info(ks, pi.cert_ids[0], &ci) != KEYSTORE_OK) {
        log_warning(AREA, "TLS server: certification path %s cannot be read; not served", path_id);
        return -1;
    }
    if (keystore_get_private_key(ks, ci.key_id, &e->key) != KEYSTORE_OK) {
        log_warning(AREA, "TLS server: the private key of certification path %s is not usable; not served", path_id);
        return -1;
    }
    e->cert = load_cert(ks, pi.cert_ids[0]);
    e->chain = sk_X509_new_null();
    int ok = e->cert && e->chain;
    for (size_t i = 1; ok && i < pi.n_certs && i < KEYSTORE_MAX_PATH_LEN; i++) {
        X509 *x = load_cert(ks, pi.cert_ids[i]);
        ok = x && sk_X509_push(e->chain, x) > 0;
        if (!ok)
            X509_free(x);
    }
    if (!ok) {
        log_warning(AREA, "TLS server: the certificates of certification path %s cannot be loaded; not served",
                    path_id);
        EVP_PKEY_free(e->key);
        X509_free(e->cert);
        sk_X509_pop_free(e->chain, X509_free);
        memset(e, 0, sizeof *e);
        return -1;
    }
    e->not_before = ci.not_before;
    e->not_after = ci.not_after;
    return 0;
}

static struct identity_cache *build_identities(struct tlspolicy *tp, unsigned long ks_gen)
{
    struct identity_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    char paths[TLSPOLICY_MAX_SERVER_PATHS][KEYSTORE_ID_MAX];
    pthread_mutex_lock(&tp->lock);
    c->tp_gen = tp->generation;
    size_t n = tp->cur.n_paths;
    memcpy(paths, tp->cur.paths, sizeof paths);
    pthread_mutex_unlock(&tp->lock);
    c->ks_gen = ks_gen;
    for (size_t i = 0; i < n; i++)
        if (load_identity(tp->ks, paths[i], &c->e[c->n]) == 0)
            c->n++;
    return c;
}

/* Copies the identities valid at now out as new references. cache_lock held. */
static int copy_identities(const struct identity_cache *c, time_t now, struct tlspolicy_identity *out, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct identity_entry *e = &c->e[i];
        if (e->not_before > now || e->not_after < now)
            continue;
        STACK_OF(X509) *chain = X509_chain_up_ref(e->chain);
        if (!chain) {
            tlspolicy_identities_free(out, k);
            return TLSPOLICY_E_NOMEM;
        }
        EVP_PKEY_up_ref(e->key);
        X509_up_ref(e->cert);
        out[k].key = e->key;
        out[k].cert = e->cert;
        out[k].chain = chain;
        k++;
    }
    *n = k;
    return TLSPOLICY_OK;
}

int tlspolicy_server_identities(struct tlspolicy *tp, struct tlspolicy_identity out[TLSPOLICY_MAX_SERVER_PATHS],
                                size_t *n)
{
    if (!tp || !out || !n)
        return TLSPOLICY_E_INVALID;
    *n = 0;
    unsigned long ks_gen = keystore_generation(tp->ks);
    unsigned long tp_gen = tlspolicy_generation(tp);
    time_t now = wall_now(tp);
    pthread_mutex_lock(&tp->cache_lock);
    if (tp->ids && tp->ids->ks_gen == ks_gen && tp->ids->tp_gen == tp_gen) {
        int rc = copy_identities(tp->ids, now, out, n);
        pthread_mutex_unlock(&tp->cache_lock);
        return rc;
    }
    pthread_mutex_unlock(&tp->cache_lock);

    /* Stale: load outside the lock (it reads the keystore and unseals keys). */
    struct identity_cache *fresh = build_identities(tp, ks_gen);
    if (!fresh)
        return TLSPOLICY_E_NOMEM;
    pthread_mutex_lock(&tp->cache_lock);
    struct identity_cache *old = tp->ids;
    tp->ids = fresh;
    int rc = copy_identities(fresh, now, out, n);
    pthread_mutex_unlock(&tp->cache_lock);
    identity_cache_free(old);
    return rc;
}

void tlspolicy_identities_free(struct tlspolicy_identity *ids, size_t n)
{
    if (!ids)
        return;
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY_free(ids[i].key);
        X509_free(ids[i].cert);
        sk_X509_pop_free(ids[i].chain, X509_free);
        memset(&ids[i], 0, sizeof ids[i]);
    }
}

/* --- client certificates -------------------------------------------------- */

/* One policy's store: its anchors trusted, every keystore CRL, revocation
 * checked along the whole chain. Returns 0 or -1. */
static int build_cpv_entry(struct keystore *ks, const char *policy_id, struct cpv_entry *e)
{
    struct keystore_cpv_material m;
    memset(&m, 0, sizeof m);
    memset(e, 0, sizeof *e);
    if (keystore_cpv_material(ks, policy_id, &m) != KEYSTORE_OK) {
        log_warning(AREA, "TLS server: validation policy %s cannot be read; not used", policy_id);
        return -1;
    }
    e->store = X509_STORE_new();
    e->certs = m.certs ? X509_chain_up_ref(m.certs) : sk_X509_new_null();
    e->require_eku = m.require_client_auth_eku;
    int ok = e->store && e->certs;
    for (int i = 0; ok && m.anchors && i < sk_X509_num(m.anchors); i++)
        ok = X509_STORE_add_cert(e->store, sk_X509_value(m.anchors, i)) == 1;
    for (int i = 0; ok && m.crls && i < sk_X509_CRL_num(m.crls); i++)
        ok = X509_STORE_add_crl(e->store, sk_X509_CRL_value(m.crls, i)) == 1;
    unsigned long flags = X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    if (m.use_delta_crls)
        flags |= X509_V_FLAG_USE_DELTAS;
    ok = ok && X509_STORE_set_flags(e->store, flags) == 1;
    keystore_cpv_material_free(&m);
    if (!ok) {
        log_warning(AREA, "TLS server: validation policy %s could not be prepared; not used", policy_id);
        X509_STORE_free(e->store);
        sk_X509_pop_free(e->certs, X509_free);
        memset(e, 0, sizeof *e);
        return -1;
    }
    return 0;
}

static struct cpv_cache *build_cpv(struct tlspolicy *tp, unsigned long ks_gen)
{
    struct cpv_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    char ids[TLSPOLICY_MAX_CPV_POLICIES][KEYSTORE_ID_MAX];
    pthread_mutex_lock(&tp->lock);
    c->tp_gen = tp->generation;
    size_t n = tp->cur.n_policies;
    memcpy(ids, tp->cur.policies, sizeof ids);
    pthread_mutex_unlock(&tp->lock);
    c->ks_gen = ks_gen;
    c->refs = 1;
    c->n_assigned = n;
    for (size_t i = 0; i < n; i++)
        if (build_cpv_entry(tp->ks, ids[i], &c->e[c->n]) == 0)
            c->n++;
    return c;
}

static void cpv_release(struct tlspolicy *tp, struct cpv_cache *c)
{
    pthread_mutex_lock(&tp->cache_lock);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&tp->cache_lock);
    if (last)
        cpv_cache_free(c);
}

/* The current stores, one reference taken; NULL when out of memory. */
static struct cpv_cache *cpv_acquire(struct tlspolicy *tp)
{
    unsigned long ks_gen = keystore_generation(tp->ks);
    unsigned long tp_gen = tlspolicy_generation(tp);
    pthread_mutex_lock(&tp->cache_lock);
    struct cpv_cache *c = tp->cpv;
    if (c && c->ks_gen == ks_gen && c->tp_gen == tp_gen) {
        c->refs++;
        pthread_mutex_unlock(&tp->cache_lock);
        return c;
    }
    pthread_mutex_unlock(&tp->cache_lock);
    struct cpv_cache *fresh = build_cpv(tp, ks_gen);
    if (!fresh)
        return NULL;
    pthread_mutex_lock(&tp->cache_lock);
    struct cpv_cache *old = tp->cpv;
    tp->cpv = fresh;
    fresh->refs++;               /* the caller's */
    int free_old = old && --old->refs == 0;
    pthread_mutex_unlock(&tp->cache_lock);
    if (free_old)
        cpv_cache_free(old);
    return fresh;
}

/* ONVIF: a certificate is revoked only when a CRL says so; a missing CRL
 * leaves its status undetermined, which is not a failure. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    return ok;
}

/* RFC 5280 validation of leaf under one policy. 0, or -1 with *why. */
static int verify_one(const struct cpv_entry *e, X509 *leaf, STACK_OF(X509) *sent, time_t now, const char **why)
{
    if (e->require_eku) {
        uint32_t xflags = X509_get_extension_flags(leaf);
        if (!(xflags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT)) {
            *why = "the certificate lacks the TLS WWW client authentication extended key usage";
            return -1;
        }
    }
    STACK_OF(X509) *untrusted = X509_chain_up_ref(e->certs);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = untrusted && ctx;
    for (int i = 0; ok && sent && i < sk_X509_num(sent); i++) {
        X509 *x = sk_X509_value(sent, i);
        ok = x && X509_up_ref(x) == 1;
        if (ok && sk_X509_push(untrusted, x) <= 0) {
            X509_free(x);
            ok = 0;
        }
    }
    if (!ok) {
        *why = "out of memory";
    } else if (X509_STORE_CTX_init(ctx, e->store, leaf, untrusted) != 1) {
        *why = "cannot set up certificate validation";
        ok = 0;
    } else {
        X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
        X509_STORE_CTX_set_time(ctx, 0, now);
        ok = X509_verify_cert(ctx) == 1;
        if (!ok) {
            int err = X509_STORE_CTX_get_error(ctx);
            *why = err != X509_V_OK ? X509_verify_cert_error_string(err) : "certificate validation failed";
        }
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    return ok ? 0 : -1;
}

/* UTF-8 of the subject's last CN into cn ("" when none). 0, or -1 when it
 * does not fit or holds a NUL. */
static int subject_cn(X509 *leaf, char *cn, size_t cnlen, const char **why)
{
    const X509_NAME *name = X509_get_subject_name(leaf);
    int last = -1;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0;)
        last = i;
    if (last < 0) {
        if (cn && cnlen)
            cn[0] = '\0';
        return 0;
    }
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)));
    int rc = 0;
    if (len < 0) {
        *why = "the certificate's common name is not valid text";
        rc = -1;
    } else if (memchr(utf8, '\0', (size_t)len)) {
        *why = "the certificate's common name holds a NUL character";
        rc = -1;
    } else if (cn && (size_t)len >= cnlen) {
        *why = "the certificate's common name is too long";
        rc = -1;
    } else if (cn) {
        memcpy(cn, utf8, (size_t)len);
        cn[len] = '\0';
    }
    OPENSSL_free(utf8);
    return rc;
}

int tlspolicy_verify_client(struct tlspolicy *tp, X509 *leaf, STACK_OF(X509) *sent, char *cn, size_t cnlen,
                            const char **why)
{
    const char *reason = NULL;
    if (cn && cnlen)
        cn[0] = '\0';
    if (!tp || !leaf || (!cn && cnlen)) {
        if (why)
            *why = "invalid argument";
        return TLSPOLICY_E_INVALID;
    }
    struct cpv_cache *c = cpv_acquire(tp);
    if (!c) {
        if (why)
            *why = "out of memory";
        return TLSPOLICY_E_NOMEM;
    }
    time_t now = wall_now(tp);
    int rc = TLSPOLICY_E_CLIENT_CERT;
    if (c->n == 0)
        reason = c->n_assigned ? "no assigned validation policy could be loaded" : "no validation policy is assigned";
    for (size_t i = 0; i < c->n && rc != TLSPOLICY_OK; i++) {
        const char *r = NULL;
        if (verify_one(&c->e[i], leaf, sent, now, &r) == 0)
            rc = TLSPOLICY_OK;
        else if (!reason)
            reason = r;
    }
    cpv_release(tp, c);
    if (rc == TLSPOLICY_OK && subject_cn(leaf, cn, cnlen, &reason) != 0)
        rc = TLSPOLICY_E_CLIENT_CERT;
    if (rc != TLSPOLICY_OK && cn && cnlen)
        cn[0] = '\0';
    if (why)
        *why = rc == TLSPOLICY_OK ? NULL : reason ? reason : "certificate validation failed";
    return rc;
}

/* --- expiry warnings ------------------------------------------------------ */

/* 1 when kind was not logged for path_id within the last day (then noted).
 * expiry_lock held. notes keeps only the assigned paths. */
static int note_due(struct tlspolicy *tp, const char *path_id, enum expiry_kind kind, time_t now)
{
    struct expiry_note *free_slot = NULL;
    for (size_t i = 0; i < TLSPOLICY_MAX_SERVER_PATHS; i++) {
        struct expiry_note *n = &tp->notes[i];
        if (n->path_id[0] && !strcmp(n->path_id, path_id)) {
            if (n->kind == kind && now >= n->logged && now - n->logged < DAY_S)
                return 0;
            n->kind = kind;
            n->logged = now;
            return 1;
        }
        if (!n->path_id[0] && !free_slot)
            free_slot = n;
    }
    if (free_slot) {
        memcpy(free_slot->path_id, path_id, sizeof free_slot->path_id);
        free_slot->kind = kind;
        free_slot->logged = now;
    }
    return 1;
}

void tlspolicy_check_expiry(struct tlspolicy *tp)
{
    if (!tp)
        return;
    char paths[TLSPOLICY_MAX_SERVER_PATHS][KEYSTORE_ID_MAX];
    struct path_ref refs[TLSPOLICY_MAX_SERVER_PATHS];
    pthread_mutex_lock(&tp->lock);
    size_t n = tp->cur.n_paths;
    memcpy(paths, tp->cur.paths, sizeof paths);
    memcpy(refs, tp->cur.refs, sizeof refs);
    pthread_mutex_unlock(&tp->lock);
    time_t now = wall_now(tp);
    size_t usable = 0;
    for (size_t i = 0; i < n; i++)
        if (refs[i].not_before <= now && refs[i].not_after >= now)
            usable++;

    pthread_mutex_lock(&tp->expiry_lock);
    /* Forget paths no longer assigned. */
    for (size_t i = 0; i < TLSPOLICY_MAX_SERVER_PATHS; i++)
        if (tp->notes[i].path_id[0] && find_id(paths, n, tp->notes[i].path_id) < 0)
            memset(&tp->notes[i], 0, sizeof tp->notes[i]);
    for (size_t i = 0; i < n; i++) {
        time_t left = refs[i].not_after - now;
        if (left < 0) {
            if (note_due(tp, paths[i], EXPIRY_PAST, now)) {
                log_err(AREA, "TLS server: the certificate of certification path %s expired %lld day(s) ago; %s",
                        paths[i], (long long)((-left) / DAY_S),
                        usable ? "it is no longer served" : "the device CA certificate is served instead");
                if (tp->expiry_fn)
                    tp->expiry_fn(tp->expiry_arg, paths[i], -(long)((-left) / DAY_S) - 1);
            }
        } else if (tp->s.expiry_warning_days > 0 && left <= (time_t)tp->s.expiry_warning_days * DAY_S) {
            if (note_due(tp, paths[i], EXPIRY_SOON, now)) {
                log_warning(AREA, "TLS server: the certificate of certification path %s expires in %lld day(s)",
                            paths[i], (long long)(left / DAY_S));
                if (tp->expiry_fn)
                    tp->expiry_fn(tp->expiry_arg, paths[i], (long)(left / DAY_S));
            }
        }
    }
    pthread_mutex_unlock(&tp->expiry_lock);
}

void tlspolicy_set_expiry_listener(struct tlspolicy *tp, tlspolicy_expiry_fn fn, void *arg)
{
    pthread_mutex_lock(&tp->expiry_lock);
    tp->expiry_fn = fn;
    tp->expiry_arg = arg;
    pthread_mutex_unlock(&tp->expiry_lock);
}
