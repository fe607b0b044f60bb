/* Encrypted configuration backups and the staged, crash-safe restore.
 *
 * Format: "ONVTBAK1" | u8 log2(N) | u8 r | u8 p | u8 0 | salt[16] | nonce[12]
 *         | ciphertext | tag[16]; the 40-byte header is the GCM AAD.
 * Plaintext: entries of u16 name length | name | u32 data length | data. */
#include "opennvt/backup.h"
#include "opennvt/atomicfile.h"
#include "opennvt/authn_store.h"
#include "opennvt/ipfilter.h"
#include "opennvt/keystore.h"
#include "opennvt/log.h"
#include "opennvt/secretbox.h"
#include "opennvt/tlspolicy.h"
#include "opennvt/users.h"

#include <libxml/parser.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "ONVTBAK1"
#define HEADER_LEN 40
#define SALT_LEN 16
#define NONCE_LEN 12
#define TAG_LEN 16
#define SCRYPT_LOG2_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define STAGING "restore.staging"
#define READY "restore.ready"
#define MANIFEST "MANIFEST"

/* What a backup holds: the configuration, not the identity or the log. The
 * device key comes first so that a staged restore opens with it. */
static const char *const backup_files[] = {
    "device.key", "users.xml", "keystore.xml", "deviceca.xml", "authn.xml",
    "ipfilter.xml", "tlspolicy.xml", "netcfg.xml", "clock.xml", "media.xml",
};
#define N_BACKUP_FILES (sizeof backup_files / sizeof backup_files[0])

const char *backup_strerror(int err)
{
    switch (err) {
    case BACKUP_OK: return "ok";
    case BACKUP_E_IO: return "the state could not be read or staged";
    case BACKUP_E_NOMEM: return "out of memory";
    case BACKUP_E_FORMAT: return "not an OpenNVT backup, or a malformed one";
    case BACKUP_E_AUTH: return "wrong passphrase, or the backup was altered";
    case BACKUP_E_CONTENT: return "the backup holds a file that is unknown or would not load";
    case BACKUP_E_CRYPTO: return "encryption failed";
    case BACKUP_E_PASSPHRASE: return "a backup passphrase of at least 8 characters is needed";
    }
    return "unknown error";
}

static int known_file(const char *name, size_t len)
{
    for (size_t i = 0; i < N_BACKUP_FILES; i++)
        if (strlen(backup_files[i]) == len && !memcmp(backup_files[i], name, len))
            return (int)i;
    return -1;
}

static int derive_key(const char *passphrase, const unsigned char *salt, unsigned log2_n, unsigned r, unsigned p,
                      unsigned char key[32])
{
    uint64_t n = (uint64_t)1 << log2_n;
    uint64_t maxmem = 128 * r * (n + p + 2) + (1u << 20);
    return EVP_PBE_scrypt(passphrase, strlen(passphrase), salt, SALT_LEN, n, r, p, maxmem, key, 32) == 1 ? 0 : -1;
}

/* AES-256-GCM one shot; decrypt verifies the tag. */
static int gcm(int encrypt, const unsigned char key[32], const unsigned char *nonce, const unsigned char *aad,
               const unsigned char *in, size_t len, unsigned char *out, unsigned char tag[TAG_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, ok = ctx && len <= INT32_MAX &&
                       EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) == 1 &&
                       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
                       EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) == 1 &&
                       EVP_CipherUpdate(ctx, NULL, &outl, aad, HEADER_LEN) == 1 &&
                       EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1;
    if (ok && !encrypt)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(ctx, out + outl, &outl) == 1;
    if (ok && encrypt)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* 0 with the file's bytes, 1 when absent, -1 on any other failure. */
static int read_file(const char *path, unsigned char **data, size_t *len)
{
    char *buf = NULL;
    int rc = atomicfile_read(path, BACKUP_MAX_BYTES, &buf, len);
    *data = (unsigned char *)buf;
    return rc == 0 ? 0 : rc == -ENOENT ? 1 : -1;
}

int backup_create(const char *state_dir, const char *passphrase, unsigned char **out, size_t *out_len)
{
    if (!state_dir || !out || !out_len)
        return BACKUP_E_IO;
    *out = NULL;
    if (!passphrase || strlen(passphrase) < BACKUP_PASSPHRASE_MIN)
        return BACKUP_E_PASSPHRASE;
    /* Plaintext container, wiped after use. */
    size_t cap = 0;
    unsigned char *plain = NULL;
    size_t used = 0;
    int rc = BACKUP_OK;
    for (size_t i = 0; i < N_BACKUP_FILES && rc == BACKUP_OK; i++) {
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", state_dir, backup_files[i]);
        unsigned char *data;
        size_t len;
        int r = read_file(path, &data, &len);
        if (r > 0)
            continue;   /* absent: the module's defaults */
        if (r < 0) {
            rc = BACKUP_E_IO;
            break;
        }
        size_t name_len = strlen(backup_files[i]);
        size_t need = used + 2 + name_len + 4 + len;
        if (need > BACKUP_MAX_BYTES) {
            rc = BACKUP_E_IO;
        } else if (need > cap) {
            size_t ncap = need * 2 > BACKUP_MAX_BYTES ? BACKUP_MAX_BYTES : need * 2;
            unsigned char *grown = malloc(ncap);
            if (!grown) {
                rc = BACKUP_E_NOMEM;
            } else {
                if (plain)
                    memcpy(grown, plain, used);
                secretbox_free(plain, cap);
                plain = grown;
                cap = ncap;
            }
        }
        if (rc == BACKUP_OK) {
            unsigned char *p = plain + used;
            *p++ = (unsigned char)(name_len >> 8);
            *p++ = (unsigned char)name_len;
            memcpy(p, backup_files[i], name_len);
            p += name_len;
            *p++ = (unsigned char)(len >> 24);
            *p++ = (unsigned char)(len >> 16);
            *p++ = (unsigned char)(len >> 8);
            *p++ = (unsigned char)len;
            memcpy(p, data, len);
            used = need;
        }
        secretbox_free(data, len);
    }
    unsigned char *blob = rc == BACKUP_OK ? malloc(HEADER_LEN + used + TAG_LEN) : NULL;
    if (rc == BACKUP_OK && !blob)
        rc = BACKUP_E_NOMEM;
    unsigned char key[32];
    if (rc == BACKUP_OK) {
        memcpy(blob, MAGIC, 8);
        blob[8] = SCRYPT_LOG2_N;
        blob[9] = SCRYPT_R;
        blob[10] = SCRYPT_P;
        blob[11] = 0;
        if (RAND_bytes(blob + 12, SALT_LEN + NONCE_LEN) != 1 ||
            derive_key(passphrase, blob + 12, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, key) != 0 ||
            gcm(1, key, blob + 12 + SALT_LEN, blob, plain, used, blob + HEADER_LEN, blob + HEADER_LEN + used) != 0)
            rc = BACKUP_E_CRYPTO;
    }
    OPENSSL_cleanse(key, sizeof key);
    secretbox_free(plain, cap);
    if (rc != BACKUP_OK) {
        free(blob);
        return rc;
    }
    *out = blob;
    *out_len = HEADER_LEN + used + TAG_LEN;
    return BACKUP_OK;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char path[2 * PATH_MAX];
            if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Every file of the staged restore opens with the module that owns it. */
static int staged_state_loads(const char *dir, const int *present, const char **why)
{
    if (!present[0]) {
        *why = "the backup has no device key";
        return BACKUP_E_CONTENT;
    }
    struct secretbox *box = NULL;
    struct users *users = NULL;
    struct ipfilter *filter = NULL;
    struct keystore *ks = NULL;
    struct tlspolicy *tp = NULL;
    int rc = BACKUP_E_CONTENT;
    struct authn_stored stored = { 0 };
    struct tlspolicy_settings tps = { .defaults = { 1, 80, 1, 443 } };
    if (secretbox_open(&box, dir) != SECRETBOX_OK)
        *why = "its device key does not load";
    else if (users_open(&users, dir, box) != USERS_OK)
        *why = "its users do not load";
    else if (ipfilter_open(&filter, dir) != IPFILTER_OK)
        *why = "its IP address filter does not load";
    else if (keystore_open(&ks, dir, NULL, box) != KEYSTORE_OK)
        *why = "its keystore does not load";
    else if (tlspolicy_open(&tp, dir, ks, &tps) != TLSPOLICY_OK)
        *why = "its TLS settings do not load";
    else if (present[4] && authn_store_load(dir, &stored) != 0)
        *why = "its authentication policy does not load";
    else
        rc = BACKUP_OK;
    /* The files the daemon parses at start without a trial here must be
     * well-formed XML at least. */
    for (size_t i = 0; rc == BACKUP_OK && i < N_BACKUP_FILES; i++) {
        if (!present[i] || (strcmp(backup_files[i], "deviceca.xml") && strcmp(backup_files[i], "netcfg.xml")))
            continue;
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, backup_files[i]);
        xmlDocPtr doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc) {
            *why = "one of its XML files is malformed";
            rc = BACKUP_E_CONTENT;
        }
        xmlFreeDoc(doc);
    }
    tlspolicy_close(tp);
    keystore_close(ks);
    ipfilter_close(filter);
    users_close(users);
    secretbox_close(box);
    return rc;
}

int backup_stage_restore(const char *state_dir, const unsigned char *buf, size_t len, const char *passphrase,
                         const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!passphrase || strlen(passphrase) < BACKUP_PASSPHRASE_MIN) {
        *why = "no backup passphrase";
        return BACKUP_E_PASSPHRASE;
    }
    if (!buf || len < HEADER_LEN + TAG_LEN || len > BACKUP_MAX_BYTES || memcmp(buf, MAGIC, 8) != 0 ||
        buf[8] < 14 || buf[8] > 16 || buf[9] != 8 || buf[10] < 1 || buf[10] > 2 || buf[11] != 0) {
        *why = "not an OpenNVT backup, or unsupported parameters";
        return BACKUP_E_FORMAT;
    }
    size_t clen = len - HEADER_LEN - TAG_LEN;
    unsigned char *plain = malloc(clen ? clen : 1);
    unsigned char key[32], tag[TAG_LEN];
    memcpy(tag, buf + len - TAG_LEN, TAG_LEN);
    int rc = BACKUP_OK;
    if (!plain)
        rc = BACKUP_E_NOMEM;
    else if (derive_key(passphrase, buf + 12, buf[8], buf[9], buf[10], key) != 0)
        rc = BACKUP_E_CRYPTO;
    else if (gcm(0, key, buf + 12 + SALT_LEN, buf, buf + HEADER_LEN, clen, plain, tag) != 0) {
        rc = BACKUP_E_AUTH;
        *why = "wrong passphrase, or the backup was altered";
    }
    OPENSSL_cleanse(key, sizeof key);
    /* Parse fully before writing anything. */
    size_t off[N_BACKUP_FILES] = { 0 }, flen[N_BACKUP_FILES] = { 0 };
    int present[N_BACKUP_FILES] = { 0 };
    for (size_t pos = 0; rc == BACKUP_OK && pos < clen;) {
        if (clen - pos < 2) {
            rc = BACKUP_E_FORMAT;
            break;
        }
        size_t nl = (size_t)plain[pos] << 8 | plain[pos + 1];
        pos += 2;
        if (clen - pos < nl + 4) {
            rc = BACKUP_E_FORMAT;
            break;
        }
        int idx = known_file((const char *)plain + pos, nl);
        pos += nl;
        size_t dl = (size_t)plain[pos] << 24 | (size_t)plain[pos + 1] << 16 | (size_t)plain[pos + 2] << 8 | plain[pos + 3];
        pos += 4;
        if (idx < 0 || present[idx] || dl > clen - pos) {
            rc = idx < 0 || present[idx] ? BACKUP_E_CONTENT : BACKUP_E_FORMAT;
            *why = idx < 0 ? "the backup holds an unknown file" : present[idx] ? "a file appears twice" : NULL;
            break;
        }
        present[idx] = 1;
        off[idx] = pos;
        flen[idx] = dl;
        pos += dl;
    }
    if (rc == BACKUP_E_FORMAT && !*why)
        *why = "the backup's contents are malformed";
    char staging[PATH_MAX + 32], ready[PATH_MAX + 32];
    snprintf(staging, sizeof staging, "%.*s/%s", PATH_MAX - 1, state_dir, STAGING);
    snprintf(ready, sizeof ready, "%.*s/%s", PATH_MAX - 1, state_dir, READY);
    if (rc == BACKUP_OK) {
        remove_dir(staging);
        if (mkdir(staging, 0700) != 0)
            rc = BACKUP_E_IO;
    }
    char manifest[512] = "";
    size_t mlen = 0;
    for (size_t i = 0; rc == BACKUP_OK && i < N_BACKUP_FILES; i++) {
        if (!present[i])
            continue;
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", staging, backup_files[i]);
        if (atomicfile_write(path, plain + off[i], flen[i], 0600) != 0)
            rc = BACKUP_E_IO;
        mlen += (size_t)snprintf(manifest + mlen, sizeof manifest - mlen, "%s\n", backup_files[i]);
    }
    if (rc == BACKUP_OK)
        rc = staged_state_loads(staging, present, why);
    if (rc == BACKUP_OK) {
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", staging, MANIFEST);
        remove_dir(ready);
        if (atomicfile_write(path, manifest, mlen, 0600) != 0 || rename(staging, ready) != 0)
            rc = BACKUP_E_IO;
        int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (rc != BACKUP_OK)
        remove_dir(staging);
    if (rc == BACKUP_E_IO && !*why)
        *why = "the restore could not be staged";
    secretbox_free(plain, clen);
    return rc;
}

/* Whether the manifest (one name per line) lists name. */
static int manifest_lists(const unsigned char *m, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t pos = 0; pos < len;) {
        size_t end = pos;
        while (end < len && m[end] != '\n')
            end++;
        if (end - pos == n && !memcmp(m + pos, name, n))
            return 1;
        pos = end + 1;
    }
    return 0;
}

int backup_apply_staged(const char *state_dir)
{
    char ready[PATH_MAX + 32], path[4 * PATH_MAX];
    snprintf(ready, sizeof ready, "%.*s/%s", PATH_MAX - 1, state_dir, READY);
    snprintf(path, sizeof path, "%s/%s", ready, MANIFEST);
    unsigned char *manifest;
    size_t mlen;
    int r = read_file(path, &manifest, &mlen);
    if (r > 0) {
        remove_dir(ready);   /* staging never completed */
        return 0;
    }
    if (r < 0)
        return BACKUP_E_IO;
    /* Idempotent: a file already moved is not staged any more, and files
     * the backup did not hold go (their defaults were the backed-up state). */
    int rc = 1;
    for (size_t i = 0; i < N_BACKUP_FILES; i++) {
        int listed = manifest_lists(manifest, mlen, backup_files[i]);
        char from[4 * PATH_MAX], to[2 * PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", ready, backup_files[i]);
        snprintf(to, sizeof to, "%s/%s", state_dir, backup_files[i]);
        if (listed) {
            if (rename(from, to) != 0 && errno != ENOENT)
                rc = BACKUP_E_IO;
        } else if (unlink(to) != 0 && errno != ENOENT) {
            rc = BACKUP_E_IO;
        }
    }
    free(manifest);
    int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    if (rc == 1) {
        remove_dir(ready);
        log_notice("system", "configuration restored from a backup");
    }
    return rc;
}
