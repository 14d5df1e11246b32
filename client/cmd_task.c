/* cmd_task.c - imgproc task ... and imgproc submit: durable background tasks over RPC. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

/* Everything the task commands can be told. */
typedef struct task_opts {
    cli_spec spec;                  /* --steps, -f, -q, --strip */
    const char *token;              /* --token */
    int hold;                       /* --hold */
    int upload;                     /* --upload: chunks whatever the size */
    unsigned states;                /* --state: bits 1 << state */
    unsigned wait_for;              /* --for S: give up waiting after S seconds, 0 = never */
    int has_while;                  /* --while was given */
    ip_task_state while_state;      /* --while STATE: wait as long as the task is in it */
    int wait;                       /* --wait (submit) */
    const char *out;                /* -o */
    int retry_busy;                 /* on a full queue, back off and create again (submit) */
} task_opts;

/* One row per task subcommand. */
typedef struct task_cmd {
    const char *name;               /* as typed */
    const char *synopsis;           /* for usage */
    unsigned cmd;                   /* its bit in the option table (options.c) */
    const char *args;               /* its positional arguments: I a task id, F a file */
    int (*fn)(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs);
} task_cmd;


/* ------------------------------------------------------------ helpers */

static int
rpc_failed(CLIENT *clnt, const char *what)
{
    cli_error("%s: %s\n", what, cli_rpc_error(clnt));
    return EXIT_RPC;
}

static int
refused(const char *what, ip_status st, const char *msg)
{
    cli_error("%s: %s: %s\n", what, proto_status_name(st), msg ? msg : "");
    cli_error_status(st);
    return EXIT_FAILED;
}

static int
parse_id(const char *s, ip_task_id *id)
{
    unsigned long v;

    if (proto_parse_uint(s, (unsigned long)-1, &v) || v == 0) {
        cli_error("invalid task id '%s'\n", s);
        return -1;
    }
    *id = v;
    return 0;
}

static void
print_time(const char *label, uint64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[64];

    if (!ms)
        return;
    localtime_r(&secs, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    printf("  %-9s %s.%03u\n", label, buf, (unsigned)(ms % 1000));
}

static void
print_info(const cli_opts *o, const ip_task_info *i, int ok, const char *why)
{
    if (o->json) {
        cli_json_begin();
        proto_task_json(stdout, i, ok, why);
        printf("\n");
        return;
    }
    printf("task %llu: %s", (unsigned long long)i->id, proto_task_state_name(i->state));
    if (i->state == IP_TASK_RUNNING)
        printf(" %u%%", i->progress);
    printf("\n  steps     %s\n", i->steps);
    printf("  image     %llu bytes", (unsigned long long)i->size);
    if (i->received < i->size)
        printf(", %llu uploaded", (unsigned long long)i->received);
    if (i->sha256[0])
        printf(", sha256 %s", i->sha256);
    printf("\n");
    if (i->token[0])
        printf("  token     %s\n", i->token);
    print_time("created", i->created);
    print_time("started", i->started);
    print_time("finished", i->finished);
    if (i->state == IP_TASK_DONE)
        printf("  result    %s %ux%u, %u band%s, %llu bytes\n",
               proto_format_name(i->result_format), i->width, i->height, i->bands,
               i->bands == 1 ? "" : "s", (unsigned long long)i->result_size);
    if (i->state == IP_TASK_FAILED)
        printf("  error     %s: %s\n", proto_status_name(i->error_status), i->error);
}

/* ------------------------------------------------------------ the calls */

/* Sends the file in for task id (see tio_upload_input), saying what went wrong.  An exit code. */
static int
upload(cli_opts *o, CLIENT *clnt, ip_task_id id, const cli_input *in, const char *name)
{
    char why[512];
    cli_progress bar;
    uint64_t len = in->size;
    int rc;

    cli_progress_start(&bar, o, "uploading", name);
    rc = tio_upload_input(clnt, id, in, cli_progress_tio, &bar, why, sizeof(why));
    cli_progress_end(&bar);

    if (rc != EXIT_OK)
        cli_error("cannot upload '%s' to task %llu: %s\n", name,
                  (unsigned long long)id, why);
    else if (o->verbose)
        cli_note("task %llu: %llu bytes uploaded, %s\n",
                 (unsigned long long)id, (unsigned long long)len, why);
    return rc;
}

/* The inline limit, asked of the server once. */
static uint64_t
inline_limit(CLIENT *clnt)
{
    static uint64_t limit;

    if (!limit)
        limit = tio_inline_limit(clnt);
    return limit;
}

/* Creates a task for the image file path (uploading it when large); its id in *id. */
static int
create(cli_opts *o, CLIENT *clnt, const task_opts *t, const char *path, const char *token,
       ip_task_id *id, ip_task_state *state)
{
    ip_task_create_args a;
    ip_task_create_res r;
    char what[512], why[256];
    char *data = NULL;
    cli_input in;
    int rc;

    snprintf(what, sizeof(what), "cannot create a task for '%s'", path);
    if (cli_input_open(path, &in, why, sizeof(why))) {
        cli_error("cannot read '%s': %s\n", path, why);
        return EXIT_FAILED;
    }
    memset(&a, 0, sizeof(a));
    memset(&r, 0, sizeof(r));
    if (t->upload || in.size > inline_limit(clnt)) {
        /* Declared here; the bytes follow with TASK_UPLOAD, read a chunk at a time. */
        a.source.kind = IP_SOURCE_UPLOAD;
        a.source.ip_task_source_u.size = in.size;
    } else if (cli_input_slurp(&in, (size_t)inline_limit(clnt), &data, why, sizeof(why))) {
        cli_error("cannot read '%s': %s\n", path, why);
        cli_input_close(&in);
        return EXIT_FAILED;
    } else {
        /* Small enough for one call: the image goes inside it. */
        a.source.kind = IP_SOURCE_INLINE;
        a.source.ip_task_source_u.image.ip_image_len = (u_int)in.size;
        a.source.ip_task_source_u.image.ip_image_val = data;
    }
    a.spec = cli_task_spec(&t->spec);
    a.token = (char *)(token ? token : "");
    a.hold = t->hold ? TRUE : FALSE;
    for (unsigned pause_ms = 100, waited = 0;; pause_ms = pause_ms < 2000 ? pause_ms * 2 : 2000) {
        if (task_create_1(&a, &r, clnt) != RPC_SUCCESS) {
            free(data);
            cli_input_close(&in);
            return rpc_failed(clnt, what);
        }
        /* A full queue drains: submit backs off and tries again, within --timeout. */
        if (r.status != IP_EBUSY || !t->retry_busy || waited >= (unsigned)o->timeout * 1000)
            break;
        xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&r);
        memset(&r, 0, sizeof(r));
        if (o->verbose)
            cli_note("the server is busy; trying '%s' again\n", path);
        usleep(pause_ms * 1000);
        waited += pause_ms;
    }
    if (r.status != IP_OK) {
        rc = refused(what, r.status, r.ip_task_create_res_u.message);
        xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&r);
        free(data);
        cli_input_close(&in);
        return rc;
    }
    *id = r.ip_task_create_res_u.created.id;
    *state = r.ip_task_create_res_u.created.state;
    if (o->verbose)
        cli_note("'%s' is task %llu (%s%s)\n", path, (unsigned long long)*id,
                 proto_task_state_name(*state),
                 r.ip_task_create_res_u.created.existing ? ", created earlier" : "");
    xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&r);
    rc = EXIT_OK;
    if (a.source.kind == IP_SOURCE_UPLOAD && !t->upload) {
        rc = upload(o, clnt, *id, &in, path);
        if (rc == EXIT_OK && !t->hold)
            *state = IP_TASK_QUEUED;
    }
    free(data);
    cli_input_close(&in);
    return rc;
}

/*
 * Waits for task id: while it is in state while_state (when has_while),
 * else until it is final.  for_secs > 0 gives up after that long.  The last
 * status goes into out (free with xdr_free).  An exit code: EXIT_OK when
 * the wait ended as asked, EXIT_FAILED on a refusal or when time ran out.
 */
static int
wait_task(cli_opts *o, CLIENT *clnt, ip_task_id id, unsigned for_secs, int has_while,
          ip_task_state while_state, ip_task_info_res *out)
{
    struct timespec t0, now;
    char what[64], name[32];
    cli_progress bar;
    int rc;

    snprintf(what, sizeof(what), "cannot wait for task %llu", (unsigned long long)id);
    snprintf(name, sizeof(name), "task %llu", (unsigned long long)id);
    cli_progress_start(&bar, o, "waiting for", name);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof(*out));
    if (task_status_1(&id, out, clnt) != RPC_SUCCESS)
        return rpc_failed(clnt, what);
    for (;;) {
        ip_task_wait_args a;
        ip_task_state seen;
        unsigned spent;
        if (out->status != IP_OK) {
            rc = refused(what, out->status, out->ip_task_info_res_u.message);
            break;
        }
        seen = out->ip_task_info_res_u.info.state;
        if (o->verbose)
            cli_note("task %llu: %s\n", (unsigned long long)id,
                     proto_task_state_name(seen));
        if (has_while ? seen != while_state : proto_task_final(seen)) {
            rc = EXIT_OK;
            break;
        }
        cli_progress_percent(&bar, out->ip_task_info_res_u.info.progress,
                             proto_task_state_name(seen));
        clock_gettime(CLOCK_MONOTONIC, &now);
        spent = (unsigned)(now.tv_sec - t0.tv_sec);
        if (for_secs) {
            if (spent >= for_secs) {
                cli_error("task %llu is still %s after %u s\n",
                          (unsigned long long)id, proto_task_state_name(seen), for_secs);
                rc = EXIT_FAILED;
                break;
            }
        }
        /* libtirpc blocks every signal for the length of a call (clnt_vc_call
         * holds its fd lock with all signals masked), so a call of a minute
         * would keep Ctrl-C waiting that long: each waits a second at most.
         * That also lets a bar show the task's percent, which does not wake
         * TASK_WAIT. */
        a.id = id;
        a.seen = seen;
        a.timeout = 1;
        xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)out);
        memset(out, 0, sizeof(*out));
        if (task_wait_1(&a, out, clnt) != RPC_SUCCESS) {
            rc = rpc_failed(clnt, what);
            break;
        }
    }
    cli_progress_end(&bar);
    return rc;
}

/* Fetches task id's result, chunk by chunk, into dest ("-" = stdout).  An exit code. */
static int
fetch(cli_opts *o, CLIENT *clnt, ip_task_id id, const char *dest, ip_task_chunk *facts)
{
    char why[512], name[64];
    cli_progress bar;
    int rc, local;

    /* Written as it comes: never more than a chunk of it in memory. */
    snprintf(name, sizeof(name), "the result of task %llu", (unsigned long long)id);
    cli_progress_start(&bar, o, "downloading", name);
    rc = tio_fetch_file(clnt, id, dest, facts, cli_progress_tio, &bar, &local, why,
                        sizeof(why));
    cli_progress_end(&bar);

    if (rc != EXIT_OK && local)
        cli_error("cannot write '%s': %s\n", dest, why);
    else if (rc != EXIT_OK)
        cli_error("cannot fetch the result of task %llu: %s\n",
                  (unsigned long long)id, why);
    else if (o->verbose)
        cli_note("task %llu -> %s (%llu bytes)\n", (unsigned long long)id,
                 strcmp(dest, "-") ? dest : "standard output",
                 (unsigned long long)facts->total);
    return rc;
}

/* The reply of START, CANCEL and DELETE. */
static int
simple(cli_opts *o, CLIENT *clnt, ip_task_id id, const char *verb,
       enum clnt_stat (*call)(ip_task_id *, ip_task_res *, CLIENT *))
{
    ip_task_res r;
    char what[64];

    snprintf(what, sizeof(what), "cannot %s task %llu", verb, (unsigned long long)id);
    memset(&r, 0, sizeof(r));
    if (call(&id, &r, clnt) != RPC_SUCCESS)
        return rpc_failed(clnt, what);
    if (r.status != IP_OK) {
        int rc = refused(what, r.status, r.ip_task_res_u.message);
        xdr_free((xdrproc_t)xdr_ip_task_res, (char *)&r);
        return rc;
    }
    if (o->json) {
        /* A deleted task has no state left: the one it had is "was". */
        cli_json_begin();
        printf("{\"id\": %llu, \"ok\": true, \"%s\": \"%s\"}\n", (unsigned long long)id,
               strcmp(verb, "delete") == 0 ? "was" : "state",
               proto_task_state_name(r.ip_task_res_u.state));
    } else if (o->verbose)
        cli_note("task %llu: %s\n", (unsigned long long)id,
                 proto_task_state_name(r.ip_task_res_u.state));
    return EXIT_OK;
}

/* ------------------------------------------------------------ subcommands */

static int
t_create(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_id id;
    ip_task_state state;
    int rc;

    (void)nargs;
    rc = create(o, clnt, t, args[0], t->token, &id, &state);
    if (rc == EXIT_OK) {
        if (o->json) {
            cli_json_begin();
            printf("{\"file\": ");
            proto_json_string(stdout, args[0]);
            printf(", \"id\": %llu, \"ok\": true, \"state\": \"%s\"}\n",
                   (unsigned long long)id, proto_task_state_name(state));
        } else
            printf("%llu\n", (unsigned long long)id);
    }
    return rc;
}

static int
t_upload(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_id id;
    char why[256];
    cli_input in;
    int rc;

    (void)t;
    (void)nargs;
    if (parse_id(args[0], &id))
        return EXIT_USAGE;
    if (cli_input_open(args[1], &in, why, sizeof(why))) {
        cli_error("cannot read '%s': %s\n", args[1], why);
        return EXIT_FAILED;
    }
    rc = upload(o, clnt, id, &in, args[1]);
    if (rc == EXIT_OK && o->json) {
        cli_json_begin();
        printf("{\"id\": %llu, \"file\": ", (unsigned long long)id);
        proto_json_string(stdout, args[1]);
        printf(", \"ok\": true, \"size\": %llu}\n", (unsigned long long)in.size);
    }
    cli_input_close(&in);
    return rc;
}

static int
t_start(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_id id;

    (void)t;
    (void)nargs;
    return parse_id(args[0], &id) ? EXIT_USAGE : simple(o, clnt, id, "start", task_start_1);
}

static int
t_cancel(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_id id;

    (void)t;
    (void)nargs;
    return parse_id(args[0], &id) ? EXIT_USAGE : simple(o, clnt, id, "cancel", task_cancel_1);
}

static int
t_delete(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_id id;

    (void)t;
    (void)nargs;
    return parse_id(args[0], &id) ? EXIT_USAGE : simple(o, clnt, id, "delete", task_delete_1);
}

static int
t_status(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_info_res r;
    ip_task_id id;
    char what[64];
    int rc = EXIT_OK;

    (void)t;
    (void)nargs;
    if (parse_id(args[0], &id))
        return EXIT_USAGE;
    snprintf(what, sizeof(what), "no status for task %llu", (unsigned long long)id);
    memset(&r, 0, sizeof(r));
    if (task_status_1(&id, &r, clnt) != RPC_SUCCESS)
        return rpc_failed(clnt, what);
    if (r.status != IP_OK)
        rc = refused(what, r.status, r.ip_task_info_res_u.message);
    else
        print_info(o, &r.ip_task_info_res_u.info, 1, NULL);
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
    return rc;
}

static int
t_wait(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_info_res r;
    ip_task_id id;
    int rc;

    (void)nargs;
    if (parse_id(args[0], &id))
        return EXIT_USAGE;
    rc = wait_task(o, clnt, id, t->wait_for, t->has_while, t->while_state, &r);
    if (r.status == IP_OK && rc != EXIT_RPC) {
        const ip_task_info *i = &r.ip_task_info_res_u.info;
        const char *why = NULL;
        /* Without --while, success means DONE. */
        if (rc == EXIT_OK && !t->has_while && i->state != IP_TASK_DONE) {
            rc = EXIT_FAILED;
            if (i->state == IP_TASK_CANCELLED)
                why = "the task was cancelled";
        } else if (rc != EXIT_OK)
            why = cli_last_error();     /* --for ran out */
        print_info(o, i, rc == EXIT_OK, why);
    }
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
    return rc;
}

static int
t_result(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_chunk facts;
    ip_task_id id;
    int rc;

    (void)nargs;
    if (parse_id(args[0], &id))
        return EXIT_USAGE;
    if (o->json && (!t->out || strcmp(t->out, "-") == 0)) {
        cli_error("--json prints its report on standard output: give -o FILE\n");
        return EXIT_USAGE;
    }
    if (!t->out) {
        if (isatty(STDOUT_FILENO)) {
            cli_error("where should the result go? give -o FILE or -o -\n");
            return EXIT_USAGE;
        }
        t->out = "-";
    }
    if (cli_is_dir(t->out)) {
        cli_error("'%s' is a folder, and task result writes one file: give -o FOLDER/NAME\n",
                  t->out);
        return EXIT_USAGE;
    }
    rc = fetch(o, clnt, id, t->out, &facts);
    if (rc == EXIT_OK && o->json) {
        cli_json_begin();
        printf("{\"id\": %llu, \"ok\": true, \"output\": ", (unsigned long long)id);
        proto_json_string(stdout, t->out);
        printf(", \"format\": \"%s\", \"width\": %u, \"height\": %u, \"bands\": %u, "
               "\"size\": %llu}\n", proto_format_name(facts.format), facts.width,
               facts.height, facts.bands, (unsigned long long)facts.total);
    }
    return rc;
}

static int
t_list(cli_opts *o, CLIENT *clnt, task_opts *t, char **args, int nargs)
{
    ip_task_list_args a = { t->states, 0, IP_MAX_LIST };
    int first = 1, more = 1, header = 0, rc = EXIT_OK;

    (void)args;
    (void)nargs;
    if (o->json) {
        cli_json_begin();
        printf("[");
    }
    while (more) {
        ip_task_list_res r;
        memset(&r, 0, sizeof(r));
        if (task_list_1(&a, &r, clnt) != RPC_SUCCESS) {
            rc = rpc_failed(clnt, "cannot list tasks");
            break;
        }
        if (r.status != IP_OK) {
            rc = refused("cannot list tasks", r.status, r.ip_task_list_res_u.message);
            xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
            break;
        }
        /* The header once the server has answered, never above an error. */
        if (!o->json && !header++)
            printf("%-8s %-9s %4s %-19s %s\n", "ID", "STATE", "DONE", "CREATED", "STEPS");
        for (u_int i = 0; i < r.ip_task_list_res_u.page.tasks.tasks_len; i++) {
            const ip_task_info *ti = &r.ip_task_list_res_u.page.tasks.tasks_val[i];
            if (o->json) {
                printf("%s\n  ", first ? "" : ",");
                proto_task_json(stdout, ti, -1, NULL);
            } else {
                time_t secs = (time_t)(ti->created / 1000);
                struct tm tm;
                char when[32];
                localtime_r(&secs, &tm);
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
                printf("%-8llu %-9s %3u%% %-19s %s\n", (unsigned long long)ti->id,
                       proto_task_state_name(ti->state), ti->progress, when, ti->steps);
            }
            first = 0;
            a.after = ti->id;
        }
        more = r.ip_task_list_res_u.page.more;
        xdr_free((xdrproc_t)xdr_ip_task_list_res, (char *)&r);
    }
    /* A list cut short ends with what stopped it, so the document still parses. */
    if (o->json && rc != EXIT_OK) {
        printf("%s\n  {", first ? "" : ",");
        cli_json_failure(stdout, "failed");
        printf("}");
        first = 0;
    }
    if (o->json)
        printf("%s]\n", first ? "" : "\n");
    return rc;
}

static const task_cmd task_cmds[] = {
    { "create", "imgproc task create --steps S [-f F] [-q Q] [--strip] [--hold] [--token T] "
      "[--upload] FILE", CMD_T_CREATE, "F", t_create },
    { "upload", "imgproc task upload ID FILE", CMD_T_UPLOAD, "IF", t_upload },
    { "start", "imgproc task start ID", CMD_T_START, "I", t_start },
    { "status", "imgproc task status ID", CMD_T_STATUS, "I", t_status },
    { "wait", "imgproc task wait ID [--for S] [--while STATE]", CMD_T_WAIT, "I", t_wait },
    { "result", "imgproc task result ID [-o FILE|-]", CMD_T_RESULT, "I", t_result },
    { "cancel", "imgproc task cancel ID", CMD_T_CANCEL, "I", t_cancel },
    { "delete", "imgproc task delete ID", CMD_T_DELETE, "I", t_delete },
    { "list", "imgproc task list [--state created,queued,running,done,failed,cancelled]",
      CMD_T_LIST, "", t_list },
};

static void
task_help(FILE *f)
{
    static const struct { const char *heading; unsigned cmd; } sections[] = {
        { "Create", CMD_T_CREATE },
        { "Wait (until the task is done, failed or cancelled; exit 0 only when done)",
          CMD_T_WAIT },
        { "Result", CMD_T_RESULT },
        { "List", CMD_T_LIST },
    };

    fprintf(f, "usage: imgproc task COMMAND [options] ARGS\n\n"
               "A task is kept on the server's disk and run in the background; its id\n"
               "fetches the result later, even after the server restarts.\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(task_cmds) / sizeof(task_cmds[0]); i++)
        fprintf(f, "  %s\n", task_cmds[i].synopsis);
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        fprintf(f, "\n%s:\n", sections[i].heading);
        cli_help_options(f, sections[i].cmd);
    }
    fprintf(f, "\n");
    cli_help_global(f);
}

/* One task command's --help: its synopsis, its options, the global ones. */
static void
task_cmd_help(const task_cmd *cmd)
{
    printf("usage: %s\n\n", cmd->synopsis);
    if (cli_help_options(NULL, cmd->cmd)) {
        printf("Options:\n");
        cli_help_options(stdout, cmd->cmd);
        printf("\n");
    }
    cli_help_global(stdout);
}

/*
 * Parses options into t for the command whose letters are allowed.  -1 to
 * go on, or an exit code.  Long (about 90 lines): one case per option.
 */
static int
parse(cli_opts *o, task_opts *t, const char *name, unsigned cmd, int argc, char **argv)
{
    struct option opts[64];
    char shorts[64];
    unsigned long v;
    int c;

    cli_getopt_table(opts, sizeof(opts) / sizeof(opts[0]), shorts, sizeof(shorts));
    while ((c = cli_getopt(argc, argv, shorts, opts, cmd, name)) != -1) {
        int r;
        if (c == '?')
            return EXIT_USAGE;
        if ((r = cli_global_option(o, c, optarg)) < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (c == 'h')
            return -2;
        r = cli_spec_option(&t->spec, c, optarg);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        switch (c) {
        case CLI_O_HOLD:
            t->hold = 1;
            break;
        case CLI_O_TOKEN:
            if (strlen(optarg) > IP_MAX_TOKEN) {
                cli_error("a token is at most %d bytes\n", IP_MAX_TOKEN);
                return EXIT_USAGE;
            }
            t->token = optarg;
            break;
        case CLI_O_UPLOAD:
            t->upload = 1;
            break;
        case CLI_O_STATE: {
            char *copy = strdup(optarg), *p = copy, *w;
            while (copy && (w = strsep(&p, ",")) != NULL) {
                ip_task_state s;
                if (proto_task_state_parse(w, &s)) {
                    cli_error("invalid state '%s' (created, queued, running, "
                                    "done, failed, cancelled)\n", w);
                    free(copy);
                    return EXIT_USAGE;
                }
                t->states |= 1u << s;
            }
            free(copy);
            break;
        }
        case CLI_O_FOR:
            if (proto_parse_uint(optarg, 86400 * 365, &v) || v == 0) {
                cli_error("invalid --for '%s'\n", optarg);
                return EXIT_USAGE;
            }
            t->wait_for = (unsigned)v;
            break;
        case CLI_O_WHILE:
            if (proto_task_state_parse(optarg, &t->while_state)) {
                cli_error("invalid state '%s'\n", optarg);
                return EXIT_USAGE;
            }
            t->has_while = 1;
            break;
        case CLI_O_WAIT:
            t->wait = 1;
            break;
        case 'o':
            t->out = optarg;
            break;
        }
    }
    if (cli_takes(cmd, CLI_O_STEPS) && t->spec.nsteps == 0) {
        cli_error("%s needs --steps\n", name);
        return EXIT_USAGE;
    }
    return -1;
}

/*
 * --json's answer when cmd failed before printing one: an object naming
 * what it was asked about (the task's id, the file), and why it failed.
 */
static void
json_failed(const task_cmd *cmd, char **args)
{
    unsigned long v;

    cli_json_begin();
    printf("{");
    for (int i = 0; cmd->args[i]; i++) {
        if (cmd->args[i] == 'I' && !proto_parse_uint(args[i], (unsigned long)-1, &v) && v)
            printf("\"id\": %lu, ", v);
        else if (cmd->args[i] == 'I')
            printf("\"id\": null, ");
        else {
            printf("\"file\": ");
            proto_json_string(stdout, args[i]);
            printf(", ");
        }
    }
    cli_json_failure(stdout, "failed");
    printf("}\n");
}

int
cmd_task(cli_opts *o, int argc, char **argv)
{
    const task_cmd *cmd = NULL;
    char name[32];
    task_opts t;
    CLIENT *clnt;
    int rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        task_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(task_cmds) / sizeof(task_cmds[0]); i++)
        if (strcmp(argv[1], task_cmds[i].name) == 0)
            cmd = &task_cmds[i];
    if (!cmd) {
        cli_error("unknown task command '%s' (see 'imgproc task --help')\n",
                  argv[1]);
        return EXIT_USAGE;
    }
    memset(&t, 0, sizeof(t));
    argc--;
    argv++;
    optind = 0;
    snprintf(name, sizeof(name), "task %s", cmd->name);
    cli_json_command(name);
    rc = parse(o, &t, name, cmd->cmd, argc, argv);
    if (rc == -2) {
        task_cmd_help(cmd);
        return EXIT_OK;
    }
    if (rc >= 0) {
        cli_usage(cmd->synopsis);
        return rc;
    }
    if (argc - optind != (int)strlen(cmd->args)) {
        static const char *const takes[] = { "I", "a task ID", "F", "one FILE",
                                             "IF", "a task ID and a FILE" };
        const char *what = "no arguments";
        for (size_t i = 0; i + 1 < sizeof(takes) / sizeof(takes[0]); i += 2)
            if (strcmp(takes[i], cmd->args) == 0 && *takes[i])
                what = takes[i + 1];
        cli_error("%s takes %s, not %d argument%s\n", name, what, argc - optind,
                  argc - optind == 1 ? "" : "s");
        cli_usage(cmd->synopsis);
        return EXIT_USAGE;
    }
    /* Images, and calls that wait for a worker, are TCP only on the server. */
    {
        static const char *const tcp_only[] = { "create", "upload", "result", "cancel",
                                                "delete" };
        char what[32];
        snprintf(what, sizeof(what), "task %s", cmd->name);
        for (size_t i = 0; i < sizeof(tcp_only) / sizeof(tcp_only[0]); i++)
            if (strcmp(cmd->name, tcp_only[i]) == 0 && cli_require_tcp(o, what))
                return EXIT_USAGE;
    }
    if (!(clnt = cli_connect_or_say(o)))
        return EXIT_RPC;
    rc = cmd->fn(o, clnt, &t, argv + optind, argc - optind);
    cli_disconnect(clnt);
    if (o->json && rc != EXIT_OK && !cli_json_begun())
        json_failed(cmd, argv + optind);
    return rc;
}

/* ------------------------------------------------------------ submit */

/* One input of submit. */
typedef struct submitted {
    ip_task_id id;                  /* its task, 0 when it was not created */
    char *failed;                   /* --json: the object saying why not (malloc'ed) */
} submitted;

/* The JSON object for input path that failed, as text for later (malloc'ed), or NULL. */
static char *
json_file_failure(const cli_opts *o, const char *path)
{
    char *text = NULL;
    size_t len;
    FILE *f;

    if (!o->json || !(f = open_memstream(&text, &len)))
        return o->json ? strdup("{\"ok\": false, \"error\": \"out of memory\"}") : NULL;
    cli_json_file_failed(f, path);
    fclose(f);
    return text;
}

/*
 * Waits for task id (the input path) and writes its result into t->out,
 * named after the input; where it went in *dest (malloc'ed).  An exit code.
 */
static int
finish(cli_opts *o, CLIENT *clnt, const task_opts *t, ip_task_id id, const char *path,
       cli_written *written, char **dest, ip_task_chunk *facts)
{
    const char *earlier;

    ip_task_info_res r;
    int w = wait_task(o, clnt, id, 0, 0, IP_TASK_CREATED, &r);

    if (w == EXIT_OK && r.ip_task_info_res_u.info.state == IP_TASK_DONE) {
        ip_format f = r.ip_task_info_res_u.info.result_format;
        /* The folder is made when the first result is there to go in it, so a
         * pattern that matched nothing leaves no empty folder behind. */
        if (strcmp(t->out, "-") != 0 && !cli_is_dir(t->out) && mkdir(t->out, 0777) < 0 &&
            errno != EEXIST) {
            cli_error("cannot create folder '%s': %m\n", t->out);
            w = EXIT_FAILED;
        } else {
            *dest = cli_output_path(t->out, path, proto_format_ext(f));
            if (!*dest || cli_written_claim(written, *dest, path, &earlier)) {
                /* Names were checked before sending; the server chose another format. */
                if (earlier)
                    cli_error("'%s' (task %llu) would overwrite '%s', the result of '%s': "
                              "not fetched\n", path, (unsigned long long)id, *dest, earlier);
                else
                    cli_error("out of memory\n");
                free(*dest);
                *dest = NULL;
                w = EXIT_FAILED;
            } else
                w = fetch(o, clnt, id, *dest, facts);
        }
    } else if (w == EXIT_OK) {
        const ip_task_info *ti = &r.ip_task_info_res_u.info;
        cli_error("'%s' (task %llu) %s: %s%s%s\n", path, (unsigned long long)id,
                  proto_task_state_name(ti->state),
                  ti->state == IP_TASK_FAILED ? proto_status_name(ti->error_status) : "",
                  ti->state == IP_TASK_FAILED ? ": " : "", ti->error);
        if (ti->state == IP_TASK_FAILED)
            cli_error_status(ti->error_status);
        w = EXIT_FAILED;
    }
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&r);
    return w;
}

/* submit's --help. */
static void
submit_help(void)
{
    printf("usage: imgproc submit --steps S [-f F] [-q Q] [--strip] [--wait] "
           "[-o DIR] FILE...\n\nCreates a task per file (uploading large ones in chunks), "
           "and prints their ids.\nWith --wait or -o it waits for them and writes each "
           "result into DIR\n(default: the current folder) named after its input; -o - writes "
           "one result\nto standard output.  A FILE of - is standard input.\n\nOptions:\n");
    cli_help_options(stdout, CMD_SUBMIT);
    printf("\n");
    cli_help_global(stdout);
}

/*
 * Creates a task for each of the n files (clnt NULL: none, the server is
 * not there); a file that fails keeps its --json object in items[i].failed.
 * EXIT_OK, EXIT_FAILED when some failed, EXIT_RPC once the server is gone.
 */
static int
create_all(cli_opts *o, CLIENT *clnt, const task_opts *t, char **files, int n,
           submitted *items, cli_json_list *tl)
{
    int rc = clnt ? EXIT_OK : EXIT_RPC;

    cli_json_list_from(tl, 0, 0);

    for (int i = 0; i < n; i++) {
        ip_task_state state;
        int r = EXIT_RPC;
        if (rc != EXIT_RPC) {
            cli_error_clear();
            r = create(o, clnt, t, files[i], t->token, &items[i].id, &state);
        }
        if (r != EXIT_OK) {
            items[i].id = 0;
            items[i].failed = json_file_failure(o, files[i]);
            if (r == EXIT_RPC && rc != EXIT_RPC)
                cli_error_clear();  /* the rest: not tried, as the server went away */
            rc = r == EXIT_RPC || rc == EXIT_RPC ? EXIT_RPC : EXIT_FAILED;
            if (items[i].failed)
                cli_json_list_set(tl, (size_t)i, items[i].failed);
        } else if (!t->out && !o->json)
            printf("%llu\n", (unsigned long long)items[i].id);
        else if (o->json) {
            /* Ctrl-C from now on still names the task: it exists. */
            char *text = NULL;
            size_t len;
            FILE *f = open_memstream(&text, &len);
            if (f) {
                fprintf(f, "{\"file\": ");
                proto_json_string(f, files[i]);
                fprintf(f, ", \"id\": %llu, ", (unsigned long long)items[i].id);
                if (t->out)
                    fprintf(f, "\"ok\": false, \"status\": null, \"error\": "
                            "\"interrupted before its result was fetched\"}");
                else
                    fprintf(f, "\"ok\": true}");
                fclose(f);
                cli_json_list_set(tl, (size_t)i, text);
                free(text);
            }
        }
    }
    return rc;
}

/* Says how file i came out (its task, its result when -o), as a line or a --json object. */
static void
report_one(const cli_opts *o, const char *path, const submitted *item, int w, const char *dest,
           const ip_task_chunk *facts)
{
    if (!o->json) {
        if (w == EXIT_OK && dest && !o->verbose && strcmp(dest, "-") != 0)
            printf("%s -> %s\n", path, dest);
        return;
    }
    printf("{\"file\": ");
    proto_json_string(stdout, path);
    printf(", \"id\": %llu, ", (unsigned long long)item->id);
    if (w == EXIT_OK && dest) {
        printf("\"ok\": true, \"output\": ");
        proto_json_string(stdout, dest);
        printf(", \"format\": \"%s\", \"width\": %u, \"height\": %u, \"bands\": %u, "
               "\"size\": %llu", proto_format_name(facts->format), facts->width,
               facts->height, facts->bands, (unsigned long long)facts->total);
    } else if (w == EXIT_OK)
        printf("\"ok\": true");
    else
        cli_json_failure(stdout, "not fetched: the server stopped answering");
    printf("}");
}

/* Waits for each task and fetches its result when -o; reports every file, in order. */
static int
finish_all(cli_opts *o, CLIENT *clnt, const task_opts *t, char **files, int n,
           submitted *items, int rc, cli_json_list *tl)
{
    cli_written written;

    memset(&written, 0, sizeof(written));
    if (o->json) {
        cli_json_begin();
        printf("[");
    }
    for (int i = 0; i < n; i++) {
        ip_task_chunk facts;
        char *dest = NULL;
        int w = EXIT_OK;

        memset(&facts, 0, sizeof(facts));

        if (o->json) {
            printf("%s\n  ", i ? "," : "");
            cli_json_list_from(tl, (size_t)i, 1);
        }
        if (!items[i].id) {     /* not created: said when it failed */
            if (o->json)
                fputs(items[i].failed, stdout);
            continue;
        }
        cli_error_clear();
        if (t->out && rc == EXIT_RPC)
            w = EXIT_RPC;   /* the server has gone: the task is there, its result not here */
        else if (t->out)
            w = finish(o, clnt, t, items[i].id, files[i], &written, &dest, &facts);
        report_one(o, files[i], &items[i], w, dest, &facts);
        if (w != EXIT_OK && rc != EXIT_RPC)
            rc = w;
        free(dest);
    }
    if (o->json)
        printf("\n]\n");
    cli_written_free(&written);
    return rc;
}

int
cmd_submit(cli_opts *o, int argc, char **argv)
{
    submitted *items;
    cli_json_list tl;
    task_opts t;
    CLIENT *clnt;
    int rc, n;

    memset(&t, 0, sizeof(t));
    memset(&tl, 0, sizeof(tl));
    rc = parse(o, &t, "submit", CMD_SUBMIT, argc, argv);
    if (rc == -2) {
        submit_help();
        return EXIT_OK;
    }
    if (rc >= 0)
        return rc;
    t.retry_busy = 1;
    n = argc - optind;
    if (n <= 0) {
        cli_error("submit needs at least one FILE\n");
        return EXIT_USAGE;
    }
    if (t.token && n > 1) {
        cli_error("--token names one task; give one FILE\n");
        return EXIT_USAGE;
    }
    if (t.out && strcmp(t.out, "-") == 0 && (n > 1 || o->json)) {
        cli_error("-o - writes one result to standard output: give one FILE, "
                  "and no --json\n");
        return EXIT_USAGE;
    }
    if (t.wait && !t.out)
        t.out = ".";
    if (t.out && cli_check_outputs(t.out, argv + optind, (size_t)n,
                                   t.spec.have_format ? t.spec.output.format
                                                      : IP_FMT_AUTO) < 0)
        return EXIT_USAGE;
    if (cli_require_tcp(o, "submit"))
        return EXIT_USAGE;
    if (!(items = calloc((size_t)n, sizeof(*items)))) {
        cli_error("out of memory\n");
        return EXIT_FAILED;
    }
    /* Without a server, each input fails for that reason (--json lists them).
     * All are created first, so the server works on them while we wait. */
    clnt = cli_connect_or_say(o);
    if (o->json && cli_json_list_init(&tl, argv + optind, (size_t)n) < 0)
        cli_json_list_free(&tl);    /* no tail: Ctrl-C then cuts the document short */
    rc = create_all(o, clnt, &t, argv + optind, n, items, &tl);
    rc = finish_all(o, clnt, &t, argv + optind, n, items, rc, &tl);
    cli_json_list_free(&tl);
    for (int i = 0; i < n; i++)
        free(items[i].failed);
    free(items);
    cli_disconnect(clnt);
    return rc;
}
