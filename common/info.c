/* info.c - SERVER_INFO from any imgprocd, older ones included; a task as JSON. */
#include <stdio.h>
#include <string.h>

#include "proto.h"

/*
 * Decodes SERVER_INFO's result when the server may predate fields appended
 * to it (imgproc.x, ip_server_info_all): the record then ends before them,
 * decoding them fails at once, and they are left zero.  Encoding and
 * freeing are the generated routine's.
 */
static bool_t
xdr_server_info_res_any(XDR *x, ip_server_info_res *r)
{
    ip_server_info_all *all = &r->ip_server_info_res_u.info;

    if (x->x_op != XDR_DECODE)
        return xdr_ip_server_info_res(x, r);
    if (!xdr_ip_status(x, &r->status))
        return FALSE;
    if (r->status != IP_OK)
        return xdr_string(x, &r->ip_server_info_res_u.message, IP_MAX_MESSAGE);
    if (!xdr_ip_server_info(x, &all->info))
        return FALSE;
    if (!xdr_ip_guard_limits(x, &all->guard)) {
        memset(&all->guard, 0, sizeof(all->guard));     /* an older server */
        return TRUE;
    }
    if (!xdr_string(x, &all->state_dir, IP_MAX_PATH)) {
        all->state_dir = NULL;                          /* an older server */
        return TRUE;
    }
    if (!xdr_string(x, &all->caller, IP_MAX_TEXT)) {
        all->caller = NULL;                             /* an older server */
        return TRUE;
    }
    if (!xdr_string(x, &all->store, IP_MAX_TEXT))
        all->store = NULL;                              /* an older server */
    return TRUE;
}

enum clnt_stat
proto_server_info(CLIENT *c, ip_server_info_res *res, struct timeval timeout)
{
    memset(res, 0, sizeof(*res));
    return clnt_call(c, SERVER_INFO, PROTO_XDR(xdr_void), NULL,
                     PROTO_XDR(xdr_server_info_res_any), (caddr_t)res, timeout);
}

static void
json_names(FILE *f, const char *key, ip_name *names, u_int n)
{
    fprintf(f, "  \"%s\": [", key);
    for (u_int i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        proto_json_string(f, names[i]);
    }
    fprintf(f, "],\n");
}

void
proto_info_json(FILE *f, const ip_server_info *si, const ip_guard_limits *g,
                const char *state_dir, const char *caller, const char *store)
{
    fprintf(f, "{\n  \"server_version\": ");
    proto_json_string(f, si->server_version);
    fprintf(f, ",\n  \"vips_version\": ");
    proto_json_string(f, si->vips_version);
    fprintf(f, ",\n  \"operations\": [\n");
    for (u_int i = 0; i < si->ops.ops_len; i++) {
        const ip_op_desc *d = &si->ops.ops_val[i];
        fprintf(f, "    {\"op\": %d, \"name\": ", (int)d->op);
        proto_json_string(f, d->name);
        fprintf(f, ", \"syntax\": ");
        proto_json_string(f, d->doc);
        fprintf(f, ", \"params\": [");
        for (u_int j = 0; j < d->params.params_len; j++) {
            const ip_param_desc *p = &d->params.params_val[j];
            fprintf(f, "%s{\"name\": ", j ? ", " : "");
            proto_json_string(f, p->name);
            fprintf(f, ", \"type\": ");
            proto_json_string(f, p->type);
            fprintf(f, ", \"min\": %.17g, \"max\": %.17g, \"doc\": ", p->min, p->max);
            proto_json_string(f, p->doc);
            fprintf(f, "}");
        }
        fprintf(f, "]}%s\n", i + 1 < si->ops.ops_len ? "," : "");
    }
    fprintf(f, "  ],\n");
    json_names(f, "input_formats", si->input_formats.input_formats_val,
               si->input_formats.input_formats_len);
    json_names(f, "output_formats", si->output_formats.output_formats_val,
               si->output_formats.output_formats_len);
    fprintf(f, "  \"limits\": {\"max_request_bytes\": %llu, \"max_pixels\": %llu, "
            "\"max_steps\": %u, \"max_connections\": %u, \"max_upload_bytes\": %llu, "
            "\"workers\": %u, \"max_queued\": %u, \"max_tasks\": %u, \"result_ttl\": %u},\n",
            (unsigned long long)si->limits.max_request_bytes,
            (unsigned long long)si->limits.max_pixels, si->limits.max_steps,
            si->limits.max_connections, (unsigned long long)si->limits.max_upload_bytes,
            si->limits.workers, si->limits.max_queued, si->limits.max_tasks,
            si->limits.result_ttl);
    if (g->max_inflight_bytes == 0)     /* a server older than ip_guard_limits */
        fprintf(f, "  \"guard\": null,\n");
    else
        fprintf(f, "  \"guard\": {\"max_connections_per_address\": %u, \"min_receive_rate\": %u, "
                "\"max_inflight_bytes\": %llu, \"max_request_seconds\": %u, "
                "\"max_task_seconds\": %u, \"max_blur_work\": %u, \"inflight_bytes\": %llu},\n",
                g->max_per_address, g->min_receive_rate,
                (unsigned long long)g->max_inflight_bytes, g->max_request_seconds,
                g->max_task_seconds, g->max_blur_work, (unsigned long long)g->inflight_bytes);
    fprintf(f, "  \"state_dir\": ");
    if (state_dir && *state_dir)
        proto_json_string(f, state_dir);
    else
        fprintf(f, "null");
    if (caller) {
        fprintf(f, ",\n  \"caller\": ");
        proto_json_string(f, caller);
    }
    fprintf(f, ",\n  \"store\": ");
    if (store && *store)
        proto_json_string(f, store);
    else
        fprintf(f, "null");
    fprintf(f, ",\n  \"load\": {\"connections\": %u, \"calls_in_progress\": %u, "
            "\"calls_served\": %llu, \"tasks_queued\": %u, \"tasks_running\": %u}\n}\n",
            si->load.connections, si->load.calls_in_progress,
            (unsigned long long)si->load.calls_served, si->load.tasks_queued,
            si->load.tasks_running);
}

/* A time in ms since the epoch, or null when it has not happened. */
static void
json_time(FILE *f, const char *name, uint64_t ms)
{
    if (ms)
        fprintf(f, ", \"%s\": %llu", name, (unsigned long long)ms);
    else
        fprintf(f, ", \"%s\": null", name);
}

/* A string field, or null when it is empty (nothing to say). */
static void
json_text(FILE *f, const char *name, const char *text)
{
    fprintf(f, ", \"%s\": ", name);
    if (text && *text)
        proto_json_string(f, text);
    else
        fprintf(f, "null");
}

/*
 * A task as a JSON object, as `imgproc task status --json` and the web
 * gateway show it.  ok: 1 or 0 adds "ok" (the answer to a call about
 * it: a wait that ended otherwise than asked is not ok), -1 leaves it out (a
 * list).  why, when not NULL, is the error rather than the task's own.
 */
void
proto_task_json(FILE *f, const ip_task_info *i, int ok, const char *why)
{
    fprintf(f, "{\"id\": %llu", (unsigned long long)i->id);
    if (ok >= 0)
        fprintf(f, ", \"ok\": %s", ok ? "true" : "false");
    fprintf(f, ", \"state\": \"%s\", \"progress\": %u", proto_task_state_name(i->state),
           i->progress);
    json_time(f, "created", i->created);
    json_time(f, "started", i->started);
    json_time(f, "finished", i->finished);
    fprintf(f, ", \"size\": %llu, \"received\": %llu", (unsigned long long)i->size,
           (unsigned long long)i->received);
    json_text(f, "sha256", i->sha256);
    json_text(f, "steps", i->steps);
    json_text(f, "token", i->token);
    json_text(f, "owner", i->owner);
    if (i->state == IP_TASK_DONE)
        fprintf(f, ", \"result_size\": %llu, \"result_format\": \"%s\", \"width\": %u, "
               "\"height\": %u, \"bands\": %u", (unsigned long long)i->result_size,
               proto_format_name(i->result_format), i->width, i->height, i->bands);
    else
        fprintf(f, ", \"result_size\": null, \"result_format\": null, \"width\": null, "
               "\"height\": null, \"bands\": null");
    json_text(f, "error_status", i->error_status == IP_OK ? NULL
                              : proto_status_name(i->error_status));
    json_text(f, "error", why ? why : i->error);
    fprintf(f, "}");
}
