/* Unit tests for the access policy: the operation table (sorted, complete
 * against the generated dispatcher, classes of known operations) and the
 * level -> class matrix of the ONVIF default access policy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "opennvt/accesspolicy.h"
#include "unit_helpers.h"

static enum access_class class_of(const char *op)
{
    enum access_class c = ACCESS_CLASS_COUNT;
    if (accesspolicy_class_of(op, &c) != 0)
        fail_msg("%s is not in the access table", op);
    return c;
}

static void test_table_is_sorted_and_unique(void **state)
{
    (void)state;
    size_t n = accesspolicy_table_size();
    assert_true(n > 300);
    for (size_t i = 1; i < n; i++)
        if (strcmp(accesspolicy_table_operation(i - 1), accesspolicy_table_operation(i)) >= 0)
            fail_msg("table out of order at %s / %s", accesspolicy_table_operation(i - 1), accesspolicy_table_operation(i));
    assert_null(accesspolicy_table_operation(n));
}

/* Every operation the generated soap_serve_request dispatches must have an
 * entry, or the gate would refuse a working handler (or, worse, a later
 * table edit would forget a new one). */
static void test_every_generated_operation_has_a_class(void **state)
{
    (void)state;
    const char *path = getenv("OPENNVT_GENERATED_SERVER");
    if (!path)
        fail_msg("OPENNVT_GENERATED_SERVER is not set (path of the generated soapServer.c)");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char line[1024];
    size_t seen = 0, missing = 0;
    static const char marker[] = "soap_match_tag(soap, soap->tag, \"";
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, marker);
        if (!p)
            continue;
        p += sizeof marker - 1;
        char *end = strchr(p, '"');
        if (!end)
            continue;
        *end = '\0';
        enum access_class c;
        seen++;
        if (accesspolicy_class_of(p, &c) != 0) {
            print_message("missing from the access table: %s\n", p);
            missing++;
        }
    }
    fclose(f);
    assert_true(seen > 300);
    assert_int_equal(missing, 0);
}

static void test_classes_of_sample_operations(void **state)
{
    (void)state;
    assert_int_equal(class_of("tds:GetSystemDateAndTime"), ACCESS_PRE_AUTH);
    assert_int_equal(class_of("tds:GetServices"), ACCESS_PRE_AUTH);
    assert_int_equal(class_of("tds:GetDeviceInformation"), ACCESS_READ_SYSTEM);
    assert_int_equal(class_of("tds:GetUsers"), ACCESS_READ_SYSTEM_SECRET);
    assert_int_equal(class_of("tds:CreateUsers"), ACCESS_WRITE_SYSTEM);
    assert_int_equal(class_of("tds:SetIPAddressFilter"), ACCESS_WRITE_SYSTEM);
    assert_int_equal(class_of("tds:SystemReboot"), ACCESS_UNRECOVERABLE);
    assert_int_equal(class_of("tds:SetSystemFactoryDefault"), ACCESS_UNRECOVERABLE);
    assert_int_equal(class_of("trt:GetStreamUri"), ACCESS_READ_MEDIA);
    assert_int_equal(class_of("rtsp:Stream"), ACCESS_READ_MEDIA);
    assert_int_equal(class_of("tds:GetSystemLog"), ACCESS_READ_SYSTEM_SECRET);
    assert_int_equal(class_of("wsdd:Probe"), ACCESS_NEVER);
    enum access_class c;
    assert_int_equal(accesspolicy_class_of("tds:NoSuchOperation", &c), -1);
    assert_int_equal(accesspolicy_class_of("GetUsers", &c), -1);
    assert_int_equal(accesspolicy_class_of(NULL, &c), -1);
}

/* The ONVIF Core default access policy table, row by row. */
static void test_default_policy_matrix(void **state)
{
    (void)state;
    static const char expected[ACCESS_NEVER][4] = {
        /*                         Admin Oper User Anon */
        [ACCESS_PRE_AUTH] =              { 1, 1, 1, 1 },
        [ACCESS_READ_SYSTEM] =           { 1, 1, 1, 0 },
        [ACCESS_READ_SYSTEM_SENSITIVE] = { 1, 1, 0, 0 },
        [ACCESS_READ_SYSTEM_SECRET] =    { 1, 0, 0, 0 },
        [ACCESS_WRITE_SYSTEM] =          { 1, 0, 0, 0 },
        [ACCESS_UNRECOVERABLE] =         { 1, 0, 0, 0 },
        [ACCESS_READ_MEDIA] =            { 1, 1, 1, 0 },
        [ACCESS_ACTUATE] =               { 1, 1, 0, 0 },
    };
    for (int cls = 0; cls < ACCESS_NEVER; cls++)
        for (int level = 0; level <= USER_LEVEL_ANONYMOUS; level++)
            if (accesspolicy_level_may((enum user_level)level, (enum access_class)cls, 0) != expected[cls][level])
                fail_msg("level %d, class %s", level, accesspolicy_class_name((enum access_class)cls));
}

static void test_never_is_never_allowed(void **state)
{
    (void)state;
    for (int level = 0; level <= USER_LEVEL_ANONYMOUS; level++)
        assert_false(accesspolicy_level_may((enum user_level)level, ACCESS_NEVER, ~0u));
    assert_false(accesspolicy_level_may((enum user_level)7, ACCESS_PRE_AUTH, 0));
}

static void test_anonymous_grants_are_limited_to_media(void **state)
{
    (void)state;
    assert_true(accesspolicy_level_may(USER_LEVEL_ANONYMOUS, ACCESS_READ_MEDIA, ACCESS_BIT(ACCESS_READ_MEDIA)));
    /* Even a configuration asking for everything grants media viewing only. */
    assert_false(accesspolicy_level_may(USER_LEVEL_ANONYMOUS, ACCESS_READ_SYSTEM, ~0u));
    assert_false(accesspolicy_level_may(USER_LEVEL_ANONYMOUS, ACCESS_WRITE_SYSTEM, ~0u));
    /* Grants for anonymous do not change other levels. */
    assert_false(accesspolicy_level_may(USER_LEVEL_USER, ACCESS_ACTUATE, ~0u));
}

static const struct CMUnitTest regular_tests[] = {
    cmocka_unit_test(test_table_is_sorted_and_unique),
    cmocka_unit_test(test_every_generated_operation_has_a_class),
    cmocka_unit_test(test_classes_of_sample_operations),
    cmocka_unit_test(test_default_policy_matrix),
    cmocka_unit_test(test_never_is_never_allowed),
    cmocka_unit_test(test_anonymous_grants_are_limited_to_media),
};

UNIT_MAIN("accesspolicy", regular_tests)
