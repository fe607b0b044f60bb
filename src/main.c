/* opennvtd: options, configuration, state directory, and the lifecycle of the
 * services (start, restart on SystemReboot or SIGHUP, clean stop on SIGTERM). */
#include "opennvt/netif.h"
#include "opennvt/motion.h"
#include "opennvt/accesspolicy.h"
#include "opennvt/atomicfile.h"
#include "opennvt/authn_store.h"
#include "opennvt/backup.h"
#include "opennvt/authn.h"
#include "opennvt/config.h"
#include "opennvt/deviceid.h"
#include "opennvt/deviceca.h"
#include "opennvt/devclock.h"
#include "opennvt/devicelog.h"
#include "opennvt/discovery.h"
#include "opennvt/encoder.h"
#include "opennvt/events.h"
#include "opennvt/factoryreset.h"
#include "opennvt/ipfilter.h"
#include "opennvt/keystore.h"
#include "opennvt/log.h"
#include "opennvt/mediacfg.h"
#include "opennvt/netcfg.h"
#include "opennvt/onvif.h"
#include "opennvt/rtspserver.h"
#include "opennvt/secretbox.h"
#include "opennvt/soapserver.h"
#include "opennvt/source.h"
#include "opennvt/stream.h"
#include "opennvt/tlspolicy.h"
#include "opennvt/users.h"

#include <libavutil/log.h>
#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef OPENNVT_VERSION
#define OPENNVT_VERSION "0.0.0"
#endif

#define EXIT_RUNTIME 1
#define EXIT_CONFIG 2
#define MAX_OVERRIDES 16
#define DEVICECA_REFRESH_S 5

struct override {
    const char *path;
    const char *value;
};

struct daemon_opts {
    const char *config_file;
    const char *ports_file;
    int foreground;
    int print_config;
    const char *create_admin;    /* --create-admin NAME */
    const char *factory_reset;   /* --factory-reset soft|hard */
    size_t n_overrides;
    struct override overrides[MAX_OVERRIDES];
};

struct services {
    struct opennvt_config cfg;
    struct onvif_device dev;
    struct netcfg *netcfg;
    struct secretbox *secretbox;
    struct users *users;
    struct authn *authn;
    struct ipfilter *ipfilter;
    struct keystore *keystore;
    struct deviceca *deviceca;
    struct tlspolicy *tlspolicy;
    struct soapserver *soap;
    struct discovery *discovery;
    struct source *source;           /* media: capture, configurations, encoders, RTSP */
    struct mediacfg *mediacfg;
    struct stream_hub *streams;
    struct rtspserver *rtsp;
    struct events *events;           /* event bus, pull points; motion detection on the source */
    struct motion *motion;
    struct devclock *clock;          /* open for the daemon's whole life */
    struct devicelog *devicelog;
    pthread_t ntp_thread;
    pthread_mutex_t ntp_lock;
    pthread_cond_t ntp_cond;
    int ntp_kick, ntp_stop, ntp_running;
    const char *ports_file;          /* --ports-file, rewritten when ports change */
    unsigned forced_ports;           /* TLSPOLICY_FORCE_*: ports given on the command line */
    int reserved_ports[TLSPOLICY_MAX_RESERVED_PORTS];
    size_t n_reserved_ports;
    volatile sig_atomic_t pending_reset;   /* 1 + enum factoryreset_kind, from SetSystemFactoryDefault */
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: opennvtd [OPTIONS]\n"
            "ONVIF network video transmitter daemon.\n\n"
            "  --config FILE         XML configuration file (see --print-config)\n"
            "  --state-dir DIR       persistent state directory (created 0700)\n"
            "  --bind ADDR           listen address, IPv4 or IPv6 (default: all)\n"
            "  --http-port N         HTTP/SOAP port, 0 = pick a free port\n"
            "  --https-port N        HTTPS (SOAP over TLS) port, 0 = pick a free port\n"
            "  --discovery-port N    WS-Discovery UDP port (default 3702), 0 = pick a free port\n"
            "  --rtsp-port N         RTSP port (streaming, also RTSP over HTTP), 0 = pick a free port\n"
            "  --source SPEC         video source: testsrc (default), testsrc:still, v4l2:/dev/videoN, file:PATH\n"
            "  --log-level LEVEL     crit, err, warning, notice, info or debug\n"
            "  --foreground          stay in the foreground (default: detach)\n"
            "  --ports-file FILE     after binding, write the actual ports as name=N lines\n"
            "  --print-config        print the effective configuration as XML and exit\n"
            "  --factory-reset KIND  soft or hard: reset the state directory (opennvtd must not be running) and exit\n"
            "  --create-admin NAME   create Administrator NAME with the password read from\n"
            "                        standard input (one line), then exit; opennvtd must not be\n"
            "                        running on the same state directory\n"
            "  --help                this text\n"
            "  --version             print the version\n\n"
            "Exit status: 0 stopped cleanly, 1 runtime failure, 2 configuration or usage error.\n");
}

static int add_override(struct daemon_opts *o, const char *path, const char *value)
{
    if (o->n_overrides >= MAX_OVERRIDES)
        return -1;
    o->overrides[o->n_overrides++] = (struct override){ path, value };
    return 0;
}

static int parse_args(int argc, char **argv, struct daemon_opts *o)
{
    enum { OPT_CONFIG = 256, OPT_STATE, OPT_BIND, OPT_HTTP, OPT_HTTPS, OPT_DISC, OPT_RTSP, OPT_SOURCE, OPT_LOG, OPT_FG, OPT_PORTS, OPT_PRINT, OPT_CREATE_ADMIN, OPT_FACTORY_RESET, OPT_HELP, OPT_VERSION };
    static const struct option longopts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "state-dir", required_argument, NULL, OPT_STATE },
        { "bind", required_argument, NULL, OPT_BIND },
        { "http-port", required_argument, NULL, OPT_HTTP },
        { "https-port", required_argument, NULL, OPT_HTTPS },
        { "discovery-port", required_argument, NULL, OPT_DISC },
        { "rtsp-port", required_argument, NULL, OPT_RTSP },
        { "source", required_argument, NULL, OPT_SOURCE },
        { "log-level", required_argument, NULL, OPT_LOG },
        { "foreground", no_argument, NULL, OPT_FG },
        { "ports-file", required_argument, NULL, OPT_PORTS },
        { "print-config", no_argument, NULL, OPT_PRINT },
        { "create-admin", required_argument, NULL, OPT_CREATE_ADMIN },
        { "factory-reset", required_argument, NULL, OPT_FACTORY_RESET },
        { "help", no_argument, NULL, OPT_HELP },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG: o->config_file = optarg; break;
        case OPT_STATE: add_override(o, "state-dir", optarg); break;
        case OPT_BIND: add_override(o, "network/bind", optarg); break;
        case OPT_HTTP: add_override(o, "network/http-port", optarg); break;
        case OPT_HTTPS: add_override(o, "network/https-port", optarg); break;
        case OPT_DISC: add_override(o, "discovery/port", optarg); break;
        case OPT_RTSP: add_override(o, "media/rtsp-port", optarg); break;
        case OPT_SOURCE: add_override(o, "media/source", optarg); break;
        case OPT_LOG: add_override(o, "log/level", optarg); break;
        case OPT_FG: o->foreground = 1; break;
        case OPT_PORTS: o->ports_file = optarg; break;
        case OPT_PRINT: o->print_config = 1; break;
        case OPT_CREATE_ADMIN: o->create_admin = optarg; break;
        case OPT_FACTORY_RESET:
            if (factoryreset_kind_from_name(optarg) < 0) {
                fprintf(stderr, "opennvtd: --factory-reset takes soft or hard\n");
                return -1;
            }
            o->factory_reset = optarg;
            break;
        case OPT_HELP: usage(stdout); exit(0);
        case OPT_VERSION: printf("opennvtd %s\n", OPENNVT_VERSION); exit(0);
        default:
            fprintf(stderr, "opennvtd: unknown option or missing value: %s\n", argv[optind - 1]);
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "opennvtd: unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Defaults, then the file, then the command line. Returns 0 or -1 (message printed). */
static int build_config(const struct daemon_opts *o, struct opennvt_config *cfg)
{
    char err[512];
    config_defaults(cfg);
    if (o->config_file && config_load_file(cfg, o->config_file, err, sizeof err) != 0) {
        fprintf(stderr, "opennvtd: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < o->n_overrides; i++) {
        if (config_set(cfg, o->overrides[i].path, o->overrides[i].value, err, sizeof err) != 0) {
            fprintf(stderr, "opennvtd: command line: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static void percent_encode(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *in && k + 4 < outlen; in++) {
        unsigned char ch = (unsigned char)*in;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
            out[k++] = (char)ch;
        } else {
            out[k++] = '%';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
    }
    out[k] = '\0';
}

/* Every network-facing service and its state, one "name=value" per line:
 * the bound ports (http, https, discovery; a service that is off has no
 * line) and the services that listen on nothing (rtsp, multicast streaming,
 * syslog forwarding, the NTP client), so that an administrator can check
 * that nothing unused is reachable. */
static int services_view(const struct services *s, char *buf, size_t len)
{
    int n = 0;
    struct soapserver *soap = s->soap;
    if (soap && soapserver_port(soap) > 0)
        n += snprintf(buf + n, len - (size_t)n, "http=%d\n", soapserver_port(soap));
    if (soap && soapserver_https_port(soap) > 0)
        n += snprintf(buf + n, len - (size_t)n, "https=%d\n", soapserver_https_port(soap));
    if (s->discovery)
        n += snprintf(buf + n, len - (size_t)n, "discovery=%d\n", discovery_port(s->discovery));
    struct devclock_config cc = { 0 };
    if (s->clock)
        devclock_get(s->clock, &cc);
    if (s->rtsp)
        n += snprintf(buf + n, len - (size_t)n, "rtsp=%d\n", rtspserver_port(s->rtsp));
    else
        n += snprintf(buf + n, len - (size_t)n, "rtsp=off\n");
    n += snprintf(buf + n, len - (size_t)n, "multicast=off\nsyslog=%s\nntp=%s\n",
                  s->cfg.syslog_server[0] ? s->cfg.syslog_server : "off",
                  cc.type == DEVCLOCK_NTP ? "client" : "off");
    return n > 0 && (size_t)n < len ? n : -1;
}

static int write_ports_file(const char *path, const struct services *s)
{
    char buf[512];
    int n = services_view(s, buf, sizeof buf);
    if (n < 0)
        return -1;
    int rc = atomicfile_write(path, buf, (size_t)n, 0644);
    if (rc != 0)
        log_err("system", "cannot write ports file %s: %s", path, strerror(-rc));
    return rc;
}

static void log_services(const struct services *s)
{
    char buf[512];
    if (services_view(s, buf, sizeof buf) < 0)
        return;
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    log_notice("system", "network services: %s", buf);
}

static void on_netcfg_change(void *arg)
{
    struct services *s = arg;
    discovery_settings_changed(s->discovery);
}

/* The listener moved or closed a port (SetNetworkProtocols, a rollback). */
static void on_ports_changed(void *arg)
{
    struct services *s = arg;
    struct soapserver *soap = __atomic_load_n(&s->soap, __ATOMIC_ACQUIRE);
    if (!soap)
        return;
    if (s->ports_file)
        write_ports_file(s->ports_file, s);
    log_services(s);
    int http = soapserver_port(soap);
    discovery_set_service_port(__atomic_load_n(&s->discovery, __ATOMIC_ACQUIRE), http ? http : soapserver_https_port(soap),
                               http == 0);
}

/* "22 53 ..." -> ports; -1 when malformed. */
static int parse_reserved_ports(const char *text, int *ports, size_t max, size_t *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 65535 || (*end && *end != ' ' && *end != ',') || *n >= max)
            return -1;
        ports[(*n)++] = (int)v;
        p = end;
    }
    return 0;
}

/* ---- the device clock's NTP discipline and the device log's stores ---- */

#define NTP_INTERVAL_S 900

static void kick_ntp(void *arg)
{
    struct services *s = arg;
    pthread_mutex_lock(&s->ntp_lock);
    s->ntp_kick = 1;
    pthread_cond_signal(&s->ntp_cond);
    pthread_mutex_unlock(&s->ntp_lock);
}

/* While the type is NTP: a synchronisation at start, when kicked, and every
 * NTP_INTERVAL_S; results and failures logged. */
static void *ntp_main(void *arg)
{
    struct services *s = arg;
    pthread_mutex_lock(&s->ntp_lock);
    s->ntp_kick = 1;
    while (!s->ntp_stop) {
        if (!s->ntp_kick) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += NTP_INTERVAL_S;
            pthread_cond_timedwait(&s->ntp_cond, &s->ntp_lock, &until);
            if (s->ntp_stop)
                break;
        }
        s->ntp_kick = 0;
        pthread_mutex_unlock(&s->ntp_lock);
        struct devclock_config cc;
        devclock_get(s->clock, &cc);
        if (cc.type == DEVCLOCK_NTP && cc.n_ntp > 0) {
            double step = 0;
            int rc = devclock_sync_ntp(s->clock, &step);
            if (rc == DEVCLOCK_OK)
                log_info("clock", "NTP: device clock corrected by %.3f s", step);
            else
                log_warning("clock", "NTP synchronisation failed: %s", devclock_strerror(rc));
        }
        pthread_mutex_lock(&s->ntp_lock);
    }
    pthread_mutex_unlock(&s->ntp_lock);
    return NULL;
}

static void devicelog_sink(void *arg, enum log_level level, const char *area, const char *line)
{
    struct devicelog *d = arg;
    if (level > LOG_LVL_INFO)
        return;   /* debug lines are for the console only */
    /* The Access log: logins and changes ("access"), and the authentication
     * failure warnings; single refusals stay in the System log, so a client
     * cannot flush the Access log by failing fast. */
    if (!strcmp(area, "access") || (!strcmp(area, "auth") && level <= LOG_LVL_WARNING))
        devicelog_add_access(d, level, area, line);
    else
        devicelog_add(d, DEVICELOG_SYSTEM, level, area, line);
}

/* The clock and the log outlive in-process restarts (SystemReboot, SIGHUP):
 * opened once after the state directory is locked. */
static int open_clock_and_log(struct services *s)
{
    const struct opennvt_config *cfg = &s->cfg;
    struct devclock_settings cs = { .ntp_timeout_ms = 1500, .ntp_max_step_s = 0, .ntp_max_resync_step_s = 3600 };
    int rc = devclock_open(&s->clock, cfg->state_dir, &cs);
    if (rc != DEVCLOCK_OK) {
        log_crit("system", "device clock in %s: %s", cfg->state_dir, devclock_strerror(rc));
        return -1;
    }
    devclock_set_global(s->clock);
    log_set_clock(devclock_global_now_ts);
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/log", cfg->state_dir);
    struct devicelog_settings ls = {
        .file_bytes = (size_t)cfg->log_file_kib * 1024, .files = cfg->log_files,
        .persist_level = (enum log_level)log_level_from_name(cfg->log_persist_level),
        .syslog_server = cfg->syslog_server,
    };
    rc = devicelog_open(&s->devicelog, dir, &ls);
    if (rc == DEVICELOG_E_INVALID && ls.syslog_server && ls.syslog_server[0]) {
        /* An optional forwarder (DNS not up yet, a typo) must not keep the device down. */
        ls.syslog_server = NULL;
        rc = devicelog_open(&s->devicelog, dir, &ls);
        if (rc == DEVICELOG_OK)
            log_warning("system", "log/syslog-server '%s' is not usable: the device log is not forwarded", cfg->syslog_server);
    }
    if (rc != DEVICELOG_OK) {
        log_crit("system", "device log in %s: %s", dir, devicelog_strerror(rc));
        return -1;
    }
    devicelog_set_global(s->devicelog);
    log_set_sink(devicelog_sink, s->devicelog);
    pthread_mutex_init(&s->ntp_lock, NULL);
    pthread_cond_init(&s->ntp_cond, NULL);
    s->ntp_running = pthread_create(&s->ntp_thread, NULL, ntp_main, s) == 0;
    return 0;
}

static void close_clock_and_log(struct services *s)
{
    if (s->ntp_running) {
        pthread_mutex_lock(&s->ntp_lock);
        s->ntp_stop = 1;
        pthread_cond_signal(&s->ntp_cond);
        pthread_mutex_unlock(&s->ntp_lock);
        pthread_join(s->ntp_thread, NULL);
        s->ntp_running = 0;
    }
    pthread_mutex_destroy(&s->ntp_lock);
    pthread_cond_destroy(&s->ntp_cond);
    s->ntp_stop = 0;
    log_set_sink(NULL, NULL);
    devicelog_set_global(NULL);
    devicelog_close(s->devicelog);
    s->devicelog = NULL;
    log_set_clock(NULL);
    devclock_set_global(NULL);
    devclock_close(s->clock);
    s->clock = NULL;
}

/* Recorded first, so that the reset happens even if the daemon stops
 * before the restart (factoryreset_resume at the next start). */
static void request_factory_reset(void *arg, int hard)
{
    struct services *s = arg;
    if (factoryreset_request(s->cfg.state_dir, hard ? FACTORYRESET_HARD : FACTORYRESET_SOFT) != 0)
        log_err("system", "the factory reset could not be recorded; it runs at the restart only");
    s->pending_reset = 1;
    kill(getpid(), SIGUSR1);
}

/* Before anything opens the state: a recorded factory reset, then a
 * verified restore, are carried out (each completes one a crash cut short). */
static int settle_state(struct services *s)
{
    int rc = factoryreset_resume(s->cfg.state_dir);
    if (rc < 0) {
        log_crit("system", "a recorded factory reset could not be completed: %s", strerror(-rc));
        return -1;
    }
    if (backup_apply_staged(s->cfg.state_dir) < 0)
        log_crit("system", "a staged configuration restore could not be completed; it is retried at the next start");
    return 0;
}

static void request_restart(void *arg)
{
    (void)arg;
    kill(getpid(), SIGUSR1);
}

static struct authn_settings authn_settings_of(const struct opennvt_config *cfg)
{
    return (struct authn_settings){
        .realm = "OpenNVT",
        .nonce_lifetime_s = cfg->digest_nonce_lifetime_s,
        .created_window_s = cfg->usernametoken_window_s,
        .allow_basic = cfg->http_basic,
        .now = devclock_global_now,
    };
}

static void close_security(struct services *s)
{
    tlspolicy_close(s->tlspolicy);
    s->tlspolicy = NULL;
    deviceca_close(s->deviceca);
    s->deviceca = NULL;
    keystore_close(s->keystore);
    s->keystore = NULL;
    authn_close(s->authn);
    s->authn = NULL;
    ipfilter_close(s->ipfilter);
    s->ipfilter = NULL;
    users_close(s->users);
    s->users = NULL;
    secretbox_close(s->secretbox);
    s->secretbox = NULL;
}

/* The device key, users, IP filter and authenticator, in dependency order. */
static int open_security(struct services *s)
{
    const struct opennvt_config *cfg = &s->cfg;
    int rc = secretbox_open(&s->secretbox, cfg->state_dir);
    if (rc != SECRETBOX_OK) {
        log_crit("system", "device key in %s: %s", cfg->state_dir, secretbox_strerror(rc));
        return -1;
    }
    rc = users_open(&s->users, cfg->state_dir, s->secretbox);
    if (rc != USERS_OK) {
        log_crit("system", "users in %s: %s", cfg->state_dir, users_strerror(rc));
        return -1;
    }
    rc = ipfilter_open(&s->ipfilter, cfg->state_dir);
    if (rc != IPFILTER_OK) {
        log_crit("system", "IP address filter in %s: %s", cfg->state_dir, ipfilter_strerror(rc));
        return -1;
    }
    struct authn_settings as = authn_settings_of(cfg);
    if (authn_open(&s->authn, s->users, s->secretbox, &as) != AUTHN_OK) {
        log_crit("system", "cannot start the authenticator");
        return -1;
    }
    struct authn_stored stored = { .digest_algorithms = AUTHN_ALG_ALL };
    authn_get_failure_policy(s->authn, &stored.failure);
    rc = authn_store_load(cfg->state_dir, &stored);
    if (rc == 0 && (authn_set_failure_policy(s->authn, &stored.failure) != 0 ||
                    authn_set_digest_algorithms(s->authn, stored.digest_algorithms) != 0))
        rc = -EINVAL;
    if (rc != 0 && rc != -ENOENT) {
        log_crit("system", "%s/authn.xml is unreadable or out of range", cfg->state_dir);
        return -1;
    }
    rc = keystore_open(&s->keystore, cfg->state_dir, cfg->factory_dir[0] ? cfg->factory_dir : NULL, s->secretbox);
    if (rc != KEYSTORE_OK) {
        log_crit("system", "keystore in %s: %s", cfg->state_dir, keystore_strerror(rc));
        return -1;
    }
    if (parse_reserved_ports(cfg->reserved_ports, s->reserved_ports, TLSPOLICY_MAX_RESERVED_PORTS,
                             &s->n_reserved_ports) != 0) {
        log_crit("config", "network/reserved-ports: not a list of ports 1..65535 (at most %d)", TLSPOLICY_MAX_RESERVED_PORTS);
        return -1;
    }
    /* HTTP and HTTPS may not move onto the RTSP port. */
    if (cfg->rtsp_enabled && cfg->rtsp_port > 0 && s->n_reserved_ports < TLSPOLICY_MAX_RESERVED_PORTS)
        s->reserved_ports[s->n_reserved_ports++] = cfg->rtsp_port;
    struct tlspolicy_settings tps = {
        .defaults = { .http_enabled = cfg->http_enabled, .http_port = cfg->http_port,
                      .https_enabled = cfg->https_enabled, .https_port = cfg->https_port },
        .forced = s->forced_ports,
        .reserved_ports = s->reserved_ports,
        .n_reserved_ports = s->n_reserved_ports,
        .confirm_window_s = cfg->confirm_window_s,
        .expiry_warning_days = cfg->cert_expiry_warning_days,
        .now = devclock_global_now,
    };
    rc = tlspolicy_open(&s->tlspolicy, cfg->state_dir, s->keystore, &tps);
    if (rc != TLSPOLICY_OK) {
        log_crit("system", "network and TLS settings in %s: %s", cfg->state_dir, tlspolicy_strerror(rc));
        return -1;
    }
    /* CN is at most 64 characters: shorten the manufacturer part to fit. */
    char ca_name[64 + 1 + CONFIG_STR_MAX];
    int fixed_len = (int)strlen(" Device CA ") + (int)strlen(s->dev.serial);
    int room = 64 - fixed_len > 0 ? 64 - fixed_len : 0;
    snprintf(ca_name, sizeof ca_name, "%.*s Device CA %s", room, cfg->manufacturer, s->dev.serial);
    struct deviceca_settings ca_settings = { .key_type = cfg->device_ca_key, .common_name = ca_name,
                                             .organization = cfg->manufacturer, .now = devclock_global_now };
    rc = deviceca_open(&s->deviceca, cfg->state_dir, s->secretbox, &ca_settings);
    if (rc != DEVICECA_OK) {
        log_crit("system", "device CA in %s: %s", cfg->state_dir, deviceca_strerror(rc));
        return -1;
    }
    /* A failed refresh keeps the certificate already issued: not fatal. */
    int changed = 0;
    rc = deviceca_refresh(s->deviceca, &changed);
    if (rc != DEVICECA_OK)
        log_err("security", "device CA could not renew the server certificate: %s", deviceca_strerror(rc));
    if (!users_have_admin(s->users))
        log_warning("auth", "no Administrator exists yet: create one with opennvtd --create-admin NAME%s",
                    cfg->first_admin_over_network ? " or an ONVIF CreateUsers request" : "");
    return 0;
}

/* A media configuration change reaches the running encoders. */
static void on_media_change(void *arg, enum mediacfg_change what, const char *token)
{
    struct services *s = arg;
    if (what == MEDIACFG_VEC_CHANGED && s->streams)
        stream_reconfigure(s->streams, token);
    if (what == MEDIACFG_VSC_CHANGED || what == MEDIACFG_VEC_CHANGED)
        events_publish_simple(s->events, EVENT_TOPIC_CONFIGURATION_CHANGED, "Token", token, "Type",
                              what == MEDIACFG_VSC_CHANGED ? "VideoSource" : "VideoEncoder");
    else
        events_publish_simple(s->events, EVENT_TOPIC_PROFILE_CHANGED, "Token", token, NULL, NULL);
}

/* ---- events: the bus and the security producers ---------------------------------------- */

/* AuthFailed names the interface and the source address (ONVIF Core); the
 * user is in the device log's warning. The interface: the first one up that
 * is not loopback (requests do not tell which one they came in on). */
static void on_auth_alarm(void *arg, const char *user, const char *peer)
{
    (void)user;
    struct services *s = arg;
    struct netif list[NETIF_MAX];
    int n = netif_list(list, NETIF_MAX);
    const char *nic = n > 0 ? list[0].name : "lo";
    for (int i = 0; i < n; i++)
        if (list[i].up && !list[i].loopback) {
            nic = list[i].name;
            break;
        }
    events_publish_simple(s->events, EVENT_TOPIC_AUTH_FAILED, "NetworkInterface", nic,
                          strchr(peer, ':') ? "SourceIPv6" : "SourceIPv4", peer);
}

static void on_key_status(void *arg, const char *key_id, const char *old_status, const char *new_status)
{
    struct services *s = arg;
    struct event_message m = { .topic = EVENT_TOPIC_KEY_STATUS, .n_source = 1, .n_data = old_status ? 2 : 1 };
    snprintf(m.source[0].name, sizeof m.source[0].name, "KeyID");
    snprintf(m.source[0].value, sizeof m.source[0].value, "%s", key_id);
    snprintf(m.data[0].name, sizeof m.data[0].name, "NewStatus");
    snprintf(m.data[0].value, sizeof m.data[0].value, "%s", new_status);
    if (old_status) {
        snprintf(m.data[1].name, sizeof m.data[1].name, "OldStatus");
        snprintf(m.data[1].value, sizeof m.data[1].value, "%s", old_status);
    }
    events_publish(s->events, &m);
}

static void on_cert_expiry(void *arg, const char *path_id, long days_left)
{
    struct services *s = arg;
    char days[24];
    snprintf(days, sizeof days, "%ld", days_left);
    events_publish_simple(s->events, EVENT_TOPIC_CERT_EXPIRY, "CertificationPathID", path_id, "DaysLeft", days);
}

static int open_events(struct services *s)
{
    const struct opennvt_config *cfg = &s->cfg;
    struct events_settings es = {
        .max_subscriptions = cfg->events_max_subscriptions,
        .queue_max = cfg->events_queue_max,
        .max_termination_s = cfg->events_max_termination_s,
    };
    int rc = events_open(&s->events, &es);
    if (rc != EVENTS_OK) {
        log_crit("events", "event service: %s", events_strerror(rc));
        return -1;
    }
    authn_set_failure_alarm(s->authn, on_auth_alarm, s);
    keystore_set_status_listener(s->keystore, on_key_status, s);
    tlspolicy_set_expiry_listener(s->tlspolicy, on_cert_expiry, s);
    s->dev.events = s->events;
    return 0;
}

static void close_events(struct services *s)
{
    if (!s->events)
        return;
    if (s->authn)
        authn_set_failure_alarm(s->authn, NULL, NULL);
    if (s->keystore)
        keystore_set_status_listener(s->keystore, NULL, NULL);
    if (s->tlspolicy)
        tlspolicy_set_expiry_listener(s->tlspolicy, NULL, NULL);
    s->dev.events = NULL;
    events_close(s->events);
    s->events = NULL;
}

static void close_media(struct services *s)
{
    motion_stop(s->motion);
    s->motion = NULL;
    rtspserver_stop(s->rtsp);
    s->rtsp = NULL;
    stream_hub_close(s->streams);
    s->streams = NULL;
    mediacfg_close(s->mediacfg);
    s->mediacfg = NULL;
    source_close(s->source);
    s->source = NULL;
}

/* The video source, its configurations, the encoders and the RTSP server. */
static int open_media(struct services *s)
{
    const struct opennvt_config *cfg = &s->cfg;
    struct source_settings ss = { cfg->source, cfg->source_width, cfg->source_height, cfg->source_framerate };
    int rc = source_open(&s->source, &ss);
    if (rc != SOURCE_OK) {
        log_crit("media", "video source %s: %s", cfg->source, source_strerror(rc));
        return -1;
    }
    struct media_video_source vs = { .token = "VideoSource_1" };
    source_format(s->source, &vs.width, &vs.height, &vs.framerate);
    rc = mediacfg_open(&s->mediacfg, cfg->state_dir, &vs, encoder_available());
    if (rc != MEDIACFG_OK) {
        log_crit("media", "media configuration: %s", mediacfg_strerror(rc));
        close_media(s);
        return -1;
    }
    struct stream_hub_settings hs = { cfg->encoder_linger_ms, cfg->encoder_threads, RTP_DEFAULT_MTU };
    if (stream_hub_open(&s->streams, s->mediacfg, s->source, &hs) != STREAM_OK) {
        close_media(s);
        return -1;
    }
    mediacfg_set_listener(s->mediacfg, on_media_change, s);
    if (cfg->rtsp_enabled) {
        struct rtspserver_settings rs = {
            .bind = cfg->bind,
            .port = cfg->rtsp_port,
            .max_connections = cfg->rtsp_max_connections,
            .max_connections_per_ip = cfg->rtsp_max_connections_per_ip,
            .session_timeout_s = cfg->rtsp_session_timeout_s,
            .max_tcp_backlog_kib = cfg->rtsp_max_tcp_backlog_kib,
            .max_request_bytes = 8192,
            .anonymous_classes = cfg->anonymous_media ? ACCESS_BIT(ACCESS_READ_MEDIA) : 0,
            .multicast_if = cfg->multicast_if,
        };
        struct rtspserver_deps deps = { s->mediacfg, s->streams, s->authn, s->users, s->ipfilter };
        rc = rtspserver_start(&s->rtsp, &rs, &deps);
        if (rc != RTSPSERVER_OK) {
            log_crit("media", "RTSP server on port %d: %s", cfg->rtsp_port, rtspserver_strerror(rc));
            close_media(s);
            return -1;
        }
    }
    s->dev.mediacfg = s->mediacfg;
    s->dev.streams = s->streams;
    s->dev.rtsp = s->rtsp;
    if (cfg->motion_enabled && s->events) {
        struct motion_settings ms;
        motion_settings_default(&ms);
        ms.sensitivity = cfg->motion_sensitivity;
        ms.hold_ms = cfg->motion_hold_ms;
        if (motion_start(&s->motion, s->source, vs.token, s->events, &ms, cfg->motion_fps) != 0)
            log_err("events", "motion detection did not start");
    }
    return 0;
}

static int start_services(struct services *s)
{
    const struct opennvt_config *cfg = &s->cfg;
    log_set_level((enum log_level)log_level_from_name(cfg->log_level));
    int rc = atomicfile_mkdir_private(cfg->state_dir);
    if (rc != 0) {
        log_crit("system", "state directory %s: %s", cfg->state_dir, strerror(-rc));
        return -1;
    }
    chmod(cfg->state_dir, 0700);
    memset(&s->dev, 0, sizeof s->dev);
    rc = deviceid_load_or_create(cfg->state_dir, s->dev.uuid);
    if (rc != 0) {
        log_crit("system", "device identity in %s: %s", cfg->state_dir, strerror(-rc));
        return -1;
    }
    if (cfg->serial[0]) {
        snprintf(s->dev.serial, sizeof s->dev.serial, "%s", cfg->serial);
    } else {
        size_t k = 0;
        for (const char *p = s->dev.uuid; *p && k < 12; p++)
            if (*p != '-')
                s->dev.serial[k++] = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
        s->dev.serial[k] = '\0';
    }
    char enc[CONFIG_STR_MAX * 3 + 1];
    char fixed_type[] = "onvif://www.onvif.org/type/Network_Video_Transmitter";
    char fixed_hw[CONFIG_STR_MAX * 3 + 64], def_name[CONFIG_STR_MAX * 3 + 64], def_loc[CONFIG_STR_MAX * 3 + 64];
    percent_encode(cfg->model, enc, sizeof enc);
    snprintf(fixed_hw, sizeof fixed_hw, "onvif://www.onvif.org/hardware/%s", enc);
    percent_encode(cfg->name, enc, sizeof enc);
    snprintf(def_name, sizeof def_name, "onvif://www.onvif.org/name/%s", enc);
    percent_encode(cfg->location, enc, sizeof enc);
    snprintf(def_loc, sizeof def_loc, "onvif://www.onvif.org/location/%s", enc);
    const char *fixed[] = { fixed_type, fixed_hw };
    const char *defaults[] = { def_name, def_loc };
    rc = netcfg_open(&s->netcfg, cfg->state_dir, fixed, 2, defaults, 2);
    if (rc != NETCFG_OK) {
        log_crit("system", "network settings: %s", netcfg_strerror(rc));
        return -1;
    }
    if (open_security(s) != 0) {
        close_security(s);
        netcfg_close(s->netcfg);
        s->netcfg = NULL;
        return -1;
    }
    s->dev.cfg = cfg;
    s->dev.netcfg = s->netcfg;
    s->dev.users = s->users;
    s->dev.authn = s->authn;
    s->dev.ipfilter = s->ipfilter;
    s->dev.keystore = s->keystore;
    s->dev.deviceca = s->deviceca;
    s->dev.tlspolicy = s->tlspolicy;
    s->dev.clock = s->clock;
    s->dev.devicelog = s->devicelog;
    s->dev.clock_sync_now = kick_ntp;
    s->dev.clock_sync_arg = s;
    s->dev.request_restart = request_restart;
    s->dev.restart_arg = s;
    s->dev.request_factory_reset = request_factory_reset;
    s->dev.ports_changed = on_ports_changed;
    s->dev.ports_arg = s;
    if (open_events(s) != 0) {
        close_security(s);
        netcfg_close(s->netcfg);
        s->netcfg = NULL;
        return -1;
    }
    if (open_media(s) != 0) {
        close_events(s);
        close_security(s);
        netcfg_close(s->netcfg);
        s->netcfg = NULL;
        return -1;
    }
    if (soapserver_start(&s->soap, cfg, &s->dev) != 0) {
        close_media(s);
        close_events(s);
        close_security(s);
        netcfg_close(s->netcfg);
        s->netcfg = NULL;
        return -1;
    }
    s->dev.soapserver = s->soap;
    int http = soapserver_port(s->soap);
    if (cfg->discovery_enabled &&
        discovery_start(&s->discovery, cfg, &s->dev, http ? http : soapserver_https_port(s->soap)) != 0)
        log_err("discovery", "WS-Discovery is not running");
    else if (s->discovery && !http)
        discovery_set_service_port(s->discovery, soapserver_https_port(s->soap), 1);
    netcfg_set_change_hook(s->netcfg, on_netcfg_change, s);
    log_notice("system", "opennvtd %s started, device urn:uuid:%s, state in %s", OPENNVT_VERSION, s->dev.uuid, cfg->state_dir);
    log_services(s);
    return 0;
}

static void stop_services(struct services *s)
{
    if (s->netcfg)
        netcfg_set_change_hook(s->netcfg, NULL, NULL);
    /* Waiting PullMessages return now, or the listener would wait for them. */
    if (s->events)
        events_shutdown(s->events);
    /* The listener first: its ports hook uses the discovery responder. */
    soapserver_stop(s->soap);
    __atomic_store_n(&s->soap, NULL, __ATOMIC_RELEASE);
    s->dev.soapserver = NULL;
    struct discovery *d = s->discovery;
    __atomic_store_n(&s->discovery, NULL, __ATOMIC_RELEASE);
    discovery_stop(d);
    s->dev.mediacfg = NULL;
    s->dev.streams = NULL;
    s->dev.rtsp = NULL;
    close_media(s);
    close_events(s);
    close_security(s);
    netcfg_close(s->netcfg);
    s->netcfg = NULL;
}

/* Keeps ephemeral ports stable across in-process restarts. */
static void pin_ports(struct services *s, struct opennvt_config *next)
{
    if (next->http_port == 0 && s->soap)
        next->http_port = soapserver_port(s->soap);
    if (next->https_port == 0 && s->soap && soapserver_https_port(s->soap) > 0)
        next->https_port = soapserver_https_port(s->soap);
    if (next->rtsp_port == 0 && s->rtsp)
        next->rtsp_port = rtspserver_port(s->rtsp);
    if (next->discovery_port == 0 && s->discovery)
        next->discovery_port = discovery_port(s->discovery);
}

static int lock_state_dir(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/lock", dir) >= (int)sizeof path)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        log_crit("system", "state directory %s is in use by another opennvtd", dir);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd; /* held until exit */
}

/* Reads one line of at most max-1 bytes (without its newline) from stdin.
 * Returns 0, or -1 when stdin is empty or the line is too long. */
static int read_password_line(char *out, size_t max)
{
    size_t n = 0;
    int ch;
    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n + 1 >= max) {
            OPENSSL_cleanse(out, max);
            while ((ch = getchar()) != EOF && ch != '\n') { }
            return -1;
        }
        out[n++] = (char)ch;
    }
    if (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    return n == 0 && ch == EOF ? -1 : 0;
}

/* opennvtd --factory-reset soft|hard: the reset button, for when the network
 * path is lost. Exit 0, 1 when the daemon runs or the reset failed. */
static int factory_reset_command(const struct opennvt_config *cfg, const char *kind_name)
{
    int lock = lock_state_dir(cfg->state_dir);
    if (lock < 0) {
        fprintf(stderr, "opennvtd: state directory %s is in use: stop opennvtd first\n", cfg->state_dir);
        return EXIT_RUNTIME;
    }
    int rc = factoryreset_wipe(cfg->state_dir, (enum factoryreset_kind)factoryreset_kind_from_name(kind_name));
    close(lock);
    if (rc < 0) {
        fprintf(stderr, "opennvtd: factory reset of %s failed: %s\n", cfg->state_dir, strerror(-rc));
        return EXIT_RUNTIME;
    }
    printf("factory reset (%s) of %s: %d file(s) removed; the device starts with no users\n", kind_name, cfg->state_dir, rc);
    return 0;
}

/* opennvtd --create-admin NAME: local provisioning of an Administrator with
 * the same policy checks as CreateUsers. Exit 0, 1 refused, 2 usage. */
static int create_admin(const struct opennvt_config *cfg, const char *name)
{
    if (atomicfile_mkdir_private(cfg->state_dir) != 0) {
        fprintf(stderr, "opennvtd: cannot create state directory %s\n", cfg->state_dir);
        return EXIT_RUNTIME;
    }
    int lock = lock_state_dir(cfg->state_dir);
    if (lock < 0) {
        fprintf(stderr, "opennvtd: state directory %s is in use: stop opennvtd first\n", cfg->state_dir);
        return EXIT_RUNTIME;
    }
    char password[USERS_PASSWORD_MAX + 2];
    if (read_password_line(password, sizeof password) != 0) {
        fprintf(stderr, "opennvtd: --create-admin reads the password from standard input: none given, or longer than %d bytes\n",
                USERS_PASSWORD_MAX);
        close(lock);
        return EXIT_RUNTIME;
    }
    struct secretbox *box = NULL;
    struct users *users = NULL;
    int rc = secretbox_open(&box, cfg->state_dir);
    if (rc != SECRETBOX_OK) {
        fprintf(stderr, "opennvtd: device key: %s\n", secretbox_strerror(rc));
    } else if ((rc = users_open(&users, cfg->state_dir, box)) != USERS_OK) {
        fprintf(stderr, "opennvtd: users: %s\n", users_strerror(rc));
    } else {
        struct users_entry e = { .name = name, .password = password, .level = USER_LEVEL_ADMINISTRATOR };
        rc = users_create(users, &e, 1, NULL);
        const char *why = rc == USERS_E_PASSWORD_WEAK ? users_password_weakness(users, name, password) : NULL;
        if (rc != USERS_OK)
            fprintf(stderr, "opennvtd: cannot create '%s': %s%s%s%s\n", name, users_strerror(rc), why ? " (" : "",
                    why ? why : "", why ? ")" : "");
        else
            printf("opennvtd: Administrator '%s' created\n", name);
    }
    OPENSSL_cleanse(password, sizeof password);
    users_close(users);
    secretbox_close(box);
    close(lock);
    return rc == 0 ? 0 : EXIT_RUNTIME;
}

static int detach(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    setsid();
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct daemon_opts opts = { 0 };
    if (parse_args(argc, argv, &opts) != 0)
        return EXIT_CONFIG;
    static struct services s;
    if (build_config(&opts, &s.cfg) != 0)
        return EXIT_CONFIG;
    av_log_set_level(AV_LOG_ERROR);   /* libav's per-encoder statistics are not device log material */
    s.ports_file = opts.ports_file;
    for (size_t i = 0; i < opts.n_overrides; i++) {
        if (!strcmp(opts.overrides[i].path, "network/http-port"))
            s.forced_ports |= TLSPOLICY_FORCE_HTTP_PORT;
        else if (!strcmp(opts.overrides[i].path, "network/https-port"))
            s.forced_ports |= TLSPOLICY_FORCE_HTTPS_PORT;
    }
    if (opts.print_config) {
        config_write(&s.cfg, stdout);
        return 0;
    }
    if (opts.factory_reset) {
        log_set_level(LOG_LVL_ERR);
        return factory_reset_command(&s.cfg, opts.factory_reset);
    }
    if (opts.create_admin) {
        log_set_level(LOG_LVL_ERR);
        return create_admin(&s.cfg, opts.create_admin);
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread inherits this; main waits below */

    log_set_level((enum log_level)log_level_from_name(s.cfg.log_level));
    if (atomicfile_mkdir_private(s.cfg.state_dir) != 0) {
        log_crit("system", "cannot create state directory %s", s.cfg.state_dir);
        return EXIT_RUNTIME;
    }
    if (!opts.foreground && detach() != 0)
        return EXIT_RUNTIME;
    if (lock_state_dir(s.cfg.state_dir) < 0)
        return EXIT_RUNTIME;
    int stale = atomicfile_remove_stale_temps(s.cfg.state_dir);
    if (stale > 0)
        log_notice("system", "removed %d temporary file(s) left by an interrupted write", stale);
    if (settle_state(&s) != 0)
        return EXIT_RUNTIME;
    if (open_clock_and_log(&s) != 0)
        return EXIT_RUNTIME;
    if (start_services(&s) != 0) {
        close_clock_and_log(&s);
        return EXIT_RUNTIME;
    }
    if (opts.ports_file && write_ports_file(opts.ports_file, &s) != 0) {
        stop_services(&s);
        return EXIT_RUNTIME;
    }

    int exit_code = 0;
    for (;;) {
        /* Between signals, keep the device CA's server certificate in step
         * with the host's addresses (no reboot needed when they change). */
        struct timespec tick = { DEVICECA_REFRESH_S, 0 };
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig < 0) {
            int changed = 0, timed_out = errno == EAGAIN;
            if (timed_out && s.deviceca && deviceca_refresh(s.deviceca, &changed) == DEVICECA_OK && changed)
                log_notice("security", "device addresses changed: new server certificate issued by the device CA");
            if (timed_out && s.tlspolicy)
                tlspolicy_check_expiry(s.tlspolicy);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            log_notice("system", "stopping on signal %d", sig);
            break;
        }
        struct opennvt_config next = s.cfg;
        if (sig == SIGHUP) {
            struct opennvt_config fresh;
            if (build_config(&opts, &fresh) != 0) {
                log_err("config", "reload refused: configuration is invalid, keeping the running one");
                continue;
            }
            if (strcmp(fresh.state_dir, s.cfg.state_dir) != 0) {
                log_err("config", "reload refused: state-dir cannot change while running");
                continue;
            }
            next = fresh;
            log_notice("config", "reloading configuration");
        } else {
            struct timespec pause = { 0, 300 * 1000000L }; /* let the SystemReboot response leave */
            nanosleep(&pause, NULL);
            log_notice("system", "restarting services");
        }
        pin_ports(&s, &next);
        stop_services(&s);
        s.cfg = next;
        /* Everything that holds the state is closed now, the clock and the
         * log too: a reset or a restore may replace their settings, and a
         * reload may change the log's. */
        s.pending_reset = 0;
        close_clock_and_log(&s);
        if (settle_state(&s) != 0 || open_clock_and_log(&s) != 0) {
            exit_code = EXIT_RUNTIME;
            break;
        }
        if (start_services(&s) != 0) {
            exit_code = EXIT_RUNTIME;
            break;
        }
        if (opts.ports_file)
            write_ports_file(opts.ports_file, &s);
    }
    stop_services(&s);
    log_notice("system", "stopped");
    close_clock_and_log(&s);
    return exit_code;
}
