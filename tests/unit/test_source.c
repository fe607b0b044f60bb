/* Unit tests for source: the test pattern's format and defaults, delivery
 * to sinks on the capture thread at about the frame rate, a pattern that
 * moves every frame and a still one that does not, refused specs and inputs
 * that cannot be opened, files (written here with libavformat) that loop
 * at their end, sinks added and removed from many threads, snapshots while
 * idle and the cost of one test pattern picture. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>

#include "opennvt/log.h"
#include "opennvt/source.h"
#include "unit_helpers.h"

#define KEEP_MAX 40

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void quiet(void)
{
    av_log_set_level(AV_LOG_ERROR);
    log_set_level(LOG_LVL_WARNING);
}

static struct source *open_ok(const char *spec, int w, int h, int rate)
{
    struct source_settings s = { spec, w, h, rate };
    struct source *src = NULL;
    assert_int_equal(source_open(&src, &s), SOURCE_OK);
    assert_non_null(src);
    return src;
}

static int open_rc(const char *spec)
{
    struct source_settings s = { spec, 320, 240, 30 };
    struct source *src = (struct source *)&s;
    int rc = source_open(&src, &s);
    if (rc == SOURCE_OK)
        source_close(src);
    else
        assert_null(src);
    return rc;
}

/* A sink that counts, checks what it is given and keeps the first frames. */
struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    int64_t first_us, last_pts, pts_errors;
    char thread_name[16];
    int w, h, bad_format;
    AVFrame *kept[KEEP_MAX];
    int n_kept;
};

static struct recorder *recorder_new(int w, int h)
{
    struct recorder *r = calloc(1, sizeof *r);
    assert_non_null(r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->w = w;
    r->h = h;
    return r;
}

static void recorder_free(struct recorder *r)
{
    for (int i = 0; i < r->n_kept; i++)
        av_frame_free(&r->kept[i]);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

static void record(void *arg, const AVFrame *f, int64_t pts_us)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->lock);
    if (r->calls == 0) {
        r->first_us = now_us();
        pthread_getname_np(pthread_self(), r->thread_name, sizeof r->thread_name);
    }
    if (f->format != AV_PIX_FMT_YUV420P || f->width != r->w || f->height != r->h || !f->data[0])
        r->bad_format++;
    int64_t now = now_us();
    if (pts_us <= r->last_pts || pts_us > now || now - pts_us > 1000000)
        r->pts_errors++;
    r->last_pts = pts_us;
    if (r->n_kept < KEEP_MAX) {
        /* No cmocka assertions here: this runs on the capture thread. */
        if ((r->kept[r->n_kept] = av_frame_clone(f)) != NULL)
            r->n_kept++;
        else
            r->bad_format++;
    }
    r->calls++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Waits up to timeout_ms for at least n calls; returns the count. */
static int wait_calls(struct recorder *r, int n, int timeout_ms)
{
    int64_t until = now_us() + (int64_t)timeout_ms * 1000;
    pthread_mutex_lock(&r->lock);
    while (r->calls < n && now_us() < until) {
        pthread_mutex_unlock(&r->lock);
        sleep_ms(2);
        pthread_mutex_lock(&r->lock);
    }
    int got = r->calls;
    pthread_mutex_unlock(&r->lock);
    return got;
}

static int calls_of(struct recorder *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->calls;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static int planes_equal(const AVFrame *a, const AVFrame *b, int from_row)
{
    for (int p = 0; p < 3; p++) {
        int sh = p ? 1 : 0;
        for (int y = from_row >> sh; y < a->height >> sh; y++)
            if (memcmp(a->data[p] + (size_t)y * a->linesize[p], b->data[p] + (size_t)y * b->linesize[p],
                       (size_t)(a->width >> sh)) != 0)
                return 0;
    }
    return 1;
}

static int luma_at_centre(const AVFrame *f)
{
    return f->data[0][(size_t)(f->height / 2) * f->linesize[0] + f->width / 2];
}

/* --- a clip written with libavformat ---------------------------------------------- */

static int clip_level(int i)
{
    return 30 + 18 * i;   /* a flat picture per frame: 30, 48, ... 192 */
}

static void write_packets(AVCodecContext *c, AVFormatContext *oc, AVStream *st, AVPacket *pkt)
{
    while (avcodec_receive_packet(c, pkt) == 0) {
        av_packet_rescale_ts(pkt, c->time_base, st->time_base);
        pkt->stream_index = st->index;
        assert_int_equal(av_interleaved_write_frame(oc, pkt), 0);
    }
}

/* frames flat pictures of w x h at rate, luma clip_level(i). */
static void write_clip(const char *path, enum AVCodecID id, enum AVPixelFormat fmt, int w, int h, int frames,
                       int rate)
{
    AVFormatContext *oc = NULL;
    assert_int_equal(avformat_alloc_output_context2(&oc, NULL, NULL, path), 0);
    const AVCodec *codec = avcodec_find_encoder(id);
    assert_non_null(codec);
    AVStream *st = avformat_new_stream(oc, NULL);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    assert_non_null(st);
    assert_non_null(c);
    c->width = w;
    c->height = h;
    c->pix_fmt = fmt;
    c->time_base = (AVRational){ 1, rate };
    c->framerate = (AVRational){ rate, 1 };
    c->gop_size = 4;
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * 2;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    assert_int_equal(avcodec_open2(c, codec, NULL), 0);
    assert_int_equal(avcodec_parameters_from_context(st->codecpar, c), 0);
    st->time_base = c->time_base;
    st->avg_frame_rate = c->framerate;
    assert_true(avio_open(&oc->pb, path, AVIO_FLAG_WRITE) >= 0);
    assert_true(avformat_write_header(oc, NULL) >= 0);
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    assert_non_null(f);
    assert_non_null(pkt);
    f->format = fmt;
    f->width = w;
    f->height = h;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    for (int i = 0; i < frames; i++) {
        assert_int_equal(av_frame_make_writable(f), 0);
        int ch = (h + 1) / 2;
        for (int y = 0; y < h; y++)
            memset(f->data[0] + (size_t)y * f->linesize[0], clip_level(i), (size_t)w);
        for (int y = 0; y < ch; y++) {
            memset(f->data[1] + (size_t)y * f->linesize[1], 128, (size_t)(w + 1) / 2);
            memset(f->data[2] + (size_t)y * f->linesize[2], 128, (size_t)(w + 1) / 2);
        }
        f->pts = i;
        f->quality = c->global_quality;
        assert_int_equal(avcodec_send_frame(c, f), 0);
        write_packets(c, oc, st, pkt);
    }
    assert_int_equal(avcodec_send_frame(c, NULL), 0);
    write_packets(c, oc, st, pkt);
    assert_int_equal(av_write_trailer(oc), 0);
    avio_closep(&oc->pb);
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&c);
    avformat_free_context(oc);
}

/* --- tests ---------------------------------------------------------------------------- */

static void test_testsrc_format(void **state)
{
    (void)state;
    quiet();
    int w, h, rate;
    struct source *src = open_ok(NULL, 0, 0, 0);
    source_format(src, &w, &h, &rate);
    assert_int_equal(w, 1920);
    assert_int_equal(h, 1080);
    assert_int_equal(rate, 30);
    source_close(src);

    src = open_ok("", 641, 361, 25);   /* odd sizes are made even */
    source_format(src, &w, &h, &rate);
    assert_int_equal(w, 640);
    assert_int_equal(h, 360);
    assert_int_equal(rate, 25);
    source_close(src);

    src = open_ok("testsrc", 2, 100000, 1000);   /* brought into bounds */
    source_format(src, &w, &h, &rate);
    assert_int_equal(w, 16);
    assert_int_equal(h, 4320);
    assert_int_equal(rate, 120);
    source_close(src);
    source_close(NULL);
}

static void test_sinks_get_frames_at_about_the_rate(void **state)
{
    (void)state;
    quiet();
    struct source *src = open_ok("testsrc", 320, 240, 30);
    struct recorder *r = recorder_new(320, 240);
    int64_t start = now_us();
    assert_int_equal(source_add_sink(src, record, r), SOURCE_OK);
    assert_int_equal(wait_calls(r, 16, 5000), 16);
    int64_t elapsed = now_us() - r->first_us;
    /* 15 intervals of 33 ms, with a lot of slack either way. */
    assert_in_range(elapsed, 250000, 3000000);
    assert_true(r->first_us - start < 1000000);
    source_remove_sink(src, record, r);
    int after = calls_of(r);
    sleep_ms(100);
    assert_int_equal(calls_of(r), after);   /* not called once removed */
    assert_string_equal(r->thread_name, "opennvt-source");
    assert_int_equal(r->bad_format, 0);
    assert_int_equal(r->pts_errors, 0);

    /* Moving: every frame differs from the one before below the clock too. */
    for (int i = 1; i < r->n_kept; i++)
        assert_false(planes_equal(r->kept[i - 1], r->kept[i], 240 / 6));
    recorder_free(r);

    /* Capture starts again for a new sink. */
    r = recorder_new(320, 240);
    assert_int_equal(source_add_sink(src, record, r), SOURCE_OK);
    assert_true(wait_calls(r, 2, 3000) >= 2);
    source_remove_sink(src, record, r);
    recorder_free(r);
    source_close(src);
}

static void test_still_pattern_does_not_change(void **state)
{
    (void)state;
    quiet();
    struct source *src = open_ok("testsrc:still", 320, 240, 50);
    struct recorder *r = recorder_new(320, 240);
    assert_int_equal(source_add_sink(src, record, r), SOURCE_OK);
    assert_true(wait_calls(r, 5, 3000) >= 5);
    source_remove_sink(src, record, r);
    assert_int_equal(r->bad_format, 0);
    for (int i = 1; i < r->n_kept; i++)
        assert_true(planes_equal(r->kept[0], r->kept[i], 0));
    AVFrame *f = NULL;
    assert_int_equal(source_latest_frame(src, 100, &f), SOURCE_OK);
    assert_true(planes_equal(r->kept[0], f, 0));
    av_frame_free(&f);
    recorder_free(r);
    source_close(src);
}

static void test_bad_specs(void **state)
{
    (void)state;
    quiet();
    assert_int_equal(open_rc("foo"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("testsrc:moving"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("testsrc2"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("v4l2:"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("v4l2:video0"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("file:"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("http://example.com/x.mp4"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("rtsp://10.0.0.1/"), SOURCE_E_SPEC);
    assert_int_equal(open_rc("testsrc"), SOURCE_OK);
    assert_int_equal(open_rc("testsrc:still"), SOURCE_OK);
    assert_int_equal(source_open(NULL, NULL), SOURCE_E_SPEC);
    for (int err = 0; err >= -5; err--)
        assert_non_null(source_strerror(err));
}

static void test_missing_inputs(void **state)
{
    struct temp_dir *t = *state;
    quiet();
    assert_int_equal(open_rc("v4l2:/dev/video-opennvt-missing"), SOURCE_E_OPEN);
    char path[PATH_MAX], spec[PATH_MAX + 8];
    snprintf(spec, sizeof spec, "file:%s", path_in(path, t->path, "missing.mkv"));
    assert_int_equal(open_rc(spec), SOURCE_E_OPEN);
    assert_int_equal(write_text_file(path_in(path, t->path, "notes.txt"), "not a video\n"), 0);
    snprintf(spec, sizeof spec, "file:%s", path);
    assert_int_equal(open_rc(spec), SOURCE_E_OPEN);
    snprintf(spec, sizeof spec, "file:%s", t->path);   /* a directory */
    assert_int_equal(open_rc(spec), SOURCE_E_OPEN);
}

static void check_file_loops(const char *path, int want_w, int want_h, int limited_from_full)
{
    char spec[PATH_MAX + 8];
    snprintf(spec, sizeof spec, "file:%s", path);
    struct source *src = open_ok(spec, 1920, 1080, 5);   /* the file's own size and rate win */
    int w, h, rate;
    source_format(src, &w, &h, &rate);
    assert_int_equal(w, want_w);
    assert_int_equal(h, want_h);
    assert_int_equal(rate, 50);

    struct recorder *r = recorder_new(w, h);
    assert_int_equal(source_add_sink(src, record, r), SOURCE_OK);
    assert_int_equal(wait_calls(r, 25, 5000) >= 25, 1);
    source_remove_sink(src, record, r);
    assert_int_equal(r->bad_format, 0);
    assert_int_equal(r->pts_errors, 0);
    /* 25 frames of a 10-frame clip: it started over twice, in order. */
    for (int i = 0; i < 25; i++) {
        int want = clip_level(i % 10);
        if (limited_from_full)
            want = 16 + want * 219 / 255;
        assert_in_range(luma_at_centre(r->kept[i]), want - 4, want + 4);
    }
    recorder_free(r);

    /* A snapshot while idle opens the file briefly. */
    AVFrame *f = NULL;
    assert_int_equal(source_latest_frame(src, 2000, &f), SOURCE_OK);
    assert_int_equal(f->width, want_w);
    assert_int_equal(f->format, AV_PIX_FMT_YUV420P);
    av_frame_free(&f);
    source_close(src);
}

static void test_file_source_loops(void **state)
{
    struct temp_dir *t = *state;
    quiet();
    char path[PATH_MAX];
    /* MPEG-4 in AVI: decoded pictures go out as they are. */
    write_clip(path_in(path, t->path, "clip.avi"), AV_CODEC_ID_MPEG4, AV_PIX_FMT_YUV420P, 160, 120, 10, 50);
    check_file_loops(path, 160, 120, 0);
    /* Full-range MJPEG of odd size in Matroska: converted and scaled. */
    write_clip(path_in(path, t->path, "clip.mkv"), AV_CODEC_ID_MJPEG, AV_PIX_FMT_YUVJ420P, 171, 97, 10, 50);
    check_file_loops(path, 170, 96, 1);
}

/* Sinks come and go on several threads while the capture starts and stops. */
struct racer {
    struct source *src;
    atomic_int calls, removed, late, missed;
};

static void race_sink(void *arg, const AVFrame *f, int64_t pts_us)
{
    struct racer *r = arg;
    (void)f;
    (void)pts_us;
    if (atomic_load(&r->removed))
        atomic_fetch_add(&r->late, 1);
    atomic_fetch_add(&r->calls, 1);
}

static void *race_thread(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 15; i++) {
        atomic_store(&r->calls, 0);
        atomic_store(&r->removed, 0);
        if (source_add_sink(r->src, race_sink, r) != SOURCE_OK) {
            atomic_fetch_add(&r->missed, 1);
            continue;
        }
        int64_t until = now_us() + 2000000;
        while (atomic_load(&r->calls) == 0 && now_us() < until)
            sleep_ms(1);
        if (atomic_load(&r->calls) == 0)
            atomic_fetch_add(&r->missed, 1);
        if (i % 3 == 0)
            sleep_ms(5);
        source_remove_sink(r->src, race_sink, r);
        atomic_store(&r->removed, 1);
        sleep_ms(i % 4);
    }
    return NULL;
}

static void test_sinks_from_many_threads(void **state)
{
    (void)state;
    quiet();
    struct source *src = open_ok("testsrc", 160, 120, 60);
    enum { N = 4 };
    struct racer racers[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&racers[i], 0, sizeof racers[i]);
        racers[i].src = src;
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &racers[i]), 0);
    }
    /* Snapshots meanwhile. */
    for (int i = 0; i < 20; i++) {
        AVFrame *f = NULL;
        assert_int_equal(source_latest_frame(src, 1000, &f), SOURCE_OK);
        assert_int_equal(f->width, 160);
        av_frame_free(&f);
        sleep_ms(5);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(atomic_load(&racers[i].late), 0);
        assert_int_equal(atomic_load(&racers[i].missed), 0);
    }
    source_close(src);
}

static void test_sink_table_is_bounded(void **state)
{
    (void)state;
    quiet();
    struct source *src = open_ok("testsrc", 160, 120, 30);
    struct racer r[17];
    memset(r, 0, sizeof r);
    int added = 0;
    while (added < 17 && source_add_sink(src, race_sink, &r[added]) == SOURCE_OK)
        added++;
    assert_in_range(added, 8, 16);
    assert_int_equal(source_add_sink(src, race_sink, &r[16]), SOURCE_E_NOMEM);
    source_remove_sink(src, race_sink, &r[16]);   /* not registered: nothing happens */
    for (int i = 0; i < added; i++)
        source_remove_sink(src, race_sink, &r[i]);
    int before = atomic_load(&r[0].calls);
    sleep_ms(80);
    assert_int_equal(atomic_load(&r[0].calls), before);
    source_close(src);
}

static void test_latest_frame(void **state)
{
    (void)state;
    quiet();
    struct source *src = open_ok("testsrc", 320, 240, 30);
    AVFrame *a = NULL, *b = NULL;
    assert_int_equal(source_latest_frame(src, 0, &a), SOURCE_OK);   /* idle: drawn on the spot */
    assert_int_equal(a->width, 320);
    assert_int_equal(a->height, 240);
    assert_int_equal(a->format, AV_PIX_FMT_YUV420P);
    assert_int_equal(source_latest_frame(src, 0, &b), SOURCE_OK);
    assert_false(planes_equal(a, b, 0));
    av_frame_free(&a);
    av_frame_free(&b);

    /* While capturing: the frame the sinks saw last. */
    struct recorder *r = recorder_new(320, 240);
    assert_int_equal(source_add_sink(src, record, r), SOURCE_OK);
    assert_true(wait_calls(r, 1, 3000) >= 1);
    assert_int_equal(source_latest_frame(src, 1000, &a), SOURCE_OK);
    assert_int_equal(a->width, 320);
    source_remove_sink(src, record, r);
    pthread_mutex_lock(&r->lock);
    int seen = 0;
    for (int i = 0; i < r->n_kept; i++)
        seen |= planes_equal(r->kept[i], a, 0);
    pthread_mutex_unlock(&r->lock);
    assert_true(seen);
    av_frame_free(&a);
    recorder_free(r);
    source_close(src);
}

static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload") != NULL;
}

/* The pattern is drawn by copying only what changed: a 1080p picture must
 * cost far less than a millisecond. */
static void test_testsrc_cost(void **state)
{
    (void)state;
    quiet();
    struct source *src = open_ok("testsrc", 1920, 1080, 30);
    AVFrame *keep[4] = { NULL };
    int n = under_valgrind() ? 20 : 300;
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (int i = 0; i < n; i++) {
        AVFrame *f = NULL;
        assert_int_equal(source_latest_frame(src, 0, &f), SOURCE_OK);
        av_frame_free(&keep[i % 4]);   /* a few held at a time, as consumers do */
        keep[i % 4] = f;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    for (int i = 0; i < 4; i++)
        av_frame_free(&keep[i]);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / n;
    print_message("testsrc 1920x1080: %.1f us of CPU per picture\n", us);
    if (!under_valgrind())
        assert_true(us < 1000.0);
    source_close(src);
}

static const struct CMUnitTest source_tests[] = {
    cmocka_unit_test(test_testsrc_format),
    cmocka_unit_test(test_sinks_get_frames_at_about_the_rate),
    cmocka_unit_test(test_still_pattern_does_not_change),
    cmocka_unit_test(test_bad_specs),
    cmocka_unit_test_setup_teardown(test_missing_inputs, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_file_source_loops, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test(test_sinks_from_many_threads),
    cmocka_unit_test(test_sink_table_is_bounded),
    cmocka_unit_test(test_latest_frame),
    cmocka_unit_test(test_testsrc_cost),
};

UNIT_MAIN("source", source_tests)
