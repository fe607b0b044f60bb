/* RTP packetization, done once per encoded picture for every viewer: H.264
 * and H.265 per RFC 6184 / RFC 7798 (single NAL unit, aggregation of the
 * small parameter sets (STAP-A / AP), fragmentation (FU-A / FU)), and JPEG per
 * RFC 2435 (type 0/1 from the JFIF sampling, Q=255 with the quantisation
 * tables in-band). The result is a media_au: the RTP packets laid out in one
 * buffer, each preceded by 4 bytes of RTSP interleaved framing ('$', channel 0,
 * length) so a TCP viewer on channel 0 is served with one write of the whole
 * range. Also the SDP pieces DESCRIBE needs. Pure functions, no sockets. */
#ifndef OPENNVT_RTP_H
#define OPENNVT_RTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "opennvt/mediacfg.h"

#define RTP_HEADER_LEN 12
#define RTP_INTERLEAVED_LEN 4
#define RTP_DEFAULT_MTU 1400          /* RTP packet size limit (header included) */
#define RTP_CLOCK_VIDEO 90000

struct rtp_packet_ref {
    uint32_t off;                     /* offset of the interleaved header in data; RTP at off + 4 */
    uint16_t len;                     /* RTP packet length (without the 4 bytes) */
};

/* One encoded picture as RTP packets. Shared by reference between viewers. */
struct media_au {
    atomic_int refs;
    uint32_t rtp_ts;                  /* 90 kHz */
    int64_t capture_us;               /* CLOCK_MONOTONIC capture time */
    int keyframe;                     /* decodable from here (IDR with parameter sets / any JPEG) */
    uint16_t first_seq;               /* sequence number of packets[0] */
    int n_packets;
    struct rtp_packet_ref *packets;
    uint8_t *data;                    /* packets back to back, each after its 4-byte interleaved header */
    size_t data_len;                  /* bytes from data[0] to the end of the last packet */
    uint32_t payload_bytes;           /* sum of RTP payload bytes, for RTCP */
};

struct media_au *media_au_ref(struct media_au *au);
void media_au_unref(struct media_au *au);

/* Per-stream RTP sender state (shared by all viewers of the stream). */
struct rtp_sender {
    uint32_t ssrc;                    /* random */
    uint16_t next_seq;                /* random start */
    uint8_t payload_type;             /* 96 dynamic for H.264/H.265, 26 for JPEG */
    int mtu;
};

void rtp_sender_init(struct rtp_sender *s, enum media_encoding enc, int mtu);

/* Packetizes one encoded picture (Annex B for H.264/H.265, JFIF for JPEG)
 * with timestamp rtp_ts; the marker bit is set on the last packet. Returns
 * a media_au with refs = 1, or NULL (malformed input / no memory). */
struct media_au *rtp_packetize(struct rtp_sender *s, enum media_encoding enc, const uint8_t *data, size_t len,
                               uint32_t rtp_ts, int keyframe);

/* Splits an Annex B stream into NAL units: calls fn for each (without start
 * code). Returns the number of NAL units. */
int rtp_annexb_foreach(const uint8_t *data, size_t len, void (*fn)(void *arg, const uint8_t *nal, size_t n),
                       void *arg);

/* The SDP media block of one video track: "m=video 0 RTP/AVP PT\r\n",
 * "a=rtpmap:", "a=fmtp:" (H.264: packetization-mode=1; profile-level-id and
 * sprop-parameter-sets from param_sets (Annex B); H.265: sprop-vps/sps/pps),
 * "a=framerate:", "a=control:" control. width/height go in a=x-dimensions
 * for JPEG. Returns the length written or -1 when out is too small. */
int rtp_sdp_media(char *out, size_t outlen, enum media_encoding enc, uint8_t payload_type,
                  const uint8_t *param_sets, size_t param_len, int width, int height, int framerate,
                  const char *control);

/* An RTCP compound of a Sender Report and an SDES CNAME (RFC 3550), for one
 * viewer: ntp_us is the wall clock (microseconds since 1970) matching rtp_ts.
 * Returns the length written, or -1. */
int rtp_rtcp_sender_report(uint8_t *out, size_t outlen, uint32_t ssrc, uint64_t ntp_us, uint32_t rtp_ts,
                           uint32_t packets, uint32_t octets, const char *cname);

#endif
