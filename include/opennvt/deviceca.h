/* The built-in device CA: on first start a root CA key (EC P-256 by default,
 * or RSA-3072) and a self-signed CA certificate (10 years), and from it a
 * server key and certificate (397 days) whose subjectAltNames are the
 * device's current IP addresses and host name. deviceca_refresh re-issues the
 * server certificate when that address set changes or it nears expiry. The CA
 * private key is sealed with the device key, used only to issue, never
 * exported. State in state_dir/deviceca.xml (0600), replaced atomically.
 * Thread-safe; readers get their own references. */
#ifndef OPENNVT_DEVICECA_H
#define OPENNVT_DEVICECA_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct secretbox;
struct netif;

enum deviceca_error {
    DEVICECA_OK = 0,
    DEVICECA_E_STORE = -1,     /* unreadable/corrupt state, or could not persist */
    DEVICECA_E_CRYPTO = -2,
    DEVICECA_E_NOMEM = -3,
    DEVICECA_E_INVALID = -4,
};

struct deviceca_settings {
    const char *key_type;      /* "EC-P256" (default), "EC-P384", "RSA-3072" */
    const char *common_name;   /* CA subject CN, e.g. "OpenNVT Device CA <serial>" */
    const char *organization;  /* O of both certificates */
    /* Where host addresses come from (NULL = netif_list); lets tests give
     * fixed addresses from the first open on. (Added with deviceca.c.) */
    int (*address_source)(struct netif *list, size_t max);
    /* The clock (NULL = time(NULL)), from the first open on; for tests.
     * (Added with the CA renewal.) */
    time_t (*now)(void);
};

struct deviceca;

/* Loads state_dir/deviceca.xml or creates the CA and a first server
 * certificate for the current addresses. */
int deviceca_open(struct deviceca **out, const char *state_dir, struct secretbox *box,
                  const struct deviceca_settings *s);
void deviceca_close(struct deviceca *ca);

/* Re-reads the host's addresses (netif) and host name; when the set differs
 * from the served certificate's SANs, or it expires within 30 days, issues a
 * new server certificate (new key too) and persists. *changed tells whether
 * it did. Cheap when nothing changed (call it every few seconds). */
/* It also replaces the CA itself (new key and 10-year certificate; the old CA
 * is then neither served nor kept) when the CA expires within 427 days (the
 * server lifetime plus its renewal window), is not valid for more than a day
 * yet, or was made while the clock was unset (notBefore before 2024); the
 * server certificate is then re-issued from the new CA. While the clock reads
 * before 2024-01-01 it issues nothing and returns DEVICECA_OK (warning once);
 * deviceca_open at such a time still creates a CA so the daemon has an
 * identity, replaced by the first refresh with a set clock. Time alone never
 * makes it fail. (Added with the CA renewal.) */
int deviceca_refresh(struct deviceca *ca, int *changed);

/* The CA certificate, PEM (NUL-terminated) or DER, malloc'd. */
int deviceca_ca_pem(struct deviceca *ca, char **pem, size_t *len);
int deviceca_ca_der(struct deviceca *ca, unsigned char **der, size_t *len);

/* The current server identity, new references (EVP_PKEY_free / X509_free /
 * sk_X509_pop_free): key, certificate, and the chain to serve (the CA). */
int deviceca_server_identity(struct deviceca *ca, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain);

/* Replaces the address source (NULL = netif_list) used by later
 * deviceca_refresh calls; for tests. (Added with deviceca.c.) */
void deviceca_set_address_source(struct deviceca *ca, int (*list)(struct netif *list, size_t max));

/* Replaces the clock (NULL = time(NULL)) used by later deviceca_refresh
 * calls; for tests. (Added with the CA renewal.) */
void deviceca_set_clock(struct deviceca *ca, time_t (*now)(void));

const char *deviceca_strerror(int err);

#endif
