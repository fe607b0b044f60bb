/* The device's permanent identity: a UUID generated once and persisted in the
 * state directory (the WS-Discovery endpoint reference). */
#ifndef OPENNVT_DEVICEID_H
#define OPENNVT_DEVICEID_H

#define DEVICEID_UUID_LEN 36

/* Loads state_dir/device-uuid, creating it on first start.
 * uuid receives 36 characters plus NUL. Returns 0 or -errno. */
int deviceid_load_or_create(const char *state_dir, char uuid[DEVICEID_UUID_LEN + 1]);

/* Returns 1 when s is a canonical lowercase RFC 4122 UUID string. */
int deviceid_is_valid_uuid(const char *s);

#endif
