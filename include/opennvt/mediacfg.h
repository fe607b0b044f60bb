/* Media configuration: the device's video source, its video source
 * configurations, video encoder configurations and media profiles, with the
 * rules both Media (ver10) and Media2 (ver20) apply (fixed profiles, options,
 * token references, encoder instance limits), persisted atomically in
 * STATE/media.xml. Protocol handlers translate; every rule lives here.
 * Thread-safe; getters copy out. No gSOAP types. */
#ifndef OPENNVT_MEDIACFG_H
#define OPENNVT_MEDIACFG_H

#include <stddef.h>

#define MEDIA_TOKEN_MAX 64
#define MEDIA_NAME_MAX 64
#define MEDIA_MAX_PROFILES 24          /* fixed + created by clients */
#define MEDIA_MAX_VSCS 2
#define MEDIA_MAX_VECS 4
#define MEDIA_MAX_RESOLUTIONS 8

enum mediacfg_error {
    MEDIACFG_OK = 0,
    MEDIACFG_E_NO_PROFILE = -1,    /* ter:NoProfile */
    MEDIACFG_E_NO_CONFIG = -2,     /* ter:NoConfig */
    MEDIACFG_E_FIXED = -3,         /* ter:DeletionOfFixedProfile / fixed profile may not change */
    MEDIACFG_E_EXISTS = -4,        /* ter:ProfileExists (token already used) */
    MEDIACFG_E_FULL = -5,          /* ter:MaxNVTProfiles */
    MEDIACFG_E_INVALID = -6,       /* ter:ConfigModify / ter:InvalidArgVal: value outside the options */
    MEDIACFG_E_CONFLICT = -7,      /* ter:ConfigurationConflict: e.g. encoder instances exhausted */
    MEDIACFG_E_IO = -8,            /* could not persist; nothing changed */
    MEDIACFG_E_NOMEM = -9,
    MEDIACFG_E_NO_SOURCE = -10,    /* ter:NoSource */
};

enum media_encoding { MEDIA_ENC_H264 = 0, MEDIA_ENC_JPEG = 1, MEDIA_ENC_H265 = 2, MEDIA_ENC_COUNT };
#define MEDIA_ENC_BIT(e) (1u << (e))

enum media_h264_profile { MEDIA_PROFILE_BASELINE = 0, MEDIA_PROFILE_MAIN = 1, MEDIA_PROFILE_HIGH = 2 };

struct media_resolution { int width, height; };

/* The physical source (one; what the capture delivers). */
struct media_video_source {
    char token[MEDIA_TOKEN_MAX + 1];       /* "VideoSource_1" */
    int width, height;                     /* capture resolution */
    int framerate;                         /* capture frames per second */
};

struct media_vsc {                         /* VideoSourceConfiguration */
    char token[MEDIA_TOKEN_MAX + 1];
    char name[MEDIA_NAME_MAX + 1];
    char source_token[MEDIA_TOKEN_MAX + 1];
    int x, y, width, height;               /* bounds within the source */
};

struct media_multicast {
    char address[64];                      /* IPv4 or IPv6 text; "" none */
    int port;                              /* RTP port (even); RTCP is port+1 */
    int ttl;
    int autostart;
};

struct media_vec {                         /* VideoEncoderConfiguration */
    char token[MEDIA_TOKEN_MAX + 1];
    char name[MEDIA_NAME_MAX + 1];
    enum media_encoding encoding;
    int width, height;
    int quality;                           /* 0..100 (ONVIF Quality; higher is better) */
    int framerate;                         /* FrameRateLimit, frames/s */
    int encoding_interval;                 /* 1 = every captured frame */
    int bitrate_kbps;                      /* BitrateLimit */
    int cbr;                               /* ConstantBitRate (Media2); else VBR capped at the limit */
    int gov_length;                        /* frames from one keyframe to the next (H.264/H.265) */
    enum media_h264_profile profile;
    int session_timeout_s;                 /* RTSP session timeout reported */
    struct media_multicast multicast;
};

struct media_profile {
    char token[MEDIA_TOKEN_MAX + 1];
    char name[MEDIA_NAME_MAX + 1];
    int fixed;                             /* built-in: cannot be deleted */
    char vsc_token[MEDIA_TOKEN_MAX + 1];   /* "" = none */
    char vec_token[MEDIA_TOKEN_MAX + 1];   /* "" = none */
};

struct media_vec_options {
    enum media_encoding encoding;
    int n_resolutions;
    struct media_resolution resolutions[MEDIA_MAX_RESOLUTIONS];
    int quality_min, quality_max;
    int framerate_min, framerate_max;
    int interval_min, interval_max;
    int bitrate_min, bitrate_max;          /* kbit/s */
    int gov_min, gov_max;                  /* 0,0 for JPEG */
    unsigned profiles;                     /* bits (1u << media_h264_profile); 0 for JPEG */
    int cbr_supported;
};

struct media_vsc_options {
    int x_min, x_max, y_min, y_max, width_min, width_max, height_min, height_max;
    int n_sources;
    char source_tokens[1][MEDIA_TOKEN_MAX + 1];
};

/* What changed, for listeners (stream restarts, events). */
enum mediacfg_change {
    MEDIACFG_PROFILE_CREATED,
    MEDIACFG_PROFILE_CHANGED,              /* configurations added/removed, name */
    MEDIACFG_PROFILE_DELETED,
    MEDIACFG_VSC_CHANGED,
    MEDIACFG_VEC_CHANGED,
};
typedef void (*mediacfg_listener)(void *arg, enum mediacfg_change what, const char *token);

struct mediacfg;

/* Opens STATE_DIR/media.xml (creating the defaults when absent or unusable:
 * the unusable file is kept as media.xml.bad and a warning logged).
 * source: the capture's token, resolution and frame rate; encodings: bits of
 * MEDIA_ENC_BIT() the encoders can produce on this machine.
 * Defaults: one VSC over the whole source; encoders "VideoEncoder_1" H.264 at
 * the source resolution (4096 kbit/s, GOP 2 s), "VideoEncoder_2" H.264 640x360
 * (1024 kbit/s), "VideoEncoder_3" JPEG 640x360; fixed profiles "Profile_1..3"
 * pairing the VSC with each encoder. */
int mediacfg_open(struct mediacfg **out, const char *state_dir, const struct media_video_source *source,
                  unsigned encodings);
void mediacfg_close(struct mediacfg *m);
/* One listener, called after a change is persisted, outside the lock. A
 * change that changes nothing is neither written nor announced. */
void mediacfg_set_listener(struct mediacfg *m, mediacfg_listener fn, void *arg);

void mediacfg_video_source(struct mediacfg *m, struct media_video_source *out);
unsigned mediacfg_encodings(struct mediacfg *m);

/* Lists return the number written (at most max). */
int mediacfg_profiles(struct mediacfg *m, struct media_profile *out, int max);
int mediacfg_profile(struct mediacfg *m, const char *token, struct media_profile *out);
/* token NULL or "": a new unique token is chosen. token_out receives it. */
int mediacfg_create_profile(struct mediacfg *m, const char *name, const char *token, char token_out[MEDIA_TOKEN_MAX + 1]);
int mediacfg_delete_profile(struct mediacfg *m, const char *token);
/* Renames a profile (Media2 AddConfiguration's Name); fixed ones too. */
int mediacfg_set_profile_name(struct mediacfg *m, const char *token, const char *name);
/* Adds (token) or removes (NULL) the profile's VSC / VEC. Adding a VEC needs
 * the profile to have a VSC (ter:ConfigurationConflict otherwise); removing the
 * VSC also removes the VEC. */
int mediacfg_profile_set_vsc(struct mediacfg *m, const char *profile, const char *vsc_token);
int mediacfg_profile_set_vec(struct mediacfg *m, const char *profile, const char *vec_token);

int mediacfg_vscs(struct mediacfg *m, struct media_vsc *out, int max);
int mediacfg_vsc(struct mediacfg *m, const char *token, struct media_vsc *out);
/* in->source_token must be the source and the bounds inside the options:
 * the whole source, as nothing downstream crops. */
int mediacfg_set_vsc(struct mediacfg *m, const struct media_vsc *in);
void mediacfg_vsc_options(struct mediacfg *m, struct media_vsc_options *out);

int mediacfg_vecs(struct mediacfg *m, struct media_vec *out, int max);
int mediacfg_vec(struct mediacfg *m, const char *token, struct media_vec *out);
/* Validates every field against the options of in->encoding; all or nothing.
 * Adapts first what ONVIF says must not fault: an out-of-range bitrate_kbps
 * is brought into the options' range; for JPEG gov_length and profile are
 * ignored (stored as 0 / Baseline); multicast address "0.0.0.0" or "::"
 * means none. Read the configuration back for the values stored. */
int mediacfg_set_vec(struct mediacfg *m, const struct media_vec *in);
/* Options for one encoding (MEDIACFG_E_INVALID when the machine cannot encode it). */
int mediacfg_vec_options(struct mediacfg *m, enum media_encoding enc, struct media_vec_options *out);

/* GetCompatible*Configurations: the configurations Add would accept for the
 * profile (number written, or MEDIACFG_E_NO_PROFILE). No VEC is compatible
 * with a profile that has no VSC. */
int mediacfg_compatible_vscs(struct mediacfg *m, const char *profile, struct media_vsc *out, int max);
int mediacfg_compatible_vecs(struct mediacfg *m, const char *profile, struct media_vec *out, int max);

/* How many profiles use a configuration (UseCount; MEDIACFG_E_NO_CONFIG
 * for an unknown token). */
int mediacfg_use_count(struct mediacfg *m, const char *config_token);
/* GetGuaranteedNumberOfVideoEncoderInstances for a VSC. */
int mediacfg_guaranteed_instances(struct mediacfg *m, const char *vsc_token, int *total, int *h264, int *jpeg,
                                  int *h265);

const char *media_encoding_name(enum media_encoding e);      /* "H264", "JPEG", "H265" */
int media_encoding_from_name(const char *name, enum media_encoding *out);   /* 0 / -1 */
const char *media_h264_profile_name(enum media_h264_profile p);  /* "Baseline", "Main", "High" */
int media_h264_profile_from_name(const char *name, enum media_h264_profile *out);
const char *mediacfg_strerror(int err);

#endif
