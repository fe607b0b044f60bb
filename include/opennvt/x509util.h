/* Stateless X.509 and key helpers over OpenSSL 3 (EVP APIs only): subjects
 * and their validation, PKCS#10 requests, self-signed certificates,
 * certificate/CRL/PKCS#8/PKCS#12 parsing (PEM or DER), certification path
 * order checks, and fingerprints. Everything untrusted is bounded and
 * validated here; nothing is stored. Thread-safe. */
#ifndef OPENNVT_X509UTIL_H
#define OPENNVT_X509UTIL_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define X509UTIL_MAX_INPUT (64 * 1024)   /* largest certificate/CRL/key/PKCS#12 accepted */
#define X509UTIL_MAX_RDN 32              /* subject attributes at most */
#define X509UTIL_MAX_SAN 32

enum x509util_error {
    X509UTIL_OK = 0,
    X509UTIL_E_SUBJECT = -1,      /* subject attribute invalid (length, characters, unknown type) */
    X509UTIL_E_SAN = -2,          /* subjectAltName entry invalid */
    X509UTIL_E_ALGORITHM = -3,    /* signature algorithm unknown or not usable with this key */
    X509UTIL_E_MALFORMED = -4,    /* not a parsable certificate / CRL / key / PKCS#12 */
    X509UTIL_E_PASSPHRASE = -5,   /* encrypted input and the passphrase is missing or wrong */
    X509UTIL_E_TOO_LARGE = -6,    /* input over X509UTIL_MAX_INPUT */
    X509UTIL_E_KEY = -7,          /* key type/size/curve not supported (see x509util_key_supported) */
    X509UTIL_E_VALIDITY = -8,     /* notBefore/notAfter unusable (after each other, out of range) */
    X509UTIL_E_ORDER = -9,        /* certification path not in issuer order */
    X509UTIL_E_MISMATCH = -10,    /* key and certificate do not belong together */
    X509UTIL_E_CRYPTO = -11,      /* OpenSSL failure */
    X509UTIL_E_NOMEM = -12,
    X509UTIL_E_INVALID = -13,     /* NULL argument or an out-of-range count (added with x509util.c) */
};

/* One subject attribute: type is a short name ("CN", "C", "O", "OU", "ST",
 * "L", "serialNumber", "title", "SN", "GN", "initials", "pseudonym",
 * "generationQualifier", "dnQualifier") or a dotted OID; value UTF-8.
 * Rules: CN 1..64, C exactly 2 ASCII letters, ST and L 1..128, O and OU 1..64,
 * others 1..128; no control characters; valid UTF-8. A CN that is an IPv6
 * address may be given in brackets ("[2001:db8::1]"). */
struct x509util_rdn {
    const char *type;
    const char *value;
};

enum x509util_san_type { X509UTIL_SAN_DNS, X509UTIL_SAN_IP };

struct x509util_san {
    enum x509util_san_type type;
    const char *value;            /* host name (LDH labels, <= 253) or IPv4/IPv6 text */
};

/* What a signature uses, from an ONVIF AlgorithmIdentifier OID (NULL = the
 * default for the key: SHA-256). Known: sha256/384/512WithRSAEncryption
 * (1.2.840.113549.1.1.11/12/13), ecdsa-with-SHA256/384/512
 * (1.2.840.10045.4.3.2/3/4). Returns X509UTIL_E_ALGORITHM when unknown or
 * when it does not fit the key type. *md is a static EVP_MD. */
int x509util_signature_digest(const char *oid, const EVP_PKEY *key, const EVP_MD **md);

/* Builds an X509_NAME from rdns after validating each; *bad_index names the
 * offending entry. Caller frees with X509_NAME_free. */
int x509util_make_name(const struct x509util_rdn *rdns, size_t n, X509_NAME **out, size_t *bad_index);

/* A DER PKCS#10 request for key (which must hold the private key), signed
 * with md: subject, an extensionRequest with the subjectAltNames (if any) and
 * with the extra DER-encoded extensions given (each: OID text + DER value;
 * may be NULL/0). *der is OPENSSL_malloc'd. */
struct x509util_extension {
    const char *oid;
    const unsigned char *der;     /* the extnValue content (DER of the extension's value) */
    size_t der_len;
    int critical;
};
int x509util_make_csr(EVP_PKEY *key, const X509_NAME *subject, const struct x509util_san *sans, size_t n_sans,
                      const struct x509util_extension *ext, size_t n_ext, const EVP_MD *md,
                      unsigned char **der, size_t *der_len);

/* A self-signed X.509 v3 certificate: random 16-byte positive serial,
 * issuer = subject, subjectKeyIdentifier, authorityKeyIdentifier,
 * basicConstraints CA:FALSE unless is_ca, the SANs and extra extensions.
 * not_before/not_after in UTC seconds (not_after > not_before). */
int x509util_make_self_signed(EVP_PKEY *key, const X509_NAME *subject, time_t not_before, time_t not_after,
                              const struct x509util_san *sans, size_t n_sans,
                              const struct x509util_extension *ext, size_t n_ext, int is_ca, const EVP_MD *md,
                              X509 **out);

/* A certificate for subject_key issued by issuer_cert/issuer_key (a CA):
 * used by the device CA for its server certificate. server_auth adds
 * extendedKeyUsage serverAuth and keyUsage digitalSignature(+keyEncipherment
 * for RSA). */
int x509util_issue(EVP_PKEY *subject_key, const X509_NAME *subject, X509 *issuer_cert, EVP_PKEY *issuer_key,
                   time_t not_before, time_t not_after, const struct x509util_san *sans, size_t n_sans,
                   int is_ca, int server_auth, const EVP_MD *md, X509 **out);

/* Parses one certificate, PEM or DER (detected). */
int x509util_parse_cert(const unsigned char *buf, size_t len, X509 **out);
/* Parses a CRL, PEM or DER. */
int x509util_parse_crl(const unsigned char *buf, size_t len, X509_CRL **out);
/* Parses a private key: PKCS#8 PrivateKeyInfo or EncryptedPrivateKeyInfo
 * (then passphrase is required), PEM or DER; also accepts traditional RSA/EC
 * PEM. Refuses unsupported keys with X509UTIL_E_KEY. */
int x509util_parse_pkcs8(const unsigned char *buf, size_t len, const char *passphrase, EVP_PKEY **out);
/* Parses PKCS#12 with the passphrase (NULL or "" tried as empty): the key,
 * its certificate and the other certificates (chain, may be NULL). */
/* Password-based encryption, in PKCS#8 and PKCS#12 alike, is accepted only
 * as PBES2 with PBKDF2 (PRF HMAC-SHA-1/SHA-224/256/384/512) or a PKCS#12
 * pbeWithSHAAnd* scheme, each asking for 1..1,000,000 iterations, and all the
 * derivations of one input (PKCS#12: MAC, encrypted parts, shrouded keys)
 * at most 2,000,000 together; a PKCS#12 holds at most 16 parts and 64 bags,
 * safeContents nested at most 4 deep. Anything else (scrypt, PKCS#5 v1, PBMAC1,
 * unknown schemes) is X509UTIL_E_MALFORMED, refused before any derivation.
 * (Added with the PBE cost limits.) */
int x509util_parse_pkcs12(const unsigned char *buf, size_t len, const char *passphrase, EVP_PKEY **key,
                          X509 **cert, STACK_OF(X509) **chain);

/* RSA 2048/3072/4096 or EC P-256/P-384 (what the keystore accepts). */
int x509util_key_supported(const EVP_PKEY *key);

/* Checks that certs[i] is issued and signed by certs[i+1] for every i
 * (the order ONVIF certification paths use: leaf first). *bad_index is the
 * first certificate whose issuer check fails. */
int x509util_check_path_order(X509 *const *certs, size_t n, size_t *bad_index);

/* DER of a public key (SubjectPublicKeyInfo): for matching keys to
 * certificates. *der OPENSSL_malloc'd. */
int x509util_public_key_der(const EVP_PKEY *key, unsigned char **der, size_t *der_len);

/* DER / PEM of a certificate, OPENSSL_malloc'd (PEM NUL-terminated). */
int x509util_cert_der(X509 *cert, unsigned char **der, size_t *der_len);
int x509util_cert_pem(X509 *cert, char **pem, size_t *pem_len);

/* Private key to unencrypted PKCS#8 DER (for sealing at rest) and back. The
 * DER is OPENSSL_secure-free'd by the caller with OPENSSL_clear_free. */
int x509util_private_key_der(EVP_PKEY *key, unsigned char **der, size_t *der_len);
int x509util_private_key_from_der(const unsigned char *der, size_t len, EVP_PKEY **out);

/* Generates a key: RSA of bits (2048/3072/4096) or EC curve ("secp256r1",
 * "secp384r1", also "prime256v1"/"P-256"/"P-384"). Slow for RSA-4096: call
 * from a worker thread. */
int x509util_generate_rsa(int bits, EVP_PKEY **out);
int x509util_generate_ec(const char *curve, EVP_PKEY **out);

const char *x509util_strerror(int err);

#endif
