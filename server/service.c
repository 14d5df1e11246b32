/* service.c - what each procedure does, whatever carried the call: the handlers
 * dispatch.c's table (XDR over ONC RPC) calls, and the watch on a synchronous
 * call's image work. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "service.h"

/* Why a synchronous call's work was stopped. */
enum { STOP_NONE, STOP_TIME, STOP_GONE, STOP_SHUTDOWN };

/* Watches a synchronous call's image work: its time budget, its caller, shutdown. */
typedef struct call_watch {
    srv *s;                     /* the server (settings, stop pipe) */
    double deadline;            /* proto_seconds() by which the work must be done */
    int fd;                     /* the caller's connection, or -1 */
    long long next_look_ms;     /* when to look at the sockets again (atomic) */
    int reason;                 /* STOP_*, once stopped (atomic) */
} call_watch;

/* Is fd readable (or hung up) right now? */
int
srv_fd_ready(int fd, short events)
{
    struct pollfd pf = { fd, events, 0 };

    return fd >= 0 && poll(&pf, 1, 0) > 0 && pf.revents != 0;
}

/*
 * libvips' progress, from its threads: stop past the deadline, when the
 * caller has hung up (nobody would read the reply), or at shutdown.  The
 * sockets are looked at every 50 ms at most.
 */
static int
on_call_progress(void *ctx, int percent)
{
    call_watch *w = ctx;
    double now = proto_seconds();
    long long ms = (long long)(now * 1e3);
    long long next = __atomic_load_n(&w->next_look_ms, __ATOMIC_RELAXED);
    int why = STOP_NONE;

    (void)percent;
    /* Past the deadline the sockets are looked at too, so that the reason
     * given is the first that holds: shutdown (which also shuts the sockets'
     * reading side down), then a caller gone, then time. */
    if (now > w->deadline ||
        (ms >= next && __atomic_compare_exchange_n(&w->next_look_ms, &next, ms + 50, 0,
                                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED))) {
        if (srv_fd_ready(w->s->stop_pipe[0], POLLIN))
            why = STOP_SHUTDOWN;
        else if (srv_fd_ready(w->fd, POLLRDHUP))
            why = STOP_GONE;
        else if (now > w->deadline)
            why = STOP_TIME;
    }
    if (why != STOP_NONE)
        __atomic_store_n(&w->reason, why, __ATOMIC_RELAXED);
    return why != STOP_NONE;
}

static int
on_call_stopped(void *ctx, ip_status *st, char *msg, size_t len)
{
    call_watch *w = ctx;

    switch (__atomic_load_n(&w->reason, __ATOMIC_RELAXED)) {
    case STOP_TIME:
        *st = IP_ETOOBIG;
        snprintf(msg, len, "stopped after %u s: the work exceeds this server's budget for "
                 "a call (--max-request-seconds %u); a task may run for %u s",
                 w->s->cfg.max_request_seconds, w->s->cfg.max_request_seconds,
                 w->s->tcfg.max_task_seconds);
        break;
    case STOP_GONE:
        *st = IP_ESTATE;
        snprintf(msg, len, "stopped: the caller hung up");
        break;
    case STOP_SHUTDOWN:
        *st = IP_EBUSY;
        snprintf(msg, len, "stopped: the server is shutting down; call again later");
        break;
    default:
        return 0;
    }
    return 1;
}

static void
run_pipeline(srv *s, const call_ctx *c, const ip_image *im, const ip_step *steps,
             unsigned n, const ip_output *out, ip_image_res *res, call_log *log)
{
    call_watch w = { s, proto_seconds() + s->cfg.max_request_seconds, c->fd, 0, STOP_NONE };
    ops_watch watch = { on_call_progress, on_call_stopped, &w };

    log->in_bytes = im->ip_image_len;
    memset(res, 0, sizeof(*res));
    if (n > s->cfg.max_steps) {
        res->status = IP_ETOOBIG;
        res->ip_image_res_u.message = proto_strdupf("%u steps; this server runs at most %u",
                                             n, s->cfg.max_steps);
    } else if (n == 0) {
        res->status = IP_EINVAL;
        res->ip_image_res_u.message = proto_strdupf("the pipeline has no steps");
    } else {    /* its size was checked as it was decoded (xdr_guarded) */
        ops_process(&s->limits, im->ip_image_val, im->ip_image_len, steps, n, out, &watch, res);
    }
    log->status = res->status;
    if (res->status == IP_OK)
        log->out_bytes = res->ip_image_res_u.ok.image.ip_image_len;
}

void
service_null(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    (void)s;
    (void)c;
    (void)arg;
    (void)res;
    log->status = IP_OK;
}

/* An operation as SERVER_INFO describes it, from its row in proto_ops. */
static void
fill_op(ip_op_desc *d, const proto_op *op)
{
    char syntax[IP_MAX_TEXT], doc[IP_MAX_TEXT];

    proto_op_syntax(op, syntax, sizeof(syntax));
    d->op = op->op;
    d->name = strdup(op->name);
    d->doc = strdup(syntax);
    d->params.params_len = (u_int)op->nparams;
    d->params.params_val = calloc((size_t)op->nparams + 1, sizeof(ip_param_desc));
    for (int i = 0; i < op->nparams; i++) {
        const proto_param *from = &op->params[i];
        ip_param_desc *p = &d->params.params_val[i];
        p->name = strdup(from->name);
        p->type = strdup(proto_type_name(from->type));
        p->min = from->min;
        p->max = from->max;
        proto_param_doc(from, doc, sizeof(doc));
        p->doc = strdup(doc);
    }
}

/* Copies a NULL-terminated list of names into an XDR array. */
static void
fill_names(const char *const *names, u_int *len, ip_name **val)
{
    u_int n = 0;

    while (names[n] && n < IP_MAX_FORMATS)
        n++;
    *val = calloc(n + 1, sizeof(ip_name));
    for (u_int i = 0; i < n; i++)
        (*val)[i] = strdup(names[i]);
    *len = n;
}

void
service_server_info(srv *s, const call_ctx *c, void *arg, void *resp, call_log *log)
{
    ip_server_info_res *res = resp;
    ip_server_info *info = &res->ip_server_info_res_u.info.info;
    ip_guard_limits *guard = &res->ip_server_info_res_u.info.guard;
    char *where;

    (void)arg;
    memset(res, 0, sizeof(*res));
    res->status = IP_OK;
    info->server_version = strdup(IMGPROC_VERSION);
    info->vips_version = strdup(ops_vips_version());
    info->ops.ops_len = (u_int)proto_nops;
    info->ops.ops_val = calloc(proto_nops, sizeof(ip_op_desc));
    for (size_t i = 0; i < proto_nops; i++)
        fill_op(&info->ops.ops_val[i], &proto_ops[i]);
    fill_names(ops_input_formats(), &info->input_formats.input_formats_len,
               &info->input_formats.input_formats_val);
    fill_names(ops_output_formats(), &info->output_formats.output_formats_len,
               &info->output_formats.output_formats_val);
    info->limits.max_request_bytes = s->cfg.max_request_bytes;
    info->limits.max_pixels = s->cfg.max_pixels;
    info->limits.max_steps = s->cfg.max_steps;
    info->limits.max_connections = s->cfg.max_connections;
    info->limits.max_upload_bytes = s->tcfg.max_upload_bytes;
    info->limits.workers = s->tcfg.workers;
    info->limits.max_queued = s->tcfg.max_queued;
    info->limits.max_tasks = s->tcfg.max_tasks;
    info->limits.result_ttl = s->tcfg.result_ttl;
    guard->max_per_address = s->cfg.max_per_address;
    guard->min_receive_rate = s->cfg.min_receive_rate;
    guard->max_inflight_bytes = s->cfg.max_inflight_bytes;
    guard->max_request_seconds = s->cfg.max_request_seconds;
    guard->max_task_seconds = s->tcfg.max_task_seconds;
    guard->max_blur_work = s->cfg.max_blur_work;
    where = c->local ? realpath(s->tcfg.state_dir, NULL) : NULL;
    res->ip_server_info_res_u.info.state_dir = where ? where : strdup("");
    res->ip_server_info_res_u.info.caller = strdup(c->how ? c->how : "");
    res->ip_server_info_res_u.info.store = tasks_store_text(s->tasks, c->local);
    pthread_mutex_lock(&s->lock);
    guard->inflight_bytes = s->inflight;
    pthread_mutex_unlock(&s->lock);
    tasks_load(s->tasks, &info->load.tasks_queued, &info->load.tasks_running);
    pthread_mutex_lock(&s->lock);
    info->load.connections = s->nconn;
    pthread_mutex_unlock(&s->lock);
    info->load.calls_in_progress = __atomic_load_n(&s->in_progress, __ATOMIC_RELAXED);
    info->load.calls_served = __atomic_load_n(&s->served, __ATOMIC_RELAXED);
    log->status = IP_OK;
}

/* STATS: the counters end_call (dispatch.c) keeps, and the tasks' states now. */
void
service_stats(srv *s, const call_ctx *c, void *arg, void *resp, call_log *log)
{
    ip_stats_res *res = resp;
    ip_stats *st = &res->ip_stats_res_u.stats;
    ip_proc_stats *rows = calloc(IP_MAX_PROCS, sizeof(*rows));
    u_int n = 0;

    (void)c;
    (void)arg;
    if (!rows) {
        res->status = IP_EINTERNAL;
        res->ip_stats_res_u.message = strdup("out of memory");
        log->status = res->status;
        return;
    }
    _Static_assert(IP_TASK_STATES == PROTO_NSTATES, "imgproc.x and proto.h agree on the states");
    res->status = IP_OK;
    for (unsigned proc = 0; proc < IP_MAX_PROCS; proc++) {
        const char *name = dispatch_proc_name(proc);
        const srv_proc_stats *k = &s->stats[proc];
        if (!name)
            continue;
        rows[n].proc = proc;
        rows[n].name = strdup(name);
        rows[n].calls = __atomic_load_n(&k->calls, __ATOMIC_RELAXED);
        rows[n].errors = __atomic_load_n(&k->errors, __ATOMIC_RELAXED);
        rows[n].bytes_in = __atomic_load_n(&k->bytes_in, __ATOMIC_RELAXED);
        rows[n].bytes_out = __atomic_load_n(&k->bytes_out, __ATOMIC_RELAXED);
        rows[n].micros = __atomic_load_n(&k->micros, __ATOMIC_RELAXED);
        n++;
    }
    st->procs.procs_len = n;
    st->procs.procs_val = rows;
    st->uptime_ms = (uint64_t)(srv_now_ms() - s->started_ms);
    tasks_counts(s->tasks, st->tasks, &st->workers, &st->workers_busy);
    pthread_mutex_lock(&s->lock);
    st->connections = s->nconn;
    pthread_mutex_unlock(&s->lock);
    st->calls_in_progress = __atomic_load_n(&s->in_progress, __ATOMIC_RELAXED);
    log->status = IP_OK;
}

void
service_image_info(srv *s, const call_ctx *c, void *arg, void *resp, call_log *log)
{
    (void)c;
    ip_image *im = arg;
    ip_info_res *res = resp;

    log->in_bytes = im->ip_image_len;
    memset(res, 0, sizeof(*res));
    ops_info(&s->limits, im->ip_image_val, im->ip_image_len, res);
    log->status = res->status;
}

void
service_grayscale(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_grayscale_args *a = arg;
    ip_step step = { .op = IP_OP_GRAYSCALE };

    run_pipeline(s, c, &a->image, &step, 1, &a->output, res, log);
}

void
service_resize(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_resize_args *a = arg;
    ip_step step = { .op = IP_OP_RESIZE, .ip_step_u.resize = a->params };

    run_pipeline(s, c, &a->image, &step, 1, &a->output, res, log);
}

void
service_rotate(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_rotate_args *a = arg;
    ip_step step = { .op = IP_OP_ROTATE, .ip_step_u.rotate = a->params };

    run_pipeline(s, c, &a->image, &step, 1, &a->output, res, log);
}

void
service_blur(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_blur_args *a = arg;
    ip_step step = { .op = IP_OP_BLUR, .ip_step_u.sigma = a->sigma };

    run_pipeline(s, c, &a->image, &step, 1, &a->output, res, log);
}

void
service_process(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_process_args *a = arg;

    run_pipeline(s, c, &a->image, a->steps.steps_val, a->steps.steps_len,
                 &a->output, res, log);
}

/* ---- tasks: thin wrappers; tasks.c has the state machine. */

void
service_task_create(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_task_create_args *a = arg;

    if (a->source.kind == IP_SOURCE_INLINE)
        log->in_bytes = a->source.ip_task_source_u.image.ip_image_len;
    tasks_create(s->tasks, c->owner, a, res);
}

void
service_task_upload(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_task_upload_args *a = arg;

    log->in_bytes = a->data.data_len;
    tasks_upload(s->tasks, c->owner, a, res);
}

void
service_task_start(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    (void)log;
    tasks_start(s->tasks, c->owner, *(ip_task_id *)arg, res);
}

/* An admin's calls reach every caller's tasks (tasks.c: a NULL owner). */
#define ANY_IF_ADMIN(c) ((c)->admin ? NULL : (c)->owner)

void
service_task_status(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    (void)log;
    tasks_status(s->tasks, ANY_IF_ADMIN(c), *(ip_task_id *)arg, res);
}

void
service_task_wait(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    (void)log;
    tasks_wait(s->tasks, ANY_IF_ADMIN(c), arg, c->stream, res);
}

void
service_task_result(srv *s, const call_ctx *c, void *arg, void *resp, call_log *log)
{
    ip_task_result_res *res = resp;

    tasks_result(s->tasks, c->owner, arg, res);
    if (res->status == IP_OK)
        log->out_bytes = res->ip_task_result_res_u.chunk.data.data_len;
}

void
service_task_cancel(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    (void)log;
    tasks_cancel(s->tasks, ANY_IF_ADMIN(c), *(ip_task_id *)arg, res);
}

void
service_task_delete(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    (void)log;
    tasks_delete(s->tasks, ANY_IF_ADMIN(c), *(ip_task_id *)arg, res);
}

void
service_task_list(srv *s, const call_ctx *c, void *arg, void *resp, call_log *log)
{
    ip_task_list_res *res = resp;
    ip_task_page *page = &res->ip_task_list_res_u.page;

    (void)log;
    tasks_list(s->tasks, ANY_IF_ADMIN(c), arg, res);
    /* Over UDP a page is what one datagram holds; the caller asks for the rest. */
    while (!c->stream && res->status == IP_OK && page->tasks.tasks_len > 0 &&
           xdr_sizeof((xdrproc_t)xdr_ip_task_list_res, res) > SRV_UDP_RESULT_ROOM) {
        xdr_free((xdrproc_t)xdr_ip_task_info,
                 (char *)&page->tasks.tasks_val[--page->tasks.tasks_len]);
        page->more = TRUE;
    }
}

void
service_task_submit(srv *s, const call_ctx *c, void *arg, void *res, call_log *log)
{
    ip_task_create_args *a = arg;

    (void)res;
    if (a->source.kind == IP_SOURCE_INLINE)
        log->in_bytes = a->source.ip_task_source_u.image.ip_image_len;
    /* Over UDP there is no connection to keep the outcome on: ignored. */
    if (!c->batch) {
        log->status = IP_EINVAL;
        return;
    }
    tasks_batch_add(s->tasks, c->batch, c->owner, a);
}

void
service_task_collect(srv *s, const call_ctx *c, void *arg, void *resp, call_log *log)
{
    ip_batch_res *res = resp;

    (void)arg;
    (void)log;
    if (!c->batch) {
        memset(res, 0, sizeof(*res));
        res->status = IP_EINVAL;
        res->ip_batch_res_u.message = strdup("a batch lives on a TCP connection; "
                                             "TASK_SUBMIT and TASK_COLLECT need TCP");
        return;
    }
    tasks_batch_collect(s->tasks, c->batch, res);
}

void
service_free_image_res(void *res)
{
    ops_free_image_res(res);
}

