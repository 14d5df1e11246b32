/* service.h - the procedures' work, apart from how the call came (see service.c). */
#ifndef IMGPROC_SERVICE_H
#define IMGPROC_SERVICE_H

#include "server.h"

/* What a handler reports for the request log. */
typedef struct call_log {
    size_t in_bytes;            /* image bytes received */
    size_t out_bytes;           /* image bytes sent */
    ip_status status;           /* outcome */
} call_log;

/* Who is calling, and how. */
typedef struct call_ctx {
    const char *owner;          /* the owner label of the caller's tasks (srv_caller) */
    int admin;                  /* the caller may act on every task */
    const char *how;            /* how the server knows who the caller is */
    int stream;                 /* TCP (1) or UDP (0): UDP calls must not block */
    tasks_batch *batch;         /* the connection's batch (TCP only, else NULL) */
    int fd;                     /* the caller's connection (TCP), else -1 */
    int local;                  /* the caller is on this machine (SERVER_INFO only) */
} call_ctx;

/*
 * The largest result a UDP reply carries: a datagram (libtirpc's
 * UDPMSGSIZE, the size svc_dg_create is given) less the reply's header and
 * the largest verifier.  A larger one cannot be sent, and its caller would
 * retransmit until its timeout: TASK_LIST shortens its page to fit, and
 * dispatch refuses anything else as too big.
 */
#define SRV_UDP_RESULT_ROOM (UDPMSGSIZE - 6 * BYTES_PER_XDR_UNIT - MAX_AUTH_BYTES)

/*
 * The caller, as the transport saw it (dispatch.c fills it from libtirpc):
 * its address and the credentials it claims.  caller.c makes the rest of
 * the server's view of them: owner label, locality, log name, policy.
 */
typedef struct srv_peer {
    const struct sockaddr *addr;    /* NULL when unknown (and on the local socket) */
    socklen_t addrlen;
    int stream;                     /* over TCP or the local socket, not UDP */
    int sys;                        /* AUTH_SYS credentials came with the call */
    unsigned uid, gid;              /* ... their uid and gid */
    const char *machine;            /* ... their machine name (the client's bytes) */
    int local;                      /* over the local socket: kuid, kgid are the kernel's word */
    unsigned kuid, kgid;            /* ... the uid and gid of the process that connected */
    int krb5;                       /* RPCSEC_GSS: principal is Kerberos' word */
    int krb5_none;                  /* ... a call with neither integrity nor privacy */
    int krb5_privacy;               /* ... encrypted */
    const char *principal;          /* ... "alice@EXAMPLE.ORG" */
} srv_peer;

/* A Kerberos caller's owner label: this, then the principal. */
#define SERVICE_KRB5_LABEL "krb5:"
#define SERVICE_MAX_PRINCIPAL ((size_t)IP_MAX_NAME + 1 - sizeof(SERVICE_KRB5_LABEL))

/* Who the caller is to this server, once the policy has looked at them. */
typedef struct srv_caller {
    char owner[IP_MAX_NAME + 1];    /* the owner label of their tasks */
    int admin;                      /* may list, cancel and delete every caller's tasks */
    char how[IP_MAX_TEXT];          /* how the server knows it, for people */
} srv_caller;

/*
 * The policy (docs: README "Who is calling"): the caller's identity, and
 * whether it may make a call of proc (exempt: NULL and SERVER_INFO, which
 * anyone may make).  0 with who filled, or -1 with the refusal's message,
 * naming the rule that refused, in why.
 */
int service_identify(const srv_config *cfg, const srv_peer *p, int exempt, srv_caller *who,
                     char *why, size_t len);
/* 1 when the caller is on this machine (loopback, or one of its addresses). */
int service_peer_local(const srv_peer *p);
/* The caller's address for the log: "127.0.0.1:812", "[::1]:812", "local uid 1000", "?". */
void service_peer_name(const srv_peer *p, char *buf, size_t len);
/*
 * Request policy.  transport_ok: may proc (udp_ok: it is cheap and bounded)
 * be served over this transport?  result_fits: can its result of that many
 * bytes go back on it?  0, or -1 with the refusal's message in why.
 */
int service_transport_ok(const char *proc, int udp_ok, int stream, char *why, size_t len);
int service_result_fits(int stream, size_t result_bytes, const char *proc, char *why,
                        size_t len);

typedef void (*handler_fn)(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);

/* Is fd readable (or hung up, events POLLRDHUP) right now?  Never blocks. */
int srv_fd_ready(int fd, short events);

/*
 * The handlers: each fills res (the procedure's result type in imgproc.x)
 * from arg (its argument type), for caller c, and notes sizes and outcome
 * in log.  They never block on the network; a synchronous call's image
 * work stops at its time budget, when c's connection hangs up, or at
 * shutdown.
 */
void service_null(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_server_info(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_image_info(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_grayscale(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_resize(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_rotate(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_blur(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_process(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_create(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_upload(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_start(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_status(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_wait(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_result(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_cancel(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_delete(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_list(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_submit(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_task_collect(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
void service_stats(srv *s, const call_ctx *c, void *arg, void *res, call_log *log);
/* Releases an ip_image_res a handler filled (the image may be libvips' memory). */
void service_free_image_res(void *res);

#endif
