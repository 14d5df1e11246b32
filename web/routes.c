/* routes.c - the gateway's HTTP side: civetweb, the /v1 routes, problem+json errors. */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>
#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "proto.h"
#include "web.h"

/* The settings, for handlers whose data is something else; the XML-RPC methods. */
static const web_config *web_cfg;
static xmlrpc_registry *registry;

/* SERVER_INFO's call, for web_call. */
typedef struct info_call {
    const web_config *cfg;
    ip_server_info_res res;
} info_call;

static enum clnt_stat
call_info(CLIENT *clnt, void *ctx)
{
    info_call *k = ctx;
    struct timeval tv = { (time_t)k->cfg->timeout, 0 };

    xdr_free((xdrproc_t)xdr_ip_server_info_res, (char *)&k->res);  /* a failed try's */
    return proto_server_info(clnt, &k->res, tv);
}

/* GET /v1/info: SERVER_INFO, as `imgproc info --json` prints it. */
static int
on_info(struct mg_connection *c, void *data)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    info_call k = { data, { 0 } };
    char *body = NULL, *why;
    size_t len = 0;
    FILE *f;
    int http;

    if (strcmp(ri->request_method, "GET") != 0)
        return web_problem(c, 405, "method-not-allowed", "%s takes GET", ri->local_uri);
    if (web_call(k.cfg, NULL, "SERVER_INFO", call_info, &k, 1, &why))
        return web_call_failed(c, why);
    if (k.res.status != IP_OK) {
        http = web_refused(c, k.res.status, k.res.ip_server_info_res_u.message);
    } else if ((f = open_memstream(&body, &len))) {
        /* The state folder is the server's business, not the web's. */
        proto_info_json(f, &k.res.ip_server_info_res_u.info.info,
                        &k.res.ip_server_info_res_u.info.guard, NULL, NULL,
                        k.res.ip_server_info_res_u.info.store);
        fclose(f);
        http = web_send_ok(c, "application/json", body, len);
        free(body);
    } else
        http = web_problem(c, 500, "internal-error", "out of memory");
    xdr_free((xdrproc_t)xdr_ip_server_info_res, (char *)&k.res);
    return http;
}

/* POST /v1/process: the pipeline, and the one image's result. */
typedef struct process_ctx {
    struct mg_connection *conn;
    const web_config *cfg;
    ip_step steps[IP_MAX_STEPS];
    ip_process_args a;
} process_ctx;

static int
process_one(const char *name, const char *data, size_t len, void *ctx)
{
    process_ctx *k = ctx;
    ip_image_res res;
    char *why;

    /* The first image is answered, and the request with it: more are not read. */
    (void)name;
    if (len == 0) {
        web_problem(k->conn, 400, "invalid-argument", "the image is empty: send it as the "
                    "body, or as a file of a multipart form");
        return -1;
    }
    k->a.image.ip_image_len = (u_int)len;
    k->a.image.ip_image_val = (char *)data;
    memset(&res, 0, sizeof(res));
    /* PROCESS is a function of its arguments: repeating it is safe. */
    if (web_rpc_call(k->cfg, NULL, "PROCESS", PROCESS, PROTO_XDR(xdr_ip_process_args), &k->a,
                     PROTO_XDR(xdr_ip_image_res), &res, 1, &why))
        web_call_failed(k->conn, why);
    else if (res.status != IP_OK)
        web_refused(k->conn, res.status, res.ip_image_res_u.message);
    else
        web_send_ok(k->conn, proto_format_mime(res.ip_image_res_u.ok.format),
                    res.ip_image_res_u.ok.image.ip_image_val,
                    res.ip_image_res_u.ok.image.ip_image_len);
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
    return -1;      /* answered */
}

/* POST /v1/process?steps=...: the image as the body or a form's file; the result back. */
static int
on_process(struct mg_connection *c, void *data)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    process_ctx k;
    unsigned nsteps = 0;
    int http;

    if (strcmp(ri->request_method, "POST") != 0)
        return web_problem(c, 405, "method-not-allowed", "%s takes POST with the image as the "
                           "body", ri->local_uri);
    memset(&k, 0, sizeof(k));
    k.conn = c;
    k.cfg = data;
    if ((http = web_parse_query(c, k.steps, &nsteps, &k.a.output)) != 0)
        return http;
    k.a.steps.steps_len = nsteps;
    k.a.steps.steps_val = k.steps;
    web_read_images(c, k.cfg, process_one, NULL, &k);
    return 200;
}

/*
 * The deepest nesting of elements in xml.  xmlrpc-c's parser recurses once
 * per level on a civetweb thread's stack: a call nested a thousand deep
 * overflowed it.  Counting opening and closing tags is enough to refuse one
 * before it is parsed (comments, CDATA and declarations are not elements).
 */
static unsigned
xml_depth(const char *xml, size_t len)
{
    unsigned depth = 0, deepest = 0;

    for (size_t i = 0; i + 1 < len; i++) {
        if (xml[i] != '<')
            continue;
        if (xml[i + 1] == '/') {
            if (depth)
                depth--;
        } else if (xml[i + 1] != '?' && xml[i + 1] != '!') {
            size_t k = i + 1;
            while (k < len && xml[k] != '>')
                k++;
            if (k < len && xml[k - 1] != '/' && ++depth > deepest)   /* <a/> opens nothing */
                deepest = depth;
        }
    }
    return deepest;
}

/* The labs' calls are a few levels deep; a multicall of arrays, a dozen. */
#define XMLRPC_MAX_DEPTH 64

/* POST /RPC2: an XML-RPC call (xmlrpc.c). */
static int
on_rpc2(struct mg_connection *c, void *data)
{
    const web_config *cfg = web_cfg;
    const struct mg_request_info *ri = mg_get_request_info(c);
    char *body, *out = NULL;
    size_t len, outlen;
    int http;

    if (strcmp(ri->request_method, "POST") != 0)
        return web_problem(c, 405, "method-not-allowed", "/RPC2 takes XML-RPC calls by POST");
    if ((http = web_read_body(c, cfg->max_body / 3 * 4 + 65536, &body, &len)) != 0)
        return http;
    if (xml_depth(body, len) > XMLRPC_MAX_DEPTH)
        http = web_problem(c, 400, "invalid-argument", "the call nests elements over %d deep",
                           XMLRPC_MAX_DEPTH);
    else if (web_xmlrpc_answer(data, body, len, &out, &outlen) == 0)
        http = web_send_ok(c, "text/xml", out, outlen);
    else
        http = web_problem(c, 400, "invalid-argument", "not an XML-RPC call");
    free(body);
    free(out);
    return http;
}

/* web/openapi.json, built in (openapi.S). */
extern const char web_openapi[], web_openapi_end[];

/* GET /v1/openapi.json: the API's description (OpenAPI 3.1). */
static int
on_openapi(struct mg_connection *c, void *data)
{
    (void)data;
    if (strcmp(mg_get_request_info(c)->request_method, "GET") != 0)
        return web_problem(c, 405, "method-not-allowed", "/v1/openapi.json takes GET");
    return web_send_ok(c, "application/json", web_openapi, (size_t)(web_openapi_end - web_openapi));
}

/* Anything else. */
static int
on_unknown(struct mg_connection *c, void *data)
{
    (void)data;
    return web_problem(c, 404, "not-found", "no such resource: %s (the API is under /v1)",
                   mg_get_request_info(c)->local_uri);
}

/* A civetweb thread ends (mg_stop): its connection to imgprocd with it. */
static void
on_thread_exit(const struct mg_context *ctx, int type, void *user)
{
    (void)ctx, (void)type, (void)user;
    web_rpc_release();
}

/* civetweb's own messages, with -v. */
static int
on_log(const struct mg_connection *c, const char *message)
{
    (void)c;
    fprintf(stderr, "imgproc-web: %s\n", message);
    return 1;
}

/*
 * Who the gateway is once its port is bound, when started as root: the
 * user imgproc-web (the package makes it), else nobody.  It needs no
 * privilege, and over imgprocd's local socket root would be an admin,
 * reaching every caller's tasks.  A user of its own keeps other programs
 * running as nobody from acting for its sessions.  NULL: stay as we are.
 */
static const char *
run_as(void)
{
    if (geteuid() != 0)
        return NULL;
    return getpwnam("imgproc-web") ? "imgproc-web" : "nobody";
}

struct mg_context *
web_start(const web_config *cfg)
{
    static char threads[16], timeout[16];
    const char *options[] = {
        "listening_ports", cfg->listen,
        "num_threads", threads,
        "request_timeout_ms", timeout,
        "keep_alive_timeout_ms", timeout,
        /* An open WebSocket may be quiet a long while (a page waiting for
         * its tasks): 5 minutes, after which the page opens a new one. */
        "websocket_timeout_ms", "300000",
        "enable_keep_alive", "yes",
        /* A reply's head and body go out as two writes: without this, Nagle
         * holds the body until the head is acknowledged (a delayed ACK, 40 ms). */
        "tcp_nodelay", "1",
        /* Started as root: its own user once the port is bound (run_as);
         * the pair is filled in below, or left as the list's end. */
        NULL, NULL,
        NULL,
    };
    const size_t user_at = sizeof(options) / sizeof(options[0]) - 3;
    struct mg_callbacks cb;
    struct mg_context *ctx;

    web_cfg = cfg;
    if ((options[user_at + 1] = run_as()))
        options[user_at] = "run_as_user";
    /* Each open WebSocket holds a thread: --threads stay for the requests. */
    snprintf(threads, sizeof(threads), "%u", cfg->threads + cfg->max_websockets);
    /* A socket's read or write that stalls this long ends its request: a
     * client that stops sending holds a thread no longer (the RPC calls'
     * own waits are --timeout, and do not count). */
    snprintf(timeout, sizeof(timeout), "%u", cfg->io_timeout * 1000);
    memset(&cb, 0, sizeof(cb));
    if (cfg->verbose)
        cb.log_message = on_log;
    cb.exit_thread = on_thread_exit;
    cb.begin_request = web_metrics_begin;
    cb.end_request = web_metrics_end;
    mg_init_library(0);
    if (!(ctx = mg_start(&cb, NULL, options))) {
        fprintf(stderr, "imgproc-web: cannot serve HTTP on %s (in use, or not an "
                "address of this machine?)\n", cfg->listen);
        return NULL;
    }
    mg_set_request_handler(ctx, "/v1/info$", on_info, (void *)cfg);
    mg_set_request_handler(ctx, "/v1/process$", on_process, (void *)cfg);
    mg_set_request_handler(ctx, "/v1/openapi.json$", on_openapi, NULL);
    web_tasks_routes(ctx, cfg);
    if ((registry = web_xmlrpc_registry(cfg)))
        mg_set_request_handler(ctx, "/RPC2$", on_rpc2, registry);
    else {
        mg_stop(ctx);
        return NULL;
    }
    web_events_routes(ctx, cfg);
    web_page_routes(ctx, cfg);
    web_metrics_routes(ctx, cfg);
    mg_set_request_handler(ctx, "/**", on_unknown, NULL);
    return ctx;
}

void
web_stop(struct mg_context *ctx)
{
    mg_stop(ctx);
    web_events_stop();
    mg_exit_library();
    if (registry)
        xmlrpc_registry_free(registry);
    registry = NULL;
}
