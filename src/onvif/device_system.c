/* Device service, system part: the device clock (Get/SetSystemDateAndTime,
 * Get/SetNTP) and the device log (GetSystemLog). Thin handlers over devclock
 * and devicelog. */
#include "opennvt/backup.h"
#include "opennvt/devclock.h"
#include "opennvt/devicelog.h"
#include "opennvt/firmware.h"
#include "opennvt/log.h"
#include "opennvt/keystore.h"
#include "opennvt/onvif.h"
#include "opennvt/secretbox.h"
#include "soap_values.h"
#include "soapH.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GetSystemLog returns at most this much of each store (newest part). */
#define SYSTEM_LOG_MAX_BYTES (512 * 1024)

static struct devclock *clock_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->clock;
}

static struct tt__DateTime *datetime_of(struct soap *soap, const struct tm *tm)
{
    struct tt__DateTime *dt = onvif_zalloc(soap, sizeof *dt);
    if (!dt)
        return NULL;
    dt->Date = onvif_zalloc(soap, sizeof *dt->Date);
    dt->Time = onvif_zalloc(soap, sizeof *dt->Time);
    if (!dt->Date || !dt->Time)
        return NULL;
    dt->Date->Year = tm->tm_year + 1900;
    dt->Date->Month = tm->tm_mon + 1;
    dt->Date->Day = tm->tm_mday;
    dt->Time->Hour = tm->tm_hour;
    dt->Time->Minute = tm->tm_min;
    dt->Time->Second = tm->tm_sec;
    return dt;
}

int __tds__GetSystemDateAndTime(struct soap *soap, struct _tds__GetSystemDateAndTime *req,
                                struct _tds__GetSystemDateAndTimeResponse *resp)
{
    (void)req;
    struct devclock *c = clock_of(soap);
    struct devclock_config cfg;
    devclock_get(c, &cfg);
    time_t now = devclock_now(c);
    struct tm utc, local;
    long offset = 0;
    int dst = 0;
    gmtime_r(&now, &utc);
    if (devclock_local(c, now, &local, &offset, &dst) != DEVCLOCK_OK)
        local = utc;
    struct tt__SystemDateTime *sdt = onvif_zalloc(soap, sizeof *sdt);
    if (!sdt || !(sdt->TimeZone = onvif_zalloc(soap, sizeof *sdt->TimeZone)))
        return SOAP_EOM;
    sdt->DateTimeType = cfg.type == DEVCLOCK_NTP ? tt__SetDateTimeType__NTP : tt__SetDateTimeType__Manual;
    sdt->DaylightSavings = cfg.daylight_savings ? xsd__boolean__true_ : xsd__boolean__false_;
    sdt->TimeZone->TZ = soap_strdup(soap, cfg.tz[0] ? cfg.tz : "UTC0");
    sdt->UTCDateTime = datetime_of(soap, &utc);
    sdt->LocalDateTime = datetime_of(soap, &local);
    resp->SystemDateAndTime = sdt;
    return sdt->UTCDateTime && sdt->LocalDateTime ? SOAP_OK : SOAP_EOM;
}

int __tds__SetSystemDateAndTime(struct soap *soap, struct _tds__SetSystemDateAndTime *req,
                                struct _tds__SetSystemDateAndTimeResponse *resp)
{
    (void)resp;
    struct devclock *c = clock_of(soap);
    const char *tz = req->TimeZone ? (req->TimeZone->TZ ? req->TimeZone->TZ : "") : NULL;
    if (tz && devclock_tz_valid(tz) != DEVCLOCK_OK)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidTimeZone", "Not a POSIX time zone (IEEE 1003.1 TZ)");
    int ntp = req->DateTimeType == tt__SetDateTimeType__NTP;
    struct devclock_config cfg;
    devclock_get(c, &cfg);
    if (ntp && cfg.n_ntp == 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NtpServerUndefined", "No NTP server is configured");
    struct tm utc;
    const struct tm *set_utc = NULL;
    if (!ntp) {
        const struct tt__DateTime *dt = req->UTCDateTime;
        if (dt && (!dt->Date || !dt->Time))
            return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidDateTime", "UTCDateTime needs Date and Time");
    }
    if (!ntp && req->UTCDateTime) {
        const struct tt__DateTime *dt = req->UTCDateTime;
        memset(&utc, 0, sizeof utc);
        utc.tm_year = dt->Date->Year - 1900;
        utc.tm_mon = dt->Date->Month - 1;
        utc.tm_mday = dt->Date->Day;
        utc.tm_hour = dt->Time->Hour;
        utc.tm_min = dt->Time->Minute;
        utc.tm_sec = dt->Time->Second;
        set_utc = &utc;
    }
    int rc = devclock_set(c, ntp ? DEVCLOCK_NTP : DEVCLOCK_MANUAL, req->DaylightSavings == xsd__boolean__true_, tz, set_utc);
    if (rc == DEVCLOCK_E_TIME)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidDateTime", devclock_strerror(rc));
    if (rc == DEVCLOCK_E_TZ)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidTimeZone", devclock_strerror(rc));
    if (rc != DEVCLOCK_OK)
        return onvif_receiver_fault(soap, "ter:Action", NULL, devclock_strerror(rc));
    const struct onvif_request *r = onvif_request_of(soap);
    log_notice("access", "%s: date and time set by '%s': %s%s%s", r->peer, r->principal.user, ntp ? "NTP" : "Manual",
               tz ? ", time zone " : "", tz ? (tz[0] ? tz : "UTC0") : "");
    if (ntp && r->dev->clock_sync_now)
        r->dev->clock_sync_now(r->dev->clock_sync_arg);
    return SOAP_OK;
}

static struct tt__NetworkHost *hosts_out(struct soap *soap, const struct devclock_config *cfg)
{
    struct tt__NetworkHost *h = cfg->n_ntp ? onvif_zalloc(soap, cfg->n_ntp * sizeof *h) : NULL;
    for (size_t i = 0; h && i < cfg->n_ntp; i++) {
        unsigned char buf[16];
        const char *name = cfg->ntp[i];
        if (inet_pton(AF_INET, name, buf) == 1) {
            h[i].Type = tt__NetworkHostType__IPv4;
            h[i].IPv4Address = soap_strdup(soap, name);
        } else if (inet_pton(AF_INET6, name, buf) == 1) {
            h[i].Type = tt__NetworkHostType__IPv6;
            h[i].IPv6Address = soap_strdup(soap, name);
        } else {
            h[i].Type = tt__NetworkHostType__DNS;
            h[i].DNSname = soap_strdup(soap, name);
        }
    }
    return h;
}

int __tds__GetNTP(struct soap *soap, struct _tds__GetNTP *req, struct _tds__GetNTPResponse *resp)
{
    (void)req;
    struct devclock_config cfg;
    devclock_get(clock_of(soap), &cfg);
    struct tt__NTPInformation *info = onvif_zalloc(soap, sizeof *info);
    if (!info)
        return SOAP_EOM;
    info->FromDHCP = xsd__boolean__false_;
    info->NTPManual = hosts_out(soap, &cfg);
    info->__sizeNTPManual = info->NTPManual ? (int)cfg.n_ntp : 0;
    resp->NTPInformation = info;
    return SOAP_OK;
}

int __tds__SetNTP(struct soap *soap, struct _tds__SetNTP *req, struct _tds__SetNTPResponse *resp)
{
    (void)resp;
    if (req->FromDHCP == xsd__boolean__true_)
        return onvif_receiver_fault(soap, "ter:ActionNotSupported", NULL,
                                    "NTP servers from DHCP are not supported: the host manages DHCP");
    if (req->__sizeNTPManual < 0 || req->__sizeNTPManual > DEVCLOCK_MAX_NTP)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidDnsName", "At most 4 NTP servers");
    const char *names[DEVCLOCK_MAX_NTP];
    size_t n = 0;
    for (int i = 0; i < req->__sizeNTPManual; i++) {
        const struct tt__NetworkHost *h = &req->NTPManual[i];
        unsigned char buf[16];
        const char *name = NULL, *subcode = "ter:InvalidDnsName";
        if (h->Type == tt__NetworkHostType__IPv4) {
            name = h->IPv4Address, subcode = "ter:InvalidIPv4Address";
            if (!name || inet_pton(AF_INET, name, buf) != 1)
                return onvif_sender_fault(soap, "ter:InvalidArgVal", subcode, "Not an IPv4 address");
        } else if (h->Type == tt__NetworkHostType__IPv6) {
            name = h->IPv6Address, subcode = "ter:InvalidIPv6Address";
            if (!name || inet_pton(AF_INET6, name, buf) != 1)
                return onvif_sender_fault(soap, "ter:InvalidArgVal", subcode, "Not an IPv6 address");
        } else {
            name = h->DNSname;
        }
        if (!name)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", subcode, "No server given");
        names[n++] = name;
    }
    struct devclock_config cfg;
    devclock_get(clock_of(soap), &cfg);
    if (n == 0 && cfg.type == DEVCLOCK_NTP)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:TimeSyncedToNtp",
                                  "The date and time come from NTP: at least one server is needed");
    int rc = devclock_set_ntp(clock_of(soap), names, n);
    if (rc == DEVCLOCK_E_NTP_SERVER)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidDnsName", devclock_strerror(rc));
    if (rc != DEVCLOCK_OK)
        return onvif_receiver_fault(soap, "ter:Action", NULL, devclock_strerror(rc));
    const struct onvif_request *r = onvif_request_of(soap);
    log_notice("access", "%s: NTP servers set by '%s' (%zu)", r->peer, r->principal.user, n);
    if (cfg.type == DEVCLOCK_NTP && r->dev->clock_sync_now)
        r->dev->clock_sync_now(r->dev->clock_sync_arg);
    return SOAP_OK;
}

/* The persistent log (across restarts) and then this run's volatile one,
 * each under a heading line; malloc'd. 0, or -1 (unreadable), or 1 (empty). */
static int system_log_text(struct devicelog *d, enum devicelog_kind kind, char **out, size_t *out_len)
{
    char *kept = NULL, *run = NULL;
    size_t kept_len = 0, run_len = 0;
    unsigned long dropped = 0;
    *out = NULL;
    if (!d || devicelog_read_persistent(d, kind, SYSTEM_LOG_MAX_BYTES, &kept, &kept_len) != DEVICELOG_OK) {
        return -1;
    }
    if (devicelog_read_volatile(d, kind, SYSTEM_LOG_MAX_BYTES, &run, &run_len, &dropped) != DEVICELOG_OK) {
        free(kept);
        return -1;
    }
    int rc = kept_len == 0 && run_len == 0 ? 1 : 0;
    size_t cap = kept_len + run_len + 256;
    char *text = rc == 0 ? malloc(cap) : NULL;
    if (text) {
        int n = snprintf(text, cap, "# persistent log (kept across restarts)\n%s%s# this run (volatile%s)\n", kept,
                         kept_len && kept[kept_len - 1] != '\n' ? "\n" : "", dropped ? ", oldest lines dropped" : "");
        if (n > 0 && (size_t)n < cap)
            snprintf(text + n, cap - (size_t)n, "%s", run);
        *out = text;
        *out_len = strlen(text);
    } else if (rc == 0) {
        rc = -1;
    }
    free(kept);
    free(run);
    return rc;
}

int __tds__GetSystemLog(struct soap *soap, struct _tds__GetSystemLog *req, struct _tds__GetSystemLogResponse *resp)
{
    struct devicelog *d = onvif_request_of(soap)->dev->devicelog;
    enum devicelog_kind kind = req->LogType == tt__SystemLogType__Access ? DEVICELOG_ACCESS : DEVICELOG_SYSTEM;
    const char *unavailable = kind == DEVICELOG_ACCESS ? "ter:AccesslogUnavailable" : "ter:SystemlogUnavailable";
    char *text = NULL;
    size_t len = 0;
    int rc = system_log_text(d, kind, &text, &len);
    if (rc != 0)
        return onvif_sender_fault(soap, "ter:InvalidArgs", unavailable, rc > 0 ? "The log is empty" : "The log cannot be read");
    resp->SystemLog = onvif_zalloc(soap, sizeof *resp->SystemLog);
    if (resp->SystemLog)
        resp->SystemLog->String = soap_strdup(soap, text);
    free(text);
    return resp->SystemLog && resp->SystemLog->String ? SOAP_OK : SOAP_EOM;
}

/* ---- backup and restore ----------------------------------------------------- */

/* The backup passphrase is the keystore passphrase with this alias
 * (tas:UploadPassphrase): no passphrase, no backup. */
#define BACKUP_PASSPHRASE_ALIAS "backup"
#define BACKUP_FILE_NAME "opennvt-backup.bin"

static int backup_passphrase(struct soap *soap, char **out)
{
    int rc = keystore_passphrase_by_alias(onvif_request_of(soap)->dev->keystore, BACKUP_PASSPHRASE_ALIAS, out);
    if (rc == KEYSTORE_OK)
        return SOAP_OK;
    return onvif_receiver_fault(soap, "ter:Action", NULL,
                                rc == KEYSTORE_E_DUPLICATE
                                    ? "More than one keystore passphrase has the alias 'backup'"
                                    : "Backups are encrypted: upload a passphrase with the alias 'backup' first (UploadPassphrase)");
}

int __tds__GetSystemBackup(struct soap *soap, struct _tds__GetSystemBackup *req, struct _tds__GetSystemBackupResponse *resp)
{
    (void)req;
    char *passphrase = NULL;
    int frc = backup_passphrase(soap, &passphrase);
    if (frc != SOAP_OK)
        return frc;
    const struct onvif_request *r = onvif_request_of(soap);
    unsigned char *blob = NULL;
    size_t len = 0;
    int rc = backup_create(r->dev->cfg->state_dir, passphrase, &blob, &len);
    secretbox_free(passphrase, strlen(passphrase));
    if (rc != BACKUP_OK)
        return rc == BACKUP_E_PASSPHRASE ? onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, backup_strerror(rc))
                                         : onvif_receiver_fault(soap, "ter:Action", NULL, backup_strerror(rc));
    struct tt__BackupFile *f = onvif_zalloc(soap, sizeof *f);
    unsigned char *copy = soap_malloc(soap, len);
    if (!f || !copy || !(f->Data = onvif_zalloc(soap, sizeof *f->Data))) {
        free(blob);
        return SOAP_EOM;
    }
    memcpy(copy, blob, len);
    free(blob);
    f->Name = BACKUP_FILE_NAME;
    f->Data->xop__Include.__ptr = copy;
    f->Data->xop__Include.__size = (int)len;
    f->Data->xmime__contentType = "application/octet-stream";
    f->Data->xop__Include.type = "application/octet-stream";
    f->Data->xop__Include.id = "opennvt-backup";
    /* tt:AttachmentData is an xop:Include: the backup travels as an MTOM attachment. */
    soap_set_omode(soap, SOAP_ENC_MTOM);
    resp->BackupFiles = f;
    resp->__sizeBackupFiles = 1;
    log_notice("access", "%s: encrypted backup made by '%s' (%zu bytes)", r->peer, r->principal.user, len);
    return SOAP_OK;
}

int __tds__RestoreSystem(struct soap *soap, struct _tds__RestoreSystem *req, struct _tds__RestoreSystemResponse *resp)
{
    (void)resp;
    if (req->__sizeBackupFiles != 1 || !req->BackupFiles[0].Data || !req->BackupFiles[0].Data->xop__Include.__ptr)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidBackupFile", "One backup file made by GetSystemBackup is expected");
    char *passphrase = NULL;
    int frc = backup_passphrase(soap, &passphrase);
    if (frc != SOAP_OK)
        return frc;
    const struct onvif_request *r = onvif_request_of(soap);
    const struct _xop__Include *data = &req->BackupFiles[0].Data->xop__Include;
    const char *why = NULL;
    int rc = backup_stage_restore(r->dev->cfg->state_dir, data->__ptr, (size_t)data->__size, passphrase, &why);
    secretbox_free(passphrase, strlen(passphrase));
    if (rc != BACKUP_OK) {
        log_warning("access", "%s: restore by '%s' refused: %s", r->peer, r->principal.user, why ? why : backup_strerror(rc));
        return rc == BACKUP_E_IO || rc == BACKUP_E_NOMEM || rc == BACKUP_E_CRYPTO
                   ? onvif_receiver_fault(soap, "ter:Action", NULL, backup_strerror(rc))
                   : onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidBackupFile", why ? why : backup_strerror(rc));
    }
    log_notice("access", "%s: configuration restore by '%s' verified; the services restart with it", r->peer,
               r->principal.user);
    if (r->dev->request_restart)
        r->dev->request_restart(r->dev->restart_arg);
    return SOAP_OK;
}

/* ---- firmware ------------------------------------------------------------------ */

int __tds__UpgradeSystemFirmware(struct soap *soap, struct _tds__UpgradeSystemFirmware *req,
                                 struct _tds__UpgradeSystemFirmwareResponse *resp)
{
    const struct onvif_request *r = onvif_request_of(soap);
    if (!req->Firmware || !req->Firmware->xop__Include.__ptr || req->Firmware->xop__Include.__size <= 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidFirmware", "No firmware package attached");
    char version[FIRMWARE_VERSION_MAX] = "";
    const char *why = NULL;
    int rc = firmware_verify_and_stage(r->dev->cfg->state_dir, r->dev->cfg->firmware_trust, req->Firmware->xop__Include.__ptr,
                                       (size_t)req->Firmware->xop__Include.__size, version, &why);
    if (rc != FIRMWARE_OK) {
        log_warning("access", "%s: firmware package from '%s' refused: %s", r->peer, r->principal.user,
                    why ? why : firmware_strerror(rc));
        return rc == FIRMWARE_E_IO ? onvif_receiver_fault(soap, "ter:Action", NULL, firmware_strerror(rc))
                                   : onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidFirmware",
                                                        why ? why : firmware_strerror(rc));
    }
    log_notice("access", "%s: firmware %s verified and staged by '%s'", r->peer, version, r->principal.user);
    char msg[128];
    snprintf(msg, sizeof msg, "Firmware %s verified and staged; the service manager installs it at the next restart",
             version);
    resp->Message = soap_strdup(soap, msg);
    return SOAP_OK;
}

/* ---- the same over HTTP (GetSystemUris) ------------------------------------------ */

#define SYSTEM_LOG_PATH "/onvif/logs/system"
#define ACCESS_LOG_PATH "/onvif/logs/access"
#define BACKUP_PATH "/onvif/backup"

const char *onvif_http_resource_operation(const char *path)
{
    if (!path)
        return NULL;
    if (!strcmp(path, SYSTEM_LOG_PATH) || !strcmp(path, ACCESS_LOG_PATH))
        return "tds:GetSystemLog";
    if (!strcmp(path, BACKUP_PATH))
        return "tds:GetSystemBackup";
    if (onvif_snapshot_profile_of_path(path))
        return "trt:GetSnapshotUri";
    return NULL;
}

int onvif_http_resource(struct onvif_device *dev, const char *path, unsigned char **body, size_t *len,
                        const char **content_type)
{
    *body = NULL;
    *len = 0;
    const char *snapshot_profile = onvif_snapshot_profile_of_path(path);
    if (snapshot_profile)
        return onvif_snapshot_resource(dev, snapshot_profile, body, len, content_type);
    if (!strcmp(path, SYSTEM_LOG_PATH) || !strcmp(path, ACCESS_LOG_PATH)) {
        char *text = NULL;
        int rc = system_log_text(dev->devicelog, !strcmp(path, ACCESS_LOG_PATH) ? DEVICELOG_ACCESS : DEVICELOG_SYSTEM,
                                 &text, len);
        if (rc < 0)
            return 500;
        if (rc > 0) {
            text = strdup("");
            *len = 0;
        }
        *body = (unsigned char *)text;
        *content_type = "text/plain; charset=utf-8";
        return text ? 200 : 500;
    }
    if (!strcmp(path, BACKUP_PATH)) {
        char *passphrase = NULL;
        if (keystore_passphrase_by_alias(dev->keystore, BACKUP_PASSPHRASE_ALIAS, &passphrase) != KEYSTORE_OK)
            return 409;
        int rc = backup_create(dev->cfg->state_dir, passphrase, body, len);
        secretbox_free(passphrase, strlen(passphrase));
        if (rc != BACKUP_OK)
            return 500;
        log_notice("access", "encrypted backup downloaded over HTTP (%zu bytes)", *len);
        *content_type = "application/octet-stream";
        return 200;
    }
    return 404;
}

int __tds__GetSystemUris(struct soap *soap, struct _tds__GetSystemUris *req, struct _tds__GetSystemUrisResponse *resp)
{
    (void)req;
    resp->SystemLogUris = onvif_zalloc(soap, sizeof *resp->SystemLogUris);
    struct tt__SystemLogUri *uris = onvif_zalloc(soap, 2 * sizeof *uris);
    if (!resp->SystemLogUris || !uris)
        return SOAP_EOM;
    uris[0].Type = tt__SystemLogType__System;
    uris[0].Uri = onvif_xaddr(soap, SYSTEM_LOG_PATH);
    uris[1].Type = tt__SystemLogType__Access;
    uris[1].Uri = onvif_xaddr(soap, ACCESS_LOG_PATH);
    resp->SystemLogUris->SystemLog = uris;
    resp->SystemLogUris->__sizeSystemLog = 2;
    resp->SystemBackupUri = onvif_xaddr(soap, BACKUP_PATH);
    return SOAP_OK;
}

/* ---- uploads over HTTP POST (StartSystemRestore, StartFirmwareUpgrade) ------------ */

#define RESTORE_UPLOAD_PATH "/onvif/upload/restore"
#define FIRMWARE_UPLOAD_PATH "/onvif/upload/firmware"

const char *onvif_http_upload_operation(const char *path)
{
    if (path && !strcmp(path, RESTORE_UPLOAD_PATH))
        return "tds:StartSystemRestore";
    if (path && !strcmp(path, FIRMWARE_UPLOAD_PATH))
        return "tds:StartFirmwareUpgrade";
    return NULL;
}

int onvif_http_upload(const struct onvif_request *r, const char *path, const unsigned char *body, size_t len,
                      const char **reason)
{
    *reason = NULL;
    if (!strcmp(path, RESTORE_UPLOAD_PATH)) {
        char *passphrase = NULL;
        if (keystore_passphrase_by_alias(r->dev->keystore, BACKUP_PASSPHRASE_ALIAS, &passphrase) != KEYSTORE_OK) {
            *reason = "no keystore passphrase with the alias 'backup'";
            return 409;
        }
        int rc = backup_stage_restore(r->dev->cfg->state_dir, body, len, passphrase, reason);
        secretbox_free(passphrase, strlen(passphrase));
        if (rc != BACKUP_OK) {
            log_warning("access", "%s: restore upload by '%s' refused: %s", r->peer, r->principal.user,
                        *reason ? *reason : backup_strerror(rc));
            return rc == BACKUP_E_IO || rc == BACKUP_E_NOMEM || rc == BACKUP_E_CRYPTO ? 500 : 400;
        }
        log_notice("access", "%s: configuration restore uploaded by '%s' verified; the services restart with it", r->peer,
                   r->principal.user);
        if (r->dev->request_restart)
            r->dev->request_restart(r->dev->restart_arg);
        return 200;
    }
    if (!strcmp(path, FIRMWARE_UPLOAD_PATH)) {
        char version[FIRMWARE_VERSION_MAX] = "";
        int rc = firmware_verify_and_stage(r->dev->cfg->state_dir, r->dev->cfg->firmware_trust, body, len, version, reason);
        if (rc != FIRMWARE_OK) {
            log_warning("access", "%s: firmware upload from '%s' refused: %s", r->peer, r->principal.user,
                        *reason ? *reason : firmware_strerror(rc));
            return rc == FIRMWARE_E_IO ? 500 : 400;
        }
        log_notice("access", "%s: firmware %s uploaded, verified and staged by '%s'", r->peer, version, r->principal.user);
        return 200;
    }
    return 404;
}

int __tds__StartSystemRestore(struct soap *soap, struct _tds__StartSystemRestore *req,
                              struct _tds__StartSystemRestoreResponse *resp)
{
    (void)req;
    resp->UploadUri = onvif_xaddr(soap, RESTORE_UPLOAD_PATH);
    resp->ExpectedDownTime = "PT5S";
    return SOAP_OK;
}

int __tds__StartFirmwareUpgrade(struct soap *soap, struct _tds__StartFirmwareUpgrade *req,
                                struct _tds__StartFirmwareUpgradeResponse *resp)
{
    (void)req;
    resp->UploadUri = onvif_xaddr(soap, FIRMWARE_UPLOAD_PATH);
    resp->UploadDelay = "PT0S";
    resp->ExpectedDownTime = "PT0S";   /* staged only; the service manager installs it */
    return SOAP_OK;
}
