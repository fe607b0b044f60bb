/* Small allocations in a request's soap context, for the handlers: zeroed
 * structures and the pointers gSOAP uses for optional values. NULL when
 * memory runs out (gSOAP then answers SOAP_EOM). */
#ifndef OPENNVT_SOAP_VALUES_H
#define OPENNVT_SOAP_VALUES_H

#include "soapH.h"

#include <stddef.h>

void *onvif_zalloc(struct soap *soap, size_t n);
enum xsd__boolean *onvif_bool(struct soap *soap, int v);
int *onvif_int(struct soap *soap, int v);
/* xs:duration "PTnS", and the seconds of one (days, hours, minutes,
 * seconds; -1 when it is not such a duration). */
char *onvif_duration(struct soap *soap, int seconds);
long onvif_duration_seconds(const char *s);

#endif
