/* server.h - imgprocd's context, shared by its transport, dispatch and main. */
#ifndef IMGPROC_SERVER_H
#define IMGPROC_SERVER_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
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
    int syslog;                         /* log to syslog, not stderr */
    int listen_default;                 /* no --listen: 127.0.0.1 and ::1 (if there is IPv6) */
} srv_config;

/* One socket the server listens on. */
typedef struct srv_listener {
    int fd;                     /* bound socket */
    int stream;                 /* TCP (1) or UDP (0) */
    const char *netid;          /* "tcp", "tcp6", "udp", "udp6" */
    SVCXPRT *xprt;              /* UDP only: its transport */
    int registered;             /* rpcb_set for it succeeded */
} srv_listener;

/*
 * What a TCP connection is doing, shared by its thread, the call it serves
 * and the accept loop, which measures senders (net.c).
 */
typedef struct conn_activity {
    int fd;                     /* the connection */
    int working;                /* in a call, or waiting for the byte budget (atomic) */
    int receiving;              /* reading a record (atomic) */
    long long since_ms;         /* the sender is measured from here (under s->lock) */
    int64_t since_bytes;        /* bytes the socket had received then, -1 = unknown */
} conn_activity;

/* Bytes of the budget held by the calls from one address (IPv6: one /64). */
typedef struct budget_share {
    struct budget_share *next;
    unsigned char key[9];       /* family, then 4 (IPv4) or 8 (IPv6 /64) address bytes */
    uint64_t bytes;
} budget_share;

/* The running server: passed to every function that needs state. */
/* One procedure's counters since start (all atomic): what STATS reports. */
typedef struct srv_proc_stats {
    unsigned long long calls, errors;       /* calls; those not answered IP_OK */
    unsigned long long bytes_in, bytes_out; /* image bytes */
    unsigned long long micros;              /* time spent on them */
} srv_proc_stats;

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
    budget_share *shares;                   /* ... by address, those holding any (under lock) */
    unsigned nconn;                         /* live TCP connection threads */
    unsigned nclosing;                      /* ... of them shut down, on their way out */
    int overflowed;                         /* let in over a limit since the last trim */
    struct conn *conns;                     /* their sockets, for shutdown (under lock) */
    unsigned in_progress;                   /* calls being handled (atomic) */
    unsigned long long served;              /* calls answered (atomic) */
    srv_proc_stats stats[IP_MAX_PROCS];     /* by procedure number */
    double started_ms;                      /* CLOCK_MONOTONIC at start */
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
void net_serve_one(srv *s, SVCXPRT *xprt, int stream, tasks_batch *batch, conn_activity *act);
/* The sender on act's connection is measured afresh from now (after a call, a wait). */
void net_measure_from_now(srv *s, conn_activity *act);

/* config.c: the defaults, and the settings that follow from the flags. */
void srv_defaults(srv *s);
/* Reads the flags into s (config.c's table); 0, or 2 after saying what is wrong.
 * --help and --version print and exit. */
int srv_parse_args(srv *s, int argc, char **argv);
/* imgprocd --help, from the same table. */
void srv_usage(FILE *f);
void srv_settle(srv *s);

/* dispatch.c: the procedure's name in imgproc.x ("PROCESS"), or NULL when there is none. */
const char *dispatch_proc_name(unsigned proc);
/* CLOCK_MONOTONIC in milliseconds. */
double srv_now_ms(void);

/* dispatch.c: one decoded call -> its handler -> one reply. */
/* batch is the TCP connection's batch (TASK_SUBMIT), NULL on UDP.  act, the
 * TCP connection's activity (NULL on UDP), says "working" while a call is
 * worked on (arguments in, reply not out) or waits for the byte budget. */
void dispatch_call(srv *s, struct svc_req *req, SVCXPRT *xprt, int stream, tasks_batch *batch,
                   conn_activity *act);

#endif
