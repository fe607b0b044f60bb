/* Device log front end: every part of the daemon logs through here.
 * Lines are timestamped in UTC; callers never pass secrets. */
#ifndef OPENNVT_LOG_H
#define OPENNVT_LOG_H

#include <time.h>

enum log_level { LOG_LVL_CRIT, LOG_LVL_ERR, LOG_LVL_WARNING, LOG_LVL_NOTICE, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Returns the level for a name ("crit", "err", "warning", "notice", "info",
 * "debug"), or -1 when the name is unknown. */
int log_level_from_name(const char *name);
const char *log_level_name(enum log_level level);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Where lines go besides stderr (the device log's stores), and the clock
 * that timestamps them (the device clock); NULL restores the default. Set
 * once at start, before other threads log. */
typedef void (*log_sink_fn)(void *arg, enum log_level level, const char *area, const char *line);
void log_set_sink(log_sink_fn sink, void *arg);
void log_set_clock(void (*now)(struct timespec *out));

/* area is a short stable tag ("system", "soap", "discovery", "config"...).
 * Area "access" marks the Access log: logins, authentication failures and
 * configuration changes, with the user and source address. */
void log_msg(enum log_level level, const char *area, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_crit(area, ...)    log_msg(LOG_LVL_CRIT, area, __VA_ARGS__)
#define log_err(area, ...)     log_msg(LOG_LVL_ERR, area, __VA_ARGS__)
#define log_warning(area, ...) log_msg(LOG_LVL_WARNING, area, __VA_ARGS__)
#define log_notice(area, ...)  log_msg(LOG_LVL_NOTICE, area, __VA_ARGS__)
#define log_info(area, ...)    log_msg(LOG_LVL_INFO, area, __VA_ARGS__)
#define log_debug(area, ...)   log_msg(LOG_LVL_DEBUG, area, __VA_ARGS__)

#endif
