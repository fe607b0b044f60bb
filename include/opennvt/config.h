/* Daemon configuration: defaults, the XML config file (libxml2), and the
 * command-line overrides. One table describes every setting. */
#ifndef OPENNVT_CONFIG_H
#define OPENNVT_CONFIG_H

#include <limits.h>
#include <stdio.h>

#define CONFIG_STR_MAX 128

struct opennvt_config {
    char state_dir[PATH_MAX];
    char log_level[16];
    char log_persist_level[16];  /* device log lines kept on disk from this level up */
    int log_file_kib;            /* device log file size before rotation */
    int log_files;               /* rotated device log files kept */
    char syslog_server[CONFIG_STR_MAX];  /* RFC 5424 over UDP; empty = off */

    char bind[CONFIG_STR_MAX];   /* empty: all addresses, IPv4 and IPv6 */
    int http_enabled;            /* HTTP on/off (off: HTTPS only) */
    int http_port;
    int https_enabled;           /* HTTPS (the same SOAP service over TLS) on/off */
    int https_port;
    char reserved_ports[CONFIG_STR_MAX];   /* TCP ports SetNetworkProtocols refuses, space-separated */

    int discovery_enabled;       /* WS-Discovery listener on/off */
    int discovery_port;          /* 3702 on a real network */
    char discovery_multicast_if[CONFIG_STR_MAX]; /* empty: default route's interface */

    char manufacturer[CONFIG_STR_MAX];
    char model[CONFIG_STR_MAX];
    char serial[CONFIG_STR_MAX];      /* empty: derived from the device UUID */
    char hardware_id[CONFIG_STR_MAX];
    char name[CONFIG_STR_MAX];        /* default onvif://www.onvif.org/name/ scope */
    char location[CONFIG_STR_MAX];    /* default onvif://www.onvif.org/location/ scope */

    int soap_workers;
    int soap_max_connections;
    int soap_max_connections_per_ip;
    int soap_max_request_bytes;
    int soap_max_header_bytes;
    int soap_max_xml_depth;
    int soap_max_xml_occurs;
    int soap_recv_timeout_ms;
    int soap_send_timeout_ms;
    int soap_idle_timeout_ms;
    int soap_max_keep_alive;
    int soap_tls_handshake_timeout_ms;
    int soap_max_tls_handshakes_per_ip;

    int first_admin_over_network;    /* first Administrator may be created over the network */
    int anonymous_media;             /* unauthenticated READ_MEDIA (public viewing) */
    int http_basic;                  /* HTTP Basic accepted, over TLS only */
    int digest_nonce_lifetime_s;
    int usernametoken_window_s;
    char factory_dir[PATH_MAX];      /* read-only factory identity */
    char device_ca_key[16];          /* EC-P256, EC-P384, RSA-3072 */
    char firmware_trust[PATH_MAX];   /* PEM CA certificates that may sign firmware packages */
    int confirm_window_s;            /* network/TLS changes roll back unless confirmed in time; 0 = never */
    int cert_expiry_warning_days;
    int rtsp_enabled;                /* RTSP server on/off */
    int rtsp_port;                   /* 554 on a real network */
    int rtsp_max_connections;
    int rtsp_max_connections_per_ip;
    int rtsp_session_timeout_s;
    int rtsp_max_tcp_backlog_kib;    /* a TCP viewer further behind skips to the next keyframe */
    char multicast_if[CONFIG_STR_MAX];   /* interface for multicast streaming; empty = system default */
    char source[PATH_MAX];           /* testsrc, testsrc:still, v4l2:/dev/videoN, file:PATH */
    int source_width, source_height, source_framerate;
    int encoder_linger_ms;           /* encoders keep running this long after the last viewer */
    int encoder_threads;             /* 0 = libavcodec's choice */
    int events_max_subscriptions;    /* pull points at once */
    int events_queue_max;            /* messages per subscription */
    int events_max_termination_s;
    int motion_enabled;
    int motion_sensitivity;          /* 1..100 */
    int motion_hold_ms;
    int motion_fps;                  /* frames analysed per second */
};

/* Fills cfg with the built-in defaults (state under a per-user directory). */
void config_defaults(struct opennvt_config *cfg);

/* Applies an XML config file on top of cfg. On error returns -1 and writes a
 * message naming the file, line and setting into err; cfg is then unchanged. */
int config_load_file(struct opennvt_config *cfg, const char *path, char *err, size_t errlen);

/* Sets one setting by its path ("network/http-port") from text, with the same
 * validation as the file. Returns 0, or -1 with a message in err. */
int config_set(struct opennvt_config *cfg, const char *path, const char *value, char *err, size_t errlen);

/* Writes cfg as a complete config file (every setting, with its range). */
void config_write(const struct opennvt_config *cfg, FILE *out);

#endif
