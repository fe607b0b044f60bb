/* Firmware packages: CMS signature verification before anything is written,
 * then atomic staging for the service manager. */
#include "opennvt/firmware.h"
#include "opennvt/atomicfile.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define HEADER "OPENNVT-FIRMWARE version="

const char *firmware_strerror(int err)
{
    switch (err) {
    case FIRMWARE_OK: return "ok";
    case FIRMWARE_E_NO_TRUST: return "no firmware trust anchors are configured: every package is refused";
    case FIRMWARE_E_FORMAT: return "not a signed OpenNVT firmware package";
    case FIRMWARE_E_SIGNATURE: return "the package's signature does not verify against the firmware trust anchors";
    case FIRMWARE_E_IO: return "the package could not be staged";
    }
    return "unknown error";
}

static X509_STORE *load_trust(const char *path)
{
    if (!path || !path[0])
        return NULL;
    X509_STORE *store = X509_STORE_new();
    if (!store)
        return NULL;
    if (X509_STORE_load_file(store, path) != 1) {
        X509_STORE_free(store);
        return NULL;
    }
    /* Code-signing certificates carry no S/MIME purpose. */
    X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
    return store;
}

/* The version from the content's first line, or -1. */
static int version_of(const unsigned char *content, size_t len, char version[FIRMWARE_VERSION_MAX])
{
    size_t hl = strlen(HEADER);
    if (len < hl + 2 || memcmp(content, HEADER, hl) != 0)
        return -1;
    size_t i = hl, k = 0;
    for (; i < len && content[i] != '\n'; i++) {
        unsigned char ch = content[i];
        if (k + 1 >= FIRMWARE_VERSION_MAX || !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                                               (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-' || ch == '+'))
            return -1;
        version[k++] = (char)ch;
    }
    version[k] = '\0';
    return i < len && k > 0 ? 0 : -1;
}

int firmware_verify_and_stage(const char *state_dir, const char *trust_pem, const unsigned char *pkg, size_t len,
                              char version[FIRMWARE_VERSION_MAX], const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    X509_STORE *store = load_trust(trust_pem);
    if (!store) {
        ERR_clear_error();
        *why = firmware_strerror(FIRMWARE_E_NO_TRUST);
        return FIRMWARE_E_NO_TRUST;
    }
    int rc = FIRMWARE_OK;
    BIO *in = len <= INT_MAX ? BIO_new_mem_buf(pkg, (int)len) : NULL;
    BIO *out = BIO_new(BIO_s_mem());
    CMS_ContentInfo *cms = in ? d2i_CMS_bio(in, NULL) : NULL;
    if (!cms || !out || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        rc = FIRMWARE_E_FORMAT;
    } else if (CMS_verify(cms, NULL, store, NULL, out, CMS_BINARY) != 1) {
        rc = FIRMWARE_E_SIGNATURE;
        unsigned long e = ERR_peek_last_error();
        *why = e ? ERR_reason_error_string(e) : NULL;
    } else {
        char *content = NULL;
        long clen = BIO_get_mem_data(out, &content);
        if (clen <= 0 || version_of((const unsigned char *)content, (size_t)clen, version) != 0)
            rc = FIRMWARE_E_FORMAT;
    }
    ERR_clear_error();
    if (rc == FIRMWARE_OK) {
        char dir[PATH_MAX], path[PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%s/firmware", state_dir);
        if (atomicfile_mkdir_private(dir) != 0)
            rc = FIRMWARE_E_IO;
        snprintf(path, sizeof path, "%s/staged.pkg", dir);
        if (rc == FIRMWARE_OK && atomicfile_write(path, pkg, len, 0600) != 0)
            rc = FIRMWARE_E_IO;
        snprintf(path, sizeof path, "%s/staged.version", dir);
        char line[FIRMWARE_VERSION_MAX + 1];
        int n = snprintf(line, sizeof line, "%s\n", version);
        if (rc == FIRMWARE_OK && atomicfile_write(path, line, (size_t)n, 0600) != 0)
            rc = FIRMWARE_E_IO;
    }
    if (rc != FIRMWARE_OK && !*why)
        *why = firmware_strerror(rc);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    BIO_free(out);
    X509_STORE_free(store);
    return rc;
}
