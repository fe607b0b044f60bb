/* Encrypted configuration backups (ONVIF GetSystemBackup / RestoreSystem).
 * A backup holds the whole configuration: the device key and everything
 * sealed with it (users, keystore, device CA), the IP filter, the
 * authentication policy, network and TLS settings, the clock settings; not
 * the device identity (device-uuid), the log, or the factory identity.
 * It is always encrypted: AES-256-GCM under a key derived from a passphrase
 * with scrypt (N = 2^15, r = 8, p = 1; the parameters travel in the header,
 * which is authenticated too; a restore accepts N up to 2^16 and p up to 2,
 * so a forged header cannot make the device spend a gigabyte before the tag
 * is checked). There is no backup without a passphrase.
 *
 * Restore is all-or-nothing: the backup is decrypted and verified (tag), its
 * files checked against the list and opened by the modules that own them in
 * a staging directory; only then is it marked ready. The files are moved
 * into place by backup_apply_staged at the next start of the services, which
 * also completes a move a crash interrupted; until then nothing live
 * changes. */
#ifndef OPENNVT_BACKUP_H
#define OPENNVT_BACKUP_H

#include <stddef.h>

#define BACKUP_MAX_BYTES (8 * 1024 * 1024)
#define BACKUP_PASSPHRASE_MIN 8

enum backup_error {
    BACKUP_OK = 0,
    BACKUP_E_IO = -1,          /* state could not be read or staged */
    BACKUP_E_NOMEM = -2,
    BACKUP_E_FORMAT = -3,      /* not an OpenNVT backup, or malformed / unsupported parameters */
    BACKUP_E_AUTH = -4,        /* wrong passphrase, or the backup was altered */
    BACKUP_E_CONTENT = -5,     /* a file in it is unknown, or would not load */
    BACKUP_E_CRYPTO = -6,
    BACKUP_E_PASSPHRASE = -7,  /* no passphrase, or shorter than BACKUP_PASSPHRASE_MIN */
};

/* The backup of state_dir, malloc'd. */
int backup_create(const char *state_dir, const char *passphrase, unsigned char **out, size_t *len);

/* Verifies buf and stages it for the next start (see the top). *why (may be
 * NULL) names what failed, static text. */
int backup_stage_restore(const char *state_dir, const unsigned char *buf, size_t len, const char *passphrase,
                         const char **why);

/* Moves a staged restore into place; call before any module opens the state.
 * Returns 1 when it applied one, 0 when none was staged, or an error. */
int backup_apply_staged(const char *state_dir);

const char *backup_strerror(int err);

#endif
