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

#endif
