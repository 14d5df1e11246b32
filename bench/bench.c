/*
 * bench.c - the benchmark tool: makes photo-like images, times the reference
 * (the server's own image code, ops_process, called in-process) and the
 * same work over RPC.  Each subcommand prints one line of numbers;
 * bench/run.sh runs them and prints the table.
 *
 * Timed figures are the median of RUNS runs after one warm-up run.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#include "client.h"
#include "ops.h"
#include "proto.h"

#define MAX_RUNS 64
#define MAX_CONNS 16

static int
by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static char *
slurp(const char *path, size_t *len)
{
    char why[256], *data = NULL;

    if (cli_read_file(path, (size_t)1 << 40, &data, len, why, sizeof(why)))
        die("cannot read '%s'", path);
    return data;
}

static int
runs_arg(const char *s)
{
    int n = atoi(s);

    if (n < 1 || n > MAX_RUNS)
        die("RUNS must be 1..64, not '%s'", s);
    return n;
}

/* ---------------------------------------------------------------- images */

/*
 * A photo-like image: smooth colour regions (fractal noise, upscaled),
 * hard-edged shapes (a second fractal thresholded), and sensor noise.
 * Photographs compress and decode unlike gradients or flat colour.
 */
static int
cmd_gen(int argc, char **argv)
{
    VipsObject *ctx;
    VipsImage **t;
    int w, h, k = 8, n = 0;

    if (argc != 5)
        die("%s", "usage: bench gen W H FILE");
    w = atoi(argv[2]);
    h = atoi(argv[3]);
    if (w < 16 || h < 16)
        die("%s", "W and H must be at least 16");
    ctx = VIPS_OBJECT(vips_image_new());
    t = (VipsImage **)vips_object_local_array(ctx, 48);
    /* Colour: three independent 1/f fields at 1/k scale, stretched to 0..255. */
    for (int b = 0; b < 3; b++) {
        double avg, dev;
        if (vips_fractsurf(&t[n], w / k + 1, h / k + 1, 2.4, NULL) ||
            vips_avg(t[n], &avg, NULL) || vips_deviate(t[n], &dev, NULL) ||
            vips_linear1(t[n], &t[n + 1], 45 / (dev > 0 ? dev : 1), 128 - 45 * avg / (dev > 0 ? dev : 1), NULL))
            goto fail;
        n += 2;
    }
    VipsImage *planes[3] = { t[1], t[3], t[5] };
    if (vips_bandjoin(planes, &t[n], 3, NULL) ||
        vips_resize(t[n], &t[n + 1], (double)k, "kernel", VIPS_KERNEL_CUBIC, NULL) ||
        vips_crop(t[n + 1], &t[n + 2], 0, 0, w, h, NULL))
        goto fail;
    n += 3;
    /* Objects: where a coarser field is positive, a shifted, darker palette. */
    if (vips_fractsurf(&t[n], w / (4 * k) + 1, h / (4 * k) + 1, 2.2, NULL) ||
        vips_resize(t[n], &t[n + 1], 4.0 * k, "kernel", VIPS_KERNEL_LINEAR, NULL) ||
        vips_crop(t[n + 1], &t[n + 2], 0, 0, w, h, NULL) ||
        vips_moreeq_const1(t[n + 2], &t[n + 3], 0.0, NULL) ||
        vips_linear1(t[n - 1], &t[n + 4], 0.6, 20, NULL) ||
        vips_flip(t[n + 4], &t[n + 5], VIPS_DIRECTION_HORIZONTAL, NULL) ||
        vips_ifthenelse(t[n + 3], t[n - 1], t[n + 5], &t[n + 6], NULL))
        goto fail;
    n += 7;
    /* Smaller objects: a finer field, thresholded, brightened. */
    if (vips_fractsurf(&t[n], w / k + 1, h / k + 1, 2.6, NULL) ||
        vips_resize(t[n], &t[n + 1], (double)k, "kernel", VIPS_KERNEL_LINEAR, NULL) ||
        vips_crop(t[n + 1], &t[n + 2], 0, 0, w, h, NULL) ||
        vips_moreeq_const1(t[n + 2], &t[n + 3], 0.8, NULL) ||
        vips_linear1(t[n - 1], &t[n + 4], 1.3, -10, NULL) ||
        vips_ifthenelse(t[n + 3], t[n + 4], t[n - 1], &t[n + 5], NULL))
        goto fail;
    n += 6;
    /* Texture (grass, fabric, skin pores): blurred noise, the same in every
     * band; then sensor noise, different in each. */
    if (vips_gaussnoise(&t[n], w, h, "sigma", 40.0, "mean", 0.0, NULL) ||
        vips_gaussblur(t[n], &t[n + 1], 1.2, NULL) ||
        vips_add(t[n - 1], t[n + 1], &t[n + 3], NULL) ||
        vips_gaussnoise(&t[n + 4], w, h, "sigma", 5.0, "mean", 0.0, NULL) ||
        vips_gaussnoise(&t[n + 5], w, h, "sigma", 5.0, "mean", 0.0, NULL) ||
        vips_gaussnoise(&t[n + 6], w, h, "sigma", 5.0, "mean", 0.0, NULL) ||
        vips_bandjoin(&t[n + 4], &t[n + 7], 3, NULL) ||
        vips_add(t[n + 3], t[n + 7], &t[n + 8], NULL) ||
        vips_cast_uchar(t[n + 8], &t[n + 9], NULL) ||
        vips_copy(t[n + 9], &t[n + 10], "interpretation", VIPS_INTERPRETATION_sRGB, NULL) ||
        vips_image_write_to_file(t[n + 10], argv[4], NULL))
        goto fail;
    g_object_unref(ctx);
    return 0;
fail:
    fprintf(stderr, "bench: gen: %s\n", vips_error_buffer());
    g_object_unref(ctx);
    return 1;
}

/* ---------------------------------------------------------------- one run */

static ops_limits limits = { 150000000, IP_MAX_IMAGE, OPS_MAX_BLUR_WORK };
static cli_opts rpc_opts;

static CLIENT *
connect_or_die(void)
{
    char *why = NULL;
    CLIENT *c = cli_connect(&rpc_opts, &why);

    if (!c)
        die("%s", why ? why : "cannot connect");
    return c;
}

/* What one timed run does, on what. */
typedef struct job {
    const char *data;           /* the encoded image */
    size_t len;
    ip_step steps[IP_MAX_STEPS]; /* the pipeline */
    unsigned nsteps;
    CLIENT *clnt;               /* for "call" */
    const char *steps_text;     /* for "web": the steps as the query says them */
    int web;                    /* for "web": the gateway's socket, kept alive; -1: none */
} job;

/* The reference: the server's image code, in this process. */
static void
run_ref(job *j)
{
    ip_output out = { IP_FMT_AUTO, 0, FALSE };
    ip_image_res res;

    ops_process(&limits, j->data, j->len, j->steps, j->nsteps, &out, NULL, &res);
    if (res.status != IP_OK)
        die("ref: %s", res.ip_image_res_u.message);
    ops_free_image_res(&res);
}

/* A plain decode and encode in the same format, with the server's encoder settings. */
static void
run_codec(job *j)
{
    const char *loader = vips_foreign_find_load_buffer(j->data, j->len);
    int png = loader && strstr(loader, "Png") != NULL;
    VipsImage *im = vips_image_new_from_buffer(j->data, j->len, "", "access",
                                               VIPS_ACCESS_SEQUENTIAL, NULL);
    void *obuf = NULL;
    size_t olen;

    if (!im || (png ? vips_pngsave_buffer(im, &obuf, &olen, "compression", 6, NULL)
                    : vips_jpegsave_buffer(im, &obuf, &olen, "Q", 85, NULL)))
        die("codec: %s", vips_error_buffer());
    g_free(obuf);
    g_object_unref(im);
}

/* One PROCESS call over the job's connection; dies on failure. */
static void
process_once(CLIENT *c, const char *data, size_t len, const ip_step *steps, unsigned n)
{
    ip_process_args a = { { (u_int)len, (char *)data }, { n, (ip_step *)steps },
                          { IP_FMT_AUTO, 0, FALSE } };
    ip_image_res res;

    memset(&res, 0, sizeof(res));
    if (process_1(&a, &res, c) != RPC_SUCCESS)
        die("PROCESS: %s", cli_rpc_error(c));
    if (res.status != IP_OK)
        die("PROCESS: %s", res.ip_image_res_u.message);
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)&res);
}

static void
run_call(job *j)
{
    process_once(j->clnt, j->data, j->len, j->steps, j->nsteps);
}

/* The gateway's socket: 127.0.0.1, port $BENCH_WEB_PORT. */
static int
web_connect(void)
{
    const char *port = getenv("BENCH_WEB_PORT");
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (!port || fd < 0)
        die("%s", "web: set BENCH_WEB_PORT to imgproc-web's port");
    sa.sin_port = htons((uint16_t)atoi(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("web: cannot connect to 127.0.0.1:%s", port);
    /* As curl and browsers do: the head and the body are sent at once. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
    return fd;
}

static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            die("%s", "web: write failed");
        p += w;
        n -= (size_t)w;
    }
}

/*
 * One POST /v1/process through the gateway, on a kept-alive connection,
 * as a program would make it: the image as the body, the result read to its
 * last byte.  Dies unless the answer is 200 with its whole body.
 */
static void
run_web(job *j)
{
    static char buf[1 << 16];
    char head[512], *end, *cl;
    size_t have = 0, body, got;
    int n;

    if (j->web < 0)
        j->web = web_connect();
    n = snprintf(head, sizeof(head), "POST /v1/process?steps=%s HTTP/1.1\r\nHost: bench\r\n"
                 "Content-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n", j->steps_text,
                 j->len);
    write_all(j->web, head, (size_t)n);
    write_all(j->web, j->data, j->len);
    /* The head, then Content-Length bytes of body (some may have come with the head). */
    for (;;) {
        ssize_t r = read(j->web, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0)
            die("%s", "web: the gateway closed the connection");
        have += (size_t)r;
        buf[have] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")))
            break;
        if (have == sizeof(buf) - 1)
            die("%s", "web: an answer's head over 64 KiB");
    }
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
        die("web: %s", buf);
    if (!(cl = strcasestr(buf, "Content-Length:")) || cl > end)
        die("%s", "web: no Content-Length");
    body = strtoul(cl + 15, NULL, 10);
    got = have - (size_t)(end + 4 - buf);
    while (got < body) {
        ssize_t r = read(j->web, buf, sizeof(buf) < body - got ? sizeof(buf) : body - got);
        if (r <= 0)
            die("%s", "web: the answer ended early");
        got += (size_t)r;
    }
}

static void (*
mode_fn(const char *name))(job *)
{
    if (strcmp(name, "web") == 0)
        return run_web;
    if (strcmp(name, "ref") == 0)
        return run_ref;
    if (strcmp(name, "codec") == 0)
        return run_codec;
    if (strcmp(name, "call") == 0)
        return run_call;
    die("unknown mode '%s' (ref, codec, call, web)", name);
    return NULL;
}

/*
 * Times modes A and B on the same bytes, alternating A, B, A, B... so that
 * both see the same machine (caches, clock, other load); one warm-up of
 * each first.  Prints "MEDIAN_A MEDIAN_B" in seconds.
 */
static int
cmd_compare(int argc, char **argv)
{
    void (*fa)(job *), (*fb)(job *);
    double ta[MAX_RUNS], tb[MAX_RUNS];
    char why[256];
    job j;
    int runs;

    if (argc != 7)
        die("%s", "usage: bench compare ref|codec|call|web ref|codec|call|web FILE STEPS RUNS");
    memset(&j, 0, sizeof(j));
    j.web = -1;
    j.steps_text = argv[5];
    fa = mode_fn(argv[2]);
    fb = mode_fn(argv[3]);
    if (proto_pipeline_parse(argv[5], j.steps, IP_MAX_STEPS, &j.nsteps, why, sizeof(why)))
        die("bad steps: %s", why);
    runs = runs_arg(argv[6]);
    j.data = slurp(argv[4], &j.len);
    if (fa == run_call || fb == run_call)
        j.clnt = connect_or_die();
    for (int i = -1; i < runs; i++) {
        double t0 = proto_seconds(), t1, t2;
        fa(&j);
        t1 = proto_seconds();
        fb(&j);
        t2 = proto_seconds();
        if (i >= 0) {
            ta[i] = t1 - t0;
            tb[i] = t2 - t1;
        }
    }
    printf("%.6f %.6f\n", median(ta, runs), median(tb, runs));
    if (j.clnt)
        cli_disconnect(j.clnt);
    if (j.web >= 0)
        close(j.web);
    free((char *)j.data);
    return 0;
}

/* Throughput: CONNS connections, each a thread, CALLS calls shared out. */
typedef struct rate_job {
    const char *data;           /* the image */
    size_t len;
    ip_step steps[IP_MAX_STEPS];
    unsigned nsteps;
    int left;                   /* calls not yet taken (atomic) */
    pthread_barrier_t ready;    /* every connection is up and warm */
} rate_job;

static void *
rate_main(void *p)
{
    rate_job *j = p;
    CLIENT *c = connect_or_die();

    process_once(c, j->data, j->len, j->steps, j->nsteps);     /* warm-up */
    pthread_barrier_wait(&j->ready);
    while (__atomic_sub_fetch(&j->left, 1, __ATOMIC_RELAXED) >= 0)
        process_once(c, j->data, j->len, j->steps, j->nsteps);
    cli_disconnect(c);
    return NULL;
}

static int
cmd_rate(int argc, char **argv)
{
    pthread_t th[MAX_CONNS];
    double rates[MAX_RUNS];
    char why[256];
    rate_job j;
    int conns, calls, runs;

    if (argc != 7)
        die("%s", "usage: bench rate FILE STEPS CONNS CALLS RUNS");
    memset(&j, 0, sizeof(j));
    if (proto_pipeline_parse(argv[3], j.steps, IP_MAX_STEPS, &j.nsteps, why, sizeof(why)))
        die("bad steps: %s", why);
    conns = atoi(argv[4]);
    calls = atoi(argv[5]);
    runs = runs_arg(argv[6]);
    if (conns < 1 || conns > MAX_CONNS || calls < 1)
        die("%s", "CONNS must be 1..16 and CALLS at least 1");
    j.data = slurp(argv[2], &j.len);
    for (int r = 0; r < runs; r++) {
        double t0;
        j.left = calls;
        pthread_barrier_init(&j.ready, NULL, (unsigned)conns + 1);
        for (int i = 0; i < conns; i++)
            pthread_create(&th[i], NULL, rate_main, &j);
        pthread_barrier_wait(&j.ready);
        t0 = proto_seconds();
        for (int i = 0; i < conns; i++)
            pthread_join(th[i], NULL);
        rates[r] = calls / (proto_seconds() - t0);
        pthread_barrier_destroy(&j.ready);
    }
    printf("%.3f\n", median(rates, runs));
    free((char *)j.data);
    return 0;
}

/* NULL calls per second on one TCP connection: synchronous, or batched. */
static int
cmd_null(int argc, char **argv)
{
    static const struct timeval zero = { 0, 0 };
    double rates[MAX_RUNS];
    int calls, runs, batched;
    CLIENT *c;

    if (argc != 5)
        die("%s", "usage: bench null sync|batched CALLS RUNS");
    batched = strcmp(argv[2], "batched") == 0;
    calls = atoi(argv[3]);
    runs = runs_arg(argv[4]);
    c = connect_or_die();
    for (int r = -1; r < runs; r++) {
        double t0 = proto_seconds();
        for (int i = 0; i < calls; i++) {
            enum clnt_stat st = batched
                ? clnt_call(c, NULL_BATCHED, PROTO_XDR(xdr_void), NULL, NULL,
                            NULL, zero)
                : ip_null_1(NULL, NULL, c);
            if (st != RPC_SUCCESS)
                die("NULL: %s", cli_rpc_error(c));
        }
        /* The batch ends with an ordinary call: every batched call has been served. */
        if (batched && ip_null_1(NULL, NULL, c) != RPC_SUCCESS)
            die("NULL: %s", cli_rpc_error(c));
        if (r >= 0)
            rates[r] = calls / (proto_seconds() - t0);
    }
    printf("%.0f\n", median(rates, runs));
    cli_disconnect(c);
    return 0;
}

/*
 * A chunked upload of FILE (the client's own loop, tio_upload, SHA-256
 * check included), then, once the task has run, a chunked download of its
 * result.  Prints "UPLOAD_MBps DOWNLOAD_MBps RESULT_BYTES".
 */
static int
cmd_transfer(int argc, char **argv)
{
    ip_step flip = { .op = IP_OP_FLIP };
    ip_task_create_args a;
    ip_task_create_res r;
    ip_task_info_res st;
    ip_task_wait_args w;
    ip_task_chunk facts;
    char why[512], *data, *back = NULL;
    uint64_t got = 0;
    size_t len;
    double t0, up, down;
    CLIENT *c;

    if (argc != 3)
        die("%s", "usage: bench transfer FILE");
    data = slurp(argv[2], &len);
    c = connect_or_die();
    memset(&a, 0, sizeof(a));
    memset(&r, 0, sizeof(r));
    a.source.kind = IP_SOURCE_UPLOAD;
    a.source.ip_task_source_u.size = len;
    a.spec.steps.steps_len = 1;
    a.spec.steps.steps_val = &flip;
    a.spec.output.format = IP_FMT_AUTO;
    a.token = "";
    if (task_create_1(&a, &r, c) != RPC_SUCCESS || r.status != IP_OK)
        die("%s", "TASK_CREATE failed");
    t0 = proto_seconds();
    if (tio_upload(c, r.ip_task_create_res_u.created.id, data, len, NULL, NULL, why, sizeof(why)))
        die("upload: %s", why);
    up = len / (proto_seconds() - t0) / 1e6;
    /* The task runs (flip) and its result comes back the same way. */
    w.id = r.ip_task_create_res_u.created.id;
    w.seen = IP_TASK_QUEUED;
    w.timeout = IP_MAX_WAIT;
    for (;;) {
        memset(&st, 0, sizeof(st));
        if (task_wait_1(&w, &st, c) != RPC_SUCCESS || st.status != IP_OK)
            die("%s", "TASK_WAIT failed");
        if (proto_task_final(st.ip_task_info_res_u.info.state))
            break;
        w.seen = st.ip_task_info_res_u.info.state;
        xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&st);
    }
    if (st.ip_task_info_res_u.info.state != IP_TASK_DONE)
        die("the task failed: %s", st.ip_task_info_res_u.info.error);
    xdr_free((xdrproc_t)xdr_ip_task_info_res, (char *)&st);
    t0 = proto_seconds();
    if (tio_fetch(c, w.id, &back, &got, &facts, NULL, NULL, why, sizeof(why)))
        die("download: %s", why);
    down = got / (proto_seconds() - t0) / 1e6;
    printf("%.1f %.1f %llu\n", up, down, (unsigned long long)got);
    free(back);
    free(data);
    xdr_free((xdrproc_t)xdr_ip_task_create_res, (char *)&r);
    cli_disconnect(c);
    return 0;
}

/*
 * The disk's own speed for what an upload must do: write FILE's bytes to a
 * new file in DIR, 1 MiB at a time, and fsync it.  Prints MB/s.
 */
static int
cmd_disk(int argc, char **argv)
{
    char path[4096], *data;
    size_t len, off = 0;
    double t0;
    int fd;

    if (argc != 4)
        die("%s", "usage: bench disk FILE DIR");
    data = slurp(argv[2], &len);
    snprintf(path, sizeof(path), "%s/bench-disk.tmp", argv[3]);
    unlink(path);
    t0 = proto_seconds();
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        die("cannot create '%s'", path);
    while (off < len) {
        size_t n = len - off < IP_MAX_CHUNK ? len - off : IP_MAX_CHUNK;
        if (proto_write_all(fd, data + off, n) < 0)
            die("cannot write '%s'", path);
        off += n;
    }
    if (fsync(fd) < 0)
        die("cannot fsync '%s'", path);
    printf("%.1f\n", len / (proto_seconds() - t0) / 1e6);
    close(fd);
    unlink(path);
    free(data);
    return 0;
}

/* CALLS requests of every kind, one after another: for memory, not time. */
static int
cmd_mixed(int argc, char **argv)
{
    static const char *const mix[] = {
        "grayscale", "resize=100x100", "rotate=127", "blur=5", "blur=5,grayscale",
        "flip,sharpen", "crop=100x100+10+10,threshold",
    };
    const size_t nmix = sizeof(mix) / sizeof(mix[0]);
    char why[256], *data;
    size_t len;
    int calls;
    CLIENT *c;

    if (argc != 4)
        die("%s", "usage: bench mixed FILE CALLS");
    data = slurp(argv[2], &len);
    calls = atoi(argv[3]);
    c = connect_or_die();
    for (int i = 0; i < calls; i++) {
        ip_step steps[IP_MAX_STEPS];
        unsigned n;
        if (i % (int)(nmix + 2) == (int)nmix) {
            ip_image im = { (u_int)len, data };
            ip_info_res res;
            memset(&res, 0, sizeof(res));
            if (image_info_1(&im, &res, c) != RPC_SUCCESS)
                die("IMAGE_INFO: %s", cli_rpc_error(c));
            xdr_free((xdrproc_t)xdr_ip_info_res, (char *)&res);
        } else if (i % (int)(nmix + 2) == (int)nmix + 1) {
            if (ip_null_1(NULL, NULL, c) != RPC_SUCCESS)
                die("NULL: %s", cli_rpc_error(c));
        } else {
            proto_pipeline_parse(mix[(size_t)i % (nmix + 2)], steps, IP_MAX_STEPS, &n, why,
                                 sizeof(why));
            process_once(c, data, len, steps, n);
        }
    }
    printf("%d\n", calls);
    cli_disconnect(c);
    free(data);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "gen", cmd_gen }, { "compare", cmd_compare },
        { "rate", cmd_rate }, { "null", cmd_null }, { "transfer", cmd_transfer },
        { "mixed", cmd_mixed }, { "disk", cmd_disk },
    };
    const char *port = getenv("BENCH_PORT"), *prog = getenv("BENCH_PROG");

    if (argc < 2)
        die("%s", "usage: bench gen|compare|rate|null|transfer|mixed|disk ... "
                  "(RPC ones need BENCH_PORT and BENCH_PROG)");
    if (ops_init(argv[0]))
        die("%s", "cannot start libvips");
    rpc_opts.host = "127.0.0.1";
    rpc_opts.port = port ? atoi(port) : 0;
    rpc_opts.program = prog ? (rpcprog_t)strtoul(prog, NULL, 0) : IMGPROC;
    rpc_opts.proto = "tcp";
    rpc_opts.timeout = 600;
    rpc_opts.auth = "sys";
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc, argv);
    die("unknown command '%s'", argv[1]);
    return 2;
}
