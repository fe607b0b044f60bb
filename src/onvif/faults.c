/* ONVIF fault construction (Core 5.8: env:Sender/env:Receiver + nested ter: subcodes). */
#include "opennvt/onvif.h"
#include "soapH.h"

static int fault(struct soap *soap, int receiver, const char *subcode, const char *subcode2, const char *reason)
{
    if (receiver)
        soap_receiver_fault_subcode(soap, subcode, reason, NULL);
    else
        soap_sender_fault_subcode(soap, subcode, reason, NULL);
    struct SOAP_ENV__Fault *f = soap->fault;
    if (subcode2 && f && f->SOAP_ENV__Code && f->SOAP_ENV__Code->SOAP_ENV__Subcode) {
        struct SOAP_ENV__Code *inner = soap_malloc(soap, sizeof *inner);
        if (inner) {
            inner->SOAP_ENV__Value = soap_strdup(soap, subcode2);
            inner->SOAP_ENV__Subcode = NULL;
            f->SOAP_ENV__Code->SOAP_ENV__Subcode->SOAP_ENV__Subcode = inner;
        }
    }
    return SOAP_FAULT;
}

int onvif_sender_fault(struct soap *soap, const char *subcode, const char *subcode2, const char *reason)
{
    return fault(soap, 0, subcode, subcode2, reason);
}

int onvif_receiver_fault(struct soap *soap, const char *subcode, const char *subcode2, const char *reason)
{
    return fault(soap, 1, subcode, subcode2, reason);
}

int onvif_fault_action_not_supported(struct soap *soap)
{
    return fault(soap, 1, "ter:ActionNotSupported", NULL, "Optional action not implemented");
}

int onvif_fault_from_soap_error(struct soap *soap)
{
    switch (soap->error) {
    case SOAP_OK:
    case SOAP_FAULT:
    case SOAP_MUSTUNDERSTAND:
    case SOAP_VERSIONMISMATCH:
        return soap->error;
    case SOAP_NO_METHOD:
        return onvif_sender_fault(soap, "ter:UnknownAction", NULL, "The request names an operation this device does not know");
    case SOAP_TAG_MISMATCH:
    case SOAP_NO_TAG:
        return onvif_sender_fault(soap, "ter:TagMismatch", NULL, "Unexpected element in the request");
    case SOAP_NAMESPACE:
        return onvif_sender_fault(soap, "ter:Namespace", NULL, "Namespace error in the request");
    case SOAP_TYPE:
    case SOAP_OCCURS:
    case SOAP_LENGTH:
    case SOAP_NULL:
    case SOAP_IOB:
        return onvif_sender_fault(soap, "ter:InvalidArgs", NULL, "Missing, extra or mistyped arguments");
    case SOAP_LEVEL:
        return onvif_sender_fault(soap, "ter:WellFormed", NULL, "XML nesting is deeper than this device accepts");
    case SOAP_EOM:
        return onvif_receiver_fault(soap, "ter:OutofMemory", NULL, "Request too large for the device's memory limits");
    default:
        return onvif_sender_fault(soap, "ter:WellFormed", NULL, "The request is not well-formed SOAP 1.2 XML");
    }
}
