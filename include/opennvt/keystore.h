/* The keystore of the ONVIF Security Configuration Service: keys (key pairs,
 * or public keys only), certificates, certification paths, passphrases and
 * CRLs, each with a device-assigned ID (NCName: "KEY-7", "CERT-3", "PATH-2",
 * "PASS-1", "CRL-4"; never reused while the device lives) and a client alias.
 * Referential integrity per Security "Referential Integrity": a key used by a
 * certificate, a certificate used by a path, or anything referenced by a
 * security feature (keystore_set_reference) cannot be deleted.
 * Private keys and passphrases are sealed with the device key (secretbox);
 * the whole keystore is one file, state_dir/keystore.xml (0600), replaced
 * atomically, so a crash leaves the old or the new keystore. A read-only
 * factory keystore (factory identity) can be overlaid: its objects are listed
 * with the others, marked read-only, and cannot be deleted.
 * Key generation runs on a worker thread: create returns the ID at once with
 * status GENERATING. Thread-safe. */
#ifndef OPENNVT_KEYSTORE_H
#define OPENNVT_KEYSTORE_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct secretbox;

#define KEYSTORE_ID_MAX 32
#define KEYSTORE_ALIAS_MAX 64          /* bytes, UTF-8; longer is refused */
#define KEYSTORE_MAX_KEYS 32
#define KEYSTORE_MAX_CERTS 64
#define KEYSTORE_MAX_PATHS 32
#define KEYSTORE_MAX_PATH_LEN 8        /* certificates per certification path */
#define KEYSTORE_MAX_PASSPHRASES 16
#define KEYSTORE_MAX_CRLS 16
#define KEYSTORE_MAX_KEYGEN 4          /* concurrent key generations */
#define KEYSTORE_MAX_CPV_POLICIES 16   /* certification path validation policies */
#define KEYSTORE_MAX_TRUST_ANCHORS 16  /* per policy */

enum keystore_error {
    KEYSTORE_OK = 0,
    KEYSTORE_E_NOT_FOUND = -1,        /* no object with this ID */
    KEYSTORE_E_REFERENCED = -2,       /* still used (certificate, path, security feature) */
    KEYSTORE_E_FULL = -3,             /* maximum number of objects of this type reached */
    KEYSTORE_E_ALIAS = -4,            /* alias too long or not UTF-8 */
    KEYSTORE_E_KEY_PARAMS = -5,       /* unsupported key length / curve */
    KEYSTORE_E_KEY_STATUS = -6,       /* key not ok (generating or corrupt) */
    KEYSTORE_E_NO_PRIVATE_KEY = -7,   /* operation needs the private key and there is none */
    KEYSTORE_E_NO_MATCHING_KEY = -8,  /* upload requires a key pair matching the certificate */
    KEYSTORE_E_KEY_EXISTS = -9,       /* uploaded key pair equals one already stored (NoPrivateKeySharing) */
    KEYSTORE_E_BAD_INPUT = -10,       /* malformed certificate / key / CRL / PKCS#12 (see x509util) */
    KEYSTORE_E_PASSPHRASE = -11,      /* wrong or missing passphrase */
    KEYSTORE_E_PATH_ORDER = -12,      /* certification path not in issuer order */
    KEYSTORE_E_READ_ONLY = -13,       /* factory object */
    KEYSTORE_E_STORE = -14,           /* could not persist; nothing changed */
    KEYSTORE_E_BUSY = -15,            /* KEYSTORE_MAX_KEYGEN generations already running */
    KEYSTORE_E_CRYPTO = -16,
    KEYSTORE_E_NOMEM = -17,
    KEYSTORE_E_INVALID = -18,
    KEYSTORE_E_KEY_MISMATCH = -19,    /* PKCS#12: the private key does not match the first certificate */
    KEYSTORE_E_DUPLICATE = -20,       /* the certificate is already stored (UploadCertificate: ter:Duplicate) */
    KEYSTORE_E_NOT_CA = -21,          /* a trust anchor is not a CA certificate (basicConstraints CA:TRUE) */
    KEYSTORE_E_PARAMS = -22,          /* certification path validation parameters not supported */
};

enum keystore_key_status { KEYSTORE_KEY_OK, KEYSTORE_KEY_GENERATING, KEYSTORE_KEY_CORRUPT };

struct keystore_key_info {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    enum keystore_key_status status;
    int has_private_key;
    int externally_generated;
    int read_only;                    /* factory identity */
    char type[16];                    /* "RSA-2048", "EC-P256", ... ("" while generating) */
};

struct keystore_cert_info {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    char key_id[KEYSTORE_ID_MAX];     /* the key pair / public key it certifies */
    int read_only;
    time_t not_before, not_after;     /* for status: expired / not yet valid */
};

struct keystore_path_info {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    size_t n_certs;
    char cert_ids[KEYSTORE_MAX_PATH_LEN][KEYSTORE_ID_MAX];   /* leaf first */
    int read_only;
};

struct keystore_object_info {         /* passphrases and CRLs */
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
};

/* A certification path validation policy (Security, "Certification Path
 * Validation Policy Management"): ID "CPVP-n". Trust anchors are keystore
 * certificates that are CAs; they are referenced (cannot be deleted) while
 * the policy exists. */
struct keystore_cpv_policy {
    char id[KEYSTORE_ID_MAX];
    char alias[KEYSTORE_ALIAS_MAX + 1];
    int require_client_auth_eku;      /* RequireTLSWWWClientAuthExtendedKeyUsage */
    int use_delta_crls;               /* UseDeltaCRLs */
    size_t n_anchors;                 /* 1..KEYSTORE_MAX_TRUST_ANCHORS */
    char anchor_ids[KEYSTORE_MAX_TRUST_ANCHORS][KEYSTORE_ID_MAX];
};

/* What a validator needs for one policy, as new references (free with
 * keystore_cpv_material_free): the anchors, every keystore certificate as
 * candidate intermediates (Security: "all certificates in the keystore"),
 * and every CRL in the keystore. */
struct keystore_cpv_material {
    STACK_OF(X509) *anchors;
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;
    int require_client_auth_eku;
    int use_delta_crls;
};

struct keystore;

/* Opens state_dir/keystore.xml (absent: empty; corrupt: KEYSTORE_E_STORE).
 * factory_dir (may be NULL or absent) holds the read-only factory identity as
 * written by certs/make-factory-identity.sh: identity.key (PKCS#8 PEM, 0600),
 * identity.crt (PEM) and optionally chain.pem (issuer certificates, leaf's
 * issuer first). They appear as key "FACTORY-KEY", certificates
 * "FACTORY-CERT", "FACTORY-CA-1"..., and path "FACTORY-PATH", read-only.
 * Keys found GENERATING in the file (the daemon stopped meanwhile) become
 * CORRUPT. */
int keystore_open(struct keystore **out, const char *state_dir, const char *factory_dir, struct secretbox *box);
/* Waits for running generations to finish, then frees. */
void keystore_close(struct keystore *ks);

/* ---- keys ---- */
/* Starts generating; *id at once. *estimate_s: a rough expected duration. */
int keystore_create_rsa_key(struct keystore *ks, int bits, const char *alias, char id[KEYSTORE_ID_MAX], int *estimate_s);
int keystore_create_ec_key(struct keystore *ks, const char *curve, const char *alias, char id[KEYSTORE_ID_MAX],
                           int *estimate_s);
/* Uploads a key pair (PKCS#8, PEM or DER, encrypted with passphrase or with
 * the stored passphrase passphrase_id when given). */
int keystore_upload_pkcs8(struct keystore *ks, const unsigned char *buf, size_t len, const char *alias,
                          const char *passphrase_id, const char *passphrase, char id[KEYSTORE_ID_MAX]);
/* PKCS#12: stores the key (alias key_alias), its certificate and the chain
 * certificates, and a certification path of them (alias path_alias). */
int keystore_upload_pkcs12(struct keystore *ks, const unsigned char *buf, size_t len, const char *path_alias,
                           const char *key_alias, const char *passphrase_id, const char *passphrase,
                           int ignore_additional_certs, char path_id[KEYSTORE_ID_MAX], char key_id[KEYSTORE_ID_MAX]);
int keystore_key_info(struct keystore *ks, const char *id, struct keystore_key_info *out);
/* Copies all keys into a malloc'd array. */
int keystore_list_keys(struct keystore *ks, struct keystore_key_info **out, size_t *n);
int keystore_delete_key(struct keystore *ks, const char *id);
/* The key (a new reference: EVP_PKEY_free it) for signing; only when ok and
 * private. The private key is unsealed for this and never leaves the process. */
int keystore_get_private_key(struct keystore *ks, const char *id, EVP_PKEY **out);

/* ---- certificates ---- */
/* Stores a certificate (PEM or DER). It is bound to the key with the same
 * public key; without one, a public-key-only key (alias key_alias) is created,
 * unless private_key_required (then KEYSTORE_E_NO_MATCHING_KEY). */
int keystore_upload_cert(struct keystore *ks, const unsigned char *buf, size_t len, const char *alias,
                         const char *key_alias, int private_key_required, char cert_id[KEYSTORE_ID_MAX],
                         char key_id[KEYSTORE_ID_MAX]);
/* Stores a certificate made on the device for key_id (self-signed). */
int keystore_add_cert(struct keystore *ks, X509 *cert, const char *key_id, const char *alias,
                      char cert_id[KEYSTORE_ID_MAX]);
int keystore_cert_info(struct keystore *ks, const char *id, struct keystore_cert_info *out);
/* DER of the certificate, malloc'd. */
int keystore_cert_der(struct keystore *ks, const char *id, unsigned char **der, size_t *len);
int keystore_list_certs(struct keystore *ks, struct keystore_cert_info **out, size_t *n);
int keystore_delete_cert(struct keystore *ks, const char *id);

/* ---- certification paths ---- */
/* Leaf first; the order is verified (each signed by the next). */
int keystore_create_path(struct keystore *ks, const char *const *cert_ids, size_t n, const char *alias,
                         char id[KEYSTORE_ID_MAX]);
int keystore_path_info(struct keystore *ks, const char *id, struct keystore_path_info *out);
int keystore_list_paths(struct keystore *ks, struct keystore_path_info **out, size_t *n);
int keystore_delete_path(struct keystore *ks, const char *id);

/* ---- passphrases ---- */
int keystore_upload_passphrase(struct keystore *ks, const char *passphrase, const char *alias, char id[KEYSTORE_ID_MAX]);
int keystore_list_passphrases(struct keystore *ks, struct keystore_object_info **out, size_t *n);
int keystore_delete_passphrase(struct keystore *ks, const char *id);
/* The one stored passphrase with this alias, unsealed (malloc'd; the caller
 * wipes and frees it: secretbox_free(p, strlen(p))). KEYSTORE_E_NOT_FOUND
 * when none has it, KEYSTORE_E_DUPLICATE when several do. (For features that
 * take their secret from the keystore, e.g. the backup passphrase.) */
int keystore_passphrase_by_alias(struct keystore *ks, const char *alias, char **out);

/* ---- CRLs ---- */
int keystore_upload_crl(struct keystore *ks, const unsigned char *buf, size_t len, const char *alias,
                        char id[KEYSTORE_ID_MAX]);
int keystore_crl_der(struct keystore *ks, const char *id, unsigned char **der, size_t *len);
int keystore_list_crls(struct keystore *ks, struct keystore_object_info **out, size_t *n);
int keystore_delete_crl(struct keystore *ks, const char *id);

/* ---- references from security features (TLS server, ...) ---- */
/* Counts a use of a key, certificate or certification path (kind "key",
 * "cert", "path") by a feature: delta +1 or -1. */
int keystore_set_reference(struct keystore *ks, const char *kind, const char *id, int delta);

/* A security feature that holds references in its own state (the TLS
 * server's assignments) registers here instead of counting them: every
 * delete asks in_use(arg, kind, id) with kind "key", "cert", "path" or
 * "cpvpolicy", and refuses with KEYSTORE_E_REFERENCED when it answers
 * non-zero. in_use is called with the keystore's write lock held, so it must
 * not call back into keystore writes (reads are fine). One checker; NULL
 * removes it. */
void keystore_set_reference_check(struct keystore *ks, int (*in_use)(void *arg, const char *kind, const char *id),
                                  void *arg);

/* Bumped by every change of the keystore's contents; lets users of derived
 * data (loaded server identities, validation stores) know when to reload.
 * Never 0 for an open keystore. Read it before the data derived from it: a
 * change in between then shows as a newer generation, never a stale one. */
unsigned long keystore_generation(struct keystore *ks);

/* ---- certification path validation policies ---- */
/* Creates from p (p->id ignored). Anchors must exist (KEYSTORE_E_NOT_FOUND)
 * and be CA certificates (KEYSTORE_E_NOT_CA); 0 or more than
 * KEYSTORE_MAX_TRUST_ANCHORS anchors, or duplicates: KEYSTORE_E_PARAMS. */
int keystore_create_cpv_policy(struct keystore *ks, const struct keystore_cpv_policy *p, char id[KEYSTORE_ID_MAX]);
int keystore_cpv_policy_info(struct keystore *ks, const char *id, struct keystore_cpv_policy *out);
int keystore_list_cpv_policies(struct keystore *ks, struct keystore_cpv_policy **out, size_t *n);
/* KEYSTORE_E_REFERENCED while the reference check says it is assigned. */
int keystore_delete_cpv_policy(struct keystore *ks, const char *id);
int keystore_cpv_material(struct keystore *ks, const char *id, struct keystore_cpv_material *out);
void keystore_cpv_material_free(struct keystore_cpv_material *m);

const char *keystore_strerror(int err);
const char *keystore_key_status_name(enum keystore_key_status s);   /* "ok", "generating", "corrupt" */

/* Key status changes ("generating", "ok", "corrupt"; old NULL for a new
 * key), called after the change is stored, from the thread that made it. */
typedef void (*keystore_status_fn)(void *arg, const char *key_id, const char *old_status, const char *new_status);
void keystore_set_status_listener(struct keystore *ks, keystore_status_fn fn, void *arg);

#endif
