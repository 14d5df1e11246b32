/* caller.c - who is calling, whatever carried the call: the policy that
 * names them (the owner label of their tasks, admin or not, or a refusal),
 * whether they are on this machine, their address for the log, and what a
 * datagram transport may carry.  dispatch.c fills an srv_peer
 * from libtirpc; nothing here knows about XDR or RPC messages. */
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "service.h"

/*
 * "uid@machine" into buf: the machine name is the
 * client's bytes, printable ones kept.  One too long to fit whole is named
 * by its digest ("h-" and 16 hex digits), so that two long names never
 * become one label by being cut.
 */
static void
sys_label(unsigned uid, const char *machine, char buf[IP_MAX_NAME + 1])
{
    char host[IP_MAX_NAME - 11], digest[65];   /* room for a 10-digit uid and '@' */
    size_t n = 0, room = sizeof(host) - 1;
    const char *m = machine ? machine : "";

    if (strlen(m) > room) {
        proto_sha256_hex(m, strlen(m), digest);
        snprintf(buf, IP_MAX_NAME + 1, "%u@h-%.16s", uid, digest);
        return;
    }
    for (; *m && n < room; m++)
        host[n++] = (*m > 0x20 && *m < 0x7f) ? *m : '?';
    host[n] = '\0';
    snprintf(buf, IP_MAX_NAME + 1, "%u@%s", uid, host);
}

/* Is sa in net? */
static int
in_net(const struct sockaddr *sa, const srv_net *net)
{
    const unsigned char *a;
    unsigned bits = net->prefix, full = bits / 8;

    if (sa->sa_family == AF_INET && net->family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6 && net->family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    } else if (sa->sa_family == AF_INET6 && net->family == AF_INET &&
               IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12;
    } else {
        return 0;
    }
    if (memcmp(a, net->addr, full) != 0)
        return 0;
    return bits % 8 == 0 ||
           ((a[full] ^ net->addr[full]) & (0xFF << (8 - bits % 8)) & 0xFF) == 0;
}

static int
in_trusted_network(const srv_config *cfg, const srv_peer *p)
{
    for (int i = 0; p->addr && i < cfg->ntrust_sys; i++)
        if (in_net(p->addr, &cfg->trust_sys[i]))
            return 1;
    return 0;
}

/* The caller's port, or 0 when unknown. */
static unsigned
peer_port(const srv_peer *p)
{
    if (p->addr && p->addr->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)p->addr)->sin_port);
    if (p->addr && p->addr->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)p->addr)->sin6_port);
    return 0;
}

/*
 * A trusted host's word: from a --trust-sys-from network, over TCP (a UDP
 * source is easily forged), from a port below 1024, which only the host's
 * root may use (NFS's "secure"): the claim is then the host's, not any of
 * its users'.
 */
static int
trusted_host(const srv_config *cfg, const srv_peer *p)
{
    unsigned port = peer_port(p);

    return p->stream && port > 0 && port < IPPORT_RESERVED && in_trusted_network(cfg, p);
}

static int
refuse(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A Kerberos caller: their principal, with integrity at least. */
static int
identify_krb5(const srv_config *cfg, const srv_peer *p, srv_caller *who, char *why, size_t len)
{
    if (!p->principal)
        return refuse(why, len, "refused by the Kerberos rule: the server cannot tell "
                      "this call's principal");
    if (p->krb5_none)
        return refuse(why, len, "refused by the Kerberos rule: calls must be signed "
                      "(integrity, krb5i) or encrypted (privacy, krb5p), not just "
                      "authenticated");
    if (strlen(p->principal) > SERVICE_MAX_PRINCIPAL)
        return refuse(why, len, "refused by the Kerberos rule: principal '%.80s' is longer "
                      "than %zu bytes", p->principal, SERVICE_MAX_PRINCIPAL);
    snprintf(who->owner, sizeof(who->owner), SERVICE_KRB5_LABEL "%s", p->principal);
    for (int i = 0; i < cfg->nadmins; i++)
        if (strcmp(cfg->admins[i], p->principal) == 0)
            who->admin = 1;
    snprintf(who->how, sizeof(who->how), "Kerberos principal %s (%s; Kerberos' word)%s; "
             "your tasks' owner: %s", p->principal, p->krb5_privacy ? "privacy" : "integrity",
             who->admin ? ", an admin (--admin)" : "", who->owner);
    return 0;
}

/* A caller on the local socket: the kernel's uid, which an AUTH_SYS claim must match. */
static int
identify_local(const srv_peer *p, srv_caller *who, char *why, size_t len)
{
    if (p->sys && (p->uid != p->kuid || p->gid != p->kgid))
        return refuse(why, len, "refused by the local-socket rule: your AUTH_SYS credentials "
                      "claim uid %u gid %u, but the kernel says this connection is uid %u "
                      "gid %u", p->uid, p->gid, p->kuid, p->kgid);
    sys_label(p->kuid, p->sys ? p->machine : "local", who->owner);
    who->admin = p->kuid == 0;
    snprintf(who->how, sizeof(who->how), "uid %u on this machine (the local socket: the "
             "kernel's word)%s; your tasks' owner: %s", p->kuid,
             who->admin ? ", an admin (uid 0)" : "", who->owner);
    return 0;
}

int
service_identify(const srv_config *cfg, const srv_peer *p, int exempt, srv_caller *who,
                 char *why, size_t len)
{
    char claim[MAX_MACHINE_NAME + 12], digest[65];  /* a 10-digit uid, '@', the name */

    memset(who, 0, sizeof(*who));
    if (p->krb5)
        return identify_krb5(cfg, p, who, why, len);
    if (p->local)
        return identify_local(p, who, why, len);
    if (p->sys && trusted_host(cfg, p)) {
        sys_label(p->uid, p->machine, who->owner);
        snprintf(who->how, sizeof(who->how), "uid %u as claimed (AUTH_SYS over TCP from a "
                 "privileged port in a --trust-sys-from network: the host's root vouches); "
                 "your tasks' owner: %s", p->uid, who->owner);
        return 0;
    }
    if (cfg->refuse_untrusted && !exempt)
        return refuse(why, len, "refused by the untrusted-caller rule (--untrusted refuse): "
                      "%s proves nothing from your address; call on this machine's local "
                      "socket%s", p->sys ? "AUTH_SYS" : "AUTH_NONE",
                      cfg->krb5_service ? ", or with Kerberos (imgproc --auth krb5)" : "");
    if (cfg->refuse_untrusted) {
        snprintf(who->how, sizeof(who->how), "unverified (%s from an untrusted network): "
                 "this server answers only NULL and SERVER_INFO to you (--untrusted refuse)",
                 p->sys ? "AUTH_SYS" : "AUTH_NONE");
        return 0;
    }
    if (!p->sys) {
        snprintf(who->owner, sizeof(who->owner), "anonymous");
        snprintf(who->how, sizeof(who->how), "anonymous (AUTH_NONE): your tasks are every "
                 "AUTH_NONE caller's");
        return 0;
    }
    /* Anonymous, but kept apart by what the caller sends: the claim is a
     * token only, so its digest labels the tasks (the web gateway puts a
     * secret's digest in the machine name). */
    snprintf(claim, sizeof(claim), "%u@%s", p->uid, p->machine ? p->machine : "");
    proto_sha256_hex(claim, strlen(claim), digest);
    snprintf(who->owner, sizeof(who->owner), "anon-%.16s", digest);
    snprintf(who->how, sizeof(who->how), "anonymous: AUTH_SYS %s proves nothing, so your "
             "claim (uid %u) is only a token that labels your tasks (%s)",
             !in_trusted_network(cfg, p) ? "from an untrusted network"
             : p->stream ? "from an unprivileged port (only a trusted host's root is believed)"
                         : "over UDP", p->uid, who->owner);
    return 0;
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
 * On this machine: the local socket, a loopback address (127/8, ::1, ::ffff:127/104), or one
 * of the machine's own (a caller here that used the host's network address).
 */
int
service_peer_local(const srv_peer *p)
{
    const struct sockaddr *sa = p->addr;

    if (p->local)
        return 1;
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

/* "127.0.0.1:812", "[::1]:812", "local uid 1000", or "?" when unknown. */
void
service_peer_name(const srv_peer *p, char *buf, size_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    int n = 0;

    /* A Kerberos caller by its principal, then where the call came from. */
    if (p->krb5 && p->principal && (n = snprintf(buf, len, "%s on ", p->principal)) > 0 &&
        (size_t)n < len) {
        buf += n;
        len -= (size_t)n;
    }
    snprintf(buf, len, "?");
    if (p->local)
        snprintf(buf, len, "local uid %u", p->kuid);
    else if (p->addr && p->addrlen &&
             getnameinfo(p->addr, p->addrlen, host, sizeof(host), serv, sizeof(serv),
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
