/* Video encoding through libavcodec: H.264 (libx264) and H.265 (libx265)
 * tuned for live streaming (no B-frames, no lookahead, parameter sets in
 * band before every IDR and known right after open), and MJPEG with the
 * standard Huffman tables RTP/JPEG needs. Scales source frames with
 * libswscale when the configured size or pixel format differs. */
#include "opennvt/encoder.h"

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENC_DIM_MIN 16
#define ENC_DIM_MAX 8192
#define ENC_RATE_MAX 240
#define ENC_THREADS_MAX 16
#define ENC_PTS_RING 64            /* frames in flight; the encoders here hold at most one */

struct encoder {
    struct encoder_params p;
    AVCodecContext *ctx;
    AVPacket *pkt;
    AVFrame *in;                   /* the picture handed to libavcodec (a reference or scaled) */
    AVFrame *scaled;
    struct SwsContext *sws;
    int sws_w, sws_h, sws_fmt, sws_range;
    enum AVPixelFormat pix_fmt;
    enum AVColorRange range;       /* of the encoded pictures */
    int64_t next_pts;
    int64_t pts_us[ENC_PTS_RING];
    uint8_t *ps;                   /* parameter sets, Annex B */
    size_t ps_len;
    uint8_t *out;                  /* a keyframe with the parameter sets put in front */
    size_t out_cap;
};

unsigned encoder_available(void)
{
    unsigned bits = 0;
    if (avcodec_find_encoder_by_name("libx264"))
        bits |= MEDIA_ENC_BIT(MEDIA_ENC_H264);
    if (avcodec_find_encoder_by_name("mjpeg"))
        bits |= MEDIA_ENC_BIT(MEDIA_ENC_JPEG);
    if (avcodec_find_encoder_by_name("libx265"))
        bits |= MEDIA_ENC_BIT(MEDIA_ENC_H265);
    return bits;
}

/* --- Annex B parsing --------------------------------------------------------- */

/* Finds the next start code at or after *pos; returns the offset of the NAL
 * header after it (and its start code's offset in *sc), or len if none. */
static size_t next_nal(const uint8_t *d, size_t len, size_t pos, size_t *sc)
{
    for (size_t i = pos; i + 3 <= len; i++) {
        if (d[i] == 0 && d[i + 1] == 0) {
            if (d[i + 2] == 1) {
                *sc = (i > 0 && d[i - 1] == 0) ? i - 1 : i;
                return i + 3;
            }
            if (d[i + 2] != 0)
                i += 2;
        }
    }
    *sc = len;
    return len;
}

static int nal_type(enum media_encoding enc, uint8_t hdr)
{
    return enc == MEDIA_ENC_H265 ? (hdr >> 1) & 0x3f : hdr & 0x1f;
}

static int is_vcl(enum media_encoding enc, int type)
{
    return enc == MEDIA_ENC_H265 ? type < 32 : type >= 1 && type <= 5;
}

/* Bit for each parameter set type: H.264 SPS 7, PPS 8; H.265 VPS 32, SPS
 * 33, PPS 34. */
static unsigned ps_bit(enum media_encoding enc, int type)
{
    if (enc == MEDIA_ENC_H265)
        return type >= 32 && type <= 34 ? 1u << (type - 32) : 0;
    return type == 7 ? 1u : type == 8 ? 2u : 0;
}

static unsigned ps_all(enum media_encoding enc)
{
    return enc == MEDIA_ENC_H265 ? 7u : 3u;
}

/* Which parameter sets come before the first slice of an access unit. Only
 * the NAL headers up to that slice are looked at. */
static unsigned ps_in_band(enum media_encoding enc, const uint8_t *d, size_t len)
{
    unsigned seen = 0;
    size_t sc, pos = next_nal(d, len, 0, &sc);
    while (pos < len) {
        int t = nal_type(enc, d[pos]);
        if (is_vcl(enc, t))
            break;
        seen |= ps_bit(enc, t);
        pos = next_nal(d, len, pos + 1, &sc);
    }
    return seen;
}

/* Copies the parameter set NAL units of extradata (Annex B) with 4-byte
 * start codes. Returns 0 when all of them were found. */
static int extract_parameter_sets(struct encoder *e, const uint8_t *d, size_t len)
{
    uint8_t *out = malloc(len + 4 * 8);
    if (!out)
        return ENCODER_E_NOMEM;
    size_t n = 0, sc, pos = next_nal(d, len, 0, &sc);
    unsigned seen = 0;
    while (pos < len) {
        size_t end_sc, next = next_nal(d, len, pos + 1, &end_sc);
        size_t end = end_sc;
        while (end > pos && d[end - 1] == 0)     /* trailing zero bytes belong to no NAL */
            end--;
        int t = nal_type(e->p.encoding, d[pos]);
        if (ps_bit(e->p.encoding, t) && end > pos) {
            static const uint8_t start[4] = { 0, 0, 0, 1 };
            memcpy(out + n, start, 4);
            memcpy(out + n + 4, d + pos, end - pos);
            n += 4 + end - pos;
            seen |= ps_bit(e->p.encoding, t);
        }
        pos = next;
    }
    if (seen != ps_all(e->p.encoding)) {
        free(out);
        return ENCODER_E_PARAMS;
    }
    e->ps = out;
    e->ps_len = n;
    return ENCODER_OK;
}

/* --- opening ---------------------------------------------------------------- */

static int check_params(const struct encoder_params *p, int src_width, int src_height)
{
    if (!p || (p->encoding != MEDIA_ENC_H264 && p->encoding != MEDIA_ENC_JPEG && p->encoding != MEDIA_ENC_H265))
        return ENCODER_E_PARAMS;
    if (p->width < ENC_DIM_MIN || p->width > ENC_DIM_MAX || p->height < ENC_DIM_MIN || p->height > ENC_DIM_MAX)
        return ENCODER_E_PARAMS;
    if (src_width <= 0 || src_height <= 0 || src_width > ENC_DIM_MAX || src_height > ENC_DIM_MAX)
        return ENCODER_E_PARAMS;
    if (p->framerate < 1 || p->framerate > ENC_RATE_MAX || p->quality < 0 || p->quality > 100)
        return ENCODER_E_PARAMS;
    if (p->threads < 0 || p->threads > ENC_THREADS_MAX)
        return ENCODER_E_PARAMS;
    if (p->encoding == MEDIA_ENC_JPEG)
        return ENCODER_OK;
    /* 4:2:0 needs even sizes; CBR needs a rate to hold. */
    if ((p->width & 1) || (p->height & 1) || p->gov_length < 1 || p->bitrate_kbps < 0 ||
        (p->cbr && p->bitrate_kbps == 0))
        return ENCODER_E_PARAMS;
    if (p->profile != MEDIA_PROFILE_BASELINE && p->profile != MEDIA_PROFILE_MAIN && p->profile != MEDIA_PROFILE_HIGH)
        return ENCODER_E_PARAMS;
    return ENCODER_OK;
}

/* Quality 0..100 as the constant rate factor of a capped VBR stream:
 * 100 -> 18 (visually lossless), 0 -> 40. */
static double quality_crf(int quality)
{
    return 40.0 - 22.0 * quality / 100.0;
}

/* Quality 0..100 as the MJPEG quantiser: 100 -> 2 (best), 0 -> 31. */
static int quality_qscale(int quality)
{
    return 2 + (100 - quality) * 29 / 100;
}

static void set_rate_control(AVCodecContext *c, const struct encoder_params *p)
{
    int64_t bps = (int64_t)p->bitrate_kbps * 1000;
    if (p->cbr) {
        c->bit_rate = bps;
        c->rc_min_rate = bps;
        c->rc_max_rate = bps;
        c->rc_buffer_size = (int)(bps > INT32_MAX ? INT32_MAX : bps);
    } else if (bps > 0) {
        /* Quality-driven, never above the limit over one second. */
        c->rc_max_rate = bps;
        c->rc_buffer_size = (int)(bps > INT32_MAX ? INT32_MAX : bps);
    }
}

static int setup_h264(AVCodecContext *c, const struct encoder_params *p)
{
    static const char *const profiles[] = { "baseline", "main", "high" };
    char x264p[160];
    /* ultrafast codes a Baseline-compatible stream; Main and High get the
     * tools that make them what the configuration says (CABAC, 8x8 transform). */
    static const char *const tools[] = { "", ":cabac=1", ":cabac=1:8x8dct=1" };
    snprintf(x264p, sizeof x264p, "repeat-headers=1:annexb=1:scenecut=0%s%s", tools[p->profile],
             p->cbr ? ":nal-hrd=cbr:force-cfr=1" : "");
    void *o = c->priv_data;
    if (av_opt_set(o, "preset", "ultrafast", 0) < 0 || av_opt_set(o, "tune", "zerolatency", 0) < 0 ||
        av_opt_set(o, "profile", profiles[p->profile], 0) < 0 || av_opt_set_int(o, "forced-idr", 1, 0) < 0 ||
        av_opt_set(o, "x264-params", x264p, 0) < 0)
        return ENCODER_E_PARAMS;
    if (!p->cbr && av_opt_set_double(o, "crf", quality_crf(p->quality), 0) < 0)
        return ENCODER_E_PARAMS;
    return ENCODER_OK;
}

static int setup_h265(AVCodecContext *c, const struct encoder_params *p)
{
    char x265p[200];
    int n = snprintf(x265p, sizeof x265p,
                     "repeat-headers=1:annexb=1:scenecut=0:open-gop=0:frame-threads=1:lookahead-slices=0:log-level=warning%s",
                     p->cbr ? ":strict-cbr=1" : "");
    if (p->threads > 0)
        snprintf(x265p + n, sizeof x265p - (size_t)n, ":pools=%d", p->threads);
    void *o = c->priv_data;
    if (av_opt_set(o, "preset", "ultrafast", 0) < 0 || av_opt_set(o, "tune", "zerolatency", 0) < 0 ||
        av_opt_set_int(o, "forced-idr", 1, 0) < 0 || av_opt_set(o, "x265-params", x265p, 0) < 0)
        return ENCODER_E_PARAMS;
    if (p->profile == MEDIA_PROFILE_BASELINE || p->profile == MEDIA_PROFILE_MAIN)
        av_opt_set(o, "profile", "main", 0);
    if (!p->cbr && av_opt_set_double(o, "crf", quality_crf(p->quality), 0) < 0)
        return ENCODER_E_PARAMS;
    return ENCODER_OK;
}

static int setup_jpeg(AVCodecContext *c, const struct encoder_params *p)
{
    /* RTP/JPEG (RFC 2435) receivers rebuild the standard Huffman tables. */
    if (av_opt_set(c->priv_data, "huffman", "default", 0) < 0)
        return ENCODER_E_PARAMS;
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * quality_qscale(p->quality);
    c->thread_count = 1;   /* one scan without restart markers */
    return ENCODER_OK;
}

int encoder_open(struct encoder **out, const struct encoder_params *p, int src_width, int src_height)
{
    if (!out)
        return ENCODER_E_PARAMS;
    *out = NULL;
    int rc = check_params(p, src_width, src_height);
    if (rc != ENCODER_OK)
        return rc;
    static const char *const names[MEDIA_ENC_COUNT] = { "libx264", "mjpeg", "libx265" };
    const AVCodec *codec = avcodec_find_encoder_by_name(names[p->encoding]);
    if (!codec)
        return ENCODER_E_UNAVAILABLE;

    struct encoder *e = calloc(1, sizeof *e);
    if (!e)
        return ENCODER_E_NOMEM;
    e->p = *p;
    e->sws_fmt = AV_PIX_FMT_NONE;
    e->ctx = avcodec_alloc_context3(codec);
    e->pkt = av_packet_alloc();
    e->in = av_frame_alloc();
    e->scaled = av_frame_alloc();
    if (!e->ctx || !e->pkt || !e->in || !e->scaled) {
        encoder_close(e);
        return ENCODER_E_NOMEM;
    }
    AVCodecContext *c = e->ctx;
    c->width = p->width;
    c->height = p->height;
    c->time_base = (AVRational){ 1, p->framerate };
    c->framerate = (AVRational){ p->framerate, 1 };
    c->sample_aspect_ratio = (AVRational){ 1, 1 };
    c->pix_fmt = e->pix_fmt = AV_PIX_FMT_YUV420P;
    c->color_range = e->range = p->encoding == MEDIA_ENC_JPEG ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    if (p->encoding == MEDIA_ENC_JPEG) {
        rc = setup_jpeg(c, p);
    } else {
        c->gop_size = p->gov_length;
        c->keyint_min = p->gov_length;
        c->max_b_frames = 0;
        c->thread_count = p->threads;
        /* Frame threads would hold pictures back; slices keep the latency at one frame. */
        c->thread_type = FF_THREAD_SLICE;
        /* Parameter sets also in extradata, so they are known before the first picture. */
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        set_rate_control(c, p);
        rc = p->encoding == MEDIA_ENC_H264 ? setup_h264(c, p) : setup_h265(c, p);
    }
    if (rc == ENCODER_OK && avcodec_open2(c, codec, NULL) < 0)
        rc = ENCODER_E_PARAMS;
    if (rc == ENCODER_OK && p->encoding != MEDIA_ENC_JPEG)
        rc = c->extradata ? extract_parameter_sets(e, c->extradata, (size_t)c->extradata_size) : ENCODER_E_PARAMS;
    if (rc != ENCODER_OK) {
        encoder_close(e);
        return rc;
    }
    *out = e;
    return ENCODER_OK;
}

void encoder_close(struct encoder *e)
{
    if (!e)
        return;
    avcodec_free_context(&e->ctx);
    av_packet_free(&e->pkt);
    av_frame_free(&e->in);
    av_frame_free(&e->scaled);
    sws_freeContext(e->sws);
    free(e->ps);
    free(e->out);
    free(e);
}

const uint8_t *encoder_parameter_sets(const struct encoder *e, size_t *len)
{
    if (len)
        *len = e ? e->ps_len : 0;
    return e ? e->ps : NULL;
}

/* --- encoding ---------------------------------------------------------------- */

static int full_range(const AVFrame *f)
{
    return f->color_range == AVCOL_RANGE_JPEG || f->format == AV_PIX_FMT_YUVJ420P ||
           f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P;
}

/* Scales (and converts the range of) frame into e->scaled. */
static int scale_frame(struct encoder *e, const AVFrame *frame)
{
    int src_full = full_range(frame);
    if (!e->sws || e->sws_w != frame->width || e->sws_h != frame->height || e->sws_fmt != frame->format ||
        e->sws_range != src_full) {
        sws_freeContext(e->sws);
        e->sws = sws_getContext(frame->width, frame->height, frame->format, e->p.width, e->p.height, e->pix_fmt,
                                SWS_BILINEAR, NULL, NULL, NULL);
        if (!e->sws)
            return ENCODER_E_ENCODE;
        const int *coefs = sws_getCoefficients(SWS_CS_ITU601);
        sws_setColorspaceDetails(e->sws, coefs, src_full, coefs, e->range == AVCOL_RANGE_JPEG, 0, 1 << 16, 1 << 16);
        e->sws_w = frame->width;
        e->sws_h = frame->height;
        e->sws_fmt = frame->format;
        e->sws_range = src_full;
    }
    /* The encoder may still hold the previous picture: take a fresh buffer
     * rather than copy it. */
    if (!e->scaled->buf[0] || !av_frame_is_writable(e->scaled)) {
        av_frame_unref(e->scaled);
        e->scaled->format = e->pix_fmt;
        e->scaled->width = e->p.width;
        e->scaled->height = e->p.height;
        if (av_frame_get_buffer(e->scaled, 0) < 0)
            return ENCODER_E_NOMEM;
    }
    if (sws_scale(e->sws, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height,
                  e->scaled->data, e->scaled->linesize) <= 0)
        return ENCODER_E_ENCODE;
    return av_frame_ref(e->in, e->scaled) < 0 ? ENCODER_E_NOMEM : ENCODER_OK;
}

/* Puts the parameter sets in front of a keyframe that lacks them. */
static int with_parameter_sets(struct encoder *e, const uint8_t **data, size_t *len)
{
    if (ps_in_band(e->p.encoding, *data, *len) == ps_all(e->p.encoding))
        return ENCODER_OK;
    size_t need = e->ps_len + *len;
    if (need > e->out_cap) {
        uint8_t *n = realloc(e->out, need);
        if (!n)
            return ENCODER_E_NOMEM;
        e->out = n;
        e->out_cap = need;
    }
    memcpy(e->out, e->ps, e->ps_len);
    memcpy(e->out + e->ps_len, *data, *len);
    *data = e->out;
    *len = need;
    return ENCODER_OK;
}

static int drain(struct encoder *e, encoder_output_fn fn, void *arg)
{
    for (;;) {
        int ret = avcodec_receive_packet(e->ctx, e->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return ENCODER_OK;
        if (ret < 0)
            return ENCODER_E_ENCODE;
        struct encoder_output o = {
            .data = e->pkt->data,
            .len = (size_t)e->pkt->size,
            .keyframe = (e->pkt->flags & AV_PKT_FLAG_KEY) != 0,
            .pts_us = e->pts_us[(uint64_t)e->pkt->pts % ENC_PTS_RING],
        };
        int rc = ENCODER_OK;
        if (e->p.encoding == MEDIA_ENC_JPEG)
            o.keyframe = 1;
        else if (o.keyframe)
            rc = with_parameter_sets(e, &o.data, &o.len);
        if (rc == ENCODER_OK && fn)
            fn(arg, &o);
        av_packet_unref(e->pkt);
        if (rc != ENCODER_OK)
            return rc;
    }
}

int encoder_encode(struct encoder *e, const AVFrame *frame, int64_t pts_us, int force_keyframe,
                   encoder_output_fn fn, void *arg)
{
    if (!e || !frame || frame->width <= 0 || frame->height <= 0 || !frame->data[0])
        return ENCODER_E_PARAMS;
    int rc;
    if (frame->width == e->p.width && frame->height == e->p.height && frame->format == e->pix_fmt &&
        full_range(frame) == (e->range == AVCOL_RANGE_JPEG))
        rc = av_frame_ref(e->in, frame) < 0 ? ENCODER_E_NOMEM : ENCODER_OK;
    else
        rc = scale_frame(e, frame);
    if (rc != ENCODER_OK) {
        av_frame_unref(e->in);
        return rc;
    }
    AVFrame *in = e->in;
    in->pts = e->next_pts++;
    in->color_range = e->range;
    in->sample_aspect_ratio = (AVRational){ 1, 1 };
    e->pts_us[(uint64_t)in->pts % ENC_PTS_RING] = pts_us;
    in->pict_type = force_keyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
#ifdef AV_FRAME_FLAG_KEY
    if (force_keyframe)
        in->flags |= AV_FRAME_FLAG_KEY;
    else
        in->flags &= ~AV_FRAME_FLAG_KEY;
#else
    in->key_frame = force_keyframe != 0;
#endif
    if (e->p.encoding == MEDIA_ENC_JPEG)
        in->quality = e->ctx->global_quality;
    int ret = avcodec_send_frame(e->ctx, in);
    av_frame_unref(in);
    if (ret == AVERROR(ENOMEM))
        return ENCODER_E_NOMEM;
    if (ret < 0)
        return ENCODER_E_ENCODE;
    return drain(e, fn, arg);
}

/* --- snapshot ---------------------------------------------------------------- */

struct jpeg_result {
    uint8_t *data;
    size_t len;
    int rc;
};

static void keep_jpeg(void *arg, const struct encoder_output *o)
{
    struct jpeg_result *r = arg;
    if (r->data)
        return;
    r->data = malloc(o->len ? o->len : 1);
    if (!r->data) {
        r->rc = ENCODER_E_NOMEM;
        return;
    }
    memcpy(r->data, o->data, o->len);
    r->len = o->len;
}

int encoder_jpeg_snapshot(const AVFrame *frame, int width, int height, int quality, uint8_t **jpeg, size_t *len)
{
    if (!frame || !jpeg || !len)
        return ENCODER_E_PARAMS;
    *jpeg = NULL;
    *len = 0;
    struct encoder_params p = {
        .encoding = MEDIA_ENC_JPEG,
        .width = width,
        .height = height,
        .framerate = 1,
        .quality = quality,
    };
    struct encoder *e = NULL;
    int rc = encoder_open(&e, &p, frame->width, frame->height);
    if (rc != ENCODER_OK)
        return rc;
    struct jpeg_result r = { NULL, 0, ENCODER_OK };
    rc = encoder_encode(e, frame, 0, 1, keep_jpeg, &r);
    if (rc == ENCODER_OK && avcodec_send_frame(e->ctx, NULL) == 0)
        rc = drain(e, keep_jpeg, &r);   /* an encoder with a delay hands the picture over here */
    encoder_close(e);
    if (rc == ENCODER_OK)
        rc = r.rc;
    if (rc == ENCODER_OK && !r.data)
        rc = ENCODER_E_ENCODE;
    if (rc != ENCODER_OK) {
        free(r.data);
        return rc;
    }
    *jpeg = r.data;
    *len = r.len;
    return ENCODER_OK;
}

const char *encoder_strerror(int err)
{
    switch (err) {
    case ENCODER_OK: return "ok";
    case ENCODER_E_UNAVAILABLE: return "this encoding is not available";
    case ENCODER_E_PARAMS: return "the encoder refused the parameters";
    case ENCODER_E_ENCODE: return "encoding failed";
    case ENCODER_E_NOMEM: return "out of memory";
    default: return "unknown encoder error";
    }
}
