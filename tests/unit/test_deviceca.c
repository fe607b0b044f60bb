/* Unit tests for deviceca: the first open creates a CA and a server
 * certificate for the (faked) host addresses that verifies against it;
 * reopening loads the same CA and certificate; refresh re-issues on an
 * address change or near expiry and not otherwise; what deviceca.xml holds
 * (0600, sealed keys only); refusal of corrupt or foreign state; the CA
 * export; settings and argument faults; and, under a fake clock, the CA's
 * own replacement (expired, in its last 427 days, made while the clock was
 * unset, not valid yet) and refreshes that never fail because of the time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "opennvt/deviceca.h"
#include "opennvt/netif.h"
#include "opennvt/secretbox.h"
#include "opennvt/x509util.h"
#include "unit_helpers.h"

#define DAY 86400

/* --- a fake address source ----------------------------------------------- */

struct fake_if {
    const char *name;
    int loopback;
    const char *v4[3];
    const char *v6[3];
};

static const struct fake_if *fake_ifs;
static size_t fake_n;

static int fake_list(struct netif *list, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < fake_n && n < max; i++, n++) {
        struct netif *f = &list[n];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", fake_ifs[i].name);
        f->up = 1;
        f->loopback = fake_ifs[i].loopback;
        for (size_t k = 0; k < 3 && fake_ifs[i].v4[k]; k++)
            snprintf(f->v4[f->n_v4++].addr, sizeof f->v4[0].addr, "%s", fake_ifs[i].v4[k]);
        for (size_t k = 0; k < 3 && fake_ifs[i].v6[k]; k++)
            snprintf(f->v6[f->n_v6++].addr, sizeof f->v6[0].addr, "%s", fake_ifs[i].v6[k]);
    }
    return (int)n;
}

static int failing_list(struct netif *list, size_t max)
{
    (void)list;
    (void)max;
    return -EIO;
}

static const struct fake_if first_ifs[] = {
    { "lo", 1, { "127.0.0.1" }, { "::1" } },
    { "eth0", 0, { "192.0.2.10" }, { "2001:db8:0:0::10", "fe80::1" } },
    { "eth1", 0, { "192.0.2.10", "198.51.100.3" }, { NULL } }, /* a duplicate is named once */
};
/* Sorted as canonical text, as the certificate should name them. */
static const char *const first_ips[] = { "127.0.0.1", "192.0.2.10", "198.51.100.3", "2001:db8::10", "::1", "fe80::1" };

static const struct fake_if second_ifs[] = {
    { "lo", 1, { "127.0.0.1" }, { "::1" } },
    { "eth0", 0, { "203.0.113.77" }, { NULL } },
};
static const char *const second_ips[] = { "127.0.0.1", "203.0.113.77", "::1" };

static void use_addresses(const struct fake_if *ifs, size_t n)
{
    fake_ifs = ifs;
    fake_n = n;
}

/* --- fixture ------------------------------------------------------------- */

struct fixture {
    struct temp_dir dir;
    struct secretbox *box;
    struct deviceca *ca;
};

static const struct deviceca_settings test_settings = {
    .key_type = "EC-P256",
    .common_name = "OpenNVT Device CA TEST-0001",
    .organization = "OpenNVT",
    .address_source = fake_list,
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    use_addresses(first_ifs, sizeof first_ifs / sizeof first_ifs[0]);
    if (secretbox_open(&fx->box, fx->dir.path) != SECRETBOX_OK ||
        deviceca_open(&fx->ca, fx->dir.path, fx->box, &test_settings) != DEVICECA_OK) {
        secretbox_close(fx->box);
        temp_fixture_free(&fx->dir, fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    deviceca_close(fx->ca);
    secretbox_close(fx->box);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen(struct fixture *fx)
{
    deviceca_close(fx->ca);
    fx->ca = NULL;
    assert_int_equal(deviceca_open(&fx->ca, fx->dir.path, fx->box, &test_settings), DEVICECA_OK);
}

static void reopen_with(struct fixture *fx, const struct deviceca_settings *s)
{
    deviceca_close(fx->ca);
    fx->ca = NULL;
    assert_int_equal(deviceca_open(&fx->ca, fx->dir.path, fx->box, s), DEVICECA_OK);
}

static const char *state_path(const struct fixture *fx, char *out)
{
    return path_in(out, fx->dir.path, "deviceca.xml");
}

/* --- helpers ------------------------------------------------------------- */

static X509 *ca_cert(struct fixture *fx)
{
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(deviceca_ca_der(fx->ca, &der, &len), DEVICECA_OK);
    X509 *x = NULL;
    assert_int_equal(x509util_parse_cert(der, len, &x), X509UTIL_OK);
    free(der);
    return x;
}

static unsigned char *cert_der(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    assert_int_equal(x509util_cert_der(x, &der, len), X509UTIL_OK);
    return der;
}

static void assert_same_cert(X509 *a, X509 *b)
{
    size_t alen = 0, blen = 0;
    unsigned char *da = cert_der(a, &alen), *db = cert_der(b, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(da, db, alen);
    OPENSSL_free(da);
    OPENSSL_free(db);
}

/* Checks the certificate's IP SANs are exactly ips (sorted text) and its DNS
 * SANs are nothing or the host name. */
static void assert_sans(X509 *cert, const char *const *ips, size_t n_ips)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    size_t seen_ips = 0;
    char got[X509UTIL_MAX_SAN][INET6_ADDRSTRLEN];
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_DNS) {
            assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName), host);
            continue;
        }
        assert_int_equal(gn->type, GEN_IPADD);
        int l = ASN1_STRING_length(gn->d.iPAddress);
        assert_true(l == 4 || l == 16);
        assert_true(seen_ips < X509UTIL_MAX_SAN);
        assert_non_null(inet_ntop(l == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress),
                                  got[seen_ips], sizeof got[0]));
        seen_ips++;
    }
    GENERAL_NAMES_free(names);
    if (seen_ips != n_ips)
        fail_msg("certificate names %zu addresses, expected %zu", seen_ips, n_ips);
    for (size_t i = 0; i < n_ips; i++) {
        int found = 0;
        for (size_t k = 0; k < seen_ips; k++)
            found |= strcmp(got[k], ips[i]) == 0;
        if (!found)
            fail_msg("address %s missing from the server certificate", ips[i]);
    }
}

static void verify_against(X509 *leaf, X509 *ca)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx) != 1)
        fail_msg("server certificate does not verify: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

struct identity {
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) *chain;
};

static void get_identity(struct fixture *fx, struct identity *id)
{
    assert_int_equal(deviceca_server_identity(fx->ca, &id->key, &id->cert, &id->chain), DEVICECA_OK);
    assert_non_null(id->key);
    assert_non_null(id->cert);
    assert_non_null(id->chain);
}

static void put_identity(struct identity *id)
{
    EVP_PKEY_free(id->key);
    X509_free(id->cert);
    sk_X509_pop_free(id->chain, X509_free);
}

/* --- tests --------------------------------------------------------------- */

static void test_first_open(void **state)
{
    struct fixture *fx = *state;
    X509 *ca = ca_cert(fx);
    assert_int_equal(X509_check_ca(ca), 1);
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(ca), "EC"));
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ca)), 256);
    char cn[128];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof cn) > 0);
    assert_string_equal(cn, "OpenNVT Device CA TEST-0001");
    /* About ten years. */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca), X509_get0_notAfter(ca)), 1);
    assert_true(days >= 3650 && days <= 3651);

    struct identity id;
    get_identity(fx, &id);
    assert_int_equal(sk_X509_num(id.chain), 1);
    assert_same_cert(sk_X509_value(id.chain, 0), ca);
    assert_int_equal(X509_check_private_key(id.cert, id.key), 1);
    assert_true(EVP_PKEY_is_a(id.key, "EC"));
    assert_int_equal(x509util_key_supported(id.key), X509UTIL_OK);
    assert_int_equal(X509_check_ca(id.cert), 0);
    assert_int_equal(X509_get_extended_key_usage(id.cert), XKU_SSL_SERVER);
    assert_int_equal(X509_check_issued(ca, id.cert), X509_V_OK);
    verify_against(id.cert, ca);
    assert_sans(id.cert, first_ips, sizeof first_ips / sizeof first_ips[0]);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(id.cert), NID_organizationName, cn, sizeof cn) > 0);
    assert_string_equal(cn, "OpenNVT");
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(id.cert), NID_commonName, cn, sizeof cn) > 0);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    if (strcmp(cn, host) != 0)
        assert_string_equal(cn, "127.0.0.1"); /* the first address, when the host name is not usable */
    /* Valid about 397 days from now (an hour back-dated). */
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(id.cert)), 1);
    assert_true(days >= 396 && days <= 397);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(id.cert)) < 0);
    put_identity(&id);
    X509_free(ca);

    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(state_path(fx, path), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_reopen_loads_same(void **state)
{
    struct fixture *fx = *state;
    unsigned char *before = NULL, *after = NULL;
    size_t blen = 0, alen = 0;
    assert_int_equal(deviceca_ca_der(fx->ca, &before, &blen), DEVICECA_OK);
    struct identity a, b;
    get_identity(fx, &a);

    /* Other addresses at reopen: open loads what is stored, refresh changes it. */
    use_addresses(second_ifs, sizeof second_ifs / sizeof second_ifs[0]);
    reopen(fx);
    assert_int_equal(deviceca_ca_der(fx->ca, &after, &alen), DEVICECA_OK);
    assert_int_equal(alen, blen);
    assert_memory_equal(after, before, alen);
    get_identity(fx, &b);
    assert_same_cert(a.cert, b.cert);
    assert_int_equal(EVP_PKEY_eq(a.key, b.key), 1);
    put_identity(&a);
    put_identity(&b);
    free(before);
    free(after);
}

static void test_refresh(void **state)
{
    struct fixture *fx = *state;
    struct identity a, b, c;
    get_identity(fx, &a);

    int changed = -1;
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 0);
    get_identity(fx, &b);
    assert_same_cert(a.cert, b.cert);
    put_identity(&b);
    /* changed is optional. */
    assert_int_equal(deviceca_refresh(fx->ca, NULL), DEVICECA_OK);

    use_addresses(second_ifs, sizeof second_ifs / sizeof second_ifs[0]);
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 1);
    get_identity(fx, &b);
    assert_int_not_equal(X509_cmp(a.cert, b.cert), 0);
    assert_int_not_equal(EVP_PKEY_eq(a.key, b.key), 1); /* a new key too */
    assert_int_equal(X509_check_private_key(b.cert, b.key), 1);
    assert_sans(b.cert, second_ips, sizeof second_ips / sizeof second_ips[0]);
    X509 *ca = ca_cert(fx);
    verify_against(b.cert, ca);
    assert_same_cert(sk_X509_value(b.chain, 0), ca);
    /* References handed out before stay usable. */
    assert_int_equal(X509_check_private_key(a.cert, a.key), 1);

    /* Stable again; and persisted. */
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 0);
    reopen(fx);
    get_identity(fx, &c);
    assert_same_cert(b.cert, c.cert);
    assert_int_equal(EVP_PKEY_eq(b.key, c.key), 1);
    X509 *ca2 = ca_cert(fx);
    assert_same_cert(ca, ca2);
    X509_free(ca);
    X509_free(ca2);
    put_identity(&a);
    put_identity(&b);
    put_identity(&c);

    /* A failing address source keeps the certificate. */
    deviceca_set_address_source(fx->ca, failing_list);
    changed = -1;
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 0);
    /* NULL restores netif_list: the real host addresses (at least loopback)
     * differ from the fake ones. */
    deviceca_set_address_source(fx->ca, NULL);
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 1);
    deviceca_set_address_source(fx->ca, fake_list);
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(deviceca_refresh(NULL, &changed), DEVICECA_E_INVALID);
    deviceca_set_address_source(NULL, fake_list); /* harmless */
}

static void test_file_contents(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    char *text = read_text_file(state_path(fx, path));
    assert_non_null(text);
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_null(strstr(text, "-----BEGIN"));
    assert_non_null(strstr(text, "<deviceca"));
    /* Two sealed keys. */
    char *first = strstr(text, "<key>v1:");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "<key>v1:"));

    /* Neither the server key's PKCS#8 DER nor its base64 is in there. */
    struct identity id;
    get_identity(fx, &id);
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(x509util_private_key_der(id.key, &der, &len), X509UTIL_OK);
    assert_null(memmem(text, strlen(text), der, len));
    char *b64 = malloc((len + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    assert_null(strstr(text, b64));
    /* Nor the raw private scalar. */
    BIGNUM *d = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(id.key, "priv", &d), 1);
    unsigned char raw[64];
    int rlen = BN_bn2bin(d, raw);
    assert_true(rlen > 16);
    assert_null(memmem(text, strlen(text), raw, (size_t)rlen));
    BN_clear_free(d);
    OPENSSL_cleanse(raw, sizeof raw);
    free(b64);
    OPENSSL_clear_free(der, len);

    /* The CA certificate is there as base64 DER. */
    unsigned char *ca_der = NULL;
    size_t ca_len = 0;
    assert_int_equal(deviceca_ca_der(fx->ca, &ca_der, &ca_len), DEVICECA_OK);
    char *ca_b64 = malloc((ca_len + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)ca_b64, ca_der, (int)ca_len);
    assert_non_null(strstr(text, ca_b64));
    free(ca_b64);
    free(ca_der);
    put_identity(&id);
    free(text);

    /* Still 0600 after a re-issue. */
    use_addresses(second_ifs, sizeof second_ifs / sizeof second_ifs[0]);
    int changed = 0;
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_dir_entries(fx->dir.path), 2); /* device.key, deviceca.xml: no temp files left */
}

/* Replaces the first occurrence of from in path's content with to. */
static void edit_file(const char *path, const char *from, const char *to)
{
    char *text = read_text_file(path);
    assert_non_null(text);
    char *at = strstr(text, from);
    assert_non_null(at);
    size_t flen = strlen(from), tlen = strlen(to), len = strlen(text);
    char *out = malloc(len - flen + tlen + 1);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    memcpy(out + pre, to, tlen);
    memcpy(out + pre + tlen, at + flen, len - pre - flen + 1);
    assert_int_equal(write_text_file(path, out), 0);
    free(out);
    free(text);
}

static void expect_open_fails(struct fixture *fx, struct secretbox *box)
{
    struct deviceca *ca = (struct deviceca *)1;
    assert_int_equal(deviceca_open(&ca, fx->dir.path, box, &test_settings), DEVICECA_E_STORE);
    assert_null(ca);
}

static void test_corrupt_state(void **state)
{
    struct fixture *fx = *state;
    deviceca_close(fx->ca);
    fx->ca = NULL;
    char path[PATH_MAX];
    state_path(fx, path);
    char *good = read_text_file(path);
    assert_non_null(good);

    const char *bad[] = {
        "",
        "garbage",
        "<deviceca version=\"1\"><ca>",
        "<other/>",
        "<deviceca version=\"1\"><ca><key>v1:AAAA</key><certificate>AAAA</certificate></ca></deviceca>",
        "<!DOCTYPE deviceca [<!ENTITY x \"y\">]><deviceca/>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(write_text_file(path, bad[i]), 0);
        expect_open_fails(fx, fx->box);
        /* Refused, not replaced. */
        char *now = read_text_file(path);
        assert_string_equal(now, bad[i]);
        free(now);
    }

    /* The CA certificate swapped for the server certificate. */
    char *ca_at = strstr(good, "<certificate>");
    char *srv_at = strstr(ca_at + 1, "<certificate>");
    assert_non_null(srv_at);
    size_t ca_len = strcspn(ca_at + 13, "<"), srv_len = strcspn(srv_at + 13, "<");
    char *ca_b64 = strndup(ca_at + 13, ca_len), *srv_b64 = strndup(srv_at + 13, srv_len);
    assert_int_equal(write_text_file(path, good), 0);
    edit_file(path, ca_b64, srv_b64);
    expect_open_fails(fx, fx->box);
    /* A certificate that is not base64 DER. */
    assert_int_equal(write_text_file(path, good), 0);
    edit_file(path, srv_b64, "bm90IGEgY2VydGlmaWNhdGU=");
    expect_open_fails(fx, fx->box);
    free(ca_b64);
    free(srv_b64);

    /* The two sealed keys swapped: their contexts differ, so neither opens. */
    char *k1 = strstr(good, "<key>") + 5;
    char *k2 = strstr(k1, "<key>") + 5;
    char *s1 = strndup(k1, strcspn(k1, "<")), *s2 = strndup(k2, strcspn(k2, "<"));
    assert_int_equal(write_text_file(path, good), 0);
    edit_file(path, s1, "PLACEHOLDER");
    edit_file(path, s2, s1);
    edit_file(path, "PLACEHOLDER", s2);
    expect_open_fails(fx, fx->box);
    /* One character of a sealed key altered. */
    assert_int_equal(write_text_file(path, good), 0);
    char *edited = strdup(s2);
    edited[3] = edited[3] == 'A' ? 'B' : 'A';
    edit_file(path, s2, edited);
    expect_open_fails(fx, fx->box);
    free(edited);
    free(s1);
    free(s2);

    /* Another device key cannot open the sealed keys. */
    assert_int_equal(write_text_file(path, good), 0);
    struct temp_dir *other = NULL;
    assert_int_equal(temp_dir_setup((void **)&other), 0);
    struct secretbox *other_box = NULL;
    assert_int_equal(secretbox_open(&other_box, other->path), SECRETBOX_OK);
    expect_open_fails(fx, other_box);
    secretbox_close(other_box);
    void *vo = other;
    temp_dir_teardown(&vo);

    /* The untouched file opens again. */
    assert_int_equal(write_text_file(path, good), 0);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(deviceca_open(&fx->ca, fx->dir.path, fx->box, &test_settings), DEVICECA_OK);
    free(good);
}

static void test_ca_export(void **state)
{
    struct fixture *fx = *state;
    char *pem = NULL;
    size_t pem_len = 0;
    unsigned char *der = NULL;
    size_t der_len = 0;
    assert_int_equal(deviceca_ca_pem(fx->ca, &pem, &pem_len), DEVICECA_OK);
    assert_int_equal(deviceca_ca_der(fx->ca, &der, &der_len), DEVICECA_OK);
    assert_int_equal(strlen(pem), pem_len);
    assert_true(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    assert_null(strstr(pem, "PRIVATE"));
    X509 *from_pem = NULL, *from_der = NULL;
    assert_int_equal(x509util_parse_cert((unsigned char *)pem, pem_len, &from_pem), X509UTIL_OK);
    assert_int_equal(x509util_parse_cert(der, der_len, &from_der), X509UTIL_OK);
    assert_int_equal(X509_cmp(from_pem, from_der), 0);
    X509_free(from_pem);
    X509_free(from_der);
    free(pem);
    free(der);

    pem = (char *)1;
    assert_int_equal(deviceca_ca_pem(NULL, &pem, &pem_len), DEVICECA_E_INVALID);
    assert_null(pem);
    assert_int_equal(deviceca_ca_pem(fx->ca, NULL, &pem_len), DEVICECA_E_INVALID);
    assert_int_equal(deviceca_ca_der(fx->ca, &der, NULL), DEVICECA_E_INVALID);
    assert_int_equal(deviceca_server_identity(NULL, NULL, NULL, NULL), DEVICECA_E_INVALID);
    assert_int_equal(deviceca_server_identity(fx->ca, NULL, NULL, NULL), DEVICECA_E_INVALID);
    /* Parts of the identity are optional. */
    X509 *cert = NULL;
    assert_int_equal(deviceca_server_identity(fx->ca, NULL, &cert, NULL), DEVICECA_OK);
    assert_non_null(cert);
    X509_free(cert);
}

/* A state file made outside deviceca, in its format, whose server
 * certificate expires in ten days: it loads, and refresh renews it although
 * the addresses are the same. */
static void test_renew_before_expiry(void **state)
{
    struct fixture *fx = *state;
    deviceca_close(fx->ca);
    fx->ca = NULL;

    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    assert_int_equal(x509util_generate_ec("P-256", &ca_key), X509UTIL_OK);
    assert_int_equal(x509util_generate_ec("P-256", &srv_key), X509UTIL_OK);
    struct x509util_rdn ca_rdn[] = { { "CN", "Old CA" } }, srv_rdn[] = { { "CN", "old" } };
    X509_NAME *ca_name = NULL, *srv_name = NULL;
    assert_int_equal(x509util_make_name(ca_rdn, 1, &ca_name, NULL), X509UTIL_OK);
    assert_int_equal(x509util_make_name(srv_rdn, 1, &srv_name, NULL), X509UTIL_OK);
    time_t now = time(NULL);
    X509 *ca = NULL, *srv = NULL;
    assert_int_equal(x509util_make_self_signed(ca_key, ca_name, now - DAY, now + 3650L * DAY, NULL, 0, NULL, 0, 1,
                                               NULL, &ca),
                     X509UTIL_OK);
    /* The same names deviceca would choose for the first address list. */
    struct x509util_san sans[X509UTIL_MAX_SAN];
    size_t n = 0;
    for (size_t i = 0; i < sizeof first_ips / sizeof first_ips[0]; i++)
        sans[n++] = (struct x509util_san){ X509UTIL_SAN_IP, first_ips[i] };
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    struct x509util_san host_san = { X509UTIL_SAN_DNS, host };
    unsigned char *probe = NULL;
    size_t probe_len = 0;
    /* Whether deviceca would take the host name: the same LDH rule x509util applies. */
    if (x509util_make_csr(srv_key, srv_name, &host_san, 1, NULL, 0, NULL, &probe, &probe_len) == X509UTIL_OK)
        sans[n++] = host_san;
    OPENSSL_free(probe);
    assert_int_equal(x509util_issue(srv_key, srv_name, ca, ca_key, now - DAY, now + 10L * DAY, sans, n, 0, 1, NULL,
                                    &srv),
                     X509UTIL_OK);

    unsigned char *der = NULL;
    size_t len = 0;
    char *ca_sealed = NULL, *srv_sealed = NULL;
    assert_int_equal(x509util_private_key_der(ca_key, &der, &len), X509UTIL_OK);
    assert_int_equal(secretbox_seal(fx->box, der, len, "deviceca:ca-key", &ca_sealed), SECRETBOX_OK);
    OPENSSL_clear_free(der, len);
    assert_int_equal(x509util_private_key_der(srv_key, &der, &len), X509UTIL_OK);
    assert_int_equal(secretbox_seal(fx->box, der, len, "deviceca:server-key", &srv_sealed), SECRETBOX_OK);
    OPENSSL_clear_free(der, len);
    char *ca_b64 = NULL, *srv_b64 = NULL;
    X509 *certs[2] = { ca, srv };
    char **outs[2] = { &ca_b64, &srv_b64 };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(x509util_cert_der(certs[i], &der, &len), X509UTIL_OK);
        *outs[i] = malloc((len + 2) / 3 * 4 + 1);
        EVP_EncodeBlock((unsigned char *)*outs[i], der, (int)len);
        OPENSSL_free(der);
    }
    char *xml = NULL;
    assert_true(asprintf(&xml,
                         "<?xml version=\"1.0\"?>\n<deviceca version=\"1\"><ca><key>%s</key><certificate>%s"
                         "</certificate></ca><server><key>%s</key><certificate>%s</certificate></server></deviceca>\n",
                         ca_sealed, ca_b64, srv_sealed, srv_b64) > 0);
    char path[PATH_MAX];
    assert_int_equal(write_text_file(state_path(fx, path), xml), 0);

    use_addresses(first_ifs, sizeof first_ifs / sizeof first_ifs[0]);
    assert_int_equal(deviceca_open(&fx->ca, fx->dir.path, fx->box, &test_settings), DEVICECA_OK);
    struct identity id;
    get_identity(fx, &id);
    assert_same_cert(id.cert, srv);
    put_identity(&id);
    int changed = 0;
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 1);
    get_identity(fx, &id);
    assert_int_not_equal(X509_cmp(id.cert, srv), 0);
    verify_against(id.cert, ca);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(id.cert)), 1);
    assert_true(days >= 396);
    assert_sans(id.cert, first_ips, sizeof first_ips / sizeof first_ips[0]);
    put_identity(&id);
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    assert_int_equal(changed, 0);

    free(xml);
    free(ca_b64);
    free(srv_b64);
    free(ca_sealed);
    free(srv_sealed);
    X509_free(ca);
    X509_free(srv);
    X509_NAME_free(ca_name);
    X509_NAME_free(srv_name);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
}

static void open_fresh(struct fixture *fx, const struct deviceca_settings *s, int want_rc)
{
    deviceca_close(fx->ca);
    fx->ca = NULL;
    char path[PATH_MAX];
    unlink(state_path(fx, path));
    int rc = deviceca_open(&fx->ca, fx->dir.path, fx->box, s);
    if (rc != want_rc)
        fail_msg("open: %s, expected %s", deviceca_strerror(rc), deviceca_strerror(want_rc));
}

static void test_settings_and_faults(void **state)
{
    struct fixture *fx = *state;

    struct deviceca_settings rsa = test_settings;
    rsa.key_type = "RSA-3072";
    open_fresh(fx, &rsa, DEVICECA_OK);
    X509 *ca = ca_cert(fx);
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(ca), "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ca)), 3072);
    struct identity id;
    get_identity(fx, &id);
    assert_true(EVP_PKEY_is_a(id.key, "EC")); /* the server key is always EC P-256 */
    verify_against(id.cert, ca);
    put_identity(&id);
    X509_free(ca);

    struct deviceca_settings p384 = test_settings;
    p384.key_type = "EC-P384";
    open_fresh(fx, &p384, DEVICECA_OK);
    ca = ca_cert(fx);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ca)), 384);
    assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA384);
    X509_free(ca);

    /* Defaults: EC P-256, "OpenNVT Device CA", no O; netif_list addresses. */
    open_fresh(fx, NULL, DEVICECA_OK);
    ca = ca_cert(fx);
    char cn[128];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof cn) > 0);
    assert_string_equal(cn, "OpenNVT Device CA");
    assert_int_equal(X509_NAME_get_index_by_NID(X509_get_subject_name(ca), NID_organizationName, -1), -1);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ca)), 256);
    X509_free(ca);

    /* A failing address source at creation still yields a certificate. */
    struct deviceca_settings failing = test_settings;
    failing.address_source = failing_list;
    open_fresh(fx, &failing, DEVICECA_OK);
    get_identity(fx, &id);
    assert_int_equal(X509_check_private_key(id.cert, id.key), 1);
    put_identity(&id);

    struct deviceca_settings bad = test_settings;
    bad.key_type = "RSA-1024";
    open_fresh(fx, &bad, DEVICECA_E_INVALID);
    assert_null(fx->ca);
    bad = test_settings;
    bad.common_name = "";
    open_fresh(fx, &bad, DEVICECA_E_INVALID);
    char long_cn[80];
    memset(long_cn, 'c', 65);
    long_cn[65] = '\0';
    bad.common_name = long_cn;
    open_fresh(fx, &bad, DEVICECA_E_INVALID);
    bad = test_settings;
    bad.organization = "bad\x01org";
    open_fresh(fx, &bad, DEVICECA_E_INVALID);

    struct deviceca *ca2 = (struct deviceca *)1;
    assert_int_equal(deviceca_open(&ca2, NULL, fx->box, NULL), DEVICECA_E_INVALID);
    assert_null(ca2);
    assert_int_equal(deviceca_open(&ca2, fx->dir.path, NULL, NULL), DEVICECA_E_INVALID);
    assert_int_equal(deviceca_open(NULL, fx->dir.path, fx->box, NULL), DEVICECA_E_INVALID);
    /* A state directory that does not exist cannot be saved to. */
    assert_int_equal(deviceca_open(&ca2, "/nonexistent/opennvt-test", fx->box, &test_settings), DEVICECA_E_STORE);
    deviceca_close(NULL);

    for (int e = DEVICECA_OK; e >= DEVICECA_E_INVALID; e--)
        assert_string_not_equal(deviceca_strerror(e), "unknown error");
    assert_string_equal(deviceca_strerror(7), "unknown error");

    open_fresh(fx, &test_settings, DEVICECA_OK);
}

/* --- time: the CA's own renewal ------------------------------------------ */

static time_t fake_time;

static time_t fake_now(void)
{
    return fake_time;
}

static time_t utc(int year, int month, int day)
{
    struct tm tm = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day };
    return timegm(&tm);
}

static time_t asn1_seconds(const ASN1_TIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return timegm(&tm);
}

static const struct deviceca_settings clock_settings = {
    .key_type = "EC-P256",
    .common_name = "OpenNVT Device CA TEST-0001",
    .organization = "OpenNVT",
    .address_source = fake_list,
    .now = fake_now,
};

/* The served identity at time t: the chain is the current CA alone, the
 * certificate belongs to the key and verifies against that CA at t. */
static void check_identity_at(struct fixture *fx, time_t t)
{
    struct identity id;
    get_identity(fx, &id);
    X509 *ca = ca_cert(fx);
    assert_int_equal(sk_X509_num(id.chain), 1);
    assert_same_cert(sk_X509_value(id.chain, 0), ca);
    assert_int_equal(X509_check_private_key(id.cert, id.key), 1);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, id.cert, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    X509_STORE_CTX_set_time(ctx, 0, t);
    if (X509_verify_cert(ctx) != 1)
        fail_msg("server certificate does not verify at %lld: %s", (long long)t,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    put_identity(&id);
}

static unsigned char *ca_der_now(struct fixture *fx, size_t *len)
{
    unsigned char *der = NULL;
    assert_int_equal(deviceca_ca_der(fx->ca, &der, len), DEVICECA_OK);
    return der;
}

static int same_ca(struct fixture *fx, const unsigned char *der, size_t len)
{
    size_t now_len = 0;
    unsigned char *now = ca_der_now(fx, &now_len);
    int same = now_len == len && memcmp(now, der, len) == 0;
    free(now);
    return same;
}

static void expect_refresh(struct fixture *fx, int want_changed)
{
    int changed = -1;
    assert_int_equal(deviceca_refresh(fx->ca, &changed), DEVICECA_OK);
    if (changed != want_changed)
        fail_msg("refresh at %lld: changed %d, expected %d", (long long)fake_time, changed, want_changed);
}

/* A CA made in 2030 (ten years) is replaced once the clock reads 2041; the
 * server certificate is then issued by the new CA, the old one not served. */
static void test_ca_rekey_after_expiry(void **state)
{
    struct fixture *fx = *state;
    fake_time = utc(2030, 6, 1);
    use_addresses(first_ifs, sizeof first_ifs / sizeof first_ifs[0]);
    open_fresh(fx, &clock_settings, DEVICECA_OK);
    X509 *old_ca = ca_cert(fx);
    assert_true(llabs((long long)(asn1_seconds(X509_get0_notBefore(old_ca)) - fake_time)) <= 3600);
    check_identity_at(fx, fake_time);
    size_t old_len = 0;
    unsigned char *old_der = ca_der_now(fx, &old_len);
    expect_refresh(fx, 0);

    /* 2035: the server certificate has long expired, the CA has five years
     * left: a new server certificate from the same CA. */
    fake_time = utc(2035, 6, 1);
    expect_refresh(fx, 1);
    assert_true(same_ca(fx, old_der, old_len));
    check_identity_at(fx, fake_time);
    expect_refresh(fx, 0);

    /* 2041: the CA has expired. Refreshing replaces it (it does not fail). */
    fake_time = utc(2041, 1, 1);
    assert_true(asn1_seconds(X509_get0_notAfter(old_ca)) < fake_time);
    expect_refresh(fx, 1);
    assert_false(same_ca(fx, old_der, old_len));
    X509 *new_ca = ca_cert(fx);
    assert_int_equal(X509_check_ca(new_ca), 1);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(new_ca), X509_get0_notAfter(new_ca)), 1);
    assert_true(days >= 3650 && days <= 3651);
    assert_true(llabs((long long)(asn1_seconds(X509_get0_notBefore(new_ca)) - fake_time)) <= 3600);
    char cn[128];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(new_ca), NID_commonName, cn, sizeof cn) > 0);
    assert_string_equal(cn, "OpenNVT Device CA TEST-0001");
    check_identity_at(fx, fake_time);
    struct identity id;
    get_identity(fx, &id);
    /* Not issued by the old CA, and a full 397 days. */
    assert_int_not_equal(X509_verify(id.cert, X509_get0_pubkey(old_ca)), 1);
    ERR_clear_error();
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(id.cert), X509_get0_notAfter(id.cert)), 1);
    assert_true(days >= 397 && days <= 398);
    assert_sans(id.cert, first_ips, sizeof first_ips / sizeof first_ips[0]);
    put_identity(&id);
    expect_refresh(fx, 0);

    /* Persisted: a reopen serves the new CA. */
    size_t new_len = 0;
    unsigned char *new_der = ca_der_now(fx, &new_len);
    deviceca_close(fx->ca);
    fx->ca = NULL;
    assert_int_equal(deviceca_open(&fx->ca, fx->dir.path, fx->box, &clock_settings), DEVICECA_OK);
    assert_true(same_ca(fx, new_der, new_len));
    expect_refresh(fx, 0);

    /* The real clock again (deviceca_set_clock NULL): the CA made "in 2041"
     * is not valid yet, so it is replaced too. */
    deviceca_set_clock(fx->ca, NULL);
    expect_refresh(fx, 1);
    assert_false(same_ca(fx, new_der, new_len));
    check_identity_at(fx, time(NULL));
    expect_refresh(fx, 0);
    deviceca_set_clock(NULL, fake_now); /* harmless */

    free(old_der);
    free(new_der);
    X509_free(old_ca);
    X509_free(new_ca);
}

/* Within the CA's last 427 days (the server lifetime and its renewal
 * window) the CA is replaced once, and the next refreshes do nothing. */
static void test_ca_rekey_before_expiry(void **state)
{
    struct fixture *fx = *state;
    struct deviceca_settings p384 = clock_settings;
    p384.key_type = "EC-P384";
    fake_time = utc(2030, 1, 1);
    open_fresh(fx, &p384, DEVICECA_OK);
    X509 *old_ca = ca_cert(fx);
    time_t ca_after = asn1_seconds(X509_get0_notAfter(old_ca));
    size_t old_len = 0;
    unsigned char *old_der = ca_der_now(fx, &old_len);

    /* 430 days left: not due; the expired server certificate is renewed for
     * its full lifetime from the same CA. */
    fake_time = ca_after - 430L * DAY;
    expect_refresh(fx, 1);
    assert_true(same_ca(fx, old_der, old_len));
    check_identity_at(fx, fake_time);
    expect_refresh(fx, 0);

    /* 20 days left (the server certificate would be cut to them, and always
     * "expiring"): one re-key, then nothing. */
    fake_time = ca_after - 20L * DAY;
    expect_refresh(fx, 1);
    assert_false(same_ca(fx, old_der, old_len));
    X509 *new_ca = ca_cert(fx);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(new_ca)), 384); /* the configured key type */
    check_identity_at(fx, fake_time);
    struct identity id;
    get_identity(fx, &id);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(id.cert), X509_get0_notAfter(id.cert)), 1);
    assert_true(days >= 397); /* not cut short */
    put_identity(&id);
    size_t new_len = 0;
    unsigned char *new_der = ca_der_now(fx, &new_len);
    for (int i = 0; i < 3; i++) {
        expect_refresh(fx, 0);
        fake_time += DAY;
    }
    /* Past the old CA's expiry: still nothing to do. */
    fake_time = ca_after + DAY;
    expect_refresh(fx, 0);
    assert_true(same_ca(fx, new_der, new_len));
    check_identity_at(fx, fake_time);

    free(old_der);
    free(new_der);
    X509_free(old_ca);
    X509_free(new_ca);
}

/* The clock unset (1970) at the first open: open still yields a usable
 * identity, from a provisional CA; refreshes keep it while the clock is
 * unset and replace it at the first refresh with a set clock. */
static void test_unset_clock_at_first_open(void **state)
{
    struct fixture *fx = *state;
    fake_time = 10L * DAY;
    open_fresh(fx, &clock_settings, DEVICECA_OK);
    assert_non_null(fx->ca);
    check_identity_at(fx, fake_time);
    X509 *provisional = ca_cert(fx);
    assert_true(asn1_seconds(X509_get0_notBefore(provisional)) < utc(2024, 1, 1));
    size_t prov_len = 0;
    unsigned char *prov_der = ca_der_now(fx, &prov_len);

    /* Still unset: nothing is issued, and nothing fails. Addresses changing
     * meanwhile wait for the clock too. */
    expect_refresh(fx, 0);
    use_addresses(second_ifs, sizeof second_ifs / sizeof second_ifs[0]);
    fake_time += DAY;
    expect_refresh(fx, 0);
    assert_true(same_ca(fx, prov_der, prov_len));
    /* Reopened at the unset time: loads what exists. */
    reopen_with(fx, &clock_settings);
    assert_true(same_ca(fx, prov_der, prov_len));
    expect_refresh(fx, 0);

    /* The clock is set: the provisional CA is replaced, and the new server
     * certificate names the current addresses. */
    fake_time = utc(2027, 3, 1);
    expect_refresh(fx, 1);
    assert_false(same_ca(fx, prov_der, prov_len));
    X509 *ca = ca_cert(fx);
    assert_true(llabs((long long)(asn1_seconds(X509_get0_notBefore(ca)) - fake_time)) <= 3600);
    check_identity_at(fx, fake_time);
    struct identity id;
    get_identity(fx, &id);
    assert_sans(id.cert, second_ips, sizeof second_ips / sizeof second_ips[0]);
    put_identity(&id);
    expect_refresh(fx, 0);
    size_t len = 0;
    unsigned char *der = ca_der_now(fx, &len);

    /* A later boot with the clock unset again keeps the good CA. */
    fake_time = 20L * DAY;
    reopen_with(fx, &clock_settings);
    assert_true(same_ca(fx, der, len));
    expect_refresh(fx, 0);
    assert_true(same_ca(fx, der, len));

    free(prov_der);
    free(der);
    X509_free(provisional);
    X509_free(ca);
}

/* Whatever the clock does, refresh never fails because of it, and after a
 * refresh at a plausible time the identity is valid then and stable. */
static void test_refresh_never_fails_on_time(void **state)
{
    struct fixture *fx = *state;
    fake_time = utc(2026, 1, 1);
    open_fresh(fx, &clock_settings, DEVICECA_OK);
    /* Plausible: 2024-01-01 up to ten years before the last time a
     * certificate can name (9999-12-31). */
    const struct {
        time_t t;
        int plausible;
    } steps[] = {
        { utc(2026, 1, 2), 1 },   { utc(2027, 6, 1), 1 },  { utc(2023, 12, 31), 0 }, { (time_t)-1, 0 },
        { 0, 0 },                 { utc(2036, 1, 1), 1 },  { utc(2050, 1, 1), 1 },   { utc(2025, 1, 1), 1 },
        { utc(2100, 2, 28), 1 },  { utc(9980, 1, 1), 1 },  { utc(9995, 1, 1), 0 },   { utc(9999, 12, 31), 0 },
        { utc(2024, 1, 2), 1 },   { utc(2034, 12, 31), 1 }, { utc(2024, 1, 1), 1 },  { utc(2035, 1, 2), 1 },
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        fake_time = steps[i].t;
        int changed = -1;
        int rc = deviceca_refresh(fx->ca, &changed);
        if (rc != DEVICECA_OK)
            fail_msg("refresh at %lld: %s", (long long)fake_time, deviceca_strerror(rc));
        if (steps[i].plausible) {
            check_identity_at(fx, fake_time);
            expect_refresh(fx, 0);
        } else if (changed != 0) {
            fail_msg("refresh at the implausible %lld changed the identity", (long long)fake_time);
        }
    }
}

static const struct CMUnitTest regular_tests[] = {
    cmocka_unit_test_setup_teardown(test_first_open, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_reopen_loads_same, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_refresh, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_file_contents, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_corrupt_state, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_ca_export, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_renew_before_expiry, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_settings_and_faults, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_ca_rekey_after_expiry, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_ca_rekey_before_expiry, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_unset_clock_at_first_open, fixture_setup, fixture_teardown),
    cmocka_unit_test_setup_teardown(test_refresh_never_fails_on_time, fixture_setup, fixture_teardown),
};

UNIT_MAIN("deviceca", regular_tests)
