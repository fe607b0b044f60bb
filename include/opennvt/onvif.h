/* The ONVIF protocol layer's shared context: what every handler may reach
 * (the device's domain modules) and what the server records per request
 * (the local address the client connected to, for XAddrs). */
#ifndef OPENNVT_ONVIF_H
#define OPENNVT_ONVIF_H

#include "opennvt/authn.h"
#include "opennvt/config.h"
#include "opennvt/deviceid.h"

#include <sys/socket.h>

struct soap;
struct netcfg;
struct users;
struct ipfilter;
struct keystore;
struct deviceca;
struct tlspolicy;
struct soapserver;
struct devclock;
struct devicelog;
struct mediacfg;
struct stream_hub;
struct rtspserver;
struct events;

struct onvif_device {
    const struct opennvt_config *cfg;
    struct netcfg *netcfg;
    struct users *users;
    struct authn *authn;
    struct ipfilter *ipfilter;
    struct keystore *keystore;
    struct deviceca *deviceca;
    struct tlspolicy *tlspolicy;
    struct soapserver *soapserver;   /* the running listener, for the ports it bound */
    struct devclock *clock;          /* the device clock */
    struct devicelog *devicelog;     /* the device log's stores */
    struct mediacfg *mediacfg;       /* profiles and media configurations */
    struct stream_hub *streams;      /* live encoders (snapshots, sync points) */
    struct rtspserver *rtsp;         /* the RTSP server (stream URIs, multicast); NULL when off */
    struct events *events;           /* the event bus and pull-point subscriptions */
    /* Asks for an NTP synchronisation soon (after SetNTP / SetSystemDateAndTime). */
    void (*clock_sync_now)(void *arg);
    void *clock_sync_arg;
    char uuid[DEVICEID_UUID_LEN + 1];
    char serial[CONFIG_STR_MAX];
    /* Asks the daemon to restart its services once the response is sent. */
    void (*request_restart)(void *arg);
    void *restart_arg;
    /* Asks for a factory reset (soft or hard) once the response is sent;
     * the services then restart in the first-user state. */
    void (*request_factory_reset)(void *arg, int hard);
    /* Called (from the listener's thread) after the bound ports changed. */
    void (*ports_changed)(void *arg);
    void *ports_arg;
};

struct onvif_request {
    struct onvif_device *dev;
    char local_host[64];    /* as it appears in a URL: 192.0.2.1 or [2001:db8::1] */
    int local_port;
    int tls;
    char peer[64];          /* client address, for logs */
    struct sockaddr_storage peer_addr;   /* for the lock-out check of filter changes */
    struct authn_principal principal;    /* who the gate let in */
    int first_admin_setup;  /* no Administrator exists: only CreateUsers of one is allowed */
};

/* The per-request context the server stored in soap->user. */
struct onvif_request *onvif_request_of(struct soap *soap);

/* "http://<local address>:<port><path>" of the connection the request came in
 * on, allocated in the soap context. */
char *onvif_xaddr(struct soap *soap, const char *path);

/* ONVIF faults: Code env:Sender or env:Receiver, then one or two ter: subcodes.
 * Return values are what a handler returns. */
int onvif_sender_fault(struct soap *soap, const char *subcode, const char *subcode2, const char *reason);
int onvif_receiver_fault(struct soap *soap, const char *subcode, const char *subcode2, const char *reason);
int onvif_fault_action_not_supported(struct soap *soap);
/* A tlspolicy error as the ONVIF fault; not_found / not_assigned name the
 * subcode for the argument at fault (security_tls.c). */
int onvif_tlspolicy_fault(struct soap *soap, int err, const char *not_found, const char *not_assigned);
/* SetClientAuthenticationRequired, shared with SetClientCertificateMode. */
int onvif_set_client_auth(struct soap *soap, int required);
/* Files the device serves over HTTP GET (GetSystemUris): the operation whose
 * access class guards a path (NULL: not such a path), and its content
 * (malloc'd) with an HTTP status: 200, 404, 409 (e.g. no backup passphrase)
 * or 500. */
const char *onvif_http_resource_operation(const char *path);
int onvif_http_resource(struct onvif_device *dev, const char *path, unsigned char **body, size_t *len,
                        const char **content_type);

/* Snapshots (snapshot.c): the profile token of a snapshot path (NULL: not
 * one), and the JPEG for it (200, 404 no such profile, 503 no frame). */
const char *onvif_snapshot_profile_of_path(const char *path);
int onvif_snapshot_resource(struct onvif_device *dev, const char *profile_token, unsigned char **body, size_t *len,
                            const char **content_type);

/* Uploads over HTTP POST (StartSystemRestore, StartFirmwareUpgrade): the
 * operation guarding a path (NULL: none), and the upload's handling, which
 * returns the HTTP status (200, 400 with a reason, 409, 500). */
const char *onvif_http_upload_operation(const char *path);
int onvif_http_upload(const struct onvif_request *req, const char *path, const unsigned char *body, size_t len,
                      const char **reason);

/* Turns a gSOAP parse/dispatch error into the matching ONVIF fault. */
int onvif_fault_from_soap_error(struct soap *soap);

/* Services the device offers, in GetServices order. */
struct onvif_service {
    const char *name;        /* "device" */
    const char *ns;          /* target namespace */
    const char *path;        /* endpoint path */
    int version_major, version_minor;
    /* Literal XML of the service's capabilities element, for GetServices. */
    char *(*capabilities_xml)(struct soap *soap);
};

const struct onvif_service *onvif_services(size_t *count);
const struct onvif_service *onvif_service_by_path(const char *path);

/* Version reported for every service: the ONVIF release the WSDLs come from. */
#define ONVIF_VERSION_MAJOR 25
#define ONVIF_VERSION_MINOR 12

/* A service's capabilities element as literal XML, written by write() into
 * a scratch context (GetServices with IncludeCapability). */
char *onvif_capabilities_fragment(struct soap *soap, int (*write)(struct soap *tmp));
char *onvif_device_capabilities_xml(struct soap *soap);
char *onvif_security_capabilities_xml(struct soap *soap);
char *onvif_media_capabilities_xml(struct soap *soap);    /* media.c */
char *onvif_media2_capabilities_xml(struct soap *soap);   /* media2.c */
char *onvif_events_capabilities_xml(struct soap *soap);   /* events_service.c */

/* Each pull-point subscription is its own endpoint: this path and its number. */
#define EVENTS_SUBSCRIPTION_PATH "/onvif/event_subscription/"

/* Media URIs for the connection the request came in on (media_uri.c):
 * rtsp://host:port/stream/<profile> (scheme "rtsp"), the same path over
 * http:// on the RTSP port for the HTTP tunnel (scheme "http"), and the
 * snapshot URL on the SOAP listener. NULL when the RTSP server is off. */
char *onvif_stream_uri(struct soap *soap, const char *scheme, const char *profile_token);
char *onvif_snapshot_uri(struct soap *soap, const char *profile_token);
/* A mediacfg / rtspserver error as the ONVIF fault (media_uri.c). */
int onvif_mediacfg_fault(struct soap *soap, int err);

#endif
