/* Unit tests for backups: passphrase rules, the documented format, a round
 * trip through stage and apply, refusal of wrong passphrases, altered,
 * truncated, foreign and unsupported backups, authentic backups whose
 * contents are unknown, duplicated, malformed or do not load (nothing staged),
 * the crash-safe completion of an interrupted apply, and removal of files the
 * backup did not hold. The state is made by the real modules; crafted but
 * authentic backups are sealed here with the documented format. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "opennvt/authn_store.h"
#include "opennvt/backup.h"
#include "opennvt/ipfilter.h"
#include "opennvt/keystore.h"
#include "opennvt/netcfg.h"
#include "opennvt/secretbox.h"
#include "opennvt/users.h"
#include "unit_helpers.h"

#define PASSPHRASE "Orchid-Lantern-31"
#define OTHER_PASSPHRASE "Orchid-Lantern-32"
#define USER_NAME "operator1"
#define USER_PW "Zebra7Quilt"

/* The documented format (top of backup.c). */
#define MAGIC "ONVTBAK1"
#define HEADER_LEN 40
#define SALT_LEN 16
#define NONCE_LEN 12
#define TAG_LEN 16

/* What a backup may hold, in the order backup_create writes it. */
static const char *const backup_files[] = {
    "device.key", "users.xml", "keystore.xml", "deviceca.xml", "authn.xml",
    "ipfilter.xml", "tlspolicy.xml", "netcfg.xml",
};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Made once for the group (scrypt is slow on purpose): a state dir with
 * content, its backup, and a key for sealing crafted backups. */
struct shared {
    struct temp_dir a;
    unsigned char *blob;
    size_t len;
    unsigned char salt[SALT_LEN];
    unsigned char key[32];
};
static struct shared *shared;

struct fixture {
    struct temp_dir b;   /* the state dir restored into */
};

struct entry {
    const char *name;
    const unsigned char *data;
    size_t len;
};

/* ---- plain file access ---- */

static int exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    return lstat(path_in(path, dir, name), &st) == 0;
}

/* Asserts dir/name holds exactly the bytes of src_dir/name (or that both lack it). */
static void assert_same_file(const char *src_dir, const char *dir, const char *name)
{
    char p1[PATH_MAX], p2[PATH_MAX];
    size_t l1 = 0, l2 = 0;
    unsigned char *d1 = read_file_bytes(path_in(p1, src_dir, name), &l1);
    unsigned char *d2 = read_file_bytes(path_in(p2, dir, name), &l2);
    if (!d1 && d2)
        fail_msg("%s: present after restore but not in the source", name);
    if (d1 && !d2)
        fail_msg("%s: missing after restore", name);
    if (d1 && (l1 != l2 || memcmp(d1, d2, l1) != 0))
        fail_msg("%s: %zu bytes after restore differ from the source's %zu", name, l2, l1);
    free(d1);
    free(d2);
}

/* Every file a backup may hold equals the source's (absent where it is absent). */
static void assert_state_equals(const char *src_dir, const char *dir)
{
    for (size_t i = 0; i < N_OF(backup_files); i++)
        assert_same_file(src_dir, dir, backup_files[i]);
}

/* A's files as entries (only those present), malloc'd data; n set. */
static struct entry *source_entries(size_t *n)
{
    struct entry *e = calloc(N_OF(backup_files), sizeof *e);
    assert_non_null(e);
    *n = 0;
    for (size_t i = 0; i < N_OF(backup_files); i++) {
        char path[PATH_MAX];
        size_t len;
        unsigned char *data = read_file_bytes(path_in(path, shared->a.path, backup_files[i]), &len);
        if (!data)
            continue;
        e[*n].name = backup_files[i];
        e[*n].data = data;
        e[*n].len = len;
        (*n)++;
    }
    return e;
}

static void free_entries(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)e[i].data);
    free(e);
}

/* ---- the documented encryption, for crafted but authentic backups ---- */

static int derive(const char *passphrase, const unsigned char salt[SALT_LEN], unsigned char key[32])
{
    return EVP_PBE_scrypt(passphrase, strlen(passphrase), salt, SALT_LEN, 1u << 15, 8, 1, 64u << 20, key, 32) == 1
               ? 0 : -1;
}

static int gcm(int encrypt, const unsigned char key[32], const unsigned char *header, const unsigned char *in,
               size_t len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0;
    int ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
             EVP_CipherInit_ex(ctx, NULL, NULL, key, header + 12 + SALT_LEN, encrypt) == 1 &&
             EVP_CipherUpdate(ctx, NULL, &outl, header, HEADER_LEN) == 1 &&
             (len == 0 || EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1);
    if (ok && !encrypt)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(ctx, out + outl, &outl) == 1;
    if (ok && encrypt)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The plaintext container of entries: u16 name length | name | u32 length | data. */
static unsigned char *container(const struct entry *e, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 2 + strlen(e[i].name) + 4 + e[i].len;
    unsigned char *buf = malloc(total ? total : 1), *p = buf;
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        *p++ = (unsigned char)(nl >> 8);
        *p++ = (unsigned char)nl;
        memcpy(p, e[i].name, nl);
        p += nl;
        *p++ = (unsigned char)(e[i].len >> 24);
        *p++ = (unsigned char)(e[i].len >> 16);
        *p++ = (unsigned char)(e[i].len >> 8);
        *p++ = (unsigned char)e[i].len;
        memcpy(p, e[i].data, e[i].len);
        p += e[i].len;
    }
    *len = total;
    return buf;
}

/* Seals a plaintext under PASSPHRASE (the shared salt and key, a fresh nonce). */
static unsigned char *seal_plain(const unsigned char *plain, size_t plen, size_t *len)
{
    unsigned char *blob = malloc(HEADER_LEN + plen + TAG_LEN);
    assert_non_null(blob);
    memcpy(blob, MAGIC, 8);
    blob[8] = 15;
    blob[9] = 8;
    blob[10] = 1;
    blob[11] = 0;
    memcpy(blob + 12, shared->salt, SALT_LEN);
    assert_int_equal(RAND_bytes(blob + 12 + SALT_LEN, NONCE_LEN), 1);
    assert_int_equal(gcm(1, shared->key, blob, plain, plen, blob + HEADER_LEN, blob + HEADER_LEN + plen), 0);
    *len = HEADER_LEN + plen + TAG_LEN;
    return blob;
}

static unsigned char *seal_entries(const struct entry *e, size_t n, size_t *len)
{
    size_t plen;
    unsigned char *plain = container(e, n, &plen);
    unsigned char *blob = seal_plain(plain, plen, len);
    free(plain);
    return blob;
}

/* ---- state made with the real modules ---- */

static void make_state(const char *dir, int with_ipfilter, int with_authn)
{
    struct secretbox *box = NULL;
    struct users *users = NULL;
    struct keystore *ks = NULL;
    assert_int_equal(secretbox_open(&box, dir), SECRETBOX_OK);
    assert_int_equal(users_open(&users, dir, box), USERS_OK);
    struct users_entry admin = { "admin", "Mango42Kite", USER_LEVEL_ADMINISTRATOR };
    struct users_entry op = { USER_NAME, USER_PW, USER_LEVEL_OPERATOR };
    assert_int_equal(users_create(users, &admin, 1, NULL), USERS_OK);
    assert_int_equal(users_create(users, &op, 1, NULL), USERS_OK);
    users_close(users);

    assert_int_equal(keystore_open(&ks, dir, NULL, box), KEYSTORE_OK);
    char id[KEYSTORE_ID_MAX];
    assert_int_equal(keystore_create_ec_key(ks, "P-256", "tls", id, NULL), KEYSTORE_OK);
    assert_int_equal(keystore_upload_passphrase(ks, PASSPHRASE, "backup", id), KEYSTORE_OK);
    keystore_close(ks);   /* waits for the key */
    secretbox_close(box);

    if (with_ipfilter) {
        struct ipfilter *f = NULL;
        struct ipfilter_rules *r = calloc(1, sizeof *r);
        assert_non_null(r);
        r->type = IPFILTER_DENY;
        r->n_v4 = 1;
        snprintf(r->v4[0].address, sizeof r->v4[0].address, "%s", "198.51.100.0");
        r->v4[0].prefix_len = 24;
        assert_int_equal(ipfilter_open(&f, dir), IPFILTER_OK);
        assert_int_equal(ipfilter_set(f, r, NULL, NULL), IPFILTER_OK);
        ipfilter_close(f);
        free(r);
    }
    if (with_authn) {
        struct authn_stored s = { .failure = { 1, 120, 7 }, .digest_algorithms = AUTHN_ALG_SHA256 };
        assert_int_equal(authn_store_save(dir, &s), 0);
    }
    struct netcfg *nc = NULL;
    const char *const defaults[] = { "onvif://www.onvif.org/location/country/somewhere" };
    const char *const scopes[] = { "onvif://www.onvif.org/name/backup-test" };
    assert_int_equal(netcfg_open(&nc, dir, NULL, 0, defaults, 1), NETCFG_OK);
    assert_int_equal(netcfg_set_scopes(nc, scopes, 1), NETCFG_OK);
    netcfg_close(nc);
}

static int group_setup(void **state)
{
    shared = calloc(1, sizeof *shared);
    if (!shared)
        return -1;
    if (temp_dir_make(&shared->a) != 0)
        return -1;
    make_state(shared->a.path, 1, 1);
    /* Not configuration: must not travel in a backup. */
    char path[PATH_MAX];
    if (write_text_file(path_in(path, shared->a.path, "device-uuid"), "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427\n"))
        return -1;
    if (backup_create(shared->a.path, PASSPHRASE, &shared->blob, &shared->len) != BACKUP_OK)
        return -1;
    if (RAND_bytes(shared->salt, SALT_LEN) != 1 || derive(PASSPHRASE, shared->salt, shared->key) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    if (shared) {
        remove_tree(shared->a.path);
        free(shared->blob);
        free(shared);
        shared = NULL;
    }
    return 0;
}

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (temp_dir_make(&fx->b) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    temp_fixture_free(&fx->b, fx);
    return 0;
}

/* Stages buf into dir expecting a refusal: nothing may be left behind. */
static int stage_refused(const char *dir, const unsigned char *buf, size_t len, const char *passphrase)
{
    int before = count_dir_entries(dir);
    const char *why = NULL;
    int rc = backup_stage_restore(dir, buf, len, passphrase, &why);
    if (rc != BACKUP_OK) {
        if (!why)
            fail_msg("refusal %d (%s) without a reason", rc, backup_strerror(rc));
        if (exists(dir, "restore.ready") || exists(dir, "restore.staging"))
            fail_msg("refusal %d (%s) left a staged restore", rc, why);
        if (count_dir_entries(dir) != before)
            fail_msg("refusal %d (%s) changed the directory", rc, why);
    }
    return rc;
}

static int stage_entries(const char *dir, const struct entry *e, size_t n)
{
    size_t len;
    unsigned char *blob = seal_entries(e, n, &len);
    int rc = stage_refused(dir, blob, len, PASSPHRASE);
    free(blob);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- tests ---- */

static void test_create_refuses_missing_or_short_passphrase(void **state)
{
    (void)state;
    unsigned char *out = (unsigned char *)"x";
    size_t len = 0;
    assert_int_equal(backup_create(shared->a.path, NULL, &out, &len), BACKUP_E_PASSPHRASE);
    assert_null(out);
    out = (unsigned char *)"x";
    assert_int_equal(backup_create(shared->a.path, "", &out, &len), BACKUP_E_PASSPHRASE);
    assert_null(out);
    out = (unsigned char *)"x";
    assert_int_equal(backup_create(shared->a.path, "1234567", &out, &len), BACKUP_E_PASSPHRASE);
    assert_null(out);
    /* The minimum itself is enough. */
    assert_int_equal(backup_create(shared->a.path, "12345678", &out, &len), BACKUP_OK);
    assert_non_null(out);
    assert_true(len > HEADER_LEN + TAG_LEN);
    free(out);
}

static void test_stage_refuses_missing_or_short_passphrase(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(stage_refused(fx->b.path, shared->blob, shared->len, NULL), BACKUP_E_PASSPHRASE);
    assert_int_equal(stage_refused(fx->b.path, shared->blob, shared->len, "1234567"), BACKUP_E_PASSPHRASE);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

/* The header is as documented and the plaintext holds A's configuration
 * files in order, not the device identity. */
static void test_backup_has_the_documented_format(void **state)
{
    (void)state;
    const unsigned char *b = shared->blob;
    assert_true(shared->len > HEADER_LEN + TAG_LEN);
    assert_memory_equal(b, MAGIC, 8);
    assert_int_equal(b[8], 15);
    assert_int_equal(b[9], 8);
    assert_int_equal(b[10], 1);
    assert_int_equal(b[11], 0);

    unsigned char key[32];
    assert_int_equal(derive(PASSPHRASE, b + 12, key), 0);
    size_t clen = shared->len - HEADER_LEN - TAG_LEN;
    unsigned char *plain = malloc(clen);
    unsigned char tag[TAG_LEN];
    memcpy(tag, b + shared->len - TAG_LEN, TAG_LEN);
    assert_non_null(plain);
    assert_int_equal(gcm(0, key, b, b + HEADER_LEN, clen, plain, tag), 0);

    size_t n = 0;
    struct entry *e = source_entries(&n);
    size_t elen;
    unsigned char *expected = container(e, n, &elen);
    assert_true(n >= 6);   /* device.key, users, keystore, authn, ipfilter, netcfg */
    assert_int_equal(clen, elen);
    assert_memory_equal(plain, expected, elen);
    free(expected);
    free_entries(e, n);
    free(plain);
}

static void test_backups_of_the_same_state_use_fresh_salt_and_nonce(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t len = 0;
    assert_int_equal(backup_create(shared->a.path, PASSPHRASE, &out, &len), BACKUP_OK);
    assert_int_equal(len, shared->len);
    assert_memory_not_equal(out + 12, shared->blob + 12, SALT_LEN);
    assert_memory_not_equal(out + 12 + SALT_LEN, shared->blob + 12 + SALT_LEN, NONCE_LEN);
    free(out);
}

static void test_round_trip_stages_then_applies_once(void **state)
{
    struct fixture *fx = *state;
    const char *why = "unset";
    assert_int_equal(backup_stage_restore(fx->b.path, shared->blob, shared->len, PASSPHRASE, &why), BACKUP_OK);
    /* Staged only: nothing live. */
    assert_int_equal(count_dir_entries(fx->b.path), 1);
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(path_in(path, fx->b.path, "restore.ready"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    assert_int_equal(backup_apply_staged(fx->b.path), 1);
    assert_state_equals(shared->a.path, fx->b.path);
    assert_false(exists(fx->b.path, "restore.ready"));
    assert_false(exists(fx->b.path, "restore.staging"));
    assert_false(exists(fx->b.path, "device-uuid"));
    size_t n = 0;
    struct entry *e = source_entries(&n);
    free_entries(e, n);
    assert_int_equal(count_dir_entries(fx->b.path), (int)n);
    assert_int_equal(stat(path_in(path, fx->b.path, "device.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* The restored state opens with the restored key. */
    struct secretbox *box = NULL;
    struct users *users = NULL;
    enum user_level level = USER_LEVEL_ANONYMOUS;
    assert_int_equal(secretbox_open(&box, fx->b.path), SECRETBOX_OK);
    assert_int_equal(users_open(&users, fx->b.path, box), USERS_OK);
    char pw[USERS_PASSWORD_MAX + 1];
    assert_int_equal(users_password(users, USER_NAME, pw, sizeof pw, &level), USERS_OK);
    assert_int_equal(level, USER_LEVEL_OPERATOR);
    assert_string_equal(pw, USER_PW);
    OPENSSL_cleanse(pw, sizeof pw);
    users_close(users);
    secretbox_close(box);

    assert_int_equal(backup_apply_staged(fx->b.path), 0);
    assert_state_equals(shared->a.path, fx->b.path);
}

static void test_apply_without_a_staged_restore_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(backup_apply_staged(fx->b.path), 0);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

static void test_wrong_passphrase_is_refused(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(stage_refused(fx->b.path, shared->blob, shared->len, OTHER_PASSPHRASE), BACKUP_E_AUTH);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
    assert_int_equal(backup_apply_staged(fx->b.path), 0);
}

static void flip_and_expect_refusal(const char *dir, size_t pos, unsigned char mask)
{
    unsigned char *copy = malloc(shared->len);
    assert_non_null(copy);
    memcpy(copy, shared->blob, shared->len);
    copy[pos] ^= mask;
    int rc = stage_refused(dir, copy, shared->len, PASSPHRASE);
    if (rc != BACKUP_E_AUTH && rc != BACKUP_E_FORMAT)
        fail_msg("byte %zu ^ 0x%02x of %zu: %d (%s), expected AUTH or FORMAT", pos, mask, shared->len, rc,
                 backup_strerror(rc));
    free(copy);
}

static void test_flipped_header_byte_is_refused(void **state)
{
    struct fixture *fx = *state;
    /* magic, each parameter and the reserved byte, salt ends, nonce ends */
    const size_t pos[] = { 0, 7, 8, 9, 10, 11, 12, 27, 28, 39 };
    for (size_t i = 0; i < N_OF(pos); i++)
        flip_and_expect_refusal(fx->b.path, pos[i], (unsigned char)(i % 2 ? 0x80 : 0x01));
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

static void test_flipped_ciphertext_byte_is_refused(void **state)
{
    struct fixture *fx = *state;
    size_t clen = shared->len - HEADER_LEN - TAG_LEN;
    const size_t pos[] = { HEADER_LEN, HEADER_LEN + clen / 2, HEADER_LEN + clen - 1 };
    for (size_t i = 0; i < N_OF(pos); i++)
        flip_and_expect_refusal(fx->b.path, pos[i], 0x04);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

static void test_flipped_tag_byte_is_refused(void **state)
{
    struct fixture *fx = *state;
    const size_t pos[] = { shared->len - TAG_LEN, shared->len - 1 };
    for (size_t i = 0; i < N_OF(pos); i++)
        flip_and_expect_refusal(fx->b.path, pos[i], 0x40);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

static void test_truncated_backup_is_refused(void **state)
{
    struct fixture *fx = *state;
    const size_t lens[] = { 0, 1, 8, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + TAG_LEN - 1, HEADER_LEN + TAG_LEN,
                            shared->len / 2, shared->len - TAG_LEN, shared->len - 1 };
    for (size_t i = 0; i < N_OF(lens); i++) {
        int rc = stage_refused(fx->b.path, shared->blob, lens[i], PASSPHRASE);
        if (rc == BACKUP_OK)
            fail_msg("truncated to %zu of %zu bytes: staged", lens[i], shared->len);
        if (lens[i] < HEADER_LEN + TAG_LEN && rc != BACKUP_E_FORMAT)
            fail_msg("truncated to %zu bytes: %d, expected FORMAT", lens[i], rc);
    }
    /* No buffer at all. */
    assert_int_equal(stage_refused(fx->b.path, NULL, 0, PASSPHRASE), BACKUP_E_FORMAT);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

static void test_wrong_magic_is_a_format_error(void **state)
{
    struct fixture *fx = *state;
    unsigned char *copy = malloc(shared->len);
    assert_non_null(copy);
    memcpy(copy, shared->blob, shared->len);
    memcpy(copy, "ONVTBAK2", 8);
    assert_int_equal(stage_refused(fx->b.path, copy, shared->len, PASSPHRASE), BACKUP_E_FORMAT);
    memcpy(copy, "PK\x03\x04xxxx", 8);
    assert_int_equal(stage_refused(fx->b.path, copy, shared->len, PASSPHRASE), BACKUP_E_FORMAT);
    free(copy);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

/* Parameters from the (untrusted, not yet authenticated) header are checked
 * before any key derivation. */
static void test_absurd_scrypt_parameters_are_refused_without_deriving(void **state)
{
    struct fixture *fx = *state;
    const unsigned char params[][4] = {
        { 30, 8, 1, 0 }, { 15, 9, 1, 0 }, { 15, 8, 0, 0 }, { 30, 9, 0, 0 }, { 63, 8, 1, 0 },
        { 255, 255, 255, 0 }, { 0, 0, 0, 0 }, { 15, 0, 1, 0 }, { 15, 8, 255, 0 }, { 15, 8, 1, 1 }, { 1, 8, 1, 0 }, { 13, 8, 1, 0 },
    };
    unsigned char *copy = malloc(shared->len);
    assert_non_null(copy);
    double start = now_s();
    for (size_t i = 0; i < N_OF(params); i++) {
        memcpy(copy, shared->blob, shared->len);
        memcpy(copy + 8, params[i], 4);
        int rc = stage_refused(fx->b.path, copy, shared->len, PASSPHRASE);
        if (rc != BACKUP_E_FORMAT)
            fail_msg("log2 N %u, r %u, p %u, reserved %u: %d (%s), expected FORMAT", params[i][0], params[i][1],
                     params[i][2], params[i][3], rc, backup_strerror(rc));
    }
    /* Ten N = 2^15 derivations would take about a second; none should run. */
    double elapsed = now_s() - start;
    if (elapsed > 0.5)
        fail_msg("refusing %zu headers took %.2f s: a key was derived", N_OF(params), elapsed);
    free(copy);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
}

/* A crafted backup of A's files is staged: the crafting below is faithful,
 * so the refusals that follow are about the content. */
static void test_crafted_backup_of_the_same_files_is_accepted(void **state)
{
    struct fixture *fx = *state;
    size_t n = 0;
    struct entry *e = source_entries(&n);
    assert_int_equal(stage_entries(fx->b.path, e, n), BACKUP_OK);
    assert_int_equal(backup_apply_staged(fx->b.path), 1);
    assert_state_equals(shared->a.path, fx->b.path);
    free_entries(e, n);
}

static void test_unknown_file_in_backup_is_refused(void **state)
{
    struct fixture *fx = *state;
    size_t n = 0;
    struct entry *e = source_entries(&n);
    struct entry *more = calloc(n + 1, sizeof *more);
    assert_non_null(more);
    memcpy(more, e, n * sizeof *e);
    const char *const names[] = { "device-uuid", "../users.xml" };
    for (size_t i = 0; i < N_OF(names); i++) {
        more[n] = (struct entry){ names[i], (const unsigned char *)"x", 1 };
        int rc = stage_entries(fx->b.path, more, n + 1);
        if (rc != BACKUP_E_CONTENT)
            fail_msg("backup with \"%s\": %d (%s), expected CONTENT", names[i], rc, backup_strerror(rc));
    }
    assert_int_equal(count_dir_entries(fx->b.path), 0);
    free(more);
    free_entries(e, n);
}

static void test_file_listed_twice_is_refused(void **state)
{
    struct fixture *fx = *state;
    size_t n = 0;
    struct entry *e = source_entries(&n);
    struct entry *more = calloc(n + 1, sizeof *more);
    assert_non_null(more);
    memcpy(more, e, n * sizeof *e);
    more[n] = e[1];   /* users.xml again */
    assert_string_equal(more[n].name, "users.xml");
    assert_int_equal(stage_entries(fx->b.path, more, n + 1), BACKUP_E_CONTENT);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
    free(more);
    free_entries(e, n);
}

static void test_malformed_container_is_a_format_error(void **state)
{
    struct fixture *fx = *state;
    size_t n = 0, plen, len;
    struct entry *e = source_entries(&n);
    unsigned char *plain = container(e, n, &plen);
    /* The last entry claims one byte more than there is. */
    unsigned char *blob = seal_plain(plain, plen - 1, &len);
    assert_int_equal(stage_refused(fx->b.path, blob, len, PASSPHRASE), BACKUP_E_FORMAT);
    free(blob);
    /* A dangling byte after the last entry. */
    unsigned char *longer = realloc(plain, plen + 1);
    assert_non_null(longer);
    plain = longer;
    plain[plen] = 0;
    blob = seal_plain(plain, plen + 1, &len);
    assert_int_equal(stage_refused(fx->b.path, blob, len, PASSPHRASE), BACKUP_E_FORMAT);
    free(blob);
    free(plain);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
    free_entries(e, n);
}

/* Each file, replaced by one its module cannot load, makes the whole backup
 * refused in the trial open, with nothing staged. */
static void test_file_that_does_not_load_is_refused(void **state)
{
    struct fixture *fx = *state;
    static const char garbage[] = "<?xml version=\"1.0\"?>\n<notclosed><x>";
    size_t n = 0;
    struct entry *e = source_entries(&n);
    struct entry *alt = calloc(N_OF(backup_files), sizeof *alt);
    assert_non_null(alt);
    for (size_t victim = 0; victim < N_OF(backup_files); victim++) {
        const char *name = backup_files[victim];
        size_t m = 0;
        int placed = 0;
        for (size_t j = 0; j < N_OF(backup_files); j++) {
            size_t k;
            for (k = 0; k < n && strcmp(e[k].name, backup_files[j]); k++)
                ;
            if (j == victim) {
                alt[m++] = (struct entry){ name, (const unsigned char *)garbage, sizeof garbage - 1 };
                placed = 1;
            } else if (k < n) {
                alt[m++] = e[k];
            }
        }
        assert_true(placed);
        int rc = stage_entries(fx->b.path, alt, m);
        if (rc != BACKUP_E_CONTENT)
            fail_msg("backup with a malformed %s: %d (%s), expected CONTENT", name, rc, backup_strerror(rc));
    }
    assert_int_equal(count_dir_entries(fx->b.path), 0);
    free(alt);
    free_entries(e, n);
}

static void test_backup_without_device_key_is_refused(void **state)
{
    struct fixture *fx = *state;
    size_t n = 0;
    struct entry *e = source_entries(&n);
    assert_string_equal(e[0].name, "device.key");
    assert_int_equal(stage_entries(fx->b.path, e + 1, n - 1), BACKUP_E_CONTENT);
    /* Nor an empty one. */
    assert_int_equal(stage_entries(fx->b.path, e, 0), BACKUP_E_CONTENT);
    assert_int_equal(count_dir_entries(fx->b.path), 0);
    free_entries(e, n);
}

static void rename_staged(const char *dir, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX], ready[PATH_MAX];
    path_in(ready, dir, "restore.ready");
    if (rename(path_in(from, ready, name), path_in(to, dir, name)) != 0)
        fail_msg("moving staged %s: %s", name, strerror(errno));
}

/* A device with its own state: an apply interrupted after moving one file
 * leaves a mix of old and new, which the next apply completes. */
static void test_interrupted_apply_is_completed(void **state)
{
    struct fixture *fx = *state;
    make_state(fx->b.path, 0, 0);
    const char *why = NULL;
    assert_int_equal(backup_stage_restore(fx->b.path, shared->blob, shared->len, PASSPHRASE, &why), BACKUP_OK);
    rename_staged(fx->b.path, "users.xml");
    assert_same_file(shared->a.path, fx->b.path, "users.xml");
    assert_int_equal(backup_apply_staged(fx->b.path), 1);
    assert_state_equals(shared->a.path, fx->b.path);
    assert_false(exists(fx->b.path, "restore.ready"));
    assert_int_equal(backup_apply_staged(fx->b.path), 0);
}

/* Interrupted after every file moved, before the staging was removed. */
static void test_apply_interrupted_after_all_moves_is_completed(void **state)
{
    struct fixture *fx = *state;
    make_state(fx->b.path, 0, 0);
    const char *why = NULL;
    assert_int_equal(backup_stage_restore(fx->b.path, shared->blob, shared->len, PASSPHRASE, &why), BACKUP_OK);
    for (size_t i = 0; i < N_OF(backup_files); i++)
        if (exists(shared->a.path, backup_files[i]))
            rename_staged(fx->b.path, backup_files[i]);
    assert_int_equal(backup_apply_staged(fx->b.path), 1);
    assert_state_equals(shared->a.path, fx->b.path);
    assert_false(exists(fx->b.path, "restore.ready"));
}

/* Files the backup did not hold go on apply (their defaults were the
 * backed-up state); staging alone leaves them. */
static void test_apply_removes_files_the_backup_did_not_hold(void **state)
{
    struct fixture *fx = *state;
    /* The source lives inside B, so the teardown removes it even after a
     * failure; nothing here touches subdirectories. */
    struct temp_dir c;
    path_in(c.path, fx->b.path, "source");
    assert_int_equal(mkdir(c.path, 0700), 0);
    make_state(c.path, 0, 0);
    assert_false(exists(c.path, "ipfilter.xml"));
    assert_false(exists(c.path, "authn.xml"));
    unsigned char *blob = NULL;
    size_t len = 0;
    assert_int_equal(backup_create(c.path, PASSPHRASE, &blob, &len), BACKUP_OK);

    make_state(fx->b.path, 1, 1);
    char path[PATH_MAX];
    size_t before_len, after_len;
    unsigned char *before = read_file_bytes(path_in(path, fx->b.path, "ipfilter.xml"), &before_len);
    assert_non_null(before);
    const char *why = NULL;
    assert_int_equal(backup_stage_restore(fx->b.path, blob, len, PASSPHRASE, &why), BACKUP_OK);
    unsigned char *after = read_file_bytes(path, &after_len);
    assert_non_null(after);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    assert_true(exists(fx->b.path, "authn.xml"));

    assert_int_equal(backup_apply_staged(fx->b.path), 1);
    assert_state_equals(c.path, fx->b.path);
    assert_false(exists(fx->b.path, "ipfilter.xml"));
    assert_false(exists(fx->b.path, "authn.xml"));

    struct ipfilter *f = NULL;
    struct ipfilter_rules *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(ipfilter_open(&f, fx->b.path), IPFILTER_OK);
    assert_int_equal(ipfilter_get(f, r), IPFILTER_OK);
    assert_int_equal(r->type, IPFILTER_DENY);
    assert_int_equal(r->n_v4 + r->n_v6, 0);
    ipfilter_close(f);
    free(r);
    free(before);
    free(after);
    free(blob);
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_create_refuses_missing_or_short_passphrase),
    FIXTURE_TEST(test_stage_refuses_missing_or_short_passphrase),
    cmocka_unit_test(test_backup_has_the_documented_format),
    cmocka_unit_test(test_backups_of_the_same_state_use_fresh_salt_and_nonce),
    FIXTURE_TEST(test_round_trip_stages_then_applies_once),
    FIXTURE_TEST(test_apply_without_a_staged_restore_changes_nothing),
    FIXTURE_TEST(test_wrong_passphrase_is_refused),
    FIXTURE_TEST(test_flipped_header_byte_is_refused),
    FIXTURE_TEST(test_flipped_ciphertext_byte_is_refused),
    FIXTURE_TEST(test_flipped_tag_byte_is_refused),
    FIXTURE_TEST(test_truncated_backup_is_refused),
    FIXTURE_TEST(test_wrong_magic_is_a_format_error),
    FIXTURE_TEST(test_absurd_scrypt_parameters_are_refused_without_deriving),
    FIXTURE_TEST(test_crafted_backup_of_the_same_files_is_accepted),
    FIXTURE_TEST(test_unknown_file_in_backup_is_refused),
    FIXTURE_TEST(test_file_listed_twice_is_refused),
    FIXTURE_TEST(test_malformed_container_is_a_format_error),
    FIXTURE_TEST(test_file_that_does_not_load_is_refused),
    FIXTURE_TEST(test_backup_without_device_key_is_refused),
    FIXTURE_TEST(test_interrupted_apply_is_completed),
    FIXTURE_TEST(test_apply_interrupted_after_all_moves_is_completed),
    FIXTURE_TEST(test_apply_removes_files_the_backup_did_not_hold),
};

int main(void)
{
    return cmocka_run_group_tests_name("backup", tests, group_setup, group_teardown);
}
