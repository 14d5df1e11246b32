/* cmd_image.c - grayscale, resize, rotate, blur and process: send images, write results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

/*
 * One row per command.  A single-operation command's own options are its
 * operation's parameters, as common/pipeline.c declares them (--sigma for
 * blur's sigma...): parsed, checked and shown in --help from there.
 */
typedef struct image_cmd {
    const char *name;           /* subcommand */
    const char *verb;           /* for messages: "cannot resize 'x'" */
    ip_op op;                   /* its operation; 0 for process (--steps) */
} image_cmd;

static const image_cmd image_cmds[] = {
    { "grayscale", "convert", IP_OP_GRAYSCALE },
    { "resize", "resize", IP_OP_RESIZE },
    { "rotate", "rotate", IP_OP_ROTATE },
    { "blur", "blur", IP_OP_BLUR },
    { "process", "process", 0 },
};
#define NCMDS (sizeof(image_cmds) / sizeof(image_cmds[0]))
/* Its bit in the option table (options.c). */
#define CMD_OF(c) ((c)->op ? (unsigned)CMD_IMAGE : (unsigned)CMD_PROCESS)

/* An operation parameter's option: its value in getopt_long's val. */
#define O_PARAM(cmd, param) (CLI_O_FIRST_LOCAL + (int)(cmd) * PROTO_MAX_PARAMS + (param))

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
    cli_spec spec;              /* its steps (one, or --steps) and -f, -q, --strip */
    const char *out;            /* -o, or NULL */
    int out_is_dir;             /* write each result into the folder out */
    cli_written written;        /* the results written so far */
} image_job;

static const image_cmd *
find_cmd(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(image_cmds[i].name, name) == 0)
            return &image_cmds[i];
    return NULL;
}

/* "--sigma SIGMA", "[--fit inside|cover|fill]": a parameter as an option. */
static void
param_usage(const proto_param *p, char *buf, size_t len)
{
    char arg[32];
    size_t i;

    for (i = 0; p->name[i] && i + 1 < sizeof(arg); i++)
        arg[i] = (char)(p->name[i] >= 'a' && p->name[i] <= 'z' ? p->name[i] - 32 : p->name[i]);
    arg[i] = '\0';
    if (p->type == PT_BOOL)
        snprintf(buf, len, "--%s", p->name);
    else
        snprintf(buf, len, "--%s %s", p->name, p->type == PT_FIT ? "inside|cover|fill" : arg);
}

/* "imgproc blur --sigma SIGMA [-o OUT] FILE...", from the operation's row. */
static void
synopsis(const image_cmd *c, char *buf, size_t len)
{
    const proto_op *op = c->op ? proto_op_by_num(c->op) : NULL;
    size_t n = (size_t)snprintf(buf, len, "imgproc %s%s", c->name,
                                op ? "" : " --steps 'STEP,STEP,...'");

    for (int i = 0; op && i < op->nparams && n < len; i++) {
        char u[64];
        param_usage(&op->params[i], u, sizeof(u));
        /* resize needs a side, either one: both are shown as optional. */
        int required = op->params[i].required && c->op != IP_OP_RESIZE;
        n += (size_t)snprintf(buf + n, len - n, required ? " %s" : " [%s]", u);
    }
    if (n < len)
        snprintf(buf + n, len - n, " [-o OUT] FILE...");
}

static void
help(const image_cmd *c)
{
    const proto_op *op = c->op ? proto_op_by_num(c->op) : NULL;
    char text[256];

    synopsis(c, text, sizeof(text));
    printf("usage: %s\n\n%s:\n", text, op ? "Output" : "Options");
    cli_help_options(stdout, CMD_OF(c));
    if (op && op->nparams)
        printf("\n%s (%s):\n", op->doc, op->name);
    for (int i = 0; op && i < op->nparams; i++) {
        const proto_param *p = &op->params[i];
        char doc[IP_MAX_TEXT], arg[32];
        size_t k;
        proto_param_doc(p, doc, sizeof(doc));
        if (c->op == IP_OP_RESIZE && p->type == PT_UINT)
            snprintf(doc + strlen(doc), sizeof(doc) - strlen(doc),
                     " (either side may be left out with --fit inside)");
        for (k = 0; p->name[k] && k + 1 < sizeof(arg); k++)
            arg[k] = (char)(p->name[k] >= 'a' && p->name[k] <= 'z' ? p->name[k] - 32
                                                                    : p->name[k]);
        arg[k] = '\0';
        cli_help_line(stdout, 0, p->name, p->type == PT_BOOL ? NULL
                      : p->type == PT_FIT ? "inside|cover|fill" : arg, doc);
    }
    if (!op)
        steps_help();
    printf("\n");
    cli_help_global(stdout);
}

/* The options: every command's, so that one it does not take is named as such. */
static void
options(struct option *opts, size_t max, char *shorts, size_t slen)
{
    size_t n = cli_getopt_table(opts, max - 16, shorts, slen);

    for (size_t c = 0; c < NCMDS; c++) {
        const proto_op *op = image_cmds[c].op ? proto_op_by_num(image_cmds[c].op) : NULL;
        for (int i = 0; op && i < op->nparams; i++)
            opts[n++] = (struct option){ op->params[i].name, op->params[i].type == PT_BOOL ?
                                         no_argument : required_argument, NULL,
                                         O_PARAM(c, i) };
    }
    opts[n] = (struct option){ NULL, 0, NULL, 0 };
}

/* --PARAM VALUE for the command's operation, into its step.  0 or an exit code. */
static int
param_option(const image_job *job, int c, const char *arg, unsigned *given)
{
    const image_cmd *cmd = &image_cmds[(c - CLI_O_FIRST_LOCAL) / PROTO_MAX_PARAMS];
    const proto_op *op = proto_op_by_num(cmd->op);
    int i = (c - CLI_O_FIRST_LOCAL) % PROTO_MAX_PARAMS;
    char why[256];

    /* Every operation parameter's option exists; the right command's names this one. */
    if (cmd != job->cmd) {
        const proto_op *mine = job->cmd->op ? proto_op_by_num(job->cmd->op) : NULL;
        int k;
        for (k = 0; mine && k < mine->nparams; k++)
            if (strcmp(mine->params[k].name, op->params[i].name) == 0)
                break;
        if (!mine || k == mine->nparams) {
            cli_error("%s does not take --%s (see 'imgproc %s --help')\n", job->cmd->name,
                      op->params[i].name, job->cmd->name);
            return EXIT_USAGE;
        }
        op = mine;
        i = k;
    }
    if (op->params[i].type == PT_BOOL)
        arg = "1";
    if (proto_param_parse(op, &op->params[i], arg, (ip_step *)&job->spec.steps[0], why,
                          sizeof(why))) {
        cli_error("invalid --%s: %s\n", op->params[i].name, why);
        return EXIT_USAGE;
    }
    *given |= 1u << i;
    return 0;
}

/* What a single-operation command needs given, or fills in.  0 or an exit code. */
static int
finish_step(image_job *job, unsigned given)
{
    const proto_op *op = proto_op_by_num(job->cmd->op);
    ip_step *s = &job->spec.steps[0];

    job->spec.nsteps = 1;
    if (op->op == IP_OP_RESIZE) {
        /* A side left out is no constraint at all, when the box is to be fitted inside. */
        if (!(given & 3)) {
            cli_error("resize needs --width and/or --height\n");
            return EXIT_USAGE;
        }
        if ((given & 3) != 3 && s->ip_step_u.resize.fit != IP_FIT_INSIDE) {
            cli_error("--fit cover and fill need both --width and --height\n");
            return EXIT_USAGE;
        }
        if (!(given & 1))
            s->ip_step_u.resize.width = IP_MAX_DIMENSION;
        if (!(given & 2))
            s->ip_step_u.resize.height = IP_MAX_DIMENSION;
        return 0;
    }
    for (int i = 0; i < op->nparams; i++)
        if (op->params[i].required && !(given & (1u << i))) {
            cli_error("%s needs --%s\n", job->cmd->name, op->params[i].name);
            return EXIT_USAGE;
        }
    return 0;
}

/* Where the results go: -o, or stdout when it is not a terminal.  -1 or an exit code. */
static int
parse_output(const cli_opts *o, image_job *job, char **inputs, int ninputs)
{
    const char *dot;

    if (o->json && (!job->out || strcmp(job->out, "-") == 0)) {
        cli_error("--json prints its report on standard output: give -o FILE or -o DIR\n");
        return EXIT_USAGE;
    }
    if (!job->out) {
        if (ninputs > 1 || isatty(STDOUT_FILENO)) {
            cli_error("where should the result go? give -o FILE, -o DIR or -o -\n");
            return EXIT_USAGE;
        }
        job->out = "-";
    }
    if (strcmp(job->out, "-") == 0 && ninputs > 1) {
        cli_error("-o - takes one input; give -o DIR for many\n");
        return EXIT_USAGE;
    }
    if (ninputs > 1 && access(job->out, F_OK) == 0 && !cli_is_dir(job->out)) {
        cli_error("'%s' is a file, and %d inputs need a folder: give -o DIR\n", job->out,
                  ninputs);
        return EXIT_USAGE;
    }
    /* -o x.jpg with many inputs would make a folder called x.jpg. */
    if (ninputs > 1 && access(job->out, F_OK) != 0 &&
        proto_format_from_path(job->out) != IP_FMT_AUTO) {
        cli_error("-o '%s' names one image, and %d inputs need a folder: give -o DIR "
                  "(made if missing)\n", job->out, ninputs);
        return EXIT_USAGE;
    }
    if (ninputs == 1 && strcmp(job->out, "-") != 0 && cli_same_file(inputs[0], job->out)) {
        cli_error("'%s' would be overwritten by its own result: give -o another name\n",
                  inputs[0]);
        return EXIT_USAGE;
    }
    job->out_is_dir = cli_is_dir(job->out) || ninputs > 1 ||
                      job->out[strlen(job->out) - 1] == '/';
    if (!job->spec.have_format && !job->out_is_dir && strcmp(job->out, "-") != 0) {
        /* -o x.xyz: the name says a format we do not know; never guess one. */
        const char *slash = strrchr(job->out, '/');
        job->spec.output.format = proto_format_from_path(job->out);
        dot = strrchr(slash ? slash + 1 : job->out, '.');
        if (job->spec.output.format == IP_FMT_AUTO && dot && dot[1]) {
            char names[128];
            proto_format_names(names, sizeof(names));
            cli_error("'%s' names no format this client knows: end it in one (%s), "
                      "or give -f\n", job->out, names + strlen("auto, "));
            return EXIT_USAGE;
        }
    }
    if (job->out_is_dir &&
        cli_check_outputs(job->out, inputs, (size_t)ninputs,
                          job->spec.have_format ? job->spec.output.format : IP_FMT_AUTO) < 0)
        return EXIT_USAGE;
    return -1;
}

/* Parses the command line into job.  -1 to go on, or an exit code. */
static int
parse(cli_opts *o, image_job *job, int argc, char **argv)
{
    struct option opts[80];
    char shorts[64];
    unsigned given = 0;
    int c, r;

    options(opts, sizeof(opts) / sizeof(opts[0]), shorts, sizeof(shorts));
    if (job->cmd->op)
        proto_step_init(proto_op_by_num(job->cmd->op), &job->spec.steps[0]);
    while ((c = cli_getopt(argc, argv, shorts, opts, CMD_OF(job->cmd), job->cmd->name)) != -1) {
        if (c == '?')
            return EXIT_USAGE;
        if ((r = cli_global_option(o, c, optarg)) < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if ((r = cli_spec_option(&job->spec, c, optarg)) < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (c >= CLI_O_FIRST_LOCAL) {
            if ((r = param_option(job, c, optarg, &given)) != 0)
                return r;
        } else if (c == 'o')
            job->out = optarg;
        else if (c == 'h') {
            help(job->cmd);
            return EXIT_OK;
        } else {
            char text[256];
            synopsis(job->cmd, text, sizeof(text));
            cli_usage(text);
            return EXIT_USAGE;
        }
    }
    if (job->cmd->op && (r = finish_step(job, given)) != 0)
        return r;
    if (job->cmd->op) {     /* imgproc.x's ranges, checked before any upload */
        char why[IP_MAX_MESSAGE];
        if (proto_step_check(&job->spec.steps[0], why, sizeof(why))) {
            cli_error("%s\n", why);
            return EXIT_USAGE;
        }
    }
    if (!job->cmd->op && job->spec.nsteps == 0) {
        cli_error("process needs --steps\n");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        cli_error("%s needs at least one FILE\n", job->cmd->name);
        return EXIT_USAGE;
    }
    return parse_output(o, job, argv + optind, argc - optind);
}

/*
 * Makes the call for this command (cli_call: a long upload or download
 * shows on bar); the RPC status comes back.
 */
static enum clnt_stat
call(CLIENT *clnt, const image_job *job, ip_image *im, ip_image_res *res, cli_progress *bar)
{
    const ip_step *s = &job->spec.steps[0];
    xdrproc_t xres = (xdrproc_t)xdr_ip_image_res;

    switch (job->cmd->op) {
    case IP_OP_GRAYSCALE: {
        ip_grayscale_args a = { *im, job->spec.output };
        return cli_call(clnt, GRAYSCALE, (xdrproc_t)xdr_ip_grayscale_args, &a, xres, res, bar);
    }
    case IP_OP_RESIZE: {
        ip_resize_args a = { *im, s->ip_step_u.resize, job->spec.output };
        return cli_call(clnt, RESIZE, (xdrproc_t)xdr_ip_resize_args, &a, xres, res, bar);
    }
    case IP_OP_ROTATE: {
        ip_rotate_args a = { *im, s->ip_step_u.rotate, job->spec.output };
        return cli_call(clnt, ROTATE, (xdrproc_t)xdr_ip_rotate_args, &a, xres, res, bar);
    }
    case IP_OP_BLUR: {
        ip_blur_args a = { *im, s->ip_step_u.sigma, job->spec.output };
        return cli_call(clnt, BLUR, (xdrproc_t)xdr_ip_blur_args, &a, xres, res, bar);
    }
    default: {
        ip_process_args a;
        a.image = *im;
        a.steps.steps_len = job->spec.nsteps;
        a.steps.steps_val = (ip_step *)job->spec.steps;
        a.output = job->spec.output;
        return cli_call(clnt, PROCESS, (xdrproc_t)xdr_ip_process_args, &a, xres, res, bar);
    }
    }
}

/* One input: 0 done, EXIT_FAILED for this file only, EXIT_RPC to give up. */
static int
one(const cli_opts *o, CLIENT *clnt, const char *path, void *ctx)
{
    image_job *job = ctx;
    const char *earlier;
    ip_image_res res;
    enum clnt_stat st;
    cli_progress bar;
    ip_image im;
    char why[256];
    int rc = EXIT_OK;

    if (cli_read_image(path, &im))
        return EXIT_FAILED;
    if (proto_chunk_size(clnt) == PROTO_KRB5_CHUNK && im.ip_image_len > PROTO_KRB5_CHUNK) {
        cli_error("cannot %s '%s': %u bytes is more than one Kerberos call carries here "
                  "(%zu: libtirpc signs or encrypts each message whole, in a 256 KiB "
                  "buffer); a task sends any size in pieces: imgproc submit --steps ... "
                  "FILE -o FOLDER\n", job->cmd->verb, path, im.ip_image_len,
                  (size_t)PROTO_KRB5_CHUNK);
        free(im.ip_image_val);
        return EXIT_FAILED;
    }
    memset(&res, 0, sizeof(res));
    cli_progress_start(&bar, o, "sending", path);
    st = call(clnt, job, &im, &res, &bar);
    cli_progress_end(&bar);
    if (st != RPC_SUCCESS) {
        cli_error("cannot %s '%s': %s\n", job->cmd->verb, path,
                  cli_rpc_error(clnt));
        free(im.ip_image_val);
        return EXIT_RPC;
    }
    free(im.ip_image_val);
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
        } else if (dest && cli_written_claim(&job->written, dest, path, &earlier)) {
            /* Names were checked before sending; the server chose another format. */
            if (earlier)
                cli_error("'%s' would overwrite '%s', the result of '%s': not written\n",
                          path, dest, earlier);
            else
                cli_error("out of memory\n");
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
            cli_note("%s -> %s (%s %ux%u, %u band%s, %u bytes)\n",
                     strcmp(path, "-") ? path : "standard input",
                     strcmp(dest, "-") ? dest : "standard output", proto_format_name(ok->format), ok->width, ok->height, ok->bands,
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
    clnt = cli_connect_spread_or_say(o);
    rc = cli_each_input(o, clnt, argv + optind, argc - optind, one, &job);
    cli_written_free(&job.written);
    cli_disconnect(clnt);
    return rc;
}
