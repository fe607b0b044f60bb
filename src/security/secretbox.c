/* The device key (state_dir/device.key, 32 random bytes, 0600) and what is
 * done with it: AES-256-GCM sealing of secrets at rest as "v1:" base64 text,
 * and HMAC-SHA256 fingerprints under per-purpose subkeys. */
#include "opennvt/secretbox.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define DEVICE_KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define SEALED_PREFIX "v1:"
#define SEALED_PREFIX_LEN 3
/* Secrets are passwords and keys; the bound keeps every length an int for EVP. */
#define PLAIN_MAX (1024 * 1024)
#define PURPOSE_MAX 128

struct secretbox {
    unsigned char key[DEVICE_KEY_LEN];
};

const char *secretbox_strerror(int err)
{
    switch (err) {
    case SECRETBOX_OK: return "ok";
    case SECRETBOX_E_KEYFILE: return "device key file unreadable, of wrong size or with unsafe permissions";
    case SECRETBOX_E_STORE: return "could not create the device key file";
    case SECRETBOX_E_CORRUPT: return "sealed value malformed or not authentic";
    case SECRETBOX_E_CRYPTO: return "cryptographic library failure";
    case SECRETBOX_E_NOMEM: return "out of memory";
    case SECRETBOX_E_INVALID: return "invalid argument";
    }
    return "unknown error";
}

/* Reads an existing key file; refuses anything but a private regular file of
 * exactly DEVICE_KEY_LEN bytes, so a leaked or truncated key is never used. */
static int read_key_file(const char *path, unsigned char key[DEVICE_KEY_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = SECRETBOX_OK;
    if (fstat(fd, &st) != 0) {
        log_err("security", "device key %s: %s", path, strerror(errno));
        rc = SECRETBOX_E_KEYFILE;
    } else if (!S_ISREG(st.st_mode)) {
        log_err("security", "device key %s is not a regular file", path);
        rc = SECRETBOX_E_KEYFILE;
    } else if (st.st_mode & 077) {
        log_err("security", "device key %s has mode %04o; refusing a key others can read",
                path, (unsigned)(st.st_mode & 07777));
        rc = SECRETBOX_E_KEYFILE;
    } else if (st.st_size != DEVICE_KEY_LEN) {
        log_err("security", "device key %s has %lld bytes, expected %d", path, (long long)st.st_size,
                DEVICE_KEY_LEN);
        rc = SECRETBOX_E_KEYFILE;
    }
    size_t got = 0;
    while (rc == SECRETBOX_OK && got < DEVICE_KEY_LEN) {
        ssize_t n = read(fd, key + got, DEVICE_KEY_LEN - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_err("security", "device key %s: short read", path);
            rc = SECRETBOX_E_KEYFILE;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (rc != SECRETBOX_OK)
        OPENSSL_cleanse(key, DEVICE_KEY_LEN);
    return rc;
}

int secretbox_open(struct secretbox **out, const char *state_dir)
{
    if (!out)
        return SECRETBOX_E_INVALID;
    *out = NULL;
    if (!state_dir)
        return SECRETBOX_E_INVALID;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/device.key", state_dir) >= (int)sizeof path)
        return SECRETBOX_E_INVALID;
    struct secretbox *box = calloc(1, sizeof *box);
    if (!box)
        return SECRETBOX_E_NOMEM;

    int rc = read_key_file(path, box->key);
    if (rc == -ENOENT) {
        if (RAND_bytes(box->key, DEVICE_KEY_LEN) != 1) {
            rc = SECRETBOX_E_CRYPTO;
        } else {
            int wrc = atomicfile_write(path, box->key, DEVICE_KEY_LEN, 0600);
            if (wrc != 0) {
                log_err("security", "creating device key %s failed: %s", path, strerror(-wrc));
                rc = SECRETBOX_E_STORE;
            } else {
                log_notice("security", "created a new device key in %s", path);
                rc = SECRETBOX_OK;
            }
        }
    } else if (rc < 0 && rc != SECRETBOX_E_KEYFILE) {
        /* open() itself failed with another errno (ELOOP for a symlink, EACCES...). */
        log_err("security", "device key %s: %s", path, strerror(-rc));
        rc = SECRETBOX_E_KEYFILE;
    }
    if (rc != SECRETBOX_OK) {
        secretbox_close(box);
        return rc;
    }
    *out = box;
    return SECRETBOX_OK;
}

void secretbox_close(struct secretbox *box)
{
    if (!box)
        return;
    OPENSSL_cleanse(box->key, sizeof box->key);
    free(box);
}

void secretbox_free(void *p, size_t len)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}


/* AES-256-GCM fetched once: OpenSSL 3 otherwise looks it up on every use. */
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *fetched_aes_gcm;

static void fetch_cipher(void)
{
    fetched_aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *aes_256_gcm(void)
{
    pthread_once(&cipher_once, fetch_cipher);
    return fetched_aes_gcm ? fetched_aes_gcm : EVP_aes_256_gcm();
}

int secretbox_seal(const struct secretbox *box, const void *plain, size_t len, const char *context, char **out)
{
    if (out)
        *out = NULL;
    if (!box || !context || !out || (!plain && len > 0) || len > PLAIN_MAX)
        return SECRETBOX_E_INVALID;
    size_t context_len = strlen(context);
    if (context_len > INT_MAX)
        return SECRETBOX_E_INVALID;

    size_t raw_len = NONCE_LEN + len + TAG_LEN;
    unsigned char *raw = malloc(raw_len);
    /* "v1:" + base64 + NUL */
    size_t text_len = SEALED_PREFIX_LEN + 4 * ((raw_len + 2) / 3) + 1;
    char *text = malloc(text_len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = SECRETBOX_OK;
    if (!raw || !text || !ctx) {
        rc = SECRETBOX_E_NOMEM;
        goto done;
    }
    unsigned char *nonce = raw;
    unsigned char *ciphertext = raw + NONCE_LEN;
    unsigned char *tag = raw + NONCE_LEN + len;
    int n = 0, final_n = 0;
    if (RAND_bytes(nonce, NONCE_LEN) != 1 ||
        EVP_EncryptInit_ex(ctx, aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, box->key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)context, (int)context_len) != 1 ||
        (len > 0 && EVP_EncryptUpdate(ctx, ciphertext, &n, plain, (int)len) != 1) ||
        EVP_EncryptFinal_ex(ctx, ciphertext + (len > 0 ? n : 0), &final_n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1) {
        rc = SECRETBOX_E_CRYPTO;
        goto done;
    }
    memcpy(text, SEALED_PREFIX, SEALED_PREFIX_LEN);
    EVP_EncodeBlock((unsigned char *)text + SEALED_PREFIX_LEN, raw, (int)raw_len);
    *out = text;
    text = NULL;
done:
    EVP_CIPHER_CTX_free(ctx);
    free(raw); /* ciphertext only, nothing secret */
    free(text);
    return rc;
}

static int is_base64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Decodes strict base64 (length a multiple of 4, '=' only as final padding)
 * into a malloc'd buffer. EVP_DecodeBlock counts padding as zero bytes and
 * skips whitespace, so the checks happen here. */
static int decode_base64(const char *b64, unsigned char **out, size_t *out_len)
{
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > INT_MAX)
        return SECRETBOX_E_CORRUPT;
    size_t padding = 0;
    if (b64[len - 1] == '=')
        padding = b64[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - padding; i++)
        if (!is_base64_char((unsigned char)b64[i]))
            return SECRETBOX_E_CORRUPT;
    unsigned char *buf = malloc(len / 4 * 3);
    if (!buf)
        return SECRETBOX_E_NOMEM;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3) {
        free(buf);
        return SECRETBOX_E_CORRUPT;
    }
    *out = buf;
    *out_len = (size_t)n - padding;
    return SECRETBOX_OK;
}

int secretbox_unseal(const struct secretbox *box, const char *sealed, const char *context,
                     unsigned char **plain, size_t *len)
{
    if (plain)
        *plain = NULL;
    if (len)
        *len = 0;
    if (!box || !sealed || !context || !plain || !len)
        return SECRETBOX_E_INVALID;
    size_t context_len = strlen(context);
    if (context_len > INT_MAX)
        return SECRETBOX_E_INVALID;
    if (strncmp(sealed, SEALED_PREFIX, SEALED_PREFIX_LEN) != 0)
        return SECRETBOX_E_CORRUPT;

    unsigned char *raw = NULL;
    size_t raw_len = 0;
    int rc = decode_base64(sealed + SEALED_PREFIX_LEN, &raw, &raw_len);
    if (rc != SECRETBOX_OK)
        return rc;
    if (raw_len < NONCE_LEN + TAG_LEN || raw_len - NONCE_LEN - TAG_LEN > PLAIN_MAX) {
        free(raw);
        return SECRETBOX_E_CORRUPT;
    }
    size_t ct_len = raw_len - NONCE_LEN - TAG_LEN;
    const unsigned char *nonce = raw;
    const unsigned char *ciphertext = raw + NONCE_LEN;
    unsigned char *tag = raw + NONCE_LEN + ct_len;

    unsigned char *out = malloc(ct_len + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, final_n = 0;
    if (!out || !ctx) {
        rc = out ? SECRETBOX_E_CRYPTO : SECRETBOX_E_NOMEM;
    } else if (EVP_DecryptInit_ex(ctx, aes_256_gcm(), NULL, NULL, NULL) != 1 ||
               EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
               EVP_DecryptInit_ex(ctx, NULL, NULL, box->key, nonce) != 1 ||
               EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)context, (int)context_len) != 1 ||
               (ct_len > 0 && EVP_DecryptUpdate(ctx, out, &n, ciphertext, (int)ct_len) != 1) ||
               EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1) {
        rc = SECRETBOX_E_CRYPTO;
    } else if (EVP_DecryptFinal_ex(ctx, out + (ct_len > 0 ? n : 0), &final_n) != 1) {
        /* Wrong key, wrong context or altered bytes: indistinguishable by design. */
        rc = SECRETBOX_E_CORRUPT;
    }
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    if (rc != SECRETBOX_OK) {
        secretbox_free(out, ct_len + 1);
        return rc;
    }
    out[ct_len] = '\0';
    *plain = out;
    *len = ct_len;
    return SECRETBOX_OK;
}

int secretbox_mac(const struct secretbox *box, const char *purpose, const void *data, size_t len,
                  unsigned char out[32])
{
    if (!box || !purpose || !out || (!data && len > 0))
        return SECRETBOX_E_INVALID;
    char label[sizeof "opennvt:" + PURPOSE_MAX];
    int label_len = snprintf(label, sizeof label, "opennvt:%s", purpose);
    if (label_len < 0 || (size_t)label_len >= sizeof label)
        return SECRETBOX_E_INVALID;

    /* A subkey per purpose, so a fingerprint made for one use can never be
     * presented as a MAC of another. */
    unsigned char subkey[32];
    size_t subkey_len = 0;
    int rc = SECRETBOX_OK;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, box->key, sizeof box->key, (const unsigned char *)label,
                   (size_t)label_len, subkey, sizeof subkey, &subkey_len) ||
        subkey_len != sizeof subkey) {
        rc = SECRETBOX_E_CRYPTO;
    } else {
        static const unsigned char empty[1];
        size_t out_len = 0;
        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, subkey, sizeof subkey, len > 0 ? data : empty, len,
                       out, 32, &out_len) ||
            out_len != 32)
            rc = SECRETBOX_E_CRYPTO;
    }
    OPENSSL_cleanse(subkey, sizeof subkey);
    return rc;
}
