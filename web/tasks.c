/*
 * tasks.c - /v1/tasks: a web session's imgprocd tasks over REST.  Each
 * route is one or a few ONC RPC calls made in the session's name
 * (session.c), so imgprocd decides what a session may see and touch.
 *
 *   POST   /v1/tasks?steps=S[&format=..]  one task per image: the body, or each file of a
 *                                         multipart form; 201 and {"tasks": [...]}
 *   GET    /v1/tasks[?state=a,b]          the session's tasks, oldest first
 *   GET    /v1/tasks/ID                   one task (TASK_STATUS)
 *   GET    /v1/tasks/ID/wait[?timeout=S&seen=STATE]
 *                                         long poll: until it is in another state than
 *                                         seen (default: until it is final) or S seconds
 *   GET    /v1/tasks/ID/result            the result image
 *   POST   /v1/tasks/ID/cancel            TASK_CANCEL
 *   DELETE /v1/tasks/ID                   TASK_DELETE
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <civetweb.h>

#include "proto.h"
#include "web.h"

/* A JSON reply being written. */
typedef struct json_out {
    FILE *f;
    char *body;
    size_t len;
} json_out;

static int
json_open(json_out *j)
{
    j->body = NULL;
    j->len = 0;
    return (j->f = open_memstream(&j->body, &j->len)) ? 0 : -1;
}

/* Sends what was written with status http and headers; frees it. */
static int
json_send(struct mg_connection *c, json_out *j, int http, const char *headers)
{
    fclose(j->f);
    http = web_send(c, http, "application/json", headers, j->body, j->len);
    free(j->body);
    return http;
}

static void
json_drop(json_out *j)
{
    fclose(j->f);
    free(j->body);
}

/* POST /v1/tasks: what the images share, and what came of each. */
typedef struct create_ctx {
    struct mg_connection *conn;
    const web_config *cfg;
    const web_caller *caller;
    ip_step steps[IP_MAX_STEPS];
    ip_task_spec spec;
    json_out out;               /* the items so far */
    unsigned tried, made;
    ip_task_id last;            /* the last task made */
    ip_task_id *ids;            /* every task made, for a request refused after some */
    int first_http;             /* the first failure's HTTP status, name and message */
    const char *first_name;
    char first_error[IP_MAX_MESSAGE + 300];
} create_ctx;

/* A failed image's item, and the first failure kept for a reply with none made. */
static void
create_failed(create_ctx *k, int http, const char *name, const char *error)
{
    fprintf(k->out.f, ", \"ok\": false, \"status\": \"%s\", \"error\": ", name);
    proto_json_string(k->out.f, error);
    fprintf(k->out.f, "}");
    if (!k->first_http) {
        k->first_http = http;
        k->first_name = name;
        snprintf(k->first_error, sizeof(k->first_error), "%s", error);
    }
}

/* One image: a task, with a token of its own so that a retried call cannot make two. */
static int
create_one(const char *file, const char *data, size_t len, void *ctx)
{
    create_ctx *k = ctx;
    ip_task_create_args a;
    ip_task_create_res r;
    unsigned char raw[12];
    char token[32], *why;

    fprintf(k->out.f, "%s{\"file\": ", k->tried++ ? ", " : "");
    if (file)
        proto_json_string(k->out.f, file);
    else
        fprintf(k->out.f, "null");
    if (len == 0) {
        create_failed(k, 400, proto_status_name(IP_EINVAL), "the image is empty");
        return 0;
    }
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        create_failed(k, 500, proto_status_name(IP_EINTERNAL), "no random bytes for a token");
        return 0;
    }
    strcpy(token, "web-");
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(token + 4 + 2 * i, 3, "%02x", raw[i]);
    memset(&a, 0, sizeof(a));
    memset(&r, 0, sizeof(r));
    a.source.kind = IP_SOURCE_INLINE;
    a.source.ip_task_source_u.image.ip_image_len = (u_int)len;
    a.source.ip_task_source_u.image.ip_image_val = (char *)data;
    a.spec = k->spec;
    a.token = token;
    if (web_rpc_call(k->cfg, k->caller->who, "TASK_CREATE", TASK_CREATE,
                     PROTO_XDR(xdr_ip_task_create_args), &a, PROTO_XDR(xdr_ip_task_create_res), &r,
                     1, &why)) {
        create_failed(k, 502, "gateway", why ? why : "imgprocd: the call failed");
        free(why);
    } else if (r.status != IP_OK) {
        create_failed(k, web_http_status(r.status), proto_status_name(r.status),
                      r.ip_task_create_res_u.message);
    } else {
        k->last = r.ip_task_create_res_u.created.id;
        if (k->ids)
            k->ids[k->made] = k->last;
        k->made++;
        fprintf(k->out.f, ", \"ok\": true, \"id\": %" PRIu64 ", \"state\": \"%s\"}",
                (uint64_t)k->last, proto_task_state_name(r.ip_task_create_res_u.created.state));
    }
    xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&r);
    return 0;
}

/*
 * Refused after some files became tasks (too many, too large): the caller
 * never learns their ids, so they go before the refusal is sent.
 */
static void
create_undo(void *ctx)
{
    create_ctx *k = ctx;

    for (unsigned i = 0; k->ids && i < k->made; i++) {
        ip_task_res r;
        char *why = NULL;
        memset(&r, 0, sizeof(r));
        if (web_rpc_call(k->cfg, k->caller->who, "TASK_DELETE", TASK_DELETE,
                         PROTO_XDR(xdr_ip_task_id), &k->ids[i], PROTO_XDR(xdr_ip_task_res), &r, 1,
                         &why) == 0)
            xdr_free((xdrproc_t)xdr_ip_task_res, (char *)&r);
        free(why);
    }
}

static int
tasks_create(struct mg_connection *c, const web_config *cfg)
{
    create_ctx k;
    web_caller who;
    char headers[512], *h;
    int http, n;

    memset(&k, 0, sizeof(k));
    if ((http = web_parse_query(c, k.steps, &k.spec.steps.steps_len, &k.spec.output)) != 0)
        return http;
    k.spec.steps.steps_val = k.steps;
    if ((n = web_session(c, 1, &who)) == -2)
        return web_bad_token(c);
    if (n < 0)
        return web_problem(c, 500, "internal-error", "cannot make a session");
    k.conn = c;
    k.cfg = cfg;
    k.caller = &who;
    if (json_open(&k.out) < 0)
        return web_problem(c, 500, "internal-error", "out of memory");
    fprintf(k.out.f, "{\"tasks\": [");
    k.ids = calloc(cfg->max_files, sizeof(*k.ids));
    n = web_read_images(c, cfg, create_one, create_undo, &k);
    free(k.ids);
    if (n < 0) {
        json_drop(&k.out);
        return 400;
    }
    fprintf(k.out.f, "]}\n");
    if (k.made == 0) {
        json_drop(&k.out);
        return web_problem(c, k.first_http, k.first_name, "%s", k.first_error);
    }
    web_session_cookie(&who, headers, sizeof(headers));
    h = headers + strlen(headers);
    if (n == 1)
        snprintf(h, sizeof(headers) - (size_t)(h - headers), "Location: /v1/tasks/%" PRIu64
                 "\r\n", (uint64_t)k.last);
    return json_send(c, &k.out, 201, headers);
}

/* ?state=queued,running into TASK_LIST's mask.  0, or the HTTP status said. */
static int
parse_states(struct mg_connection *c, unsigned *mask)
{
    const char *q = mg_get_request_info(c)->query_string;
    char text[256], *save, *name;

    *mask = 0;
    if (!q || mg_get_var(q, strlen(q), "state", text, sizeof(text)) <= 0)
        return 0;
    for (name = strtok_r(text, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        ip_task_state st;
        if (proto_task_state_parse(name, &st))
            return web_problem(c, 400, "invalid-argument", "state '%s': one of created, "
                               "queued, running, done, failed, cancelled", name);
        *mask |= 1u << st;
    }
    return 0;
}

/* GET /v1/tasks: every page of TASK_LIST. */
static int
tasks_list(struct mg_connection *c, const web_config *cfg)
{
    ip_task_list_args a;
    web_caller who;
    json_out out;
    unsigned n = 0;
    int http, more;

    memset(&a, 0, sizeof(a));
    if ((http = parse_states(c, &a.states)) != 0)
        return http;
    if (json_open(&out) < 0)
        return web_problem(c, 500, "internal-error", "out of memory");
    fprintf(out.f, "{\"tasks\": [");
    /* Without a session there is nothing of its own to list. */
    if ((more = web_session(c, 0, &who)) == -2) {
        json_drop(&out);
        return web_bad_token(c);
    }
    for (more = more == 0; more;) {
        ip_task_list_res r;
        char *why;

        memset(&r, 0, sizeof(r));
        a.limit = IP_MAX_LIST;
        if (web_rpc_call(cfg, who.who, "TASK_LIST", TASK_LIST, PROTO_XDR(xdr_ip_task_list_args),
                         &a, PROTO_XDR(xdr_ip_task_list_res), &r, 1, &why)) {
            json_drop(&out);
            return web_call_failed(c, why);
        }
        if (r.status != IP_OK) {
            json_drop(&out);
            http = web_refused(c, r.status, r.ip_task_list_res_u.message);
            xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
            return http;
        }
        for (u_int i = 0; i < r.ip_task_list_res_u.page.tasks.tasks_len; i++) {
            ip_task_info *ti = &r.ip_task_list_res_u.page.tasks.tasks_val[i];
            fprintf(out.f, "%s", n++ ? ", " : "");
            proto_task_json(out.f, ti, -1, NULL);
            a.after = ti->id;
        }
        more = r.ip_task_list_res_u.page.more && r.ip_task_list_res_u.page.tasks.tasks_len;
        xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
    }
    fprintf(out.f, "]}\n");
    return json_send(c, &out, 200, NULL);
}

/* A task's answer (TASK_STATUS, TASK_WAIT) as its JSON, or the refusal. */
static int
send_info(struct mg_connection *c, ip_task_info_res *r)
{
    json_out out;

    if (r->status != IP_OK)
        return web_refused(c, r->status, r->ip_task_info_res_u.message);
    if (json_open(&out) < 0)
        return web_problem(c, 500, "internal-error", "out of memory");
    proto_task_json(out.f, &r->ip_task_info_res_u.info, -1, NULL);
    fprintf(out.f, "\n");
    return json_send(c, &out, 200, NULL);
}

static int
task_status(struct mg_connection *c, const web_config *cfg, const char *who, ip_task_id id)
{
    ip_task_info_res r;
    char *why;
    int http;

    memset(&r, 0, sizeof(r));
    if (web_rpc_call(cfg, who, "TASK_STATUS", TASK_STATUS, PROTO_XDR(xdr_ip_task_id), &id,
                     PROTO_XDR(xdr_ip_task_info_res), &r, 1, &why))
        return web_call_failed(c, why);
    http = send_info(c, &r);
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
    return http;
}

/*
 * GET /v1/tasks/ID/wait: TASK_WAIT, which blocks in imgprocd (no polling).
 * With seen, until the task leaves that state; without, until it is final,
 * one TASK_WAIT per state it passes through.  timeout: 1..IP_MAX_WAIT
 * seconds, 30 by default; the answer is the task as it is then.
 */
static int
task_wait(struct mg_connection *c, const web_config *cfg, const char *who, ip_task_id id)
{
    const char *q = mg_get_request_info(c)->query_string;
    size_t qlen = q ? strlen(q) : 0;
    ip_task_wait_args a = { id, IP_TASK_CREATED, 30 };
    ip_task_info_res r;
    int seen = 0, http;
    unsigned long v;
    time_t end;
    char text[64], *why;

    if (q && mg_get_var(q, qlen, "timeout", text, sizeof(text)) > 0) {
        if (proto_parse_uint(text, IP_MAX_WAIT, &v) || v == 0)
            return web_problem(c, 400, "invalid-argument", "timeout '%s': 1..%d seconds", text,
                               IP_MAX_WAIT);
        a.timeout = (u_int)v;
    }
    if (q && mg_get_var(q, qlen, "seen", text, sizeof(text)) > 0) {
        if (proto_task_state_parse(text, &a.seen))
            return web_problem(c, 400, "invalid-argument", "seen '%s': a task state", text);
        seen = 1;
    }
    end = time(NULL) + a.timeout;
    memset(&r, 0, sizeof(r));
    if (!seen) {
        /* The state it is in now is the first to leave. */
        if (web_rpc_call(cfg, who, "TASK_STATUS", TASK_STATUS, PROTO_XDR(xdr_ip_task_id), &id,
                         PROTO_XDR(xdr_ip_task_info_res), &r, 1, &why))
            return web_call_failed(c, why);
        if (r.status != IP_OK || proto_task_final(r.ip_task_info_res_u.info.state))
            goto done;
        a.seen = r.ip_task_info_res_u.info.state;
        xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
        memset(&r, 0, sizeof(r));
    }
    for (;;) {
        time_t now = time(NULL);
        a.timeout = end > now ? (u_int)(end - now) : 1;
        if (web_rpc_call(cfg, who, "TASK_WAIT", TASK_WAIT, PROTO_XDR(xdr_ip_task_wait_args), &a,
                         PROTO_XDR(xdr_ip_task_info_res), &r, 1, &why))
            return web_call_failed(c, why);
        if (seen || r.status != IP_OK || proto_task_final(r.ip_task_info_res_u.info.state) ||
            time(NULL) >= end)
            break;
        a.seen = r.ip_task_info_res_u.info.state;
        xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
        memset(&r, 0, sizeof(r));
    }
done:
    http = send_info(c, &r);
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
    return http;
}

/* TASK_RESULT's chunks, for web_call. */
typedef struct result_call {
    ip_task_id id;
    char *data;
    uint64_t len;
    ip_task_chunk facts;
    int outcome;                /* PROTO_FETCH_* */
    ip_status st;
    char why[IP_MAX_MESSAGE + 64];
} result_call;

static enum clnt_stat
call_result(CLIENT *clnt, void *ctx)
{
    result_call *k = ctx;
    struct rpc_err e;

    free(k->data);
    k->data = NULL;
    k->outcome = proto_fetch_result(clnt, k->id, &k->data, &k->len, &k->facts, NULL, NULL,
                                    &k->st, k->why, sizeof(k->why));
    if (k->outcome != PROTO_FETCH_RPC)
        return RPC_SUCCESS;
    clnt_geterr(clnt, &e);
    return e.re_status == RPC_SUCCESS ? RPC_CANTRECV : e.re_status;
}

static int
task_result(struct mg_connection *c, const web_config *cfg, const char *who, ip_task_id id)
{
    result_call k;
    char headers[160], *why;
    int http;

    memset(&k, 0, sizeof(k));
    k.id = id;
    if (web_call(cfg, who, "TASK_RESULT", call_result, &k, 1, &why))
        return web_call_failed(c, why);
    if (k.outcome == PROTO_FETCH_REFUSED)
        http = web_refused(c, k.st, k.why);
    else if (k.outcome != PROTO_FETCH_OK)
        http = web_problem(c, 502, "gateway", "imgprocd: %s", k.why);
    else {
        /* What the image is, for a caller that wants to know without decoding it. */
        snprintf(headers, sizeof(headers), "X-Image-Width: %u\r\nX-Image-Height: %u\r\n"
                 "X-Image-Bands: %u\r\n", k.facts.width, k.facts.height, k.facts.bands);
        http = web_send(c, 200, proto_format_mime(k.facts.format), headers, k.data,
                        (size_t)k.len);
    }
    free(k.data);
    return http;
}

/* POST /v1/tasks/ID/cancel, DELETE /v1/tasks/ID: the state now, or the state it was in. */
static int
task_change(struct mg_connection *c, const web_config *cfg, const char *who, ip_task_id id,
            rpcproc_t proc, const char *what)
{
    ip_task_res r;
    json_out out;
    char *why;
    int http;

    memset(&r, 0, sizeof(r));
    /* Both may be repeated: a second cancel or delete is refused, not harmful. */
    if (web_rpc_call(cfg, who, what, proc, PROTO_XDR(xdr_ip_task_id), &id,
                     PROTO_XDR(xdr_ip_task_res), &r, 1, &why))
        return web_call_failed(c, why);
    if (r.status != IP_OK)
        http = web_refused(c, r.status, r.ip_task_res_u.message);
    else if (json_open(&out) < 0)
        http = web_problem(c, 500, "internal-error", "out of memory");
    else {
        fprintf(out.f, "{\"id\": %" PRIu64 ", \"%s\": \"%s\"}\n", (uint64_t)id,
                proc == TASK_DELETE ? "deleted_in_state" : "state",
                proto_task_state_name(r.ip_task_res_u.state));
        http = json_send(c, &out, 200, NULL);
    }
    xdr_free((xdrproc_t)xdr_ip_task_res, (char *)&r);
    return http;
}

/* /v1/tasks */
static int
on_tasks(struct mg_connection *c, void *data)
{
    const char *m = mg_get_request_info(c)->request_method;

    if (strcmp(m, "POST") == 0)
        return tasks_create(c, data);
    if (strcmp(m, "GET") == 0)
        return tasks_list(c, data);
    return web_problem(c, 405, "method-not-allowed", "/v1/tasks takes GET (the list) or POST "
                       "(new tasks)");
}

/* /v1/tasks/ID[/wait|/result|/cancel] */
static int
on_task(struct mg_connection *c, void *data)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *m = ri->request_method, *p = ri->local_uri + strlen("/v1/tasks/");
    unsigned long long id;
    web_caller who;
    char action[16] = "", *end;

    id = strtoull(p, &end, 10);
    if (*p < '1' || *p > '9' || (*end && *end != '/') ||
        (*end == '/' && sscanf(end, "/%15[a-z]", action) != 1) ||
        (*end == '/' && strlen(end) != strlen(action) + 1))
        return web_problem(c, 404, "not-found", "no such resource: %s (tasks are "
                           "/v1/tasks/ID[/wait|/result|/cancel])", ri->local_uri);
    /* A caller without a session owns no task: imgprocd answers for a fresh one. */
    if (web_session(c, 1, &who) == -2)
        return web_bad_token(c);
    if (!*action && strcmp(m, "GET") == 0)
        return task_status(c, data, who.who, id);
    if (!*action && strcmp(m, "DELETE") == 0)
        return task_change(c, data, who.who, id, TASK_DELETE, "TASK_DELETE");
    if (strcmp(action, "wait") == 0 && strcmp(m, "GET") == 0)
        return task_wait(c, data, who.who, id);
    if (strcmp(action, "result") == 0 && strcmp(m, "GET") == 0)
        return task_result(c, data, who.who, id);
    if (strcmp(action, "cancel") == 0 && strcmp(m, "POST") == 0)
        return task_change(c, data, who.who, id, TASK_CANCEL, "TASK_CANCEL");
    if (!*action || !strcmp(action, "wait") || !strcmp(action, "result") ||
        !strcmp(action, "cancel"))
        return web_problem(c, 405, "method-not-allowed", "%s %s: not a method it takes", m,
                           ri->local_uri);
    return web_problem(c, 404, "not-found", "no such resource: %s", ri->local_uri);
}

void
web_tasks_routes(struct mg_context *ctx, const web_config *cfg)
{
    mg_set_request_handler(ctx, "/v1/tasks$", on_tasks, (void *)cfg);
    mg_set_request_handler(ctx, "/v1/tasks/**", on_task, (void *)cfg);
}
