/* onvif_client: a gSOAP-generated ONVIF client for the integration tests.
 * Prints results as key=value lines; exit 0 on success, 1 on a SOAP fault or
 * transport error (the fault's subcodes are printed), 2 on usage, 3 when a
 * discovery probe got no match. With ONVIF_USER and ONVIF_PASSWORD set, every
 * request carries a WS-UsernameToken (PasswordDigest) made by gSOAP's wsse
 * plugin, as ONVIF clients send it. For https:// URLs, ONVIF_CAFILE names the
 * trust anchor (PEM) and ONVIF_CLIENT_PEM an optional client key and
 * certificate (one PEM file) for TLS client authentication. */
#include "soapH.h"
#include "wsaapi.h"
#include "wsddapi.h"
#include "wsseapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern struct Namespace namespaces[];
static int matches_seen;

static void print_fault(struct soap *soap)
{
    printf("error=%d\n", soap->error);
    if (soap->fault && soap->fault->SOAP_ENV__Code) {
        printf("fault.code=%s\n", soap->fault->SOAP_ENV__Code->SOAP_ENV__Value ? soap->fault->SOAP_ENV__Code->SOAP_ENV__Value : "");
        int depth = 1;
        for (struct SOAP_ENV__Code *c = soap->fault->SOAP_ENV__Code->SOAP_ENV__Subcode; c; c = c->SOAP_ENV__Subcode)
            printf("fault.subcode%d=%s\n", depth++, c->SOAP_ENV__Value ? c->SOAP_ENV__Value : "");
    }
    const char **s = soap_faultstring(soap);
    if (s && *s)
        printf("fault.reason=%s\n", *s);
}

void wsdd_event_ProbeMatches(struct soap *soap, unsigned int InstanceId, const char *SequenceId,
                             unsigned int MessageNumber, const char *MessageID, const char *RelatesTo,
                             struct wsdd__ProbeMatchesType *matches)
{
    for (int i = 0; matches && i < matches->__sizeProbeMatch; i++) {
        struct wsdd__ProbeMatchType *m = &matches->ProbeMatch[i];
        matches_seen++;
        printf("match.epr=%s\nmatch.types=%s\nmatch.scopes=%s\nmatch.xaddrs=%s\nmatch.metadata=%u\n",
               m->wsa__EndpointReference.Address ? m->wsa__EndpointReference.Address : "", m->Types ? m->Types : "",
               m->Scopes && m->Scopes->__item ? m->Scopes->__item : "", m->XAddrs ? m->XAddrs : "", m->MetadataVersion);
    }
}

void wsdd_event_ResolveMatches(struct soap *soap, unsigned int InstanceId, const char *SequenceId,
                               unsigned int MessageNumber, const char *MessageID, const char *RelatesTo,
                               struct wsdd__ResolveMatchType *match)
{
    if (match) {
        matches_seen++;
        printf("resolve.epr=%s\nresolve.xaddrs=%s\n", match->wsa__EndpointReference.Address ? match->wsa__EndpointReference.Address : "",
               match->XAddrs ? match->XAddrs : "");
    }
}

void wsdd_event_Hello(struct soap *soap, unsigned int InstanceId, const char *SequenceId, unsigned int MessageNumber,
                      const char *MessageID, const char *RelatesTo, const char *EndpointReference, const char *Types,
                      const char *Scopes, const char *MatchBy, const char *XAddrs, unsigned int MetadataVersion) {}
void wsdd_event_Bye(struct soap *soap, unsigned int InstanceId, const char *SequenceId, unsigned int MessageNumber,
                    const char *MessageID, const char *RelatesTo, const char *EndpointReference, const char *Types,
                    const char *Scopes, const char *MatchBy, const char *XAddrs, unsigned int *MetadataVersion) {}
soap_wsdd_mode wsdd_event_Probe(struct soap *soap, const char *MessageID, const char *ReplyTo, const char *Types,
                                const char *Scopes, const char *MatchBy, struct wsdd__ProbeMatchesType *matches)
{ return SOAP_WSDD_ADHOC; }
soap_wsdd_mode wsdd_event_Resolve(struct soap *soap, const char *MessageID, const char *ReplyTo,
                                  const char *EndpointReference, struct wsdd__ResolveMatchType *match)
{ return SOAP_WSDD_ADHOC; }

/* Attaches a fresh UsernameToken to the next request (tokens are single use). */
static void auth(struct soap *soap)
{
    const char *user = getenv("ONVIF_USER"), *password = getenv("ONVIF_PASSWORD");
    if (!user || !password)
        return;
    soap_wsse_delete_Security(soap);
    soap_wsse_add_UsernameTokenDigest(soap, NULL, user, password);
}

static const char *b(enum xsd__boolean *v) { return v ? (*v ? "true" : "false") : "absent"; }

static int device_info(struct soap *soap, const char *url)
{
    struct _tds__GetSystemDateAndTime r0;
    struct _tds__GetSystemDateAndTimeResponse a0;
    if ((auth(soap), soap_call___tds__GetSystemDateAndTime)(soap, url, NULL, &r0, &a0))
        return 1;
    struct tt__DateTime *u = a0.SystemDateAndTime->UTCDateTime;
    printf("time.utc=%04d-%02d-%02dT%02d:%02d:%02dZ\ntime.tz=%s\n", u->Date->Year, u->Date->Month, u->Date->Day,
           u->Time->Hour, u->Time->Minute, u->Time->Second,
           a0.SystemDateAndTime->TimeZone ? a0.SystemDateAndTime->TimeZone->TZ : "");

    struct _tds__GetDeviceInformation r1;
    struct _tds__GetDeviceInformationResponse a1;
    if ((auth(soap), soap_call___tds__GetDeviceInformation)(soap, url, NULL, &r1, &a1))
        return 1;
    printf("info.manufacturer=%s\ninfo.model=%s\ninfo.firmware=%s\ninfo.serial=%s\ninfo.hardware=%s\n", a1.Manufacturer,
           a1.Model, a1.FirmwareVersion, a1.SerialNumber, a1.HardwareId);

    struct _tds__GetServices r2 = { .IncludeCapability = xsd__boolean__true_ };
    struct _tds__GetServicesResponse a2;
    if ((auth(soap), soap_call___tds__GetServices)(soap, url, NULL, &r2, &a2))
        return 1;
    for (int i = 0; i < a2.__sizeService; i++)
        printf("service.%s=%s %d.%d caps=%s\n", a2.Service[i].Namespace, a2.Service[i].XAddr,
               a2.Service[i].Version->Major, a2.Service[i].Version->Minor,
               a2.Service[i].Capabilities && a2.Service[i].Capabilities->__any ? "yes" : "no");

    struct _tds__GetServiceCapabilities r3;
    memset(&r3, 0, sizeof r3);
    struct _tds__GetServiceCapabilitiesResponse a3;
    if ((auth(soap), soap_call___tds__GetServiceCapabilities)(soap, url, NULL, &r3, &a3))
        return 1;
    printf("caps.discovery_resolve=%s\ncaps.discovery_bye=%s\ncaps.user_config_not_supported=%s\n",
           b(a3.Capabilities->System->DiscoveryResolve), b(a3.Capabilities->System->DiscoveryBye),
           b(a3.Capabilities->System->UserConfigNotSupported));

    struct _tds__GetCapabilities r4 = { 0 };
    struct _tds__GetCapabilitiesResponse a4;
    if ((auth(soap), soap_call___tds__GetCapabilities)(soap, url, NULL, &r4, &a4))
        return 1;
    printf("capabilities.device.xaddr=%s\ncapabilities.media=%s\n", a4.Capabilities->Device->XAddr,
           a4.Capabilities->Media ? "present" : "absent");

    struct _tds__GetEndpointReference r5;
    struct _tds__GetEndpointReferenceResponse a5;
    if ((auth(soap), soap_call___tds__GetEndpointReference)(soap, url, NULL, &r5, &a5))
        return 1;
    printf("endpoint=%s\n", a5.GUID);

    struct _tds__GetHostname r6;
    struct _tds__GetHostnameResponse a6;
    if ((auth(soap), soap_call___tds__GetHostname)(soap, url, NULL, &r6, &a6))
        return 1;
    printf("hostname=%s\n", a6.HostnameInformation->Name ? a6.HostnameInformation->Name : "");

    struct _tds__GetNetworkInterfaces r7;
    struct _tds__GetNetworkInterfacesResponse a7;
    if ((auth(soap), soap_call___tds__GetNetworkInterfaces)(soap, url, NULL, &r7, &a7))
        return 1;
    for (int i = 0; i < a7.__sizeNetworkInterfaces; i++)
        printf("netif=%s %s\n", a7.NetworkInterfaces[i].token,
               a7.NetworkInterfaces[i].Info ? a7.NetworkInterfaces[i].Info->HwAddress : "");

    struct _tds__GetWsdlUrl r8;
    struct _tds__GetWsdlUrlResponse a8;
    if ((auth(soap), soap_call___tds__GetWsdlUrl)(soap, url, NULL, &r8, &a8))
        return 1;
    printf("wsdlurl=%s\n", a8.WsdlUrl);
    return 0;
}

static int scopes(struct soap *soap, const char *url)
{
    struct _tds__GetScopes r;
    struct _tds__GetScopesResponse a;
    if ((auth(soap), soap_call___tds__GetScopes)(soap, url, NULL, &r, &a))
        return 1;
    for (int i = 0; i < a.__sizeScopes; i++)
        printf("scope=%s %s\n", a.Scopes[i].ScopeDef == tt__ScopeDefinition__Fixed ? "fixed" : "configurable",
               a.Scopes[i].ScopeItem);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: onvif_client probe soap.udp://HOST:PORT [TYPES] [SCOPES [MATCHBY]]\n"
                        "       onvif_client resolve soap.udp://HOST:PORT EPR\n"
                        "       onvif_client device|scopes|discovery-mode|reboot|unsupported URL\n"
                        "       onvif_client tls-versions SECURITY-SERVICE-URL\n"
                        "       onvif_client backup|restore URL FILE\n"
                        "       onvif_client set-scopes|add-scopes|remove-scopes URL SCOPE...\n"
                        "       onvif_client set-discovery-mode URL Discoverable|NonDiscoverable\n"
                        "       onvif_client users URL | delete-user URL NAME... \n"
                        "       onvif_client create-user|set-user URL NAME PASSWORD LEVEL(0..3)\n"
                        "(ONVIF_USER / ONVIF_PASSWORD: send a WS-UsernameToken digest)\n");
        return 2;
    }
    const char *cmd = argv[1], *url = argv[2];
    int udp = !strcmp(cmd, "probe") || !strcmp(cmd, "resolve");
    struct soap *soap = soap_new1(SOAP_C_UTFSTRING | (udp ? SOAP_IO_UDP : 0));
    soap_set_namespaces(soap, namespaces);
    if (udp)
        soap_register_plugin(soap, soap_wsa);
    soap->connect_timeout = 5;
    if (!udp && getenv("ONVIF_CAFILE")) {
        if (soap_ssl_client_context(soap, SOAP_SSL_REQUIRE_SERVER_AUTHENTICATION | SOAP_TLSv1_2 | SOAP_TLSv1_3,
                                    getenv("ONVIF_CLIENT_PEM"), NULL, getenv("ONVIF_CAFILE"), NULL, NULL) != SOAP_OK) {
            print_fault(soap);
            soap_free(soap);
            return 1;
        }
    }
    soap->recv_timeout = udp ? -1500000 : 10;
    soap->send_timeout = 10;
    int rc = 0;
    if (!strcmp(cmd, "probe")) {
        rc = soap_wsdd_Probe(soap, SOAP_WSDD_MANAGED, SOAP_WSDD_TO_TS, url, soap_wsa_rand_uuid(soap), NULL,
                             argc > 3 && argv[3][0] ? argv[3] : NULL, argc > 4 ? argv[4] : NULL, argc > 5 ? argv[5] : NULL);
        if (!matches_seen) {
            printf("matches=0\n");
            rc = 3;
        } else {
            rc = 0;
        }
        soap_free(soap);
        return rc;
    } else if (!strcmp(cmd, "resolve") && argc > 3) {
        rc = soap_wsdd_Resolve(soap, SOAP_WSDD_MANAGED, SOAP_WSDD_TO_TS, url, soap_wsa_rand_uuid(soap), NULL, argv[3]);
        rc = matches_seen ? 0 : 3;
        if (!matches_seen)
            printf("matches=0\n");
        soap_free(soap);
        return rc;
    } else if (!strcmp(cmd, "device")) {
        rc = device_info(soap, url);
    } else if (!strcmp(cmd, "scopes")) {
        rc = scopes(soap, url);
    } else if (!strcmp(cmd, "backup") && argc > 3) {
        /* backup URL FILE: GetSystemBackup, the (MTOM) attachment written to FILE */
        struct _tds__GetSystemBackup r;
        struct _tds__GetSystemBackupResponse a;
        rc = (auth(soap), soap_call___tds__GetSystemBackup)(soap, url, NULL, &r, &a) ? 1 : 0;
        if (!rc) {
            FILE *f = a.__sizeBackupFiles == 1 && a.BackupFiles[0].Data ? fopen(argv[3], "wb") : NULL;
            const struct _xop__Include *x = f ? &a.BackupFiles[0].Data->xop__Include : NULL;
            if (!f || fwrite(x->__ptr, 1, (size_t)x->__size, f) != (size_t)x->__size || fclose(f) != 0)
                rc = 1;
            else
                printf("backup.name=%s\nbackup.bytes=%d\n", a.BackupFiles[0].Name, x->__size);
        }
    } else if (!strcmp(cmd, "restore") && argc > 3) {
        /* restore URL FILE: RestoreSystem with FILE as the MTOM attachment */
        FILE *f = fopen(argv[3], "rb");
        static unsigned char buf[8 * 1024 * 1024];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        struct tt__AttachmentData data = { .xop__Include = { .__ptr = buf, .__size = (int)n, .id = "backup",
                                                             .type = "application/octet-stream" },
                                           .xmime__contentType = "application/octet-stream" };
        struct tt__BackupFile file = { .Name = "opennvt-backup.bin", .Data = &data };
        struct _tds__RestoreSystem r = { 1, &file };
        struct _tds__RestoreSystemResponse a;
        soap_set_omode(soap, SOAP_ENC_MTOM);
        rc = (auth(soap), soap_call___tds__RestoreSystem)(soap, url, NULL, &r, &a) ? 1 : 0;
    } else if (!strcmp(cmd, "upgrade") && argc > 3) {
        /* upgrade URL FILE: UpgradeSystemFirmware with FILE as the MTOM attachment */
        FILE *f = fopen(argv[3], "rb");
        static unsigned char fw[8 * 1024 * 1024];
        size_t n = f ? fread(fw, 1, sizeof fw, f) : 0;
        if (f)
            fclose(f);
        struct tt__AttachmentData data = { .xop__Include = { .__ptr = fw, .__size = (int)n, .id = "firmware",
                                                             .type = "application/octet-stream" },
                                           .xmime__contentType = "application/octet-stream" };
        struct _tds__UpgradeSystemFirmware r = { &data };
        struct _tds__UpgradeSystemFirmwareResponse a;
        soap_set_omode(soap, SOAP_ENC_MTOM);
        rc = (auth(soap), soap_call___tds__UpgradeSystemFirmware)(soap, url, NULL, &r, &a) ? 1 : 0;
        if (!rc)
            printf("message=%s\n", a.Message ? a.Message : "");
    } else if (!strcmp(cmd, "tls-versions")) {
        /* URL: the security service */
        struct _tas__GetEnabledTLSVersions r;
        struct _tas__GetEnabledTLSVersionsResponse a;
        rc = (auth(soap), soap_call___tas__GetEnabledTLSVersions)(soap, url, NULL, &r, &a) ? 1 : 0;
        if (!rc)
            printf("tls-versions=%s\n", a.Versions ? a.Versions : "");
    } else if (!strcmp(cmd, "set-scopes") || !strcmp(cmd, "add-scopes") || !strcmp(cmd, "remove-scopes")) {
        int n = argc - 3;
        char **items = argv + 3;
        if (!strcmp(cmd, "set-scopes")) {
            struct _tds__SetScopes r = { n, items };
            struct _tds__SetScopesResponse a;
            rc = (auth(soap), soap_call___tds__SetScopes)(soap, url, NULL, &r, &a) ? 1 : 0;
        } else if (!strcmp(cmd, "add-scopes")) {
            struct _tds__AddScopes r = { n, items };
            struct _tds__AddScopesResponse a;
            rc = (auth(soap), soap_call___tds__AddScopes)(soap, url, NULL, &r, &a) ? 1 : 0;
        } else {
            struct _tds__RemoveScopes r = { n, items };
            struct _tds__RemoveScopesResponse a;
            rc = (auth(soap), soap_call___tds__RemoveScopes)(soap, url, NULL, &r, &a) ? 1 : 0;
        }
    } else if (!strcmp(cmd, "discovery-mode")) {
        struct _tds__GetDiscoveryMode r;
        struct _tds__GetDiscoveryModeResponse a;
        rc = (auth(soap), soap_call___tds__GetDiscoveryMode)(soap, url, NULL, &r, &a) ? 1 : 0;
        if (!rc)
            printf("discovery-mode=%s\n", a.DiscoveryMode == tt__DiscoveryMode__Discoverable ? "Discoverable" : "NonDiscoverable");
    } else if (!strcmp(cmd, "set-discovery-mode") && argc > 3) {
        struct _tds__SetDiscoveryMode r = { !strcmp(argv[3], "Discoverable") ? tt__DiscoveryMode__Discoverable : tt__DiscoveryMode__NonDiscoverable };
        struct _tds__SetDiscoveryModeResponse a;
        rc = (auth(soap), soap_call___tds__SetDiscoveryMode)(soap, url, NULL, &r, &a) ? 1 : 0;
    } else if (!strcmp(cmd, "reboot")) {
        struct _tds__SystemReboot r;
        struct _tds__SystemRebootResponse a;
        rc = (auth(soap), soap_call___tds__SystemReboot)(soap, url, NULL, &r, &a) ? 1 : 0;
        if (!rc)
            printf("message=%s\n", a.Message);
    } else if (!strcmp(cmd, "users")) {
        struct _tds__GetUsers r;
        struct _tds__GetUsersResponse a;
        rc = (auth(soap), soap_call___tds__GetUsers)(soap, url, NULL, &r, &a) ? 1 : 0;
        for (int i = 0; !rc && i < a.__sizeUser; i++)
            printf("user=%s %d\n", a.User[i].Username, (int)a.User[i].UserLevel);
    } else if ((!strcmp(cmd, "create-user") || !strcmp(cmd, "set-user")) && argc > 5) {
        /* create-user|set-user URL NAME PASSWORD LEVEL(0 admin, 1 operator, 2 user, 3 anonymous) */
        struct tt__User u = { .Username = argv[3], .Password = argv[4], .UserLevel = (enum tt__UserLevel)atoi(argv[5]) };
        if (!strcmp(cmd, "create-user")) {
            struct _tds__CreateUsers r = { 1, &u };
            struct _tds__CreateUsersResponse a;
            rc = (auth(soap), soap_call___tds__CreateUsers)(soap, url, NULL, &r, &a) ? 1 : 0;
        } else {
            struct _tds__SetUser r = { 1, &u };
            struct _tds__SetUserResponse a;
            rc = (auth(soap), soap_call___tds__SetUser)(soap, url, NULL, &r, &a) ? 1 : 0;
        }
    } else if (!strcmp(cmd, "delete-user") && argc > 3) {
        struct _tds__DeleteUsers r = { argc - 3, argv + 3 };
        struct _tds__DeleteUsersResponse a;
        rc = (auth(soap), soap_call___tds__DeleteUsers)(soap, url, NULL, &r, &a) ? 1 : 0;
    } else if (!strcmp(cmd, "unsupported")) {
        struct _tds__GetSystemSupportInformation r;
        struct _tds__GetSystemSupportInformationResponse a;
        rc = (auth(soap), soap_call___tds__GetSystemSupportInformation)(soap, url, NULL, &r, &a) ? 1 : 0;
    } else {
        fprintf(stderr, "onvif_client: unknown command %s\n", cmd);
        return 2;
    }
    if (rc)
        print_fault(soap);
    soap_destroy(soap);
    soap_end(soap);
    soap_free(soap);
    return rc;
}
