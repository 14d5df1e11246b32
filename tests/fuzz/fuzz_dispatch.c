/*
 * fuzz_dispatch.c - libFuzzer harness: bytes in, through the server's real
 * transport and dispatch (net_serve_one), replies out, nothing leaked.
 *
 * Each input gets a fresh task store and its own connection: a socketpair
 * whose far end a peer thread writes the calls into and drains the replies
 * from.  frame.h says how an input becomes calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "frame.h"
#include "server.h"

#define RECORD_BUFFER (256 * 1024)  /* as net.c's connections */
/* Server settings lowered to keep one input's work short: images up to a
 * megapixel (--max-pixels), a call's or a task's work stopped after 2 s
 * (--max-request-seconds, --max-task-seconds), as the server stops it
 * after 60 s and 900 s. */
#define FUZZ_MAX_PIXELS 1000000
#define FUZZ_MAX_SECONDS 2

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The far end of the connection: the client's side. */
typedef struct peer {
    int fd;                     /* its socket */
    const uint8_t *data;        /* what it sends */
    size_t len;                 /* bytes in data */
    int hangup;                 /* shut its writing side once all is sent */
    int sent_fd;                /* written to once all is sent */
} peer;

static srv server;              /* what main() would set up, once */
static char state_dir[256];     /* the task store's folder, emptied after each input */

/* ---- the state folder */

static int
remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    if (ftw->level > 0)
        remove(path);
    return 0;
}

/* Empties the state folder, keeping the folder itself. */
static void
empty_state(void)
{
    nftw(state_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
remove_state(void)
{
    empty_state();
    rmdir(state_dir);
}

/*
 * In $FUZZ_STATE when set (run.sh gives each run one and removes it after:
 * a run that stops on a finding exits without atexit), else a tmpfs when
 * there is one: the store syncs every commit (synchronous=FULL).
 */
static int
make_state_dir(void)
{
    const char *base = getenv("FUZZ_STATE");

    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(state_dir, sizeof(state_dir), "%s/imgproc-fuzz.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(state_dir))
        return -1;
    atexit(remove_state);
    return 0;
}

/* ---- the task store */

/*
 * The task store, opened on an input's first call into it.  Each input
 * starts from an empty store (task ids from 1, nothing queued), so an input
 * does the same whatever ran before it; opening one costs 1-2 ms (SQLite,
 * two threads), which inputs that never touch tasks are spared.  A harness
 * that cannot open its store cannot go on: it aborts.
 */
static tasks *
store_for_input(void)
{
    char *why = NULL;
    ops_limits tl = server.limits;

    if (server.tasks)
        return server.tasks;
    /* As main() does: a task's result may be as large as an upload. */
    tl.max_result_bytes = server.tcfg.max_upload_bytes;
    server.tasks = tasks_open(&server.tcfg, &tl, &why);
    if (!server.tasks) {
        fprintf(stderr, "fuzz_dispatch: %s\n", why ? why : "cannot open the task store");
        abort();
    }
    return server.tasks;
}

static void
store_done(void)
{
    if (!server.tasks)
        return;
    tasks_stopping(server.tasks);
    tasks_close(server.tasks);
    server.tasks = NULL;
    empty_state();
}

/*
 * dispatch.c's calls into the task queue are wrapped at link time
 * (-Wl,--wrap=NAME for each, Makefile FUZZ_WRAP): the wrapper opens the
 * store, then calls the real function with it.  A name listed in one place
 * and not the other fails the link.  A new tasks_* call in dispatch.c that
 * is not wrapped here gets the NULL store and crashes at once.
 */
#define LAZY(fn, params, args) \
    void __real_##fn params; \
    void __wrap_##fn params; \
    void __wrap_##fn params { t = store_for_input(); __real_##fn args; }

LAZY(tasks_load, (tasks *t, unsigned *queued, unsigned *running), (t, queued, running))
LAZY(tasks_counts, (tasks *t, uint64_t by_state[IP_TASK_STATES], unsigned *workers,
                    unsigned *busy), (t, by_state, workers, busy))
LAZY(tasks_create, (tasks *t, const char *owner, const ip_task_create_args *a,
                    ip_task_create_res *res), (t, owner, a, res))
LAZY(tasks_upload, (tasks *t, const char *owner, const ip_task_upload_args *a,
                    ip_task_upload_res *res), (t, owner, a, res))
LAZY(tasks_start, (tasks *t, const char *owner, ip_task_id id, ip_task_res *res),
     (t, owner, id, res))
LAZY(tasks_status, (tasks *t, const char *owner, ip_task_id id, ip_task_info_res *res),
     (t, owner, id, res))
LAZY(tasks_result, (tasks *t, const char *owner, const ip_task_result_args *a,
                    ip_task_result_res *res), (t, owner, a, res))
LAZY(tasks_cancel, (tasks *t, const char *owner, ip_task_id id, ip_task_res *res),
     (t, owner, id, res))
LAZY(tasks_delete, (tasks *t, const char *owner, ip_task_id id, ip_task_res *res),
     (t, owner, id, res))
LAZY(tasks_list, (tasks *t, const char *owner, const ip_task_list_args *a,
                  ip_task_list_res *res), (t, owner, a, res))
LAZY(tasks_batch_add, (tasks *t, tasks_batch *b, const char *owner,
                       const ip_task_create_args *a), (t, b, owner, a))
LAZY(tasks_batch_collect, (tasks *t, tasks_batch *b, ip_batch_res *res), (t, b, res))

/*
 * TASK_WAIT blocks for up to IP_MAX_WAIT seconds when the task does not
 * change: a few such calls would turn the fuzzer's exec/s into minutes per
 * input.  Its wrapper waits 0 s: the rest of the procedure (lookup, owner,
 * state, reply) still runs.
 */
void __real_tasks_wait(tasks *t, const char *owner, const ip_task_wait_args *a,
                       int may_block, ip_task_info_res *res);
void __wrap_tasks_wait(tasks *t, const char *owner, const ip_task_wait_args *a,
                       int may_block, ip_task_info_res *res);
void
__wrap_tasks_wait(tasks *t, const char *owner, const ip_task_wait_args *a, int may_block,
                  ip_task_info_res *res)
{
    ip_task_wait_args now = *a;

    now.timeout = 0;
    __real_tasks_wait(store_for_input(), owner, &now, may_block, res);
    (void)t;
}

/* ---- start-up */

/* libvips warns on stderr about odd files, and hostile files are all odd:
 * thousands of lines a second would bury libFuzzer's report. */
static void
quiet(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)user;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    srv_defaults(&server);
    server.cfg.use_rpcbind = 0;
    server.cfg.max_pixels = FUZZ_MAX_PIXELS;
    server.cfg.max_request_seconds = FUZZ_MAX_SECONDS;
    server.tcfg.max_task_seconds = FUZZ_MAX_SECONDS;
    /* The server's request log, to see what an input did (README.md). */
    server.cfg.verbose = getenv("FUZZ_VERBOSE") != NULL;
    /* One worker: tasks run beside the calls, as in the server, on a 2-core CI. */
    server.tcfg.workers = 1;
    if (make_state_dir()) {
        perror("fuzz_dispatch: cannot make a state folder");
        exit(1);
    }
    server.tcfg.state_dir = state_dir;
    srv_settle(&server);
    if (pipe2(server.stop_pipe, O_CLOEXEC) < 0) {
        perror("fuzz_dispatch: pipe");
        exit(1);
    }
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, quiet, NULL);
    if (ops_init((*argv)[0])) {
        fprintf(stderr, "fuzz_dispatch: cannot start libvips\n");
        exit(1);
    }
    return 0;
}

/* ---- the connection */

/* The client's side: sends everything, reads and drops every reply, until
 * the server closes its end.  Never blocks on one direction while the
 * other could move, so a large reply cannot deadlock a large request. */
static void *
peer_main(void *arg)
{
    peer *p = arg;
    size_t off = 0;
    char sink[65536];

    fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
    if (p->len == 0) {
        if (p->hangup)
            shutdown(p->fd, SHUT_WR);
        if (write(p->sent_fd, "x", 1) < 0)
            abort();
    }
    for (;;) {
        struct pollfd pf = { p->fd, POLLIN | (off < p->len ? POLLOUT : 0), 0 };
        ssize_t n;

        if (poll(&pf, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if ((pf.revents & POLLOUT) && off < p->len) {
            n = write(p->fd, p->data + off, p->len - off);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                off = p->len;   /* the server has gone: nothing more to send */
            if (off == p->len) {
                if (p->hangup)
                    shutdown(p->fd, SHUT_WR);
                if (write(p->sent_fd, "x", 1) < 0)
                    abort();
            }
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            n = read(p->fd, sink, sizeof(sink));
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
        }
    }
    close(p->fd);
    return NULL;
}

/*
 * Is there a call to serve?  Waits until fd is readable (data, or the
 * peer's hangup: SVC_RECV then sees the end), or until the peer has sent
 * everything and all of it has been read.
 */
static int
more_to_serve(int fd, int sent_fd)
{
    for (;;) {
        struct pollfd pf[2] = { { fd, POLLIN, 0 }, { sent_fd, POLLIN, 0 } };

        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        if (pf[0].revents)
            return 1;
        if (pf[1].revents) {
            /* Sent before the flag was raised: readable now, or all read. */
            struct pollfd again = { fd, POLLIN, 0 };
            return poll(&again, 1, 0) > 0;
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame_bytes framed = { NULL, 0, 0 };
    int sv[2], sent[2];
    peer p;
    pthread_t tid;
    SVCXPRT *xprt;
    tasks_batch *batch;
    conn_activity act;

    if (size == 0)
        return -1;      /* not an input this format has */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        pipe2(sent, O_CLOEXEC) < 0)
        abort();
    p.fd = sv[1];
    p.sent_fd = sent[1];
    if (data[0] & FRAME_RAW) {
        /* Raw bytes may end inside a record: without the hangup the server
         * would wait for the rest (35 s per read, libtirpc's timeout). */
        p.data = data + 1;
        p.len = size - 1;
        p.hangup = 1;
    } else {
        if (frame_calls(&framed, data + 1, size - 1))
            abort();
        p.data = framed.p;
        p.len = framed.len;
        /* Records are complete: the server never waits inside one, and a
         * half-closed socket would make the image work stop at once as
         * "the caller hung up" (dispatch.c's watch). */
        p.hangup = 0;
    }
    if (pthread_create(&tid, NULL, peer_main, &p) != 0)
        abort();

    /* What a connection thread does (net.c), until the calls run out. */
    xprt = svc_fd_create(sv[0], RECORD_BUFFER, RECORD_BUFFER);
    memset(&act, 0, sizeof(act));
    act.fd = sv[0];
    act.since_bytes = -1;
    batch = tasks_batch_new();
    if (!xprt || !batch)
        abort();
    for (;;) {
        enum xprt_stat st = SVC_STAT(xprt);
        if (st == XPRT_DIED || (st != XPRT_MOREREQS && !more_to_serve(sv[0], sent[0])))
            break;
        net_serve_one(&server, xprt, 1, batch, &act);
    }
    SVC_DESTROY(xprt);          /* closes sv[0]: the peer sees the end */
    pthread_join(tid, NULL);
    tasks_batch_free(server.tasks, batch);
    store_done();
    close(sent[0]);
    close(sent[1]);
    free(framed.p);
    return 0;
}
