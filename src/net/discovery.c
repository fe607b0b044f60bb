/* WS-Discovery responder on UDP (gSOAP's wsddapi): answers Probe and Resolve
 * for this device, sends Hello at start and on changes, Bye at stop. Silent in
 * NonDiscoverable mode. */
#include "opennvt/discovery.h"
#include "opennvt/netcfg.h"
#include "opennvt/netif.h"
#include "opennvt/ipfilter.h"
#include "opennvt/log.h"
#include "soapH.h"
#include "wsaapi.h"
#include "wsddapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

extern struct Namespace namespaces[];

struct discovery {
    const struct opennvt_config *cfg;
    struct onvif_device *dev;
    struct soap *rx;              /* bound UDP context, serve thread only */
    pthread_mutex_t send_lock;    /* Hello/Bye from other threads */
    pthread_t thread;
    atomic_int stopping;
    int port;
    atomic_int http_port;         /* the SOAP service's port, and whether it is HTTPS */
    atomic_int https;
    int multicast_ok;
    char endpoint_ref[64];        /* urn:uuid:... */
    atomic_uint metadata_version;
    int last_discoverable;
};

int discovery_port(const struct discovery *d)
{
    return d->port;
}

void discovery_set_service_port(struct discovery *d, int port, int https)
{
    if (!d || (atomic_load(&d->http_port) == port && atomic_load(&d->https) == https))
        return;
    atomic_store(&d->http_port, port);
    atomic_store(&d->https, https);
    discovery_settings_changed(d);
}

/* Space-separated scopes, allocated in soap. */
static char *scope_list(struct soap *soap, struct netcfg *nc)
{
    struct netcfg_scope *scopes;
    size_t n;
    if (netcfg_get_scopes(nc, &scopes, &n) != NETCFG_OK)
        return NULL;
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(scopes[i].uri) + 1;
    char *out = soap_malloc(soap, total);
    if (out) {
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (i)
                strcat(out, " ");
            strcat(out, scopes[i].uri);
        }
    }
    free(scopes);
    return out;
}

/* http://<addr>:<port>/onvif/device_service for each address we serve on. */
static char *xaddrs(struct soap *soap, struct discovery *d)
{
    char buf[2048] = "";
    size_t used = 0;
    const char *scheme = atomic_load(&d->https) ? "https" : "http";
    int port = atomic_load(&d->http_port);
    if (d->cfg->bind[0] && strcmp(d->cfg->bind, "0.0.0.0") && strcmp(d->cfg->bind, "::")) {
        int v6 = strchr(d->cfg->bind, ':') != NULL;
        snprintf(buf, sizeof buf, "%s://%s%s%s:%d/onvif/device_service", scheme, v6 ? "[" : "", d->cfg->bind, v6 ? "]" : "", port);
        return soap_strdup(soap, buf);
    }
    struct netif list[NETIF_MAX];
    int n = netif_list(list, NETIF_MAX);
    for (int pass = 0; pass < 2 && used == 0; pass++) {
        for (int i = 0; i < n; i++) {
            if (!list[i].up || (pass == 0 && list[i].loopback))
                continue;
            for (size_t k = 0; k < list[i].n_v4; k++) {
                int w = snprintf(buf + used, sizeof buf - used, "%s%s://%s:%d/onvif/device_service", used ? " " : "",
                                 scheme, list[i].v4[k].addr, port);
                if (w < 0 || (size_t)w >= sizeof buf - used)
                    break;
                used += (size_t)w;
            }
        }
    }
    if (used == 0)
        snprintf(buf, sizeof buf, "%s://127.0.0.1:%d/onvif/device_service", scheme, port);
    return soap_strdup(soap, buf);
}

/* The datagram's source, for logs. */
static const char *peer_of(struct soap *soap, char *buf, size_t len)
{
    if (soap->peer.addr.sa_family == AF_INET)
        inet_ntop(AF_INET, &soap->peer.in.sin_addr, buf, (socklen_t)len);
    else if (soap->peer.addr.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&soap->peer.storage)->sin6_addr, buf, (socklen_t)len);
    else
        snprintf(buf, len, "?");
    return buf;
}

soap_wsdd_mode wsdd_event_Probe(struct soap *soap, const char *MessageID, const char *ReplyTo, const char *Types,
                                const char *Scopes, const char *MatchBy, struct wsdd__ProbeMatchesType *matches)
{
    (void)MessageID;
    (void)ReplyTo;
    struct discovery *d = soap->user;
    soap_wsdd_init_ProbeMatches(soap, matches);
    if (!d || !netcfg_get_discoverable(d->dev->netcfg))
        return SOAP_WSDD_ADHOC; /* silent */
    char *scopes = scope_list(soap, d->dev->netcfg);
    if (!scopes)
        return SOAP_WSDD_ADHOC;
    if (!discovery_types_match(Types, DISCOVERY_TYPES) || discovery_scopes_match(MatchBy, Scopes, scopes) != 1) {
        char peer[64];
        log_debug("discovery", "probe from %s did not match", peer_of(soap, peer, sizeof peer));
        return SOAP_WSDD_ADHOC; /* no match: no answer */
    }
    soap_wsdd_add_ProbeMatch(soap, matches, d->endpoint_ref, DISCOVERY_TYPES, scopes, NULL, xaddrs(soap, d),
                             atomic_load(&d->metadata_version));
    char peer[64];
    log_debug("discovery", "probe from %s answered", peer_of(soap, peer, sizeof peer));
    return SOAP_WSDD_MANAGED; /* reply to the sender over the same socket */
}

soap_wsdd_mode wsdd_event_Resolve(struct soap *soap, const char *MessageID, const char *ReplyTo,
                                  const char *EndpointReference, struct wsdd__ResolveMatchType *match)
{
    (void)MessageID;
    (void)ReplyTo;
    struct discovery *d = soap->user;
    if (!d || !netcfg_get_discoverable(d->dev->netcfg) || !EndpointReference ||
        strcmp(EndpointReference, d->endpoint_ref) != 0)
        return SOAP_WSDD_ADHOC;
    soap_default_wsdd__ResolveMatchType(soap, match);
    match->wsa__EndpointReference.Address = soap_strdup(soap, d->endpoint_ref);
    match->Types = DISCOVERY_TYPES;
    match->Scopes = soap_malloc(soap, sizeof *match->Scopes);
    soap_default_wsdd__ScopesType(soap, match->Scopes);
    match->Scopes->__item = scope_list(soap, d->dev->netcfg);
    match->XAddrs = xaddrs(soap, d);
    match->MetadataVersion = atomic_load(&d->metadata_version);
    return SOAP_WSDD_MANAGED;
}

/* A device ignores other peers' announcements and matches. */
void wsdd_event_Hello(struct soap *soap, unsigned int InstanceId, const char *SequenceId, unsigned int MessageNumber,
                      const char *MessageID, const char *RelatesTo, const char *EndpointReference, const char *Types,
                      const char *Scopes, const char *MatchBy, const char *XAddrs, unsigned int MetadataVersion)
{
    (void)soap; (void)InstanceId; (void)SequenceId; (void)MessageNumber; (void)MessageID; (void)RelatesTo;
    (void)EndpointReference; (void)Types; (void)Scopes; (void)MatchBy; (void)XAddrs; (void)MetadataVersion;
}

void wsdd_event_Bye(struct soap *soap, unsigned int InstanceId, const char *SequenceId, unsigned int MessageNumber,
                    const char *MessageID, const char *RelatesTo, const char *EndpointReference, const char *Types,
                    const char *Scopes, const char *MatchBy, const char *XAddrs, unsigned int *MetadataVersion)
{
    (void)soap; (void)InstanceId; (void)SequenceId; (void)MessageNumber; (void)MessageID; (void)RelatesTo;
    (void)EndpointReference; (void)Types; (void)Scopes; (void)MatchBy; (void)XAddrs; (void)MetadataVersion;
}

void wsdd_event_ProbeMatches(struct soap *soap, unsigned int InstanceId, const char *SequenceId,
                             unsigned int MessageNumber, const char *MessageID, const char *RelatesTo,
                             struct wsdd__ProbeMatchesType *matches)
{
    (void)soap; (void)InstanceId; (void)SequenceId; (void)MessageNumber; (void)MessageID; (void)RelatesTo; (void)matches;
}

void wsdd_event_ResolveMatches(struct soap *soap, unsigned int InstanceId, const char *SequenceId,
                               unsigned int MessageNumber, const char *MessageID, const char *RelatesTo,
                               struct wsdd__ResolveMatchType *match)
{
    (void)soap; (void)InstanceId; (void)SequenceId; (void)MessageNumber; (void)MessageID; (void)RelatesTo; (void)match;
}

static struct soap *new_udp_context(void)
{
    struct soap *soap = soap_new1(SOAP_IO_UDP | SOAP_C_UTFSTRING);
    if (!soap)
        return NULL;
    soap_set_namespaces(soap, namespaces);
    soap_register_plugin(soap, soap_wsa); /* wsddapi relies on WS-Addressing headers */
    soap->bind_flags = SO_REUSEADDR;
    soap->connect_flags = SO_BROADCAST;
    soap->recv_maxlength = 64 * 1024;  /* one datagram */
    soap->maxlevel = 32;
    soap->maxoccurs = 256;
    return soap;
}

/* Announces Hello or Bye to the multicast group. */
static void announce(struct discovery *d, int hello)
{
    if (!d->multicast_ok)
        return;
    pthread_mutex_lock(&d->send_lock);
    struct soap *soap = new_udp_context();
    if (soap) {
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, "soap.udp://%s:%d", DISCOVERY_MULTICAST_V4, d->port);
        char *scopes = scope_list(soap, d->dev->netcfg);
        const char *msgid = soap_wsa_rand_uuid(soap);
        int rc = hello ? soap_wsdd_Hello(soap, SOAP_WSDD_ADHOC, endpoint, msgid, NULL, d->endpoint_ref, DISCOVERY_TYPES,
                                         scopes, NULL, xaddrs(soap, d), atomic_load(&d->metadata_version))
                       : soap_wsdd_Bye(soap, SOAP_WSDD_ADHOC, endpoint, msgid, d->endpoint_ref, DISCOVERY_TYPES,
                                       scopes, NULL, xaddrs(soap, d), atomic_load(&d->metadata_version));
        if (rc != SOAP_OK)
            log_info("discovery", "%s not sent (no multicast route?)", hello ? "Hello" : "Bye");
        else
            log_info("discovery", "%s sent", hello ? "Hello" : "Bye");
        soap_destroy(soap);
        soap_end(soap);
        soap_free(soap);
    }
    pthread_mutex_unlock(&d->send_lock);
}

static size_t (*gsoap_frecv)(struct soap *, char *, size_t);

/* Reads one datagram per message. Host access restrictions apply to
 * discovery too: a datagram from a filtered source reads as empty, so gSOAP
 * never parses it. */
static size_t frecv_filtered(struct soap *soap, char *buf, size_t len)
{
    /* A message is one datagram: asked for more of it (a truncated or junk
     * datagram), report its end instead of reading the next datagram, which
     * would swallow another client's probe into this broken message. */
    if (soap->count > 0)
        return 0;
    size_t n = gsoap_frecv(soap, buf, len);
    struct discovery *d = soap->user;
    if (n > 0 && d && d->dev->ipfilter && !ipfilter_allows(d->dev->ipfilter, &soap->peer.addr)) {
        char peer[64];
        log_debug("discovery", "datagram from %s refused by the IP address filter", peer_of(soap, peer, sizeof peer));
        return 0;
    }
    return n;
}

static void *serve_main(void *arg)
{
    struct discovery *d = arg;
    while (!atomic_load(&d->stopping)) {
        /* Serves datagrams for up to 300 ms, then checks for shutdown. */
        if (soap_wsdd_listen(d->rx, -300000) != SOAP_OK)
            log_debug("discovery", "datagram ignored (error %d)", d->rx->error);
        soap_destroy(d->rx);
        soap_end(d->rx);
    }
    return NULL;
}

int discovery_start(struct discovery **out, const struct opennvt_config *cfg, struct onvif_device *dev, int http_port)
{
    *out = NULL;
    struct discovery *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->cfg = cfg;
    d->dev = dev;
    atomic_store(&d->http_port, http_port);
    atomic_init(&d->metadata_version, 1);
    pthread_mutex_init(&d->send_lock, NULL);
    snprintf(d->endpoint_ref, sizeof d->endpoint_ref, "urn:uuid:%s", dev->uuid);
    d->rx = new_udp_context();
    if (!d->rx) {
        free(d);
        return -ENOMEM;
    }
    d->rx->user = d;
    gsoap_frecv = d->rx->frecv;
    d->rx->frecv = frecv_filtered;
    /* Bound to all IPv4 addresses: multicast datagrams are addressed to the group. */
    if (!soap_valid_socket(soap_bind(d->rx, NULL, cfg->discovery_port, 100))) {
        log_err("discovery", "cannot bind UDP port %d", cfg->discovery_port);
        soap_free(d->rx);
        free(d);
        return -EADDRINUSE;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(d->rx->master, (struct sockaddr *)&ss, &sl);
    d->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    struct ip_mreqn mreq = { 0 };
    inet_pton(AF_INET, DISCOVERY_MULTICAST_V4, &mreq.imr_multiaddr);
    if (cfg->discovery_multicast_if[0])
        mreq.imr_ifindex = (int)if_nametoindex(cfg->discovery_multicast_if);
    if (setsockopt(d->rx->master, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) == 0)
        d->multicast_ok = 1;
    else
        log_warning("discovery", "cannot join %s (%s): answering unicast probes only", DISCOVERY_MULTICAST_V4, strerror(errno));
    d->last_discoverable = netcfg_get_discoverable(dev->netcfg);
    if (pthread_create(&d->thread, NULL, serve_main, d) != 0) {
        soap_free(d->rx);
        free(d);
        return -EAGAIN;
    }
    log_notice("discovery", "WS-Discovery on UDP port %d (%s)", d->port, d->last_discoverable ? "discoverable" : "non-discoverable");
    if (d->last_discoverable)
        announce(d, 1);
    *out = d;
    return 0;
}

void discovery_settings_changed(struct discovery *d)
{
    if (!d)
        return;
    atomic_fetch_add(&d->metadata_version, 1);
    int now = netcfg_get_discoverable(d->dev->netcfg);
    if (now)
        announce(d, 1);
    else if (d->last_discoverable)
        announce(d, 0);
    d->last_discoverable = now;
}

void discovery_stop(struct discovery *d)
{
    if (!d)
        return;
    if (netcfg_get_discoverable(d->dev->netcfg))
        announce(d, 0);
    atomic_store(&d->stopping, 1);
    pthread_join(d->thread, NULL);
    soap_destroy(d->rx);
    soap_end(d->rx);
    soap_free(d->rx);
    pthread_mutex_destroy(&d->send_lock);
    free(d);
}
