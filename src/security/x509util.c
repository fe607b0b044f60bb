/* Stateless X.509 and key helpers over OpenSSL 3: subject and SAN validation,
 * key generation, PKCS#10 requests, self-signed and CA-issued certificates,
 * bounded PEM/DER parsing of certificates, CRLs, PKCS#8 and PKCS#12, path
 * order checks and DER/PEM encodings. Nothing is stored and nothing is
 * logged here (callers log with context); the OpenSSL error queue is cleared
 * on every failure so it never leaks into an unrelated later call. */
#include "opennvt/x509util.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#define SERIAL_LEN 16
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63
#define OID_TEXT_MAX 128
#define EXTRA_EXT_MAX 32
/* Password-based key derivation iteration counts above this are refused, so
 * an uploaded key or PKCS#12 cannot pin a worker for minutes. OpenSSL and
 * common tools use 2048..600000. */
#define PBE_ITER_MAX 1000000L
/* And all the derivations one input asks for together (a PKCS#12's MAC,
 * encrypted parts and shrouded keys) may not exceed this. */
#define PBE_ITER_BUDGET 2000000L
/* A PKCS#12 may hold at most this many parts (authenticated safe contents)
 * and bags, nested safeContents bags included, nested this deep. */
#define P12_MAX_PARTS 16
#define P12_MAX_BAGS 64
#define P12_MAX_DEPTH 4
/* 0000-01-01 is not useful; 1950 is where UTCTime starts. 9999-12-31T23:59:59Z
 * is the RFC 5280 "no well-defined expiration" value. */
#define TIME_MIN ((time_t)-631152000)
#define TIME_MAX ((time_t)253402300799LL)

const char *x509util_strerror(int err)
{
    switch (err) {
    case X509UTIL_OK: return "ok";
    case X509UTIL_E_SUBJECT: return "subject attribute invalid";
    case X509UTIL_E_SAN: return "subjectAltName entry invalid";
    case X509UTIL_E_ALGORITHM: return "signature algorithm unknown or not usable with this key";
    case X509UTIL_E_MALFORMED: return "not a parsable certificate, CRL, key, PKCS#12 or extension";
    case X509UTIL_E_PASSPHRASE: return "passphrase missing or wrong";
    case X509UTIL_E_TOO_LARGE: return "input too large";
    case X509UTIL_E_KEY: return "key type, size or curve not supported";
    case X509UTIL_E_VALIDITY: return "validity period unusable";
    case X509UTIL_E_ORDER: return "certification path not in issuer order";
    case X509UTIL_E_MISMATCH: return "key and certificate do not belong together";
    case X509UTIL_E_CRYPTO: return "cryptographic library failure";
    case X509UTIL_E_NOMEM: return "out of memory";
    case X509UTIL_E_INVALID: return "invalid argument";
    }
    return "unknown error";
}

/* Every failure path returns through here so the thread's OpenSSL error
 * queue does not carry stale entries into the next call. */
static int fail(int rc)
{
    ERR_clear_error();
    return rc;
}

/* --- signature algorithms ------------------------------------------------ */

struct sig_alg {
    const char *oid;
    const char *name;
    int rsa;            /* 1: RSA PKCS#1 v1.5, 0: ECDSA */
    const EVP_MD *(*md)(void);
};

static const struct sig_alg sig_algs[] = {
    { "1.2.840.113549.1.1.11", "sha256WithRSAEncryption", 1, EVP_sha256 },
    { "1.2.840.113549.1.1.12", "sha384WithRSAEncryption", 1, EVP_sha384 },
    { "1.2.840.113549.1.1.13", "sha512WithRSAEncryption", 1, EVP_sha512 },
    { "1.2.840.10045.4.3.2", "ecdsa-with-SHA256", 0, EVP_sha256 },
    { "1.2.840.10045.4.3.3", "ecdsa-with-SHA384", 0, EVP_sha384 },
    { "1.2.840.10045.4.3.4", "ecdsa-with-SHA512", 0, EVP_sha512 },
};

int x509util_signature_digest(const char *oid, const EVP_PKEY *key, const EVP_MD **md)
{
    if (!md)
        return X509UTIL_E_INVALID;
    *md = NULL;
    if (!oid) {
        *md = EVP_sha256();
        return X509UTIL_OK;
    }
    for (size_t i = 0; i < sizeof sig_algs / sizeof sig_algs[0]; i++) {
        if (strcmp(oid, sig_algs[i].oid) != 0 && strcmp(oid, sig_algs[i].name) != 0)
            continue;
        if (key) {
            int is_rsa = EVP_PKEY_is_a(key, "RSA");
            int is_ec = EVP_PKEY_is_a(key, "EC");
            if ((sig_algs[i].rsa && !is_rsa) || (!sig_algs[i].rsa && !is_ec))
                return X509UTIL_E_ALGORITHM;
        }
        *md = sig_algs[i].md();
        return X509UTIL_OK;
    }
    return X509UTIL_E_ALGORITHM;
}

/* --- subjects ------------------------------------------------------------ */

enum str_kind { STR_UTF8, STR_PRINTABLE, STR_IA5, STR_COUNTRY };

struct attr_rule {
    const char *name;
    int nid;
    size_t max_chars;
    enum str_kind kind;
};

/* The ONVIF/X.520 attributes by name. C, serialNumber and dnQualifier are
 * PrintableString by definition (the ONVIF rule "encode as the defined
 * encoding"); the rest are DirectoryString, encoded UTF8String. */
static const struct attr_rule attr_rules[] = {
    { "CN", NID_commonName, 64, STR_UTF8 },
    { "C", NID_countryName, 2, STR_COUNTRY },
    { "ST", NID_stateOrProvinceName, 128, STR_UTF8 },
    { "L", NID_localityName, 128, STR_UTF8 },
    { "O", NID_organizationName, 64, STR_UTF8 },
    { "OU", NID_organizationalUnitName, 64, STR_UTF8 },
    { "serialNumber", NID_serialNumber, 128, STR_PRINTABLE },
    { "title", NID_title, 128, STR_UTF8 },
    { "SN", NID_surname, 128, STR_UTF8 },
    { "GN", NID_givenName, 128, STR_UTF8 },
    { "initials", NID_initials, 128, STR_UTF8 },
    { "pseudonym", NID_pseudonym, 128, STR_UTF8 },
    { "generationQualifier", NID_generationQualifier, 128, STR_UTF8 },
    { "dnQualifier", NID_dnQualifier, 128, STR_PRINTABLE },
};

/* Attributes reachable only by OID whose syntax is IA5String. */
static int nid_is_ia5(int nid)
{
    return nid == NID_pkcs9_emailAddress || nid == NID_domainComponent;
}

/* Counts code points of valid UTF-8 without control characters (C0, DEL,
 * C1); returns (size_t)-1 when invalid. Overlong forms, surrogates and
 * values above U+10FFFF are invalid. */
static size_t utf8_chars(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, chars = 0;
    while (i < len) {
        unsigned c = p[i];
        uint32_t cp;
        size_t extra;
        if (c < 0x80) {
            cp = c;
            extra = 0;
        } else if (c >= 0xc2 && c <= 0xdf) {
            cp = c & 0x1f;
            extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            cp = c & 0x0f;
            extra = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            cp = c & 0x07;
            extra = 3;
        } else {
            return (size_t)-1;
        }
        if (len - i <= extra)
            return (size_t)-1;
        for (size_t k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return (size_t)-1;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return (size_t)-1;
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            return (size_t)-1;
        i += extra + 1;
        chars++;
    }
    return chars;
}

static int is_printable_string_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ' ||
           c == '\'' || c == '(' || c == ')' || c == '+' || c == ',' || c == '-' || c == '.' || c == '/' ||
           c == ':' || c == '=' || c == '?';
}

/* Dotted decimal with at least two arcs, first arc 0..2, no leading zeros. */
static int is_dotted_oid(const char *s)
{
    size_t len = strnlen(s, OID_TEXT_MAX + 1);
    if (len == 0 || len > OID_TEXT_MAX || s[0] < '0' || s[0] > '2' || s[1] != '.')
        return 0;
    int arcs = 0;
    const char *p = s;
    while (*p) {
        const char *start = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == start || (p - start > 1 && *start == '0'))
            return 0;
        arcs++;
        if (*p == '.') {
            p++;
            if (!*p)
                return 0;
        } else if (*p) {
            return 0;
        }
    }
    return arcs >= 2;
}

/* Resolves an attribute type to its object and value rules. */
static int resolve_attr(const char *type, ASN1_OBJECT **obj, size_t *max_chars, enum str_kind *kind)
{
    for (size_t i = 0; i < sizeof attr_rules / sizeof attr_rules[0]; i++) {
        if (strcmp(type, attr_rules[i].name) == 0) {
            *obj = OBJ_nid2obj(attr_rules[i].nid);
            *max_chars = attr_rules[i].max_chars;
            *kind = attr_rules[i].kind;
            return *obj ? X509UTIL_OK : X509UTIL_E_CRYPTO;
        }
    }
    if (!is_dotted_oid(type))
        return X509UTIL_E_SUBJECT;
    ASN1_OBJECT *o = OBJ_txt2obj(type, 1);
    if (!o)
        return X509UTIL_E_SUBJECT;
    int nid = OBJ_obj2nid(o);
    *max_chars = 128;
    *kind = nid_is_ia5(nid) ? STR_IA5 : STR_UTF8;
    for (size_t i = 0; i < sizeof attr_rules / sizeof attr_rules[0]; i++) {
        if (nid != NID_undef && nid == attr_rules[i].nid) {
            *max_chars = attr_rules[i].max_chars;
            *kind = attr_rules[i].kind;
        }
    }
    *obj = o;
    return X509UTIL_OK;
}

static int check_value(const char *value, size_t max_chars, enum str_kind kind)
{
    size_t len = strnlen(value, max_chars * 4 + 1);
    if (len == 0 || len > max_chars * 4)
        return X509UTIL_E_SUBJECT;
    size_t chars = utf8_chars(value, len);
    if (chars == (size_t)-1 || chars == 0 || chars > max_chars)
        return X509UTIL_E_SUBJECT;
    switch (kind) {
    case STR_UTF8:
        break;
    case STR_COUNTRY:
        if (len != 2)
            return X509UTIL_E_SUBJECT;
        for (size_t i = 0; i < 2; i++) {
            unsigned char c = (unsigned char)value[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
                return X509UTIL_E_SUBJECT;
        }
        break;
    case STR_PRINTABLE:
        for (size_t i = 0; i < len; i++)
            if (!is_printable_string_char((unsigned char)value[i]))
                return X509UTIL_E_SUBJECT;
        break;
    case STR_IA5:
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)value[i] > 0x7e)
                return X509UTIL_E_SUBJECT;
        break;
    }
    return X509UTIL_OK;
}

static int asn1_type_for(enum str_kind kind)
{
    switch (kind) {
    case STR_COUNTRY:
    case STR_PRINTABLE: return V_ASN1_PRINTABLESTRING;
    case STR_IA5: return V_ASN1_IA5STRING;
    case STR_UTF8: break;
    }
    return V_ASN1_UTF8STRING;
}

int x509util_make_name(const struct x509util_rdn *rdns, size_t n, X509_NAME **out, size_t *bad_index)
{
    if (bad_index)
        *bad_index = 0;
    if (!out)
        return X509UTIL_E_INVALID;
    *out = NULL;
    if (n == 0 || !rdns)
        return X509UTIL_E_SUBJECT;
    if (n > X509UTIL_MAX_RDN) {
        if (bad_index)
            *bad_index = X509UTIL_MAX_RDN;
        return X509UTIL_E_SUBJECT;
    }
    X509_NAME *name = X509_NAME_new();
    if (!name)
        return fail(X509UTIL_E_NOMEM);
    for (size_t i = 0; i < n; i++) {
        ASN1_OBJECT *obj = NULL;
        size_t max_chars = 0;
        enum str_kind kind = STR_UTF8;
        int rc = (rdns[i].type && rdns[i].value) ? resolve_attr(rdns[i].type, &obj, &max_chars, &kind)
                                                 : X509UTIL_E_SUBJECT;
        if (rc == X509UTIL_OK)
            rc = check_value(rdns[i].value, max_chars, kind);
        if (rc == X509UTIL_OK) {
            char country[3];
            const char *value = rdns[i].value;
            if (kind == STR_COUNTRY) {
                /* ISO 3166 codes are upper case; "de" is accepted and stored as "DE". */
                country[0] = (char)(value[0] & ~0x20);
                country[1] = (char)(value[1] & ~0x20);
                country[2] = '\0';
                value = country;
            }
            if (!X509_NAME_add_entry_by_OBJ(name, obj, asn1_type_for(kind), (const unsigned char *)value,
                                            (int)strlen(value), -1, 0))
                rc = X509UTIL_E_CRYPTO;
        }
        ASN1_OBJECT_free(obj);
        if (rc != X509UTIL_OK) {
            X509_NAME_free(name);
            if (bad_index)
                *bad_index = i;
            return fail(rc);
        }
    }
    *out = name;
    return X509UTIL_OK;
}

/* --- subjectAltName ------------------------------------------------------ */

static int is_ldh_name(const char *s)
{
    size_t len = strnlen(s, DNS_NAME_MAX + 1);
    if (len == 0 || len > DNS_NAME_MAX)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > DNS_LABEL_MAX || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok || (label == 0 && c == '-'))
            return 0;
        label++;
    }
    return 1;
}

static int san_valid(const struct x509util_san *san)
{
    if (!san->value)
        return 0;
    if (san->type == X509UTIL_SAN_DNS)
        return is_ldh_name(san->value);
    if (san->type == X509UTIL_SAN_IP) {
        unsigned char buf[16];
        return inet_pton(AF_INET, san->value, buf) == 1 || inet_pton(AF_INET6, san->value, buf) == 1;
    }
    return 0;
}

/* The subjectAltName extension for validated entries. */
static int make_san_ext(const struct x509util_san *sans, size_t n, X509_EXTENSION **out)
{
    *out = NULL;
    if (n > X509UTIL_MAX_SAN || (n > 0 && !sans))
        return X509UTIL_E_SAN;
    for (size_t i = 0; i < n; i++)
        if (!san_valid(&sans[i]))
            return X509UTIL_E_SAN;
    if (n == 0)
        return X509UTIL_OK;
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    if (!names)
        return X509UTIL_E_NOMEM;
    int rc = X509UTIL_OK;
    for (size_t i = 0; i < n && rc == X509UTIL_OK; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        if (!gn) {
            rc = X509UTIL_E_NOMEM;
            break;
        }
        if (sans[i].type == X509UTIL_SAN_DNS) {
            ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
            if (!ia5 || !ASN1_STRING_set(ia5, sans[i].value, (int)strlen(sans[i].value))) {
                ASN1_IA5STRING_free(ia5);
                rc = X509UTIL_E_NOMEM;
            } else {
                GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
            }
        } else {
            ASN1_OCTET_STRING *ip = a2i_IPADDRESS(sans[i].value);
            if (!ip)
                rc = X509UTIL_E_SAN;
            else
                GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        }
        if (rc != X509UTIL_OK || !sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            if (rc == X509UTIL_OK)
                rc = X509UTIL_E_NOMEM;
        }
    }
    if (rc == X509UTIL_OK) {
        *out = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
        if (!*out)
            rc = X509UTIL_E_CRYPTO;
    }
    GENERAL_NAMES_free(names);
    return rc;
}

/* --- extensions ---------------------------------------------------------- */

/* The caller-supplied extensions, each checked: a known OID, a single
 * well-formed DER value, decodable when OpenSSL knows the extension, and no
 * OID twice. */
static int make_extra_exts(const struct x509util_extension *ext, size_t n, STACK_OF(X509_EXTENSION) **out)
{
    *out = NULL;
    if (n > 0 && !ext)
        return X509UTIL_E_INVALID;
    if (n > EXTRA_EXT_MAX)
        return X509UTIL_E_MALFORMED;
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    if (!sk)
        return X509UTIL_E_NOMEM;
    int rc = X509UTIL_OK;
    for (size_t i = 0; i < n && rc == X509UTIL_OK; i++) {
        if (!ext[i].oid || !is_dotted_oid(ext[i].oid) || !ext[i].der || ext[i].der_len == 0 ||
            ext[i].der_len > X509UTIL_MAX_INPUT) {
            rc = X509UTIL_E_MALFORMED;
            break;
        }
        const unsigned char *p = ext[i].der;
        ASN1_TYPE *t = d2i_ASN1_TYPE(NULL, &p, (long)ext[i].der_len);
        size_t used = (size_t)(p - ext[i].der);
        ASN1_TYPE_free(t);
        if (!t || used != ext[i].der_len) {
            rc = X509UTIL_E_MALFORMED;
            break;
        }
        ASN1_OBJECT *obj = OBJ_txt2obj(ext[i].oid, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e = NULL;
        if (obj && os && ASN1_OCTET_STRING_set(os, ext[i].der, (int)ext[i].der_len))
            e = X509_EXTENSION_create_by_OBJ(NULL, obj, ext[i].critical ? 1 : 0, os);
        ASN1_OCTET_STRING_free(os);
        if (!e) {
            ASN1_OBJECT_free(obj);
            rc = obj ? X509UTIL_E_NOMEM : X509UTIL_E_MALFORMED;
            break;
        }
        for (int k = 0; k < sk_X509_EXTENSION_num(sk); k++)
            if (OBJ_cmp(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(sk, k)), obj) == 0)
                rc = X509UTIL_E_MALFORMED;
        ASN1_OBJECT_free(obj);
        if (rc == X509UTIL_OK && X509V3_EXT_get(e)) {
            void *decoded = X509V3_EXT_d2i(e);
            if (!decoded) {
                rc = X509UTIL_E_MALFORMED;
            } else {
                const X509V3_EXT_METHOD *m = X509V3_EXT_get(e);
                if (m->it)
                    ASN1_item_free(decoded, ASN1_ITEM_ptr(m->it));
                else if (m->ext_free)
                    m->ext_free(decoded);
            }
        }
        if (rc != X509UTIL_OK || !sk_X509_EXTENSION_push(sk, e)) {
            X509_EXTENSION_free(e);
            if (rc == X509UTIL_OK)
                rc = X509UTIL_E_NOMEM;
        }
    }
    if (rc != X509UTIL_OK) {
        sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
        return rc;
    }
    *out = sk;
    return X509UTIL_OK;
}

static int exts_have_nid(const STACK_OF(X509_EXTENSION) *sk, int nid)
{
    for (int i = 0; i < sk_X509_EXTENSION_num(sk); i++)
        if (OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(sk, i))) == nid)
            return 1;
    return 0;
}

/* Whether key holds its private half (a CSR or certificate must be signed). */
static int has_private(const EVP_PKEY *key)
{
    BIGNUM *bn = NULL;
    int ok = 0;
    if (EVP_PKEY_is_a(key, "RSA"))
        ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
    else if (EVP_PKEY_is_a(key, "EC"))
        ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
    else
        ok = 1; /* other types: let signing decide */
    BN_clear_free(bn);
    ERR_clear_error();
    return ok;
}

/* --- PKCS#10 ------------------------------------------------------------- */

int x509util_make_csr(EVP_PKEY *key, const X509_NAME *subject, const struct x509util_san *sans, size_t n_sans,
                      const struct x509util_extension *ext, size_t n_ext, const EVP_MD *md,
                      unsigned char **der, size_t *der_len)
{
    if (der)
        *der = NULL;
    if (der_len)
        *der_len = 0;
    if (!key || !subject || !der || !der_len)
        return X509UTIL_E_INVALID;
    if (!has_private(key))
        return X509UTIL_E_KEY;
    if (!md)
        md = EVP_sha256();

    X509_EXTENSION *san = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    int rc = make_san_ext(sans, n_sans, &san);
    if (rc == X509UTIL_OK)
        rc = make_extra_exts(ext, n_ext, &exts);
    if (rc == X509UTIL_OK && san && exts_have_nid(exts, NID_subject_alt_name))
        rc = X509UTIL_E_SAN;
    if (rc == X509UTIL_OK && san) {
        if (!sk_X509_EXTENSION_insert(exts, san, 0))
            rc = X509UTIL_E_NOMEM;
        else
            san = NULL;
    }
    X509_REQ *req = NULL;
    if (rc == X509UTIL_OK) {
        req = X509_REQ_new();
        if (!req)
            rc = X509UTIL_E_NOMEM;
    }
    if (rc == X509UTIL_OK &&
        (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_subject_name(req, subject) ||
         !X509_REQ_set_pubkey(req, key)))
        rc = X509UTIL_E_CRYPTO;
    if (rc == X509UTIL_OK && sk_X509_EXTENSION_num(exts) > 0 && !X509_REQ_add_extensions(req, exts))
        rc = X509UTIL_E_CRYPTO;
    if (rc == X509UTIL_OK && X509_REQ_sign(req, key, md) <= 0)
        rc = X509UTIL_E_ALGORITHM;
    if (rc == X509UTIL_OK) {
        unsigned char *buf = NULL;
        int len = i2d_X509_REQ(req, &buf);
        if (len <= 0) {
            rc = X509UTIL_E_CRYPTO;
        } else {
            *der = buf;
            *der_len = (size_t)len;
        }
    }
    X509_REQ_free(req);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rc == X509UTIL_OK ? rc : fail(rc);
}

/* --- certificates -------------------------------------------------------- */

static int set_random_serial(X509 *x)
{
    unsigned char raw[SERIAL_LEN];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return X509UTIL_E_CRYPTO;
    /* Positive and exactly 16 bytes in DER: top bit clear, next bit set. */
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    int rc = X509UTIL_E_NOMEM;
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = X509UTIL_OK;
    BN_free(bn);
    return rc;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (!e)
        return X509UTIL_E_CRYPTO;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? X509UTIL_OK : X509UTIL_E_NOMEM;
}

/* Builds and signs a certificate; issuer_cert NULL means self-signed (issuer
 * = subject, signed by subject_key). Extensions the caller supplies replace
 * the defaults of the same type. */
static int build_cert(EVP_PKEY *subject_key, const X509_NAME *subject, X509 *issuer_cert, EVP_PKEY *signing_key,
                      time_t not_before, time_t not_after, const struct x509util_san *sans, size_t n_sans,
                      const struct x509util_extension *ext, size_t n_ext, int is_ca, int server_auth,
                      const EVP_MD *md, X509 **out)
{
    if (not_before < TIME_MIN || not_after > TIME_MAX || not_after <= not_before)
        return X509UTIL_E_VALIDITY;
    if (!has_private(signing_key))
        return X509UTIL_E_KEY;
    if (!md)
        md = EVP_sha256();

    X509_EXTENSION *san = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509 *x = NULL;
    int rc = make_san_ext(sans, n_sans, &san);
    if (rc == X509UTIL_OK)
        rc = make_extra_exts(ext, n_ext, &exts);
    if (rc == X509UTIL_OK && san && exts_have_nid(exts, NID_subject_alt_name))
        rc = X509UTIL_E_SAN;
    if (rc == X509UTIL_OK && !(x = X509_new()))
        rc = X509UTIL_E_NOMEM;
    if (rc == X509UTIL_OK && !X509_set_version(x, X509_VERSION_3))
        rc = X509UTIL_E_CRYPTO;
    if (rc == X509UTIL_OK)
        rc = set_random_serial(x);
    if (rc == X509UTIL_OK &&
        (!X509_set_subject_name(x, subject) ||
         !X509_set_issuer_name(x, issuer_cert ? X509_get_subject_name(issuer_cert) : subject) ||
         !X509_set_pubkey(x, subject_key)))
        rc = X509UTIL_E_CRYPTO;
    if (rc == X509UTIL_OK &&
        (!ASN1_TIME_set(X509_getm_notBefore(x), not_before) || !ASN1_TIME_set(X509_getm_notAfter(x), not_after)))
        rc = X509UTIL_E_VALIDITY;

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert : x, x, NULL, NULL, 0);
    if (rc == X509UTIL_OK && !exts_have_nid(exts, NID_basic_constraints))
        rc = add_conf_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (rc == X509UTIL_OK && !exts_have_nid(exts, NID_key_usage)) {
        if (is_ca)
            rc = add_conf_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
        else if (server_auth)
            rc = add_conf_ext(x, &ctx, NID_key_usage,
                              EVP_PKEY_is_a(subject_key, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                                                : "critical,digitalSignature");
    }
    if (rc == X509UTIL_OK && server_auth && !exts_have_nid(exts, NID_ext_key_usage))
        rc = add_conf_ext(x, &ctx, NID_ext_key_usage, "serverAuth");
    if (rc == X509UTIL_OK && !exts_have_nid(exts, NID_subject_key_identifier))
        rc = add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (rc == X509UTIL_OK && !exts_have_nid(exts, NID_authority_key_identifier))
        rc = add_conf_ext(x, &ctx, NID_authority_key_identifier, issuer_cert ? "keyid,issuer" : "keyid:always");
    if (rc == X509UTIL_OK && san && !X509_add_ext(x, san, -1))
        rc = X509UTIL_E_NOMEM;
    for (int i = 0; rc == X509UTIL_OK && i < sk_X509_EXTENSION_num(exts); i++)
        if (!X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1))
            rc = X509UTIL_E_NOMEM;
    if (rc == X509UTIL_OK && X509_sign(x, signing_key, md) <= 0)
        rc = X509UTIL_E_ALGORITHM;

    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (rc != X509UTIL_OK) {
        X509_free(x);
        return fail(rc);
    }
    *out = x;
    return X509UTIL_OK;
}

int x509util_make_self_signed(EVP_PKEY *key, const X509_NAME *subject, time_t not_before, time_t not_after,
                              const struct x509util_san *sans, size_t n_sans,
                              const struct x509util_extension *ext, size_t n_ext, int is_ca, const EVP_MD *md,
                              X509 **out)
{
    if (out)
        *out = NULL;
    if (!key || !subject || !out)
        return X509UTIL_E_INVALID;
    return build_cert(key, subject, NULL, key, not_before, not_after, sans, n_sans, ext, n_ext, is_ca, 0, md,
                      out);
}

int x509util_issue(EVP_PKEY *subject_key, const X509_NAME *subject, X509 *issuer_cert, EVP_PKEY *issuer_key,
                   time_t not_before, time_t not_after, const struct x509util_san *sans, size_t n_sans,
                   int is_ca, int server_auth, const EVP_MD *md, X509 **out)
{
    if (out)
        *out = NULL;
    if (!subject_key || !subject || !issuer_cert || !issuer_key || !out)
        return X509UTIL_E_INVALID;
    /* The issuer must be a CA whose certificate belongs to issuer_key. */
    if (X509_check_private_key(issuer_cert, issuer_key) != 1 || X509_check_ca(issuer_cert) < 1)
        return fail(X509UTIL_E_MISMATCH);
    return build_cert(subject_key, subject, issuer_cert, issuer_key, not_before, not_after, sans, n_sans, NULL, 0,
                      is_ca, server_auth, md, out);
}

/* --- parsing ------------------------------------------------------------- */

static int check_input(const unsigned char *buf, size_t len)
{
    if (!buf)
        return X509UTIL_E_INVALID;
    if (len > X509UTIL_MAX_INPUT)
        return X509UTIL_E_TOO_LARGE;
    if (len == 0)
        return X509UTIL_E_MALFORMED;
    return X509UTIL_OK;
}

static int is_pem(const unsigned char *buf, size_t len)
{
    return memmem(buf, len, "-----BEGIN", 10) != NULL;
}

/* A read-only memory BIO over buf (len bounded by check_input). */
static BIO *mem_bio(const unsigned char *buf, size_t len)
{
    return BIO_new_mem_buf(buf, (int)len);
}

int x509util_parse_cert(const unsigned char *buf, size_t len, X509 **out)
{
    if (out)
        *out = NULL;
    int rc = check_input(buf, len);
    if (rc != X509UTIL_OK || !out)
        return out ? rc : X509UTIL_E_INVALID;
    X509 *x = NULL;
    if (is_pem(buf, len)) {
        BIO *bio = mem_bio(buf, len);
        if (!bio)
            return fail(X509UTIL_E_NOMEM);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = buf;
        x = d2i_X509(NULL, &p, (long)len);
        if (x && (size_t)(p - buf) != len) {
            X509_free(x);
            x = NULL;
        }
    }
    if (!x)
        return fail(X509UTIL_E_MALFORMED);
    *out = x;
    return X509UTIL_OK;
}

int x509util_parse_crl(const unsigned char *buf, size_t len, X509_CRL **out)
{
    if (out)
        *out = NULL;
    int rc = check_input(buf, len);
    if (rc != X509UTIL_OK || !out)
        return out ? rc : X509UTIL_E_INVALID;
    X509_CRL *crl = NULL;
    if (is_pem(buf, len)) {
        BIO *bio = mem_bio(buf, len);
        if (!bio)
            return fail(X509UTIL_E_NOMEM);
        crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *p = buf;
        crl = d2i_X509_CRL(NULL, &p, (long)len);
        if (crl && (size_t)(p - buf) != len) {
            X509_CRL_free(crl);
            crl = NULL;
        }
    }
    if (!crl)
        return fail(X509UTIL_E_MALFORMED);
    *out = crl;
    return X509UTIL_OK;
}

/* --- password-based encryption costs -------------------------------------
 * Only schemes whose cost is a bounded number of iterations are accepted:
 * PBES2 with PBKDF2 (HMAC with SHA-1 or SHA-2 as PRF), and the PKCS#12 PBE
 * schemes (pbeWithSHAAnd*). scrypt (OpenSSL bounds its memory, not its time:
 * N=16384, r=8, p=8192 pins a CPU for minutes), PKCS#5 v1 and anything
 * unknown are refused as malformed. Every derivation an input asks for is
 * charged against one budget before it runs, so many cheap-looking items
 * cannot add up to an expensive input either. */

struct pbe_budget {
    long left;            /* iterations still allowed */
};

static int known_digest_nid(int nid)
{
    switch (nid) {
    case NID_sha1:
    case NID_sha224:
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
    case NID_sha512_224:
    case NID_sha512_256:
        return 1;
    }
    return 0;
}

static int known_prf_nid(int nid)
{
    switch (nid) {
    case NID_hmacWithSHA1:
    case NID_hmacWithSHA224:
    case NID_hmacWithSHA256:
    case NID_hmacWithSHA384:
    case NID_hmacWithSHA512:
    case NID_hmacWithSHA512_224:
    case NID_hmacWithSHA512_256:
        return 1;
    }
    return 0;
}

static int pkcs12_pbe_nid(int nid)
{
    switch (nid) {
    case NID_pbe_WithSHA1And128BitRC4:
    case NID_pbe_WithSHA1And40BitRC4:
    case NID_pbe_WithSHA1And3_Key_TripleDES_CBC:
    case NID_pbe_WithSHA1And2_Key_TripleDES_CBC:
    case NID_pbe_WithSHA1And128BitRC2_CBC:
    case NID_pbe_WithSHA1And40BitRC2_CBC:
        return 1;
    }
    return 0;
}

/* The iteration count of a PBKDF2 AlgorithmIdentifier, or -1 when it is not
 * PBKDF2 with a known PRF and an ordinary salt and key length. */
static long pbkdf2_iterations(const X509_ALGOR *kdf_alg)
{
    if (!kdf_alg || OBJ_obj2nid(kdf_alg->algorithm) != NID_id_pbkdf2 || !kdf_alg->parameter ||
        kdf_alg->parameter->type != V_ASN1_SEQUENCE)
        return -1;
    PBKDF2PARAM *kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), kdf_alg->parameter);
    long iter = -1;
    if (kdf && kdf->salt && kdf->salt->type == V_ASN1_OCTET_STRING &&
        (!kdf->prf || known_prf_nid(OBJ_obj2nid(kdf->prf->algorithm)))) {
        long keylen = kdf->keylength ? ASN1_INTEGER_get(kdf->keylength) : 0;
        if (!kdf->keylength || (keylen >= 1 && keylen <= EVP_MAX_KEY_LENGTH))
            iter = ASN1_INTEGER_get(kdf->iter);
    }
    PBKDF2PARAM_free(kdf);
    return iter;
}

/* The iteration count an encryption AlgorithmIdentifier asks for, or -1 when
 * the scheme is not accepted, its parameters do not parse, or the count is
 * outside 1..PBE_ITER_MAX. */
static long pbe_iterations(const X509_ALGOR *alg)
{
    if (!alg || !alg->algorithm || !alg->parameter || alg->parameter->type != V_ASN1_SEQUENCE)
        return -1;
    int nid = OBJ_obj2nid(alg->algorithm);
    long iter = -1;
    if (nid == NID_pbes2) {
        PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
        if (p2 && p2->encryption && p2->encryption->algorithm && EVP_get_cipherbyobj(p2->encryption->algorithm))
            iter = pbkdf2_iterations(p2->keyfunc);
        PBE2PARAM_free(p2);
    } else if (pkcs12_pbe_nid(nid)) {
        PBEPARAM *pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        if (pbe && pbe->iter)
            iter = ASN1_INTEGER_get(pbe->iter);
        PBEPARAM_free(pbe);
    }
    return iter >= 1 && iter <= PBE_ITER_MAX ? iter : -1;
}

/* Charges one derivation with alg's iteration count; E_MALFORMED when the
 * scheme is refused or the budget would be exceeded. */
static int pbe_charge(const X509_ALGOR *alg, struct pbe_budget *b)
{
    long iter = pbe_iterations(alg);
    if (iter < 0 || iter > b->left)
        return X509UTIL_E_MALFORMED;
    b->left -= iter;
    return X509UTIL_OK;
}

/* Key from an EncryptedPrivateKeyInfo: E_MALFORMED when its scheme or cost
 * is refused, E_PASSPHRASE when no passphrase is given or it does not
 * decrypt. */
static int decrypt_p8(const X509_SIG *sig, const char *passphrase, EVP_PKEY **out)
{
    const X509_ALGOR *alg;
    X509_SIG_get0(sig, &alg, NULL);
    struct pbe_budget budget = { PBE_ITER_BUDGET };
    if (pbe_charge(alg, &budget) != X509UTIL_OK)
        return X509UTIL_E_MALFORMED;
    if (!passphrase)
        return X509UTIL_E_PASSPHRASE;
    PKCS8_PRIV_KEY_INFO *p8 = PKCS8_decrypt(sig, passphrase, (int)strnlen(passphrase, 1024));
    if (!p8)
        return X509UTIL_E_PASSPHRASE;
    *out = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return *out ? X509UTIL_OK : X509UTIL_E_MALFORMED;
}

static int plain_p8(const unsigned char *der, long len, EVP_PKEY **out)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
    if (!p8)
        return X509UTIL_E_MALFORMED;
    int whole = p - der == len;
    *out = whole ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    return *out ? X509UTIL_OK : X509UTIL_E_MALFORMED;
}

static int encrypted_p8(const unsigned char *der, long len, const char *passphrase, EVP_PKEY **out)
{
    const unsigned char *p = der;
    X509_SIG *sig = d2i_X509_SIG(NULL, &p, len);
    if (!sig)
        return X509UTIL_E_MALFORMED;
    int rc = p - der == len ? decrypt_p8(sig, passphrase, out) : X509UTIL_E_MALFORMED;
    X509_SIG_free(sig);
    return rc;
}

/* PEM passphrase callback: never prompts; no passphrase means failure. */
static int pem_pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *pass = u;
    if (!pass)
        return -1;
    size_t len = strlen(pass);
    if (len > (size_t)size)
        return -1;
    memcpy(buf, pass, len);
    return (int)len;
}

static int parse_pem_key(const unsigned char *buf, size_t len, const char *passphrase, EVP_PKEY **out)
{
    BIO *bio = mem_bio(buf, len);
    if (!bio)
        return X509UTIL_E_NOMEM;
    int rc = X509UTIL_E_MALFORMED;
    /* Find the first private key block, as PEM_read_bio_PrivateKey would. */
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long dlen = 0;
        if (!PEM_read_bio(bio, &name, &header, &data, &dlen))
            break;
        size_t nlen = strlen(name);
        int is_key = nlen >= 11 && strcmp(name + nlen - 11, "PRIVATE KEY") == 0;
        if (is_key) {
            if (strcmp(name, "PRIVATE KEY") == 0) {
                rc = plain_p8(data, dlen, out);
            } else if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
                rc = encrypted_p8(data, dlen, passphrase, out);
            } else if (strcmp(name, "RSA PRIVATE KEY") == 0 || strcmp(name, "EC PRIVATE KEY") == 0) {
                /* Traditional form, perhaps with a DEK-Info header: let
                 * OpenSSL decode it, with our non-prompting callback. */
                int encrypted = strstr(header, "ENCRYPTED") != NULL;
                BIO *again = mem_bio(buf, len);
                if (!again) {
                    rc = X509UTIL_E_NOMEM;
                } else if (encrypted && !passphrase) {
                    rc = X509UTIL_E_PASSPHRASE;
                } else {
                    *out = PEM_read_bio_PrivateKey(again, NULL, pem_pass_cb, (void *)passphrase);
                    rc = *out ? X509UTIL_OK : encrypted ? X509UTIL_E_PASSPHRASE : X509UTIL_E_MALFORMED;
                }
                BIO_free(again);
            }
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, dlen > 0 ? (size_t)dlen : 0);
        if (is_key)
            break;
    }
    BIO_free(bio);
    return rc;
}

int x509util_parse_pkcs8(const unsigned char *buf, size_t len, const char *passphrase, EVP_PKEY **out)
{
    if (out)
        *out = NULL;
    int rc = check_input(buf, len);
    if (rc != X509UTIL_OK || !out)
        return out ? rc : X509UTIL_E_INVALID;
    EVP_PKEY *key = NULL;
    if (is_pem(buf, len)) {
        rc = parse_pem_key(buf, len, passphrase, &key);
    } else {
        rc = plain_p8(buf, (long)len, &key);
        if (rc == X509UTIL_E_MALFORMED) {
            ERR_clear_error();
            rc = encrypted_p8(buf, (long)len, passphrase, &key);
        }
    }
    if (rc == X509UTIL_OK && x509util_key_supported(key) != X509UTIL_OK)
        rc = X509UTIL_E_KEY;
    if (rc != X509UTIL_OK) {
        EVP_PKEY_free(key);
        return fail(rc);
    }
    *out = key;
    return X509UTIL_OK;
}

/* --- PKCS#12 --------------------------------------------------------------
 * Walked here rather than by PKCS12_parse, so that every derivation is
 * costed before it runs (the MAC, each encrypted part, each shrouded key bag,
 * nested safeContents included) and each runs once. The result is what
 * PKCS12_parse gives: the first key found, the first certificate matching it,
 * the other X.509 certificates as the chain. */

struct p12_walk {
    struct pbe_budget budget;
    int bags;                 /* bags seen, nested ones included */
};

/* Charges the MAC derivation for each verification attempt. */
static int p12_charge_mac(const PKCS12 *p12, int attempts, struct pbe_budget *b)
{
    const X509_ALGOR *macalg = NULL;
    const ASN1_INTEGER *mac_iter = NULL;
    PKCS12_get0_mac(NULL, &macalg, NULL, &mac_iter, p12);
    if (!macalg || !known_digest_nid(OBJ_obj2nid(macalg->algorithm)))
        return X509UTIL_E_MALFORMED;
    long iter = mac_iter ? ASN1_INTEGER_get(mac_iter) : 1;   /* DEFAULT 1 */
    if (iter < 1 || iter > PBE_ITER_MAX)
        return X509UTIL_E_MALFORMED;
    for (int i = 0; i < attempts; i++) {
        if (iter > b->left)
            return X509UTIL_E_MALFORMED;
        b->left -= iter;
    }
    return X509UTIL_OK;
}

/* Counts the bags (bounded in number and nesting) and charges every
 * shrouded key bag, before anything is decrypted. depth is 1 for a part's
 * own bags. */
static int p12_check_bags(const STACK_OF(PKCS12_SAFEBAG) *bags, int depth, struct p12_walk *w)
{
    if (!bags || depth > P12_MAX_DEPTH)
        return X509UTIL_E_MALFORMED;
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        if (++w->bags > P12_MAX_BAGS)
            return X509UTIL_E_MALFORMED;
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        int rc = X509UTIL_OK;
        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_pkcs8ShroudedKeyBag: {
            const X509_SIG *sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
            const X509_ALGOR *alg = NULL;
            if (!sig)
                return X509UTIL_E_MALFORMED;
            X509_SIG_get0(sig, &alg, NULL);
            rc = pbe_charge(alg, &w->budget);
            break;
        }
        case NID_safeContentsBag:
            rc = p12_check_bags(PKCS12_SAFEBAG_get0_safes(bag), depth + 1, w);
            break;
        }
        if (rc != X509UTIL_OK)
            return rc;
    }
    return X509UTIL_OK;
}

/* Takes the first key and every X.509 certificate from already-checked
 * bags. undecryptable: what a shrouded key that does not decrypt means. */
static int p12_collect_bags(const STACK_OF(PKCS12_SAFEBAG) *bags, const char *pass, int passlen, int undecryptable,
                            EVP_PKEY **key, STACK_OF(X509) *certs)
{
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        int rc = X509UTIL_OK;
        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_keyBag:
            if (!*key) {
                const PKCS8_PRIV_KEY_INFO *p8 = PKCS12_SAFEBAG_get0_p8inf(bag);
                *key = p8 ? EVP_PKCS82PKEY(p8) : NULL;
                if (!*key)
                    rc = X509UTIL_E_MALFORMED;
            }
            break;
        case NID_pkcs8ShroudedKeyBag:
            if (!*key) {
                PKCS8_PRIV_KEY_INFO *p8 = PKCS12_decrypt_skey(bag, pass, passlen);
                if (!p8)
                    return undecryptable;
                *key = EVP_PKCS82PKEY(p8);
                PKCS8_PRIV_KEY_INFO_free(p8);
                if (!*key)
                    rc = X509UTIL_E_MALFORMED;
            }
            break;
        case NID_certBag:
            if (PKCS12_SAFEBAG_get_bag_nid(bag) == NID_x509Certificate) {
                X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
                if (!x)
                    rc = X509UTIL_E_MALFORMED;
                else if (!sk_X509_push(certs, x)) {
                    X509_free(x);
                    rc = X509UTIL_E_NOMEM;
                }
            }
            break;
        case NID_safeContentsBag:
            rc = p12_collect_bags(PKCS12_SAFEBAG_get0_safes(bag), pass, passlen, undecryptable, key, certs);
            break;
        }
        if (rc != X509UTIL_OK)
            return rc;
    }
    return X509UTIL_OK;
}

/* The key, the certificate matching it and the others, with every cost
 * checked first. */
static int p12_read(PKCS12 *p12, const char *pass, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **others)
{
    struct p12_walk w = { { PBE_ITER_BUDGET }, 0 };
    STACK_OF(PKCS12_SAFEBAG) *part_bags[P12_MAX_PARTS] = { NULL };
    STACK_OF(PKCS7) *safes = NULL;
    STACK_OF(X509) *certs = NULL;
    int has_mac = PKCS12_mac_present(p12), n_parts = 0, rc = X509UTIL_OK;
    /* An empty passphrase may have been applied as "" or as absent: two MAC attempts. */
    if (has_mac)
        rc = p12_charge_mac(p12, pass[0] ? 1 : 2, &w.budget);

    /* What is visible without the passphrase: the parts, the cost of the
     * encrypted ones, and the bags of the plain ones. */
    if (rc == X509UTIL_OK && !(safes = PKCS12_unpack_authsafes(p12)))
        rc = X509UTIL_E_MALFORMED;
    if (rc == X509UTIL_OK && ((n_parts = sk_PKCS7_num(safes)) < 0 || n_parts > P12_MAX_PARTS))
        rc = X509UTIL_E_MALFORMED;
    for (int i = 0; rc == X509UTIL_OK && i < n_parts; i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        switch (OBJ_obj2nid(p7->type)) {
        case NID_pkcs7_data:
            part_bags[i] = PKCS12_unpack_p7data(p7);
            rc = p12_check_bags(part_bags[i], 1, &w);
            break;
        case NID_pkcs7_encrypted:
            rc = p7->d.encrypted && p7->d.encrypted->enc_data
                     ? pbe_charge(p7->d.encrypted->enc_data->algorithm, &w.budget)
                     : X509UTIL_E_MALFORMED;
            break;
        default:
            break;    /* enveloped (public-key privacy) parts are skipped, as PKCS12_parse does */
        }
    }

    /* The passphrase, as PKCS12_parse would apply it. */
    const char *use = pass;
    int use_len = -1;
    if (rc == X509UTIL_OK && has_mac) {
        if (PKCS12_verify_mac(p12, pass, -1) == 1) {
            /* as given */
        } else if (!pass[0] && PKCS12_verify_mac(p12, NULL, 0) == 1) {
            use = NULL;
            use_len = 0;
        } else {
            rc = X509UTIL_E_PASSPHRASE;
        }
    } else if (rc == X509UTIL_OK && !pass[0]) {
        use = NULL;
        use_len = 0;
    } else if (rc == X509UTIL_OK) {
        /* PKCS12_parse insists on a MAC whenever a passphrase is given. */
        rc = X509UTIL_E_PASSPHRASE;
    }
    /* Without a MAC, a part or key that does not decrypt is the passphrase's fault. */
    int undecryptable = has_mac ? X509UTIL_E_MALFORMED : X509UTIL_E_PASSPHRASE;

    /* The encrypted parts, and the cost of what they hold, before any key bag is opened. */
    for (int i = 0; rc == X509UTIL_OK && i < n_parts; i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        if (OBJ_obj2nid(p7->type) != NID_pkcs7_encrypted)
            continue;
        part_bags[i] = PKCS12_unpack_p7encdata(p7, use, use_len);
        rc = part_bags[i] ? p12_check_bags(part_bags[i], 1, &w) : undecryptable;
    }

    if (rc == X509UTIL_OK && !(certs = sk_X509_new_null()))
        rc = X509UTIL_E_NOMEM;
    for (int i = 0; rc == X509UTIL_OK && i < n_parts; i++)
        if (part_bags[i])
            rc = p12_collect_bags(part_bags[i], use, use_len, undecryptable, key, certs);
    if (rc == X509UTIL_OK && !(*others = sk_X509_new_null()))
        rc = X509UTIL_E_NOMEM;
    X509 *x;
    while (rc == X509UTIL_OK && (x = sk_X509_shift(certs)) != NULL) {
        if (*key && !*cert && X509_check_private_key(x, *key) == 1) {
            *cert = x;
        } else if (!sk_X509_push(*others, x)) {
            X509_free(x);
            rc = X509UTIL_E_NOMEM;
        }
    }
    ERR_clear_error();   /* the non-matching certificates' check failures */

    sk_X509_pop_free(certs, X509_free);
    for (int i = 0; i < n_parts && i < P12_MAX_PARTS; i++)
        sk_PKCS12_SAFEBAG_pop_free(part_bags[i], PKCS12_SAFEBAG_free);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    return rc;
}

int x509util_parse_pkcs12(const unsigned char *buf, size_t len, const char *passphrase, EVP_PKEY **key,
                          X509 **cert, STACK_OF(X509) **chain)
{
    if (key)
        *key = NULL;
    if (cert)
        *cert = NULL;
    if (chain)
        *chain = NULL;
    int rc = check_input(buf, len);
    if (rc != X509UTIL_OK || !key || !cert)
        return (key && cert) ? rc : X509UTIL_E_INVALID;
    const unsigned char *p = buf;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (!p12 || (size_t)(p - buf) != len) {
        PKCS12_free(p12);
        return fail(X509UTIL_E_MALFORMED);
    }
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    STACK_OF(X509) *ca = NULL;
    rc = p12_read(p12, passphrase ? passphrase : "", &k, &c, &ca);
    PKCS12_free(p12);
    if (rc == X509UTIL_OK && (!k || !c))
        rc = X509UTIL_E_MALFORMED;
    if (rc == X509UTIL_OK && x509util_key_supported(k) != X509UTIL_OK)
        rc = X509UTIL_E_KEY;
    if (rc == X509UTIL_OK && X509_check_private_key(c, k) != 1)
        rc = X509UTIL_E_MISMATCH;
    if (rc != X509UTIL_OK) {
        EVP_PKEY_free(k);
        X509_free(c);
        sk_X509_pop_free(ca, X509_free);
        return fail(rc);
    }
    *key = k;
    *cert = c;
    if (chain)
        *chain = ca;
    else
        sk_X509_pop_free(ca, X509_free);
    return X509UTIL_OK;
}

/* --- keys ---------------------------------------------------------------- */

int x509util_key_supported(const EVP_PKEY *key)
{
    if (!key)
        return X509UTIL_E_INVALID;
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        return (bits == 2048 || bits == 3072 || bits == 4096) ? X509UTIL_OK : X509UTIL_E_KEY;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen) != 1)
            return fail(X509UTIL_E_KEY);
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 || strcmp(group, "secp384r1") == 0 ||
            strcmp(group, "P-384") == 0)
            return X509UTIL_OK;
        return X509UTIL_E_KEY;
    }
    return X509UTIL_E_KEY;
}

int x509util_check_path_order(X509 *const *certs, size_t n, size_t *bad_index)
{
    if (bad_index)
        *bad_index = 0;
    if (!certs)
        return X509UTIL_E_INVALID;
    if (n == 0)
        return X509UTIL_E_ORDER;
    for (size_t i = 0; i < n; i++) {
        if (!certs[i]) {
            if (bad_index)
                *bad_index = i;
            return X509UTIL_E_INVALID;
        }
    }
    for (size_t i = 0; i + 1 < n; i++) {
        EVP_PKEY *issuer_key = X509_get0_pubkey(certs[i + 1]);
        if (X509_check_issued(certs[i + 1], certs[i]) != X509_V_OK || !issuer_key ||
            X509_verify(certs[i], issuer_key) != 1) {
            if (bad_index)
                *bad_index = i;
            return fail(X509UTIL_E_ORDER);
        }
    }
    return X509UTIL_OK;
}

int x509util_public_key_der(const EVP_PKEY *key, unsigned char **der, size_t *der_len)
{
    if (der)
        *der = NULL;
    if (der_len)
        *der_len = 0;
    if (!key || !der || !der_len)
        return X509UTIL_E_INVALID;
    unsigned char *buf = NULL;
    int len = i2d_PUBKEY(key, &buf);
    if (len <= 0)
        return fail(X509UTIL_E_CRYPTO);
    *der = buf;
    *der_len = (size_t)len;
    return X509UTIL_OK;
}

int x509util_cert_der(X509 *cert, unsigned char **der, size_t *der_len)
{
    if (der)
        *der = NULL;
    if (der_len)
        *der_len = 0;
    if (!cert || !der || !der_len)
        return X509UTIL_E_INVALID;
    unsigned char *buf = NULL;
    int len = i2d_X509(cert, &buf);
    if (len <= 0)
        return fail(X509UTIL_E_CRYPTO);
    *der = buf;
    *der_len = (size_t)len;
    return X509UTIL_OK;
}

int x509util_cert_pem(X509 *cert, char **pem, size_t *pem_len)
{
    if (pem)
        *pem = NULL;
    if (pem_len)
        *pem_len = 0;
    if (!cert || !pem || !pem_len)
        return X509UTIL_E_INVALID;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return fail(X509UTIL_E_NOMEM);
    int rc = X509UTIL_E_CRYPTO;
    char *data = NULL;
    if (PEM_write_bio_X509(bio, cert)) {
        long len = BIO_get_mem_data(bio, &data);
        char *copy = len > 0 ? OPENSSL_malloc((size_t)len + 1) : NULL;
        if (len > 0 && !copy) {
            rc = X509UTIL_E_NOMEM;
        } else if (copy) {
            memcpy(copy, data, (size_t)len);
            copy[len] = '\0';
            *pem = copy;
            *pem_len = (size_t)len;
            rc = X509UTIL_OK;
        }
    }
    BIO_free(bio);
    return rc == X509UTIL_OK ? rc : fail(rc);
}

int x509util_private_key_der(EVP_PKEY *key, unsigned char **der, size_t *der_len)
{
    if (der)
        *der = NULL;
    if (der_len)
        *der_len = 0;
    if (!key || !der || !der_len)
        return X509UTIL_E_INVALID;
    if (!has_private(key))
        return X509UTIL_E_KEY;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    if (!p8)
        return fail(X509UTIL_E_CRYPTO);
    unsigned char *buf = NULL;
    int len = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (len <= 0)
        return fail(X509UTIL_E_CRYPTO);
    *der = buf;
    *der_len = (size_t)len;
    return X509UTIL_OK;
}

int x509util_private_key_from_der(const unsigned char *der, size_t len, EVP_PKEY **out)
{
    if (out)
        *out = NULL;
    int rc = check_input(der, len);
    if (rc != X509UTIL_OK || !out)
        return out ? rc : X509UTIL_E_INVALID;
    rc = plain_p8(der, (long)len, out);
    return rc == X509UTIL_OK ? rc : fail(rc);
}

int x509util_generate_rsa(int bits, EVP_PKEY **out)
{
    if (!out)
        return X509UTIL_E_INVALID;
    *out = NULL;
    if (bits != 2048 && bits != 3072 && bits != 4096)
        return X509UTIL_E_KEY;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *e = BN_new();
    int rc = X509UTIL_E_CRYPTO;
    if (ctx && e && BN_set_word(e, 65537) && EVP_PKEY_keygen_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) == 1 && EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) == 1 &&
        EVP_PKEY_generate(ctx, out) == 1)
        rc = X509UTIL_OK;
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
    return rc == X509UTIL_OK ? rc : fail(rc);
}

int x509util_generate_ec(const char *curve, EVP_PKEY **out)
{
    if (!out)
        return X509UTIL_E_INVALID;
    *out = NULL;
    if (!curve)
        return X509UTIL_E_KEY;
    const char *group;
    if (strcmp(curve, "secp256r1") == 0 || strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0)
        group = "P-256";
    else if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0)
        group = "P-384";
    else
        return X509UTIL_E_KEY;
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    return *out ? X509UTIL_OK : fail(X509UTIL_E_CRYPTO);
}
