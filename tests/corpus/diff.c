/*
 * diff.c - the differential suite's reference: what plain libvips gives for a
 * pipeline, compared with what imgprocd returned for it.
 *
 *   corpus-diff list [--full] CORPUS   prints the cases, one per line:
 *                                      IMAGE TAB STEPS TAB FORMAT
 *   corpus-diff check CASES OUTDIR     CASES: the same lines, each with an ID
 *                                      and a TAB in front; compares each case's
 *                                      result (written by the real client into
 *                                      OUTDIR as ID.FORMAT, ID.err, ID.rc) with
 *                                      the reference; prints TAP
 *
 * CORPUS/pairs.txt names the images that get every ordered pair of steps
 * ("NAME" for both runs, "NAME full" for the --full run only).
 *
 * The reference is written here from plain libvips calls, from what imgproc.x
 * documents for each step; it shares no code with the server.  Results are
 * compared after encoding, decoded by libvips: width, height, bands,
 * interpretation, band format, container format, EXIF orientation, and the
 * mean and standard deviation of every band within a tolerance per operation
 * (the table `tolerances` below says why each is what it is).
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#define MAXSTEPS 4
#define MAXBANDS 5
#define LINE 4096

/* ------------------------------------------------------------ the steps */

/* One step, parsed from the --steps text by this file's own small parser. */
typedef struct rstep {
    char op[16];                /* grayscale, resize, ... */
    double v[4];                /* its numbers */
    int enlarge;                /* resize: may scale up */
    char fit[8];                /* resize: inside, cover, fill */
    double bg[4];               /* rotate: background r g b a, 0..255 */
    int exact_w, exact_h;       /* resize after shrink on load: scale to this size */
} rstep;

static int
parse_steps(const char *text, rstep *s, int max)
{
    char buf[LINE], *save = NULL, *part;
    int n = 0;

    snprintf(buf, sizeof(buf), "%s", text);
    for (part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        rstep *r = &s[n];
        char *arg = strchr(part, '=');

        if (n == max)
            return -1;
        memset(r, 0, sizeof(*r));
        if (arg)
            *arg++ = '\0';
        snprintf(r->op, sizeof(r->op), "%s", part);
        strcpy(r->fit, "inside");
        if (strcmp(r->op, "resize") == 0) {
            unsigned w, h;
            if (!arg || sscanf(arg, "%ux%u", &w, &h) != 2)
                return -1;
            r->v[0] = w;
            r->v[1] = h;
            if (strstr(arg, ":enlarge"))
                r->enlarge = 1;
            if (strstr(arg, ":cover"))
                strcpy(r->fit, "cover");
            if (strstr(arg, ":fill"))
                strcpy(r->fit, "fill");
        } else if (strcmp(r->op, "rotate") == 0) {
            char *c;
            unsigned rgba;
            r->bg[3] = 255;     /* documented default: opaque black */
            if (!arg)
                return -1;
            r->v[0] = atof(arg);
            if ((c = strchr(arg, ':')) && sscanf(c, ":#%8x", &rgba) == 1) {
                r->bg[0] = (rgba >> 24) & 255;
                r->bg[1] = (rgba >> 16) & 255;
                r->bg[2] = (rgba >> 8) & 255;
                r->bg[3] = rgba & 255;
            }
        } else if (strcmp(r->op, "crop") == 0) {
            unsigned w, h, l, t;
            if (!arg || sscanf(arg, "%ux%u+%u+%u", &w, &h, &l, &t) != 4)
                return -1;
            r->v[0] = w;
            r->v[1] = h;
            r->v[2] = l;
            r->v[3] = t;
        } else if (strcmp(r->op, "threshold") == 0) {
            r->v[0] = arg ? atof(arg) : 128;
        } else if (strcmp(r->op, "sharpen") == 0) {
            r->v[0] = arg ? atof(arg) : 1;
        } else if (strcmp(r->op, "blur") == 0) {
            if (!arg)
                return -1;
            r->v[0] = atof(arg);
        } else if (strcmp(r->op, "gamma") == 0) {
            r->v[0] = arg ? atof(arg) : 2.4;
        } else if (strcmp(r->op, "extract_band") == 0) {
            if (!arg)
                return -1;
            r->v[0] = atoi(arg);
            r->v[1] = strchr(arg, ':') ? atoi(strchr(arg, ':') + 1) : 1;
        }
        n++;
    }
    return n;
}

/* ---------------------------------------------------- the reference */

/* Full scale of one channel: 255 for 8-bit images, 65535 for 16-bit. */
static double
full_scale(VipsImage *im)
{
    return im->BandFmt == VIPS_FORMAT_USHORT ? 65535.0 : 255.0;
}

/*
 * imgproc.x: "one band of luma, 0.299 R + 0.587 G + 0.114 B (BT.601), alpha
 * kept".  8-bit sRGB is weighed here; every other kind (16-bit, CMYK...)
 * goes through libvips' colourspace conversion, as the server documents.
 */
static int
ref_grayscale(VipsImage *in, VipsImage **out)
{
    VipsImage *t[6] = { 0 };
    int rc = -1;

    if (in->Bands <= 2 && (in->Type == VIPS_INTERPRETATION_B_W ||
                           in->Type == VIPS_INTERPRETATION_GREY16)) {
        g_object_ref(in);
        *out = in;
        return 0;
    }
    if (in->BandFmt != VIPS_FORMAT_UCHAR || in->Type != VIPS_INTERPRETATION_sRGB ||
        in->Bands < 3)
        return vips_colourspace(in, out, in->BandFmt == VIPS_FORMAT_USHORT ?
                                VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W, NULL);
    /* Each gray level is the weighed sum rounded to the nearest integer
     * (ties to even). */
    t[0] = vips_image_new_matrixv(3, 1, 0.299, 0.587, 0.114);
    if (vips_extract_band(in, &t[1], 0, "n", 3, NULL) ||
        vips_recomb(t[1], &t[2], t[0], NULL) ||
        vips_round(t[2], &t[4], VIPS_OPERATION_ROUND_RINT, NULL) ||
        vips_cast(t[4], &t[3], VIPS_FORMAT_UCHAR, NULL))
        goto done;
    g_object_unref(t[4]);
    t[4] = NULL;
    if (in->Bands == 4) {
        if (vips_extract_band(in, &t[4], 3, NULL) ||
            vips_bandjoin2(t[3], t[4], &t[5], NULL))
            goto done;
        rc = vips_copy(t[5], out, "interpretation", VIPS_INTERPRETATION_B_W, NULL);
    } else
        rc = vips_copy(t[3], out, "interpretation", VIPS_INTERPRETATION_B_W, NULL);
done:
    for (int i = 0; i < 6; i++)
        if (t[i])
            g_object_unref(t[i]);
    return rc;
}

/* libvips' gamma; on CMYK, on the paper left (full scale - ink), then back to ink. */
static int
ref_gamma(VipsImage *in, double e, VipsImage **out)
{
    VipsImage *a, *b;
    int rc;

    if (in->Type != VIPS_INTERPRETATION_CMYK)
        return vips_gamma(in, out, "exponent", e, NULL);
    if (vips_invert(in, &a, NULL))
        return -1;
    rc = vips_gamma(a, &b, "exponent", e, NULL);
    g_object_unref(a);
    if (rc)
        return -1;
    rc = vips_invert(b, out, NULL);
    g_object_unref(b);
    return rc;
}

/* A resize's factors, as imgproc.x defines them: fit, enlarge, at least a pixel. */
static void
resize_factors(const rstep *s, int width, int height, double *sx, double *sy)
{
    *sx = s->v[0] / width;
    *sy = s->v[1] / height;
    if (strcmp(s->fit, "inside") == 0)
        *sx = *sy = fmin(*sx, *sy);
    else if (strcmp(s->fit, "cover") == 0)
        *sx = *sy = fmax(*sx, *sy);
    if (!s->enlarge) {
        *sx = fmin(*sx, 1);
        *sy = fmin(*sy, 1);
    }
    *sx = fmax(*sx, 1.0 / width);
    *sy = fmax(*sy, 1.0 / height);
}

static int
ref_step(VipsImage *in, const rstep *s, VipsImage **out, int *invalid)
{
    const char *op = s->op;

    if (strcmp(op, "grayscale") == 0)
        return ref_grayscale(in, out);
    if (strcmp(op, "threshold") == 0) {
        /* "luminance >= level is white", one band, alpha dropped */
        VipsImage *g, *y;
        int rc;
        if (ref_grayscale(in, &g))
            return -1;
        rc = vips_extract_band(g, &y, 0, NULL);
        g_object_unref(g);
        if (rc)
            return -1;
        /* "black and white": one 8-bit band, 0 or 255, whatever the depth in */
        rc = vips_moreeq_const1(y, &g, s->v[0] * full_scale(y) / 255.0, NULL);
        g_object_unref(y);
        if (rc)
            return -1;
        rc = vips_copy(g, out, "interpretation", VIPS_INTERPRETATION_B_W, NULL);
        g_object_unref(g);
        return rc;
    }
    if (strcmp(op, "resize") == 0) {
        double sx, sy;
        resize_factors(s, in->Xsize, in->Ysize, &sx, &sy);
        if (s->exact_w) {
            sx = (double)s->exact_w / in->Xsize;
            sy = (double)s->exact_h / in->Ysize;
        }
        if (strcmp(s->fit, "cover") == 0) {
            /* Scaled (or already the size: no resampling), then the box's middle. */
            VipsImage *r;
            int w, h, rc;
            if (sx == 1 && sy == 1)
                r = g_object_ref(in);
            else if (vips_resize(in, &r, sx, "vscale", sy, NULL))
                return -1;
            w = VIPS_MIN(r->Xsize, (int)s->v[0]);
            h = VIPS_MIN(r->Ysize, (int)s->v[1]);
            rc = vips_extract_area(r, out, (r->Xsize - w) / 2, (r->Ysize - h) / 2, w, h, NULL);
            g_object_unref(r);
            return rc;
        }
        if (sx == 1 && sy == 1)
            return vips_copy(in, out, NULL);
        return vips_resize(in, out, sx, "vscale", sy, NULL);
    }
    if (strcmp(op, "rotate") == 0) {
        double a = fmod(s->v[0], 360);
        double bg[MAXBANDS];
        VipsImage *src = in, *alpha = NULL;
        VipsArrayDouble *arr;
        int n = 0, rc;
        double k = full_scale(in) / 255.0;

        if (a < 0)
            a += 360;
        if (a == 0)
            return vips_copy(in, out, NULL);
        if (a == 90)
            return vips_rot(in, out, VIPS_ANGLE_D90, NULL);
        if (a == 180)
            return vips_rot(in, out, VIPS_ANGLE_D180, NULL);
        if (a == 270)
            return vips_rot(in, out, VIPS_ANGLE_D270, NULL);
        /* A see-through background needs an alpha band to show. */
        if (s->bg[3] < 255 && !vips_image_hasalpha(in)) {
            if (vips_bandjoin_const1(in, &alpha, full_scale(in), NULL))
                return -1;
            src = alpha;
        }
        /* imgproc.x: gray images get the colour's luminance, CMYK its
         * complement as ink (no black); alpha comes last. */
        if (src->Bands <= 2)
            bg[n++] = k * (0.2126 * s->bg[0] + 0.7152 * s->bg[1] + 0.0722 * s->bg[2]);
        else if (src->Type == VIPS_INTERPRETATION_CMYK) {
            for (int i = 0; i < 3; i++)
                bg[n++] = k * (255 - s->bg[i]);
            bg[n++] = 0;
        } else
            for (int i = 0; i < 3; i++)
                bg[n++] = k * s->bg[i];
        while (n < src->Bands - (vips_image_hasalpha(src) ? 1 : 0) && n < MAXBANDS - 1)
            bg[n++] = 0;
        if (vips_image_hasalpha(src))
            bg[n++] = k * s->bg[3];
        arr = vips_array_double_new(bg, n);
        rc = vips_rotate(src, out, a, "background", arr, NULL);
        vips_area_unref(VIPS_AREA(arr));
        if (alpha)
            g_object_unref(alpha);
        return rc;
    }
    if (strcmp(op, "blur") == 0)
        return vips_gaussblur(in, out, s->v[0], NULL);
    if (strcmp(op, "sharpen") == 0)
        return vips_sharpen(in, out, "sigma", s->v[0], NULL);
    if (strcmp(op, "crop") == 0) {
        if (s->v[2] + s->v[0] > in->Xsize || s->v[3] + s->v[1] > in->Ysize) {
            *invalid = 1;       /* imgproc.x: a crop outside the image is an error */
            vips_error("reference", "crop outside the %dx%d image", in->Xsize, in->Ysize);
            return -1;
        }
        return vips_extract_area(in, out, (int)s->v[2], (int)s->v[3], (int)s->v[0],
                                 (int)s->v[1], NULL);
    }
    if (strcmp(op, "gamma") == 0) {
        /* imgproc.x: per band, alpha kept; CMYK's curve on the paper left. */
        VipsImage *colour, *alpha, *g;
        int rc;
        if (!vips_image_hasalpha(in))
            return ref_gamma(in, s->v[0], out);
        if (vips_extract_band(in, &colour, 0, "n", in->Bands - 1, NULL))
            return -1;
        if (vips_extract_band(in, &alpha, in->Bands - 1, NULL)) {
            g_object_unref(colour);
            return -1;
        }
        rc = ref_gamma(colour, s->v[0], &g);
        if (!rc) {
            VipsImage *c;
            rc = vips_cast(g, &c, in->BandFmt, NULL);
            g_object_unref(g);
            if (!rc) {
                rc = vips_bandjoin2(c, alpha, out, NULL);
                g_object_unref(c);
            }
        }
        g_object_unref(colour);
        g_object_unref(alpha);
        return rc;
    }
    if (strcmp(op, "extract_band") == 0) {
        VipsImage *x;
        int rc;
        if (s->v[0] + s->v[1] > in->Bands) {
            *invalid = 1;       /* imgproc.x: band + n beyond the image's bands */
            vips_error("reference", "bands %g+%g of %d", s->v[0], s->v[1], in->Bands);
            return -1;
        }
        if (vips_extract_band(in, &x, (int)s->v[0], "n", (int)s->v[1], NULL))
            return -1;
        /* Fewer than three bands are gray, as the server labels them. */
        rc = vips_copy(x, out, "interpretation", s->v[1] >= 3 ? in->Type
                       : in->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_GREY16
                       : VIPS_INTERPRETATION_B_W, NULL);
        g_object_unref(x);
        if (!rc && (int)s->v[1] != in->Bands)
            vips_image_remove(*out, VIPS_META_ICC_NAME);
        return rc;
    }
    if (strcmp(op, "flip") == 0)
        return vips_flip(in, out, VIPS_DIRECTION_VERTICAL, NULL);
    if (strcmp(op, "flop") == 0)
        return vips_flip(in, out, VIPS_DIRECTION_HORIZONTAL, NULL);
    if (strcmp(op, "autorot") == 0)
        return vips_autorot(in, out, NULL);
    vips_error("reference", "unknown step %s", op);
    return -1;
}

/* imgproc.x: JPEG holds no alpha, so an image with alpha is flattened on white. */
static int
ref_encode(VipsImage *in, const char *fmt, void **buf, size_t *len)
{
    VipsImage *im = in;
    int rc;

    g_object_ref(im);
    if (strcmp(fmt, "jpeg") == 0 && vips_image_hasalpha(in)) {
        double white[4] = { 0 };
        VipsArrayDouble *arr;
        int n = in->Bands - 1;
        for (int i = 0; i < n && i < 4; i++)
            white[i] = in->Type == VIPS_INTERPRETATION_CMYK ? 0 : full_scale(in);
        arr = vips_array_double_new(white, n);
        g_object_unref(im);
        rc = vips_flatten(in, &im, "background", arr, "max_alpha", full_scale(in), NULL);
        vips_area_unref(VIPS_AREA(arr));
        if (rc)
            return -1;
    }
    if (strcmp(fmt, "jpeg") == 0)
        rc = vips_jpegsave_buffer(im, buf, len, "Q", 85, NULL);
    else if (strcmp(fmt, "png") == 0)       /* lossless: the fastest setting will do */
        rc = vips_pngsave_buffer(im, buf, len, "compression", 1, NULL);
    else if (strcmp(fmt, "webp") == 0)
        rc = vips_webpsave_buffer(im, buf, len, "Q", 80, NULL);
    else if (strcmp(fmt, "tiff") == 0)
        rc = vips_tiffsave_buffer(im, buf, len, NULL);
    else if (strcmp(fmt, "gif") == 0)
        rc = vips_gifsave_buffer(im, buf, len, NULL);
    else {
        vips_error("reference", "unknown format %s", fmt);
        rc = -1;
    }
    g_object_unref(im);
    return rc;
}

/* ------------------------------------------------------------- figures */

/* What is compared: the decoded file's facts and per-band statistics. */
typedef struct figures {
    int width, height, bands;
    char interp[16];            /* libvips' nickname: srgb, b-w, rgb16... */
    char bandfmt[16];           /* uchar, ushort */
    char loader[16];            /* jpeg, png... from the loader's name */
    int orientation;            /* EXIF orientation, 0 when absent */
    double mean[MAXBANDS];
    double sd[MAXBANDS];
} figures;

static int
figures_of(VipsImage *im, const char *loader, figures *f)
{
    VipsImage *st;

    memset(f, 0, sizeof(*f));
    f->width = im->Xsize;
    f->height = im->Ysize;
    f->bands = im->Bands;
    snprintf(f->interp, sizeof(f->interp), "%s",
             vips_enum_nick(VIPS_TYPE_INTERPRETATION, im->Type));
    snprintf(f->bandfmt, sizeof(f->bandfmt), "%s",
             vips_enum_nick(VIPS_TYPE_BAND_FORMAT, im->BandFmt));
    snprintf(f->loader, sizeof(f->loader), "%.*s",
             (int)(strstr(loader, "load") ? strstr(loader, "load") - loader : 8), loader);
    if (vips_image_get_typeof(im, VIPS_META_ORIENTATION))
        vips_image_get_int(im, VIPS_META_ORIENTATION, &f->orientation);
    if (vips_stats(im, &st, NULL))
        return -1;
    if (vips_image_wio_input(st)) {
        g_object_unref(st);
        return -1;
    }
    for (int b = 0; b < im->Bands && b < MAXBANDS; b++) {
        f->mean[b] = *VIPS_MATRIX(st, 4, b + 1);
        f->sd[b] = *VIPS_MATRIX(st, 5, b + 1);
    }
    g_object_unref(st);
    return 0;
}

static int
figures_of_buffer(const void *buf, size_t len, figures *f)
{
    const char *loader = vips_foreign_find_load_buffer(buf, len);
    VipsImage *im;
    int rc;

    if (!loader)
        return -1;
    loader = vips_nickname_find(g_type_from_name(loader));
    if (!(im = vips_image_new_from_buffer(buf, len, "", NULL)))
        return -1;
    rc = figures_of(im, loader ? loader : "?", f);
    g_object_unref(im);
    return rc;
}

static void
figures_print(const char *who, const figures *f)
{
    printf("#   %-9s %dx%d %d band%s %s %s %s orientation %d; mean/sd:", who, f->width,
           f->height, f->bands, f->bands == 1 ? "" : "s", f->interp, f->bandfmt, f->loader,
           f->orientation);
    for (int b = 0; b < f->bands && b < MAXBANDS; b++)
        printf(" %.2f/%.2f", f->mean[b], f->sd[b]);
    printf("\n");
}

/* ---------------------------------------------------------- tolerances */

/*
 * How far the server's per-band mean and deviation may be from the
 * reference's, in levels of an 8-bit channel (x257 for 16-bit), for a
 * pipeline containing each step.  The largest of a pipeline's steps applies.
 * Both sides run the same libvips on the same pixels, so most steps must
 * agree to rounding; the reasons say where a difference is expected.
 */
static const struct tolerance {
    const char *op;             /* step */
    double mean, sd;            /* allowed |server - reference| */
    const char *why;            /* the reason */
} tolerances[] = {
    { "flip", 0.01, 0.01, "moves pixels, computes none" },
    { "flop", 0.01, 0.01, "moves pixels, computes none" },
    { "crop", 0.01, 0.01, "copies pixels" },
    { "autorot", 0.01, 0.01, "moves pixels" },
    { "rotate", 0.05, 0.05, "right angles move pixels; other angles interpolate the same way" },
    { "resize", 0.05, 0.05, "the same resampler on the same pixels" },
    { "blur", 0.05, 0.05, "the same Gaussian; the server asks integer precision, the "
      "default for 8-bit images" },
    { "sharpen", 0.05, 0.05, "the same unsharp mask" },
    { "grayscale", 0.05, 0.05, "the same weighed sum, rounded" },
    { "threshold", 0.05, 0.1, "the same gray, compared with the same level" },
    { "gamma", 0.05, 0.05, "the same power curve" },
    { "extract_band", 0.01, 0.01, "copies a band" },
};

static void
tolerance_of(const rstep *s, int n, const char *fmt, double *mean, double *sd)
{
    *mean = *sd = 0.01;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof(tolerances) / sizeof(tolerances[0]); k++)
            if (strcmp(tolerances[k].op, s[i].op) == 0) {
                *mean = fmax(*mean, tolerances[k].mean);
                *sd = fmax(*sd, tolerances[k].sd);
            }
    /* GIF: both sides quantise to a palette, and the palette's choice
     * depends on the pixels: a level or two either way. */
    if (strcmp(fmt, "gif") == 0) {
        *mean = fmax(*mean, 3.0);
        *sd = fmax(*sd, 3.0);
    }
    /* Lossy encoders amplify a one-level difference a little. */
    if (strcmp(fmt, "jpeg") == 0 || strcmp(fmt, "webp") == 0) {
        *mean = fmax(*mean, 0.05);
        *sd = fmax(*sd, 0.1);
    }
}

/* ---------------------------------------------------------- the cases */

static char *
slurp(const char *path, size_t *len)
{
    gchar *data = NULL;
    gsize n = 0;

    if (!g_file_get_contents(path, &data, &n, NULL))
        return NULL;
    *len = n;
    return data;
}


static void
emit(const char *image, const char *steps, const char *fmt)
{
    printf("%s\t%s\t%s\n", image, steps, fmt);
}

/* The format a result is asked in: the input's, when the server writes it. */
static const char *
natural_format(const char *loader)
{
    static const char *const writable[] = { "jpeg", "png", "webp", "tiff", "gif" };

    for (size_t i = 0; i < sizeof(writable) / sizeof(writable[0]); i++)
        if (strncmp(loader, writable[i], strlen(writable[i])) == 0)
            return writable[i];
    return "png";
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The corpus's images, sorted by name. */
static int
corpus_images(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0, cap = 64;

    if (!d)
        return -1;
    *names = malloc(sizeof(char *) * cap);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || g_str_has_suffix(e->d_name, ".txt"))
            continue;
        if (n == cap)
            *names = realloc(*names, sizeof(char *) * (cap *= 2));
        (*names)[n++] = g_strdup_printf("%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(*names, n, sizeof(char *), name_cmp);
    return n;
}

static void list_pairs(const char *image, const char *fmt, int w, int h);

/*
 * Every operation alone on every image, with a few values each, edges
 * included; then every ordered pair of steps on the pair images.
 */
static int
list_cases(const char *dir, int full)
{
    char **img;
    int n = corpus_images(dir, &img);

    if (n <= 0) {
        fprintf(stderr, "corpus-diff: no images in %s\n", dir);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        VipsImage *im = vips_image_new_from_file(img[i], NULL);
        const char *loader = vips_foreign_find_load(img[i]);
        const char *fmt;
        char s[256], *pairs, key[LINE];
        int w, h;
        double mp;
        size_t plen;

        if (!im) {
            fprintf(stderr, "corpus-diff: %s: %s", img[i], vips_error_buffer());
            return 1;
        }
        loader = loader ? vips_nickname_find(g_type_from_name(loader)) : NULL;
        fmt = natural_format(loader ? loader : "png");
        w = im->Xsize;
        h = im->Ysize;
        mp = (double)w * h / 1e6;
        g_object_unref(im);

        /* Pairs on the images pairs.txt names ("NAME" or "NAME full"). */
        snprintf(key, sizeof(key), "%s/pairs.txt", dir);
        if ((pairs = slurp(key, &plen))) {
            const char *base = strrchr(img[i], '/') + 1;
            for (char *save = NULL, *l = strtok_r(pairs, "\n", &save); l;
                 l = strtok_r(NULL, "\n", &save)) {
                size_t bl = strlen(base);
                if (strncmp(l, base, bl) == 0 &&
                    (l[bl] == '\0' || (full && strcmp(l + bl, " full") == 0)))
                    list_pairs(img[i], fmt, w, h);
            }
            g_free(pairs);
        }
        emit(img[i], "grayscale", fmt);
        emit(img[i], "threshold=128", fmt);
        snprintf(s, sizeof(s), "resize=%dx%d", VIPS_MAX(w / 3, 1), VIPS_MAX(h / 3, 1));
        emit(img[i], s, fmt);
        if (mp < 6) {
            snprintf(s, sizeof(s), "resize=%dx%d:enlarge", w * 3 / 2, h * 3 / 2);
            emit(img[i], s, fmt);
        }
        emit(img[i], "rotate=90", fmt);
        emit(img[i], "rotate=30", fmt);
        emit(img[i], "blur=2", fmt);
        /* A crop touching the bottom-right corner, and one a pixel past it. */
        snprintf(s, sizeof(s), "crop=%dx%d+%d+%d", w / 2, h / 2, w - w / 2, h - h / 2);
        emit(img[i], s, fmt);
        snprintf(s, sizeof(s), "crop=%dx%d+%d+%d", w / 2, h / 2, w - w / 2 + 1, 0);
        emit(img[i], s, fmt);
        emit(img[i], "flip", fmt);
        emit(img[i], "flop", fmt);
        emit(img[i], "sharpen=1", fmt);
        emit(img[i], "autorot", fmt);
        emit(img[i], "gamma=2.2", fmt);
        emit(img[i], "gamma=0.5", fmt);
        emit(img[i], "extract_band=0", fmt);
        emit(img[i], "extract_band=1:2", fmt);  /* refused where there is one band */
        emit(img[i], "extract_band=1:2", "tiff");   /* two bands of data, kept whole */
        if (mp < 0.3) {
            /* The ranges' ends, on images small enough to afford them. */
            emit(img[i], "blur=1000", fmt);
            emit(img[i], "sharpen=100", fmt);
        }
        /* A format without alpha, and the bands the client reports for it. */
        if (strcmp(fmt, "jpeg") != 0)
            emit(img[i], "grayscale", "jpeg");
        /* The larger matrix: more values on the images up to 6 MP. */
        if (!full || mp >= 6)
            continue;
        emit(img[i], "threshold=0", fmt);
        emit(img[i], "threshold=255", fmt);
        emit(img[i], "rotate=0", fmt);
        emit(img[i], "rotate=180", fmt);
        emit(img[i], "rotate=-90", fmt);
        emit(img[i], "rotate=359.9", fmt);
        emit(img[i], "rotate=-45:#ffffff00", fmt);
        emit(img[i], "blur=0.01", fmt);
        emit(img[i], "blur=0.5", fmt);
        emit(img[i], "sharpen=0.01", fmt);
        emit(img[i], "sharpen=5", fmt);
        snprintf(s, sizeof(s), "resize=%dx%d:cover", VIPS_MAX(w / 4, 1), VIPS_MAX(h / 2, 1));
        emit(img[i], s, fmt);
        snprintf(s, sizeof(s), "resize=%dx%d:fill", VIPS_MAX(w / 4, 1), VIPS_MAX(h / 2, 1));
        emit(img[i], s, fmt);
        emit(img[i], "resize=1x1", fmt);
        snprintf(s, sizeof(s), "crop=%dx%d+0+0", w, h);
        emit(img[i], s, fmt);
        emit(img[i], "crop=1x1+0+0", fmt);
        /* Every output format. */
        emit(img[i], "flop", "jpeg");
        emit(img[i], "flop", "png");
        emit(img[i], "flop", "webp");
        emit(img[i], "flop", "tiff");
        emit(img[i], "flop", "gif");
    }
    return 0;
}

/* Every ordered pair of the documented steps on one image. */
static void
list_pairs(const char *image, const char *fmt, int w, int h)
{
    char steps[12][64];
    int n = 0;

    snprintf(steps[n++], 64, "grayscale");
    snprintf(steps[n++], 64, "threshold=128");
    snprintf(steps[n++], 64, "resize=800x800");  /* the README's; libjpeg shrinks 4x and more */
    snprintf(steps[n++], 64, "resize=%dx%d:enlarge", w * 5 / 4, h * 5 / 4);
    snprintf(steps[n++], 64, "rotate=90");
    snprintf(steps[n++], 64, "rotate=30");
    snprintf(steps[n++], 64, "blur=2");
    snprintf(steps[n++], 64, "crop=400x300+100+100");
    snprintf(steps[n++], 64, "flip");
    snprintf(steps[n++], 64, "flop");
    snprintf(steps[n++], 64, "sharpen=1");
    snprintf(steps[n++], 64, "autorot");
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            char s[LINE];
            snprintf(s, sizeof(s), "%.63s,%.63s", steps[a], steps[b]);
            emit(image, s, fmt);
        }
}

/* ---------------------------------------------------------- checking */

static int ntest, nfail;

static void
tap(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("%s %d - ", ok ? "ok" : "not ok", ++ntest);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!ok)
        nfail++;
}

/* The facts the client printed with -v: "(FMT WxH, N band(s), B bytes)". */
static int
client_said(const char *err, char *fmt, int *w, int *h, int *bands)
{
    const char *p = err ? strstr(err, " (") : NULL;

    return p && sscanf(p, " (%15s %dx%d, %d band", fmt, w, h, bands) == 4 ? 0 : -1;
}

static int
close_enough(const figures *a, const figures *b, double tmean, double tsd, double scale)
{
    for (int i = 0; i < a->bands && i < MAXBANDS; i++)
        if (fabs(a->mean[i] - b->mean[i]) > tmean * scale ||
            fabs(a->sd[i] - b->sd[i]) > tsd * scale)
            return 0;
    return 1;
}

/*
 * Shrink on load, the way libvips documents it (jpegload's "shrink"): when
 * a JPEG pipeline begins with a downsizing
 * resize, after any flip, flop or autorot, the reference opens the image at
 * the largest of 1/8, 1/4, 1/2 that still holds the resize's result, and
 * the resize then scales to that size exactly (s[k].exact_w, exact_h).  This
 * file's own reading of the rule imgproc.x states; 0 when it does not apply,
 * else the factor.
 */
static int
shrink_factor(VipsImage *full, const char *image, rstep *s, int n)
{
    const char *loader = vips_foreign_find_load(image);
    int orientation = 1, swapped = 0, rotated = 0, k, w, h, tw, th, f;
    double sx, sy;

    loader = loader ? vips_nickname_find(g_type_from_name(loader)) : NULL;
    if (!loader || strncmp(loader, "jpegload", 8) != 0)
        return 0;
    if (vips_image_get_typeof(full, VIPS_META_ORIENTATION))
        vips_image_get_int(full, VIPS_META_ORIENTATION, &orientation);
    for (k = 0; k < n && strcmp(s[k].op, "resize") != 0; k++) {
        if (strcmp(s[k].op, "autorot") == 0) {
            swapped |= !rotated && orientation >= 5 && orientation <= 8;
            rotated = 1;
        } else if (strcmp(s[k].op, "flip") != 0 && strcmp(s[k].op, "flop") != 0)
            return 0;
    }
    if (k == n)
        return 0;
    w = swapped ? full->Ysize : full->Xsize;
    h = swapped ? full->Xsize : full->Ysize;
    resize_factors(&s[k], w, h, &sx, &sy);
    s[k].exact_w = (int)rint(w * sx);
    s[k].exact_h = (int)rint(h * sy);
    tw = swapped ? s[k].exact_h : s[k].exact_w;
    th = swapped ? s[k].exact_w : s[k].exact_h;
    for (f = 8; f >= 2; f /= 2)
        if (full->Xsize / f >= tw && full->Ysize / f >= th)
            return f;
    s[k].exact_w = s[k].exact_h = 0;
    return 0;
}

/*
 * The reference's figures: load (at 1/shrink when shrink > 1), each step,
 * encode, decode.  0, or -1 with libvips' error set (*invalid when imgproc.x
 * refuses the case).
 */
static int
reference(const char *image, const rstep *s, int n, const char *fmt, int shrink,
          figures *want, int *invalid)
{
    VipsImage *cur;
    void *rbuf = NULL;
    size_t rlen = 0;
    int rc = -1;
    const char *loader = vips_foreign_find_load(image);

    loader = loader ? vips_nickname_find(g_type_from_name(loader)) : "";
    if (shrink > 1 && strncmp(loader, "jpegload", 8) == 0)
        cur = vips_image_new_from_file(image, "access", VIPS_ACCESS_RANDOM, "shrink", shrink,
                                       NULL);
    else
        cur = vips_image_new_from_file(image, "access", VIPS_ACCESS_RANDOM, NULL);
    for (int i = 0; cur && i < n; i++) {
        VipsImage *next = NULL;
        if (ref_step(cur, &s[i], &next, invalid)) {
            g_object_unref(cur);
            cur = NULL;
            break;
        }
        g_object_unref(cur);
        cur = next;
    }
    /* Two or four bands from extract_band are data, which JPEG, WebP and GIF
     * would take for colour and alpha: imgproc.x refuses those. */
    if (cur && n > 0 && strcmp(s[n - 1].op, "extract_band") == 0 &&
        (s[n - 1].v[1] == 2 || s[n - 1].v[1] == 4) &&
        (strcmp(fmt, "jpeg") == 0 || strcmp(fmt, "webp") == 0 || strcmp(fmt, "gif") == 0)) {
        *invalid = 1;
        vips_error("reference", "%g data bands in %s", s[n - 1].v[1], fmt);
        g_object_unref(cur);
        cur = NULL;
    }
    if (cur)
        rc = ref_encode(cur, fmt, &rbuf, &rlen);
    if (rc == 0)
        rc = figures_of_buffer(rbuf, rlen, want);
    if (cur)
        g_object_unref(cur);
    g_free(rbuf);
    return rc;
}

/* How far shrink on load may move a result from the full decode's (levels). */
#define SHRINK_MEAN 1.0
#define SHRINK_SD 1.0

static void
check_case(const char *id, const char *image, const char *steps, const char *fmt,
           const char *outdir)
{
    rstep s[MAXSTEPS];
    int n = parse_steps(steps, s, MAXSTEPS), invalid = 0, rc = -1;
    char path[LINE], *err, *rcs, said_fmt[16];
    size_t len;
    int exit_code, sw, sh, sb;
    VipsImage *cur = NULL;
    figures got, want, want_full;
    double tmean, tsd;
    int shrink = 0;
    const char *base = strrchr(image, '/') ? strrchr(image, '/') + 1 : image;

    snprintf(path, sizeof(path), "%s/%s.rc", outdir, id);
    rcs = slurp(path, &len);
    snprintf(path, sizeof(path), "%s/%s.err", outdir, id);
    err = slurp(path, &len);
    exit_code = rcs ? atoi(rcs) : -1;
    if (n < 0) {
        tap(0, "%s %s: the harness cannot parse these steps", base, steps);
        goto done;
    }

    /* The reference: load, each step, encode, decode; at the shrink on load
     * imgproc.x promises, and also at full size to bound what it changes. */
    if ((cur = vips_image_new_from_file(image, NULL))) {
        shrink = shrink_factor(cur, image, s, n);
        g_object_unref(cur);
        cur = NULL;
    }
    if (shrink > 1) {
        rstep full_steps[MAXSTEPS];
        memcpy(full_steps, s, sizeof(full_steps));
        for (int i = 0; i < n; i++)
            full_steps[i].exact_w = full_steps[i].exact_h = 0;
        if (reference(image, full_steps, n, fmt, 1, &want_full, &invalid))
            shrink = -1;        /* said below, with the other failures */
    }
    if (shrink >= 0)
        rc = reference(image, s, n, fmt, shrink, &want, &invalid);
    if (rc) {
        char *why = g_strdup(vips_error_buffer());
        vips_error_clear();
        if (invalid) {
            tap(exit_code == 1 && err && strstr(err, "invalid-argument"),
                "%s %s -> %s: refused as invalid-argument, as documented", base, steps, fmt);
            if (exit_code != 1 || !err || !strstr(err, "invalid-argument"))
                printf("#   reference: %s#   server: exit %d: %s", why, exit_code,
                       err ? err : "(nothing)\n");
        } else
            tap(0, "%s %s -> %s: the reference failed: %s", base, steps, fmt, why);
        g_free(why);
        goto done;
    }

    /* The server's side: what the real client wrote. */
    if (exit_code != 0) {
        tap(0, "%s %s -> %s: the server failed (exit %d)", base, steps, fmt, exit_code);
        printf("#   server: %s", err ? err : "(no message)\n");
        figures_print("reference", &want);
        goto done;
    }
    snprintf(path, sizeof(path), "%s/%s.%s", outdir, id, fmt);
    {
        size_t olen;
        char *obuf = slurp(path, &olen);
        int bad = !obuf || figures_of_buffer(obuf, olen, &got);
        g_free(obuf);
        if (bad) {
            tap(0, "%s %s -> %s: the result does not decode: %s", base, steps, fmt,
                vips_error_buffer());
            vips_error_clear();
            goto done;
        }
    }
    tolerance_of(s, n, fmt, &tmean, &tsd);
    {
        int same_facts = got.width == want.width && got.height == want.height &&
            got.bands == want.bands && strcmp(got.interp, want.interp) == 0 &&
            strcmp(got.bandfmt, want.bandfmt) == 0 && strcmp(got.loader, want.loader) == 0 &&
            got.orientation == want.orientation;
        int near = close_enough(&got, &want, tmean, tsd,
                                strcmp(got.bandfmt, "ushort") == 0 ? 257.0 : 1.0);
        int told = client_said(err, said_fmt, &sw, &sh, &sb) == 0 && sw == got.width &&
            sh == got.height && sb == got.bands && strcmp(said_fmt, got.loader) == 0;

        /* A shrink on load stays near the full decode: in the statistics of a
         * picture (a thousand pixels and more; one pixel is one sample, which
         * a source decoded at 1/8 moves by several levels). */
        int near_full = shrink <= 1 || (long)got.width * got.height < 1000 ||
                        close_enough(&got, &want_full, SHRINK_MEAN, SHRINK_SD,
                                                    strcmp(got.bandfmt, "ushort") == 0 ?
                                                    257.0 : 1.0);

        tap(same_facts && near && told && near_full, "%s %s -> %s%s", base, steps, fmt,
            shrink > 1 ? " (shrink on load)" : "");
        if (!near_full) {
            printf("#   shrink on load (1/%d) moved the result by more than %.2f (mean) / "
                   "%.2f (sd) from the full decode\n", shrink, SHRINK_MEAN, SHRINK_SD);
            figures_print("full", &want_full);
        }
        if (!same_facts || !near || !told) {
            if (!same_facts)
                printf("#   size, bands, interpretation, format or orientation differ\n");
            if (!near)
                printf("#   statistics differ by more than %.2f (mean) / %.2f (sd)\n",
                       tmean, tsd);
            if (!told)
                printf("#   the client said: %s", err ? err : "(nothing)\n");
            figures_print("server", &got);
            figures_print("reference", &want);
        }
    }
done:
    g_free(err);
    g_free(rcs);
}

static int
check_cases(const char *cases, const char *outdir)
{
    FILE *f = fopen(cases, "r");
    char line[LINE];

    if (!f) {
        perror(cases);
        return 1;
    }
    printf("# tolerances (|server - reference| of each band's mean / deviation, 8-bit levels):\n");
    for (size_t k = 0; k < sizeof(tolerances) / sizeof(tolerances[0]); k++)
        printf("#   %-9s %.2f / %.2f  %s\n", tolerances[k].op, tolerances[k].mean,
               tolerances[k].sd, tolerances[k].why);
    printf("#   and a pipeline shrunk on load stays within %.2f / %.2f of the full decode's\n"
           "#   (results of 1000 pixels or more)\n", SHRINK_MEAN, SHRINK_SD);
    while (fgets(line, sizeof(line), f)) {
        char *id, *image, *steps, *fmt, *save = NULL;
        line[strcspn(line, "\n")] = '\0';
        if (!(id = strtok_r(line, "\t", &save)) || !(image = strtok_r(NULL, "\t", &save)) ||
            !(steps = strtok_r(NULL, "\t", &save)) || !(fmt = strtok_r(NULL, "\t", &save)))
            continue;
        check_case(id, image, steps, fmt, outdir);
        fflush(stdout);
    }
    fclose(f);
    printf("1..%d\n", ntest);
    if (nfail)
        printf("# %d of %d cases differ from the reference\n", nfail, ntest);
    return nfail ? 1 : 0;
}

int
main(int argc, char **argv)
{
    if (VIPS_INIT(argv[0]))
        return 2;
    vips_cache_set_max(0);
    if (argc >= 3 && strcmp(argv[1], "list") == 0) {
        int full = strcmp(argv[2], "--full") == 0;
        const char *dir = argv[full ? 3 : 2];
        int rc;
        if (!dir)
            goto usage;
        rc = list_cases(dir, full);
        return rc;
    }
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check_cases(argv[2], argv[3]);
usage:
    fprintf(stderr, "usage: corpus-diff list [--full] CORPUS\n"
            "       corpus-diff check CASES OUTDIR\n");
    return 2;
}
