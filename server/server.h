/* server.h - imgprocd's context, shared by its transport, dispatch and main. */
#ifndef IMGPROC_SERVER_H
#define IMGPROC_SERVER_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <rpc/rpc.h>

#include "imgproc.h"
#include "ops.h"
#include "tasks.h"

#define SRV_MAX_LISTEN 8        /* --listen addresses */

/* Settings from the command line. */
typedef struct srv_config {
    rpcprog_t program;                  /* RPC program number */
    int port;                           /* fixed port, 0 = any free one */
    int use_rpcbind;                    /* register with rpcbind */
    const char *listen[SRV_MAX_LISTEN]; /* addresses to serve on */
    int nlisten;                        /* entries used in listen[] */
    uint64_t max_request_bytes;         /* largest encoded input */
    uint64_t max_inflight_bytes;        /* image bytes of all calls being received or run */
    uint64_t max_pixels;                /* largest width x height */
    unsigned max_steps;                 /* longest pipeline */
    unsigned max_connections;           /* TCP connections served at once */
    unsigned max_per_address;           /* ... from one address (IPv6: one /64), 0 = no cap */
    unsigned min_receive_rate;          /* bytes/s a call being received must keep up */
    unsigned idle_seconds;              /* close a silent TCP connection after this */
    unsigned max_request_seconds;       /* a synchronous call's work is stopped after this */
    unsigned max_blur_work;             /* a blur's sigma x megapixels at most */
    int verbose;                        /* log one line per request */
} srv_config;

/* One socket the server listens on. */
typedef struct srv_listener {
    int fd;                     /* bound socket */
    int stream;                 /* TCP (1) or UDP (0) */
    const char *netid;          /* "tcp", "tcp6", "udp", "udp6" */
    SVCXPRT *xprt;              /* UDP only: its transport */
    int registered;             /* rpcb_set for it succeeded */
} srv_listener;

/* The running server: passed to every function that needs state. */
typedef struct srv {
    srv_config cfg;                         /* settings */
    tasks_config tcfg;                      /* settings of the task queue */
    tasks *tasks;                           /* the task queue and its workers */
    ops_limits limits;                      /* what the image operations may do */
    srv_listener listeners[SRV_MAX_LISTEN * 2]; /* TCP and UDP sockets */
    int nlisteners;                         /* entries used */
    int stop_pipe[2];                       /* written once to stop every loop */
    pthread_mutex_t lock;                   /* guards nconn, conns, inflight */
    pthread_cond_t idle;                    /* signalled when nconn drops */
    pthread_cond_t budget;                  /* signalled when inflight drops */
    uint64_t inflight;                      /* image bytes held by calls (under lock) */
    unsigned nconn;                         /* live TCP connection threads */
    unsigned nclosing;                      /* ... of them shut down, on their way out */
    struct conn *conns;                     /* their sockets, for shutdown (under lock) */
    unsigned in_progress;                   /* calls being handled (atomic) */
    unsigned long long served;              /* calls answered (atomic) */
    pthread_t udp_thread;                   /* serves every UDP socket */
    int udp_running;                        /* udp_thread was started */
} srv;

/* net.c: sockets, rpcbind, the accept loop and the per-connection threads. */
int net_listen(srv *s, char **why);
int net_register(srv *s, char **why);
void net_unregister(srv *s);
int net_run(srv *s);
void net_close(srv *s);
/* Receives one call on xprt (TCP when stream) and answers it: what the
 * connection threads do, and what the fuzz harness drives. */
void net_serve_one(srv *s, SVCXPRT *xprt, int stream, tasks_batch *batch, int *working);

/* config.c: the defaults, and the settings that follow from the flags. */
void srv_defaults(srv *s);
void srv_settle(srv *s);

/* dispatch.c: one decoded call -> its handler -> one reply. */
/* batch is the TCP connection's batch (TASK_SUBMIT), NULL on UDP.  *working,
 * when given, is 1 while a call is worked on (arguments in, reply not out). */
void dispatch_call(srv *s, struct svc_req *req, SVCXPRT *xprt, int stream, tasks_batch *batch,
                   int *working);

#endif
