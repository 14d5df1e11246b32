/* cmd_info.c - ping, info, stats and identify: the calls that return facts, not images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "proto.h"

/*
 * Parses only the shared options; prints help text on -h.
 * Returns -1 to go on, or an exit code.
 */
static int
parse_common(cli_opts *o, unsigned cmd, int argc, char **argv, const char *synopsis)
{
    struct option opts[64];
    char shorts[64];
    int c;

    cli_getopt_table(opts, sizeof(opts) / sizeof(opts[0]), shorts, sizeof(shorts));
    while ((c = cli_getopt(argc, argv, shorts, opts, cmd, argv[0])) != -1) {
        int r;
        if (c == '?')
            return EXIT_USAGE;
        if ((r = cli_global_option(o, c, optarg)) < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (c == 'h') {
            printf("usage: %s\n\n", synopsis);
            cli_help_global(stdout);
            return EXIT_OK;
        }
        cli_usage(synopsis);
        return EXIT_USAGE;
    }
    return -1;
}

/* Says why a call failed at the RPC level (not the server's own status). */
static void
rpc_failed(CLIENT *clnt, const char *what)
{
    cli_error("%s failed: %s\n", what, cli_rpc_error(clnt));
}

int
cmd_ping(cli_opts *o, int argc, char **argv)
{
    int rc = parse_common(o, CMD_PING, argc, argv, "imgproc ping [-T tcp|udp]");
    CLIENT *clnt;
    struct timespec t0, t1;
    double ms;

    if (rc >= 0)
        return rc;
    if (optind < argc) {
        cli_error("ping takes no arguments\n");
        return EXIT_USAGE;
    }
    if (!(clnt = cli_connect_or_say(o)))
        return EXIT_RPC;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ip_null_1(NULL, NULL, clnt) != RPC_SUCCESS) {
        rpc_failed(clnt, "ping");
        cli_disconnect(clnt);
        return EXIT_RPC;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (o->json) {
        cli_json_begin();
        printf("{\"ok\": true, \"program\": %lu, \"version\": %d, \"host\": ",
               (unsigned long)o->program, IMGPROC_V1);
        proto_json_string(stdout, o->host);
        printf(", \"transport\": \"%s\", \"ms\": %.3f}\n", proto_transport(clnt), ms);
    } else
        printf("ok: program 0x%lX version %d on %s over %s in %.3f ms\n",
               (unsigned long)o->program, IMGPROC_V1, o->host, proto_transport(clnt), ms);
    cli_disconnect(clnt);
    return EXIT_OK;
}

static void
print_info_text(const ip_server_info_all *all)
{
    const ip_server_info *si = &all->info;
    const ip_guard_limits *g = &all->guard;
    const char *state_dir = all->state_dir;

    printf("imgprocd %s with libvips %s\n\noperations (for --steps):\n",
           si->server_version, si->vips_version);
    for (u_int i = 0; i < si->ops.ops_len; i++) {
        const ip_op_desc *d = &si->ops.ops_val[i];
        printf("  %s\n", d->doc);
        for (u_int j = 0; j < d->params.params_len; j++) {
            const ip_param_desc *p = &d->params.params_val[j];
            printf("      %-10s %-6s %g..%g  %s\n", p->name, p->type, p->min, p->max, p->doc);
        }
    }
    printf("\ninput formats: ");
    for (u_int i = 0; i < si->input_formats.input_formats_len; i++)
        printf("%s%s", i ? " " : "", si->input_formats.input_formats_val[i]);
    printf("\noutput formats: ");
    for (u_int i = 0; i < si->output_formats.output_formats_len; i++)
        printf("%s%s", i ? " " : "", si->output_formats.output_formats_val[i]);
    printf("\nlimits: %llu bytes per image, %llu pixels, %u steps, %u connections\n",
           (unsigned long long)si->limits.max_request_bytes,
           (unsigned long long)si->limits.max_pixels, si->limits.max_steps,
           si->limits.max_connections);
    printf("tasks: %u workers, %u queued at most, %u kept at most, results kept %u s, "
           "uploads up to %llu bytes\n", si->limits.workers, si->limits.max_queued,
           si->limits.max_tasks, si->limits.result_ttl,
           (unsigned long long)si->limits.max_upload_bytes);
    if (g->max_inflight_bytes == 0)     /* a server older than ip_guard_limits */
        printf("per caller: not reported by this server\n");
    else
        printf("per caller: %u connections per address (0: no cap), calls arriving at %u "
               "bytes/s or more,\n  %llu image bytes in flight in all (%llu now); work stops "
               "after %u s (a call), %u s (a task);\n  blur: sigma x megapixels <= %u\n",
               g->max_per_address, g->min_receive_rate,
               (unsigned long long)g->max_inflight_bytes,
               (unsigned long long)g->inflight_bytes, g->max_request_seconds,
               g->max_task_seconds, g->max_blur_work);
    if (state_dir && *state_dir)
        printf("state: %s (%s)\n", state_dir, all->store && strncmp(all->store, "PostgreSQL", 10) == 0
               ? "temporary files: the tasks are in the database" : "tasks.db, in/, out/");
    else
        printf("state: not told (a server tells only callers on its own machine)\n");
    if (all->caller && *all->caller)
        printf("you are: %s\n", all->caller);
    if (all->store && *all->store)
        printf("tasks live in: %s\n", all->store);
    printf("load: %u connections, %u calls in progress, %llu served, %u tasks queued, "
           "%u running\n", si->load.connections, si->load.calls_in_progress,
           (unsigned long long)si->load.calls_served, si->load.tasks_queued,
           si->load.tasks_running);
}

int
cmd_info(cli_opts *o, int argc, char **argv)
{
    int rc = parse_common(o, CMD_INFO, argc, argv, "imgproc info");
    ip_server_info_res res;
    CLIENT *clnt;

    if (rc >= 0)
        return rc;
    if (optind < argc) {
        cli_error("info takes no arguments\n");
        return EXIT_USAGE;
    }
    if (!(clnt = cli_connect_or_say(o)))
        return EXIT_RPC;
    memset(&res, 0, sizeof(res));
    if (proto_server_info(clnt, &res, (struct timeval){ 25, 0 }) != RPC_SUCCESS) {
        rpc_failed(clnt, "info");
        cli_disconnect(clnt);
        return EXIT_RPC;
    }
    rc = EXIT_OK;
    if (res.status != IP_OK) {
        cli_error("info: %s: %s\n", proto_status_name(res.status),
                  res.ip_server_info_res_u.message);
        cli_error_status(res.status);
        rc = EXIT_FAILED;
    } else if (o->json) {
        cli_json_begin();
        proto_info_json(stdout, &res.ip_server_info_res_u.info.info,
                        &res.ip_server_info_res_u.info.guard,
                        res.ip_server_info_res_u.info.state_dir,
                        res.ip_server_info_res_u.info.caller ?
                        res.ip_server_info_res_u.info.caller : "",
                        res.ip_server_info_res_u.info.store);
    } else
        print_info_text(&res.ip_server_info_res_u.info);
    xdr_free((xdrproc_t)xdr_ip_server_info_res, (char *)&res);
    cli_disconnect(clnt);
    return rc;
}

static void
print_stats_json(const ip_stats *st)
{
    printf("{\"uptime_ms\": %llu, \"connections\": %u, \"calls_in_progress\": %u, "
           "\"workers\": %u, \"workers_busy\": %u, \"tasks\": {",
           (unsigned long long)st->uptime_ms, st->connections, st->calls_in_progress,
           st->workers, st->workers_busy);
    for (int i = 0; i < IP_TASK_STATES; i++)
        printf("%s\"%s\": %llu", i ? ", " : "", proto_task_state_name((ip_task_state)i),
               (unsigned long long)st->tasks[i]);
    printf("}, \"procedures\": [");
    for (u_int i = 0; i < st->procs.procs_len; i++) {
        const ip_proc_stats *p = &st->procs.procs_val[i];
        printf("%s{\"proc\": %u, \"name\": ", i ? ", " : "", p->proc);
        proto_json_string(stdout, p->name);
        printf(", \"calls\": %llu, \"errors\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu, "
               "\"micros\": %llu}", (unsigned long long)p->calls, (unsigned long long)p->errors,
               (unsigned long long)p->bytes_in, (unsigned long long)p->bytes_out,
               (unsigned long long)p->micros);
    }
    printf("]}\n");
}

static void
print_stats_text(const ip_stats *st)
{
    unsigned long long up = st->uptime_ms / 1000;

    printf("up %llud %02lluh %02llum %02llus; %u connection%s, %u call%s in progress; "
           "%u of %u workers busy\n", up / 86400, up / 3600 % 24, up / 60 % 60, up % 60,
           st->connections, st->connections == 1 ? "" : "s", st->calls_in_progress,
           st->calls_in_progress == 1 ? "" : "s", st->workers_busy, st->workers);
    printf("tasks:");
    for (int i = 0; i < IP_TASK_STATES; i++)
        printf(" %s %llu%s", proto_task_state_name((ip_task_state)i),
               (unsigned long long)st->tasks[i], i + 1 < IP_TASK_STATES ? "," : "\n");
    printf("%-14s %10s %8s %12s %12s %9s\n", "procedure", "calls", "errors", "bytes in",
           "bytes out", "mean ms");
    for (u_int i = 0; i < st->procs.procs_len; i++) {
        const ip_proc_stats *p = &st->procs.procs_val[i];
        printf("%-14s %10llu %8llu %12llu %12llu %9.1f\n", p->name, (unsigned long long)p->calls,
               (unsigned long long)p->errors, (unsigned long long)p->bytes_in,
               (unsigned long long)p->bytes_out,
               p->calls ? p->micros / 1000.0 / (double)p->calls : 0.0);
    }
}

int
cmd_stats(cli_opts *o, int argc, char **argv)
{
    int rc = parse_common(o, CMD_STATS, argc, argv, "imgproc stats [--json]");
    struct timeval tv = { 25, 0 };
    ip_stats_res res;
    CLIENT *clnt;

    if (rc >= 0)
        return rc;
    if (optind < argc) {
        cli_error("stats takes no arguments\n");
        return EXIT_USAGE;
    }
    if (!(clnt = cli_connect_or_say(o)))
        return EXIT_RPC;
    memset(&res, 0, sizeof(res));
    if (clnt_call(clnt, STATS, PROTO_XDR(xdr_void), NULL, PROTO_XDR(xdr_ip_stats_res),
                  (caddr_t)&res, tv) != RPC_SUCCESS) {
        /* An imgprocd from before STATS answers PROC_UNAVAIL. */
        rpc_failed(clnt, "stats");
        cli_disconnect(clnt);
        return EXIT_RPC;
    }
    rc = EXIT_OK;
    if (res.status != IP_OK) {
        cli_error("stats: %s: %s\n", proto_status_name(res.status), res.ip_stats_res_u.message);
        cli_error_status(res.status);
        rc = EXIT_FAILED;
    } else if (o->json) {
        cli_json_begin();
        print_stats_json(&res.ip_stats_res_u.stats);
    } else
        print_stats_text(&res.ip_stats_res_u.stats);
    xdr_free((xdrproc_t)xdr_ip_stats_res, (char *)&res);
    cli_disconnect(clnt);
    return rc;
}

static void
print_identify(const cli_opts *o, const char *path, const ip_image_info *in)
{
    if (o->json) {
        printf("{\"file\": ");
        proto_json_string(stdout, path);
        printf(", \"ok\": true, \"width\": %u, \"height\": %u, \"bands\": %u, \"format\": ",
               in->width, in->height, in->bands);
        proto_json_string(stdout, in->format);
        printf(", \"interpretation\": ");
        proto_json_string(stdout, in->interpretation);
        printf(", \"band_format\": ");
        proto_json_string(stdout, in->band_format);
        printf(", \"alpha\": %s, \"orientation\": %d, \"pages\": %u, \"size\": %llu}",
               in->has_alpha ? "true" : "false", in->orientation, in->pages,
               (unsigned long long)in->size);
        return;
    }
    printf("%s: %s %ux%u, %u band%s, %s %s, alpha %s, orientation %d, %u page%s, %llu bytes\n",
           path, in->format, in->width, in->height, in->bands, in->bands == 1 ? "" : "s",
           in->interpretation, in->band_format, in->has_alpha ? "yes" : "no",
           in->orientation, in->pages, in->pages == 1 ? "" : "s",
           (unsigned long long)in->size);
}

/* Identifies one file: EXIT_OK, EXIT_FAILED (this file), or EXIT_RPC. */
static int
identify_one(const cli_opts *o, CLIENT *clnt, const char *path, void *ctx)
{
    ip_info_res res;
    ip_image im;
    int rc = EXIT_OK;

    (void)ctx;
    if (cli_read_image(path, &im))
        return EXIT_FAILED;
    memset(&res, 0, sizeof(res));
    if (image_info_1(&im, &res, clnt) != RPC_SUCCESS) {
        cli_error("cannot identify '%s': %s\n", path, cli_rpc_error(clnt));
        free(im.ip_image_val);
        return EXIT_RPC;
    }
    free(im.ip_image_val);
    if (res.status != IP_OK) {
        cli_error("cannot identify '%s': %s: %s\n", path, proto_status_name(res.status),
                  res.ip_info_res_u.message);
        cli_error_status(res.status);
        rc = EXIT_FAILED;
    } else
        print_identify(o, path, &res.ip_info_res_u.info);
    xdr_free((xdrproc_t)xdr_ip_info_res, (char *)&res);
    return rc;
}

int
cmd_identify(cli_opts *o, int argc, char **argv)
{
    int rc = parse_common(o, CMD_IDENTIFY, argc, argv, "imgproc identify FILE...");
    CLIENT *clnt;

    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        cli_error("identify needs at least one FILE\n");
        return EXIT_USAGE;
    }
    if (cli_require_tcp(o, "identify"))
        return EXIT_USAGE;
    /* Without a server, each input fails for that reason (--json lists them). */
    clnt = cli_connect_or_say(o);
    rc = cli_each_input(o, clnt, argv + optind, argc - optind, identify_one, NULL);
    cli_disconnect(clnt);
    return rc;
}
