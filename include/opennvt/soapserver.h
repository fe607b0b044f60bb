/* The HTTP/SOAP listener: one event loop frames requests (bounded headers and
 * bodies, timeouts, connection caps) and a bounded worker pool runs gSOAP on
 * complete requests only, so slow or idle keep-alive clients never hold a
 * worker and never queue others behind them. */
#ifndef OPENNVT_SOAPSERVER_H
#define OPENNVT_SOAPSERVER_H

#include "opennvt/config.h"
#include "opennvt/onvif.h"

struct soapserver;

/* Binds cfg->bind:cfg->http_port (port 0 picks a free one) and, when
 * cfg->https_enabled and the device CA has a server identity, the same service
 * over TLS on cfg->https_port; starts the loop and workers. Returns 0, or
 * -errno with a message logged. */
int soapserver_start(struct soapserver **out, const struct opennvt_config *cfg, struct onvif_device *dev);

/* The bound HTTP port, or 0 when HTTP is off. */
int soapserver_port(const struct soapserver *srv);

/* The bound HTTPS port, or 0 when HTTPS is not running. */
int soapserver_https_port(const struct soapserver *srv);

/* Whether port could be listened on with the bind address in force (a
 * port this server already listens on counts as available). */
int soapserver_port_available(struct soapserver *srv, int port);

/* Stops accepting, closes every connection, joins the threads, frees. */
void soapserver_stop(struct soapserver *srv);

#endif
