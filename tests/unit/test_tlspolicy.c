/* Unit tests for the TLS server policy: defaults, network protocol rules and
 * forced ports, server certificate assignment rules, TLS versions, client
 * authentication and validation policy assignment, the keystore reference
 * check, safe apply (pending, confirm, expiry, rollback, restart), what the
 * file holds and refusal of a corrupt one, failed saves changing nothing, the
 * loaded server identities, client certificate validation and expiry
 * warnings. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "opennvt/keystore.h"
#include "opennvt/secretbox.h"
#include "opennvt/tlspolicy.h"
#include "opennvt/x509util.h"
#include "unit_helpers.h"

#define WINDOW_S 60

/* --- clocks the module reads ---------------------------------------------- */

static int64_t fake_ms;
static time_t fake_wall;             /* 0: the real clock */

static int64_t fake_now_ms(void) { return fake_ms; }
static time_t fake_now(void) { return fake_wall ? fake_wall : time(NULL); }

/* --- fixture -------------------------------------------------------------- */

static const int reserved_ports[] = { 554, 3702 };

struct fixture {
    struct temp_dir dir;
    char ks_dir[PATH_MAX];
    char tp_dir[PATH_MAX];
    struct secretbox *box;
    struct keystore *ks;
    struct tlspolicy *tp;
    struct tlspolicy_settings s;
};

static struct tlspolicy_settings default_settings(void)
{
    struct tlspolicy_settings s;
    memset(&s, 0, sizeof s);
    s.defaults = (struct tlspolicy_protocols){ 1, 80, 1, 443 };
    s.reserved_ports = reserved_ports;
    s.n_reserved_ports = sizeof reserved_ports / sizeof reserved_ports[0];
    s.confirm_window_s = WINDOW_S;
    s.expiry_warning_days = 30;
    s.now_ms = fake_now_ms;
    s.now = fake_now;
    return s;
}

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    fake_ms = 1000000;
    fake_wall = 0;
    fx->s = default_settings();
    path_in(fx->ks_dir, fx->dir.path, "ks");
    path_in(fx->tp_dir, fx->dir.path, "tp");
    if (mkdir(fx->ks_dir, 0700) != 0 || mkdir(fx->tp_dir, 0700) != 0 ||
        secretbox_open(&fx->box, fx->dir.path) != SECRETBOX_OK ||
        keystore_open(&fx->ks, fx->ks_dir, NULL, fx->box) != KEYSTORE_OK ||
        tlspolicy_open(&fx->tp, fx->tp_dir, fx->ks, &fx->s) != TLSPOLICY_OK) {
        keystore_close(fx->ks);
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
    tlspolicy_close(fx->tp);
    keystore_close(fx->ks);
    secretbox_close(fx->box);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen_tp(struct fixture *fx)
{
    tlspolicy_close(fx->tp);
    fx->tp = NULL;
    int rc = tlspolicy_open(&fx->tp, fx->tp_dir, fx->ks, &fx->s);
    if (rc != TLSPOLICY_OK)
        fail_msg("reopen: %s", tlspolicy_strerror(rc));
}

static struct tlspolicy_state get(struct fixture *fx)
{
    struct tlspolicy_state st;
    tlspolicy_get(fx->tp, &st);
    return st;
}

static char *tp_file(struct fixture *fx)
{
    char path[PATH_MAX];
    return read_text_file(path_in(path, fx->tp_dir, "tlspolicy.xml"));
}

static void write_tp_file(struct fixture *fx, const char *text)
{
    char path[PATH_MAX];
    assert_int_equal(write_text_file(path_in(path, fx->tp_dir, "tlspolicy.xml"), text), 0);
}

static int is_pending(struct fixture *fx)
{
    return tlspolicy_pending(fx->tp, NULL, NULL);
}

/* Confirms whatever is pending (as an administrator on the newest connection). */
static void confirm_all(struct fixture *fx)
{
    assert_int_equal(tlspolicy_confirm(fx->tp, tlspolicy_generation(fx->tp), 1), 1);
}

static void set_protocols(struct fixture *fx, int http, int http_port, int https, int https_port)
{
    struct tlspolicy_protocols p = { http, http_port, https, https_port };
    int rc = tlspolicy_set_protocols(fx->tp, &p);
    if (rc != TLSPOLICY_OK)
        fail_msg("set_protocols: %s", tlspolicy_strerror(rc));
}

/* --- keys and certificates ------------------------------------------------ */

static EVP_PKEY *rsa_key;            /* generated once: RSA is slow */

static int group_setup(void **state)
{
    return x509util_generate_rsa(2048, &rsa_key) == X509UTIL_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(rsa_key);
    return 0;
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(x509util_generate_ec("P-256", &k), X509UTIL_OK);
    return k;
}

static X509_NAME *name_cn(const char *cn)
{
    struct x509util_rdn rdn = { "CN", cn };
    X509_NAME *name = NULL;
    size_t bad = 0;
    assert_int_equal(x509util_make_name(&rdn, 1, &name, &bad), X509UTIL_OK);
    return name;
}

static X509 *self_signed_at(EVP_PKEY *key, const char *cn, int is_ca, time_t nb, time_t na)
{
    X509_NAME *name = name_cn(cn);
    X509 *x = NULL;
    assert_int_equal(x509util_make_self_signed(key, name, nb, na, NULL, 0, NULL, 0, is_ca, EVP_sha256(), &x),
                     X509UTIL_OK);
    X509_NAME_free(name);
    return x;
}

static X509 *self_signed(EVP_PKEY *key, const char *cn, int is_ca)
{
    time_t now = time(NULL);
    return self_signed_at(key, cn, is_ca, now - 60, now + 86400);
}

static X509 *issued(EVP_PKEY *subject_key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int is_ca,
                    int server_auth)
{
    X509_NAME *name = name_cn(cn);
    time_t now = time(NULL);
    X509 *x = NULL;
    assert_int_equal(x509util_issue(subject_key, name, issuer, issuer_key, now - 60, now + 86400, NULL, 0, is_ca,
                                    server_auth, EVP_sha256(), &x),
                     X509UTIL_OK);
    X509_NAME_free(name);
    return x;
}

/* A client certificate with extendedKeyUsage clientAuth. */
static X509 *issued_client(EVP_PKEY *subject_key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x = issued(subject_key, cn, issuer, issuer_key, 0, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "clientAuth");
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static void upload_key(struct fixture *fx, EVP_PKEY *key, char id[KEYSTORE_ID_MAX])
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    int rc = keystore_upload_pkcs8(fx->ks, (unsigned char *)p, (size_t)n, NULL, NULL, NULL, id);
    BIO_free(bio);
    if (rc != KEYSTORE_OK)
        fail_msg("uploading a key: %s", keystore_strerror(rc));
}

static void upload_cert(struct fixture *fx, X509 *x, char cert_id[KEYSTORE_ID_MAX])
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    char key_id[KEYSTORE_ID_MAX];
    int rc = keystore_upload_cert(fx->ks, der, (size_t)n, NULL, NULL, 0, cert_id, key_id);
    OPENSSL_free(der);
    if (rc != KEYSTORE_OK)
        fail_msg("uploading a certificate: %s", keystore_strerror(rc));
}

static void make_path(struct fixture *fx, const char *const *cert_ids, size_t n, char path_id[KEYSTORE_ID_MAX])
{
    int rc = keystore_create_path(fx->ks, cert_ids, n, NULL, path_id);
    if (rc != KEYSTORE_OK)
        fail_msg("creating a path: %s", keystore_strerror(rc));
}

/* A one-certificate path for key (uploaded with its private key unless
 * public_only) with a self-signed certificate valid nb..na. */
static void path_for_at(struct fixture *fx, EVP_PKEY *key, int public_only, time_t nb, time_t na,
                        char path_id[KEYSTORE_ID_MAX])
{
    char kid[KEYSTORE_ID_MAX], cid[KEYSTORE_ID_MAX];
    if (!public_only)
        upload_key(fx, key, kid);
    X509 *x = self_signed_at(key, "camera.example", 0, nb, na);
    upload_cert(fx, x, cid);
    X509_free(x);
    const char *ids[] = { cid };
    make_path(fx, ids, 1, path_id);
}

static void path_for(struct fixture *fx, EVP_PKEY *key, char path_id[KEYSTORE_ID_MAX])
{
    time_t now = time(NULL);
    path_for_at(fx, key, 0, now - 60, now + 86400, path_id);
}

/* A fresh EC key's path. */
static void ec_path(struct fixture *fx, char path_id[KEYSTORE_ID_MAX])
{
    EVP_PKEY *k = ec_key();
    path_for(fx, k, path_id);
    EVP_PKEY_free(k);
}

static void create_cpv(struct fixture *fx, const char *anchor_id, int require_eku, char id[KEYSTORE_ID_MAX])
{
    struct keystore_cpv_policy p;
    memset(&p, 0, sizeof p);
    p.n_anchors = 1;
    p.require_client_auth_eku = require_eku;
    snprintf(p.anchor_ids[0], sizeof p.anchor_ids[0], "%s", anchor_id);
    int rc = keystore_create_cpv_policy(fx->ks, &p, id);
    if (rc != KEYSTORE_OK)
        fail_msg("creating a policy: %s", keystore_strerror(rc));
}

/* A CA (self-signed, stored in the keystore) and a policy with it as anchor. */
struct ca {
    EVP_PKEY *key;
    X509 *cert;
    char cert_id[KEYSTORE_ID_MAX];
    char policy_id[KEYSTORE_ID_MAX];
};

static void make_ca(struct fixture *fx, const char *cn, int require_eku, struct ca *ca)
{
    ca->key = ec_key();
    ca->cert = self_signed(ca->key, cn, 1);
    upload_cert(fx, ca->cert, ca->cert_id);
    create_cpv(fx, ca->cert_id, require_eku, ca->policy_id);
}

static void free_ca(struct ca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
}

static void add_policy(struct fixture *fx, const char *id)
{
    int rc = tlspolicy_add_cpv_policy(fx->tp, id);
    if (rc != TLSPOLICY_OK)
        fail_msg("add_cpv_policy: %s", tlspolicy_strerror(rc));
}

static void add_path(struct fixture *fx, const char *id)
{
    int rc = tlspolicy_add_server_path(fx->tp, id);
    if (rc != TLSPOLICY_OK)
        fail_msg("add_server_path: %s", tlspolicy_strerror(rc));
}

/* A CRL of issuer revoking the given serials (may be none). */
static void upload_crl(struct fixture *fx, X509 *issuer, EVP_PKEY *issuer_key, X509 *const *revoked, size_t n)
{
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL) - 60);
    ASN1_TIME *u = ASN1_TIME_set(NULL, time(NULL) + 86400);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, u), 1);
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        assert_non_null(r);
        assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked[i])), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    }
    ASN1_TIME_free(t);
    ASN1_TIME_free(u);
    assert_int_equal(X509_CRL_sort(crl), 1);
    assert_true(X509_CRL_sign(crl, issuer_key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    X509_CRL_free(crl);
    assert_true(len > 0);
    char id[KEYSTORE_ID_MAX];
    int rc = keystore_upload_crl(fx->ks, der, (size_t)len, NULL, id);
    OPENSSL_free(der);
    if (rc != KEYSTORE_OK)
        fail_msg("uploading a CRL: %s", keystore_strerror(rc));
}

static int verify(struct fixture *fx, X509 *leaf, STACK_OF(X509) *sent, char cn[65], const char **why)
{
    *why = NULL;
    return tlspolicy_verify_client(fx->tp, leaf, sent, cn, 65, why);
}

/* --- defaults and protocols ----------------------------------------------- */

static void test_defaults(void **state)
{
    struct fixture *fx = *state;
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.protocols.http_enabled, 1);
    assert_int_equal(st.protocols.http_port, 80);
    assert_int_equal(st.protocols.https_enabled, 1);
    assert_int_equal(st.protocols.https_port, 443);
    assert_int_equal(st.tls_versions, TLSPOLICY_TLS12 | TLSPOLICY_TLS13);
    assert_int_equal(st.n_server_paths, 0);
    assert_int_equal(st.n_cpv_policies, 0);
    assert_int_equal(st.client_auth_required, 0);
    assert_int_equal(st.cn_maps_to_user, 0);
    assert_int_equal(is_pending(fx), 0);
    assert_true(tlspolicy_generation(fx->tp) > 0);

    /* Until protocols are set, a change of the defaults applies. */
    fx->s.defaults = (struct tlspolicy_protocols){ 0, 8080, 1, 8443 };
    reopen_tp(fx);
    st = get(fx);
    assert_int_equal(st.protocols.http_enabled, 0);
    assert_int_equal(st.protocols.http_port, 8080);
    assert_int_equal(st.protocols.https_port, 8443);
}

static void test_open_argument_checks(void **state)
{
    struct fixture *fx = *state;
    struct tlspolicy *tp = (struct tlspolicy *)fx;
    struct tlspolicy_settings s = default_settings();
    assert_int_equal(tlspolicy_open(&tp, fx->tp_dir, NULL, &s), TLSPOLICY_E_INVALID);
    assert_null(tp);
    assert_int_equal(tlspolicy_open(&tp, NULL, fx->ks, &s), TLSPOLICY_E_INVALID);
    assert_int_equal(tlspolicy_open(&tp, fx->tp_dir, fx->ks, NULL), TLSPOLICY_E_INVALID);
    assert_int_equal(tlspolicy_open(NULL, fx->tp_dir, fx->ks, &s), TLSPOLICY_E_INVALID);
    s.defaults.http_port = 0;  /* only a forced port may be 0 */
    assert_int_equal(tlspolicy_open(&tp, fx->tp_dir, fx->ks, &s), TLSPOLICY_E_INVALID);
    s = default_settings();
    s.confirm_window_s = -1;
    assert_int_equal(tlspolicy_open(&tp, fx->tp_dir, fx->ks, &s), TLSPOLICY_E_INVALID);
    s = default_settings();
    s.n_reserved_ports = TLSPOLICY_MAX_RESERVED_PORTS + 1;
    assert_int_equal(tlspolicy_open(&tp, fx->tp_dir, fx->ks, &s), TLSPOLICY_E_INVALID);
    assert_null(tp);
    tlspolicy_close(NULL);
}

static void test_protocols_validation(void **state)
{
    struct fixture *fx = *state;
    unsigned long gen = tlspolicy_generation(fx->tp);
    static const struct {
        struct tlspolicy_protocols p;
        int rc;
    } bad[] = {
        { { 1, 0, 1, 443 }, TLSPOLICY_E_PORT },
        { { 1, 80, 1, 65536 }, TLSPOLICY_E_PORT },
        { { 0, -1, 1, 443 }, TLSPOLICY_E_PORT },  /* a disabled protocol's port is checked too */
        { { 1, 554, 1, 443 }, TLSPOLICY_E_PORT_RESERVED },
        { { 1, 80, 0, 3702 }, TLSPOLICY_E_PORT_RESERVED },
        { { 1, 8000, 1, 8000 }, TLSPOLICY_E_PORT_CONFLICT },
        { { 0, 80, 0, 443 }, TLSPOLICY_E_NO_PROTOCOL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tlspolicy_set_protocols(fx->tp, &bad[i].p);
        if (rc != bad[i].rc)
            fail_msg("case %zu: %s, expected %s", i, tlspolicy_strerror(rc), tlspolicy_strerror(bad[i].rc));
    }
    assert_int_equal(tlspolicy_set_protocols(fx->tp, NULL), TLSPOLICY_E_INVALID);
    assert_int_equal(tlspolicy_set_protocols(NULL, &bad[0].p), TLSPOLICY_E_INVALID);
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(is_pending(fx), 0);
    assert_int_equal(get(fx).protocols.http_port, 80);

    /* A disabled protocol keeps its port. */
    set_protocols(fx, 0, 8080, 1, 8443);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.protocols.http_enabled, 0);
    assert_int_equal(st.protocols.http_port, 8080);
    assert_int_equal(st.protocols.https_enabled, 1);
    assert_int_equal(st.protocols.https_port, 8443);
    assert_true(tlspolicy_generation(fx->tp) > gen);
    assert_int_equal(is_pending(fx), 1);
}

static void test_protocols_persist(void **state)
{
    struct fixture *fx = *state;
    set_protocols(fx, 1, 8080, 0, 8443);
    confirm_all(fx);
    char path[PATH_MAX];
    struct stat sb;
    assert_int_equal(stat(path_in(path, fx->tp_dir, "tlspolicy.xml"), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    /* Stored protocols win over a later change of the defaults. */
    fx->s.defaults = (struct tlspolicy_protocols){ 1, 81, 1, 444 };
    reopen_tp(fx);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.protocols.http_enabled, 1);
    assert_int_equal(st.protocols.http_port, 8080);
    assert_int_equal(st.protocols.https_enabled, 0);
    assert_int_equal(st.protocols.https_port, 8443);
    assert_int_equal(is_pending(fx), 0);
}

static void test_forced_ports(void **state)
{
    struct fixture *fx = *state;
    set_protocols(fx, 1, 8080, 1, 8443);
    confirm_all(fx);
    /* The command line says HTTP on 9000 for this run. */
    fx->s.defaults.http_port = 9000;
    fx->s.forced = TLSPOLICY_FORCE_HTTP_PORT;
    reopen_tp(fx);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.protocols.http_port, 9000);
    assert_int_equal(st.protocols.https_port, 8443);

    /* A change made at run time takes effect, forced port included; a
     * rollback brings the command line's port back. */
    set_protocols(fx, 1, 7000, 1, 7443);
    st = get(fx);
    assert_int_equal(st.protocols.http_port, 7000);
    assert_int_equal(st.protocols.https_port, 7443);
    assert_int_equal(tlspolicy_rollback(fx->tp, "test"), 1);
    st = get(fx);
    assert_int_equal(st.protocols.http_port, 9000);
    assert_int_equal(st.protocols.https_port, 8443);
    set_protocols(fx, 1, 7000, 1, 7443);
    confirm_all(fx);
    st = get(fx);
    assert_int_equal(st.protocols.http_port, 7000);
    char *text = tp_file(fx);
    assert_non_null(text);
    assert_non_null(strstr(text, ">7000<"));
    free(text);
    /* Setting the stored values again while a forced port is in effect is a
     * change (the forced port goes). */
    reopen_tp(fx);
    assert_int_equal(get(fx).protocols.http_port, 9000);
    set_protocols(fx, 1, 7000, 1, 7443);
    assert_int_equal(get(fx).protocols.http_port, 7000);
    confirm_all(fx);

    /* A free port from the command line (0). */
    fx->s.defaults.https_port = 0;
    fx->s.forced = TLSPOLICY_FORCE_HTTP_PORT | TLSPOLICY_FORCE_HTTPS_PORT;
    reopen_tp(fx);
    st = get(fx);
    assert_int_equal(st.protocols.http_port, 9000);
    assert_int_equal(st.protocols.https_port, 0);

    fx->s = default_settings();
    reopen_tp(fx);
    st = get(fx);
    assert_int_equal(st.protocols.http_port, 7000);
    assert_int_equal(st.protocols.https_port, 7443);
}

static void test_identical_value_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    unsigned long gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS_ALL), TLSPOLICY_OK);
    assert_int_equal(tlspolicy_set_cn_maps_to_user(fx->tp, 0), TLSPOLICY_OK);
    assert_int_equal(tlspolicy_set_client_auth(fx->tp, 0), TLSPOLICY_OK);
    /* The defaults, set explicitly: nothing to confirm, but now stored. */
    set_protocols(fx, 1, 80, 1, 443);
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(is_pending(fx), 0);
    fx->s.defaults = (struct tlspolicy_protocols){ 1, 81, 1, 444 };
    reopen_tp(fx);
    assert_int_equal(get(fx).protocols.http_port, 80);
    assert_int_equal(get(fx).protocols.https_port, 443);
    gen = tlspolicy_generation(fx->tp);
    set_protocols(fx, 1, 80, 1, 443);
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(is_pending(fx), 0);
}

/* --- server certification paths ------------------------------------------- */

static void test_server_path_not_found_and_no_private_key(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(tlspolicy_add_server_path(fx->tp, "PATH-9"), TLSPOLICY_E_PATH_NOT_FOUND);
    assert_int_equal(tlspolicy_add_server_path(fx->tp, "not an id"), TLSPOLICY_E_PATH_NOT_FOUND);
    assert_int_equal(tlspolicy_add_server_path(fx->tp, NULL), TLSPOLICY_E_INVALID);
    /* A certificate whose key has no private part. */
    EVP_PKEY *k = ec_key();
    char pid[KEYSTORE_ID_MAX];
    time_t now = time(NULL);
    path_for_at(fx, k, 1, now - 60, now + 86400, pid);
    EVP_PKEY_free(k);
    unsigned long gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_add_server_path(fx->tp, pid), TLSPOLICY_E_NO_PRIVATE_KEY);
    assert_int_equal(get(fx).n_server_paths, 0);
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(is_pending(fx), 0);
}

static void test_server_path_family_and_full(void **state)
{
    struct fixture *fx = *state;
    char ec1[KEYSTORE_ID_MAX], ec2[KEYSTORE_ID_MAX], rsa[KEYSTORE_ID_MAX];
    ec_path(fx, ec1);
    ec_path(fx, ec2);
    path_for(fx, rsa_key, rsa);
    add_path(fx, ec1);
    unsigned long gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_add_server_path(fx->tp, ec1), TLSPOLICY_OK); /* no effect */
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(tlspolicy_add_server_path(fx->tp, ec2), TLSPOLICY_E_KEY_TYPE);
    add_path(fx, rsa);
    assert_int_equal(tlspolicy_add_server_path(fx->tp, ec2), TLSPOLICY_E_FULL);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.n_server_paths, 2);
    assert_string_equal(st.server_paths[0], ec1);
    assert_string_equal(st.server_paths[1], rsa);
    confirm_all(fx);
    reopen_tp(fx);
    st = get(fx);
    assert_int_equal(st.n_server_paths, 2);
    assert_string_equal(st.server_paths[0], ec1);
    assert_string_equal(st.server_paths[1], rsa);
}

static void test_server_path_remove(void **state)
{
    struct fixture *fx = *state;
    char ec1[KEYSTORE_ID_MAX], rsa[KEYSTORE_ID_MAX];
    ec_path(fx, ec1);
    path_for(fx, rsa_key, rsa);
    assert_int_equal(tlspolicy_remove_server_path(fx->tp, ec1), TLSPOLICY_E_NOT_ASSIGNED);
    add_path(fx, ec1);
    /* Security: ReferenceExists while the TLS server is enabled, last or not. */
    assert_int_equal(tlspolicy_remove_server_path(fx->tp, ec1), TLSPOLICY_E_IN_USE);
    add_path(fx, rsa);
    assert_int_equal(tlspolicy_remove_server_path(fx->tp, ec1), TLSPOLICY_E_IN_USE);
    assert_int_equal(get(fx).n_server_paths, 2);
    /* HTTPS off: they may go, the last one unless client authentication needs it. */
    set_protocols(fx, 1, 80, 0, 443);
    assert_int_equal(tlspolicy_remove_server_path(fx->tp, ec1), TLSPOLICY_OK);
    assert_int_equal(get(fx).n_server_paths, 1);
    assert_string_equal(get(fx).server_paths[0], rsa);
    struct ca ca;
    make_ca(fx, "Client CA", 0, &ca);
    add_policy(fx, ca.policy_id);
    assert_int_equal(tlspolicy_set_client_auth(fx->tp, 1), TLSPOLICY_OK);
    assert_int_equal(tlspolicy_remove_server_path(fx->tp, rsa), TLSPOLICY_E_IN_USE);
    assert_int_equal(tlspolicy_set_client_auth(fx->tp, 0), TLSPOLICY_OK);
    assert_int_equal(tlspolicy_remove_server_path(fx->tp, rsa), TLSPOLICY_OK);
    assert_int_equal(get(fx).n_server_paths, 0);
    free_ca(&ca);
}

static void test_server_path_replace(void **state)
{
    struct fixture *fx = *state;
    char ec1[KEYSTORE_ID_MAX], ec2[KEYSTORE_ID_MAX], rsa[KEYSTORE_ID_MAX], nokey[KEYSTORE_ID_MAX];
    ec_path(fx, ec1);
    ec_path(fx, ec2);
    path_for(fx, rsa_key, rsa);
    EVP_PKEY *k = ec_key();
    time_t now = time(NULL);
    path_for_at(fx, k, 1, now - 60, now + 86400, nokey);
    EVP_PKEY_free(k);
    assert_int_equal(tlspolicy_replace_server_path(fx->tp, ec1, ec2), TLSPOLICY_E_NOT_ASSIGNED);
    add_path(fx, ec1);
    add_path(fx, rsa);
    assert_int_equal(tlspolicy_replace_server_path(fx->tp, ec1, "PATH-99"), TLSPOLICY_E_PATH_NOT_FOUND);
    assert_int_equal(tlspolicy_replace_server_path(fx->tp, ec1, nokey), TLSPOLICY_E_NO_PRIVATE_KEY);
    assert_int_equal(tlspolicy_replace_server_path(fx->tp, rsa, ec2), TLSPOLICY_E_KEY_TYPE);
    assert_int_equal(tlspolicy_replace_server_path(fx->tp, ec1, NULL), TLSPOLICY_E_INVALID);
    /* The same family as the one it replaces. */
    assert_int_equal(tlspolicy_replace_server_path(fx->tp, ec1, ec2), TLSPOLICY_OK);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.n_server_paths, 2);
    assert_string_equal(st.server_paths[0], ec2);
    assert_string_equal(st.server_paths[1], rsa);
    /* By one already assigned: the old one just goes. */
    assert_int_equal(tlspolicy_replace_server_path(fx->tp, rsa, ec2), TLSPOLICY_OK);
    st = get(fx);
    assert_int_equal(st.n_server_paths, 1);
    assert_string_equal(st.server_paths[0], ec2);
}

/* --- TLS versions ---------------------------------------------------------- */

static void test_tls_versions(void **state)
{
    struct fixture *fx = *state;
    unsigned v = 99;
    assert_int_equal(tlspolicy_parse_versions("1.2 1.3", &v), TLSPOLICY_OK);
    assert_int_equal(v, TLSPOLICY_TLS_ALL);
    assert_int_equal(tlspolicy_parse_versions("  1.3\t", &v), TLSPOLICY_OK);
    assert_int_equal(v, TLSPOLICY_TLS13);
    assert_int_equal(tlspolicy_parse_versions("1.2", &v), TLSPOLICY_OK);
    assert_int_equal(v, TLSPOLICY_TLS12);
    v = 99;
    assert_int_equal(tlspolicy_parse_versions("1.1 1.2", &v), TLSPOLICY_E_VERSION);
    assert_int_equal(tlspolicy_parse_versions("1.0", &v), TLSPOLICY_E_VERSION);
    assert_int_equal(tlspolicy_parse_versions("1.3x", &v), TLSPOLICY_E_VERSION);
    assert_int_equal(tlspolicy_parse_versions("1.2,1.3", &v), TLSPOLICY_E_VERSION);
    assert_int_equal(tlspolicy_parse_versions("", &v), TLSPOLICY_E_EMPTY);
    assert_int_equal(tlspolicy_parse_versions("   ", &v), TLSPOLICY_E_EMPTY);
    assert_int_equal(tlspolicy_parse_versions(NULL, &v), TLSPOLICY_E_INVALID);
    assert_int_equal(v, 99);

    char buf[16];
    tlspolicy_format_versions(TLSPOLICY_TLS_ALL, buf, sizeof buf);
    assert_string_equal(buf, "1.2 1.3");
    tlspolicy_format_versions(TLSPOLICY_TLS13, buf, sizeof buf);
    assert_string_equal(buf, "1.3");
    tlspolicy_format_versions(TLSPOLICY_TLS12, buf, sizeof buf);
    assert_string_equal(buf, "1.2");

    unsigned long gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, 0), TLSPOLICY_E_EMPTY);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, 4), TLSPOLICY_E_VERSION);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS13 | 8), TLSPOLICY_E_VERSION);
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS13), TLSPOLICY_OK);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS13);
    confirm_all(fx);
    reopen_tp(fx);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS13);
}

/* --- client authentication and validation policies ------------------------ */

static void test_client_auth_preconditions(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(tlspolicy_set_client_auth(fx->tp, 1), TLSPOLICY_E_NO_CLIENT_POLICY);
    struct ca ca;
    make_ca(fx, "Client CA", 0, &ca);
    add_policy(fx, ca.policy_id);
    assert_int_equal(tlspolicy_set_client_auth(fx->tp, 1), TLSPOLICY_E_NO_SERVER_CERT);
    assert_int_equal(get(fx).client_auth_required, 0);
    char pid[KEYSTORE_ID_MAX];
    ec_path(fx, pid);
    add_path(fx, pid);
    assert_int_equal(tlspolicy_set_client_auth(fx->tp, 7), TLSPOLICY_OK);
    assert_int_equal(get(fx).client_auth_required, 1);
    /* The last policy cannot go while client authentication needs it. */
    assert_int_equal(tlspolicy_remove_cpv_policy(fx->tp, ca.policy_id), TLSPOLICY_E_IN_USE);
    assert_int_equal(tlspolicy_set_cn_maps_to_user(fx->tp, 1), TLSPOLICY_OK);
    confirm_all(fx);
    reopen_tp(fx);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.client_auth_required, 1);
    assert_int_equal(st.cn_maps_to_user, 1);
    assert_int_equal(st.n_cpv_policies, 1);
    assert_string_equal(st.cpv_policies[0], ca.policy_id);
    free_ca(&ca);
}

static void test_cpv_assign_rules(void **state)
{
    struct fixture *fx = *state;
    struct ca ca;
    make_ca(fx, "Client CA", 0, &ca);
    char ids[TLSPOLICY_MAX_CPV_POLICIES + 1][KEYSTORE_ID_MAX];
    memcpy(ids[0], ca.policy_id, KEYSTORE_ID_MAX);
    for (size_t i = 1; i <= TLSPOLICY_MAX_CPV_POLICIES; i++)
        create_cpv(fx, ca.cert_id, 0, ids[i]);
    assert_int_equal(tlspolicy_add_cpv_policy(fx->tp, "CPVP-99"), TLSPOLICY_E_POLICY_NOT_FOUND);
    assert_int_equal(tlspolicy_add_cpv_policy(fx->tp, "-bad"), TLSPOLICY_E_POLICY_NOT_FOUND);
    assert_int_equal(tlspolicy_remove_cpv_policy(fx->tp, ids[0]), TLSPOLICY_E_NOT_ASSIGNED);
    assert_int_equal(tlspolicy_replace_cpv_policy(fx->tp, ids[0], ids[1]), TLSPOLICY_E_NOT_ASSIGNED);
    add_policy(fx, ids[0]);
    unsigned long gen = tlspolicy_generation(fx->tp);
    add_policy(fx, ids[0]); /* no effect */
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(get(fx).n_cpv_policies, 1);
    for (size_t i = 1; i < TLSPOLICY_MAX_CPV_POLICIES; i++)
        add_policy(fx, ids[i]);
    assert_int_equal(tlspolicy_add_cpv_policy(fx->tp, ids[TLSPOLICY_MAX_CPV_POLICIES]), TLSPOLICY_E_FULL);
    /* Replace: by a missing one, by an unassigned one, by an assigned one. */
    assert_int_equal(tlspolicy_replace_cpv_policy(fx->tp, ids[0], "CPVP-99"), TLSPOLICY_E_POLICY_NOT_FOUND);
    assert_int_equal(tlspolicy_replace_cpv_policy(fx->tp, ids[0], ids[TLSPOLICY_MAX_CPV_POLICIES]), TLSPOLICY_OK);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.n_cpv_policies, TLSPOLICY_MAX_CPV_POLICIES);
    assert_string_equal(st.cpv_policies[0], ids[TLSPOLICY_MAX_CPV_POLICIES]);
    assert_int_equal(tlspolicy_replace_cpv_policy(fx->tp, ids[1], ids[2]), TLSPOLICY_OK);
    st = get(fx);
    assert_int_equal(st.n_cpv_policies, TLSPOLICY_MAX_CPV_POLICIES - 1);
    assert_string_equal(st.cpv_policies[1], ids[2]);
    assert_int_equal(tlspolicy_remove_cpv_policy(fx->tp, ids[2]), TLSPOLICY_OK);
    assert_int_equal(get(fx).n_cpv_policies, TLSPOLICY_MAX_CPV_POLICIES - 2);
    free_ca(&ca);
}

/* --- reference check ------------------------------------------------------- */

static void test_reference_check(void **state)
{
    struct fixture *fx = *state;
    char pid[KEYSTORE_ID_MAX], other[KEYSTORE_ID_MAX];
    EVP_PKEY *k = ec_key();
    path_for(fx, k, pid);
    EVP_PKEY_free(k);
    path_for(fx, rsa_key, other);
    struct keystore_path_info pi;
    struct keystore_cert_info ci;
    assert_int_equal(keystore_path_info(fx->ks, pid, &pi), KEYSTORE_OK);
    assert_int_equal(keystore_cert_info(fx->ks, pi.cert_ids[0], &ci), KEYSTORE_OK);
    struct ca ca;
    make_ca(fx, "Client CA", 0, &ca);

    add_path(fx, pid);
    add_path(fx, other);
    add_policy(fx, ca.policy_id);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, ca.policy_id), KEYSTORE_E_REFERENCED);
    confirm_all(fx);

    /* Removed, but the confirmed state still holds them until confirmed. */
    set_protocols(fx, 1, 80, 0, 443);
    confirm_all(fx);
    assert_int_equal(tlspolicy_remove_server_path(fx->tp, pid), TLSPOLICY_OK);
    assert_int_equal(tlspolicy_remove_cpv_policy(fx->tp, ca.policy_id), TLSPOLICY_OK);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, ca.policy_id), KEYSTORE_E_REFERENCED);
    confirm_all(fx);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, pi.cert_ids[0]), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, ci.key_id), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, ca.policy_id), KEYSTORE_OK);

    /* Still assigned: other, and its certificate and key through it. */
    assert_int_equal(keystore_delete_path(fx->ks, other), KEYSTORE_E_REFERENCED);
    /* Closed: the check is gone. */
    tlspolicy_close(fx->tp);
    fx->tp = NULL;
    assert_int_equal(keystore_delete_path(fx->ks, other), KEYSTORE_OK);
    reopen_tp(fx);
    assert_int_equal(get(fx).n_server_paths, 0); /* dropped: gone from the keystore */
    free_ca(&ca);
}

static void test_load_drops_missing_objects(void **state)
{
    struct fixture *fx = *state;
    char pid[KEYSTORE_ID_MAX], keep[KEYSTORE_ID_MAX];
    ec_path(fx, pid);
    path_for(fx, rsa_key, keep);
    struct ca ca, ca2;
    make_ca(fx, "Client CA", 0, &ca);
    make_ca(fx, "Client CA 2", 0, &ca2);
    add_path(fx, pid);
    add_path(fx, keep);
    add_policy(fx, ca.policy_id);
    add_policy(fx, ca2.policy_id);
    assert_int_equal(tlspolicy_set_client_auth(fx->tp, 1), TLSPOLICY_OK);
    confirm_all(fx);
    tlspolicy_close(fx->tp);
    fx->tp = NULL;
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, ca.policy_id), KEYSTORE_OK);
    reopen_tp(fx);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.n_server_paths, 1);
    assert_string_equal(st.server_paths[0], keep);
    assert_int_equal(st.n_cpv_policies, 1);
    assert_string_equal(st.cpv_policies[0], ca2.policy_id);
    assert_int_equal(st.client_auth_required, 1);
    char *text = tp_file(fx);
    assert_non_null(text);
    assert_null(strstr(text, pid));
    free(text);

    /* Without any policy left, client authentication cannot stay on. */
    tlspolicy_close(fx->tp);
    fx->tp = NULL;
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, ca2.policy_id), KEYSTORE_OK);
    reopen_tp(fx);
    st = get(fx);
    assert_int_equal(st.n_cpv_policies, 0);
    assert_int_equal(st.client_auth_required, 0);
    free_ca(&ca);
    free_ca(&ca2);
}

/* --- safe apply ------------------------------------------------------------ */

static void test_pending_and_confirm(void **state)
{
    struct fixture *fx = *state;
    unsigned long before = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_confirm(fx->tp, before, 1), 0); /* nothing pending */
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS13), TLSPOLICY_OK);
    unsigned long gen = 0;
    int64_t left = 0;
    assert_int_equal(tlspolicy_pending(fx->tp, &gen, &left), 1);
    assert_true(gen > before);
    assert_int_equal(gen, tlspolicy_generation(fx->tp));
    assert_int_equal(left, WINDOW_S * 1000);
    fake_ms += 10000;
    assert_int_equal(tlspolicy_pending(fx->tp, &gen, &left), 1);
    assert_int_equal(left, (WINDOW_S - 10) * 1000);
    char *text = tp_file(fx);
    assert_non_null(strstr(text, "<confirmed>"));
    free(text);

    /* An administrator on a connection from before the change does not confirm it. */
    assert_int_equal(tlspolicy_confirm(fx->tp, gen - 1, 1), 0);
    assert_int_equal(is_pending(fx), 1);
    assert_int_equal(tlspolicy_confirm(fx->tp, gen, 1), 1);
    assert_int_equal(is_pending(fx), 0);
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS13);
    text = tp_file(fx);
    assert_null(strstr(text, "<confirmed>"));
    free(text);
    fake_ms += WINDOW_S * 1000;
    assert_int_equal(tlspolicy_expire(fx->tp), 0);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS13);
}

/* A change about what TLS clients meet is only confirmed over TLS while
 * HTTPS is on; a plain-HTTP change is confirmed either way. */
static void test_confirm_over_tls(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS13), TLSPOLICY_OK);
    unsigned long gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_confirm(fx->tp, gen, 0), 0);
    assert_int_equal(tlspolicy_pending(fx->tp, NULL, NULL), 1);
    assert_int_equal(tlspolicy_confirm(fx->tp, gen, 1), 1);
    set_protocols(fx, 1, 8081, 1, 443);
    gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_confirm(fx->tp, gen, 0), 1);
    /* HTTPS turned off: nothing TLS clients could show. */
    set_protocols(fx, 1, 8081, 0, 443);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS_ALL), TLSPOLICY_OK);
    gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_confirm(fx->tp, gen, 0), 1);
}

static void test_expire_rolls_back(void **state)
{
    struct fixture *fx = *state;
    char pid[KEYSTORE_ID_MAX];
    ec_path(fx, pid);
    add_path(fx, pid);
    confirm_all(fx);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS12), TLSPOLICY_OK);
    set_protocols(fx, 1, 8080, 1, 8443);
    unsigned long gen = tlspolicy_generation(fx->tp);
    fake_ms += WINDOW_S * 1000 - 1;
    assert_int_equal(tlspolicy_expire(fx->tp), 0);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS12);
    fake_ms += 1;
    assert_int_equal(tlspolicy_expire(fx->tp), 1);
    assert_int_equal(is_pending(fx), 0);
    assert_true(tlspolicy_generation(fx->tp) > gen);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.tls_versions, TLSPOLICY_TLS_ALL);
    assert_int_equal(st.protocols.http_port, 80);
    assert_int_equal(st.n_server_paths, 1);
    assert_int_equal(tlspolicy_expire(fx->tp), 0);
    /* Late confirmation of the undone change confirms nothing. */
    assert_int_equal(tlspolicy_confirm(fx->tp, tlspolicy_generation(fx->tp), 1), 0);
    char *text = tp_file(fx);
    assert_non_null(text);
    assert_null(strstr(text, "<confirmed>"));
    assert_null(strstr(text, "8080"));
    free(text);
    reopen_tp(fx);
    st = get(fx);
    assert_int_equal(st.tls_versions, TLSPOLICY_TLS_ALL);
    assert_int_equal(st.protocols.http_port, 80);
    assert_int_equal(st.n_server_paths, 1);
    assert_string_equal(st.server_paths[0], pid);
}

static void test_two_changes_in_one_window(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS12), TLSPOLICY_OK);
    unsigned long first = tlspolicy_generation(fx->tp);
    fake_ms += 30000;
    assert_int_equal(tlspolicy_set_cn_maps_to_user(fx->tp, 1), TLSPOLICY_OK);
    unsigned long gen = 0;
    int64_t left = 0;
    assert_int_equal(tlspolicy_pending(fx->tp, &gen, &left), 1);
    assert_true(gen > first);
    assert_int_equal(left, WINDOW_S * 1000); /* extended */
    /* A connection from between the two changes does not confirm the second. */
    assert_int_equal(tlspolicy_confirm(fx->tp, first, 1), 0);
    fake_ms += 31000; /* past the first change's window, inside the second's */
    assert_int_equal(tlspolicy_expire(fx->tp), 0);
    fake_ms += 29000;
    assert_int_equal(tlspolicy_expire(fx->tp), 1);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.tls_versions, TLSPOLICY_TLS_ALL);
    assert_int_equal(st.cn_maps_to_user, 0);
}

static void test_reopen_with_pending_rolls_back(void **state)
{
    struct fixture *fx = *state;
    set_protocols(fx, 1, 8080, 1, 8443);
    confirm_all(fx);
    set_protocols(fx, 1, 9080, 0, 9443);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS13), TLSPOLICY_OK);
    reopen_tp(fx);
    assert_int_equal(is_pending(fx), 0);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.protocols.http_port, 8080);
    assert_int_equal(st.protocols.https_enabled, 1);
    assert_int_equal(st.protocols.https_port, 8443);
    assert_int_equal(st.tls_versions, TLSPOLICY_TLS_ALL);
    char *text = tp_file(fx);
    assert_null(strstr(text, "<confirmed>"));
    assert_null(strstr(text, "9080"));
    free(text);
}

static void test_rollback_now(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(tlspolicy_rollback(fx->tp, "nothing pending"), 0);
    unsigned long gen = tlspolicy_generation(fx->tp);
    set_protocols(fx, 1, 8080, 1, 8443);
    assert_int_equal(tlspolicy_rollback(fx->tp, "port 8080 is in use"), 1);
    assert_true(tlspolicy_generation(fx->tp) > gen + 1);
    assert_int_equal(is_pending(fx), 0);
    assert_int_equal(get(fx).protocols.http_port, 80);
    char *text = tp_file(fx);
    assert_non_null(text);
    assert_null(strstr(text, "<confirmed>"));
    assert_null(strstr(text, "8080"));
    free(text);
    reopen_tp(fx);
    assert_int_equal(get(fx).protocols.http_port, 80);
}

static void test_window_zero_is_final(void **state)
{
    struct fixture *fx = *state;
    fx->s.confirm_window_s = 0;
    reopen_tp(fx);
    unsigned long gen = tlspolicy_generation(fx->tp);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS13), TLSPOLICY_OK);
    assert_int_equal(tlspolicy_generation(fx->tp), gen + 1);
    assert_int_equal(is_pending(fx), 0);
    fake_ms += 3600 * 1000;
    assert_int_equal(tlspolicy_expire(fx->tp), 0);
    assert_int_equal(tlspolicy_rollback(fx->tp, "test"), 0);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS13);
    char *text = tp_file(fx);
    assert_null(strstr(text, "<confirmed>"));
    free(text);
    reopen_tp(fx);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS13);
}

/* --- the file --------------------------------------------------------------- */

static void test_failed_store_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    char pid[KEYSTORE_ID_MAX];
    ec_path(fx, pid);
    struct ca ca;
    make_ca(fx, "Client CA", 0, &ca);
    unsigned long gen = tlspolicy_generation(fx->tp);
    remove_tree(fx->tp_dir); /* every save now fails */
    struct tlspolicy_protocols p = { 1, 8080, 1, 8443 };
    assert_int_equal(tlspolicy_set_protocols(fx->tp, &p), TLSPOLICY_E_STORE);
    assert_int_equal(tlspolicy_set_tls_versions(fx->tp, TLSPOLICY_TLS13), TLSPOLICY_E_STORE);
    assert_int_equal(tlspolicy_add_server_path(fx->tp, pid), TLSPOLICY_E_STORE);
    assert_int_equal(tlspolicy_add_cpv_policy(fx->tp, ca.policy_id), TLSPOLICY_E_STORE);
    assert_int_equal(tlspolicy_set_cn_maps_to_user(fx->tp, 1), TLSPOLICY_E_STORE);
    assert_int_equal(tlspolicy_generation(fx->tp), gen);
    assert_int_equal(is_pending(fx), 0);
    struct tlspolicy_state st = get(fx);
    assert_int_equal(st.protocols.http_port, 80);
    assert_int_equal(st.tls_versions, TLSPOLICY_TLS_ALL);
    assert_int_equal(st.n_server_paths, 0);
    assert_int_equal(st.n_cpv_policies, 0);
    assert_int_equal(st.cn_maps_to_user, 0);
    /* Nothing was assigned, so nothing is protected. */
    assert_int_equal(mkdir(fx->tp_dir, 0700), 0);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, ca.policy_id), KEYSTORE_OK);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    free_ca(&ca);
}

static void test_file_contents(void **state)
{
    struct fixture *fx = *state;
    char pid[KEYSTORE_ID_MAX];
    ec_path(fx, pid);
    add_path(fx, pid);
    confirm_all(fx);
    char *text = tp_file(fx);
    assert_non_null(text);
    assert_non_null(strstr(text, "<tlspolicy>"));
    assert_non_null(strstr(text, "<tls-versions>1.2 1.3</tls-versions>"));
    char want[64];
    snprintf(want, sizeof want, "<server-path>%s</server-path>", pid);
    assert_non_null(strstr(text, want));
    assert_null(strstr(text, "http-port")); /* protocols never set */
    free(text);
}

static void test_corrupt_file_refused(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[] = {
        "not xml",
        "<other/>",
        "<tlspolicy/>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.1</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>2</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user><colour>red</colour></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user><cn-maps-to-user>0</cn-maps-to-user></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user><server-path>1PATH</server-path></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user><server-path>PATH-0123456789012345678901234567</server-path>"
        "</current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user><http-enabled>1</http-enabled><http-port>80</http-port>"
        "</current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user><http-enabled>1</http-enabled><http-port>0</http-port>"
        "<https-enabled>1</https-enabled><https-port>443</https-port></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user><http-enabled>1</http-enabled><http-port>080</http-port>"
        "<https-enabled>1</https-enabled><https-port>443</https-port></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>1</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user></current></tlspolicy>",
        "<tlspolicy><current><tls-versions>1.2</tls-versions><client-auth>0</client-auth>"
        "<cn-maps-to-user>0</cn-maps-to-user></current>junk</tlspolicy>",
        "<!DOCTYPE tlspolicy [<!ENTITY v \"1.2\">]><tlspolicy><current><tls-versions>&v;</tls-versions>"
        "<client-auth>0</client-auth><cn-maps-to-user>0</cn-maps-to-user></current></tlspolicy>",
    };
    tlspolicy_close(fx->tp);
    fx->tp = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_tp_file(fx, bad[i]);
        struct tlspolicy *tp = NULL;
        int rc = tlspolicy_open(&tp, fx->tp_dir, fx->ks, &fx->s);
        if (rc != TLSPOLICY_E_STORE)
            fail_msg("case %zu opened: %s", i, tlspolicy_strerror(rc));
        assert_null(tp);
    }
    /* The minimal good file, for contrast. */
    write_tp_file(fx, "<tlspolicy><current><tls-versions>1.3</tls-versions><client-auth>0</client-auth>"
                      "<cn-maps-to-user>1</cn-maps-to-user></current></tlspolicy>");
    reopen_tp(fx);
    assert_int_equal(get(fx).tls_versions, TLSPOLICY_TLS13);
    assert_int_equal(get(fx).cn_maps_to_user, 1);
}

/* --- server identities ----------------------------------------------------- */

static void test_server_identities(void **state)
{
    struct fixture *fx = *state;
    struct tlspolicy_identity ids[TLSPOLICY_MAX_SERVER_PATHS];
    size_t n = 99;
    assert_int_equal(tlspolicy_server_identities(fx->tp, ids, &n), TLSPOLICY_OK);
    assert_int_equal(n, 0);

    /* leaf <- intermediate, stored as a two-certificate path. */
    EVP_PKEY *root_key = ec_key(), *inter_key = ec_key(), *leaf_key = ec_key();
    X509 *root = self_signed(root_key, "Root", 1);
    X509 *inter = issued(inter_key, "Intermediate", root, root_key, 1, 0);
    X509 *leaf = issued(leaf_key, "camera.example", inter, inter_key, 0, 1);
    char kid[KEYSTORE_ID_MAX], lid[KEYSTORE_ID_MAX], iid[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX];
    upload_key(fx, leaf_key, kid);
    upload_cert(fx, leaf, lid);
    upload_cert(fx, inter, iid);
    const char *cids[] = { lid, iid };
    make_path(fx, cids, 2, pid);
    add_path(fx, pid);

    assert_int_equal(tlspolicy_server_identities(fx->tp, ids, &n), TLSPOLICY_OK);
    assert_int_equal(n, 1);
    assert_int_equal(EVP_PKEY_eq(ids[0].key, leaf_key), 1);
    assert_int_equal(X509_cmp(ids[0].cert, leaf), 0);
    assert_int_equal(sk_X509_num(ids[0].chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(ids[0].chain, 0), inter), 0);
    assert_int_equal(X509_check_private_key(ids[0].cert, ids[0].key), 1);
    /* The references are the caller's: they outlive a change. */
    struct tlspolicy_identity again[TLSPOLICY_MAX_SERVER_PATHS];
    size_t m = 0;
    assert_int_equal(tlspolicy_server_identities(fx->tp, again, &m), TLSPOLICY_OK);
    assert_int_equal(m, 1);
    tlspolicy_identities_free(again, m);
    char rsa[KEYSTORE_ID_MAX];
    path_for(fx, rsa_key, rsa);
    add_path(fx, rsa);
    assert_int_equal(tlspolicy_server_identities(fx->tp, again, &m), TLSPOLICY_OK);
    assert_int_equal(m, 2);
    assert_int_equal(EVP_PKEY_eq(again[1].key, rsa_key), 1);
    assert_int_equal(sk_X509_num(again[1].chain), 0);
    tlspolicy_identities_free(again, m);
    assert_int_equal(X509_cmp(ids[0].cert, leaf), 0);
    tlspolicy_identities_free(ids, n);

    /* Expired by the wall clock: not served. */
    fake_wall = time(NULL) + 2 * 86400;
    assert_int_equal(tlspolicy_server_identities(fx->tp, ids, &n), TLSPOLICY_OK);
    assert_int_equal(n, 0);
    fake_wall = time(NULL) - 3600; /* not yet valid */
    assert_int_equal(tlspolicy_server_identities(fx->tp, ids, &n), TLSPOLICY_OK);
    assert_int_equal(n, 0);
    fake_wall = 0;
    assert_int_equal(tlspolicy_server_identities(fx->tp, ids, &n), TLSPOLICY_OK);
    assert_int_equal(n, 2);
    tlspolicy_identities_free(ids, n);
    assert_int_equal(tlspolicy_server_identities(fx->tp, NULL, &n), TLSPOLICY_E_INVALID);

    EVP_PKEY_free(root_key);
    EVP_PKEY_free(inter_key);
    EVP_PKEY_free(leaf_key);
    X509_free(root);
    X509_free(inter);
    X509_free(leaf);
}

/* --- client certificates --------------------------------------------------- */

static void test_verify_client_without_policy(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *k = ec_key();
    X509 *x = self_signed(k, "alice", 0);
    char cn[65] = "unchanged";
    const char *why = NULL;
    assert_int_equal(verify(fx, x, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    assert_string_equal(why, "no validation policy is assigned");
    assert_string_equal(cn, "");
    assert_int_equal(tlspolicy_verify_client(fx->tp, NULL, NULL, cn, sizeof cn, &why), TLSPOLICY_E_INVALID);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_verify_client_anchor_and_other_ca(void **state)
{
    struct fixture *fx = *state;
    struct ca ca, stranger;
    make_ca(fx, "Client CA", 0, &ca);
    stranger.key = ec_key();
    stranger.cert = self_signed(stranger.key, "Stranger CA", 1);
    add_policy(fx, ca.policy_id);
    EVP_PKEY *k = ec_key();
    X509 *good = issued(k, "alice", ca.cert, ca.key, 0, 0);
    X509 *bad = issued(k, "mallory", stranger.cert, stranger.key, 0, 0);
    char cn[65];
    const char *why = NULL;
    assert_int_equal(verify(fx, good, NULL, cn, &why), TLSPOLICY_OK);
    assert_string_equal(cn, "alice");
    assert_null(why);
    assert_int_equal(verify(fx, bad, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    assert_non_null(why);
    assert_string_equal(cn, "");
    /* Sending its CA along does not make it trusted. */
    STACK_OF(X509) *sent = sk_X509_new_null();
    assert_int_equal(sk_X509_push(sent, stranger.cert), 1);
    assert_int_equal(verify(fx, bad, sent, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    sk_X509_free(sent);
    /* Valid under any one policy. */
    upload_cert(fx, stranger.cert, stranger.cert_id);
    create_cpv(fx, stranger.cert_id, 0, stranger.policy_id);
    add_policy(fx, stranger.policy_id);
    assert_int_equal(verify(fx, bad, NULL, cn, &why), TLSPOLICY_OK);
    assert_string_equal(cn, "mallory");
    /* A CN that does not fit fails rather than being cut. */
    assert_int_equal(tlspolicy_verify_client(fx->tp, good, NULL, cn, 5, &why), TLSPOLICY_E_CLIENT_CERT);
    assert_int_equal(tlspolicy_verify_client(fx->tp, good, NULL, cn, 6, &why), TLSPOLICY_OK);
    assert_string_equal(cn, "alice");
    /* The last CN of the subject counts. */
    struct x509util_rdn rdns[] = { { "CN", "first" }, { "O", "Example" }, { "CN", "second" } };
    X509_NAME *two = NULL;
    size_t bad_index = 0;
    assert_int_equal(x509util_make_name(rdns, 3, &two, &bad_index), X509UTIL_OK);
    X509 *twice = NULL;
    time_t now = time(NULL);
    assert_int_equal(x509util_issue(k, two, ca.cert, ca.key, now - 60, now + 86400, NULL, 0, 0, 0, EVP_sha256(), &twice),
                     X509UTIL_OK);
    X509_NAME_free(two);
    assert_int_equal(verify(fx, twice, NULL, cn, &why), TLSPOLICY_OK);
    assert_string_equal(cn, "second");
    X509_free(twice);
    /* Outside its validity at the wall clock. */
    fake_wall = time(NULL) + 2 * 86400;
    assert_int_equal(verify(fx, good, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    fake_wall = 0;
    X509_free(good);
    X509_free(bad);
    EVP_PKEY_free(k);
    free_ca(&ca);
    free_ca(&stranger);
}

static void test_verify_client_revocation(void **state)
{
    struct fixture *fx = *state;
    struct ca ca;
    make_ca(fx, "Client CA", 0, &ca);
    add_policy(fx, ca.policy_id);
    EVP_PKEY *k = ec_key();
    X509 *alice = issued(k, "alice", ca.cert, ca.key, 0, 0);
    X509 *bob = issued(k, "bob", ca.cert, ca.key, 0, 0);
    char cn[65];
    const char *why = NULL;
    /* No CRL for the issuer: undetermined, not revoked. */
    assert_int_equal(verify(fx, alice, NULL, cn, &why), TLSPOLICY_OK);
    assert_int_equal(verify(fx, bob, NULL, cn, &why), TLSPOLICY_OK);
    upload_crl(fx, ca.cert, ca.key, &bob, 1);
    assert_int_equal(verify(fx, alice, NULL, cn, &why), TLSPOLICY_OK);
    assert_string_equal(cn, "alice");
    assert_int_equal(verify(fx, bob, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    assert_non_null(why);
    assert_non_null(strstr(why, "revoked"));
    X509_free(alice);
    X509_free(bob);
    EVP_PKEY_free(k);
    free_ca(&ca);
}

static void test_verify_client_eku(void **state)
{
    struct fixture *fx = *state;
    struct ca ca;
    make_ca(fx, "Client CA", 1, &ca);
    add_policy(fx, ca.policy_id);
    EVP_PKEY *k = ec_key();
    X509 *plain = issued(k, "no eku", ca.cert, ca.key, 0, 0);
    X509 *server = issued(k, "server eku", ca.cert, ca.key, 0, 1);
    X509 *client = issued_client(k, "client eku", ca.cert, ca.key);
    char cn[65];
    const char *why = NULL;
    assert_int_equal(verify(fx, plain, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    assert_int_equal(verify(fx, server, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    assert_int_equal(verify(fx, client, NULL, cn, &why), TLSPOLICY_OK);
    assert_string_equal(cn, "client eku");
    /* A policy without the requirement takes them all. */
    char relaxed[KEYSTORE_ID_MAX];
    create_cpv(fx, ca.cert_id, 0, relaxed);
    add_policy(fx, relaxed);
    assert_int_equal(verify(fx, plain, NULL, cn, &why), TLSPOLICY_OK);
    assert_int_equal(verify(fx, server, NULL, cn, &why), TLSPOLICY_OK);
    X509_free(plain);
    X509_free(server);
    X509_free(client);
    EVP_PKEY_free(k);
    free_ca(&ca);
}

static void test_verify_client_intermediate_from_keystore(void **state)
{
    struct fixture *fx = *state;
    struct ca ca;
    make_ca(fx, "Root CA", 0, &ca);
    add_policy(fx, ca.policy_id);
    EVP_PKEY *ik = ec_key(), *k = ec_key();
    X509 *inter = issued(ik, "Issuing CA", ca.cert, ca.key, 1, 0);
    X509 *leaf = issued(k, "carol", inter, ik, 0, 0);
    char cn[65];
    const char *why = NULL;
    assert_int_equal(verify(fx, leaf, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    /* Sent by the client. */
    STACK_OF(X509) *sent = sk_X509_new_null();
    assert_int_equal(sk_X509_push(sent, inter), 1);
    assert_int_equal(verify(fx, leaf, sent, cn, &why), TLSPOLICY_OK);
    sk_X509_free(sent);
    /* Or only in the keystore. */
    char iid[KEYSTORE_ID_MAX];
    upload_cert(fx, inter, iid);
    assert_int_equal(verify(fx, leaf, NULL, cn, &why), TLSPOLICY_OK);
    assert_string_equal(cn, "carol");
    /* An intermediate is not an anchor: no partial chains. */
    char inter_policy[KEYSTORE_ID_MAX];
    create_cpv(fx, iid, 0, inter_policy);
    assert_int_equal(tlspolicy_replace_cpv_policy(fx->tp, ca.policy_id, inter_policy), TLSPOLICY_OK);
    assert_int_equal(verify(fx, leaf, NULL, cn, &why), TLSPOLICY_E_CLIENT_CERT);
    X509_free(inter);
    X509_free(leaf);
    EVP_PKEY_free(ik);
    EVP_PKEY_free(k);
    free_ca(&ca);
}

/* --- concurrency ------------------------------------------------------------ */

struct hammer {
    struct fixture *fx;
    X509 *client;
    atomic_int stop;
    atomic_int failures;
};

/* What the TLS server does per handshake, over and over. */
static void *handshakes(void *arg)
{
    struct hammer *h = arg;
    while (!atomic_load(&h->stop)) {
        struct tlspolicy_identity ids[TLSPOLICY_MAX_SERVER_PATHS];
        size_t n = 0;
        if (tlspolicy_server_identities(h->fx->tp, ids, &n) != TLSPOLICY_OK || n < 1)
            atomic_fetch_add(&h->failures, 1);
        for (size_t i = 0; i < n; i++)
            if (X509_check_private_key(ids[i].cert, ids[i].key) != 1)
                atomic_fetch_add(&h->failures, 1);
        tlspolicy_identities_free(ids, n);
        char cn[65];
        const char *why = NULL;
        if (tlspolicy_verify_client(h->fx->tp, h->client, NULL, cn, sizeof cn, &why) != TLSPOLICY_OK)
            atomic_fetch_add(&h->failures, 1);
    }
    return NULL;
}

static void test_concurrent_use_and_changes(void **state)
{
    struct fixture *fx = *state;
    char ec1[KEYSTORE_ID_MAX], ec2[KEYSTORE_ID_MAX];
    ec_path(fx, ec1);
    ec_path(fx, ec2);
    add_path(fx, ec1);
    struct ca ca;
    make_ca(fx, "Client CA", 0, &ca);
    add_policy(fx, ca.policy_id);
    EVP_PKEY *k = ec_key();
    struct hammer h = { .fx = fx, .client = issued(k, "dave", ca.cert, ca.key, 0, 0) };
    confirm_all(fx);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, handshakes, &h), 0);
    /* Changes on both sides meanwhile; deletes race the reference check.
     * Failures are counted, not asserted, so the threads are joined first. */
    int bad = 0;
    for (int i = 0; i < 20; i++) {
        struct tlspolicy_state st = get(fx);
        const char *old = st.server_paths[0], *new = strcmp(old, ec1) ? ec1 : ec2;
        bad += tlspolicy_replace_server_path(fx->tp, old, new) != TLSPOLICY_OK;
        /* the new one is current, the old one confirmed */
        bad += keystore_delete_path(fx->ks, ec1) != KEYSTORE_E_REFERENCED;
        bad += keystore_delete_path(fx->ks, ec2) != KEYSTORE_E_REFERENCED;
        bad += tlspolicy_set_tls_versions(fx->tp, i % 2 ? TLSPOLICY_TLS_ALL : TLSPOLICY_TLS13) != TLSPOLICY_OK;
        if (i % 5 == 0)
            upload_crl(fx, ca.cert, ca.key, NULL, 0);
        if (i % 3 == 0)
            bad += tlspolicy_rollback(fx->tp, "test") != 1;
        else
            bad += tlspolicy_confirm(fx->tp, tlspolicy_generation(fx->tp), 1) != 1;
    }
    atomic_store(&h.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&h.failures), 0);
    X509_free(h.client);
    EVP_PKEY_free(k);
    free_ca(&ca);
}

/* --- expiry warnings -------------------------------------------------------- */

/* Runs tlspolicy_check_expiry with stderr (the log) captured; returns it. */
static char *check_expiry_logged(struct fixture *fx)
{
    char path[PATH_MAX];
    path_in(path, fx->dir.path, "log.txt");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    tlspolicy_check_expiry(fx->tp);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text = read_text_file(path);
    assert_non_null(text);
    return text;
}

static void test_check_expiry(void **state)
{
    struct fixture *fx = *state;
    time_t now = time(NULL);
    char pid[KEYSTORE_ID_MAX];
    EVP_PKEY *k = ec_key();
    path_for_at(fx, k, 0, now - 86400, now + 10 * 86400 + 600, pid);
    EVP_PKEY_free(k);
    add_path(fx, pid);
    fake_wall = now;
    char *log = check_expiry_logged(fx);
    assert_non_null(strstr(log, pid));
    assert_non_null(strstr(log, "expires in 10 day"));
    free(log);
    /* Once a day. */
    fake_wall = now + 3600;
    log = check_expiry_logged(fx);
    assert_null(strstr(log, pid));
    free(log);
    fake_wall = now + 86400 + 60;
    log = check_expiry_logged(fx);
    assert_non_null(strstr(log, "expires in 9 day"));
    free(log);
    /* Expired: an error at once, the device CA being served instead. */
    fake_wall = now + 11 * 86400;
    log = check_expiry_logged(fx);
    assert_non_null(strstr(log, pid));
    assert_non_null(strstr(log, "err"));
    assert_non_null(strstr(log, "expired"));
    assert_non_null(strstr(log, "device CA"));
    free(log);
    log = check_expiry_logged(fx);
    assert_null(strstr(log, pid));
    free(log);
    /* Far from expiry: quiet. */
    fake_wall = now - 60 * 86400;
    log = check_expiry_logged(fx);
    assert_null(strstr(log, pid));
    free(log);
}

static void test_every_error_has_its_own_message(void **state)
{
    (void)state;
    const char *seen[32];
    size_t n = 0;
    for (int e = TLSPOLICY_OK; e >= TLSPOLICY_E_CLIENT_CERT; e--) {
        const char *m = tlspolicy_strerror(e);
        assert_non_null(m);
        assert_string_not_equal(m, "unknown error");
        for (size_t i = 0; i < n; i++)
            assert_string_not_equal(seen[i], m);
        seen[n++] = m;
    }
    assert_string_equal(tlspolicy_strerror(TLSPOLICY_E_CLIENT_CERT - 1), "unknown error");
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_defaults),
        FIXTURE_TEST(test_open_argument_checks),
        FIXTURE_TEST(test_protocols_validation),
        FIXTURE_TEST(test_protocols_persist),
        FIXTURE_TEST(test_forced_ports),
        FIXTURE_TEST(test_identical_value_changes_nothing),
        FIXTURE_TEST(test_server_path_not_found_and_no_private_key),
        FIXTURE_TEST(test_server_path_family_and_full),
        FIXTURE_TEST(test_server_path_remove),
        FIXTURE_TEST(test_server_path_replace),
        FIXTURE_TEST(test_tls_versions),
        FIXTURE_TEST(test_client_auth_preconditions),
        FIXTURE_TEST(test_cpv_assign_rules),
        FIXTURE_TEST(test_reference_check),
        FIXTURE_TEST(test_load_drops_missing_objects),
        FIXTURE_TEST(test_pending_and_confirm),
        FIXTURE_TEST(test_confirm_over_tls),
        FIXTURE_TEST(test_expire_rolls_back),
        FIXTURE_TEST(test_two_changes_in_one_window),
        FIXTURE_TEST(test_reopen_with_pending_rolls_back),
        FIXTURE_TEST(test_rollback_now),
        FIXTURE_TEST(test_window_zero_is_final),
        FIXTURE_TEST(test_failed_store_changes_nothing),
        FIXTURE_TEST(test_file_contents),
        FIXTURE_TEST(test_corrupt_file_refused),
        FIXTURE_TEST(test_server_identities),
        FIXTURE_TEST(test_verify_client_without_policy),
        FIXTURE_TEST(test_verify_client_anchor_and_other_ca),
        FIXTURE_TEST(test_verify_client_revocation),
        FIXTURE_TEST(test_verify_client_eku),
        FIXTURE_TEST(test_verify_client_intermediate_from_keystore),
        FIXTURE_TEST(test_concurrent_use_and_changes),
        FIXTURE_TEST(test_check_expiry),
        cmocka_unit_test(test_every_error_has_its_own_message),
    };
    return cmocka_run_group_tests_name("tlspolicy", tests, group_setup, group_teardown);
}
