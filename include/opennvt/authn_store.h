/* Persistence of the authentication settings clients change over ONVIF:
 * the failure monitoring policy (SetAuthFailureWarningConfiguration) and the
 * HTTP/RTSP Digest algorithms (SetHashingAlgorithm), in state_dir/authn.xml. */
#ifndef OPENNVT_AUTHN_STORE_H
#define OPENNVT_AUTHN_STORE_H

#include "opennvt/authn.h"

struct authn_stored {
    struct authn_failure_policy failure;
    unsigned digest_algorithms;   /* AUTHN_ALG_* bits */
};

/* Loads the stored settings into s. Returns 0, -ENOENT when none are stored
 * (s untouched), or -EINVAL / another -errno for an unreadable file. */
int authn_store_load(const char *state_dir, struct authn_stored *s);

/* Stores s atomically. Returns 0 or -errno. */
int authn_store_save(const char *state_dir, const struct authn_stored *s);

#endif
