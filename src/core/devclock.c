/* The device clock: host CLOCK_REALTIME plus a stored offset (lock-free to
 * read), the ONVIF date/time settings with their persistence in
 * state_dir/clock.xml, POSIX TZ evaluation and a small SNTP client. */
#include "opennvt/devclock.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define CLOCK_FILE "clock.xml"
#define CLOCK_FILE_MAX 8192
#define NS_PER_S 1000000000LL
/* Far beyond any offset a 1970..2105 device date can need from a sane or
 * insane host clock, and well inside int64 nanoseconds. */
#define OFFSET_MAX_NS (200LL * 366 * 86400 * NS_PER_S)
#define NTP_DEFAULT_PORT "123"
#define NTP_DEFAULT_TIMEOUT_MS 1500
#define NTP_PACKET_LEN 48
#define NTP_UNIX_EPOCH 2208988800ULL   /* seconds from 1900 to 1970 */

/* One end of a DST period: a day rule and the local time of day it fires. */
struct tz_date {
    char kind;      /* 'J' (1..365, no Feb 29), 'D' (0..365 zero-based), 'M' (month.week.day) */
    int n, m, w, d;
    long secs;      /* local time of day, -167h..167h */
};

struct tz_info {
    long std_west;  /* seconds to add to local standard time to get UTC */
    int has_dst;
    long dst_west;
    struct tz_date start, end;
};

struct devclock {
    pthread_mutex_t lock;           /* guards cfg, tz and writers of offset_ns */
    char path[PATH_MAX];
    struct devclock_settings s;
    _Atomic int64_t offset_ns;      /* device UTC - host realtime */
    _Atomic int ntp_synced;         /* a synchronisation succeeded since open or the last manual set */
    struct devclock_config cfg;
    struct tz_info tz;
};

static _Atomic(struct devclock *) global_clock;

const char *devclock_strerror(int err)
{
    switch (err) {
    case DEVCLOCK_OK: return "ok";
    case DEVCLOCK_E_STORE: return "clock settings unreadable or could not be saved";
    case DEVCLOCK_E_NOMEM: return "out of memory";
    case DEVCLOCK_E_INVALID: return "invalid argument";
    case DEVCLOCK_E_TZ: return "not a valid POSIX time zone";
    case DEVCLOCK_E_TIME: return "date or time out of range";
    case DEVCLOCK_E_NTP_SERVER: return "invalid NTP server name or address, or too many servers";
    case DEVCLOCK_E_NTP: return "no NTP server gave a usable answer";
    }
    return "unknown error";
}

/* ---- calendar ---------------------------------------------------------- */

static int is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(long y, int m /* 1..12 */)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static long year_of_days(int64_t days)
{
    /* Inverse of days_from_civil, year only. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return (long)(yoe + era * 400 + (m <= 2));
}

/* ---- POSIX TZ ---------------------------------------------------------- */

static int is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Reads 1..max_digits decimal digits. */
static int read_uint(const char **pp, int max_digits, long *out)
{
    const char *p = *pp;
    long v = 0;
    int n = 0;
    while (is_digit(*p) && n < max_digits) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (n == 0 || is_digit(*p))
        return -1;
    *pp = p;
    *out = v;
    return 0;
}

/* A zone name: 3+ letters, or <...> with 3+ of [A-Za-z0-9+-]. */
static int parse_tz_name(const char **pp)
{
    const char *p = *pp;
    const char *s;
    if (*p == '<') {
        s = ++p;
        while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p - s < 3)
            return -1;
        *pp = p + 1;
        return 0;
    }
    s = p;
    while (is_alpha(*p))
        p++;
    if (p - s < 3)
        return -1;
    *pp = p;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh at most max_hours (and max_hour_digits digits). */
static int parse_hms(const char **pp, long max_hours, int max_hour_digits, long *out)
{
    const char *p = *pp;
    long sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    long h, m = 0, sec = 0;
    if (read_uint(&p, max_hour_digits, &h) != 0 || h > max_hours)
        return -1;
    if (*p == ':') {
        p++;
        if (!is_digit(p[0]) || !is_digit(p[1]) || read_uint(&p, 2, &m) != 0 || m > 59)
            return -1;
        if (*p == ':') {
            p++;
            if (!is_digit(p[0]) || !is_digit(p[1]) || read_uint(&p, 2, &sec) != 0 || sec > 59)
                return -1;
        }
    }
    *pp = p;
    *out = sign * (h * 3600 + m * 60 + sec);
    return 0;
}

static int parse_tz_date(const char **pp, struct tz_date *d)
{
    const char *p = *pp;
    long v;
    memset(d, 0, sizeof *d);
    if (*p == 'J') {
        p++;
        if (read_uint(&p, 3, &v) != 0 || v < 1 || v > 365)
            return -1;
        d->kind = 'J';
        d->n = (int)v;
    } else if (*p == 'M') {
        long m, w, wd;
        p++;
        if (read_uint(&p, 2, &m) != 0 || m < 1 || m > 12 || *p++ != '.' ||
            read_uint(&p, 1, &w) != 0 || w < 1 || w > 5 || *p++ != '.' ||
            read_uint(&p, 1, &wd) != 0 || wd > 6)
            return -1;
        d->kind = 'M';
        d->m = (int)m;
        d->w = (int)w;
        d->d = (int)wd;
    } else {
        if (read_uint(&p, 3, &v) != 0 || v > 365)
            return -1;
        d->kind = 'D';
        d->n = (int)v;
    }
    d->secs = 2 * 3600;
    if (*p == '/') {
        p++;
        if (parse_hms(&p, 167, 3, &d->secs) != 0)
            return -1;
    }
    *pp = p;
    return 0;
}

static int parse_tz(const char *tz, struct tz_info *out)
{
    struct tz_info ti = { 0 };
    if (!tz)
        return -1;
    size_t len = strnlen(tz, DEVCLOCK_TZ_MAX);
    if (len >= DEVCLOCK_TZ_MAX)
        return -1;
    if (len == 0) {
        *out = ti;
        return 0;
    }
    const char *p = tz;
    if (parse_tz_name(&p) != 0 || parse_hms(&p, 24, 2, &ti.std_west) != 0)
        return -1;
    if (*p != '\0') {
        if (parse_tz_name(&p) != 0)
            return -1;
        ti.has_dst = 1;
        ti.dst_west = ti.std_west - 3600;
        if (*p != ',' && *p != '\0' && parse_hms(&p, 24, 2, &ti.dst_west) != 0)
            return -1;
        if (*p == ',') {
            p++;
            if (parse_tz_date(&p, &ti.start) != 0 || *p++ != ',' || parse_tz_date(&p, &ti.end) != 0)
                return -1;
        } else {
            /* No rule: the US rules POSIX leaves to the implementation. */
            ti.start = (struct tz_date){ .kind = 'M', .m = 3, .w = 2, .d = 0, .secs = 7200 };
            ti.end = (struct tz_date){ .kind = 'M', .m = 11, .w = 1, .d = 0, .secs = 7200 };
        }
        if (*p != '\0')
            return -1;
    }
    *out = ti;
    return 0;
}

int devclock_tz_valid(const char *tz)
{
    struct tz_info ti;
    return parse_tz(tz, &ti) == 0 ? DEVCLOCK_OK : DEVCLOCK_E_TZ;
}

/* Days since the epoch of the rule's date in year y. */
static int64_t rule_day(const struct tz_date *d, long y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    switch (d->kind) {
    case 'J':
        return jan1 + d->n - 1 + (is_leap(y) && d->n >= 60 ? 1 : 0);
    case 'D':
        return jan1 + d->n;
    default: {
        int64_t first = days_from_civil(y, d->m, 1);
        int wd_first = (int)((first % 7 + 7 + 4) % 7);   /* 1970-01-01 was a Thursday */
        int mday = 1 + (d->d - wd_first + 7) % 7 + 7 * (d->w - 1);
        while (mday > days_in_month(y, d->m))
            mday -= 7;
        return first + mday - 1;
    }
    }
}

/* UTC offset (seconds west) and DST state in effect at t. */
static void tz_lookup(const struct tz_info *ti, int64_t t, long *west, int *is_dst)
{
    *west = ti->std_west;
    *is_dst = 0;
    if (!ti->has_dst)
        return;
    long y = year_of_days(floor_div(t - ti->std_west, 86400));
    int64_t best = INT64_MIN;
    int best_dst = 0;
    /* The latest transition at or before t decides; looking one year each way
     * covers southern-hemisphere rules and transition times beyond 24h. */
    for (long yy = y - 1; yy <= y + 1; yy++) {
        int64_t start = rule_day(&ti->start, yy) * 86400 + ti->start.secs + ti->std_west;
        int64_t end = rule_day(&ti->end, yy) * 86400 + ti->end.secs + ti->dst_west;
        if (end <= t && end > best) {
            best = end;
            best_dst = 0;
        }
        /* On a tie the start wins, so "all year DST" rules stay in DST. */
        if (start <= t && start >= best) {
            best = start;
            best_dst = 1;
        }
    }
    if (best_dst) {
        *west = ti->dst_west;
        *is_dst = 1;
    }
}

/* ---- NTP server names ---------------------------------------------------- */

static int valid_port(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5 || p[0] == '0')
        return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* RFC 1123 host name, or a dotted IPv4 address when it is all digits and dots. */
static int valid_host(const char *h, size_t len)
{
    char buf[DEVCLOCK_NTP_NAME_MAX + 1];
    if (len == 0 || len > 253)
        return 0;
    memcpy(buf, h, len);
    buf[len] = '\0';
    int numeric = 1;
    for (size_t i = 0; i < len; i++)
        if (!is_digit(buf[i]) && buf[i] != '.')
            numeric = 0;
    if (numeric) {
        struct in_addr a;
        return inet_pton(AF_INET, buf, &a) == 1;
    }
    const char *label = buf;
    int label_numeric = 1;
    for (size_t i = 0; i <= len; i++) {
        char ch = buf[i];
        if (ch == '.' || ch == '\0') {
            size_t ll = (size_t)(&buf[i] - label);
            if (ll == 0 || ll > 63 || label[0] == '-' || buf[i - 1] == '-')
                return 0;
            if (ch == '\0' && label_numeric)
                return 0;   /* a top-level label is never all digits */
            label = &buf[i + 1];
            label_numeric = 1;
        } else if (is_alpha(ch) || ch == '-') {
            label_numeric = 0;
        } else if (!is_digit(ch)) {
            return 0;
        }
    }
    return 1;
}

/* Splits a valid server name into host and port (default 123). */
static int split_server(const char *name, char *host, size_t hostlen, char *port, size_t portlen)
{
    size_t len = strnlen(name, DEVCLOCK_NTP_NAME_MAX + 1);
    if (len == 0 || len > DEVCLOCK_NTP_NAME_MAX || hostlen < len + 1 || portlen < 6)
        return -1;
    const char *colon = strchr(name, ':');
    const char *port_s = NULL;
    size_t hl;
    const char *hs = name;
    if (name[0] == '[') {
        const char *close = strchr(name, ']');
        if (!close)
            return -1;
        hs = name + 1;
        hl = (size_t)(close - hs);
        if (close[1] == ':')
            port_s = close + 2;
        else if (close[1] != '\0')
            return -1;
        memcpy(host, hs, hl);
        host[hl] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return -1;
    } else if (colon && strchr(colon + 1, ':')) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, name, &a6) != 1)
            return -1;
        memcpy(host, name, len + 1);
    } else {
        hl = colon ? (size_t)(colon - name) : len;
        if (!valid_host(name, hl))
            return -1;
        memcpy(host, name, hl);
        host[hl] = '\0';
        if (colon)
            port_s = colon + 1;
    }
    if (port_s) {
        if (!valid_port(port_s))
            return -1;
        snprintf(port, portlen, "%s", port_s);
    } else {
        snprintf(port, portlen, "%s", NTP_DEFAULT_PORT);
    }
    return 0;
}

static int valid_server(const char *name)
{
    char host[DEVCLOCK_NTP_NAME_MAX + 1], port[8];
    return name && split_server(name, host, sizeof host, port, sizeof port) == 0;
}

/* ---- time ---------------------------------------------------------------- */

static void host_now(const struct devclock *c, struct timespec *ts)
{
    if (c && c->s.host_now)
        c->s.host_now(ts);
    else
        clock_gettime(CLOCK_REALTIME, ts);
}

static void add_offset(struct timespec *ts, int64_t off)
{
    int64_t sec = (int64_t)ts->tv_sec + off / NS_PER_S;
    int64_t nsec = (int64_t)ts->tv_nsec + off % NS_PER_S;
    if (nsec < 0) {
        nsec += NS_PER_S;
        sec--;
    } else if (nsec >= NS_PER_S) {
        nsec -= NS_PER_S;
        sec++;
    }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)nsec;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

void devclock_now_ts(struct devclock *c, struct timespec *out)
{
    host_now(c, out);
    if (c)
        add_offset(out, atomic_load(&c->offset_ns));
}

time_t devclock_now(struct devclock *c)
{
    struct timespec ts;
    devclock_now_ts(c, &ts);
    return ts.tv_sec;
}

void devclock_set_global(struct devclock *c)
{
    atomic_store(&global_clock, c);
}

void devclock_global_now_ts(struct timespec *out)
{
    devclock_now_ts(atomic_load(&global_clock), out);
}

time_t devclock_global_now(void)
{
    return devclock_now(atomic_load(&global_clock));
}

/* ---- persistence ----------------------------------------------------------- */

static void xml_escape(char *out, size_t outlen, const char *s)
{
    size_t k = 0;
    for (; *s; s++) {
        const char *rep = NULL;
        char one[2] = { *s, '\0' };
        switch (*s) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        default: rep = one; break;
        }
        size_t n = strlen(rep);
        if (k + n >= outlen)
            break;
        memcpy(out + k, rep, n);
        k += n;
    }
    out[k] = '\0';
}

/* Writes cfg and offset; called with the lock held, before committing them. */
static int store(const struct devclock *c, const struct devclock_config *cfg, int64_t offset)
{
    char buf[CLOCK_FILE_MAX];
    char esc[DEVCLOCK_NTP_NAME_MAX * 6 + 1];
    xml_escape(esc, sizeof esc, cfg->tz);
    int n = snprintf(buf, sizeof buf,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clock>\n  <type>%s</type>\n"
                     "  <daylight-savings>%s</daylight-savings>\n  <tz>%s</tz>\n"
                     "  <offset-ns>%lld</offset-ns>\n  <ntp-servers>\n",
                     cfg->type == DEVCLOCK_NTP ? "NTP" : "Manual", cfg->daylight_savings ? "true" : "false",
                     esc, (long long)offset);
    for (size_t i = 0; i < cfg->n_ntp && n > 0 && (size_t)n < sizeof buf; i++) {
        xml_escape(esc, sizeof esc, cfg->ntp[i]);
        n += snprintf(buf + n, sizeof buf - (size_t)n, "    <server>%s</server>\n", esc);
    }
    if (n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "  </ntp-servers>\n</clock>\n");
    if (n <= 0 || (size_t)n >= sizeof buf)
        return DEVCLOCK_E_STORE;
    int rc = atomicfile_write(c->path, buf, (size_t)n, 0600);
    if (rc != 0) {
        log_err("clock", "saving %s failed: %s", c->path, strerror(-rc));
        return DEVCLOCK_E_STORE;
    }
    return DEVCLOCK_OK;
}

static int is_blank_text(xmlNode *n)
{
    if (n->type == XML_COMMENT_NODE)
        return 1;
    if (n->type != XML_TEXT_NODE)
        return 0;
    for (const xmlChar *p = n->content; p && *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    return 1;
}

/* Text of an element that holds only text, into out (size outlen). */
static int leaf_text(xmlNode *e, char *out, size_t outlen)
{
    size_t k = 0;
    out[0] = '\0';
    for (xmlNode *t = e->children; t; t = t->next) {
        if (t->type != XML_TEXT_NODE)
            return -1;
        size_t n = strlen((const char *)t->content);
        if (k + n >= outlen)
            return -1;
        memcpy(out + k, t->content, n);
        k += n;
        out[k] = '\0';
    }
    return 0;
}

static int parse_offset(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || !(is_digit(s[0]) || s[0] == '-') ||
        v > OFFSET_MAX_NS || v < -OFFSET_MAX_NS)
        return -1;
    *out = v;
    return 0;
}

static int load_doc(xmlDocPtr doc, struct devclock_config *cfg, int64_t *offset, struct tz_info *ti)
{
    enum { SEEN_TYPE = 1, SEEN_DST = 2, SEEN_TZ = 4, SEEN_OFFSET = 8, SEEN_NTP = 16, SEEN_ALL = 31 };
    char text[DEVCLOCK_NTP_NAME_MAX + 1];
    int seen = 0;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (doc->intSubset || !root || strcmp((const char *)root->name, "clock") != 0 || root->ns)
        return -1;
    for (xmlNode *e = root->children; e; e = e->next) {
        if (is_blank_text(e))
            continue;
        if (e->type != XML_ELEMENT_NODE)
            return -1;
        const char *name = (const char *)e->name;
        int bit;
        if (!strcmp(name, "type"))
            bit = SEEN_TYPE;
        else if (!strcmp(name, "daylight-savings"))
            bit = SEEN_DST;
        else if (!strcmp(name, "tz"))
            bit = SEEN_TZ;
        else if (!strcmp(name, "offset-ns"))
            bit = SEEN_OFFSET;
        else if (!strcmp(name, "ntp-servers"))
            bit = SEEN_NTP;
        else
            return -1;
        if (seen & bit)
            return -1;
        seen |= bit;
        if (bit == SEEN_NTP) {
            for (xmlNode *s = e->children; s; s = s->next) {
                if (is_blank_text(s))
                    continue;
                if (s->type != XML_ELEMENT_NODE || strcmp((const char *)s->name, "server") != 0 ||
                    cfg->n_ntp >= DEVCLOCK_MAX_NTP || leaf_text(s, text, sizeof text) != 0 ||
                    !valid_server(text))
                    return -1;
                memcpy(cfg->ntp[cfg->n_ntp++], text, strlen(text) + 1);
            }
            continue;
        }
        if (leaf_text(e, text, sizeof text) != 0)
            return -1;
        switch (bit) {
        case SEEN_TYPE:
            if (!strcmp(text, "Manual"))
                cfg->type = DEVCLOCK_MANUAL;
            else if (!strcmp(text, "NTP"))
                cfg->type = DEVCLOCK_NTP;
            else
                return -1;
            break;
        case SEEN_DST:
            if (!strcmp(text, "true") || !strcmp(text, "false"))
                cfg->daylight_savings = text[0] == 't';
            else
                return -1;
            break;
        case SEEN_TZ:
            if (parse_tz(text, ti) != 0)
                return -1;
            memcpy(cfg->tz, text, strlen(text) + 1);
            break;
        case SEEN_OFFSET:
            if (parse_offset(text, offset) != 0)
                return -1;
            break;
        }
    }
    return seen == SEEN_ALL ? 0 : -1;
}

static int load(struct devclock *c)
{
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(c->path, CLOCK_FILE_MAX, &data, &len);
    if (rc == -ENOENT)
        return DEVCLOCK_OK;
    if (rc != 0) {
        log_err("clock", "cannot read %s: %s", c->path, strerror(-rc));
        return DEVCLOCK_E_STORE;
    }
    xmlDocPtr doc = xmlReadMemory(data, (int)len, c->path, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    struct devclock_config cfg = { 0 };
    struct tz_info ti = { 0 };
    int64_t offset = 0;
    rc = doc ? load_doc(doc, &cfg, &offset, &ti) : -1;
    xmlFreeDoc(doc);
    if (rc != 0) {
        log_err("clock", "%s is corrupt; refusing to start over it", c->path);
        return DEVCLOCK_E_STORE;
    }
    c->cfg = cfg;
    c->tz = ti;
    atomic_store(&c->offset_ns, offset);
    return DEVCLOCK_OK;
}

/* ---- open / get / set ------------------------------------------------------- */

int devclock_open(struct devclock **out, const char *state_dir, const struct devclock_settings *s)
{
    if (!out)
        return DEVCLOCK_E_INVALID;
    *out = NULL;
    if (!state_dir)
        return DEVCLOCK_E_INVALID;
    struct devclock *c = calloc(1, sizeof *c);
    if (!c)
        return DEVCLOCK_E_NOMEM;
    if ((size_t)snprintf(c->path, sizeof c->path, "%s/%s", state_dir, CLOCK_FILE) >= sizeof c->path) {
        free(c);
        return DEVCLOCK_E_INVALID;
    }
    if (s)
        c->s = *s;
    if (c->s.ntp_timeout_ms <= 0)
        c->s.ntp_timeout_ms = NTP_DEFAULT_TIMEOUT_MS;
    atomic_init(&c->offset_ns, 0);
    int rc = load(c);
    if (rc != DEVCLOCK_OK) {
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return DEVCLOCK_OK;
}

void devclock_close(struct devclock *c)
{
    if (!c)
        return;
    struct devclock *expected = c;
    atomic_compare_exchange_strong(&global_clock, &expected, NULL);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void devclock_get(struct devclock *c, struct devclock_config *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->cfg;
    pthread_mutex_unlock(&c->lock);
}

/* UTC seconds of a validated struct tm (leap second 60 clamped to 59). */
static int utc_seconds(const struct tm *t, int64_t *out)
{
    long year = (long)t->tm_year + 1900;
    if (year < 1970 || year > 2105 || t->tm_mon < 0 || t->tm_mon > 11 || t->tm_mday < 1 ||
        t->tm_mday > days_in_month(year, t->tm_mon + 1) || t->tm_hour < 0 || t->tm_hour > 23 ||
        t->tm_min < 0 || t->tm_min > 59 || t->tm_sec < 0 || t->tm_sec > 60)
        return -1;
    int sec = t->tm_sec == 60 ? 59 : t->tm_sec;
    *out = days_from_civil(year, t->tm_mon + 1, t->tm_mday) * 86400 + t->tm_hour * 3600 + t->tm_min * 60 + sec;
    return 0;
}

int devclock_set(struct devclock *c, enum devclock_type type, int daylight_savings, const char *tz,
                 const struct tm *utc)
{
    if (!c || (type != DEVCLOCK_MANUAL && type != DEVCLOCK_NTP))
        return DEVCLOCK_E_INVALID;
    struct tz_info ti;
    if (tz && parse_tz(tz, &ti) != 0)
        return DEVCLOCK_E_TZ;
    int64_t utc_s = 0;
    int set_clock = type == DEVCLOCK_MANUAL && utc;
    if (set_clock && utc_seconds(utc, &utc_s) != 0)
        return DEVCLOCK_E_TIME;

    pthread_mutex_lock(&c->lock);
    struct devclock_config cfg = c->cfg;
    cfg.type = type;
    cfg.daylight_savings = daylight_savings ? 1 : 0;
    if (tz)
        memcpy(cfg.tz, tz, strlen(tz) + 1);
    int64_t offset = atomic_load(&c->offset_ns);
    if (set_clock) {
        struct timespec now;
        host_now(c, &now);
        offset = utc_s * NS_PER_S - ts_ns(&now);
    }
    int rc = offset > OFFSET_MAX_NS || offset < -OFFSET_MAX_NS ? DEVCLOCK_E_TIME : store(c, &cfg, offset);
    if (rc == DEVCLOCK_OK) {
        c->cfg = cfg;
        if (tz)
            c->tz = ti;
        atomic_store(&c->offset_ns, offset);
        atomic_store(&c->ntp_synced, 0);
    }
    pthread_mutex_unlock(&c->lock);
    if (rc == DEVCLOCK_OK && set_clock)
        log_notice("clock", "device clock set manually (offset from host %.3f s)", (double)offset / 1e9);
    return rc;
}

int devclock_set_ntp(struct devclock *c, const char *const *servers, size_t n)
{
    if (!c || (n > 0 && !servers))
        return DEVCLOCK_E_INVALID;
    if (n > DEVCLOCK_MAX_NTP)
        return DEVCLOCK_E_NTP_SERVER;
    for (size_t i = 0; i < n; i++)
        if (!valid_server(servers[i]))
            return DEVCLOCK_E_NTP_SERVER;
    pthread_mutex_lock(&c->lock);
    struct devclock_config cfg = c->cfg;
    memset(cfg.ntp, 0, sizeof cfg.ntp);
    cfg.n_ntp = n;
    for (size_t i = 0; i < n; i++)
        memcpy(cfg.ntp[i], servers[i], strlen(servers[i]) + 1);
    int rc = store(c, &cfg, atomic_load(&c->offset_ns));
    if (rc == DEVCLOCK_OK)
        c->cfg = cfg;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int devclock_local(struct devclock *c, time_t t, struct tm *out, long *utc_offset_s, int *is_dst)
{
    if (!c || !out)
        return DEVCLOCK_E_INVALID;
    pthread_mutex_lock(&c->lock);
    struct tz_info ti = c->tz;
    pthread_mutex_unlock(&c->lock);
    long west;
    int dst;
    tz_lookup(&ti, (int64_t)t, &west, &dst);
    time_t local = t - west;
    if (!gmtime_r(&local, out))
        return DEVCLOCK_E_TIME;
    out->tm_isdst = dst;
#ifdef _GNU_SOURCE
    out->tm_gmtoff = -west;
    out->tm_zone = NULL;    /* the names live in the TZ string, which may change */
#endif
    if (utc_offset_s)
        *utc_offset_s = -west;
    if (is_dst)
        *is_dst = dst;
    return DEVCLOCK_OK;
}

/* ---- SNTP ---------------------------------------------------------------------- */

static uint64_t ntp_from_ts(const struct timespec *ts)
{
    uint64_t sec = (uint64_t)((int64_t)ts->tv_sec + (int64_t)NTP_UNIX_EPOCH) & 0xffffffffULL;
    uint64_t frac = ((uint64_t)ts->tv_nsec << 32) / (uint64_t)NS_PER_S;
    return sec << 32 | frac;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int same_addr(const struct sockaddr_storage *a, socklen_t alen, const struct addrinfo *ai)
{
    if (a->ss_family != ai->ai_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)ai->ai_addr;
        return alen >= sizeof *x && x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)ai->ai_addr;
        return alen >= sizeof *x && x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

/* One request/answer with one address until deadline (monotonic ms).
 * Returns 0 with *offset_s (server minus device clock), or -1. */
static int ntp_exchange(const struct devclock *c, int64_t clock_off, const struct addrinfo *ai,
                        int64_t deadline, const char *name, double *offset_s)
{
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Connected: the kernel drops datagrams from any other address or port. */
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        return -1;
    }
    unsigned char pkt[NTP_PACKET_LEN] = { 0 };
    pkt[0] = (0 << 6) | (4 << 3) | 3;   /* LI 0, VN 4, mode 3 (client) */
    struct timespec ts;
    host_now(c, &ts);
    add_offset(&ts, clock_off);
    uint64_t t1 = ntp_from_ts(&ts);
    /* Unpredictable low bits make the echoed originate hard to forge; the
     * computation uses the exact t1, so they cost no accuracy. */
    uint32_t noise = 0;
    if (getrandom(&noise, sizeof noise, GRND_NONBLOCK) != (ssize_t)sizeof noise)
        noise = (uint32_t)ts.tv_nsec;
    uint64_t sent = t1 ^ (noise & 0xffffffU);
    put_be64(pkt + 40, sent);
    if (send(fd, pkt, sizeof pkt, 0) != (ssize_t)sizeof pkt) {
        close(fd);
        return -1;
    }
    int rc = -1;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            log_info("clock", "NTP server %s: no answer in time", name);
            break;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)(left > INT_MAX ? INT_MAX : left));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;   /* timeout: the deadline check above ends the loop */
        unsigned char r[512];
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, r, sizeof r, 0, (struct sockaddr *)&from, &fromlen);
        struct timespec t4ts;
        host_now(c, &t4ts);
        add_offset(&t4ts, clock_off);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            log_info("clock", "NTP server %s: %s", name, strerror(errno));
            break;
        }
        /* Anything that is not an answer to this request is ignored, so a
         * stray or forged datagram cannot cut the exchange short. */
        if (!same_addr(&from, fromlen, ai) || n < NTP_PACKET_LEN || (r[0] & 7) != 4 ||
            get_be64(r + 24) != sent)
            continue;
        int li = r[0] >> 6, vn = (r[0] >> 3) & 7, stratum = r[1];
        uint64_t t2 = get_be64(r + 32), t3 = get_be64(r + 40);
        if (li == 3 || (vn != 3 && vn != 4) || stratum < 1 || stratum > 15 || t3 == 0) {
            log_info("clock", "NTP server %s: unusable answer (LI %d, VN %d, stratum %d)", name, li, vn, stratum);
            break;
        }
        uint64_t t4 = ntp_from_ts(&t4ts);
        /* Differences of 32.32 timestamps, modulo 2^64: valid across NTP eras
         * while the clocks are within 68 years of each other. */
        double a = (double)(int64_t)(t2 - t1) / 4294967296.0;
        double b = (double)(int64_t)(t3 - t4) / 4294967296.0;
        *offset_s = (a + b) / 2;
        rc = 0;
        break;
    }
    close(fd);
    return rc;
}

/* One server: resolve, then try its addresses within one timeout. */
static int ntp_query(const struct devclock *c, int64_t clock_off, const char *name, double *offset_s)
{
    char host[DEVCLOCK_NTP_NAME_MAX + 1], port[8];
    if (split_server(name, host, sizeof host, port, sizeof port) != 0)
        return -1;
    struct in6_addr any;
    int numeric = inet_pton(AF_INET, host, &any) == 1 || inet_pton(AF_INET6, host, &any) == 1;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_protocol = IPPROTO_UDP,
                              .ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0) };
    struct addrinfo *res = NULL;
    int64_t deadline = mono_ms() + c->s.ntp_timeout_ms;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        log_info("clock", "NTP server %s: %s", name, gai_strerror(g));
        return -1;
    }
    int rc = -1;
    for (struct addrinfo *ai = res; ai && rc != 0 && mono_ms() < deadline; ai = ai->ai_next)
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
            rc = ntp_exchange(c, clock_off, ai, deadline, name, offset_s);
    freeaddrinfo(res);
    return rc;
}

int devclock_sync_ntp(struct devclock *c, double *step_s)
{
    if (!c)
        return DEVCLOCK_E_INVALID;
    /* Only the server list is read under the lock: the network wait is not,
     * so readers of the configuration never stall behind it. */
    pthread_mutex_lock(&c->lock);
    size_t n = c->cfg.n_ntp;
    char servers[DEVCLOCK_MAX_NTP][DEVCLOCK_NTP_NAME_MAX + 1];
    memcpy(servers, c->cfg.ntp, sizeof servers);
    int64_t clock_off = atomic_load(&c->offset_ns);
    pthread_mutex_unlock(&c->lock);

    for (size_t i = 0; i < n; i++) {
        double off = 0;
        if (ntp_query(c, clock_off, servers[i], &off) != 0)
            continue;
        double mag = off < 0 ? -off : off;
        int resync = atomic_load(&c->ntp_synced);
        if (!(mag < 2.2e9) || (c->s.ntp_max_step_s > 0 && mag > c->s.ntp_max_step_s) ||
            (resync && c->s.ntp_max_resync_step_s > 0 && mag > c->s.ntp_max_resync_step_s)) {
            log_warning("clock", "NTP server %s: refusing a step of %.3f s", servers[i], off);
            continue;
        }
        int64_t step_ns = (int64_t)(off * 1e9 + (off < 0 ? -0.5 : 0.5));
        pthread_mutex_lock(&c->lock);
        int rc;
        int64_t cur = atomic_load(&c->offset_ns);
        int64_t next = cur + step_ns;
        if (cur != clock_off) {
            /* Set by hand while we were measuring against the old clock. */
            log_info("clock", "clock changed during the NTP exchange; answer discarded");
            rc = DEVCLOCK_E_NTP;
        } else if (next > OFFSET_MAX_NS || next < -OFFSET_MAX_NS) {
            rc = DEVCLOCK_E_NTP;
        } else {
            rc = store(c, &c->cfg, next);
            if (rc == DEVCLOCK_OK) {
                atomic_store(&c->offset_ns, next);
                atomic_store(&c->ntp_synced, 1);
            }
        }
        pthread_mutex_unlock(&c->lock);
        if (rc == DEVCLOCK_OK) {
            log_info("clock", "NTP server %s: clock corrected by %.6f s", servers[i], off);
            if (step_s)
                *step_s = off;
        }
        return rc;
    }
    return DEVCLOCK_E_NTP;
}
