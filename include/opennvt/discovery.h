/* WS-Discovery (the 2005/04 version ONVIF uses): matching rules, and the UDP
 * responder that answers Probe/Resolve and announces Hello/Bye. */
#ifndef OPENNVT_DISCOVERY_H
#define OPENNVT_DISCOVERY_H

#include "opennvt/config.h"
#include "opennvt/onvif.h"

#define DISCOVERY_MULTICAST_V4 "239.255.255.250"
#define DISCOVERY_TYPES "tdn:NetworkVideoTransmitter tds:Device"
#define DISCOVERY_MATCH_RFC3986 "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986"
#define DISCOVERY_MATCH_STRCMP0 "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0"

/* Does the probe's scope match one device scope under the MatchBy rule
 * (NULL = RFC 3986 prefix match)? Returns 1, 0, or -1 for an unknown rule. */
int discovery_scope_matches(const char *match_by, const char *probe_scope, const char *device_scope);

/* Do all space-separated probe scopes match some device scope?
 * device_scopes is space-separated too. Returns 1, 0, or -1 (unknown rule). */
int discovery_scopes_match(const char *match_by, const char *probe_scopes, const char *device_scopes);

/* Do all space-separated probe types (QNames already normalised to our
 * prefixes) appear among ours? An empty probe list matches. */
int discovery_types_match(const char *probe_types, const char *our_types);

struct discovery;

/* Starts the responder on cfg->discovery_port (0 = free port), joins the
 * multicast group when possible and sends Hello if discoverable. */
int discovery_start(struct discovery **out, const struct opennvt_config *cfg, struct onvif_device *dev, int http_port);
int discovery_port(const struct discovery *d);
/* The SOAP service moved (port, or HTTPS only): XAddrs follow, and a Hello
 * announces the change. */
void discovery_set_service_port(struct discovery *d, int port, int https);
/* Re-reads mode and scopes: sends Hello (discoverable again or scopes changed). */
void discovery_settings_changed(struct discovery *d);
/* Sends Bye (when discoverable) and stops. */
void discovery_stop(struct discovery *d);

#endif
