/* Unit tests for the gate: unknown and pre-authentication operations, the
 * principal from HTTP Digest, WS-UsernameToken or a TLS client certificate
 * (and which wins), the first-Administrator setup, anonymous classes, and
 * the verdict of each refusal. Real secretbox, users and authn in a temp
 * state dir; the authn clock is a variable; credentials are computed here
 * with one-shot EVP calls, independently of authn.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "opennvt/accesspolicy.h"
#include "opennvt/authn.h"
#include "opennvt/gate.h"
#include "opennvt/secretbox.h"
#include "opennvt/users.h"
#include "unit_helpers.h"

#define REALM "OpenNVT"
#define PEER "192.0.2.10"
#define URI "/onvif/device_service"
#define ADMIN "admin"
#define ADMIN_PW "Zebra7Quilt"
#define VIEWER "viewer"
#define VIEWER_PW "Mango42Kite"
/* USERS_NAME_MAX (32) bytes: the longest name a user may have. */
#define LONG_NAME "abcdefghijklmnopqrstuvwxyz012345"
#define LONG_PW "Lemon9Orbit"
#define WSSE_DIGEST_TYPE \
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"

static time_t fake_now;
static time_t fake_clock(void) { return fake_now; }

/* 2026-12-02T10:00:00Z */
static time_t base_time(void)
{
    struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 2, .tm_hour = 10 };
    return timegm(&tm);
}

/* ---- fixture ----------------------------------------------------------- */

struct fixture {
    struct temp_dir dir;
    struct secretbox *box;
    struct users *u;
    struct authn *a;
    struct gate_policy policy;
};

static void create_one(struct users *u, const char *name, const char *password, enum user_level level)
{
    struct users_entry e = { name, password, level };
    int rc = users_create(u, &e, 1, NULL);
    if (rc != USERS_OK)
        fail_msg("creating %s: %s", name, users_strerror(rc));
}

static int open_fixture(void **state, int with_users)
{
    fake_now = base_time();
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    struct authn_settings s = {
        .realm = REALM, .nonce_lifetime_s = 300, .created_window_s = 300, .allow_basic = 0, .now = fake_clock,
    };
    if (secretbox_open(&fx->box, fx->dir.path) != SECRETBOX_OK ||
        users_open(&fx->u, fx->dir.path, fx->box) != USERS_OK ||
        authn_open(&fx->a, fx->u, fx->box, &s) != AUTHN_OK) {
        users_close(fx->u);
        secretbox_close(fx->box);
        temp_fixture_free(&fx->dir, fx);
        return -1;
    }
    *state = fx;
    if (with_users) {
        create_one(fx->u, ADMIN, ADMIN_PW, USER_LEVEL_ADMINISTRATOR);
        create_one(fx->u, VIEWER, VIEWER_PW, USER_LEVEL_USER);
        create_one(fx->u, LONG_NAME, LONG_PW, USER_LEVEL_ADMINISTRATOR);
    }
    return 0;
}

static int setup(void **state) { return open_fixture(state, 1); }
static int setup_no_users(void **state) { return open_fixture(state, 0); }

static int teardown(void **state)
{
    struct fixture *fx = *state;
    authn_close(fx->a);
    users_close(fx->u);
    secretbox_close(fx->box);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

/* ---- credentials ------------------------------------------------------- */

/* A WS-UsernameToken PasswordDigest: Base64(SHA-1(nonce | created | pw)),
 * with a nonce never used before in this process (authn keeps a replay
 * cache) and Created at the device clock. */
struct token_buf {
    char digest[64];
    char nonce_b64[64];
    char created[32];
    struct gate_username_token t;
};

static const struct gate_username_token *make_token(struct token_buf *b, const char *user, const char *pw)
{
    static unsigned counter;
    unsigned char nonce[16], buf[256], md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    counter++;
    for (size_t i = 0; i < sizeof nonce; i++)
        nonce[i] = (unsigned char)((counter >> (8 * (i % 4))) ^ (i * 37));
    struct tm tm;
    gmtime_r(&fake_now, &tm);
    strftime(b->created, sizeof b->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t clen = strlen(b->created), plen = strlen(pw);
    memcpy(buf, nonce, sizeof nonce);
    memcpy(buf + sizeof nonce, b->created, clen);
    memcpy(buf + sizeof nonce + clen, pw, plen);
    assert_int_equal(EVP_Digest(buf, sizeof nonce + clen + plen, md, &n, EVP_sha1(), NULL), 1);
    EVP_EncodeBlock((unsigned char *)b->digest, md, (int)n);
    EVP_EncodeBlock((unsigned char *)b->nonce_b64, nonce, (int)sizeof nonce);
    b->t = (struct gate_username_token){
        .username = user, .password = b->digest, .password_type = WSSE_DIGEST_TYPE,
        .nonce = b->nonce_b64, .created = b->created,
    };
    return &b->t;
}

static void hex_of(const unsigned char *in, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
    out[2 * n] = '\0';
}

static void sha256_hex(const char *text, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL), 1);
    hex_of(md, n, out);
}

/* An RFC 7616 SHA-256 qop=auth Authorization value for POST URI, on a fresh
 * nonce from the device's challenge. */
static void make_digest(struct authn *a, const char *user, const char *pw, char *out, size_t outlen)
{
    char ch[1024], nonce[256], buf[1024], ha1[65], ha2[65], resp[65];
    const char *cnonce = "0a4f113b", *nc = "00000001";
    assert_true(authn_digest_challenge(a, 0, ch, sizeof ch) > 0);
    const char *p = strstr(ch, "nonce=\"");
    assert_non_null(p);
    p += 7;
    const char *e = strchr(p, '"');
    assert_non_null(e);
    assert_true((size_t)(e - p) < sizeof nonce);
    memcpy(nonce, p, (size_t)(e - p));
    nonce[e - p] = '\0';
    snprintf(buf, sizeof buf, "%s:%s:%s", user, REALM, pw);
    sha256_hex(buf, ha1);
    snprintf(buf, sizeof buf, "POST:%s", URI);
    sha256_hex(buf, ha2);
    snprintf(buf, sizeof buf, "%s:%s:%s:%s:auth:%s", ha1, nonce, nc, cnonce, ha2);
    sha256_hex(buf, resp);
    int n = snprintf(out, outlen,
                     "Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", algorithm=SHA-256, "
                     "qop=auth, nc=%s, cnonce=\"%s\", response=\"%s\"",
                     user, REALM, nonce, URI, nc, cnonce, resp);
    assert_true(n > 0 && (size_t)n < outlen);
}

/* A request with nothing but the operation; the tests add credentials. */
static struct gate_request request(const char *operation)
{
    return (struct gate_request){
        .operation = operation, .method = "POST", .uri = URI, .peer = PEER, .tls = 0,
    };
}

static void decide(struct fixture *fx, const struct gate_request *req, struct gate_decision *d)
{
    /* Garbage first, so a field the gate forgets to set shows. */
    memset(d, 0x5a, sizeof *d);
    gate_decide(fx->a, fx->u, &fx->policy, req, d);
}

static void assert_principal(const struct gate_decision *d, const char *user, enum user_level level)
{
    assert_string_equal(d->principal.user, user);
    assert_int_equal(d->principal.level, level);
}

static void assert_anonymous(const struct gate_decision *d) { assert_principal(d, "", USER_LEVEL_ANONYMOUS); }

/* ---- operations -------------------------------------------------------- */

static void test_unknown_operation(void **state)
{
    struct fixture *fx = *state;
    struct token_buf tb;
    struct gate_decision d;
    static const char *const ops[] = { "tds:NoSuchOperation", "tds:getusers", "GetUsers", "", "SOAP-ENV:Fault" };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        /* Even a valid Administrator may not run what is not served. */
        struct gate_request req = request(ops[i]);
        req.token = make_token(&tb, ADMIN, ADMIN_PW);
        decide(fx, &req, &d);
        if (d.verdict != GATE_UNKNOWN_OPERATION)
            fail_msg("'%s': verdict %d", ops[i], d.verdict);
        assert_non_null(d.reason);
        assert_anonymous(&d);
    }
    struct gate_request req = request(NULL);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_UNKNOWN_OPERATION);
}

static void test_pre_auth_ignores_credentials(void **state)
{
    struct fixture *fx = *state;
    struct gate_username_token bad = {
        .username = ADMIN, .password = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", .password_type = WSSE_DIGEST_TYPE,
        .nonce = "AAAAAAAAAAAAAAAAAAAAAA==", .created = "2001-01-01T00:00:00Z",
    };
    struct gate_decision d;

    struct gate_request req = request("tds:GetSystemDateAndTime");
    req.token = &bad;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.first_admin_setup, 0);
    assert_int_equal(d.by_certificate, 0);
    assert_anonymous(&d);

    req = request("tds:GetSystemDateAndTime");
    req.authorization = "Digest username=\"admin\", response=\"nonsense\"";
    req.authorization_count = 2;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);

    req = request("tds:GetSystemDateAndTime");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_anonymous(&d);
}

/* ---- principals from Digest and UsernameToken --------------------------- */

static void test_no_credentials_get_a_challenge(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    struct gate_request req = request("tds:GetUsers");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_int_equal(d.stale, 0);
    assert_non_null(d.reason);
    assert_anonymous(&d);

    /* A token element without a Username is no credential either. */
    struct gate_username_token empty = { 0 };
    req.token = &empty;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
}

static void test_admin_token_allowed(void **state)
{
    struct fixture *fx = *state;
    struct token_buf tb;
    struct gate_decision d;
    static const char *const ops[] = { "tds:GetUsers", "tds:CreateUsers", "tds:SetSystemFactoryDefault",
                                       "trt:GetProfiles" };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct gate_request req = request(ops[i]);
        req.token = make_token(&tb, ADMIN, ADMIN_PW);
        decide(fx, &req, &d);
        if (d.verdict != GATE_ALLOW)
            fail_msg("%s: verdict %d (%s)", ops[i], d.verdict, d.reason ? d.reason : "");
        assert_int_equal(d.first_admin_setup, 0);
        assert_int_equal(d.by_certificate, 0);
        assert_principal(&d, ADMIN, USER_LEVEL_ADMINISTRATOR);
    }
}

static void test_user_token_gets_its_level(void **state)
{
    struct fixture *fx = *state;
    struct token_buf tb;
    struct gate_decision d;
    struct gate_request req = request("trt:GetProfiles");
    req.token = make_token(&tb, VIEWER, VIEWER_PW);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_principal(&d, VIEWER, USER_LEVEL_USER);
}

static void test_wrong_password_not_authorized(void **state)
{
    struct fixture *fx = *state;
    struct token_buf tb;
    struct gate_decision d;
    struct gate_request req = request("tds:GetUsers");
    req.token = make_token(&tb, ADMIN, VIEWER_PW);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_NOT_AUTHORIZED);
    assert_non_null(d.reason);
    assert_anonymous(&d);

    /* Unknown user: the same answer. */
    req.token = make_token(&tb, "nobody", ADMIN_PW);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_NOT_AUTHORIZED);
    assert_anonymous(&d);

    /* The very same token, once valid, cannot be replayed. */
    req.token = make_token(&tb, ADMIN, ADMIN_PW);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_NOT_AUTHORIZED);
    assert_anonymous(&d);
}

static void test_user_level_refused_admin_operations(void **state)
{
    struct fixture *fx = *state;
    struct token_buf tb;
    struct gate_decision d;
    static const char *const ops[] = { "tds:CreateUsers", "tds:SetSystemFactoryDefault", "tds:GetUsers" };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct gate_request req = request(ops[i]);
        req.token = make_token(&tb, VIEWER, VIEWER_PW);
        decide(fx, &req, &d);
        if (d.verdict != GATE_NOT_AUTHORIZED)
            fail_msg("%s: verdict %d", ops[i], d.verdict);
        assert_non_null(d.reason);
        assert_int_equal(d.by_certificate, 0);
        /* The principal stays known, for the log and the fault. */
        assert_principal(&d, VIEWER, USER_LEVEL_USER);
    }
}

static void test_digest_principal_and_refusals(void **state)
{
    struct fixture *fx = *state;
    char auth[2048];
    struct gate_decision d;

    struct gate_request req = request("tds:GetUsers");
    make_digest(fx->a, ADMIN, ADMIN_PW, auth, sizeof auth);
    req.authorization = auth;
    req.authorization_count = 1;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_principal(&d, ADMIN, USER_LEVEL_ADMINISTRATOR);

    /* A failing Digest gets a new challenge, not a SOAP fault. */
    make_digest(fx->a, ADMIN, VIEWER_PW, auth, sizeof auth);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_int_equal(d.stale, 0);
    assert_anonymous(&d);

    /* A User by Digest on an Administrator operation: NotAuthorized. */
    make_digest(fx->a, VIEWER, VIEWER_PW, auth, sizeof auth);
    req.operation = "tds:SetSystemFactoryDefault";
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_NOT_AUTHORIZED);
    assert_principal(&d, VIEWER, USER_LEVEL_USER);
}

static void test_digest_stale_nonce(void **state)
{
    struct fixture *fx = *state;
    char auth[2048];
    struct gate_decision d;
    struct gate_request req = request("tds:GetUsers");
    make_digest(fx->a, ADMIN, ADMIN_PW, auth, sizeof auth);
    req.authorization = auth;
    req.authorization_count = 1;
    fake_now += 301;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_int_equal(d.stale, 1);
    assert_anonymous(&d);
}

static void test_two_authorization_headers_challenged(void **state)
{
    struct fixture *fx = *state;
    char auth[2048];
    struct token_buf tb;
    struct gate_decision d;
    struct gate_request req = request("tds:GetUsers");
    make_digest(fx->a, ADMIN, ADMIN_PW, auth, sizeof auth);
    req.authorization = auth;   /* valid, but which of the two was meant? */
    req.authorization_count = 2;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_non_null(d.reason);
    assert_anonymous(&d);

    /* Neither a valid token nor a certificate makes up for it. */
    req.token = make_token(&tb, ADMIN, ADMIN_PW);
    req.certificate_user = ADMIN;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_int_equal(d.by_certificate, 0);
    assert_anonymous(&d);
}

/* ---- first Administrator ----------------------------------------------- */

static void test_first_admin_over_network_allowed(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    fx->policy.first_admin_over_network = 1;
    struct gate_request req = request("tds:CreateUsers");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.first_admin_setup, 1);
    assert_anonymous(&d);

    /* Only CreateUsers: the rest waits for an Administrator. */
    req = request("tds:GetUsers");
    decide(fx, &req, &d);
    assert_int_not_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.first_admin_setup, 0);
    req = request("tds:SetSystemFactoryDefault");
    decide(fx, &req, &d);
    assert_int_not_equal(d.verdict, GATE_ALLOW);

    /* Once there is one, the setup path is closed. */
    create_one(fx->u, ADMIN, ADMIN_PW, USER_LEVEL_ADMINISTRATOR);
    req = request("tds:CreateUsers");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_int_equal(d.first_admin_setup, 0);
}

static void test_first_admin_over_network_off_refused(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    fx->policy.first_admin_over_network = 0;
    struct gate_request req = request("tds:CreateUsers");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_int_equal(d.first_admin_setup, 0);
    assert_non_null(d.reason);
    assert_anonymous(&d);
}

/* ---- anonymous classes ------------------------------------------------- */

static void test_anonymous_read_media(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    struct gate_request req = request("trt:GetProfiles");

    /* Not granted: a challenge. */
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);

    fx->policy.anonymous_classes = ACCESS_BIT(ACCESS_READ_MEDIA);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_anonymous(&d);
    req = request("tr2:GetProfiles");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);

    /* READ_SYSTEM stays closed, even when the policy asks for it. */
    req = request("tds:GetDeviceInformation");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    fx->policy.anonymous_classes = ACCESS_BIT(ACCESS_READ_MEDIA) | ACCESS_BIT(ACCESS_READ_SYSTEM) |
                                   ACCESS_BIT(ACCESS_READ_SYSTEM_SECRET);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    req = request("tds:GetUsers");
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_anonymous(&d);
}

/* ---- the client-certificate principal ---------------------------------- */

static void test_certificate_admin_allowed(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    struct gate_request req = request("tds:SetSystemFactoryDefault");
    req.tls = 1;
    req.certificate_user = ADMIN;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.by_certificate, 1);
    assert_int_equal(d.first_admin_setup, 0);
    assert_principal(&d, ADMIN, USER_LEVEL_ADMINISTRATOR);

    /* A name of exactly USERS_NAME_MAX bytes is a name like any other. */
    req.certificate_user = LONG_NAME;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.by_certificate, 1);
    assert_principal(&d, LONG_NAME, USER_LEVEL_ADMINISTRATOR);
}

static void test_certificate_cn_no_user_forbidden(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    /* Names are matched exactly: a case variant is no user either. */
    static const char *const cns[] = { "mallory", "ADMIN", "admin ", "admin.example.com" };
    for (size_t i = 0; i < sizeof cns / sizeof cns[0]; i++) {
        struct gate_request req = request("tds:GetUsers");
        req.tls = 1;
        req.certificate_user = cns[i];
        decide(fx, &req, &d);
        if (d.verdict != GATE_FORBIDDEN)
            fail_msg("CN '%s': verdict %d", cns[i], d.verdict);
        assert_non_null(d.reason);
        assert_anonymous(&d);
    }
}

static void test_certificate_cn_too_long_forbidden(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    /* Its first USERS_NAME_MAX bytes name an Administrator: a gate that
     * truncated the CN would let it in. */
    struct gate_request req = request("tds:GetUsers");
    req.tls = 1;
    req.certificate_user = LONG_NAME "x";
    assert_int_equal(strlen(req.certificate_user), USERS_NAME_MAX + 1);
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_FORBIDDEN);
    assert_int_equal(d.by_certificate, 0);
    assert_anonymous(&d);

    char huge[4096];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    req.certificate_user = huge;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_FORBIDDEN);
    assert_anonymous(&d);
}

static void test_certificate_user_level_forbidden(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    static const char *const ops[] = { "tds:CreateUsers", "tds:SetSystemFactoryDefault" };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct gate_request req = request(ops[i]);
        req.tls = 1;
        req.certificate_user = VIEWER;
        decide(fx, &req, &d);
        if (d.verdict != GATE_FORBIDDEN)
            fail_msg("%s: verdict %d", ops[i], d.verdict);
        assert_int_equal(d.by_certificate, 1);
        assert_principal(&d, VIEWER, USER_LEVEL_USER);
    }
    /* What the level allows goes through. */
    struct gate_request req = request("trt:GetProfiles");
    req.tls = 1;
    req.certificate_user = VIEWER;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.by_certificate, 1);
    assert_principal(&d, VIEWER, USER_LEVEL_USER);
}

static void test_token_wins_over_certificate(void **state)
{
    struct fixture *fx = *state;
    struct token_buf tb;
    struct gate_decision d;

    struct gate_request req = request("tds:GetUsers");
    req.tls = 1;
    req.token = make_token(&tb, ADMIN, ADMIN_PW);
    req.certificate_user = VIEWER;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.by_certificate, 0);
    assert_principal(&d, ADMIN, USER_LEVEL_ADMINISTRATOR);

    /* The other way round: the token's User level decides, and the refusal
     * is the token's (NotAuthorized), not the certificate's. */
    req.token = make_token(&tb, VIEWER, VIEWER_PW);
    req.certificate_user = ADMIN;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_NOT_AUTHORIZED);
    assert_int_equal(d.by_certificate, 0);
    assert_principal(&d, VIEWER, USER_LEVEL_USER);

    /* Digest likewise. */
    char auth[2048];
    make_digest(fx->a, VIEWER, VIEWER_PW, auth, sizeof auth);
    req = request("trt:GetProfiles");
    req.tls = 1;
    req.authorization = auth;
    req.authorization_count = 1;
    req.certificate_user = ADMIN;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.by_certificate, 0);
    assert_principal(&d, VIEWER, USER_LEVEL_USER);
}

static void test_bad_credentials_not_overridden_by_certificate(void **state)
{
    struct fixture *fx = *state;
    struct token_buf tb;
    struct gate_decision d;

    struct gate_request req = request("tds:GetUsers");
    req.tls = 1;
    req.token = make_token(&tb, ADMIN, VIEWER_PW);
    req.certificate_user = ADMIN;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_NOT_AUTHORIZED);
    assert_int_equal(d.by_certificate, 0);
    assert_anonymous(&d);

    char auth[2048];
    make_digest(fx->a, ADMIN, VIEWER_PW, auth, sizeof auth);
    req = request("tds:GetUsers");
    req.tls = 1;
    req.authorization = auth;
    req.authorization_count = 1;
    req.certificate_user = ADMIN;
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_CHALLENGE);
    assert_int_equal(d.by_certificate, 0);
    assert_anonymous(&d);
}

static void test_certificate_on_pre_auth(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    static const char *const cns[] = { ADMIN, VIEWER, "mallory", LONG_NAME "x" };
    for (size_t i = 0; i < sizeof cns / sizeof cns[0]; i++) {
        struct gate_request req = request("tds:GetSystemDateAndTime");
        req.tls = 1;
        req.certificate_user = cns[i];
        decide(fx, &req, &d);
        if (d.verdict != GATE_ALLOW)
            fail_msg("CN '%s': verdict %d", cns[i], d.verdict);
    }
}

static void test_empty_certificate_cn_is_anonymous(void **state)
{
    struct fixture *fx = *state;
    struct gate_decision d;
    fx->policy.anonymous_classes = ACCESS_BIT(ACCESS_READ_MEDIA);
    struct gate_request req = request("trt:GetProfiles");
    req.tls = 1;
    req.certificate_user = "";
    decide(fx, &req, &d);
    assert_int_equal(d.verdict, GATE_ALLOW);
    assert_int_equal(d.by_certificate, 0);
    assert_anonymous(&d);
}

static const struct CMUnitTest regular_tests[] = {
    cmocka_unit_test_setup_teardown(test_unknown_operation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pre_auth_ignores_credentials, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_credentials_get_a_challenge, setup, teardown),
    cmocka_unit_test_setup_teardown(test_admin_token_allowed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_user_token_gets_its_level, setup, teardown),
    cmocka_unit_test_setup_teardown(test_wrong_password_not_authorized, setup, teardown),
    cmocka_unit_test_setup_teardown(test_user_level_refused_admin_operations, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_principal_and_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown(test_digest_stale_nonce, setup, teardown),
    cmocka_unit_test_setup_teardown(test_two_authorization_headers_challenged, setup, teardown),
    cmocka_unit_test_setup_teardown(test_first_admin_over_network_allowed, setup_no_users, teardown),
    cmocka_unit_test_setup_teardown(test_first_admin_over_network_off_refused, setup_no_users, teardown),
    cmocka_unit_test_setup_teardown(test_anonymous_read_media, setup, teardown),
    cmocka_unit_test_setup_teardown(test_certificate_admin_allowed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_certificate_cn_no_user_forbidden, setup, teardown),
    cmocka_unit_test_setup_teardown(test_certificate_cn_too_long_forbidden, setup, teardown),
    cmocka_unit_test_setup_teardown(test_certificate_user_level_forbidden, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_wins_over_certificate, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_credentials_not_overridden_by_certificate, setup, teardown),
    cmocka_unit_test_setup_teardown(test_certificate_on_pre_auth, setup, teardown),
    cmocka_unit_test_setup_teardown(test_empty_certificate_cn_is_anonymous, setup, teardown),
};

UNIT_MAIN("gate", regular_tests)
