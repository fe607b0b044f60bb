/* Unit tests for motion: the detector on synthetic luma planes (a still
 * scene, a moving square with start frames and hold time, noise, slow light
 * changes, sensitivity, minimum area, scene changes and the background
 * learned anew, odd sizes and strides, bad input, cost per 1080p frame) and
 * motion detection attached to a test pattern source publishing on the bus. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/log.h>

#include "opennvt/events.h"
#include "opennvt/log.h"
#include "opennvt/motion.h"
#include "opennvt/source.h"
#include "unit_helpers.h"

#define STEP_MS 100                   /* 10 analysed frames per second */

static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload") != NULL;
}

static void quiet(void)
{
    av_log_set_level(AV_LOG_ERROR);
    log_set_level(LOG_LVL_WARNING);
}

/* A deterministic generator for noise and padding bytes. */
static uint32_t rng_state = 0x12345678u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* A luma plane allocated to exactly what its rows need, so that a read past
 * the last row's width is an error under valgrind. */
struct plane {
    int w, h, stride;
    uint8_t *p;
};

static struct plane *plane_new(int w, int h, int stride)
{
    struct plane *pl = calloc(1, sizeof *pl);
    assert_non_null(pl);
    pl->w = w;
    pl->h = h;
    pl->stride = stride;
    pl->p = malloc((size_t)stride * (size_t)(h - 1) + (size_t)w);
    assert_non_null(pl->p);
    return pl;
}

static void plane_free(struct plane *pl)
{
    if (pl)
        free(pl->p);
    free(pl);
}

static uint8_t texture_at(int x, int y)
{
    return (uint8_t)(40 + (x * 7 + y * 13) % 40);
}

/* A still textured scene (luma 40..79); inverted: 255 minus that. The bytes
 * between the width and the stride get new garbage every time. */
static void draw_scene(struct plane *pl, int inverted)
{
    for (int y = 0; y < pl->h; y++) {
        uint8_t *row = pl->p + (size_t)y * (size_t)pl->stride;
        for (int x = 0; x < pl->w; x++)
            row[x] = inverted ? (uint8_t)(255 - texture_at(x, y)) : texture_at(x, y);
        if (y < pl->h - 1)
            for (int x = pl->w; x < pl->stride; x++)
                row[x] = (uint8_t)rng();
    }
}

static void clip_rect(const struct plane *pl, int *x, int *y, int *x1, int *y1)
{
    if (*x < 0)
        *x = 0;
    if (*y < 0)
        *y = 0;
    if (*x1 > pl->w)
        *x1 = pl->w;
    if (*y1 > pl->h)
        *y1 = pl->h;
}

static void fill_square(struct plane *pl, int x, int y, int size, uint8_t v)
{
    int x1 = x + size, y1 = y + size;
    clip_rect(pl, &x, &y, &x1, &y1);
    for (int r = y; r < y1; r++)
        memset(pl->p + (size_t)r * (size_t)pl->stride + x, v, (size_t)(x1 - x));
}

/* Adds delta to a square of the picture (a faint object). */
static void lift_square(struct plane *pl, int x, int y, int size, int delta)
{
    int x1 = x + size, y1 = y + size;
    clip_rect(pl, &x, &y, &x1, &y1);
    for (int r = y; r < y1; r++) {
        uint8_t *row = pl->p + (size_t)r * (size_t)pl->stride;
        for (int c = x; c < x1; c++) {
            int v = row[c] + delta;
            row[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static void feed(struct motion_detector *d, const struct plane *pl, int64_t t_ms, struct motion_result *r)
{
    motion_detector_feed(d, pl->p, pl->w, pl->h, pl->stride, t_ms, r);
}

static struct motion_detector *detector(const struct motion_settings *s)
{
    struct motion_detector *d = NULL;
    assert_int_equal(motion_detector_new(&d, s), 0);
    assert_non_null(d);
    return d;
}

static struct motion_settings defaults(void)
{
    struct motion_settings s;
    motion_settings_default(&s);
    return s;
}

/* Feeds n frames of the still scene from *t on; asserts no alarm at all. */
static void feed_still(struct motion_detector *d, struct plane *pl, int inverted, int n, int64_t *t)
{
    struct motion_result r;
    for (int i = 0; i < n; i++) {
        draw_scene(pl, inverted);
        feed(d, pl, *t, &r);
        *t += STEP_MS;
        assert_false(r.motion);
        assert_false(r.motion_changed);
        assert_false(r.scene_change);
        assert_false(r.scene_changed);
        assert_int_equal(r.changed_permille, 0);
    }
}

/* Moves a square of `size` across the scene for n frames; returns how many
 * frames reported motion. */
static int feed_moving_square(struct motion_detector *d, struct plane *pl, int size, int step, int n,
                              int64_t *t)
{
    struct motion_result r;
    int moving = 0;
    for (int i = 0; i < n; i++) {
        draw_scene(pl, 0);
        fill_square(pl, (i * step) % (pl->w - size + 1), pl->h / 3, size, 255);
        feed(d, pl, *t, &r);
        *t += STEP_MS;
        moving += r.motion;
    }
    return moving;
}

/* --- settings ------------------------------------------------------------------- */

static void test_settings(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    assert_int_equal(s.sensitivity, 50);
    assert_int_equal(s.min_area_permille, 5);
    assert_int_equal(s.start_frames, 2);
    assert_int_equal(s.hold_ms, 1500);
    assert_int_equal(s.scene_change_permille, 700);
    motion_settings_default(NULL);

    struct motion_detector *d = (struct motion_detector *)&s;
    assert_int_equal(motion_detector_new(NULL, &s), -1);
    assert_int_equal(motion_detector_new(&d, NULL), 0);   /* the defaults */
    assert_non_null(d);
    motion_detector_free(d);
    motion_detector_free(NULL);

    struct {
        int *field, bad;
    } cases[] = {
        { &s.sensitivity, 0 },           { &s.sensitivity, 101 },         { &s.min_area_permille, 0 },
        { &s.min_area_permille, 1001 },  { &s.start_frames, 0 },          { &s.start_frames, 1001 },
        { &s.hold_ms, -1 },              { &s.hold_ms, 3600001 },         { &s.scene_change_permille, 0 },
        { &s.scene_change_permille, 1001 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s = defaults();
        *cases[i].field = cases[i].bad;
        d = (struct motion_detector *)&s;
        assert_int_equal(motion_detector_new(&d, &s), -1);
        assert_null(d);
    }
    s = defaults();
    s.sensitivity = 1;
    s.min_area_permille = 1000;
    s.start_frames = 1;
    s.hold_ms = 0;
    s.scene_change_permille = 1;
    d = detector(&s);
    motion_detector_free(d);
}

/* --- the detector ------------------------------------------------------------- */

static void test_still_scene_never_moves(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    s.sensitivity = 100;
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(640, 360, 640);
    int64_t t = 1000;
    feed_still(d, pl, 0, 200, &t);
    motion_detector_free(d);
    plane_free(pl);
}

/* Square of 60 px on cell boundaries (640x360: 10 px cells), 30 px a frame. */
static void test_moving_square_starts_and_holds(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(640, 360, 640);
    struct motion_result r;
    int64_t t = 5000;
    feed_still(d, pl, 0, 3, &t);

    for (int i = 0; i < 10; i++) {
        draw_scene(pl, 0);
        fill_square(pl, 20 + 30 * i, 150, 60, 255);
        feed(d, pl, t, &r);
        t += STEP_MS;
        assert_true(r.changed_permille >= 15);   /* the square alone covers 36 of 2304 cells */
        assert_false(r.scene_change);
        assert_int_equal(r.motion, i >= 1);       /* start_frames = 2 */
        assert_int_equal(r.motion_changed, i == 1);
    }

    /* The square leaves: that frame still moves, then the hold runs. */
    draw_scene(pl, 0);
    feed(d, pl, t, &r);
    int64_t last_moving = t;
    t += STEP_MS;
    assert_true(r.motion);
    assert_true(r.changed_permille >= 15);
    int ended = 0;
    for (; t <= last_moving + 3000; t += STEP_MS) {
        draw_scene(pl, 0);
        feed(d, pl, t, &r);
        assert_true(r.changed_permille < s.min_area_permille);
        int want = t - last_moving < s.hold_ms;
        assert_int_equal(r.motion, want);
        ended += r.motion_changed;
    }
    assert_int_equal(ended, 1);

    /* And it starts again for the next one. */
    assert_true(feed_moving_square(d, pl, 60, 30, 5, &t) >= 3);
    motion_detector_free(d);
    plane_free(pl);
}

/* An object that stops (a parked car) becomes background after a while
 * instead of keeping the alarm on. */
static void test_stopped_object_is_absorbed(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(640, 360, 640);
    struct motion_result r;
    int64_t t = 0;
    feed_still(d, pl, 0, 3, &t);
    for (int i = 0; i < 5; i++) {
        draw_scene(pl, 0);
        fill_square(pl, 100 + 30 * i, 100, 120, 255);
        feed(d, pl, t, &r);
        t += STEP_MS;
    }
    assert_true(r.motion);
    int frames = 0;
    while (r.motion && frames < 400) {
        draw_scene(pl, 0);
        fill_square(pl, 100 + 30 * 4, 100, 120, 255);
        feed(d, pl, t, &r);
        t += STEP_MS;
        frames++;
    }
    assert_false(r.motion);
    assert_true(frames > s.hold_ms / STEP_MS);   /* it was motion for a while */
    for (int i = 0; i < 100; i++) {
        draw_scene(pl, 0);
        fill_square(pl, 100 + 30 * 4, 100, 120, 255);
        feed(d, pl, t, &r);
        t += STEP_MS;
        assert_false(r.motion);
        assert_false(r.scene_change);
    }
    motion_detector_free(d);
    plane_free(pl);
}

static void feed_noisy(struct motion_detector *d, struct plane *pl, int n, int64_t *t)
{
    struct motion_result r;
    for (int i = 0; i < n; i++) {
        draw_scene(pl, 0);
        for (int y = 0; y < pl->h; y++) {
            uint8_t *row = pl->p + (size_t)y * (size_t)pl->stride;
            for (int x = 0; x < pl->w; x++)
                row[x] = (uint8_t)(row[x] + (int)(rng() % 5) - 2);
        }
        feed(d, pl, *t, &r);
        *t += STEP_MS;
        assert_false(r.motion);
        assert_false(r.scene_change);
        assert_true(r.changed_permille < 5);
    }
}

static void test_noise_does_not_trigger(void **state)
{
    (void)state;
    struct plane *pl = plane_new(640, 360, 640);
    int n = under_valgrind() ? 40 : 200;
    int64_t t = 0;
    struct motion_settings s = defaults();
    struct motion_detector *d = detector(&s);
    feed_noisy(d, pl, n, &t);
    motion_detector_free(d);

    s.sensitivity = 100;   /* even the finest threshold sits far above noise averaged over a cell */
    d = detector(&s);
    feed_noisy(d, pl, n, &t);
    motion_detector_free(d);
    plane_free(pl);
}

/* Dawn: the whole picture brightens by a level per frame (10 a second). */
static void test_slow_light_change(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(640, 360, 640);
    struct motion_result r;
    int64_t t = 0;
    for (int level = 0; level <= 150; level++) {
        draw_scene(pl, 0);
        lift_square(pl, 0, 0, 640, level);
        feed(d, pl, t, &r);
        t += STEP_MS;
        assert_false(r.motion);
        assert_false(r.scene_change);
    }
    motion_detector_free(d);
    plane_free(pl);
}

/* A square only 20 levels brighter than what it passes over. */
static int faint_square_frames(int sensitivity)
{
    struct motion_settings s = defaults();
    s.sensitivity = sensitivity;
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(640, 360, 640);
    struct motion_result r;
    int64_t t = 0;
    feed_still(d, pl, 0, 3, &t);
    int moving = 0;
    for (int i = 0; i < 10; i++) {
        draw_scene(pl, 0);
        lift_square(pl, 40 + 30 * i, 120, 120, 20);
        feed(d, pl, t, &r);
        t += STEP_MS;
        moving += r.motion;
    }
    motion_detector_free(d);
    plane_free(pl);
    return moving;
}

static void test_sensitivity(void **state)
{
    (void)state;
    assert_int_equal(faint_square_frames(1), 0);
    assert_int_equal(faint_square_frames(50), 0);    /* threshold 34 levels */
    assert_int_equal(faint_square_frames(70), 0);    /* 22 */
    assert_int_equal(faint_square_frames(90), 9);    /* 10: from the second frame on */
    assert_int_equal(faint_square_frames(100), 9);   /* 4 */
}

/* A 20 px square on 10 px cells jumping 40 px a frame: 4 cells where it
 * arrives and 4 where it left, 8 of 2304 (3.5 per mille). */
static int small_square_frames(int min_area, int *last_permille)
{
    struct motion_settings s = defaults();
    s.min_area_permille = min_area;
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(640, 360, 640);
    struct motion_result r;
    int64_t t = 0;
    feed_still(d, pl, 0, 3, &t);
    int moving = 0;
    for (int i = 0; i < 12; i++) {
        draw_scene(pl, 0);
        fill_square(pl, 40 + 40 * i, 200, 20, 255);
        feed(d, pl, t, &r);
        t += STEP_MS;
        moving += r.motion;
    }
    *last_permille = r.changed_permille;
    motion_detector_free(d);
    plane_free(pl);
    return moving;
}

static void test_min_area(void **state)
{
    (void)state;
    int permille = -1;
    assert_int_equal(small_square_frames(5, &permille), 0);
    assert_int_equal(permille, 3);
    assert_int_equal(small_square_frames(4, &permille), 0);
    assert_int_equal(small_square_frames(3, &permille), 10);   /* the first frame has only the 4 it arrives in */
    assert_int_equal(small_square_frames(1, &permille), 11);
}

/* The picture inverted at once (the camera turned, the lens covered). */
static void test_scene_change(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(640, 360, 640);
    struct motion_result r;
    int64_t t = 0;
    feed_still(d, pl, 0, 5, &t);

    draw_scene(pl, 1);
    feed(d, pl, t, &r);
    assert_true(r.scene_change);
    assert_true(r.scene_changed);
    assert_false(r.motion);
    assert_int_equal(r.changed_permille, 1000);
    t += STEP_MS;

    int64_t settled = t;   /* the next frame is the first still one */
    int ended = 0;
    for (; t <= settled + 3000; t += STEP_MS) {
        draw_scene(pl, 1);
        feed(d, pl, t, &r);
        assert_false(r.motion);
        assert_int_equal(r.scene_change, t - settled < s.hold_ms);
        if (r.scene_changed) {
            ended++;
            assert_false(r.scene_change);
        }
    }
    assert_int_equal(ended, 1);

    /* The new picture is the background now: quiet, and motion on it is seen. */
    feed_still(d, pl, 1, 50, &t);
    int moving = 0;
    for (int i = 0; i < 6; i++) {
        draw_scene(pl, 1);
        fill_square(pl, 20 + 30 * i, 150, 60, 0);
        feed(d, pl, t, &r);
        t += STEP_MS;
        moving += r.motion;
        assert_false(r.scene_change);
    }
    assert_int_equal(moving, 5);
    motion_detector_free(d);
    plane_free(pl);
}

/* While the picture keeps changing (the camera being moved) the scene change
 * lasts; it ends hold_ms after the picture is still. */
static void test_scene_change_lasts_while_moving(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(320, 240, 320);
    struct motion_result r;
    int64_t t = 0;
    feed_still(d, pl, 0, 5, &t);
    for (int i = 0; i < 40; i++) {
        draw_scene(pl, i % 2 == 0);
        feed(d, pl, t, &r);
        t += STEP_MS;
        assert_true(r.scene_change);
        assert_int_equal(r.scene_changed, i == 0);
        assert_false(r.motion);
    }
    int64_t still_from = t;
    int64_t ended_at = -1;
    for (; t <= still_from + 4000; t += STEP_MS) {
        draw_scene(pl, 1);
        feed(d, pl, t, &r);
        assert_false(r.motion);
        if (r.scene_changed)
            ended_at = t;
    }
    assert_false(r.scene_change);
    assert_true(ended_at >= still_from + s.hold_ms);
    assert_true(ended_at <= still_from + s.hold_ms + 2 * STEP_MS);
    motion_detector_free(d);
    plane_free(pl);
}

struct geometry {
    int w, h, stride;
};

static void test_odd_sizes_and_strides(void **state)
{
    (void)state;
    static const struct geometry sizes[] = {
        { 16, 16, 16 },   { 16, 16, 31 },    { 17, 23, 40 },      { 63, 35, 63 },     { 65, 37, 100 },
        { 641, 359, 704 }, { 1280, 720, 1344 }, { 1921, 1081, 1921 }, { 16, 1000, 16 },  { 1000, 16, 1024 },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const struct geometry *g = &sizes[i];
        struct motion_settings s = defaults();
        struct motion_detector *d = detector(&s);
        struct plane *pl = plane_new(g->w, g->h, g->stride);
        int64_t t = 0;
        feed_still(d, pl, 0, 5, &t);   /* the padding changes every frame: never read */
        struct motion_result r;
        int moving = 0;
        int bw = g->w / 3, bh = g->h / 3;
        for (int k = 0; k < 6; k++) {
            draw_scene(pl, 0);
            int x0 = (k % 2) ? g->w - bw : 0;
            for (int y = g->h / 3; y < g->h / 3 + bh; y++)
                memset(pl->p + (size_t)y * (size_t)g->stride + x0, 255, (size_t)bw);
            feed(d, pl, t, &r);
            t += STEP_MS;
            moving += r.motion;
        }
        if (moving != 5)
            print_message("%dx%d stride %d: %d moving frames\n", g->w, g->h, g->stride, moving);
        assert_int_equal(moving, 5);
        motion_detector_free(d);
        plane_free(pl);
    }
}

/* The frame size changes (the source reconfigured): the grid is laid out
 * anew and the first picture learned, not compared with the old one. */
static void test_size_change_relearns(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    s.start_frames = 1;
    struct motion_detector *d = detector(&s);
    struct plane *a = plane_new(640, 360, 640), *b = plane_new(320, 240, 352);
    int64_t t = 0;
    feed_still(d, a, 0, 3, &t);
    feed_still(d, b, 1, 3, &t);
    feed_still(d, a, 1, 3, &t);
    motion_detector_free(d);
    plane_free(a);
    plane_free(b);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    s.start_frames = 1;
    struct motion_detector *d = detector(&s);
    struct plane *pl = plane_new(64, 64, 64);
    struct motion_result r;
    memset(&r, 0x55, sizeof r);
    motion_detector_feed(NULL, pl->p, 64, 64, 64, 0, &r);
    assert_int_equal(r.motion, 0);
    assert_int_equal(r.motion_changed, 0);
    assert_int_equal(r.scene_change, 0);
    assert_int_equal(r.changed_permille, 0);
    motion_detector_feed(NULL, NULL, 0, 0, 0, 0, NULL);

    int64_t t = 0;
    draw_scene(pl, 0);
    motion_detector_feed(d, pl->p, 64, 64, 64, t, NULL);   /* no result wanted */
    t += STEP_MS;
    draw_scene(pl, 0);
    fill_square(pl, 16, 16, 32, 255);
    feed(d, pl, t, &r);
    t += STEP_MS;
    assert_true(r.motion);

    /* Refused input reports the state and changes nothing. */
    const struct {
        const uint8_t *p;
        int w, h, stride;
    } bad[] = {
        { NULL, 64, 64, 64 }, { pl->p, 15, 64, 64 }, { pl->p, 64, 15, 64 }, { pl->p, 64, 64, 63 },
        { pl->p, -64, 64, 64 }, { pl->p, 64, -64, 64 }, { pl->p, 64, 64, -64 }, { pl->p, 0, 0, 0 },
        { pl->p, 40000, 16, 40000 }, { pl->p, 16, 40000, 16 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&r, 0x55, sizeof r);
        motion_detector_feed(d, bad[i].p, bad[i].w, bad[i].h, bad[i].stride, t + 5000, &r);
        assert_int_equal(r.motion, 1);
        assert_int_equal(r.motion_changed, 0);
        assert_int_equal(r.scene_change, 0);
        assert_int_equal(r.scene_changed, 0);
        assert_int_equal(r.changed_permille, 0);
    }
    /* The detector carries on: the square leaves, and the hold ends the alarm. */
    draw_scene(pl, 0);
    feed(d, pl, t, &r);
    assert_true(r.motion);
    assert_false(r.motion_changed);
    t += s.hold_ms;
    feed(d, pl, t, &r);
    assert_false(r.motion);
    assert_true(r.motion_changed);
    motion_detector_free(d);
    plane_free(pl);
}

static double thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Analysing a 1080p picture must stay far below the budget of 5% of a core
 * at 25 frames per second (2 ms). */
static void test_cost_1080p(void **state)
{
    (void)state;
    struct motion_settings s = defaults();
    struct motion_detector *d = detector(&s);
    struct plane *a = plane_new(1920, 1080, 1920), *b = plane_new(1920, 1080, 1920);
    draw_scene(a, 0);
    draw_scene(b, 0);
    fill_square(b, 600, 300, 300, 255);
    int n = under_valgrind() ? 20 : 500;
    struct motion_result r;
    int moving = 0;
    double t0 = thread_cpu_us();
    for (int i = 0; i < n; i++) {
        feed(d, (i / 10) % 2 ? b : a, (int64_t)i * 40, &r);
        moving += r.motion;
    }
    double us = (thread_cpu_us() - t0) / n;
    print_message("motion detector 1920x1080: %.1f us of CPU per frame\n", us);
    assert_true(moving > 0);
    if (!under_valgrind())
        assert_true(us < 2000.0);
    motion_detector_free(d);
    plane_free(a);
    plane_free(b);
}

/* --- attached to a source ------------------------------------------------------ */

static int64_t utc_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A bus with one subscription to the video source topics, and what came. */
struct watch {
    struct events *ev;
    uint64_t id;
    int motion_msgs, motion_true, scene_msgs, scene_true;
    int first_motion_false;           /* the first MotionAlarm said false (the initial state) */
    int first_scene_false;
    int64_t motion_true_at;           /* mono ms of the first true, 0 before */
};

static void watch_open(struct watch *w)
{
    memset(w, 0, sizeof *w);
    struct events_settings es = { 8, 256, 3600, NULL };
    assert_int_equal(events_open(&w->ev, &es), EVENTS_OK);
    assert_int_equal(events_subscribe(w->ev, "tns1:VideoSource//.", utc_ms() + 600000, &w->id), EVENTS_OK);
}

/* Pulls until MotionAlarm has said true or until ms have passed. */
static void watch_pull(struct watch *w, const char *token, int ms, int stop_at_true)
{
    struct event_message msgs[16];
    int64_t until = mono_ms() + ms;
    while (mono_ms() < until && !(stop_at_true && w->motion_true)) {
        int n = events_pull(w->ev, w->id, 100, msgs, 16, NULL);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
            const struct event_message *m = &msgs[i];
            assert_int_equal(m->n_source, 1);
            assert_string_equal(m->source[0].name, "VideoSourceToken");
            assert_string_equal(m->source[0].value, token);
            assert_int_equal(m->n_data, 1);
            assert_string_equal(m->data[0].name, "State");
            int on = strcmp(m->data[0].value, "true") == 0;
            assert_true(on || strcmp(m->data[0].value, "false") == 0);
            if (m->topic == EVENT_TOPIC_MOTION_ALARM) {
                if (w->motion_msgs++ == 0)
                    w->first_motion_false = !on && m->op == EVENT_OP_INITIALIZED;
                if (on && !w->motion_true++)
                    w->motion_true_at = mono_ms();
            } else if (m->topic == EVENT_TOPIC_GLOBAL_SCENE_CHANGE) {
                if (w->scene_msgs++ == 0)
                    w->first_scene_false = !on && m->op == EVENT_OP_INITIALIZED;
                w->scene_true += on;
            } else {
                fail_msg("unexpected topic %d", (int)m->topic);
            }
        }
    }
}

static struct source *open_source(const char *spec)
{
    struct source_settings ss = { spec, 640, 360, 15 };
    struct source *src = NULL;
    assert_int_equal(source_open(&src, &ss), SOURCE_OK);
    return src;
}

static void test_start_on_moving_pattern(void **state)
{
    (void)state;
    quiet();
    struct watch w;
    watch_open(&w);
    struct source *src = open_source("testsrc");
    struct motion_settings s = defaults();
    struct motion *m = NULL;
    assert_int_equal(motion_start(&m, src, "VideoSource_1", w.ev, &s, 15), 0);
    assert_non_null(m);
    watch_pull(&w, "VideoSource_1", under_valgrind() ? 30000 : 8000, 1);
    motion_stop(m);
    assert_true(w.first_motion_false);
    assert_true(w.first_scene_false);
    assert_true(w.motion_true >= 1);
    assert_int_equal(w.scene_true, 0);
    /* Stopping ends the alarm: the last MotionAlarm says false. */
    struct event_message last[64];
    int n = events_pull(w.ev, w.id, 0, last, 64, NULL);
    int final_false = 0;
    for (int i = 0; i < n; i++)
        if (last[i].topic == EVENT_TOPIC_MOTION_ALARM)
            final_false = strcmp(last[i].data[0].value, "false") == 0;
    assert_true(final_false);
    source_close(src);
    events_close(w.ev);
}

static void test_start_on_still_pattern(void **state)
{
    (void)state;
    quiet();
    struct watch w;
    watch_open(&w);
    struct source *src = open_source("testsrc:still");
    struct motion_settings s = defaults();
    s.sensitivity = 100;
    struct motion *m = NULL;
    assert_int_equal(motion_start(&m, src, "VideoSource_1", w.ev, &s, 15), 0);
    watch_pull(&w, "VideoSource_1", 3000, 0);
    motion_stop(m);
    assert_int_equal(w.motion_msgs, 1);   /* only the initial state */
    assert_true(w.first_motion_false);
    assert_int_equal(w.scene_msgs, 1);
    assert_true(w.first_scene_false);
    source_close(src);
    events_close(w.ev);
}

/* At 2 frames a second with 3 moving frames wanted, the alarm cannot come
 * before the fourth analysed frame, about 1.4 s after the first: the source's
 * 15 frames a second are not all analysed. */
static void test_start_keeps_max_fps(void **state)
{
    (void)state;
    quiet();
    struct watch w;
    watch_open(&w);
    struct source *src = open_source("testsrc");
    struct motion_settings s = defaults();
    s.start_frames = 3;
    struct motion *m = NULL;
    int64_t started = mono_ms();
    assert_int_equal(motion_start(&m, src, "VideoSource_1", w.ev, &s, 2), 0);
    watch_pull(&w, "VideoSource_1", under_valgrind() ? 30000 : 8000, 1);
    motion_stop(m);
    assert_true(w.motion_true >= 1);
    assert_true(w.motion_true_at - started >= 1000);
    source_close(src);
    events_close(w.ev);
}

static void test_start_bad_arguments(void **state)
{
    (void)state;
    quiet();
    struct watch w;
    watch_open(&w);
    struct source *src = open_source("testsrc:still");
    struct motion_settings s = defaults();
    char long_token[EVENT_ITEM_VALUE_MAX + 2];
    memset(long_token, 'a', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = '\0';
    struct motion *m = (struct motion *)&s;

    assert_int_equal(motion_start(NULL, src, "VideoSource_1", w.ev, &s, 5), -1);
    assert_int_equal(motion_start(&m, NULL, "VideoSource_1", w.ev, &s, 5), -1);
    assert_null(m);
    assert_int_equal(motion_start(&m, src, NULL, w.ev, &s, 5), -1);
    assert_int_equal(motion_start(&m, src, "", w.ev, &s, 5), -1);
    assert_int_equal(motion_start(&m, src, long_token, w.ev, &s, 5), -1);
    assert_int_equal(motion_start(&m, src, "VideoSource_1", NULL, &s, 5), -1);
    assert_int_equal(motion_start(&m, src, "VideoSource_1", w.ev, &s, 0), -1);
    assert_int_equal(motion_start(&m, src, "VideoSource_1", w.ev, &s, 1001), -1);
    s.sensitivity = 0;
    assert_int_equal(motion_start(&m, src, "VideoSource_1", w.ev, &s, 5), -1);
    assert_null(m);
    motion_stop(NULL);

    /* A token of the longest length is fine; NULL settings are the defaults. */
    long_token[EVENT_ITEM_VALUE_MAX] = '\0';
    assert_int_equal(motion_start(&m, src, long_token, w.ev, NULL, 5), 0);
    assert_non_null(m);
    motion_stop(m);
    source_close(src);
    events_close(w.ev);
}

static const struct CMUnitTest motion_tests[] = {
    cmocka_unit_test(test_settings),
    cmocka_unit_test(test_still_scene_never_moves),
    cmocka_unit_test(test_moving_square_starts_and_holds),
    cmocka_unit_test(test_stopped_object_is_absorbed),
    cmocka_unit_test(test_noise_does_not_trigger),
    cmocka_unit_test(test_slow_light_change),
    cmocka_unit_test(test_sensitivity),
    cmocka_unit_test(test_min_area),
    cmocka_unit_test(test_scene_change),
    cmocka_unit_test(test_scene_change_lasts_while_moving),
    cmocka_unit_test(test_odd_sizes_and_strides),
    cmocka_unit_test(test_size_change_relearns),
    cmocka_unit_test(test_bad_input),
    cmocka_unit_test(test_cost_1080p),
    cmocka_unit_test(test_start_on_moving_pattern),
    cmocka_unit_test(test_start_on_still_pattern),
    cmocka_unit_test(test_start_keeps_max_fps),
    cmocka_unit_test(test_start_bad_arguments),
};

UNIT_MAIN("motion", motion_tests)
