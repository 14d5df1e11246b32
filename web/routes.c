/* routes.c - the gateway's HTTP side: civetweb, the /v1 routes, problem+json errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>
#include <xmlrpc-c/base.h>
#include <xmlrpc-c/server.h>

#include "proto.h"
#include "web.h"

/* The settings, for handlers whose data is something else; the XML-RPC methods. */
static const web_config *web_cfg;
static xmlrpc_registry *registry;

/* The HTTP status for each service status: what the caller should do about it. */
static int
http_status(ip_status st)
{
    switch (st) {
    case IP_OK: return 200;
    case IP_EINVAL: return 400;         /* fix the request */
    case IP_EDENIED: return 403;
    case IP_ENOTFOUND: return 404;
    case IP_ESTATE: return 409;         /* not now: the task is in another state */
    case IP_ETOOBIG: return 413;
    case IP_EFORMAT: return 415;        /* not an image the server reads */
    case IP_ECORRUPT: return 422;       /* an image, but damaged */
    case IP_EBUSY: return 503;          /* try again later */
    case IP_EINTERNAL: break;
    }
    return 500;
}

static const char *
reason_phrase(int http)
{
    switch (http) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/*
 * An error as application/problem+json (RFC 9457): type names the service's
 * status ("invalid-argument"; "gateway" when imgprocd could not be asked),
 * status is the HTTP one, detail says what went wrong.  Returns the HTTP
 * status, as civetweb's handlers do.
 */
static int __attribute__((format(printf, 4, 5)))
problem(struct mg_connection *c, int http, const char *name, const char *fmt, ...)
{
    char detail[IP_MAX_MESSAGE + 256], *body = NULL;
    size_t len = 0;
    va_list ap;
    FILE *f;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!(f = open_memstream(&body, &len))) {
        mg_send_http_error(c, 500, "out of memory");
        return 500;
    }
    fprintf(f, "{\"type\": \"/v1/problems/%s\", \"title\": ", name);
    proto_json_string(f, name);
    fprintf(f, ", \"status\": %d, \"detail\": ", http);
    proto_json_string(f, detail);
    fprintf(f, "}\n");
    fclose(f);
    mg_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
              "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n", http,
              reason_phrase(http), len);
    mg_write(c, body, len);
    free(body);
    return http;
}

/* A refusal from imgprocd, passed on. */
static int
refused(struct mg_connection *c, ip_status st, const char *message)
{
    return problem(c, http_status(st), proto_status_name(st), "%s", message ? message : "");
}

/* The call did not go through: the gateway's own failure (502). */
static int
call_failed(struct mg_connection *c, char *why)
{
    int http = problem(c, 502, "gateway", "%s", why ? why : "imgprocd: the call failed");

    free(why);
    return http;
}

/* Sends len bytes of type with status 200. */
static int
send_ok(struct mg_connection *c, const char *type, const void *data, size_t len)
{
    mg_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\n\r\n", type, len);
    mg_write(c, data, len);
    return 200;
}

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
        return problem(c, 405, "method-not-allowed", "%s takes GET", ri->local_uri);
    if (web_call(k.cfg, "SERVER_INFO", call_info, &k, 1, &why))
        return call_failed(c, why);
    if (k.res.status != IP_OK) {
        http = refused(c, k.res.status, k.res.ip_server_info_res_u.message);
    } else if ((f = open_memstream(&body, &len))) {
        /* The state folder is the server's business, not the web's. */
        proto_info_json(f, &k.res.ip_server_info_res_u.info.info,
                        &k.res.ip_server_info_res_u.info.guard, NULL);
        fclose(f);
        http = send_ok(c, "application/json", body, len);
        free(body);
    } else
        http = problem(c, 500, "internal-error", "out of memory");
    xdr_free((xdrproc_t)xdr_ip_server_info_res, (char *)&k.res);
    return http;
}

/*
 * The request's body, at most max bytes, into *data (malloc'ed).  0, or the
 * HTTP status of the problem said (413 when larger).
 */
static int
read_body(struct mg_connection *c, unsigned long long max, char **data, size_t *len)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    size_t cap = ri->content_length > 0 ? (size_t)ri->content_length : 1 << 16, got = 0;
    char *buf;

    *data = NULL;
    *len = 0;
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > max)
        return problem(c, 413, "too-large", "the body is %lld bytes; this gateway takes %llu "
                       "at most (--max-body)", ri->content_length, max);
    if (!(buf = malloc(cap + 1)))
        return problem(c, 500, "internal-error", "out of memory");
    for (;;) {
        int n;
        if (got == cap) {
            char *more = cap * 2 > max + 1 ? NULL : realloc(buf, cap * 2 + 1);
            if (!more) {
                free(buf);
                return problem(c, 413, "too-large", "the body is over %llu bytes, which this "
                               "gateway takes at most (--max-body)", max);
            }
            buf = more;
            cap *= 2;
        }
        n = mg_read(c, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    *data = buf;
    *len = got;
    return 0;
}

/* ?steps=...&format=...&quality=...&strip=1 into steps and out.  0, or the HTTP status said. */
static int
parse_query(struct mg_connection *c, ip_step *steps, unsigned *nsteps, ip_output *out)
{
    const char *q = mg_get_request_info(c)->query_string;
    size_t qlen = q ? strlen(q) : 0;
    char text[4096], why[IP_MAX_MESSAGE];
    unsigned long v;

    memset(out, 0, sizeof(*out));
    if (!q || mg_get_var(q, qlen, "steps", text, sizeof(text)) <= 0)
        return problem(c, 400, "invalid-argument", "steps is missing: ?steps=grayscale,"
                       "blur=2 (see GET /v1/info for the operations)");
    if (proto_pipeline_parse(text, steps, IP_MAX_STEPS, nsteps, why, sizeof(why)))
        return problem(c, 400, "invalid-argument", "steps: %s", why);
    for (unsigned i = 0; i < *nsteps; i++)
        if (proto_step_check(&steps[i], why, sizeof(why)))
            return problem(c, 400, "invalid-argument", "steps: %s", why);
    if (mg_get_var(q, qlen, "format", text, sizeof(text)) > 0 &&
        proto_format_parse(text, &out->format)) {
        char names[128];
        proto_format_names(names, sizeof(names));
        return problem(c, 400, "invalid-argument", "format '%s': one of %s", text, names);
    }
    if (mg_get_var(q, qlen, "quality", text, sizeof(text)) > 0) {
        if (proto_parse_uint(text, 100, &v) || v == 0)
            return problem(c, 400, "invalid-argument", "quality '%s': 1..100", text);
        out->quality = (int)v;
    }
    if (mg_get_var(q, qlen, "strip", text, sizeof(text)) > 0)
        out->strip = strcmp(text, "0") != 0 && strcmp(text, "false") != 0;
    return 0;
}

/* POST /v1/process?steps=...: the image as the body, the result back. */
static int
on_process(struct mg_connection *c, void *data)
{
    const web_config *cfg = data;
    const struct mg_request_info *ri = mg_get_request_info(c);
    ip_step steps[IP_MAX_STEPS];
    ip_process_args a;
    ip_image_res res;
    unsigned nsteps = 0;
    char *body, *why;
    size_t len;
    int http;

    if (strcmp(ri->request_method, "POST") != 0)
        return problem(c, 405, "method-not-allowed", "%s takes POST with the image as the "
                       "body", ri->local_uri);
    memset(&a, 0, sizeof(a));
    memset(&res, 0, sizeof(res));
    if ((http = parse_query(c, steps, &nsteps, &a.output)) != 0)
        return http;
    if ((http = read_body(c, cfg->max_body, &body, &len)) != 0)
        return http;
    if (len == 0) {
        free(body);
        return problem(c, 400, "invalid-argument", "the body is empty: send the image");
    }
    a.image.ip_image_len = (u_int)len;
    a.image.ip_image_val = body;
    a.steps.steps_len = nsteps;
    a.steps.steps_val = steps;
    /* PROCESS is a function of its arguments: repeating it is safe. */
    if (web_rpc_call(cfg, "PROCESS", PROCESS, WEB_XDR(xdr_ip_process_args), &a,
                     WEB_XDR(xdr_ip_image_res), &res, 1, &why))
        http = call_failed(c, why);
    else if (res.status != IP_OK)
        http = refused(c, res.status, res.ip_image_res_u.message);
    else
        http = send_ok(c, proto_format_mime(res.ip_image_res_u.ok.format),
                       res.ip_image_res_u.ok.image.ip_image_val,
                       res.ip_image_res_u.ok.image.ip_image_len);
    free(body);
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
    return http;
}

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
        return problem(c, 405, "method-not-allowed", "/RPC2 takes XML-RPC calls by POST");
    if ((http = read_body(c, cfg->max_body / 3 * 4 + 65536, &body, &len)) != 0)
        return http;
    if (web_xmlrpc_answer(data, body, len, &out, &outlen) == 0)
        http = send_ok(c, "text/xml", out, outlen);
    else
        http = problem(c, 400, "invalid-argument", "not an XML-RPC call");
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
        return problem(c, 405, "method-not-allowed", "/v1/openapi.json takes GET");
    return send_ok(c, "application/json", web_openapi, (size_t)(web_openapi_end - web_openapi));
}

/* Anything else. */
static int
on_unknown(struct mg_connection *c, void *data)
{
    (void)data;
    return problem(c, 404, "not-found", "no such resource: %s (the API is under /v1)",
                   mg_get_request_info(c)->local_uri);
}

/* civetweb's access log: one line per request with -v. */
static int
on_log(const struct mg_connection *c, const char *message)
{
    (void)c;
    fprintf(stderr, "imgproc-web: %s\n", message);
    return 1;
}

struct mg_context *
web_start(const web_config *cfg)
{
    static char threads[16], timeout[16];
    const char *options[] = {
        "listening_ports", cfg->listen,
        "num_threads", threads,
        "request_timeout_ms", timeout,
        "enable_keep_alive", "yes",
        NULL,
    };
    struct mg_callbacks cb;
    struct mg_context *ctx;

    web_cfg = cfg;
    snprintf(threads, sizeof(threads), "%u", cfg->threads);
    snprintf(timeout, sizeof(timeout), "%u", (cfg->timeout + 10) * 1000);
    memset(&cb, 0, sizeof(cb));
    if (cfg->verbose)
        cb.log_message = on_log;
    mg_init_library(0);
    if (!(ctx = mg_start(&cb, NULL, options))) {
        fprintf(stderr, "imgproc-web: cannot serve HTTP on %s (in use, or not an "
                "address of this machine?)\n", cfg->listen);
        return NULL;
    }
    mg_set_request_handler(ctx, "/v1/info$", on_info, (void *)cfg);
    mg_set_request_handler(ctx, "/v1/process$", on_process, (void *)cfg);
    mg_set_request_handler(ctx, "/v1/openapi.json$", on_openapi, NULL);
    if ((registry = web_xmlrpc_registry(cfg)))
        mg_set_request_handler(ctx, "/RPC2$", on_rpc2, registry);
    else {
        mg_stop(ctx);
        return NULL;
    }
    mg_set_request_handler(ctx, "/", on_unknown, NULL);
    return ctx;
}

void
web_stop(struct mg_context *ctx)
{
    mg_stop(ctx);
    mg_exit_library();
    if (registry)
        xmlrpc_registry_free(registry);
    registry = NULL;
}
