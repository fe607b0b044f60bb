/* Security Configuration Service (tas), TLS server part: server certificate
 * assignment, TLS versions, client authentication, and the certification
 * path validation policies it uses. Thin handlers over tlspolicy and
 * keystore; every change is tentative until confirmed (tlspolicy.h). */
#include "opennvt/keystore.h"
#include "opennvt/log.h"
#include "opennvt/onvif.h"
#include "opennvt/tlspolicy.h"
#include "soap_values.h"
#include "soapH.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static struct tlspolicy *tp_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->tlspolicy;
}

static struct keystore *ks_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->keystore;
}

static enum xsd__boolean xbool(int v)
{
    return v ? xsd__boolean__true_ : xsd__boolean__false_;
}

/* not_found / not_assigned: the subcode naming the argument at fault. */
int onvif_tlspolicy_fault(struct soap *soap, int err, const char *not_found, const char *not_assigned)
{
    const char *reason = tlspolicy_strerror(err);
    switch (err) {
    case TLSPOLICY_E_PATH_NOT_FOUND:
    case TLSPOLICY_E_POLICY_NOT_FOUND:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", not_found, reason);
    case TLSPOLICY_E_NOT_ASSIGNED: return onvif_sender_fault(soap, "ter:InvalidArgVal", not_assigned, reason);
    case TLSPOLICY_E_NO_PRIVATE_KEY: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NoPrivateKey", reason);
    case TLSPOLICY_E_IN_USE: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ReferenceExists", reason);
    case TLSPOLICY_E_VERSION: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:TLSVersion", reason);
    case TLSPOLICY_E_EMPTY: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:EmptyList", reason);
    case TLSPOLICY_E_PORT:
    case TLSPOLICY_E_NO_PROTOCOL:
    case TLSPOLICY_E_INVALID: return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, reason);
    case TLSPOLICY_E_PORT_CONFLICT:
    case TLSPOLICY_E_PORT_RESERVED:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:PortAlreadyInUse", reason);
    case TLSPOLICY_E_NO_CLIENT_POLICY:
    case TLSPOLICY_E_NO_SERVER_CERT:
        return onvif_receiver_fault(soap, "ter:ActionNotSupported", "ter:EnablingClientAuthenticationFailed", reason);
    }
    return onvif_receiver_fault(soap, "ter:Action", NULL, reason);
}

static int full_fault(struct soap *soap, int err, const char *full_subcode)
{
    if (err == TLSPOLICY_E_FULL || err == TLSPOLICY_E_KEY_TYPE)
        return onvif_receiver_fault(soap, "ter:Action", full_subcode, tlspolicy_strerror(err));
    return -1;
}

/* Logs who changed what, and that it waits for confirmation. */
static void log_change(struct soap *soap, const char *what)
{
    const struct onvif_request *r = onvif_request_of(soap);
    int64_t left = 0;
    if (tlspolicy_pending(tp_of(soap), NULL, &left))
        log_notice("security", "%s: %s by '%s'; rolled back in %lld s unless confirmed over the new settings", r->peer,
                   what, r->principal.user, (long long)(left / 1000));
    else
        log_notice("security", "%s: %s by '%s'", r->peer, what, r->principal.user);
}

static char **id_list(struct soap *soap, char (*ids)[KEYSTORE_ID_MAX], size_t n)
{
    char **out = n ? onvif_zalloc(soap, n * sizeof *out) : NULL;
    for (size_t i = 0; out && i < n; i++)
        out[i] = soap_strdup(soap, ids[i]);
    return out;
}

/* ---- server certificates --------------------------------------------------- */

int __tas__AddServerCertificateAssignment(struct soap *soap, struct _tas__AddServerCertificateAssignment *req,
                                          struct _tas__AddServerCertificateAssignmentResponse *resp)
{
    (void)resp;
    if (!req->CertificationPathID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificationPathID", "No certification path given");
    int rc = tlspolicy_add_server_path(tp_of(soap), req->CertificationPathID);
    if (rc != TLSPOLICY_OK) {
        int f = full_fault(soap, rc, "ter:MaximumNumberOfTLSCertificationPathsReached");
        return f >= 0 ? f : onvif_tlspolicy_fault(soap, rc, "ter:CertificationPathID", "ter:CertificationPathID");
    }
    char what[96];
    snprintf(what, sizeof what, "server certification path %s assigned", req->CertificationPathID);
    log_change(soap, what);
    return SOAP_OK;
}

int __tas__RemoveServerCertificateAssignment(struct soap *soap, struct _tas__RemoveServerCertificateAssignment *req,
                                             struct _tas__RemoveServerCertificateAssignmentResponse *resp)
{
    (void)resp;
    if (!req->CertificationPathID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:OldCertificationPathID", "No certification path given");
    int rc = tlspolicy_remove_server_path(tp_of(soap), req->CertificationPathID);
    if (rc != TLSPOLICY_OK)
        return onvif_tlspolicy_fault(soap, rc, "ter:OldCertificationPathID", "ter:OldCertificationPathID");
    char what[96];
    snprintf(what, sizeof what, "server certification path %s unassigned", req->CertificationPathID);
    log_change(soap, what);
    return SOAP_OK;
}

int __tas__ReplaceServerCertificateAssignment(struct soap *soap, struct _tas__ReplaceServerCertificateAssignment *req,
                                              struct _tas__ReplaceServerCertificateAssignmentResponse *resp)
{
    (void)resp;
    if (!req->OldCertificationPathID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:OldCertificationPathID", "No certification path given");
    if (!req->NewCertificationPathID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NewCertificationPathID", "No certification path given");
    int rc = tlspolicy_replace_server_path(tp_of(soap), req->OldCertificationPathID, req->NewCertificationPathID);
    if (rc != TLSPOLICY_OK) {
        int f = full_fault(soap, rc, "ter:MaximumNumberOfTLSCertificationPathsReached");
        return f >= 0 ? f : onvif_tlspolicy_fault(soap, rc, "ter:NewCertificationPathID", "ter:OldCertificationPathID");
    }
    char what[128];
    snprintf(what, sizeof what, "server certification path %s replaced by %s", req->OldCertificationPathID,
             req->NewCertificationPathID);
    log_change(soap, what);
    return SOAP_OK;
}

int __tas__GetAssignedServerCertificates(struct soap *soap, struct _tas__GetAssignedServerCertificates *req,
                                         struct _tas__GetAssignedServerCertificatesResponse *resp)
{
    (void)req;
    struct tlspolicy_state st;
    tlspolicy_get(tp_of(soap), &st);
    resp->CertificationPathID = id_list(soap, st.server_paths, st.n_server_paths);
    resp->__sizeCertificationPathID = resp->CertificationPathID ? (int)st.n_server_paths : 0;
    return SOAP_OK;
}

/* ---- TLS versions ------------------------------------------------------------ */

int __tas__SetEnabledTLSVersions(struct soap *soap, struct _tas__SetEnabledTLSVersions *req,
                                 struct _tas__SetEnabledTLSVersionsResponse *resp)
{
    (void)resp;
    unsigned versions = 0;
    int rc = tlspolicy_parse_versions(req->Versions ? req->Versions : "", &versions);
    if (rc == TLSPOLICY_OK)
        rc = tlspolicy_set_tls_versions(tp_of(soap), versions);
    if (rc != TLSPOLICY_OK)
        return onvif_tlspolicy_fault(soap, rc, NULL, NULL);
    char what[64], list[16];
    tlspolicy_format_versions(versions, list, sizeof list);
    snprintf(what, sizeof what, "TLS versions set to %s", list);
    log_change(soap, what);
    return SOAP_OK;
}

int __tas__GetEnabledTLSVersions(struct soap *soap, struct _tas__GetEnabledTLSVersions *req,
                                 struct _tas__GetEnabledTLSVersionsResponse *resp)
{
    (void)req;
    struct tlspolicy_state st;
    tlspolicy_get(tp_of(soap), &st);
    char list[16];
    tlspolicy_format_versions(st.tls_versions, list, sizeof list);
    resp->Versions = soap_strdup(soap, list);
    return SOAP_OK;
}

/* ---- client authentication ------------------------------------------------------ */

int onvif_set_client_auth(struct soap *soap, int required)
{
    int rc = tlspolicy_set_client_auth(tp_of(soap), required);
    if (rc != TLSPOLICY_OK)
        return onvif_tlspolicy_fault(soap, rc, NULL, NULL);
    log_change(soap, required ? "TLS client authentication required" : "TLS client authentication no longer required");
    return SOAP_OK;
}

int __tas__SetClientAuthenticationRequired(struct soap *soap, struct _tas__SetClientAuthenticationRequired *req,
                                           struct _tas__SetClientAuthenticationRequiredResponse *resp)
{
    (void)resp;
    return onvif_set_client_auth(soap, req->clientAuthenticationRequired == xsd__boolean__true_);
}

int __tas__GetClientAuthenticationRequired(struct soap *soap, struct _tas__GetClientAuthenticationRequired *req,
                                           struct _tas__GetClientAuthenticationRequiredResponse *resp)
{
    (void)req;
    struct tlspolicy_state st;
    tlspolicy_get(tp_of(soap), &st);
    resp->clientAuthenticationRequired = xbool(st.client_auth_required);
    return SOAP_OK;
}

int __tas__SetCnMapsToUser(struct soap *soap, struct _tas__SetCnMapsToUser *req, struct _tas__SetCnMapsToUserResponse *resp)
{
    (void)resp;
    int on = req->cnMapsToUser == xsd__boolean__true_;
    int rc = tlspolicy_set_cn_maps_to_user(tp_of(soap), on);
    if (rc != TLSPOLICY_OK)
        return rc == TLSPOLICY_E_STORE || rc == TLSPOLICY_E_NOMEM
                   ? onvif_tlspolicy_fault(soap, rc, NULL, NULL)
                   : onvif_receiver_fault(soap, "ter:ActionNotSupported", "ter:CnMapsToUserFailed", tlspolicy_strerror(rc));
    log_change(soap, on ? "client certificate CN mapped to users" : "client certificate CN no longer mapped to users");
    return SOAP_OK;
}

int __tas__GetCnMapsToUser(struct soap *soap, struct _tas__GetCnMapsToUser *req, struct _tas__GetCnMapsToUserResponse *resp)
{
    (void)req;
    struct tlspolicy_state st;
    tlspolicy_get(tp_of(soap), &st);
    resp->cnMapsToUser = xbool(st.cn_maps_to_user);
    return SOAP_OK;
}

int __tas__AddCertPathValidationPolicyAssignment(struct soap *soap, struct _tas__AddCertPathValidationPolicyAssignment *req,
                                                 struct _tas__AddCertPathValidationPolicyAssignmentResponse *resp)
{
    (void)resp;
    const char *id = req->CertPathValidationPolicyID;
    if (!id)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertPathValidationPolicyID", "No policy given");
    int rc = tlspolicy_add_cpv_policy(tp_of(soap), id);
    if (rc != TLSPOLICY_OK) {
        int f = full_fault(soap, rc, "ter:MaximumNumberOfTLSCertPathValidationPoliciesReached");
        return f >= 0 ? f : onvif_tlspolicy_fault(soap, rc, "ter:CertPathValidationPolicyID", "ter:CertPathValidationPolicyID");
    }
    char what[96];
    snprintf(what, sizeof what, "validation policy %s assigned to the TLS server", id);
    log_change(soap, what);
    return SOAP_OK;
}

int __tas__RemoveCertPathValidationPolicyAssignment(struct soap *soap,
                                                    struct _tas__RemoveCertPathValidationPolicyAssignment *req,
                                                    struct _tas__RemoveCertPathValidationPolicyAssignmentResponse *resp)
{
    (void)resp;
    const char *id = req->CertPathValidationPolicyID;
    if (!id)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertPathValidationPolicyID", "No policy given");
    int rc = tlspolicy_remove_cpv_policy(tp_of(soap), id);
    if (rc != TLSPOLICY_OK)
        return onvif_tlspolicy_fault(soap, rc, "ter:CertPathValidationPolicyID", "ter:CertPathValidationPolicyID");
    char what[96];
    snprintf(what, sizeof what, "validation policy %s removed from the TLS server", id);
    log_change(soap, what);
    return SOAP_OK;
}

int __tas__ReplaceCertPathValidationPolicyAssignment(struct soap *soap,
                                                     struct _tas__ReplaceCertPathValidationPolicyAssignment *req,
                                                     struct _tas__ReplaceCertPathValidationPolicyAssignmentResponse *resp)
{
    (void)resp;
    if (!req->OldCertPathValidationPolicyID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:OldCertPathValidationPolicyID", "No policy given");
    if (!req->NewCertPathValidationPolicyID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NewCertPathValidationPolicyID", "No policy given");
    int rc = tlspolicy_replace_cpv_policy(tp_of(soap), req->OldCertPathValidationPolicyID, req->NewCertPathValidationPolicyID);
    if (rc != TLSPOLICY_OK)
        return onvif_tlspolicy_fault(soap, rc, "ter:NewCertPathValidationPolicyID", "ter:OldCertPathValidationPolicyID");
    char what[128];
    snprintf(what, sizeof what, "validation policy %s replaced by %s on the TLS server", req->OldCertPathValidationPolicyID,
             req->NewCertPathValidationPolicyID);
    log_change(soap, what);
    return SOAP_OK;
}

int __tas__GetAssignedCertPathValidationPolicies(struct soap *soap, struct _tas__GetAssignedCertPathValidationPolicies *req,
                                                 struct _tas__GetAssignedCertPathValidationPoliciesResponse *resp)
{
    (void)req;
    struct tlspolicy_state st;
    tlspolicy_get(tp_of(soap), &st);
    resp->CertPathValidationPolicyID = id_list(soap, st.cpv_policies, st.n_cpv_policies);
    resp->__sizeCertPathValidationPolicyID = resp->CertPathValidationPolicyID ? (int)st.n_cpv_policies : 0;
    return SOAP_OK;
}

/* ---- certification path validation policies (keystore) ------------------------- */

static int cpv_fault(struct soap *soap, int err)
{
    const char *reason = keystore_strerror(err);
    switch (err) {
    case KEYSTORE_E_NOT_FOUND: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificateID", reason);
    case KEYSTORE_E_NOT_CA: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificateID", reason);
    case KEYSTORE_E_PARAMS:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertPathValidationParameters", reason);
    case KEYSTORE_E_FULL:
        return onvif_receiver_fault(soap, "ter:Action", "ter:MaximumNumberOfCertPathValidationPoliciesReached", reason);
    case KEYSTORE_E_ALIAS:
    case KEYSTORE_E_INVALID: return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, reason);
    case KEYSTORE_E_REFERENCED: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ReferenceExists", reason);
    }
    return onvif_receiver_fault(soap, "ter:Action", NULL, reason);
}

static struct tas__CertPathValidationPolicy *policy_out(struct soap *soap, const struct keystore_cpv_policy *p,
                                                        struct tas__CertPathValidationPolicy *out)
{
    out->CertPathValidationPolicyID = soap_strdup(soap, p->id);
    out->Alias = p->alias[0] ? soap_strdup(soap, p->alias) : NULL;
    out->Parameters = onvif_zalloc(soap, sizeof *out->Parameters);
    if (out->Parameters) {
        out->Parameters->RequireTLSWWWClientAuthExtendedKeyUsage = onvif_zalloc(soap, sizeof(enum xsd__boolean));
        out->Parameters->UseDeltaCRLs = onvif_zalloc(soap, sizeof(enum xsd__boolean));
        if (out->Parameters->RequireTLSWWWClientAuthExtendedKeyUsage)
            *out->Parameters->RequireTLSWWWClientAuthExtendedKeyUsage = xbool(p->require_client_auth_eku);
        if (out->Parameters->UseDeltaCRLs)
            *out->Parameters->UseDeltaCRLs = xbool(p->use_delta_crls);
    }
    out->TrustAnchor = onvif_zalloc(soap, p->n_anchors * sizeof *out->TrustAnchor);
    for (size_t i = 0; out->TrustAnchor && i < p->n_anchors; i++)
        out->TrustAnchor[i].CertificateID = soap_strdup(soap, p->anchor_ids[i]);
    out->__sizeTrustAnchor = out->TrustAnchor ? (int)p->n_anchors : 0;
    return out;
}

int __tas__CreateCertPathValidationPolicy(struct soap *soap, struct _tas__CreateCertPathValidationPolicy *req,
                                          struct _tas__CreateCertPathValidationPolicyResponse *resp)
{
    struct keystore_cpv_policy p;
    memset(&p, 0, sizeof p);
    if (req->Alias && strlen(req->Alias) >= sizeof p.alias)
        return cpv_fault(soap, KEYSTORE_E_ALIAS);
    snprintf(p.alias, sizeof p.alias, "%s", req->Alias ? req->Alias : "");
    if (req->Parameters) {
        p.require_client_auth_eku = req->Parameters->RequireTLSWWWClientAuthExtendedKeyUsage &&
                                    *req->Parameters->RequireTLSWWWClientAuthExtendedKeyUsage == xsd__boolean__true_;
        p.use_delta_crls = req->Parameters->UseDeltaCRLs && *req->Parameters->UseDeltaCRLs == xsd__boolean__true_;
    }
    if (req->__sizeTrustAnchor < 1 || req->__sizeTrustAnchor > KEYSTORE_MAX_TRUST_ANCHORS)
        return cpv_fault(soap, KEYSTORE_E_PARAMS);
    for (int i = 0; i < req->__sizeTrustAnchor; i++) {
        const char *id = req->TrustAnchor[i].CertificateID;
        if (!id || strlen(id) >= KEYSTORE_ID_MAX)
            return cpv_fault(soap, KEYSTORE_E_NOT_FOUND);
        snprintf(p.anchor_ids[i], sizeof p.anchor_ids[i], "%s", id);
    }
    p.n_anchors = (size_t)req->__sizeTrustAnchor;
    char id[KEYSTORE_ID_MAX];
    int rc = keystore_create_cpv_policy(ks_of(soap), &p, id);
    if (rc != KEYSTORE_OK)
        return cpv_fault(soap, rc);
    log_notice("keystore", "%s: validation policy %s created by '%s'", onvif_request_of(soap)->peer, id,
               onvif_request_of(soap)->principal.user);
    resp->CertPathValidationPolicyID = soap_strdup(soap, id);
    return SOAP_OK;
}

int __tas__GetCertPathValidationPolicy(struct soap *soap, struct _tas__GetCertPathValidationPolicy *req,
                                       struct _tas__GetCertPathValidationPolicyResponse *resp)
{
    struct keystore_cpv_policy p;
    if (!req->CertPathValidationPolicyID ||
        keystore_cpv_policy_info(ks_of(soap), req->CertPathValidationPolicyID, &p) != KEYSTORE_OK)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertPathValidationPolicyID",
                                  "No validation policy with this ID");
    resp->CertPathValidationPolicy = onvif_zalloc(soap, sizeof *resp->CertPathValidationPolicy);
    if (!resp->CertPathValidationPolicy)
        return SOAP_EOM;
    policy_out(soap, &p, resp->CertPathValidationPolicy);
    return SOAP_OK;
}

int __tas__GetAllCertPathValidationPolicies(struct soap *soap, struct _tas__GetAllCertPathValidationPolicies *req,
                                            struct _tas__GetAllCertPathValidationPoliciesResponse *resp)
{
    (void)req;
    struct keystore_cpv_policy *list = NULL;
    size_t n = 0;
    int rc = keystore_list_cpv_policies(ks_of(soap), &list, &n);
    if (rc != KEYSTORE_OK)
        return cpv_fault(soap, rc);
    resp->CertPathValidationPolicy = n ? onvif_zalloc(soap, n * sizeof *resp->CertPathValidationPolicy) : NULL;
    for (size_t i = 0; resp->CertPathValidationPolicy && i < n; i++)
        policy_out(soap, &list[i], &resp->CertPathValidationPolicy[i]);
    resp->__sizeCertPathValidationPolicy = resp->CertPathValidationPolicy ? (int)n : 0;
    free(list);
    return SOAP_OK;
}

int __tas__DeleteCertPathValidationPolicy(struct soap *soap, struct _tas__DeleteCertPathValidationPolicy *req,
                                          struct _tas__DeleteCertPathValidationPolicyResponse *resp)
{
    (void)resp;
    if (!req->CertPathValidationPolicyID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertPathValidationPolicyID", "No policy given");
    int rc = keystore_delete_cpv_policy(ks_of(soap), req->CertPathValidationPolicyID);
    if (rc == KEYSTORE_E_NOT_FOUND)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertPathValidationPolicyID",
                                  "No validation policy with this ID");
    if (rc != KEYSTORE_OK)
        return cpv_fault(soap, rc);
    log_notice("keystore", "%s: validation policy %s deleted by '%s'", onvif_request_of(soap)->peer,
               req->CertPathValidationPolicyID, onvif_request_of(soap)->principal.user);
    return SOAP_OK;
}
