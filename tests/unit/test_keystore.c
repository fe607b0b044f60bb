/* Unit tests for the keystore: a fresh store, key generation (status,
 * estimates, worker limits, no blocking of readers, close waiting, a key left
 * generating becoming corrupt), PKCS#8 / certificate / PKCS#12 uploads and how
 * they bind to keys, certification paths, passphrases, CRLs, referential
 * integrity and references, limits, aliases, persistence and IDs never
 * reused, what keystore.xml holds, refusal of a corrupt file, failed saves
 * changing nothing, the read-only factory identity, certification path
 * validation policies and their material, the reference check of security
 * features, and the change generation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "opennvt/keystore.h"
#include "opennvt/secretbox.h"
#include "opennvt/x509util.h"
#include "unit_helpers.h"

#define PASSPHRASE "Tangerine-Orbit-77"

struct fixture {
    struct temp_dir dir;
    char ks_dir[PATH_MAX];
    struct secretbox *box;
    struct keystore *ks;
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    path_in(fx->ks_dir, fx->dir.path, "ks");
    if (mkdir(fx->ks_dir, 0700) != 0 || secretbox_open(&fx->box, fx->dir.path) != SECRETBOX_OK ||
        keystore_open(&fx->ks, fx->ks_dir, NULL, fx->box) != KEYSTORE_OK) {
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
    keystore_close(fx->ks);
    secretbox_close(fx->box);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen_with(struct fixture *fx, const char *factory_dir)
{
    keystore_close(fx->ks);
    fx->ks = NULL;
    int rc = keystore_open(&fx->ks, fx->ks_dir, factory_dir, fx->box);
    if (rc != KEYSTORE_OK)
        fail_msg("reopen: %s", keystore_strerror(rc));
}

static void reopen(struct fixture *fx)
{
    reopen_with(fx, NULL);
}

static const char *store_path(const struct fixture *fx, char *out)
{
    return path_in(out, fx->ks_dir, "keystore.xml");
}

/* --- fixtures built with x509util and OpenSSL ---------------------------- */

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

static X509 *self_signed(EVP_PKEY *key, const char *cn, int is_ca)
{
    X509_NAME *name = name_cn(cn);
    time_t now = time(NULL);
    X509 *x = NULL;
    assert_int_equal(x509util_make_self_signed(key, name, now - 60, now + 86400, NULL, 0, NULL, 0, is_ca, EVP_sha256(), &x),
                     X509UTIL_OK);
    X509_NAME_free(name);
    return x;
}

static X509 *issued(EVP_PKEY *subject_key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int is_ca)
{
    X509_NAME *name = name_cn(cn);
    time_t now = time(NULL);
    X509 *x = NULL;
    assert_int_equal(x509util_issue(subject_key, name, issuer, issuer_key, now - 60, now + 86400, NULL, 0, is_ca, !is_ca,
                                    EVP_sha256(), &x),
                     X509UTIL_OK);
    X509_NAME_free(name);
    return x;
}

static char *bio_text(BIO *bio, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    assert_true(n > 0);
    char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    if (len)
        *len = (size_t)n;
    BIO_free(bio);
    return out;
}

/* PKCS#8 PEM, encrypted with pass when given. */
static char *pkcs8_pem(EVP_PKEY *key, const char *pass, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, key, pass ? EVP_aes_256_cbc() : NULL, pass ? (char *)pass : NULL,
                                                   pass ? (int)strlen(pass) : 0, NULL, NULL),
                     1);
    return bio_text(bio, len);
}

static char *cert_pem(X509 *x, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    return bio_text(bio, len);
}

static unsigned char *cert_der(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static unsigned char *pkcs12_der(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *ca, const char *pass, size_t *len)
{
    PKCS12 *p12 = PKCS12_create(pass, "test", key, cert, ca, 0, 0, 0, 0, 0);
    assert_non_null(p12);
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static unsigned char *crl_der(EVP_PKEY *key, X509 *issuer, size_t *len)
{
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
    ASN1_TIME *u = ASN1_TIME_set(NULL, time(NULL) + 86400);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, u), 1);
    ASN1_TIME_free(t);
    ASN1_TIME_free(u);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_CRL(crl, &der);
    X509_CRL_free(crl);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* root -> intermediate -> leaf, all EC P-256. */
struct chain {
    EVP_PKEY *root_key, *inter_key, *leaf_key;
    X509 *root, *inter, *leaf;
};

static void make_chain(struct chain *c)
{
    c->root_key = ec_key();
    c->inter_key = ec_key();
    c->leaf_key = ec_key();
    c->root = self_signed(c->root_key, "Test Root", 1);
    c->inter = issued(c->inter_key, "Test Intermediate", c->root, c->root_key, 1);
    c->leaf = issued(c->leaf_key, "camera.example", c->inter, c->inter_key, 0);
}

static void free_chain(struct chain *c)
{
    EVP_PKEY_free(c->root_key);
    EVP_PKEY_free(c->inter_key);
    EVP_PKEY_free(c->leaf_key);
    X509_free(c->root);
    X509_free(c->inter);
    X509_free(c->leaf);
}

/* --- keystore helpers ---------------------------------------------------- */

static size_t n_keys(struct fixture *fx)
{
    struct keystore_key_info *l = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_keys(fx->ks, &l, &n), KEYSTORE_OK);
    free(l);
    return n;
}

static size_t n_certs(struct fixture *fx)
{
    struct keystore_cert_info *l = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_certs(fx->ks, &l, &n), KEYSTORE_OK);
    free(l);
    return n;
}

static size_t n_paths(struct fixture *fx)
{
    struct keystore_path_info *l = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_paths(fx->ks, &l, &n), KEYSTORE_OK);
    free(l);
    return n;
}

static size_t n_pass(struct fixture *fx)
{
    struct keystore_object_info *l = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_passphrases(fx->ks, &l, &n), KEYSTORE_OK);
    free(l);
    return n;
}

static size_t n_crls(struct fixture *fx)
{
    struct keystore_object_info *l = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_crls(fx->ks, &l, &n), KEYSTORE_OK);
    free(l);
    return n;
}

static void upload_key(struct fixture *fx, EVP_PKEY *key, const char *alias, char id[KEYSTORE_ID_MAX])
{
    size_t len = 0;
    char *pem = pkcs8_pem(key, NULL, &len);
    int rc = keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, alias, NULL, NULL, id);
    free(pem);
    if (rc != KEYSTORE_OK)
        fail_msg("uploading a key: %s", keystore_strerror(rc));
}

static int upload_cert_rc(struct fixture *fx, X509 *x, const char *alias, const char *key_alias, int required,
                          char cert_id[KEYSTORE_ID_MAX], char key_id[KEYSTORE_ID_MAX])
{
    size_t len = 0;
    unsigned char *der = cert_der(x, &len);
    int rc = keystore_upload_cert(fx->ks, der, len, alias, key_alias, required, cert_id, key_id);
    OPENSSL_free(der);
    return rc;
}

static void upload_cert(struct fixture *fx, X509 *x, char cert_id[KEYSTORE_ID_MAX], char key_id[KEYSTORE_ID_MAX])
{
    int rc = upload_cert_rc(fx, x, "c", "k", 0, cert_id, key_id);
    if (rc != KEYSTORE_OK)
        fail_msg("uploading a certificate: %s", keystore_strerror(rc));
}

static struct keystore_key_info key_info(struct fixture *fx, const char *id)
{
    struct keystore_key_info info;
    int rc = keystore_key_info(fx->ks, id, &info);
    if (rc != KEYSTORE_OK)
        fail_msg("key %s: %s", id, keystore_strerror(rc));
    return info;
}

static int same_public_key(EVP_PKEY *a, EVP_PKEY *b)
{
    return EVP_PKEY_eq(a, b) == 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Polls until the key is no longer generating (at most 60 s). */
static enum keystore_key_status wait_generated(struct fixture *fx, const char *id)
{
    double deadline = now_ms() + 60000;
    for (;;) {
        struct keystore_key_info info = key_info(fx, id);
        if (info.status != KEYSTORE_KEY_GENERATING)
            return info.status;
        if (now_ms() > deadline)
            fail_msg("key %s still generating after 60 s", id);
        usleep(20 * 1000);
    }
}

/* --- fresh store and arguments ------------------------------------------- */

static void test_fresh_store_is_empty_and_private(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(n_keys(fx), 0);
    assert_int_equal(n_certs(fx), 0);
    assert_int_equal(n_paths(fx), 0);
    assert_int_equal(n_pass(fx), 0);
    assert_int_equal(n_crls(fx), 0);
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(store_path(fx, path), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_open_argument_checks(void **state)
{
    struct fixture *fx = *state;
    struct keystore *ks = (struct keystore *)fx;
    assert_int_equal(keystore_open(&ks, fx->ks_dir, NULL, NULL), KEYSTORE_E_INVALID);
    assert_null(ks);
    assert_int_equal(keystore_open(&ks, NULL, NULL, fx->box), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_open(NULL, fx->ks_dir, NULL, fx->box), KEYSTORE_E_INVALID);
    char dir[PATH_MAX];
    ks = (struct keystore *)fx;
    assert_int_equal(keystore_open(&ks, path_in(dir, fx->dir.path, "missing"), NULL, fx->box), KEYSTORE_E_STORE);
    assert_null(ks);
    keystore_close(NULL);
}

static void test_null_arguments(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX], id2[KEYSTORE_ID_MAX];
    struct keystore_key_info ki;
    unsigned char *der = NULL;
    size_t len = 0;
    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_create_rsa_key(NULL, 2048, NULL, id, NULL), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, NULL, NULL), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, NULL, 0, NULL, NULL, NULL, id), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_upload_pkcs12(fx->ks, NULL, 0, NULL, NULL, NULL, NULL, 0, id, id2), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_upload_cert(fx->ks, NULL, 0, NULL, NULL, 0, id, id2), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_add_cert(fx->ks, NULL, "KEY-1", NULL, id), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_key_info(fx->ks, "KEY-1", NULL), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_key_info(fx->ks, NULL, &ki), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_list_keys(fx->ks, NULL, &len), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_cert_der(fx->ks, "CERT-1", NULL, &len), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_cert_der(fx->ks, "CERT-1", &der, &len), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_crl_der(fx->ks, "CRL-1", &der, &len), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_get_private_key(fx->ks, "KEY-1", NULL), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_get_private_key(fx->ks, "KEY-1", &k), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_create_path(fx->ks, NULL, 1, NULL, id), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_upload_passphrase(fx->ks, NULL, NULL, id), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_upload_crl(fx->ks, NULL, 0, NULL, id), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_set_reference(fx->ks, NULL, "KEY-1", 1), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_delete_key(NULL, "KEY-1"), KEYSTORE_E_INVALID);
    char longid[KEYSTORE_ID_MAX + 8];
    memset(longid, 'K', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(keystore_delete_key(fx->ks, longid), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_delete_cert(fx->ks, "CERT-9"), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_delete_path(fx->ks, "PATH-9"), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_delete_passphrase(fx->ks, "PASS-9"), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_delete_crl(fx->ks, "CRL-9"), KEYSTORE_E_NOT_FOUND);
}

/* --- generation ---------------------------------------------------------- */

static void test_generate_rsa_and_ec(void **state)
{
    struct fixture *fx = *state;
    char rsa[KEYSTORE_ID_MAX], ec[KEYSTORE_ID_MAX], ec2[KEYSTORE_ID_MAX];
    int estimate = -1;
    assert_int_equal(keystore_create_rsa_key(fx->ks, 2048, "tls", rsa, &estimate), KEYSTORE_OK);
    assert_int_equal(estimate, 2);
    struct keystore_key_info info = key_info(fx, rsa);
    assert_int_equal(info.status, KEYSTORE_KEY_GENERATING);
    assert_string_equal(info.type, "");
    assert_string_equal(info.alias, "tls");
    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, rsa, &k), KEYSTORE_E_KEY_STATUS);
    assert_null(k);
    assert_int_equal(keystore_create_ec_key(fx->ks, "secp256r1", NULL, ec, &estimate), KEYSTORE_OK);
    assert_int_equal(estimate, 1);
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-384", "ec384", ec2, NULL), KEYSTORE_OK);
    assert_string_not_equal(rsa, ec);
    assert_string_not_equal(ec, ec2);

    assert_int_equal(wait_generated(fx, rsa), KEYSTORE_KEY_OK);
    assert_int_equal(wait_generated(fx, ec), KEYSTORE_KEY_OK);
    assert_int_equal(wait_generated(fx, ec2), KEYSTORE_KEY_OK);
    info = key_info(fx, rsa);
    assert_string_equal(info.type, "RSA-2048");
    assert_int_equal(info.has_private_key, 1);
    assert_int_equal(info.externally_generated, 0);
    assert_int_equal(info.read_only, 0);
    assert_string_equal(key_info(fx, ec).type, "EC-P256");
    assert_string_equal(key_info(fx, ec2).type, "EC-P384");

    assert_int_equal(keystore_get_private_key(fx->ks, rsa, &k), KEYSTORE_OK);
    assert_true(EVP_PKEY_is_a(k, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    EVP_PKEY_free(k);

    /* Survives a restart, private key included. */
    reopen(fx);
    assert_int_equal(key_info(fx, rsa).status, KEYSTORE_KEY_OK);
    assert_int_equal(keystore_get_private_key(fx->ks, ec, &k), KEYSTORE_OK);
    assert_true(EVP_PKEY_is_a(k, "EC"));
    EVP_PKEY_free(k);
}

static void test_generation_parameters(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX] = "unchanged";
    const int bad_bits[] = { 0, 1024, 2047, 8192, -1 };
    for (size_t i = 0; i < sizeof bad_bits / sizeof bad_bits[0]; i++)
        assert_int_equal(keystore_create_rsa_key(fx->ks, bad_bits[i], NULL, id, NULL), KEYSTORE_E_KEY_PARAMS);
    const char *bad_curves[] = { "secp521r1", "P-521", "x25519", "", "secp256k1" };
    for (size_t i = 0; i < sizeof bad_curves / sizeof bad_curves[0]; i++)
        assert_int_equal(keystore_create_ec_key(fx->ks, bad_curves[i], NULL, id, NULL), KEYSTORE_E_KEY_PARAMS);
    assert_int_equal(keystore_create_ec_key(fx->ks, NULL, NULL, id, NULL), KEYSTORE_E_KEY_PARAMS);
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", "\xc3\x28", id, NULL), KEYSTORE_E_ALIAS);
    assert_string_equal(id, "unchanged");
    assert_int_equal(n_keys(fx), 0);
}

static void test_close_waits_for_generation(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_create_rsa_key(fx->ks, 2048, NULL, id, NULL), KEYSTORE_OK);
    reopen(fx); /* close returns only after the worker saved the key */
    struct keystore_key_info info = key_info(fx, id);
    assert_int_equal(info.status, KEYSTORE_KEY_OK);
    assert_int_equal(info.has_private_key, 1);
}

static void test_delete_while_generating(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_create_rsa_key(fx->ks, 2048, NULL, id, NULL), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, id), KEYSTORE_OK);
    struct keystore_key_info info;
    assert_int_equal(keystore_key_info(fx->ks, id, &info), KEYSTORE_E_NOT_FOUND);
    reopen(fx); /* the worker finished and discarded its result */
    assert_int_equal(keystore_key_info(fx->ks, id, &info), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(n_keys(fx), 0);
}

static void test_generating_key_in_file_becomes_corrupt(void **state)
{
    struct fixture *fx = *state;
    keystore_close(fx->ks);
    fx->ks = NULL;
    char path[PATH_MAX];
    assert_int_equal(write_text_file(store_path(fx, path),
                                     "<?xml version=\"1.0\"?>\n"
                                     "<keystore version=\"1\" next-key=\"5\" next-cert=\"1\" next-path=\"1\""
                                     " next-passphrase=\"1\" next-crl=\"1\">\n"
                                     "  <key id=\"KEY-4\" alias=\"half\" status=\"generating\" type=\"\""
                                     " external=\"false\" refs=\"0\"/>\n"
                                     "</keystore>\n"),
                     0);
    assert_int_equal(keystore_open(&fx->ks, fx->ks_dir, NULL, fx->box), KEYSTORE_OK);
    struct keystore_key_info info = key_info(fx, "KEY-4");
    assert_int_equal(info.status, KEYSTORE_KEY_CORRUPT);
    assert_string_equal(info.alias, "half");
    assert_string_equal(keystore_key_status_name(info.status), "corrupt");
    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, "KEY-4", &k), KEYSTORE_E_KEY_STATUS);
    char *text = read_text_file(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "status=\"corrupt\""));
    free(text);
    /* A corrupt key can be deleted, and its ID is not given out again. */
    assert_int_equal(keystore_delete_key(fx->ks, "KEY-4"), KEYSTORE_OK);
    char id[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, id, NULL), KEYSTORE_OK);
    assert_string_equal(id, "KEY-5");
}

struct lister {
    struct keystore *ks;
    atomic_int stop;
    double max_ms;
    unsigned long calls;
};

static void *lister_main(void *arg)
{
    struct lister *l = arg;
    while (!atomic_load(&l->stop)) {
        struct keystore_key_info *list = NULL;
        size_t n = 0;
        double t0 = now_ms();
        int rc = keystore_list_keys(l->ks, &list, &n);
        double dt = now_ms() - t0;
        free(list);
        if (rc != KEYSTORE_OK)
            l->max_ms = 1e9;
        if (dt > l->max_ms)
            l->max_ms = dt;
        l->calls++;
        usleep(1000);
    }
    return NULL;
}

static void test_concurrent_generations_do_not_block_readers(void **state)
{
    struct fixture *fx = *state;
    struct lister l = { .ks = fx->ks };
    atomic_init(&l.stop, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, lister_main, &l), 0);
    char ids[KEYSTORE_MAX_KEYGEN][KEYSTORE_ID_MAX];
    for (int i = 0; i < KEYSTORE_MAX_KEYGEN; i++)
        assert_int_equal(keystore_create_rsa_key(fx->ks, 2048, NULL, ids[i], NULL), KEYSTORE_OK);
    char extra[KEYSTORE_ID_MAX] = "unchanged";
    int busy = keystore_create_rsa_key(fx->ks, 2048, NULL, extra, NULL);
    for (int i = 0; i < KEYSTORE_MAX_KEYGEN; i++)
        assert_int_equal(wait_generated(fx, ids[i]), KEYSTORE_KEY_OK);
    atomic_store(&l.stop, 1);
    pthread_join(t, NULL);
    print_message("      list_keys: %lu calls during 4 RSA-2048 generations, slowest %.2f ms\n", l.calls, l.max_ms);
    assert_int_equal(busy, KEYSTORE_E_BUSY);
    assert_string_equal(extra, "unchanged");
    assert_true(l.calls > 10);
    assert_true(l.max_ms < 50.0);
    /* Workers finished: a new generation may start. */
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, extra, NULL), KEYSTORE_OK);
    assert_int_equal(n_keys(fx), KEYSTORE_MAX_KEYGEN + 1);
}

/* --- PKCS#8 -------------------------------------------------------------- */

static void test_upload_pkcs8(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    char id[KEYSTORE_ID_MAX], id2[KEYSTORE_ID_MAX], pass_id[KEYSTORE_ID_MAX];
    upload_key(fx, key, "plain", id);
    struct keystore_key_info info = key_info(fx, id);
    assert_int_equal(info.status, KEYSTORE_KEY_OK);
    assert_int_equal(info.has_private_key, 1);
    assert_int_equal(info.externally_generated, 1);
    assert_string_equal(info.type, "EC-P256");
    assert_string_equal(info.alias, "plain");
    EVP_PKEY *back = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, id, &back), KEYSTORE_OK);
    assert_true(same_public_key(key, back));
    EVP_PKEY_free(back);

    /* The same key pair again is a new key (private keys may be shared). */
    upload_key(fx, key, NULL, id2);
    assert_string_not_equal(id, id2);
    assert_int_equal(n_keys(fx), 2);

    /* Encrypted: by value, by stored passphrase, wrong, missing. */
    EVP_PKEY *key2 = ec_key();
    size_t len = 0;
    char *pem = pkcs8_pem(key2, PASSPHRASE, &len);
    assert_int_equal(keystore_upload_passphrase(fx->ks, PASSPHRASE, "p", pass_id), KEYSTORE_OK);
    char other_pass[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_upload_passphrase(fx->ks, "not-it", NULL, other_pass), KEYSTORE_OK);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, "wrong", id2),
                     KEYSTORE_E_PASSPHRASE);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, NULL, id2),
                     KEYSTORE_E_PASSPHRASE);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, other_pass, NULL, id2),
                     KEYSTORE_E_PASSPHRASE);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, "PASS-999", NULL, id2),
                     KEYSTORE_E_NOT_FOUND);
    assert_int_equal(n_keys(fx), 2);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, "byid", pass_id, NULL, id2),
                     KEYSTORE_OK);
    assert_string_equal(key_info(fx, id2).alias, "byid");
    /* A given value wins over the ID. */
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, other_pass, PASSPHRASE, id2),
                     KEYSTORE_OK);
    free(pem);
    assert_int_equal(n_keys(fx), 4);

    /* Malformed and unsupported keys. */
    const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (const unsigned char *)junk, sizeof junk - 1, NULL, NULL, NULL, id2),
                     KEYSTORE_E_BAD_INPUT);
    EVP_PKEY *p521 = EVP_EC_gen("P-521");
    assert_non_null(p521);
    pem = pkcs8_pem(p521, NULL, &len);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, NULL, id2),
                     KEYSTORE_E_KEY_PARAMS);
    free(pem);
    EVP_PKEY_free(p521);
    EVP_PKEY *rsa1024 = EVP_RSA_gen(1024);
    assert_non_null(rsa1024);
    pem = pkcs8_pem(rsa1024, NULL, &len);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, NULL, id2),
                     KEYSTORE_E_KEY_PARAMS);
    free(pem);
    EVP_PKEY_free(rsa1024);
    assert_int_equal(n_keys(fx), 4);

    /* DER input works as PEM does. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(i2d_PKCS8PrivateKey_bio(bio, key2, NULL, NULL, 0, NULL, NULL), 1);
    size_t dlen = 0;
    char *der = bio_text(bio, &dlen);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)der, dlen, NULL, NULL, NULL, id2), KEYSTORE_OK);
    assert_int_equal(n_keys(fx), 5);
    free(der);
    EVP_PKEY_free(key);
    EVP_PKEY_free(key2);
}

/* --- certificates -------------------------------------------------------- */

static void test_upload_cert_binding(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    X509 *cert = self_signed(key, "bound", 0);
    char key_id[KEYSTORE_ID_MAX], cert_id[KEYSTORE_ID_MAX], bound_key[KEYSTORE_ID_MAX];
    upload_key(fx, key, "mine", key_id);
    upload_cert(fx, cert, cert_id, bound_key);
    assert_string_equal(bound_key, key_id);
    assert_int_equal(n_keys(fx), 1);
    struct keystore_cert_info ci;
    assert_int_equal(keystore_cert_info(fx->ks, cert_id, &ci), KEYSTORE_OK);
    assert_string_equal(ci.key_id, key_id);
    assert_string_equal(ci.alias, "c");
    assert_int_equal(ci.read_only, 0);
    assert_true(ci.not_before <= time(NULL) && ci.not_after > time(NULL));
    assert_true(ci.not_after - ci.not_before == 86400 + 60);
    unsigned char *der = NULL, *orig = NULL;
    size_t len = 0, olen = 0;
    assert_int_equal(keystore_cert_der(fx->ks, cert_id, &der, &len), KEYSTORE_OK);
    orig = cert_der(cert, &olen);
    assert_int_equal(len, olen);
    assert_memory_equal(der, orig, len);
    free(der);
    OPENSSL_free(orig);

    /* Same certificate again: refused as duplicate, PEM or DER. */
    char c2[KEYSTORE_ID_MAX], k2[KEYSTORE_ID_MAX];
    assert_int_equal(upload_cert_rc(fx, cert, NULL, NULL, 0, c2, k2), KEYSTORE_E_DUPLICATE);
    size_t plen = 0;
    char *pem = cert_pem(cert, &plen);
    assert_int_equal(keystore_upload_cert(fx->ks, (unsigned char *)pem, plen, NULL, NULL, 1, c2, k2),
                     KEYSTORE_E_DUPLICATE);
    free(pem);

    /* A certificate for an unknown key: a public-key-only key is created,
     * unless a private key is required. */
    EVP_PKEY *other = ec_key();
    X509 *other_cert = self_signed(other, "foreign", 0);
    assert_int_equal(upload_cert_rc(fx, other_cert, NULL, "nope", 1, c2, k2), KEYSTORE_E_NO_MATCHING_KEY);
    assert_int_equal(n_keys(fx), 1);
    assert_int_equal(n_certs(fx), 1);
    assert_int_equal(upload_cert_rc(fx, other_cert, "theirs", "pubonly", 0, c2, k2), KEYSTORE_OK);
    struct keystore_key_info info = key_info(fx, k2);
    assert_int_equal(info.has_private_key, 0);
    assert_int_equal(info.externally_generated, 1);
    assert_int_equal(info.status, KEYSTORE_KEY_OK);
    assert_string_equal(info.alias, "pubonly");
    assert_string_equal(info.type, "EC-P256");
    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, k2, &k), KEYSTORE_E_NO_PRIVATE_KEY);

    /* Another certificate for that public key still lacks a private key. */
    X509 *other_cert2 = self_signed(other, "foreign2", 0);
    char c3[KEYSTORE_ID_MAX], k3[KEYSTORE_ID_MAX];
    assert_int_equal(upload_cert_rc(fx, other_cert2, NULL, NULL, 1, c3, k3), KEYSTORE_E_NO_MATCHING_KEY);

    /* Uploading the private key completes the public-key-only key. */
    char completed[KEYSTORE_ID_MAX];
    upload_key(fx, other, "ignored", completed);
    assert_string_equal(completed, k2);
    info = key_info(fx, k2);
    assert_int_equal(info.has_private_key, 1);
    assert_string_equal(info.alias, "pubonly");
    assert_int_equal(keystore_get_private_key(fx->ks, k2, &k), KEYSTORE_OK);
    assert_true(same_public_key(k, other));
    EVP_PKEY_free(k);
    assert_int_equal(upload_cert_rc(fx, other_cert2, NULL, NULL, 1, c3, k3), KEYSTORE_OK);
    assert_string_equal(k3, k2);

    /* Malformed and unsupported. */
    const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
    assert_int_equal(keystore_upload_cert(fx->ks, junk, sizeof junk, NULL, NULL, 0, c3, k3), KEYSTORE_E_BAD_INPUT);
    EVP_PKEY *p521 = EVP_EC_gen("P-521");
    X509 *p521_cert = self_signed(p521, "p521", 0);
    assert_int_equal(upload_cert_rc(fx, p521_cert, NULL, NULL, 0, c3, k3), KEYSTORE_E_KEY_PARAMS);
    assert_int_equal(upload_cert_rc(fx, other_cert, "\x01", NULL, 0, c3, k3), KEYSTORE_E_ALIAS);
    assert_int_equal(n_certs(fx), 3);
    assert_int_equal(n_keys(fx), 2);

    /* Referential integrity: key used by a certificate. */
    assert_int_equal(keystore_delete_key(fx->ks, key_id), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_cert(fx->ks, cert_id), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, key_id), KEYSTORE_OK);
    assert_int_equal(keystore_cert_info(fx->ks, cert_id, &ci), KEYSTORE_E_NOT_FOUND);

    EVP_PKEY_free(p521);
    X509_free(p521_cert);
    X509_free(other_cert2);
    X509_free(other_cert);
    EVP_PKEY_free(other);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void test_cert_for_generating_key_refused(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX], cid[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_create_rsa_key(fx->ks, 2048, NULL, id, NULL), KEYSTORE_OK);
    EVP_PKEY *k = ec_key();
    X509 *x = self_signed(k, "x", 0);
    assert_int_equal(keystore_add_cert(fx->ks, x, id, NULL, cid), KEYSTORE_E_KEY_STATUS);
    assert_int_equal(wait_generated(fx, id), KEYSTORE_KEY_OK);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_add_device_cert(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX], cid[KEYSTORE_ID_MAX] = "unchanged";
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, id, NULL), KEYSTORE_OK);
    assert_int_equal(wait_generated(fx, id), KEYSTORE_KEY_OK);
    EVP_PKEY *key = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, id, &key), KEYSTORE_OK);
    X509 *x = self_signed(key, "device", 0);
    EVP_PKEY *stranger = ec_key();
    X509 *y = self_signed(stranger, "stranger", 0);
    assert_int_equal(keystore_add_cert(fx->ks, y, id, NULL, cid), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_add_cert(fx->ks, x, "KEY-77", NULL, cid), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_add_cert(fx->ks, x, id, "\xff", cid), KEYSTORE_E_ALIAS);
    assert_string_equal(cid, "unchanged");
    assert_int_equal(keystore_add_cert(fx->ks, x, id, "self", cid), KEYSTORE_OK);
    struct keystore_cert_info ci;
    assert_int_equal(keystore_cert_info(fx->ks, cid, &ci), KEYSTORE_OK);
    assert_string_equal(ci.key_id, id);
    assert_string_equal(ci.alias, "self");
    char cid2[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_add_cert(fx->ks, x, id, NULL, cid2), KEYSTORE_E_DUPLICATE);
    assert_int_equal(n_certs(fx), 1);
    X509_free(x);
    X509_free(y);
    EVP_PKEY_free(key);
    EVP_PKEY_free(stranger);
}

/* --- certification paths ------------------------------------------------- */

static void test_paths(void **state)
{
    struct fixture *fx = *state;
    struct chain c;
    make_chain(&c);
    char leaf[KEYSTORE_ID_MAX], inter[KEYSTORE_ID_MAX], root[KEYSTORE_ID_MAX], k[KEYSTORE_ID_MAX];
    upload_cert(fx, c.leaf, leaf, k);
    upload_cert(fx, c.inter, inter, k);
    upload_cert(fx, c.root, root, k);
    assert_int_equal(n_keys(fx), 3);

    char pid[KEYSTORE_ID_MAX] = "unchanged";
    const char *wrong[] = { root, inter, leaf };
    assert_int_equal(keystore_create_path(fx->ks, wrong, 3, NULL, pid), KEYSTORE_E_PATH_ORDER);
    const char *gap[] = { leaf, root };
    assert_int_equal(keystore_create_path(fx->ks, gap, 2, NULL, pid), KEYSTORE_E_PATH_ORDER);
    const char *missing[] = { leaf, "CERT-99" };
    assert_int_equal(keystore_create_path(fx->ks, missing, 2, NULL, pid), KEYSTORE_E_NOT_FOUND);
    const char *null_id[] = { leaf, NULL };
    assert_int_equal(keystore_create_path(fx->ks, null_id, 2, NULL, pid), KEYSTORE_E_NOT_FOUND);
    const char *good[] = { leaf, inter, root };
    assert_int_equal(keystore_create_path(fx->ks, good, 0, NULL, pid), KEYSTORE_E_INVALID);
    const char *nine[9] = { leaf, inter, root, leaf, inter, root, leaf, inter, root };
    assert_int_equal(keystore_create_path(fx->ks, nine, 9, NULL, pid), KEYSTORE_E_FULL);
    assert_int_equal(keystore_create_path(fx->ks, good, 3, "\xe0\x80\xaf", pid), KEYSTORE_E_ALIAS);
    assert_string_equal(pid, "unchanged");
    assert_int_equal(n_paths(fx), 0);

    assert_int_equal(keystore_create_path(fx->ks, good, 3, "tls chain", pid), KEYSTORE_OK);
    char single[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_create_path(fx->ks, good, 1, NULL, single), KEYSTORE_OK);
    struct keystore_path_info pi;
    assert_int_equal(keystore_path_info(fx->ks, pid, &pi), KEYSTORE_OK);
    assert_int_equal(pi.n_certs, 3);
    assert_string_equal(pi.cert_ids[0], leaf);
    assert_string_equal(pi.cert_ids[1], inter);
    assert_string_equal(pi.cert_ids[2], root);
    assert_string_equal(pi.alias, "tls chain");
    assert_int_equal(pi.read_only, 0);
    assert_int_equal(keystore_path_info(fx->ks, "PATH-99", &pi), KEYSTORE_E_NOT_FOUND);

    /* Certificates in a path stay; the path goes first. */
    assert_int_equal(keystore_delete_cert(fx->ks, root), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, root), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, leaf), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_path(fx->ks, single), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, leaf), KEYSTORE_OK);
    assert_int_equal(n_paths(fx), 0);
    free_chain(&c);
}

/* --- PKCS#12 ------------------------------------------------------------- */

static void test_pkcs12_with_chain(void **state)
{
    struct fixture *fx = *state;
    struct chain c;
    make_chain(&c);
    /* Chain given root first: the path must still come out in issuer order. */
    STACK_OF(X509) *ca = sk_X509_new_null();
    sk_X509_push(ca, c.root);
    sk_X509_push(ca, c.inter);
    size_t len = 0;
    unsigned char *p12 = pkcs12_der(c.leaf_key, c.leaf, ca, PASSPHRASE, &len);

    char path_id[KEYSTORE_ID_MAX] = "unchanged", key_id[KEYSTORE_ID_MAX] = "unchanged";
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, NULL, NULL, NULL, "wrong", 0, path_id, key_id),
                     KEYSTORE_E_PASSPHRASE);
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, NULL, NULL, "PASS-5", NULL, 0, path_id, key_id),
                     KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, NULL, "\x7f", NULL, PASSPHRASE, 0, path_id, key_id),
                     KEYSTORE_E_ALIAS);
    const unsigned char junk[] = { 0x30, 0x82, 0x00, 0x01, 0x00 };
    assert_int_equal(keystore_upload_pkcs12(fx->ks, junk, sizeof junk, NULL, NULL, NULL, PASSPHRASE, 0, path_id, key_id),
                     KEYSTORE_E_BAD_INPUT);
    assert_string_equal(path_id, "unchanged");
    assert_int_equal(n_keys(fx) + n_certs(fx) + n_paths(fx), 0);

    char pass_id[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_upload_passphrase(fx->ks, PASSPHRASE, NULL, pass_id), KEYSTORE_OK);
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, "server", "server key", pass_id, NULL, 0, path_id, key_id),
                     KEYSTORE_OK);
    struct keystore_path_info pi;
    assert_int_equal(keystore_path_info(fx->ks, path_id, &pi), KEYSTORE_OK);
    assert_string_equal(pi.alias, "server");
    assert_int_equal(pi.n_certs, 3);
    X509 *expected[3] = { c.leaf, c.inter, c.root };
    for (size_t i = 0; i < 3; i++) {
        unsigned char *der = NULL, *want = NULL;
        size_t dl = 0, wl = 0;
        assert_int_equal(keystore_cert_der(fx->ks, pi.cert_ids[i], &der, &dl), KEYSTORE_OK);
        want = cert_der(expected[i], &wl);
        if (dl != wl || memcmp(der, want, dl) != 0)
            fail_msg("path position %zu holds the wrong certificate", i);
        free(der);
        OPENSSL_free(want);
    }
    struct keystore_key_info info = key_info(fx, key_id);
    assert_int_equal(info.has_private_key, 1);
    assert_int_equal(info.externally_generated, 1);
    assert_string_equal(info.alias, "server key");
    struct keystore_cert_info ci;
    assert_int_equal(keystore_cert_info(fx->ks, pi.cert_ids[0], &ci), KEYSTORE_OK);
    assert_string_equal(ci.key_id, key_id);
    assert_int_equal(keystore_cert_info(fx->ks, pi.cert_ids[2], &ci), KEYSTORE_OK);
    info = key_info(fx, ci.key_id);
    assert_int_equal(info.has_private_key, 0); /* the CA's public key only */
    assert_int_equal(n_keys(fx), 3);
    assert_int_equal(n_certs(fx), 3);
    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, key_id, &k), KEYSTORE_OK);
    assert_true(same_public_key(k, c.leaf_key));
    EVP_PKEY_free(k);

    /* The same file again: stored certificates and keys are reused. */
    char path2[KEYSTORE_ID_MAX], key2[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, NULL, NULL, NULL, PASSPHRASE, 0, path2, key2), KEYSTORE_OK);
    assert_string_not_equal(path2, path_id);
    assert_string_equal(key2, key_id);
    struct keystore_path_info pi2;
    assert_int_equal(keystore_path_info(fx->ks, path2, &pi2), KEYSTORE_OK);
    assert_memory_equal(pi2.cert_ids, pi.cert_ids, sizeof pi.cert_ids);
    assert_int_equal(n_certs(fx), 3);

    /* Only the leaf. */
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, NULL, NULL, NULL, PASSPHRASE, 1, path2, key2), KEYSTORE_OK);
    assert_int_equal(keystore_path_info(fx->ks, path2, &pi2), KEYSTORE_OK);
    assert_int_equal(pi2.n_certs, 1);
    assert_string_equal(pi2.cert_ids[0], pi.cert_ids[0]);
    OPENSSL_free(p12);

    /* A chain with a certificate that is no issuer: nothing stored. */
    size_t before_keys = n_keys(fx), before_certs = n_certs(fx), before_paths = n_paths(fx);
    EVP_PKEY *stray_key = ec_key();
    X509 *stray = self_signed(stray_key, "stray", 1);
    sk_X509_push(ca, stray);
    p12 = pkcs12_der(c.leaf_key, c.leaf, ca, PASSPHRASE, &len);
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, NULL, NULL, NULL, PASSPHRASE, 0, path2, key2),
                     KEYSTORE_E_PATH_ORDER);
    OPENSSL_free(p12);
    assert_int_equal(n_keys(fx), before_keys);
    assert_int_equal(n_certs(fx), before_certs);
    assert_int_equal(n_paths(fx), before_paths);

    /* A new PKCS#12 for a key known only as a public key adds its private key. */
    EVP_PKEY *leaf2_key = ec_key();
    X509 *leaf2 = issued(leaf2_key, "second.example", c.inter, c.inter_key, 0);
    char c2[KEYSTORE_ID_MAX], pubonly[KEYSTORE_ID_MAX];
    upload_cert(fx, leaf2, c2, pubonly);
    assert_int_equal(key_info(fx, pubonly).has_private_key, 0);
    STACK_OF(X509) *ca2 = sk_X509_new_null();
    sk_X509_push(ca2, c.inter);
    p12 = pkcs12_der(leaf2_key, leaf2, ca2, "", &len);
    assert_int_equal(keystore_upload_pkcs12(fx->ks, p12, len, NULL, "ignored", NULL, NULL, 0, path2, key2), KEYSTORE_OK);
    assert_string_equal(key2, pubonly);
    info = key_info(fx, pubonly);
    assert_int_equal(info.has_private_key, 1);
    assert_string_equal(info.alias, "k");
    OPENSSL_free(p12);

    sk_X509_free(ca);
    sk_X509_free(ca2);
    X509_free(stray);
    EVP_PKEY_free(stray_key);
    X509_free(leaf2);
    EVP_PKEY_free(leaf2_key);
    free_chain(&c);
}

/* --- passphrases and CRLs ------------------------------------------------ */

static void test_passphrases(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX], first[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_upload_passphrase(fx->ks, PASSPHRASE, "wifi", first), KEYSTORE_OK);
    assert_int_equal(keystore_upload_passphrase(fx->ks, PASSPHRASE, "copy", id), KEYSTORE_OK); /* copies allowed */
    assert_string_not_equal(first, id);
    char *huge = malloc(2000);
    memset(huge, 'p', 1999);
    huge[1999] = '\0';
    assert_int_equal(keystore_upload_passphrase(fx->ks, huge, NULL, id), KEYSTORE_E_PASSPHRASE);
    free(huge);
    assert_int_equal(keystore_upload_passphrase(fx->ks, "x", "\xed\xa0\x80", id), KEYSTORE_E_ALIAS);
    struct keystore_object_info *list = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_passphrases(fx->ks, &list, &n), KEYSTORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, first);
    assert_string_equal(list[0].alias, "wifi");
    free(list);
    for (size_t i = 2; i < KEYSTORE_MAX_PASSPHRASES; i++)
        assert_int_equal(keystore_upload_passphrase(fx->ks, "", NULL, id), KEYSTORE_OK);
    assert_int_equal(keystore_upload_passphrase(fx->ks, "one more", NULL, id), KEYSTORE_E_FULL);
    assert_int_equal(keystore_delete_passphrase(fx->ks, first), KEYSTORE_OK);
    assert_int_equal(keystore_delete_passphrase(fx->ks, first), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(n_pass(fx), KEYSTORE_MAX_PASSPHRASES - 1);
    assert_int_equal(keystore_upload_passphrase(fx->ks, "fits again", NULL, id), KEYSTORE_OK);
}

static void test_crls(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    X509 *ca = self_signed(key, "crl issuer", 1);
    size_t len = 0;
    unsigned char *der = crl_der(key, ca, &len);
    char id[KEYSTORE_ID_MAX], first[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_upload_crl(fx->ks, der, len, "ca crl", first), KEYSTORE_OK);
    unsigned char *back = NULL;
    size_t blen = 0;
    assert_int_equal(keystore_crl_der(fx->ks, first, &back, &blen), KEYSTORE_OK);
    assert_int_equal(blen, len);
    assert_memory_equal(back, der, len);
    free(back);
    /* PEM input is stored as DER. */
    X509_CRL *crl = NULL;
    const unsigned char *p = der;
    crl = d2i_X509_CRL(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_CRL(bio, crl), 1);
    X509_CRL_free(crl);
    size_t plen = 0;
    char *pem = bio_text(bio, &plen);
    assert_int_equal(keystore_upload_crl(fx->ks, (unsigned char *)pem, plen, NULL, id), KEYSTORE_OK);
    free(pem);
    assert_int_equal(keystore_crl_der(fx->ks, id, &back, &blen), KEYSTORE_OK);
    assert_int_equal(blen, len);
    assert_memory_equal(back, der, len);
    free(back);
    const unsigned char junk[] = "not a crl";
    assert_int_equal(keystore_upload_crl(fx->ks, junk, sizeof junk - 1, NULL, id), KEYSTORE_E_BAD_INPUT);
    assert_int_equal(keystore_upload_crl(fx->ks, der, len, "\x1b[1m", id), KEYSTORE_E_ALIAS);
    for (size_t i = 2; i < KEYSTORE_MAX_CRLS; i++)
        assert_int_equal(keystore_upload_crl(fx->ks, der, len, NULL, id), KEYSTORE_OK);
    assert_int_equal(keystore_upload_crl(fx->ks, der, len, NULL, id), KEYSTORE_E_FULL);
    struct keystore_object_info *list = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_crls(fx->ks, &list, &n), KEYSTORE_OK);
    assert_int_equal(n, KEYSTORE_MAX_CRLS);
    assert_string_equal(list[0].alias, "ca crl");
    free(list);
    assert_int_equal(keystore_delete_crl(fx->ks, first), KEYSTORE_OK);
    assert_int_equal(keystore_delete_crl(fx->ks, first), KEYSTORE_E_NOT_FOUND);
    reopen(fx);
    assert_int_equal(n_crls(fx), KEYSTORE_MAX_CRLS - 1);
    OPENSSL_free(der);
    X509_free(ca);
    EVP_PKEY_free(key);
}

/* --- references ---------------------------------------------------------- */

static void test_references(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    X509 *x = self_signed(key, "ref", 0);
    char kid[KEYSTORE_ID_MAX], cid[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX], other[KEYSTORE_ID_MAX];
    upload_key(fx, key, NULL, kid);
    upload_key(fx, key, NULL, other);
    upload_cert(fx, x, cid, kid);
    const char *ids[] = { cid };
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, pid), KEYSTORE_OK);

    assert_int_equal(keystore_set_reference(fx->ks, "path", pid, 1), KEYSTORE_OK);
    assert_int_equal(keystore_set_reference(fx->ks, "path", pid, 1), KEYSTORE_OK);
    assert_int_equal(keystore_set_reference(fx->ks, "key", other, 1), KEYSTORE_OK);
    assert_int_equal(keystore_set_reference(fx->ks, "cert", cid, 1), KEYSTORE_OK);
    assert_int_equal(keystore_set_reference(fx->ks, "key", "KEY-99", 1), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_set_reference(fx->ks, "crl", cid, 1), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_set_reference(fx->ks, "key", other, 2), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_set_reference(fx->ks, "key", other, 0), KEYSTORE_E_INVALID);

    reopen(fx); /* references are persisted */
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_key(fx->ks, other), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_set_reference(fx->ks, "path", pid, -1), KEYSTORE_OK);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_set_reference(fx->ks, "path", pid, -1), KEYSTORE_OK);
    assert_int_equal(keystore_set_reference(fx->ks, "path", pid, -1), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    /* The certificate: out of every path, but still used by a feature. */
    assert_int_equal(keystore_delete_cert(fx->ks, cid), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_set_reference(fx->ks, "cert", cid, -1), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, cid), KEYSTORE_OK);
    assert_int_equal(keystore_set_reference(fx->ks, "key", other, -1), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, other), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, kid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, kid), KEYSTORE_E_NOT_FOUND);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* --- limits and aliases -------------------------------------------------- */

static void test_limits(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    size_t len = 0;
    char *pem = pkcs8_pem(key, NULL, &len);
    char id[KEYSTORE_ID_MAX], kid[KEYSTORE_ID_MAX] = "", cid[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX];
    for (size_t i = 0; i < KEYSTORE_MAX_KEYS; i++)
        assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, NULL, kid), KEYSTORE_OK);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, NULL, id), KEYSTORE_E_FULL);
    assert_int_equal(keystore_create_rsa_key(fx->ks, 2048, NULL, id, NULL), KEYSTORE_E_FULL);
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, id, NULL), KEYSTORE_E_FULL);
    /* A certificate for a new public key would need a key too. */
    EVP_PKEY *other = ec_key();
    X509 *ox = self_signed(other, "other", 0);
    assert_int_equal(upload_cert_rc(fx, ox, NULL, NULL, 0, cid, id), KEYSTORE_E_FULL);
    assert_int_equal(n_certs(fx), 0);

    for (size_t i = 0; i < KEYSTORE_MAX_CERTS; i++) {
        X509 *x = self_signed(key, "many", 0);
        upload_cert(fx, x, cid, id);
        X509_free(x);
    }
    X509 *x = self_signed(key, "too many", 0);
    assert_int_equal(upload_cert_rc(fx, x, NULL, NULL, 0, id, id), KEYSTORE_E_FULL);
    X509_free(x);
    const char *ids[] = { cid };
    for (size_t i = 0; i < KEYSTORE_MAX_PATHS; i++)
        assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, pid), KEYSTORE_OK);
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, id), KEYSTORE_E_FULL);
    reopen(fx);
    assert_int_equal(n_keys(fx), KEYSTORE_MAX_KEYS);
    assert_int_equal(n_certs(fx), KEYSTORE_MAX_CERTS);
    assert_int_equal(n_paths(fx), KEYSTORE_MAX_PATHS);
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, id), KEYSTORE_E_FULL);
    free(pem);
    X509_free(ox);
    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
}

static void test_alias_rules(void **state)
{
    struct fixture *fx = *state;
    char id[KEYSTORE_ID_MAX];
    char longest[KEYSTORE_ALIAS_MAX + 2];
    memset(longest, 'a', KEYSTORE_ALIAS_MAX);
    longest[KEYSTORE_ALIAS_MAX] = '\0';
    assert_int_equal(keystore_upload_passphrase(fx->ks, "x", longest, id), KEYSTORE_OK);
    longest[KEYSTORE_ALIAS_MAX] = 'a';
    longest[KEYSTORE_ALIAS_MAX + 1] = '\0';
    assert_int_equal(keystore_upload_passphrase(fx->ks, "x", longest, id), KEYSTORE_E_ALIAS);
    const char *good[] = { "", "Kamera Tür", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x93\xb7 cam", "a&b<c>\"d'",
                           "\xc2\x85next-line" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (keystore_upload_passphrase(fx->ks, "x", good[i], id) != KEYSTORE_OK)
            fail_msg("alias %zu refused", i);
    const char *bad[] = { "\xc3\x28", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                          "tab\there", "new\nline", "\xe2\x82", "\xef\xbf\xbe" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (keystore_upload_passphrase(fx->ks, "x", bad[i], id) != KEYSTORE_E_ALIAS)
            fail_msg("alias %zu accepted", i);
    /* Aliases with markup characters survive a round trip. */
    reopen(fx);
    struct keystore_object_info *list = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_passphrases(fx->ks, &list, &n), KEYSTORE_OK);
    assert_int_equal(n, 1 + sizeof good / sizeof good[0]);
    longest[KEYSTORE_ALIAS_MAX] = '\0';
    assert_string_equal(list[0].alias, longest);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_string_equal(list[1 + i].alias, good[i]);
    free(list);
}

/* --- persistence --------------------------------------------------------- */

static void test_persistence_and_ids_never_reused(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    X509 *x = self_signed(key, "persist", 0);
    char k1[KEYSTORE_ID_MAX], k2[KEYSTORE_ID_MAX], c1[KEYSTORE_ID_MAX], ck[KEYSTORE_ID_MAX], p1[KEYSTORE_ID_MAX],
        s1[KEYSTORE_ID_MAX], r1[KEYSTORE_ID_MAX];
    upload_key(fx, key, "first", k1);
    upload_key(fx, key, "second", k2);
    assert_string_equal(k1, "KEY-1");
    assert_string_equal(k2, "KEY-2");
    upload_cert(fx, x, c1, ck);
    assert_string_equal(c1, "CERT-1");
    const char *ids[] = { c1 };
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, "p", p1), KEYSTORE_OK);
    assert_string_equal(p1, "PATH-1");
    assert_int_equal(keystore_upload_passphrase(fx->ks, PASSPHRASE, "s", s1), KEYSTORE_OK);
    assert_string_equal(s1, "PASS-1");
    size_t len = 0;
    unsigned char *der = crl_der(key, x, &len);
    assert_int_equal(keystore_upload_crl(fx->ks, der, len, "r", r1), KEYSTORE_OK);
    assert_string_equal(r1, "CRL-1");

    reopen(fx);
    assert_string_equal(key_info(fx, k1).alias, "first");
    struct keystore_cert_info ci;
    assert_int_equal(keystore_cert_info(fx->ks, c1, &ci), KEYSTORE_OK);
    assert_string_equal(ci.key_id, k1);
    assert_true(ci.not_after > ci.not_before);
    struct keystore_path_info pi;
    assert_int_equal(keystore_path_info(fx->ks, p1, &pi), KEYSTORE_OK);
    assert_string_equal(pi.cert_ids[0], c1);
    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, k2, &k), KEYSTORE_OK);
    assert_true(same_public_key(k, key));
    EVP_PKEY_free(k);
    /* The stored passphrase still opens an encrypted upload. */
    size_t pem_len = 0;
    char *pem = pkcs8_pem(key, PASSPHRASE, &pem_len);
    char k3[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, pem_len, NULL, s1, NULL, k3), KEYSTORE_OK);
    assert_string_equal(k3, "KEY-3");
    free(pem);

    /* Delete the newest of each, restart: the IDs are not handed out again. */
    assert_int_equal(keystore_delete_path(fx->ks, p1), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, c1), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, k3), KEYSTORE_OK);
    assert_int_equal(keystore_delete_passphrase(fx->ks, s1), KEYSTORE_OK);
    assert_int_equal(keystore_delete_crl(fx->ks, r1), KEYSTORE_OK);
    reopen(fx);
    char id[KEYSTORE_ID_MAX], kid[KEYSTORE_ID_MAX];
    upload_key(fx, key, NULL, id);
    assert_string_equal(id, "KEY-4");
    upload_cert(fx, x, id, kid);
    assert_string_equal(id, "CERT-2");
    ids[0] = id;
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, id), KEYSTORE_OK);
    assert_string_equal(id, "PATH-2");
    assert_int_equal(keystore_upload_passphrase(fx->ks, "p", NULL, id), KEYSTORE_OK);
    assert_string_equal(id, "PASS-2");
    assert_int_equal(keystore_upload_crl(fx->ks, der, len, NULL, id), KEYSTORE_OK);
    assert_string_equal(id, "CRL-2");
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_file_holds_no_secrets(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    char id[KEYSTORE_ID_MAX], gen[KEYSTORE_ID_MAX];
    upload_key(fx, key, NULL, id);
    assert_int_equal(keystore_upload_passphrase(fx->ks, PASSPHRASE, NULL, id), KEYSTORE_OK);
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, gen, NULL), KEYSTORE_OK);
    assert_int_equal(wait_generated(fx, gen), KEYSTORE_KEY_OK);
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(store_path(fx, path), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *text = read_text_file(path);
    assert_non_null(text);
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_null(strstr(text, "-----BEGIN"));
    assert_null(strstr(text, PASSPHRASE));
    /* Nor the PKCS#8 DER in base64 (its first 48 characters suffice). */
    unsigned char *der = NULL;
    int dlen = i2d_PrivateKey(key, &der);
    assert_true(dlen > 0);
    char b64[4096];
    EVP_EncodeBlock((unsigned char *)b64, der, dlen);
    b64[48] = '\0';
    assert_null(strstr(text, b64));
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(i2d_PKCS8PrivateKey_bio(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    size_t plen = 0;
    char *p8 = bio_text(bio, &plen);
    EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)p8, (int)plen);
    b64[48] = '\0';
    assert_null(strstr(text, b64));
    assert_non_null(strstr(text, "v1:"));
    free(p8);
    OPENSSL_free(der);
    free(text);
    EVP_PKEY_free(key);
}

static void test_corrupt_file_refused(void **state)
{
    struct fixture *fx = *state;
    keystore_close(fx->ks);
    fx->ks = NULL;
    char path[PATH_MAX];
    store_path(fx, path);
    const char *bad[] = {
        "not xml at all",
        "<?xml version=\"1.0\"?><users/>",
        "<?xml version=\"1.0\"?><!DOCTYPE keystore [<!ENTITY x \"y\">]><keystore version=\"1\" next-key=\"1\""
        " next-cert=\"1\" next-path=\"1\" next-passphrase=\"1\" next-crl=\"1\"/>",
        "<?xml version=\"1.0\"?><keystore version=\"2\" next-key=\"1\" next-cert=\"1\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"/>",
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"x\" next-cert=\"1\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"/>",
        /* a certificate naming a key that does not exist */
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"1\" next-cert=\"2\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"><cert id=\"CERT-1\" alias=\"\" key=\"KEY-1\" refs=\"0\">AAAA</cert>"
        "</keystore>",
        /* a path naming a missing certificate */
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"1\" next-cert=\"1\" next-path=\"2\""
        " next-passphrase=\"1\" next-crl=\"1\"><path id=\"PATH-1\" alias=\"\" refs=\"0\"><cert>CERT-4</cert></path>"
        "</keystore>",
        /* an ok key without a public key, a bad status, a duplicate ID */
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"2\" next-cert=\"1\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"><key id=\"KEY-1\" alias=\"\" status=\"ok\" type=\"\""
        " external=\"false\" refs=\"0\"/></keystore>",
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"2\" next-cert=\"1\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"><key id=\"KEY-1\" alias=\"\" status=\"fine\" type=\"\""
        " external=\"false\" refs=\"0\"/></keystore>",
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"2\" next-cert=\"1\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"><key id=\"KEY-1\" alias=\"\" status=\"generating\" type=\"\""
        " external=\"false\" refs=\"0\"/><key id=\"KEY-1\" alias=\"\" status=\"generating\" type=\"\""
        " external=\"false\" refs=\"0\"/></keystore>",
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"1\" next-cert=\"1\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"><crl id=\"CRL-1\" alias=\"\">bm90IGEgY3Js</crl></keystore>",
        "<?xml version=\"1.0\"?><keystore version=\"1\" next-key=\"1\" next-cert=\"1\" next-path=\"1\""
        " next-passphrase=\"1\" next-crl=\"1\"><surprise/></keystore>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(write_text_file(path, bad[i]), 0);
        struct keystore *ks = (struct keystore *)fx;
        if (keystore_open(&ks, fx->ks_dir, NULL, fx->box) != KEYSTORE_E_STORE)
            fail_msg("corrupt file %zu accepted", i);
        assert_null(ks);
    }
    /* The refused file is left for inspection, not replaced. */
    char *text = read_text_file(path);
    assert_non_null(strstr(text, "surprise"));
    free(text);
    /* Too large. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fseek(f, 9L * 1024 * 1024, SEEK_SET), 0);
    fputc(' ', f);
    fclose(f);
    struct keystore *ks = NULL;
    assert_int_equal(keystore_open(&ks, fx->ks_dir, NULL, fx->box), KEYSTORE_E_STORE);
    unlink(path);
    assert_int_equal(keystore_open(&fx->ks, fx->ks_dir, NULL, fx->box), KEYSTORE_OK);
}

static void test_other_device_key_makes_keys_corrupt(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    char id[KEYSTORE_ID_MAX];
    upload_key(fx, key, NULL, id);
    keystore_close(fx->ks);
    fx->ks = NULL;
    char other_dir[PATH_MAX];
    path_in(other_dir, fx->dir.path, "other-box");
    assert_int_equal(mkdir(other_dir, 0700), 0);
    struct secretbox *other = NULL;
    assert_int_equal(secretbox_open(&other, other_dir), SECRETBOX_OK);
    assert_int_equal(keystore_open(&fx->ks, fx->ks_dir, NULL, other), KEYSTORE_OK);
    assert_int_equal(key_info(fx, id).status, KEYSTORE_KEY_CORRUPT);
    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, id, &k), KEYSTORE_E_KEY_STATUS);
    keystore_close(fx->ks);
    fx->ks = NULL;
    secretbox_close(other);
    assert_int_equal(keystore_open(&fx->ks, fx->ks_dir, NULL, fx->box), KEYSTORE_OK);
    EVP_PKEY_free(key);
}

static void test_failed_save_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key();
    X509 *x = self_signed(key, "kept", 0);
    char kid[KEYSTORE_ID_MAX], cid[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX], sid[KEYSTORE_ID_MAX];
    upload_key(fx, key, "kept", kid);
    upload_cert(fx, x, cid, kid);
    const char *ids[] = { cid };
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, pid), KEYSTORE_OK);
    assert_int_equal(keystore_upload_passphrase(fx->ks, "p", NULL, sid), KEYSTORE_OK);

    remove_tree(fx->ks_dir); /* every save now fails */
    char id[KEYSTORE_ID_MAX] = "unchanged", id2[KEYSTORE_ID_MAX] = "unchanged";
    assert_int_equal(keystore_upload_passphrase(fx->ks, "q", NULL, id), KEYSTORE_E_STORE);
    assert_int_equal(keystore_delete_passphrase(fx->ks, sid), KEYSTORE_E_STORE);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_E_STORE);
    assert_int_equal(keystore_set_reference(fx->ks, "key", kid, 1), KEYSTORE_E_STORE);
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, id, NULL), KEYSTORE_E_STORE);
    EVP_PKEY *key2 = ec_key();
    size_t len = 0;
    char *pem = pkcs8_pem(key2, NULL, &len);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, NULL, id), KEYSTORE_E_STORE);
    X509 *y = self_signed(key2, "new", 0);
    assert_int_equal(upload_cert_rc(fx, y, NULL, NULL, 0, id, id2), KEYSTORE_E_STORE);
    assert_string_equal(id, "unchanged");
    assert_string_equal(id2, "unchanged");

    assert_int_equal(n_keys(fx), 1);
    assert_int_equal(n_certs(fx), 1);
    assert_int_equal(n_paths(fx), 1);
    assert_int_equal(n_pass(fx), 1);
    assert_string_equal(key_info(fx, kid).alias, "kept");

    /* Back on disk: the reference was not counted, the IDs not consumed. */
    assert_int_equal(mkdir(fx->ks_dir, 0700), 0);
    assert_int_equal(keystore_upload_passphrase(fx->ks, "q", NULL, id), KEYSTORE_OK);
    assert_string_equal(id, "PASS-2");
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, cid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_key(fx->ks, kid), KEYSTORE_OK);
    assert_int_equal(keystore_upload_pkcs8(fx->ks, (unsigned char *)pem, len, NULL, NULL, NULL, id), KEYSTORE_OK);
    assert_string_equal(id, "KEY-2");
    reopen(fx);
    assert_int_equal(n_keys(fx), 1);
    assert_int_equal(n_pass(fx), 2);
    free(pem);
    X509_free(y);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_free(key2);
}

/* --- factory identity ---------------------------------------------------- */

static void write_factory(const char *dir, EVP_PKEY *key, X509 *cert, X509 *const *chain, size_t n_chain)
{
    char path[PATH_MAX];
    assert_int_equal(mkdir(dir, 0700), 0);
    char *pem = pkcs8_pem(key, NULL, NULL);
    assert_int_equal(write_text_file(path_in(path, dir, "identity.key"), pem), 0);
    chmod(path, 0600);
    free(pem);
    pem = cert_pem(cert, NULL);
    assert_int_equal(write_text_file(path_in(path, dir, "identity.crt"), pem), 0);
    free(pem);
    if (n_chain) {
        BIO *bio = BIO_new(BIO_s_mem());
        for (size_t i = 0; i < n_chain; i++)
            assert_int_equal(PEM_write_bio_X509(bio, chain[i]), 1);
        pem = bio_text(bio, NULL);
        assert_int_equal(write_text_file(path_in(path, dir, "chain.pem"), pem), 0);
        free(pem);
    }
}

static void test_factory_identity_is_read_only(void **state)
{
    struct fixture *fx = *state;
    struct chain c;
    make_chain(&c);
    char fdir[PATH_MAX];
    path_in(fdir, fx->dir.path, "factory");
    X509 *chain[] = { c.inter, c.root };
    write_factory(fdir, c.leaf_key, c.leaf, chain, 2);
    char own[KEYSTORE_ID_MAX];
    upload_key(fx, c.root_key, "own", own);
    reopen_with(fx, fdir);

    struct keystore_key_info info = key_info(fx, "FACTORY-KEY");
    assert_int_equal(info.read_only, 1);
    assert_int_equal(info.has_private_key, 1);
    assert_int_equal(info.status, KEYSTORE_KEY_OK);
    assert_string_equal(info.type, "EC-P256");
    assert_int_equal(key_info(fx, own).read_only, 0);
    struct keystore_path_info pi;
    assert_int_equal(keystore_path_info(fx->ks, "FACTORY-PATH", &pi), KEYSTORE_OK);
    assert_int_equal(pi.read_only, 1);
    assert_int_equal(pi.n_certs, 3);
    assert_string_equal(pi.cert_ids[0], "FACTORY-CERT");
    assert_string_equal(pi.cert_ids[1], "FACTORY-CA-1");
    assert_string_equal(pi.cert_ids[2], "FACTORY-CA-2");
    struct keystore_cert_info ci;
    assert_int_equal(keystore_cert_info(fx->ks, "FACTORY-CERT", &ci), KEYSTORE_OK);
    assert_int_equal(ci.read_only, 1);
    assert_string_equal(ci.key_id, "FACTORY-KEY");
    /* The root's public key is the key uploaded before: a read-only copy of
     * it exists for the factory certificate anyway. */
    assert_int_equal(keystore_cert_info(fx->ks, "FACTORY-CA-2", &ci), KEYSTORE_OK);
    assert_int_equal(key_info(fx, ci.key_id).read_only, 1);

    EVP_PKEY *k = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, "FACTORY-KEY", &k), KEYSTORE_OK);
    assert_true(same_public_key(k, c.leaf_key));
    EVP_PKEY_free(k);

    assert_int_equal(keystore_delete_key(fx->ks, "FACTORY-KEY"), KEYSTORE_E_READ_ONLY);
    assert_int_equal(keystore_delete_cert(fx->ks, "FACTORY-CERT"), KEYSTORE_E_READ_ONLY);
    assert_int_equal(keystore_delete_cert(fx->ks, "FACTORY-CA-1"), KEYSTORE_E_READ_ONLY);
    assert_int_equal(keystore_delete_path(fx->ks, "FACTORY-PATH"), KEYSTORE_E_READ_ONLY);
    assert_int_equal(keystore_delete_key(fx->ks, ci.key_id), KEYSTORE_E_READ_ONLY);

    /* Factory objects count toward no limit, can be referenced, and the
     * reference survives a restart; the file holds none of them otherwise. */
    assert_int_equal(keystore_set_reference(fx->ks, "path", "FACTORY-PATH", 1), KEYSTORE_OK);
    /* Another certificate for the factory key binds to it. */
    EVP_PKEY *fkey = NULL;
    assert_int_equal(keystore_get_private_key(fx->ks, "FACTORY-KEY", &fkey), KEYSTORE_OK);
    X509 *reissued = self_signed(fkey, "reissued", 0);
    char rc_id[KEYSTORE_ID_MAX], rk[KEYSTORE_ID_MAX];
    assert_int_equal(upload_cert_rc(fx, reissued, NULL, NULL, 1, rc_id, rk), KEYSTORE_OK);
    assert_string_equal(rk, "FACTORY-KEY");
    const char *ids[] = { "FACTORY-CA-1", "FACTORY-CA-2" };
    char pid[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_create_path(fx->ks, ids, 2, NULL, pid), KEYSTORE_OK);
    char path[PATH_MAX];
    char *text = read_text_file(store_path(fx, path));
    assert_null(strstr(text, "id=\"FACTORY-KEY\" alias"));
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_non_null(strstr(text, "factory-ref"));
    free(text);
    reopen_with(fx, fdir);
    assert_int_equal(keystore_delete_path(fx->ks, "FACTORY-PATH"), KEYSTORE_E_READ_ONLY);
    assert_int_equal(keystore_set_reference(fx->ks, "path", "FACTORY-PATH", -1), KEYSTORE_OK);
    assert_int_equal(keystore_set_reference(fx->ks, "path", "FACTORY-PATH", -1), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_cert_info(fx->ks, rc_id, &ci), KEYSTORE_OK);
    assert_string_equal(ci.key_id, "FACTORY-KEY");

    /* Regression: the factory identity gone (re-provisioned, unreadable)
     * while user objects refer to it once made the keystore unloadable;
     * those objects are dropped instead and everything else stays. */
    reopen(fx);
    assert_int_equal(keystore_cert_info(fx->ks, rc_id, &ci), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_path_info(fx->ks, pid, &pi), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(key_info(fx, own).read_only, 0);
    assert_int_equal(keystore_key_info(fx->ks, "FACTORY-KEY", &info), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(n_keys(fx), 1);
    char missing[PATH_MAX];
    reopen_with(fx, path_in(missing, fx->dir.path, "no-such-factory"));
    assert_int_equal(n_keys(fx), 1);

    X509_free(reissued);
    EVP_PKEY_free(fkey);
    free_chain(&c);
}

static void test_factory_identity_faults(void **state)
{
    struct fixture *fx = *state;
    struct chain c;
    make_chain(&c);
    char fdir[PATH_MAX], path[PATH_MAX];
    struct keystore *ks = NULL;

    /* Key and certificate that do not belong together. */
    path_in(fdir, fx->dir.path, "mismatch");
    write_factory(fdir, c.root_key, c.leaf, NULL, 0);
    assert_int_equal(keystore_open(&ks, fx->ks_dir, fdir, fx->box), KEYSTORE_E_STORE);
    assert_null(ks);

    /* Chain not in issuer order. */
    path_in(fdir, fx->dir.path, "order");
    X509 *wrong[] = { c.root, c.inter };
    write_factory(fdir, c.leaf_key, c.leaf, wrong, 2);
    assert_int_equal(keystore_open(&ks, fx->ks_dir, fdir, fx->box), KEYSTORE_E_STORE);

    /* Unparsable certificate, unparsable chain. */
    path_in(fdir, fx->dir.path, "garbage");
    write_factory(fdir, c.leaf_key, c.leaf, NULL, 0);
    assert_int_equal(write_text_file(path_in(path, fdir, "identity.crt"), "garbage\n"), 0);
    assert_int_equal(keystore_open(&ks, fx->ks_dir, fdir, fx->box), KEYSTORE_E_STORE);
    path_in(fdir, fx->dir.path, "garbage-chain");
    write_factory(fdir, c.leaf_key, c.leaf, NULL, 0);
    assert_int_equal(write_text_file(path_in(path, fdir, "chain.pem"), "garbage\n"), 0);
    assert_int_equal(keystore_open(&ks, fx->ks_dir, fdir, fx->box), KEYSTORE_E_STORE);

    /* Only a certificate: no factory identity, not an error. */
    path_in(fdir, fx->dir.path, "partial");
    write_factory(fdir, c.leaf_key, c.leaf, NULL, 0);
    unlink(path_in(path, fdir, "identity.key"));
    assert_int_equal(keystore_open(&ks, fx->ks_dir, fdir, fx->box), KEYSTORE_OK);
    struct keystore_key_info info;
    assert_int_equal(keystore_key_info(ks, "FACTORY-KEY", &info), KEYSTORE_E_NOT_FOUND);
    keystore_close(ks);

    /* Without chain.pem: a path of the factory certificate alone. */
    path_in(fdir, fx->dir.path, "nochain");
    write_factory(fdir, c.leaf_key, c.leaf, NULL, 0);
    assert_int_equal(keystore_open(&ks, fx->ks_dir, fdir, fx->box), KEYSTORE_OK);
    struct keystore_path_info pi;
    assert_int_equal(keystore_path_info(ks, "FACTORY-PATH", &pi), KEYSTORE_OK);
    assert_int_equal(pi.n_certs, 1);
    keystore_close(ks);
    free_chain(&c);
}

/* --- certification path validation policies ----------------------------- */

/* A v1 self-signed certificate: no extensions at all, so no basicConstraints
 * (OpenSSL's X509_check_ca still calls it a CA, answering 3). */
static X509 *v1_self_signed(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_NAME *name = name_cn(cn);
    assert_int_equal(X509_set_version(x, X509_VERSION_1), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static struct keystore_cpv_policy cpv_of(const char *alias, const char *const *anchors, size_t n)
{
    struct keystore_cpv_policy p;
    memset(&p, 0, sizeof p);
    snprintf(p.alias, sizeof p.alias, "%s", alias ? alias : "");
    p.n_anchors = n;
    for (size_t i = 0; i < n && i < KEYSTORE_MAX_TRUST_ANCHORS; i++)
        snprintf(p.anchor_ids[i], sizeof p.anchor_ids[i], "%s", anchors[i]);
    return p;
}

static void create_cpv(struct fixture *fx, const struct keystore_cpv_policy *p, char id[KEYSTORE_ID_MAX])
{
    int rc = keystore_create_cpv_policy(fx->ks, p, id);
    if (rc != KEYSTORE_OK)
        fail_msg("creating a policy: %s", keystore_strerror(rc));
}

static size_t n_cpv(struct fixture *fx)
{
    struct keystore_cpv_policy *l = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_cpv_policies(fx->ks, &l, &n), KEYSTORE_OK);
    free(l);
    return n;
}

/* Uploads a self-signed CA certificate of a fresh key; its ID in id. */
static void upload_ca(struct fixture *fx, const char *cn, char id[KEYSTORE_ID_MAX])
{
    EVP_PKEY *key = ec_key();
    X509 *x = self_signed(key, cn, 1);
    char kid[KEYSTORE_ID_MAX];
    upload_cert(fx, x, id, kid);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_cpv_policies(void **state)
{
    struct fixture *fx = *state;
    char ca1[KEYSTORE_ID_MAX], ca2[KEYSTORE_ID_MAX], id[KEYSTORE_ID_MAX], id2[KEYSTORE_ID_MAX];
    upload_ca(fx, "CA one", ca1);
    upload_ca(fx, "CA two", ca2);
    assert_int_equal(n_cpv(fx), 0);

    const char *both[] = { ca1, ca2 };
    struct keystore_cpv_policy p = cpv_of("clients", both, 2);
    p.require_client_auth_eku = 1;
    snprintf(p.id, sizeof p.id, "CPVP-77");   /* ignored */
    create_cpv(fx, &p, id);
    assert_string_equal(id, "CPVP-1");
    const char *one[] = { ca2 };
    struct keystore_cpv_policy q = cpv_of("", one, 1);
    q.use_delta_crls = 5;                      /* any non-zero is true */
    create_cpv(fx, &q, id2);
    assert_string_equal(id2, "CPVP-2");

    struct keystore_cpv_policy info;
    assert_int_equal(keystore_cpv_policy_info(fx->ks, id, &info), KEYSTORE_OK);
    assert_string_equal(info.id, "CPVP-1");
    assert_string_equal(info.alias, "clients");
    assert_int_equal(info.require_client_auth_eku, 1);
    assert_int_equal(info.use_delta_crls, 0);
    assert_int_equal(info.n_anchors, 2);
    assert_string_equal(info.anchor_ids[0], ca1);
    assert_string_equal(info.anchor_ids[1], ca2);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, id2, &info), KEYSTORE_OK);
    assert_int_equal(info.require_client_auth_eku, 0);
    assert_int_equal(info.use_delta_crls, 1);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, "CPVP-99", &info), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, NULL, &info), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, id, NULL), KEYSTORE_E_INVALID);

    struct keystore_cpv_policy *list = NULL;
    size_t n = 0;
    assert_int_equal(keystore_list_cpv_policies(fx->ks, &list, &n), KEYSTORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, id);
    assert_string_equal(list[1].id, id2);
    assert_string_equal(list[1].anchor_ids[0], ca2);
    free(list);

    /* Deleted IDs are not handed out again. */
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, id2), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, id2), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, id2, &info), KEYSTORE_E_NOT_FOUND);
    create_cpv(fx, &q, id2);
    assert_string_equal(id2, "CPVP-3");
    assert_int_equal(n_cpv(fx), 2);

    /* Aliases: the longest fits, one byte more (unterminated) or bad UTF-8 does not. */
    char out[KEYSTORE_ID_MAX] = "unchanged";
    struct keystore_cpv_policy a = cpv_of(NULL, one, 1);
    memset(a.alias, 'a', KEYSTORE_ALIAS_MAX);
    create_cpv(fx, &a, id);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, id, &info), KEYSTORE_OK);
    assert_int_equal(strlen(info.alias), KEYSTORE_ALIAS_MAX);
    memset(a.alias, 'a', sizeof a.alias);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &a, out), KEYSTORE_E_ALIAS);
    a = cpv_of("\xc0\xaf", one, 1);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &a, out), KEYSTORE_E_ALIAS);
    assert_string_equal(out, "unchanged");

    /* At most KEYSTORE_MAX_CPV_POLICIES. */
    while (n_cpv(fx) < KEYSTORE_MAX_CPV_POLICIES)
        create_cpv(fx, &q, id);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &q, out), KEYSTORE_E_FULL);
    assert_string_equal(out, "unchanged");
    reopen(fx);
    assert_int_equal(n_cpv(fx), KEYSTORE_MAX_CPV_POLICIES);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &q, out), KEYSTORE_E_FULL);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, id), KEYSTORE_OK);
    create_cpv(fx, &q, out);

    assert_int_equal(keystore_create_cpv_policy(NULL, &q, out), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, NULL, out), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &q, NULL), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_list_cpv_policies(fx->ks, NULL, &n), KEYSTORE_E_INVALID);
    assert_int_equal(keystore_delete_cpv_policy(NULL, id), KEYSTORE_E_INVALID);
}

static void test_cpv_policy_anchor_rules(void **state)
{
    struct fixture *fx = *state;
    char ca[KEYSTORE_ID_MAX], leaf[KEYSTORE_ID_MAX], v1[KEYSTORE_ID_MAX], kid[KEYSTORE_ID_MAX];
    char out[KEYSTORE_ID_MAX] = "unchanged";
    upload_ca(fx, "anchor CA", ca);
    EVP_PKEY *key = ec_key();
    X509 *lx = self_signed(key, "not a CA", 0);
    upload_cert(fx, lx, leaf, kid);
    EVP_PKEY *vkey = ec_key();
    X509 *vx = v1_self_signed(vkey, "old root");
    assert_int_equal(X509_check_ca(vx), 3);   /* what a lax check would accept */
    upload_cert(fx, vx, v1, kid);

    const char *none[] = { ca };
    struct keystore_cpv_policy p = cpv_of(NULL, none, 0);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_PARAMS);

    /* 16 distinct anchors fit; 17 do not. */
    char cas[KEYSTORE_MAX_TRUST_ANCHORS][KEYSTORE_ID_MAX];
    const char *ids[KEYSTORE_MAX_TRUST_ANCHORS];
    snprintf(cas[0], sizeof cas[0], "%s", ca);
    for (size_t i = 1; i < KEYSTORE_MAX_TRUST_ANCHORS; i++)
        upload_ca(fx, "another CA", cas[i]);
    for (size_t i = 0; i < KEYSTORE_MAX_TRUST_ANCHORS; i++)
        ids[i] = cas[i];
    p = cpv_of(NULL, ids, KEYSTORE_MAX_TRUST_ANCHORS);
    p.n_anchors = KEYSTORE_MAX_TRUST_ANCHORS + 1;
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_PARAMS);
    p.n_anchors = (size_t)-1;
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_PARAMS);

    const char *dup[] = { ca, cas[1], ca };
    p = cpv_of(NULL, dup, 3);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_PARAMS);

    const char *unknown[] = { ca, "CERT-999" };
    p = cpv_of(NULL, unknown, 2);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_NOT_FOUND);
    const char *empty[] = { "" };
    p = cpv_of(NULL, empty, 1);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_NOT_FOUND);
    p = cpv_of(NULL, none, 1);
    memset(p.anchor_ids[0], 'C', sizeof p.anchor_ids[0]);   /* unterminated */
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_NOT_FOUND);

    const char *with_leaf[] = { ca, leaf };
    p = cpv_of(NULL, with_leaf, 2);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_NOT_CA);
    const char *with_v1[] = { v1 };
    p = cpv_of(NULL, with_v1, 1);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_NOT_CA);
    assert_string_equal(out, "unchanged");
    assert_int_equal(n_cpv(fx), 0);

    p = cpv_of(NULL, ids, KEYSTORE_MAX_TRUST_ANCHORS);
    create_cpv(fx, &p, out);
    struct keystore_cpv_policy info;
    assert_int_equal(keystore_cpv_policy_info(fx->ks, out, &info), KEYSTORE_OK);
    assert_int_equal(info.n_anchors, KEYSTORE_MAX_TRUST_ANCHORS);
    X509_free(lx);
    X509_free(vx);
    EVP_PKEY_free(key);
    EVP_PKEY_free(vkey);
}

static void test_cpv_anchor_cannot_be_deleted(void **state)
{
    struct fixture *fx = *state;
    char ca[KEYSTORE_ID_MAX], other[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX], pid2[KEYSTORE_ID_MAX];
    upload_ca(fx, "anchored", ca);
    upload_ca(fx, "free", other);
    const char *ids[] = { ca };
    struct keystore_cpv_policy p = cpv_of(NULL, ids, 1);
    create_cpv(fx, &p, pid);
    create_cpv(fx, &p, pid2);
    assert_int_equal(keystore_delete_cert(fx->ks, ca), KEYSTORE_E_REFERENCED);
    reopen(fx);
    assert_int_equal(keystore_delete_cert(fx->ks, ca), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, pid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, ca), KEYSTORE_E_REFERENCED);   /* pid2 still */
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, pid2), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, ca), KEYSTORE_OK);
    assert_int_equal(keystore_delete_cert(fx->ks, other), KEYSTORE_OK);
    assert_int_equal(n_certs(fx), 0);
}

static void test_cpv_persistence(void **state)
{
    struct fixture *fx = *state;
    char ca1[KEYSTORE_ID_MAX], ca2[KEYSTORE_ID_MAX], a[KEYSTORE_ID_MAX], b[KEYSTORE_ID_MAX];
    upload_ca(fx, "one", ca1);
    upload_ca(fx, "two", ca2);
    const char *ids[] = { ca2, ca1 };
    struct keystore_cpv_policy p = cpv_of("Kamera T\xc3\xbcr <&>", ids, 2);
    p.require_client_auth_eku = 1;
    p.use_delta_crls = 1;
    create_cpv(fx, &p, a);
    struct keystore_cpv_policy q = cpv_of("second", ids + 1, 1);
    create_cpv(fx, &q, b);
    assert_string_equal(b, "CPVP-2");

    char path[PATH_MAX];
    char *text = read_text_file(store_path(fx, path));
    assert_non_null(strstr(text, "<cpv-policy id=\"CPVP-1\""));
    assert_non_null(strstr(text, "next-cpv-policy=\"3\""));
    free(text);

    reopen(fx);
    struct keystore_cpv_policy info;
    assert_int_equal(keystore_cpv_policy_info(fx->ks, a, &info), KEYSTORE_OK);
    assert_string_equal(info.alias, p.alias);
    assert_int_equal(info.require_client_auth_eku, 1);
    assert_int_equal(info.use_delta_crls, 1);
    assert_int_equal(info.n_anchors, 2);
    assert_string_equal(info.anchor_ids[0], ca2);
    assert_string_equal(info.anchor_ids[1], ca1);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, b, &info), KEYSTORE_OK);
    assert_int_equal(info.require_client_auth_eku, 0);
    assert_int_equal(info.use_delta_crls, 0);

    /* Delete the newest, restart: only the stored counter remembers it. */
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, b), KEYSTORE_OK);
    reopen(fx);
    assert_int_equal(n_cpv(fx), 1);
    create_cpv(fx, &q, b);
    assert_string_equal(b, "CPVP-3");
}

/* A file written before policies existed (no next-cpv-policy) still loads;
 * a policy naming a missing or non-CA user certificate makes it corrupt,
 * like a path naming a missing certificate. */
static void test_cpv_policy_file_checks(void **state)
{
    struct fixture *fx = *state;
    char ca[KEYSTORE_ID_MAX], leaf[KEYSTORE_ID_MAX], kid[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX];
    upload_ca(fx, "ca", ca);
    EVP_PKEY *key = ec_key();
    X509 *lx = self_signed(key, "leaf", 0);
    upload_cert(fx, lx, leaf, kid);
    const char *ids[] = { ca };
    struct keystore_cpv_policy p = cpv_of(NULL, ids, 1);
    create_cpv(fx, &p, pid);
    keystore_close(fx->ks);
    fx->ks = NULL;
    char path[PATH_MAX];
    char *good = read_text_file(store_path(fx, path));
    assert_non_null(good);

    struct {
        const char *from, *to;
    } edits[] = {
        { "<anchor>CERT-1</anchor>", "<anchor>CERT-9</anchor>" },   /* missing */
        { "<anchor>CERT-1</anchor>", "<anchor>CERT-2</anchor>" },   /* not a CA */
        { "<anchor>CERT-1</anchor>", "" },                          /* no anchor */
        { "<anchor>CERT-1</anchor>", "<anchor>CERT-1</anchor><anchor>CERT-1</anchor>" },
        { "<anchor>CERT-1</anchor>", "<cert>CERT-1</cert>" },
        { "use-delta-crls=\"false\"", "use-delta-crls=\"maybe\"" },
        { "id=\"CPVP-1\"", "id=\"PATH-1\"" },
        { "next-cpv-policy=\"2\"", "next-cpv-policy=\"0\"" },
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *at = strstr(good, edits[i].from);
        if (!at)
            fail_msg("edit %zu: \"%s\" not in the file", i, edits[i].from);
        size_t head = (size_t)(at - good), from = strlen(edits[i].from), to = strlen(edits[i].to);
        char *bad = malloc(strlen(good) - from + to + 1);
        assert_non_null(bad);
        memcpy(bad, good, head);
        memcpy(bad + head, edits[i].to, to);
        strcpy(bad + head + to, at + from);
        assert_int_equal(write_text_file(path, bad), 0);
        free(bad);
        struct keystore *ks = (struct keystore *)fx;
        if (keystore_open(&ks, fx->ks_dir, NULL, fx->box) != KEYSTORE_E_STORE)
            fail_msg("corrupt file (edit %zu) accepted", i);
        assert_null(ks);
    }

    /* Without the counter (an older file): loads, and the policy's ID still
     * keeps the next one from being reused. */
    char *at = strstr(good, " next-cpv-policy=\"2\"");
    assert_non_null(at);
    memmove(at, at + strlen(" next-cpv-policy=\"2\""), strlen(at + strlen(" next-cpv-policy=\"2\"")) + 1);
    assert_int_equal(write_text_file(path, good), 0);
    free(good);
    assert_int_equal(keystore_open(&fx->ks, fx->ks_dir, NULL, fx->box), KEYSTORE_OK);
    assert_int_equal(n_cpv(fx), 1);
    create_cpv(fx, &p, pid);
    assert_string_equal(pid, "CPVP-2");
    X509_free(lx);
    EVP_PKEY_free(key);
}

static void test_cpv_factory_anchor(void **state)
{
    struct fixture *fx = *state;
    struct chain c;
    make_chain(&c);
    char fdir[PATH_MAX];
    path_in(fdir, fx->dir.path, "factory");
    X509 *chain[] = { c.inter, c.root };
    write_factory(fdir, c.leaf_key, c.leaf, chain, 2);
    reopen_with(fx, fdir);
    char own[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX], kept[KEYSTORE_ID_MAX], out[KEYSTORE_ID_MAX];
    upload_ca(fx, "own CA", own);

    const char *leaf[] = { "FACTORY-CERT" };
    struct keystore_cpv_policy p = cpv_of(NULL, leaf, 1);
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_NOT_CA);
    const char *factory[] = { "FACTORY-CA-2", "FACTORY-CA-1" };
    p = cpv_of("factory", factory, 2);
    create_cpv(fx, &p, pid);
    const char *mine[] = { own };
    p = cpv_of("own", mine, 1);
    create_cpv(fx, &p, kept);
    /* Factory anchors keep their read-only answer. */
    assert_int_equal(keystore_delete_cert(fx->ks, "FACTORY-CA-1"), KEYSTORE_E_READ_ONLY);

    struct keystore_cpv_material m;
    assert_int_equal(keystore_cpv_material(fx->ks, pid, &m), KEYSTORE_OK);
    assert_int_equal(sk_X509_num(m.anchors), 2);
    assert_int_equal(X509_cmp(sk_X509_value(m.anchors, 0), c.root), 0);
    assert_int_equal(X509_cmp(sk_X509_value(m.anchors, 1), c.inter), 0);
    assert_int_equal(sk_X509_num(m.certs), 4);   /* three factory certificates and ours */
    keystore_cpv_material_free(&m);

    reopen_with(fx, fdir);
    struct keystore_cpv_policy info;
    assert_int_equal(keystore_cpv_policy_info(fx->ks, pid, &info), KEYSTORE_OK);
    assert_string_equal(info.anchor_ids[0], "FACTORY-CA-2");

    /* The factory identity gone: its policy is dropped, the rest stays. */
    reopen(fx);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, pid, &info), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, kept, &info), KEYSTORE_OK);

    /* Re-provisioned with a FACTORY-CA-1 that is no CA for us (a v1 root
     * without basicConstraints): the policy does not trust it by its ID. */
    reopen_with(fx, fdir);
    p = cpv_of(NULL, factory + 1, 1);
    create_cpv(fx, &p, pid);
    keystore_close(fx->ks);
    fx->ks = NULL;
    remove_tree(fdir);
    EVP_PKEY *k2 = ec_key();
    X509 *not_ca = v1_self_signed(k2, "v1 root");
    X509 *leaf2 = issued(c.leaf_key, "camera.example", not_ca, k2, 0);
    X509 *chain2[] = { not_ca };
    write_factory(fdir, c.leaf_key, leaf2, chain2, 1);
    reopen_with(fx, fdir);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, pid, &info), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, kept, &info), KEYSTORE_OK);
    X509_free(leaf2);
    X509_free(not_ca);
    EVP_PKEY_free(k2);
    free_chain(&c);
}

static void test_cpv_material(void **state)
{
    struct fixture *fx = *state;
    struct chain c;
    make_chain(&c);
    char leaf[KEYSTORE_ID_MAX], inter[KEYSTORE_ID_MAX], root[KEYSTORE_ID_MAX], k[KEYSTORE_ID_MAX];
    char pid[KEYSTORE_ID_MAX], crl[KEYSTORE_ID_MAX], other[KEYSTORE_ID_MAX];
    upload_cert(fx, c.leaf, leaf, k);
    upload_cert(fx, c.inter, inter, k);
    upload_cert(fx, c.root, root, k);
    upload_ca(fx, "unrelated", other);
    const char *ids[] = { root };
    struct keystore_cpv_policy p = cpv_of(NULL, ids, 1);
    p.use_delta_crls = 1;
    create_cpv(fx, &p, pid);

    struct keystore_cpv_material m;
    memset(&m, 0xa5, sizeof m);
    assert_int_equal(keystore_cpv_material(fx->ks, "CPVP-99", &m), KEYSTORE_E_NOT_FOUND);
    assert_null(m.anchors);
    assert_null(m.certs);
    assert_null(m.crls);
    keystore_cpv_material_free(&m);   /* zeroed: a no-op */
    keystore_cpv_material_free(NULL);
    assert_int_equal(keystore_cpv_material(fx->ks, pid, NULL), KEYSTORE_E_INVALID);

    assert_int_equal(keystore_cpv_material(fx->ks, pid, &m), KEYSTORE_OK);
    assert_int_equal(sk_X509_num(m.anchors), 1);
    assert_int_equal(X509_cmp(sk_X509_value(m.anchors, 0), c.root), 0);
    assert_int_equal(sk_X509_num(m.certs), (int)n_certs(fx));
    assert_int_equal(sk_X509_num(m.certs), 4);
    assert_int_equal(sk_X509_CRL_num(m.crls), 0);
    assert_int_equal(m.use_delta_crls, 1);
    assert_int_equal(m.require_client_auth_eku, 0);

    /* What it holds is enough to validate the leaf against the anchor. */
    X509_STORE *store = X509_STORE_new();
    assert_non_null(store);
    assert_int_equal(X509_STORE_add_cert(store, sk_X509_value(m.anchors, 0)), 1);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, c.leaf, m.certs), 1);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    keystore_cpv_material_free(&m);
    assert_null(m.anchors);
    assert_null(m.certs);
    assert_null(m.crls);
    keystore_cpv_material_free(&m);

    size_t len = 0;
    unsigned char *der = crl_der(c.root_key, c.root, &len);
    assert_int_equal(keystore_upload_crl(fx->ks, der, len, NULL, crl), KEYSTORE_OK);
    assert_int_equal(keystore_cpv_material(fx->ks, pid, &m), KEYSTORE_OK);
    assert_int_equal(sk_X509_CRL_num(m.crls), 1);
    unsigned char *back = NULL;
    int blen = i2d_X509_CRL(sk_X509_CRL_value(m.crls, 0), &back);
    assert_int_equal(blen, (int)len);
    assert_memory_equal(back, der, len);
    OPENSSL_free(back);
    keystore_cpv_material_free(&m);
    assert_int_equal(keystore_delete_cert(fx->ks, other), KEYSTORE_OK);
    assert_int_equal(keystore_cpv_material(fx->ks, pid, &m), KEYSTORE_OK);
    assert_int_equal(sk_X509_num(m.certs), 3);
    keystore_cpv_material_free(&m);
    OPENSSL_free(der);
    free_chain(&c);
}

/* --- reference check and generation -------------------------------------- */

struct checker {
    struct keystore *ks;
    int answer;
    int calls;
    int reads_ok;
    char kind[16];
    char id[KEYSTORE_ID_MAX];
};

static int checker_in_use(void *arg, const char *kind, const char *id)
{
    struct checker *c = arg;
    c->calls++;
    snprintf(c->kind, sizeof c->kind, "%s", kind);
    snprintf(c->id, sizeof c->id, "%s", id);
    /* Reads are allowed from inside the check (write_lock held). */
    struct keystore_cert_info *l = NULL;
    size_t n = 0;
    c->reads_ok = keystore_list_certs(c->ks, &l, &n) == KEYSTORE_OK && keystore_generation(c->ks) > 0;
    free(l);
    return c->answer;
}

static void expect_refused(struct fixture *fx, struct checker *c, int (*del)(struct keystore *, const char *),
                           const char *kind, const char *id)
{
    int before = c->calls;
    unsigned long gen = keystore_generation(fx->ks);
    int rc = del(fx->ks, id);
    if (rc != KEYSTORE_E_REFERENCED)
        fail_msg("deleting %s %s: %s", kind, id, keystore_strerror(rc));
    assert_int_equal(c->calls, before + 1);
    assert_string_equal(c->kind, kind);
    assert_string_equal(c->id, id);
    assert_true(c->reads_ok);
    assert_int_equal(keystore_generation(fx->ks), gen);
}

static void test_reference_check(void **state)
{
    struct fixture *fx = *state;
    EVP_PKEY *key = ec_key(), *key2 = ec_key();
    X509 *x = self_signed(key2, "in path", 0);
    X509 *y = self_signed(key2, "alone", 0);
    char kid[KEYSTORE_ID_MAX], cid[KEYSTORE_ID_MAX], alone[KEYSTORE_ID_MAX], k2[KEYSTORE_ID_MAX];
    char pid[KEYSTORE_ID_MAX], ca[KEYSTORE_ID_MAX], vid[KEYSTORE_ID_MAX];
    upload_key(fx, key, NULL, kid);
    upload_cert(fx, x, cid, k2);
    upload_cert(fx, y, alone, k2);
    const char *ids[] = { cid };
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, pid), KEYSTORE_OK);
    upload_ca(fx, "anchor", ca);
    const char *anchors[] = { ca };
    struct keystore_cpv_policy p = cpv_of(NULL, anchors, 1);
    create_cpv(fx, &p, vid);

    struct checker c = { .ks = fx->ks, .answer = 1 };
    keystore_set_reference_check(fx->ks, checker_in_use, &c);
    expect_refused(fx, &c, keystore_delete_key, "key", kid);
    expect_refused(fx, &c, keystore_delete_cert, "cert", alone);
    expect_refused(fx, &c, keystore_delete_path, "path", pid);
    expect_refused(fx, &c, keystore_delete_cpv_policy, "cpvpolicy", vid);
    struct keystore_key_info ki;
    struct keystore_cert_info ci;
    struct keystore_path_info pi;
    struct keystore_cpv_policy vi;
    assert_int_equal(keystore_key_info(fx->ks, kid, &ki), KEYSTORE_OK);
    assert_int_equal(keystore_cert_info(fx->ks, alone, &ci), KEYSTORE_OK);
    assert_int_equal(keystore_path_info(fx->ks, pid, &pi), KEYSTORE_OK);
    assert_int_equal(keystore_cpv_policy_info(fx->ks, vid, &vi), KEYSTORE_OK);
    /* Unknown IDs stay unknown; passphrases are not asked about. */
    assert_int_equal(keystore_delete_key(fx->ks, "KEY-99"), KEYSTORE_E_NOT_FOUND);
    char sid[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_upload_passphrase(fx->ks, "p", NULL, sid), KEYSTORE_OK);
    assert_int_equal(keystore_delete_passphrase(fx->ks, sid), KEYSTORE_OK);

    /* NULL removes the checker. */
    keystore_set_reference_check(fx->ks, NULL, &c);
    int calls = c.calls;
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, vid), KEYSTORE_OK);
    assert_int_equal(c.calls, calls);

    /* A checker answering 0 lets every delete through. */
    c.answer = 0;
    keystore_set_reference_check(fx->ks, checker_in_use, &c);
    assert_int_equal(keystore_delete_key(fx->ks, kid), KEYSTORE_OK);
    assert_string_equal(c.kind, "key");
    assert_int_equal(keystore_delete_cert(fx->ks, alone), KEYSTORE_OK);
    assert_string_equal(c.kind, "cert");
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    assert_string_equal(c.kind, "path");
    create_cpv(fx, &p, vid);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, vid), KEYSTORE_OK);
    assert_string_equal(c.kind, "cpvpolicy");
    assert_int_equal(c.calls, calls + 4);
    /* The keystore's own references still hold whatever the checker says. */
    create_cpv(fx, &p, vid);
    assert_int_equal(keystore_delete_cert(fx->ks, ca), KEYSTORE_E_REFERENCED);
    keystore_set_reference_check(fx->ks, NULL, NULL);
    X509_free(x);
    X509_free(y);
    EVP_PKEY_free(key);
    EVP_PKEY_free(key2);
}

/* Asserts that the generation went up (changed) or stayed (!changed) since *gen. */
static void expect_generation(struct fixture *fx, unsigned long *gen, int changed, const char *what)
{
    unsigned long now = keystore_generation(fx->ks);
    if (changed && now <= *gen)
        fail_msg("%s: generation %lu did not increase from %lu", what, now, *gen);
    if (!changed && now != *gen)
        fail_msg("%s: generation moved from %lu to %lu", what, *gen, now);
    *gen = now;
}

static void test_generation(void **state)
{
    struct fixture *fx = *state;
    unsigned long gen = keystore_generation(fx->ks);
    assert_true(gen > 0);
    assert_int_equal(keystore_generation(NULL), 0);
    EVP_PKEY *key = ec_key();
    X509 *x = self_signed(key, "gen", 1);
    char kid[KEYSTORE_ID_MAX], cid[KEYSTORE_ID_MAX], pid[KEYSTORE_ID_MAX], vid[KEYSTORE_ID_MAX];
    char sid[KEYSTORE_ID_MAX], rid[KEYSTORE_ID_MAX], out[KEYSTORE_ID_MAX];

    upload_key(fx, key, NULL, kid);
    expect_generation(fx, &gen, 1, "key upload");
    upload_cert(fx, x, cid, kid);
    expect_generation(fx, &gen, 1, "certificate upload");
    assert_int_equal(upload_cert_rc(fx, x, NULL, NULL, 0, out, out), KEYSTORE_E_DUPLICATE);
    expect_generation(fx, &gen, 0, "duplicate certificate");
    const char *ids[] = { cid };
    assert_int_equal(keystore_create_path(fx->ks, ids, 1, NULL, pid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "path");
    struct keystore_cpv_policy p = cpv_of(NULL, ids, 1);
    create_cpv(fx, &p, vid);
    expect_generation(fx, &gen, 1, "policy");
    p.n_anchors = 0;
    assert_int_equal(keystore_create_cpv_policy(fx->ks, &p, out), KEYSTORE_E_PARAMS);
    expect_generation(fx, &gen, 0, "refused policy");
    assert_int_equal(keystore_upload_passphrase(fx->ks, "p", NULL, sid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "passphrase");
    size_t len = 0;
    unsigned char *der = crl_der(key, x, &len);
    assert_int_equal(keystore_upload_crl(fx->ks, der, len, NULL, rid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "CRL");
    assert_int_equal(keystore_set_reference(fx->ks, "path", pid, 1), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "reference");

    /* Reads and refusals change nothing. */
    struct keystore_cpv_material m;
    assert_int_equal(keystore_cpv_material(fx->ks, vid, &m), KEYSTORE_OK);
    keystore_cpv_material_free(&m);
    assert_int_equal(n_certs(fx), 1);
    assert_int_equal(keystore_delete_cert(fx->ks, cid), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_E_REFERENCED);
    assert_int_equal(keystore_delete_key(fx->ks, "KEY-99"), KEYSTORE_E_NOT_FOUND);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, "CPVP-99"), KEYSTORE_E_NOT_FOUND);
    expect_generation(fx, &gen, 0, "reads and refusals");

    /* A change that does not reach the disk is no change. */
    remove_tree(fx->ks_dir);
    assert_int_equal(keystore_delete_cpv_policy(fx->ks, vid), KEYSTORE_E_STORE);
    assert_int_equal(keystore_upload_passphrase(fx->ks, "q", NULL, out), KEYSTORE_E_STORE);
    expect_generation(fx, &gen, 0, "failed save");
    assert_int_equal(mkdir(fx->ks_dir, 0700), 0);

    assert_int_equal(keystore_delete_cpv_policy(fx->ks, vid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "policy deletion");
    assert_int_equal(keystore_set_reference(fx->ks, "path", pid, -1), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "reference released");
    assert_int_equal(keystore_delete_path(fx->ks, pid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "path deletion");
    assert_int_equal(keystore_delete_cert(fx->ks, cid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "certificate deletion");
    assert_int_equal(keystore_delete_key(fx->ks, kid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "key deletion");
    assert_int_equal(keystore_delete_crl(fx->ks, rid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "CRL deletion");
    assert_int_equal(keystore_delete_passphrase(fx->ks, sid), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "passphrase deletion");
    assert_int_equal(keystore_create_ec_key(fx->ks, "P-256", NULL, kid, NULL), KEYSTORE_OK);
    expect_generation(fx, &gen, 1, "generation started");
    assert_int_equal(wait_generated(fx, kid), KEYSTORE_KEY_OK);
    expect_generation(fx, &gen, 1, "generation finished");
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* --- messages ------------------------------------------------------------ */

static void test_every_error_has_its_own_message(void **state)
{
    (void)state;
    const char *seen[32];
    size_t n = 0;
    for (int e = KEYSTORE_OK; e >= KEYSTORE_E_PARAMS; e--) {
        const char *msg = keystore_strerror(e);
        assert_non_null(msg);
        assert_string_not_equal(msg, "unknown error");
        for (size_t i = 0; i < n; i++)
            assert_string_not_equal(msg, seen[i]);
        seen[n++] = msg;
    }
    assert_string_equal(keystore_strerror(4242), "unknown error");
    assert_string_equal(keystore_key_status_name(KEYSTORE_KEY_OK), "ok");
    assert_string_equal(keystore_key_status_name(KEYSTORE_KEY_GENERATING), "generating");
    assert_string_equal(keystore_key_status_name(KEYSTORE_KEY_CORRUPT), "corrupt");
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

static const struct CMUnitTest regular_tests[] = {
    FIXTURE_TEST(test_fresh_store_is_empty_and_private),
    FIXTURE_TEST(test_open_argument_checks),
    FIXTURE_TEST(test_null_arguments),
    FIXTURE_TEST(test_generate_rsa_and_ec),
    FIXTURE_TEST(test_generation_parameters),
    FIXTURE_TEST(test_close_waits_for_generation),
    FIXTURE_TEST(test_delete_while_generating),
    FIXTURE_TEST(test_generating_key_in_file_becomes_corrupt),
    FIXTURE_TEST(test_concurrent_generations_do_not_block_readers),
    FIXTURE_TEST(test_upload_pkcs8),
    FIXTURE_TEST(test_upload_cert_binding),
    FIXTURE_TEST(test_cert_for_generating_key_refused),
    FIXTURE_TEST(test_add_device_cert),
    FIXTURE_TEST(test_paths),
    FIXTURE_TEST(test_pkcs12_with_chain),
    FIXTURE_TEST(test_passphrases),
    FIXTURE_TEST(test_crls),
    FIXTURE_TEST(test_references),
    FIXTURE_TEST(test_limits),
    FIXTURE_TEST(test_alias_rules),
    FIXTURE_TEST(test_persistence_and_ids_never_reused),
    FIXTURE_TEST(test_file_holds_no_secrets),
    FIXTURE_TEST(test_corrupt_file_refused),
    FIXTURE_TEST(test_other_device_key_makes_keys_corrupt),
    FIXTURE_TEST(test_failed_save_changes_nothing),
    FIXTURE_TEST(test_factory_identity_is_read_only),
    FIXTURE_TEST(test_factory_identity_faults),
    FIXTURE_TEST(test_cpv_policies),
    FIXTURE_TEST(test_cpv_policy_anchor_rules),
    FIXTURE_TEST(test_cpv_anchor_cannot_be_deleted),
    FIXTURE_TEST(test_cpv_persistence),
    FIXTURE_TEST(test_cpv_policy_file_checks),
    FIXTURE_TEST(test_cpv_factory_anchor),
    FIXTURE_TEST(test_cpv_material),
    FIXTURE_TEST(test_reference_check),
    FIXTURE_TEST(test_generation),
    cmocka_unit_test(test_every_error_has_its_own_message),
};

UNIT_MAIN("keystore", regular_tests)
