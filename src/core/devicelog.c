/* The device log's stores: a bounded in-memory ring and size-rotated files
 * per log kind (System, Access), plus optional RFC 5424 syslog forwarding
 * over UDP (RFC 5426). log.c feeds it, so nothing here may call log_msg. */
#include "opennvt/devicelog.h"
#include "opennvt/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_DEFAULT (256u * 1024u)
#define FILE_DEFAULT (1024u * 1024u)
#define FILES_DEFAULT 4
/* Upper bounds keep (files + 1) * file_bytes far from overflow and the
 * rotated names short; the lower ones leave room for a useful line. */
#define RING_MIN 64u
#define RING_MAX (64u * 1024u * 1024u)
#define FILE_MIN 64u
#define FILE_MAX (256u * 1024u * 1024u)
#define FILES_MAX 64
#define RECORD_HEADER sizeof(uint32_t)
#define SYSLOG_DATAGRAM_MAX 2048
#define SYSLOG_HOSTNAME_MAX 255
#define SYSLOG_MSGID_MAX 32
#define SYSLOG_FACILITY_LOCAL0 16
#define SYSLOG_FACILITY_AUTHPRIV 10

/* Volatile store: records (uint32 length + text) in a circular byte buffer. */
struct ring {
    unsigned char *buf;
    size_t cap;
    size_t head;  /* offset of the oldest record */
    size_t used;  /* bytes held, headers included */
    unsigned long dropped;
};

struct store {
    pthread_mutex_t lock;
    struct ring ring;
    char path[PATH_MAX];  /* current file; rotated ones are path.N */
    int fd;               /* -1 when unusable; reopened on the next add */
    size_t size;          /* bytes in the current file */
    unsigned long io_errors;
};

struct devicelog {
    struct store store[2];
    size_t file_bytes;
    int files;
    enum log_level persist_level;
    int syslog_fd;        /* -1 = forwarding off */
    struct sockaddr_storage syslog_addr;
    socklen_t syslog_addr_len;
    char hostname[SYSLOG_HOSTNAME_MAX + 1];
    atomic_ulong syslog_errors;
};

static _Atomic(struct devicelog *) global_log;

const char *devicelog_strerror(int err)
{
    switch (err) {
    case DEVICELOG_OK: return "ok";
    case DEVICELOG_E_IO: return "log directory or file unusable";
    case DEVICELOG_E_NOMEM: return "out of memory";
    case DEVICELOG_E_INVALID: return "invalid device log settings";
    }
    return "unknown error";
}

void devicelog_set_global(struct devicelog *d) { atomic_store(&global_log, d); }
struct devicelog *devicelog_global(void) { return atomic_load(&global_log); }

/* --- ring ------------------------------------------------------------------ */

static void ring_write(struct ring *r, size_t off, const void *src, size_t n)
{
    off %= r->cap;
    size_t first = r->cap - off < n ? r->cap - off : n;
    memcpy(r->buf + off, src, first);
    memcpy(r->buf, (const unsigned char *)src + first, n - first);
}

static void ring_read(const struct ring *r, size_t off, void *dst, size_t n)
{
    off %= r->cap;
    size_t first = r->cap - off < n ? r->cap - off : n;
    memcpy(dst, r->buf + off, first);
    memcpy((unsigned char *)dst + first, r->buf, n - first);
}

static uint32_t ring_record_len(const struct ring *r, size_t off)
{
    uint32_t len;
    ring_read(r, off, &len, sizeof len);
    return len;
}

/* Appends a line (already clean), dropping the oldest ones to make room. */
static void ring_add(struct ring *r, const char *line, size_t n)
{
    if (n > r->cap - RECORD_HEADER)
        n = r->cap - RECORD_HEADER;
    while (r->used + RECORD_HEADER + n > r->cap) {
        size_t rec = RECORD_HEADER + ring_record_len(r, r->head);
        r->head = (r->head + rec) % r->cap;
        r->used -= rec;
        r->dropped++;
    }
    uint32_t len = (uint32_t)n;
    size_t tail = r->head + r->used;
    ring_write(r, tail, &len, sizeof len);
    ring_write(r, tail + RECORD_HEADER, line, n);
    r->used += RECORD_HEADER + n;
}

/* --- files ----------------------------------------------------------------- */

static int rotated_path(char *out, const struct store *st, int n)
{
    int len = snprintf(out, PATH_MAX, "%s.%d", st->path, n);
    return len > 0 && len < PATH_MAX ? 0 : -1;
}

static int store_open_file(struct store *st)
{
    int fd = open(st->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    struct stat sb;
    /* A file left with wider permissions (older version, admin copy) is
     * tightened: the log names users and addresses. */
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)) {
        close(fd);
        return -1;
    }
    st->fd = fd;
    st->size = (size_t)sb.st_size;
    return 0;
}

/* current → .1, .1 → .2 ... .files-1 → .files; the old .files is replaced. */
static void store_rotate(struct devicelog *d, struct store *st)
{
    char from[PATH_MAX], to[PATH_MAX];
    close(st->fd);
    st->fd = -1;
    for (int n = d->files; n >= 2; n--)
        if (rotated_path(from, st, n - 1) == 0 && rotated_path(to, st, n) == 0)
            if (rename(from, to) != 0 && errno != ENOENT)
                st->io_errors++;
    if (rotated_path(to, st, 1) != 0 || rename(st->path, to) != 0)
        st->io_errors++;
    if (store_open_file(st) != 0)
        st->io_errors++;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* rec is the line plus its '\n' (at most file_bytes). */
static void store_persist(struct devicelog *d, struct store *st, const char *rec, size_t n)
{
    if (st->fd < 0 && store_open_file(st) != 0) {
        st->io_errors++;
        return;
    }
    if (st->size > 0 && st->size + n > d->file_bytes) {
        store_rotate(d, st);
        if (st->fd < 0)
            return;
    }
    if (write_all(st->fd, rec, n) != 0) {
        st->io_errors++;
        /* Keep the size honest after a partial write; lseek on an O_APPEND fd
         * reports the end of file. */
        off_t end = lseek(st->fd, 0, SEEK_END);
        if (end >= 0)
            st->size = (size_t)end;
        return;
    }
    st->size += n;
}

/* --- syslog ---------------------------------------------------------------- */

static int valid_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_' || c == ':' || c == '%';
}

static int parse_port(const char *s, char *out, size_t out_size)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || n >= out_size)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    snprintf(out, out_size, "%lu", v);
    return 0;
}

/* "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal, resolved
 * once into d->syslog_addr. Returns DEVICELOG_OK or DEVICELOG_E_INVALID. */
static int syslog_resolve(struct devicelog *d, const char *server)
{
    char host[256], port[8] = "514";
    int numeric = 0;
    const char *port_text = NULL;
    size_t host_len;
    if (server[0] == '[') {
        const char *close_br = strchr(server, ']');
        if (!close_br)
            return DEVICELOG_E_INVALID;
        host_len = (size_t)(close_br - server - 1);
        if (host_len == 0 || host_len >= sizeof host || !memchr(server + 1, ':', host_len))
            return DEVICELOG_E_INVALID;
        memcpy(host, server + 1, host_len);
        if (close_br[1] == ':')
            port_text = close_br + 2;
        else if (close_br[1] != '\0')
            return DEVICELOG_E_INVALID;
        numeric = 1;
    } else {
        const char *colon = strchr(server, ':');
        if (colon && strchr(colon + 1, ':')) {
            host_len = strlen(server);  /* bare IPv6 literal, no port */
            numeric = 1;
        } else {
            host_len = colon ? (size_t)(colon - server) : strlen(server);
            if (colon)
                port_text = colon + 1;
        }
        if (host_len == 0 || host_len >= sizeof host)
            return DEVICELOG_E_INVALID;
        memcpy(host, server, host_len);
    }
    host[host_len] = '\0';
    for (size_t i = 0; i < host_len; i++)
        if (!valid_host_char(host[i]) || (!numeric && (host[i] == ':' || host[i] == '%')))
            return DEVICELOG_E_INVALID;
    if (port_text && parse_port(port_text, port, sizeof port) != 0)
        return DEVICELOG_E_INVALID;

    struct addrinfo hints = { 0 }, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return DEVICELOG_E_INVALID;
    int rc = DEVICELOG_E_INVALID;
    if (res->ai_addrlen <= sizeof d->syslog_addr) {
        memcpy(&d->syslog_addr, res->ai_addr, res->ai_addrlen);
        d->syslog_addr_len = res->ai_addrlen;
        rc = DEVICELOG_OK;
    }
    freeaddrinfo(res);
    return rc;
}

/* Copies src into dst as RFC 5424 PRINTUSASCII (33..126), "-" when empty. */
static void copy_printusascii(char *dst, size_t dst_size, const char *src)
{
    size_t n = 0;
    for (; src && src[n] && n + 1 < dst_size; n++) {
        unsigned char c = (unsigned char)src[n];
        dst[n] = c >= 33 && c <= 126 ? (char)c : '_';
    }
    dst[n] = '\0';
    if (n == 0)
        snprintf(dst, dst_size, "-");
}

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Length of an RFC 3339 timestamp (RFC 5424 profile: up to 6 fraction
 * digits, 'Z' or a numeric offset) opening line and followed by a space or
 * the end, else 0. */
static size_t rfc3339_prefix(const char *line)
{
    static const char shape[] = "DDDD-DD-DDTDD:DD:DD";
    size_t i = 0;
    for (; shape[i]; i++) {
        if (shape[i] == 'D' ? !is_digits(line + i, 1) : line[i] != shape[i])
            return 0;
    }
    if (line[i] == '.') {
        size_t digits = 0;
        while (digits < 7 && is_digits(line + i + 1 + digits, 1))
            digits++;
        if (digits == 0 || digits > 6)
            return 0;
        i += 1 + digits;
    }
    if (line[i] == 'Z') {
        i++;
    } else if ((line[i] == '+' || line[i] == '-') && is_digits(line + i + 1, 2) && line[i + 3] == ':' &&
               is_digits(line + i + 4, 2)) {
        i += 6;
    } else {
        return 0;
    }
    return line[i] == ' ' || line[i] == '\0' ? i : 0;
}

static void syslog_forward(struct devicelog *d, enum devicelog_kind kind, enum log_level level, const char *area,
                           const char *line)
{
    int facility = kind == DEVICELOG_ACCESS ? SYSLOG_FACILITY_AUTHPRIV : SYSLOG_FACILITY_LOCAL0;
    int severity = (int)level + 2;  /* crit 2 ... debug 7 */
    if (severity < 2)
        severity = 2;
    if (severity > 7)
        severity = 7;
    char msgid[SYSLOG_MSGID_MAX + 1];
    copy_printusascii(msgid, sizeof msgid, area);

    size_t ts_len = rfc3339_prefix(line);
    const char *msg = line;
    if (ts_len > 0) {
        msg = line + ts_len;
        if (*msg == ' ')
            msg++;
    }
    char datagram[SYSLOG_DATAGRAM_MAX + 1];
    int n = snprintf(datagram, sizeof datagram, "<%d>1 %.*s %s opennvtd - %s - %s", facility * 8 + severity,
                     ts_len > 0 ? (int)ts_len : 1, ts_len > 0 ? line : "-", d->hostname, msgid, msg);
    if (n < 0) {
        atomic_fetch_add(&d->syslog_errors, 1);
        return;
    }
    size_t len = (size_t)n < SYSLOG_DATAGRAM_MAX ? (size_t)n : SYSLOG_DATAGRAM_MAX;
    if (sendto(d->syslog_fd, datagram, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&d->syslog_addr,
               d->syslog_addr_len) < 0)
        atomic_fetch_add(&d->syslog_errors, 1);
}

/* --- open / close ---------------------------------------------------------- */

static int store_init(struct store *st, const char *dir, const char *name, size_t ring_bytes)
{
    st->fd = -1;
    int n = snprintf(st->path, sizeof st->path, "%s/%s", dir, name);
    /* Leave room for ".NN" on rotated names. */
    if (n < 0 || (size_t)n + 4 >= sizeof st->path)
        return DEVICELOG_E_INVALID;
    st->ring.cap = ring_bytes;
    st->ring.buf = malloc(ring_bytes);
    if (!st->ring.buf)
        return DEVICELOG_E_NOMEM;
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st->ring.buf);
        st->ring.buf = NULL;
        return DEVICELOG_E_NOMEM;
    }
    if (store_open_file(st) != 0) {
        pthread_mutex_destroy(&st->lock);
        free(st->ring.buf);
        st->ring.buf = NULL;
        return DEVICELOG_E_IO;
    }
    return DEVICELOG_OK;
}

static void store_fini(struct store *st)
{
    if (!st->ring.buf)
        return;
    if (st->fd >= 0)
        close(st->fd);
    pthread_mutex_destroy(&st->lock);
    free(st->ring.buf);
    st->ring.buf = NULL;
}

int devicelog_open(struct devicelog **out, const char *dir, const struct devicelog_settings *s)
{
    if (!out)
        return DEVICELOG_E_INVALID;
    *out = NULL;
    static const struct devicelog_settings defaults;
    if (!s)
        s = &defaults;
    size_t ring_bytes = s->ring_bytes ? s->ring_bytes : RING_DEFAULT;
    size_t file_bytes = s->file_bytes ? s->file_bytes : FILE_DEFAULT;
    int files = s->files ? s->files : FILES_DEFAULT;
    if (!dir || !*dir || ring_bytes < RING_MIN || ring_bytes > RING_MAX || file_bytes < FILE_MIN ||
        file_bytes > FILE_MAX || files < 1 || files > FILES_MAX || (int)s->persist_level < LOG_LVL_CRIT ||
        (int)s->persist_level > LOG_LVL_DEBUG)
        return DEVICELOG_E_INVALID;

    struct devicelog *d = calloc(1, sizeof *d);
    if (!d)
        return DEVICELOG_E_NOMEM;
    d->file_bytes = file_bytes;
    d->files = files;
    d->persist_level = s->persist_level;
    d->syslog_fd = -1;
    atomic_init(&d->syslog_errors, 0);

    int rc = DEVICELOG_OK;
    if (s->syslog_server && *s->syslog_server) {
        rc = syslog_resolve(d, s->syslog_server);
        if (rc == DEVICELOG_OK) {
            d->syslog_fd = socket(d->syslog_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (d->syslog_fd < 0)
                rc = DEVICELOG_E_IO;
        }
        char host[SYSLOG_HOSTNAME_MAX + 1] = "";
        if (s->hostname)
            snprintf(host, sizeof host, "%s", s->hostname);
        else if (gethostname(host, sizeof host) != 0)
            host[0] = '\0';
        host[sizeof host - 1] = '\0';
        copy_printusascii(d->hostname, sizeof d->hostname, host);
    }
    if (rc == DEVICELOG_OK && atomicfile_mkdir_private(dir) != 0)
        rc = DEVICELOG_E_IO;
    if (rc == DEVICELOG_OK)
        rc = store_init(&d->store[DEVICELOG_SYSTEM], dir, "system.log", ring_bytes);
    if (rc == DEVICELOG_OK)
        rc = store_init(&d->store[DEVICELOG_ACCESS], dir, "access.log", ring_bytes);
    if (rc != DEVICELOG_OK) {
        devicelog_close(d);
        return rc;
    }
    *out = d;
    return DEVICELOG_OK;
}

void devicelog_close(struct devicelog *d)
{
    if (!d)
        return;
    struct devicelog *expected = d;
    atomic_compare_exchange_strong(&global_log, &expected, NULL);
    store_fini(&d->store[DEVICELOG_SYSTEM]);
    store_fini(&d->store[DEVICELOG_ACCESS]);
    if (d->syslog_fd >= 0)
        close(d->syslog_fd);
    free(d);
}

/* --- add / read ------------------------------------------------------------ */

static void add_line(struct devicelog *d, enum devicelog_kind kind, enum log_level level, const char *area,
                     const char *line, int forward)
{
    if (!d || !line || (kind != DEVICELOG_SYSTEM && kind != DEVICELOG_ACCESS))
        return;
    struct store *st = &d->store[kind];
    /* Nothing longer than either store can hold is worth copying. */
    size_t limit = d->file_bytes - 1;
    if (st->ring.cap - RECORD_HEADER > limit)
        limit = st->ring.cap - RECORD_HEADER;
    size_t n = strnlen(line, limit);
    char *clean = malloc(n + 2);
    if (!clean)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        clean[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    clean[n] = '\0';
    int persist = kind == DEVICELOG_ACCESS || (int)level <= (int)d->persist_level;

    pthread_mutex_lock(&st->lock);
    ring_add(&st->ring, clean, n);
    if (persist) {
        size_t rec = n < d->file_bytes - 1 ? n : d->file_bytes - 1;
        char saved = clean[rec];
        clean[rec] = '\n';
        store_persist(d, st, clean, rec + 1);
        clean[rec] = saved;
    }
    pthread_mutex_unlock(&st->lock);

    if (forward && d->syslog_fd >= 0)
        syslog_forward(d, kind, level, area, clean);
    free(clean);
}

void devicelog_add(struct devicelog *d, enum devicelog_kind kind, enum log_level level, const char *area,
                   const char *line)
{
    add_line(d, kind, level, area, line, 1);
}

void devicelog_add_access(struct devicelog *d, enum log_level level, const char *area, const char *line)
{
    add_line(d, DEVICELOG_SYSTEM, level, area, line, 0);
    add_line(d, DEVICELOG_ACCESS, level, area, line, 1);
}

int devicelog_read_volatile(struct devicelog *d, enum devicelog_kind kind, size_t max_bytes, char **text, size_t *len,
                            unsigned long *dropped)
{
    if (!d || !text || (kind != DEVICELOG_SYSTEM && kind != DEVICELOG_ACCESS))
        return DEVICELOG_E_INVALID;
    *text = NULL;
    struct store *st = &d->store[kind];
    struct ring *r = &st->ring;
    int rc = DEVICELOG_OK;
    pthread_mutex_lock(&st->lock);
    size_t total = 0, off = r->head, left = r->used;
    for (; left > 0;) {
        size_t l = ring_record_len(r, off);
        total += l + 1;
        off += RECORD_HEADER + l;
        left -= RECORD_HEADER + l;
    }
    /* Skip the oldest whole lines until the rest fits. */
    off = r->head;
    left = r->used;
    while (max_bytes && total > max_bytes) {
        size_t l = ring_record_len(r, off);
        total -= l + 1;
        off += RECORD_HEADER + l;
        left -= RECORD_HEADER + l;
    }
    char *out = malloc(total + 1);
    if (!out) {
        rc = DEVICELOG_E_NOMEM;
    } else {
        size_t pos = 0;
        while (left > 0) {
            size_t l = ring_record_len(r, off);
            ring_read(r, off + RECORD_HEADER, out + pos, l);
            pos += l;
            out[pos++] = '\n';
            off += RECORD_HEADER + l;
            left -= RECORD_HEADER + l;
        }
        out[pos] = '\0';
        *text = out;
        if (len)
            *len = pos;
        if (dropped)
            *dropped = r->dropped;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Reads the bytes [from, from + n) of the concatenation of fds into out. */
static int read_span(const int *fds, const size_t *sizes, int count, size_t from, char *out, size_t n)
{
    for (int i = 0; i < count && n > 0; i++) {
        if (from >= sizes[i]) {
            from -= sizes[i];
            continue;
        }
        size_t take = sizes[i] - from < n ? sizes[i] - from : n;
        size_t done = 0;
        while (done < take) {
            ssize_t r = pread(fds[i], out + done, take - done, (off_t)(from + done));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            done += (size_t)r;
        }
        out += take;
        n -= take;
        from = 0;
    }
    return n == 0 ? 0 : -1;
}

int devicelog_read_persistent(struct devicelog *d, enum devicelog_kind kind, size_t max_bytes, char **text, size_t *len)
{
    if (!d || !text || (kind != DEVICELOG_SYSTEM && kind != DEVICELOG_ACCESS))
        return DEVICELOG_E_INVALID;
    *text = NULL;
    struct store *st = &d->store[kind];
    int fds[FILES_MAX + 1];
    size_t sizes[FILES_MAX + 1];
    int count = 0, rc = DEVICELOG_OK;
    size_t total = 0;
    char path[PATH_MAX];

    pthread_mutex_lock(&st->lock);
    /* Oldest first: path.files ... path.1, then the current file. */
    for (int n = d->files; n >= 0 && rc == DEVICELOG_OK; n--) {
        if (n > 0 ? rotated_path(path, st, n) != 0 : snprintf(path, sizeof path, "%s", st->path) < 0)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            if (errno != ENOENT)
                rc = DEVICELOG_E_IO;
            continue;
        }
        struct stat sb;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            close(fd);
            rc = DEVICELOG_E_IO;
            continue;
        }
        fds[count] = fd;
        sizes[count++] = (size_t)sb.st_size;
        total += (size_t)sb.st_size;
    }
    char *out = NULL;
    size_t out_len = 0;
    if (rc == DEVICELOG_OK) {
        /* With a limit, read one byte before the tail too: it tells whether
         * the tail starts at a line boundary. */
        size_t start = max_bytes && total > max_bytes ? total - max_bytes : 0;
        size_t lead = start > 0 ? 1 : 0;
        size_t want = total - start + lead;
        out = malloc(want + 1);
        if (!out)
            rc = DEVICELOG_E_NOMEM;
        else if (read_span(fds, sizes, count, start - lead, out, want) != 0)
            rc = DEVICELOG_E_IO;
        if (rc == DEVICELOG_OK) {
            size_t skip = 0;
            if (lead) {
                char *nl = memchr(out, '\n', want);
                skip = nl ? (size_t)(nl - out) + 1 : want;
            }
            out_len = want - skip;
            memmove(out, out + skip, out_len);
            out[out_len] = '\0';
        }
    }
    pthread_mutex_unlock(&st->lock);
    for (int i = 0; i < count; i++)
        close(fds[i]);
    if (rc != DEVICELOG_OK) {
        free(out);
        return rc;
    }
    *text = out;
    if (len)
        *len = out_len;
    return DEVICELOG_OK;
}
