/* client.h - the imgproc command-line client: shared options, connection, file helpers. */
#ifndef IMGPROC_CLIENT_H
#define IMGPROC_CLIENT_H

#include <getopt.h>
#include <rpc/rpc.h>
#include "imgproc.h"

/* Exit codes, documented in README.md and --help. */
enum {
    EXIT_OK = 0,                /* everything worked */
    EXIT_FAILED = 1,            /* at least one input failed (server said no, bad file) */
    EXIT_USAGE = 2,             /* wrong command line */
    EXIT_RPC = 3                /* the server could not be reached or the call failed */
};

/* Options every subcommand takes. */
typedef struct cli_opts {
    const char *host;           /* server host (-H, IMGPROC_HOST, localhost) */
    int port;                   /* fixed port, 0 = ask rpcbind */
    rpcprog_t program;          /* RPC program number */
    const char *proto;          /* "tcp" or "udp" */
    int timeout;                /* seconds per call */
    int verbose;                /* say more on stderr */
    int json;                   /* machine-readable output */
    const char *auth;           /* "sys" (default), "none", or "UID[@HOST]" to claim */
} cli_opts;

/* The long options shared by every subcommand, and their short letters. */
#define CLI_GLOBAL_SHORT "H:p:T:vh"
enum { CLI_O_PROGRAM = 1000, CLI_O_TIMEOUT, CLI_O_JSON, CLI_O_AUTH, CLI_O_FIRST_LOCAL };
#define CLI_GLOBAL_LONG                                          \
    { "host", required_argument, NULL, 'H' },                    \
    { "port", required_argument, NULL, 'p' },                    \
    { "transport", required_argument, NULL, 'T' },               \
    { "program", required_argument, NULL, CLI_O_PROGRAM },       \
    { "timeout", required_argument, NULL, CLI_O_TIMEOUT },       \
    { "json", no_argument, NULL, CLI_O_JSON },                   \
    { "auth", required_argument, NULL, CLI_O_AUTH },             \
    { "verbose", no_argument, NULL, 'v' },                       \
    { "help", no_argument, NULL, 'h' }

/* Text for the shared options in every --help. */
extern const char cli_global_help[];

/*
 * Handles a shared option returned by getopt_long.  Returns 1 when handled,
 * 0 when c is not a shared option, -1 on a bad value (message printed).
 */
int cli_global_option(cli_opts *o, int c, const char *arg);

/* Connects as o says.  NULL with a message in *why (caller frees). */
CLIENT *cli_connect(const cli_opts *o, char **why);
void cli_disconnect(CLIENT *clnt);
/* cli_connect, printing the reason on failure (the CLI's top level only). */
CLIENT *cli_connect_or_say(const cli_opts *o);

/* Reads a whole file (at most max bytes).  0, or -1 with errno-style text in why. */
int cli_read_file(const char *path, size_t max, char **data, size_t *len,
                  char *why, size_t whylen);
/* Writes data to path through a temporary file and a rename; "-" is stdout. */
int cli_write_file(const char *path, const void *data, size_t len,
                   char *why, size_t whylen);
int cli_is_dir(const char *path);

/* Subcommands. */
int cmd_ping(cli_opts *o, int argc, char **argv);
int cmd_info(cli_opts *o, int argc, char **argv);
int cmd_identify(cli_opts *o, int argc, char **argv);
int cmd_image(cli_opts *o, int argc, char **argv);
int cmd_task(cli_opts *o, int argc, char **argv);
int cmd_submit(cli_opts *o, int argc, char **argv);

/* "cannot reach...: RPC: Timed out" without the leading ": ". */
const char *cli_rpc_error(CLIENT *clnt);

#endif
