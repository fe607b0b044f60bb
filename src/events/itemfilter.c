/* ItemFilter message content expressions: a small recursive-descent parser
 * for the forms ONVIF clients send, and the match against one message. */
#include "opennvt/itemfilter.h"

#include <stdio.h>
#include <string.h>

struct cursor {
    const char *p;
};

static void skip_ws(struct cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')
        c->p++;
}

static int accept(struct cursor *c, const char *lit)
{
    skip_ws(c);
    size_t n = strlen(lit);
    if (strncmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* A keyword ("and", "or", "not") must not run into a name. */
static int accept_word(struct cursor *c, const char *word)
{
    skip_ws(c);
    size_t n = strlen(word);
    if (strncmp(c->p, word, n) != 0)
        return 0;
    char next = c->p[n];
    if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '_' || next == '-')
        return 0;
    c->p += n;
    return 1;
}

/* "…" or '…' into out; 0 or -1. */
static int quoted(struct cursor *c, char *out, size_t outlen)
{
    skip_ws(c);
    char q = *c->p;
    if (q != '"' && q != '\'')
        return -1;
    const char *start = ++c->p, *end = strchr(start, q);
    if (!end || (size_t)(end - start) >= outlen)
        return -1;
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    c->p = end + 1;
    return 0;
}

/* //[tt:Source/|tt:Data/]tt:SimpleItem[@Name="N" [and @Value="V"]] */
static int item_test(struct cursor *c, struct itemfilter_term *t)
{
    if (!accept(c, "//"))
        return -1;
    t->scope = ITEMFILTER_ANY;
    if (accept(c, "tt:Source/"))
        t->scope = ITEMFILTER_SOURCE;
    else if (accept(c, "tt:Data/"))
        t->scope = ITEMFILTER_DATA;
    if (!accept(c, "tt:SimpleItem") || !accept(c, "[") || !accept(c, "@Name") || !accept(c, "=") ||
        quoted(c, t->name, sizeof t->name) != 0)
        return -1;
    if (accept_word(c, "and")) {
        if (!accept(c, "@Value") || !accept(c, "=") || quoted(c, t->value, sizeof t->value) != 0)
            return -1;
        t->has_value = 1;
    }
    return accept(c, "]") ? 0 : -1;
}

/* boolean(( … )) with any number of extra parentheses, or not(boolean(…)). */
static int term(struct cursor *c, struct itemfilter_term *t)
{
    memset(t, 0, sizeof *t);
    if (accept_word(c, "not")) {
        if (!accept(c, "(") || term(c, t) != 0 || t->negated || !accept(c, ")"))
            return -1;
        t->negated = 1;
        return 0;
    }
    int parens = 0;
    while (accept(c, "("))
        parens++;
    if (parens) {   /* (boolean(…)) */
        if (term(c, t) != 0)
            return -1;
        while (parens--)
            if (!accept(c, ")"))
                return -1;
        return 0;
    }
    if (!accept_word(c, "boolean") || !accept(c, "("))
        return -1;
    int inner = 0;
    while (accept(c, "("))
        inner++;
    if (item_test(c, t) != 0)
        return -1;
    while (inner--)
        if (!accept(c, ")"))
            return -1;
    return accept(c, ")") ? 0 : -1;
}

int itemfilter_parse(const char *expr, struct itemfilter *out)
{
    memset(out, 0, sizeof *out);
    if (!expr || strlen(expr) > 4096)
        return -1;
    struct cursor c = { expr };
    skip_ws(&c);
    if (!*c.p)
        return 0;
    int joiner = 0;   /* 1 and, 2 or */
    for (;;) {
        if (out->n_terms == ITEMFILTER_MAX_TERMS || term(&c, &out->terms[out->n_terms]) != 0)
            return -1;
        out->n_terms++;
        skip_ws(&c);
        if (!*c.p)
            break;
        int j = accept_word(&c, "and") ? 1 : accept_word(&c, "or") ? 2 : 0;
        if (!j || (joiner && j != joiner))
            return -1;   /* mixing and/or would need precedence rules clients do not use */
        joiner = j;
    }
    out->any = joiner == 2;
    return 0;
}

static int items_have(const struct event_kv *kv, int n, const struct itemfilter_term *t)
{
    for (int i = 0; i < n; i++)
        if (strcmp(kv[i].name, t->name) == 0 && (!t->has_value || strcmp(kv[i].value, t->value) == 0))
            return 1;
    return 0;
}

static int term_holds(const struct itemfilter_term *t, const struct event_message *m)
{
    int found = (t->scope != ITEMFILTER_DATA && items_have(m->source, m->n_source, t)) ||
                (t->scope != ITEMFILTER_SOURCE && items_have(m->data, m->n_data, t));
    return t->negated ? !found : found;
}

int itemfilter_matches(const struct itemfilter *f, const struct event_message *m)
{
    if (!f || f->n_terms == 0)
        return 1;
    for (int i = 0; i < f->n_terms; i++) {
        int holds = term_holds(&f->terms[i], m);
        if (f->any && holds)
            return 1;
        if (!f->any && !holds)
            return 0;
    }
    return !f->any;
}
