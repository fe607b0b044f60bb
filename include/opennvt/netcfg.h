/* Network-facing device settings that clients change over ONVIF: discovery
 * scopes (fixed and configurable) and the discovery mode. Persisted atomically
 * in the state directory; every change is all-or-nothing. Thread-safe. */
#ifndef OPENNVT_NETCFG_H
#define OPENNVT_NETCFG_H

#include <stddef.h>

#define NETCFG_MAX_SCOPES 32      /* configurable scopes at most */
#define NETCFG_SCOPE_MAX_LEN 256  /* bytes per scope URI */

enum netcfg_error {
    NETCFG_OK = 0,
    NETCFG_E_TOO_MANY = -1,      /* list would exceed NETCFG_MAX_SCOPES */
    NETCFG_E_INVALID = -2,       /* not an acceptable scope URI */
    NETCFG_E_FIXED = -3,         /* names a fixed scope */
    NETCFG_E_NO_SCOPE = -4,      /* removing a scope that does not exist */
    NETCFG_E_STORE = -5,         /* could not persist; nothing changed */
    NETCFG_E_NOMEM = -6,
};

struct netcfg;

struct netcfg_scope {
    char uri[NETCFG_SCOPE_MAX_LEN + 1];
    int fixed;
};

/* Opens (or initialises with default_scopes) state_dir/netcfg.xml.
 * fixed_scopes are permanent device characteristics, never stored. */
int netcfg_open(struct netcfg **out, const char *state_dir,
                const char *const *fixed_scopes, size_t n_fixed,
                const char *const *default_scopes, size_t n_default);
void netcfg_close(struct netcfg *nc);

/* Copies all scopes, fixed first, into a malloc'd array the caller frees. */
int netcfg_get_scopes(struct netcfg *nc, struct netcfg_scope **scopes, size_t *n);

/* Replaces the configurable scopes. */
int netcfg_set_scopes(struct netcfg *nc, const char *const *uris, size_t n);
/* Adds configurable scopes (duplicates of present scopes are ignored). */
int netcfg_add_scopes(struct netcfg *nc, const char *const *uris, size_t n);
/* Removes configurable scopes; refuses fixed or absent ones. */
int netcfg_remove_scopes(struct netcfg *nc, const char *const *uris, size_t n);

int netcfg_get_discoverable(struct netcfg *nc);
int netcfg_set_discoverable(struct netcfg *nc, int discoverable);

/* Called after any successful change (scopes or mode), outside the lock. */
void netcfg_set_change_hook(struct netcfg *nc, void (*hook)(void *arg), void *arg);

/* Returns 1 when uri is acceptable as a scope: 1..NETCFG_SCOPE_MAX_LEN
 * printable ASCII characters without spaces, with a URI scheme. */
int netcfg_scope_is_valid(const char *uri);

const char *netcfg_strerror(int err);

#endif
