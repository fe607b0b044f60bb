/* The ONVIF ItemFilter message content dialect
 * (http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter) as clients
 * use it: boolean() tests of SimpleItems by name and value, optionally
 * negated, joined by "and" or by "or", e.g.
 *   boolean((//tt:SimpleItem[@Name="VideoSourceToken" and @Value="VideoSource_1"]))
 *   boolean(//tt:Data/tt:SimpleItem[@Name="State" and @Value="true"]) and not(boolean(...))
 * Anything else is refused, never half-understood. Pure functions. */
#ifndef OPENNVT_ITEMFILTER_H
#define OPENNVT_ITEMFILTER_H

#include "opennvt/events.h"

#define ITEMFILTER_DIALECT "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
#define ITEMFILTER_MAX_TERMS 8

enum itemfilter_scope { ITEMFILTER_ANY, ITEMFILTER_SOURCE, ITEMFILTER_DATA };

struct itemfilter_term {
    enum itemfilter_scope scope;
    int negated;
    char name[EVENT_ITEM_NAME_MAX + 1];
    int has_value;
    char value[EVENT_ITEM_VALUE_MAX + 1];
};

struct itemfilter {
    int n_terms;                /* 0: matches everything */
    int any;                    /* terms joined by "or" (else "and") */
    struct itemfilter_term terms[ITEMFILTER_MAX_TERMS];
};

/* 0, or -1 when the expression is not in the supported form. */
int itemfilter_parse(const char *expr, struct itemfilter *out);
int itemfilter_matches(const struct itemfilter *f, const struct event_message *m);

#endif
