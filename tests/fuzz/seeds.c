/*
 * seeds.c - writes the dispatch harness's seed corpus: a real call of every
 * procedure, encoded by the generated XDR routines, and a few conversations
 * (task life, batches, owners), in frame.h's format; some also raw.
 *
 *   seeds DIR IMAGE...    the first image goes into every image call, and
 *                         each gets a PROCESS call of every operation
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rpc/rpc.h>

#include "frame.h"
#include "proto.h"

/* One seed being written: the mode byte, then calls. */
typedef struct seed {
    frame_bytes b;              /* the input so far */
    int ncalls;                 /* calls in it */
} seed;

/* Casting through a no-argument function type keeps -Wcast-function-type quiet. */

static const char *outdir;      /* where the seeds go */
static ip_image image;          /* the image of the image calls */
static int failed;              /* a seed could not be written */

static void __attribute__((noreturn))
die(const char *what, const char *subject)
{
    fprintf(stderr, "seeds: %s '%s': %s\n", what, subject, strerror(errno));
    exit(1);
}

/* Reads a whole file.  Exits on failure: there is nothing to seed without it. */
static ip_image
read_image(const char *path)
{
    ip_image im = { 0, NULL };
    FILE *f = fopen(path, "rb");
    long n;

    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        die("cannot read", path);
    im.ip_image_len = (u_int)n;
    im.ip_image_val = malloc((size_t)n + 1);
    if (!im.ip_image_val || fread(im.ip_image_val, 1, (size_t)n, f) != (size_t)n)
        die("cannot read", path);
    fclose(f);
    return im;
}

static void
seed_start(seed *s)
{
    memset(s, 0, sizeof(*s));
    if (frame_put(&s->b, "\0", 1))
        abort();
}

/* Appends a call: procedure, credential, the argument as XDR. */
static void
seed_call(seed *s, unsigned proc, unsigned cred, xdrproc_t fn, void *arg)
{
    u_long room = xdr_sizeof(fn, arg);     /* 0 for a void argument */
    char *buf = malloc(room + 1);
    uint8_t head[2] = { (uint8_t)proc, (uint8_t)cred };
    XDR x;

    if (!buf)
        abort();
    xdrmem_create(&x, buf, (u_int)room, XDR_ENCODE);
    if (!fn(&x, arg)) {
        fprintf(stderr, "seeds: cannot encode the argument of procedure %u\n", proc);
        exit(1);
    }
    if ((s->ncalls++ && frame_put(&s->b, FRAME_SEP, FRAME_SEP_LEN)) ||
        frame_put(&s->b, head, 2) || frame_put(&s->b, buf, xdr_getpos(&x)))
        abort();
    xdr_destroy(&x);
    free(buf);
}

static void
seed_void(seed *s, unsigned proc, unsigned cred)
{
    seed_call(s, proc, cred, PROTO_XDR(xdr_void), NULL);
}
static void
write_file(const char *name, const void *data, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
        fprintf(stderr, "seeds: cannot write '%s': %s\n", path, strerror(errno));
        failed = 1;
    }
}

/* Writes the seed as it is, and when raw is set also as the records it
 * becomes, behind a raw mode byte (name-raw). */
static void
seed_write(seed *s, const char *name, int raw)
{
    write_file(name, s->b.p, s->b.len);
    if (raw) {
        frame_bytes r = { NULL, 0, 0 };
        uint8_t mode = FRAME_RAW;
        char rawname[256];

        if (frame_put(&r, &mode, 1) || frame_calls(&r, s->b.p + 1, s->b.len - 1))
            abort();
        snprintf(rawname, sizeof(rawname), "%s-raw", name);
        write_file(rawname, r.p, r.len);
        free(r.p);
    }
    free(s->b.p);
}

/* The README's example pipeline, with a crop that fits a thumbnail. */
static unsigned
readme_steps(ip_step *st)
{
    static const char text[] = "autorot,crop=40x30+2+2,flop,sharpen,threshold=128";
    unsigned n = 0;
    char why[256];

    if (proto_pipeline_parse(text, st, IP_MAX_STEPS, &n, why, sizeof(why))) {
        fprintf(stderr, "seeds: '%s': %s\n", text, why);
        exit(1);
    }
    return n;
}

/* One procedure's call alone: one seed per procedure, and one past the last. */
static void
single_calls(void)
{
    ip_output png = { IP_FMT_PNG, 0, FALSE }, jpeg = { IP_FMT_JPEG, 80, TRUE };
    ip_grayscale_args g = { image, png };
    ip_resize_args r = { image, { 32, 24, IP_FIT_COVER, FALSE }, jpeg };
    ip_rotate_args ro = { image, { 30.0, { 255, 0, 0, 128 } }, { IP_FMT_WEBP, 0, FALSE } };
    ip_blur_args b = { image, 1.5, { IP_FMT_AUTO, 0, FALSE } };
    ip_step st[IP_MAX_STEPS];
    ip_process_args p = { image, { readme_steps(st), st }, { IP_FMT_GIF, 0, FALSE } };
    ip_step flip = { .op = IP_OP_FLIP };
    ip_task_create_args tc = { { IP_SOURCE_INLINE, { .image = image } },
                               { { 1, &flip }, png }, "t1", FALSE };
    ip_task_upload_args tu = { 1, 0, { image.ip_image_len, image.ip_image_val } };
    ip_task_id id = 1;
    ip_task_wait_args w = { 1, IP_TASK_QUEUED, 5 };
    ip_task_result_args res = { 1, 0, 65536 };
    ip_task_list_args l = { 0, 0, 10 };
    const struct {
        const char *name;       /* seed file */
        unsigned proc;          /* procedure number */
        unsigned cred;          /* FRAME_CRED_* */
        xdrproc_t xdr;          /* encodes arg */
        void *arg;              /* the argument */
        int raw;                /* also write the records as a raw seed */
    } calls[] = {
        { "00-null", IP_NULL, FRAME_CRED_SYS, PROTO_XDR(xdr_void), NULL, 1 },
        { "01-server-info", SERVER_INFO, FRAME_CRED_SYS, PROTO_XDR(xdr_void), NULL, 1 },
        { "02-image-info", IMAGE_INFO, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_image), &image, 1 },
        { "03-grayscale", GRAYSCALE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_grayscale_args), &g, 0 },
        { "04-resize", RESIZE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_resize_args), &r, 0 },
        { "05-rotate", ROTATE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_rotate_args), &ro, 0 },
        { "06-blur", BLUR, FRAME_CRED_NONE, PROTO_XDR(xdr_ip_blur_args), &b, 0 },
        { "07-process", PROCESS, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_process_args), &p, 0 },
        { "08-task-create", TASK_CREATE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &tc, 0 },
        { "09-task-upload", TASK_UPLOAD, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_upload_args), &tu, 0 },
        { "10-task-start", TASK_START, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id, 0 },
        { "11-task-status", TASK_STATUS, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id, 0 },
        { "12-task-wait", TASK_WAIT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_wait_args), &w, 0 },
        { "13-task-result", TASK_RESULT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_result_args), &res, 0 },
        { "14-task-cancel", TASK_CANCEL, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id, 0 },
        { "15-task-delete", TASK_DELETE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id, 0 },
        { "16-task-list", TASK_LIST, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_list_args), &l, 0 },
        { "17-task-submit", TASK_SUBMIT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &tc, 0 },
        { "18-task-collect", TASK_COLLECT, FRAME_CRED_SYS, PROTO_XDR(xdr_void), NULL, 0 },
        { "19-null-batched", NULL_BATCHED, FRAME_CRED_SYS, PROTO_XDR(xdr_void), NULL, 0 },
        { "20-no-such-procedure", FRAME_PROCS - 1, FRAME_CRED_SYS, PROTO_XDR(xdr_void), NULL, 1 },
    };

    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        seed s;
        seed_start(&s);
        seed_call(&s, calls[i].proc, calls[i].cred, calls[i].xdr, calls[i].arg);
        seed_write(&s, calls[i].name, calls[i].raw);
    }
}

/* A task's whole life, as the client's `task` commands live it. */
static void
task_life(void)
{
    ip_step st[IP_MAX_STEPS];
    ip_task_create_args up = { { IP_SOURCE_UPLOAD, { .size = image.ip_image_len } },
                               { { 0, st }, { IP_FMT_PNG, 0, FALSE } }, "life", TRUE };
    u_int half = image.ip_image_len / 2;
    ip_task_upload_args u1 = { 1, 0, { half, image.ip_image_val } };
    ip_task_upload_args u2 = { 1, half, { image.ip_image_len - half, image.ip_image_val + half } };
    ip_task_id id = 1;
    ip_task_wait_args w = { 1, IP_TASK_QUEUED, 60 };
    ip_task_result_args r = { 1, 0, IP_MAX_CHUNK };
    ip_task_list_args l = { 1u << IP_TASK_DONE | 1u << IP_TASK_QUEUED, 0, IP_MAX_LIST };
    seed s;

    up.spec.steps.steps_len = readme_steps(st);
    seed_start(&s);
    seed_call(&s, TASK_CREATE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &up);
    seed_call(&s, TASK_UPLOAD, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_upload_args), &u1);
    seed_call(&s, TASK_UPLOAD, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_upload_args), &u2);
    seed_call(&s, TASK_START, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id);
    seed_call(&s, TASK_WAIT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_wait_args), &w);
    seed_call(&s, TASK_STATUS, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id);
    seed_call(&s, TASK_RESULT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_result_args), &r);
    seed_call(&s, TASK_LIST, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_list_args), &l);
    seed_call(&s, TASK_CANCEL, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id);
    seed_call(&s, TASK_DELETE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id);
    seed_write(&s, "task-life", 1);

    /* Another caller may not see or touch the task; the owner may. */
    seed_start(&s);
    up.hold = FALSE;
    up.source.kind = IP_SOURCE_INLINE;
    up.source.ip_task_source_u.image = image;
    seed_call(&s, TASK_CREATE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &up);
    seed_call(&s, TASK_CREATE, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &up);
    seed_call(&s, TASK_STATUS, FRAME_CRED_OTHER, PROTO_XDR(xdr_ip_task_id), &id);
    seed_call(&s, TASK_DELETE, FRAME_CRED_NONE, PROTO_XDR(xdr_ip_task_id), &id);
    seed_call(&s, TASK_CANCEL, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_id), &id);
    seed_write(&s, "task-owners", 0);
}

/* A batch as `imgproc batch` sends it: items, one flush. */
static void
batch(void)
{
    ip_step gray = { .op = IP_OP_GRAYSCALE };
    ip_task_create_args item = { { IP_SOURCE_INLINE, { .image = image } },
                                 { { 1, &gray }, { IP_FMT_AUTO, 0, FALSE } }, "a.jpg", FALSE };
    seed s;

    seed_start(&s);
    seed_call(&s, TASK_SUBMIT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &item);
    item.token = "b.jpg";
    seed_call(&s, TASK_SUBMIT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &item);
    seed_call(&s, TASK_SUBMIT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &item);
    item.token = "";
    seed_call(&s, TASK_SUBMIT, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_task_create_args), &item);
    seed_void(&s, NULL_BATCHED, FRAME_CRED_SYS);
    seed_void(&s, TASK_COLLECT, FRAME_CRED_SYS);
    seed_write(&s, "batch", 1);
}

/* Every image through a pipeline of every operation, in the order of imgproc.x. */
static void
more_images(char **paths, int n)
{
    ip_step st[IP_MAX_STEPS];
    unsigned k = 0;
    char why[256];

    if (proto_pipeline_parse("grayscale,resize=48x48:cover,rotate=10:#00ff0080,blur=0.8,"
                             "threshold=100,crop=8x8+1+1,flip,flop,sharpen=0.5,autorot",
                             st, IP_MAX_STEPS, &k, why, sizeof(why))) {
        fprintf(stderr, "seeds: %s\n", why);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        ip_image im = read_image(paths[i]);
        ip_process_args p = { im, { k, st }, { IP_FMT_AUTO, 0, FALSE } };
        char name[256];
        const char *base;
        seed s;

        seed_start(&s);
        seed_call(&s, PROCESS, FRAME_CRED_SYS, PROTO_XDR(xdr_ip_process_args), &p);
        base = strrchr(paths[i], '/');
        snprintf(name, sizeof(name), "process-%s", base ? base + 1 : paths[i]);
        seed_write(&s, name, 0);
        free(im.ip_image_val);
    }
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: seeds DIR IMAGE...\n");
        return 2;
    }
    outdir = argv[1];
    image = read_image(argv[2]);
    single_calls();
    task_life();
    batch();
    more_images(argv + 2, argc - 2);
    free(image.ip_image_val);
    return failed;
}
