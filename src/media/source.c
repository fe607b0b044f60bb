/* Video sources: the built-in test pattern (colour bars, a moving box and a
 * burnt-in clock, drawn straight into YUV420P), a V4L2 camera (libavdevice)
 * or a looping file (libavformat), delivered to registered sinks on one
 * capture thread that runs only while someone wants frames. */
#include "opennvt/source.h"
#include "opennvt/log.h"

#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/buffer.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRC_DIM_MIN 16
#define SRC_WIDTH_MAX 7680
#define SRC_HEIGHT_MAX 4320
#define SRC_RATE_MAX 120
#define SRC_DEFAULT_WIDTH 1920
#define SRC_DEFAULT_HEIGHT 1080
#define SRC_DEFAULT_RATE 30
#define SRC_FILE_DEFAULT_RATE 25
#define SRC_MAX_SINKS 16
#define SRC_SLEEP_SLICE_NS 100000000LL   /* the capture thread notices a stop within this */
#define SRC_RETRY_NS 1000000000LL        /* between attempts to reopen a failing input */
#define SRC_STALL_NS 5000000000LL        /* a camera silent this long is reopened */
#define SRC_POLL_NS 2000000LL            /* between reads of a camera with no frame ready */
#define SRC_PICTURE_HEADER 64            /* bytes before the planes in a picture buffer */
#define NS_PER_S 1000000000LL

enum source_kind { KIND_TESTSRC, KIND_TESTSRC_STILL, KIND_V4L2, KIND_FILE };

struct rect {
    int x, y, w, h;                      /* even, inside the picture */
};

/* Kept at the start of every picture buffer of the pool: what the test
 * pattern drew over the background last time the buffer was used, so only
 * those rectangles need restoring. */
struct picture_header {
    int valid;                           /* 0: fresh from the pool, background not copied yet */
    int n_dirty;
    struct rect dirty[2];
};

/* An opened V4L2 device or file, decoding its video stream. */
struct input {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int sws_w, sws_h, sws_fmt, sws_full;
    int stream;
    int frames_since_seek;
};

struct sink {
    source_sink_fn fn;
    void *arg;
};

struct source {
    enum source_kind kind;
    char url[PATH_MAX + 8];              /* what libavformat opens */
    int width, height, framerate;        /* delivered */
    int req_width, req_height, req_rate; /* asked of a V4L2 device */

    /* Pictures: one pool of YUV420P buffers of the delivered size. */
    AVBufferPool *pool;
    int linesize[3];
    size_t plane_off[3];

    /* Test pattern. */
    uint8_t *bg;                         /* the background, in the picture layout */
    AVFrame *still;
    atomic_ullong frame_no;

    pthread_mutex_t ctl;                 /* starting and stopping the capture */
    pthread_t thread;
    int running;
    atomic_int stop;
    struct input *in;                    /* opened for the capture thread; owned by it while running */
    int input_failing;                   /* capture thread only */
    int64_t last_frame_ns;               /* capture thread only */

    pthread_mutex_t sinks_lock;          /* the table; held while sinks run */
    struct sink sinks[SRC_MAX_SINKS];
    int n_sinks;

    pthread_mutex_t frame_lock;          /* the latest frame */
    pthread_cond_t frame_cond;
    AVFrame *latest;                     /* holds a picture only while capturing */
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static struct timespec ns_to_timespec(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S) };
    return ts;
}

/* Sleeps until the CLOCK_MONOTONIC deadline (absolute, so pacing does not
 * drift), waking regularly to notice a stop. Returns 0, or -1 when stopped. */
static int sleep_until(struct source *src, int64_t deadline_ns)
{
    for (;;) {
        if (atomic_load(&src->stop))
            return -1;
        int64_t now = monotonic_ns();
        if (now >= deadline_ns)
            return 0;
        int64_t wake = deadline_ns - now > SRC_SLEEP_SLICE_NS ? now + SRC_SLEEP_SLICE_NS : deadline_ns;
        struct timespec ts = ns_to_timespec(wake);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
}

static int align_up(int v, int a)
{
    return (v + a - 1) / a * a;
}

/* --- pictures ------------------------------------------------------------------ */

static int pool_init(struct source *src)
{
    int cw = src->width / 2, ch = src->height / 2;
    src->linesize[0] = align_up(src->width, 64);
    src->linesize[1] = src->linesize[2] = align_up(cw, 64);
    src->plane_off[0] = SRC_PICTURE_HEADER;
    src->plane_off[1] = src->plane_off[0] + (size_t)src->linesize[0] * src->height;
    src->plane_off[2] = src->plane_off[1] + (size_t)src->linesize[1] * ch;
    size_t size = src->plane_off[2] + (size_t)src->linesize[2] * ch + 64;   /* readers may overshoot a little */
    src->pool = av_buffer_pool_init(size, av_buffer_allocz);
    return src->pool ? 0 : -1;
}

/* A frame on a buffer of the pool; *hdr gets the buffer's header. */
static AVFrame *pool_frame(struct source *src, struct picture_header **hdr)
{
    AVBufferRef *buf = av_buffer_pool_get(src->pool);
    if (!buf)
        return NULL;
    AVFrame *f = av_frame_alloc();
    if (!f) {
        av_buffer_unref(&buf);
        return NULL;
    }
    f->buf[0] = buf;
    for (int i = 0; i < 3; i++) {
        f->data[i] = buf->data + src->plane_off[i];
        f->linesize[i] = src->linesize[i];
    }
    f->format = AV_PIX_FMT_YUV420P;
    f->width = src->width;
    f->height = src->height;
    f->color_range = AVCOL_RANGE_MPEG;
    f->sample_aspect_ratio = (AVRational){ 1, 1 };
    if (hdr)
        *hdr = (struct picture_header *)buf->data;
    return f;
}

/* --- test pattern ---------------------------------------------------------------- */

/* 75% colour bars, BT.601 limited range: white, yellow, cyan, green,
 * magenta, red, blue, black. */
static const uint8_t bar_yuv[8][3] = {
    { 180, 128, 128 }, { 162, 44, 142 }, { 131, 156, 44 }, { 112, 72, 58 },
    { 84, 184, 198 },  { 65, 100, 212 }, { 35, 212, 114 }, { 16, 128, 128 },
};

/* Digits and clock punctuation, 8x8 cells, bit 7 leftmost. */
static const char font_chars[] = "0123456789:.# ";
static const uint8_t font[][8] = {
    { 0x78, 0xCC, 0xDC, 0xFC, 0xEC, 0xCC, 0x78, 0x00 },   /* 0 */
    { 0x30, 0x70, 0x30, 0x30, 0x30, 0x30, 0xFC, 0x00 },   /* 1 */
    { 0x78, 0xCC, 0x0C, 0x38, 0x60, 0xC0, 0xFC, 0x00 },   /* 2 */
    { 0x78, 0xCC, 0x0C, 0x38, 0x0C, 0xCC, 0x78, 0x00 },   /* 3 */
    { 0x1C, 0x3C, 0x6C, 0xCC, 0xFC, 0x0C, 0x0C, 0x00 },   /* 4 */
    { 0xFC, 0xC0, 0xF8, 0x0C, 0x0C, 0xCC, 0x78, 0x00 },   /* 5 */
    { 0x38, 0x60, 0xC0, 0xF8, 0xCC, 0xCC, 0x78, 0x00 },   /* 6 */
    { 0xFC, 0xCC, 0x0C, 0x18, 0x30, 0x30, 0x30, 0x00 },   /* 7 */
    { 0x78, 0xCC, 0xCC, 0x78, 0xCC, 0xCC, 0x78, 0x00 },   /* 8 */
    { 0x78, 0xCC, 0xCC, 0x7C, 0x0C, 0x18, 0x70, 0x00 },   /* 9 */
    { 0x00, 0x30, 0x30, 0x00, 0x30, 0x30, 0x00, 0x00 },   /* : */
    { 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x30, 0x00 },   /* . */
    { 0x48, 0x48, 0xFC, 0x48, 0xFC, 0x48, 0x48, 0x00 },   /* # */
    { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },   /* space */
};

#define CLOCK_TEXT_LEN 20                /* "HH:MM:SS.mmm #NNNNNN" */

static uint8_t *bg_plane(const struct source *src, int i)
{
    return src->bg + src->plane_off[i];
}

/* Bars over the top three quarters, a grey ramp below: detail for the
 * encoders, colours to check a decoder by eye. */
static int background_init(struct source *src)
{
    size_t size = src->plane_off[2] + (size_t)src->linesize[2] * (src->height / 2);
    src->bg = malloc(size);
    if (!src->bg)
        return -1;
    int w = src->width, h = src->height, bars_h = (h * 3 / 4) & ~1;
    uint8_t *y = bg_plane(src, 0), *u = bg_plane(src, 1), *v = bg_plane(src, 2);
    for (int x = 0; x < w; x++) {
        int bar = x * 8 / w;
        y[x] = bar_yuv[bar][0];
        y[(size_t)bars_h * src->linesize[0] + x] = (uint8_t)(16 + x * 219 / (w > 1 ? w - 1 : 1));
    }
    for (int x = 0; x < w / 2; x++) {
        int bar = x * 2 * 8 / w;
        u[x] = bar_yuv[bar][1];
        v[x] = bar_yuv[bar][2];
    }
    for (int r = 1; r < h; r++)
        if (r != bars_h)
            memcpy(y + (size_t)r * src->linesize[0], y + (size_t)(r < bars_h ? 0 : bars_h) * src->linesize[0],
                   (size_t)w);
    for (int r = 1; r < h / 2; r++) {
        int ramp = r >= bars_h / 2;
        memset(u + (size_t)r * src->linesize[1], 128, (size_t)w / 2);
        memset(v + (size_t)r * src->linesize[2], 128, (size_t)w / 2);
        if (!ramp) {
            memcpy(u + (size_t)r * src->linesize[1], u, (size_t)w / 2);
            memcpy(v + (size_t)r * src->linesize[2], v, (size_t)w / 2);
        }
    }
    return 0;
}

static void restore_rect(const struct source *src, AVFrame *f, const struct rect *r)
{
    for (int i = 0; i < 3; i++) {
        int sh = i ? 1 : 0;
        const uint8_t *from = bg_plane(src, i);
        for (int row = r->y >> sh; row < (r->y + r->h) >> sh; row++)
            memcpy(f->data[i] + (size_t)row * f->linesize[i] + (r->x >> sh),
                   from + (size_t)row * src->linesize[i] + (r->x >> sh), (size_t)(r->w >> sh));
    }
}

static void fill_rect(AVFrame *f, const struct rect *r, uint8_t y, uint8_t u, uint8_t v)
{
    for (int row = r->y; row < r->y + r->h; row++)
        memset(f->data[0] + (size_t)row * f->linesize[0] + r->x, y, (size_t)r->w);
    for (int row = r->y / 2; row < (r->y + r->h) / 2; row++) {
        memset(f->data[1] + (size_t)row * f->linesize[1] + r->x / 2, u, (size_t)r->w / 2);
        memset(f->data[2] + (size_t)row * f->linesize[2] + r->x / 2, v, (size_t)r->w / 2);
    }
}

static int box_size(const struct source *src)
{
    int s = (src->height / 6) & ~1;
    return s < 8 ? 8 : s;
}

/* Position along a span, bouncing between 0 and span (even values). */
static int bounce(unsigned long long n, int step, int span)
{
    if (span <= 0)
        return 0;
    unsigned long long period = 2ULL * (unsigned)span;
    int p = (int)((n * (unsigned)step) % period);
    if (p > span)
        p = 2 * span - p;
    return p & ~1;
}

/* The box, n frames in: moving, its colour cycling. Returns its rectangle. */
static struct rect draw_box(const struct source *src, AVFrame *f, unsigned long long n, int moving)
{
    int s = box_size(src);
    if (s > src->width)
        s = src->width & ~1;
    if (s > src->height)
        s = src->height & ~1;
    int step_x = (src->width / 120) & ~1, step_y = (src->height / 135) & ~1;
    struct rect r = { 0, 0, s, s };
    if (moving) {
        r.x = bounce(n, step_x < 2 ? 2 : step_x, src->width - s);
        r.y = bounce(n, step_y < 2 ? 2 : step_y, src->height - s);
    } else {
        r.x = ((src->width - s) / 2) & ~1;
        r.y = ((src->height - s) / 2) & ~1;
    }
    const uint8_t *c = bar_yuv[moving ? (n / 4) % 7 : 0];
    fill_rect(f, &r, c[0], c[1], c[2]);
    int q = (s / 4) & ~1;
    struct rect inner = { r.x + q, r.y + q, s - 2 * q, s - 2 * q };
    if (inner.w > 0)
        fill_rect(f, &inner, 16, 128, 128);
    return r;
}

static int text_scale(const struct source *src)
{
    int s = (src->height + 179) / 180;
    int fit = (src->width - 8) / (CLOCK_TEXT_LEN * 8 + 4);
    if (s > fit)
        s = fit;
    return s < 1 ? 1 : s;
}

/* The wall clock and the frame number, white on black at the top left.
 * Returns the rectangle it covers. */
static struct rect draw_clock(const struct source *src, AVFrame *f, unsigned long long n)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    localtime_r(&now.tv_sec, &tm);
    char text[64];
    snprintf(text, sizeof text, "%02d:%02d:%02d.%03d #%06u", tm.tm_hour % 24, tm.tm_min % 60, tm.tm_sec % 61,
             (int)(now.tv_nsec / 1000000) % 1000, (unsigned)(n % 1000000));

    int s = text_scale(src), pad = 2 * s;
    struct rect r = { 2 * s, 2 * s, CLOCK_TEXT_LEN * 8 * s + 2 * pad, 8 * s + 2 * pad };
    if (r.x + r.w > src->width)
        r.w = (src->width - r.x) & ~1;
    if (r.y + r.h > src->height)
        r.h = (src->height - r.y) & ~1;
    if (r.w <= 0 || r.h <= 0)
        return (struct rect){ 0, 0, 0, 0 };
    fill_rect(f, &r, 16, 128, 128);
    int x_end = r.x + r.w, y_end = r.y + r.h;
    for (int i = 0; text[i] && i < CLOCK_TEXT_LEN; i++) {
        const char *at = strchr(font_chars, text[i]);
        const uint8_t *g = font[at ? at - font_chars : (int)sizeof font_chars - 2];
        int gx = r.x + pad + i * 8 * s;
        for (int gr = 0; gr < 8; gr++) {
            for (int line = 0; line < s; line++) {
                int y = r.y + pad + gr * s + line;
                if (y >= y_end)
                    break;
                uint8_t *row = f->data[0] + (size_t)y * f->linesize[0];
                for (int b = 0; b < 8; b++) {
                    if (!(g[gr] & (0x80 >> b)))
                        continue;
                    int x0 = gx + b * s, x1 = x0 + s;
                    if (x1 > x_end)
                        x1 = x_end;
                    if (x0 < x1)
                        memset(row + x0, 235, (size_t)(x1 - x0));
                }
            }
        }
    }
    return r;
}

/* One picture of the moving pattern: the buffer's previous drawings are
 * put back to the background, then the box and the clock drawn anew. */
static AVFrame *testsrc_render(struct source *src)
{
    if (src->still)
        return av_frame_clone(src->still);
    struct picture_header *hdr;
    AVFrame *f = pool_frame(src, &hdr);
    if (!f)
        return NULL;
    if (!hdr->valid) {
        size_t planes = src->plane_off[2] + (size_t)src->linesize[2] * (src->height / 2) - src->plane_off[0];
        memcpy(f->data[0], bg_plane(src, 0), planes);
        hdr->valid = 1;
    } else {
        for (int i = 0; i < hdr->n_dirty; i++)
            restore_rect(src, f, &hdr->dirty[i]);
    }
    unsigned long long n = atomic_fetch_add(&src->frame_no, 1);
    hdr->dirty[0] = draw_box(src, f, n, 1);
    hdr->dirty[1] = draw_clock(src, f, n);
    hdr->n_dirty = 2;
    return f;
}

static int testsrc_init(struct source *src)
{
    if (pool_init(src) != 0 || background_init(src) != 0)
        return SOURCE_E_NOMEM;
    if (src->kind == KIND_TESTSRC_STILL) {
        AVFrame *f = pool_frame(src, NULL);
        if (!f)
            return SOURCE_E_NOMEM;
        size_t planes = src->plane_off[2] + (size_t)src->linesize[2] * (src->height / 2) - src->plane_off[0];
        memcpy(f->data[0], bg_plane(src, 0), planes);
        draw_box(src, f, 0, 0);
        src->still = f;
    }
    return SOURCE_OK;
}

/* --- V4L2 and files ---------------------------------------------------------------- */

static int interrupted(void *arg)
{
    struct source *src = arg;
    return atomic_load(&src->stop);
}

static void input_close(struct input *in)
{
    if (!in)
        return;
    avcodec_free_context(&in->dec);
    avformat_close_input(&in->fmt);
    av_packet_free(&in->pkt);
    av_frame_free(&in->frame);
    sws_freeContext(in->sws);
    free(in);
}

static int input_open(struct source *src, struct input **out)
{
    *out = NULL;
    struct input *in = calloc(1, sizeof *in);
    if (!in)
        return SOURCE_E_NOMEM;
    in->sws_fmt = AV_PIX_FMT_NONE;
    in->pkt = av_packet_alloc();
    in->frame = av_frame_alloc();
    in->fmt = avformat_alloc_context();
    if (!in->pkt || !in->frame || !in->fmt) {
        input_close(in);
        return SOURCE_E_NOMEM;
    }
    in->fmt->interrupt_callback = (AVIOInterruptCB){ interrupted, src };
    if (src->kind == KIND_V4L2)
        in->fmt->flags |= AVFMT_FLAG_NONBLOCK;   /* a stalled camera must not hold up a stop */

    AVDictionary *opts = NULL;
    const AVInputFormat *ifmt = NULL;
    if (src->kind == KIND_V4L2) {
        ifmt = av_find_input_format("video4linux2");
        if (!ifmt) {
            input_close(in);
            return SOURCE_E_OPEN;
        }
        char v[32];
        if (src->req_width > 0 && src->req_height > 0) {
            snprintf(v, sizeof v, "%dx%d", src->req_width, src->req_height);
            av_dict_set(&opts, "video_size", v, 0);
        }
        if (src->req_rate > 0) {
            snprintf(v, sizeof v, "%d", src->req_rate);
            av_dict_set(&opts, "framerate", v, 0);
        }
    } else {
        /* Only local files, also for whatever a container refers to. */
        av_dict_set(&opts, "protocol_whitelist", "file", 0);
    }
    int ret = avformat_open_input(&in->fmt, src->url, ifmt, &opts);   /* frees fmt on failure */
    av_dict_free(&opts);
    if (ret < 0) {
        in->fmt = NULL;
        input_close(in);
        return SOURCE_E_OPEN;
    }
    const AVCodec *codec = NULL;
    if (avformat_find_stream_info(in->fmt, NULL) < 0 ||
        (in->stream = av_find_best_stream(in->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)) < 0 || !codec) {
        input_close(in);
        return SOURCE_E_OPEN;
    }
    in->dec = avcodec_alloc_context3(codec);
    if (!in->dec || avcodec_parameters_to_context(in->dec, in->fmt->streams[in->stream]->codecpar) < 0) {
        input_close(in);
        return SOURCE_E_OPEN;
    }
    if (src->kind == KIND_V4L2)
        in->dec->thread_type = FF_THREAD_SLICE;   /* frame threads would delay live pictures */
    if (avcodec_open2(in->dec, codec, NULL) < 0) {
        input_close(in);
        return SOURCE_E_OPEN;
    }
    for (unsigned i = 0; i < in->fmt->nb_streams; i++)
        if ((int)i != in->stream)
            in->fmt->streams[i]->discard = AVDISCARD_ALL;
    *out = in;
    return SOURCE_OK;
}

/* Back to the start of a file. */
static int input_rewind(struct input *in)
{
    AVStream *st = in->fmt->streams[in->stream];
    int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    if (av_seek_frame(in->fmt, in->stream, start, AVSEEK_FLAG_BACKWARD) < 0 &&
        avformat_seek_file(in->fmt, -1, INT64_MIN, 0, INT64_MAX, 0) < 0)
        return -1;
    avcodec_flush_buffers(in->dec);
    in->frames_since_seek = 0;
    return 0;
}

/* The next decoded picture into in->frame; a file starts over at its end.
 * Returns 0 or a negative AVERROR. */
static int input_decode(struct input *in, int loop)
{
    int rewinds = 0;
    for (;;) {
        int ret = avcodec_receive_frame(in->dec, in->frame);
        if (ret == 0) {
            in->frames_since_seek++;
            return 0;
        }
        if (ret == AVERROR_EOF) {
            /* A pass that gave no picture would loop forever. */
            if (!loop || (in->frames_since_seek == 0 && ++rewinds > 1) || input_rewind(in) != 0)
                return AVERROR_EOF;
            continue;
        }
        if (ret == AVERROR_INVALIDDATA)   /* a damaged picture: go on with the next */
            continue;
        if (ret != AVERROR(EAGAIN))
            return ret;
        ret = av_read_frame(in->fmt, in->pkt);
        if (ret == AVERROR(EAGAIN))   /* a camera with no frame ready yet */
            return ret;
        if (ret == AVERROR_EOF || (ret < 0 && in->fmt->pb && avio_feof(in->fmt->pb))) {
            avcodec_send_packet(in->dec, NULL);   /* drain what the decoder still holds */
            continue;
        }
        if (ret < 0)
            return ret;
        if (in->pkt->stream_index == in->stream) {
            ret = avcodec_send_packet(in->dec, in->pkt);
            if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_INVALIDDATA) {
                av_packet_unref(in->pkt);
                return ret;
            }
        }
        av_packet_unref(in->pkt);
    }
}

static int frame_full_range(const AVFrame *f)
{
    return f->color_range == AVCOL_RANGE_JPEG || f->format == AV_PIX_FMT_YUVJ420P ||
           f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P;
}

/* The decoded picture as a delivered frame: passed on as it is when it
 * already is limited-range YUV420P of the delivered size, else converted. */
static AVFrame *input_picture(struct source *src, struct input *in)
{
    AVFrame *d = in->frame;
    int full = frame_full_range(d);
    if (d->format == AV_PIX_FMT_YUV420P && !full && d->width == src->width && d->height == src->height) {
        AVFrame *f = av_frame_alloc();
        if (f)
            av_frame_move_ref(f, d);
        return f;
    }
    if (!in->sws || in->sws_w != d->width || in->sws_h != d->height || in->sws_fmt != d->format ||
        in->sws_full != full) {
        sws_freeContext(in->sws);
        in->sws = sws_getContext(d->width, d->height, d->format, src->width, src->height, AV_PIX_FMT_YUV420P,
                                 SWS_BILINEAR, NULL, NULL, NULL);
        if (!in->sws)
            return NULL;
        const int *coefs = sws_getCoefficients(SWS_CS_ITU601);
        sws_setColorspaceDetails(in->sws, coefs, full, coefs, 0, 0, 1 << 16, 1 << 16);
        in->sws_w = d->width;
        in->sws_h = d->height;
        in->sws_fmt = d->format;
        in->sws_full = full;
    }
    AVFrame *f = pool_frame(src, NULL);
    if (f && sws_scale(in->sws, (const uint8_t *const *)d->data, d->linesize, 0, d->height, f->data, f->linesize) <= 0)
        av_frame_free(&f);
    av_frame_unref(d);
    return f;
}

static int even_clamp(int v, int max)
{
    v &= ~1;
    return v < SRC_DIM_MIN ? SRC_DIM_MIN : v > max ? max : v;
}

/* Opens the input once to learn what it delivers. */
static int input_probe(struct source *src)
{
    struct input *in;
    int rc = input_open(src, &in);
    if (rc != SOURCE_OK)
        return rc;
    int ret;
    int64_t give_up = monotonic_ns() + SRC_STALL_NS;
    while ((ret = input_decode(in, 0)) == AVERROR(EAGAIN) && monotonic_ns() < give_up)
        sleep_until(src, monotonic_ns() + SRC_POLL_NS);
    if (ret != 0 || in->frame->width <= 0 || in->frame->height <= 0) {
        input_close(in);
        return SOURCE_E_OPEN;
    }
    src->width = even_clamp(in->frame->width, SRC_WIDTH_MAX);
    src->height = even_clamp(in->frame->height, SRC_HEIGHT_MAX);
    AVStream *st = in->fmt->streams[in->stream];
    AVRational r = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? st->avg_frame_rate : st->r_frame_rate;
    int rate = r.num > 0 && r.den > 0 ? (int)((r.num + r.den / 2) / r.den) : 0;
    if (rate <= 0)
        rate = src->kind == KIND_V4L2 && src->req_rate > 0 ? src->req_rate : SRC_FILE_DEFAULT_RATE;
    src->framerate = rate > SRC_RATE_MAX ? SRC_RATE_MAX : rate;
    input_close(in);
    return SOURCE_OK;
}

/* --- capture thread --------------------------------------------------------------- */

static void publish(struct source *src, AVFrame *f, int64_t pts_us)
{
    pthread_mutex_lock(&src->frame_lock);
    av_frame_unref(src->latest);
    if (av_frame_ref(src->latest, f) == 0)
        pthread_cond_broadcast(&src->frame_cond);
    pthread_mutex_unlock(&src->frame_lock);

    pthread_mutex_lock(&src->sinks_lock);
    for (int i = 0; i < src->n_sinks; i++)
        src->sinks[i].fn(src->sinks[i].arg, f, pts_us);
    pthread_mutex_unlock(&src->sinks_lock);
}

/* The next frame of a V4L2 device or file (reopening an input that fails),
 * or NULL when stopping or nothing could be had this time. */
static AVFrame *input_next(struct source *src)
{
    if (!src->in) {
        if (sleep_until(src, monotonic_ns() + SRC_RETRY_NS) != 0)
            return NULL;
        if (input_open(src, &src->in) != SOURCE_OK)
            return NULL;
        log_info("media", "video source %s: reopened", src->url);
        src->input_failing = 0;
        src->last_frame_ns = monotonic_ns();
    }
    int ret = input_decode(src->in, src->kind == KIND_FILE);
    if (ret == AVERROR(EAGAIN)) {
        int64_t now = monotonic_ns();
        if (now - src->last_frame_ns < SRC_STALL_NS) {
            sleep_until(src, now + SRC_POLL_NS);
            return NULL;
        }
        ret = AVERROR(ETIMEDOUT);
    }
    if (ret != 0) {
        if (!atomic_load(&src->stop) && !src->input_failing) {
            char msg[AV_ERROR_MAX_STRING_SIZE];
            av_strerror(ret, msg, sizeof msg);
            log_warning("media", "video source %s: %s; trying again", src->url, msg);
            src->input_failing = 1;
        }
        input_close(src->in);
        src->in = NULL;
        return NULL;
    }
    src->last_frame_ns = monotonic_ns();
    return input_picture(src, src->in);
}

static void *capture_thread(void *arg)
{
    struct source *src = arg;
    /* Named before the first frame (sinks and benchmarks tell threads apart by name). */
    pthread_setname_np(pthread_self(), "opennvt-source");
    log_info("media", "video source %s: capture started (%dx%d, %d fps)",
            src->kind == KIND_TESTSRC || src->kind == KIND_TESTSRC_STILL ? "testsrc" : src->url, src->width,
            src->height, src->framerate);
    int64_t period = NS_PER_S / src->framerate;
    int64_t start = monotonic_ns();
    int64_t k = 0;
    while (!atomic_load(&src->stop)) {
        if (src->kind != KIND_V4L2) {
            int64_t deadline = start + k * NS_PER_S / src->framerate;
            int64_t now = monotonic_ns();
            if (now - deadline > 4 * period) {   /* far behind (suspended, slow decode): start over */
                start = now;
                k = 0;
                deadline = now;
            }
            if (sleep_until(src, deadline) != 0)
                break;
            k++;
        }
        AVFrame *f = src->kind == KIND_V4L2 || src->kind == KIND_FILE ? input_next(src) : testsrc_render(src);
        if (!f)
            continue;
        publish(src, f, monotonic_ns() / 1000);
        av_frame_free(&f);
    }
    pthread_mutex_lock(&src->frame_lock);
    av_frame_unref(src->latest);
    pthread_mutex_unlock(&src->frame_lock);
    input_close(src->in);
    src->in = NULL;
    log_info("media", "video source %s: capture stopped",
            src->kind == KIND_TESTSRC || src->kind == KIND_TESTSRC_STILL ? "testsrc" : src->url);
    return NULL;
}

/* Caller holds ctl. */
static int capture_start(struct source *src)
{
    if (src->running)
        return SOURCE_OK;
    atomic_store(&src->stop, 0);   /* also read by the input's interrupt callback */
    if (src->kind == KIND_V4L2 || src->kind == KIND_FILE) {
        int rc = input_open(src, &src->in);
        if (rc != SOURCE_OK)
            return rc;
        src->input_failing = 0;
        src->last_frame_ns = monotonic_ns();
    }
    if (pthread_create(&src->thread, NULL, capture_thread, src) != 0) {
        input_close(src->in);
        src->in = NULL;
        return SOURCE_E_NOMEM;
    }
    src->running = 1;
    return SOURCE_OK;
}

/* Caller holds ctl, not sinks_lock. */
static void capture_stop(struct source *src)
{
    if (!src->running)
        return;
    atomic_store(&src->stop, 1);
    pthread_join(src->thread, NULL);
    src->running = 0;
}

/* --- public ------------------------------------------------------------------------- */

static int parse_spec(struct source *src, const char *spec)
{
    if (!spec || !*spec || strcmp(spec, "testsrc") == 0) {
        src->kind = KIND_TESTSRC;
        return SOURCE_OK;
    }
    if (strcmp(spec, "testsrc:still") == 0) {
        src->kind = KIND_TESTSRC_STILL;
        return SOURCE_OK;
    }
    const char *path;
    if (strncmp(spec, "v4l2:", 5) == 0) {
        src->kind = KIND_V4L2;
        path = spec + 5;
        if (path[0] != '/' || strlen(path) >= PATH_MAX)
            return SOURCE_E_SPEC;
        snprintf(src->url, sizeof src->url, "%s", path);
        return SOURCE_OK;
    }
    if (strncmp(spec, "file:", 5) == 0) {
        src->kind = KIND_FILE;
        path = spec + 5;
        if (!*path || strlen(path) >= PATH_MAX)
            return SOURCE_E_SPEC;
        /* The "file:" prefix keeps libavformat from reading the path as another protocol's URL. */
        snprintf(src->url, sizeof src->url, "file:%s", path);
        return SOURCE_OK;
    }
    return SOURCE_E_SPEC;
}

static int clamp(int v, int lo, int hi, int dflt)
{
    if (v <= 0)
        return dflt;
    return v < lo ? lo : v > hi ? hi : v;
}

int source_open(struct source **out, const struct source_settings *s)
{
    if (!out)
        return SOURCE_E_SPEC;
    *out = NULL;
    struct source *src = calloc(1, sizeof *src);
    if (!src)
        return SOURCE_E_NOMEM;
    int rc = parse_spec(src, s ? s->spec : NULL);
    if (rc != SOURCE_OK) {
        free(src);
        return rc;
    }
    src->width = clamp(s ? s->width : 0, SRC_DIM_MIN, SRC_WIDTH_MAX, SRC_DEFAULT_WIDTH) & ~1;
    src->height = clamp(s ? s->height : 0, SRC_DIM_MIN, SRC_HEIGHT_MAX, SRC_DEFAULT_HEIGHT) & ~1;
    src->framerate = clamp(s ? s->framerate : 0, 1, SRC_RATE_MAX, SRC_DEFAULT_RATE);
    src->req_width = s && s->width > 0 ? src->width : 0;
    src->req_height = s && s->height > 0 ? src->height : 0;
    src->req_rate = s && s->framerate > 0 ? src->framerate : 0;
    atomic_init(&src->frame_no, 0);
    atomic_init(&src->stop, 0);
    pthread_mutex_init(&src->ctl, NULL);
    pthread_mutex_init(&src->sinks_lock, NULL);
    pthread_mutex_init(&src->frame_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&src->frame_cond, &ca);
    pthread_condattr_destroy(&ca);
    src->latest = av_frame_alloc();
    if (!src->latest) {
        source_close(src);
        return SOURCE_E_NOMEM;
    }

    if (src->kind == KIND_V4L2 || src->kind == KIND_FILE) {
        if (src->kind == KIND_V4L2)
            avdevice_register_all();
        rc = input_probe(src);
        if (rc == SOURCE_OK && pool_init(src) != 0)
            rc = SOURCE_E_NOMEM;
    } else {
        rc = testsrc_init(src);
    }
    if (rc != SOURCE_OK) {
        source_close(src);
        return rc;
    }
    *out = src;
    return SOURCE_OK;
}

void source_close(struct source *src)
{
    if (!src)
        return;
    pthread_mutex_lock(&src->ctl);
    capture_stop(src);
    pthread_mutex_unlock(&src->ctl);
    av_frame_free(&src->latest);
    av_frame_free(&src->still);
    av_buffer_pool_uninit(&src->pool);   /* buffers still held elsewhere go when released */
    free(src->bg);
    pthread_mutex_destroy(&src->ctl);
    pthread_mutex_destroy(&src->sinks_lock);
    pthread_mutex_destroy(&src->frame_lock);
    pthread_cond_destroy(&src->frame_cond);
    free(src);
}

void source_format(const struct source *src, int *width, int *height, int *framerate)
{
    if (width)
        *width = src ? src->width : 0;
    if (height)
        *height = src ? src->height : 0;
    if (framerate)
        *framerate = src ? src->framerate : 0;
}

/* Sinks run with sinks_lock held: a sink must not add or remove sinks. */
int source_add_sink(struct source *src, source_sink_fn fn, void *arg)
{
    if (!src || !fn)
        return SOURCE_E_SPEC;
    pthread_mutex_lock(&src->ctl);
    pthread_mutex_lock(&src->sinks_lock);
    if (src->n_sinks >= SRC_MAX_SINKS) {
        pthread_mutex_unlock(&src->sinks_lock);
        pthread_mutex_unlock(&src->ctl);
        return SOURCE_E_NOMEM;
    }
    src->sinks[src->n_sinks++] = (struct sink){ fn, arg };
    pthread_mutex_unlock(&src->sinks_lock);
    int rc = capture_start(src);
    if (rc != SOURCE_OK) {
        pthread_mutex_lock(&src->sinks_lock);
        src->n_sinks--;
        pthread_mutex_unlock(&src->sinks_lock);
    }
    pthread_mutex_unlock(&src->ctl);
    return rc;
}

void source_remove_sink(struct source *src, source_sink_fn fn, void *arg)
{
    if (!src)
        return;
    pthread_mutex_lock(&src->ctl);
    /* Taking sinks_lock waits for a delivery in progress; after this the
     * sink is never called again. */
    pthread_mutex_lock(&src->sinks_lock);
    for (int i = 0; i < src->n_sinks; i++) {
        if (src->sinks[i].fn == fn && src->sinks[i].arg == arg) {
            memmove(&src->sinks[i], &src->sinks[i + 1], (size_t)(src->n_sinks - i - 1) * sizeof src->sinks[0]);
            src->n_sinks--;
            break;
        }
    }
    int left = src->n_sinks;
    pthread_mutex_unlock(&src->sinks_lock);
    if (left == 0)
        capture_stop(src);
    pthread_mutex_unlock(&src->ctl);
}

/* Keeps the capture running while a snapshot waits; the frame itself is
 * taken from src->latest. */
static void snapshot_sink(void *arg, const AVFrame *frame, int64_t pts_us)
{
    (void)arg;
    (void)frame;
    (void)pts_us;
}

static AVFrame *latest_clone(struct source *src)
{
    return src->latest->buf[0] ? av_frame_clone(src->latest) : NULL;
}

int source_latest_frame(struct source *src, int timeout_ms, AVFrame **out)
{
    if (!src || !out)
        return SOURCE_E_NOFRAME;
    *out = NULL;
    pthread_mutex_lock(&src->frame_lock);
    AVFrame *f = latest_clone(src);
    pthread_mutex_unlock(&src->frame_lock);
    if (!f && (src->kind == KIND_TESTSRC || src->kind == KIND_TESTSRC_STILL)) {
        f = testsrc_render(src);   /* no capture needed to draw one */
        if (!f)
            return SOURCE_E_NOMEM;
    }
    if (f) {
        *out = f;
        return SOURCE_OK;
    }

    char token;   /* a unique sink identity for this caller */
    int rc = source_add_sink(src, snapshot_sink, &token);
    if (rc != SOURCE_OK)
        return rc;
    struct timespec until = ns_to_timespec(monotonic_ns() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000);
    pthread_mutex_lock(&src->frame_lock);
    while (!(f = latest_clone(src)))
        if (pthread_cond_timedwait(&src->frame_cond, &src->frame_lock, &until) == ETIMEDOUT)
            break;
    if (!f)
        f = latest_clone(src);
    pthread_mutex_unlock(&src->frame_lock);
    source_remove_sink(src, snapshot_sink, &token);
    if (!f)
        return SOURCE_E_NOFRAME;
    *out = f;
    return SOURCE_OK;
}

const char *source_strerror(int err)
{
    switch (err) {
    case SOURCE_OK: return "ok";
    case SOURCE_E_SPEC: return "unknown video source (use testsrc, testsrc:still, v4l2:/dev/videoN or file:PATH)";
    case SOURCE_E_OPEN: return "the video source cannot be opened or decoded";
    case SOURCE_E_NOMEM: return "out of memory";
    case SOURCE_E_NOFRAME: return "the video source delivered no frame in time";
    default: return "unknown video source error";
    }
}
