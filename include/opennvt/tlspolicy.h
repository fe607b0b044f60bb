/* How clients reach the device over HTTP and HTTPS, and what its TLS server
 * does: the network protocols (enabled, port), the certification paths
 * assigned to the TLS server, the enabled TLS versions, and client
 * authentication (required or not, the assigned certification path
 * validation policies, CN-to-user mapping). Rules from the Core spec
 * (network protocols) and the Security spec (TLS server).
 *
 * Safe apply: each of these changes can cut the administrator off, so every
 * change is tentative. It takes effect at once while the last confirmed state
 * is kept; an administrator request over the new configuration confirms it
 * (tlspolicy_confirm); otherwise, when the window has passed, tlspolicy_expire
 * restores the confirmed state. Further changes inside a window extend it and
 * keep the same confirmed state. A daemon started with a change still
 * unconfirmed restores the confirmed state (nobody confirmed it).
 *
 * State in state_dir/tlspolicy.xml (0600), replaced atomically. References to
 * keystore objects are this module's own state: it registers the keystore's
 * reference check, so an assigned path or policy cannot be deleted.
 * Thread-safe. */
#ifndef OPENNVT_TLSPOLICY_H
#define OPENNVT_TLSPOLICY_H

#include "opennvt/keystore.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define TLSPOLICY_MAX_SERVER_PATHS 2     /* one RSA and one EC certificate */
#define TLSPOLICY_MAX_CPV_POLICIES 8     /* assigned validation policies */
#define TLSPOLICY_MAX_RESERVED_PORTS 64

#define TLSPOLICY_TLS12 1u
#define TLSPOLICY_TLS13 2u
#define TLSPOLICY_TLS_ALL (TLSPOLICY_TLS12 | TLSPOLICY_TLS13)

/* tlspolicy_settings.forced: at open, the command line's ports win over
 * stored ones for this run (not persisted); a later tlspolicy_set_protocols
 * takes effect as usual. */
#define TLSPOLICY_FORCE_HTTP_PORT 1u
#define TLSPOLICY_FORCE_HTTPS_PORT 2u

enum tlspolicy_error {
    TLSPOLICY_OK = 0,
    TLSPOLICY_E_STORE = -1,           /* unreadable/corrupt state, or could not persist; nothing changed */
    TLSPOLICY_E_NOMEM = -2,
    TLSPOLICY_E_INVALID = -3,         /* malformed argument */
    TLSPOLICY_E_PORT = -4,            /* port outside 1..65535 */
    TLSPOLICY_E_PORT_CONFLICT = -5,   /* two protocols on one port */
    TLSPOLICY_E_PORT_RESERVED = -6,   /* port in the reserved list */
    TLSPOLICY_E_NO_PROTOCOL = -7,     /* HTTP and HTTPS both off: the device would be unreachable */
    TLSPOLICY_E_PATH_NOT_FOUND = -8,  /* no such certification path in the keystore */
    TLSPOLICY_E_NO_PRIVATE_KEY = -9,  /* the path's first certificate has no usable private key */
    TLSPOLICY_E_NOT_ASSIGNED = -10,   /* the (old) path or policy is not assigned */
    TLSPOLICY_E_FULL = -11,           /* maximum number of assigned paths / policies reached */
    TLSPOLICY_E_KEY_TYPE = -12,       /* a path with a key of the same family (RSA / EC) is assigned */
    TLSPOLICY_E_IN_USE = -13,         /* removal would leave HTTPS or client authentication without what it needs */
    TLSPOLICY_E_POLICY_NOT_FOUND = -14, /* no such validation policy in the keystore */
    TLSPOLICY_E_VERSION = -15,        /* unknown or unsupported TLS version (1.0 and 1.1 are refused) */
    TLSPOLICY_E_EMPTY = -16,          /* empty TLS version list */
    TLSPOLICY_E_NO_CLIENT_POLICY = -17, /* client authentication without an assigned validation policy */
    TLSPOLICY_E_NO_SERVER_CERT = -18, /* client authentication without an assigned server certificate */
    TLSPOLICY_E_CLIENT_CERT = -19,    /* client certificate not valid under any assigned policy */
};

struct tlspolicy_protocols {
    int http_enabled;
    int http_port;                    /* 0 only from the command line: a free port */
    int https_enabled;
    int https_port;
};

struct tlspolicy_state {
    struct tlspolicy_protocols protocols;
    unsigned tls_versions;            /* TLSPOLICY_TLS12 | TLSPOLICY_TLS13 */
    size_t n_server_paths;
    char server_paths[TLSPOLICY_MAX_SERVER_PATHS][KEYSTORE_ID_MAX];
    int client_auth_required;
    int cn_maps_to_user;
    size_t n_cpv_policies;
    char cpv_policies[TLSPOLICY_MAX_CPV_POLICIES][KEYSTORE_ID_MAX];
};

struct tlspolicy_settings {
    struct tlspolicy_protocols defaults; /* until SetNetworkProtocols stores others */
    unsigned forced;                  /* TLSPOLICY_FORCE_*: defaults' ports win over stored ones */
    const int *reserved_ports;        /* refused by tlspolicy_set_protocols */
    size_t n_reserved_ports;
    int confirm_window_s;             /* 0: changes are final at once */
    int expiry_warning_days;          /* tlspolicy_check_expiry warns this long before */
    int64_t (*now_ms)(void);          /* monotonic, for the window; NULL = CLOCK_MONOTONIC */
    time_t (*now)(void);              /* wall clock, for validity; NULL = time(NULL) */
};

struct tlspolicy;

/* Loads state_dir/tlspolicy.xml (absent: defaults, TLS 1.2 and 1.3, nothing
 * assigned). Assigned paths or policies that are gone from the keystore are
 * dropped with a warning. A pending change found on disk is rolled back. */
int tlspolicy_open(struct tlspolicy **out, const char *state_dir, struct keystore *ks,
                   const struct tlspolicy_settings *s);
/* Unregisters the keystore reference check and frees. */
void tlspolicy_close(struct tlspolicy *tp);

void tlspolicy_get(struct tlspolicy *tp, struct tlspolicy_state *out);

/* Bumped whenever the state changes (a change, a rollback). */
unsigned long tlspolicy_generation(struct tlspolicy *tp);

/* ---- changes: each one tentative (see the top) ---- */
/* Ports 1..65535, not reserved, HTTP and HTTPS on different ports, at least
 * one of them enabled. A disabled protocol keeps its port. Takes effect (and
 * is stored) as given, forced ports included. */
int tlspolicy_set_protocols(struct tlspolicy *tp, const struct tlspolicy_protocols *p);

/* Security "TLS Server Operations". Add of an assigned path: no effect, OK. */
int tlspolicy_add_server_path(struct tlspolicy *tp, const char *path_id);
/* TLSPOLICY_E_IN_USE while HTTPS is enabled (Security: ReferenceExists while
 * the TLS server is enabled; use replace), or when it is the last one and
 * client authentication is required. */
int tlspolicy_remove_server_path(struct tlspolicy *tp, const char *path_id);
int tlspolicy_replace_server_path(struct tlspolicy *tp, const char *old_id, const char *new_id);

int tlspolicy_set_tls_versions(struct tlspolicy *tp, unsigned versions);

/* Needs at least one assigned validation policy and one server path. */
int tlspolicy_set_client_auth(struct tlspolicy *tp, int required);
int tlspolicy_set_cn_maps_to_user(struct tlspolicy *tp, int on);

int tlspolicy_add_cpv_policy(struct tlspolicy *tp, const char *policy_id);
/* TLSPOLICY_E_IN_USE when it is the last one and client authentication is required. */
int tlspolicy_remove_cpv_policy(struct tlspolicy *tp, const char *policy_id);
int tlspolicy_replace_cpv_policy(struct tlspolicy *tp, const char *old_id, const char *new_id);

/* ---- safe apply ---- */
/* 1 while a change waits for confirmation: its generation and the time left. */
int tlspolicy_pending(struct tlspolicy *tp, unsigned long *generation, int64_t *remaining_ms);
/* An administrator was authenticated on a connection that started under
 * generation seen: confirms the pending change when seen is at least its
 * generation, and, when the change is about what TLS clients meet while HTTPS
 * is on, the connection is TLS (over_tls). Returns 1 when it confirmed. */
int tlspolicy_confirm(struct tlspolicy *tp, unsigned long seen, int over_tls);
/* When the window of the pending change has passed, restores the confirmed
 * state (persisted, logged) and returns 1; otherwise 0. */
int tlspolicy_expire(struct tlspolicy *tp);
/* Restores the confirmed state now (e.g. a port could not be bound). */
int tlspolicy_rollback(struct tlspolicy *tp, const char *why);

/* ---- what the TLS server uses ---- */
struct tlspolicy_identity {
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) *chain;            /* the rest of the path, as stored */
};

/* The identities of the assigned paths that are usable now (private key ok,
 * certificate valid at the wall clock), as new references; *n = 0 means
 * serve the device CA's. Loaded from the keystore once per change (cached on
 * the keystore and policy generations), so cheap per handshake. */
int tlspolicy_server_identities(struct tlspolicy *tp, struct tlspolicy_identity out[TLSPOLICY_MAX_SERVER_PATHS],
                                size_t *n);
void tlspolicy_identities_free(struct tlspolicy_identity *ids, size_t n);

/* Validates a client certificate (leaf, plus the certificates the client
 * sent, may be NULL) against the assigned policies: valid when RFC 5280 path
 * validation succeeds under any one of them (its trust anchors; every
 * keystore certificate as candidate intermediate; the keystore's CRLs, where
 * a certificate counts as revoked only when a CRL says so, and a missing CRL
 * is not a failure; delta CRLs when the policy says; the TLS WWW client
 * authentication extended key usage when the policy requires it). On success
 * cn gets the subject's CN ("" when none). Otherwise TLSPOLICY_E_CLIENT_CERT
 * and *why (static text). */
int tlspolicy_verify_client(struct tlspolicy *tp, X509 *leaf, STACK_OF(X509) *sent, char *cn, size_t cnlen,
                            const char **why);

/* Logs (once per certificate per day) a warning when an assigned server
 * certificate expires within expiry_warning_days, and an error when one has
 * expired and the device CA certificate is served instead. Call it
 * periodically. */
void tlspolicy_check_expiry(struct tlspolicy *tp);

/* "1.2 1.3" <-> mask. Parse: TLSPOLICY_E_EMPTY, or TLSPOLICY_E_VERSION for
 * anything but 1.2 and 1.3 (1.0 and 1.1 included). */
int tlspolicy_parse_versions(const char *list, unsigned *versions);
void tlspolicy_format_versions(unsigned versions, char *buf, size_t len);

const char *tlspolicy_strerror(int err);

/* Told of each certificate expiry note the policy logs: the certification
 * path and the days left (negative once expired). Called under the expiry
 * lock: it must not call back into tlspolicy. */
typedef void (*tlspolicy_expiry_fn)(void *arg, const char *path_id, long days_left);
void tlspolicy_set_expiry_listener(struct tlspolicy *tp, tlspolicy_expiry_fn fn, void *arg);

#endif
