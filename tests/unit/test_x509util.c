/* Unit tests for x509util: signature algorithm choice, subject attribute and
 * SAN rules with every fault, key generation and the supported-key rule,
 * PKCS#10 requests (checked by OpenSSL and by the openssl CLI), self-signed
 * and issued certificates and their extensions, parsing of certificates,
 * CRLs, plain/encrypted/traditional keys and PKCS#12 with right, wrong and
 * missing passphrases, garbage and oversized input, path order checks and
 * the DER/PEM encoders; password-based encryption limits: only PBKDF2 and
 * the PKCS#12 PBEs, per-item and total iteration budgets, PKCS#12 parts, bags
 * and nesting, each refusal timed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "opennvt/x509util.h"
#include "unit_helpers.h"

#define DAY 86400
#define Y9999 ((time_t)253402300799LL)

/* --- helpers ------------------------------------------------------------- */

static int have_openssl_cli(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = system("command -v openssl >/dev/null 2>&1") == 0;
    if (!cached)
        print_message("openssl CLI not found: skipping the command-line cross-check\n");
    return cached;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(x509util_generate_ec("P-256", &k), X509UTIL_OK);
    assert_non_null(k);
    return k;
}

static EVP_PKEY *rsa_key(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(x509util_generate_rsa(2048, &k), X509UTIL_OK);
    assert_non_null(k);
    return k;
}

/* The public half only, as a parsed SubjectPublicKeyInfo. */
static EVP_PKEY *public_only(EVP_PKEY *k)
{
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(x509util_public_key_der(k, &der, &len), X509UTIL_OK);
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)len);
    assert_non_null(pub);
    OPENSSL_free(der);
    return pub;
}

static X509_NAME *name_cn(const char *cn)
{
    struct x509util_rdn rdn[] = { { "CN", cn }, { "O", "OpenNVT Test" } };
    X509_NAME *n = NULL;
    assert_int_equal(x509util_make_name(rdn, 2, &n, NULL), X509UTIL_OK);
    return n;
}

static X509 *self_signed(EVP_PKEY *k, const char *cn, int is_ca)
{
    X509_NAME *n = name_cn(cn);
    X509 *x = NULL;
    time_t now = time(NULL);
    assert_int_equal(x509util_make_self_signed(k, n, now - 60, now + 365 * DAY, NULL, 0, NULL, 0, is_ca, NULL, &x),
                     X509UTIL_OK);
    X509_NAME_free(n);
    return x;
}

static X509 *issue(EVP_PKEY *subject_key, const char *cn, X509 *ca, EVP_PKEY *ca_key, int is_ca, int server)
{
    X509_NAME *n = name_cn(cn);
    X509 *x = NULL;
    time_t now = time(NULL);
    struct x509util_san san[] = { { X509UTIL_SAN_DNS, "cam.example.com" }, { X509UTIL_SAN_IP, "192.0.2.7" } };
    assert_int_equal(x509util_issue(subject_key, n, ca, ca_key, now - 60, now + 30 * DAY, san, 2, is_ca, server,
                                    NULL, &x),
                     X509UTIL_OK);
    X509_NAME_free(n);
    return x;
}

/* Text of the value of the first attribute with nid, and its ASN.1 type. */
static const char *name_value(X509_NAME *n, int nid, int *type)
{
    static char buf[512];
    int idx = X509_NAME_get_index_by_NID(n, nid, -1);
    assert_true(idx >= 0);
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, idx));
    if (type)
        *type = ASN1_STRING_type(s);
    int len = ASN1_STRING_length(s);
    assert_true(len >= 0 && (size_t)len < sizeof buf);
    memcpy(buf, ASN1_STRING_get0_data(s), (size_t)len);
    buf[len] = '\0';
    return buf;
}

/* The SANs of a certificate as "DNS:x" / "IP:x" strings joined by ",". */
static void san_text(GENERAL_NAMES *names, char *out, size_t max)
{
    out[0] = '\0';
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        char one[128];
        if (gn->type == GEN_DNS) {
            snprintf(one, sizeof one, "DNS:%s", (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
        } else {
            assert_int_equal(gn->type, GEN_IPADD);
            const unsigned char *b = ASN1_STRING_get0_data(gn->d.iPAddress);
            int l = ASN1_STRING_length(gn->d.iPAddress);
            if (l == 4)
                snprintf(one, sizeof one, "IP:%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
            else
                snprintf(one, sizeof one, "IP6:%d", l);
        }
        if (out[0])
            strncat(out, ",", max - strlen(out) - 1);
        strncat(out, one, max - strlen(out) - 1);
    }
}

static void cert_sans(X509 *x, char *out, size_t max)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    san_text(names, out, max);
    GENERAL_NAMES_free(names);
}

/* --- strerror, algorithms ------------------------------------------------ */

static void test_strerror(void **state)
{
    (void)state;
    for (int e = X509UTIL_OK; e >= X509UTIL_E_INVALID; e--)
        assert_string_not_equal(x509util_strerror(e), "unknown error");
    assert_string_equal(x509util_strerror(1), "unknown error");
    assert_string_equal(x509util_strerror(-99), "unknown error");
}

static void test_signature_digest(void **state)
{
    (void)state;
    EVP_PKEY *ec = ec_key(), *rsa = rsa_key();
    const EVP_MD *md = NULL;

    assert_int_equal(x509util_signature_digest(NULL, ec, &md), X509UTIL_OK);
    assert_ptr_equal(md, EVP_sha256());
    assert_int_equal(x509util_signature_digest(NULL, rsa, &md), X509UTIL_OK);
    assert_ptr_equal(md, EVP_sha256());

    struct { const char *oid; int rsa; const EVP_MD *md; } ok[] = {
        { "1.2.840.113549.1.1.11", 1, EVP_sha256() }, { "1.2.840.113549.1.1.12", 1, EVP_sha384() },
        { "1.2.840.113549.1.1.13", 1, EVP_sha512() }, { "1.2.840.10045.4.3.2", 0, EVP_sha256() },
        { "1.2.840.10045.4.3.3", 0, EVP_sha384() },   { "1.2.840.10045.4.3.4", 0, EVP_sha512() },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(x509util_signature_digest(ok[i].oid, ok[i].rsa ? rsa : ec, &md), X509UTIL_OK);
        assert_ptr_equal(md, ok[i].md);
        /* The other key type does not fit. */
        assert_int_equal(x509util_signature_digest(ok[i].oid, ok[i].rsa ? ec : rsa, &md), X509UTIL_E_ALGORITHM);
        assert_null(md);
        /* Without a key only the OID is checked. */
        assert_int_equal(x509util_signature_digest(ok[i].oid, NULL, &md), X509UTIL_OK);
    }
    assert_int_equal(x509util_signature_digest("sha384WithRSAEncryption", rsa, &md), X509UTIL_OK);
    assert_int_equal(x509util_signature_digest("1.2.840.113549.1.1.5", rsa, &md), X509UTIL_E_ALGORITHM); /* SHA-1 */
    assert_int_equal(x509util_signature_digest("1.2.840.113549.1.1.10", rsa, &md), X509UTIL_E_ALGORITHM); /* PSS */
    assert_int_equal(x509util_signature_digest("", rsa, &md), X509UTIL_E_ALGORITHM);
    assert_int_equal(x509util_signature_digest("garbage", ec, &md), X509UTIL_E_ALGORITHM);
    assert_int_equal(x509util_signature_digest(NULL, ec, NULL), X509UTIL_E_INVALID);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

/* --- subjects ------------------------------------------------------------ */

static void test_make_name_valid(void **state)
{
    (void)state;
    char cn64[65], st128[129], cn_e64[129];
    memset(cn64, 'a', 64);
    cn64[64] = '\0';
    memset(st128, 's', 128);
    st128[128] = '\0';
    for (int i = 0; i < 64; i++)
        memcpy(cn_e64 + 2 * i, "\xc3\xa9", 2); /* 64 x U+00E9: 128 bytes, 64 characters */
    cn_e64[128] = '\0';

    struct x509util_rdn rdn[] = {
        { "CN", cn64 },           { "C", "de" },          { "ST", st128 },
        { "L", "M\xc3\xbcnchen" }, { "O", "OpenNVT" },     { "OU", "Cameras" },
        { "serialNumber", "SN-0001" }, { "title", "Camera" }, { "SN", "Doe" },
        { "GN", "Jane" },         { "initials", "JD" },   { "pseudonym", "cam" },
        { "generationQualifier", "III" }, { "dnQualifier", "q1" }, { "2.5.4.3", "by oid" },
        { "1.2.840.113549.1.9.1", "cam@example.com" }, { "1.3.6.1.4.1.99999.7", "private \xe2\x9c\x93" },
    };
    size_t n = sizeof rdn / sizeof rdn[0];
    X509_NAME *name = NULL;
    size_t bad = 99;
    assert_int_equal(x509util_make_name(rdn, n, &name, &bad), X509UTIL_OK);
    assert_non_null(name);
    assert_int_equal(X509_NAME_entry_count(name), (int)n);

    int type = 0;
    assert_string_equal(name_value(name, NID_commonName, &type), cn64);
    assert_int_equal(type, V_ASN1_UTF8STRING);
    assert_string_equal(name_value(name, NID_countryName, &type), "DE");
    assert_int_equal(type, V_ASN1_PRINTABLESTRING);
    assert_string_equal(name_value(name, NID_localityName, &type), "M\xc3\xbcnchen");
    assert_int_equal(type, V_ASN1_UTF8STRING);
    assert_string_equal(name_value(name, NID_serialNumber, &type), "SN-0001");
    assert_int_equal(type, V_ASN1_PRINTABLESTRING);
    assert_string_equal(name_value(name, NID_dnQualifier, &type), "q1");
    assert_int_equal(type, V_ASN1_PRINTABLESTRING);
    assert_string_equal(name_value(name, NID_pkcs9_emailAddress, &type), "cam@example.com");
    assert_int_equal(type, V_ASN1_IA5STRING);
    assert_string_equal(name_value(name, NID_surname, NULL), "Doe");
    assert_string_equal(name_value(name, NID_givenName, NULL), "Jane");
    X509_NAME_free(name);

    /* Characters, not bytes, are counted; a bracketed IPv6 CN is accepted verbatim. */
    struct x509util_rdn wide[] = { { "CN", cn_e64 } };
    assert_int_equal(x509util_make_name(wide, 1, &name, NULL), X509UTIL_OK);
    X509_NAME_free(name);
    struct x509util_rdn v6[] = { { "CN", "[2001:db8::1]" } };
    assert_int_equal(x509util_make_name(v6, 1, &name, NULL), X509UTIL_OK);
    assert_string_equal(name_value(name, NID_commonName, NULL), "[2001:db8::1]");
    X509_NAME_free(name);

    /* X509UTIL_MAX_RDN entries are fine. */
    struct x509util_rdn many[X509UTIL_MAX_RDN];
    for (size_t i = 0; i < X509UTIL_MAX_RDN; i++)
        many[i] = (struct x509util_rdn){ "OU", "unit" };
    assert_int_equal(x509util_make_name(many, X509UTIL_MAX_RDN, &name, NULL), X509UTIL_OK);
    X509_NAME_free(name);
}

static void test_make_name_invalid(void **state)
{
    (void)state;
    char cn65[66], st129[130], o65[66], other129[130], cn_e65[131];
    memset(cn65, 'a', 65);
    cn65[65] = '\0';
    memset(st129, 's', 129);
    st129[129] = '\0';
    memset(o65, 'o', 65);
    o65[65] = '\0';
    memset(other129, 't', 129);
    other129[129] = '\0';
    for (int i = 0; i < 65; i++)
        memcpy(cn_e65 + 2 * i, "\xc3\xa9", 2);
    cn_e65[130] = '\0';

    struct { const char *type; const char *value; } bad[] = {
        { "CN", "" },              { "CN", cn65 },          { "CN", cn_e65 },
        { "C", "USA" },            { "C", "D" },            { "C", "1A" },
        { "C", "\xc3\xa9\xc3\xa9" }, { "ST", st129 },        { "L", st129 },
        { "O", o65 },              { "OU", o65 },           { "title", other129 },
        { "CN", "tab\there" },     { "CN", "nl\n" },        { "CN", "del\x7f" },
        { "CN", "c1\xc2\x85" },    { "CN", "bad\xc3\x28" }, { "CN", "overlong\xc0\xaf" },
        { "CN", "surrogate\xed\xa0\x80" }, { "CN", "big\xf4\x90\x80\x80" }, { "CN", "cut\xe2\x82" },
        { "serialNumber", "caf\xc3\xa9" }, { "serialNumber", "a*b" }, { "dnQualifier", "a@b" },
        { "1.2.840.113549.1.9.1", "caf\xc3\xa9@x" },
        { "XX", "value" },         { "cn", "lower-case type" }, { "2.", "x" },
        { "3.1", "x" },            { "1", "x" },            { "1.02.3", "x" },
        { "1..2", "x" },           { NULL, "x" },           { "CN", NULL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct x509util_rdn rdn[] = { { "O", "fine" }, { bad[i].type, bad[i].value } };
        X509_NAME *name = (X509_NAME *)1;
        size_t idx = 99;
        int rc = x509util_make_name(rdn, 2, &name, &idx);
        if (rc != X509UTIL_E_SUBJECT)
            fail_msg("case %zu (%s=%s): %d", i, bad[i].type ? bad[i].type : "(null)",
                     bad[i].value ? bad[i].value : "(null)", rc);
        assert_null(name);
        assert_int_equal(idx, 1);
    }

    X509_NAME *name = NULL;
    size_t idx = 99;
    assert_int_equal(x509util_make_name(NULL, 1, &name, &idx), X509UTIL_E_SUBJECT);
    struct x509util_rdn one[] = { { "CN", "x" } };
    assert_int_equal(x509util_make_name(one, 0, &name, &idx), X509UTIL_E_SUBJECT);
    assert_int_equal(idx, 0);
    struct x509util_rdn many[X509UTIL_MAX_RDN + 1];
    for (size_t i = 0; i <= X509UTIL_MAX_RDN; i++)
        many[i] = (struct x509util_rdn){ "OU", "unit" };
    assert_int_equal(x509util_make_name(many, X509UTIL_MAX_RDN + 1, &name, &idx), X509UTIL_E_SUBJECT);
    assert_int_equal(idx, X509UTIL_MAX_RDN);
    assert_int_equal(x509util_make_name(one, 1, NULL, &idx), X509UTIL_E_INVALID);
    /* bad_index is optional. */
    struct x509util_rdn empty[] = { { "CN", "" } };
    assert_int_equal(x509util_make_name(empty, 1, &name, NULL), X509UTIL_E_SUBJECT);
    assert_int_equal(ERR_peek_error(), 0);
}

/* --- keys ---------------------------------------------------------------- */

static void test_generate_and_supported(void **state)
{
    (void)state;
    const char *curves256[] = { "secp256r1", "prime256v1", "P-256" };
    const char *curves384[] = { "secp384r1", "P-384" };
    EVP_PKEY *k = NULL;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(x509util_generate_ec(curves256[i], &k), X509UTIL_OK);
        assert_int_equal(EVP_PKEY_get_bits(k), 256);
        assert_int_equal(x509util_key_supported(k), X509UTIL_OK);
        EVP_PKEY_free(k);
    }
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(x509util_generate_ec(curves384[i], &k), X509UTIL_OK);
        assert_int_equal(EVP_PKEY_get_bits(k), 384);
        assert_int_equal(x509util_key_supported(k), X509UTIL_OK);
        EVP_PKEY_free(k);
    }
    k = (EVP_PKEY *)1;
    assert_int_equal(x509util_generate_ec("secp521r1", &k), X509UTIL_E_KEY);
    assert_null(k);
    assert_int_equal(x509util_generate_ec("P-224", &k), X509UTIL_E_KEY);
    assert_int_equal(x509util_generate_ec(NULL, &k), X509UTIL_E_KEY);
    assert_int_equal(x509util_generate_ec("P-256", NULL), X509UTIL_E_INVALID);

    assert_int_equal(x509util_generate_rsa(2048, &k), X509UTIL_OK);
    assert_true(EVP_PKEY_is_a(k, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    BIGNUM *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, "e", &e), 1);
    assert_true(BN_is_word(e, 65537));
    BN_free(e);
    assert_int_equal(x509util_key_supported(k), X509UTIL_OK);
    EVP_PKEY_free(k);
    assert_int_equal(x509util_generate_rsa(3072, &k), X509UTIL_OK);
    assert_int_equal(x509util_key_supported(k), X509UTIL_OK);
    EVP_PKEY_free(k);
    assert_int_equal(x509util_generate_rsa(1024, &k), X509UTIL_E_KEY);
    assert_int_equal(x509util_generate_rsa(2047, &k), X509UTIL_E_KEY);
    assert_int_equal(x509util_generate_rsa(8192, &k), X509UTIL_E_KEY);
    assert_null(k);
    assert_int_equal(x509util_generate_rsa(2048, NULL), X509UTIL_E_INVALID);

    /* Keys made elsewhere that the keystore does not take. */
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    EVP_PKEY *p224 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-224");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(rsa1024);
    assert_non_null(p521);
    assert_non_null(ed);
    assert_int_equal(x509util_key_supported(rsa1024), X509UTIL_E_KEY);
    assert_int_equal(x509util_key_supported(p521), X509UTIL_E_KEY);
    if (p224)
        assert_int_equal(x509util_key_supported(p224), X509UTIL_E_KEY);
    assert_int_equal(x509util_key_supported(ed), X509UTIL_E_KEY);
    assert_int_equal(x509util_key_supported(NULL), X509UTIL_E_INVALID);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(p224);
    EVP_PKEY_free(ed);
}

/* --- PKCS#10 ------------------------------------------------------------- */

/* keyUsage digitalSignature|keyEncipherment as an extnValue. */
static const unsigned char ku_der[] = { 0x03, 0x02, 0x05, 0xa0 };
/* A private extension whose value is UTF8String "hi". */
static const unsigned char private_der[] = { 0x0c, 0x02, 'h', 'i' };

static X509_REQ *parse_req(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_ptr_equal(p, der + len);
    return req;
}

static void check_csr_with_cli(const unsigned char *der, size_t len)
{
    if (!have_openssl_cli())
        return;
    struct temp_dir *t = NULL;
    assert_int_equal(temp_dir_setup((void **)&t), 0);
    char path[PATH_MAX], cmd[PATH_MAX * 2];
    write_file(path_in(path, t->path, "csr.der"), der, len);
    snprintf(cmd, sizeof cmd, "openssl req -verify -in '%s' -inform DER -noout >/dev/null 2>&1", path);
    assert_int_equal(system(cmd), 0);
    void *vt = t;
    temp_dir_teardown(&vt);
}

static void test_csr(void **state)
{
    (void)state;
    EVP_PKEY *ec = ec_key(), *rsa = rsa_key();
    X509_NAME *subject = name_cn("cam-1.example.com");
    struct x509util_san sans[] = {
        { X509UTIL_SAN_DNS, "cam-1.example.com" },
        { X509UTIL_SAN_IP, "192.0.2.1" },
        { X509UTIL_SAN_IP, "2001:db8::1" },
    };
    struct x509util_extension ext[] = {
        { "2.5.29.15", ku_der, sizeof ku_der, 1 },
        { "1.3.6.1.4.1.99999.1", private_der, sizeof private_der, 0 },
    };

    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(x509util_make_csr(ec, subject, sans, 3, ext, 2, NULL, &der, &len), X509UTIL_OK);
    assert_non_null(der);
    X509_REQ *req = parse_req(der, len);
    assert_int_equal(X509_REQ_get_version(req), 0);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(req), subject), 0);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), ec), 1);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 3);
    X509_EXTENSION *e0 = sk_X509_EXTENSION_value(exts, 0);
    assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(e0)), NID_subject_alt_name);
    GENERAL_NAMES *names = X509V3_EXT_d2i(e0);
    char text[256];
    san_text(names, text, sizeof text);
    assert_string_equal(text, "DNS:cam-1.example.com,IP:192.0.2.1,IP6:16");
    GENERAL_NAMES_free(names);
    X509_EXTENSION *e1 = sk_X509_EXTENSION_value(exts, 1);
    assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(e1)), NID_key_usage);
    assert_int_equal(X509_EXTENSION_get_critical(e1), 1);
    X509_EXTENSION *e2 = sk_X509_EXTENSION_value(exts, 2);
    ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e2);
    assert_int_equal(ASN1_STRING_length(v), sizeof private_der);
    assert_memory_equal(ASN1_STRING_get0_data(v), private_der, sizeof private_der);
    assert_int_equal(X509_EXTENSION_get_critical(e2), 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    check_csr_with_cli(der, len);
    OPENSSL_free(der);

    /* RSA with SHA-384, no SANs and no extensions: no extensionRequest. */
    assert_int_equal(x509util_make_csr(rsa, subject, NULL, 0, NULL, 0, EVP_sha384(), &der, &len), X509UTIL_OK);
    req = parse_req(der, len);
    assert_int_equal(X509_REQ_verify(req, rsa), 1);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_sha384WithRSAEncryption);
    exts = X509_REQ_get_extensions(req);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    check_csr_with_cli(der, len);
    OPENSSL_free(der);

    X509_NAME_free(subject);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static void test_csr_faults(void **state)
{
    (void)state;
    EVP_PKEY *ec = ec_key();
    EVP_PKEY *pub = public_only(ec);
    X509_NAME *subject = name_cn("cam");
    unsigned char *der = (unsigned char *)1;
    size_t len = 7;

    assert_int_equal(x509util_make_csr(pub, subject, NULL, 0, NULL, 0, NULL, &der, &len), X509UTIL_E_KEY);
    assert_null(der);
    assert_int_equal(len, 0);
    assert_int_equal(x509util_make_csr(NULL, subject, NULL, 0, NULL, 0, NULL, &der, &len), X509UTIL_E_INVALID);
    assert_int_equal(x509util_make_csr(ec, NULL, NULL, 0, NULL, 0, NULL, &der, &len), X509UTIL_E_INVALID);
    assert_int_equal(x509util_make_csr(ec, subject, NULL, 0, NULL, 0, NULL, NULL, &len), X509UTIL_E_INVALID);

    /* SAN faults. */
    const char *bad_dns[] = {
        "", "-a.example.com", "a-.example.com", "a..b", ".a", "a.", "a_b.example.com", "*.example.com",
        "caf\xc3\xa9.example", "a b", "0123456789012345678901234567890123456789012345678901234567890123.x",
    };
    for (size_t i = 0; i < sizeof bad_dns / sizeof bad_dns[0]; i++) {
        struct x509util_san san = { X509UTIL_SAN_DNS, bad_dns[i] };
        if (x509util_make_csr(ec, subject, &san, 1, NULL, 0, NULL, &der, &len) != X509UTIL_E_SAN)
            fail_msg("DNS SAN \"%s\" accepted", bad_dns[i]);
    }
    char long_name[300] = "";
    for (int i = 0; i < 5; i++)
        strcat(long_name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."); /* 51 each */
    strcat(long_name, "bb"); /* 257 */
    struct x509util_san san_long = { X509UTIL_SAN_DNS, long_name };
    assert_int_equal(x509util_make_csr(ec, subject, &san_long, 1, NULL, 0, NULL, &der, &len), X509UTIL_E_SAN);
    long_name[253] = '\0'; /* 253 characters, last label "aa..." of 49 */
    assert_int_equal(x509util_make_csr(ec, subject, &san_long, 1, NULL, 0, NULL, &der, &len), X509UTIL_OK);
    OPENSSL_free(der);
    char label63[80];
    memset(label63, 'l', 63);
    strcpy(label63 + 63, ".example");
    struct x509util_san san63 = { X509UTIL_SAN_DNS, label63 };
    assert_int_equal(x509util_make_csr(ec, subject, &san63, 1, NULL, 0, NULL, &der, &len), X509UTIL_OK);
    OPENSSL_free(der);

    const char *bad_ip[] = { "", "1.2.3.256", "1.2.3", "::g", "[2001:db8::1]", "fe80::1%eth0", "host" };
    for (size_t i = 0; i < sizeof bad_ip / sizeof bad_ip[0]; i++) {
        struct x509util_san san = { X509UTIL_SAN_IP, bad_ip[i] };
        if (x509util_make_csr(ec, subject, &san, 1, NULL, 0, NULL, &der, &len) != X509UTIL_E_SAN)
            fail_msg("IP SAN \"%s\" accepted", bad_ip[i]);
    }
    struct x509util_san null_value = { X509UTIL_SAN_DNS, NULL };
    assert_int_equal(x509util_make_csr(ec, subject, &null_value, 1, NULL, 0, NULL, &der, &len), X509UTIL_E_SAN);
    struct x509util_san bad_type = { (enum x509util_san_type)7, "a" };
    assert_int_equal(x509util_make_csr(ec, subject, &bad_type, 1, NULL, 0, NULL, &der, &len), X509UTIL_E_SAN);
    struct x509util_san many[X509UTIL_MAX_SAN + 1];
    for (size_t i = 0; i <= X509UTIL_MAX_SAN; i++)
        many[i] = (struct x509util_san){ X509UTIL_SAN_DNS, "a.example" };
    assert_int_equal(x509util_make_csr(ec, subject, many, X509UTIL_MAX_SAN + 1, NULL, 0, NULL, &der, &len),
                     X509UTIL_E_SAN);
    assert_int_equal(x509util_make_csr(ec, subject, NULL, 1, NULL, 0, NULL, &der, &len), X509UTIL_E_SAN);

    /* Extension faults. */
    static const unsigned char trailing[] = { 0x0c, 0x01, 'a', 0x00 };
    static const unsigned char not_der[] = { 0x0c, 0x05, 'a' };
    static const unsigned char int_der[] = { 0x02, 0x01, 0x05 };
    static const unsigned char san_der[] = { 0x30, 0x03, 0x82, 0x01, 'x' };
    struct x509util_extension bad_ext[][2] = {
        { { "not.an.oid", private_der, sizeof private_der, 0 }, { NULL, NULL, 0, 0 } },
        { { NULL, private_der, sizeof private_der, 0 }, { NULL, NULL, 0, 0 } },
        { { "1.3.6.1.4.1.99999.1", NULL, 0, 0 }, { NULL, NULL, 0, 0 } },
        { { "1.3.6.1.4.1.99999.1", private_der, 0, 0 }, { NULL, NULL, 0, 0 } },
        { { "1.3.6.1.4.1.99999.1", trailing, sizeof trailing, 0 }, { NULL, NULL, 0, 0 } },
        { { "1.3.6.1.4.1.99999.1", not_der, sizeof not_der, 0 }, { NULL, NULL, 0, 0 } },
        { { "2.5.29.15", int_der, sizeof int_der, 1 }, { NULL, NULL, 0, 0 } }, /* keyUsage must be a BIT STRING */
    };
    for (size_t i = 0; i < sizeof bad_ext / sizeof bad_ext[0]; i++)
        if (x509util_make_csr(ec, subject, NULL, 0, bad_ext[i], 1, NULL, &der, &len) != X509UTIL_E_MALFORMED)
            fail_msg("extension case %zu accepted", i);
    struct x509util_extension dup[] = {
        { "1.3.6.1.4.1.99999.1", private_der, sizeof private_der, 0 },
        { "1.3.6.1.4.1.99999.1", private_der, sizeof private_der, 0 },
    };
    assert_int_equal(x509util_make_csr(ec, subject, NULL, 0, dup, 2, NULL, &der, &len), X509UTIL_E_MALFORMED);
    assert_int_equal(x509util_make_csr(ec, subject, NULL, 0, NULL, 1, NULL, &der, &len), X509UTIL_E_INVALID);
    /* A subjectAltName both as SANs and as an extension is ambiguous... */
    struct x509util_extension san_ext = { "2.5.29.17", san_der, sizeof san_der, 0 };
    struct x509util_san san_ok = { X509UTIL_SAN_DNS, "a.example" };
    assert_int_equal(x509util_make_csr(ec, subject, &san_ok, 1, &san_ext, 1, NULL, &der, &len), X509UTIL_E_SAN);
    /* ...but alone as an extension it is taken. */
    assert_int_equal(x509util_make_csr(ec, subject, NULL, 0, &san_ext, 1, NULL, &der, &len), X509UTIL_OK);
    OPENSSL_free(der);
    assert_int_equal(ERR_peek_error(), 0);

    X509_NAME_free(subject);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(ec);
}

/* --- certificates -------------------------------------------------------- */

static int ext_critical(X509 *x, int nid)
{
    int idx = X509_get_ext_by_NID(x, nid, -1);
    assert_true(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, idx));
}

static void check_cli_text(X509 *x)
{
    if (!have_openssl_cli())
        return;
    struct temp_dir *t = NULL;
    assert_int_equal(temp_dir_setup((void **)&t), 0);
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(x509util_cert_der(x, &der, &len), X509UTIL_OK);
    char path[PATH_MAX], cmd[PATH_MAX * 2];
    write_file(path_in(path, t->path, "cert.der"), der, len);
    OPENSSL_free(der);
    snprintf(cmd, sizeof cmd, "openssl x509 -inform DER -in '%s' -text -noout >/dev/null 2>&1", path);
    assert_int_equal(system(cmd), 0);
    void *vt = t;
    temp_dir_teardown(&vt);
}

static void test_self_signed(void **state)
{
    (void)state;
    EVP_PKEY *ec = ec_key();
    X509_NAME *subject = name_cn("cam.example.com");
    struct x509util_san sans[] = { { X509UTIL_SAN_DNS, "cam.example.com" }, { X509UTIL_SAN_IP, "192.0.2.9" } };
    time_t now = time(NULL);
    X509 *x = NULL;

    assert_int_equal(x509util_make_self_signed(ec, subject, now - 10, now + DAY, sans, 2, NULL, 0, 0, NULL, &x),
                     X509UTIL_OK);
    assert_int_equal(X509_get_version(x), 2);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), subject), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), subject), 0);
    assert_int_equal(X509_verify(x, ec), 1);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER); /* positive */
    assert_int_equal(ASN1_STRING_length(serial), 16);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), now - 10), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), now + DAY), 0);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(x), X509_get0_authority_key_id(x)), 0);
    assert_int_equal(ext_critical(x, NID_basic_constraints), 1);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_ext_by_NID(x, NID_key_usage, -1), -1);
    char text[256];
    cert_sans(x, text, sizeof text);
    assert_string_equal(text, "DNS:cam.example.com,IP:192.0.2.9");
    check_cli_text(x);

    /* A second one gets another serial. */
    X509 *y = NULL;
    assert_int_equal(x509util_make_self_signed(ec, subject, now - 10, now + DAY, NULL, 0, NULL, 0, 0, NULL, &y),
                     X509UTIL_OK);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)), 0);
    assert_int_equal(X509_get_ext_by_NID(y, NID_subject_alt_name, -1), -1);
    X509_free(y);
    X509_free(x);

    /* A CA, RSA, SHA-512, valid until 9999-12-31T23:59:59Z. */
    EVP_PKEY *rsa = rsa_key();
    assert_int_equal(x509util_make_self_signed(rsa, subject, now, Y9999, NULL, 0, NULL, 0, 1, EVP_sha512(), &x),
                     X509UTIL_OK);
    assert_int_equal(X509_check_ca(x), 1);
    assert_int_equal(ext_critical(x, NID_basic_constraints), 1);
    assert_int_equal(ext_critical(x, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_signature_nid(x), NID_sha512WithRSAEncryption);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), Y9999), 0);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
    check_cli_text(x);
    X509_free(x);

    /* Extensions given by the caller replace the defaults of their type. */
    struct x509util_extension ext[] = { { "2.5.29.15", ku_der, sizeof ku_der, 1 } };
    assert_int_equal(x509util_make_self_signed(ec, subject, now, now + DAY, NULL, 0, ext, 1, 1, NULL, &x),
                     X509UTIL_OK);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_ext_count(x), 4); /* BC, SKI, AKI, KU */
    X509_free(x);

    /* Faults. */
    x = (X509 *)1;
    assert_int_equal(x509util_make_self_signed(ec, subject, now, now, NULL, 0, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_VALIDITY);
    assert_null(x);
    assert_int_equal(x509util_make_self_signed(ec, subject, now, now - 1, NULL, 0, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_VALIDITY);
    assert_int_equal(x509util_make_self_signed(ec, subject, now, Y9999 + 1, NULL, 0, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_VALIDITY);
    assert_int_equal(x509util_make_self_signed(ec, subject, (time_t)-2000000000, now, NULL, 0, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_VALIDITY);
    struct x509util_san bad = { X509UTIL_SAN_IP, "999.1.1.1" };
    assert_int_equal(x509util_make_self_signed(ec, subject, now, now + DAY, &bad, 1, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_SAN);
    struct x509util_extension bad_ext = { "1.3.6.1.4.1.99999.1", ku_der, 1, 0 };
    assert_int_equal(x509util_make_self_signed(ec, subject, now, now + DAY, NULL, 0, &bad_ext, 1, 0, NULL, &x),
                     X509UTIL_E_MALFORMED);
    EVP_PKEY *pub = public_only(ec);
    assert_int_equal(x509util_make_self_signed(pub, subject, now, now + DAY, NULL, 0, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_KEY);
    assert_int_equal(x509util_make_self_signed(NULL, subject, now, now + DAY, NULL, 0, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_INVALID);
    assert_int_equal(x509util_make_self_signed(ec, NULL, now, now + DAY, NULL, 0, NULL, 0, 0, NULL, &x),
                     X509UTIL_E_INVALID);
    assert_int_equal(x509util_make_self_signed(ec, subject, now, now + DAY, NULL, 0, NULL, 0, 0, NULL, NULL),
                     X509UTIL_E_INVALID);
    assert_null(x);
    assert_int_equal(ERR_peek_error(), 0);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    X509_NAME_free(subject);
}

static void verify_with_store(X509 *leaf, X509 *ca)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

static void verify_with_cli(X509 *leaf, X509 *ca)
{
    if (!have_openssl_cli())
        return;
    struct temp_dir *t = NULL;
    assert_int_equal(temp_dir_setup((void **)&t), 0);
    char ca_path[PATH_MAX], leaf_path[PATH_MAX], cmd[PATH_MAX * 3];
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(x509util_cert_pem(ca, &pem, &len), X509UTIL_OK);
    write_file(path_in(ca_path, t->path, "ca.pem"), pem, len);
    OPENSSL_free(pem);
    assert_int_equal(x509util_cert_pem(leaf, &pem, &len), X509UTIL_OK);
    write_file(path_in(leaf_path, t->path, "leaf.pem"), pem, len);
    OPENSSL_free(pem);
    snprintf(cmd, sizeof cmd, "openssl verify -purpose sslserver -CAfile '%s' '%s' >/dev/null 2>&1", ca_path,
             leaf_path);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "openssl x509 -in '%s' -text -noout >/dev/null 2>&1", leaf_path);
    assert_int_equal(system(cmd), 0);
    void *vt = t;
    temp_dir_teardown(&vt);
}

static void test_issue(void **state)
{
    (void)state;
    EVP_PKEY *ca_key = ec_key();
    X509 *ca = self_signed(ca_key, "Test CA", 1);
    EVP_PKEY *leaf_ec = ec_key(), *leaf_rsa = rsa_key();

    X509 *x = issue(leaf_ec, "cam.example.com", ca, ca_key, 0, 1);
    assert_int_equal(X509_get_version(x), 2);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)), 0);
    assert_int_equal(X509_verify(x, ca_key), 1);
    assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(ca)), 0);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(ASN1_STRING_length(X509_get0_serialNumber(x)), 16);
    char text[256];
    cert_sans(x, text, sizeof text);
    assert_string_equal(text, "DNS:cam.example.com,IP:192.0.2.7");
    verify_with_store(x, ca);
    verify_with_cli(x, ca);
    X509_free(x);

    x = issue(leaf_rsa, "cam", ca, ca_key, 0, 1);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    verify_with_store(x, ca);
    X509_free(x);

    /* Without server_auth: no EKU and no keyUsage; as a sub-CA: CA:TRUE. */
    x = issue(leaf_ec, "cam", ca, ca_key, 0, 0);
    assert_int_equal(X509_get_ext_by_NID(x, NID_ext_key_usage, -1), -1);
    assert_int_equal(X509_get_ext_by_NID(x, NID_key_usage, -1), -1);
    X509_free(x);
    X509 *sub = issue(leaf_rsa, "Sub CA", ca, ca_key, 1, 0);
    assert_int_equal(X509_check_ca(sub), 1);
    assert_int_equal(X509_get_key_usage(sub), KU_KEY_CERT_SIGN | KU_CRL_SIGN);

    /* Faults: the issuer must be a CA with its own key. */
    X509_NAME *n = name_cn("cam");
    time_t now = time(NULL);
    X509 *leaf = self_signed(leaf_ec, "not a CA", 0);
    x = (X509 *)1;
    assert_int_equal(x509util_issue(leaf_rsa, n, leaf, leaf_ec, now, now + DAY, NULL, 0, 0, 1, NULL, &x),
                     X509UTIL_E_MISMATCH);
    assert_null(x);
    assert_int_equal(x509util_issue(leaf_rsa, n, ca, leaf_ec, now, now + DAY, NULL, 0, 0, 1, NULL, &x),
                     X509UTIL_E_MISMATCH);
    assert_int_equal(x509util_issue(leaf_rsa, n, ca, ca_key, now + DAY, now, NULL, 0, 0, 1, NULL, &x),
                     X509UTIL_E_VALIDITY);
    struct x509util_san bad = { X509UTIL_SAN_DNS, "bad_name" };
    assert_int_equal(x509util_issue(leaf_rsa, n, ca, ca_key, now, now + DAY, &bad, 1, 0, 1, NULL, &x),
                     X509UTIL_E_SAN);
    assert_int_equal(x509util_issue(NULL, n, ca, ca_key, now, now + DAY, NULL, 0, 0, 1, NULL, &x),
                     X509UTIL_E_INVALID);
    assert_int_equal(x509util_issue(leaf_rsa, n, NULL, ca_key, now, now + DAY, NULL, 0, 0, 1, NULL, &x),
                     X509UTIL_E_INVALID);
    assert_int_equal(ERR_peek_error(), 0);
    X509_NAME_free(n);
    X509_free(leaf);
    X509_free(sub);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_ec);
    EVP_PKEY_free(leaf_rsa);
}

/* --- parsing ------------------------------------------------------------- */

static unsigned char *bio_bytes(BIO *bio, size_t *len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0);
    unsigned char *copy = malloc((size_t)n);
    assert_non_null(copy);
    memcpy(copy, data, (size_t)n);
    *len = (size_t)n;
    return copy;
}

static void test_parse_cert(void **state)
{
    (void)state;
    EVP_PKEY *k = ec_key();
    X509 *x = self_signed(k, "cam", 0);
    unsigned char *der = NULL;
    size_t der_len = 0;
    char *pem = NULL;
    size_t pem_len = 0;
    assert_int_equal(x509util_cert_der(x, &der, &der_len), X509UTIL_OK);
    assert_int_equal(x509util_cert_pem(x, &pem, &pem_len), X509UTIL_OK);
    assert_int_equal(strlen(pem), pem_len);
    assert_true(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);

    X509 *y = NULL;
    assert_int_equal(x509util_parse_cert(der, der_len, &y), X509UTIL_OK);
    assert_int_equal(X509_cmp(x, y), 0);
    X509_free(y);
    assert_int_equal(x509util_parse_cert((unsigned char *)pem, pem_len, &y), X509UTIL_OK);
    assert_int_equal(X509_cmp(x, y), 0);
    X509_free(y);
    /* PEM with text before it, as "openssl x509 -text" writes. */
    char *texty = malloc(pem_len + 64);
    assert_non_null(texty);
    int tl = snprintf(texty, pem_len + 64, "Certificate:\n  some text\n%s", pem);
    assert_int_equal(x509util_parse_cert((unsigned char *)texty, (size_t)tl, &y), X509UTIL_OK);
    X509_free(y);
    free(texty);

    /* Faults. */
    unsigned char *longer = malloc(der_len + 1);
    assert_non_null(longer);
    memcpy(longer, der, der_len);
    longer[der_len] = 0;
    y = (X509 *)1;
    assert_int_equal(x509util_parse_cert(longer, der_len + 1, &y), X509UTIL_E_MALFORMED);
    assert_null(y);
    assert_int_equal(x509util_parse_cert(der, der_len - 1, &y), X509UTIL_E_MALFORMED);
    free(longer);
    static const unsigned char garbage[] = "this is not a certificate";
    assert_int_equal(x509util_parse_cert(garbage, sizeof garbage, &y), X509UTIL_E_MALFORMED);
    static const char bad_pem[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_int_equal(x509util_parse_cert((const unsigned char *)bad_pem, strlen(bad_pem), &y), X509UTIL_E_MALFORMED);
    assert_int_equal(x509util_parse_cert(der, 0, &y), X509UTIL_E_MALFORMED);
    unsigned char *big = calloc(1, X509UTIL_MAX_INPUT + 1);
    assert_non_null(big);
    assert_int_equal(x509util_parse_cert(big, X509UTIL_MAX_INPUT + 1, &y), X509UTIL_E_TOO_LARGE);
    assert_int_equal(x509util_parse_cert(big, X509UTIL_MAX_INPUT, &y), X509UTIL_E_MALFORMED);
    free(big);
    assert_int_equal(x509util_parse_cert(NULL, 10, &y), X509UTIL_E_INVALID);
    assert_int_equal(x509util_parse_cert(der, der_len, NULL), X509UTIL_E_INVALID);
    unsigned char *no_der = (unsigned char *)1;
    size_t no_len = 1;
    assert_int_equal(x509util_cert_der(NULL, &no_der, &no_len), X509UTIL_E_INVALID);
    assert_null(no_der);
    assert_int_equal(x509util_cert_pem(x, NULL, &no_len), X509UTIL_E_INVALID);
    assert_int_equal(ERR_peek_error(), 0);

    OPENSSL_free(der);
    OPENSSL_free(pem);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_parse_crl(void **state)
{
    (void)state;
    EVP_PKEY *k = ec_key();
    X509 *ca = self_signed(k, "CRL CA", 1);
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
    ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    ASN1_INTEGER_set(serial, 42);
    X509_REVOKED_set_serialNumber(r, serial);
    X509_REVOKED_set_revocationDate(r, t);
    assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    assert_true(X509_CRL_sign(crl, k, EVP_sha256()) > 0);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(t);

    unsigned char *der = NULL;
    int der_len = i2d_X509_CRL(crl, &der);
    assert_true(der_len > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_CRL(bio, crl), 1);
    size_t pem_len = 0;
    unsigned char *pem = bio_bytes(bio, &pem_len);
    BIO_free(bio);

    X509_CRL *got = NULL;
    assert_int_equal(x509util_parse_crl(der, (size_t)der_len, &got), X509UTIL_OK);
    assert_int_equal(X509_CRL_verify(got, k), 1);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(got)), 1);
    X509_CRL_free(got);
    assert_int_equal(x509util_parse_crl(pem, pem_len, &got), X509UTIL_OK);
    assert_int_equal(X509_CRL_cmp(crl, got), 0);
    X509_CRL_free(got);

    got = (X509_CRL *)1;
    assert_int_equal(x509util_parse_crl(der, (size_t)der_len - 2, &got), X509UTIL_E_MALFORMED);
    assert_null(got);
    /* A certificate is not a CRL. */
    unsigned char *cert_der = NULL;
    size_t cert_len = 0;
    assert_int_equal(x509util_cert_der(ca, &cert_der, &cert_len), X509UTIL_OK);
    assert_int_equal(x509util_parse_crl(cert_der, cert_len, &got), X509UTIL_E_MALFORMED);
    OPENSSL_free(cert_der);
    static const unsigned char garbage[] = { 0x30, 0x82, 0xff, 0xff, 0x01 };
    assert_int_equal(x509util_parse_crl(garbage, sizeof garbage, &got), X509UTIL_E_MALFORMED);
    unsigned char *big = calloc(1, X509UTIL_MAX_INPUT + 1);
    assert_int_equal(x509util_parse_crl(big, X509UTIL_MAX_INPUT + 1, &got), X509UTIL_E_TOO_LARGE);
    free(big);
    assert_int_equal(x509util_parse_crl(der, 0, &got), X509UTIL_E_MALFORMED);
    assert_int_equal(x509util_parse_crl(der, (size_t)der_len, NULL), X509UTIL_E_INVALID);
    assert_int_equal(ERR_peek_error(), 0);

    OPENSSL_free(der);
    free(pem);
    X509_CRL_free(crl);
    X509_free(ca);
    EVP_PKEY_free(k);
}

static unsigned char *pkcs8_pem(EVP_PKEY *k, const char *pass, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    if (pass)
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, k, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)pass), 1);
    else
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    unsigned char *out = bio_bytes(bio, len);
    BIO_free(bio);
    return out;
}

static unsigned char *pkcs8_der_encrypted(EVP_PKEY *k, const char *pass, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(i2d_PKCS8PrivateKey_bio(bio, k, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)pass), 1);
    unsigned char *out = bio_bytes(bio, len);
    BIO_free(bio);
    return out;
}

static void expect_key(const unsigned char *buf, size_t len, const char *pass, EVP_PKEY *want)
{
    EVP_PKEY *got = NULL;
    int rc = x509util_parse_pkcs8(buf, len, pass, &got);
    if (rc != X509UTIL_OK)
        fail_msg("parse_pkcs8: %s", x509util_strerror(rc));
    assert_int_equal(EVP_PKEY_eq(got, want), 1);
    EVP_PKEY_free(got);
}

static void expect_key_rc(const unsigned char *buf, size_t len, const char *pass, int want_rc)
{
    EVP_PKEY *got = (EVP_PKEY *)1;
    int rc = x509util_parse_pkcs8(buf, len, pass, &got);
    if (rc != want_rc)
        fail_msg("parse_pkcs8: got %s, expected %s", x509util_strerror(rc), x509util_strerror(want_rc));
    assert_null(got);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_parse_pkcs8(void **state)
{
    (void)state;
    EVP_PKEY *ec = ec_key(), *rsa = rsa_key();
    size_t len = 0;

    /* Plain PKCS#8, DER (our own encoder) and PEM. */
    unsigned char *der = NULL;
    assert_int_equal(x509util_private_key_der(ec, &der, &len), X509UTIL_OK);
    expect_key(der, len, NULL, ec);
    expect_key(der, len, "ignored", ec);
    expect_key_rc(der, len - 1, NULL, X509UTIL_E_MALFORMED);
    OPENSSL_clear_free(der, len);
    unsigned char *pem = pkcs8_pem(rsa, NULL, &len);
    assert_non_null(strstr((char *)pem, "BEGIN PRIVATE KEY"));
    expect_key(pem, len, NULL, rsa);
    free(pem);

    /* Encrypted PKCS#8, PEM and DER: right, wrong and missing passphrase. */
    pem = pkcs8_pem(ec, "s3cret pass", &len);
    assert_non_null(strstr((char *)pem, "BEGIN ENCRYPTED PRIVATE KEY"));
    expect_key(pem, len, "s3cret pass", ec);
    expect_key_rc(pem, len, "wrong", X509UTIL_E_PASSPHRASE);
    expect_key_rc(pem, len, "", X509UTIL_E_PASSPHRASE);
    expect_key_rc(pem, len, NULL, X509UTIL_E_PASSPHRASE);
    free(pem);
    der = pkcs8_der_encrypted(rsa, "another", &len);
    expect_key(der, len, "another", rsa);
    expect_key_rc(der, len, "Another", X509UTIL_E_PASSPHRASE);
    expect_key_rc(der, len, NULL, X509UTIL_E_PASSPHRASE);
    free(der);

    /* Traditional PEM, plain and encrypted. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, rsa, NULL, NULL, 0, NULL, NULL), 1);
    pem = bio_bytes(bio, &len);
    BIO_free(bio);
    assert_non_null(strstr((char *)pem, "BEGIN RSA PRIVATE KEY"));
    expect_key(pem, len, NULL, rsa);
    free(pem);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, ec, EVP_aes_128_cbc(), NULL, 0, NULL, "trad"), 1);
    pem = bio_bytes(bio, &len);
    BIO_free(bio);
    assert_non_null(strstr((char *)pem, "BEGIN EC PRIVATE KEY"));
    assert_non_null(strstr((char *)pem, "ENCRYPTED"));
    expect_key(pem, len, "trad", ec);
    expect_key_rc(pem, len, "nope", X509UTIL_E_PASSPHRASE);
    expect_key_rc(pem, len, NULL, X509UTIL_E_PASSPHRASE);
    free(pem);

    /* A certificate ahead of the key in the same PEM text is skipped. */
    X509 *x = self_signed(ec, "cam", 0);
    char *cert_pem = NULL;
    size_t cert_len = 0;
    assert_int_equal(x509util_cert_pem(x, &cert_pem, &cert_len), X509UTIL_OK);
    pem = pkcs8_pem(ec, NULL, &len);
    char *both = malloc(cert_len + len + 1);
    memcpy(both, cert_pem, cert_len);
    memcpy(both + cert_len, pem, len);
    expect_key((unsigned char *)both, cert_len + len, NULL, ec);
    /* Only a certificate: no key. */
    expect_key_rc((unsigned char *)cert_pem, cert_len, NULL, X509UTIL_E_MALFORMED);
    free(both);
    free(pem);
    OPENSSL_free(cert_pem);
    X509_free(x);

    /* Unsupported keys are refused after parsing. */
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    pem = pkcs8_pem(p521, NULL, &len);
    expect_key_rc(pem, len, NULL, X509UTIL_E_KEY);
    free(pem);
    assert_int_equal(x509util_private_key_der(rsa1024, &der, &len), X509UTIL_OK);
    expect_key_rc(der, len, NULL, X509UTIL_E_KEY);
    OPENSSL_clear_free(der, len);
    pem = pkcs8_pem(rsa1024, "pw", &len);
    expect_key_rc(pem, len, "pw", X509UTIL_E_KEY);
    free(pem);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(rsa1024);

    /* An encrypted key asking for an excessive PBKDF2 iteration count is
     * refused before any derivation. */
    unsigned char salt[16] = { 1, 2, 3 };
    X509_ALGOR *pbe = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 50000000, salt, sizeof salt, NULL, NID_hmacWithSHA256);
    assert_non_null(pbe);
    X509_SIG *sig = X509_SIG_new();
    X509_ALGOR *alg = NULL;
    ASN1_OCTET_STRING *digest = NULL;
    X509_SIG_getm(sig, &alg, &digest);
    assert_int_equal(X509_ALGOR_copy(alg, pbe), 1);
    assert_int_equal(ASN1_OCTET_STRING_set(digest, salt, sizeof salt), 1);
    der = NULL;
    int dlen = i2d_X509_SIG(sig, &der);
    assert_true(dlen > 0);
    expect_key_rc(der, (size_t)dlen, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    X509_ALGOR_free(pbe);
    /* The same structure with an ordinary count is tried (and the bogus
     * ciphertext reads as a wrong passphrase), so the count made the difference. */
    pbe = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 2048, salt, sizeof salt, NULL, NID_hmacWithSHA256);
    assert_int_equal(X509_ALGOR_copy(alg, pbe), 1);
    der = NULL;
    dlen = i2d_X509_SIG(sig, &der);
    expect_key_rc(der, (size_t)dlen, "pw", X509UTIL_E_PASSPHRASE);
    OPENSSL_free(der);
    X509_SIG_free(sig);
    X509_ALGOR_free(pbe);

    /* Garbage. */
    static const unsigned char garbage[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
    expect_key_rc(garbage, sizeof garbage, NULL, X509UTIL_E_MALFORMED);
    static const char bad_pem[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    expect_key_rc((const unsigned char *)bad_pem, strlen(bad_pem), NULL, X509UTIL_E_MALFORMED);
    static const char bad_enc[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    expect_key_rc((const unsigned char *)bad_enc, strlen(bad_enc), "x", X509UTIL_E_MALFORMED);
    static const char dsa[] = "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n";
    expect_key_rc((const unsigned char *)dsa, strlen(dsa), NULL, X509UTIL_E_MALFORMED);
    expect_key_rc(garbage, 0, NULL, X509UTIL_E_MALFORMED);
    unsigned char *big = calloc(1, X509UTIL_MAX_INPUT + 1);
    expect_key_rc(big, X509UTIL_MAX_INPUT + 1, NULL, X509UTIL_E_TOO_LARGE);
    free(big);
    EVP_PKEY *k = NULL;
    assert_int_equal(x509util_parse_pkcs8(NULL, 5, NULL, &k), X509UTIL_E_INVALID);
    assert_int_equal(x509util_parse_pkcs8(garbage, sizeof garbage, NULL, NULL), X509UTIL_E_INVALID);

    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static void test_private_and_public_der(void **state)
{
    (void)state;
    EVP_PKEY *ec = ec_key(), *rsa = rsa_key();
    EVP_PKEY *keys[] = { ec, rsa };
    for (size_t i = 0; i < 2; i++) {
        unsigned char *der = NULL;
        size_t len = 0;
        assert_int_equal(x509util_private_key_der(keys[i], &der, &len), X509UTIL_OK);
        /* It is PKCS#8 PrivateKeyInfo. */
        const unsigned char *p = der;
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
        assert_non_null(p8);
        PKCS8_PRIV_KEY_INFO_free(p8);
        EVP_PKEY *back = NULL;
        assert_int_equal(x509util_private_key_from_der(der, len, &back), X509UTIL_OK);
        assert_int_equal(EVP_PKEY_eq(back, keys[i]), 1);
        EVP_PKEY_free(back);
        back = (EVP_PKEY *)1;
        assert_int_equal(x509util_private_key_from_der(der, len - 1, &back), X509UTIL_E_MALFORMED);
        assert_null(back);
        OPENSSL_clear_free(der, len);

        /* Public key DER equals the certificate's. */
        X509 *x = self_signed(keys[i], "k", 0);
        unsigned char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        assert_int_equal(x509util_public_key_der(keys[i], &a, &alen), X509UTIL_OK);
        assert_int_equal(x509util_public_key_der(X509_get0_pubkey(x), &b, &blen), X509UTIL_OK);
        assert_int_equal(alen, blen);
        assert_memory_equal(a, b, alen);
        OPENSSL_free(a);
        OPENSSL_free(b);
        X509_free(x);
    }
    EVP_PKEY *pub = public_only(ec);
    unsigned char *der = (unsigned char *)1;
    size_t len = 5;
    assert_int_equal(x509util_private_key_der(pub, &der, &len), X509UTIL_E_KEY);
    assert_null(der);
    assert_int_equal(len, 0);
    assert_int_equal(x509util_private_key_der(NULL, &der, &len), X509UTIL_E_INVALID);
    assert_int_equal(x509util_public_key_der(NULL, &der, &len), X509UTIL_E_INVALID);
    EVP_PKEY *back = NULL;
    static const unsigned char garbage[] = "garbage";
    assert_int_equal(x509util_private_key_from_der(garbage, sizeof garbage, &back), X509UTIL_E_MALFORMED);
    assert_int_equal(x509util_private_key_from_der(garbage, 0, &back), X509UTIL_E_MALFORMED);
    assert_int_equal(x509util_private_key_from_der(NULL, 3, &back), X509UTIL_E_INVALID);
    assert_int_equal(ERR_peek_error(), 0);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static unsigned char *make_p12(const char *pass, EVP_PKEY *k, X509 *x, STACK_OF(X509) *ca, size_t *len)
{
    PKCS12 *p12 = PKCS12_create(pass, "friendly", k, x, ca, 0, 0, 0, 0, 0);
    assert_non_null(p12);
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    PKCS12_free(p12);
    *len = (size_t)n;
    return der;
}

static void test_parse_pkcs12(void **state)
{
    (void)state;
    EVP_PKEY *ca_key = ec_key(), *leaf_key = ec_key();
    X509 *ca = self_signed(ca_key, "P12 CA", 1);
    X509 *leaf = issue(leaf_key, "cam", ca, ca_key, 0, 1);
    STACK_OF(X509) *chain_in = sk_X509_new_null();
    assert_int_equal(sk_X509_push(chain_in, ca), 1);

    size_t len = 0;
    unsigned char *der = make_p12("p12 pass", leaf_key, leaf, chain_in, &len);
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(x509util_parse_pkcs12(der, len, "p12 pass", &k, &c, &chain), X509UTIL_OK);
    assert_int_equal(EVP_PKEY_eq(k, leaf_key), 1);
    assert_int_equal(X509_cmp(c, leaf), 0);
    assert_int_equal(sk_X509_num(chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), ca), 0);
    EVP_PKEY_free(k);
    X509_free(c);
    sk_X509_pop_free(chain, X509_free);
    /* The chain is optional. */
    assert_int_equal(x509util_parse_pkcs12(der, len, "p12 pass", &k, &c, NULL), X509UTIL_OK);
    EVP_PKEY_free(k);
    X509_free(c);

    k = (EVP_PKEY *)1;
    c = (X509 *)1;
    chain = (STACK_OF(X509) *)1;
    assert_int_equal(x509util_parse_pkcs12(der, len, "wrong", &k, &c, &chain), X509UTIL_E_PASSPHRASE);
    assert_null(k);
    assert_null(c);
    assert_null(chain);
    assert_int_equal(x509util_parse_pkcs12(der, len, NULL, &k, &c, &chain), X509UTIL_E_PASSPHRASE);
    assert_int_equal(x509util_parse_pkcs12(der, len, "", &k, &c, &chain), X509UTIL_E_PASSPHRASE);
    assert_int_equal(x509util_parse_pkcs12(der, len - 1, "p12 pass", &k, &c, &chain), X509UTIL_E_MALFORMED);
    assert_int_equal(ERR_peek_error(), 0);
    OPENSSL_free(der);

    /* Empty passphrase: NULL and "" both open it; no CA certificates gives an empty chain. */
    der = make_p12("", leaf_key, leaf, NULL, &len);
    assert_int_equal(x509util_parse_pkcs12(der, len, NULL, &k, &c, &chain), X509UTIL_OK);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 0);
    EVP_PKEY_free(k);
    X509_free(c);
    sk_X509_free(chain);
    assert_int_equal(x509util_parse_pkcs12(der, len, "", &k, &c, &chain), X509UTIL_OK);
    EVP_PKEY_free(k);
    X509_free(c);
    sk_X509_free(chain);
    assert_int_equal(x509util_parse_pkcs12(der, len, "x", &k, &c, &chain), X509UTIL_E_PASSPHRASE);
    OPENSSL_free(der);

    /* Certificates only, no key. */
    der = make_p12("pw", NULL, leaf, NULL, &len);
    assert_int_equal(x509util_parse_pkcs12(der, len, "pw", &k, &c, &chain), X509UTIL_E_MALFORMED);
    OPENSSL_free(der);

    /* An unsupported key. */
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    X509 *x521 = self_signed(p521, "p521", 0);
    der = make_p12("pw", p521, x521, NULL, &len);
    assert_int_equal(x509util_parse_pkcs12(der, len, "pw", &k, &c, &chain), X509UTIL_E_KEY);
    OPENSSL_free(der);
    X509_free(x521);
    EVP_PKEY_free(p521);

    /* Garbage, size and argument faults. */
    static const unsigned char garbage[] = { 0x30, 0x03, 0x02, 0x01, 0x03 };
    assert_int_equal(x509util_parse_pkcs12(garbage, sizeof garbage, "pw", &k, &c, &chain), X509UTIL_E_MALFORMED);
    assert_int_equal(x509util_parse_pkcs12(garbage, 0, "pw", &k, &c, &chain), X509UTIL_E_MALFORMED);
    unsigned char *big = calloc(1, X509UTIL_MAX_INPUT + 1);
    assert_int_equal(x509util_parse_pkcs12(big, X509UTIL_MAX_INPUT + 1, "pw", &k, &c, &chain),
                     X509UTIL_E_TOO_LARGE);
    free(big);
    assert_int_equal(x509util_parse_pkcs12(garbage, sizeof garbage, "pw", NULL, &c, &chain), X509UTIL_E_INVALID);
    assert_int_equal(x509util_parse_pkcs12(garbage, sizeof garbage, "pw", &k, NULL, &chain), X509UTIL_E_INVALID);
    assert_int_equal(ERR_peek_error(), 0);

    sk_X509_free(chain_in);
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
}

/* --- password-based encryption costs ------------------------------------ */

static double seconds_now(void)
{
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An EncryptedPrivateKeyInfo with alg (taken over) and bogus ciphertext, DER. */
static unsigned char *sig_with_alg(X509_ALGOR *alg, size_t *len)
{
    assert_non_null(alg);
    X509_SIG *sig = X509_SIG_new();
    X509_ALGOR *a = NULL;
    ASN1_OCTET_STRING *digest = NULL;
    X509_SIG_getm(sig, &a, &digest);
    assert_int_equal(X509_ALGOR_copy(a, alg), 1);
    static const unsigned char junk[32] = { 9, 8, 7 };
    assert_int_equal(ASN1_OCTET_STRING_set(digest, junk, sizeof junk), 1);
    unsigned char *der = NULL;
    int n = i2d_X509_SIG(sig, &der);
    assert_true(n > 0);
    X509_SIG_free(sig);
    X509_ALGOR_free(alg);
    *len = (size_t)n;
    return der;
}

/* parse_pkcs8 refuses (with want_rc) in well under 2 seconds. */
static void expect_key_rc_quickly(const unsigned char *buf, size_t len, const char *pass, int want_rc)
{
    double t0 = seconds_now();
    expect_key_rc(buf, len, pass, want_rc);
    double took = seconds_now() - t0;
    if (took >= 2.0)
        fail_msg("refusal took %.2f s", took);
}

static void test_pkcs8_pbe_schemes(void **state)
{
    (void)state;
    unsigned char salt[16] = { 4, 5, 6 }, iv[16] = { 0 };
    size_t len = 0;
    unsigned char *der;

    /* scrypt, with parameters that would pin a CPU for minutes: refused at once. */
    der = sig_with_alg(PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof salt, iv, 16384, 8, 8192), &len);
    expect_key_rc_quickly(der, len, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    /* Also with cheap parameters: the scheme itself is refused. */
    der = sig_with_alg(PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof salt, iv, 1024, 8, 1), &len);
    expect_key_rc_quickly(der, len, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    /* PKCS#5 v1 PBE. */
    der = sig_with_alg(PKCS5_pbe_set(NID_pbeWithMD5AndDES_CBC, 2048, salt, 8), &len);
    expect_key_rc_quickly(der, len, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    /* PBKDF2 with an unusual PRF. */
    der = sig_with_alg(PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 2048, salt, sizeof salt, NULL, NID_hmacWithMD5), &len);
    expect_key_rc_quickly(der, len, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    /* No encryption scheme at all (a digest OID with PBE-like parameters). */
    X509_ALGOR *bogus = PKCS5_pbe_set(NID_pbe_WithSHA1And3_Key_TripleDES_CBC, 2048, salt, 8);
    assert_non_null(bogus);
    ASN1_OBJECT_free(bogus->algorithm);
    bogus->algorithm = OBJ_nid2obj(NID_sha256);
    der = sig_with_alg(bogus, &len);
    expect_key_rc_quickly(der, len, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    /* A zero iteration count (PKCS5_pbe_set would make 0 the default). */
    PBEPARAM *pp = PBEPARAM_new();
    assert_non_null(pp);
    assert_int_equal(ASN1_INTEGER_set(pp->iter, 0), 1);
    assert_int_equal(ASN1_OCTET_STRING_set(pp->salt, salt, 8), 1);
    X509_ALGOR *zero = X509_ALGOR_new();
    ASN1_STRING *packed = ASN1_item_pack(pp, ASN1_ITEM_rptr(PBEPARAM), NULL);
    assert_non_null(packed);
    assert_int_equal(X509_ALGOR_set0(zero, OBJ_nid2obj(NID_pbe_WithSHA1And3_Key_TripleDES_CBC), V_ASN1_SEQUENCE,
                                     packed),
                     1);
    PBEPARAM_free(pp);
    der = sig_with_alg(zero, &len);
    expect_key_rc_quickly(der, len, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);

    /* Accepted schemes get as far as decrypting (the bogus ciphertext then
     * reads as a wrong passphrase). */
    int prfs[] = { NID_hmacWithSHA1, NID_hmacWithSHA256, NID_hmacWithSHA384, NID_hmacWithSHA512 };
    for (size_t i = 0; i < sizeof prfs / sizeof prfs[0]; i++) {
        der = sig_with_alg(PKCS5_pbe2_set_iv(EVP_aes_128_cbc(), 2048, salt, sizeof salt, NULL, prfs[i]), &len);
        expect_key_rc(der, len, "pw", X509UTIL_E_PASSPHRASE);
        OPENSSL_free(der);
    }
    der = sig_with_alg(PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 1000000, salt, sizeof salt, NULL, NID_hmacWithSHA256),
                       &len);
    /* 1,000,000 is the per-item limit: tried (and the bogus ciphertext fails), refused only past it. */
    expect_key_rc(der, len, "pw", X509UTIL_E_PASSPHRASE);
    OPENSSL_free(der);
    der = sig_with_alg(PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 1000001, salt, sizeof salt, NULL, NID_hmacWithSHA256),
                       &len);
    expect_key_rc_quickly(der, len, "pw", X509UTIL_E_MALFORMED);
    OPENSSL_free(der);

    /* A real key under a PKCS#12 PBE scheme (pbeWithSHAAnd3-KeyTripleDES-CBC) opens. */
    EVP_PKEY *ec = ec_key();
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey_nid(bio, ec, NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NULL, 0,
                                                       NULL, (void *)"3des"),
                     1);
    unsigned char *pem = bio_bytes(bio, &len);
    BIO_free(bio);
    expect_key(pem, len, "3des", ec);
    expect_key_rc(pem, len, "des3", X509UTIL_E_PASSPHRASE);
    free(pem);

    /* A real scrypt-encrypted key made by the openssl CLI is refused quickly. */
    if (have_openssl_cli()) {
        struct temp_dir *t = NULL;
        assert_int_equal(temp_dir_setup((void **)&t), 0);
        char in[PATH_MAX], out[PATH_MAX], cmd[PATH_MAX * 3];
        pem = pkcs8_pem(ec, NULL, &len);
        write_file(path_in(in, t->path, "key.pem"), pem, len);
        free(pem);
        snprintf(cmd, sizeof cmd,
                 "openssl pkcs8 -topk8 -scrypt -in '%s' -out '%s' -passout pass:scrypted >/dev/null 2>&1", in,
                 path_in(out, t->path, "scrypt.pem"));
        assert_int_equal(system(cmd), 0);
        char *text = read_text_file(out);
        assert_non_null(text);
        assert_non_null(strstr(text, "BEGIN ENCRYPTED PRIVATE KEY"));
        expect_key_rc_quickly((unsigned char *)text, strlen(text), "scrypted", X509UTIL_E_MALFORMED);
        free(text);
        void *vt = t;
        temp_dir_teardown(&vt);
    }
    EVP_PKEY_free(ec);
}

/* PKCS#12 built bag by bag, so that keys can sit in encrypted parts or in
 * nested safeContents, and so that iteration counts can be declared without
 * paying for them (the refusals must come before any derivation). */

#define P12_PASS "p12 pass"

/* Replaces alg's content with PBES2/PBKDF2-SHA256/AES-256-CBC at iter. */
static void set_pbes2(X509_ALGOR *alg, int iter)
{
    unsigned char salt[16] = { 1 };
    X509_ALGOR *pbe = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), iter, salt, sizeof salt, NULL, NID_hmacWithSHA256);
    assert_non_null(pbe);
    assert_int_equal(X509_ALGOR_copy(alg, pbe), 1);
    X509_ALGOR_free(pbe);
}

/* A shrouded key bag really encrypted with iter iterations. */
static PKCS12_SAFEBAG *real_shrouded_bag(EVP_PKEY *k, int iter)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    assert_non_null(p8);
    PKCS12_SAFEBAG *bag = PKCS12_SAFEBAG_create_pkcs8_encrypt(NID_aes_256_cbc, P12_PASS, -1, NULL, 0, iter, p8);
    assert_non_null(bag);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return bag;
}

static PKCS12_SAFEBAG *dup_bag(const PKCS12_SAFEBAG *bag)
{
    PKCS12_SAFEBAG *copy = ASN1_item_dup(ASN1_ITEM_rptr(PKCS12_SAFEBAG), bag);
    assert_non_null(copy);
    return copy;
}

/* A shrouded key bag: really encrypted with 2048 iterations; when declared
 * differs, the algorithm is replaced by one asking for declared (and the
 * key no longer decrypts, which the refusal must not need to find out). */
static PKCS12_SAFEBAG *shrouded_bag(EVP_PKEY *k, int declared)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    assert_non_null(p8);
    X509_SIG *sig = PKCS8_encrypt(-1, EVP_aes_256_cbc(), P12_PASS, -1, NULL, 0, 2048, p8);
    assert_non_null(sig);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (declared != 2048) {
        X509_ALGOR *alg = NULL;
        X509_SIG_getm(sig, &alg, NULL);
        set_pbes2(alg, declared);
    }
    PKCS12_SAFEBAG *bag = PKCS12_SAFEBAG_create0_pkcs8(sig);
    assert_non_null(bag);
    return bag;
}

static PKCS12_SAFEBAG *cert_bag(X509 *x)
{
    PKCS12_SAFEBAG *bag = PKCS12_SAFEBAG_create_cert(x);
    assert_non_null(bag);
    return bag;
}

static STACK_OF(PKCS12_SAFEBAG) *bags_of(PKCS12_SAFEBAG *a, PKCS12_SAFEBAG *b)
{
    STACK_OF(PKCS12_SAFEBAG) *sk = sk_PKCS12_SAFEBAG_new_null();
    assert_non_null(sk);
    if (a)
        assert_true(sk_PKCS12_SAFEBAG_push(sk, a) > 0);
    if (b)
        assert_true(sk_PKCS12_SAFEBAG_push(sk, b) > 0);
    return sk;
}

static size_t der_header(unsigned char tag, size_t len, unsigned char *out)
{
    out[0] = tag;
    if (len < 0x80) {
        out[1] = (unsigned char)len;
        return 2;
    }
    assert_true(len < 0x10000);
    out[1] = 0x82;
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)len;
    return 4;
}

/* A safeContentsBag holding inner (freed). OpenSSL has no constructor for
 * one, so it is encoded by hand: SEQUENCE { OID, [0] EXPLICIT SafeContents }. */
static PKCS12_SAFEBAG *nested_bag(STACK_OF(PKCS12_SAFEBAG) *inner)
{
    static const unsigned char oid[] = { 0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x06 };
    unsigned char *content = NULL;
    int clen = ASN1_item_i2d((const ASN1_VALUE *)inner, &content, ASN1_ITEM_rptr(PKCS12_SAFEBAGS));
    assert_true(clen > 0);
    sk_PKCS12_SAFEBAG_pop_free(inner, PKCS12_SAFEBAG_free);
    unsigned char h0[4], h1[4];
    size_t n0 = der_header(0xa0, (size_t)clen, h0);
    size_t body = sizeof oid + n0 + (size_t)clen;
    size_t n1 = der_header(0x30, body, h1);
    unsigned char *der = malloc(n1 + body), *w = der;
    assert_non_null(der);
    memcpy(w, h1, n1);
    w += n1;
    memcpy(w, oid, sizeof oid);
    w += sizeof oid;
    memcpy(w, h0, n0);
    w += n0;
    memcpy(w, content, (size_t)clen);
    OPENSSL_free(content);
    const unsigned char *p = der;
    PKCS12_SAFEBAG *bag = d2i_PKCS12_SAFEBAG(NULL, &p, (long)(n1 + body));
    assert_non_null(bag);
    assert_ptr_equal(p, der + n1 + body);
    assert_int_equal(PKCS12_SAFEBAG_get_nid(bag), NID_safeContentsBag);
    free(der);
    return bag;
}

/* A part holding bags (freed): plain when enc_iter is 0, else encrypted
 * with 2048 iterations, declaring enc_iter. */
static PKCS7 *part_of(STACK_OF(PKCS12_SAFEBAG) *bags, int enc_iter)
{
    PKCS7 *p7;
    if (enc_iter == 0) {
        p7 = PKCS12_pack_p7data(bags);
    } else {
        p7 = PKCS12_pack_p7encdata(NID_aes_256_cbc, P12_PASS, -1, NULL, 0, 2048, bags);
        assert_non_null(p7);
        if (enc_iter != 2048)
            set_pbes2(p7->d.encrypted->enc_data->algorithm, enc_iter);
    }
    assert_non_null(p7);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    return p7;
}

/* DER PKCS#12 of the parts (freed), MAC'd with mac_iter iterations (0: no
 * MAC); mac_real 0 only declares the count (the MAC value is not computed). */
static unsigned char *p12_of(STACK_OF(PKCS7) *parts, int mac_iter, int mac_real, size_t *len)
{
    PKCS12 *p12 = PKCS12_add_safes(parts, 0);
    assert_non_null(p12);
    sk_PKCS7_pop_free(parts, PKCS7_free);
    if (mac_iter && mac_real)
        assert_int_equal(PKCS12_set_mac(p12, P12_PASS, -1, NULL, 0, mac_iter, EVP_sha256()), 1);
    else if (mac_iter)
        assert_int_equal(PKCS12_setup_mac(p12, mac_iter, NULL, 0, EVP_sha256()), 1);
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    assert_true(n <= X509UTIL_MAX_INPUT);
    PKCS12_free(p12);
    *len = (size_t)n;
    return der;
}

static STACK_OF(PKCS7) *parts_of(PKCS7 *a, PKCS7 *b)
{
    STACK_OF(PKCS7) *sk = sk_PKCS7_new_null();
    assert_non_null(sk);
    if (a)
        assert_true(sk_PKCS7_push(sk, a) > 0);
    if (b)
        assert_true(sk_PKCS7_push(sk, b) > 0);
    return sk;
}

static void expect_p12(const unsigned char *der, size_t len, EVP_PKEY *want_key, X509 *want_cert)
{
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc = x509util_parse_pkcs12(der, len, P12_PASS, &k, &c, &chain);
    if (rc != X509UTIL_OK)
        fail_msg("parse_pkcs12: %s", x509util_strerror(rc));
    assert_int_equal(EVP_PKEY_eq(k, want_key), 1);
    assert_int_equal(X509_cmp(c, want_cert), 0);
    EVP_PKEY_free(k);
    X509_free(c);
    sk_X509_pop_free(chain, X509_free);
    assert_int_equal(ERR_peek_error(), 0);
}

/* Refused with want_rc within 2 seconds. */
static void expect_p12_rc_quickly(const unsigned char *der, size_t len, int want_rc)
{
    EVP_PKEY *k = (EVP_PKEY *)1;
    X509 *c = (X509 *)1;
    STACK_OF(X509) *chain = (STACK_OF(X509) *)1;
    double t0 = seconds_now();
    int rc = x509util_parse_pkcs12(der, len, P12_PASS, &k, &c, &chain);
    double took = seconds_now() - t0;
    if (rc != want_rc)
        fail_msg("parse_pkcs12: got %s, expected %s", x509util_strerror(rc), x509util_strerror(want_rc));
    if (took >= 2.0)
        fail_msg("refusal took %.2f s", took);
    assert_null(k);
    assert_null(c);
    assert_null(chain);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_pkcs12_costs(void **state)
{
    (void)state;
    EVP_PKEY *k = ec_key();
    X509 *x = self_signed(k, "p12 costs", 0);
    size_t len = 0;
    unsigned char *der;

    /* Ordinary PKCS#12: AES-256-CBC with 2048 iterations, and the legacy
     * pbeWithSHAAnd3-KeyTripleDES-CBC. */
    PKCS12 *p12 = PKCS12_create(P12_PASS, "n", k, x, NULL, NID_aes_256_cbc, NID_aes_256_cbc, 2048, 2048, 0);
    assert_non_null(p12);
    der = NULL;
    len = (size_t)i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    expect_p12(der, len, k, x);
    OPENSSL_free(der);
    p12 = PKCS12_create(P12_PASS, "n", k, x, NULL, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                        NID_pbe_WithSHA1And3_Key_TripleDES_CBC, 2048, 2048, 0);
    assert_non_null(p12);
    der = NULL;
    len = (size_t)i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    expect_p12(der, len, k, x);
    OPENSSL_free(der);

    /* The key in an encrypted part, and in nested safeContents inside one: found. */
    der = p12_of(parts_of(part_of(bags_of(shrouded_bag(k, 2048), cert_bag(x)), 2048), NULL), 2048, 1, &len);
    expect_p12(der, len, k, x);
    OPENSSL_free(der);
    der = p12_of(parts_of(part_of(bags_of(nested_bag(bags_of(shrouded_bag(k, 2048), NULL)), NULL), 2048),
                          part_of(bags_of(cert_bag(x), NULL), 0)),
                 2048, 1, &len);
    expect_p12(der, len, k, x);
    OPENSSL_free(der);
    /* Without a MAC: opened with no passphrase; with one, refused as
     * PKCS12_parse refuses it (it insists on a MAC then). */
    p12 = PKCS12_create(NULL, "n", k, x, NULL, NID_aes_256_cbc, NID_aes_256_cbc, 2048, -1, 0);
    assert_non_null(p12);
    assert_int_equal(PKCS12_mac_present(p12), 0);
    der = NULL;
    len = (size_t)i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    EVP_PKEY *got = NULL;
    X509 *got_cert = NULL;
    assert_int_equal(x509util_parse_pkcs12(der, len, NULL, &got, &got_cert, NULL), X509UTIL_OK);
    assert_int_equal(EVP_PKEY_eq(got, k), 1);
    EVP_PKEY_free(got);
    X509_free(got_cert);
    OPENSSL_free(der);
    der = p12_of(parts_of(part_of(bags_of(shrouded_bag(k, 2048), cert_bag(x)), 2048), NULL), 0, 0, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_PASSPHRASE);
    OPENSSL_free(der);

    /* A shrouded key bag really encrypted with 3,000,000 iterations inside an
     * encrypted part: PKCS12_parse would decrypt it whatever the count (and
     * the file would open); refused before that. */
    PKCS12_SAFEBAG *costly = real_shrouded_bag(k, 3000000);
    der = p12_of(parts_of(part_of(bags_of(dup_bag(costly), cert_bag(x)), 2048), NULL), 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    /* The same in nested safeContents, in a plain part and in an encrypted one. */
    der = p12_of(parts_of(part_of(bags_of(nested_bag(bags_of(dup_bag(costly), NULL)), cert_bag(x)), 0), NULL), 2048,
                 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    der = p12_of(parts_of(part_of(bags_of(nested_bag(bags_of(dup_bag(costly), NULL)), cert_bag(x)), 2048), NULL),
                 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    PKCS12_SAFEBAG_free(costly);
    /* Declared only (the bag would not even decrypt): refused the same. */
    der = p12_of(parts_of(part_of(bags_of(shrouded_bag(k, 3000000), cert_bag(x)), 2048), NULL), 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    /* An encrypted part, or the MAC, asking for too much. */
    der = p12_of(parts_of(part_of(bags_of(shrouded_bag(k, 2048), cert_bag(x)), 3000000), NULL), 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    der = p12_of(parts_of(part_of(bags_of(shrouded_bag(k, 2048), cert_bag(x)), 2048), NULL), 3000000, 0, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);

    /* Each item within the per-item limit, but together over the budget:
     * three key bags of 700,000; MAC, encrypted part and key bag of 700,000. */
    STACK_OF(PKCS12_SAFEBAG) *three = bags_of(shrouded_bag(k, 700000), shrouded_bag(k, 700000));
    assert_true(sk_PKCS12_SAFEBAG_push(three, shrouded_bag(k, 700000)) > 0);
    der = p12_of(parts_of(part_of(three, 0), part_of(bags_of(cert_bag(x), NULL), 0)), 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    der = p12_of(parts_of(part_of(bags_of(shrouded_bag(k, 700000), NULL), 0),
                          part_of(bags_of(cert_bag(x), NULL), 700000)),
                 700000, 0, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);

    /* scrypt in a key bag or an encrypted part. */
    unsigned char salt[16] = { 7 }, iv[16] = { 0 };
    PKCS12_SAFEBAG *sbag = shrouded_bag(k, 2048);
    X509_ALGOR *alg = NULL;
    X509_SIG_getm((X509_SIG *)PKCS12_SAFEBAG_get0_pkcs8(sbag), &alg, NULL);
    X509_ALGOR *scrypt = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof salt, iv, 16384, 8, 8192);
    assert_non_null(scrypt);
    assert_int_equal(X509_ALGOR_copy(alg, scrypt), 1);
    der = p12_of(parts_of(part_of(bags_of(sbag, cert_bag(x)), 2048), NULL), 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    PKCS7 *p7 = part_of(bags_of(shrouded_bag(k, 2048), cert_bag(x)), 2048);
    assert_int_equal(X509_ALGOR_copy(p7->d.encrypted->enc_data->algorithm, scrypt), 1);
    der = p12_of(parts_of(p7, NULL), 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);
    X509_ALGOR_free(scrypt);

    /* Nesting: the key four levels down is found, five levels down refused. */
    STACK_OF(PKCS12_SAFEBAG) *deep = bags_of(shrouded_bag(k, 2048), NULL);
    for (int i = 0; i < 3; i++)
        deep = bags_of(nested_bag(deep), NULL);
    assert_true(sk_PKCS12_SAFEBAG_push(deep, cert_bag(x)) > 0);
    der = p12_of(parts_of(part_of(deep, 2048), NULL), 2048, 1, &len);
    expect_p12(der, len, k, x);
    OPENSSL_free(der);
    deep = bags_of(shrouded_bag(k, 2048), NULL);
    for (int i = 0; i < 4; i++)
        deep = bags_of(nested_bag(deep), NULL);
    assert_true(sk_PKCS12_SAFEBAG_push(deep, cert_bag(x)) > 0);
    der = p12_of(parts_of(part_of(deep, 2048), NULL), 2048, 1, &len);
    expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
    OPENSSL_free(der);

    /* 64 bags are fine, 65 are not (nested ones count). */
    for (int total = 64; total <= 65; total++) {
        STACK_OF(PKCS12_SAFEBAG) *many = bags_of(shrouded_bag(k, 2048), NULL);
        STACK_OF(PKCS12_SAFEBAG) *inner = bags_of(NULL, NULL);
        for (int i = 0; i < 10; i++)
            assert_true(sk_PKCS12_SAFEBAG_push(inner, cert_bag(x)) > 0);
        assert_true(sk_PKCS12_SAFEBAG_push(many, nested_bag(inner)) > 0);
        while (sk_PKCS12_SAFEBAG_num(many) + 10 < total)
            assert_true(sk_PKCS12_SAFEBAG_push(many, cert_bag(x)) > 0);
        der = p12_of(parts_of(part_of(many, 0), NULL), 2048, 1, &len);
        if (total == 64)
            expect_p12(der, len, k, x);
        else
            expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
        OPENSSL_free(der);
    }

    /* 16 parts are fine, 17 are not. */
    for (int total = 16; total <= 17; total++) {
        STACK_OF(PKCS7) *parts = parts_of(part_of(bags_of(shrouded_bag(k, 2048), NULL), 0), NULL);
        while (sk_PKCS7_num(parts) < total)
            assert_true(sk_PKCS7_push(parts, part_of(bags_of(cert_bag(x), NULL), 0)) > 0);
        der = p12_of(parts, 2048, 1, &len);
        if (total == 16)
            expect_p12(der, len, k, x);
        else
            expect_p12_rc_quickly(der, len, X509UTIL_E_MALFORMED);
        OPENSSL_free(der);
    }

    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_path_order(void **state)
{
    (void)state;
    EVP_PKEY *root_key = ec_key(), *inter_key = ec_key(), *leaf_key = ec_key(), *other_key = ec_key();
    X509 *root = self_signed(root_key, "Root", 1);
    X509 *inter = issue(inter_key, "Intermediate", root, root_key, 1, 0);
    X509 *leaf = issue(leaf_key, "Leaf", inter, inter_key, 0, 1);
    /* Same name as the root, other key: the names match, the signature does not. */
    X509 *fake_root = self_signed(other_key, "Root", 1);
    size_t bad = 99;

    X509 *ok[] = { leaf, inter, root };
    assert_int_equal(x509util_check_path_order(ok, 3, &bad), X509UTIL_OK);
    assert_int_equal(bad, 0);
    assert_int_equal(x509util_check_path_order(ok, 2, &bad), X509UTIL_OK);
    assert_int_equal(x509util_check_path_order(ok, 1, &bad), X509UTIL_OK);
    assert_int_equal(x509util_check_path_order(ok, 3, NULL), X509UTIL_OK);

    X509 *reversed[] = { root, inter, leaf };
    assert_int_equal(x509util_check_path_order(reversed, 3, &bad), X509UTIL_E_ORDER);
    assert_int_equal(bad, 0);
    X509 *gap[] = { leaf, root };
    assert_int_equal(x509util_check_path_order(gap, 2, &bad), X509UTIL_E_ORDER);
    assert_int_equal(bad, 0);
    X509 *wrong_root[] = { leaf, inter, fake_root };
    assert_int_equal(x509util_check_path_order(wrong_root, 3, &bad), X509UTIL_E_ORDER);
    assert_int_equal(bad, 1);
    X509 *with_null[] = { leaf, NULL };
    assert_int_equal(x509util_check_path_order(with_null, 2, &bad), X509UTIL_E_INVALID);
    assert_int_equal(bad, 1);
    assert_int_equal(x509util_check_path_order(ok, 0, &bad), X509UTIL_E_ORDER);
    assert_int_equal(x509util_check_path_order(NULL, 2, &bad), X509UTIL_E_INVALID);
    assert_int_equal(ERR_peek_error(), 0);

    X509_free(root);
    X509_free(inter);
    X509_free(leaf);
    X509_free(fake_root);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(inter_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other_key);
}

static const struct CMUnitTest regular_tests[] = {
    cmocka_unit_test(test_strerror),
    cmocka_unit_test(test_signature_digest),
    cmocka_unit_test(test_make_name_valid),
    cmocka_unit_test(test_make_name_invalid),
    cmocka_unit_test(test_generate_and_supported),
    cmocka_unit_test(test_csr),
    cmocka_unit_test(test_csr_faults),
    cmocka_unit_test(test_self_signed),
    cmocka_unit_test(test_issue),
    cmocka_unit_test(test_parse_cert),
    cmocka_unit_test(test_parse_crl),
    cmocka_unit_test(test_parse_pkcs8),
    cmocka_unit_test(test_private_and_public_der),
    cmocka_unit_test(test_parse_pkcs12),
    cmocka_unit_test(test_pkcs8_pbe_schemes),
    cmocka_unit_test(test_pkcs12_costs),
    cmocka_unit_test(test_path_order),
};

UNIT_MAIN("x509util", regular_tests)
