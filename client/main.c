/* main.c - imgproc: the command-line client.  Global options, then a subcommand. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>

#include "client.h"
#include "proto.h"

/* One row per subcommand. */
typedef struct cli_cmd {
    const char *name;                           /* as typed */
    int (*fn)(cli_opts *o, int argc, char **argv); /* runs it; returns the exit code */
    const char *summary;                        /* one line for --help */
} cli_cmd;

static const cli_cmd commands[] = {
    { "ping", cmd_ping, "call the NULL procedure (TCP or UDP)" },
    { "info", cmd_info, "server versions, operations, formats and limits" },
    { "stats", cmd_stats, "the server's counters: calls, errors, bytes, time; tasks by state" },
    { "identify", cmd_identify, "width, height, bands, format... of image files" },
    { "grayscale", cmd_image, "convert to grayscale (GRAYSCALE)" },
    { "resize", cmd_image, "fit into a box (RESIZE)" },
    { "rotate", cmd_image, "rotate by any angle (ROTATE)" },
    { "blur", cmd_image, "Gaussian blur (BLUR)" },
    { "process", cmd_image, "run a pipeline of steps (PROCESS)" },
    { "task", cmd_task, "background tasks: create, upload, start, status, wait, result..." },
    { "submit", cmd_submit, "images as tasks: create, upload, start, wait and fetch in one go" },
    { "batch", cmd_batch, "files and folders in parallel: batched tasks, or --sync PROCESS calls" },
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: imgproc [options] COMMAND [command options] [FILE...]\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n");
    cli_help_global(f);
    fprintf(f, "\n'imgproc COMMAND --help' tells more.  --version prints the version.\n"
               "Exit status: 0 all done, 1 some input failed, 2 usage error,\n"
               "3 the server could not be reached, 130 interrupted (Ctrl-C).\n");
}

int
cli_spec_option(cli_spec *sp, int c, const char *arg)
{
    char why[256];
    unsigned long v;

    switch (c) {
    case CLI_O_STEPS:
        if (proto_pipeline_parse(arg, sp->steps, IP_MAX_STEPS, &sp->nsteps, why, sizeof(why))) {
            cli_error("invalid --steps: %s\n", why);
            return -1;
        }
        /* The ranges are imgproc.x's (version 1): checked here, before any upload. */
        for (unsigned i = 0; i < sp->nsteps; i++)
            if (proto_step_check(&sp->steps[i], why, sizeof(why))) {
                if (sp->nsteps > 1)
                    cli_error("invalid --steps: step %u of %u: %s\n", i + 1, sp->nsteps, why);
                else
                    cli_error("invalid --steps: %s\n", why);
                return -1;
            }
        return 1;
    case 'f':
        if (proto_format_parse(arg, &sp->output.format)) {
            char names[128];
            proto_format_names(names, sizeof(names));
            cli_error("invalid format '%s': -f takes %s\n", arg, names);
            return -1;
        }
        sp->have_format = 1;
        return 1;
    case 'q':
        if (proto_parse_uint(arg, 100, &v) || v == 0) {
            cli_error("invalid quality (1..100) '%s'\n", arg);
            return -1;
        }
        sp->output.quality = (int)v;
        return 1;
    case CLI_O_STRIP:
        sp->output.strip = TRUE;
        return 1;
    default:
        return 0;
    }
}

ip_task_spec
cli_task_spec(const cli_spec *sp)
{
    ip_task_spec spec;

    spec.steps.steps_len = sp->nsteps;
    spec.steps.steps_val = (ip_step *)sp->steps;
    spec.output = sp->output;
    if (!sp->have_format)
        spec.output.format = IP_FMT_AUTO;
    return spec;
}

int
cli_global_option(cli_opts *o, int c, const char *arg)
{
    unsigned long v;

    switch (c) {
    case 'H':
        o->host = arg;
        return 1;
    case 'p':
        if (proto_parse_uint(arg, 65535, &v) || v == 0) {
            cli_error("invalid port '%s'\n", arg);
            return -1;
        }
        o->port = (int)v;
        return 1;
    case 'T':
        if (strcmp(arg, "tcp") != 0 && strcmp(arg, "udp") != 0 &&
            strcmp(arg, "local") != 0 && strcmp(arg, "auto") != 0) {
            cli_error("transport must be auto, local, tcp or udp, not '%s'\n", arg);
            return -1;
        }
        o->proto = arg;
        return 1;
    case CLI_O_PROGRAM: {
        unsigned long p;
        if (proto_parse_program(arg, &p)) {
            cli_error("invalid program '%s': a number, or a name in /etc/rpc\n", arg);
            return -1;
        }
        o->program = (rpcprog_t)p;
        return 1;
    }
    case CLI_O_TIMEOUT:
        if (proto_parse_uint(arg, 86400, &v) || v == 0) {
            cli_error("invalid timeout '%s'\n", arg);
            return -1;
        }
        o->timeout = (int)v;
        return 1;
    case CLI_O_JSON:
        o->json = 1;
        return 1;
    case CLI_O_QUIET:
        o->quiet = 1;
        return 1;
    case CLI_O_KRB5_SERVICE:
        if (!strchr(arg, '@')) {
            cli_error("--krb5-service takes SERVICE@HOST (imgproc@server.example.org), not "
                      "'%s'\n", arg);
            return -1;
        }
        o->krb5_service = arg;
        return 1;
    case CLI_O_AUTH: {
        char *end;
        if (strcmp(arg, "sys") != 0 && strcmp(arg, "none") != 0 && !cli_auth_krb5(arg) &&
            (errno = 0, strtoul(arg, &end, 10) >= 0xFFFFFFFFUL || errno || arg[0] == '-' ||
             end == arg || (*end && *end != '@'))) {
            cli_error("--auth takes sys, none, krb5, krb5i, krb5p or UID[@HOST], not '%s'\n",
                      arg);
            return -1;
        }
        o->auth = arg;
        return 1;
    }
    case 'v':
        o->verbose = 1;
        return 1;
    default:
        return 0;
    }
}

/*
 * The command line failed before a command was found: exit 2, and with
 * --json anywhere on it (perhaps after the mistake) the fallback document.
 */
static int
global_failure(const cli_opts *o, int argc, char **argv)
{
    int json = o->json;

    for (int i = 1; i < argc && !json; i++)
        json = strcmp(argv[i], "--json") == 0;
    if (json)
        cli_json_fallback("", EXIT_USAGE);
    return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
    struct option opts[64];
    char shorts[64] = "+";      /* '+': stop at the subcommand; its own options follow it */
    size_t n = cli_getopt_table(opts, sizeof(opts) / sizeof(opts[0]) - 1, shorts + 1,
                                sizeof(shorts) - 3);
    cli_opts o = { 0 };
    int c, rc;

    signal(SIGPIPE, SIG_IGN);
    o.host = getenv("IMGPROC_HOST") && *getenv("IMGPROC_HOST") ?
             getenv("IMGPROC_HOST") : "localhost";
    o.program = IMGPROC;
    if (getenv("IMGPROC_PROGRAM") && *getenv("IMGPROC_PROGRAM") &&
        cli_global_option(&o, CLI_O_PROGRAM, getenv("IMGPROC_PROGRAM")) < 0) {
        cli_error("(the program came from $IMGPROC_PROGRAM)\n");
        return EXIT_USAGE;
    }
    o.proto = "auto";
    o.timeout = 120;
    o.auth = "sys";

    opts[n] = (struct option){ "version", no_argument, NULL, 'V' };
    opts[n + 1] = (struct option){ NULL, 0, NULL, 0 };
    strcat(shorts, "V");
    while ((c = cli_getopt(argc, argv, shorts, opts, 0, "")) != -1) {
        int r = c == '?' ? -1 : cli_global_option(&o, c, optarg);
        if (r > 0)
            continue;
        if (c == 'h' || c == 'V') {
            if (c == 'h')
                usage(stdout);
            else
                printf("imgproc %s\n", IMGPROC_VERSION);
            return EXIT_OK;
        }
        if (r == 0)     /* a command's option before the command */
            cli_error("--%s goes after the command (see 'imgproc --help')\n",
                      cli_option_name(c));
        return global_failure(&o, argc, argv);
    }
    if (optind >= argc) {
        cli_error("which command? (see 'imgproc --help')\n");
        usage(stderr);
        return global_failure(&o, argc, argv);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0) {
            argv += optind;
            argc -= optind;
            optind = 0;     /* 0 makes glibc start afresh on the subcommand argv */
            if (o.json)
                cli_json_interruptible(argv[0]);
            rc = commands[i].fn(&o, argc, argv);
            /* --json: one document, even when the command ended before its own. */
            if (o.json && rc != EXIT_OK)
                cli_json_fallback(argv[0], rc);
            return rc;
        }
    cli_error("unknown command '%s' (see 'imgproc --help')\n", argv[optind]);
    return global_failure(&o, argc, argv);
}
