/* Unit tests for netcfg: defaults on first open, scope validation, the
 * set/add/remove semantics and their faults (all-or-nothing), persistence of
 * scopes and discovery mode across reopen, refusal of a corrupt file, failed
 * saves, and the change hook. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>

#include "opennvt/netcfg.h"
#include "unit_helpers.h"

#define TYPE_SCOPE "onvif://www.onvif.org/type/Network_Video_Transmitter"
#define HARDWARE_SCOPE "onvif://www.onvif.org/hardware/OpenNVT-Linux"
#define NAME_SCOPE "onvif://www.onvif.org/name/OpenNVT"
#define LOCATION_SCOPE "onvif://www.onvif.org/location/unknown"

static const char *const fixed_scopes[] = { TYPE_SCOPE, HARDWARE_SCOPE };
static const char *const default_scopes[] = { NAME_SCOPE, LOCATION_SCOPE };

struct fixture {
    struct temp_dir dir;
    struct netcfg *nc;
    int hook_calls;
};

static void count_hook_call(void *arg)
{
    struct fixture *fx = arg;
    fx->hook_calls++;
}

static int open_default(struct fixture *fx)
{
    return netcfg_open(&fx->nc, fx->dir.path, fixed_scopes, 2, default_scopes, 2);
}

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    if (open_default(fx) != NETCFG_OK) {
        temp_fixture_free(&fx->dir, fx);
        return -1;
    }
    netcfg_set_change_hook(fx->nc, count_hook_call, fx);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    netcfg_close(fx->nc);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen(struct fixture *fx)
{
    netcfg_close(fx->nc);
    fx->nc = NULL;
    assert_int_equal(open_default(fx), NETCFG_OK);
    netcfg_set_change_hook(fx->nc, count_hook_call, fx);
}

/* Asserts the full scope list: the two fixed scopes, then exactly the given
 * configurable ones in order. */
static void assert_scopes(struct netcfg *nc, const char *const *configurable, size_t n)
{
    struct netcfg_scope *scopes = NULL;
    size_t count = 0;
    assert_int_equal(netcfg_get_scopes(nc, &scopes, &count), NETCFG_OK);
    if (count != 2 + n) {
        for (size_t i = 0; i < count; i++)
            print_message("  scope %zu: %s%s\n", i, scopes[i].uri, scopes[i].fixed ? " (fixed)" : "");
        free(scopes);
        fail_msg("%zu scopes, expected %zu", count, 2 + n);
    }
    assert_string_equal(scopes[0].uri, TYPE_SCOPE);
    assert_int_equal(scopes[0].fixed, 1);
    assert_string_equal(scopes[1].uri, HARDWARE_SCOPE);
    assert_int_equal(scopes[1].fixed, 1);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(scopes[2 + i].uri, configurable[i]);
        assert_int_equal(scopes[2 + i].fixed, 0);
    }
    free(scopes);
}

static void assert_default_scopes(struct netcfg *nc)
{
    assert_scopes(nc, default_scopes, 2);
}

/* Fills uris with n distinct valid scopes "onvif://example.com/s/<i>". */
static void make_scopes(char (*storage)[64], const char **uris, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(storage[i], 64, "onvif://example.com/s/%zu", i);
        uris[i] = storage[i];
    }
}

/* --- first open ---------------------------------------------------------- */

static void test_first_open_lists_fixed_then_default_scopes(void **state)
{
    struct fixture *fx = *state;
    assert_default_scopes(fx->nc);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 1);
}

static void test_first_open_persists_file_0600(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(path_in(path, fx->dir.path, "netcfg.xml"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* Fixed scopes are device characteristics, never stored. */
    char *text = read_text_file(path);
    assert_non_null(text);
    assert_null(strstr(text, TYPE_SCOPE));
    assert_non_null(strstr(text, NAME_SCOPE));
    free(text);
}

static void test_first_open_skips_invalid_and_duplicate_defaults(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_MAX];
    path_in(dir, fx->dir.path, "other");
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *defaults[] = { NAME_SCOPE, "not a scope", NAME_SCOPE, LOCATION_SCOPE, "" };
    struct netcfg *nc = NULL;
    assert_int_equal(netcfg_open(&nc, dir, fixed_scopes, 2, defaults, 5), NETCFG_OK);
    assert_default_scopes(nc);
    netcfg_close(nc);
}

static void test_open_in_missing_directory_fails(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_MAX];
    struct netcfg *nc = (struct netcfg *)fx; /* any non-NULL value */
    assert_int_equal(netcfg_open(&nc, path_in(dir, fx->dir.path, "missing"), fixed_scopes, 2, default_scopes, 2),
                     NETCFG_E_STORE);
    assert_null(nc);
}

/* --- scope validation ---------------------------------------------------- */

static void test_scope_validation(void **state)
{
    (void)state;
    char longest[NETCFG_SCOPE_MAX_LEN + 2];
    int n = snprintf(longest, sizeof longest, "onvif://x/");
    memset(longest + n, 'a', NETCFG_SCOPE_MAX_LEN - (size_t)n);
    longest[NETCFG_SCOPE_MAX_LEN] = '\0';
    assert_int_equal(netcfg_scope_is_valid(longest), 1);
    longest[NETCFG_SCOPE_MAX_LEN] = 'a';
    longest[NETCFG_SCOPE_MAX_LEN + 1] = '\0';
    assert_int_equal(netcfg_scope_is_valid(longest), 0);

    const char *valid[] = { NAME_SCOPE, "urn:x", "a+b-c.d:rest", "http://h/p?q=1&r=%20#f" };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!netcfg_scope_is_valid(valid[i]))
            fail_msg("'%s' refused", valid[i]);

    const char *invalid[] = {
        "",
        "onvif://www.onvif.org/name/My Cam",  /* space */
        "www.onvif.org/name/Cam",            /* no scheme */
        "onvif:",                            /* nothing after the scheme */
        ":onvif",                            /* empty scheme */
        "1onvif://x",                        /* scheme must start with a letter */
        "on_vif://x",                        /* '_' not allowed in a scheme */
        "onvif://x/\x01",                    /* control characters */
        "onvif://x/\t",
        "onvif://x/\n",
        "onvif://x/\x7f",
        "onvif://x/caf\xc3\xa9",             /* not ASCII */
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (netcfg_scope_is_valid(invalid[i]))
            fail_msg("invalid scope #%zu accepted", i);
    assert_int_equal(netcfg_scope_is_valid(NULL), 0);
}

/* --- set ----------------------------------------------------------------- */

static void test_set_replaces_configurable_scopes_only(void **state)
{
    struct fixture *fx = *state;
    const char *next[] = { "onvif://www.onvif.org/name/Lobby", "onvif://www.onvif.org/location/Hall" };
    assert_int_equal(netcfg_set_scopes(fx->nc, next, 2), NETCFG_OK);
    assert_scopes(fx->nc, next, 2);
    assert_int_equal(fx->hook_calls, 1);
}

static void test_set_ignores_duplicates_and_fixed_scopes(void **state)
{
    struct fixture *fx = *state;
    const char *next[] = { "urn:a", TYPE_SCOPE, "urn:a", "urn:b" };
    assert_int_equal(netcfg_set_scopes(fx->nc, next, 4), NETCFG_OK);
    const char *expected[] = { "urn:a", "urn:b" };
    assert_scopes(fx->nc, expected, 2);
}

static void test_set_to_empty_list_keeps_fixed_scopes(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(netcfg_set_scopes(fx->nc, NULL, 0), NETCFG_OK);
    assert_scopes(fx->nc, NULL, 0);
}

static void test_set_accepts_exactly_max_scopes(void **state)
{
    struct fixture *fx = *state;
    char storage[NETCFG_MAX_SCOPES][64];
    const char *uris[NETCFG_MAX_SCOPES];
    make_scopes(storage, uris, NETCFG_MAX_SCOPES);
    assert_int_equal(netcfg_set_scopes(fx->nc, uris, NETCFG_MAX_SCOPES), NETCFG_OK);
    assert_scopes(fx->nc, uris, NETCFG_MAX_SCOPES);
}

static void test_set_of_too_many_scopes_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    char storage[NETCFG_MAX_SCOPES + 1][64];
    const char *uris[NETCFG_MAX_SCOPES + 1];
    make_scopes(storage, uris, NETCFG_MAX_SCOPES + 1);
    assert_int_equal(netcfg_set_scopes(fx->nc, uris, NETCFG_MAX_SCOPES + 1), NETCFG_E_TOO_MANY);
    assert_default_scopes(fx->nc);
    assert_int_equal(fx->hook_calls, 0);
    reopen(fx);
    assert_default_scopes(fx->nc);
}

static void test_set_with_one_invalid_uri_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    char too_long[NETCFG_SCOPE_MAX_LEN + 2];
    int n = snprintf(too_long, sizeof too_long, "onvif://x/");
    memset(too_long + n, 'a', sizeof too_long - 1 - (size_t)n);
    too_long[sizeof too_long - 1] = '\0';
    const char *bad[] = { "", "onvif://www.onvif.org/name/My Cam", "no-scheme-here", too_long,
                          "onvif://x/\x01", NULL };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *uris[] = { "urn:good", bad[i] };
        int rc = netcfg_set_scopes(fx->nc, uris, 2);
        if (rc != NETCFG_E_INVALID)
            fail_msg("invalid scope #%zu: got %d, expected NETCFG_E_INVALID", i, rc);
    }
    assert_default_scopes(fx->nc);
    assert_int_equal(fx->hook_calls, 0);
}

/* --- add ----------------------------------------------------------------- */

static void test_add_appends_and_ignores_present_scopes(void **state)
{
    struct fixture *fx = *state;
    const char *added[] = { "urn:extra", NAME_SCOPE, HARDWARE_SCOPE, "urn:extra" };
    assert_int_equal(netcfg_add_scopes(fx->nc, added, 4), NETCFG_OK);
    const char *expected[] = { NAME_SCOPE, LOCATION_SCOPE, "urn:extra" };
    assert_scopes(fx->nc, expected, 3);
    assert_int_equal(fx->hook_calls, 1);
}

static void test_add_beyond_max_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    char storage[NETCFG_MAX_SCOPES][64];
    const char *uris[NETCFG_MAX_SCOPES];
    /* Two defaults present: room for MAX - 2 more. */
    make_scopes(storage, uris, NETCFG_MAX_SCOPES);
    assert_int_equal(netcfg_add_scopes(fx->nc, uris, NETCFG_MAX_SCOPES - 1), NETCFG_E_TOO_MANY);
    assert_default_scopes(fx->nc);
    assert_int_equal(fx->hook_calls, 0);

    assert_int_equal(netcfg_add_scopes(fx->nc, uris, NETCFG_MAX_SCOPES - 2), NETCFG_OK);
    assert_int_equal(fx->hook_calls, 1);
    const char *one_more[] = { "urn:one-too-many" };
    assert_int_equal(netcfg_add_scopes(fx->nc, one_more, 1), NETCFG_E_TOO_MANY);
    assert_int_equal(fx->hook_calls, 1);

    struct netcfg_scope *scopes;
    size_t n;
    assert_int_equal(netcfg_get_scopes(fx->nc, &scopes, &n), NETCFG_OK);
    assert_int_equal(n, 2 + NETCFG_MAX_SCOPES);
    free(scopes);
}

static void test_add_of_more_than_max_at_once_is_too_many(void **state)
{
    struct fixture *fx = *state;
    char storage[NETCFG_MAX_SCOPES + 1][64];
    const char *uris[NETCFG_MAX_SCOPES + 1];
    make_scopes(storage, uris, NETCFG_MAX_SCOPES + 1);
    assert_int_equal(netcfg_add_scopes(fx->nc, uris, NETCFG_MAX_SCOPES + 1), NETCFG_E_TOO_MANY);
    assert_default_scopes(fx->nc);
}

static void test_add_with_one_invalid_uri_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    const char *uris[] = { "urn:good", "bad scope" };
    assert_int_equal(netcfg_add_scopes(fx->nc, uris, 2), NETCFG_E_INVALID);
    assert_default_scopes(fx->nc);
    assert_int_equal(fx->hook_calls, 0);
}

/* --- remove -------------------------------------------------------------- */

static void test_remove_deletes_configurable_scopes_keeping_order(void **state)
{
    struct fixture *fx = *state;
    const char *all[] = { "urn:a", "urn:b", "urn:c", "urn:d" };
    assert_int_equal(netcfg_set_scopes(fx->nc, all, 4), NETCFG_OK);
    const char *gone[] = { "urn:c", "urn:a" };
    assert_int_equal(netcfg_remove_scopes(fx->nc, gone, 2), NETCFG_OK);
    const char *expected[] = { "urn:b", "urn:d" };
    assert_scopes(fx->nc, expected, 2);
    assert_int_equal(fx->hook_calls, 2);
}

static void test_remove_of_fixed_scope_is_refused(void **state)
{
    struct fixture *fx = *state;
    const char *uris[] = { TYPE_SCOPE };
    assert_int_equal(netcfg_remove_scopes(fx->nc, uris, 1), NETCFG_E_FIXED);
    assert_default_scopes(fx->nc);
    assert_int_equal(fx->hook_calls, 0);
}

static void test_remove_of_absent_scope_is_refused(void **state)
{
    struct fixture *fx = *state;
    const char *uris[] = { "onvif://www.onvif.org/name/Nobody" };
    assert_int_equal(netcfg_remove_scopes(fx->nc, uris, 1), NETCFG_E_NO_SCOPE);
    assert_default_scopes(fx->nc);
    assert_int_equal(fx->hook_calls, 0);
}

static void test_failed_multi_remove_leaves_all_scopes(void **state)
{
    struct fixture *fx = *state;
    const char *then_absent[] = { NAME_SCOPE, LOCATION_SCOPE, "urn:absent" };
    assert_int_equal(netcfg_remove_scopes(fx->nc, then_absent, 3), NETCFG_E_NO_SCOPE);
    assert_default_scopes(fx->nc);

    const char *then_fixed[] = { NAME_SCOPE, HARDWARE_SCOPE };
    assert_int_equal(netcfg_remove_scopes(fx->nc, then_fixed, 2), NETCFG_E_FIXED);
    assert_default_scopes(fx->nc);

    /* The same scope twice: the second is no longer there. */
    const char *twice[] = { NAME_SCOPE, NAME_SCOPE };
    assert_int_equal(netcfg_remove_scopes(fx->nc, twice, 2), NETCFG_E_NO_SCOPE);
    assert_default_scopes(fx->nc);

    const char *with_null[] = { NAME_SCOPE, NULL };
    assert_int_equal(netcfg_remove_scopes(fx->nc, with_null, 2), NETCFG_E_INVALID);
    assert_default_scopes(fx->nc);

    assert_int_equal(fx->hook_calls, 0);
    reopen(fx);
    assert_default_scopes(fx->nc);
}

/* --- persistence --------------------------------------------------------- */

static void test_scopes_and_mode_persist_across_reopen(void **state)
{
    struct fixture *fx = *state;
    const char *next[] = { "onvif://www.onvif.org/name/Lobby", "urn:x", "onvif://www.onvif.org/location/Hall" };
    assert_int_equal(netcfg_set_scopes(fx->nc, next, 3), NETCFG_OK);
    assert_int_equal(netcfg_set_discoverable(fx->nc, 0), NETCFG_OK);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 0);

    reopen(fx);
    assert_scopes(fx->nc, next, 3);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 0);

    assert_int_equal(netcfg_set_discoverable(fx->nc, 1), NETCFG_OK);
    reopen(fx);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 1);
}

static void test_scope_changes_keep_the_discovery_mode(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(netcfg_set_discoverable(fx->nc, 0), NETCFG_OK);
    const char *a[] = { "urn:a" };
    assert_int_equal(netcfg_add_scopes(fx->nc, a, 1), NETCFG_OK);
    assert_int_equal(netcfg_set_scopes(fx->nc, a, 1), NETCFG_OK);
    assert_int_equal(netcfg_remove_scopes(fx->nc, a, 1), NETCFG_OK);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 0);
    reopen(fx);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 0);
}

static void test_stored_file_is_cleaned_on_load(void **state)
{
    struct fixture *fx = *state;
    netcfg_close(fx->nc);
    fx->nc = NULL;
    char path[PATH_MAX];
    /* Hand-edited: a fixed scope, a duplicate and an invalid entry. */
    assert_int_equal(write_text_file(path_in(path, fx->dir.path, "netcfg.xml"),
                                     "<?xml version=\"1.0\"?>\n<netcfg>\n"
                                     "  <discovery-mode>NonDiscoverable</discovery-mode>\n"
                                     "  <scopes>\n"
                                     "    <scope>urn:kept</scope>\n"
                                     "    <scope>" TYPE_SCOPE "</scope>\n"
                                     "    <scope>urn:kept</scope>\n"
                                     "    <scope>not a scope</scope>\n"
                                     "    <scope>urn:also-kept</scope>\n"
                                     "  </scopes>\n</netcfg>\n"),
                     0);
    assert_int_equal(open_default(fx), NETCFG_OK);
    const char *expected[] = { "urn:kept", "urn:also-kept" };
    assert_scopes(fx->nc, expected, 2);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 0);
}

static void test_empty_scope_list_persists_without_defaults_coming_back(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(netcfg_set_scopes(fx->nc, NULL, 0), NETCFG_OK);
    reopen(fx);
    assert_scopes(fx->nc, NULL, 0);
}

static void test_xml_special_characters_survive_reopen(void **state)
{
    struct fixture *fx = *state;
    const char *next[] = { "urn:a&b<c>d\"e'f", "http://h/p?x=1&amp;y=2" };
    assert_int_equal(netcfg_set_scopes(fx->nc, next, 2), NETCFG_OK);
    reopen(fx);
    assert_scopes(fx->nc, next, 2);
}

static void test_corrupt_file_refuses_open_and_is_kept(void **state)
{
    struct fixture *fx = *state;
    netcfg_close(fx->nc);
    fx->nc = NULL;
    char path[PATH_MAX];
    path_in(path, fx->dir.path, "netcfg.xml");
    const char *corrupt[] = {
        "<netcfg><scopes><scope>urn:a</scope>",  /* truncated */
        "this is not XML at all",
        "",
    };
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        assert_int_equal(write_text_file(path, corrupt[i]), 0);
        struct netcfg *nc = (struct netcfg *)fx;
        int rc = netcfg_open(&nc, fx->dir.path, fixed_scopes, 2, default_scopes, 2);
        if (rc == NETCFG_OK) {
            netcfg_close(nc);
            fail_msg("corrupt file #%zu opened", i);
        }
        assert_null(nc);
        char *text = read_text_file(path);
        assert_non_null(text);
        assert_string_equal(text, corrupt[i]);
        free(text);
    }
    /* Leave a valid state for the teardown. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(open_default(fx), NETCFG_OK);
}

static void test_failed_save_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    /* A directory where atomicfile wants its temporary file makes every save fail. */
    char blocker[PATH_MAX];
    assert_true(snprintf(blocker, sizeof blocker, "%s/netcfg.xml.tmp.%ld", fx->dir.path, (long)getpid()) <
                (int)sizeof blocker);
    assert_int_equal(mkdir(blocker, 0700), 0);

    const char *next[] = { "urn:new" };
    assert_int_equal(netcfg_set_scopes(fx->nc, next, 1), NETCFG_E_STORE);
    assert_int_equal(netcfg_add_scopes(fx->nc, next, 1), NETCFG_E_STORE);
    const char *gone[] = { NAME_SCOPE };
    assert_int_equal(netcfg_remove_scopes(fx->nc, gone, 1), NETCFG_E_STORE);
    assert_int_equal(netcfg_set_discoverable(fx->nc, 0), NETCFG_E_STORE);

    assert_default_scopes(fx->nc);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 1);
    assert_int_equal(fx->hook_calls, 0);

    assert_int_equal(rmdir(blocker), 0);
    reopen(fx);
    assert_default_scopes(fx->nc);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 1);
}

/* --- change hook --------------------------------------------------------- */

static void test_change_hook_runs_once_per_successful_change(void **state)
{
    struct fixture *fx = *state;
    const char *a[] = { "urn:a" };
    const char *invalid[] = { "bad scope" };
    const char *fixed[] = { TYPE_SCOPE };

    assert_int_equal(netcfg_add_scopes(fx->nc, a, 1), NETCFG_OK);
    assert_int_equal(fx->hook_calls, 1);
    assert_int_equal(netcfg_add_scopes(fx->nc, invalid, 1), NETCFG_E_INVALID);
    assert_int_equal(fx->hook_calls, 1);
    assert_int_equal(netcfg_remove_scopes(fx->nc, fixed, 1), NETCFG_E_FIXED);
    assert_int_equal(fx->hook_calls, 1);
    assert_int_equal(netcfg_remove_scopes(fx->nc, a, 1), NETCFG_OK);
    assert_int_equal(fx->hook_calls, 2);
    assert_int_equal(netcfg_set_scopes(fx->nc, a, 1), NETCFG_OK);
    assert_int_equal(fx->hook_calls, 3);
    assert_int_equal(netcfg_set_scopes(fx->nc, invalid, 1), NETCFG_E_INVALID);
    assert_int_equal(fx->hook_calls, 3);

    assert_int_equal(netcfg_set_discoverable(fx->nc, 0), NETCFG_OK);
    assert_int_equal(fx->hook_calls, 4);
    /* Same mode again: not a change. */
    assert_int_equal(netcfg_set_discoverable(fx->nc, 0), NETCFG_OK);
    assert_int_equal(fx->hook_calls, 4);
    assert_int_equal(netcfg_set_discoverable(fx->nc, 7), NETCFG_OK);
    assert_int_equal(netcfg_get_discoverable(fx->nc), 1);
    assert_int_equal(fx->hook_calls, 5);
}

static void test_cleared_change_hook_is_not_called(void **state)
{
    struct fixture *fx = *state;
    netcfg_set_change_hook(fx->nc, NULL, NULL);
    const char *a[] = { "urn:a" };
    assert_int_equal(netcfg_add_scopes(fx->nc, a, 1), NETCFG_OK);
    assert_int_equal(netcfg_set_discoverable(fx->nc, 0), NETCFG_OK);
    assert_int_equal(fx->hook_calls, 0);
}

/* --- error strings ------------------------------------------------------- */

static void test_every_error_has_its_own_message(void **state)
{
    (void)state;
    const int errors[] = { NETCFG_OK, NETCFG_E_TOO_MANY, NETCFG_E_INVALID, NETCFG_E_FIXED,
                           NETCFG_E_NO_SCOPE, NETCFG_E_STORE, NETCFG_E_NOMEM };
    const size_t n = sizeof errors / sizeof errors[0];
    for (size_t i = 0; i < n; i++) {
        const char *msg = netcfg_strerror(errors[i]);
        assert_non_null(msg);
        assert_string_not_equal(msg, netcfg_strerror(-1000));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(msg, netcfg_strerror(errors[j]));
    }
}

/* --- regressions -------------------------------------------------------- */

/* Regression (the old behaviour): netcfg_open adds default scopes without checking them against
 * the fixed ones (netcfg.c, default loop in netcfg_open), so a default equal
 * to a fixed scope is listed twice on first start (once as fixed, once as
 * configurable, and that copy cannot be removed: NETCFG_E_FIXED), while
 * load() drops it after a restart. */
static void test_default_equal_to_fixed_scope_is_listed_once(void **state)
{
    struct temp_dir *t = *state;
    const char *defaults[] = { TYPE_SCOPE, NAME_SCOPE };
    struct netcfg *nc = NULL;
    assert_int_equal(netcfg_open(&nc, t->path, fixed_scopes, 2, defaults, 2), NETCFG_OK);
    struct netcfg_scope *scopes;
    size_t n;
    assert_int_equal(netcfg_get_scopes(nc, &scopes, &n), NETCFG_OK);
    size_t type_count = 0;
    for (size_t i = 0; i < n; i++)
        type_count += strcmp(scopes[i].uri, TYPE_SCOPE) == 0;
    free(scopes);
    netcfg_close(nc);
    if (type_count != 1)
        fail_msg("%s listed %zu times on first open (once after a restart)", TYPE_SCOPE, type_count);
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

static const struct CMUnitTest regular_tests[] = {
    FIXTURE_TEST(test_first_open_lists_fixed_then_default_scopes),
    FIXTURE_TEST(test_first_open_persists_file_0600),
    FIXTURE_TEST(test_first_open_skips_invalid_and_duplicate_defaults),
    FIXTURE_TEST(test_open_in_missing_directory_fails),
    cmocka_unit_test(test_scope_validation),
    FIXTURE_TEST(test_set_replaces_configurable_scopes_only),
    FIXTURE_TEST(test_set_ignores_duplicates_and_fixed_scopes),
    FIXTURE_TEST(test_set_to_empty_list_keeps_fixed_scopes),
    FIXTURE_TEST(test_set_accepts_exactly_max_scopes),
    FIXTURE_TEST(test_set_of_too_many_scopes_changes_nothing),
    FIXTURE_TEST(test_set_with_one_invalid_uri_changes_nothing),
    FIXTURE_TEST(test_add_appends_and_ignores_present_scopes),
    FIXTURE_TEST(test_add_beyond_max_changes_nothing),
    FIXTURE_TEST(test_add_of_more_than_max_at_once_is_too_many),
    FIXTURE_TEST(test_add_with_one_invalid_uri_changes_nothing),
    FIXTURE_TEST(test_remove_deletes_configurable_scopes_keeping_order),
    FIXTURE_TEST(test_remove_of_fixed_scope_is_refused),
    FIXTURE_TEST(test_remove_of_absent_scope_is_refused),
    FIXTURE_TEST(test_failed_multi_remove_leaves_all_scopes),
    FIXTURE_TEST(test_scopes_and_mode_persist_across_reopen),
    FIXTURE_TEST(test_scope_changes_keep_the_discovery_mode),
    FIXTURE_TEST(test_stored_file_is_cleaned_on_load),
    FIXTURE_TEST(test_empty_scope_list_persists_without_defaults_coming_back),
    FIXTURE_TEST(test_xml_special_characters_survive_reopen),
    FIXTURE_TEST(test_corrupt_file_refuses_open_and_is_kept),
    FIXTURE_TEST(test_failed_save_changes_nothing),
    FIXTURE_TEST(test_change_hook_runs_once_per_successful_change),
    FIXTURE_TEST(test_cleared_change_hook_is_not_called),
    cmocka_unit_test(test_every_error_has_its_own_message),
    cmocka_unit_test_setup_teardown(test_default_equal_to_fixed_scope_is_listed_once, temp_dir_setup,
                                    temp_dir_teardown),
};

UNIT_MAIN("netcfg", regular_tests)
