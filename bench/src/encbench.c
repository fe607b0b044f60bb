/* encbench: frames/s and CPU per frame of OpenNVT's encoder module
 * (src/media/encoder.c) on a raw yuv420p clip, looped, so it can be set
 * beside the ffmpeg CLI and the libavcodec API on the very same frames.
 * usage: encbench -i RAW -W w -H h -e h264|jpeg [-t threads] [-n frames]
 *                 [-b kbps] [-g gop] [-o W2xH2 output size] */
#include "opennvt/encoder.h"

#include <libavutil/frame.h>
#include <libavutil/imgutils.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CLIP_MAX 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static size_t total_bytes;
static int keyframes;

static void count(void *arg, const struct encoder_output *out)
{
    total_bytes += out->len;
    keyframes += out->keyframe;
}

int main(int argc, char **argv)
{
    const char *raw = NULL, *enc_name = "h264";
    int w = 0, h = 0, threads = 1, frames = 300, kbps = 4000, gop = 50, ow = 0, oh = 0, c;
    while ((c = getopt(argc, argv, "i:W:H:e:t:n:b:g:o:")) != -1) {
        switch (c) {
        case 'i': raw = optarg; break;
        case 'W': w = atoi(optarg); break;
        case 'H': h = atoi(optarg); break;
        case 'e': enc_name = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'n': frames = atoi(optarg); break;
        case 'b': kbps = atoi(optarg); break;
        case 'g': gop = atoi(optarg); break;
        case 'o': sscanf(optarg, "%dx%d", &ow, &oh); break;
        default: fprintf(stderr, "usage: see the source\n"); return 2;
        }
    }
    if (!raw || w <= 0 || h <= 0 || frames <= 0)
        return 2;
    FILE *f = fopen(raw, "rb");
    if (!f) {
        perror(raw);
        return 1;
    }
    AVFrame *clip[CLIP_MAX];
    int n = 0;
    for (; n < CLIP_MAX; n++) {
        AVFrame *fr = av_frame_alloc();
        fr->format = 0; /* AV_PIX_FMT_YUV420P */
        fr->width = w;
        fr->height = h;
        if (av_frame_get_buffer(fr, 32) < 0)
            return 1;
        int ok = 1;
        for (int p = 0; p < 3 && ok; p++) {
            int pw = p ? w / 2 : w, ph = p ? h / 2 : h;
            for (int y = 0; y < ph && ok; y++)
                ok = fread(fr->data[p] + (size_t)y * fr->linesize[p], 1, (size_t)pw, f) == (size_t)pw;
        }
        if (!ok) {
            av_frame_free(&fr);
            break;
        }
        clip[n] = fr;
    }
    fclose(f);
    if (n == 0)
        return 1;
    struct encoder_params p = {
        .encoding = strcmp(enc_name, "jpeg") ? MEDIA_ENC_H264 : MEDIA_ENC_JPEG,
        .width = ow ? ow : w, .height = oh ? oh : h, .framerate = 25, .bitrate_kbps = kbps, .cbr = 1,
        .gov_length = gop, .profile = MEDIA_PROFILE_HIGH, .quality = 70, .threads = threads,
    };
    struct encoder *e = NULL;
    int rc = encoder_open(&e, &p, w, h);
    if (rc != ENCODER_OK) {
        fprintf(stderr, "encoder_open: %s\n", encoder_strerror(rc));
        return 1;
    }
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < frames; i++)
        if (encoder_encode(e, clip[i % n], (int64_t)i * 40000, 0, count, NULL) != ENCODER_OK)
            return 1;
    double dt = now_s() - t0, dc = cpu_s() - c0;
    printf("fps=%.1f cpu_ms_per_frame=%.2f kbps_at_25fps=%.0f keyframes=%d\n", frames / dt, dc * 1000 / frames,
           total_bytes * 8.0 / 1000 / (frames / 25.0), keyframes);
    encoder_close(e);
    for (int i = 0; i < n; i++)
        av_frame_free(&clip[i]);
    return 0;
}
