/* Unit tests for devicelog: the bounded ring, persistence by level, appending
 * across reopen, size rotation and its bounds, tail reads cut at a line,
 * neutralised control characters, truncation of long lines, file modes,
 * RFC 5424 syslog datagrams over UDP, and concurrent adders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "opennvt/devicelog.h"
#include "unit_helpers.h"

#define TS "2026-12-02T04:09:10.147Z"

static struct devicelog *open_log(const char *dir, const struct devicelog_settings *s)
{
    struct devicelog *d = NULL;
    int rc = devicelog_open(&d, dir, s);
    if (rc != DEVICELOG_OK)
        fail_msg("devicelog_open: %s", devicelog_strerror(rc));
    return d;
}

static char *file_in(const char *dir, const char *name)
{
    char path[PATH_MAX];
    return read_text_file(path_in(path, dir, name));
}

static long file_size(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    if (stat(path_in(path, dir, name), &st) != 0)
        return -1;
    return (long)st.st_size;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static char *read_persistent(struct devicelog *d, enum devicelog_kind kind, size_t max_bytes)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(devicelog_read_persistent(d, kind, max_bytes, &text, &len), DEVICELOG_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static char *read_volatile(struct devicelog *d, enum devicelog_kind kind, size_t max_bytes, unsigned long *dropped)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(devicelog_read_volatile(d, kind, max_bytes, &text, &len, dropped), DEVICELOG_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* Asserts text is lines "<prefix><n>" for consecutive n ending at last, and
 * returns how many there are. */
static int assert_consecutive_ending_at(const char *text, const char *prefix, int last)
{
    int count = 0, prev = -1;
    size_t plen = strlen(prefix);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (strncmp(p, prefix, plen) != 0)
            fail_msg("unexpected line '%.*s'", (int)(nl - p), p);
        int n = atoi(p + plen);
        if (prev >= 0 && n != prev + 1)
            fail_msg("line %d follows %d", n, prev);
        prev = n;
        count++;
        p = nl + 1;
    }
    assert_int_equal(prev, last);
    return count;
}

/* --- ring ------------------------------------------------------------------ */

static void test_ring_keeps_newest_within_bound_and_counts_dropped(void **state)
{
    struct temp_dir *t = *state;
    struct devicelog_settings s = { .ring_bytes = 256, .persist_level = LOG_LVL_CRIT };
    struct devicelog *d = open_log(t->path, &s);
    char line[32];
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof line, "line-%03d", i);
        devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_INFO, "test", line);
    }
    unsigned long dropped = 0;
    char *text = read_volatile(d, DEVICELOG_SYSTEM, 0, &dropped);
    int kept = assert_consecutive_ending_at(text, "line-", 99);
    /* 8 characters + a 4-byte header per line: 21 fit in 256 bytes. */
    assert_int_equal(kept, 21);
    assert_int_equal(dropped + (unsigned long)kept, 100);
    free(text);

    /* A limit keeps the newest whole lines only. */
    text = read_volatile(d, DEVICELOG_SYSTEM, 20, NULL);
    assert_string_equal(text, "line-098\nline-099\n");
    free(text);
    text = read_volatile(d, DEVICELOG_SYSTEM, 18, NULL);
    assert_string_equal(text, "line-098\nline-099\n");
    free(text);
    text = read_volatile(d, DEVICELOG_SYSTEM, 17, NULL);
    assert_string_equal(text, "line-099\n");
    free(text);

    /* A line larger than the whole ring replaces everything, cut to fit. */
    char big[300];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_INFO, "test", big);
    text = read_volatile(d, DEVICELOG_SYSTEM, 0, &dropped);
    assert_int_equal(strlen(text), 256 - 4 + 1);
    assert_int_equal(strspn(text, "z"), 256 - 4);
    assert_int_equal(dropped, 100);
    free(text);

    /* The other log has its own ring. */
    text = read_volatile(d, DEVICELOG_ACCESS, 0, &dropped);
    assert_string_equal(text, "");
    assert_int_equal(dropped, 0);
    free(text);
    devicelog_close(d);
}

/* --- persistence ----------------------------------------------------------- */

static void test_persist_level_decides_what_reaches_the_file(void **state)
{
    struct temp_dir *t = *state;
    struct devicelog_settings s = { .persist_level = LOG_LVL_NOTICE };
    struct devicelog *d = open_log(t->path, &s);
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_INFO, "soap", TS " info    soap      quiet");
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "soap", TS " notice  soap      kept");
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_CRIT, "system", TS " crit    system    loud");
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_DEBUG, "soap", TS " debug   soap      chatter");
    devicelog_add(d, DEVICELOG_ACCESS, LOG_LVL_DEBUG, "auth", TS " debug   auth      access always");

    char *file = file_in(t->path, "system.log");
    assert_non_null(file);
    assert_string_equal(file, TS " notice  soap      kept\n" TS " crit    system    loud\n");
    free(file);
    file = file_in(t->path, "access.log");
    assert_non_null(file);
    assert_string_equal(file, TS " debug   auth      access always\n");
    free(file);

    char *ring = read_volatile(d, DEVICELOG_SYSTEM, 0, NULL);
    assert_int_equal(count_lines(ring), 4);
    assert_non_null(strstr(ring, "quiet"));
    assert_non_null(strstr(ring, "chatter"));
    free(ring);

    char *text = read_persistent(d, DEVICELOG_SYSTEM, 0);
    assert_null(strstr(text, "quiet"));
    assert_non_null(strstr(text, "kept"));
    free(text);
    devicelog_close(d);
}

static void test_reopen_appends_to_the_existing_file(void **state)
{
    struct temp_dir *t = *state;
    struct devicelog_settings s = { .file_bytes = 64, .files = 2, .persist_level = LOG_LVL_INFO };
    struct devicelog *d = open_log(t->path, &s);
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "system", "before restart");
    devicelog_add(d, DEVICELOG_ACCESS, LOG_LVL_NOTICE, "auth", "access before");
    devicelog_close(d);

    d = open_log(t->path, &s);
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "system", "after restart");
    char *text = read_persistent(d, DEVICELOG_SYSTEM, 0);
    assert_string_equal(text, "before restart\nafter restart\n");
    free(text);
    text = read_persistent(d, DEVICELOG_ACCESS, 0);
    assert_string_equal(text, "access before\n");
    free(text);
    /* The ring is of this run only. */
    text = read_volatile(d, DEVICELOG_SYSTEM, 0, NULL);
    assert_string_equal(text, "after restart\n");
    free(text);
    devicelog_close(d);

    /* The size found on reopen counts toward rotation: 29 + 3 * 10 bytes
     * fill the file, the fourth 10-byte line goes to a new one. */
    d = open_log(t->path, &s);
    for (int i = 0; i < 4; i++)
        devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "system", "123456789");
    assert_int_equal(file_size(t->path, "system.log.1"), 59);
    assert_int_equal(file_size(t->path, "system.log"), 10);
    devicelog_close(d);
}

static void test_rotation_bounds_files_and_reads_oldest_first(void **state)
{
    struct temp_dir *t = *state;
    const size_t file_bytes = 128;
    struct devicelog_settings s = { .file_bytes = file_bytes, .files = 3, .persist_level = LOG_LVL_INFO };
    struct devicelog *d = open_log(t->path, &s);
    char line[32];
    for (int i = 0; i < 200; i++) {
        snprintf(line, sizeof line, "rotating %04d", i);  /* 13 + '\n' */
        devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "test", line);
    }
    /* system.log, .1, .2, .3 and access.log; no .4. */
    assert_int_equal(count_dir_entries(t->path), 5);
    assert_int_equal(file_size(t->path, "system.log.4"), -1);
    long total = 0;
    const char *names[] = { "system.log.3", "system.log.2", "system.log.1", "system.log" };
    char *expected = calloc(1, 4 * file_bytes + 1);
    assert_non_null(expected);
    for (size_t i = 0; i < 4; i++) {
        long size = file_size(t->path, names[i]);
        assert_true(size > 0 && size <= (long)file_bytes);
        total += size;
        char *part = file_in(t->path, names[i]);
        assert_non_null(part);
        strcat(expected, part);
        free(part);
    }
    assert_true(total <= 4 * (long)file_bytes);

    char *text = read_persistent(d, DEVICELOG_SYSTEM, 0);
    assert_string_equal(text, expected);
    /* 9 lines of 14 bytes per file; the current file holds 200 % 9 = 2. */
    assert_int_equal(assert_consecutive_ending_at(text, "rotating ", 199), 29);
    free(text);
    free(expected);
    devicelog_close(d);
}

static void test_read_persistent_tail_is_cut_at_a_line_boundary(void **state)
{
    struct temp_dir *t = *state;
    struct devicelog_settings s = { .file_bytes = 64, .files = 2, .persist_level = LOG_LVL_INFO };
    struct devicelog *d = open_log(t->path, &s);
    char line[32];
    for (int i = 0; i < 10; i++) {
        snprintf(line, sizeof line, "tail %04d", i);  /* 9 + '\n' */
        devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "test", line);
    }
    /* 6 lines per file: .1 holds 0..5, the current one 6..9. A tail of 35
     * bytes starts inside "tail 0006", so that line is left out. */
    char *text = read_persistent(d, DEVICELOG_SYSTEM, 35);
    assert_string_equal(text, "tail 0007\ntail 0008\ntail 0009\n");
    free(text);
    /* Exactly on a boundary the first line is whole and kept. */
    text = read_persistent(d, DEVICELOG_SYSTEM, 30);
    assert_string_equal(text, "tail 0007\ntail 0008\ntail 0009\n");
    free(text);
    /* Crossing from the rotated file into the current one. */
    text = read_persistent(d, DEVICELOG_SYSTEM, 55);
    assert_string_equal(text, "tail 0005\ntail 0006\ntail 0007\ntail 0008\ntail 0009\n");
    free(text);
    /* Shorter than the newest line: nothing whole fits. */
    text = read_persistent(d, DEVICELOG_SYSTEM, 5);
    assert_string_equal(text, "");
    free(text);
    text = read_persistent(d, DEVICELOG_SYSTEM, 10000);
    assert_int_equal(assert_consecutive_ending_at(text, "tail ", 9), 10);
    free(text);
    devicelog_close(d);
}

static void test_control_characters_are_neutralised(void **state)
{
    struct temp_dir *t = *state;
    struct devicelog_settings s = { .persist_level = LOG_LVL_INFO };
    struct devicelog *d = open_log(t->path, &s);
    devicelog_add(d, DEVICELOG_ACCESS, LOG_LVL_NOTICE, "auth", "user=a\nfake line\r\x1b[31m\ttab\x7f" "end");
    char *file = file_in(t->path, "access.log");
    assert_non_null(file);
    assert_string_equal(file, "user=a?fake line??[31m?tab?end\n");
    free(file);
    char *ring = read_volatile(d, DEVICELOG_ACCESS, 0, NULL);
    assert_string_equal(ring, "user=a?fake line??[31m?tab?end\n");
    free(ring);
    devicelog_close(d);
}

static void test_line_longer_than_a_file_is_truncated(void **state)
{
    struct temp_dir *t = *state;
    struct devicelog_settings s = { .file_bytes = 64, .files = 2, .persist_level = LOG_LVL_INFO };
    struct devicelog *d = open_log(t->path, &s);
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_ERR, "test", big);
    assert_int_equal(file_size(t->path, "system.log"), 64);
    char *file = file_in(t->path, "system.log");
    assert_non_null(file);
    assert_int_equal(strlen(file), 64);
    assert_int_equal(strspn(file, "x"), 63);
    assert_int_equal(file[63], '\n');
    free(file);
    /* The next line starts a new file. */
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_ERR, "test", "short");
    assert_int_equal(file_size(t->path, "system.log.1"), 64);
    file = file_in(t->path, "system.log");
    assert_string_equal(file, "short\n");
    free(file);
    devicelog_close(d);
}

static void test_directory_is_0700_and_files_0600(void **state)
{
    struct temp_dir *t = *state;
    char dir[PATH_MAX], path[PATH_MAX];
    path_in(dir, t->path, "log");
    mode_t old = umask(0);  /* the modes must come from the module, not the umask */
    struct devicelog *d = NULL;
    int rc = devicelog_open(&d, dir, NULL);
    umask(old);
    assert_int_equal(rc, DEVICELOG_OK);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(stat(path_in(path, dir, "system.log"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(path_in(path, dir, "access.log"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    devicelog_close(d);

    /* A file left world-readable is tightened on open. */
    assert_int_equal(chmod(path_in(path, dir, "system.log"), 0644), 0);
    d = open_log(dir, NULL);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    devicelog_close(d);

    /* A path that is a file, not a directory, is refused. */
    d = (struct devicelog *)t;
    assert_int_equal(devicelog_open(&d, path, NULL), DEVICELOG_E_IO);
    assert_null(d);
}

/* --- syslog ---------------------------------------------------------------- */

/* A UDP socket on an ephemeral loopback port; *port gets the port. */
static int udp_listener(int family, int *port)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = { 0 };
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    struct timeval tv = { .tv_sec = 2 };
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* Receives one datagram as a string (buf of 4096), or fails the test. */
static const char *receive(int fd, char *buf)
{
    ssize_t n = recv(fd, buf, 4095, 0);
    if (n < 0)
        fail_msg("no syslog datagram received");
    buf[n] = '\0';
    return buf;
}

/* An Access line is stored in both logs and forwarded once, as authpriv. */
static void test_access_line_goes_to_both_logs_and_out_once(void **state)
{
    struct temp_dir *t = *state;
    int port = 0;
    int fd = udp_listener(AF_INET, &port);
    assert_true(fd >= 0);
    char server[64], buf[4096];
    snprintf(server, sizeof server, "127.0.0.1:%d", port);
    struct devicelog_settings s = { .persist_level = LOG_LVL_NOTICE, .syslog_server = server, .hostname = "cam-1" };
    struct devicelog *d = open_log(t->path, &s);
    devicelog_add_access(d, LOG_LVL_NOTICE, "access", TS " notice  access    'admin' ran tds:SetNTP");
    assert_string_equal(receive(fd, buf), "<85>1 " TS " cam-1 opennvtd - access - notice  access    'admin' ran tds:SetNTP");
    struct pollfd p = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, 200), 0);   /* no second datagram */
    char *text;
    size_t len;
    assert_int_equal(devicelog_read_persistent(d, DEVICELOG_SYSTEM, 0, &text, &len), DEVICELOG_OK);
    assert_non_null(strstr(text, "ran tds:SetNTP"));
    free(text);
    assert_int_equal(devicelog_read_persistent(d, DEVICELOG_ACCESS, 0, &text, &len), DEVICELOG_OK);
    assert_non_null(strstr(text, "ran tds:SetNTP"));
    free(text);
    devicelog_close(d);
    close(fd);
}

static void test_syslog_datagrams_have_the_rfc5424_header(void **state)
{
    struct temp_dir *t = *state;
    int port = 0;
    int fd = udp_listener(AF_INET, &port);
    assert_true(fd >= 0);
    char server[64], buf[4096];
    snprintf(server, sizeof server, "127.0.0.1:%d", port);
    struct devicelog_settings s = { .persist_level = LOG_LVL_NOTICE, .syslog_server = server, .hostname = "cam-1" };
    struct devicelog *d = open_log(t->path, &s);

    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "soap", TS " notice  soap      started");
    assert_string_equal(receive(fd, buf), "<133>1 " TS " cam-1 opennvtd - soap - notice  soap      started");
    devicelog_add(d, DEVICELOG_ACCESS, LOG_LVL_WARNING, "auth", TS " warning auth      login failed for 'x'");
    assert_string_equal(receive(fd, buf), "<84>1 " TS " cam-1 opennvtd - auth - warning auth      login failed for 'x'");
    /* Below persist_level: still forwarded. No timestamp: NILVALUE. */
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_DEBUG, "disc", "no timestamp here");
    assert_string_equal(receive(fd, buf), "<135>1 - cam-1 opennvtd - disc - no timestamp here");
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_CRIT, "sys", "2026-12-02T04:09:10+01:00 offset");
    assert_string_equal(receive(fd, buf), "<130>1 2026-12-02T04:09:10+01:00 cam-1 opennvtd - sys - offset");
    devicelog_add(d, DEVICELOG_ACCESS, LOG_LVL_ERR, "a b\n", "2026-12-02T04:09:10.1234567Z too many digits");
    assert_string_equal(receive(fd, buf), "<83>1 - cam-1 opennvtd - a_b_ - 2026-12-02T04:09:10.1234567Z too many digits");

    /* A datagram is at most 2048 bytes. */
    char big[3000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_INFO, "big", big);
    assert_int_equal(strlen(receive(fd, buf)), 2048);
    assert_int_equal(strncmp(buf, "<134>1 - cam-1 opennvtd - big - yyy", 35), 0);
    devicelog_close(d);
    close(fd);

    /* "[v6]:port", when the host has IPv6 loopback. */
    fd = udp_listener(AF_INET6, &port);
    if (fd < 0)
        return;
    snprintf(server, sizeof server, "[::1]:%d", port);
    d = open_log(t->path, &s);
    devicelog_add(d, DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "soap", TS " six");
    assert_string_equal(receive(fd, buf), "<133>1 " TS " cam-1 opennvtd - soap - six");
    devicelog_close(d);
    close(fd);
}

static void test_bad_syslog_servers_are_refused(void **state)
{
    struct temp_dir *t = *state;
    const char *bad[] = {
        "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:x514", "127.0.0.1:514x", "127.0.0.1:-1",
        "[::1", "[::1]x", "[::1]:", "[]:514", "[127.0.0.1]:514", "host name", "host\n", ":514",
        "300.1.1.1:514x", "[::1]:99999", "a:b:c:d", "host/x:514",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct devicelog_settings s = { .syslog_server = bad[i] };
        struct devicelog *d = (struct devicelog *)t;
        int rc = devicelog_open(&d, t->path, &s);
        if (rc != DEVICELOG_E_INVALID)
            fail_msg("'%s' gave %d", bad[i], rc);
        assert_null(d);
    }
    const char *good[] = { "127.0.0.1", "127.0.0.1:5514", "localhost:5514", "::1", "[::1]", "" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct devicelog_settings s = { .syslog_server = good[i] };
        struct devicelog *d = NULL;
        int rc = devicelog_open(&d, t->path, &s);
        /* No IPv6 on the host is an I/O error, not a refusal of the syntax. */
        if (rc != DEVICELOG_OK && !(rc == DEVICELOG_E_IO && strchr(good[i], ':') != strrchr(good[i], ':')))
            fail_msg("'%s' refused: %s", good[i], devicelog_strerror(rc));
        devicelog_close(d);
    }
}

static void test_invalid_settings_are_refused(void **state)
{
    struct temp_dir *t = *state;
    const struct devicelog_settings bad[] = {
        { .files = -1 },
        { .files = 1000 },
        { .file_bytes = 10 },
        { .ring_bytes = 8 },
        { .persist_level = (enum log_level)9 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct devicelog *d = (struct devicelog *)t;
        if (devicelog_open(&d, t->path, &bad[i]) != DEVICELOG_E_INVALID)
            fail_msg("settings #%zu accepted", i);
        assert_null(d);
    }
    struct devicelog *d = NULL;
    assert_int_equal(devicelog_open(&d, "", NULL), DEVICELOG_E_INVALID);
    const int codes[] = { DEVICELOG_OK, DEVICELOG_E_IO, DEVICELOG_E_NOMEM, DEVICELOG_E_INVALID };
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            assert_string_not_equal(devicelog_strerror(codes[i]), devicelog_strerror(codes[j]));
    assert_string_equal(devicelog_strerror(42), "unknown error");
}

static void test_global_log_is_set_and_cleared_on_close(void **state)
{
    struct temp_dir *t = *state;
    assert_null(devicelog_global());
    struct devicelog *d = open_log(t->path, NULL);
    devicelog_set_global(d);
    assert_ptr_equal(devicelog_global(), d);
    devicelog_close(d);
    assert_null(devicelog_global());
}

/* --- concurrency ----------------------------------------------------------- */

#define THREADS 4
#define LINES_PER_THREAD 1000

struct adder {
    struct devicelog *d;
    int id;
};

static void *add_lines(void *arg)
{
    struct adder *a = arg;
    char line[64];
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        snprintf(line, sizeof line, TS " notice  test      #%d/%05d", a->id, i);
        devicelog_add(a->d, i % 2 ? DEVICELOG_ACCESS : DEVICELOG_SYSTEM, LOG_LVL_NOTICE, "test", line);
    }
    return NULL;
}

/* Every thread's lines are all there, each thread's in its order. */
static void assert_all_lines(const char *text, int parity)
{
    int next[THREADS] = { 0 };
    for (int i = 0; i < THREADS; i++)
        next[i] = parity;
    size_t lines = 0;
    for (const char *p = text; *p; lines++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        int id = -1, n = -1;
        const char *tag = strchr(p, '#');
        assert_true(tag && tag < nl);
        assert_int_equal(sscanf(tag, "#%d/%d", &id, &n), 2);
        assert_true(id >= 0 && id < THREADS);
        if (n != next[id])
            fail_msg("thread %d: line %d where %d was expected", id, n, next[id]);
        next[id] += 2;
        p = nl + 1;
    }
    assert_int_equal(lines, THREADS * LINES_PER_THREAD / 2);
}

static void test_concurrent_adders_with_rotation_lose_no_line(void **state)
{
    struct temp_dir *t = *state;
    /* 2000 lines of 52 bytes per log in 4 KiB files: about 26 rotations,
     * with room for all of them in 64 + 1 files. */
    struct devicelog_settings s = { .file_bytes = 4096, .files = 64, .persist_level = LOG_LVL_INFO };
    struct devicelog *d = open_log(t->path, &s);
    pthread_t th[THREADS];
    struct adder a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (struct adder){ .d = d, .id = i };
        assert_int_equal(pthread_create(&th[i], NULL, add_lines, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    assert_true(file_size(t->path, "system.log.20") > 0);
    char *text = read_persistent(d, DEVICELOG_SYSTEM, 0);
    assert_all_lines(text, 0);
    free(text);
    text = read_persistent(d, DEVICELOG_ACCESS, 0);
    assert_all_lines(text, 1);
    free(text);
    unsigned long dropped = 1;
    text = read_volatile(d, DEVICELOG_SYSTEM, 0, &dropped);
    assert_all_lines(text, 0);
    assert_int_equal(dropped, 0);
    free(text);
    devicelog_close(d);
}

#define DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, temp_dir_setup, temp_dir_teardown)

static const struct CMUnitTest regular_tests[] = {
    DIR_TEST(test_ring_keeps_newest_within_bound_and_counts_dropped),
    DIR_TEST(test_persist_level_decides_what_reaches_the_file),
    DIR_TEST(test_reopen_appends_to_the_existing_file),
    DIR_TEST(test_rotation_bounds_files_and_reads_oldest_first),
    DIR_TEST(test_read_persistent_tail_is_cut_at_a_line_boundary),
    DIR_TEST(test_control_characters_are_neutralised),
    DIR_TEST(test_line_longer_than_a_file_is_truncated),
    DIR_TEST(test_directory_is_0700_and_files_0600),
    DIR_TEST(test_syslog_datagrams_have_the_rfc5424_header),
    DIR_TEST(test_access_line_goes_to_both_logs_and_out_once),
    DIR_TEST(test_bad_syslog_servers_are_refused),
    DIR_TEST(test_invalid_settings_are_refused),
    DIR_TEST(test_global_log_is_set_and_cleared_on_close),
    DIR_TEST(test_concurrent_adders_with_rotation_lose_no_line),
};

UNIT_MAIN("devicelog", regular_tests)
