/* Live streams: one encoder thread per video encoder configuration in use.
 * The source thread only swaps a frame reference into the stream's mailbox;
 * the encoder thread takes the newest frame, keeps the configured rate,
 * encodes, packetizes once and hands the picture to every subscriber. */
#include "opennvt/stream.h"
#include "opennvt/encoder.h"
#include "opennvt/log.h"
#include "opennvt/source.h"

#include <libavutil/frame.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_MAX_SUBSCRIBERS 64     /* subscribers per stream (the RTSP server uses one) */
#define STREAM_IDLE_WAIT_MS 100

struct stream_sub {
    struct stream *st;
    stream_au_fn fn;
    void *arg;
    struct stream_sub *next;
};

struct stream {
    struct stream_hub *hub;
    char vec_token[MEDIA_TOKEN_MAX + 1];

    pthread_mutex_t lock;             /* everything below except the subscriber list */
    pthread_cond_t wake;
    pthread_t thread;
    int alive, joinable, stop;
    int force_keyframe, reconfigure;
    AVFrame *pending;                 /* newest source frame not yet taken */
    int64_t pending_pts_us;
    int n_subs;
    int64_t empty_since_ms;           /* when the last subscriber left */

    /* Owned by the encoder thread while alive (read by get_info under lock). */
    struct encoder *enc;
    struct media_vec vec;
    struct rtp_sender rtp;
    int rtp_ready;
    int64_t frame_interval_us, next_due_us;

    pthread_mutex_t start_lock;       /* serialises starting the encoder thread */
    pthread_mutex_t deliver_lock;     /* the subscriber list; held while callbacks run */
    struct stream_sub *subs;
};

struct stream_hub {
    struct mediacfg *cfg;
    struct source *src;
    struct stream_hub_settings settings;
    pthread_mutex_t lock;             /* the stream table */
    struct stream *streams[MEDIA_MAX_VECS];
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void encoder_params_of(const struct stream_hub *h, const struct media_vec *v, int src_rate,
                              struct encoder_params *p)
{
    int interval = v->encoding_interval > 0 ? v->encoding_interval : 1;
    int rate = src_rate / interval;
    if (v->framerate > 0 && v->framerate < rate)
        rate = v->framerate;
    if (rate < 1)
        rate = 1;
    memset(p, 0, sizeof *p);
    p->encoding = v->encoding;
    p->width = v->width;
    p->height = v->height;
    p->framerate = rate;
    p->bitrate_kbps = v->bitrate_kbps;
    p->cbr = v->cbr;
    p->gov_length = v->gov_length;
    p->profile = v->profile;
    p->quality = v->quality;
    p->threads = h->settings.encoder_threads;
}

/* Opens the encoder for the configuration as it is now. Caller: the stream
 * is not encoding (thread not alive, or the thread itself). */
static int stream_open_encoder(struct stream *st)
{
    struct media_vec v;
    if (mediacfg_vec(st->hub->cfg, st->vec_token, &v) != MEDIACFG_OK)
        return STREAM_E_NO_CONFIG;
    int sw, sh, rate;
    source_format(st->hub->src, &sw, &sh, &rate);
    struct encoder_params p;
    encoder_params_of(st->hub, &v, rate, &p);
    struct encoder *enc = NULL;
    int rc = encoder_open(&enc, &p, sw, sh);
    if (rc != ENCODER_OK) {
        log_warning("media", "encoder %s (%s %dx%d) did not start: %s", st->vec_token,
                media_encoding_name(v.encoding), v.width, v.height, encoder_strerror(rc));
        return STREAM_E_ENCODER;
    }
    pthread_mutex_lock(&st->lock);
    struct encoder *old = st->enc;
    if (!st->rtp_ready || st->vec.encoding != v.encoding) {
        rtp_sender_init(&st->rtp, v.encoding, st->hub->settings.mtu > 0 ? st->hub->settings.mtu : RTP_DEFAULT_MTU);
        st->rtp_ready = 1;
    }
    st->enc = enc;
    st->vec = v;
    st->frame_interval_us = 1000000 / p.framerate;
    st->next_due_us = 0;
    st->force_keyframe = 1;
    pthread_mutex_unlock(&st->lock);
    encoder_close(old);
    return STREAM_OK;
}

static void stream_close_encoder(struct stream *st)
{
    pthread_mutex_lock(&st->lock);
    struct encoder *enc = st->enc;
    st->enc = NULL;
    pthread_mutex_unlock(&st->lock);
    encoder_close(enc);
}

/* Source thread: keep only the newest frame. */
static void stream_sink(void *arg, const AVFrame *frame, int64_t pts_us)
{
    struct stream *st = arg;
    pthread_mutex_lock(&st->lock);
    if (!st->pending)
        st->pending = av_frame_alloc();
    if (st->pending) {
        av_frame_unref(st->pending);
        if (av_frame_ref(st->pending, frame) == 0) {
            st->pending_pts_us = pts_us;
            pthread_cond_signal(&st->wake);
        }
    }
    pthread_mutex_unlock(&st->lock);
}

/* Frame-rate limit: take a frame when its slot is due. */
static int frame_due(struct stream *st, int64_t pts_us)
{
    if (st->next_due_us == 0 || pts_us - st->next_due_us > 4 * st->frame_interval_us)
        st->next_due_us = pts_us;   /* first frame, or far behind: resynchronise */
    if (pts_us + st->frame_interval_us / 4 < st->next_due_us)
        return 0;
    st->next_due_us += st->frame_interval_us;
    return 1;
}

struct deliver_ctx {
    struct stream *st;
    enum media_encoding encoding;
};

static void deliver(void *arg, const struct encoder_output *out)
{
    struct deliver_ctx *d = arg;
    struct stream *st = d->st;
    /* 90 kHz clock from the capture time, so timestamps follow real time. */
    uint32_t ts = (uint32_t)((uint64_t)out->pts_us * 9 / 100);
    struct media_au *au = rtp_packetize(&st->rtp, d->encoding, out->data, out->len, ts, out->keyframe);
    if (!au)
        return;
    au->capture_us = out->pts_us;
    pthread_mutex_lock(&st->deliver_lock);
    for (struct stream_sub *s = st->subs; s; s = s->next)
        s->fn(s->arg, au);
    pthread_mutex_unlock(&st->deliver_lock);
    media_au_unref(au);
}

static int encode_one(struct stream *st, AVFrame *frame, int64_t pts_us, int force_key)
{
    struct deliver_ctx d = { st, st->vec.encoding };
    return encoder_encode(st->enc, frame, pts_us, force_key, deliver, &d);
}

static void *stream_thread(void *arg)
{
    struct stream *st = arg;
    pthread_setname_np(pthread_self(), "opennvt-encode");   /* benchmarks tell threads apart by name */
    AVFrame *frame = av_frame_alloc();
    int sink_added = 0;
    if (frame && source_add_sink(st->hub->src, stream_sink, st) == SOURCE_OK)
        sink_added = 1;
    else
        log_err("media", "stream %s: the video source did not start", st->vec_token);

    pthread_mutex_lock(&st->lock);
    while (!st->stop && sink_added) {
        if (st->n_subs == 0 && monotonic_ms() - st->empty_since_ms >= st->hub->settings.linger_ms)
            break;
        if (st->reconfigure) {
            st->reconfigure = 0;
            pthread_mutex_unlock(&st->lock);
            if (stream_open_encoder(st) != STREAM_OK)
                stream_close_encoder(st);
            pthread_mutex_lock(&st->lock);
            continue;
        }
        if (!st->pending || !st->pending->buf[0]) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += STREAM_IDLE_WAIT_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&st->wake, &st->lock, &until);
            continue;
        }
        av_frame_move_ref(frame, st->pending);
        int64_t pts_us = st->pending_pts_us;
        if (!st->enc || !frame_due(st, pts_us)) {
            av_frame_unref(frame);
            continue;
        }
        int force_key = st->force_keyframe;
        st->force_keyframe = 0;
        pthread_mutex_unlock(&st->lock);
        int rc = encode_one(st, frame, pts_us, force_key);
        av_frame_unref(frame);
        if (rc != ENCODER_OK)
            log_warning("media", "stream %s: encoding failed: %s", st->vec_token, encoder_strerror(rc));
        pthread_mutex_lock(&st->lock);
    }
    /* From here on a new subscriber joins this thread and starts another. */
    st->alive = 0;
    pthread_mutex_unlock(&st->lock);

    if (sink_added)
        source_remove_sink(st->hub->src, stream_sink, st);
    stream_close_encoder(st);
    av_frame_free(&frame);
    pthread_mutex_lock(&st->lock);
    if (st->pending)
        av_frame_unref(st->pending);
    pthread_mutex_unlock(&st->lock);
    log_info("media", "stream %s stopped", st->vec_token);
    return NULL;
}

/* The stream for a configuration, created on first use. */
static struct stream *stream_of(struct stream_hub *h, const char *vec_token)
{
    struct media_vec v;
    if (!vec_token || mediacfg_vec(h->cfg, vec_token, &v) != MEDIACFG_OK)
        return NULL;
    pthread_mutex_lock(&h->lock);
    struct stream *found = NULL;
    int free_slot = -1;
    for (int i = 0; i < MEDIA_MAX_VECS; i++) {
        if (h->streams[i] && strcmp(h->streams[i]->vec_token, vec_token) == 0) {
            found = h->streams[i];
            break;
        }
        if (!h->streams[i] && free_slot < 0)
            free_slot = i;
    }
    if (!found && free_slot >= 0) {
        struct stream *st = calloc(1, sizeof *st);
        if (st) {
            st->hub = h;
            snprintf(st->vec_token, sizeof st->vec_token, "%s", vec_token);
            pthread_mutex_init(&st->lock, NULL);
            pthread_mutex_init(&st->deliver_lock, NULL);
            pthread_mutex_init(&st->start_lock, NULL);
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_init(&st->wake, &ca);
            pthread_condattr_destroy(&ca);
            h->streams[free_slot] = st;
            found = st;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return found;
}

int stream_hub_open(struct stream_hub **out, struct mediacfg *cfg, struct source *src,
                    const struct stream_hub_settings *s)
{
    struct stream_hub *h = calloc(1, sizeof *h);
    if (!h)
        return STREAM_E_NOMEM;
    h->cfg = cfg;
    h->src = src;
    if (s)
        h->settings = *s;
    if (h->settings.linger_ms < 0)
        h->settings.linger_ms = 0;
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return STREAM_OK;
}

void stream_hub_close(struct stream_hub *h)
{
    if (!h)
        return;
    for (int i = 0; i < MEDIA_MAX_VECS; i++) {
        struct stream *st = h->streams[i];
        if (!st)
            continue;
        pthread_mutex_lock(&st->lock);
        st->stop = 1;
        pthread_cond_signal(&st->wake);
        int joinable = st->joinable;
        st->joinable = 0;
        pthread_mutex_unlock(&st->lock);
        if (joinable)
            pthread_join(st->thread, NULL);
        for (struct stream_sub *s = st->subs, *n; s; s = n) {
            n = s->next;
            free(s);
        }
        encoder_close(st->enc);
        av_frame_free(&st->pending);
        pthread_mutex_destroy(&st->lock);
        pthread_mutex_destroy(&st->deliver_lock);
        pthread_mutex_destroy(&st->start_lock);
        pthread_cond_destroy(&st->wake);
        free(st);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Starts the encoder thread if it is not running. Caller holds st->start_lock
 * and st->lock. */
static int stream_ensure_running(struct stream *st)
{
    if (st->alive)
        return STREAM_OK;
    if (st->joinable) {
        /* A thread that lingered out and is finishing: it takes st->lock on its way out. */
        pthread_t t = st->thread;
        st->joinable = 0;
        pthread_mutex_unlock(&st->lock);
        pthread_join(t, NULL);
        pthread_mutex_lock(&st->lock);
    }
    pthread_mutex_unlock(&st->lock);
    int rc = stream_open_encoder(st);
    pthread_mutex_lock(&st->lock);
    if (rc != STREAM_OK)
        return rc;
    st->stop = 0;
    st->reconfigure = 0;
    if (pthread_create(&st->thread, NULL, stream_thread, st) != 0)
        return STREAM_E_NOMEM;
    st->alive = 1;
    st->joinable = 1;
    log_info("media", "stream %s started (%s %dx%d)", st->vec_token,
            media_encoding_name(st->vec.encoding), st->vec.width, st->vec.height);
    return STREAM_OK;
}

int stream_subscribe(struct stream_hub *h, const char *vec_token, stream_au_fn fn, void *arg,
                     struct stream_sub **out)
{
    struct stream *st = stream_of(h, vec_token);
    if (!st)
        return STREAM_E_NO_CONFIG;
    struct stream_sub *sub = calloc(1, sizeof *sub);
    if (!sub)
        return STREAM_E_NOMEM;
    sub->st = st;
    sub->fn = fn;
    sub->arg = arg;

    pthread_mutex_lock(&st->start_lock);
    pthread_mutex_lock(&st->lock);
    if (st->n_subs >= STREAM_MAX_SUBSCRIBERS) {
        pthread_mutex_unlock(&st->lock);
        pthread_mutex_unlock(&st->start_lock);
        free(sub);
        return STREAM_E_BUSY;
    }
    int rc = stream_ensure_running(st);
    if (rc != STREAM_OK) {
        pthread_mutex_unlock(&st->lock);
        pthread_mutex_unlock(&st->start_lock);
        free(sub);
        return rc;
    }
    st->n_subs++;
    st->force_keyframe = 1;   /* the new subscriber wants a decodable start soon */
    pthread_mutex_lock(&st->deliver_lock);
    sub->next = st->subs;
    st->subs = sub;
    pthread_mutex_unlock(&st->deliver_lock);
    pthread_mutex_unlock(&st->lock);
    pthread_mutex_unlock(&st->start_lock);
    *out = sub;
    return STREAM_OK;
}

void stream_unsubscribe(struct stream_sub *sub)
{
    if (!sub)
        return;
    struct stream *st = sub->st;
    pthread_mutex_lock(&st->deliver_lock);   /* waits for a running callback */
    for (struct stream_sub **p = &st->subs; *p; p = &(*p)->next)
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    pthread_mutex_unlock(&st->deliver_lock);
    pthread_mutex_lock(&st->lock);
    if (--st->n_subs == 0) {
        st->empty_since_ms = monotonic_ms();
        pthread_cond_signal(&st->wake);
    }
    pthread_mutex_unlock(&st->lock);
    free(sub);
}

static void copy_info(struct stream_info *out, const struct media_vec *v, int rate, const struct rtp_sender *rtp,
                      const struct encoder *enc)
{
    memset(out, 0, sizeof *out);
    out->encoding = v->encoding;
    out->width = v->width;
    out->height = v->height;
    out->framerate = rate;
    out->payload_type = rtp->payload_type;
    out->ssrc = rtp->ssrc;
    size_t n = 0;
    const uint8_t *ps = enc ? encoder_parameter_sets(enc, &n) : NULL;
    if (ps && n <= sizeof out->param_sets) {
        memcpy(out->param_sets, ps, n);
        out->param_len = n;
    }
}

int stream_get_info(struct stream_hub *h, const char *vec_token, struct stream_info *out)
{
    struct stream *st = stream_of(h, vec_token);
    if (!st)
        return STREAM_E_NO_CONFIG;
    pthread_mutex_lock(&st->lock);
    if (st->enc && !st->reconfigure) {
        int rate = (int)(1000000 / (st->frame_interval_us > 0 ? st->frame_interval_us : 40000));
        copy_info(out, &st->vec, rate, &st->rtp, st->enc);
        pthread_mutex_unlock(&st->lock);
        return STREAM_OK;
    }
    pthread_mutex_unlock(&st->lock);

    /* Not running: open the encoder once to learn its parameter sets. */
    struct media_vec v;
    if (mediacfg_vec(h->cfg, vec_token, &v) != MEDIACFG_OK)
        return STREAM_E_NO_CONFIG;
    int sw, sh, rate;
    source_format(h->src, &sw, &sh, &rate);
    struct encoder_params p;
    encoder_params_of(h, &v, rate, &p);
    struct encoder *enc = NULL;
    if (encoder_open(&enc, &p, sw, sh) != ENCODER_OK)
        return STREAM_E_ENCODER;
    pthread_mutex_lock(&st->lock);
    if (!st->rtp_ready || st->rtp.payload_type != (v.encoding == MEDIA_ENC_JPEG ? 26 : 96)) {
        if (!st->alive) {
            rtp_sender_init(&st->rtp, v.encoding, h->settings.mtu > 0 ? h->settings.mtu : RTP_DEFAULT_MTU);
            st->rtp_ready = 1;
        }
    }
    struct rtp_sender rtp = st->rtp;
    pthread_mutex_unlock(&st->lock);
    if (rtp.payload_type == 0)
        rtp_sender_init(&rtp, v.encoding, RTP_DEFAULT_MTU);
    copy_info(out, &v, p.framerate, &rtp, enc);
    encoder_close(enc);
    return STREAM_OK;
}

int stream_force_keyframe(struct stream_hub *h, const char *vec_token)
{
    struct stream *st = stream_of(h, vec_token);
    if (!st)
        return STREAM_E_NO_CONFIG;
    pthread_mutex_lock(&st->lock);
    st->force_keyframe = 1;
    pthread_mutex_unlock(&st->lock);
    return STREAM_OK;
}

void stream_reconfigure(struct stream_hub *h, const char *vec_token)
{
    struct stream *st = stream_of(h, vec_token);
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    if (st->alive) {
        st->reconfigure = 1;
        pthread_cond_signal(&st->wake);
    }
    pthread_mutex_unlock(&st->lock);
}

int stream_snapshot(struct stream_hub *h, int width, int height, int quality, uint8_t **jpeg, size_t *len)
{
    AVFrame *f = NULL;
    if (source_latest_frame(h->src, 2000, &f) != SOURCE_OK)
        return STREAM_E_SOURCE;
    int rc = encoder_jpeg_snapshot(f, width, height, quality, jpeg, len);
    av_frame_free(&f);
    return rc == ENCODER_OK ? STREAM_OK : STREAM_E_ENCODER;
}

const char *stream_strerror(int err)
{
    switch (err) {
    case STREAM_OK: return "ok";
    case STREAM_E_NO_CONFIG: return "no such video encoder configuration";
    case STREAM_E_ENCODER: return "the encoder could not start with these parameters";
    case STREAM_E_SOURCE: return "the video source delivered no frame";
    case STREAM_E_NOMEM: return "out of memory";
    case STREAM_E_BUSY: return "too many subscribers";
    default: return "unknown stream error";
    }
}
