/* main.c - imgprocd: command line, start-up, signals and shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "server.h"

static int stop_fd = -1;        /* the signal handler's only way out */

static void
usage(FILE *f)
{
    fprintf(f,
"usage: imgprocd [options]\n"
"Serves the imgproc ONC RPC program (see imgproc.x) over TCP and UDP.\n"
"\n"
"  --program N            RPC program number (default 0x%X)\n"
"  --port N               serve on port N (default: any free port)\n"
"  --listen ADDR          address to serve on; repeatable (default 127.0.0.1 and ::1)\n"
"  --no-rpcbind           do not register with rpcbind (clients then need -p PORT)\n"
"  --max-request-bytes N  largest image a call carries, in bytes; K, M, G suffixes\n"
"                         (default 64M; a task's upload chunks are 1M regardless)\n"
"  --max-pixels N         largest width x height of any image (default 150M)\n"
"  --max-steps N          longest pipeline (default %d)\n"
"  --max-connections N    TCP connections served at once (default 64); when full,\n"
"                         the quietest connection not in a call is closed\n"
"  --max-connections-per-address N  ... from one address, an IPv6 /64 counting as\n"
"                         one (default 16; 0 = no cap)\n"
"  --max-inflight-bytes N image bytes of all calls being received or worked on;\n"
"                         beyond it a call waits up to 10 s, then is refused as busy\n"
"                         (default 512M)\n"
"  --min-receive-rate N   a call must arrive at N bytes/s or more, measured over\n"
"                         10 s, or its connection is closed (default 16K; 0 = off)\n"
"  --idle-timeout S       close a TCP connection silent for S seconds (default 300)\n"
"  --max-request-seconds S  stop a synchronous call's image work after S seconds\n"
"                         (too-large), or when its caller hangs up (default 60)\n"
"  --max-blur-work N      refuse a blur whose sigma x the image's megapixels is\n"
"                         over N (too-large; default 2000: sigma 220 on 9 MP)\n"
"\n"
"Tasks (TASK_* procedures):\n"
"  --state-dir DIR        task database and images (default /var/lib/imgprocd for\n"
"                         root, else $XDG_STATE_HOME/imgprocd or ~/.local/state/imgprocd)\n"
"  --workers N            tasks run at once (default: the number of cores)\n"
"  --queue-size N         queued tasks at most; more are refused as busy (default 1000)\n"
"  --max-tasks N          tasks kept at most, in any state (default 100000)\n"
"  --result-ttl S         keep finished tasks S seconds (default 86400)\n"
"  --max-upload-bytes N   largest image a task may upload (default 1G)\n"
"  --max-task-seconds S   stop a task's pipeline after S seconds; it fails (default 900)\n"
"  -v, --verbose          log one line per request to stderr\n"
"  -h, --help             this help\n"
"  -V, --version          print the version\n"
"\n"
"Once serving, it prints 'imgprocd: ready ...' on stdout.  SIGINT or SIGTERM\n"
"unregisters from rpcbind and stops after the calls in progress.\n",
            (unsigned)IMGPROC, IP_MAX_STEPS);
}

static void
on_signal(int sig)
{
    ssize_t n;

    (void)sig;
    n = write(stop_fd, "x", 1);
    (void)n;
}

/* "64M" -> 67108864.  0 or -1. */
static int
parse_size(const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    errno = 0;
    if (!text[0] || text[0] == '-')
        return -1;
    v = strtoull(text, &end, 0);
    if (errno || end == text)
        return -1;
    switch (*end) {
    case 'K': case 'k': mult = 1ULL << 10; end++; break;
    case 'M': case 'm': mult = 1ULL << 20; end++; break;
    case 'G': case 'g': mult = 1ULL << 30; end++; break;
    default: break;
    }
    if (*end || v == 0 || v > max / mult)
        return -1;
    *out = v * mult;
    return 0;
}

static int
bad_value(const char *opt, const char *val)
{
    srv_log(SRV_LOG_ERROR, "invalid value '%s' for %s\n", val, opt);
    return 2;
}

static int
parse_args(srv *s, int argc, char **argv)
{
    enum { O_PROGRAM = 256, O_PORT, O_LISTEN, O_NORPCBIND, O_MAXREQ, O_MAXPX,
           O_MAXSTEPS, O_MAXCONN, O_IDLE, O_STATEDIR, O_WORKERS, O_QUEUE, O_MAXTASKS,
           O_TTL, O_MAXUPLOAD, O_MAXREQSEC, O_MAXTASKSEC, O_INFLIGHT, O_PERADDR,
           O_MINRATE, O_BLURWORK };
    static const struct option opts[] = {
        { "program", required_argument, NULL, O_PROGRAM },
        { "port", required_argument, NULL, O_PORT },
        { "listen", required_argument, NULL, O_LISTEN },
        { "no-rpcbind", no_argument, NULL, O_NORPCBIND },
        { "max-request-bytes", required_argument, NULL, O_MAXREQ },
        { "max-pixels", required_argument, NULL, O_MAXPX },
        { "max-steps", required_argument, NULL, O_MAXSTEPS },
        { "max-connections", required_argument, NULL, O_MAXCONN },
        { "max-connections-per-address", required_argument, NULL, O_PERADDR },
        { "max-inflight-bytes", required_argument, NULL, O_INFLIGHT },
        { "min-receive-rate", required_argument, NULL, O_MINRATE },
        { "max-blur-work", required_argument, NULL, O_BLURWORK },
        { "idle-timeout", required_argument, NULL, O_IDLE },
        { "state-dir", required_argument, NULL, O_STATEDIR },
        { "workers", required_argument, NULL, O_WORKERS },
        { "queue-size", required_argument, NULL, O_QUEUE },
        { "max-tasks", required_argument, NULL, O_MAXTASKS },
        { "result-ttl", required_argument, NULL, O_TTL },
        { "max-upload-bytes", required_argument, NULL, O_MAXUPLOAD },
        { "max-request-seconds", required_argument, NULL, O_MAXREQSEC },
        { "max-task-seconds", required_argument, NULL, O_MAXTASKSEC },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    srv_config *c = &s->cfg;
    tasks_config *tc = &s->tcfg;
    uint64_t v;
    int o;

    while ((o = getopt_long(argc, argv, "vhV", opts, NULL)) != -1) {
        switch (o) {
        case O_PROGRAM:
            if (parse_size(optarg, 0xFFFFFFFFu, &v))
                return bad_value("--program", optarg);
            c->program = (rpcprog_t)v;
            break;
        case O_PORT:
            if (parse_size(optarg, 65535, &v))
                return bad_value("--port", optarg);
            c->port = (int)v;
            break;
        case O_LISTEN:
            if (c->nlisten == SRV_MAX_LISTEN) {
                srv_log(SRV_LOG_ERROR, "at most %d --listen addresses\n", SRV_MAX_LISTEN);
                return 2;
            }
            c->listen[c->nlisten++] = optarg;
            break;
        case O_NORPCBIND:
            c->use_rpcbind = 0;
            break;
        case O_MAXREQ:
            if (parse_size(optarg, IP_MAX_IMAGE, &v))
                return bad_value("--max-request-bytes (at most 64M)", optarg);
            c->max_request_bytes = v;
            break;
        case O_MAXPX:
            if (parse_size(optarg, (uint64_t)IP_MAX_DIMENSION * IP_MAX_DIMENSION, &v))
                return bad_value("--max-pixels", optarg);
            c->max_pixels = v;
            break;
        case O_MAXSTEPS:
            if (parse_size(optarg, IP_MAX_STEPS, &v))
                return bad_value("--max-steps (1..16)", optarg);
            c->max_steps = (unsigned)v;
            break;
        case O_MAXCONN:
            if (parse_size(optarg, 10000, &v))
                return bad_value("--max-connections", optarg);
            c->max_connections = (unsigned)v;
            break;
        case O_PERADDR:
            if (strcmp(optarg, "0") != 0 && parse_size(optarg, 10000, &v))
                return bad_value("--max-connections-per-address (0 = no cap)", optarg);
            c->max_per_address = strcmp(optarg, "0") == 0 ? 0 : (unsigned)v;
            break;
        case O_INFLIGHT:
            if (parse_size(optarg, 1ULL << 40, &v))
                return bad_value("--max-inflight-bytes", optarg);
            c->max_inflight_bytes = v;
            break;
        case O_MINRATE:
            if (strcmp(optarg, "0") != 0 && parse_size(optarg, 1ULL << 30, &v))
                return bad_value("--min-receive-rate (0 = off)", optarg);
            c->min_receive_rate = strcmp(optarg, "0") == 0 ? 0 : (unsigned)v;
            break;
        case O_BLURWORK:
            if (parse_size(optarg, 100000000, &v))
                return bad_value("--max-blur-work", optarg);
            c->max_blur_work = (unsigned)v;
            break;
        case O_MAXREQSEC:
            if (parse_size(optarg, 86400, &v) || v == 0)
                return bad_value("--max-request-seconds (1..86400)", optarg);
            c->max_request_seconds = (unsigned)v;
            break;
        case O_MAXTASKSEC:
            if (parse_size(optarg, 7 * 86400, &v) || v == 0)
                return bad_value("--max-task-seconds (1..604800)", optarg);
            tc->max_task_seconds = (unsigned)v;
            break;
        case O_IDLE:
            if (parse_size(optarg, 86400, &v))
                return bad_value("--idle-timeout", optarg);
            c->idle_seconds = (unsigned)v;
            break;
        case O_STATEDIR:
            if (!*optarg)
                return bad_value("--state-dir", optarg);
            tc->state_dir = optarg;
            break;
        case O_WORKERS:
            if (parse_size(optarg, 256, &v))
                return bad_value("--workers (1..256)", optarg);
            tc->workers = (unsigned)v;
            break;
        case O_QUEUE:
            if (parse_size(optarg, 1000000, &v))
                return bad_value("--queue-size", optarg);
            tc->max_queued = (unsigned)v;
            break;
        case O_MAXTASKS:
            if (parse_size(optarg, 100000000, &v))
                return bad_value("--max-tasks", optarg);
            tc->max_tasks = (unsigned)v;
            break;
        case O_TTL:
            if (parse_size(optarg, 10u * 365 * 86400, &v))
                return bad_value("--result-ttl", optarg);
            tc->result_ttl = (unsigned)v;
            break;
        case O_MAXUPLOAD:
            if (parse_size(optarg, 1ULL << 40, &v))
                return bad_value("--max-upload-bytes", optarg);
            tc->max_upload_bytes = v;
            break;
        case 'v':
            c->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("imgprocd %s\n", IMGPROC_VERSION);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        srv_log(SRV_LOG_ERROR, "unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (c->max_inflight_bytes < c->max_request_bytes) {
        srv_log(SRV_LOG_ERROR, "--max-inflight-bytes (%llu) must hold at least one call "
                "of --max-request-bytes (%llu)\n", (unsigned long long)c->max_inflight_bytes,
                (unsigned long long)c->max_request_bytes);
        return 2;
    }
    if (c->program < 0x20000000 || c->program > 0x3FFFFFFF)
        srv_log(SRV_LOG_WARNING, "program 0x%lX is outside the user range "
                "0x20000000-0x3FFFFFFF\n", (unsigned long)c->program);
    if (c->nlisten == 0) {
        c->listen[c->nlisten++] = "127.0.0.1";
        c->listen[c->nlisten++] = "::1";
    }
    return 0;
}

/* libtirpc sizes a table by the fd limit: keep it reasonable. */
static void
cap_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 65536) {
        rl.rlim_cur = 65536;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The state folder when --state-dir is not given.  Static storage. */
static const char *
default_state_dir(void)
{
    static char buf[4096];
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

    if (geteuid() == 0)
        return "/var/lib/imgprocd";
    if (xdg && *xdg)
        snprintf(buf, sizeof(buf), "%s/imgprocd", xdg);
    else
        snprintf(buf, sizeof(buf), "%s/.local/state/imgprocd", home && *home ? home : ".");
    return buf;
}

static void
print_ready(const srv *s)
{
    printf("imgprocd: ready: program 0x%lX version %d",
           (unsigned long)s->cfg.program, IMGPROC_V1);
    for (int i = 0; i < s->nlisteners; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[NI_MAXHOST], port[NI_MAXSERV];
        getsockname(s->listeners[i].fd, (struct sockaddr *)&ss, &sl);
        if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
                        sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            printf(" %s:%s:%s", s->listeners[i].netid, host, port);
    }
    printf("%s\n", s->cfg.use_rpcbind ? "" : " (not registered with rpcbind)");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    srv s;
    struct sigaction sa;
    char *why = NULL;
    int rc;

    /* glibc gives each thread its own heap ("arena", up to 8 per core); image
     * buffers freed in one are not reused by another, so a server of many
     * threads keeps growing.  Two arenas measured 100 MB instead of 119 after
     * the 9 MP benchmarks, and a 100 MP resize peaked at 110 MB, not 149.
     * MALLOC_ARENA_MAX in the environment still wins. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);
    srv_defaults(&s);
    if ((rc = parse_args(&s, argc, argv)) != 0)
        return rc;
    if (!s.tcfg.state_dir)
        s.tcfg.state_dir = default_state_dir();
    srv_settle(&s);

    cap_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(s.stop_pipe, O_CLOEXEC) < 0) {
        perror("imgprocd: pipe");
        return 1;
    }
    stop_fd = s.stop_pipe[1];
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (ops_init(argv[0])) {
        srv_log(SRV_LOG_ERROR, "cannot start libvips\n");
        return 1;
    }
    rc = 1;
    {
        /* A task's result comes back in chunks: it may be as large as an upload. */
        ops_limits tl = s.limits;
        tl.max_result_bytes = s.tcfg.max_upload_bytes > IP_MAX_IMAGE ?
                              s.tcfg.max_upload_bytes : IP_MAX_IMAGE;
        if (!(s.tasks = tasks_open(&s.tcfg, &tl, &why))) {
            srv_log(SRV_LOG_ERROR, "%s\n", why ? why : "cannot open the task store");
            free(why);
            goto cleanup;
        }
    }
    if (net_listen(&s, &why) != 0 ||
        (s.cfg.use_rpcbind && net_register(&s, &why) != 0)) {
        srv_log(SRV_LOG_ERROR, "%s\n", why ? why : "cannot start");
        free(why);
        goto cleanup;
    }
    print_ready(&s);
    rc = net_run(&s) == 0 ? 0 : 1;
    srv_log(SRV_LOG_VERBOSE, "stopping\n");

cleanup:
    if (s.cfg.use_rpcbind)
        net_unregister(&s);
    net_close(&s);
    tasks_stopping(s.tasks);
    tasks_close(s.tasks);
    ops_shutdown();
    return rc;
}
