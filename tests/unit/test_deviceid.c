/* Unit tests for deviceid: the device UUID is a random version 4 UUID created
 * once, persisted 0600 and returned unchanged afterwards; a corrupt file is an
 * error and is never overwritten; the canonical UUID syntax check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "opennvt/deviceid.h"
#include "unit_helpers.h"

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c - 'a' + 10;
}

static void assert_version4_variant_rfc4122(const char *uuid)
{
    assert_int_equal(strlen(uuid), DEVICEID_UUID_LEN);
    assert_true(deviceid_is_valid_uuid(uuid));
    /* xxxxxxxx-xxxx-Vxxx-Nxxx-xxxxxxxxxxxx */
    assert_int_equal(uuid[14], '4');
    assert_int_equal(hex_value(uuid[19]) & 0xc, 0x8);
}

static void test_first_call_creates_version4_uuid_file_0600(void **state)
{
    struct temp_dir *t = *state;
    char uuid[DEVICEID_UUID_LEN + 1];
    memset(uuid, 'Z', sizeof uuid);
    assert_int_equal(deviceid_load_or_create(t->path, uuid), 0);
    assert_version4_variant_rfc4122(uuid);

    char path[PATH_MAX];
    path_in(path, t->path, "device-uuid");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);

    char *text = read_text_file(path);
    assert_non_null(text);
    assert_int_equal(strncmp(text, uuid, DEVICEID_UUID_LEN), 0);
    free(text);
    assert_int_equal(count_dir_entries(t->path), 1);
}

static void test_every_generated_uuid_has_version4_and_rfc4122_variant(void **state)
{
    struct temp_dir *t = *state;
    /* One sample could pass by chance (1 in 64); many cannot. */
    for (int i = 0; i < 64; i++) {
        char dir[PATH_MAX];
        assert_true(snprintf(dir, sizeof dir, "%s/d%d", t->path, i) < (int)sizeof dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        char uuid[DEVICEID_UUID_LEN + 1];
        assert_int_equal(deviceid_load_or_create(dir, uuid), 0);
        assert_version4_variant_rfc4122(uuid);
    }
}

static void test_second_call_returns_the_same_uuid(void **state)
{
    struct temp_dir *t = *state;
    char first[DEVICEID_UUID_LEN + 1], second[DEVICEID_UUID_LEN + 1];
    assert_int_equal(deviceid_load_or_create(t->path, first), 0);
    memset(second, 0, sizeof second);
    assert_int_equal(deviceid_load_or_create(t->path, second), 0);
    assert_string_equal(first, second);
}

static void test_existing_uuid_file_is_used_as_is(void **state)
{
    struct temp_dir *t = *state;
    const char *stored = "0f8fad5b-d9cb-469f-a165-70867728950e";
    char path[PATH_MAX];
    char line[64];
    snprintf(line, sizeof line, "%s\n", stored);
    assert_int_equal(write_text_file(path_in(path, t->path, "device-uuid"), line), 0);

    char uuid[DEVICEID_UUID_LEN + 1];
    assert_int_equal(deviceid_load_or_create(t->path, uuid), 0);
    assert_string_equal(uuid, stored);
}

static void test_different_state_dirs_get_different_uuids(void **state)
{
    struct temp_dir *t = *state;
    char dir_a[PATH_MAX], dir_b[PATH_MAX];
    path_in(dir_a, t->path, "a");
    path_in(dir_b, t->path, "b");
    assert_int_equal(mkdir(dir_a, 0700), 0);
    assert_int_equal(mkdir(dir_b, 0700), 0);
    char uuid_a[DEVICEID_UUID_LEN + 1], uuid_b[DEVICEID_UUID_LEN + 1];
    assert_int_equal(deviceid_load_or_create(dir_a, uuid_a), 0);
    assert_int_equal(deviceid_load_or_create(dir_b, uuid_b), 0);
    assert_string_not_equal(uuid_a, uuid_b);
}

static void test_corrupt_file_is_an_error_and_is_kept(void **state)
{
    struct temp_dir *t = *state;
    const char *corrupt[] = {
        "not-a-uuid\n",
        "",
        "0F8FAD5B-D9CB-469F-A165-70867728950E\n", /* uppercase is not canonical */
        "0f8fad5b-d9cb-469f-a165-70867728950\n",  /* one digit short */
        "0f8fad5b-d9cb-469f-a165-70867728950e0\n",
    };
    char path[PATH_MAX];
    path_in(path, t->path, "device-uuid");
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        assert_int_equal(write_text_file(path, corrupt[i]), 0);
        char uuid[DEVICEID_UUID_LEN + 1];
        int rc = deviceid_load_or_create(t->path, uuid);
        if (rc != -EINVAL)
            fail_msg("content '%s': got %d, expected -EINVAL", corrupt[i], rc);
        char *text = read_text_file(path);
        assert_non_null(text);
        assert_string_equal(text, corrupt[i]);
        free(text);
    }
}

static void test_unreadable_uuid_file_is_an_error_and_is_kept(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "device-uuid");
    char oversized[1024];
    memset(oversized, 'a', sizeof oversized - 1);
    oversized[sizeof oversized - 1] = '\0';
    assert_int_equal(write_text_file(path, oversized), 0);
    char uuid[DEVICEID_UUID_LEN + 1];
    assert_int_equal(deviceid_load_or_create(t->path, uuid), -EFBIG);
    char *text = read_text_file(path);
    assert_string_equal(text, oversized);
    free(text);

    /* A directory in its place is not replaced either. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_true(deviceid_load_or_create(t->path, uuid) < 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

static void test_missing_state_dir_is_an_error(void **state)
{
    struct temp_dir *t = *state;
    char dir[PATH_MAX];
    char uuid[DEVICEID_UUID_LEN + 1];
    assert_int_equal(deviceid_load_or_create(path_in(dir, t->path, "missing"), uuid), -ENOENT);
}

static void test_valid_uuid_strings_are_accepted(void **state)
{
    (void)state;
    const char *valid[] = {
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (deviceid_is_valid_uuid(valid[i]) != 1)
            fail_msg("'%s' refused", valid[i]);
}

static void test_malformed_uuid_strings_are_refused(void **state)
{
    (void)state;
    const char *invalid[] = {
        "",
        "0F8FAD5B-D9CB-469F-A165-70867728950E",  /* uppercase */
        "0f8fad5b-d9cb-469f-a165-70867728950",   /* too short */
        "0f8fad5b-d9cb-469f-a165-70867728950e1", /* too long */
        "0f8fad5bd-9cb-469f-a165-70867728950e",  /* hyphen misplaced */
        "0f8fad5b-d9cb-469f-a165:70867728950e",
        "0f8fad5b-d9cb-469f-a165-70867728950g",  /* not hex */
        "0f8fad5b d9cb 469f a165 70867728950e",
        "{f8fad5b-d9cb-469f-a165-70867728950e}",
        "urn:uuid:0f8fad5b-d9cb-469f-a165-7086",
        "0f8fad5b0d9cb0469f0a165070867728950e",  /* no hyphens */
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (deviceid_is_valid_uuid(invalid[i]) != 0)
            fail_msg("'%s' accepted", invalid[i]);
    assert_int_equal(deviceid_is_valid_uuid(NULL), 0);
}

#define TEMP_DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, temp_dir_setup, temp_dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMP_DIR_TEST(test_first_call_creates_version4_uuid_file_0600),
        TEMP_DIR_TEST(test_every_generated_uuid_has_version4_and_rfc4122_variant),
        TEMP_DIR_TEST(test_second_call_returns_the_same_uuid),
        TEMP_DIR_TEST(test_existing_uuid_file_is_used_as_is),
        TEMP_DIR_TEST(test_different_state_dirs_get_different_uuids),
        TEMP_DIR_TEST(test_corrupt_file_is_an_error_and_is_kept),
        TEMP_DIR_TEST(test_unreadable_uuid_file_is_an_error_and_is_kept),
        TEMP_DIR_TEST(test_missing_state_dir_is_an_error),
        cmocka_unit_test(test_valid_uuid_strings_are_accepted),
        cmocka_unit_test(test_malformed_uuid_strings_are_refused),
    };
    return cmocka_run_group_tests_name("deviceid", tests, NULL, NULL);
}
