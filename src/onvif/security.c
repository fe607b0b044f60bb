/* Security Configuration Service (tas), keystore part: thin handlers over
 * keystore and x509util. Wire types in, domain calls, ONVIF faults out. */
#include "opennvt/keystore.h"
#include "opennvt/log.h"
#include "opennvt/onvif.h"
#include "opennvt/tlspolicy.h"
#include "opennvt/x509util.h"
#include "soap_values.h"
#include "soapH.h"

#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Security, CreateSelfSignedCertificate: without notValidAfter the
 * certificate has no well-defined expiration (RFC 5280 99991231235959Z). */
#define CERT_NO_EXPIRY ((time_t)253402300799)

/* The signature algorithms offered (capabilities) and accepted. */
static const char *const signature_oids[] = {
    "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13",
    "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4",
};




static struct keystore *ks_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->keystore;
}

static int keys_full(struct soap *soap);

/* What an error means for the object kind an operation is about. */
enum object_kind { OBJ_KEY, OBJ_CERT, OBJ_PATH, OBJ_PASSPHRASE, OBJ_CRL };

static int keystore_fault(struct soap *soap, int err, enum object_kind kind)
{
    static const char *const id_fault[] = { "ter:KeyID", "ter:CertificateID", "ter:CertificationPathID",
                                            "ter:PassphraseID", "ter:CRLID" };
    static const char *const full_fault[] = { "ter:MaximumNumberOfKeysReached", "ter:MaximumNumberOfCertificatesReached",
                                              "ter:MaximumNumberOfCertificationPathsReached",
                                              "ter:MaximumNumberOfPassphrasesReached", "ter:MaximumNumberOfCRLsReached" };
    static const char *const bad_fault[] = { "ter:BadPKCS8File", "ter:BadCertificate", "ter:BadPKCS12File",
                                             "ter:InvalidArgVal", "ter:BadCRL" };
    static const char *const delete_fault[] = { "ter:KeyDeletionFailed", "ter:CertificateDeletionFailed",
                                                "ter:CertificationPathDeletionFailed", "ter:PassphraseDeletionFailed",
                                                "ter:CRLDeletionFailed" };
    const char *reason = keystore_strerror(err);
    switch (err) {
    case KEYSTORE_E_NOT_FOUND: return onvif_sender_fault(soap, "ter:InvalidArgVal", id_fault[kind], reason);
    case KEYSTORE_E_REFERENCED: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ReferenceExists", reason);
    case KEYSTORE_E_FULL: return onvif_receiver_fault(soap, "ter:Action", full_fault[kind], reason);
    case KEYSTORE_E_ALIAS: return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, reason);
    case KEYSTORE_E_KEY_PARAMS:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:UnsupportedPublicKeyAlgorithm", reason);
    case KEYSTORE_E_KEY_STATUS: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidKeyStatus", reason);
    case KEYSTORE_E_NO_PRIVATE_KEY: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NoPrivateKey", reason);
    case KEYSTORE_E_NO_MATCHING_KEY: return onvif_receiver_fault(soap, "ter:Action", "ter:NoMatchingPrivateKey", reason);
    case KEYSTORE_E_BAD_INPUT: return onvif_sender_fault(soap, "ter:InvalidArgVal", bad_fault[kind], reason);
    case KEYSTORE_E_PASSPHRASE: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:DecryptionFailed", reason);
    case KEYSTORE_E_PATH_ORDER:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidCertificationPath", reason);
    case KEYSTORE_E_READ_ONLY: return onvif_receiver_fault(soap, "ter:Action", delete_fault[kind], reason);
    case KEYSTORE_E_INVALID:
    case KEYSTORE_E_KEY_EXISTS: return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, reason);
    case KEYSTORE_E_BUSY: return onvif_receiver_fault(soap, "ter:Action", NULL, reason);
    case KEYSTORE_E_KEY_MISMATCH:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:PublicPrivateKeyMismatch", reason);
    case KEYSTORE_E_DUPLICATE: return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:Duplicate", reason);
    }
    return onvif_receiver_fault(soap, "ter:Action", NULL, reason);
}

static int missing_argument(struct soap *soap, const char *what)
{
    return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, what);
}


/* ---- capabilities ----------------------------------------------------------- */

static struct tas__Capabilities *security_capabilities(struct soap *soap)
{
    struct tas__Capabilities *c = onvif_zalloc(soap, sizeof *c);
    struct tas__KeystoreCapabilities *k = onvif_zalloc(soap, sizeof *k);
    if (!c || !k)
        return NULL;
    c->KeystoreCapabilities = k;
    size_t n = sizeof signature_oids / sizeof signature_oids[0];
    k->SignatureAlgorithms = onvif_zalloc(soap, sizeof *k->SignatureAlgorithms * n);
    for (size_t i = 0; k->SignatureAlgorithms && i < n; i++)
        k->SignatureAlgorithms[i].algorithm = (char *)signature_oids[i];
    k->__sizeSignatureAlgorithms = k->SignatureAlgorithms ? (int)n : 0;
    char num[16];
#define COUNT(field, v) (snprintf(num, sizeof num, "%d", (v)), k->field = soap_strdup(soap, num))
    COUNT(MaximumNumberOfKeys, KEYSTORE_MAX_KEYS);
    COUNT(MaximumNumberOfCertificates, KEYSTORE_MAX_CERTS);
    COUNT(MaximumNumberOfCertificationPaths, KEYSTORE_MAX_PATHS);
    COUNT(MaximumNumberOfPassphrases, KEYSTORE_MAX_PASSPHRASES);
    COUNT(MaximumNumberOfCRLs, KEYSTORE_MAX_CRLS);
    COUNT(MaximumNumberOfCertificationPathValidationPolicies, KEYSTORE_MAX_CPV_POLICIES);
    k->EnforceTLSWebClientAuthExtKeyUsage = onvif_bool(soap, 1);
    k->RSAKeyPairGeneration = onvif_bool(soap, 1);
    k->ECCKeyPairGeneration = onvif_bool(soap, 1);
    k->KeyPairGeneration = "RSA ECC";
    k->RSAKeyLengths = "2048 3072 4096";
    k->EllipticCurves = "secp256r1 secp384r1";
    k->PKCS10ExternalCertificationWithRSA = onvif_bool(soap, 1);
    k->PKCS10 = onvif_bool(soap, 1);
    k->SelfSignedCertificateCreationWithRSA = onvif_bool(soap, 1);
    k->SelfSignedCertificateCreation = onvif_bool(soap, 1);
    k->X509Versions = "3";
    k->PKCS8RSAKeyPairUpload = onvif_bool(soap, 1);
    k->PKCS8 = onvif_bool(soap, 1);
    k->PKCS12CertificateWithRSAPrivateKeyUpload = onvif_bool(soap, 1);
    k->PKCS12 = onvif_bool(soap, 1);
    k->SetCertPath = onvif_bool(soap, 0);
    k->NoPrivateKeySharing = onvif_bool(soap, 0);
    struct tas__TLSServerCapabilities *t = onvif_zalloc(soap, sizeof *t);
    if (!t)
        return NULL;
    c->TLSServerCapabilities = t;
    t->TLSServerSupported = "1.2 1.3";
    t->EnabledVersionsSupported = onvif_bool(soap, 1);
    t->MaximumNumberOfTLSCertificationPaths = (snprintf(num, sizeof num, "%d", TLSPOLICY_MAX_SERVER_PATHS), soap_strdup(soap, num));
    t->TLSClientAuthSupported = onvif_bool(soap, 1);
    t->CnMapsToUserSupported = onvif_bool(soap, 1);
    t->MaximumNumberOfTLSCertificationPathValidationPolicies =
        (snprintf(num, sizeof num, "%d", TLSPOLICY_MAX_CPV_POLICIES), soap_strdup(soap, num));
#undef COUNT
    return c;
}

int __tas__GetServiceCapabilities(struct soap *soap, struct _tas__GetServiceCapabilities *req,
                                  struct _tas__GetServiceCapabilitiesResponse *resp)
{
    (void)req;
    resp->Capabilities = security_capabilities(soap);
    return resp->Capabilities ? SOAP_OK : SOAP_EOM;
}

static int write_capabilities(struct soap *tmp)
{
    struct tas__Capabilities *caps = security_capabilities(tmp);
    return caps ? soap_out_tas__Capabilities(tmp, "tas:Capabilities", -1, caps, NULL) : SOAP_EOM;
}

char *onvif_security_capabilities_xml(struct soap *soap)
{
    return onvif_capabilities_fragment(soap, write_capabilities);
}

/* ---- keys ---------------------------------------------------------------------- */

int __tas__CreateRSAKeyPair(struct soap *soap, struct _tas__CreateRSAKeyPair *req,
                            struct _tas__CreateRSAKeyPairResponse *resp)
{
    char *end = NULL;
    long bits = req->KeyLength ? strtol(req->KeyLength, &end, 10) : 0;
    if (!req->KeyLength || !end || *end || (bits != 2048 && bits != 3072 && bits != 4096))
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:KeyLength", "Supported RSA key lengths: 2048, 3072, 4096");
    char id[KEYSTORE_ID_MAX];
    int estimate = 0;
    int rc = keystore_create_rsa_key(ks_of(soap), (int)bits, req->Alias, id, &estimate);
    if (rc == KEYSTORE_E_KEY_PARAMS)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:KeyLength", keystore_strerror(rc));
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    log_notice("keystore", "%s: RSA-%ld key %s being generated for '%s'", onvif_request_of(soap)->peer, bits, id,
               onvif_request_of(soap)->principal.user);
    resp->KeyID = soap_strdup(soap, id);
    resp->EstimatedCreationTime = onvif_duration(soap, estimate);
    return SOAP_OK;
}

int __tas__CreateECCKeyPair(struct soap *soap, struct _tas__CreateECCKeyPair *req,
                            struct _tas__CreateECCKeyPairResponse *resp)
{
    if (!req->EllipticCurve)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:UnsupportedEllipticCurve", "No curve given");
    char id[KEYSTORE_ID_MAX];
    int estimate = 0;
    int rc = keystore_create_ec_key(ks_of(soap), req->EllipticCurve, req->Alias, id, &estimate);
    if (rc == KEYSTORE_E_KEY_PARAMS)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:UnsupportedEllipticCurve",
                                  "Supported curves: secp256r1, secp384r1");
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    log_notice("keystore", "%s: EC key %s (%s) being generated for '%s'", onvif_request_of(soap)->peer, id,
               req->EllipticCurve, onvif_request_of(soap)->principal.user);
    resp->KeyID = soap_strdup(soap, id);
    resp->EstimatedCreationTime = onvif_duration(soap, estimate);
    return SOAP_OK;
}

int __tas__UploadKeyPairInPKCS8(struct soap *soap, struct _tas__UploadKeyPairInPKCS8 *req,
                                struct _tas__UploadKeyPairInPKCS8Response *resp)
{
    if (!req->KeyPair.__ptr || req->KeyPair.__size <= 0)
        return missing_argument(soap, "No key pair given");
    char id[KEYSTORE_ID_MAX];
    int rc = keystore_upload_pkcs8(ks_of(soap), req->KeyPair.__ptr, (size_t)req->KeyPair.__size, req->Alias,
                                   req->EncryptionPassphraseID, req->EncryptionPassphrase, id);
    OPENSSL_cleanse(req->KeyPair.__ptr, (size_t)req->KeyPair.__size);
    if (req->EncryptionPassphrase)
        OPENSSL_cleanse(req->EncryptionPassphrase, strlen(req->EncryptionPassphrase));
    if (rc == KEYSTORE_E_NOT_FOUND)
        return keystore_fault(soap, rc, OBJ_PASSPHRASE);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    resp->KeyID = soap_strdup(soap, id);
    return SOAP_OK;
}

int __tas__UploadCertificateWithPrivateKeyInPKCS12(struct soap *soap,
                                                   struct _tas__UploadCertificateWithPrivateKeyInPKCS12 *req,
                                                   struct _tas__UploadCertificateWithPrivateKeyInPKCS12Response *resp)
{
    if (!req->CertWithPrivateKey.__ptr || req->CertWithPrivateKey.__size <= 0)
        return missing_argument(soap, "No PKCS#12 data given");
    /* One passphrase protects both integrity and encryption here. */
    const char *passphrase_id = req->EncryptionPassphraseID ? req->EncryptionPassphraseID : req->IntegrityPassphraseID;
    char path_id[KEYSTORE_ID_MAX], key_id[KEYSTORE_ID_MAX];
    int rc = keystore_upload_pkcs12(ks_of(soap), req->CertWithPrivateKey.__ptr, (size_t)req->CertWithPrivateKey.__size,
                                    req->CertificationPathAlias, req->KeyAlias, passphrase_id, req->Passphrase, 0,
                                    path_id, key_id);
    OPENSSL_cleanse(req->CertWithPrivateKey.__ptr, (size_t)req->CertWithPrivateKey.__size);
    if (req->Passphrase)
        OPENSSL_cleanse(req->Passphrase, strlen(req->Passphrase));
    if (rc == KEYSTORE_E_NOT_FOUND)
        return keystore_fault(soap, rc, OBJ_PASSPHRASE);
    if (rc == KEYSTORE_E_BAD_INPUT)
        return keystore_fault(soap, rc, OBJ_PATH); /* BadPKCS12File */
    if (rc == KEYSTORE_E_FULL)
        return keystore_fault(soap, rc, keys_full(soap) ? OBJ_KEY : OBJ_CERT);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    resp->CertificationPathID = soap_strdup(soap, path_id);
    resp->KeyID = soap_strdup(soap, key_id);
    return SOAP_OK;
}

int __tas__GetKeyStatus(struct soap *soap, struct _tas__GetKeyStatus *req, struct _tas__GetKeyStatusResponse *resp)
{
    struct keystore_key_info info;
    int rc = req->KeyID ? keystore_key_info(ks_of(soap), req->KeyID, &info) : KEYSTORE_E_NOT_FOUND;
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    resp->KeyStatus = (char *)keystore_key_status_name(info.status);
    return SOAP_OK;
}

int __tas__GetPrivateKeyStatus(struct soap *soap, struct _tas__GetPrivateKeyStatus *req,
                               struct _tas__GetPrivateKeyStatusResponse *resp)
{
    struct keystore_key_info info;
    int rc = req->KeyID ? keystore_key_info(ks_of(soap), req->KeyID, &info) : KEYSTORE_E_NOT_FOUND;
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    resp->hasPrivateKey = info.has_private_key ? xsd__boolean__true_ : xsd__boolean__false_;
    return SOAP_OK;
}

int __tas__GetAllKeys(struct soap *soap, struct _tas__GetAllKeys *req, struct _tas__GetAllKeysResponse *resp)
{
    (void)req;
    struct keystore_key_info *keys;
    size_t n;
    int rc = keystore_list_keys(ks_of(soap), &keys, &n);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    resp->KeyAttribute = onvif_zalloc(soap, sizeof *resp->KeyAttribute * n);
    for (size_t i = 0; resp->KeyAttribute && i < n; i++) {
        struct tas__KeyAttribute *a = &resp->KeyAttribute[i];
        a->KeyID = soap_strdup(soap, keys[i].id);
        a->Alias = keys[i].alias[0] ? soap_strdup(soap, keys[i].alias) : NULL;
        a->hasPrivateKey = onvif_bool(soap, keys[i].has_private_key);
        a->KeyStatus = (char *)keystore_key_status_name(keys[i].status);
        a->externallyGenerated = onvif_bool(soap, keys[i].externally_generated);
        a->securelyStored = onvif_bool(soap, 0);
    }
    resp->__sizeKeyAttribute = resp->KeyAttribute ? (int)n : 0;
    free(keys);
    return SOAP_OK;
}

int __tas__DeleteKey(struct soap *soap, struct _tas__DeleteKey *req, struct _tas__DeleteKeyResponse *resp)
{
    (void)resp;
    int rc = req->KeyID ? keystore_delete_key(ks_of(soap), req->KeyID) : KEYSTORE_E_NOT_FOUND;
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_KEY);
    log_notice("keystore", "%s: key %s deleted by '%s'", onvif_request_of(soap)->peer, req->KeyID,
               onvif_request_of(soap)->principal.user);
    return SOAP_OK;
}

/* ---- subjects, CSRs, self-signed certificates -------------------------------------- */

/* tas:DistinguishedName to subject attributes (wire order kept). */
static int rdns_of(const struct tas__DistinguishedName *dn, struct x509util_rdn *out, size_t max, size_t *n)
{
    *n = 0;
    if (!dn)
        return -1;
    struct {
        const char *type;
        int count;
        char **values;
    } fields[] = {
        { "C", dn->__sizeCountry, dn->Country },
        { "ST", dn->__sizeStateOrProvinceName, dn->StateOrProvinceName },
        { "L", dn->__sizeLocality, dn->Locality },
        { "O", dn->__sizeOrganization, dn->Organization },
        { "OU", dn->__sizeOrganizationalUnit, dn->OrganizationalUnit },
        { "CN", dn->__sizeCommonName, dn->CommonName },
        { "serialNumber", dn->__sizeSerialNumber, dn->SerialNumber },
        { "dnQualifier", dn->__sizeDistinguishedNameQualifier, dn->DistinguishedNameQualifier },
        { "title", dn->__sizeTitle, dn->Title },
        { "SN", dn->__sizeSurname, dn->Surname },
        { "GN", dn->__sizeGivenName, dn->GivenName },
        { "initials", dn->__sizeInitials, dn->Initials },
        { "pseudonym", dn->__sizePseudonym, dn->Pseudonym },
        { "generationQualifier", dn->__sizeGenerationQualifier, dn->GenerationQualifier },
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (int i = 0; i < fields[f].count; i++) {
            if (*n >= max || !fields[f].values[i])
                return -1;
            out[(*n)++] = (struct x509util_rdn){ fields[f].type, fields[f].values[i] };
        }
    for (int i = 0; i < dn->__sizeGenericAttribute; i++) {
        if (*n >= max || !dn->GenericAttribute[i].Type || !dn->GenericAttribute[i].Value)
            return -1;
        out[(*n)++] = (struct x509util_rdn){ dn->GenericAttribute[i].Type, dn->GenericAttribute[i].Value };
    }
    if (dn->__sizeMultiValuedRDN > 0)
        return -1; /* multi-valued RDNs are not supported */
    return *n > 0 ? 0 : -1;
}

static int subject_of(struct soap *soap, const struct tas__DistinguishedName *dn, X509_NAME **name)
{
    struct x509util_rdn rdns[X509UTIL_MAX_RDN];
    size_t n, bad = 0;
    if (rdns_of(dn, rdns, X509UTIL_MAX_RDN, &n) != 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidSubject",
                                  "Subject missing, empty, too long, or with multi-valued RDNs");
    int rc = x509util_make_name(rdns, n, name, &bad);
    if (rc != X509UTIL_OK) {
        char reason[160];
        snprintf(reason, sizeof reason, "Subject attribute %s is not acceptable (%s)", bad < n ? rdns[bad].type : "?",
                 x509util_strerror(rc));
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidSubject", reason);
    }
    return SOAP_OK;
}

/* The private key for signing, or the fault. */
static int signing_key(struct soap *soap, const char *key_id, EVP_PKEY **key)
{
    if (!key_id)
        return keystore_fault(soap, KEYSTORE_E_NOT_FOUND, OBJ_KEY);
    int rc = keystore_get_private_key(ks_of(soap), key_id, key);
    return rc == KEYSTORE_OK ? SOAP_OK : keystore_fault(soap, rc, OBJ_KEY);
}

static int digest_for(struct soap *soap, const struct tas__AlgorithmIdentifier *alg, EVP_PKEY *key, const EVP_MD **md)
{
    const char *oid = alg ? alg->algorithm : NULL;
    if (x509util_signature_digest(oid, key, md) == X509UTIL_OK)
        return SOAP_OK;
    int known = 0;
    for (size_t i = 0; oid && i < sizeof signature_oids / sizeof signature_oids[0]; i++)
        known |= !strcmp(oid, signature_oids[i]);
    if (!known)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:UnsupportedSignatureAlgorithm",
                                  "Supported: sha256/384/512WithRSAEncryption, ecdsa-with-SHA256/384/512");
    return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:KeySignatureAlgorithmMismatch",
                              "The signature algorithm does not fit this key");
}

/* X509v3Extension CSR attributes (e.g. subjectAltName 2.5.29.17) pass through. */
static int extensions_of(struct soap *soap, const struct tas__CSRAttribute *attrs, int n,
                         struct x509util_extension **out, size_t *count)
{
    *count = 0;
    *out = onvif_zalloc(soap, sizeof **out * (size_t)(n > 0 ? n : 1));
    if (!*out)
        return SOAP_EOM;
    for (int i = 0; i < n; i++) {
        if (attrs[i].__union_CSRAttribute != SOAP_UNION__tas__union_CSRAttribute_X509v3Extension)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidAttribute",
                                      "Only X509v3Extension CSR attributes are supported");
        const struct tas__X509v3Extension *e = attrs[i].union_CSRAttribute.X509v3Extension;
        if (!e || !e->extnOID || !e->extnValue.__ptr || e->extnValue.__size <= 0)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidAttribute", "Empty X509v3Extension");
        (*out)[(*count)++] = (struct x509util_extension){ e->extnOID, e->extnValue.__ptr, (size_t)e->extnValue.__size, 0 };
    }
    return SOAP_OK;
}

int __tas__CreatePKCS10CSR(struct soap *soap, struct _tas__CreatePKCS10CSR *req, struct _tas__CreatePKCS10CSRResponse *resp)
{
    X509_NAME *subject = NULL;
    EVP_PKEY *key = NULL;
    const EVP_MD *md = NULL;
    struct x509util_extension *ext;
    size_t n_ext;
    int rc = subject_of(soap, req->Subject, &subject);
    if (rc == SOAP_OK)
        rc = extensions_of(soap, req->CSRAttribute, req->__sizeCSRAttribute, &ext, &n_ext);
    if (rc == SOAP_OK)
        rc = signing_key(soap, req->KeyID, &key);
    if (rc == SOAP_OK)
        rc = digest_for(soap, req->SignatureAlgorithm, key, &md);
    if (rc == SOAP_OK) {
        unsigned char *der = NULL;
        size_t len = 0;
        int xr = x509util_make_csr(key, subject, NULL, 0, ext, n_ext, md, &der, &len);
        if (xr != X509UTIL_OK) {
            rc = onvif_sender_fault(soap, "ter:InvalidArgVal", xr == X509UTIL_E_SAN || xr == X509UTIL_E_MALFORMED
                                                                   ? "ter:InvalidAttribute" : NULL,
                                    x509util_strerror(xr));
        } else {
            resp->PKCS10CSR.__ptr = soap_malloc(soap, len);
            if (resp->PKCS10CSR.__ptr) {
                memcpy(resp->PKCS10CSR.__ptr, der, len);
                resp->PKCS10CSR.__size = (int)len;
            } else {
                rc = SOAP_EOM;
            }
        }
        OPENSSL_free(der);
    }
    X509_NAME_free(subject);
    EVP_PKEY_free(key);
    return rc;
}

int __tas__CreateSelfSignedCertificate(struct soap *soap, struct _tas__CreateSelfSignedCertificate *req,
                                       struct _tas__CreateSelfSignedCertificateResponse *resp)
{
    if (req->X509Version && strcmp(req->X509Version, "3") != 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:UnsupportedX509Version", "Only X.509 version 3");
    time_t now = time(NULL);
    time_t not_before = req->notValidBefore ? *req->notValidBefore : now;
    time_t not_after = req->notValidAfter ? *req->notValidAfter : CERT_NO_EXPIRY;
    if (not_after <= not_before)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidDateTime", "notValidAfter must follow notValidBefore");
    X509_NAME *subject = NULL;
    EVP_PKEY *key = NULL;
    const EVP_MD *md = NULL;
    X509 *cert = NULL;
    struct x509util_extension *ext = onvif_zalloc(soap, sizeof *ext * (size_t)(req->__sizeExtension > 0 ? req->__sizeExtension : 1));
    size_t n_ext = 0;
    if (!ext)
        return SOAP_EOM;
    for (int i = 0; i < req->__sizeExtension; i++) {
        const struct tas__X509v3Extension *e = &req->Extension[i];
        if (!e->extnOID || !e->extnValue.__ptr || e->extnValue.__size <= 0)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidAttribute", "Empty X509v3Extension");
        ext[n_ext++] = (struct x509util_extension){ e->extnOID, e->extnValue.__ptr, (size_t)e->extnValue.__size, 0 };
    }
    int rc = subject_of(soap, req->Subject, &subject);
    if (rc == SOAP_OK)
        rc = signing_key(soap, req->KeyID, &key);
    if (rc == SOAP_OK)
        rc = digest_for(soap, req->SignatureAlgorithm, key, &md);
    if (rc == SOAP_OK) {
        int xr = x509util_make_self_signed(key, subject, not_before, not_after, NULL, 0, ext, n_ext, 0, md, &cert);
        if (xr != X509UTIL_OK) {
            rc = onvif_sender_fault(soap, "ter:InvalidArgVal", xr == X509UTIL_E_VALIDITY ? "ter:InvalidDateTime" : NULL,
                                    x509util_strerror(xr));
        } else {
            char id[KEYSTORE_ID_MAX];
            int kr = keystore_add_cert(ks_of(soap), cert, req->KeyID, req->Alias, id);
            if (kr != KEYSTORE_OK)
                rc = keystore_fault(soap, kr, OBJ_CERT);
            else
                resp->CertificateID = soap_strdup(soap, id);
        }
    }
    X509_free(cert);
    X509_NAME_free(subject);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- certificates ------------------------------------------------------------------- */

/* Whether the key limit is what a failed upload ran into. */
static int keys_full(struct soap *soap)
{
    struct keystore_key_info *keys;
    size_t n, own = 0;
    if (keystore_list_keys(ks_of(soap), &keys, &n) != KEYSTORE_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        own += !keys[i].read_only;
    free(keys);
    return own >= KEYSTORE_MAX_KEYS;
}

/* Security: an upload outside its validity period is stored all the same
 * (the device clock may be wrong); the device log says so. */
static void note_validity(struct soap *soap, const char *cert_id)
{
    struct keystore_cert_info info;
    time_t now = time(NULL);
    if (keystore_cert_info(ks_of(soap), cert_id, &info) != KEYSTORE_OK)
        return;
    if (now > info.not_after)
        log_warning("keystore", "%s: certificate %s stored, but it expired already", onvif_request_of(soap)->peer,
                    cert_id);
    else if (now < info.not_before)
        log_warning("keystore", "%s: certificate %s stored, but it is not valid yet", onvif_request_of(soap)->peer,
                    cert_id);
}

int __tas__UploadCertificate(struct soap *soap, struct _tas__UploadCertificate *req,
                             struct _tas__UploadCertificateResponse *resp)
{
    if (!req->Certificate.__ptr || req->Certificate.__size <= 0)
        return missing_argument(soap, "No certificate given");
    char cert_id[KEYSTORE_ID_MAX], key_id[KEYSTORE_ID_MAX];
    /* Without PrivateKeyRequired, a certificate with no matching key pair
     * gets a public-key-only key, as Security specifies. */
    int private_key_required = req->PrivateKeyRequired && *req->PrivateKeyRequired == xsd__boolean__true_;
    int rc = keystore_upload_cert(ks_of(soap), req->Certificate.__ptr, (size_t)req->Certificate.__size, req->Alias,
                                  req->KeyAlias, private_key_required, cert_id, key_id);
    if (rc == KEYSTORE_E_FULL && keys_full(soap))
        return keystore_fault(soap, rc, OBJ_KEY); /* no room for the public key that would have to be created */
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_CERT);
    note_validity(soap, cert_id);
    resp->CertificateID = soap_strdup(soap, cert_id);
    resp->KeyID = soap_strdup(soap, key_id);
    return SOAP_OK;
}

static int fill_certificate(struct soap *soap, const char *id, struct tas__X509Certificate *out)
{
    struct keystore_cert_info info;
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = keystore_cert_info(ks_of(soap), id, &info);
    if (rc == KEYSTORE_OK)
        rc = keystore_cert_der(ks_of(soap), id, &der, &len);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_CERT);
    out->CertificateID = soap_strdup(soap, info.id);
    out->KeyID = soap_strdup(soap, info.key_id);
    out->Alias = info.alias[0] ? soap_strdup(soap, info.alias) : NULL;
    out->CertificateContent.__ptr = soap_malloc(soap, len);
    if (out->CertificateContent.__ptr) {
        memcpy(out->CertificateContent.__ptr, der, len);
        out->CertificateContent.__size = (int)len;
    }
    struct keystore_key_info key;
    if (keystore_key_info(ks_of(soap), info.key_id, &key) == KEYSTORE_OK)
        out->HasPrivateKey = onvif_bool(soap, key.has_private_key);
    free(der);
    return out->CertificateContent.__ptr ? SOAP_OK : SOAP_EOM;
}

int __tas__GetCertificate(struct soap *soap, struct _tas__GetCertificate *req, struct _tas__GetCertificateResponse *resp)
{
    if (!req->CertificateID)
        return keystore_fault(soap, KEYSTORE_E_NOT_FOUND, OBJ_CERT);
    resp->Certificate = onvif_zalloc(soap, sizeof *resp->Certificate);
    return resp->Certificate ? fill_certificate(soap, req->CertificateID, resp->Certificate) : SOAP_EOM;
}

int __tas__GetAllCertificates(struct soap *soap, struct _tas__GetAllCertificates *req,
                              struct _tas__GetAllCertificatesResponse *resp)
{
    (void)req;
    struct keystore_cert_info *certs;
    size_t n;
    int rc = keystore_list_certs(ks_of(soap), &certs, &n);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_CERT);
    resp->Certificate = onvif_zalloc(soap, sizeof *resp->Certificate * n);
    rc = resp->Certificate ? SOAP_OK : SOAP_EOM;
    for (size_t i = 0; rc == SOAP_OK && i < n; i++)
        rc = fill_certificate(soap, certs[i].id, &resp->Certificate[i]);
    resp->__sizeCertificate = rc == SOAP_OK ? (int)n : 0;
    free(certs);
    return rc;
}

int __tas__DeleteCertificate(struct soap *soap, struct _tas__DeleteCertificate *req,
                             struct _tas__DeleteCertificateResponse *resp)
{
    (void)resp;
    int rc = req->CertificateID ? keystore_delete_cert(ks_of(soap), req->CertificateID) : KEYSTORE_E_NOT_FOUND;
    return rc == KEYSTORE_OK ? SOAP_OK : keystore_fault(soap, rc, OBJ_CERT);
}

/* ---- certification paths --------------------------------------------------------------- */

int __tas__CreateCertificationPath(struct soap *soap, struct _tas__CreateCertificationPath *req,
                                   struct _tas__CreateCertificationPathResponse *resp)
{
    if (!req->CertificateIDs || req->CertificateIDs->__sizeCertificateID <= 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidCertificationPath", "No certificates given");
    if (req->CertificateIDs->__sizeCertificateID > KEYSTORE_MAX_PATH_LEN)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidCertificationPath", "Certification path too long");
    char id[KEYSTORE_ID_MAX];
    int rc = keystore_create_path(ks_of(soap), (const char *const *)req->CertificateIDs->CertificateID,
                                  (size_t)req->CertificateIDs->__sizeCertificateID, req->Alias, id);
    if (rc == KEYSTORE_E_NOT_FOUND)
        return keystore_fault(soap, rc, OBJ_CERT);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_PATH);
    resp->CertificationPathID = soap_strdup(soap, id);
    return SOAP_OK;
}

int __tas__GetCertificationPath(struct soap *soap, struct _tas__GetCertificationPath *req,
                                struct _tas__GetCertificationPathResponse *resp)
{
    struct keystore_path_info info;
    int rc = req->CertificationPathID ? keystore_path_info(ks_of(soap), req->CertificationPathID, &info)
                                      : KEYSTORE_E_NOT_FOUND;
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_PATH);
    struct tas__CertificationPath *p = onvif_zalloc(soap, sizeof *p);
    if (!p)
        return SOAP_EOM;
    p->CertificateID = onvif_zalloc(soap, sizeof *p->CertificateID * info.n_certs);
    for (size_t i = 0; p->CertificateID && i < info.n_certs; i++)
        p->CertificateID[i] = soap_strdup(soap, info.cert_ids[i]);
    p->__sizeCertificateID = p->CertificateID ? (int)info.n_certs : 0;
    p->Alias = info.alias[0] ? soap_strdup(soap, info.alias) : NULL;
    resp->CertificationPath = p;
    return SOAP_OK;
}

int __tas__GetAllCertificationPaths(struct soap *soap, struct _tas__GetAllCertificationPaths *req,
                                    struct _tas__GetAllCertificationPathsResponse *resp)
{
    (void)req;
    struct keystore_path_info *paths;
    size_t n;
    int rc = keystore_list_paths(ks_of(soap), &paths, &n);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_PATH);
    resp->CertificationPathID = onvif_zalloc(soap, sizeof *resp->CertificationPathID * n);
    for (size_t i = 0; resp->CertificationPathID && i < n; i++)
        resp->CertificationPathID[i] = soap_strdup(soap, paths[i].id);
    resp->__sizeCertificationPathID = resp->CertificationPathID ? (int)n : 0;
    free(paths);
    return SOAP_OK;
}

int __tas__DeleteCertificationPath(struct soap *soap, struct _tas__DeleteCertificationPath *req,
                                   struct _tas__DeleteCertificationPathResponse *resp)
{
    (void)resp;
    int rc = req->CertificationPathID ? keystore_delete_path(ks_of(soap), req->CertificationPathID) : KEYSTORE_E_NOT_FOUND;
    return rc == KEYSTORE_OK ? SOAP_OK : keystore_fault(soap, rc, OBJ_PATH);
}

/* ---- passphrases ------------------------------------------------------------------------ */

int __tas__UploadPassphrase(struct soap *soap, struct _tas__UploadPassphrase *req,
                            struct _tas__UploadPassphraseResponse *resp)
{
    if (!req->Passphrase)
        return missing_argument(soap, "No passphrase given");
    char id[KEYSTORE_ID_MAX];
    int rc = keystore_upload_passphrase(ks_of(soap), req->Passphrase, req->PassphraseAlias, id);
    OPENSSL_cleanse(req->Passphrase, strlen(req->Passphrase));
    if (rc == KEYSTORE_E_PASSPHRASE)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:BadPassphrase", "Passphrase too long");
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_PASSPHRASE);
    resp->PassphraseID = soap_strdup(soap, id);
    return SOAP_OK;
}

int __tas__GetAllPassphrases(struct soap *soap, struct _tas__GetAllPassphrases *req,
                             struct _tas__GetAllPassphrasesResponse *resp)
{
    (void)req;
    struct keystore_object_info *list;
    size_t n;
    int rc = keystore_list_passphrases(ks_of(soap), &list, &n);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_PASSPHRASE);
    resp->PassphraseAttribute = onvif_zalloc(soap, sizeof *resp->PassphraseAttribute * n);
    for (size_t i = 0; resp->PassphraseAttribute && i < n; i++) {
        resp->PassphraseAttribute[i].PassphraseID = soap_strdup(soap, list[i].id);
        resp->PassphraseAttribute[i].Alias = list[i].alias[0] ? soap_strdup(soap, list[i].alias) : NULL;
    }
    resp->__sizePassphraseAttribute = resp->PassphraseAttribute ? (int)n : 0;
    free(list);
    return SOAP_OK;
}

int __tas__DeletePassphrase(struct soap *soap, struct _tas__DeletePassphrase *req,
                            struct _tas__DeletePassphraseResponse *resp)
{
    (void)resp;
    int rc = req->PassphraseID ? keystore_delete_passphrase(ks_of(soap), req->PassphraseID) : KEYSTORE_E_NOT_FOUND;
    return rc == KEYSTORE_OK ? SOAP_OK : keystore_fault(soap, rc, OBJ_PASSPHRASE);
}

/* ---- CRLs --------------------------------------------------------------------------------- */

int __tas__UploadCRL(struct soap *soap, struct _tas__UploadCRL *req, struct _tas__UploadCRLResponse *resp)
{
    if (!req->Crl.__ptr || req->Crl.__size <= 0)
        return missing_argument(soap, "No CRL given");
    char id[KEYSTORE_ID_MAX];
    int rc = keystore_upload_crl(ks_of(soap), req->Crl.__ptr, (size_t)req->Crl.__size, req->Alias, id);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_CRL);
    resp->CrlID = soap_strdup(soap, id);
    return SOAP_OK;
}

static int fill_crl(struct soap *soap, const struct keystore_object_info *info, struct tas__CRL *out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = keystore_crl_der(ks_of(soap), info->id, &der, &len);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_CRL);
    out->CRLID = soap_strdup(soap, info->id);
    out->Alias = info->alias[0] ? soap_strdup(soap, info->alias) : NULL;
    out->CRLContent.__ptr = soap_malloc(soap, len);
    if (out->CRLContent.__ptr) {
        memcpy(out->CRLContent.__ptr, der, len);
        out->CRLContent.__size = (int)len;
    }
    free(der);
    return out->CRLContent.__ptr ? SOAP_OK : SOAP_EOM;
}

int __tas__GetCRL(struct soap *soap, struct _tas__GetCRL *req, struct _tas__GetCRLResponse *resp)
{
    struct keystore_object_info *list;
    size_t n;
    int rc = keystore_list_crls(ks_of(soap), &list, &n);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_CRL);
    rc = -1;
    for (size_t i = 0; req->CrlID && i < n; i++)
        if (!strcmp(list[i].id, req->CrlID)) {
            resp->Crl = onvif_zalloc(soap, sizeof *resp->Crl);
            rc = resp->Crl ? fill_crl(soap, &list[i], resp->Crl) : SOAP_EOM;
            break;
        }
    free(list);
    return rc == -1 ? keystore_fault(soap, KEYSTORE_E_NOT_FOUND, OBJ_CRL) : rc;
}

int __tas__GetAllCRLs(struct soap *soap, struct _tas__GetAllCRLs *req, struct _tas__GetAllCRLsResponse *resp)
{
    (void)req;
    struct keystore_object_info *list;
    size_t n;
    int rc = keystore_list_crls(ks_of(soap), &list, &n);
    if (rc != KEYSTORE_OK)
        return keystore_fault(soap, rc, OBJ_CRL);
    resp->Crl = onvif_zalloc(soap, sizeof *resp->Crl * n);
    rc = resp->Crl ? SOAP_OK : SOAP_EOM;
    for (size_t i = 0; rc == SOAP_OK && i < n; i++)
        rc = fill_crl(soap, &list[i], &resp->Crl[i]);
    resp->__sizeCrl = rc == SOAP_OK ? (int)n : 0;
    free(list);
    return rc;
}

int __tas__DeleteCRL(struct soap *soap, struct _tas__DeleteCRL *req, struct _tas__DeleteCRLResponse *resp)
{
    (void)resp;
    int rc = req->CrlID ? keystore_delete_crl(ks_of(soap), req->CrlID) : KEYSTORE_E_NOT_FOUND;
    return rc == KEYSTORE_OK ? SOAP_OK : keystore_fault(soap, rc, OBJ_CRL);
}
