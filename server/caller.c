/* caller.c - who is calling, whatever carried the call: the owner label of
 * their tasks, whether they are on this machine, their address for the log,
 * and what a datagram transport may carry.  dispatch.c fills an srv_peer
 * from libtirpc; nothing here knows about XDR or RPC messages. */
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "service.h"

/*
 * The owner label of the caller's tasks.  AUTH_SYS says uid and machine
 * name, but the client says so itself: a label, not proof.
 */
void
service_owner(const srv_peer *p, char *buf, size_t len)
{
    char host[IP_MAX_NAME - 11];  /* room for a 10-digit uid, '@' and the name */
    size_t n = 0;

    if (!p->sys) {
        snprintf(buf, len, "anonymous");
        return;
    }
    /* The machine name is the client's bytes: printable ones only. */
    for (const char *m = p->machine; m && *m && n + 1 < sizeof(host); m++)
        host[n++] = (*m > 0x20 && *m < 0x7f) ? *m : '?';
    host[n] = '\0';
    snprintf(buf, len, "%u@%s", p->uid, host);
}

/* Is sa one of this machine's own interface addresses? */
static int
own_address(const struct sockaddr *sa)
{
    struct ifaddrs *all, *i;
    int found = 0;

    if (getifaddrs(&all) < 0)
        return 0;
    for (i = all; i && !found; i = i->ifa_next) {
        const struct sockaddr *a = i->ifa_addr;
        if (!a || a->sa_family != sa->sa_family)
            continue;
        if (sa->sa_family == AF_INET)
            found = ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
                    ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
        else
            found = IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)a)->sin6_addr,
                                       &((const struct sockaddr_in6 *)sa)->sin6_addr);
    }
    freeifaddrs(all);
    return found;
}

/*
 * On this machine: a loopback address (127/8, ::1, ::ffff:127/104), or one
 * of the machine's own (a caller here that used the host's network address).
 */
int
service_peer_local(const srv_peer *p)
{
    const struct sockaddr *sa = p->addr;

    if (sa && sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127 ||
               own_address(sa);
    if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127) ||
               own_address(sa);
    }
    return 0;
}

/* "127.0.0.1:812", "[::1]:812", or "?" when unknown. */
void
service_peer_name(const srv_peer *p, char *buf, size_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    snprintf(buf, len, "?");
    if (!p->addr || p->addrlen == 0)
        return;
    if (getnameinfo(p->addr, p->addrlen, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(buf, len, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, serv);
}

/*
 * UDP has one serving thread, and its clients retransmit: a slow call there
 * stops every UDP caller and runs again for each retransmission.  So UDP
 * serves only the cheap, bounded procedures (the udp column of dispatch.c's
 * table); image work, uploads and waits are refused with a reply saying so.
 */
int
service_transport_ok(const char *proc, int udp_ok, int stream, char *why, size_t len)
{
    if (stream || udp_ok)
        return 0;
    snprintf(why, len, "%s is served over TCP only (UDP carries small, quick calls: NULL, "
             "SERVER_INFO and the task queries); use TCP, the default", proc);
    return -1;
}

int
service_result_fits(int stream, size_t result_bytes, const char *proc, char *why, size_t len)
{
    if (stream || result_bytes <= SRV_UDP_RESULT_ROOM)
        return 0;
    snprintf(why, len, "%s's reply (%zu bytes) is larger than a UDP datagram carries (%d "
             "bytes); use TCP, the default", proc, result_bytes, SRV_UDP_RESULT_ROOM);
    return -1;
}
