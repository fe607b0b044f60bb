/* Authentication: turns the credentials of one request into one principal
 * {user, level}. HTTP Digest (RFC 7616: SHA-256 and MD5, qop=auth, expiring
 * server nonces, nonce-count replay check) for HTTP and RTSP alike, and
 * WS-UsernameToken (PasswordDigest; PasswordText only over TLS) with a
 * Created window against the device clock and a bounded nonce replay cache.
 * Failures are counted per (source address, user): over max_failures within
 * the monitor period the pair is blocked for that period and a warning is
 * logged; a flood from one address never blocks other addresses. Passwords
 * come from users_password and are wiped after each check. Thread-safe. */
#ifndef OPENNVT_AUTHN_H
#define OPENNVT_AUTHN_H

#include <stddef.h>
#include <time.h>

#include "opennvt/users.h"

struct secretbox;

enum authn_result {
    AUTHN_OK = 0,
    AUTHN_E_DENIED = -1,      /* unknown user or wrong password/digest */
    AUTHN_E_STALE = -2,       /* Digest: nonce expired (answer 401 with stale=true) */
    AUTHN_E_REPLAY = -3,      /* nonce (or nonce-count) already used */
    AUTHN_E_EXPIRED = -4,     /* UsernameToken Created outside the window */
    AUTHN_E_BLOCKED = -5,     /* this source is temporarily blocked for this user */
    AUTHN_E_MALFORMED = -6,   /* unparsable credentials */
    AUTHN_E_INSECURE = -7,    /* PasswordText or Basic without TLS, or Basic disabled */
    AUTHN_E_NOMEM = -8,
};

struct authn_principal {
    char user[USERS_NAME_MAX + 1];   /* empty for anonymous */
    enum user_level level;           /* USER_LEVEL_ANONYMOUS when not authenticated */
};

struct authn_settings {
    const char *realm;               /* Digest realm, e.g. "OpenNVT" */
    int nonce_lifetime_s;            /* Digest server nonce lifetime (default 300) */
    int created_window_s;            /* UsernameToken Created tolerance, each way (default 300) */
    int allow_basic;                 /* HTTP Basic accepted (over TLS only) */
    time_t (*now)(void);             /* device clock; NULL: time(NULL) */
};

/* Ranges of the failure policy (GetAuthFailureWarningOptions). */
#define AUTHN_MONITOR_PERIOD_MIN 1
#define AUTHN_MONITOR_PERIOD_MAX 3600
#define AUTHN_MAX_FAILURES_MIN 1
#define AUTHN_MAX_FAILURES_MAX 100

/* ONVIF AuthFailureWarningConfiguration. */
struct authn_failure_policy {
    int enabled;                     /* bool: monitor, warn and block (default on) */
    int monitor_period_s;            /* 1..3600 */
    int max_failures;                /* 1..100 */
};

struct authn;

/* failure policy defaults: 60 s, 5 failures. The policy is persisted by the
 * caller (authn keeps it in memory only). */
int authn_open(struct authn **out, struct users *users, struct secretbox *box, const struct authn_settings *s);
void authn_close(struct authn *a);

/* The WWW-Authenticate header lines (each "WWW-Authenticate: Digest ...\r\n",
 * SHA-256 first, then MD5) for a 401 with a fresh nonce. stale adds
 * stale=true. Returns the length written, or -1 when outlen is too small. */
int authn_digest_challenge(struct authn *a, int stale, char *out, size_t outlen);

/* Verifies an Authorization header value ("Digest username=..., ..." or
 * "Basic ...") for method and request-target uri. peer is the source address
 * text (for failure counting and logs). tls: connection is TLS. */
int authn_http(struct authn *a, const char *authorization, const char *method, const char *uri,
               const char *peer, int tls, struct authn_principal *out);

/* The same for an RTSP request: also accepts RFC 2069 Digest (MD5, no qop,
 * no nonce count), which RTSP clients such as GStreamer and live555 send;
 * such a response is replayable within the nonce lifetime. */
int authn_rtsp(struct authn *a, const char *authorization, const char *method, const char *uri,
               const char *peer, struct authn_principal *out);
/* Verifies a WS-UsernameToken. password_type_digest: 1 for PasswordDigest
 * (password is Base64(SHA-1(nonce | created | password))), 0 for PasswordText.
 * nonce_b64 and created may be NULL when absent (then a digest is refused). */
int authn_username_token(struct authn *a, const char *username, const char *password, int password_type_digest,
                         const char *nonce_b64, const char *created, const char *peer, int tls,
                         struct authn_principal *out);

/* HTTP/RTSP Digest algorithms offered in challenges and accepted (ONVIF
 * SetHashingAlgorithm); the -sess variants follow their base algorithm. */
#define AUTHN_ALG_MD5 1u
#define AUTHN_ALG_SHA256 2u
#define AUTHN_ALG_ALL (AUTHN_ALG_MD5 | AUTHN_ALG_SHA256)

unsigned authn_get_digest_algorithms(struct authn *a);
/* Returns 0, or -1 when algs is empty or has unknown bits (nothing changed). */
int authn_set_digest_algorithms(struct authn *a, unsigned algs);

void authn_get_failure_policy(struct authn *a, struct authn_failure_policy *out);
/* 1 when every value is within the ranges above. */
int authn_failure_policy_valid(const struct authn_failure_policy *p);
/* Returns 0, or -1 when a value is out of range (nothing changed). */
int authn_set_failure_policy(struct authn *a, const struct authn_failure_policy *in);

const char *authn_strerror(int err);

/* Called (outside authn's lock) when failures from one address for one user
 * cross the policy's threshold: the AuthFailed event. */
typedef void (*authn_alarm_fn)(void *arg, const char *user, const char *peer);
void authn_set_failure_alarm(struct authn *a, authn_alarm_fn fn, void *arg);

#endif
