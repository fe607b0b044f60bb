/* The service registry (what GetServices/GetCapabilities advertise) and XAddr
 * construction from the address the client actually connected to. */
#include "opennvt/onvif.h"
#include "soap_values.h"
#include "soapH.h"

#include <stdio.h>
#include <string.h>

static const struct onvif_service services[] = {
    { "device", "http://www.onvif.org/ver10/device/wsdl", "/onvif/device_service",
      ONVIF_VERSION_MAJOR, ONVIF_VERSION_MINOR, onvif_device_capabilities_xml },
    { "security", "http://www.onvif.org/ver10/advancedsecurity/wsdl", "/onvif/security_service",
      ONVIF_VERSION_MAJOR, ONVIF_VERSION_MINOR, onvif_security_capabilities_xml },
    { "media", "http://www.onvif.org/ver10/media/wsdl", "/onvif/media_service",
      ONVIF_VERSION_MAJOR, ONVIF_VERSION_MINOR, onvif_media_capabilities_xml },
    { "media2", "http://www.onvif.org/ver20/media/wsdl", "/onvif/media2_service",
      ONVIF_VERSION_MAJOR, ONVIF_VERSION_MINOR, onvif_media2_capabilities_xml },
    { "events", "http://www.onvif.org/ver10/events/wsdl", "/onvif/event_service",
      ONVIF_VERSION_MAJOR, ONVIF_VERSION_MINOR, onvif_events_capabilities_xml },
};

const struct onvif_service *onvif_services(size_t *count)
{
    *count = sizeof services / sizeof services[0];
    return services;
}

const struct onvif_service *onvif_service_by_path(const char *path)
{
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        if (path && strcmp(services[i].path, path) == 0)
            return &services[i];
    /* Pull-point subscriptions are endpoints of the events service. */
    if (path && strncmp(path, EVENTS_SUBSCRIPTION_PATH, strlen(EVENTS_SUBSCRIPTION_PATH)) == 0)
        for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
            if (strcmp(services[i].name, "events") == 0)
                return &services[i];
    return NULL;
}

struct onvif_request *onvif_request_of(struct soap *soap)
{
    return (struct onvif_request *)soap->user;
}

char *onvif_xaddr(struct soap *soap, const char *path)
{
    const struct onvif_request *req = onvif_request_of(soap);
    char url[256];
    if (req && req->local_host[0])
        snprintf(url, sizeof url, "%s://%s:%d%s", req->tls ? "https" : "http", req->local_host, req->local_port, path);
    else
        snprintf(url, sizeof url, "http://127.0.0.1%s", path);
    return soap_strdup(soap, url);
}

void *onvif_zalloc(struct soap *soap, size_t n)
{
    void *p = soap_malloc(soap, n ? n : 1);
    if (p)
        memset(p, 0, n ? n : 1);
    return p;
}

enum xsd__boolean *onvif_bool(struct soap *soap, int v)
{
    enum xsd__boolean *p = soap_malloc(soap, sizeof *p);
    if (p)
        *p = v ? xsd__boolean__true_ : xsd__boolean__false_;
    return p;
}

int *onvif_int(struct soap *soap, int v)
{
    int *p = soap_malloc(soap, sizeof *p);
    if (p)
        *p = v;
    return p;
}

char *onvif_duration(struct soap *soap, int seconds)
{
    char buf[32];
    snprintf(buf, sizeof buf, "PT%dS", seconds);
    return soap_strdup(soap, buf);
}

/* Seconds of an xs:duration without years or months (whose length varies):
 * [P][nD][T[nH][nM][n[.f]S]]; -1 when it is not one or exceeds a day's
 * worth of digits. Fractions of a second are dropped. */
long onvif_duration_seconds(const char *s)
{
    if (!s || *s++ != 'P')
        return -1;
    long total = 0;
    int in_time = 0, any = 0;
    while (*s) {
        if (*s == 'T' && !in_time) {
            in_time = 1;
            s++;
            if (!*s)
                return -1;
            continue;
        }
        long v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 9)
                return -1;
            v = v * 10 + (*s++ - '0');
        }
        if (*s == '.' && in_time) {             /* fraction: seconds only */
            s++;
            while (*s >= '0' && *s <= '9')
                s++;
            if (*s != 'S')
                return -1;
        }
        if (!digits)
            return -1;
        long unit;
        switch (*s) {
        case 'D': unit = in_time ? -1 : 86400; break;
        case 'H': unit = in_time ? 3600 : -1; break;
        case 'M': unit = in_time ? 60 : -1; break;
        case 'S': unit = in_time ? 1 : -1; break;
        default: unit = -1; break;
        }
        if (unit < 0 || v > 100000000L / unit)
            return -1;
        total += v * unit;
        if (total > 100000000L)
            return -1;
        s++;
        any = 1;
    }
    return any ? total : -1;
}

char *onvif_capabilities_fragment(struct soap *soap, int (*write)(struct soap *tmp))
{
    /* A scratch context, so the request's context is untouched. */
    struct soap *tmp = soap_new1(SOAP_XML_NOTYPE);
    if (!tmp)
        return NULL;
    soap_set_namespaces(tmp, soap->namespaces);
    tmp->user = soap->user;   /* the writer may look at the request's device */
    const char *out = NULL;
    tmp->os = &out;
    tmp->prolog = NULL;       /* a fragment inside the response: no XML declaration */
    char *copy = NULL;
    if (soap_begin_send(tmp) == SOAP_OK && write(tmp) == SOAP_OK && soap_end_send(tmp) == SOAP_OK && out)
        copy = soap_strdup(soap, out);
    soap_destroy(tmp);
    soap_end(tmp);
    soap_free(tmp);
    return copy;
}
