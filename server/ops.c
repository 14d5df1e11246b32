/* ops.c - the image operations: decode once, run a pipeline of steps, encode once, with libvips. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vips/vips.h>

#include "log.h"
#include "ops.h"
#include "proto.h"

/* Scratch images one step may create (the last slot is its result); all are
 * unreffed with the pipeline.  Grayscale needs 7, threshold those and 3. */
#define STEP_SLOTS 12

/* Why a pipeline failed: the status for the caller and a message. */
typedef struct ops_err {
    ip_status status;           /* what to tell the caller */
    char msg[IP_MAX_MESSAGE];   /* why, for people */
} ops_err;

typedef int (*step_fn)(VipsImage *in, VipsImage **t, VipsImage **out,
                       const ip_step *s, ops_err *err);

/* One row per operation: adding an operation is a row and a function. */
typedef struct step_entry {
    ip_op op;                   /* protocol number */
    step_fn fn;                 /* does it */
    int sequential;             /* works on a top-to-bottom decode (no random access) */
} step_entry;

static int
set_err(ops_err *err, ip_status st, const char *fmt, ...)
{
    va_list ap;

    err->status = st;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * libvips keeps one error buffer for the whole process: take what is
 * there, first line only, and clear it.
 */
static int
set_vips_err(ops_err *err, ip_status st, const char *what)
{
    char *text = vips_error_buffer_copy();
    char *nl = strchr(text, '\n');

    if (nl)
        *nl = '\0';
    set_err(err, st, "%s%s%s", what, *text ? ": " : "", text);
    g_free(text);
    return -1;
}

/* Scale a 0..255 channel value to the image's numeric range. */
static double
channel_scale(VipsImage *im)
{
    switch (im->BandFmt) {
    case VIPS_FORMAT_USHORT:
    case VIPS_FORMAT_SHORT:
        return 257.0;
    case VIPS_FORMAT_FLOAT:
    case VIPS_FORMAT_DOUBLE:
        return im->Type == VIPS_INTERPRETATION_scRGB ? 1.0 / 255.0 : 1.0;
    default:
        return 1.0;
    }
}

static int
step_grayscale(VipsImage *in, VipsImage **t, VipsImage **out,
               const ip_step *s, ops_err *err)
{
    VipsInterpretation target = in->BandFmt == VIPS_FORMAT_USHORT ?
        VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
    VipsImage *luma, *rgb = in;

    (void)s;
    /* 8-bit RGB: the luma of BT.601, as JPEG defines it, weighed on the
     * decoded colours whatever the format.  Other images (16-bit, CMYK,
     * Lab...) go through libvips' colour management. */
    if (in->BandFmt != VIPS_FORMAT_UCHAR || in->Bands < 3 || in->Bands > 4 ||
        in->Type != VIPS_INTERPRETATION_sRGB) {
        if (vips_colourspace(in, out, target, NULL))
            return set_vips_err(err, IP_EFORMAT, "grayscale");
        return 0;
    }
    if (in->Bands > 3 && vips_extract_band(in, &t[0], 0, "n", 3, NULL))
        return set_vips_err(err, IP_EINTERNAL, "grayscale");
    if (in->Bands > 3)
        rgb = t[0];
    t[1] = vips_image_new_matrixv(3, 1, 0.299, 0.587, 0.114);
    /* Rounded to the nearest level: a cast alone would truncate, and every
     * gray would come out half a level dark. */
    if (vips_recomb(rgb, &t[2], t[1], NULL) ||
        vips_round(t[2], &t[3], VIPS_OPERATION_ROUND_RINT, NULL) ||
        vips_cast_uchar(t[3], &t[4], NULL))
        return set_vips_err(err, IP_EINTERNAL, "grayscale");
    luma = t[4];
    if (in->Bands > 3) {
        if (vips_extract_band(in, &t[5], 3, NULL) || vips_bandjoin2(t[4], t[5], &t[6], NULL))
            return set_vips_err(err, IP_EINTERNAL, "grayscale");
        luma = t[6];
    }
    if (vips_copy(luma, out, "interpretation", VIPS_INTERPRETATION_B_W, NULL))
        return set_vips_err(err, IP_EINTERNAL, "grayscale");
    /* An RGB colour profile does not describe a gray image. */
    vips_image_remove(*out, VIPS_META_ICC_NAME);
    return 0;
}

static int
step_threshold(VipsImage *in, VipsImage **t, VipsImage **out,
               const ip_step *s, ops_err *err)
{
    VipsImage *gray = in;

    if (in->Bands > 2 || in->Type != VIPS_INTERPRETATION_B_W) {
        if (step_grayscale(in, &t[2], &t[0], s, err))   /* t[2..8] */
            return -1;
        gray = t[0];
    }
    /* Luminance only: any alpha is dropped in a black-and-white image.  The
     * comparison gives 8-bit 0 or 255 whatever the input's depth; say so, or
     * a 16-bit input's label would make the encoder treat it as 16-bit. */
    if (vips_extract_band(gray, &t[1], 0, NULL) ||
        vips_moreeq_const1(t[1], &t[9], s->ip_step_u.level * channel_scale(gray), NULL) ||
        vips_copy(t[9], out, "interpretation", VIPS_INTERPRETATION_B_W, NULL))
        return set_vips_err(err, IP_EINTERNAL, "threshold");
    return 0;
}

/* A resize step's scale factors for an image of width x height. */
static void
resize_scales(const ip_resize_params *r, int width, int height, double *sx, double *sy)
{
    *sx = (double)r->width / width;
    *sy = (double)r->height / height;
    if (r->fit == IP_FIT_INSIDE)
        *sx = *sy = fmin(*sx, *sy);
    else if (r->fit == IP_FIT_COVER)
        *sx = *sy = fmax(*sx, *sy);
    if (!r->enlarge) {
        *sx = fmin(*sx, 1.0);
        *sy = fmin(*sy, 1.0);
    }
    /* Never below one pixel along a side. */
    *sx = fmax(*sx, 1.0 / width);
    *sy = fmax(*sy, 1.0 / height);
}

/* Scales by sx, sy (none when both are 1), then cuts cover's box from the middle. */
static int
resize_by(VipsImage *in, VipsImage **t, VipsImage **out, const ip_resize_params *r,
          double sx, double sy, ops_err *err)
{
    VipsImage *cur = in;

    if (sx != 1.0 || sy != 1.0) {
        if (vips_resize(in, &t[0], sx, "vscale", sy, NULL))
            return set_vips_err(err, IP_EINTERNAL, "resize");
        cur = t[0];
    }
    if (r->fit == IP_FIT_COVER &&
        (cur->Xsize > (int)r->width || cur->Ysize > (int)r->height)) {
        int w = VIPS_MIN(cur->Xsize, (int)r->width);
        int h = VIPS_MIN(cur->Ysize, (int)r->height);
        if (vips_extract_area(cur, &t[1], (cur->Xsize - w) / 2,
                              (cur->Ysize - h) / 2, w, h, NULL))
            return set_vips_err(err, IP_EINTERNAL, "resize");
        cur = t[1];
    }
    g_object_ref(cur);
    *out = cur;
    return 0;
}

static int
step_resize(VipsImage *in, VipsImage **t, VipsImage **out,
            const ip_step *s, ops_err *err)
{
    double sx, sy;

    resize_scales(&s->ip_step_u.resize, in->Xsize, in->Ysize, &sx, &sy);
    return resize_by(in, t, out, &s->ip_step_u.resize, sx, sy, err);
}

static int
step_rotate(VipsImage *in, VipsImage **t, VipsImage **out,
            const ip_step *s, ops_err *err)
{
    static const VipsAngle right[] = {
        VIPS_ANGLE_D0, VIPS_ANGLE_D90, VIPS_ANGLE_D180, VIPS_ANGLE_D270
    };
    const ip_colour *c = &s->ip_step_u.rotate.background;
    double a = fmod(s->ip_step_u.rotate.angle, 360.0);
    VipsImage *cur = in;
    double bg[8];
    double k;
    int n;

    if (a < 0)
        a += 360.0;
    if (fmod(a, 90.0) == 0.0) {
        /* Exact: pixels move, none is resampled. */
        if (vips_rot(in, out, right[(int)(a / 90.0) % 4], NULL))
            return set_vips_err(err, IP_EINTERNAL, "rotate");
        return 0;
    }
    /* A see-through background needs an alpha band to show through. */
    if (c->a < 255 && !vips_image_hasalpha(in)) {
        if (vips_addalpha(in, &t[0], NULL))
            return set_vips_err(err, IP_EINTERNAL, "rotate");
        cur = t[0];
    }
    k = channel_scale(cur);
    n = 0;
    if (cur->Bands <= 2)
        bg[n++] = k * (0.2126 * c->r + 0.7152 * c->g + 0.0722 * c->b);
    else if (cur->Type == VIPS_INTERPRETATION_CMYK) {
        /* Ink: the colour's complement in C, M and Y, no black. */
        bg[n++] = k * (255 - c->r);
        bg[n++] = k * (255 - c->g);
        bg[n++] = k * (255 - c->b);
        bg[n++] = 0;
    } else {
        bg[n++] = k * c->r;
        bg[n++] = k * c->g;
        bg[n++] = k * c->b;
    }
    while (n < cur->Bands - (vips_image_hasalpha(cur) ? 1 : 0) && n < 7)
        bg[n++] = 0;        /* any other band: nothing */
    if (vips_image_hasalpha(cur))
        bg[n++] = k * c->a;
    {
        VipsArrayDouble *arr = vips_array_double_new(bg, n);
        int rc = vips_rotate(cur, out, a, "background", arr, NULL);
        vips_area_unref(VIPS_AREA(arr));
        if (rc)
            return set_vips_err(err, IP_EINTERNAL, "rotate");
    }
    return 0;
}

static int
step_blur(VipsImage *in, VipsImage **t, VipsImage **out,
          const ip_step *s, ops_err *err)
{
    (void)t;
    /* Keep the input's numeric format: blur is not a reason to go to float. */
    if (vips_gaussblur(in, out, s->ip_step_u.sigma,
                       "precision", VIPS_PRECISION_INTEGER, NULL))
        return set_vips_err(err, IP_EINTERNAL, "blur");
    return 0;
}

static int
step_sharpen(VipsImage *in, VipsImage **t, VipsImage **out,
             const ip_step *s, ops_err *err)
{
    (void)t;
    if (vips_sharpen(in, out, "sigma", s->ip_step_u.sharpen_sigma, NULL))
        return set_vips_err(err, IP_EINTERNAL, "sharpen");
    return 0;
}

static int
step_crop(VipsImage *in, VipsImage **t, VipsImage **out,
          const ip_step *s, ops_err *err)
{
    const ip_crop_params *c = &s->ip_step_u.crop;

    (void)t;
    if ((uint64_t)c->left + c->width > (uint64_t)in->Xsize ||
        (uint64_t)c->top + c->height > (uint64_t)in->Ysize)
        return set_err(err, IP_EINVAL,
                       "crop: %ux%u+%u+%u lies outside the %dx%d image",
                       c->width, c->height, c->left, c->top, in->Xsize, in->Ysize);
    if (vips_extract_area(in, out, (int)c->left, (int)c->top,
                          (int)c->width, (int)c->height, NULL))
        return set_vips_err(err, IP_EINTERNAL, "crop");
    return 0;
}

static int
step_flip(VipsImage *in, VipsImage **t, VipsImage **out,
          const ip_step *s, ops_err *err)
{
    VipsDirection d = s->op == IP_OP_FLIP ?
        VIPS_DIRECTION_VERTICAL : VIPS_DIRECTION_HORIZONTAL;

    (void)t;
    if (vips_flip(in, out, d, NULL))
        return set_vips_err(err, IP_EINTERNAL, "flip");
    return 0;
}

static int
step_autorot(VipsImage *in, VipsImage **t, VipsImage **out,
             const ip_step *s, ops_err *err)
{
    (void)t;
    (void)s;
    if (vips_autorot(in, out, NULL))
        return set_vips_err(err, IP_EINTERNAL, "autorot");
    return 0;
}

static int
step_gamma(VipsImage *in, VipsImage **t, VipsImage **out,
           const ip_step *s, ops_err *err)
{
    double e = s->ip_step_u.gamma;
    int alpha = vips_image_hasalpha(in);
    VipsImage *colour = in;

    /* The colour bands only: alpha is coverage, not light. */
    if (alpha) {
        if (vips_extract_band(in, &t[0], 0, "n", in->Bands - 1, NULL) ||
            vips_extract_band(in, &t[1], in->Bands - 1, NULL))
            return set_vips_err(err, IP_EINTERNAL, "gamma");
        colour = t[0];
    }
    /* CMYK bands are ink: the curve is applied to the paper left (full
     * scale - ink), so that an exponent over 1 lightens every image. */
    if (in->Type == VIPS_INTERPRETATION_CMYK) {
        if (vips_invert(colour, &t[2], NULL) ||
            vips_gamma(t[2], &t[3], "exponent", e, NULL) ||
            vips_invert(t[3], &t[4], NULL))
            return set_vips_err(err, IP_EINTERNAL, "gamma");
    } else if (vips_gamma(colour, &t[4], "exponent", e, NULL))
        return set_vips_err(err, IP_EINTERNAL, "gamma");
    if (vips_cast(t[4], &t[5], in->BandFmt, NULL) ||
        (alpha ? vips_bandjoin2(t[5], t[1], out, NULL) : vips_copy(t[5], out, NULL)))
        return set_vips_err(err, IP_EINTERNAL, "gamma");
    return 0;
}

/* Set on an image whose bands are data, not colour and alpha (extract_band). */
#define DATA_BANDS "imgproc-data-bands"

static int
step_extract_band(VipsImage *in, VipsImage **t, VipsImage **out,
                  const ip_step *s, ops_err *err)
{
    const ip_extract_params *x = &s->ip_step_u.extract;
    VipsInterpretation type = in->Type;

    if ((uint64_t)x->band + x->n > (uint64_t)in->Bands) {
        if (x->n == 1)
            return set_err(err, IP_EINVAL, "extract_band: no band %u in a %d-band image "
                           "(its bands are 0..%d)", x->band, in->Bands, in->Bands - 1);
        return set_err(err, IP_EINVAL, "extract_band: no bands %u..%u in a %d-band image "
                       "(its bands are 0..%d)", x->band, x->band + x->n - 1, in->Bands,
                       in->Bands - 1);
    }
    /* Fewer than three bands are gray to the encoders, whatever they were. */
    if (x->n < 3)
        type = in->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_GREY16
                                                 : VIPS_INTERPRETATION_B_W;
    if (vips_extract_band(in, &t[0], (int)x->band, "n", (int)x->n, NULL) ||
        vips_copy(t[0], out, "interpretation", type, NULL))
        return set_vips_err(err, IP_EINTERNAL, "extract_band");
    /* A colour profile describes the bands it came with. */
    if ((int)x->n != in->Bands)
        vips_image_remove(*out, VIPS_META_ICC_NAME);
    /* Two or four bands look like gray or colour with alpha to the encoders;
     * these are data (see data_bands_format). */
    if (x->n == 2 || x->n == 4)
        vips_image_set_int(*out, DATA_BANDS, 1);
    return 0;
}

/* The step functions, one per row of proto_ops (checked by ops_init). */
static const step_entry steps_table[] = {
    { IP_OP_GRAYSCALE, step_grayscale, 1 },
    { IP_OP_RESIZE, step_resize, 1 },
    { IP_OP_ROTATE, step_rotate, 0 },
    { IP_OP_BLUR, step_blur, 1 },
    { IP_OP_THRESHOLD, step_threshold, 1 },
    { IP_OP_CROP, step_crop, 1 },
    { IP_OP_FLIP, step_flip, 0 },
    { IP_OP_FLOP, step_flip, 1 },
    { IP_OP_SHARPEN, step_sharpen, 1 },
    { IP_OP_AUTOROT, step_autorot, 0 },
    { IP_OP_GAMMA, step_gamma, 1 },
    { IP_OP_EXTRACT_BAND, step_extract_band, 1 },
};
_Static_assert(sizeof(steps_table) / sizeof(steps_table[0]) == PROTO_NOPS,
               "a step function for every operation in proto_ops");

static const step_entry *
step_find(ip_op op)
{
    for (size_t i = 0; i < sizeof(steps_table) / sizeof(steps_table[0]); i++)
        if (steps_table[i].op == op)
            return &steps_table[i];
    return NULL;
}

/* Formats by loader nickname prefix ("jpegload_buffer" -> "jpeg"). */
static const char *const input_candidates[] = {
    "jpeg", "png", "webp", "tiff", "gif", "heif", "svg", "jp2k", "jxl", "pdf", NULL
};
static const char *input_formats[sizeof(input_candidates) / sizeof(input_candidates[0])];
static const char *const output_formats[] = { "jpeg", "png", "webp", "tiff", "gif", NULL };

/* Is the operation present and allowed (not blocked as untrusted)? */
static int
operation_usable(const char *nickname)
{
    GType type = vips_type_find("VipsOperation", nickname);
    VipsOperationClass *cls;
    int ok;

    if (!type)
        return 0;
    cls = g_type_class_ref(type);
    ok = !(cls->flags & (VIPS_OPERATION_UNTRUSTED | VIPS_OPERATION_BLOCKED));
    g_type_class_unref(cls);
    return ok;
}

/*
 * Threads per pipeline.  libvips runs each evaluation on a pool of
 * vips_concurrency_get() threads, read when the evaluation starts.  A lone
 * request gets every core; when several run at once each gets its share,
 * so that 4 requests on 2 cores run 4 threads, not 8 fighting over them.
 */
static int cores;               /* libvips' default concurrency: the hardware threads */
static int evaluating;          /* pipelines being evaluated now (atomic) */

static void
eval_begin(void)
{
    int n = __atomic_add_fetch(&evaluating, 1, __ATOMIC_RELAXED);

    vips_concurrency_set(cores / n > 1 ? cores / n : 1);
}

static void
eval_end(void)
{
    __atomic_sub_fetch(&evaluating, 1, __ATOMIC_RELAXED);
}

int
ops_init(const char *argv0)
{
    size_t n = 0;

    for (size_t i = 0; i < proto_nops; i++)
        if (!step_find(proto_ops[i].op)) {
            srv_log(SRV_LOG_ERROR, "no step function for '%s'\n", proto_ops[i].name);
            return -1;
        }
    if (VIPS_INIT(argv0))
        return -1;
    cores = vips_concurrency_get();
    /* Loaders not fuzzed for hostile input are refused outright. */
    vips_block_untrusted_set(TRUE);
    /* Every request is new bytes: an operation cache would only grow. */
    vips_cache_set_max(0);
    for (size_t i = 0; input_candidates[i]; i++) {
        char nick[64];
        snprintf(nick, sizeof(nick), "%sload_buffer", input_candidates[i]);
        if (operation_usable(nick)) {
            input_formats[n++] = input_candidates[i];
            continue;
        }
        snprintf(nick, sizeof(nick), "%sload_source", input_candidates[i]);
        if (operation_usable(nick))
            input_formats[n++] = input_candidates[i];
    }
    input_formats[n] = NULL;
    return 0;
}

void
ops_shutdown(void)
{
    vips_shutdown();
}

void
ops_thread_done(void)
{
    vips_thread_shutdown();
}

const char *const *
ops_input_formats(void)
{
    return input_formats;
}

const char *const *
ops_output_formats(void)
{
    return output_formats;
}

const char *
ops_vips_version(void)
{
    return vips_version_string();
}

/* "jpegload_buffer" -> "jpeg" into buf. */
static void
loader_format(const char *loader, char *buf, size_t len)
{
    const char *end = strstr(loader, "load");
    size_t n = end ? (size_t)(end - loader) : strlen(loader);

    if (n >= len)
        n = len - 1;
    memcpy(buf, loader, n);
    buf[n] = '\0';
}

static int
check_size(const ops_limits *lim, VipsImage *im, const char *what, ops_err *err)
{
    uint64_t px = (uint64_t)im->Xsize * (uint64_t)im->Ysize;

    if (im->Xsize > IP_MAX_DIMENSION || im->Ysize > IP_MAX_DIMENSION ||
        px > lim->max_pixels)
        return set_err(err, IP_ETOOBIG,
                       "%s is %dx%d (%llu pixels); the limit is %llu pixels and %d per side",
                       what, im->Xsize, im->Ysize, (unsigned long long)px,
                       (unsigned long long)lim->max_pixels, IP_MAX_DIMENSION);
    return 0;
}

/*
 * Is a step's work within the limits, on the image it will get?  A blur's
 * cost grows with its sigma times the pixels: measured with libvips 8.14 on
 * 2 cores, a 21 MP photo took 1.1 s at sigma 10, 24 s at 50 and 141 s at 200,
 * and sigma 1000 on a 144 MP single-colour PNG runs for tens of minutes.
 * Refusing it up front says why at once, where the time budget would only
 * stop it later.  Sharpen's cost grows slowly (2.1 s at sigma 5, 4.2 s at 20
 * on the same photo) and its range ends at 100: the time budget covers it.
 */
static int
check_work(const ops_limits *lim, VipsImage *im, const ip_step *s, ops_err *err)
{
    double mp = (double)im->Xsize * (double)im->Ysize / 1e6;

    if (s->op == IP_OP_BLUR && s->ip_step_u.sigma * mp > lim->max_blur_work)
        return set_err(err, IP_ETOOBIG,
                       "blur: sigma %g on a %dx%d image is more work than this server does "
                       "(sigma x megapixels at most %u: here sigma %.3g at most)",
                       s->ip_step_u.sigma, im->Xsize, im->Ysize, lim->max_blur_work,
                       lim->max_blur_work / mp);
    return 0;
}

/*
 * Opens src lazily: only the header is read, so the size checks run before
 * any pixel is decoded.  A source, not a buffer: a task's image is read from
 * its file a piece at a time.  fmt gets the loader's format name; shrink > 1
 * asks the JPEG loader to decode at 1/shrink scale.
 */
static VipsImage *
open_image(const ops_limits *lim, VipsSource *src, VipsAccess access, int shrink,
           char *fmt, size_t fmtlen, ops_err *err)
{
    const char *loader;
    VipsImage *im;

    /* A type name such as "VipsForeignLoadJpegSource": want "jpegload_source". */
    loader = vips_foreign_find_load_source(src);
    if (loader)
        loader = vips_nickname_find(g_type_from_name(loader));
    if (!loader) {
        vips_error_clear();
        set_err(err, IP_EFORMAT, "not an image, or a format this server cannot read");
        return NULL;
    }
    loader_format(loader, fmt, fmtlen);
    if (!operation_usable(loader)) {
        set_err(err, IP_EFORMAT, "%s images are not accepted by this server", fmt);
        return NULL;
    }
    /* A JPEG whose frame header claims more rows than its data holds only
     * warns (libjpeg fills the rest with gray): refuse JPEG warnings too, as
     * sharp does by default.  No JPEG of the real-image corpus warns. */
    if (shrink > 1 && strcmp(fmt, "jpeg") == 0)
        im = vips_image_new_from_source(src, "", "access", access,
                                        "fail_on", VIPS_FAIL_ON_WARNING,
                                        "shrink", shrink, NULL);
    else
        im = vips_image_new_from_source(src, "", "access", access,
                                        "fail_on", strcmp(fmt, "jpeg") == 0 ?
                                        VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_ERROR, NULL);
    if (!im) {
        set_vips_err(err, IP_ECORRUPT, "cannot read the image header");
        return NULL;
    }
    if (check_size(lim, im, "the image", err)) {
        g_object_unref(im);
        return NULL;
    }
    return im;
}

/*
 * An extract_band result of two or four bands: the encoders would take its
 * last band for transparency.  JPEG flattens it away and WebP and GIF
 * keep it only as alpha, so those are refused (auto chooses PNG, which keeps
 * every band's values).  0, or -1 with err set.
 */
static int
data_bands_format(VipsImage *im, const ip_output *out, ip_format *fmt, ops_err *err)
{
    int flag = 0;

    if ((im->Bands != 2 && im->Bands != 4) || !vips_image_get_typeof(im, DATA_BANDS) ||
        vips_image_get_int(im, DATA_BANDS, &flag) || !flag ||
        (*fmt != IP_FMT_JPEG && *fmt != IP_FMT_WEBP && *fmt != IP_FMT_GIF))
        return 0;
    if (out->format == IP_FMT_AUTO) {
        *fmt = IP_FMT_PNG;
        return 0;
    }
    return set_err(err, IP_EINVAL, "%s would take band %d of this %d-band extract_band "
                   "result for transparency: choose png or tiff, which keep every band, or "
                   "extract 1 or 3 bands", proto_format_name(*fmt), im->Bands - 1, im->Bands);
}

static ip_format
auto_format(const char *in_fmt)
{
    ip_format f;

    if (proto_format_parse(in_fmt, &f) == 0 && f != IP_FMT_AUTO)
        return f;
    return IP_FMT_PNG;
}

/*
 * A format without alpha (JPEG) gets the image flattened on white, as
 * imgproc.x documents: what a transparent logo looks like on a page.  *out
 * is a new reference (im itself when nothing needs doing).
 */
static int
flatten_for(VipsImage *im, ip_format fmt, VipsImage **out)
{
    double white = 255.0 * channel_scale(im);   /* full scale: 255, 65535... */
    double bg[4];
    VipsArrayDouble *arr;
    int n = im->Bands - 1, rc;

    if (fmt != IP_FMT_JPEG || !vips_image_hasalpha(im) || n > 4) {
        g_object_ref(im);
        *out = im;
        return 0;
    }
    for (int i = 0; i < n; i++)
        bg[i] = im->Type == VIPS_INTERPRETATION_CMYK ? 0.0 : white;  /* no ink is white */
    arr = vips_array_double_new(bg, n);
    rc = vips_flatten(im, out, "background", arr, "max_alpha", white, NULL);
    vips_area_unref(VIPS_AREA(arr));
    return rc;
}

/* Encodes into target when there is one (a file: a task's result), else into *buf. */
static int
encode(VipsImage *in, const ip_output *o, ip_format fmt, VipsTarget *target, void **buf,
       size_t *len)
{
    int strip = o->strip ? TRUE : FALSE;
    VipsImage *im;
    int rc;

    if (flatten_for(in, fmt, &im))
        return -1;
    switch (fmt) {
    case IP_FMT_JPEG:
        rc = target ? vips_jpegsave_target(im, target, "Q", o->quality ? o->quality : 85,
                                           "strip", strip, NULL)
                    : vips_jpegsave_buffer(im, buf, len, "Q", o->quality ? o->quality : 85,
                                           "strip", strip, NULL);
        break;
    case IP_FMT_PNG:
        rc = target ? vips_pngsave_target(im, target, "strip", strip, "compression", 6, NULL)
                    : vips_pngsave_buffer(im, buf, len, "strip", strip, "compression", 6,
                                          NULL);
        break;
    case IP_FMT_WEBP:
        rc = target ? vips_webpsave_target(im, target, "Q", o->quality ? o->quality : 80,
                                           "strip", strip, NULL)
                    : vips_webpsave_buffer(im, buf, len, "Q", o->quality ? o->quality : 80,
                                           "strip", strip, NULL);
        break;
    case IP_FMT_TIFF:
        rc = target ? vips_tiffsave_target(im, target, "strip", strip, "compression",
                                           VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, NULL)
                    : vips_tiffsave_buffer(im, buf, len, "strip", strip, "compression",
                                           VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, NULL);
        break;
    case IP_FMT_GIF:
        rc = target ? vips_gifsave_target(im, target, "strip", strip, NULL)
                    : vips_gifsave_buffer(im, buf, len, "strip", strip, NULL);
        break;
    default:
        vips_error("imgprocd", "no encoder for format %d", (int)fmt);
        rc = -1;
        break;
    }
    g_object_unref(im);
    return rc;
}

/*
 * What the encoded result holds, read back from its header: the format may
 * have dropped a band (JPEG keeps no alpha) or changed them (GIF).  Only the
 * header is parsed.
 */
static int
result_facts(const void *buf, size_t len, ip_image_ok *ok, ops_err *err)
{
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", NULL);

    if (!im)
        return set_vips_err(err, IP_EINTERNAL, "cannot read back the encoded result");
    ok->width = (u_int)im->Xsize;
    ok->height = (u_int)im->Ysize;
    ok->bands = (u_int)im->Bands;
    g_object_unref(im);
    return 0;
}

static void
fail_res(ip_image_res *res, const ops_err *err)
{
    res->status = err->status;
    res->ip_image_res_u.message = strdup(err->msg);
}

/* A step's refusal names the step, where there are steps to tell apart. */
static void
name_step(ops_err *err, unsigned i, unsigned nsteps)
{
    char reason[sizeof(err->msg)];

    if (nsteps < 2 || err->status != IP_EINVAL)
        return;
    snprintf(reason, sizeof(reason), "%s", err->msg);
    snprintf(err->msg, sizeof(err->msg), "step %u of %u: %.900s", i + 1, nsteps, reason);
}

int
ops_validate(const ip_step *steps, unsigned nsteps, const ip_output *out,
             ip_status *st, char *why, size_t whylen)
{
    ops_err err = { IP_OK, "" };

    if (nsteps > IP_MAX_STEPS)
        set_err(&err, IP_ETOOBIG, "%u steps; at most %d", nsteps, IP_MAX_STEPS);
    else if (nsteps == 0)
        set_err(&err, IP_EINVAL, "the pipeline has no steps");
    else if (out->quality < 0 || out->quality > 100)
        set_err(&err, IP_EINVAL, "quality must be 1..100 (0 for the default), not %d",
                out->quality);
    else if (out->format != IP_FMT_AUTO && !proto_format_ext(out->format))
        set_err(&err, IP_EFORMAT, "unknown output format %d", (int)out->format);
    else
        for (unsigned i = 0; i < nsteps; i++) {
            const step_entry *e = step_find(steps[i].op);
            char reason[IP_MAX_MESSAGE];
            if (!e || proto_step_check(&steps[i], reason, sizeof(reason))) {
                set_err(&err, IP_EINVAL, "%s", e ? reason : "unknown operation");
                name_step(&err, i, nsteps);
                break;
            }
        }
    if (err.status == IP_OK)
        return 0;
    *st = err.status;
    snprintf(why, whylen, "%s", err.msg);
    return -1;
}

/*
 * Shrink on load: a downsizing resize, first in the pipeline or after steps
 * that commute with it (flip, flop, autorot), lets libjpeg decode at a
 * fraction of the size (DCT scaling: 1/2, 1/4, 1/8).  The factor is the largest that still leaves at least the
 * size the resize makes, and the resize then scales to exactly that size, so
 * the result has the dimensions the full decode would give.  About half the
 * CPU of a 9 MP JPEG fitted into 800x800 is its decoding at full size.
 */
typedef struct shrink_plan {
    int factor;                 /* 1: none */
    unsigned step;              /* the resize step */
    int width, height;          /* its result before cover's cut, from the full size */
} shrink_plan;

static void
plan_shrink(VipsImage *im, const char *fmt, const ip_step *steps, unsigned nsteps,
            shrink_plan *p)
{
    int swapped = 0, rotated = 0, orientation = 1, w, h, tw, th, f;
    double sx, sy;
    unsigned i;

    p->factor = 1;
    /* JPEG only: libwebp's scaled decoding is a resampler of its own (on a
     * WebP with alpha, a cover resize at 1/2 moved the result by more than a
     * level from the full decode's), not a decode at a lower resolution. */
    if (strcmp(fmt, "jpeg") != 0)
        return;
    if (vips_image_get_typeof(im, VIPS_META_ORIENTATION) &&
        vips_image_get_int(im, VIPS_META_ORIENTATION, &orientation))
        orientation = 1;
    for (i = 0; i < nsteps && steps[i].op != IP_OP_RESIZE; i++) {
        if (steps[i].op == IP_OP_AUTOROT) {
            /* Orientations 5 to 8 turn the image by 90 degrees; a second
             * autorot finds nothing left to do. */
            if (!rotated && orientation >= 5 && orientation <= 8)
                swapped = 1;
            rotated = 1;
        } else if (steps[i].op != IP_OP_FLIP && steps[i].op != IP_OP_FLOP)
            return;
    }
    if (i == nsteps)
        return;
    w = swapped ? im->Ysize : im->Xsize;
    h = swapped ? im->Xsize : im->Ysize;
    resize_scales(&steps[i].ip_step_u.resize, w, h, &sx, &sy);
    /* vips_resize's own rounding of the result's size. */
    p->width = (int)rint(w * sx);
    p->height = (int)rint(h * sy);
    tw = swapped ? p->height : p->width;
    th = swapped ? p->width : p->height;
    for (f = 8; f >= 2; f /= 2)
        if (im->Xsize / f >= tw && im->Ysize / f >= th)
            break;
    if (f < 2)
        return;
    p->factor = f;
    p->step = i;
}

/* libvips' "eval" signal: pass the percentage on; stop the work when asked. */
static void
on_eval(VipsImage *im, VipsProgress *progress, void *user)
{
    const ops_watch *w = user;

    if (w->progress(w->ctx, progress->percent))
        vips_image_set_kill(im, TRUE);
}

/*
 * The pipeline: opens src, runs the steps, encodes into target (a file) or,
 * without one, into *obuf.  *ofmt gets the format written.  0, or -1 with
 * err filled.
 */
static int
run_pipeline(const ops_limits *lim, VipsSource *src, const ip_step *steps, unsigned nsteps,
             const ip_output *out, const ops_watch *watch, VipsTarget *target,
             void **obuf, size_t *olen, ip_format *ofmt, ops_err *err)
{
    VipsObject *ctx = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(ctx,
                                                         nsteps * STEP_SLOTS + 1);
    VipsAccess access = VIPS_ACCESS_SEQUENTIAL;
    VipsImage *cur;
    shrink_plan plan;
    char fmt[IP_MAX_NAME];
    int rc = -1;

    if (ops_validate(steps, nsteps, out, &err->status, err->msg, sizeof(err->msg)))
        goto cleanup;
    for (unsigned i = 0; i < nsteps; i++)
        if (!step_find(steps[i].op)->sequential)
            access = VIPS_ACCESS_RANDOM;

    cur = t[0] = open_image(lim, src, access, 1, fmt, sizeof(fmt), err);
    if (!cur)
        goto cleanup;
    plan_shrink(cur, fmt, steps, nsteps, &plan);
    if (plan.factor > 1) {
        /* Opened again, decoded at 1/factor scale: only the header was read so far. */
        VipsImage *small;
        if (vips_source_rewind(src) ||
            !(small = open_image(lim, src, access, plan.factor, fmt, sizeof(fmt), err))) {
            if (err->status == IP_OK)
                set_vips_err(err, IP_EINTERNAL, "cannot read the image again");
            goto cleanup;
        }
        g_object_unref(t[0]);
        cur = t[0] = small;
    }
    for (unsigned i = 0; i < nsteps; i++) {
        VipsImage **slots = t + 1 + i * STEP_SLOTS;
        VipsImage **next = &slots[STEP_SLOTS - 1];
        int bad;
        if (check_work(lim, cur, &steps[i], err))
            bad = -1;
        else if (plan.factor > 1 && i == plan.step)
            /* The size the full image would have got, exactly. */
            bad = resize_by(cur, slots, next, &steps[i].ip_step_u.resize,
                           (double)plan.width / cur->Xsize, (double)plan.height / cur->Ysize,
                           err);
        else
            bad = step_find(steps[i].op)->fn(cur, slots, next, &steps[i], err);
        if (bad) {
            name_step(err, i, nsteps);
            goto cleanup;
        }
        cur = *next;
        /* Every intermediate is held to the same limits as the input. */
        if (check_size(lim, cur, "the result", err))
            goto cleanup;
    }

    *ofmt = out->format == IP_FMT_AUTO ? auto_format(fmt) : out->format;
    if (data_bands_format(cur, out, ofmt, err))
        goto cleanup;
    if (watch) {
        vips_image_set_progress(cur, TRUE);
        g_signal_connect(cur, "eval", G_CALLBACK(on_eval), (gpointer)watch);
    }
    /* Nothing has been decoded so far; this runs the whole pipeline. */
    eval_begin();
    rc = encode(cur, out, *ofmt, target, obuf, olen);
    eval_end();
    if (rc) {
        /* libvips' own error ("killed for image ...") says nothing useful:
         * the watch knows why it stopped the work. */
        if (watch && watch->why(watch->ctx, &err->status, err->msg, sizeof(err->msg)))
            vips_error_clear();
        else
            set_vips_err(err, IP_ECORRUPT, "cannot decode or process the image");
    }

cleanup:
    g_object_unref(ctx);
    return rc;
}

void
ops_process(const ops_limits *lim, const void *buf, size_t len,
            const ip_step *steps, unsigned nsteps, const ip_output *out,
            const ops_watch *watch, ip_image_res *res)
{
    ops_err err = { IP_OK, "" };
    VipsSource *src = NULL;
    ip_format ofmt;
    void *obuf = NULL;
    size_t olen = 0;

    memset(res, 0, sizeof(*res));
    if (len == 0) {
        set_err(&err, IP_EINVAL, "empty image: no bytes were sent");
        goto cleanup;
    }
    if (!(src = vips_source_new_from_memory(buf, len))) {
        set_vips_err(&err, IP_EINTERNAL, "cannot read the image");
        goto cleanup;
    }
    if (run_pipeline(lim, src, steps, nsteps, out, watch, NULL, &obuf, &olen, &ofmt, &err))
        goto cleanup;
    if (olen > lim->max_result_bytes || olen > UINT32_MAX) {
        g_free(obuf);
        set_err(&err, IP_ETOOBIG, "the result is %zu bytes; at most %llu are allowed",
                olen, (unsigned long long)lim->max_result_bytes);
        goto cleanup;
    }
    if (result_facts(obuf, olen, &res->ip_image_res_u.ok, &err)) {
        g_free(obuf);
        goto cleanup;
    }
    res->status = IP_OK;
    res->ip_image_res_u.ok.image.ip_image_val = obuf;
    res->ip_image_res_u.ok.image.ip_image_len = (u_int)olen;
    res->ip_image_res_u.ok.format = ofmt;

cleanup:
    if (src)
        g_object_unref(src);
    if (err.status != IP_OK)
        fail_res(res, &err);
}

/*
 * A task's result file, written through a custom target so that a failed
 * write keeps its errno: a full disk is said as such ("No space left on
 * device"), and is the server's trouble, not the image's.  TIFF's encoder
 * also reads and seeks what it wrote.
 */
typedef struct out_file {
    int fd;
    int err;                    /* errno of the first failed call, or 0 */
    uint64_t written, max;      /* bytes so far; the result's limit */
    int too_big;                /* the encoder went past max: stopped there */
} out_file;

static gint64
out_write(VipsTargetCustom *t, const void *data, gint64 len, void *p)
{
    out_file *f = p;
    ssize_t n;

    (void)t;
    if (f->err || f->too_big)
        return -1;
    /* The limit holds as the bytes go, not once they fill the disk. */
    if (f->written + (uint64_t)len > f->max) {
        f->too_big = 1;
        return -1;
    }
    n = write(f->fd, data, (size_t)len);
    if (n < 0)
        f->err = errno;
    else if (n == 0)
        f->err = ENOSPC;
    else
        f->written += (uint64_t)n;
    return n > 0 ? n : -1;
}

static gint64
out_read(VipsTargetCustom *t, void *buf, gint64 len, void *p)
{
    out_file *f = p;
    ssize_t n;

    (void)t;
    n = read(f->fd, buf, (size_t)len);
    if (n < 0)
        f->err = errno;
    return n;
}

static gint64
out_seek(VipsTargetCustom *t, gint64 offset, int whence, void *p)
{
    out_file *f = p;
    off_t at;

    (void)t;
    at = lseek(f->fd, (off_t)offset, whence);
    if (at < 0)
        f->err = errno;
    return at;
}

static int
out_end(VipsTargetCustom *t, void *p)
{
    (void)t;
    (void)p;
    return 0;
}

int
ops_process_file(const ops_limits *lim, const char *in_path, const char *out_path,
                 const ip_step *steps, unsigned nsteps, const ip_output *out,
                 const ops_watch *watch, ops_file_res *res)
{
    ops_err err = { IP_OK, "" };
    VipsSource *src = NULL;
    VipsTargetCustom *target = NULL;
    VipsImage *im = NULL;
    out_file of = { -1, 0, 0, lim->max_result_bytes, 0 };
    struct stat st;

    memset(res, 0, sizeof(*res));
    if (stat(in_path, &st) == 0 && st.st_size == 0)
        set_err(&err, IP_EINVAL, "empty image: no bytes were sent");
    else if (!(src = vips_source_new_from_file(in_path)))
        set_vips_err(&err, IP_EINTERNAL, "cannot open the stored image");
    else if ((of.fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        set_err(&err, IP_EINTERNAL, "cannot create the result's file: %s", strerror(errno));
    else if (!(target = vips_target_custom_new()))
        set_vips_err(&err, IP_EINTERNAL, "cannot write the result");
    else {
        g_signal_connect(target, "write", G_CALLBACK(out_write), &of);
        g_signal_connect(target, "read", G_CALLBACK(out_read), &of);
        g_signal_connect(target, "seek", G_CALLBACK(out_seek), &of);
        g_signal_connect(target, "end", G_CALLBACK(out_end), &of);
        if (run_pipeline(lim, src, steps, nsteps, out, watch, VIPS_TARGET(target), NULL, NULL,
                         &res->format, &err) != 0 && of.too_big)
            set_err(&err, IP_ETOOBIG, "the result is over %llu bytes, the most allowed",
                    (unsigned long long)lim->max_result_bytes);
        else if (err.status != IP_OK && of.err)
            /* The image was fine; its result did not fit where it goes. */
            set_err(&err, IP_EINTERNAL, "cannot store the result: %s", strerror(of.err));
        /* On disk before the task is said done. */
        else if (err.status == IP_OK && fsync(of.fd) < 0)
            set_err(&err, IP_EINTERNAL, "cannot store the result: %s", strerror(errno));
    }
    if (err.status == IP_OK) {
        /* The saver ends the target: the file is whole.  Its size and facts. */
        if (stat(out_path, &st) != 0)
            set_err(&err, IP_EINTERNAL, "cannot read the result's file: %s",
                    strerror(errno));
        else if ((uint64_t)st.st_size > lim->max_result_bytes)
            set_err(&err, IP_ETOOBIG, "the result is %llu bytes; at most %llu are allowed",
                    (unsigned long long)st.st_size,
                    (unsigned long long)lim->max_result_bytes);
        else if (!(im = vips_image_new_from_file(out_path, NULL)))
            set_vips_err(&err, IP_EINTERNAL, "cannot read back the encoded result");
        else {
            res->size = (uint64_t)st.st_size;
            res->width = (u_int)im->Xsize;
            res->height = (u_int)im->Ysize;
            res->bands = (u_int)im->Bands;
        }
    }
    if (im)
        g_object_unref(im);
    if (target)
        g_object_unref(target);
    if (of.fd >= 0 && close(of.fd) < 0 && err.status == IP_OK)
        set_err(&err, IP_EINTERNAL, "cannot store the result: %s", strerror(errno));
    if (src)
        g_object_unref(src);
    res->status = err.status;
    snprintf(res->msg, sizeof(res->msg), "%s", err.msg);
    return err.status == IP_OK ? 0 : -1;
}

void
ops_free_image_res(ip_image_res *res)
{
    if (res->status == IP_OK) {
        /* libvips allocated the encoded bytes: give them back to glib. */
        g_free(res->ip_image_res_u.ok.image.ip_image_val);
        res->ip_image_res_u.ok.image.ip_image_val = NULL;
        res->ip_image_res_u.ok.image.ip_image_len = 0;
    }
    xdr_free((xdrproc_t)xdr_ip_image_res, (char *)res);
}

void
ops_info(const ops_limits *lim, const void *buf, size_t len, ip_info_res *res)
{
    /* Header facts are wanted even from images over the pixel limit. */
    ops_limits unlimited = { UINT64_MAX, UINT64_MAX, UINT_MAX };
    ops_err err = { IP_OK, "" };
    char fmt[IP_MAX_NAME];
    ip_image_info *info = &res->ip_info_res_u.info;
    VipsSource *src = NULL;
    VipsImage *im = NULL;
    int orientation = 0;

    (void)lim;
    memset(res, 0, sizeof(*res));
    if (len == 0)
        set_err(&err, IP_EINVAL, "empty image: no bytes were sent");
    else if (!(src = vips_source_new_from_memory(buf, len)))
        set_vips_err(&err, IP_EINTERNAL, "cannot read the image");
    else
        im = open_image(&unlimited, src, VIPS_ACCESS_SEQUENTIAL, 1, fmt, sizeof(fmt), &err);
    if (src)
        g_object_unref(src);        /* the image holds what it needs */
    if (!im) {
        res->status = err.status;
        res->ip_info_res_u.message = strdup(err.msg);
        return;
    }
    if (vips_image_get_typeof(im, VIPS_META_ORIENTATION) &&
        vips_image_get_int(im, VIPS_META_ORIENTATION, &orientation))
        orientation = 0;
    res->status = IP_OK;
    info->width = (u_int)im->Xsize;
    info->height = (u_int)im->Ysize;
    info->bands = (u_int)im->Bands;
    info->format = strdup(fmt);
    info->interpretation = strdup(vips_enum_nick(VIPS_TYPE_INTERPRETATION, im->Type));
    info->band_format = strdup(vips_enum_nick(VIPS_TYPE_BAND_FORMAT, im->BandFmt));
    info->has_alpha = vips_image_hasalpha(im) ? TRUE : FALSE;
    info->orientation = orientation;
    info->pages = (u_int)vips_image_get_n_pages(im);
    info->size = len;
    g_object_unref(im);
}
