/* The gate's decision for one SOAP request: access class of the operation,
 * the principal from the request's credentials, then the access policy.
 * HTTP credentials that fail get a fresh 401 challenge; a failing
 * WS-UsernameToken gets ter:NotAuthorized (what ONVIF clients expect of each). */
#include "opennvt/gate.h"
#include "opennvt/accesspolicy.h"
#include "opennvt/log.h"
#include "opennvt/users.h"

#include <stdio.h>
#include <string.h>

#define WSSE_PASSWORD_DIGEST_SUFFIX "#PasswordDigest"

static void anonymous(struct authn_principal *p)
{
    p->user[0] = '\0';
    p->level = USER_LEVEL_ANONYMOUS;
}

static int is_password_digest(const char *type)
{
    size_t n = type ? strlen(type) : 0;
    size_t k = sizeof WSSE_PASSWORD_DIGEST_SUFFIX - 1;
    return n >= k && strcmp(type + n - k, WSSE_PASSWORD_DIGEST_SUFFIX) == 0;
}

/* Authenticates what the request carries. Returns 0 with out set (anonymous
 * when there are no credentials), or fills the refusal into d. */
static int identify(struct authn *authn, struct users *users, const struct gate_request *req, struct gate_decision *d)
{
    if (req->authorization_count > 1) {
        d->verdict = GATE_CHALLENGE;
        d->reason = "more than one Authorization header";
        return -1;
    }
    if (req->authorization) {
        int rc = req->rtsp ? authn_rtsp(authn, req->authorization, req->method, req->uri, req->peer, &d->principal)
                           : authn_http(authn, req->authorization, req->method, req->uri, req->peer, req->tls,
                                        &d->principal);
        if (rc == AUTHN_OK)
            return 0;
        d->verdict = GATE_CHALLENGE;
        /* A reused nonce-count also gets stale=true: clients that share a
         * nonce across concurrent requests then retry with a fresh one. */
        d->stale = rc == AUTHN_E_STALE || rc == AUTHN_E_REPLAY;
        d->reason = authn_strerror(rc);
        return -1;
    }
    if (req->token && req->token->username) {
        const struct gate_username_token *t = req->token;
        int rc = authn_username_token(authn, t->username, t->password ? t->password : "",
                                      is_password_digest(t->password_type), t->nonce, t->created, req->peer,
                                      req->tls, &d->principal);
        if (rc == AUTHN_OK)
            return 0;
        d->verdict = GATE_NOT_AUTHORIZED;
        d->reason = authn_strerror(rc);
        return -1;
    }
    if (req->certificate_user && req->certificate_user[0]) {
        /* The TLS layer verified the certificate; its CN must name a user. */
        enum user_level level;
        if (strlen(req->certificate_user) > USERS_NAME_MAX ||
            users_level(users, req->certificate_user, &level) != USERS_OK) {
            d->verdict = GATE_FORBIDDEN;
            d->reason = "the client certificate's CN is not a user of this device";
            return -1;
        }
        snprintf(d->principal.user, sizeof d->principal.user, "%s", req->certificate_user);
        d->principal.level = level;
        d->by_certificate = 1;
    }
    return 0;
}

void gate_decide(struct authn *authn, struct users *users, const struct gate_policy *policy,
                 const struct gate_request *req, struct gate_decision *d)
{
    memset(d, 0, sizeof *d);
    anonymous(&d->principal);
    enum access_class cls;
    if (accesspolicy_class_of(req->operation, &cls) != 0 || cls == ACCESS_NEVER) {
        d->verdict = GATE_UNKNOWN_OPERATION;
        d->reason = "not an operation of this device";
        return;
    }
    /* Pre-authentication operations ignore credentials: clients attach
     * tokens (even stale ones) to GetSystemDateAndTime. */
    if (cls == ACCESS_PRE_AUTH) {
        d->verdict = GATE_ALLOW;
        return;
    }
    if (identify(authn, users, req, d) != 0) {
        anonymous(&d->principal);
        return;
    }
    if (!users_have_admin(users)) {
        if (policy->first_admin_over_network && strcmp(req->operation, "tds:CreateUsers") == 0) {
            d->verdict = GATE_ALLOW;
            d->first_admin_setup = 1;
            return;
        }
        d->verdict = !d->principal.user[0] ? GATE_CHALLENGE : d->by_certificate ? GATE_FORBIDDEN : GATE_NOT_AUTHORIZED;
        d->reason = "the device has no Administrator yet";
        return;
    }
    if (accesspolicy_level_may(d->principal.level, cls, policy->anonymous_classes)) {
        d->verdict = GATE_ALLOW;
        return;
    }
    if (!d->principal.user[0]) {
        d->verdict = GATE_CHALLENGE;
        d->reason = "authentication required";
    } else {
        d->verdict = d->by_certificate ? GATE_FORBIDDEN : GATE_NOT_AUTHORIZED;
        d->reason = "the user's level does not allow this operation";
        log_info("auth", "%s: user '%s' (%s) refused %s (%s)", req->peer, d->principal.user,
                 users_level_name(d->principal.level), req->operation, accesspolicy_class_name(cls));
    }
}
