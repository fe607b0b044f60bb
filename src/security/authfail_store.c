/* The authentication failure policy on disk: a three-value XML file written
 * through atomicfile, so a crash leaves the old or the new policy. */
#include "opennvt/authfail_store.h"
#include "opennvt/atomicfile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define AUTHFAIL_FILE "authfail.xml"
#define AUTHFAIL_FILE_MAX 4096

static int path_of(const char *state_dir, char *out, size_t outlen)
{
    return snprintf(out, outlen, "%s/%s", state_dir, AUTHFAIL_FILE) < (int)outlen ? 0 : -ENAMETOOLONG;
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

int authfail_store_load(const char *state_dir, struct authn_failure_policy *p)
{
    char path[PATH_MAX];
    int rc = path_of(state_dir, path, sizeof path);
    if (rc != 0)
        return rc;
    char *data;
    size_t len;
    rc = atomicfile_read(path, AUTHFAIL_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc)
        return -EINVAL;
    struct authn_failure_policy loaded = *p;
    int seen = 0;
    rc = 0;
    xmlNode *root = xmlDocGetRootElement(doc);
    for (xmlNode *c = root ? root->children : NULL; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)c->name, "enabled"))
            rc = int_value(c, &loaded.enabled), seen |= 1;
        else if (!strcmp((const char *)c->name, "monitor-period"))
            rc = int_value(c, &loaded.monitor_period_s), seen |= 2;
        else if (!strcmp((const char *)c->name, "max-failures"))
            rc = int_value(c, &loaded.max_failures), seen |= 4;
    }
    xmlFreeDoc(doc);
    if (rc != 0 || seen != 7)
        return -EINVAL;
    *p = loaded;
    return 0;
}

int authfail_store_save(const char *state_dir, const struct authn_failure_policy *p)
{
    char path[PATH_MAX];
    int rc = path_of(state_dir, path, sizeof path);
    if (rc != 0)
        return rc;
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<auth-failure>\n  <enabled>%d</enabled>\n"
                     "  <monitor-period>%d</monitor-period>\n  <max-failures>%d</max-failures>\n</auth-failure>\n",
                     p->enabled ? 1 : 0, p->monitor_period_s, p->max_failures);
    return atomicfile_write(path, buf, (size_t)n, 0600);
}
