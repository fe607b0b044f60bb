/* Events service (tev): pull-point subscriptions over the events module.
 * Thin handlers: topic expressions and times are parsed here, every rule
 * (filters, queues, expiry, limits) lives in events.c. A subscription is
 * addressed by its own endpoint, EVENTS_SUBSCRIPTION_PATH<id>, on the same
 * listener. Messages and the topic set are written as literal XML in the
 * tt:Message / wstop:TopicSet schema. */
#include "opennvt/events.h"
#include "opennvt/itemfilter.h"
#include "opennvt/log.h"
#include "opennvt/onvif.h"
#include "soap_values.h"
#include "soapH.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONCRETE_SET_DIALECT "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
#define CONCRETE_DIALECT "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
#define DEFAULT_TERMINATION_S 60
#define PULL_MAX_TIMEOUT_S 600          /* longer waits are clamped */
#define PULL_MAX_MESSAGES 1024          /* larger limits are clamped */

static struct events *events_of(struct soap *soap)
{
    return onvif_request_of(soap)->dev->events;
}

static int64_t now_utc_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int events_fault(struct soap *soap, int err)
{
    const char *why = events_strerror(err);
    switch (err) {
    case EVENTS_E_NO_SUBSCRIPTION:
        return onvif_sender_fault(soap, "wsrfr:ResourceUnknownFault", NULL, why);
    case EVENTS_E_FILTER:
        return onvif_sender_fault(soap, "wsnt:InvalidTopicExpressionFault", NULL, why);
    case EVENTS_E_TIME:
        return onvif_sender_fault(soap, "wsnt:UnacceptableInitialTerminationTimeFault", NULL, why);
    case EVENTS_E_FULL:
        return onvif_receiver_fault(soap, "ter:Action", "ter:MaxPullPoints", why);
    case EVENTS_E_ARGS:
    case EVENTS_E_BUSY:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, why);
    default:
        return onvif_receiver_fault(soap, "ter:Action", NULL, why);
    }
}

/* The subscription a request is addressed to (its endpoint path). */
static int subscription_of(struct soap *soap, uint64_t *id)
{
    const char *path = soap->path;
    size_t n = strlen(EVENTS_SUBSCRIPTION_PATH);
    if (!path || strncmp(path, EVENTS_SUBSCRIPTION_PATH, n) != 0)
        return -1;
    const char *digits = path + n;
    if (!*digits || strlen(digits) > 20)
        return -1;
    uint64_t v = 0;
    for (const char *p = digits; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *id = v;
    return v ? 0 : -1;
}

/* A termination time: an xs:duration from now or an absolute xs:dateTime.
 * NULL/empty: fallback_s from now. -1 when it is neither. */
static int64_t termination_of(struct soap *soap, const char *text, int fallback_s)
{
    int64_t now = now_utc_ms();
    if (!text || !*text)
        return now + (int64_t)fallback_s * 1000;
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    if (text[0] == 'P') {
        long s = onvif_duration_seconds(text);
        return s < 0 ? -1 : now + (int64_t)s * 1000;
    }
    time_t t;
    if (soap_s2dateTime(soap, text, &t) != SOAP_OK) {
        soap->error = SOAP_OK;
        return -1;
    }
    return (int64_t)t * 1000;
}

/* ---- topic expressions ------------------------------------------------------------------------ */

/* The local part of a topic path ("tns1:VideoSource/MotionAlarm" -> "VideoSource/MotionAlarm"). */
static const char *local_path(const char *p)
{
    const char *colon = strchr(p, ':');
    const char *slash = strchr(p, '/');
    return colon && (!slash || colon < slash) ? colon + 1 : p;
}

/* Clients write the topic namespace with whatever prefix they declared; the
 * events module speaks our prefixes. Each alternative's prefix is replaced
 * by the one of the table topic with that local path. */
static int normalise_expression(const char *in, char *out, size_t outlen)
{
    size_t n_topics;
    const struct event_topic *topics = events_topics(&n_topics);
    size_t o = 0;
    const char *p = in;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r' || p[len - 1] == '\n'))
            len--;
        char alt[EVENT_FILTER_MAX + 1];
        if (len == 0 || len > EVENT_FILTER_MAX)
            return -1;
        memcpy(alt, p, len);
        alt[len] = '\0';
        const char *lp = local_path(alt);
        const char *prefix = NULL;
        size_t lp_len = strcspn(lp, "/");
        for (size_t i = 0; i < n_topics && !prefix; i++) {
            const char *tl = local_path(topics[i].path);
            if (strncmp(tl, lp, lp_len) == 0 && (tl[lp_len] == '/' || tl[lp_len] == '\0'))
                prefix = topics[i].path;
        }
        int k;
        if (prefix) {
            size_t plen = (size_t)(local_path(prefix) - prefix);
            k = snprintf(out + o, outlen - o, "%s%.*s%s", o ? "|" : "", (int)plen, prefix, lp);
        } else {
            k = snprintf(out + o, outlen - o, "%s%s", o ? "|" : "", alt);   /* the module refuses it */
        }
        if (k < 0 || (size_t)k >= outlen - o)
            return -1;
        o += (size_t)k;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* The text and dialect of one child element of a wsnt:Filter (literal XML).
 * Returns 1 found, 0 absent, -1 unreadable. */
static int filter_part(const char *xml, const char *element, char *dialect, size_t dlen, char *text, size_t tlen)
{
    text[0] = dialect[0] = '\0';
    const char *te = xml ? strstr(xml, element) : NULL;
    while (te && te > xml && te[-1] != '<' && te[-1] != ':')
        te = strstr(te + 1, element);
    if (!te)
        return 0;
    const char *tag_end = strchr(te, '>');
    if (!tag_end)
        return -1;
    const char *d = strstr(te, "Dialect=");
    if (d && d < tag_end) {
        char q = d[8];
        const char *dv = d + 9, *de = strchr(dv, q);
        if ((q != '"' && q != '\'') || !de || de > tag_end || (size_t)(de - dv) >= dlen)
            return -1;
        memcpy(dialect, dv, (size_t)(de - dv));
        dialect[de - dv] = '\0';
    }
    if (tag_end[-1] == '/')
        return 1;
    const char *t = tag_end + 1, *close = strchr(t, '<');
    if (!close || (size_t)(close - t) >= tlen)
        return -1;
    /* XML text: the entities an expression uses */
    size_t o = 0;
    for (const char *p = t; p < close; p++) {
        static const struct { const char *ent; char c; } ents[] = {
            { "&quot;", '"' }, { "&apos;", '\'' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' } };
        char c = *p;
        for (size_t k = 0; k < sizeof ents / sizeof ents[0]; k++)
            if (strncmp(p, ents[k].ent, strlen(ents[k].ent)) == 0) {
                c = ents[k].c;
                p += strlen(ents[k].ent) - 1;
                break;
            }
        text[o++] = c;
    }
    text[o] = '\0';
    return 1;
}

/* ---- messages as XML ----------------------------------------------------------------------------- */

struct xmlbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void xb_add(struct xmlbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void xb_str(struct xmlbuf *b, const char *s)
{
    xb_add(b, s, strlen(s));
}

/* Attribute-safe text. */
static void xb_esc(struct xmlbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': xb_str(b, "&lt;"); break;
        case '>': xb_str(b, "&gt;"); break;
        case '&': xb_str(b, "&amp;"); break;
        case '"': xb_str(b, "&quot;"); break;
        case '\'': xb_str(b, "&apos;"); break;
        default:
            if ((unsigned char)*s < 0x20)
                xb_str(b, " ");
            else
                xb_add(b, s, 1);
        }
    }
}

static void xb_items(struct xmlbuf *b, const char *element, const struct event_kv *kv, int n)
{
    if (n <= 0)
        return;
    xb_str(b, "<tt:");
    xb_str(b, element);
    xb_str(b, ">");
    for (int i = 0; i < n; i++) {
        xb_str(b, "<tt:SimpleItem Name=\"");
        xb_esc(b, kv[i].name);
        xb_str(b, "\" Value=\"");
        xb_esc(b, kv[i].value);
        xb_str(b, "\"/>");
    }
    xb_str(b, "</tt:");
    xb_str(b, element);
    xb_str(b, ">");
}

static char *message_xml(struct soap *soap, const struct event_message *m)
{
    static const char *ops[] = { NULL, "Initialized", "Changed", "Deleted" };
    struct xmlbuf b = { 0 };
    char utc[64];
    time_t secs = (time_t)(m->utc_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(utc, sizeof utc, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(m->utc_ms % 1000));
    xb_str(&b, "<tt:Message UtcTime=\"");
    xb_str(&b, utc);
    xb_str(&b, "\"");
    if (m->op != EVENT_OP_NONE && m->op <= EVENT_OP_DELETED) {
        xb_str(&b, " PropertyOperation=\"");
        xb_str(&b, ops[m->op]);
        xb_str(&b, "\"");
    }
    xb_str(&b, ">");
    xb_items(&b, "Source", m->source, m->n_source);
    xb_items(&b, "Data", m->data, m->n_data);
    xb_str(&b, "</tt:Message>");
    char *out = b.failed ? NULL : soap_strdup(soap, b.p);
    free(b.p);
    return out;
}

/* ---- the topic set ---------------------------------------------------------------------------------- */

static void description_xml(struct xmlbuf *b, const struct event_topic *t)
{
    xb_str(b, t->property ? "<tt:MessageDescription IsProperty=\"true\">" : "<tt:MessageDescription>");
    for (int part = 0; part < 2; part++) {
        int n = part ? t->n_data : t->n_source;
        const struct event_item_decl *d = part ? t->data : t->source;
        if (!n)
            continue;
        xb_str(b, part ? "<tt:Data>" : "<tt:Source>");
        for (int i = 0; i < n; i++) {
            xb_str(b, "<tt:SimpleItemDescription Name=\"");
            xb_esc(b, d[i].name);
            xb_str(b, "\" Type=\"");
            /* xs: is declared as xsd in our envelopes */
            xb_str(b, strncmp(d[i].onvif_type, "xs:", 3) == 0 ? "xsd:" : "");
            xb_esc(b, strncmp(d[i].onvif_type, "xs:", 3) == 0 ? d[i].onvif_type + 3 : d[i].onvif_type);
            xb_str(b, "\"/>");
        }
        xb_str(b, part ? "</tt:Data>" : "</tt:Source>");
    }
    xb_str(b, "</tt:MessageDescription>");
}

/* The topic tree: topics sorted by path share their common ancestors. */
static char *topic_set_xml(struct soap *soap)
{
    size_t n;
    const struct event_topic *topics = events_topics(&n);
    const struct event_topic *sorted[EVENT_TOPIC_COUNT];
    for (size_t i = 0; i < n && i < EVENT_TOPIC_COUNT; i++)
        sorted[i] = &topics[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(sorted[j - 1]->path, sorted[j]->path) > 0; j--) {
            const struct event_topic *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    struct xmlbuf b = { 0 };
    char open[8][64];      /* element names currently open */
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        /* Split "prefix:A/B/C" into prefix:A, prefix:B, prefix:C. */
        char names[8][64];
        int k = 0;
        const char *lp = local_path(sorted[i]->path);
        size_t plen = (size_t)(lp - sorted[i]->path);
        for (const char *p = lp; *p && k < 8; k++) {
            size_t len = strcspn(p, "/");
            snprintf(names[k], sizeof names[k], "%.*s%.*s", (int)plen, sorted[i]->path, (int)len, p);
            p += len;
            if (*p == '/')
                p++;
        }
        int common = 0;
        while (common < depth && common < k - 1 && strcmp(open[common], names[common]) == 0)
            common++;
        while (depth > common) {
            depth--;
            xb_str(&b, "</");
            xb_str(&b, open[depth]);
            xb_str(&b, ">");
        }
        for (; depth < k - 1; depth++) {
            xb_str(&b, "<");
            xb_str(&b, names[depth]);
            xb_str(&b, ">");
            memcpy(open[depth], names[depth], sizeof open[depth]);
        }
        xb_str(&b, "<");
        xb_str(&b, names[k - 1]);
        xb_str(&b, " wstop:topic=\"true\">");
        description_xml(&b, sorted[i]);
        xb_str(&b, "</");
        xb_str(&b, names[k - 1]);
        xb_str(&b, ">");
    }
    while (depth > 0) {
        depth--;
        xb_str(&b, "</");
        xb_str(&b, open[depth]);
        xb_str(&b, ">");
    }
    char *out = b.failed ? NULL : soap_strdup(soap, b.p ? b.p : "");
    free(b.p);
    return out;
}

/* ---- capabilities ------------------------------------------------------------------------------------- */

static int max_pull_points(struct soap *soap)
{
    const struct opennvt_config *cfg = onvif_request_of(soap) ? onvif_request_of(soap)->dev->cfg : NULL;
    return cfg && cfg->events_max_subscriptions > 0 ? cfg->events_max_subscriptions : 32;
}

char *onvif_events_capabilities_xml(struct soap *soap)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "<tev:Capabilities WSSubscriptionPolicySupport=\"false\" "
             "WSPausableSubscriptionManagerInterfaceSupport=\"false\" MaxNotificationProducers=\"0\" "
             "MaxPullPoints=\"%d\" PersistentNotificationStorage=\"false\"/>",
             max_pull_points(soap));
    return soap_strdup(soap, buf);
}

int __tev__GetServiceCapabilities(struct soap *soap, struct _tev__GetServiceCapabilities *req,
                                  struct _tev__GetServiceCapabilitiesResponse *resp)
{
    (void)req;
    struct tev__Capabilities *c = onvif_zalloc(soap, sizeof *c);
    if (!c)
        return SOAP_EOM;
    c->WSSubscriptionPolicySupport = onvif_bool(soap, 0);
    c->WSPausableSubscriptionManagerInterfaceSupport = onvif_bool(soap, 0);
    c->MaxNotificationProducers = onvif_int(soap, 0);
    c->MaxPullPoints = onvif_int(soap, max_pull_points(soap));
    c->PersistentNotificationStorage = onvif_bool(soap, 0);
    resp->Capabilities = c;
    return SOAP_OK;
}

int __tev__GetEventProperties(struct soap *soap, struct _tev__GetEventProperties *req,
                              struct _tev__GetEventPropertiesResponse *resp)
{
    (void)req;
    static char *namespace_location[] = { "http://www.onvif.org/onvif/ver10/topics/topicns.xml" };
    static char *dialects[] = { CONCRETE_SET_DIALECT, CONCRETE_DIALECT };
    static char *schema[] = { "http://www.onvif.org/onvif/ver10/schema/onvif.xsd" };
    resp->__sizeTopicNamespaceLocation = 1;
    resp->TopicNamespaceLocation = namespace_location;
    resp->wsnt__FixedTopicSet = xsd__boolean__true_;
    resp->wstop__TopicSet = onvif_zalloc(soap, sizeof *resp->wstop__TopicSet);
    if (!resp->wstop__TopicSet || !(resp->wstop__TopicSet->__any = topic_set_xml(soap)))
        return SOAP_EOM;
    resp->__sizeTopicExpressionDialect = 2;
    resp->wsnt__TopicExpressionDialect = dialects;
    static char *content_dialects[] = { ITEMFILTER_DIALECT };
    resp->__sizeMessageContentFilterDialect = 1;
    resp->MessageContentFilterDialect = content_dialects;
    resp->__sizeProducerPropertiesFilterDialect = 0;
    resp->__sizeMessageContentSchemaLocation = 1;
    resp->MessageContentSchemaLocation = schema;
    return SOAP_OK;
}

/* ---- subscriptions --------------------------------------------------------------------------------------- */

int __tev__CreatePullPointSubscription(struct soap *soap, struct _tev__CreatePullPointSubscription *req,
                                       struct _tev__CreatePullPointSubscriptionResponse *resp)
{
    struct events *ev = events_of(soap);
    if (!ev)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "The event service is not running");
    char raw[EVENT_FILTER_MAX + 1], expr[EVENT_FILTER_MAX + 1], dialect[256], content[4097];
    const char *filter = req->Filter ? req->Filter->__any : NULL;
    int rc = filter_part(filter, "TopicExpression", dialect, sizeof dialect, raw, sizeof raw);
    if (rc < 0 || (rc == 1 && dialect[0] && strcmp(dialect, CONCRETE_SET_DIALECT) != 0 &&
                   strcmp(dialect, CONCRETE_DIALECT) != 0))
        return onvif_sender_fault(soap, "wsnt:InvalidTopicExpressionFault", NULL,
                                  "The topic expression is not in the ConcreteSet dialect");
    if (raw[0] && (normalise_expression(raw, expr, sizeof expr) != 0 || !events_filter_valid(expr)))
        return onvif_sender_fault(soap, "wsnt:TopicNotSupportedFault", NULL,
                                  "The topic expression names no topic of this device");
    if (!raw[0])
        expr[0] = '\0';
    struct itemfilter items;
    memset(&items, 0, sizeof items);
    rc = filter_part(filter, "MessageContent", dialect, sizeof dialect, content, sizeof content);
    if (rc < 0 || (rc == 1 && (strcmp(dialect, ITEMFILTER_DIALECT) != 0 || itemfilter_parse(content, &items) != 0)))
        return onvif_sender_fault(soap, "wsnt:InvalidMessageContentExpressionFault", NULL,
                                  "Message content filters must be ItemFilter tests of SimpleItems");
    int64_t term = termination_of(soap, req->InitialTerminationTime, DEFAULT_TERMINATION_S);
    if (term < 0)
        return onvif_sender_fault(soap, "wsnt:UnacceptableInitialTerminationTimeFault", NULL,
                                  "InitialTerminationTime is neither a duration nor a UTC time");
    uint64_t id;
    rc = events_subscribe_filtered(ev, expr[0] ? expr : NULL, &items, term, &id);
    if (rc != EVENTS_OK)
        return events_fault(soap, rc);
    int64_t termination = term;
    /* The module may clamp the lifetime: report what it keeps. */
    if (events_termination(ev, id, &termination) != EVENTS_OK)
        termination = term;
    char path[64];
    snprintf(path, sizeof path, EVENTS_SUBSCRIPTION_PATH "%" PRIu64, id);
    resp->SubscriptionReference.Address = onvif_xaddr(soap, path);
    resp->wsnt__CurrentTime = time(NULL);
    resp->wsnt__TerminationTime = (time_t)(termination / 1000);
    const struct onvif_request *r = onvif_request_of(soap);
    log_info("events", "%s: pull point %" PRIu64 " for '%s'%s%s", r->peer, id, r->principal.user,
             expr[0] ? ", topics " : "", expr);
    return SOAP_OK;
}

int __tev__PullMessages(struct soap *soap, struct _tev__PullMessages *req, struct _tev__PullMessagesResponse *resp)
{
    struct events *ev = events_of(soap);
    uint64_t id;
    if (!ev || subscription_of(soap, &id) != 0)
        return events_fault(soap, EVENTS_E_NO_SUBSCRIPTION);
    long timeout_s = onvif_duration_seconds(req->Timeout);
    if (timeout_s < 0 || req->MessageLimit < 1)
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL,
                                  "Timeout must be a duration and MessageLimit at least 1");
    if (timeout_s > PULL_MAX_TIMEOUT_S)
        timeout_s = PULL_MAX_TIMEOUT_S;
    int limit = req->MessageLimit > PULL_MAX_MESSAGES ? PULL_MAX_MESSAGES : req->MessageLimit;
    /* No pull takes more than a queue holds: no point allocating for it. */
    const struct opennvt_config *cfg = onvif_request_of(soap)->dev->cfg;
    if (cfg && cfg->events_queue_max > 0 && limit > cfg->events_queue_max)
        limit = cfg->events_queue_max;
    struct event_message *msgs = calloc((size_t)limit, sizeof *msgs);
    if (!msgs)
        return SOAP_EOM;
    int64_t termination = 0;
    int n = events_pull(ev, id, (int)timeout_s * 1000, msgs, limit, &termination);
    if (n < 0) {
        free(msgs);
        return events_fault(soap, n);
    }
    size_t n_topics;
    const struct event_topic *topics = events_topics(&n_topics);
    resp->CurrentTime = time(NULL);
    resp->TerminationTime = (time_t)(termination / 1000);
    resp->__sizeNotificationMessage = n;
    resp->wsnt__NotificationMessage = n ? onvif_zalloc(soap, (size_t)n * sizeof *resp->wsnt__NotificationMessage) : NULL;
    if (n && !resp->wsnt__NotificationMessage) {
        free(msgs);
        return SOAP_EOM;
    }
    for (int i = 0; i < n; i++) {
        struct wsnt__NotificationMessageHolderType *h = &resp->wsnt__NotificationMessage[i];
        h->Topic = onvif_zalloc(soap, sizeof *h->Topic);
        if (!h->Topic || (size_t)msgs[i].topic >= n_topics) {
            free(msgs);
            return SOAP_EOM;
        }
        h->Topic->Dialect = CONCRETE_SET_DIALECT;
        h->Topic->__mixed = soap_strdup(soap, topics[msgs[i].topic].path);
        h->Message.__any = message_xml(soap, &msgs[i]);
        if (!h->Message.__any) {
            free(msgs);
            return SOAP_EOM;
        }
    }
    free(msgs);
    return SOAP_OK;
}

int __tev__Renew(struct soap *soap, struct _wsnt__Renew *req, struct _wsnt__RenewResponse *resp)
{
    struct events *ev = events_of(soap);
    uint64_t id;
    if (!ev || subscription_of(soap, &id) != 0)
        return events_fault(soap, EVENTS_E_NO_SUBSCRIPTION);
    int64_t term = termination_of(soap, req->TerminationTime, DEFAULT_TERMINATION_S);
    if (term < 0)
        return onvif_sender_fault(soap, "wsnt:UnacceptableTerminationTimeFault", NULL,
                                  "TerminationTime is neither a duration nor a UTC time");
    int rc = events_renew(ev, id, term);
    if (rc == EVENTS_E_TIME)
        return onvif_sender_fault(soap, "wsnt:UnacceptableTerminationTimeFault", NULL, events_strerror(rc));
    if (rc != EVENTS_OK)
        return events_fault(soap, rc);
    int64_t termination = term;
    if (events_termination(ev, id, &termination) != EVENTS_OK)
        termination = term;
    resp->TerminationTime = (time_t)(termination / 1000);
    resp->CurrentTime = soap_malloc(soap, sizeof *resp->CurrentTime);
    if (resp->CurrentTime)
        *resp->CurrentTime = time(NULL);
    return SOAP_OK;
}

int __tev__Renew_(struct soap *soap, struct _wsnt__Renew *req, struct _wsnt__RenewResponse *resp)
{
    return __tev__Renew(soap, req, resp);
}

int __tev__Unsubscribe(struct soap *soap, struct _wsnt__Unsubscribe *req, struct _wsnt__UnsubscribeResponse *resp)
{
    (void)req;
    (void)resp;
    struct events *ev = events_of(soap);
    uint64_t id;
    if (!ev || subscription_of(soap, &id) != 0)
        return events_fault(soap, EVENTS_E_NO_SUBSCRIPTION);
    int rc = events_unsubscribe(ev, id);
    if (rc != EVENTS_OK)
        return events_fault(soap, rc);
    log_info("events", "%s: pull point %" PRIu64 " unsubscribed", onvif_request_of(soap)->peer, id);
    return SOAP_OK;
}

int __tev__Unsubscribe_(struct soap *soap, struct _wsnt__Unsubscribe *req, struct _wsnt__UnsubscribeResponse *resp)
{
    return __tev__Unsubscribe(soap, req, resp);
}

int __tev__Unsubscribe__(struct soap *soap, struct _wsnt__Unsubscribe *req, struct _wsnt__UnsubscribeResponse *resp)
{
    return __tev__Unsubscribe(soap, req, resp);
}

int __tev__SetSynchronizationPoint(struct soap *soap, struct _tev__SetSynchronizationPoint *req,
                                   struct _tev__SetSynchronizationPointResponse *resp)
{
    (void)req;
    (void)resp;
    struct events *ev = events_of(soap);
    uint64_t id;
    if (!ev || subscription_of(soap, &id) != 0)
        return events_fault(soap, EVENTS_E_NO_SUBSCRIPTION);
    int rc = events_sync(ev, id);
    return rc == EVENTS_OK ? SOAP_OK : events_fault(soap, rc);
}
