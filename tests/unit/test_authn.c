/* Unit tests for authn: HTTP Digest (RFC 7616 hash composition, SHA-256/MD5
 * and -sess, parsing of hostile headers, forged and stale nonces, nonce-count
 * replay), Basic over TLS only, WS-UsernameToken (digest, text, Created
 * window and formats, replay cache) and the per-(peer, user) failure monitor.
 * users_password is a test double over a tiny in-memory table, and the clock
 * is a variable the tests move. Expected digests are computed here with
 * one-shot EVP calls, independently of authn.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "opennvt/authn.h"
#include "unit_helpers.h"

#define REALM "OpenNVT"
#define ALICE_PW "Secr3t!pass"
#define BOB_PW "B0b-operator"
#define PEER_A "192.0.2.10"
#define PEER_B "198.51.100.7"
#define URI "/onvif/device_service"

/* ---- test doubles ------------------------------------------------------ */

static const struct {
    const char *name;
    const char *password;
    enum user_level level;
} fake_users[] = {
    { "alice", ALICE_PW, USER_LEVEL_ADMINISTRATOR },
    { "bob", BOB_PW, USER_LEVEL_OPERATOR },
};

static int fake_users_handle;   /* only its address is used */

int users_password(struct users *u, const char *name, char *out, size_t outlen, enum user_level *level)
{
    if ((void *)u != (void *)&fake_users_handle || !name || !out || outlen < USERS_PASSWORD_MAX + 1)
        return USERS_E_INVALID;
    for (size_t i = 0; i < sizeof fake_users / sizeof fake_users[0]; i++) {
        if (strcmp(fake_users[i].name, name) == 0) {
            snprintf(out, outlen, "%s", fake_users[i].password);
            *level = fake_users[i].level;
            return USERS_OK;
        }
    }
    return USERS_E_NO_SUCH_USER;
}

static time_t fake_now;
static time_t fake_clock(void) { return fake_now; }

/* 2026-12-02T10:00:00Z */
static time_t base_time(void)
{
    struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 2, .tm_hour = 10 };
    return timegm(&tm);
}

/* ---- independent reference computations ------------------------------- */

static void hex_of(const unsigned char *in, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
    out[2 * n] = '\0';
}

/* Lowercase hex of md(text), one shot. */
static void h_hex(const char *mdname, const char *text, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    const EVP_MD *type = strcmp(mdname, "MD5") == 0 ? EVP_md5() : EVP_sha256();
    assert_int_equal(EVP_Digest(text, strlen(text), md, &n, type, NULL), 1);
    hex_of(md, n, out);
}

/* RFC 7616 section 3.4.1 response, qop=auth. alg: MD5, SHA-256, *-sess. */
static void digest_response(const char *alg, const char *user, const char *realm, const char *pw,
                            const char *method, const char *uri, const char *nonce, const char *nc,
                            const char *cnonce, char *out)
{
    char buf[4096], ha1[129], ha2[129];
    int sess = strstr(alg, "-sess") != NULL;
    const char *md = strncmp(alg, "MD5", 3) == 0 ? "MD5" : "SHA-256";
    snprintf(buf, sizeof buf, "%s:%s:%s", user, realm, pw);
    h_hex(md, buf, ha1);
    if (sess) {
        snprintf(buf, sizeof buf, "%s:%s:%s", ha1, nonce, cnonce);
        h_hex(md, buf, ha1);
    }
    snprintf(buf, sizeof buf, "%s:%s", method, uri);
    h_hex(md, buf, ha2);
    snprintf(buf, sizeof buf, "%s:%s:%s:%s:auth:%s", ha1, nonce, nc, cnonce, ha2);
    h_hex(md, buf, out);
}

/* Base64(SHA-1(nonce | created | password)) and Base64(nonce). */
static void token_digest(const unsigned char *nonce, size_t nlen, const char *created, const char *pw,
                         char *digest_b64, char *nonce_b64)
{
    unsigned char buf[512], md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    size_t clen = strlen(created), plen = strlen(pw);
    memcpy(buf, nonce, nlen);
    memcpy(buf + nlen, created, clen);
    memcpy(buf + nlen + clen, pw, plen);
    assert_int_equal(EVP_Digest(buf, nlen + clen + plen, md, &n, EVP_sha1(), NULL), 1);
    EVP_EncodeBlock((unsigned char *)digest_b64, md, (int)n);
    EVP_EncodeBlock((unsigned char *)nonce_b64, nonce, (int)nlen);
}

/* ---- fixture ----------------------------------------------------------- */

struct fixture {
    struct authn *a;
};

static struct authn *open_authn(int allow_basic)
{
    struct authn_settings s = {
        .realm = REALM, .nonce_lifetime_s = 300, .created_window_s = 300, .allow_basic = allow_basic,
        .now = fake_clock,
    };
    struct authn *a = NULL;
    assert_int_equal(authn_open(&a, (struct users *)(void *)&fake_users_handle, NULL, &s), AUTHN_OK);
    assert_non_null(a);
    return a;
}

static int setup(void **state)
{
    fake_now = base_time();
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->a = open_authn(1);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    authn_close(fx->a);
    free(fx);
    return 0;
}

/* A fresh nonce from the challenge (first line). */
static void get_nonce(struct authn *a, char *nonce, size_t len)
{
    char ch[1024];
    assert_true(authn_digest_challenge(a, 0, ch, sizeof ch) > 0);
    const char *p = strstr(ch, "nonce=\"");
    assert_non_null(p);
    p += 7;
    const char *e = strchr(p, '"');
    assert_non_null(e);
    assert_true((size_t)(e - p) < len);
    memcpy(nonce, p, (size_t)(e - p));
    nonce[e - p] = '\0';
}

/* Authorization value; alg NULL leaves algorithm out (MD5 by default). */
static void build_auth(char *out, size_t outlen, const char *alg, const char *user, const char *pw, const char *realm,
                       const char *method, const char *uri, const char *nonce, const char *nc)
{
    const char *cnonce = "0a4f113b";
    char resp[129];
    digest_response(alg ? alg : "MD5", user, realm, pw, method, uri, nonce, nc, cnonce, resp);
    int n = snprintf(out, outlen,
                     "Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", qop=auth, nc=%s, "
                     "cnonce=\"%s\", response=\"%s\"%s%s",
                     user, realm, nonce, uri, nc, cnonce, resp, alg ? ", algorithm=" : "", alg ? alg : "");
    assert_true(n > 0 && (size_t)n < outlen);
}

static int http(struct authn *a, const char *auth, const char *peer, struct authn_principal *p)
{
    return authn_http(a, auth, "POST", URI, peer, 0, p);
}

/* One digest attempt with a fresh nonce. */
static int digest_login(struct authn *a, const char *alg, const char *user, const char *pw, const char *peer,
                        struct authn_principal *p)
{
    char nonce[128], auth[2048];
    struct authn_principal dummy;
    get_nonce(a, nonce, sizeof nonce);
    build_auth(auth, sizeof auth, alg, user, pw, REALM, "POST", URI, nonce, "00000001");
    return http(a, auth, peer, p ? p : &dummy);
}

static void created_at(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One UsernameToken digest attempt with a fresh random nonce. */
static int token_login(struct authn *a, const char *user, const char *pw, const char *created, const char *peer,
                       struct authn_principal *p)
{
    static unsigned counter;
    unsigned char nonce[16];
    char digest[64], nonce_b64[64], cbuf[64];
    struct authn_principal dummy;
    counter++;
    for (size_t i = 0; i < sizeof nonce; i++)
        nonce[i] = (unsigned char)((counter >> (8 * (i % 4))) ^ (i * 37));
    if (!created) {
        created_at(fake_now, cbuf, sizeof cbuf);
        created = cbuf;
    }
    token_digest(nonce, sizeof nonce, created, pw, digest, nonce_b64);
    return authn_username_token(a, user, digest, 1, nonce_b64, created, peer, 0, p ? p : &dummy);
}

static void assert_anonymous(const struct authn_principal *p)
{
    assert_string_equal(p->user, "");
    assert_int_equal(p->level, USER_LEVEL_ANONYMOUS);
}

/* ---- Digest ------------------------------------------------------------ */

/* The reference helper reproduces RFC 7616 section 3.9.1; the module is then
 * checked against the helper, so its composition matches the RFC. */
static void test_rfc7616_vectors(void **state)
{
    (void)state;
    char r[129];
    const char *nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const char *cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    digest_response("MD5", "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html", nonce,
                    "00000001", cnonce, r);
    assert_string_equal(r, "8ca523f5e9506fed4657c9700eebdbec");
    digest_response("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html", nonce,
                    "00000001", cnonce, r);
    assert_string_equal(r, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

static void test_challenge_format(void **state)
{
    struct fixture *fx = *state;
    char ch[1024], nonce[128], opaque[128];
    int n = authn_digest_challenge(fx->a, 0, ch, sizeof ch);
    assert_int_equal(n, (int)strlen(ch));
    char *second = strstr(ch, "\r\n");
    assert_non_null(second);
    second += 2;
    /* line 1: SHA-256 */
    assert_int_equal(sscanf(ch, "WWW-Authenticate: Digest realm=\"" REALM "\", qop=\"auth\", algorithm=SHA-256, "
                                "nonce=\"%127[^\"]\", opaque=\"%127[^\"]\"\r\n",
                            nonce, opaque),
                     2);
    assert_int_equal(strlen(nonce), 64);
    char expect[1024];
    snprintf(expect, sizeof expect,
             "WWW-Authenticate: Digest realm=\"" REALM "\", qop=\"auth\", algorithm=SHA-256, nonce=\"%s\", "
             "opaque=\"%s\"\r\n"
             "WWW-Authenticate: Digest realm=\"" REALM "\", qop=\"auth\", algorithm=MD5, nonce=\"%s\", "
             "opaque=\"%s\"\r\n",
             nonce, opaque, nonce, opaque);
    assert_string_equal(ch, expect);

    /* stale=true on both lines; a fresh nonce each time */
    char st[1024], nonce2[128];
    assert_true(authn_digest_challenge(fx->a, 1, st, sizeof st) > 0);
    assert_int_equal(sscanf(st, "WWW-Authenticate: Digest realm=\"" REALM "\", qop=\"auth\", algorithm=SHA-256, "
                                "nonce=\"%127[^\"]\"",
                            nonce2),
                     1);
    assert_string_not_equal(nonce, nonce2);
    snprintf(expect, sizeof expect,
             "WWW-Authenticate: Digest realm=\"" REALM "\", qop=\"auth\", algorithm=SHA-256, nonce=\"%s\", "
             "opaque=\"%s\", stale=true\r\n"
             "WWW-Authenticate: Digest realm=\"" REALM "\", qop=\"auth\", algorithm=MD5, nonce=\"%s\", "
             "opaque=\"%s\", stale=true\r\n",
             nonce2, opaque, nonce2, opaque);
    assert_string_equal(st, expect);

    /* too small */
    assert_int_equal(authn_digest_challenge(fx->a, 0, ch, (size_t)n), -1);
    assert_int_equal(authn_digest_challenge(fx->a, 0, ch, 10), -1);
    assert_int_equal(authn_digest_challenge(fx->a, 0, ch, (size_t)n + 1), n);
}

static void test_digest_md5_and_sha256(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    assert_int_equal(digest_login(fx->a, "MD5", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
    assert_int_equal(p.level, USER_LEVEL_ADMINISTRATOR);
    assert_int_equal(digest_login(fx->a, "SHA-256", "bob", BOB_PW, PEER_A, &p), AUTHN_OK);
    assert_string_equal(p.user, "bob");
    assert_int_equal(p.level, USER_LEVEL_OPERATOR);
    /* no algorithm parameter: MD5 */
    assert_int_equal(digest_login(fx->a, NULL, "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
    /* -sess variants */
    assert_int_equal(digest_login(fx->a, "MD5-sess", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    assert_int_equal(digest_login(fx->a, "SHA-256-sess", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    /* RTSP uses the same check */
    char nonce[128], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    build_auth(auth, sizeof auth, "SHA-256", "bob", BOB_PW, REALM, "DESCRIBE", "rtsp://192.0.2.1/stream1", nonce,
               "00000001");
    assert_int_equal(authn_http(fx->a, auth, "DESCRIBE", "rtsp://192.0.2.1/stream1", PEER_A, 0, &p), AUTHN_OK);
    assert_string_equal(p.user, "bob");
}

/* SetHashingAlgorithm: only the chosen algorithms are offered and accepted. */
static void test_digest_algorithm_choice(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    assert_int_equal(authn_get_digest_algorithms(fx->a), AUTHN_ALG_ALL);
    assert_int_equal(authn_set_digest_algorithms(fx->a, 0), -1);
    assert_int_equal(authn_set_digest_algorithms(fx->a, 4), -1);
    assert_int_equal(authn_set_digest_algorithms(fx->a, AUTHN_ALG_SHA256), 0);
    char ch[1024];
    assert_true(authn_digest_challenge(fx->a, 0, ch, sizeof ch) > 0);
    assert_non_null(strstr(ch, "algorithm=SHA-256"));
    assert_null(strstr(ch, "algorithm=MD5"));
    assert_int_equal(digest_login(fx->a, "SHA-256", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    assert_int_equal(digest_login(fx->a, "MD5", "alice", ALICE_PW, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(digest_login(fx->a, NULL, "alice", ALICE_PW, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(digest_login(fx->a, "MD5-sess", "alice", ALICE_PW, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(authn_set_digest_algorithms(fx->a, AUTHN_ALG_MD5), 0);
    assert_true(authn_digest_challenge(fx->a, 0, ch, sizeof ch) > 0);
    assert_null(strstr(ch, "algorithm=SHA-256"));
    assert_int_equal(digest_login(fx->a, "MD5", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    assert_int_equal(digest_login(fx->a, "SHA-256", "alice", ALICE_PW, PEER_A, &p), AUTHN_E_DENIED);
}

static void test_digest_wrong_password_and_user(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    assert_int_equal(digest_login(fx->a, "MD5", "alice", "wrong", PEER_A, &p), AUTHN_E_DENIED);
    assert_anonymous(&p);
    assert_int_equal(digest_login(fx->a, "SHA-256", "alice", BOB_PW, PEER_A, &p), AUTHN_E_DENIED);
    assert_anonymous(&p);
    assert_int_equal(digest_login(fx->a, "SHA-256", "mallory", ALICE_PW, PEER_A, &p), AUTHN_E_DENIED);
    assert_anonymous(&p);
    assert_int_equal(digest_login(fx->a, "SHA-256", "ALICE", ALICE_PW, PEER_A, &p), AUTHN_E_DENIED);
    /* digest computed with the wrong algorithm */
    char nonce[128], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    build_auth(auth, sizeof auth, "MD5", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    char *alg = strstr(auth, "algorithm=MD5");
    assert_non_null(alg);
    char swapped[2048];
    snprintf(swapped, sizeof swapped, "%.*salgorithm=SHA-256", (int)(alg - auth), auth);
    assert_int_equal(http(fx->a, swapped, PEER_A, &p), AUTHN_E_DENIED);
}

static void test_digest_realm_uri_method(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    /* right password, other realm */
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, "OtherRealm", "POST", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    assert_anonymous(&p);
    /* digest for another uri than the request-target */
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", "/onvif/media_service", nonce,
               "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    /* uri parameter right but the request-target differs */
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(authn_http(fx->a, auth, "POST", "/onvif/media_service", PEER_A, 0, &p), AUTHN_E_DENIED);
    /* computed for GET, sent with POST */
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "GET", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    /* and the right one still works with this nonce */
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
}

static void test_digest_missing_params(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], resp[129], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    digest_response("MD5", "alice", REALM, ALICE_PW, "POST", URI, nonce, "00000001", "abc", resp);
    char params[9][300];
    snprintf(params[0], 300, "username=\"alice\"");
    snprintf(params[1], 300, "realm=\"" REALM "\"");
    snprintf(params[2], 300, "nonce=\"%s\"", nonce);
    snprintf(params[3], 300, "uri=\"" URI "\"");
    snprintf(params[4], 300, "response=\"%s\"", resp);
    snprintf(params[5], 300, "qop=auth");
    snprintf(params[6], 300, "nc=00000001");
    snprintf(params[7], 300, "cnonce=\"abc\"");
    snprintf(params[8], 300, "algorithm=MD5");
    /* all present: accepted (proves the leave-one-out cases fail for the omission) */
    for (int skip = -1; skip < 8; skip++) {
        size_t len = (size_t)snprintf(auth, sizeof auth, "Digest ");
        for (int i = 0; i < 9; i++)
            if (i != skip)
                len += (size_t)snprintf(auth + len, sizeof auth - len, "%s, ", params[i]);
        auth[len - 2] = '\0';
        int rc = http(fx->a, auth, PEER_A, &p);
        if (skip < 0) {
            assert_int_equal(rc, AUTHN_OK);
            get_nonce(fx->a, nonce, sizeof nonce);
            digest_response("MD5", "alice", REALM, ALICE_PW, "POST", URI, nonce, "00000001", "abc", resp);
            snprintf(params[2], 300, "nonce=\"%s\"", nonce);
            snprintf(params[4], 300, "response=\"%s\"", resp);
        } else {
            assert_int_equal(rc, AUTHN_E_MALFORMED);
            assert_anonymous(&p);
        }
    }
}

static void test_digest_bad_values(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], auth[2048], resp[129];
    get_nonce(fx->a, nonce, sizeof nonce);
    digest_response("MD5", "alice", REALM, ALICE_PW, "POST", URI, nonce, "00000001", "abc", resp);
    static const char *const variants[] = {
        "qop=auth-int, nc=00000001",
        "qop=\"auth,auth-int\", nc=00000001",
        "qop=auth, nc=1",
        "qop=auth, nc=0000000g",
        "qop=auth, nc=000000001",
        "qop=auth, nc=00000001, algorithm=SHA-512-256",
        "qop=auth, nc=00000001, algorithm=SHA-1",
        "qop=auth, nc=00000001, userhash=true",
        "qop=auth, nc=00000001, qop=auth",
        "qop=auth, nc=00000001, username=\"bob\"",
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        snprintf(auth, sizeof auth,
                 "Digest username=\"alice\", realm=\"" REALM "\", nonce=\"%s\", uri=\"" URI
                 "\", response=\"%s\", cnonce=\"abc\", %s",
                 nonce, resp, variants[i]);
        assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_MALFORMED);
    }
    /* RFC 2069 form (no qop, no nc/cnonce) is refused */
    char ha1[129], ha2[129], buf[512], old[129];
    snprintf(buf, sizeof buf, "alice:" REALM ":" ALICE_PW);
    h_hex("MD5", buf, ha1);
    h_hex("MD5", "POST:" URI, ha2);
    snprintf(buf, sizeof buf, "%s:%s:%s", ha1, nonce, ha2);
    h_hex("MD5", buf, old);
    snprintf(auth, sizeof auth,
             "Digest username=\"alice\", realm=\"" REALM "\", nonce=\"%s\", uri=\"" URI "\", response=\"%s\"", nonce,
             old);
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_MALFORMED);
    /* ... except for RTSP, whose clients send it: the same response is
     * accepted there (again, within the nonce lifetime), a wrong one is not,
     * and it knows MD5 only. */
    assert_int_equal(authn_rtsp(fx->a, auth, "POST", URI, PEER_A, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
    assert_int_equal(authn_rtsp(fx->a, auth, "POST", URI, PEER_A, &p), AUTHN_OK);
    assert_int_equal(authn_rtsp(fx->a, auth, "DESCRIBE", URI, PEER_A, &p), AUTHN_E_DENIED);
    char alg_auth[2100];
    snprintf(alg_auth, sizeof alg_auth, "%s, algorithm=SHA-256", auth);
    assert_int_equal(authn_rtsp(fx->a, alg_auth, "POST", URI, PEER_A, &p), AUTHN_E_MALFORMED);
    /* empty cnonce */
    snprintf(auth, sizeof auth,
             "Digest username=\"alice\", realm=\"" REALM "\", nonce=\"%s\", uri=\"" URI
             "\", response=\"%s\", cnonce=\"\", qop=auth, nc=00000001",
             nonce, resp);
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_MALFORMED);
    /* an invalid method */
    build_auth(auth, sizeof auth, "MD5", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(authn_http(fx->a, auth, "PO ST", URI, PEER_A, 0, &p), AUTHN_E_MALFORMED);
    assert_int_equal(authn_http(fx->a, auth, "", URI, PEER_A, 0, &p), AUTHN_E_MALFORMED);
    assert_int_equal(authn_http(fx->a, NULL, "POST", URI, PEER_A, 0, &p), AUTHN_E_MALFORMED);
}

static void test_digest_oversized(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    build_auth(auth, sizeof auth, "MD5", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    /* a valid header padded with an unknown parameter past 4 KB */
    size_t big = 5000;
    char *h = malloc(big + 64);
    assert_non_null(h);
    if (!h)   /* tells the compiler too */
        return;
    size_t n = (size_t)snprintf(h, big + 64, "%s, x=\"", auth);
    memset(h + n, 'a', big - n);
    strcpy(h + big, "\"");
    assert_int_equal(http(fx->a, h, PEER_A, &p), AUTHN_E_MALFORMED);
    /* a 4 KB username */
    snprintf(h, big + 64, "Digest username=\"");
    memset(h + 17, 'u', 4000);
    strcpy(h + 4017, "\", realm=\"x\"");
    assert_int_equal(http(fx->a, h, PEER_A, &p), AUTHN_E_MALFORMED);
    /* a long uri value that would not fit the parameter buffer */
    memset(h, 0, big + 64);
    n = (size_t)snprintf(h, big + 64, "Digest uri=\"/");
    memset(h + n, 'p', 3000);
    strcat(h, "\", username=alice");
    assert_int_equal(http(fx->a, h, PEER_A, &p), AUTHN_E_MALFORMED);
    free(h);
    /* the unpadded original still works */
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
}

static void test_digest_garbage(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    static const char *const junk[] = {
        "",
        " ",
        "Digest",
        "Digest ",
        "Digest ,,, ,",
        "Digestusername=\"alice\"",
        "Digest username",
        "Digest username=",
        "Digest username=\"alice",
        "Digest username=\"alice\\",
        "Digest username=\"alice\" realm=\"x\"",
        "Digest username=\"al\x01ice\"",
        "Digest =\"x\"",
        "Digest username==alice",
        "Digest username=\"a\"\"b\"",
        "Bearer abcdef",
        "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
        "\xff\xfe\xfd",
        "Digest \xc3\xa4=1",
        "Digest username=alice, realm=" REALM ", nonce=x, uri=/, response=00, qop=auth, nc=00000001, cnonce=1, ",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int rc = http(fx->a, junk[i], PEER_A, &p);
        assert_true(rc == AUTHN_E_MALFORMED || rc == AUTHN_E_DENIED);
        assert_anonymous(&p);
    }
    assert_int_equal(http(fx->a, "Bearer abcdef", PEER_A, &p), AUTHN_E_MALFORMED);
    assert_int_equal(http(fx->a, "Digest username=\"alice", PEER_A, &p), AUTHN_E_MALFORMED);
    /* the last one is well-formed with a bogus nonce */
    assert_int_equal(http(fx->a, junk[sizeof junk / sizeof junk[0] - 1], PEER_A, &p), AUTHN_E_DENIED);
}

/* Parameter names in any case and order, extra whitespace, escapes in
 * quoted-strings, quoted qop and algorithm, unknown parameters, upper case
 * response hex. */
static void test_digest_lenient_syntax(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], resp[129], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    const char *cnonce = "c\"n,o";   /* needs escaping */
    digest_response("SHA-256", "alice", REALM, ALICE_PW, "POST", URI, nonce, "00000001", cnonce, resp);
    for (char *c = resp; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    snprintf(auth, sizeof auth,
             "  dIgEsT   Response=\"%s\" ,ALGORITHM=\"SHA-256\",\tNC=00000001 , cnonce=\"c\\\"n,o\", "
             "QOP=\"auth\", , Opaque=\"whatever\", URI=\"" URI "\", nonce=%s, ReAlM=\"Op\\enNVT\", "
             "foo=bar, UserName=\"al\\ice\", userhash=false",
             resp, nonce);
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
}

static void test_digest_forged_nonce(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    /* flip one hex digit of the issue time, of the random part, of the MAC */
    int positions[] = { 15, 20, 40, 63 };
    for (size_t i = 0; i < 4; i++) {
        char forged[128];
        strcpy(forged, nonce);
        forged[positions[i]] = forged[positions[i]] == '0' ? '1' : '0';
        build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, forged, "00000001");
        assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
        assert_anonymous(&p);
    }
    /* not hex, wrong length, upper case, someone else's nonce */
    static const char *const bad[] = {
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "00000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abc",
    };
    for (size_t i = 0; i < 4; i++) {
        build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, bad[i], "00000001");
        assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    }
    char upper[128];
    strcpy(upper, nonce);
    for (char *c = upper; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    if (strcmp(upper, nonce) != 0) {
        build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, upper, "00000001");
        assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    }
    struct authn *other = open_authn(0);
    char theirs[128];
    get_nonce(other, theirs, sizeof theirs);
    authn_close(other);
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, theirs, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    /* forged nonces are not password guesses: no lockout from them */
    assert_int_equal(digest_login(fx->a, "SHA-256", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
}

static void test_digest_stale(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    fake_now += 300;   /* still within the lifetime */
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    fake_now += 1;
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000002");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_STALE);
    assert_anonymous(&p);
    /* stale is only told to someone who knows the password */
    build_auth(auth, sizeof auth, "SHA-256", "alice", "guess", REALM, "POST", URI, nonce, "00000003");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    build_auth(auth, sizeof auth, "MD5", "nobody", ALICE_PW, REALM, "POST", URI, nonce, "00000003");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    /* a nonce from before the clock was set back is stale too */
    get_nonce(fx->a, nonce, sizeof nonce);
    fake_now -= 3600;
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_STALE);
    /* a fresh one works */
    assert_int_equal(digest_login(fx->a, "MD5", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
}

static void test_digest_nc_replay(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], auth[2048];
    get_nonce(fx->a, nonce, sizeof nonce);
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_REPLAY);
    assert_anonymous(&p);
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000003");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    /* below the highest but not seen yet: accepted once (out-of-order window) */
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000002");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_REPLAY);
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "0000000A");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000003");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_REPLAY);
    /* another user on the same nonce shares its count */
    build_auth(auth, sizeof auth, "SHA-256", "bob", BOB_PW, REALM, "POST", URI, nonce, "0000000b");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    /* nc 0 is never valid */
    get_nonce(fx->a, nonce, sizeof nonce);
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000000");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_REPLAY);
    /* a wrong password does not advance the count */
    build_auth(auth, sizeof auth, "SHA-256", "alice", "nope", REALM, "POST", URI, nonce, "00000005");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_DENIED);
    build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
}

/* One nonce on several connections: the worker pool may see its counts out
 * of order. Each count within 64 below the highest is accepted once. */
static void test_digest_nc_window(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char nonce[128], auth[2048], nc[16];
#define NC_TRY(value, expect)                                                                          \
    do {                                                                                               \
        snprintf(nc, sizeof nc, "%08x", (unsigned)(value));                                            \
        build_auth(auth, sizeof auth, "SHA-256", "alice", ALICE_PW, REALM, "POST", URI, nonce, nc);    \
        assert_int_equal(http(fx->a, auth, PEER_A, &p), (expect));                                     \
    } while (0)
    get_nonce(fx->a, nonce, sizeof nonce);
    NC_TRY(100, AUTHN_OK);
    NC_TRY(80, AUTHN_OK);          /* out of order, within the window */
    NC_TRY(99, AUTHN_OK);
    NC_TRY(80, AUTHN_E_REPLAY);    /* repeats are refused ... */
    NC_TRY(100, AUTHN_E_REPLAY);   /* ... the highest too */
    assert_anonymous(&p);
    NC_TRY(36, AUTHN_OK);          /* 64 below the highest: still in the window */
    NC_TRY(35, AUTHN_E_REPLAY);    /* 65 below: too old */
    NC_TRY(1, AUTHN_E_REPLAY);
    NC_TRY(0, AUTHN_E_REPLAY);
    /* the window moves up with the highest */
    NC_TRY(200, AUTHN_OK);
    NC_TRY(99, AUTHN_E_REPLAY);    /* was accepted, and is now too old anyway */
    NC_TRY(137, AUTHN_OK);
    NC_TRY(136, AUTHN_OK);
    NC_TRY(135, AUTHN_E_REPLAY);
    /* a jump of exactly 64 keeps the old highest as the oldest in the window */
    NC_TRY(264, AUTHN_OK);
    NC_TRY(200, AUTHN_E_REPLAY);
    NC_TRY(201, AUTHN_OK);
    /* a jump of more than 64 forgets everything below */
    NC_TRY(400, AUTHN_OK);
    NC_TRY(264, AUTHN_E_REPLAY);
    NC_TRY(336, AUTHN_OK);
    NC_TRY(335, AUTHN_E_REPLAY);
    NC_TRY(0xffffffffu, AUTHN_OK);
    NC_TRY(0xffffffffu, AUTHN_E_REPLAY);
    NC_TRY(0xffffffffu - 64, AUTHN_OK);
    NC_TRY(401, AUTHN_E_REPLAY);
    /* other nonces have their own windows */
    char other[128];
    strcpy(other, nonce);
    get_nonce(fx->a, nonce, sizeof nonce);
    NC_TRY(80, AUTHN_OK);
    NC_TRY(16, AUTHN_OK);
    strcpy(nonce, other);
    NC_TRY(80, AUTHN_E_REPLAY);
#undef NC_TRY
}

/* A nonce whose count entry was pushed out of the bounded table must not be
 * accepted again with an old count: it is answered stale. */
static void test_digest_nc_table_eviction(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char first[128], nonce[128], auth[2048];
    get_nonce(fx->a, first, sizeof first);
    build_auth(auth, sizeof auth, "MD5", "alice", ALICE_PW, REALM, "POST", URI, first, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    fake_now += 1;
    for (int i = 0; i < 4200; i++)
        assert_int_equal(digest_login(fx->a, "MD5", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_STALE);
    /* nonces issued after the evicted ones keep working */
    fake_now += 1;
    get_nonce(fx->a, nonce, sizeof nonce);
    build_auth(auth, sizeof auth, "MD5", "alice", ALICE_PW, REALM, "POST", URI, nonce, "00000001");
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_OK);
    assert_int_equal(http(fx->a, auth, PEER_A, &p), AUTHN_E_REPLAY);
}

/* ---- Basic ------------------------------------------------------------- */

static void test_basic(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char auth[256], b64[128];
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)"alice:" ALICE_PW, (int)strlen("alice:" ALICE_PW));
    snprintf(auth, sizeof auth, "Basic %s", b64);
    /* without TLS: refused, even with the right password */
    assert_int_equal(authn_http(fx->a, auth, "GET", URI, PEER_A, 0, &p), AUTHN_E_INSECURE);
    assert_anonymous(&p);
    assert_int_equal(authn_http(fx->a, auth, "GET", URI, PEER_A, 1, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
    assert_int_equal(p.level, USER_LEVEL_ADMINISTRATOR);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)"alice:Secr3t!pas", 16);
    snprintf(auth, sizeof auth, "basic %s", b64);
    assert_int_equal(authn_http(fx->a, auth, "GET", URI, PEER_A, 1, &p), AUTHN_E_DENIED);
    assert_int_equal(authn_http(fx->a, "Basic !!!", "GET", URI, PEER_A, 1, &p), AUTHN_E_MALFORMED);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)"alice", 5);
    snprintf(auth, sizeof auth, "Basic %s", b64);
    assert_int_equal(authn_http(fx->a, auth, "GET", URI, PEER_A, 1, &p), AUTHN_E_MALFORMED);
    /* Basic disabled: refused even over TLS */
    struct authn *nob = open_authn(0);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)"alice:" ALICE_PW, (int)strlen("alice:" ALICE_PW));
    snprintf(auth, sizeof auth, "Basic %s", b64);
    assert_int_equal(authn_http(nob, auth, "GET", URI, PEER_A, 1, &p), AUTHN_E_INSECURE);
    authn_close(nob);
}

/* ---- WS-UsernameToken -------------------------------------------------- */

static void test_token_good_and_wrong(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
    assert_int_equal(p.level, USER_LEVEL_ADMINISTRATOR);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_OK);
    assert_int_equal(p.level, USER_LEVEL_OPERATOR);
    assert_int_equal(token_login(fx->a, "alice", BOB_PW, NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_anonymous(&p);
    assert_int_equal(token_login(fx->a, "carol", "whatever", NULL, PEER_A, &p), AUTHN_E_DENIED);
    /* a password that is not base64 of a SHA-1 */
    char created[64];
    created_at(fake_now, created, sizeof created);
    assert_int_equal(authn_username_token(fx->a, "alice", ALICE_PW, 1, "AAAAAAAAAAAAAAAAAAAAAA==", created, PEER_A,
                                          0, &p),
                     AUTHN_E_DENIED);
}

static void test_token_replay(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    const unsigned char nonce[16] = "0123456789abcdef";
    char digest[64], nonce_b64[64], created[64];
    created_at(fake_now, created, sizeof created);
    token_digest(nonce, sizeof nonce, created, ALICE_PW, digest, nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p), AUTHN_OK);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_B, 0, &p),
                     AUTHN_E_REPLAY);
    assert_anonymous(&p);
    fake_now += 100;
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p),
                     AUTHN_E_REPLAY);
    /* same nonce, other Created: a different token */
    char created2[64];
    created_at(fake_now, created2, sizeof created2);
    token_digest(nonce, sizeof nonce, created2, ALICE_PW, digest, nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created2, PEER_A, 0, &p), AUTHN_OK);
    /* once outside the window the old token is refused as expired */
    fake_now += 250;
    token_digest(nonce, sizeof nonce, created, ALICE_PW, digest, nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p),
                     AUTHN_E_EXPIRED);
}

static void test_token_replay_cache_bounded(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    const unsigned char nonce[16] = "first-nonce-0000";
    char digest[64], nonce_b64[64], created[64];
    created_at(fake_now, created, sizeof created);
    token_digest(nonce, sizeof nonce, created, ALICE_PW, digest, nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p), AUTHN_OK);
    /* a busy device: 8300 more tokens over the next 83 s */
    for (int i = 0; i < 8300; i++) {
        if (i % 100 == 0)
            fake_now += 1;
        assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_OK);
    }
    /* still in the cache and in the window: still a replay */
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p),
                     AUTHN_E_REPLAY);
    fake_now += 1;
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_OK);
}

/* Created with milliseconds, as "YYYY-MM-DDThh:mm:ss.mmmZ". */
static void created_at_ms(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char sec[32];
    gmtime_r(&t, &tm);
    strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03dZ", sec, (int)(ms % 1000));
}

/* More tokens than the cache holds, one millisecond apart: all accepted,
 * and the eviction floor refuses only tokens at or before the evicted
 * millisecond. */
static void test_token_cache_floor_ms(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    const int total = 70000;   /* the cache holds 65536 */
    int64_t start_ms = (int64_t)(fake_now - 40) * 1000;
    char created[64], first[64], last_evicted[64], first_kept[64], second_kept[64], digest[64], nonce_b64[64];
    const unsigned char last_nonce[16] = "last-token-nonce";
    for (int i = 0; i < total; i++) {
        created_at_ms(start_ms + i, created, sizeof created);
        if (i == 0)
            strcpy(first, created);
        if (i == total - 65536 - 1)
            strcpy(last_evicted, created);
        if (i == total - 65536)
            strcpy(first_kept, created);
        if (i == total - 65536 + 1)
            strcpy(second_kept, created);
        int rc;
        if (i == total - 1) {
            token_digest(last_nonce, sizeof last_nonce, created, ALICE_PW, digest, nonce_b64);
            rc = authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p);
        } else {
            rc = token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p);
        }
        if (rc != AUTHN_OK)
            print_error("token %d (%s): %s\n", i, created, authn_strerror(rc));
        assert_int_equal(rc, AUTHN_OK);
    }
    /* the last one is in the cache */
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_B, 0, &p),
                     AUTHN_E_REPLAY);
    assert_anonymous(&p);
    /* new nonces (never seen) with the Created of evicted tokens: refused */
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, first, PEER_A, &p), AUTHN_E_REPLAY);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, last_evicted, PEER_A, &p), AUTHN_E_REPLAY);
    /* Room for a new token evicts the oldest kept one (first_kept) and moves
     * the floor to its millisecond; one millisecond later is accepted ... */
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, second_kept, PEER_A, &p), AUTHN_OK);
    /* ... and first_kept's millisecond is refused from now on */
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, first_kept, PEER_A, &p), AUTHN_E_REPLAY);
}

/* A client whose clock runs ahead (within the window) must not make the
 * cache refuse everybody else once its tokens are evicted. */
static void test_token_cache_fast_clock(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char created[64];
    created_at(fake_now + 290, created, sizeof created);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, created, PEER_B, &p), AUTHN_OK);
    int64_t start_ms = (int64_t)(fake_now - 10) * 1000;
    for (int i = 0; i < 65600; i++) {
        created_at_ms(start_ms + i / 4, created, sizeof created);
        assert_int_equal(token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p), AUTHN_OK);
    }
    created_at(fake_now, created, sizeof created);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p), AUTHN_OK);
}

static void test_token_created_window(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char created[64];
    created_at(fake_now - 301, created, sizeof created);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p), AUTHN_E_EXPIRED);
    assert_anonymous(&p);
    created_at(fake_now + 301, created, sizeof created);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p), AUTHN_E_EXPIRED);
    created_at(fake_now - 300, created, sizeof created);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p), AUTHN_OK);
    created_at(fake_now + 300, created, sizeof created);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p), AUTHN_OK);
    created_at(fake_now - 86400 * 365, created, sizeof created);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, created, PEER_A, &p), AUTHN_E_EXPIRED);
}

static void test_token_created_formats(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    /* fake_now is 2026-12-02T10:00:00Z */
    static const char *const ok[] = {
        "2026-12-02T10:00:00Z",      "2026-12-02T10:00:00.123Z",  "2026-12-02T10:00:00.1234567Z",
        "2026-12-02T10:00:00+00:00", "2026-12-02T10:00:00.5+00:00", "2026-12-02T12:00:00+02:00",
        "2026-12-02T05:30:00-04:30", "2026-12-03T00:00:00+14:00", "2026-12-02T10:04:59Z",
        "2026-12-02T09:55:00Z",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int rc = token_login(fx->a, "alice", ALICE_PW, ok[i], PEER_A, &p);
        if (rc != AUTHN_OK)
            print_error("created '%s': %s\n", ok[i], authn_strerror(rc));
        assert_int_equal(rc, AUTHN_OK);
    }
    /* parseable, but the offset moves them out of the window */
    static const char *const far[] = { "2026-12-02T10:00:00+02:00", "2026-12-02T10:00:00-01:00",
                                       "2026-12-02T10:05:01Z", "2026-12-02T09:54:59.999Z" };
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++)
        assert_int_equal(token_login(fx->a, "alice", ALICE_PW, far[i], PEER_A, &p), AUTHN_E_EXPIRED);
    static const char *const bad[] = {
        "",
        "yesterday",
        "2026-12-02",
        "2026-12-02 10:00:00Z",
        "2026-12-02T10:00Z",
        "2026-13-02T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-12-02T25:00:00Z",
        "2026-12-02T10:00:00.Z",
        "2026-12-02T10:00:00+0000",
        "2026-12-02T10:00:00+15:00",
        "2026-12-02T10:00:00Zjunk",
        "26-12-02T10:00:00Z",
        "2026-12-02T10:00:00.12345678901234567890Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = token_login(fx->a, "alice", ALICE_PW, bad[i], PEER_A, &p);
        if (rc != AUTHN_E_MALFORMED)
            print_error("created '%s': %s\n", bad[i], authn_strerror(rc));
        assert_int_equal(rc, AUTHN_E_MALFORMED);
    }
}

static void test_token_malformed(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    char created[64], digest[64], nonce_b64[256];
    const unsigned char nonce[16] = "abcdefghijklmnop";
    created_at(fake_now, created, sizeof created);
    token_digest(nonce, sizeof nonce, created, ALICE_PW, digest, nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, NULL, created, PEER_A, 0, &p),
                     AUTHN_E_MALFORMED);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, NULL, PEER_A, 0, &p),
                     AUTHN_E_MALFORMED);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, "not*base64", created, PEER_A, 0, &p),
                     AUTHN_E_MALFORMED);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, "", created, PEER_A, 0, &p), AUTHN_E_MALFORMED);
    assert_int_equal(authn_username_token(fx->a, NULL, digest, 1, nonce_b64, created, PEER_A, 0, &p),
                     AUTHN_E_MALFORMED);
    /* nonce of 65 bytes: refused; 64 accepted */
    unsigned char longnonce[65];
    memset(longnonce, 'n', sizeof longnonce);
    token_digest(longnonce, 65, created, ALICE_PW, digest, nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p),
                     AUTHN_E_MALFORMED);
    token_digest(longnonce, 64, created, ALICE_PW, digest, nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, nonce_b64, created, PEER_A, 0, &p), AUTHN_OK);
    /* unpadded base64 nonce is fine */
    token_digest(nonce, 16, created, ALICE_PW, digest, nonce_b64);
    assert_int_equal(strlen(nonce_b64), 24);
    char unpadded[64];
    snprintf(unpadded, sizeof unpadded, "%.*s", (int)strcspn(nonce_b64, "="), nonce_b64);
    assert_int_equal(authn_username_token(fx->a, "alice", digest, 1, unpadded, created, PEER_A, 0, &p), AUTHN_OK);
}

static void test_token_password_text(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    assert_int_equal(authn_username_token(fx->a, "alice", ALICE_PW, 0, NULL, NULL, PEER_A, 0, &p), AUTHN_E_INSECURE);
    assert_anonymous(&p);
    assert_int_equal(authn_username_token(fx->a, "alice", ALICE_PW, 0, NULL, NULL, PEER_A, 1, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
    assert_int_equal(authn_username_token(fx->a, "alice", "Secr3t!pas", 0, NULL, NULL, PEER_A, 1, &p),
                     AUTHN_E_DENIED);
    assert_int_equal(authn_username_token(fx->a, "alice", ALICE_PW "x", 0, NULL, NULL, PEER_A, 1, &p),
                     AUTHN_E_DENIED);
    assert_int_equal(authn_username_token(fx->a, "alice", "", 0, NULL, NULL, PEER_A, 1, &p), AUTHN_E_DENIED);
    /* a Created that comes along is still checked */
    char created[64];
    created_at(fake_now - 1000, created, sizeof created);
    assert_int_equal(authn_username_token(fx->a, "alice", ALICE_PW, 0, "bm9uY2U=", created, PEER_A, 1, &p),
                     AUTHN_E_EXPIRED);
    created_at(fake_now, created, sizeof created);
    assert_int_equal(authn_username_token(fx->a, "bob", BOB_PW, 0, "bm9uY2U=", created, PEER_A, 1, &p), AUTHN_OK);
    assert_int_equal(p.level, USER_LEVEL_OPERATOR);
}

/* ---- failure monitor --------------------------------------------------- */

/* stderr redirected to a file while a test looks at what gets logged. */
struct captured {
    int saved;
    char path[64];
};

static void capture_start(struct captured *c)
{
    fflush(stderr);
    snprintf(c->path, sizeof c->path, "/tmp/opennvt-authn-log-XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    c->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *capture_end(struct captured *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    char *text = read_text_file(c->path);
    unlink(c->path);
    assert_non_null(text);
    return text;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_lockout_and_expiry(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    struct captured cap;
    capture_start(&cap);
    for (int i = 0; i < 5; i++)
        assert_int_equal(digest_login(fx->a, "SHA-256", "alice", "guess", PEER_A, &p), AUTHN_E_DENIED);
    /* 5 failures do not exceed max_failures 5 */
    char *log5 = capture_end(&cap);
    assert_int_equal(count_of(log5, "warning"), 0);
    free(log5);
    capture_start(&cap);
    assert_int_equal(token_login(fx->a, "alice", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);   /* the 6th */
    assert_int_equal(digest_login(fx->a, "SHA-256", "alice", ALICE_PW, PEER_A, &p), AUTHN_E_BLOCKED);
    assert_anonymous(&p);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_E_BLOCKED);
    assert_int_equal(digest_login(fx->a, "MD5", "alice", "guess", PEER_A, &p), AUTHN_E_BLOCKED);
    char *log = capture_end(&cap);
    assert_int_equal(count_of(log, "warning"), 1);
    assert_non_null(strstr(log, PEER_A));
    assert_non_null(strstr(log, "alice"));
    assert_null(strstr(log, "guess"));
    assert_null(strstr(log, ALICE_PW));
    free(log);
    /* other users from the same peer are not affected */
    assert_int_equal(digest_login(fx->a, "SHA-256", "bob", BOB_PW, PEER_A, &p), AUTHN_OK);
    /* still blocked just before the period ends, free after it */
    fake_now += 59;
    assert_int_equal(digest_login(fx->a, "SHA-256", "alice", ALICE_PW, PEER_A, &p), AUTHN_E_BLOCKED);
    fake_now += 1;
    assert_int_equal(digest_login(fx->a, "SHA-256", "alice", ALICE_PW, PEER_A, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
}

static void test_lockout_per_peer(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    for (int i = 0; i < 6; i++)
        assert_int_equal(token_login(fx->a, "alice", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_E_BLOCKED);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_B, &p), AUTHN_OK);
    assert_int_equal(digest_login(fx->a, "MD5", "alice", ALICE_PW, PEER_B, &p), AUTHN_OK);
    assert_string_equal(p.user, "alice");
    /* a flood of other user names from A does not push (B, mallory)'s
     * block out of the table, nor (A, alice)'s */
    for (int i = 0; i < 6; i++)
        assert_int_equal(token_login(fx->a, "mallory", "guess", NULL, PEER_B, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "mallory", "guess", NULL, PEER_B, &p), AUTHN_E_BLOCKED);
    for (int i = 0; i < 3000; i++) {
        char name[32];
        snprintf(name, sizeof name, "user%d", i);
        int rc = token_login(fx->a, name, "guess", NULL, PEER_A, &p);
        assert_true(rc == AUTHN_E_DENIED || rc == AUTHN_E_BLOCKED);
    }
    assert_int_equal(token_login(fx->a, "mallory", "guess", NULL, PEER_B, &p), AUTHN_E_BLOCKED);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_E_BLOCKED);
    /* spraying user names gets the sprayer blocked, for every name, and no one else */
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_E_BLOCKED);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_B, &p), AUTHN_OK);
    /* nor do failures from many other peers */
    for (int i = 0; i < 1500; i++) {
        char peer[32];
        snprintf(peer, sizeof peer, "10.0.%d.%d", i / 250, i % 250);
        assert_int_equal(token_login(fx->a, "carol", "guess", NULL, peer, &p), AUTHN_E_DENIED);
    }
    assert_int_equal(token_login(fx->a, "mallory", "guess", NULL, PEER_B, &p), AUTHN_E_BLOCKED);
}

/* Regression: once a peer had FAIL_PER_PEER_MAX tracked names, a new name
 * evicted the peer's own entries, so rounds of a few guesses at one user
 * followed by junk names never reached the block. */
static void test_lockout_survives_name_spraying(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    int blocked = 0;
    for (int round = 0; round < 3 && !blocked; round++) {
        for (int i = 0; i < 5; i++) {
            int rc = token_login(fx->a, "bob", "guess", NULL, PEER_A, &p);
            blocked |= rc == AUTHN_E_BLOCKED;
        }
        for (int i = 0; i < 32; i++) {
            char name[32];
            snprintf(name, sizeof name, "junk%d-%d", round, i);
            token_login(fx->a, name, "guess", NULL, PEER_A, &p);
        }
    }
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_E_BLOCKED);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_B, &p), AUTHN_OK);
}

static void test_failures_window_and_reset(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    /* failures spread over more than the period do not add up */
    for (int i = 0; i < 5; i++)
        assert_int_equal(token_login(fx->a, "alice", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    fake_now += 61;
    for (int i = 0; i < 5; i++)
        assert_int_equal(token_login(fx->a, "alice", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_OK);
    /* the success cleared them: five more are allowed */
    for (int i = 0; i < 5; i++)
        assert_int_equal(token_login(fx->a, "alice", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "alice", ALICE_PW, NULL, PEER_A, &p), AUTHN_OK);
    /* unknown users are counted too */
    for (int i = 0; i < 6; i++)
        assert_int_equal(token_login(fx->a, "ghost", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "ghost", "guess", NULL, PEER_A, &p), AUTHN_E_BLOCKED);
}

static void test_failure_policy(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    struct authn_failure_policy pol;
    authn_get_failure_policy(fx->a, &pol);
    assert_int_equal(pol.monitor_period_s, 60);
    assert_int_equal(pol.max_failures, 5);
#define POLICY(e, period, max) { .enabled = (e), .monitor_period_s = (period), .max_failures = (max) }
    static const struct authn_failure_policy bad[] = {
        POLICY(1, 0, 5), POLICY(1, 3601, 5), POLICY(1, -1, 5), POLICY(1, 60, 0), POLICY(1, 60, 101),
        POLICY(1, 60, -3), POLICY(0, 0, 5), POLICY(0, 60, 101),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(authn_set_failure_policy(fx->a, &bad[i]), -1);
        authn_get_failure_policy(fx->a, &pol);
        assert_int_equal(pol.enabled, 1);
        assert_int_equal(pol.monitor_period_s, 60);
        assert_int_equal(pol.max_failures, 5);
    }
    assert_int_equal(authn_set_failure_policy(fx->a, NULL), -1);
    const struct authn_failure_policy edges[] = { POLICY(1, 1, 1), POLICY(1, 3600, 100) };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(authn_set_failure_policy(fx->a, &edges[i]), 0);
        authn_get_failure_policy(fx->a, &pol);
        assert_int_equal(pol.monitor_period_s, edges[i].monitor_period_s);
        assert_int_equal(pol.max_failures, edges[i].max_failures);
    }
    /* a new policy applies: 2 failures allowed, blocked for 10 s */
    const struct authn_failure_policy two = POLICY(1, 10, 2);
    assert_int_equal(authn_set_failure_policy(fx->a, &two), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(token_login(fx->a, "bob", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_E_BLOCKED);
    fake_now += 10;
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_OK);

    /* disabled: no counting, no block, no warning; disabling lifts blocks */
    for (int i = 0; i < 3; i++)
        assert_int_equal(token_login(fx->a, "bob", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_E_BLOCKED);
    const struct authn_failure_policy off = POLICY(0, 10, 2);
    assert_int_equal(authn_set_failure_policy(fx->a, &off), 0);
    authn_get_failure_policy(fx->a, &pol);
    assert_int_equal(pol.enabled, 0);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_OK);
    struct captured cap;
    capture_start(&cap);
    for (int i = 0; i < 20; i++)
        assert_int_equal(token_login(fx->a, "bob", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    char *log = capture_end(&cap);
    assert_int_equal(count_of(log, "warning"), 0);
    free(log);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_OK);
    /* enabled again: counting starts from zero */
    assert_int_equal(authn_set_failure_policy(fx->a, &two), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(token_login(fx->a, "bob", "guess", NULL, PEER_A, &p), AUTHN_E_DENIED);
    assert_int_equal(token_login(fx->a, "bob", BOB_PW, NULL, PEER_A, &p), AUTHN_OK);
#undef POLICY
}

/* Not a timing assertion: shows what one verification costs. */
static double elapsed_s(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void test_digest_throughput(void **state)
{
    struct fixture *fx = *state;
    struct authn_principal p;
    const int n = 200000;
    char nonce[128], auth[2048];
    double in_authn = 0;
    struct timespec t0, t1, all0, all1;
    clock_gettime(CLOCK_MONOTONIC, &all0);
    for (int i = 0; i < n; i++) {
        get_nonce(fx->a, nonce, sizeof nonce);   /* a new serial each time */
        build_auth(auth, sizeof auth, (i & 1) ? "MD5" : "SHA-256", "bob", BOB_PW, REALM, "POST", URI, nonce,
                   "00000001");
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = http(fx->a, auth, PEER_A, &p);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        in_authn += elapsed_s(&t0, &t1);
        if (rc != AUTHN_OK)
            print_error("verification %d: %s\n", i, authn_strerror(rc));
        assert_int_equal(rc, AUTHN_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &all1);
    print_message("%d digest verifications: %.0f/s in authn_http (%.2f us each); %.0f/s with challenge and "
                  "client-side digest\n",
                  n, n / in_authn, 1e6 * in_authn / n, n / elapsed_s(&all0, &all1));
}

static void test_strerror(void **state)
{
    (void)state;
    for (int rc = AUTHN_E_NOMEM; rc <= AUTHN_OK; rc++) {
        assert_non_null(authn_strerror(rc));
        assert_string_not_equal(authn_strerror(rc), "unknown error");
    }
    assert_string_equal(authn_strerror(-999), "unknown error");
}

static void test_open_settings(void **state)
{
    (void)state;
    struct authn *a = NULL;
    struct authn_settings s = { .realm = "bad\"realm" };
    assert_int_equal(authn_open(&a, NULL, NULL, &s), AUTHN_E_MALFORMED);
    assert_null(a);
    /* defaults: realm OpenNVT, real clock, no users table */
    assert_int_equal(authn_open(&a, NULL, NULL, NULL), AUTHN_OK);
    char ch[1024];
    assert_true(authn_digest_challenge(a, 0, ch, sizeof ch) > 0);
    assert_non_null(strstr(ch, "realm=\"OpenNVT\""));
    struct authn_principal p;
    assert_int_equal(authn_username_token(a, "alice", ALICE_PW, 0, NULL, NULL, PEER_A, 1, &p), AUTHN_E_DENIED);
    authn_close(a);
    authn_close(NULL);
}

/* Several threads authenticating at once (a smoke test for the locking). */
static void *worker(void *arg)
{
    struct authn *a = arg;
    for (int i = 0; i < 200; i++) {
        struct authn_principal p;
        char nonce[128], auth[2048];
        get_nonce(a, nonce, sizeof nonce);
        build_auth(auth, sizeof auth, "SHA-256", "bob", BOB_PW, REALM, "POST", URI, nonce, "00000001");
        if (http(a, auth, PEER_A, &p) != AUTHN_OK)
            return (void *)1;
        if (authn_username_token(a, "alice", ALICE_PW, 0, NULL, NULL, PEER_B, 1, &p) != AUTHN_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct fixture *fx = *state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, fx->a), 0);
    for (int i = 0; i < 4; i++) {
        void *ret = NULL;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
}

static const struct CMUnitTest regular_tests[] = {
    cmocka_unit_test(test_rfc7616_vectors),
    cmocka_unit_test_setup_teardown(test_challenge_format, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_md5_and_sha256, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_algorithm_choice, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_wrong_password_and_user, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_realm_uri_method, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_missing_params, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_bad_values, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_oversized, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_garbage, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_lenient_syntax, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_forged_nonce, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_stale, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_nc_replay, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_nc_window, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_nc_table_eviction, setup, teardown),
    cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_good_and_wrong, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_replay, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_replay_cache_bounded, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_cache_floor_ms, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_cache_fast_clock, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_created_window, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_created_formats, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_malformed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_password_text, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lockout_and_expiry, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lockout_per_peer, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lockout_survives_name_spraying, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failures_window_and_reset, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failure_policy, setup, teardown),
    cmocka_unit_test(test_strerror),
    cmocka_unit_test(test_open_settings),
    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_throughput, setup, teardown),
};

UNIT_MAIN("authn", regular_tests)
