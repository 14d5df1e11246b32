/*
 * fuzz_image.c - libFuzzer harness for image loading with the server's
 * limits: the input is an image file's bytes, read by every loader the
 * server allows, through the server's own code (server/ops.c).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "proto.h"
#include "ops.h"
#include "server.h"

#define FUZZ_MAX_PIXELS 1000000     /* per image: keeps one input's work short */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ops_limits limits;       /* as the server sets them, pixels lowered */

/*
 * libFuzzer sees the coverage of imgproc's own code only: Debian's libvips
 * and its loaders are not instrumented.  What an input did in there still
 * shows in what comes back: the error text (which differs with where a
 * loader gave up) and the kind of image read.  Each distinct outcome is a
 * feature (libFuzzer's extra counters), so an input that makes a loader
 * fail in a new way, or read a new kind of image, is kept and built on.
 */
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t outcomes[1 << 14];

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
    srv s;

    (void)argc;
    /* The limits come from the server's own settings code, not a copy. */
    srv_defaults(&s);
    s.cfg.max_pixels = FUZZ_MAX_PIXELS;
    srv_settle(&s);
    limits = s.limits;
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, quiet, NULL);
    if (ops_init((*argv)[0])) {
        fprintf(stderr, "fuzz_image: cannot start libvips\n");
        exit(1);
    }
    return 0;
}

/* Counts one outcome: what, and its text without digits (a new size or
 * offset is not a new way to fail). */
static void
count_outcome(const char *what, const char *text)
{
    uint32_t h = 2166136261u;   /* FNV-1a */

    for (const char *p = what; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    for (const char *p = text ? text : ""; *p; p++)
        if (*p < '0' || *p > '9')
            h = (h ^ (uint8_t)*p) * 16777619u;
    outcomes[h % sizeof(outcomes)]++;
}

/* Is name a format SERVER_INFO lists as readable?  What loads must be. */
static int
listed_format(const char *name)
{
    for (const char *const *f = ops_input_formats(); *f; f++)
        if (strcmp(*f, name) == 0)
            return 1;
    return 0;
}

static void __attribute__((noreturn))
fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "fuzz_image: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/*
 * IMAGE_INFO's answer: a format SERVER_INFO lists, or a failure that says
 * why.  Its size goes into *w, *h (0 on failure).
 */
static void
check_info(const ip_info_res *info, u_int *w, u_int *h)
{
    const ip_image_info *i = &info->ip_info_res_u.info;
    char kind[256];

    *w = *h = 0;
    if (info->status != IP_OK) {
        if (!info->ip_info_res_u.message || !info->ip_info_res_u.message[0])
            fail("IMAGE_INFO status %d without a message", (int)info->status);
        count_outcome("info failed", info->ip_info_res_u.message);
        return;
    }
    if (!listed_format(i->format))
        fail("read as '%s', which SERVER_INFO does not list", i->format);
    *w = i->width;
    *h = i->height;
    snprintf(kind, sizeof(kind), "%s %s %s %u bands, alpha %d, orientation %d, %s pages",
             i->format, i->interpretation, i->band_format, i->bands, (int)i->has_alpha,
             i->orientation, i->pages > 1 ? "several" : "one");
    count_outcome("info", kind);
}

/*
 * A processed image as the server would send it: a PNG of the size
 * IMAGE_INFO read (flip and flop keep it; 0 when IMAGE_INFO failed), within
 * the pixel limit; or a failure that says why.
 */
static void
check_result(const ip_image_res *res, u_int w, u_int h)
{
    const ip_image_ok *ok = &res->ip_image_res_u.ok;

    if (res->status != IP_OK) {
        if (!res->ip_image_res_u.message || !res->ip_image_res_u.message[0])
            fail("status %d without a message", (int)res->status);
        count_outcome("process failed", res->ip_image_res_u.message);
        return;
    }
    if (ok->format != IP_FMT_PNG || ok->image.ip_image_len == 0 || ok->width == 0 ||
        ok->height == 0 || (uint64_t)ok->width * ok->height > limits.max_pixels ||
        ok->bands < 1 || ok->bands > 4)
        fail("an impossible result: format %d, %u bytes, %ux%u, %u bands", (int)ok->format,
             ok->image.ip_image_len, ok->width, ok->height, ok->bands);
    if (w && (ok->width != w || ok->height != h))
        fail("IMAGE_INFO read %ux%u, the result is %ux%u", w, h, ok->width, ok->height);
    count_outcome("process", "");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /*
     * FLIP needs the whole image (random access), FLOP streams it (the
     * server's sequential path): the input's length picks one, so every
     * image is read both ways as the fuzzer changes its length.  PNG is
     * written whatever came in, so the loaders, not the savers, are tested.
     */
    ip_step step = { .op = (size % 2) ? IP_OP_FLOP : IP_OP_FLIP };
    ip_output out = { IP_FMT_PNG, 0, TRUE };
    ip_info_res info;
    ip_image_res res;
    u_int w, h;

    ops_info(&limits, data, size, &info);
    check_info(&info, &w, &h);
    xdr_free((xdrproc_t)xdr_ip_info_res, (char *)&info);

    ops_process(&limits, data, size, &step, 1, &out, NULL, &res);
    check_result(&res, w, h);
    ops_free_image_res(&res);
    return 0;
}
