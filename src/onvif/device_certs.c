/* Device service, legacy certificate operations (Core "Security"), mapped
 * onto the same keystore as the Security Configuration Service: NVT
 * certificates are keystore certificates whose key has a private key, CA
 * certificates the others. A client-chosen CertificateID becomes the
 * certificate's alias; lookups accept the keystore ID or that alias.
 * GetCertificatesStatus/SetCertificatesStatus select the TLS certificate and
 * stay "not supported" until HTTPS exists. */
#include "opennvt/keystore.h"
#include "opennvt/log.h"
#include "opennvt/onvif.h"
#include "opennvt/x509util.h"
#include "soap_values.h"
#include "soapH.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEGACY_KEY_WAIT_MS 10000
#define LEGACY_SUBJECT_MAX 1024

static struct keystore *ks_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->keystore;
}


static int cert_fault(struct soap *soap, int err)
{
    switch (err) {
    case KEYSTORE_E_NOT_FOUND:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificateID", keystore_strerror(err));
    case KEYSTORE_E_BAD_INPUT:
    case KEYSTORE_E_KEY_PARAMS:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificateFormat", keystore_strerror(err));
    case KEYSTORE_E_DUPLICATE:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificateID", "That certificate is already stored");
    case KEYSTORE_E_NO_MATCHING_KEY:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificateMismatch", keystore_strerror(err));
    case KEYSTORE_E_FULL:
        return onvif_receiver_fault(soap, "ter:Action", "ter:TooManyCertificates", keystore_strerror(err));
    case KEYSTORE_E_REFERENCED:
    case KEYSTORE_E_READ_ONLY:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ReferenceExists", keystore_strerror(err));
    }
    return onvif_receiver_fault(soap, "ter:Action", NULL, keystore_strerror(err));
}

/* Keystore ID of the certificate a legacy ID names (ID itself or alias). */
static int resolve_cert(struct soap *soap, const char *legacy_id, char id[KEYSTORE_ID_MAX])
{
    if (!legacy_id)
        return KEYSTORE_E_NOT_FOUND;
    struct keystore_cert_info *certs;
    size_t n;
    int rc = keystore_list_certs(ks_of(soap), &certs, &n);
    if (rc != KEYSTORE_OK)
        return rc;
    rc = KEYSTORE_E_NOT_FOUND;
    for (size_t i = 0; i < n && rc != KEYSTORE_OK; i++)
        if (!strcmp(certs[i].id, legacy_id) || !strcmp(certs[i].alias, legacy_id)) {
            snprintf(id, KEYSTORE_ID_MAX, "%s", certs[i].id);
            rc = KEYSTORE_OK;
        }
    free(certs);
    return rc;
}

/* "CN=cam, O=Acme" or "/CN=cam/O=Acme" to subject attributes (pointers into
 * buf, which is modified). */
static int parse_subject(char *buf, struct x509util_rdn *rdns, size_t max, size_t *n)
{
    *n = 0;
    char sep = buf[0] == '/' ? '/' : ',';
    char *p = buf[0] == '/' ? buf + 1 : buf;
    while (*p) {
        char *end = strchr(p, sep);
        if (end)
            *end = '\0';
        while (*p == ' ')
            p++;
        char *eq = strchr(p, '=');
        if (!eq || eq == p || *n >= max)
            return -1;
        *eq = '\0';
        char *v = eq + 1, *t = eq;
        while (t > p && t[-1] == ' ')
            *--t = '\0';
        size_t vl = strlen(v);
        while (vl > 0 && v[vl - 1] == ' ')
            v[--vl] = '\0';
        rdns[(*n)++] = (struct x509util_rdn){ p, v };
        if (!end)
            break;
        p = end + 1;
    }
    return *n > 0 ? 0 : -1;
}

static int subject_of(struct soap *soap, const char *text, X509_NAME **name)
{
    if (!text || !text[0] || strlen(text) > LEGACY_SUBJECT_MAX)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidSubject", "Subject missing or too long");
    char *buf = soap_strdup(soap, text);
    struct x509util_rdn rdns[X509UTIL_MAX_RDN];
    size_t n, bad = 0;
    if (!buf || parse_subject(buf, rdns, X509UTIL_MAX_RDN, &n) != 0 ||
        x509util_make_name(rdns, n, name, &bad) != X509UTIL_OK)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidSubject",
                                  "Subject must be attribute=value pairs (CN, O, OU, C, ST, L...) within the limits");
    return SOAP_OK;
}

static struct tt__Certificate *certificate_of(struct soap *soap, const struct keystore_cert_info *info,
                                              struct tt__Certificate *out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    if (keystore_cert_der(ks_of(soap), info->id, &der, &len) != KEYSTORE_OK)
        return NULL;
    out->CertificateID = soap_strdup(soap, info->alias[0] ? info->alias : info->id);
    out->Certificate = onvif_zalloc(soap, sizeof *out->Certificate);
    if (out->Certificate && (out->Certificate->Data.__ptr = soap_malloc(soap, len))) {
        memcpy(out->Certificate->Data.__ptr, der, len);
        out->Certificate->Data.__size = (int)len;
        out->Certificate->xmime__contentType = "application/pkix-cert";
    }
    free(der);
    return out->Certificate && out->Certificate->Data.__ptr ? out : NULL;
}

/* NVT certificates (with_private_key 1) or CA certificates (0). */
static int list_certificates(struct soap *soap, int with_private_key, struct tt__Certificate **out, int *count)
{
    struct keystore_cert_info *certs;
    size_t n, k = 0;
    int rc = keystore_list_certs(ks_of(soap), &certs, &n);
    if (rc != KEYSTORE_OK)
        return cert_fault(soap, rc);
    *out = onvif_zalloc(soap, sizeof **out * n);
    for (size_t i = 0; *out && i < n; i++) {
        struct keystore_key_info key;
        if (keystore_key_info(ks_of(soap), certs[i].key_id, &key) != KEYSTORE_OK ||
            key.has_private_key != with_private_key)
            continue;
        if (certificate_of(soap, &certs[i], &(*out)[k]))
            k++;
    }
    free(certs);
    *count = (int)k;
    return *out ? SOAP_OK : SOAP_EOM;
}

int __tds__GetCertificates(struct soap *soap, struct _tds__GetCertificates *req, struct _tds__GetCertificatesResponse *resp)
{
    (void)req;
    return list_certificates(soap, 1, &resp->NvtCertificate, &resp->__sizeNvtCertificate);
}

int __tds__GetCACertificates(struct soap *soap, struct _tds__GetCACertificates *req,
                             struct _tds__GetCACertificatesResponse *resp)
{
    (void)req;
    return list_certificates(soap, 0, &resp->CACertificate, &resp->__sizeCACertificate);
}

/* Legacy CreateCertificate answers with the certificate, so it waits for the
 * key: EC P-256, which takes milliseconds. */
static int create_key_and_wait(struct keystore *ks, const char *alias, char id[KEYSTORE_ID_MAX])
{
    int estimate;
    int rc = keystore_create_ec_key(ks, "secp256r1", alias, id, &estimate);
    for (int waited = 0; rc == KEYSTORE_OK && waited < LEGACY_KEY_WAIT_MS; waited += 10) {
        struct keystore_key_info info;
        rc = keystore_key_info(ks, id, &info);
        if (rc != KEYSTORE_OK || info.status == KEYSTORE_KEY_OK)
            return rc;
        if (info.status == KEYSTORE_KEY_CORRUPT)
            return KEYSTORE_E_KEY_STATUS;
        usleep(10000);
    }
    return rc == KEYSTORE_OK ? KEYSTORE_E_BUSY : rc;
}

int __tds__CreateCertificate(struct soap *soap, struct _tds__CreateCertificate *req,
                             struct _tds__CreateCertificateResponse *resp)
{
    time_t now = time(NULL);
    time_t not_before = req->ValidNotBefore ? *req->ValidNotBefore : now;
    time_t not_after = req->ValidNotAfter ? *req->ValidNotAfter : not_before + 365 * 86400L;
    if (not_after <= not_before)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidDateTime", "ValidNotAfter must follow ValidNotBefore");
    char existing[KEYSTORE_ID_MAX];
    if (req->CertificateID && resolve_cert(soap, req->CertificateID, existing) == KEYSTORE_OK)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:CertificateID", "CertificateID already in use");
    X509_NAME *subject = NULL;
    int rc = subject_of(soap, req->Subject ? req->Subject : "CN=OpenNVT", &subject);
    if (rc != SOAP_OK)
        return rc;
    struct keystore *ks = ks_of(soap);
    char key_id[KEYSTORE_ID_MAX], cert_id[KEYSTORE_ID_MAX];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    const EVP_MD *md = NULL;
    int kr = create_key_and_wait(ks, req->CertificateID, key_id);
    if (kr == KEYSTORE_OK)
        kr = keystore_get_private_key(ks, key_id, &key);
    if (kr == KEYSTORE_OK && (x509util_signature_digest(NULL, key, &md) != X509UTIL_OK ||
                              x509util_make_self_signed(key, subject, not_before, not_after, NULL, 0, NULL, 0, 0, md,
                                                        &cert) != X509UTIL_OK))
        kr = KEYSTORE_E_CRYPTO;
    if (kr == KEYSTORE_OK)
        kr = keystore_add_cert(ks, cert, key_id, req->CertificateID, cert_id);
    struct keystore_cert_info info;
    if (kr == KEYSTORE_OK)
        kr = keystore_cert_info(ks, cert_id, &info);
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_NAME_free(subject);
    if (kr != KEYSTORE_OK)
        return cert_fault(soap, kr);
    resp->NvtCertificate = onvif_zalloc(soap, sizeof *resp->NvtCertificate);
    if (!resp->NvtCertificate || !certificate_of(soap, &info, resp->NvtCertificate))
        return SOAP_EOM;
    return SOAP_OK;
}

int __tds__DeleteCertificates(struct soap *soap, struct _tds__DeleteCertificates *req,
                              struct _tds__DeleteCertificatesResponse *resp)
{
    (void)resp;
    struct keystore *ks = ks_of(soap);
    int n = req->__sizeCertificateID;
    /* Check everything first (known, not repeated, not in a certification
     * path, not read-only), so a refused request deletes nothing. Keys stay:
     * they may serve other certificates or the Security service. */
    char (*ids)[KEYSTORE_ID_MAX] = onvif_zalloc(soap, sizeof *ids * (size_t)(n > 0 ? n : 1));
    if (!ids)
        return SOAP_EOM;
    struct keystore_path_info *paths = NULL;
    size_t n_paths = 0;
    int rc = keystore_list_paths(ks, &paths, &n_paths);
    for (int i = 0; rc == KEYSTORE_OK && i < n; i++) {
        rc = resolve_cert(soap, req->CertificateID[i], ids[i]);
        for (int j = 0; rc == KEYSTORE_OK && j < i; j++)
            if (!strcmp(ids[i], ids[j]))
                rc = KEYSTORE_E_NOT_FOUND;
        struct keystore_cert_info info;
        if (rc == KEYSTORE_OK && keystore_cert_info(ks, ids[i], &info) == KEYSTORE_OK && info.read_only)
            rc = KEYSTORE_E_READ_ONLY;
        for (size_t p = 0; rc == KEYSTORE_OK && p < n_paths; p++)
            for (size_t c = 0; c < paths[p].n_certs; c++)
                if (!strcmp(paths[p].cert_ids[c], ids[i]))
                    rc = KEYSTORE_E_REFERENCED;
    }
    free(paths);
    for (int i = 0; rc == KEYSTORE_OK && i < n; i++)
        rc = keystore_delete_cert(ks, ids[i]);
    return rc == KEYSTORE_OK ? SOAP_OK : cert_fault(soap, rc);
}

int __tds__GetPkcs10Request(struct soap *soap, struct _tds__GetPkcs10Request *req,
                            struct _tds__GetPkcs10RequestResponse *resp)
{
    char cert_id[KEYSTORE_ID_MAX];
    struct keystore_cert_info info;
    int rc = resolve_cert(soap, req->CertificateID, cert_id);
    if (rc == KEYSTORE_OK)
        rc = keystore_cert_info(ks_of(soap), cert_id, &info);
    if (rc != KEYSTORE_OK)
        return cert_fault(soap, rc);
    X509_NAME *subject = NULL;
    int src = subject_of(soap, req->Subject, &subject);
    if (src != SOAP_OK)
        return src;
    EVP_PKEY *key = NULL;
    const EVP_MD *md = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    rc = keystore_get_private_key(ks_of(soap), info.key_id, &key);
    if (rc == KEYSTORE_OK && (x509util_signature_digest(NULL, key, &md) != X509UTIL_OK ||
                              x509util_make_csr(key, subject, NULL, 0, NULL, 0, md, &der, &len) != X509UTIL_OK))
        rc = KEYSTORE_E_CRYPTO;
    X509_NAME_free(subject);
    EVP_PKEY_free(key);
    if (rc != KEYSTORE_OK)
        return cert_fault(soap, rc);
    resp->Pkcs10Request = onvif_zalloc(soap, sizeof *resp->Pkcs10Request);
    if (resp->Pkcs10Request && (resp->Pkcs10Request->Data.__ptr = soap_malloc(soap, len))) {
        memcpy(resp->Pkcs10Request->Data.__ptr, der, len);
        resp->Pkcs10Request->Data.__size = (int)len;
        resp->Pkcs10Request->xmime__contentType = "application/pkcs10";
    }
    OPENSSL_free(der);
    return resp->Pkcs10Request && resp->Pkcs10Request->Data.__ptr ? SOAP_OK : SOAP_EOM;
}

/* Stores each certificate; with_key: it must match a key pair on the device. */
static int load_certificates(struct soap *soap, const struct tt__Certificate *certs, int n, int with_key)
{
    for (int i = 0; i < n; i++) {
        const struct tt__BinaryData *b = certs[i].Certificate;
        if (!b || !b->Data.__ptr || b->Data.__size <= 0)
            return cert_fault(soap, KEYSTORE_E_BAD_INPUT);
        char cert_id[KEYSTORE_ID_MAX], key_id[KEYSTORE_ID_MAX];
        int rc = keystore_upload_cert(ks_of(soap), b->Data.__ptr, (size_t)b->Data.__size, certs[i].CertificateID, NULL,
                                      with_key, cert_id, key_id);
        if (rc != KEYSTORE_OK)
            return cert_fault(soap, rc);
    }
    return SOAP_OK;
}

int __tds__LoadCertificates(struct soap *soap, struct _tds__LoadCertificates *req, struct _tds__LoadCertificatesResponse *resp)
{
    (void)resp;
    return load_certificates(soap, req->NVTCertificate, req->__sizeNVTCertificate, 1);
}

int __tds__LoadCACertificates(struct soap *soap, struct _tds__LoadCACertificates *req,
                              struct _tds__LoadCACertificatesResponse *resp)
{
    (void)resp;
    return load_certificates(soap, req->CACertificate, req->__sizeCACertificate, 0);
}

int __tds__LoadCertificateWithPrivateKey(struct soap *soap, struct _tds__LoadCertificateWithPrivateKey *req,
                                         struct _tds__LoadCertificateWithPrivateKeyResponse *resp)
{
    (void)resp;
    for (int i = 0; i < req->__sizeCertificateWithPrivateKey; i++) {
        struct tt__CertificateWithPrivateKey *c = &req->CertificateWithPrivateKey[i];
        if (!c->PrivateKey || !c->PrivateKey->Data.__ptr || c->PrivateKey->Data.__size <= 0)
            return cert_fault(soap, KEYSTORE_E_BAD_INPUT);
        char key_id[KEYSTORE_ID_MAX];
        int rc = keystore_upload_pkcs8(ks_of(soap), c->PrivateKey->Data.__ptr, (size_t)c->PrivateKey->Data.__size,
                                       c->CertificateID, NULL, NULL, key_id);
        OPENSSL_cleanse(c->PrivateKey->Data.__ptr, (size_t)c->PrivateKey->Data.__size);
        if (rc != KEYSTORE_OK)
            return cert_fault(soap, rc);
        /* On failure roll back only a key this request created: a key that
         * already had a certificate (its private part was just added) stays. */
        struct keystore_cert_info *certs = NULL;
        size_t n_certs = 0;
        int had_cert = 0;
        if (keystore_list_certs(ks_of(soap), &certs, &n_certs) == KEYSTORE_OK)
            for (size_t k = 0; k < n_certs; k++)
                had_cert |= !strcmp(certs[k].key_id, key_id);
        free(certs);
        struct tt__Certificate cert = { c->CertificateID, c->Certificate };
        rc = load_certificates(soap, &cert, 1, 1);
        if (rc != SOAP_OK) {
            if (!had_cert)
                (void)keystore_delete_key(ks_of(soap), key_id);
            return rc;
        }
    }
    return SOAP_OK;
}

static char *name_text(struct soap *soap, const X509_NAME *name)
{
    char buf[512];
    X509_NAME_oneline(name, buf, sizeof buf);
    return soap_strdup(soap, buf);
}

int __tds__GetCertificateInformation(struct soap *soap, struct _tds__GetCertificateInformation *req,
                                     struct _tds__GetCertificateInformationResponse *resp)
{
    char cert_id[KEYSTORE_ID_MAX];
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = resolve_cert(soap, req->CertificateID, cert_id);
    if (rc == KEYSTORE_OK)
        rc = keystore_cert_der(ks_of(soap), cert_id, &der, &len);
    if (rc != KEYSTORE_OK)
        return cert_fault(soap, rc);
    X509 *cert = NULL;
    int xr = x509util_parse_cert(der, len, &cert);
    free(der);
    if (xr != X509UTIL_OK)
        return cert_fault(soap, KEYSTORE_E_BAD_INPUT);
    struct tt__CertificateInformation *ci = onvif_zalloc(soap, sizeof *ci);
    if (!ci) {
        X509_free(cert);
        return SOAP_EOM;
    }
    ci->CertificateID = soap_strdup(soap, req->CertificateID);
    ci->IssuerDN = name_text(soap, X509_get_issuer_name(cert));
    ci->SubjectDN = name_text(soap, X509_get_subject_name(cert));
    char version[24];
    snprintf(version, sizeof version, "%ld", X509_get_version(cert) + 1);
    ci->Version = soap_strdup(soap, version);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    ci->SerialNum = hex ? soap_strdup(soap, hex) : NULL;
    OPENSSL_free(hex);
    BN_free(bn);
    ci->SignatureAlgorithm = soap_strdup(soap, OBJ_nid2ln(X509_get_signature_nid(cert)));
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (pub) {
        ci->KeyLength = soap_malloc(soap, sizeof *ci->KeyLength);
        if (ci->KeyLength)
            *ci->KeyLength = EVP_PKEY_get_bits(pub);
    }
    ci->Validity = onvif_zalloc(soap, sizeof *ci->Validity);
    if (ci->Validity) {
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm))
            ci->Validity->From = timegm(&tm);
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm))
            ci->Validity->Until = timegm(&tm);
    }
    X509_free(cert);
    resp->CertificateInformation = ci;
    return SOAP_OK;
}
