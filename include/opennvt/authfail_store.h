/* Persistence of the authentication failure monitoring policy
 * (state_dir/authfail.xml), which clients change with
 * SetAuthFailureWarningConfiguration. */
#ifndef OPENNVT_AUTHFAIL_STORE_H
#define OPENNVT_AUTHFAIL_STORE_H

#include "opennvt/authn.h"

/* Loads the stored policy into p. Returns 0, -ENOENT when none is stored (p
 * untouched), or another -errno / -EINVAL for an unreadable file. */
int authfail_store_load(const char *state_dir, struct authn_failure_policy *p);

/* Stores p atomically. Returns 0 or -errno. */
int authfail_store_save(const char *state_dir, const struct authn_failure_policy *p);

#endif
