/* Configuration: one table of settings drives defaults, parsing, validation and
 * the documented default file. Parsing is all-or-nothing. */
#include "opennvt/config.h"
#include "opennvt/log.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

enum setting_type { SET_INT, SET_BOOL, SET_STR, SET_LOGLEVEL, SET_CHOICE };

struct setting {
    const char *path;          /* section/name; "state-dir" has no section */
    enum setting_type type;
    size_t offset;
    size_t size;               /* for strings */
    long min, max;             /* for ints */
    const char *doc;
    const char *choices;       /* SET_CHOICE: space-separated accepted values */
};

#define INT_SETTING(p, f, lo, hi, d) { p, SET_INT, offsetof(struct opennvt_config, f), 0, lo, hi, d, NULL }
#define BOOL_SETTING(p, f, d) { p, SET_BOOL, offsetof(struct opennvt_config, f), 0, 0, 1, d, NULL }
#define CHOICE_SETTING(p, f, c, d) { p, SET_CHOICE, offsetof(struct opennvt_config, f), sizeof(((struct opennvt_config *)0)->f), 0, 0, d, c }
#define STR_SETTING(p, f, d) { p, SET_STR, offsetof(struct opennvt_config, f), sizeof(((struct opennvt_config *)0)->f), 0, 0, d, NULL }

static const struct setting settings[] = {
    STR_SETTING("state-dir", state_dir, "directory for persistent state (created 0700)"),
    { "log/level", SET_LOGLEVEL, offsetof(struct opennvt_config, log_level), sizeof(((struct opennvt_config *)0)->log_level), 0, 0,
      "crit, err, warning, notice, info or debug", NULL },
    { "log/persist-level", SET_LOGLEVEL, offsetof(struct opennvt_config, log_persist_level),
      sizeof(((struct opennvt_config *)0)->log_persist_level), 0, 0,
      "device log lines at or above this level are kept on disk across restarts (crit..info)", NULL },
    INT_SETTING("log/file-kib", log_file_kib, 16, 65536, "device log file size before it is rotated"),
    INT_SETTING("log/files", log_files, 1, 32, "rotated device log files kept (each log: System, Access)"),
    STR_SETTING("log/syslog-server", syslog_server,
                "forward the device log to this syslog server (RFC 5424 over UDP): host or host:port; empty = off"),
    STR_SETTING("network/bind", bind, "listen address, IPv4 or IPv6; empty = all"),
    BOOL_SETTING("network/http-enabled", http_enabled, "serve the SOAP service over plain HTTP (false: HTTPS only)"),
    INT_SETTING("network/http-port", http_port, 0, 65535, "HTTP (SOAP) port; 0 = pick a free port"),
    BOOL_SETTING("network/https-enabled", https_enabled, "serve the SOAP service over TLS too (HTTPS)"),
    INT_SETTING("network/https-port", https_port, 0, 65535, "HTTPS (SOAP over TLS) port; 0 = pick a free port"),
    STR_SETTING("network/reserved-ports", reserved_ports,
                "TCP ports SetNetworkProtocols refuses for HTTP/HTTPS (other services' ports), space-separated"),
    BOOL_SETTING("discovery/enabled", discovery_enabled, "run the WS-Discovery listener"),
    INT_SETTING("discovery/port", discovery_port, 0, 65535, "WS-Discovery UDP port (3702); 0 = pick a free port"),
    STR_SETTING("discovery/multicast-interface", discovery_multicast_if, "interface for multicast Hello/Bye; empty = system default"),
    STR_SETTING("device/manufacturer", manufacturer, "GetDeviceInformation Manufacturer"),
    STR_SETTING("device/model", model, "GetDeviceInformation Model and hardware scope"),
    STR_SETTING("device/serial", serial, "serial number; empty = derived from the device UUID"),
    STR_SETTING("device/hardware-id", hardware_id, "GetDeviceInformation HardwareId"),
    STR_SETTING("device/name", name, "initial onvif://www.onvif.org/name/ scope"),
    STR_SETTING("device/location", location, "initial onvif://www.onvif.org/location/ scope"),
    INT_SETTING("soap/workers", soap_workers, 1, 256, "SOAP worker threads"),
    INT_SETTING("soap/max-connections", soap_max_connections, 1, 65536, "open HTTP connections at most"),
    INT_SETTING("soap/max-connections-per-ip", soap_max_connections_per_ip, 1, 65536, "open HTTP connections per client address"),
    INT_SETTING("soap/max-request-bytes", soap_max_request_bytes, 1024, 64 * 1024 * 1024, "largest accepted request (headers + body)"),
    INT_SETTING("soap/max-header-bytes", soap_max_header_bytes, 1024, 65536, "largest accepted HTTP header block"),
    INT_SETTING("soap/max-xml-depth", soap_max_xml_depth, 8, 1000, "deepest XML nesting accepted"),
    INT_SETTING("soap/max-xml-occurs", soap_max_xml_occurs, 1, 1000000, "largest array accepted in a request"),
    INT_SETTING("soap/recv-timeout-ms", soap_recv_timeout_ms, 100, 600000, "time allowed to receive a whole request"),
    INT_SETTING("soap/send-timeout-ms", soap_send_timeout_ms, 100, 600000, "time allowed to send a response"),
    INT_SETTING("soap/idle-timeout-ms", soap_idle_timeout_ms, 100, 3600000, "idle keep-alive connection lifetime"),
    INT_SETTING("soap/max-keep-alive", soap_max_keep_alive, 1, 1000000, "requests per connection before it is closed"),
    INT_SETTING("soap/tls-handshake-timeout-ms", soap_tls_handshake_timeout_ms, 100, 60000, "time allowed for a TLS handshake"),
    INT_SETTING("soap/max-tls-handshakes-per-ip", soap_max_tls_handshakes_per_ip, 1, 65536,
                "TLS handshakes in progress per client address"),
    BOOL_SETTING("security/first-admin-over-network", first_admin_over_network,
                 "while no Administrator exists, accept a network CreateUsers that creates one (false: only the local create-admin command)"),
    BOOL_SETTING("security/anonymous-media", anonymous_media, "let unauthenticated clients use READ_MEDIA operations (public viewing)"),
    BOOL_SETTING("security/http-basic", http_basic, "accept HTTP Basic authentication (only ever over TLS)"),
    INT_SETTING("security/digest-nonce-lifetime-s", digest_nonce_lifetime_s, 10, 3600, "HTTP Digest server nonce lifetime"),
    STR_SETTING("security/factory-dir", factory_dir,
                "read-only factory identity (identity.key, identity.crt, chain.pem), kept across factory resets"),
    CHOICE_SETTING("security/device-ca-key", device_ca_key, "EC-P256 EC-P384 RSA-3072", "built-in device CA key type"),
    STR_SETTING("security/firmware-trust", firmware_trust,
                "PEM file of the CA certificates whose signatures firmware packages must carry; missing = every package refused"),
    INT_SETTING("security/confirm-window-s", confirm_window_s, 0, 3600,
                "a change of ports, protocols or TLS settings is rolled back unless an administrator makes a request over the new settings within this time; 0 = no rollback"),
    INT_SETTING("security/cert-expiry-warning-days", cert_expiry_warning_days, 1, 365,
                "warn this many days before an assigned server certificate expires"),
    BOOL_SETTING("media/rtsp-enabled", rtsp_enabled, "run the RTSP server (streaming)"),
    INT_SETTING("media/rtsp-port", rtsp_port, 0, 65535, "RTSP port (also RTSP over HTTP); 0 = pick a free port"),
    INT_SETTING("media/rtsp-max-connections", rtsp_max_connections, 1, 65536, "open RTSP connections at most"),
    INT_SETTING("media/rtsp-max-connections-per-ip", rtsp_max_connections_per_ip, 1, 65536, "open RTSP connections per client address"),
    INT_SETTING("media/rtsp-session-timeout-s", rtsp_session_timeout_s, 5, 3600,
                "RTSP sessions without a request or RTCP report for this long are closed"),
    INT_SETTING("media/rtsp-max-tcp-backlog-kib", rtsp_max_tcp_backlog_kib, 64, 65536,
                "a TCP viewer this far behind skips to the next keyframe"),
    STR_SETTING("media/multicast-interface", multicast_if, "interface for multicast streaming; empty = system default"),
    STR_SETTING("media/source", source, "video source: testsrc, testsrc:still, v4l2:/dev/videoN or file:PATH"),
    INT_SETTING("media/source-width", source_width, 16, 7680, "test pattern width (and the width asked of a V4L2 camera)"),
    INT_SETTING("media/source-height", source_height, 16, 4320, "test pattern height (and the height asked of a V4L2 camera)"),
    INT_SETTING("media/source-framerate", source_framerate, 1, 120, "test pattern frame rate (and the rate asked of a V4L2 camera)"),
    INT_SETTING("media/encoder-linger-ms", encoder_linger_ms, 0, 600000,
                "an encoder keeps running this long after its last viewer left"),
    INT_SETTING("media/encoder-threads", encoder_threads, 0, 16, "threads per encoder; 0 = the encoder's choice"),
    INT_SETTING("events/max-pull-points", events_max_subscriptions, 2, 1024, "pull-point subscriptions at once"),
    INT_SETTING("events/queue-messages", events_queue_max, 16, 65536,
                "messages kept per subscription; the oldest are dropped first"),
    INT_SETTING("events/max-termination-s", events_max_termination_s, 10, 86400,
                "longest subscription lifetime a client may ask for"),
    BOOL_SETTING("events/motion-detection", motion_enabled, "detect motion (and scene changes) on the video source"),
    INT_SETTING("events/motion-sensitivity", motion_sensitivity, 1, 100, "higher detects smaller, fainter changes"),
    INT_SETTING("events/motion-hold-ms", motion_hold_ms, 0, 60000, "quiet time before a motion alarm ends"),
    INT_SETTING("events/motion-fps", motion_fps, 1, 30, "frames per second the motion detector analyses"),
    INT_SETTING("security/usernametoken-window-s", usernametoken_window_s, 5, 86400,
                "WS-UsernameToken Created accepted this far from the device clock, each way"),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

void config_defaults(struct opennvt_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *home = getenv("HOME");
    const char *xdg = getenv("XDG_STATE_HOME");
    if (geteuid() == 0)
        snprintf(cfg->state_dir, sizeof cfg->state_dir, "/var/lib/opennvt");
    else if (xdg && xdg[0] == '/')
        snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s/opennvt", xdg);
    else if (home && home[0] == '/')
        snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s/.local/state/opennvt", home);
    else
        snprintf(cfg->state_dir, sizeof cfg->state_dir, "/tmp/opennvt-%ld", (long)geteuid());
    snprintf(cfg->log_level, sizeof cfg->log_level, "info");
    snprintf(cfg->log_persist_level, sizeof cfg->log_persist_level, "notice");
    cfg->log_file_kib = 1024;
    cfg->log_files = 4;
    cfg->http_port = geteuid() == 0 ? 80 : 8080;
    cfg->http_enabled = 1;
    cfg->https_enabled = 1;
    snprintf(cfg->reserved_ports, sizeof cfg->reserved_ports, "21 22 23 25 53 110 111 123 135 137 138 139 143 161 162 389 445 514 636");
    cfg->https_port = geteuid() == 0 ? 443 : 8443;
    cfg->discovery_enabled = 1;
    cfg->discovery_port = 3702;
    snprintf(cfg->manufacturer, sizeof cfg->manufacturer, "OpenNVT");
    snprintf(cfg->model, sizeof cfg->model, "OpenNVT-Linux");
    snprintf(cfg->hardware_id, sizeof cfg->hardware_id, "linux-generic");
    snprintf(cfg->name, sizeof cfg->name, "OpenNVT");
    snprintf(cfg->location, sizeof cfg->location, "unknown");
    cfg->soap_workers = 8;
    cfg->soap_max_connections = 1024;
    cfg->soap_max_connections_per_ip = 512;
    cfg->soap_max_request_bytes = 1024 * 1024;
    cfg->soap_max_header_bytes = 16384;
    cfg->soap_max_xml_depth = 64;
    cfg->soap_max_xml_occurs = 10000;
    cfg->soap_recv_timeout_ms = 10000;
    cfg->soap_send_timeout_ms = 10000;
    cfg->soap_idle_timeout_ms = 60000;
    cfg->soap_max_keep_alive = 1000;
    cfg->soap_tls_handshake_timeout_ms = 5000;
    cfg->soap_max_tls_handshakes_per_ip = 64;
    cfg->confirm_window_s = 120;
    cfg->cert_expiry_warning_days = 30;
    cfg->first_admin_over_network = 1;
    cfg->anonymous_media = 0;
    cfg->http_basic = 0;
    cfg->digest_nonce_lifetime_s = 300;
    cfg->usernametoken_window_s = 300;
    cfg->rtsp_enabled = 1;
    cfg->rtsp_port = geteuid() == 0 ? 554 : 8554;
    cfg->rtsp_max_connections = 512;
    cfg->rtsp_max_connections_per_ip = 256;
    cfg->rtsp_session_timeout_s = 60;
    cfg->rtsp_max_tcp_backlog_kib = 2048;
    snprintf(cfg->source, sizeof cfg->source, "testsrc");
    cfg->source_width = 1920;
    cfg->source_height = 1080;
    cfg->source_framerate = 30;
    cfg->encoder_linger_ms = 5000;
    cfg->encoder_threads = 0;
    cfg->events_max_subscriptions = 32;
    cfg->events_queue_max = 256;
    cfg->events_max_termination_s = 3600;
    cfg->motion_enabled = 1;
    cfg->motion_sensitivity = 50;
    cfg->motion_hold_ms = 1500;
    cfg->motion_fps = 10;
    snprintf(cfg->factory_dir, sizeof cfg->factory_dir, "/etc/opennvt/factory");
    snprintf(cfg->device_ca_key, sizeof cfg->device_ca_key, "EC-P256");
    snprintf(cfg->firmware_trust, sizeof cfg->firmware_trust, "/etc/opennvt/firmware-ca.pem");
}

static const struct setting *find_setting(const char *path)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].path, path) == 0)
            return &settings[i];
    return NULL;
}

/* Validates text for one setting and stores it into cfg. */
static int apply_value(struct opennvt_config *cfg, const struct setting *s, const char *value,
                       char *why, size_t whylen)
{
    char *field = (char *)cfg + s->offset;
    switch (s->type) {
    case SET_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (errno || end == value || *end) {
            snprintf(why, whylen, "'%s' is not an integer", value);
            return -1;
        }
        if (v < s->min || v > s->max) {
            snprintf(why, whylen, "%ld is out of range %ld..%ld", v, s->min, s->max);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case SET_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "on"))
            *(int *)field = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "off"))
            *(int *)field = 0;
        else {
            snprintf(why, whylen, "'%s' is not a boolean (true/false)", value);
            return -1;
        }
        return 0;
    case SET_CHOICE: {
        size_t n = strlen(value);
        const char *c = s->choices;
        while (*c) {
            size_t k = strcspn(c, " ");
            if (k == n && n > 0 && strncmp(c, value, n) == 0) {
                memcpy(field, value, n + 1);
                return 0;
            }
            c += k;
            while (*c == ' ')
                c++;
        }
        snprintf(why, whylen, "must be one of: %s", s->choices);
        return -1;
    }
    case SET_LOGLEVEL:
        if (log_level_from_name(value) < 0) {
            snprintf(why, whylen, "'%s' is not a log level (crit, err, warning, notice, info, debug)", value);
            return -1;
        }
        /* fall through */
    case SET_STR:
        if (strlen(value) >= s->size) {
            snprintf(why, whylen, "value longer than %zu characters", s->size - 1);
            return -1;
        }
        for (const char *p = value; *p; p++)
            if ((unsigned char)*p < 0x20) {
                snprintf(why, whylen, "control characters are not allowed");
                return -1;
            }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    }
    return -1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Values are short tokens: surrounding blanks never count, whether they come
 * from the file or from config_set, so a written config loads back equal. */
static int trim_value(const char *value, char *out, size_t outlen)
{
    while (*value && is_space(*value))
        value++;
    size_t n = strlen(value);
    while (n > 0 && is_space(value[n - 1]))
        n--;
    if (n >= outlen)
        return -1;
    memcpy(out, value, n);
    out[n] = '\0';
    return 0;
}

int config_set(struct opennvt_config *cfg, const char *path, const char *value, char *err, size_t errlen)
{
    const struct setting *s = find_setting(path);
    char why[256];
    if (!s) {
        snprintf(err, errlen, "unknown setting '%s'", path);
        return -1;
    }
    char trimmed[PATH_MAX];
    if (trim_value(value, trimmed, sizeof trimmed) != 0) {
        snprintf(err, errlen, "setting '%s': value too long", path);
        return -1;
    }
    if (apply_value(cfg, s, trimmed, why, sizeof why) != 0) {
        snprintf(err, errlen, "setting '%s': %s", path, why);
        return -1;
    }
    return 0;
}

static int is_blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

static int load_element(struct opennvt_config *cfg, const char *file, xmlNode *el, const char *section,
                        char *err, size_t errlen)
{
    char path[128];
    if (section)
        snprintf(path, sizeof path, "%s/%s", section, (const char *)el->name);
    else
        snprintf(path, sizeof path, "%s", (const char *)el->name);

    const struct setting *s = find_setting(path);
    if (section && !s) {
        snprintf(err, errlen, "%s:%ld: unknown setting '%s'", file, xmlGetLineNo(el), path);
        return -1;
    }
    int has_child_elements = 0;
    for (xmlNode *c = el->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE)
            has_child_elements = 1;
        else if (c->type == XML_TEXT_NODE && !is_blank(c->content) && !s) {
            snprintf(err, errlen, "%s:%ld: unexpected text in <%s>", file, xmlGetLineNo(el), path);
            return -1;
        }
    }
    if (el->properties) {
        snprintf(err, errlen, "%s:%ld: setting '%s': attributes are not used, put values in elements",
                 file, xmlGetLineNo(el), path);
        return -1;
    }
    if (s) {
        if (has_child_elements) {
            snprintf(err, errlen, "%s:%ld: setting '%s' takes a value, not elements", file, xmlGetLineNo(el), path);
            return -1;
        }
        xmlChar *text = xmlNodeGetContent(el);
        char v[PATH_MAX];
        char why[256];
        int rc = -1;
        if (trim_value(text ? (const char *)text : "", v, sizeof v) != 0)
            snprintf(why, sizeof why, "value too long");
        else
            rc = apply_value(cfg, s, v, why, sizeof why);
        if (rc != 0)
            snprintf(err, errlen, "%s:%ld: setting '%s': %s", file, xmlGetLineNo(el), path, why);
        xmlFree(text);
        return rc;
    }
    /* A section: its children are settings. */
    int known_section = 0;
    size_t plen = strlen(path);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strncmp(settings[i].path, path, plen) == 0 && settings[i].path[plen] == '/')
            known_section = 1;
    if (!known_section) {
        snprintf(err, errlen, "%s:%ld: unknown section '%s'", file, xmlGetLineNo(el), path);
        return -1;
    }
    for (xmlNode *c = el->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && load_element(cfg, file, c, path, err, errlen) != 0)
            return -1;
    return 0;
}

int config_load_file(struct opennvt_config *cfg, const char *path, char *err, size_t errlen)
{
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    xmlDocPtr doc = xmlCtxtReadFile(ctxt, path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        if (e && e->line > 0)
            snprintf(err, errlen, "%s:%d: XML error: %s", path, e->line, e->message ? e->message : "malformed");
        else
            snprintf(err, errlen, "%s: cannot read or parse (%s)", path, e && e->message ? e->message : strerror(errno));
        /* libxml2 messages end in a newline */
        size_t n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n'))
            err[--n] = '\0';
        xmlFreeParserCtxt(ctxt);
        return -1;
    }
    xmlFreeParserCtxt(ctxt);
    xmlNode *root = xmlDocGetRootElement(doc);
    int rc = 0;
    if (!root || strcmp((const char *)root->name, "opennvt") != 0) {
        snprintf(err, errlen, "%s:%ld: the root element must be <opennvt>", path, root ? xmlGetLineNo(root) : 1L);
        rc = -1;
    } else {
        struct opennvt_config next = *cfg;
        for (xmlNode *c = root->children; c && rc == 0; c = c->next) {
            if (c->type == XML_ELEMENT_NODE)
                rc = load_element(&next, path, c, NULL, err, errlen);
            else if (c->type == XML_TEXT_NODE && !is_blank(c->content)) {
                snprintf(err, errlen, "%s:%ld: unexpected text in <opennvt>", path, xmlGetLineNo(c));
                rc = -1;
            }
        }
        if (rc == 0)
            *cfg = next;
    }
    xmlFreeDoc(doc);
    return rc;
}

static void write_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        default: fputc(*s, out);
        }
    }
}

void config_write(const struct opennvt_config *cfg, FILE *out)
{
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- opennvtd configuration: every setting with its default.\n"
          "     Command-line options override these values. -->\n<opennvt>\n", out);
    const char *open_section = NULL;
    size_t open_len = 0;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *slash = strchr(s->path, '/');
        size_t seclen = slash ? (size_t)(slash - s->path) : 0;
        if (open_section && (!slash || seclen != open_len || strncmp(open_section, s->path, seclen))) {
            fprintf(out, "  </%.*s>\n", (int)open_len, open_section);
            open_section = NULL;
        }
        if (slash && !open_section) {
            fprintf(out, "  <%.*s>\n", (int)seclen, s->path);
            open_section = s->path;
            open_len = seclen;
        }
        const char *name = slash ? slash + 1 : s->path;
        const char *indent = slash ? "    " : "  ";
        const char *field = (const char *)cfg + s->offset;
        if (s->type == SET_INT)
            fprintf(out, "%s<!-- %s (%ld..%ld) -->\n%s<%s>%d</%s>\n", indent, s->doc, s->min, s->max, indent, name,
                    *(const int *)field, name);
        else if (s->type == SET_BOOL)
            fprintf(out, "%s<!-- %s -->\n%s<%s>%s</%s>\n", indent, s->doc, indent, name,
                    *(const int *)field ? "true" : "false", name);
        else if (s->type == SET_CHOICE) {
            fprintf(out, "%s<!-- %s (one of: %s) -->\n%s<%s>%s</%s>\n", indent, s->doc, s->choices, indent, name,
                    field, name);
        } else {
            fprintf(out, "%s<!-- %s -->\n%s<%s>", indent, s->doc, indent, name);
            write_escaped(out, field);
            fprintf(out, "</%s>\n", name);
        }
    }
    if (open_section)
        fprintf(out, "  </%.*s>\n", (int)open_len, open_section);
    fputs("</opennvt>\n", out);
}
