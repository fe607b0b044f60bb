/* Firmware upgrade packages (ONVIF UpgradeSystemFirmware). A package is a
 * CMS SignedData (DER, content attached) whose content starts with the line
 * "OPENNVT-FIRMWARE version=<version>\n" followed by the payload. It is
 * accepted only when its signature verifies with OpenSSL against the
 * firmware trust anchors (a PEM file of CA certificates) before anything is
 * written; then the whole signed package is staged atomically as
 * state_dir/firmware/staged.pkg (0600) with staged.version beside it, for
 * the service manager to install (see README: "Firmware"). Nothing running
 * is replaced by the daemon itself. */
#ifndef OPENNVT_FIRMWARE_H
#define OPENNVT_FIRMWARE_H

#include <stddef.h>

#define FIRMWARE_VERSION_MAX 64

enum firmware_error {
    FIRMWARE_OK = 0,
    FIRMWARE_E_NO_TRUST = -1,    /* no trust anchors configured or readable: every package is refused */
    FIRMWARE_E_FORMAT = -2,      /* not a CMS SignedData package, or no OPENNVT-FIRMWARE header */
    FIRMWARE_E_SIGNATURE = -3,   /* the signature does not verify against the trust anchors */
    FIRMWARE_E_IO = -4,          /* could not stage */
};

/* Verifies pkg; on success stages it and copies the version. *why: static text. */
int firmware_verify_and_stage(const char *state_dir, const char *trust_pem, const unsigned char *pkg, size_t len,
                              char version[FIRMWARE_VERSION_MAX], const char **why);

const char *firmware_strerror(int err);

#endif
