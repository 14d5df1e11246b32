/*
 * bench.c - the benchmark tool: makes photo-like images, times the references
 * (the server's own image code, ops_process, called in-process; libvips used
 * directly the fastest way it knows; a raw TCP ping-pong) and the same work
 * over RPC.  Each subcommand prints one line of numbers; bench/run.sh runs
 * them and prints the table.
 *
 * Timed figures are the median of RUNS runs after one warm-up run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/*
 * The best practice: the same result from a program that uses libvips
 * directly, the fastest way libvips knows, written here rather than taken
 * from the server (so that it stays put while the server changes).  A
 * resize that shrinks into a box, first in the pipeline or after autorot, is
 * vips_thumbnail_buffer: it shrinks on load (libjpeg decodes at 1/2, 1/4 or
 * 1/8 scale), autorotates, and ends with the exact resize.  Other steps are
 * the operations the server runs, on an image opened with the loader options
 * the steps allow: sequential access unless a step must read out of order
 * (rotate, flip, autorot), JPEG warnings refused as the server refuses them.
 * Encoded as the server does by default: JPEG Q 85, else PNG compression 6.
 */
static int
best_grayscale(VipsImage *in, VipsImage **t, VipsImage **out)
{
    /* The BT.601 luma of 8-bit RGB, rounded (what the server gives). */
    if (in->BandFmt != VIPS_FORMAT_UCHAR || in->Bands != 3 || in->Type != VIPS_INTERPRETATION_sRGB)
        return vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, NULL);
    t[0] = vips_image_new_matrixv(3, 1, 0.299, 0.587, 0.114);
    return vips_recomb(in, &t[1], t[0], NULL) ||
           vips_round(t[1], &t[2], VIPS_OPERATION_ROUND_RINT, NULL) ||
           vips_cast_uchar(t[2], &t[3], NULL) ||
           vips_copy(t[3], out, "interpretation", VIPS_INTERPRETATION_B_W, NULL);
}

/* Does a step from FROM on need random access to its input? */
static int
reads_out_of_order(const job *j, unsigned from)
{
    for (unsigned i = from; i < j->nsteps; i++)
        if (j->steps[i].op == IP_OP_ROTATE || j->steps[i].op == IP_OP_FLIP ||
            j->steps[i].op == IP_OP_AUTOROT)
            return 1;
    return 0;
}

/* Slots one step may use in run_best. */
#define BEST_SLOTS 6

static void
run_best(job *j)
{
    const char *loader = vips_foreign_find_load_buffer(j->data, j->len);
    int jpeg = loader && strstr(loader, "Jpeg") != NULL;
    VipsObject *ctx = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(ctx, BEST_SLOTS * (IP_MAX_STEPS + 1));
    VipsAccess access = VIPS_ACCESS_SEQUENTIAL;
    VipsImage *cur;
    unsigned first = 0, autorot;
    void *obuf = NULL;
    size_t olen;
    int rc = 0;

    while (first < j->nsteps && j->steps[first].op == IP_OP_AUTOROT)
        first++;
    autorot = first > 0;
    if (first < j->nsteps && j->steps[first].op == IP_OP_RESIZE &&
        j->steps[first].ip_step_u.resize.fit == IP_FIT_INSIDE &&
        !j->steps[first].ip_step_u.resize.enlarge &&
        j->steps[first].ip_step_u.resize.width && j->steps[first].ip_step_u.resize.height) {
        const ip_resize_params *r = &j->steps[first].ip_step_u.resize;
        rc = vips_thumbnail_buffer((void *)j->data, j->len, &t[0], (int)r->width,
                                   "height", (int)r->height, "size", VIPS_SIZE_DOWN,
                                   "no_rotate", !autorot,
                                   "option_string", jpeg ? "fail_on=warning" : "", NULL);
        first++;
        /* The thumbnail is small: steps after it that read out of order get it in memory. */
        if (!rc && reads_out_of_order(j, first)) {
            t[1] = vips_image_copy_memory(t[0]);
            rc = t[1] == NULL;
            if (!rc) {
                g_object_unref(t[0]);
                t[0] = t[1];
                t[1] = NULL;
            }
        }
    } else {
        first = 0;              /* autorot without a resize: an ordinary step */
        if (reads_out_of_order(j, 0))
            access = VIPS_ACCESS_RANDOM;
        t[0] = vips_image_new_from_buffer(j->data, j->len, "", "access", access, "fail_on",
                                          jpeg ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_ERROR,
                                          NULL);
        rc = t[0] == NULL;
    }
    cur = t[0];
    for (unsigned i = first; !rc && i < j->nsteps; i++) {
        const ip_step *s = &j->steps[i];
        VipsImage **out = &t[(i + 1) * BEST_SLOTS], **tmp = out + 1;
        VipsArrayDouble *bg;

        switch (s->op) {
        case IP_OP_GRAYSCALE:
            rc = best_grayscale(cur, tmp, out);
            break;
        case IP_OP_BLUR:
            rc = vips_gaussblur(cur, out, s->ip_step_u.sigma, "precision",
                                VIPS_PRECISION_INTEGER, NULL);
            break;
        case IP_OP_ROTATE:
            if (s->ip_step_u.rotate.background.a != 255 || cur->Bands != 3)
                die("%s", "best: rotate is written for an opaque background and 3 bands");
            bg = vips_array_double_newv(3, (double)s->ip_step_u.rotate.background.r,
                                        (double)s->ip_step_u.rotate.background.g,
                                        (double)s->ip_step_u.rotate.background.b);
            rc = vips_rotate(cur, out, s->ip_step_u.rotate.angle, "background", bg, NULL);
            vips_area_unref(VIPS_AREA(bg));
            break;
        case IP_OP_AUTOROT:
            rc = vips_autorot(cur, out, NULL);
            break;
        case IP_OP_FLIP:
        case IP_OP_FLOP:
            rc = vips_flip(cur, out, s->op == IP_OP_FLIP ? VIPS_DIRECTION_VERTICAL
                                                         : VIPS_DIRECTION_HORIZONTAL, NULL);
            break;
        default:
            die("%s", "best: written for grayscale, a resize into a box first, blur, rotate, "
                      "autorot, flip and flop");
        }
        if (!rc)
            cur = *out;
    }
    if (!rc)
        rc = jpeg ? vips_jpegsave_buffer(cur, &obuf, &olen, "Q", 85, NULL)
                  : vips_pngsave_buffer(cur, &obuf, &olen, "compression", 6, NULL);
    if (rc)
        die("best: %s", vips_error_buffer());
    g_free(obuf);
    g_object_unref(ctx);
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
            die("%s", "a write to a socket failed");
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
    if (strcmp(name, "best") == 0)
        return run_best;
    die("unknown mode '%s' (ref, best, codec, call, web)", name);
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

/*
 * IN_FLIGHT at once: IN_FLIGHT threads share CALLS calls of one mode, each
 * thread with its own job (its own connection, for "call").
 */
typedef struct flight {
    void (*fn)(job *);          /* the mode */
    int left;                   /* calls not yet taken (atomic) */
    pthread_barrier_t go;       /* every thread is up */
} flight;

typedef struct seat {
    flight *f;                  /* the batch */
    job *j;                     /* this thread's job */
} seat;

static void *
flight_main(void *p)
{
    seat *st = p;

    pthread_barrier_wait(&st->f->go);
    while (__atomic_sub_fetch(&st->f->left, 1, __ATOMIC_RELAXED) >= 0)
        st->f->fn(st->j);
    vips_thread_shutdown();
    return NULL;
}

/* Seconds per call: CALLS calls of fn by n threads, timed from all-ready to all-done. */
static double
fly(void (*fn)(job *), job *jobs, int n, int calls)
{
    pthread_t th[MAX_CONNS];
    seat seats[MAX_CONNS];
    flight f;
    double t0;

    f.fn = fn;
    f.left = calls;
    pthread_barrier_init(&f.go, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        seats[i] = (seat){ &f, &jobs[i] };
        pthread_create(&th[i], NULL, flight_main, &seats[i]);
    }
    pthread_barrier_wait(&f.go);
    t0 = proto_seconds();
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    t0 = proto_seconds() - t0;
    pthread_barrier_destroy(&f.go);
    return t0 / calls;
}

/*
 * Modes A and B with IN_FLIGHT calls at once: batches of CALLS calls,
 * alternated A, B, A, B... after a warm-up batch of each (one call per
 * thread).  In-process modes ("best", "ref") run with libvips' threads
 * shared out as the server shares them: cores / IN_FLIGHT per pipeline (at
 * least one), so that neither side oversubscribes the cores.  Prints
 * "SECONDS_PER_CALL_A SECONDS_PER_CALL_B", medians.
 */
static int
cmd_flight(int argc, char **argv)
{
    void (*fn[2])(job *);
    double t[2][MAX_RUNS];
    job jobs[MAX_CONNS];
    ip_step steps[IP_MAX_STEPS];
    unsigned nsteps;
    char why[256], *data;
    size_t len;
    int n, calls, runs, cores = vips_concurrency_get();

    if (argc != 9)
        die("%s", "usage: bench flight best|ref|call best|ref|call FILE STEPS IN_FLIGHT CALLS RUNS");
    fn[0] = mode_fn(argv[2]);
    fn[1] = mode_fn(argv[3]);
    if (proto_pipeline_parse(argv[5], steps, IP_MAX_STEPS, &nsteps, why, sizeof(why)))
        die("bad steps: %s", why);
    n = atoi(argv[6]);
    calls = atoi(argv[7]);
    runs = runs_arg(argv[8]);
    if (n < 1 || n > MAX_CONNS || calls < n)
        die("%s", "IN_FLIGHT must be 1..16, and CALLS at least IN_FLIGHT");
    data = slurp(argv[4], &len);
    for (int i = 0; i < n; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].data = data;
        jobs[i].len = len;
        memcpy(jobs[i].steps, steps, sizeof(steps));
        jobs[i].nsteps = nsteps;
        jobs[i].web = -1;
        if (fn[0] == run_call || fn[1] == run_call)
            jobs[i].clnt = connect_or_die();
    }
    for (int r = -1; r < runs; r++)
        for (int m = 0; m < 2; m++) {
            double per;
            if (fn[m] != run_call)
                vips_concurrency_set(cores / n > 1 ? cores / n : 1);
            per = fly(fn[m], jobs, n, r < 0 ? n : calls);
            vips_concurrency_set(cores);
            if (r >= 0)
                t[m][r] = per;
        }
    printf("%.6f %.6f\n", median(t[0], runs), median(t[1], runs));
    for (int i = 0; i < n; i++)
        cli_disconnect(jobs[i].clnt);
    free(data);
    return 0;
}

/* Runs CMD with sh -c, its output thrown away; dies unless it exits 0.  Seconds. */
static double
shell_once(const char *cmd)
{
    double t0 = proto_seconds();
    int status;
    pid_t pid = fork();

    if (pid < 0)
        die("%s", "cannot fork");
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("this failed: %s", cmd);
    return proto_seconds() - t0;
}

/*
 * Two shell commands, each a whole program run (as a user types it):
 * alternated A, B, A, B... after a warm-up of each.  Prints their median
 * seconds, "A B".
 */
static int
cmd_shell(int argc, char **argv)
{
    double t[2][MAX_RUNS];
    int runs;

    if (argc != 5)
        die("%s", "usage: bench shell RUNS 'COMMAND A' 'COMMAND B'");
    runs = runs_arg(argv[2]);
    for (int r = -1; r < runs; r++)
        for (int m = 0; m < 2; m++) {
            double s = shell_once(argv[3 + m]);
            if (r >= 0)
                t[m][r] = s;
        }
    printf("%.6f %.6f\n", median(t[0], runs), median(t[1], runs));
    return 0;
}

/*
 * Runs COMMAND (its output passed through), then prints its peak resident
 * memory in kB on a line of its own: ru_maxrss from wait4, the kernel's
 * count of the child's VmHWM.  Exits with the command's status.
 */
static int
cmd_maxrss(int argc, char **argv)
{
    struct rusage ru;
    int status;
    pid_t pid;

    if (argc < 3)
        die("%s", "usage: bench maxrss COMMAND [ARG...]");
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        die("%s", "cannot fork");
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "bench: cannot run '%s': %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0)
        die("%s", "wait4 failed");
    printf("%ld\n", ru.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/*
 * The bytes of a NULL call with AUTH_NONE over TCP, and of its reply: a
 * record mark (4) and the call's header (xid, direction, RPC version,
 * program, version, procedure: 24) with empty credentials and verifier
 * (8 + 8); the reply: the mark, xid, direction, accepted, an empty
 * verifier and SUCCESS (4 + 24).
 */
#define PING_OUT 44
#define PING_BACK 28

static void
read_exactly(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            die("%s", "ping-pong: the connection ended");
        p += r;
        n -= (size_t)r;
    }
}

/*
 * The raw ping-pong's far end, in a child process: one connection,
 * blocking reads of PING_OUT bytes, each answered with PING_BACK.  Returns
 * the connected socket of our end.
 */
static int
echo_start(pid_t *child)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fd;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
        die("%s", "ping-pong: cannot listen");
    *child = fork();
    if (*child < 0)
        die("%s", "cannot fork");
    if (*child == 0) {
        char in[PING_OUT], out[PING_BACK];
        int c = accept(lfd, NULL, NULL);
        memset(out, 0, sizeof(out));
        for (;;) {
            size_t got = 0;
            while (got < sizeof(in)) {
                ssize_t r = read(c, in + got, sizeof(in) - got);
                if (r <= 0)
                    _exit(0);
                got += (size_t)r;
            }
            if (write(c, out, sizeof(out)) != (ssize_t)sizeof(out))
                _exit(1);
        }
    }
    close(lfd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("%s", "ping-pong: cannot connect");
    return fd;
}

static double
null_rate(CLIENT *c, int calls)
{
    double t0 = proto_seconds();

    for (int i = 0; i < calls; i++)
        if (ip_null_1(NULL, NULL, c) != RPC_SUCCESS)
            die("NULL: %s", cli_rpc_error(c));
    return calls / (proto_seconds() - t0);
}

static double
ping_rate(int fd, int calls)
{
    char out[PING_OUT], back[PING_BACK];
    double t0 = proto_seconds();

    memset(out, 0, sizeof(out));
    for (int i = 0; i < calls; i++) {
        write_all(fd, out, sizeof(out));
        read_exactly(fd, back, sizeof(back));
    }
    return calls / (proto_seconds() - t0);
}

/*
 * NULL calls per second on one connection each, synchronous, AUTH_NONE: to
 * imgprocd ($BENCH_PORT), to a bare rpcgen server of a NULL-only program
 * (PORT, PROGRAM version 1), and a raw TCP ping-pong of the same bytes.
 * Runs alternate the three after a warm-up.  Prints the three medians.
 */
static int
cmd_nulls(int argc, char **argv)
{
    double rate[3][MAX_RUNS];
    cli_opts bare = rpc_opts, ours = rpc_opts;
    CLIENT *c[2];
    pid_t echo;
    int calls, runs, fd;

    if (argc != 6)
        die("%s", "usage: bench nulls CALLS RUNS BARE_PORT BARE_PROGRAM");
    calls = atoi(argv[2]);
    runs = runs_arg(argv[3]);
    ours.auth = bare.auth = "none";
    bare.port = atoi(argv[4]);
    bare.program = (rpcprog_t)strtoul(argv[5], NULL, 0);
    rpc_opts = ours;
    c[0] = connect_or_die();
    rpc_opts = bare;
    c[1] = connect_or_die();
    rpc_opts = ours;
    fd = echo_start(&echo);
    for (int r = -1; r < runs; r++) {
        int k = r < 0 ? 0 : r;
        rate[0][k] = null_rate(c[0], calls);
        rate[1][k] = null_rate(c[1], calls);
        rate[2][k] = ping_rate(fd, calls);
    }
    printf("%.0f %.0f %.0f\n", median(rate[0], runs), median(rate[1], runs),
           median(rate[2], runs));
    close(fd);
    waitpid(echo, NULL, 0);
    cli_disconnect(c[0]);
    cli_disconnect(c[1]);
    return 0;
}

/* CPU seconds PID has used, every thread: utime + stime from /proc/PID/stat. */
static double
cpu_seconds(const char *pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    if (!(f = fopen(path, "r")))
        die("cannot open '%s'", path);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* After the name in parentheses: field 3 (state) onwards; 14 and 15 are wanted. */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        die("cannot read '%s'", path);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * The CPU PID (imgprocd) uses over SECONDS of wall time while nothing asks
 * it anything: with no client ("alone"), or with one connected client that
 * made one NULL call and then waits ("connected").  Prints the percentage of
 * one core.
 */
static int
cmd_idle(int argc, char **argv)
{
    struct timespec nap;
    double secs, t0, c0, c1;
    CLIENT *c = NULL;

    if (argc != 5 || (strcmp(argv[4], "alone") != 0 && strcmp(argv[4], "connected") != 0))
        die("%s", "usage: bench idle PID SECONDS alone|connected");
    secs = atof(argv[3]);
    if (strcmp(argv[4], "connected") == 0) {
        c = connect_or_die();
        if (ip_null_1(NULL, NULL, c) != RPC_SUCCESS)
            die("NULL: %s", cli_rpc_error(c));
    }
    t0 = proto_seconds();
    c0 = cpu_seconds(argv[2]);
    nap.tv_sec = (time_t)secs;
    nap.tv_nsec = (long)((secs - (double)nap.tv_sec) * 1e9);
    while (nanosleep(&nap, &nap) < 0 && errno == EINTR)
        ;
    c1 = cpu_seconds(argv[2]);
    printf("%.2f\n", (c1 - c0) / (proto_seconds() - t0) * 100);
    cli_disconnect(c);
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
        { "mixed", cmd_mixed }, { "disk", cmd_disk }, { "flight", cmd_flight },
        { "shell", cmd_shell }, { "maxrss", cmd_maxrss }, { "nulls", cmd_nulls },
        { "idle", cmd_idle },
    };
    const char *port = getenv("BENCH_PORT"), *prog = getenv("BENCH_PROG");

    if (argc < 2)
        die("%s", "usage: bench gen|compare|flight|rate|null|nulls|idle|transfer|mixed|disk|"
                  "shell|maxrss ... "
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
