/* web.h - the HTTP gateway's parts: its settings, the routes, the RPC side. */
#ifndef IMGPROC_WEB_H
#define IMGPROC_WEB_H

#include <rpc/rpc.h>

#include "imgproc.h"

struct mg_context;
struct mg_connection;

/* The command line. */
typedef struct web_config {
    const char *listen;             /* civetweb's listening_ports: "127.0.0.1:8080" */
    const char *host;               /* imgprocd's host */
    int port;                       /* imgprocd's port; 0: ask rpcbind */
    rpcprog_t program;              /* its program number */
    unsigned threads;               /* requests served at once */
    unsigned long long max_body;    /* largest request body */
    unsigned max_files;             /* files in one multipart request */
    unsigned max_websockets;        /* WebSockets open at once (each holds a thread) */
    unsigned timeout;               /* seconds to wait for a reply */
    unsigned io_timeout;            /* seconds a client may leave its socket silent */
    int verbose;                    /* a line per request on stderr */
} web_config;

/* Starts serving (routes.c); NULL having said why on stderr. */
struct mg_context *web_start(const web_config *cfg);
void web_stop(struct mg_context *ctx);

/* tasks.c: the /v1/tasks routes; events.c: the /v1/events WebSocket; page.c: the page. */
void web_tasks_routes(struct mg_context *ctx, const web_config *cfg);
void web_events_routes(struct mg_context *ctx, const web_config *cfg);
void web_page_routes(struct mg_context *ctx, const web_config *cfg);
/*
 * metrics.c: GET /metrics.  begin and end are civetweb's begin_request and
 * end_request callbacks; answered is told of each status sent (http.c).
 */
void web_metrics_routes(struct mg_context *ctx, const web_config *cfg);
int web_metrics_begin(struct mg_connection *c);
void web_metrics_end(const struct mg_connection *c, int status);
void web_metrics_answered(int http);
/* Ends events.c's threads, once civetweb has stopped (every socket closed). */
void web_events_stop(void);

/*
 * session.c: who a web caller is.  web_session reads the caller's token
 * (cookie or bearer); without one it makes a new one when make is set
 * (fresh), else fails.  0, or -1; -2 when an Authorization: Bearer token
 * is not one (web_bad_token answers it).  web_session_cookie: the Set-Cookie
 * header line that gives a fresh token to the browser, or "".
 */
#define WEB_TOKEN_LEN 64
typedef struct web_caller {
    char token[WEB_TOKEN_LEN + 1];  /* 64 hex digits: the secret */
    char who[40];                   /* "web-" and a digest of it: imgprocd's owner label */
    int fresh;                      /* made for this request: not yet the browser's */
} web_caller;
int web_session(const struct mg_connection *c, int make, web_caller *s);
void web_session_cookie(const web_caller *s, char *buf, size_t len);
int web_bad_token(struct mg_connection *c);

/*
 * http.c: replies.  Each returns the HTTP status sent, as civetweb's
 * handlers return it.  web_problem: application/problem+json (RFC 9457)
 * whose type and title are name (a service status name, or the gateway's
 * own), detail the message.  web_refused: imgprocd's refusal passed on;
 * web_call_failed: the call did not go through (502; frees why).
 * web_send: len bytes of type, with headers ("Name: value\r\n" lines).
 */
int web_problem(struct mg_connection *c, int http, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int web_refused(struct mg_connection *c, ip_status st, const char *message);
int web_call_failed(struct mg_connection *c, char *why);
int web_send(struct mg_connection *c, int http, const char *type, const char *headers,
             const void *data, size_t len);
int web_send_ok(struct mg_connection *c, const char *type, const void *data, size_t len);
int web_http_status(ip_status st);
/* The body, at most max bytes (malloc'ed).  0, or the HTTP status of the problem said. */
int web_read_body(struct mg_connection *c, unsigned long long max, char **data, size_t *len);
/* The query's steps: 0; 1 when there are none; -1 with why when they are not a pipeline. */
int web_query_steps(const char *q, ip_step *steps, unsigned *nsteps, char *why, size_t whylen);
/* ?steps=&format=&quality=&strip= into steps and out.  0, or the HTTP status said. */
int web_parse_query(struct mg_connection *c, ip_step *steps, unsigned *nsteps, ip_output *out);
/*
 * Each image of a request: every file of a multipart/form-data body, handed
 * on as it ends (name: the caller's file name), or the whole body (name
 * NULL).  each returns 0, or -1 having answered the request itself; undo,
 * when not NULL, is called if the request is refused part way, before the
 * refusal goes out.  The number of images, or -1 when it has been answered.
 */
typedef int (*web_image_fn)(const char *name, const char *data, size_t len, void *ctx);
int web_read_images(struct mg_connection *c, const web_config *cfg, web_image_fn each,
                    void (*undo)(void *ctx), void *ctx);

/*
 * rpc.c: calls on this thread's connection to imgprocd, made when first
 * needed and made again after a call fails on it.  call makes the call on
 * c (ctx is its arguments and result); who is the AUTH_SYS machine name it
 * carries (a session's, web_session_who; NULL: this machine's, the labs'
 * and anonymous callers'); what names it in messages.  0, or -1
 * with why (malloc'ed) saying what failed; repeatable: a failure on an old
 * connection is retried once on a new one (the call may run twice).
 */
typedef enum clnt_stat (*web_call_fn)(CLIENT *c, void *ctx);
int web_call(const web_config *cfg, const char *who, const char *what, web_call_fn call,
             void *ctx, int repeatable, char **why);
/*
 * web_call for one procedure: args encoded with xargs, the result decoded
 * into res (zeroed by the caller; freed and decoded again on a retry).
 */
int web_rpc_call(const web_config *cfg, const char *who, const char *what, rpcproc_t proc,
                 xdrproc_t xargs, void *args, xdrproc_t xres, void *res, int repeatable,
                 char **why);
/* Closes this thread's connection, as a thread of the gateway's own ends. */
void web_rpc_release(void);

/*
 * xmlrpc.c: the labs' XML-RPC calls at /RPC2.  registry: made once at start
 * (NULL having said why).  answer: the response to the call in xml, into
 * *out (malloc'ed); -1 when no response could be made.
 */
typedef struct xmlrpc_registry xmlrpc_registry;
xmlrpc_registry *web_xmlrpc_registry(const web_config *cfg);
int web_xmlrpc_answer(xmlrpc_registry *reg, const char *xml, size_t len, char **out,
                      size_t *outlen);

#endif
