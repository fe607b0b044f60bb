/* Device service: network protocols (HTTP, HTTPS) and the legacy client
 * certificate mode. Thin handlers over tlspolicy; the listener follows a
 * change once the response has been sent, and the change is tentative until
 * an administrator confirms it over the new settings (tlspolicy.h). */
#include "opennvt/log.h"
#include "opennvt/onvif.h"
#include "opennvt/rtspserver.h"
#include "opennvt/soapserver.h"
#include "opennvt/tlspolicy.h"
#include "soapH.h"

#include <stdio.h>
#include <string.h>

static struct tlspolicy *tp_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->tlspolicy;
}

/* The policy's protocols with the ports actually bound (a port given as 0
 * on the command line is whatever the system picked). */
static void current_protocols(struct soap *soap, struct tlspolicy_protocols *p)
{
    struct tlspolicy_state st;
    tlspolicy_get(tp_of(soap), &st);
    *p = st.protocols;
    struct soapserver *srv = onvif_request_of(soap)->dev->soapserver;
    if (srv && soapserver_port(srv) > 0)
        p->http_port = soapserver_port(srv);
    if (srv && soapserver_https_port(srv) > 0)
        p->https_port = soapserver_https_port(srv);
}

static void protocol_out(struct soap *soap, struct tt__NetworkProtocol *out, enum tt__NetworkProtocolType name,
                         int enabled, int port)
{
    memset(out, 0, sizeof *out);
    out->Name = name;
    out->Enabled = enabled ? xsd__boolean__true_ : xsd__boolean__false_;
    out->Port = soap_malloc(soap, sizeof *out->Port);
    if (out->Port) {
        *out->Port = port;
        out->__sizePort = 1;
    }
}

int __tds__GetNetworkProtocols(struct soap *soap, struct _tds__GetNetworkProtocols *req,
                               struct _tds__GetNetworkProtocolsResponse *resp)
{
    (void)req;
    struct tlspolicy_protocols p;
    current_protocols(soap, &p);
    struct rtspserver *rtsp = onvif_request_of(soap)->dev->rtsp;
    resp->NetworkProtocols = soap_malloc(soap, 3 * sizeof *resp->NetworkProtocols);
    if (!resp->NetworkProtocols)
        return SOAP_EOM;
    protocol_out(soap, &resp->NetworkProtocols[0], tt__NetworkProtocolType__HTTP, p.http_enabled, p.http_port);
    protocol_out(soap, &resp->NetworkProtocols[1], tt__NetworkProtocolType__HTTPS, p.https_enabled, p.https_port);
    resp->__sizeNetworkProtocols = 2;
    /* Listed on or off: VMSs find the RTSP port here. */
    const struct opennvt_config *cfg = onvif_request_of(soap)->dev->cfg;
    protocol_out(soap, &resp->NetworkProtocols[resp->__sizeNetworkProtocols++], tt__NetworkProtocolType__RTSP,
                 rtsp != NULL, rtsp ? rtspserver_port(rtsp) : (cfg && cfg->rtsp_port > 0 ? cfg->rtsp_port : 554));
    return SOAP_OK;
}

int __tds__SetNetworkProtocols(struct soap *soap, struct _tds__SetNetworkProtocols *req,
                               struct _tds__SetNetworkProtocolsResponse *resp)
{
    (void)resp;
    struct tlspolicy_protocols p, before;
    current_protocols(soap, &p);
    before = p;
    int seen_http = 0, seen_https = 0;
    if (req->__sizeNetworkProtocols < 1)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "No network protocol given");
    for (int i = 0; i < req->__sizeNetworkProtocols; i++) {
        const struct tt__NetworkProtocol *np = &req->NetworkProtocols[i];
        int *enabled, *port, *seen;
        if (np->Name == tt__NetworkProtocolType__HTTP) {
            enabled = &p.http_enabled, port = &p.http_port, seen = &seen_http;
        } else if (np->Name == tt__NetworkProtocolType__HTTPS) {
            enabled = &p.https_enabled, port = &p.https_port, seen = &seen_https;
        } else {
            /* RTSP is set in the configuration (media/rtsp-port, media/rtsp-enabled);
             * a client restating the current settings is fine. */
            struct rtspserver *rtsp = onvif_request_of(soap)->dev->rtsp;
            int same = rtsp && np->Enabled == xsd__boolean__true_ &&
                       (np->__sizePort == 0 || (np->__sizePort == 1 && np->Port[0] == rtspserver_port(rtsp)));
            if (!same)
                return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ServiceNotSupported",
                                          "The RTSP port and state are set in the device configuration, not over ONVIF");
            continue;
        }
        if ((*seen)++)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "A protocol is listed twice");
        if (np->__sizePort > 1)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "One port per protocol is supported");
        *enabled = np->Enabled == xsd__boolean__true_;
        if (np->__sizePort == 1)
            *port = np->Port[0];
    }
    if (!seen_http && !seen_https)
        return SOAP_OK;   /* only RTSP, as it is */
    /* The listener binds a new port before it closes the old one, so one
     * protocol cannot take the other's port in the same change. */
    if ((p.http_enabled && before.https_enabled && p.http_port == before.https_port && p.https_port != before.https_port) ||
        (p.https_enabled && before.http_enabled && p.https_port == before.http_port && p.http_port != before.http_port))
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:PortAlreadyInUse",
                                  "A protocol cannot take the other's port in one change: move one at a time");
    /* A port another program holds is refused now, not found out later. */
    struct soapserver *srv = onvif_request_of(soap)->dev->soapserver;
    const int ports[2] = { p.http_enabled ? p.http_port : 0, p.https_enabled ? p.https_port : 0 };
    const int was[2] = { before.http_enabled ? before.http_port : -1, before.https_enabled ? before.https_port : -1 };
    for (int i = 0; i < 2; i++) {
        if (ports[i] >= 1 && ports[i] <= 65535 && ports[i] != was[0] && ports[i] != was[1] && srv &&
            !soapserver_port_available(srv, ports[i])) {
            char reason[64];
            snprintf(reason, sizeof reason, "Port %d is already in use", ports[i]);
            return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:PortAlreadyInUse", reason);
        }
    }
    int rc = tlspolicy_set_protocols(tp_of(soap), &p);
    if (rc != TLSPOLICY_OK)
        return onvif_tlspolicy_fault(soap, rc, NULL, NULL);
    const struct onvif_request *r = onvif_request_of(soap);
    int64_t left = 0;
    int pending = tlspolicy_pending(tp_of(soap), NULL, &left);
    log_notice("security", "%s: network protocols set by '%s': HTTP %s port %d, HTTPS %s port %d%s", r->peer,
               r->principal.user, p.http_enabled ? "on" : "off", p.http_port, p.https_enabled ? "on" : "off",
               p.https_port, pending ? "; rolled back unless confirmed over the new settings" : "");
    return SOAP_OK;
}

int __tds__GetClientCertificateMode(struct soap *soap, struct _tds__GetClientCertificateMode *req,
                                    struct _tds__GetClientCertificateModeResponse *resp)
{
    (void)req;
    struct tlspolicy_state st;
    tlspolicy_get(tp_of(soap), &st);
    resp->Enabled = st.client_auth_required ? xsd__boolean__true_ : xsd__boolean__false_;
    return SOAP_OK;
}

int __tds__SetClientCertificateMode(struct soap *soap, struct _tds__SetClientCertificateMode *req,
                                    struct _tds__SetClientCertificateModeResponse *resp)
{
    (void)resp;
    return onvif_set_client_auth(soap, req->Enabled == xsd__boolean__true_);
}
