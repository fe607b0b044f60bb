/* Video encoding through libavcodec: H.264 (libx264, low latency: no
 * B-frames, zero-latency tuning, repeated SPS/PPS before every IDR), H.265
 * (libx265) when present, and MJPEG. Scales the source frame to the
 * configured resolution (libswscale). One encoder serves every viewer. */
#ifndef OPENNVT_ENCODER_H
#define OPENNVT_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "opennvt/mediacfg.h"

struct AVFrame;

enum encoder_error {
    ENCODER_OK = 0,
    ENCODER_E_UNAVAILABLE = -1,   /* codec not in this libavcodec */
    ENCODER_E_PARAMS = -2,        /* libavcodec refused the parameters */
    ENCODER_E_ENCODE = -3,
    ENCODER_E_NOMEM = -4,
};

struct encoder_params {
    enum media_encoding encoding;
    int width, height;
    int framerate;                /* output frames per second */
    int bitrate_kbps;
    int cbr;
    int gov_length;               /* keyframe interval in frames */
    enum media_h264_profile profile;
    int quality;                  /* 0..100: JPEG quantiser, VBR quality floor */
    int threads;                  /* 0 = libavcodec's choice, else 1..16 */
};

/* One encoded picture. data: Annex B byte stream for H.264/H.265 (start
 * codes, SPS/PPS before IDR), a complete JFIF image for JPEG. Valid until the
 * next encoder call. */
struct encoder_output {
    const uint8_t *data;
    size_t len;
    int keyframe;
    int64_t pts_us;               /* the source frame's capture time */
};

typedef void (*encoder_output_fn)(void *arg, const struct encoder_output *out);

struct encoder;

/* Bits of MEDIA_ENC_BIT() this libavcodec can encode. */
unsigned encoder_available(void);

int encoder_open(struct encoder **out, const struct encoder_params *p, int src_width, int src_height);
void encoder_close(struct encoder *e);
/* Encodes one source frame (any size; scaled as needed), calling fn for each
 * finished picture (zero or one here: no B-frames, no delay). force_keyframe
 * makes this picture an IDR. */
int encoder_encode(struct encoder *e, const struct AVFrame *frame, int64_t pts_us, int force_keyframe,
                   encoder_output_fn fn, void *arg);
/* SPS and PPS (H.264) / VPS, SPS, PPS (H.265) as Annex B, known right after
 * open; NULL/0 for JPEG. */
const uint8_t *encoder_parameter_sets(const struct encoder *e, size_t *len);

/* One JPEG of frame scaled to width x height (quality 0..100). *jpeg is
 * malloc'd. */
int encoder_jpeg_snapshot(const struct AVFrame *frame, int width, int height, int quality, uint8_t **jpeg,
                          size_t *len);

const char *encoder_strerror(int err);

#endif
