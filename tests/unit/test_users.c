/* Unit tests for users: a fresh device, name/level/password rules and their
 * faults, case-insensitive clashes, the user limit, all-or-nothing requests,
 * last-Administrator protection, password history, the complexity and
 * history configuration and its lock, what users.xml holds (0600, no
 * password), persistence, refusal of a corrupt file, failed saves, and
 * concurrent creation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "opennvt/secretbox.h"
#include "opennvt/users.h"
#include "unit_helpers.h"

/* Passwords that meet the default policy and are in no common list. */
#define PW_A "Zebra7Quilt"
#define PW_B "Mango42Kite"
#define PW_C "Lemon9Orbit"
#define PW_D "Cobalt5Fern"
#define PW_E "Walnut8Pier"
/* Contains none of the short names test_name_rules creates. */
#define NAME_TEST_PW "Kite42Mungo"

struct fixture {
    struct temp_dir dir;
    struct secretbox *box;
    struct users *u;
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    if (secretbox_open(&fx->box, fx->dir.path) != SECRETBOX_OK ||
        users_open(&fx->u, fx->dir.path, fx->box) != USERS_OK) {
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
    users_close(fx->u);
    secretbox_close(fx->box);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen(struct fixture *fx)
{
    users_close(fx->u);
    fx->u = NULL;
    assert_int_equal(users_open(&fx->u, fx->dir.path, fx->box), USERS_OK);
}

static const char *users_path(const struct fixture *fx, char *out)
{
    return path_in(out, fx->dir.path, "users.xml");
}

static void create_one(struct fixture *fx, const char *name, const char *password, enum user_level level)
{
    struct users_entry e = { name, password, level };
    size_t bad = 99;
    int rc = users_create(fx->u, &e, 1, &bad);
    if (rc != USERS_OK)
        fail_msg("creating %s: %s", name, users_strerror(rc));
}

static void set_password(struct fixture *fx, const char *name, const char *password, enum user_level level)
{
    struct users_entry e = { name, password, level };
    int rc = users_set(fx->u, &e, 1, NULL);
    if (rc != USERS_OK)
        fail_msg("setting the password of %s to %s: %s", name, password, users_strerror(rc));
}

static int create_rc(struct fixture *fx, const char *name, const char *password, enum user_level level)
{
    struct users_entry e = { name, password, level };
    return users_create(fx->u, &e, 1, NULL);
}

static size_t user_count(struct fixture *fx)
{
    struct users_info *list = NULL;
    size_t n = 0;
    assert_int_equal(users_list(fx->u, &list, &n), USERS_OK);
    assert_non_null(list);
    free(list);
    return n;
}

/* Asserts the user list is exactly names/levels, in order. */
static void assert_users(struct fixture *fx, const char *const *names, const enum user_level *levels, size_t n)
{
    struct users_info *list = NULL;
    size_t count = 0;
    assert_int_equal(users_list(fx->u, &list, &count), USERS_OK);
    if (count != n) {
        for (size_t i = 0; i < count; i++)
            print_message("  user %zu: %s (%s)\n", i, list[i].name, users_level_name(list[i].level));
        free(list);
        fail_msg("%zu users, expected %zu", count, n);
    }
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].name, names[i]);
        assert_int_equal(list[i].level, levels[i]);
    }
    free(list);
}

static void assert_password(struct fixture *fx, const char *name, const char *expected)
{
    char pw[USERS_PASSWORD_MAX + 1];
    enum user_level level;
    assert_int_equal(users_password(fx->u, name, pw, sizeof pw, &level), USERS_OK);
    assert_string_equal(pw, expected);
}

/* The three-user state most tests start from. */
static const char *const base_names[] = { "admin", "oper", "viewer" };
static const enum user_level base_levels[] = { USER_LEVEL_ADMINISTRATOR, USER_LEVEL_OPERATOR, USER_LEVEL_USER };

static void create_base(struct fixture *fx)
{
    struct users_entry list[] = {
        { "admin", PW_A, USER_LEVEL_ADMINISTRATOR },
        { "oper", PW_B, USER_LEVEL_OPERATOR },
        { "viewer", PW_C, USER_LEVEL_USER },
    };
    assert_int_equal(users_create(fx->u, list, 3, NULL), USERS_OK);
}

static void assert_base(struct fixture *fx)
{
    assert_users(fx, base_names, base_levels, 3);
    assert_password(fx, "admin", PW_A);
    assert_password(fx, "oper", PW_B);
    assert_password(fx, "viewer", PW_C);
}

/* --- fresh device -------------------------------------------------------- */

static void test_fresh_device_has_no_users_and_default_policy(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(user_count(fx), 0);
    assert_int_equal(users_have_admin(fx->u), 0);

    struct users_complexity c;
    assert_int_equal(users_get_complexity(fx->u, &c), USERS_OK);
    assert_int_equal(c.min_len, 8);
    assert_int_equal(c.uppercase, 1);
    assert_int_equal(c.number, 1);
    assert_int_equal(c.special_chars, 0);
    assert_int_equal(c.block_username_occurrence, 1);
    assert_int_equal(c.policy_configuration_locked, 0);
    struct users_history h;
    assert_int_equal(users_get_history(fx->u, &h), USERS_OK);
    assert_int_equal(h.enabled, 1);
    assert_int_equal(h.length, 3);

    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(users_path(fx, path), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_open_argument_checks(void **state)
{
    struct fixture *fx = *state;
    struct users *u = (struct users *)fx;
    assert_int_equal(users_open(&u, fx->dir.path, NULL), USERS_E_INVALID);
    assert_null(u);
    assert_int_equal(users_open(&u, NULL, fx->box), USERS_E_INVALID);
    assert_int_equal(users_open(NULL, fx->dir.path, fx->box), USERS_E_INVALID);
    char dir[PATH_MAX];
    u = (struct users *)fx;
    assert_int_equal(users_open(&u, path_in(dir, fx->dir.path, "missing"), fx->box), USERS_E_STORE);
    assert_null(u);
    users_close(NULL);
}

/* --- create / list / level / password ------------------------------------ */

static void test_create_list_level_and_password(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    assert_base(fx);
    assert_int_equal(users_have_admin(fx->u), 1);

    enum user_level level = USER_LEVEL_ANONYMOUS;
    assert_int_equal(users_level(fx->u, "oper", &level), USERS_OK);
    assert_int_equal(level, USER_LEVEL_OPERATOR);
    assert_int_equal(users_level(fx->u, "nobody", &level), USERS_E_NO_SUCH_USER);

    char pw[USERS_PASSWORD_MAX + 1];
    level = USER_LEVEL_ANONYMOUS;
    assert_int_equal(users_password(fx->u, "viewer", pw, sizeof pw, &level), USERS_OK);
    assert_string_equal(pw, PW_C);
    assert_int_equal(level, USER_LEVEL_USER);
    assert_int_equal(users_password(fx->u, "viewer", pw, sizeof pw, NULL), USERS_OK);
    assert_int_equal(users_password(fx->u, "nobody", pw, sizeof pw, &level), USERS_E_NO_SUCH_USER);
    assert_int_equal(users_password(fx->u, "viewer", pw, USERS_PASSWORD_MAX, &level), USERS_E_INVALID);
    assert_int_equal(users_password(fx->u, NULL, pw, sizeof pw, &level), USERS_E_INVALID);
}

static void test_empty_requests_change_nothing(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    assert_int_equal(users_create(fx->u, NULL, 0, NULL), USERS_OK);
    assert_int_equal(users_delete(fx->u, NULL, 0, NULL), USERS_OK);
    assert_int_equal(users_set(fx->u, NULL, 0, NULL), USERS_OK);
    assert_int_equal(users_create(fx->u, NULL, 1, NULL), USERS_E_INVALID);
    assert_int_equal(users_delete(fx->u, NULL, 1, NULL), USERS_E_INVALID);
    assert_int_equal(users_set(fx->u, NULL, 1, NULL), USERS_E_INVALID);
    assert_base(fx);
}

/* --- names --------------------------------------------------------------- */

static void test_name_rules(void **state)
{
    struct fixture *fx = *state;
    char longest[USERS_NAME_MAX + 2];
    memset(longest, 'n', USERS_NAME_MAX);
    longest[USERS_NAME_MAX] = '\0';
    assert_int_equal(create_rc(fx, longest, NAME_TEST_PW, USER_LEVEL_USER), USERS_OK);
    longest[0] = 'm';
    longest[USERS_NAME_MAX] = 'n';
    longest[USERS_NAME_MAX + 1] = '\0';
    assert_int_equal(create_rc(fx, longest, NAME_TEST_PW, USER_LEVEL_USER), USERS_E_NAME_TOO_LONG);

    const char *valid[] = { "a", "0", "a.b_c-d", "Z9", "9-lives", "x_" };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (create_rc(fx, valid[i], NAME_TEST_PW, USER_LEVEL_USER) != USERS_OK)
            fail_msg("name '%s' refused", valid[i]);

    const char *invalid[] = { "", "_lead", ".lead", "-lead", "with space", "slash/", "colon:", "at@",
                              "quote\"", "lt<", "amp&", "tab\t", "caf\xc3\xa9", "nl\n" };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        int rc = create_rc(fx, invalid[i], NAME_TEST_PW, USER_LEVEL_USER);
        if (rc != USERS_E_NAME_INVALID)
            fail_msg("invalid name #%zu: got %s", i, users_strerror(rc));
    }
    assert_int_equal(create_rc(fx, NULL, NAME_TEST_PW, USER_LEVEL_USER), USERS_E_INVALID);
    assert_int_equal(user_count(fx), 1 + sizeof valid / sizeof valid[0]);
}

static void test_name_clash_is_case_insensitive(void **state)
{
    struct fixture *fx = *state;
    create_one(fx, "alice", PW_A, USER_LEVEL_ADMINISTRATOR);
    assert_int_equal(create_rc(fx, "alice", PW_B, USER_LEVEL_USER), USERS_E_EXISTS);
    assert_int_equal(create_rc(fx, "Alice", PW_B, USER_LEVEL_USER), USERS_E_EXISTS);
    assert_int_equal(create_rc(fx, "ALICE", PW_B, USER_LEVEL_USER), USERS_E_EXISTS);

    /* Within one request */
    struct users_entry list[] = {
        { "bob", PW_B, USER_LEVEL_USER },
        { "carol", PW_C, USER_LEVEL_USER },
        { "BoB", PW_D, USER_LEVEL_USER },
    };
    size_t bad = 99;
    assert_int_equal(users_create(fx->u, list, 3, &bad), USERS_E_EXISTS);
    assert_int_equal(bad, 2);
    assert_int_equal(user_count(fx), 1);

    /* Lookups are exact. */
    enum user_level level;
    assert_int_equal(users_level(fx->u, "Alice", &level), USERS_E_NO_SUCH_USER);
    const char *names[] = { "ALICE" };
    assert_int_equal(users_delete(fx->u, names, 1, &bad), USERS_E_NO_SUCH_USER);
    assert_int_equal(bad, 0);
    char pw[USERS_PASSWORD_MAX + 1];
    assert_int_equal(users_password(fx->u, "Alice", pw, sizeof pw, &level), USERS_E_NO_SUCH_USER);
}

/* --- levels -------------------------------------------------------------- */

static void test_level_rules(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    size_t bad = 99;
    struct users_entry anon = { "ghost", PW_D, USER_LEVEL_ANONYMOUS };
    assert_int_equal(users_create(fx->u, &anon, 1, &bad), USERS_E_ANONYMOUS);
    assert_int_equal(bad, 0);
    struct users_entry out_of_range = { "ghost", PW_D, (enum user_level)7 };
    assert_int_equal(users_create(fx->u, &out_of_range, 1, NULL), USERS_E_INVALID);
    struct users_entry negative = { "ghost", PW_D, (enum user_level)-1 };
    assert_int_equal(users_create(fx->u, &negative, 1, NULL), USERS_E_INVALID);

    struct users_entry set_anon = { "viewer", NULL, USER_LEVEL_ANONYMOUS };
    assert_int_equal(users_set(fx->u, &set_anon, 1, &bad), USERS_E_ANONYMOUS);
    struct users_entry set_bad = { "viewer", NULL, (enum user_level)4 };
    assert_int_equal(users_set(fx->u, &set_bad, 1, &bad), USERS_E_INVALID);
    assert_base(fx);

    assert_string_equal(users_level_name(USER_LEVEL_ADMINISTRATOR), "Administrator");
    assert_string_equal(users_level_name(USER_LEVEL_OPERATOR), "Operator");
    assert_string_equal(users_level_name(USER_LEVEL_USER), "User");
    assert_string_equal(users_level_name(USER_LEVEL_ANONYMOUS), "Anonymous");
    assert_non_null(users_level_name((enum user_level)9));
}

/* --- passwords ----------------------------------------------------------- */

static void test_password_length_and_charset(void **state)
{
    struct fixture *fx = *state;
    char pw[USERS_PASSWORD_MAX + 2];
    memset(pw, 'x', sizeof pw);
    memcpy(pw, "Aa1", 3);
    pw[USERS_PASSWORD_MAX] = '\0';
    assert_int_equal(users_check_password(fx->u, "zz", pw), USERS_OK);
    assert_int_equal(create_rc(fx, "longest", pw, USER_LEVEL_USER), USERS_OK);
    assert_password(fx, "longest", pw);
    pw[USERS_PASSWORD_MAX] = 'x';
    pw[USERS_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(users_check_password(fx->u, "zz", pw), USERS_E_PASSWORD_TOO_LONG);
    assert_int_equal(create_rc(fx, "toolong", pw, USER_LEVEL_USER), USERS_E_PASSWORD_TOO_LONG);

    /* Space and tilde are the edges of printable ASCII. */
    assert_int_equal(users_check_password(fx->u, "zz", "Edge case 7~"), USERS_OK);
    const char *invalid[] = { "Zebra7Qu\tilt", "Zebra7Qu\nilt", "Zebra7Qu\x7filt", "Zebra7Qu\x01ilt",
                              "Zebra7Qu\xc3\xa9ilt", "Zebra7Qu\xffilt" };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        int rc = users_check_password(fx->u, "zz", invalid[i]);
        if (rc != USERS_E_PASSWORD_INVALID)
            fail_msg("invalid password #%zu: got %s", i, users_strerror(rc));
        assert_int_equal(create_rc(fx, "bad", invalid[i], USER_LEVEL_USER), USERS_E_PASSWORD_INVALID);
    }
    /* A user needs a password. */
    assert_int_equal(create_rc(fx, "nopassword", NULL, USER_LEVEL_USER), USERS_E_INVALID);
    assert_int_equal(users_check_password(fx->u, "zz", NULL), USERS_E_INVALID);
    assert_int_equal(user_count(fx), 1);
}

static void test_default_complexity(void **state)
{
    struct fixture *fx = *state;
    const char *weak[] = {
        "Zeb7Qui",     /* 7 characters */
        "zebra7quilt", /* no upper case */
        "ZEBRA7QUILT", /* no lower case */
        "ZebraQuilts", /* no digit */
        "",
    };
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        int rc = users_check_password(fx->u, "zz", weak[i]);
        if (rc != USERS_E_PASSWORD_WEAK)
            fail_msg("weak password #%zu: got %s", i, users_strerror(rc));
        assert_int_equal(create_rc(fx, "weak", weak[i], USER_LEVEL_USER), USERS_E_PASSWORD_WEAK);
    }
    assert_int_equal(users_check_password(fx->u, "zz", "Zeb7Quil"), USERS_OK);
    assert_int_equal(users_check_password(fx->u, "zz", "Zebra7Quilt"), USERS_OK);
    assert_int_equal(user_count(fx), 0);
}

static void test_password_may_not_contain_the_username(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(create_rc(fx, "marvin", "Xmarvin42", USER_LEVEL_USER), USERS_E_PASSWORD_WEAK);
    assert_int_equal(create_rc(fx, "marvin", "MarVin42x", USER_LEVEL_USER), USERS_E_PASSWORD_WEAK);
    assert_int_equal(create_rc(fx, "Marvin", "x9MARVINy", USER_LEVEL_USER), USERS_E_PASSWORD_WEAK);
    assert_int_equal(users_check_password(fx->u, "marvin", "42Marvin!"), USERS_E_PASSWORD_WEAK);
    assert_int_equal(create_rc(fx, "marvin", "Marv1nXyz", USER_LEVEL_USER), USERS_OK);

    struct users_complexity c;
    assert_int_equal(users_get_complexity(fx->u, &c), USERS_OK);
    c.block_username_occurrence = 0;
    assert_int_equal(users_set_complexity(fx->u, &c), USERS_OK);
    assert_int_equal(create_rc(fx, "arthur", "Xarthur42", USER_LEVEL_USER), USERS_OK);
}

static void test_common_passwords_are_refused_case_insensitively(void **state)
{
    struct fixture *fx = *state;
    const char *common[] = { "Password1", "PASSWORD1", "pAsSwOrD1", "Passw0rd!", "P@ssw0rd1", "Admin123",
                             "Qwerty123", "QWERTY123", "Welcome1", "Abcd1234", "Aa123456", "Password123",
                             "Changeme123", "Welcome123" };
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
        int rc = users_check_password(fx->u, "someone", common[i]);
        if (rc != USERS_E_PASSWORD_WEAK)
            fail_msg("common password '%s' accepted (%s)", common[i], users_strerror(rc));
        assert_int_equal(create_rc(fx, "someone", common[i], USER_LEVEL_USER), USERS_E_PASSWORD_WEAK);
    }
    /* Lower the policy to nothing: the list still applies. */
    struct users_complexity c = { .min_len = 8 };
    assert_int_equal(users_set_complexity(fx->u, &c), USERS_OK);
    const char *plain_common[] = { "password", "12345678", "qwertyuiop", "iloveyou", "admin123", "11111111" };
    for (size_t i = 0; i < sizeof plain_common / sizeof plain_common[0]; i++)
        if (users_check_password(fx->u, "someone", plain_common[i]) != USERS_E_PASSWORD_WEAK)
            fail_msg("common password '%s' accepted", plain_common[i]);
    assert_int_equal(users_check_password(fx->u, "someone", "glorpfizz"), USERS_OK);
    assert_int_equal(user_count(fx), 0);
}

/* --- limits and all-or-nothing ------------------------------------------- */

static void test_at_most_users_max(void **state)
{
    struct fixture *fx = *state;
    char names[USERS_MAX + 1][16];
    struct users_entry list[USERS_MAX + 1];
    for (size_t i = 0; i <= USERS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "user%zu", i);
        list[i] = (struct users_entry){ names[i], PW_A, i == 0 ? USER_LEVEL_ADMINISTRATOR : USER_LEVEL_USER };
    }
    size_t bad = 99;
    assert_int_equal(users_create(fx->u, list, USERS_MAX + 1, &bad), USERS_E_TOO_MANY);
    assert_int_equal(bad, USERS_MAX);
    assert_int_equal(user_count(fx), 0);

    assert_int_equal(users_create(fx->u, list, USERS_MAX - 1, NULL), USERS_OK);
    assert_int_equal(users_create(fx->u, &list[USERS_MAX - 1], 2, &bad), USERS_E_TOO_MANY);
    assert_int_equal(bad, 1);
    assert_int_equal(user_count(fx), USERS_MAX - 1);
    assert_int_equal(users_create(fx->u, &list[USERS_MAX - 1], 1, NULL), USERS_OK);
    assert_int_equal(users_create(fx->u, &list[USERS_MAX], 1, &bad), USERS_E_TOO_MANY);
    assert_int_equal(bad, 0);
    assert_int_equal(user_count(fx), USERS_MAX);
    reopen(fx);
    assert_int_equal(user_count(fx), USERS_MAX);
}

static void test_create_with_one_bad_entry_creates_nothing(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    char path[PATH_MAX];
    char *before = read_text_file(users_path(fx, path));
    assert_non_null(before);

    struct {
        struct users_entry bad;
        int expected;
    } cases[] = {
        { { "bad name", PW_E, USER_LEVEL_USER }, USERS_E_NAME_INVALID },
        { { "oPeR", PW_E, USER_LEVEL_USER }, USERS_E_EXISTS },
        { { "newbie", "weak", USER_LEVEL_USER }, USERS_E_PASSWORD_WEAK },
        { { "newbie", "Zebra7\x01", USER_LEVEL_USER }, USERS_E_PASSWORD_INVALID },
        { { "newbie", PW_E, USER_LEVEL_ANONYMOUS }, USERS_E_ANONYMOUS },
        { { "first", PW_E, USER_LEVEL_USER }, USERS_E_EXISTS }, /* same as entry 0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct users_entry list[] = {
            { "first", PW_D, USER_LEVEL_OPERATOR },
            { "second", PW_E, USER_LEVEL_ADMINISTRATOR },
            cases[i].bad,
            { "fourth", PW_D, USER_LEVEL_USER },
        };
        size_t bad = 99;
        int rc = users_create(fx->u, list, 4, &bad);
        if (rc != cases[i].expected)
            fail_msg("case %zu: got %s, expected %s", i, users_strerror(rc), users_strerror(cases[i].expected));
        assert_int_equal(bad, 2);
        assert_base(fx);
    }
    char *after = read_text_file(path);
    assert_non_null(after);
    assert_string_equal(before, after);
    free(before);
    free(after);
    reopen(fx);
    assert_base(fx);
}

/* --- delete -------------------------------------------------------------- */

static void test_delete(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    const char *gone[] = { "viewer", "oper" };
    assert_int_equal(users_delete(fx->u, gone, 2, NULL), USERS_OK);
    const char *names[] = { "admin" };
    const enum user_level levels[] = { USER_LEVEL_ADMINISTRATOR };
    assert_users(fx, names, levels, 1);
    reopen(fx);
    assert_users(fx, names, levels, 1);
    /* A deleted name can be created again. */
    create_one(fx, "viewer", PW_D, USER_LEVEL_USER);
    assert_password(fx, "viewer", PW_D);
}

static void test_failed_delete_deletes_nothing(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    size_t bad = 99;
    const char *absent[] = { "viewer", "nobody", "oper" };
    assert_int_equal(users_delete(fx->u, absent, 3, &bad), USERS_E_NO_SUCH_USER);
    assert_int_equal(bad, 1);
    const char *twice[] = { "viewer", "viewer" };
    assert_int_equal(users_delete(fx->u, twice, 2, &bad), USERS_E_NO_SUCH_USER);
    assert_int_equal(bad, 1);
    const char *with_null[] = { "viewer", NULL };
    assert_int_equal(users_delete(fx->u, with_null, 2, &bad), USERS_E_INVALID);
    assert_int_equal(bad, 1);
    assert_base(fx);
    reopen(fx);
    assert_base(fx);
}

static void test_last_admin_cannot_be_deleted(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    size_t bad = 99;
    const char *only_admin[] = { "admin" };
    assert_int_equal(users_delete(fx->u, only_admin, 1, &bad), USERS_E_LAST_ADMIN);
    assert_int_equal(bad, 0);
    const char *all[] = { "viewer", "admin", "oper" };
    assert_int_equal(users_delete(fx->u, all, 3, &bad), USERS_E_LAST_ADMIN);
    assert_int_equal(bad, 1);
    assert_base(fx);

    create_one(fx, "admin2", PW_D, USER_LEVEL_ADMINISTRATOR);
    const char *both[] = { "admin2", "viewer", "admin" };
    assert_int_equal(users_delete(fx->u, both, 3, &bad), USERS_E_LAST_ADMIN);
    assert_int_equal(bad, 2);
    assert_int_equal(user_count(fx), 4);
    assert_int_equal(users_delete(fx->u, only_admin, 1, NULL), USERS_OK);
    assert_int_equal(users_have_admin(fx->u), 1);
    const char *last[] = { "admin2" };
    assert_int_equal(users_delete(fx->u, last, 1, &bad), USERS_E_LAST_ADMIN);
}

static void test_without_any_admin_others_can_be_deleted(void **state)
{
    struct fixture *fx = *state;
    create_one(fx, "oper", PW_A, USER_LEVEL_OPERATOR);
    const char *names[] = { "oper" };
    assert_int_equal(users_delete(fx->u, names, 1, NULL), USERS_OK);
    assert_int_equal(user_count(fx), 0);
}

/* --- set ----------------------------------------------------------------- */

static void test_set_changes_password_and_level(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    /* NULL password keeps the password. */
    struct users_entry promote = { "viewer", NULL, USER_LEVEL_OPERATOR };
    assert_int_equal(users_set(fx->u, &promote, 1, NULL), USERS_OK);
    assert_password(fx, "viewer", PW_C);
    set_password(fx, "oper", PW_D, USER_LEVEL_OPERATOR);
    assert_password(fx, "oper", PW_D);
    const char *names[] = { "admin", "oper", "viewer" };
    const enum user_level levels[] = { USER_LEVEL_ADMINISTRATOR, USER_LEVEL_OPERATOR, USER_LEVEL_OPERATOR };
    assert_users(fx, names, levels, 3);
    reopen(fx);
    assert_users(fx, names, levels, 3);
    assert_password(fx, "oper", PW_D);
}

static void test_failed_set_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    struct {
        struct users_entry bad;
        int expected;
    } cases[] = {
        { { "nobody", PW_E, USER_LEVEL_USER }, USERS_E_NO_SUCH_USER },
        { { "VIEWER", PW_E, USER_LEVEL_USER }, USERS_E_NO_SUCH_USER },
        { { NULL, PW_E, USER_LEVEL_USER }, USERS_E_INVALID },
        { { "viewer", "short", USER_LEVEL_USER }, USERS_E_PASSWORD_WEAK },
        { { "viewer", "Viewer123x", USER_LEVEL_USER }, USERS_E_PASSWORD_WEAK },
        { { "viewer", PW_C, USER_LEVEL_USER }, USERS_E_PASSWORD_REUSED },
        { { "viewer", "Zebra7\x7f", USER_LEVEL_USER }, USERS_E_PASSWORD_INVALID },
        { { "viewer", NULL, USER_LEVEL_ANONYMOUS }, USERS_E_ANONYMOUS },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct users_entry list[] = {
            { "oper", PW_E, USER_LEVEL_USER },
            { "admin", PW_D, USER_LEVEL_ADMINISTRATOR },
            cases[i].bad,
        };
        size_t bad = 99;
        int rc = users_set(fx->u, list, 3, &bad);
        if (rc != cases[i].expected)
            fail_msg("case %zu: got %s, expected %s", i, users_strerror(rc), users_strerror(cases[i].expected));
        assert_int_equal(bad, 2);
        assert_base(fx);
    }
    reopen(fx);
    assert_base(fx);
    /* Nothing of the refused requests entered the history either. */
    set_password(fx, "oper", PW_E, USER_LEVEL_OPERATOR);
}

static void test_last_admin_cannot_be_demoted(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    size_t bad = 99;
    struct users_entry demote = { "admin", NULL, USER_LEVEL_OPERATOR };
    assert_int_equal(users_set(fx->u, &demote, 1, &bad), USERS_E_LAST_ADMIN);
    assert_int_equal(bad, 0);
    /* Demoting with a valid new password changes neither. */
    struct users_entry demote_pw = { "admin", PW_E, USER_LEVEL_USER };
    struct users_entry list1[] = { { "viewer", PW_D, USER_LEVEL_USER }, demote_pw };
    assert_int_equal(users_set(fx->u, list1, 2, &bad), USERS_E_LAST_ADMIN);
    assert_int_equal(bad, 1);
    assert_base(fx);

    /* Handing over within one request is fine. */
    struct users_entry handover[] = { { "admin", NULL, USER_LEVEL_USER }, { "oper", NULL, USER_LEVEL_ADMINISTRATOR } };
    assert_int_equal(users_set(fx->u, handover, 2, NULL), USERS_OK);
    enum user_level level;
    assert_int_equal(users_level(fx->u, "admin", &level), USERS_OK);
    assert_int_equal(level, USER_LEVEL_USER);
    assert_int_equal(users_level(fx->u, "oper", &level), USERS_OK);
    assert_int_equal(level, USER_LEVEL_ADMINISTRATOR);
    assert_int_equal(users_have_admin(fx->u), 1);
}

/* --- history ------------------------------------------------------------- */

static void test_history_refuses_recent_passwords(void **state)
{
    struct fixture *fx = *state;
    create_one(fx, "alice", PW_A, USER_LEVEL_ADMINISTRATOR);
    size_t bad = 99;
    struct users_entry same = { "alice", PW_A, USER_LEVEL_ADMINISTRATOR };
    assert_int_equal(users_set(fx->u, &same, 1, &bad), USERS_E_PASSWORD_REUSED);
    assert_int_equal(bad, 0);
    assert_int_equal(users_check_password(fx->u, "alice", PW_A), USERS_E_PASSWORD_REUSED);
    /* Another user may have the same password. */
    assert_int_equal(users_check_password(fx->u, "bob", PW_A), USERS_OK);

    /* Default length 3: after A->B->C->D, the last 3 (A, B, C) and the current D are refused. */
    set_password(fx, "alice", PW_B, USER_LEVEL_ADMINISTRATOR);
    set_password(fx, "alice", PW_C, USER_LEVEL_ADMINISTRATOR);
    set_password(fx, "alice", PW_D, USER_LEVEL_ADMINISTRATOR);
    const char *refused[] = { PW_A, PW_B, PW_C, PW_D };
    for (size_t i = 0; i < 4; i++) {
        struct users_entry e = { "alice", refused[i], USER_LEVEL_ADMINISTRATOR };
        if (users_set(fx->u, &e, 1, NULL) != USERS_E_PASSWORD_REUSED)
            fail_msg("%s was accepted again", refused[i]);
    }
    reopen(fx);
    assert_int_equal(users_check_password(fx->u, "alice", PW_B), USERS_E_PASSWORD_REUSED);
    assert_password(fx, "alice", PW_D);

    /* One more change and A is out of the window. */
    set_password(fx, "alice", PW_E, USER_LEVEL_ADMINISTRATOR);
    assert_int_equal(users_check_password(fx->u, "alice", PW_B), USERS_E_PASSWORD_REUSED);
    set_password(fx, "alice", PW_A, USER_LEVEL_ADMINISTRATOR);
}

static void test_history_disabled_allows_reuse(void **state)
{
    struct fixture *fx = *state;
    create_one(fx, "alice", PW_A, USER_LEVEL_ADMINISTRATOR);
    set_password(fx, "alice", PW_B, USER_LEVEL_ADMINISTRATOR);
    struct users_history h = { .enabled = 0, .length = 3 };
    assert_int_equal(users_set_history(fx->u, &h), USERS_OK);
    set_password(fx, "alice", PW_B, USER_LEVEL_ADMINISTRATOR);
    set_password(fx, "alice", PW_A, USER_LEVEL_ADMINISTRATOR);
    /* Enabled again: what was set meanwhile counts. */
    h.enabled = 1;
    assert_int_equal(users_set_history(fx->u, &h), USERS_OK);
    assert_int_equal(users_check_password(fx->u, "alice", PW_B), USERS_E_PASSWORD_REUSED);
}

static void test_history_length_is_configurable_and_trimmed(void **state)
{
    struct fixture *fx = *state;
    struct users_history h = { .enabled = 1, .length = 1 };
    assert_int_equal(users_set_history(fx->u, &h), USERS_OK);
    create_one(fx, "alice", PW_A, USER_LEVEL_ADMINISTRATOR);
    set_password(fx, "alice", PW_B, USER_LEVEL_ADMINISTRATOR);
    set_password(fx, "alice", PW_C, USER_LEVEL_ADMINISTRATOR);
    assert_int_equal(users_check_password(fx->u, "alice", PW_B), USERS_E_PASSWORD_REUSED);
    assert_int_equal(users_check_password(fx->u, "alice", PW_A), USERS_OK);

    /* Far more changes than USERS_HISTORY_MAX: at most that many fingerprints are kept. */
    h.length = USERS_HISTORY_MAX;
    assert_int_equal(users_set_history(fx->u, &h), USERS_OK);
    char pw[32];
    for (int i = 0; i < USERS_HISTORY_MAX + 5; i++) {
        snprintf(pw, sizeof pw, "Rotate%02dPass", i);
        set_password(fx, "alice", pw, USER_LEVEL_ADMINISTRATOR);
    }
    /* Current Rotate14 plus the ten before it (Rotate04..13) are refused. */
    for (int i = 4; i < USERS_HISTORY_MAX + 5; i++) {
        snprintf(pw, sizeof pw, "Rotate%02dPass", i);
        assert_int_equal(users_check_password(fx->u, "alice", pw), USERS_E_PASSWORD_REUSED);
    }
    snprintf(pw, sizeof pw, "Rotate%02dPass", 3);
    assert_int_equal(users_check_password(fx->u, "alice", pw), USERS_OK);

    char path[PATH_MAX];
    char *text = read_text_file(users_path(fx, path));
    assert_non_null(text);
    int previous = 0;
    for (const char *p = text; (p = strstr(p, "<previous>")) != NULL; p++)
        previous++;
    assert_int_equal(previous, USERS_HISTORY_MAX);
    free(text);
}

/* --- policy configuration ------------------------------------------------ */

static void test_complexity_configuration_validation(void **state)
{
    struct fixture *fx = *state;
    struct users_complexity def;
    assert_int_equal(users_get_complexity(fx->u, &def), USERS_OK);
    const struct users_complexity bad[] = {
        { .min_len = USERS_PASSWORD_MIN_FLOOR - 1 },
        { .min_len = USERS_PASSWORD_MAX + 1 },
        { .min_len = 0 },
        { .min_len = 8, .uppercase = -1 },
        { .min_len = 8, .number = -1 },
        { .min_len = 8, .special_chars = -1 },
        { .min_len = 8, .uppercase = USERS_PASSWORD_MAX + 1 },
        { .min_len = 8, .number = USERS_PASSWORD_MAX + 1 },
        { .min_len = 8, .special_chars = USERS_PASSWORD_MAX + 1 },
        { .min_len = 8, .uppercase = 33 },                                   /* 66 letters */
        { .min_len = 8, .uppercase = 20, .number = 20, .special_chars = 5 }, /* 65 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = users_set_complexity(fx->u, &bad[i]);
        if (rc != USERS_E_POLICY)
            fail_msg("complexity #%zu: got %s", i, users_strerror(rc));
    }
    assert_int_equal(users_set_complexity(fx->u, NULL), USERS_E_INVALID);
    struct users_complexity now;
    assert_int_equal(users_get_complexity(fx->u, &now), USERS_OK);
    assert_memory_equal(&now, &def, sizeof now);

    const struct users_complexity edges[] = {
        { .min_len = USERS_PASSWORD_MIN_FLOOR },
        { .min_len = USERS_PASSWORD_MAX, .uppercase = 32 },
        { .min_len = 8, .uppercase = 20, .number = 20, .special_chars = 4 },
        { .min_len = 8, .number = USERS_PASSWORD_MAX },
        { .min_len = 8, .special_chars = USERS_PASSWORD_MAX },
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        if (users_set_complexity(fx->u, &edges[i]) != USERS_OK)
            fail_msg("complexity edge #%zu refused", i);

    const struct users_history bad_history[] = { { 1, 0 }, { 1, USERS_HISTORY_MAX + 1 }, { 0, -1 } };
    for (size_t i = 0; i < sizeof bad_history / sizeof bad_history[0]; i++)
        assert_int_equal(users_set_history(fx->u, &bad_history[i]), USERS_E_POLICY);
    assert_int_equal(users_set_history(fx->u, NULL), USERS_E_INVALID);
    struct users_history h = { 1, USERS_HISTORY_MAX };
    assert_int_equal(users_set_history(fx->u, &h), USERS_OK);
}

static void test_complexity_configuration_applies_and_persists(void **state)
{
    struct fixture *fx = *state;
    struct users_complexity c = { .min_len = 12, .uppercase = 2, .number = 2, .special_chars = 2,
                                  .block_username_occurrence = 1 };
    assert_int_equal(users_set_complexity(fx->u, &c), USERS_OK);
    assert_int_equal(users_check_password(fx->u, "zz", "Zebra7Quilt"), USERS_E_PASSWORD_WEAK);  /* 11 */
    assert_int_equal(users_check_password(fx->u, "zz", "Zebra77Quilt"), USERS_E_PASSWORD_WEAK); /* no special */
    assert_int_equal(users_check_password(fx->u, "zz", "zebra77quil!!"), USERS_E_PASSWORD_WEAK);/* 0 upper */
    assert_int_equal(users_check_password(fx->u, "zz", "ZEBRA77QUIL!!"), USERS_E_PASSWORD_WEAK);/* 0 lower */
    assert_int_equal(users_check_password(fx->u, "zz", "Zebra7Quil!!x"), USERS_E_PASSWORD_WEAK);/* 1 digit */
    assert_int_equal(users_check_password(fx->u, "zz", "Zebra77Quil !"), USERS_OK);

    struct users_history h = { 0, 7 };
    assert_int_equal(users_set_history(fx->u, &h), USERS_OK);
    reopen(fx);
    struct users_complexity got;
    assert_int_equal(users_get_complexity(fx->u, &got), USERS_OK);
    assert_int_equal(got.min_len, 12);
    assert_int_equal(got.uppercase, 2);
    assert_int_equal(got.number, 2);
    assert_int_equal(got.special_chars, 2);
    assert_int_equal(got.block_username_occurrence, 1);
    assert_int_equal(got.policy_configuration_locked, 0);
    struct users_history got_h;
    assert_int_equal(users_get_history(fx->u, &got_h), USERS_OK);
    assert_int_equal(got_h.enabled, 0);
    assert_int_equal(got_h.length, 7);
}

static void test_locked_policy_refuses_changes(void **state)
{
    struct fixture *fx = *state;
    struct users_complexity c = { .min_len = 10, .uppercase = 1, .number = 1, .block_username_occurrence = 1,
                                  .policy_configuration_locked = 1 };
    assert_int_equal(users_set_complexity(fx->u, &c), USERS_OK);
    struct users_complexity unlock = c;
    unlock.policy_configuration_locked = 0;
    assert_int_equal(users_set_complexity(fx->u, &unlock), USERS_E_POLICY);
    assert_int_equal(users_set_complexity(fx->u, &c), USERS_E_POLICY);
    struct users_history h = { 1, 5 };
    assert_int_equal(users_set_history(fx->u, &h), USERS_E_POLICY);

    reopen(fx);
    struct users_complexity got;
    assert_int_equal(users_get_complexity(fx->u, &got), USERS_OK);
    assert_int_equal(got.min_len, 10);
    assert_int_equal(got.policy_configuration_locked, 1);
    assert_int_equal(users_set_complexity(fx->u, &unlock), USERS_E_POLICY);
    assert_int_equal(users_set_history(fx->u, &h), USERS_E_POLICY);
    struct users_history got_h;
    assert_int_equal(users_get_history(fx->u, &got_h), USERS_OK);
    assert_int_equal(got_h.length, 3);
    /* Users can still be managed under the locked policy. */
    assert_int_equal(create_rc(fx, "alice", "Zebra7Quil", USER_LEVEL_ADMINISTRATOR), USERS_OK);
    assert_int_equal(create_rc(fx, "bob", PW_A, USER_LEVEL_USER), USERS_OK);
}

/* --- storage ------------------------------------------------------------- */

static void test_users_file_is_private_and_holds_no_password(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    set_password(fx, "oper", PW_D, USER_LEVEL_OPERATOR);
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(users_path(fx, path), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *text = read_text_file(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "v1:"));
    assert_non_null(strstr(text, "oper"));
    const char *passwords[] = { PW_A, PW_B, PW_C, PW_D };
    for (size_t i = 0; i < 4; i++) {
        assert_null(strstr(text, passwords[i]));
        unsigned char b64[64];
        EVP_EncodeBlock(b64, (const unsigned char *)passwords[i], (int)strlen(passwords[i]));
        assert_null(strstr(text, (const char *)b64));
        /* Nor its base64 without padding. */
        char *eq = strchr((char *)b64, '=');
        if (eq)
            *eq = '\0';
        assert_null(strstr(text, (const char *)b64));
    }
    free(text);
    /* No temporary file left over. */
    assert_int_equal(count_dir_entries(fx->dir.path), 2);
}

static void test_everything_persists_across_reopen(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    reopen(fx);
    assert_base(fx);
    assert_int_equal(users_have_admin(fx->u), 1);
    /* A new secretbox on the same key opens the same file. */
    users_close(fx->u);
    secretbox_close(fx->box);
    fx->u = NULL;
    assert_int_equal(secretbox_open(&fx->box, fx->dir.path), SECRETBOX_OK);
    assert_int_equal(users_open(&fx->u, fx->dir.path, fx->box), USERS_OK);
    assert_base(fx);
}

static void expect_open_refused(struct fixture *fx, const char *content)
{
    char path[PATH_MAX];
    users_path(fx, path);
    users_close(fx->u);
    fx->u = NULL;
    assert_int_equal(write_text_file(path, content), 0);
    struct users *u = (struct users *)fx;
    assert_int_equal(users_open(&u, fx->dir.path, fx->box), USERS_E_STORE);
    assert_null(u);
    /* Kept for inspection, not replaced. */
    char *after = read_text_file(path);
    assert_non_null(after);
    assert_string_equal(after, content);
    free(after);
}

/* Returns a copy of text with the first occurrence of from replaced by to. */
static char *replace_first(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    assert_non_null(at);
    size_t len = strlen(text) - strlen(from) + strlen(to);
    char *out = malloc(len + 1);
    assert_non_null(out);
    size_t head = (size_t)(at - text);
    memcpy(out, text, head);
    strcpy(out + head, to);
    strcat(out, at + strlen(from));
    return out;
}

static void test_corrupt_file_is_refused(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    set_password(fx, "admin", PW_D, USER_LEVEL_ADMINISTRATOR);
    char path[PATH_MAX];
    char *good = read_text_file(users_path(fx, path));
    assert_non_null(good);

    const char *fixed[] = {
        "not xml at all",
        "<users><user name=\"x\"",
        "<config/>",
        "<!DOCTYPE users [<!ENTITY e \"x\">]><users/>",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        expect_open_refused(fx, fixed[i]);

    struct {
        const char *from, *to;
    } edits[] = {
        { "level=\"User\"", "level=\"Anonymous\"" },
        { "level=\"User\"", "level=\"Root\"" },
        { "name=\"viewer\"", "name=\"bad name\"" },
        { "name=\"viewer\"", "name=\"ADMIN\"" },          /* clash */
        { "name=\"viewer\"", "name=\"viewer2\"" },        /* sealed for another name */
        { "<password>v1:", "<password>v1:A" },            /* tampered sealed text */
        { "<password>v1:", "<password>v2:" },
        { "<previous>", "<previous>zz" },                 /* bad fingerprint */
        { "min-len=\"8\"", "min-len=\"4\"" },
        { "min-len=\"8\"", "min-len=\"8x\"" },
        { "length=\"3\"", "length=\"11\"" },
        { "enabled=\"true\"", "enabled=\"maybe\"" },
        { "policy-configuration-locked=\"false\"", "policy-configuration-locked=\"1\"" },
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *bad = replace_first(good, edits[i].from, edits[i].to);
        expect_open_refused(fx, bad);
        free(bad);
    }

    /* A user with two passwords, or none. */
    char *two = replace_first(good, "</user>", "<password>v1:AAAA</password></user>");
    expect_open_refused(fx, two);
    free(two);
    const char *start = strstr(good, "<password>");
    const char *end = strstr(good, "</password>");
    assert_true(start && end);
    size_t head = (size_t)(start - good);
    char *none = malloc(strlen(good) + 1);
    assert_non_null(none);
    memcpy(none, good, head);
    strcpy(none + head, end + strlen("</password>"));
    expect_open_refused(fx, none);
    free(none);

    /* Larger than any file we write. */
    size_t big = 300 * 1024;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, ' ', big);
    memcpy(huge, "<users>", 7);
    memcpy(huge + big - 8, "</users>", 8);
    huge[big] = '\0';
    expect_open_refused(fx, huge);
    free(huge);

    /* The untouched file opens again. */
    assert_int_equal(write_text_file(path, good), 0);
    assert_int_equal(users_open(&fx->u, fx->dir.path, fx->box), USERS_OK);
    assert_users(fx, base_names, base_levels, 3);
    assert_password(fx, "admin", PW_D);
    free(good);
}

static void test_file_from_another_device_is_refused(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    users_close(fx->u);
    fx->u = NULL;
    char key[PATH_MAX];
    assert_int_equal(unlink(path_in(key, fx->dir.path, "device.key")), 0);
    struct secretbox *other = NULL;
    assert_int_equal(secretbox_open(&other, fx->dir.path), SECRETBOX_OK);
    struct users *u = (struct users *)fx;
    assert_int_equal(users_open(&u, fx->dir.path, other), USERS_E_STORE);
    assert_null(u);
    secretbox_close(other);
}

static void test_failed_save_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    create_base(fx);
    /* A directory where atomicfile wants its temporary file makes every save fail. */
    char blocker[PATH_MAX];
    assert_true(snprintf(blocker, sizeof blocker, "%s/users.xml.tmp.%ld", fx->dir.path, (long)getpid()) <
                (int)sizeof blocker);
    assert_int_equal(mkdir(blocker, 0700), 0);

    size_t bad = 99;
    struct users_entry add = { "newbie", PW_D, USER_LEVEL_USER };
    assert_int_equal(users_create(fx->u, &add, 1, &bad), USERS_E_STORE);
    assert_int_equal(bad, 1); /* no entry at fault */
    const char *gone[] = { "viewer" };
    assert_int_equal(users_delete(fx->u, gone, 1, NULL), USERS_E_STORE);
    struct users_entry change = { "oper", PW_D, USER_LEVEL_USER };
    assert_int_equal(users_set(fx->u, &change, 1, NULL), USERS_E_STORE);
    struct users_complexity c = { .min_len = 20 };
    assert_int_equal(users_set_complexity(fx->u, &c), USERS_E_STORE);
    struct users_history h = { 0, 5 };
    assert_int_equal(users_set_history(fx->u, &h), USERS_E_STORE);

    assert_base(fx);
    struct users_complexity got;
    assert_int_equal(users_get_complexity(fx->u, &got), USERS_OK);
    assert_int_equal(got.min_len, 8);
    struct users_history got_h;
    assert_int_equal(users_get_history(fx->u, &got_h), USERS_OK);
    assert_int_equal(got_h.enabled, 1);
    assert_int_equal(got_h.length, 3);
    /* The refused password change did not enter the history. */
    assert_int_equal(users_check_password(fx->u, "oper", PW_D), USERS_OK);

    assert_int_equal(rmdir(blocker), 0);
    reopen(fx);
    assert_base(fx);
    set_password(fx, "oper", PW_D, USER_LEVEL_OPERATOR);
}

/* --- concurrency --------------------------------------------------------- */

#define CREATOR_THREADS 4
#define CREATES_PER_THREAD 10

struct creator {
    struct users *u;
    int id;
    int created;
    int too_many;
    int other;
};

static void *create_users(void *arg)
{
    struct creator *c = arg;
    for (int i = 0; i < CREATES_PER_THREAD; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d-user%d", c->id, i);
        struct users_entry e = { name, PW_A, USER_LEVEL_OPERATOR };
        int rc = users_create(c->u, &e, 1, NULL);
        if (rc == USERS_OK)
            c->created++;
        else if (rc == USERS_E_TOO_MANY)
            c->too_many++;
        else
            c->other++;
    }
    return NULL;
}

static void test_concurrent_creates_stay_consistent(void **state)
{
    struct fixture *fx = *state;
    pthread_t threads[CREATOR_THREADS];
    struct creator creators[CREATOR_THREADS];
    for (int i = 0; i < CREATOR_THREADS; i++) {
        creators[i] = (struct creator){ .u = fx->u, .id = i };
        assert_int_equal(pthread_create(&threads[i], NULL, create_users, &creators[i]), 0);
    }
    int created = 0, too_many = 0, other = 0;
    for (int i = 0; i < CREATOR_THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        created += creators[i].created;
        too_many += creators[i].too_many;
        other += creators[i].other;
    }
    assert_int_equal(other, 0);
    assert_int_equal(created, USERS_MAX);
    assert_int_equal(too_many, CREATOR_THREADS * CREATES_PER_THREAD - USERS_MAX);
    assert_int_equal(user_count(fx), USERS_MAX);
    reopen(fx);
    assert_int_equal(user_count(fx), USERS_MAX);
    struct users_info *list = NULL;
    size_t n = 0;
    assert_int_equal(users_list(fx->u, &list, &n), USERS_OK);
    for (size_t i = 0; i < n; i++)
        assert_password(fx, list[i].name, PW_A);
    free(list);
}

/* --- messages ------------------------------------------------------------ */

static void test_every_error_has_its_own_message(void **state)
{
    (void)state;
    const int codes[] = { USERS_OK, USERS_E_EXISTS, USERS_E_TOO_MANY, USERS_E_NAME_INVALID, USERS_E_NAME_TOO_LONG,
                          USERS_E_PASSWORD_TOO_LONG, USERS_E_PASSWORD_WEAK, USERS_E_PASSWORD_REUSED,
                          USERS_E_PASSWORD_INVALID, USERS_E_ANONYMOUS, USERS_E_NO_SUCH_USER, USERS_E_LAST_ADMIN,
                          USERS_E_POLICY, USERS_E_STORE, USERS_E_NOMEM, USERS_E_INVALID };
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *msg = users_strerror(codes[i]);
        assert_non_null(msg);
        assert_string_not_equal(msg, "unknown error");
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(msg, users_strerror(codes[k]));
    }
    assert_string_equal(users_strerror(4242), "unknown error");
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

static const struct CMUnitTest regular_tests[] = {
    FIXTURE_TEST(test_fresh_device_has_no_users_and_default_policy),
    FIXTURE_TEST(test_open_argument_checks),
    FIXTURE_TEST(test_create_list_level_and_password),
    FIXTURE_TEST(test_empty_requests_change_nothing),
    FIXTURE_TEST(test_name_rules),
    FIXTURE_TEST(test_name_clash_is_case_insensitive),
    FIXTURE_TEST(test_level_rules),
    FIXTURE_TEST(test_password_length_and_charset),
    FIXTURE_TEST(test_default_complexity),
    FIXTURE_TEST(test_password_may_not_contain_the_username),
    FIXTURE_TEST(test_common_passwords_are_refused_case_insensitively),
    FIXTURE_TEST(test_at_most_users_max),
    FIXTURE_TEST(test_create_with_one_bad_entry_creates_nothing),
    FIXTURE_TEST(test_delete),
    FIXTURE_TEST(test_failed_delete_deletes_nothing),
    FIXTURE_TEST(test_last_admin_cannot_be_deleted),
    FIXTURE_TEST(test_without_any_admin_others_can_be_deleted),
    FIXTURE_TEST(test_set_changes_password_and_level),
    FIXTURE_TEST(test_failed_set_changes_nothing),
    FIXTURE_TEST(test_last_admin_cannot_be_demoted),
    FIXTURE_TEST(test_history_refuses_recent_passwords),
    FIXTURE_TEST(test_history_disabled_allows_reuse),
    FIXTURE_TEST(test_history_length_is_configurable_and_trimmed),
    FIXTURE_TEST(test_complexity_configuration_validation),
    FIXTURE_TEST(test_complexity_configuration_applies_and_persists),
    FIXTURE_TEST(test_locked_policy_refuses_changes),
    FIXTURE_TEST(test_users_file_is_private_and_holds_no_password),
    FIXTURE_TEST(test_everything_persists_across_reopen),
    FIXTURE_TEST(test_corrupt_file_is_refused),
    FIXTURE_TEST(test_file_from_another_device_is_refused),
    FIXTURE_TEST(test_failed_save_changes_nothing),
    FIXTURE_TEST(test_concurrent_creates_stay_consistent),
    cmocka_unit_test(test_every_error_has_its_own_message),
};

UNIT_MAIN("users", regular_tests)
