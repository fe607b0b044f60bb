/* Conversions and faults shared by the Media and Media2 services. */
#include "media_common.h"
#include "opennvt/onvif.h"
#include "opennvt/rtspserver.h"
#include "soap_values.h"

#include <stdio.h>
#include <string.h>

#define NEW(soap, type) ((type *)onvif_zalloc(soap, sizeof(type)))

struct mediacfg *media_cfg_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->mediacfg;
}

int media_out_of_memory(struct soap *soap)
{
    return soap->error = SOAP_EOM;
}

struct tt__IntRange *media_range_out(struct soap *soap, int min, int max)
{
    struct tt__IntRange *r = NEW(soap, struct tt__IntRange);
    if (r) {
        r->Min = min;
        r->Max = max;
    }
    return r;
}

int media_fill_vsc(struct soap *soap, struct tt__VideoSourceConfiguration *out, const struct media_vsc *c)
{
    int uses = mediacfg_use_count(media_cfg_of(soap), c->token);
    out->Name = soap_strdup(soap, c->name);
    out->UseCount = uses > 0 ? uses : 0;
    out->token = soap_strdup(soap, c->token);
    out->SourceToken = soap_strdup(soap, c->source_token);
    out->Bounds = NEW(soap, struct tt__IntRectangle);
    if (!out->Name || !out->token || !out->SourceToken || !out->Bounds)
        return -1;
    out->Bounds->x = c->x;
    out->Bounds->y = c->y;
    out->Bounds->width = c->width;
    out->Bounds->height = c->height;
    return 0;
}

struct tt__MulticastConfiguration *media_multicast_out(struct soap *soap, const struct media_multicast *mc)
{
    struct tt__MulticastConfiguration *m = NEW(soap, struct tt__MulticastConfiguration);
    if (!m || !(m->Address = NEW(soap, struct tt__IPAddress)))
        return NULL;
    if (strchr(mc->address, ':')) {
        m->Address->Type = tt__IPType__IPv6;
        m->Address->IPv6Address = soap_strdup(soap, mc->address);
    } else {
        /* The schema requires an address: "none" is the unspecified one. */
        m->Address->Type = tt__IPType__IPv4;
        m->Address->IPv4Address = soap_strdup(soap, mc->address[0] ? mc->address : "0.0.0.0");
    }
    m->Port = mc->port;
    m->TTL = mc->ttl;
    m->AutoStart = mc->autostart ? xsd__boolean__true_ : xsd__boolean__false_;
    return m;
}

/* A tt:MulticastConfiguration over mc; 0, or -1 when the address does not fit. */
int media_multicast_in(const struct tt__MulticastConfiguration *in, struct media_multicast *mc)
{
    const char *addr = NULL;
    if (in->Address)
        addr = in->Address->Type == tt__IPType__IPv6 ? in->Address->IPv6Address : in->Address->IPv4Address;
    if (!addr)
        addr = "";
    if (strlen(addr) >= sizeof mc->address)
        return -1;
    snprintf(mc->address, sizeof mc->address, "%s", addr);
    mc->port = in->Port;
    mc->ttl = in->TTL;
    mc->autostart = in->AutoStart == xsd__boolean__true_;
    return 0;
}

int media_multicast_fault(struct soap *soap, int err)
{
    switch (err) {
    case RTSPSERVER_E_NO_PROFILE:
        return onvif_mediacfg_fault(soap, MEDIACFG_E_NO_PROFILE);
    case RTSPSERVER_E_NO_MULTICAST:
        return onvif_receiver_fault(soap, "ter:Action", "ter:IncompleteConfiguration",
                                    "The profile's video encoder configuration has no multicast address and port");
    default:
        return onvif_receiver_fault(soap, "ter:Action", NULL, rtspserver_strerror(err));
    }
}

