/* Motion detection on the decoded frames of a video source: frame
 * differencing on a downscaled luma grid with a sensitivity threshold and
 * hysteresis (motion starts after a short run of moving frames, stops after
 * a quiet hold time), plus a global scene change (tamper) signal when most
 * of the picture changes at once. The detector core is pure (feed it luma
 * planes); motion_start attaches it to a source and publishes
 * tns1:VideoSource/MotionAlarm and GlobalSceneChange on the event bus. */
#ifndef OPENNVT_MOTION_H
#define OPENNVT_MOTION_H

#include <stdint.h>

struct source;
struct events;

struct motion_settings {
    int sensitivity;          /* 1..100: higher detects smaller / fainter changes (default 50) */
    int min_area_permille;    /* share of grid cells that must change for motion, 1..1000 (default 5) */
    int start_frames;         /* moving frames in a row before the alarm goes true (default 2) */
    int hold_ms;              /* quiet time before it goes false again (default 1500) */
    int scene_change_permille;/* share of cells changed at once that counts as a scene change (default 700) */
};

void motion_settings_default(struct motion_settings *s);

/* The pure detector. */
struct motion_detector;

int motion_detector_new(struct motion_detector **out, const struct motion_settings *s);
void motion_detector_free(struct motion_detector *d);

struct motion_result {
    int motion;               /* alarm state after this frame */
    int motion_changed;       /* state changed with this frame */
    int scene_change;         /* tamper state after this frame (true while the change lasts, hold_ms) */
    int scene_changed;
    int changed_permille;     /* share of cells that changed in this frame */
};

/* Feeds one luma plane (any size; sampled onto the detector's grid).
 * t_ms: capture time, monotonic. */
void motion_detector_feed(struct motion_detector *d, const uint8_t *luma, int width, int height, int stride,
                          int64_t t_ms, struct motion_result *out);

/* Attached to a source: analyses at most max_fps frames per second (the
 * rest are skipped), publishing on changes. The source keeps capturing while
 * motion detection runs. */
struct motion;

int motion_start(struct motion **out, struct source *src, const char *video_source_token, struct events *ev,
                 const struct motion_settings *s, int max_fps);
void motion_stop(struct motion *m);

#endif
