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
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "server.h"

static int stop_fd = -1;        /* the signal handler's only way out */

static void
on_signal(int sig)
{
    ssize_t n;

    (void)sig;
    n = write(stop_fd, "x", 1);
    (void)n;
}

/* What the flags must agree on, once read; the default addresses.  0, or 2 (usage). */
static int
check_args(srv *s)
{
    srv_config *c = &s->cfg;

    if (c->max_inflight_bytes < c->max_request_bytes) {
        srv_log(SRV_LOG_ERROR, "--max-inflight-bytes (%llu) must hold at least one call "
                "of --max-request-bytes (%llu)\n", (unsigned long long)c->max_inflight_bytes,
                (unsigned long long)c->max_request_bytes);
        return 2;
    }
    if (c->program < 0x20000000 || c->program > 0x3FFFFFFF)
        srv_log(SRV_LOG_WARNING, "program 0x%lX is outside the user range "
                "0x20000000-0x3FFFFFFF\n", (unsigned long)c->program);
    for (int i = 0; i < c->nadmins; i++)
        if (!strchr(c->admins[i], '@')) {
            srv_log(SRV_LOG_ERROR, "--admin %s: a principal with its realm, such as "
                    "%s@EXAMPLE.ORG\n", c->admins[i], c->admins[i]);
            return 2;
        }
    if (c->nadmins && !c->krb5_service) {
        srv_log(SRV_LOG_ERROR, "--admin names Kerberos principals: it needs --krb5-service "
                "(uid 0 on the local socket is an admin without it)\n");
        return 2;
    }
    if (c->krb5_service && strchr(c->krb5_service, '/')) {
        srv_log(SRV_LOG_ERROR, "--krb5-service %s: write SERVICE@HOST (imgproc@%s), not the "
                "principal\n", c->krb5_service, "server.example.org");
        return 2;
    }
    if (c->local_socket && strcmp(c->local_socket, "none") != 0 && c->local_socket[0] != '/') {
        srv_log(SRV_LOG_ERROR, "--local-socket %s: an absolute path (rpcbind gives it to "
                "clients as it is)\n", c->local_socket);
        return 2;
    }
    for (int i = 0; i < c->ntrust_sys; i++)
        if (srv_net_holds_loopback(&c->trust_sys[i]))
            srv_log(SRV_LOG_WARNING, "--trust-sys-from: network %d includes this machine's "
                    "loopback: any local user may then claim any uid over TCP; the local "
                    "socket already proves who local users are\n", i + 1);
    if (c->nlisten == 0) {
        c->listen_default = 1;
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
    const char *sd = getenv("STATE_DIRECTORY");

    /* systemd's StateDirectory=: a colon-separated list; the first is ours. */
    if (sd && *sd) {
        snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(sd, ":"), sd);
        return buf;
    }
    if (geteuid() == 0)
        return "/var/lib/imgprocd";
    if (xdg && *xdg)
        snprintf(buf, sizeof(buf), "%s/imgprocd", xdg);
    else
        snprintf(buf, sizeof(buf), "%s/.local/state/imgprocd", home && *home ? home : ".");
    return buf;
}

/* The local socket when --local-socket is not given.  Static storage. */
static const char *
default_local_socket(const char *state_dir)
{
    static char buf[4096];
    const char *rd = getenv("RUNTIME_DIRECTORY");

    /* systemd's RuntimeDirectory=, like StateDirectory=, may be a list. */
    if (rd && *rd)
        snprintf(buf, sizeof(buf), "%.*s/imgprocd.sock", (int)strcspn(rd, ":"), rd);
    else
        snprintf(buf, sizeof(buf), "%s/imgprocd.sock", state_dir);
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
        if (ss.ss_family == AF_LOCAL)
            printf(" local:%s", ((struct sockaddr_un *)&ss)->sun_path);
        else if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
                        sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            printf(strchr(host, ':') ? " %s:[%s]:%s" : " %s:%s:%s", s->listeners[i].netid,
                   host, port);
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
    s.started_ms = srv_now_ms();
    if ((rc = srv_parse_args(&s, argc, argv)) != 0)
        return rc;
    if (s.cfg.syslog)               /* before the first message about the settings */
        srv_log_syslog();
    if ((rc = check_args(&s)) != 0)
        return rc;
    if (!s.tcfg.state_dir)
        s.tcfg.state_dir = default_state_dir();
    if (!s.cfg.local_socket)
        s.cfg.local_socket = default_local_socket(s.tcfg.state_dir);
    srv_settle(&s);
    if (s.cfg.krb5_service && kerberos_setup(&s, &why) != 0) {
        srv_log(SRV_LOG_ERROR, "%s\n", why ? why : "cannot set Kerberos up");
        free(why);
        return 1;
    }

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
    /* Type=notify: registered with rpcbind, so a unit ordered after this one
     * finds the program.  Nothing happens outside systemd. */
    sd_notify(0, "READY=1");
    rc = net_run(&s) == 0 ? 0 : 1;
    sd_notify(0, "STOPPING=1");
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
