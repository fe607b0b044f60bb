/* Unit tests for the ItemFilter content dialect: the forms clients send
 * parse and match; everything else is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "opennvt/itemfilter.h"

#include <stdio.h>
#include <string.h>

static struct event_message motion(const char *token, const char *state)
{
    struct event_message m = { .topic = EVENT_TOPIC_MOTION_ALARM, .n_source = 1, .n_data = 1 };
    snprintf(m.source[0].name, sizeof m.source[0].name, "VideoSourceToken");
    snprintf(m.source[0].value, sizeof m.source[0].value, "%s", token);
    snprintf(m.data[0].name, sizeof m.data[0].name, "State");
    snprintf(m.data[0].value, sizeof m.data[0].value, "%s", state);
    return m;
}

static int matches(const char *expr, const struct event_message *m)
{
    struct itemfilter f;
    assert_int_equal(itemfilter_parse(expr, &f), 0);
    return itemfilter_matches(&f, m);
}

static void test_client_forms(void **state)
{
    (void)state;
    struct event_message on = motion("VideoSource_1", "true"), off = motion("VideoSource_1", "false"),
                         other = motion("VideoSource_2", "true");
    const char *by_source = "boolean((//tt:SimpleItem[@Name=\"VideoSourceToken\" and @Value=\"VideoSource_1\"]))";
    assert_true(matches(by_source, &on));
    assert_false(matches(by_source, &other));
    assert_true(matches("boolean(//tt:Data/tt:SimpleItem[@Name='State' and @Value='true'])", &on));
    assert_false(matches("boolean(//tt:Data/tt:SimpleItem[@Name='State' and @Value='true'])", &off));
    /* scope: State is a data item, not a source item */
    assert_false(matches("boolean(//tt:Source/tt:SimpleItem[@Name=\"State\"])", &on));
    assert_true(matches("boolean(//tt:SimpleItem[@Name=\"State\"])", &on));
    assert_true(matches("not(boolean(//tt:SimpleItem[@Name=\"State\" and @Value=\"false\"]))", &on));
    assert_true(matches("boolean(//tt:SimpleItem[@Name=\"VideoSourceToken\" and @Value=\"VideoSource_1\"]) and "
                        "boolean(//tt:SimpleItem[@Name=\"State\" and @Value=\"true\"])", &on));
    assert_false(matches("boolean(//tt:SimpleItem[@Name=\"VideoSourceToken\" and @Value=\"VideoSource_1\"]) and "
                         "boolean(//tt:SimpleItem[@Name=\"State\" and @Value=\"true\"])", &off));
    assert_true(matches("boolean(//tt:SimpleItem[@Name=\"X\"]) or boolean(//tt:SimpleItem[@Name=\"State\"])", &off));
    assert_true(matches("", &off));
    assert_true(matches("  ", &off));
}

static void test_refused(void **state)
{
    (void)state;
    struct itemfilter f;
    const char *bad[] = {
        "boolean(//tt:SimpleItem[@Name=\"A\"]) and boolean(//tt:SimpleItem[@Name=\"B\"]) or "
        "boolean(//tt:SimpleItem[@Name=\"C\"])",
        "boolean(//tt:SimpleItem[@Name=\"A\"]",
        "boolean(//tt:ElementItem[@Name=\"A\"])",
        "count(//tt:SimpleItem) > 1",
        "boolean(//tt:SimpleItem[@Name=A])",
        "boolean(//tt:SimpleItem[@Name=\"A\"]) garbage",
        "not(not(boolean(//tt:SimpleItem[@Name=\"A\"])))",
        "boolean(//tt:SimpleItem[@Name=\"unterminated])",
        NULL,
    };
    for (int i = 0; bad[i]; i++)
        assert_int_equal(itemfilter_parse(bad[i], &f), -1);
    assert_int_equal(itemfilter_parse(NULL, &f), -1);
    char many[2048] = "";
    for (int i = 0; i < ITEMFILTER_MAX_TERMS + 1; i++)
        strcat(many, i ? " and boolean(//tt:SimpleItem[@Name=\"A\"])" : "boolean(//tt:SimpleItem[@Name=\"A\"])");
    assert_int_equal(itemfilter_parse(many, &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_forms),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
