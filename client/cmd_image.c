/* cmd_image.c - grayscale, resize, rotate, blur and process: send images, write results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

enum {
    O_WIDTH = CLI_O_FIRST_LOCAL, O_HEIGHT, O_FIT, O_ENLARGE, O_ANGLE, O_BACKGROUND,
    O_SIGMA, O_STEPS, O_STRIP
};

/* Which command-specific options each command takes. */
typedef struct image_cmd {
    const char *name;           /* subcommand */
    const char *verb;           /* for messages: "cannot resize 'x'" */
    const char *synopsis;       /* for usage */
    int options[5];             /* its own options, 0-terminated */
} image_cmd;

static const image_cmd image_cmds[] = {
    { "grayscale", "convert", "imgproc grayscale [-o OUT] FILE...", { 0 } },
    { "resize", "resize",
      "imgproc resize --width W --height H [--fit inside|cover|fill] [--enlarge] [-o OUT] FILE...",
      { O_WIDTH, O_HEIGHT, O_FIT, O_ENLARGE, 0 } },
    { "rotate", "rotate", "imgproc rotate --angle DEG [--background COLOUR] [-o OUT] FILE...",
      { O_ANGLE, O_BACKGROUND, 0 } },
    { "blur", "blur", "imgproc blur --sigma S [-o OUT] FILE...", { O_SIGMA, 0 } },
    { "process", "process", "imgproc process --steps 'STEP,STEP,...' [-o OUT] FILE...",
      { O_STEPS, 0 } },
};

static const char output_help[] =
"Output:\n"
"  -o, --output OUT       a file, a folder (for many inputs), or - for stdout;\n"
"                         without -o a single result goes to stdout when it is not a terminal\n"
"                         (an input FILE of - is read from standard input)\n"
"  -f, --format F         jpeg, png, webp, tiff, gif (default: from OUT's extension,\n"
"                         else the input's format)\n"
"  -q, --quality Q        1..100 for jpeg and webp\n"
"      --strip            drop metadata\n";

/* The steps, from the operation table (common/pipeline.c). */
static void
steps_help(void)
{
    printf("\nSteps, separated by commas, e.g. --steps 'blur=5,grayscale,resize=800x600'\n"
           "(ranges: 'imgproc info'):\n");
    for (size_t i = 0; i < proto_nops; i++) {
        char syntax[IP_MAX_TEXT];
        proto_op_syntax(&proto_ops[i], syntax, sizeof(syntax));
        printf("  %s\n      %s\n", syntax, proto_ops[i].doc);
    }
}

/* Everything one run of an image command needs. */
typedef struct image_job {
    const image_cmd *cmd;       /* which command */
    ip_step steps[IP_MAX_STEPS]; /* what to do */
    unsigned nsteps;            /* entries used */
    ip_output output;           /* how to encode */
    const char *out;            /* -o, or NULL */
    int out_is_dir;             /* write each result into the folder out */
} image_job;

static const image_cmd *
find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof(image_cmds) / sizeof(image_cmds[0]); i++)
        if (strcmp(image_cmds[i].name, name) == 0)
            return &image_cmds[i];
    return NULL;
}

static int
takes(const image_cmd *c, int opt)
{
    for (int i = 0; c->options[i]; i++)
        if (c->options[i] == opt)
            return 1;
    return 0;
}

static void
help(const image_cmd *c)
{
    printf("usage: %s\n\n%s", c->synopsis, output_help);
    if (strcmp(c->name, "resize") == 0)
        printf("Resize:\n  --width W, --height H  the box (either may be left out with --fit inside)\n"
               "  --fit inside|cover|fill  keep aspect inside / cover and crop / stretch\n"
               "  --enlarge              allow scaling up\n");
    else if (strcmp(c->name, "rotate") == 0)
        printf("Rotate:\n  --angle DEG            clockwise; multiples of 90 are exact\n"
               "  --background COLOUR    corner fill: black, white, #rrggbb, #rrggbbaa...\n");
    else if (strcmp(c->name, "blur") == 0)
        printf("Blur:\n  --sigma S              Gaussian standard deviation in pixels\n");
    else if (strcmp(c->name, "process") == 0)
        steps_help();
    printf("\n%s", cli_global_help);
}

static int
bad(const char *what, const char *arg)
{
    cli_error("invalid %s '%s'\n", what, arg);
    return EXIT_USAGE;
}

/* Parses the command line into job.  -1 to go on, or an exit code. */
static int
parse(cli_opts *o, image_job *job, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_LONG,
        { "output", required_argument, NULL, 'o' },
        { "format", required_argument, NULL, 'f' },
        { "quality", required_argument, NULL, 'q' },
        { "strip", no_argument, NULL, O_STRIP },
        { "width", required_argument, NULL, O_WIDTH },
        { "height", required_argument, NULL, O_HEIGHT },
        { "fit", required_argument, NULL, O_FIT },
        { "enlarge", no_argument, NULL, O_ENLARGE },
        { "angle", required_argument, NULL, O_ANGLE },
        { "background", required_argument, NULL, O_BACKGROUND },
        { "sigma", required_argument, NULL, O_SIGMA },
        { "steps", required_argument, NULL, O_STEPS },
        { NULL, 0, NULL, 0 },
    };
    ip_step *s = &job->steps[0];
    int have_format = 0, have_main = 0;
    unsigned long v;
    char why[256];
    int c;

    memset(s, 0, sizeof(*s));
    s->ip_step_u.rotate.background = (ip_colour){ 0, 0, 0, 255 };
    while ((c = getopt_long(argc, argv, CLI_GLOBAL_SHORT "o:f:q:", opts, NULL)) != -1) {
        int r = cli_global_option(o, c, optarg);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (c >= CLI_O_FIRST_LOCAL && c != O_STRIP && !takes(job->cmd, c)) {
            cli_error("%s does not take %s (see 'imgproc %s --help')\n",
                      job->cmd->name, argv[optind - 1], job->cmd->name);
            return EXIT_USAGE;
        }
        switch (c) {
        case 'h':
            help(job->cmd);
            return EXIT_OK;
        case 'o':
            job->out = optarg;
            break;
        case 'f':
            if (proto_format_parse(optarg, &job->output.format))
                return bad("format", optarg);
            have_format = 1;
            break;
        case 'q':
            if (proto_parse_uint(optarg, 100, &v) || v == 0)
                return bad("quality (1..100)", optarg);
            job->output.quality = (int)v;
            break;
        case O_STRIP:
            job->output.strip = TRUE;
            break;
        case O_WIDTH:
        case O_HEIGHT:
            if (proto_parse_uint(optarg, 0xFFFFFFFFUL, &v))
                return bad(c == O_WIDTH ? "width" : "height", optarg);
            if (c == O_WIDTH)
                s->ip_step_u.resize.width = (u_int)v;
            else
                s->ip_step_u.resize.height = (u_int)v;
            have_main |= c == O_WIDTH ? 1 : 2;
            break;
        case O_FIT:
            if (strcmp(optarg, "inside") == 0)
                s->ip_step_u.resize.fit = IP_FIT_INSIDE;
            else if (strcmp(optarg, "cover") == 0)
                s->ip_step_u.resize.fit = IP_FIT_COVER;
            else if (strcmp(optarg, "fill") == 0)
                s->ip_step_u.resize.fit = IP_FIT_FILL;
            else
                return bad("fit (inside, cover or fill)", optarg);
            break;
        case O_ENLARGE:
            s->ip_step_u.resize.enlarge = TRUE;
            break;
        case O_ANGLE:
            if (proto_parse_double(optarg, &s->ip_step_u.rotate.angle))
                return bad("angle", optarg);
            have_main = 1;
            break;
        case O_BACKGROUND:
            if (proto_colour_parse(optarg, &s->ip_step_u.rotate.background))
                return bad("colour", optarg);
            break;
        case O_SIGMA:
            if (proto_parse_double(optarg, &s->ip_step_u.sigma))
                return bad("sigma", optarg);
            have_main = 1;
            break;
        case O_STEPS:
            if (proto_pipeline_parse(optarg, job->steps, IP_MAX_STEPS, &job->nsteps,
                                     why, sizeof(why))) {
                cli_error("invalid --steps: %s\n", why);
                return EXIT_USAGE;
            }
            have_main = 1;
            break;
        default:
            cli_usage(job->cmd->synopsis);
            return EXIT_USAGE;
        }
    }

    if (strcmp(job->cmd->name, "grayscale") == 0) {
        s->op = IP_OP_GRAYSCALE;
        job->nsteps = 1;
    } else if (strcmp(job->cmd->name, "resize") == 0) {
        if (!have_main) {
            cli_error("resize needs --width and/or --height\n");
            return EXIT_USAGE;
        }
        if (have_main != 3 && s->ip_step_u.resize.fit != IP_FIT_INSIDE) {
            cli_error("--fit cover and fill need both --width and --height\n");
            return EXIT_USAGE;
        }
        /* A side left out is no constraint at all. */
        if (!(have_main & 1))
            s->ip_step_u.resize.width = IP_MAX_DIMENSION;
        if (!(have_main & 2))
            s->ip_step_u.resize.height = IP_MAX_DIMENSION;
        s->op = IP_OP_RESIZE;
        job->nsteps = 1;
    } else if (strcmp(job->cmd->name, "process") != 0) {
        if (!have_main) {
            cli_error("%s needs --%s\n", job->cmd->name,
                      strcmp(job->cmd->name, "rotate") == 0 ? "angle" : "sigma");
            return EXIT_USAGE;
        }
        s->op = strcmp(job->cmd->name, "rotate") == 0 ? IP_OP_ROTATE : IP_OP_BLUR;
        job->nsteps = 1;
    } else if (!have_main) {
        cli_error("process needs --steps\n");
        return EXIT_USAGE;
    }

    if (optind >= argc) {
        cli_error("%s needs at least one FILE\n", job->cmd->name);
        return EXIT_USAGE;
    }
    if (o->json && (!job->out || strcmp(job->out, "-") == 0)) {
        cli_error("--json prints its report on standard output: give -o FILE or -o DIR\n");
        return EXIT_USAGE;
    }
    if (!job->out) {
        if (argc - optind > 1 || isatty(STDOUT_FILENO)) {
            cli_error("where should the result go? give -o FILE, -o DIR or -o -\n");
            return EXIT_USAGE;
        }
        job->out = "-";
    }
    if (strcmp(job->out, "-") == 0 && argc - optind > 1) {
        cli_error("-o - takes one input; give -o DIR for many\n");
        return EXIT_USAGE;
    }
    job->out_is_dir = cli_is_dir(job->out) ||
                      (argc - optind > 1) || job->out[strlen(job->out) - 1] == '/';
    if (!have_format && !job->out_is_dir && strcmp(job->out, "-") != 0)
        job->output.format = proto_format_from_path(job->out);
    return -1;
}

/*
 * Makes the call for this command (cli_call: a long upload or download
 * shows on bar); the RPC status comes back.
 */
static enum clnt_stat
call(CLIENT *clnt, const image_job *job, ip_image *im, ip_image_res *res, cli_progress *bar)
{
    const ip_step *s = &job->steps[0];
    xdrproc_t xres = (xdrproc_t)xdr_ip_image_res;

    switch (s->op == IP_OP_GRAYSCALE && job->cmd->name[0] == 'g' ? 1 :
            strcmp(job->cmd->name, "process") == 0 ? 0 : (int)s->op) {
    case 1: {
        ip_grayscale_args a = { *im, job->output };
        return cli_call(clnt, GRAYSCALE, (xdrproc_t)xdr_ip_grayscale_args, &a, xres, res, bar);
    }
    case IP_OP_RESIZE: {
        ip_resize_args a = { *im, s->ip_step_u.resize, job->output };
        return cli_call(clnt, RESIZE, (xdrproc_t)xdr_ip_resize_args, &a, xres, res, bar);
    }
    case IP_OP_ROTATE: {
        ip_rotate_args a = { *im, s->ip_step_u.rotate, job->output };
        return cli_call(clnt, ROTATE, (xdrproc_t)xdr_ip_rotate_args, &a, xres, res, bar);
    }
    case IP_OP_BLUR: {
        ip_blur_args a = { *im, s->ip_step_u.sigma, job->output };
        return cli_call(clnt, BLUR, (xdrproc_t)xdr_ip_blur_args, &a, xres, res, bar);
    }
    default: {
        ip_process_args a;
        a.image = *im;
        a.steps.steps_len = job->nsteps;
        a.steps.steps_val = (ip_step *)job->steps;
        a.output = job->output;
        return cli_call(clnt, PROCESS, (xdrproc_t)xdr_ip_process_args, &a, xres, res, bar);
    }
    }
}

/* One input: 0 done, EXIT_FAILED for this file only, EXIT_RPC to give up. */
static int
one(const cli_opts *o, CLIENT *clnt, const image_job *job, const char *path)
{
    ip_image_res res;
    enum clnt_stat st;
    cli_progress bar;
    ip_image im;
    char why[256];
    char *data;
    size_t len;
    int rc = EXIT_OK;

    if (cli_read_file(path, IP_MAX_IMAGE, &data, &len, why, sizeof(why))) {
        cli_error("cannot read '%s': %s\n", path, why);
        return EXIT_FAILED;
    }
    im.ip_image_val = data;
    im.ip_image_len = (u_int)len;
    memset(&res, 0, sizeof(res));
    cli_progress_start(&bar, o, "sending", path);
    st = call(clnt, job, &im, &res, &bar);
    cli_progress_end(&bar);
    if (st != RPC_SUCCESS) {
        cli_error("cannot %s '%s': %s\n", job->cmd->verb, path,
                  cli_rpc_error(clnt));
        free(data);
        return EXIT_RPC;
    }
    free(data);
    if (res.status != IP_OK) {
        cli_error("cannot %s '%s': %s: %s\n", job->cmd->verb, path,
                  proto_status_name(res.status), res.ip_image_res_u.message);
        cli_error_status(res.status);
        rc = EXIT_FAILED;
    } else {
        const ip_image_ok *ok = &res.ip_image_res_u.ok;
        char *dest = job->out_is_dir ?
            cli_output_path(job->out, path, proto_format_ext(ok->format)) : strdup(job->out);
        /* The folder is made for the first result, so inputs that all fail
         * (a pattern that matched nothing) leave no empty folder behind. */
        if (job->out_is_dir && !cli_is_dir(job->out) && mkdir(job->out, 0777) < 0 &&
            errno != EEXIST) {
            cli_error("cannot create folder '%s': %m\n", job->out);
            rc = EXIT_FAILED;
        } else if (!dest || cli_write_file(dest, ok->image.ip_image_val,
                                           ok->image.ip_image_len, why, sizeof(why))) {
            cli_error("cannot write '%s': %s\n", dest ? dest : job->out,
                      dest ? why : "out of memory");
            rc = EXIT_FAILED;
        } else if (o->json) {
            printf("{\"file\": ");
            proto_json_string(stdout, path);
            printf(", \"ok\": true, \"output\": ");
            proto_json_string(stdout, dest);
            printf(", \"format\": \"%s\", \"width\": %u, \"height\": %u, \"bands\": %u, "
                   "\"size\": %u}", proto_format_name(ok->format), ok->width, ok->height,
                   ok->bands, ok->image.ip_image_len);
        } else if (o->verbose)
            cli_note("%s -> %s (%s %ux%u, %u band%s, %u bytes)\n", path,
                     dest, proto_format_name(ok->format), ok->width, ok->height, ok->bands,
                     ok->bands == 1 ? "" : "s", ok->image.ip_image_len);
        free(dest);
    }
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
    return rc;
}

int
cmd_image(cli_opts *o, int argc, char **argv)
{
    image_job job;
    CLIENT *clnt;
    int rc;

    memset(&job, 0, sizeof(job));
    job.cmd = find_cmd(argv[0]);
    if ((rc = parse(o, &job, argc, argv)) >= 0)
        return rc;
    if (cli_require_tcp(o, argv[0]))
        return EXIT_USAGE;
    /* Without a server, each input fails for that reason (--json lists them). */
    clnt = cli_connect_or_say(o);
    rc = clnt ? EXIT_OK : EXIT_RPC;
    if (o->json) {
        cli_json_begin();
        printf("[");
    }
    for (int i = optind; i < argc; i++) {
        int r = EXIT_RPC;

        if (o->json)
            printf("%s\n  ", i > optind ? "," : "");
        if (rc != EXIT_RPC) {
            cli_error_clear();
            r = one(o, clnt, &job, argv[i]);
        }
        if (r != EXIT_OK && o->json)
            cli_json_file_failed(stdout, argv[i]);
        if (r == EXIT_RPC && rc != EXIT_RPC)
            cli_error_clear();      /* the rest: not tried, as the server went away */
        if (r != EXIT_OK && rc != EXIT_RPC)
            rc = r;
    }
    if (o->json)
        printf("\n]\n");
    cli_disconnect(clnt);
    return rc;
}
