/* Media service (trt, ver10): profiles, the video source and its
 * configurations, video encoder configurations, stream and snapshot URIs,
 * multicast control and synchronization points. Thin handlers that
 * translate between the ver10 types and mediacfg, which holds every rule.
 * H.265 has no ver10 representation: such encoder configurations do not
 * exist for this service. There is no audio; those operations stay
 * ActionNotSupported. */
#include "opennvt/mediacfg.h"
#include "opennvt/onvif.h"
#include "opennvt/rtspserver.h"
#include "opennvt/stream.h"
#include "media_common.h"
#include "soap_values.h"
#include "soapH.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NEW(soap, type) ((type *)onvif_zalloc(soap, sizeof(type)))



/* ---- capabilities -------------------------------------------------------------- */

/* What the Media service can do; built in soap (a request's context or the
 * scratch one of the GetServices fragment) from what dev runs. */
static struct trt__Capabilities *media_capabilities(struct soap *soap, const struct onvif_device *dev)
{
    int rtsp = dev && dev->rtsp;
    struct trt__Capabilities *c = NEW(soap, struct trt__Capabilities);
    if (!c)
        return NULL;
    c->ProfileCapabilities = NEW(soap, struct trt__ProfileCapabilities);
    c->StreamingCapabilities = NEW(soap, struct trt__StreamingCapabilities);
    if (!c->ProfileCapabilities || !c->StreamingCapabilities)
        return NULL;
    c->ProfileCapabilities->MaximumNumberOfProfiles = onvif_int(soap, MEDIA_MAX_PROFILES);
    c->StreamingCapabilities->RTPMulticast = onvif_bool(soap, rtsp);
    c->StreamingCapabilities->RTP_USCORETCP = onvif_bool(soap, rtsp);          /* RTSP tunnelled in HTTP */
    c->StreamingCapabilities->RTP_USCORERTSP_USCORETCP = onvif_bool(soap, rtsp);
    c->StreamingCapabilities->NonAggregateControl = onvif_bool(soap, 0);
    c->StreamingCapabilities->NoRTSPStreaming = onvif_bool(soap, !rtsp);
    c->SnapshotUri = onvif_bool(soap, 1);
    c->Rotation = onvif_bool(soap, 0);
    c->VideoSourceMode = onvif_bool(soap, 0);
    c->OSD = onvif_bool(soap, 0);
    c->TemporaryOSDText = onvif_bool(soap, 0);
    c->EXICompression = onvif_bool(soap, 0);
    return c;
}

static int write_capabilities(struct soap *tmp)
{
    struct trt__Capabilities *caps = media_capabilities(tmp, onvif_request_of(tmp)->dev);
    return caps ? soap_out_trt__Capabilities(tmp, "trt:Capabilities", -1, caps, NULL) : SOAP_EOM;
}

char *onvif_media_capabilities_xml(struct soap *soap)
{
    return onvif_capabilities_fragment(soap, write_capabilities);
}

int __trt__GetServiceCapabilities(struct soap *soap, struct _trt__GetServiceCapabilities *req,
                                  struct _trt__GetServiceCapabilitiesResponse *resp)
{
    (void)req;
    resp->Capabilities = media_capabilities(soap, onvif_request_of(soap)->dev);
    return resp->Capabilities ? SOAP_OK : media_out_of_memory(soap);
}

/* ---- conversions ----------------------------------------------------------------- */


/* An ONVIF Quality (xs:float) as mediacfg's integer; out-of-range values stay
 * out of range so the options check refuses them. */
static int quality_of(float q)
{
    if (isnan(q) || q < -1.0f)
        return -1;
    if (q > 1000.0f)
        return 1001;
    return (int)lrintf(q);
}

static struct tt__VideoResolution *resolution_out(struct soap *soap, int width, int height)
{
    struct tt__VideoResolution *r = NEW(soap, struct tt__VideoResolution);
    if (r) {
        r->Width = width;
        r->Height = height;
    }
    return r;
}





static int h264_profile_out(enum media_h264_profile p, enum tt__H264Profile *out)
{
    switch (p) {
    case MEDIA_PROFILE_BASELINE: *out = tt__H264Profile__Baseline; return 0;
    case MEDIA_PROFILE_MAIN: *out = tt__H264Profile__Main; return 0;
    case MEDIA_PROFILE_HIGH: *out = tt__H264Profile__High; return 0;
    }
    return -1;
}

static int fill_vec(struct soap *soap, struct tt__VideoEncoderConfiguration *out, const struct media_vec *v)
{
    int uses = mediacfg_use_count(media_cfg_of(soap), v->token);
    out->Name = soap_strdup(soap, v->name);
    out->UseCount = uses > 0 ? uses : 0;
    out->token = soap_strdup(soap, v->token);
    out->Encoding = v->encoding == MEDIA_ENC_JPEG ? tt__VideoEncoding__JPEG : tt__VideoEncoding__H264;
    out->Resolution = resolution_out(soap, v->width, v->height);
    out->Quality = (float)v->quality;
    out->RateControl = NEW(soap, struct tt__VideoRateControl);
    out->Multicast = media_multicast_out(soap, &v->multicast);
    out->SessionTimeout = onvif_duration(soap, v->session_timeout_s);
    if (!out->Name || !out->token || !out->Resolution || !out->RateControl || !out->Multicast || !out->SessionTimeout)
        return -1;
    out->RateControl->FrameRateLimit = v->framerate;
    out->RateControl->EncodingInterval = v->encoding_interval;
    out->RateControl->BitrateLimit = v->bitrate_kbps;
    if (v->encoding == MEDIA_ENC_H264) {
        if (!(out->H264 = NEW(soap, struct tt__H264Configuration)))
            return -1;
        out->H264->GovLength = v->gov_length;
        if (h264_profile_out(v->profile, &out->H264->H264Profile) != 0)
            out->H264->H264Profile = tt__H264Profile__Main;
    }
    return 0;
}

/* ver10 sees the encoder configurations it can express: JPEG and H.264. */
static int vec_visible(const struct media_vec *v)
{
    return v->encoding == MEDIA_ENC_JPEG || v->encoding == MEDIA_ENC_H264;
}

static int get_visible_vec(struct soap *soap, const char *token, struct media_vec *out)
{
    int rc = mediacfg_vec(media_cfg_of(soap), token, out);
    if (rc == MEDIACFG_OK && !vec_visible(out))
        rc = MEDIACFG_E_NO_CONFIG;
    return rc;
}

static struct tt__Profile *profile_out(struct soap *soap, struct tt__Profile *out, const struct media_profile *p)
{
    struct mediacfg *m = media_cfg_of(soap);
    out->Name = soap_strdup(soap, p->name);
    out->token = soap_strdup(soap, p->token);
    out->fixed = onvif_bool(soap, p->fixed);
    if (!out->Name || !out->token || !out->fixed)
        return NULL;
    struct media_vsc c;
    if (p->vsc_token[0] && mediacfg_vsc(m, p->vsc_token, &c) == MEDIACFG_OK) {
        out->VideoSourceConfiguration = NEW(soap, struct tt__VideoSourceConfiguration);
        if (!out->VideoSourceConfiguration || media_fill_vsc(soap, out->VideoSourceConfiguration, &c) != 0)
            return NULL;
    }
    struct media_vec v;
    if (p->vec_token[0] && get_visible_vec(soap, p->vec_token, &v) == MEDIACFG_OK) {
        out->VideoEncoderConfiguration = NEW(soap, struct tt__VideoEncoderConfiguration);
        if (!out->VideoEncoderConfiguration || fill_vec(soap, out->VideoEncoderConfiguration, &v) != 0)
            return NULL;
    }
    return out;
}

/* The profile a request names, or the fault. */
static int find_profile(struct soap *soap, const char *token, struct media_profile *out)
{
    int rc = mediacfg_profile(media_cfg_of(soap), token, out);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

/* ---- profiles ---------------------------------------------------------------------- */

int __trt__GetProfiles(struct soap *soap, struct _trt__GetProfiles *req, struct _trt__GetProfilesResponse *resp)
{
    (void)req;
    struct media_profile list[MEDIA_MAX_PROFILES];
    int n = mediacfg_profiles(media_cfg_of(soap), list, MEDIA_MAX_PROFILES);
    resp->Profiles = onvif_zalloc(soap, (size_t)(n > 0 ? n : 1) * sizeof *resp->Profiles);
    if (!resp->Profiles)
        return media_out_of_memory(soap);
    for (int i = 0; i < n; i++)
        if (!profile_out(soap, &resp->Profiles[i], &list[i]))
            return media_out_of_memory(soap);
    resp->__sizeProfiles = n;
    return SOAP_OK;
}

int __trt__GetProfile(struct soap *soap, struct _trt__GetProfile *req, struct _trt__GetProfileResponse *resp)
{
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    resp->Profile = NEW(soap, struct tt__Profile);
    if (!resp->Profile || !profile_out(soap, resp->Profile, &p))
        return media_out_of_memory(soap);
    return SOAP_OK;
}

int __trt__CreateProfile(struct soap *soap, struct _trt__CreateProfile *req, struct _trt__CreateProfileResponse *resp)
{
    char token[MEDIA_TOKEN_MAX + 1];
    int rc = mediacfg_create_profile(media_cfg_of(soap), req->Name, req->Token, token);
    if (rc == MEDIACFG_E_INVALID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL,
                                  "Name: 1 to 64 characters; Token: 1 to 64 of A-Z a-z 0-9 _ . -");
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    struct media_profile p;
    if (find_profile(soap, token, &p) != SOAP_OK)
        return SOAP_FAULT;
    resp->Profile = NEW(soap, struct tt__Profile);
    if (!resp->Profile || !profile_out(soap, resp->Profile, &p))
        return media_out_of_memory(soap);
    return SOAP_OK;
}

int __trt__DeleteProfile(struct soap *soap, struct _trt__DeleteProfile *req, struct _trt__DeleteProfileResponse *resp)
{
    (void)resp;
    struct onvif_device *dev = onvif_request_of(soap)->dev;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    if (p.fixed)
        return onvif_mediacfg_fault(soap, MEDIACFG_E_FIXED);
    /* A deleted profile's multicast stream has nothing left to describe it. */
    if (dev->rtsp)
        rtspserver_stop_multicast(dev->rtsp, p.token);
    int rc = mediacfg_delete_profile(dev->mediacfg, p.token);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __trt__AddVideoSourceConfiguration(struct soap *soap, struct _trt__AddVideoSourceConfiguration *req,
                                       struct _trt__AddVideoSourceConfigurationResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    if (!req->ConfigurationToken)
        return onvif_mediacfg_fault(soap, MEDIACFG_E_NO_CONFIG);
    int rc = mediacfg_profile_set_vsc(media_cfg_of(soap), p.token, req->ConfigurationToken);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __trt__RemoveVideoSourceConfiguration(struct soap *soap, struct _trt__RemoveVideoSourceConfiguration *req,
                                          struct _trt__RemoveVideoSourceConfigurationResponse *resp)
{
    (void)resp;
    int rc = mediacfg_profile_set_vsc(media_cfg_of(soap), req->ProfileToken, NULL);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __trt__AddVideoEncoderConfiguration(struct soap *soap, struct _trt__AddVideoEncoderConfiguration *req,
                                        struct _trt__AddVideoEncoderConfigurationResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    struct media_vec v;
    int rc = get_visible_vec(soap, req->ConfigurationToken, &v);
    if (rc == MEDIACFG_OK)
        rc = mediacfg_profile_set_vec(media_cfg_of(soap), p.token, v.token);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __trt__RemoveVideoEncoderConfiguration(struct soap *soap, struct _trt__RemoveVideoEncoderConfiguration *req,
                                           struct _trt__RemoveVideoEncoderConfigurationResponse *resp)
{
    (void)resp;
    int rc = mediacfg_profile_set_vec(media_cfg_of(soap), req->ProfileToken, NULL);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

/* ---- video source and its configurations ----------------------------------------- */

int __trt__GetVideoSources(struct soap *soap, struct _trt__GetVideoSources *req,
                           struct _trt__GetVideoSourcesResponse *resp)
{
    (void)req;
    struct media_video_source vs;
    memset(&vs, 0, sizeof vs);
    mediacfg_video_source(media_cfg_of(soap), &vs);
    struct tt__VideoSource *s = NEW(soap, struct tt__VideoSource);
    if (!s || !(s->token = soap_strdup(soap, vs.token)) || !(s->Resolution = resolution_out(soap, vs.width, vs.height)))
        return media_out_of_memory(soap);
    s->Framerate = (float)vs.framerate;
    resp->VideoSources = s;
    resp->__sizeVideoSources = 1;
    return SOAP_OK;
}

static int vsc_list_out(struct soap *soap, const struct media_vsc *list, int n,
                        struct tt__VideoSourceConfiguration **out, int *size)
{
    *out = onvif_zalloc(soap, (size_t)(n > 0 ? n : 1) * sizeof **out);
    if (!*out)
        return media_out_of_memory(soap);
    for (int i = 0; i < n; i++)
        if (media_fill_vsc(soap, &(*out)[i], &list[i]) != 0)
            return media_out_of_memory(soap);
    *size = n > 0 ? n : 0;
    return SOAP_OK;
}

int __trt__GetVideoSourceConfigurations(struct soap *soap, struct _trt__GetVideoSourceConfigurations *req,
                                        struct _trt__GetVideoSourceConfigurationsResponse *resp)
{
    (void)req;
    struct media_vsc list[MEDIA_MAX_VSCS];
    int n = mediacfg_vscs(media_cfg_of(soap), list, MEDIA_MAX_VSCS);
    return vsc_list_out(soap, list, n, &resp->Configurations, &resp->__sizeConfigurations);
}

int __trt__GetVideoSourceConfiguration(struct soap *soap, struct _trt__GetVideoSourceConfiguration *req,
                                       struct _trt__GetVideoSourceConfigurationResponse *resp)
{
    struct media_vsc c;
    int rc = mediacfg_vsc(media_cfg_of(soap), req->ConfigurationToken, &c);
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    resp->Configuration = NEW(soap, struct tt__VideoSourceConfiguration);
    if (!resp->Configuration || media_fill_vsc(soap, resp->Configuration, &c) != 0)
        return media_out_of_memory(soap);
    return SOAP_OK;
}

int __trt__GetCompatibleVideoSourceConfigurations(struct soap *soap,
                                                  struct _trt__GetCompatibleVideoSourceConfigurations *req,
                                                  struct _trt__GetCompatibleVideoSourceConfigurationsResponse *resp)
{
    struct media_vsc list[MEDIA_MAX_VSCS];
    int n = mediacfg_compatible_vscs(media_cfg_of(soap), req->ProfileToken, list, MEDIA_MAX_VSCS);
    if (n < 0)
        return onvif_mediacfg_fault(soap, n);
    return vsc_list_out(soap, list, n, &resp->Configurations, &resp->__sizeConfigurations);
}

/* The optional ConfigurationToken / ProfileToken of an options request must
 * name existing entities. */
static int check_option_tokens(struct soap *soap, const char *config_token, int config_is_vsc, const char *profile_token)
{
    struct mediacfg *m = media_cfg_of(soap);
    if (profile_token) {
        int rc = mediacfg_profile(m, profile_token, NULL);
        if (rc != MEDIACFG_OK)
            return onvif_mediacfg_fault(soap, rc);
    }
    if (config_token) {
        struct media_vec v;
        int rc = config_is_vsc ? mediacfg_vsc(m, config_token, NULL) : get_visible_vec(soap, config_token, &v);
        if (rc != MEDIACFG_OK)
            return onvif_mediacfg_fault(soap, rc);
    }
    return SOAP_OK;
}

int __trt__GetVideoSourceConfigurationOptions(struct soap *soap, struct _trt__GetVideoSourceConfigurationOptions *req,
                                              struct _trt__GetVideoSourceConfigurationOptionsResponse *resp)
{
    if (check_option_tokens(soap, req->ConfigurationToken, 1, req->ProfileToken) != SOAP_OK)
        return SOAP_FAULT;
    struct media_vsc_options o;
    memset(&o, 0, sizeof o);
    mediacfg_vsc_options(media_cfg_of(soap), &o);
    struct tt__VideoSourceConfigurationOptions *opt = NEW(soap, struct tt__VideoSourceConfigurationOptions);
    if (!opt || !(opt->BoundsRange = NEW(soap, struct tt__IntRectangleRange)))
        return media_out_of_memory(soap);
    opt->BoundsRange->XRange = media_range_out(soap, o.x_min, o.x_max);
    opt->BoundsRange->YRange = media_range_out(soap, o.y_min, o.y_max);
    opt->BoundsRange->WidthRange = media_range_out(soap, o.width_min, o.width_max);
    opt->BoundsRange->HeightRange = media_range_out(soap, o.height_min, o.height_max);
    opt->VideoSourceTokensAvailable = onvif_zalloc(soap, (size_t)(o.n_sources > 0 ? o.n_sources : 1) * sizeof(char *));
    if (!opt->BoundsRange->XRange || !opt->BoundsRange->YRange || !opt->BoundsRange->WidthRange ||
        !opt->BoundsRange->HeightRange || !opt->VideoSourceTokensAvailable)
        return media_out_of_memory(soap);
    for (int i = 0; i < o.n_sources && i < 1; i++)
        opt->VideoSourceTokensAvailable[opt->__sizeVideoSourceTokensAvailable++] = soap_strdup(soap, o.source_tokens[i]);
    opt->MaximumNumberOfProfiles = onvif_int(soap, MEDIA_MAX_PROFILES);
    resp->Options = opt;
    return SOAP_OK;
}

int __trt__SetVideoSourceConfiguration(struct soap *soap, struct _trt__SetVideoSourceConfiguration *req,
                                       struct _trt__SetVideoSourceConfigurationResponse *resp)
{
    (void)resp;
    const struct tt__VideoSourceConfiguration *in = req->Configuration;
    struct media_vsc c;
    int rc = in ? mediacfg_vsc(media_cfg_of(soap), in->token, &c) : MEDIACFG_E_NO_CONFIG;
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    /* Over the current values: what the request leaves out stays. */
    if ((in->Name && strlen(in->Name) >= sizeof c.name) ||
        (in->SourceToken && strlen(in->SourceToken) >= sizeof c.source_token))
        return onvif_mediacfg_fault(soap, MEDIACFG_E_INVALID);
    if (in->Name)
        snprintf(c.name, sizeof c.name, "%s", in->Name);
    if (in->SourceToken)
        snprintf(c.source_token, sizeof c.source_token, "%s", in->SourceToken);
    if (in->Bounds) {
        c.x = in->Bounds->x;
        c.y = in->Bounds->y;
        c.width = in->Bounds->width;
        c.height = in->Bounds->height;
    }
    rc = mediacfg_set_vsc(media_cfg_of(soap), &c);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

/* ---- video encoder configurations --------------------------------------------------- */

static int vec_list_out(struct soap *soap, const struct media_vec *list, int n,
                        struct tt__VideoEncoderConfiguration **out, int *size)
{
    *out = onvif_zalloc(soap, (size_t)(n > 0 ? n : 1) * sizeof **out);
    if (!*out)
        return media_out_of_memory(soap);
    *size = 0;
    for (int i = 0; i < n; i++)
        if (vec_visible(&list[i]) && fill_vec(soap, &(*out)[(*size)++], &list[i]) != 0)
            return media_out_of_memory(soap);
    return SOAP_OK;
}

int __trt__GetVideoEncoderConfigurations(struct soap *soap, struct _trt__GetVideoEncoderConfigurations *req,
                                         struct _trt__GetVideoEncoderConfigurationsResponse *resp)
{
    (void)req;
    struct media_vec list[MEDIA_MAX_VECS];
    int n = mediacfg_vecs(media_cfg_of(soap), list, MEDIA_MAX_VECS);
    return vec_list_out(soap, list, n, &resp->Configurations, &resp->__sizeConfigurations);
}

int __trt__GetVideoEncoderConfiguration(struct soap *soap, struct _trt__GetVideoEncoderConfiguration *req,
                                        struct _trt__GetVideoEncoderConfigurationResponse *resp)
{
    struct media_vec v;
    int rc = get_visible_vec(soap, req->ConfigurationToken, &v);
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    resp->Configuration = NEW(soap, struct tt__VideoEncoderConfiguration);
    if (!resp->Configuration || fill_vec(soap, resp->Configuration, &v) != 0)
        return media_out_of_memory(soap);
    return SOAP_OK;
}

int __trt__GetCompatibleVideoEncoderConfigurations(struct soap *soap,
                                                   struct _trt__GetCompatibleVideoEncoderConfigurations *req,
                                                   struct _trt__GetCompatibleVideoEncoderConfigurationsResponse *resp)
{
    struct media_vec list[MEDIA_MAX_VECS];
    int n = mediacfg_compatible_vecs(media_cfg_of(soap), req->ProfileToken, list, MEDIA_MAX_VECS);
    if (n < 0)
        return onvif_mediacfg_fault(soap, n);
    return vec_list_out(soap, list, n, &resp->Configurations, &resp->__sizeConfigurations);
}

static struct tt__VideoResolution *resolutions_out(struct soap *soap, const struct media_vec_options *o, int *size)
{
    struct tt__VideoResolution *r = onvif_zalloc(soap, (size_t)(o->n_resolutions > 0 ? o->n_resolutions : 1) * sizeof *r);
    if (!r)
        return NULL;
    for (int i = 0; i < o->n_resolutions; i++) {
        r[i].Width = o->resolutions[i].width;
        r[i].Height = o->resolutions[i].height;
    }
    *size = o->n_resolutions;
    return r;
}

static enum tt__H264Profile *h264_profiles_out(struct soap *soap, unsigned profiles, int *size)
{
    enum tt__H264Profile *list = onvif_zalloc(soap, 3 * sizeof *list);
    if (!list)
        return NULL;
    *size = 0;
    for (int p = MEDIA_PROFILE_BASELINE; p <= MEDIA_PROFILE_HIGH; p++)
        if ((profiles & (1u << p)) && h264_profile_out((enum media_h264_profile)p, &list[*size]) == 0)
            (*size)++;
    return list;
}

/* JPEG options (ver10 body and the Extension with the bitrate range). */
static int jpeg_options_out(struct soap *soap, const struct media_vec_options *o, struct tt__VideoEncoderConfigurationOptions *opt)
{
    struct tt__JpegOptions *j = NEW(soap, struct tt__JpegOptions);
    struct tt__JpegOptions2 *j2 = NEW(soap, struct tt__JpegOptions2);
    if (!j || !j2)
        return -1;
    j->ResolutionsAvailable = resolutions_out(soap, o, &j->__sizeResolutionsAvailable);
    j->FrameRateRange = media_range_out(soap, o->framerate_min, o->framerate_max);
    j->EncodingIntervalRange = media_range_out(soap, o->interval_min, o->interval_max);
    j2->ResolutionsAvailable = j->ResolutionsAvailable;
    j2->__sizeResolutionsAvailable = j->__sizeResolutionsAvailable;
    j2->FrameRateRange = j->FrameRateRange;
    j2->EncodingIntervalRange = j->EncodingIntervalRange;
    j2->BitrateRange = media_range_out(soap, o->bitrate_min, o->bitrate_max);
    if (!j->ResolutionsAvailable || !j->FrameRateRange || !j->EncodingIntervalRange || !j2->BitrateRange)
        return -1;
    opt->JPEG = j;
    opt->Extension->JPEG = j2;
    return 0;
}

static int h264_options_out(struct soap *soap, const struct media_vec_options *o, struct tt__VideoEncoderConfigurationOptions *opt)
{
    struct tt__H264Options *h = NEW(soap, struct tt__H264Options);
    struct tt__H264Options2 *h2 = NEW(soap, struct tt__H264Options2);
    if (!h || !h2)
        return -1;
    h->ResolutionsAvailable = resolutions_out(soap, o, &h->__sizeResolutionsAvailable);
    h->GovLengthRange = media_range_out(soap, o->gov_min, o->gov_max);
    h->FrameRateRange = media_range_out(soap, o->framerate_min, o->framerate_max);
    h->EncodingIntervalRange = media_range_out(soap, o->interval_min, o->interval_max);
    h->H264ProfilesSupported = h264_profiles_out(soap, o->profiles, &h->__sizeH264ProfilesSupported);
    h2->ResolutionsAvailable = h->ResolutionsAvailable;
    h2->__sizeResolutionsAvailable = h->__sizeResolutionsAvailable;
    h2->GovLengthRange = h->GovLengthRange;
    h2->FrameRateRange = h->FrameRateRange;
    h2->EncodingIntervalRange = h->EncodingIntervalRange;
    h2->H264ProfilesSupported = h->H264ProfilesSupported;
    h2->__sizeH264ProfilesSupported = h->__sizeH264ProfilesSupported;
    h2->BitrateRange = media_range_out(soap, o->bitrate_min, o->bitrate_max);
    if (!h->ResolutionsAvailable || !h->GovLengthRange || !h->FrameRateRange || !h->EncodingIntervalRange ||
        !h->H264ProfilesSupported || !h2->BitrateRange)
        return -1;
    opt->H264 = h;
    opt->Extension->H264 = h2;
    return 0;
}

/* A configuration may change its encoding, so the options of every encoding
 * apply to each configuration and profile. */
int __trt__GetVideoEncoderConfigurationOptions(struct soap *soap, struct _trt__GetVideoEncoderConfigurationOptions *req,
                                               struct _trt__GetVideoEncoderConfigurationOptionsResponse *resp)
{
    if (check_option_tokens(soap, req->ConfigurationToken, 0, req->ProfileToken) != SOAP_OK)
        return SOAP_FAULT;
    struct mediacfg *m = media_cfg_of(soap);
    struct tt__VideoEncoderConfigurationOptions *opt = NEW(soap, struct tt__VideoEncoderConfigurationOptions);
    if (!opt || !(opt->Extension = NEW(soap, struct tt__VideoEncoderOptionsExtension)))
        return media_out_of_memory(soap);
    struct media_vec_options o;
    int have = 0;
    if (mediacfg_vec_options(m, MEDIA_ENC_JPEG, &o) == MEDIACFG_OK) {
        if (jpeg_options_out(soap, &o, opt) != 0)
            return media_out_of_memory(soap);
        opt->QualityRange = media_range_out(soap, o.quality_min, o.quality_max);
        have = 1;
    }
    if (mediacfg_vec_options(m, MEDIA_ENC_H264, &o) == MEDIACFG_OK) {
        if (h264_options_out(soap, &o, opt) != 0)
            return media_out_of_memory(soap);
        opt->QualityRange = media_range_out(soap, o.quality_min, o.quality_max);
        have = 1;
    }
    if (!have)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "No ver10 encoding (JPEG, H.264) is available");
    if (!opt->QualityRange)
        return media_out_of_memory(soap);
    resp->Options = opt;
    return SOAP_OK;
}

/* A keyframe every two seconds (within the options) when a configuration
 * becomes H.264 without saying its GOV length. */
static int default_gov(const struct media_vec_options *o, int framerate)
{
    int gov = 2 * (framerate > 0 ? framerate : 1);
    return gov < o->gov_min ? o->gov_min : gov > o->gov_max ? o->gov_max : gov;
}

int __trt__SetVideoEncoderConfiguration(struct soap *soap, struct _trt__SetVideoEncoderConfiguration *req,
                                        struct _trt__SetVideoEncoderConfigurationResponse *resp)
{
    (void)resp;
    const struct tt__VideoEncoderConfiguration *in = req->Configuration;
    struct media_vec v;
    int rc = in ? get_visible_vec(soap, in->token, &v) : MEDIACFG_E_NO_CONFIG;
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    /* Over the current values: what the request leaves out stays. */
    if (in->Name) {
        if (strlen(in->Name) >= sizeof v.name)
            return onvif_mediacfg_fault(soap, MEDIACFG_E_INVALID);
        snprintf(v.name, sizeof v.name, "%s", in->Name);
    }
    switch (in->Encoding) {
    case tt__VideoEncoding__JPEG: v.encoding = MEDIA_ENC_JPEG; break;
    case tt__VideoEncoding__H264: v.encoding = MEDIA_ENC_H264; break;
    default:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ConfigModify", "MPEG-4 encoding is not offered");
    }
    if (in->Resolution) {
        v.width = in->Resolution->Width;
        v.height = in->Resolution->Height;
    }
    v.quality = quality_of(in->Quality);
    if (in->RateControl) {
        v.framerate = in->RateControl->FrameRateLimit;
        v.encoding_interval = in->RateControl->EncodingInterval;
        v.bitrate_kbps = in->RateControl->BitrateLimit;
    }
    if (v.encoding == MEDIA_ENC_H264) {
        struct media_vec_options o;
        if (mediacfg_vec_options(media_cfg_of(soap), MEDIA_ENC_H264, &o) != MEDIACFG_OK)
            return onvif_mediacfg_fault(soap, MEDIACFG_E_INVALID);
        if (in->H264) {
            v.gov_length = in->H264->GovLength;
            switch (in->H264->H264Profile) {
            case tt__H264Profile__Baseline: v.profile = MEDIA_PROFILE_BASELINE; break;
            case tt__H264Profile__Main: v.profile = MEDIA_PROFILE_MAIN; break;
            case tt__H264Profile__High: v.profile = MEDIA_PROFILE_HIGH; break;
            default:
                return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ConfigModify",
                                          "The H.264 Extended profile is not offered");
            }
        } else if (v.gov_length < o.gov_min) {              /* was JPEG */
            v.gov_length = default_gov(&o, v.framerate);
            v.profile = MEDIA_PROFILE_MAIN;
        }
    }
    if (in->Multicast && media_multicast_in(in->Multicast, &v.multicast) != 0)
        return onvif_mediacfg_fault(soap, MEDIACFG_E_INVALID);
    if (in->SessionTimeout) {
        long s = onvif_duration_seconds(in->SessionTimeout);
        if (s < 0)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ConfigModify",
                                      "SessionTimeout is not a duration in days, hours, minutes and seconds");
        v.session_timeout_s = s > 1000000 ? 1000000 : (int)s;
    }
    rc = mediacfg_set_vec(media_cfg_of(soap), &v);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __trt__GetGuaranteedNumberOfVideoEncoderInstances(
    struct soap *soap, struct _trt__GetGuaranteedNumberOfVideoEncoderInstances *req,
    struct _trt__GetGuaranteedNumberOfVideoEncoderInstancesResponse *resp)
{
    int total = 0, h264 = 0, jpeg = 0, h265 = 0;
    int rc = mediacfg_guaranteed_instances(media_cfg_of(soap), req->ConfigurationToken, &total, &h264, &jpeg, &h265);
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    resp->TotalNumber = total;
    resp->JPEG = onvif_int(soap, jpeg);
    resp->H264 = onvif_int(soap, h264);
    return SOAP_OK;
}

/* ---- streaming ------------------------------------------------------------------------ */

static struct tt__MediaUri *media_uri_out(struct soap *soap, char *uri)
{
    struct tt__MediaUri *u = NEW(soap, struct tt__MediaUri);
    if (!u)
        return NULL;
    /* Stable URIs: valid after connecting, after a reboot, and forever. */
    u->Uri = uri;
    u->InvalidAfterConnect = xsd__boolean__false_;
    u->InvalidAfterReboot = xsd__boolean__false_;
    u->Timeout = soap_strdup(soap, "PT0S");
    return u->Timeout ? u : NULL;
}

/* A profile that can stream: it has a source and an encoder configuration. */
static int complete_profile(struct soap *soap, const char *token, struct media_profile *p, struct media_vec *v)
{
    if (find_profile(soap, token, p) != SOAP_OK)
        return SOAP_FAULT;
    if (!p->vsc_token[0] || !p->vec_token[0] || mediacfg_vec(media_cfg_of(soap), p->vec_token, v) != MEDIACFG_OK)
        return onvif_receiver_fault(soap, "ter:Action", "ter:IncompleteConfiguration",
                                    "The profile needs a video source and a video encoder configuration");
    return SOAP_OK;
}

int __trt__GetStreamUri(struct soap *soap, struct _trt__GetStreamUri *req, struct _trt__GetStreamUriResponse *resp)
{
    struct media_profile p;
    struct media_vec v;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    const struct tt__StreamSetup *setup = req->StreamSetup;
    int multicast = setup && setup->Stream == tt__StreamType__RTP_Multicast;
    enum tt__TransportProtocol proto = setup && setup->Transport ? setup->Transport->Protocol : tt__TransportProtocol__RTSP;
    if (setup && setup->Stream != tt__StreamType__RTP_Unicast && !multicast)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidStreamSetup", "Unknown stream type");
    if (multicast && proto == tt__TransportProtocol__HTTP)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidStreamSetup",
                                  "Multicast cannot be tunnelled over HTTP");
    if (!onvif_request_of(soap)->dev->rtsp)
        return onvif_receiver_fault(soap, "ter:ActionNotSupported", NULL, "RTSP streaming is switched off on this device");
    if (complete_profile(soap, p.token, &p, &v) != SOAP_OK)
        return SOAP_FAULT;
    if (multicast && (!v.multicast.address[0] || v.multicast.port <= 0))
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidMulticastSettings",
                                  "The profile's video encoder configuration has no multicast address and port");
    /* UDP, TCP (interleaved) and multicast are all set up over RTSP; HTTP is
     * the RTSP tunnel. */
    char *uri = onvif_stream_uri(soap, proto == tt__TransportProtocol__HTTP ? "http" : "rtsp", p.token);
    if (!uri)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "Cannot build the stream URI");
    resp->MediaUri = media_uri_out(soap, uri);
    return resp->MediaUri ? SOAP_OK : media_out_of_memory(soap);
}

int __trt__GetSnapshotUri(struct soap *soap, struct _trt__GetSnapshotUri *req, struct _trt__GetSnapshotUriResponse *resp)
{
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    if (!p.vsc_token[0])
        return onvif_receiver_fault(soap, "ter:Action", "ter:IncompleteConfiguration",
                                    "The profile has no video source configuration");
    char *uri = onvif_snapshot_uri(soap, p.token);
    if (!uri)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "Cannot build the snapshot URI");
    resp->MediaUri = media_uri_out(soap, uri);
    return resp->MediaUri ? SOAP_OK : media_out_of_memory(soap);
}

int __trt__SetSynchronizationPoint(struct soap *soap, struct _trt__SetSynchronizationPoint *req,
                                   struct _trt__SetSynchronizationPointResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    /* A profile without an encoder, or an encoder nobody watches, has no
     * stream to resynchronise: nothing to do. */
    struct stream_hub *streams = onvif_request_of(soap)->dev->streams;
    if (p.vec_token[0] && streams)
        stream_force_keyframe(streams, p.vec_token);
    return SOAP_OK;
}


int __trt__StartMulticastStreaming(struct soap *soap, struct _trt__StartMulticastStreaming *req,
                                   struct _trt__StartMulticastStreamingResponse *resp)
{
    (void)resp;
    struct media_profile p;
    struct media_vec v;
    if (complete_profile(soap, req->ProfileToken, &p, &v) != SOAP_OK)
        return SOAP_FAULT;
    struct rtspserver *rtsp = onvif_request_of(soap)->dev->rtsp;
    if (!rtsp)
        return onvif_receiver_fault(soap, "ter:ActionNotSupported", NULL, "RTSP streaming is switched off on this device");
    int rc = rtspserver_start_multicast(rtsp, p.token);
    return rc == RTSPSERVER_OK ? SOAP_OK : media_multicast_fault(soap, rc);
}

int __trt__StopMulticastStreaming(struct soap *soap, struct _trt__StopMulticastStreaming *req,
                                  struct _trt__StopMulticastStreamingResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    struct rtspserver *rtsp = onvif_request_of(soap)->dev->rtsp;
    if (!rtsp)
        return SOAP_OK;                         /* nothing can be streaming */
    int rc = rtspserver_stop_multicast(rtsp, p.token);
    /* Stopping what is not running succeeds (Media §5.17.2). */
    return rc == RTSPSERVER_OK || rc == RTSPSERVER_E_NO_MULTICAST ? SOAP_OK : media_multicast_fault(soap, rc);
}
