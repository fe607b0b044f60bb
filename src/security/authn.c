/* Authentication of one request: HTTP Digest (RFC 7616, SHA-256/MD5, qop=auth,
 * self-validating HMAC'd server nonces, a nonce-count anti-replay window per
 * nonce), HTTP Basic (TLS only), WS-UsernameToken (Created window, replay
 * cache) and the per-(peer, user) failure monitor that logs and blocks
 * password guessing. Every table is a fixed-size hash: O(1) under the lock. */
#include "opennvt/authn.h"
#include "opennvt/log.h"
#include "opennvt/users.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define AUTHN_HEADER_MAX 4096          /* Authorization value, bytes */
#define AUTHN_REALM_MAX 128
#define AUTHN_METHOD_MAX 32
#define AUTHN_DEFAULT_REALM "OpenNVT"
#define AUTHN_DEFAULT_LIFETIME 300
#define AUTHN_DEFAULT_WINDOW 300

/* Server nonce: issue time (8 bytes, big endian) | issue serial (8, per
 * process) | HMAC-SHA256 of the first 16 bytes under the per-process random
 * key, truncated to 16 bytes; sent as 64 lowercase hex digits. The MAC makes
 * it unforgeable and unpredictable; the serial makes it unique and orders
 * nonces for the count table's eviction. */
#define NONCE_ID_LEN 16
#define NONCE_MAC_LEN 16
#define NONCE_RAW_LEN (NONCE_ID_LEN + NONCE_MAC_LEN)
#define NONCE_HEX_LEN (2 * NONCE_RAW_LEN)
#define NONCE_KEY_LEN 32
#define OPAQUE_RAW_LEN 16

/* Every table below is a fixed array of slots with a chained hash index
 * (head per bucket, next per slot, NIL ends a chain): O(1) expected lookup
 * under the lock, no allocation per request. */
#define NIL (-1)

/* Digest nonce counts: one slot per nonce in use, reused in insertion order
 * (a ring). NC_WINDOW counts below the highest are remembered so that
 * requests sharing a nonce may arrive out of order. */
#define NC_TABLE_SIZE 4096
#define NC_BUCKETS (2 * NC_TABLE_SIZE)       /* power of two */
#define NC_WINDOW 64                         /* bits of nc_entry.below */

/* UsernameToken replay cache; evicts the oldest Created first. */
#define TOKEN_CACHE_SIZE 65536
#define TOKEN_BUCKETS (2 * TOKEN_CACHE_SIZE) /* power of two */
#define TOKEN_EXPIRE_BATCH 8                 /* expired entries dropped per insertion, at most */
#define TOKEN_NONCE_MAX 64             /* decoded UsernameToken Nonce, bytes */
#define TOKEN_CREATED_MAX 64
#define TOKEN_PASSWORD_MAX 256         /* as received (text or base64 digest) */
#define TOKEN_USERNAME_MAX 256

#define FAIL_TABLE_SIZE 1024
#define FAIL_BUCKETS (2 * FAIL_TABLE_SIZE)   /* power of two */
#define FAIL_PER_PEER_MAX 32
#define KEY_HASH_LEN 16                /* truncated salted SHA-256 of peer / user names, token keys */
#define HASH_SALT_LEN 16               /* per instance: bucket positions are not predictable */

#define DEFAULT_MONITOR_PERIOD 60
#define DEFAULT_MAX_FAILURES 5

/* Verifying an unknown user still costs one digest, with this password. */
#define DUMMY_PASSWORD "opennvt-no-such-user-placeholder"

_Static_assert(NC_WINDOW == 64, "nc_entry.below is a uint64_t");
_Static_assert((NC_BUCKETS & (NC_BUCKETS - 1)) == 0, "NC_BUCKETS: power of two");
_Static_assert((TOKEN_BUCKETS & (TOKEN_BUCKETS - 1)) == 0, "TOKEN_BUCKETS: power of two");
_Static_assert((FAIL_BUCKETS & (FAIL_BUCKETS - 1)) == 0, "FAIL_BUCKETS: power of two");

/* Counts seen for one nonce: the highest accepted (top) and, in bit k of
 * below, whether top - 1 - k was accepted. serial 0: free slot (serials
 * start at 1). */
struct nc_entry {
    uint64_t serial;
    uint64_t below;
    uint32_t top;
};

struct token_entry {
    unsigned char key[KEY_HASH_LEN];   /* SHA-256(salt | nonce | "|" | created) */
    int64_t created_ms;                /* ms since the epoch */
    int64_t seen;                      /* s, device clock */
};

struct fail_entry {
    unsigned char peer[KEY_HASH_LEN];
    unsigned char user[KEY_HASH_LEN];
    int used;
    int count;
    int blocked;
    int64_t window_start;
    int64_t block_start;
    uint64_t seq;                      /* last activity, for eviction */
};

struct authn {
    pthread_mutex_t lock;
    struct users *users;
    char realm[AUTHN_REALM_MAX + 1];
    int nonce_lifetime_s;
    int created_window_s;
    authn_alarm_fn alarm_fn;   /* failure threshold crossed (events) */
    void *alarm_arg;
    int allow_basic;
    _Atomic unsigned digest_algorithms;   /* AUTHN_ALG_* offered and accepted */
    time_t (*now)(void);
    unsigned char nonce_key[NONCE_KEY_LEN];
    EVP_MAC_CTX *nonce_mac_template;   /* HMAC-SHA256 keyed with nonce_key */
    unsigned char hash_salt[HASH_SALT_LEN];
    char opaque[2 * OPAQUE_RAW_LEN + 1];
    struct authn_failure_policy policy;
    uint64_t seq;
    uint64_t nonce_serial;             /* last issued */

    /* Nonces with a serial at or below this that are not in the table may
     * have been evicted: they are answered stale rather than trusted. */
    uint64_t nc_floor;
    int32_t nc_ring;                   /* next slot to (re)use: the oldest insertion */
    int32_t nc_head[NC_BUCKETS];
    int32_t nc_next[NC_TABLE_SIZE];
    struct nc_entry nc[NC_TABLE_SIZE];

    /* UsernameTokens created at or before this millisecond that are not in
     * the cache may have been evicted: refused. */
    int64_t token_floor_ms;
    /* token_heap[0 .. token_count - 1]: the slots in use as a binary min-heap
     * on created_ms; token_heap[token_count ..]: the free slots. */
    uint32_t token_count;
    uint32_t token_heap[TOKEN_CACHE_SIZE];
    int32_t token_head[TOKEN_BUCKETS];
    int32_t token_next[TOKEN_CACHE_SIZE];
    struct token_entry tokens[TOKEN_CACHE_SIZE];

    /* Failure monitor: indexed by (peer, user) and by peer (for the per-peer
     * cap); fail_free[0 .. fail_nfree - 1] are the unused slots. */
    int32_t fail_head[FAIL_BUCKETS];
    int32_t fail_next[FAIL_TABLE_SIZE];
    int32_t fail_peer_head[FAIL_BUCKETS];
    int32_t fail_peer_next[FAIL_TABLE_SIZE];
    int32_t fail_free[FAIL_TABLE_SIZE];
    int32_t fail_nfree;
    struct fail_entry fails[FAIL_TABLE_SIZE];
};

/* Hashed (peer, user) pair, computed outside the lock. */
struct pair_key {
    unsigned char peer[KEY_HASH_LEN];
    unsigned char user[KEY_HASH_LEN];
};

const char *authn_strerror(int err)
{
    switch (err) {
    case AUTHN_OK: return "ok";
    case AUTHN_E_DENIED: return "wrong user name or password";
    case AUTHN_E_STALE: return "stale nonce";
    case AUTHN_E_REPLAY: return "replayed credentials";
    case AUTHN_E_EXPIRED: return "token creation time outside the allowed window";
    case AUTHN_E_BLOCKED: return "too many authentication failures; temporarily blocked";
    case AUTHN_E_MALFORMED: return "malformed credentials";
    case AUTHN_E_INSECURE: return "credentials in clear text refused without TLS";
    case AUTHN_E_NOMEM: return "out of memory";
    }
    return "unknown error";
}

static int64_t now_of(const struct authn *a)
{
    return (int64_t)(a->now ? a->now() : time(NULL));
}

static void set_anonymous(struct authn_principal *p)
{
    if (!p)
        return;
    p->user[0] = '\0';
    p->level = USER_LEVEL_ANONYMOUS;
}

static void set_principal(struct authn_principal *p, const char *user, enum user_level level)
{
    if (!p)
        return;
    size_t n = strnlen(user, USERS_NAME_MAX);   /* callers checked the length */
    memcpy(p->user, user, n);
    p->user[n] = '\0';
    p->level = level;
}

/* ---- small encoders ---------------------------------------------------- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 (RFC 4648 section 4); padding optional, ASCII whitespace
 * ignored (xs:base64Binary allows it). Returns 0, or -1 when the input is not
 * base64 or decodes to more than cap bytes. */
static int b64_decode(const char *in, unsigned char *out, size_t cap, size_t *outlen)
{
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t n = 0, symbols = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            continue;
        if (*p == '=') {
            pad++;
            continue;
        }
        int v = b64_value(*p);
        if (v < 0 || pad)
            return -1;
        symbols++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* A lone symbol in the last quantum, non-zero leftover bits, or padding
     * that does not complete the quantum: not base64. */
    if (symbols % 4 == 1 || (acc & ((1u << bits) - 1)) != 0)
        return -1;
    if (pad && (pad > 2 || (symbols + (size_t)pad) % 4 != 0))
        return -1;
    *outlen = n;
    return 0;
}

/* Copies s for a log line: printable ASCII only, bounded. */
static void log_safe(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; s && *s && i + 1 < outlen; s++)
        out[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    out[i] = '\0';
}

static int ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* ---- hashing ----------------------------------------------------------- */

/* Truncated SHA-256(salt | s): a table key. The per-instance salt keeps
 * chosen names (user names come from unauthenticated clients) from being
 * aimed at one hash bucket. */
/* Digests fetched once: OpenSSL 3 otherwise looks the algorithm up again on
 * every EVP_md5()-style use, which cost more than the hashing itself. */
static pthread_once_t digests_once = PTHREAD_ONCE_INIT;
static EVP_MD *fetched_md5, *fetched_sha1, *fetched_sha256;

static void fetch_digests(void)
{
    fetched_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    fetched_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    fetched_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md_md5(void)
{
    pthread_once(&digests_once, fetch_digests);
    return fetched_md5 ? fetched_md5 : EVP_md5();
}

static const EVP_MD *md_sha1(void)
{
    pthread_once(&digests_once, fetch_digests);
    return fetched_sha1 ? fetched_sha1 : EVP_sha1();
}

static const EVP_MD *md_sha256(void)
{
    pthread_once(&digests_once, fetch_digests);
    return fetched_sha256 ? fetched_sha256 : EVP_sha256();
}

static void key_hash(const struct authn *a, const void *s, size_t n, unsigned char out[KEY_HASH_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    memset(out, 0, KEY_HASH_LEN);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, md_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, a->hash_salt, sizeof a->hash_salt) == 1 && EVP_DigestUpdate(ctx, s, n) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= KEY_HASH_LEN)
        memcpy(out, md, KEY_HASH_LEN);
    EVP_MD_CTX_free(ctx);
}

static void pair_key_of(const struct authn *a, struct pair_key *k, const char *peer, const char *user)
{
    key_hash(a, peer, strlen(peer), k->peer);
    key_hash(a, user, strlen(user), k->user);
}

/* The first four bytes of a key hash, as a bucket number. */
static uint32_t key_bucket(const unsigned char key[KEY_HASH_LEN], uint32_t nbuckets)
{
    uint32_t v = (uint32_t)key[0] | (uint32_t)key[1] << 8 | (uint32_t)key[2] << 16 | (uint32_t)key[3] << 24;
    return v & (nbuckets - 1);
}

/* Lowercase hex of H(parts[0] ":" parts[1] ":" ...). hex needs
 * 2 * EVP_MAX_MD_SIZE + 1 bytes. Returns 0 or -1. */
static int hash_hex_parts(const EVP_MD *md, const char *const *parts, size_t n, char *hex)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        if (i > 0)
            ok = EVP_DigestUpdate(ctx, ":", 1) == 1;
        if (ok)
            ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i])) == 1;
    }
    if (ok)
        ok = EVP_DigestFinal_ex(ctx, out, &outlen) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    hex_encode(out, outlen, hex);
    OPENSSL_cleanse(out, sizeof out);
    return 0;
}

/* Constant-time equality of two NUL-terminated secrets of any length. */
static int secret_equal(const char *x, size_t xlen, const char *y, size_t ylen)
{
    unsigned char hx[EVP_MAX_MD_SIZE], hy[EVP_MAX_MD_SIZE];
    unsigned int lx = 0, ly = 0;
    int ok = EVP_Digest(x, xlen, hx, &lx, md_sha256(), NULL) == 1 &&
             EVP_Digest(y, ylen, hy, &ly, md_sha256(), NULL) == 1 && lx == ly;
    int eq = ok && CRYPTO_memcmp(hx, hy, lx) == 0;
    OPENSSL_cleanse(hx, sizeof hx);
    OPENSSL_cleanse(hy, sizeof hy);
    return eq;
}

/* ---- server nonces ----------------------------------------------------- */

static int nonce_mac(const struct authn *a, const unsigned char id[NONCE_ID_LEN], unsigned char mac[NONCE_MAC_LEN])
{
    unsigned char full[EVP_MAX_MD_SIZE];
    size_t len = 0;
    /* A copy of the keyed template: no key setup or algorithm lookup per use. */
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(a->nonce_mac_template);
    int ok = ctx && EVP_MAC_update(ctx, id, NONCE_ID_LEN) == 1 && EVP_MAC_final(ctx, full, &len, sizeof full) == 1 &&
             len >= NONCE_MAC_LEN;
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return -1;
    memcpy(mac, full, NONCE_MAC_LEN);
    OPENSSL_cleanse(full, sizeof full);
    return 0;
}

static int nonce_make(struct authn *a, char hex[NONCE_HEX_LEN + 1])
{
    unsigned char raw[NONCE_RAW_LEN];
    uint64_t t = (uint64_t)now_of(a);
    pthread_mutex_lock(&a->lock);
    uint64_t serial = ++a->nonce_serial;
    pthread_mutex_unlock(&a->lock);
    for (int i = 0; i < 8; i++) {
        raw[i] = (unsigned char)(t >> (56 - 8 * i));
        raw[8 + i] = (unsigned char)(serial >> (56 - 8 * i));
    }
    if (nonce_mac(a, raw, raw + NONCE_ID_LEN) != 0)
        return -1;
    hex_encode(raw, sizeof raw, hex);
    return 0;
}

/* Checks that nonce is one of ours. Returns 0 with its serial and issue time. */
static int nonce_check(const struct authn *a, const char *nonce, uint64_t *serial, int64_t *issued)
{
    unsigned char raw[NONCE_RAW_LEN], mac[NONCE_MAC_LEN];
    if (strlen(nonce) != NONCE_HEX_LEN)
        return -1;
    for (size_t i = 0; i < NONCE_RAW_LEN; i++) {
        int hi = hex_value(nonce[2 * i]), lo = hex_value(nonce[2 * i + 1]);
        if (hi < 0 || lo < 0 || isupper((unsigned char)nonce[2 * i]) || isupper((unsigned char)nonce[2 * i + 1]))
            return -1;
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    if (nonce_mac(a, raw, mac) != 0 || CRYPTO_memcmp(mac, raw + NONCE_ID_LEN, NONCE_MAC_LEN) != 0)
        return -1;
    uint64_t t = 0, n = 0;
    for (int i = 0; i < 8; i++) {
        t = t << 8 | raw[i];
        n = n << 8 | raw[8 + i];
    }
    *serial = n;
    *issued = (int64_t)t;
    return 0;
}

/* ---- tables (callers hold the lock) ------------------------------------ */

static void chain_push(int32_t *head, int32_t *next, uint32_t bucket, int32_t slot)
{
    next[slot] = head[bucket];
    head[bucket] = slot;
}

static void chain_unlink(int32_t *head, int32_t *next, uint32_t bucket, int32_t slot)
{
    for (int32_t *p = &head[bucket]; *p != NIL; p = &next[*p]) {
        if (*p == slot) {
            *p = next[slot];
            next[slot] = NIL;
            return;
        }
    }
}

/* Serials are consecutive and come only from MAC'd nonces: a multiplicative
 * hash spreads them evenly and cannot be steered by a client. */
static uint32_t nc_bucket(uint64_t serial)
{
    return (uint32_t)((serial * UINT64_C(0x9E3779B97F4A7C15)) >> 40) & (NC_BUCKETS - 1);
}

/* Anti-replay window (as in IPsec, RFC 4303 section 3.4.3): a count above
 * the highest moves the window up; one below it is accepted once while it
 * is within NC_WINDOW of the highest. Returns 1 (recorded) or 0 (replay). */
static int nc_window_accept(struct nc_entry *e, uint32_t nc)
{
    if (nc > e->top) {
        uint32_t up = nc - e->top;
        if (up > NC_WINDOW)
            e->below = 0;
        else if (up == NC_WINDOW)
            e->below = UINT64_C(1) << (NC_WINDOW - 1);
        else
            e->below = e->below << up | UINT64_C(1) << (up - 1);
        e->top = nc;
        return 1;
    }
    if (nc == e->top || e->top - nc > NC_WINDOW)
        return 0;
    uint64_t bit = UINT64_C(1) << (e->top - 1 - nc);
    if (e->below & bit)
        return 0;
    e->below |= bit;
    return 1;
}

/* Nonce-count check for an accepted digest of a nonce within its lifetime.
 * Returns AUTHN_OK (and records nc), AUTHN_E_REPLAY, or AUTHN_E_STALE when
 * the nonce may have been evicted. */
static int nc_check_locked(struct authn *a, uint64_t serial, uint32_t nc)
{
    uint32_t b = nc_bucket(serial);
    for (int32_t i = a->nc_head[b]; i != NIL; i = a->nc_next[i])
        if (a->nc[i].serial == serial)
            return nc != 0 && nc_window_accept(&a->nc[i], nc) ? AUTHN_OK : AUTHN_E_REPLAY;
    if (serial <= a->nc_floor)
        return AUTHN_E_STALE;
    if (nc == 0)
        return AUTHN_E_REPLAY;
    int32_t slot = a->nc_ring;
    struct nc_entry *e = &a->nc[slot];
    if (e->serial != 0) {
        /* The oldest insertion goes; whatever it was, it cannot come back. */
        chain_unlink(a->nc_head, a->nc_next, nc_bucket(e->serial), slot);
        if (e->serial > a->nc_floor)
            a->nc_floor = e->serial;
        e->serial = 0;
        if (serial <= a->nc_floor)
            return AUTHN_E_STALE;   /* the slot stays free for the next one */
    }
    e->serial = serial;
    e->top = nc;
    e->below = 0;
    chain_push(a->nc_head, a->nc_next, b, slot);
    a->nc_ring = (slot + 1) % NC_TABLE_SIZE;
    return AUTHN_OK;
}

/* Floor division: seconds of a millisecond time. */
static int64_t ms_to_s(int64_t ms)
{
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

/* A token that no longer needs remembering: outside the Created window, and
 * seen long enough ago that a clock step does not bring it back at once. */
static int token_expired(const struct authn *a, const struct token_entry *e, int64_t now)
{
    int64_t w = a->created_window_s;
    return now > ms_to_s(e->created_ms) + w && now - e->seen > 2 * w;
}

static int token_older(const struct authn *a, uint32_t x, uint32_t y)
{
    return a->tokens[x].created_ms < a->tokens[y].created_ms;
}

static void token_heap_up(struct authn *a, uint32_t pos)
{
    uint32_t slot = a->token_heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!token_older(a, slot, a->token_heap[parent]))
            break;
        a->token_heap[pos] = a->token_heap[parent];
        pos = parent;
    }
    a->token_heap[pos] = slot;
}

static void token_heap_down(struct authn *a, uint32_t pos)
{
    uint32_t n = a->token_count, slot = a->token_heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= n)
            break;
        if (c + 1 < n && token_older(a, a->token_heap[c + 1], a->token_heap[c]))
            c++;
        if (!token_older(a, a->token_heap[c], slot))
            break;
        a->token_heap[pos] = a->token_heap[c];
        pos = c;
    }
    a->token_heap[pos] = slot;
}

/* Removes the entry with the oldest Created; its slot joins the free tail. */
static void token_pop_oldest_locked(struct authn *a)
{
    uint32_t slot = a->token_heap[0], last = --a->token_count;
    a->token_heap[0] = a->token_heap[last];
    a->token_heap[last] = slot;
    if (last > 0)
        token_heap_down(a, 0);
    chain_unlink(a->token_head, a->token_next, key_bucket(a->tokens[slot].key, TOKEN_BUCKETS), (int32_t)slot);
}

/* UsernameToken replay cache: AUTHN_OK (recorded) or AUTHN_E_REPLAY.
 * Eviction takes the oldest Created (as a min-heap), not the oldest
 * insertion: then a client whose clock runs ahead cannot push the floor past
 * the tokens of everyone else. */
static int token_check_locked(struct authn *a, const unsigned char key[KEY_HASH_LEN], int64_t created_ms, int64_t now)
{
    uint32_t b = key_bucket(key, TOKEN_BUCKETS);
    for (int32_t i = a->token_head[b]; i != NIL; i = a->token_next[i])
        if (memcmp(a->tokens[i].key, key, KEY_HASH_LEN) == 0)
            return AUTHN_E_REPLAY;
    if (created_ms <= a->token_floor_ms)
        return AUTHN_E_REPLAY;
    /* Expired entries leave without raising the floor: a replay of one is
     * outside the Created window anyway. Bounded work per call. */
    for (int n = 0; n < TOKEN_EXPIRE_BATCH && a->token_count > 0 &&
                    token_expired(a, &a->tokens[a->token_heap[0]], now);
         n++)
        token_pop_oldest_locked(a);
    if (a->token_count == TOKEN_CACHE_SIZE) {
        const struct token_entry *old = &a->tokens[a->token_heap[0]];
        int64_t old_created = old->created_ms;
        int raise = !token_expired(a, old, now);
        token_pop_oldest_locked(a);
        if (raise && old_created > a->token_floor_ms)
            a->token_floor_ms = old_created;
        if (created_ms <= a->token_floor_ms)
            return AUTHN_E_REPLAY;
    }
    uint32_t slot = a->token_heap[a->token_count];
    struct token_entry *e = &a->tokens[slot];
    memcpy(e->key, key, KEY_HASH_LEN);
    e->created_ms = created_ms;
    e->seen = now;
    chain_push(a->token_head, a->token_next, b, (int32_t)slot);
    token_heap_up(a, a->token_count++);
    return AUTHN_OK;
}

static uint32_t pair_bucket(const struct pair_key *k)
{
    uint32_t p = key_bucket(k->peer, UINT32_C(1) << 31), u = key_bucket(k->user, UINT32_C(1) << 31);
    return (p ^ (u * UINT32_C(0x9E3779B1))) & (FAIL_BUCKETS - 1);
}

static int fail_expired(const struct fail_entry *e, int64_t now, int period)
{
    int64_t start = e->blocked ? e->block_start : e->window_start;
    return now < start || now - start >= period;
}

static void fail_reset_locked(struct authn *a)
{
    memset(a->fails, 0, sizeof a->fails);
    for (size_t i = 0; i < FAIL_BUCKETS; i++)
        a->fail_head[i] = a->fail_peer_head[i] = NIL;
    for (int32_t i = 0; i < FAIL_TABLE_SIZE; i++) {
        a->fail_next[i] = a->fail_peer_next[i] = NIL;
        a->fail_free[i] = FAIL_TABLE_SIZE - 1 - i;
    }
    a->fail_nfree = FAIL_TABLE_SIZE;
}

static void fail_remove_locked(struct authn *a, int32_t slot)
{
    struct fail_entry *e = &a->fails[slot];
    struct pair_key k;
    memcpy(k.peer, e->peer, KEY_HASH_LEN);
    memcpy(k.user, e->user, KEY_HASH_LEN);
    chain_unlink(a->fail_head, a->fail_next, pair_bucket(&k), slot);
    chain_unlink(a->fail_peer_head, a->fail_peer_next, key_bucket(e->peer, FAIL_BUCKETS), slot);
    e->used = 0;
    a->fail_free[a->fail_nfree++] = slot;
}

static int32_t fail_find_locked(struct authn *a, const struct pair_key *k)
{
    for (int32_t i = a->fail_head[pair_bucket(k)]; i != NIL; i = a->fail_next[i]) {
        const struct fail_entry *e = &a->fails[i];
        if (memcmp(e->peer, k->peer, KEY_HASH_LEN) == 0 && memcmp(e->user, k->user, KEY_HASH_LEN) == 0)
            return i;
    }
    return NIL;
}

/* Eviction preference: unblocked before blocked, then least recently active. */
static int evict_before(const struct authn *a, int32_t x, int32_t y)
{
    if (y == NIL)
        return 1;
    const struct fail_entry *ex = &a->fails[x], *ey = &a->fails[y];
    if (ex->blocked != ey->blocked)
        return !ex->blocked;
    return ex->seq < ey->seq;
}

/* A slot for a new pair: never more than FAIL_PER_PEER_MAX per peer (NULL
 * when the peer is at its cap: its own live entries are never evicted, or
 * spraying user names would wipe the count of the one being guessed), plus
 * the peer's overflow entry (over_cap). Only this peer's entries are looked
 * at, unless the table is full. */
static struct fail_entry *fail_alloc_locked(struct authn *a, const struct pair_key *k, int64_t now, int over_cap)
{
    int period = a->policy.monitor_period_s;
    int32_t peer_victim = NIL;
    int peer_count = 0;
    uint32_t pb = key_bucket(k->peer, FAIL_BUCKETS);
    for (int32_t i = a->fail_peer_head[pb]; i != NIL;) {
        int32_t next = a->fail_peer_next[i];
        if (memcmp(a->fails[i].peer, k->peer, KEY_HASH_LEN) == 0) {
            if (fail_expired(&a->fails[i], now, period)) {
                fail_remove_locked(a, i);
            } else {
                peer_count++;
                if (evict_before(a, i, peer_victim))
                    peer_victim = i;
            }
        }
        i = next;
    }
    (void)peer_victim;
    if (peer_count >= FAIL_PER_PEER_MAX + over_cap)
        return NULL;
    if (a->fail_nfree == 0) {
        /* Full: the rare path, one pass like a sweep. */
        int32_t victim = NIL;
        for (int32_t i = 0; i < FAIL_TABLE_SIZE; i++) {
            if (!a->fails[i].used)
                continue;
            if (fail_expired(&a->fails[i], now, period))
                fail_remove_locked(a, i);
            else if (evict_before(a, i, victim))
                victim = i;
        }
        if (a->fail_nfree == 0)
            fail_remove_locked(a, victim);
    }
    int32_t slot = a->fail_free[--a->fail_nfree];
    struct fail_entry *e = &a->fails[slot];
    memset(e, 0, sizeof *e);
    e->used = 1;
    memcpy(e->peer, k->peer, KEY_HASH_LEN);
    memcpy(e->user, k->user, KEY_HASH_LEN);
    e->window_start = now;
    chain_push(a->fail_head, a->fail_next, pair_bucket(k), slot);
    chain_push(a->fail_peer_head, a->fail_peer_next, pb, slot);
    return e;
}

/* ---- failure monitor --------------------------------------------------- */

/* The pair that counts a peer's failures for user names beyond its
 * FAIL_PER_PEER_MAX tracked ones; when it blocks, it blocks every user name
 * from that peer (and only from that peer). */
static void overflow_key_of(const struct authn *a, const struct pair_key *k, struct pair_key *out)
{
    static const char marker[] = "\001any-user"; /* not a valid user name */
    memcpy(out->peer, k->peer, KEY_HASH_LEN);
    key_hash(a, marker, sizeof marker - 1, out->user);
}

static int entry_blocked_locked(struct authn *a, const struct pair_key *k, int64_t now)
{
    int32_t i = fail_find_locked(a, k);
    if (i == NIL || !a->fails[i].blocked)
        return 0;
    if (fail_expired(&a->fails[i], now, a->policy.monitor_period_s)) {
        fail_remove_locked(a, i);
        return 0;
    }
    return 1;
}

static int pair_blocked(struct authn *a, const struct pair_key *k)
{
    int64_t now = now_of(a);
    int blocked = 0;
    pthread_mutex_lock(&a->lock);
    if (a->policy.enabled) {
        struct pair_key any;
        overflow_key_of(a, k, &any);
        blocked = entry_blocked_locked(a, k, now) || entry_blocked_locked(a, &any, now);
    }
    pthread_mutex_unlock(&a->lock);
    return blocked;
}

/* Counts one failed verification; logs once when it starts a block. */
static void pair_failed(struct authn *a, const struct pair_key *k, const char *peer, const char *user)
{
    int64_t now = now_of(a);
    int started = 0, count = 0, period;
    pthread_mutex_lock(&a->lock);
    if (!a->policy.enabled) {
        pthread_mutex_unlock(&a->lock);
        return;
    }
    period = a->policy.monitor_period_s;
    int32_t i = fail_find_locked(a, k);
    struct fail_entry *e = i != NIL ? &a->fails[i] : NULL;
    if (e && fail_expired(e, now, period)) {
        e->count = 0;
        e->blocked = 0;
        e->window_start = now;
    }
    if (!e)
        e = fail_alloc_locked(a, k, now, 0);
    if (!e) {
        /* The peer already has its cap of tracked user names: count this
         * one on the peer's overflow entry. */
        struct pair_key any;
        overflow_key_of(a, k, &any);
        i = fail_find_locked(a, &any);
        e = i != NIL ? &a->fails[i] : NULL;
        if (e && fail_expired(e, now, period)) {
            e->count = 0;
            e->blocked = 0;
            e->window_start = now;
        }
        if (!e)
            e = fail_alloc_locked(a, &any, now, 1);
        if (!e) {
            pthread_mutex_unlock(&a->lock);
            return;
        }
    }
    e->seq = ++a->seq;
    if (!e->blocked) {
        e->count++;
        if (e->count > a->policy.max_failures) {
            e->blocked = 1;
            e->block_start = now;
            started = 1;
            count = e->count;
        }
    }
    pthread_mutex_unlock(&a->lock);
    if (started) {
        char p[64], u[64];
        log_safe(p, sizeof p, peer);
        log_safe(u, sizeof u, user);
        log_warning("auth", "%d authentication failures within %d s from %s for user '%s': blocked for %d s",
                    count, period, p, u, period);
        if (a->alarm_fn)
            a->alarm_fn(a->alarm_arg, user, peer);
    }
}

/* A verified password clears the pair's failures. */
static void pair_succeeded_locked(struct authn *a, const struct pair_key *k)
{
    int32_t i = fail_find_locked(a, k);
    if (i != NIL)
        fail_remove_locked(a, i);
}

static void pair_succeeded(struct authn *a, const struct pair_key *k)
{
    pthread_mutex_lock(&a->lock);
    pair_succeeded_locked(a, k);
    pthread_mutex_unlock(&a->lock);
}

/* ---- open / close / policy ------------------------------------------- */

static int realm_is_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > AUTHN_REALM_MAX)
        return 0;
    for (; *r; r++)
        if (*r < 0x20 || *r >= 0x7f || *r == '"' || *r == '\\')
            return 0;
    return 1;
}

int authn_open(struct authn **out, struct users *users, struct secretbox *box, const struct authn_settings *s)
{
    (void)box;   /* nonces use a per-process key: nothing to persist */
    if (!out)
        return AUTHN_E_MALFORMED;
    *out = NULL;
    const char *realm = s && s->realm ? s->realm : AUTHN_DEFAULT_REALM;
    if (!realm_is_valid(realm))
        return AUTHN_E_MALFORMED;
    struct authn *a = calloc(1, sizeof *a);
    if (!a)
        return AUTHN_E_NOMEM;
    unsigned char opaque[OPAQUE_RAW_LEN];
    if (RAND_bytes(a->nonce_key, sizeof a->nonce_key) != 1 || RAND_bytes(opaque, sizeof opaque) != 1 ||
        RAND_bytes(a->hash_salt, sizeof a->hash_salt) != 1) {
        free(a);
        return AUTHN_E_NOMEM;
    }
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        OPENSSL_cleanse(a->nonce_key, sizeof a->nonce_key);
        free(a);
        return AUTHN_E_NOMEM;
    }
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    a->nonce_mac_template = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end() };
    if (!a->nonce_mac_template ||
        EVP_MAC_init(a->nonce_mac_template, a->nonce_key, sizeof a->nonce_key, params) != 1) {
        EVP_MAC_CTX_free(a->nonce_mac_template);
        pthread_mutex_destroy(&a->lock);
        OPENSSL_cleanse(a->nonce_key, sizeof a->nonce_key);
        free(a);
        return AUTHN_E_NOMEM;
    }
    hex_encode(opaque, sizeof opaque, a->opaque);
    a->users = users;
    snprintf(a->realm, sizeof a->realm, "%s", realm);
    a->nonce_lifetime_s = s && s->nonce_lifetime_s > 0 ? s->nonce_lifetime_s : AUTHN_DEFAULT_LIFETIME;
    a->created_window_s = s && s->created_window_s > 0 ? s->created_window_s : AUTHN_DEFAULT_WINDOW;
    a->allow_basic = s ? s->allow_basic : 0;
    atomic_init(&a->digest_algorithms, AUTHN_ALG_ALL);
    a->now = s ? s->now : NULL;
    a->policy.enabled = 1;
    a->policy.monitor_period_s = DEFAULT_MONITOR_PERIOD;
    a->policy.max_failures = DEFAULT_MAX_FAILURES;
    a->token_floor_ms = INT64_MIN;
    for (size_t i = 0; i < NC_BUCKETS; i++)
        a->nc_head[i] = NIL;
    for (size_t i = 0; i < NC_TABLE_SIZE; i++)
        a->nc_next[i] = NIL;
    for (size_t i = 0; i < TOKEN_BUCKETS; i++)
        a->token_head[i] = NIL;
    for (uint32_t i = 0; i < TOKEN_CACHE_SIZE; i++) {
        a->token_next[i] = NIL;
        a->token_heap[i] = i;
    }
    fail_reset_locked(a);
    *out = a;
    return AUTHN_OK;
}

void authn_close(struct authn *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->lock);
    EVP_MAC_CTX_free(a->nonce_mac_template);
    OPENSSL_cleanse(a->nonce_key, sizeof a->nonce_key);
    free(a);
}

unsigned authn_get_digest_algorithms(struct authn *a)
{
    return atomic_load(&a->digest_algorithms);
}

int authn_set_digest_algorithms(struct authn *a, unsigned algs)
{
    if (!algs || (algs & ~AUTHN_ALG_ALL))
        return -1;
    atomic_store(&a->digest_algorithms, algs);
    return 0;
}

void authn_get_failure_policy(struct authn *a, struct authn_failure_policy *out)
{
    pthread_mutex_lock(&a->lock);
    *out = a->policy;
    pthread_mutex_unlock(&a->lock);
}

int authn_failure_policy_valid(const struct authn_failure_policy *p)
{
    return p && p->monitor_period_s >= AUTHN_MONITOR_PERIOD_MIN && p->monitor_period_s <= AUTHN_MONITOR_PERIOD_MAX &&
           p->max_failures >= AUTHN_MAX_FAILURES_MIN && p->max_failures <= AUTHN_MAX_FAILURES_MAX;
}

int authn_set_failure_policy(struct authn *a, const struct authn_failure_policy *in)
{
    if (!authn_failure_policy_valid(in))
        return -1;
    pthread_mutex_lock(&a->lock);
    a->policy = *in;
    a->policy.enabled = in->enabled != 0;
    if (!a->policy.enabled)   /* nothing counted while off, nothing left blocked */
        fail_reset_locked(a);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* ---- HTTP Digest ------------------------------------------------------- */

int authn_digest_challenge(struct authn *a, int stale, char *out, size_t outlen)
{
    char nonce[NONCE_HEX_LEN + 1];
    if (!a || !out || outlen == 0)
        return -1;
    out[0] = '\0';
    if (nonce_make(a, nonce) != 0)
        return -1;
    static const char *const algs[] = { "SHA-256", "MD5" };
    static const unsigned alg_bits[] = { AUTHN_ALG_SHA256, AUTHN_ALG_MD5 };
    unsigned offered = atomic_load(&a->digest_algorithms);
    size_t used = 0;
    for (size_t i = 0; i < 2; i++) {
        if (!(offered & alg_bits[i]))
            continue;
        int n = snprintf(out + used, outlen - used,
                         "WWW-Authenticate: Digest realm=\"%s\", qop=\"auth\", algorithm=%s, nonce=\"%s\", "
                         "opaque=\"%s\"%s\r\n",
                         a->realm, algs[i], nonce, a->opaque, stale ? ", stale=true" : "");
        if (n < 0 || (size_t)n >= outlen - used) {
            out[0] = '\0';
            return -1;
        }
        used += (size_t)n;
    }
    return (int)used;
}

struct digest_params {
    char username[128];
    char realm[AUTHN_REALM_MAX + 1];
    char nonce[128];
    char uri[2048];
    char response[160];
    char qop[16];
    char nc[16];
    char cnonce[256];
    char algorithm[32];
    char opaque[128];
    char userhash[16];
    unsigned seen;
};

#define P_USERNAME (1u << 0)
#define P_REALM (1u << 1)
#define P_NONCE (1u << 2)
#define P_URI (1u << 3)
#define P_RESPONSE (1u << 4)
#define P_QOP (1u << 5)
#define P_NC (1u << 6)
#define P_CNONCE (1u << 7)
#define P_ALGORITHM (1u << 8)
#define P_OPAQUE (1u << 9)
#define P_USERHASH (1u << 10)

static const struct {
    const char *name;
    size_t off;
    size_t cap;
    unsigned bit;
} digest_fields[] = {
#define FIELD(n, bit) { #n, offsetof(struct digest_params, n), sizeof(((struct digest_params *)0)->n), bit }
    FIELD(username, P_USERNAME), FIELD(realm, P_REALM),   FIELD(nonce, P_NONCE),
    FIELD(uri, P_URI),           FIELD(response, P_RESPONSE), FIELD(qop, P_QOP),
    FIELD(nc, P_NC),             FIELD(cnonce, P_CNONCE), FIELD(algorithm, P_ALGORITHM),
    FIELD(opaque, P_OPAQUE),     FIELD(userhash, P_USERHASH),
#undef FIELD
};

static int is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses the auth-param list after "Digest": name=token or name="quoted"
 * (with backslash escapes), any order, names case-insensitive, empty list
 * elements allowed. Unknown parameters are ignored; known ones must fit their
 * buffer and appear once. Returns 0 or -1. */
static int digest_parse(const char *p, struct digest_params *dp)
{
    for (;;) {
        while (is_ows(*p) || *p == ',')
            p++;
        if (!*p)
            return 0;
        const char *name = p;
        while (is_tchar(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        if (nlen == 0)
            return -1;
        char *dst = NULL;
        size_t cap = 0;
        for (size_t i = 0; i < sizeof digest_fields / sizeof digest_fields[0]; i++) {
            if (strlen(digest_fields[i].name) == nlen && strncasecmp(digest_fields[i].name, name, nlen) == 0) {
                if (dp->seen & digest_fields[i].bit)
                    return -1;
                dp->seen |= digest_fields[i].bit;
                dst = (char *)dp + digest_fields[i].off;
                cap = digest_fields[i].cap;
                break;
            }
        }
        while (is_ows(*p))
            p++;
        if (*p != '=')
            return -1;
        p++;
        while (is_ows(*p))
            p++;
        size_t len = 0;
        if (*p == '"') {
            for (p++;; p++) {
                char c = *p;
                if (c == '\0')
                    return -1;
                if (c == '"') {
                    p++;
                    break;
                }
                if (c == '\\') {
                    c = *++p;
                    if (c == '\0')
                        return -1;
                }
                if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f)
                    return -1;
                if (dst) {
                    if (len + 1 >= cap)
                        return -1;
                    dst[len] = c;
                }
                len++;
            }
        } else {
            /* token; lenient: any visible character but the delimiters */
            for (; *p > 0x20 && *p < 0x7f && *p != ',' && *p != '"' && *p != '\\'; p++) {
                if (dst) {
                    if (len + 1 >= cap)
                        return -1;
                    dst[len] = *p;
                }
                len++;
            }
            if (len == 0)
                return -1;
        }
        if (dst)
            dst[len] = '\0';
        while (is_ows(*p))
            p++;
        if (*p != ',' && *p != '\0')
            return -1;
    }
}

static int method_is_valid(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > AUTHN_METHOD_MAX)
        return 0;
    for (; *m; m++)
        if (!is_tchar(*m))
            return 0;
    return 1;
}

/* Fetches name's password into pw (DUMMY_PASSWORD for an unknown user, so
 * the work done does not tell whether the user exists). Returns 1 when the
 * user exists. */
static int fetch_password(struct authn *a, const char *name, char pw[USERS_PASSWORD_MAX + 1], enum user_level *level)
{
    int found = 0;
    if (a->users && strlen(name) <= USERS_NAME_MAX && name[0])
        found = users_password(a->users, name, pw, USERS_PASSWORD_MAX + 1, level) == USERS_OK;
    if (!found) {
        OPENSSL_cleanse(pw, USERS_PASSWORD_MAX + 1);
        snprintf(pw, USERS_PASSWORD_MAX + 1, "%s", DUMMY_PASSWORD);
        *level = USER_LEVEL_ANONYMOUS;
    }
    return found;
}

/* The expected response (lowercase hex) for dp and password; 0 or -1. */
static int digest_expected(const EVP_MD *md, int sess, const struct digest_params *dp, const char *method,
                           const char *password, char *resp)
{
    char ha1[2 * EVP_MAX_MD_SIZE + 1], ha2[2 * EVP_MAX_MD_SIZE + 1];
    const char *p1[] = { dp->username, dp->realm, password };
    int rc = hash_hex_parts(md, p1, 3, ha1);
    if (rc == 0 && sess) {
        char base[2 * EVP_MAX_MD_SIZE + 1];
        memcpy(base, ha1, sizeof base);
        const char *ps[] = { base, dp->nonce, dp->cnonce };
        rc = hash_hex_parts(md, ps, 3, ha1);
        OPENSSL_cleanse(base, sizeof base);
    }
    const char *p2[] = { method, dp->uri };
    if (rc == 0)
        rc = hash_hex_parts(md, p2, 2, ha2);
    const char *pr[] = { ha1, dp->nonce, dp->nc, dp->cnonce, dp->qop, ha2 };
    const char *pr2069[] = { ha1, dp->nonce, ha2 };
    if (rc == 0)
        rc = dp->seen & P_QOP ? hash_hex_parts(md, pr, 6, resp) : hash_hex_parts(md, pr2069, 3, resp);
    OPENSSL_cleanse(ha1, sizeof ha1);
    return rc;
}

static int digest_verify(struct authn *a, const char *params, const char *method, const char *uri, const char *peer,
                         int allow_rfc2069, struct authn_principal *out)
{
    struct digest_params *dp = calloc(1, sizeof *dp);
    if (!dp)
        return AUTHN_E_NOMEM;
    int rc = AUTHN_E_MALFORMED;
    const EVP_MD *md = NULL;
    int sess = 0;
    uint32_t nc = 0;
    if (digest_parse(params, dp) != 0)
        goto done;
    const unsigned required = P_USERNAME | P_REALM | P_NONCE | P_URI | P_RESPONSE;
    if ((dp->seen & required) != required)
        goto done;
    /* qop=auth with nc and cnonce; RFC 2069 (no qop, no nc) only where the
     * caller allows it (RTSP clients send it); auth-int never. */
    int rfc2069 = allow_rfc2069 && !(dp->seen & (P_QOP | P_NC | P_CNONCE));
    if (!rfc2069) {
        if (!(dp->seen & P_QOP) || !ieq(dp->qop, "auth") || !(dp->seen & P_NC) || !(dp->seen & P_CNONCE) ||
            dp->cnonce[0] == '\0')
            goto done;
        if (strlen(dp->nc) != 8)
            goto done;
        for (int i = 0; i < 8; i++) {
            int v = hex_value(dp->nc[i]);
            if (v < 0)
                goto done;
            nc = nc << 4 | (uint32_t)v;
        }
    }
    if (!(dp->seen & P_ALGORITHM) || ieq(dp->algorithm, "MD5")) {
        md = md_md5();
    } else if (rfc2069) {
        goto done;   /* RFC 2069 knows MD5 only */
    } else if (ieq(dp->algorithm, "MD5-sess")) {
        md = md_md5();
        sess = 1;
    } else if (ieq(dp->algorithm, "SHA-256")) {
        md = md_sha256();
    } else if (ieq(dp->algorithm, "SHA-256-sess")) {
        md = md_sha256();
        sess = 1;
    } else {
        goto done;
    }
    /* Only the algorithms SetHashingAlgorithm left on are accepted. */
    if (!(atomic_load(&a->digest_algorithms) & (md == md_md5() ? AUTHN_ALG_MD5 : AUTHN_ALG_SHA256))) {
        rc = AUTHN_E_DENIED;
        goto done;
    }
    /* We never offer userhash; a hashed user name cannot be looked up. */
    if ((dp->seen & P_USERHASH) && !ieq(dp->userhash, "false"))
        goto done;

    struct pair_key key;
    pair_key_of(a, &key, peer, dp->username);
    if (pair_blocked(a, &key)) {
        rc = AUTHN_E_BLOCKED;
        goto done;
    }
    /* Checks that involve no password: not counted as failures. */
    rc = AUTHN_E_DENIED;
    uint64_t serial = 0;
    int64_t issued = 0;
    if (strcmp(dp->realm, a->realm) != 0 || strcmp(dp->uri, uri) != 0 ||
        nonce_check(a, dp->nonce, &serial, &issued) != 0)
        goto done;

    char pw[USERS_PASSWORD_MAX + 1];
    char expected[2 * EVP_MAX_MD_SIZE + 1];
    enum user_level level;
    int found = fetch_password(a, dp->username, pw, &level);
    int hrc = digest_expected(md, sess, dp, method, pw, expected);
    OPENSSL_cleanse(pw, sizeof pw);
    if (hrc != 0) {
        rc = AUTHN_E_NOMEM;
        goto done;
    }
    /* The client's hex may be upper case; compare in constant time. */
    size_t elen = strlen(expected);
    char given[sizeof dp->response];
    size_t glen = strlen(dp->response);
    for (size_t i = 0; i <= glen; i++)
        given[i] = (char)tolower((unsigned char)dp->response[i]);
    int match = glen == elen && CRYPTO_memcmp(given, expected, elen) == 0;
    OPENSSL_cleanse(expected, sizeof expected);
    if (!found || !match) {
        pair_failed(a, &key, peer, dp->username);
        goto done;
    }
    /* From here on the client knows the password. */
    int64_t now = now_of(a);
    if (now - issued > a->nonce_lifetime_s || now < issued) {
        rc = AUTHN_E_STALE;
        goto done;
    }
    pthread_mutex_lock(&a->lock);
    /* Without nc a nonce is replayable within its lifetime: RFC 2069's limit. */
    rc = rfc2069 ? AUTHN_OK : nc_check_locked(a, serial, nc);
    if (rc == AUTHN_OK)
        pair_succeeded_locked(a, &key);
    pthread_mutex_unlock(&a->lock);
    if (rc != AUTHN_OK)
        goto done;
    set_principal(out, dp->username, level);
done:
    OPENSSL_cleanse(dp, sizeof *dp);
    free(dp);
    return rc;
}

/* ---- HTTP Basic -------------------------------------------------------- */

static int basic_verify(struct authn *a, const char *b64, const char *peer, struct authn_principal *out)
{
    unsigned char buf[AUTHN_HEADER_MAX];
    size_t n = 0;
    int rc = AUTHN_E_MALFORMED;
    while (is_ows(*b64))
        b64++;
    if (b64_decode(b64, buf, sizeof buf - 1, &n) != 0)
        goto done;
    buf[n] = '\0';
    char *colon = memchr(buf, ':', n);
    if (!colon || memchr(buf, '\0', n))
        goto done;
    *colon = '\0';
    const char *user = (const char *)buf;
    const char *given = colon + 1;
    size_t given_len = n - (size_t)(colon + 1 - (char *)buf);

    struct pair_key key;
    pair_key_of(a, &key, peer, user);
    if (pair_blocked(a, &key)) {
        rc = AUTHN_E_BLOCKED;
        goto done;
    }
    char pw[USERS_PASSWORD_MAX + 1];
    enum user_level level;
    int found = fetch_password(a, user, pw, &level);
    int match = secret_equal(pw, strlen(pw), given, given_len);
    OPENSSL_cleanse(pw, sizeof pw);
    if (!found || !match) {
        pair_failed(a, &key, peer, user);
        rc = AUTHN_E_DENIED;
        goto done;
    }
    pair_succeeded(a, &key);
    set_principal(out, user, level);
    rc = AUTHN_OK;
done:
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int credentials_verify(struct authn *a, const char *authorization, const char *method, const char *uri,
                              const char *peer, int tls, int rtsp, struct authn_principal *out)
{
    set_anonymous(out);
    if (!a || !authorization || !method || !uri)
        return AUTHN_E_MALFORMED;
    if (!peer)
        peer = "-";
    if (strnlen(authorization, AUTHN_HEADER_MAX + 1) > AUTHN_HEADER_MAX || !method_is_valid(method))
        return AUTHN_E_MALFORMED;
    const char *p = authorization;
    while (is_ows(*p))
        p++;
    const char *scheme = p;
    while (is_tchar(*p))
        p++;
    size_t slen = (size_t)(p - scheme);
    if (*p != '\0' && !is_ows(*p))
        return AUTHN_E_MALFORMED;
    if (slen == 6 && strncasecmp(scheme, "Digest", 6) == 0)
        return digest_verify(a, p, method, uri, peer, rtsp, out);
    if (slen == 5 && strncasecmp(scheme, "Basic", 5) == 0) {
        if (!a->allow_basic || !tls)
            return AUTHN_E_INSECURE;
        return basic_verify(a, p, peer, out);
    }
    return AUTHN_E_MALFORMED;
}

int authn_http(struct authn *a, const char *authorization, const char *method, const char *uri, const char *peer,
               int tls, struct authn_principal *out)
{
    return credentials_verify(a, authorization, method, uri, peer, tls, 0, out);
}

int authn_rtsp(struct authn *a, const char *authorization, const char *method, const char *uri, const char *peer,
               struct authn_principal *out)
{
    return credentials_verify(a, authorization, method, uri, peer, 0, 1, out);
}

/* ---- WS-UsernameToken ------------------------------------------------- */

static int read_digits(const char **p, int n, int *val)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *val = v;
    return 0;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* xs:dateTime "YYYY-MM-DDThh:mm:ss[.fff...](Z|+hh:mm|-hh:mm)" to whole
 * seconds (*secs) and milliseconds (*ms, fraction truncated) since the epoch;
 * no zone is read as UTC. Returns 0 or -1. */
static int parse_created(const char *s, int64_t *secs, int64_t *ms)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0, frac_ms = 0;
    const char *p = s;
    if (strnlen(s, TOKEN_CREATED_MAX + 1) > TOKEN_CREATED_MAX)
        return -1;
    if (read_digits(&p, 4, &Y) || *p++ != '-' || read_digits(&p, 2, &M) || *p++ != '-' || read_digits(&p, 2, &D) ||
        *p++ != 'T' || read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &m) || *p++ != ':' ||
        read_digits(&p, 2, &sec))
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits <= 12) {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (digits == 0 || digits > 12)
            return -1;
        for (int i = digits; i < 3; i++)
            frac_ms *= 10;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (read_digits(&p, 2, &oh) || *p++ != ':' || read_digits(&p, 2, &om))
            return -1;
        if (oh > 14 || om > 59 || (oh == 14 && om != 0))
            return -1;
    }
    if (*p != '\0')
        return -1;
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) || h > 23 ||
        m > 59 || sec > 60)
        return -1;
    *secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - (int64_t)sign * (oh * 3600 + om * 60);
    *ms = *secs * 1000 + frac_ms;
    return 0;
}

/* SHA-1(nonce | created | password) equals the decoded digest? */
static int token_digest_matches(const unsigned char *nonce, size_t nlen, const char *created, const char *password,
                                const unsigned char *given, size_t glen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, md_sha1(), NULL) == 1 && EVP_DigestUpdate(ctx, nonce, nlen) == 1 &&
             EVP_DigestUpdate(ctx, created, strlen(created)) == 1 &&
             EVP_DigestUpdate(ctx, password, strlen(password)) == 1 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
    EVP_MD_CTX_free(ctx);
    int eq = ok && glen == mdlen && CRYPTO_memcmp(md, given, mdlen) == 0;
    OPENSSL_cleanse(md, sizeof md);
    return eq;
}

int authn_username_token(struct authn *a, const char *username, const char *password, int password_type_digest,
                         const char *nonce_b64, const char *created, const char *peer, int tls,
                         struct authn_principal *out)
{
    set_anonymous(out);
    if (!a || !username || !password)
        return AUTHN_E_MALFORMED;
    if (!peer)
        peer = "-";
    if (!password_type_digest && !tls)
        return AUTHN_E_INSECURE;
    if (strnlen(username, TOKEN_USERNAME_MAX + 1) > TOKEN_USERNAME_MAX ||
        strnlen(password, TOKEN_PASSWORD_MAX + 1) > TOKEN_PASSWORD_MAX)
        return AUTHN_E_MALFORMED;
    unsigned char nonce[TOKEN_NONCE_MAX];
    size_t nlen = 0;
    int64_t created_t = 0, created_ms = 0;
    if (password_type_digest) {
        if (!nonce_b64 || !created)
            return AUTHN_E_MALFORMED;
        if (strnlen(nonce_b64, 4 * TOKEN_NONCE_MAX + 1) > 4 * TOKEN_NONCE_MAX ||
            b64_decode(nonce_b64, nonce, sizeof nonce, &nlen) != 0 || nlen == 0)
            return AUTHN_E_MALFORMED;
    }
    if (created && parse_created(created, &created_t, &created_ms) != 0)
        return AUTHN_E_MALFORMED;

    struct pair_key key;
    pair_key_of(a, &key, peer, username);
    if (pair_blocked(a, &key))
        return AUTHN_E_BLOCKED;
    int64_t now = now_of(a);
    if (created && (created_t > now + a->created_window_s || created_t < now - a->created_window_s))
        return AUTHN_E_EXPIRED;

    char pw[USERS_PASSWORD_MAX + 1];
    enum user_level level;
    int found = fetch_password(a, username, pw, &level);
    int match;
    if (password_type_digest) {
        unsigned char given[64];
        size_t glen = 0;
        match = b64_decode(password, given, sizeof given, &glen) == 0 &&
                token_digest_matches(nonce, nlen, created, pw, given, glen);
    } else {
        match = secret_equal(pw, strlen(pw), password, strlen(password));
    }
    OPENSSL_cleanse(pw, sizeof pw);
    if (!found || !match) {
        pair_failed(a, &key, peer, username);
        return AUTHN_E_DENIED;
    }
    if (password_type_digest) {
        /* Replay key: SHA-256(salt | nonce | "|" | created). */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = ctx && EVP_DigestInit_ex(ctx, md_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(ctx, a->hash_salt, sizeof a->hash_salt) == 1 &&
                 EVP_DigestUpdate(ctx, nonce, nlen) == 1 && EVP_DigestUpdate(ctx, "|", 1) == 1 &&
                 EVP_DigestUpdate(ctx, created, strlen(created)) == 1 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 &&
                 mdlen >= KEY_HASH_LEN;
        EVP_MD_CTX_free(ctx);
        if (!ok)
            return AUTHN_E_NOMEM;
        pthread_mutex_lock(&a->lock);
        int rc = token_check_locked(a, md, created_ms, now);
        if (rc == AUTHN_OK)
            pair_succeeded_locked(a, &key);
        pthread_mutex_unlock(&a->lock);
        if (rc != AUTHN_OK)
            return rc;
    } else {
        pair_succeeded(a, &key);
    }
    set_principal(out, username, level);
    return AUTHN_OK;
}

void authn_set_failure_alarm(struct authn *a, authn_alarm_fn fn, void *arg)
{
    pthread_mutex_lock(&a->lock);
    a->alarm_fn = fn;
    a->alarm_arg = arg;
    pthread_mutex_unlock(&a->lock);
}
