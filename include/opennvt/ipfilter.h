/* Host access restrictions: an Allow or Deny list of IPv4 and IPv6 prefixes,
 * checked right after accept() (and for each discovery datagram) before a
 * byte is parsed. IPv4-mapped IPv6 peers are matched against the IPv4 list.
 * Persisted atomically in state_dir/ipfilter.xml. A change is built
 * completely, then swapped in under the lock: there is never a moment without
 * a filter. Thread-safe; ipfilter_allows is cheap (read lock, no allocation). */
#ifndef OPENNVT_IPFILTER_H
#define OPENNVT_IPFILTER_H

#include <stddef.h>
#include <sys/socket.h>

#define IPFILTER_MAX_PER_FAMILY 64

enum ipfilter_type { IPFILTER_DENY = 0, IPFILTER_ALLOW = 1 };

enum ipfilter_error {
    IPFILTER_OK = 0,
    IPFILTER_E_INVALID_V4 = -1,   /* not a dotted-quad IPv4 address, or prefix outside 0..32 */
    IPFILTER_E_INVALID_V6 = -2,   /* not an IPv6 address, or prefix outside 0..128 */
    IPFILTER_E_TOO_MANY = -3,     /* more than IPFILTER_MAX_PER_FAMILY entries of a family */
    IPFILTER_E_LOCKOUT = -4,      /* the requesting client would lose access */
    IPFILTER_E_NO_ENTRY = -5,     /* removing an entry that is not in the list */
    IPFILTER_E_STORE = -6,        /* could not persist; nothing changed */
    IPFILTER_E_NOMEM = -7,
    IPFILTER_E_INVALID_TYPE = -8, /* type is neither IPFILTER_DENY nor IPFILTER_ALLOW */
};

/* One entry as ONVIF carries it: text address and prefix length. */
struct ipfilter_prefix {
    char address[64];             /* "192.0.2.0", "2001:db8::" */
    int prefix_len;
};

/* A whole filter as ONVIF carries it. */
struct ipfilter_rules {
    enum ipfilter_type type;
    size_t n_v4, n_v6;
    struct ipfilter_prefix v4[IPFILTER_MAX_PER_FAMILY];
    struct ipfilter_prefix v6[IPFILTER_MAX_PER_FAMILY];
};

struct ipfilter;

/* Opens state_dir/ipfilter.xml; absent means Deny with empty lists (all
 * allowed). A corrupt file is an error (never silently open). */
int ipfilter_open(struct ipfilter **out, const char *state_dir);
void ipfilter_close(struct ipfilter *f);

/* 1 when the peer may connect. Allow: only peers in a listed prefix (so an
 * Allow filter with empty lists admits nobody, which ipfilter_set refuses as
 * a lockout of the requester). Deny: every peer except those in a listed
 * prefix. A non-IP peer (AF_UNIX) is always allowed. */
int ipfilter_allows(struct ipfilter *f, const struct sockaddr *peer);

/* Copies the current rules (addresses in canonical text: inet_ntop of the
 * network address with host bits as given). */
int ipfilter_get(struct ipfilter *f, struct ipfilter_rules *out);

/* Replaces the rules. requester (may be NULL for local tools) is the address
 * of the client making the change: refused with IPFILTER_E_LOCKOUT when the
 * new rules would not allow it. Validation of every entry first; nothing
 * changes on error; *bad_index (when not NULL) names the entry at fault
 * (v4 entries first, then v6). */
int ipfilter_set(struct ipfilter *f, const struct ipfilter_rules *rules, const struct sockaddr *requester,
                 size_t *bad_index);
/* Adds entries to the lists (type unchanged; exact duplicates ignored). */
int ipfilter_add(struct ipfilter *f, const struct ipfilter_rules *entries, const struct sockaddr *requester,
                 size_t *bad_index);
/* Removes entries (matched by network address and prefix length). */
int ipfilter_remove(struct ipfilter *f, const struct ipfilter_rules *entries, const struct sockaddr *requester,
                    size_t *bad_index);

/* Validates one entry without changing anything. family AF_INET or AF_INET6. */
int ipfilter_prefix_valid(int family, const struct ipfilter_prefix *p);

const char *ipfilter_strerror(int err);

#endif
