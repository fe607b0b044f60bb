/* Unit tests for devclock: the offset model with a fake host clock, Manual
 * set and its date validation (all-or-nothing), persistence and refusal of
 * corrupt state, POSIX TZ validation and local time (checked at known
 * instants and against the C library), NTP server names, and SNTP against a
 * fake server thread on loopback (good, bad and missing answers). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "opennvt/devclock.h"
#include "unit_helpers.h"

#define NTP_EPOCH 2208988800ULL

/* The core does not link libm. */
static double fabs_(double x)
{
    return x < 0 ? -x : x;
}

/* --- fixture and fake host clock -------------------------------------------- */

static struct timespec fake_host;

static void fake_host_now(struct timespec *out)
{
    *out = fake_host;
}

struct fixture {
    struct temp_dir dir;
    struct devclock_settings settings;
    struct devclock *c;
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    fake_host = (struct timespec){ .tv_sec = 1577836800, .tv_nsec = 250000000 };   /* 2020-01-01 */
    fx->settings.host_now = fake_host_now;
    if (devclock_open(&fx->c, fx->dir.path, &fx->settings) != DEVCLOCK_OK) {
        temp_fixture_free(&fx->dir, fx);
        return -1;
    }
    *state = fx;
    return 0;
}

/* The same with the real host clock and a short NTP timeout. */
static int ntp_fixture_setup(void **state)
{
    if (fixture_setup(state) != 0)
        return -1;
    struct fixture *fx = *state;
    devclock_close(fx->c);
    fx->settings.host_now = NULL;
    fx->settings.ntp_timeout_ms = 300;
    if (devclock_open(&fx->c, fx->dir.path, &fx->settings) != DEVCLOCK_OK)
        return -1;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    devclock_close(fx->c);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen(struct fixture *fx)
{
    devclock_close(fx->c);
    fx->c = NULL;
    assert_int_equal(devclock_open(&fx->c, fx->dir.path, &fx->settings), DEVCLOCK_OK);
}

static struct tm utc_tm(int year, int mon, int mday, int hour, int min, int sec)
{
    struct tm t = { 0 };
    t.tm_year = year - 1900;
    t.tm_mon = mon - 1;
    t.tm_mday = mday;
    t.tm_hour = hour;
    t.tm_min = min;
    t.tm_sec = sec;
    return t;
}

static time_t utc_time(int year, int mon, int mday, int hour, int min, int sec)
{
    struct tm t = utc_tm(year, mon, mday, hour, min, sec);
    return timegm(&t);
}

static char *clock_file(const struct fixture *fx)
{
    char path[PATH_MAX];
    return read_text_file(path_in(path, fx->dir.path, "clock.xml"));
}

/* Device time minus real host time, in seconds. */
static double device_minus_host(struct devclock *c)
{
    struct timespec d, h;
    clock_gettime(CLOCK_REALTIME, &h);
    devclock_now_ts(c, &d);
    return (double)(d.tv_sec - h.tv_sec) + (double)(d.tv_nsec - h.tv_nsec) / 1e9;
}

/* --- offset model ------------------------------------------------------------ */

static void test_fresh_clock_is_manual_utc_host_time(void **state)
{
    struct fixture *fx = *state;
    struct timespec ts;
    devclock_now_ts(fx->c, &ts);
    assert_int_equal(ts.tv_sec, fake_host.tv_sec);
    assert_int_equal(ts.tv_nsec, fake_host.tv_nsec);
    struct devclock_config cfg;
    memset(&cfg, 0x55, sizeof cfg);
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.type, DEVCLOCK_MANUAL);
    assert_int_equal(cfg.daylight_savings, 0);
    assert_string_equal(cfg.tz, "");
    assert_int_equal(cfg.n_ntp, 0);
}

static void test_manual_set_applies_an_offset_to_the_host_clock(void **state)
{
    struct fixture *fx = *state;
    struct tm want = utc_tm(2026, 5, 4, 3, 2, 1);
    time_t want_t = timegm(&want);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &want), DEVCLOCK_OK);
    struct timespec ts;
    devclock_now_ts(fx->c, &ts);
    assert_int_equal(ts.tv_sec, want_t);
    assert_int_equal(ts.tv_nsec, 0);
    assert_int_equal(devclock_now(fx->c), want_t);

    /* The device clock runs with the host clock. */
    fake_host.tv_sec += 10;
    fake_host.tv_nsec += 500000000;
    devclock_now_ts(fx->c, &ts);
    assert_int_equal(ts.tv_sec, want_t + 10);
    assert_int_equal(ts.tv_nsec, 500000000);

    /* A host clock that was wrong and gets corrected moves device time too:
     * the offset is all we keep. */
    fake_host.tv_sec -= 3600;
    assert_int_equal(devclock_now(fx->c), want_t + 10 - 3600);
}

static void test_manual_set_into_the_past_of_the_host(void **state)
{
    struct fixture *fx = *state;
    struct tm want = utc_tm(1970, 1, 1, 0, 0, 5);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &want), DEVCLOCK_OK);
    struct timespec ts;
    devclock_now_ts(fx->c, &ts);
    assert_int_equal(ts.tv_sec, 5);
    assert_int_equal(ts.tv_nsec, 0);
    fake_host.tv_nsec = 999999999;
    devclock_now_ts(fx->c, &ts);
    assert_int_equal(ts.tv_sec, 5);
    assert_int_equal(ts.tv_nsec, 749999999);
}

static void test_range_edges_and_leap_second(void **state)
{
    struct fixture *fx = *state;
    struct tm last = utc_tm(2105, 12, 31, 23, 59, 59);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &last), DEVCLOCK_OK);
    assert_int_equal(devclock_now(fx->c), timegm(&last));
    struct tm leap_day = utc_tm(2024, 2, 29, 12, 0, 0);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &leap_day), DEVCLOCK_OK);
    assert_int_equal(devclock_now(fx->c), timegm(&leap_day));
    struct tm leap_sec = utc_tm(2016, 12, 31, 23, 59, 60);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &leap_sec), DEVCLOCK_OK);
    assert_int_equal(devclock_now(fx->c), utc_time(2016, 12, 31, 23, 59, 59));
}

static void test_invalid_dates_are_refused_and_change_nothing(void **state)
{
    struct fixture *fx = *state;
    struct tm good = utc_tm(2026, 1, 2, 3, 4, 5);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 1, "CET-1CEST,M3.5.0,M10.5.0/3", &good), DEVCLOCK_OK);
    char *before = clock_file(fx);
    assert_non_null(before);
    struct tm bad[] = {
        utc_tm(2026, 2, 30, 0, 0, 0),
        utc_tm(2023, 2, 29, 0, 0, 0),
        utc_tm(2100, 2, 29, 0, 0, 0),    /* not a leap year */
        utc_tm(2026, 4, 31, 0, 0, 0),
        utc_tm(2026, 1, 1, 24, 0, 0),
        utc_tm(2026, 1, 1, 0, 60, 0),
        utc_tm(2026, 1, 1, 0, 0, 61),
        utc_tm(2026, 1, 1, -1, 0, 0),
        utc_tm(2026, 1, 0, 0, 0, 0),
        utc_tm(2026, 0, 1, 0, 0, 0),
        utc_tm(2026, 13, 1, 0, 0, 0),
        utc_tm(1969, 12, 31, 23, 59, 59),
        utc_tm(2106, 1, 1, 0, 0, 0),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = devclock_set(fx->c, DEVCLOCK_MANUAL, 0, "UTC0", &bad[i]);
        if (rc != DEVCLOCK_E_TIME)
            fail_msg("bad date #%zu: got %d, expected DEVCLOCK_E_TIME", i, rc);
        assert_int_equal(devclock_now(fx->c), timegm(&good));
        struct devclock_config cfg;
        devclock_get(fx->c, &cfg);
        assert_int_equal(cfg.daylight_savings, 1);
        assert_string_equal(cfg.tz, "CET-1CEST,M3.5.0,M10.5.0/3");
    }
    char *after = clock_file(fx);
    assert_non_null(after);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_bad_tz_or_type_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    struct tm t = utc_tm(2030, 6, 1, 0, 0, 0);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 1, "CET", &t), DEVCLOCK_E_TZ);
    assert_int_equal(devclock_set(fx->c, (enum devclock_type)7, 1, "UTC0", &t), DEVCLOCK_E_INVALID);
    assert_int_equal(devclock_now(fx->c), fake_host.tv_sec);
    struct devclock_config cfg;
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.type, DEVCLOCK_MANUAL);
    assert_int_equal(cfg.daylight_savings, 0);
    assert_string_equal(cfg.tz, "");
    assert_null(clock_file(fx));
}

static void test_ntp_type_and_null_utc_keep_the_clock(void **state)
{
    struct fixture *fx = *state;
    struct tm t = utc_tm(2030, 6, 1, 0, 0, 0);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &t), DEVCLOCK_OK);
    struct tm other = utc_tm(2040, 1, 1, 0, 0, 0);
    /* With NTP the date/time given alongside has no meaning. */
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_NTP, 1, "JST-9", &other), DEVCLOCK_OK);
    assert_int_equal(devclock_now(fx->c), timegm(&t));
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, NULL), DEVCLOCK_OK);
    assert_int_equal(devclock_now(fx->c), timegm(&t));
    struct devclock_config cfg;
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.type, DEVCLOCK_MANUAL);
    assert_string_equal(cfg.tz, "JST-9");   /* NULL keeps the zone */
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, "", NULL), DEVCLOCK_OK);
    devclock_get(fx->c, &cfg);
    assert_string_equal(cfg.tz, "");
}

/* --- persistence -------------------------------------------------------------- */

static void test_settings_and_offset_survive_reopen(void **state)
{
    struct fixture *fx = *state;
    struct tm t = utc_tm(2031, 7, 8, 9, 10, 11);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 1, "<+0530>-5:30", &t), DEVCLOCK_OK);
    const char *servers[] = { "pool.ntp.org", "[2001:db8::1]:1234", "192.0.2.1:123" };
    assert_int_equal(devclock_set_ntp(fx->c, servers, 3), DEVCLOCK_OK);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_NTP, 1, NULL, NULL), DEVCLOCK_OK);

    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(path_in(path, fx->dir.path, "clock.xml"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    reopen(fx);
    assert_int_equal(devclock_now(fx->c), timegm(&t));
    struct devclock_config cfg;
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.type, DEVCLOCK_NTP);
    assert_int_equal(cfg.daylight_savings, 1);
    assert_string_equal(cfg.tz, "<+0530>-5:30");
    assert_int_equal(cfg.n_ntp, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(cfg.ntp[i], servers[i]);
    long off;
    struct tm local;
    assert_int_equal(devclock_local(fx->c, timegm(&t), &local, &off, NULL), DEVCLOCK_OK);
    assert_int_equal(off, 19800);

    /* After a restart the stored offset applies to whatever the host says. */
    fake_host.tv_sec += 100;
    reopen(fx);
    assert_int_equal(devclock_now(fx->c), timegm(&t) + 100);
}

static void test_empty_server_list_and_utc_survive_reopen(void **state)
{
    struct fixture *fx = *state;
    const char *one[] = { "ntp.example.com" };
    assert_int_equal(devclock_set_ntp(fx->c, one, 1), DEVCLOCK_OK);
    assert_int_equal(devclock_set_ntp(fx->c, NULL, 0), DEVCLOCK_OK);
    reopen(fx);
    struct devclock_config cfg;
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.n_ntp, 0);
    assert_string_equal(cfg.tz, "");
    assert_int_equal(devclock_now(fx->c), fake_host.tv_sec);
}

static char *make_doc(const char *type, const char *dst, const char *tz, const char *offset,
                      const char *servers, const char *extra)
{
    char *buf = malloc(4096);
    if (!buf)
        abort();
    snprintf(buf, 4096,
             "<?xml version=\"1.0\"?>\n<clock>%s%s%s%s%s%s%s%s%s%s<ntp-servers>%s</ntp-servers>%s</clock>\n",
             type ? "<type>" : "", type ? type : "", type ? "</type>" : "",
             dst ? "<daylight-savings>" : "", dst ? dst : "", dst ? "</daylight-savings>" : "",
             tz ? "<tz>" : "", tz ? tz : "", tz ? "</tz>" : "",
             offset ? offset : "", servers, extra);
    return buf;
}

static void test_corrupt_file_refuses_open_and_is_kept(void **state)
{
    struct fixture *fx = *state;
    devclock_close(fx->c);
    fx->c = NULL;
    char path[PATH_MAX];
    path_in(path, fx->dir.path, "clock.xml");
    const char *ok_off = "<offset-ns>-1500000000</offset-ns>";
    const char *srv = "<server>pool.ntp.org</server>";

    /* The control: the template itself opens and means what it says. */
    char *good = make_doc("NTP", "true", "&lt;+0530&gt;-5:30", ok_off, srv, "");
    assert_int_equal(write_text_file(path, good), 0);
    free(good);
    assert_int_equal(devclock_open(&fx->c, fx->dir.path, &fx->settings), DEVCLOCK_OK);
    assert_int_equal(devclock_now(fx->c), fake_host.tv_sec - 2);
    struct devclock_config cfg;
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.type, DEVCLOCK_NTP);
    assert_string_equal(cfg.tz, "<+0530>-5:30");
    assert_int_equal(cfg.n_ntp, 1);
    devclock_close(fx->c);
    fx->c = NULL;

    char *corrupt[] = {
        strdup(""),
        strdup("this is not XML"),
        strdup("<clock><type>Manual</type>"),
        make_doc(NULL, "true", "UTC0", ok_off, srv, ""),
        make_doc("Manual", NULL, "UTC0", ok_off, srv, ""),
        make_doc("Manual", "true", NULL, ok_off, srv, ""),
        make_doc("Manual", "true", "UTC0", NULL, srv, ""),
        make_doc("Auto", "true", "UTC0", ok_off, srv, ""),
        make_doc("Manual", "yes", "UTC0", ok_off, srv, ""),
        make_doc("Manual", "true", "CET", ok_off, srv, ""),
        make_doc("Manual", "true", "UTC0", "<offset-ns>12abc</offset-ns>", srv, ""),
        make_doc("Manual", "true", "UTC0", "<offset-ns></offset-ns>", srv, ""),
        make_doc("Manual", "true", "UTC0", "<offset-ns>99999999999999999999</offset-ns>", srv, ""),
        make_doc("Manual", "true", "UTC0", "<offset-ns>9000000000000000000</offset-ns>", srv, ""),
        make_doc("Manual", "true", "UTC0", "<offset-ns> 5</offset-ns>", srv, ""),
        make_doc("Manual", "true", "UTC0", ok_off, "<server>bad_name!</server>", ""),
        make_doc("Manual", "true", "UTC0", ok_off, "<server></server>", ""),
        make_doc("Manual", "true", "UTC0", ok_off, "<host>a.example</host>", ""),
        make_doc("Manual", "true", "UTC0", ok_off,
                 "<server>a.example</server><server>b.example</server><server>c.example</server>"
                 "<server>d.example</server><server>e.example</server>", ""),
        make_doc("Manual", "true", "UTC0", ok_off, srv, "<type>NTP</type>"),
        make_doc("Manual", "true", "UTC0", ok_off, srv, "<colour>blue</colour>"),
        make_doc("Manual", "true", "UTC0", ok_off, srv, "stray text"),
        make_doc("Manual<b/>", "true", "UTC0", ok_off, srv, ""),
        strdup("<?xml version=\"1.0\"?><clok><type>Manual</type><daylight-savings>true</daylight-savings>"
               "<tz>UTC0</tz><offset-ns>0</offset-ns><ntp-servers/></clok>"),
        strdup("<?xml version=\"1.0\"?><!DOCTYPE clock [<!ENTITY z \"UTC0\">]><clock><type>Manual</type>"
               "<daylight-savings>true</daylight-savings><tz>&z;</tz><offset-ns>0</offset-ns>"
               "<ntp-servers/></clock>"),
    };
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        assert_non_null(corrupt[i]);
        assert_int_equal(write_text_file(path, corrupt[i]), 0);
        struct devclock *c = (struct devclock *)fx;
        int rc = devclock_open(&c, fx->dir.path, &fx->settings);
        if (rc != DEVCLOCK_E_STORE) {
            if (rc == DEVCLOCK_OK)
                devclock_close(c);
            fail_msg("corrupt file #%zu: got %d, expected DEVCLOCK_E_STORE", i, rc);
        }
        assert_null(c);
        char *text = read_text_file(path);
        assert_non_null(text);
        assert_string_equal(text, corrupt[i]);
        free(text);
        free(corrupt[i]);
    }
    assert_int_equal(unlink(path), 0);
    assert_int_equal(devclock_open(&fx->c, fx->dir.path, &fx->settings), DEVCLOCK_OK);
}

static void test_failed_save_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    char blocker[PATH_MAX];
    assert_true(snprintf(blocker, sizeof blocker, "%s/clock.xml.tmp.%ld", fx->dir.path, (long)getpid()) <
                (int)sizeof blocker);
    assert_int_equal(mkdir(blocker, 0700), 0);

    struct tm t = utc_tm(2030, 1, 1, 0, 0, 0);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_NTP, 1, "JST-9", &t), DEVCLOCK_E_STORE);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 1, "JST-9", &t), DEVCLOCK_E_STORE);
    const char *servers[] = { "pool.ntp.org" };
    assert_int_equal(devclock_set_ntp(fx->c, servers, 1), DEVCLOCK_E_STORE);

    assert_int_equal(devclock_now(fx->c), fake_host.tv_sec);
    struct devclock_config cfg;
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.type, DEVCLOCK_MANUAL);
    assert_int_equal(cfg.daylight_savings, 0);
    assert_string_equal(cfg.tz, "");
    assert_int_equal(cfg.n_ntp, 0);
    long off = -1;
    struct tm local;
    assert_int_equal(devclock_local(fx->c, 0, &local, &off, NULL), DEVCLOCK_OK);
    assert_int_equal(off, 0);
    assert_int_equal(rmdir(blocker), 0);
}

/* --- time zones ---------------------------------------------------------------- */

static const char *const valid_tz[] = {
    "", "UTC0", "CET-1CEST,M3.5.0,M10.5.0/3", "EST5EDT", "EST5EDT,M3.2.0,M11.1.0", "<+0530>-5:30",
    "AEST-10AEDT,M10.1.0,M4.1.0/3", "JST-9", "NZST-12NZDT,M9.5.0,M4.1.0/3", "GMT0BST,M3.5.0/1,M10.5.0",
    "<-03>3", "IST-1GMT0,M10.5.0,M3.5.0/1", "WART4WARST,J1/0,J365/25", "EST5EDT4,0/0,J365/25",
    "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "ABC+12:30:15DEF+11,J60/1:30,300/167",
    "PST8PDT,M3.2.0/2:00:00,M11.1.0/2:00:00",
};

static void test_tz_validation(void **state)
{
    for (size_t i = 0; i < sizeof valid_tz / sizeof valid_tz[0]; i++)
        if (devclock_tz_valid(valid_tz[i]) != DEVCLOCK_OK)
            fail_msg("valid TZ '%s' refused", valid_tz[i]);
    char longest[DEVCLOCK_TZ_MAX];
    memset(longest, 'A', sizeof longest - 2);
    longest[sizeof longest - 2] = '0';
    longest[sizeof longest - 1] = '\0';
    assert_int_equal(devclock_tz_valid(longest), DEVCLOCK_OK);
    char too_long[DEVCLOCK_TZ_MAX + 1];
    memset(too_long, 'A', sizeof too_long - 2);
    too_long[sizeof too_long - 2] = '0';
    too_long[sizeof too_long - 1] = '\0';

    const char *const invalid[] = {
        "CET", "CET-1CEST,M13.1.0,M10.5.0", "X5", "EST5EDT,M3.2.0", "<+05", "EST99", too_long,
        "UTC", "utc", "UTC+", "UTC-25", "UTC0:60", "UTC0:5", "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,M3.2.7,M11.1.0",
        "EST5EDT,M0.2.0,M11.1.0", "EST5EDT,J0,J365", "EST5EDT,J366,J1", "EST5EDT,366,1", "EST5EDT,M3.2.0/168,M11.1.0",
        "EST5EDT,M3.2.0,M11.1.0,", "EST5EDT,M3.2.0,M11.1.0x", "EST5ED", "E1T5", "<AB>5", "<A B C>5",
        ":Europe/Berlin", "Europe/Berlin", "EST5 EDT", " EST5", "EST5EDT,", "EST5EDT;M3.2.0,M11.1.0",
        "EST5,M3.2.0,M11.1.0", "EST5EDT,M3.2.0/,M11.1.0", "EST5EDT,M3.2,M11.1.0", "CET-1CEST-",
        "EST5EDT,M3.2.0/2:0,M11.1.0", "EST005",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (devclock_tz_valid(invalid[i]) != DEVCLOCK_E_TZ)
            fail_msg("invalid TZ #%zu '%s' accepted", i, invalid[i]);
    assert_int_equal(devclock_tz_valid(NULL), DEVCLOCK_E_TZ);
}

struct local_case {
    int y, mo, d, h, mi, s;      /* UTC */
    int ly, lmo, ld, lh, lmi, ls; /* local */
    long offset;
    int dst;
};

static void check_local(struct fixture *fx, const char *tz, const struct local_case *cases, size_t n)
{
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, tz, NULL), DEVCLOCK_OK);
    for (size_t i = 0; i < n; i++) {
        const struct local_case *k = &cases[i];
        time_t t = utc_time(k->y, k->mo, k->d, k->h, k->mi, k->s);
        struct tm lt;
        long off = -99999;
        int dst = -1;
        assert_int_equal(devclock_local(fx->c, t, &lt, &off, &dst), DEVCLOCK_OK);
        if (lt.tm_year + 1900 != k->ly || lt.tm_mon + 1 != k->lmo || lt.tm_mday != k->ld || lt.tm_hour != k->lh ||
            lt.tm_min != k->lmi || lt.tm_sec != k->ls || off != k->offset || dst != k->dst || lt.tm_isdst != k->dst)
            fail_msg("%s case #%zu: got %04d-%02d-%02d %02d:%02d:%02d offset %ld dst %d", tz, i, lt.tm_year + 1900,
                     lt.tm_mon + 1, lt.tm_mday, lt.tm_hour, lt.tm_min, lt.tm_sec, off, dst);
    }
}

static void test_local_berlin(void **state)
{
    static const struct local_case cases[] = {
        { 2026, 7, 1, 12, 0, 0, 2026, 7, 1, 14, 0, 0, 7200, 1 },
        { 2026, 1, 15, 12, 0, 0, 2026, 1, 15, 13, 0, 0, 3600, 0 },
        { 2026, 3, 29, 0, 59, 59, 2026, 3, 29, 1, 59, 59, 3600, 0 },
        { 2026, 3, 29, 1, 0, 0, 2026, 3, 29, 3, 0, 0, 7200, 1 },
        { 2026, 10, 25, 0, 59, 59, 2026, 10, 25, 2, 59, 59, 7200, 1 },
        { 2026, 10, 25, 1, 0, 0, 2026, 10, 25, 2, 0, 0, 3600, 0 },
        { 2026, 12, 31, 23, 30, 0, 2027, 1, 1, 0, 30, 0, 3600, 0 },
    };
    check_local(*state, "CET-1CEST,M3.5.0,M10.5.0/3", cases, sizeof cases / sizeof cases[0]);
}

static void test_local_new_york(void **state)
{
    static const struct local_case cases[] = {
        { 2026, 3, 8, 6, 59, 59, 2026, 3, 8, 1, 59, 59, -18000, 0 },
        { 2026, 3, 8, 7, 0, 0, 2026, 3, 8, 3, 0, 0, -14400, 1 },
        { 2026, 11, 1, 5, 59, 59, 2026, 11, 1, 1, 59, 59, -14400, 1 },
        { 2026, 11, 1, 6, 0, 0, 2026, 11, 1, 1, 0, 0, -18000, 0 },
        { 2026, 1, 1, 3, 0, 0, 2025, 12, 31, 22, 0, 0, -18000, 0 },
    };
    check_local(*state, "EST5EDT,M3.2.0,M11.1.0", cases, sizeof cases / sizeof cases[0]);
    /* Without a rule, the US default applies. */
    check_local(*state, "EST5EDT", cases, sizeof cases / sizeof cases[0]);
}

static void test_local_sydney_southern_hemisphere(void **state)
{
    static const struct local_case cases[] = {
        { 2026, 1, 15, 0, 0, 0, 2026, 1, 15, 11, 0, 0, 39600, 1 },
        { 2026, 7, 1, 0, 0, 0, 2026, 7, 1, 10, 0, 0, 36000, 0 },
        { 2026, 4, 4, 15, 59, 59, 2026, 4, 5, 2, 59, 59, 39600, 1 },
        { 2026, 4, 4, 16, 0, 0, 2026, 4, 5, 2, 0, 0, 36000, 0 },
        { 2026, 10, 3, 15, 59, 59, 2026, 10, 4, 1, 59, 59, 36000, 0 },
        { 2026, 10, 3, 16, 0, 0, 2026, 10, 4, 3, 0, 0, 39600, 1 },
        { 2026, 12, 31, 13, 0, 0, 2027, 1, 1, 0, 0, 0, 39600, 1 },
    };
    check_local(*state, "AEST-10AEDT,M10.1.0,M4.1.0/3", cases, sizeof cases / sizeof cases[0]);
}

static void test_local_kolkata_and_utc(void **state)
{
    static const struct local_case kolkata[] = {
        { 2026, 7, 1, 12, 0, 0, 2026, 7, 1, 17, 30, 0, 19800, 0 },
        { 2026, 12, 31, 20, 0, 0, 2027, 1, 1, 1, 30, 0, 19800, 0 },
    };
    check_local(*state, "<+0530>-5:30", kolkata, sizeof kolkata / sizeof kolkata[0]);
    static const struct local_case utc[] = {
        { 2026, 7, 1, 12, 0, 0, 2026, 7, 1, 12, 0, 0, 0, 0 },
    };
    check_local(*state, "", utc, 1);
    check_local(*state, "UTC0", utc, 1);
    static const struct local_case tokyo[] = {
        { 2026, 7, 1, 20, 0, 0, 2026, 7, 2, 5, 0, 0, 32400, 0 },
    };
    check_local(*state, "JST-9", tokyo, 1);
}

/* "DST all year" (RFC 8536 3.3.1): the end of one year's DST is the start
 * of the next, so it never ends; glibc, which only looks at the current
 * UTC year, gets the first hours of each year wrong, so it is checked here. */
static void test_local_all_year_dst(void **state)
{
    static const struct local_case cases[] = {
        { 2024, 1, 1, 0, 0, 0, 2023, 12, 31, 21, 0, 0, -10800, 1 },
        { 2024, 1, 1, 4, 0, 0, 2024, 1, 1, 1, 0, 0, -10800, 1 },
        { 2024, 7, 1, 0, 0, 0, 2024, 6, 30, 21, 0, 0, -10800, 1 },
        { 2024, 12, 31, 23, 0, 0, 2024, 12, 31, 20, 0, 0, -10800, 1 },
    };
    check_local(*state, "WART4WARST,J1/0,J365/25", cases, sizeof cases / sizeof cases[0]);
}

/* The C library's own POSIX TZ code as an oracle over several years, hourly
 * plus a few minutes, for every rule form. */
static void test_local_agrees_with_libc(void **state)
{
    struct fixture *fx = *state;
    static const char *const zones[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3", "EST5EDT,M3.2.0,M11.1.0", "AEST-10AEDT,M10.1.0,M4.1.0/3",
        "NZST-12NZDT,M9.5.0,M4.1.0/3", "<+0530>-5:30", "GMT0BST,M3.5.0/1,M10.5.0",
        "ABC+12:30:15DEF+11,J60/1:30,300/23", "XYZ3ABC,M2.5.6/26,M11.5.6/-2", "AAA-2BBB,J59/12,J61/12",
        "CCC0DDD,59/12,61/12",
    };
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    time_t from = utc_time(2023, 12, 25, 0, 0, 0), to = utc_time(2028, 1, 5, 0, 0, 0);
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, zones[z], NULL), DEVCLOCK_OK);
        setenv("TZ", zones[z], 1);
        tzset();
        for (time_t t = from; t < to; t += 3600 + 7 * 60) {
            for (int edge = -1; edge <= 0; edge++) {
                time_t u = t - (t % 3600) + (edge ? -1 : 0) + (time_t)(z % 2) * 1800;
                struct tm mine, libc;
                long off;
                int dst;
                assert_int_equal(devclock_local(fx->c, u, &mine, &off, &dst), DEVCLOCK_OK);
                assert_non_null(localtime_r(&u, &libc));
                if (mine.tm_year != libc.tm_year || mine.tm_yday != libc.tm_yday || mine.tm_hour != libc.tm_hour ||
                    mine.tm_min != libc.tm_min || mine.tm_sec != libc.tm_sec || mine.tm_wday != libc.tm_wday ||
                    off != libc.tm_gmtoff || dst != (libc.tm_isdst > 0))
                    fail_msg("%s at %lld: mine %02d:%02d offset %ld dst %d, libc %02d:%02d offset %ld dst %d",
                             zones[z], (long long)u, mine.tm_hour, mine.tm_min, off, dst, libc.tm_hour,
                             libc.tm_min, (long)libc.tm_gmtoff, libc.tm_isdst);
            }
        }
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

/* --- NTP server names --------------------------------------------------------------- */

static void test_ntp_server_validation(void **state)
{
    struct fixture *fx = *state;
    char label63[80], name255[300], name254[300];
    memset(label63, 'a', 63);
    strcpy(label63 + 63, ".example");
    /* 4 x 63 + 3 dots = 255 (too long for a DNS name), 253 is the limit. */
    snprintf(name255, sizeof name255, "%.63s.%.63s.%.63s.%.63s", label63, label63, label63, label63);
    snprintf(name254, sizeof name254, "%.63s.%.63s.%.63s.%.61s", label63, label63, label63, label63);
    assert_int_equal(strlen(name254), 253);

    const char *const valid[] = {
        "pool.ntp.org", "ntp", "0.debian.pool.ntp.org", "time-a.nist.gov", "192.0.2.1", "192.0.2.1:123",
        "ntp.example.com:65535", "localhost:1", "2001:db8::1", "::1", "[2001:db8::1]", "[2001:db8::1]:123",
        "[::ffff:192.0.2.1]:4123", "A1-b2.Example.COM", label63, name254,
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const char *one[] = { valid[i] };
        int rc = devclock_set_ntp(fx->c, one, 1);
        if (rc != DEVCLOCK_OK)
            fail_msg("valid server '%s' refused (%d)", valid[i], rc);
    }
    char label64[80];
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".example");
    char too_long[DEVCLOCK_NTP_NAME_MAX + 2];
    memset(too_long, 'a', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    const char *const invalid[] = {
        "", "bad_name", "-lead.example", "trail-.example", "a..b", ".example", "example.", "exa mple",
        "ntp.example.com:0", "ntp.example.com:65536", "ntp.example.com:", "ntp.example.com:12a", "ntp.example.com:+12",
        "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4:99999", "01.2.3.4", "example.123", "2001:db8::1:123:",
        "[2001:db8::1", "[2001:db8::1]123", "[192.0.2.1]:123", "2001:db8::g", "[::1]:0", "host:1:2",
        "ntp.example.com/x", "http://pool.ntp.org", label64, name255, too_long, "ü.example",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const char *one[] = { invalid[i] };
        int rc = devclock_set_ntp(fx->c, one, 1);
        if (rc != DEVCLOCK_E_NTP_SERVER)
            fail_msg("invalid server #%zu '%s': got %d, expected DEVCLOCK_E_NTP_SERVER", i, invalid[i], rc);
    }
}

static void test_ntp_server_list_is_all_or_nothing(void **state)
{
    struct fixture *fx = *state;
    const char *two[] = { "a.example", "b.example" };
    assert_int_equal(devclock_set_ntp(fx->c, two, 2), DEVCLOCK_OK);
    const char *five[] = { "a.example", "b.example", "c.example", "d.example", "e.example" };
    assert_int_equal(devclock_set_ntp(fx->c, five, 5), DEVCLOCK_E_NTP_SERVER);
    const char *mixed[] = { "c.example", "bad name" };
    assert_int_equal(devclock_set_ntp(fx->c, mixed, 2), DEVCLOCK_E_NTP_SERVER);
    assert_int_equal(devclock_set_ntp(fx->c, NULL, 1), DEVCLOCK_E_INVALID);
    struct devclock_config cfg;
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.n_ntp, 2);
    assert_string_equal(cfg.ntp[0], "a.example");
    assert_string_equal(cfg.ntp[1], "b.example");
    assert_int_equal(devclock_set_ntp(fx->c, five, 4), DEVCLOCK_OK);
    devclock_get(fx->c, &cfg);
    assert_int_equal(cfg.n_ntp, 4);
    assert_string_equal(cfg.ntp[3], "d.example");
}

/* --- SNTP against a fake server --------------------------------------------------------- */

enum reply_kind {
    R_GOOD, R_VN3, R_SILENT, R_MODE3, R_STRATUM0, R_STRATUM16, R_LI3, R_VN2, R_BAD_ORIGINATE, R_SHORT,
    R_ZERO_TRANSMIT, R_OTHER_SOCKET, R_FORGED_THEN_GOOD,
};

struct fake_ntp {
    int family;
    int fd, other_fd;
    unsigned short port;
    double offset_s;
    enum reply_kind kind;
    atomic_int stop;
    atomic_int requests;
    pthread_t thread;
};

static uint64_t ntp_stamp(double offset_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double frac = (double)ts.tv_nsec / 1e9 + offset_s;
    double whole = (double)(int64_t)frac;
    if (whole > frac)
        whole -= 1;
    int64_t sec = (int64_t)ts.tv_sec + (int64_t)whole + (int64_t)NTP_EPOCH;
    uint64_t f = (uint64_t)((frac - whole) * 4294967296.0);
    return ((uint64_t)sec << 32) | (f & 0xffffffffULL);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static void *fake_ntp_main(void *arg)
{
    struct fake_ntp *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        unsigned char req[128], r[48] = { 0 };
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(s->fd, req, sizeof req, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 48)
            continue;
        atomic_fetch_add(&s->requests, 1);
        if (s->kind == R_SILENT)
            continue;
        uint64_t t2 = ntp_stamp(s->offset_s);
        r[0] = (0 << 6) | (4 << 3) | 4;
        r[1] = 2;
        memcpy(r + 12, "LOCL", 4);
        put64(r + 16, t2);
        memcpy(r + 24, req + 40, 8);
        put64(r + 32, t2);
        put64(r + 40, ntp_stamp(s->offset_s));
        size_t len = sizeof r;
        int fd = s->fd;
        switch (s->kind) {
        case R_VN3: r[0] = (3 << 3) | 4; break;
        case R_MODE3: r[0] = (4 << 3) | 3; break;
        case R_STRATUM0: r[1] = 0; break;
        case R_STRATUM16: r[1] = 16; break;
        case R_LI3: r[0] |= 3 << 6; break;
        case R_VN2: r[0] = (2 << 3) | 4; break;
        case R_BAD_ORIGINATE: r[31] ^= 1; break;
        case R_SHORT: len = 47; break;
        case R_ZERO_TRANSMIT: memset(r + 40, 0, 8); break;
        case R_OTHER_SOCKET: fd = s->other_fd; break;
        case R_FORGED_THEN_GOOD: {
            unsigned char forged[48];
            memcpy(forged, r, sizeof forged);
            forged[31] ^= 1;
            put64(forged + 40, ntp_stamp(s->offset_s + 1000));
            sendto(fd, forged, sizeof forged, 0, (struct sockaddr *)&from, fromlen);
            break;
        }
        default: break;
        }
        sendto(fd, r, len, 0, (struct sockaddr *)&from, fromlen);
    }
    return NULL;
}

static int bind_loopback(int family, unsigned short *port)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = { 0 };
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static int fake_ntp_start(struct fake_ntp *s, int family, enum reply_kind kind, double offset_s)
{
    memset(s, 0, sizeof *s);
    s->family = family;
    s->kind = kind;
    s->offset_s = offset_s;
    unsigned short other_port;
    s->fd = bind_loopback(family, &s->port);
    s->other_fd = bind_loopback(family, &other_port);
    if (s->fd < 0 || s->other_fd < 0)
        return -1;
    return pthread_create(&s->thread, NULL, fake_ntp_main, s) == 0 ? 0 : -1;
}

static void fake_ntp_stop(struct fake_ntp *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    close(s->other_fd);
}

static void server_name(const struct fake_ntp *s, char *out, size_t len)
{
    if (s->family == AF_INET)
        snprintf(out, len, "127.0.0.1:%u", s->port);
    else
        snprintf(out, len, "[::1]:%u", s->port);
}

static void use_servers(struct fixture *fx, const struct fake_ntp *const *servers, size_t n)
{
    char names[DEVCLOCK_MAX_NTP][64];
    const char *list[DEVCLOCK_MAX_NTP];
    for (size_t i = 0; i < n; i++) {
        server_name(servers[i], names[i], sizeof names[i]);
        list[i] = names[i];
    }
    assert_int_equal(devclock_set_ntp(fx->c, list, n), DEVCLOCK_OK);
}

static int64_t elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void test_ntp_sync_steps_the_clock_and_persists(void **state)
{
    struct fixture *fx = *state;
    struct fake_ntp s;
    assert_int_equal(fake_ntp_start(&s, AF_INET, R_GOOD, 123.5), 0);
    const struct fake_ntp *list[] = { &s };
    use_servers(fx, list, 1);
    assert_true(fabs_(device_minus_host(fx->c)) < 0.2);
    double step = 0;
    assert_int_equal(devclock_sync_ntp(fx->c, &step), DEVCLOCK_OK);
    assert_true(fabs_(step - 123.5) < 0.2);
    assert_true(fabs_(device_minus_host(fx->c) - 123.5) < 0.2);

    /* A second exchange finds the clock right. */
    assert_int_equal(devclock_sync_ntp(fx->c, &step), DEVCLOCK_OK);
    assert_true(fabs_(step) < 0.2);
    fake_ntp_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 2);

    reopen(fx);
    assert_true(fabs_(device_minus_host(fx->c) - 123.5) < 0.2);
}

static void test_ntp_sync_negative_offset_version3_and_ipv6(void **state)
{
    struct fixture *fx = *state;
    struct fake_ntp s;
    assert_int_equal(fake_ntp_start(&s, AF_INET, R_VN3, -7200.25), 0);
    const struct fake_ntp *list[] = { &s };
    use_servers(fx, list, 1);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_OK);
    fake_ntp_stop(&s);
    assert_true(fabs_(device_minus_host(fx->c) + 7200.25) < 0.2);

    struct fake_ntp s6;
    if (fake_ntp_start(&s6, AF_INET6, R_GOOD, 5.0) != 0) {
        /* No IPv6 loopback here: the IPv4 part has run. */
        if (s6.fd >= 0)
            close(s6.fd);
        if (s6.other_fd >= 0)
            close(s6.other_fd);
        return;
    }
    list[0] = &s6;
    use_servers(fx, list, 1);
    double step = 0;
    assert_int_equal(devclock_sync_ntp(fx->c, &step), DEVCLOCK_OK);
    fake_ntp_stop(&s6);
    assert_true(fabs_(step - (5.0 + 7200.25)) < 0.2);
    assert_true(fabs_(device_minus_host(fx->c) - 5.0) < 0.2);
}

static void test_ntp_bad_replies_are_refused(void **state)
{
    struct fixture *fx = *state;
    static const enum reply_kind bad[] = {
        R_MODE3, R_STRATUM0, R_STRATUM16, R_LI3, R_VN2, R_BAD_ORIGINATE, R_SHORT, R_ZERO_TRANSMIT, R_OTHER_SOCKET,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake_ntp s;
        assert_int_equal(fake_ntp_start(&s, AF_INET, bad[i], 123.5), 0);
        const struct fake_ntp *list[] = { &s };
        use_servers(fx, list, 1);
        char *before = clock_file(fx);
        double step = 42;
        int rc = devclock_sync_ntp(fx->c, &step);
        fake_ntp_stop(&s);
        if (rc != DEVCLOCK_E_NTP)
            fail_msg("bad reply kind #%zu: got %d, expected DEVCLOCK_E_NTP", i, rc);
        assert_int_equal(atomic_load(&s.requests), 1);
        assert_true(step == 42);
        assert_true(fabs_(device_minus_host(fx->c)) < 0.2);
        char *after = clock_file(fx);
        assert_non_null(before);
        assert_non_null(after);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }
}

static void test_ntp_forged_reply_is_ignored_then_genuine_accepted(void **state)
{
    struct fixture *fx = *state;
    struct fake_ntp s;
    assert_int_equal(fake_ntp_start(&s, AF_INET, R_FORGED_THEN_GOOD, 60.0), 0);
    const struct fake_ntp *list[] = { &s };
    use_servers(fx, list, 1);
    double step = 0;
    assert_int_equal(devclock_sync_ntp(fx->c, &step), DEVCLOCK_OK);
    fake_ntp_stop(&s);
    assert_true(fabs_(step - 60.0) < 0.2);
}

static void test_ntp_silent_server_times_out(void **state)
{
    struct fixture *fx = *state;
    struct fake_ntp s;
    assert_int_equal(fake_ntp_start(&s, AF_INET, R_SILENT, 0), 0);
    const struct fake_ntp *list[] = { &s };
    use_servers(fx, list, 1);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_E_NTP);
    int64_t ms = elapsed_ms(&t0);
    fake_ntp_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 1);
    if (ms < 250 || ms > 1000)
        fail_msg("timed out after %lld ms, expected about 300", (long long)ms);
    assert_true(fabs_(device_minus_host(fx->c)) < 0.2);
}

static void test_ntp_falls_back_to_the_next_server(void **state)
{
    struct fixture *fx = *state;
    struct fake_ntp silent, bad, good;
    assert_int_equal(fake_ntp_start(&silent, AF_INET, R_SILENT, 0), 0);
    assert_int_equal(fake_ntp_start(&bad, AF_INET, R_STRATUM0, 500), 0);
    assert_int_equal(fake_ntp_start(&good, AF_INET, R_GOOD, -30), 0);
    const struct fake_ntp *list[] = { &silent, &bad, &good };
    use_servers(fx, list, 3);
    double step = 0;
    assert_int_equal(devclock_sync_ntp(fx->c, &step), DEVCLOCK_OK);
    fake_ntp_stop(&silent);
    fake_ntp_stop(&bad);
    fake_ntp_stop(&good);
    assert_int_equal(atomic_load(&silent.requests), 1);
    assert_int_equal(atomic_load(&bad.requests), 1);
    assert_int_equal(atomic_load(&good.requests), 1);
    assert_true(fabs_(step + 30) < 0.2);
}

static void test_ntp_step_larger_than_the_limit_is_refused(void **state)
{
    struct fixture *fx = *state;
    devclock_close(fx->c);
    fx->settings.ntp_max_step_s = 60;
    assert_int_equal(devclock_open(&fx->c, fx->dir.path, &fx->settings), DEVCLOCK_OK);
    struct fake_ntp far, near;
    assert_int_equal(fake_ntp_start(&far, AF_INET, R_GOOD, 123.5), 0);
    assert_int_equal(fake_ntp_start(&near, AF_INET, R_GOOD, -45), 0);
    const struct fake_ntp *list[] = { &far };
    use_servers(fx, list, 1);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_E_NTP);
    assert_int_equal(atomic_load(&far.requests), 1);
    assert_true(fabs_(device_minus_host(fx->c)) < 0.2);
    list[0] = &near;
    use_servers(fx, list, 1);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_OK);
    fake_ntp_stop(&far);
    fake_ntp_stop(&near);
    assert_true(fabs_(device_minus_host(fx->c) + 45) < 0.2);
}

/* After a good synchronisation, a later large step is refused; a manual
 * set starts over. */
static void test_ntp_resync_step_is_bounded(void **state)
{
    struct fixture *fx = *state;
    devclock_close(fx->c);
    fx->settings.ntp_max_resync_step_s = 60;
    assert_int_equal(devclock_open(&fx->c, fx->dir.path, &fx->settings), DEVCLOCK_OK);
    struct fake_ntp first, jump;
    assert_int_equal(fake_ntp_start(&first, AF_INET, R_GOOD, 500), 0);
    const struct fake_ntp *list[] = { &first };
    use_servers(fx, list, 1);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_OK);   /* first: any step */
    assert_true(fabs_(device_minus_host(fx->c) - 500) < 0.2);
    fake_ntp_stop(&first);
    assert_int_equal(fake_ntp_start(&jump, AF_INET, R_GOOD, -300), 0);
    list[0] = &jump;
    use_servers(fx, list, 1);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_E_NTP);
    assert_true(fabs_(device_minus_host(fx->c) - 500) < 0.2);
    struct tm utc;
    time_t now = devclock_now(fx->c);
    gmtime_r(&now, &utc);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &utc), DEVCLOCK_OK);
    use_servers(fx, list, 1);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_OK);   /* a manual set starts over */
    fake_ntp_stop(&jump);
}

static void test_ntp_without_servers_fails(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_E_NTP);
    /* A closed port answers with ICMP at once: no answer, and no waiting. */
    unsigned short port;
    int fd = bind_loopback(AF_INET, &port);
    assert_true(fd >= 0);
    close(fd);
    char name[32];
    snprintf(name, sizeof name, "127.0.0.1:%u", port);
    const char *list[] = { name };
    assert_int_equal(devclock_set_ntp(fx->c, list, 1), DEVCLOCK_OK);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(devclock_sync_ntp(fx->c, NULL), DEVCLOCK_E_NTP);
    assert_true(elapsed_ms(&t0) < 250);
    assert_true(fabs_(device_minus_host(fx->c)) < 0.2);
}

/* --- global clock and messages -------------------------------------------------------------- */

static void test_global_clock(void **state)
{
    struct fixture *fx = *state;
    devclock_set_global(NULL);
    time_t host = time(NULL);
    time_t g = devclock_global_now();
    assert_true(g >= host && g <= host + 2);
    struct tm t = utc_tm(2040, 2, 3, 4, 5, 6);
    assert_int_equal(devclock_set(fx->c, DEVCLOCK_MANUAL, 0, NULL, &t), DEVCLOCK_OK);
    devclock_set_global(fx->c);
    assert_int_equal(devclock_global_now(), timegm(&t));
    struct timespec ts;
    devclock_global_now_ts(&ts);
    assert_int_equal(ts.tv_sec, timegm(&t));
    /* Closing the global clock falls back to the host clock, not to freed memory. */
    devclock_close(fx->c);
    fx->c = NULL;
    g = devclock_global_now();
    assert_true(g >= host && g <= host + 2);
    assert_int_equal(devclock_open(&fx->c, fx->dir.path, &fx->settings), DEVCLOCK_OK);
}

static void test_every_error_has_its_own_message(void **state)
{
    const int codes[] = { DEVCLOCK_OK, DEVCLOCK_E_STORE, DEVCLOCK_E_NOMEM, DEVCLOCK_E_INVALID, DEVCLOCK_E_TZ,
                          DEVCLOCK_E_TIME, DEVCLOCK_E_NTP_SERVER, DEVCLOCK_E_NTP };
    const char *unknown = devclock_strerror(12345);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_non_null(devclock_strerror(codes[i]));
        assert_string_not_equal(devclock_strerror(codes[i]), unknown);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(devclock_strerror(codes[i]), devclock_strerror(codes[j]));
    }
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
#define NTP_TEST(fn) cmocka_unit_test_setup_teardown(fn, ntp_fixture_setup, fixture_teardown)

static const struct CMUnitTest regular_tests[] = {
    FIXTURE_TEST(test_fresh_clock_is_manual_utc_host_time),
    FIXTURE_TEST(test_manual_set_applies_an_offset_to_the_host_clock),
    FIXTURE_TEST(test_manual_set_into_the_past_of_the_host),
    FIXTURE_TEST(test_range_edges_and_leap_second),
    FIXTURE_TEST(test_invalid_dates_are_refused_and_change_nothing),
    FIXTURE_TEST(test_bad_tz_or_type_changes_nothing),
    FIXTURE_TEST(test_ntp_type_and_null_utc_keep_the_clock),
    FIXTURE_TEST(test_settings_and_offset_survive_reopen),
    FIXTURE_TEST(test_empty_server_list_and_utc_survive_reopen),
    FIXTURE_TEST(test_corrupt_file_refuses_open_and_is_kept),
    FIXTURE_TEST(test_failed_save_changes_nothing),
    cmocka_unit_test(test_tz_validation),
    FIXTURE_TEST(test_local_berlin),
    FIXTURE_TEST(test_local_new_york),
    FIXTURE_TEST(test_local_sydney_southern_hemisphere),
    FIXTURE_TEST(test_local_kolkata_and_utc),
    FIXTURE_TEST(test_local_all_year_dst),
    FIXTURE_TEST(test_local_agrees_with_libc),
    FIXTURE_TEST(test_ntp_server_validation),
    FIXTURE_TEST(test_ntp_server_list_is_all_or_nothing),
    NTP_TEST(test_ntp_sync_steps_the_clock_and_persists),
    NTP_TEST(test_ntp_sync_negative_offset_version3_and_ipv6),
    NTP_TEST(test_ntp_bad_replies_are_refused),
    NTP_TEST(test_ntp_forged_reply_is_ignored_then_genuine_accepted),
    NTP_TEST(test_ntp_silent_server_times_out),
    NTP_TEST(test_ntp_falls_back_to_the_next_server),
    NTP_TEST(test_ntp_step_larger_than_the_limit_is_refused),
    NTP_TEST(test_ntp_resync_step_is_bounded),
    NTP_TEST(test_ntp_without_servers_fails),
    FIXTURE_TEST(test_global_clock),
    cmocka_unit_test(test_every_error_has_its_own_message),
};

UNIT_MAIN("devclock", regular_tests)
