/* Device UUID: random (version 4) from OpenSSL's CSPRNG, persisted atomically. */
#include "opennvt/deviceid.h"
#include "opennvt/atomicfile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

int deviceid_is_valid_uuid(const char *s)
{
    if (!s || strlen(s) != DEVICEID_UUID_LEN)
        return 0;
    for (int i = 0; i < DEVICEID_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

int deviceid_load_or_create(const char *state_dir, char uuid[DEVICEID_UUID_LEN + 1])
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/device-uuid", state_dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(path, 256, &data, &len);
    if (rc == 0) {
        data[strcspn(data, "\r\n")] = '\0';
        int ok = deviceid_is_valid_uuid(data);
        if (ok)
            memcpy(uuid, data, DEVICEID_UUID_LEN + 1);
        free(data);
        return ok ? 0 : -EINVAL;
    }
    if (rc != -ENOENT)
        return rc;
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -EIO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(uuid, DEVICEID_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    char line[DEVICEID_UUID_LEN + 2];
    snprintf(line, sizeof line, "%s\n", uuid);
    return atomicfile_write(path, line, strlen(line), 0600);
}
