/* options.c - every option of the client, once: its names, argument, help, and the
 * commands that take it.  getopt_long's tables and every --help come from here. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "proto.h"

/* One option, as the commands in cmds take it (an option may mean different
 * things to different commands: one row each, their cmds apart). */
typedef struct cli_option {
    const char *name;           /* --name */
    int letter;                 /* -l, or 0 */
    const char *arg;            /* its argument in help; NULL for a flag */
    unsigned cmds;              /* CMD_* bits of the commands that take it */
    int id;                     /* what getopt_long returns for it */
    const char *help;           /* one sentence or two, wrapped when printed */
} cli_option;

#define STR_(x) #x
#define STR(x) STR_(x)          /* a number's macro as a string, for help texts */
#define IMAGE_ALL (CMD_IMAGE | CMD_PROCESS)
#define SPEC_ALL (CMD_SUBMIT | CMD_BATCH | CMD_T_CREATE)

static const cli_option options[] = {
    /* What a command's own --help lists first. */
    { "steps", 0, "'STEP,...'", CMD_PROCESS | SPEC_ALL, CLI_O_STEPS,
      "the pipeline: steps separated by commas (see 'imgproc process --help')" },
    { "output", 'o', "OUT", IMAGE_ALL, 'o',
      "a file, a folder (for many inputs), or - for stdout; without -o a single result "
      "goes to stdout when it is not a terminal (an input FILE of - is read from "
      "standard input)" },
    { "output", 'o', "DIR", CMD_SUBMIT, 'o',
      "where the results go, named after their inputs (implies --wait); - for stdout" },
    { "output", 'o', "OUTDIR", CMD_BATCH, 'o', "where results go (created if missing)" },
    { "output", 'o', "FILE", CMD_T_RESULT, 'o', "where to write it (- for stdout)" },
    { "format", 'f', "F", IMAGE_ALL, 'f',
      "jpeg, png, webp, tiff, gif (default: from OUT's extension, else the input's format)" },
    { "format", 'f', "F", SPEC_ALL, 'f',
      "output format: jpeg, png, webp, tiff, gif (default: the input's)" },
    { "quality", 'q', "Q", IMAGE_ALL | SPEC_ALL, 'q', "1..100 for jpeg and webp" },
    { "strip", 0, NULL, IMAGE_ALL | SPEC_ALL, CLI_O_STRIP, "drop metadata" },
    { "token", 0, "T", CMD_SUBMIT | CMD_T_CREATE, CLI_O_TOKEN,
      "your name for the task: creating it again returns the same task" },
    { "hold", 0, NULL, CMD_T_CREATE, CLI_O_HOLD, "stay CREATED until 'task start'" },
    { "upload", 0, NULL, CMD_T_CREATE, CLI_O_UPLOAD,
      "create the task without its image and print its id; send the image later with "
      "'task upload ID FILE'.  Without it, images over 16 MiB (or over what the server "
      "takes in one call) go up in 1 MiB chunks at once" },
    { "wait", 0, NULL, CMD_SUBMIT, CLI_O_WAIT, "wait for the tasks and fetch their results" },
    { "for", 0, "S", CMD_T_WAIT, CLI_O_FOR, "give up after S seconds" },
    { "while", 0, "STATE", CMD_T_WAIT, CLI_O_WHILE,
      "wait only as long as the task is in STATE (say queued: until it starts); exit 0 "
      "once it has left it" },
    { "state", 0, "S,S", CMD_T_LIST, CLI_O_STATE,
      "only tasks in these states: created, queued, running, done, failed, cancelled" },
    { "jobs", 'j', "N", CMD_BATCH, 'j', "connections fetching (or calling PROCESS), 1.."
      STR(BATCH_MAX_JOBS) " (default " STR(BATCH_DEFAULT_JOBS) ")" },
    { "sync", 0, NULL, CMD_BATCH, CLI_O_SYNC,
      "parallel synchronous PROCESS calls instead of tasks" },
    { "batch-size", 0, "N", CMD_BATCH, CLI_O_BATCH_SIZE, "TASK_SUBMITs per TASK_COLLECT, 1.."
      STR(IP_MAX_BATCH) " (default " STR(BATCH_DEFAULT_SIZE) ")" },
    { "no-batch", 0, NULL, CMD_BATCH, CLI_O_NO_BATCH,
      "one TASK_CREATE round trip per image (to compare)" },
    { "keep", 0, NULL, CMD_BATCH, CLI_O_KEEP,
      "leave finished tasks on the server (default: deleted once fetched)" },
    /* Every command's. */
    { "host", 'H', "HOST", CMD_EVERY, 'H', "server (default $IMGPROC_HOST or localhost); "
      "several, a,b,c: image calls go to the least loaded that answers, task commands to "
      "the first that answers" },
    { "port", 'p', "PORT", CMD_EVERY, 'p', "connect to PORT directly instead of asking rpcbind" },
    { "program", 0, "N|NAME", CMD_EVERY, CLI_O_PROGRAM,
      "RPC program: a number, or a name in /etc/rpc (default $IMGPROC_PROGRAM or "
      "0x20494D47)" },
    { "transport", 'T', "auto|local|tcp|udp", CMD_EVERY, 'T',
      "how calls travel (default auto: the server's local socket when it runs on this "
      "machine, where the kernel vouches for your uid, else tcp; images need local or tcp: "
      "over UDP imgprocd serves ping, info, stats and the task queries)" },
    { "timeout", 0, "S", CMD_EVERY, CLI_O_TIMEOUT, "seconds to wait for a reply (default 120)" },
    { "json", 0, NULL, CMD_EVERY, CLI_O_JSON,
      "one JSON document on stdout, failures included (each input an object with \"ok\", "
      "and \"error\" when it failed)" },
    { "auth", 0, "sys|none|krb5|krb5p|UID[@HOST]", CMD_EVERY, CLI_O_AUTH,
      "who you are: sys (the default) sends your uid and host (AUTH_SYS: proof on the "
      "local socket only), krb5 (or krb5i) your Kerberos ticket with signed calls, krb5p "
      "with encrypted calls; UID[@HOST] claims any uid, to see it refused" },
    { "krb5-service", 0, "NAME", CMD_EVERY, CLI_O_KRB5_SERVICE,
      "the server's Kerberos service (default imgproc@HOST, the principal imgproc/HOST)" },
    { "verbose", 'v', NULL, CMD_EVERY, 'v', "say more on stderr" },
    { "quiet", 0, NULL, CMD_EVERY, CLI_O_QUIET,
      "no progress bars (they are drawn only on a terminal, for uploads, downloads and "
      "waits lasting over a second)" },
    { "help", 'h', NULL, CMD_EVERY, 'h', "help for the command" },
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

size_t
cli_getopt_table(struct option *opts, size_t max, char *shorts, size_t slen)
{
    size_t n = 0, s = 0;

    /* ':' first: a missing value is told from an unknown option (cli_getopt). */
    if (slen > 1)
        shorts[s++] = ':';
    /* Every option, each name once: one a command does not take is then
     * named as such (cli_takes) rather than called unknown. */
    for (size_t i = 0; i < NOPTIONS && n + 1 < max; i++) {
        size_t k;
        for (k = 0; k < i && strcmp(options[k].name, options[i].name) != 0; k++)
            ;
        if (k < i)
            continue;
        opts[n++] = (struct option){ options[i].name, options[i].arg ? required_argument
                                     : no_argument, NULL, options[i].id };
        if (options[i].letter && s + 3 < slen) {
            shorts[s++] = (char)options[i].letter;
            if (options[i].arg)
                shorts[s++] = ':';
        }
    }
    opts[n] = (struct option){ NULL, 0, NULL, 0 };
    if (slen)
        shorts[s < slen ? s : slen - 1] = '\0';
    return n;
}

int
cli_getopt(int argc, char **argv, const char *shorts, const struct option *opts,
           unsigned cmd, const char *name)
{
    const char *token;
    char opt[64];
    int c;

    opterr = 0;                 /* getopt's own messages would name the subcommand as a program */
    c = getopt_long(argc, argv, shorts, opts, NULL);
    if (c == -1 || ((c != '?' && c != ':') &&
                    (!cmd || c >= CLI_O_FIRST_LOCAL || cli_takes(cmd, c))))
        return c;
    if (c != '?' && c != ':') {
        cli_error("%s does not take --%s (see 'imgproc %s --help')\n", name,
                  cli_option_name(c), name);
        return '?';
    }
    token = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    if (strncmp(token, "--", 2) == 0)
        snprintf(opt, sizeof(opt), "%.*s", (int)strcspn(token, "="), token);
    else
        snprintf(opt, sizeof(opt), "-%c", optopt > 0 && optopt < 128 ? optopt : '?');
    if (c == ':')
        cli_error("%s needs a value (see 'imgproc %s%s--help')\n", opt, name, *name ? " " : "");
    else
        cli_error("unknown option '%s' (see 'imgproc %s%s--help')\n", opt, name,
                  *name ? " " : "");
    return '?';
}

int
cli_takes(unsigned cmd, int id)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].id == id && (options[i].cmds & cmd))
            return 1;
    return 0;
}

const char *
cli_option_name(int id)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].id == id)
            return options[i].name;
    return "?";
}

/* "  -o, --output OUT       help...", wrapped at 79 columns under column 25. */
void
cli_help_line(FILE *f, int letter, const char *name, const char *arg, const char *help)
{
    char head[80];

    snprintf(head, sizeof(head), "  %c%c%s--%s%s%s", letter ? '-' : ' ', letter ? letter : ' ',
             letter ? ", " : "  ", name, arg ? " " : "", arg ? arg : "");
    proto_help_line(f, head, help);
}

int
cli_help_options(FILE *f, unsigned cmd)
{
    int n = 0;

    for (size_t i = 0; i < NOPTIONS; i++)
        if ((options[i].cmds & cmd) && options[i].cmds != CMD_EVERY) {
            if (f)
                cli_help_line(f, options[i].letter, options[i].name, options[i].arg,
                              options[i].help);
            n++;
        }
    return n;
}

void
cli_help_global(FILE *f)
{
    fprintf(f, "Options for every command:\n");
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].cmds == CMD_EVERY)
            cli_help_line(f, options[i].letter, options[i].name, options[i].arg,
                          options[i].help);
}
