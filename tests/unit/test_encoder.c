/* Unit tests for encoder: which encodings exist, H.264 parameter sets right
 * after open and in band before every IDR, the keyframe rhythm and forced
 * IDRs, profiles, scaling checked by decoding the output with libavcodec,
 * H.265 when libx265 is present, MJPEG pictures (size, range, quality),
 * refused parameters and one-shot JPEG snapshots. Source frames come from
 * the built-in test pattern. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>

#include "opennvt/encoder.h"
#include "opennvt/log.h"
#include "opennvt/source.h"
#include "unit_helpers.h"

#define MAX_OUTPUTS 128

struct output {
    uint8_t *data;
    size_t len;
    int keyframe;
    int64_t pts_us;
};

struct outputs {
    struct output o[MAX_OUTPUTS];
    int n;
};

static void collect(void *arg, const struct encoder_output *out)
{
    struct outputs *c = arg;
    assert_true(c->n < MAX_OUTPUTS);
    assert_non_null(out->data);
    assert_true(out->len > 0);
    struct output *o = &c->o[c->n++];
    o->data = malloc(out->len);
    assert_non_null(o->data);
    memcpy(o->data, out->data, out->len);
    o->len = out->len;
    o->keyframe = out->keyframe;
    o->pts_us = out->pts_us;
}

static void outputs_free(struct outputs *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->o[i].data);
    free(c);
}

static struct outputs *outputs_new(void)
{
    struct outputs *c = calloc(1, sizeof *c);
    assert_non_null(c);
    return c;
}

static void quiet(void)
{
    av_log_set_level(AV_LOG_ERROR);
    log_set_level(LOG_LVL_WARNING);
}

static struct source *pattern(int w, int h)
{
    struct source_settings s = { "testsrc", w, h, 30 };
    struct source *src = NULL;
    assert_int_equal(source_open(&src, &s), SOURCE_OK);
    return src;
}

/* A new picture of the moving pattern (drawn on demand while not capturing). */
static AVFrame *next_picture(struct source *src)
{
    AVFrame *f = NULL;
    assert_int_equal(source_latest_frame(src, 1000, &f), SOURCE_OK);
    assert_non_null(f);
    return f;
}

/* NAL unit types in an Annex B buffer, in order (at most max). */
static int nal_types(const uint8_t *d, size_t len, int hevc, int *types, int max)
{
    int n = 0;
    for (size_t i = 0; i + 3 < len && n < max; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            types[n++] = hevc ? (d[i + 3] >> 1) & 0x3f : d[i + 3] & 0x1f;
            i += 2;
        }
    }
    return n;
}

static int has_type(const int *types, int n, int t)
{
    for (int i = 0; i < n; i++)
        if (types[i] == t)
            return 1;
    return 0;
}

/* Index of the first NAL of type t, or n. */
static int index_of(const int *types, int n, int t)
{
    for (int i = 0; i < n; i++)
        if (types[i] == t)
            return i;
    return n;
}

static struct encoder_params h264_params(int w, int h, int gov)
{
    struct encoder_params p = {
        .encoding = MEDIA_ENC_H264,
        .width = w,
        .height = h,
        .framerate = 30,
        .bitrate_kbps = 2000,
        .gov_length = gov,
        .profile = MEDIA_PROFILE_MAIN,
        .quality = 70,
        .threads = 1,
    };
    return p;
}

/* Encodes n pictures of the pattern; force_at: the picture made an IDR (-1 none). */
static struct outputs *encode_pictures(struct encoder *e, struct source *src, int n, int force_at)
{
    struct outputs *c = outputs_new();
    for (int i = 0; i < n; i++) {
        AVFrame *f = next_picture(src);
        int before = c->n;
        assert_int_equal(encoder_encode(e, f, 1000000 + (int64_t)i * 33333, i == force_at, collect, c), ENCODER_OK);
        assert_int_equal(c->n, before + 1);   /* one picture out per picture in: no delay */
        assert_int_equal(c->o[before].pts_us, 1000000 + (int64_t)i * 33333);
        av_frame_free(&f);
    }
    return c;
}

struct decoded {
    int frames, width, height, format;
    int black_luma;                       /* luma at the middle of the right-hand (black) bar */
};

/* Decodes a sequence of pictures with libavcodec's own decoder. */
static struct decoded decode_all(enum AVCodecID id, const struct outputs *c)
{
    const AVCodec *codec = avcodec_find_decoder(id);
    assert_non_null(codec);
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    assert_non_null(ctx);
    ctx->thread_count = 1;
    assert_int_equal(avcodec_open2(ctx, codec, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    assert_non_null(pkt);
    assert_non_null(f);
    struct decoded d = { 0, 0, 0, -1, -1 };
    for (int i = 0; i <= c->n; i++) {
        if (i < c->n) {
            assert_int_equal(av_new_packet(pkt, (int)c->o[i].len), 0);
            memcpy(pkt->data, c->o[i].data, c->o[i].len);
            assert_int_equal(avcodec_send_packet(ctx, pkt), 0);
            av_packet_unref(pkt);
        } else {
            assert_int_equal(avcodec_send_packet(ctx, NULL), 0);
        }
        while (avcodec_receive_frame(ctx, f) == 0) {
            d.frames++;
            d.width = f->width;
            d.height = f->height;
            d.format = f->format;
            d.black_luma = f->data[0][(size_t)(f->height / 2) * f->linesize[0] + f->width * 15 / 16];
            av_frame_unref(f);
        }
    }
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return d;
}

/* --- tests ------------------------------------------------------------------- */

static void test_available(void **state)
{
    (void)state;
    unsigned bits = encoder_available();
    assert_true(bits & MEDIA_ENC_BIT(MEDIA_ENC_H264));
    assert_true(bits & MEDIA_ENC_BIT(MEDIA_ENC_JPEG));
    assert_int_equal(!!(bits & MEDIA_ENC_BIT(MEDIA_ENC_H265)), avcodec_find_encoder_by_name("libx265") != NULL);
}

static void test_h264_parameter_sets_after_open(void **state)
{
    (void)state;
    quiet();
    struct encoder_params p = h264_params(1280, 720, 30);
    struct encoder *e = NULL;
    assert_int_equal(encoder_open(&e, &p, 1920, 1080), ENCODER_OK);
    size_t len = 0;
    const uint8_t *ps = encoder_parameter_sets(e, &len);
    assert_non_null(ps);
    assert_true(len > 8);
    assert_memory_equal(ps, ((const uint8_t[]){ 0, 0, 0, 1 }), 4);
    int types[8];
    int n = nal_types(ps, len, 0, types, 8);
    assert_int_equal(n, 2);
    assert_int_equal(types[0], 7);
    assert_int_equal(types[1], 8);
    encoder_close(e);
}

static void test_h264_profiles(void **state)
{
    (void)state;
    quiet();
    static const struct { enum media_h264_profile profile; int idc; } cases[] = {
        { MEDIA_PROFILE_BASELINE, 66 }, { MEDIA_PROFILE_MAIN, 77 }, { MEDIA_PROFILE_HIGH, 100 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct encoder_params p = h264_params(640, 360, 30);
        p.profile = cases[i].profile;
        struct encoder *e = NULL;
        assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_OK);
        size_t len = 0;
        const uint8_t *ps = encoder_parameter_sets(e, &len);
        assert_true(len > 5);
        assert_int_equal(ps[4] & 0x1f, 7);
        assert_int_equal(ps[5], cases[i].idc);   /* profile_idc */
        encoder_close(e);
    }
}

static void test_h264_keyframes_every_gov_with_parameter_sets(void **state)
{
    (void)state;
    quiet();
    struct source *src = pattern(1280, 720);
    struct encoder_params p = h264_params(1280, 720, 15);
    struct encoder *e = NULL;
    assert_int_equal(encoder_open(&e, &p, 1280, 720), ENCODER_OK);
    size_t ps_len = 0;
    const uint8_t *ps = encoder_parameter_sets(e, &ps_len);
    struct outputs *c = encode_pictures(e, src, 60, -1);
    assert_int_equal(c->n, 60);
    for (int i = 0; i < c->n; i++) {
        int types[64];
        int n = nal_types(c->o[i].data, c->o[i].len, 0, types, 64);
        if (i % 15 == 0) {
            assert_true(c->o[i].keyframe);
            int sps = index_of(types, n, 7), pps = index_of(types, n, 8), idr = index_of(types, n, 5);
            assert_true(sps < n && pps < n && idr < n);
            assert_true(sps < pps && pps < idr);
        } else {
            assert_false(c->o[i].keyframe);
            assert_false(has_type(types, n, 5));
            assert_true(has_type(types, n, 1));
        }
    }
    /* The in-band parameter sets are the ones announced after open. */
    assert_non_null(memmem(c->o[0].data, c->o[0].len, ps + 4, ps_len - 4));
    struct decoded d = decode_all(AV_CODEC_ID_H264, c);
    assert_int_equal(d.frames, 60);
    assert_int_equal(d.width, 1280);
    assert_int_equal(d.height, 720);
    outputs_free(c);
    encoder_close(e);
    source_close(src);
}

static void test_h264_forced_keyframe_is_idr(void **state)
{
    (void)state;
    quiet();
    struct source *src = pattern(640, 360);
    struct encoder_params p = h264_params(640, 360, 10);
    struct encoder *e = NULL;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_OK);
    struct outputs *c = encode_pictures(e, src, 30, 15);
    for (int i = 0; i < c->n; i++) {
        int types[64];
        int n = nal_types(c->o[i].data, c->o[i].len, 0, types, 64);
        int want_key = i == 0 || i == 10 || i == 15 || i == 25;   /* the forced IDR starts a new GOV */
        assert_int_equal(c->o[i].keyframe, want_key);
        assert_int_equal(has_type(types, n, 5), want_key);
        if (want_key) {
            assert_true(has_type(types, n, 7));
            assert_true(has_type(types, n, 8));
        }
    }
    outputs_free(c);
    encoder_close(e);
    source_close(src);
}

static void test_h264_scales_the_source(void **state)
{
    (void)state;
    quiet();
    struct source *src = pattern(1920, 1080);
    struct encoder_params p = h264_params(640, 360, 30);
    p.threads = 0;
    struct encoder *e = NULL;
    assert_int_equal(encoder_open(&e, &p, 1920, 1080), ENCODER_OK);
    struct outputs *c = encode_pictures(e, src, 10, -1);
    struct decoded d = decode_all(AV_CODEC_ID_H264, c);
    assert_int_equal(d.frames, 10);
    assert_int_equal(d.width, 640);
    assert_int_equal(d.height, 360);
    assert_in_range(d.black_luma, 10, 24);   /* limited range kept */
    outputs_free(c);
    encoder_close(e);
    source_close(src);
}

static void test_h264_cbr_holds_the_rate(void **state)
{
    (void)state;
    quiet();
    struct source *src = pattern(640, 360);
    struct encoder_params p = h264_params(640, 360, 30);
    p.cbr = 1;
    p.bitrate_kbps = 500;
    struct encoder *e = NULL;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_OK);
    struct outputs *c = encode_pictures(e, src, 60, -1);
    size_t total = 0;
    for (int i = 0; i < c->n; i++)
        total += c->o[i].len;
    /* Two seconds at 500 kbit/s, give or take the buffer. */
    assert_in_range(total, 500 * 1000 / 8, 3 * 500 * 1000 / 8);
    struct decoded d = decode_all(AV_CODEC_ID_H264, c);
    assert_int_equal(d.frames, 60);
    outputs_free(c);
    encoder_close(e);
    source_close(src);
}

static void test_h265_when_present(void **state)
{
    (void)state;
    quiet();
    if (!(encoder_available() & MEDIA_ENC_BIT(MEDIA_ENC_H265))) {
        struct encoder_params p = h264_params(640, 360, 30);
        p.encoding = MEDIA_ENC_H265;
        struct encoder *e = NULL;
        assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_UNAVAILABLE);
        skip();
    }
    struct source *src = pattern(640, 360);
    struct encoder_params p = h264_params(640, 360, 10);
    p.encoding = MEDIA_ENC_H265;
    struct encoder *e = NULL;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_OK);
    size_t len = 0;
    const uint8_t *ps = encoder_parameter_sets(e, &len);
    assert_non_null(ps);
    int types[8];
    int n = nal_types(ps, len, 1, types, 8);
    assert_int_equal(n, 3);
    assert_int_equal(types[0], 32);
    assert_int_equal(types[1], 33);
    assert_int_equal(types[2], 34);
    struct outputs *c = encode_pictures(e, src, 25, 15);
    for (int i = 0; i < c->n; i++) {
        int t[64];
        int m = nal_types(c->o[i].data, c->o[i].len, 1, t, 64);
        int want_key = i == 0 || i == 10 || i == 15;   /* the forced IDR starts a new GOV */
        assert_int_equal(c->o[i].keyframe, want_key);
        if (want_key) {
            assert_true(has_type(t, m, 32) && has_type(t, m, 33) && has_type(t, m, 34));
            assert_true(has_type(t, m, 19) || has_type(t, m, 20));   /* IDR */
        }
    }
    struct decoded d = decode_all(AV_CODEC_ID_HEVC, c);
    assert_int_equal(d.frames, 25);
    assert_int_equal(d.width, 640);
    assert_int_equal(d.height, 360);
    outputs_free(c);
    encoder_close(e);
    source_close(src);
}

static struct outputs *jpeg_pictures(struct source *src, int w, int h, int quality, int n)
{
    struct encoder_params p = { .encoding = MEDIA_ENC_JPEG, .width = w, .height = h, .framerate = 10,
                                .quality = quality };
    int sw, sh, rate;
    source_format(src, &sw, &sh, &rate);
    struct encoder *e = NULL;
    assert_int_equal(encoder_open(&e, &p, sw, sh), ENCODER_OK);
    size_t len = 1;
    assert_null(encoder_parameter_sets(e, &len));
    assert_int_equal(len, 0);
    struct outputs *c = encode_pictures(e, src, n, -1);
    encoder_close(e);
    return c;
}

static void test_jpeg_pictures(void **state)
{
    (void)state;
    quiet();
    struct source *src = pattern(1280, 720);
    struct outputs *c = jpeg_pictures(src, 320, 240, 70, 3);
    for (int i = 0; i < c->n; i++) {
        assert_true(c->o[i].keyframe);
        assert_true(c->o[i].len > 4);
        assert_int_equal(c->o[i].data[0], 0xff);
        assert_int_equal(c->o[i].data[1], 0xd8);
        assert_int_equal(c->o[i].data[c->o[i].len - 2], 0xff);
        assert_int_equal(c->o[i].data[c->o[i].len - 1], 0xd9);
    }
    struct decoded d = decode_all(AV_CODEC_ID_MJPEG, c);
    assert_int_equal(d.frames, 3);
    assert_int_equal(d.width, 320);
    assert_int_equal(d.height, 240);
    /* Full range, as JFIF readers expect: the black bar is near 0, not 16. */
    assert_in_range(d.black_luma, 0, 6);
    outputs_free(c);
    source_close(src);
}

static void test_jpeg_quality_changes_the_size(void **state)
{
    (void)state;
    quiet();
    struct source *src = pattern(640, 360);
    struct outputs *hi = jpeg_pictures(src, 640, 360, 90, 1);
    struct outputs *lo = jpeg_pictures(src, 640, 360, 10, 1);
    assert_true(hi->o[0].len > lo->o[0].len * 3 / 2);
    outputs_free(hi);
    outputs_free(lo);
    source_close(src);
}

static void test_bad_params(void **state)
{
    (void)state;
    quiet();
    struct encoder *e = (struct encoder *)&e;
    struct encoder_params p = h264_params(640, 360, 30);
    p.width = 0;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_PARAMS);
    assert_null(e);
    p = h264_params(640, 360, 30);
    p.encoding = (enum media_encoding)7;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_PARAMS);
    p = h264_params(641, 360, 30);
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_PARAMS);
    p = h264_params(640, 360, 0);
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_PARAMS);
    p = h264_params(640, 360, 30);
    p.quality = 101;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_PARAMS);
    p = h264_params(640, 360, 30);
    p.framerate = 0;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_PARAMS);
    p = h264_params(640, 360, 30);
    p.cbr = 1;
    p.bitrate_kbps = 0;
    assert_int_equal(encoder_open(&e, &p, 640, 360), ENCODER_E_PARAMS);
    p = h264_params(640, 360, 30);
    assert_int_equal(encoder_open(&e, &p, 0, 360), ENCODER_E_PARAMS);
    assert_int_equal(encoder_open(NULL, &p, 640, 360), ENCODER_E_PARAMS);
    assert_int_equal(encoder_open(&e, NULL, 640, 360), ENCODER_E_PARAMS);
    encoder_close(NULL);
    assert_null(encoder_parameter_sets(NULL, NULL));
    for (int err = 0; err >= -5; err--)
        assert_non_null(encoder_strerror(err));
}

static void test_jpeg_snapshot(void **state)
{
    (void)state;
    quiet();
    struct source *src = pattern(1920, 1080);
    AVFrame *f = next_picture(src);
    uint8_t *jpeg = NULL;
    size_t len = 0;
    assert_int_equal(encoder_jpeg_snapshot(f, 160, 90, 50, &jpeg, &len), ENCODER_OK);
    assert_non_null(jpeg);
    assert_true(len > 4);
    assert_int_equal(jpeg[0], 0xff);
    assert_int_equal(jpeg[1], 0xd8);
    struct outputs *c = outputs_new();
    c->o[0] = (struct output){ jpeg, len, 1, 0 };
    c->n = 1;
    struct decoded d = decode_all(AV_CODEC_ID_MJPEG, c);
    assert_int_equal(d.frames, 1);
    assert_int_equal(d.width, 160);
    assert_int_equal(d.height, 90);
    outputs_free(c);
    assert_int_equal(encoder_jpeg_snapshot(f, 0, 90, 50, &jpeg, &len), ENCODER_E_PARAMS);
    assert_null(jpeg);
    assert_int_equal(encoder_jpeg_snapshot(NULL, 160, 90, 50, &jpeg, &len), ENCODER_E_PARAMS);
    av_frame_free(&f);
    source_close(src);
}

static const struct CMUnitTest encoder_tests[] = {
    cmocka_unit_test(test_available),
    cmocka_unit_test(test_h264_parameter_sets_after_open),
    cmocka_unit_test(test_h264_profiles),
    cmocka_unit_test(test_h264_keyframes_every_gov_with_parameter_sets),
    cmocka_unit_test(test_h264_forced_keyframe_is_idr),
    cmocka_unit_test(test_h264_scales_the_source),
    cmocka_unit_test(test_h264_cbr_holds_the_rate),
    cmocka_unit_test(test_h265_when_present),
    cmocka_unit_test(test_jpeg_pictures),
    cmocka_unit_test(test_jpeg_quality_changes_the_size),
    cmocka_unit_test(test_bad_params),
    cmocka_unit_test(test_jpeg_snapshot),
};

UNIT_MAIN("encoder", encoder_tests)
