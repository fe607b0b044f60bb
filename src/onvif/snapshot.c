/* JPEG snapshots over HTTP GET (GetSnapshotUri): the current source frame at
 * the resolution of the profile's encoder configuration. */
#include "opennvt/mediacfg.h"
#include "opennvt/onvif.h"
#include "opennvt/stream.h"

#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_PATH "/onvif/snapshot/"
#define SNAPSHOT_DEFAULT_QUALITY 80

const char *onvif_snapshot_profile_of_path(const char *path)
{
    size_t n = sizeof SNAPSHOT_PATH - 1;
    if (!path || strncmp(path, SNAPSHOT_PATH, n) != 0 || !path[n])
        return NULL;
    return path + n;
}

int onvif_snapshot_resource(struct onvif_device *dev, const char *profile_token, unsigned char **body, size_t *len,
                            const char **content_type)
{
    if (!dev->mediacfg || !dev->streams)
        return 404;
    struct media_profile p;
    if (mediacfg_profile(dev->mediacfg, profile_token, &p) != MEDIACFG_OK)
        return 404;
    /* The encoder's size when the profile has one, else the source's. */
    struct media_video_source vs;
    mediacfg_video_source(dev->mediacfg, &vs);
    int width = vs.width, height = vs.height, quality = SNAPSHOT_DEFAULT_QUALITY;
    struct media_vec vec;
    if (p.vec_token[0] && mediacfg_vec(dev->mediacfg, p.vec_token, &vec) == MEDIACFG_OK) {
        width = vec.width;
        height = vec.height;
        if (vec.encoding == MEDIA_ENC_JPEG)
            quality = vec.quality;
    }
    uint8_t *jpeg = NULL;
    if (stream_snapshot(dev->streams, width, height, quality, &jpeg, len) != STREAM_OK)
        return 503;
    *body = jpeg;
    *content_type = "image/jpeg";
    return 200;
}
