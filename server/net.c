/*
 * net.c - sockets, rpcbind registration, and the threads that serve them.
 *
 * svc_run() serves one request at a time, so imgprocd does not use it.  The
 * main thread accepts TCP connections itself and gives each one a thread
 * that owns the connection's transport for its whole life; one more thread
 * serves UDP.  docs/ARCHITECTURE.md explains why.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/tcp.h>          /* struct tcp_info with tcpi_bytes_received */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>
#include <rpc/svc_auth.h>
#include <rpc/rpcsec_gss.h>

#include "log.h"
#include "proto.h"
#include "server.h"

#define NET_SPIN_NS 50000              /* look for the next call this long before sleeping */
#define NET_SEND_TIMEOUT 60            /* seconds a reply may sit unread before the connection dies */
#define NET_RATE_WINDOW_MS 10000       /* a call being received is measured over this */
#define NET_LOCAL_RECORD_MS 120000     /* a call on the local socket arrives within this */

#ifndef RQCRED_SIZE
#define RQCRED_SIZE 400         /* libtirpc's room for decoded credentials */
#endif

/* One TCP connection handed to its thread. */
typedef struct conn {
    srv *s;                     /* the server */
    int fd;                     /* the accepted socket */
    struct conn *prev, *next;   /* in s->conns, until the socket is closed (under lock) */
    struct sockaddr_storage peer; /* who connected */
    conn_activity act;          /* in a call, receiving one, measured since (see server.h) */
    int64_t end_bytes;          /* bytes the socket had received when its last record ended */
    long long active_ms;        /* accepted, or its last record served (atomic) */
    int evicted;                /* shut down (under lock) */
    long long mark_ms;          /* receiving measured since, 0 = not (under lock) */
    uint64_t mark_bytes;        /* bytes the socket had received then */
} conn;

static long long
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Do a and b count as one address: IPv4 all 32 bits, IPv6 its /64 (one site's). */
static int
same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 8) == 0;
    /* The local socket's callers, by uid (see local_peer). */
    if (a->ss_family == AF_LOCAL)
        return strcmp(((const struct sockaddr_un *)a)->sun_path,
                      ((const struct sockaddr_un *)b)->sun_path) == 0;
    return 1;
}

/*
 * A caller on the local socket has no address: it is its uid, as the kernel
 * says (SO_PEERCRED), written where an address would be, so that the caps
 * per address count each user apart ("uid 1000").
 */
static void
local_peer(int fd, struct sockaddr_storage *peer)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)peer;
    struct ucred uc;
    socklen_t len = sizeof(uc);

    memset(peer, 0, sizeof(*peer));
    sun->sun_family = AF_LOCAL;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0)
        snprintf(sun->sun_path, sizeof(sun->sun_path), "uid %u", (unsigned)uc.uid);
}

/*
 * Bytes the kernel has received on fd's connection (TCP_INFO, Linux 4.1
 * and later); -1 when it cannot say, and then nothing is measured.
 */
static int64_t
bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return -1;
    return (int64_t)ti.tcpi_bytes_received;
}

/*
 * Is c bringing its call slower than --min-receive-rate, measured from when
 * its record began to arrive (or its last call or wait for the budget
 * ended), counting the bytes that woke it?  A stalled sender is within
 * milliseconds; a fair one never.  Called under s->lock.
 */
static int
sending_slowly(const srv *s, conn *c)
{
    long long ms = mono_ms() - c->act.since_ms;
    int64_t now;

    if (!s->cfg.min_receive_rate || c->act.since_bytes < 0 || (now = bytes_received(c->fd)) < 0)
        return 0;
    return (uint64_t)(now - c->act.since_bytes) * 1000 <
           (uint64_t)s->cfg.min_receive_rate * (uint64_t)(ms > 0 ? ms : 0);
}

void
net_measure_from_now(srv *s, conn_activity *act)
{
    int64_t got = bytes_received(act->fd);

    pthread_mutex_lock(&s->lock);
    act->since_ms = mono_ms();
    act->since_bytes = got;
    pthread_mutex_unlock(&s->lock);
}

/* Has a call arrived on fd that its thread has not begun to read? */
static int
call_waiting(int fd)
{
    int n = 0;

    return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/*
 * Shuts down the connection that has been quiet longest and is neither in
 * a call nor bringing one at a fair rate (idle, or sending slower than
 * --min-receive-rate), among all of them or, when from is given, among those
 * from its address: as nginx and HAProxy do, so that idle or slow
 * connections cannot lock everyone out.  Its thread sees the socket end and
 * leaves.  1 if one was found.  Called under s->lock.
 */
static int
evict_quietest(srv *s, const struct sockaddr_storage *from)
{
    conn *victim = NULL;

    for (conn *c = s->conns; c; c = c->next)
        if (!c->evicted && !__atomic_load_n(&c->act.working, __ATOMIC_RELAXED) &&
            (__atomic_load_n(&c->act.receiving, __ATOMIC_RELAXED) ? sending_slowly(s, c)
                                                                  : !call_waiting(c->fd)) &&
            (!from || same_address(&c->peer, from)) &&
            (!victim || __atomic_load_n(&c->active_ms, __ATOMIC_RELAXED) <
                        __atomic_load_n(&victim->active_ms, __ATOMIC_RELAXED)))
            victim = c;
    if (!victim)
        return 0;
    victim->evicted = 1;
    s->nclosing++;
    shutdown(victim->fd, SHUT_RDWR);
    return 1;
}

/* Connections open from addr's address.  Called under s->lock. */
static unsigned
count_from(srv *s, const struct sockaddr_storage *addr)
{
    unsigned n = 0;

    for (conn *c = s->conns; c; c = c->next)
        if (!c->evicted && same_address(&c->peer, addr))
            n++;
    return n;
}

/*
 * The accept loop's look, once a second, at the connections reading a
 * call: one that brought less than --min-receive-rate bytes a second over
 * the last NET_RATE_WINDOW_MS is closed.  libtirpc gives a read inside a
 * record 35 s, so a sender of a byte every few seconds would otherwise hold
 * its thread, its slot and its share of the byte budget for ever.  Time in a
 * call, or waiting for the budget, is not counted.
 */
static void
close_slow_senders(srv *s)
{
    long long now = mono_ms();
    uint64_t slowest = UINT64_MAX;
    unsigned closed = 0;

    pthread_mutex_lock(&s->lock);
    for (conn *c = s->conns; c; c = c->next) {
        int64_t got;
        if (c->evicted || !__atomic_load_n(&c->act.receiving, __ATOMIC_RELAXED) ||
            __atomic_load_n(&c->act.working, __ATOMIC_RELAXED) ||
            (got = bytes_received(c->fd)) < 0) {
            c->mark_ms = 0;
            continue;
        }
        if (c->mark_ms == 0) {
            c->mark_ms = now;
            c->mark_bytes = (uint64_t)got;
        } else if (now - c->mark_ms >= NET_RATE_WINDOW_MS) {
            uint64_t rate = ((uint64_t)got - c->mark_bytes) * 1000 / (uint64_t)(now - c->mark_ms);
            if (rate < s->cfg.min_receive_rate) {
                c->evicted = 1;
                s->nclosing++;
                shutdown(c->fd, SHUT_RDWR);
                closed++;
                if (rate < slowest)
                    slowest = rate;
            }
            c->mark_ms = now;
            c->mark_bytes = (uint64_t)got;
        }
    }
    pthread_mutex_unlock(&s->lock);
    /* Logged outside the lock: a stalled log must not stall every thread. */
    if (closed)
        srv_log(SRV_LOG_VERBOSE, "closed %u connection%s sending a call at %llu bytes/s or "
                "less (--min-receive-rate %u)\n", closed, closed == 1 ? "" : "s",
                (unsigned long long)slowest, s->cfg.min_receive_rate);
}

/*
 * Calls that must end by a deadline, looked at once a second:
 *   - on a Kerberos connection, within KRB5_CALL_SECONDS of the context's
 *     last use (libtirpc frees an unused context after 300 s, from any
 *     thread, even under a call still using it);
 *   - on the local socket, a record must arrive within NET_LOCAL_RECORD_MS:
 *     the kernel says nothing of its bytes, so --min-receive-rate cannot
 *     measure its sender.
 * The connection is shut down: its call stops (image work sees the hang-up).
 */
static void
close_overdue(srv *s)
{
    long long now = mono_ms();
    unsigned krb5 = 0, local = 0;

    pthread_mutex_lock(&s->lock);
    for (conn *c = s->conns; c; c = c->next) {
        long long used = __atomic_load_n(&c->act.krb5.used_ms, __ATOMIC_RELAXED);
        int receiving = __atomic_load_n(&c->act.receiving, __ATOMIC_RELAXED);
        int over_krb5 = used && receiving && now - used > KRB5_CALL_SECONDS * 1000LL;
        int over_local = c->peer.ss_family == AF_LOCAL && receiving &&
                         !__atomic_load_n(&c->act.working, __ATOMIC_RELAXED) &&
                         now - c->act.since_ms > NET_LOCAL_RECORD_MS;
        if (c->evicted || !(over_krb5 || over_local))
            continue;
        c->evicted = 1;
        s->nclosing++;
        shutdown(c->fd, SHUT_RDWR);
        krb5 += over_krb5;
        local += !over_krb5;
    }
    pthread_mutex_unlock(&s->lock);
    if (krb5)
        srv_log(SRV_LOG_NOTICE, "closed %u Kerberos connection%s whose call outlasted %d s "
                "(libtirpc forgets a context unused for 300 s)\n", krb5, krb5 == 1 ? "" : "s",
                KRB5_CALL_SECONDS);
    if (local)
        srv_log(SRV_LOG_VERBOSE, "closed %u local-socket connection%s whose call took over "
                "%d s to arrive\n", local, local == 1 ? "" : "s", NET_LOCAL_RECORD_MS / 1000);
}

/*
 * Brings the table, and every address, back to their limits once the
 * connections let in over them (start_conn) can be judged.  Called from the
 * accept loop once a second.
 */
static void
trim_overflow(srv *s)
{
    pthread_mutex_lock(&s->lock);
    if (!s->overflowed) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    s->overflowed = 0;
    while (s->nconn - s->nclosing > s->cfg.max_connections && evict_quietest(s, NULL))
        ;
    for (conn *c = s->conns; s->cfg.max_per_address && c; c = c->next)
        while (!c->evicted && count_from(s, &c->peer) > s->cfg.max_per_address &&
               evict_quietest(s, &c->peer))
            ;
    pthread_mutex_unlock(&s->lock);
}

/* Takes c out of s->conns, before its socket is closed: the fd number may be
 * reused at once, and shutdown must never touch another file. */
static void
conn_unlink(conn *c)
{
    srv *s = c->s;

    pthread_mutex_lock(&s->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&s->lock);
}

static int
fail(char **why, const char *fmt, const char *arg, int err)
{
    if (why && asprintf(why, fmt, arg, strerror(err)) < 0)
        *why = NULL;
    errno = err;                /* for the caller, past asprintf */
    return -1;
}

/* "127.0.0.1 port 111", "::1 port 111": a socket address for messages. */
static void
addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";

    getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(buf, size, "%s port %s", host, port);
}

static int
open_socket(srv *s, const struct addrinfo *ai, int stream, char **why)
{
    srv_listener *l = &s->listeners[s->nlisteners];
    int one = 1;
    int fd = socket(ai->ai_family, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return fail(why, "cannot create a %s socket: %s", stream ? "TCP" : "UDP", errno);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        (stream && listen(fd, 128) < 0)) {
        int err = errno;
        char where[NI_MAXHOST + 32];
        addr_text(ai->ai_addr, ai->ai_addrlen, where, sizeof(where));
        close(fd);
        if (asprintf(why, "cannot listen on %s (%s): %s", where, stream ? "TCP" : "UDP",
                     strerror(err)) < 0)
            *why = NULL;
        errno = err;
        return -1;
    }
    l->fd = fd;
    l->stream = stream;
    if (ai->ai_family == AF_INET6)
        l->netid = stream ? "tcp6" : "udp6";
    else
        l->netid = stream ? "tcp" : "udp";
    l->xprt = NULL;
    s->nlisteners++;
    return 0;
}

/* sa's port, in network order. */
static in_port_t *
port_of(struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? &((struct sockaddr_in6 *)sa)->sin6_port
                                     : &((struct sockaddr_in *)sa)->sin_port;
}

/*
 * Without --port, a second address of a family takes the port the first one
 * got: rpcbind keeps one address per program and transport, and that
 * address's port then reaches every address of the family.
 */
static void
same_port_as_family(const srv *s, struct sockaddr *sa)
{
    for (int i = 0; i < s->nlisteners; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(s->listeners[i].fd, (struct sockaddr *)&ss, &sl) == 0 &&
            ss.ss_family == sa->sa_family) {
            *port_of(sa) = *port_of((struct sockaddr *)&ss);
            return;
        }
    }
}

/*
 * The local socket (AF_LOCAL, netid "local"): any user of this machine may
 * connect (mode 0666), and the kernel says who they are (dispatch.c).  A
 * socket file left by a server that died is replaced; one a live server
 * answers at is not.
 */
static int
open_local(srv *s, const char *path, char **why)
{
    srv_listener *l = &s->listeners[s->nlisteners];
    struct sockaddr_un sun = { .sun_family = AF_LOCAL };
    struct stat sb;
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        if (asprintf(why, "--local-socket '%s' is longer than a socket path may be (%zu "
                     "bytes)", path, sizeof(sun.sun_path) - 1) < 0)
            *why = NULL;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_LOCAL, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return fail(why, "cannot create the local socket %s: %s", path, errno);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        close(fd);
        if (asprintf(why, "a live server already listens on the local socket %s; stop it, "
                     "or give this one another --local-socket", path) < 0)
            *why = NULL;
        return -1;
    }
    /* A dead server's socket is replaced; anything else at the path stays. */
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            if (asprintf(why, "--local-socket %s: something other than a socket is there",
                         path) < 0)
                *why = NULL;
            close(fd);
            return -1;
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chmod(path, 0666) < 0 || listen(fd, 128) < 0) {
        int err = errno;
        close(fd);
        if (asprintf(why, "cannot listen on the local socket %s: %s", path,
                     strerror(err)) < 0)
            *why = NULL;
        return -1;
    }
    l->fd = fd;
    l->stream = 1;
    l->netid = "local";
    l->xprt = NULL;
    s->nlisteners++;
    return 0;
}

int
net_listen(srv *s, char **why)
{
    char port[16];


    snprintf(port, sizeof(port), "%d", s->cfg.port);
    for (int i = 0; i < s->cfg.nlisten; i++) {
        struct addrinfo hints = { 0 }, *res = NULL;
        int rc;

        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
        hints.ai_socktype = SOCK_STREAM;
        rc = getaddrinfo(s->cfg.listen[i], port, &hints, &res);
        if (rc != 0) {
            if (asprintf(why, "cannot listen on '%s': %s", s->cfg.listen[i],
                         gai_strerror(rc)) < 0)
                *why = NULL;
            return -1;
        }
        if (s->cfg.port == 0)
            same_port_as_family(s, res->ai_addr);
        rc = open_socket(s, res, 1, why);
        if (rc == 0 && s->cfg.port == 0) {
            /* UDP on the same port number as TCP, as rpcinfo users expect. */
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            getsockname(s->listeners[s->nlisteners - 1].fd, (struct sockaddr *)&ss, &sl);
            memcpy(res->ai_addr, &ss, sl);
        }
        if (rc == 0)
            rc = open_socket(s, res, 0, why);
        /* The default ::1 on a machine without IPv6 (disabled, or no
         * module): serve 127.0.0.1 alone.  An address asked for must work. */
        if (rc && s->cfg.listen_default && res->ai_family == AF_INET6 &&
            (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT) && s->nlisteners > 0) {
            srv_log(SRV_LOG_NOTICE, "IPv6 is not available here (%s): serving 127.0.0.1 "
                    "only\n", *why ? *why : "?");
            free(*why);
            *why = NULL;
            if (s->nlisteners % 2)          /* TCP opened, UDP not: both or neither */
                close(s->listeners[--s->nlisteners].fd);
            rc = 0;
        }
        freeaddrinfo(res);
        if (rc)
            return -1;
    }
    /* Last: the TCP and UDP listeners come in pairs above. */
    if (strcmp(s->cfg.local_socket, "none") != 0 && open_local(s, s->cfg.local_socket, why))
        return -1;
    return 0;
}

/*
 * rpcbind's own entry for prog, version 1, over netid: its universal address
 * (malloc'ed), or NULL when there is none.  Read from the table rpcbind
 * keeps (RPCBPROC_DUMP), not asked for with GETADDR: that answer is merged
 * with the asker's address, so it cannot say which address was registered.
 */
static char *
registered_uaddr(rpcprog_t prog, const char *netid)
{
    /* Asked of rpcbind at 127.0.0.1 port 111 directly: libtirpc's
     * rpcb_getmaps loses a little memory on each call (valgrind). */
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(PMAPPORT),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct netbuf nb = { sizeof(sin), sizeof(sin), &sin };
    struct netconfig *nc = getnetconfigent("tcp");
    CLIENT *c = nc ? clnt_tli_create(RPC_ANYFD, nc, &nb, RPCBPROG, RPCBVERS, 0, 0) : NULL;
    struct timeval tv = { 5, 0 };
    rpcblist_ptr list = NULL;
    char *uaddr = NULL;

    if (c && clnt_call(c, RPCBPROC_DUMP, PROTO_XDR(xdr_void), NULL,
                       PROTO_XDR(xdr_rpcblist_ptr), (caddr_t)&list,
                       tv) == RPC_SUCCESS)
        for (rpcblist_ptr e = list; e && !uaddr; e = e->rpcb_next)
            if (e->rpcb_map.r_prog == prog && e->rpcb_map.r_vers == IMGPROC_V1 &&
                strcmp(e->rpcb_map.r_netid, netid) == 0)
                uaddr = strdup(e->rpcb_map.r_addr);
    if (list)
        xdr_free(PROTO_XDR(xdr_rpcblist_ptr), (char *)&list);
    if (c)
        clnt_destroy(c);
    if (nc)
        freenetconfigent(nc);
    return uaddr;
}

/* Does a server answer a NULL call of prog at uaddr over nc, within 3 s? */
static int
answers(rpcprog_t prog, const struct netconfig *nc, const char *uaddr)
{
    struct netbuf *nb = uaddr2taddr(nc, uaddr);
    struct timeval tv = { 3, 0 };
    CLIENT *c = nb ? clnt_tli_create(RPC_ANYFD, nc, nb, prog, IMGPROC_V1, 0, 0) : NULL;
    int ok = 0;

    if (c) {
        ok = clnt_call(c, NULLPROC, PROTO_XDR(xdr_void), NULL,
                       PROTO_XDR(xdr_void), NULL, tv) == RPC_SUCCESS;
        clnt_destroy(c);
    }
    if (nb) {
        free(nb->buf);
        free(nb);
    }
    return ok;
}

/* uaddr ("127.0.0.1.139.21") as people write it ("127.0.0.1 port 35605"). */
static void
uaddr_text(const struct netconfig *nc, const char *uaddr, char *buf, size_t size)
{
    struct netbuf *nb = strcmp(nc->nc_protofmly, NC_LOOPBACK) ? uaddr2taddr(nc, uaddr) : NULL;

    if (nb && nb->buf)
        addr_text(nb->buf, nb->len, buf, size);
    else
        snprintf(buf, size, "%s", uaddr);
    if (nb) {
        free(nb->buf);
        free(nb);
    }
}

/* l's address as rpcbind writes it ("127.0.0.1.139.21"; malloc'ed), or NULL. */
static char *
listener_uaddr(const srv_listener *l, const struct netconfig *nc)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct netbuf nb;

    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) < 0)
        return NULL;
    nb.buf = &ss;
    nb.len = nb.maxlen = sl;
    return taddr2uaddr(nc, &nb);
}

/* The first listener over l's netid: rpcbind holds one address per netid. */
static int
first_of_netid(const srv *s, const srv_listener *l)
{
    for (const srv_listener *k = s->listeners; k < l; k++)
        if (strcmp(k->netid, l->netid) == 0)
            return 0;
    return 1;
}

/* Is uaddr the address of one of our own listeners over netid? */
static int
holds_uaddr(const srv *s, const struct netconfig *nc, const char *netid, const char *uaddr)
{
    int mine = 0;

    for (int i = 0; i < s->nlisteners && !mine; i++) {
        char *u;
        if (strcmp(s->listeners[i].netid, netid) != 0)
            continue;
        u = listener_uaddr(&s->listeners[i], nc);
        mine = u && strcmp(u, uaddr) == 0;
        free(u);
    }
    return mine;
}

/*
 * Registers the listeners with rpcbind, which keeps one address for each
 * program, version and transport: the first --listen address of each family
 * is registered, and the others are served on the same port (net_listen).
 * A live server already holding the program is never displaced: if what
 * rpcbind names answers a NULL call, we refuse to start.  An entry nobody
 * answers at (a server that died without unregistering) is replaced, and
 * the log says so.
 */
int
net_register(srv *s, char **why)
{
    for (int i = 0; i < s->nlisteners; i++) {
        const char *netid = s->listeners[i].netid;
        struct netconfig *nc;
        char *uaddr;

        if (!first_of_netid(s, &s->listeners[i]) || !(nc = getnetconfigent(netid)))
            continue;
        if ((uaddr = registered_uaddr(s->cfg.program, netid))) {
            char where[NI_MAXHOST + 32];
            uaddr_text(nc, uaddr, where, sizeof(where));
            /* An address we hold now (a fixed --port, our socket's path)
             * cannot be a live server's: asking it would only reach our own
             * socket, which does not answer yet (3 s lost at each start). */
            if (!holds_uaddr(s, nc, netid, uaddr) && answers(s->cfg.program, nc, uaddr)) {
                if (asprintf(why, "program 0x%lX version %d is already served over %s at %s "
                             "by a live server; stop it, or start this one with another "
                             "--program", (unsigned long)s->cfg.program, IMGPROC_V1,
                             netid, where) < 0)
                    *why = NULL;
                free(uaddr);
                freenetconfigent(nc);
                return -1;
            }
            srv_log(SRV_LOG_NOTICE, "replacing a stale rpcbind entry: program 0x%lX "
                    "version %d over %s at %s (nobody answers there)\n",
                    (unsigned long)s->cfg.program, IMGPROC_V1, netid, where);
            rpcb_unset(s->cfg.program, IMGPROC_V1, nc);
            free(uaddr);
        }
        freenetconfigent(nc);
    }
    for (int i = 0; i < s->nlisteners; i++) {
        srv_listener *l = &s->listeners[i];
        struct netconfig *nc = getnetconfigent(l->netid);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct netbuf nb;
        bool_t ok;

        if (!nc) {
            if (asprintf(why, "no netconfig entry for %s", l->netid) < 0)
                *why = NULL;
            return -1;
        }
        if (!first_of_netid(s, l)) {
            freenetconfigent(nc);
            continue;
        }
        getsockname(l->fd, (struct sockaddr *)&ss, &sl);
        nb.buf = &ss;
        nb.len = nb.maxlen = sl;
        ok = rpcb_set(s->cfg.program, IMGPROC_V1, nc, &nb);
        freenetconfigent(nc);
        if (!ok) {
            if (asprintf(why, "rpcbind refused to register program 0x%lX version %d over "
                         "%s (is rpcbind running? --no-rpcbind serves without it)",
                         (unsigned long)s->cfg.program, IMGPROC_V1, l->netid) < 0)
                *why = NULL;
            return -1;
        }
        l->registered = 1;
    }
    return 0;
}

/* Unsets the entries that are still ours: another server's are left alone. */
void
net_unregister(srv *s)
{
    for (int i = 0; i < s->nlisteners; i++) {
        srv_listener *l = &s->listeners[i];
        struct netconfig *nc;
        char *theirs, *mine;

        if (!l->registered || !(nc = getnetconfigent(l->netid)))
            continue;
        theirs = registered_uaddr(s->cfg.program, l->netid);
        mine = listener_uaddr(l, nc);
        if (theirs && mine && strcmp(theirs, mine) == 0)
            rpcb_unset(s->cfg.program, IMGPROC_V1, nc);
        free(theirs);
        free(mine);
        l->registered = 0;
        freenetconfigent(nc);
    }
}

/* Receives one call on xprt and dispatches it. */
void
net_serve_one(srv *s, SVCXPRT *xprt, int stream, tasks_batch *batch, conn_activity *act)
{
    struct rpc_msg msg;
    struct svc_req req;
    char cred_area[2 * MAX_AUTH_BYTES + RQCRED_SIZE];
    enum auth_stat why;

    memset(&msg, 0, sizeof(msg));
    msg.rm_call.cb_cred.oa_base = cred_area;
    msg.rm_call.cb_verf.oa_base = &cred_area[MAX_AUTH_BYTES];
    if (!SVC_RECV(xprt, &msg))
        return;
    memset(&req, 0, sizeof(req));
    req.rq_clntcred = &cred_area[2 * MAX_AUTH_BYTES];
    req.rq_xprt = xprt;
    req.rq_prog = msg.rm_call.cb_prog;
    req.rq_vers = msg.rm_call.cb_vers;
    req.rq_proc = msg.rm_call.cb_proc;
    req.rq_cred = msg.rm_call.cb_cred;
    if (req.rq_cred.oa_flavor == RPCSEC_GSS) {
        int answered;
        /* Refused without --krb5-service, and over UDP: libtirpc keeps a
         * context per transport, and UDP's one transport is everyone's. */
        if (!s->cfg.krb5_service || !stream) {
            svcerr_auth(xprt, AUTH_REJECTEDCRED);
            return;
        }
        why = kerberos_authenticate(&req, &msg, act ? &act->krb5 : &(krb5_conn){ 0 },
                                    &answered);
        if (answered)
            return;
        if (why != AUTH_OK) {
            svcerr_auth(xprt, why);
            return;
        }
    } else if ((why = _authenticate(&req, &msg)) != AUTH_OK) {
        svcerr_auth(xprt, why);
        return;
    }
    if (req.rq_prog != s->cfg.program) {
        svcerr_noprog(xprt);
        return;
    }
    if (req.rq_vers != IMGPROC_V1) {
        svcerr_progvers(xprt, IMGPROC_V1, IMGPROC_V1);
        return;
    }
    dispatch_call(s, &req, xprt, stream, batch, act);
}

/*
 * Looks at pf without sleeping, for up to NET_SPIN_NS.  A client making
 * call after call sends the next one within microseconds of our reply;
 * putting the thread to sleep and waking it again costs more than a
 * whole NULL call (measured on 2 cores: 11,000 NULL calls/s when sleeping
 * at once, 38,000 with the spin).  An idle connection pays 50 us per call.
 */
static int
spin_poll(struct pollfd *pf)
{
    struct timespec t0, now;
    int n;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        n = poll(pf, 2, 0);
        if (n != 0)
            return n;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < NET_SPIN_NS);
    return 0;
}

/*
 * How long c's connection may stay silent from now.  A Kerberos one closes
 * KRB5_IDLE_SECONDS after its context was last used (the start of its last
 * call, a long one included), before libtirpc forgets the context itself.
 */
static unsigned
idle_seconds(const srv *s, const conn_activity *act)
{
    long long left;

    if (!act->krb5.used_ms)
        return s->cfg.idle_seconds;
    left = KRB5_IDLE_SECONDS - (mono_ms() - act->krb5.used_ms) / 1000;
    if (left < 1)
        left = 1;
    return (unsigned)left < s->cfg.idle_seconds ? (unsigned)left : s->cfg.idle_seconds;
}

/* Serves one TCP connection until the peer leaves, idles out, or the server stops. */
static void *
conn_main(void *p)
{
    conn *c = p;
    srv *s = c->s;
    /* Sizes of 0 would give libtirpc's 4000-byte record buffers: a 10 MB
     * image would then take 2,500 reads in, and a result 2,500 writes out. */
    SVCXPRT *xprt = svc_fd_create(c->fd, PROTO_RECORD_BUFFER, PROTO_RECORD_BUFFER);
    tasks_batch *batch = tasks_batch_new();

    if (!xprt) {
        conn_unlink(c);
        close(c->fd);
        goto done;
    }
    if (!batch) {
        conn_unlink(c);
        SVC_DESTROY(xprt);
        goto done;
    }
    for (;;) {
        struct pollfd pf[2] = { { c->fd, POLLIN, 0 }, { s->stop_pipe[0], POLLIN, 0 } };
        enum xprt_stat st;
        int n = spin_poll(pf);

        if (n == 0)
            n = poll(pf, 2, (int)idle_seconds(s, &c->act) * 1000);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || pf[1].revents)
            break;
        /* A record may hold several calls (batching): take them all.  The
         * sender is measured from now, counting the bytes that woke us. */
        pthread_mutex_lock(&s->lock);
        c->act.since_ms = mono_ms();
        c->act.since_bytes = c->end_bytes;
        pthread_mutex_unlock(&s->lock);
        __atomic_store_n(&c->act.receiving, 1, __ATOMIC_RELAXED);
        do {
            net_serve_one(s, xprt, 1, batch, &c->act);
            st = SVC_STAT(xprt);
            if (st == XPRT_MOREREQS && s->cfg.min_receive_rate)
                net_measure_from_now(s, &c->act);
        } while (st == XPRT_MOREREQS);
        /* Marked active before it stops receiving: never the quietest just
         * after a call. */
        __atomic_store_n(&c->active_ms, mono_ms(), __ATOMIC_RELAXED);
        if (s->cfg.min_receive_rate)
            c->end_bytes = bytes_received(c->fd);   /* about 1 us */
        __atomic_store_n(&c->act.receiving, 0, __ATOMIC_RELAXED);
        if (st == XPRT_DIED)
            break;
    }
    kerberos_connection_done(xprt, &c->act.krb5);
    /* Closes the fd too. */
    conn_unlink(c);
    SVC_DESTROY(xprt);
done:
    tasks_batch_free(s->tasks, batch);
    ops_thread_done();
    pthread_mutex_lock(&s->lock);
    s->nconn--;
    if (c->evicted)
        s->nclosing--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    free(c);
    return NULL;
}

/* Waits until one of pf[0..n-1] is readable: 0; -1 once the stop pipe pf[n] is. */
static int
wait_readable(struct pollfd *pf, int n)
{
    for (;;) {
        int r = poll(pf, (nfds_t)n + 1, -1);
        if (r < 0 && errno == EINTR)
            continue;
        return (r < 0 || pf[n].revents) ? -1 : 0;
    }
}

#define UDP_REPLY_CACHE 256         /* UDP replies kept for retransmitted calls */

static void *
udp_main(void *p)
{
    srv *s = p;
    struct pollfd pf[SRV_MAX_LISTEN * 2 + 2];
    SVCXPRT *xprts[SRV_MAX_LISTEN * 2 + 2];
    int n = 0;

    for (int i = 0; i < s->nlisteners; i++)
        if (!s->listeners[i].stream && s->listeners[i].xprt) {
            pf[n] = (struct pollfd){ s->listeners[i].fd, POLLIN, 0 };
            xprts[n++] = s->listeners[i].xprt;
        }
    pf[n] = (struct pollfd){ s->stop_pipe[0], POLLIN, 0 };
    while (wait_readable(pf, n) == 0)
        for (int i = 0; i < n; i++)
            if (pf[i].revents & POLLIN)
                net_serve_one(s, xprts[i], 0, NULL, NULL);
    ops_thread_done();
    return NULL;
}

static void
start_conn(srv *s, int fd, const struct sockaddr_storage *peer)
{
    pthread_attr_t attr;
    pthread_t tid;
    conn *c;

    if (!(c = calloc(1, sizeof(*c)))) {
        close(fd);
        return;
    }
    c->s = s;
    c->fd = fd;
    c->peer = *peer;
    c->active_ms = mono_ms();
    c->act.fd = fd;
    c->act.since_bytes = -1;
    c->end_bytes = 0;           /* a new connection has received nothing yet */
    pthread_mutex_lock(&s->lock);
    /* One address may not hold more than its share: its own quietest
     * connection makes room; with none to close, it may hold up to twice
     * its share until the next look (trim_overflow), then the new one goes. */
    if (s->cfg.max_per_address && count_from(s, peer) >= s->cfg.max_per_address) {
        int evicted = evict_quietest(s, peer);
        s->overflowed |= !evicted;
        if (!evicted && count_from(s, peer) >= 2 * s->cfg.max_per_address) {
            pthread_mutex_unlock(&s->lock);
            srv_log(SRV_LOG_VERBOSE, "refusing a connection: %u from one address is "
                        "the limit, and none can be closed\n", s->cfg.max_per_address);
            close(fd);
            free(c);
            return;
        }
        if (evicted)
            srv_log(SRV_LOG_VERBOSE, "%u connections from one address is the limit: "
                    "closed its quietest\n", s->cfg.max_per_address);
    }
    /* Connections already shut down are on their way out: not counted.
     * With no connection to close (all in calls, or senders too new to
     * judge: a flood's last connections are milliseconds old), the table
     * holds up to twice its size until the next look (trim_overflow). */
    if (s->nconn - s->nclosing >= s->cfg.max_connections && evict_quietest(s, NULL)) {
        srv_log(SRV_LOG_VERBOSE, "%u connections is the limit: closed the quietest\n",
                    s->cfg.max_connections);
    } else if (s->nconn - s->nclosing >= s->cfg.max_connections) {
        s->overflowed = 1;
        if (s->nconn - s->nclosing >= 2 * s->cfg.max_connections) {
            pthread_mutex_unlock(&s->lock);
            srv_log(SRV_LOG_VERBOSE, "refusing a connection: %u connections is the "
                        "limit, and none can be closed\n", s->cfg.max_connections);
            close(fd);
            free(c);
            return;
        }
    }
    s->nconn++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    pthread_mutex_unlock(&s->lock);

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, conn_main, c) == 0) {
        pthread_attr_destroy(&attr);
        return;
    }
    pthread_attr_destroy(&attr);
    conn_unlink(c);
    close(fd);
    free(c);
    pthread_mutex_lock(&s->lock);
    s->nconn--;
    pthread_mutex_unlock(&s->lock);
}

/*
 * The accept loop, then shutdown.  Long (about 95 lines) because each step
 * of the shutdown order (stop accepting, shut reads down, wait for every
 * connection thread, with its deadline) must be read in one place.
 */
int
net_run(srv *s)
{
    struct pollfd pf[SRV_MAX_LISTEN * 2 + 2];
    int n = 0;
    struct timespec deadline;
    long long next_look_ms = 0;

    for (int i = 0; i < s->nlisteners; i++) {
        srv_listener *l = &s->listeners[i];
        if (l->stream) {
            pf[n++] = (struct pollfd){ l->fd, POLLIN, 0 };
            continue;
        }
        l->xprt = svc_dg_create(l->fd, 0, 0);
        if (!l->xprt) {
            srv_log(SRV_LOG_ERROR, "cannot serve UDP on %s\n", l->netid);
            return -1;
        }
        /* A client retransmits a UDP call whose reply it has not seen yet:
         * answer the copy from the cache instead of running the call again. */
        if (!svc_dg_enablecache(l->xprt, UDP_REPLY_CACHE))
            srv_log(SRV_LOG_WARNING, "no duplicate request cache on %s\n", l->netid);
    }
    if (pthread_create(&s->udp_thread, NULL, udp_main, s) != 0)
        return -1;
    s->udp_running = 1;
    pf[n] = (struct pollfd){ s->stop_pipe[0], POLLIN, 0 };

    for (;;) {
        long long now;
        int r = poll(pf, (nfds_t)n + 1, 1000);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || pf[n].revents)
            break;
        if ((now = mono_ms()) >= next_look_ms) {
            if (s->cfg.min_receive_rate)
                close_slow_senders(s);
            close_overdue(s);
            trim_overflow(s);
            next_look_ms = now + 1000;
        }
        for (int i = 0; r > 0 && i < n; i++) {
            struct sockaddr_storage peer;
            socklen_t plen = sizeof(peer);
            int fd;
            if (!(pf[i].revents & POLLIN))
                continue;
            memset(&peer, 0, sizeof(peer));
            fd = accept4(pf[i].fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
            /* libtirpc writes a record in pieces (record mark, fragments);
             * with Nagle's algorithm the last piece waits for the peer's
             * delayed ACK, up to 40 ms a call. */
            if (fd >= 0 && peer.ss_family != AF_LOCAL)
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
            else if (fd >= 0)
                local_peer(fd, &peer);
            /* A reply nobody reads must not hold a thread (and a slot, and
             * shutdown) forever: a write that moves nothing for this long
             * fails, and the connection dies. */
            if (fd >= 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO,
                           &(struct timeval){ NET_SEND_TIMEOUT, 0 }, sizeof(struct timeval));
            if (fd >= 0)
                start_conn(s, fd, &peer);
        }
    }

    /*
     * Stopping.  Calls waiting on a task are woken; image work sees the stop
     * pipe and is killed (dispatch.c); idle connection threads see it and
     * leave.  A thread inside a call may still be reading its arguments (a
     * slow or stalled sender: libtirpc waits 35 s per read): shutting its
     * socket's reading side down ends that read at once, and a reply can
     * still go out.  Everything the threads use
     * is freed only after the last one has gone, however long that takes.
     */
    tasks_stopping(s->tasks);
    pthread_join(s->udp_thread, NULL);
    s->udp_running = 0;
    pthread_mutex_lock(&s->lock);
    {
        unsigned nopen = 0;
        for (conn *c = s->conns; c; c = c->next, nopen++)
            shutdown(c->fd, SHUT_RD);    /* reads end; a reply can still go out */
        if (nopen)
            srv_log(SRV_LOG_VERBOSE, "stopping: shut %u connection%s down\n", nopen,
                    nopen == 1 ? "" : "s");
    }
    while (s->nconn > 0) {
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        /* A reply nobody reads fails within NET_SEND_TIMEOUT: this ends. */
        if (pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == ETIMEDOUT)
            srv_log(SRV_LOG_NOTICE, "stopping: still waiting for %u connection%s\n",
                    s->nconn, s->nconn == 1 ? "" : "s");
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void
net_close(srv *s)
{
    for (int i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i].xprt)
            SVC_DESTROY(s->listeners[i].xprt);     /* closes the fd */
        else
            close(s->listeners[i].fd);
        if (strcmp(s->listeners[i].netid, "local") == 0)
            unlink(s->cfg.local_socket);
    }
    s->nlisteners = 0;
}
