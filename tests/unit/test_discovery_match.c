/* Unit tests for the WS-Discovery matching rules: one probe scope against one
 * device scope (RFC 3986 segment-wise prefix, strcmp0, unknown rules), lists
 * of probe scopes against the device's scope list, and probe types. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "opennvt/discovery.h"

#define NAME_SCOPE "onvif://www.onvif.org/name/Cam"
#define DEVICE_SCOPES                                   \
    "onvif://www.onvif.org/type/Network_Video_Transmitter " \
    "onvif://www.onvif.org/hardware/OpenNVT-Linux "     \
    "onvif://www.onvif.org/name/Cam "                   \
    "onvif://www.onvif.org/location/Office/Floor2"

struct scope_case {
    const char *probe;
    const char *device;
    int expected;
};

static void check_cases(const char *match_by, const struct scope_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = discovery_scope_matches(match_by, cases[i].probe, cases[i].device);
        if (got != cases[i].expected)
            fail_msg("probe '%s' vs device '%s': got %d, expected %d", cases[i].probe, cases[i].device, got,
                     cases[i].expected);
    }
}

/* --- one scope, RFC 3986 rule -------------------------------------------- */

static void test_rfc3986_segment_prefix_matches(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "onvif://www.onvif.org/name/Cam", NAME_SCOPE, 1 },      /* equal */
        { "onvif://www.onvif.org/name", NAME_SCOPE, 1 },          /* whole-segment prefix */
        { "onvif://www.onvif.org", NAME_SCOPE, 1 },               /* authority only */
        { "onvif://www.onvif.org/", NAME_SCOPE, 1 },
        { "onvif://www.onvif.org/location/Office", "onvif://www.onvif.org/location/Office/Floor2", 1 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_partial_segment_does_not_match(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "onvif://www.onvif.org/na", NAME_SCOPE, 0 },
        { "onvif://www.onvif.org/name/Ca", NAME_SCOPE, 0 },
        { "onvif://www.onvif.org/name/Cam2", NAME_SCOPE, 0 },
        { "onvif://www.onvif.org/name/Cam/extra", NAME_SCOPE, 0 }, /* probe longer than device */
        { "onvif://www.onvif.org/location", NAME_SCOPE, 0 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_scheme_and_authority_are_case_insensitive(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "ONVIF://WWW.ONVIF.ORG/name/Cam", NAME_SCOPE, 1 },
        { "Onvif://Www.Onvif.Org/name", NAME_SCOPE, 1 },
        { "onvif://www.onvif.org/name", "ONVIF://www.ONVIF.org/name/Cam", 1 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_path_is_case_sensitive(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "onvif://www.onvif.org/Name/Cam", NAME_SCOPE, 0 },
        { "onvif://www.onvif.org/name/cam", NAME_SCOPE, 0 },
        { "onvif://www.onvif.org/NAME", NAME_SCOPE, 0 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_trailing_slash_is_tolerated(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "onvif://www.onvif.org/name/", NAME_SCOPE, 1 },
        { "onvif://www.onvif.org/name/Cam/", NAME_SCOPE, 1 },
        { "onvif://www.onvif.org/name", "onvif://www.onvif.org/name/", 1 },
        { "onvif://www.onvif.org/na/", NAME_SCOPE, 0 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_different_scheme_or_authority_does_not_match(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "http://www.onvif.org/name/Cam", NAME_SCOPE, 0 },
        { "onvif://www.onvif.com/name/Cam", NAME_SCOPE, 0 },
        { "onvif://www.onvif.org.evil/name/Cam", NAME_SCOPE, 0 },
        { "onvif://www.onvif/name/Cam", NAME_SCOPE, 0 },           /* authority prefix is not enough */
        { "onvif://www.onvif.org:80/name/Cam", NAME_SCOPE, 0 },
        { "onvif:", NAME_SCOPE, 0 },
        { "name/Cam", NAME_SCOPE, 0 },                             /* no scheme at all */
        { "", NAME_SCOPE, 0 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_query_and_fragment_are_not_compared(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "onvif://www.onvif.org/name?anything", NAME_SCOPE, 1 },
        { "onvif://www.onvif.org/name#frag", NAME_SCOPE, 1 },
        { "onvif://www.onvif.org/name/Cam", "onvif://www.onvif.org/name/Cam?x=1", 1 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_works_for_uris_without_authority(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { "urn:a/b", "urn:a/b/c", 1 },
        { "URN:a", "urn:a/b", 1 },
        { "urn:a/b", "urn:a/bc", 0 },
        { "urn:x", "urn:a/b", 0 },
    };
    check_cases(NULL, cases, sizeof cases / sizeof cases[0]);
}

static void test_rfc3986_is_the_default_rule(void **state)
{
    (void)state;
    const char *spellings[] = { NULL, "", DISCOVERY_MATCH_RFC3986 };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(discovery_scope_matches(spellings[i], "onvif://www.onvif.org/name", NAME_SCOPE), 1);
        assert_int_equal(discovery_scope_matches(spellings[i], "onvif://www.onvif.org/na", NAME_SCOPE), 0);
    }
}

/* --- one scope, strcmp0 and unknown rules -------------------------------- */

static void test_strcmp0_requires_exact_equality(void **state)
{
    (void)state;
    static const struct scope_case cases[] = {
        { NAME_SCOPE, NAME_SCOPE, 1 },
        { "onvif://www.onvif.org/name", NAME_SCOPE, 0 },           /* prefix is not enough */
        { "ONVIF://www.onvif.org/name/Cam", NAME_SCOPE, 0 },       /* case-sensitive throughout */
        { "onvif://www.onvif.org/name/Cam/", NAME_SCOPE, 0 },
    };
    check_cases(DISCOVERY_MATCH_STRCMP0, cases, sizeof cases / sizeof cases[0]);
}

static void test_unknown_rule_is_reported(void **state)
{
    (void)state;
    assert_int_equal(discovery_scope_matches("http://schemas.xmlsoap.org/ws/2005/04/discovery/ldap",
                                             NAME_SCOPE, NAME_SCOPE),
                     -1);
    assert_int_equal(discovery_scope_matches("urn:made-up", NAME_SCOPE, NAME_SCOPE), -1);
    /* Rules are URIs compared exactly. */
    assert_int_equal(discovery_scope_matches(DISCOVERY_MATCH_STRCMP0 "/", NAME_SCOPE, NAME_SCOPE), -1);
}

/* --- lists of scopes ----------------------------------------------------- */

static void test_scopes_match_when_every_probe_scope_matches(void **state)
{
    (void)state;
    assert_int_equal(discovery_scopes_match(NULL, "onvif://www.onvif.org/name", DEVICE_SCOPES), 1);
    assert_int_equal(discovery_scopes_match(NULL,
                                            "onvif://www.onvif.org/name/Cam "
                                            "onvif://www.onvif.org/location/Office "
                                            "onvif://www.onvif.org/type",
                                            DEVICE_SCOPES),
                     1);
    /* Separators are any whitespace, repeated. */
    assert_int_equal(discovery_scopes_match(NULL,
                                            "\n  onvif://www.onvif.org/name\t\t onvif://www.onvif.org/hardware  ",
                                            DEVICE_SCOPES),
                     1);
}

static void test_scopes_do_not_match_when_one_probe_scope_fails(void **state)
{
    (void)state;
    assert_int_equal(discovery_scopes_match(NULL,
                                            "onvif://www.onvif.org/name/Cam onvif://www.onvif.org/location/Garage",
                                            DEVICE_SCOPES),
                     0);
    assert_int_equal(discovery_scopes_match(NULL,
                                            "onvif://www.onvif.org/location/Garage onvif://www.onvif.org/name/Cam",
                                            DEVICE_SCOPES),
                     0);
    assert_int_equal(discovery_scopes_match(NULL, "onvif://www.onvif.org/name", ""), 0);
}

static void test_empty_probe_scopes_match(void **state)
{
    (void)state;
    assert_int_equal(discovery_scopes_match(NULL, "", DEVICE_SCOPES), 1);
    assert_int_equal(discovery_scopes_match(NULL, NULL, DEVICE_SCOPES), 1);
    assert_int_equal(discovery_scopes_match(NULL, " \t\n ", DEVICE_SCOPES), 1);
    assert_int_equal(discovery_scopes_match(DISCOVERY_MATCH_STRCMP0, "", DEVICE_SCOPES), 1);
}

static void test_scopes_match_with_strcmp0(void **state)
{
    (void)state;
    assert_int_equal(discovery_scopes_match(DISCOVERY_MATCH_STRCMP0, "onvif://www.onvif.org/name/Cam", DEVICE_SCOPES),
                     1);
    assert_int_equal(discovery_scopes_match(DISCOVERY_MATCH_STRCMP0, "onvif://www.onvif.org/name", DEVICE_SCOPES), 0);
}

static void test_scopes_match_with_unknown_rule_is_reported(void **state)
{
    (void)state;
    assert_int_equal(discovery_scopes_match("urn:made-up", "onvif://www.onvif.org/name", DEVICE_SCOPES), -1);
    assert_int_equal(discovery_scopes_match("urn:made-up", "", DEVICE_SCOPES), -1);
}

static void test_overlong_probe_scope_does_not_match(void **state)
{
    (void)state;
    char probe[700];
    int n = snprintf(probe, sizeof probe, "onvif://www.onvif.org/name/");
    memset(probe + n, 'x', sizeof probe - 1 - (size_t)n);
    probe[sizeof probe - 1] = '\0';
    char device[800];
    snprintf(device, sizeof device, "%s %s", DEVICE_SCOPES, probe);
    assert_int_equal(discovery_scopes_match(NULL, probe, device), 0);
}

/* --- types --------------------------------------------------------------- */

static void test_types_match(void **state)
{
    (void)state;
    assert_int_equal(discovery_types_match("", DISCOVERY_TYPES), 1);
    assert_int_equal(discovery_types_match(NULL, DISCOVERY_TYPES), 1);
    assert_int_equal(discovery_types_match("  ", DISCOVERY_TYPES), 1);
    assert_int_equal(discovery_types_match("tds:Device", DISCOVERY_TYPES), 1);
    assert_int_equal(discovery_types_match("tdn:NetworkVideoTransmitter", DISCOVERY_TYPES), 1);
    assert_int_equal(discovery_types_match("tds:Device tdn:NetworkVideoTransmitter", DISCOVERY_TYPES), 1);
}

static void test_types_do_not_match_unknown_or_partial_names(void **state)
{
    (void)state;
    const char *probes[] = {
        "tds:Unknown",
        "tds:Dev",
        "tds:DeviceX",
        "ds:Device",
        "tds:device",
        "tds:Device tds:Unknown",           /* every listed type must be ours */
        "tds:Unknown tdn:NetworkVideoTransmitter",
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        if (discovery_types_match(probes[i], DISCOVERY_TYPES) != 0)
            fail_msg("probe types '%s' matched", probes[i]);
    assert_int_equal(discovery_types_match("tds:Device", ""), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3986_segment_prefix_matches),
        cmocka_unit_test(test_rfc3986_partial_segment_does_not_match),
        cmocka_unit_test(test_rfc3986_scheme_and_authority_are_case_insensitive),
        cmocka_unit_test(test_rfc3986_path_is_case_sensitive),
        cmocka_unit_test(test_rfc3986_trailing_slash_is_tolerated),
        cmocka_unit_test(test_rfc3986_different_scheme_or_authority_does_not_match),
        cmocka_unit_test(test_rfc3986_query_and_fragment_are_not_compared),
        cmocka_unit_test(test_rfc3986_works_for_uris_without_authority),
        cmocka_unit_test(test_rfc3986_is_the_default_rule),
        cmocka_unit_test(test_strcmp0_requires_exact_equality),
        cmocka_unit_test(test_unknown_rule_is_reported),
        cmocka_unit_test(test_scopes_match_when_every_probe_scope_matches),
        cmocka_unit_test(test_scopes_do_not_match_when_one_probe_scope_fails),
        cmocka_unit_test(test_empty_probe_scopes_match),
        cmocka_unit_test(test_scopes_match_with_strcmp0),
        cmocka_unit_test(test_scopes_match_with_unknown_rule_is_reported),
        cmocka_unit_test(test_overlong_probe_scope_does_not_match),
        cmocka_unit_test(test_types_match),
        cmocka_unit_test(test_types_do_not_match_unknown_or_partial_names),
    };
    return cmocka_run_group_tests_name("discovery_match", tests, NULL, NULL);
}
