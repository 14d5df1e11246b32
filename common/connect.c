/* connect.c - reaching imgprocd: through rpcbind, or straight to a known port.
 * The command line and the web gateway both connect this way. */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"


/* Why the last client handle could not be made, without libtirpc's leading ": ". */
static const char *
create_error(void)
{
    const char *e = clnt_spcreateerror("");

    while (*e == ':' || *e == ' ')
        e++;
    return e;
}

/* Straight to host:port, without asking rpcbind. */
static CLIENT *
connect_port(const char *host, int portnum, rpcprog_t prog, const char *proto, char **why)
{
    struct addrinfo hints = { 0 }, *res = NULL, *ai;
    char port[16];
    int udp = strcmp(proto, "udp") == 0;
    CLIENT *clnt = NULL;
    int rc;

    snprintf(port, sizeof(port), "%d", portnum);
    hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        if (asprintf(why, "cannot resolve '%s': %s", host, gai_strerror(rc)) < 0)
            *why = NULL;
        return NULL;
    }
    for (ai = res; ai && !clnt; ai = ai->ai_next) {
        const char *netid = ai->ai_family == AF_INET6 ? (udp ? "udp6" : "tcp6")
                                                      : (udp ? "udp" : "tcp");
        struct netconfig *nc = getnetconfigent(netid);
        struct netbuf nb = { ai->ai_addrlen, ai->ai_addrlen, ai->ai_addr };
        if (!nc)
            continue;
        /* 256 KiB record buffers, libtirpc's largest (its default is 64 KiB). */
        clnt = clnt_tli_create(RPC_ANYFD, nc, &nb, prog, IMGPROC_V1,
                               PROTO_RECORD_BUFFER, PROTO_RECORD_BUFFER);
        freenetconfigent(nc);
    }
    freeaddrinfo(res);
    if (!clnt && asprintf(why, "cannot reach %s port %d: %s (is imgprocd running there?)",
                          host, portnum, create_error()) < 0)
        *why = NULL;
    return clnt;
}

/*
 * Over TCP through rpcbind, as clnt_create does (tcp, then tcp6), but with
 * 256 KiB record buffers: clnt_create's are libtirpc's default, 64 KiB,
 * and a Kerberos call must fit its buffer whole (libtirpc signs it there).
 */
static CLIENT *
connect_rpcbind_tcp(const char *host, rpcprog_t prog)
{
    static const char *const netids[] = { "tcp", "tcp6" };
    __typeof__(rpc_createerr) first;    /* tcp's failure (the struct tag is also a macro) */
    CLIENT *clnt = NULL;

    for (size_t i = 0; i < 2 && !clnt; i++) {
        struct netconfig *nc = getnetconfigent(netids[i]);
        struct sockaddr_storage ss;
        struct netbuf nb = { sizeof(ss), sizeof(ss), &ss };
        if (nc && rpcb_getaddr(prog, IMGPROC_V1, nc, &nb, host))
            clnt = clnt_tli_create(RPC_ANYFD, nc, &nb, prog, IMGPROC_V1,
                                   PROTO_RECORD_BUFFER, PROTO_RECORD_BUFFER);
        if (nc)
            freenetconfigent(nc);
        /* An IPv4 address is an unknown host to tcp6: keep tcp's reason. */
        if (i == 0)
            first = rpc_createerr;
        else if (!clnt && rpc_createerr.cf_stat == RPC_UNKNOWNHOST)
            rpc_createerr = first;
    }
    return clnt;
}

/* Is host this machine: a loopback name or address, or its own name? */
static int
this_machine(const char *host)
{
    char me[256];

    if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
        strncmp(host, "127.", 4) == 0)
        return 1;
    return gethostname(me, sizeof(me)) == 0 && (me[sizeof(me) - 1] = '\0', 1) &&
           strcasecmp(host, me) == 0;
}

/*
 * The server's local socket, as this machine's rpcbind names it (netid
 * "local"): there the kernel tells the server who we are.  NULL when there
 * is none (an older server, or --local-socket none), with why when asked
 * for.
 */
static CLIENT *
connect_local(rpcprog_t prog, char **why, char **note)
{
    struct netconfig *nc = getnetconfigent("local");
    struct sockaddr_un sun;
    struct netbuf nb = { sizeof(sun), sizeof(sun), &sun };
    CLIENT *clnt = NULL;
    int named = 0;

    memset(&sun, 0, sizeof(sun));
    if (nc && (named = rpcb_getaddr(prog, IMGPROC_V1, nc, &nb, "localhost")))
        clnt = clnt_tli_create(RPC_ANYFD, nc, &nb, prog, IMGPROC_V1,
                               PROTO_RECORD_BUFFER, PROTO_RECORD_BUFFER);
    if (!clnt && why && !named &&
        asprintf(why, "no local socket for program 0x%lX on this machine: %s (is imgprocd "
                 "running here, with a --local-socket, and registered with rpcbind?)",
                 (unsigned long)prog, create_error()) < 0)
        *why = NULL;
    if (!clnt && why && named &&
        asprintf(why, "cannot use the server's local socket %.108s: %s (you need search "
                 "permission on its folder)", sun.sun_path, create_error()) < 0)
        *why = NULL;
    /* Named but out of reach (a folder we may not enter): say so, since
     * over TCP the server cannot ask the kernel who we are. */
    if (!clnt && named && note && asprintf(note, "cannot use the server's local socket %.108s "
                                           "(%s): calling over TCP, where the server cannot "
                                           "ask the kernel who you are", sun.sun_path,
                                           create_error()) < 0)
        *note = NULL;
    if (nc)
        freenetconfigent(nc);
    return clnt;
}

size_t
proto_chunk_size(const CLIENT *clnt)
{
    return clnt->cl_auth && clnt->cl_auth->ah_cred.oa_flavor == RPCSEC_GSS ? PROTO_KRB5_CHUNK
                                                                            : IP_MAX_CHUNK;
}

const char *
proto_transport(CLIENT *clnt)
{
    int fd, domain = 0, type = 0;
    socklen_t len = sizeof(int);

    if (!clnt_control(clnt, CLGET_FD, (char *)&fd) ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return "?";
    len = sizeof(int);
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    if (domain == AF_LOCAL)
        return "local";
    return type == SOCK_DGRAM ? "udp" : "tcp";
}

CLIENT *
proto_connect(const char *host, int port, rpcprog_t prog, const char *proto,
              unsigned timeout, char **why)
{
    struct timeval tv = { (time_t)timeout, 0 };
    int local = strcmp(proto, "local") == 0;
    CLIENT *clnt = NULL;
    char *note = NULL;

    *why = NULL;
    /* "auto": the local socket when the server is here and has one, else TCP. */
    if (local || (strcmp(proto, "auto") == 0 && !port && this_machine(host)))
        clnt = connect_local(prog, local ? why : NULL, local ? NULL : &note);
    if (strcmp(proto, "auto") == 0)
        proto = "tcp";
    if (!clnt && !local && port) {
        clnt = connect_port(host, port, prog, proto, why);
    } else if (!clnt && !local && strcmp(proto, "tcp") == 0) {
        clnt = connect_rpcbind_tcp(host, prog);
        if (!clnt && asprintf(why, "cannot reach %s: %s (is imgprocd running there, on program "
                              "0x%lX? -p PORT skips rpcbind)", host, create_error(),
                              (unsigned long)prog) < 0)
            *why = NULL;
    } else if (!clnt && !local) {
        clnt = clnt_create_timed(host, prog, IMGPROC_V1, proto, &tv);
        if (!clnt && asprintf(why, "cannot reach %s: %s (is imgprocd running there, on program "
                              "0x%lX? -p PORT skips rpcbind)", host, create_error(),
                              (unsigned long)prog) < 0)
            *why = NULL;
    }
    if (!clnt) {
        free(note);
        return NULL;
    }
    *why = note;
    /* Small calls must not wait for delayed ACKs (Nagle): see server/net.c. */
    if (strcmp(proto_transport(clnt), "tcp") == 0) {
        int fd;
        if (clnt_control(clnt, CLGET_FD, (char *)&fd))
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
    }
    /* One timeout for every call, whatever the stubs ask for. */
    clnt_control(clnt, CLSET_TIMEOUT, (char *)&tv);
    return clnt;
}
