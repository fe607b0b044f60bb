/* Unit tests for mediacfg: the defaults (and their fallbacks on machines
 * without H.264 or JPEG), the options per encoding and per source size,
 * profile creation/deletion and their faults, adding and removing
 * configurations with use counts, every set_vec/set_vsc rule (rejections
 * change nothing, not even a byte of media.xml), persistence, unusable or
 * tampered files (kept as .bad, defaults used), failed saves, and the
 * listener. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "opennvt/log.h"
#include "opennvt/mediacfg.h"
#include "unit_helpers.h"

#define ENC_H264 MEDIA_ENC_BIT(MEDIA_ENC_H264)
#define ENC_JPEG MEDIA_ENC_BIT(MEDIA_ENC_JPEG)
#define ENC_H265 MEDIA_ENC_BIT(MEDIA_ENC_H265)
#define ENC_USUAL (ENC_H264 | ENC_JPEG)

#define MAX_CALLS 64

static const struct media_video_source full_hd = { "VideoSource_1", 1920, 1080, 30 };

struct call {
    enum mediacfg_change what;
    char token[MEDIA_TOKEN_MAX + 1];
    int seen_in_state;             /* what the getters said from inside the listener */
};

struct fixture {
    struct temp_dir dir;
    struct mediacfg *m;
    struct media_video_source source;
    unsigned encodings;
    int n_calls;                   /* calls recorded (at most MAX_CALLS) */
    int n_events;                  /* every call, recorded or not */
    pthread_mutex_t calls_lock;    /* the listener runs on the changing threads */
    struct call calls[MAX_CALLS];
};

/* ---- log capture ------------------------------------------------------------ */

static int n_warnings;
static char last_warning[1024];

static void capture_log(void *arg, enum log_level level, const char *area, const char *line)
{
    (void)arg;
    (void)area;
    if (level == LOG_LVL_WARNING) {
        n_warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", line);
    }
}

/* ---- fixture ------------------------------------------------------------------ */

/* Records the call, and asks the getters about the token: they must answer
 * (the lock is not held) and already see the change. */
static void record_change(void *arg, enum mediacfg_change what, const char *token)
{
    struct fixture *fx = arg;
    pthread_mutex_lock(&fx->calls_lock);
    fx->n_events++;
    if (fx->n_calls >= MAX_CALLS) {
        pthread_mutex_unlock(&fx->calls_lock);
        return;
    }
    struct call *c = &fx->calls[fx->n_calls++];
    pthread_mutex_unlock(&fx->calls_lock);
    c->what = what;
    snprintf(c->token, sizeof c->token, "%s", token);
    switch (what) {
    case MEDIACFG_PROFILE_CREATED:
    case MEDIACFG_PROFILE_CHANGED:
        c->seen_in_state = mediacfg_profile(fx->m, token, NULL) == MEDIACFG_OK;
        break;
    case MEDIACFG_PROFILE_DELETED:
        c->seen_in_state = mediacfg_profile(fx->m, token, NULL) == MEDIACFG_E_NO_PROFILE;
        break;
    case MEDIACFG_VSC_CHANGED:
        c->seen_in_state = mediacfg_vsc(fx->m, token, NULL) == MEDIACFG_OK;
        break;
    case MEDIACFG_VEC_CHANGED:
        c->seen_in_state = mediacfg_vec(fx->m, token, NULL) == MEDIACFG_OK;
        break;
    }
}

static int open_fx(struct fixture *fx)
{
    int rc = mediacfg_open(&fx->m, fx->dir.path, &fx->source, fx->encodings);
    if (rc == MEDIACFG_OK)
        mediacfg_set_listener(fx->m, record_change, fx);
    return rc;
}

static int setup_with(void **state, const struct media_video_source *src, unsigned encodings)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0) {
        free(fx);
        return -1;
    }
    pthread_mutex_init(&fx->calls_lock, NULL);
    fx->source = *src;
    fx->encodings = encodings;
    if (open_fx(fx) != MEDIACFG_OK) {
        temp_fixture_free(&fx->dir, fx);
        return -1;
    }
    n_warnings = 0;
    last_warning[0] = '\0';
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, &full_hd, ENC_USUAL);
}

static int setup_jpeg_only(void **state)
{
    return setup_with(state, &full_hd, ENC_JPEG);
}

static int setup_all_codecs(void **state)
{
    return setup_with(state, &full_hd, ENC_H264 | ENC_JPEG | ENC_H265);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    mediacfg_close(fx->m);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void reopen(struct fixture *fx)
{
    mediacfg_close(fx->m);
    fx->m = NULL;
    assert_int_equal(open_fx(fx), MEDIACFG_OK);
}

static const char *media_path(struct fixture *fx, char *buf)
{
    return path_in(buf, fx->dir.path, "media.xml");
}

static unsigned char *file_bytes(struct fixture *fx, size_t *len)
{
    char path[PATH_MAX];
    unsigned char *b = read_file_bytes(media_path(fx, path), len);
    assert_non_null(b);
    return b;
}

static void assert_file_is(struct fixture *fx, const unsigned char *bytes, size_t len)
{
    size_t now_len = 0;
    unsigned char *now = file_bytes(fx, &now_len);
    assert_int_equal(now_len, len);
    assert_memory_equal(now, bytes, len);
    free(now);
}

static struct media_vec get_vec(struct fixture *fx, const char *token)
{
    struct media_vec v;
    memset(&v, 0, sizeof v);
    assert_int_equal(mediacfg_vec(fx->m, token, &v), MEDIACFG_OK);
    return v;
}

static struct media_profile get_profile(struct fixture *fx, const char *token)
{
    struct media_profile p;
    memset(&p, 0, sizeof p);
    assert_int_equal(mediacfg_profile(fx->m, token, &p), MEDIACFG_OK);
    return p;
}

static int vec_same(const struct media_vec *a, const struct media_vec *b)
{
    return !strcmp(a->token, b->token) && !strcmp(a->name, b->name) && a->encoding == b->encoding &&
           a->width == b->width && a->height == b->height && a->quality == b->quality &&
           a->framerate == b->framerate && a->encoding_interval == b->encoding_interval &&
           a->bitrate_kbps == b->bitrate_kbps && a->cbr == b->cbr && a->gov_length == b->gov_length &&
           a->profile == b->profile && a->session_timeout_s == b->session_timeout_s &&
           !strcmp(a->multicast.address, b->multicast.address) && a->multicast.port == b->multicast.port &&
           a->multicast.ttl == b->multicast.ttl && a->multicast.autostart == b->multicast.autostart;
}

static int profile_same(const struct media_profile *a, const struct media_profile *b)
{
    return !strcmp(a->token, b->token) && !strcmp(a->name, b->name) && a->fixed == b->fixed &&
           !strcmp(a->vsc_token, b->vsc_token) && !strcmp(a->vec_token, b->vec_token);
}

/* Asserts the built-in state for a 1920x1080@30 source with H.264 and JPEG. */
static void assert_defaults(struct mediacfg *m)
{
    struct media_profile p[MEDIA_MAX_PROFILES];
    assert_int_equal(mediacfg_profiles(m, p, MEDIA_MAX_PROFILES), 3);
    const char *names[] = { "MainStream", "SubStream", "JPEG" };
    for (int i = 0; i < 3; i++) {
        char tok[32];
        snprintf(tok, sizeof tok, "Profile_%d", i + 1);
        assert_string_equal(p[i].token, tok);
        assert_string_equal(p[i].name, names[i]);
        assert_int_equal(p[i].fixed, 1);
        assert_string_equal(p[i].vsc_token, "VideoSourceConfig_1");
        snprintf(tok, sizeof tok, "VideoEncoder_%d", i + 1);
        assert_string_equal(p[i].vec_token, tok);
    }

    struct media_vsc c[MEDIA_MAX_VSCS];
    assert_int_equal(mediacfg_vscs(m, c, MEDIA_MAX_VSCS), 1);
    assert_string_equal(c[0].token, "VideoSourceConfig_1");
    assert_string_equal(c[0].source_token, "VideoSource_1");
    assert_int_equal(c[0].x, 0);
    assert_int_equal(c[0].y, 0);
    assert_int_equal(c[0].width, 1920);
    assert_int_equal(c[0].height, 1080);

    struct media_vec v[MEDIA_MAX_VECS];
    assert_int_equal(mediacfg_vecs(m, v, MEDIA_MAX_VECS), 3);
    const enum media_encoding enc[] = { MEDIA_ENC_H264, MEDIA_ENC_H264, MEDIA_ENC_JPEG };
    const int w[] = { 1920, 640, 640 }, h[] = { 1080, 360, 360 };
    const int kbps[] = { 4096, 1024, 4096 }, rate[] = { 30, 30, 15 }, gov[] = { 60, 60, 0 };
    const char *addr[] = { "239.255.0.1", "239.255.0.2", "239.255.0.3" };
    const int port[] = { 40000, 40002, 40004 };
    for (int i = 0; i < 3; i++) {
        char tok[32];
        snprintf(tok, sizeof tok, "VideoEncoder_%d", i + 1);
        assert_string_equal(v[i].token, tok);
        assert_string_equal(v[i].name, names[i]);
        assert_int_equal(v[i].encoding, enc[i]);
        assert_int_equal(v[i].width, w[i]);
        assert_int_equal(v[i].height, h[i]);
        assert_int_equal(v[i].bitrate_kbps, kbps[i]);
        assert_int_equal(v[i].framerate, rate[i]);
        assert_int_equal(v[i].encoding_interval, 1);
        assert_int_equal(v[i].gov_length, gov[i]);
        assert_int_equal(v[i].cbr, 0);
        assert_true(v[i].quality >= 0 && v[i].quality <= 100);
        assert_int_equal(v[i].session_timeout_s, 60);
        assert_string_equal(v[i].multicast.address, addr[i]);
        assert_int_equal(v[i].multicast.port, port[i]);
        assert_int_equal(v[i].multicast.ttl, 1);
        assert_int_equal(v[i].multicast.autostart, 0);
    }
    assert_int_equal(v[0].profile, MEDIA_PROFILE_MAIN);
}

/* ---- defaults ------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    struct fixture *fx = *state;
    assert_defaults(fx->m);

    struct media_video_source vs;
    mediacfg_video_source(fx->m, &vs);
    assert_string_equal(vs.token, "VideoSource_1");
    assert_int_equal(vs.width, 1920);
    assert_int_equal(vs.height, 1080);
    assert_int_equal(vs.framerate, 30);
    assert_int_equal(mediacfg_encodings(fx->m), ENC_USUAL);

    assert_int_equal(mediacfg_use_count(fx->m, "VideoSourceConfig_1"), 3);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_1"), 1);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_3"), 1);
    assert_int_equal(mediacfg_use_count(fx->m, "Profile_1"), MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_use_count(fx->m, NULL), MEDIACFG_E_NO_CONFIG);

    /* Written at once, world-readable (nothing secret in it). */
    char path[PATH_MAX];
    struct stat st;
    assert_int_equal(stat(media_path(fx, path), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(fx->n_calls, 0);

    /* Reopening reads the same state back, without announcing anything. */
    reopen(fx);
    assert_defaults(fx->m);
    assert_int_equal(fx->n_calls, 0);
}

static void test_jpeg_only_machine(void **state)
{
    struct fixture *fx = *state;
    struct media_vec v[MEDIA_MAX_VECS];
    assert_int_equal(mediacfg_vecs(fx->m, v, MEDIA_MAX_VECS), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(v[i].encoding, MEDIA_ENC_JPEG);
        assert_int_equal(v[i].gov_length, 0);
        assert_int_equal(v[i].cbr, 0);
    }
    assert_int_equal(v[0].width, 1920);
    assert_int_equal(v[1].width, 640);

    struct media_vec_options o;
    assert_int_equal(mediacfg_vec_options(fx->m, MEDIA_ENC_H264, &o), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_vec_options(fx->m, MEDIA_ENC_H265, &o), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_vec_options(fx->m, MEDIA_ENC_JPEG, &o), MEDIACFG_OK);

    /* H.264 cannot be configured here. */
    struct media_vec h = v[0];
    h.encoding = MEDIA_ENC_H264;
    h.gov_length = 60;
    h.profile = MEDIA_PROFILE_MAIN;
    assert_int_equal(mediacfg_set_vec(fx->m, &h), MEDIACFG_E_INVALID);
    assert_int_equal(get_vec(fx, "VideoEncoder_1").encoding, MEDIA_ENC_JPEG);

    int total = -1, h264 = -1, jpeg = -1, h265 = -1;
    assert_int_equal(mediacfg_guaranteed_instances(fx->m, "VideoSourceConfig_1", &total, &h264, &jpeg, &h265),
                     MEDIACFG_OK);
    assert_int_equal(total, 3);
    assert_int_equal(h264, 0);
    assert_int_equal(jpeg, 3);
    assert_int_equal(h265, 0);

    reopen(fx);
    assert_int_equal(get_vec(fx, "VideoEncoder_2").encoding, MEDIA_ENC_JPEG);
}

static void test_machine_without_jpeg(void **state)
{
    struct fixture *fx = *state;
    struct mediacfg *m = NULL;
    char dir[PATH_MAX];
    path_in(dir, fx->dir.path, "h264only");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mediacfg_open(&m, dir, &full_hd, ENC_H264), MEDIACFG_OK);
    struct media_vec v;
    assert_int_equal(mediacfg_vec(m, "VideoEncoder_3", &v), MEDIACFG_OK);
    assert_int_equal(v.encoding, MEDIA_ENC_H264);
    assert_true(v.gov_length >= 1);
    mediacfg_close(m);
}

/* ---- options ----------------------------------------------------------------------- */

static void assert_resolutions(const struct media_vec_options *o, const struct media_resolution *want, int n)
{
    assert_int_equal(o->n_resolutions, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(o->resolutions[i].width, want[i].width);
        assert_int_equal(o->resolutions[i].height, want[i].height);
    }
}

static void test_options_per_encoding(void **state)
{
    struct fixture *fx = *state;
    static const struct media_resolution want[] = {
        { 1920, 1080 }, { 1280, 720 }, { 960, 540 }, { 640, 360 }, { 320, 240 }, { 320, 180 },
    };
    struct media_vec_options o;

    assert_int_equal(mediacfg_vec_options(fx->m, MEDIA_ENC_H264, &o), MEDIACFG_OK);
    assert_int_equal(o.encoding, MEDIA_ENC_H264);
    assert_resolutions(&o, want, 6);
    assert_int_equal(o.quality_min, 0);
    assert_int_equal(o.quality_max, 100);
    assert_int_equal(o.framerate_min, 1);
    assert_int_equal(o.framerate_max, 30);
    assert_int_equal(o.interval_min, 1);
    assert_int_equal(o.interval_max, 30);
    assert_int_equal(o.bitrate_min, 64);
    assert_int_equal(o.bitrate_max, 16384);
    assert_int_equal(o.gov_min, 1);
    assert_int_equal(o.gov_max, 300);
    assert_int_equal(o.profiles,
                     (1u << MEDIA_PROFILE_BASELINE) | (1u << MEDIA_PROFILE_MAIN) | (1u << MEDIA_PROFILE_HIGH));
    assert_int_equal(o.cbr_supported, 1);

    assert_int_equal(mediacfg_vec_options(fx->m, MEDIA_ENC_JPEG, &o), MEDIACFG_OK);
    assert_int_equal(o.encoding, MEDIA_ENC_JPEG);
    assert_resolutions(&o, want, 6);
    assert_int_equal(o.gov_min, 0);
    assert_int_equal(o.gov_max, 0);
    assert_int_equal(o.profiles, 0);
    assert_int_equal(o.cbr_supported, 0);
    assert_int_equal(o.framerate_max, 30);

    assert_int_equal(mediacfg_vec_options(fx->m, MEDIA_ENC_H265, &o), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_vec_options(fx->m, (enum media_encoding)7, &o), MEDIACFG_E_INVALID);

    struct media_vsc_options so;
    mediacfg_vsc_options(fx->m, &so);
    assert_int_equal(so.x_min, 0);
    assert_int_equal(so.x_max, 0);
    assert_int_equal(so.y_min, 0);
    assert_int_equal(so.y_max, 0);
    assert_int_equal(so.width_min, 1920);
    assert_int_equal(so.width_max, 1920);
    assert_int_equal(so.height_min, 1080);
    assert_int_equal(so.height_max, 1080);
    assert_int_equal(so.n_sources, 1);
    assert_string_equal(so.source_tokens[0], "VideoSource_1");
}

static void test_options_h265(void **state)
{
    struct fixture *fx = *state;
    struct media_vec_options o;
    assert_int_equal(mediacfg_vec_options(fx->m, MEDIA_ENC_H265, &o), MEDIACFG_OK);
    assert_int_equal(o.encoding, MEDIA_ENC_H265);
    assert_int_equal(o.profiles, 1u << MEDIA_PROFILE_MAIN);
    assert_int_equal(o.gov_min, 1);
    assert_int_equal(o.gov_max, 300);
    assert_int_equal(o.cbr_supported, 1);

    /* Main only. */
    struct media_vec v = get_vec(fx, "VideoEncoder_1");
    v.encoding = MEDIA_ENC_H265;
    v.profile = MEDIA_PROFILE_HIGH;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_E_INVALID);
    v.profile = MEDIA_PROFILE_BASELINE;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_E_INVALID);
    v.profile = MEDIA_PROFILE_MAIN;
    v.cbr = 1;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    assert_int_equal(get_vec(fx, "VideoEncoder_1").encoding, MEDIA_ENC_H265);

    int total, h264, jpeg, h265;
    assert_int_equal(mediacfg_guaranteed_instances(fx->m, "VideoSourceConfig_1", &total, &h264, &jpeg, &h265),
                     MEDIACFG_OK);
    assert_int_equal(total, 3);
    assert_int_equal(h264, 2);
    assert_int_equal(jpeg, 3);
    assert_int_equal(h265, 1);

    reopen(fx);
    assert_int_equal(get_vec(fx, "VideoEncoder_1").encoding, MEDIA_ENC_H265);
}

/* Opens a fresh configuration in a subdirectory for another source. */
static struct mediacfg *open_for(struct fixture *fx, const char *sub, int w, int h, int rate, unsigned enc)
{
    char dir[PATH_MAX];
    path_in(dir, fx->dir.path, sub);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct media_video_source s = { "VideoSource_1", w, h, rate };
    struct mediacfg *m = NULL;
    assert_int_equal(mediacfg_open(&m, dir, &s, enc), MEDIACFG_OK);
    return m;
}

static void test_resolutions_follow_the_source(void **state)
{
    struct fixture *fx = *state;
    struct media_vec_options o;

    /* 4:3 sources get the 4:3 sizes too. */
    struct mediacfg *m = open_for(fx, "xga", 1024, 768, 25, ENC_USUAL);
    static const struct media_resolution xga[] = {
        { 1024, 768 }, { 960, 540 }, { 800, 600 }, { 640, 480 }, { 640, 360 }, { 320, 240 }, { 320, 180 },
    };
    assert_int_equal(mediacfg_vec_options(m, MEDIA_ENC_H264, &o), MEDIACFG_OK);
    assert_resolutions(&o, xga, 7);
    assert_int_equal(o.framerate_max, 25);
    struct media_vec v;
    assert_int_equal(mediacfg_vec(m, "VideoEncoder_1", &v), MEDIACFG_OK);
    assert_int_equal(v.width, 1024);
    assert_int_equal(v.height, 768);
    assert_int_equal(v.gov_length, 50);
    mediacfg_close(m);

    /* Never more than MEDIA_MAX_RESOLUTIONS, never larger than the source,
     * the source size and QVGA always among them. */
    m = open_for(fx, "big", 4096, 3072, 60, ENC_USUAL);
    assert_int_equal(mediacfg_vec_options(m, MEDIA_ENC_JPEG, &o), MEDIACFG_OK);
    assert_int_equal(o.n_resolutions, MEDIA_MAX_RESOLUTIONS);
    int has_source = 0, has_qvga = 0;
    for (int i = 0; i < o.n_resolutions; i++) {
        assert_true(o.resolutions[i].width <= 4096 && o.resolutions[i].height <= 3072);
        if (i > 0)
            assert_true((long)o.resolutions[i].width * o.resolutions[i].height <
                        (long)o.resolutions[i - 1].width * o.resolutions[i - 1].height);
        has_source |= o.resolutions[i].width == 4096 && o.resolutions[i].height == 3072;
        has_qvga |= o.resolutions[i].width == 320 && o.resolutions[i].height == 240;
    }
    assert_true(has_source && has_qvga);
    assert_int_equal(mediacfg_vec(m, "VideoEncoder_1", &v), MEDIACFG_OK);
    assert_int_equal(v.gov_length, 120);
    mediacfg_close(m);

    /* A tiny source: only its own size; the sub streams take it. */
    m = open_for(fx, "tiny", 160, 120, 10, ENC_USUAL);
    static const struct media_resolution tiny[] = { { 160, 120 } };
    assert_int_equal(mediacfg_vec_options(m, MEDIA_ENC_H264, &o), MEDIACFG_OK);
    assert_resolutions(&o, tiny, 1);
    assert_int_equal(mediacfg_vec(m, "VideoEncoder_2", &v), MEDIACFG_OK);
    assert_int_equal(v.width, 160);
    assert_int_equal(v.height, 120);
    assert_int_equal(mediacfg_vec(m, "VideoEncoder_3", &v), MEDIACFG_OK);
    assert_int_equal(v.framerate, 10);
    mediacfg_close(m);

    /* Odd sizes are made even for 4:2:0 encoding; the VSC keeps the source. */
    m = open_for(fx, "odd", 1281, 721, 30, ENC_USUAL);
    assert_int_equal(mediacfg_vec_options(m, MEDIA_ENC_H264, &o), MEDIACFG_OK);
    assert_int_equal(o.resolutions[0].width, 1280);
    assert_int_equal(o.resolutions[0].height, 720);
    struct media_vsc c;
    assert_int_equal(mediacfg_vsc(m, "VideoSourceConfig_1", &c), MEDIACFG_OK);
    assert_int_equal(c.width, 1281);
    assert_int_equal(c.height, 721);
    mediacfg_close(m);
}

/* ---- profiles -------------------------------------------------------------------------- */

static void test_create_and_delete_profile(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1] = "";
    assert_int_equal(mediacfg_create_profile(fx->m, "NVR stream", "nvr-profile.01", tok), MEDIACFG_OK);
    assert_string_equal(tok, "nvr-profile.01");
    struct media_profile p = get_profile(fx, "nvr-profile.01");
    assert_string_equal(p.name, "NVR stream");
    assert_int_equal(p.fixed, 0);
    assert_string_equal(p.vsc_token, "");
    assert_string_equal(p.vec_token, "");

    /* No token: one is made up. */
    assert_int_equal(mediacfg_create_profile(fx->m, "Second", NULL, tok), MEDIACFG_OK);
    assert_string_equal(tok, "Profile_4");
    assert_int_equal(mediacfg_create_profile(fx->m, "Third", "", tok), MEDIACFG_OK);
    assert_string_equal(tok, "Profile_5");
    assert_int_equal(mediacfg_create_profile(fx->m, "Fourth", NULL, NULL), MEDIACFG_OK);

    struct media_profile all[MEDIA_MAX_PROFILES];
    assert_int_equal(mediacfg_profiles(fx->m, all, MEDIA_MAX_PROFILES), 7);
    assert_string_equal(all[3].token, "nvr-profile.01");
    assert_string_equal(all[6].token, "Profile_6");
    assert_int_equal(mediacfg_profiles(fx->m, all, 2), 2);
    assert_int_equal(mediacfg_profiles(fx->m, NULL, 2), 0);

    /* Same token again. */
    assert_int_equal(mediacfg_create_profile(fx->m, "Again", "nvr-profile.01", tok), MEDIACFG_E_EXISTS);
    assert_int_equal(mediacfg_create_profile(fx->m, "Again", "Profile_1", tok), MEDIACFG_E_EXISTS);

    assert_int_equal(mediacfg_delete_profile(fx->m, "nvr-profile.01"), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile(fx->m, "nvr-profile.01", &p), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(mediacfg_delete_profile(fx->m, "nvr-profile.01"), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(mediacfg_delete_profile(fx->m, NULL), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(mediacfg_profiles(fx->m, all, MEDIA_MAX_PROFILES), 6);

    /* Fixed profiles stay. */
    for (int i = 1; i <= 3; i++) {
        char fixed[16];
        snprintf(fixed, sizeof fixed, "Profile_%d", i);
        assert_int_equal(mediacfg_delete_profile(fx->m, fixed), MEDIACFG_E_FIXED);
        assert_int_equal(mediacfg_profile(fx->m, fixed, NULL), MEDIACFG_OK);
    }

    /* Generated tokens are not handed out again after a delete. */
    assert_int_equal(mediacfg_delete_profile(fx->m, "Profile_6"), MEDIACFG_OK);
    assert_int_equal(mediacfg_create_profile(fx->m, "Fifth", NULL, tok), MEDIACFG_OK);
    assert_string_equal(tok, "Profile_7");
    reopen(fx);
    assert_int_equal(mediacfg_create_profile(fx->m, "Sixth", NULL, tok), MEDIACFG_OK);
    assert_string_equal(tok, "Profile_8");
    /* ... and skip tokens a client took. */
    assert_int_equal(mediacfg_create_profile(fx->m, "Taken", "Profile_9", tok), MEDIACFG_OK);
    assert_int_equal(mediacfg_create_profile(fx->m, "Next", NULL, tok), MEDIACFG_OK);
    assert_string_equal(tok, "Profile_10");
}

static void test_profile_limit(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1];
    for (int i = 3; i < MEDIA_MAX_PROFILES; i++)
        assert_int_equal(mediacfg_create_profile(fx->m, "NVR", NULL, tok), MEDIACFG_OK);
    size_t len = 0;
    unsigned char *before = file_bytes(fx, &len);
    int calls = fx->n_calls;
    assert_int_equal(mediacfg_create_profile(fx->m, "One too many", NULL, tok), MEDIACFG_E_FULL);
    assert_int_equal(mediacfg_create_profile(fx->m, "One too many", "extra", tok), MEDIACFG_E_FULL);
    /* An existing token is still reported as such. */
    assert_int_equal(mediacfg_create_profile(fx->m, "One too many", "Profile_2", tok), MEDIACFG_E_EXISTS);
    assert_file_is(fx, before, len);
    assert_int_equal(fx->n_calls, calls);
    free(before);

    /* Room again after a delete. */
    assert_int_equal(mediacfg_delete_profile(fx->m, "Profile_10"), MEDIACFG_OK);
    assert_int_equal(mediacfg_create_profile(fx->m, "Fits", "extra", tok), MEDIACFG_OK);
    reopen(fx);
    struct media_profile all[MEDIA_MAX_PROFILES + 1];
    assert_int_equal(mediacfg_profiles(fx->m, all, MEDIA_MAX_PROFILES + 1), MEDIA_MAX_PROFILES);
}

static void test_create_profile_validation(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1];
    char long_name[MEDIA_NAME_MAX + 2], max_name[MEDIA_NAME_MAX + 1];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memset(max_name, 'n', sizeof max_name - 1);
    max_name[sizeof max_name - 1] = '\0';
    char long_token[MEDIA_TOKEN_MAX + 2], max_token[MEDIA_TOKEN_MAX + 1];
    memset(long_token, 't', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = '\0';
    memset(max_token, 't', sizeof max_token - 1);
    max_token[sizeof max_token - 1] = '\0';

    const char *bad_names[] = {
        "", long_name, "tab\there", "new\nline", "del\x7f", "c1\xc2\x85", "bad utf8 \xff", "cut \xc3",
        "overlong \xc0\xaf", "overlong \xe0\x80\xaf", "surrogate \xed\xa0\x80", "nonchar \xef\xbf\xbf",
        "nonchar \xef\xbf\xbe", "beyond \xf4\x90\x80\x80", NULL,
    };
    const char *bad_tokens[] = { "with space", "slash/no", "semi;colon", "quote\"", long_token, "caf\xc3\xa9",
                                 "amp&", "<x>" };
    size_t len = 0;
    unsigned char *before = file_bytes(fx, &len);
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_int_equal(mediacfg_create_profile(fx->m, bad_names[i], "good", tok), MEDIACFG_E_INVALID);
    for (size_t i = 0; i < sizeof bad_tokens / sizeof bad_tokens[0]; i++)
        assert_int_equal(mediacfg_create_profile(fx->m, "Good", bad_tokens[i], tok), MEDIACFG_E_INVALID);
    assert_file_is(fx, before, len);
    free(before);
    assert_int_equal(fx->n_calls, 0);
    struct media_profile all[MEDIA_MAX_PROFILES];
    assert_int_equal(mediacfg_profiles(fx->m, all, MEDIA_MAX_PROFILES), 3);

    /* The limits themselves, and names with markup and non-ASCII text. */
    assert_int_equal(mediacfg_create_profile(fx->m, max_name, max_token, tok), MEDIACFG_OK);
    assert_string_equal(tok, max_token);
    const char *odd = "Caméra <1> & \"quoted\" 'x' \xf0\x9f\x93\xb7";
    assert_int_equal(mediacfg_create_profile(fx->m, odd, "A-z_0.9", tok), MEDIACFG_OK);
    reopen(fx);
    assert_string_equal(get_profile(fx, max_token).name, max_name);
    assert_string_equal(get_profile(fx, "A-z_0.9").name, odd);
}

static void test_rename_profile(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(mediacfg_set_profile_name(fx->m, "Profile_1", "Front door"), MEDIACFG_OK);
    assert_string_equal(get_profile(fx, "Profile_1").name, "Front door");
    assert_int_equal(get_profile(fx, "Profile_1").fixed, 1);
    assert_int_equal(mediacfg_set_profile_name(fx->m, "Profile_1", ""), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_set_profile_name(fx->m, "Profile_1", NULL), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_set_profile_name(fx->m, "nope", "x"), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(fx->n_calls, 1);
    assert_int_equal(fx->calls[0].what, MEDIACFG_PROFILE_CHANGED);
    assert_string_equal(fx->calls[0].token, "Profile_1");
    /* The same name again changes nothing. */
    assert_int_equal(mediacfg_set_profile_name(fx->m, "Profile_1", "Front door"), MEDIACFG_OK);
    assert_int_equal(fx->n_calls, 1);
    reopen(fx);
    assert_string_equal(get_profile(fx, "Profile_1").name, "Front door");
}

/* ---- configurations in profiles ------------------------------------------------------------ */

static void test_add_remove_configurations(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1];
    assert_int_equal(mediacfg_create_profile(fx->m, "NVR", "nvr1", tok), MEDIACFG_OK);

    /* An encoder needs a source first. */
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", "VideoEncoder_1"), MEDIACFG_E_CONFLICT);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_1"), 1);

    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nvr1", "VideoSourceConfig_1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoSourceConfig_1"), 4);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", "VideoEncoder_1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_1"), 2);
    struct media_profile p = get_profile(fx, "nvr1");
    assert_string_equal(p.vsc_token, "VideoSourceConfig_1");
    assert_string_equal(p.vec_token, "VideoEncoder_1");

    /* Adding replaces. */
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", "VideoEncoder_2"), MEDIACFG_OK);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_1"), 1);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_2"), 2);

    /* Unknown things. */
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", "VideoEncoder_9"), MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", ""), MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", "VideoSourceConfig_1"), MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nvr1", "VideoEncoder_1"), MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nvr1", "VideoSourceConfig_2"), MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nope", "VideoSourceConfig_1"), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nope", "VideoEncoder_1"), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nope", NULL), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, NULL, NULL), MEDIACFG_E_NO_PROFILE);

    /* Removing the encoder keeps the source. */
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", NULL), MEDIACFG_OK);
    p = get_profile(fx, "nvr1");
    assert_string_equal(p.vsc_token, "VideoSourceConfig_1");
    assert_string_equal(p.vec_token, "");
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_2"), 1);
    /* Removing what is not there is no error. */
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", NULL), MEDIACFG_OK);

    /* Removing the source takes the encoder along. */
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", "VideoEncoder_3"), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nvr1", NULL), MEDIACFG_OK);
    p = get_profile(fx, "nvr1");
    assert_string_equal(p.vsc_token, "");
    assert_string_equal(p.vec_token, "");
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_3"), 1);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoSourceConfig_1"), 3);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nvr1", NULL), MEDIACFG_OK);

    /* Deleting a profile releases its configurations. */
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nvr1", "VideoSourceConfig_1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr1", "VideoEncoder_3"), MEDIACFG_OK);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_3"), 2);
    reopen(fx);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_3"), 2);
    assert_int_equal(mediacfg_delete_profile(fx->m, "nvr1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_3"), 1);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoSourceConfig_1"), 3);
}

static void test_fixed_profile_configurations_change(void **state)
{
    struct fixture *fx = *state;
    /* "fixed" means not deletable, not immutable. */
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "Profile_1", "VideoEncoder_3"), MEDIACFG_OK);
    assert_string_equal(get_profile(fx, "Profile_1").vec_token, "VideoEncoder_3");
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "Profile_2", NULL), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "Profile_3", NULL), MEDIACFG_OK);
    struct media_profile p = get_profile(fx, "Profile_3");
    assert_string_equal(p.vsc_token, "");
    assert_string_equal(p.vec_token, "");
    assert_int_equal(p.fixed, 1);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_1"), 0);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_2"), 0);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoEncoder_3"), 1);
    assert_int_equal(mediacfg_use_count(fx->m, "VideoSourceConfig_1"), 2);
    reopen(fx);
    assert_string_equal(get_profile(fx, "Profile_1").vec_token, "VideoEncoder_3");
    assert_string_equal(get_profile(fx, "Profile_2").vec_token, "");
    assert_string_equal(get_profile(fx, "Profile_3").vsc_token, "");
    assert_int_equal(get_profile(fx, "Profile_3").fixed, 1);
    assert_int_equal(mediacfg_delete_profile(fx->m, "Profile_3"), MEDIACFG_E_FIXED);
}

static void test_compatible_configurations(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1];
    struct media_vsc c[MEDIA_MAX_VSCS];
    struct media_vec v[MEDIA_MAX_VECS];
    assert_int_equal(mediacfg_create_profile(fx->m, "Empty", "empty", tok), MEDIACFG_OK);
    assert_int_equal(mediacfg_compatible_vscs(fx->m, "empty", c, MEDIA_MAX_VSCS), 1);
    assert_string_equal(c[0].token, "VideoSourceConfig_1");
    /* What Add would refuse is not compatible. */
    assert_int_equal(mediacfg_compatible_vecs(fx->m, "empty", v, MEDIA_MAX_VECS), 0);
    assert_int_equal(mediacfg_compatible_vecs(fx->m, "Profile_1", v, MEDIA_MAX_VECS), 3);
    assert_string_equal(v[2].token, "VideoEncoder_3");
    assert_int_equal(mediacfg_compatible_vecs(fx->m, "Profile_1", v, 1), 1);
    assert_int_equal(mediacfg_compatible_vecs(fx->m, "nope", v, MEDIA_MAX_VECS), MEDIACFG_E_NO_PROFILE);
    assert_int_equal(mediacfg_compatible_vscs(fx->m, "nope", c, MEDIA_MAX_VSCS), MEDIACFG_E_NO_PROFILE);
    /* Each compatible one is accepted. */
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "empty", c[0].token), MEDIACFG_OK);
    assert_int_equal(mediacfg_compatible_vecs(fx->m, "empty", v, MEDIA_MAX_VECS), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mediacfg_profile_set_vec(fx->m, "empty", v[i].token), MEDIACFG_OK);
}

/* ---- set_vec ------------------------------------------------------------------------------ */

static void test_set_vec_accepts_the_options(void **state)
{
    struct fixture *fx = *state;
    struct media_vec_options o;
    /* Every resolution, for each encoding, and each range's ends. */
    for (int e = 0; e < MEDIA_ENC_COUNT; e++) {
        if (mediacfg_vec_options(fx->m, (enum media_encoding)e, &o) != MEDIACFG_OK)
            continue;
        struct media_vec v = get_vec(fx, "VideoEncoder_2");
        v.encoding = (enum media_encoding)e;
        v.gov_length = o.gov_max;
        v.profile = e == MEDIA_ENC_JPEG ? MEDIA_PROFILE_BASELINE : MEDIA_PROFILE_MAIN;
        v.cbr = o.cbr_supported;
        for (int i = 0; i < o.n_resolutions; i++) {
            v.width = o.resolutions[i].width;
            v.height = o.resolutions[i].height;
            assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
        }
        int lo[] = { o.quality_min, o.framerate_min, o.interval_min, o.bitrate_min, o.gov_min };
        int hi[] = { o.quality_max, o.framerate_max, o.interval_max, o.bitrate_max, o.gov_max };
        for (int end = 0; end < 2; end++) {
            const int *x = end ? hi : lo;
            v.quality = x[0];
            v.framerate = x[1];
            v.encoding_interval = x[2];
            v.bitrate_kbps = x[3];
            v.gov_length = x[4];
            assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
            struct media_vec got = get_vec(fx, "VideoEncoder_2");
            assert_true(vec_same(&got, &v));
        }
        for (unsigned p = 0; p < 3; p++)
            if (o.profiles & (1u << p)) {
                v.profile = (enum media_h264_profile)p;
                assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
            }
    }

    /* Everything at once, and it survives a restart. */
    struct media_vec v = get_vec(fx, "VideoEncoder_1");
    snprintf(v.name, sizeof v.name, "Renamed <main> & co");
    v.encoding = MEDIA_ENC_H264;
    v.width = 1280;
    v.height = 720;
    v.quality = 33;
    v.framerate = 12;
    v.encoding_interval = 2;
    v.bitrate_kbps = 2500;
    v.cbr = 1;
    v.gov_length = 24;
    v.profile = MEDIA_PROFILE_HIGH;
    v.session_timeout_s = 120;
    snprintf(v.multicast.address, sizeof v.multicast.address, "ff15::1234");
    v.multicast.port = 50000;
    v.multicast.ttl = 16;
    v.multicast.autostart = 1;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    reopen(fx);
    struct media_vec got = get_vec(fx, "VideoEncoder_1");
    assert_true(vec_same(&got, &v));
}

typedef void (*vec_mutator)(struct media_vec *v);

static void bad_encoding_unavailable(struct media_vec *v) { v->encoding = MEDIA_ENC_H265; v->profile = MEDIA_PROFILE_MAIN; }
static void bad_encoding_value(struct media_vec *v) { v->encoding = (enum media_encoding)3; }
static void bad_encoding_negative(struct media_vec *v) { v->encoding = (enum media_encoding)-1; }
static void bad_resolution_not_listed(struct media_vec *v) { v->width = 1024; v->height = 576; }
static void bad_resolution_too_big(struct media_vec *v) { v->width = 3840; v->height = 2160; }
static void bad_resolution_mixed(struct media_vec *v) { v->width = 1920; v->height = 720; }
static void bad_resolution_zero(struct media_vec *v) { v->width = 0; v->height = 0; }
static void bad_quality_low(struct media_vec *v) { v->quality = -1; }
static void bad_quality_high(struct media_vec *v) { v->quality = 101; }
static void bad_framerate_zero(struct media_vec *v) { v->framerate = 0; }
static void bad_framerate_high(struct media_vec *v) { v->framerate = 31; }
static void bad_interval_zero(struct media_vec *v) { v->encoding_interval = 0; }
static void bad_interval_high(struct media_vec *v) { v->encoding_interval = 31; }
static void bad_cbr_value(struct media_vec *v) { v->cbr = 2; }
static void bad_gov_zero(struct media_vec *v) { v->gov_length = 0; }
static void bad_gov_high(struct media_vec *v) { v->gov_length = 301; }
static void bad_profile_value(struct media_vec *v) { v->profile = (enum media_h264_profile)3; }
static void bad_profile_negative(struct media_vec *v) { v->profile = (enum media_h264_profile)-1; }
static void bad_timeout_zero(struct media_vec *v) { v->session_timeout_s = 0; }
static void bad_timeout_high(struct media_vec *v) { v->session_timeout_s = 3601; }
static void bad_name_empty(struct media_vec *v) { v->name[0] = '\0'; }
static void bad_name_control(struct media_vec *v) { snprintf(v->name, sizeof v->name, "a\x1b[31m"); }
static void bad_name_utf8(struct media_vec *v) { snprintf(v->name, sizeof v->name, "x\xfe"); }
static void bad_name_unterminated(struct media_vec *v) { memset(v->name, 'a', sizeof v->name); }
static void bad_mc_unicast(struct media_vec *v) { snprintf(v->multicast.address, sizeof v->multicast.address, "192.168.1.10"); }
static void bad_mc_unicast6(struct media_vec *v) { snprintf(v->multicast.address, sizeof v->multicast.address, "2001:db8::1"); }
static void bad_mc_garbage(struct media_vec *v) { snprintf(v->multicast.address, sizeof v->multicast.address, "239.1.1.1 x"); }
static void bad_mc_hostname(struct media_vec *v) { snprintf(v->multicast.address, sizeof v->multicast.address, "mcast.example"); }
static void bad_mc_unterminated(struct media_vec *v) { memset(v->multicast.address, '1', sizeof v->multicast.address); }
static void bad_mc_port_odd(struct media_vec *v) { v->multicast.port = 40001; }
static void bad_mc_port_low(struct media_vec *v) { v->multicast.port = 1022; }
static void bad_mc_port_high(struct media_vec *v) { v->multicast.port = 65536; }
static void bad_mc_port_zero(struct media_vec *v) { v->multicast.port = 0; }
static void bad_mc_port_negative(struct media_vec *v) { v->multicast.port = -2; }
static void bad_mc_ttl_zero(struct media_vec *v) { v->multicast.ttl = 0; }
static void bad_mc_ttl_high(struct media_vec *v) { v->multicast.ttl = 256; }
static void bad_mc_autostart_value(struct media_vec *v) { v->multicast.autostart = 2; }
static void bad_mc_autostart_no_address(struct media_vec *v) { v->multicast.address[0] = '\0'; v->multicast.port = 0; v->multicast.autostart = 1; }
static void bad_mc_empty_odd_port(struct media_vec *v) { v->multicast.address[0] = '\0'; v->multicast.port = 3; }

static void bad_jpeg_cbr(struct media_vec *v) { v->encoding = MEDIA_ENC_JPEG; v->cbr = 1; }
static void bad_jpeg_framerate(struct media_vec *v) { v->encoding = MEDIA_ENC_JPEG; v->framerate = 31; }

static void test_set_vec_rejects_each_invalid_value(void **state)
{
    struct fixture *fx = *state;
    static const struct { const char *what; vec_mutator fn; } cases[] = {
        { "encoding unavailable", bad_encoding_unavailable },
        { "encoding value", bad_encoding_value },
        { "encoding negative", bad_encoding_negative },
        { "resolution not listed", bad_resolution_not_listed },
        { "resolution too big", bad_resolution_too_big },
        { "resolution mixed", bad_resolution_mixed },
        { "resolution zero", bad_resolution_zero },
        { "quality low", bad_quality_low },
        { "quality high", bad_quality_high },
        { "framerate zero", bad_framerate_zero },
        { "framerate high", bad_framerate_high },
        { "interval zero", bad_interval_zero },
        { "interval high", bad_interval_high },
        { "cbr value", bad_cbr_value },
        { "gov zero", bad_gov_zero },
        { "gov high", bad_gov_high },
        { "profile value", bad_profile_value },
        { "profile negative", bad_profile_negative },
        { "timeout zero", bad_timeout_zero },
        { "timeout high", bad_timeout_high },
        { "name empty", bad_name_empty },
        { "name control", bad_name_control },
        { "name utf8", bad_name_utf8 },
        { "name unterminated", bad_name_unterminated },
        { "multicast unicast", bad_mc_unicast },
        { "multicast unicast6", bad_mc_unicast6 },
        { "multicast garbage", bad_mc_garbage },
        { "multicast hostname", bad_mc_hostname },
        { "multicast unterminated", bad_mc_unterminated },
        { "multicast port odd", bad_mc_port_odd },
        { "multicast port low", bad_mc_port_low },
        { "multicast port high", bad_mc_port_high },
        { "multicast port zero", bad_mc_port_zero },
        { "multicast port negative", bad_mc_port_negative },
        { "multicast ttl zero", bad_mc_ttl_zero },
        { "multicast ttl high", bad_mc_ttl_high },
        { "multicast autostart value", bad_mc_autostart_value },
        { "multicast autostart without address", bad_mc_autostart_no_address },
        { "multicast no address, odd port", bad_mc_empty_odd_port },
        { "jpeg cbr", bad_jpeg_cbr },
        { "jpeg framerate", bad_jpeg_framerate },
    };
    size_t len = 0;
    unsigned char *before = file_bytes(fx, &len);
    struct media_vec all_before[MEDIA_MAX_VECS];
    assert_int_equal(mediacfg_vecs(fx->m, all_before, MEDIA_MAX_VECS), 3);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct media_vec v = get_vec(fx, "VideoEncoder_1");
        cases[i].fn(&v);
        int rc = mediacfg_set_vec(fx->m, &v);
        if (rc != MEDIACFG_E_INVALID)
            fail_msg("%s: got %d, expected MEDIACFG_E_INVALID", cases[i].what, rc);
        struct media_vec all_now[MEDIA_MAX_VECS];
        assert_int_equal(mediacfg_vecs(fx->m, all_now, MEDIA_MAX_VECS), 3);
        for (int k = 0; k < 3; k++)
            if (!vec_same(&all_now[k], &all_before[k]))
                fail_msg("%s: %s changed", cases[i].what, all_before[k].token);
        assert_file_is(fx, before, len);
    }
    assert_int_equal(fx->n_calls, 0);

    /* An unknown configuration, and an unterminated token. */
    struct media_vec v = get_vec(fx, "VideoEncoder_1");
    snprintf(v.token, sizeof v.token, "VideoEncoder_7");
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_E_NO_CONFIG);
    memset(v.token, 'V', sizeof v.token);
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_set_vec(fx->m, NULL), MEDIACFG_E_INVALID);
    assert_file_is(fx, before, len);
    free(before);
}

static void test_set_vec_adapts_what_onvif_says_to_adapt(void **state)
{
    struct fixture *fx = *state;
    /* An out-of-range BitrateLimit is brought into range, not refused. */
    struct media_vec v = get_vec(fx, "VideoEncoder_2");
    v.bitrate_kbps = 10;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    assert_int_equal(get_vec(fx, "VideoEncoder_2").bitrate_kbps, 64);
    v.bitrate_kbps = 1000000;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    assert_int_equal(get_vec(fx, "VideoEncoder_2").bitrate_kbps, 16384);
    v.bitrate_kbps = -5;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    assert_int_equal(get_vec(fx, "VideoEncoder_2").bitrate_kbps, 64);

    /* JPEG has no GOV or profile: what the caller left there is dropped. */
    v = get_vec(fx, "VideoEncoder_1");
    v.encoding = MEDIA_ENC_JPEG;
    v.gov_length = 60;
    v.profile = MEDIA_PROFILE_HIGH;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    struct media_vec got = get_vec(fx, "VideoEncoder_1");
    assert_int_equal(got.encoding, MEDIA_ENC_JPEG);
    assert_int_equal(got.gov_length, 0);
    assert_int_equal(got.profile, MEDIA_PROFILE_BASELINE);

    /* ... and back to H.264 needs real values again. */
    got.encoding = MEDIA_ENC_H264;
    assert_int_equal(mediacfg_set_vec(fx->m, &got), MEDIACFG_E_INVALID);
    got.gov_length = 30;
    assert_int_equal(mediacfg_set_vec(fx->m, &got), MEDIACFG_OK);

    /* An unspecified multicast address means none. */
    v = get_vec(fx, "VideoEncoder_3");
    snprintf(v.multicast.address, sizeof v.multicast.address, "0.0.0.0");
    v.multicast.port = 0;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    assert_string_equal(get_vec(fx, "VideoEncoder_3").multicast.address, "");
    snprintf(v.multicast.address, sizeof v.multicast.address, "::");
    v.multicast.port = 40004;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    got = get_vec(fx, "VideoEncoder_3");
    assert_string_equal(got.multicast.address, "");
    assert_int_equal(got.multicast.port, 40004);
    reopen(fx);
    assert_string_equal(get_vec(fx, "VideoEncoder_3").multicast.address, "");
}

static void test_set_vec_multicast_edges(void **state)
{
    struct fixture *fx = *state;
    const char *good[] = { "224.0.0.1", "239.255.255.255", "ff02::1", "ff3e::8000:1" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct media_vec v = get_vec(fx, "VideoEncoder_1");
        snprintf(v.multicast.address, sizeof v.multicast.address, "%s", good[i]);
        v.multicast.port = i % 2 ? 1024 : 65534;
        v.multicast.ttl = i % 2 ? 1 : 255;
        assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
        assert_string_equal(get_vec(fx, "VideoEncoder_1").multicast.address, good[i]);
    }
    const char *bad[] = { "223.255.255.255", "240.0.0.1", "fe80::1", "::1", "239.1.1", "0239.1.1.1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct media_vec v = get_vec(fx, "VideoEncoder_1");
        snprintf(v.multicast.address, sizeof v.multicast.address, "%s", bad[i]);
        if (mediacfg_set_vec(fx->m, &v) != MEDIACFG_E_INVALID)
            fail_msg("%s accepted", bad[i]);
    }
}

static void test_unchanged_configuration_is_not_written(void **state)
{
    struct fixture *fx = *state;
    /* With saving impossible, only a real change can fail. */
    char blocker[PATH_MAX];
    assert_true(snprintf(blocker, sizeof blocker, "%s/media.xml.tmp.%ld", fx->dir.path, (long)getpid()) <
                (int)sizeof blocker);
    assert_int_equal(mkdir(blocker, 0700), 0);
    struct media_vec v = get_vec(fx, "VideoEncoder_1");
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    struct media_vsc c;
    assert_int_equal(mediacfg_vsc(fx->m, "VideoSourceConfig_1", &c), MEDIACFG_OK);
    assert_int_equal(mediacfg_set_vsc(fx->m, &c), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "Profile_1", "VideoSourceConfig_1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "Profile_1", "VideoEncoder_1"), MEDIACFG_OK);
    assert_int_equal(fx->n_calls, 0);
    v.quality++;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_E_IO);
    assert_int_equal(rmdir(blocker), 0);
}

/* ---- set_vsc ----------------------------------------------------------------------------------- */

static void test_set_vsc(void **state)
{
    struct fixture *fx = *state;
    struct media_vsc c;
    assert_int_equal(mediacfg_vsc(fx->m, "VideoSourceConfig_1", &c), MEDIACFG_OK);
    snprintf(c.name, sizeof c.name, "Lobby camera");
    assert_int_equal(mediacfg_set_vsc(fx->m, &c), MEDIACFG_OK);
    assert_int_equal(fx->n_calls, 1);
    assert_int_equal(fx->calls[0].what, MEDIACFG_VSC_CHANGED);
    assert_string_equal(fx->calls[0].token, "VideoSourceConfig_1");
    assert_true(fx->calls[0].seen_in_state);

    size_t len = 0;
    unsigned char *before = file_bytes(fx, &len);
    struct media_vsc bad;
    int (*const bounds[][4]) = { 0 };
    (void)bounds;
    const int cases[][4] = {
        { 10, 0, 1910, 1080 }, { 0, 10, 1920, 1070 }, { 0, 0, 1280, 720 }, { 0, 0, 1921, 1080 },
        { 0, 0, 1920, 1081 }, { -1, 0, 1920, 1080 }, { 0, 0, 0, 0 }, { 1, 1, 1920, 1080 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad = c;
        bad.x = cases[i][0];
        bad.y = cases[i][1];
        bad.width = cases[i][2];
        bad.height = cases[i][3];
        assert_int_equal(mediacfg_set_vsc(fx->m, &bad), MEDIACFG_E_INVALID);
    }
    bad = c;
    snprintf(bad.source_token, sizeof bad.source_token, "VideoSource_2");
    assert_int_equal(mediacfg_set_vsc(fx->m, &bad), MEDIACFG_E_INVALID);
    bad = c;
    bad.name[0] = '\0';
    assert_int_equal(mediacfg_set_vsc(fx->m, &bad), MEDIACFG_E_INVALID);
    bad = c;
    snprintf(bad.name, sizeof bad.name, "bell\a");
    assert_int_equal(mediacfg_set_vsc(fx->m, &bad), MEDIACFG_E_INVALID);
    bad = c;
    snprintf(bad.token, sizeof bad.token, "VideoSourceConfig_2");
    assert_int_equal(mediacfg_set_vsc(fx->m, &bad), MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_set_vsc(fx->m, NULL), MEDIACFG_E_INVALID);
    assert_file_is(fx, before, len);
    free(before);
    assert_int_equal(fx->n_calls, 1);

    reopen(fx);
    assert_int_equal(mediacfg_vsc(fx->m, "VideoSourceConfig_1", &c), MEDIACFG_OK);
    assert_string_equal(c.name, "Lobby camera");
    assert_int_equal(mediacfg_vsc(fx->m, "nope", &c), MEDIACFG_E_NO_CONFIG);
}

/* ---- persistence ------------------------------------------------------------------------------- */

static void test_everything_survives_a_restart(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1];
    assert_int_equal(mediacfg_create_profile(fx->m, "NVR \"main\" <1>", "nvr_main", tok), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "nvr_main", "VideoSourceConfig_1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "nvr_main", "VideoEncoder_2"), MEDIACFG_OK);
    assert_int_equal(mediacfg_create_profile(fx->m, "Только имя", NULL, tok), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, tok, "VideoSourceConfig_1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "Profile_2", NULL), MEDIACFG_OK);
    struct media_vec v = get_vec(fx, "VideoEncoder_3");
    v.quality = 95;
    v.framerate = 5;
    snprintf(v.name, sizeof v.name, "Snap & shot");
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);

    struct media_profile p_before[MEDIA_MAX_PROFILES];
    struct media_vec v_before[MEDIA_MAX_VECS];
    struct media_vsc c_before[MEDIA_MAX_VSCS];
    int np = mediacfg_profiles(fx->m, p_before, MEDIA_MAX_PROFILES);
    int nv = mediacfg_vecs(fx->m, v_before, MEDIA_MAX_VECS);
    int nc = mediacfg_vscs(fx->m, c_before, MEDIA_MAX_VSCS);
    size_t len = 0;
    unsigned char *file_before = file_bytes(fx, &len);

    reopen(fx);
    struct media_profile p_after[MEDIA_MAX_PROFILES];
    struct media_vec v_after[MEDIA_MAX_VECS];
    struct media_vsc c_after[MEDIA_MAX_VSCS];
    assert_int_equal(mediacfg_profiles(fx->m, p_after, MEDIA_MAX_PROFILES), np);
    assert_int_equal(mediacfg_vecs(fx->m, v_after, MEDIA_MAX_VECS), nv);
    assert_int_equal(mediacfg_vscs(fx->m, c_after, MEDIA_MAX_VSCS), nc);
    for (int i = 0; i < np; i++)
        assert_true(profile_same(&p_before[i], &p_after[i]));
    for (int i = 0; i < nv; i++)
        assert_true(vec_same(&v_before[i], &v_after[i]));
    assert_string_equal(c_after[0].name, c_before[0].name);
    /* Reading does not rewrite. */
    assert_file_is(fx, file_before, len);
    free(file_before);
    assert_int_equal(n_warnings, 0);
}

static void test_unusable_file_is_kept_aside(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX], bad[PATH_MAX];
    media_path(fx, path);
    path_in(bad, fx->dir.path, "media.xml.bad");
    const char *garbage[] = { "", "not xml at all", "<media version=\"1\"", "<?xml version=\"1.0\"?><other/>",
                              "\x00\x01\x02" };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        char tok[MEDIA_TOKEN_MAX + 1];
        assert_int_equal(mediacfg_create_profile(fx->m, "Lost", "lost", tok), MEDIACFG_OK);
        mediacfg_close(fx->m);
        fx->m = NULL;
        assert_int_equal(write_text_file(path, garbage[i]), 0);
        n_warnings = 0;
        assert_int_equal(open_fx(fx), MEDIACFG_OK);
        assert_defaults(fx->m);
        assert_int_equal(n_warnings, 1);
        assert_non_null(strstr(last_warning, "media.xml.bad"));
        char *kept = read_text_file(bad);
        assert_non_null(kept);
        assert_string_equal(kept, garbage[i]);
        free(kept);
        /* The defaults are on disk again and read back quietly. */
        reopen(fx);
        assert_defaults(fx->m);
        assert_int_equal(n_warnings, 1);
    }

    /* Too big to be ours. */
    mediacfg_close(fx->m);
    fx->m = NULL;
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[big] = '\0';
    assert_int_equal(write_text_file(path, huge), 0);
    free(huge);
    assert_int_equal(open_fx(fx), MEDIACFG_OK);
    assert_defaults(fx->m);
    struct stat st;
    assert_int_equal(stat(bad, &st), 0);
    assert_int_equal(st.st_size, (off_t)big);
}

/* Replaces the first `from` in s (which must contain it) by `to`. */
static char *replace_once(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at)
        fail_msg("pattern not in the file: %s", from);
    size_t head = (size_t)(at - s), flen = strlen(from), tlen = strlen(to), rest = strlen(at + flen);
    char *out = malloc(head + tlen + rest + 1);
    assert_non_null(out);
    memcpy(out, s, head);
    memcpy(out + head, to, tlen);
    memcpy(out + head + tlen, at + flen, rest + 1);
    return out;
}

static void test_tampered_values_are_refused(void **state)
{
    struct fixture *fx = *state;
    static const struct { const char *from, *to; } edits[] = {
        /* values outside the options */
        { "bitrate-kbps=\"4096\"", "bitrate-kbps=\"99999\"" },
        { "bitrate-kbps=\"4096\"", "bitrate-kbps=\"63\"" },
        { "width=\"640\" height=\"360\"", "width=\"641\" height=\"360\"" },
        { "width=\"1920\" height=\"1080\" quality", "width=\"3840\" height=\"2160\" quality" },
        { "quality=\"70\"", "quality=\"101\"" },
        { "quality=\"70\"", "quality=\"-1\"" },
        { "framerate=\"30\"", "framerate=\"31\"" },
        { "framerate=\"30\"", "framerate=\"0\"" },
        { "encoding-interval=\"1\"", "encoding-interval=\"0\"" },
        { "gov-length=\"60\"", "gov-length=\"301\"" },
        { "gov-length=\"0\"", "gov-length=\"30\"" },
        { "profile=\"Baseline\"", "profile=\"High\"" },
        { "encoding=\"H264\"", "encoding=\"H265\"" },
        { "encoding=\"H264\"", "encoding=\"MPEG4\"" },
        { "name=\"JPEG\" encoding=\"JPEG\"", "name=\"JPEG\" encoding=\"JPEG\" constant-bitrate=\"true\"" },
        { "constant-bitrate=\"false\"", "constant-bitrate=\"1\"" },
        { "session-timeout=\"60\"", "session-timeout=\"0\"" },
        { "address=\"239.255.0.1\"", "address=\"10.0.0.1\"" },
        { "port=\"40000\"", "port=\"40001\"" },
        { "port=\"40000\"", "port=\"80\"" },
        { "ttl=\"1\"", "ttl=\"0\"" },
        { "ttl=\"1\"", "ttl=\"300\"" },
        { "autostart=\"false\"", "autostart=\"yes\"" },
        { "x=\"0\"", "x=\"5\"" },
        { "width=\"1920\" height=\"1080\"/>", "width=\"1280\" height=\"720\"/>" },
        { "source=\"VideoSource_1\"", "source=\"VideoSource_2\"" },
        /* malformed numbers */
        { "quality=\"70\"", "quality=\"70abc\"" },
        { "quality=\"70\"", "quality=\" 70\"" },
        { "quality=\"70\"", "quality=\"\"" },
        { "quality=\"70\"", "quality=\"99999999999\"" },
        { "quality=\"70\"", "quality=\"+70\"" },
        /* names and tokens */
        { "name=\"MainStream\" fixed", "name=\"\" fixed" },
        { "name=\"MainStream\" fixed", "name=\"a&#1;b\" fixed" },
        { "name=\"MainStream\" fixed", "name=\"a&#x7f;b\" fixed" },
        { "name=\"MainStream\" fixed",
          "name=\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\" fixed" },
        { "token=\"Profile_1\"", "token=\"Profile 1\"" },
        /* references */
        { "vec=\"VideoEncoder_1\"", "vec=\"VideoEncoder_9\"" },
        { "vec=\"VideoEncoder_1\"", "vec=\"\"" },
        { "vsc=\"VideoSourceConfig_1\" vec=\"VideoEncoder_1\"", "vec=\"VideoEncoder_1\"" },
        { "vsc=\"VideoSourceConfig_1\" vec=\"VideoEncoder_1\"", "vsc=\"VideoEncoder_2\"" },
        { "token=\"VideoEncoder_2\"", "token=\"VideoEncoder_1\"" },
        { "token=\"VideoEncoder_2\"", "token=\"VideoEncoder_4\"" },
        { "token=\"VideoSourceConfig_1\"", "token=\"VideoSourceConfig_2\"" },
        /* fixed profiles */
        { "fixed=\"true\"", "fixed=\"false\"" },
        { "token=\"Profile_3\" name=\"JPEG\" fixed=\"true\"", "token=\"Profile_2\" name=\"JPEG\" fixed=\"true\"" },
        { "token=\"Profile_3\" name=\"JPEG\" fixed=\"true\"", "token=\"Mine\" name=\"JPEG\" fixed=\"true\"" },
        /* structure */
        { "<media version=\"1\"", "<media version=\"2\"" },
        { "<media version=\"1\"", "<media" },
        { "next-profile=\"4\"", "next-profile=\"0\"" },
        { "next-profile=\"4\"", "next-profile=\"4\" extra=\"1\"" },
        { "<profile token=\"Profile_1\"", "<thing/><profile token=\"Profile_1\"" },
        { "<profile token=\"Profile_1\"", "<profile colour=\"red\" token=\"Profile_1\"" },
        { "<profile token=\"Profile_1\" name=\"MainStream\" fixed=\"true\" vsc=\"VideoSourceConfig_1\" vec=\"VideoEncoder_1\"/>",
          "<profile token=\"Profile_1\" name=\"MainStream\" fixed=\"true\" vsc=\"VideoSourceConfig_1\" vec=\"VideoEncoder_1\">text</profile>" },
        { "<multicast address=\"239.255.0.1\" port=\"40000\" ttl=\"1\" autostart=\"false\"/>", "" },
        { "<multicast address=\"239.255.0.1\" port=\"40000\" ttl=\"1\" autostart=\"false\"/>",
          "<multicast address=\"239.255.0.1\" port=\"40000\" ttl=\"1\" autostart=\"false\"/>"
          "<multicast address=\"239.255.0.1\" port=\"40000\" ttl=\"1\" autostart=\"false\"/>" },
        { "<multicast address=\"239.255.0.1\" port=\"40000\" ttl=\"1\"", "<multicast port=\"40000\" ttl=\"1\"" },
        { "<media version", "<!DOCTYPE media [<!ENTITY e \"x\">]><media version" },
        { "<media version", "<media xmlns=\"urn:x\" version" },
        { "<profile token=\"Profile_1\"", "<profile token=\"Profile_1\" name=\"Again\" fixed=\"false\"/><profile token=\"Profile_1\"" },
    };
    char path[PATH_MAX], bad[PATH_MAX];
    media_path(fx, path);
    path_in(bad, fx->dir.path, "media.xml.bad");
    char *pristine = read_text_file(path);
    assert_non_null(pristine);

    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *tampered = replace_once(pristine, edits[i].from, edits[i].to);
        mediacfg_close(fx->m);
        fx->m = NULL;
        assert_int_equal(write_text_file(path, tampered), 0);
        n_warnings = 0;
        assert_int_equal(open_fx(fx), MEDIACFG_OK);
        if (n_warnings != 1)
            fail_msg("edit %zu (%s -> %s) accepted", i, edits[i].from, edits[i].to);
        assert_defaults(fx->m);
        char *kept = read_text_file(bad);
        assert_non_null(kept);
        assert_string_equal(kept, tampered);
        free(kept);
        free(tampered);
        char *now = read_text_file(path);
        assert_string_equal(now, pristine);
        free(now);
    }

    /* Harmless differences are fine: other whitespace, a comment, another
     * attribute order, a client's profile. */
    char *a = replace_once(pristine, "\n  <vsc", "\n\n\t<!-- note -->\n  <vsc");
    char *b = replace_once(a, "token=\"Profile_2\" name=\"SubStream\"", "name=\"SubStream\" token=\"Profile_2\"");
    char *c = replace_once(b, "</media>",
                           "<profile token=\"client\" name=\"Client\" fixed=\"false\" vsc=\"VideoSourceConfig_1\"/></media>");
    mediacfg_close(fx->m);
    fx->m = NULL;
    assert_int_equal(write_text_file(path, c), 0);
    n_warnings = 0;
    assert_int_equal(open_fx(fx), MEDIACFG_OK);
    assert_int_equal(n_warnings, 0);
    struct media_profile p = get_profile(fx, "client");
    assert_string_equal(p.vsc_token, "VideoSourceConfig_1");
    assert_string_equal(p.vec_token, "");
    free(a);
    free(b);
    free(c);
    free(pristine);
}

static void test_changed_source_resets(void **state)
{
    struct fixture *fx = *state;
    struct media_vec v = get_vec(fx, "VideoEncoder_1");
    v.quality = 10;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    mediacfg_close(fx->m);
    fx->m = NULL;
    /* A smaller camera: 1920x1080 is no longer an option. */
    fx->source.width = 1280;
    fx->source.height = 720;
    n_warnings = 0;
    assert_int_equal(open_fx(fx), MEDIACFG_OK);
    assert_int_equal(n_warnings, 1);
    v = get_vec(fx, "VideoEncoder_1");
    assert_int_equal(v.width, 1280);
    assert_int_equal(v.quality, 70);
    struct media_vsc c;
    assert_int_equal(mediacfg_vsc(fx->m, "VideoSourceConfig_1", &c), MEDIACFG_OK);
    assert_int_equal(c.width, 1280);
}

static void test_failed_save_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1];
    assert_int_equal(mediacfg_create_profile(fx->m, "Client", "client", tok), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "client", "VideoSourceConfig_1"), MEDIACFG_OK);
    int calls = fx->n_calls;
    size_t len = 0;
    unsigned char *before = file_bytes(fx, &len);

    char blocker[PATH_MAX];
    assert_true(snprintf(blocker, sizeof blocker, "%s/media.xml.tmp.%ld", fx->dir.path, (long)getpid()) <
                (int)sizeof blocker);
    assert_int_equal(mkdir(blocker, 0700), 0);

    assert_int_equal(mediacfg_create_profile(fx->m, "X", "x", tok), MEDIACFG_E_IO);
    assert_int_equal(mediacfg_create_profile(fx->m, "X", NULL, tok), MEDIACFG_E_IO);
    assert_int_equal(mediacfg_delete_profile(fx->m, "client"), MEDIACFG_E_IO);
    assert_int_equal(mediacfg_set_profile_name(fx->m, "client", "Y"), MEDIACFG_E_IO);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "client", "VideoEncoder_1"), MEDIACFG_E_IO);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "client", NULL), MEDIACFG_E_IO);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "Profile_1", NULL), MEDIACFG_E_IO);
    struct media_vec v = get_vec(fx, "VideoEncoder_1");
    v.quality = 1;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_E_IO);
    struct media_vsc c;
    assert_int_equal(mediacfg_vsc(fx->m, "VideoSourceConfig_1", &c), MEDIACFG_OK);
    snprintf(c.name, sizeof c.name, "Other");
    assert_int_equal(mediacfg_set_vsc(fx->m, &c), MEDIACFG_E_IO);

    assert_int_equal(fx->n_calls, calls);
    assert_file_is(fx, before, len);
    free(before);
    assert_int_equal(mediacfg_profile(fx->m, "x", NULL), MEDIACFG_E_NO_PROFILE);
    struct media_profile p = get_profile(fx, "client");
    assert_string_equal(p.name, "Client");
    assert_string_equal(p.vsc_token, "VideoSourceConfig_1");
    assert_string_equal(p.vec_token, "");
    assert_string_equal(get_profile(fx, "Profile_1").vec_token, "VideoEncoder_1");
    assert_int_equal(get_vec(fx, "VideoEncoder_1").quality, 70);
    assert_int_equal(mediacfg_vsc(fx->m, "VideoSourceConfig_1", &c), MEDIACFG_OK);
    assert_string_equal(c.name, "VideoSourceConfig_1");

    /* Once saving works again, the generated token was not used up. */
    assert_int_equal(rmdir(blocker), 0);
    assert_int_equal(mediacfg_create_profile(fx->m, "X", NULL, tok), MEDIACFG_OK);
    assert_string_equal(tok, "Profile_4");
}

/* ---- listener --------------------------------------------------------------------------------------- */

static void assert_call(struct fixture *fx, int i, enum mediacfg_change what, const char *token)
{
    assert_true(i < fx->n_calls);
    assert_int_equal(fx->calls[i].what, what);
    assert_string_equal(fx->calls[i].token, token);
    assert_true(fx->calls[i].seen_in_state);
}

static void test_listener(void **state)
{
    struct fixture *fx = *state;
    char tok[MEDIA_TOKEN_MAX + 1];
    assert_int_equal(mediacfg_create_profile(fx->m, "L", "lp", tok), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "lp", "VideoSourceConfig_1"), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "lp", "VideoEncoder_2"), MEDIACFG_OK);
    struct media_vec v = get_vec(fx, "VideoEncoder_2");
    v.framerate = 10;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    assert_int_equal(mediacfg_profile_set_vsc(fx->m, "lp", NULL), MEDIACFG_OK);
    assert_int_equal(mediacfg_delete_profile(fx->m, "lp"), MEDIACFG_OK);
    assert_int_equal(fx->n_calls, 6);
    assert_call(fx, 0, MEDIACFG_PROFILE_CREATED, "lp");
    assert_call(fx, 1, MEDIACFG_PROFILE_CHANGED, "lp");
    assert_call(fx, 2, MEDIACFG_PROFILE_CHANGED, "lp");
    assert_call(fx, 3, MEDIACFG_VEC_CHANGED, "VideoEncoder_2");
    assert_call(fx, 4, MEDIACFG_PROFILE_CHANGED, "lp");
    assert_call(fx, 5, MEDIACFG_PROFILE_DELETED, "lp");

    /* Refused changes and no-ops are not announced. */
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_OK);
    v.framerate = 99;
    assert_int_equal(mediacfg_set_vec(fx->m, &v), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_delete_profile(fx->m, "Profile_1"), MEDIACFG_E_FIXED);
    assert_int_equal(mediacfg_profile_set_vec(fx->m, "Profile_1", "VideoEncoder_1"), MEDIACFG_OK);
    assert_int_equal(fx->n_calls, 6);

    /* Generated tokens are announced as made. */
    assert_int_equal(mediacfg_create_profile(fx->m, "Auto", NULL, tok), MEDIACFG_OK);
    assert_call(fx, 6, MEDIACFG_PROFILE_CREATED, tok);

    /* No listener: changes still work. */
    mediacfg_set_listener(fx->m, NULL, NULL);
    assert_int_equal(mediacfg_delete_profile(fx->m, tok), MEDIACFG_OK);
    assert_int_equal(fx->n_calls, 7);
}

/* ---- instances, names, arguments ------------------------------------------------------------------ */

static void test_guaranteed_instances(void **state)
{
    struct fixture *fx = *state;
    int total = -1, h264 = -1, jpeg = -1, h265 = -1;
    assert_int_equal(mediacfg_guaranteed_instances(fx->m, "VideoSourceConfig_1", &total, &h264, &jpeg, &h265),
                     MEDIACFG_OK);
    assert_int_equal(total, 3);
    assert_int_equal(h264, 2);
    assert_int_equal(jpeg, 3);
    assert_int_equal(h265, 0);
    assert_true(total <= MEDIA_MAX_PROFILES);
    assert_int_equal(mediacfg_guaranteed_instances(fx->m, "VideoSourceConfig_1", &total, NULL, NULL, NULL),
                     MEDIACFG_OK);
    assert_int_equal(mediacfg_guaranteed_instances(fx->m, "VideoEncoder_1", &total, &h264, &jpeg, &h265),
                     MEDIACFG_E_NO_CONFIG);
    assert_int_equal(mediacfg_guaranteed_instances(fx->m, NULL, &total, &h264, &jpeg, &h265), MEDIACFG_E_NO_CONFIG);
}

static void test_names_and_errors(void **state)
{
    (void)state;
    assert_string_equal(media_encoding_name(MEDIA_ENC_H264), "H264");
    assert_string_equal(media_encoding_name(MEDIA_ENC_JPEG), "JPEG");
    assert_string_equal(media_encoding_name(MEDIA_ENC_H265), "H265");
    assert_string_equal(media_encoding_name((enum media_encoding)9), "?");
    enum media_encoding e;
    assert_int_equal(media_encoding_from_name("H264", &e), 0);
    assert_int_equal(e, MEDIA_ENC_H264);
    assert_int_equal(media_encoding_from_name("jpeg", &e), 0);
    assert_int_equal(e, MEDIA_ENC_JPEG);
    assert_int_equal(media_encoding_from_name("H265", &e), 0);
    assert_int_equal(e, MEDIA_ENC_H265);
    assert_int_equal(media_encoding_from_name("MPEG4", &e), -1);
    assert_int_equal(media_encoding_from_name("", &e), -1);
    assert_int_equal(media_encoding_from_name(NULL, &e), -1);

    assert_string_equal(media_h264_profile_name(MEDIA_PROFILE_BASELINE), "Baseline");
    assert_string_equal(media_h264_profile_name(MEDIA_PROFILE_MAIN), "Main");
    assert_string_equal(media_h264_profile_name(MEDIA_PROFILE_HIGH), "High");
    assert_string_equal(media_h264_profile_name((enum media_h264_profile)5), "?");
    enum media_h264_profile p;
    assert_int_equal(media_h264_profile_from_name("High", &p), 0);
    assert_int_equal(p, MEDIA_PROFILE_HIGH);
    assert_int_equal(media_h264_profile_from_name("main", &p), 0);
    assert_int_equal(p, MEDIA_PROFILE_MAIN);
    assert_int_equal(media_h264_profile_from_name("Extended", &p), -1);
    assert_int_equal(media_h264_profile_from_name(NULL, &p), -1);

    const int codes[] = { MEDIACFG_OK, MEDIACFG_E_NO_PROFILE, MEDIACFG_E_NO_CONFIG, MEDIACFG_E_FIXED,
                          MEDIACFG_E_EXISTS, MEDIACFG_E_FULL, MEDIACFG_E_INVALID, MEDIACFG_E_CONFLICT,
                          MEDIACFG_E_IO, MEDIACFG_E_NOMEM, MEDIACFG_E_NO_SOURCE };
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *text = mediacfg_strerror(codes[i]);
        assert_non_null(text);
        assert_string_not_equal(text, "unknown error");
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(text, mediacfg_strerror(codes[k]));
    }
    assert_string_equal(mediacfg_strerror(-999), "unknown error");
}

static void test_open_arguments(void **state)
{
    struct fixture *fx = *state;
    struct mediacfg *m = (struct mediacfg *)fx;      /* any non-NULL value */
    char dir[PATH_MAX];
    path_in(dir, fx->dir.path, "args");
    assert_int_equal(mkdir(dir, 0700), 0);

    assert_int_equal(mediacfg_open(&m, dir, NULL, ENC_USUAL), MEDIACFG_E_NO_SOURCE);
    assert_null(m);
    const struct media_video_source bad_sources[] = {
        { "", 1920, 1080, 30 }, { "Video Source", 1920, 1080, 30 }, { "VideoSource_1", 0, 1080, 30 },
        { "VideoSource_1", 1920, 8, 30 }, { "VideoSource_1", 1920, 1080, 0 }, { "VideoSource_1", 20000, 1080, 30 },
    };
    for (size_t i = 0; i < sizeof bad_sources / sizeof bad_sources[0]; i++)
        assert_int_equal(mediacfg_open(&m, dir, &bad_sources[i], ENC_USUAL), MEDIACFG_E_NO_SOURCE);
    assert_int_equal(mediacfg_open(&m, dir, &full_hd, 0), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_open(&m, dir, &full_hd, 1u << 8), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_open(&m, NULL, &full_hd, ENC_USUAL), MEDIACFG_E_INVALID);
    assert_int_equal(mediacfg_open(NULL, dir, &full_hd, ENC_USUAL), MEDIACFG_E_INVALID);
    assert_int_equal(count_dir_entries(dir), 0);

    /* A state directory that is not there cannot hold the defaults. */
    char missing[PATH_MAX];
    assert_int_equal(mediacfg_open(&m, path_in(missing, dir, "missing"), &full_hd, ENC_USUAL), MEDIACFG_E_IO);
    assert_null(m);

    /* Unknown encoding bits are ignored. */
    assert_int_equal(mediacfg_open(&m, dir, &full_hd, ENC_USUAL | (1u << 9)), MEDIACFG_OK);
    assert_int_equal(mediacfg_encodings(m), ENC_USUAL);
    mediacfg_close(m);
    mediacfg_close(NULL);
}

/* ---- threads ------------------------------------------------------------------------------------------- */

struct worker {
    struct mediacfg *m;
    int id;
    int failures;
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 10; i++) {
        char token[32], out[MEDIA_TOKEN_MAX + 1];
        snprintf(token, sizeof token, "t%d_%d", w->id, i);
        if (mediacfg_create_profile(w->m, "Churn", token, out) != MEDIACFG_OK ||
            mediacfg_profile_set_vsc(w->m, token, "VideoSourceConfig_1") != MEDIACFG_OK ||
            mediacfg_profile_set_vec(w->m, token, "VideoEncoder_1") != MEDIACFG_OK ||
            mediacfg_use_count(w->m, "VideoEncoder_1") < 2 || mediacfg_delete_profile(w->m, token) != MEDIACFG_OK)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent_changes(void **state)
{
    struct fixture *fx = *state;
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ fx->m, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(fx->n_events, 4 * 10 * 4);
    reopen(fx);
    assert_defaults(fx->m);
}

int main(void)
{
    log_set_sink(capture_log, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jpeg_only_machine, setup_jpeg_only, teardown),
        cmocka_unit_test_setup_teardown(test_machine_without_jpeg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_per_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_h265, setup_all_codecs, teardown),
        cmocka_unit_test_setup_teardown(test_resolutions_follow_the_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_and_delete_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_profile_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_remove_configurations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_profile_configurations_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compatible_configurations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_vec_accepts_the_options, setup_all_codecs, teardown),
        cmocka_unit_test_setup_teardown(test_set_vec_rejects_each_invalid_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_vec_adapts_what_onvif_says_to_adapt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_vec_multicast_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_configuration_is_not_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_vsc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_everything_survives_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_file_is_kept_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_values_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_source_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_save_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guaranteed_instances, setup, teardown),
        cmocka_unit_test(test_names_and_errors),
        cmocka_unit_test_setup_teardown(test_open_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_changes, setup, teardown),
    };
    return cmocka_run_group_tests_name("mediacfg", tests, NULL, NULL);
}
