/* Unit tests for events: the topic table, ConcreteSet filters, property
 * states (Initialized / Changed / unchanged dropped / Deleted, replay on
 * subscribe and SetSynchronizationPoint), pull semantics (immediate, woken,
 * timeout, MessageLimit, BUSY), queue overflow, subscription limits and
 * lifetimes on a fake clock, close with a blocked pull, and concurrent
 * producers and consumers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "opennvt/events.h"
#include "opennvt/itemfilter.h"
#include "unit_helpers.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define T0 1767225600000LL          /* 2026-01-01T00:00:00Z */

/* --- fake clock and fixture ---------------------------------------------------- */

static _Atomic int64_t fake_now = T0;

static int64_t fake_clock(void)
{
    return atomic_load(&fake_now);
}

static void advance_ms(int64_t ms)
{
    atomic_fetch_add(&fake_now, ms);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

struct fixture {
    struct events_settings s;
    struct events *e;
};

static int open_with(void **state, int max_subs, int queue_max, int max_term_s, int64_t (*clock)(void))
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    atomic_store(&fake_now, T0);
    fx->s = (struct events_settings){ .max_subscriptions = max_subs, .queue_max = queue_max,
                                      .max_termination_s = max_term_s, .now_ms = clock };
    if (events_open(&fx->e, &fx->s) != EVENTS_OK) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fixture_setup(void **state)
{
    return open_with(state, 4, 64, 3600, fake_clock);
}

static int small_queue_setup(void **state)
{
    return open_with(state, 4, 4, 3600, fake_clock);
}

static int big_queue_setup(void **state)
{
    return open_with(state, 8, 4096, 3600, fake_clock);
}

static int real_clock_setup(void **state)
{
    return open_with(state, 4, 64, 3600, NULL);
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx) {
        events_close(fx->e);
        free(fx);
    }
    return 0;
}

/* --- helpers ------------------------------------------------------------------- */

static uint64_t subscribe_ok(struct events *e, const char *filter)
{
    uint64_t id = 0;
    assert_int_equal(events_subscribe(e, filter, fake_clock() + 60000, &id), EVENTS_OK);
    assert_true(id != 0);
    return id;
}

static int pull_now(struct events *e, uint64_t id, struct event_message *out, int max)
{
    return events_pull(e, id, 0, out, max, NULL);
}

static void publish_motion(struct events *e, const char *source, const char *state)
{
    events_publish_simple(e, EVENT_TOPIC_MOTION_ALARM, "VideoSourceToken", source, "State", state);
}

static void publish_auth(struct events *e, const char *user, int seq)
{
    char ip[32];
    snprintf(ip, sizeof ip, "%d", seq);
    events_publish_simple(e, EVENT_TOPIC_AUTH_FAILED, "User", user, "SourceIP", ip);
}

static void publish_key(struct events *e, const char *key, const char *new_status, const char *old_status)
{
    struct event_message m;
    memset(&m, 0, sizeof m);
    m.topic = EVENT_TOPIC_KEY_STATUS;
    m.n_source = 1;
    strcpy(m.source[0].name, "KeyID");
    strcpy(m.source[0].value, key);
    strcpy(m.data[0].name, "NewStatus");
    strcpy(m.data[0].value, new_status);
    m.n_data = 1;
    if (old_status) {
        strcpy(m.data[1].name, "OldStatus");
        strcpy(m.data[1].value, old_status);
        m.n_data = 2;
    }
    events_publish(e, &m);
}

/* One of each topic, properties with fresh sources. */
static void publish_one_of_each(struct events *e, const char *tag)
{
    publish_motion(e, tag, "true");
    events_publish_simple(e, EVENT_TOPIC_GLOBAL_SCENE_CHANGE, "VideoSourceToken", tag, "State", "true");
    events_publish_simple(e, EVENT_TOPIC_PROFILE_CHANGED, "Token", "prof1", NULL, NULL);
    struct event_message m;
    memset(&m, 0, sizeof m);
    m.topic = EVENT_TOPIC_CONFIGURATION_CHANGED;
    m.n_source = 2;
    strcpy(m.source[0].name, "Token");
    strcpy(m.source[0].value, "vsc1");
    strcpy(m.source[1].name, "Type");
    strcpy(m.source[1].value, "VideoSource");
    events_publish(e, &m);
    publish_auth(e, "admin", 1);
    publish_key(e, tag, "ok", "generating");
    events_publish_simple(e, EVENT_TOPIC_CERT_EXPIRY, "CertificationPathID", "cp1", "DaysLeft", "7");
}

static unsigned topics_of(const struct event_message *m, int n)
{
    unsigned mask = 0;
    for (int i = 0; i < n; i++)
        mask |= 1u << m[i].topic;
    return mask;
}

static const char *data_value(const struct event_message *m, const char *name)
{
    for (int i = 0; i < m->n_data; i++)
        if (strcmp(m->data[i].name, name) == 0)
            return m->data[i].value;
    return NULL;
}

/* Waits (bounded) until a pull is blocked on id: a probe with timeout 0
 * answers BUSY then. */
static void wait_until_blocked(struct events *e, uint64_t id)
{
    struct event_message m;
    for (int i = 0; i < 2000; i++) {
        int rc = events_pull(e, id, 0, &m, 1, NULL);
        if (rc == EVENTS_E_BUSY)
            return;
        assert_int_equal(rc, 0);
        sleep_ms(1);
    }
    fail_msg("the pull never blocked");
}

struct puller {
    struct events *e;
    uint64_t id;
    int timeout_ms;
    int rc;
    double returned_at;
    struct event_message m[8];
};

static void *puller_main(void *arg)
{
    struct puller *p = arg;
    p->rc = events_pull(p->e, p->id, p->timeout_ms, p->m, (int)N_OF(p->m), NULL);
    p->returned_at = mono_ms();
    return NULL;
}

/* --- topic table --------------------------------------------------------------- */

struct expected_item {
    const char *name;
    enum event_value_type type;
    const char *onvif_type;
};

static void assert_items(const struct event_item_decl *got, int n_got, const struct expected_item *want, int n_want)
{
    assert_int_equal(n_got, n_want);
    for (int i = 0; i < n_want; i++) {
        assert_string_equal(got[i].name, want[i].name);
        assert_int_equal(got[i].type, want[i].type);
        assert_string_equal(got[i].onvif_type, want[i].onvif_type);
        assert_true(strlen(got[i].name) <= EVENT_ITEM_NAME_MAX);
    }
}

static void test_topic_table_shape(void **state)
{
    (void)state;
    size_t n = 0;
    const struct event_topic *t = events_topics(&n);
    assert_non_null(t);
    assert_int_equal(n, EVENT_TOPIC_COUNT);
    assert_ptr_equal(events_topics(NULL), t);

    static const char *const paths[EVENT_TOPIC_COUNT] = {
        "tns1:VideoSource/MotionAlarm",
        "tns1:VideoSource/GlobalSceneChange/ImagingService",
        "tns1:Media/ProfileChanged",
        "tns1:Media/ConfigurationChanged",
        "tns1:Device/SecurityPolicy/AuthFailed",
        "tns1:Advancedsecurity/Keystore/KeyStatus",
        "opennvt:Security/CertificateExpiry",
    };
    static const int property[EVENT_TOPIC_COUNT] = { 1, 1, 0, 0, 0, 1, 0 };
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t[i].path, paths[i]);
        assert_int_equal(t[i].property, property[i]);
        assert_true(t[i].n_source >= 1 && t[i].n_source <= EVENT_MAX_ITEMS);
        assert_true(t[i].n_data >= 0 && t[i].n_data <= EVENT_MAX_ITEMS);
        assert_true(events_filter_valid(t[i].path));
        for (size_t j = 0; j < n; j++) {
            if (i == j)
                continue;
            assert_string_not_equal(t[i].path, t[j].path);
            /* No topic is an inner node of another: every topic is a leaf. */
            size_t li = strlen(t[i].path);
            assert_false(strncmp(t[i].path, t[j].path, li) == 0 && t[j].path[li] == '/');
        }
    }

    const struct expected_item vs[] = { { "VideoSourceToken", EVENT_T_TOKEN, "tt:ReferenceToken" } };
    const struct expected_item st[] = { { "State", EVENT_T_BOOLEAN, "xs:boolean" } };
    assert_items(t[EVENT_TOPIC_MOTION_ALARM].source, t[EVENT_TOPIC_MOTION_ALARM].n_source, vs, 1);
    assert_items(t[EVENT_TOPIC_MOTION_ALARM].data, t[EVENT_TOPIC_MOTION_ALARM].n_data, st, 1);
    assert_items(t[EVENT_TOPIC_GLOBAL_SCENE_CHANGE].source, t[EVENT_TOPIC_GLOBAL_SCENE_CHANGE].n_source, vs, 1);
    assert_items(t[EVENT_TOPIC_GLOBAL_SCENE_CHANGE].data, t[EVENT_TOPIC_GLOBAL_SCENE_CHANGE].n_data, st, 1);

    const struct expected_item tok[] = { { "Token", EVENT_T_TOKEN, "tt:ReferenceToken" },
                                         { "Type", EVENT_T_STRING, "xs:string" } };
    assert_items(t[EVENT_TOPIC_PROFILE_CHANGED].source, t[EVENT_TOPIC_PROFILE_CHANGED].n_source, tok, 1);
    assert_int_equal(t[EVENT_TOPIC_PROFILE_CHANGED].n_data, 0);
    assert_items(t[EVENT_TOPIC_CONFIGURATION_CHANGED].source, t[EVENT_TOPIC_CONFIGURATION_CHANGED].n_source, tok, 2);
    assert_int_equal(t[EVENT_TOPIC_CONFIGURATION_CHANGED].n_data, 0);

    const struct expected_item nic[] = { { "NetworkInterface", EVENT_T_TOKEN, "tt:ReferenceToken" } };
    const struct expected_item ip[] = { { "SourceIPv4", EVENT_T_STRING, "tt:IPv4Address" },
                                        { "SourceIPv6", EVENT_T_STRING, "tt:IPv6Address" } };
    assert_items(t[EVENT_TOPIC_AUTH_FAILED].source, t[EVENT_TOPIC_AUTH_FAILED].n_source, nic, 1);
    assert_items(t[EVENT_TOPIC_AUTH_FAILED].data, t[EVENT_TOPIC_AUTH_FAILED].n_data, ip, 2);

    const struct expected_item key[] = { { "KeyID", EVENT_T_STRING, "xs:string" } };
    const struct expected_item ks[] = { { "NewStatus", EVENT_T_STRING, "xs:string" },
                                        { "OldStatus", EVENT_T_STRING, "xs:string" } };
    assert_items(t[EVENT_TOPIC_KEY_STATUS].source, t[EVENT_TOPIC_KEY_STATUS].n_source, key, 1);
    assert_items(t[EVENT_TOPIC_KEY_STATUS].data, t[EVENT_TOPIC_KEY_STATUS].n_data, ks, 2);

    const struct expected_item cp[] = { { "CertificationPathID", EVENT_T_STRING, "xs:string" } };
    const struct expected_item days[] = { { "DaysLeft", EVENT_T_INT, "xs:int" } };
    assert_items(t[EVENT_TOPIC_CERT_EXPIRY].source, t[EVENT_TOPIC_CERT_EXPIRY].n_source, cp, 1);
    assert_items(t[EVENT_TOPIC_CERT_EXPIRY].data, t[EVENT_TOPIC_CERT_EXPIRY].n_data, days, 1);
}

static void test_every_error_has_its_own_message(void **state)
{
    (void)state;
    const int codes[] = { EVENTS_OK, EVENTS_E_NO_SUBSCRIPTION, EVENTS_E_FILTER, EVENTS_E_TIME,
                          EVENTS_E_FULL, EVENTS_E_ARGS, EVENTS_E_NOMEM, EVENTS_E_BUSY };
    for (size_t i = 0; i < N_OF(codes); i++) {
        assert_non_null(events_strerror(codes[i]));
        assert_string_not_equal(events_strerror(codes[i]), events_strerror(-1000));
        for (size_t j = i + 1; j < N_OF(codes); j++)
            assert_string_not_equal(events_strerror(codes[i]), events_strerror(codes[j]));
    }
    assert_string_equal(events_strerror(-1000), events_strerror(1));
}

static void test_open_settings(void **state)
{
    (void)state;
    struct events *e = NULL;
    assert_int_equal(events_open(&e, NULL), EVENTS_OK);
    /* Defaults: 32 subscriptions. */
    uint64_t ids[33];
    int64_t far = (int64_t)time(NULL) * 1000 + 600000;
    for (int i = 0; i < 32; i++)
        assert_int_equal(events_subscribe(e, NULL, far, &ids[i]), EVENTS_OK);
    assert_int_equal(events_subscribe(e, NULL, far, &ids[32]), EVENTS_E_FULL);
    events_close(e);

    struct events_settings s = { .queue_max = 1 << 20 };
    assert_int_equal(events_open(&e, &s), EVENTS_E_ARGS);
    assert_null(e);
    assert_int_equal(events_open(NULL, NULL), EVENTS_E_ARGS);
    events_close(NULL);
}

/* --- filters ------------------------------------------------------------------- */

static void test_filter_expressions(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "",
        "   ",
        "tns1:VideoSource/MotionAlarm",
        "tns1:VideoSource/GlobalSceneChange/ImagingService",
        "tns1:Media/ProfileChanged",
        "tns1:Device/SecurityPolicy/AuthFailed",
        "opennvt:Security/CertificateExpiry",
        "tns1:VideoSource//.",
        "tns1:Media//.",
        "tns1:Device//.",
        "tns1:Device/SecurityPolicy//.",
        "tns1:Advancedsecurity/Keystore//.",
        "tns1:VideoSource/GlobalSceneChange//.",
        "tns1:VideoSource/MotionAlarm//.",
        "opennvt:Security//.",
        "tns1:VideoSource//.|tns1:Media/ProfileChanged",
        "tns1:Media/ProfileChanged | tns1:Media/ConfigurationChanged",
        "\n  tns1:VideoSource//.\t|\ttns1:Advancedsecurity//.\n",
        "tns1:Media//.|tns1:Media//.",
    };
    static const char *const invalid[] = {
        "tns1:VideoSource",                     /* an inner node names no topic without "//." */
        "tns1:VideoSource/GlobalSceneChange",
        "tns1:VideoSource/",
        "tns1:VideoSource/Motion",
        "tns1:VideoSource/MotionAlarmX",
        "tns1:VideoSource/MotionAlarm/",
        "tns1:VideoSource/MotionAlarm/State",
        "tns1:Video//.",
        "tns1:VideoSource///.",
        "tns1:VideoSource//.//.",
        "tns1:VideoSource/MotionAlarm//",
        "tns1:VideoSource/MotionAlarm/.",
        "tns1://.",
        "//.",
        "|",
        "tns1:Media//.|",
        "|tns1:Media//.",
        "tns1:Media//.||tns1:Media/ProfileChanged",
        "tns1:Media/ Profile Changed",
        "tns1:media//.",
        "tt:VideoSource/MotionAlarm",
        "VideoSource/MotionAlarm",
        "tns1:*",
        "tns1:Media//.|garbage",
        "<tns1:Media/ProfileChanged>",
        "tns1:Media/ProfileChanged and more",
    };
    assert_true(events_filter_valid(NULL));
    for (size_t i = 0; i < N_OF(valid); i++)
        if (!events_filter_valid(valid[i]))
            fail_msg("refused: \"%s\"", valid[i]);
    for (size_t i = 0; i < N_OF(invalid); i++)
        if (events_filter_valid(invalid[i]))
            fail_msg("accepted: \"%s\"", invalid[i]);

    /* Length: up to EVENT_FILTER_MAX characters (blanks count). */
    char buf[EVENT_FILTER_MAX + 2];
    memset(buf, ' ', sizeof buf);
    memcpy(buf, "tns1:Media//.", 13);
    buf[EVENT_FILTER_MAX] = '\0';
    assert_true(events_filter_valid(buf));
    buf[EVENT_FILTER_MAX] = ' ';
    buf[EVENT_FILTER_MAX + 1] = '\0';
    assert_false(events_filter_valid(buf));

    /* A long list of alternatives within the limit is fine. */
    char list[EVENT_FILTER_MAX + 64] = "";
    while (strlen(list) + strlen("|tns1:Media/ProfileChanged") <= EVENT_FILTER_MAX)
        strcat(list, list[0] ? "|tns1:Media/ProfileChanged" : "tns1:Media/ProfileChanged");
    assert_true(events_filter_valid(list));
    strcat(list, "|tns1:Media/ProfileChanged");
    assert_false(events_filter_valid(list));
}

static void test_subscribe_with_bad_filter_creates_nothing(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = 0;
    assert_int_equal(events_subscribe(fx->e, "tns1:VideoSource", T0 + 60000, &id), EVENTS_E_FILTER);
    assert_int_equal(id, 0);
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.subscriptions, 0);
}

static void test_subscribe_all_versus_filtered(void **state)
{
    struct fixture *fx = *state;
    uint64_t all = subscribe_ok(fx->e, NULL);
    uint64_t empty = subscribe_ok(fx->e, "");
    uint64_t video = subscribe_ok(fx->e, "tns1:VideoSource//.");
    uint64_t pair = subscribe_ok(fx->e, "tns1:Media//. | tns1:Device/SecurityPolicy/AuthFailed");
    publish_one_of_each(fx->e, "a");

    struct event_message m[16];
    int n = pull_now(fx->e, all, m, 16);
    assert_int_equal(n, EVENT_TOPIC_COUNT);
    for (int i = 0; i < n; i++)
        assert_int_equal(m[i].topic, i);     /* published in table order */
    assert_int_equal(pull_now(fx->e, empty, m, 16), EVENT_TOPIC_COUNT);

    n = pull_now(fx->e, video, m, 16);
    assert_int_equal(n, 2);
    assert_int_equal(topics_of(m, n), (1u << EVENT_TOPIC_MOTION_ALARM) | (1u << EVENT_TOPIC_GLOBAL_SCENE_CHANGE));

    n = pull_now(fx->e, pair, m, 16);
    assert_int_equal(n, 3);
    assert_int_equal(topics_of(m, n), (1u << EVENT_TOPIC_PROFILE_CHANGED) |
                                          (1u << EVENT_TOPIC_CONFIGURATION_CHANGED) |
                                          (1u << EVENT_TOPIC_AUTH_FAILED));
    assert_int_equal(m[1].n_source, 2);
    assert_string_equal(m[1].source[1].name, "Type");
    assert_string_equal(m[1].source[1].value, "VideoSource");

    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.subscriptions, 4);
    assert_int_equal(st.published, EVENT_TOPIC_COUNT);
    assert_int_equal(st.delivered, 2 * EVENT_TOPIC_COUNT + 2 + 3);
    assert_int_equal(st.dropped, 0);
}

static void test_inner_node_subtrees(void **state)
{
    struct fixture *fx = *state;
    uint64_t gsc = subscribe_ok(fx->e, "tns1:VideoSource/GlobalSceneChange//.");
    uint64_t leaf = subscribe_ok(fx->e, "tns1:VideoSource/MotionAlarm//.");
    uint64_t vendor = subscribe_ok(fx->e, "opennvt:Security//.");
    publish_one_of_each(fx->e, "a");
    struct event_message m[16];
    assert_int_equal(pull_now(fx->e, gsc, m, 16), 1);
    assert_int_equal(m[0].topic, EVENT_TOPIC_GLOBAL_SCENE_CHANGE);
    assert_int_equal(pull_now(fx->e, leaf, m, 16), 1);
    assert_int_equal(m[0].topic, EVENT_TOPIC_MOTION_ALARM);
    assert_int_equal(pull_now(fx->e, vendor, m, 16), 1);
    assert_int_equal(m[0].topic, EVENT_TOPIC_CERT_EXPIRY);
}

/* --- messages and properties ------------------------------------------------------ */

static void test_message_copy_time_and_op(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct event_message m;
    memset(&m, 0, sizeof m);
    m.topic = EVENT_TOPIC_AUTH_FAILED;
    m.op = EVENT_OP_CHANGED;             /* not a property: no operation */
    m.n_source = 1;
    strcpy(m.source[0].name, "User");
    memset(m.source[0].value, 'u', sizeof m.source[0].value);   /* unterminated */
    events_publish(fx->e, &m);
    m.utc_ms = 12345;
    strcpy(m.source[0].value, "bob");
    events_publish(fx->e, &m);
    memset(&m, 0x55, sizeof m);          /* the bus kept its own copy */

    struct event_message out[4];
    assert_int_equal(pull_now(fx->e, id, out, 4), 2);
    assert_int_equal(out[0].op, EVENT_OP_NONE);
    assert_int_equal(out[0].utc_ms, T0);
    assert_int_equal(strlen(out[0].source[0].value), EVENT_ITEM_VALUE_MAX);
    assert_int_equal(out[1].utc_ms, 12345);
    assert_string_equal(out[1].source[0].value, "bob");
    assert_int_equal(out[1].n_data, 0);

    /* Long values in the convenience form are cut to fit. */
    char longv[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    events_publish_simple(fx->e, EVENT_TOPIC_AUTH_FAILED, "User", longv, "SourceIP", "192.0.2.1");
    assert_int_equal(pull_now(fx->e, id, out, 4), 1);
    assert_int_equal(strlen(out[0].source[0].value), EVENT_ITEM_VALUE_MAX);
    assert_string_equal(out[0].data[0].value, "192.0.2.1");
}

static void test_malformed_messages_are_ignored(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct event_message m;
    memset(&m, 0, sizeof m);
    m.topic = (enum event_topic_id)EVENT_TOPIC_COUNT;
    events_publish(fx->e, &m);
    m.topic = EVENT_TOPIC_AUTH_FAILED;
    m.n_source = EVENT_MAX_ITEMS + 1;
    events_publish(fx->e, &m);
    m.n_source = 0;
    m.n_data = -1;
    events_publish(fx->e, &m);
    events_publish(fx->e, NULL);
    events_publish(NULL, &m);
    struct event_message out[4];
    assert_int_equal(pull_now(fx->e, id, out, 4), 0);
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.published, 0);
}

static void test_property_initialized_changed_unchanged(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct event_message m[8];

    publish_motion(fx->e, "vs1", "false");
    assert_int_equal(pull_now(fx->e, id, m, 8), 1);
    assert_int_equal(m[0].op, EVENT_OP_INITIALIZED);
    assert_string_equal(m[0].source[0].value, "vs1");
    assert_string_equal(data_value(&m[0], "State"), "false");

    publish_motion(fx->e, "vs1", "false");          /* nothing changed */
    assert_int_equal(pull_now(fx->e, id, m, 8), 0);

    publish_motion(fx->e, "vs1", "true");
    publish_motion(fx->e, "vs2", "true");           /* another source: its own property */
    publish_motion(fx->e, "vs2", "true");
    events_publish_simple(fx->e, EVENT_TOPIC_GLOBAL_SCENE_CHANGE, "VideoSourceToken", "vs1", "State", "true");
    assert_int_equal(pull_now(fx->e, id, m, 8), 3);
    assert_int_equal(m[0].op, EVENT_OP_CHANGED);
    assert_string_equal(data_value(&m[0], "State"), "true");
    assert_int_equal(m[1].op, EVENT_OP_INITIALIZED);
    assert_string_equal(m[1].source[0].value, "vs2");
    assert_int_equal(m[2].topic, EVENT_TOPIC_GLOBAL_SCENE_CHANGE);
    assert_int_equal(m[2].op, EVENT_OP_INITIALIZED);  /* same source, other topic */

    /* Several data items: any difference is a change. */
    publish_key(fx->e, "k1", "generating", NULL);
    publish_key(fx->e, "k1", "ok", "generating");
    publish_key(fx->e, "k1", "ok", "generating");
    assert_int_equal(pull_now(fx->e, id, m, 8), 2);
    assert_int_equal(m[0].op, EVENT_OP_INITIALIZED);
    assert_int_equal(m[0].n_data, 1);
    assert_int_equal(m[1].op, EVENT_OP_CHANGED);
    assert_string_equal(data_value(&m[1], "NewStatus"), "ok");
    assert_string_equal(data_value(&m[1], "OldStatus"), "generating");

    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.published, 6);              /* the unchanged ones are not published */
}

static void test_property_deleted(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct event_message m[8];
    publish_key(fx->e, "k1", "ok", NULL);
    struct event_message del;
    memset(&del, 0, sizeof del);
    del.topic = EVENT_TOPIC_KEY_STATUS;
    del.op = EVENT_OP_DELETED;
    del.n_source = 1;
    strcpy(del.source[0].name, "KeyID");
    strcpy(del.source[0].value, "k1");
    events_publish(fx->e, &del);
    events_publish(fx->e, &del);                    /* nothing left to delete */
    assert_int_equal(pull_now(fx->e, id, m, 8), 2);
    assert_int_equal(m[1].op, EVENT_OP_DELETED);
    assert_int_equal(m[1].n_data, 0);

    uint64_t late = subscribe_ok(fx->e, NULL);
    assert_int_equal(pull_now(fx->e, late, m, 8), 0);
    publish_key(fx->e, "k1", "ok", NULL);
    assert_int_equal(pull_now(fx->e, late, m, 8), 1);
    assert_int_equal(m[0].op, EVENT_OP_INITIALIZED);
}

static void test_new_subscription_gets_current_states(void **state)
{
    struct fixture *fx = *state;
    publish_motion(fx->e, "vs1", "false");
    publish_motion(fx->e, "vs1", "true");
    publish_motion(fx->e, "vs2", "false");
    events_publish_simple(fx->e, EVENT_TOPIC_GLOBAL_SCENE_CHANGE, "VideoSourceToken", "vs1", "State", "true");
    publish_key(fx->e, "k1", "ok", "generating");
    publish_auth(fx->e, "admin", 1);                /* no state: not replayed */
    advance_ms(5000);

    uint64_t all = subscribe_ok(fx->e, NULL);
    uint64_t motion = subscribe_ok(fx->e, "tns1:VideoSource/MotionAlarm");
    uint64_t media = subscribe_ok(fx->e, "tns1:Media//.");
    struct event_message m[8];
    int n = pull_now(fx->e, all, m, 8);
    assert_int_equal(n, 4);
    for (int i = 0; i < n; i++) {
        assert_int_equal(m[i].op, EVENT_OP_INITIALIZED);
        assert_int_equal(m[i].utc_ms, T0 + 5000);
    }
    assert_int_equal(m[0].topic, EVENT_TOPIC_MOTION_ALARM);
    assert_string_equal(m[0].source[0].value, "vs1");
    assert_string_equal(data_value(&m[0], "State"), "true");   /* the current value */
    assert_string_equal(m[1].source[0].value, "vs2");
    assert_string_equal(data_value(&m[1], "State"), "false");
    assert_int_equal(m[2].topic, EVENT_TOPIC_GLOBAL_SCENE_CHANGE);
    assert_int_equal(m[3].topic, EVENT_TOPIC_KEY_STATUS);
    assert_string_equal(data_value(&m[3], "OldStatus"), "generating");

    assert_int_equal(pull_now(fx->e, motion, m, 8), 2);
    assert_int_equal(topics_of(m, 2), 1u << EVENT_TOPIC_MOTION_ALARM);
    assert_int_equal(pull_now(fx->e, media, m, 8), 0);
}

static void test_sync_resends_states(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, "tns1:VideoSource//.");
    struct event_message m[8];
    publish_motion(fx->e, "vs1", "false");
    publish_key(fx->e, "k1", "ok", NULL);           /* outside the filter */
    publish_motion(fx->e, "vs1", "true");
    assert_int_equal(pull_now(fx->e, id, m, 8), 2);

    assert_int_equal(events_sync(fx->e, id), EVENTS_OK);
    assert_int_equal(pull_now(fx->e, id, m, 8), 1);
    assert_int_equal(m[0].op, EVENT_OP_INITIALIZED);
    assert_string_equal(data_value(&m[0], "State"), "true");

    assert_int_equal(events_sync(fx->e, id), EVENTS_OK);
    assert_int_equal(events_sync(fx->e, id), EVENTS_OK);
    assert_int_equal(pull_now(fx->e, id, m, 8), 2);
    assert_int_equal(events_sync(fx->e, id + 1000), EVENTS_E_NO_SUBSCRIPTION);
}

static void test_property_states_are_bounded(void **state)
{
    struct fixture *fx = *state;
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i);
        publish_key(fx->e, key, "ok", NULL);
    }
    publish_key(fx->e, "k44", "corrupt", "ok");     /* k44 is now the most recent */
    publish_key(fx->e, "k300", "ok", NULL);         /* evicts k45, the least recently updated */
    uint64_t id = subscribe_ok(fx->e, NULL);
    static struct event_message m[512];
    int n = pull_now(fx->e, id, m, 512);
    assert_int_equal(n, 256);
    int saw44 = 0, saw45 = 0, saw300 = 0;
    for (int i = 0; i < n; i++) {
        const char *k = m[i].source[0].value;
        saw44 |= strcmp(k, "k44") == 0;
        saw45 |= strcmp(k, "k45") == 0;
        saw300 |= strcmp(k, "k300") == 0;
        assert_int_not_equal(strcmp(k, "k0"), 0);
    }
    assert_true(saw44 && saw300 && !saw45);
}

/* --- pulls --------------------------------------------------------------------------- */

static void test_pull_arguments(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct event_message m[2];
    assert_int_equal(events_pull(fx->e, id, -1, m, 1, NULL), EVENTS_E_ARGS);
    assert_int_equal(events_pull(fx->e, id, 3600001, m, 1, NULL), EVENTS_E_ARGS);
    assert_int_equal(events_pull(fx->e, id, 0, m, 0, NULL), EVENTS_E_ARGS);
    assert_int_equal(events_pull(fx->e, id, 0, m, 1025, NULL), EVENTS_E_ARGS);
    assert_int_equal(events_pull(fx->e, id, 0, NULL, 1, NULL), EVENTS_E_ARGS);
    assert_int_equal(events_subscribe(fx->e, NULL, T0 + 1000, NULL), EVENTS_E_ARGS);
    assert_int_equal(events_pull(fx->e, id + 1, 0, m, 1, NULL), EVENTS_E_NO_SUBSCRIPTION);
    publish_auth(fx->e, "u", 1);
    int64_t term = 0;
    assert_int_equal(events_pull(fx->e, id, 3600000, m, 1, &term), 1);   /* the longest timeout */
    assert_int_equal(term, T0 + 60000);
}

static void test_pull_returns_queued_messages_at_once(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    publish_auth(fx->e, "u", 1);
    publish_auth(fx->e, "u", 2);
    struct event_message m[8];
    double t = mono_ms();
    assert_int_equal(events_pull(fx->e, id, 60000, m, 8, NULL), 2);
    assert_true(mono_ms() - t < 1000);
    assert_string_equal(m[0].data[0].value, "1");
    assert_string_equal(m[1].data[0].value, "2");
}

static void test_pull_is_woken_by_a_publish(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct puller p = { .e = fx->e, .id = id, .timeout_ms = 5000 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, puller_main, &p), 0);
    wait_until_blocked(fx->e, id);
    sleep_ms(20);
    double published_at = mono_ms();
    publish_auth(fx->e, "u", 7);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p.rc, 1);
    assert_string_equal(p.m[0].data[0].value, "7");
    double latency = p.returned_at - published_at;
    assert_true(latency >= 0);
    if (latency >= 50)
        fail_msg("woken after %.1f ms", latency);
}

static void test_pull_timeout_returns_nothing_after_the_timeout(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct event_message m[2];
    double t = mono_ms();
    assert_int_equal(events_pull(fx->e, id, 200, m, 2, NULL), 0);
    double took = mono_ms() - t;
    if (took < 200 || took > 1500)
        fail_msg("timeout of 200 ms took %.1f ms", took);
    /* A timeout of 0 only looks. */
    t = mono_ms();
    assert_int_equal(events_pull(fx->e, id, 0, m, 2, NULL), 0);
    assert_true(mono_ms() - t < 100);
}

static void test_message_limit_keeps_the_rest(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    for (int i = 0; i < 10; i++)
        publish_auth(fx->e, "u", i);
    struct event_message m[16];
    assert_int_equal(pull_now(fx->e, id, m, 3), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atoi(m[i].data[0].value), i);
    assert_int_equal(pull_now(fx->e, id, m, 1), 1);
    assert_int_equal(atoi(m[0].data[0].value), 3);
    assert_int_equal(events_pull(fx->e, id, 5000, m, 16, NULL), 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(atoi(m[i].data[0].value), 4 + i);
    assert_int_equal(pull_now(fx->e, id, m, 16), 0);
}

static void test_queue_overflow_drops_the_oldest(void **state)
{
    struct fixture *fx = *state;                    /* queue_max 4 */
    uint64_t id = subscribe_ok(fx->e, NULL);
    uint64_t other = subscribe_ok(fx->e, "tns1:Media//.");
    for (int i = 0; i < 10; i++)
        publish_auth(fx->e, "u", i);
    struct event_message m[16];
    assert_int_equal(pull_now(fx->e, id, m, 16), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atoi(m[i].data[0].value), 6 + i);
    assert_int_equal(pull_now(fx->e, other, m, 16), 0);
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.published, 10);
    assert_int_equal(st.delivered, 10);
    assert_int_equal(st.dropped, 6);

    /* State replay larger than the queue: the newest states stay. */
    for (int i = 0; i < 6; i++) {
        char vs[8];
        snprintf(vs, sizeof vs, "vs%d", i);
        publish_motion(fx->e, vs, "true");
    }
    assert_int_equal(pull_now(fx->e, id, m, 16), 4);
    uint64_t late = subscribe_ok(fx->e, NULL);
    assert_int_equal(pull_now(fx->e, late, m, 16), 4);
    assert_string_equal(m[0].source[0].value, "vs2");
    assert_string_equal(m[3].source[0].value, "vs5");
}

static void test_concurrent_pull_is_busy(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    uint64_t other = subscribe_ok(fx->e, NULL);
    struct puller p = { .e = fx->e, .id = id, .timeout_ms = 5000 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, puller_main, &p), 0);
    wait_until_blocked(fx->e, id);
    struct event_message m[2];
    double t = mono_ms();
    assert_int_equal(events_pull(fx->e, id, 1000, m, 2, NULL), EVENTS_E_BUSY);
    assert_true(mono_ms() - t < 500);
    assert_int_equal(events_pull(fx->e, other, 0, m, 2, NULL), 0);   /* others are not affected */
    publish_auth(fx->e, "u", 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p.rc, 1);
    assert_int_equal(pull_now(fx->e, other, m, 2), 1);
    /* The first pull has left: pulling works again. */
    assert_int_equal(pull_now(fx->e, id, m, 2), 0);
}

/* --- subscriptions ------------------------------------------------------------------- */

static void test_subscription_limit_and_ids(void **state)
{
    struct fixture *fx = *state;                    /* max 4 */
    uint64_t ids[5];
    for (int i = 0; i < 4; i++) {
        ids[i] = subscribe_ok(fx->e, NULL);
        for (int j = 0; j < i; j++)
            assert_true(ids[i] != ids[j]);
    }
    uint64_t none = 0;
    assert_int_equal(events_subscribe(fx->e, NULL, T0 + 60000, &none), EVENTS_E_FULL);
    assert_int_equal(events_unsubscribe(fx->e, ids[1]), EVENTS_OK);
    ids[4] = subscribe_ok(fx->e, NULL);
    for (int j = 0; j < 4; j++)
        assert_true(ids[4] != ids[j]);              /* not reused */
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.subscriptions, 4);
}

static void test_termination_in_the_past_is_refused(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = 0;
    assert_int_equal(events_subscribe(fx->e, NULL, T0 - 1, &id), EVENTS_E_TIME);
    assert_int_equal(events_subscribe(fx->e, NULL, T0, &id), EVENTS_E_TIME);
    assert_int_equal(events_subscribe(fx->e, NULL, 0, &id), EVENTS_E_TIME);
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.subscriptions, 0);
    assert_int_equal(events_subscribe(fx->e, NULL, T0 + 1, &id), EVENTS_OK);
}

static void test_termination_is_clamped_to_the_maximum(void **state)
{
    struct fixture *fx = *state;                    /* max 3600 s */
    uint64_t id = 0;
    assert_int_equal(events_subscribe(fx->e, NULL, T0 + 36000000LL, &id), EVENTS_OK);
    struct event_message m[1];
    int64_t term = 0;
    assert_int_equal(events_pull(fx->e, id, 0, m, 1, &term), 0);
    assert_int_equal(term, T0 + 3600000LL);
    advance_ms(1000);
    assert_int_equal(events_renew(fx->e, id, INT64_MAX), EVENTS_OK);
    assert_int_equal(events_pull(fx->e, id, 0, m, 1, &term), 0);
    assert_int_equal(term, T0 + 1000 + 3600000LL);
}

static void test_expired_subscription_is_gone(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = 0, other = 0;
    assert_int_equal(events_subscribe(fx->e, NULL, T0 + 10000, &id), EVENTS_OK);
    assert_int_equal(events_subscribe(fx->e, NULL, T0 + 20000, &other), EVENTS_OK);
    publish_auth(fx->e, "u", 1);
    advance_ms(9999);
    struct event_message m[4];
    assert_int_equal(pull_now(fx->e, id, m, 4), 1);  /* a pull renews nothing */
    publish_auth(fx->e, "u", 2);
    advance_ms(1);                                  /* exactly the termination time */
    assert_int_equal(pull_now(fx->e, id, m, 4), EVENTS_E_NO_SUBSCRIPTION);
    assert_int_equal(events_renew(fx->e, id, T0 + 30000), EVENTS_E_NO_SUBSCRIPTION);
    assert_int_equal(events_sync(fx->e, id), EVENTS_E_NO_SUBSCRIPTION);
    assert_int_equal(events_unsubscribe(fx->e, id), EVENTS_E_NO_SUBSCRIPTION);
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.subscriptions, 1);
    advance_ms(10000);
    events_get_stats(fx->e, &st);                   /* removed by any call */
    assert_int_equal(st.subscriptions, 0);
}

static void test_renew_extends(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = 0;
    assert_int_equal(events_subscribe(fx->e, NULL, T0 + 10000, &id), EVENTS_OK);
    advance_ms(5000);
    assert_int_equal(events_renew(fx->e, id, T0 + 25000), EVENTS_OK);
    advance_ms(10000);                              /* past the first termination time */
    struct event_message m[1];
    int64_t term = 0;
    assert_int_equal(events_pull(fx->e, id, 0, m, 1, &term), 0);
    assert_int_equal(term, T0 + 25000);
    assert_int_equal(events_renew(fx->e, id, T0 + 15000), EVENTS_E_TIME);
    assert_int_equal(events_pull(fx->e, id, 0, m, 1, &term), 0);   /* refused renewal changed nothing */
    assert_int_equal(term, T0 + 25000);
    assert_int_equal(events_renew(fx->e, id + 1, T0 + 50000), EVENTS_E_NO_SUBSCRIPTION);
    advance_ms(10000);
    assert_int_equal(events_pull(fx->e, id, 0, m, 1, &term), EVENTS_E_NO_SUBSCRIPTION);
}

static void test_unsubscribe_then_pull(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    publish_auth(fx->e, "u", 1);
    assert_int_equal(events_unsubscribe(fx->e, id), EVENTS_OK);
    struct event_message m[2];
    assert_int_equal(pull_now(fx->e, id, m, 2), EVENTS_E_NO_SUBSCRIPTION);
    assert_int_equal(events_unsubscribe(fx->e, id), EVENTS_E_NO_SUBSCRIPTION);
    assert_int_equal(events_sync(fx->e, id), EVENTS_E_NO_SUBSCRIPTION);
    publish_auth(fx->e, "u", 2);                    /* nobody left to deliver to */
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.delivered, 1);
}

static void test_unsubscribe_wakes_a_blocked_pull(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct puller p = { .e = fx->e, .id = id, .timeout_ms = 10000 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, puller_main, &p), 0);
    wait_until_blocked(fx->e, id);
    double t = mono_ms();
    assert_int_equal(events_unsubscribe(fx->e, id), EVENTS_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p.rc, EVENTS_E_NO_SUBSCRIPTION);
    assert_true(p.returned_at - t < 500);
    struct event_message m[1];
    assert_int_equal(pull_now(fx->e, id, m, 1), EVENTS_E_NO_SUBSCRIPTION);
}

static void test_expiry_ends_a_blocked_pull(void **state)
{
    struct fixture *fx = *state;                    /* system clock */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t id = 0;
    assert_int_equal(events_subscribe(fx->e, NULL, now + 300, &id), EVENTS_OK);
    struct event_message m[1];
    double t = mono_ms();
    assert_int_equal(events_pull(fx->e, id, 5000, m, 1, NULL), EVENTS_E_NO_SUBSCRIPTION);
    double took = mono_ms() - t;
    if (took < 250 || took > 2000)
        fail_msg("expiry after 300 ms ended the pull after %.1f ms", took);
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.subscriptions, 0);
}

static void test_close_with_a_blocked_pull(void **state)
{
    struct fixture *fx = *state;
    struct puller p = { .e = fx->e, .id = subscribe_ok(fx->e, "tns1:Media//."), .timeout_ms = 30000 };
    struct puller q = { .e = fx->e, .id = subscribe_ok(fx->e, "tns1:Media//."), .timeout_ms = 30000 };
    uint64_t full = subscribe_ok(fx->e, NULL);
    uint64_t gone = subscribe_ok(fx->e, NULL);
    pthread_t th, th2;
    assert_int_equal(pthread_create(&th, NULL, puller_main, &p), 0);
    assert_int_equal(pthread_create(&th2, NULL, puller_main, &q), 0);
    wait_until_blocked(fx->e, p.id);
    wait_until_blocked(fx->e, q.id);
    publish_auth(fx->e, "u", 1);                    /* queued for full and gone only */
    publish_motion(fx->e, "vs1", "true");
    assert_int_equal(events_unsubscribe(fx->e, gone), EVENTS_OK);
    (void)full;

    double t = mono_ms();
    events_close(fx->e);
    fx->e = NULL;
    double took = mono_ms() - t;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(pthread_join(th2, NULL), 0);
    assert_int_equal(p.rc, EVENTS_E_NO_SUBSCRIPTION);
    assert_int_equal(q.rc, EVENTS_E_NO_SUBSCRIPTION);
    if (took > 500)
        fail_msg("close took %.1f ms", took);
}

/* --- concurrency ----------------------------------------------------------------------- */

#define STRESS_THREADS 4
#define STRESS_EACH 500

struct stress {
    struct events *e;
    int index;
    uint64_t id;
    int received;
    int errors;
};

static void *stress_publisher(void *arg)
{
    struct stress *s = arg;
    char user[8];
    snprintf(user, sizeof user, "p%d", s->index);
    for (int i = 0; i < STRESS_EACH; i++) {
        publish_auth(s->e, user, i);
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

/* Checks that every publisher's messages arrive complete and in order. */
static void *stress_puller(void *arg)
{
    struct stress *s = arg;
    int next[STRESS_THREADS] = { 0 };
    struct event_message m[37];
    while (s->received < STRESS_THREADS * STRESS_EACH) {
        int n = events_pull(s->e, s->id, 3000, m, (int)N_OF(m), NULL);
        if (n <= 0) {
            s->errors++;
            break;
        }
        for (int i = 0; i < n; i++) {
            int who = m[i].source[0].value[1] - '0';
            if (who < 0 || who >= STRESS_THREADS || atoi(m[i].data[0].value) != next[who]) {
                s->errors++;
                continue;
            }
            next[who]++;
        }
        s->received += n;
    }
    return NULL;
}

static void test_publishers_and_pullers_in_parallel(void **state)
{
    struct fixture *fx = *state;                    /* queue_max 4096 */
    struct stress pub[STRESS_THREADS], pull[STRESS_THREADS];
    pthread_t pt[STRESS_THREADS], ct[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++) {
        pull[i] = (struct stress){ .e = fx->e, .index = i, .id = subscribe_ok(fx->e, NULL) };
        pub[i] = (struct stress){ .e = fx->e, .index = i };
    }
    for (int i = 0; i < STRESS_THREADS; i++)
        assert_int_equal(pthread_create(&ct[i], NULL, stress_puller, &pull[i]), 0);
    for (int i = 0; i < STRESS_THREADS; i++)
        assert_int_equal(pthread_create(&pt[i], NULL, stress_publisher, &pub[i]), 0);
    for (int i = 0; i < STRESS_THREADS; i++)
        assert_int_equal(pthread_join(pt[i], NULL), 0);
    for (int i = 0; i < STRESS_THREADS; i++) {
        assert_int_equal(pthread_join(ct[i], NULL), 0);
        assert_int_equal(pull[i].errors, 0);
        assert_int_equal(pull[i].received, STRESS_THREADS * STRESS_EACH);
    }
    struct events_stats st;
    events_get_stats(fx->e, &st);
    assert_int_equal(st.published, STRESS_THREADS * STRESS_EACH);
    assert_int_equal(st.delivered, STRESS_THREADS * STRESS_THREADS * STRESS_EACH);
    assert_int_equal(st.dropped, 0);
}

/* Before the listener stops, waiting pulls return (empty) and new ones do
 * not wait; subscriptions and their termination times stay. */
static void test_shutdown_releases_pulls(void **state)
{
    struct fixture *fx = *state;
    uint64_t id = subscribe_ok(fx->e, NULL);
    struct puller p = { .e = fx->e, .id = id, .timeout_ms = 10000 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, puller_main, &p), 0);
    wait_until_blocked(fx->e, id);
    double t = mono_ms();
    events_shutdown(fx->e);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(p.rc >= 0);
    assert_true(p.returned_at - t < 500);
    struct event_message m[1];
    t = mono_ms();
    assert_true(events_pull(fx->e, id, 5000, m, 1, NULL) >= 0);
    assert_true(mono_ms() - t < 500);
    int64_t term = 0;
    assert_int_equal(events_termination(fx->e, id, &term), EVENTS_OK);
    assert_true(term > T0);
    assert_int_equal(events_termination(fx->e, id + 12345, &term), EVENTS_E_NO_SUBSCRIPTION);
}

/* A content filter: only the messages it matches are queued, the replayed
 * states included. */
static void test_content_filter(void **state)
{
    struct fixture *fx = *state;
    events_publish_simple(fx->e, EVENT_TOPIC_MOTION_ALARM, "VideoSourceToken", "A", "State", "true");
    events_publish_simple(fx->e, EVENT_TOPIC_MOTION_ALARM, "VideoSourceToken", "B", "State", "false");
    struct itemfilter f;
    assert_int_equal(itemfilter_parse("boolean(//tt:SimpleItem[@Name=\"State\" and @Value=\"true\"])", &f), 0);
    uint64_t id = 0;
    assert_int_equal(events_subscribe_filtered(fx->e, NULL, &f, T0 + 60000, &id), EVENTS_OK);
    struct event_message m[8];
    assert_int_equal(pull_now(fx->e, id, m, 8), 1);            /* A's state only */
    assert_string_equal(m[0].source[0].value, "A");
    events_publish_simple(fx->e, EVENT_TOPIC_MOTION_ALARM, "VideoSourceToken", "A", "State", "false");
    events_publish_simple(fx->e, EVENT_TOPIC_MOTION_ALARM, "VideoSourceToken", "B", "State", "true");
    assert_int_equal(pull_now(fx->e, id, m, 8), 1);
    assert_string_equal(m[0].source[0].value, "B");
    assert_int_equal(events_subscribe_filtered(fx->e, "tns1:NoSuch", &f, T0 + 60000, &id), EVENTS_E_FILTER);
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

static const struct CMUnitTest regular_tests[] = {
    cmocka_unit_test(test_topic_table_shape),
    cmocka_unit_test(test_every_error_has_its_own_message),
    cmocka_unit_test(test_open_settings),
    cmocka_unit_test(test_filter_expressions),
    FIXTURE_TEST(test_subscribe_with_bad_filter_creates_nothing),
    FIXTURE_TEST(test_subscribe_all_versus_filtered),
    FIXTURE_TEST(test_inner_node_subtrees),
    FIXTURE_TEST(test_message_copy_time_and_op),
    FIXTURE_TEST(test_malformed_messages_are_ignored),
    FIXTURE_TEST(test_property_initialized_changed_unchanged),
    FIXTURE_TEST(test_property_deleted),
    FIXTURE_TEST(test_new_subscription_gets_current_states),
    FIXTURE_TEST(test_sync_resends_states),
    cmocka_unit_test_setup_teardown(test_property_states_are_bounded, big_queue_setup, fixture_teardown),
    FIXTURE_TEST(test_pull_arguments),
    FIXTURE_TEST(test_pull_returns_queued_messages_at_once),
    FIXTURE_TEST(test_pull_is_woken_by_a_publish),
    FIXTURE_TEST(test_pull_timeout_returns_nothing_after_the_timeout),
    FIXTURE_TEST(test_message_limit_keeps_the_rest),
    cmocka_unit_test_setup_teardown(test_queue_overflow_drops_the_oldest, small_queue_setup, fixture_teardown),
    FIXTURE_TEST(test_concurrent_pull_is_busy),
    FIXTURE_TEST(test_subscription_limit_and_ids),
    FIXTURE_TEST(test_termination_in_the_past_is_refused),
    FIXTURE_TEST(test_termination_is_clamped_to_the_maximum),
    FIXTURE_TEST(test_expired_subscription_is_gone),
    FIXTURE_TEST(test_renew_extends),
    FIXTURE_TEST(test_unsubscribe_then_pull),
    FIXTURE_TEST(test_unsubscribe_wakes_a_blocked_pull),
    cmocka_unit_test_setup_teardown(test_expiry_ends_a_blocked_pull, real_clock_setup, fixture_teardown),
    FIXTURE_TEST(test_close_with_a_blocked_pull),
    FIXTURE_TEST(test_shutdown_releases_pulls),
    FIXTURE_TEST(test_content_filter),
    cmocka_unit_test_setup_teardown(test_publishers_and_pullers_in_parallel, big_queue_setup, fixture_teardown),
};

UNIT_MAIN("events", regular_tests)
