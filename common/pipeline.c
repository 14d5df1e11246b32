/* pipeline.c - the table of pipeline operations, their ranges, and the --steps syntax. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

const proto_op proto_ops[] = {
    { IP_OP_GRAYSCALE, "grayscale", "to one luminance band (alpha kept)",
      "grayscale", 0, { { 0 } } },
    { IP_OP_RESIZE, "resize", "scale into a width x height box",
      "resize=WxH[:inside|cover|fill][:enlarge]  (W or H may be left out)", 4,
      { { "width", "uint", 1, IP_MAX_DIMENSION, "box width in pixels" },
        { "height", "uint", 1, IP_MAX_DIMENSION, "box height in pixels" },
        { "fit", "enum", 0, 2, "inside (default), cover or fill" },
        { "enlarge", "bool", 0, 1, "allow scaling up" } } },
    { IP_OP_ROTATE, "rotate", "rotate clockwise; the canvas grows to hold the result",
      "rotate=DEGREES[:COLOUR]", 2,
      { { "angle", "double", -1e6, 1e6, "degrees clockwise; multiples of 90 are exact" },
        { "background", "colour", 0, 255, "corner fill, e.g. white or #rrggbbaa" } } },
    { IP_OP_BLUR, "blur", "Gaussian blur", "blur=SIGMA", 1,
      { { "sigma", "double", 0, 1000, "standard deviation in pixels, > 0" } } },
    { IP_OP_THRESHOLD, "threshold", "black and white: luminance >= level is white",
      "threshold[=LEVEL]  (default 128)", 1,
      { { "level", "double", 0, 255, "luminance level" } } },
    { IP_OP_CROP, "crop", "keep a rectangle", "crop=WxH+LEFT+TOP", 4,
      { { "width", "uint", 1, IP_MAX_DIMENSION, "columns kept" },
        { "height", "uint", 1, IP_MAX_DIMENSION, "rows kept" },
        { "left", "uint", 0, IP_MAX_DIMENSION, "first column kept" },
        { "top", "uint", 0, IP_MAX_DIMENSION, "first row kept" } } },
    { IP_OP_FLIP, "flip", "mirror top to bottom", "flip", 0, { { 0 } } },
    { IP_OP_FLOP, "flop", "mirror left to right", "flop", 0, { { 0 } } },
    { IP_OP_SHARPEN, "sharpen", "unsharp mask", "sharpen[=SIGMA]  (default 1)", 1,
      { { "sigma", "double", 0, 100, "mask radius in pixels, > 0" } } },
    { IP_OP_AUTOROT, "autorot", "apply the EXIF orientation, then clear it",
      "autorot", 0, { { 0 } } },
};
const size_t proto_nops = sizeof(proto_ops) / sizeof(proto_ops[0]);

const proto_op *
proto_op_by_num(ip_op op)
{
    for (size_t i = 0; i < proto_nops; i++)
        if (proto_ops[i].op == op)
            return &proto_ops[i];
    return NULL;
}

const proto_op *
proto_op_by_name(const char *name)
{
    if (strcmp(name, "gray") == 0 || strcmp(name, "grey") == 0 ||
        strcmp(name, "greyscale") == 0)
        name = "grayscale";
    for (size_t i = 0; i < proto_nops; i++)
        if (strcmp(proto_ops[i].name, name) == 0)
            return &proto_ops[i];
    return NULL;
}

static int
fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Is d inside the open-closed range (0, max]? */
static int
positive_upto(double d, double max)
{
    return isfinite(d) && d > 0 && d <= max;
}

int
proto_step_check(const ip_step *s, char *why, size_t len)
{
    const proto_op *op = proto_op_by_num(s->op);

    if (!op)
        return fail(why, len, "unknown step %d", (int)s->op);
    switch (s->op) {
    case IP_OP_RESIZE: {
        const ip_resize_params *r = &s->ip_step_u.resize;
        if (r->width < 1 || r->width > IP_MAX_DIMENSION ||
            r->height < 1 || r->height > IP_MAX_DIMENSION)
            return fail(why, len, "resize: width and height must be 1..%d, not %ux%u",
                        IP_MAX_DIMENSION, r->width, r->height);
        if ((unsigned)r->fit > IP_FIT_FILL)
            return fail(why, len, "resize: unknown fit %d", (int)r->fit);
        break;
    }
    case IP_OP_ROTATE: {
        const ip_rotate_params *r = &s->ip_step_u.rotate;
        if (!isfinite(r->angle) || fabs(r->angle) > 1e6)
            return fail(why, len, "rotate: angle must be a finite number of degrees");
        if (r->background.r > 255 || r->background.g > 255 ||
            r->background.b > 255 || r->background.a > 255)
            return fail(why, len, "rotate: background channels must be 0..255");
        break;
    }
    case IP_OP_BLUR:
        if (!positive_upto(s->ip_step_u.sigma, 1000))
            return fail(why, len, "blur: sigma must be > 0 and <= 1000, not %g",
                        s->ip_step_u.sigma);
        break;
    case IP_OP_THRESHOLD:
        if (!isfinite(s->ip_step_u.level) || s->ip_step_u.level < 0 ||
            s->ip_step_u.level > 255)
            return fail(why, len, "threshold: level must be 0..255, not %g",
                        s->ip_step_u.level);
        break;
    case IP_OP_CROP: {
        const ip_crop_params *c = &s->ip_step_u.crop;
        if (c->width < 1 || c->height < 1 || c->width > IP_MAX_DIMENSION ||
            c->height > IP_MAX_DIMENSION)
            return fail(why, len, "crop: width and height must be 1..%d",
                        IP_MAX_DIMENSION);
        break;
    }
    case IP_OP_SHARPEN:
        if (!positive_upto(s->ip_step_u.sharpen_sigma, 100))
            return fail(why, len, "sharpen: sigma must be > 0 and <= 100, not %g",
                        s->ip_step_u.sharpen_sigma);
        break;
    default:
        break;
    }
    return 0;
}

/* "800x600", "800x", "x600": a missing side means "no limit". */
static int
parse_box(const char *text, unsigned *w, unsigned *h)
{
    char buf[64];
    char *x;
    unsigned long v;

    if (strlen(text) >= sizeof(buf))
        return -1;
    strcpy(buf, text);
    x = strchr(buf, 'x');
    if (!x)
        return -1;
    *x = '\0';
    *w = *h = IP_MAX_DIMENSION;
    if (buf[0]) {
        if (proto_parse_uint(buf, IP_MAX_DIMENSION, &v) || v == 0)
            return -1;
        *w = (unsigned)v;
    }
    if (x[1]) {
        if (proto_parse_uint(x + 1, IP_MAX_DIMENSION, &v) || v == 0)
            return -1;
        *h = (unsigned)v;
    }
    return (buf[0] || x[1]) ? 0 : -1;
}

static int
parse_resize(char *arg, ip_resize_params *r, char *why, size_t len)
{
    char *save = NULL;
    char *part = strtok_r(arg, ":", &save);
    int one_side;

    memset(r, 0, sizeof(*r));
    if (!part || parse_box(part, &r->width, &r->height))
        return fail(why, len, "resize: expected WxH, Wx or xH, not '%s'",
                    part ? part : "");
    one_side = r->width == IP_MAX_DIMENSION || r->height == IP_MAX_DIMENSION;
    r->fit = IP_FIT_INSIDE;
    while ((part = strtok_r(NULL, ":", &save))) {
        if (strcmp(part, "inside") == 0)
            r->fit = IP_FIT_INSIDE;
        else if (strcmp(part, "cover") == 0)
            r->fit = IP_FIT_COVER;
        else if (strcmp(part, "fill") == 0)
            r->fit = IP_FIT_FILL;
        else if (strcmp(part, "enlarge") == 0)
            r->enlarge = TRUE;
        else
            return fail(why, len, "resize: unknown option '%s'", part);
    }
    if (one_side && r->fit != IP_FIT_INSIDE)
        return fail(why, len, "resize: cover and fill need both width and height");
    return 0;
}

static int
parse_step(char *text, ip_step *s, char *why, size_t len)
{
    char *arg = strchr(text, '=');
    const proto_op *op;

    if (arg)
        *arg++ = '\0';
    op = proto_op_by_name(text);
    if (!op)
        return fail(why, len, "unknown step '%s'", text);
    memset(s, 0, sizeof(*s));
    s->op = op->op;
    if (op->nparams == 0 && arg)
        return fail(why, len, "%s takes no value", op->name);
    switch (op->op) {
    case IP_OP_RESIZE:
        if (!arg)
            return fail(why, len, "resize needs a size, e.g. resize=800x600");
        return parse_resize(arg, &s->ip_step_u.resize, why, len);
    case IP_OP_ROTATE: {
        char *colour = arg ? strchr(arg, ':') : NULL;
        if (colour)
            *colour++ = '\0';
        if (!arg || proto_parse_double(arg, &s->ip_step_u.rotate.angle))
            return fail(why, len, "rotate needs an angle in degrees, e.g. rotate=90");
        s->ip_step_u.rotate.background = (ip_colour){ 0, 0, 0, 255 };
        if (colour && proto_colour_parse(colour, &s->ip_step_u.rotate.background))
            return fail(why, len, "rotate: unknown colour '%s'", colour);
        return 0;
    }
    case IP_OP_BLUR:
        if (!arg || proto_parse_double(arg, &s->ip_step_u.sigma))
            return fail(why, len, "blur needs a sigma, e.g. blur=2.5");
        return 0;
    case IP_OP_THRESHOLD:
        s->ip_step_u.level = 128;
        if (arg && proto_parse_double(arg, &s->ip_step_u.level))
            return fail(why, len, "threshold: '%s' is not a number", arg);
        return 0;
    case IP_OP_SHARPEN:
        s->ip_step_u.sharpen_sigma = 1;
        if (arg && proto_parse_double(arg, &s->ip_step_u.sharpen_sigma))
            return fail(why, len, "sharpen: '%s' is not a number", arg);
        return 0;
    case IP_OP_CROP: {
        ip_crop_params *c = &s->ip_step_u.crop;
        char tail;
        if (!arg || sscanf(arg, "%ux%u+%u+%u%c", &c->width, &c->height,
                           &c->left, &c->top, &tail) != 4)
            return fail(why, len, "crop needs WxH+LEFT+TOP, e.g. crop=100x80+10+20");
        return 0;
    }
    default:
        return 0;
    }
}

int
proto_pipeline_parse(const char *text, ip_step *steps, unsigned max,
                     unsigned *nsteps, char *why, size_t len)
{
    char *copy = strdup(text);
    char *rest = copy;
    char *part;
    unsigned n = 0;
    int rc = -1;

    if (!copy)
        return fail(why, len, "out of memory");
    while (*text && (part = strsep(&rest, ","))) {
        if (!*part) {
            fail(why, len, "an empty step (at character %zu of '%s'): two commas in a row, "
                 "or one at an end", (size_t)(part - copy) + 1, text);
            goto cleanup;
        }
        if (n == max) {
            fail(why, len, "more than %u steps", max);
            goto cleanup;
        }
        /* Syntax only: ranges are the server's to judge (SERVER_INFO lists them). */
        if (parse_step(part, &steps[n], why, len)) {
            /* Where it went wrong (parse_step cut part up: the text says it
             * whole), and the likeliest cause: another separator. */
            size_t at = (size_t)(part - copy), used = strlen(why);
            int step_len = (int)strcspn(text + at, ",");
            snprintf(why + used, len - used, " (step %u, '%.*s', at character %zu of '%s')%s",
                     n + 1, step_len, text + at, at + 1, text,
                     strpbrk(text + at, ";| \t+") && strpbrk(text + at, ";| \t+") < text + at + step_len
                         ? "; steps are separated by commas, as in 'blur=5,grayscale'" : "");
            goto cleanup;
        }
        n++;
    }
    if (n == 0) {
        fail(why, len, "empty pipeline");
        goto cleanup;
    }
    *nsteps = n;
    rc = 0;
cleanup:
    free(copy);
    return rc;
}

void
proto_step_format(const ip_step *s, char *buf, size_t len)
{
    static const char *const fits[] = { "inside", "cover", "fill" };
    const proto_op *op = proto_op_by_num(s->op);

    if (!op) {
        snprintf(buf, len, "step%d", (int)s->op);
        return;
    }
    switch (s->op) {
    case IP_OP_RESIZE: {
        const ip_resize_params *r = &s->ip_step_u.resize;
        snprintf(buf, len, "resize=%ux%u:%s%s", r->width, r->height,
                 (unsigned)r->fit <= IP_FIT_FILL ? fits[r->fit] : "?",
                 r->enlarge ? ":enlarge" : "");
        break;
    }
    case IP_OP_ROTATE: {
        const ip_colour *c = &s->ip_step_u.rotate.background;
        snprintf(buf, len, "rotate=%g:#%02x%02x%02x%02x", s->ip_step_u.rotate.angle,
                 c->r & 255, c->g & 255, c->b & 255, c->a & 255);
        break;
    }
    case IP_OP_BLUR:
        snprintf(buf, len, "blur=%g", s->ip_step_u.sigma);
        break;
    case IP_OP_THRESHOLD:
        snprintf(buf, len, "threshold=%g", s->ip_step_u.level);
        break;
    case IP_OP_SHARPEN:
        snprintf(buf, len, "sharpen=%g", s->ip_step_u.sharpen_sigma);
        break;
    case IP_OP_CROP: {
        const ip_crop_params *c = &s->ip_step_u.crop;
        snprintf(buf, len, "crop=%ux%u+%u+%u", c->width, c->height, c->left, c->top);
        break;
    }
    default:
        snprintf(buf, len, "%s", op->name);
        break;
    }
}
