/* Host interface enumeration with getifaddrs() and SIOCGIF* ioctls. */
#include "opennvt/netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int prefix_of(const struct sockaddr *mask)
{
    int bits = 0;
    const unsigned char *b;
    size_t n;
    if (!mask)
        return 0;
    if (mask->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)mask)->sin_addr;
        n = 4;
    } else if (mask->sa_family == AF_INET6) {
        b = (const unsigned char *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
        n = 16;
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        bits += __builtin_popcount(b[i]);
    return bits;
}

static struct netif *find_or_add(struct netif *list, size_t *count, size_t max, const char *name)
{
    for (size_t i = 0; i < *count; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    if (*count >= max)
        return NULL;
    struct netif *n = &list[(*count)++];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    return n;
}

int netif_list(struct netif *list, size_t max)
{
    struct ifaddrs *ifa_list;
    if (getifaddrs(&ifa_list) != 0)
        return -errno;
    size_t count = 0;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (struct ifaddrs *ifa = ifa_list; ifa; ifa = ifa->ifa_next) {
        struct netif *n = find_or_add(list, &count, max, ifa->ifa_name);
        if (!n)
            break;
        n->up = (ifa->ifa_flags & IFF_UP) != 0;
        n->loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
        if (!ifa->ifa_addr)
            continue;
        if (ifa->ifa_addr->sa_family == AF_PACKET) {
            const struct sockaddr_ll *ll = (const struct sockaddr_ll *)ifa->ifa_addr;
            if (ll->sll_halen == 6)
                snprintf(n->mac, sizeof n->mac, "%02x:%02x:%02x:%02x:%02x:%02x", ll->sll_addr[0],
                         ll->sll_addr[1], ll->sll_addr[2], ll->sll_addr[3], ll->sll_addr[4], ll->sll_addr[5]);
        } else if (ifa->ifa_addr->sa_family == AF_INET && n->n_v4 < NETIF_MAX_ADDRS) {
            struct netif_addr *a = &n->v4[n->n_v4++];
            inet_ntop(AF_INET, &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr, a->addr, sizeof a->addr);
            a->prefix_len = prefix_of(ifa->ifa_netmask);
        } else if (ifa->ifa_addr->sa_family == AF_INET6 && n->n_v6 < NETIF_MAX_ADDRS) {
            struct netif_addr *a = &n->v6[n->n_v6++];
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, a->addr, sizeof a->addr);
            a->prefix_len = prefix_of(ifa->ifa_netmask);
        }
    }
    freeifaddrs(ifa_list);
    for (size_t i = 0; i < count && sock >= 0; i++) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", list[i].name);
        if (ioctl(sock, SIOCGIFMTU, &ifr) == 0)
            list[i].mtu = ifr.ifr_mtu;
    }
    if (sock >= 0)
        close(sock);
    return (int)count;
}
