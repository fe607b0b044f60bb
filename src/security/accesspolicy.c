/* Which user levels may use which access classes: the ONVIF default access
 * policy (Core, "Default Access Policy Definition"), plus the classes the
 * configuration grants to anonymous requests. */
#include "opennvt/accesspolicy.h"

static const unsigned level_classes[] = {
    [USER_LEVEL_ADMINISTRATOR] = ACCESS_BIT(ACCESS_PRE_AUTH) | ACCESS_BIT(ACCESS_READ_SYSTEM) |
                                 ACCESS_BIT(ACCESS_READ_SYSTEM_SENSITIVE) | ACCESS_BIT(ACCESS_READ_SYSTEM_SECRET) |
                                 ACCESS_BIT(ACCESS_WRITE_SYSTEM) | ACCESS_BIT(ACCESS_UNRECOVERABLE) |
                                 ACCESS_BIT(ACCESS_READ_MEDIA) | ACCESS_BIT(ACCESS_ACTUATE),
    [USER_LEVEL_OPERATOR] = ACCESS_BIT(ACCESS_PRE_AUTH) | ACCESS_BIT(ACCESS_READ_SYSTEM) |
                            ACCESS_BIT(ACCESS_READ_SYSTEM_SENSITIVE) | ACCESS_BIT(ACCESS_READ_MEDIA) |
                            ACCESS_BIT(ACCESS_ACTUATE),
    [USER_LEVEL_USER] = ACCESS_BIT(ACCESS_PRE_AUTH) | ACCESS_BIT(ACCESS_READ_SYSTEM) | ACCESS_BIT(ACCESS_READ_MEDIA),
    [USER_LEVEL_ANONYMOUS] = ACCESS_BIT(ACCESS_PRE_AUTH),
};

/* Anonymous may be granted media viewing at most: never system access. */
#define ANONYMOUS_GRANTABLE ACCESS_BIT(ACCESS_READ_MEDIA)

int accesspolicy_level_may(enum user_level level, enum access_class cls, unsigned anonymous_classes)
{
    if ((unsigned)level > USER_LEVEL_ANONYMOUS || (unsigned)cls >= ACCESS_NEVER)
        return 0;
    unsigned allowed = level_classes[level];
    if (level == USER_LEVEL_ANONYMOUS)
        allowed |= anonymous_classes & ANONYMOUS_GRANTABLE;
    return (allowed & ACCESS_BIT(cls)) != 0;
}

const char *accesspolicy_class_name(enum access_class cls)
{
    static const char *const names[] = {
        "PRE_AUTH", "READ_SYSTEM", "READ_SYSTEM_SENSITIVE", "READ_SYSTEM_SECRET",
        "WRITE_SYSTEM", "UNRECOVERABLE", "READ_MEDIA", "ACTUATE", "NEVER",
    };
    return (unsigned)cls < ACCESS_CLASS_COUNT ? names[cls] : "?";
}
