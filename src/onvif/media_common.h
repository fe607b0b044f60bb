/* Conversions and faults Media (ver10) and Media2 (ver20) share: between
 * mediacfg's structs and the tt: types both services use. Private to
 * src/onvif. */
#ifndef OPENNVT_ONVIF_MEDIA_COMMON_H
#define OPENNVT_ONVIF_MEDIA_COMMON_H

#include "opennvt/mediacfg.h"
#include "soapH.h"

struct mediacfg *media_cfg_of(struct soap *soap);
/* SOAP_EOM, also stored in soap->error. */
int media_out_of_memory(struct soap *soap);
struct tt__IntRange *media_range_out(struct soap *soap, int min, int max);
/* A tt:VideoSourceConfiguration of c (with its UseCount); 0 or -1 (memory). */
int media_fill_vsc(struct soap *soap, struct tt__VideoSourceConfiguration *out, const struct media_vsc *c);
struct tt__MulticastConfiguration *media_multicast_out(struct soap *soap, const struct media_multicast *mc);
/* A tt:MulticastConfiguration over mc; 0, or -1 when the address does not fit. */
int media_multicast_in(const struct tt__MulticastConfiguration *in, struct media_multicast *mc);
/* An rtspserver error of Start/StopMulticastStreaming as the ONVIF fault. */
int media_multicast_fault(struct soap *soap, int err);

#endif
