/* The device log's stores (ONVIF GetSystemLog; the hardening guides' "watch
 * the log"): two logs, System and Access, each kept in
 *  - a volatile ring buffer in memory (this run only, bounded bytes, oldest
 *    lines dropped first, counted), and
 *  - a persistent file under the log directory (state_dir/log/system.log,
 *    access.log), rotated by size (system.log.1 ... .N), bounded total,
 *    surviving restarts and factory resets (the directory is outside what a
 *    reset wipes).
 * Lines arrive formatted by log.c ("2026-12-02T04:09:10.147Z notice  soap  text")
 * and are stored as given, with control characters already neutralised.
 * Optionally each line is also forwarded to a syslog server (RFC 5424 over
 * UDP, RFC 5426), off by default. Thread-safe; adding never blocks on disk
 * for long (one buffered write + fflush per line; no fsync per line). */
#ifndef OPENNVT_DEVICELOG_H
#define OPENNVT_DEVICELOG_H

#include "opennvt/log.h"

#include <stddef.h>

enum devicelog_kind { DEVICELOG_SYSTEM = 0, DEVICELOG_ACCESS = 1 };

enum devicelog_error {
    DEVICELOG_OK = 0,
    DEVICELOG_E_IO = -1,          /* log directory or file unusable */
    DEVICELOG_E_NOMEM = -2,
    DEVICELOG_E_INVALID = -3,     /* bad settings (sizes, syslog address) */
};

struct devicelog_settings {
    size_t ring_bytes;            /* per log, volatile (0 = 256 KiB) */
    size_t file_bytes;            /* per file before rotation (0 = 1 MiB) */
    int files;                    /* rotated files kept besides the current one (0 = 4) */
    enum log_level persist_level; /* lines at or above this are persisted too (System log) */
    /* Syslog forwarding: NULL or "" = off; "host" or "host:port" (IPv4,
     * [IPv6]:port, or a name resolved once at open), default port 514. */
    const char *syslog_server;
    const char *hostname;         /* RFC 5424 HOSTNAME (NULL = gethostname) */
};

struct devicelog;

/* Creates dir (0700) if needed and opens the current files (0600). */
int devicelog_open(struct devicelog **out, const char *dir, const struct devicelog_settings *s);
void devicelog_close(struct devicelog *d);

/* Adds one line to a log: always to the ring; to the file when kind is
 * ACCESS or level is at or above persist_level; forwarded when on. */
void devicelog_add(struct devicelog *d, enum devicelog_kind kind, enum log_level level, const char *area,
                   const char *line);

/* An Access-log line goes to both logs; it is forwarded once, as Access
 * (authpriv). */
void devicelog_add_access(struct devicelog *d, enum log_level level, const char *area, const char *line);

/* The persistent log (rotated files oldest first, then the current one) as
 * one malloc'd NUL-terminated text, at most max_bytes (the newest part; 0 =
 * no limit). */
int devicelog_read_persistent(struct devicelog *d, enum devicelog_kind kind, size_t max_bytes, char **text, size_t *len);
/* The volatile ring of this run, oldest first, same rules; *dropped gets
 * how many lines fell out of the ring (may be NULL). */
int devicelog_read_volatile(struct devicelog *d, enum devicelog_kind kind, size_t max_bytes, char **text, size_t *len,
                            unsigned long *dropped);

/* The process-wide log that log.c feeds (NULL: none). main sets it once
 * open; log_msg then adds every line it prints. */
void devicelog_set_global(struct devicelog *d);
struct devicelog *devicelog_global(void);

const char *devicelog_strerror(int err);

#endif
