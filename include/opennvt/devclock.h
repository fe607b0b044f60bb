/* The device clock. The daemon never sets the host's clock: device time is
 * the host's CLOCK_REALTIME plus a stored offset, set by SetSystemDateAndTime
 * (Manual) or disciplined by SNTP (NTP). It also holds what ONVIF reports
 * with it: the date/time type, the POSIX time zone (IEEE 1003.1 TZ syntax,
 * e.g. "CET-1CEST,M3.5.0,M10.5.0/3"), the daylight-saving flag and the NTP
 * servers. Local time is computed from the TZ string by this module (no
 * setenv/tzset, so it is thread-safe). State in state_dir/clock.xml (0600),
 * replaced atomically. devclock_now is lock-free. */
#ifndef OPENNVT_DEVCLOCK_H
#define OPENNVT_DEVCLOCK_H

#include <stddef.h>
#include <time.h>

#define DEVCLOCK_TZ_MAX 64              /* bytes of a TZ string */
#define DEVCLOCK_MAX_NTP 4              /* NTP servers */
#define DEVCLOCK_NTP_NAME_MAX 255       /* DNS name, IPv4 or IPv6 address, optional ":port" for IPv4/names, "[v6]:port" */

enum devclock_error {
    DEVCLOCK_OK = 0,
    DEVCLOCK_E_STORE = -1,         /* unreadable/corrupt state or could not persist; nothing changed */
    DEVCLOCK_E_NOMEM = -2,
    DEVCLOCK_E_INVALID = -3,
    DEVCLOCK_E_TZ = -4,            /* not a valid POSIX TZ string */
    DEVCLOCK_E_TIME = -5,          /* date/time out of range (year 1970..2105, fields in range) */
    DEVCLOCK_E_NTP_SERVER = -6,    /* malformed NTP server name or address, or too many */
    DEVCLOCK_E_NTP = -7,           /* no configured server gave a sane answer */
};

enum devclock_type { DEVCLOCK_MANUAL = 0, DEVCLOCK_NTP = 1 };

struct devclock_config {
    enum devclock_type type;
    int daylight_savings;           /* the flag ONVIF reports (the TZ rules decide local time) */
    char tz[DEVCLOCK_TZ_MAX];       /* "" = UTC0 */
    size_t n_ntp;
    char ntp[DEVCLOCK_MAX_NTP][DEVCLOCK_NTP_NAME_MAX + 1];
};

struct devclock_settings {
    /* The host clock (NULL = clock_gettime(CLOCK_REALTIME)); for tests. */
    void (*host_now)(struct timespec *out);
    int ntp_timeout_ms;             /* per server; 0 = 1500 */
    double ntp_max_step_s;          /* refuse an NTP answer moving the clock more than this (0 = no limit) */
    /* Once a synchronisation of this run succeeded, refuse later steps
     * larger than this (0 = no limit): a disciplined clock does not jump,
     * an answer forged on the path might. A manual set starts over. */
    double ntp_max_resync_step_s;
};

struct devclock;

/* Loads state_dir/clock.xml (absent: Manual, offset 0, UTC0, no servers). */
int devclock_open(struct devclock **out, const char *state_dir, const struct devclock_settings *s);
void devclock_close(struct devclock *c);

/* Device UTC now. */
time_t devclock_now(struct devclock *c);
void devclock_now_ts(struct devclock *c, struct timespec *out);

/* A process-wide clock for code that only needs "now" (log timestamps, the
 * authenticator, certificate checks): main sets it once; NULL = host clock. */
void devclock_set_global(struct devclock *c);
time_t devclock_global_now(void);
void devclock_global_now_ts(struct timespec *out);

void devclock_get(struct devclock *c, struct devclock_config *out);

/* SetSystemDateAndTime: type, daylight flag, TZ (NULL = keep, "" = UTC0),
 * and for Manual the new UTC date/time (utc NULL = keep the clock). All
 * validated before anything changes; persisted. */
int devclock_set(struct devclock *c, enum devclock_type type, int daylight_savings, const char *tz,
                 const struct tm *utc);
/* SetNTP (manual servers). Validated; persisted. */
int devclock_set_ntp(struct devclock *c, const char *const *servers, size_t n);

/* One SNTP (RFC 4330) exchange with each configured server in turn until one
 * gives a sane answer (mode 4, version 3 or 4, stratum 1..15, leap indicator
 * not 3, our transmit timestamp echoed as originate, non-zero transmit
 * timestamp, within ntp_max_step_s); the offset is then corrected (clock
 * offset from the four timestamps) and persisted. *step_s (may be NULL)
 * gets the correction. Blocking (at most n_ntp × timeout): call it from a
 * thread that may wait. */
int devclock_sync_ntp(struct devclock *c, double *step_s);

/* Local time for t per the configured TZ: broken-down time, and the UTC
 * offset in seconds east (CET winter: 3600) and whether DST applies. */
int devclock_local(struct devclock *c, time_t t, struct tm *out, long *utc_offset_s, int *is_dst);

/* Validates a POSIX TZ string (for handlers that want to check first). */
int devclock_tz_valid(const char *tz);

const char *devclock_strerror(int err);

#endif
