/* conn.c - reaching the server: through rpcbind, or straight to a known port. */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"

#define CLI_RECORD_BUFFER (256 * 1024) /* bytes buffered each way (TCP) */

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
connect_port(const cli_opts *o, char **why)
{
    struct addrinfo hints = { 0 }, *res = NULL, *ai;
    char port[16];
    int udp = strcmp(o->proto, "udp") == 0;
    CLIENT *clnt = NULL;
    int rc;

    snprintf(port, sizeof(port), "%d", o->port);
    hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
    rc = getaddrinfo(o->host, port, &hints, &res);
    if (rc != 0) {
        if (asprintf(why, "cannot resolve '%s': %s", o->host, gai_strerror(rc)) < 0)
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
        clnt = clnt_tli_create(RPC_ANYFD, nc, &nb, o->program, IMGPROC_V1,
                               CLI_RECORD_BUFFER, CLI_RECORD_BUFFER);
        freenetconfigent(nc);
    }
    freeaddrinfo(res);
    if (!clnt && asprintf(why, "cannot reach %s port %d: %s", o->host, o->port,
                          create_error()) < 0)
        *why = NULL;
    return clnt;
}

/* "sys": our uid and host; "none"; "UID[@HOST]": any identity, to show it is only a claim. */
static AUTH *
make_auth(const char *mode)
{
    char host[256];
    const char *at;
    gid_t gid;

    if (!mode || strcmp(mode, "sys") == 0)
        return authunix_create_default();
    if (strcmp(mode, "none") == 0)
        return authnone_create();
    at = strchr(mode, '@');
    if (at)
        snprintf(host, sizeof(host), "%s", at + 1);
    else if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    gid = (gid_t)strtoul(mode, NULL, 10);
    return authunix_create(host, (uid_t)strtoul(mode, NULL, 10), gid, 0, NULL);
}

CLIENT *
cli_connect(const cli_opts *o, char **why)
{
    struct timeval tv = { o->timeout, 0 };
    CLIENT *clnt;

    *why = NULL;
    if (o->port)
        clnt = connect_port(o, why);
    else {
        clnt = clnt_create_timed(o->host, o->program, IMGPROC_V1, o->proto, &tv);
        if (!clnt && asprintf(why, "cannot reach %s: %s", o->host, create_error()) < 0)
            *why = NULL;
    }
    if (!clnt)
        return NULL;
    /* Small calls must not wait for delayed ACKs (Nagle): see server/net.c. */
    if (strcmp(o->proto, "tcp") == 0) {
        int fd;
        if (clnt_control(clnt, CLGET_FD, (char *)&fd))
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
    }
    /* One timeout for every call, whatever the stubs ask for. */
    clnt_control(clnt, CLSET_TIMEOUT, (char *)&tv);
    /* AUTH_SYS: says who we claim to be (uid, machine).  A label, not proof. */
    auth_destroy(clnt->cl_auth);
    clnt->cl_auth = make_auth(o->auth);
    if (!clnt->cl_auth)
        clnt->cl_auth = authnone_create();
    return clnt;
}

CLIENT *
cli_connect_or_say(const cli_opts *o)
{
    char *why = NULL;
    CLIENT *clnt = cli_connect(o, &why);

    if (!clnt) {
        cli_error("%s\n", why ? why : "cannot reach the server");
        free(why);
    }
    return clnt;
}

int
cli_require_tcp(const cli_opts *o, const char *what)
{
    if (strcmp(o->proto, "udp") != 0)
        return 0;
    cli_error("%s goes over TCP only: over UDP imgprocd serves ping, info "
              "and the task queries, and a datagram holds %d bytes at most; drop -T udp "
              "(TCP, the default, carries any size)\n", what, UDPMSGSIZE);
    return -1;
}

const char *
cli_rpc_error(CLIENT *clnt)
{
    const char *e = clnt_sperror(clnt, "");

    while (*e == ':' || *e == ' ')
        e++;
    return e;
}

void
cli_disconnect(CLIENT *clnt)
{
    if (!clnt)
        return;
    if (clnt->cl_auth)
        auth_destroy(clnt->cl_auth);
    clnt_destroy(clnt);
}
