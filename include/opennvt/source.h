/* Video sources: the built-in moving test pattern with a burnt-in clock
 * (default), a V4L2 camera (libavdevice) or a looping file (libavformat +
 * libavcodec), delivered as raw YUV420P frames on the source's own thread at
 * its frame rate. Consumers register a sink; the capture runs only while at
 * least one sink is registered (or a snapshot is wanted). */
#ifndef OPENNVT_SOURCE_H
#define OPENNVT_SOURCE_H

#include <stdint.h>

struct AVFrame;

enum source_error {
    SOURCE_OK = 0,
    SOURCE_E_SPEC = -1,        /* not testsrc, v4l2:/dev/..., file:PATH */
    SOURCE_E_OPEN = -2,        /* device or file cannot be opened / decoded */
    SOURCE_E_NOMEM = -3,
    SOURCE_E_NOFRAME = -4,     /* no frame yet (snapshot) */
};

struct source_settings {
    const char *spec;          /* "testsrc" (default when NULL), "v4l2:/dev/video0", "file:/path" */
    int width, height;         /* testsrc size and the size requested from V4L2 (file: its own) */
    int framerate;             /* testsrc rate and the rate requested from V4L2 */
};

/* A sink gets each frame (YUV420P, width x height of the source) on the
 * source thread; it must not keep the pointer after returning (av_frame_ref
 * it to keep it). pts_us: capture time, CLOCK_MONOTONIC microseconds. */
typedef void (*source_sink_fn)(void *arg, const struct AVFrame *frame, int64_t pts_us);

struct source;

/* Checks the spec and probes the input (for v4l2/file: opens it once to learn
 * its size and rate). Does not start capturing. */
int source_open(struct source **out, const struct source_settings *s);
void source_close(struct source *src);
/* Resolution and frame rate the source delivers. */
void source_format(const struct source *src, int *width, int *height, int *framerate);

/* Registering the first sink starts the capture thread; removing the last
 * stops it. Returns 0 or a negative source_error. */
int source_add_sink(struct source *src, source_sink_fn fn, void *arg);
void source_remove_sink(struct source *src, source_sink_fn fn, void *arg);

/* A reference to the most recent frame (starting the capture briefly when it
 * is not running, waiting up to timeout_ms for a frame). Caller av_frame_free()s. */
int source_latest_frame(struct source *src, int timeout_ms, struct AVFrame **out);

const char *source_strerror(int err);

#endif
