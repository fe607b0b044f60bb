/* Device log front end: level filter, UTC timestamps from the device clock,
 * lines on stderr and to the sink (the device log's stores). */
#include "opennvt/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = { "crit", "err", "warning", "notice", "info", "debug" };
static atomic_int current_level = LOG_LVL_INFO;
static log_sink_fn sink;
static void *sink_arg;
static void (*clock_now)(struct timespec *out);

void log_set_sink(log_sink_fn fn, void *arg)
{
    sink_arg = arg;
    sink = fn;
}

void log_set_clock(void (*now)(struct timespec *out))
{
    clock_now = now;
}

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof level_names / sizeof level_names[0])
        return "?";
    return level_names[level];
}

void log_set_level(enum log_level level) { atomic_store(&current_level, level); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&current_level); }

void log_msg(enum log_level level, const char *area, const char *fmt, ...)
{
    if ((int)level > atomic_load(&current_level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    if (clock_now)
        clock_now(&ts);
    else
        clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-7s %-9s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_level_name(level), area);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* Neutralise control characters so a network-supplied value cannot forge lines. */
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            *p = '?';
    fprintf(stderr, "%s\n", line);
    if (sink)
        sink(sink_arg, level, area, line);
}
