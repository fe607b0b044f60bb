/* Unit tests for rtp: the packet layout of a media_au (interleaved framing,
 * RTP headers, sequence numbers, marker, sizes), H.264 and H.265 payloads
 * reassembled back to the NAL units byte for byte, malformed and random
 * input, JPEG pictures (from libavcodec, and written here in the exact
 * layouts of RFC 2435 types 0/1/64/65) carried per RFC 2435, the SDP media
 * block and RTCP reports. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <openssl/evp.h>

#include "opennvt/rtp.h"
#include "unit_helpers.h"

/* --- helpers ------------------------------------------------------------- */

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A NAL unit of n bytes: header bytes given, the rest deterministic noise
 * without any 00 00 0x sequence (as emulation prevention guarantees). */
static uint8_t *make_nal(size_t n, const uint8_t *hdr, size_t hdr_len, unsigned seed)
{
    uint8_t *nal = malloc(n);
    assert_non_null(nal);
    memcpy(nal, hdr, hdr_len);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = hdr_len; i < n; i++) {
        x = x * 1103515245u + 12345u;
        nal[i] = (uint8_t)(x >> 16);
        if (nal[i] == 0)
            nal[i] = 0x5a;
    }
    return nal;
}

struct stream {
    uint8_t buf[1 << 20];
    size_t len;
};

static void append_nal(struct stream *s, const uint8_t *nal, size_t n, int long_start)
{
    static const uint8_t sc4[] = { 0, 0, 0, 1 };
    size_t scl = long_start ? 4 : 3;
    assert_true(s->len + scl + n <= sizeof s->buf);
    memcpy(s->buf + s->len, sc4 + 4 - scl, scl);
    memcpy(s->buf + s->len + scl, nal, n);
    s->len += scl + n;
}

/* Checks everything about the layout that does not depend on the codec. */
static void check_layout(const struct media_au *au, const struct rtp_sender *s, uint16_t first_seq, uint32_t ts,
                         int mtu)
{
    assert_true(au->n_packets > 0);
    assert_int_equal(au->packets[0].off, 0);
    assert_int_equal(au->first_seq, first_seq);
    assert_int_equal(au->rtp_ts, ts);
    assert_int_equal(atomic_load(&au->refs), 1);
    uint32_t payload = 0;
    size_t expect_off = 0;
    for (int i = 0; i < au->n_packets; i++) {
        const struct rtp_packet_ref *r = &au->packets[i];
        const uint8_t *f = au->data + r->off;
        const uint8_t *p = f + RTP_INTERLEAVED_LEN;
        assert_int_equal(r->off, expect_off);
        assert_true(r->len <= mtu);
        assert_true(r->len > RTP_HEADER_LEN);
        assert_int_equal(f[0], '$');
        assert_int_equal(f[1], 0);
        assert_int_equal(be16(f + 2), r->len);
        assert_int_equal(p[0], 0x80);
        assert_int_equal(p[1] & 0x7f, s->payload_type);
        assert_int_equal(!!(p[1] & 0x80), i == au->n_packets - 1);
        assert_int_equal(be16(p + 2), (uint16_t)(first_seq + i));
        assert_int_equal(be32(p + 4), ts);
        assert_int_equal(be32(p + 8), s->ssrc);
        payload += r->len - RTP_HEADER_LEN;
        expect_off = r->off + RTP_INTERLEAVED_LEN + r->len;
    }
    assert_int_equal(au->data_len, expect_off);
    assert_int_equal(au->payload_bytes, payload);
}

struct nals {
    uint8_t *v[64];
    size_t n[64];
    int count;
    uint8_t fu[1 << 20];
    size_t fu_len;
    int in_fu;
};

static void nals_add(struct nals *out, const uint8_t *p, size_t n)
{
    assert_true(out->count < 64);
    out->v[out->count] = malloc(n);
    assert_non_null(out->v[out->count]);
    memcpy(out->v[out->count], p, n);
    out->n[out->count++] = n;
}

static void nals_free(struct nals *out)
{
    for (int i = 0; i < out->count; i++)
        free(out->v[i]);
    free(out);
}

/* An independent RFC 6184 / RFC 7798 receiver: packets back to NAL units. */
static struct nals *depacketize(const struct media_au *au, int hevc)
{
    struct nals *out = calloc(1, sizeof *out);
    assert_non_null(out);
    size_t hdr = hevc ? 2 : 1;
    for (int i = 0; i < au->n_packets; i++) {
        const uint8_t *pl = au->data + au->packets[i].off + RTP_INTERLEAVED_LEN + RTP_HEADER_LEN;
        size_t n = au->packets[i].len - RTP_HEADER_LEN;
        int type = hevc ? (pl[0] >> 1) & 0x3f : pl[0] & 0x1f;
        if (type == (hevc ? 48 : 24)) {
            assert_false(out->in_fu);
            size_t k = hdr;
            int units = 0;
            while (k < n) {
                assert_true(n - k >= 2);
                size_t len = be16(pl + k);
                assert_true(len > 0 && n - k - 2 >= len);
                nals_add(out, pl + k + 2, len);
                k += 2 + len;
                units++;
            }
            assert_int_equal(k, n);
            assert_true(units >= 2);
        } else if (type == (hevc ? 49 : 28)) {
            uint8_t fu = pl[hdr];
            int start = fu & 0x80, end = fu & 0x40;
            assert_false(start && end);
            if (start) {
                assert_false(out->in_fu);
                out->in_fu = 1;
                if (hevc) {
                    out->fu[0] = (uint8_t)((pl[0] & 0x81) | (fu & 0x3f) << 1);
                    out->fu[1] = pl[1];
                } else {
                    out->fu[0] = (uint8_t)((pl[0] & 0xe0) | (fu & 0x1f));
                }
                out->fu_len = hdr;
            }
            assert_true(out->in_fu);
            memcpy(out->fu + out->fu_len, pl + hdr + 1, n - hdr - 1);
            out->fu_len += n - hdr - 1;
            if (end) {
                nals_add(out, out->fu, out->fu_len);
                out->in_fu = 0;
            }
        } else {
            assert_false(out->in_fu);
            nals_add(out, pl, n);
        }
    }
    assert_false(out->in_fu);
    return out;
}

static void init_sender(struct rtp_sender *s, enum media_encoding enc, int mtu, uint16_t seq)
{
    rtp_sender_init(s, enc, mtu);
    s->next_seq = seq;
}

/* --- sender -------------------------------------------------------------- */

static void test_sender_init(void **state)
{
    (void)state;
    struct rtp_sender a, b, j;
    rtp_sender_init(&a, MEDIA_ENC_H264, 0);
    rtp_sender_init(&b, MEDIA_ENC_H265, 1200);
    rtp_sender_init(&j, MEDIA_ENC_JPEG, 100000);
    assert_int_equal(a.payload_type, 96);
    assert_int_equal(b.payload_type, 96);
    assert_int_equal(j.payload_type, 26);
    assert_int_equal(a.mtu, RTP_DEFAULT_MTU);
    assert_int_equal(b.mtu, 1200);
    assert_int_equal(j.mtu, 65535);
    /* Random: three equal SSRCs would be a 1 in 2^64 event. */
    assert_false(a.ssrc == b.ssrc && b.ssrc == j.ssrc);
}

/* --- H.264 --------------------------------------------------------------- */

static void test_h264_idr_is_stap_a_then_fu_a(void **state)
{
    (void)state;
    static const uint8_t sps_hdr[] = { 0x67, 0x42, 0xc0, 0x1f };
    uint8_t *sps = make_nal(14, sps_hdr, sizeof sps_hdr, 1);
    uint8_t *pps = make_nal(4, (const uint8_t[]){ 0x68 }, 1, 2);
    uint8_t *sei = make_nal(25, (const uint8_t[]){ 0x06 }, 1, 3);
    uint8_t *idr = make_nal(5000, (const uint8_t[]){ 0x65 }, 1, 4);
    struct stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    append_nal(s, (const uint8_t[]){ 0x09, 0xf0 }, 2, 1);     /* AUD: dropped */
    append_nal(s, sps, 14, 1);
    append_nal(s, pps, 4, 1);
    append_nal(s, sei, 25, 0);
    append_nal(s, idr, 5000, 0);

    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 1000);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H264, s->buf, s->len, 123456, 1);
    assert_non_null(au);
    check_layout(au, &snd, 1000, 123456, 1400);
    assert_int_equal(au->keyframe, 1);
    /* STAP-A + ceil(4999 / (1388 - 2)) fragments */
    assert_int_equal(au->n_packets, 1 + 4);
    assert_int_equal(snd.next_seq, 1005);

    const uint8_t *stap = au->data + au->packets[0].off + 16;
    assert_int_equal(stap[0], 0x60 | 24);                       /* highest NRI of the units */
    assert_int_equal(be16(stap + 1), 14);
    assert_memory_equal(stap + 3, sps, 14);
    assert_int_equal(be16(stap + 17), 4);
    assert_memory_equal(stap + 19, pps, 4);
    assert_int_equal(be16(stap + 23), 25);
    assert_memory_equal(stap + 25, sei, 25);
    assert_int_equal(au->packets[0].len, 12 + 1 + 2 + 14 + 2 + 4 + 2 + 25);

    for (int i = 1; i < au->n_packets; i++) {
        const uint8_t *fu = au->data + au->packets[i].off + 16;
        assert_int_equal(fu[0], 0x60 | 28);                     /* NRI copied from the IDR */
        assert_int_equal(fu[1], (i == 1 ? 0x80 : 0) | (i == au->n_packets - 1 ? 0x40 : 0) | 5);
    }

    struct nals *got = depacketize(au, 0);
    assert_int_equal(got->count, 4);
    assert_int_equal(got->n[0], 14);
    assert_memory_equal(got->v[0], sps, 14);
    assert_memory_equal(got->v[1], pps, 4);
    assert_memory_equal(got->v[2], sei, 25);
    assert_int_equal(got->n[3], 5000);
    assert_memory_equal(got->v[3], idr, 5000);
    nals_free(got);

    media_au_unref(au);
    free(s);
    free(sps);
    free(pps);
    free(sei);
    free(idr);
}

static void test_h264_small_slice_is_single_nal_packet(void **state)
{
    (void)state;
    uint8_t *p = make_nal(700, (const uint8_t[]){ 0x41 }, 1, 9);
    struct stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    append_nal(s, p, 700, 1);
    s->buf[s->len++] = 0;                                      /* trailing_zero_8bits */
    s->buf[s->len++] = 0;
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 7);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H264, s->buf, s->len, 90000, 0);
    assert_non_null(au);
    check_layout(au, &snd, 7, 90000, 1400);
    assert_int_equal(au->n_packets, 1);
    assert_int_equal(au->keyframe, 0);
    assert_int_equal(au->packets[0].len, 12 + 700);
    assert_memory_equal(au->data + 16, p, 700);
    assert_int_equal(au->data_len, 4 + 12 + 700);
    media_au_unref(au);
    free(s);
    free(p);
}

static void test_sequence_numbers_wrap(void **state)
{
    (void)state;
    uint8_t *idr = make_nal(4000, (const uint8_t[]){ 0x65 }, 1, 5);
    struct stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    append_nal(s, idr, 4000, 1);
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 65534);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H264, s->buf, s->len, 0xfffffff0u, 1);
    assert_non_null(au);
    assert_int_equal(au->n_packets, 3);
    check_layout(au, &snd, 65534, 0xfffffff0u, 1400);
    assert_int_equal(be16(au->data + au->packets[0].off + 6), 65534);
    assert_int_equal(be16(au->data + au->packets[1].off + 6), 65535);
    assert_int_equal(be16(au->data + au->packets[2].off + 6), 0);
    assert_int_equal(snd.next_seq, 1);
    struct media_au *next = rtp_packetize(&snd, MEDIA_ENC_H264, s->buf, s->len, 0xfffffff0u + 3000, 0);
    assert_non_null(next);
    assert_int_equal(next->first_seq, 1);
    check_layout(next, &snd, 1, 0xfffffff0u + 3000, 1400);
    media_au_unref(next);
    media_au_unref(au);
    free(s);
    free(idr);
}

/* Every NAL size around the packet limits, for several MTUs, comes back
 * byte for byte and no packet exceeds the MTU. */
static void test_h264_sizes_around_the_mtu(void **state)
{
    (void)state;
    static const int mtus[] = { 300, 576, 1400, 1500 };
    struct stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    for (size_t m = 0; m < sizeof mtus / sizeof mtus[0]; m++) {
        int mp = mtus[m] - 12;
        const size_t sizes[] = { 1, 2, 3, (size_t)mp - 3, (size_t)mp - 2, (size_t)mp - 1, (size_t)mp,
                                 (size_t)mp + 1, (size_t)mp + 2, 2 * (size_t)mp - 2, 2 * (size_t)mp - 1,
                                 2 * (size_t)mp, 3 * (size_t)mp + 7, 100000 };
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            uint8_t *sei = make_nal(10, (const uint8_t[]){ 0x06 }, 1, (unsigned)k);
            uint8_t *nal = make_nal(sizes[k], (const uint8_t[]){ 0x25 }, 1, (unsigned)(k + 100));
            s->len = 0;
            append_nal(s, sei, 10, 0);
            append_nal(s, nal, sizes[k], 1);
            struct rtp_sender snd;
            init_sender(&snd, MEDIA_ENC_H264, mtus[m], (uint16_t)(65530 + k));
            struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H264, s->buf, s->len, 42, 1);
            assert_non_null(au);
            check_layout(au, &snd, (uint16_t)(65530 + k), 42, mtus[m]);
            struct nals *got = depacketize(au, 0);
            assert_int_equal(got->count, 2);
            assert_int_equal(got->n[0], 10);
            assert_memory_equal(got->v[0], sei, 10);
            assert_int_equal(got->n[1], sizes[k]);
            assert_memory_equal(got->v[1], nal, sizes[k]);
            nals_free(got);
            media_au_unref(au);
            free(sei);
            free(nal);
        }
    }
    free(s);
}

static void test_many_slices_are_aggregated_in_order(void **state)
{
    (void)state;
    struct stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    uint8_t *v[100];
    for (int i = 0; i < 100; i++) {               /* more NAL units than fit the stack table */
        v[i] = make_nal((size_t)(50 + i * 7), (const uint8_t[]){ 0x41 }, 1, (unsigned)i);
        append_nal(s, v[i], (size_t)(50 + i * 7), i & 1);
    }
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 0);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H264, s->buf, s->len, 1, 0);
    assert_non_null(au);
    check_layout(au, &snd, 0, 1, 1400);
    assert_true(au->n_packets < 100);
    struct nals *got = calloc(1, sizeof *got);
    assert_non_null(got);
    free(got);
    /* depacketize keeps at most 64 units: walk the STAP-As directly here. */
    int idx = 0;
    for (int i = 0; i < au->n_packets; i++) {
        const uint8_t *pl = au->data + au->packets[i].off + 16;
        size_t n = au->packets[i].len - 12;
        if ((pl[0] & 0x1f) == 24) {
            for (size_t k = 1; k < n; idx++) {
                size_t len = be16(pl + k);
                assert_int_equal(len, 50 + idx * 7);
                assert_memory_equal(pl + k + 2, v[idx], len);
                k += 2 + len;
            }
        } else {
            assert_int_equal(n, 50 + idx * 7);
            assert_memory_equal(pl, v[idx], n);
            idx++;
        }
    }
    assert_int_equal(idx, 100);
    media_au_unref(au);
    for (int i = 0; i < 100; i++)
        free(v[i]);
    free(s);
}

struct annexb_got {
    int n;
    size_t len[8];
    uint8_t first[8];
};

static void annexb_collect(void *arg, const uint8_t *nal, size_t n)
{
    struct annexb_got *x = arg;
    assert_true(x->n < 8);
    x->len[x->n] = n;
    x->first[x->n++] = nal[0];
}

static void test_annexb_foreach(void **state)
{
    (void)state;
    static const uint8_t stream[] = {
        0xaa, 0xbb,                               /* garbage before the first start code */
        0, 0, 0, 1, 0x67, 1, 2, 3,
        0, 0, 1, 0x68, 4,
        0, 0, 0, 0, 1, 0x65, 5, 6, 0, 0,          /* trailing zeros */
        0, 0, 1,                                  /* empty */
        0, 0, 1, 0x41, 0, 0, 3, 1,                /* emulation prevention kept */
    };
    struct annexb_got g = { 0 };
    assert_int_equal(rtp_annexb_foreach(stream, sizeof stream, annexb_collect, &g), 4);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.len[0], 4);
    assert_int_equal(g.first[0], 0x67);
    assert_int_equal(g.len[1], 2);
    assert_int_equal(g.len[2], 3);
    assert_int_equal(g.first[2], 0x65);
    assert_int_equal(g.len[3], 5);
    assert_int_equal(rtp_annexb_foreach(stream, sizeof stream, NULL, NULL), 4);
    assert_int_equal(rtp_annexb_foreach(stream, 2, annexb_collect, &g), 0);
    assert_int_equal(rtp_annexb_foreach(NULL, 0, annexb_collect, &g), 0);
}

static void test_malformed_annexb_is_refused(void **state)
{
    (void)state;
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 5);
    static const uint8_t no_start[] = { 0x65, 1, 2, 3, 4 };
    static const uint8_t only_aud[] = { 0, 0, 0, 1, 0x09, 0xf0 };
    static const uint8_t hevc_short[] = { 0, 0, 1, 0x26 };
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H264, no_start, sizeof no_start, 0, 0));
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H264, only_aud, sizeof only_aud, 0, 0));
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H264, no_start, 0, 0, 0));
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H264, NULL, 10, 0, 0));
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H265, hevc_short, sizeof hevc_short, 0, 0));
    assert_null(rtp_packetize(&snd, (enum media_encoding)7, no_start, sizeof no_start, 0, 0));
    assert_int_equal(snd.next_seq, 5);                          /* nothing consumed */
}

/* NAL unit types that are payload structures on the wire (STAP-A 24, FU-A
 * 28, ... / AP 48, FU 49, PACI 50) are unspecified in the bitstream and
 * ignored by decoders: dropped, never sent as a single NAL unit packet a
 * receiver would misparse. */
static void test_reserved_nal_types_are_dropped(void **state)
{
    (void)state;
    static const uint8_t h264[] = { 0, 0, 1, 0x18, 0, 2, 0x41, 0x99,      /* "STAP-A" */
                                    0, 0, 1, 0x7c, 0x85, 0x11,            /* "FU-A" */
                                    0, 0, 1, 0x00, 0x12,                  /* type 0 */
                                    0, 0, 1, 0x1f, 0x13,                  /* type 31 */
                                    0, 0, 1, 0x41, 0x9a, 0x21 };          /* the slice */
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 0);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H264, h264, sizeof h264, 0, 0);
    assert_non_null(au);
    assert_int_equal(au->n_packets, 1);
    assert_int_equal(au->packets[0].len, 12 + 3);
    assert_memory_equal(au->data + 16, h264 + sizeof h264 - 3, 3);
    media_au_unref(au);
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H264, h264, sizeof h264 - 6, 0, 0));   /* nothing left */

    static const uint8_t h265[] = { 0, 0, 1, 0x60, 0x01, 0x55,            /* "AP" */
                                    0, 0, 1, 0x62, 0x01, 0x80, 0x56,      /* "FU" */
                                    0, 0, 1, 0x64, 0x01, 0x57,            /* "PACI" */
                                    0, 0, 1, 0x7e, 0x01, 0x58,            /* type 63 */
                                    0, 0, 1, 0x02, 0x01, 0xab };          /* TRAIL_R */
    init_sender(&snd, MEDIA_ENC_H265, 1400, 0);
    au = rtp_packetize(&snd, MEDIA_ENC_H265, h265, sizeof h265, 0, 0);
    assert_non_null(au);
    assert_int_equal(au->n_packets, 1);
    assert_int_equal(au->packets[0].len, 12 + 3);
    assert_memory_equal(au->data + 16, h265 + sizeof h265 - 3, 3);
    media_au_unref(au);
}

/* nuh_temporal_id_plus1 = 0 is forbidden, and an AP taking the lowest TID
 * would carry the invalid 0 on. */
static void test_h265_temporal_id_zero_is_refused(void **state)
{
    (void)state;
    static const uint8_t pic[] = { 0, 0, 1, 0x02, 0x01, 0xaa, 0, 0, 1, 0x02, 0x00, 0xbb };
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H265, 1400, 3);
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H265, pic, sizeof pic, 0, 0));
    assert_int_equal(snd.next_seq, 3);
}

/* Random bytes, random start codes: refused or packetized into a valid
 * layout whose payloads come from the input, never a read out of bounds
 * (valgrind / ASan watch the buffers: each is exactly its length). */
static void test_random_annexb_never_misbehaves(void **state)
{
    (void)state;
    uint32_t x = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        x = x * 1103515245u + 12345u;
        size_t len = (x >> 8) % 3000;
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            uint32_t r = x >> 16;
            /* mostly zeros and ones, so that start codes are frequent */
            buf[i] = (uint8_t)(r % 4 == 0 ? 0 : r % 4 == 1 ? 1 : r % 7 == 0 ? 0xff : r);
        }
        enum media_encoding enc = iter % 3 == 0 ? MEDIA_ENC_H264 : iter % 3 == 1 ? MEDIA_ENC_H265 : MEDIA_ENC_JPEG;
        int mtu = iter % 2 ? 300 : 1400;
        struct rtp_sender snd;
        init_sender(&snd, enc, mtu, (uint16_t)iter);
        struct media_au *au = rtp_packetize(&snd, enc, buf, len, (uint32_t)iter, 0);
        if (au) {
            check_layout(au, &snd, (uint16_t)iter, (uint32_t)iter, mtu);
            if (enc != MEDIA_ENC_JPEG && rtp_annexb_foreach(buf, len, NULL, NULL) <= 64)
                nals_free(depacketize(au, enc == MEDIA_ENC_H265));
            media_au_unref(au);
        }
        free(buf);
    }
}

static void test_oversized_picture_is_refused(void **state)
{
    (void)state;
    static const uint8_t pic[] = { 0, 0, 1, 0x41, 1, 2, 3 };
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 0);
    /* Refused on the length alone, before a byte is read. */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H264, pic, (size_t)1 << 40, 0, 0));
    assert_null(rtp_packetize(&snd, MEDIA_ENC_H264, pic, SIZE_MAX, 0, 0));
    assert_null(rtp_packetize(NULL, MEDIA_ENC_H264, pic, sizeof pic, 0, 0));
}

static void test_au_refcount(void **state)
{
    (void)state;
    static const uint8_t pic[] = { 0, 0, 1, 0x41, 1, 2, 3 };
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H264, 1400, 5);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H264, pic, sizeof pic, 0, 0);
    assert_non_null(au);
    assert_ptr_equal(media_au_ref(au), au);
    assert_int_equal(atomic_load(&au->refs), 2);
    media_au_unref(au);
    assert_int_equal(atomic_load(&au->refs), 1);
    media_au_unref(au);                     /* freed: valgrind checks */
    media_au_unref(NULL);
    assert_null(media_au_ref(NULL));
}

/* --- H.265 --------------------------------------------------------------- */

static void test_h265_ap_and_fu(void **state)
{
    (void)state;
    uint8_t *vps = make_nal(24, (const uint8_t[]){ 0x40, 0x01 }, 2, 1);
    uint8_t *sps = make_nal(40, (const uint8_t[]){ 0x42, 0x01 }, 2, 2);
    uint8_t *pps = make_nal(7, (const uint8_t[]){ 0x44, 0x01 }, 2, 3);
    uint8_t *idr = make_nal(3000, (const uint8_t[]){ 0x26, 0x01 }, 2, 4);   /* IDR_W_RADL */
    struct stream *s = calloc(1, sizeof *s);
    assert_non_null(s);
    append_nal(s, (const uint8_t[]){ 0x46, 0x01, 0x50 }, 3, 1);           /* AUD: dropped */
    append_nal(s, vps, 24, 1);
    append_nal(s, sps, 40, 1);
    append_nal(s, pps, 7, 1);
    append_nal(s, idr, 3000, 1);
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H265, 1400, 100);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H265, s->buf, s->len, 5, 1);
    assert_non_null(au);
    check_layout(au, &snd, 100, 5, 1400);
    /* AP + ceil(2998 / (1388 - 3)) */
    assert_int_equal(au->n_packets, 1 + 3);
    const uint8_t *ap = au->data + 16;
    assert_int_equal(ap[0], 48 << 1);
    assert_int_equal(ap[1], 0x01);                              /* layer 0, TID 1 */
    assert_int_equal(be16(ap + 2), 24);
    for (int i = 1; i < au->n_packets; i++) {
        const uint8_t *fu = au->data + au->packets[i].off + 16;
        assert_int_equal(fu[0], 49 << 1);
        assert_int_equal(fu[1], 0x01);
        assert_int_equal(fu[2], (i == 1 ? 0x80 : 0) | (i == au->n_packets - 1 ? 0x40 : 0) | 19);
    }
    struct nals *got = depacketize(au, 1);
    assert_int_equal(got->count, 4);
    assert_memory_equal(got->v[0], vps, 24);
    assert_memory_equal(got->v[1], sps, 40);
    assert_memory_equal(got->v[2], pps, 7);
    assert_int_equal(got->n[3], 3000);
    assert_memory_equal(got->v[3], idr, 3000);
    nals_free(got);
    media_au_unref(au);
    free(s);
    free(vps);
    free(sps);
    free(pps);
    free(idr);
}

static void test_h265_ap_takes_lowest_tid(void **state)
{
    (void)state;
    static const uint8_t pic[] = { 0, 0, 1, 0x02, 0x03, 0xaa, 0, 0, 1, 0x02, 0x02, 0xbb };  /* TRAIL_R, TID 2 and 1 */
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_H265, 1400, 0);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_H265, pic, sizeof pic, 0, 0);
    assert_non_null(au);
    assert_int_equal(au->n_packets, 1);
    assert_int_equal(au->data[16], 48 << 1);
    assert_int_equal(au->data[17], 0x02);
    media_au_unref(au);
}

/* --- JPEG ---------------------------------------------------------------- */

/* One JPEG from libavcodec's MJPEG encoder, or NULL when it is missing. */
static uint8_t *encode_jpeg(int w, int h, enum AVPixelFormat fmt, const char *huffman, size_t *len)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return NULL;
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    assert_non_null(ctx);
    ctx->width = w;
    ctx->height = h;
    ctx->pix_fmt = fmt;
    ctx->time_base = (AVRational){ 1, 25 };
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * 4;
    assert_int_equal(av_opt_set(ctx->priv_data, "huffman", huffman, 0), 0);
    assert_int_equal(avcodec_open2(ctx, codec, NULL), 0);
    AVFrame *f = av_frame_alloc();
    assert_non_null(f);
    f->format = fmt;
    f->width = w;
    f->height = h;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    for (int p = 0; p < 3; p++) {
        int pw = p ? (w + 1) / 2 : w;
        int ph = p && fmt == AV_PIX_FMT_YUVJ420P ? (h + 1) / 2 : h;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++)
                f->data[p][y * f->linesize[p] + x] = (uint8_t)(p * 60 + x * 3 + y * 2 + ((x * y) % 17));
    }
    f->quality = ctx->global_quality;
    f->pts = 0;
    AVPacket *pkt = av_packet_alloc();
    assert_non_null(pkt);
    assert_int_equal(avcodec_send_frame(ctx, f), 0);
    assert_int_equal(avcodec_receive_packet(ctx, pkt), 0);
    uint8_t *out = malloc((size_t)pkt->size);
    assert_non_null(out);
    memcpy(out, pkt->data, (size_t)pkt->size);
    *len = (size_t)pkt->size;
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&ctx);
    return out;
}

/* A bit writer for entropy-coded data: MSB first, 0xFF stuffed with 0x00. */
struct bit_writer {
    uint8_t *p;
    size_t n, cap;
    uint32_t acc;
    int bits;
};

static void bw_put(struct bit_writer *b, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        b->acc = b->acc << 1 | (v >> i & 1);
        if (++b->bits == 8) {
            assert_true(b->n + 2 <= b->cap);
            b->p[b->n++] = (uint8_t)b->acc;
            if ((uint8_t)b->acc == 0xff)
                b->p[b->n++] = 0;
            b->acc = 0;
            b->bits = 0;
        }
    }
}

static void bw_align(struct bit_writer *b)
{
    while (b->bits)
        bw_put(b, 1, 1);                       /* padding with 1 bits (T.81 F.1.2.3) */
}

static void bw_bytes(struct bit_writer *b, const uint8_t *d, size_t n)
{
    assert_int_equal(b->bits, 0);
    assert_true(b->n + n <= b->cap);
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

/* A baseline JPEG laid out exactly as RFC 2435 types 0/1 (64/65) describe:
 * Y sampled 2x1 (y_hv 0x21) or 2x2 (0x22), Cb and Cr 1x1 sharing table 1,
 * the T.81 Annex K Huffman tables (implied: no DHT), restart markers every
 * ri MCUs when ri > 0. Horizontal stripes of grey: the luma DC alternates
 * from one MCU to the next. */
static uint8_t *synth_jpeg(int w, int h, uint8_t y_hv, uint16_t ri, size_t *len)
{
    int mcu_w = 16, mcu_h = y_hv == 0x22 ? 16 : 8, y_blocks = y_hv == 0x22 ? 4 : 2;
    size_t mcus = (size_t)((w + mcu_w - 1) / mcu_w) * (size_t)((h + mcu_h - 1) / mcu_h);
    struct bit_writer b = { .cap = mcus * 8 + 1024 };
    b.p = malloc(b.cap);
    assert_non_null(b.p);

    uint8_t hdr[2 + 4 + 130 + 19 + 6 + 14];
    size_t k = 0;
    hdr[k++] = 0xff, hdr[k++] = 0xd8;                                           /* SOI */
    hdr[k++] = 0xff, hdr[k++] = 0xdb, hdr[k++] = 0, hdr[k++] = 2 + 2 * 65;      /* DQT, two tables */
    for (int t = 0; t < 2; t++) {
        hdr[k++] = (uint8_t)t;
        for (int i = 0; i < 64; i++)
            hdr[k++] = (uint8_t)(t ? 3 + i / 3 : 2 + i / 4);
    }
    const uint8_t sof[] = { 0xff, 0xc0, 0, 17, 8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w,
                            3, 1, y_hv, 0, 2, 0x11, 1, 3, 0x11, 1 };
    memcpy(hdr + k, sof, sizeof sof);
    k += sizeof sof;
    if (ri) {
        const uint8_t dri[] = { 0xff, 0xdd, 0, 4, (uint8_t)(ri >> 8), (uint8_t)ri };
        memcpy(hdr + k, dri, sizeof dri);
        k += sizeof dri;
    }
    const uint8_t sos[] = { 0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0 };
    memcpy(hdr + k, sos, sizeof sos);
    k += sizeof sos;
    bw_bytes(&b, hdr, k);

    size_t in_interval = 0;
    int rst = 0;
    for (size_t m = 0; m < mcus; m++) {
        if (ri && in_interval == ri) {
            bw_align(&b);
            bw_bytes(&b, (const uint8_t[]){ 0xff, (uint8_t)(0xd0 + rst) }, 2);
            rst = (rst + 1) & 7;
            in_interval = 0;                   /* DC predictors restart at 0 */
        }
        for (int y = 0; y < y_blocks; y++) {
            if (y == 0)
                bw_put(&b, in_interval % 2 ? 0x4 : 0x5, 4);  /* DC category 1 (010), diff -1 / +1 */
            else
                bw_put(&b, 0x0, 2);                            /* DC category 0 (00) */
            bw_put(&b, 0xa, 4);                                /* AC EOB (1010) */
        }
        for (int c = 0; c < 2; c++) {
            bw_put(&b, 0x0, 2);                                /* chroma DC category 0 (00) */
            bw_put(&b, 0x0, 2);                                /* chroma AC EOB (00) */
        }
        in_interval++;
    }
    bw_align(&b);
    bw_bytes(&b, (const uint8_t[]){ 0xff, 0xd9 }, 2);         /* EOI */
    *len = b.n;
    return b.p;
}

/* libavcodec's MJPEG decoder reads the picture as the given pixel format:
 * synth_jpeg wrote a valid JPEG. Skipped without the decoder. */
static void check_decodes(const uint8_t *jpg, size_t len, int w, int h, enum AVPixelFormat fmt)
{
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return;
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    assert_non_null(ctx);
    assert_int_equal(avcodec_open2(ctx, codec, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    assert_non_null(pkt);
    assert_int_equal(av_new_packet(pkt, (int)len), 0);
    memcpy(pkt->data, jpg, len);
    AVFrame *f = av_frame_alloc();
    assert_non_null(f);
    assert_int_equal(avcodec_send_packet(ctx, pkt), 0);
    assert_int_equal(avcodec_receive_frame(ctx, f), 0);
    assert_int_equal(f->width, w);
    assert_int_equal(f->height, h);
    assert_int_equal(f->format, fmt);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
}

/* Offset of the first marker m (FF m) in a JPEG, walking segments. */
static size_t find_marker(const uint8_t *d, size_t len, uint8_t m)
{
    size_t i = 2;
    while (i + 4 <= len && d[i] == 0xff) {
        if (d[i + 1] == m)
            return i;
        i += 2 + be16(d + i + 2);
    }
    return 0;
}

/* The 8-bit quantisation table with id tq, from whichever DQT segment
 * defines it (the last definition wins). */
static void dqt_table(const uint8_t *d, size_t len, int tq, uint8_t out[64])
{
    int found = 0;
    size_t i = 2;
    while (i + 4 <= len && d[i] == 0xff && d[i + 1] != 0xda) {
        size_t sl = be16(d + i + 2);
        if (d[i + 1] == 0xdb) {
            for (size_t k = 4; k + 65 <= sl + 2; k += 65) {
                assert_int_equal(d[i + k] >> 4, 0);
                if ((d[i + k] & 15) == tq) {
                    memcpy(out, d + i + k + 1, 64);
                    found = 1;
                }
            }
        }
        i += 2 + sl;
    }
    assert_true(found);
}

struct jpeg_rx {
    int type, q, w8, h8;
    uint8_t qt[256];
    size_t qt_len;
    int precision;
    uint8_t scan[1 << 20];
    size_t scan_len;
    int restart_interval;
};

/* An independent RFC 2435 receiver: checks the headers of every packet and
 * reassembles the scan data. */
static void jpeg_receive(const struct media_au *au, struct jpeg_rx *rx)
{
    memset(rx, 0, sizeof *rx);
    rx->restart_interval = -1;
    for (int i = 0; i < au->n_packets; i++) {
        const uint8_t *pl = au->data + au->packets[i].off + 16;
        size_t n = au->packets[i].len - 12;
        assert_true(n > 8);
        assert_int_equal(pl[0], 0);
        uint32_t off = (uint32_t)pl[1] << 16 | be16(pl + 2);
        assert_int_equal(off, rx->scan_len);                   /* contiguous fragments */
        if (i == 0) {
            rx->type = pl[4];
            rx->q = pl[5];
            rx->w8 = pl[6];
            rx->h8 = pl[7];
        } else {
            assert_int_equal(pl[4], rx->type);
            assert_int_equal(pl[5], rx->q);
            assert_int_equal(pl[6], rx->w8);
            assert_int_equal(pl[7], rx->h8);
        }
        size_t k = 8;
        if (rx->type >= 64) {
            assert_true(n > 12);
            if (i == 0)
                rx->restart_interval = (int)be16(pl + 8);
            assert_int_equal(be16(pl + 8), rx->restart_interval);
            assert_int_equal(be16(pl + 10), 0xffff);           /* F=1 L=1 count 0x3FFF */
            k = 12;
        }
        if (i == 0 && rx->q >= 128) {
            assert_int_equal(pl[k], 0);
            rx->precision = pl[k + 1];
            rx->qt_len = be16(pl + k + 2);
            assert_true(rx->qt_len <= sizeof rx->qt && n >= k + 4 + rx->qt_len);
            memcpy(rx->qt, pl + k + 4, rx->qt_len);
            k += 4 + rx->qt_len;
        }
        assert_true(n > k);
        memcpy(rx->scan + rx->scan_len, pl + k, n - k);
        rx->scan_len += n - k;
    }
}

static void check_jpeg(const uint8_t *jpg, size_t len, int mtu, int type, int w8, int h8)
{
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_JPEG, mtu, 65533);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_JPEG, jpg, len, 777, 0);
    assert_non_null(au);
    check_layout(au, &snd, 65533, 777, mtu);
    assert_int_equal(au->keyframe, 1);
    struct jpeg_rx *rx = malloc(sizeof *rx);
    assert_non_null(rx);
    jpeg_receive(au, rx);
    assert_int_equal(rx->type, type);
    assert_int_equal(rx->q, 255);
    assert_int_equal(rx->w8, w8);
    assert_int_equal(rx->h8, h8);
    assert_int_equal(rx->qt_len, 128);
    assert_int_equal(rx->precision, 0);

    /* The tables are the ones the SOF assigns to Y and to Cb/Cr, luma
     * first: the same table twice when all components share it. */
    size_t sof = find_marker(jpg, len, 0xc0);
    assert_true(sof > 0);
    uint8_t expect[128];
    dqt_table(jpg, len, jpg[sof + 12], expect);                     /* Y: Tq */
    dqt_table(jpg, len, jpg[sof + 15], expect + 64);                /* Cb: Tq */
    assert_memory_equal(rx->qt, expect, 128);

    /* The scan data is everything after the SOS header up to EOI. */
    size_t sos = find_marker(jpg, len, 0xda);
    assert_true(sos > 0);
    size_t scan = sos + 2 + be16(jpg + sos + 2);
    assert_int_equal(jpg[len - 2], 0xff);
    assert_int_equal(jpg[len - 1], 0xd9);
    assert_int_equal(rx->scan_len, len - 2 - scan);
    assert_memory_equal(rx->scan, jpg + scan, rx->scan_len);
    free(rx);
    media_au_unref(au);
}

static void test_jpeg_420_from_libavcodec(void **state)
{
    (void)state;
    size_t len;
    uint8_t *jpg = encode_jpeg(320, 240, AV_PIX_FMT_YUVJ420P, "default", &len);
    if (!jpg)
        skip();
    check_jpeg(jpg, len, 1400, 1, 40, 30);
    check_jpeg(jpg, len, 300, 1, 40, 30);
    check_jpeg(jpg, len, 65535, 1, 40, 30);
    free(jpg);
}

/* Type 0 is Y 2x1 with chroma 1x1 (RFC 2435 4.1): a 4:2:2 picture in that
 * layout is carried, with its size rounded up to whole blocks. */
static void test_jpeg_422_and_odd_size(void **state)
{
    (void)state;
    size_t len;
    uint8_t *jpg = synth_jpeg(642, 362, 0x21, 0, &len);
    check_decodes(jpg, len, 642, 362, AV_PIX_FMT_YUVJ422P);
    check_jpeg(jpg, len, 1400, 0, 81, 46);
    check_jpeg(jpg, len, 300, 0, 81, 46);
    free(jpg);

    jpg = synth_jpeg(1, 1, 0x22, 0, &len);
    check_decodes(jpg, len, 1, 1, AV_PIX_FMT_YUVJ420P);
    check_jpeg(jpg, len, 1400, 1, 1, 1);
    free(jpg);
}

/* libavcodec codes 4:2:2 as Y 2x2 with chroma 1x2: the same sampling ratio
 * but another MCU layout (two chroma blocks per component per MCU), which a
 * type 0 receiver would decode as noise. Refused rather than mislabelled. */
static void test_jpeg_422_in_another_mcu_layout_is_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *jpg = encode_jpeg(320, 240, AV_PIX_FMT_YUVJ422P, "default", &len);
    if (!jpg)
        skip();
    size_t sof = find_marker(jpg, len, 0xc0);
    assert_true(sof > 0);
    assert_int_equal(jpg[sof + 11], 0x22);
    assert_int_equal(jpg[sof + 14], 0x12);
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_JPEG, 1400, 9);
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, jpg, len, 0, 1));
    assert_int_equal(snd.next_seq, 9);
    free(jpg);
}

/* A copy of jpg with a DRI segment inserted before SOS. */
static uint8_t *with_dri(const uint8_t *jpg, size_t len, uint16_t ri, size_t *out_len)
{
    size_t sos = find_marker(jpg, len, 0xda);
    assert_true(sos > 0);
    uint8_t *o = malloc(len + 6);
    assert_non_null(o);
    memcpy(o, jpg, sos);
    const uint8_t dri[] = { 0xff, 0xdd, 0, 4, (uint8_t)(ri >> 8), (uint8_t)ri };
    memcpy(o + sos, dri, 6);
    memcpy(o + sos + 6, jpg + sos, len - sos);
    *out_len = len + 6;
    return o;
}

static void test_jpeg_restart_markers_use_types_64_65(void **state)
{
    (void)state;
    size_t len, dlen;
    uint8_t *jpg = encode_jpeg(320, 240, AV_PIX_FMT_YUVJ420P, "default", &len);
    if (!jpg)
        skip();
    uint8_t *d = with_dri(jpg, len, 20, &dlen);
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_JPEG, 1400, 0);
    struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_JPEG, d, dlen, 0, 1);
    assert_non_null(au);
    check_layout(au, &snd, 0, 0, 1400);
    struct jpeg_rx *rx = malloc(sizeof *rx);
    assert_non_null(rx);
    jpeg_receive(au, rx);
    assert_int_equal(rx->type, 65);
    assert_int_equal(rx->restart_interval, 20);
    assert_int_equal(rx->qt_len, 128);
    free(rx);
    media_au_unref(au);
    free(d);

    free(jpg);

    /* Real restart markers in the scan: FF D0..D7 are not the end of it. */
    d = synth_jpeg(320, 240, 0x21, 1, &dlen);
    check_decodes(d, dlen, 320, 240, AV_PIX_FMT_YUVJ422P);
    au = rtp_packetize(&snd, MEDIA_ENC_JPEG, d, dlen, 0, 1);
    assert_non_null(au);
    assert_int_equal(au->data[16 + 4], 64);
    assert_int_equal(be16(au->data + 16 + 8), 1);
    media_au_unref(au);
    check_jpeg(d, dlen, 1400, 64, 40, 30);
    free(d);
    d = synth_jpeg(200, 100, 0x22, 3, &dlen);
    check_decodes(d, dlen, 200, 100, AV_PIX_FMT_YUVJ420P);
    check_jpeg(d, dlen, 576, 65, 25, 13);
    free(d);
}

static void test_jpeg_dimension_limits(void **state)
{
    (void)state;
    size_t len;
    uint8_t *jpg = encode_jpeg(64, 48, AV_PIX_FMT_YUVJ420P, "default", &len);
    if (!jpg)
        skip();
    size_t sof = find_marker(jpg, len, 0xc0);
    assert_true(sof > 0);
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_JPEG, 1400, 0);
    static const struct { int w, h, ok; } cases[] = {
        { 2040, 2040, 1 }, { 2041, 48, 0 }, { 64, 2041, 0 }, { 4096, 48, 0 }, { 0, 48, 0 }, { 64, 0, 0 }, { 1, 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jpg[sof + 5] = (uint8_t)(cases[i].h >> 8);
        jpg[sof + 6] = (uint8_t)cases[i].h;
        jpg[sof + 7] = (uint8_t)(cases[i].w >> 8);
        jpg[sof + 8] = (uint8_t)cases[i].w;
        struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_JPEG, jpg, len, 0, 1);
        if (!cases[i].ok) {
            assert_null(au);
            continue;
        }
        assert_non_null(au);
        assert_int_equal(au->data[16 + 6], (cases[i].w + 7) / 8);
        assert_int_equal(au->data[16 + 7], (cases[i].h + 7) / 8);
        media_au_unref(au);
    }
    free(jpg);
}

static void test_jpeg_unrepresentable_pictures_are_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *jpg = encode_jpeg(64, 48, AV_PIX_FMT_YUVJ420P, "default", &len);
    if (!jpg)
        skip();
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_JPEG, 1400, 0);
    uint8_t *c = malloc(len);
    assert_non_null(c);
    size_t sof = find_marker(jpg, len, 0xc0);
    size_t sos = find_marker(jpg, len, 0xda);
    size_t dqt = find_marker(jpg, len, 0xdb);
    assert_true(sof && sos && dqt);

    memcpy(c, jpg, len);
    c[sof + 1] = 0xc2;                                          /* progressive */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    memcpy(c, jpg, len);
    c[sof + 1] = 0xc1;                                          /* extended sequential */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    memcpy(c, jpg, len);
    c[sof + 11] = 0x12;                                         /* Y sampled 1x2 */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    memcpy(c, jpg, len);
    c[sof + 14] = 0x21;                                         /* chroma not 1x1 */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    memcpy(c, jpg, len);
    c[sof + 4] = 12;                                            /* 12-bit samples */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    memcpy(c, jpg, len);
    c[0] = 0;                                                   /* no SOI */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    memcpy(c, jpg, len);
    c[sos + 2] = 0x7f;                                          /* segment length beyond the end */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    memcpy(c, jpg, len);
    c[dqt + 1] = 0xfe;                                          /* no quantisation tables (DQT -> COM) */
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));

    /* Any truncation before the scan is refused; after it, what arrived is sent. */
    size_t scan = sos + 2 + be16(jpg + sos + 2);
    for (size_t n = 0; n < len; n++) {
        struct media_au *au = rtp_packetize(&snd, MEDIA_ENC_JPEG, jpg, n, 0, 1);
        if (n <= scan)
            assert_null(au);
        else
            assert_non_null(au);
        media_au_unref(au);
    }

    /* Bytes flipped anywhere: refused or packetized, never a crash. */
    for (size_t i = 0; i < len; i++) {
        memcpy(c, jpg, len);
        c[i] ^= 0xa5;
        media_au_unref(rtp_packetize(&snd, MEDIA_ENC_JPEG, c, len, 0, 1));
    }
    free(c);
    free(jpg);
}

/* Per-picture Huffman tables cannot travel in RFC 2435. */
static void test_jpeg_with_optimised_huffman_tables_is_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *jpg = encode_jpeg(320, 240, AV_PIX_FMT_YUVJ420P, "optimal", &len);
    if (!jpg)
        skip();
    struct rtp_sender snd;
    init_sender(&snd, MEDIA_ENC_JPEG, 1400, 0);
    assert_null(rtp_packetize(&snd, MEDIA_ENC_JPEG, jpg, len, 0, 1));
    free(jpg);
}

static void test_jpeg_without_dht_uses_the_standard_tables(void **state)
{
    (void)state;
    size_t len;
    uint8_t *jpg = encode_jpeg(64, 48, AV_PIX_FMT_YUVJ420P, "default", &len);
    if (!jpg)
        skip();
    size_t dht;
    while ((dht = find_marker(jpg, len, 0xc4)) != 0) {        /* drop every DHT segment */
        size_t sl = 2 + be16(jpg + dht + 2);
        memmove(jpg + dht, jpg + dht + sl, len - dht - sl);
        len -= sl;
    }
    check_jpeg(jpg, len, 1400, 1, 8, 6);
    free(jpg);
}

/* --- SDP ----------------------------------------------------------------- */

static void b64(const uint8_t *d, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, d, (int)n);
}

static void test_sdp_h264(void **state)
{
    (void)state;
    static const uint8_t ps[] = { 0, 0, 0, 1, 0x67, 0x4d, 0x40, 0x28, 0xec, 0xa0, 0x3c, 0x01, 0x13, 0xf2,
                                  0, 0, 0, 1, 0x68, 0xee, 0x3c, 0x80 };
    char sps64[64], pps64[64], expect[512];
    b64(ps + 4, 10, sps64);
    b64(ps + 18, 4, pps64);
    snprintf(expect, sizeof expect,
             "m=video 0 RTP/AVP 96\r\n"
             "a=rtpmap:96 H264/90000\r\n"
             "a=fmtp:96 packetization-mode=1;profile-level-id=4d4028;sprop-parameter-sets=%s,%s\r\n"
             "a=framerate:25\r\n"
             "a=control:trackID=1\r\n",
             sps64, pps64);
    char out[512];
    int n = rtp_sdp_media(out, sizeof out, MEDIA_ENC_H264, 96, ps, sizeof ps, 1920, 1080, 25, "trackID=1");
    assert_int_equal(n, strlen(expect));
    assert_string_equal(out, expect);
    assert_string_equal(sps64, "Z01AKOygPAET8g==");
    assert_string_equal(pps64, "aO48gA==");
    /* Every buffer too small is refused, not truncated. */
    for (size_t len = 0; len <= (size_t)n; len++)
        assert_int_equal(rtp_sdp_media(out, len, MEDIA_ENC_H264, 96, ps, sizeof ps, 1920, 1080, 25, "trackID=1"),
                         -1);
    assert_int_equal(rtp_sdp_media(out, (size_t)n + 1, MEDIA_ENC_H264, 96, ps, sizeof ps, 1920, 1080, 25,
                                   "trackID=1"), n);

    /* No parameter sets known yet: packetization mode only. */
    n = rtp_sdp_media(out, sizeof out, MEDIA_ENC_H264, 97, NULL, 0, 0, 0, 0, NULL);
    assert_string_equal(out, "m=video 0 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=1\r\n");
    assert_int_equal(n, strlen(out));
}

static void test_sdp_h265(void **state)
{
    (void)state;
    /* The SPS is followed by a 4-byte start code: its last 00 is the start
     * code's leading zero, not part of the SPS (a NAL unit ends in its
     * rbsp_stop_one_bit, never in a zero byte). */
    static const uint8_t ps[] = { 0, 0, 1, 0x40, 0x01, 0x0c, 0x01, 0xff,
                                  0, 0, 1, 0x42, 0x01, 0x01, 0x01, 0x60, 0x00,
                                  0, 0, 1, 0x44, 0x01, 0xc1, 0x72 };
    char v[32], s[32], p[32], expect[512];
    b64(ps + 3, 5, v);
    b64(ps + 11, 5, s);
    b64(ps + 20, 4, p);
    snprintf(expect, sizeof expect,
             "m=video 0 RTP/AVP 96\r\n"
             "a=rtpmap:96 H265/90000\r\n"
             "a=fmtp:96 sprop-vps=%s;sprop-sps=%s;sprop-pps=%s\r\n"
             "a=framerate:30\r\n"
             "a=control:track1\r\n",
             v, s, p);
    char out[512];
    int n = rtp_sdp_media(out, sizeof out, MEDIA_ENC_H265, 96, ps, sizeof ps, 1280, 720, 30, "track1");
    assert_string_equal(out, expect);
    assert_int_equal(n, strlen(expect));
}

static void test_sdp_jpeg(void **state)
{
    (void)state;
    char out[256];
    int n = rtp_sdp_media(out, sizeof out, MEDIA_ENC_JPEG, 26, NULL, 0, 640, 480, 10, "rtsp://cam/track");
    assert_string_equal(out, "m=video 0 RTP/AVP 26\r\n"
                             "a=rtpmap:26 JPEG/90000\r\n"
                             "a=framerate:10\r\n"
                             "a=x-dimensions:640,480\r\n"
                             "a=control:rtsp://cam/track\r\n");
    assert_int_equal(n, strlen(out));
    assert_int_equal(rtp_sdp_media(out, sizeof out, (enum media_encoding)9, 26, NULL, 0, 640, 480, 10, "x"), -1);
    assert_int_equal(rtp_sdp_media(NULL, 0, MEDIA_ENC_JPEG, 26, NULL, 0, 640, 480, 10, "x"), -1);
}

/* The control value is copied into the SDP: a line break in it would add
 * lines of its own, so it is refused, as is a payload type beyond 7 bits. */
static void test_sdp_refuses_what_it_cannot_write(void **state)
{
    (void)state;
    char out[512];
    static const char *bad[] = { "track1\r\na=recvonly", "track1\n", "tr\rack", "a\tb", "x\x7f" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 'x', sizeof out);
        assert_int_equal(rtp_sdp_media(out, sizeof out, MEDIA_ENC_JPEG, 26, NULL, 0, 640, 480, 10, bad[i]), -1);
        assert_int_equal(out[0], '\0');
    }
    assert_int_equal(rtp_sdp_media(out, sizeof out, MEDIA_ENC_H264, 128, NULL, 0, 0, 0, 0, "t"), -1);
    assert_int_equal(rtp_sdp_media(out, sizeof out, MEDIA_ENC_H264, 255, NULL, 0, 0, 0, 0, "t"), -1);
    assert_true(rtp_sdp_media(out, sizeof out, MEDIA_ENC_H264, 127, NULL, 0, 0, 0, 0, "rtsp://h/p?a=1&b=%20") > 0);
}

/* Other NAL units passed along with the parameter sets (many SEIs, a slice)
 * neither crowd them out nor end up in sprop-parameter-sets. */
static void test_sdp_keeps_only_parameter_sets(void **state)
{
    (void)state;
    uint8_t ps[400];
    size_t n = 0;
    for (int i = 0; i < 20; i++) {
        const uint8_t sei[] = { 0, 0, 1, 0x06, 0x05, (uint8_t)(0x10 + i), 0x80 };
        memcpy(ps + n, sei, sizeof sei);
        n += sizeof sei;
    }
    const uint8_t sets[] = { 0, 0, 1, 0x67, 0x64, 0x00, 0x33, 0xac, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb,
                             0, 0, 1, 0x65, 0x88, 0x84 };
    memcpy(ps + n, sets, sizeof sets);
    n += sizeof sets;
    char sps64[16], pps64[16], expect[256], out[512];
    b64(sets + 3, 5, sps64);
    b64(sets + 11, 4, pps64);
    snprintf(expect, sizeof expect,
             "m=video 0 RTP/AVP 96\r\n"
             "a=rtpmap:96 H264/90000\r\n"
             "a=fmtp:96 packetization-mode=1;profile-level-id=640033;sprop-parameter-sets=%s,%s\r\n",
             sps64, pps64);
    int len = rtp_sdp_media(out, sizeof out, MEDIA_ENC_H264, 96, ps, n, 0, 0, 0, NULL);
    assert_string_equal(out, expect);
    assert_int_equal(len, strlen(expect));

    /* H.265 with only an SPS known: just that one. */
    static const uint8_t sps[] = { 0, 0, 0, 1, 0x42, 0x01, 0x01, 0x21 };
    len = rtp_sdp_media(out, sizeof out, MEDIA_ENC_H265, 98, sps, sizeof sps, 0, 0, 0, NULL);
    assert_string_equal(out, "m=video 0 RTP/AVP 98\r\na=rtpmap:98 H265/90000\r\na=fmtp:98 sprop-sps=QgEBIQ==\r\n");
    assert_int_equal(len, strlen(out));
}

/* --- RTCP ---------------------------------------------------------------- */

static void test_rtcp_sender_report(void **state)
{
    (void)state;
    uint8_t out[128];
    /* 2024-01-01T00:00:00.5Z */
    uint64_t us = 1704067200ull * 1000000 + 500000;
    int n = rtp_rtcp_sender_report(out, sizeof out, 0x11223344, us, 0xa0b0c0d0, 1000, 123456, "cam@192.0.2.1");
    /* SR 28 + SDES header 4 + SSRC 4 + type/len 2 + 13 + null, padded: 20 */
    assert_int_equal(n, 28 + 4 + 20);
    assert_int_equal(out[0], 0x80);
    assert_int_equal(out[1], 200);
    assert_int_equal(be16(out + 2), 6);
    assert_int_equal(be32(out + 4), 0x11223344);
    assert_int_equal(be32(out + 8), 1704067200u + 2208988800u);
    assert_int_equal(be32(out + 12), 0x80000000u);
    assert_int_equal(be32(out + 16), 0xa0b0c0d0);
    assert_int_equal(be32(out + 20), 1000);
    assert_int_equal(be32(out + 24), 123456);
    const uint8_t *s = out + 28;
    assert_int_equal(s[0], 0x81);
    assert_int_equal(s[1], 202);
    assert_int_equal((be16(s + 2) + 1) * 4, n - 28);
    assert_int_equal(be32(s + 4), 0x11223344);
    assert_int_equal(s[8], 1);
    assert_int_equal(s[9], 13);
    assert_memory_equal(s + 10, "cam@192.0.2.1", 13);
    for (int i = 10 + 13; i < n - 28; i++)
        assert_int_equal(s[i], 0);
    assert_int_equal(n % 4, 0);

    /* A CNAME whose items end on a word boundary still gets its null octets. */
    n = rtp_rtcp_sender_report(out, sizeof out, 1, 0, 0, 0, 0, "ab");
    assert_int_equal(n, 28 + 4 + 12);
    assert_int_equal(out[28 + 4 + 4 + 4], 0);
    n = rtp_rtcp_sender_report(out, sizeof out, 1, 999999, 0, 0, 0, "");
    assert_int_equal(n, 28 + 4 + 8);
    assert_int_equal(be32(out + 8), 2208988800u);
    assert_int_equal(be32(out + 12), 0xffffef39u);             /* floor(0.999999 * 2^32) */

    for (size_t len = 0; len < 28 + 4 + 20; len++)
        assert_int_equal(rtp_rtcp_sender_report(out, len, 1, us, 0, 0, 0, "cam@192.0.2.1"), -1);
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    uint8_t large[600];
    assert_int_equal(rtp_rtcp_sender_report(large, sizeof large, 1, us, 0, 0, 0, big), -1);
}

static const struct CMUnitTest rtp_tests[] = {
    cmocka_unit_test(test_sender_init),
    cmocka_unit_test(test_h264_idr_is_stap_a_then_fu_a),
    cmocka_unit_test(test_h264_small_slice_is_single_nal_packet),
    cmocka_unit_test(test_sequence_numbers_wrap),
    cmocka_unit_test(test_h264_sizes_around_the_mtu),
    cmocka_unit_test(test_many_slices_are_aggregated_in_order),
    cmocka_unit_test(test_annexb_foreach),
    cmocka_unit_test(test_malformed_annexb_is_refused),
    cmocka_unit_test(test_reserved_nal_types_are_dropped),
    cmocka_unit_test(test_h265_temporal_id_zero_is_refused),
    cmocka_unit_test(test_random_annexb_never_misbehaves),
    cmocka_unit_test(test_oversized_picture_is_refused),
    cmocka_unit_test(test_au_refcount),
    cmocka_unit_test(test_h265_ap_and_fu),
    cmocka_unit_test(test_h265_ap_takes_lowest_tid),
    cmocka_unit_test(test_jpeg_420_from_libavcodec),
    cmocka_unit_test(test_jpeg_422_and_odd_size),
    cmocka_unit_test(test_jpeg_422_in_another_mcu_layout_is_refused),
    cmocka_unit_test(test_jpeg_restart_markers_use_types_64_65),
    cmocka_unit_test(test_jpeg_dimension_limits),
    cmocka_unit_test(test_jpeg_unrepresentable_pictures_are_refused),
    cmocka_unit_test(test_jpeg_with_optimised_huffman_tables_is_refused),
    cmocka_unit_test(test_jpeg_without_dht_uses_the_standard_tables),
    cmocka_unit_test(test_sdp_h264),
    cmocka_unit_test(test_sdp_h265),
    cmocka_unit_test(test_sdp_jpeg),
    cmocka_unit_test(test_sdp_refuses_what_it_cannot_write),
    cmocka_unit_test(test_sdp_keeps_only_parameter_sets),
    cmocka_unit_test(test_rtcp_sender_report),
};

UNIT_MAIN("rtp", rtp_tests)
