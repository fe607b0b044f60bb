/* Media URIs for the connection a request came in on (RTSP streams, the RTSP
 * HTTP tunnel, JPEG snapshots) and the ONVIF fault for each media
 * configuration error, shared by Media (trt) and Media2 (tr2). */
#include "opennvt/mediacfg.h"
#include "opennvt/onvif.h"
#include "opennvt/rtspserver.h"
#include "opennvt/soapserver.h"
#include "soapH.h"

#include <stdio.h>
#include <string.h>

#define SNAPSHOT_PATH "/onvif/snapshot/"
#define URI_MAX 256

/* Profile tokens go into URI paths verbatim: only RFC 3986 unreserved
 * characters, which mediacfg's token rule is a subset of. */
static int path_segment_ok(const char *s)
{
    size_t len = s ? strnlen(s, MEDIA_TOKEN_MAX + 1) : 0;
    if (len == 0 || len > MEDIA_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '~'))
            return 0;
    }
    return 1;
}

/* The address the client reached us on, as it appears in a URL. */
static const char *local_host_of(const struct onvif_request *req)
{
    return req->local_host[0] ? req->local_host : "127.0.0.1";
}

/* port 0: none in the URL (the scheme's default). */
static char *build(struct soap *soap, const char *scheme, const char *host, int port, const char *path,
                   const char *token)
{
    char url[URI_MAX], port_text[16] = "";
    if (port > 0)
        snprintf(port_text, sizeof port_text, ":%d", port);
    int n = snprintf(url, sizeof url, "%s://%s%s%s%s", scheme, host, port_text, path, token);
    if (n < 0 || (size_t)n >= sizeof url)
        return NULL;
    return soap_strdup(soap, url);
}

char *onvif_stream_uri(struct soap *soap, const char *scheme, const char *profile_token)
{
    const struct onvif_request *req = onvif_request_of(soap);
    if (!req || !req->dev || !req->dev->rtsp || !path_segment_ok(profile_token))
        return NULL;
    if (!scheme || (strcmp(scheme, "rtsp") != 0 && strcmp(scheme, "http") != 0))
        return NULL;
    int port = rtspserver_port(req->dev->rtsp);
    if (strcmp(scheme, "http") == 0) {
        /* The tunnel is on the web service's port (ONVIF Media), served by
         * the plain HTTP listener; a request over HTTPS gets that listener's
         * port when HTTP is on, else the RTSP port, which takes tunnels too. */
        if (!req->tls && req->local_port > 0)
            port = req->local_port;
        else if (req->dev->soapserver && soapserver_port(req->dev->soapserver) > 0)
            port = soapserver_port(req->dev->soapserver);
    }
    if (port <= 0)
        return NULL;
    return build(soap, scheme, local_host_of(req), port, RTSP_STREAM_PATH, profile_token);
}

char *onvif_snapshot_uri(struct soap *soap, const char *profile_token)
{
    const struct onvif_request *req = onvif_request_of(soap);
    if (!req || !path_segment_ok(profile_token))
        return NULL;
    if (!req->local_host[0] || req->local_port <= 0)   /* as onvif_xaddr() does */
        return build(soap, "http", "127.0.0.1", 0, SNAPSHOT_PATH, profile_token);
    return build(soap, req->tls ? "https" : "http", req->local_host, req->local_port, SNAPSHOT_PATH, profile_token);
}

/* The subcodes are the ones Media and Media2 name for each condition. */
int onvif_mediacfg_fault(struct soap *soap, int err)
{
    const char *why = mediacfg_strerror(err);
    switch (err) {
    case MEDIACFG_E_NO_PROFILE:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NoProfile", why);
    case MEDIACFG_E_NO_CONFIG:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NoConfig", why);
    case MEDIACFG_E_FIXED:
        return onvif_sender_fault(soap, "ter:Action", "ter:DeletionOfFixedProfile", why);
    case MEDIACFG_E_EXISTS:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ProfileExists", why);
    case MEDIACFG_E_FULL:
        return onvif_receiver_fault(soap, "ter:Action", "ter:MaxNVTProfiles", why);
    case MEDIACFG_E_INVALID:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ConfigModify", why);
    case MEDIACFG_E_CONFLICT:
        return onvif_receiver_fault(soap, "ter:Action", "ter:ConfigurationConflict", why);
    case MEDIACFG_E_NO_SOURCE:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NoSource", why);
    default:                                    /* MEDIACFG_E_IO, MEDIACFG_E_NOMEM */
        return onvif_receiver_fault(soap, "ter:Action", NULL, why);
    }
}
