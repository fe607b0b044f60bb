/* The gate: for one SOAP request, who is asking (one principal from HTTP
 * Digest, WS-UsernameToken or a TLS client certificate whose CN names a user,
 * anonymous otherwise) and may they run this
 * operation (the access policy), decided before any handler runs. It knows
 * neither sockets nor gSOAP: the listener hands it plain strings. */
#ifndef OPENNVT_GATE_H
#define OPENNVT_GATE_H

#include <stddef.h>

#include "opennvt/authn.h"

struct users;

enum gate_verdict {
    GATE_ALLOW = 0,           /* run the handler */
    GATE_CHALLENGE,           /* HTTP 401 with the Digest challenge (stale says stale=true) */
    GATE_NOT_AUTHORIZED,      /* SOAP fault env:Sender / ter:NotAuthorized (HTTP 400) */
    GATE_UNKNOWN_OPERATION,   /* not an operation this device serves: ter:UnknownAction */
    GATE_FORBIDDEN,           /* HTTP 403: the client certificate's user may not do this (Security, CnMapsToUser) */
};

/* A WS-UsernameToken as it arrived (NULL fields when absent). */
struct gate_username_token {
    const char *username;
    const char *password;
    const char *password_type;    /* the Type attribute URI, NULL = PasswordText */
    const char *nonce;            /* base64 */
    const char *created;
};

struct gate_request {
    const char *operation;        /* "tds:GetUsers" */
    const char *authorization;    /* HTTP Authorization value, NULL when absent */
    int authorization_count;      /* how many Authorization headers came */
    const char *method;           /* HTTP method and request-target, for Digest */
    const char *uri;
    const struct gate_username_token *token;   /* NULL when the request has none */
    const char *peer;             /* source address text */
    int tls;
    int rtsp;                     /* an RTSP request: RFC 2069 Digest accepted (authn_rtsp) */
    /* The CN of a verified TLS client certificate when CnMapsToUser is on,
     * else NULL. Used when the request carries no other credentials. */
    const char *certificate_user;
};

struct gate_policy {
    unsigned anonymous_classes;   /* ACCESS_BIT(...) granted to anonymous requests */
    int first_admin_over_network; /* CreateUsers allowed while no Administrator exists */
};

struct gate_decision {
    enum gate_verdict verdict;
    int stale;                    /* with GATE_CHALLENGE */
    int first_admin_setup;        /* allowed only because no Administrator exists yet */
    int by_certificate;           /* the principal came from the TLS client certificate */
    struct authn_principal principal;
    const char *reason;           /* short text for the fault / log */
};

void gate_decide(struct authn *authn, struct users *users, const struct gate_policy *policy,
                 const struct gate_request *req, struct gate_decision *out);

#endif
