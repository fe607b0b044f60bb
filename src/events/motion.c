/* Motion and global scene change (tamper) detection: the pure detector that
 * works on a coarse luma grid, and its attachment to a video source that
 * publishes tns1:VideoSource/MotionAlarm and GlobalSceneChange on changes. */
#include "opennvt/motion.h"
#include "opennvt/events.h"
#include "opennvt/log.h"
#include "opennvt/source.h"

#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>

#include <stdlib.h>
#include <string.h>

#define GRID_W 64                     /* cells across (fewer for frames narrower than this) */
#define GRID_H 36                     /* cells down */
#define GRID_CELLS (GRID_W * GRID_H)
#define CELL_SAMPLES 4                /* sampled pixels per cell side: a cell is the sum of 4x4 */
#define FRAME_MIN 16                  /* smallest frame side analysed */
#define FRAME_MAX 32768               /* largest frame side analysed */

/* The background is kept in fixed point (cell sums << BG_SHIFT) so that its
 * slow updates do not vanish in rounding. Cells that match it follow the
 * picture quickly (noise, light drifting); cells that differ follow slowly,
 * so that a passing object leaves no trace while one that stays (a parked
 * car) is absorbed after some seconds instead of moving forever. */
#define BG_SHIFT 6
#define BG_RATE_QUIET 16              /* 1/16 of the difference per analysed frame */
#define BG_RATE_FOREGROUND 64         /* 1/64 */

#define SETTING_MAX_START_FRAMES 1000
#define SETTING_MAX_HOLD_MS 3600000
#define MAX_FPS_LIMIT 1000

void motion_settings_default(struct motion_settings *s)
{
    if (!s)
        return;
    s->sensitivity = 50;
    s->min_area_permille = 5;
    s->start_frames = 2;
    s->hold_ms = 1500;
    s->scene_change_permille = 700;
}

static int settings_valid(const struct motion_settings *s)
{
    return s->sensitivity >= 1 && s->sensitivity <= 100 && s->min_area_permille >= 1 &&
           s->min_area_permille <= 1000 && s->start_frames >= 1 && s->start_frames <= SETTING_MAX_START_FRAMES &&
           s->hold_ms >= 0 && s->hold_ms <= SETTING_MAX_HOLD_MS && s->scene_change_permille >= 1 &&
           s->scene_change_permille <= 1000;
}

/* --- the detector ------------------------------------------------------------ */

struct motion_detector {
    struct motion_settings set;
    int threshold;                    /* cell difference that counts, in cell-sum units (16 samples) */

    /* Grid layout for the frame size last seen; 0 before the first frame. */
    int width, height, gw, gh, cells;
    int xs[GRID_W * CELL_SAMPLES];    /* sampled columns, CELL_SAMPLES per grid column */
    int ys[GRID_H * CELL_SAMPLES];    /* sampled rows */

    int learned;                      /* prev and bg hold a picture of this layout */
    uint16_t prev[GRID_CELLS];        /* previous frame's cell sums */
    int32_t bg[GRID_CELLS];           /* background, cell sums << BG_SHIFT */

    int motion, scene;
    int run;                          /* moving frames in a row (capped at start_frames) */
    int64_t last_moving_ms;
    int settled;                      /* during a scene change: the picture has stopped changing */
    int64_t settled_since_ms;
};

/* threshold = 4 + (100 - sensitivity) * 0.6 luma levels, times 16 samples. */
static int threshold_for(int sensitivity)
{
    return (640 + (100 - sensitivity) * 96) / 10;
}

int motion_detector_new(struct motion_detector **out, const struct motion_settings *s)
{
    if (!out)
        return -1;
    *out = NULL;
    struct motion_settings set;
    if (s)
        set = *s;
    else
        motion_settings_default(&set);
    if (!settings_valid(&set))
        return -1;
    struct motion_detector *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->set = set;
    d->threshold = threshold_for(set.sensitivity);
    *out = d;
    return 0;
}

void motion_detector_free(struct motion_detector *d)
{
    free(d);
}

/* Places CELL_SAMPLES sample positions evenly inside each of n cells that
 * split a side of `size` pixels. */
static void layout_side(int *pos, int n, int size)
{
    for (int c = 0; c < n; c++) {
        int a = (int)((int64_t)c * size / n), b = (int)((int64_t)(c + 1) * size / n);
        for (int k = 0; k < CELL_SAMPLES; k++)
            pos[c * CELL_SAMPLES + k] = a + (int)((int64_t)(2 * k + 1) * (b - a) / (2 * CELL_SAMPLES));
    }
}

static void layout(struct motion_detector *d, int width, int height)
{
    d->width = width;
    d->height = height;
    d->gw = width < GRID_W ? width : GRID_W;
    d->gh = height < GRID_H ? height : GRID_H;
    d->cells = d->gw * d->gh;
    layout_side(d->xs, d->gw, width);
    layout_side(d->ys, d->gh, height);
    d->learned = 0;
}

/* Reads 16 pixels per cell: about 37 000 bytes of a 1080p picture. */
static void sample(const struct motion_detector *d, const uint8_t *luma, int stride, uint16_t *cur)
{
    for (int gy = 0; gy < d->gh; gy++) {
        uint16_t *acc = cur + gy * d->gw;
        memset(acc, 0, (size_t)d->gw * sizeof acc[0]);
        for (int k = 0; k < CELL_SAMPLES; k++) {
            const uint8_t *row = luma + (size_t)d->ys[gy * CELL_SAMPLES + k] * (size_t)stride;
            const int *x = d->xs;
            for (int gx = 0; gx < d->gw; gx++, x += CELL_SAMPLES)
                acc[gx] = (uint16_t)(acc[gx] + row[x[0]] + row[x[1]] + row[x[2]] + row[x[3]]);
        }
    }
}

static void learn(struct motion_detector *d, const uint16_t *cur)
{
    for (int i = 0; i < d->cells; i++) {
        d->prev[i] = cur[i];
        d->bg[i] = (int32_t)cur[i] << BG_SHIFT;
    }
    d->learned = 1;
}

/* n of d->cells is at least permille/1000 of them (no rounding). */
static int share_reached(const struct motion_detector *d, int n, int permille)
{
    return (int64_t)n * 1000 >= (int64_t)permille * d->cells;
}

void motion_detector_feed(struct motion_detector *d, const uint8_t *luma, int width, int height, int stride,
                          int64_t t_ms, struct motion_result *out)
{
    struct motion_result r;
    memset(&r, 0, sizeof r);
    if (!d) {
        if (out)
            *out = r;
        return;
    }
    r.motion = d->motion;
    r.scene_change = d->scene;
    if (!luma || width < FRAME_MIN || height < FRAME_MIN || width > FRAME_MAX || height > FRAME_MAX ||
        stride < width) {
        if (out)
            *out = r;
        return;
    }
    if (width != d->width || height != d->height)
        layout(d, width, height);

    uint16_t cur[GRID_CELLS];
    sample(d, luma, stride, cur);

    /* A changed cell differs from the previous frame (movement) or from the
     * background (something that moves slowly, or appeared and stayed). */
    int n_prev = 0, n_bg = 0, n_any = 0;
    if (d->learned) {
        const int32_t thr_bg = (int32_t)d->threshold << BG_SHIFT;
        for (int i = 0; i < d->cells; i++) {
            int dp = abs((int)cur[i] - (int)d->prev[i]) > d->threshold;
            int32_t db = ((int32_t)cur[i] << BG_SHIFT) - d->bg[i];
            int dbg = db > thr_bg || db < -thr_bg;
            n_prev += dp;
            n_bg += dbg;
            n_any += dp | dbg;
        }
    }

    /* Scene change: most of the picture differs from the background at once.
     * It lasts until the picture has been still for hold_ms; then the new
     * picture becomes the background. Motion is not counted meanwhile: the
     * grid compares against a scene that is no longer there. */
    int in_scene = d->scene;
    int relearn = 0;
    if (!d->scene) {
        if (d->learned && share_reached(d, n_bg, d->set.scene_change_permille)) {
            d->scene = 1;
            d->settled = 0;
            r.scene_changed = 1;
            in_scene = 1;
        }
    } else if (!share_reached(d, n_prev, d->set.min_area_permille)) {
        if (!d->settled) {
            d->settled = 1;
            d->settled_since_ms = t_ms;
        }
        if (t_ms - d->settled_since_ms >= d->set.hold_ms) {
            d->scene = 0;
            r.scene_changed = 1;
            relearn = 1;
        }
    } else {
        d->settled = 0;
    }

    int moving = !in_scene && d->learned && share_reached(d, n_any, d->set.min_area_permille);
    if (moving) {
        if (d->run < d->set.start_frames)
            d->run++;
        d->last_moving_ms = t_ms;
        if (!d->motion && d->run >= d->set.start_frames) {
            d->motion = 1;
            r.motion_changed = 1;
        }
    } else {
        d->run = 0;
        if (d->motion && t_ms - d->last_moving_ms >= d->set.hold_ms) {
            d->motion = 0;
            r.motion_changed = 1;
        }
    }

    if (!d->learned || relearn) {
        learn(d, cur);
    } else {
        if (!d->scene) {
            const int32_t thr_bg = (int32_t)d->threshold << BG_SHIFT;
            for (int i = 0; i < d->cells; i++) {
                int32_t db = ((int32_t)cur[i] << BG_SHIFT) - d->bg[i];
                d->bg[i] += db / (db > thr_bg || db < -thr_bg ? BG_RATE_FOREGROUND : BG_RATE_QUIET);
            }
        }
        memcpy(d->prev, cur, (size_t)d->cells * sizeof cur[0]);
    }

    r.motion = d->motion;
    r.scene_change = d->scene;
    r.changed_permille = d->cells ? (int)((int64_t)n_any * 1000 / d->cells) : 0;
    if (out)
        *out = r;
}

/* --- attached to a source ------------------------------------------------------ */

struct motion {
    struct source *src;
    struct events *ev;
    struct motion_detector *det;
    char token[EVENT_ITEM_VALUE_MAX + 1];

    /* Owned by the source thread (the sink) once started. */
    int64_t interval_us, slack_us, next_due_us, last_pts_us;
    int cadence;                      /* next_due_us and last_pts_us are set */
    int started;                      /* the first frame was analysed and the initial state published */
    int format_warned;
    int motion_on, scene_on;          /* the states last published */
};

static const char *bool_text(int v)
{
    return v ? "true" : "false";
}

static void publish(struct motion *m, enum event_topic_id topic, int state)
{
    if (topic == EVENT_TOPIC_MOTION_ALARM)
        m->motion_on = state;
    else
        m->scene_on = state;
    events_publish_simple(m->ev, topic, "VideoSourceToken", m->token, "State", bool_text(state));
}

/* The luma plane comes first in each of these. */
static int luma_format(int format)
{
    return format == AV_PIX_FMT_YUV420P || format == AV_PIX_FMT_YUVJ420P || format == AV_PIX_FMT_NV12 ||
           format == AV_PIX_FMT_GRAY8 || format == AV_PIX_FMT_YUV422P || format == AV_PIX_FMT_YUV444P;
}

/* Frames are analysed on a cadence of interval_us. A frame up to slack_us
 * early still counts, so that a source running at max_fps is not halved by
 * jitter; the next due time is then at least interval - slack later, which
 * keeps the average at or below max_fps. After a gap the cadence starts
 * from the frame; a clock that went back starts it again. */
static int frame_due(struct motion *m, int64_t pts_us)
{
    if (m->cadence && pts_us >= m->last_pts_us && pts_us + m->slack_us < m->next_due_us)
        return 0;
    int64_t next = pts_us + m->interval_us - m->slack_us;
    if (!m->cadence || pts_us < m->last_pts_us)
        next = pts_us + m->interval_us;
    else if (m->next_due_us + m->interval_us > next)
        next = m->next_due_us + m->interval_us;
    m->next_due_us = next;
    m->last_pts_us = pts_us;
    m->cadence = 1;
    return 1;
}

/* On the source thread: sampling and a few thousand cell comparisons, and
 * a publish only when a state changes. */
static void motion_sink(void *arg, const AVFrame *frame, int64_t pts_us)
{
    struct motion *m = arg;
    if (!frame || !frame->data[0])
        return;
    if (!luma_format(frame->format)) {
        if (!m->format_warned) {
            log_warning("events", "video source %s: motion detection cannot read pixel format %d", m->token,
                        frame->format);
            m->format_warned = 1;
        }
        return;
    }
    if (!frame_due(m, pts_us))
        return;

    struct motion_result r;
    motion_detector_feed(m->det, frame->data[0], frame->width, frame->height, frame->linesize[0],
                         pts_us / 1000, &r);
    if (!m->started) {
        /* Subscribers get a state from the start, not only at the first change. */
        publish(m, EVENT_TOPIC_MOTION_ALARM, r.motion);
        publish(m, EVENT_TOPIC_GLOBAL_SCENE_CHANGE, r.scene_change);
        m->started = 1;
        return;
    }
    if (r.scene_changed) {
        if (r.scene_change)
            log_notice("events", "video source %s: global scene change (%d per mille of the picture changed)", m->token,
                       r.changed_permille);
        else
            log_notice("events", "video source %s: scene settled, background learned anew", m->token);
        publish(m, EVENT_TOPIC_GLOBAL_SCENE_CHANGE, r.scene_change);
    }
    if (r.motion_changed) {
        log_debug("events", "video source %s: motion %s", m->token, r.motion ? "started" : "ended");
        publish(m, EVENT_TOPIC_MOTION_ALARM, r.motion);
    }
}

/* Returns 0, or -1 for a missing source, bus or token, a token longer than
 * an event item value, out-of-range settings or max_fps (1..1000), no memory,
 * or a source that refused the sink (logged). */
int motion_start(struct motion **out, struct source *src, const char *video_source_token, struct events *ev,
                 const struct motion_settings *s, int max_fps)
{
    if (!out)
        return -1;
    *out = NULL;
    if (!src || !ev || !video_source_token || !*video_source_token ||
        strlen(video_source_token) > EVENT_ITEM_VALUE_MAX || max_fps < 1 || max_fps > MAX_FPS_LIMIT)
        return -1;
    struct motion *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    if (motion_detector_new(&m->det, s) != 0) {
        free(m);
        return -1;
    }
    m->src = src;
    m->ev = ev;
    strcpy(m->token, video_source_token);   /* length checked above */
    m->interval_us = 1000000 / max_fps;
    m->slack_us = m->interval_us / 4;
    int rc = source_add_sink(src, motion_sink, m);
    if (rc != SOURCE_OK) {
        log_err("events", "video source %s: motion detection cannot attach: %s", m->token, source_strerror(rc));
        motion_detector_free(m->det);
        free(m);
        return -1;
    }
    log_debug("events", "video source %s: motion detection on (up to %d frames/s)", m->token, max_fps);
    *out = m;
    return 0;
}

void motion_stop(struct motion *m)
{
    if (!m)
        return;
    /* Returns once a delivery in progress is over; the sink is never called again. */
    source_remove_sink(m->src, motion_sink, m);
    /* Nobody watches any more: subscribers must not be left with an alarm. */
    if (m->motion_on)
        publish(m, EVENT_TOPIC_MOTION_ALARM, 0);
    if (m->scene_on)
        publish(m, EVENT_TOPIC_GLOBAL_SCENE_CHANGE, 0);
    log_debug("events", "video source %s: motion detection off", m->token);
    motion_detector_free(m->det);
    free(m);
}
