/* Device management service (tds): thin handlers over the domain modules. */
#include "opennvt/devclock.h"
#include "opennvt/mediacfg.h"
#include "opennvt/onvif.h"
#include "opennvt/netcfg.h"
#include "opennvt/netif.h"
#include "opennvt/users.h"
#include "opennvt/log.h"
#include "soap_values.h"
#include "soapH.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef OPENNVT_VERSION
#define OPENNVT_VERSION "0.0.0"
#endif



#define NEW(soap, type) ((type *)onvif_zalloc(soap, sizeof(type)))

/* What the device service can do: the single source for GetServiceCapabilities,
 * GetServices(IncludeCapability) and GetCapabilities. Claims only what works. */
static struct tds__DeviceServiceCapabilities *device_capabilities(struct soap *soap)
{
    struct tds__DeviceServiceCapabilities *c = NEW(soap, struct tds__DeviceServiceCapabilities);
    c->Network = NEW(soap, struct tds__NetworkCapabilities);
    c->Network->IPFilter = onvif_bool(soap, 1);
    c->Network->ZeroConfiguration = onvif_bool(soap, 0);
    c->Network->IPVersion6 = onvif_bool(soap, 0);
    c->Network->DynDNS = onvif_bool(soap, 0);
    c->Network->Dot11Configuration = onvif_bool(soap, 0);
    c->Network->HostnameFromDHCP = onvif_bool(soap, 0);
    c->Network->NTP = onvif_int(soap, DEVCLOCK_MAX_NTP);
    c->Security = NEW(soap, struct tds__SecurityCapabilities);
    c->Security->TLS1_x002e0 = onvif_bool(soap, 0);
    c->Security->TLS1_x002e1 = onvif_bool(soap, 0);
    c->Security->TLS1_x002e2 = onvif_bool(soap, 1);   /* and 1.3, which this schema cannot say */
    c->Security->OnboardKeyGeneration = onvif_bool(soap, 0);
    c->Security->AccessPolicyConfig = onvif_bool(soap, 0);
    c->Security->DefaultAccessPolicy = onvif_bool(soap, 1);
    c->Security->Dot1X = onvif_bool(soap, 0);
    c->Security->RemoteUserHandling = onvif_bool(soap, 0);
    c->Security->X_x002e509Token = onvif_bool(soap, 0);
    c->Security->SAMLToken = onvif_bool(soap, 0);
    c->Security->KerberosToken = onvif_bool(soap, 0);
    c->Security->UsernameToken = onvif_bool(soap, 1);
    c->Security->HttpDigest = onvif_bool(soap, 1);
    c->Security->RELToken = onvif_bool(soap, 0);
    c->Security->MaxUsers = onvif_int(soap, USERS_MAX);
    c->Security->MaxUserNameLength = onvif_int(soap, USERS_NAME_MAX);
    c->Security->MaxPasswordLength = onvif_int(soap, USERS_PASSWORD_MAX);
    c->Security->MaxPasswordHistory = onvif_int(soap, USERS_HISTORY_MAX);
    c->Security->SecurityPolicies = "PasswordComplexity AuthFailureWarnings";
    c->Security->HashingAlgorithms = "MD5 SHA-256";
    c->System = NEW(soap, struct tds__SystemCapabilities);
    c->System->DiscoveryResolve = onvif_bool(soap, 1);
    c->System->DiscoveryBye = onvif_bool(soap, 1);
    c->System->RemoteDiscovery = onvif_bool(soap, 0);
    c->System->SystemBackup = onvif_bool(soap, 1);
    c->System->SystemLogging = onvif_bool(soap, 1);
    c->System->HttpFirmwareUpgrade = onvif_bool(soap, 1);
    c->System->HttpSystemBackup = onvif_bool(soap, 1);
    c->System->HttpSystemLogging = onvif_bool(soap, 1);
    c->System->HttpSupportInformation = onvif_bool(soap, 0);
    c->System->StorageConfiguration = onvif_bool(soap, 0);
    c->System->NetworkConfigNotSupported = onvif_bool(soap, 1);
    c->System->UserConfigNotSupported = onvif_bool(soap, 0);
    c->Misc = NEW(soap, struct tds__MiscCapabilities);
    return c;
}

static int write_capabilities(struct soap *tmp)
{
    struct tds__DeviceServiceCapabilities *caps = device_capabilities(tmp);
    return caps ? soap_out_tds__DeviceServiceCapabilities(tmp, "tds:Capabilities", -1, caps, NULL) : SOAP_EOM;
}

char *onvif_device_capabilities_xml(struct soap *soap)
{
    return onvif_capabilities_fragment(soap, write_capabilities);
}

int __tds__GetDeviceInformation(struct soap *soap, struct _tds__GetDeviceInformation *req,
                                struct _tds__GetDeviceInformationResponse *resp)
{
    (void)req;
    const struct onvif_device *dev = onvif_request_of(soap)->dev;
    resp->Manufacturer = soap_strdup(soap, dev->cfg->manufacturer);
    resp->Model = soap_strdup(soap, dev->cfg->model);
    resp->FirmwareVersion = soap_strdup(soap, OPENNVT_VERSION);
    resp->SerialNumber = soap_strdup(soap, dev->serial);
    resp->HardwareId = soap_strdup(soap, dev->cfg->hardware_id);
    return SOAP_OK;
}

int __tds__GetServices(struct soap *soap, struct _tds__GetServices *req, struct _tds__GetServicesResponse *resp)
{
    size_t n;
    const struct onvif_service *svc = onvif_services(&n);
    resp->Service = soap_malloc(soap, n * sizeof *resp->Service);
    if (!resp->Service)
        return SOAP_EOM;
    resp->__sizeService = (int)n;
    for (size_t i = 0; i < n; i++) {
        struct tds__Service *s = &resp->Service[i];
        memset(s, 0, sizeof *s);
        s->Namespace = (char *)svc[i].ns;
        s->XAddr = onvif_xaddr(soap, svc[i].path);
        s->Version = NEW(soap, struct tt__OnvifVersion);
        s->Version->Major = svc[i].version_major;
        s->Version->Minor = svc[i].version_minor;
        if (req->IncludeCapability == xsd__boolean__true_ && svc[i].capabilities_xml) {
            s->Capabilities = NEW(soap, struct _tds__Service_Capabilities);
            s->Capabilities->__any = svc[i].capabilities_xml(soap);
        }
    }
    return SOAP_OK;
}

int __tds__GetServiceCapabilities(struct soap *soap, struct _tds__GetServiceCapabilities *req,
                                  struct _tds__GetServiceCapabilitiesResponse *resp)
{
    (void)req;
    resp->Capabilities = device_capabilities(soap);
    return SOAP_OK;
}

int __tds__GetCapabilities(struct soap *soap, struct _tds__GetCapabilities *req,
                           struct _tds__GetCapabilitiesResponse *resp)
{
    /* No category means all of them. */
    int all = req->__sizeCategory == 0;
    int want_device = all, want_media = all, want_events = all;
    for (int i = 0; i < req->__sizeCategory; i++) {
        enum tt__CapabilityCategory c = req->Category[i];
        if (c == tt__CapabilityCategory__All)
            want_device = want_media = want_events = 1;
        else if (c == tt__CapabilityCategory__Device)
            want_device = 1;
        else if (c == tt__CapabilityCategory__Media)
            want_media = 1;
        else if (c == tt__CapabilityCategory__Events)
            want_events = 1;
        else
            return onvif_receiver_fault(soap, "ter:ActionNotSupported", "ter:NoSuchService",
                                        "The requested capability category is not offered by this device");
    }
    struct tt__Capabilities *caps = NEW(soap, struct tt__Capabilities);
    if (!caps)
        return SOAP_EOM;
    resp->Capabilities = caps;
    if (want_media) {
        /* The Media service's streaming capabilities, as its GetServiceCapabilities says them. */
        int rtsp = onvif_request_of(soap)->dev->rtsp != NULL;
        struct tt__MediaCapabilities *m = NEW(soap, struct tt__MediaCapabilities);
        if (!m || !(m->StreamingCapabilities = NEW(soap, struct tt__RealTimeStreamingCapabilities)) ||
            !(m->Extension = NEW(soap, struct tt__MediaCapabilitiesExtension)) ||
            !(m->Extension->ProfileCapabilities = NEW(soap, struct tt__ProfileCapabilities)))
            return SOAP_EOM;
        m->XAddr = onvif_xaddr(soap, "/onvif/media_service");
        m->StreamingCapabilities->RTPMulticast = onvif_bool(soap, rtsp);
        m->StreamingCapabilities->RTP_USCORETCP = onvif_bool(soap, rtsp);
        m->StreamingCapabilities->RTP_USCORERTSP_USCORETCP = onvif_bool(soap, rtsp);
        m->Extension->ProfileCapabilities->MaximumNumberOfProfiles = MEDIA_MAX_PROFILES;
        caps->Media = m;
    }
    if (want_events) {
        struct tt__EventCapabilities *e = NEW(soap, struct tt__EventCapabilities);
        if (!e)
            return SOAP_EOM;
        e->XAddr = onvif_xaddr(soap, "/onvif/event_service");
        e->WSSubscriptionPolicySupport = xsd__boolean__false_;
        e->WSPullPointSupport = xsd__boolean__true_;
        e->WSPausableSubscriptionManagerInterfaceSupport = xsd__boolean__false_;
        caps->Events = e;
    }
    if (!want_device)
        return SOAP_OK;
    struct tds__DeviceServiceCapabilities *dc = device_capabilities(soap);
    struct tt__DeviceCapabilities *d = NEW(soap, struct tt__DeviceCapabilities);
    caps->Device = d;
    d->XAddr = onvif_xaddr(soap, "/onvif/device_service");
    d->Network = NEW(soap, struct tt__NetworkCapabilities);
    d->Network->IPFilter = dc->Network->IPFilter;
    d->Network->ZeroConfiguration = dc->Network->ZeroConfiguration;
    d->Network->IPVersion6 = dc->Network->IPVersion6;
    d->Network->DynDNS = dc->Network->DynDNS;
    d->System = NEW(soap, struct tt__SystemCapabilities);
    d->System->DiscoveryResolve = *dc->System->DiscoveryResolve;
    d->System->DiscoveryBye = *dc->System->DiscoveryBye;
    d->System->RemoteDiscovery = *dc->System->RemoteDiscovery;
    d->System->SystemBackup = *dc->System->SystemBackup;
    d->System->SystemLogging = *dc->System->SystemLogging;
    d->System->FirmwareUpgrade = xsd__boolean__true_;   /* UpgradeSystemFirmware: signed packages only */
    d->System->__sizeSupportedVersions = 1;
    d->System->SupportedVersions = NEW(soap, struct tt__OnvifVersion);
    d->System->SupportedVersions->Major = ONVIF_VERSION_MAJOR;
    d->System->SupportedVersions->Minor = ONVIF_VERSION_MINOR;
    d->IO = NEW(soap, struct tt__IOCapabilities);
    d->IO->InputConnectors = onvif_int(soap, 0);
    d->IO->RelayOutputs = onvif_int(soap, 0);
    d->Security = NEW(soap, struct tt__SecurityCapabilities);
    /* TLS 1.2 (and 1.3); no token profiles or access policy configuration */
    d->Security->TLS1_x002e2 = xsd__boolean__true_;
    return SOAP_OK;
}

int __tds__GetWsdlUrl(struct soap *soap, struct _tds__GetWsdlUrl *req, struct _tds__GetWsdlUrlResponse *resp)
{
    (void)soap;
    (void)req;
    resp->WsdlUrl = "https://www.onvif.org/profiles/specifications/";
    return SOAP_OK;
}

int __tds__GetEndpointReference(struct soap *soap, struct _tds__GetEndpointReference *req,
                                struct _tds__GetEndpointReferenceResponse *resp)
{
    (void)req;
    char guid[64];
    snprintf(guid, sizeof guid, "urn:uuid:%s", onvif_request_of(soap)->dev->uuid);
    resp->GUID = soap_strdup(soap, guid);
    return SOAP_OK;
}

int __tds__GetHostname(struct soap *soap, struct _tds__GetHostname *req, struct _tds__GetHostnameResponse *resp)
{
    (void)req;
    char name[256] = "";
    if (gethostname(name, sizeof name - 1) != 0)
        name[0] = '\0';
    resp->HostnameInformation = NEW(soap, struct tt__HostnameInformation);
    resp->HostnameInformation->FromDHCP = xsd__boolean__false_;
    resp->HostnameInformation->Name = name[0] ? soap_strdup(soap, name) : NULL;
    return SOAP_OK;
}

/* Maps a netcfg error to the fault the Core spec names for scope operations. */
static int scope_fault(struct soap *soap, int err)
{
    switch (err) {
    case NETCFG_E_TOO_MANY:
        return onvif_receiver_fault(soap, "ter:Action", "ter:TooManyScopes", "The scope list exceeds the supported number of scopes");
    case NETCFG_E_FIXED:
        return onvif_sender_fault(soap, "ter:OperationProhibited", "ter:FixedScope", "Fixed scopes cannot be changed");
    case NETCFG_E_NO_SCOPE:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", "ter:NoScope", "The scope does not exist");
    case NETCFG_E_INVALID:
        return onvif_sender_fault(soap, "ter:InvalidArgVal", NULL, "Scopes must be URIs of at most 256 printable characters without spaces");
    default:
        return onvif_receiver_fault(soap, "ter:Action", NULL, netcfg_strerror(err));
    }
}

int __tds__GetScopes(struct soap *soap, struct _tds__GetScopes *req, struct _tds__GetScopesResponse *resp)
{
    (void)req;
    struct netcfg_scope *scopes;
    size_t n;
    int rc = netcfg_get_scopes(onvif_request_of(soap)->dev->netcfg, &scopes, &n);
    if (rc != NETCFG_OK)
        return scope_fault(soap, rc);
    if (n == 0) {
        free(scopes);
        return onvif_receiver_fault(soap, "ter:Action", "ter:EmptyScope", "Scope list is empty");
    }
    resp->Scopes = soap_malloc(soap, n * sizeof *resp->Scopes);
    resp->__sizeScopes = (int)n;
    for (size_t i = 0; i < n; i++) {
        resp->Scopes[i].ScopeDef = scopes[i].fixed ? tt__ScopeDefinition__Fixed : tt__ScopeDefinition__Configurable;
        resp->Scopes[i].ScopeItem = soap_strdup(soap, scopes[i].uri);
    }
    free(scopes);
    return SOAP_OK;
}

int __tds__SetScopes(struct soap *soap, struct _tds__SetScopes *req, struct _tds__SetScopesResponse *resp)
{
    (void)resp;
    int rc = netcfg_set_scopes(onvif_request_of(soap)->dev->netcfg, (const char *const *)req->Scopes,
                               (size_t)(req->__sizeScopes > 0 ? req->__sizeScopes : 0));
    return rc == NETCFG_OK ? SOAP_OK : scope_fault(soap, rc);
}

int __tds__AddScopes(struct soap *soap, struct _tds__AddScopes *req, struct _tds__AddScopesResponse *resp)
{
    (void)resp;
    int rc = netcfg_add_scopes(onvif_request_of(soap)->dev->netcfg, (const char *const *)req->ScopeItem,
                               (size_t)(req->__sizeScopeItem > 0 ? req->__sizeScopeItem : 0));
    return rc == NETCFG_OK ? SOAP_OK : scope_fault(soap, rc);
}

int __tds__RemoveScopes(struct soap *soap, struct _tds__RemoveScopes *req, struct _tds__RemoveScopesResponse *resp)
{
    int rc = netcfg_remove_scopes(onvif_request_of(soap)->dev->netcfg, (const char *const *)req->ScopeItem,
                                  (size_t)(req->__sizeScopeItem > 0 ? req->__sizeScopeItem : 0));
    if (rc != NETCFG_OK)
        return scope_fault(soap, rc);
    resp->__sizeScopeItem = req->__sizeScopeItem;
    resp->ScopeItem = req->ScopeItem;
    return SOAP_OK;
}

int __tds__GetDiscoveryMode(struct soap *soap, struct _tds__GetDiscoveryMode *req,
                            struct _tds__GetDiscoveryModeResponse *resp)
{
    (void)req;
    resp->DiscoveryMode = netcfg_get_discoverable(onvif_request_of(soap)->dev->netcfg)
                              ? tt__DiscoveryMode__Discoverable : tt__DiscoveryMode__NonDiscoverable;
    return SOAP_OK;
}

int __tds__SetDiscoveryMode(struct soap *soap, struct _tds__SetDiscoveryMode *req,
                            struct _tds__SetDiscoveryModeResponse *resp)
{
    (void)resp;
    int rc = netcfg_set_discoverable(onvif_request_of(soap)->dev->netcfg,
                                     req->DiscoveryMode == tt__DiscoveryMode__Discoverable);
    return rc == NETCFG_OK ? SOAP_OK : onvif_receiver_fault(soap, "ter:Action", NULL, netcfg_strerror(rc));
}

int __tds__SetSystemFactoryDefault(struct soap *soap, struct _tds__SetSystemFactoryDefault *req,
                                   struct _tds__SetSystemFactoryDefaultResponse *resp)
{
    (void)resp;
    struct onvif_request *r = onvif_request_of(soap);
    int hard = req->FactoryDefault == tt__FactoryDefaultType__Hard;
    if (!r->dev->request_factory_reset)
        return onvif_fault_action_not_supported(soap);
    log_notice("access", "%s: %s factory reset requested by '%s'", r->peer, hard ? "hard" : "soft", r->principal.user);
    r->dev->request_factory_reset(r->dev->restart_arg, hard);
    return SOAP_OK;
}

int __tds__SystemReboot(struct soap *soap, struct _tds__SystemReboot *req, struct _tds__SystemRebootResponse *resp)
{
    (void)req;
    struct onvif_request *r = onvif_request_of(soap);
    log_notice("system", "service restart requested by %s", r->peer);
    if (r->dev->request_restart)
        r->dev->request_restart(r->dev->restart_arg);
    resp->Message = "Restarting services in 1 second";
    return SOAP_OK;
}

static void fill_v4(struct soap *soap, struct tt__NetworkInterface *ni, const struct netif *n)
{
    ni->IPv4 = NEW(soap, struct tt__IPv4NetworkInterface);
    ni->IPv4->Enabled = n->n_v4 ? xsd__boolean__true_ : xsd__boolean__false_;
    ni->IPv4->Config = NEW(soap, struct tt__IPv4Configuration);
    ni->IPv4->Config->DHCP = xsd__boolean__false_;
    ni->IPv4->Config->__sizeManual = (int)n->n_v4;
    ni->IPv4->Config->Manual = soap_malloc(soap, (n->n_v4 ? n->n_v4 : 1) * sizeof(struct tt__PrefixedIPv4Address));
    for (size_t i = 0; i < n->n_v4; i++) {
        ni->IPv4->Config->Manual[i].Address = soap_strdup(soap, n->v4[i].addr);
        ni->IPv4->Config->Manual[i].PrefixLength = n->v4[i].prefix_len;
    }
}

static void fill_v6(struct soap *soap, struct tt__NetworkInterface *ni, const struct netif *n)
{
    if (!n->n_v6)
        return;
    ni->IPv6 = NEW(soap, struct tt__IPv6NetworkInterface);
    ni->IPv6->Enabled = xsd__boolean__true_;
    struct tt__IPv6Configuration *c = NEW(soap, struct tt__IPv6Configuration);
    ni->IPv6->Config = c;
    c->DHCP = tt__IPv6DHCPConfiguration__Off;
    c->Manual = soap_malloc(soap, n->n_v6 * sizeof *c->Manual);
    c->LinkLocal = soap_malloc(soap, n->n_v6 * sizeof *c->LinkLocal);
    for (size_t i = 0; i < n->n_v6; i++) {
        int link_local = strncasecmp(n->v6[i].addr, "fe80:", 5) == 0;
        struct tt__PrefixedIPv6Address *a = link_local ? &c->LinkLocal[c->__sizeLinkLocal++] : &c->Manual[c->__sizeManual++];
        a->Address = soap_strdup(soap, n->v6[i].addr);
        a->PrefixLength = n->v6[i].prefix_len;
    }
}

int __tds__GetNetworkInterfaces(struct soap *soap, struct _tds__GetNetworkInterfaces *req,
                                struct _tds__GetNetworkInterfacesResponse *resp)
{
    (void)req;
    struct netif list[NETIF_MAX];
    int n = netif_list(list, NETIF_MAX);
    if (n < 0)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "Cannot read the network interfaces");
    /* Physical interfaces; loopback only when the host has nothing else. */
    int physical = 0;
    for (int i = 0; i < n; i++)
        physical += !list[i].loopback;
    resp->NetworkInterfaces = soap_malloc(soap, (size_t)(n ? n : 1) * sizeof *resp->NetworkInterfaces);
    resp->__sizeNetworkInterfaces = 0;
    for (int i = 0; i < n; i++) {
        if (physical && list[i].loopback)
            continue;
        struct tt__NetworkInterface *ni = &resp->NetworkInterfaces[resp->__sizeNetworkInterfaces++];
        memset(ni, 0, sizeof *ni);
        ni->token = soap_strdup(soap, list[i].name);
        ni->Enabled = list[i].up ? xsd__boolean__true_ : xsd__boolean__false_;
        ni->Info = NEW(soap, struct tt__NetworkInterfaceInfo);
        ni->Info->Name = soap_strdup(soap, list[i].name);
        ni->Info->HwAddress = soap_strdup(soap, list[i].mac[0] ? list[i].mac : "00:00:00:00:00:00");
        if (list[i].mtu > 0)
            ni->Info->MTU = onvif_int(soap, list[i].mtu);
        fill_v4(soap, ni, &list[i]);
        fill_v6(soap, ni, &list[i]);
    }
    return SOAP_OK;
}

/* Zero configuration (IPv4 link-local, 169.254/16) is the host's business:
 * the daemon reports what the host does on the first non-loopback interface
 * and does not claim to control it (capabilities: ZeroConfiguration false). */
int __tds__GetZeroConfiguration(struct soap *soap, struct _tds__GetZeroConfiguration *req,
                                struct _tds__GetZeroConfigurationResponse *resp)
{
    (void)req;
    struct netif list[NETIF_MAX];
    int n = netif_list(list, NETIF_MAX);
    const struct netif *nif = NULL;
    for (int i = 0; i < n && !nif; i++)
        if (!list[i].loopback)
            nif = &list[i];
    if (!nif)
        return onvif_receiver_fault(soap, "ter:Action", NULL, "No network interface besides loopback");
    struct tt__NetworkZeroConfiguration *z = NEW(soap, struct tt__NetworkZeroConfiguration);
    if (!z)
        return SOAP_EOM;
    z->InterfaceToken = soap_strdup(soap, nif->name);
    z->Addresses = soap_malloc(soap, (nif->n_v4 ? nif->n_v4 : 1) * sizeof *z->Addresses);
    for (size_t k = 0; z->Addresses && k < nif->n_v4; k++)
        if (!strncmp(nif->v4[k].addr, "169.254.", 8))
            z->Addresses[z->__sizeAddresses++] = soap_strdup(soap, nif->v4[k].addr);
    z->Enabled = z->__sizeAddresses ? xsd__boolean__true_ : xsd__boolean__false_;
    resp->ZeroConfiguration = z;
    return SOAP_OK;
}

int __tds__SetZeroConfiguration(struct soap *soap, struct _tds__SetZeroConfiguration *req,
                                struct _tds__SetZeroConfigurationResponse *resp)
{
    (void)req;
    (void)resp;
    return onvif_receiver_fault(soap, "ter:ActionNotSupported", NULL,
                                "The host manages IPv4 link-local addressing; this device reports it only");
}
