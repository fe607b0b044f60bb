/* The keystore: keys, certificates, certification paths, passphrases, CRLs
 * and certification path validation policies with their referential
 * integrity, asynchronous key generation on worker threads, the read-only
 * factory identity overlay, and persistence in state_dir/keystore.xml (0600)
 * with private keys and passphrases sealed. */
#include "opennvt/keystore.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"
#include "opennvt/secretbox.h"
#include "opennvt/x509util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define KEYGEN_NICE 19
#define AREA "keystore"
/* Every certificate and CRL at X509UTIL_MAX_INPUT, base64, plus markup stays
 * below this; store() refuses (KEYSTORE_E_FULL) anything load() would not read. */
#define KEYSTORE_FILE_MAX (8u * 1024 * 1024)
#define FACTORY_FILE_MAX (256u * 1024)
#define PASSPHRASE_MAX 1024
#define REFS_MAX 1000000UL
#define COUNTER_MAX 1000000000UL
#define KEY_CONTEXT "keystore:key:"
#define PASS_CONTEXT "keystore:pass:"
#define CONTEXT_MAX (sizeof KEY_CONTEXT + sizeof PASS_CONTEXT + KEYSTORE_ID_MAX)

#define FACTORY_KEY_ID "FACTORY-KEY"
#define FACTORY_CERT_ID "FACTORY-CERT"
#define FACTORY_PATH_ID "FACTORY-PATH"
/* The factory identity: its key, and one public key per chain certificate. */
#define FACTORY_MAX_KEYS KEYSTORE_MAX_PATH_LEN
#define FACTORY_MAX_CERTS KEYSTORE_MAX_PATH_LEN

struct blob {
    unsigned char *p;
    size_t len;
};

struct key_rec {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    enum keystore_key_status status;
    int has_private_key, externally_generated, read_only;
    char type[16];
    struct blob pub;                  /* SubjectPublicKeyInfo DER; empty while generating */
    char *sealed;                     /* PKCS#8 DER sealed under KEY_CONTEXT<id>; NULL without private key */
    unsigned long refs;               /* uses by security features */
};

struct cert_rec {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    char key_id[KEYSTORE_ID_MAX];
    int read_only;
    time_t not_before, not_after;
    struct blob der;
    unsigned long refs;
};

struct path_rec {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    size_t n;
    char cert_ids[KEYSTORE_MAX_PATH_LEN][KEYSTORE_ID_MAX];
    int read_only;
    unsigned long refs;
};

struct pass_rec {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    char *sealed;
};

struct crl_rec {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    struct blob der;
};

/* Plain data (IDs and flags only), so the public struct is the record and a
 * state copy needs nothing deep for it. */
typedef struct keystore_cpv_policy cpv_rec;

/* Everything the keystore holds, factory objects first. A change is made on
 * a deep copy and swapped in only after it reached disk. */
struct ks_state {
    unsigned long next_key, next_cert, next_path, next_pass, next_crl, next_cpv;
    size_t n_keys, n_certs, n_paths, n_pass, n_crls, n_cpv;
    struct key_rec keys[KEYSTORE_MAX_KEYS + FACTORY_MAX_KEYS];
    struct cert_rec certs[KEYSTORE_MAX_CERTS + FACTORY_MAX_CERTS];
    struct path_rec paths[KEYSTORE_MAX_PATHS + 1];
    struct pass_rec pass[KEYSTORE_MAX_PASSPHRASES];
    struct crl_rec crls[KEYSTORE_MAX_CRLS];
    cpv_rec cpv[KEYSTORE_MAX_CPV_POLICIES];
};

struct keygen_slot {
    pthread_t thread;
    int used;                         /* a thread was started and not joined yet */
    int done;                         /* it finished its work (join does not block) */
};

/* Two locks so that readers never wait for the disk: write_lock serializes
 * changes (copy, validate, save) and the key generation slots; lock guards
 * the state for readers and is held by a writer only to swap the new state
 * in. A writer may read the state under write_lock alone, since only write_lock
 * holders ever change it. Order: write_lock, then lock. */
struct keystore {
    pthread_mutex_t write_lock;
    pthread_mutex_t lock;
    char path[PATH_MAX];
    struct secretbox *box;
    struct ks_state state;
    struct keygen_slot slots[KEYSTORE_MAX_KEYGEN];
    /* The feature that answers "still in use?" for every delete; changed
     * and called under write_lock only. */
    int (*in_use)(void *arg, const char *kind, const char *id);
    void *in_use_arg;
    /* Told of every key status change (events); set before use. */
    keystore_status_fn status_fn;
    void *status_arg;
    /* Bumped after each swap of the state; atomic so that polling it never
     * waits for a writer. Starts at 1: a user's "never loaded" 0 differs. */
    atomic_ulong generation;
};

struct keygen_job {
    struct keystore *ks;
    size_t slot;
    char id[KEYSTORE_ID_MAX];
    int bits;                         /* RSA; 0 for EC */
    char curve[16];
};

const char *keystore_strerror(int err)
{
    switch (err) {
    case KEYSTORE_OK: return "ok";
    case KEYSTORE_E_NOT_FOUND: return "no object with this ID";
    case KEYSTORE_E_REFERENCED: return "the object is still referenced";
    case KEYSTORE_E_FULL: return "maximum number of objects reached";
    case KEYSTORE_E_ALIAS: return "alias too long or not UTF-8";
    case KEYSTORE_E_KEY_PARAMS: return "unsupported key length or curve";
    case KEYSTORE_E_KEY_STATUS: return "the key is not ok (generating or corrupt)";
    case KEYSTORE_E_NO_PRIVATE_KEY: return "the key has no private key";
    case KEYSTORE_E_NO_MATCHING_KEY: return "no key pair with a private key matches the certificate";
    case KEYSTORE_E_KEY_EXISTS: return "the key pair is already stored";
    case KEYSTORE_E_BAD_INPUT: return "malformed certificate, key, CRL or PKCS#12";
    case KEYSTORE_E_PASSPHRASE: return "wrong, missing or unusable passphrase";
    case KEYSTORE_E_PATH_ORDER: return "certification path not in issuer order";
    case KEYSTORE_E_READ_ONLY: return "factory object, read-only";
    case KEYSTORE_E_STORE: return "could not save or load the keystore";
    case KEYSTORE_E_BUSY: return "too many key generations running";
    case KEYSTORE_E_CRYPTO: return "cryptographic failure";
    case KEYSTORE_E_NOMEM: return "out of memory";
    case KEYSTORE_E_INVALID: return "invalid argument";
    case KEYSTORE_E_KEY_MISMATCH: return "the private key does not match the certificate";
    case KEYSTORE_E_DUPLICATE: return "the certificate is already stored";
    case KEYSTORE_E_NOT_CA: return "a trust anchor is not a CA certificate";
    case KEYSTORE_E_PARAMS: return "certification path validation parameters not supported";
    }
    return "unknown error";
}

const char *keystore_key_status_name(enum keystore_key_status s)
{
    switch (s) {
    case KEYSTORE_KEY_OK: return "ok";
    case KEYSTORE_KEY_GENERATING: return "generating";
    case KEYSTORE_KEY_CORRUPT: return "corrupt";
    }
    return "unknown";
}

static int map_x509(int rc)
{
    switch (rc) {
    case X509UTIL_OK: return KEYSTORE_OK;
    case X509UTIL_E_PASSPHRASE: return KEYSTORE_E_PASSPHRASE;
    case X509UTIL_E_KEY: return KEYSTORE_E_KEY_PARAMS;
    case X509UTIL_E_ORDER: return KEYSTORE_E_PATH_ORDER;
    case X509UTIL_E_MISMATCH: return KEYSTORE_E_KEY_MISMATCH;
    case X509UTIL_E_CRYPTO: return KEYSTORE_E_CRYPTO;
    case X509UTIL_E_NOMEM: return KEYSTORE_E_NOMEM;
    default: return KEYSTORE_E_BAD_INPUT;
    }
}

static int map_box(int rc)
{
    return rc == SECRETBOX_E_NOMEM ? KEYSTORE_E_NOMEM : KEYSTORE_E_CRYPTO;
}

/* --- pure rules ---------------------------------------------------------- */

/* Aliases are unstructured, but must be UTF-8 (they travel in SOAP) and
 * hold only characters XML can carry back (no C0 controls, DEL, U+FFFE/F):
 * whatever is stored must load again. */
static int check_alias(const char *alias)
{
    if (!alias)
        return KEYSTORE_OK;
    size_t len = strnlen(alias, KEYSTORE_ALIAS_MAX + 1);
    if (len > KEYSTORE_ALIAS_MAX)
        return KEYSTORE_E_ALIAS;
    const unsigned char *s = (const unsigned char *)alias;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t extra;
        unsigned cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return KEYSTORE_E_ALIAS;
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return KEYSTORE_E_ALIAS;
        }
        if (i + extra >= len)
            return KEYSTORE_E_ALIAS;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return KEYSTORE_E_ALIAS;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return KEYSTORE_E_ALIAS;
        i += extra + 1;
    }
    return KEYSTORE_OK;
}

static void copy_alias(char out[KEYSTORE_ALIAS_MAX + 1], const char *alias)
{
    snprintf(out, KEYSTORE_ALIAS_MAX + 1, "%s", alias ? alias : "");
}

static int id_ok(const char *id)
{
    return id && strnlen(id, KEYSTORE_ID_MAX) < KEYSTORE_ID_MAX;
}

/* "RSA-2048", "EC-P256", ...; KEYSTORE_E_KEY_PARAMS for anything else. */
static int key_type_name(const EVP_PKEY *key, char out[16])
{
    if (!key)
        return KEYSTORE_E_INVALID;
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits != 2048 && bits != 3072 && bits != 4096)
            return KEYSTORE_E_KEY_PARAMS;
        snprintf(out, 16, "RSA-%d", bits);
        return KEYSTORE_OK;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen))
            return KEYSTORE_E_KEY_PARAMS;
        if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256") || !strcmp(group, "secp256r1"))
            snprintf(out, 16, "EC-P256");
        else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
            snprintf(out, 16, "EC-P384");
        else
            return KEYSTORE_E_KEY_PARAMS;
        return KEYSTORE_OK;
    }
    return KEYSTORE_E_KEY_PARAMS;
}

static const char *canonical_curve(const char *curve)
{
    static const char *const p256[] = { "secp256r1", "prime256v1", "P-256" };
    static const char *const p384[] = { "secp384r1", "P-384" };
    if (!curve)
        return NULL;
    for (size_t i = 0; i < sizeof p256 / sizeof p256[0]; i++)
        if (!strcmp(curve, p256[i]))
            return "prime256v1";
    for (size_t i = 0; i < sizeof p384 / sizeof p384[0]; i++)
        if (!strcmp(curve, p384[i]))
            return "secp384r1";
    return NULL;
}

static time_t asn1_time_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

/* --- blobs, base64, state copies ----------------------------------------- */

static int blob_set(struct blob *b, const unsigned char *p, size_t len)
{
    b->p = NULL;
    b->len = 0;
    if (len == 0)
        return KEYSTORE_OK;
    b->p = malloc(len);
    if (!b->p)
        return KEYSTORE_E_NOMEM;
    memcpy(b->p, p, len);
    b->len = len;
    return KEYSTORE_OK;
}

static int blob_equal(const struct blob *b, const unsigned char *p, size_t len)
{
    return b->len == len && len > 0 && memcmp(b->p, p, len) == 0;
}

static char *b64_encode(const unsigned char *p, size_t len)
{
    if (len > INT_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, p, (int)len);
    return out;
}

/* Strict: only what b64_encode writes. */
static int b64_decode(const char *text, struct blob *out)
{
    out->p = NULL;
    out->len = 0;
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len % 4 != 0 || len > KEYSTORE_FILE_MAX)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (c == '=' && i >= len - 2) {
            pad++;
            continue;
        }
        if (!ok || pad)
            return -1;
    }
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return -1;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
    if (n < 0 || (size_t)n < pad) {
        free(buf);
        return -1;
    }
    out->p = buf;
    out->len = (size_t)n - pad;
    return 0;
}

static void state_clear(struct ks_state *st)
{
    for (size_t i = 0; i < st->n_keys; i++) {
        free(st->keys[i].pub.p);
        if (st->keys[i].sealed)
            secretbox_free(st->keys[i].sealed, strlen(st->keys[i].sealed));
    }
    for (size_t i = 0; i < st->n_certs; i++)
        free(st->certs[i].der.p);
    for (size_t i = 0; i < st->n_pass; i++)
        if (st->pass[i].sealed)
            secretbox_free(st->pass[i].sealed, strlen(st->pass[i].sealed));
    for (size_t i = 0; i < st->n_crls; i++)
        free(st->crls[i].der.p);
    st->n_keys = st->n_certs = st->n_paths = st->n_pass = st->n_crls = st->n_cpv = 0;
}

/* A malloc'd deep copy of src, or NULL. */
static struct ks_state *state_dup(const struct ks_state *src)
{
    struct ks_state *st = malloc(sizeof *st);
    if (!st)
        return NULL;
    *st = *src;
    int ok = 1;
    for (size_t i = 0; i < st->n_keys; i++) {
        struct key_rec *k = &st->keys[i];
        const struct key_rec *s = &src->keys[i];
        k->sealed = NULL;
        if (!ok || blob_set(&k->pub, s->pub.p, s->pub.len) != KEYSTORE_OK)
            ok = 0, k->pub = (struct blob){ NULL, 0 };
        if (ok && s->sealed && !(k->sealed = strdup(s->sealed)))
            ok = 0;
    }
    for (size_t i = 0; i < st->n_certs; i++)
        if (!ok || blob_set(&st->certs[i].der, src->certs[i].der.p, src->certs[i].der.len) != KEYSTORE_OK)
            ok = 0, st->certs[i].der = (struct blob){ NULL, 0 };
    for (size_t i = 0; i < st->n_pass; i++) {
        st->pass[i].sealed = NULL;
        if (ok && src->pass[i].sealed && !(st->pass[i].sealed = strdup(src->pass[i].sealed)))
            ok = 0;
    }
    for (size_t i = 0; i < st->n_crls; i++)
        if (!ok || blob_set(&st->crls[i].der, src->crls[i].der.p, src->crls[i].der.len) != KEYSTORE_OK)
            ok = 0, st->crls[i].der = (struct blob){ NULL, 0 };
    if (!ok) {
        state_clear(st);
        free(st);
        return NULL;
    }
    return st;
}

static void state_free(struct ks_state *st)
{
    if (st) {
        state_clear(st);
        free(st);
    }
}

/* --- lookups ------------------------------------------------------------- */

static struct key_rec *find_key(struct ks_state *st, const char *id)
{
    for (size_t i = 0; id && i < st->n_keys; i++)
        if (!strcmp(st->keys[i].id, id))
            return &st->keys[i];
    return NULL;
}

static struct cert_rec *find_cert(struct ks_state *st, const char *id)
{
    for (size_t i = 0; id && i < st->n_certs; i++)
        if (!strcmp(st->certs[i].id, id))
            return &st->certs[i];
    return NULL;
}

static struct path_rec *find_path(struct ks_state *st, const char *id)
{
    for (size_t i = 0; id && i < st->n_paths; i++)
        if (!strcmp(st->paths[i].id, id))
            return &st->paths[i];
    return NULL;
}

static struct pass_rec *find_pass(struct ks_state *st, const char *id)
{
    for (size_t i = 0; id && i < st->n_pass; i++)
        if (!strcmp(st->pass[i].id, id))
            return &st->pass[i];
    return NULL;
}

static struct crl_rec *find_crl(struct ks_state *st, const char *id)
{
    for (size_t i = 0; id && i < st->n_crls; i++)
        if (!strcmp(st->crls[i].id, id))
            return &st->crls[i];
    return NULL;
}

static cpv_rec *find_cpv(struct ks_state *st, const char *id)
{
    for (size_t i = 0; id && i < st->n_cpv; i++)
        if (!strcmp(st->cpv[i].id, id))
            return &st->cpv[i];
    return NULL;
}

/* The key whose public key is pub: an ok key with a private key first, then
 * any ok key, then any (its status then refuses the operation). */
static struct key_rec *find_key_by_pub(struct ks_state *st, const unsigned char *pub, size_t len)
{
    struct key_rec *ok = NULL, *any = NULL;
    for (size_t i = 0; i < st->n_keys; i++) {
        struct key_rec *k = &st->keys[i];
        if (!blob_equal(&k->pub, pub, len))
            continue;
        if (k->status == KEYSTORE_KEY_OK && k->has_private_key)
            return k;
        if (k->status == KEYSTORE_KEY_OK && !ok)
            ok = k;
        if (!any)
            any = k;
    }
    return ok ? ok : any;
}

static struct cert_rec *find_cert_by_der(struct ks_state *st, const unsigned char *der, size_t len)
{
    for (size_t i = 0; i < st->n_certs; i++)
        if (blob_equal(&st->certs[i].der, der, len))
            return &st->certs[i];
    return NULL;
}

static size_t writable_keys(const struct ks_state *st)
{
    size_t c = 0;
    for (size_t i = 0; i < st->n_keys; i++)
        c += !st->keys[i].read_only;
    return c;
}

static size_t writable_certs(const struct ks_state *st)
{
    size_t c = 0;
    for (size_t i = 0; i < st->n_certs; i++)
        c += !st->certs[i].read_only;
    return c;
}

static size_t writable_paths(const struct ks_state *st)
{
    size_t c = 0;
    for (size_t i = 0; i < st->n_paths; i++)
        c += !st->paths[i].read_only;
    return c;
}

static int key_used_by_cert(const struct ks_state *st, const char *key_id)
{
    for (size_t i = 0; i < st->n_certs; i++)
        if (!strcmp(st->certs[i].key_id, key_id))
            return 1;
    return 0;
}

static int cert_in_path(const struct ks_state *st, const char *cert_id)
{
    for (size_t i = 0; i < st->n_paths; i++)
        for (size_t k = 0; k < st->paths[i].n; k++)
            if (!strcmp(st->paths[i].cert_ids[k], cert_id))
                return 1;
    return 0;
}

static int cert_is_anchor(const struct ks_state *st, const char *cert_id)
{
    for (size_t i = 0; i < st->n_cpv; i++)
        for (size_t k = 0; k < st->cpv[i].n_anchors; k++)
            if (!strcmp(st->cpv[i].anchor_ids[k], cert_id))
                return 1;
    return 0;
}

/* basicConstraints present with CA:TRUE (and keyCertSign when keyUsage is
 * there): X509_check_ca answers 1 for exactly that; its 3, 4 and 5 (v1
 * self-signed roots, keyUsage or Netscape type alone) are not enough for a
 * trust anchor. */
static int der_is_ca(const struct blob *der)
{
    const unsigned char *p = der->p;
    X509 *x = d2i_X509(NULL, &p, (long)der->len);
    int ca = x && p == der->p + der->len && X509_check_ca(x) == 1;
    X509_free(x);
    return ca;
}

/* Asks the registered feature whether kind/id is in use; write_lock held. */
static int in_use_elsewhere(const struct keystore *ks, const char *kind, const char *id)
{
    return ks->in_use && ks->in_use(ks->in_use_arg, kind, id) != 0;
}

/* --- sealing ------------------------------------------------------------- */

static void context_for(char out[CONTEXT_MAX], const char *prefix, const char *id)
{
    snprintf(out, CONTEXT_MAX, "%s%s", prefix, id);
}

static int seal_private_key(const struct keystore *ks, EVP_PKEY *key, const char *id, char **sealed)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = map_x509(x509util_private_key_der(key, &der, &len));
    if (rc != KEYSTORE_OK)
        return rc;
    char context[CONTEXT_MAX];
    context_for(context, KEY_CONTEXT, id);
    int brc = secretbox_seal(ks->box, der, len, context, sealed);
    OPENSSL_clear_free(der, len);
    return brc == SECRETBOX_OK ? KEYSTORE_OK : map_box(brc);
}

static int unseal_private_key(const struct keystore *ks, const char *sealed, const char *id, EVP_PKEY **out)
{
    char context[CONTEXT_MAX];
    context_for(context, KEY_CONTEXT, id);
    unsigned char *der = NULL;
    size_t len = 0;
    int brc = secretbox_unseal(ks->box, sealed, context, &der, &len);
    if (brc != SECRETBOX_OK)
        return brc == SECRETBOX_E_NOMEM ? KEYSTORE_E_NOMEM : KEYSTORE_E_CRYPTO;
    int rc = map_x509(x509util_private_key_from_der(der, len, out));
    secretbox_free(der, len + 1);
    return rc == KEYSTORE_OK ? KEYSTORE_OK : KEYSTORE_E_CRYPTO;
}

/* The stored passphrase id, unsealed into a malloc'd string (wipe with
 * secretbox_free(p, strlen(p))). Called without the lock. */
static int passphrase_by_id(struct keystore *ks, const char *id, char **out)
{
    *out = NULL;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    struct pass_rec *p = find_pass(&ks->state, id);
    char *sealed = p ? strdup(p->sealed) : NULL;
    pthread_mutex_unlock(&ks->lock);
    if (!p)
        return KEYSTORE_E_NOT_FOUND;
    if (!sealed)
        return KEYSTORE_E_NOMEM;
    char context[CONTEXT_MAX];
    context_for(context, PASS_CONTEXT, id);
    unsigned char *plain = NULL;
    size_t len = 0;
    int brc = secretbox_unseal(ks->box, sealed, context, &plain, &len);
    free(sealed);
    if (brc != SECRETBOX_OK) {
        log_err(AREA, "the stored passphrase %s does not open: %s", id, secretbox_strerror(brc));
        return brc == SECRETBOX_E_NOMEM ? KEYSTORE_E_NOMEM : KEYSTORE_E_PASSPHRASE;
    }
    if (strlen((char *)plain) != len) {
        secretbox_free(plain, len + 1);
        return KEYSTORE_E_PASSPHRASE;
    }
    *out = (char *)plain;
    return KEYSTORE_OK;
}

int keystore_passphrase_by_alias(struct keystore *ks, const char *alias, char **out)
{
    if (!ks || !alias || !out)
        return KEYSTORE_E_INVALID;
    *out = NULL;
    char id[KEYSTORE_ID_MAX] = "";
    int found = 0;
    pthread_mutex_lock(&ks->lock);
    for (size_t i = 0; i < ks->state.n_pass; i++) {
        if (!strcmp(ks->state.pass[i].alias, alias)) {
            snprintf(id, sizeof id, "%s", ks->state.pass[i].id);
            found++;
        }
    }
    pthread_mutex_unlock(&ks->lock);
    if (found != 1)
        return found ? KEYSTORE_E_DUPLICATE : KEYSTORE_E_NOT_FOUND;
    return passphrase_by_id(ks, id, out);
}

/* The passphrase an upload uses: the value when given (it wins), else the
 * stored one, else none. *owned is what to wipe afterwards. */
static int resolve_passphrase(struct keystore *ks, const char *passphrase_id, const char *passphrase,
                              const char **use, char **owned)
{
    *owned = NULL;
    *use = passphrase;
    if (passphrase || !passphrase_id)
        return KEYSTORE_OK;
    int rc = passphrase_by_id(ks, passphrase_id, owned);
    *use = *owned;
    return rc;
}

static void wipe_string(char *s)
{
    if (s)
        secretbox_free(s, strlen(s));
}

/* --- persistence --------------------------------------------------------- */

static void set_prop(xmlNode *node, const char *name, const char *value, int *ok)
{
    if (*ok && (!node || !xmlNewProp(node, (const xmlChar *)name, (const xmlChar *)value)))
        *ok = 0;
}

static void set_prop_ul(xmlNode *node, const char *name, unsigned long v, int *ok)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lu", v);
    set_prop(node, name, buf, ok);
}

static xmlNode *add_child(xmlNode *parent, const char *name, const char *text, int *ok)
{
    if (!*ok)
        return NULL;
    xmlNode *n = xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text);
    if (!n)
        *ok = 0;
    return n;
}

static xmlNode *add_b64_child(xmlNode *parent, const char *name, const struct blob *b, int *ok)
{
    if (!*ok)
        return NULL;
    char *text = b64_encode(b->p, b->len);
    if (!text) {
        *ok = 0;
        return NULL;
    }
    xmlNode *n = add_child(parent, name, text, ok);
    free(text);
    return n;
}

static const char *bool_text(int b)
{
    return b ? "true" : "false";
}

static void store_ref(xmlNode *root, const char *kind, const char *id, unsigned long refs, int *ok)
{
    if (refs == 0)
        return;
    xmlNode *n = add_child(root, "factory-ref", NULL, ok);
    set_prop(n, "kind", kind, ok);
    set_prop(n, "id", id, ok);
    set_prop_ul(n, "count", refs, ok);
}

/* Writes st (factory objects only as their reference counts); called with
 * write_lock held, before st becomes the state. */
static int store(const struct keystore *ks, const struct ks_state *st)
{
    int ok = 1;
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNode *root = doc ? xmlNewDocNode(doc, NULL, (const xmlChar *)"keystore", NULL) : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        return KEYSTORE_E_NOMEM;
    }
    xmlDocSetRootElement(doc, root);
    set_prop(root, "version", "1", &ok);
    set_prop_ul(root, "next-key", st->next_key, &ok);
    set_prop_ul(root, "next-cert", st->next_cert, &ok);
    set_prop_ul(root, "next-path", st->next_path, &ok);
    set_prop_ul(root, "next-passphrase", st->next_pass, &ok);
    set_prop_ul(root, "next-crl", st->next_crl, &ok);
    set_prop_ul(root, "next-cpv-policy", st->next_cpv, &ok);
    for (size_t i = 0; i < st->n_keys && ok; i++) {
        const struct key_rec *k = &st->keys[i];
        if (k->read_only) {
            store_ref(root, "key", k->id, k->refs, &ok);
            continue;
        }
        xmlNode *n = add_child(root, "key", NULL, &ok);
        set_prop(n, "id", k->id, &ok);
        set_prop(n, "alias", k->alias, &ok);
        set_prop(n, "status", keystore_key_status_name(k->status), &ok);
        set_prop(n, "type", k->type, &ok);
        set_prop(n, "external", bool_text(k->externally_generated), &ok);
        set_prop_ul(n, "refs", k->refs, &ok);
        if (k->pub.len)
            add_b64_child(n, "public", &k->pub, &ok);
        if (k->sealed)
            add_child(n, "private", k->sealed, &ok);
    }
    for (size_t i = 0; i < st->n_certs && ok; i++) {
        const struct cert_rec *c = &st->certs[i];
        if (c->read_only) {
            store_ref(root, "cert", c->id, c->refs, &ok);
            continue;
        }
        xmlNode *n = add_b64_child(root, "cert", &c->der, &ok);
        set_prop(n, "id", c->id, &ok);
        set_prop(n, "alias", c->alias, &ok);
        set_prop(n, "key", c->key_id, &ok);
        set_prop_ul(n, "refs", c->refs, &ok);
    }
    for (size_t i = 0; i < st->n_paths && ok; i++) {
        const struct path_rec *p = &st->paths[i];
        if (p->read_only) {
            store_ref(root, "path", p->id, p->refs, &ok);
            continue;
        }
        xmlNode *n = add_child(root, "path", NULL, &ok);
        set_prop(n, "id", p->id, &ok);
        set_prop(n, "alias", p->alias, &ok);
        set_prop_ul(n, "refs", p->refs, &ok);
        for (size_t k = 0; k < p->n; k++)
            add_child(n, "cert", p->cert_ids[k], &ok);
    }
    for (size_t i = 0; i < st->n_pass && ok; i++) {
        xmlNode *n = add_child(root, "passphrase", st->pass[i].sealed, &ok);
        set_prop(n, "id", st->pass[i].id, &ok);
        set_prop(n, "alias", st->pass[i].alias, &ok);
    }
    for (size_t i = 0; i < st->n_crls && ok; i++) {
        xmlNode *n = add_b64_child(root, "crl", &st->crls[i].der, &ok);
        set_prop(n, "id", st->crls[i].id, &ok);
        set_prop(n, "alias", st->crls[i].alias, &ok);
    }
    for (size_t i = 0; i < st->n_cpv && ok; i++) {
        const cpv_rec *v = &st->cpv[i];
        xmlNode *n = add_child(root, "cpv-policy", NULL, &ok);
        set_prop(n, "id", v->id, &ok);
        set_prop(n, "alias", v->alias, &ok);
        set_prop(n, "require-client-auth-eku", bool_text(v->require_client_auth_eku), &ok);
        set_prop(n, "use-delta-crls", bool_text(v->use_delta_crls), &ok);
        for (size_t k = 0; k < v->n_anchors; k++)
            add_child(n, "anchor", v->anchor_ids[k], &ok);
    }
    xmlChar *mem = NULL;
    int size = 0;
    if (ok)
        xmlDocDumpFormatMemoryEnc(doc, &mem, &size, "UTF-8", 1);
    xmlFreeDoc(doc);
    if (!mem) {
        log_err(AREA, "building %s failed", ks->path);
        return KEYSTORE_E_NOMEM;
    }
    if ((size_t)size > KEYSTORE_FILE_MAX) {
        xmlFree(mem);
        log_warning(AREA, "the keystore would exceed %u bytes; change refused", KEYSTORE_FILE_MAX);
        return KEYSTORE_E_FULL;
    }
    int rc = atomicfile_write(ks->path, mem, (size_t)size, 0600);
    /* Holds sealed text only, but wipe anyway: it is key material at rest. */
    OPENSSL_cleanse(mem, (size_t)size);
    xmlFree(mem);
    if (rc != 0) {
        log_err(AREA, "saving %s failed: %s", ks->path, strerror(-rc));
        return KEYSTORE_E_STORE;
    }
    return KEYSTORE_OK;
}

/* Saves next and, only when that worked, makes it the state (next is
 * consumed either way). Called with write_lock held; readers are held up
 * only for the swap, never for the save. */
static int commit(struct keystore *ks, struct ks_state *next)
{
    int rc = store(ks, next);
    if (rc == KEYSTORE_OK) {
        pthread_mutex_lock(&ks->lock);
        state_clear(&ks->state);
        ks->state = *next;
        atomic_fetch_add(&ks->generation, 1);
        pthread_mutex_unlock(&ks->lock);
        free(next);
    } else {
        state_free(next);
    }
    return rc;
}

/* --- loading ------------------------------------------------------------- */

static char *get_prop(xmlNode *n, const char *name)
{
    return (char *)xmlGetProp(n, (const xmlChar *)name);
}

static int parse_ul(const char *text, unsigned long max, unsigned long *out)
{
    if (!text || !*text || text[0] == '-' || text[0] == '+')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int prop_ul(xmlNode *n, const char *name, unsigned long max, unsigned long *out)
{
    char *t = get_prop(n, name);
    int rc = parse_ul(t, max, out);
    xmlFree(t);
    return rc;
}

/* An ID we issue: prefix + decimal below the counter. Raises the counter
 * when a file lists a higher one, so IDs are never reused. */
static int check_issued_id(const char *id, const char *prefix, unsigned long *counter)
{
    size_t pl = strlen(prefix);
    unsigned long num;
    if (strncmp(id, prefix, pl) != 0 || parse_ul(id + pl, COUNTER_MAX, &num) != 0 || num == 0)
        return -1;
    if (num >= *counter)
        *counter = num + 1;
    return 0;
}

/* Reads id and alias of an element. */
static int load_id_alias(xmlNode *n, char id[KEYSTORE_ID_MAX], char alias[KEYSTORE_ALIAS_MAX + 1],
                         const char *prefix, unsigned long *counter)
{
    char *i = get_prop(n, "id");
    char *a = get_prop(n, "alias");
    int rc = (i && id_ok(i) && check_issued_id(i, prefix, counter) == 0 && check_alias(a) == KEYSTORE_OK) ? 0 : -1;
    if (rc == 0) {
        snprintf(id, KEYSTORE_ID_MAX, "%s", i);
        copy_alias(alias, a);
    }
    xmlFree(i);
    xmlFree(a);
    return rc;
}

static char *child_text(xmlNode *n, const char *name, int *count)
{
    char *found = NULL;
    *count = 0;
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name)) {
            (*count)++;
            if (!found)
                found = (char *)xmlNodeGetContent(c);
        }
    return found;
}

/* The key's private part must open under this device key and match its
 * public key; a key that fails becomes corrupt (it is unusable) rather than
 * the whole keystore being refused. */
static void verify_private_key(const struct keystore *ks, struct key_rec *k)
{
    EVP_PKEY *key = NULL;
    unsigned char *pub = NULL;
    size_t pub_len = 0;
    int ok = unseal_private_key(ks, k->sealed, k->id, &key) == KEYSTORE_OK &&
             x509util_public_key_der(key, &pub, &pub_len) == X509UTIL_OK && blob_equal(&k->pub, pub, pub_len);
    OPENSSL_free(pub);
    EVP_PKEY_free(key);
    if (!ok) {
        log_err(AREA, "the private key of %s does not open or does not match; marking it corrupt", k->id);
        k->status = KEYSTORE_KEY_CORRUPT;
    }
}

static int load_key(const struct keystore *ks, xmlNode *n, struct ks_state *st)
{
    if (writable_keys(st) >= KEYSTORE_MAX_KEYS)
        return -1;
    struct key_rec *k = &st->keys[st->n_keys];
    memset(k, 0, sizeof *k);
    if (load_id_alias(n, k->id, k->alias, "KEY-", &st->next_key) || find_key(st, k->id))
        return -1;
    char *status = get_prop(n, "status");
    char *external = get_prop(n, "external");
    int rc = 0;
    if (status && !strcmp(status, "ok"))
        k->status = KEYSTORE_KEY_OK;
    else if (status && !strcmp(status, "generating"))
        k->status = KEYSTORE_KEY_GENERATING;
    else if (status && !strcmp(status, "corrupt"))
        k->status = KEYSTORE_KEY_CORRUPT;
    else
        rc = -1;
    if (external && !strcmp(external, "true"))
        k->externally_generated = 1;
    else if (!external || strcmp(external, "false"))
        rc = -1;
    xmlFree(status);
    xmlFree(external);
    if (rc == 0 && prop_ul(n, "refs", REFS_MAX, &k->refs))
        rc = -1;
    int n_pub = 0, n_priv = 0;
    char *pub = child_text(n, "public", &n_pub);
    char *priv = child_text(n, "private", &n_priv);
    if (rc == 0 && (n_pub > 1 || n_priv > 1 || (n_priv && !n_pub)))
        rc = -1;
    if (rc == 0 && pub && b64_decode(pub, &k->pub) != 0)
        rc = -1;
    if (rc == 0 && k->pub.len) {
        const unsigned char *p = k->pub.p;
        EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)k->pub.len);
        if (!key || p != k->pub.p + k->pub.len || key_type_name(key, k->type) != KEYSTORE_OK)
            rc = -1;
        EVP_PKEY_free(key);
    }
    if (rc == 0 && k->status == KEYSTORE_KEY_OK && !k->pub.len)
        rc = -1;
    if (rc == 0 && priv) {
        k->sealed = strdup(priv);
        if (!k->sealed)
            rc = -1;
        k->has_private_key = 1;
    }
    xmlFree(pub);
    xmlFree(priv);
    if (rc != 0) {
        free(k->pub.p);
        free(k->sealed);
        return -1;
    }
    if (k->status == KEYSTORE_KEY_OK && k->has_private_key)
        verify_private_key(ks, k);
    st->n_keys++;
    return 0;
}

static int load_cert(xmlNode *n, struct ks_state *st)
{
    if (writable_certs(st) >= KEYSTORE_MAX_CERTS)
        return -1;
    struct cert_rec *c = &st->certs[st->n_certs];
    memset(c, 0, sizeof *c);
    if (load_id_alias(n, c->id, c->alias, "CERT-", &st->next_cert) || find_cert(st, c->id))
        return -1;
    char *key = get_prop(n, "key");
    char *text = (char *)xmlNodeGetContent(n);
    int rc = (key && id_ok(key) && prop_ul(n, "refs", REFS_MAX, &c->refs) == 0 && b64_decode(text, &c->der) == 0)
                 ? 0 : -1;
    if (rc == 0)
        snprintf(c->key_id, sizeof c->key_id, "%s", key);
    xmlFree(key);
    xmlFree(text);
    if (rc != 0) {
        free(c->der.p);
        return -1;
    }
    st->n_certs++;
    return 0;
}

static int load_path(xmlNode *n, struct ks_state *st)
{
    if (writable_paths(st) >= KEYSTORE_MAX_PATHS)
        return -1;
    struct path_rec *p = &st->paths[st->n_paths];
    memset(p, 0, sizeof *p);
    if (load_id_alias(n, p->id, p->alias, "PATH-", &st->next_path) || find_path(st, p->id) ||
        prop_ul(n, "refs", REFS_MAX, &p->refs))
        return -1;
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, "cert") || p->n >= KEYSTORE_MAX_PATH_LEN)
            return -1;
        char *t = (char *)xmlNodeGetContent(c);
        int ok = t && id_ok(t);
        if (ok)
            snprintf(p->cert_ids[p->n++], KEYSTORE_ID_MAX, "%s", t);
        xmlFree(t);
        if (!ok)
            return -1;
    }
    if (p->n == 0)
        return -1;
    st->n_paths++;
    return 0;
}

static int load_pass(xmlNode *n, struct ks_state *st)
{
    if (st->n_pass >= KEYSTORE_MAX_PASSPHRASES)
        return -1;
    struct pass_rec *p = &st->pass[st->n_pass];
    memset(p, 0, sizeof *p);
    if (load_id_alias(n, p->id, p->alias, "PASS-", &st->next_pass) || find_pass(st, p->id))
        return -1;
    char *t = (char *)xmlNodeGetContent(n);
    p->sealed = (t && strncmp(t, "v1:", 3) == 0) ? strdup(t) : NULL;
    xmlFree(t);
    if (!p->sealed)
        return -1;
    st->n_pass++;
    return 0;
}

static int load_crl(xmlNode *n, struct ks_state *st)
{
    if (st->n_crls >= KEYSTORE_MAX_CRLS)
        return -1;
    struct crl_rec *c = &st->crls[st->n_crls];
    memset(c, 0, sizeof *c);
    if (load_id_alias(n, c->id, c->alias, "CRL-", &st->next_crl) || find_crl(st, c->id))
        return -1;
    char *t = (char *)xmlNodeGetContent(n);
    int rc = b64_decode(t, &c->der);
    xmlFree(t);
    if (rc != 0)
        return -1;
    const unsigned char *p = c->der.p;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)c->der.len);
    rc = crl && p == c->der.p + c->der.len ? 0 : -1;
    X509_CRL_free(crl);
    if (rc != 0) {
        free(c->der.p);
        return -1;
    }
    st->n_crls++;
    return 0;
}

static int prop_bool(xmlNode *n, const char *name, int *out)
{
    char *t = get_prop(n, name);
    int rc = 0;
    if (t && !strcmp(t, "true"))
        *out = 1;
    else if (t && !strcmp(t, "false"))
        *out = 0;
    else
        rc = -1;
    xmlFree(t);
    return rc;
}

/* The anchors are only read here; whether they exist and are CAs is checked
 * with the other cross references (check_links). */
static int load_cpv(xmlNode *n, struct ks_state *st)
{
    if (st->n_cpv >= KEYSTORE_MAX_CPV_POLICIES)
        return -1;
    cpv_rec *v = &st->cpv[st->n_cpv];
    memset(v, 0, sizeof *v);
    if (load_id_alias(n, v->id, v->alias, "CPVP-", &st->next_cpv) || find_cpv(st, v->id) ||
        prop_bool(n, "require-client-auth-eku", &v->require_client_auth_eku) ||
        prop_bool(n, "use-delta-crls", &v->use_delta_crls))
        return -1;
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, "anchor") || v->n_anchors >= KEYSTORE_MAX_TRUST_ANCHORS)
            return -1;
        char *t = (char *)xmlNodeGetContent(c);
        int ok = t && id_ok(t);
        for (size_t k = 0; ok && k < v->n_anchors; k++)
            ok = strcmp(v->anchor_ids[k], t) != 0;
        if (ok)
            snprintf(v->anchor_ids[v->n_anchors++], KEYSTORE_ID_MAX, "%s", t);
        xmlFree(t);
        if (!ok)
            return -1;
    }
    if (v->n_anchors == 0)
        return -1;
    st->n_cpv++;
    return 0;
}

/* A reference count kept for a factory object; quietly dropped when the
 * factory identity is gone. */
static int load_factory_ref(xmlNode *n, struct ks_state *st)
{
    char *kind = get_prop(n, "kind");
    char *id = get_prop(n, "id");
    unsigned long count = 0;
    int rc = (kind && id && prop_ul(n, "count", REFS_MAX, &count) == 0) ? 0 : -1;
    unsigned long *target = NULL;
    if (rc == 0 && !strcmp(kind, "key")) {
        struct key_rec *k = find_key(st, id);
        target = k && k->read_only ? &k->refs : NULL;
    } else if (rc == 0 && !strcmp(kind, "cert")) {
        struct cert_rec *c = find_cert(st, id);
        target = c && c->read_only ? &c->refs : NULL;
    } else if (rc == 0 && !strcmp(kind, "path")) {
        struct path_rec *p = find_path(st, id);
        target = p && p->read_only ? &p->refs : NULL;
    } else {
        rc = -1;
    }
    if (rc == 0 && target)
        *target = count;
    else if (rc == 0)
        log_warning(AREA, "references to the factory object %s dropped: no such factory object", id);
    xmlFree(kind);
    xmlFree(id);
    return rc;
}

/* Cross references of a loaded state: each certificate parses and carries
 * its key's public key; each path names stored certificates. */
static int is_factory_id(const char *id)
{
    return strncmp(id, "FACTORY-", 8) == 0;
}

/* The factory identity can change or vanish between starts (re-provisioned,
 * unreadable): user objects that pointed at a factory object that is no
 * longer there are dropped with a warning instead of refusing the keystore.
 * Dropping a certificate can orphan a path, so this repeats to a fixpoint. */
static void drop_dangling_factory_links(struct ks_state *st)
{
    int dropped;
    do {
        dropped = 0;
        for (size_t i = 0; i < st->n_certs; i++) {
            struct cert_rec *c = &st->certs[i];
            if (c->read_only || !is_factory_id(c->key_id) || find_key(st, c->key_id))
                continue;
            log_warning(AREA, "certificate %s dropped: factory key %s is gone", c->id, c->key_id);
            free(c->der.p);
            memmove(c, c + 1, (st->n_certs - i - 1) * sizeof *c);
            st->n_certs--;
            i--;
            dropped = 1;
        }
        for (size_t i = 0; i < st->n_paths; i++) {
            struct path_rec *p = &st->paths[i];
            int missing = 0;
            for (size_t k = 0; k < p->n; k++)
                missing |= !find_cert(st, p->cert_ids[k]) &&
                            (is_factory_id(p->cert_ids[k]) || dropped);
            if (!missing)
                continue;
            log_warning(AREA, "certification path %s dropped: a factory certificate in it is gone", p->id);
            memmove(p, p + 1, (st->n_paths - i - 1) * sizeof *p);
            st->n_paths--;
            i--;
            dropped = 1;
        }
        /* A re-provisioned factory chain may bring a FACTORY-CA-n that is
         * no CA: a policy must not trust it just because the ID matches. */
        for (size_t i = 0; i < st->n_cpv; i++) {
            cpv_rec *v = &st->cpv[i];
            int missing = 0;
            for (size_t k = 0; k < v->n_anchors; k++) {
                const struct cert_rec *c = find_cert(st, v->anchor_ids[k]);
                if (is_factory_id(v->anchor_ids[k]))
                    missing |= !c || !der_is_ca(&c->der);
                else
                    missing |= !c && dropped;
            }
            if (!missing)
                continue;
            log_warning(AREA, "certification path validation policy %s dropped: a factory trust anchor is gone "
                        "or no CA", v->id);
            memmove(v, v + 1, (st->n_cpv - i - 1) * sizeof *v);
            st->n_cpv--;
            i--;
        }
    } while (dropped);
}

static int check_links(struct ks_state *st)
{
    drop_dangling_factory_links(st);
    for (size_t i = 0; i < st->n_certs; i++) {
        struct cert_rec *c = &st->certs[i];
        if (c->read_only)
            continue;
        struct key_rec *k = find_key(st, c->key_id);
        X509 *x = NULL;
        const unsigned char *p = c->der.p;
        x = d2i_X509(NULL, &p, (long)c->der.len);
        unsigned char *pub = NULL;
        size_t pub_len = 0;
        int ok = k && x && p == c->der.p + c->der.len &&
                 x509util_public_key_der(X509_get0_pubkey(x), &pub, &pub_len) == X509UTIL_OK &&
                 blob_equal(&k->pub, pub, pub_len);
        if (ok) {
            c->not_before = asn1_time_to_time(X509_get0_notBefore(x));
            c->not_after = asn1_time_to_time(X509_get0_notAfter(x));
        }
        OPENSSL_free(pub);
        X509_free(x);
        if (!ok) {
            log_err(AREA, "certificate %s is unparsable or does not match key %s", c->id, c->key_id);
            return -1;
        }
    }
    for (size_t i = 0; i < st->n_paths; i++)
        for (size_t k = 0; k < st->paths[i].n; k++)
            if (!find_cert(st, st->paths[i].cert_ids[k])) {
                log_err(AREA, "path %s names the missing certificate %s", st->paths[i].id, st->paths[i].cert_ids[k]);
                return -1;
            }
    for (size_t i = 0; i < st->n_cpv; i++)
        for (size_t k = 0; k < st->cpv[i].n_anchors; k++) {
            const struct cert_rec *c = find_cert(st, st->cpv[i].anchor_ids[k]);
            if (!c || !der_is_ca(&c->der)) {
                log_err(AREA, "certification path validation policy %s names the %s certificate %s as trust anchor",
                        st->cpv[i].id, c ? "non-CA" : "missing", st->cpv[i].anchor_ids[k]);
                return -1;
            }
        }
    return 0;
}

static int load_counter(xmlNode *root, const char *name, unsigned long *counter)
{
    unsigned long v = 0;
    if (prop_ul(root, name, COUNTER_MAX, &v) != 0 || v == 0)
        return -1;
    if (v > *counter)
        *counter = v;
    return 0;
}

/* Adds the file's objects to st (which holds the factory objects): 0,
 * -ENOENT when absent, another negative value when unreadable or corrupt. */
static int load(const struct keystore *ks, struct ks_state *st, int *had_generating)
{
    char *data = NULL;
    size_t len = 0;
    *had_generating = 0;
    int rc = atomicfile_read(ks->path, KEYSTORE_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, ks->path, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_HUGE);
    free(data);
    if (!doc)
        return -EINVAL;
    xmlNode *root = xmlDocGetRootElement(doc);
    char *version = root ? get_prop(root, "version") : NULL;
    /* We never write a DTD; one here means the file is not ours. */
    rc = (root && !doc->intSubset && !strcmp((const char *)root->name, "keystore") && version &&
          !strcmp(version, "1")) ? 0 : -EINVAL;
    xmlFree(version);
    if (rc == 0 && (load_counter(root, "next-key", &st->next_key) || load_counter(root, "next-cert", &st->next_cert) ||
                    load_counter(root, "next-path", &st->next_path) ||
                    load_counter(root, "next-passphrase", &st->next_pass) ||
                    load_counter(root, "next-crl", &st->next_crl)))
        rc = -EINVAL;
    /* Files written before policies existed lack next-cpv-policy. */
    if (rc == 0 && xmlHasProp(root, (const xmlChar *)"next-cpv-policy") &&
        load_counter(root, "next-cpv-policy", &st->next_cpv))
        rc = -EINVAL;
    for (xmlNode *c = root ? root->children : NULL; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        const char *name = (const char *)c->name;
        int r;
        if (!strcmp(name, "key"))
            r = load_key(ks, c, st);
        else if (!strcmp(name, "cert"))
            r = load_cert(c, st);
        else if (!strcmp(name, "path"))
            r = load_path(c, st);
        else if (!strcmp(name, "passphrase"))
            r = load_pass(c, st);
        else if (!strcmp(name, "crl"))
            r = load_crl(c, st);
        else if (!strcmp(name, "cpv-policy"))
            r = load_cpv(c, st);
        else if (!strcmp(name, "factory-ref"))
            r = load_factory_ref(c, st);
        else
            r = -1;
        if (r != 0) {
            log_err(AREA, "%s: bad <%s> element (line %ld)", ks->path, name, (long)xmlGetLineNo(c));
            rc = -EINVAL;
        }
    }
    xmlFreeDoc(doc);
    if (rc == 0 && check_links(st) != 0)
        rc = -EINVAL;
    if (rc == 0)
        for (size_t i = 0; i < st->n_keys; i++)
            if (st->keys[i].status == KEYSTORE_KEY_GENERATING) {
                log_warning(AREA, "key %s was being generated when the daemon stopped; it is corrupt",
                            st->keys[i].id);
                st->keys[i].status = KEYSTORE_KEY_CORRUPT;
                *had_generating = 1;
            }
    return rc;
}

/* --- factory identity ---------------------------------------------------- */

static int read_factory_file(const char *dir, const char *name, char **data, size_t *len)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -ENAMETOOLONG;
    return atomicfile_read(path, FACTORY_FILE_MAX, data, len);
}

static STACK_OF(X509) *parse_pem_chain(const char *data, size_t len)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *bio = len <= INT_MAX ? BIO_new_mem_buf(data, (int)len) : NULL;
    if (!chain || !bio) {
        BIO_free(bio);
        sk_X509_free(chain);
        return NULL;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            break;
        }
    BIO_free(bio);
    ERR_clear_error();
    /* No certificate at all, or more than a path holds, is refused. */
    if (sk_X509_num(chain) == 0 || sk_X509_num(chain) > KEYSTORE_MAX_PATH_LEN - 1) {
        sk_X509_pop_free(chain, X509_free);
        return NULL;
    }
    return chain;
}

/* Fills cert rec c (and a fresh public-key-only key for it unless key_id is
 * given) from x; read-only. */
static int add_factory_cert(struct ks_state *st, X509 *x, const char *cert_id, const char *key_id,
                            const char *new_key_id)
{
    unsigned char *der = NULL, *pub = NULL;
    size_t der_len = 0, pub_len = 0;
    int rc = map_x509(x509util_cert_der(x, &der, &der_len));
    if (rc == KEYSTORE_OK)
        rc = map_x509(x509util_public_key_der(X509_get0_pubkey(x), &pub, &pub_len));
    struct cert_rec *c = &st->certs[st->n_certs];
    memset(c, 0, sizeof *c);
    if (rc == KEYSTORE_OK && !key_id) {
        struct key_rec *k = &st->keys[st->n_keys];
        memset(k, 0, sizeof *k);
        rc = key_type_name(X509_get0_pubkey(x), k->type);
        if (rc == KEYSTORE_OK)
            rc = blob_set(&k->pub, pub, pub_len);
        if (rc == KEYSTORE_OK) {
            snprintf(k->id, sizeof k->id, "%s", new_key_id);
            k->status = KEYSTORE_KEY_OK;
            k->externally_generated = 1;
            k->read_only = 1;
            st->n_keys++;
            key_id = new_key_id;
        }
    }
    if (rc == KEYSTORE_OK)
        rc = blob_set(&c->der, der, der_len);
    if (rc == KEYSTORE_OK) {
        snprintf(c->id, sizeof c->id, "%s", cert_id);
        snprintf(c->key_id, sizeof c->key_id, "%s", key_id);
        c->read_only = 1;
        c->not_before = asn1_time_to_time(X509_get0_notBefore(x));
        c->not_after = asn1_time_to_time(X509_get0_notAfter(x));
        st->n_certs++;
    }
    OPENSSL_free(der);
    OPENSSL_free(pub);
    return rc;
}

/* Loads the factory identity into st: KEYSTORE_OK also when there is none. */
static int load_factory(const struct keystore *ks, const char *dir, struct ks_state *st)
{
    if (!dir)
        return KEYSTORE_OK;
    char *key_pem = NULL, *crt_pem = NULL, *chain_pem = NULL;
    size_t key_len = 0, crt_len = 0, chain_len = 0;
    int krc = read_factory_file(dir, "identity.key", &key_pem, &key_len);
    int crc = read_factory_file(dir, "identity.crt", &crt_pem, &crt_len);
    int chrc = read_factory_file(dir, "chain.pem", &chain_pem, &chain_len);
    int rc = KEYSTORE_OK;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    unsigned char *kpub = NULL, *cpub = NULL;
    size_t kpub_len = 0, cpub_len = 0;
    if (krc == -ENOENT && crc == -ENOENT) {
        log_info(AREA, "no factory identity in %s", dir);
        goto out;
    }
    if (krc == -ENOENT || crc == -ENOENT) {
        log_warning(AREA, "factory identity in %s incomplete (identity.key or identity.crt missing); not used", dir);
        goto out;
    }
    rc = KEYSTORE_E_STORE;
    if (krc != 0 || crc != 0 || (chrc != 0 && chrc != -ENOENT)) {
        log_err(AREA, "factory identity in %s unreadable", dir);
        goto out;
    }
    char path[PATH_MAX];
    struct stat sb;
    if (snprintf(path, sizeof path, "%s/identity.key", dir) < (int)sizeof path && stat(path, &sb) == 0 &&
        (sb.st_mode & 077))
        log_warning(AREA, "%s is readable by group or others", path);
    if (x509util_parse_pkcs8((const unsigned char *)key_pem, key_len, NULL, &key) != X509UTIL_OK ||
        x509util_parse_cert((const unsigned char *)crt_pem, crt_len, &cert) != X509UTIL_OK) {
        log_err(AREA, "factory identity in %s unparsable", dir);
        goto out;
    }
    if (chrc == 0 && !(chain = parse_pem_chain(chain_pem, chain_len))) {
        log_err(AREA, "factory chain.pem in %s unparsable", dir);
        goto out;
    }
    if (x509util_public_key_der(key, &kpub, &kpub_len) != X509UTIL_OK ||
        x509util_public_key_der(X509_get0_pubkey(cert), &cpub, &cpub_len) != X509UTIL_OK ||
        kpub_len != cpub_len || memcmp(kpub, cpub, kpub_len) != 0) {
        log_err(AREA, "factory key and certificate in %s do not match", dir);
        goto out;
    }
    X509 *list[KEYSTORE_MAX_PATH_LEN];
    size_t n = 0, bad = 0;
    list[n++] = cert;
    for (int i = 0; chain && i < sk_X509_num(chain); i++)
        list[n++] = sk_X509_value(chain, i);
    if (n > 1 && x509util_check_path_order(list, n, &bad) != X509UTIL_OK) {
        log_err(AREA, "factory chain in %s not in issuer order (certificate %zu)", dir, bad);
        goto out;
    }
    struct key_rec *k = &st->keys[st->n_keys];
    memset(k, 0, sizeof *k);
    if (key_type_name(key, k->type) != KEYSTORE_OK || blob_set(&k->pub, kpub, kpub_len) != KEYSTORE_OK) {
        free(k->pub.p);
        log_err(AREA, "factory key in %s unsupported", dir);
        goto out;
    }
    snprintf(k->id, sizeof k->id, FACTORY_KEY_ID);
    k->status = KEYSTORE_KEY_OK;
    k->has_private_key = 1;
    k->externally_generated = 1;
    k->read_only = 1;
    st->n_keys++;
    /* Sealed in memory like every other key, so one code path unseals. */
    if (seal_private_key(ks, key, k->id, &k->sealed) != KEYSTORE_OK)
        goto out;
    struct path_rec *p = &st->paths[st->n_paths];
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        char cert_id[KEYSTORE_ID_MAX], key_id[KEYSTORE_ID_MAX];
        if (i == 0)
            snprintf(cert_id, sizeof cert_id, FACTORY_CERT_ID);
        else
            snprintf(cert_id, sizeof cert_id, "FACTORY-CA-%u", (unsigned)i);
        snprintf(key_id, sizeof key_id, "FACTORY-CA-KEY-%u", (unsigned)i);
        if (add_factory_cert(st, list[i], cert_id, i == 0 ? FACTORY_KEY_ID : NULL, key_id) != KEYSTORE_OK) {
            log_err(AREA, "factory certificate %zu in %s unusable", i, dir);
            goto out;
        }
        snprintf(p->cert_ids[p->n++], KEYSTORE_ID_MAX, "%s", cert_id);
    }
    snprintf(p->id, sizeof p->id, FACTORY_PATH_ID);
    p->read_only = 1;
    st->n_paths++;
    log_info(AREA, "factory identity loaded from %s (%zu certificate(s))", dir, n);
    rc = KEYSTORE_OK;
out:
    if (key_pem)
        secretbox_free(key_pem, key_len);
    free(crt_pem);
    free(chain_pem);
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    OPENSSL_free(kpub);
    OPENSSL_free(cpub);
    return rc;
}

/* --- lifecycle ----------------------------------------------------------- */

int keystore_open(struct keystore **out, const char *state_dir, const char *factory_dir, struct secretbox *box)
{
    if (!out)
        return KEYSTORE_E_INVALID;
    *out = NULL;
    if (!state_dir || !box)
        return KEYSTORE_E_INVALID;
    struct keystore *ks = calloc(1, sizeof *ks);
    if (!ks)
        return KEYSTORE_E_NOMEM;
    if (snprintf(ks->path, sizeof ks->path, "%s/keystore.xml", state_dir) >= (int)sizeof ks->path) {
        free(ks);
        return KEYSTORE_E_INVALID;
    }
    pthread_mutex_init(&ks->write_lock, NULL);
    pthread_mutex_init(&ks->lock, NULL);
    ks->box = box;
    xmlInitParser();
    struct ks_state *st = &ks->state;
    st->next_key = st->next_cert = st->next_path = st->next_pass = st->next_crl = st->next_cpv = 1;
    atomic_init(&ks->generation, 1);
    int rc = load_factory(ks, factory_dir, st);
    int had_generating = 0;
    if (rc == KEYSTORE_OK) {
        int lrc = load(ks, st, &had_generating);
        if (lrc == -ENOENT) {
            rc = store(ks, st);
        } else if (lrc != 0) {
            log_err(AREA, "%s is unreadable or corrupt; refusing to start over it", ks->path);
            rc = KEYSTORE_E_STORE;
        } else if (had_generating && store(ks, st) != KEYSTORE_OK) {
            /* The file still says generating, which reads as corrupt again. */
            log_warning(AREA, "could not record the corrupt keys in %s", ks->path);
        }
    }
    if (rc != KEYSTORE_OK) {
        keystore_close(ks);
        return rc;
    }
    *out = ks;
    return KEYSTORE_OK;
}

void keystore_close(struct keystore *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < KEYSTORE_MAX_KEYGEN; i++) {
        pthread_mutex_lock(&ks->write_lock);
        int used = ks->slots[i].used;
        pthread_t t = ks->slots[i].thread;
        pthread_mutex_unlock(&ks->write_lock);
        if (used)
            pthread_join(t, NULL);
    }
    state_clear(&ks->state);
    pthread_mutex_destroy(&ks->lock);
    pthread_mutex_destroy(&ks->write_lock);
    free(ks);
}

/* --- key generation ------------------------------------------------------ */

/* Records the outcome of a generation (write_lock held). A key deleted meanwhile
 * is simply gone; a save failure leaves it corrupt. */
static void finish_generation(struct keystore *ks, const char *id, int ok, const char *type,
                              const unsigned char *pub, size_t pub_len, char **sealed)
{
    struct key_rec *cur = find_key(&ks->state, id);
    if (!cur || cur->status != KEYSTORE_KEY_GENERATING) {
        log_info(AREA, "key %s was deleted while being generated; result discarded", id);
        return;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        struct ks_state *next = state_dup(&ks->state);
        struct key_rec *k = next ? find_key(next, id) : NULL;
        if (!k) {
            state_free(next);
            break;
        }
        if (ok && attempt == 0) {
            k->status = KEYSTORE_KEY_OK;
            snprintf(k->type, sizeof k->type, "%s", type);
            if (blob_set(&k->pub, pub, pub_len) != KEYSTORE_OK) {
                state_free(next);
                continue;
            }
            k->sealed = *sealed;
            *sealed = NULL;
            k->has_private_key = 1;
        } else {
            k->status = KEYSTORE_KEY_CORRUPT;
        }
        int was_ok = k->status == KEYSTORE_KEY_OK;
        /* commit consumes next, and with it the sealed key handed over. */
        int rc = commit(ks, next);
        if (rc == KEYSTORE_OK) {
            if (was_ok)
                log_notice(AREA, "key %s generated (%s)", id, type);
            else
                log_err(AREA, "generating key %s failed; it is corrupt", id);
            if (ks->status_fn)
                ks->status_fn(ks->status_arg, id, "generating", was_ok ? "ok" : "corrupt");
            return;
        }
    }
    /* Could not even record the failure: memory says corrupt, and the file's
     * "generating" reads as corrupt on the next start. */
    pthread_mutex_lock(&ks->lock);
    cur = find_key(&ks->state, id);
    if (cur) {
        cur->status = KEYSTORE_KEY_CORRUPT;
        atomic_fetch_add(&ks->generation, 1);
    }
    pthread_mutex_unlock(&ks->lock);
    log_err(AREA, "key %s: could not save the result of its generation; it is corrupt", id);
}

static void *keygen_worker(void *arg)
{
    /* SCHED_IDLE for this thread only: a long RSA-4096 prime search runs on
     * otherwise idle CPU and never delays SOAP requests or video; nice 19
     * where SCHED_IDLE is refused. */
    struct sched_param idle = { .sched_priority = 0 };
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle) != 0 &&
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), KEYGEN_NICE) != 0)
        log_debug("keystore", "key generation runs at normal priority");
    struct keygen_job *job = arg;
    struct keystore *ks = job->ks;
    EVP_PKEY *key = NULL;
    unsigned char *pub = NULL;
    size_t pub_len = 0;
    char *sealed = NULL;
    char type[16] = "";
    int rc = job->bits ? x509util_generate_rsa(job->bits, &key) : x509util_generate_ec(job->curve, &key);
    int ok = rc == X509UTIL_OK && key_type_name(key, type) == KEYSTORE_OK &&
             x509util_public_key_der(key, &pub, &pub_len) == X509UTIL_OK &&
             seal_private_key(ks, key, job->id, &sealed) == KEYSTORE_OK;
    EVP_PKEY_free(key);
    pthread_mutex_lock(&ks->write_lock);
    finish_generation(ks, job->id, ok, type, pub, pub_len, &sealed);
    ks->slots[job->slot].done = 1;
    pthread_mutex_unlock(&ks->write_lock);
    wipe_string(sealed);
    OPENSSL_free(pub);
    free(job);
    return NULL;
}

/* A free worker slot (joining finished workers), or -1. write_lock held. */
static int free_slot(struct keystore *ks)
{
    int found = -1;
    for (int i = 0; i < KEYSTORE_MAX_KEYGEN; i++) {
        struct keygen_slot *s = &ks->slots[i];
        if (s->used && s->done) {
            pthread_join(s->thread, NULL);
            s->used = s->done = 0;
        }
        if (!s->used && found < 0)
            found = i;
    }
    return found;
}

static int start_generation(struct keystore *ks, int bits, const char *curve, const char *alias,
                            char id[KEYSTORE_ID_MAX])
{
    if (!ks || !id)
        return KEYSTORE_E_INVALID;
    int rc = check_alias(alias);
    if (rc != KEYSTORE_OK)
        return rc;
    struct keygen_job *job = calloc(1, sizeof *job);
    if (!job)
        return KEYSTORE_E_NOMEM;
    job->ks = ks;
    job->bits = bits;
    if (curve)
        snprintf(job->curve, sizeof job->curve, "%s", curve);
    pthread_mutex_lock(&ks->write_lock);
    struct ks_state *next = NULL;
    int slot = -1;
    if (writable_keys(&ks->state) >= KEYSTORE_MAX_KEYS)
        rc = KEYSTORE_E_FULL;
    else if ((slot = free_slot(ks)) < 0)
        rc = KEYSTORE_E_BUSY;
    else if (!(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        struct key_rec *k = &next->keys[next->n_keys++];
        memset(k, 0, sizeof *k);
        snprintf(k->id, sizeof k->id, "KEY-%lu", next->next_key++);
        copy_alias(k->alias, alias);
        k->status = KEYSTORE_KEY_GENERATING;
        snprintf(job->id, sizeof job->id, "%s", k->id);
        rc = commit(ks, next);
    }
    if (rc == KEYSTORE_OK) {
        job->slot = (size_t)slot;
        ks->slots[slot].done = 0;
        if (pthread_create(&ks->slots[slot].thread, NULL, keygen_worker, job) != 0) {
            char *none = NULL;
            log_err(AREA, "cannot start a key generation thread");
            finish_generation(ks, job->id, 0, "", NULL, 0, &none);
        } else {
            ks->slots[slot].used = 1;
            snprintf(id, KEYSTORE_ID_MAX, "%s", job->id);
            log_info(AREA, "generating key %s", job->id);
            if (ks->status_fn)
                ks->status_fn(ks->status_arg, job->id, NULL, "generating");
            job = NULL;
        }
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (job && rc == KEYSTORE_OK)
        snprintf(id, KEYSTORE_ID_MAX, "%s", job->id);   /* created, but corrupt */
    free(job);
    return rc;
}

int keystore_create_rsa_key(struct keystore *ks, int bits, const char *alias, char id[KEYSTORE_ID_MAX], int *estimate_s)
{
    int estimate;
    switch (bits) {
    case 2048: estimate = 2; break;
    case 3072: estimate = 8; break;
    case 4096: estimate = 30; break;
    default: return ks && id ? KEYSTORE_E_KEY_PARAMS : KEYSTORE_E_INVALID;
    }
    int rc = start_generation(ks, bits, NULL, alias, id);
    if (rc == KEYSTORE_OK && estimate_s)
        *estimate_s = estimate;
    return rc;
}

int keystore_create_ec_key(struct keystore *ks, const char *curve, const char *alias, char id[KEYSTORE_ID_MAX],
                           int *estimate_s)
{
    if (!ks || !id)
        return KEYSTORE_E_INVALID;
    const char *canonical = canonical_curve(curve);
    if (!canonical)
        return KEYSTORE_E_KEY_PARAMS;
    int rc = start_generation(ks, 0, canonical, alias, id);
    if (rc == KEYSTORE_OK && estimate_s)
        *estimate_s = 1;
    return rc;
}

/* --- key uploads --------------------------------------------------------- */

/* A new externally generated key in next: private key sealed when key given. */
static int add_uploaded_key(const struct keystore *ks, struct ks_state *next, EVP_PKEY *key, const char *type,
                            const unsigned char *pub, size_t pub_len, const char *alias, struct key_rec **out)
{
    if (writable_keys(next) >= KEYSTORE_MAX_KEYS)
        return KEYSTORE_E_FULL;
    struct key_rec *k = &next->keys[next->n_keys];
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "KEY-%lu", next->next_key);
    int rc = blob_set(&k->pub, pub, pub_len);
    if (rc == KEYSTORE_OK && key) {
        rc = seal_private_key(ks, key, k->id, &k->sealed);
        k->has_private_key = rc == KEYSTORE_OK;
    }
    if (rc != KEYSTORE_OK) {
        free(k->pub.p);
        return rc;
    }
    copy_alias(k->alias, alias);
    snprintf(k->type, sizeof k->type, "%s", type);
    k->status = KEYSTORE_KEY_OK;
    k->externally_generated = 1;
    next->next_key++;
    next->n_keys++;
    *out = k;
    return KEYSTORE_OK;
}

/* Adds the private key to the public-key-only key k (its public key equals key's). */
static int add_private_to(const struct keystore *ks, struct key_rec *k, EVP_PKEY *key)
{
    char *sealed = NULL;
    int rc = seal_private_key(ks, key, k->id, &sealed);
    if (rc == KEYSTORE_OK) {
        k->sealed = sealed;
        k->has_private_key = 1;
    }
    return rc;
}

/* The public key DER and type of key, refusing unsupported ones. */
static int describe_key(const EVP_PKEY *key, char type[16], unsigned char **pub, size_t *pub_len)
{
    int rc = key_type_name(key, type);
    if (rc == KEYSTORE_OK && x509util_key_supported(key) != X509UTIL_OK)
        rc = KEYSTORE_E_KEY_PARAMS;
    if (rc == KEYSTORE_OK)
        rc = map_x509(x509util_public_key_der(key, pub, pub_len));
    return rc;
}

int keystore_upload_pkcs8(struct keystore *ks, const unsigned char *buf, size_t len, const char *alias,
                          const char *passphrase_id, const char *passphrase, char id[KEYSTORE_ID_MAX])
{
    if (!ks || !buf || !id)
        return KEYSTORE_E_INVALID;
    int rc = check_alias(alias);
    if (rc != KEYSTORE_OK)
        return rc;
    const char *pw = NULL;
    char *owned = NULL;
    rc = resolve_passphrase(ks, passphrase_id, passphrase, &pw, &owned);
    EVP_PKEY *key = NULL;
    if (rc == KEYSTORE_OK)
        rc = map_x509(x509util_parse_pkcs8(buf, len, pw, &key));
    wipe_string(owned);
    unsigned char *pub = NULL;
    size_t pub_len = 0;
    char type[16] = "";
    if (rc == KEYSTORE_OK)
        rc = describe_key(key, type, &pub, &pub_len);
    if (rc != KEYSTORE_OK) {
        EVP_PKEY_free(key);
        OPENSSL_free(pub);
        return rc;
    }
    pthread_mutex_lock(&ks->write_lock);
    struct ks_state *next = state_dup(&ks->state);
    char new_id[KEYSTORE_ID_MAX] = "";
    if (!next)
        rc = KEYSTORE_E_NOMEM;
    struct key_rec *k = NULL;
    /* "A private key may be added to an existing key pair if the private key
     * matches the public key": a public-key-only key (from a certificate)
     * receives it; a key pair that already has one is not shared, so the
     * upload becomes a new key. */
    for (size_t i = 0; rc == KEYSTORE_OK && !k && i < next->n_keys; i++) {
        struct key_rec *c = &next->keys[i];
        if (!c->read_only && !c->has_private_key && c->status == KEYSTORE_KEY_OK && blob_equal(&c->pub, pub, pub_len)) {
            rc = add_private_to(ks, c, key);
            k = c;
        }
    }
    if (rc == KEYSTORE_OK && !k)
        rc = add_uploaded_key(ks, next, key, type, pub, pub_len, alias, &k);
    if (rc == KEYSTORE_OK) {
        snprintf(new_id, sizeof new_id, "%s", k->id);
        rc = commit(ks, next);
    } else {
        state_free(next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    EVP_PKEY_free(key);
    OPENSSL_free(pub);
    if (rc == KEYSTORE_OK) {
        snprintf(id, KEYSTORE_ID_MAX, "%s", new_id);
        log_notice(AREA, "key %s uploaded (%s)", new_id, type);
    }
    return rc;
}

/* A certificate prepared outside the lock. */
struct prepared_cert {
    unsigned char *der, *pub;
    size_t der_len, pub_len;
    char type[16];
    time_t not_before, not_after;
};

static int prepare_cert(X509 *x, struct prepared_cert *pc)
{
    memset(pc, 0, sizeof *pc);
    int rc = map_x509(x509util_cert_der(x, &pc->der, &pc->der_len));
    if (rc == KEYSTORE_OK)
        rc = describe_key(X509_get0_pubkey(x), pc->type, &pc->pub, &pc->pub_len);
    pc->not_before = asn1_time_to_time(X509_get0_notBefore(x));
    pc->not_after = asn1_time_to_time(X509_get0_notAfter(x));
    return rc;
}

static void release_cert(struct prepared_cert *pc)
{
    OPENSSL_free(pc->der);
    OPENSSL_free(pc->pub);
    memset(pc, 0, sizeof *pc);
}

static int add_cert_rec(struct ks_state *next, const struct prepared_cert *pc, const char *key_id, const char *alias,
                        struct cert_rec **out)
{
    if (writable_certs(next) >= KEYSTORE_MAX_CERTS)
        return KEYSTORE_E_FULL;
    struct cert_rec *c = &next->certs[next->n_certs];
    memset(c, 0, sizeof *c);
    int rc = blob_set(&c->der, pc->der, pc->der_len);
    if (rc != KEYSTORE_OK)
        return rc;
    snprintf(c->id, sizeof c->id, "CERT-%lu", next->next_cert++);
    copy_alias(c->alias, alias);
    snprintf(c->key_id, sizeof c->key_id, "%s", key_id);
    c->not_before = pc->not_before;
    c->not_after = pc->not_after;
    next->n_certs++;
    *out = c;
    return KEYSTORE_OK;
}

/* Orders the chain by issuer after leaf: list[0] = leaf, then each the
 * issuer of the one before. */
static int order_chain(X509 *leaf, STACK_OF(X509) *chain, X509 *list[KEYSTORE_MAX_PATH_LEN], size_t *n)
{
    int total = chain ? sk_X509_num(chain) : 0;
    if (total + 1 > KEYSTORE_MAX_PATH_LEN)
        return KEYSTORE_E_FULL;
    int used[KEYSTORE_MAX_PATH_LEN] = { 0 };
    list[0] = leaf;
    *n = 1;
    for (int step = 0; step < total; step++) {
        int found = -1;
        for (int i = 0; i < total && found < 0; i++) {
            if (used[i])
                continue;
            X509 *pair[2] = { list[*n - 1], sk_X509_value(chain, i) };
            size_t bad = 0;
            if (x509util_check_path_order(pair, 2, &bad) == X509UTIL_OK)
                found = i;
        }
        if (found < 0)
            return KEYSTORE_E_PATH_ORDER;
        used[found] = 1;
        list[(*n)++] = sk_X509_value(chain, found);
    }
    size_t bad = 0;
    return *n > 1 ? map_x509(x509util_check_path_order(list, *n, &bad)) : KEYSTORE_OK;
}

int keystore_upload_pkcs12(struct keystore *ks, const unsigned char *buf, size_t len, const char *path_alias,
                           const char *key_alias, const char *passphrase_id, const char *passphrase,
                           int ignore_additional_certs, char path_id[KEYSTORE_ID_MAX], char key_id[KEYSTORE_ID_MAX])
{
    if (!ks || !buf || !path_id || !key_id)
        return KEYSTORE_E_INVALID;
    int rc = check_alias(path_alias);
    if (rc == KEYSTORE_OK)
        rc = check_alias(key_alias);
    if (rc != KEYSTORE_OK)
        return rc;
    const char *pw = NULL;
    char *owned = NULL;
    rc = resolve_passphrase(ks, passphrase_id, passphrase, &pw, &owned);
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    if (rc == KEYSTORE_OK)
        rc = map_x509(x509util_parse_pkcs12(buf, len, pw, &key, &leaf, &chain));
    wipe_string(owned);
    if (rc == KEYSTORE_OK && (!key || !leaf))
        rc = KEYSTORE_E_BAD_INPUT;
    char key_type[16] = "";
    unsigned char *kpub = NULL;
    size_t kpub_len = 0;
    if (rc == KEYSTORE_OK)
        rc = describe_key(key, key_type, &kpub, &kpub_len);
    X509 *list[KEYSTORE_MAX_PATH_LEN];
    size_t n = 0;
    if (rc == KEYSTORE_OK)
        rc = order_chain(leaf, ignore_additional_certs ? NULL : chain, list, &n);
    struct prepared_cert pc[KEYSTORE_MAX_PATH_LEN];
    memset(pc, 0, sizeof pc);
    for (size_t i = 0; rc == KEYSTORE_OK && i < n; i++)
        rc = prepare_cert(list[i], &pc[i]);
    if (rc == KEYSTORE_OK && (pc[0].pub_len != kpub_len || memcmp(pc[0].pub, kpub, kpub_len) != 0))
        rc = KEYSTORE_E_KEY_MISMATCH;

    char new_path[KEYSTORE_ID_MAX] = "", new_key[KEYSTORE_ID_MAX] = "";
    if (rc == KEYSTORE_OK) {
        pthread_mutex_lock(&ks->write_lock);
        struct ks_state *next = state_dup(&ks->state);
        if (!next)
            rc = KEYSTORE_E_NOMEM;
        if (rc == KEYSTORE_OK && writable_paths(next) >= KEYSTORE_MAX_PATHS)
            rc = KEYSTORE_E_FULL;
        struct path_rec path;
        memset(&path, 0, sizeof path);
        for (size_t i = 0; rc == KEYSTORE_OK && i < n; i++) {
            /* A certificate already stored (a shared CA, the same leaf) is
             * reused rather than stored twice. */
            struct cert_rec *c = find_cert_by_der(next, pc[i].der, pc[i].der_len);
            struct key_rec *k = c ? find_key(next, c->key_id) : find_key_by_pub(next, pc[i].pub, pc[i].pub_len);
            if (k && k->status != KEYSTORE_KEY_OK)
                rc = KEYSTORE_E_KEY_STATUS;
            else if (k && i == 0 && !k->has_private_key && !k->read_only)
                rc = add_private_to(ks, k, key);
            else if (!k)
                rc = add_uploaded_key(ks, next, i == 0 ? key : NULL, pc[i].type, pc[i].pub, pc[i].pub_len,
                                      i == 0 ? key_alias : NULL, &k);
            if (rc == KEYSTORE_OK && !c)
                rc = add_cert_rec(next, &pc[i], k->id, NULL, &c);
            if (rc != KEYSTORE_OK)
                break;
            if (i == 0)
                snprintf(new_key, sizeof new_key, "%s", k->id);
            snprintf(path.cert_ids[path.n++], KEYSTORE_ID_MAX, "%s", c->id);
        }
        if (rc == KEYSTORE_OK) {
            snprintf(path.id, sizeof path.id, "PATH-%lu", next->next_path++);
            copy_alias(path.alias, path_alias);
            next->paths[next->n_paths++] = path;
            snprintf(new_path, sizeof new_path, "%s", path.id);
            rc = commit(ks, next);
        } else {
            state_free(next);
        }
        pthread_mutex_unlock(&ks->write_lock);
    }
    for (size_t i = 0; i < KEYSTORE_MAX_PATH_LEN; i++)
        release_cert(&pc[i]);
    OPENSSL_free(kpub);
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    if (rc == KEYSTORE_OK) {
        snprintf(path_id, KEYSTORE_ID_MAX, "%s", new_path);
        snprintf(key_id, KEYSTORE_ID_MAX, "%s", new_key);
        log_notice(AREA, "PKCS#12 uploaded: key %s, path %s of %zu certificate(s)", new_key, new_path, n);
    }
    return rc;
}

/* --- key queries and deletion -------------------------------------------- */

static void key_info_of(const struct key_rec *k, struct keystore_key_info *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, k->id, sizeof out->id);
    memcpy(out->alias, k->alias, sizeof out->alias);
    out->status = k->status;
    out->has_private_key = k->has_private_key;
    out->externally_generated = k->externally_generated;
    out->read_only = k->read_only;
    memcpy(out->type, k->type, sizeof out->type);
}

int keystore_key_info(struct keystore *ks, const char *id, struct keystore_key_info *out)
{
    if (!ks || !out)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    const struct key_rec *k = find_key(&ks->state, id);
    if (k)
        key_info_of(k, out);
    pthread_mutex_unlock(&ks->lock);
    return k ? KEYSTORE_OK : KEYSTORE_E_NOT_FOUND;
}

int keystore_list_keys(struct keystore *ks, struct keystore_key_info **out, size_t *n)
{
    if (!ks || !out || !n)
        return KEYSTORE_E_INVALID;
    pthread_mutex_lock(&ks->lock);
    size_t count = ks->state.n_keys;
    struct keystore_key_info *list = calloc(count ? count : 1, sizeof *list);
    for (size_t i = 0; list && i < count; i++)
        key_info_of(&ks->state.keys[i], &list[i]);
    pthread_mutex_unlock(&ks->lock);
    if (!list)
        return KEYSTORE_E_NOMEM;
    *out = list;
    *n = count;
    return KEYSTORE_OK;
}

int keystore_delete_key(struct keystore *ks, const char *id)
{
    if (!ks)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->write_lock);
    struct key_rec *k = find_key(&ks->state, id);
    int rc = KEYSTORE_OK;
    if (!k)
        rc = KEYSTORE_E_NOT_FOUND;
    else if (k->read_only)
        rc = KEYSTORE_E_READ_ONLY;
    else if (k->refs > 0 || key_used_by_cert(&ks->state, id) || in_use_elsewhere(ks, "key", id))
        rc = KEYSTORE_E_REFERENCED;
    struct ks_state *next = NULL;
    if (rc == KEYSTORE_OK && !(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        /* A key still generating is dropped here; its worker discards the result. */
        size_t i = (size_t)(k - ks->state.keys);
        free(next->keys[i].pub.p);
        wipe_string(next->keys[i].sealed);
        memmove(&next->keys[i], &next->keys[i + 1], (next->n_keys - i - 1) * sizeof next->keys[0]);
        next->n_keys--;
        rc = commit(ks, next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK)
        log_notice(AREA, "key %s deleted", id);
    return rc;
}

int keystore_get_private_key(struct keystore *ks, const char *id, EVP_PKEY **out)
{
    if (!ks || !out)
        return KEYSTORE_E_INVALID;
    *out = NULL;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    const struct key_rec *k = find_key(&ks->state, id);
    int rc = KEYSTORE_OK;
    char *sealed = NULL;
    if (!k)
        rc = KEYSTORE_E_NOT_FOUND;
    else if (k->status != KEYSTORE_KEY_OK)
        rc = KEYSTORE_E_KEY_STATUS;
    else if (!k->has_private_key || !k->sealed)
        rc = KEYSTORE_E_NO_PRIVATE_KEY;
    else if (!(sealed = strdup(k->sealed)))
        rc = KEYSTORE_E_NOMEM;
    pthread_mutex_unlock(&ks->lock);
    if (rc == KEYSTORE_OK) {
        rc = unseal_private_key(ks, sealed, id, out);
        if (rc != KEYSTORE_OK)
            log_err(AREA, "the private key of %s does not open", id);
    }
    wipe_string(sealed);
    return rc;
}

/* --- certificates -------------------------------------------------------- */

int keystore_upload_cert(struct keystore *ks, const unsigned char *buf, size_t len, const char *alias,
                         const char *key_alias, int private_key_required, char cert_id[KEYSTORE_ID_MAX],
                         char key_id[KEYSTORE_ID_MAX])
{
    if (!ks || !buf || !cert_id || !key_id)
        return KEYSTORE_E_INVALID;
    int rc = check_alias(alias);
    if (rc == KEYSTORE_OK)
        rc = check_alias(key_alias);
    if (rc != KEYSTORE_OK)
        return rc;
    X509 *x = NULL;
    rc = map_x509(x509util_parse_cert(buf, len, &x));
    struct prepared_cert pc;
    memset(&pc, 0, sizeof pc);
    if (rc == KEYSTORE_OK)
        rc = prepare_cert(x, &pc);
    X509_free(x);
    char new_cert[KEYSTORE_ID_MAX] = "", new_key[KEYSTORE_ID_MAX] = "";
    if (rc == KEYSTORE_OK) {
        pthread_mutex_lock(&ks->write_lock);
        struct ks_state *next = state_dup(&ks->state);
        struct key_rec *k = NULL;
        struct cert_rec *c = NULL;
        if (!next)
            rc = KEYSTORE_E_NOMEM;
        else if (find_cert_by_der(next, pc.der, pc.der_len))
            rc = KEYSTORE_E_DUPLICATE;
        else if (writable_certs(next) >= KEYSTORE_MAX_CERTS)
            rc = KEYSTORE_E_FULL;
        if (rc == KEYSTORE_OK) {
            k = find_key_by_pub(next, pc.pub, pc.pub_len);
            if (private_key_required && (!k || !k->has_private_key))
                rc = KEYSTORE_E_NO_MATCHING_KEY;
            else if (k && k->status != KEYSTORE_KEY_OK)
                rc = KEYSTORE_E_KEY_STATUS;
            else if (!k)
                rc = add_uploaded_key(ks, next, NULL, pc.type, pc.pub, pc.pub_len, key_alias, &k);
        }
        if (rc == KEYSTORE_OK)
            rc = add_cert_rec(next, &pc, k->id, alias, &c);
        if (rc == KEYSTORE_OK) {
            snprintf(new_cert, sizeof new_cert, "%s", c->id);
            snprintf(new_key, sizeof new_key, "%s", k->id);
            rc = commit(ks, next);
        } else {
            state_free(next);
        }
        pthread_mutex_unlock(&ks->write_lock);
    }
    release_cert(&pc);
    if (rc == KEYSTORE_OK) {
        snprintf(cert_id, KEYSTORE_ID_MAX, "%s", new_cert);
        snprintf(key_id, KEYSTORE_ID_MAX, "%s", new_key);
        log_notice(AREA, "certificate %s uploaded for key %s", new_cert, new_key);
    }
    return rc;
}

int keystore_add_cert(struct keystore *ks, X509 *cert, const char *key_id, const char *alias,
                      char cert_id[KEYSTORE_ID_MAX])
{
    if (!ks || !cert || !cert_id)
        return KEYSTORE_E_INVALID;
    if (!id_ok(key_id))
        return KEYSTORE_E_NOT_FOUND;
    int rc = check_alias(alias);
    if (rc != KEYSTORE_OK)
        return rc;
    struct prepared_cert pc;
    rc = prepare_cert(cert, &pc);
    char new_cert[KEYSTORE_ID_MAX] = "";
    if (rc == KEYSTORE_OK) {
        pthread_mutex_lock(&ks->write_lock);
        struct ks_state *next = state_dup(&ks->state);
        struct key_rec *k = next ? find_key(next, key_id) : NULL;
        struct cert_rec *c = NULL;
        if (!next)
            rc = KEYSTORE_E_NOMEM;
        else if (!k)
            rc = KEYSTORE_E_NOT_FOUND;
        else if (k->status != KEYSTORE_KEY_OK)
            rc = KEYSTORE_E_KEY_STATUS;
        else if (!blob_equal(&k->pub, pc.pub, pc.pub_len))
            rc = KEYSTORE_E_INVALID;
        else if (find_cert_by_der(next, pc.der, pc.der_len))
            rc = KEYSTORE_E_DUPLICATE;
        if (rc == KEYSTORE_OK)
            rc = add_cert_rec(next, &pc, k->id, alias, &c);
        if (rc == KEYSTORE_OK) {
            snprintf(new_cert, sizeof new_cert, "%s", c->id);
            rc = commit(ks, next);
        } else {
            state_free(next);
        }
        pthread_mutex_unlock(&ks->write_lock);
    }
    release_cert(&pc);
    if (rc == KEYSTORE_OK) {
        snprintf(cert_id, KEYSTORE_ID_MAX, "%s", new_cert);
        log_notice(AREA, "certificate %s added for key %s", new_cert, key_id);
    }
    return rc;
}

static void cert_info_of(const struct cert_rec *c, struct keystore_cert_info *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, c->id, sizeof out->id);
    memcpy(out->alias, c->alias, sizeof out->alias);
    memcpy(out->key_id, c->key_id, sizeof out->key_id);
    out->read_only = c->read_only;
    out->not_before = c->not_before;
    out->not_after = c->not_after;
}

int keystore_cert_info(struct keystore *ks, const char *id, struct keystore_cert_info *out)
{
    if (!ks || !out)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    const struct cert_rec *c = find_cert(&ks->state, id);
    if (c)
        cert_info_of(c, out);
    pthread_mutex_unlock(&ks->lock);
    return c ? KEYSTORE_OK : KEYSTORE_E_NOT_FOUND;
}

static int copy_der(const struct blob *b, unsigned char **der, size_t *len)
{
    unsigned char *p = malloc(b->len ? b->len : 1);
    if (!p)
        return KEYSTORE_E_NOMEM;
    memcpy(p, b->p, b->len);
    *der = p;
    *len = b->len;
    return KEYSTORE_OK;
}

int keystore_cert_der(struct keystore *ks, const char *id, unsigned char **der, size_t *len)
{
    if (!ks || !der || !len)
        return KEYSTORE_E_INVALID;
    *der = NULL;
    *len = 0;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    const struct cert_rec *c = find_cert(&ks->state, id);
    int rc = c ? copy_der(&c->der, der, len) : KEYSTORE_E_NOT_FOUND;
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int keystore_list_certs(struct keystore *ks, struct keystore_cert_info **out, size_t *n)
{
    if (!ks || !out || !n)
        return KEYSTORE_E_INVALID;
    pthread_mutex_lock(&ks->lock);
    size_t count = ks->state.n_certs;
    struct keystore_cert_info *list = calloc(count ? count : 1, sizeof *list);
    for (size_t i = 0; list && i < count; i++)
        cert_info_of(&ks->state.certs[i], &list[i]);
    pthread_mutex_unlock(&ks->lock);
    if (!list)
        return KEYSTORE_E_NOMEM;
    *out = list;
    *n = count;
    return KEYSTORE_OK;
}

int keystore_delete_cert(struct keystore *ks, const char *id)
{
    if (!ks)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->write_lock);
    struct cert_rec *c = find_cert(&ks->state, id);
    int rc = KEYSTORE_OK;
    if (!c)
        rc = KEYSTORE_E_NOT_FOUND;
    else if (c->read_only)
        rc = KEYSTORE_E_READ_ONLY;
    else if (c->refs > 0 || cert_in_path(&ks->state, id) || cert_is_anchor(&ks->state, id) ||
             in_use_elsewhere(ks, "cert", id))
        rc = KEYSTORE_E_REFERENCED;
    struct ks_state *next = NULL;
    if (rc == KEYSTORE_OK && !(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        size_t i = (size_t)(c - ks->state.certs);
        free(next->certs[i].der.p);
        memmove(&next->certs[i], &next->certs[i + 1], (next->n_certs - i - 1) * sizeof next->certs[0]);
        next->n_certs--;
        rc = commit(ks, next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK)
        log_notice(AREA, "certificate %s deleted", id);
    return rc;
}

/* --- certification paths ------------------------------------------------- */

int keystore_create_path(struct keystore *ks, const char *const *cert_ids, size_t n, const char *alias,
                         char id[KEYSTORE_ID_MAX])
{
    if (!ks || !cert_ids || !id || n == 0)
        return KEYSTORE_E_INVALID;
    if (n > KEYSTORE_MAX_PATH_LEN)
        return KEYSTORE_E_FULL;
    int rc = check_alias(alias);
    if (rc != KEYSTORE_OK)
        return rc;
    /* The certificates are copied out under the lock and checked without it;
     * they cannot change, only be deleted, which the final check catches. */
    X509 *certs[KEYSTORE_MAX_PATH_LEN] = { NULL };
    pthread_mutex_lock(&ks->lock);
    for (size_t i = 0; i < n && rc == KEYSTORE_OK; i++) {
        const struct cert_rec *c = id_ok(cert_ids[i]) ? find_cert(&ks->state, cert_ids[i]) : NULL;
        if (!c) {
            rc = KEYSTORE_E_NOT_FOUND;
            break;
        }
        const unsigned char *p = c->der.p;
        if (!(certs[i] = d2i_X509(NULL, &p, (long)c->der.len)))
            rc = KEYSTORE_E_NOMEM;
    }
    pthread_mutex_unlock(&ks->lock);
    size_t bad = 0;
    if (rc == KEYSTORE_OK && n > 1)
        rc = map_x509(x509util_check_path_order(certs, n, &bad));
    for (size_t i = 0; i < n; i++)
        X509_free(certs[i]);
    char new_id[KEYSTORE_ID_MAX] = "";
    if (rc == KEYSTORE_OK) {
        pthread_mutex_lock(&ks->write_lock);
        struct ks_state *next = state_dup(&ks->state);
        if (!next)
            rc = KEYSTORE_E_NOMEM;
        else if (writable_paths(next) >= KEYSTORE_MAX_PATHS)
            rc = KEYSTORE_E_FULL;
        for (size_t i = 0; rc == KEYSTORE_OK && i < n; i++)
            if (!find_cert(next, cert_ids[i]))
                rc = KEYSTORE_E_NOT_FOUND;
        if (rc == KEYSTORE_OK) {
            struct path_rec *p = &next->paths[next->n_paths++];
            memset(p, 0, sizeof *p);
            snprintf(p->id, sizeof p->id, "PATH-%lu", next->next_path++);
            copy_alias(p->alias, alias);
            for (size_t i = 0; i < n; i++)
                snprintf(p->cert_ids[i], KEYSTORE_ID_MAX, "%s", cert_ids[i]);
            p->n = n;
            snprintf(new_id, sizeof new_id, "%s", p->id);
            rc = commit(ks, next);
        } else {
            state_free(next);
        }
        pthread_mutex_unlock(&ks->write_lock);
    }
    if (rc == KEYSTORE_OK) {
        snprintf(id, KEYSTORE_ID_MAX, "%s", new_id);
        log_notice(AREA, "certification path %s created (%zu certificate(s))", new_id, n);
    }
    return rc;
}

static void path_info_of(const struct path_rec *p, struct keystore_path_info *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, p->id, sizeof out->id);
    memcpy(out->alias, p->alias, sizeof out->alias);
    out->n_certs = p->n;
    memcpy(out->cert_ids, p->cert_ids, sizeof out->cert_ids);
    out->read_only = p->read_only;
}

int keystore_path_info(struct keystore *ks, const char *id, struct keystore_path_info *out)
{
    if (!ks || !out)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    const struct path_rec *p = find_path(&ks->state, id);
    if (p)
        path_info_of(p, out);
    pthread_mutex_unlock(&ks->lock);
    return p ? KEYSTORE_OK : KEYSTORE_E_NOT_FOUND;
}

int keystore_list_paths(struct keystore *ks, struct keystore_path_info **out, size_t *n)
{
    if (!ks || !out || !n)
        return KEYSTORE_E_INVALID;
    pthread_mutex_lock(&ks->lock);
    size_t count = ks->state.n_paths;
    struct keystore_path_info *list = calloc(count ? count : 1, sizeof *list);
    for (size_t i = 0; list && i < count; i++)
        path_info_of(&ks->state.paths[i], &list[i]);
    pthread_mutex_unlock(&ks->lock);
    if (!list)
        return KEYSTORE_E_NOMEM;
    *out = list;
    *n = count;
    return KEYSTORE_OK;
}

int keystore_delete_path(struct keystore *ks, const char *id)
{
    if (!ks)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->write_lock);
    struct path_rec *p = find_path(&ks->state, id);
    int rc = KEYSTORE_OK;
    if (!p)
        rc = KEYSTORE_E_NOT_FOUND;
    else if (p->read_only)
        rc = KEYSTORE_E_READ_ONLY;
    else if (p->refs > 0 || in_use_elsewhere(ks, "path", id))
        rc = KEYSTORE_E_REFERENCED;
    struct ks_state *next = NULL;
    if (rc == KEYSTORE_OK && !(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        size_t i = (size_t)(p - ks->state.paths);
        memmove(&next->paths[i], &next->paths[i + 1], (next->n_paths - i - 1) * sizeof next->paths[0]);
        next->n_paths--;
        rc = commit(ks, next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK)
        log_notice(AREA, "certification path %s deleted", id);
    return rc;
}

/* --- passphrases --------------------------------------------------------- */

int keystore_upload_passphrase(struct keystore *ks, const char *passphrase, const char *alias, char id[KEYSTORE_ID_MAX])
{
    if (!ks || !passphrase || !id)
        return KEYSTORE_E_INVALID;
    size_t len = strnlen(passphrase, PASSPHRASE_MAX + 1);
    if (len > PASSPHRASE_MAX)
        return KEYSTORE_E_PASSPHRASE;
    int rc = check_alias(alias);
    if (rc != KEYSTORE_OK)
        return rc;
    char new_id[KEYSTORE_ID_MAX] = "";
    pthread_mutex_lock(&ks->write_lock);
    struct ks_state *next = NULL;
    if (ks->state.n_pass >= KEYSTORE_MAX_PASSPHRASES)
        rc = KEYSTORE_E_FULL;
    else if (!(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        struct pass_rec *p = &next->pass[next->n_pass];
        memset(p, 0, sizeof *p);
        snprintf(p->id, sizeof p->id, "PASS-%lu", next->next_pass);
        char context[CONTEXT_MAX];
        context_for(context, PASS_CONTEXT, p->id);
        int brc = secretbox_seal(ks->box, passphrase, len, context, &p->sealed);
        if (brc != SECRETBOX_OK) {
            rc = map_box(brc);
            state_free(next);
        } else {
            copy_alias(p->alias, alias);
            next->next_pass++;
            next->n_pass++;
            snprintf(new_id, sizeof new_id, "%s", p->id);
            rc = commit(ks, next);
        }
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK) {
        snprintf(id, KEYSTORE_ID_MAX, "%s", new_id);
        log_notice(AREA, "passphrase %s uploaded", new_id);
    }
    return rc;
}

/* Copies the id/alias pairs of passphrases or CRLs (records start with
 * id[KEYSTORE_ID_MAX] then alias[]); caller holds ks->lock. */
#define COPY_ID_ALIAS(list, recs, count)                                      \
    for (size_t i_ = 0; (list) && i_ < (count); i_++) {                       \
        memcpy((list)[i_].id, (recs)[i_].id, sizeof (list)[i_].id);           \
        memcpy((list)[i_].alias, (recs)[i_].alias, sizeof (list)[i_].alias);  \
    }

enum object_list { LIST_PASSPHRASES, LIST_CRLS };

static int list_objects(struct keystore *ks, enum object_list which, struct keystore_object_info **out, size_t *n)
{
    if (!ks || !out || !n)
        return KEYSTORE_E_INVALID;
    pthread_mutex_lock(&ks->lock);
    size_t count = which == LIST_PASSPHRASES ? ks->state.n_pass : ks->state.n_crls;
    struct keystore_object_info *list = calloc(count ? count : 1, sizeof *list);
    if (which == LIST_PASSPHRASES)
        COPY_ID_ALIAS(list, ks->state.pass, count)
    else
        COPY_ID_ALIAS(list, ks->state.crls, count)
    pthread_mutex_unlock(&ks->lock);
    if (!list)
        return KEYSTORE_E_NOMEM;
    *out = list;
    *n = count;
    return KEYSTORE_OK;
}

int keystore_list_passphrases(struct keystore *ks, struct keystore_object_info **out, size_t *n)
{
    return list_objects(ks, LIST_PASSPHRASES, out, n);
}

int keystore_delete_passphrase(struct keystore *ks, const char *id)
{
    if (!ks)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->write_lock);
    struct pass_rec *p = find_pass(&ks->state, id);
    int rc = p ? KEYSTORE_OK : KEYSTORE_E_NOT_FOUND;
    struct ks_state *next = NULL;
    if (rc == KEYSTORE_OK && !(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        size_t i = (size_t)(p - ks->state.pass);
        wipe_string(next->pass[i].sealed);
        memmove(&next->pass[i], &next->pass[i + 1], (next->n_pass - i - 1) * sizeof next->pass[0]);
        next->n_pass--;
        rc = commit(ks, next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK)
        log_notice(AREA, "passphrase %s deleted", id);
    return rc;
}

/* --- CRLs ---------------------------------------------------------------- */

int keystore_upload_crl(struct keystore *ks, const unsigned char *buf, size_t len, const char *alias,
                        char id[KEYSTORE_ID_MAX])
{
    if (!ks || !buf || !id)
        return KEYSTORE_E_INVALID;
    int rc = check_alias(alias);
    if (rc != KEYSTORE_OK)
        return rc;
    X509_CRL *crl = NULL;
    rc = map_x509(x509util_parse_crl(buf, len, &crl));
    unsigned char *der = NULL;
    int der_len = 0;
    if (rc == KEYSTORE_OK && (der_len = i2d_X509_CRL(crl, &der)) <= 0)
        rc = KEYSTORE_E_BAD_INPUT;
    X509_CRL_free(crl);
    char new_id[KEYSTORE_ID_MAX] = "";
    if (rc == KEYSTORE_OK) {
        pthread_mutex_lock(&ks->write_lock);
        struct ks_state *next = NULL;
        if (ks->state.n_crls >= KEYSTORE_MAX_CRLS)
            rc = KEYSTORE_E_FULL;
        else if (!(next = state_dup(&ks->state)))
            rc = KEYSTORE_E_NOMEM;
        if (rc == KEYSTORE_OK) {
            struct crl_rec *c = &next->crls[next->n_crls];
            memset(c, 0, sizeof *c);
            rc = blob_set(&c->der, der, (size_t)der_len);
            if (rc == KEYSTORE_OK) {
                snprintf(c->id, sizeof c->id, "CRL-%lu", next->next_crl++);
                copy_alias(c->alias, alias);
                next->n_crls++;
                snprintf(new_id, sizeof new_id, "%s", c->id);
                rc = commit(ks, next);
            } else {
                state_free(next);
            }
        }
        pthread_mutex_unlock(&ks->write_lock);
    }
    OPENSSL_free(der);
    if (rc == KEYSTORE_OK) {
        snprintf(id, KEYSTORE_ID_MAX, "%s", new_id);
        log_notice(AREA, "CRL %s uploaded", new_id);
    }
    return rc;
}

int keystore_crl_der(struct keystore *ks, const char *id, unsigned char **der, size_t *len)
{
    if (!ks || !der || !len)
        return KEYSTORE_E_INVALID;
    *der = NULL;
    *len = 0;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    const struct crl_rec *c = find_crl(&ks->state, id);
    int rc = c ? copy_der(&c->der, der, len) : KEYSTORE_E_NOT_FOUND;
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int keystore_list_crls(struct keystore *ks, struct keystore_object_info **out, size_t *n)
{
    return list_objects(ks, LIST_CRLS, out, n);
}

int keystore_delete_crl(struct keystore *ks, const char *id)
{
    if (!ks)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->write_lock);
    struct crl_rec *c = find_crl(&ks->state, id);
    int rc = c ? KEYSTORE_OK : KEYSTORE_E_NOT_FOUND;
    struct ks_state *next = NULL;
    if (rc == KEYSTORE_OK && !(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        size_t i = (size_t)(c - ks->state.crls);
        free(next->crls[i].der.p);
        memmove(&next->crls[i], &next->crls[i + 1], (next->n_crls - i - 1) * sizeof next->crls[0]);
        next->n_crls--;
        rc = commit(ks, next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK)
        log_notice(AREA, "CRL %s deleted", id);
    return rc;
}

/* --- references ---------------------------------------------------------- */

int keystore_set_reference(struct keystore *ks, const char *kind, const char *id, int delta)
{
    if (!ks || !kind || (delta != 1 && delta != -1))
        return KEYSTORE_E_INVALID;
    if (strcmp(kind, "key") && strcmp(kind, "cert") && strcmp(kind, "path"))
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->write_lock);
    struct ks_state *next = state_dup(&ks->state);
    unsigned long *refs = NULL;
    int rc = next ? KEYSTORE_OK : KEYSTORE_E_NOMEM;
    if (next && !strcmp(kind, "key")) {
        struct key_rec *k = find_key(next, id);
        refs = k ? &k->refs : NULL;
    } else if (next && !strcmp(kind, "cert")) {
        struct cert_rec *c = find_cert(next, id);
        refs = c ? &c->refs : NULL;
    } else if (next) {
        struct path_rec *p = find_path(next, id);
        refs = p ? &p->refs : NULL;
    }
    if (rc == KEYSTORE_OK && !refs)
        rc = KEYSTORE_E_NOT_FOUND;
    else if (rc == KEYSTORE_OK && ((delta < 0 && *refs == 0) || (delta > 0 && *refs >= REFS_MAX)))
        rc = KEYSTORE_E_INVALID;
    if (rc == KEYSTORE_OK) {
        *refs = delta > 0 ? *refs + 1 : *refs - 1;
        rc = commit(ks, next);
    } else {
        state_free(next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    return rc;
}

void keystore_set_reference_check(struct keystore *ks, int (*in_use)(void *arg, const char *kind, const char *id),
                                  void *arg)
{
    if (!ks)
        return;
    /* Under write_lock, so no delete runs half with the old checker. */
    pthread_mutex_lock(&ks->write_lock);
    ks->in_use = in_use;
    ks->in_use_arg = in_use ? arg : NULL;
    pthread_mutex_unlock(&ks->write_lock);
}

unsigned long keystore_generation(struct keystore *ks)
{
    return ks ? atomic_load(&ks->generation) : 0;
}

/* --- certification path validation policies ------------------------------ */

int keystore_create_cpv_policy(struct keystore *ks, const struct keystore_cpv_policy *p, char id[KEYSTORE_ID_MAX])
{
    if (!ks || !p || !id)
        return KEYSTORE_E_INVALID;
    int rc = check_alias(p->alias);
    if (rc != KEYSTORE_OK)
        return rc;
    if (p->n_anchors == 0 || p->n_anchors > KEYSTORE_MAX_TRUST_ANCHORS)
        return KEYSTORE_E_PARAMS;
    for (size_t i = 0; i < p->n_anchors; i++) {
        if (!id_ok(p->anchor_ids[i]))
            return KEYSTORE_E_NOT_FOUND;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(p->anchor_ids[k], p->anchor_ids[i]))
                return KEYSTORE_E_PARAMS;
    }
    /* Anchors are checked under the read lock; a certificate never changes
     * under its ID, only goes, which the check under write_lock catches. */
    pthread_mutex_lock(&ks->lock);
    for (size_t i = 0; i < p->n_anchors && rc == KEYSTORE_OK; i++) {
        const struct cert_rec *c = find_cert(&ks->state, p->anchor_ids[i]);
        if (!c)
            rc = KEYSTORE_E_NOT_FOUND;
        else if (!der_is_ca(&c->der))
            rc = KEYSTORE_E_NOT_CA;
    }
    pthread_mutex_unlock(&ks->lock);
    if (rc != KEYSTORE_OK)
        return rc;
    char new_id[KEYSTORE_ID_MAX] = "";
    pthread_mutex_lock(&ks->write_lock);
    struct ks_state *next = NULL;
    if (ks->state.n_cpv >= KEYSTORE_MAX_CPV_POLICIES)
        rc = KEYSTORE_E_FULL;
    else if (!(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    for (size_t i = 0; rc == KEYSTORE_OK && i < p->n_anchors; i++)
        if (!find_cert(next, p->anchor_ids[i]))
            rc = KEYSTORE_E_NOT_FOUND;
    if (rc == KEYSTORE_OK) {
        cpv_rec *v = &next->cpv[next->n_cpv++];
        memset(v, 0, sizeof *v);
        snprintf(v->id, sizeof v->id, "CPVP-%lu", next->next_cpv++);
        copy_alias(v->alias, p->alias);
        v->require_client_auth_eku = p->require_client_auth_eku != 0;
        v->use_delta_crls = p->use_delta_crls != 0;
        v->n_anchors = p->n_anchors;
        for (size_t i = 0; i < p->n_anchors; i++)
            snprintf(v->anchor_ids[i], KEYSTORE_ID_MAX, "%s", p->anchor_ids[i]);
        snprintf(new_id, sizeof new_id, "%s", v->id);
        rc = commit(ks, next);
    } else {
        state_free(next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK) {
        snprintf(id, KEYSTORE_ID_MAX, "%s", new_id);
        log_notice(AREA, "certification path validation policy %s created (%zu trust anchor(s))", new_id,
                   p->n_anchors);
    }
    return rc;
}

int keystore_cpv_policy_info(struct keystore *ks, const char *id, struct keystore_cpv_policy *out)
{
    if (!ks || !out)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->lock);
    const cpv_rec *v = find_cpv(&ks->state, id);
    if (v)
        *out = *v;
    pthread_mutex_unlock(&ks->lock);
    return v ? KEYSTORE_OK : KEYSTORE_E_NOT_FOUND;
}

int keystore_list_cpv_policies(struct keystore *ks, struct keystore_cpv_policy **out, size_t *n)
{
    if (!ks || !out || !n)
        return KEYSTORE_E_INVALID;
    pthread_mutex_lock(&ks->lock);
    size_t count = ks->state.n_cpv;
    struct keystore_cpv_policy *list = calloc(count ? count : 1, sizeof *list);
    if (list && count)
        memcpy(list, ks->state.cpv, count * sizeof *list);
    pthread_mutex_unlock(&ks->lock);
    if (!list)
        return KEYSTORE_E_NOMEM;
    *out = list;
    *n = count;
    return KEYSTORE_OK;
}

int keystore_delete_cpv_policy(struct keystore *ks, const char *id)
{
    if (!ks)
        return KEYSTORE_E_INVALID;
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    pthread_mutex_lock(&ks->write_lock);
    cpv_rec *v = find_cpv(&ks->state, id);
    int rc = KEYSTORE_OK;
    if (!v)
        rc = KEYSTORE_E_NOT_FOUND;
    else if (in_use_elsewhere(ks, "cpvpolicy", id))
        rc = KEYSTORE_E_REFERENCED;
    struct ks_state *next = NULL;
    if (rc == KEYSTORE_OK && !(next = state_dup(&ks->state)))
        rc = KEYSTORE_E_NOMEM;
    if (rc == KEYSTORE_OK) {
        size_t i = (size_t)(v - ks->state.cpv);
        memmove(&next->cpv[i], &next->cpv[i + 1], (next->n_cpv - i - 1) * sizeof next->cpv[0]);
        next->n_cpv--;
        rc = commit(ks, next);
    }
    pthread_mutex_unlock(&ks->write_lock);
    if (rc == KEYSTORE_OK)
        log_notice(AREA, "certification path validation policy %s deleted", id);
    return rc;
}

static int push_cert(STACK_OF(X509) *sk, const struct blob *der)
{
    const unsigned char *p = der->p;
    X509 *x = d2i_X509(NULL, &p, (long)der->len);
    if (!x)
        return KEYSTORE_E_NOMEM;   /* stored DER parsed when it was stored */
    if (!sk_X509_push(sk, x)) {
        X509_free(x);
        return KEYSTORE_E_NOMEM;
    }
    return KEYSTORE_OK;
}

static int push_crl(STACK_OF(X509_CRL) *sk, const struct blob *der)
{
    const unsigned char *p = der->p;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)der->len);
    if (!crl)
        return KEYSTORE_E_NOMEM;
    if (!sk_X509_CRL_push(sk, crl)) {
        X509_CRL_free(crl);
        return KEYSTORE_E_NOMEM;
    }
    return KEYSTORE_OK;
}

int keystore_cpv_material(struct keystore *ks, const char *id, struct keystore_cpv_material *out)
{
    if (!ks || !out)
        return KEYSTORE_E_INVALID;
    memset(out, 0, sizeof *out);
    if (!id_ok(id))
        return KEYSTORE_E_NOT_FOUND;
    struct keystore_cpv_material m = { sk_X509_new_null(), sk_X509_new_null(), sk_X509_CRL_new_null(), 0, 0 };
    int rc = m.anchors && m.certs && m.crls ? KEYSTORE_OK : KEYSTORE_E_NOMEM;
    pthread_mutex_lock(&ks->lock);
    struct ks_state *st = &ks->state;
    const cpv_rec *v = rc == KEYSTORE_OK ? find_cpv(st, id) : NULL;
    if (rc == KEYSTORE_OK && !v)
        rc = KEYSTORE_E_NOT_FOUND;
    for (size_t i = 0; rc == KEYSTORE_OK && i < v->n_anchors; i++) {
        const struct cert_rec *c = find_cert(st, v->anchor_ids[i]);
        /* Anchors cannot be deleted while the policy exists. */
        rc = c ? push_cert(m.anchors, &c->der) : KEYSTORE_E_NOT_FOUND;
    }
    for (size_t i = 0; rc == KEYSTORE_OK && i < st->n_certs; i++)
        rc = push_cert(m.certs, &st->certs[i].der);
    for (size_t i = 0; rc == KEYSTORE_OK && i < st->n_crls; i++)
        rc = push_crl(m.crls, &st->crls[i].der);
    if (rc == KEYSTORE_OK) {
        m.require_client_auth_eku = v->require_client_auth_eku;
        m.use_delta_crls = v->use_delta_crls;
    }
    pthread_mutex_unlock(&ks->lock);
    if (rc != KEYSTORE_OK) {
        keystore_cpv_material_free(&m);
        return rc;
    }
    *out = m;
    return KEYSTORE_OK;
}

void keystore_cpv_material_free(struct keystore_cpv_material *m)
{
    if (!m)
        return;
    sk_X509_pop_free(m->anchors, X509_free);
    sk_X509_pop_free(m->certs, X509_free);
    sk_X509_CRL_pop_free(m->crls, X509_CRL_free);
    memset(m, 0, sizeof *m);
}

void keystore_set_status_listener(struct keystore *ks, keystore_status_fn fn, void *arg)
{
    pthread_mutex_lock(&ks->write_lock);
    ks->status_fn = fn;
    ks->status_arg = arg;
    pthread_mutex_unlock(&ks->write_lock);
}
