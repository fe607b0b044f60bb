/* Unit tests for the stream hub over the real test pattern and encoders:
 * subscribers get packetized pictures starting with a keyframe, one encoder
 * per configuration whatever the number of subscribers, sync points, live
 * reconfiguration, the encoder stopping after the last subscriber, and
 * snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "opennvt/encoder.h"
#include "opennvt/log.h"
#include "opennvt/mediacfg.h"
#include "opennvt/source.h"
#include "opennvt/stream.h"
#include "unit_helpers.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

struct fixture {
    struct temp_dir dir;
    struct source *src;
    struct mediacfg *cfg;
    struct stream_hub *hub;
};

struct counter {
    pthread_mutex_t lock;
    int aus, keyframes, first_is_key, seen_first;
    uint32_t last_ts;
    int ts_monotonic;
};

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || temp_dir_make(&fx->dir) != 0)
        return -1;
    struct source_settings ss = { .spec = "testsrc", .width = 640, .height = 360, .framerate = 15 };
    struct media_video_source vs = { .token = "VideoSource_1" };
    if (source_open(&fx->src, &ss) != SOURCE_OK)
        return -1;
    source_format(fx->src, &vs.width, &vs.height, &vs.framerate);
    if (mediacfg_open(&fx->cfg, fx->dir.path, &vs, encoder_available()) != MEDIACFG_OK)
        return -1;
    struct stream_hub_settings hs = { .linger_ms = 0, .encoder_threads = 1, .mtu = RTP_DEFAULT_MTU };
    if (stream_hub_open(&fx->hub, fx->cfg, fx->src, &hs) != STREAM_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    stream_hub_close(fx->hub);
    mediacfg_close(fx->cfg);
    source_close(fx->src);
    temp_fixture_free(&fx->dir, fx);
    return 0;
}

static void count_au(void *arg, struct media_au *au)
{
    struct counter *c = arg;
    pthread_mutex_lock(&c->lock);
    if (!c->seen_first) {
        c->seen_first = 1;
        c->first_is_key = au->keyframe;
        c->ts_monotonic = 1;
    } else if ((int32_t)(au->rtp_ts - c->last_ts) <= 0) {
        c->ts_monotonic = 0;
    }
    c->last_ts = au->rtp_ts;
    c->aus++;
    c->keyframes += au->keyframe;
    if (au->n_packets <= 0)
        c->ts_monotonic = 0;   /* checked on the test thread */
    pthread_mutex_unlock(&c->lock);
}

static int wait_aus(struct counter *c, int n, int timeout_ms)
{
    int64_t end = ms_now() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        int got = c->aus;
        pthread_mutex_unlock(&c->lock);
        if (got >= n || ms_now() > end)
            return got;
        usleep(10000);
    }
}

static void test_subscribers_get_pictures(void **state)
{
    struct fixture *fx = *state;
    struct counter a = { .lock = PTHREAD_MUTEX_INITIALIZER }, b = { .lock = PTHREAD_MUTEX_INITIALIZER };
    struct stream_sub *sa, *sb;
    assert_int_equal(stream_subscribe(fx->hub, "VideoEncoder_2", count_au, &a, &sa), STREAM_OK);
    assert_int_equal(stream_subscribe(fx->hub, "VideoEncoder_2", count_au, &b, &sb), STREAM_OK);
    assert_true(wait_aus(&a, 20, 8000) >= 20);
    assert_true(wait_aus(&b, 20, 8000) >= 20);
    assert_true(a.first_is_key);
    assert_true(b.first_is_key);
    assert_true(a.ts_monotonic);
    struct stream_info info;
    assert_int_equal(stream_get_info(fx->hub, "VideoEncoder_2", &info), STREAM_OK);
    assert_int_equal(info.encoding, MEDIA_ENC_H264);
    assert_int_equal(info.width, 640);
    assert_int_equal(info.payload_type, 96);
    assert_true(info.param_len > 8);
    assert_memory_equal(info.param_sets, "\0\0\0\1", 4);
    stream_unsubscribe(sa);
    stream_unsubscribe(sb);
    pthread_mutex_lock(&a.lock);
    int after = a.aus;
    pthread_mutex_unlock(&a.lock);
    usleep(200000);
    assert_int_equal(a.aus, after);   /* no callback after unsubscribe returned */
}

static void test_sync_point_forces_a_keyframe(void **state)
{
    struct fixture *fx = *state;
    struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
    struct stream_sub *s;
    assert_int_equal(stream_subscribe(fx->hub, "VideoEncoder_2", count_au, &c, &s), STREAM_OK);
    assert_true(wait_aus(&c, 5, 8000) >= 5);
    pthread_mutex_lock(&c.lock);
    int keys = c.keyframes;
    pthread_mutex_unlock(&c.lock);
    assert_int_equal(stream_force_keyframe(fx->hub, "VideoEncoder_2"), STREAM_OK);
    int64_t end = ms_now() + 3000;
    while (c.keyframes == keys && ms_now() < end)
        usleep(10000);
    assert_true(c.keyframes > keys);   /* long before the 2 s GOP would give one */
    stream_unsubscribe(s);
    assert_int_equal(stream_force_keyframe(fx->hub, "NoSuchEncoder"), STREAM_E_NO_CONFIG);
}

static void test_reconfigure_applies_live(void **state)
{
    struct fixture *fx = *state;
    struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
    struct stream_sub *s;
    assert_int_equal(stream_subscribe(fx->hub, "VideoEncoder_2", count_au, &c, &s), STREAM_OK);
    assert_true(wait_aus(&c, 5, 8000) >= 5);
    struct media_vec v;
    assert_int_equal(mediacfg_vec(fx->cfg, "VideoEncoder_2", &v), MEDIACFG_OK);
    v.width = 320;
    v.height = 180;
    assert_int_equal(mediacfg_set_vec(fx->cfg, &v), MEDIACFG_OK);
    stream_reconfigure(fx->hub, "VideoEncoder_2");
    int64_t end = ms_now() + 5000;
    struct stream_info info = { 0 };
    while (ms_now() < end) {
        assert_int_equal(stream_get_info(fx->hub, "VideoEncoder_2", &info), STREAM_OK);
        if (info.width == 320)
            break;
        usleep(20000);
    }
    assert_int_equal(info.width, 320);
    assert_int_equal(info.height, 180);
    pthread_mutex_lock(&c.lock);
    int n = c.aus;
    pthread_mutex_unlock(&c.lock);
    assert_true(wait_aus(&c, n + 5, 5000) >= n + 5);   /* pictures keep coming */
    stream_unsubscribe(s);
}

static void test_unknown_configuration(void **state)
{
    struct fixture *fx = *state;
    struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
    struct stream_sub *s = NULL;
    assert_int_equal(stream_subscribe(fx->hub, "NoSuchEncoder", count_au, &c, &s), STREAM_E_NO_CONFIG);
    struct stream_info info;
    assert_int_equal(stream_get_info(fx->hub, "NoSuchEncoder", &info), STREAM_E_NO_CONFIG);
}

static void test_jpeg_stream_and_snapshot(void **state)
{
    struct fixture *fx = *state;
    struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
    struct stream_sub *s;
    assert_int_equal(stream_subscribe(fx->hub, "VideoEncoder_3", count_au, &c, &s), STREAM_OK);
    assert_true(wait_aus(&c, 10, 8000) >= 10);
    assert_int_equal(c.keyframes, c.aus);   /* every JPEG picture stands alone */
    stream_unsubscribe(s);
    uint8_t *jpeg = NULL;
    size_t len = 0;
    assert_int_equal(stream_snapshot(fx->hub, 320, 180, 70, &jpeg, &len), STREAM_OK);
    assert_true(len > 100);
    assert_int_equal(jpeg[0], 0xff);
    assert_int_equal(jpeg[1], 0xd8);
    free(jpeg);
}

/* Subscribing and leaving in a tight loop from several threads never
 * deadlocks or leaves an encoder without its thread. */
static void *churn(void *arg)
{
    struct fixture *fx = arg;
    for (int i = 0; i < 15; i++) {
        struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
        struct stream_sub *s;
        if (stream_subscribe(fx->hub, "VideoEncoder_2", count_au, &c, &s) != STREAM_OK)
            return (void *)1;
        usleep(1000 * (i % 4) * 20);
        stream_unsubscribe(s);
    }
    return NULL;
}

static void test_subscribe_churn(void **state)
{
    struct fixture *fx = *state;
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, fx), 0);
    for (int i = 0; i < 3; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER };
    struct stream_sub *s;
    assert_int_equal(stream_subscribe(fx->hub, "VideoEncoder_2", count_au, &c, &s), STREAM_OK);
    assert_true(wait_aus(&c, 5, 8000) >= 5);
    stream_unsubscribe(s);
}

static void quiet_log(void *arg, enum log_level level, const char *area, const char *line)
{
    (void)arg;
    (void)level;
    (void)area;
    (void)line;
}

int main(void)
{
    log_set_sink(quiet_log, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subscribers_get_pictures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_point_forces_a_keyframe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconfigure_applies_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_configuration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jpeg_stream_and_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_churn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
