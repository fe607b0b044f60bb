/* Unit tests for ipfilter: entry validation, prefix matching at the edges
 * (/0, /32, /128, /23, /57), IPv4-mapped peers, Allow vs Deny, lockout
 * refusal, all-or-nothing set/add/remove, persistence and file mode, refusal
 * of a corrupt file, failed saves, list limits, and peer checks racing rule
 * changes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "opennvt/ipfilter.h"
#include "unit_helpers.h"

struct fixture {
    struct temp_dir dir;
    struct ipfilter *f;
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    if (ipfilter_open(&fx->f, fx->dir.path) != IPFILTER_OK) {
        temp_fixture_free(&fx->dir, fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    ipfilter_close(fx->f);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen(struct fixture *fx)
{
    ipfilter_close(fx->f);
    fx->f = NULL;
    assert_int_equal(ipfilter_open(&fx->f, fx->dir.path), IPFILTER_OK);
}

static const char *filter_path(char *out, const struct fixture *fx)
{
    return path_in(out, fx->dir.path, "ipfilter.xml");
}

/* A peer address from text: IPv6 when it has a colon. */
static struct sockaddr_storage peer(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(80);
        if (inet_pton(AF_INET6, text, &s6->sin6_addr) != 1)
            fail_msg("bad test address %s", text);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(80);
        if (inet_pton(AF_INET, text, &s4->sin_addr) != 1)
            fail_msg("bad test address %s", text);
    }
    return ss;
}

static int allows(struct ipfilter *f, const char *text)
{
    struct sockaddr_storage ss = peer(text);
    return ipfilter_allows(f, (const struct sockaddr *)&ss);
}

static struct ipfilter_prefix pfx(const char *addr, int len)
{
    struct ipfilter_prefix p;
    memset(&p, 0, sizeof p);
    snprintf(p.address, sizeof p.address, "%s", addr);
    p.prefix_len = len;
    return p;
}

/* Rules from "addr/len" strings; an entry with a colon goes to the v6 list. */
static struct ipfilter_rules *make_rules(enum ipfilter_type type, const char *const *entries, size_t n)
{
    struct ipfilter_rules *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->type = type;
    for (size_t i = 0; i < n; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "%s", entries[i]);
        char *slash = strrchr(addr, '/');
        int len = slash ? atoi(slash + 1) : -1;
        if (slash)
            *slash = '\0';
        if (strchr(addr, ':'))
            r->v6[r->n_v6++] = pfx(addr, len);
        else
            r->v4[r->n_v4++] = pfx(addr, len);
    }
    return r;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void set_ok(struct ipfilter *f, enum ipfilter_type type, const char *const *entries, size_t n)
{
    struct ipfilter_rules *r = make_rules(type, entries, n);
    size_t bad = 0;
    int rc = ipfilter_set(f, r, NULL, &bad);
    free(r);
    if (rc != IPFILTER_OK)
        fail_msg("set failed: %s (entry %zu)", ipfilter_strerror(rc), bad);
}

/* Asserts the current rules: type and exactly the given "addr/len" entries, in order. */
static void assert_rules(struct ipfilter *f, enum ipfilter_type type, const char *const *entries, size_t n)
{
    struct ipfilter_rules *got = calloc(1, sizeof *got);
    assert_non_null(got);
    assert_int_equal(ipfilter_get(f, got), IPFILTER_OK);
    assert_int_equal(got->type, type);
    size_t k4 = 0, k6 = 0;
    for (size_t i = 0; i < n; i++) {
        char text[96];
        const struct ipfilter_prefix *p = NULL;
        if (strchr(entries[i], ':'))
            p = k6 < got->n_v6 ? &got->v6[k6++] : NULL;
        else
            p = k4 < got->n_v4 ? &got->v4[k4++] : NULL;
        if (!p)
            fail_msg("entry %s missing", entries[i]);
        snprintf(text, sizeof text, "%s/%d", p->address, p->prefix_len);
        assert_string_equal(text, entries[i]);
    }
    assert_int_equal(got->n_v4, k4);
    assert_int_equal(got->n_v6, k6);
    free(got);
}

/* --- validation ----------------------------------------------------------- */

static void test_prefix_validation(void **state)
{
    (void)state;
    struct { const char *a; int len; } v4_ok[] = {
        { "0.0.0.0", 0 }, { "192.0.2.0", 24 }, { "255.255.255.255", 32 }, { "10.1.2.3", 0 },
    };
    for (size_t i = 0; i < N_OF(v4_ok); i++) {
        struct ipfilter_prefix p = pfx(v4_ok[i].a, v4_ok[i].len);
        if (ipfilter_prefix_valid(AF_INET, &p) != IPFILTER_OK)
            fail_msg("%s/%d refused", v4_ok[i].a, v4_ok[i].len);
    }
    struct { const char *a; int len; } v4_bad[] = {
        { "192.0.2.0", 33 }, { "192.0.2.0", -1 }, { "256.0.0.1", 8 }, { "1.2.3", 8 }, { "1.2.3.4.5", 8 },
        { "01.2.3.4", 8 }, { "0x1.2.3.4", 8 }, { "1.2.3.4 ", 8 }, { " 1.2.3.4", 8 }, { "", 8 },
        { "192.0.2.0/24", 24 }, { "::1", 8 }, { "::ffff:1.2.3.4", 8 }, { "localhost", 8 },
    };
    for (size_t i = 0; i < N_OF(v4_bad); i++) {
        struct ipfilter_prefix p = pfx(v4_bad[i].a, v4_bad[i].len);
        if (ipfilter_prefix_valid(AF_INET, &p) != IPFILTER_E_INVALID_V4)
            fail_msg("IPv4 '%s'/%d accepted", v4_bad[i].a, v4_bad[i].len);
    }
    struct { const char *a; int len; } v6_ok[] = {
        { "::", 0 }, { "2001:db8::", 32 }, { "2001:DB8:0::1", 128 }, { "::ffff:192.0.2.0", 120 }, { "fe80::", 10 },
    };
    for (size_t i = 0; i < N_OF(v6_ok); i++) {
        struct ipfilter_prefix p = pfx(v6_ok[i].a, v6_ok[i].len);
        if (ipfilter_prefix_valid(AF_INET6, &p) != IPFILTER_OK)
            fail_msg("%s/%d refused", v6_ok[i].a, v6_ok[i].len);
    }
    struct { const char *a; int len; } v6_bad[] = {
        { "2001:db8::", 129 }, { "2001:db8::", -1 }, { "2001:db8:::1", 64 }, { "fe80::1%eth0", 64 },
        { "192.0.2.1", 64 }, { "2001:db8::/32", 32 }, { "", 0 }, { " ::1", 128 }, { "1:2:3:4:5:6:7:8:9", 64 },
        { "g::", 16 },
    };
    for (size_t i = 0; i < N_OF(v6_bad); i++) {
        struct ipfilter_prefix p = pfx(v6_bad[i].a, v6_bad[i].len);
        if (ipfilter_prefix_valid(AF_INET6, &p) != IPFILTER_E_INVALID_V6)
            fail_msg("IPv6 '%s'/%d accepted", v6_bad[i].a, v6_bad[i].len);
    }
    /* An address field without its terminator is refused, not overread. */
    struct ipfilter_prefix unterminated;
    memset(unterminated.address, '1', sizeof unterminated.address);
    unterminated.prefix_len = 8;
    assert_int_equal(ipfilter_prefix_valid(AF_INET, &unterminated), IPFILTER_E_INVALID_V4);
    assert_int_equal(ipfilter_prefix_valid(AF_INET6, &unterminated), IPFILTER_E_INVALID_V6);
    struct ipfilter_prefix ok = pfx("192.0.2.0", 24);
    assert_int_not_equal(ipfilter_prefix_valid(AF_UNIX, &ok), IPFILTER_OK);
    assert_int_equal(ipfilter_prefix_valid(AF_INET, NULL), IPFILTER_E_INVALID_V4);
}

static void test_every_error_has_its_own_message(void **state)
{
    (void)state;
    const int errs[] = { IPFILTER_OK, IPFILTER_E_INVALID_V4, IPFILTER_E_INVALID_V6, IPFILTER_E_TOO_MANY,
                         IPFILTER_E_LOCKOUT, IPFILTER_E_NO_ENTRY, IPFILTER_E_STORE, IPFILTER_E_NOMEM,
                         IPFILTER_E_INVALID_TYPE };
    const char *unknown = ipfilter_strerror(12345);
    for (size_t i = 0; i < N_OF(errs); i++) {
        assert_string_not_equal(ipfilter_strerror(errs[i]), unknown);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(ipfilter_strerror(errs[i]), ipfilter_strerror(errs[j]));
    }
}

/* --- first open ----------------------------------------------------------- */

static void test_absent_file_is_deny_nothing(void **state)
{
    struct fixture *fx = *state;
    assert_rules(fx->f, IPFILTER_DENY, NULL, 0);
    assert_int_equal(allows(fx->f, "192.0.2.1"), 1);
    assert_int_equal(allows(fx->f, "2001:db8::1"), 1);
    assert_int_equal(allows(fx->f, "::ffff:10.0.0.1"), 1);
    /* Opening does not write anything. */
    assert_int_equal(count_dir_entries(fx->dir.path), 0);
}

static void test_non_ip_peer_always_allowed_and_null_refused(void **state)
{
    struct fixture *fx = *state;
    const char *none[] = { "127.0.0.1/32" };
    set_ok(fx->f, IPFILTER_ALLOW, none, 1);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    assert_int_equal(ipfilter_allows(fx->f, (const struct sockaddr *)&un), 1);
    assert_int_equal(ipfilter_allows(fx->f, NULL), 0);
    assert_int_equal(allows(fx->f, "10.0.0.1"), 0);
}

/* --- matching ------------------------------------------------------------- */

static void test_ipv4_prefix_edges(void **state)
{
    struct fixture *fx = *state;
    const char *all[] = { "0.0.0.0/0" };
    set_ok(fx->f, IPFILTER_ALLOW, all, 1);
    assert_int_equal(allows(fx->f, "0.0.0.0"), 1);
    assert_int_equal(allows(fx->f, "255.255.255.255"), 1);
    assert_int_equal(allows(fx->f, "::ffff:203.0.113.9"), 1);
    assert_int_equal(allows(fx->f, "2001:db8::1"), 0); /* an IPv4 rule says nothing for IPv6 */

    /* /0 with host bits given still matches everything. */
    const char *all_odd[] = { "203.0.113.9/0" };
    set_ok(fx->f, IPFILTER_ALLOW, all_odd, 1);
    assert_int_equal(allows(fx->f, "1.2.3.4"), 1);

    const char *host[] = { "192.0.2.7/32" };
    set_ok(fx->f, IPFILTER_ALLOW, host, 1);
    assert_int_equal(allows(fx->f, "192.0.2.7"), 1);
    assert_int_equal(allows(fx->f, "192.0.2.6"), 0);
    assert_int_equal(allows(fx->f, "192.0.2.8"), 0);
    assert_int_equal(allows(fx->f, "64.0.2.7"), 0);

    /* /23 with host bits set in the given network: stored as given, matched masked. */
    const char *odd[] = { "192.0.3.77/23" };
    set_ok(fx->f, IPFILTER_ALLOW, odd, 1);
    assert_rules(fx->f, IPFILTER_ALLOW, odd, 1);
    assert_int_equal(allows(fx->f, "192.0.2.0"), 1);
    assert_int_equal(allows(fx->f, "192.0.2.1"), 1);
    assert_int_equal(allows(fx->f, "192.0.3.255"), 1);
    assert_int_equal(allows(fx->f, "192.0.1.255"), 0);
    assert_int_equal(allows(fx->f, "192.0.4.0"), 0);

    const char *one_bit[] = { "128.0.0.0/1" };
    set_ok(fx->f, IPFILTER_ALLOW, one_bit, 1);
    assert_int_equal(allows(fx->f, "128.0.0.0"), 1);
    assert_int_equal(allows(fx->f, "255.1.1.1"), 1);
    assert_int_equal(allows(fx->f, "127.255.255.255"), 0);

    const char *thirty_one[] = { "198.51.100.4/31" };
    set_ok(fx->f, IPFILTER_ALLOW, thirty_one, 1);
    assert_int_equal(allows(fx->f, "198.51.100.4"), 1);
    assert_int_equal(allows(fx->f, "198.51.100.5"), 1);
    assert_int_equal(allows(fx->f, "198.51.100.6"), 0);
    assert_int_equal(allows(fx->f, "198.51.100.3"), 0);
}

static void test_ipv6_prefix_edges(void **state)
{
    struct fixture *fx = *state;
    const char *all[] = { "::/0" };
    set_ok(fx->f, IPFILTER_ALLOW, all, 1);
    assert_int_equal(allows(fx->f, "::1"), 1);
    assert_int_equal(allows(fx->f, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 1);
    /* ::/0 is "all IPv6"; it does not reach into IPv4 (mapped or not). */
    assert_int_equal(allows(fx->f, "192.0.2.1"), 0);
    assert_int_equal(allows(fx->f, "::ffff:192.0.2.1"), 0);

    const char *host[] = { "2001:db8::1/128" };
    set_ok(fx->f, IPFILTER_ALLOW, host, 1);
    assert_int_equal(allows(fx->f, "2001:db8::1"), 1);
    assert_int_equal(allows(fx->f, "2001:db8::"), 0);
    assert_int_equal(allows(fx->f, "2001:db8::2"), 0);
    assert_int_equal(allows(fx->f, "2001:db8:8000::1"), 0);

    /* /57: the first 9 bits of the fourth group are 0000 0000 1, so 0x80..0xff. */
    const char *odd[] = { "2001:db8:0:c3::1/57" };
    set_ok(fx->f, IPFILTER_ALLOW, odd, 1);
    assert_rules(fx->f, IPFILTER_ALLOW, odd, 1);
    assert_int_equal(allows(fx->f, "2001:db8:0:80::"), 1);
    assert_int_equal(allows(fx->f, "2001:db8:0:ff:ffff:ffff:ffff:ffff"), 1);
    assert_int_equal(allows(fx->f, "2001:db8:0:7f:ffff:ffff:ffff:ffff"), 0);
    assert_int_equal(allows(fx->f, "2001:db8:0:100::"), 0);
    assert_int_equal(allows(fx->f, "2001:db8:1:80::"), 0);
    assert_int_equal(allows(fx->f, "192.0.2.1"), 0);

    const char *top[] = { "fe80::/10" };
    set_ok(fx->f, IPFILTER_ALLOW, top, 1);
    assert_int_equal(allows(fx->f, "fe80::1"), 1);
    assert_int_equal(allows(fx->f, "febf:ffff::1"), 1);
    assert_int_equal(allows(fx->f, "fec0::1"), 0);
    assert_int_equal(allows(fx->f, "fe7f::1"), 0);
}

static void test_ipv4_mapped_peers(void **state)
{
    struct fixture *fx = *state;
    /* Mapped peers (dual-stack sockets) are matched against the IPv4 list. */
    const char *v4[] = { "192.0.2.0/24", "2001:db8::/32" };
    set_ok(fx->f, IPFILTER_ALLOW, v4, 2);
    assert_int_equal(allows(fx->f, "::ffff:192.0.2.5"), 1);
    assert_int_equal(allows(fx->f, "192.0.2.5"), 1);
    assert_int_equal(allows(fx->f, "::ffff:198.51.100.1"), 0);
    assert_int_equal(allows(fx->f, "2001:db8::5"), 1);
    /* IPv4-compatible (deprecated ::a.b.c.d) is not mapped: plain IPv6. */
    assert_int_equal(allows(fx->f, "::192.0.2.5"), 0);

    /* A mapped entry in the IPv6 list admits the IPv4 peer on either socket type. */
    const char *mapped[] = { "::ffff:198.51.100.0/120" };
    set_ok(fx->f, IPFILTER_ALLOW, mapped, 1);
    assert_rules(fx->f, IPFILTER_ALLOW, mapped, 1);
    assert_int_equal(allows(fx->f, "198.51.100.7"), 1);
    assert_int_equal(allows(fx->f, "::ffff:198.51.100.7"), 1);
    assert_int_equal(allows(fx->f, "198.51.101.7"), 0);
    assert_int_equal(allows(fx->f, "::198.51.100.7"), 0);

    const char *all_mapped[] = { "::ffff:0.0.0.0/96" };
    set_ok(fx->f, IPFILTER_ALLOW, all_mapped, 1);
    assert_int_equal(allows(fx->f, "1.2.3.4"), 1);
    assert_int_equal(allows(fx->f, "2001:db8::1"), 0);

    /* Deny works the same way for mapped peers. */
    const char *deny[] = { "10.0.0.0/8" };
    set_ok(fx->f, IPFILTER_DENY, deny, 1);
    assert_int_equal(allows(fx->f, "::ffff:10.9.9.9"), 0);
    assert_int_equal(allows(fx->f, "10.9.9.9"), 0);
    assert_int_equal(allows(fx->f, "::ffff:11.9.9.9"), 1);
}

static void test_allow_versus_deny(void **state)
{
    struct fixture *fx = *state;
    const char *list[] = { "192.0.2.0/24", "2001:db8::/48" };
    set_ok(fx->f, IPFILTER_ALLOW, list, 2);
    assert_int_equal(allows(fx->f, "192.0.2.10"), 1);
    assert_int_equal(allows(fx->f, "2001:db8:0:1::1"), 1);
    assert_int_equal(allows(fx->f, "198.51.100.10"), 0);
    assert_int_equal(allows(fx->f, "2001:db9::1"), 0);

    set_ok(fx->f, IPFILTER_DENY, list, 2);
    assert_int_equal(allows(fx->f, "192.0.2.10"), 0);
    assert_int_equal(allows(fx->f, "2001:db8:0:1::1"), 0);
    assert_int_equal(allows(fx->f, "198.51.100.10"), 1);
    assert_int_equal(allows(fx->f, "2001:db9::1"), 1);

    /* Allow with nothing listed admits nobody (possible only without a requester). */
    set_ok(fx->f, IPFILTER_ALLOW, NULL, 0);
    assert_int_equal(allows(fx->f, "192.0.2.10"), 0);
    assert_int_equal(allows(fx->f, "::1"), 0);
    set_ok(fx->f, IPFILTER_DENY, NULL, 0);
    assert_int_equal(allows(fx->f, "192.0.2.10"), 1);
}

/* --- lockout -------------------------------------------------------------- */

static void test_lockout_is_refused_and_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_storage me = peer("127.0.0.1");
    const struct sockaddr *req = (const struct sockaddr *)&me;
    size_t bad = 0;

    const char *without_me[] = { "10.0.0.0/8" };
    struct ipfilter_rules *r = make_rules(IPFILTER_ALLOW, without_me, 1);
    assert_int_equal(ipfilter_set(fx->f, r, req, &bad), IPFILTER_E_LOCKOUT);
    assert_int_equal(bad, SIZE_MAX);
    free(r);
    r = make_rules(IPFILTER_ALLOW, NULL, 0);
    assert_int_equal(ipfilter_set(fx->f, r, req, &bad), IPFILTER_E_LOCKOUT);
    free(r);
    const char *me_denied[] = { "127.0.0.0/8" };
    r = make_rules(IPFILTER_DENY, me_denied, 1);
    assert_int_equal(ipfilter_set(fx->f, r, req, &bad), IPFILTER_E_LOCKOUT);
    /* The same requester on a dual-stack socket. */
    struct sockaddr_storage me6 = peer("::ffff:127.0.0.1");
    assert_int_equal(ipfilter_set(fx->f, r, (const struct sockaddr *)&me6, &bad), IPFILTER_E_LOCKOUT);
    free(r);
    assert_rules(fx->f, IPFILTER_DENY, NULL, 0);
    assert_int_equal(count_dir_entries(fx->dir.path), 0);

    /* Deny: adding an entry that covers the requester is a lockout too. */
    const char *other[] = { "10.0.0.0/8" };
    r = make_rules(IPFILTER_DENY, other, 1);
    assert_int_equal(ipfilter_set(fx->f, r, req, &bad), IPFILTER_OK);
    free(r);
    r = make_rules(IPFILTER_DENY, me_denied, 1);
    assert_int_equal(ipfilter_add(fx->f, r, req, &bad), IPFILTER_E_LOCKOUT);
    free(r);
    assert_rules(fx->f, IPFILTER_DENY, other, 1);

    /* Allow including the requester is fine; removing its entry is not. */
    const char *with_me[] = { "10.0.0.0/8", "127.0.0.1/32" };
    r = make_rules(IPFILTER_ALLOW, with_me, 2);
    assert_int_equal(ipfilter_set(fx->f, r, req, &bad), IPFILTER_OK);
    free(r);
    r = make_rules(IPFILTER_ALLOW, with_me + 1, 1);
    assert_int_equal(ipfilter_remove(fx->f, r, req, &bad), IPFILTER_E_LOCKOUT);
    free(r);
    assert_rules(fx->f, IPFILTER_ALLOW, with_me, 2);
    assert_int_equal(allows(fx->f, "127.0.0.1"), 1);

    /* A local tool (no requester) or a non-IP requester may do it. */
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    r = make_rules(IPFILTER_ALLOW, without_me, 1);
    assert_int_equal(ipfilter_set(fx->f, r, (const struct sockaddr *)&un, &bad), IPFILTER_OK);
    free(r);
    assert_int_equal(allows(fx->f, "127.0.0.1"), 0);
}

/* --- set / add / remove --------------------------------------------------- */

static void test_set_with_one_bad_entry_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    const char *before[] = { "192.0.2.0/24", "2001:db8::/32" };
    set_ok(fx->f, IPFILTER_ALLOW, before, 2);
    char path[PATH_MAX];
    char *file_before = read_text_file(filter_path(path, fx));
    assert_non_null(file_before);

    size_t bad = 0;
    const char *bad_v4[] = { "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/33", "10.2.0.0/16", "2001:db8::/32" };
    struct ipfilter_rules *r = make_rules(IPFILTER_DENY, bad_v4, N_OF(bad_v4));
    assert_int_equal(ipfilter_set(fx->f, r, NULL, &bad), IPFILTER_E_INVALID_V4);
    assert_int_equal(bad, 2);
    free(r);

    const char *bad_v6[] = { "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "2001:db8::zz/64" };
    r = make_rules(IPFILTER_DENY, bad_v6, N_OF(bad_v6));
    assert_int_equal(ipfilter_set(fx->f, r, NULL, &bad), IPFILTER_E_INVALID_V6);
    assert_int_equal(bad, 3); /* 2 IPv4 entries, then the second IPv6 one */
    free(r);

    /* An IPv4 address in the IPv6 list (not in mapped form) is an invalid IPv6 address. */
    r = make_rules(IPFILTER_DENY, NULL, 0);
    r->v6[r->n_v6++] = pfx("192.0.2.1", 32);
    assert_int_equal(ipfilter_set(fx->f, r, NULL, &bad), IPFILTER_E_INVALID_V6);
    assert_int_equal(bad, 0);
    free(r);

    r = make_rules(IPFILTER_DENY, NULL, 0);
    r->type = (enum ipfilter_type)7;
    assert_int_equal(ipfilter_set(fx->f, r, NULL, NULL), IPFILTER_E_INVALID_TYPE);
    free(r);

    assert_rules(fx->f, IPFILTER_ALLOW, before, 2);
    char *file_after = read_text_file(path);
    assert_non_null(file_after);
    assert_string_equal(file_before, file_after);
    free(file_before);
    free(file_after);
}

static void test_set_removes_duplicates_and_canonicalises(void **state)
{
    struct fixture *fx = *state;
    const char *in[] = { "2001:DB8:0:0::1/128", "192.0.2.0/24", "2001:db8::1/128", "192.0.2.0/24",
                         "192.0.2.0/25", "::FFFF:C000:0201/128" };
    set_ok(fx->f, IPFILTER_ALLOW, in, N_OF(in));
    const char *want[] = { "192.0.2.0/24", "192.0.2.0/25", "2001:db8::1/128", "::ffff:192.0.2.1/128" };
    assert_rules(fx->f, IPFILTER_ALLOW, want, N_OF(want));
}

static void test_add_appends_ignores_duplicates_and_keeps_type(void **state)
{
    struct fixture *fx = *state;
    const char *before[] = { "192.0.2.0/24" };
    set_ok(fx->f, IPFILTER_ALLOW, before, 1);
    /* The request's type is ignored (ONVIF: use Set to change the type). */
    const char *more[] = { "192.0.2.0/24", "198.51.100.0/24", "2001:DB8::/32", "2001:db8::/32",
                           "198.51.100.0/25" };
    struct ipfilter_rules *r = make_rules(IPFILTER_DENY, more, N_OF(more));
    size_t bad = 0;
    assert_int_equal(ipfilter_add(fx->f, r, NULL, &bad), IPFILTER_OK);
    free(r);
    const char *want[] = { "192.0.2.0/24", "198.51.100.0/24", "198.51.100.0/25", "2001:db8::/32" };
    assert_rules(fx->f, IPFILTER_ALLOW, want, N_OF(want));
    assert_int_equal(allows(fx->f, "198.51.100.200"), 1);

    /* One bad entry: nothing added. */
    const char *with_bad[] = { "203.0.113.0/24", "2001:db8:1::/48", "2001:db8:2::/129" };
    r = make_rules(IPFILTER_ALLOW, with_bad, N_OF(with_bad));
    assert_int_equal(ipfilter_add(fx->f, r, NULL, &bad), IPFILTER_E_INVALID_V6);
    assert_int_equal(bad, 2);
    free(r);
    assert_rules(fx->f, IPFILTER_ALLOW, want, N_OF(want));
    assert_int_equal(allows(fx->f, "203.0.113.1"), 0);
}

static void test_remove_deletes_and_refuses_absent(void **state)
{
    struct fixture *fx = *state;
    const char *before[] = { "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "fe80::/10" };
    set_ok(fx->f, IPFILTER_DENY, before, N_OF(before));
    size_t bad = 0;

    /* Absent (same address, other prefix; or never listed): nothing removed. */
    const char *absent[] = { "192.0.2.0/24", "198.51.100.0/25" };
    struct ipfilter_rules *r = make_rules(IPFILTER_ALLOW, absent, N_OF(absent));
    assert_int_equal(ipfilter_remove(fx->f, r, NULL, &bad), IPFILTER_E_NO_ENTRY);
    assert_int_equal(bad, 1);
    free(r);
    const char *absent6[] = { "192.0.2.0/24", "2001:db8::/32", "2001:db9::/32" };
    r = make_rules(IPFILTER_ALLOW, absent6, N_OF(absent6));
    assert_int_equal(ipfilter_remove(fx->f, r, NULL, &bad), IPFILTER_E_NO_ENTRY);
    assert_int_equal(bad, 2);
    free(r);
    const char *invalid[] = { "192.0.2.0/24", "192.0.2.300/24" };
    r = make_rules(IPFILTER_ALLOW, invalid, N_OF(invalid));
    assert_int_equal(ipfilter_remove(fx->f, r, NULL, &bad), IPFILTER_E_INVALID_V4);
    assert_int_equal(bad, 1);
    free(r);
    assert_rules(fx->f, IPFILTER_DENY, before, N_OF(before));

    /* Present (named in another text form, listed twice): removed, order kept, type kept. */
    const char *gone[] = { "198.51.100.0/24", "2001:0DB8::/32", "198.51.100.0/24" };
    r = make_rules(IPFILTER_ALLOW, gone, N_OF(gone));
    assert_int_equal(ipfilter_remove(fx->f, r, NULL, &bad), IPFILTER_OK);
    free(r);
    const char *left[] = { "192.0.2.0/24", "203.0.113.0/24", "fe80::/10" };
    assert_rules(fx->f, IPFILTER_DENY, left, N_OF(left));
    assert_int_equal(allows(fx->f, "198.51.100.1"), 1);
    assert_int_equal(allows(fx->f, "192.0.2.1"), 0);
}

static void fill_v4(struct ipfilter_rules *r, size_t n, int third)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(r->v4[i].address, sizeof r->v4[i].address, "10.%d.%zu.0", third, i);
        r->v4[i].prefix_len = 24;
    }
    r->n_v4 = n;
}

static void fill_v6(struct ipfilter_rules *r, size_t n, int group)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(r->v6[i].address, sizeof r->v6[i].address, "2001:db8:%x:%zx::", group, i);
        r->v6[i].prefix_len = 64;
    }
    r->n_v6 = n;
}

static void test_list_limits(void **state)
{
    struct fixture *fx = *state;
    struct ipfilter_rules *r = calloc(1, sizeof *r);
    assert_non_null(r);
    size_t bad = 0;

    /* 64 of each family fit (and survive a reopen). */
    r->type = IPFILTER_DENY;
    fill_v4(r, IPFILTER_MAX_PER_FAMILY, 0);
    fill_v6(r, IPFILTER_MAX_PER_FAMILY, 0);
    assert_int_equal(ipfilter_set(fx->f, r, NULL, &bad), IPFILTER_OK);
    reopen(fx);
    struct ipfilter_rules *got = calloc(1, sizeof *got);
    assert_non_null(got);
    assert_int_equal(ipfilter_get(fx->f, got), IPFILTER_OK);
    assert_int_equal(got->n_v4, IPFILTER_MAX_PER_FAMILY);
    assert_int_equal(got->n_v6, IPFILTER_MAX_PER_FAMILY);
    assert_string_equal(got->v4[63].address, "10.0.63.0");
    assert_string_equal(got->v6[63].address, "2001:db8:0:3f::");
    assert_int_equal(allows(fx->f, "10.0.63.9"), 0);
    assert_int_equal(allows(fx->f, "10.0.64.9"), 1);

    /* 65 in one request are too many, whichever family. */
    struct ipfilter_rules *big = calloc(1, sizeof *big);
    assert_non_null(big);
    big->type = IPFILTER_ALLOW;
    big->n_v4 = IPFILTER_MAX_PER_FAMILY + 1;
    assert_int_equal(ipfilter_set(fx->f, big, NULL, &bad), IPFILTER_E_TOO_MANY);
    assert_int_equal(bad, IPFILTER_MAX_PER_FAMILY);
    assert_int_equal(ipfilter_add(fx->f, big, NULL, &bad), IPFILTER_E_TOO_MANY);
    big->n_v4 = 2;
    fill_v4(big, 2, 9);
    big->n_v6 = IPFILTER_MAX_PER_FAMILY + 1;
    assert_int_equal(ipfilter_set(fx->f, big, NULL, &bad), IPFILTER_E_TOO_MANY);
    assert_int_equal(bad, 2 + IPFILTER_MAX_PER_FAMILY);
    assert_int_equal(ipfilter_remove(fx->f, big, NULL, &bad), IPFILTER_E_TOO_MANY);

    /* Adding to a full list: a duplicate is fine, a new entry is not. */
    struct ipfilter_rules *one = calloc(1, sizeof *one);
    assert_non_null(one);
    one->v4[one->n_v4++] = pfx("10.0.5.0", 24);
    assert_int_equal(ipfilter_add(fx->f, one, NULL, &bad), IPFILTER_OK);
    one->v4[one->n_v4++] = pfx("172.16.0.0", 12);
    assert_int_equal(ipfilter_add(fx->f, one, NULL, &bad), IPFILTER_E_TOO_MANY);
    assert_int_equal(bad, 1);
    one->n_v4 = 0;
    one->v6[one->n_v6++] = pfx("fe80::", 10);
    assert_int_equal(ipfilter_add(fx->f, one, NULL, &bad), IPFILTER_E_TOO_MANY);
    assert_int_equal(bad, 0);
    assert_int_equal(allows(fx->f, "172.16.0.1"), 1);

    /* Removing one makes room for one. */
    one->n_v6 = 0;
    one->v4[0] = pfx("10.0.5.0", 24);
    one->n_v4 = 1;
    assert_int_equal(ipfilter_remove(fx->f, one, NULL, &bad), IPFILTER_OK);
    one->v4[0] = pfx("172.16.0.0", 12);
    assert_int_equal(ipfilter_add(fx->f, one, NULL, &bad), IPFILTER_OK);
    assert_int_equal(allows(fx->f, "172.16.0.1"), 0);
    assert_int_equal(allows(fx->f, "10.0.5.1"), 1);

    free(one);
    free(big);
    free(got);
    free(r);
}

/* --- persistence ---------------------------------------------------------- */

static void test_rules_persist_across_reopen_in_a_0600_file(void **state)
{
    struct fixture *fx = *state;
    const char *rules[] = { "192.0.3.77/23", "0.0.0.0/0", "2001:DB8:0:C3::1/57", "::ffff:198.51.100.0/120" };
    set_ok(fx->f, IPFILTER_ALLOW, rules, N_OF(rules));
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(filter_path(path, fx), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_dir_entries(fx->dir.path), 1); /* no temporary left behind */

    reopen(fx);
    const char *want[] = { "192.0.3.77/23", "0.0.0.0/0", "2001:db8:0:c3::1/57", "::ffff:198.51.100.0/120" };
    assert_rules(fx->f, IPFILTER_ALLOW, want, N_OF(want));
    assert_int_equal(allows(fx->f, "2001:db8:0:80::1"), 1);
    assert_int_equal(allows(fx->f, "2001:db8:1::1"), 0);

    /* Deny survives too, and so does an empty Allow. */
    set_ok(fx->f, IPFILTER_DENY, want, 1);
    reopen(fx);
    assert_rules(fx->f, IPFILTER_DENY, want, 1);
    set_ok(fx->f, IPFILTER_ALLOW, NULL, 0);
    reopen(fx);
    assert_rules(fx->f, IPFILTER_ALLOW, NULL, 0);
    assert_int_equal(allows(fx->f, "127.0.0.1"), 0);
}

static void test_hand_written_file_with_blanks_loads(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    assert_int_equal(write_text_file(filter_path(path, fx),
                                     "<?xml version=\"1.0\"?>\n<ipfilter>\n <!-- lab -->\n"
                                     " <type>Allow</type>\n <ipv4>\n  192.0.2.0/24\n </ipv4>\n"
                                     " <ipv6>2001:db8::/32</ipv6>\n</ipfilter>\n"), 0);
    reopen(fx);
    const char *want[] = { "192.0.2.0/24", "2001:db8::/32" };
    assert_rules(fx->f, IPFILTER_ALLOW, want, 2);
}

static void test_corrupt_file_refuses_open_and_is_kept(void **state)
{
    struct fixture *fx = *state;
    ipfilter_close(fx->f);
    fx->f = NULL;
    char path[PATH_MAX];
    filter_path(path, fx);
    const char *corrupt[] = {
        "",
        "this is not XML at all",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.0/24</ipv4>",  /* truncated */
        "<other><type>Deny</type></other>",
        "<ipfilter></ipfilter>",                                   /* no type */
        "<ipfilter><type>Maybe</type></ipfilter>",
        "<ipfilter><type>Allow</type><type>Deny</type></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.0/33</ipv4></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.256/24</ipv4></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.0</ipv4></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.0/</ipv4></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.0/024</ipv4></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.0/+4</ipv4></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>2001:db8::/32</ipv4></ipfilter>",
        "<ipfilter><type>Allow</type><ipv6>2001:db8::/129</ipv6></ipfilter>",
        "<ipfilter><type>Allow</type><ipv6>192.0.2.0/24</ipv6></ipfilter>",
        "<ipfilter><type>Allow</type><ipv6>2001:db8::/32/1</ipv6></ipfilter>",
        "<ipfilter><type>Allow</type><ipv4>192.0.2.0/24</ipv4><host>x</host></ipfilter>",
        "<ipfilter>junk<type>Allow</type></ipfilter>",
    };
    for (size_t i = 0; i < N_OF(corrupt); i++) {
        assert_int_equal(write_text_file(path, corrupt[i]), 0);
        struct ipfilter *f = (struct ipfilter *)fx; /* any non-NULL value */
        int rc = ipfilter_open(&f, fx->dir.path);
        if (rc != IPFILTER_E_STORE) {
            if (rc == IPFILTER_OK)
                ipfilter_close(f);
            fail_msg("corrupt file #%zu: %s", i, ipfilter_strerror(rc));
        }
        assert_null(f);
        char *text = read_text_file(path);
        assert_non_null(text);
        assert_string_equal(text, corrupt[i]);
        free(text);
    }

    /* 65 entries of a family in the file cannot be a file we wrote. */
    char *big = malloc(8192);
    assert_non_null(big);
    int n = snprintf(big, 8192, "<ipfilter><type>Deny</type>");
    for (int i = 0; i <= IPFILTER_MAX_PER_FAMILY; i++)
        n += snprintf(big + n, 8192 - (size_t)n, "<ipv4>10.0.%d.0/24</ipv4>", i);
    snprintf(big + n, 8192 - (size_t)n, "</ipfilter>");
    assert_int_equal(write_text_file(path, big), 0);
    free(big);
    struct ipfilter *f = NULL;
    assert_int_equal(ipfilter_open(&f, fx->dir.path), IPFILTER_E_STORE);

    /* Larger than the read bound. */
    char *huge = malloc(70 * 1024);
    assert_non_null(huge);
    memset(huge, ' ', 70 * 1024 - 1);
    memcpy(huge, "<ipfilter><type>Deny</type>", 27);
    memcpy(huge + 70 * 1024 - 13, "</ipfilter>\n", 12);
    huge[70 * 1024 - 1] = '\0';
    assert_int_equal(write_text_file(path, huge), 0);
    free(huge);
    assert_int_equal(ipfilter_open(&f, fx->dir.path), IPFILTER_E_STORE);

    /* Not a regular file. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(ipfilter_open(&f, fx->dir.path), IPFILTER_E_STORE);
    assert_int_equal(rmdir(path), 0);

    /* Leave a valid state for the teardown. */
    assert_int_equal(ipfilter_open(&fx->f, fx->dir.path), IPFILTER_OK);
}

static void test_failed_save_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    const char *before[] = { "192.0.2.0/24", "2001:db8::/32" };
    set_ok(fx->f, IPFILTER_DENY, before, 2);
    /* A directory where atomicfile wants its temporary file makes every save fail. */
    char blocker[PATH_MAX];
    assert_true(snprintf(blocker, sizeof blocker, "%s/ipfilter.xml.tmp.%ld", fx->dir.path, (long)getpid()) <
                (int)sizeof blocker);
    assert_int_equal(mkdir(blocker, 0700), 0);

    size_t bad = 0;
    const char *next[] = { "198.51.100.0/24" };
    struct ipfilter_rules *r = make_rules(IPFILTER_ALLOW, next, 1);
    assert_int_equal(ipfilter_set(fx->f, r, NULL, &bad), IPFILTER_E_STORE);
    assert_int_equal(ipfilter_add(fx->f, r, NULL, &bad), IPFILTER_E_STORE);
    free(r);
    r = make_rules(IPFILTER_ALLOW, before, 1);
    assert_int_equal(ipfilter_remove(fx->f, r, NULL, &bad), IPFILTER_E_STORE);
    free(r);

    assert_rules(fx->f, IPFILTER_DENY, before, 2);
    assert_int_equal(allows(fx->f, "192.0.2.1"), 0);
    assert_int_equal(allows(fx->f, "198.51.100.1"), 1);
    assert_int_equal(rmdir(blocker), 0);
    reopen(fx);
    assert_rules(fx->f, IPFILTER_DENY, before, 2);
}

static void test_set_in_missing_directory_fails_to_store(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_MAX];
    struct ipfilter *f = NULL;
    /* Absent file in an absent directory: opens as "no filter"; saving then fails. */
    assert_int_equal(ipfilter_open(&f, path_in(dir, fx->dir.path, "missing")), IPFILTER_OK);
    const char *next[] = { "10.0.0.0/8" };
    struct ipfilter_rules *r = make_rules(IPFILTER_DENY, next, 1);
    assert_int_equal(ipfilter_set(f, r, NULL, NULL), IPFILTER_E_STORE);
    free(r);
    assert_int_equal(ipfilter_allows(f, (const struct sockaddr *)&(struct sockaddr_storage){ 0 }), 1);
    assert_int_equal(allows(f, "10.0.0.1"), 1);
    ipfilter_close(f);
}

/* --- concurrency ---------------------------------------------------------- */

/* Rule A: Allow 10.0.0.0/8. Rule B: Deny 192.168.0.0/16 + 2001:db8::/32.
 * 10.1.1.1 is admitted by both; 192.168.1.1 by neither; a torn mix of A and B
 * (Allow of B's list, Deny of A's) would give the opposite answer. */
struct race {
    struct ipfilter *f;
    atomic_int stop;
    atomic_int wrong;
    atomic_long checks;
};

static void *race_reader(void *arg)
{
    struct race *rc = arg;
    struct sockaddr_storage both = peer("10.1.1.1"), neither = peer("192.168.1.1");
    struct sockaddr_storage both6 = peer("::ffff:10.1.1.1"), either = peer("172.16.0.1");
    long n = 0;
    while (!atomic_load(&rc->stop)) {
        if (ipfilter_allows(rc->f, (const struct sockaddr *)&both) != 1 ||
            ipfilter_allows(rc->f, (const struct sockaddr *)&both6) != 1 ||
            ipfilter_allows(rc->f, (const struct sockaddr *)&neither) != 0)
            atomic_fetch_add(&rc->wrong, 1);
        int e = ipfilter_allows(rc->f, (const struct sockaddr *)&either);
        if (e != 0 && e != 1)
            atomic_fetch_add(&rc->wrong, 1);
        n++;
    }
    atomic_fetch_add(&rc->checks, n);
    return NULL;
}

static void test_checks_race_rule_changes(void **state)
{
    struct fixture *fx = *state;
    const char *a[] = { "10.0.0.0/8" };
    const char *b[] = { "192.168.0.0/16", "2001:db8::/32" };
    struct ipfilter_rules *ra = make_rules(IPFILTER_ALLOW, a, 1);
    struct ipfilter_rules *rb = make_rules(IPFILTER_DENY, b, 2);
    set_ok(fx->f, IPFILTER_ALLOW, a, 1);

    struct race rc = { .f = fx->f };
    pthread_t readers[3];
    for (size_t i = 0; i < N_OF(readers); i++)
        assert_int_equal(pthread_create(&readers[i], NULL, race_reader, &rc), 0);
    struct sockaddr_storage writer = peer("10.1.1.1");
    for (int i = 0; i < 100; i++) {
        assert_int_equal(ipfilter_set(fx->f, i % 2 ? ra : rb, (const struct sockaddr *)&writer, NULL),
                         IPFILTER_OK);
        struct ipfilter_rules got;
        assert_int_equal(ipfilter_get(fx->f, &got), IPFILTER_OK);
    }
    atomic_store(&rc.stop, 1);
    for (size_t i = 0; i < N_OF(readers); i++)
        assert_int_equal(pthread_join(readers[i], NULL), 0);
    assert_int_equal(atomic_load(&rc.wrong), 0);
    assert_true(atomic_load(&rc.checks) > 0);
    assert_rules(fx->f, IPFILTER_ALLOW, a, 1); /* last set was i = 99: A */
    free(ra);
    free(rb);
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

static const struct CMUnitTest regular_tests[] = {
    cmocka_unit_test(test_prefix_validation),
    cmocka_unit_test(test_every_error_has_its_own_message),
    FIXTURE_TEST(test_absent_file_is_deny_nothing),
    FIXTURE_TEST(test_non_ip_peer_always_allowed_and_null_refused),
    FIXTURE_TEST(test_ipv4_prefix_edges),
    FIXTURE_TEST(test_ipv6_prefix_edges),
    FIXTURE_TEST(test_ipv4_mapped_peers),
    FIXTURE_TEST(test_allow_versus_deny),
    FIXTURE_TEST(test_lockout_is_refused_and_changes_nothing),
    FIXTURE_TEST(test_set_with_one_bad_entry_changes_nothing),
    FIXTURE_TEST(test_set_removes_duplicates_and_canonicalises),
    FIXTURE_TEST(test_add_appends_ignores_duplicates_and_keeps_type),
    FIXTURE_TEST(test_remove_deletes_and_refuses_absent),
    FIXTURE_TEST(test_list_limits),
    FIXTURE_TEST(test_rules_persist_across_reopen_in_a_0600_file),
    FIXTURE_TEST(test_hand_written_file_with_blanks_loads),
    FIXTURE_TEST(test_corrupt_file_refuses_open_and_is_kept),
    FIXTURE_TEST(test_failed_save_changes_nothing),
    FIXTURE_TEST(test_set_in_missing_directory_fails_to_store),
    FIXTURE_TEST(test_checks_race_rule_changes),
};

UNIT_MAIN("ipfilter", regular_tests)
