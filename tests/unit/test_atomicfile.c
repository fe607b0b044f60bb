/* Unit tests for atomicfile: write/read round trips, file modes, replacement,
 * bounded reads, no temporary files left behind, private directory creation
 * and the clean-up of temporaries an interrupted write left. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "opennvt/atomicfile.h"
#include "unit_helpers.h"

static mode_t permission_bits(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_write_then_read_returns_the_same_bytes(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "state.bin");
    /* Embedded NUL: the reported length must be the byte count, not strlen. */
    static const char payload[] = "first line\n\0second part";
    assert_int_equal(atomicfile_write(path, payload, sizeof payload - 1, 0600), 0);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(atomicfile_read(path, 1024, &data, &len), 0);
    assert_non_null(data);
    assert_int_equal(len, sizeof payload - 1);
    assert_memory_equal(data, payload, sizeof payload - 1);
    assert_int_equal(data[len], '\0');
    free(data);
}

static void test_read_accepts_null_length_pointer(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "text");
    assert_int_equal(atomicfile_write(path, "hello", 5, 0600), 0);
    char *data = NULL;
    assert_int_equal(atomicfile_read(path, 64, &data, NULL), 0);
    assert_string_equal(data, "hello");
    free(data);
}

static void test_write_of_empty_data_creates_empty_file(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "empty");
    assert_int_equal(atomicfile_write(path, "", 0, 0600), 0);
    char *data = NULL;
    size_t len = 99;
    assert_int_equal(atomicfile_read(path, 64, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
}

static void test_write_honours_mode_0600_whatever_the_umask(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "secret");
    mode_t old = umask(0);
    int rc = atomicfile_write(path, "k", 1, 0600);
    umask(old);
    assert_int_equal(rc, 0);
    assert_int_equal(permission_bits(path), 0600);
}

static void test_write_honours_mode_0644_despite_restrictive_umask(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "public");
    mode_t old = umask(077);
    int rc = atomicfile_write(path, "p", 1, 0644);
    umask(old);
    assert_int_equal(rc, 0);
    assert_int_equal(permission_bits(path), 0644);
}

static void test_write_replaces_existing_content_and_mode(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "replace.txt");
    const char *long_text = "a much longer original content that must disappear entirely";
    assert_int_equal(atomicfile_write(path, long_text, strlen(long_text), 0644), 0);
    assert_int_equal(atomicfile_write(path, "short", 5, 0600), 0);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(atomicfile_read(path, 1024, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "short");
    free(data);
    assert_int_equal(permission_bits(path), 0600);
}

static void test_write_replaces_a_file_written_by_someone_else(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "foreign.txt");
    assert_int_equal(write_text_file(path, "old content from elsewhere"), 0);
    assert_int_equal(atomicfile_write(path, "new", 3, 0600), 0);
    char *text = read_text_file(path);
    assert_string_equal(text, "new");
    free(text);
}

static void test_leftover_temp_file_does_not_leak_into_new_content(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX], leftover[PATH_MAX];
    path_in(path, t->path, "target");
    assert_true(snprintf(leftover, sizeof leftover, "%s.tmp.%ld", path, (long)getpid()) < (int)sizeof leftover);
    assert_int_equal(write_text_file(leftover, "a long half-written generation from a crash"), 0);

    assert_int_equal(atomicfile_write(path, "new", 3, 0600), 0);
    char *text = read_text_file(path);
    assert_string_equal(text, "new");
    free(text);
    assert_int_equal(count_dir_entries(t->path), 1);
}

static void test_read_of_missing_file_returns_enoent(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "does-not-exist");
    char *data = (char *)"sentinel";
    size_t len = 42;
    assert_int_equal(atomicfile_read(path, 1024, &data, &len), -ENOENT);
    assert_null(data);
    assert_int_equal(len, 0);
}

static void test_read_of_file_larger_than_max_returns_efbig(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "big");
    char content[101];
    memset(content, 'x', sizeof content);
    assert_int_equal(atomicfile_write(path, content, sizeof content, 0600), 0);

    char *data = NULL;
    assert_int_equal(atomicfile_read(path, sizeof content - 1, &data, NULL), -EFBIG);
    assert_null(data);
}

static void test_read_of_file_exactly_max_succeeds(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "exact");
    char content[100];
    memset(content, 'y', sizeof content);
    assert_int_equal(atomicfile_write(path, content, sizeof content, 0600), 0);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(atomicfile_read(path, sizeof content, &data, &len), 0);
    assert_int_equal(len, sizeof content);
    free(data);
}

static void test_read_of_directory_is_refused(void **state)
{
    struct temp_dir *t = *state;
    char *data = NULL;
    int rc = atomicfile_read(t->path, 1024, &data, NULL);
    assert_true(rc < 0);
    assert_int_not_equal(rc, -ENOENT);
    assert_null(data);
}

static void test_read_does_not_follow_symlinks(void **state)
{
    struct temp_dir *t = *state;
    char target[PATH_MAX], link[PATH_MAX];
    path_in(target, t->path, "target");
    path_in(link, t->path, "link");
    assert_int_equal(write_text_file(target, "behind a link"), 0);
    assert_int_equal(symlink(target, link), 0);
    char *data = NULL;
    assert_true(atomicfile_read(link, 1024, &data, NULL) < 0);
    assert_null(data);
}

static void test_writes_leave_no_temporary_files(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "only-file");
    for (int i = 0; i < 5; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "generation %d", i);
        assert_int_equal(atomicfile_write(path, text, (size_t)n, 0600), 0);
    }
    assert_int_equal(count_dir_entries(t->path), 1);
    char *text = read_text_file(path);
    assert_string_equal(text, "generation 4");
    free(text);
}

static void test_write_into_missing_directory_fails_and_leaves_nothing(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    path_in(path, t->path, "no-such-dir/file");
    assert_int_equal(atomicfile_write(path, "x", 1, 0600), -ENOENT);
    assert_int_equal(count_dir_entries(t->path), 0);
}

static void test_mkdir_private_creates_nested_directories_0700(void **state)
{
    struct temp_dir *t = *state;
    char top[PATH_MAX], middle[PATH_MAX], leaf[PATH_MAX];
    path_in(top, t->path, "a");
    path_in(middle, t->path, "a/b");
    path_in(leaf, t->path, "a/b/c");
    mode_t old = umask(0);
    int rc = atomicfile_mkdir_private(leaf);
    umask(old);
    assert_int_equal(rc, 0);

    const char *levels[] = { top, middle, leaf };
    for (size_t i = 0; i < 3; i++) {
        struct stat st;
        assert_int_equal(stat(levels[i], &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
    }
}

static void test_mkdir_private_accepts_existing_directory(void **state)
{
    struct temp_dir *t = *state;
    char dir[PATH_MAX];
    path_in(dir, t->path, "state");
    assert_int_equal(atomicfile_mkdir_private(dir), 0);
    assert_int_equal(atomicfile_mkdir_private(dir), 0);
    char with_slash[PATH_MAX];
    assert_true(snprintf(with_slash, sizeof with_slash, "%s/", dir) < (int)sizeof with_slash);
    assert_int_equal(atomicfile_mkdir_private(with_slash), 0);
}

static void test_mkdir_private_refuses_regular_file(void **state)
{
    struct temp_dir *t = *state;
    char file[PATH_MAX];
    path_in(file, t->path, "plain-file");
    assert_int_equal(write_text_file(file, "not a directory"), 0);
    assert_int_equal(atomicfile_mkdir_private(file), -ENOTDIR);

    char below[PATH_MAX];
    path_in(below, t->path, "plain-file/sub");
    assert_int_equal(atomicfile_mkdir_private(below), -ENOTDIR);

    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

static void test_mkdir_private_refuses_empty_path(void **state)
{
    (void)state;
    assert_int_equal(atomicfile_mkdir_private(""), -EINVAL);
}

static void test_remove_stale_temps_removes_only_interrupted_writes(void **state)
{
    struct temp_dir *t = *state;
    const char *stale[] = { "netcfg.xml.tmp.1234", "device-uuid.tmp.7" };
    const char *kept[] = { "netcfg.xml", ".tmp.123", "file.tmp.", "file.tmp.12x", "notes.tmp" };
    char path[PATH_MAX];
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(write_text_file(path_in(path, t->path, stale[i]), "stale"), 0);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(write_text_file(path_in(path, t->path, kept[i]), "keep"), 0);

    assert_int_equal(atomicfile_remove_stale_temps(t->path), 2);

    for (size_t i = 0; i < 2; i++)
        assert_int_equal(access(path_in(path, t->path, stale[i]), F_OK), -1);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(access(path_in(path, t->path, kept[i]), F_OK), 0);
    assert_int_equal(atomicfile_remove_stale_temps(t->path), 0);
}

static void test_remove_stale_temps_of_missing_directory_fails(void **state)
{
    struct temp_dir *t = *state;
    char path[PATH_MAX];
    assert_int_equal(atomicfile_remove_stale_temps(path_in(path, t->path, "missing")), -ENOENT);
}

#define TEMP_DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, temp_dir_setup, temp_dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMP_DIR_TEST(test_write_then_read_returns_the_same_bytes),
        TEMP_DIR_TEST(test_read_accepts_null_length_pointer),
        TEMP_DIR_TEST(test_write_of_empty_data_creates_empty_file),
        TEMP_DIR_TEST(test_write_honours_mode_0600_whatever_the_umask),
        TEMP_DIR_TEST(test_write_honours_mode_0644_despite_restrictive_umask),
        TEMP_DIR_TEST(test_write_replaces_existing_content_and_mode),
        TEMP_DIR_TEST(test_write_replaces_a_file_written_by_someone_else),
        TEMP_DIR_TEST(test_leftover_temp_file_does_not_leak_into_new_content),
        TEMP_DIR_TEST(test_read_of_missing_file_returns_enoent),
        TEMP_DIR_TEST(test_read_of_file_larger_than_max_returns_efbig),
        TEMP_DIR_TEST(test_read_of_file_exactly_max_succeeds),
        TEMP_DIR_TEST(test_read_of_directory_is_refused),
        TEMP_DIR_TEST(test_read_does_not_follow_symlinks),
        TEMP_DIR_TEST(test_writes_leave_no_temporary_files),
        TEMP_DIR_TEST(test_write_into_missing_directory_fails_and_leaves_nothing),
        TEMP_DIR_TEST(test_mkdir_private_creates_nested_directories_0700),
        TEMP_DIR_TEST(test_mkdir_private_accepts_existing_directory),
        TEMP_DIR_TEST(test_mkdir_private_refuses_regular_file),
        cmocka_unit_test(test_mkdir_private_refuses_empty_path),
        TEMP_DIR_TEST(test_remove_stale_temps_removes_only_interrupted_writes),
        TEMP_DIR_TEST(test_remove_stale_temps_of_missing_directory_fails),
    };
    return cmocka_run_group_tests_name("atomicfile", tests, NULL, NULL);
}
