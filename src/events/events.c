/* Events: the device's topic table, the event bus with the current state of
 * every property, and pull-point subscriptions (ConcreteSet topic filter,
 * termination time, bounded queue, blocking pulls). One mutex guards all
 * state; a message is copied once per publish and shared by reference
 * between the queues it lands in. */
#include "opennvt/events.h"
#include "opennvt/itemfilter.h"
#include "opennvt/log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_SUBSCRIPTIONS 32
#define DEFAULT_QUEUE_MAX 256
#define DEFAULT_MAX_TERMINATION_S 3600
/* Beyond these a setting is a configuration mistake, not a wish. */
#define LIMIT_MAX_SUBSCRIPTIONS 4096
#define LIMIT_QUEUE_MAX 65536
#define LIMIT_MAX_TERMINATION_S (366 * 86400)
/* Stored property states (topic + source). Producers have a handful of
 * sources each; past this the least recently updated state is forgotten. */
#define PROP_STATES_MAX 256
#define PULL_TIMEOUT_MAX_MS 3600000
#define PULL_MAX_MESSAGES 1024

/* --- topic table ----------------------------------------------------------- */

#define ITEM(n, t, o) { .name = (n), .type = (t), .onvif_type = (o) }

static const struct event_topic topic_table[EVENT_TOPIC_COUNT] = {
    [EVENT_TOPIC_MOTION_ALARM] = {
        .path = "tns1:VideoSource/MotionAlarm", .property = 1,
        .n_source = 1, .source = { ITEM("VideoSourceToken", EVENT_T_TOKEN, "tt:ReferenceToken") },
        .n_data = 1, .data = { ITEM("State", EVENT_T_BOOLEAN, "xs:boolean") },
    },
    [EVENT_TOPIC_GLOBAL_SCENE_CHANGE] = {
        .path = "tns1:VideoSource/GlobalSceneChange/ImagingService", .property = 1,
        .n_source = 1, .source = { ITEM("VideoSourceToken", EVENT_T_TOKEN, "tt:ReferenceToken") },
        .n_data = 1, .data = { ITEM("State", EVENT_T_BOOLEAN, "xs:boolean") },
    },
    [EVENT_TOPIC_PROFILE_CHANGED] = {
        .path = "tns1:Media/ProfileChanged", .property = 0,
        .n_source = 1, .source = { ITEM("Token", EVENT_T_TOKEN, "tt:ReferenceToken") },
        .n_data = 0,
    },
    [EVENT_TOPIC_CONFIGURATION_CHANGED] = {
        .path = "tns1:Media/ConfigurationChanged", .property = 0,
        .n_source = 2, .source = { ITEM("Token", EVENT_T_TOKEN, "tt:ReferenceToken"),
                                   ITEM("Type", EVENT_T_STRING, "xs:string") },
        .n_data = 0,
    },
    [EVENT_TOPIC_AUTH_FAILED] = {
        .path = "tns1:Device/SecurityPolicy/AuthFailed", .property = 0,
        /* As ONVIF Core describes it: the interface, and whichever address applies. */
        .n_source = 1, .source = { ITEM("NetworkInterface", EVENT_T_TOKEN, "tt:ReferenceToken") },
        .n_data = 2, .data = { ITEM("SourceIPv4", EVENT_T_STRING, "tt:IPv4Address"),
                               ITEM("SourceIPv6", EVENT_T_STRING, "tt:IPv6Address") },
    },
    [EVENT_TOPIC_KEY_STATUS] = {
        .path = "tns1:Advancedsecurity/Keystore/KeyStatus", .property = 1,
        .n_source = 1, .source = { ITEM("KeyID", EVENT_T_STRING, "xs:string") },
        .n_data = 2, .data = { ITEM("NewStatus", EVENT_T_STRING, "xs:string"),
                               ITEM("OldStatus", EVENT_T_STRING, "xs:string") },
    },
    [EVENT_TOPIC_CERT_EXPIRY] = {
        .path = "opennvt:Security/CertificateExpiry", .property = 0,
        .n_source = 1, .source = { ITEM("CertificationPathID", EVENT_T_STRING, "xs:string") },
        .n_data = 1, .data = { ITEM("DaysLeft", EVENT_T_INT, "xs:int") },
    },
};

const struct event_topic *events_topics(size_t *count)
{
    if (count)
        *count = EVENT_TOPIC_COUNT;
    return topic_table;
}

const char *events_strerror(int err)
{
    switch (err) {
    case EVENTS_OK: return "ok";
    case EVENTS_E_NO_SUBSCRIPTION: return "unknown or expired subscription";
    case EVENTS_E_FILTER: return "topic expression not understood";
    case EVENTS_E_TIME: return "unacceptable termination time";
    case EVENTS_E_FULL: return "too many subscriptions";
    case EVENTS_E_ARGS: return "argument out of range";
    case EVENTS_E_NOMEM: return "out of memory";
    case EVENTS_E_BUSY: return "another pull is already waiting on this subscription";
    }
    return "unknown error";
}

/* --- topic filter ----------------------------------------------------------- */

typedef uint32_t topic_mask;
#define ALL_TOPICS ((topic_mask)((1u << EVENT_TOPIC_COUNT) - 1))

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Topics one TopicPath [p, p+len) selects: without "//." exactly the topic
 * it names; with "//." the node it names (a topic or an inner node of the
 * tree) and everything below it. 0 when it names nothing we produce. */
static topic_mask path_mask(const char *p, size_t len)
{
    int subtree = 0;
    if (len >= 3 && memcmp(p + len - 3, "//.", 3) == 0) {
        subtree = 1;
        len -= 3;
    }
    if (len == 0)
        return 0;
    topic_mask m = 0;
    for (int t = 0; t < EVENT_TOPIC_COUNT; t++) {
        const char *tp = topic_table[t].path;
        size_t tlen = strlen(tp);
        if (len > tlen || memcmp(tp, p, len) != 0)
            continue;
        if (len == tlen || (subtree && tp[len] == '/'))
            m |= 1u << t;
    }
    return m;
}

/* Compiles a ConcreteSet expression into the set of topics it selects.
 * Blanks around each alternative are ignored (the expression arrives as XML
 * text, often on its own line); a blank-only expression selects everything,
 * like an empty one. Returns EVENTS_OK or EVENTS_E_FILTER. */
static int filter_compile(const char *f, topic_mask *out)
{
    *out = ALL_TOPICS;
    if (!f)
        return EVENTS_OK;
    size_t n = strnlen(f, EVENT_FILTER_MAX + 1);
    if (n > EVENT_FILTER_MAX)
        return EVENTS_E_FILTER;
    size_t i = 0;
    while (i < n && is_blank(f[i]))
        i++;
    if (i == n)
        return EVENTS_OK;

    topic_mask m = 0;
    size_t start = 0;
    for (size_t k = 0; k <= n; k++) {
        if (k < n && f[k] != '|')
            continue;
        size_t a = start, b = k;
        while (a < b && is_blank(f[a]))
            a++;
        while (b > a && is_blank(f[b - 1]))
            b--;
        topic_mask pm = path_mask(f + a, b - a);
        if (pm == 0)
            return EVENTS_E_FILTER;
        m |= pm;
        start = k + 1;
    }
    *out = m;
    return EVENTS_OK;
}

int events_filter_valid(const char *topic_filter)
{
    topic_mask m;
    return filter_compile(topic_filter, &m) == EVENTS_OK;
}

/* --- the bus ---------------------------------------------------------------- */

/* One published message, shared by every queue holding it; refs counts the
 * queues (guarded by the bus lock). next links free and spare lists. */
struct msg_node {
    struct event_message msg;
    int refs;
    struct msg_node *next;
};

/* The current state of one property: topic and source identify it. */
struct prop_state {
    enum event_topic_id topic;
    int n_source, n_data;
    struct event_kv source[EVENT_MAX_ITEMS], data[EVENT_MAX_ITEMS];
    uint64_t touched;               /* bus sequence of the last update, for eviction */
};

struct sub {
    uint64_t id;
    int64_t termination_ms;
    topic_mask topics;
    struct itemfilter items;        /* message content filter; no terms: all */
    struct msg_node **ring;         /* queue_max slots */
    int head, count;
    pthread_cond_t cond;            /* CLOCK_MONOTONIC; signalled on arrival, removal, close */
    int waiting;                    /* a pull is blocked on cond */
    int detached;                   /* removed from the table; the waiting pull frees it */
    struct sub *next;               /* free list */
};

struct events {
    pthread_mutex_t lock;
    pthread_cond_t idle;            /* close waits here for blocked pulls to leave */
    struct events_settings s;
    int closing;
    int shutting_down;              /* the listener is stopping: pulls no longer wait */
    int waiters;
    uint64_t next_id;
    uint64_t seq;
    struct sub **subs;              /* max_subscriptions slots, n_subs used */
    int n_subs;
    struct prop_state *states[PROP_STATES_MAX];   /* in creation order */
    int n_states;
    unsigned long long published, delivered, dropped;
    unsigned long evictions;        /* property states forgotten for lack of room */
};

/* Everything a locked section let go of, freed after the unlock. */
struct garbage {
    struct msg_node *nodes;
    struct sub *subs;
    struct prop_state *state;
};

static int64_t now_ms(const struct events *e)
{
    if (e->s.now_ms)
        return e->s.now_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nanoseconds, so that a pull never returns empty a fraction of a
 * millisecond before its timeout. */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void node_unref(struct msg_node *n, struct garbage *g)
{
    if (--n->refs == 0) {
        n->next = g->nodes;
        g->nodes = n;
    }
}

static void sub_destroy(struct sub *s)
{
    pthread_cond_destroy(&s->cond);
    free(s->ring);
    free(s);
}

static void garbage_free(struct garbage *g)
{
    while (g->nodes) {
        struct msg_node *n = g->nodes;
        g->nodes = n->next;
        free(n);
    }
    while (g->subs) {
        struct sub *s = g->subs;
        g->subs = s->next;
        sub_destroy(s);
    }
    free(g->state);
    g->state = NULL;
}

static void free_node_list(struct msg_node *n)
{
    while (n) {
        struct msg_node *next = n->next;
        free(n);
        n = next;
    }
}

/* Appends n to s's queue, dropping the oldest message when it is full (a
 * slow client loses history, never the newest news). */
static void sub_enqueue(struct events *e, struct sub *s, struct msg_node *n, struct garbage *g)
{
    int qmax = e->s.queue_max;
    if (s->count == qmax) {
        node_unref(s->ring[s->head], g);
        s->head = (s->head + 1) % qmax;
        s->count--;
        e->dropped++;
    }
    s->ring[(s->head + s->count) % qmax] = n;
    s->count++;
    n->refs++;
    e->delivered++;
    if (s->waiting)
        pthread_cond_signal(&s->cond);
}

/* Takes s out of the table and empties its queue. A blocked pull on it is
 * woken and frees it on the way out; otherwise it goes to the garbage. */
static void sub_detach(struct events *e, int idx, struct garbage *g)
{
    struct sub *s = e->subs[idx];
    e->subs[idx] = e->subs[--e->n_subs];
    e->subs[e->n_subs] = NULL;
    while (s->count > 0) {
        node_unref(s->ring[s->head], g);
        s->head = (s->head + 1) % e->s.queue_max;
        s->count--;
    }
    s->detached = 1;
    if (s->waiting) {
        pthread_cond_broadcast(&s->cond);
    } else {
        s->next = g->subs;
        g->subs = s;
    }
}

/* Expired subscriptions go lazily, at the next call of any kind. */
static void sweep(struct events *e, int64_t now, struct garbage *g)
{
    for (int i = 0; i < e->n_subs;) {
        if (e->subs[i]->termination_ms <= now)
            sub_detach(e, i, g);
        else
            i++;
    }
}

static struct sub *sub_find(struct events *e, uint64_t id)
{
    for (int i = 0; i < e->n_subs; i++)
        if (e->subs[i]->id == id)
            return e->subs[i];
    return NULL;
}

static int sub_index(struct events *e, uint64_t id)
{
    for (int i = 0; i < e->n_subs; i++)
        if (e->subs[i]->id == id)
            return i;
    return -1;
}

static int items_equal(int na, const struct event_kv *a, int nb, const struct event_kv *b)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) != 0 || strcmp(a[i].value, b[i].value) != 0)
            return 0;
    return 1;
}

static int state_find(struct events *e, const struct event_message *m)
{
    for (int i = 0; i < e->n_states; i++) {
        const struct prop_state *p = e->states[i];
        if (p->topic == m->topic && items_equal(p->n_source, p->source, m->n_source, m->source))
            return i;
    }
    return -1;
}

static void state_remove(struct events *e, int idx, struct garbage *g)
{
    struct prop_state *p = e->states[idx];
    memmove(&e->states[idx], &e->states[idx + 1], (size_t)(e->n_states - idx - 1) * sizeof e->states[0]);
    e->n_states--;
    free(g->state);                 /* NULL: a publish removes at most one state */
    g->state = p;
}

static void state_set_data(struct prop_state *p, const struct event_message *m, uint64_t seq)
{
    p->n_data = m->n_data;
    memcpy(p->data, m->data, sizeof p->data);
    p->touched = seq;
}

/* Number of stored states a subscription with these topics is sent. */
static int states_matching(const struct events *e, topic_mask topics)
{
    int n = 0;
    for (int i = 0; i < e->n_states; i++)
        if (topics & (1u << e->states[i]->topic))
            n++;
    return n;
}

/* Queues the current state of every matching property as Initialized,
 * taking nodes from *spare (the caller made sure there are enough). The
 * messages carry the time they are sent: they report the state now. */
static void queue_states(struct events *e, struct sub *s, struct msg_node **spare, struct garbage *g)
{
    int64_t now = now_ms(e);
    for (int i = 0; i < e->n_states; i++) {
        const struct prop_state *p = e->states[i];
        if (!(s->topics & (1u << p->topic)))
            continue;
        struct event_message probe = { .topic = p->topic, .n_source = p->n_source, .n_data = p->n_data };
        memcpy(probe.source, p->source, sizeof probe.source);
        memcpy(probe.data, p->data, sizeof probe.data);
        if (!itemfilter_matches(&s->items, &probe))
            continue;
        struct msg_node *n = *spare;
        *spare = n->next;
        memset(&n->msg, 0, sizeof n->msg);
        n->msg.topic = p->topic;
        n->msg.utc_ms = now;
        n->msg.op = EVENT_OP_INITIALIZED;
        n->msg.n_source = p->n_source;
        n->msg.n_data = p->n_data;
        memcpy(n->msg.source, p->source, sizeof n->msg.source);
        memcpy(n->msg.data, p->data, sizeof n->msg.data);
        n->refs = 0;
        n->next = NULL;
        sub_enqueue(e, s, n, g);
    }
}

/* Grows the spare list to at least want nodes (outside the lock). */
static int spare_reserve(struct msg_node **spare, int *have, int want)
{
    while (*have < want) {
        struct msg_node *n = malloc(sizeof *n);
        if (!n)
            return EVENTS_E_NOMEM;
        n->next = *spare;
        *spare = n;
        (*have)++;
    }
    return EVENTS_OK;
}

int events_open(struct events **out, const struct events_settings *s)
{
    if (!out)
        return EVENTS_E_ARGS;
    *out = NULL;
    struct events_settings cfg = { 0 };
    if (s)
        cfg = *s;
    if (cfg.max_subscriptions <= 0)
        cfg.max_subscriptions = DEFAULT_MAX_SUBSCRIPTIONS;
    if (cfg.queue_max <= 0)
        cfg.queue_max = DEFAULT_QUEUE_MAX;
    if (cfg.max_termination_s <= 0)
        cfg.max_termination_s = DEFAULT_MAX_TERMINATION_S;
    if (cfg.max_subscriptions > LIMIT_MAX_SUBSCRIPTIONS || cfg.queue_max > LIMIT_QUEUE_MAX ||
        cfg.max_termination_s > LIMIT_MAX_TERMINATION_S)
        return EVENTS_E_ARGS;

    struct events *e = calloc(1, sizeof *e);
    if (!e)
        return EVENTS_E_NOMEM;
    e->s = cfg;
    e->subs = calloc((size_t)cfg.max_subscriptions, sizeof e->subs[0]);
    if (!e->subs) {
        free(e);
        return EVENTS_E_NOMEM;
    }
    if (pthread_mutex_init(&e->lock, NULL) != 0) {
        free(e->subs);
        free(e);
        return EVENTS_E_NOMEM;
    }
    if (pthread_cond_init(&e->idle, NULL) != 0) {
        pthread_mutex_destroy(&e->lock);
        free(e->subs);
        free(e);
        return EVENTS_E_NOMEM;
    }
    /* Identifiers start somewhere random so that ids do not repeat across
     * restarts in practice; within one run the 64-bit counter never wraps. */
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec ^ ((uint32_t)getpid() << 16);
    }
    e->next_id = (uint64_t)r + 1;
    *out = e;
    return EVENTS_OK;
}

/* Only pulls already blocked may still be inside the bus when close is
 * called; it wakes them and waits for them to leave before freeing. */
void events_close(struct events *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->closing = 1;
    for (int i = 0; i < e->n_subs; i++)
        pthread_cond_broadcast(&e->subs[i]->cond);
    while (e->waiters > 0)
        pthread_cond_wait(&e->idle, &e->lock);
    pthread_mutex_unlock(&e->lock);

    struct garbage g = { 0 };
    while (e->n_subs > 0)
        sub_detach(e, e->n_subs - 1, &g);
    for (int i = 0; i < e->n_states; i++)
        free(e->states[i]);
    garbage_free(&g);
    pthread_cond_destroy(&e->idle);
    pthread_mutex_destroy(&e->lock);
    free(e->subs);
    free(e);
}

/* --- producers --------------------------------------------------------------- */

static void kv_terminate(struct event_kv *kv)
{
    kv->name[EVENT_ITEM_NAME_MAX] = '\0';
    kv->value[EVENT_ITEM_VALUE_MAX] = '\0';
}

/* For a property topic the op is derived from the stored state. A producer
 * may publish EVENT_OP_DELETED to say the property is gone: the state is
 * forgotten and Deleted delivered (dropped when nothing was stored). Any
 * other op it sets is ignored. */
void events_publish(struct events *e, const struct event_message *m)
{
    if (!e || !m)
        return;
    if ((unsigned)m->topic >= EVENT_TOPIC_COUNT || m->n_source < 0 || m->n_source > EVENT_MAX_ITEMS ||
        m->n_data < 0 || m->n_data > EVENT_MAX_ITEMS) {
        log_warning("events", "malformed event message ignored (topic %d, %d source, %d data items)",
                    (int)m->topic, m->n_source, m->n_data);
        return;
    }
    const struct event_topic *t = &topic_table[m->topic];
    struct msg_node *n = malloc(sizeof *n);
    struct prop_state *spare = t->property ? malloc(sizeof *spare) : NULL;
    if (!n || (t->property && !spare)) {
        log_err("events", "out of memory: %s event lost", t->path);
        free(n);
        free(spare);
        return;
    }
    memset(&n->msg, 0, sizeof n->msg);
    n->msg.topic = m->topic;
    n->msg.n_source = m->n_source;
    n->msg.n_data = m->n_data;
    memcpy(n->msg.source, m->source, (size_t)m->n_source * sizeof m->source[0]);
    memcpy(n->msg.data, m->data, (size_t)m->n_data * sizeof m->data[0]);
    for (int i = 0; i < n->msg.n_source; i++)
        kv_terminate(&n->msg.source[i]);
    for (int i = 0; i < n->msg.n_data; i++)
        kv_terminate(&n->msg.data[i]);
    n->msg.op = EVENT_OP_NONE;
    n->refs = 0;
    n->next = NULL;

    struct garbage g = { 0 };
    const char *evicted = NULL;
    unsigned long evictions = 0;
    pthread_mutex_lock(&e->lock);
    int64_t now = now_ms(e);
    n->msg.utc_ms = m->utc_ms != 0 ? m->utc_ms : now;
    sweep(e, now, &g);
    if (e->closing)
        goto out;

    if (t->property) {
        int idx = state_find(e, &n->msg);
        if (m->op == EVENT_OP_DELETED) {
            if (idx < 0)
                goto out;
            state_remove(e, idx, &g);
            n->msg.op = EVENT_OP_DELETED;
        } else if (idx < 0) {
            if (e->n_states == PROP_STATES_MAX) {
                int old = 0;
                for (int i = 1; i < e->n_states; i++)
                    if (e->states[i]->touched < e->states[old]->touched)
                        old = i;
                /* Logged the first time and then every 100th, so that a
                 * producer inventing sources cannot flood the log. */
                if (e->evictions++ % 100 == 0) {
                    evicted = topic_table[e->states[old]->topic].path;
                    evictions = e->evictions;
                }
                state_remove(e, old, &g);
            }
            struct prop_state *p = spare;
            spare = NULL;
            p->topic = n->msg.topic;
            p->n_source = n->msg.n_source;
            memcpy(p->source, n->msg.source, sizeof p->source);
            state_set_data(p, &n->msg, ++e->seq);
            e->states[e->n_states++] = p;
            n->msg.op = EVENT_OP_INITIALIZED;
        } else {
            struct prop_state *p = e->states[idx];
            if (items_equal(p->n_data, p->data, n->msg.n_data, n->msg.data))
                goto out;
            state_set_data(p, &n->msg, ++e->seq);
            n->msg.op = EVENT_OP_CHANGED;
        }
    }

    e->published++;
    for (int i = 0; i < e->n_subs; i++)
        if ((e->subs[i]->topics & (1u << n->msg.topic)) && itemfilter_matches(&e->subs[i]->items, &n->msg))
            sub_enqueue(e, e->subs[i], n, &g);
out:
    if (n->refs == 0) {
        n->next = g.nodes;
        g.nodes = n;
    }
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
    free(spare);
    if (evicted)
        log_warning("events", "%d property states stored: forgot the least recently updated (%s; %lu so far)",
                    PROP_STATES_MAX, evicted, evictions);
}

/* Values longer than the message's fields are cut to fit. */
void events_publish_simple(struct events *e, enum event_topic_id topic, const char *source_name,
                           const char *source_value, const char *data_name, const char *data_value)
{
    struct event_message m;
    memset(&m, 0, sizeof m);
    m.topic = topic;
    if (source_name) {
        snprintf(m.source[0].name, sizeof m.source[0].name, "%s", source_name);
        snprintf(m.source[0].value, sizeof m.source[0].value, "%s", source_value ? source_value : "");
        m.n_source = 1;
    }
    if (data_name) {
        snprintf(m.data[0].name, sizeof m.data[0].name, "%s", data_name);
        snprintf(m.data[0].value, sizeof m.data[0].value, "%s", data_value ? data_value : "");
        m.n_data = 1;
    }
    events_publish(e, &m);
}

/* --- subscriptions ------------------------------------------------------------- */

/* Checks a requested termination time against now. A time beyond the
 * longest lifetime we grant is shortened to it rather than refused: WS-BaseNotification
 * lets the producer pick a termination time other than the one asked for,
 * and the response tells the client what it got. */
static int termination_check(const struct events *e, int64_t now, int64_t *termination_ms)
{
    if (*termination_ms <= now)
        return EVENTS_E_TIME;
    int64_t max = now + (int64_t)e->s.max_termination_s * 1000;
    if (*termination_ms > max)
        *termination_ms = max;
    return EVENTS_OK;
}

int events_subscribe(struct events *e, const char *topic_filter, int64_t termination_ms, uint64_t *id)
{
    return events_subscribe_filtered(e, topic_filter, NULL, termination_ms, id);
}

int events_subscribe_filtered(struct events *e, const char *topic_filter, const struct itemfilter *items,
                              int64_t termination_ms, uint64_t *id)
{
    if (!e || !id)
        return EVENTS_E_ARGS;
    topic_mask topics;
    if (filter_compile(topic_filter, &topics) != EVENTS_OK)
        return EVENTS_E_FILTER;

    struct sub *s = calloc(1, sizeof *s);
    if (!s)
        return EVENTS_E_NOMEM;
    s->ring = calloc((size_t)e->s.queue_max, sizeof s->ring[0]);
    pthread_condattr_t ca;
    int cond_ok = 0;
    if (s->ring && pthread_condattr_init(&ca) == 0) {
        cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                  pthread_cond_init(&s->cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond_ok) {
        free(s->ring);
        free(s);
        return EVENTS_E_NOMEM;
    }
    s->topics = topics;
    if (items)
        s->items = *items;

    /* The state messages are allocated outside the lock; when states were
     * added in between, take more and look again. */
    struct msg_node *spare = NULL;
    int have = 0, rc;
    struct garbage g = { 0 };
    pthread_mutex_lock(&e->lock);
    for (;;) {
        int64_t now = now_ms(e);
        sweep(e, now, &g);
        if (e->closing) {
            rc = EVENTS_E_NO_SUBSCRIPTION;
            break;
        }
        if (e->n_subs >= e->s.max_subscriptions) {
            rc = EVENTS_E_FULL;
            break;
        }
        int64_t term = termination_ms;
        if ((rc = termination_check(e, now, &term)) != EVENTS_OK)
            break;
        int want = states_matching(e, topics);
        if (want > have) {
            pthread_mutex_unlock(&e->lock);
            rc = spare_reserve(&spare, &have, want);
            pthread_mutex_lock(&e->lock);
            if (rc != EVENTS_OK)
                break;
            continue;
        }
        s->id = e->next_id++;
        if (s->id == 0)
            s->id = e->next_id++;
        s->termination_ms = term;
        e->subs[e->n_subs++] = s;
        queue_states(e, s, &spare, &g);
        *id = s->id;
        s = NULL;
        break;
    }
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
    free_node_list(spare);
    if (s)
        sub_destroy(s);
    return rc;
}

int events_renew(struct events *e, uint64_t id, int64_t termination_ms)
{
    if (!e)
        return EVENTS_E_ARGS;
    struct garbage g = { 0 };
    int rc = EVENTS_E_NO_SUBSCRIPTION;
    pthread_mutex_lock(&e->lock);
    int64_t now = now_ms(e);
    sweep(e, now, &g);
    struct sub *s = e->closing ? NULL : sub_find(e, id);
    if (s && (rc = termination_check(e, now, &termination_ms)) == EVENTS_OK)
        s->termination_ms = termination_ms;
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
    return rc;
}

int events_unsubscribe(struct events *e, uint64_t id)
{
    if (!e)
        return EVENTS_E_ARGS;
    struct garbage g = { 0 };
    int rc = EVENTS_E_NO_SUBSCRIPTION;
    pthread_mutex_lock(&e->lock);
    sweep(e, now_ms(e), &g);
    int idx = e->closing ? -1 : sub_index(e, id);
    if (idx >= 0) {
        sub_detach(e, idx, &g);
        rc = EVENTS_OK;
    }
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
    return rc;
}

int events_sync(struct events *e, uint64_t id)
{
    if (!e)
        return EVENTS_E_ARGS;
    struct msg_node *spare = NULL;
    int have = 0, rc;
    struct garbage g = { 0 };
    pthread_mutex_lock(&e->lock);
    for (;;) {
        sweep(e, now_ms(e), &g);
        struct sub *s = e->closing ? NULL : sub_find(e, id);
        if (!s) {
            rc = EVENTS_E_NO_SUBSCRIPTION;
            break;
        }
        int want = states_matching(e, s->topics);
        if (want > have) {
            pthread_mutex_unlock(&e->lock);
            rc = spare_reserve(&spare, &have, want);
            pthread_mutex_lock(&e->lock);
            if (rc != EVENTS_OK)
                break;
            continue;
        }
        queue_states(e, s, &spare, &g);
        rc = EVENTS_OK;
        break;
    }
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
    free_node_list(spare);
    return rc;
}

static struct timespec mono_deadline(int64_t at_ns)
{
    struct timespec ts = { .tv_sec = at_ns / 1000000000, .tv_nsec = (long)(at_ns % 1000000000) };
    return ts;
}

/* A blocked pull ends with NO_SUBSCRIPTION when its subscription is
 * unsubscribed, reaches its termination time or the bus closes: ONVIF
 * allows an empty answer only at the timeout, and the subscription is gone. */
int events_pull(struct events *e, uint64_t id, int timeout_ms, struct event_message *out, int max,
                int64_t *termination_ms)
{
    if (!e || !out || timeout_ms < 0 || timeout_ms > PULL_TIMEOUT_MAX_MS || max < 1 || max > PULL_MAX_MESSAGES)
        return EVENTS_E_ARGS;
    struct garbage g = { 0 };
    int rc = EVENTS_OK;
    pthread_mutex_lock(&e->lock);
    sweep(e, now_ms(e), &g);
    struct sub *s = e->closing ? NULL : sub_find(e, id);
    if (!s) {
        rc = EVENTS_E_NO_SUBSCRIPTION;
        goto out;
    }
    if (s->waiting) {
        rc = EVENTS_E_BUSY;
        goto out;
    }
    if (s->count == 0 && timeout_ms > 0 && !e->shutting_down) {
        int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
        s->waiting = 1;
        e->waiters++;
        for (;;) {
            if (e->closing || s->detached) {
                rc = EVENTS_E_NO_SUBSCRIPTION;
                break;
            }
            if (s->count > 0 || e->shutting_down)
                break;
            int64_t utc = now_ms(e), mono = mono_ns();
            if (s->termination_ms <= utc) {
                s->waiting = 0;     /* so that detaching hands it to the garbage */
                sub_detach(e, sub_index(e, id), &g);
                rc = EVENTS_E_NO_SUBSCRIPTION;
                break;
            }
            if (mono >= deadline)
                break;
            /* Wake at the timeout or the termination time, whichever is
             * first; a renewal meanwhile just means waiting again. */
            int64_t wake = deadline;
            if (s->termination_ms - utc < (wake - mono) / 1000000)
                wake = mono + (s->termination_ms - utc) * 1000000;
            struct timespec ts = mono_deadline(wake);
            pthread_cond_timedwait(&s->cond, &e->lock, &ts);
        }
        if (s->waiting && s->detached) {
            s->next = g.subs;
            g.subs = s;
        }
        s->waiting = 0;
        e->waiters--;
        if (e->closing && e->waiters == 0)
            pthread_cond_broadcast(&e->idle);
        if (rc != EVENTS_OK)
            goto out;
    }
    int taken = 0;
    while (taken < max && s->count > 0) {
        struct msg_node *n = s->ring[s->head];
        out[taken++] = n->msg;
        s->head = (s->head + 1) % e->s.queue_max;
        s->count--;
        node_unref(n, &g);
    }
    if (termination_ms)
        *termination_ms = s->termination_ms;
    rc = taken;
out:
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
    return rc;
}

void events_shutdown(struct events *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->shutting_down = 1;
    for (int i = 0; i < e->n_subs; i++)
        pthread_cond_broadcast(&e->subs[i]->cond);
    pthread_mutex_unlock(&e->lock);
}

int events_termination(struct events *e, uint64_t id, int64_t *termination_ms)
{
    if (!e || !termination_ms)
        return EVENTS_E_ARGS;
    struct garbage g = { 0 };
    pthread_mutex_lock(&e->lock);
    sweep(e, now_ms(e), &g);
    struct sub *s = e->closing ? NULL : sub_find(e, id);
    if (s)
        *termination_ms = s->termination_ms;
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
    return s ? EVENTS_OK : EVENTS_E_NO_SUBSCRIPTION;
}

void events_get_stats(struct events *e, struct events_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!e)
        return;
    struct garbage g = { 0 };
    pthread_mutex_lock(&e->lock);
    sweep(e, now_ms(e), &g);
    out->subscriptions = e->n_subs;
    out->published = e->published;
    out->delivered = e->delivered;
    out->dropped = e->dropped;
    pthread_mutex_unlock(&e->lock);
    garbage_free(&g);
}
