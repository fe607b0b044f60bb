/* Unit tests for secretbox: device key creation (0600, 32 bytes), reuse
 * across reopen and refusal of unsafe or malformed key files; seal/unseal
 * round trips, the text form, and refusal of a wrong context, another key or
 * any altered text; per-purpose MACs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "opennvt/secretbox.h"
#include "unit_helpers.h"

struct fixture {
    struct temp_dir dir;
    struct secretbox *box;
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    if (secretbox_open(&fx->box, fx->dir.path) != SECRETBOX_OK) {
        temp_fixture_free(&fx->dir, fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    secretbox_close(fx->box);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

/* Writes len bytes to path with the given mode, bypassing the module. */
static void write_key_file(const char *path, size_t len, mode_t mode)
{
    unsigned char bytes[64];
    memset(bytes, 0x5a, sizeof bytes);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
}

static void reopen(struct fixture *fx)
{
    secretbox_close(fx->box);
    fx->box = NULL;
    assert_int_equal(secretbox_open(&fx->box, fx->dir.path), SECRETBOX_OK);
}

static char *seal_text(const struct secretbox *box, const char *text, const char *context)
{
    char *sealed = NULL;
    assert_int_equal(secretbox_seal(box, text, strlen(text), context, &sealed), SECRETBOX_OK);
    assert_non_null(sealed);
    return sealed;
}

static void assert_unseals_to(const struct secretbox *box, const char *sealed, const char *context,
                              const void *expected, size_t expected_len)
{
    unsigned char *plain = NULL;
    size_t len = 0;
    assert_int_equal(secretbox_unseal(box, sealed, context, &plain, &len), SECRETBOX_OK);
    assert_int_equal(len, expected_len);
    assert_memory_equal(plain, expected, expected_len);
    assert_int_equal(plain[len], '\0');
    secretbox_free(plain, len);
}

static void assert_unseal_fails(const struct secretbox *box, const char *sealed, const char *context, int expected)
{
    unsigned char *plain = (unsigned char *)"sentinel";
    size_t len = 99;
    int rc = secretbox_unseal(box, sealed, context, &plain, &len);
    if (rc != expected)
        fail_msg("unsealing '%s': got %d, expected %d", sealed ? sealed : "(null)", rc, expected);
    assert_null(plain);
    assert_int_equal(len, 0);
}

/* --- key file ------------------------------------------------------------ */

static void test_key_file_is_created_0600_with_32_bytes(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(path_in(path, fx->dir.path, "device.key"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 32);
    /* Only the key: no temporary file left behind. */
    assert_int_equal(count_dir_entries(fx->dir.path), 1);
}

static void test_key_persists_across_reopen(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    path_in(path, fx->dir.path, "device.key");
    unsigned char before[32], after[32];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(before, 1, 32, f), 32);
    fclose(f);

    char *sealed = seal_text(fx->box, "kept secret", "ctx");
    unsigned char mac_before[32], mac_after[32];
    assert_int_equal(secretbox_mac(fx->box, "test", "data", 4, mac_before), SECRETBOX_OK);
    reopen(fx);
    assert_unseals_to(fx->box, sealed, "ctx", "kept secret", 11);
    assert_int_equal(secretbox_mac(fx->box, "test", "data", 4, mac_after), SECRETBOX_OK);
    assert_memory_equal(mac_before, mac_after, 32);
    free(sealed);

    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(after, 1, 32, f), 32);
    fclose(f);
    assert_memory_equal(before, after, 32);
}

static void test_two_devices_have_different_keys(void **state)
{
    struct fixture *fx = *state;
    char other[PATH_MAX];
    path_in(other, fx->dir.path, "other");
    assert_int_equal(mkdir(other, 0700), 0);
    struct secretbox *box2 = NULL;
    assert_int_equal(secretbox_open(&box2, other), SECRETBOX_OK);

    char *sealed = seal_text(fx->box, "secret", "ctx");
    assert_unseal_fails(box2, sealed, "ctx", SECRETBOX_E_CORRUPT);
    free(sealed);

    unsigned char mac1[32], mac2[32];
    assert_int_equal(secretbox_mac(fx->box, "p", "x", 1, mac1), SECRETBOX_OK);
    assert_int_equal(secretbox_mac(box2, "p", "x", 1, mac2), SECRETBOX_OK);
    assert_memory_not_equal(mac1, mac2, 32);
    secretbox_close(box2);
}

static void expect_keyfile_refused(const char *dir)
{
    struct secretbox *box = (struct secretbox *)dir; /* any non-NULL value */
    assert_int_equal(secretbox_open(&box, dir), SECRETBOX_E_KEYFILE);
    assert_null(box);
}

static void test_refuses_key_readable_by_others(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "device.key");
    const mode_t modes[] = { 0644, 0640, 0604, 0660, 0602, 0610 };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        write_key_file(path, 32, modes[i]);
        expect_keyfile_refused(t->path);
    }
    /* Refused, not repaired or replaced. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0610);

    assert_int_equal(chmod(path, 0600), 0);
    struct secretbox *box = NULL;
    assert_int_equal(secretbox_open(&box, t->path), SECRETBOX_OK);
    secretbox_close(box);
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(secretbox_open(&box, t->path), SECRETBOX_OK);
    secretbox_close(box);
}

static void test_refuses_key_of_wrong_size(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "device.key");
    const size_t sizes[] = { 0, 1, 31, 33, 64 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        write_key_file(path, sizes[i], 0600);
        expect_keyfile_refused(t->path);
    }
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 64);
}

static void test_refuses_key_that_is_not_a_regular_file(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX], target[PATH_MAX];
    path_in(path, t->path, "device.key");
    assert_int_equal(mkdir(path, 0700), 0);
    expect_keyfile_refused(t->path);
    assert_int_equal(rmdir(path), 0);

    /* A symlink is not followed, even to a well-formed private key. */
    write_key_file(path_in(target, t->path, "elsewhere.key"), 32, 0600);
    assert_int_equal(symlink(target, path), 0);
    expect_keyfile_refused(t->path);
}

static void test_missing_state_dir_is_a_store_error(void **state)
{
    struct temp_dir *t = *state;
    char dir[PATH_MAX];
    struct secretbox *box = (struct secretbox *)t;
    assert_int_equal(secretbox_open(&box, path_in(dir, t->path, "missing")), SECRETBOX_E_STORE);
    assert_null(box);
}

/* --- seal / unseal ------------------------------------------------------- */

static void test_seal_unseal_round_trip(void **state)
{
    struct fixture *fx = *state;
    char *sealed = seal_text(fx->box, "Secr3t-Passw0rd", "user-password:alice");
    assert_int_equal(strncmp(sealed, "v1:", 3), 0);
    /* nonce 12 + 15 bytes + tag 16 = 43 bytes -> 60 base64 characters */
    assert_int_equal(strlen(sealed), 3 + 60);
    assert_int_equal(strspn(sealed + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
                     strlen(sealed) - 3);
    assert_null(strstr(sealed, "Secr3t"));
    assert_unseals_to(fx->box, sealed, "user-password:alice", "Secr3t-Passw0rd", 15);
    free(sealed);
}

static void test_round_trip_of_every_padding_and_binary_data(void **state)
{
    struct fixture *fx = *state;
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7);
    data[5] = 0; /* embedded NUL */
    /* 0..5 bytes cover all three base64 padding cases twice. */
    for (size_t len = 0; len <= sizeof data; len += (len < 6 ? 1 : 97)) {
        char *sealed = NULL;
        assert_int_equal(secretbox_seal(fx->box, data, len, "bin", &sealed), SECRETBOX_OK);
        assert_int_equal(strlen(sealed), 3 + 4 * ((12 + len + 16 + 2) / 3));
        assert_unseals_to(fx->box, sealed, "bin", data, len);
        free(sealed);
    }
    /* Empty plaintext may come with a NULL pointer. */
    char *sealed = NULL;
    assert_int_equal(secretbox_seal(fx->box, NULL, 0, "", &sealed), SECRETBOX_OK);
    assert_unseals_to(fx->box, sealed, "", "", 0);
    free(sealed);
}

static void test_each_seal_uses_a_fresh_nonce(void **state)
{
    struct fixture *fx = *state;
    char *a = seal_text(fx->box, "same", "ctx");
    char *b = seal_text(fx->box, "same", "ctx");
    assert_string_not_equal(a, b);
    assert_unseals_to(fx->box, a, "ctx", "same", 4);
    assert_unseals_to(fx->box, b, "ctx", "same", 4);
    free(a);
    free(b);
}

static void test_wrong_context_fails(void **state)
{
    struct fixture *fx = *state;
    char *sealed = seal_text(fx->box, "secret", "user-password:alice");
    assert_unseal_fails(fx->box, sealed, "user-password:bob", SECRETBOX_E_CORRUPT);
    assert_unseal_fails(fx->box, sealed, "user-password:alic", SECRETBOX_E_CORRUPT);
    assert_unseal_fails(fx->box, sealed, "user-password:alicee", SECRETBOX_E_CORRUPT);
    assert_unseal_fails(fx->box, sealed, "", SECRETBOX_E_CORRUPT);
    assert_unseals_to(fx->box, sealed, "user-password:alice", "secret", 6);
    free(sealed);
}

static void test_any_altered_character_fails(void **state)
{
    struct fixture *fx = *state;
    char *sealed = seal_text(fx->box, "secret!", "ctx");
    size_t len = strlen(sealed);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /* Every position of the base64 body: nonce, ciphertext and tag alike.
     * Flipping bit 4 of the 6-bit value changes a decoded bit even in the
     * last character before padding, whose low bits may be unused. */
    for (size_t i = 3; i < len && sealed[i] != '='; i++) {
        char saved = sealed[i];
        size_t value = (size_t)(strchr(alphabet, saved) - alphabet);
        sealed[i] = alphabet[value ^ 16];
        unsigned char *plain = NULL;
        size_t plain_len = 0;
        int rc = secretbox_unseal(fx->box, sealed, "ctx", &plain, &plain_len);
        if (rc == SECRETBOX_OK) {
            secretbox_free(plain, plain_len);
            fail_msg("altered character %zu accepted", i);
        }
        assert_int_equal(rc, SECRETBOX_E_CORRUPT);
        sealed[i] = saved;
    }
    assert_unseals_to(fx->box, sealed, "ctx", "secret!", 7);
    free(sealed);
}

static void test_malformed_text_fails(void **state)
{
    struct fixture *fx = *state;
    char *sealed = seal_text(fx->box, "secret", "ctx");
    size_t len = strlen(sealed);
    char buf[256];
    assert_true(len < sizeof buf - 8);

    const char *fixed[] = {
        "", "v1:", "v1", "v2:AAAA", "v1:AAAA", "v1:====", "v1:A===", "v1:AA=A",
        "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 39 characters */
        "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", /* 28 bytes: empty plaintext, wrong tag */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        assert_unseal_fails(fx->box, fixed[i], "ctx", SECRETBOX_E_CORRUPT);

    /* Other version prefix */
    snprintf(buf, sizeof buf, "v2:%s", sealed + 3);
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    /* Truncated by one block and by one character */
    snprintf(buf, sizeof buf, "%.*s", (int)(len - 4), sealed);
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    snprintf(buf, sizeof buf, "%.*s", (int)(len - 1), sealed);
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    /* Extended */
    snprintf(buf, sizeof buf, "%sAAAA", sealed);
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    /* Whitespace and characters outside the alphabet */
    snprintf(buf, sizeof buf, "%s\n", sealed);
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    snprintf(buf, sizeof buf, "v1: %s", sealed + 4);
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    snprintf(buf, sizeof buf, "%s", sealed);
    buf[10] = '*';
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    snprintf(buf, sizeof buf, "%s", sealed);
    buf[10] = '=';
    assert_unseal_fails(fx->box, buf, "ctx", SECRETBOX_E_CORRUPT);
    free(sealed);
}

static void test_null_arguments_are_invalid(void **state)
{
    struct fixture *fx = *state;
    char *sealed = (char *)"x";
    assert_int_equal(secretbox_seal(NULL, "a", 1, "c", &sealed), SECRETBOX_E_INVALID);
    assert_null(sealed);
    assert_int_equal(secretbox_seal(fx->box, "a", 1, NULL, &sealed), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_seal(fx->box, NULL, 1, "c", &sealed), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_seal(fx->box, "a", 1, "c", NULL), SECRETBOX_E_INVALID);

    unsigned char *plain;
    size_t len;
    sealed = seal_text(fx->box, "a", "c");
    assert_int_equal(secretbox_unseal(NULL, sealed, "c", &plain, &len), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_unseal(fx->box, NULL, "c", &plain, &len), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_unseal(fx->box, sealed, NULL, &plain, &len), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_unseal(fx->box, sealed, "c", NULL, &len), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_unseal(fx->box, sealed, "c", &plain, NULL), SECRETBOX_E_INVALID);
    free(sealed);

    unsigned char mac[32];
    assert_int_equal(secretbox_mac(NULL, "p", "d", 1, mac), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_mac(fx->box, NULL, "d", 1, mac), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_mac(fx->box, "p", NULL, 1, mac), SECRETBOX_E_INVALID);
    assert_int_equal(secretbox_open(NULL, fx->dir.path), SECRETBOX_E_INVALID);
    struct secretbox *box = (struct secretbox *)fx;
    assert_int_equal(secretbox_open(&box, NULL), SECRETBOX_E_INVALID);
    assert_null(box);

    secretbox_close(NULL);
    secretbox_free(NULL, 10);
}

/* --- mac ----------------------------------------------------------------- */

static void test_mac_is_deterministic_and_keyed_per_purpose(void **state)
{
    struct fixture *fx = *state;
    unsigned char a[32], b[32], c[32], d[32], e[32];
    assert_int_equal(secretbox_mac(fx->box, "password-history", "alice\0pw", 8, a), SECRETBOX_OK);
    assert_int_equal(secretbox_mac(fx->box, "password-history", "alice\0pw", 8, b), SECRETBOX_OK);
    assert_memory_equal(a, b, 32);
    assert_int_equal(secretbox_mac(fx->box, "digest-nonce", "alice\0pw", 8, c), SECRETBOX_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(secretbox_mac(fx->box, "password-history", "alice\0pX", 8, d), SECRETBOX_OK);
    assert_memory_not_equal(a, d, 32);
    /* Empty data is fine and distinct. */
    assert_int_equal(secretbox_mac(fx->box, "password-history", NULL, 0, e), SECRETBOX_OK);
    assert_memory_not_equal(a, e, 32);

    char long_purpose[300];
    memset(long_purpose, 'p', sizeof long_purpose - 1);
    long_purpose[sizeof long_purpose - 1] = '\0';
    assert_int_equal(secretbox_mac(fx->box, long_purpose, "x", 1, e), SECRETBOX_E_INVALID);
}

static void test_every_error_has_its_own_message(void **state)
{
    (void)state;
    const int codes[] = { SECRETBOX_OK, SECRETBOX_E_KEYFILE, SECRETBOX_E_STORE, SECRETBOX_E_CORRUPT,
                          SECRETBOX_E_CRYPTO, SECRETBOX_E_NOMEM, SECRETBOX_E_INVALID };
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *msg = secretbox_strerror(codes[i]);
        assert_non_null(msg);
        assert_string_not_equal(msg, "unknown error");
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(msg, secretbox_strerror(codes[k]));
    }
    assert_string_equal(secretbox_strerror(12345), "unknown error");
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
#define DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, temp_dir_setup, temp_dir_teardown)

static const struct CMUnitTest regular_tests[] = {
    FIXTURE_TEST(test_key_file_is_created_0600_with_32_bytes),
    FIXTURE_TEST(test_key_persists_across_reopen),
    FIXTURE_TEST(test_two_devices_have_different_keys),
    DIR_TEST(test_refuses_key_readable_by_others),
    DIR_TEST(test_refuses_key_of_wrong_size),
    DIR_TEST(test_refuses_key_that_is_not_a_regular_file),
    DIR_TEST(test_missing_state_dir_is_a_store_error),
    FIXTURE_TEST(test_seal_unseal_round_trip),
    FIXTURE_TEST(test_round_trip_of_every_padding_and_binary_data),
    FIXTURE_TEST(test_each_seal_uses_a_fresh_nonce),
    FIXTURE_TEST(test_wrong_context_fails),
    FIXTURE_TEST(test_any_altered_character_fails),
    FIXTURE_TEST(test_malformed_text_fails),
    FIXTURE_TEST(test_null_arguments_are_invalid),
    FIXTURE_TEST(test_mac_is_deterministic_and_keyed_per_purpose),
    cmocka_unit_test(test_every_error_has_its_own_message),
};

UNIT_MAIN("secretbox", regular_tests)
