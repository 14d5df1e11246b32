/* server.h - imgprocd's context, shared by its transport, dispatch and main. */
#ifndef IMGPROC_SERVER_H
#define IMGPROC_SERVER_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <rpc/rpc.h>
#include <rpc/svc_auth.h>

#include "imgproc.h"
#include "ops.h"
#include "tasks.h"

#define SRV_MAX_LISTEN 8        /* --listen addresses */
#define SRV_MAX_NETS 16         /* --trust-sys-from networks */
#define SRV_MAX_ADMINS 16       /* --admin principals */

/* A network whose AUTH_SYS claims are believed (--trust-sys-from). */
typedef struct srv_net {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char addr[16];     /* its address, 4 or 16 bytes */
    unsigned prefix;            /* bits that must match */
} srv_net;

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
    const char *local_socket;           /* the AF_LOCAL socket's path, "none": no socket */
    srv_net trust_sys[SRV_MAX_NETS];    /* AUTH_SYS is believed from these networks */
    int ntrust_sys;                     /* entries used */
    int refuse_untrusted;               /* refuse untrusted callers, not make them anonymous */
    const char *krb5_service;           /* RPCSEC_GSS service name (imgproc@HOST), NULL: none */
    const char *keytab;                 /* its keys, NULL: $KRB5_KTNAME or the default */
    const char *admins[SRV_MAX_ADMINS]; /* Kerberos principals that may act on every task */
    int nadmins;                        /* entries used */
} srv_config;

/* One socket the server listens on. */
typedef struct srv_listener {
    int fd;                     /* bound socket */
    int stream;                 /* TCP or AF_LOCAL (1), UDP (0) */
    const char *netid;          /* "tcp", "tcp6", "udp", "udp6", "local" */
    SVCXPRT *xprt;              /* UDP only: its transport */
    int registered;             /* rpcb_set for it succeeded */
} srv_listener;

/* A connection's Kerberos context, as libtirpc holds it (krb5.c). */
typedef struct krb5_conn {
    long long used_ms;          /* the context's last use, CLOCK_MONOTONIC; 0 = never */
    time_t used_wall;           /* ... by the wall clock, which libtirpc's expiry counts */
    SVCAUTH auth;               /* libtirpc's handle of it, as its last call left it */
    int held;                   /* auth names a context libtirpc still keeps */
} krb5_conn;

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
    krb5_conn krb5;             /* its Kerberos context, if it made one */
} conn_activity;

/* Bytes of the budget held by the calls from one address (IPv6: one /64). */
typedef struct budget_share {
    struct budget_share *next;
    unsigned char key[9];       /* family (1: the local socket), then 4 (IPv4) or 8 (IPv6 /64) address bytes, or the uid */
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
    srv_listener listeners[SRV_MAX_LISTEN * 2 + 1]; /* TCP, UDP, the local socket */
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

/* krb5.c: Kerberos callers (RPCSEC_GSS).  kerberos_setup checks the keys of
 * --krb5-service and names the service to libtirpc: 0, or -1 with why. */
int kerberos_setup(srv *s, char **why);
/* Authenticates an RPCSEC_GSS call on the connection whose context is kc;
 * *answered when nothing more is to be done (a context made or destroyed,
 * its reply sent; a replayed call, dropped). */
enum auth_stat kerberos_authenticate(struct svc_req *req, struct rpc_msg *msg, krb5_conn *kc,
                                     int *answered);
/* The caller's principal into principal; *privacy when its calls are
 * encrypted.  0, 1 when it asked for neither integrity nor privacy, -1 when unknown. */
int kerberos_caller(struct svc_req *req, char *principal, size_t len, int *privacy);
/* kc's connection is closing: its context goes too, if libtirpc still keeps it. */
void kerberos_connection_done(SVCXPRT *xprt, krb5_conn *kc);
/*
 * libtirpc frees a context unused for 300 s (by the wall clock) from any
 * thread.  So a Kerberos connection's calls must end within
 * KRB5_CALL_SECONDS of the context's use (a record's arrival included: net.c
 * cuts a slower one), and an idle one closes after KRB5_IDLE_SECONDS.
 */
#define KRB5_IDLE_SECONDS 240
#define KRB5_CALL_SECONDS 240

/* config.c: the defaults, and the settings that follow from the flags. */
void srv_defaults(srv *s);
/* Reads the flags into s (config.c's table); 0, or 2 after saying what is wrong.
 * --help and --version print and exit. */
int srv_parse_args(srv *s, int argc, char **argv);
/* imgprocd --help, from the same table. */
void srv_usage(FILE *f);
void srv_settle(srv *s);
/* Does n hold this machine's loopback address (127.0.0.1, ::1)? */
int srv_net_holds_loopback(const srv_net *n);

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
