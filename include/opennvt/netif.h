/* Read-only view of the host's network interfaces (names, MAC, MTU, addresses),
 * for GetNetworkInterfaces and the addresses WS-Discovery advertises. */
#ifndef OPENNVT_NETIF_H
#define OPENNVT_NETIF_H

#include <stddef.h>
#include <net/if.h>

#define NETIF_MAX 32
#define NETIF_MAX_ADDRS 8

struct netif_addr {
    char addr[46];    /* numeric, without brackets */
    int prefix_len;
};

struct netif {
    char name[IF_NAMESIZE];
    char mac[18];     /* aa:bb:cc:dd:ee:ff, empty when none */
    int mtu;
    int up;
    int loopback;
    size_t n_v4, n_v6;
    struct netif_addr v4[NETIF_MAX_ADDRS];
    struct netif_addr v6[NETIF_MAX_ADDRS];
};

/* Fills list with up to NETIF_MAX interfaces; returns the count or -errno. */
int netif_list(struct netif *list, size_t max);

#endif
