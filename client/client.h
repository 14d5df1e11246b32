/* client.h - the imgproc command-line client: shared options, connection, file helpers. */
#ifndef IMGPROC_CLIENT_H
#define IMGPROC_CLIENT_H

#include <getopt.h>
#include <stdio.h>
#include <rpc/rpc.h>
#include "imgproc.h"

/* Exit codes, documented in README.md and --help. */
enum {
    EXIT_OK = 0,                /* everything worked */
    EXIT_FAILED = 1,            /* at least one input failed (server said no, bad file) */
    EXIT_USAGE = 2,             /* wrong command line */
    EXIT_RPC = 3,               /* the server could not be reached or the call failed */
    EXIT_INTERRUPTED = 130      /* Ctrl-C, as a shell reports SIGINT */
};

/* Options every subcommand takes. */
typedef struct cli_opts {
    const char *host;           /* server host (-H, IMGPROC_HOST, localhost) */
    int port;                   /* fixed port, 0 = ask rpcbind */
    rpcprog_t program;          /* RPC program number */
    const char *proto;          /* "auto", "local", "tcp" or "udp" */
    int timeout;                /* seconds per call */
    int verbose;                /* say more on stderr */
    int json;                   /* machine-readable output */
    int quiet;                  /* no progress bars */
    const char *auth;           /* "sys" (default), "none", "krb5", "krb5i", "krb5p", or "UID[@HOST]" */
    const char *krb5_service;   /* the server's Kerberos service, NULL: imgproc@host */
} cli_opts;

/* batch's settings, in its help (options.c) as in its code. */
#define BATCH_DEFAULT_JOBS 4    /* -j: connections fetching results (or calling PROCESS) */
#define BATCH_MAX_JOBS 64
#define BATCH_DEFAULT_SIZE 100  /* --batch-size: TASK_SUBMITs per TASK_COLLECT */

/* The commands, as bits: which take an option (options.c). */
enum {
    CMD_PING = 1u << 0, CMD_INFO = 1u << 1, CMD_IDENTIFY = 1u << 2,
    CMD_IMAGE = 1u << 3,                /* grayscale, resize, rotate, blur */
    CMD_PROCESS = 1u << 4, CMD_SUBMIT = 1u << 5, CMD_BATCH = 1u << 6,
    CMD_T_CREATE = 1u << 7, CMD_T_UPLOAD = 1u << 8, CMD_T_START = 1u << 9,
    CMD_T_STATUS = 1u << 10, CMD_T_WAIT = 1u << 11, CMD_T_RESULT = 1u << 12,
    CMD_T_CANCEL = 1u << 13, CMD_T_DELETE = 1u << 14, CMD_T_LIST = 1u << 15,
    CMD_STATS = 1u << 16,
    CMD_EVERY = (1u << 17) - 1
};

/* What getopt_long returns for an option without a letter. */
enum {
    CLI_O_PROGRAM = 1000, CLI_O_TIMEOUT, CLI_O_JSON, CLI_O_AUTH, CLI_O_QUIET, CLI_O_KRB5_SERVICE,
    CLI_O_STEPS, CLI_O_STRIP,           /* the pipeline options (cli_spec_option) */
    CLI_O_TOKEN, CLI_O_HOLD, CLI_O_UPLOAD, CLI_O_WAIT, CLI_O_FOR, CLI_O_WHILE, CLI_O_STATE,
    CLI_O_SYNC, CLI_O_BATCH_SIZE, CLI_O_NO_BATCH, CLI_O_KEEP,
    CLI_O_FIRST_LOCAL                   /* a command's own, beyond the table (cmd_image.c) */
};

/*
 * getopt_long's table of every option, and its short letters, into opts
 * (room for max, NULL-terminated) and shorts.  The number of options.
 */
size_t cli_getopt_table(struct option *opts, size_t max, char *shorts, size_t slen);
/*
 * getopt_long for command name (a CMD_* bit in cmd; 0 for the options before
 * the command): the next option, -1 at the end, or '?' having said what is
 * wrong (unknown, missing its value, or not one the command takes).
 */
int cli_getopt(int argc, char **argv, const char *shorts, const struct option *opts,
               unsigned cmd, const char *name);
/* Whether command cmd (a CMD_* bit) takes option id. */
int cli_takes(unsigned cmd, int id);
const char *cli_option_name(int id);
/* --help: the options of command cmd but those of every command (f NULL: only counted); those. */
int cli_help_options(FILE *f, unsigned cmd);
void cli_help_global(FILE *f);
/* One help line, as options.c prints them (for options beyond the table). */
void cli_help_line(FILE *f, int letter, const char *name, const char *arg, const char *help);

/*
 * Handles a shared option returned by getopt_long.  Returns 1 when handled,
 * 0 when c is not a shared option, -1 on a bad value (message printed).
 */
int cli_global_option(cli_opts *o, int c, const char *arg);

/* A pipeline and its output options: --steps, -f, -q, --strip. */
typedef struct cli_spec {
    ip_step steps[IP_MAX_STEPS];    /* --steps */
    unsigned nsteps;                /* entries used */
    ip_output output;               /* -f, -q, --strip */
    int have_format;                /* -f was given */
} cli_spec;


/* Like cli_global_option, for the pipeline options. */
int cli_spec_option(cli_spec *sp, int c, const char *arg);
/* The ip_task_spec that sp describes (pointing into sp). */
ip_task_spec cli_task_spec(const cli_spec *sp);

/* Connects as o says.  NULL with a message in *why (caller frees). */
CLIENT *cli_connect(const cli_opts *o, char **why);
/*
 * -H may name several servers (a,b,c): cli_connect takes the first that
 * answers (each keeps its own tasks), cli_connect_spread the least loaded
 * (synchronous calls, which any of them can answer).
 */
#define CLI_MAX_HOSTS 16
CLIENT *cli_connect_spread(const cli_opts *o, char **why);
CLIENT *cli_connect_spread_or_say(const cli_opts *o);
/* Is mode one of --auth's Kerberos kinds (krb5, krb5i, krb5p)? */
int cli_auth_krb5(const char *mode);
void cli_disconnect(CLIENT *clnt);
/* 0, or -1 having said that what (a command) cannot go over UDP, which o asks for. */
int cli_require_tcp(const cli_opts *o, const char *what);

/* cli_connect, printing the reason on failure (the CLI's top level only). */
CLIENT *cli_connect_or_say(const cli_opts *o);

/* Reads a whole file (at most max bytes).  0, or -1 with errno-style text in why. */
int cli_read_file(const char *path, size_t max, char **data, size_t *len,
                  char *why, size_t whylen);
/* Writes data to path through a temporary file and a rename; "-" is stdout. */
int cli_write_file(const char *path, const void *data, size_t len,
                   char *why, size_t whylen);
/*
 * An input read in pieces, never whole: a regular file, or standard input
 * ("-"; a pipe is first copied, a piece at a time, into an unlinked file in
 * $TMPDIR).  open: 0, or -1 with errno-style text in why.
 */
typedef struct cli_input {
    int fd;                     /* -1 once closed */
    uint64_t base;              /* where its bytes start in fd */
    uint64_t size;              /* its bytes */
} cli_input;
int cli_input_open(const char *path, cli_input *in, char *why, size_t whylen);
/* n bytes at off into buf; -1 also when the file has shrunk. */
int cli_input_pread(const cli_input *in, uint64_t off, void *buf, size_t n, char *why,
                    size_t whylen);
/* The whole input into *data (malloc'ed): for an image sent inside one call, max bytes at most. */
int cli_input_slurp(const cli_input *in, size_t max, char **data, char *why, size_t whylen);
void cli_input_close(cli_input *in);
/*
 * An output written in pieces: into PATH.tmp.PID.N (made by the first
 * write), renamed to PATH by commit, removed by abort or when a signal
 * ends the process; "-" is standard output, written as it comes.  The
 * calls that fail give errno-style text in why; after a failure, abort.
 */
typedef struct cli_output {
    const char *path;           /* the final name, or "-" */
    char *tmp;                  /* the temporary file's (malloc'ed), once made */
    int fd;                     /* -1 until the first write */
    int to_stdout;              /* path is "-" */
    int slot;                   /* in the list a signal removes; -1: none */
    uint64_t written;           /* bytes so far */
} cli_output;
void cli_output_init(cli_output *w, const char *path);
int cli_output_write(cli_output *w, const void *data, size_t len, char *why, size_t whylen);
int cli_output_commit(cli_output *w, char *why, size_t whylen);
void cli_output_abort(cli_output *w);
/* cli_output_write as a proto_fetch_sink; ctx is the cli_output. */
int cli_output_sink(void *ctx, const void *data, size_t len, uint64_t offset, uint64_t total,
                    char *why, size_t whylen);
/* Removes the temporary files being written (async-signal-safe: for a handler about to exit). */
void cli_output_unlink_all(void);
int cli_is_dir(const char *path);
/* Are a and b names of one existing file (symbolic links followed)? */
int cli_same_file(const char *a, const char *b);
/* An image file (or - for stdin) into im (ip_image_val malloc'ed).  0, or -1 having said why. */
int cli_read_image(const char *path, ip_image *im);
/* DIR/NAME, without a doubled slash when DIR ends in one (malloc'ed, NULL if out of memory). */
char *cli_path_join(const char *dir, const char *name);
/*
 * Where the result of input goes in folder dir: DIR/STEM.EXT, the input's
 * name with its extension replaced by ext, or with ".out" added when ext is
 * NULL (a format this client does not know: never the input's own name)
 * (malloc'ed, NULL if out of memory).  Every command that writes into a
 * folder names its files this way.
 */
char *cli_output_path(const char *dir, const char *input, const char *ext);
/*
 * Refuses, before anything is sent, a run in which two of the n inputs'
 * results would get one name in folder dir ("-": standard output, one
 * input), or a result would replace its own input: 0, or -1 having said
 * which.  format is the output format
 * asked for; IP_FMT_AUTO guesses each input's own from its name.
 */
int cli_check_outputs(const char *dir, char *const *inputs, size_t n, ip_format format);
/*
 * What a run has written, so a later input never overwrites an earlier
 * one's result (the server chooses the format from an image's content,
 * which a name can belie).  claim: 0 to go on writing dest, or -1 when
 * it must not be written: *earlier is the input whose result is there, or
 * NULL when out of memory.  Starts zeroed.
 */
typedef struct cli_written {
    struct { char *dest, *input; } *items;
    size_t n, cap;
} cli_written;
int cli_written_claim(cli_written *w, const char *dest, const char *input,
                      const char **earlier);
void cli_written_free(cli_written *w);

/* Subcommands. */
int cmd_ping(cli_opts *o, int argc, char **argv);
int cmd_info(cli_opts *o, int argc, char **argv);
int cmd_stats(cli_opts *o, int argc, char **argv);
int cmd_identify(cli_opts *o, int argc, char **argv);
int cmd_image(cli_opts *o, int argc, char **argv);
int cmd_task(cli_opts *o, int argc, char **argv);
int cmd_submit(cli_opts *o, int argc, char **argv);

int cmd_batch(cli_opts *o, int argc, char **argv);

/*
 * report.c: what went wrong.  cli_error prints "imgproc: MESSAGE" on stderr
 * (a trailing newline in fmt is optional) and keeps MESSAGE, so that a
 * --json document can carry it as the error of the input that failed;
 * cli_error_status adds the server's status when the failure was its
 * refusal.  cli_note says something that is not a failure (--verbose).
 */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_error_status(ip_status st);
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "usage: SYNOPSIS" on stderr, kept as cli_error keeps its message. */
void cli_usage(const char *synopsis);
void cli_error_clear(void);
const char *cli_last_error(void);
/*
 * --json prints one document whatever happens.  A command calls
 * cli_json_begin when it starts its document; when it ends without
 * one (a usage error, no server), main prints {"ok": false, ...} for it.
 */
void cli_json_begin(void);
int cli_json_begun(void);
/* The name the fallback document gives the command ("task status"), when not argv's. */
void cli_json_command(const char *name);
/*
 * The fallback: {"command", "exit": rc, "ok": false, "status", "error"} on
 * stdout, unless a document was begun.  main calls it for every failure.
 */
void cli_json_fallback(const char *command, int rc);
/*
 * --json: Ctrl-C (or SIGTERM) ends the command with exit 130 and what its
 * document still needs.  interruptible installs the handler, its tail the
 * fallback object; a command that begins a long document sets its own tail
 * (flushing stdout) each time it has printed an item, with what finishes
 * the document from there.  segs must live until the next call.
 */
typedef struct cli_seg {
    const char *text;
    size_t len;
} cli_seg;
void cli_json_interruptible(const char *command);
void cli_json_tail(const cli_seg *segs, size_t n);
/*
 * The tail of a --json list of inputs: "[", then each input's object (at
 * first {"file", "ok": false, "error": "interrupted"}; set replaces one,
 * say with its task's id) and what follows it.  from makes the tail the
 * list from input i on (begun: "[" and the inputs before i are printed).
 */
typedef struct cli_json_list {
    cli_seg *segs;              /* [0] "[", then one per input */
    char **texts;               /* the inputs' texts (malloc'ed) */
    size_t n;
} cli_json_list;
int cli_json_list_init(cli_json_list *l, char **files, size_t n);
int cli_json_list_set(cli_json_list *l, size_t i, const char *object);
void cli_json_list_from(cli_json_list *l, size_t i, int begun);
void cli_json_list_free(cli_json_list *l);
/* The fields of a failed object: "ok": false, "status": ..., "error": the last error (else fallback). */
void cli_json_failure(FILE *f, const char *fallback);
/*
 * {"file": PATH, "ok": false, ...} for an input that failed; an input never
 * tried because the server had gone (no error kept since cli_error_clear)
 * says so.
 */
void cli_json_file_failed(FILE *f, const char *path);

/*
 * One input of a command that takes many: prints its result (a --json
 * object on success), says what went wrong otherwise.  EXIT_OK, EXIT_FAILED
 * (this input only) or EXIT_RPC (the server is gone).
 */
typedef int (*cli_input_fn)(const cli_opts *o, CLIENT *clnt, const char *path, void *ctx);
/*
 * Runs one on each of files[0..n-1] in order, as identify and the image
 * commands do: --json makes it one list, a failed input an object with its
 * error; once the server is gone (or clnt is NULL: never reached) the rest
 * are listed as failed without being tried.  The exit code of the worst.
 */
int cli_each_input(const cli_opts *o, CLIENT *clnt, char **files, int n, cli_input_fn one,
                   void *ctx);

/*
 * progress.c: one line on stderr for a long upload, download or wait,
 * drawn only on a terminal, without --quiet, and once the job has lasted
 * a second ($IMGPROC_PROGRESS_DELAY); end clears it.
 */
typedef struct cli_progress {
    const char *verb;           /* what is going on: "sending", "waiting for"... */
    char name[128];             /* to what: the file, the task */
    int on;                     /* stderr is a terminal and not --quiet */
    int drawn;                  /* a line is on the screen */
    double t0;                  /* when the job started */
    double phase_t0;            /* when its verb last changed (rates count from there) */
    double show_after;          /* no line before this */
    double last;                /* when it was last drawn */
} cli_progress;
void cli_progress_start(cli_progress *p, const cli_opts *o, const char *verb, const char *name);
/* A new stretch of the same job ("receiving" after "sending"): rates start again. */
void cli_progress_phase(cli_progress *p, const char *verb);
void cli_progress_bytes(cli_progress *p, uint64_t done, uint64_t total);
void cli_progress_percent(cli_progress *p, unsigned percent, const char *state);
void cli_progress_end(cli_progress *p);
/* Clears the line of a bar on the screen, for a message (it is drawn again later). */
void cli_progress_interrupt(void);
/* cli_progress_bytes as a tio_progress_fn; ctx is the cli_progress. */
void cli_progress_tio(void *ctx, uint64_t done, uint64_t total);
/*
 * clnt_call, with progress: the image bytes going out and the result's
 * coming back are counted on p as the XDR stream moves them (NULL p: a
 * plain call).
 */
enum clnt_stat cli_call(CLIENT *clnt, rpcproc_t proc, xdrproc_t xargs, void *args,
                        xdrproc_t xres, void *res, cli_progress *p);

/* "cannot reach...: RPC: Timed out" without the leading ": ". */
const char *cli_rpc_error(CLIENT *clnt);

/*
 * taskio.c: the loops behind the task calls.  They never print: each
 * returns an exit code (EXIT_OK, EXIT_FAILED when the server refused,
 * EXIT_RPC when the call failed) and puts the reason into why.
 */
#define TIO_INLINE_MAX (16u << 20)  /* larger images go up in chunks (TASK_UPLOAD) */
/* The largest image to send inside one call: TIO_INLINE_MAX or the server's limit. */
uint64_t tio_inline_limit(CLIENT *clnt);
/* Told the bytes moved so far, and the total; NULL for no one. */
typedef void (*tio_progress_fn)(void *ctx, uint64_t done, uint64_t total);
/* Sends data for task id from wherever the server has got to; checks its SHA-256. */
int tio_upload(CLIENT *clnt, ip_task_id id, const char *data, uint64_t len,
               tio_progress_fn progress, void *ctx, char *why, size_t whylen);
/*
 * tio_upload from a file, read a chunk (IP_MAX_CHUNK) at a time as it goes
 * out; the SHA-256 is computed as the file is read, never holding it.
 */
int tio_upload_input(CLIENT *clnt, ip_task_id id, const cli_input *in,
                     tio_progress_fn progress, void *ctx, char *why, size_t whylen);
/* The whole result of task id into *data (malloc'ed, caller frees); its facts into *facts. */
int tio_fetch(CLIENT *clnt, ip_task_id id, char **data, uint64_t *len, ip_task_chunk *facts,
              tio_progress_fn progress, void *ctx, char *why, size_t whylen);
/*
 * The result of task id written to dest ("-": standard output) a chunk at
 * a time as it arrives, through a temporary file renamed at the end (see
 * cli_output): on any failure nothing is left under dest's name or the
 * temporary one.  Its facts into *facts (NULL: not wanted).  When the
 * failure was writing, not fetching, *local is set to 1 (why says).
 */
int tio_fetch_file(CLIENT *clnt, ip_task_id id, const char *dest, ip_task_chunk *facts,
                   tio_progress_fn progress, void *ctx, int *local, char *why, size_t whylen);
/* The reason of a failed call, or of a refusal: EXIT_RPC and EXIT_FAILED. */
int tio_rpc_failed(CLIENT *clnt, char *why, size_t whylen);
int tio_refused(ip_status st, const char *msg, char *why, size_t whylen);

#endif
