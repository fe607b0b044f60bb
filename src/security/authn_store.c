/* The authentication settings on disk: a small XML file written through
 * atomicfile, so a crash leaves the old or the new settings. */
#include "opennvt/authn_store.h"
#include "opennvt/atomicfile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define AUTHN_FILE "authn.xml"
#define AUTHN_FILE_MAX 4096

static int path_of(const char *state_dir, char *out, size_t outlen)
{
    return snprintf(out, outlen, "%s/%s", state_dir, AUTHN_FILE) < (int)outlen ? 0 : -ENAMETOOLONG;
}

static int int_value(xmlNode *n, int *out)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *end = NULL;
    long v = t ? strtol((const char *)t, &end, 10) : 0;
    int ok = t && end != (char *)t && *end == '\0' && v >= 0 && v <= INT_MAX;
    xmlFree(t);
    if (!ok)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

int authn_store_load(const char *state_dir, struct authn_stored *p)
{
    char path[PATH_MAX];
    int rc = path_of(state_dir, path, sizeof path);
    if (rc != 0)
        return rc;
    char *data;
    size_t len;
    rc = atomicfile_read(path, AUTHN_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc)
        return -EINVAL;
    struct authn_stored loaded = *p;
    int algorithms = 0;
    int seen = 0;
    rc = 0;
    xmlNode *root = xmlDocGetRootElement(doc);
    for (xmlNode *c = root ? root->children : NULL; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)c->name, "failure-monitoring"))
            rc = int_value(c, &loaded.failure.enabled), seen |= 1;
        else if (!strcmp((const char *)c->name, "monitor-period"))
            rc = int_value(c, &loaded.failure.monitor_period_s), seen |= 2;
        else if (!strcmp((const char *)c->name, "max-failures"))
            rc = int_value(c, &loaded.failure.max_failures), seen |= 4;
        else if (!strcmp((const char *)c->name, "digest-algorithms"))
            rc = int_value(c, &algorithms), seen |= 8;
    }
    xmlFreeDoc(doc);
    if (rc != 0 || seen != 15)
        return -EINVAL;
    loaded.digest_algorithms = (unsigned)algorithms;
    *p = loaded;
    return 0;
}

int authn_store_save(const char *state_dir, const struct authn_stored *p)
{
    char path[PATH_MAX];
    int rc = path_of(state_dir, path, sizeof path);
    if (rc != 0)
        return rc;
    char buf[384];
    int n = snprintf(buf, sizeof buf,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<authn>\n  <failure-monitoring>%d</failure-monitoring>\n"
                     "  <monitor-period>%d</monitor-period>\n  <max-failures>%d</max-failures>\n"
                     "  <digest-algorithms>%u</digest-algorithms>\n</authn>\n",
                     p->failure.enabled ? 1 : 0, p->failure.monitor_period_s, p->failure.max_failures,
                     p->digest_algorithms);
    return atomicfile_write(path, buf, (size_t)n, 0600);
}
