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
    const char *owner;          /* "uid@machine" (AUTH_SYS) or "anonymous" */
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
/* Releases an ip_image_res a handler filled (the image may be libvips' memory). */
void service_free_image_res(void *res);

#endif
