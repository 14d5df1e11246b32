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
    unsigned timeout;               /* seconds to wait for a reply */
    int verbose;                    /* a line per request on stderr */
} web_config;

/* Starts serving (routes.c); NULL having said why on stderr. */
struct mg_context *web_start(const web_config *cfg);
void web_stop(struct mg_context *ctx);

/*
 * rpc.c: calls on this thread's connection to imgprocd, made when first
 * needed and made again after a call fails on it.  call makes the call on
 * c (ctx is its arguments and result); what names it in messages.  0, or -1
 * with why (malloc'ed) saying what failed; repeatable: a failure on an old
 * connection is retried once on a new one (the call may run twice).
 */
typedef enum clnt_stat (*web_call_fn)(CLIENT *c, void *ctx);
int web_call(const web_config *cfg, const char *what, web_call_fn call, void *ctx,
             int repeatable, char **why);
/*
 * web_call for one procedure: args encoded with xargs, the result decoded
 * into res (zeroed by the caller; freed and decoded again on a retry).
 */
int web_rpc_call(const web_config *cfg, const char *what, rpcproc_t proc, xdrproc_t xargs,
                 void *args, xdrproc_t xres, void *res, int repeatable, char **why);
/* The generated XDR routines as web_rpc_call takes them. */
#define WEB_XDR(fn) ((xdrproc_t)(void (*)(void))(fn))

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
