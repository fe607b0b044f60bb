/* The ONVIF access policy: every SOAP operation has an access class (one
 * table, src/onvif/access_table.c), and each user level may use a fixed set
 * of classes (the ONVIF default access policy, Core "Default Access Policy").
 * The gate asks both before any handler runs; an operation missing from the
 * table is denied. */
#ifndef OPENNVT_ACCESSPOLICY_H
#define OPENNVT_ACCESSPOLICY_H

#include "opennvt/users.h"

enum access_class {
    ACCESS_PRE_AUTH = 0,
    ACCESS_READ_SYSTEM,
    ACCESS_READ_SYSTEM_SENSITIVE,
    ACCESS_READ_SYSTEM_SECRET,
    ACCESS_WRITE_SYSTEM,
    ACCESS_UNRECOVERABLE,
    ACCESS_READ_MEDIA,
    ACCESS_ACTUATE,
    ACCESS_NEVER,          /* not served on the SOAP endpoints (e.g. WS-Discovery messages) */
    ACCESS_CLASS_COUNT
};

#define ACCESS_BIT(c) (1u << (c))

/* The class of an operation named by its qualified element ("tds:GetUsers",
 * prefixes as in the generated namespace table). Returns 0, or -1 when the
 * operation is not in the table (callers deny). */
int accesspolicy_class_of(const char *operation, enum access_class *cls);

/* Number of entries in the operation table, and entry i (for tests). */
size_t accesspolicy_table_size(void);
const char *accesspolicy_table_operation(size_t i);

/* 1 when a principal of this level may use the class. anonymous_classes adds
 * classes granted to unauthenticated requests (configurable; default none,
 * ACCESS_BIT(ACCESS_READ_MEDIA) for public viewing). */
int accesspolicy_level_may(enum user_level level, enum access_class cls, unsigned anonymous_classes);

const char *accesspolicy_class_name(enum access_class cls);

#endif
