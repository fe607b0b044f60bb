/* The device key and authenticated encryption of secrets at rest.
 * The key (32 random bytes) lives in state_dir/device.key, mode 0600, created
 * on first open and never logged; secrets are sealed with AES-256-GCM under it
 * and stored as text. Thread-safe after open (read-only state). */
#ifndef OPENNVT_SECRETBOX_H
#define OPENNVT_SECRETBOX_H

#include <stddef.h>

enum secretbox_error {
    SECRETBOX_OK = 0,
    SECRETBOX_E_KEYFILE = -1,   /* device key unreadable, wrong size or wrong mode */
    SECRETBOX_E_STORE = -2,     /* could not create the key file */
    SECRETBOX_E_CORRUPT = -3,   /* sealed text malformed or authentication failed */
    SECRETBOX_E_CRYPTO = -4,    /* OpenSSL failure */
    SECRETBOX_E_NOMEM = -5,
    SECRETBOX_E_INVALID = -6,   /* NULL argument, or input too large */
};

struct secretbox;

/* Loads state_dir/device.key, creating it (0600, atomically) when absent.
 * A key file with group/other permissions is refused. */
int secretbox_open(struct secretbox **out, const char *state_dir);
/* Wipes the key and frees. */
void secretbox_close(struct secretbox *box);

/* Seals len bytes: out is a malloc'd NUL-terminated text
 * ("v1:" base64(nonce 12 | ciphertext | tag 16)). context is bound into the
 * tag (e.g. "user:alice"), so a sealed value moved elsewhere fails to open. */
int secretbox_seal(const struct secretbox *box, const void *plain, size_t len, const char *context, char **out);

/* Opens a sealed text sealed with the same context: *plain is malloc'd
 * (NUL-terminated for convenience), caller wipes it (secretbox_free) */
int secretbox_unseal(const struct secretbox *box, const char *sealed, const char *context,
                     unsigned char **plain, size_t *len);

/* Wipes len bytes at p and frees it. */
void secretbox_free(void *p, size_t len);

/* HMAC-SHA256 under a key derived from the device key for `purpose`
 * (keyed fingerprints such as password history; digest nonces). out: 32 bytes. */
int secretbox_mac(const struct secretbox *box, const char *purpose, const void *data, size_t len,
                  unsigned char out[32]);

const char *secretbox_strerror(int err);

#endif
