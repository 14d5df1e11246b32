/*
 * hostile.c - a test client that sends what the real client never would:
 * unknown steps, NaN angles, zero widths, over-long pipelines, unknown
 * procedures, raw garbage records, batches no honest client would send, and
 * image calls and retransmissions over UDP, floods of connections, calls
 * that arrive a byte at a time or never finish, and junk by the megabyte.
 * Prints the outcome on one line.  $HOSTILE_SOURCE (say 127.0.0.2) is the
 * address its raw connections come from.
 *
 * usage: hostile PORT PROGRAM CASE [ARG...]
 */
#include <arpa/inet.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rpc/rpc.h>
#include <rpc/rpcsec_gss.h>
#include "imgproc.h"
#include "proto.h"

static CLIENT *
connect_to(int port, rpcprog_t prog)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct netbuf nb = { sizeof(sin), sizeof(sin), &sin };
    struct netconfig *nc = getnetconfigent("tcp");
    struct timeval tv = { 30, 0 };
    CLIENT *c;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    c = clnt_tli_create(RPC_ANYFD, nc, &nb, prog, IMGPROC_V1, 0, 0);
    freenetconfigent(nc);
    if (!c) {
        printf("connect: %s\n", clnt_spcreateerror(""));
        exit(1);
    }
    clnt_control(c, CLSET_TIMEOUT, (char *)&tv);
    return c;
}

static int
report(CLIENT *c, enum clnt_stat st, ip_image_res *res)
{
    if (st != RPC_SUCCESS) {
        printf("rpc: %s\n", clnt_sperrno(st));
        return 0;
    }
    if (res->status == IP_OK)
        printf("ok %ux%u\n", res->ip_image_res_u.ok.width, res->ip_image_res_u.ok.height);
    else
        printf("%s: %s\n", proto_status_name(res->status), res->ip_image_res_u.message);
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)res);
    (void)c;
    return 0;
}

/* Raw bytes on a TCP socket: a record mark with a lying length, then junk. */
static int
garbage(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    unsigned char junk[256];
    uint32_t mark;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    /* The server may hang up mid-write: that is the point, not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        perror("connect");
        return 1;
    }
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    /* Last fragment, 256 bytes of nonsense where a call header belongs. */
    mark = htonl(0x80000000u | sizeof(junk));
    n = write(fd, &mark, 4);
    n += write(fd, junk, sizeof(junk));
    /* Then a fragment claiming 2 GB, and the connection closes mid-record. */
    mark = htonl(0x7FFFFFFFu);
    n += write(fd, &mark, 4);
    n += write(fd, junk, 16);
    close(fd);
    printf("sent %zd bytes\n", n < 0 ? 0 : n);
    return 0;
}

/* Prints "status: message" of a task reply, or the RPC error. */
static void
say(CLIENT *c, enum clnt_stat st, ip_status status, const char *msg)
{
    if (st != RPC_SUCCESS)
        printf("rpc: %s\n", clnt_sperrno(st));
    else
        printf("%s: %s\n", proto_status_name(status), status == IP_OK ? "" : msg);
    (void)c;
}

/* An upload task of size bytes (0 on failure). */
static ip_task_id
upload_task(CLIENT *c, uint64_t size)
{
    ip_step s = { .op = IP_OP_FLIP };
    ip_task_create_args a;
    ip_task_create_res r;
    ip_task_id id = 0;

    memset(&a, 0, sizeof(a));
    memset(&r, 0, sizeof(r));
    a.source.kind = IP_SOURCE_UPLOAD;
    a.source.ip_task_source_u.size = size;
    a.spec.steps.steps_len = 1;
    a.spec.steps.steps_val = &s;
    a.token = "";
    a.hold = TRUE;
    if (task_create_1(&a, &r, c) != RPC_SUCCESS)
        return 0;
    if (r.status == IP_OK)
        id = r.ip_task_create_res_u.created.id;
    else
        say(c, RPC_SUCCESS, r.status, r.ip_task_create_res_u.message);
    xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&r);
    return id;
}

/* Task procedures called as no honest client would. */
static int
task_case(CLIENT *c, const char *what)
{
    static char data[64];

    if (strcmp(what, "task-huge-declared") == 0) {
        upload_task(c, 1ULL << 62);
    } else if (strcmp(what, "task-upload-gap") == 0 ||
               strcmp(what, "task-upload-past-end") == 0) {
        int gap = strcmp(what, "task-upload-gap") == 0;
        ip_task_upload_args a = { upload_task(c, gap ? 100 : 10), gap ? 50 : 0,
                                  { gap ? 10 : 20, data } };
        ip_task_upload_res r;
        memset(&r, 0, sizeof(r));
        enum clnt_stat st = task_upload_1(&a, &r, c);
        say(c, st, r.status, r.ip_task_upload_res_u.message);
    } else if (strcmp(what, "task-result-count") == 0) {
        ip_task_result_args a = { 1, 0, 16u << 20 };
        ip_task_result_res r;
        memset(&r, 0, sizeof(r));
        enum clnt_stat st = task_result_1(&a, &r, c);
        say(c, st, r.status, r.ip_task_result_res_u.message);
    } else if (strcmp(what, "task-list-states") == 0) {
        ip_task_list_args a = { 0xFFFFFFFFu, 0, 10 };
        ip_task_list_res r;
        memset(&r, 0, sizeof(r));
        enum clnt_stat st = task_list_1(&a, &r, c);
        say(c, st, r.status, r.ip_task_list_res_u.message);
    } else if (strcmp(what, "task-list-after-huge") == 0) {
        /* After an id no task can have (2^63, negative as a signed 64-bit
         * number): an empty page, not the first one again. */
        ip_task_list_args a = { 0, 1ULL << 63, 10 };
        ip_task_list_res r;
        upload_task(c, 10);
        memset(&r, 0, sizeof(r));
        if (task_list_1(&a, &r, c) != RPC_SUCCESS || r.status != IP_OK)
            printf("list failed\n");
        else
            printf("%u tasks, more %d\n", r.ip_task_list_res_u.page.tasks.tasks_len,
                   r.ip_task_list_res_u.page.more);
        xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
    } else {
        fprintf(stderr, "hostile: unknown case '%s'\n", what);
        return 2;
    }
    clnt_destroy(c);
    return 0;
}

/* Encodes a TASK_SUBMIT argument whose image source kind does not exist. */
static bool_t
xdr_bad_source(XDR *x, void *p)
{
    u_int kind = 7;

    (void)p;
    return xdr_u_int(x, &kind);
}

/* TASK_CREATE's argument with the token "nul\0byte" (the generated encoder stops at a NUL). */
static const ip_image *nul_image;
static bool_t
xdr_nul_token(XDR *x, void *p)
{
    ip_task_create_args a;
    char token[] = "nul\0byte";
    u_int len = sizeof(token) - 1;
    bool_t hold = TRUE;

    (void)p;
    memset(&a, 0, sizeof(a));
    a.source.kind = IP_SOURCE_INLINE;
    a.source.ip_task_source_u.image = *nul_image;
    a.spec.steps.steps_len = 1;
    a.spec.steps.steps_val = &(ip_step){ .op = IP_OP_FLIP };
    return xdr_ip_task_source(x, &a.source) && xdr_ip_task_spec(x, &a.spec) &&
           xdr_u_int(x, &len) && xdr_opaque(x, token, len) && xdr_bool(x, &hold);
}

/* A batched TASK_SUBMIT of image im with token (no reply expected). */
static void
submit(CLIENT *c, const ip_image *im, const char *token)
{
    static const struct timeval zero = { 0, 0 };
    ip_step s = { .op = IP_OP_FLIP };
    ip_task_create_args a;

    memset(&a, 0, sizeof(a));
    a.source.kind = IP_SOURCE_INLINE;
    a.source.ip_task_source_u.image = *im;
    a.spec.steps.steps_len = 1;
    a.spec.steps.steps_val = &s;
    a.token = (char *)token;
    clnt_call(c, TASK_SUBMIT, (xdrproc_t)xdr_ip_task_create_args, (char *)&a, NULL, NULL, zero);
}

/* TASK_COLLECT, summed up: "N outcomes (C created, E existing, R refused: STATUS), S skipped". */
static void
collect(CLIENT *c)
{
    ip_batch_res r;
    unsigned made = 0, old = 0, refused = 0;
    const char *why = "";

    memset(&r, 0, sizeof(r));
    if (task_collect_1(NULL, &r, c) != RPC_SUCCESS) {
        printf("rpc: %s\n", clnt_sperror(c, ""));
        return;
    }
    if (r.status != IP_OK) {
        printf("%s: %s\n", proto_status_name(r.status), r.ip_batch_res_u.message);
        xdr_free((xdrproc_t)xdr_ip_batch_res, (char *)&r);
        return;
    }
    for (u_int i = 0; i < r.ip_batch_res_u.report.items.items_len; i++) {
        const ip_task_create_res *o = &r.ip_batch_res_u.report.items.items_val[i].result;
        if (o->status != IP_OK) {
            refused++;
            why = proto_status_name(o->status);
        } else if (o->ip_task_create_res_u.created.existing)
            old++;
        else
            made++;
    }
    printf("%u outcomes (%u created, %u existing, %u refused%s%s), %u skipped\n",
           r.ip_batch_res_u.report.items.items_len, made, old, refused, refused ? ": " : "",
           why, r.ip_batch_res_u.report.skipped);
    xdr_free((xdrproc_t)xdr_ip_batch_res, (char *)&r);
}

/* Batches as no honest client would send them. */
static int
batch_case(CLIENT *c, int port, rpcprog_t prog, const ip_image *im, const char *what)
{
    static const struct timeval zero = { 0, 0 };

    if (strcmp(what, "batch-no-token") == 0) {
        submit(c, im, "");
        collect(c);
    } else if (strcmp(what, "batch-garbage-item") == 0) {
        /* Undecodable: the server must neither reply nor lose the connection. */
        submit(c, im, "first");
        clnt_call(c, TASK_SUBMIT, (xdrproc_t)xdr_bad_source, NULL, NULL, NULL, zero);
        submit(c, im, "third");
        collect(c);
    } else if (strcmp(what, "create-nul-token") == 0) {
        /* The same bytes through TASK_CREATE: refused with a status. */
        struct timeval tv = { 30, 0 };
        ip_task_create_res r;
        memset(&r, 0, sizeof(r));
        nul_image = im;
        enum clnt_stat st = clnt_call(c, TASK_CREATE, (xdrproc_t)xdr_nul_token, NULL,
                                      (xdrproc_t)xdr_ip_task_create_res, (char *)&r, tv);
        say(c, st, r.status, r.ip_task_create_res_u.message);
        xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&r);
    } else if (strcmp(what, "batch-overflow") == 0) {
        for (int i = 0; i <= IP_MAX_BATCH; i++)
            submit(c, im, "");
        collect(c);
    } else if (strcmp(what, "batch-abandon") == 0) {
        /* Sent, never collected, connection closed: nothing was acknowledged,
         * so sending them again creates them (none "existing"). */
        char token[32];
        for (int i = 0; i < 3; i++) {
            snprintf(token, sizeof(token), "abandoned-%d", i);
            submit(c, im, token);
        }
        clnt_destroy(c);
        c = connect_to(port, prog);
        for (int i = 0; i < 3; i++) {
            snprintf(token, sizeof(token), "abandoned-%d", i);
            submit(c, im, token);
        }
        collect(c);
    } else if (strcmp(what, "batch-udp") == 0) {
        /* Over UDP a "batched" call is sent at once; the server ignores it. */
        CLIENT *u = clnt_create("127.0.0.1", prog, IMGPROC_V1, "udp");
        ip_task_create_args a;
        ip_batch_res r;
        memset(&a, 0, sizeof(a));
        a.token = "udp";
        if (!u) {
            printf("connect: %s\n", clnt_spcreateerror(""));
            return 1;
        }
        clnt_call(u, TASK_SUBMIT, (xdrproc_t)xdr_ip_task_create_args, (char *)&a, NULL, NULL,
                  zero);
        memset(&r, 0, sizeof(r));
        if (task_collect_1(NULL, &r, u) != RPC_SUCCESS)
            printf("rpc: %s\n", clnt_sperror(u, ""));
        else
            printf("%s: %s\n", proto_status_name(r.status),
                   r.status == IP_OK ? "" : r.ip_batch_res_u.message);
        xdr_free((xdrproc_t)xdr_ip_batch_res, (char *)&r);
        clnt_destroy(u);
    } else {
        fprintf(stderr, "hostile: unknown case '%s'\n", what);
        return 2;
    }
    clnt_destroy(c);
    return 0;
}

/* Sends one UDP datagram holding a call of proc with xid; the reply's status, or -1. */
static int
udp_call(int fd, const struct sockaddr_in *to, rpcprog_t prog, rpcproc_t proc, u_int xid,
         xdrproc_t xargs, void *args)
{
    char buf[8800], in[8800];
    struct rpc_msg call, reply;
    ip_task_res res;
    XDR x;
    ssize_t n;
    int st = -1;

    memset(&call, 0, sizeof(call));
    call.rm_xid = xid;
    call.rm_direction = CALL;
    call.rm_call.cb_rpcvers = RPC_MSG_VERSION;
    call.rm_call.cb_prog = prog;
    call.rm_call.cb_vers = IMGPROC_V1;
    call.rm_call.cb_proc = proc;
    call.rm_call.cb_cred = _null_auth;
    call.rm_call.cb_verf = _null_auth;
    xdrmem_create(&x, buf, sizeof(buf), XDR_ENCODE);
    if (!xdr_callmsg(&x, &call) || !xargs(&x, args))
        return -1;
    if (sendto(fd, buf, xdr_getpos(&x), 0, (const struct sockaddr *)to, sizeof(*to)) < 0)
        return -1;
    xdr_destroy(&x);
    if ((n = recv(fd, in, sizeof(in), 0)) <= 0)
        return -1;
    memset(&reply, 0, sizeof(reply));
    memset(&res, 0, sizeof(res));
    reply.acpted_rply.ar_results.where = (caddr_t)&res;
    reply.acpted_rply.ar_results.proc = (xdrproc_t)xdr_ip_task_res;
    xdrmem_create(&x, in, (u_int)n, XDR_DECODE);
    if (xdr_replymsg(&x, &reply) && reply.rm_xid == xid &&
        reply.rm_reply.rp_stat == MSG_ACCEPTED && reply.acpted_rply.ar_stat == SUCCESS)
        st = res.status;
    xdr_destroy(&x);
    xdr_free((xdrproc_t)xdr_ip_task_res, (char *)&res);
    return st;
}

/*
 * UDP cases: an image procedure over UDP; the same TASK_START datagram
 * (same xid) sent twice, as a client's retransmission would.
 */
static int
udp_case(int port, rpcprog_t prog, const ip_image *im, const char *what)
{
    if (strcmp(what, "udp-image") == 0) {
        CLIENT *u = clnt_create("127.0.0.1", prog, IMGPROC_V1, "udp");
        ip_grayscale_args a = { *im, { IP_FMT_PNG, 0, FALSE } };
        ip_image_res res;
        if (!u) {
            printf("connect: %s\n", clnt_spcreateerror(""));
            return 1;
        }
        memset(&res, 0, sizeof(res));
        report(u, grayscale_1(&a, &res, u), &res);
        clnt_destroy(u);
        return 0;
    }
    if (strcmp(what, "udp-retransmit") == 0) {
        CLIENT *c = connect_to(port, prog);
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        struct timeval tv = { 5, 0 };
        ip_task_create_args a;
        ip_task_create_res r;
        ip_task_id id;
        int fd, first, second;

        memset(&a, 0, sizeof(a));
        memset(&r, 0, sizeof(r));
        a.source.kind = IP_SOURCE_INLINE;
        a.source.ip_task_source_u.image = *im;
        a.spec.steps.steps_len = 1;
        a.spec.steps.steps_val = &(ip_step){ .op = IP_OP_FLIP };
        a.token = "";
        a.hold = TRUE;
        if (task_create_1(&a, &r, c) != RPC_SUCCESS || r.status != IP_OK) {
            printf("create failed\n");
            return 1;
        }
        id = r.ip_task_create_res_u.created.id;
        inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        fd = socket(AF_INET, SOCK_DGRAM, 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        first = udp_call(fd, &to, prog, TASK_START, 0x5eed, (xdrproc_t)xdr_ip_task_id, &id);
        second = udp_call(fd, &to, prog, TASK_START, 0x5eed, (xdrproc_t)xdr_ip_task_id, &id);
        printf("%s %s\n", first < 0 ? "no-reply" : proto_status_name((ip_status)first),
               second < 0 ? "no-reply" : proto_status_name((ip_status)second));
        close(fd);
        clnt_destroy(c);
        return 0;
    }
    fprintf(stderr, "hostile: unknown case '%s'\n", what);
    return 2;
}

/* A TCP connection to the server from $HOSTILE_SOURCE, if set: the socket, or -1. */
static int
tcp_connect(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct sockaddr_in src = { .sin_family = AF_INET };
    const char *from = getenv("HOSTILE_SOURCE");
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (fd >= 0 && from && inet_pton(AF_INET, from, &src.sin_addr) == 1 &&
        bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
        close(fd);
        return -1;
    }
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Writes the start of a call of proc whose record promises reclen bytes:
 * record mark, header (xid, CALL, RPC 2, program, version 1, no
 * credentials), then the words in args[0..nargs-1].  0, or -1.
 */
static int
send_call_head(int fd, rpcprog_t prog, rpcproc_t proc, uint32_t reclen,
               const uint32_t *args, int nargs)
{
    uint32_t head[32] = { htonl(0x80000000u | reclen), htonl(0x5747), 0, htonl(2),
                          htonl((uint32_t)prog), htonl(IMGPROC_V1), htonl((uint32_t)proc),
                          0, 0, 0, 0 };
    int n = 11;

    for (int i = 0; i < nargs && n < 32; i++)
        head[n++] = htonl(args[i]);
    return write(fd, head, (size_t)n * 4) == (ssize_t)n * 4 ? 0 : -1;
}

/*
 * A new connection to the server; when stall is set, a call that stops in
 * the middle of its record: the record mark promises 1 MiB, then a valid
 * TASK_CREATE call header and the first words of its arguments, then
 * nothing.  The socket, or -1.
 */
static int
open_conn(int port, rpcprog_t prog, int stall)
{
    uint32_t args[] = { 0, 1u << 19 };
    int fd = tcp_connect(port);

    if (fd >= 0 && stall && send_call_head(fd, prog, TASK_CREATE, 1u << 20, args, 2) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * A GRAYSCALE call promising an image of declared bytes, of which sent
 * arrive; then nothing.  Prints "sent", holds the connection until stdin
 * closes, then prints whether the server had closed it.
 */
static int
stall_bytes(int port, rpcprog_t prog, uint32_t declared, uint32_t sent)
{
    static char zeros[65536];
    uint32_t args[] = { declared };
    int fd = tcp_connect(port);
    char c;

    if (fd < 0 || send_call_head(fd, prog, GRAYSCALE, 48 + declared + 12, args, 1) < 0) {
        printf("connect failed\n");
        return 1;
    }
    for (uint32_t done = 0; done < sent;) {
        size_t n = sent - done < sizeof(zeros) ? sent - done : sizeof(zeros);
        ssize_t w = write(fd, zeros, n);
        if (w <= 0) {
            printf("closed while sending\n");
            return 1;
        }
        done += (uint32_t)w;
    }
    printf("sent\n");
    fflush(stdout);
    while (read(0, &c, 1) > 0)
        ;
    {
        struct pollfd pf = { fd, POLLIN, 0 };
        printf("%s\n", poll(&pf, 1, 0) > 0 && read(fd, &c, 1) <= 0 ? "closed" : "open");
    }
    close(fd);
    return 0;
}

/*
 * A GRAYSCALE call of 1 MiB sent one byte a second.  Prints "closed after
 * N bytes" once the server closes the connection, or "open after N bytes"
 * after two minutes.
 */
static int
trickle(int port, rpcprog_t prog)
{
    uint32_t args[] = { 1u << 20 };
    int fd = tcp_connect(port);
    int n = 0;

    if (fd < 0 || send_call_head(fd, prog, GRAYSCALE, (1u << 20) + 60, args, 1) < 0) {
        printf("connect failed\n");
        return 1;
    }
    for (; n < 120; n++) {
        struct pollfd pf = { fd, POLLIN, 0 };
        char c;
        /* The pace of the trickle: a byte, then a second's wait for the server to react. */
        if (poll(&pf, 1, 1000) > 0 || write(fd, "", 1) != 1) {
            if (read(fd, &c, 1) <= 0)
                break;
        }
    }
    printf("%s after %d bytes\n", n < 120 ? "closed" : "open", n);
    close(fd);
    return 0;
}

/*
 * n connections with an RPC client each, a NULL call on each: prints "held
 * K" (K answered), then on a line from stdin calls NULL on each again and
 * prints "alive K".
 */
static int
hold_null(int port, rpcprog_t prog, int n)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct netbuf nb = { sizeof(sin), sizeof(sin), &sin };
    struct timeval tv = { 5, 0 };
    CLIENT *c[64];
    char line[16];
    int held = 0, alive = 0;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++) {
        int fd = tcp_connect(port);
        c[i] = fd >= 0 ? clnt_vc_create(fd, &nb, prog, IMGPROC_V1, 0, 0) : NULL;
        if (c[i] && ip_null_1(NULL, NULL, c[i]) == RPC_SUCCESS)
            held++;
    }
    printf("held %d\n", held);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    for (int i = 0; i < n; i++)
        if (c[i]) {
            clnt_control(c[i], CLSET_TIMEOUT, (char *)&tv);
            if (ip_null_1(NULL, NULL, c[i]) == RPC_SUCCESS)
                alive++;
        }
    printf("alive %d\n", alive);
    return 0;
}

/* junk_calls: n callers at once, each a GRAYSCALE call of one shared junk image. */
typedef struct junk_call {
    int port;
    rpcprog_t prog;
    ip_image im;
    char line[256];             /* "status: message" */
} junk_call;

static void *
junk_main(void *p)
{
    junk_call *j = p;
    CLIENT *c = connect_to(j->port, j->prog);
    ip_grayscale_args a = { j->im, { IP_FMT_AUTO, 0, FALSE } };
    ip_image_res res;
    enum clnt_stat st;

    memset(&res, 0, sizeof(res));
    st = grayscale_1(&a, &res, c);
    if (st != RPC_SUCCESS)
        snprintf(j->line, sizeof(j->line), "rpc: %s", clnt_sperrno(st));
    else if (res.status == IP_OK)
        snprintf(j->line, sizeof(j->line), "ok");
    else
        snprintf(j->line, sizeof(j->line), "%s: %s", proto_status_name(res.status),
                 res.ip_image_res_u.message);
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
    clnt_destroy(c);
    return NULL;
}

/* n GRAYSCALE calls at once of bytes of zeros each: prints each outcome, in order. */
static int
junk_calls(int port, rpcprog_t prog, int n, uint32_t bytes)
{
    junk_call *j = calloc((size_t)n, sizeof(*j));
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    char *junk = calloc(1, bytes);

    if (!j || !t || !junk)
        return 1;
    for (int i = 0; i < n; i++) {
        j[i] = (junk_call){ port, prog, { bytes, junk }, "" };
        pthread_create(&t[i], NULL, junk_main, &j[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        printf("%s\n", j[i].line);
    }
    free(junk);
    free(t);
    free(j);
    return 0;
}

/* One stalled call: prints "sent", then "closed" once the server closes it. */
static int
stalled_call(int port, rpcprog_t prog)
{
    char buf[64];
    int fd = open_conn(port, prog, 1);

    if (fd < 0) {
        printf("connect failed\n");
        return 1;
    }
    printf("sent\n");
    fflush(stdout);
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    printf("closed\n");
    close(fd);
    return 0;
}

/*
 * Opens n connections and holds them: "idle" ones say nothing, "stalled"
 * ones stop in the middle of a call, "trickle" ones then send a byte a
 * second each.  Prints "held N", then keeps on until stdin closes.
 */
static int
hold(int port, rpcprog_t prog, int n, const char *how)
{
    int *fds = calloc((size_t)n, sizeof(int));
    int held = 0, trickle = strcmp(how, "trickle") == 0;

    for (int i = 0; i < n; i++)
        if ((fds[i] = open_conn(port, prog, strcmp(how, "idle") != 0)) >= 0)
            held++;
    printf("held %d\n", held);
    fflush(stdout);
    for (;;) {
        struct pollfd pf = { 0, POLLIN, 0 };
        char c;
        /* The trickle's pace: a byte on each, then a second's wait on stdin. */
        if (poll(&pf, 1, trickle ? 1000 : -1) > 0 && read(0, &c, 1) <= 0)
            break;
        for (int i = 0; trickle && i < n; i++)
            if (fds[i] >= 0 && send(fds[i], "", 1, MSG_NOSIGNAL) != 1) {
                close(fds[i]);
                fds[i] = -1;
            }
    }
    free(fds);
    return 0;
}

/*
 * One connection: Kerberos NULL calls (the ticket in $KRB5CCNAME, service
 * imgproc@localhost), then an AUTH_SYS call on the same connection, then
 * away without destroying the context.  A server that forgets the
 * connection's context then would give it to the next connection.
 */
static int
krb5_then_sys(int port, rpcprog_t prog)
{
    CLIENT *c = connect_to(port, prog);
    struct timeval tv = { 10, 0 };
    rpc_gss_options_ret_t ret;
    AUTH *g;

    memset(&ret, 0, sizeof(ret));
    g = rpc_gss_seccreate(c, "imgproc@localhost", "kerberos_v5", rpcsec_gss_svc_integrity,
                          NULL, NULL, &ret);
    if (!g) {
        printf("context: failed (major %u)\n", ret.major_status);
        return 1;
    }
    auth_destroy(c->cl_auth);
    c->cl_auth = g;
    for (int i = 0; i < 3; i++)
        if (clnt_call(c, NULLPROC, PROTO_XDR(xdr_void), NULL, PROTO_XDR(xdr_void), NULL, tv) !=
            RPC_SUCCESS) {
            printf("krb5 call: %s\n", clnt_sperror(c, ""));
            return 1;
        }
    c->cl_auth = authunix_create_default();     /* g is dropped: no DESTROY goes out */
    if (clnt_call(c, NULLPROC, PROTO_XDR(xdr_void), NULL, PROTO_XDR(xdr_void), NULL, tv) !=
        RPC_SUCCESS) {
        printf("sys call: %s\n", clnt_sperror(c, ""));
        return 1;
    }
    printf("ok\n");
    fflush(stdout);
    _exit(0);   /* away at once: no context destroyed, no orderly close */
}

int
main(int argc, char **argv)
{
    ip_image_res res;
    ip_image im = { 0, NULL };
    CLIENT *c;
    int port;
    rpcprog_t prog;
    const char *what;

    if (argc < 4) {
        fprintf(stderr, "usage: hostile PORT PROGRAM CASE [FILE]\n");
        return 2;
    }
    port = atoi(argv[1]);
    prog = (rpcprog_t)strtoul(argv[2], NULL, 0);
    what = argv[3];
    if (strcmp(what, "garbage") == 0)
        return garbage(port);
    if (strcmp(what, "stalled-call") == 0)
        return stalled_call(port, prog);
    if (strcmp(what, "hold-idle") == 0 || strcmp(what, "hold-stalled") == 0 ||
        strcmp(what, "hold-trickle") == 0)
        return hold(port, prog, 300, what + 5);
    if (strcmp(what, "hold-null") == 0 && argc > 4)
        return hold_null(port, prog, atoi(argv[4]));
    if (strcmp(what, "trickle") == 0)
        return trickle(port, prog);
    if (strcmp(what, "krb5-then-sys") == 0)
        return krb5_then_sys(port, prog);
    if (strcmp(what, "stall-bytes") == 0 && argc > 5)
        return stall_bytes(port, prog, (uint32_t)strtoul(argv[4], NULL, 0),
                           (uint32_t)strtoul(argv[5], NULL, 0));
    if (strcmp(what, "junk-calls") == 0 && argc > 5)
        return junk_calls(port, prog, atoi(argv[4]), (uint32_t)strtoul(argv[5], NULL, 0));
    if (argc > 4) {
        FILE *f = fopen(argv[4], "rb");
        static char buf[1 << 22];
        if (!f) {
            perror(argv[4]);
            return 1;
        }
        im.ip_image_len = (u_int)fread(buf, 1, sizeof(buf), f);
        im.ip_image_val = buf;
        fclose(f);
    }
    if (strncmp(what, "udp-", 4) == 0)
        return udp_case(port, prog, &im, what);
    c = connect_to(port, prog);
    memset(&res, 0, sizeof(res));
    if (strcmp(what, "unknown-step") == 0) {
        ip_step s = { .op = (ip_op)99 };
        ip_process_args a = { im, { 1, &s }, { IP_FMT_AUTO, 0, FALSE } };
        report(c, process_1(&a, &res, c), &res);
    } else if (strcmp(what, "nan-angle") == 0) {
        ip_rotate_args a = { im, { NAN, { 0, 0, 0, 255 } }, { IP_FMT_AUTO, 0, FALSE } };
        report(c, rotate_1(&a, &res, c), &res);
    } else if (strcmp(what, "zero-width") == 0) {
        ip_resize_args a = { im, { 0, 100, IP_FIT_INSIDE, FALSE }, { IP_FMT_AUTO, 0, FALSE } };
        report(c, resize_1(&a, &res, c), &res);
    } else if (strcmp(what, "bad-quality") == 0) {
        ip_grayscale_args a = { im, { IP_FMT_JPEG, 101, FALSE } };
        report(c, grayscale_1(&a, &res, c), &res);
    } else if (strcmp(what, "bad-format") == 0) {
        ip_grayscale_args a = { im, { (ip_format)42, 0, FALSE } };
        report(c, grayscale_1(&a, &res, c), &res);
    } else if (strcmp(what, "too-many-steps") == 0) {
        /* Encoded by hand: the generated encoder refuses 17 steps itself. */
        ip_step s[IP_MAX_STEPS + 1];
        memset(s, 0, sizeof(s));
        for (int i = 0; i <= IP_MAX_STEPS; i++)
            s[i].op = IP_OP_FLIP;
        ip_process_args a = { im, { IP_MAX_STEPS, s }, { IP_FMT_AUTO, 0, FALSE } };
        /* 16 go through the stub; the 17th is refused by XDR on our side first. */
        a.steps.steps_len = IP_MAX_STEPS + 1;
        report(c, process_1(&a, &res, c), &res);
    } else if (strncmp(what, "task-", 5) == 0) {
        return task_case(c, what);
    } else if (strncmp(what, "batch-", 6) == 0 || strcmp(what, "create-nul-token") == 0) {
        return batch_case(c, port, prog, &im, what);
    } else if (strcmp(what, "no-such-proc") == 0) {
        struct timeval tv = { 10, 0 };
        enum clnt_stat st = clnt_call(c, 99, PROTO_XDR(xdr_void), NULL,
                                      PROTO_XDR(xdr_void), NULL, tv);
        printf("rpc: %s\n", clnt_sperrno(st));
    } else {
        fprintf(stderr, "hostile: unknown case '%s'\n", what);
        return 2;
    }
    clnt_destroy(c);
    return 0;
}
