/* Unit tests for the factory reset: which state files soft and hard remove,
 * what they keep (identity, log, unknown files), that secret files are
 * overwritten before removal (seen through a second link), and idempotence. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opennvt/factoryreset.h"
#include "unit_helpers.h"

static const char *const all_files[] = { "device-uuid", "device.key", "users.xml", "keystore.xml", "deviceca.xml",
                                         "authn.xml", "ipfilter.xml", "tlspolicy.xml", "netcfg.xml", "clock.xml",
                                         "log/system.log", "unrelated.txt" };

static void put(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int setup(void **state)
{
    if (temp_dir_setup(state) != 0)
        return -1;
    struct temp_dir *dir = *state;
    char log_dir[PATH_MAX];
    mkdir(path_in(log_dir, dir->path, "log"), 0700);
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        put(dir->path, all_files[i], "secret-material-0123456789\n");
    return 0;
}

static int teardown(void **state)
{
    return temp_dir_teardown(state);
}

static void test_soft_keeps_network_settings(void **state)
{
    struct temp_dir *dir = *state;
    int n = factoryreset_wipe(dir->path, FACTORYRESET_SOFT);
    assert_int_equal(n, 6);
    const char *gone[] = { "device.key", "users.xml", "keystore.xml", "deviceca.xml", "authn.xml", "ipfilter.xml" };
    for (size_t i = 0; i < 6; i++)
        assert_false(exists(dir->path, gone[i]));
    const char *kept[] = { "device-uuid", "tlspolicy.xml", "netcfg.xml", "clock.xml", "log/system.log", "unrelated.txt" };
    for (size_t i = 0; i < 6; i++)
        assert_true(exists(dir->path, kept[i]));
}

static void test_hard_keeps_identity_and_log_only(void **state)
{
    struct temp_dir *dir = *state;
    int n = factoryreset_wipe(dir->path, FACTORYRESET_HARD);
    assert_int_equal(n, 9);
    assert_true(exists(dir->path, "device-uuid"));
    assert_true(exists(dir->path, "log/system.log"));
    assert_true(exists(dir->path, "unrelated.txt"));
    assert_false(exists(dir->path, "netcfg.xml"));
    assert_false(exists(dir->path, "tlspolicy.xml"));
    assert_false(exists(dir->path, "clock.xml"));
    /* Again: nothing left to remove, not an error. */
    assert_int_equal(factoryreset_wipe(dir->path, FACTORYRESET_HARD), 0);
}

/* A second link shows the bytes: the secret files were zeroed first. */
static void test_secrets_overwritten_before_removal(void **state)
{
    struct temp_dir *dir = *state;
    const char *secret[] = { "device.key", "users.xml", "keystore.xml", "deviceca.xml" };
    char links[4][PATH_MAX + 64];
    for (size_t i = 0; i < 4; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir->path, secret[i]);
        snprintf(links[i], sizeof links[i], "%s/keep-%zu", dir->path, i);
        assert_int_equal(link(path, links[i]), 0);
    }
    char path[PATH_MAX + 64], authn_link[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/authn.xml", dir->path);
    snprintf(authn_link, sizeof authn_link, "%s/keep-authn", dir->path);
    assert_int_equal(link(path, authn_link), 0);
    assert_true(factoryreset_wipe(dir->path, FACTORYRESET_SOFT) > 0);
    for (size_t i = 0; i < 4; i++) {
        char buf[64] = "";
        int fd = open(links[i], O_RDONLY);
        assert_true(fd >= 0);
        ssize_t r = read(fd, buf, sizeof buf);
        close(fd);
        assert_int_equal(r, (ssize_t)strlen("secret-material-0123456789\n"));
        for (ssize_t k = 0; k < r; k++)
            assert_int_equal(buf[k], 0);
        unlink(links[i]);
    }
    /* A file without secrets is just removed. */
    char buf[8] = "";
    int fd = open(authn_link, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, 6), 6);
    close(fd);
    assert_memory_equal(buf, "secret", 6);
    unlink(authn_link);
}

/* A recorded request survives until carried out; the stronger kind wins;
 * staged restores go with the reset. */
static void test_request_and_resume(void **state)
{
    struct temp_dir *dir = *state;
    char path[PATH_MAX];
    mkdir(path_in(path, dir->path, "restore.ready"), 0700);
    put(dir->path, "restore.ready/users.xml", "old users\n");
    assert_int_equal(factoryreset_resume(dir->path), 0);   /* nothing pending */
    assert_true(exists(dir->path, "users.xml"));
    assert_int_equal(factoryreset_request(dir->path, FACTORYRESET_HARD), 0);
    assert_int_equal(factoryreset_request(dir->path, FACTORYRESET_SOFT), 0);
    assert_true(exists(dir->path, "reset.pending"));
    assert_int_equal(factoryreset_resume(dir->path), 1);
    assert_false(exists(dir->path, "netcfg.xml"));           /* hard, not soft */
    assert_false(exists(dir->path, "users.xml"));
    assert_false(exists(dir->path, "restore.ready"));
    assert_false(exists(dir->path, "reset.pending"));
    assert_true(exists(dir->path, "device-uuid"));
    assert_int_equal(factoryreset_resume(dir->path), 0);
}

static void test_arguments(void **state)
{
    (void)state;
    assert_int_equal(factoryreset_wipe(NULL, FACTORYRESET_HARD), -EINVAL);
    assert_int_equal(factoryreset_wipe("/tmp", (enum factoryreset_kind)7), -EINVAL);
    assert_int_equal(factoryreset_kind_from_name("soft"), FACTORYRESET_SOFT);
    assert_int_equal(factoryreset_kind_from_name("hard"), FACTORYRESET_HARD);
    assert_int_equal(factoryreset_kind_from_name("Hard"), -1);
    assert_int_equal(factoryreset_kind_from_name(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_soft_keeps_network_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_keeps_identity_and_log_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_overwritten_before_removal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_and_resume, setup, teardown),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
