/* Events: the device's topic set (one table that GetEventProperties and the
 * producers share), the event bus producers publish on, and pull-point
 * subscriptions (topic filter in the ONVIF concrete-set dialect, termination
 * time, a bounded queue per subscription, blocking pulls). Property topics
 * keep their current state per source, so a subscription starts with it
 * ("Initialized") and SetSynchronizationPoint re-sends it. Thread-safe. No
 * gSOAP types: the Events service translates. */
#ifndef OPENNVT_EVENTS_H
#define OPENNVT_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EVENT_MAX_ITEMS 4              /* source or data items per message */
#define EVENT_ITEM_NAME_MAX 32
#define EVENT_ITEM_VALUE_MAX 128
#define EVENT_FILTER_MAX 1024          /* topic expression length */

enum events_error {
    EVENTS_OK = 0,
    EVENTS_E_NO_SUBSCRIPTION = -1,     /* unknown or expired subscription (wsrf ResourceUnknown) */
    EVENTS_E_FILTER = -2,              /* topic expression not understood (wsnt:InvalidTopicExpressionFault) */
    EVENTS_E_TIME = -3,                /* termination time in the past / too far (UnacceptableTerminationTime) */
    EVENTS_E_FULL = -4,                /* too many subscriptions */
    EVENTS_E_ARGS = -5,                /* out-of-range timeout / limit */
    EVENTS_E_NOMEM = -6,
    EVENTS_E_BUSY = -7,                /* another PullMessages is already waiting on this subscription */
};

enum event_value_type { EVENT_T_BOOLEAN, EVENT_T_STRING, EVENT_T_TOKEN, EVENT_T_INT, EVENT_T_DATETIME };

struct event_item_decl {
    const char *name;                  /* "VideoSourceConfigurationToken" */
    enum event_value_type type;        /* xs type in the message description */
    const char *onvif_type;            /* "tt:ReferenceToken", "xs:boolean", ... */
};

/* One topic the device produces, declared once. */
struct event_topic {
    const char *path;                  /* "tns1:VideoSource/MotionAlarm" (prefixes tns1:, tt:, opennvt:) */
    int property;                      /* 1: a property (state; Initialized/Changed/Deleted) */
    int n_source, n_data;
    struct event_item_decl source[EVENT_MAX_ITEMS], data[EVENT_MAX_ITEMS];
};

/* Topic indexes (positions in the table). */
enum event_topic_id {
    EVENT_TOPIC_MOTION_ALARM,          /* tns1:VideoSource/MotionAlarm: Source VideoSourceToken; Data State */
    EVENT_TOPIC_GLOBAL_SCENE_CHANGE,   /* tns1:VideoSource/GlobalSceneChange/ImagingService: Source VideoSourceToken; Data State */
    EVENT_TOPIC_PROFILE_CHANGED,       /* tns1:Media/ProfileChanged: Source Token */
    EVENT_TOPIC_CONFIGURATION_CHANGED, /* tns1:Media/ConfigurationChanged: Source Token, Type */
    EVENT_TOPIC_AUTH_FAILED,           /* tns1:Device/SecurityPolicy/AuthFailed: Source NetworkInterface; Data SourceIPv4 or SourceIPv6 */
    EVENT_TOPIC_KEY_STATUS,            /* tns1:Advancedsecurity/Keystore/KeyStatus: Source KeyID; Data NewStatus, OldStatus */
    EVENT_TOPIC_CERT_EXPIRY,           /* opennvt:Security/CertificateExpiry: Source CertificationPathID; Data DaysLeft */
    EVENT_TOPIC_COUNT
};

const struct event_topic *events_topics(size_t *count);

enum event_op { EVENT_OP_NONE, EVENT_OP_INITIALIZED, EVENT_OP_CHANGED, EVENT_OP_DELETED };

struct event_kv {
    char name[EVENT_ITEM_NAME_MAX + 1];
    char value[EVENT_ITEM_VALUE_MAX + 1];
};

struct event_message {
    enum event_topic_id topic;
    int64_t utc_ms;                    /* UtcTime, milliseconds since 1970 */
    enum event_op op;                  /* PropertyOperation for property topics, NONE otherwise */
    int n_source, n_data;
    struct event_kv source[EVENT_MAX_ITEMS], data[EVENT_MAX_ITEMS];
};

struct events_settings {
    int max_subscriptions;             /* pull points at once (default 32) */
    int queue_max;                     /* messages kept per subscription; the oldest go first (default 256) */
    int max_termination_s;             /* longest subscription lifetime a client may ask for (default 3600) */
    int64_t (*now_ms)(void);           /* UTC clock; NULL: the system clock */
};

struct events;

int events_open(struct events **out, const struct events_settings *s);
/* Wakes every waiting pull (they return what they have) and frees all. */
void events_close(struct events *e);
/* Before the listener stops: wakes every waiting pull, and later pulls
 * return at once; subscriptions stay until events_close. */
void events_shutdown(struct events *e);

/* Producers: helpers fill m (topic, items); utc_ms 0 = now. For a property
 * topic the op is derived: Initialized the first time a source (its source
 * items' values) is seen, Changed after; a publish that changes nothing in
 * the data is dropped. Never blocks on subscribers. */
void events_publish(struct events *e, const struct event_message *m);
/* Convenience: one source item and one data item. */
void events_publish_simple(struct events *e, enum event_topic_id topic, const char *source_name,
                           const char *source_value, const char *data_name, const char *data_value);

/* Parses a topic expression (ConcreteSet dialect: paths joined by '|', a
 * trailing "//." matching every topic below, e.g. "tns1:VideoSource//.|tns1:Media/ProfileChanged");
 * NULL or "" subscribes to everything. termination_ms: absolute UTC ms.
 * The new subscription's queue starts with the current state of every
 * matching property. *id receives its number (never 0, never reused). */
int events_subscribe(struct events *e, const char *topic_filter, int64_t termination_ms, uint64_t *id);
/* The same with a message content filter (itemfilter.h): only messages it
 * matches are queued (NULL: all). */
struct itemfilter;
int events_subscribe_filtered(struct events *e, const char *topic_filter, const struct itemfilter *items,
                              int64_t termination_ms, uint64_t *id);
int events_renew(struct events *e, uint64_t id, int64_t termination_ms);
int events_unsubscribe(struct events *e, uint64_t id);
/* Takes up to max messages; waits up to timeout_ms when none is queued
 * (returns 0 messages at the timeout). Returns the count or a negative
 * events_error. *termination_ms gets the subscription's termination time. */
int events_pull(struct events *e, uint64_t id, int timeout_ms, struct event_message *out, int max,
                int64_t *termination_ms);
/* The subscription's termination time (UTC ms), as the module keeps it
 * (lifetimes longer than the maximum are clamped). */
int events_termination(struct events *e, uint64_t id, int64_t *termination_ms);
/* SetSynchronizationPoint: queues the current state of every matching property. */
int events_sync(struct events *e, uint64_t id);
/* 1 when the expression is valid (for the fault before subscribing). */
int events_filter_valid(const char *topic_filter);

struct events_stats {
    int subscriptions;
    unsigned long long published, delivered, dropped;   /* dropped: queue overflow */
};
void events_get_stats(struct events *e, struct events_stats *out);

const char *events_strerror(int err);

#endif
