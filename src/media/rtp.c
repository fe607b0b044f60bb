/* RTP packetization of one encoded picture into one shared buffer (H.264 per
 * RFC 6184, H.265 per RFC 7798, JPEG per RFC 2435), the SDP media block that
 * describes it, and the RTCP sender report (RFC 3550). No sockets, no logging. */
#include "opennvt/rtp.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

/* The smallest MTU that still carries a JPEG first packet: RTP header, main
 * and restart headers, and two 16-bit quantisation tables. */
#define RTP_MIN_MTU 300
#define RTP_MAX_MTU 65535             /* interleaved length and rtp_packet_ref.len are 16-bit */
#define RTP_PT_DYNAMIC 96
#define RTP_PT_JPEG 26

#define H264_STAP_A 24
#define H264_FU_A 28
#define H265_AP 48
#define H265_FU 49

#define NAL_STACK 64                  /* NAL units per picture kept on the stack */

/* The largest encoded picture accepted. Far above any real picture (a 4K
 * intra frame is a few MB), low enough that packet counts and offsets can
 * never overflow their int / uint32_t fields. */
#define RTP_MAX_PICTURE (256u << 20)

/* --- shared picture buffers ---------------------------------------------- */

struct media_au *media_au_ref(struct media_au *au)
{
    if (au)
        atomic_fetch_add_explicit(&au->refs, 1, memory_order_relaxed);
    return au;
}

void media_au_unref(struct media_au *au)
{
    /* The struct, its packet table and its data are one allocation. */
    if (au && atomic_fetch_sub_explicit(&au->refs, 1, memory_order_acq_rel) == 1)
        free(au);
}

/* --- sender state -------------------------------------------------------- */

static int clamp_mtu(int mtu)
{
    if (mtu <= 0)
        return RTP_DEFAULT_MTU;
    if (mtu < RTP_MIN_MTU)
        return RTP_MIN_MTU;
    if (mtu > RTP_MAX_MTU)
        return RTP_MAX_MTU;
    return mtu;
}

void rtp_sender_init(struct rtp_sender *s, enum media_encoding enc, int mtu)
{
    uint8_t r[6];
    if (!s)
        return;
    memset(s, 0, sizeof *s);
    if (RAND_bytes(r, sizeof r) != 1) {
        /* RFC 3550 only asks that SSRC and sequence start are hard to guess
         * and unlikely to collide; without the CSPRNG, clock and pid still
         * differ between streams and restarts. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid() ^
                     (uint64_t)(uintptr_t)s;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        memcpy(r, &x, sizeof r);
    }
    s->ssrc = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
    s->next_seq = (uint16_t)(r[4] << 8 | r[5]);
    s->payload_type = enc == MEDIA_ENC_JPEG ? RTP_PT_JPEG : RTP_PT_DYNAMIC;
    s->mtu = clamp_mtu(mtu);
}

/* --- packet writer ------------------------------------------------------- */

/* Every layout runs twice through the same code: once with data == NULL to
 * size the buffer, once to fill it. That keeps it to one allocation per
 * picture and the two passes cannot disagree. */
struct pkt_writer {
    uint8_t *data;                    /* NULL while sizing */
    struct rtp_packet_ref *packets;
    size_t pos;
    size_t start;                     /* offset of the packet being built */
    int n;
    uint64_t payload_bytes;
    uint32_t ssrc, ts;
    uint16_t seq;
    uint8_t pt;
};

static void put_be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static void pw_begin(struct pkt_writer *w)
{
    w->start = w->pos;
    w->pos += RTP_INTERLEAVED_LEN + RTP_HEADER_LEN;
}

static void pw_byte(struct pkt_writer *w, uint8_t b)
{
    if (w->data)
        w->data[w->pos] = b;
    w->pos++;
}

static void pw_be16(struct pkt_writer *w, uint32_t v)
{
    pw_byte(w, (uint8_t)(v >> 8));
    pw_byte(w, (uint8_t)v);
}

static void pw_bytes(struct pkt_writer *w, const uint8_t *p, size_t n)
{
    if (w->data && n)
        memcpy(w->data + w->pos, p, n);
    w->pos += n;
}

static void pw_end(struct pkt_writer *w)
{
    size_t len = w->pos - w->start - RTP_INTERLEAVED_LEN;
    if (w->data) {
        uint8_t *p = w->data + w->start;
        p[0] = '$';
        p[1] = 0;
        put_be16(p + 2, (uint32_t)len);
        p[4] = 0x80;                                   /* V=2, no padding, no extension, no CSRC */
        p[5] = w->pt & 0x7f;                           /* marker set on the last packet afterwards */
        put_be16(p + 6, (uint16_t)(w->seq + w->n));
        put_be32(p + 8, w->ts);
        put_be32(p + 12, w->ssrc);
        w->packets[w->n].off = (uint32_t)w->start;
        w->packets[w->n].len = (uint16_t)len;
    }
    w->n++;
    w->payload_bytes += len - RTP_HEADER_LEN;
}

/* --- Annex B ------------------------------------------------------------- */

/* First byte of the next 00 00 01 at or after p, or end. */
static const uint8_t *find_start_code(const uint8_t *p, const uint8_t *end)
{
    while (end - p >= 3) {
        if (p[2] > 1)
            p += 3;
        else if (p[2] == 0)
            p++;
        else if (p[0] == 0 && p[1] == 0)
            return p;
        else
            p += 3;
    }
    return end;
}

int rtp_annexb_foreach(const uint8_t *data, size_t len, void (*fn)(void *arg, const uint8_t *nal, size_t n),
                       void *arg)
{
    if (!data)
        return 0;
    const uint8_t *end = data + len;
    const uint8_t *sc = find_start_code(data, end);
    int count = 0;
    while (sc < end) {
        const uint8_t *nal = sc + 3;
        const uint8_t *next = find_start_code(nal, end);
        const uint8_t *last = next;
        /* Trailing zeros belong to a 4-byte start code or trailing_zero_8bits:
         * a NAL unit itself always ends in a non-zero byte. */
        while (last > nal && last[-1] == 0)
            last--;
        if (last > nal) {
            if (fn)
                fn(arg, nal, (size_t)(last - nal));
            count++;
        }
        sc = next;
    }
    return count;
}

struct nal_span {
    const uint8_t *p;
    size_t n;
};

struct nal_list {
    struct nal_span *v;
    size_t n, cap;
    int hevc;
    int failed;                       /* no memory, or a malformed NAL unit */
    struct nal_span stack[NAL_STACK];
};

static int nal_type(int hevc, const uint8_t *nal)
{
    return hevc ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
}

/* NAL unit types a receiver would read as a payload structure (STAP, FU,
 * AP, PACI...) rather than as a NAL unit: unspecified in H.264 / H.265, so
 * decoders ignore them, and sent as a single NAL unit packet they would be
 * misparsed. */
static int nal_type_unsendable(int hevc, int t)
{
    return hevc ? t >= 48 : (t == 0 || t >= 24);
}

static void nal_list_add(void *arg, const uint8_t *nal, size_t n)
{
    struct nal_list *l = arg;
    if (l->failed)
        return;
    /* H.265: a two-byte header whose nuh_temporal_id_plus1 is never 0. */
    if (l->hevc && (n < 2 || (nal[1] & 7) == 0)) {
        l->failed = 1;
        return;
    }
    /* Access unit delimiters say nothing the RTP timestamp and marker bit do
     * not already say. Filler data stays: a constant bit rate stream is
     * constant on the wire, as network planning expects. */
    int t = nal_type(l->hevc, nal);
    if (l->hevc ? t == 35 : t == 9)
        return;
    if (nal_type_unsendable(l->hevc, t))
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap * 2;
        struct nal_span *v = l->v == l->stack ? malloc(cap * sizeof *v) : realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = 1;
            return;
        }
        if (l->v == l->stack)
            memcpy(v, l->stack, sizeof l->stack);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].p = nal;
    l->v[l->n].n = n;
    l->n++;
}

static void h26x_single(struct pkt_writer *w, const struct nal_span *a)
{
    pw_begin(w);
    pw_bytes(w, a->p, a->n);
    pw_end(w);
}

/* STAP-A (RFC 6184 5.7.1) or AP (RFC 7798 4.4.2), without DON. */
static void h26x_aggregate(struct pkt_writer *w, int hevc, const struct nal_span *v, size_t count)
{
    pw_begin(w);
    if (hevc) {
        int f = 0, layer = 63, tid = 7;
        for (size_t i = 0; i < count; i++) {
            int l = (v[i].p[0] & 1) << 5 | v[i].p[1] >> 3;
            int t = v[i].p[1] & 7;
            f |= v[i].p[0] & 0x80;
            layer = l < layer ? l : layer;
            tid = t < tid ? t : tid;
        }
        pw_byte(w, (uint8_t)(f | H265_AP << 1 | layer >> 5));
        pw_byte(w, (uint8_t)((layer & 0x1f) << 3 | tid));
    } else {
        int f = 0, nri = 0;
        for (size_t i = 0; i < count; i++) {
            f |= v[i].p[0] & 0x80;
            nri = (v[i].p[0] & 0x60) > nri ? v[i].p[0] & 0x60 : nri;
        }
        pw_byte(w, (uint8_t)(f | nri | H264_STAP_A));
    }
    for (size_t i = 0; i < count; i++) {
        pw_be16(w, (uint32_t)v[i].n);
        pw_bytes(w, v[i].p, v[i].n);
    }
    pw_end(w);
}

/* FU-A (RFC 6184 5.8) or FU (RFC 7798 4.4.3): the NAL header is carried in
 * the FU headers, the rest is cut into fragments of at most max_payload. */
static void h26x_fragment(struct pkt_writer *w, int hevc, const struct nal_span *a, size_t max_payload)
{
    size_t hdr = hevc ? 2 : 1;
    size_t fu_hdr = hdr + 1;
    size_t chunk = max_payload - fu_hdr;
    int type = nal_type(hevc, a->p);
    const uint8_t *p = a->p + hdr;
    size_t left = a->n - hdr;
    int first = 1;
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        uint8_t fu = (uint8_t)((first ? 0x80 : 0) | (n == left ? 0x40 : 0) | type);
        pw_begin(w);
        if (hevc) {
            pw_byte(w, (uint8_t)((a->p[0] & 0x81) | H265_FU << 1));
            pw_byte(w, a->p[1]);
        } else {
            pw_byte(w, (uint8_t)((a->p[0] & 0xe0) | H264_FU_A));
        }
        pw_byte(w, fu);
        pw_bytes(w, p, n);
        pw_end(w);
        p += n;
        left -= n;
        first = 0;
    }
}

/* Small consecutive NAL units (parameter sets, SEI, small slices) share one
 * aggregation packet; a unit too large for one packet is fragmented. */
static void h26x_layout(struct pkt_writer *w, int hevc, const struct nal_list *l, size_t max_payload)
{
    size_t agg_hdr = hevc ? 2 : 1;
    size_t i = 0;
    while (i < l->n) {
        const struct nal_span *a = &l->v[i];
        if (a->n > max_payload) {
            h26x_fragment(w, hevc, a, max_payload);
            i++;
            continue;
        }
        size_t j = i, size = agg_hdr;
        while (j < l->n && size + 2 + l->v[j].n <= max_payload) {
            size += 2 + l->v[j].n;
            j++;
        }
        if (j - i <= 1) {
            h26x_single(w, a);
            i++;
        } else {
            h26x_aggregate(w, hevc, a, j - i);
            i = j;
        }
    }
}

/* --- JPEG (RFC 2435) ----------------------------------------------------- */

/* The Huffman tables of ITU-T T.81 Annex K.3. RFC 2435 carries no Huffman
 * tables: receivers rebuild these, so a picture coded with any other tables
 * (e.g. optimised per image) would decode as noise and is refused. */
static const uint8_t huff_dc_lum_bits[16] = { 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
static const uint8_t huff_dc_chr_bits[16] = { 0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 };
static const uint8_t huff_dc_vals[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
static const uint8_t huff_ac_lum_bits[16] = { 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d };
static const uint8_t huff_ac_lum_vals[162] = {
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
};
static const uint8_t huff_ac_chr_bits[16] = { 0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77 };
static const uint8_t huff_ac_chr_vals[162] = {
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
};

#define JPEG_MAX_DIM 2040             /* width/8 and height/8 travel in one byte */
#define JPEG_MAX_SCAN (1u << 24)      /* the fragment offset is 24 bits */
#define JPEG_MAIN_HDR 8
#define JPEG_RESTART_HDR 4
#define JPEG_QT_HDR 4
#define JPEG_Q_INBAND 255             /* tables in-band, may change with every frame */

struct jpeg_info {
    int width, height;
    uint8_t type;                     /* 0 (4:2:2) or 1 (4:2:0), +64 with restart markers */
    uint16_t restart_interval;
    const uint8_t *qt[2];             /* luma, chroma, zigzag order as in DQT */
    size_t qt_len[2];                 /* 64 or 128 */
    uint8_t qt_precision;             /* bit i: table i has 16-bit entries */
    const uint8_t *scan;              /* entropy-coded data after SOS, before EOI */
    size_t scan_len;
};

static int huffman_is_standard(int tc, int th, const uint8_t *bits, const uint8_t *vals, size_t nvals)
{
    const uint8_t *sb, *sv;
    size_t sn;
    if (tc == 0) {
        sb = th == 0 ? huff_dc_lum_bits : huff_dc_chr_bits;
        sv = huff_dc_vals;
        sn = sizeof huff_dc_vals;
    } else {
        sb = th == 0 ? huff_ac_lum_bits : huff_ac_chr_bits;
        sv = th == 0 ? huff_ac_lum_vals : huff_ac_chr_vals;
        sn = 162;
    }
    return nvals == sn && memcmp(bits, sb, 16) == 0 && memcmp(vals, sv, sn) == 0;
}

static int jpeg_dht(const uint8_t *s, size_t sl)
{
    size_t k = 0;
    while (k < sl) {
        if (sl - k < 17)
            return -1;
        int tc = s[k] >> 4, th = s[k] & 15;
        if (tc > 1 || th > 1)
            return -1;
        size_t nvals = 0;
        for (int i = 0; i < 16; i++)
            nvals += s[k + 1 + i];
        if (sl - k - 17 < nvals)
            return -1;
        if (!huffman_is_standard(tc, th, s + k + 1, s + k + 17, nvals))
            return -1;
        k += 17 + nvals;
    }
    return 0;
}

/* Walks the JFIF markers up to the scan. Accepts only what types 0/1 (and
 * 64/65) can describe: baseline, 8-bit, three components Y Cb Cr with Y
 * sampled 2x1 or 2x2 and chroma 1x1, one interleaved scan, chroma sharing
 * one quantisation table and the chroma Huffman tables. */
static int jpeg_parse(const uint8_t *d, size_t len, struct jpeg_info *ji)
{
    const uint8_t *dqt[4] = { NULL };
    uint8_t dqt_16[4] = { 0 };
    uint8_t comp_id[3] = { 0 }, comp_tq[3] = { 0 };
    int have_sof = 0;

    memset(ji, 0, sizeof *ji);
    if (len < 4 || d[0] != 0xff || d[1] != 0xd8)
        return -1;
    size_t i = 2;
    for (;;) {
        if (i >= len || d[i] != 0xff)
            return -1;
        while (i < len && d[i] == 0xff)       /* fill bytes */
            i++;
        if (i >= len)
            return -1;
        uint8_t m = d[i++];
        if (m == 0x01)                        /* TEM: no length */
            continue;
        if (m == 0x00 || m == 0xd8 || m == 0xd9 || (m >= 0xd0 && m <= 0xd7))
            return -1;                        /* no stuffing, second SOI, EOI or RSTn before the scan */
        if (len - i < 2)
            return -1;
        size_t seglen = get_be16(d + i);
        if (seglen < 2 || seglen > len - i)
            return -1;
        const uint8_t *s = d + i + 2;
        size_t sl = seglen - 2;
        i += seglen;

        switch (m) {
        case 0xc0: {                          /* SOF0, baseline */
            if (have_sof || sl != 6 + 3 * 3 || s[0] != 8 || s[5] != 3)
                return -1;
            ji->height = (int)get_be16(s + 1);
            ji->width = (int)get_be16(s + 3);
            if (ji->width == 0 || ji->height == 0 || ji->width > JPEG_MAX_DIM || ji->height > JPEG_MAX_DIM)
                return -1;
            for (int c = 0; c < 3; c++) {
                comp_id[c] = s[6 + 3 * c];
                if (s[8 + 3 * c] > 3)
                    return -1;
                comp_tq[c] = s[8 + 3 * c];
            }
            uint8_t y = s[7], cb = s[10], cr = s[13];
            if (cb != 0x11 || cr != 0x11 || comp_tq[1] != comp_tq[2])
                return -1;
            if (y == 0x21)
                ji->type = 0;
            else if (y == 0x22)
                ji->type = 1;
            else
                return -1;
            have_sof = 1;
            break;
        }
        case 0xc4:                            /* DHT */
            if (jpeg_dht(s, sl) != 0)
                return -1;
            break;
        case 0xc8:                            /* JPG extension */
        case 0xcc:                            /* DAC: arithmetic coding */
            return -1;
        case 0xdb: {                          /* DQT */
            size_t k = 0;
            while (k < sl) {
                int pq = s[k] >> 4, tq = s[k] & 15;
                size_t n = pq ? 128 : 64;
                if (pq > 1 || tq > 3 || sl - k - 1 < n)
                    return -1;
                dqt[tq] = s + k + 1;
                dqt_16[tq] = (uint8_t)pq;
                k += 1 + n;
            }
            break;
        }
        case 0xdd:                            /* DRI */
            if (sl != 2)
                return -1;
            ji->restart_interval = (uint16_t)get_be16(s);
            break;
        case 0xda: {                          /* SOS */
            if (!have_sof || sl != 1 + 2 * 3 + 3 || s[0] != 3)
                return -1;
            for (int c = 0; c < 3; c++) {
                if (s[1 + 2 * c] != comp_id[c] || s[2 + 2 * c] != (c == 0 ? 0x00 : 0x11))
                    return -1;
            }
            if (s[7] != 0 || s[8] != 63 || s[9] != 0)
                return -1;
            for (int t = 0; t < 2; t++) {
                const uint8_t *q = dqt[comp_tq[t]];
                if (!q)
                    return -1;
                ji->qt[t] = q;
                ji->qt_len[t] = dqt_16[comp_tq[t]] ? 128 : 64;
                ji->qt_precision |= (uint8_t)(dqt_16[comp_tq[t]] << t);
            }
            if (ji->restart_interval)
                ji->type += 64;
            /* Inside entropy-coded data 0xFF is followed only by a stuffed 0x00
             * or RSTn, so the first FF D9 is the EOI. A missing EOI is
             * tolerated: the scan runs to the end of the buffer. */
            const uint8_t *scan = d + i, *end = d + len, *p = scan;
            for (;;) {
                p = memchr(p, 0xff, (size_t)(end - p));
                if (!p || end - p < 2) {
                    p = end;
                    break;
                }
                if (p[1] == 0xd9)
                    break;
                p++;
            }
            ji->scan = scan;
            ji->scan_len = (size_t)(p - scan);
            if (ji->scan_len == 0 || ji->scan_len >= JPEG_MAX_SCAN)
                return -1;
            return 0;
        }
        default:
            if (m >= 0xc1 && m <= 0xcf)       /* any other SOFn: not baseline */
                return -1;
            break;                            /* APPn, COM, ...: not needed */
        }
    }
}

static void jpeg_layout(struct pkt_writer *w, const struct jpeg_info *ji, size_t max_payload)
{
    size_t hdr = JPEG_MAIN_HDR + (ji->restart_interval ? JPEG_RESTART_HDR : 0);
    size_t qlen = ji->qt_len[0] + ji->qt_len[1];
    size_t off = 0;
    while (off < ji->scan_len) {
        size_t room = max_payload - hdr - (off == 0 ? JPEG_QT_HDR + qlen : 0);
        size_t n = ji->scan_len - off < room ? ji->scan_len - off : room;
        pw_begin(w);
        pw_byte(w, 0);                                     /* type-specific: progressive frame */
        pw_byte(w, (uint8_t)(off >> 16));
        pw_be16(w, (uint32_t)off);
        pw_byte(w, ji->type);
        pw_byte(w, JPEG_Q_INBAND);
        pw_byte(w, (uint8_t)((ji->width + 7) / 8));
        pw_byte(w, (uint8_t)((ji->height + 7) / 8));
        if (ji->restart_interval) {
            /* Fragments are not cut at restart intervals, so F = L = 1 and
             * the count is 0x3FFF (RFC 2435 3.1.7). */
            pw_be16(w, ji->restart_interval);
            pw_be16(w, 0xffff);
        }
        if (off == 0) {
            pw_byte(w, 0);
            pw_byte(w, ji->qt_precision);
            pw_be16(w, (uint32_t)qlen);
            pw_bytes(w, ji->qt[0], ji->qt_len[0]);
            pw_bytes(w, ji->qt[1], ji->qt_len[1]);
        }
        pw_bytes(w, ji->scan + off, n);
        pw_end(w);
        off += n;
    }
}

/* --- rtp_packetize ------------------------------------------------------- */

struct layout_input {
    enum media_encoding enc;
    const struct nal_list *nals;
    const struct jpeg_info *jpeg;
    size_t max_payload;
};

static void run_layout(struct pkt_writer *w, const struct layout_input *in)
{
    if (in->enc == MEDIA_ENC_JPEG)
        jpeg_layout(w, in->jpeg, in->max_payload);
    else
        h26x_layout(w, in->enc == MEDIA_ENC_H265, in->nals, in->max_payload);
}

struct media_au *rtp_packetize(struct rtp_sender *s, enum media_encoding enc, const uint8_t *data, size_t len,
                               uint32_t rtp_ts, int keyframe)
{
    if (!s || !data || len == 0 || len > RTP_MAX_PICTURE)
        return NULL;
    if (enc != MEDIA_ENC_H264 && enc != MEDIA_ENC_H265 && enc != MEDIA_ENC_JPEG)
        return NULL;

    struct layout_input in = { .enc = enc, .max_payload = (size_t)clamp_mtu(s->mtu) - RTP_HEADER_LEN };
    struct nal_list nals;
    struct jpeg_info ji;
    struct media_au *au = NULL;

    nals.v = nals.stack;
    nals.n = 0;
    nals.cap = NAL_STACK;
    nals.hevc = enc == MEDIA_ENC_H265;
    nals.failed = 0;

    if (enc == MEDIA_ENC_JPEG) {
        if (jpeg_parse(data, len, &ji) != 0)
            return NULL;
        in.jpeg = &ji;
    } else {
        rtp_annexb_foreach(data, len, nal_list_add, &nals);
        if (nals.failed || nals.n == 0)
            goto out;
        in.nals = &nals;
    }

    struct pkt_writer w = { .ssrc = s->ssrc, .ts = rtp_ts, .seq = s->next_seq, .pt = s->payload_type };
    run_layout(&w, &in);
    if (w.n == 0 || w.pos > UINT32_MAX || w.payload_bytes > UINT32_MAX)
        goto out;

    /* One allocation: the struct, the packet table, the packets. */
    size_t head = (sizeof *au + alignof(struct rtp_packet_ref) - 1) & ~(alignof(struct rtp_packet_ref) - 1);
    size_t table = (size_t)w.n * sizeof(struct rtp_packet_ref);
    if (w.pos > SIZE_MAX - head - table)
        goto out;
    au = malloc(head + table + w.pos);
    if (!au)
        goto out;
    int n = w.n;
    size_t total = w.pos;
    w.packets = (struct rtp_packet_ref *)((uint8_t *)au + head);
    w.data = (uint8_t *)au + head + table;
    w.pos = 0;
    w.n = 0;
    w.payload_bytes = 0;
    run_layout(&w, &in);
    if (w.n != n || w.pos != total) {         /* cannot happen: same input, same code */
        free(au);
        au = NULL;
        goto out;
    }
    w.data[w.packets[n - 1].off + RTP_INTERLEAVED_LEN + 1] |= 0x80;

    atomic_init(&au->refs, 1);
    au->rtp_ts = rtp_ts;
    au->capture_us = 0;
    au->keyframe = enc == MEDIA_ENC_JPEG ? 1 : (keyframe != 0);
    au->first_seq = s->next_seq;
    au->n_packets = n;
    au->packets = w.packets;
    au->data = w.data;
    au->data_len = total;
    au->payload_bytes = (uint32_t)w.payload_bytes;
    s->next_seq = (uint16_t)(s->next_seq + n);
out:
    if (nals.v != nals.stack)
        free(nals.v);
    return au;
}

/* --- SDP ----------------------------------------------------------------- */

struct sdp_buf {
    char *p;
    size_t cap, len;
    int err;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sdp_buf *b, const char *fmt, ...)
{
    if (b->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->err = 1;
        return;
    }
    b->len += (size_t)n;
}

static void sb_base64(struct sdp_buf *b, const uint8_t *d, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (b->err)
        return;
    size_t need = (n + 2) / 3 * 4;
    if (need >= b->cap - b->len) {
        b->err = 1;
        return;
    }
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? alphabet[v & 63] : '=';
    }
    *o = '\0';
    b->len += need;
}

#define SDP_MAX_PARAM_SETS 16

struct param_sets {
    struct nal_span v[SDP_MAX_PARAM_SETS];
    int n;
    int hevc;
};

static void param_set_add(void *arg, const uint8_t *nal, size_t n)
{
    struct param_sets *ps = arg;
    if (ps->n >= SDP_MAX_PARAM_SETS || (ps->hevc && n < 2))
        return;
    /* Only parameter sets take a slot: SEI or slices passed along with them
     * must not crowd them out. */
    int t = nal_type(ps->hevc, nal);
    if (ps->hevc ? (t < 32 || t > 34) : (t != 7 && t != 8))
        return;
    ps->v[ps->n].p = nal;
    ps->v[ps->n].n = n;
    ps->n++;
}

/* Comma-separated base64 of every parameter set of one NAL type; returns how
 * many were written. */
static int sb_sprop(struct sdp_buf *b, const struct param_sets *ps, int type, int *first)
{
    int count = 0;
    for (int i = 0; i < ps->n; i++) {
        if (nal_type(ps->hevc, ps->v[i].p) != type)
            continue;
        if (!*first)
            sb_printf(b, ",");
        sb_base64(b, ps->v[i].p, ps->v[i].n);
        *first = 0;
        count++;
    }
    return count;
}

static int sps_count(const struct param_sets *ps, int type)
{
    int count = 0;
    for (int i = 0; i < ps->n; i++)
        count += nal_type(ps->hevc, ps->v[i].p) == type;
    return count;
}

static void sdp_h264_fmtp(struct sdp_buf *b, uint8_t pt, const struct param_sets *ps)
{
    sb_printf(b, "a=fmtp:%u packetization-mode=1", (unsigned)pt);
    for (int i = 0; i < ps->n; i++) {
        if (nal_type(0, ps->v[i].p) == 7 && ps->v[i].n >= 4) {
            sb_printf(b, ";profile-level-id=%02x%02x%02x", ps->v[i].p[1], ps->v[i].p[2], ps->v[i].p[3]);
            break;
        }
    }
    if (sps_count(ps, 7) > 0 && sps_count(ps, 8) > 0) {
        int first = 1;
        sb_printf(b, ";sprop-parameter-sets=");
        sb_sprop(b, ps, 7, &first);
        sb_sprop(b, ps, 8, &first);
    }
    sb_printf(b, "\r\n");
}

static void sdp_h265_fmtp(struct sdp_buf *b, uint8_t pt, const struct param_sets *ps)
{
    static const struct { int type; const char *name; } sets[] = {
        { 32, "sprop-vps" }, { 33, "sprop-sps" }, { 34, "sprop-pps" },
    };
    int any = 0;
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        if (sps_count(ps, sets[k].type) == 0)
            continue;
        int first = 1;
        if (!any)
            sb_printf(b, "a=fmtp:%u ", (unsigned)pt);
        sb_printf(b, "%s%s=", any ? ";" : "", sets[k].name);
        sb_sprop(b, ps, sets[k].type, &first);
        any = 1;
    }
    if (any)
        sb_printf(b, "\r\n");
}

/* An a=control value goes into the SDP verbatim: a CR, LF or other control
 * character would end the line and let the value add lines of its own. */
static int sdp_value_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int rtp_sdp_media(char *out, size_t outlen, enum media_encoding enc, uint8_t payload_type,
                  const uint8_t *param_sets, size_t param_len, int width, int height, int framerate,
                  const char *control)
{
    if (!out || outlen == 0)
        return -1;
    out[0] = '\0';
    if (enc != MEDIA_ENC_H264 && enc != MEDIA_ENC_H265 && enc != MEDIA_ENC_JPEG)
        return -1;
    if (payload_type > 127 || (control && !sdp_value_ok(control)))
        return -1;                                     /* RTP payload types are 7 bits */
    struct sdp_buf b = { out, outlen, 0, 0 };
    struct param_sets ps = { .n = 0, .hevc = enc == MEDIA_ENC_H265 };
    if (param_sets && param_len > 0 && enc != MEDIA_ENC_JPEG)
        rtp_annexb_foreach(param_sets, param_len, param_set_add, &ps);

    sb_printf(&b, "m=video 0 RTP/AVP %u\r\n", (unsigned)payload_type);
    switch (enc) {
    case MEDIA_ENC_H264:
        sb_printf(&b, "a=rtpmap:%u H264/%d\r\n", (unsigned)payload_type, RTP_CLOCK_VIDEO);
        sdp_h264_fmtp(&b, payload_type, &ps);
        break;
    case MEDIA_ENC_H265:
        sb_printf(&b, "a=rtpmap:%u H265/%d\r\n", (unsigned)payload_type, RTP_CLOCK_VIDEO);
        sdp_h265_fmtp(&b, payload_type, &ps);
        break;
    default:
        sb_printf(&b, "a=rtpmap:%u JPEG/%d\r\n", (unsigned)payload_type, RTP_CLOCK_VIDEO);
        break;
    }
    if (framerate > 0)
        sb_printf(&b, "a=framerate:%d\r\n", framerate);
    if (enc == MEDIA_ENC_JPEG && width > 0 && height > 0)
        sb_printf(&b, "a=x-dimensions:%d,%d\r\n", width, height);
    if (control && *control)
        sb_printf(&b, "a=control:%s\r\n", control);
    if (b.err || b.len > INT32_MAX) {
        out[0] = '\0';
        return -1;
    }
    return (int)b.len;
}

/* --- RTCP ---------------------------------------------------------------- */

#define RTCP_SR 200
#define RTCP_SDES 202
#define RTCP_SDES_CNAME 1
#define RTCP_SR_LEN 28
#define NTP_UNIX_OFFSET 2208988800u   /* seconds from 1900 to 1970 */

int rtp_rtcp_sender_report(uint8_t *out, size_t outlen, uint32_t ssrc, uint64_t ntp_us, uint32_t rtp_ts,
                           uint32_t packets, uint32_t octets, const char *cname)
{
    size_t cl = cname ? strlen(cname) : 0;
    if (cl > 255)
        return -1;
    /* SSRC, one CNAME item, then at least one null octet up to a 32-bit boundary. */
    size_t chunk = (4 + 2 + cl + 1 + 3) & ~(size_t)3;
    size_t total = RTCP_SR_LEN + 4 + chunk;
    if (!out || outlen < total)
        return -1;

    uint64_t sec = ntp_us / 1000000u;
    uint64_t frac = ((ntp_us % 1000000u) << 32) / 1000000u;
    out[0] = 0x80;                                 /* V=2, P=0, RC=0 */
    out[1] = RTCP_SR;
    put_be16(out + 2, RTCP_SR_LEN / 4 - 1);
    put_be32(out + 4, ssrc);
    put_be32(out + 8, (uint32_t)(sec + NTP_UNIX_OFFSET));
    put_be32(out + 12, (uint32_t)frac);
    put_be32(out + 16, rtp_ts);
    put_be32(out + 20, packets);
    put_be32(out + 24, octets);

    uint8_t *s = out + RTCP_SR_LEN;
    s[0] = 0x81;                                   /* V=2, P=0, SC=1 */
    s[1] = RTCP_SDES;
    put_be16(s + 2, (uint32_t)((4 + chunk) / 4 - 1));
    put_be32(s + 4, ssrc);
    s[8] = RTCP_SDES_CNAME;
    s[9] = (uint8_t)cl;
    if (cl)
        memcpy(s + 10, cname, cl);
    memset(s + 10 + cl, 0, chunk - 6 - cl);
    return (int)total;
}
