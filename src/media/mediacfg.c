/* Media configuration: the video source, its video source configurations, the
 * video encoder configurations and the media profiles, with every rule ONVIF
 * Media (ver10) and Media2 (ver20) apply to them, kept in state_dir/media.xml.
 * A change is validated whole, written, and only then made the state. */
#include "opennvt/mediacfg.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define AREA "media"
#define MEDIA_FILE_NAME "media.xml"
#define MEDIA_FILE_MAX (64 * 1024)
#define MEDIA_FORMAT_VERSION 1

/* Option ranges the encoders accept (encoder.c maps them onto libavcodec). */
#define QUALITY_MIN 0
#define QUALITY_MAX 100
#define BITRATE_MIN_KBPS 64
#define BITRATE_MAX_KBPS 16384
#define GOV_MIN 1
#define GOV_MAX 300
#define SESSION_TIMEOUT_MIN_S 1
#define SESSION_TIMEOUT_MAX_S 3600
#define MCAST_PORT_MIN 1024
#define MCAST_PORT_MAX 65534
#define MCAST_TTL_MAX 255

/* What mediacfg_open accepts as a source. */
#define SOURCE_DIM_MIN 16
#define SOURCE_DIM_MAX 16384
#define SOURCE_RATE_MAX 1000

#define NEXT_PROFILE_MAX 999999999u

#define N_DEFAULT_VECS 3
#define N_FIXED_PROFILES 3

#define DEFAULT_VSC_TOKEN "VideoSourceConfig_1"
#define DEFAULT_QUALITY 70
#define DEFAULT_SESSION_TIMEOUT_S 60
#define DEFAULT_JPEG_RATE_MAX 15

/* The built-in encoder configurations and the fixed profile pairing the VSC
 * with each. width/height 0: the source resolution. rate_max 0: the source
 * rate. */
static const struct vec_default {
    const char *token, *profile_token, *name;
    enum media_encoding encoding;
    int width, height, bitrate_kbps, rate_max;
    const char *mcast_address;
    int mcast_port;
} vec_defaults[N_DEFAULT_VECS] = {
    { "VideoEncoder_1", "Profile_1", "MainStream", MEDIA_ENC_H264, 0, 0, 4096, 0, "239.255.0.1", 40000 },
    { "VideoEncoder_2", "Profile_2", "SubStream", MEDIA_ENC_H264, 640, 360, 1024, 0, "239.255.0.2", 40002 },
    /* JPEG pictures are large: half the usual rate keeps the stream to a few Mbit/s. */
    { "VideoEncoder_3", "Profile_3", "JPEG", MEDIA_ENC_JPEG, 640, 360, 4096, DEFAULT_JPEG_RATE_MAX, "239.255.0.3",
      40004 },
};

struct media_state {
    int n_profiles, n_vscs, n_vecs;
    struct media_profile profiles[MEDIA_MAX_PROFILES];
    struct media_vsc vscs[MEDIA_MAX_VSCS];
    struct media_vec vecs[MEDIA_MAX_VECS];
    unsigned next_profile;          /* N of the next generated token "Profile_N" */
};

struct mediacfg {
    pthread_mutex_t lock;
    char path[PATH_MAX];
    char bad_path[PATH_MAX];
    struct media_video_source source;       /* fixed for the life of the object */
    unsigned encodings;
    int n_resolutions;
    struct media_resolution resolutions[MEDIA_MAX_RESOLUTIONS];
    struct media_state st;
    mediacfg_listener listener;
    void *listener_arg;
};

/* ---- names --------------------------------------------------------------- */

static const char *const encoding_names[MEDIA_ENC_COUNT] = { "H264", "JPEG", "H265" };
static const char *const profile_names[] = { "Baseline", "Main", "High" };
#define N_H264_PROFILES ((int)(sizeof profile_names / sizeof profile_names[0]))

const char *media_encoding_name(enum media_encoding e)
{
    return (int)e >= 0 && (int)e < MEDIA_ENC_COUNT ? encoding_names[e] : "?";
}

/* Encoding names are IANA media subtypes, which are case-insensitive. */
int media_encoding_from_name(const char *name, enum media_encoding *out)
{
    for (int i = 0; name && i < MEDIA_ENC_COUNT; i++)
        if (strcasecmp(name, encoding_names[i]) == 0) {
            if (out)
                *out = (enum media_encoding)i;
            return 0;
        }
    return -1;
}

const char *media_h264_profile_name(enum media_h264_profile p)
{
    return (int)p >= 0 && (int)p < N_H264_PROFILES ? profile_names[p] : "?";
}

int media_h264_profile_from_name(const char *name, enum media_h264_profile *out)
{
    for (int i = 0; name && i < N_H264_PROFILES; i++)
        if (strcasecmp(name, profile_names[i]) == 0) {
            if (out)
                *out = (enum media_h264_profile)i;
            return 0;
        }
    return -1;
}

const char *mediacfg_strerror(int err)
{
    switch (err) {
    case MEDIACFG_OK: return "ok";
    case MEDIACFG_E_NO_PROFILE: return "no such media profile";
    case MEDIACFG_E_NO_CONFIG: return "no such configuration";
    case MEDIACFG_E_FIXED: return "a fixed media profile cannot be deleted";
    case MEDIACFG_E_EXISTS: return "a media profile with this token already exists";
    case MEDIACFG_E_FULL: return "the maximum number of media profiles is reached";
    case MEDIACFG_E_INVALID: return "value outside the configuration options";
    case MEDIACFG_E_CONFLICT: return "the configuration conflicts with the profile";
    case MEDIACFG_E_IO: return "could not save the media configuration";
    case MEDIACFG_E_NOMEM: return "out of memory";
    case MEDIACFG_E_NO_SOURCE: return "no usable video source";
    }
    return "unknown error";
}

/* ---- value checks -------------------------------------------------------- */

/* Tokens: [A-Za-z0-9_.-]{1,MEDIA_TOKEN_MAX}, safe in URIs, XML and logs. */
static int token_ok(const char *s)
{
    if (!s)
        return 0;
    size_t len = strnlen(s, MEDIA_TOKEN_MAX + 1);
    if (len == 0 || len > MEDIA_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Names: 1..MEDIA_NAME_MAX bytes of well-formed UTF-8 without control
 * characters (C0, DEL, C1) and without code points XML 1.0 cannot carry
 * (U+FFFE, U+FFFF): a name that could not be read back from media.xml would
 * cost the whole configuration at the next start. */
static int name_ok(const char *s)
{
    if (!s)
        return 0;
    size_t len = strnlen(s, MEDIA_NAME_MAX + 1);
    if (len == 0 || len > MEDIA_NAME_MAX)
        return 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        uint32_t cp;
        int n;
        if (p[0] < 0x80) {
            cp = p[0];
            n = 1;
        } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
            cp = p[0] & 0x1fu;
            n = 2;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
            cp = p[0] & 0x0fu;
            n = 3;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
            cp = p[0] & 0x07u;
            n = 4;
        } else {
            return 0;
        }
        if (end - p < n)
            return 0;
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;                                   /* overlong or beyond Unicode */
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe ||
            cp == 0xffff)
            return 0;
        p += n;
    }
    return 1;
}

/* A fixed-size string field is usable only when it is terminated inside it. */
#define FIELD_TERMINATED(f) (strnlen((f), sizeof(f)) < sizeof(f))

static int is_multicast_address(const char *a)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, a, &v4) == 1)
        return (ntohl(v4.s_addr) >> 28) == 0xe;        /* 224.0.0.0/4 */
    if (inet_pton(AF_INET6, a, &v6) == 1)
        return v6.s6_addr[0] == 0xff;                   /* ff00::/8 */
    return 0;
}

/* Clients echo "0.0.0.0" or "::" for "no multicast address". */
static int is_unspecified_address(const char *a)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, a, &v4) == 1)
        return v4.s_addr == 0;
    if (inet_pton(AF_INET6, a, &v6) == 1)
        return IN6_IS_ADDR_UNSPECIFIED(&v6);
    return 0;
}

static const char *multicast_problem(const struct media_multicast *mc)
{
    if (!FIELD_TERMINATED(mc->address))
        return "multicast address too long";
    int has_address = mc->address[0] != '\0';
    if (has_address && !is_multicast_address(mc->address))
        return "multicast address is not a multicast address";
    if (!(mc->port == 0 && !has_address) &&
        (mc->port < MCAST_PORT_MIN || mc->port > MCAST_PORT_MAX || mc->port % 2 != 0))
        return "multicast port not even in 1024..65534";
    if (mc->ttl < 1 || mc->ttl > MCAST_TTL_MAX)
        return "multicast TTL not in 1..255";
    if (mc->autostart != 0 && mc->autostart != 1)
        return "multicast autostart not a boolean";
    if (mc->autostart && !has_address)
        return "multicast autostart without an address";
    return NULL;
}

/* ---- options --------------------------------------------------------------- */

static const struct media_resolution sizes_16_9[] = {
    { 3840, 2160 }, { 2560, 1440 }, { 1920, 1080 }, { 1280, 720 }, { 960, 540 }, { 640, 360 }, { 320, 180 },
};
static const struct media_resolution sizes_4_3[] = {
    { 1600, 1200 }, { 1280, 960 }, { 1024, 768 }, { 800, 600 }, { 640, 480 }, { 320, 240 },
};
#define N_SIZES(a) ((int)(sizeof(a) / sizeof((a)[0])))

struct res_candidate {
    struct media_resolution r;
    int rank;                       /* lower is kept first when there are too many */
};

static void add_candidate(struct res_candidate *c, int *n, int cap, int w, int h, int src_w, int src_h, int rank)
{
    if (w > src_w || h > src_h || w <= 0 || h <= 0)
        return;
    for (int i = 0; i < *n; i++)
        if (c[i].r.width == w && c[i].r.height == h) {
            if (rank < c[i].rank)
                c[i].rank = rank;
            return;
        }
    if (*n < cap)
        c[(*n)++] = (struct res_candidate){ { w, h }, rank };
}

static int by_rank_then_area(const void *a, const void *b)
{
    const struct res_candidate *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    long ax = (long)x->r.width * x->r.height, ay = (long)y->r.width * y->r.height;
    return ax < ay ? 1 : ax > ay ? -1 : y->r.width - x->r.width;
}

static int by_area(const void *a, const void *b)
{
    const struct media_resolution *x = a, *y = b;
    long ax = (long)x->width * x->height, ay = (long)y->width * y->height;
    return ax < ay ? 1 : ax > ay ? -1 : y->width - x->width;
}

/* The resolutions every encoder offers: the source size (made even, as 4:2:0
 * encoding needs), the default sub-stream size, QVGA (Media §5.1 makes JPEG
 * QVGA mandatory), the standard sizes of the source's aspect ratio, then the
 * other 16:9 sizes; only sizes that fit in the source, largest first. */
static void build_resolutions(struct mediacfg *m)
{
    struct res_candidate c[1 + 2 + N_SIZES(sizes_16_9) + N_SIZES(sizes_4_3)];
    int n = 0, cap = (int)(sizeof c / sizeof c[0]);
    int sw = m->source.width, sh = m->source.height;
    int is_4_3 = sw * 3 == sh * 4, is_16_9 = sw * 9 == sh * 16;
    add_candidate(c, &n, cap, sw & ~1, sh & ~1, sw, sh, 0);
    add_candidate(c, &n, cap, 640, 360, sw, sh, 0);
    add_candidate(c, &n, cap, 320, 240, sw, sh, 0);
    for (int i = 0; i < N_SIZES(sizes_16_9); i++)
        add_candidate(c, &n, cap, sizes_16_9[i].width, sizes_16_9[i].height, sw, sh, is_16_9 ? 1 : 2);
    for (int i = 0; is_4_3 && i < N_SIZES(sizes_4_3); i++)
        add_candidate(c, &n, cap, sizes_4_3[i].width, sizes_4_3[i].height, sw, sh, 1);
    qsort(c, (size_t)n, sizeof c[0], by_rank_then_area);
    if (n > MEDIA_MAX_RESOLUTIONS)
        n = MEDIA_MAX_RESOLUTIONS;
    for (int i = 0; i < n; i++)
        m->resolutions[i] = c[i].r;
    m->n_resolutions = n;
    qsort(m->resolutions, (size_t)n, sizeof m->resolutions[0], by_area);
}

static int encoding_available(const struct mediacfg *m, enum media_encoding e)
{
    return (int)e >= 0 && (int)e < MEDIA_ENC_COUNT && (m->encodings & MEDIA_ENC_BIT(e));
}

static void vec_options_of(const struct mediacfg *m, enum media_encoding enc, struct media_vec_options *o)
{
    memset(o, 0, sizeof *o);
    o->encoding = enc;
    o->n_resolutions = m->n_resolutions;
    memcpy(o->resolutions, m->resolutions, sizeof o->resolutions);
    o->quality_min = QUALITY_MIN;
    o->quality_max = QUALITY_MAX;
    o->framerate_min = 1;
    o->framerate_max = m->source.framerate;
    o->interval_min = 1;
    o->interval_max = m->source.framerate;
    o->bitrate_min = BITRATE_MIN_KBPS;
    o->bitrate_max = BITRATE_MAX_KBPS;
    switch (enc) {
    case MEDIA_ENC_H264:
        o->gov_min = GOV_MIN;
        o->gov_max = GOV_MAX;
        o->profiles = (1u << MEDIA_PROFILE_BASELINE) | (1u << MEDIA_PROFILE_MAIN) | (1u << MEDIA_PROFILE_HIGH);
        o->cbr_supported = 1;
        break;
    case MEDIA_ENC_H265:
        o->gov_min = GOV_MIN;
        o->gov_max = GOV_MAX;
        o->profiles = 1u << MEDIA_PROFILE_MAIN;
        o->cbr_supported = 1;
        break;
    default:                        /* JPEG: every picture is a keyframe; no profiles */
        break;
    }
}

/* Bounds cover the whole source: nothing downstream crops (the encoder scales
 * the full source frame), so other bounds would not be honoured, and a range
 * wider than that would promise what the stream does not deliver. */
static void vsc_options_of(const struct mediacfg *m, struct media_vsc_options *o)
{
    memset(o, 0, sizeof *o);
    o->x_min = o->x_max = 0;
    o->y_min = o->y_max = 0;
    o->width_min = o->width_max = m->source.width;
    o->height_min = o->height_max = m->source.height;
    o->n_sources = 1;
    memcpy(o->source_tokens[0], m->source.token, sizeof o->source_tokens[0]);
}

static int in_range(int v, int lo, int hi)
{
    return v >= lo && v <= hi;
}

static const char *vsc_problem(const struct mediacfg *m, const struct media_vsc *c)
{
    if (!FIELD_TERMINATED(c->token) || !token_ok(c->token))
        return "bad token";
    if (!FIELD_TERMINATED(c->name) || !name_ok(c->name))
        return "bad name";
    if (!FIELD_TERMINATED(c->source_token) || strcmp(c->source_token, m->source.token) != 0)
        return "not this device's video source";
    struct media_vsc_options o;
    vsc_options_of(m, &o);
    if (!in_range(c->x, o.x_min, o.x_max) || !in_range(c->y, o.y_min, o.y_max) ||
        !in_range(c->width, o.width_min, o.width_max) || !in_range(c->height, o.height_min, o.height_max) ||
        c->x > m->source.width - c->width || c->y > m->source.height - c->height)
        return "bounds outside the options";
    return NULL;
}

/* Checks a configuration in its stored form (JPEG: gov_length 0, profile
 * Baseline) against the options of its encoding. */
static const char *vec_problem(const struct mediacfg *m, const struct media_vec *v)
{
    if (!FIELD_TERMINATED(v->token) || !token_ok(v->token))
        return "bad token";
    if (!FIELD_TERMINATED(v->name) || !name_ok(v->name))
        return "bad name";
    if (!encoding_available(m, v->encoding))
        return "encoding not available";
    struct media_vec_options o;
    vec_options_of(m, v->encoding, &o);
    int res_ok = 0;
    for (int i = 0; i < o.n_resolutions; i++)
        if (o.resolutions[i].width == v->width && o.resolutions[i].height == v->height)
            res_ok = 1;
    if (!res_ok)
        return "resolution not offered";
    if (!in_range(v->quality, o.quality_min, o.quality_max))
        return "quality out of range";
    if (!in_range(v->framerate, o.framerate_min, o.framerate_max))
        return "frame rate out of range";
    if (!in_range(v->encoding_interval, o.interval_min, o.interval_max))
        return "encoding interval out of range";
    if (!in_range(v->bitrate_kbps, o.bitrate_min, o.bitrate_max))
        return "bitrate out of range";
    if (v->cbr != 0 && v->cbr != 1)
        return "constant bitrate not a boolean";
    if (v->cbr && !o.cbr_supported)
        return "constant bitrate not supported by the encoding";
    if (!in_range(v->gov_length, o.gov_min, o.gov_max))
        return "GOV length out of range";
    if (o.profiles ? ((int)v->profile < 0 || (int)v->profile >= N_H264_PROFILES || !(o.profiles & (1u << v->profile)))
                   : v->profile != MEDIA_PROFILE_BASELINE)
        return "profile not supported by the encoding";
    if (!in_range(v->session_timeout_s, SESSION_TIMEOUT_MIN_S, SESSION_TIMEOUT_MAX_S))
        return "session timeout out of range";
    return multicast_problem(&v->multicast);
}

/* ---- state lookups --------------------------------------------------------- */

static int find_profile(const struct media_state *st, const char *token)
{
    for (int i = 0; token && i < st->n_profiles; i++)
        if (strcmp(st->profiles[i].token, token) == 0)
            return i;
    return -1;
}

static int find_vsc(const struct media_state *st, const char *token)
{
    for (int i = 0; token && i < st->n_vscs; i++)
        if (strcmp(st->vscs[i].token, token) == 0)
            return i;
    return -1;
}

static int find_vec(const struct media_state *st, const char *token)
{
    for (int i = 0; token && i < st->n_vecs; i++)
        if (strcmp(st->vecs[i].token, token) == 0)
            return i;
    return -1;
}

static int is_fixed_token(const char *token)
{
    for (int i = 0; i < N_FIXED_PROFILES; i++)
        if (strcmp(vec_defaults[i].profile_token, token) == 0)
            return 1;
    return 0;
}

/* Formats into why and returns it. */
static const char *say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *say(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return why;
}

/* Everything a state must satisfy, whether it comes from media.xml or from a
 * change: the device's own configurations (exactly the built-in tokens, each
 * inside the options), the fixed profiles present and fixed, unique profile
 * tokens, every reference resolving, no encoder without a source.
 * Returns NULL or what is wrong (into why). */
static const char *state_problem(const struct mediacfg *m, const struct media_state *st, char *why, size_t whylen)
{
    if (st->n_vscs != 1 || strcmp(st->vscs[0].token, DEFAULT_VSC_TOKEN) != 0)
        return say(why, whylen, "the video source configuration is not %s", DEFAULT_VSC_TOKEN);
    const char *p = vsc_problem(m, &st->vscs[0]);
    if (p)
        return say(why, whylen, "%s: %s", DEFAULT_VSC_TOKEN, p);
    if (st->n_vecs != N_DEFAULT_VECS)
        return say(why, whylen, "%d video encoder configurations instead of %d", st->n_vecs, N_DEFAULT_VECS);
    for (int i = 0; i < N_DEFAULT_VECS; i++) {
        int k = find_vec(st, vec_defaults[i].token);
        if (k < 0)
            return say(why, whylen, "%s is missing", vec_defaults[i].token);
        if ((p = vec_problem(m, &st->vecs[k])) != NULL)
            return say(why, whylen, "%s: %s", vec_defaults[i].token, p);
    }
    if (st->n_profiles < 1 || st->n_profiles > MEDIA_MAX_PROFILES)
        return say(why, whylen, "%d media profiles", st->n_profiles);
    int n_fixed = 0;
    for (int i = 0; i < st->n_profiles; i++) {
        const struct media_profile *pr = &st->profiles[i];
        if (!FIELD_TERMINATED(pr->token) || !token_ok(pr->token))
            return say(why, whylen, "profile %d: bad token", i + 1);
        if (find_profile(st, pr->token) != i)
            return say(why, whylen, "profile %s appears twice", pr->token);
        if (!FIELD_TERMINATED(pr->name) || !name_ok(pr->name))
            return say(why, whylen, "profile %s: bad name", pr->token);
        if (pr->fixed != 0 && pr->fixed != 1)
            return say(why, whylen, "profile %s: bad fixed flag", pr->token);
        if (pr->fixed != is_fixed_token(pr->token))
            return say(why, whylen, "profile %s: wrong fixed flag", pr->token);
        n_fixed += pr->fixed;
        if (!FIELD_TERMINATED(pr->vsc_token) || !FIELD_TERMINATED(pr->vec_token))
            return say(why, whylen, "profile %s: bad reference", pr->token);
        if (pr->vsc_token[0] && find_vsc(st, pr->vsc_token) < 0)
            return say(why, whylen, "profile %s: no configuration %s", pr->token, pr->vsc_token);
        if (pr->vec_token[0] && find_vec(st, pr->vec_token) < 0)
            return say(why, whylen, "profile %s: no configuration %s", pr->token, pr->vec_token);
        if (pr->vec_token[0] && !pr->vsc_token[0])
            return say(why, whylen, "profile %s: encoder without a video source", pr->token);
    }
    if (n_fixed != N_FIXED_PROFILES)
        return say(why, whylen, "%d fixed profiles instead of %d", n_fixed, N_FIXED_PROFILES);
    if (st->next_profile < 1 || st->next_profile > NEXT_PROFILE_MAX)
        return say(why, whylen, "bad next profile number");
    return NULL;
}

/* ---- defaults -------------------------------------------------------------- */

/* The listed resolution for a wanted size (0x0: the largest): that size when
 * offered, else the largest offered that is not bigger, else the smallest. */
static struct media_resolution pick_resolution(const struct mediacfg *m, int w, int h)
{
    if (w == 0 || h == 0)
        return m->resolutions[0];
    for (int i = 0; i < m->n_resolutions; i++)
        if (m->resolutions[i].width == w && m->resolutions[i].height == h)
            return m->resolutions[i];
    for (int i = 0; i < m->n_resolutions; i++)
        if ((long)m->resolutions[i].width * m->resolutions[i].height <= (long)w * h)
            return m->resolutions[i];
    return m->resolutions[m->n_resolutions - 1];
}

/* The wanted encoding, or the best one this machine has: H.264 gives way to
 * JPEG (every client decodes it), JPEG to H.264, then H.265. */
static enum media_encoding pick_encoding(const struct mediacfg *m, enum media_encoding want)
{
    static const enum media_encoding after_h264[] = { MEDIA_ENC_JPEG, MEDIA_ENC_H265 };
    static const enum media_encoding after_jpeg[] = { MEDIA_ENC_H264, MEDIA_ENC_H265 };
    if (encoding_available(m, want))
        return want;
    const enum media_encoding *order = want == MEDIA_ENC_JPEG ? after_jpeg : after_h264;
    for (int i = 0; i < 2; i++)
        if (encoding_available(m, order[i]))
            return order[i];
    return MEDIA_ENC_H265;
}

static void default_state(const struct mediacfg *m, struct media_state *st)
{
    memset(st, 0, sizeof *st);
    struct media_vsc *c = &st->vscs[st->n_vscs++];
    snprintf(c->token, sizeof c->token, "%s", DEFAULT_VSC_TOKEN);
    snprintf(c->name, sizeof c->name, "%s", DEFAULT_VSC_TOKEN);
    memcpy(c->source_token, m->source.token, sizeof c->source_token);
    c->width = m->source.width;
    c->height = m->source.height;
    for (int i = 0; i < N_DEFAULT_VECS; i++) {
        const struct vec_default *d = &vec_defaults[i];
        struct media_vec *v = &st->vecs[st->n_vecs++];
        snprintf(v->token, sizeof v->token, "%s", d->token);
        snprintf(v->name, sizeof v->name, "%s", d->name);
        v->encoding = pick_encoding(m, d->encoding);
        struct media_resolution r = pick_resolution(m, d->width, d->height);
        v->width = r.width;
        v->height = r.height;
        v->quality = DEFAULT_QUALITY;
        v->framerate = d->rate_max && d->rate_max < m->source.framerate ? d->rate_max : m->source.framerate;
        v->encoding_interval = 1;
        v->bitrate_kbps = d->bitrate_kbps;
        v->cbr = 0;
        if (v->encoding == MEDIA_ENC_JPEG) {
            v->gov_length = 0;
            v->profile = MEDIA_PROFILE_BASELINE;
        } else {
            int gov = 2 * v->framerate;     /* a keyframe every two seconds */
            v->gov_length = gov > GOV_MAX ? GOV_MAX : gov;
            v->profile = MEDIA_PROFILE_MAIN;
        }
        v->session_timeout_s = DEFAULT_SESSION_TIMEOUT_S;
        snprintf(v->multicast.address, sizeof v->multicast.address, "%s", d->mcast_address);
        v->multicast.port = d->mcast_port;
        v->multicast.ttl = 1;
        v->multicast.autostart = 0;

        struct media_profile *p = &st->profiles[st->n_profiles++];
        snprintf(p->token, sizeof p->token, "%s", d->profile_token);
        snprintf(p->name, sizeof p->name, "%s", d->name);
        p->fixed = 1;
        snprintf(p->vsc_token, sizeof p->vsc_token, "%s", DEFAULT_VSC_TOKEN);
        snprintf(p->vec_token, sizeof p->vec_token, "%s", d->token);
    }
    st->next_profile = N_FIXED_PROFILES + 1;
}

/* ---- media.xml ------------------------------------------------------------ */

static xmlNode *add_node(xmlNode *parent, const char *name, int *ok)
{
    xmlNode *n = *ok ? xmlNewChild(parent, NULL, (const xmlChar *)name, NULL) : NULL;
    if (!n)
        *ok = 0;
    return n;
}

static void set_attr(xmlNode *n, const char *name, const char *value, int *ok)
{
    if (*ok && !xmlNewProp(n, (const xmlChar *)name, (const xmlChar *)value))
        *ok = 0;
}

static void set_attr_int(xmlNode *n, const char *name, long value, int *ok)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%ld", value);
    set_attr(n, name, buf, ok);
}

static void set_attr_bool(xmlNode *n, const char *name, int value, int *ok)
{
    set_attr(n, name, value ? "true" : "false", ok);
}

/* Writes st as media.xml; called with the lock held, before st becomes the
 * state. */
static int store(const struct mediacfg *m, const struct media_state *st)
{
    int ok = 1;
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNode *root = doc ? xmlNewDocNode(doc, NULL, (const xmlChar *)"media", NULL) : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        return MEDIACFG_E_NOMEM;
    }
    xmlDocSetRootElement(doc, root);
    set_attr_int(root, "version", MEDIA_FORMAT_VERSION, &ok);
    set_attr_int(root, "next-profile", (long)st->next_profile, &ok);
    for (int i = 0; i < st->n_vscs && ok; i++) {
        const struct media_vsc *c = &st->vscs[i];
        xmlNode *n = add_node(root, "vsc", &ok);
        set_attr(n, "token", c->token, &ok);
        set_attr(n, "name", c->name, &ok);
        set_attr(n, "source", c->source_token, &ok);
        set_attr_int(n, "x", c->x, &ok);
        set_attr_int(n, "y", c->y, &ok);
        set_attr_int(n, "width", c->width, &ok);
        set_attr_int(n, "height", c->height, &ok);
    }
    for (int i = 0; i < st->n_vecs && ok; i++) {
        const struct media_vec *v = &st->vecs[i];
        xmlNode *n = add_node(root, "vec", &ok);
        set_attr(n, "token", v->token, &ok);
        set_attr(n, "name", v->name, &ok);
        set_attr(n, "encoding", media_encoding_name(v->encoding), &ok);
        set_attr_int(n, "width", v->width, &ok);
        set_attr_int(n, "height", v->height, &ok);
        set_attr_int(n, "quality", v->quality, &ok);
        set_attr_int(n, "framerate", v->framerate, &ok);
        set_attr_int(n, "encoding-interval", v->encoding_interval, &ok);
        set_attr_int(n, "bitrate-kbps", v->bitrate_kbps, &ok);
        set_attr_bool(n, "constant-bitrate", v->cbr, &ok);
        set_attr_int(n, "gov-length", v->gov_length, &ok);
        set_attr(n, "profile", media_h264_profile_name(v->profile), &ok);
        set_attr_int(n, "session-timeout", v->session_timeout_s, &ok);
        xmlNode *mc = add_node(n, "multicast", &ok);
        set_attr(mc, "address", v->multicast.address, &ok);
        set_attr_int(mc, "port", v->multicast.port, &ok);
        set_attr_int(mc, "ttl", v->multicast.ttl, &ok);
        set_attr_bool(mc, "autostart", v->multicast.autostart, &ok);
    }
    for (int i = 0; i < st->n_profiles && ok; i++) {
        const struct media_profile *p = &st->profiles[i];
        xmlNode *n = add_node(root, "profile", &ok);
        set_attr(n, "token", p->token, &ok);
        set_attr(n, "name", p->name, &ok);
        set_attr_bool(n, "fixed", p->fixed, &ok);
        if (p->vsc_token[0])
            set_attr(n, "vsc", p->vsc_token, &ok);
        if (p->vec_token[0])
            set_attr(n, "vec", p->vec_token, &ok);
    }
    xmlChar *mem = NULL;
    int size = 0;
    if (ok)
        xmlDocDumpFormatMemoryEnc(doc, &mem, &size, "UTF-8", 1);
    xmlFreeDoc(doc);
    if (!mem) {
        log_err(AREA, "building %s failed", m->path);
        return MEDIACFG_E_NOMEM;
    }
    /* Cannot happen with the bounded counts and lengths, but a file we
     * would refuse to read must never be written. */
    if (size <= 0 || (size_t)size > MEDIA_FILE_MAX) {
        xmlFree(mem);
        log_err(AREA, "%s would be %d bytes; not saved", m->path, size);
        return MEDIACFG_E_IO;
    }
    int rc = atomicfile_write(m->path, mem, (size_t)size, 0644);
    xmlFree(mem);
    if (rc != 0) {
        log_err(AREA, "saving %s failed: %s", m->path, strerror(-rc));
        return MEDIACFG_E_IO;
    }
    return MEDIACFG_OK;
}

static int is_ignorable(const xmlNode *n)
{
    if (n->type == XML_COMMENT_NODE)
        return 1;
    if (n->type != XML_TEXT_NODE)
        return 0;
    for (const xmlChar *p = n->content; p && *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    return 1;
}

/* An element carries no namespace and only the listed attributes. */
static int attrs_ok(const xmlNode *n, const char *const *allowed)
{
    if (n->ns || n->nsDef)
        return 0;
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (a->ns)
            return 0;
        int known = 0;
        for (int i = 0; allowed[i]; i++)
            if (strcmp((const char *)a->name, allowed[i]) == 0)
                known = 1;
        if (!known)
            return 0;
    }
    return 1;
}

/* ... and no content but whitespace (and, when child is set, elements of
 * that name). */
static int shape_ok(const xmlNode *n, const char *const *allowed, const char *child)
{
    if (!attrs_ok(n, allowed))
        return 0;
    for (const xmlNode *c = n->children; c; c = c->next)
        if (!is_ignorable(c) && !(child && c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, child) == 0))
            return 0;
    return 1;
}

/* Copies attribute name into out (cap bytes). 0, or -1 when absent or too long. */
static int attr_text(const xmlNode *n, const char *name, char *out, size_t cap)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    if (!v)
        return -1;
    size_t len = strlen((const char *)v);
    int rc = -1;
    if (len < cap) {
        memcpy(out, v, len + 1);
        rc = 0;
    }
    xmlFree(v);
    return rc;
}

/* Strict decimal: optional '-', digits only, fits in an int. */
static int attr_int(const xmlNode *n, const char *name, int *out)
{
    char buf[16];
    if (attr_text(n, name, buf, sizeof buf) != 0)
        return -1;
    const char *p = buf[0] == '-' ? buf + 1 : buf;
    if (*p == '\0')
        return -1;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return -1;
    }
    *out = (int)(buf[0] == '-' ? -v : v);
    return 0;
}

static int attr_bool(const xmlNode *n, const char *name, int *out)
{
    char buf[8];
    if (attr_text(n, name, buf, sizeof buf) != 0)
        return -1;
    if (strcmp(buf, "true") == 0)
        *out = 1;
    else if (strcmp(buf, "false") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static const char *parse_vsc(const xmlNode *n, struct media_vsc *c)
{
    static const char *const allowed[] = { "token", "name", "source", "x", "y", "width", "height", NULL };
    if (!shape_ok(n, allowed, NULL))
        return "unexpected content in a video source configuration";
    if (attr_text(n, "token", c->token, sizeof c->token) || attr_text(n, "name", c->name, sizeof c->name) ||
        attr_text(n, "source", c->source_token, sizeof c->source_token) || attr_int(n, "x", &c->x) ||
        attr_int(n, "y", &c->y) || attr_int(n, "width", &c->width) || attr_int(n, "height", &c->height))
        return "missing or malformed video source configuration attribute";
    return NULL;
}

static const char *parse_vec(const xmlNode *n, struct media_vec *v)
{
    static const char *const allowed[] = { "token", "name", "encoding", "width", "height", "quality", "framerate",
                                           "encoding-interval", "bitrate-kbps", "constant-bitrate", "gov-length",
                                           "profile", "session-timeout", NULL };
    static const char *const mc_allowed[] = { "address", "port", "ttl", "autostart", NULL };
    char enc[8], prof[16];
    if (!shape_ok(n, allowed, "multicast"))
        return "unexpected content in a video encoder configuration";
    if (attr_text(n, "token", v->token, sizeof v->token) || attr_text(n, "name", v->name, sizeof v->name) ||
        attr_text(n, "encoding", enc, sizeof enc) || media_encoding_from_name(enc, &v->encoding) ||
        attr_int(n, "width", &v->width) || attr_int(n, "height", &v->height) ||
        attr_int(n, "quality", &v->quality) || attr_int(n, "framerate", &v->framerate) ||
        attr_int(n, "encoding-interval", &v->encoding_interval) || attr_int(n, "bitrate-kbps", &v->bitrate_kbps) ||
        attr_bool(n, "constant-bitrate", &v->cbr) || attr_int(n, "gov-length", &v->gov_length) ||
        attr_text(n, "profile", prof, sizeof prof) || media_h264_profile_from_name(prof, &v->profile) ||
        attr_int(n, "session-timeout", &v->session_timeout_s))
        return "missing or malformed video encoder configuration attribute";
    int n_mc = 0;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (++n_mc > 1 || !shape_ok(c, mc_allowed, NULL))
            return "unexpected multicast content";
        if (attr_text(c, "address", v->multicast.address, sizeof v->multicast.address) ||
            attr_int(c, "port", &v->multicast.port) || attr_int(c, "ttl", &v->multicast.ttl) ||
            attr_bool(c, "autostart", &v->multicast.autostart))
            return "missing or malformed multicast attribute";
    }
    return n_mc == 1 ? NULL : "multicast settings missing";
}

static const char *parse_profile(const xmlNode *n, struct media_profile *p)
{
    static const char *const allowed[] = { "token", "name", "fixed", "vsc", "vec", NULL };
    if (!shape_ok(n, allowed, NULL))
        return "unexpected content in a profile";
    if (attr_text(n, "token", p->token, sizeof p->token) || attr_text(n, "name", p->name, sizeof p->name) ||
        attr_bool(n, "fixed", &p->fixed))
        return "missing or malformed profile attribute";
    /* Absent means none; present must name a configuration. */
    if (xmlHasProp(n, (const xmlChar *)"vsc") &&
        (attr_text(n, "vsc", p->vsc_token, sizeof p->vsc_token) || !p->vsc_token[0]))
        return "malformed profile reference";
    if (xmlHasProp(n, (const xmlChar *)"vec") &&
        (attr_text(n, "vec", p->vec_token, sizeof p->vec_token) || !p->vec_token[0]))
        return "malformed profile reference";
    return NULL;
}

static const char *parse_doc(xmlDocPtr doc, struct media_state *st)
{
    static const char *const allowed[] = { "version", "next-profile", NULL };
    xmlNode *root = xmlDocGetRootElement(doc);
    if (doc->intSubset || !root || strcmp((const char *)root->name, "media") != 0)
        return "not a media configuration";
    int version = 0, next = 0;
    if (!attrs_ok(root, allowed))
        return "unexpected root attribute";
    if (attr_int(root, "version", &version) || version != MEDIA_FORMAT_VERSION)
        return "unknown format version";
    if (attr_int(root, "next-profile", &next) || next < 1)
        return "malformed next-profile";
    st->next_profile = (unsigned)next;
    for (const xmlNode *e = root->children; e; e = e->next) {
        if (is_ignorable(e))
            continue;
        if (e->type != XML_ELEMENT_NODE)
            return "unexpected content";
        const char *name = (const char *)e->name, *p;
        if (strcmp(name, "vsc") == 0) {
            if (st->n_vscs >= MEDIA_MAX_VSCS)
                return "too many video source configurations";
            if ((p = parse_vsc(e, &st->vscs[st->n_vscs++])) != NULL)
                return p;
        } else if (strcmp(name, "vec") == 0) {
            if (st->n_vecs >= MEDIA_MAX_VECS)
                return "too many video encoder configurations";
            if ((p = parse_vec(e, &st->vecs[st->n_vecs++])) != NULL)
                return p;
        } else if (strcmp(name, "profile") == 0) {
            if (st->n_profiles >= MEDIA_MAX_PROFILES)
                return "too many profiles";
            if ((p = parse_profile(e, &st->profiles[st->n_profiles++])) != NULL)
                return p;
        } else {
            return "unknown element";
        }
    }
    return NULL;
}

/* Reads media.xml into st. MEDIACFG_OK; MEDIACFG_E_NO_CONFIG when absent;
 * MEDIACFG_E_INVALID when unusable (why says how); MEDIACFG_E_IO when it
 * cannot be read at all. */
static int load(const struct mediacfg *m, struct media_state *st, char *why, size_t whylen)
{
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(m->path, MEDIA_FILE_MAX, &data, &len);
    if (rc == -ENOENT)
        return MEDIACFG_E_NO_CONFIG;
    if (rc == -EFBIG) {
        snprintf(why, whylen, "larger than %d bytes", MEDIA_FILE_MAX);
        return MEDIACFG_E_INVALID;
    }
    if (rc != 0) {
        log_err(AREA, "cannot read %s: %s", m->path, strerror(-rc));
        return MEDIACFG_E_IO;
    }
    xmlDocPtr doc = xmlReadMemory(data, (int)len, m->path, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc) {
        snprintf(why, whylen, "not well-formed XML");
        return MEDIACFG_E_INVALID;
    }
    memset(st, 0, sizeof *st);
    const char *p = parse_doc(doc, st);
    xmlFreeDoc(doc);
    if (p) {
        snprintf(why, whylen, "%s", p);
        return MEDIACFG_E_INVALID;
    }
    if (state_problem(m, st, why, whylen))
        return MEDIACFG_E_INVALID;
    return MEDIACFG_OK;
}

/* ---- open / close ------------------------------------------------------------ */

static int source_ok(const struct media_video_source *s)
{
    return s && FIELD_TERMINATED(s->token) && token_ok(s->token) && in_range(s->width, SOURCE_DIM_MIN, SOURCE_DIM_MAX) &&
           in_range(s->height, SOURCE_DIM_MIN, SOURCE_DIM_MAX) && in_range(s->framerate, 1, SOURCE_RATE_MAX);
}

int mediacfg_open(struct mediacfg **out, const char *state_dir, const struct media_video_source *source,
                  unsigned encodings)
{
    if (!out)
        return MEDIACFG_E_INVALID;
    *out = NULL;
    if (!state_dir)
        return MEDIACFG_E_INVALID;
    if (!source_ok(source))
        return MEDIACFG_E_NO_SOURCE;
    encodings &= MEDIA_ENC_BIT(MEDIA_ENC_COUNT) - 1;
    if (encodings == 0)
        return MEDIACFG_E_INVALID;
    struct mediacfg *m = calloc(1, sizeof *m);
    if (!m)
        return MEDIACFG_E_NOMEM;
    if ((size_t)snprintf(m->path, sizeof m->path, "%s/%s", state_dir, MEDIA_FILE_NAME) >= sizeof m->path ||
        (size_t)snprintf(m->bad_path, sizeof m->bad_path, "%s.bad", m->path) >= sizeof m->bad_path) {
        free(m);
        return MEDIACFG_E_INVALID;
    }
    m->source = *source;
    m->encodings = encodings;
    build_resolutions(m);

    char why[160] = "";
    int rc = load(m, &m->st, why, sizeof why);
    if (rc == MEDIACFG_E_INVALID) {
        /* Keep the unusable file for a look, and start over: the camera
         * must stream with defaults rather than not at all. */
        if (rename(m->path, m->bad_path) != 0) {
            log_err(AREA, "%s is unusable (%s) and cannot be moved aside: %s", m->path, why, strerror(errno));
            free(m);
            return MEDIACFG_E_IO;
        }
        log_warning(AREA, "%s is unusable (%s); kept as %s, starting from the default media configuration",
                    m->path, why, m->bad_path);
    } else if (rc == MEDIACFG_E_IO) {
        free(m);
        return rc;
    }
    if (rc != MEDIACFG_OK) {
        default_state(m, &m->st);
        if (state_problem(m, &m->st, why, sizeof why)) {
            log_err(AREA, "default media configuration refused: %s", why);
            free(m);
            return MEDIACFG_E_INVALID;
        }
        rc = store(m, &m->st);
        if (rc != MEDIACFG_OK) {
            free(m);
            return rc;
        }
    }
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return MEDIACFG_OK;
}

void mediacfg_close(struct mediacfg *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void mediacfg_set_listener(struct mediacfg *m, mediacfg_listener fn, void *arg)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->listener = fn;
    m->listener_arg = arg;
    pthread_mutex_unlock(&m->lock);
}

/* ---- changes ------------------------------------------------------------------ */

/* A pending change: what to tell the listener once it is in place. */
struct change {
    enum mediacfg_change what;
    char token[MEDIA_TOKEN_MAX + 1];
    mediacfg_listener fn;
    void *arg;
};

/* Validates next as a whole, saves it, and only then makes it the state.
 * Called with the lock held; the listener is picked up for the caller to call
 * after unlocking. */
static int commit(struct mediacfg *m, const struct media_state *next, struct change *ch)
{
    char why[160];
    if (state_problem(m, next, why, sizeof why)) {
        log_debug(AREA, "media configuration change refused: %s", why);
        return MEDIACFG_E_INVALID;
    }
    int rc = store(m, next);
    if (rc != MEDIACFG_OK)
        return rc;
    m->st = *next;
    ch->fn = m->listener;
    ch->arg = m->listener_arg;
    return MEDIACFG_OK;
}

static void announce(const struct change *ch)
{
    if (ch->fn)
        ch->fn(ch->arg, ch->what, ch->token);
}

static void set_change(struct change *ch, enum mediacfg_change what, const char *token)
{
    memset(ch, 0, sizeof *ch);
    ch->what = what;
    snprintf(ch->token, sizeof ch->token, "%s", token);
}

/* ---- profiles ------------------------------------------------------------------ */

int mediacfg_profiles(struct mediacfg *m, struct media_profile *out, int max)
{
    if (!m || !out || max <= 0)
        return 0;
    pthread_mutex_lock(&m->lock);
    int n = m->st.n_profiles < max ? m->st.n_profiles : max;
    memcpy(out, m->st.profiles, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&m->lock);
    return n;
}

int mediacfg_profile(struct mediacfg *m, const char *token, struct media_profile *out)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    pthread_mutex_lock(&m->lock);
    int i = find_profile(&m->st, token);
    if (i >= 0 && out)
        *out = m->st.profiles[i];
    pthread_mutex_unlock(&m->lock);
    return i >= 0 ? MEDIACFG_OK : MEDIACFG_E_NO_PROFILE;
}

/* Generated tokens count up and are not reused after a delete, so a client
 * holding a deleted profile's token (or stream URI) never reaches another. */
static void generate_token(struct media_state *st, char out[MEDIA_TOKEN_MAX + 1])
{
    for (;;) {
        if (st->next_profile < 1 || st->next_profile > NEXT_PROFILE_MAX)
            st->next_profile = 1;
        snprintf(out, MEDIA_TOKEN_MAX + 1, "Profile_%u", st->next_profile++);
        if (find_profile(st, out) < 0)
            return;
    }
}

int mediacfg_create_profile(struct mediacfg *m, const char *name, const char *token, char token_out[MEDIA_TOKEN_MAX + 1])
{
    if (!m)
        return MEDIACFG_E_INVALID;
    if (!name_ok(name) || (token && token[0] && !token_ok(token)))
        return MEDIACFG_E_INVALID;
    struct change ch = { .fn = NULL };
    pthread_mutex_lock(&m->lock);
    int rc = MEDIACFG_OK;
    if (token && token[0] && find_profile(&m->st, token) >= 0)
        rc = MEDIACFG_E_EXISTS;
    else if (m->st.n_profiles >= MEDIA_MAX_PROFILES)
        rc = MEDIACFG_E_FULL;
    if (rc == MEDIACFG_OK) {
        struct media_state next = m->st;
        char new_token[MEDIA_TOKEN_MAX + 1];
        if (token && token[0])
            snprintf(new_token, sizeof new_token, "%s", token);
        else
            generate_token(&next, new_token);   /* before the new slot exists, or it matches itself */
        struct media_profile *p = &next.profiles[next.n_profiles++];
        memset(p, 0, sizeof *p);
        memcpy(p->token, new_token, sizeof p->token);
        snprintf(p->name, sizeof p->name, "%s", name);
        set_change(&ch, MEDIACFG_PROFILE_CREATED, p->token);
        rc = commit(m, &next, &ch);
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == MEDIACFG_OK) {
        if (token_out)
            memcpy(token_out, ch.token, sizeof ch.token);
        announce(&ch);
    }
    return rc;
}

int mediacfg_delete_profile(struct mediacfg *m, const char *token)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    struct change ch = { .fn = NULL };
    pthread_mutex_lock(&m->lock);
    int i = find_profile(&m->st, token);
    int rc = i < 0 ? MEDIACFG_E_NO_PROFILE : m->st.profiles[i].fixed ? MEDIACFG_E_FIXED : MEDIACFG_OK;
    if (rc == MEDIACFG_OK) {
        struct media_state next = m->st;
        memmove(&next.profiles[i], &next.profiles[i + 1], (size_t)(next.n_profiles - i - 1) * sizeof next.profiles[0]);
        next.n_profiles--;
        set_change(&ch, MEDIACFG_PROFILE_DELETED, token);
        rc = commit(m, &next, &ch);
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == MEDIACFG_OK)
        announce(&ch);
    return rc;
}

int mediacfg_set_profile_name(struct mediacfg *m, const char *token, const char *name)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    struct change ch = { .fn = NULL };
    pthread_mutex_lock(&m->lock);
    int i = find_profile(&m->st, token);
    int rc = i < 0 ? MEDIACFG_E_NO_PROFILE : !name_ok(name) ? MEDIACFG_E_INVALID : MEDIACFG_OK;
    if (rc == MEDIACFG_OK && strcmp(m->st.profiles[i].name, name) != 0) {
        struct media_state next = m->st;
        snprintf(next.profiles[i].name, sizeof next.profiles[i].name, "%s", name);
        set_change(&ch, MEDIACFG_PROFILE_CHANGED, token);
        rc = commit(m, &next, &ch);
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == MEDIACFG_OK)
        announce(&ch);
    return rc;
}

/* Fixed profiles take Add/Remove like any other: Media §5.2 and Media2 §5.2
 * say "fixed" only means the profile cannot be deleted, not that it is
 * immutable. */
int mediacfg_profile_set_vsc(struct mediacfg *m, const char *profile, const char *vsc_token)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    struct change ch = { .fn = NULL };
    pthread_mutex_lock(&m->lock);
    int i = find_profile(&m->st, profile), rc = MEDIACFG_OK;
    if (i < 0)
        rc = MEDIACFG_E_NO_PROFILE;
    else if (vsc_token && find_vsc(&m->st, vsc_token) < 0)
        rc = MEDIACFG_E_NO_CONFIG;
    if (rc == MEDIACFG_OK) {
        struct media_state next = m->st;
        struct media_profile *p = &next.profiles[i];
        if (vsc_token) {
            snprintf(p->vsc_token, sizeof p->vsc_token, "%s", vsc_token);
        } else {
            /* The encoder depends on the source: removing the source takes
             * the encoder with it (Media2 lets both go in one request; a
             * ConfigurationConflict here would only make clients retry). */
            p->vsc_token[0] = '\0';
            p->vec_token[0] = '\0';
        }
        if (strcmp(p->vsc_token, m->st.profiles[i].vsc_token) != 0 ||
            strcmp(p->vec_token, m->st.profiles[i].vec_token) != 0) {
            set_change(&ch, MEDIACFG_PROFILE_CHANGED, profile);
            rc = commit(m, &next, &ch);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == MEDIACFG_OK)
        announce(&ch);
    return rc;
}

/* An encoder needs a source to encode (Media2 §5.3.1 dependency), so adding a
 * VEC to a profile without a VSC is a ConfigurationConflict; a Media2
 * AddConfiguration carrying both sets the VSC first. */
int mediacfg_profile_set_vec(struct mediacfg *m, const char *profile, const char *vec_token)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    struct change ch = { .fn = NULL };
    pthread_mutex_lock(&m->lock);
    int i = find_profile(&m->st, profile), rc = MEDIACFG_OK;
    if (i < 0)
        rc = MEDIACFG_E_NO_PROFILE;
    else if (vec_token && find_vec(&m->st, vec_token) < 0)
        rc = MEDIACFG_E_NO_CONFIG;
    else if (vec_token && !m->st.profiles[i].vsc_token[0])
        rc = MEDIACFG_E_CONFLICT;
    if (rc == MEDIACFG_OK && strcmp(m->st.profiles[i].vec_token, vec_token ? vec_token : "") != 0) {
        struct media_state next = m->st;
        snprintf(next.profiles[i].vec_token, sizeof next.profiles[i].vec_token, "%s", vec_token ? vec_token : "");
        set_change(&ch, MEDIACFG_PROFILE_CHANGED, profile);
        rc = commit(m, &next, &ch);
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == MEDIACFG_OK)
        announce(&ch);
    return rc;
}

/* ---- video source ---------------------------------------------------------------- */

void mediacfg_video_source(struct mediacfg *m, struct media_video_source *out)
{
    if (m && out)
        *out = m->source;
}

unsigned mediacfg_encodings(struct mediacfg *m)
{
    return m ? m->encodings : 0;
}

int mediacfg_vscs(struct mediacfg *m, struct media_vsc *out, int max)
{
    if (!m || !out || max <= 0)
        return 0;
    pthread_mutex_lock(&m->lock);
    int n = m->st.n_vscs < max ? m->st.n_vscs : max;
    memcpy(out, m->st.vscs, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&m->lock);
    return n;
}

int mediacfg_vsc(struct mediacfg *m, const char *token, struct media_vsc *out)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    pthread_mutex_lock(&m->lock);
    int i = find_vsc(&m->st, token);
    if (i >= 0 && out)
        *out = m->st.vscs[i];
    pthread_mutex_unlock(&m->lock);
    return i >= 0 ? MEDIACFG_OK : MEDIACFG_E_NO_CONFIG;
}

static int vsc_equal(const struct media_vsc *a, const struct media_vsc *b)
{
    return strcmp(a->token, b->token) == 0 && strcmp(a->name, b->name) == 0 &&
           strcmp(a->source_token, b->source_token) == 0 && a->x == b->x && a->y == b->y && a->width == b->width &&
           a->height == b->height;
}

int mediacfg_set_vsc(struct mediacfg *m, const struct media_vsc *in)
{
    if (!m || !in || !FIELD_TERMINATED(in->token))
        return MEDIACFG_E_INVALID;
    struct media_vsc c = *in;
    struct change ch = { .fn = NULL };
    pthread_mutex_lock(&m->lock);
    int i = find_vsc(&m->st, c.token), rc = MEDIACFG_OK;
    const char *problem = NULL;
    if (i < 0)
        rc = MEDIACFG_E_NO_CONFIG;
    else if ((problem = vsc_problem(m, &c)) != NULL)
        rc = MEDIACFG_E_INVALID;
    if (rc == MEDIACFG_OK && !vsc_equal(&c, &m->st.vscs[i])) {
        struct media_state next = m->st;
        next.vscs[i] = c;
        set_change(&ch, MEDIACFG_VSC_CHANGED, c.token);
        rc = commit(m, &next, &ch);
    }
    pthread_mutex_unlock(&m->lock);
    if (problem)
        log_debug(AREA, "video source configuration %s refused: %s", c.token, problem);
    if (rc == MEDIACFG_OK)
        announce(&ch);
    return rc;
}

void mediacfg_vsc_options(struct mediacfg *m, struct media_vsc_options *out)
{
    if (m && out)
        vsc_options_of(m, out);
}

/* ---- video encoders ---------------------------------------------------------------- */

int mediacfg_vecs(struct mediacfg *m, struct media_vec *out, int max)
{
    if (!m || !out || max <= 0)
        return 0;
    pthread_mutex_lock(&m->lock);
    int n = m->st.n_vecs < max ? m->st.n_vecs : max;
    memcpy(out, m->st.vecs, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&m->lock);
    return n;
}

int mediacfg_vec(struct mediacfg *m, const char *token, struct media_vec *out)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    pthread_mutex_lock(&m->lock);
    int i = find_vec(&m->st, token);
    if (i >= 0 && out)
        *out = m->st.vecs[i];
    pthread_mutex_unlock(&m->lock);
    return i >= 0 ? MEDIACFG_OK : MEDIACFG_E_NO_CONFIG;
}

static int vec_equal(const struct media_vec *a, const struct media_vec *b)
{
    return strcmp(a->token, b->token) == 0 && strcmp(a->name, b->name) == 0 && a->encoding == b->encoding &&
           a->width == b->width && a->height == b->height && a->quality == b->quality &&
           a->framerate == b->framerate && a->encoding_interval == b->encoding_interval &&
           a->bitrate_kbps == b->bitrate_kbps && a->cbr == b->cbr && a->gov_length == b->gov_length &&
           a->profile == b->profile && a->session_timeout_s == b->session_timeout_s &&
           strcmp(a->multicast.address, b->multicast.address) == 0 && a->multicast.port == b->multicast.port &&
           a->multicast.ttl == b->multicast.ttl && a->multicast.autostart == b->multicast.autostart;
}

/* The adaptations ONVIF allows or clients rely on, before the strict check:
 * an out-of-range BitrateLimit is brought into range (Media
 * SetVideoEncoderConfiguration, Media2 Set<entity>Configuration: "shall adapt ... instead of returning a fault");
 * JPEG has no GOV or profile, so whatever the caller left there is dropped;
 * an unspecified multicast address (0.0.0.0, ::) means none. */
static void vec_adapt(const struct mediacfg *m, struct media_vec *v)
{
    if (encoding_available(m, v->encoding)) {
        struct media_vec_options o;
        vec_options_of(m, v->encoding, &o);
        if (v->bitrate_kbps < o.bitrate_min)
            v->bitrate_kbps = o.bitrate_min;
        else if (v->bitrate_kbps > o.bitrate_max)
            v->bitrate_kbps = o.bitrate_max;
    }
    if (v->encoding == MEDIA_ENC_JPEG) {
        v->gov_length = 0;
        v->profile = MEDIA_PROFILE_BASELINE;
    }
    if (FIELD_TERMINATED(v->multicast.address) && is_unspecified_address(v->multicast.address))
        v->multicast.address[0] = '\0';
}

int mediacfg_set_vec(struct mediacfg *m, const struct media_vec *in)
{
    if (!m || !in || !FIELD_TERMINATED(in->token))
        return MEDIACFG_E_INVALID;
    struct media_vec v = *in;
    vec_adapt(m, &v);
    struct change ch = { .fn = NULL };
    pthread_mutex_lock(&m->lock);
    int i = find_vec(&m->st, v.token), rc = MEDIACFG_OK;
    const char *problem = NULL;
    if (i < 0)
        rc = MEDIACFG_E_NO_CONFIG;
    else if ((problem = vec_problem(m, &v)) != NULL)
        rc = MEDIACFG_E_INVALID;
    if (rc == MEDIACFG_OK && !vec_equal(&v, &m->st.vecs[i])) {
        struct media_state next = m->st;
        next.vecs[i] = v;
        set_change(&ch, MEDIACFG_VEC_CHANGED, v.token);
        rc = commit(m, &next, &ch);
    }
    pthread_mutex_unlock(&m->lock);
    if (problem)
        log_debug(AREA, "video encoder configuration %s refused: %s", v.token, problem);
    if (rc == MEDIACFG_OK)
        announce(&ch);
    return rc;
}

int mediacfg_vec_options(struct mediacfg *m, enum media_encoding enc, struct media_vec_options *out)
{
    if (!m || !encoding_available(m, enc))
        return MEDIACFG_E_INVALID;
    if (out)
        vec_options_of(m, enc, out);
    return MEDIACFG_OK;
}

/* ---- compatibility, use counts, instances -------------------------------------------- */

int mediacfg_compatible_vscs(struct mediacfg *m, const char *profile, struct media_vsc *out, int max)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    pthread_mutex_lock(&m->lock);
    int n = MEDIACFG_E_NO_PROFILE;
    if (find_profile(&m->st, profile) >= 0) {
        /* One source, and encoder resolutions do not depend on the bounds:
         * every VSC can replace any profile's VSC. */
        n = out && max > 0 ? (m->st.n_vscs < max ? m->st.n_vscs : max) : 0;
        if (n > 0)
            memcpy(out, m->st.vscs, (size_t)n * sizeof *out);
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

int mediacfg_compatible_vecs(struct mediacfg *m, const char *profile, struct media_vec *out, int max)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    pthread_mutex_lock(&m->lock);
    int i = find_profile(&m->st, profile), n = MEDIACFG_E_NO_PROFILE;
    if (i >= 0) {
        /* Compatible means "AddVideoEncoderConfiguration would succeed":
         * none without a VSC in the profile. */
        n = 0;
        if (m->st.profiles[i].vsc_token[0] && out && max > 0) {
            n = m->st.n_vecs < max ? m->st.n_vecs : max;
            memcpy(out, m->st.vecs, (size_t)n * sizeof *out);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

int mediacfg_use_count(struct mediacfg *m, const char *config_token)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    pthread_mutex_lock(&m->lock);
    int n = MEDIACFG_E_NO_CONFIG;
    if (find_vsc(&m->st, config_token) >= 0 || find_vec(&m->st, config_token) >= 0) {
        n = 0;
        for (int i = 0; i < m->st.n_profiles; i++)
            if (strcmp(m->st.profiles[i].vsc_token, config_token) == 0 ||
                strcmp(m->st.profiles[i].vec_token, config_token) == 0)
                n++;
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* One encoder runs per VEC however many viewers it has, so as many streams
 * as there are VECs can run at once over a VSC. Encoding is in software:
 * JPEG is cheap enough for all of them, but only two H.264 encodes (the
 * default main and sub stream) and one H.265 encode are promised, since a
 * third full-size x264 or a second x265 may not keep up on a small machine.
 * Nothing here enforces these numbers; the stream hub opens what is asked. */
#define GUARANTEED_H264 2
#define GUARANTEED_H265 1

int mediacfg_guaranteed_instances(struct mediacfg *m, const char *vsc_token, int *total, int *h264, int *jpeg,
                                  int *h265)
{
    if (!m)
        return MEDIACFG_E_INVALID;
    pthread_mutex_lock(&m->lock);
    int found = find_vsc(&m->st, vsc_token) >= 0, n = m->st.n_vecs;
    pthread_mutex_unlock(&m->lock);
    if (!found)
        return MEDIACFG_E_NO_CONFIG;
    if (total)
        *total = n;
    if (h264)
        *h264 = encoding_available(m, MEDIA_ENC_H264) ? (n < GUARANTEED_H264 ? n : GUARANTEED_H264) : 0;
    if (jpeg)
        *jpeg = encoding_available(m, MEDIA_ENC_JPEG) ? n : 0;
    if (h265)
        *h265 = encoding_available(m, MEDIA_ENC_H265) ? (n < GUARANTEED_H265 ? n : GUARANTEED_H265) : 0;
    return MEDIACFG_OK;
}
