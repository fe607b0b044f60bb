/* A linear pre-parse check of request XML before gSOAP sees it: nesting depth
 * (gSOAP does not bound the depth of content it skips) and no DTD (SOAP
 * forbids them; refusing them also rules out entity expansion attacks). */
#ifndef OPENNVT_XMLGUARD_H
#define OPENNVT_XMLGUARD_H

#include <stddef.h>

enum xmlguard_result {
    XMLGUARD_OK = 0,
    XMLGUARD_TOO_DEEP = -1,
    XMLGUARD_DTD = -2,
};

/* Scans buf; returns XMLGUARD_OK, or why it must be refused. Malformed XML is
 * left for the real parser to report. */
int xmlguard_check(const char *buf, size_t len, int max_depth);

#endif
