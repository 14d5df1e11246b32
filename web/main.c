/*
 * imgproc-web - the HTTP gateway: speaks HTTP to the world and ONC RPC to
 * imgprocd, found through rpcbind like any client.  civetweb serves the
 * requests, a thread each (so the blocking RPC calls fit); each thread keeps
 * its own RPC connection.  Steps and formats are parsed by the same tables
 * as the command line's (common/).
 *
 *   GET  /v1/info                      SERVER_INFO as JSON
 *   POST /v1/process?steps=S&format=F  the image as the body; the result back
 *   /v1/tasks...                       tasks (tasks.c), in a session's name (session.c)
 *   /v1/events                         the WebSocket (events.c)
 *   /RPC2                              the labs' XML-RPC calls (xmlrpc.c)
 *   /                                  the page (page.c)
 *
 * Errors are application/problem+json (RFC 9457) carrying the service's
 * status name.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>

#include <systemd/sd-daemon.h>

#include "proto.h"
#include "web.h"

static web_config cfg = {
    .listen = "127.0.0.1:8080",
    .host = "localhost",
    .program = IMGPROC,
    .threads = 8,
    .max_body = 64u << 20,
    .max_files = 100,
    .max_websockets = 4,
    .timeout = 120,
    .io_timeout = 10,
};

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: imgproc-web [options]\n"
               "The HTTP gateway to imgprocd: REST under /v1, WebSocket, XML-RPC (see imgproc-web(8)).\n\n");
    proto_help_line(f, "  --listen ADDR:PORT", "where to serve HTTP (default 127.0.0.1:8080)");
    proto_help_line(f, "  -H, --host HOST", "imgprocd's host, found through rpcbind "
                    "(default localhost)");
    proto_help_line(f, "  -p, --port PORT", "imgprocd's port, without rpcbind");
    proto_help_line(f, "  --program N|NAME", "RPC program: a number, or a name in /etc/rpc "
                    "(default 0x20494D47)");
    proto_help_line(f, "  --threads N", "requests served at once, each with its own "
                    "connection to imgprocd; the WebSockets' images take 5 more: keep "
                    "N + 5 under imgprocd's --max-connections-per-address (default 8)");
    proto_help_line(f, "  --max-body N", "largest request body, WebSocket message or "
                    "multipart form, in bytes; K, M, G suffixes (default 64M)");
    proto_help_line(f, "  --max-files N", "files in one multipart request (default 100)");
    proto_help_line(f, "  --max-websockets N", "WebSockets open at once, each holding a "
                    "thread of its own (default 4)");
    proto_help_line(f, "  --timeout S", "seconds to wait for imgprocd's reply: a request's "
                    "longest wait (default 120)");
    proto_help_line(f, "  --io-timeout S", "seconds a client may leave its connection "
                    "silent, mid-request or idle between requests, before it is closed: a "
                    "thread serves each connection, so slow clients hold threads (default "
                    "10)");
    proto_help_line(f, "  -v, --verbose", "log one line per request to stderr");
    proto_help_line(f, "  -h, --help", "this help");
    proto_help_line(f, "  -V, --version", "print the version");
}

/* "64M" -> 67108864.  0, or -1 when not a size. */
static int
parse_size(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    else if (*end == 'G' || *end == 'g')
        v <<= 30, end++;
    if (*end || v == 0)
        return -1;
    *out = v;
    return 0;
}

/* The command line into cfg.  -1 to go on, or an exit code. */
static int
parse_args(int argc, char **argv)
{
    enum { O_LISTEN = 1000, O_PROGRAM, O_THREADS, O_MAX_BODY, O_MAX_FILES, O_MAX_WS, O_TIMEOUT,
           O_IO_TIMEOUT };
    static const struct option opts[] = {
        { "listen", required_argument, NULL, O_LISTEN },
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "program", required_argument, NULL, O_PROGRAM },
        { "threads", required_argument, NULL, O_THREADS },
        { "max-body", required_argument, NULL, O_MAX_BODY },
        { "max-files", required_argument, NULL, O_MAX_FILES },
        { "max-websockets", required_argument, NULL, O_MAX_WS },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "io-timeout", required_argument, NULL, O_IO_TIMEOUT },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    unsigned long v;
    int c;

    while ((c = getopt_long(argc, argv, "H:p:vhV", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            cfg.listen = optarg;
            break;
        case 'H':
            cfg.host = optarg;
            break;
        case 'p':
            if (proto_parse_uint(optarg, 65535, &v) || v == 0) {
                fprintf(stderr, "imgproc-web: invalid --port '%s'\n", optarg);
                return 2;
            }
            cfg.port = (int)v;
            break;
        case O_PROGRAM: {
            unsigned long p;
            if (proto_parse_program(optarg, &p)) {
                fprintf(stderr, "imgproc-web: invalid --program '%s': a number, or a name "
                        "in /etc/rpc\n", optarg);
                return 2;
            }
            cfg.program = (rpcprog_t)p;
            break;
        }
        case O_THREADS:
            if (proto_parse_uint(optarg, 1024, &v) || v == 0) {
                fprintf(stderr, "imgproc-web: --threads takes 1..1024, not '%s'\n", optarg);
                return 2;
            }
            cfg.threads = (unsigned)v;
            break;
        case O_MAX_BODY:
            if (parse_size(optarg, &cfg.max_body)) {
                fprintf(stderr, "imgproc-web: invalid --max-body '%s'\n", optarg);
                return 2;
            }
            break;
        case O_MAX_FILES:
            if (proto_parse_uint(optarg, 100000, &v) || v == 0) {
                fprintf(stderr, "imgproc-web: --max-files takes 1..100000, not '%s'\n", optarg);
                return 2;
            }
            cfg.max_files = (unsigned)v;
            break;
        case O_MAX_WS:
            if (proto_parse_uint(optarg, 1024, &v)) {
                fprintf(stderr, "imgproc-web: --max-websockets takes 0..1024, not '%s'\n",
                        optarg);
                return 2;
            }
            cfg.max_websockets = (unsigned)v;
            break;
        case O_TIMEOUT:
            if (proto_parse_uint(optarg, 86400, &v) || v == 0) {
                fprintf(stderr, "imgproc-web: invalid --timeout '%s'\n", optarg);
                return 2;
            }
            cfg.timeout = (unsigned)v;
            break;
        case O_IO_TIMEOUT:
            if (proto_parse_uint(optarg, 3600, &v) || v == 0) {
                fprintf(stderr, "imgproc-web: invalid --io-timeout '%s'\n", optarg);
                return 2;
            }
            cfg.io_timeout = (unsigned)v;
            break;
        case 'v':
            cfg.verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("imgproc-web %s\n", IMGPROC_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "imgproc-web: takes no arguments, not '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

int
main(int argc, char **argv)
{
    struct mg_context *ctx;
    struct sigaction sa;
    int rc = parse_args(argc, argv);

    if (rc >= 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!(ctx = web_start(&cfg)))
        return 1;
    printf("imgproc-web: ready: http://%s/ for program 0x%lX on %s\n", cfg.listen,
           (unsigned long)cfg.program, cfg.host);
    fflush(stdout);
    sd_notify(0, "READY=1");        /* Type=notify; nothing outside systemd */
    while (!stopping)
        pause();
    sd_notify(0, "STOPPING=1");
    web_stop(ctx);
    return 0;
}
