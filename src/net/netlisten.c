/* Listening sockets shared by the SOAP and RTSP servers. */
#include "opennvt/netlisten.h"
#include "opennvt/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int open_listener(const struct sockaddr *sa, socklen_t salen, int v6only)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, sa, salen) != 0 || listen(fd, 1024) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int netlisten_open(const char *bind_addr, int port, const char *area, int *bound)
{
    int fd;
    if (bind_addr && bind_addr[0]) {
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
        struct addrinfo *ai;
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%d", port);
        if (getaddrinfo(bind_addr, portstr, &hints, &ai) != 0) {
            log_err(area, "bind address '%s' is not a numeric IPv4 or IPv6 address", bind_addr);
            return -EINVAL;
        }
        fd = open_listener(ai->ai_addr, ai->ai_addrlen, 1);
        freeaddrinfo(ai);
        if (fd < 0) {
            log_err(area, "cannot listen on %s port %d: %s", bind_addr, port, strerror(-fd));
            return fd;
        }
    } else {
        struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT, .sin6_port = htons((uint16_t)port) };
        fd = open_listener((struct sockaddr *)&a6, sizeof a6, 0);
        if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL) {
            struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY), .sin_port = htons((uint16_t)port) };
            fd = open_listener((struct sockaddr *)&a4, sizeof a4, 0);
        }
        if (fd < 0) {
            log_err(area, "cannot listen on port %d: %s", port, strerror(-fd));
            return fd;
        }
    }
    *bound = bound_port(fd);
    return fd;
}
