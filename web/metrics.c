/*
 * metrics.c - GET /metrics in Prometheus's text format (0.0.4): the
 * gateway's own requests, errors and latency by route, and imgprocd's
 * counters from its STATS procedure.  The routes are a fixed set (the
 * OpenAPI document's paths), so a caller cannot grow the label space.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>

#include "proto.h"
#include "web.h"

/* The routes counted apart (indexes by the order of routes[]); "other" catches the rest. */
enum { R_TASK = 3, R_WAIT, R_RESULT, R_CANCEL, R_PAGE = 10, R_OTHER = 12, NROUTES };
static const char *const routes[NROUTES] = {
    "/v1/info", "/v1/process", "/v1/tasks", [R_TASK] = "/v1/tasks/{id}",
    [R_WAIT] = "/v1/tasks/{id}/wait", [R_RESULT] = "/v1/tasks/{id}/result",
    [R_CANCEL] = "/v1/tasks/{id}/cancel", "/v1/events", "/v1/openapi.json", "/RPC2",
    [R_PAGE] = "page", "/metrics", [R_OTHER] = "other",
};

/* Latency buckets, in seconds (a long poll may take a minute). */
static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* One route's counters (atomic). */
static struct route_stats {
    unsigned long long requests[6];         /* by status class: 1xx..5xx, [0] unused */
    unsigned long long errors;              /* answered 400 or more */
    unsigned long long le[NBUCKETS];        /* requests that took at most buckets[i] */
    unsigned long long micros;              /* time spent on them */
} stats[NROUTES];

static int verbose;             /* -v: a line per request on stderr */

/* This thread's request: when it began, the status it was answered with. */
static __thread struct timespec began;
static __thread int answered;

void
web_metrics_answered(int http)
{
    answered = http;
}

static size_t
route_of(const char *uri)
{
    static const char *const page[] = { "/", "/app.js", "/style.css", "/icon.svg" };
    const char *rest;
    char *end;

    for (size_t i = 0; i < sizeof(page) / sizeof(page[0]); i++)
        if (strcmp(uri, page[i]) == 0)
            return R_PAGE;
    if (strncmp(uri, "/v1/tasks/", 10) == 0) {
        strtoull(uri + 10, &end, 10);
        if (end == uri + 10)
            return R_OTHER;
        rest = end;
        if (!*rest)
            return R_TASK;
        if (strcmp(rest, "/wait") == 0)
            return R_WAIT;
        if (strcmp(rest, "/result") == 0)
            return R_RESULT;
        if (strcmp(rest, "/cancel") == 0)
            return R_CANCEL;
        return R_OTHER;
    }
    for (size_t i = 0; i < R_OTHER; i++)
        if (i != R_PAGE && strcmp(uri, routes[i]) == 0)
            return i;
    return R_OTHER;
}

int
web_metrics_begin(struct mg_connection *c)
{
    (void)c;
    clock_gettime(CLOCK_MONOTONIC, &began);
    answered = 0;
    return 0;                   /* civetweb goes on to the handler */
}

void
web_metrics_end(const struct mg_connection *c, int status)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    struct route_stats *r = &stats[route_of(ri->local_uri ? ri->local_uri : "")];
    struct timespec now;
    double s;

    clock_gettime(CLOCK_MONOTONIC, &now);
    s = (double)(now.tv_sec - began.tv_sec) + (now.tv_nsec - began.tv_nsec) / 1e9;
    if (answered)
        status = answered;      /* what was sent, whatever the handler returned */
    if (status < 100 || status > 599)
        status = 500;
    __atomic_add_fetch(&r->requests[status / 100], 1, __ATOMIC_RELAXED);
    if (status >= 400)
        __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < NBUCKETS; i++)
        if (s <= buckets[i])
            __atomic_add_fetch(&r->le[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->micros, (unsigned long long)(s * 1e6), __ATOMIC_RELAXED);
    if (verbose)
        fprintf(stderr, "imgproc-web: %s %s %s %d %.1fms\n", ri->remote_addr,
                ri->request_method, ri->local_uri ? ri->local_uri : "", status, s * 1e3);
}

static unsigned long long
load(const unsigned long long *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* The gateway's own: requests by route and class, errors, latency. */
static void
gateway_metrics(FILE *f)
{
    fprintf(f, "# HELP imgproc_web_requests_total HTTP requests answered, by route and "
               "status class.\n# TYPE imgproc_web_requests_total counter\n");
    for (size_t i = 0; i < NROUTES; i++)
        for (int k = 1; k <= 5; k++)
            fprintf(f, "imgproc_web_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                    routes[i], k, load(&stats[i].requests[k]));
    fprintf(f, "# HELP imgproc_web_errors_total HTTP requests answered with 400 or more.\n"
               "# TYPE imgproc_web_errors_total counter\n");
    for (size_t i = 0; i < NROUTES; i++)
        fprintf(f, "imgproc_web_errors_total{route=\"%s\"} %llu\n", routes[i],
                load(&stats[i].errors));
    fprintf(f, "# HELP imgproc_web_request_duration_seconds Time from a request's start to "
               "its answer.\n# TYPE imgproc_web_request_duration_seconds histogram\n");
    for (size_t i = 0; i < NROUTES; i++) {
        unsigned long long n = 0;
        for (int k = 1; k <= 5; k++)
            n += load(&stats[i].requests[k]);
        for (size_t b = 0; b < NBUCKETS; b++)
            fprintf(f, "imgproc_web_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                    "%llu\n", routes[i], buckets[b], load(&stats[i].le[b]));
        fprintf(f, "imgproc_web_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                "imgproc_web_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                "imgproc_web_request_duration_seconds_count{route=\"%s\"} %llu\n", routes[i], n,
                routes[i], load(&stats[i].micros) / 1e6, routes[i], n);
    }
}

/* One counter or gauge per procedure, from STATS. */
static void
per_procedure(FILE *f, const ip_stats *st, const char *name, const char *type,
              const char *help, size_t offset, double scale)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (u_int i = 0; i < st->procs.procs_len; i++) {
        const ip_proc_stats *p = &st->procs.procs_val[i];
        uint64_t v = *(const uint64_t *)(const void *)((const char *)p + offset);
        if (scale == 1)
            fprintf(f, "%s{procedure=\"%s\"} %" PRIu64 "\n", name, p->name, v);
        else
            fprintf(f, "%s{procedure=\"%s\"} %.6f\n", name, p->name, v * scale);
    }
}

/* imgprocd's own, from STATS. */
static void
service_metrics(FILE *f, const ip_stats *st)
{
    per_procedure(f, st, "imgproc_calls_total", "counter", "Calls imgprocd received, by "
                  "procedure.", offsetof(ip_proc_stats, calls), 1);
    per_procedure(f, st, "imgproc_call_errors_total", "counter", "Calls answered otherwise "
                  "than OK, or not at all.", offsetof(ip_proc_stats, errors), 1);
    per_procedure(f, st, "imgproc_image_bytes_received_total", "counter", "Image bytes the "
                  "calls carried in.", offsetof(ip_proc_stats, bytes_in), 1);
    per_procedure(f, st, "imgproc_image_bytes_sent_total", "counter", "Image bytes the "
                  "answers carried out.", offsetof(ip_proc_stats, bytes_out), 1);
    per_procedure(f, st, "imgproc_call_seconds_total", "counter", "Time imgprocd spent on "
                  "the calls.", offsetof(ip_proc_stats, micros), 1e-6);
    fprintf(f, "# HELP imgproc_tasks Tasks imgprocd keeps, by state (queued: the queue's "
               "depth).\n# TYPE imgproc_tasks gauge\n");
    for (int i = 0; i < IP_TASK_STATES; i++)
        fprintf(f, "imgproc_tasks{state=\"%s\"} %" PRIu64 "\n",
                proto_task_state_name((ip_task_state)i), (uint64_t)st->tasks[i]);
    fprintf(f, "# HELP imgproc_workers Task workers.\n# TYPE imgproc_workers gauge\n"
               "imgproc_workers %u\n"
               "# HELP imgproc_workers_busy Task workers running a task now.\n"
               "# TYPE imgproc_workers_busy gauge\nimgproc_workers_busy %u\n"
               "# HELP imgproc_connections TCP connections open to imgprocd.\n"
               "# TYPE imgproc_connections gauge\nimgproc_connections %u\n"
               "# HELP imgproc_uptime_seconds Time since imgprocd started.\n"
               "# TYPE imgproc_uptime_seconds gauge\nimgproc_uptime_seconds %.3f\n",
            st->workers, st->workers_busy, st->connections, st->uptime_ms / 1e3);
}

/* GET /metrics */
static int
on_metrics(struct mg_connection *c, void *data)
{
    const web_config *cfg = data;
    ip_stats_res r;
    char *body = NULL, *why = NULL;
    size_t len = 0;
    FILE *f;
    int up, http;

    if (strcmp(mg_get_request_info(c)->request_method, "GET") != 0)
        return web_problem(c, 405, "method-not-allowed", "/metrics takes GET");
    memset(&r, 0, sizeof(r));
    up = web_rpc_call(cfg, NULL, "STATS", STATS, PROTO_XDR(xdr_void), NULL,
                      PROTO_XDR(xdr_ip_stats_res), &r, 1, &why) == 0 && r.status == IP_OK;
    if (!(f = open_memstream(&body, &len))) {
        xdr_free((xdrproc_t)xdr_ip_stats_res, (char *)&r);
        free(why);
        return web_problem(c, 500, "internal-error", "out of memory");
    }
    gateway_metrics(f);
    fprintf(f, "# HELP imgproc_up Whether imgprocd answered STATS for this scrape.\n"
               "# TYPE imgproc_up gauge\nimgproc_up %d\n", up);
    if (up)
        service_metrics(f, &r.ip_stats_res_u.stats);
    fclose(f);
    http = web_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, body, len);
    free(body);
    free(why);
    xdr_free((xdrproc_t)xdr_ip_stats_res, (char *)&r);
    return http;
}

void
web_metrics_routes(struct mg_context *ctx, const web_config *cfg)
{
    verbose = cfg->verbose;
    mg_set_request_handler(ctx, "/metrics$", on_metrics, (void *)cfg);
}
