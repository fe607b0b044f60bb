/* Live streams: one per video encoder configuration, encoded once whatever
 * the number of viewers. The hub owns the source; a stream's encoder thread
 * takes the latest source frame (dropping frames it cannot keep up with or
 * that exceed the configured frame rate), encodes it, packetizes it once
 * (rtp.h) and hands the media_au to every subscriber by reference. The
 * encoder starts with the first subscriber and stops after the last leaves
 * (after linger_ms). Configuration changes restart the encoder with the new
 * parameters; the next picture is a keyframe with in-band parameter sets. */
#ifndef OPENNVT_STREAM_H
#define OPENNVT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "opennvt/mediacfg.h"
#include "opennvt/rtp.h"

struct source;

enum stream_error {
    STREAM_OK = 0,
    STREAM_E_NO_CONFIG = -1,      /* no such encoder configuration */
    STREAM_E_ENCODER = -2,        /* encoder could not start with these parameters */
    STREAM_E_SOURCE = -3,
    STREAM_E_NOMEM = -4,
    STREAM_E_BUSY = -5,           /* too many subscribers */
};

struct stream_hub_settings {
    int linger_ms;                /* keep the encoder running this long after the last viewer (0: stop at once) */
    int encoder_threads;          /* libavcodec threads per encoder (0 = its choice) */
    int mtu;                      /* RTP packet size limit */
};

/* What DESCRIBE needs about a stream. */
struct stream_info {
    enum media_encoding encoding;
    int width, height, framerate;
    uint8_t payload_type;
    uint32_t ssrc;
    uint8_t param_sets[1024];     /* Annex B SPS/PPS (VPS/SPS/PPS); empty for JPEG */
    size_t param_len;
};

/* Called on the stream's encoder thread for every picture; take a
 * media_au_ref() to keep it. Must not block. */
typedef void (*stream_au_fn)(void *arg, struct media_au *au);

struct stream_hub;
struct stream_sub;

int stream_hub_open(struct stream_hub **out, struct mediacfg *cfg, struct source *src,
                    const struct stream_hub_settings *s);
void stream_hub_close(struct stream_hub *h);

/* Subscribes to the stream of encoder configuration vec_token (starting it). */
int stream_subscribe(struct stream_hub *h, const char *vec_token, stream_au_fn fn, void *arg,
                     struct stream_sub **out);
/* After it returns, fn is not running and will not be called again. */
void stream_unsubscribe(struct stream_sub *sub);

/* Parameters of the stream as it will be sent (opens the encoder briefly
 * when the stream is not running, to learn the parameter sets). */
int stream_get_info(struct stream_hub *h, const char *vec_token, struct stream_info *out);
/* SetSynchronizationPoint: the next picture of the stream is a keyframe. */
int stream_force_keyframe(struct stream_hub *h, const char *vec_token);
/* The encoder configuration changed: running streams restart their encoder. */
void stream_reconfigure(struct stream_hub *h, const char *vec_token);

/* A JPEG of the current source frame, scaled to width x height. *jpeg malloc'd. */
int stream_snapshot(struct stream_hub *h, int width, int height, int quality, uint8_t **jpeg, size_t *len);

const char *stream_strerror(int err);

#endif
