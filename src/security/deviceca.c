/* The built-in device CA: a root key and self-signed CA certificate created
 * on first start, and the TLS server certificate it issues for the host's
 * current addresses and host name, re-issued when those change or it nears
 * expiry. The CA itself is replaced before it could cut a server certificate
 * short, or when it was made by an unset clock. State in state_dir/deviceca.xml
 * (0600, atomic), private keys sealed under the device key; the CA key never
 * leaves this file. */
#include "opennvt/deviceca.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"
#include "opennvt/netif.h"
#include "opennvt/secretbox.h"
#include "opennvt/x509util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#define DEVICECA_FILE "deviceca.xml"
#define DEVICECA_FILE_MAX (256 * 1024)
#define DAY 86400
#define CA_LIFETIME (3650L * DAY)
#define SERVER_LIFETIME (397L * DAY)
#define RENEW_BEFORE (30L * DAY)
/* The CA is replaced (new key and certificate) once it could no longer
 * cover a full server certificate plus its renewal window, so a server
 * certificate never has to be cut short at the CA's expiry. */
#define CA_RENEW_BEFORE (SERVER_LIFETIME + RENEW_BEFORE)
/* Clock readings before this (2024-01-01T00:00:00Z, before this code was
 * built) mean the clock is not set: no CA is replaced and no certificate
 * issued by a refresh then, and a CA whose notBefore is earlier was made by
 * such a clock and is replaced once the clock is right. */
#define EARLIEST_PLAUSIBLE ((time_t)1704067200)
/* 9999-12-31T23:59:59Z, the last time a certificate can name. */
#define CERT_TIME_MAX ((time_t)253402300799LL)
#define LATEST_PLAUSIBLE (CERT_TIME_MAX - CA_LIFETIME - DAY)
/* Certificates start an hour back so a client whose clock is a little behind
 * accepts them at once. */
#define BACKDATE 3600
#define CA_KEY_CONTEXT "deviceca:ca-key"
#define SERVER_KEY_CONTEXT "deviceca:server-key"
#define DEFAULT_CA_CN "OpenNVT Device CA"
#define CN_MAX 64
#define DNS_MAX 253
#define ORG_MAX 64

typedef int (*address_source_fn)(struct netif *list, size_t max);

/* A SAN set in canonical form: IP text as inet_ntop writes it, sorted. */
struct san_entry {
    enum x509util_san_type type;
    char value[DNS_MAX + 1];
};

struct san_set {
    size_t n;
    struct san_entry e[X509UTIL_MAX_SAN];
};

struct deviceca {
    pthread_mutex_t lock;
    char path[PATH_MAX];
    struct secretbox *box;
    address_source_fn list;
    time_t (*now)(void);                  /* NULL = time(NULL) */
    int clock_warned;                     /* the unset clock was reported */
    char key_type[16];                    /* for a replacement CA */
    char cn[CN_MAX * 4 + 1];              /* CA subject CN, UTF-8 */
    char organization[ORG_MAX * 4 + 1];   /* UTF-8, empty = no O attribute */
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    EVP_PKEY *server_key;
    X509 *server_cert;
};

const char *deviceca_strerror(int err)
{
    switch (err) {
    case DEVICECA_OK: return "ok";
    case DEVICECA_E_STORE: return "device CA state unreadable, corrupt or not saved";
    case DEVICECA_E_CRYPTO: return "cryptographic failure";
    case DEVICECA_E_NOMEM: return "out of memory";
    case DEVICECA_E_INVALID: return "invalid argument";
    }
    return "unknown error";
}

static int from_x509util(int rc)
{
    switch (rc) {
    case X509UTIL_OK: return DEVICECA_OK;
    case X509UTIL_E_NOMEM: return DEVICECA_E_NOMEM;
    case X509UTIL_E_SUBJECT:
    case X509UTIL_E_INVALID: return DEVICECA_E_INVALID;
    }
    return DEVICECA_E_CRYPTO;
}

/* --- time ---------------------------------------------------------------- */

static time_t clock_now(const struct deviceca *ca)
{
    return ca->now ? ca->now() : time(NULL);
}

static int clock_plausible(time_t now)
{
    return now >= EARLIEST_PLAUSIBLE && now <= LATEST_PLAUSIBLE;
}

static void time_text(time_t t, char out[32])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", (long long)t);
}

/* A certificate time as UTC seconds; -1 when unreadable. */
static int cert_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return -1;
    }
    *out = timegm(&tm);
    return 0;
}

/* Why the CA must be replaced at now (a plausible time), or NULL. */
static const char *ca_renewal_reason(X509 *ca_cert, time_t now)
{
    time_t not_before, not_after;
    if (cert_time(X509_get0_notBefore(ca_cert), &not_before) != 0 ||
        cert_time(X509_get0_notAfter(ca_cert), &not_after) != 0)
        return "its validity period is unreadable";
    if (not_before < EARLIEST_PLAUSIBLE - DAY)
        return "it was made while the clock was not set";
    if (not_before > now + DAY)
        return "it is not valid yet (the clock went back)";
    if (not_after <= now)
        return "it has expired";
    if (not_after - now < CA_RENEW_BEFORE)
        return "it expires before a new server certificate would";
    return NULL;
}

/* --- addresses ----------------------------------------------------------- */

static int is_ldh_name(const char *s)
{
    size_t len = strnlen(s, DNS_MAX + 1);
    if (len == 0 || len > DNS_MAX)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') ||
            (label == 0 && c == '-'))
            return 0;
        label++;
    }
    return 1;
}

static int san_cmp(const void *a, const void *b)
{
    const struct san_entry *x = a, *y = b;
    if (x->type != y->type)
        return x->type == X509UTIL_SAN_DNS ? -1 : 1;
    return strcmp(x->value, y->value);
}

static int set_has(const struct san_set *set, enum x509util_san_type type, const char *value)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->e[i].type == type && strcmp(set->e[i].value, value) == 0)
            return 1;
    return 0;
}

/* Adds value unless present; 0 when added or present, -1 when full. */
static int set_add(struct san_set *set, enum x509util_san_type type, const char *value)
{
    if (set_has(set, type, value))
        return 0;
    if (set->n >= X509UTIL_MAX_SAN || strlen(value) > DNS_MAX)
        return -1;
    set->e[set->n].type = type;
    snprintf(set->e[set->n].value, sizeof set->e[set->n].value, "%s", value);
    set->n++;
    return 0;
}

/* Canonical text of an IPv4/IPv6 address, or -1 when it is neither. */
static int canonical_ip(const char *text, char out[INET6_ADDRSTRLEN])
{
    unsigned char b[16];
    if (inet_pton(AF_INET, text, b) == 1)
        return inet_ntop(AF_INET, b, out, INET6_ADDRSTRLEN) ? 0 : -1;
    if (inet_pton(AF_INET6, text, b) == 1)
        return inet_ntop(AF_INET6, b, out, INET6_ADDRSTRLEN) ? 0 : -1;
    return -1;
}

static void add_ip(struct san_set *set, const char *text, char *first_ip, size_t *skipped)
{
    char canon[INET6_ADDRSTRLEN];
    if (canonical_ip(text, canon) != 0)
        return;
    /* One slot stays free for the host name. */
    if (set->n >= X509UTIL_MAX_SAN - 1 && !set_has(set, X509UTIL_SAN_IP, canon)) {
        (*skipped)++;
        return;
    }
    set_add(set, X509UTIL_SAN_IP, canon);
    if (!first_ip[0])
        snprintf(first_ip, INET6_ADDRSTRLEN, "%s", canon);
}

/* What the server certificate should name now: every address the source
 * reports (loopback included: local clients use it) and the host name when
 * it is a DNS name; cn gets the host name, else the first address. When the
 * source fails, *source_err is its -errno and the set names the host only. */
static int current_sans(address_source_fn source, struct san_set *set, char cn[CN_MAX + 1], int *source_err)
{
    memset(set, 0, sizeof *set);
    cn[0] = '\0';
    *source_err = 0;
    struct netif *list = calloc(NETIF_MAX, sizeof *list);
    if (!list)
        return DEVICECA_E_NOMEM;
    int n = source(list, NETIF_MAX);
    if (n < 0) {
        *source_err = n;
        n = 0;
    }
    char first_ip[INET6_ADDRSTRLEN] = "";
    size_t skipped = 0;
    for (int i = 0; i < n && i < NETIF_MAX; i++) {
        for (size_t k = 0; k < list[i].n_v4 && k < NETIF_MAX_ADDRS; k++)
            add_ip(set, list[i].v4[k].addr, first_ip, &skipped);
        for (size_t k = 0; k < list[i].n_v6 && k < NETIF_MAX_ADDRS; k++)
            add_ip(set, list[i].v6[k].addr, first_ip, &skipped);
    }
    free(list);
    if (skipped)
        log_warning("security", "device CA: %zu addresses left out of the server certificate (limit %d names)",
                    skipped, X509UTIL_MAX_SAN);

    char host[DNS_MAX + 2] = "";
    if (gethostname(host, sizeof host - 1) == 0 && is_ldh_name(host)) {
        set_add(set, X509UTIL_SAN_DNS, host);
        size_t hlen = strlen(host);
        if (hlen <= CN_MAX)
            memcpy(cn, host, hlen + 1);
    }
    if (!cn[0])
        snprintf(cn, CN_MAX + 1, "%s", first_ip[0] ? first_ip : "localhost");
    if (set->n == 0)
        set_add(set, X509UTIL_SAN_DNS, "localhost");
    qsort(set->e, set->n, sizeof set->e[0], san_cmp);
    return DEVICECA_OK;
}

/* The SAN set a certificate names, in the same canonical form. */
static void cert_sans(X509 *cert, struct san_set *set)
{
    memset(set, 0, sizeof *set);
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_DNS) {
            int len = ASN1_STRING_length(gn->d.dNSName);
            char v[DNS_MAX + 1];
            if (len <= 0 || len > DNS_MAX)
                continue;
            memcpy(v, ASN1_STRING_get0_data(gn->d.dNSName), (size_t)len);
            v[len] = '\0';
            set_add(set, X509UTIL_SAN_DNS, v);
        } else if (gn->type == GEN_IPADD) {
            int len = ASN1_STRING_length(gn->d.iPAddress);
            char v[INET6_ADDRSTRLEN];
            if ((len == 4 && inet_ntop(AF_INET, ASN1_STRING_get0_data(gn->d.iPAddress), v, sizeof v)) ||
                (len == 16 && inet_ntop(AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), v, sizeof v)))
                set_add(set, X509UTIL_SAN_IP, v);
        }
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    qsort(set->e, set->n, sizeof set->e[0], san_cmp);
}

static int sets_equal(const struct san_set *a, const struct san_set *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (san_cmp(&a->e[i], &b->e[i]) != 0)
            return 0;
    return 1;
}

/* --- issuing ------------------------------------------------------------- */

static int make_subject(const char *cn, const char *organization, X509_NAME **out)
{
    struct x509util_rdn rdn[2] = { { "CN", cn }, { "O", organization } };
    size_t n = organization && organization[0] ? 2 : 1;
    return from_x509util(x509util_make_name(rdn, n, out, NULL));
}

static const EVP_MD *ca_digest(const EVP_PKEY *key)
{
    return EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) >= 384 ? EVP_sha384() : EVP_sha256();
}

/* A new CA key and self-signed certificate valid from now (an hour back) for
 * CA_LIFETIME. */
static int create_ca(const char *key_type, const char *cn, const char *organization, time_t now, EVP_PKEY **key,
                     X509 **cert)
{
    int rc;
    if (strcmp(key_type, "EC-P256") == 0)
        rc = x509util_generate_ec("P-256", key);
    else if (strcmp(key_type, "EC-P384") == 0)
        rc = x509util_generate_ec("P-384", key);
    else
        rc = x509util_generate_rsa(3072, key);
    if (rc != X509UTIL_OK)
        return from_x509util(rc);
    X509_NAME *name = NULL;
    rc = make_subject(cn, organization, &name);
    if (rc == DEVICECA_OK) {
        time_t not_after = now < CERT_TIME_MAX - CA_LIFETIME ? now + CA_LIFETIME : CERT_TIME_MAX;
        rc = from_x509util(x509util_make_self_signed(*key, name, now - BACKDATE, not_after, NULL, 0, NULL, 0, 1,
                                                     ca_digest(*key), cert));
    }
    X509_NAME_free(name);
    if (rc != DEVICECA_OK) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    return rc;
}

/* A new server key (EC P-256) and certificate for set issued by
 * ca_key/ca_cert at now, valid for SERVER_LIFETIME but never past the CA. */
static int issue_server(EVP_PKEY *ca_key, X509 *ca_cert, const char *organization, const struct san_set *set,
                        const char *cn, time_t now, EVP_PKEY **key, X509 **cert)
{
    *key = NULL;
    *cert = NULL;
    time_t not_before = now - BACKDATE, not_after = now + SERVER_LIFETIME, ca_after;
    if (cert_time(X509_get0_notAfter(ca_cert), &ca_after) != 0)
        return DEVICECA_E_CRYPTO;
    if (ca_after < not_after)
        not_after = ca_after;
    if (not_after <= not_before)
        return DEVICECA_E_CRYPTO;

    struct x509util_san sans[X509UTIL_MAX_SAN];
    for (size_t i = 0; i < set->n; i++)
        sans[i] = (struct x509util_san){ set->e[i].type, set->e[i].value };
    X509_NAME *name = NULL;
    int rc = make_subject(cn, organization, &name);
    if (rc == DEVICECA_OK)
        rc = from_x509util(x509util_generate_ec("P-256", key));
    if (rc == DEVICECA_OK)
        rc = from_x509util(x509util_issue(*key, name, ca_cert, ca_key, not_before, not_after, sans, set->n, 0, 1,
                                          ca_digest(ca_key), cert));
    X509_NAME_free(name);
    if (rc != DEVICECA_OK) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    return rc;
}

/* --- persistence --------------------------------------------------------- */

static int seal_key(const struct deviceca *ca, EVP_PKEY *key, const char *context, char **out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = from_x509util(x509util_private_key_der(key, &der, &len));
    if (rc != DEVICECA_OK)
        return rc;
    int src = secretbox_seal(ca->box, der, len, context, out);
    OPENSSL_clear_free(der, len);
    if (src == SECRETBOX_E_NOMEM)
        return DEVICECA_E_NOMEM;
    return src == SECRETBOX_OK ? DEVICECA_OK : DEVICECA_E_CRYPTO;
}

static int cert_base64(X509 *cert, char **out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = from_x509util(x509util_cert_der(cert, &der, &len));
    if (rc != DEVICECA_OK)
        return rc;
    char *b64 = malloc((len + 2) / 3 * 4 + 1);
    if (!b64) {
        OPENSSL_free(der);
        return DEVICECA_E_NOMEM;
    }
    EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    OPENSSL_free(der);
    *out = b64;
    return DEVICECA_OK;
}

/* Writes the given state. Sealed text and base64 need no XML escaping:
 * their alphabets hold no markup character. */
static int store(const struct deviceca *ca, EVP_PKEY *ca_key, X509 *ca_cert, EVP_PKEY *server_key,
                 X509 *server_cert)
{
    char *ca_sealed = NULL, *ca_b64 = NULL, *srv_sealed = NULL, *srv_b64 = NULL, *buf = NULL;
    int rc = seal_key(ca, ca_key, CA_KEY_CONTEXT, &ca_sealed);
    if (rc == DEVICECA_OK)
        rc = cert_base64(ca_cert, &ca_b64);
    if (rc == DEVICECA_OK)
        rc = seal_key(ca, server_key, SERVER_KEY_CONTEXT, &srv_sealed);
    if (rc == DEVICECA_OK)
        rc = cert_base64(server_cert, &srv_b64);
    if (rc == DEVICECA_OK) {
        int n = asprintf(&buf,
                         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<deviceca version=\"1\">\n"
                         "  <ca>\n    <key>%s</key>\n    <certificate>%s</certificate>\n  </ca>\n"
                         "  <server>\n    <key>%s</key>\n    <certificate>%s</certificate>\n  </server>\n"
                         "</deviceca>\n",
                         ca_sealed, ca_b64, srv_sealed, srv_b64);
        if (n < 0) {
            buf = NULL;
            rc = DEVICECA_E_NOMEM;
        } else {
            int wrc = atomicfile_write(ca->path, buf, (size_t)n, 0600);
            if (wrc != 0) {
                log_err("security", "saving %s failed: %s", ca->path, strerror(-wrc));
                rc = DEVICECA_E_STORE;
            }
        }
    }
    free(buf);
    free(ca_sealed);
    free(ca_b64);
    free(srv_sealed);
    free(srv_b64);
    return rc;
}

static int is_base64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Strict base64 (no whitespace, '=' only as final padding) to DER. */
static int decode_base64(const char *b64, unsigned char **out, size_t *out_len)
{
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > DEVICECA_FILE_MAX)
        return -1;
    size_t padding = 0;
    if (b64[len - 1] == '=')
        padding = b64[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - padding; i++)
        if (!is_base64_char((unsigned char)b64[i]))
            return -1;
    unsigned char *buf = malloc(len / 4 * 3);
    if (!buf)
        return -1;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = (size_t)n - padding;
    return 0;
}

/* The single element child named name, or NULL (absent or repeated). */
static xmlNode *only_child(xmlNode *parent, const char *name)
{
    xmlNode *found = NULL;
    for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, name) != 0)
            continue;
        if (found)
            return NULL;
        found = c;
    }
    return found;
}

static int load_cert(xmlNode *parent, X509 **out)
{
    xmlNode *n = only_child(parent, "certificate");
    xmlChar *text = n ? xmlNodeGetContent(n) : NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = text && decode_base64((const char *)text, &der, &len) == 0 ? 0 : -1;
    xmlFree(text);
    /* DER only: the file never holds PEM. */
    if (rc == 0 && (len == 0 || der[0] != 0x30 || x509util_parse_cert(der, len, out) != X509UTIL_OK))
        rc = -1;
    free(der);
    return rc;
}

static int load_key(const struct deviceca *ca, xmlNode *parent, const char *context, EVP_PKEY **out)
{
    xmlNode *n = only_child(parent, "key");
    xmlChar *text = n ? xmlNodeGetContent(n) : NULL;
    unsigned char *plain = NULL;
    size_t len = 0;
    int rc = text && secretbox_unseal(ca->box, (const char *)text, context, &plain, &len) == SECRETBOX_OK ? 0 : -1;
    xmlFree(text);
    if (rc == 0 && x509util_private_key_from_der(plain, len, out) != X509UTIL_OK)
        rc = -1;
    if (plain)
        secretbox_free(plain, len);
    return rc;
}

/* Loads and cross-checks the state: 0, -ENOENT when absent, another
 * negative value when unreadable or inconsistent. */
static int load(struct deviceca *ca)
{
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(ca->path, DEVICECA_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, ca->path, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc)
        return -EINVAL;
    xmlNode *root = xmlDocGetRootElement(doc);
    rc = (root && !doc->intSubset && !strcmp((const char *)root->name, "deviceca")) ? 0 : -EINVAL;
    xmlNode *ca_node = rc == 0 ? only_child(root, "ca") : NULL;
    xmlNode *srv_node = rc == 0 ? only_child(root, "server") : NULL;
    if (!ca_node || !srv_node)
        rc = -EINVAL;
    if (rc == 0 && (load_key(ca, ca_node, CA_KEY_CONTEXT, &ca->ca_key) != 0 || load_cert(ca_node, &ca->ca_cert) != 0 ||
                    load_key(ca, srv_node, SERVER_KEY_CONTEXT, &ca->server_key) != 0 ||
                    load_cert(srv_node, &ca->server_cert) != 0))
        rc = -EINVAL;
    xmlFreeDoc(doc);
    /* The pieces must belong together: CA key and certificate, a CA, and a
     * server certificate of the server key signed by that CA. */
    if (rc == 0 && (X509_check_private_key(ca->ca_cert, ca->ca_key) != 1 || X509_check_ca(ca->ca_cert) < 1 ||
                    X509_check_private_key(ca->server_cert, ca->server_key) != 1 ||
                    X509_verify(ca->server_cert, X509_get0_pubkey(ca->ca_cert)) != 1))
        rc = -EINVAL;
    ERR_clear_error();
    return rc;
}

/* --- lifecycle ----------------------------------------------------------- */

static void free_state(struct deviceca *ca)
{
    EVP_PKEY_free(ca->ca_key);
    X509_free(ca->ca_cert);
    EVP_PKEY_free(ca->server_key);
    X509_free(ca->server_cert);
    ca->ca_key = ca->server_key = NULL;
    ca->ca_cert = ca->server_cert = NULL;
}

void deviceca_close(struct deviceca *ca)
{
    if (!ca)
        return;
    free_state(ca);
    pthread_mutex_destroy(&ca->lock);
    free(ca);
}

static int check_settings(const struct deviceca_settings *s, const char **key_type, const char **cn,
                          const char **org)
{
    *key_type = s && s->key_type ? s->key_type : "EC-P256";
    *cn = s && s->common_name ? s->common_name : DEFAULT_CA_CN;
    *org = s && s->organization ? s->organization : "";
    if (strcmp(*key_type, "EC-P256") != 0 && strcmp(*key_type, "EC-P384") != 0 && strcmp(*key_type, "RSA-3072") != 0)
        return DEVICECA_E_INVALID;
    if (strlen(*org) > ORG_MAX * 4)
        return DEVICECA_E_INVALID;
    X509_NAME *name = NULL;
    int rc = make_subject(*cn, *org, &name);
    X509_NAME_free(name);
    return rc == DEVICECA_OK ? DEVICECA_OK : DEVICECA_E_INVALID;
}

int deviceca_open(struct deviceca **out, const char *state_dir, struct secretbox *box,
                  const struct deviceca_settings *s)
{
    if (!out)
        return DEVICECA_E_INVALID;
    *out = NULL;
    if (!state_dir || !box)
        return DEVICECA_E_INVALID;
    const char *key_type, *cn, *org;
    if (check_settings(s, &key_type, &cn, &org) != DEVICECA_OK)
        return DEVICECA_E_INVALID;
    struct deviceca *ca = calloc(1, sizeof *ca);
    if (!ca)
        return DEVICECA_E_NOMEM;
    if (snprintf(ca->path, sizeof ca->path, "%s/%s", state_dir, DEVICECA_FILE) >= (int)sizeof ca->path) {
        free(ca);
        return DEVICECA_E_INVALID;
    }
    pthread_mutex_init(&ca->lock, NULL);
    ca->box = box;
    ca->list = s && s->address_source ? s->address_source : netif_list;
    ca->now = s ? s->now : NULL;
    snprintf(ca->key_type, sizeof ca->key_type, "%s", key_type);
    snprintf(ca->cn, sizeof ca->cn, "%s", cn);
    snprintf(ca->organization, sizeof ca->organization, "%s", org);

    int rc = load(ca);
    if (rc == -ENOENT) {
        free_state(ca);
        struct san_set set;
        char server_cn[CN_MAX + 1];
        time_t now = clock_now(ca);
        if (!clock_plausible(now)) {
            /* The daemon needs an identity now; this CA's notBefore marks it
             * for replacement at the first refresh with a set clock. */
            char when[32];
            time_text(now, when);
            log_warning("security", "device CA: the clock reads %s, which cannot be right; creating a provisional CA, "
                        "replaced once the clock is set", when);
            ca->clock_warned = 1;
        }
        rc = create_ca(key_type, cn, org, now, &ca->ca_key, &ca->ca_cert);
        if (rc == DEVICECA_OK) {
            int source_err = 0;
            rc = current_sans(ca->list, &set, server_cn, &source_err);
            if (source_err)
                log_warning("security", "device CA: listing addresses failed (%s); naming the host only until a refresh",
                            strerror(-source_err));
        }
        if (rc == DEVICECA_OK)
            rc = issue_server(ca->ca_key, ca->ca_cert, ca->organization, &set, server_cn, now, &ca->server_key,
                              &ca->server_cert);
        if (rc == DEVICECA_OK)
            rc = store(ca, ca->ca_key, ca->ca_cert, ca->server_key, ca->server_cert);
        if (rc == DEVICECA_OK)
            log_notice("security", "created the device CA (%s) and a server certificate for %zu names in %s",
                       key_type, set.n, ca->path);
    } else if (rc != 0) {
        log_err("security", "%s is unreadable or corrupt; refusing to start over it", ca->path);
        rc = DEVICECA_E_STORE;
    }
    if (rc != DEVICECA_OK) {
        deviceca_close(ca);
        return rc;
    }
    *out = ca;
    return DEVICECA_OK;
}

void deviceca_set_address_source(struct deviceca *ca, int (*list)(struct netif *list, size_t max))
{
    if (!ca)
        return;
    pthread_mutex_lock(&ca->lock);
    ca->list = list ? list : netif_list;
    pthread_mutex_unlock(&ca->lock);
}

void deviceca_set_clock(struct deviceca *ca, time_t (*now)(void))
{
    if (!ca)
        return;
    pthread_mutex_lock(&ca->lock);
    ca->now = now;
    ca->clock_warned = 0;
    pthread_mutex_unlock(&ca->lock);
}

int deviceca_refresh(struct deviceca *ca, int *changed)
{
    if (changed)
        *changed = 0;
    if (!ca)
        return DEVICECA_E_INVALID;
    struct san_set want, have;
    char cn[CN_MAX + 1];
    pthread_mutex_lock(&ca->lock);
    time_t now = clock_now(ca);
    if (!clock_plausible(now)) {
        /* Whatever were issued now would be wrong once the clock is set:
         * keep serving what exists until then. */
        if (!ca->clock_warned) {
            char when[32];
            time_text(now, when);
            log_warning("security", "device CA: the clock reads %s, which cannot be right; "
                        "not renewing certificates until it is set", when);
            ca->clock_warned = 1;
        }
        pthread_mutex_unlock(&ca->lock);
        return DEVICECA_OK;
    }
    ca->clock_warned = 0;
    int source_err = 0;
    int rc = current_sans(ca->list, &want, cn, &source_err);
    if (rc != DEVICECA_OK || source_err) {
        pthread_mutex_unlock(&ca->lock);
        if (rc != DEVICECA_OK)
            return rc;
        /* Keep serving what we have; addresses are read again next time. */
        log_debug("security", "device CA: listing addresses failed: %s", strerror(-source_err));
        return DEVICECA_OK;
    }
    const char *rekey = ca_renewal_reason(ca->ca_cert, now);
    cert_sans(ca->server_cert, &have);
    time_t srv_before = 0, srv_after = 0, ca_after = 0;
    int readable = cert_time(X509_get0_notBefore(ca->server_cert), &srv_before) == 0 &&
                   cert_time(X509_get0_notAfter(ca->server_cert), &srv_after) == 0 &&
                   cert_time(X509_get0_notAfter(ca->ca_cert), &ca_after) == 0;
    int expiring = !readable || srv_after - now <= RENEW_BEFORE;
    /* Cut short at the CA's expiry: a new server certificate would be cut
     * the same way, so only a new CA helps, and that is not due. */
    if (expiring && readable && !rekey && srv_after >= ca_after)
        expiring = 0;
    int premature = readable && srv_before > now + DAY;   /* the clock went back */
    if (!rekey && sets_equal(&want, &have) && !expiring && !premature) {
        pthread_mutex_unlock(&ca->lock);
        return DEVICECA_OK;
    }
    EVP_PKEY *new_ca_key = NULL, *key = NULL;
    X509 *new_ca_cert = NULL, *cert = NULL;
    rc = DEVICECA_OK;
    if (rekey)
        rc = create_ca(ca->key_type, ca->cn, ca->organization, now, &new_ca_key, &new_ca_cert);
    EVP_PKEY *issuer_key = rekey ? new_ca_key : ca->ca_key;
    X509 *issuer_cert = rekey ? new_ca_cert : ca->ca_cert;
    if (rc == DEVICECA_OK)
        rc = issue_server(issuer_key, issuer_cert, ca->organization, &want, cn, now, &key, &cert);
    if (rc == DEVICECA_OK)
        rc = store(ca, issuer_key, issuer_cert, key, cert);
    if (rc == DEVICECA_OK) {
        if (rekey) {
            /* The old CA goes entirely: nothing it issued is served any more. */
            EVP_PKEY_free(ca->ca_key);
            X509_free(ca->ca_cert);
            ca->ca_key = new_ca_key;
            ca->ca_cert = new_ca_cert;
            log_notice("security", "device CA: replaced the CA (%s) because %s; clients must trust the new one",
                       ca->key_type, rekey);
        }
        EVP_PKEY_free(ca->server_key);
        X509_free(ca->server_cert);
        ca->server_key = key;
        ca->server_cert = cert;
        if (changed)
            *changed = 1;
        const char *why = rekey       ? "new CA"
                          : expiring  ? "the old one expires soon"
                          : premature ? "the old one is not valid yet"
                                      : "addresses changed";
        log_notice("security", "device CA: issued a new server certificate for %zu names (%s)", want.n, why);
    } else {
        EVP_PKEY_free(new_ca_key);
        X509_free(new_ca_cert);
        EVP_PKEY_free(key);
        X509_free(cert);
        log_err("security", "device CA: %s failed: %s",
                rekey ? "replacing the CA" : "re-issuing the server certificate", deviceca_strerror(rc));
    }
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* --- readers ------------------------------------------------------------- */

int deviceca_ca_pem(struct deviceca *ca, char **pem, size_t *len)
{
    if (pem)
        *pem = NULL;
    if (len)
        *len = 0;
    if (!ca || !pem || !len)
        return DEVICECA_E_INVALID;
    char *text = NULL;
    size_t n = 0;
    pthread_mutex_lock(&ca->lock);
    int rc = from_x509util(x509util_cert_pem(ca->ca_cert, &text, &n));
    pthread_mutex_unlock(&ca->lock);
    if (rc != DEVICECA_OK)
        return rc;
    char *copy = malloc(n + 1);
    if (copy) {
        memcpy(copy, text, n + 1);
        *pem = copy;
        *len = n;
    }
    OPENSSL_free(text);
    return copy ? DEVICECA_OK : DEVICECA_E_NOMEM;
}

int deviceca_ca_der(struct deviceca *ca, unsigned char **der, size_t *len)
{
    if (der)
        *der = NULL;
    if (len)
        *len = 0;
    if (!ca || !der || !len)
        return DEVICECA_E_INVALID;
    unsigned char *bytes = NULL;
    size_t n = 0;
    pthread_mutex_lock(&ca->lock);
    int rc = from_x509util(x509util_cert_der(ca->ca_cert, &bytes, &n));
    pthread_mutex_unlock(&ca->lock);
    if (rc != DEVICECA_OK)
        return rc;
    unsigned char *copy = malloc(n);
    if (copy) {
        memcpy(copy, bytes, n);
        *der = copy;
        *len = n;
    }
    OPENSSL_free(bytes);
    return copy ? DEVICECA_OK : DEVICECA_E_NOMEM;
}

int deviceca_server_identity(struct deviceca *ca, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain)
{
    if (key)
        *key = NULL;
    if (cert)
        *cert = NULL;
    if (chain)
        *chain = NULL;
    if (!ca || (!key && !cert && !chain))
        return DEVICECA_E_INVALID;
    STACK_OF(X509) *sk = NULL;
    if (chain && !(sk = sk_X509_new_null()))
        return DEVICECA_E_NOMEM;
    pthread_mutex_lock(&ca->lock);
    if (sk && !sk_X509_push(sk, ca->ca_cert)) {
        pthread_mutex_unlock(&ca->lock);
        sk_X509_free(sk);
        return DEVICECA_E_NOMEM;
    }
    if (sk)
        X509_up_ref(ca->ca_cert);
    if (key) {
        EVP_PKEY_up_ref(ca->server_key);
        *key = ca->server_key;
    }
    if (cert) {
        X509_up_ref(ca->server_cert);
        *cert = ca->server_cert;
    }
    pthread_mutex_unlock(&ca->lock);
    if (chain)
        *chain = sk;
    return DEVICECA_OK;
}
