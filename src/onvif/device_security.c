/* Device service, security part (tds): users, password policy, failed-login
 * monitoring and the IP address filter. Thin handlers: the rules live in
 * users, authn and ipfilter; this file maps wire types and errors. */
#include "opennvt/authn_store.h"
#include "opennvt/authn.h"
#include "opennvt/ipfilter.h"
#include "opennvt/log.h"
#include "opennvt/onvif.h"
#include "opennvt/users.h"
#include "soap_values.h"
#include "soapH.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* SetAuthFailureWarningConfiguration and SetHashingAlgorithm share one file
 * (authn.xml): each reads the other's value, saves, then applies, so they
 * run one at a time or one could persist the other's stale value. */
static pthread_mutex_t authn_settings_lock = PTHREAD_MUTEX_INITIALIZER;





static struct tt__IntRange *range_of(struct soap *soap, int lo, int hi)
{
    struct tt__IntRange *r = onvif_zalloc(soap, sizeof *r);
    if (r) {
        r->Min = lo;
        r->Max = hi;
    }
    return r;
}

/* ---- users ----------------------------------------------------------------- */

static int users_fault_why(struct soap *soap, int err, const char *name, const char *why)
{
    char reason[200];
    snprintf(reason, sizeof reason, "%s%s%s%s%s", users_strerror(err), name ? ": " : "", name ? name : "",
             why ? " (" : "", why ? why : "");
    if (why)
        snprintf(reason + strlen(reason), sizeof reason - strlen(reason), ")");
    switch (err) {
    case USERS_E_EXISTS: return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:UsernameClash", reason);
    case USERS_E_TOO_MANY: return onvif_receiver_fault(soap, "ter:Action", "ter:TooManyUsers", reason);
    case USERS_E_NAME_TOO_LONG: return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:UsernameTooLong", reason);
    case USERS_E_NAME_INVALID:
        if (name && !name[0])
            return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:UsernameTooShort", reason);
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, reason);
    case USERS_E_PASSWORD_TOO_LONG: return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:PasswordTooLong", reason);
    case USERS_E_PASSWORD_WEAK:
    case USERS_E_PASSWORD_REUSED:
    case USERS_E_PASSWORD_INVALID:
        return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:PasswordTooWeak", reason);
    case USERS_E_ANONYMOUS: return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:AnonymousNotAllowed", reason);
    case USERS_E_NO_SUCH_USER: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:UsernameMissing", reason);
    case USERS_E_LAST_ADMIN: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:FixedUser", reason);
    case USERS_E_POLICY:
    case USERS_E_INVALID: return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, reason);
    }
    return onvif_receiver_fault(soap, "ter:Action", NULL, reason);
}

static int users_fault(struct soap *soap, int err, const char *name)
{
    return users_fault_why(soap, err, name, NULL);
}

/* The fault for entry `bad` of a rejected request, saying which rule a weak
 * password breaks. */
static int entry_fault(struct soap *soap, struct users *u, int err, const struct users_entry *e, size_t n, size_t bad)
{
    if (bad >= n)
        return users_fault(soap, err, NULL);
    const char *why = err == USERS_E_PASSWORD_WEAK ? users_password_weakness(u, e[bad].name, e[bad].password) : NULL;
    return users_fault_why(soap, err, e[bad].name, why);
}

/* Passwords of a request, parsed into gSOAP's memory: wiped once used. */
static void wipe_passwords(struct users_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].password)
            OPENSSL_cleanse((char *)e[i].password, strlen(e[i].password));
}

/* tt:UserLevel to ours; Extended (user roles) is not offered. */
static int level_from_wire(enum tt__UserLevel l, enum user_level *out)
{
    switch (l) {
    case tt__UserLevel__Administrator: *out = USER_LEVEL_ADMINISTRATOR; return 0;
    case tt__UserLevel__Operator: *out = USER_LEVEL_OPERATOR; return 0;
    case tt__UserLevel__User: *out = USER_LEVEL_USER; return 0;
    case tt__UserLevel__Anonymous: *out = USER_LEVEL_ANONYMOUS; return 0;
    default: return -1;
    }
}

static enum tt__UserLevel level_to_wire(enum user_level l)
{
    switch (l) {
    case USER_LEVEL_ADMINISTRATOR: return tt__UserLevel__Administrator;
    case USER_LEVEL_OPERATOR: return tt__UserLevel__Operator;
    case USER_LEVEL_USER: return tt__UserLevel__User;
    default: return tt__UserLevel__Anonymous;
    }
}

/* Converts the request's users; on a bad level answers the fault. */
static int entries_of(struct soap *soap, const struct tt__User *in, int n, struct users_entry **out)
{
    if (n <= 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "No user given");
    if (n > USERS_MAX * 2) {
        for (int i = 0; i < n; i++)
            if (in[i].Password)
                OPENSSL_cleanse(in[i].Password, strlen(in[i].Password));
        return users_fault(soap, USERS_E_TOO_MANY, NULL);
    }
    struct users_entry *e = onvif_zalloc(soap, sizeof *e * (size_t)n);
    if (!e)
        return SOAP_EOM;
    for (int i = 0; i < n; i++) {
        e[i].name = in[i].Username ? in[i].Username : "";
        e[i].password = in[i].Password;
    }
    for (int i = 0; i < n; i++) {
        int bad_level = level_from_wire(in[i].UserLevel, &e[i].level) != 0;
        if (bad_level || e[i].level == USER_LEVEL_ANONYMOUS) {
            wipe_passwords(e, (size_t)n);
            return bad_level ? onvif_sender_fault(soap, "ter:InvalidArgVal", NULL,
                                                  "Extended user level (user roles) is not supported")
                             : users_fault(soap, USERS_E_ANONYMOUS, e[i].name);
        }
    }
    *out = e;
    return SOAP_OK;
}

int __tds__GetUsers(struct soap *soap, struct _tds__GetUsers *req, struct _tds__GetUsersResponse *resp)
{
    (void)req;
    struct users_info *list;
    size_t n;
    int rc = users_list(onvif_request_of(soap)->dev->users, &list, &n);
    if (rc != USERS_OK)
        return users_fault(soap, rc, NULL);
    resp->User = onvif_zalloc(soap, sizeof *resp->User * (n ? n : 1));
    if (!resp->User) {
        free(list);
        return SOAP_EOM;
    }
    for (size_t i = 0; i < n; i++) {
        resp->User[i].Username = soap_strdup(soap, list[i].name);
        resp->User[i].UserLevel = level_to_wire(list[i].level);
    }
    resp->__sizeUser = (int)n;
    free(list);
    return SOAP_OK;
}

int __tds__CreateUsers(struct soap *soap, struct _tds__CreateUsers *req, struct _tds__CreateUsersResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    struct users_entry *e;
    int rc = entries_of(soap, req->User, req->__sizeUser, &e);
    if (rc != SOAP_OK)
        return rc;
    size_t n = (size_t)req->__sizeUser, bad = 0;
    if (r->first_admin_setup) {
        /* No Administrator yet: the one change accepted from the network is
         * creating exactly one Administrator. */
        if (n != 1 || e[0].level != USER_LEVEL_ADMINISTRATOR) {
            wipe_passwords(e, n);
            return onvif_sender_fault(soap, "ter:NotAuthorized", NULL,
                                      "The device has no Administrator: create exactly one Administrator first");
        }
        rc = users_create_first_admin(r->dev->users, &e[0]);
        if (rc == USERS_E_HAS_ADMIN) {
            wipe_passwords(e, n);
            return onvif_sender_fault(soap, "ter:NotAuthorized", NULL, "Sender not Authorized");
        }
    } else {
        rc = users_create(r->dev->users, e, n, &bad);
    }
    int fault = rc != USERS_OK ? entry_fault(soap, r->dev->users, rc, e, n, bad) : SOAP_OK;
    wipe_passwords(e, n);
    if (rc != USERS_OK)
        return fault;
    for (size_t i = 0; i < n; i++)
        log_notice("auth", "%s: user '%s' (%s) created%s", r->peer, e[i].name, users_level_name(e[i].level),
                   r->first_admin_setup ? " as the first Administrator, over the network" : "");
    return SOAP_OK;
}

int __tds__DeleteUsers(struct soap *soap, struct _tds__DeleteUsers *req, struct _tds__DeleteUsersResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    if (req->__sizeUsername <= 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:UsernameMissing", "No user given");
    for (int i = 0; i < req->__sizeUsername; i++)
        if (!req->Username[i])
            return users_fault(soap, USERS_E_NO_SUCH_USER, "");
    size_t bad = 0;
    int rc = users_delete(r->dev->users, (const char *const *)req->Username, (size_t)req->__sizeUsername, &bad);
    if (rc != USERS_OK)
        return users_fault(soap, rc, bad < (size_t)req->__sizeUsername ? req->Username[bad] : NULL);
    for (int i = 0; i < req->__sizeUsername; i++)
        log_notice("auth", "%s: user '%s' deleted by '%s'", r->peer, req->Username[i], r->principal.user);
    return SOAP_OK;
}

int __tds__SetUser(struct soap *soap, struct _tds__SetUser *req, struct _tds__SetUserResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    struct users_entry *e;
    int rc = entries_of(soap, req->User, req->__sizeUser, &e);
    if (rc != SOAP_OK)
        return rc;
    /* Core: an omitted password asks to clear it, which this device refuses. */
    for (int i = 0; i < req->__sizeUser; i++)
        if (!e[i].password) {
            wipe_passwords(e, (size_t)req->__sizeUser);
            return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:PasswordTooWeak",
                                      "An empty password is not accepted");
        }
    size_t bad = 0;
    rc = users_set(r->dev->users, e, (size_t)req->__sizeUser, &bad);
    int fault = rc != USERS_OK ? entry_fault(soap, r->dev->users, rc, e, (size_t)req->__sizeUser, bad) : SOAP_OK;
    wipe_passwords(e, (size_t)req->__sizeUser);
    if (rc != USERS_OK)
        return fault;
    for (int i = 0; i < req->__sizeUser; i++)
        log_notice("auth", "%s: user '%s' changed by '%s'", r->peer, e[i].name, r->principal.user);
    return SOAP_OK;
}

/* ---- password policy -------------------------------------------------------- */

int __tds__GetPasswordComplexityOptions(struct soap *soap, struct _tds__GetPasswordComplexityOptions *req,
                                        struct _tds__GetPasswordComplexityOptionsResponse *resp)
{
    (void)req;
    resp->MinLenRange = range_of(soap, USERS_PASSWORD_MIN_FLOOR, USERS_PASSWORD_MAX);
    resp->UppercaseRange = range_of(soap, 0, USERS_PASSWORD_MAX / 2);
    resp->NumberRange = range_of(soap, 0, USERS_PASSWORD_MAX);
    resp->SpecialCharsRange = range_of(soap, 0, USERS_PASSWORD_MAX);
    resp->BlockUsernameOccurrenceSupported = onvif_bool(soap, 1);
    resp->PolicyConfigurationLockSupported = onvif_bool(soap, 1);
    return SOAP_OK;
}

int __tds__GetPasswordComplexityConfiguration(struct soap *soap, struct _tds__GetPasswordComplexityConfiguration *req,
                                              struct _tds__GetPasswordComplexityConfigurationResponse *resp)
{
    (void)req;
    struct users_complexity c;
    int rc = users_get_complexity(onvif_request_of(soap)->dev->users, &c);
    if (rc != USERS_OK)
        return users_fault(soap, rc, NULL);
    resp->MinLen = onvif_int(soap, c.min_len);
    resp->Uppercase = onvif_int(soap, c.uppercase);
    resp->Number = onvif_int(soap, c.number);
    resp->SpecialChars = onvif_int(soap, c.special_chars);
    resp->BlockUsernameOccurrence = onvif_bool(soap, c.block_username_occurrence);
    resp->PolicyConfigurationLocked = onvif_bool(soap, c.policy_configuration_locked);
    return SOAP_OK;
}

int __tds__SetPasswordComplexityConfiguration(struct soap *soap, struct _tds__SetPasswordComplexityConfiguration *req,
                                              struct _tds__SetPasswordComplexityConfigurationResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    struct users_complexity c;
    int rc = users_get_complexity(r->dev->users, &c);
    if (rc != USERS_OK)
        return users_fault(soap, rc, NULL);
    /* Omitted rules keep their value. */
    if (req->MinLen)
        c.min_len = *req->MinLen;
    if (req->Uppercase)
        c.uppercase = *req->Uppercase;
    if (req->Number)
        c.number = *req->Number;
    if (req->SpecialChars)
        c.special_chars = *req->SpecialChars;
    if (req->BlockUsernameOccurrence)
        c.block_username_occurrence = *req->BlockUsernameOccurrence == xsd__boolean__true_;
    if (req->PolicyConfigurationLocked)
        c.policy_configuration_locked = *req->PolicyConfigurationLocked == xsd__boolean__true_;
    rc = users_set_complexity(r->dev->users, &c);
    if (rc != USERS_OK)
        return users_fault(soap, rc, NULL);
    log_notice("auth", "%s: password complexity policy changed by '%s'", r->peer, r->principal.user);
    return SOAP_OK;
}

int __tds__GetPasswordHistoryConfiguration(struct soap *soap, struct _tds__GetPasswordHistoryConfiguration *req,
                                           struct _tds__GetPasswordHistoryConfigurationResponse *resp)
{
    (void)req;
    struct users_history h;
    int rc = users_get_history(onvif_request_of(soap)->dev->users, &h);
    if (rc != USERS_OK)
        return users_fault(soap, rc, NULL);
    resp->Enabled = h.enabled ? xsd__boolean__true_ : xsd__boolean__false_;
    resp->Length = h.length;
    return SOAP_OK;
}

int __tds__SetPasswordHistoryConfiguration(struct soap *soap, struct _tds__SetPasswordHistoryConfiguration *req,
                                           struct _tds__SetPasswordHistoryConfigurationResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    struct users_history h = { .enabled = req->Enabled == xsd__boolean__true_, .length = req->Length };
    int rc = users_set_history(r->dev->users, &h);
    if (rc != USERS_OK)
        return users_fault(soap, rc, NULL);
    log_notice("auth", "%s: password history policy changed by '%s'", r->peer, r->principal.user);
    return SOAP_OK;
}

/* ---- failed-login monitoring ---------------------------------------------------- */

int __tds__GetAuthFailureWarningOptions(struct soap *soap, struct _tds__GetAuthFailureWarningOptions *req,
                                        struct _tds__GetAuthFailureWarningOptionsResponse *resp)
{
    (void)req;
    resp->MonitorPeriodRange = range_of(soap, AUTHN_MONITOR_PERIOD_MIN, AUTHN_MONITOR_PERIOD_MAX);
    resp->AuthFailureRange = range_of(soap, AUTHN_MAX_FAILURES_MIN, AUTHN_MAX_FAILURES_MAX);
    return SOAP_OK;
}

int __tds__GetAuthFailureWarningConfiguration(struct soap *soap, struct _tds__GetAuthFailureWarningConfiguration *req,
                                              struct _tds__GetAuthFailureWarningConfigurationResponse *resp)
{
    (void)req;
    struct authn_failure_policy p;
    authn_get_failure_policy(onvif_request_of(soap)->dev->authn, &p);
    resp->Enabled = p.enabled ? xsd__boolean__true_ : xsd__boolean__false_;
    resp->MonitorPeriod = p.monitor_period_s;
    resp->MaxAuthFailures = p.max_failures;
    return SOAP_OK;
}

int __tds__SetAuthFailureWarningConfiguration(struct soap *soap, struct _tds__SetAuthFailureWarningConfiguration *req,
                                              struct _tds__SetAuthFailureWarningConfigurationResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    struct authn_failure_policy p = {
        .enabled = req->Enabled == xsd__boolean__true_,
        .monitor_period_s = req->MonitorPeriod,
        .max_failures = req->MaxAuthFailures,
    };
    if (!authn_failure_policy_valid(&p))
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "MonitorPeriod or MaxAuthFailures out of range");
    /* Persist first: a change that cannot be saved is not applied. */
    pthread_mutex_lock(&authn_settings_lock);
    struct authn_stored stored = { .failure = p, .digest_algorithms = authn_get_digest_algorithms(r->dev->authn) };
    int saved = authn_store_save(r->dev->cfg->state_dir, &stored) == 0;
    if (saved)
        authn_set_failure_policy(r->dev->authn, &p); /* range checked above */
    pthread_mutex_unlock(&authn_settings_lock);
    if (!saved)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "Could not save the configuration");
    log_notice("auth", "%s: authentication failure monitoring changed by '%s'", r->peer, r->principal.user);
    return SOAP_OK;
}

/* ---- Digest algorithms ----------------------------------------------------------- */

/* "MD5 SHA-256" (tt:StringList; commas tolerated) to AUTHN_ALG_* bits;
 * 0 for an empty list or an unknown name. */
static unsigned algorithms_of(const char *list)
{
    unsigned algs = 0;
    char token[32];
    const char *p = list ? list : "";
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        size_t n = strcspn(p, " ,\t\n");
        if (n == 0)
            break;
        if (n >= sizeof token)
            return 0;
        memcpy(token, p, n);
        token[n] = '\0';
        if (!strcasecmp(token, "MD5"))
            algs |= AUTHN_ALG_MD5;
        else if (!strcasecmp(token, "SHA-256"))
            algs |= AUTHN_ALG_SHA256;
        else
            return 0;
        p += n;
    }
    return algs;
}

int __tds__SetHashingAlgorithm(struct soap *soap, struct _tds__SetHashingAlgorithm *req,
                               struct _tds__SetHashingAlgorithmResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    unsigned algs = algorithms_of(req->Algorithm);
    if (!algs)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL,
                                  "Supported hashing algorithms are MD5 and SHA-256");
    pthread_mutex_lock(&authn_settings_lock);
    struct authn_stored stored = { .digest_algorithms = algs };
    authn_get_failure_policy(r->dev->authn, &stored.failure);
    int saved = authn_store_save(r->dev->cfg->state_dir, &stored) == 0;
    if (saved)
        authn_set_digest_algorithms(r->dev->authn, algs);
    pthread_mutex_unlock(&authn_settings_lock);
    if (!saved)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "Could not save the configuration");
    log_notice("auth", "%s: Digest algorithms set to '%s' by '%s'", r->peer, req->Algorithm, r->principal.user);
    return SOAP_OK;
}

/* ---- IP address filter ------------------------------------------------------------ */

static int ipfilter_fault(struct soap *soap, int err, const struct ipfilter_rules *rules, size_t bad)
{
    const int v6 = rules && bad >= rules->n_v4;
    switch (err) {
    case IPFILTER_E_INVALID_V4:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidIPv4Address", "Invalid IPv4 address or prefix length");
    case IPFILTER_E_INVALID_V6:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidIPv6Address", "Invalid IPv6 address or prefix length");
    case IPFILTER_E_TOO_MANY:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:IPFilterListIsFull", "The IP address filter list is full");
    case IPFILTER_E_NO_ENTRY:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", v6 ? "ter:NoIPv6Address" : "ter:NoIPv4Address",
                                  "The address is not in the filter");
    case IPFILTER_E_LOCKOUT:
        return onvif_sender_fault(soap, "ter:OperationProhibited", NULL,
                                  "Refused: the new filter would lock out the client making the change");
    }
    return onvif_receiver_fault(soap, "ter:Action", NULL, ipfilter_strerror(err));
}

/* Converts a tt:IPAddressFilter; answers the fault when a list is too long. */
static int rules_of(struct soap *soap, const struct tt__IPAddressFilter *in, struct ipfilter_rules *out)
{
    memset(out, 0, sizeof *out);
    if (!in)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "No IPAddressFilter given");
    if (in->__sizeIPv4Address > IPFILTER_MAX_PER_FAMILY || in->__sizeIPv6Address > IPFILTER_MAX_PER_FAMILY)
        return ipfilter_fault(soap, IPFILTER_E_TOO_MANY, NULL, 0);
    out->type = in->Type == tt__IPAddressFilterType__Allow ? IPFILTER_ALLOW : IPFILTER_DENY;
    for (int i = 0; i < in->__sizeIPv4Address; i++) {
        const char *a = in->IPv4Address[i].Address ? in->IPv4Address[i].Address : "";
        if (strlen(a) >= sizeof out->v4[0].address)
            return ipfilter_fault(soap, IPFILTER_E_INVALID_V4, NULL, 0);
        snprintf(out->v4[i].address, sizeof out->v4[i].address, "%s", a);
        out->v4[i].prefix_len = in->IPv4Address[i].PrefixLength;
    }
    for (int i = 0; i < in->__sizeIPv6Address; i++) {
        const char *a = in->IPv6Address[i].Address ? in->IPv6Address[i].Address : "";
        if (strlen(a) >= sizeof out->v6[0].address)
            return ipfilter_fault(soap, IPFILTER_E_INVALID_V6, NULL, 0);
        snprintf(out->v6[i].address, sizeof out->v6[i].address, "%s", a);
        out->v6[i].prefix_len = in->IPv6Address[i].PrefixLength;
    }
    out->n_v4 = (size_t)in->__sizeIPv4Address;
    out->n_v6 = (size_t)in->__sizeIPv6Address;
    return SOAP_OK;
}

int __tds__GetIPAddressFilter(struct soap *soap, struct _tds__GetIPAddressFilter *req,
                              struct _tds__GetIPAddressFilterResponse *resp)
{
    (void)req;
    struct ipfilter_rules *rules = onvif_zalloc(soap, sizeof *rules);
    if (!rules)
        return SOAP_EOM;
    int rc = ipfilter_get(onvif_request_of(soap)->dev->ipfilter, rules);
    if (rc != IPFILTER_OK)
        return ipfilter_fault(soap, rc, NULL, 0);
    struct tt__IPAddressFilter *f = onvif_zalloc(soap, sizeof *f);
    if (!f)
        return SOAP_EOM;
    f->Type = rules->type == IPFILTER_ALLOW ? tt__IPAddressFilterType__Allow : tt__IPAddressFilterType__Deny;
    f->IPv4Address = onvif_zalloc(soap, sizeof *f->IPv4Address * (rules->n_v4 + 1));
    f->IPv6Address = onvif_zalloc(soap, sizeof *f->IPv6Address * (rules->n_v6 + 1));
    if (!f->IPv4Address || !f->IPv6Address)
        return SOAP_EOM;
    for (size_t i = 0; i < rules->n_v4; i++) {
        f->IPv4Address[i].Address = soap_strdup(soap, rules->v4[i].address);
        f->IPv4Address[i].PrefixLength = rules->v4[i].prefix_len;
    }
    for (size_t i = 0; i < rules->n_v6; i++) {
        f->IPv6Address[i].Address = soap_strdup(soap, rules->v6[i].address);
        f->IPv6Address[i].PrefixLength = rules->v6[i].prefix_len;
    }
    f->__sizeIPv4Address = (int)rules->n_v4;
    f->__sizeIPv6Address = (int)rules->n_v6;
    resp->IPAddressFilter = f;
    return SOAP_OK;
}

enum filter_change { FILTER_SET, FILTER_ADD, FILTER_REMOVE };

static int change_filter(struct soap *soap, const struct tt__IPAddressFilter *in, enum filter_change how)
{
    struct onvif_request *r = onvif_request_of(soap);
    struct ipfilter_rules *rules = onvif_zalloc(soap, sizeof *rules);
    if (!rules)
        return SOAP_EOM;
    int rc = rules_of(soap, in, rules);
    if (rc != SOAP_OK)
        return rc;
    const struct sockaddr *requester = (const struct sockaddr *)&r->peer_addr;
    size_t bad = 0;
    switch (how) {
    case FILTER_SET: rc = ipfilter_set(r->dev->ipfilter, rules, requester, &bad); break;
    case FILTER_ADD: rc = ipfilter_add(r->dev->ipfilter, rules, requester, &bad); break;
    case FILTER_REMOVE: rc = ipfilter_remove(r->dev->ipfilter, rules, requester, &bad); break;
    }
    if (rc != IPFILTER_OK) {
        if (rc == IPFILTER_E_LOCKOUT)
            log_warning("auth", "%s: IP address filter change refused: it would lock out this client", r->peer);
        return ipfilter_fault(soap, rc, rules, bad);
    }
    log_notice("auth", "%s: IP address filter changed by '%s'", r->peer, r->principal.user);
    return SOAP_OK;
}

int __tds__SetIPAddressFilter(struct soap *soap, struct _tds__SetIPAddressFilter *req,
                              struct _tds__SetIPAddressFilterResponse *resp)
{
    (void)resp;
    return change_filter(soap, req->IPAddressFilter, FILTER_SET);
}

int __tds__AddIPAddressFilter(struct soap *soap, struct _tds__AddIPAddressFilter *req,
                              struct _tds__AddIPAddressFilterResponse *resp)
{
    (void)resp;
    return change_filter(soap, req->IPAddressFilter, FILTER_ADD);
}

int __tds__RemoveIPAddressFilter(struct soap *soap, struct _tds__RemoveIPAddressFilter *req,
                                 struct _tds__RemoveIPAddressFilterResponse *resp)
{
    (void)resp;
    return change_filter(soap, req->IPAddressFilter, FILTER_REMOVE);
}
