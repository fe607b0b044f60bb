/* Listening TCP sockets with the bind address rules every OpenNVT server
 * shares: a numeric bind address (IPv4 or IPv6, that address only) or, when
 * none is set, one dual-stack socket for all addresses (IPv4 only where
 * IPv6 is off). Non-blocking, close-on-exec, SO_REUSEADDR. */
#ifndef OPENNVT_NETLISTEN_H
#define OPENNVT_NETLISTEN_H

/* Opens the listener for port (0: an ephemeral port) and returns its fd, or
 * -errno (-EINVAL for a bind address that is not numeric). *bound gets the
 * port bound. area names the caller in log lines. */
int netlisten_open(const char *bind_addr, int port, const char *area, int *bound);

#endif
