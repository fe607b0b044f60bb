/* Media2 service (tr2, ver20): profiles with typed configuration lists, video
 * source and encoder configurations (tt:VideoEncoder2Configuration), encoder
 * instances, stream and snapshot URIs, multicast control and
 * synchronization points. Thin handlers over mediacfg, which holds every
 * rule. There is no audio, metadata, OSD or mask support; those operations
 * stay ActionNotSupported. */
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
#include <strings.h>

#define NEW(soap, type) ((type *)onvif_zalloc(soap, sizeof(type)))

/* tr2:ConfigurationEnumeration values this device has configurations of. */
#define CONFIG_ALL "All"
#define CONFIG_VIDEO_SOURCE "VideoSource"
#define CONFIG_VIDEO_ENCODER "VideoEncoder"



/* ---- capabilities -------------------------------------------------------------- */

static struct tr2__Capabilities2 *media2_capabilities(struct soap *soap, const struct onvif_device *dev)
{
    int rtsp = dev && dev->rtsp;
    struct tr2__Capabilities2 *c = NEW(soap, struct tr2__Capabilities2);
    if (!c)
        return NULL;
    c->ProfileCapabilities = NEW(soap, struct tr2__ProfileCapabilities);
    c->StreamingCapabilities = NEW(soap, struct tr2__StreamingCapabilities);
    if (!c->ProfileCapabilities || !c->StreamingCapabilities)
        return NULL;
    c->ProfileCapabilities->MaximumNumberOfProfiles = onvif_int(soap, MEDIA_MAX_PROFILES);
    c->ProfileCapabilities->ConfigurationsSupported = soap_strdup(soap, CONFIG_VIDEO_SOURCE " " CONFIG_VIDEO_ENCODER);
    struct tr2__StreamingCapabilities *s = c->StreamingCapabilities;
    s->RTSPStreaming = onvif_bool(soap, rtsp);
    s->RTPMulticast = onvif_bool(soap, rtsp);
    s->RTP_USCORERTSP_USCORETCP = onvif_bool(soap, rtsp);
    s->NonAggregateControl = onvif_bool(soap, 0);
    /* Start/StopMulticastStreaming work, but multicast is not resumed after
     * a restart, which this capability would promise. */
    s->AutoStartMulticast = onvif_bool(soap, 0);
    s->SecureRTSPStreaming = onvif_bool(soap, 0);
    c->SnapshotUri = onvif_bool(soap, 1);
    c->Rotation = onvif_bool(soap, 0);
    c->VideoSourceMode = onvif_bool(soap, 0);
    c->OSD = onvif_bool(soap, 0);
    c->TemporaryOSDText = onvif_bool(soap, 0);
    c->Mask = onvif_bool(soap, 0);
    c->SourceMask = onvif_bool(soap, 0);
    return c;
}

static int write_capabilities(struct soap *tmp)
{
    struct tr2__Capabilities2 *caps = media2_capabilities(tmp, onvif_request_of(tmp)->dev);
    return caps ? soap_out_tr2__Capabilities2(tmp, "tr2:Capabilities", -1, caps, NULL) : SOAP_EOM;
}

char *onvif_media2_capabilities_xml(struct soap *soap)
{
    return onvif_capabilities_fragment(soap, write_capabilities);
}

int __tr2__GetServiceCapabilities(struct soap *soap, struct _tr2__GetServiceCapabilities *req,
                                  struct _tr2__GetServiceCapabilitiesResponse *resp)
{
    (void)req;
    resp->Capabilities = media2_capabilities(soap, onvif_request_of(soap)->dev);
    return resp->Capabilities ? SOAP_OK : media_out_of_memory(soap);
}

/* ---- conversions ----------------------------------------------------------------- */

/* An ONVIF float (Quality, FrameRateLimit) as mediacfg's integer;
 * out-of-range values stay out of range so the options check refuses them. */
static int int_of(float f)
{
    if (isnan(f) || f < -1.0f)
        return -1;
    if (f > 1000000.0f)
        return 1000001;
    return (int)lrintf(f);
}




static int fill_vec(struct soap *soap, struct tt__VideoEncoder2Configuration *out, const struct media_vec *v)
{
    int uses = mediacfg_use_count(media_cfg_of(soap), v->token);
    out->Name = soap_strdup(soap, v->name);
    out->UseCount = uses > 0 ? uses : 0;
    out->token = soap_strdup(soap, v->token);
    out->Encoding = soap_strdup(soap, media_encoding_name(v->encoding));
    out->Resolution = NEW(soap, struct tt__VideoResolution2);
    out->RateControl = NEW(soap, struct tt__VideoRateControl2);
    out->Multicast = media_multicast_out(soap, &v->multicast);
    if (!out->Name || !out->token || !out->Encoding || !out->Resolution || !out->RateControl || !out->Multicast)
        return -1;
    out->Resolution->Width = v->width;
    out->Resolution->Height = v->height;
    out->RateControl->FrameRateLimit = (float)v->framerate;
    out->RateControl->BitrateLimit = v->bitrate_kbps;
    out->RateControl->ConstantBitRate = onvif_bool(soap, v->cbr);
    out->Quality = (float)v->quality;
    if (v->encoding != MEDIA_ENC_JPEG) {
        out->GovLength = onvif_int(soap, v->gov_length);
        out->Profile = soap_strdup(soap, media_h264_profile_name(v->profile));
        if (!out->GovLength || !out->Profile)
            return -1;
    }
    return 0;
}

static struct tr2__MediaProfile *profile_out(struct soap *soap, struct tr2__MediaProfile *out,
                                             const struct media_profile *p, int want_vsc, int want_vec)
{
    struct mediacfg *m = media_cfg_of(soap);
    out->Name = soap_strdup(soap, p->name);
    out->token = soap_strdup(soap, p->token);
    out->fixed = onvif_bool(soap, p->fixed);
    if (!out->Name || !out->token || !out->fixed)
        return NULL;
    if (!want_vsc && !want_vec)
        return out;
    if (!(out->Configurations = NEW(soap, struct tr2__ConfigurationSet)))
        return NULL;
    struct media_vsc c;
    if (want_vsc && p->vsc_token[0] && mediacfg_vsc(m, p->vsc_token, &c) == MEDIACFG_OK) {
        out->Configurations->VideoSource = NEW(soap, struct tt__VideoSourceConfiguration);
        if (!out->Configurations->VideoSource || media_fill_vsc(soap, out->Configurations->VideoSource, &c) != 0)
            return NULL;
    }
    struct media_vec v;
    if (want_vec && p->vec_token[0] && mediacfg_vec(m, p->vec_token, &v) == MEDIACFG_OK) {
        out->Configurations->VideoEncoder = NEW(soap, struct tt__VideoEncoder2Configuration);
        if (!out->Configurations->VideoEncoder || fill_vec(soap, out->Configurations->VideoEncoder, &v) != 0)
            return NULL;
    }
    return out;
}

static int find_profile(struct soap *soap, const char *token, struct media_profile *out)
{
    int rc = mediacfg_profile(media_cfg_of(soap), token, out);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

/* ---- profiles ---------------------------------------------------------------------- */

int __tr2__GetProfiles(struct soap *soap, struct _tr2__GetProfiles *req, struct _tr2__GetProfilesResponse *resp)
{
    int want_vsc = 0, want_vec = 0;
    for (int i = 0; i < req->__sizeType; i++) {
        const char *t = req->Type[i];
        if (!t)
            continue;
        if (!strcmp(t, CONFIG_ALL))
            want_vsc = want_vec = 1;
        else if (!strcmp(t, CONFIG_VIDEO_SOURCE))
            want_vsc = 1;
        else if (!strcmp(t, CONFIG_VIDEO_ENCODER))
            want_vec = 1;
        /* other types: this device has no such configurations */
    }
    struct media_profile list[MEDIA_MAX_PROFILES];
    int n;
    if (req->Token) {
        if (find_profile(soap, req->Token, &list[0]) != SOAP_OK)
            return SOAP_FAULT;
        n = 1;
    } else {
        n = mediacfg_profiles(media_cfg_of(soap), list, MEDIA_MAX_PROFILES);
    }
    resp->Profiles = onvif_zalloc(soap, (size_t)(n > 0 ? n : 1) * sizeof *resp->Profiles);
    if (!resp->Profiles)
        return media_out_of_memory(soap);
    for (int i = 0; i < n; i++)
        if (!profile_out(soap, &resp->Profiles[i], &list[i], want_vsc, want_vec))
            return media_out_of_memory(soap);
    resp->__sizeProfiles = n;
    return SOAP_OK;
}

/* The configurations a request's list names: the last token of each type.
 * "All" entries are ignored (Media2 §5.2.1/5.2.3); a type this device has
 * no configurations of, a missing token or an unknown one is NoConfig. */
struct config_refs {
    const char *vsc, *vec;
};

static int parse_refs(struct soap *soap, const struct tr2__ConfigurationRef *refs, int n, struct config_refs *out)
{
    struct mediacfg *m = media_cfg_of(soap);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        const char *type = refs[i].Type, *token = refs[i].Token;
        if (!type || !strcmp(type, CONFIG_ALL))
            continue;
        int rc = MEDIACFG_E_NO_CONFIG;
        if (!strcmp(type, CONFIG_VIDEO_SOURCE)) {
            rc = mediacfg_vsc(m, token, NULL);
            out->vsc = token;
        } else if (!strcmp(type, CONFIG_VIDEO_ENCODER)) {
            rc = mediacfg_vec(m, token, NULL);
            out->vec = token;
        }
        if (rc != MEDIACFG_OK)
            return onvif_mediacfg_fault(soap, rc);
    }
    return SOAP_OK;
}

/* Sets what refs names on the profile, the source before the encoder that
 * depends on it (replacing the source keeps the encoder); on failure the
 * profile's configurations are put back. */
static int apply_refs(struct soap *soap, const struct media_profile *before, const struct config_refs *refs)
{
    struct mediacfg *m = media_cfg_of(soap);
    int rc = MEDIACFG_OK;
    if (refs->vec && !refs->vsc && !before->vsc_token[0])
        rc = MEDIACFG_E_CONFLICT;                    /* checked first: nothing changes */
    if (rc == MEDIACFG_OK && refs->vsc)
        rc = mediacfg_profile_set_vsc(m, before->token, refs->vsc);
    if (rc == MEDIACFG_OK && refs->vec)
        rc = mediacfg_profile_set_vec(m, before->token, refs->vec);
    if (rc != MEDIACFG_OK && refs->vsc) {
        mediacfg_profile_set_vsc(m, before->token, before->vsc_token[0] ? before->vsc_token : NULL);
        if (before->vec_token[0])
            mediacfg_profile_set_vec(m, before->token, before->vec_token);
    }
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __tr2__CreateProfile(struct soap *soap, struct _tr2__CreateProfile *req, struct _tr2__CreateProfileResponse *resp)
{
    struct config_refs refs;
    if (parse_refs(soap, req->Configuration, req->__sizeConfiguration, &refs) != SOAP_OK)
        return SOAP_FAULT;
    char token[MEDIA_TOKEN_MAX + 1];
    int rc = mediacfg_create_profile(media_cfg_of(soap), req->Name, NULL, token);
    if (rc == MEDIACFG_E_INVALID)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "Name: 1 to 64 characters");
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    struct media_profile p;
    if (find_profile(soap, token, &p) != SOAP_OK)
        return SOAP_FAULT;
    if (apply_refs(soap, &p, &refs) != SOAP_OK) {
        mediacfg_delete_profile(media_cfg_of(soap), token);   /* all or nothing */
        return SOAP_FAULT;
    }
    resp->Token = soap_strdup(soap, token);
    return resp->Token ? SOAP_OK : media_out_of_memory(soap);
}

int __tr2__DeleteProfile(struct soap *soap, struct _tr2__DeleteProfile *req, struct _tr2__DeleteProfileResponse *resp)
{
    (void)resp;
    struct onvif_device *dev = onvif_request_of(soap)->dev;
    struct media_profile p;
    if (find_profile(soap, req->Token, &p) != SOAP_OK)
        return SOAP_FAULT;
    if (p.fixed)
        return onvif_mediacfg_fault(soap, MEDIACFG_E_FIXED);
    /* A deleted profile's multicast stream has nothing left to describe it. */
    if (dev->rtsp)
        rtspserver_stop_multicast(dev->rtsp, p.token);
    int rc = mediacfg_delete_profile(dev->mediacfg, p.token);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __tr2__AddConfiguration(struct soap *soap, struct _tr2__AddConfiguration *req,
                            struct _tr2__AddConfigurationResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    struct config_refs refs;
    if (parse_refs(soap, req->Configuration, req->__sizeConfiguration, &refs) != SOAP_OK)
        return SOAP_FAULT;
    /* The name first: it is the step that refuses bad input; a failure of
     * the configurations after it puts the old name back. */
    if (req->Name) {
        int rc = mediacfg_set_profile_name(media_cfg_of(soap), p.token, req->Name);
        if (rc == MEDIACFG_E_INVALID)
            return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "Name: 1 to 64 characters");
        if (rc != MEDIACFG_OK)
            return onvif_mediacfg_fault(soap, rc);
    }
    if (apply_refs(soap, &p, &refs) != SOAP_OK) {
        if (req->Name)
            mediacfg_set_profile_name(media_cfg_of(soap), p.token, p.name);
        return SOAP_FAULT;
    }
    return SOAP_OK;
}

int __tr2__RemoveConfiguration(struct soap *soap, struct _tr2__RemoveConfiguration *req,
                               struct _tr2__RemoveConfigurationResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    /* Tokens are ignored; types this device has no configurations of too. */
    int drop_vsc = 0, drop_vec = 0;
    for (int i = 0; i < req->__sizeConfiguration; i++) {
        const char *type = req->Configuration[i].Type;
        if (!type)
            continue;
        if (!strcmp(type, CONFIG_ALL) || !strcmp(type, CONFIG_VIDEO_SOURCE))
            drop_vsc = 1;                               /* takes the encoder with it */
        else if (!strcmp(type, CONFIG_VIDEO_ENCODER))
            drop_vec = 1;
    }
    struct mediacfg *m = media_cfg_of(soap);
    int rc = MEDIACFG_OK;
    if (drop_vec)
        rc = mediacfg_profile_set_vec(m, p.token, NULL);
    if (rc == MEDIACFG_OK && drop_vsc)
        rc = mediacfg_profile_set_vsc(m, p.token, NULL);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

/* ---- video source configurations ---------------------------------------------------- */

/* Get<entity>Configurations' filters: ConfigurationToken names exactly one
 * (NoConfig when absent or, with ProfileToken, not compatible with the
 * profile); ProfileToken alone lists the compatible ones. */
int __tr2__GetVideoSourceConfigurations(struct soap *soap, struct tr2__GetConfiguration *req,
                                        struct _tr2__GetVideoSourceConfigurationsResponse *resp)
{
    struct mediacfg *m = media_cfg_of(soap);
    struct media_vsc list[MEDIA_MAX_VSCS];
    int n = req->ProfileToken ? mediacfg_compatible_vscs(m, req->ProfileToken, list, MEDIA_MAX_VSCS)
                              : mediacfg_vscs(m, list, MEDIA_MAX_VSCS);
    if (n < 0)
        return onvif_mediacfg_fault(soap, n);
    if (req->ConfigurationToken) {
        int found = -1;
        for (int i = 0; i < n && found < 0; i++)
            if (!strcmp(list[i].token, req->ConfigurationToken))
                found = i;
        if (found < 0)
            return onvif_mediacfg_fault(soap, MEDIACFG_E_NO_CONFIG);
        list[0] = list[found];
        n = 1;
    }
    resp->Configurations = onvif_zalloc(soap, (size_t)(n > 0 ? n : 1) * sizeof *resp->Configurations);
    if (!resp->Configurations)
        return media_out_of_memory(soap);
    for (int i = 0; i < n; i++)
        if (media_fill_vsc(soap, &resp->Configurations[i], &list[i]) != 0)
            return media_out_of_memory(soap);
    resp->__sizeConfigurations = n;
    return SOAP_OK;
}

static int check_option_tokens(struct soap *soap, const struct tr2__GetConfiguration *req, int config_is_vsc)
{
    struct mediacfg *m = media_cfg_of(soap);
    if (req->ProfileToken) {
        int rc = mediacfg_profile(m, req->ProfileToken, NULL);
        if (rc != MEDIACFG_OK)
            return onvif_mediacfg_fault(soap, rc);
    }
    if (req->ConfigurationToken) {
        int rc = config_is_vsc ? mediacfg_vsc(m, req->ConfigurationToken, NULL)
                               : mediacfg_vec(m, req->ConfigurationToken, NULL);
        if (rc != MEDIACFG_OK)
            return onvif_mediacfg_fault(soap, rc);
    }
    return SOAP_OK;
}


int __tr2__GetVideoSourceConfigurationOptions(struct soap *soap, struct tr2__GetConfiguration *req,
                                              struct _tr2__GetVideoSourceConfigurationOptionsResponse *resp)
{
    if (check_option_tokens(soap, req, 1) != SOAP_OK)
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
    opt->VideoSourceTokensAvailable = onvif_zalloc(soap, sizeof(char *));
    if (!opt->BoundsRange->XRange || !opt->BoundsRange->YRange || !opt->BoundsRange->WidthRange ||
        !opt->BoundsRange->HeightRange || !opt->VideoSourceTokensAvailable)
        return media_out_of_memory(soap);
    for (int i = 0; i < o.n_sources && i < 1; i++)
        opt->VideoSourceTokensAvailable[opt->__sizeVideoSourceTokensAvailable++] = soap_strdup(soap, o.source_tokens[i]);
    opt->MaximumNumberOfProfiles = onvif_int(soap, MEDIA_MAX_PROFILES);
    resp->Options = opt;
    return SOAP_OK;
}

int __tr2__SetVideoSourceConfiguration(struct soap *soap, struct _tr2__SetVideoSourceConfiguration *req,
                                       struct tr2__SetConfigurationResponse *resp)
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

int __tr2__GetVideoEncoderConfigurations(struct soap *soap, struct tr2__GetConfiguration *req,
                                         struct _tr2__GetVideoEncoderConfigurationsResponse *resp)
{
    struct mediacfg *m = media_cfg_of(soap);
    struct media_vec list[MEDIA_MAX_VECS];
    int n = req->ProfileToken ? mediacfg_compatible_vecs(m, req->ProfileToken, list, MEDIA_MAX_VECS)
                              : mediacfg_vecs(m, list, MEDIA_MAX_VECS);
    if (n < 0)
        return onvif_mediacfg_fault(soap, n);
    if (req->ConfigurationToken) {
        int found = -1;
        for (int i = 0; i < n && found < 0; i++)
            if (!strcmp(list[i].token, req->ConfigurationToken))
                found = i;
        if (found < 0)
            return onvif_mediacfg_fault(soap, MEDIACFG_E_NO_CONFIG);
        list[0] = list[found];
        n = 1;
    }
    resp->Configurations = onvif_zalloc(soap, (size_t)(n > 0 ? n : 1) * sizeof *resp->Configurations);
    if (!resp->Configurations)
        return media_out_of_memory(soap);
    for (int i = 0; i < n; i++)
        if (fill_vec(soap, &resp->Configurations[i], &list[i]) != 0)
            return media_out_of_memory(soap);
    resp->__sizeConfigurations = n;
    return SOAP_OK;
}

/* FrameRatesSupported: the maximum, then the usual rates below it. */
static char *frame_rates_out(struct soap *soap, int min, int max)
{
    static const int usual[] = { 60, 50, 30, 25, 24, 20, 15, 12, 10, 8, 6, 5, 4, 3, 2, 1 };
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%d", max);
    for (size_t i = 0; i < sizeof usual / sizeof usual[0] && n > 0 && (size_t)n < sizeof buf; i++)
        if (usual[i] < max && usual[i] >= min)
            n += snprintf(buf + n, sizeof buf - (size_t)n, " %d", usual[i]);
    return soap_strdup(soap, buf);
}

static char *profiles_out(struct soap *soap, unsigned profiles)
{
    char buf[64] = "";
    size_t n = 0;
    for (int p = MEDIA_PROFILE_BASELINE; p <= MEDIA_PROFILE_HIGH; p++)
        if (profiles & (1u << p))
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? " " : "", media_h264_profile_name((enum media_h264_profile)p));
    return soap_strdup(soap, buf);
}

static int options_out(struct soap *soap, struct tt__VideoEncoder2ConfigurationOptions *out, const struct media_vec_options *o)
{
    out->Encoding = soap_strdup(soap, media_encoding_name(o->encoding));
    out->QualityRange = NEW(soap, struct tt__FloatRange);
    out->ResolutionsAvailable = onvif_zalloc(soap, (size_t)(o->n_resolutions > 0 ? o->n_resolutions : 1) *
                                                       sizeof *out->ResolutionsAvailable);
    out->BitrateRange = media_range_out(soap, o->bitrate_min, o->bitrate_max);
    out->FrameRatesSupported = frame_rates_out(soap, o->framerate_min, o->framerate_max);
    out->ConstantBitRateSupported = onvif_bool(soap, o->cbr_supported);
    if (!out->Encoding || !out->QualityRange || !out->ResolutionsAvailable || !out->BitrateRange ||
        !out->FrameRatesSupported || !out->ConstantBitRateSupported)
        return -1;
    out->QualityRange->Min = (float)o->quality_min;
    out->QualityRange->Max = (float)o->quality_max;
    for (int i = 0; i < o->n_resolutions; i++) {
        out->ResolutionsAvailable[i].Width = o->resolutions[i].width;
        out->ResolutionsAvailable[i].Height = o->resolutions[i].height;
    }
    out->__sizeResolutionsAvailable = o->n_resolutions;
    if (o->gov_max > 0) {
        char gov[32];
        snprintf(gov, sizeof gov, "%d %d", o->gov_min, o->gov_max);
        if (!(out->GovLengthRange = soap_strdup(soap, gov)))
            return -1;
    }
    if (o->profiles && !(out->ProfilesSupported = profiles_out(soap, o->profiles)))
        return -1;
    return 0;
}

/* One entry per encoding this machine can produce; a configuration may
 * change its encoding, so all apply to every configuration and profile. */
int __tr2__GetVideoEncoderConfigurationOptions(struct soap *soap, struct tr2__GetConfiguration *req,
                                               struct _tr2__GetVideoEncoderConfigurationOptionsResponse *resp)
{
    if (check_option_tokens(soap, req, 0) != SOAP_OK)
        return SOAP_FAULT;
    static const enum media_encoding order[] = { MEDIA_ENC_H264, MEDIA_ENC_JPEG, MEDIA_ENC_H265 };
    resp->Options = onvif_zalloc(soap, MEDIA_ENC_COUNT * sizeof *resp->Options);
    if (!resp->Options)
        return media_out_of_memory(soap);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        struct media_vec_options o;
        if (mediacfg_vec_options(media_cfg_of(soap), order[i], &o) != MEDIACFG_OK)
            continue;
        if (options_out(soap, &resp->Options[resp->__sizeOptions++], &o) != 0)
            return media_out_of_memory(soap);
    }
    return SOAP_OK;
}

int __tr2__SetVideoEncoderConfiguration(struct soap *soap, struct _tr2__SetVideoEncoderConfiguration *req,
                                        struct tr2__SetConfigurationResponse *resp)
{
    (void)resp;
    struct mediacfg *m = media_cfg_of(soap);
    const struct tt__VideoEncoder2Configuration *in = req->Configuration;
    struct media_vec v;
    int rc = in ? mediacfg_vec(m, in->token, &v) : MEDIACFG_E_NO_CONFIG;
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    /* Over the current values: what the request leaves out stays. */
    if (in->Name) {
        if (strlen(in->Name) >= sizeof v.name)
            return onvif_mediacfg_fault(soap, MEDIACFG_E_INVALID);
        snprintf(v.name, sizeof v.name, "%s", in->Name);
    }
    if (in->Encoding && media_encoding_from_name(in->Encoding, &v.encoding) != 0)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ConfigModify", "Encodings: H264, JPEG, H265");
    struct media_vec_options o;
    if (mediacfg_vec_options(m, v.encoding, &o) != MEDIACFG_OK)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ConfigModify", "This encoding is not available");
    if (in->Resolution) {
        v.width = in->Resolution->Width;
        v.height = in->Resolution->Height;
    }
    v.quality = int_of(in->Quality);
    if (in->RateControl) {
        v.framerate = int_of(in->RateControl->FrameRateLimit);
        v.bitrate_kbps = in->RateControl->BitrateLimit;
        if (in->RateControl->ConstantBitRate)
            v.cbr = *in->RateControl->ConstantBitRate == xsd__boolean__true_;
    }
    if (v.encoding != MEDIA_ENC_JPEG) {
        if (in->GovLength) {
            v.gov_length = *in->GovLength;
        } else if (v.gov_length < o.gov_min) {          /* was JPEG: a keyframe every two seconds */
            int gov = 2 * (v.framerate > 0 ? v.framerate : 1);
            v.gov_length = gov < o.gov_min ? o.gov_min : gov > o.gov_max ? o.gov_max : gov;
        }
        if (in->Profile) {
            if (media_h264_profile_from_name(in->Profile, &v.profile) != 0)
                return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:ConfigModify",
                                          "Profile not offered for this encoding");
        } else if (!(o.profiles & (1u << v.profile))) {   /* the encoding changed */
            v.profile = (o.profiles & (1u << MEDIA_PROFILE_MAIN)) ? MEDIA_PROFILE_MAIN : MEDIA_PROFILE_BASELINE;
        }
    }
    if (!o.cbr_supported && !(in->RateControl && in->RateControl->ConstantBitRate))
        v.cbr = 0;
    if (in->Multicast && media_multicast_in(in->Multicast, &v.multicast) != 0)
        return onvif_mediacfg_fault(soap, MEDIACFG_E_INVALID);
    rc = mediacfg_set_vec(m, &v);
    return rc == MEDIACFG_OK ? SOAP_OK : onvif_mediacfg_fault(soap, rc);
}

int __tr2__GetVideoEncoderInstances(struct soap *soap, struct _tr2__GetVideoEncoderInstances *req,
                                    struct _tr2__GetVideoEncoderInstancesResponse *resp)
{
    struct mediacfg *m = media_cfg_of(soap);
    int total = 0, n[MEDIA_ENC_COUNT] = { 0 };
    int rc = mediacfg_guaranteed_instances(m, req->ConfigurationToken, &total, &n[MEDIA_ENC_H264],
                                           &n[MEDIA_ENC_JPEG], &n[MEDIA_ENC_H265]);
    if (rc != MEDIACFG_OK)
        return onvif_mediacfg_fault(soap, rc);
    struct tr2__EncoderInstanceInfo *info = NEW(soap, struct tr2__EncoderInstanceInfo);
    if (!info || !(info->Codec = onvif_zalloc(soap, MEDIA_ENC_COUNT * sizeof *info->Codec)))
        return media_out_of_memory(soap);
    info->Total = total;
    unsigned available = mediacfg_encodings(m);
    static const enum media_encoding order[] = { MEDIA_ENC_H264, MEDIA_ENC_JPEG, MEDIA_ENC_H265 };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(available & MEDIA_ENC_BIT(order[i])))
            continue;
        struct tr2__EncoderInstance *c = &info->Codec[info->__sizeCodec++];
        c->Encoding = soap_strdup(soap, media_encoding_name(order[i]));
        c->Number = n[order[i]];
    }
    resp->Info = info;
    return SOAP_OK;
}

/* ---- streaming ------------------------------------------------------------------------ */

static int complete_profile(struct soap *soap, const char *token, struct media_profile *p, struct media_vec *v)
{
    if (find_profile(soap, token, p) != SOAP_OK)
        return SOAP_FAULT;
    if (!p->vsc_token[0] || !p->vec_token[0] || mediacfg_vec(media_cfg_of(soap), p->vec_token, v) != MEDIACFG_OK)
        return onvif_receiver_fault(soap, "ter:Action", "ter:IncompleteConfiguration",
                                    "The profile needs a video source and a video encoder configuration");
    return SOAP_OK;
}

int __tr2__GetStreamUri(struct soap *soap, struct _tr2__GetStreamUri *req, struct _tr2__GetStreamUriResponse *resp)
{
    struct media_profile p;
    struct media_vec v;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    const char *proto = req->Protocol ? req->Protocol : "";
    int multicast = 0;
    const char *scheme;
    if (!strcasecmp(proto, "RtspUnicast") || !strcasecmp(proto, "RTSP")) {
        scheme = "rtsp";
    } else if (!strcasecmp(proto, "RtspMulticast")) {
        scheme = "rtsp";
        multicast = 1;
    } else if (!strcasecmp(proto, "RtspOverHttp")) {
        scheme = "http";
    } else {
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidStreamSetup",
                                  "Protocols: RtspUnicast, RtspMulticast, RTSP, RtspOverHttp");
    }
    if (!onvif_request_of(soap)->dev->rtsp)
        return onvif_receiver_fault(soap, "ter:ActionNotSupported", NULL, "RTSP streaming is switched off on this device");
    if (complete_profile(soap, p.token, &p, &v) != SOAP_OK)
        return SOAP_FAULT;
    if (multicast && (!v.multicast.address[0] || v.multicast.port <= 0))
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:InvalidMulticastSettings",
                                  "The profile's video encoder configuration has no multicast address and port");
    resp->Uri = onvif_stream_uri(soap, scheme, p.token);
    return resp->Uri ? SOAP_OK : onvif_receiver_fault(soap, "ter:Action", NULL, "Cannot build the stream URI");
}

int __tr2__GetSnapshotUri(struct soap *soap, struct _tr2__GetSnapshotUri *req, struct _tr2__GetSnapshotUriResponse *resp)
{
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    if (!p.vsc_token[0])
        return onvif_receiver_fault(soap, "ter:Action", "ter:IncompleteConfiguration",
                                    "The profile has no video source configuration");
    resp->Uri = onvif_snapshot_uri(soap, p.token);
    return resp->Uri ? SOAP_OK : onvif_receiver_fault(soap, "ter:Action", NULL, "Cannot build the snapshot URI");
}

int __tr2__SetSynchronizationPoint(struct soap *soap, struct _tr2__SetSynchronizationPoint *req,
                                   struct _tr2__SetSynchronizationPointResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    /* No encoder, or one nobody watches: no stream to resynchronise. */
    struct stream_hub *streams = onvif_request_of(soap)->dev->streams;
    if (p.vec_token[0] && streams)
        stream_force_keyframe(streams, p.vec_token);
    return SOAP_OK;
}


int __tr2__StartMulticastStreaming(struct soap *soap, struct tr2__StartStopMulticastStreaming *req,
                                   struct tr2__SetConfigurationResponse *resp)
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

int __tr2__StopMulticastStreaming(struct soap *soap, struct tr2__StartStopMulticastStreaming *req,
                                  struct tr2__SetConfigurationResponse *resp)
{
    (void)resp;
    struct media_profile p;
    if (find_profile(soap, req->ProfileToken, &p) != SOAP_OK)
        return SOAP_FAULT;
    struct rtspserver *rtsp = onvif_request_of(soap)->dev->rtsp;
    if (!rtsp)
        return SOAP_OK;                         /* nothing can be streaming */
    int rc = rtspserver_stop_multicast(rtsp, p.token);
    /* Stopping what is not running succeeds (Media2 §5.8.2). */
    return rc == RTSPSERVER_OK || rc == RTSPSERVER_E_NO_MULTICAST ? SOAP_OK : media_multicast_fault(soap, rc);
}
