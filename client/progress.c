/* progress.c - a progress line on a terminal for one long transfer or wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

#define BAR_WIDTH 30
#define REDRAW_SECONDS 0.1      /* at most ten lines a second */

/*
 * A job shorter than the delay never shows a bar.  IMGPROC_PROGRESS_DELAY
 * (seconds, as git's GIT_PROGRESS_DELAY) changes it; 0 shows it at once.
 */
static double
delay(void)
{
    const char *s = getenv("IMGPROC_PROGRESS_DELAY");
    char *end;
    double d;

    if (!s || !*s)
        return 1.0;
    d = strtod(s, &end);
    return *end || d < 0 ? 1.0 : d;
}

void
cli_progress_start(cli_progress *p, const cli_opts *o, const char *verb, const char *name)
{
    const char *slash = strrchr(name, '/');

    memset(p, 0, sizeof(*p));
    p->on = !o->quiet && isatty(STDERR_FILENO);
    p->verb = verb;
    /* The file's own name: a long path would wrap the line. */
    snprintf(p->name, sizeof(p->name), "%s", slash && slash[1] ? slash + 1 : name);
    p->t0 = p->phase_t0 = proto_seconds();
    p->show_after = p->t0 + delay();
}

void
cli_progress_phase(cli_progress *p, const char *verb)
{
    if (p->verb != verb) {
        p->verb = verb;
        p->phase_t0 = proto_seconds();
    }
}

/* The bar on the screen, if any: a message clears its line first. */
static cli_progress *shown;

/* Whether to draw now: past the delay, and not drawn in the last moment. */
static int
due(cli_progress *p, int final)
{
    double now = proto_seconds();

    if (!p->on || now < p->show_after)
        return 0;
    if (!final && p->drawn && now - p->last < REDRAW_SECONDS)
        return 0;
    p->last = now;
    p->drawn = 1;
    shown = p;
    return 1;
}

void
cli_progress_interrupt(void)
{
    if (shown && shown->drawn) {
        fprintf(stderr, "\r\033[K");
        shown->drawn = 0;
    }
}

static void
bar(char *out, unsigned permille)
{
    unsigned fill = permille * BAR_WIDTH / 1000;

    for (unsigned i = 0; i < BAR_WIDTH; i++)
        out[i] = i < fill ? '#' : '.';
    out[BAR_WIDTH] = '\0';
}

/* 12.3 MB, in decimal units as file managers show them. */
static void
human(char *out, size_t n, double bytes)
{
    if (bytes >= 1e9)
        snprintf(out, n, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6)
        snprintf(out, n, "%.1f MB", bytes / 1e6);
    else
        snprintf(out, n, "%.0f kB", bytes / 1e3);
}

void
cli_progress_bytes(cli_progress *p, uint64_t done, uint64_t total)
{
    char b[BAR_WIDTH + 1], have[32], all[32], rate[32];
    double secs;

    if (!due(p, total && done >= total))
        return;
    secs = proto_seconds() - p->phase_t0;
    bar(b, total ? (unsigned)(done * 1000 / total) : 0);
    human(have, sizeof(have), (double)done);
    human(all, sizeof(all), (double)total);
    human(rate, sizeof(rate), secs > 0 ? (double)done / secs : 0);
    fprintf(stderr, "\r%s %s [%s] %3u%%  %s of %s  %s/s\033[K", p->verb, p->name, b,
            total ? (unsigned)(done * 100 / total) : 0, have, all, rate);
    fflush(stderr);
}

void
cli_progress_percent(cli_progress *p, unsigned percent, const char *state)
{
    char b[BAR_WIDTH + 1];
    double secs;

    if (!due(p, 0))
        return;
    secs = proto_seconds() - p->t0;
    bar(b, (percent > 100 ? 100 : percent) * 10);
    fprintf(stderr, "\r%s %s [%s] %3u%%  %s  %ld:%02ld\033[K", p->verb, p->name, b, percent,
            state, (long)secs / 60, (long)secs % 60);
    fflush(stderr);
}

void
cli_progress_end(cli_progress *p)
{
    if (p->on && p->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    p->drawn = 0;
    if (shown == p)
        shown = NULL;
}

void
cli_progress_tio(void *ctx, uint64_t done, uint64_t total)
{
    cli_progress_bytes(ctx, done, total);
}

/* A line without a bar, for a stretch with nothing to count. */
static void
progress_text(cli_progress *p, const char *text)
{
    if (!due(p, 1))
        return;
    fprintf(stderr, "\r%s: %s\033[K", p->name, text);
    fflush(stderr);
}

/* ---------------------------------------------------------------- cli_call */

/*
 * An XDR stream in front of libtirpc's: everything passes through, and the
 * bytes of a long opaque (the image) go in pieces, counted on the bar.
 */
typedef struct counting {
    XDR x;                      /* what the procedure's XDR code writes to or reads from */
    XDR *real;                  /* libtirpc's record stream, behind it */
    cli_progress *p;            /* the bar */
    const char *verb;           /* "sending" or "receiving" */
    xdrproc_t inner;            /* the procedure's own XDR code */
    void *obj;                  /* its arguments or results */
} counting;

#define PIECE (256u << 10)      /* a long opaque moves in pieces of this, counted */

static counting *
C(XDR *x)
{
    return x->x_private;
}

static bool_t
c_getlong(XDR *x, long *v)
{
    return XDR_GETLONG(C(x)->real, v);
}

static bool_t
c_putlong(XDR *x, const long *v)
{
    return XDR_PUTLONG(C(x)->real, v);
}

/* n bytes through the real stream (in: get, else put), a piece at a time, counted. */
static bool_t
move_bytes(XDR *x, char *b, u_int n, int in)
{
    counting *c = C(x);

    if (n >= PIECE)
        cli_progress_phase(c->p, c->verb);
    for (u_int off = 0; off < n;) {
        u_int k = n - off < PIECE ? n - off : PIECE;
        if (!(in ? XDR_GETBYTES(c->real, b + off, k) : XDR_PUTBYTES(c->real, b + off, k)))
            return FALSE;
        off += k;
        if (n >= PIECE)
            cli_progress_bytes(c->p, off, n);
    }
    return TRUE;
}

static bool_t
c_getbytes(XDR *x, char *b, u_int n)
{
    return move_bytes(x, b, n, 1);
}

static bool_t
c_putbytes(XDR *x, const char *b, u_int n)
{
    return move_bytes(x, (char *)b, n, 0);
}

static u_int
c_getpos(XDR *x)
{
    return XDR_GETPOS(C(x)->real);
}

static bool_t
c_setpos(XDR *x, u_int pos)
{
    return XDR_SETPOS(C(x)->real, pos);
}

/* No direct access to the buffer: the XDR code then goes field by field, through us. */
static int32_t *
c_inline(XDR *x, u_int n)
{
    (void)x;
    (void)n;
    return NULL;
}

static void
c_destroy(XDR *x)
{
    (void)x;
}

static bool_t
c_control(XDR *x, int req, void *info)
{
    XDR *real = C(x)->real;

    return real->x_ops->x_control ? real->x_ops->x_control(real, req, info) : FALSE;
}

static const struct xdr_ops counting_ops = {
    c_getlong, c_putlong, c_getbytes, c_putbytes, c_getpos, c_setpos, c_inline,
    c_destroy, c_control,
};

/* The xdrproc clnt_call is given: the procedure's own, through the counting stream. */
static bool_t
xdr_counted(XDR *real, counting *c)
{
    XDR x = *real;
    bool_t ok;

    if (real->x_op == XDR_FREE)
        return c->inner(real, c->obj);
    c->real = real;
    x.x_ops = &counting_ops;
    x.x_private = c;
    c->x = x;
    ok = c->inner(&c->x, c->obj);
    /* The arguments are out; the server works until the reply comes. */
    if (ok && real->x_op == XDR_ENCODE && c->p->drawn)
        progress_text(c->p, "sent; the server is working on it");
    return ok;
}

enum clnt_stat
cli_call(CLIENT *clnt, rpcproc_t proc, xdrproc_t xargs, void *args, xdrproc_t xres,
         void *res, cli_progress *p)
{
    struct timeval tv = { 25, 0 };      /* the stubs' default; CLSET_TIMEOUT overrides it */
    counting out = { .p = p, .verb = "sending", .inner = xargs, .obj = args };
    counting in = { .p = p, .verb = "receiving", .inner = xres, .obj = res };

    if (!p || !p->on)
        return clnt_call(clnt, proc, xargs, args, xres, res, tv);
    return clnt_call(clnt, proc, (xdrproc_t)xdr_counted, (void *)&out,
                     (xdrproc_t)xdr_counted, (void *)&in, tv);
}
